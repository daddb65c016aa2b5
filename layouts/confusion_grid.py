"""Confusion grid with images (issue 6 item 3): true x predicted counts per model, domain and split.

Radio items choose the model (source/target), the domain of the instances and the split;
the grid (:func:`dashboard.views.confusion_grid.figures.grid_figure`) colours each cell by its
share of the true class and prints its count. Clicking a cell lists its instances as thumbnails below; clicking a
thumbnail makes that instance the focus (``ids.FOCUS``), which the image query shows.

With many classes the grid grows with the class count (:func:`dashboard.views.confusion_grid.figures.grid_size`)
and scrolls inside a box of the usual :data:`GRID_HEIGHT`, so the card keeps its size.
"""

from __future__ import annotations

from dash import dcc, html

from dashboard.theme import CORRECT_COLOR, ERROR_COLOR, GRAPH_CONFIG, SOURCE_COLOR, TARGET_COLOR
from dashboard.views.confusion_grid.data import DEFAULTS, SPLITS
from dashboard.views.confusion_grid.figures import GRID_HEIGHT, grid_size
from dashboard.views.confusion_grid.markup import LIST_HINT
from dashboard.views.confusion_grid.markup import THUMB as THUMB  # the listed thumbnails' id type (built there)
from layouts.components import segmented
from transferviz.cache import Cache

# Component ids of this view.
CARD = "confusion-card"
MODEL = "confusion-model"
DOMAIN = "confusion-domain"
SPLIT = "confusion-split"
GRAPH = "confusion-graph"
GRID_BOX = "confusion-grid-box"  # the scrolling box around the graph
CELL = "confusion-cell"          # dcc.Store: [true, predicted] of the clicked cell, or None
CAPTION = "confusion-caption"
LIST = "confusion-list"


def _colored(word: str, color: str) -> html.Span:
    return html.Span(word, style={"color": color, "fontWeight": 600})


def graph_style(n_classes: int) -> dict:
    """The graph's size for ``n_classes``: that of the figure (``grid_figure`` builds it with the
    same :func:`grid_size`); a fixed width only where the grid outgrows the card."""
    height, width = grid_size(n_classes, GRID_HEIGHT)
    return {"height": height} if width is None else {"height": height, "width": width}


def layout(cache: Cache) -> html.Div:
    dom = cache.domains
    models = [{"label": _colored("source model", SOURCE_COLOR), "value": "source"},
              {"label": _colored("target model", TARGET_COLOR), "value": "target"}]
    domains = [{"label": _colored(dom.get(d, d), c), "value": d}
               for d, c in (("source", SOURCE_COLOR), ("target", TARGET_COLOR))]
    splits = [{"label": s, "value": s} for s in SPLITS]
    return html.Div(id=CARD, className="tv-card h-100", children=[
        html.Div([html.Span("Confusion grid", className="tv-card-title"),
                  html.Span(" true \u00d7 predicted counts; click a cell for its images",
                            className="text-muted small ms-1")],
                 style={"whiteSpace": "nowrap", "overflow": "hidden", "textOverflow": "ellipsis"}),
        html.Div([
            segmented(MODEL, models, DEFAULTS["model"]),
            segmented(DOMAIN, domains, DEFAULTS["domain"]),
        ], className="d-flex flex-wrap"),
        html.Div([
            segmented(SPLIT, splits, DEFAULTS["split"]),
            html.Span(["colour: share of the true class, ", html.Span("correct", style={"color": CORRECT_COLOR}),
                       " / ", html.Span("mistaken", style={"color": ERROR_COLOR}), " (darkest = worst)"],
                      className="text-muted mb-1", style={"fontSize": "0.68rem"}),
        ], className="d-flex align-items-center flex-wrap"),
        dcc.Store(id=CELL),
        html.Div(dcc.Graph(id=GRAPH, config={**GRAPH_CONFIG, "displayModeBar": False},
                           style=graph_style(len(cache.classes))),
                 id=GRID_BOX, style={"height": GRID_HEIGHT, "overflow": "auto"}),
        html.Div(id=CAPTION, className="small", style={"minHeight": 18}),
        html.Div(id=LIST, children=html.Div(LIST_HINT, className="text-muted small"),
                 style={"maxHeight": 240, "overflowY": "auto"}),
    ])
