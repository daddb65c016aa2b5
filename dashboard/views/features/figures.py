"""Feature view (paper section 5.4.2): ranking-row histograms, the ranking order and the
discriminability biplot, drawn from given values or (:func:`biplot_figure`) from a cache."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.highlight import highlight_ids, highlight_trace
from dashboard.lookups import Model, layer_title, valid_class
from dashboard.lru import LruMemo
from dashboard.theme import (
    DOMAIN_COLORS,
    DOMAIN_SYMBOLS,
    TEXT_COLOR,
    apply_theme,
    empty_figure,
)
from dashboard.views.features.data import attributions, discriminability, empty_message, neuron_key, valid_model
from transferviz.analysis.discriminability import project_attributions
from transferviz.cache import Cache
from transferviz.errors import TransferVizError

__all__ = ["BIPLOT_HEIGHT", "biplot_figure", "discriminability_biplot", "highlight_ring",
           "ring_update", "hovered_instance", "mirrored_histogram", "ranking_rows"]

BIPLOT_HEIGHT = 360
#: Biplot projections on user-checked neurons kept per build (each is two small arrays).
PROJECTION_MEMO = 64


def _clean(values: Any) -> np.ndarray:
    v = np.asarray(values if values is not None else [], dtype=float).reshape(-1)
    return v[np.isfinite(v)]


def mirrored_histogram(
    src_values: Sequence[float] | np.ndarray,
    tgt_values: Sequence[float] | np.ndarray,
    bins: int = 20,
    *,
    normalize: bool = True,
    height: int = 60,
    width: int = 180,
    value_range: tuple[float, float] | None = None,
) -> go.Figure:
    """Tiny mirrored histogram of one neuron's conductance for a ranking-list row.

    Source bars rise above the axis (red), target bars hang below it (blue, drawn as
    negative heights), on shared bins over both domains (or ``value_range``). With
    ``normalize`` each domain's bars are shares of its own instances, so domains of
    different sizes compare. No axes, ticks or legend; a thin zero line; hover gives the
    bin and the counts. Show it with ``config=dashboard.theme.SPARK_CONFIG`` (static) or the default
    config if hover is wanted. Both inputs empty -> an empty-state figure.
    """
    s, t = _clean(src_values), _clean(tgt_values)
    if len(s) == 0 and len(t) == 0:
        return empty_figure("no values", height=height, width=width)
    both = np.concatenate([s, t])
    lo, hi = value_range if value_range is not None else (float(both.min()), float(both.max()))
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, int(bins) + 1)
    cs, _ = np.histogram(s, bins=edges)
    ct, _ = np.histogram(t, bins=edges)
    ys = cs / max(len(s), 1) if normalize else cs.astype(float)
    yt = ct / max(len(t), 1) if normalize else ct.astype(float)
    centers = (edges[:-1] + edges[1:]) / 2
    width_bar = (edges[1] - edges[0])
    rng = [f"{a:.3g} – {b:.3g}" for a, b in zip(edges[:-1], edges[1:])]
    fig = go.Figure()
    for domain, y, c, n in (("source", ys, cs, len(s)), ("target", -yt, ct, len(t))):
        fig.add_trace(
            go.Bar(
                x=centers,
                y=y,
                width=width_bar * 0.92,
                name=domain,
                marker=dict(color=DOMAIN_COLORS[domain], line=dict(width=0)),
                customdata=np.stack([c, np.full(len(c), n)], axis=-1),
                hovertext=rng,
                hovertemplate=(f"{domain}: %{{customdata[0]}} of %{{customdata[1]}}"
                               "<br>conductance %{hovertext}<extra></extra>"),
                meta={"domain": domain},
            )
        )
    m = float(max(ys.max(initial=0), yt.max(initial=0))) or 1.0
    apply_theme(
        fig,
        height=height,
        width=width,
        barmode="overlay",
        bargap=0,
        showlegend=False,
        margin=dict(l=0, r=0, t=0, b=0),
        xaxis=dict(visible=False, range=[lo, hi], fixedrange=True),
        yaxis=dict(visible=False, range=[-m * 1.05, m * 1.05], fixedrange=True),
        shapes=[dict(type="line", xref="paper", x0=0, x1=1, y0=0, y1=0, line=dict(color="#555555", width=0.8))],
        hovermode="closest",
        meta={"kind": "mirrored-histogram"},
    )
    return fig


def discriminability_biplot(
    coords: np.ndarray,
    domains: Sequence[str] | np.ndarray,
    ids: Sequence[Any] | np.ndarray,
    axes: np.ndarray,
    axis_labels: Sequence[str],
    checked: Sequence[int],
    cv_accuracy: float | None = None,
    *,
    height: int = 420,
    max_points: int | None = None,
    axis_hover: Sequence[str] | None = None,
    highlight: Any = None,
    null_mean: float | None = None,
) -> go.Figure:
    """Domain discrimination biplot (paper 5.4.2): instances projected on ``[u, g]``.

    ``coords`` (M, 2): each instance's position, x along the domain classifier's weight
    direction ``u`` (the decision direction, horizontal), y along the orthogonalised first
    principal component ``g``. ``domains`` (M,) ``'source'``/``'target'``: red crosses and
    blue circles. ``ids`` (M,) go to ``customdata`` for thumbnail look-ups on hover.
    ``axes`` (P, 2): row j = neuron j's original axis in the projection (its rows of
    ``W = [u, g]``), ``axis_labels`` (P,) e.g. ``"L3 #12"``; only the ``checked`` indices
    are drawn, as lines from the origin with their label at the tip, all scaled by one
    common factor so the longest fits the point cloud (their horizontal lengths keep
    comparing discriminability). ``axis_hover`` (P,), optional: what an axis label's hover
    names instead of its label (the layer's full module path). ``cv_accuracy``, the domain
    classifier's cross-validated accuracy, is printed in the corner beside ``null_mean``, its
    permutation null. ``max_points`` subsamples each domain evenly. ``highlight``: instance ids
    (the page's find box) ringed by one extra trace drawn right after the instance traces
    (:func:`highlight_ring`; always present, empty when none is in the plot, so a new
    highlight patches that trace alone). Axis labels are annotations pushed apart vertically
    so that they never stack on each other (:func:`_spread_labels`).
    """
    X = np.asarray(coords if coords is not None else np.zeros((0, 2)), dtype=float).reshape(-1, 2)
    if len(X) == 0:
        return empty_figure("No instances for the domain discriminability plot", height=height)
    dom = np.asarray(domains).astype(str).reshape(-1)
    idv = np.asarray(ids).reshape(-1)
    if len(dom) != len(X) or len(idv) != len(X):
        raise ValueError("coords, domains and ids must have the same length")
    A = np.asarray(axes if axes is not None else np.zeros((0, 2)), dtype=float).reshape(-1, 2)
    labels = list(axis_labels) if axis_labels is not None else []

    fig = go.Figure()
    for domain in ("source", "target"):
        sel = np.flatnonzero(dom == domain)
        if max_points and len(sel) > max_points:
            sel = sel[np.linspace(0, len(sel) - 1, max_points).astype(int)]
        if len(sel) == 0:
            continue
        fig.add_trace(
            go.Scattergl(
                x=X[sel, 0],
                y=X[sel, 1],
                mode="markers",
                name=domain,
                marker=dict(
                    symbol=DOMAIN_SYMBOLS[domain],
                    color=DOMAIN_COLORS[domain],
                    size=7 if domain == "source" else 6,
                    opacity=0.55,
                    line=dict(width=0),
                ),
                customdata=idv[sel],
                hovertemplate=f"{domain} instance %{{customdata}}<br>u %{{x:.3f}}, g %{{y:.3f}}<extra></extra>",
                meta={"role": "instances", "domain": domain},
            )
        )

    fig.add_trace(highlight_ring(X, idv, highlight))

    finite = X[np.isfinite(X).all(axis=1)]
    x_ext = float(np.abs(finite[:, 0]).max()) if len(finite) else 1.0
    y_ext = float(np.abs(finite[:, 1]).max()) if len(finite) else 1.0
    chk = [int(j) for j in (checked or []) if 0 <= int(j) < len(A) and np.isfinite(A[int(j)]).all()]
    annotations: list[dict] = []
    if chk:
        V = A[chk]
        # one common factor: the longest axis spans 90% of the cloud (per-direction extents)
        with np.errstate(divide="ignore", invalid="ignore"):
            need = np.max(np.abs(V) / np.array([max(x_ext, 1e-12), max(y_ext, 1e-12)]), axis=1)
        scale = 0.9 / float(need.max()) if need.max() > 0 else 1.0
        V = V * scale
        lx: list[float | None] = []
        ly: list[float | None] = []
        for (vx, vy) in V:
            lx += [0.0, vx, None]
            ly += [0.0, vy, None]
        names = [labels[j] if j < len(labels) else f"#{j}" for j in chk]
        hover = [axis_hover[j] if axis_hover is not None and j < len(axis_hover) else name
                 for j, name in zip(chk, names)]
        fig.add_trace(
            go.Scatter(
                x=lx, y=ly, mode="lines", line=dict(color=TEXT_COLOR, width=1.6),
                hoverinfo="skip", showlegend=False, name="neuron axes", meta={"role": "axes-lines"},
            )
        )
        # the tips carry the hover; the labels are annotations, spread so that none covers another
        annotations += _spread_labels(V, names, (x_ext * X_PAD or 1.0, y_ext * 1.12 or 1.0), height)
        fig.add_trace(
            go.Scatter(
                x=V[:, 0], y=V[:, 1], mode="markers", text=names,
                marker=dict(size=5, color=TEXT_COLOR),
                customdata=np.stack([A[chk, 0], A[chk, 1]], axis=-1),
                hovertext=hover,
                hovertemplate="%{hovertext}<br>discriminability u = %{customdata[0]:.3f}<br>"
                              "g loading %{customdata[1]:.3f}<extra></extra>",
                showlegend=False, name="neuron axis labels", meta={"role": "axes-labels", "checked": chk},
                cliponaxis=False,
            )
        )
    if cv_accuracy is not None and np.isfinite(cv_accuracy):
        null = f" (null {null_mean:.0%})" if null_mean is not None and np.isfinite(null_mean) else ""
        annotations.append(
            dict(text=f"domain classifier: {cv_accuracy:.0%} CV accuracy{null}", x=1, y=0, xref="paper",
                 yref="paper",
                 xanchor="right", yanchor="bottom", showarrow=False, font=dict(size=11, color="#555555"),
                 bgcolor="rgba(255,255,255,0.7)")
        )
    pad_x, pad_y = x_ext * X_PAD or 1.0, y_ext * 1.12 or 1.0
    apply_theme(
        fig,
        height=height,
        # short titles: the card is ~330 px wide and the plot ~280 px high at 1366 x 768; the legend sits
        # above the plot (its own margin), never over the points or under the axis titles
        margin=dict(l=44, r=10, t=46, b=40),  # top: the legend's row under the modebar's
        xaxis=dict(title=dict(text="decision direction u: ← source · target →", standoff=4), range=[-pad_x, pad_x],
                   zeroline=True, zerolinecolor="#9e9e9e", zerolinewidth=1, automargin=True),
        yaxis=dict(title=dict(text="1st PC g (⊥ u)", standoff=2), range=[-pad_y, pad_y],
                   zeroline=True, zerolinecolor="#9e9e9e", zerolinewidth=1, automargin=True),
        legend=dict(orientation="h", x=0, y=1, yanchor="bottom", xanchor="left", bgcolor="rgba(255,255,255,0)",
                    font=dict(size=11)),
        annotations=annotations,
        hovermode="closest",
        uirevision="biplot",
        meta={"kind": "discriminability-biplot"},
    )
    return fig


def highlight_ring(coords: np.ndarray, ids: np.ndarray, highlight: Any) -> go.Scattergl:
    """The find box's ring overlay (:func:`dashboard.highlight.highlight_trace`, as in every map of the
    page) around each ``highlight`` id found in ``ids`` (rows of ``coords``); an empty trace when none is."""
    sel = np.flatnonzero(np.isin(np.asarray(ids).astype(np.int64), highlight_ids(highlight)))
    trace = highlight_trace(np.asarray(ids)[sel], coords[sel, 0], coords[sel, 1])
    trace["showlegend"] = bool(len(sel))
    return go.Scattergl(trace)


#: Half the horizontal range over the cloud's extent: room beyond the longest axis (90 % of the extent)
#: for its label (~50 px of a ~280 px wide plot), which would otherwise run off the figure.
X_PAD = 1.45
#: Vertical room a neuron axis label needs (px, at font size 11) before the next one may sit beside it.
LABEL_PX = 14


def _spread_labels(tips: np.ndarray, names: Sequence[str], half_range: tuple[float, float],
                   height: int) -> list[dict]:
    """Annotations naming the axis ``tips`` (data coordinates), each moved up or down (with a leader
    line back to its tip) until no two labels on the same side of the origin are closer than
    ``LABEL_PX`` vertically: five nearly parallel neurons would otherwise print on top of each other."""
    plot_px = max(height - 86, 60)  # the plot area: the figure less its top and bottom margins
    px_per_y = plot_px / (2 * half_range[1])
    out: list[dict] = []
    for side in (1, -1):
        idx = [i for i in range(len(tips)) if (tips[i, 0] >= 0) == (side == 1)]
        idx.sort(key=lambda i: -tips[i, 1])  # top to bottom
        placed: list[float] = []
        for i in idx:
            y_px = -tips[i, 1] * px_per_y  # screen pixels, down is positive
            if placed and y_px < placed[-1] + LABEL_PX:
                y_px = placed[-1] + LABEL_PX
            placed.append(y_px)
            ay = y_px + tips[i, 1] * px_per_y
            out.append(dict(
                x=float(tips[i, 0]), y=float(tips[i, 1]), xref="x", yref="y", text=names[i],
                showarrow=True, arrowhead=0, arrowwidth=0.8, arrowcolor="#9e9e9e", standoff=2,
                ax=12 * side, ay=float(ay), xanchor="left" if side == 1 else "right",
                font=dict(size=11, color=TEXT_COLOR), bgcolor="rgba(255,255,255,0.6)",
                name=f"axis label {names[i]}",
            ))
    return out


def _projection(cache: Cache, m: Model, c: int, checked: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """``(coords, axes, rows)``: the class's instances projected on the ``checked`` neurons (rows of the
    ranking table, in ``rows``) as the paper's section 5.4.2 says; memoized per build, class, model and
    checks (a find-box highlight or a hover reuses it). No valid check: the build's projection on every
    neuron (``rows`` empty)."""
    def compute() -> tuple[np.ndarray, np.ndarray, list[int]]:
        d = discriminability(cache, m, c)
        n = d.neurons
        pos = {neuron_key(layer, k): i for i, (layer, k) in enumerate(zip(n["layer"], n["neuron"]))}
        rows = list(dict.fromkeys(pos[k] for k in checked if k in pos))
        if not rows:
            return d.points[["x", "y"]].to_numpy(dtype=float), n[["axis_x", "axis_y"]].to_numpy(dtype=float), []
        try:
            a = attributions(cache, m, d.points["id"].to_numpy(), n.iloc[rows])
        except TransferVizError:  # a partial cache without conductance: the build's projection
            return d.points[["x", "y"]].to_numpy(dtype=float), n[["axis_x", "axis_y"]].to_numpy(dtype=float), []
        coords, axes = project_attributions(a, n["discriminability"].to_numpy(dtype=float)[rows])
        return coords.astype(float), axes.astype(float), rows
    # keyed by what the user checked, so unbounded in number: the newest PROJECTION_MEMO are kept (issue 15,
    # a worker's memory must not grow with every check a long session makes)
    memo: LruMemo[tuple[np.ndarray, np.ndarray, list[int]]] = cache.memo(("features.projections",), LruMemo)
    return memo.get((str(m), c, checked), compute, size=PROJECTION_MEMO)


def biplot_figure(cache: Cache, class_index: Any, model: Any, checked: Sequence[str] | None,
                  highlight: Any = None) -> go.Figure:
    """The class's domain discrimination biplot for ``model`` with an axis per ``checked``
    neuron (``"layer:index"`` keys), or an empty state that says why there is none."""
    c = valid_class(cache, class_index)
    m = valid_model(model)
    if c is None:
        return empty_figure(empty_message(cache, None, None), height=BIPLOT_HEIGHT)
    d = discriminability(cache, m, c)
    if not d.ok:
        return empty_figure(empty_message(cache, c, d), height=BIPLOT_HEIGHT)
    n = d.neurons
    coords, axes, rows = _projection(cache, m, c, tuple(checked or ()))
    labels = [f"L{num} #{k}" for num, k in zip(n["layer_number"], n["neuron"])]
    hover = [f"{label}<br>{layer_title(cache, str(layer))}" for label, layer in zip(labels, n["layer"])]
    if rows:  # the projection on the checked neurons: one axis each
        labels, hover = [labels[i] for i in rows], [hover[i] for i in rows]
    fig = discriminability_biplot(
        coords, d.points["domain"].to_numpy(), d.points["id"].to_numpy(), axes, labels,
        list(range(len(rows))), d.cv_accuracy, height=BIPLOT_HEIGHT, axis_hover=hover, highlight=highlight,
        null_mean=d.null_mean,
    )
    if not rows:
        fig.add_annotation(text=f"no neuron checked: projected on all {len(n)}", x=0, y=0, xref="paper",
                           yref="paper", xanchor="left", yanchor="bottom", showarrow=False,
                           font=dict(size=11, color="#555555"), bgcolor="rgba(255,255,255,0.7)")
    # a new class or model resets the zoom (one property: no re-validation of the layout)
    fig.layout.uirevision = f"biplot|{m}|{c}"
    for t in fig.data:
        if isinstance(t.meta, dict) and t.meta.get("role") == "instances":
            # the thumbnail tooltip replaces plotly's label (it repeats u and g); hover events still fire
            t.hoverinfo, t.hovertemplate = "none", None
    return fig


def ring_update(cache: Cache, class_index: Any, model: Any, checked: Sequence[str] | None,
                highlight: Any) -> tuple[int, dict[str, Any]] | None:
    """``(trace index, properties)`` that turn :func:`biplot_figure`'s ring trace into the rings of
    ``highlight``, without redrawing the rest; None when the figure is an empty state."""
    c = valid_class(cache, class_index)
    if c is None:
        return None
    m = valid_model(model)
    d = discriminability(cache, m, c)
    if not d.ok:
        return None
    coords, _, _ = _projection(cache, m, c, tuple(checked or ()))
    ring = highlight_ring(coords, d.points["id"].to_numpy(), highlight)
    dom = d.points["domain"].astype(str)
    index = sum(bool((dom == x).any()) for x in ("source", "target"))  # after the instance traces, one a domain
    return index, {"x": np.asarray(ring.x, dtype=float).tolist(), "y": np.asarray(ring.y, dtype=float).tolist(),
                   "customdata": [int(i) for i in (ring.customdata if ring.customdata is not None else [])],
                   "showlegend": ring.showlegend, "meta": ring.meta}


def hovered_instance(cache: Cache, hover_data: dict | None, class_index: Any, model: Any) -> int | None:
    """The instance id under the mouse in :func:`biplot_figure`, or ``None`` (an axis label, nothing).

    Dash drops ``customdata`` from the hover events of WebGL traces, so the id is found from
    the trace and point numbers: :func:`discriminability_biplot` draws the source then the
    target instances (a domain without points has no trace), in ``points`` order, before
    the neuron axes.
    """
    pts = (hover_data or {}).get("points") or []
    if not pts:
        return None
    p = pts[0]
    cd = p.get("customdata")
    if cd is not None and not isinstance(cd, (list, dict, bool)):
        try:
            return int(cd)
        except (TypeError, ValueError):
            return None
    if cd is not None:
        return None  # a neuron axis label carries [u, g]
    c = valid_class(cache, class_index)
    if c is None:
        return None
    d = discriminability(cache, valid_model(model), c)
    if not d.ok:
        return None
    dom = d.points["domain"].to_numpy().astype(str)
    order = [x for x in ("source", "target") if (dom == x).any()]
    try:
        curve, point = int(p.get("curveNumber")), int(p.get("pointNumber"))
    except (TypeError, ValueError):
        return None
    if not 0 <= curve < len(order):
        return None
    ids = d.points["id"].to_numpy()[dom == order[curve]]
    return int(ids[point]) if 0 <= point < len(ids) else None


def ranking_rows(
    table: pd.DataFrame,
    conductance_src: Sequence[np.ndarray] | None = None,
    conductance_tgt: Sequence[np.ndarray] | None = None,
    *,
    order: str = "descending",
    top_checked: int = 5,
    bins: int = 20,
) -> list[dict[str, Any]]:
    """Rows of the feature ranking list, in display order.

    ``table`` has columns ``layer``, ``neuron`` and ``discriminability`` (one row per
    neuron of Algorithm 1, in the same order as ``conductance_src``/``conductance_tgt``,
    its conductance values over the source and target instances). ``order``:
    ``"descending"`` (most discriminative first: largest ``|u|``) or ``"ascending"``.
    Returns dicts with ``index`` (the row in ``table``, i.e. the column of W), ``layer``,
    ``neuron``, ``discriminability``, ``label`` (``"L? #n"`` style, from a ``layer_number``
    column when present), ``checked`` (the first ``top_checked`` rows), ``histogram``
    (a :func:`mirrored_histogram` figure, or ``None`` without conductance values) and ``stability``
    (the bootstrap stability from a ``stability`` column; ``None`` without one or where it is NaN).
    """
    if table is None or len(table) == 0:
        return []
    u = pd.to_numeric(table["discriminability"], errors="coerce").to_numpy(dtype=float)
    key = np.nan_to_num(np.abs(u), nan=-np.inf if order == "descending" else np.inf)
    idx = np.argsort(-key if order == "descending" else key, kind="stable")
    # whole columns, not a row look-up per neuron: a list of 938 neurons is sorted on every switch
    layers = table["layer"].astype(str).to_numpy()
    neurons = table["neuron"].to_numpy(dtype=np.int64)
    nums = table["layer_number"].to_numpy(dtype=object) if "layer_number" in table.columns else [None] * len(table)
    stab = (pd.to_numeric(table["stability"], errors="coerce").to_numpy(dtype=float) if "stability" in table.columns
            else np.full(len(table), np.nan))
    rows = []
    for rank, i in enumerate(idx.tolist()):
        num = nums[i]
        prefix = f"L{int(num)}" if num is not None and pd.notna(num) else layers[i]
        hist = None
        if conductance_src is not None and conductance_tgt is not None:
            hist = mirrored_histogram(conductance_src[i], conductance_tgt[i], bins=bins)
        rows.append(dict(index=i, layer=layers[i], neuron=int(neurons[i]), discriminability=float(u[i]),
                         label=f"{prefix} #{int(neurons[i])}", checked=rank < top_checked, histogram=hist,
                         stability=float(stab[i]) if np.isfinite(stab[i]) else None))
    return rows
