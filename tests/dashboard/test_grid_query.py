"""The instance grid's server side (issue 13, item 4): AG Grid's filterModel/sortModel and the filter box
run in pandas must keep and order exactly the rows that pandas keeps and orders for the same query,
written here independently; malformed models are refused with one line, and over HTTP with no 500.

The hand-made frame has every kind of cell the table has (integers, rounded floats with a missing
value, class names, yes/no) so each filter kind meets each column type."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboard.views.instance_table.boxquery import box_mask
from dashboard.views.instance_table.filterexpr import ColumnSpec, FilterError, validate
from dashboard.views.instance_table.gridquery import (
    GridRequestError,
    OrderCache,
    column_mask,
    parse_request,
    row_order,
)

FRAME = pd.DataFrame({
    "id": [0, 1, 2, 3, 4, 5, 6, 7],
    "domain": ["source", "source", "target", "target", "target", "source", "target", "source"],
    "label": ["cat", "dog", "Cat", "bird", "dog", "cat", "bird", "dog"],
    "pred": ["cat", "cat", "cat", "bird", "bird", "dog", "dog", "dog"],
    "loss": [0.5, 2.25, np.nan, 3.0, 0.125, 2.25, 1.0, 4.5],
    "conf": [0.9, 0.1, 0.4, 0.6, 0.7, 0.1, 0.3, 0.05],
    "changed": ["no", "yes", "no", "no", "yes", "yes", "no", "no"],
})
KINDS = {"id": "number", "domain": "text", "label": "text", "pred": "text", "loss": "number", "conf": "number",
         "changed": "text"}
SPECS = {"id": ColumnSpec("id", "numeric"), "domain": ColumnSpec("domain", "text", ("source", "target")),
         "label": ColumnSpec("label", "text", ("cat", "Cat", "dog", "bird")),
         "pred": ColumnSpec("pred", "text", ("cat", "Cat", "dog", "bird")),
         "loss": ColumnSpec("loss", "numeric"), "conf": ColumnSpec("conf", "numeric"),
         "changed": ColumnSpec("changed", "text", ("yes", "no"))}
F = FRAME


def _ids(mask: np.ndarray) -> list[int]:
    return F["id"].to_numpy()[mask].tolist()


def _request(filter_model=None, sort_model=None, start=0, end=100) -> dict:
    return {"startRow": start, "endRow": end, "filterModel": filter_model or {}, "sortModel": sort_model or []}


# --- column filters against pandas -----------------------------------------------------------------

def _text(op, value=None):
    return {"filterType": "text", "type": op, **({} if value is None else {"filter": value})}


def _num(op, value=None, to=None):
    return {"filterType": "number", "type": op, **({} if value is None else {"filter": value}),
            **({} if to is None else {"filterTo": to})}


low = F["label"].str.lower()
@pytest.mark.parametrize("model, expected", [
    # text columns (AG Grid's text filter ignores case)
    ({"label": _text("equals", "cat")}, low == "cat"),
    ({"label": _text("notEqual", "CAT")}, low != "cat"),
    ({"label": _text("contains", "o")}, low.str.contains("o")),
    ({"label": _text("notContains", "o")}, ~low.str.contains("o")),
    ({"label": _text("startsWith", "b")}, low.str.startswith("b")),
    ({"label": _text("endsWith", "G")}, low.str.endswith("g")),
    ({"domain": _text("equals", "target"), "changed": _text("equals", "yes")},
     (F["domain"] == "target") & (F["changed"] == "yes")),
    ({"label": {"filterType": "text", "operator": "OR", "conditions": [_text("equals", "bird"),
                                                                       _text("equals", "dog")]}},
     F["label"].isin(["bird", "dog"])),
    # number columns (a missing loss matches no comparison, only "blank")
    ({"loss": _num("greaterThan", 2.25)}, F["loss"] > 2.25),
    ({"loss": _num("greaterThanOrEqual", 2.25)}, F["loss"] >= 2.25),
    ({"loss": _num("lessThan", 1)}, F["loss"] < 1),
    ({"loss": _num("lessThanOrEqual", 1)}, F["loss"] <= 1),
    ({"loss": _num("equals", 2.25)}, F["loss"] == 2.25),
    ({"loss": _num("notEqual", 2.25)}, (F["loss"] != 2.25) & F["loss"].notna()),
    ({"loss": _num("inRange", 4.5, 0.5)}, (F["loss"] > 0.5) & (F["loss"] < 4.5)),
    ({"loss": _num("blank")}, F["loss"].isna()),
    ({"loss": _num("notBlank")}, F["loss"].notna()),
    ({"id": {"filterType": "number", "operator": "AND", "conditions": [_num("greaterThan", 1),
                                                                       _num("lessThan", 6)]}},
     (F["id"] > 1) & (F["id"] < 6)),
    # both kinds at once
    ({"conf": _num("lessThan", 0.5), "pred": _text("equals", "dog")}, (F["conf"] < 0.5) & (F["pred"] == "dog")),
])
def test_column_filters_equal_pandas(model, expected):
    q = parse_request(_request(model), KINDS)
    assert _ids(column_mask(F, q.filter_model)) == _ids(expected.to_numpy(dtype=bool))


@pytest.mark.parametrize("sort_model", [
    [{"colId": "loss", "sort": "asc"}],
    [{"colId": "loss", "sort": "desc"}],
    [{"colId": "label", "sort": "asc"}],
    [{"colId": "domain", "sort": "desc"}, {"colId": "conf", "sort": "asc"}],
    [{"colId": "pred", "sort": "asc"}, {"colId": "loss", "sort": "desc"}, {"colId": "id", "sort": "desc"}],
])
def test_sort_equals_pandas(sort_model):
    keep = (F["id"] != 3).to_numpy()
    q = parse_request(_request(sort_model=sort_model), KINDS)
    got = F["id"].to_numpy()[row_order(F, keep, q.sort_model)].tolist()
    want = F[keep].sort_values([s["colId"] for s in sort_model], ascending=[s["sort"] == "asc" for s in sort_model],
                               kind="stable", na_position="last")["id"].tolist()
    assert got == want


def test_sort_hand_checked():
    """Loss descending, the missing loss last, the tie (2.25: ids 1 and 5) in frame order."""
    q = parse_request(_request(sort_model=[{"colId": "loss", "sort": "desc"}]), KINDS)
    assert F["id"].to_numpy()[row_order(F, np.ones(len(F), bool), q.sort_model)].tolist() == [7, 3, 1, 5, 6, 0, 4, 2]


# --- the filter box's language, evaluated by the server ----------------------------------------------

@pytest.mark.parametrize("text, expected_ids", [
    ("{label} = cat", [0, 5]),                        # case-sensitive by default
    ("{label} ieq cat", [0, 2, 5]),                   # the i flag folds case
    ("{pred} != {label}", [1, 2, 4, 5, 6]),           # column against column
    ("{loss} > 2", [1, 3, 5, 7]),                     # the missing loss is never > 2
    ("{loss} != 2.25", [0, 2, 3, 4, 6, 7]),           # ... but is != 2.25
    ("{loss} > {conf} && {domain} = target", [3, 6]),
    ("{label} contains o || {id} is odd", [1, 3, 4, 5, 7]),
    ("!({changed} = yes)", [0, 2, 3, 6, 7]),
    ("{id} contains 1", [1]),
    ("{loss} is nil", [2]),
    ("{id} is prime", [2, 3, 5, 7]),
    ("{id} is even && {label} < cat", [2, 6]),       # text compares as text: "Cat" < "cat" and "bird" < "cat"
    ("{conf} <= 0.1", [1, 5, 7]),
])
def test_box_queries_hand_checked(text, expected_ids):
    res = validate(text, SPECS)
    assert res.ok, res.message
    assert _ids(box_mask(F, res.query, SPECS)) == expected_ids


def test_box_queries_equal_pandas_on_the_tiny_cache(tiny_cache):
    from dashboard.views.instance_table.data import column_specs, table_frame

    frame, specs = table_frame(tiny_cache), column_specs(tiny_cache)
    for text, pandas_query in (
        ("{target_pred} != {label} && {domain} = target", "target_pred != label and domain == 'target'"),
        ("{source_loss} > {target_loss} || {split} = val", "source_loss > target_loss or split == 'val'"),
        ("!({split} = val) && {target_conf} >= 0.11", "not (split == 'val') and target_conf >= 0.11"),
    ):
        got = box_mask(frame, validate(text, specs).query, specs)
        want = frame.eval(pandas_query).to_numpy(dtype=bool)
        assert 0 < want.sum() < len(frame), text  # the query splits the rows: a real check
        assert (got == want).all(), text


def test_a_non_canonical_stored_query_is_refused():
    with pytest.raises(FilterError):
        box_mask(F, "{nope} = 1", SPECS)
    with pytest.raises(FilterError):
        box_mask(F, "{id} = 1 {id}", SPECS)


# --- malformed requests --------------------------------------------------------------------------

@pytest.mark.parametrize("request_, problem", [
    ("rows please", "not an object"),
    ({"startRow": -1, "endRow": 10}, "not a block"),
    ({"startRow": 0, "endRow": 10 ** 6}, "not a block"),
    ({"startRow": "0", "endRow": 10}, "not a block"),
    ({"startRow": True, "endRow": 10}, "not a block"),
    (_request({"nope": _text("equals", "x")}), "no column"),
    (_request([1, 2]), "filterModel is not an object"),
    (_request({"label": "cat"}), "not an object"),
    (_request({"label": _num("greaterThan", 1)}), "holds text"),
    (_request({"loss": _text("contains", "1")}), "holds number"),
    (_request({"loss": _num("between", 1)}), "allowed"),
    (_request({"loss": _num("greaterThan", "2")}), "finite number"),
    (_request({"loss": _num("greaterThan", float("nan"))}), "finite number"),
    (_request({"loss": _num("inRange", 1)}), "filterTo"),
    (_request({"label": _text("equals", "x" * 500)}), "at most"),
    (_request({"label": _text("equals", 3)}), "must be text"),
    (_request({"label": {"operator": "XOR", "conditions": [_text("equals", "a")]}}), "AND or OR"),
    (_request({"label": {"operator": "OR", "conditions": [_text("equals", "a")] * 9}}), "conditions"),
    (_request(sort_model="loss"), "sortModel"),
    (_request(sort_model=[{"colId": "loss", "sort": "up"}]), "cannot sort"),
    (_request(sort_model=[{"colId": "__class__", "sort": "asc"}]), "cannot sort"),
    (_request(sort_model=[{"colId": "loss", "sort": "asc"}, {"colId": "loss", "sort": "desc"}]), "twice"),
])
def test_malformed_models_are_refused_with_one_line(request_, problem):
    with pytest.raises(GridRequestError) as err:
        parse_request(request_, KINDS)
    msg = str(err.value)
    assert problem in msg and "\n" not in msg and len(msg) < 300


def test_order_cache_keeps_the_last_orders():
    calls = []
    cache = OrderCache(size=2)

    def make(k):
        return lambda: calls.append(k) or np.array([k])

    for k in (1, 2, 1, 3, 2, 1):
        cache.get((k,), make(k))
    assert calls == [1, 2, 3, 2, 1]  # 1 reused once; 2 then 1 evicted by newer keys


@pytest.mark.parametrize("request_", [
    "junk", {"startRow": 0, "endRow": 5, "filterModel": {"target_loss": {"type": "greaterThan", "filter": "2;"}}},
    {"startRow": 0, "endRow": 5, "sortModel": [{"colId": "id; drop", "sort": "asc"}]}, [1, 2], 7,
])
def test_a_malformed_request_over_http_is_answered_not_500(tiny_app, request_):
    from layouts import instance_table as ly
    from tests.reliability.callback_requests import callback_payload, find_callback

    key = find_callback(tiny_app, f"..{ly.TABLE}.getRowsResponse...")
    r = tiny_app.server.test_client().post("/_dash-update-component",
                                           json=callback_payload(tiny_app, key, {0: request_}))
    assert r.status_code == 200, r.data[:300]
    answer = r.get_json()["response"]
    assert answer[ly.TABLE]["getRowsResponse"] == {"rowData": [], "rowCount": 0}
    assert "Refused" in str(answer[ly.COUNT]["children"])
