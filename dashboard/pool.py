"""The image pool and the focused instance: state shared by the diagnosis and timeline views.

``ids.POOL`` holds the latest selected instance ids (oldest first, at most
:data:`POOL_SIZE`); the instance table's row selection and clicks on the timeline map add
to it, its clear button empties it, and the timeline draws trails for its instances.
``ids.FOCUS`` holds the one instance under inspection: a click on a map, a table row or
a confusion-grid thumbnail sets it; the image query and the hard-example card show it.
"""

from __future__ import annotations

import numbers
from typing import Any, Iterable

POOL_SIZE = 15


def as_ids(values: Iterable[Any] | None) -> list[int]:
    """Non-negative integer ids (ints, numpy ints or digit strings) in first-seen order;
    anything else (floats, booleans, other text) is dropped."""
    out: dict[int, None] = {}
    for v in values or []:
        if isinstance(v, bool):
            continue
        if isinstance(v, str):
            v = v.strip()
            if not (v.isascii() and v.isdigit()):  # '²'.isdigit() is True, int('²') fails
                continue
        elif not isinstance(v, numbers.Integral):
            continue
        i = int(v)
        if i >= 0:
            out.setdefault(i, None)
    return list(out)


def add_to_pool(pool: Iterable[Any] | None, new: Iterable[Any], size: int = POOL_SIZE) -> list[int]:
    """``pool`` with ``new`` appended as the latest (an id already there moves to the end),
    keeping the last ``size``."""
    fresh = as_ids(new)
    kept = [i for i in as_ids(pool) if i not in set(fresh)]
    return (kept + fresh)[-size:] if size > 0 else []


def focus_id(value: Any, n_instances: int) -> int | None:
    """The focused instance id if ``value`` names one of ``n_instances`` instances, else None."""
    ids = as_ids([value])
    return ids[0] if ids and ids[0] < n_instances else None


def clicked_id(triggered: Any, n_clicks: Any, kind: str) -> int | None:
    """The instance id of a clicked pattern-matching component ``{"type": kind, "index": id}``.

    None when the component was merely (re)drawn: new components fire with ``n_clicks`` 0.
    """
    if not isinstance(triggered, dict) or triggered.get("type") != kind or not n_clicks:
        return None
    ids = as_ids([triggered.get("index")])
    return ids[0] if ids else None
