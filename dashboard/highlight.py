"""What the page's find box matched, drawn the same way in every map.

The find box (``layouts.ids.FIND``) puts the ids it matched in ``ids.HIGHLIGHT`` (an instance id
or every instance of a class label); each map overlays those of its points with one ring trace
built here, so a found instance looks the same in the instance view, the hard-example maps and
the timeline. The ring trace is separate from the instance traces so that a new search patches
one trace and redraws nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["HIGHLIGHT_COLOR", "HIGHLIGHT_SIZE", "highlight_ids", "highlight_trace"]

HIGHLIGHT_COLOR = "#e6007e"  # magenta: no class palette, loss scale or domain colour uses it
HIGHLIGHT_SIZE = 13


def highlight_ids(value: Any) -> np.ndarray:
    """``ids.HIGHLIGHT``'s ids as an int array (empty for None or anything malformed)."""
    if not isinstance(value, (list, tuple)):
        return np.zeros(0, dtype=np.int64)
    try:
        return np.unique(np.asarray([int(v) for v in value], dtype=np.int64))
    except (TypeError, ValueError):
        return np.zeros(0, dtype=np.int64)


Values = Sequence[float] | np.ndarray


def highlight_trace(ids: Sequence[int] | np.ndarray, x: Values, y: Values, *, webgl: bool = True) -> dict[str, Any]:
    """The ring trace over the points ``ids`` at ``(x, y)`` (empty arrays: an empty trace that keeps
    the figure's trace list in shape). WebGL by default: an SVG trace is drawn beneath WebGL points."""
    ids = np.asarray(ids, dtype=np.int64)
    return dict(
        type="scattergl" if webgl else "scatter", mode="markers", name="found", showlegend=False,
        x=np.asarray(x, dtype=np.float32), y=np.asarray(y, dtype=np.float32),
        customdata=ids.tolist(),  # plain ints: a click on a ring focuses its instance like a click on the point
        marker=dict(symbol="circle-open", size=HIGHLIGHT_SIZE, color=HIGHLIGHT_COLOR, line=dict(width=2.5)),
        # a lasso fades the points outside it, never the rings
        selected=dict(marker=dict(opacity=1.0)), unselected=dict(marker=dict(opacity=1.0)),
        hovertemplate="found #%{customdata}<extra></extra>", meta={"role": "highlight", "count": int(len(ids))},
    )
