"""View D, the feature view (paper 5.4.2): components and their ids.

A model switch (source / target) and an order switch (most / least discriminative) in the
title bar; the ranking list of the neurons of Algorithm 1 (a dash-ag-grid grid, one checkbox
row per neuron: layer, index, discriminability, feature visualization when the cache has one,
mirrored conductance histogram of the class's source instances above and target instances below);
the domain discrimination biplot with an axis per checked neuron and a thumbnail tooltip.
The list's rows, the biplot and the tooltip are built at run time by
:mod:`dashboard.views.features`.
"""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.theme import DOMAIN_COLORS, empty_figure, graph_config
from dashboard.views.features.data import has_stability
from dashboard.views.features.figures import BIPLOT_HEIGHT
from dashboard.views.features.markup import MAX_ROWS, label_px
from dashboard.views.features.ranking_grid import ranking_grid
from transferviz.cache import Cache

MODEL = "features-model"
ORDER = "features-order"
RANKING = "features-ranking"
STATUS = "features-status"
BIPLOT = "feature-biplot"
BIPLOT_DRAWN = "feature-biplot-drawn"  # dcc.Store: [class, model, sorted checked keys] the biplot shows
TOOLTIP = "features-tooltip"
MORE = "features-more"    # "show more": one more page of the ranking list
SHOWN = "features-shown"  # dcc.Store: rows the ranking list shows in order (pages of MAX_ROWS)

BIPLOT_CONFIG = graph_config("domain_discriminability")


def _switch(id_: str, options: list[tuple[str, Any]], value: str, label: str) -> html.Div:
    """A compact inline radio group (two options) with a caption."""
    return html.Div([
        html.Span(label, className="small text-muted me-1"),
        dbc.RadioItems(id=id_, options=[{"label": t, "value": v} for v, t in options], value=value, inline=True,
                       className="tv-switch", label_class_name="small", input_class_name="me-1",
                       style={"display": "inline-flex", "gap": "0"}),
    ], className="d-flex align-items-center me-2")


def layout(cache: Cache) -> html.Div:
    title_bar = html.Div([
        html.Span("Features", className="tv-card-title me-2"),
        _switch(MODEL, [(m, html.Span(m, style={"color": DOMAIN_COLORS[m]})) for m in ("source", "target")],
                "target", "model"),
        _switch(ORDER, [("most", "most"), ("least", "least")], "most", "discriminative first"),
    ], className="d-flex flex-wrap align-items-center gap-1 mb-1")
    ranking = html.Div([
        ranking_grid(RANKING, label_px(cache), with_images=cache.has_featvis, with_stability=has_stability(cache)),
        html.Button("", id=MORE, n_clicks=0, className="btn btn-link btn-sm p-0 small", style={"display": "none"},
                    title="list the next page of neurons in this order"),
        dcc.Store(id=SHOWN, data=MAX_ROWS),
        dcc.Store(id=BIPLOT_DRAWN),
    ], className="mb-1")
    biplot = html.Div([
        dcc.Graph(id=BIPLOT, figure=empty_figure("Loading…", height=BIPLOT_HEIGHT), config=BIPLOT_CONFIG,
                  clear_on_unhover=True, style={"height": f"{BIPLOT_HEIGHT}px"}),
        dcc.Tooltip(id=TOOLTIP, direction="right"),
    ], className="position-relative")
    return html.Div([
        title_bar,
        html.Div(id=STATUS, className="small mb-1"),
        ranking,
        biplot,
    ], className="tv-card tv-view-features")
