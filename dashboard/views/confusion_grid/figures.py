"""Confusion grid figures (issue 6 item 3): true x predicted counts per model, domain and split.

:func:`confusion_heatmap` draws plain arrays; :func:`grid_figure` is what the grid shows for
a cache and the controls' values. The grid colours each cell by its share of
the true class's row (so small classes read as well as large ones) and prints the count;
correct cells (the diagonal) use a green scale, errors a purple one, so the diagonal
stands out without relying on red/blue, which mean source/target everywhere.

Many classes (Office-31) get a larger grid rather than smaller cells: :func:`grid_size`
grows it with the class count (the layout scrolls it inside a box of :data:`GRID_HEIGHT`), and above
:data:`MAX_TEXT_CLASSES` the tick font shrinks and long names are cut (the hover names
them in full).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from dashboard.theme import CORRECT_COLOR, ERROR_COLOR, GRID_COLOR, empty_figure, fast_figure
from dashboard.views.confusion_grid import data
from transferviz.cache import Cache

__all__ = ["CORRECT_SCALE", "ERROR_SCALE", "GRID_HEIGHT", "MAX_TEXT_CLASSES", "confusion_heatmap", "grid_figure",
           "grid_size", "row_shares", "tick_label"]

#: The grid's box (and the smallest grid): a larger grid scrolls inside it.
GRID_HEIGHT = 300

#: Above this many classes the cells are too small for numbers: counts move to the hover label.
MAX_TEXT_CLASSES = 15
CORRECT_SCALE = [[0.0, "#ffffff"], [1.0, CORRECT_COLOR]]   # white -> green: share of the row predicted right
ERROR_SCALE = [[0.0, "#ffffff"], [1.0, ERROR_COLOR]]       # white -> purple: share of the row mistaken for a class
SELECTED_CELL_COLOR = "#000000"
#: Grid sizing: pixels per class row (readable 8 px ticks) plus room for the axis titles and labels.
PX_PER_CLASS = 14
GRID_FRAME_PX = 60
#: Above :data:`MAX_TEXT_CLASSES` classes tick labels keep this many characters, then "…".
TICK_CHARS = 10


def grid_size(n_classes: int, min_height: int) -> tuple[int, int | None]:
    """``(height, width)`` in px of the grid for ``n_classes``: at least ``min_height`` high,
    growing by :data:`PX_PER_CLASS` a class. ``width`` is ``None`` (fill the card) up to
    :data:`MAX_TEXT_CLASSES` classes; above, the square grid plus its row labels needs about
    its height in width, so it is fixed (the card scrolls instead of squeezing the cells)."""
    height = max(int(min_height), GRID_FRAME_PX + PX_PER_CLASS * max(int(n_classes), 0))
    return height, (height + 10 if n_classes > MAX_TEXT_CLASSES else None)


def tick_label(name: str, max_chars: int = TICK_CHARS) -> str:
    """``name`` cut to ``max_chars`` characters plus "…" when longer."""
    return name if len(name) <= max_chars else name[:max_chars] + "\u2026"


def row_shares(counts: np.ndarray) -> np.ndarray:
    """Each row divided by its sum; an empty row (class absent) stays all zero."""
    counts = np.asarray(counts, dtype=float)
    total = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, total, out=np.zeros_like(counts), where=total > 0)


def confusion_heatmap(counts: np.ndarray, class_names: Sequence[str], *, selected: tuple[int, int] | None = None,
                      height: int = 320, empty_message: str = "No instances in this selection") -> go.Figure:
    """True (rows, top to bottom) x predicted (columns) grid of ``counts``.

    Two heatmap traces share the grid: ``meta.role == "correct"`` holds the diagonal,
    ``"errors"`` the rest (``None`` elsewhere, and gaps are neither hovered nor clicked).
    ``z`` is the row share, ``customdata`` ``[true name, predicted name, count]``, the text the count
    (blank for an empty error cell; no text at all above :data:`MAX_TEXT_CLASSES` classes).
    ``selected`` (true, predicted) is outlined. ``height`` is a minimum: the figure is sized by
    :func:`grid_size`, and above :data:`MAX_TEXT_CLASSES` classes the tick labels are smaller and
    cut by :func:`tick_label` (``customdata``, hence the hover, keeps the full names).
    """
    counts = np.asarray(counts, dtype=np.int64)
    n = counts.shape[0]
    if counts.ndim != 2 or counts.shape[1] != n or n == 0 or counts.sum() == 0:
        return empty_figure(empty_message, height=height)
    height, width = grid_size(n, height)
    share = row_shares(counts)
    row_total = counts.sum(axis=1)
    names = [str(c) for c in class_names][:n] + [str(i) for i in range(len(class_names), n)]
    diag = np.eye(n, dtype=bool)
    true_i, pred_i = np.indices((n, n))
    show_text = n <= MAX_TEXT_CLASSES
    name_arr = np.array(names, dtype=object)
    # hover names the classes (the axes' values are indices, so duplicate names stay apart)
    custom = np.stack([name_arr[true_i], name_arr[pred_i], counts.astype(object)], axis=-1)
    hover = ("true <b>%{customdata[0]}</b> · predicted <b>%{customdata[1]}</b><br>"
             "%{customdata[2]} instance(s), %{z:.0%} of the true class<extra></extra>")
    # the gap of a hidden cell, as the 0-d object array np.where makes of a bare None (which numpy's stubs refuse)
    gap = np.array(None)
    traces = []
    # errors are rare next to the diagonal: their scale tops out at the largest error share of the
    # grid, so the worst confusion is the darkest purple however small (hover gives the exact share)
    err_max = float(share[~diag].max()) if n > 1 else 0.0
    for role, mask, scale, zmax in (("correct", diag, CORRECT_SCALE, 1.0),
                                    ("errors", ~diag, ERROR_SCALE, err_max if err_max > 0 else 1.0)):
        z = np.where(mask, share, gap)
        # a count on every correct cell (0 included: nothing right is news), on error cells only when > 0
        text = np.where(mask & (diag | (counts > 0)), counts.astype(str), "")
        traces.append(dict(
            type="heatmap", z=z.tolist(), x=list(range(n)), y=list(range(n)), zmin=0, zmax=zmax, colorscale=scale,
            showscale=False, hoverongaps=False, xgap=1, ygap=1,
            text=text.tolist() if show_text else None,
            texttemplate="%{text}" if show_text else None,
            textfont=dict(size=11 if n <= 10 else 9),
            customdata=np.where(mask[..., None], custom, gap).tolist(),
            hovertemplate=hover,
            meta={"role": role},
        ))
    shapes = []
    if selected is not None and 0 <= selected[0] < n and 0 <= selected[1] < n:
        t, p = selected
        shapes.append(dict(type="rect", x0=p - 0.5, x1=p + 0.5, y0=t - 0.5, y1=t + 0.5, xref="x", yref="y",
                           line=dict(color=SELECTED_CELL_COLOR, width=2.5)))
    # a class absent from this domain/split: say so on its row label rather than leave a blank row
    ticks_x = names if show_text else [tick_label(nm) for nm in names]
    ticks_y = [f"{t} (0)" if row_total[i] == 0 else t for i, t in enumerate(ticks_x)]
    tick_font = dict(size=10 if show_text else 8)
    layout = dict(
        height=height,
        width=width,
        margin=dict(l=8, r=8, t=4, b=8),
        shapes=shapes,
        xaxis=dict(title=dict(text="predicted", font=dict(size=11), standoff=2), tickmode="array",
                   tickvals=list(range(n)), ticktext=ticks_x, side="top", showgrid=False, ticks="",
                   tickfont=tick_font, constrain="domain", fixedrange=True, automargin=True),
        yaxis=dict(title=dict(text="true", font=dict(size=11), standoff=2), tickmode="array",
                   tickvals=list(range(n)), ticktext=ticks_y, autorange="reversed", showgrid=False, ticks="",
                   tickfont=tick_font, scaleanchor="x", scaleratio=1, constrain="domain", fixedrange=True,
                   automargin=True),
        plot_bgcolor=GRID_COLOR,
        hovermode="closest",
    )
    return fast_figure(traces, layout)


def grid_figure(cache: Cache, model: Any, domain: Any, split: Any, cell: Any = None) -> go.Figure:
    """The grid of the controls' selection (unknown values: the defaults), ``cell`` outlined."""
    model, domain, split = data.selection(model, domain, split)
    counts = data.confusion_counts(cache, model, domain, split)
    where = f"{cache.domains.get(domain, domain)} {'' if split == 'all' else split + ' '}data"
    return confusion_heatmap(counts, cache.classes, selected=data.valid_cell(cell, len(cache.classes)),
                             height=GRID_HEIGHT, empty_message=f"No instances in the {where}")
