"""CSV downloads (issue 16, item 7; a route since issue 13): the instance table's filtered rows, the pool,
a lasso selection. Posted to the app's real export routes through Flask's test client, as the page does."""

from __future__ import annotations

import gzip
import io

import pandas as pd
import pytest

from dashboard.export import CSV_COLUMNS, csv_response, export_path, instance_frame
from layouts import hard_examples as hard_ly
from layouts import instance_table as table_ly


def _read(body: bytes) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(body), keep_default_na=False)


def _post(app, kind: str, state, gzipped: bool = False):
    headers = {"Accept-Encoding": "gzip"} if gzipped else {}
    return app.server.test_client().post(export_path(kind), json=state, headers=headers)


def test_instance_frame_names_classes_and_keeps_the_order(tiny_cache):
    frame = instance_frame(tiny_cache, [7, 2, 999999, 7])
    assert list(frame.columns) == list(CSV_COLUMNS) and frame["id"].tolist() == [7, 2]
    inst = tiny_cache.instances
    assert frame["label"].tolist() == [tiny_cache.classes[int(inst.label[i])] for i in (7, 2)]
    assert frame["target_loss"].tolist() == [float(inst.target_loss[i]) for i in (7, 2)]  # full precision
    assert len(instance_frame(tiny_cache, None)) == len(inst)


def test_csv_round_trips_at_full_precision_plain_and_gzipped(tiny_cache):
    plain = csv_response(tiny_cache, [3, 4], "my selection")
    assert plain.headers["Content-Disposition"] == 'attachment; filename="tiny_my-selection.csv"'
    assert plain.mimetype == "text/csv" and "Content-Encoding" not in plain.headers
    out = _read(plain.get_data())
    want = instance_frame(tiny_cache, [3, 4])
    assert out["id"].tolist() == [3, 4] and out["label"].astype(str).tolist() == want["label"].astype(str).tolist()
    for col in ("source_conf", "source_loss", "target_conf", "target_loss"):  # float32 values round-trip exactly
        assert (out[col].astype("float32").to_numpy() == want[col].to_numpy()).all(), col
    assert out["pred_changed"].tolist() == want["pred_changed"].tolist()
    packed = csv_response(tiny_cache, [3, 4], "my selection", "gzip, deflate, br")
    assert packed.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed.get_data()) == plain.get_data()


def test_table_exports_the_rows_the_filter_shows_and_the_pool(tiny_app, tiny_cache):
    # the grid's last request: its column filters and sort, with the box's query (issue 13: server-side grid)
    request = {"startRow": 100, "endRow": 200, "sortModel": [{"colId": "target_loss", "sort": "desc"}],
               "filterModel": {"split": {"filterType": "text", "type": "equals", "filter": "val"}}}
    r = _post(tiny_app, "instances", {"what": "shown", "request": request, "box_query": "{id} < 150", "pool": [2]},
              gzipped=True)
    assert r.status_code == 200 and r.headers["Content-Encoding"] == "gzip"
    shown = _read(gzip.decompress(r.get_data()))
    assert r.headers["Content-Disposition"].endswith('filename="tiny_instances.csv"')
    df = tiny_cache.instances
    want = df[(df["split"] == "val") & (df["id"] < 150)].copy()
    want["loss"] = want["target_loss"].round(4)
    assert shown["id"].tolist() == want.sort_values("loss", ascending=False, kind="stable")["id"].tolist()
    everything = _read(_post(tiny_app, "instances", {"what": "shown", "request": None, "box_query": ""}).get_data())
    assert everything["id"].tolist() == df["id"].tolist()
    pool = _post(tiny_app, "instances", {"what": "pool", "request": request, "box_query": "", "pool": [4, 8, "x"]})
    assert _read(pool.get_data())["id"].tolist() == [4, 8]
    assert pool.headers["Content-Disposition"].endswith('filename="tiny_pool.csv"')


@pytest.mark.parametrize("kind, state, line", [
    ("instances", {"what": "shown", "request": {"filterModel": "junk"}}, "filters or sort are not valid"),
    ("instances", {"what": "shown", "request": {"filterModel": {"nope": {"filterType": "text"}}}}, "not valid"),
    ("instances", {"what": "pool", "pool": []}, "the image pool is empty"),
    ("instances", {"what": "pool", "pool": 7}, "the image pool is empty"),
    ("instances", [1, 2], "needs a JSON object"),
    ("instances", "junk", "needs a JSON object"),
    ("hard_examples", {"brush": 5, "model": ["x"], "domain": {}, "wrong_only": 3}, None),
])
def test_bad_state_is_one_line_400_never_a_500(tiny_app, kind, state, line):
    r = _post(tiny_app, kind, state)
    if line is None:  # junk controls fall back to the view's defaults, as the callbacks do
        assert r.status_code == 200 and len(_read(r.get_data())) > 0
        return
    body = r.get_data(as_text=True)
    assert r.status_code == 400 and line in body and body.count("\n") == 1, body
    # a GET is the page's catch-all route (Dash answers every unknown path with the page), never a CSV
    assert tiny_app.server.test_client().get(export_path(kind)).mimetype != "text/csv"


def test_hard_examples_export_the_lasso_or_what_the_filters_show(tiny_app, tiny_cache):
    lasso = _post(tiny_app, "hard_examples", {"brush": {"source": "hidden", "ids": [11, 4]}, "model": "target",
                                              "domain": "both", "wrong_only": []})
    assert _read(lasso.get_data())["id"].tolist() == [11, 4]
    assert lasso.headers["Content-Disposition"].endswith('selection.csv"')
    shown = _read(_post(tiny_app, "hard_examples", {"brush": None, "model": "source", "domain": "target",
                                                    "wrong_only": []}).get_data())
    assert set(shown["domain"]) == {"target"}
    assert len(shown) == int((tiny_cache.instances.domain == "target").sum())


def test_the_buttons_are_wired_to_the_routes_in_the_browser(tiny_app):
    """Each CSV button is a clientside callback posting to its route: no server callback carries the file."""
    clientside = {cb["output"]: cb for cb in tiny_app._callback_list if cb.get("clientside_function")}
    js = "\n".join(tiny_app._inline_scripts)
    for download, route in ((table_ly.DOWNLOAD, export_path("instances")),
                            (hard_ly.DOWNLOAD, export_path("hard_examples"))):
        cb = clientside[f"{download}.data"]
        assert route in js and "tvExport" in js, cb
    rules = {r.rule: r.methods for r in tiny_app.server.url_map.iter_rules()}
    assert "POST" in rules[export_path("instances")] and "POST" in rules[export_path("hard_examples")]
