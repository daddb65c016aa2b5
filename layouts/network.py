"""View C, the network relation view (paper 5.3.3, Figure 4): components and their ids.

Title bar: a class selector and a layer selector (a range over Layer 1..L, so the chosen
layers are always consecutive) and two switches (hide the non-important regions, hide the
source weights). Below: the relation-matrices figure inside a scrolling box (the figure
keeps a fixed pixel size per cell and grows with the layers; the box scrolls and the
mode bar zooms, cells never shrink) and a detail panel filled by clicks on a neuron index,
a weight square or a similarity cell (its contents, the kernel graph of a weight among them,
are built at run time by :mod:`dashboard.views.network.markup`).
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.theme import NETWORK_CONFIG, empty_figure
from dashboard.urlstate import DEFAULT_LAYER_COUNT
from dashboard.views.network.markup import hint
from transferviz.cache import Cache

GRAPH = "network-graph"
CLASS = "network-class"
LAYERS = "network-layers"
HIDE_NONIMPORTANT = "network-hide-nonimportant"
HIDE_SOURCE = "network-hide-source"
DETAIL = "network-detail"
SCROLL = "network-scroll"


def layer_marks(cache: Cache) -> dict[int, dict]:
    """RangeSlider marks ``{1: "L1", ...}`` with the layer names as tooltips via the label."""
    return {i + 1: {"label": f"L{i + 1}"} for i in range(len(cache.layers))}


def layout(cache: Cache) -> html.Div:
    n_layers = len(cache.layers)
    first = min(DEFAULT_LAYER_COUNT, n_layers)  # the URL's default layers (it may ask for others)
    class_options = [{"label": name, "value": i} for i, name in enumerate(cache.classes)]
    title_bar = html.Div([
        html.Span("Network relation", className="tv-card-title me-2"),
        html.Div([
            html.Label("class", htmlFor=CLASS, className="small text-muted me-1 mb-0"),
            dcc.Dropdown(id=CLASS, options=class_options, value=0, clearable=False, searchable=True,
                         style={"width": "9rem"}, className="tv-network-class"),
        ], className="d-flex align-items-center me-3"),
        html.Div([
            html.Span("layers", className="small text-muted me-1"),
            html.Div(dcc.RangeSlider(id=LAYERS, min=1, max=n_layers, step=1, value=[1, first],
                                     marks=layer_marks(cache), allowCross=False, pushable=0,
                                     updatemode="mouseup"),
                     style={"width": f"{max(10, 2.4 * n_layers):.0f}rem"}, title=", ".join(
                         f"L{i + 1} = {name}" for i, name in enumerate(cache.layers))),
        ], className="d-flex align-items-center me-3 tv-network-layers"),
        html.Div([  # stacked: two short lines instead of one long one in a narrow column
            dbc.Switch(id=HIDE_NONIMPORTANT, label="hide non-important regions", value=False,
                       className="small mb-0", style={"minHeight": 0}),
            dbc.Switch(id=HIDE_SOURCE, label="hide source weights", value=False, className="small mb-0",
                       style={"minHeight": 0}),
        ], className="d-flex flex-column"),
    ], className="d-flex flex-wrap align-items-center gap-1 mb-1 tv-network-titlebar")
    body = html.Div([
        # scrolls both ways; the figure never shrinks to fit (readability of large layers)
        html.Div(
            dcc.Graph(id=GRAPH, figure=empty_figure("Loading…", height=300), config=NETWORK_CONFIG,
                      clear_on_unhover=True, style={"display": "inline-block"}),
            id=SCROLL, className="tv-scroll tv-network-scroll flex-grow-1",
            style={"maxHeight": "78vh", "minWidth": 0},
        ),
        html.Div(hint(), id=DETAIL, className="tv-network-detail ms-2",
                 style={"width": "15.5rem", "flex": "0 0 15.5rem", "maxHeight": "78vh", "overflowY": "auto"}),
    ], className="d-flex align-items-start")
    return html.Div([title_bar, body], className="tv-card tv-view-network")
