"""Network relation view (paper section 5.3.3, Figure 4).

Neuron similarity matrices of consecutive layers sit along the diagonal, from the top left
to the bottom right, in a zig-zag: the source/target axes swap from one matrix to the next
(with the default ``first_rows="target"`` matrix 1 has target rows and source columns,
matrix 2 source rows and target columns, ...). The weights of the model whose neurons are
the rows of matrix *i* (and, after the swap, the columns of matrix *i+1*) then fill the
corner to the upper right of the pair, aligned with both matrices; the other model's
weights fill the corner to the lower left. For the layers 1-2 of the paper's Figure 4 (A)
this puts the source weights in the bottom-left corner and the target weights in the
top-right one; the corners alternate from pair to pair.

Every matrix is split into four regions (Figure 4 B): important x important drawn cell by
cell (brightness = similarity, 0 white, 1 black) and the three other regions as histograms
of their similarity values in strips along the right and bottom edges. Every weight block
is split likewise (Figure 4 C): (1) the important weights between important neurons as an
adjacency matrix (brightness = weight value, a red dot where the source model has the
corresponding important weight: target model only); (2)/(3) one boxplot per important
neuron of the important weights joining it to the other layer's non-important neurons,
its thickness by the number of weights, with a pie glyph (target model only) of the share
of those weights without a source correspondence; (4) a histogram of the important weights
between non-important neurons.

Everything lives in one data coordinate space where a cell is one unit square; the figure
grows with the number of important neurons (``cell_px`` pixels per cell) instead of
shrinking cells, so the page scrolls and the mode bar zooms. Neuron indices, cells, boxes
and pies all hover; neuron indices and weight squares are clickable, their ``customdata``
decoded by :func:`parse_click`.

:func:`network_figure` draws it for a class and a layer range of a cache (the blocks come
from :mod:`dashboard.views.network.data`); :func:`relation_matrices` draws given blocks.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go

from dashboard.lookups import Model, valid_class
from dashboard.theme import (
    DOMAIN_COLORS,
    DOMAIN_LIGHT,
    DOMAIN_TINT,
    KERNEL_COLORSCALE,
    NEUTRAL_COLOR,
    SIMILARITY_COLORSCALE,
    SOURCE_COLOR,
    TARGET_COLOR,
    TEMPLATE,
    TEXT_COLOR,
    WEIGHT_COLORSCALE,
    apply_theme,
    empty_figure,
)
from dashboard.views.network.data import (
    Histogram,
    LayerBlock,
    ModelWeights,
    PairBlock,
    layers_from_range,
    link_line,
    network_inputs,
)
from transferviz.cache import Cache
from transferviz.errors import TransferVizError

__all__ = ["kernel_heatmap", "network_figure", "normalise_click", "parse_click", "relation_matrices"]


# =======================================================================================
# The view's figure
# =======================================================================================
def network_figure(cache: Cache, class_index: Any, layer_range: Sequence[Any] | None,
                   hide_nonimportant: bool = False, hide_source: bool = False) -> go.Figure:
    """The relation matrices of the chosen layers for the class (paper Figure 4)."""
    c = valid_class(cache, class_index)
    if c is None:
        return empty_figure("Select a class to see its network relation", height=300)
    layers = layers_from_range(cache, layer_range)
    try:
        blocks, pairs = network_inputs(cache, c, layers)
    except TransferVizError:
        # a partial cache (an analysis stage not run): say so instead of a callback error
        return empty_figure("This cache has no network analysis for these layers "
                            "(rebuild it with 'transferviz build CONFIG')", height=300)
    name = cache.classes[c]
    if all(len(b.tgt_important) == 0 for b in blocks):
        # the cache marks classes without target instances (no ranking is possible)
        return empty_figure(f"Class '{name}' has no target instances: no important neurons to compare",
                            height=300)
    return relation_matrices(blocks, pairs, show_nonimportant=not hide_nonimportant,
                             show_source_weights=not hide_source, class_name=name)


# =======================================================================================
# Layout geometry
# =======================================================================================
_GAP = 0.3  # between the important region and its strip
_PAD = 0.5  # between a weight block and the next matrix's label band


@dataclass
class _Mat:
    block: LayerBlock
    index: int
    row_domain: Model
    col_domain: Model
    rows: np.ndarray  # neuron indices along rows
    cols: np.ndarray
    x0: float
    y0: float
    kr: int
    kc: int
    strip: float

    @property
    def kr_l(self) -> int:
        return max(self.kr, 1)

    @property
    def kc_l(self) -> int:
        return max(self.kc, 1)

    @property
    def w(self) -> float:
        return self.kc_l + (_GAP + self.strip if self.strip else 0.0)

    @property
    def h(self) -> float:
        return self.kr_l + (_GAP + self.strip if self.strip else 0.0)

    @property
    def sx(self) -> float:  # x of the right strip
        return self.x0 + self.kc_l + _GAP

    @property
    def sy(self) -> float:  # y of the bottom strip
        return self.y0 + self.kr_l + _GAP


def _other(d: Model) -> Model:
    return "source" if d == "target" else "target"


def _label_band(blocks: Sequence[LayerBlock]) -> float:
    digits = 1
    for b in blocks:
        for arr in (b.src_important, b.tgt_important):
            if len(arr):
                digits = max(digits, len(str(int(arr.max()))))
    return max(2.0, 0.55 * digits + 0.9)


def _place(blocks: Sequence[LayerBlock], show_nonimp: bool, first_rows: Model, strip: float, band: float) -> list[_Mat]:
    mats: list[_Mat] = []
    x = y = band
    rd: Model = first_rows
    for i, b in enumerate(blocks):
        cd = _other(rd)
        rows, cols = b.important(rd), b.important(cd)
        m = _Mat(b, i, rd, cd, rows, cols, x, y, len(rows), len(cols), strip if show_nonimp else 0.0)
        mats.append(m)
        x += m.w + _PAD + band
        y += m.h + _PAD + band
        rd = cd
    return mats


# =======================================================================================
# Drawing helpers
# =======================================================================================
class _Acc:
    """Collects polygons / segments / hover points in flat None-separated arrays."""

    def __init__(self) -> None:
        self.x: list[float | None] = []
        self.y: list[float | None] = []

    def poly(self, xs: Iterable[float], ys: Iterable[float]) -> None:
        xs, ys = list(xs), list(ys)
        self.x += xs + [xs[0], None]
        self.y += ys + [ys[0], None]

    def rect(self, x0: float, y0: float, x1: float, y1: float) -> None:
        self.poly([x0, x1, x1, x0], [y0, y0, y1, y1])

    def seg(self, x0: float, y0: float, x1: float, y1: float) -> None:
        self.x += [x0, x1, None]
        self.y += [y0, y1, None]

    @property
    def xa(self) -> np.ndarray:
        """x as float32 with NaN gaps (sent base64-encoded; NaN splits segments like None)."""
        return np.array([np.nan if v is None else v for v in self.x], dtype=np.float32)

    @property
    def ya(self) -> np.ndarray:
        return np.array([np.nan if v is None else v for v in self.y], dtype=np.float32)

    def __bool__(self) -> bool:
        return bool(self.x)


def _disc(acc: _Acc, cx: float, cy: float, r: float, n: int = 20) -> None:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    acc.poly(cx + r * np.sin(t), cy - r * np.cos(t))


def _wedge(acc: _Acc, cx: float, cy: float, r: float, share: float, n: int = 20) -> None:
    """Wedge from 12 o'clock clockwise covering ``share`` of the disc (y grows downwards)."""
    if share <= 0:
        return
    if share >= 0.999:
        _disc(acc, cx, cy, r, n)
        return
    steps = max(2, int(math.ceil(n * share)) + 1)
    t = np.linspace(0, 2 * np.pi * share, steps)
    acc.poly([cx] + list(cx + r * np.sin(t)), [cy] + list(cy - r * np.cos(t)))


_KIND_SIMILARITY = 1
_KIND_WEIGHT = 2
_MODEL_CODE = {"source": 0, "target": 1}
_CODE_MODEL = {0: "source", 1: "target"}


def _tr(kind: str, **kw: Any) -> dict:
    """A trace as a plain dict (validated once by the tests, not on every build: speed)."""
    kw["type"] = kind
    return kw


class _Traces:
    """Trace collector: the figure is assembled once, without per-trace validation."""

    def __init__(self) -> None:
        self.data: list[dict] = []

    def add_trace(self, trace: dict) -> None:
        self.data.append(trace)


def _fmt(v: float, digits: int = 3) -> str:
    if v is None or not np.isfinite(v):
        return "–"
    return f"{v:.{digits}f}"


def _lname(b: LayerBlock) -> str:
    return f"L{b.number}"


# =======================================================================================
# The figure
# =======================================================================================
def relation_matrices(
    blocks: Sequence[LayerBlock],
    pairs: Sequence[PairBlock | None],
    show_nonimportant: bool = True,
    show_source_weights: bool = True,
    *,
    first_rows: Model = "target",
    cell_px: int = 16,
    strip: float = 4.0,
    class_name: str | None = None,
) -> go.Figure:
    """The network relation view: zig-zag similarity matrices with weights between them.

    ``blocks`` are the chosen consecutive layers in forward order; ``pairs[i]`` holds the
    weights between ``blocks[i]`` and ``blocks[i+1]`` (``None`` or a missing entry: not
    drawn, with a note). ``show_nonimportant=False`` drops the histogram/boxplot strips
    (regions other than important x important); ``show_source_weights=False`` leaves the
    source model's corner blocks empty (the layout does not move).

    ``first_rows`` names the model whose neurons are the rows of the first matrix; the
    default ``"target"`` reproduces the paper's Figure 4 A (source weights of layers 1-2
    in the bottom-left corner). ``cell_px`` is the pixel size of one cell: the figure's
    ``width``/``height`` follow from it; ``strip`` is the thickness (in cells) of the
    non-important strips.

    (``first_rows="source"`` gives matrix 1 source rows / target columns, which moves the
    layers 1-2 target weights to the bottom-left corner.)

    Trace ``meta`` dicts name every element's role (``"similarity"``, ``"weights"``,
    ``"correspondence"``, ``"neuron-labels"``, ``"similarity-hist"``, ``"weight-boxes"``,
    ``"weight-box-hover"``, ``"pie-with-corr"``, ``"pie-no-corr"``, ``"pie-hover"``,
    ``"weight-hist"``, ``"layer-tag"``, ``"legend-key"``) with its layer(s), model and
    placement; ``layout.meta`` holds ``matrices`` (each matrix's box and row/column
    domains), ``layer_names`` ({number: name}) and ``cell_px``. Neuron indices carry
    ``["neuron", model, layer name, neuron, layer number]``; similarity and weight cells
    compact numeric codes (sent base64-encoded): decode any of them with
    ``parse_click(clickData, fig.layout.meta["layer_names"])``. Hover texts on every cell,
    index, box, pie and histogram bar. ``uirevision`` changes with the layers, class and
    switches, so a new selection resets the zoom while a re-render keeps it.
    """
    blocks = [b for b in (blocks or []) if b is not None]
    if not blocks:
        return empty_figure("No layers selected" + (f" for class '{class_name}'" if class_name else ""), height=300)
    if all(len(b.src_important) == 0 and len(b.tgt_important) == 0 for b in blocks):
        return empty_figure(
            "No important neurons" + (f" for class '{class_name}'" if class_name else "") + " in the selected layers",
            height=300,
        )
    pairs = list(pairs or [])
    band = _label_band(blocks)
    mats = _place(blocks, show_nonimportant, first_rows, strip, band)
    font_px = int(min(12, max(7, round(cell_px * 0.58))))
    fig = _Traces()
    shapes: list[dict] = []
    annotations: list[dict] = []
    x_max = mats[-1].x0 + mats[-1].w
    y_max = mats[-1].y0 + mats[-1].h

    # ---------------- weight colour range (all weights drawn) ----------------
    wvals: list[np.ndarray] = []
    for p in pairs:
        if p is None:
            continue
        for mw in (p.target, p.source if show_source_weights else None):
            if mw is None:
                continue
            wvals.append(mw.values)
            for bx in (mw.boxes_from, mw.boxes_to):
                if bx is not None:
                    wvals += [bx.lower, bx.upper]
    wv = np.concatenate(wvals) if wvals else np.zeros(0)
    wv = wv[np.isfinite(wv)]
    w_lo, w_hi = (float(wv.min()), float(wv.max())) if len(wv) else (0.0, 1.0)
    if w_hi - w_lo < 1e-12:
        w_lo, w_hi = w_lo - 0.5, w_hi + 0.5

    # ---------------- similarity matrices ----------------
    for m in mats:
        _draw_matrix(fig, shapes, annotations, m, band, cell_px, font_px)

    # ---------------- weight blocks ----------------
    unlinked: list[dict[str, str]] = []
    for i in range(len(mats) - 1):
        a, b = mats[i], mats[i + 1]
        p = pairs[i] if i < len(pairs) else None
        if p is not None and not p.linked:
            # no weight matrix joins the two layers: no weight regions, one line saying why, in the
            # upper-right corner where the weights would be (nothing else is drawn in its rows)
            unlinked.append({"from": a.block.name, "to": b.block.name, "reason": p.reason})
            x_max = max(x_max, _draw_no_weights(annotations, p, a, b, cell_px, font_px))
            continue
        # upper-right: rows = matrix i rows (layer i), cols = matrix i+1 cols (layer i+1)
        # lower-left : rows = matrix i+1 rows (layer i+1), cols = matrix i cols (layer i)
        for corner, rows_m, cols_m in (("upper-right", a, b), ("lower-left", b, a)):
            model = rows_m.row_domain
            assert model == cols_m.col_domain
            x0, y0 = cols_m.x0, rows_m.y0
            w, h = cols_m.w, rows_m.h
            label_y = y0 - 0.35 if corner == "upper-right" else y0 + h + 0.35
            title = f"{model} weights {_lname(a.block)}→{_lname(b.block)}"
            if model == "source" and not show_source_weights:
                continue
            mw = p.weights(model) if p is not None else None
            shapes.append(
                dict(type="rect", x0=x0 - 0.1, y0=y0 - 0.1, x1=x0 + w + 0.1, y1=y0 + h + 0.1,
                     line=dict(color=DOMAIN_COLORS[model], width=1), fillcolor=DOMAIN_TINT[model], layer="below")
            )
            annotations.append(
                dict(x=x0, y=label_y, text=f"<b>{title}</b>", showarrow=False, xanchor="left",
                     yanchor="bottom" if corner == "upper-right" else "top",
                     font=dict(size=max(font_px, 10), color=DOMAIN_COLORS[model]))
            )
            if mw is None:
                annotations.append(
                    dict(x=x0 + w / 2, y=y0 + h / 2, text="weights not in the cache", showarrow=False,
                         font=dict(size=font_px + 1, color="#888888"))
                )
                continue
            _draw_weights(fig, annotations, mw, a.block, b.block, rows_m, cols_m, corner, x0, y0,
                          w_lo, w_hi, cell_px, font_px)
        y_max = max(y_max, b.y0 + b.h + 1.6)  # room for the lower-left title

    # ---------------- legend keys ----------------
    _legend_keys(fig, pairs, show_source_weights, show_nonimportant)

    # ---------------- axes and size ----------------
    x_min, y_min = -0.2, -1.0  # room for the first upper-right title
    x_max += 0.4
    width_units, height_units = x_max - x_min, y_max - y_min
    plot_w = int(round(width_units * cell_px))
    # The horizontal legend wraps on narrow figures (two small layers): reserve a line per row,
    # plus one for the title, so neither covers the other. ~7 px per character of an entry.
    n_keys = sum(1 for t in fig.data if (t.get("meta") or {}).get("role") == "legend-key")
    key_px = 7 * 38
    legend_rows = max(1, -(-n_keys * key_px // max(plot_w + 120, 1)))
    top = 24 * legend_rows + (34 if class_name else 10)
    margin = dict(l=8, r=120, t=top, b=8)
    plot_h = int(round(height_units * cell_px))
    bar_len = int(max(60, min(150, (plot_h - 24) / 2)))
    layout: dict[str, Any] = dict(
        width=plot_w + margin["l"] + margin["r"],
        height=plot_h + margin["t"] + margin["b"],
        margin=margin,
        xaxis=dict(visible=False, range=[x_min, x_max], showgrid=False, zeroline=False, constrain="domain"),
        yaxis=dict(visible=False, range=[y_max, y_min], showgrid=False, zeroline=False,
                   scaleanchor="x", scaleratio=1, constrain="domain"),
        shapes=shapes,
        annotations=annotations,
        barmode="overlay",
        hovermode="closest",
        hoverdistance=6,
        dragmode="pan",
        showlegend=True,
        legend=dict(orientation="h", x=0, xanchor="left", y=1.0, yanchor="bottom", font=dict(size=11),
                    itemclick=False, itemdoubleclick=False,
                    tracegroupgap=0),
        coloraxis=dict(
            colorscale=SIMILARITY_COLORSCALE, cmin=0.0, cmax=1.0,
            colorbar=dict(title=dict(text="similarity", side="top", font=dict(size=11)), x=1.0, xanchor="left",
                          xpad=12, y=1.0, yanchor="top", len=bar_len, lenmode="pixels", thickness=10,
                          tickvals=[0, 0.5, 1], tickfont=dict(size=10)),
        ),
        coloraxis2=dict(
            colorscale=WEIGHT_COLORSCALE, cmin=w_lo, cmax=w_hi,
            colorbar=dict(title=dict(text="weight", side="top", font=dict(size=11)), x=1.0, xanchor="left",
                          xpad=12, y=0.0, yanchor="bottom", len=bar_len, lenmode="pixels", thickness=10,
                          tickfont=dict(size=10), nticks=4),
        ),
        meta={
            "kind": "network-relation",
            "first_rows": first_rows,
            "cell_px": cell_px,
            "layers": [b.name for b in blocks],
            "layer_names": {str(b.number): b.name for b in blocks},
            "unlinked": unlinked,
            "matrices": [
                dict(layer=m.block.name, x0=m.x0, y0=m.y0, width=m.w, height=m.h,
                     row_domain=m.row_domain, col_domain=m.col_domain)
                for m in mats
            ],
        },
        uirevision="|".join([class_name or "", *(b.name for b in blocks), first_rows,
                              str(show_nonimportant), str(show_source_weights)]),
    )
    if class_name:
        layout["title"] = dict(text=f"Network relation · class <b>{class_name}</b>", x=0, xanchor="left",
                               xref="container", y=1.0, yanchor="top", yref="container", pad=dict(t=8, l=8),
                               font=dict(size=13))
    out = go.Figure(data=fig.data, layout=layout, _validate=False)
    out.update_layout(template=TEMPLATE)
    return out


def _draw_matrix(
    fig: _Traces, shapes: list, annotations: list, m: _Mat, band: float, cell_px: int, font_px: int
) -> None:
    b = m.block
    ln = _lname(b)
    # important x important cells
    if m.kr and m.kc:
        z = b.similarity if m.row_domain == "source" else b.similarity.T
        rr, cc = np.meshgrid(m.rows, m.cols, indexing="ij")
        src_n, tgt_n = (rr, cc) if m.row_domain == "source" else (cc, rr)
        # numeric customdata (kind code, layer number, source neuron, target neuron): fast to build
        # and sent base64-encoded; decoded by parse_click
        cd = np.stack([np.full_like(rr, _KIND_SIMILARITY), np.full_like(rr, b.number), src_n, tgt_n], axis=-1)
        fig.add_trace(
            _tr("heatmap",
                z=z.astype(np.float32),
                x0=m.x0 + 0.5, dx=1, y0=m.y0 + 0.5, dy=1,
                coloraxis="coloraxis",
                customdata=cd.astype(np.int32 if max(int(m.rows.max()), int(m.cols.max())) > 32000 else np.int16),
                xgap=0.5 if cell_px >= 10 else 0, ygap=0.5 if cell_px >= 10 else 0,
                hovertemplate=(
                    f"{ln} ({b.name})<br>source #%{{customdata[2]}} × target #%{{customdata[3]}}"
                    "<br>similarity %{z:.3f}<extra></extra>"
                ),
                name=f"similarity {ln}",
                showlegend=False,
                meta={"role": "similarity", "layer": b.name, "row_domain": m.row_domain,
                      "col_domain": m.col_domain, "x0": m.x0, "y0": m.y0},
            )
        )
        shapes.append(dict(type="rect", x0=m.x0, y0=m.y0, x1=m.x0 + m.kc, y1=m.y0 + m.kr,
                           line=dict(color="#9e9e9e", width=0.8), layer="above"))
    else:
        annotations.append(dict(x=m.x0 + m.kc_l / 2, y=m.y0 + m.kr_l / 2, text="no important<br>neurons",
                                showarrow=False, font=dict(size=font_px, color="#888888")))

    # strips with similarity histograms
    if m.strip:
        src_rows = m.row_domain == "source"
        right = b.hist_imp_nonimp if src_rows else b.hist_nonimp_imp
        bottom = b.hist_nonimp_imp if src_rows else b.hist_imp_nonimp
        region_name = {
            "right": f"important {m.row_domain} × non-important {m.col_domain}",
            "bottom": f"non-important {m.row_domain} × important {m.col_domain}",
            "corner": "non-important × non-important",
        }
        for where, hist, x0, y0, w, h in (
            ("right", right, m.sx, m.y0, m.strip, m.kr_l),
            ("bottom", bottom, m.x0, m.sy, m.kc_l, m.strip),
            ("corner", b.hist_nonimp_nonimp, m.sx, m.sy, m.strip, m.strip),
        ):
            shapes.append(dict(type="rect", x0=x0, y0=y0, x1=x0 + w, y1=y0 + h,
                               line=dict(color="#d0d0d0", width=0.6), fillcolor="#f7f7f7", layer="below"))
            _hist_bars(fig, hist, x0, y0, w, h, vertical=(where != "right"), color=NEUTRAL_COLOR,
                       label=f"{ln} similarity<br>{region_name[where]}", value_name="similarity",
                       meta={"role": "similarity-hist", "layer": b.name, "region": where})

    # neuron indices: rows on the left, columns on top (staggered in two lines)
    lab_font = dict(size=font_px, family="Roboto Mono, Consolas, monospace")
    for axis, neurons, domain in (("rows", m.rows, m.row_domain), ("cols", m.cols, m.col_domain)):
        if len(neurons) == 0:
            continue
        k = np.arange(len(neurons))
        if axis == "rows":
            xs = np.full(len(neurons), m.x0 - band / 2 - 0.1)
            ys = m.y0 + 0.5 + k
        else:
            xs = m.x0 + 0.5 + k
            ys = np.where(k % 2 == 0, m.y0 - band * 0.3, m.y0 - band * 0.72)
        count = b.n_source if domain == "source" else b.n_target
        fig.add_trace(
            _tr("scatter",
                x=xs, y=ys, mode="markers+text",
                text=[str(int(n)) for n in neurons],
                textposition="middle center",
                textfont=dict(color=DOMAIN_COLORS[domain], **lab_font),
                marker=dict(symbol="square", size=cell_px, color="rgba(0,0,0,0)", line=dict(width=0)),
                customdata=[["neuron", domain, b.name, int(n), b.number] for n in neurons],
                hovertext=[
                    f"{domain} model · {ln} ({b.name})<br>neuron #{int(n)} · importance rank {r + 1}"
                    + (f" of {count}" if count else "") + "<br><i>click for details</i>"
                    for r, n in enumerate(neurons)
                ],
                hovertemplate="%{hovertext}<extra></extra>",
                cliponaxis=False,
                showlegend=False,
                name=f"{domain} neurons {ln}",
                meta={"role": "neuron-labels", "layer": b.name, "axis": axis, "domain": domain},
            )
        )
    # layer tag in the corner between the two label bands
    fig.add_trace(
        _tr("scatter",
            x=[m.x0 - band / 2], y=[m.y0 - band / 2], mode="text", text=[f"<b>{ln}</b>"],
            textfont=dict(size=font_px + 2, color=TEXT_COLOR),
            hovertext=[f"Layer {b.number} ({b.name})<br>rows: {m.row_domain} neurons"
                       f"<br>columns: {m.col_domain} neurons"],
            hovertemplate="%{hovertext}<extra></extra>", showlegend=False, name=f"tag {ln}",
            meta={"role": "layer-tag", "layer": b.name},
        )
    )


def _no_weights_text(p: PairBlock, a: _Mat, b: _Mat) -> tuple[str, str]:
    """``(text, hover)`` of the line an unlinked pair shows instead of its weights."""
    why = link_line(a.block.name, b.block.name, p.reason)
    # plotly reads "<...>" as markup: escape what a module path or reason could hold
    safe = why.replace("&", "&amp;").replace("<", "&lt;")
    text = f"<b>no weights {_lname(a.block)}→{_lname(b.block)}</b> · {safe}"
    hover = (f"{_lname(a.block)} ({a.block.name}) and {_lname(b.block)} ({b.block.name}) are not joined by one "
             "weight matrix,<br>so the paper's weights (Figure 4 C) do not exist between them:<br>" + safe)
    return text, hover


#: Approximate width of one character of the no-weights line, in px per px of font size.
_CHAR_EM = 0.62


def _draw_no_weights(annotations: list, p: PairBlock, a: _Mat, b: _Mat, cell_px: int, font_px: int) -> float:
    """The one-line reason of an unlinked pair, left-aligned in its upper-right corner (the rows of
    matrix ``a``, from the columns of ``b``); returns the x (data units) the line reaches, so the
    figure grows to show it whole rather than clipping it."""
    text, hover = _no_weights_text(p, a, b)
    size = max(font_px + 1, 10)
    x0 = b.x0
    annotations.append(dict(x=x0, y=a.y0 + min(a.h, 3.0) / 2, text=text, hovertext=hover, showarrow=False,
                            xanchor="left", yanchor="middle", align="left", name="no-weights",
                            font=dict(size=size, color="#666666")))
    plain = len(text.replace("<b>", "").replace("</b>", "").replace("&amp;", "&").replace("&lt;", "<"))
    return x0 + plain * _CHAR_EM * size / cell_px + 0.4


def _hist_bars(fig: _Traces, hist: Histogram | None, x0: float, y0: float, w: float, h: float, *,
               vertical: bool, color: str, label: str, value_name: str, meta: dict) -> None:
    """A histogram filling the box (x0, y0, w, h); ``vertical`` bars rise from its bottom edge,
    otherwise bars grow rightwards from its left edge (bins running downwards)."""
    if hist is None or len(hist.counts) == 0 or hist.total == 0:
        return
    n = len(hist.counts)
    rel = hist.counts / max(hist.counts.max(), 1e-12)
    length = (w if vertical else h) / n
    centers = (x0 if vertical else y0) + length * (np.arange(n) + 0.5)
    depth = 0.92 * (h if vertical else w)
    texts = [
        f"{label}<br>{value_name} {_fmt(hist.edges[j], 2)} – {_fmt(hist.edges[j + 1], 2)}: {int(round(hist.counts[j]))}"
        f"<br>total {hist.total}"
        for j in range(n)
    ]
    common = dict(marker=dict(color=color, line=dict(width=0)), width=length * 0.9, hovertext=texts,
                  hovertemplate="%{hovertext}<extra></extra>", showlegend=False, meta=meta)
    if vertical:
        fig.add_trace(_tr("bar", x=centers, y=-rel * depth, base=y0 + h, orientation="v", **common))
    else:
        fig.add_trace(_tr("bar", y=centers, x=rel * depth, base=x0, orientation="h", **common))


def _draw_weights(fig: _Traces, annotations: list, mw: ModelWeights, la: LayerBlock, lb: LayerBlock,
                  rows_m: _Mat, cols_m: _Mat, corner: str, x0: float, y0: float,
                  w_lo: float, w_hi: float, cell_px: int, font_px: int) -> None:
    model = mw.model
    from_rows = corner == "upper-right"  # rows are layer-i ("from") neurons
    rows, cols = rows_m.rows, cols_m.cols
    rpos = {int(n): j for j, n in enumerate(rows)}
    cpos = {int(n): j for j, n in enumerate(cols)}
    la_n, lb_n = _lname(la), _lname(lb)
    meta_base = {"model": model, "layer_from": la.name, "layer_to": lb.name, "corner": corner, "x0": x0, "y0": y0}

    # region 1: adjacency matrix
    kr, kc = rows_m.kr, cols_m.kc
    if kr and kc:
        z = np.full((kr, kc), np.nan)
        group = np.full((kr, kc), -1, dtype=np.int8)  # correspondence code per cell: 1 yes, 0 no, -1 n/a
        cd = np.full((kr, kc, 7), -1, dtype=np.int16)
        dots_x: list[float] = []
        dots_y: list[float] = []
        dots_rc: list[tuple[int, int]] = []  # the dots' cells: they carry the square's customdata
        mcode = _MODEL_CODE[model]
        for idx, (nf, nt, v) in enumerate(zip(mw.rows, mw.cols, mw.values)):
            r, c = (rpos.get(int(nf)), cpos.get(int(nt))) if from_rows else (rpos.get(int(nt)), cpos.get(int(nf)))
            if r is None or c is None:
                continue
            corr = None if mw.has_correspondence is None else bool(mw.has_correspondence[idx])
            code = -1 if corr is None else int(corr)
            z[r, c] = v
            group[r, c] = code
            cd[r, c] = (_KIND_WEIGHT, mcode, la.number, lb.number, int(nf), int(nt), code)
            if corr:
                dots_x.append(x0 + c + 0.5)
                dots_y.append(y0 + r + 0.5)
                dots_rc.append((r, c))
        corr_text = None
        if mw.has_correspondence is not None:
            corr_text = np.where(group == 1, "yes (red dot)", np.where(group == 0, "no", "")).tolist()
        fig.add_trace(
            _tr("heatmap",
                z=z.astype(np.float32), x0=x0 + 0.5, dx=1, y0=y0 + 0.5, dy=1, coloraxis="coloraxis2",
                customdata=cd, hoverongaps=False, text=corr_text,
                xgap=0.5 if cell_px >= 10 else 0, ygap=0.5 if cell_px >= 10 else 0,
                hovertemplate=(
                    f"{model} weight {la_n} #%{{customdata[4]}} → {lb_n} #%{{customdata[5]}}"
                    "<br>value %{z:.4f}<br>source correspondence: "
                    + ("%{text}" if corr_text is not None else "n/a (source model)")
                    + "<br><i>click for the kernel</i><extra></extra>"
                ),
                showlegend=False, name=f"{model} weights {la_n}→{lb_n}",
                meta={"role": "weights", **meta_base},
            )
        )
        if dots_x:
            # the dot sits on top of its square and takes the click (plotly gives it to the
            # topmost trace): it carries the square's customdata, so a click on it opens the same
            # weight details (parse_click reads both alike). As a plain list: dcc.Graph copies a
            # scatter point's customdata into clickData from the figure's data, where a numpy array
            # is a base64 object that it cannot index, and the click would arrive without it.
            rr, cc = np.asarray(dots_rc, dtype=np.intp).T
            fig.add_trace(
                _tr("scatter",
                    x=dots_x, y=dots_y, mode="markers",
                    marker=dict(color=SOURCE_COLOR, size=max(4, cell_px * 0.38), line=dict(width=0)),
                    customdata=cd[rr, cc].tolist(), text=[f"{float(v):.4f}" for v in z[rr, cc]],
                    hovertemplate=(f"{model} weight {la_n} #%{{customdata[4]}} → {lb_n} #%{{customdata[5]}}"
                                   "<br>value %{text}"
                                   "<br>the source model has the corresponding important weight"
                                   "<br><i>click for the kernel</i><extra></extra>"),
                    showlegend=False,
                    name="correspondence", meta={"role": "correspondence", **meta_base},
                )
            )

    # regions 2-4
    strip = rows_m.strip
    if not strip:
        return
    # bottom strip: one vertical box per column neuron; right strip: one horizontal box per row neuron
    col_boxes = mw.boxes_to if from_rows else mw.boxes_from
    row_boxes = mw.boxes_from if from_rows else mw.boxes_to
    col_layer, row_layer = (lb, la) if from_rows else (la, lb)
    rect, lines, hov_x, hov_y, hov_t = _Acc(), _Acc(), [], [], []
    pie_bg, pie_fg = _Acc(), _Acc()
    pie_x, pie_y, pie_t = [], [], []
    counts_max = max(
        [float(np.nanmax(bx.count)) for bx in (col_boxes, row_boxes) if bx is not None and len(bx.count)] + [1.0]
    )
    show_pie = model == "target"
    span = w_hi - w_lo
    sy, sx = y0 + rows_m.kr_l + _GAP, x0 + cols_m.kc_l + _GAP

    for orient, boxes, pos, layer, other in (
        ("v", col_boxes, cpos, col_layer, row_layer),
        ("h", row_boxes, rpos, row_layer, col_layer),
    ):
        if boxes is None:
            continue
        for j, n in enumerate(boxes.neurons):
            p = pos.get(int(n))
            if p is None:
                continue
            cnt = int(boxes.count[j])
            centre_c = (x0 if orient == "v" else y0) + p + 0.5  # across the strip
            # value axis along the strip thickness, after a one-cell pie slot
            v0 = (sy if orient == "v" else sx) + 1.05
            v1 = (sy if orient == "v" else sx) + strip - 0.1

            def at(v: float) -> float:
                t = (v - w_lo) / span
                # vertical boxes: high values upwards (towards region 1); horizontal: rightwards
                return v1 - t * (v1 - v0) if orient == "v" else v0 + t * (v1 - v0)

            share = None if boxes.no_correspondence is None else float(boxes.no_correspondence[j])
            direction = (f"from non-important {_lname(other)} neurons" if layer is lb
                         else f"to non-important {_lname(other)} neurons")
            head = f"{model} model · {_lname(layer)} #{int(n)}<br>important weights {direction}: {cnt}"
            if cnt > 0 and np.isfinite(boxes.median[j]):
                half = 0.5 * (0.18 + 0.72 * cnt / counts_max)
                a_q1, a_q3, a_md = at(boxes.q1[j]), at(boxes.q3[j]), at(boxes.median[j])
                a_lo, a_hi = at(boxes.lower[j]), at(boxes.upper[j])
                if orient == "v":
                    rect.rect(centre_c - half, a_q3, centre_c + half, a_q1)
                    lines.seg(centre_c - half, a_md, centre_c + half, a_md)
                    lines.seg(centre_c, a_lo, centre_c, a_q1)
                    lines.seg(centre_c, a_q3, centre_c, a_hi)
                    hov_x.append(centre_c)
                    hov_y.append((v0 + v1) / 2)
                else:
                    rect.rect(a_q1, centre_c - half, a_q3, centre_c + half)
                    lines.seg(a_md, centre_c - half, a_md, centre_c + half)
                    lines.seg(a_lo, centre_c, a_q1, centre_c)
                    lines.seg(a_q3, centre_c, a_hi, centre_c)
                    hov_x.append((v0 + v1) / 2)
                    hov_y.append(centre_c)
                hov_t.append(
                    f"{head}<br>median {_fmt(boxes.median[j], 4)}"
                    f" (q1 {_fmt(boxes.q1[j], 4)}, q3 {_fmt(boxes.q3[j], 4)})"
                    f"<br>whiskers {_fmt(boxes.lower[j], 4)} – {_fmt(boxes.upper[j], 4)}"
                )
            if show_pie and share is not None and cnt > 0 and np.isfinite(share):
                pc = (centre_c, sy + 0.5) if orient == "v" else (sx + 0.5, centre_c)
                _disc(pie_bg, pc[0], pc[1], 0.4)
                _wedge(pie_fg, pc[0], pc[1], 0.4, share)
                pie_x.append(pc[0])
                pie_y.append(pc[1])
                n_no = int(round(share * cnt))
                pie_t.append(f"{head}<br>without a source correspondence: {n_no} of {cnt} ({share:.0%})"
                             f"<br>with a correspondence: {cnt - n_no}")

    color, light = DOMAIN_COLORS[model], DOMAIN_LIGHT[model]
    if rect:
        fig.add_trace(_tr("scatter", x=rect.xa, y=rect.ya, mode="lines", fill="toself", fillcolor=light,
                                 line=dict(color=color, width=1), hoverinfo="skip", showlegend=False,
                                 name="boxes", meta={"role": "weight-boxes", **meta_base}))
        fig.add_trace(_tr("scatter", x=lines.xa, y=lines.ya, mode="lines", line=dict(color=color, width=1.2),
                                 hoverinfo="skip", showlegend=False, name="box lines",
                                 meta={"role": "weight-box-lines", **meta_base}))
        fig.add_trace(_tr("scatter", x=hov_x, y=hov_y, mode="markers",
                                 marker=dict(size=cell_px, color="rgba(0,0,0,0)", symbol="square"),
                                 hovertext=hov_t, hovertemplate="%{hovertext}<extra></extra>", showlegend=False,
                                 name="box details", meta={"role": "weight-box-hover", **meta_base}))
    if pie_bg:
        fig.add_trace(_tr("scatter", x=pie_bg.xa, y=pie_bg.ya, mode="lines", fill="toself", fillcolor=SOURCE_COLOR,
                                 line=dict(color="white", width=0.5), hoverinfo="skip", showlegend=False,
                                 name="pie: with correspondence", meta={"role": "pie-with-corr", **meta_base}))
        if pie_fg:
            fig.add_trace(_tr("scatter", x=pie_fg.xa, y=pie_fg.ya, mode="lines", fill="toself", fillcolor=TARGET_COLOR,
                                     line=dict(color=TARGET_COLOR, width=0.3), hoverinfo="skip", showlegend=False,
                                     name="pie: without correspondence", meta={"role": "pie-no-corr", **meta_base}))
        fig.add_trace(_tr("scatter", x=pie_x, y=pie_y, mode="markers",
                                 marker=dict(size=cell_px, color="rgba(0,0,0,0)"),
                                 hovertext=pie_t, hovertemplate="%{hovertext}<extra></extra>", showlegend=False,
                                 name="pie details", meta={"role": "pie-hover", **meta_base}))
    # region 4: histogram of the remaining weights
    _hist_bars(fig, mw.hist_rest, sx, sy, strip, strip, vertical=True, color=color,
               label=f"{model} weights {la_n}→{lb_n}<br>between non-important neurons", value_name="weight",
               meta={"role": "weight-hist", **meta_base})


def _legend_keys(fig: _Traces, pairs: Sequence[PairBlock | None], show_source: bool, show_nonimp: bool) -> None:
    def key(name: str, **marker: Any) -> None:
        fig.add_trace(_tr("scatter", x=[None], y=[None], mode="markers", name=name, marker=marker,
                                 hoverinfo="skip", meta={"role": "legend-key"}))

    key("source neuron / model", symbol="square", color=SOURCE_COLOR, size=10)
    key("target neuron / model", symbol="square", color=TARGET_COLOR, size=10)
    if any(p is not None and p.has_weights for p in pairs):
        key("source has the corresponding weight", symbol="circle", color=SOURCE_COLOR, size=7)
        if show_nonimp:
            key("pie: share without correspondence", symbol="circle", color=TARGET_COLOR, size=10,
                line=dict(color=SOURCE_COLOR, width=3))


# =======================================================================================
# Clicks, and the kernel of the weight detail panel
# =======================================================================================
def parse_click(click_data: dict | None, layer_names: Mapping[Any, str] | None = None) -> dict | None:
    """Decode a ``dcc.Graph.clickData`` of :func:`relation_matrices`' figure.

    Returns, for a neuron index::

        {"kind": "neuron", "model": "source"|"target", "layer": <layer name>,
         "neuron": int, "layer_number": int}

    for a weight square (``n1`` is the neuron in layer ``from``, ``n2`` in ``to``)::

        {"kind": "weight", "model", "from", "to", "n1", "n2", "from_number", "to_number",
         "has_correspondence": True | False | None (source model)}

    for a similarity cell::

        {"kind": "similarity", "layer", "layer_number", "source_neuron", "target_neuron"}

    and ``None`` for anything else (histograms, boxes, pies, empty or malformed input).
    Cells carry layer *numbers* (their customdata is numeric, for speed); ``layer_names``
    maps number -> layer name (int or str keys; the figure's ``layout.meta["layer_names"]``
    is such a mapping) and fills ``layer``/``from``/``to``; without it those are
    ``"L<number>"``. A dict customdata with a known ``kind`` is passed through.
    """
    try:
        pts = (click_data or {}).get("points") or []
        if not pts:
            return None
        cd = pts[0].get("customdata")
    except AttributeError:
        return None
    if isinstance(cd, dict):
        return dict(cd) if cd.get("kind") in ("neuron", "weight", "similarity") else None
    if not isinstance(cd, (list, tuple)) or not cd:
        return None

    def name_of(number: int) -> str:
        if layer_names:
            for key in (number, str(number)):
                if key in layer_names:
                    return str(layer_names[key])
        return f"L{number}"

    def as_int(v: Any) -> int:
        f = float(v)
        if not math.isfinite(f):
            raise ValueError("not a number")
        return int(round(f))

    try:
        kind = cd[0]
        if kind == "neuron" and len(cd) >= 4:
            out = {"kind": "neuron", "model": str(cd[1]), "layer": str(cd[2]), "neuron": int(cd[3])}
            if len(cd) >= 5 and cd[4] is not None:
                out["layer_number"] = int(cd[4])
            return out
        if isinstance(kind, str) or kind is None:
            return None
        code = as_int(kind)
        if code == _KIND_WEIGHT and len(cd) >= 7:
            corr = as_int(cd[6])
            f_num, t_num = as_int(cd[2]), as_int(cd[3])
            return {
                "kind": "weight",
                "model": _CODE_MODEL[as_int(cd[1])],
                "from": name_of(f_num),
                "to": name_of(t_num),
                "n1": as_int(cd[4]),
                "n2": as_int(cd[5]),
                "from_number": f_num,
                "to_number": t_num,
                "has_correspondence": True if corr == 1 else (False if corr == 0 else None),
            }
        if code == _KIND_SIMILARITY and len(cd) >= 4:
            num = as_int(cd[1])
            return {"kind": "similarity", "layer": name_of(num), "layer_number": num,
                    "source_neuron": as_int(cd[2]), "target_neuron": as_int(cd[3])}
    except (TypeError, ValueError, KeyError):
        return None
    return None


def normalise_click(click_data: Any) -> Any:
    """The browser's clickData with array-like ``customdata`` turned back into a list.

    The figure's numeric customdata travels base64-encoded (int16); plotly.js decodes it
    into a typed array, and a typed-array row serialises to JSON as ``{"0": .., "1": ..}``,
    which :func:`parse_click` does not read. Only that shape is rewritten.
    """
    try:
        pts = click_data.get("points") or []
        cd = pts[0].get("customdata")
    except (AttributeError, IndexError, TypeError):
        return click_data
    if isinstance(cd, dict) and cd and all(isinstance(k, str) and k.isdigit() for k in cd):
        first = dict(pts[0], customdata=[cd[k] for k in sorted(cd, key=int)])
        return dict(click_data, points=[first, *pts[1:]])
    return click_data


def kernel_heatmap(
    kernel: np.ndarray | None, title: str = "", *, height: int = 220, annotate_max: int = 7
) -> go.Figure:
    """Small heatmap of a weight's kernel for the weight detail panel.

    ``kernel`` is 2-D (kh, kw) for a convolution or a scalar/1-element array for a linear
    weight. Diverging purple-green scale centred on 0 (red and blue stay reserved for the
    domains); values are printed in the cells up to ``annotate_max`` x ``annotate_max``.
    """
    if kernel is None:
        return empty_figure("No kernel for this weight", height=height)
    k = np.asarray(kernel, dtype=float)
    if k.size == 0:
        return empty_figure("No kernel for this weight", height=height)
    if k.ndim == 0:
        k = k.reshape(1, 1)
    elif k.ndim == 1:
        k = k.reshape(1, -1)
    elif k.ndim > 2:
        k = k.reshape(k.shape[-2], k.shape[-1]) if int(np.prod(k.shape[:-2])) == 1 else k.reshape(-1, k.shape[-1])
    m = float(np.nanmax(np.abs(k))) if np.isfinite(k).any() else 1.0
    m = m or 1.0
    small = k.shape[0] <= annotate_max and k.shape[1] <= annotate_max
    fig = go.Figure(
        go.Heatmap(
            z=k,
            colorscale=KERNEL_COLORSCALE,
            zmin=-m, zmax=m, zmid=0,
            xgap=1, ygap=1,
            texttemplate="%{z:.2f}" if small else None,
            textfont=dict(size=10),
            hovertemplate="row %{y}, col %{x}<br>weight %{z:.4f}<extra></extra>",
            colorbar=dict(thickness=8, len=0.9, tickfont=dict(size=9)),
        )
    )
    apply_theme(
        fig,
        height=height,
        title=dict(text=title, font=dict(size=12)) if title else None,
        margin=dict(l=28, r=8, t=30 if title else 8, b=24),
        xaxis=dict(showgrid=False, dtick=1, constrain="domain", ticks=""),
        yaxis=dict(showgrid=False, dtick=1, autorange="reversed", scaleanchor="x", scaleratio=1, ticks=""),
    )
    return fig
