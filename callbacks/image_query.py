"""Image query callbacks: the focused (or typed) instance's waveforms and nearest neighbours in both models.

Two thin callbacks keep the id box and ``ids.FOCUS`` in step without a loop: ``_render``
draws whatever FOCUS holds (and writes the id box only when it differs), ``_typed`` turns
a valid typed id into the focus (only when it differs) or explains an invalid one. What
the panels show is :func:`dashboard.views.image_query.markup.query_view`, over embeddings
normalised once per cache object (``data.warm`` at registration).
"""

from __future__ import annotations

from typing import Any

import dash
from dash import ALL, Input, Output, State

from callbacks.common import clicked_focus, fired_click
from dashboard.lookups import MODELS
from dashboard.pool import focus_id
from dashboard.views.image_query import data
from dashboard.views.image_query.markup import PANEL_KEYS, default_note, query_view, refusal
from layouts import ids
from layouts import image_query as ly
from transferviz.cache import Cache

NO = dash.no_update


def render(cache: Cache, focus: Any, scope: Any, typed: Any, prefix: str) -> tuple[Any, ...]:
    """``(id box value, message, *panels)`` for the focus (the default instance when none)."""
    qid = focus_id(focus, len(cache.instances))
    message: Any
    box: Any
    if qid is None:
        qid, why = data.default_query(cache)
        message = default_note(why)
        box = NO  # the box stays empty: writing it would make the default look like a chosen focus
    else:
        message = ""
        box = NO if typed == qid else qid
    view = query_view(cache, qid, scope, prefix)
    return (box, message, *(view[k] for k in PANEL_KEYS))


def typed_focus(value: Any, focus: Any, n_instances: int) -> tuple[Any, Any]:
    """``(FOCUS, message)`` for a typed id: the focus when valid and new, else a one-line message."""
    i, message = data.parse_typed_id(value, n_instances)
    if i is None:
        return NO, refusal(message or "")
    return (NO if focus_id(focus, n_instances) == i else i), ""


def clicked_neighbour(triggered: Any, n_clicks: Any) -> Any:
    """The id of a clicked neighbour card, or no_update when the cards were merely (re)drawn."""
    return clicked_focus(triggered, n_clicks, ly.NEIGHBOUR)


def register(app: dash.Dash, cache: Cache) -> None:
    prefix = app.config.requests_pathname_prefix
    data.warm(cache)
    # in the order of markup.PANEL_KEYS
    panel_outputs = [
        Output(ly.QUERY_INFO, "children"),
        *(Output(ly.head_id(m), "children") for m in MODELS),
        *(Output(ly.wave_id(m), "figure") for m in MODELS),
        *(Output(ly.neighbours_id(m), "children") for m in MODELS),
        Output(ly.SUMMARY, "children"),
    ]

    @app.callback(
        Output(ly.INPUT, "value"), Output(ly.MESSAGE, "children"), *panel_outputs,
        Input(ids.FOCUS, "data"), Input(ly.SCOPE, "value"), State(ly.INPUT, "value"),
    )
    def _render(focus, scope, typed):
        return render(cache, focus, scope, typed, prefix)

    @app.callback(
        Output(ids.FOCUS, "data", allow_duplicate=True), Output(ly.MESSAGE, "children", allow_duplicate=True),
        Input(ly.INPUT, "value"), State(ids.FOCUS, "data"),
        prevent_initial_call=True,
    )
    def _typed(value, focus):
        return typed_focus(value, focus, len(cache.instances))

    @app.callback(
        Output(ids.FOCUS, "data", allow_duplicate=True),
        Input({"type": ly.NEIGHBOUR, "index": ALL}, "n_clicks"),
        prevent_initial_call=True,
    )
    def _neighbour(_):
        return clicked_neighbour(*fired_click())
