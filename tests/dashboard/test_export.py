"""CSV downloads (issue 16, item 7): the instance table's filtered rows, the pool, a lasso selection."""

from __future__ import annotations

import io

import dash
import pandas as pd

import callbacks.hard_examples as hard_cb
import callbacks.instance_table as table_cb
from dashboard.export import CSV_COLUMNS, csv_download, instance_frame
from layouts import hard_examples as hard_ly
from layouts import instance_table as table_ly


def _read(download: dict) -> pd.DataFrame:
    assert download["filename"].endswith(".csv") and not download["base64"]
    return pd.read_csv(io.StringIO(download["content"]), keep_default_na=False)


def test_instance_frame_names_classes_and_keeps_the_order(tiny_cache):
    frame = instance_frame(tiny_cache, [7, 2, 999999, 7])
    assert list(frame.columns) == list(CSV_COLUMNS) and frame["id"].tolist() == [7, 2]
    inst = tiny_cache.instances
    assert frame["label"].tolist() == [tiny_cache.classes[int(inst.label[i])] for i in (7, 2)]
    assert frame["target_loss"].tolist() == [float(inst.target_loss[i]) for i in (7, 2)]  # full precision
    assert len(instance_frame(tiny_cache, None)) == len(inst)


def test_csv_download_round_trips(tiny_cache):
    out = _read(csv_download(tiny_cache, [3, 4], "my selection"))
    assert out["id"].tolist() == [3, 4] and out["label"].astype(str).tolist() == \
        instance_frame(tiny_cache, [3, 4])["label"].astype(str).tolist()
    assert csv_download(tiny_cache, [3], "my selection")["filename"] == "tiny_my-selection.csv"


def test_table_exports_the_rows_the_filter_shows_and_the_pool(tiny_cache):
    # the grid's last request: its column filters and sort, with the box's query (issue 13: server-side grid)
    request = {"startRow": 100, "endRow": 200, "sortModel": [{"colId": "target_loss", "sort": "desc"}],
               "filterModel": {"split": {"filterType": "text", "type": "equals", "filter": "val"}}}
    shown = _read(table_cb.export_rows(tiny_cache, table_ly.EXPORT, request, "{id} < 150", [2]))
    df = tiny_cache.instances
    want = df[(df["split"] == "val") & (df["id"] < 150)].copy()
    want["loss"] = want["target_loss"].round(4)
    assert shown["id"].tolist() == want.sort_values("loss", ascending=False, kind="stable")["id"].tolist()
    everything = _read(table_cb.export_rows(tiny_cache, table_ly.EXPORT, None, "", []))
    assert everything["id"].tolist() == df["id"].tolist()
    assert table_cb.export_rows(tiny_cache, table_ly.EXPORT, {"filterModel": "junk"}, "", []) is dash.no_update
    pool = _read(table_cb.export_rows(tiny_cache, table_ly.POOL_EXPORT, request, "", [4, 8]))
    assert pool["id"].tolist() == [4, 8]
    assert table_cb.export_rows(tiny_cache, table_ly.POOL_EXPORT, None, "", []) is dash.no_update


def test_hard_examples_export_the_lasso_or_what_the_filters_show(tiny_cache):
    lasso = hard_cb.export_selection(tiny_cache, {"source": "hidden", "ids": [11, 4]}, "target", "both", [])
    assert _read(lasso)["id"].tolist() == [11, 4] and lasso["filename"].endswith("selection.csv")
    shown = _read(hard_cb.export_selection(tiny_cache, None, "source", "target", []))
    assert set(shown["domain"]) == {"target"}
    assert len(shown) == int((tiny_cache.instances.domain == "target").sum())


def test_the_buttons_are_wired(tiny_app):
    outputs = {cb["output"] for cb in tiny_app._callback_list}
    assert f"{table_ly.DOWNLOAD}.data" in outputs and f"{hard_ly.DOWNLOAD}.data" in outputs
