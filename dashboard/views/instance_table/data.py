"""The instance table's slice of the cache: one row per instance, and what the filter box may name.

The table's frame is built once per cache object (:meth:`Cache.memo`: a built cache never
changes), at start-up (:func:`warm`); the grid's blocks are slices of it
(:mod:`dashboard.views.instance_table.rows`), so only the visible rows travel.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from dashboard.pool import as_ids
from dashboard.views.instance_table.filterexpr import ColumnSpec
from transferviz.cache import Cache

__all__ = ["COLUMNS", "ROUND", "column_specs", "frame_kinds", "page_rows", "records_for", "row_index", "table_frame",
           "warm"]

#: Decimals kept for confidences and losses (what the cells show and the filters compare).
ROUND = 4

#: (id, header row 1, header row 2, kind). ``kind`` is the filter box's column type; the ids are
#: what users write in filter expressions, so they stay those of ``cache.instances``
#: (``label`` carries the class name; ``label_name`` is accepted as an alias).
COLUMNS: tuple[tuple[str, str, str, Literal["numeric", "text"]], ...] = (
    ("id", "", "id", "numeric"),
    ("domain", "", "domain", "text"),
    ("split", "", "split", "text"),
    ("label", "", "label", "text"),
    ("source_pred", "source model", "pred", "text"),
    ("source_conf", "source model", "conf", "numeric"),
    ("source_loss", "source model", "loss", "numeric"),
    ("target_pred", "target model", "pred", "text"),
    ("target_conf", "target model", "conf", "numeric"),
    ("target_loss", "target model", "loss", "numeric"),
    ("pred_changed", "", "changed", "text"),
)


def warm(cache: Cache) -> None:
    """Builds the table's frame and the filter box's column specs at start-up (~0.1 s at 100k
    instances), not when the first visitor opens the tab."""
    table_frame(cache)
    column_specs(cache)
    row_index(cache)


def frame_kinds() -> dict[str, str]:
    """``{column: "text" | "number"}``: the AG Grid filter each column takes."""
    return {cid: "number" if kind == "numeric" else "text" for cid, _, _, kind in COLUMNS}


def table_frame(cache: Cache) -> pd.DataFrame:
    """One row per instance, in ``cache.instances`` order (RangeIndex): labels and predictions as
    class names, ``pred_changed`` as "yes"/"no" (the filter language compares text, not booleans),
    confidences and losses rounded to :data:`ROUND` decimals. Built once per cache object."""
    return cache.memo(("instance_table.frame",), lambda: _frame(cache))


def _frame(cache: Cache) -> pd.DataFrame:
    df = cache.instances
    names = np.asarray([str(c) for c in cache.classes] + [""], dtype=object)

    def name(col: str) -> np.ndarray:
        idx = df[col].to_numpy(dtype=np.int64)
        ok = (idx >= 0) & (idx < len(names) - 1)
        return np.where(ok, names[np.where(ok, idx, -1)], idx.astype(str))

    def num(col: str) -> np.ndarray:
        return np.round(df[col].to_numpy(dtype=float), ROUND) + 0.0  # + 0.0: no "-0.0" in the table

    return pd.DataFrame({
        "id": df["id"].to_numpy(dtype=np.int64), "domain": df["domain"].astype(str).to_numpy(dtype=object),
        "split": df["split"].astype(str).to_numpy(dtype=object), "label": name("label"),
        "source_pred": name("source_pred"), "source_conf": num("source_conf"), "source_loss": num("source_loss"),
        "target_pred": name("target_pred"), "target_conf": num("target_conf"), "target_loss": num("target_loss"),
        "pred_changed": np.where(df["pred_changed"].to_numpy(dtype=bool), "yes", "no").astype(object),
    })


def page_rows(frame: pd.DataFrame, positions: np.ndarray) -> list[dict[str, Any]]:
    """The rows at ``positions`` as JSON-ready dicts (a missing number becomes null)."""
    page = frame.iloc[positions]
    out = page.astype(object).where(page.notna(), None).to_dict("records")
    for r in out:
        r["id"] = int(r["id"])
        for k in ("source_conf", "source_loss", "target_conf", "target_loss"):
            if r[k] is not None:
                r[k] = float(r[k])
    return out


def row_index(cache: Cache) -> dict[int, int]:
    """Instance id -> its row in :func:`table_frame`."""
    return cache.memo(("instance_table.row_index",),
                      lambda: {int(i): k for k, i in enumerate(table_frame(cache)["id"].to_numpy())})


def records_for(cache: Cache, instance_ids: Sequence[Any]) -> list[dict[str, Any]]:
    """Rows of ``instance_ids`` in that order; unknown ids are skipped."""
    row_of = row_index(cache)
    pos = np.asarray([row_of[i] for i in as_ids(instance_ids) if i in row_of], dtype=np.int64)
    return page_rows(table_frame(cache), pos)


def column_specs(cache: Cache) -> dict[str, ColumnSpec]:
    """What the filter box may name: each column's kind and, for categorical ones, its values."""
    return cache.memo(("instance_table.column_specs",), lambda: _specs(cache))


def _specs(cache: Cache) -> dict[str, ColumnSpec]:
    df = cache.instances
    classes = tuple(str(c) for c in cache.classes)
    values = {"domain": tuple(sorted(df["domain"].astype(str).unique())),
              "split": tuple(sorted(df["split"].astype(str).unique())),
              "label": classes, "source_pred": classes, "target_pred": classes, "pred_changed": ("yes", "no")}
    aliases = {"label": ("label_name",), "pred_changed": ("changed",)}
    return {cid: ColumnSpec(cid, kind, values.get(cid) if kind == "text" else None, aliases.get(cid, ()))
            for cid, _, _, kind in COLUMNS}
