"""The neuron-change tab (seed 003): which neurons' feature visualizations changed most through
fine-tuning, per layer, with the source and target images side by side."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.lookups import layer_tag, layer_title
from dashboard.views.neuron_change.data import ALL
from transferviz.cache import Cache

LAYER = "change-layer"
SHOW_GRAY = "change-show-gray"
LIST = "change-list"
LOADED = "change-loaded"   # dcc.Store: True once the list was sent (it is built when the tab is first opened)


def layer_options(cache: Cache) -> list[dict]:
    """The layer selector's options: "every layer", then each layer by its short tag (``L3``) with its
    full module path on hover (``title``) and in what a search matches (``search``)."""
    return ([{"label": "every layer (five most changed each)", "value": ALL}]
            + [{"label": layer_tag(cache, layer), "value": layer, "title": layer_title(cache, layer),
                "search": f"{layer_tag(cache, layer)} {layer}"} for layer in cache.layers])


def layout(cache: Cache) -> html.Div:
    return html.Div([
        html.Div([
            html.Span("Neuron change through fine-tuning", className="tv-card-title me-3"),
            html.Span("cosine similarity of embeddings of each neuron's source and target feature visualization "
                      "(1 = unchanged); gray, washed-out visualizations are detected by colourfulness",
                      className="text-muted small"),
        ], className="mb-2"),
        dbc.Row([
            dbc.Col(dcc.Dropdown(id=LAYER, options=layer_options(cache), value=ALL, clearable=False), width=4),
            dbc.Col(dbc.Checklist(id=SHOW_GRAY, options=[{"label": "include gray visualizations", "value": "gray"}],
                                  value=[], switch=True), width=4),
        ], className="mb-2 g-2"),
        html.Div(id=LIST),
        dcc.Store(id=LOADED, data=False),
    ], className="tv-card mt-2")
