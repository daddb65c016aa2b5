"""Fine-tuning timeline (issue 6, item 7; seed 004): the map by epoch, accuracy and weight drift.

The map has a FIXED trace structure whatever the epoch, the domain filter and the image
pool, so that scrubbing the epoch slider only has to resend the arrays that move
(``dash.Patch``, see ``callbacks/timeline.py``). :func:`map_epoch_fields` computes those
arrays; :func:`timeline_map` builds the whole figure from the very same fields, so a patched
figure and a freshly built one are identical. Trace order::

    [instance traces: one per (class, domain)] [flip rings] [legend keys] [POOL_SIZE trail slots]

Builders take plain arrays / DataFrames or the view's prepared :class:`TimelineData`, never the cache.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.highlight import highlight_ids, highlight_trace
from dashboard.pool import POOL_SIZE
from dashboard.sampling import sample_annotation
from dashboard.theme import (
    DOMAIN_SYMBOLS,
    MISPREDICTED_COLOR,
    SOURCE_COLOR,
    TARGET_COLOR,
    apply_theme,
    empty_figure,
)
from dashboard.views.timeline.data import MapGroup, TimelineData, domain_filter, trails

__all__ = ["ACC_HEIGHT", "DRIFT_HEIGHT", "FLIP_COLOR", "MAP_HEIGHT", "accuracy_chart", "drift_heatmap", "epoch_column",
           "epoch_line", "highlight_class", "map_epoch_fields", "map_fields", "map_figure", "timeline_map"]

MAP_HEIGHT = 420
ACC_HEIGHT = 236
DRIFT_HEIGHT = 222

FLIP_COLOR = "#000000"  #: ring around an instance whose prediction flipped at the shown epoch
MARKER_SIZE = 6
FLIP_RING_SIZE = 13
TRAIL_COLOR = "#222222"
#: Drift heatmap: white = unchanged (cosine 1), deep purple = most drifted (red and blue mean domains).
DRIFT_COLORSCALE = [[0.0, "#3f007d"], [0.5, "#9e9ac8"], [1.0, "#fcfbfd"]]


def _trail_fields(trail: tuple[int, np.ndarray, str, str, Sequence[str]] | None) -> dict[str, Any]:
    """One trail slot: ``(id, (k, 2) positions over epochs 0..e, class colour, domain, hover texts)``;
    a dark line through markers of the class colour, the last (now) larger and labelled ``#id``."""
    if trail is None:
        return {"x": [], "y": [], "text": [], "hovertext": [], "customdata": [], "marker.size": [],
                "marker.color": TRAIL_COLOR, "marker.symbol": "circle"}
    inst, xy, color, domain, hover = trail
    k = len(xy)
    sizes = [5] * (k - 1) + [11] if k else []
    return {
        "x": [float(v) for v in xy[:, 0]],
        "y": [float(v) for v in xy[:, 1]],
        "text": [""] * (k - 1) + [f"#{inst}"] if k else [],
        "hovertext": list(hover),
        "customdata": [int(inst)] * k,
        "marker.size": sizes,
        "marker.color": color,
        "marker.symbol": DOMAIN_SYMBOLS.get(domain, "circle"),
    }


def map_epoch_fields(
    positions: np.ndarray,
    wrong: np.ndarray,
    flipped: np.ndarray,
    groups: Sequence[MapGroup],
    domain_filter: str,
    trails: Sequence[tuple[int, np.ndarray, str, str, Sequence[str]]],
    n_trail_slots: int,
    show_flips: bool = True,
    highlight: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """Per trace of the map, the fields that depend on the epoch, the domain filter, the pool
    or the rings toggle.

    ``positions`` (N, 2), ``wrong`` and ``flipped`` (N,) bool are the chosen epoch's rows.
    Keys are dotted property paths (``"marker.line.width"``). Legend keys have no entry
    (an empty dict) since they never change. ``show_flips`` False leaves the flip-ring trace
    empty (it stays in place: the trace structure is fixed). ``highlight``: rows (= instance ids) the
    page's find box matched, ringed in the last trace whatever the domain filter.
    """
    out: list[dict[str, Any]] = []
    for g in groups:
        shown = domain_filter in ("both", g.domain)
        border = 1.5 if g.domain == "source" else 2.0
        out.append({
            "x": positions[g.rows, 0],
            "y": positions[g.rows, 1],
            "marker.line.width": np.where(wrong[g.rows], border, 0.0).astype(np.float32),
            "visible": shown,
        })
    keep = flipped.copy()
    if domain_filter in ("source", "target"):
        in_domain = np.zeros(len(keep), dtype=bool)
        for g in groups:
            if g.domain == domain_filter:
                in_domain[g.rows] = True
        keep &= in_domain
    if not show_flips:
        keep[:] = False
    rows = np.flatnonzero(keep)
    out.append({"x": positions[rows, 0], "y": positions[rows, 1]})
    out.extend({} for _ in range(_N_LEGEND_KEYS))
    for k in range(n_trail_slots):
        out.append(_trail_fields(trails[k] if k < len(trails) else None))
    found = np.zeros(0, np.int64) if highlight is None else highlight[(highlight >= 0) & (highlight < len(positions))]
    out.append({"x": positions[found, 0], "y": positions[found, 1], "customdata": found.tolist()})
    return out


_N_LEGEND_KEYS = 4  # source, target, mispredicted, flipped (the class keys follow the trails)


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"marker.line.width": v}`` -> ``{"marker": {"line": {"width": v}}}``."""
    out: dict[str, Any] = {}
    for key, v in flat.items():
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = v
    return out


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = v
    return base


def timeline_map(
    fields: Sequence[dict[str, Any]],
    groups: Sequence[MapGroup],
    class_colors: Mapping[int, str],
    class_names: Mapping[int, str],
    ranges: tuple[list[float], list[float]],
    *,
    height: int = 460,
) -> go.Figure:
    """The map of one epoch from :func:`map_epoch_fields`' output (same order, same length).

    Colour = true class, cross = source, circle = target; dark border = mispredicted at this
    epoch; black ring = prediction flipped at this epoch; trails = the pool's instances'
    paths over epochs 0..e (the last, larger marker is where the instance is now). Instance
    points carry ``customdata = id`` as plain lists (dcc.Graph copies customdata into
    clickData only from plain arrays).
    """
    if not groups:
        return empty_figure("No instances to place on the timeline map", height=height)
    traces: list[dict[str, Any]] = []
    for g in groups:
        traces.append(dict(
            type="scattergl", mode="markers", name=f"{class_names.get(g.label, g.label)} ({g.domain})",
            legendgroup=f"class{g.label}", showlegend=False,
            marker=dict(symbol=DOMAIN_SYMBOLS[g.domain], size=MARKER_SIZE, color=class_colors.get(g.label, "#777"),
                        opacity=0.85, line=dict(color=MISPREDICTED_COLOR)),
            customdata=[int(i) for i in g.rows], hovertext=g.hovertext,
            hovertemplate=(f"<b>#%{{customdata}}</b> \u00b7 true <b>{class_names.get(g.label, g.label)}</b> \u00b7 "
                           f"{g.domain}<br>predicted, epochs {g.epoch_span[0]}\u2192{g.epoch_span[1]}: "
                           "%{hovertext}<extra></extra>"),
            meta={"role": "instances", "label": int(g.label), "domain": g.domain},
        ))
    traces.append(dict(
        type="scattergl", mode="markers", name="prediction flipped at this epoch", showlegend=False,
        marker=dict(symbol="circle-open", size=FLIP_RING_SIZE, color=FLIP_COLOR, line=dict(width=1.5)),
        hoverinfo="skip", meta={"role": "flips"},
    ))
    key = dict(type="scattergl", x=[None], y=[None], mode="markers", hoverinfo="skip", legendgroup="keys")
    traces += [
        {**key, "name": "source (\u00d7)", "marker": dict(symbol=DOMAIN_SYMBOLS["source"], size=8, color=SOURCE_COLOR),
         "meta": {"role": "legend-key"}},
        {**key, "name": "target (\u25cb)", "marker": dict(symbol=DOMAIN_SYMBOLS["target"], size=8, color=TARGET_COLOR),
         "meta": {"role": "legend-key"}},
        {**key, "name": "mispredicted", "marker": dict(symbol="circle", size=8, color="white",
                                                       line=dict(color=MISPREDICTED_COLOR, width=2)),
         "meta": {"role": "legend-key"}},
        {**key, "name": "flipped now", "marker": dict(symbol="circle-open", size=11, color=FLIP_COLOR,
                                                      line=dict(width=1.5)),
         "meta": {"role": "legend-key"}},
    ]
    n_slots = len(fields) - len(groups) - 1 - _N_LEGEND_KEYS - 1  # the find rings come last
    for k in range(n_slots):
        traces.append(dict(
            type="scattergl", mode="lines+markers+text", showlegend=False, name=f"trail {k + 1}",
            line=dict(width=2, color=TRAIL_COLOR), marker=dict(line=dict(color=TRAIL_COLOR, width=1), opacity=1.0),
            textposition="top center", textfont=dict(size=10, color=TRAIL_COLOR),
            hovertemplate="%{hovertext}<extra></extra>", meta={"role": "trail", "slot": k},
        ))
    traces.append(highlight_trace([], [], []))
    for t, f in zip(traces, fields):
        _merge(t, _nest(f))
    # class keys (data-less; clicking one toggles that class's traces through the legend group)
    for lab in sorted({g.label for g in groups}):
        traces.append({**key, "name": str(class_names.get(lab, lab)), "legendgroup": f"class{lab}",
                       "marker": dict(symbol="square", size=9, color=class_colors.get(lab, "#777")),
                       "meta": {"role": "class-key", "label": int(lab)}})
    fig = go.Figure(data=traces, _validate=False)
    xr, yr = ranges
    apply_theme(
        fig, height=height, margin=dict(l=6, r=6, t=6, b=6),
        xaxis=dict(visible=False, showgrid=False, range=xr, autorange=False),
        yaxis=dict(visible=False, showgrid=False, range=yr, autorange=False, scaleanchor="x", scaleratio=1),
        legend=dict(orientation="v", x=1.0, xanchor="left", y=0.92, yanchor="top", font=dict(size=10),
                    itemsizing="constant", tracegroupgap=2),
        hovermode="closest", dragmode="pan",
        uirevision="timeline-map",  # zoom and pan survive epoch changes
    )
    return fig


# --- per-class accuracy by epoch --------------------------------------------------------

def epoch_line(epoch: float) -> dict[str, Any]:
    """The accuracy chart's current-epoch line (``layout.shapes[0]``; patched on scrubbing)."""
    return dict(type="line", x0=epoch, x1=epoch, xref="x", y0=0, y1=1, yref="paper",
                line=dict(color="#555555", width=1.5, dash="dot"))


#: The accuracy chart's highlighted class: its line width; the other classes' opacity.
HIGHLIGHT_WIDTH = 3.5
FADED_OPACITY = 0.22


def highlight_class(value: Any, known: set[int]) -> int | None:
    """The class index to highlight from ``ids.SELECTED_CLASS``'s value, or None (nothing
    selected, not a class index, or a class without a line)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, float)):
        return None
    if isinstance(value, float) and not value.is_integer():
        return None
    return int(value) if int(value) in known else None


def accuracy_empty(acc: pd.DataFrame | None, domain: str, val_only: bool) -> bool:
    """True when :func:`accuracy_chart` draws its empty state (no epoch line to move then)."""
    if acc is None or len(acc) == 0:
        return True
    sub = acc[acc["domain"] == domain]
    return len(sub) == 0 or bool(sub["val_accuracy" if val_only else "accuracy"].isna().all())


def drift_empty(drift: pd.DataFrame | None, epochs: Sequence[int]) -> bool:
    """True when :func:`drift_heatmap` draws its empty state (no epoch frame to move then)."""
    return drift is None or len(drift) == 0 or not len(epochs)


def accuracy_chart(
    acc: pd.DataFrame | None,
    domain: str,
    val_only: bool,
    class_colors: Mapping[int, str],
    class_names: Mapping[int, str],
    epoch: float,
    *,
    height: int = 250,
    highlight: Any = None,
) -> go.Figure:
    """One line per class: accuracy of the target model's predictions by epoch on ``domain``
    (all its instances, or only its validation instances), plus the mean over classes
    (dashed). No legend: the classes keep their colours of the map beside it (and of every view);
    hovering a line names its class. ``layout.shapes[0]`` is the current epoch's vertical line.

    ``highlight``: a class index (the class selected across views) whose line is drawn thick,
    on top, with the others faded (at 31 classes the lines are otherwise one tangle). Each
    point carries its class index as ``customdata``, so a click on a line can select its class."""
    col = "val_accuracy" if val_only else "accuracy"
    if acc is None or len(acc) == 0:
        return empty_figure("This cache has no accuracy by epoch", height=height)
    if accuracy_empty(acc, domain, val_only):
        return empty_figure(f"No {domain}{' validation' if val_only else ''} instances to score", height=height)
    sub = acc[acc["domain"] == domain].sort_values(["class_index", "epoch"])
    known = {int(v) for v in sub["class_index"].unique()}
    hl = highlight_class(highlight, known)
    traces: list[dict[str, Any]] = []
    on_top: list[dict[str, Any]] = []
    for lab, g in sub.groupby("class_index", sort=True):
        y = g[col].to_numpy(dtype=float)
        mine = hl == int(lab)
        trace = dict(
            type="scatter", mode="lines+markers", x=g["epoch"].tolist(),
            y=[None if not np.isfinite(v) else float(v) for v in y],
            name=str(class_names.get(int(lab), lab)),
            line=dict(color=class_colors.get(int(lab), "#777"), width=HIGHLIGHT_WIDTH if mine else 1.5),
            opacity=1.0 if hl is None or mine else FADED_OPACITY,
            showlegend=False, customdata=[int(lab)] * len(g),
            marker=dict(size=7 if mine else 5, symbol=DOMAIN_SYMBOLS.get(domain, "circle")),
            hovertemplate=f"class {class_names.get(int(lab), lab)}<br>epoch %{{x}}: %{{y:.1%}}<extra></extra>",
            meta={"role": "class", "label": int(lab), "highlighted": mine},
        )
        (on_top if mine else traces).append(trace)
    traces += on_top  # drawn last: above the faded lines
    mean = sub.groupby("epoch", sort=True)[col].mean()
    traces.append(dict(type="scatter", mode="lines", x=mean.index.tolist(),
                       y=[None if not np.isfinite(v) else float(v) for v in mean.to_numpy(dtype=float)],
                       name="mean", showlegend=False, line=dict(color="#000000", width=2.5, dash="dash"),
                       hovertemplate="mean over classes<br>epoch %{x}: %{y:.1%}<extra></extra>",
                       meta={"role": "mean"}))
    fig = go.Figure(data=traces, _validate=False)
    epochs = sorted(sub["epoch"].unique().tolist())
    what = "validation instances" if val_only else "all instances"
    picked = f"; bold: {class_names.get(hl, hl)}" if hl is not None else ""
    apply_theme(
        fig, height=height, margin=dict(l=44, r=6, t=26, b=34),
        title=dict(text=f"Per-class accuracy \u00b7 {domain}, {what} (dashed: mean{picked})",
                   font=dict(size=12)),
        xaxis=dict(title=dict(text="epoch (0 = source model)", font=dict(size=11), standoff=4),
                   tickmode="array", tickvals=epochs, range=[min(epochs) - 0.3, max(epochs) + 0.3]),
        yaxis=dict(tickformat=".0%", range=[0, 1.03]),
        shapes=[epoch_line(epoch)], hovermode="closest",
    )
    return fig


# --- per-layer weight drift -------------------------------------------------------------

#: The drift heatmap prints its values only in rows at least this many pixels high.
DRIFT_TEXT_ROW_PX = 13


def drift_heatmap(drift: pd.DataFrame | None, layers: Sequence[str], epochs: Sequence[int], epoch_index: int,
                  *, height: int = 230) -> go.Figure:
    """Layers (rows, first layer on top) x epochs (columns): mean cosine similarity of each
    neuron's incoming weights to the source model's; darker = drifted further from the
    source. ``layout.shapes[0]`` frames the current epoch's column (x = epoch index).

    Rows are named by the short tags ``L3`` (numbered by the layer's place in ``layers``); the
    full module path is in the hover. The values are printed in the cells while a row is tall
    enough for them (sixteen layers are not)."""
    if drift is None or drift_empty(drift, epochs):  # None spelled out for the type checker
        return empty_figure("This cache has no weight drift by epoch", height=height)
    known = [name for name in layers if name in set(drift["layer"])] or sorted(set(drift["layer"]))
    col_of = {int(e): i for i, e in enumerate(epochs)}
    z = np.full((len(known), len(epochs)), np.nan)
    zmin_ = np.full_like(z, np.nan)
    row_of = {name: i for i, name in enumerate(known)}
    r: Any  # the stubs type itertuples' fields as any scalar or NA; the columns are str, int and float
    for r in drift.itertuples(index=False):
        if r.layer in row_of and int(r.epoch) in col_of:
            z[row_of[r.layer], col_of[int(r.epoch)]] = float(r.mean_cos)
            zmin_[row_of[r.layer], col_of[int(r.epoch)]] = float(r.min_cos)
    lo = float(np.nanmin(z)) if np.isfinite(z).any() else 0.0
    lo = min(lo, 0.9999)
    number = {name: i + 1 for i, name in enumerate(layers)}
    labels = [f"L{number[name]}" if name in number else str(name) for name in known]
    margin = dict(l=40 if all(len(x) <= 4 for x in labels) else 112, r=6, t=26, b=34)
    row_px = (height - margin["t"] - margin["b"]) / max(len(known), 1)
    customdata = [[[int(e), None if not np.isfinite(zmin_[r, c]) else float(zmin_[r, c]), name]
                   for c, e in enumerate(epochs)] for r, name in enumerate(known)]
    fig = go.Figure(data=[dict(
        type="heatmap", z=z.tolist(), x=list(range(len(epochs))), y=labels,
        customdata=customdata,
        colorscale=DRIFT_COLORSCALE, zmin=lo, zmax=1.0,
        texttemplate="%{z:.3f}" if row_px >= DRIFT_TEXT_ROW_PX else None, textfont=dict(size=9),
        colorbar=dict(title=dict(text="mean cos", font=dict(size=10)), thickness=10, len=0.9, tickfont=dict(size=9),
                      tickformat=".3f"),
        hovertemplate=("%{y} (%{customdata[2]}), epoch %{customdata[0]}<br>mean cos %{z:.4f}"
                       "<br>min cos %{customdata[1]:.4f}<extra></extra>"),
        xgap=1, ygap=1,
    )], _validate=False)
    apply_theme(
        fig, height=height, margin=margin,
        title=dict(text="Weight drift from the source (cosine of incoming weights)",
                   font=dict(size=12)),
        xaxis=dict(tickmode="array", tickvals=list(range(len(epochs))), ticktext=[str(e) for e in epochs],
                   title=dict(text="epoch", font=dict(size=11), standoff=4), showgrid=False),
        yaxis=dict(autorange="reversed", showgrid=False, tickfont=dict(size=10)),
        shapes=[epoch_column(epoch_index)],
    )
    return fig


def epoch_column(i: int) -> dict[str, Any]:
    """The drift heatmap's current-epoch frame (``layout.shapes[0]``; patched on scrubbing)."""
    return dict(type="rect", x0=i - 0.5, x1=i + 0.5, xref="x", y0=0, y1=1, yref="paper",
                line=dict(color="#000000", width=2), fillcolor="rgba(0,0,0,0)")


def map_fields(td: TimelineData, i: int, domain: str, pool: Any, show_flips: bool = True,
               highlight: Any = None) -> list[dict[str, Any]]:
    flips = td.flips[i] if td.drawn is None else td.flips[i] & td.drawn  # rings only on drawn points
    return map_epoch_fields(td.positions[i], td.wrong[i], flips, td.groups, domain_filter(domain),
                            trails(td, pool, i), POOL_SIZE, show_flips, highlight_ids(highlight))


def map_figure(td: TimelineData, i: int, domain: str, pool: Any, show_flips: bool = True,
               highlight: Any = None) -> go.Figure:
    fig = timeline_map(map_fields(td, i, domain, pool, show_flips, highlight), td.groups, td.class_colors,
                       td.class_names, td.ranges, height=MAP_HEIGHT)
    if td.note:  # the map draws a sample (dashboard.sampling): say so on it
        fig.add_annotation(sample_annotation(td.note))
    return fig
