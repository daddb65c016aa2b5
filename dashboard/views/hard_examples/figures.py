"""Hard examples (issue 6, items 1 and 6): loss maps of the instances, hidden layer vs raw pixels.

One builder (:func:`loss_map`) draws either map from plain arrays: WebGL markers at the
map's positions, crosses for source instances and circles for target ones, coloured by the
chosen model's loss on a light-to-dark LOG scale (:data:`LOSS_COLORSCALE`: pale yellow is a
confident right answer, dark brown a high loss; not red or blue, which mean the domains).
The scale runs from :data:`LOSS_FLOOR` to the 99th percentile of that model's losses over all
instances (:func:`loss_range`): the many near-zero losses of a good model share the lightest
colour instead of squeezing the rest, and a few huge losses do not wash everything out.

Trace order, always (:data:`TRACE_ORDER`): ``[instances: source] [instances: target] [focus ring]``,
and ``layout.annotations[0]`` is the focus label, so a focus change patches those two alone.
Instance traces carry ``meta = {"role": "instances", "domain": d}`` and ``customdata`` = instance
ids (a plain list: ``dcc.Graph`` copies customdata into clickData / selectedData only from plain
arrays).
Brushed instances (a lasso in the other map) are the traces' ``selectedpoints``; the rest fade.
:func:`loss_maps` is what the maps show for a cache, the controls, the focus and the brush.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.highlight import highlight_trace
from dashboard.sampling import MAX_POINTS, sample_annotation, sample_note
from dashboard.theme import DOMAIN_SYMBOLS, TEMPLATE, empty_figure
from dashboard.views.hard_examples import data
from transferviz.cache import Cache

__all__ = ["LOSS_COLORSCALE", "LOSS_FLOOR", "LOSS_QUANTILE", "FOCUS_COLOR", "TRACE_ORDER", "FOCUS_TRACE",
           "HIGHLIGHT_TRACE", "MAP_HEIGHT",
           "color_range", "loss_range", "loss_color", "loss_map", "loss_maps", "focus_ring", "focus_label"]

#: Light (low loss) to dark (high loss); YlOrBr without its near-white end, so every point shows on white.
LOSS_COLORSCALE: list[list[Any]] = [
    [0.0, "#fee391"], [0.2, "#fec44f"], [0.4, "#fe9929"], [0.6, "#ec7014"], [0.8, "#993404"], [1.0, "#3d1503"],
]
#: Losses below this (the true class's probability above 0.99) share the lightest colour.
LOSS_FLOOR = 0.01
#: The scale's top: this quantile of the model's losses over all instances.
LOSS_QUANTILE = 0.99
FOCUS_COLOR = "#000000"
MARKER_SIZE = 5
FOCUS_SIZE = 17
SELECTED_SIZE = 8
#: Opacity of the instances outside a brush (a lasso in the other map).
FADED_OPACITY = 0.12
#: The traces of every map, in order: instances of each domain, the focus ring, the find box's rings.
TRACE_ORDER = ("source", "target", "focus", "highlight")
FOCUS_TRACE = TRACE_ORDER.index("focus")
HIGHLIGHT_TRACE = TRACE_ORDER.index("highlight")
MAP_HEIGHT = 262
NO_PIXEL_MAP = ("This cache has no raw-pixel map (it was built before the 'pixels' stage): "
                "rebuild it with 'transferviz build CONFIG' (the other stages are reused).")
NO_HIDDEN_MAP = "This cache has no t-SNE map (its 'project' stage): rebuild it with 'transferviz build CONFIG'."

_REQUIRED = ("id", "x", "y", "domain", "loss")


def loss_range(losses: np.ndarray, quantile: float = LOSS_QUANTILE, floor: float = LOSS_FLOOR) -> tuple[float, float]:
    """``(low, high)`` loss of the colour scale: the floor and the ``quantile`` of the finite losses
    (at least ten times the floor, so the scale never collapses for a near-perfect model)."""
    arr = np.asarray(losses, dtype=float)
    arr = arr[np.isfinite(arr)]
    hi = float(np.quantile(arr, quantile)) if len(arr) else floor * 10
    return floor, max(hi, floor * 10)


def loss_color(losses: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """The marker colour value of each loss: ``log10`` of the loss clipped to ``[lo, hi]``."""
    arr = np.nan_to_num(np.asarray(losses, dtype=float), nan=lo, posinf=hi, neginf=lo)
    return np.log10(np.clip(arr, lo, hi))


def _ticks(lo: float, hi: float) -> tuple[list[float], list[str]]:
    """Colour-bar ticks at the powers of ten inside the range, plus its ends, labelled in loss units."""
    a, b = np.log10(lo), np.log10(hi)
    vals = [float(v) for v in range(int(np.ceil(a)), int(np.floor(b)) + 1)]
    if not vals or b - vals[-1] > 0.3:
        vals.append(float(b))
    text = [f"{10 ** v:.3g}" for v in vals]
    text[-1] = f"\u2265{text[-1]}" if np.isclose(vals[-1], b) else text[-1]
    text[0] = f"\u2264{text[0]}" if np.isclose(vals[0], a) else text[0]
    return vals, text


def _positions(ids: np.ndarray, wanted: Iterable[int] | None) -> list[int] | None:
    if wanted is None:
        return None
    return [int(i) for i in np.flatnonzero(np.isin(ids, np.fromiter(wanted, dtype=np.int64)))]


def _focus_ok(focus: dict[str, Any] | None) -> bool:
    return focus is not None and bool(np.isfinite([focus.get("x", np.nan), focus.get("y", np.nan)]).all())


def focus_ring(focus: dict[str, Any] | None) -> dict:
    """The focus trace: a ring at ``focus = {"id", "x", "y"}``; no point when None (or not finite),
    so the trace list keeps its shape and a focus change can patch this trace alone. WebGL like
    the instances: an SVG trace would be drawn beneath them."""
    ok = _focus_ok(focus)
    f = focus or {}  # read only when ok, which implies a focus
    return dict(
        type="scattergl", mode="markers",
        x=[float(f["x"])] if ok else [], y=[float(f["y"])] if ok else [],
        marker=dict(symbol="circle-open", size=FOCUS_SIZE, color=FOCUS_COLOR, line=dict(width=2.5)),
        # a lasso fades the points outside it, but never the ring
        selected=dict(marker=dict(opacity=1.0)), unselected=dict(marker=dict(opacity=1.0)),
        hoverinfo="skip", showlegend=False, meta={"role": "focus", "id": int(f["id"]) if ok else None})


def focus_label(focus: dict[str, Any] | None) -> dict:
    """``layout.annotations[0]`` of every map: ``#id`` with a short arrow to the focus (hidden when none)."""
    ok = _focus_ok(focus)
    f = focus or {}  # read only when ok, which implies a focus
    return dict(text=f"#{int(f['id'])}" if ok else "", x=float(f["x"]) if ok else 0.0,
                y=float(f["y"]) if ok else 0.0, xref="x", yref="y", visible=ok, showarrow=True,
                arrowhead=0, arrowwidth=1.2, arrowcolor=FOCUS_COLOR, ax=22, ay=-20, standoff=FOCUS_SIZE / 2,
                font=dict(size=11, color=FOCUS_COLOR), bgcolor="rgba(255,255,255,0.85)", borderpad=1)


def loss_map(df: pd.DataFrame | None, *, color_range: tuple[float, float], focus: dict[str, Any] | None = None,
             brushed: Iterable[int] | None = None, height: int = 270, show_colorbar: bool = False,
             loss_name: str = "loss", uirevision: str = "hard",
             highlight: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
             empty_message: str = "No instances match the filters", note: str = "") -> go.Figure:
    """WebGL map of instances coloured by loss (darker = higher, log scale over ``color_range``).

    ``df`` columns: ``id``, ``x``, ``y``, ``domain`` (``'source'``/``'target'``), ``loss`` and
    optionally ``hover`` (the point's hover text, shown after ``#id``). ``focus`` =
    ``{"id", "x", "y"}`` draws a ring there (trace :data:`FOCUS_TRACE`) and labels it ``#id``
    (``layout.annotations[0]``), even if the filters hide the instance.
    ``brushed`` = instance ids highlighted by a lasso elsewhere (None: no brush; an empty list
    fades all). ``highlight = (ids, x, y)``: the find box's instances, ringed (trace
    :data:`HIGHLIGHT_TRACE`). Always four traces, :data:`TRACE_ORDER` (a domain without rows is an empty
    trace); no rows at all gives ``layout.meta = {"empty": True, "message": ...}`` and the message.
    ``note``: a line in the map's bottom-left corner ("showing k of N ...": the map draws a sample), also
    ``layout.meta["note"]``.
    """
    lo, hi = color_range
    vals, text = _ticks(lo, hi)
    rows = df is not None and len(df) > 0
    if rows and df is not None:  # df spelled out for the type checker
        missing = [c for c in _REQUIRED if c not in df.columns]
        if missing:
            return empty_figure(f"Map lacks column(s): {', '.join(missing)}", height=height)
    traces = _instance_traces(df if rows else None, color_range, brushed) + [focus_ring(focus),
                                                                             highlight_trace(*(highlight or _NONE))]
    layout = dict(
        template=TEMPLATE,
        height=height,
        margin=dict(l=4, r=4, t=4, b=4),
        xaxis=dict(visible=False, showgrid=False),
        yaxis=dict(visible=False, showgrid=False, scaleanchor="x", scaleratio=1),
        coloraxis=dict(colorscale=LOSS_COLORSCALE, cmin=float(np.log10(lo)), cmax=float(np.log10(hi)),
                       showscale=show_colorbar and rows,
                       colorbar=dict(title=dict(text=loss_name, side="right", font=dict(size=10)), thickness=8,
                                     len=0.85, x=1.0, xpad=2, tickvals=vals, ticktext=text,
                                     tickfont=dict(size=9), outlinewidth=0)),
        showlegend=False,
        dragmode="lasso",
        hovermode="closest",
        # zoom, pan and the user's own lasso survive re-renders of the same map
        uirevision=uirevision,
        meta={"empty": not rows, "message": "" if rows else empty_message, "note": note},
    )
    layout["annotations"] = [focus_label(focus)] + ([] if rows else [
        dict(text=empty_message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
             font=dict(size=13, color="#666666"))]) + ([sample_annotation(note)] if note and rows else [])
    # one constructor call, no validation, the template passed in: thousands of points stay cheap
    return go.Figure(data=traces, layout=layout, _validate=False)


_NONE = (np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.float32))


def _instance_traces(df: pd.DataFrame | None, color_range: tuple[float, float],
                     brushed: Iterable[int] | None) -> list[dict]:
    lo, hi = color_range
    if df is None:
        df = pd.DataFrame({c: [] for c in _REQUIRED})
    dom = df["domain"].to_numpy(dtype=object)
    ids = df["id"].to_numpy(dtype=np.int64)
    # float32 halves the base64 payload; map positions and log losses need no more precision
    x, y = df["x"].to_numpy(dtype=np.float32), df["y"].to_numpy(dtype=np.float32)
    color = loss_color(df["loss"].to_numpy(dtype=float), lo, hi).astype(np.float32)
    hover = df["hover"].to_numpy(dtype=object) if "hover" in df.columns else None
    brushed_list = None if brushed is None else list(brushed)
    traces = []
    for domain in TRACE_ORDER[:2]:
        sel = dom == domain
        tr = dict(
            type="scattergl", x=x[sel], y=y[sel], mode="markers", name=domain,
            marker=dict(symbol=DOMAIN_SYMBOLS[domain], size=MARKER_SIZE if domain == "target" else MARKER_SIZE + 1,
                        color=color[sel], coloraxis="coloraxis"),
            # plain ints: dcc.Graph drops typed-array customdata from clickData / selectedData
            customdata=ids[sel].tolist(),
            meta={"role": "instances", "domain": domain},
            # the same look for a brush from the other map and for the user's own lasso here:
            # chosen points larger and opaque, the rest faded
            selected=dict(marker=dict(opacity=1.0, size=SELECTED_SIZE)),
            unselected=dict(marker=dict(opacity=FADED_OPACITY)),
        )
        if hover is not None:
            tr.update(hovertext=hover[sel], hovertemplate="#%{customdata} %{hovertext}<extra></extra>")
        pos = _positions(ids[sel], brushed_list)
        if pos is not None:
            tr["selectedpoints"] = pos
        traces.append(tr)
    return traces


def color_range(cache: Cache, model: str) -> tuple[float, float]:
    """The colour scale of ``model``'s losses (:func:`loss_range` over all instances, whatever
    the filters), once per cache object."""
    return cache.memo(("hard_examples.color_range", model), lambda: loss_range(data.hard_data(cache).loss[model]))


def loss_maps(cache: Cache, model: Any, domain: Any, wrong_only: Any, focus: Any, brush: Any,
              keys: Iterable[str] = data.MAP_KEYS, highlight: Any = None) -> dict[str, go.Figure]:
    """The maps named by ``keys`` (map keys) for the controls, the focus and the brush.

    The brush highlights its ids in the map it did not come from; the map it came from gets no
    ``selectedpoints`` and keeps the user's own lasso (plotly re-applies it to the new points).
    A map the cache lacks says how to get it.
    """
    model, domain, wrong_only = data.selection(model, domain, wrong_only)
    d = data.hard_data(cache)
    visible = data.visible_rows(d, model, domain, wrong_only)
    keep = data.drawn_rows(d, visible, model)  # all, or a sample above dashboard.sampling.MAX_POINTS
    note = sample_note(len(keep), int(visible.sum()))
    brushed = data.brushed_ids(brush)
    frame = pd.DataFrame({"id": d.ids[keep], "domain": d.domain[keep], "loss": d.loss[model][keep],
                          "hover": d.hover[model][keep]})
    figs = {}
    for key in keys:
        xy = d.maps[key]
        if xy is None:
            figs[key] = empty_figure(NO_PIXEL_MAP if key == "pixels" else NO_HIDDEN_MAP, height=MAP_HEIGHT)
            continue
        figs[key] = loss_map(frame.assign(x=xy[keep, 0], y=xy[keep, 1]), color_range=color_range(cache, model),
                             focus=data.focus_point(d, key, focus),
                             brushed=brushed if brushed is not None and brush["source"] != key else None,
                             height=MAP_HEIGHT, show_colorbar=key == "pixels", loss_name=f"{model} model loss",
                             uirevision=f"hard-{key}", highlight=data.highlight_points(d, key, highlight),
                             note=note + (f"<br>incl. the {MAX_POINTS // 10:,} highest losses" if note else ""),
                             empty_message="No instances match the filters" if len(d.ids) else
                             "This cache has no instances")
    return figs
