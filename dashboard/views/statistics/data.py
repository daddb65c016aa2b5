"""The statistics view's slice of the cache: the confusion table's rows, the transferability
score and the training history behind the accuracy chart."""

from __future__ import annotations

from typing import Any

import pandas as pd

from dashboard.lookups import json_number
from transferviz.cache import Cache

__all__ = ["MISTAKE_COLUMNS", "NONE_MISTAKEN", "TABLE_COLUMNS", "best_accuracies", "class_table_records",
           "history_frame", "transferability", "transferability_score"]

#: Rows of the confusion table: (column id, header). Ids are stable for tests and styling.
TABLE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("class", "class"),
    ("n", "n"),
    ("source_acc", "source acc"),
    ("target_acc", "target acc"),
    ("diff", "difference"),
    # both models' confusions, each its own column so the table sorts by either (the source model is
    # usually the failing one); the target model's keeps the id ``mistaken_for`` (the paper's column)
    ("mistaken_for", "target model mistakes (count)"),
    ("source_mistaken_for", "source model mistakes (count)"),
)

#: The columns that list a model's confusions, and which model's.
MISTAKE_COLUMNS: dict[str, str] = {"mistaken_for": "target", "source_mistaken_for": "source"}

NONE_MISTAKEN = "\u2014"

def class_table_records(cache: Cache) -> list[dict[str, Any]]:
    """The confusion table rows in class order; row ``i`` is class ``i`` and carries ``id = i``
    (the grid's row id, so selections survive sorting)."""
    if not cache.has_class_table:
        return []
    t = cache.class_table.sort_values("class_index")
    rows = []
    for r in t.to_dict("records"):
        n = int(r["n"])
        rows.append({
            "id": int(r["class_index"]),
            "class_index": int(r["class_index"]),
            "class": str(r["class"]),
            "n": n,
            "source_acc": json_number(r["source_acc"]),
            "target_acc": json_number(r["target_acc"]),
            "diff": json_number(r["diff"]),
            # a dash, not a blank, for "never mistaken" (a blank reads as missing data)
            "mistaken_for": (str(r.get("mistaken_for") or "") or NONE_MISTAKEN) if n
            else "no target validation instances",
            "source_mistaken_for": (str(r.get("source_mistaken_for") or "") or NONE_MISTAKEN) if n else "",
        })
    return rows


def transferability(cache: Cache) -> float | None:
    """The run's transferability score (the build's summary), else from the history."""
    summary = cache.summary()
    if summary is not None:
        v = json_number(summary.get("transferability"))
        if v is not None:
            return v
    try:
        return transferability_score(history_frame(cache))
    except Exception:
        return None


def history_frame(cache: Cache) -> pd.DataFrame | None:
    """``models/history.parquet`` or None when the cache has no training history (given checkpoints)."""
    return cache.history if cache.has_history else None


def best_accuracies(cache: Cache) -> dict[str, float | None]:
    """Best accuracies on the target validation data behind the score (for the badge's caption)."""
    s = cache.summary()
    if s is None:
        return {"target": None, "source": None}
    return {"target": json_number(s.get("best_target_on_target")),
            "source": json_number(s.get("best_source_on_target"))}


def transferability_score(history: pd.DataFrame | None) -> float | None:
    """Best target-model minus best source-model accuracy on the target validation data.

    (Paper, section 5.1.) The source model's accuracy on target data is read from the
    ``target_val`` column when the history has one, else from ``target_train``. Returns
    ``None`` when either is missing.
    """
    if history is None or len(history) == 0 or "model" not in history:
        return None
    tgt = history[history["model"] == "target"]
    src = history[history["model"] == "source"]
    col_src = "target_val" if "target_val" in history.columns else "target_train"
    if "val" not in history.columns or col_src not in history.columns:
        return None
    best_t = pd.to_numeric(tgt["val"], errors="coerce").max()
    best_s = pd.to_numeric(src[col_src], errors="coerce").max()
    if pd.isna(best_t) or pd.isna(best_s):
        return None
    return float(best_t - best_s)
