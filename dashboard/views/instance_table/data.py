"""The instance table's slice of the cache: one row per instance, and what the filter box may name.

The rows are built once per cache object (:meth:`Cache.memo`: a built cache never changes),
at start-up (:func:`warm`), so opening the tab and every pool change is a look-up.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Literal

from dashboard.lookups import json_number
from dashboard.pool import as_ids
from dashboard.views.instance_table.filterexpr import ColumnSpec
from transferviz.cache import Cache

__all__ = ["COLUMNS", "ROUND", "column_specs", "records_for", "row_index", "table_records", "warm"]

#: Decimals kept for confidences and losses: the rows travel as JSON (~1 MB on the demo).
ROUND = 4

#: (id, header row 1, header row 2, kind). ``kind`` is DataTable's column type; the ids are
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
    """Builds the rows and the filter box's column specs at start-up (~0.1 s on the demo), not
    when the first visitor opens the tab."""
    table_records(cache)
    column_specs(cache)


def table_records(cache: Cache) -> list[dict[str, Any]]:
    """One row per instance, in ``cache.instances`` order; labels and predictions as class names,
    ``pred_changed`` as "yes"/"no" (the filter language compares text, not booleans)."""
    return cache.memo(("instance_table.records",), lambda: _records(cache))


def _records(cache: Cache) -> list[dict[str, Any]]:
    df = cache.instances
    names = list(cache.classes)

    def name(i: int) -> str:
        return names[i] if 0 <= i < len(names) else str(i)

    def num(x: Any) -> float | None:
        v = json_number(x)
        return None if v is None else round(v, ROUND) + 0.0  # + 0.0: no "-0.0" in the table

    # the stubs type itertuples' fields as any scalar or NA, which int() refuses; the columns are the cache's
    rows: Iterator[Any] = df.itertuples(index=False)
    return [{
        "id": int(r.id), "domain": str(r.domain), "split": str(r.split), "label": name(int(r.label)),
        "source_pred": name(int(r.source_pred)), "source_conf": num(r.source_conf), "source_loss": num(r.source_loss),
        "target_pred": name(int(r.target_pred)), "target_conf": num(r.target_conf), "target_loss": num(r.target_loss),
        "pred_changed": "yes" if bool(r.pred_changed) else "no",
    } for r in rows]


def row_index(cache: Cache) -> dict[int, int]:
    """Instance id -> its row in :func:`table_records`."""
    return cache.memo(("instance_table.row_index",),
                      lambda: {r["id"]: k for k, r in enumerate(table_records(cache))})


def records_for(cache: Cache, instance_ids: Sequence[Any]) -> list[dict[str, Any]]:
    """Rows of ``instance_ids`` in that order; unknown ids are skipped."""
    recs, row_of = table_records(cache), row_index(cache)
    return [recs[row_of[i]] for i in as_ids(instance_ids) if i in row_of]


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
