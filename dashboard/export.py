"""CSV downloads of instances: the instance table's filtered rows, the image pool, a lasso selection.

One place builds the rows (the instance table's columns, full precision, class names rather than
indices, both models' predictions) so that every download of the page reads the same way, and
one function turns ids into a ``dcc.Download`` answer. Figures' own data are exported in the
browser (``assets/transferviz.js`` adds a CSV button to every plot's mode bar) since it is what
the figure shows that a user wants, whatever built it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pandas as pd
from dash import dcc

from dashboard.pool import as_ids
from transferviz.cache import Cache

__all__ = ["CSV_COLUMNS", "csv_download", "instance_frame"]

#: Columns of every instance CSV, in order.
CSV_COLUMNS = ("id", "domain", "split", "label", "source_pred", "source_conf", "source_loss", "target_pred",
               "target_conf", "target_loss", "pred_changed")


def instance_frame(cache: Cache, ids: Sequence[Any] | None) -> pd.DataFrame:
    """The instances ``ids`` (all of them for None), in that order, unknown ids skipped: the CSV's rows."""
    df = cache.instances
    if ids is not None:
        wanted = [i for i in as_ids(ids) if 0 <= i < len(df)]
        # instance ids are row numbers by construction (cache.instances is written in id order)
        df = df.iloc[wanted]
    names = pd.Series(list(cache.classes))

    def name(col: str) -> pd.Series:
        return names.reindex(df[col].to_numpy()).set_axis(df.index)

    out = pd.DataFrame({
        "id": df["id"].astype(int), "domain": df["domain"].astype(str), "split": df["split"].astype(str),
        "label": name("label"),
        "source_pred": name("source_pred"), "source_conf": df["source_conf"], "source_loss": df["source_loss"],
        "target_pred": name("target_pred"), "target_conf": df["target_conf"], "target_loss": df["target_loss"],
        "pred_changed": df["pred_changed"].astype(bool),
    })
    return out[list(CSV_COLUMNS)]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "export"


def csv_download(cache: Cache, ids: Sequence[Any] | None, what: str) -> dict[str, Any]:
    """A ``dcc.Download`` answer: the CSV of the instances ``ids`` named ``<run>_<what>.csv``."""
    frame = instance_frame(cache, ids)
    return dcc.send_data_frame(frame.to_csv, f"{_slug(cache.name)}_{_slug(what)}.csv", index=False)
