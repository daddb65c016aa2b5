"""Models & data tab (issue 6, item 5): the shared architecture with each module's weight change,
and the datasets' class counts per domain and split with sample images.

The panels are filled by ``callbacks/models_data.py`` when the tab is opened (they need the
app's URL prefix for thumbnails, and nobody who never opens the tab should pay for them).
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.views.models_data.markup import SAMPLES_PER_CLASS
from transferviz.cache import Cache

# Component ids of this view.
MODELS = "preview-models"
DATA = "preview-data"
SAMPLE_SPLIT = "preview-sample-split"
SAMPLES = "preview-samples"
COUNTS = "preview-counts"
LOADED = "preview-loaded"   # dcc.Store: True once the panels were sent (they are sent once)

#: Sample grid height (px): ends with the count table at 1366 x 768 and scrolls past ~4 classes.
SAMPLES_HEIGHT = 214
LOADING = "Loading\u2026"


def layout(cache: Cache) -> dbc.Row:
    models = html.Div(id=MODELS, className="tv-card h-100",
                      children=[html.Span("Models", className="tv-card-title"),
                                html.Div(LOADING, className="text-muted")])
    samples_head = html.Div(className="d-flex align-items-center gap-1 flex-wrap", style={"fontSize": "0.72rem"},
                            children=[
        html.Span("Samples", className="fw-semibold"),
        html.Span(f"({SAMPLES_PER_CLASS} lowest ids) from", className="text-muted"),
        dcc.RadioItems(id=SAMPLE_SPLIT, value="train", inline=True,
                       options=[{"label": " train", "value": "train"}, {"label": " val", "value": "val"}],
                       inputStyle={"marginLeft": 4}),
    ])
    data = html.Div(className="tv-card h-100", children=[
        html.Div(id=DATA, children=[html.Span("Data", className="tv-card-title"),
                                    html.Div(LOADING, className="text-muted")]),
        dbc.Row(className="g-2", children=[
            dbc.Col(html.Div(id=COUNTS, style={"maxHeight": 340, "overflowY": "auto"}), width="auto"),
            dbc.Col([samples_head, html.Div(id=SAMPLES, style={"maxHeight": SAMPLES_HEIGHT, "overflowY": "auto"})]),
        ]),
    ])
    return dbc.Row([dbc.Col(models, lg=6, className="mb-2"), dbc.Col(data, lg=6, className="mb-2"),
                    dcc.Store(id=LOADED, data=False)], className="g-2 mt-1")
