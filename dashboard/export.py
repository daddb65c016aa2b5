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

__all__ = ["CSV_COLUMNS", "csv_download", "frame_csv", "instance_frame"]

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


def frame_csv(frame: pd.DataFrame) -> str:
    """``frame`` as CSV text, header first, floats at full (shortest round-trip) precision.

    Arrow's C++ writer, not ``DataFrame.to_csv``: pandas formats floats in Python, 0.74 s for the 100k
    instances of issue 13's scale cache against 0.07 s here, and the export is a callback a user waits on.
    Booleans come out as ``true``/``false``, which pandas, R and spreadsheets all read as booleans.
    """
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    out = pa.BufferOutputStream()
    pa_csv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), out,
                     write_options=pa_csv.WriteOptions(quoting_style="needed"))
    return out.getvalue().to_pybytes().decode()


def csv_download(cache: Cache, ids: Sequence[Any] | None, what: str) -> dict[str, Any]:
    """A ``dcc.Download`` answer: the CSV of the instances ``ids`` named ``<run>_<what>.csv``."""
    frame = instance_frame(cache, ids)
    return dcc.send_string(frame_csv(frame), f"{_slug(cache.name)}_{_slug(what)}.csv", type="text/csv")
