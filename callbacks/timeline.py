"""Fine-tuning timeline callbacks: scrubbing, playback and trails (issue 6, item 7).

Scrubbing is one callback (:func:`scrub`): after the first render it answers with
``dash.Patch`` objects that replace only what moves -- the map's coordinate and border
arrays (as base64 typed arrays), the flip rings, the trails, and the epoch markers of the
accuracy and drift charts -- never whole figures. Everything it reads is prepared once per
process (:func:`timeline_data`, ``lru_cache`` keyed by the app's Cache object), so
a slider step is a few numpy slices.

Playback (:func:`playback`) advances one epoch per ``dcc.Interval`` tick and STOPS at the
last epoch (the final model is where fine-tuning ends; looping would flash past it);
pressing play at the last epoch restarts from the first.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence

import dash
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from dash import Input, Output, Patch, State, html

from callbacks import triggered_components
from dashboard import data
from dashboard.app import get_cache
from dashboard.figures.theme import SOURCE_COLOR, TARGET_COLOR, empty_figure
from dashboard.figures.timeline import (
    DOMAIN_FILTERS,
    MapGroup,
    accuracy_chart,
    accuracy_empty,
    drift_empty,
    drift_heatmap,
    epoch_column,
    epoch_line,
    map_epoch_fields,
    map_ranges,
    timeline_map,
)
from dashboard.pool import POOL_SIZE, add_to_pool, as_ids
from layouts import ids
from layouts import timeline as tl
from transferviz.cache import Cache

NO = dash.no_update


# --- per-process data -------------------------------------------------------------------

@dataclass(frozen=True)
class TimelineData:
    """Everything the timeline callbacks read, prepared once per build folder."""

    epochs: list[int]
    positions: np.ndarray  # (E, N, 2) float32
    pred: np.ndarray  # (E, N)
    flips: np.ndarray  # (E, N) bool
    wrong: np.ndarray  # (E, N) bool: prediction != true label
    labels: np.ndarray  # (N,)
    domains: np.ndarray  # (N,) "source"/"target"
    groups: list[MapGroup]
    ranges: tuple[list[float], list[float]]
    class_names: dict[int, str]
    class_colors: dict[int, str]
    accuracy: pd.DataFrame | None
    drift: pd.DataFrame | None
    layers: list[str]
    in_domain: dict[str, np.ndarray]  # "source"/"target" -> (N,) bool, domains == that domain


def timeline_data(cache: Cache) -> TimelineData | None:
    """The cache's timeline arrays (None when the cache has no timeline); memoized per Cache
    object (it hashes by identity; the app holds one per process)."""
    return _timeline_data(cache)


@lru_cache(maxsize=4)
def _timeline_data(cache: Cache) -> TimelineData | None:
    if not tl.has_timeline(cache):
        return None
    epochs = [int(e) for e in cache.timeline_epochs()]
    positions = np.ascontiguousarray(cache.timeline_positions(), dtype=np.float32)
    pred = np.asarray(cache.timeline_pred()).astype(np.int64)
    flips = np.asarray(cache.timeline_flips(), dtype=bool)
    df = cache.instances
    labels = df["label"].to_numpy(dtype=np.int64)
    domains = df["domain"].to_numpy(dtype=object).astype(str)
    in_domain = {d: domains == d for d in ("source", "target")}
    names = dict(enumerate(cache.classes))
    wrong = pred != labels[None, :]
    # static hover text: what the model predicted at every epoch (the rest is in the trace's template)
    name_arr = np.array([names.get(i, str(i)) for i in range(max(len(names), int(pred.max(initial=0)) + 1))],
                        dtype=object)
    by_epoch = [" ".join(row) for row in name_arr[pred.T]]
    hover = np.array(by_epoch, dtype=object)
    groups = []
    for lab in range(len(names)):
        for dom in ("source", "target"):
            rows = np.flatnonzero((labels == lab) & in_domain[dom])
            if len(rows):
                groups.append(MapGroup(lab, dom, rows, hover[rows], (epochs[0], epochs[-1])))
    has = cache.has
    return TimelineData(
        epochs=epochs, positions=positions, pred=pred, flips=flips, wrong=wrong, labels=labels, domains=domains,
        groups=groups, ranges=map_ranges(positions), class_names=names, class_colors=data.class_colors(cache),
        accuracy=cache.timeline_accuracy() if has("analysis/timeline/accuracy.parquet") else None,
        drift=cache.timeline_drift() if has("analysis/timeline/drift.parquet") else None,
        layers=list(cache.layers), in_domain=in_domain,
    )


def epoch_index(epoch: Any, epochs: Sequence[int]) -> int:
    """Index of the kept epoch nearest to ``epoch`` (the slider may send any number; None -> 0)."""
    try:
        e = float(epoch)
    except (TypeError, ValueError):
        return 0
    if not np.isfinite(e):
        return 0
    return int(np.argmin([abs(e - x) for x in epochs]))


def _domain(value: Any) -> str:
    return value if value in DOMAIN_FILTERS else "both"


# --- the map ----------------------------------------------------------------------------

def trails(td: TimelineData, pool: Any, i: int) -> list[tuple[int, np.ndarray, str, str, list[str]]]:
    """Trail of each pool instance over epochs ``0..i`` (positions, class colour, domain, hover texts)."""
    n = td.positions.shape[1]
    out = []
    for inst in as_ids(pool)[-POOL_SIZE:]:
        if inst >= n:  # unknown id (typed or from another cache): no trail
            continue
        lab = int(td.labels[inst])
        hover = [f"#{inst} \u00b7 epoch {td.epochs[k]}: predicted {td.class_names.get(int(p), p)}"
                 + (" \u2717" if p != lab else "") for k, p in enumerate(td.pred[:i + 1, inst])]
        out.append((inst, td.positions[:i + 1, inst], td.class_colors.get(lab, "#777"), str(td.domains[inst]),
                    hover))
    return out


def map_fields(td: TimelineData, i: int, domain: str, pool: Any) -> list[dict[str, Any]]:
    return map_epoch_fields(td.positions[i], td.wrong[i], td.flips[i], td.groups, _domain(domain),
                            trails(td, pool, i), POOL_SIZE)


def map_figure(td: TimelineData, i: int, domain: str, pool: Any) -> go.Figure:
    return timeline_map(map_fields(td, i, domain, pool), td.groups, td.class_colors, td.class_names, td.ranges,
                        height=tl.MAP_HEIGHT)


def _typed(v: Any) -> Any:
    """numpy arrays as plotly.js typed-array specs (base64): 4 bytes a coordinate instead of ~18 of JSON text."""
    if isinstance(v, np.ndarray) and v.dtype.kind == "f":
        return {"dtype": "f4", "bdata": base64.b64encode(np.ascontiguousarray(v, dtype="<f4").tobytes()).decode()}
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v


def map_patch(fields: Sequence[dict[str, Any]]) -> Patch:
    """Assigns every moving field of every trace (same paths as :func:`timeline_map` builds)."""
    p = Patch()
    for k, f in enumerate(fields):
        for key, v in f.items():
            *parents, leaf = key.split(".")
            node = p["data"][k]
            for part in parents:
                node = node[part]
            node[leaf] = _typed(v)
    return p


# --- summary line -------------------------------------------------------------------------

def summary(td: TimelineData, i: int, domain: str) -> list[Any]:
    """"Epoch e: k predictions flipped (s source, t target) · accuracy ..." for the shown domain."""
    e = td.epochs[i]
    flipped = td.flips[i]
    n_s = int((flipped & td.in_domain["source"]).sum())
    n_t = int((flipped & td.in_domain["target"]).sum())
    dom = _domain(domain)
    k = {"both": n_s + n_t, "source": n_s, "target": n_t}[dom]
    acc = {d: float((~td.wrong[i][m]).mean()) if m.any() else None for d, m in td.in_domain.items()}
    what = "the source model" if i == 0 else f"after fine-tuning epoch {e}"
    head = [html.B(f"Epoch {e}"), f" ({what}): "]
    if i == 0:
        head.append("the starting point, no flips yet")
    else:
        head += [html.B(f"{k} prediction{'s' if k != 1 else ''} flipped at epoch {e}"),
                 f"{'' if dom == 'both' else ' among ' + dom + ' instances'} (",
                 html.Span(f"{n_s} source", style={"color": SOURCE_COLOR}), ", ",
                 html.Span(f"{n_t} target", style={"color": TARGET_COLOR}), ")"]
    head.append(" \u00b7 accuracy ")
    for d, color in (("target", TARGET_COLOR), ("source", SOURCE_COLOR)):
        if acc[d] is not None:
            head += [html.Span(f"{d} {acc[d]:.1%}", style={"color": color}), " "]
    return head


# --- the scrub callback ---------------------------------------------------------------------

def scrub(cache: Cache, epoch: Any, domain: Any, pool: Any, acc_domain: Any, acc_val: Any,
          changed: set[str]) -> tuple[Any, Any, Any, Any]:
    """``(map, accuracy, drift, summary)`` for the chosen epoch.

    ``changed`` = the ids that fired (empty on the first call): the first call builds whole
    figures; later calls send Patches (map: only the arrays that move; charts: only their
    epoch marker) unless the accuracy options changed, which redraws that chart.
    """
    td = timeline_data(cache)
    if td is None:
        msg = empty_figure(tl.MISSING, height=tl.MAP_HEIGHT)
        return msg, empty_figure("no timeline", height=tl.ACC_HEIGHT), \
            empty_figure("no timeline", height=tl.DRIFT_HEIGHT), tl.MISSING
    i = epoch_index(epoch, td.epochs)
    e = td.epochs[i]
    first = not changed
    fields = map_fields(td, i, domain, pool)
    if first:
        map_out: Any = timeline_map(fields, td.groups, td.class_colors, td.class_names, td.ranges,
                                    height=tl.MAP_HEIGHT)
    else:
        map_out = map_patch(fields)
    acc_dom = acc_domain if acc_domain in ("source", "target") else "target"
    val_only = tl.VAL_ONLY in (acc_val or [])
    if first or changed & {tl.ACC_DOMAIN, tl.ACC_VAL}:
        acc_out: Any = accuracy_chart(td.accuracy, acc_dom, val_only, td.class_colors, td.class_names, e,
                                      height=tl.ACC_HEIGHT)
    elif tl.SLIDER in changed and not accuracy_empty(td.accuracy, acc_dom, val_only):
        acc_out = Patch()  # (an empty-state chart has no line: a patch would draw one across its message)
        acc_out["layout"]["shapes"][0] = epoch_line(e)
    else:
        acc_out = NO
    if first:
        drift_out: Any = drift_heatmap(td.drift, td.layers, td.epochs, i, height=tl.DRIFT_HEIGHT)
    elif tl.SLIDER in changed and not drift_empty(td.drift, td.epochs):
        drift_out = Patch()
        drift_out["layout"]["shapes"][0] = epoch_column(i)
    else:
        drift_out = NO
    return map_out, acc_out, drift_out, summary(td, i, domain)


def timeline_update(cache: Cache, fired: set[str], tab: str | None, drawn: bool | None, epoch: Any, domain: Any,
                    pool: Any, acc_domain: Any, acc_val: Any) -> tuple[Any, Any, Any, Any, Any]:
    """:func:`scrub`'s answer plus the drawn flag, for whatever fired the timeline's callback.

    Whole figures are sent once, when the tab is first shown; the flag travels in the same
    answer, so a step taken before those figures reached the page still sees ``drawn`` False
    and gets whole figures too (a patch needs its figure in place). Later tab switches send
    nothing.
    """
    if not drawn:
        if tab != ids.TAB_TIMELINE:
            return NO, NO, NO, NO, NO
        return (*scrub(cache, epoch, domain, pool, acc_domain, acc_val, set()), True)
    if not fired or fired == {ids.TABS}:
        return NO, NO, NO, NO, NO
    return (*scrub(cache, epoch, domain, pool, acc_domain, acc_val, fired), NO)


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
    clicked = [i for i in data.selected_ids(click_data) if 0 <= i < n_instances]
    if not clicked:
        return NO, NO
    return add_to_pool(pool, clicked[:1]), clicked[0]


# --- wiring ----------------------------------------------------------------------------------

def register(app: dash.Dash) -> None:
    cache = get_cache(app)
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
        State(tl.DRAWN, "data"),
    )
    def _scrub(epoch, domain, pool, acc_domain, acc_val, tab, drawn):
        return timeline_update(get_cache(app), triggered_components(), tab, drawn, epoch, domain, pool,
                               acc_domain, acc_val)

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
        td = timeline_data(get_cache(app))
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
        return click_to_pool(click_data, pool, len(get_cache(app).instances))

    @app.callback(
        Output(ids.POOL, "data", allow_duplicate=True),
        Input(tl.CLEAR, "n_clicks"),
        prevent_initial_call=True,
    )
    def _clear(n_clicks):
        return [] if n_clicks else NO
