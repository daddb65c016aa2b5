"""The page: statistics across the top; instance, network relation and feature views below (paper Fig. 1)."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html
from dash.development.base_component import Component

from dashboard.components import build_warning_alert, error_alert
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
_TAB_STYLE = {"padding": "4px 12px", "lineHeight": "20px"}
_TAB_SELECTED_STYLE = {"padding": "4px 12px", "lineHeight": "20px", "fontWeight": 600}


def _tab(label: str, value: str, children: Component) -> dcc.Tab:
    """One top-level tab with the compact header styles (explicit keywords, which Dash's typed ``Tab`` checks)."""
    return dcc.Tab(label=label, value=value, children=children, style=_TAB_STYLE, selected_style=_TAB_SELECTED_STYLE)


def page_layout(cache: Cache, hub_href: str | None = None) -> html.Div:
    """The run's page; ``hub_href``: the run hub serving it (the brand links back to its table of runs)."""
    dom = cache.domains
    brand = (html.A("transferviz", href=hub_href, className="navbar-brand fw-bold", id="hub-home",
                    title="all runs (the hub)") if hub_href
             else html.Span("transferviz", className="navbar-brand fw-bold"))
    header = dbc.Navbar(dbc.Container([
        brand,
        html.Span([f"{cache.name}: ", html.Span(dom["source"], className="tv-source fw-semibold"), " \u2192 ",
                   html.Span(dom["target"], className="tv-target fw-semibold")], className="text-light small"),
        html.Div([
            html.Span(id=ids.FIND_MESSAGE, className="text-light small me-2 text-truncate",
                      style={"maxWidth": "34rem"}),
            # debounce: one search on Enter or leaving the box, not one per keystroke
            html.Div(dbc.Input(id=ids.FIND, type="search", debounce=True, size="sm", maxLength=80,
                               placeholder="find: instance id or class", style={"width": "14rem"}),
                     title="Enter an instance id (12) to focus it and ring it in every map, or a class name "
                           "(class:NAME where classes are named like numbers) to ring that class's instances; "
                           "empty clears"),
        ], className="d-flex align-items-center ms-auto"),
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
        dcc.Store(id=ids.HIGHLIGHT),
        dcc.Store(id=ids.POOL, data=[]),
        header,
        dbc.Container([
            build_warning_alert(cache.build_warnings()),
            error_alert(),
            html.Div(id=ids.NOTICE),
            dcc.Tabs(id=ids.TABS, value=ids.TAB_ANALYSIS, children=[
                _tab("Transfer analysis", ids.TAB_ANALYSIS, analysis),
                _tab("Instance diagnosis", ids.TAB_DIAGNOSIS, diagnosis),
                _tab("Fine-tuning timeline", ids.TAB_TIMELINE, timeline.layout(cache)),
                _tab("Neuron change", ids.TAB_CHANGE, neuron_change.layout(cache)),
                _tab("Models & data", ids.TAB_PREVIEW, models_data.layout(cache)),
            ], className="mt-1", style={"height": "30px"}),
        ], fluid=True, className="px-2"),
    ])
