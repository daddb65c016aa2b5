"""The instance grid's row source: one block of rows for a getRowsRequest, filtered and sorted on the server.

The filter box's query (validated by ``filterexpr``) and the grid's column filters become one
boolean mask over :func:`data.table_frame`, the sort model one stable sort; the order of the
whole answer is kept per (box query, filterModel, sortModel) in an :class:`OrderCache`, so the
next block of a scroll is a slice and only the block's rows travel. Each row also says whether
its instance is in the image pool (``pooled``: the tick column) and whether it is the focused
instance (``focused``: the row's highlight), so those follow the pool and the focus with a
refresh of the loaded blocks and no client-side state to keep in step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dashboard.pool import as_ids, focus_id
from dashboard.views.instance_table.boxquery import box_mask
from dashboard.views.instance_table.data import column_specs, frame_kinds, page_rows, table_frame
from dashboard.views.instance_table.filterexpr import FilterError, validate
from dashboard.views.instance_table.gridquery import GridRequestError, OrderCache, column_mask, parse_request, row_order
from transferviz.cache import Cache

__all__ = ["Answer", "answer", "matching_ids"]


@dataclass(frozen=True)
class Answer:
    response: dict[str, Any]  #: getRowsResponse: {"rowData": [...], "rowCount": k}
    count: str                #: the "k of N instances match" line (or the refusal)
    ok: bool


def _orders(cache: Cache) -> OrderCache[np.ndarray]:
    return cache.memo(("instance_table.orders",), OrderCache)


def _box(cache: Cache, box_query: Any) -> str:
    """The box's canonical query, re-validated: the store is client state, a request may carry anything."""
    if box_query is None:
        return ""
    if not isinstance(box_query, str):
        raise FilterError("the filter box's query is not text: type the filter in the box again")
    res = validate(box_query, column_specs(cache))
    if not res.ok:
        raise FilterError(res.message)
    return res.query


def order_for(cache: Cache, request: Any, box_query: Any) -> tuple[np.ndarray, int, int]:
    """``(positions of the whole answer, startRow, endRow)``; raises GridRequestError or FilterError."""
    q = parse_request(request, frame_kinds())
    box = _box(cache, box_query)
    frame = table_frame(cache)

    def compute() -> np.ndarray:
        keep = box_mask(frame, box, column_specs(cache)) & column_mask(frame, q.filter_model)
        return row_order(frame, keep, q.sort_model)

    return _orders(cache).get((box, q.filters, q.sort), compute), q.start, q.end


def answer(cache: Cache, request: Any, box_query: Any, pool: Sequence[Any] | None, focus: Any) -> Answer:
    """The rows of one block (with their ``pooled``/``focused`` flags) and the count line; a refused
    request gets an empty answer (the grid stops waiting) and the reason in the count line."""
    n = len(table_frame(cache))
    try:
        order, start, end = order_for(cache, request, box_query)
    except (GridRequestError, FilterError) as exc:
        msg = str(exc)
        return Answer({"rowData": [], "rowCount": 0}, msg if msg.startswith("Refused") else f"Refused: {msg}", False)
    rows = page_rows(table_frame(cache), order[start:end])
    pooled, fid = set(as_ids(pool)), focus_id(focus, n)
    for r in rows:
        r["pooled"] = r["id"] in pooled
        r["focused"] = r["id"] == fid
    return Answer({"rowData": rows, "rowCount": int(len(order))},
                  f"{len(order):,} of {n:,} instances match", True)


def matching_ids(cache: Cache, request: Any, box_query: Any) -> list[int] | None:
    """Instance ids of the whole answer, in the grid's order (the CSV export); None when refused."""
    req = dict(request) if isinstance(request, dict) else {}
    req.update(startRow=0, endRow=1)  # the block does not matter here, only the models
    try:
        order, _, _ = order_for(cache, req, box_query)
    except (GridRequestError, FilterError):
        return None
    return [int(i) for i in table_frame(cache)["id"].to_numpy()[order]]
