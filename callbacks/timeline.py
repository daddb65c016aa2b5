"""Fine-tuning timeline callbacks: scrubbing, playback and trails (issue 6, item 7).

Scrubbing is one callback (:func:`scrub`): after the first render it answers with
``dash.Patch`` objects that replace only what moves -- the map's coordinate and border
arrays (as base64 typed arrays), the flip rings (emptied while the "flip rings" toggle is
off; the trace stays), the trails, and the epoch markers of the accuracy and drift charts --
never whole figures. The class selected across views (``ids.SELECTED_CLASS``; a click on a
line of the accuracy chart selects its class) redraws only the accuracy chart, its line bold.
Everything it reads is prepared once per cache object
(:func:`dashboard.views.timeline.data.timeline_data`), so a slider step is a few numpy slices.

Playback (:func:`playback`) advances one epoch per ``dcc.Interval`` tick and STOPS at the
last epoch (the final model is where fine-tuning ends; looping would flash past it);
pressing play at the last epoch restarts from the first.
"""

from __future__ import annotations

import base64
from typing import Any, Sequence

import dash
import numpy as np
from dash import Input, Output, Patch, State

from callbacks.common import triggered_components
from dashboard.lookups import selected_ids
from dashboard.pool import add_to_pool
from dashboard.theme import empty_figure
from dashboard.views.timeline.data import epoch_index, timeline_data
from dashboard.views.timeline.figures import (
    ACC_HEIGHT,
    DRIFT_HEIGHT,
    MAP_HEIGHT,
    accuracy_chart,
    accuracy_empty,
    drift_empty,
    drift_heatmap,
    epoch_column,
    epoch_line,
    map_fields,
    map_figure,
)
from dashboard.views.timeline.markup import MISSING, summary
from layouts import ids
from layouts import timeline as tl
from transferviz.cache import Cache

NO = dash.no_update


# --- patches ----------------------------------------------------------------------------

def _typed(v: Any) -> Any:
    """numpy arrays as plotly.js typed-array specs (base64): 4 bytes a coordinate instead of ~18 of JSON text."""
    if isinstance(v, np.ndarray) and v.dtype.kind == "f":
        return {"dtype": "f4", "bdata": base64.b64encode(np.ascontiguousarray(v, dtype="<f4").tobytes()).decode()}
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v


def map_patch(fields: Sequence[dict[str, Any]], only: set[int] | None = None) -> Patch:
    """Assigns every moving field of every trace (same paths as :func:`timeline_map` builds), or of the
    traces ``only`` names."""
    p = Patch()
    for k, f in enumerate(fields):
        if only is not None and k not in only:
            continue
        for key, v in f.items():
            *parents, leaf = key.split(".")
            node = p["data"][k]
            for part in parents:
                node = node[part]
            node[leaf] = _typed(v)
    return p


# --- the scrub callback ---------------------------------------------------------------------

def show_rings(rings: Any) -> bool:
    """The rings toggle's value (a checklist's list; None before the page sent it: on, the default)."""
    return rings is None or tl.RINGS_ON in rings


def scrub(cache: Cache, epoch: Any, domain: Any, pool: Any, acc_domain: Any, acc_val: Any,
          changed: set[str], rings: Any = None, selected_class: Any = None,
          highlight: Any = None) -> tuple[Any, Any, Any, Any]:
    """``(map, accuracy, drift, summary)`` for the chosen epoch.

    ``changed`` = the ids that fired (empty on the first call): the first call builds whole
    figures; later calls send Patches (map: only the arrays that move, the flip rings emptied
    when ``rings`` is toggled off; charts: only their epoch marker) unless the accuracy options
    or the selected class (``ids.SELECTED_CLASS``, highlighted in the accuracy chart) changed,
    which redraws that chart; a class change alone leaves the map and the summary alone.
    """
    td = timeline_data(cache)
    if td is None:
        msg = empty_figure(MISSING, height=MAP_HEIGHT)
        return msg, empty_figure("no timeline", height=ACC_HEIGHT), \
            empty_figure("no timeline", height=DRIFT_HEIGHT), MISSING
    i = epoch_index(epoch, td.epochs)
    e = td.epochs[i]
    first = not changed
    rings_on = show_rings(rings)
    class_only = changed == {ids.SELECTED_CLASS}
    found_only = changed == {ids.HIGHLIGHT}  # the find box: the map's rings move, nothing else
    map_out: Any
    if class_only:
        map_out = NO
    elif first:
        map_out = map_figure(td, i, domain, pool, rings_on, highlight)  # with its "showing k of N" note
    else:
        fields = map_fields(td, i, domain, pool, rings_on, highlight)
        map_out = map_patch(fields, {len(fields) - 1} if found_only else None)  # the find rings are last
    acc_dom = acc_domain if acc_domain in ("source", "target") else "target"
    val_only = tl.VAL_ONLY in (acc_val or [])
    if first or changed & {tl.ACC_DOMAIN, tl.ACC_VAL, ids.SELECTED_CLASS}:
        acc_out: Any = accuracy_chart(td.accuracy, acc_dom, val_only, td.class_colors, td.class_names, e,
                                      height=ACC_HEIGHT, highlight=selected_class)
    elif tl.SLIDER in changed and not accuracy_empty(td.accuracy, acc_dom, val_only):
        acc_out = Patch()  # (an empty-state chart has no line: a patch would draw one across its message)
        acc_out["layout"]["shapes"][0] = epoch_line(e)
    else:
        acc_out = NO
    if first:
        drift_out: Any = drift_heatmap(td.drift, td.layers, td.epochs, i, height=DRIFT_HEIGHT)
    elif tl.SLIDER in changed and not drift_empty(td.drift, td.epochs):
        drift_out = Patch()
        drift_out["layout"]["shapes"][0] = epoch_column(i)
    else:
        drift_out = NO
    return map_out, acc_out, drift_out, (NO if class_only or found_only else summary(td, i, domain, rings_on))


def timeline_update(cache: Cache, fired: set[str], tab: str | None, drawn: bool | None, epoch: Any, domain: Any,
                    pool: Any, acc_domain: Any, acc_val: Any, rings: Any = None,
                    selected_class: Any = None, highlight: Any = None) -> tuple[Any, Any, Any, Any, Any]:
    """:func:`scrub`'s answer plus the drawn flag, for whatever fired the timeline's callback.

    Whole figures are sent once, when the tab is first shown; the flag travels in the same
    answer, so a step taken before those figures reached the page still sees ``drawn`` False
    and gets whole figures too (a patch needs its figure in place). Later tab switches send
    nothing.
    """
    if not drawn:
        if tab != ids.TAB_TIMELINE:
            return NO, NO, NO, NO, NO
        return (*scrub(cache, epoch, domain, pool, acc_domain, acc_val, set(), rings, selected_class, highlight),
                True)
    if not fired or fired == {ids.TABS}:
        return NO, NO, NO, NO, NO
    return (*scrub(cache, epoch, domain, pool, acc_domain, acc_val, fired - {ids.TABS}, rings, selected_class,
                   highlight), NO)


# --- playback ---------------------------------------------------------------------------------

def playback(trigger: str | None, epoch: Any, playing: bool, epochs: Sequence[int]) -> tuple[int, bool]:
    """``(epoch, playing)`` after a press of play/pause (``trigger == PLAY``) or an interval tick.

    Play at the last epoch restarts from the first; a tick moves one epoch on and stops
    playback on reaching the last epoch; a tick while paused changes nothing.
    """
    if not epochs:
        return 0, False
    i = epoch_index(epoch, epochs)
    last = len(epochs) - 1
    if trigger == tl.PLAY:
        if playing:
            return epochs[i], False
        return (epochs[0] if i >= last else epochs[i]), True
    if trigger == tl.INTERVAL:
        if not playing:
            return epochs[i], False
        nxt = min(i + 1, last)
        return epochs[nxt], nxt < last
    return epochs[i], playing


def click_to_pool(click_data: dict | None, pool: Any, n_instances: int) -> tuple[Any, Any]:
    """``(pool, focus)`` after a click on the map: the clicked instance joins the pool and gets the focus."""
    clicked = [i for i in selected_ids(click_data) if 0 <= i < n_instances]
    if not clicked:
        return NO, NO
    return add_to_pool(pool, clicked[:1]), clicked[0]


def class_from_accuracy_click(click_data: dict | None, n_classes: int) -> Any:
    """``ids.SELECTED_CLASS`` after a click on the accuracy chart: the class of the clicked line
    (its points carry the class index as customdata); no_update for the mean line or anything else."""
    pts = (click_data or {}).get("points") or []
    cls = pts[0].get("customdata") if pts and isinstance(pts[0], dict) else None
    if isinstance(cls, bool) or not isinstance(cls, int) or not 0 <= cls < n_classes:
        return NO
    return cls


# --- wiring ----------------------------------------------------------------------------------

def register(app: dash.Dash, cache: Cache) -> None:
    try:
        timeline_data(cache)  # prepared at start-up, not on the first visitor's slider step
    except Exception:  # the callback reports any real problem when the tab is used
        pass

    @app.callback(
        Output(tl.MAP, "figure"),
        Output(tl.ACCURACY, "figure"),
        Output(tl.DRIFT, "figure"),
        Output(tl.SUMMARY, "children"),
        Output(tl.DRAWN, "data"),
        Input(tl.SLIDER, "value"),
        Input(tl.DOMAIN, "value"),
        Input(ids.POOL, "data"),
        Input(tl.ACC_DOMAIN, "value"),
        Input(tl.ACC_VAL, "value"),
        Input(ids.TABS, "value"),
        Input(tl.RINGS, "value"),
        Input(ids.SELECTED_CLASS, "data"),
        Input(ids.HIGHLIGHT, "data"),
        State(tl.DRAWN, "data"),
    )
    def _scrub(epoch, domain, pool, acc_domain, acc_val, tab, rings, selected_class, highlight, drawn):
        return timeline_update(cache, triggered_components(), tab, drawn, epoch, domain, pool,
                               acc_domain, acc_val, rings, selected_class, highlight)

    @app.callback(
        Output(tl.SLIDER, "value"),
        Output(tl.INTERVAL, "disabled"),
        Output(tl.PLAY, "children"),
        Input(tl.PLAY, "n_clicks"),
        Input(tl.INTERVAL, "n_intervals"),
        State(tl.SLIDER, "value"),
        State(tl.INTERVAL, "disabled"),
        prevent_initial_call=True,
    )
    def _play(_clicks, _ticks, epoch, disabled):
        td = timeline_data(cache)
        fired = triggered_components()
        trigger = tl.PLAY if tl.PLAY in fired else tl.INTERVAL
        new, playing = playback(trigger, epoch, not disabled, td.epochs if td else [])
        return (new if new != epoch else NO), not playing, (tl.PAUSE_LABEL if playing else tl.PLAY_LABEL)

    @app.callback(
        Output(ids.POOL, "data", allow_duplicate=True),
        Output(ids.FOCUS, "data", allow_duplicate=True),
        Input(tl.MAP, "clickData"),
        State(ids.POOL, "data"),
        prevent_initial_call=True,
    )
    def _click(click_data, pool):
        return click_to_pool(click_data, pool, len(cache.instances))

    @app.callback(
        Output(ids.SELECTED_CLASS, "data", allow_duplicate=True),
        Input(tl.ACCURACY, "clickData"),
        prevent_initial_call=True,
    )
    def _pick_class(click_data):
        return class_from_accuracy_click(click_data, len(cache.classes))

    @app.callback(
        Output(ids.POOL, "data", allow_duplicate=True),
        Input(tl.CLEAR, "n_clicks"),
        prevent_initial_call=True,
    )
    def _clear(n_clicks):
        return [] if n_clicks else NO
