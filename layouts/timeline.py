"""Fine-tuning timeline tab (issue 6, item 7; seed 004): watch the target model change by epoch.

Left: every instance placed in the final t-SNE map at the chosen epoch (epoch 0 = the
source model), with an epoch slider (its handle takes the arrow keys: one kept epoch a press,
see :func:`epoch_step`) and a play/pause button; rings mark the predictions that flipped at
that epoch (a toggle, on by default: at the demo's epoch 1 they are over 1,300; the summary line
counts them either way), trails follow the image pool's instances (click a point to add it).
Right: per-class accuracy by epoch (the class selected across views bold, the others faded;
a click on a line selects its class) and, per analysed layer, how far its weights drifted from
the source model's. Playback stops at the last epoch; pressing play there restarts at the
first epoch (looping would hide the final model, where fine-tuning ends).
"""

from __future__ import annotations

import math

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.theme import SOURCE_COLOR, TARGET_COLOR, empty_figure, graph_config
from dashboard.views.timeline.figures import ACC_HEIGHT, DRIFT_HEIGHT, MAP_HEIGHT
from dashboard.views.timeline.markup import MISSING
from transferviz.cache import Cache

# Component ids of this view.
CARD = "timeline-card"
MAP = "timeline-map"
SLIDER = "timeline-epoch"
PLAY = "timeline-play"
INTERVAL = "timeline-interval"
DOMAIN = "timeline-domain"
CLEAR = "timeline-clear"
DRAWN = "timeline-drawn"   # dcc.Store: True once whole figures reached the page (later steps send patches)
SUMMARY = "timeline-summary"
ACCURACY = "timeline-accuracy"
ACC_DOMAIN = "timeline-acc-domain"
ACC_VAL = "timeline-acc-val"
DRIFT = "timeline-drift"
RINGS = "timeline-rings"   # dcc.Checklist: [RINGS_ON] draws the rings of the predictions flipped at the epoch

#: Milliseconds between two epochs while playing (each step costs well under 150 ms server time).
PLAY_INTERVAL_MS = 900
PLAY_LABEL, PAUSE_LABEL = "\u25b6 play", "\u275a\u275a pause"
VAL_ONLY = "val"
RINGS_ON = "on"

def epoch_marks(epochs: list[int]) -> dict[int, str]:
    """Slider marks: every kept epoch (the first, 0, is the source model: said beside the slider)."""
    return {int(e): str(e) for e in epochs}


def epoch_step(epochs: list[int]) -> int:
    """The slider's ``step``: the greatest common divisor of the gaps between kept epochs (1 when
    every epoch is kept), so that an arrow key moves the handle one kept epoch on.

    ``step=None`` (marks only) made the arrow keys dead: dash 4's slider then steps by a
    hundredth of its range (``calcStep``) and snaps each press back to the nearest mark, the
    same one. Kept epochs with uneven gaps (0, 1, 2, 5) leave stops between marks; the view
    shows the nearest kept epoch there (``epoch_index``)."""
    gaps = [b - a for a, b in zip(epochs, epochs[1:]) if b > a]
    return max(math.gcd(*gaps), 1) if gaps else 1


def _controls(epochs: list[int]) -> html.Div:
    play = html.Div(className="d-flex align-items-center gap-2", children=[
        dbc.Button(PLAY_LABEL, id=PLAY, n_clicks=0, color="dark", size="sm", outline=True,
                   style={"minWidth": 76, "padding": "1px 6px"},
                   title="play the epochs one after another (stops at the last; play there restarts)"),
        html.Span("epoch", className="text-muted", style={"fontSize": "0.75rem"}),
        html.Div(dcc.Slider(id=SLIDER, min=epochs[0], max=epochs[-1], step=epoch_step(epochs), value=epochs[0],
                            marks=epoch_marks(epochs), updatemode="drag", allow_direct_input=False,
                            included=True),
                 style={"flex": "1 1 auto", "minWidth": 200},
                 title="epoch 0 = the source model; focus the handle (click or Tab) and use the arrow keys, "
                       "Home and End"),
        dcc.Interval(id=INTERVAL, interval=PLAY_INTERVAL_MS, disabled=True, n_intervals=0),
        dcc.Store(id=DRAWN, data=False),
    ])
    options = html.Div(className="d-flex align-items-center gap-2 flex-wrap", style={"fontSize": "0.75rem"},
                       children=[
        html.Span("show", className="text-muted"),
        dcc.RadioItems(id=DOMAIN, value="both", inline=True,
                       options=[{"label": " both domains", "value": "both"},
                                {"label": html.Span(" source \u00d7", style={"color": SOURCE_COLOR}),
                                 "value": "source"},
                                {"label": html.Span(" target \u25cb", style={"color": TARGET_COLOR}),
                                 "value": "target"}],
                       labelStyle={"marginRight": 8, "cursor": "pointer"}),
        html.Span(dcc.Checklist(id=RINGS, value=[RINGS_ON], inline=True,
                                options=[{"label": " flip rings", "value": RINGS_ON}],
                                labelStyle={"cursor": "pointer"}),
                  title="ring the instances whose prediction flipped at this epoch (the summary counts "
                        "them either way)"),
        dbc.Button("clear trails", id=CLEAR, n_clicks=0, color="secondary", size="sm", outline=True,
                   style={"padding": "0 6px", "fontSize": "0.72rem"},
                   title="empties the image pool, whose instances the trails follow"),
        html.Span("epoch 0 = the source model, before fine-tuning", className="text-muted ms-auto"),
    ])
    return html.Div([play, options])


def _side() -> html.Div:
    return html.Div([
        html.Div(className="d-flex align-items-center gap-3 flex-wrap", style={"fontSize": "0.75rem"}, children=[
            html.Span("accuracy on", className="text-muted"),
            dcc.RadioItems(id=ACC_DOMAIN, value="target", inline=True,
                           options=[{"label": html.Span(" target", style={"color": TARGET_COLOR}), "value": "target"},
                                    {"label": html.Span(" source", style={"color": SOURCE_COLOR}), "value": "source"}],
                           labelStyle={"marginRight": 8, "cursor": "pointer"}),
            dcc.Checklist(id=ACC_VAL, value=[], inline=True,
                          options=[{"label": " validation instances only", "value": VAL_ONLY}],
                          labelStyle={"cursor": "pointer"}),
        ]),
        dcc.Graph(id=ACCURACY, figure=empty_figure("Loading…", height=ACC_HEIGHT),
                  config=graph_config("timeline_accuracy"), style={"height": ACC_HEIGHT}),
        dcc.Graph(id=DRIFT, figure=empty_figure("Loading…", height=DRIFT_HEIGHT),
                  config=graph_config("timeline_drift"), style={"height": DRIFT_HEIGHT}),
        html.Div("Click a class's line to pick that class (in every view): it is drawn bold, the others faded.",
                 className="text-muted", style={"fontSize": "0.7rem"}),
        html.Div("Which layers drifted away from the source, and when: 1.000 = the neurons' incoming weights point "
                 "where the source model's did; darker = further away.", className="text-muted",
                 style={"fontSize": "0.7rem"}),
    ])


def layout(cache: Cache) -> html.Div:
    title = html.Div([
        html.Span("Fine-tuning timeline", className="tv-card-title"),
        html.Span(" the target model's embeddings at every epoch, in the final t-SNE map",
                  className="text-muted small ms-1"),
    ])
    if not cache.has_timeline:
        return html.Div(id=CARD, className="tv-card mt-1", children=[
            title, html.Div(MISSING, className="alert alert-secondary small mt-2 mb-0", id=SUMMARY)])
    epochs = [int(e) for e in cache.timeline_epochs()]
    return html.Div(id=CARD, className="tv-card mt-1", children=[
        title,
        dbc.Row(className="g-2", children=[
            dbc.Col(lg=7, children=[
                _controls(epochs),
                html.Div(id=SUMMARY, className="small", style={"minHeight": 18, "fontSize": "0.75rem"}),
                dcc.Graph(id=MAP, figure=empty_figure("Loading the timeline…", height=MAP_HEIGHT),
                          config=graph_config("timeline_map", scrollZoom=True), clear_on_unhover=True,
                          style={"height": MAP_HEIGHT}),
                html.Div("Click a point to follow it: its trail over epochs 0..now joins the image pool's trails. "
                         "Dark border = mispredicted at this epoch; black ring = prediction flipped at this epoch.",
                         className="text-muted", style={"fontSize": "0.7rem"}),
            ]),
            dbc.Col(_side(), lg=5),
        ]),
    ])
