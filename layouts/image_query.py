"""Image query (issue 6 item 4): one instance's hidden-layer vector and nearest neighbours, source vs target model.

An instance id box (kept in step with ``ids.FOCUS``: a click elsewhere shows its id here,
a valid typed id becomes the focus) and a scope for the neighbours (all instances, the
query's own domain, the other domain). For each model, side by side: the query image and
that model's prediction, its embedding-layer vector drawn as a line (the "waveform", the
neighbours' vectors thin beneath it), and its five nearest neighbours by cosine
similarity. A line below says how the neighbourhood changed through fine-tuning.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.lookups import MODELS
from dashboard.theme import DOMAIN_COLORS, DOMAIN_TINT, SPARK_CONFIG, empty_figure
from dashboard.views.image_query.figures import WAVE_HEIGHT
from dashboard.views.image_query.markup import NEIGHBOUR as NEIGHBOUR  # the neighbour cards' id type (built there)
from layouts.components import segmented
from transferviz.cache import Cache

# Component ids of this view.
CARD = "query-card"
INPUT = "query-id"
SCOPE = "query-scope"
MESSAGE = "query-message"
QUERY_INFO = "query-info"
SUMMARY = "query-summary"

SCOPE_OPTIONS = (("all", "all instances"), ("same", "same domain"), ("other", "other domain"))
INPUT_DEBOUNCE_MS = 600


def head_id(model: str) -> str:
    """The model panel's heading: prediction and confidence for the query."""
    return f"query-head-{model}"


def wave_id(model: str) -> str:
    return f"query-wave-{model}"


def neighbours_id(model: str) -> str:
    return f"query-neighbours-{model}"


def _panel(model: str) -> dbc.Col:
    return dbc.Col(html.Div([
        html.Div(id=head_id(model), style={"minHeight": 40, "fontSize": "0.76rem"}),
        # no mode bar: the waveform is read, not explored; hovering names each line
        dcc.Graph(id=wave_id(model), figure=empty_figure("", height=WAVE_HEIGHT),
                  config={**SPARK_CONFIG, "staticPlot": False, "responsive": True},
                  style={"height": WAVE_HEIGHT}),
        html.Div(id=neighbours_id(model), style={"minHeight": 86}),
    ], style={"background": DOMAIN_TINT[model], "borderTop": f"3px solid {DOMAIN_COLORS[model]}",
              "borderRadius": 3, "padding": "3px 4px"}), width=6, className="px-1")


def layout(cache: Cache) -> html.Div:
    n = len(cache.instances)
    emb_layer = cache.layer_info.get("embedding_layer", "the embedding layer")
    return html.Div(id=CARD, className="tv-card h-100", children=[
        html.Div([html.Span("Image query", className="tv-card-title"),
                  html.Span(f" activations at the input of {emb_layer}: the query's (dark) and its 5 nearest "
                            "neighbours' by cosine similarity (thin)", className="text-muted small ms-1")]),
        html.Div([
            html.Label("instance", htmlFor=INPUT, className="text-muted me-1 mb-0"),
            # no min/max and step "any": the browser would withhold an out-of-range or fractional
            # value, and the view could not say why nothing happened
            # wide enough for the placeholder's range and the number spinner (a 100k cache's "0-99999")
            dbc.Input(id=INPUT, type="number", step="any", debounce=INPUT_DEBOUNCE_MS, size="sm",
                      placeholder=f"0\u2013{max(n - 1, 0)}",
                      style={"width": max(78, 34 + 8 * len(f"0-{max(n - 1, 0)}")), "height": 24, "padding": "0 4px"},
                      className="me-2"),
            html.Span("neighbours among", className="text-muted me-1"),
            segmented(SCOPE, [{"label": label, "value": v} for v, label in SCOPE_OPTIONS], "all"),
        ], className="d-flex align-items-center flex-wrap", style={"fontSize": "0.76rem"}),
        # what is shown (and why, for the default), or why a typed id was refused
        html.Div([html.Span(id=QUERY_INFO), html.Span(id=MESSAGE, className="ms-1")], className="small",
                 style={"minHeight": 18}),
        dbc.Row([_panel(m) for m in MODELS], className="g-0 mx-0"),
        html.Div(id=SUMMARY, className="small mt-1", style={"minHeight": 18}),
    ])
