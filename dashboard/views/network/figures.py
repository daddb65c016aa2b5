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
cell (brightness = similarity: 0 white, 1 black on the paper's absolute scale, or relative to
the matrix's own range or deciles) and the three other regions as histograms
of their similarity values in strips along the right and bottom edges. Every weight block
is split likewise (Figure 4 C): (1) the important weights between important neurons as an
adjacency matrix (brightness = weight value, a red dot where the source model has the
corresponding important weight: target model only); (2)/(3) one boxplot per important
neuron of the important weights joining it to the other layer's non-important neurons,
its thickness by the number of weights, with a pie glyph (target model only) of the share
of those weights without a source correspondence; (4) a histogram of the important weights
between non-important neurons.

Everything lives in one data coordinate space where a cell is one unit square. At 4096-unit
layers (410 important neurons a layer, issue 16) the view draws the top neurons by the class's
ranking (``shown``), each matrix and weight block one heatmap trace, and fits the figure to its
card (``fit``: the cells shrink, plotly's zoom and pan show more; where cells are smaller than
the text only every step-th index is printed, and the page prints the others as the user zooms
in); without ``fit`` a cell keeps ``cell_px`` pixels and the figure grows. Neuron indices, cells,
boxes and pies all hover; neuron indices and weight squares are clickable, their ``customdata``
decoded by :func:`parse_click`.

:func:`network_figure` draws it for a class and a layer range of a cache (the blocks come
from :mod:`dashboard.views.network.data`); :func:`relation_matrices` draws given blocks.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

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
from dashboard.urlstate import DEFAULT_SHOWN
from dashboard.views.network.data import (
    CkaMatrix,
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

__all__ = ["COLOR_SCALES", "FIT_PX", "cka_heatmap", "kernel_heatmap", "label_step", "network_figure", "normalise_click",
           "parse_click", "relation_matrices", "similarity_color_axis", "top_neurons"]


# =======================================================================================
# The view's figure
# =======================================================================================
#: The pixels the figure may take: its card's box beside the detail panel at 1366 x 768 (about 380 px
#: wide, at most 78 % of the window high). The cells shrink to fit; plotly's zoom and pan show more.
FIT_PX = (372, 560)


def network_figure(cache: Cache, class_index: Any, layer_range: Sequence[Any] | None,
                   hide_nonimportant: bool = False, hide_source: bool = False, *, shown: int | None = DEFAULT_SHOWN,
                   color_scale: str = "absolute", fit: tuple[int, int] | None = FIT_PX) -> go.Figure:
    """The relation matrices of the chosen layers for the class (paper Figure 4): the top ``shown``
    important neurons of each layer (``None``: all), similarity greys on ``color_scale``
    (:data:`COLOR_SCALES`), fitted to ``fit`` pixels (``None``: 16 px a cell, however large)."""
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
                             show_source_weights=not hide_source, class_name=name, shown=shown,
                             color_scale=color_scale, fit=fit)


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


def _disc(acc: _Acc, cx: float, cy: float, r: float, n: int = 12) -> None:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    acc.poly(cx + r * np.sin(t), cy - r * np.cos(t))


def _wedge(acc: _Acc, cx: float, cy: float, r: float, share: float, n: int = 12) -> None:
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
    cell_px: float = 16,
    strip: float = 4.0,
    class_name: str | None = None,
    shown: int | None = None,
    color_scale: str = "absolute",
    fit: tuple[int, int] | None = None,
) -> go.Figure:
    """The network relation view: zig-zag similarity matrices with weights between them.

    ``blocks`` are the chosen consecutive layers in forward order; ``pairs[i]`` holds the
    weights between ``blocks[i]`` and ``blocks[i+1]`` (``None`` or a missing entry: not
    drawn, with a note). ``show_nonimportant=False`` drops the histogram/boxplot strips
    (regions other than important x important); ``show_source_weights=False`` leaves the
    source model's corner blocks empty (the layout does not move).

    ``shown`` keeps the top ``shown`` important neurons of each layer and model by the class's
    importance rank (``None``: all of them, as the paper; its section 7 suggests the filter for
    large layers); the strips' histograms still summarise every neuron of their regions (all
    important x all non-important, as stored), and the weight colours span the weights drawn.
    ``color_scale`` maps similarity to grey: ``"absolute"`` (0 white, 1 black, as the paper),
    ``"minmax"`` (each matrix from its own minimum to its maximum) or ``"quantile"`` (each
    matrix's deciles spread evenly over the greys); the colour bar's title says which.

    ``first_rows`` names the model whose neurons are the rows of the first matrix; the
    default ``"target"`` reproduces the paper's Figure 4 A (source weights of layers 1-2
    in the bottom-left corner). ``cell_px`` is the pixel size of one cell: the figure's
    ``width``/``height`` follow from it; with ``fit=(width, height)`` the figure takes at most
    that many pixels instead and the cells shrink to fit (at most ``cell_px``; plotly's zoom and
    pan show more); ``strip`` is the thickness (in cells) of the non-important strips.

    (``first_rows="source"`` gives matrix 1 source rows / target columns, which moves the
    layers 1-2 target weights to the bottom-left corner.)

    Trace ``meta`` dicts name every element's role (``"similarity"``, ``"weights"``,
    ``"correspondence"``, ``"neuron-labels"``, ``"similarity-hist"``, ``"weight-boxes"``,
    ``"weight-box-hover"``, ``"pie-with-corr"``, ``"pie-no-corr"``, ``"pie-hover"``,
    ``"weight-hist"``, ``"layer-tag"``, ``"legend-key"``, ``"similarity-scale"``) with its
    layer(s), model and placement; ``layout.meta`` holds ``matrices`` (each matrix's box,
    row/column domains and important-neuron counts), ``layer_names`` ({number: name}),
    ``cell_px``, ``shown`` and ``color_scale``. Neuron indices carry
    ``["neuron", model, layer name, neuron, layer number]``; similarity and weight cells
    compact numeric codes (sent base64-encoded): decode any of them with
    ``parse_click(clickData, fig.layout.meta["layer_names"])``. Hover texts on every cell,
    index, box, pie and histogram bar. ``uirevision`` changes with the layers, class, number
    shown and switches, so a new selection resets the zoom while a re-render keeps it.
    """
    if color_scale not in COLOR_SCALES:
        raise ValueError(f"color_scale must be one of {', '.join(COLOR_SCALES)}, got {color_scale!r}")
    blocks = [b for b in (blocks or []) if b is not None]
    if not blocks:
        return empty_figure("No layers selected" + (f" for class '{class_name}'" if class_name else ""), height=300)
    if all(len(b.src_important) == 0 and len(b.tgt_important) == 0 for b in blocks):
        return empty_figure(
            "No important neurons" + (f" for class '{class_name}'" if class_name else "") + " in the selected layers",
            height=300,
        )
    totals = [(len(b.src_important), len(b.tgt_important)) for b in blocks]
    blocks = [top_neurons(b, shown) for b in blocks]
    pairs = list(pairs or [])
    legend_names = _legend_names(pairs, show_source_weights, show_nonimportant)
    title = _title(class_name, shown, totals)
    if fit is not None:
        cell_px, band = _fit_cells(blocks, show_nonimportant, first_rows, strip, fit, legend_names, title, cell_px)
    else:
        band = _label_band(blocks)
    mats = _place(blocks, show_nonimportant, first_rows, strip, band)
    font_px = _font_px(cell_px)
    fig = _Traces()
    shapes: list[dict] = []
    annotations: list[dict] = []
    x_max = mats[-1].x0 + mats[-1].w
    y_max = mats[-1].y0 + mats[-1].h
    w_lo, w_hi = _weight_range(pairs, blocks, show_source_weights)
    right_edge = x_max + 0.4  # the figure's right edge (data units) before a "no weights" line widens it

    # ---------------- similarity matrices ----------------
    axes: dict[str, dict] = {}
    for m in mats:
        axis = "coloraxis"
        if color_scale != "absolute" and m.kr and m.kc:
            axis = f"coloraxis{m.index + 3}"  # coloraxis2 is the weights'
            axes[axis] = similarity_color_axis(m.block.similarity, color_scale)
        _draw_matrix(fig, shapes, annotations, m, band, cell_px, font_px, axis, totals[m.index])

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
            wtitle = f"{model} weights {_lname(a.block)}→{_lname(b.block)}"
            if model == "source" and not show_source_weights:
                continue
            mw = p.weights(model) if p is not None else None
            shapes.append(
                dict(type="rect", x0=x0 - 0.1, y0=y0 - 0.1, x1=x0 + w + 0.1, y1=y0 + h + 0.1,
                     line=dict(color=DOMAIN_COLORS[model], width=1), fillcolor=DOMAIN_TINT[model], layer="below")
            )
            annotations.append(_block_title(wtitle, f"weights {_lname(a.block)}→{_lname(b.block)}", model, x0, label_y,
                                            corner, max(font_px, 10), cell_px, right_edge))
            if mw is None:
                annotations.append(
                    dict(x=x0 + w / 2, y=y0 + h / 2, text="weights not in the cache", showarrow=False,
                         font=dict(size=font_px + 1, color="#888888"))
                )
                continue
            _draw_weights(fig, annotations, mw, a.block, b.block, rows_m, cols_m, corner, x0, y0,
                          w_lo, w_hi, cell_px, font_px)
        # room for the lower-left title: a text line, whatever the cell size
        y_max = max(y_max, b.y0 + b.h + max(1.6, 0.35 + _TITLE_PX / cell_px))

    # ---------------- legend keys and the similarity scale ----------------
    _legend_keys(fig, legend_names)
    if color_scale != "absolute":
        # the per-matrix scales have no bar of their own: one bar in relative units explains them all
        fig.add_trace(_tr("scatter", x=[None], y=[None], mode="markers", showlegend=False, hoverinfo="skip",
                          marker=dict(color=[0.0], coloraxis="coloraxis"), name="similarity scale",
                          meta={"role": "similarity-scale"}))

    # ---------------- axes and size ----------------
    x_min, y_min = -0.2, -1.0  # room for the first upper-right title
    x_max += 0.4
    width_units, height_units = x_max - x_min, y_max - y_min
    plot_w = int(width_units * cell_px)  # rounded down: a fitted figure never exceeds its pixels
    plot_h = int(height_units * cell_px)
    margin = _margins(plot_w, legend_names, title)
    has_weights = any(t.get("coloraxis") == "coloraxis2" for t in fig.data)
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
        # a box drag zooms into the cells (double click: back); the mode bar switches to panning
        dragmode="zoom",
        showlegend=True,
        # above the plot, wrapping inside the figure's width (the margin reserves its rows)
        legend=dict(orientation="h", x=0, xanchor="left", y=1.0, yanchor="bottom", font=dict(size=_LEGEND_FONT),
                    itemclick=False, itemdoubleclick=False, tracegroupgap=0),
        coloraxis=_similarity_bar(color_scale, half=not has_weights, plot_w=plot_w),
        coloraxis2=dict(
            colorscale=WEIGHT_COLORSCALE, cmin=w_lo, cmax=w_hi,
            colorbar=_bar("weight (min–max of those drawn)", plot_w, right=True, nticks=3),
        ),
        **axes,
        meta={
            "kind": "network-relation",
            "first_rows": first_rows,
            "cell_px": cell_px,
            "x_range": [x_min, x_max],  # cell_px pixels a unit over this range (the page's relabelling)
            "shown": shown,
            "color_scale": color_scale,
            "layers": [b.name for b in blocks],
            "layer_names": {str(b.number): b.name for b in blocks},
            "unlinked": unlinked,
            "matrices": [
                dict(layer=m.block.name, x0=m.x0, y0=m.y0, width=m.w, height=m.h,
                     row_domain=m.row_domain, col_domain=m.col_domain, rows=m.kr, cols=m.kc,
                     important={"source": totals[m.index][0], "target": totals[m.index][1]})
                for m in mats
            ],
        },
        uirevision="|".join([class_name or "", *(b.name for b in blocks), first_rows, str(shown),
                              str(show_nonimportant), str(show_source_weights)]),
    )
    if title:
        layout["title"] = dict(text=title, x=0, xanchor="left", xref="container", y=1.0, yanchor="top",
                               yref="container", pad=dict(t=6 + _MODEBAR_PX, l=6), font=dict(size=_TITLE_FONT))
    out = go.Figure(data=fig.data, layout=layout, _validate=False)
    out.update_layout(template=TEMPLATE)
    return out


# =======================================================================================
# Neurons shown, colour scales, fitting the card
# =======================================================================================
#: The similarity colour scales (``relation_matrices(color_scale=...)``; the URL's ``scale``).
COLOR_SCALES: tuple[str, ...] = ("absolute", "minmax", "quantile")
_SCALE_TITLES = {"absolute": "similarity (absolute, 0–1)", "minmax": "similarity (min–max of each matrix)",
                 "quantile": "similarity (deciles of each matrix)"}
_SCALE_TICKS = {"minmax": ["min", "", "max"], "quantile": ["lowest", "median", "highest"]}
_LEGEND_FONT = 10
_TITLE_FONT = 12
_BAR_PX = 46  # below the plot: a horizontal colour bar with its title and ticks
_MODEBAR_PX = 22  # plotly's mode bar, above the title
_TITLE_PX = 16  # a weight block's title line (10-12 px text)


def _block_title(title: str, short: str, model: str, x0: float, y: float, corner: str, size: int, cell_px: float,
                 right_edge: float) -> dict:
    """A weight block's title annotation, left-aligned on the block: ``title`` where it fits before the
    figure's right edge, else ``short`` (the colour names the model; the hover the whole title),
    right-aligned on that edge if even that is too long."""
    room = (right_edge - x0) * cell_px
    text, anchor, x = title, "left", x0
    if len(title) * _CHAR_EM * size > room:
        text = short
        if len(short) * _CHAR_EM * size > room:
            anchor, x = "right", right_edge
    return dict(x=x, y=y, text=f"<b>{text}</b>", hovertext=title, showarrow=False, xanchor=anchor,
                yanchor="bottom" if corner == "upper-right" else "top",
                font=dict(size=size, color=DOMAIN_COLORS[model]))


def top_neurons(block: LayerBlock, shown: int | None) -> LayerBlock:
    """``block`` with its top ``shown`` important neurons of each model by rank (``None`` or at
    least as many as there are: the block itself). The histograms stay those of the whole regions."""
    if shown is None or shown < 0:
        return block
    if len(block.src_important) <= shown and len(block.tgt_important) <= shown:
        return block
    return replace(block, src_important=block.src_important[:shown], tgt_important=block.tgt_important[:shown],
                   similarity=block.similarity[:shown, :shown])


def similarity_color_axis(values: np.ndarray, mode: str) -> dict:
    """A plotly colour axis mapping one matrix's ``values`` to the similarity greys, relative to the
    matrix: ``"minmax"`` linearly from its minimum (white) to its maximum (black); ``"quantile"``
    with its deciles evenly spread over the greys (a colour-scale stop at each decile, so the hover
    still reads the raw similarity). No bar: the figure's one bar is in relative units."""
    v = np.asarray(values, dtype=float).reshape(-1)
    v = v[np.isfinite(v)]
    lo, hi = (float(v.min()), float(v.max())) if len(v) else (0.0, 1.0)
    if hi - lo < 1e-12:  # a constant matrix: mid grey
        lo, hi = lo - 1e-6, hi + 1e-6
    scale: list[list[Any]] = SIMILARITY_COLORSCALE
    if mode == "quantile" and len(v):
        levels = np.linspace(0.0, 1.0, 11)
        pos = (np.quantile(v, levels) - lo) / (hi - lo)
        greys = sample_colorscale(SIMILARITY_COLORSCALE, list(levels))
        keep = np.r_[True, np.diff(pos) > 1e-9]  # tied deciles: one stop (plotly needs increasing stops)
        scale = [[float(p), g] for p, g, k in zip(pos, greys, keep) if k]
        scale[0][0], scale[-1][0] = 0.0, 1.0
        if len(scale) < 2:
            scale = SIMILARITY_COLORSCALE
    elif mode not in ("minmax", "quantile"):
        raise ValueError(f"relative colour scale must be minmax or quantile, got {mode!r}")
    return dict(colorscale=scale, cmin=lo, cmax=hi, showscale=False)


def _bar(title: str, plot_w: int, right: bool, **kw: Any) -> dict:
    """A horizontal colour bar under the plot, half its width (left: similarity, right: weights)."""
    return dict(title=dict(text=title, side="top", font=dict(size=10)), orientation="h",
                x=1.0 if right else 0.0, xanchor="right" if right else "left", y=0.0, yanchor="top", ypad=4,
                yref="paper", len=max(80, plot_w // 2 - 12), lenmode="pixels", thickness=8,
                tickfont=dict(size=9), **kw)


def _similarity_bar(mode: str, half: bool, plot_w: int) -> dict:
    if mode == "absolute":
        return dict(colorscale=SIMILARITY_COLORSCALE, cmin=0.0, cmax=1.0,
                    colorbar=_bar(_SCALE_TITLES[mode], plot_w, right=False, tickvals=[0, 0.5, 1]))
    return dict(colorscale=SIMILARITY_COLORSCALE, cmin=0.0, cmax=1.0,
                colorbar=_bar(_SCALE_TITLES[mode], plot_w, right=False, tickvals=[0, 0.5, 1],
                              ticktext=_SCALE_TICKS[mode]))


def _weight_range(pairs: Sequence[PairBlock | None], blocks: Sequence[LayerBlock], show_source: bool
                  ) -> tuple[float, float]:
    """Minimum and maximum of the weights drawn (region 1 between shown neurons, the boxes of shown
    neurons): the weight greys span what is on screen, not the neurons filtered out."""
    vals: list[np.ndarray] = []
    for i, p in enumerate(pairs):
        if p is None or i + 1 >= len(blocks):
            continue
        for mw in (p.target, p.source if show_source else None):
            if mw is None:
                continue
            ia, ib = blocks[i].important(mw.model), blocks[i + 1].important(mw.model)
            vals.append(mw.values[np.isin(mw.rows, ia) & np.isin(mw.cols, ib)])
            for bx, shown_n in ((mw.boxes_from, ia), (mw.boxes_to, ib)):
                if bx is not None:
                    sel = np.isin(bx.neurons, shown_n)
                    vals += [bx.lower[sel], bx.upper[sel]]
    v = np.concatenate(vals) if vals else np.zeros(0)
    v = v[np.isfinite(v)]
    lo, hi = (float(v.min()), float(v.max())) if len(v) else (0.0, 1.0)
    return (lo - 0.5, hi + 0.5) if hi - lo < 1e-12 else (lo, hi)


def _title(class_name: str | None, shown: int | None, totals: Sequence[tuple[int, int]]) -> str:
    """The figure's title: the class and, when the filter hides some, how many neurons are shown."""
    if not class_name:
        return ""
    text = f"Network relation · class <b>{class_name}</b>"
    most = max(max(t) for t in totals)
    if shown is not None and most > shown:
        least = min(min(t) for t in totals)
        of = f"{least}–{most}" if least != most else f"{most}"
        text += f"<br><span style='font-size:10px'>top {shown} of {of} important neurons a layer (class ranking)</span>"
    return text


def _legend_rows(names: Sequence[str], width_px: float) -> int:
    """Rows the horizontal legend takes within ``width_px`` (~0.6 em a character, 40 px a symbol):
    plotly wraps an overflowing legend into columns as wide as its widest entry."""
    if not names:
        return 0
    widths = [40 + 0.6 * _LEGEND_FONT * len(n) for n in names]
    if sum(widths) <= width_px:
        return 1
    per_row = max(1, int(width_px // max(widths)))
    return -(-len(names) // per_row)


def _margins(plot_w: int, legend_names: Sequence[str], title: str) -> dict[str, int]:
    lines = title.count("<br>") + 1 if title else 0
    # the title below the mode bar's row (in a figure this narrow the bar would cover it)
    top = 8 + (_MODEBAR_PX + 17 * lines if title else 0) + 20 * _legend_rows(legend_names, plot_w + 16)
    return dict(l=8, r=8, t=top, b=_BAR_PX + 8)


def _font_px(cell_px: float) -> int:
    return int(min(12, max(7, round(cell_px * 0.58))))


def _digits(blocks: Sequence[LayerBlock]) -> int:
    return max([len(str(int(a.max()))) for b in blocks for a in (b.src_important, b.tgt_important) if len(a)] + [1])


def _fit_cells(blocks: Sequence[LayerBlock], show_nonimp: bool, first_rows: Model, strip: float,
               fit: tuple[int, int], legend_names: Sequence[str], title: str, max_cell: float) -> tuple[float, float]:
    """``(cell_px, band)``: the largest cell size (at most ``max_cell``) at which the figure fits in
    ``fit`` pixels, and the label band (data units) that then holds the neuron indices. The bands
    hold text of a fixed pixel size, so they widen (in cells) as the cells shrink: a few rounds."""
    fit_w, fit_h = fit
    margin = _margins(int(fit_w), legend_names, title)

    def cell_for(band: float) -> float:
        mats = _place(blocks, show_nonimp, first_rows, strip, band)
        last = mats[-1]
        units_w = last.x0 + last.w + 0.6
        units_h = last.y0 + last.h + (0.35 if len(mats) > 1 else 0.0) + 1.0
        title_px = _TITLE_PX if len(mats) > 1 else 0  # the lower-left title line (px, whatever the cells)
        cell = min(float(max_cell), (fit_w - margin["l"] - margin["r"]) / units_w,
                   (fit_h - margin["t"] - margin["b"] - title_px) / units_h)
        return max(cell, 0.05)  # all of 4 x 410 neurons: a fifth of a pixel a cell, zoom for more

    band = _label_band(blocks)
    for _ in range(3):
        band = max(_label_band(blocks), (_digits(blocks) * 0.62 * _font_px(cell_for(band)) + 6) / cell_for(band))
    return cell_for(band), band


def _draw_matrix(fig: _Traces, shapes: list, annotations: list, m: _Mat, band: float, cell_px: float, font_px: int,
                 coloraxis: str = "coloraxis", important: tuple[int, int] | None = None) -> None:
    """One similarity matrix, its strips and its indices; ``important``: the layer's numbers of
    important (source, target) neurons before the "neurons shown" filter (the strips count them all)."""
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
                coloraxis=coloraxis,
                customdata=cd.astype(np.int32 if max(int(m.rows.max()), int(m.cols.max())) > 32000 else np.int16),
                xgap=0.5 if cell_px >= 10 else 0, ygap=0.5 if cell_px >= 10 else 0,
                hovertemplate=(
                    f"{ln} ({b.name})<br>source #%{{customdata[2]}} × target #%{{customdata[3]}}"
                    "<br>similarity %{z:.4f}<extra></extra>"
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
        n_imp = dict(zip(("source", "target"), important or (len(b.src_important), len(b.tgt_important))))
        region_name = {
            "right": f"all {n_imp[m.row_domain]} important {m.row_domain} × non-important {m.col_domain}",
            "bottom": f"non-important {m.row_domain} × all {n_imp[m.col_domain]} important {m.col_domain}",
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

    # neuron indices: rows on the left, columns on top (staggered in two lines). Every shown neuron
    # has a hover and click target; where cells are smaller than the text, only every step-th
    # index is printed (zoom in for the others: the printed ones spread apart)
    lab_font = dict(size=font_px, family="Roboto Mono, Consolas, monospace")
    for axis, neurons, domain in (("rows", m.rows, m.row_domain), ("cols", m.cols, m.col_domain)):
        if len(neurons) == 0:
            continue
        k = np.arange(len(neurons))
        digits = len(str(int(neurons.max())))
        step = label_step(cell_px, font_px, digits, axis)
        lines = [m.y0 - band * 0.3, m.y0 - band * 0.72]  # the two staggered lines of column indices
        if axis == "rows":
            xs = np.full(len(neurons), m.x0 - band / 2 - 0.1)
            ys = m.y0 + 0.5 + k
        else:
            xs = m.x0 + 0.5 + k
            ys = np.where((k // step) % 2 == 0, lines[0], lines[1])
        count = b.n_source if domain == "source" else b.n_target
        fig.add_trace(
            _tr("scatter",
                x=xs, y=ys, mode="markers+text",
                # a space, not "", for an index not printed: plotly.js draws no text node for "" and
                # would not add one when a zoom prints it (callbacks.network's relabelling)
                text=[str(int(n)) if j % step == 0 else " " for j, n in enumerate(neurons)],
                textposition="middle center",
                textfont=dict(color=DOMAIN_COLORS[domain], **lab_font),
                marker=dict(symbol="square", size=max(cell_px, 5), color="rgba(0,0,0,0)", line=dict(width=0)),
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
                # step, digits and lines: what the page needs to print more indices as the user zooms in
                # (callbacks.network's clientside relabelling)
                meta={"role": "neuron-labels", "layer": b.name, "axis": axis, "domain": domain, "step": step,
                      "digits": digits, "lines": lines},
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


def label_step(cell_px: float, font_px: int, digits: int, axis: str) -> int:
    """Print every ``step``-th neuron index so that printed ones do not overlap: rows need a text
    line of height each, columns (on two staggered lines) half a label's width each."""
    need = 1.15 * font_px if axis == "rows" else (0.62 * font_px * digits + 2) / 2
    return max(1, int(math.ceil(need / max(cell_px, 1e-6) - 1e-9)))


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


def _draw_no_weights(annotations: list, p: PairBlock, a: _Mat, b: _Mat, cell_px: float, font_px: int) -> float:
    """The one-line reason of an unlinked pair, left-aligned in its upper-right corner (the rows of
    matrix ``a``, from the columns of ``b``); returns the x (data units) the line reaches, so the
    figure grows to show it whole rather than clipping it (a figure fitted to its card too: wider
    than the card, it scrolls, rather than hide the reason)."""
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
                  w_lo: float, w_hi: float, cell_px: float, font_px: int) -> None:
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
        cd = np.full((kr, kc, 7), -1, dtype=np.int32 if max(int(rows.max()), int(cols.max())) > 32000 else np.int16)
        # each weight's cell, vectorised (410 x 410 weights a block at the benchmark scale); weights
        # of neurons not shown (the "neurons shown" filter) have no cell
        r_of, c_of = (mw.rows, mw.cols) if from_rows else (mw.cols, mw.rows)
        r, c = _cell_of(rows, r_of), _cell_of(cols, c_of)
        ok = (r >= 0) & (c >= 0)
        r, c = r[ok], c[ok]
        codes = (np.full(len(r), -1, dtype=np.int64) if mw.has_correspondence is None
                 else mw.has_correspondence[ok].astype(np.int64))
        z[r, c] = mw.values[ok]
        cd[r, c] = np.stack([np.full(len(r), _KIND_WEIGHT), np.full(len(r), _MODEL_CODE[model]),
                             np.full(len(r), la.number), np.full(len(r), lb.number),
                             mw.rows[ok], mw.cols[ok], codes], axis=-1)
        dot = codes == 1
        # plain lists: the page reads the dots' positions from the figure's data (a base64 array
        # stays an encoded object there)
        dots_x = (x0 + c[dot] + 0.5).tolist()
        dots_y = (y0 + r[dot] + 0.5).tolist()
        dots_rc = list(zip(r[dot].tolist(), c[dot].tolist()))  # the dots' cells: they carry the square's customdata
        # no per-cell correspondence text (a string a cell is most of a large block's bytes): the
        # hover says what the red dot means, and the dot's own hover confirms it
        corr_line = ("yes where a red dot is on the square" if mw.has_correspondence is not None
                     else "n/a (source model)")
        fig.add_trace(
            _tr("heatmap",
                z=z.astype(np.float32), x0=x0 + 0.5, dx=1, y0=y0 + 0.5, dy=1, coloraxis="coloraxis2",
                customdata=cd, hoverongaps=False,
                xgap=0.5 if cell_px >= 10 else 0, ygap=0.5 if cell_px >= 10 else 0,
                hovertemplate=(
                    f"{model} weight {la_n} #%{{customdata[4]}} → {lb_n} #%{{customdata[5]}}"
                    f"<br>value %{{z:.4f}}<br>source correspondence: {corr_line}"
                    "<br><i>click for the kernel</i><extra></extra>"
                ),
                showlegend=False, name=f"{model} weights {la_n}→{lb_n}",
                meta={"role": "weights", **meta_base},
            )
        )
        if dots_x:
            # the dot sits on top of its square and takes the click (plotly gives it to the
            # topmost trace): it carries the square's customdata, so a click on it opens the same
            # weight details (parse_click reads both alike). As nested lists in the JSON (an object
            # array: plotly writes it as lists, and go.Figure copies it far faster than Python lists):
            # dcc.Graph copies a scatter point's customdata into clickData from the figure's data,
            # where a numeric array is a base64 object that it cannot index, and the click would
            # arrive without it.
            rr, cc = np.asarray(dots_rc, dtype=np.intp).T
            fig.add_trace(
                _tr("scatter",
                    x=dots_x, y=dots_y, mode="markers",
                    marker=dict(color=SOURCE_COLOR, size=max(4, cell_px * 0.38), line=dict(width=0)),
                    customdata=cd[rr, cc].astype(object), text=np.char.mod("%.4f", z[rr, cc]).astype(object),
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


def _cell_of(shown: np.ndarray, neurons: np.ndarray) -> np.ndarray:
    """Position of each of ``neurons`` among the ``shown`` ones (-1: not shown)."""
    size = max(int(shown.max(initial=-1)), int(neurons.max(initial=-1))) + 1
    lut = np.full(size, -1, dtype=np.int64)
    lut[shown] = np.arange(len(shown))
    return lut[neurons]


_KEY_MARKERS: dict[str, dict[str, Any]] = {
    "source neuron / model": dict(symbol="square", color=SOURCE_COLOR, size=10),
    "target neuron / model": dict(symbol="square", color=TARGET_COLOR, size=10),
    "source has the weight": dict(symbol="circle", color=SOURCE_COLOR, size=7),
    "pie: share not in source": dict(symbol="circle", color=TARGET_COLOR, size=10,
                                              line=dict(color=SOURCE_COLOR, width=3)),
}


def _legend_names(pairs: Sequence[PairBlock | None], show_source: bool, show_nonimp: bool) -> list[str]:
    """The legend's entries: the weight glyphs only where weights are drawn."""
    names = ["source neuron / model", "target neuron / model"]
    if any(p is not None and p.has_weights for p in pairs):
        names.append("source has the weight")
        if show_nonimp:
            names.append("pie: share not in source")
    return names


def _legend_keys(fig: _Traces, names: Sequence[str]) -> None:
    for name in names:
        fig.add_trace(_tr("scatter", x=[None], y=[None], mode="markers", name=name, marker=_KEY_MARKERS[name],
                          hoverinfo="skip", meta={"role": "legend-key"}))


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


_KERNEL_TITLE_PX = 12


def kernel_heatmap(
    kernel: np.ndarray | None, title: str = "", *, height: int = 220, annotate_max: int = 7, width: int = 200
) -> go.Figure:
    """Small heatmap of a weight's kernel for the weight detail panel.

    ``kernel`` is 2-D (kh, kw) for a convolution or a scalar/1-element array for a linear
    weight. Diverging purple-green scale centred on 0 (red and blue stay reserved for the
    domains); values are printed in the cells up to ``annotate_max`` x ``annotate_max``. The
    title wraps at spaces to the graph's ``width`` (px; about the detail panel's at 1366 px) and
    starts at its left edge, so a long layer path is never cut off.
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
    wrapped = "<br>".join(textwrap.wrap(title, max(8, int((width - 8) / (_CHAR_EM * _KERNEL_TITLE_PX))),
                                        break_on_hyphens=False)) if title else ""
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
        title=dict(text=wrapped, font=dict(size=_KERNEL_TITLE_PX), x=0, xanchor="left", xref="container",
                   pad=dict(l=4)) if title else None,
        margin=dict(l=28, r=8, t=(10 + 15 * (wrapped.count("<br>") + 1)) if title else 8, b=24),
        xaxis=dict(showgrid=False, dtick=1, constrain="domain", ticks=""),
        yaxis=dict(showgrid=False, dtick=1, autorange="reversed", scaleanchor="x", scaleratio=1, ticks=""),
    )
    return fig


# =======================================================================================
# Correspondence beside its references (issue 12, item 1)
# =======================================================================================
#: The strip under the matrices: as wide as the matrices' fitted box, short.
CORRESPONDENCE_PX = (FIT_PX[0] + 240, 150)


def correspondence_strip(rows: Any, tags: Sequence[str], matching: str = "best", permutations: int = 200,
                         size: tuple[int, int] = CORRESPONDENCE_PX) -> go.Figure:
    """Per drawn layer pair: the observed correspondence share (target colour), the same-index reference
    (grey) and chance, the permutation null's mean with a whisker to its 95th percentile (light grey).

    Args:
        rows: :func:`dashboard.views.network.data.correspondence_rows` (one row per pair, in order).
        tags: the pairs' short labels (``L1→L2``), one per row.
        matching: the matching the observed share used (``analysis.matching``), for the legend.
        permutations: the null's number of shuffles, for the hover.
        size: ``(width, height)`` in pixels.
    """
    if rows is None or not len(rows):
        return empty_figure("no weight correspondence between the drawn layers", height=size[1], width=size[0])
    share = rows["share"].to_numpy(dtype=float)
    same = rows["same_index_share"].to_numpy(dtype=float)
    mean = rows["null_mean"].to_numpy(dtype=float)
    p95 = rows["null_p95"].to_numpy(dtype=float)
    x = list(tags)
    fig = go.Figure()
    fig.add_trace(go.Bar(x=x, y=share, name=f"observed ({matching.replace('_', '-')} matching)",
                         marker_color=TARGET_COLOR, text=[_fmt(v, 2) for v in share], textposition="outside",
                         cliponaxis=False, hovertemplate="%{x}<br>observed share %{y:.3f}<extra></extra>"))
    fig.add_trace(go.Bar(x=x, y=same, name="same-index reference", marker_color=NEUTRAL_COLOR,
                         text=[_fmt(v, 2) for v in same], textposition="outside", cliponaxis=False,
                         hovertemplate="%{x}<br>share with every neuron matched to its own index %{y:.3f}"
                                       "<extra></extra>"))
    fig.add_trace(go.Bar(x=x, y=mean, name="chance (null mean, whisker: 95th pct.)", marker_color="#d9d9d9",
                         error_y=dict(type="data", symmetric=False, array=np.clip(p95 - mean, 0, None),
                                      arrayminus=np.zeros(len(x)), color=TEXT_COLOR, thickness=1.2, width=4),
                         customdata=p95,
                         hovertemplate=f"%{{x}}<br>{permutations} shuffles of the source neuron labels:"
                                       "<br>mean %{y:.3f}, 95th percentile %{customdata:.3f}<extra></extra>"))
    top = float(np.nanmax(np.concatenate([share, same, p95, [0.05]])))
    apply_theme(fig, barmode="group", bargap=0.25, width=size[0], height=size[1],
                margin=dict(l=40, r=8, t=26, b=24), showlegend=True,
                legend=dict(orientation="h", x=0, y=1.02, yanchor="bottom", font=dict(size=10)),
                yaxis=dict(title=dict(text="share", font=dict(size=10)), range=[0, min(1.05, top * 1.25)],
                           tickfont=dict(size=9)),
                xaxis=dict(tickfont=dict(size=10)), meta={"kind": "network-correspondence"})
    return fig


# =======================================================================================
# Layer-level similarity beside the relation matrices (issue 14, item 4)
# =======================================================================================
#: The CKA heatmap's size: beside the correspondence strip, under the matrices.
CKA_PX = (300, 290)
#: The outline of the diagonal cells (orange: red and blue mean the source and target models).
CKA_DIAGONAL_COLOR = "#ff7f0e"


def cka_heatmap(m: CkaMatrix | None, tags: Sequence[str], titles: Sequence[str],
                size: tuple[int, int] = CKA_PX) -> go.Figure:
    """Layers x layers linear CKA: source model's layers as rows (top: the first), target model's as columns,
    greys from white (0) to black (1) as the similarity matrices; the diagonal (the same layer before and
    after fine-tuning) outlined.

    Args:
        m: :func:`dashboard.views.network.data.cka_matrix` (None: a cache built before the cka stage).
        tags: the layers' short labels (``L1``), one per row/column.
        titles: the layers' hover names (``L1 = features.0 (Conv2d, 16 neurons)``), one per row/column.
        size: ``(width, height)`` in pixels.
    """
    if m is None:
        return empty_figure("no CKA in this cache (built before the cka stage; rebuild to add it)",
                            width=size[0], height=size[1])
    n = len(m.layers)
    v = np.asarray(m.values, dtype=float)[:n, :n]
    hover = [[f"source {titles[i]}<br>target {titles[j]}" for j in range(n)] for i in range(n)]
    fig = go.Figure(go.Heatmap(
        z=v, x=list(range(n)), y=list(range(n)), customdata=hover, zmin=0.0, zmax=1.0,
        colorscale=SIMILARITY_COLORSCALE, text=[[_fmt(x, 2) for x in row] for row in v],
        texttemplate="%{text}" if n <= 10 else None, textfont=dict(size=9), xgap=1, ygap=1,
        colorbar=dict(thickness=8, len=0.9, tickfont=dict(size=9), title=dict(text="CKA", font=dict(size=10))),
        hovertemplate="%{customdata}<br>CKA %{z:.3f}<extra></extra>",
    ))
    shapes = [dict(type="rect", x0=i - 0.5, x1=i + 0.5, y0=i - 0.5, y1=i + 0.5, xref="x", yref="y",
                   line=dict(color=CKA_DIAGONAL_COLOR, width=1.5), fillcolor="rgba(0,0,0,0)") for i in range(n)]
    ticks = dict(tickmode="array", tickvals=list(range(n)), ticktext=list(tags), tickfont=dict(size=9))
    apply_theme(fig, width=size[0], height=size[1], margin=dict(l=52, r=8, t=8, b=40), shapes=shapes,
                xaxis=dict(title=dict(text="target model layer", font=dict(size=10)), showgrid=False, **ticks),
                yaxis=dict(title=dict(text="source model layer", font=dict(size=10)), autorange="reversed",
                           showgrid=False, scaleanchor="x", constrain="domain", **ticks),
                meta={"kind": "network-cka", "domain": m.domain})
    return fig
