"""View C, the network relation view (paper 5.3.3, Figure 4): components and their ids.

Title bar: a class selector and a layer selector (a range over Layer 1..L, so the chosen
layers are always consecutive; its marks are the short tags L1..L16, the full module paths
are in its hover title and in the tooltip of each handle), the number of important neurons
drawn a layer (the top ones by the class's ranking; issue 16: 410 a layer at 4096 units), the
similarity colour scale (absolute or relative to each matrix) and two switches (hide the
non-important regions, hide the source weights); all of them are in the URL. Below: the
relation-matrices figure, sized by the server to fit this box at 1366 x 768
(``figures.FIT_PX``; its cells shrink, a box drag zooms and the mode bar pans; the indices that
small cells leave unprinted are printed as the user zooms in), inside a box that still scrolls
should a figure be larger (a long "no weights" line: :data:`SCROLL_STYLE` and
:data:`GRAPH_STYLE`), and a detail panel filled by clicks on
a neuron index, a weight square or a similarity cell (its contents, the kernel graph of a
weight among them, are built at run time by :mod:`dashboard.views.network.markup`). Under them, a
line saying whether the class's weight correspondence is distinguishable from chance and a small strip
per drawn layer pair: observed share vs the same-index reference vs the permutation null (issue 12).
"""

from __future__ import annotations

import json
from typing import Any

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.components import DataAttrs
from dashboard.lookups import layer_tag, layer_title
from dashboard.theme import NETWORK_CONFIG, empty_figure
from dashboard.urlstate import DEFAULT_LAYER_COUNT, DEFAULT_SHOWN, SCALES, SHOWN_CHOICES
from dashboard.views.network.data import cka_matrix
from dashboard.views.network.figures import cka_heatmap
from dashboard.views.network.markup import hint
from transferviz.cache import Cache

GRAPH = "network-graph"
CLASS = "network-class"
LAYERS = "network-layers"
HIDE_NONIMPORTANT = "network-hide-nonimportant"
HIDE_SOURCE = "network-hide-source"
SHOWN = "network-shown"
RELABEL = "network-relabel"  # the label steps after a zoom (written by a clientside callback, read by none)
SCALE = "network-scale"
DETAIL = "network-detail"
SCROLL = "network-scroll"
CORRESPONDENCE = "network-correspondence"  # the strip: observed share vs same-index reference vs chance
CORRESPONDENCE_SUMMARY = "network-correspondence-summary"  # the line under the matrices
CKA = "network-cka"  # issue 14: layers x layers CKA of the source vs the target model
CKA_DOMAIN = "network-cka-domain"  # whose data the CKA is measured on


#: The figure's box: at most 78 % of the window high, as narrow as its column allows, and
#: scrolling both ways (``tv-scroll``) should the figure be larger than the size it is fitted to.
SCROLL_STYLE = {"maxHeight": "78vh", "minWidth": 0}
#: The graph takes the figure's own pixel size (``layout.width``/``height``; NETWORK_CONFIG is not
#: responsive), not its box's width.
GRAPH_STYLE = {"display": "inline-block"}
#: The layer selector's group in the wrapping title bar: it may shrink to the card's width (the
#: slider in it shrinks with it) rather than run over the next card.
LAYERS_BOX_STYLE = {"flex": "0 1 auto", "minWidth": 0, "maxWidth": "100%"}
#: The tooltip of the layer slider's handles: ``L3 features.0.block.1.0`` (assets/transferviz.js
#: reads the names from the slider box's ``data-layer-names``), above the handle: below it the
#: figure would paint over it.
LAYER_TOOLTIP = {"placement": "top", "transform": "tvLayerName"}


#: The colour-scale choices as the selector words them (the URL's ``scale`` values).
SCALE_LABELS = {"absolute": "absolute 0–1", "minmax": "matrix min–max", "quantile": "matrix deciles"}


def shown_value(shown: int | None) -> int | str:
    """The "neurons shown" selector's value of a count (``None``, all of them: ``"all"``)."""
    return "all" if shown is None else int(shown)


def shown_options(extra: int | None = None) -> list[dict]:
    """The "neurons shown" choices (and ``extra``, a count a link asked for, in its place)."""
    counts = sorted({c for c in SHOWN_CHOICES if c is not None} | ({extra} if extra else set()))
    return [{"label": f"top {c}", "value": c} for c in counts] + [{"label": "all", "value": "all"}]


def layer_marks(cache: Cache) -> dict[int, dict]:
    """RangeSlider marks ``{1: {"label": "L1"}, ...}``: the short tags (a mark cannot carry a title;
    the full paths are in :func:`layer_names_title` and the handles' tooltips)."""
    return {i + 1: {"label": layer_tag(cache, name)} for i, name in enumerate(cache.layers)}


def layer_names_title(cache: Cache) -> str:
    """The slider box's hover title: one line per layer, ``L3 = features.0.block.1.0 (Conv2d, 64 neurons)``."""
    return "\n".join(layer_title(cache, name) for name in cache.layers)


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
            # 2.4rem a layer, shrinking to the card's width (sixteen layers and more); the marks are the
            # tags, so the number boxes Dash adds on wide screens would only repeat them
            html.Div(dcc.RangeSlider(id=LAYERS, min=1, max=n_layers, step=1, value=[1, first],
                                     marks=layer_marks(cache), allowCross=False, pushable=0,
                                     updatemode="mouseup", tooltip=LAYER_TOOLTIP, allow_direct_input=False),
                     style={"width": f"{max(10, 2.4 * n_layers):.0f}rem", "minWidth": 0},
                     title=layer_names_title(cache), className="tv-layer-slider",
                     **DataAttrs({"data-layer-names": json.dumps(list(cache.layers))})),
        ], className="d-flex align-items-center pe-3 tv-network-layers", style=LAYERS_BOX_STYLE),
        html.Div([
            html.Label("neurons", htmlFor=SHOWN, className="small text-muted me-1 mb-0",
                       title="important neurons drawn a layer and model: the top ones by the class's importance "
                             "ranking (the histograms still count every neuron)"),
            dcc.Dropdown(id=SHOWN, options=shown_options(), value=shown_value(DEFAULT_SHOWN), clearable=False,
                         searchable=False, style={"width": "6.2rem"}, className="tv-network-shown"),
            html.Span("by class rank", className="small text-muted ms-1 me-2"),
            html.Label("colours", htmlFor=SCALE, className="small text-muted me-1 mb-0",
                       title="similarity greys: absolute (0 white, 1 black, as the paper) or relative to each "
                             "matrix (its min-max, or its deciles spread evenly)"),
            dcc.Dropdown(id=SCALE, options=[{"label": SCALE_LABELS[s], "value": s} for s in SCALES],
                         value=SCALES[0], clearable=False, searchable=False, style={"width": "10.5rem"},
                         className="tv-network-scale"),
        ], className="d-flex align-items-center me-2"),
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
                      clear_on_unhover=True, style=GRAPH_STYLE),
            id=SCROLL, className="tv-scroll tv-network-scroll flex-grow-1", style=SCROLL_STYLE,
        ),
        dcc.Store(id=RELABEL),
        html.Div(hint(), id=DETAIL, className="tv-network-detail ms-2",
                 style={"width": "15.5rem", "flex": "0 0 15.5rem", "maxHeight": "78vh", "overflowY": "auto"}),
    ], className="d-flex align-items-start")
    # under the matrices: whether the class's correspondence shares are distinguishable from chance
    # (issue 12: a reference and a null beside every measure a user reads as evidence)
    correspondence = html.Div([
        html.Div(id=CORRESPONDENCE_SUMMARY, className="small text-muted mb-1 tv-network-corr-summary"),
        dcc.Graph(id=CORRESPONDENCE, figure=empty_figure("Loading…", height=150),
                  config={"displayModeBar": False, "responsive": False}, style=GRAPH_STYLE),
    ], className="mt-1 tv-network-correspondence")
    return html.Div([title_bar, body, html.Div([correspondence, cka_box(cache)],
                                               className="d-flex flex-wrap align-items-start gap-2")],
                    className="tv-card tv-view-network")


def cka_figure(cache: Cache, domain: str) -> Any:
    """The CKA heatmap of ``cache`` on ``domain``'s data, its layers named by their tags."""
    m = cka_matrix(cache, domain)
    names = m.layers if m is not None else []
    return cka_heatmap(m, [layer_tag(cache, n) for n in names], [layer_title(cache, n) for n in names])


def cka_box(cache: Cache) -> html.Div:
    """Beside the correspondence strip: how similar each source layer's representation is to each target
    layer's (linear CKA), on the target or the source data, with the line that says how to read it."""
    return html.Div([
        html.Div([
            html.Span("Layer similarity (CKA)", className="small fw-semibold me-2"),
            dcc.RadioItems(id=CKA_DOMAIN, value="target", inline=True, className="small",
                           options=[{"label": " target data", "value": "target"},
                                    {"label": " source data", "value": "source"}],
                           inputClassName="ms-2 me-1"),
        ], className="d-flex align-items-center flex-wrap"),
        dcc.Graph(id=CKA, figure=cka_figure(cache, "target"), config={"displayModeBar": False, "responsive": False},
                  style=GRAPH_STYLE),
        html.Div("The diagonal (outlined) is each layer before vs after fine-tuning: 1 = kept, lower = changed.",
                 className="small text-muted tv-network-cka-reading", style={"maxWidth": "300px"}),
    ], className="mt-1 tv-network-cka")
