"""View B, instances (paper section 5.2): class selector, t-SNE scatter, hover card, selection list.

The class selector lists every class with its instance counts per domain (red source,
blue target). The scatter is filled by ``callbacks/instances.py``; hovering a point shows
a ``dcc.Tooltip`` with the thumbnail (fetched from ``/thumb/<id>.png``, never inlined),
the domain, the true label and the target model's prediction; a lasso or box selection
lists the chosen instances below the plot.
"""

from __future__ import annotations

from typing import Any

from dash import dcc, html

from dashboard.lookups import class_colors, class_counts
from dashboard.theme import SCATTER_CONFIG, SOURCE_COLOR, TARGET_COLOR, empty_figure
from dashboard.urlstate import default_state
from dashboard.views.instances.figures import SCATTER_HEIGHT
from dashboard.views.instances.markup import SELECTION_HINT
from transferviz.cache import Cache

# Component ids of this view.
CARD = "inst-card"
CLASSES = "inst-classes"
SCATTER = "inst-scatter"
TOOLTIP = "inst-tooltip"
SELECTION = "inst-selection"
SUMMARY = "inst-summary"



def _count(n: int, color: str, domain: str) -> html.Span:
    # a zero count is the "class absent from one domain" empty state: make it visible, not red/blue
    return html.Span(str(n), title=f"{n} {domain} instance{'s' if n != 1 else ''}",
                     style={"color": color if n else "#9e9e9e", "fontVariantNumeric": "tabular-nums",
                            "minWidth": 30, "display": "inline-block", "textAlign": "right",
                            "fontStyle": "normal" if n else "italic"})


def class_options(cache: Cache) -> list[dict]:
    """Checklist options: colour swatch (the class's scatter colour), name, source and target counts."""
    counts = class_counts(cache)
    colors = class_colors(cache)
    opts = []
    r: Any  # the stubs type itertuples' fields as any scalar or NA; the counts are integer columns
    for r in counts.itertuples(index=False):
        label = html.Span([
            html.Span(style={"display": "inline-block", "width": 9, "height": 9, "borderRadius": 2,
                             "backgroundColor": colors[int(r.class_index)], "margin": "0 4px 0 3px"}),
            html.Span(str(r.name), title=str(r.name), style={"display": "inline-block", "minWidth": 28,
                                                             "maxWidth": 90, "overflow": "hidden",
                                                             "textOverflow": "ellipsis", "verticalAlign": "bottom",
                                                             "whiteSpace": "nowrap"}),
            _count(int(r.source), SOURCE_COLOR, "source"),
            _count(int(r.target), TARGET_COLOR, "target"),
        ], style={"whiteSpace": "nowrap"})
        opts.append({"label": label, "value": int(r.class_index)})
    return opts


def layout(cache: Cache) -> html.Div:
    state = default_state(cache)
    return html.Div(id=CARD, className="tv-card h-100", children=[
        html.Div([
            html.Span("Instances", className="tv-card-title"),
            html.Span(" t-SNE of target-model embeddings", className="text-muted small ms-1"),
        ]),
        html.Div(["classes with their ", html.Span("source", style={"color": SOURCE_COLOR}), " and ",
                  html.Span("target", style={"color": TARGET_COLOR}), " instance counts"],
                 className="text-muted", style={"fontSize": "0.7rem"}),
        dcc.Checklist(
            id=CLASSES,
            options=class_options(cache),
            value=list(state.classes),
            inline=True,
            # a grid of as many columns as fit; scrolls past a few rows instead of pushing the plot down
            style={"display": "grid", "gridTemplateColumns": "repeat(auto-fill, minmax(128px, 1fr))",
                   "columnGap": 6, "maxHeight": 150, "overflowY": "auto", "fontSize": "0.8rem"},
            labelStyle={"display": "inline-flex", "alignItems": "center", "cursor": "pointer"},
            inputStyle={"cursor": "pointer"},
        ),
        html.Div(id=SUMMARY, className="text-muted", style={"fontSize": "0.72rem", "minHeight": 16}),
        dcc.Graph(id=SCATTER, figure=empty_figure("Loading the projection…", height=SCATTER_HEIGHT),
                  config=SCATTER_CONFIG, clear_on_unhover=True, style={"height": SCATTER_HEIGHT}),
        dcc.Tooltip(id=TOOLTIP, direction="right", background_color="rgba(255,255,255,0.97)",
                    border_color="#bdbdbd", zindex=1050),
        html.Div(id=SELECTION, children=html.Div(SELECTION_HINT, className="text-muted small"),
                 style={"maxHeight": 180, "overflowY": "auto"}),
    ])
