"""Hard examples (issue 6, items 1 and 6; seed 002): loss maps, hidden layer vs raw pixels, and a detail card.

Two maps of the same instances side by side: "hidden layer" (the t-SNE of the target
model's embeddings, ``cache.tsne()``) and "raw pixels" (``cache.pixel_tsne()``), coloured by
the chosen model's loss (darker = higher; log scale, see :mod:`dashboard.views.hard_examples.figures`),
crosses for source instances and circles for target ones. Filters: domain and "only
mispredicted" (by the chosen model). A click in either map sets ``ids.FOCUS``: both maps ring
it and the card below shows its image and both models' predictions, confidences and losses.
A lasso in one map highlights the same instances in the other (``BRUSH``): where the pixel
map mixes what the hidden-layer map separates is what the network's representation adds.
"""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.theme import SCATTER_CONFIG, SOURCE_COLOR, TARGET_COLOR, empty_figure
from dashboard.views.hard_examples.data import DEFAULTS, WRONG_ONLY
from dashboard.views.hard_examples.data import MAPS as MAP_TITLES
from dashboard.views.hard_examples.figures import MAP_HEIGHT
from dashboard.views.hard_examples.markup import DETAIL_HINT
from layouts.components import segmented
from transferviz.cache import Cache

# Component ids of this view.
CARD = "hard-card"
MODEL = "hard-model"
DOMAIN = "hard-domain"
WRONG = "hard-wrong"
HIDDEN_MAP = "hard-map-hidden"
PIXEL_MAP = "hard-map-pixels"
BRUSH = "hard-brush"          # dcc.Store: {"source": "hidden" | "pixels", "ids": [...]} or None
DRAWN = "hard-drawn"          # dcc.Store: True once the maps were drawn (they wait for their tab)
SUMMARY = "hard-summary"
DETAIL = "hard-detail"
EXPORT = "hard-export"        # CSV of the lasso selection (or of what the filters show)
DOWNLOAD = "hard-download"

#: The two maps, in page order: (key, graph id, title, what positions the instances).
MAPS = tuple((key, graph_id, *MAP_TITLES[key]) for key, graph_id in (("hidden", HIDDEN_MAP), ("pixels", PIXEL_MAP)))


def _colored(text: str, color: str) -> html.Span:
    return html.Span(text, style={"color": color})


def _map(graph_id: str, title: str, note: str) -> html.Div:
    # the title above the figure, not in it: the mode bar would cover it
    return html.Div([
        html.Div([html.B(title, style={"color": "#444"}), html.Span(f" {note}", className="text-muted")],
                 style={"fontSize": "0.72rem", "whiteSpace": "nowrap", "overflow": "hidden",
                        "textOverflow": "ellipsis"}),
        dcc.Graph(id=graph_id, figure=empty_figure("Loading the map…", height=MAP_HEIGHT),
                  config={**SCATTER_CONFIG, "toImageButtonOptions": {
                      **SCATTER_CONFIG["toImageButtonOptions"], "filename": graph_id}},
                  style={"height": MAP_HEIGHT}),
    ])


def layout(cache: Cache) -> html.Div:
    dom = cache.domains
    # the labels are components and strings: Any, not the object a mixed list is inferred as
    models: list[dict[str, Any]] = [{"label": _colored("source model", SOURCE_COLOR), "value": "source"},
                                    {"label": _colored("target model", TARGET_COLOR), "value": "target"}]
    domains: list[dict[str, Any]] = [
        {"label": "both", "value": "both"},
        {"label": _colored(f"\u00d7 {dom.get('source', 'source')}", SOURCE_COLOR), "value": "source"},
        {"label": _colored(f"\u25cb {dom.get('target', 'target')}", TARGET_COLOR), "value": "target"}]
    return html.Div(id=CARD, className="tv-card h-100", children=[
        html.Div([html.Span("Hard examples", className="tv-card-title"),
                  html.Span(" instances by the chosen model's loss (darker = higher); click one, or lasso to "
                            "find the same instances in the other map", className="text-muted small ms-1")],
                 style={"whiteSpace": "nowrap", "overflow": "hidden", "textOverflow": "ellipsis"}),
        html.Div([
            html.Span("loss of", className="text-muted me-1", style={"fontSize": "0.72rem"}),
            segmented(MODEL, models, DEFAULTS["model"]),
            segmented(DOMAIN, domains, DEFAULTS["domain"]),
            dcc.Checklist(id=WRONG, options=[{"label": " only mispredicted", "value": WRONG_ONLY}], value=[],
                          inline=True, style={"fontSize": "0.74rem", "display": "inline-block"},
                          inputStyle={"cursor": "pointer"}, labelStyle={"cursor": "pointer"}),
        ], className="d-flex flex-wrap align-items-center", style={"marginTop": 2}),
        dcc.Store(id=BRUSH),
        dcc.Store(id=DRAWN, data=False),
        dbc.Row([dbc.Col(_map(gid, title, note), width=6, className="px-1") for _, gid, title, note in MAPS],
                className="g-0"),
        html.Div([
            html.Div(id=SUMMARY, className="text-muted flex-grow-1", style={"fontSize": "0.7rem", "minHeight": 16}),
            dbc.Button("CSV", id=EXPORT, n_clicks=0, size="sm", color="link", className="py-0",
                       style={"fontSize": "0.7rem"},
                       title="download the lasso selection as CSV (without a lasso: every instance the filters "
                             "show)"),
            dcc.Store(id=DOWNLOAD),  # the last export: {file, bytes} or {error} (dashboard/export.py)
        ], className="d-flex align-items-center"),
        html.Div(id=DETAIL, children=html.Div(DETAIL_HINT, className="text-muted small"),
                 style={"minHeight": 84, "borderTop": "1px solid #eee", "paddingTop": 3}),
    ])
