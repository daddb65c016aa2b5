"""View B, instances (paper section 5.2): class picker, t-SNE scatter, hover card, selection list.

The class picker lists every class with its instance counts per domain (red source, blue target)
in a scroll box; a search box filters the list (the checked classes stay checked), "all" and
"none" check or uncheck the classes the search shows. Its value is the checklist's, which the
page's state callback keeps in the URL's ``classes``. The scatter is filled by
``callbacks/instances.py``; hovering a point shows a ``dcc.Tooltip`` with the thumbnail (fetched
from ``/thumb/<id>.png``, never inlined), the domain, the true label and the target model's
prediction; a lasso or box selection lists the chosen instances below the plot. The class
colours' key is the picker's swatches and a collapsible box under the map.
"""

from __future__ import annotations

from dash import dcc, html

from dashboard.theme import SCATTER_CONFIG, SOURCE_COLOR, TARGET_COLOR, empty_figure
from dashboard.urlstate import default_state
from dashboard.views.instances.figures import SCATTER_HEIGHT
from dashboard.views.instances.markup import SELECTION_HINT, class_key, class_options, picker_count
from transferviz.cache import Cache

# Component ids of this view.
CARD = "inst-card"
CLASSES = "inst-classes"
SEARCH = "inst-class-search"
ALL = "inst-class-all"
NONE = "inst-class-none"
PICKER_COUNT = "inst-class-count"
SCATTER = "inst-scatter"
TOOLTIP = "inst-tooltip"
SELECTION = "inst-selection"
SUMMARY = "inst-summary"
KEY = "inst-class-key"
KEY_TITLE = "inst-class-key-title"

__all__ = ["class_options", "layout"]

_BUTTON = "btn btn-outline-secondary btn-sm py-0 px-1"


def _toolbar(n_checked: int, n_classes: int) -> html.Div:
    return html.Div([
        dcc.Input(id=SEARCH, type="search", placeholder="filter classes", debounce=False, autoComplete="off",
                  className="form-control form-control-sm", style={"flex": "1 1 90px", "minWidth": 60, "height": 24,
                                                                   "fontSize": "0.75rem"}),
        html.Button("all", id=ALL, n_clicks=0, className=_BUTTON, title="check every class the filter shows",
                    style={"fontSize": "0.72rem"}),
        html.Button("none", id=NONE, n_clicks=0, className=_BUTTON, title="uncheck every class the filter shows",
                    style={"fontSize": "0.72rem"}),
        html.Span(picker_count(n_checked, n_classes, n_classes), id=PICKER_COUNT, className="text-muted",
                  style={"fontSize": "0.7rem", "whiteSpace": "nowrap"}),
    ], style={"display": "flex", "gap": 4, "alignItems": "center", "margin": "2px 0"})


def layout(cache: Cache) -> html.Div:
    state = default_state(cache)
    n = len(cache.classes)
    chosen = list(state.classes)
    return html.Div(id=CARD, className="tv-card h-100", children=[
        html.Div([
            html.Span("Instances", className="tv-card-title"),
            html.Span(" t-SNE of target-model embeddings", className="text-muted small ms-1"),
        ]),
        _toolbar(len(chosen), n),
        html.Div(["classes with their ", html.Span("source", style={"color": SOURCE_COLOR}), " and ",
                  html.Span("target", style={"color": TARGET_COLOR}), " instance counts"],
                 className="text-muted", style={"fontSize": "0.7rem"}),
        dcc.Checklist(
            id=CLASSES,
            options=class_options(cache),
            value=chosen,
            inline=True,
            # a grid of as many columns as fit, each cell clipping its own label; scrolls past a few rows
            # instead of pushing the map down. 190 px a column: one column in the card at 1366 px, where a
            # name gets ~120 px ("bike_helmet", "tape_dispenser" whole); two columns left ~35 px, 4 letters
            style={"display": "grid", "gridTemplateColumns": "repeat(auto-fill, minmax(190px, 1fr))",
                   "columnGap": 8, "maxHeight": 132, "overflowY": "auto", "overflowX": "hidden",
                   "fontSize": "0.78rem"},
            # the option's text box: a flex item allowed to shrink below its content (minWidth 0), so a long
            # name is cut by its ellipsis inside the cell instead of running into the next checkbox
            labelStyle={"flex": "1 1 0", "minWidth": 0, "overflow": "hidden", "cursor": "pointer"},
            inputStyle={"cursor": "pointer", "marginRight": 2},
        ),
        html.Div(id=SUMMARY, className="text-muted", style={"fontSize": "0.72rem", "minHeight": 16}),
        dcc.Graph(id=SCATTER, figure=empty_figure("Loading the projection…", height=SCATTER_HEIGHT),
                  config=SCATTER_CONFIG, clear_on_unhover=True, style={"height": SCATTER_HEIGHT}),
        html.Details([
            html.Summary(f"class colours ({len(chosen)})", id=KEY_TITLE, style={"cursor": "pointer"}),
            html.Div(class_key(cache, chosen), id=KEY, style={"display": "flex", "flexWrap": "wrap", "rowGap": 2}),
        ], className="text-muted", style={"fontSize": "0.72rem"}),
        dcc.Tooltip(id=TOOLTIP, direction="right", background_color="rgba(255,255,255,0.97)",
                    border_color="#bdbdbd", zindex=1050),
        html.Div(id=SELECTION, children=html.Div(SELECTION_HINT, className="text-muted small"),
                 style={"maxHeight": 180, "overflowY": "auto"}),
    ])
