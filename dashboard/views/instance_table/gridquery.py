"""The instance grid's server side: AG Grid's ``filterModel``/``sortModel`` checked and run in pandas.

dash-ag-grid's infinite row model asks for rows block by block (``getRowsRequest``:
``startRow``, ``endRow``, ``sortModel``, ``filterModel``); :func:`parse_request` checks
that dict against the grid's column definitions (anything else is refused with a one-line
:class:`GridRequestError`, never a 500), and :func:`row_order` turns the box query and the
column filters into one boolean mask over the table's frame, then one stable multi-column
sort, giving the row positions of the whole answer. The orders of the last few queries are
kept (:class:`OrderCache`) so scrolling through a 100k-row answer only slices.

The AG Grid models understood (community filters, AG Grid 33-35)::

    filterModel = {colId: {"filterType": "text", "type": "contains", "filter": "ab"}
                   | {"filterType": "number", "type": "inRange", "filter": 1, "filterTo": 2}
                   | {"filterType": ..., "operator": "AND" | "OR", "conditions": [cond, ...]}}
    sortModel   = [{"colId": "target_loss", "sort": "desc"}, ...]   (first = primary key)

Text filters ignore case (AG Grid's default, ``caseSensitive`` is not set on the columns).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dashboard.lru import LruMemo

__all__ = ["MAX_BLOCK", "GridQuery", "GridRequestError", "OrderCache", "column_mask", "parse_request", "row_order"]

#: The largest block a request may ask for (the grid asks for ``cacheBlockSize`` rows).
MAX_BLOCK = 1000
_MAX_TEXT = 200
_MAX_CONDITIONS = 4
_TEXT_TYPES = ("equals", "notEqual", "contains", "notContains", "startsWith", "endsWith", "blank", "notBlank")
_NUMBER_TYPES = ("equals", "notEqual", "lessThan", "lessThanOrEqual", "greaterThan", "greaterThanOrEqual",
                 "inRange", "blank", "notBlank")
_NO_VALUE = ("blank", "notBlank")


class GridRequestError(ValueError):
    """A getRowsRequest the server refuses; the message names the problem (one line)."""


@dataclass(frozen=True)
class GridQuery:
    """A checked request: the block, and the models as canonical JSON (hashable, for the cache)."""

    start: int
    end: int
    filters: str  # json of the filterModel, keys sorted
    sort: str     # json of the sortModel

    @property
    def filter_model(self) -> dict[str, Any]:
        return dict(json.loads(self.filters))

    @property
    def sort_model(self) -> list[dict[str, str]]:
        return list(json.loads(self.sort))


def _condition(col: str, kind: str, cond: Any) -> dict[str, Any]:
    where = f"the filter of column {col!r}"
    if not isinstance(cond, Mapping):
        raise GridRequestError(f"{where} is not an object: send AG Grid's filterModel unchanged")
    ftype = cond.get("filterType", kind)
    if ftype != kind:
        raise GridRequestError(f"{where} is a {ftype!r} filter but the column holds {kind}: use a {kind} filter")
    op = cond.get("type")
    allowed = _TEXT_TYPES if kind == "text" else _NUMBER_TYPES
    if op not in allowed:
        raise GridRequestError(f"{where} has type {op!r}; allowed: {', '.join(allowed)}")
    out: dict[str, Any] = {"filterType": kind, "type": op}
    if op in _NO_VALUE:
        return out
    for key in ("filter", "filterTo") if op == "inRange" else ("filter",):
        v = cond.get(key)
        if kind == "text":
            if not isinstance(v, str) or len(v) > _MAX_TEXT:
                raise GridRequestError(f"{where}: '{key}' must be text of at most {_MAX_TEXT} characters")
        elif isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise GridRequestError(f"{where}: '{key}' must be a finite number")
        out[key] = v
    return out


def _column_filter(col: str, kind: str, model: Any) -> dict[str, Any]:
    if isinstance(model, Mapping) and "conditions" in model:
        conds, op = model.get("conditions"), model.get("operator", "AND")
        if op not in ("AND", "OR"):
            raise GridRequestError(f"the filter of column {col!r} joins with {op!r}: use AND or OR")
        if not isinstance(conds, list) or not 1 <= len(conds) <= _MAX_CONDITIONS:
            raise GridRequestError(f"the filter of column {col!r} needs 1 to {_MAX_CONDITIONS} conditions")
        return {"filterType": kind, "operator": op, "conditions": [_condition(col, kind, c) for c in conds]}
    return _condition(col, kind, model)


def parse_request(request: Any, kinds: Mapping[str, str]) -> GridQuery:
    """Checks a ``getRowsRequest`` against the columns (``{colId: "text" | "number"}``)."""
    if not isinstance(request, Mapping):
        raise GridRequestError("the row request is not an object: send the grid's getRowsRequest")
    start, end = request.get("startRow", 0), request.get("endRow", 100)
    if (isinstance(start, bool) or isinstance(end, bool) or not isinstance(start, int) or not isinstance(end, int)
            or start < 0 or not start < end <= start + MAX_BLOCK):
        raise GridRequestError(f"rows {start!r} to {end!r} are not a block: 0 <= startRow < endRow, "
                               f"at most {MAX_BLOCK} rows")
    fm = request.get("filterModel") or {}
    if not isinstance(fm, Mapping):
        raise GridRequestError("the filterModel is not an object: send AG Grid's filterModel unchanged")
    filters = {}
    for col, model in fm.items():
        if col not in kinds:
            raise GridRequestError(f"no column {str(col)[:40]!r} to filter; columns: {', '.join(kinds)}")
        filters[col] = _column_filter(col, kinds[col], model)
    sm = request.get("sortModel") or []
    if not isinstance(sm, list) or len(sm) > len(kinds):
        raise GridRequestError("the sortModel is not a list of {colId, sort}: send AG Grid's sortModel unchanged")
    sort = []
    for item in sm:
        if not isinstance(item, Mapping) or item.get("colId") not in kinds or item.get("sort") not in ("asc", "desc"):
            raise GridRequestError(f"cannot sort by {str(item)[:60]}: each item is {{colId: a column, sort: asc|desc}}")
        sort.append({"colId": item["colId"], "sort": item["sort"]})
    if len({s["colId"] for s in sort}) != len(sort):
        raise GridRequestError("the sortModel names a column twice: sort by each column once")
    return GridQuery(start, end, json.dumps(filters, sort_keys=True), json.dumps(sort))


def _text_condition(col: pd.Series, cond: Mapping[str, Any]) -> np.ndarray:
    op = cond["type"]
    missing = col.isna() | (col.astype(str) == "")
    if op in _NO_VALUE:
        return (missing if op == "blank" else ~missing).to_numpy(dtype=bool)
    hay, needle = col.astype(str).str.casefold(), str(cond["filter"]).casefold()
    hit = {"equals": lambda: hay == needle, "notEqual": lambda: hay != needle,
           "contains": lambda: hay.str.contains(needle, regex=False),
           "notContains": lambda: ~hay.str.contains(needle, regex=False),
           "startsWith": lambda: hay.str.startswith(needle), "endsWith": lambda: hay.str.endswith(needle)}[op]()
    # AG Grid's client filters treat a missing cell as matching only the negative conditions
    return (hit & ~col.isna() if op not in ("notEqual", "notContains") else hit | col.isna()).to_numpy(dtype=bool)


def _number_condition(col: pd.Series, cond: Mapping[str, Any]) -> np.ndarray:
    op = cond["type"]
    missing = col.isna().to_numpy()
    if op in _NO_VALUE:
        return missing if op == "blank" else ~missing
    x = col.to_numpy(dtype=float)
    v = float(cond["filter"])
    with np.errstate(invalid="ignore"):
        hit = {"equals": lambda: x == v, "notEqual": lambda: x != v, "lessThan": lambda: x < v,
               "lessThanOrEqual": lambda: x <= v, "greaterThan": lambda: x > v,
               "greaterThanOrEqual": lambda: x >= v,
               # AG Grid's inRange excludes both ends unless inRangeInclusive (not set here)
               "inRange": lambda: (x > min(v, float(cond["filterTo"]))) & (x < max(v, float(cond["filterTo"])))}[op]()
    return np.asarray(hit, dtype=bool) & ~missing


def column_mask(frame: pd.DataFrame, filter_model: Mapping[str, Any]) -> np.ndarray:
    """Rows kept by a checked filterModel (every column's filter joined with AND)."""
    mask = np.ones(len(frame), dtype=bool)
    for col, model in filter_model.items():
        one = _text_condition if model["filterType"] == "text" else _number_condition
        conds = model.get("conditions", [model])
        parts = [one(frame[col], c) for c in conds]
        joined = np.logical_and.reduce(parts) if model.get("operator", "AND") == "AND" else np.logical_or.reduce(parts)
        mask &= joined
    return mask


def row_order(frame: pd.DataFrame, keep: np.ndarray, sort_model: list[dict[str, str]]) -> np.ndarray:
    """Positions of the kept rows, sorted by ``sort_model`` (stable: ties keep the frame's order;
    missing values last). ``frame`` has the default RangeIndex, so index labels are positions."""
    pos = np.flatnonzero(keep)
    if not sort_model or not len(pos):
        return pos
    sub = frame.iloc[pos]
    by = [s["colId"] for s in sort_model]
    ordered = sub.sort_values(by=by, ascending=[s["sort"] == "asc" for s in sort_model], kind="stable",
                              na_position="last")
    return ordered.index.to_numpy(dtype=np.int64)  # the frame's index is its positions (a RangeIndex)


#: The row orders of the last few (box query, filterModel, sortModel): scrolling asks for block after block of
#: the same query, each then a slice.
OrderCache = LruMemo
