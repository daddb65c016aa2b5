"""The page: statistics across the top; instance, network relation and feature views below (paper Fig. 1)."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from layouts import (
    confusion_grid,
    features,
    hard_examples,
    ids,
    image_query,
    instance_table,
    instances,
    models_data,
    network,
    neuron_change,
    statistics,
    timeline,
)
from transferviz.cache import Cache

# compact tab headers: the views need the height at 1366 x 768
_TAB = {"style": {"padding": "4px 12px", "lineHeight": "20px"},
        "selected_style": {"padding": "4px 12px", "lineHeight": "20px", "fontWeight": 600}}


def page_layout(cache: Cache) -> html.Div:
    dom = cache.domains
    header = dbc.Navbar(dbc.Container([
        html.Span("transferviz", className="navbar-brand fw-bold"),
        html.Span([f"{cache.name}: ", html.Span(dom["source"], className="tv-source fw-semibold"), " \u2192 ",
                   html.Span(dom["target"], className="tv-target fw-semibold")], className="text-light small"),
    ], fluid=True), color="dark", dark=True, className="py-1")
    analysis = html.Div([
        statistics.layout(cache),
        dbc.Row([
            dbc.Col(instances.layout(cache), xl=3, lg=6, className="mb-2"),
            dbc.Col(network.layout(cache), xl=6, lg=12, className="mb-2"),
            dbc.Col(features.layout(cache), xl=3, lg=6, className="mb-2"),
        ], className="g-2"),
    ])
    # issue 6: instance-level diagnosis, seeds 002 and 004; every view compares source and target
    diagnosis = html.Div([
        dbc.Row([
            dbc.Col(hard_examples.layout(cache), xl=7, lg=12, className="mb-2"),
            dbc.Col(image_query.layout(cache), xl=5, lg=12, className="mb-2"),
        ], className="g-2 mt-1"),
        dbc.Row([
            dbc.Col(instance_table.layout(cache), xl=8, lg=12, className="mb-2"),
            dbc.Col(confusion_grid.layout(cache), xl=4, lg=12, className="mb-2"),
        ], className="g-2"),
    ])
    return html.Div([
        dcc.Location(id=ids.URL, refresh=False),
        dcc.Store(id=ids.SELECTED_CLASS),
        dcc.Store(id=ids.FOCUS),
        dcc.Store(id=ids.POOL, data=[]),
        header,
        dbc.Container([
            html.Div(id=ids.NOTICE),
            dcc.Tabs(id=ids.TABS, value=ids.TAB_ANALYSIS, children=[
                dcc.Tab(label="Transfer analysis", value=ids.TAB_ANALYSIS, children=analysis, **_TAB),
                dcc.Tab(label="Instance diagnosis", value=ids.TAB_DIAGNOSIS, children=diagnosis, **_TAB),
                dcc.Tab(label="Fine-tuning timeline", value=ids.TAB_TIMELINE, children=timeline.layout(cache), **_TAB),
                dcc.Tab(label="Neuron change", value=ids.TAB_CHANGE, children=neuron_change.layout(cache), **_TAB),
                dcc.Tab(label="Models & data", value=ids.TAB_PREVIEW, children=models_data.layout(cache), **_TAB),
            ], className="mt-1", style={"height": "30px"}),
        ], fluid=True, className="px-2"),
    ])
