"""Instance table: the filter-expression validator (a whitelist, never evaluated) and the pure
functions behind the table's rows, the image pool and the focus, checked against the cache."""

from __future__ import annotations

import builtins
import json
import re

import dash
import numpy as np
import pytest

from callbacks import instance_table as cb
from dashboard.pool import POOL_SIZE
from dashboard.theme import SOURCE_COLOR, TARGET_COLOR
from dashboard.views.instance_table import data as table_data
from dashboard.views.instance_table.filterexpr import (
    EXAMPLE,
    MAX_LENGTH,
    ColumnSpec,
    tokenize,
    validate,
)
from dashboard.views.instance_table.markup import pool_view
from layouts import ids
from layouts import instance_table as ly
from tests.components import find

NO = dash.no_update
CLASSES = tuple(str(i) for i in range(10))
SPECS = {s.id: s for s in (
    ColumnSpec("id", "numeric"),
    ColumnSpec("domain", "text", ("source", "target")),
    ColumnSpec("split", "text", ("train", "val")),
    ColumnSpec("label", "text", CLASSES, ("label_name",)),
    ColumnSpec("source_pred", "text", CLASSES),
    ColumnSpec("source_conf", "numeric"),
    ColumnSpec("source_loss", "numeric"),
    ColumnSpec("target_pred", "text", CLASSES),
    ColumnSpec("target_conf", "numeric"),
    ColumnSpec("target_loss", "numeric"),
    ColumnSpec("pred_changed", "text", ("yes", "no"), ("changed",)),
)}


# --- validator: accepted ---------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("{target_loss} > 2", "{target_loss} > 2"),
    ("{target_loss} gt 2", "{target_loss} > 2"),
    ("{target_loss} >= 0.5", "{target_loss} >= 0.5"),
    ("{target_loss} ge 1e-3", "{target_loss} >= 1e-3"),
    ("{source_loss} < -1", "{source_loss} < -1"),
    ("{source_conf} le .9", "{source_conf} <= .9"),
    ("{id} = 7", "{id} = 7"),
    ("{id} eq 7", "{id} = 7"),
    ("{id} ne 7", "{id} != 7"),
    ("{id} lt 100", "{id} < 100"),
    ("{domain} = target", '{domain} = "target"'),
    ("{domain} = 'target'", '{domain} = "target"'),
    ('{domain} eq "source"', '{domain} = "source"'),
    ("{domain} ieq TARGET", '{domain} ieq "TARGET"'),
    ("{domain} i= TARGET", '{domain} ieq "TARGET"'),
    ("{label} = 3", '{label} = "3"'),      # text column: the value is quoted (DataTable's != is strict)
    ("{label} != 3", '{label} != "3"'),
    ("{label} contains 3", '{label} contains "3"'),
    ("{id} contains 12", '{id} contains "12"'),   # contains only matches text
    ("{split} icontains VA", '{split} icontains "VA"'),
    ("{target_pred} != {label}", "{target_pred} != {label}"),
    ("{source_loss} > {target_loss}", "{source_loss} > {target_loss}"),
    ("target_pred != {label}", "{target_pred} != {label}"),   # bare column name on the left
    ("target_loss > 2 and domain = target", '{target_loss} > 2 && {domain} = "target"'),
    ("TARGET_LOSS > 2", "{target_loss} > 2"),
    ("{pred_changed} = yes", '{pred_changed} = "yes"'),
    ("changed = yes", '{pred_changed} = "yes"'),                # alias
    ("{label_name} = 5", '{label} = "5"'),                      # alias
    ("{target_loss} is nil", "{target_loss} is nil"),
    ("{label} IS BLANK", "{label} is blank"),
    ("{id} is even || {id} is prime", "{id} is even || {id} is prime"),
    ("{target_loss} is num && {label} is str", "{target_loss} is num && {label} is str"),
    ("{domain} = target or {id} < 3", '{domain} = "target" || {id} < 3'),
    ("{domain} = target AND {id} < 3", '{domain} = "target" && {id} < 3'),
    ("({domain} = target || {id} < 3) && {target_loss} > 1", '({domain} = "target" || {id} < 3) && {target_loss} > 1'),
    ("!({pred_changed} = yes)", '!({pred_changed} = "yes")'),
    ("{id} < 3 && !({split} = val)", '{id} < 3 && !({split} = "val")'),
    ("!!({id} = 1)", "!!({id} = 1)"),
    ("(({id} >= 3))", "(({id} >= 3))"),
    ("{target_pred} s!= {label} && {target_loss} s> 2", "{target_pred} sne {label} && {target_loss} sgt 2"),
    ("{domain} scontains target", '{domain} scontains "target"'),
    ("   {id} = 1   ", "{id} = 1"),
])
def test_validator_accepts_the_filter_language(text, expected):
    res = validate(text, SPECS)
    assert res.ok, res.message
    assert res.query == expected
    assert validate(res.query, SPECS).query == res.query  # canonical form is a fixed point


@pytest.mark.parametrize("_label, expr", ly.CHIPS)
def test_every_chip_is_valid(_label, expr):
    res = validate(expr, SPECS)
    assert res.ok, res.message


def test_empty_text_clears_the_filter():
    for text in ("", "   ", None):
        res = validate(text, SPECS)
        assert res.ok and res.query == "" and "cleared" in res.message


def test_canonical_queries_respect_datatables_positional_rules():
    """DataTable's lexer: '!' only before '(' or '!', never right after '('; and/or as && ||."""
    for text in ("!({id} = 1) || ({id} = 2 && !({id} = 3))", "domain = target and label != 3 or id < 5"):
        q = validate(text, SPECS).query
        assert q
        assert not re.search(r"!\s*(?![(!])", q.replace("!=", "")), q
        assert "(!" not in q.replace(" ", "")
        assert " and " not in q and " or " not in q


# --- validator: refused -----------------------------------------------------------------------

@pytest.mark.parametrize("text, problem", [
    ("__import__('os').system('x')", "function call"),
    ("1; import os", "';'"),
    ("lambda: 0", "lambda"),
    ("lambda x: x", "lambda"),
    ("eval('1+1')", "function call"),
    ("exec('x')", "function call"),
    ("{label} = eval", "eval"),
    ("open('/etc/passwd')", "function call"),
    ("{label}.__class__", "attribute access"),
    ("os.system", "attribute access"),
    ("{id} = 1 && x.y", "attribute access"),
    ("`rm -rf /`", "backticks"),
    ("{label} = `x`", "backticks"),
    ("${7*7}", "${"),
    ("{label} = '${x}'", "${"),
    ("</script><script>alert(1)</script>", "tags"),
    ("{label} = '</script>'", "tags"),
    ("{label} = '<b>'", "tags"),
    ("{label} = \"a'b\"", "quoted text"),
    ("{id} == 1", "=="),
    ("{id} = 1 & {id} = 2", "single &"),
    ("{id} = 1 | {id} = 2", "single &"),
    ("not {id} = 1", "'not'"),
    ("{label} in [1, 2]", "brackets"),
    ("{label} in (1, 2)", "'in'"),
    ("__builtins__", "Python"),
    ("{id} = 1\n{id} = 2", "control"),
    ("{label} = '\\x41'", "backslash"),
    ("{foo} > 1", "unknown column {foo}"),
    ("foo > 1", "unknown column 'foo'"),
    ("{id} > 1 && {bar} = 2", "unknown column {bar}"),
    ("{label} = {nope}", "unknown column {nope}"),
    ("{domain} = Target", "no value 'Target'"),
    ("{label} = 11", "no value '11'"),
    ("{target_pred} = label", "is a column name"),
    ("{target_loss} > high", "holds numbers"),
    ("{target_loss} > {label}", "numeric but"),
    ("{label} contains {target_pred}", "another column"),
    ("{id} datestartswith 2020", "date column"),
    ("3 > {id}", "starts with a column"),
    ("'a' = {label}", "starts with a column"),
    ("{id}", "expected an operator"),
    ("{id} >", "ends too early"),
    ("{id} > 1 &&", "ends too early"),
    ("{id} > 1 {id} < 3", "unexpected"),
    ("({id} > 1", "never closed"),
    ("{id} > 1)", "unbalanced"),
    ("()", "empty parentheses"),
    ("! {id} = 1", "followed by parentheses"),
    ("(!({id} = 1))", "right after '('"),
    ("{id is nil", "unclosed"),
    ("{label} = 'abc", "unclosed quote"),
    ("{id} is weird", "'is' must be followed"),
    ("{id} > 1.2.3", "unexpected"),
    ("{id} ~ 3", "unexpected character"),
    ("x" * (MAX_LENGTH + 1), "too long"),
])
def test_validator_refuses_code_and_errors_with_one_line(text, problem):
    res = validate(text, SPECS)
    assert not res.ok
    assert res.query == ""
    assert res.message.startswith("Refused: ")
    assert problem in res.message, res.message
    assert "\n" not in res.message
    assert res.message.endswith(f"A valid example: {EXAMPLE}")
    assert validate(EXAMPLE, SPECS).ok  # the example shown is itself valid


def test_validator_never_evaluates(monkeypatch):
    def boom(*_a, **_k):
        raise AssertionError("user text reached eval/exec/compile")

    for name in ("eval", "exec", "compile"):
        monkeypatch.setattr(builtins, name, boom)
    for text in ("__import__('os').system('x')", "{id} > 1 && {domain} = target", "1+1"):
        validate(text, SPECS)


def test_tokenizer_whitelists_characters():
    kinds = [t.kind for t in tokenize("!({a} s>= -2.5 || b icontains 'x y') && c is nil")]
    assert kinds == ["NOT", "LPAREN", "FIELD", "RELOP", "NUMBER", "OR", "WORD", "RELOP", "STRING", "RPAREN",
                     "AND", "WORD", "TEST"]


# --- rows, specs and filter dispatch on the tiny cache ----------------------------------------

def test_frame_matches_the_cache(tiny_cache):
    df = tiny_cache.instances
    frame = table_data.table_frame(tiny_cache)
    recs = table_data.page_rows(frame, np.arange(len(frame)))
    assert len(recs) == len(df) and list(frame.index) == list(range(len(df)))
    names = tiny_cache.classes
    assert [r["id"] for r in recs] == df["id"].tolist()
    cols = {c[0] for c in ly.COLUMNS}
    for r, row in zip(recs, df.itertuples(index=False)):
        assert set(r) == cols
        assert r["domain"] == row.domain and r["split"] == row.split
        assert r["label"] == names[row.label]
        assert r["source_pred"] == names[row.source_pred] and r["target_pred"] == names[row.target_pred]
        assert r["target_loss"] == pytest.approx(float(row.target_loss), abs=1e-4)
        assert r["source_conf"] == pytest.approx(float(row.source_conf), abs=1e-4)
        assert r["pred_changed"] == ("yes" if row.pred_changed else "no")
    # the "changed" column agrees with the two predictions
    n_changed = int((df["source_pred"].to_numpy() != df["target_pred"].to_numpy()).sum())
    assert sum(r["pred_changed"] == "yes" for r in recs) == n_changed
    assert all(str(v) != "-0.0" for r in recs for v in r.values())
    json.dumps(recs)  # plain JSON types only


def test_a_block_carries_only_its_rows_with_pool_and_focus_flags(tiny_cache):
    n = len(tiny_cache.instances)
    req = {"startRow": 10, "endRow": 20, "sortModel": [], "filterModel": {}}
    resp, count = cb.rows_for_request(tiny_cache, req, "", [12, 3], 15)
    assert resp["rowCount"] == n and count == f"{n:,} of {n:,} instances match"
    assert [r["id"] for r in resp["rowData"]] == list(range(10, 20))
    assert [r["id"] for r in resp["rowData"] if r["pooled"]] == [12]
    assert [r["id"] for r in resp["rowData"] if r["focused"]] == [15]
    # the box and a column filter combine with AND; the count is the whole answer's
    req = {"startRow": 0, "endRow": 5, "sortModel": [{"colId": "target_loss", "sort": "desc"}],
           "filterModel": {"domain": {"filterType": "text", "type": "equals", "filter": "target"}}}
    resp, count = cb.rows_for_request(tiny_cache, req, "{target_pred} != {label}", [], None)
    frame = table_data.table_frame(tiny_cache)
    want = frame[(frame.domain == "target") & (frame.target_pred != frame.label)]
    assert resp["rowCount"] == len(want) and count.startswith(f"{len(want):,} of")
    assert [r["id"] for r in resp["rowData"]] == want.sort_values("target_loss", ascending=False,
                                                                  kind="stable")["id"].tolist()[:5]
    assert cb.rows_for_request(tiny_cache, None, "", [], None) == (NO, NO)


@pytest.mark.parametrize("request_, box", [
    ({"startRow": 0, "endRow": 10, "filterModel": {"nope": {"type": "equals", "filter": "x"}}}, ""),
    ({"startRow": 0, "endRow": 10, "sortModel": "id"}, ""),
    ({"startRow": 5, "endRow": 2}, ""),
    ({"startRow": 0, "endRow": 10}, "__import__('os')"),
    ({"startRow": 0, "endRow": 10}, {"q": 1}),
    ("junk", ""),
])
def test_a_refused_request_answers_no_rows_and_says_why(tiny_cache, request_, box):
    resp, count = cb.rows_for_request(tiny_cache, request_, box, [], None)
    assert resp == {"rowData": [], "rowCount": 0}
    assert "Refused" in str(count.children) and "\n" not in str(count.children)


def test_column_specs_come_from_the_cache(tiny_cache):
    specs = table_data.column_specs(tiny_cache)
    df = tiny_cache.instances
    assert set(specs) == {c[0] for c in ly.COLUMNS}
    assert set(specs["domain"].values) == set(df["domain"].unique())
    assert set(specs["split"].values) == set(df["split"].unique())
    assert specs["label"].values == tuple(tiny_cache.classes)
    assert specs["target_loss"].kind == "numeric" and specs["target_loss"].values is None


def test_filter_event_dispatch(tiny_cache):
    # a valid box query is stored for the row source and shown in the box
    q, box, msg = cb.filter_event(tiny_cache, ly.FILTER_INPUT, "target_loss > 1")
    assert (q, box) == ("{target_loss} > 1", "{target_loss} > 1") and "applied" in msg
    # a refused one leaves the query and the box alone
    q, box, msg = cb.filter_event(tiny_cache, ly.FILTER_APPLY, "eval(1)")
    assert q is NO and box is NO and msg.startswith("Refused")
    q, box, msg = cb.filter_event(tiny_cache, ly.FILTER_APPLY, 42)
    assert q is NO and box is NO and msg.startswith("Refused") and "text" in msg
    # a chip applies its expression
    q, box, _ = cb.filter_event(tiny_cache, {"type": ly.CHIP, "index": 0}, None)
    assert q == validate(ly.CHIPS[0][1], table_data.column_specs(tiny_cache)).query
    assert cb.filter_event(tiny_cache, {"type": ly.CHIP, "index": 99}, None) == (NO, NO, NO)


# --- pool and focus ---------------------------------------------------------------------------

def test_a_click_on_the_tick_cell_toggles_the_pool():
    assert cb.toggle_in_pool([5, 1], 2) == [5, 1, 2]      # ticked: the latest of the pool
    assert cb.toggle_in_pool([5, 1, 2], 1) == [5, 2]      # unticked: out of the pool
    full = list(range(POOL_SIZE))
    assert cb.toggle_in_pool(full, 99) == list(range(1, POOL_SIZE)) + [99]  # the oldest leaves a full pool
    assert cb.toggle_in_pool(None, 4) == [4]


def test_a_click_focuses_or_ticks(tiny_cache):
    n = len(tiny_cache.instances)
    tick = {"colId": ly.POOLED, "rowId": "7", "rowIndex": 2, "value": False, "timestamp": 1}
    assert cb.cell_click(tiny_cache, tick, [3]) == ([3, 7], NO)
    assert cb.cell_click(tiny_cache, tick, [3, 7]) == ([3], NO)
    cell = {"colId": "split", "rowId": "7", "rowIndex": 2, "value": "train", "timestamp": 2}
    # every click focuses (a new timestamp each time, so the same cell twice is two changes)
    assert cb.cell_click(tiny_cache, cell, []) == (NO, 7)
    assert cb.cell_click(tiny_cache, dict(cell, timestamp=3), []) == (NO, 7)
    for bad in (None, "x", {"colId": "split", "rowId": str(n)}, {"colId": "split"}, {"rowId": "-1"}):
        assert cb.cell_click(tiny_cache, bad, []) == (NO, NO)


def test_table_wiring(tiny_app):
    by_out = {c["output"]: c for c in tiny_app._callback_list}
    rows = next(c for o, c in by_out.items() if f"{ly.TABLE}.getRowsResponse" in o)
    assert [(i["id"], i["property"]) for i in rows["inputs"]] == [(ly.TABLE, "getRowsRequest")]
    assert {(s["id"], s["property"]) for s in rows["state"]} == {(ly.BOX_QUERY, "data"), (ids.POOL, "data"),
                                                                 (ids.FOCUS, "data")}
    click = next(c for o, c in by_out.items() if any(i["property"] == "cellClicked" for i in c["inputs"]))
    assert f"{ids.POOL}.data@" in click["output"] and f"{ids.FOCUS}.data@" in click["output"]
    # the clientside refresh follows the box query, the pool and the focus
    refresh = next(c for o, c in by_out.items() if ly.REFRESH in o)
    assert {i["id"] for i in refresh["inputs"]} == {ly.BOX_QUERY, ids.POOL, ids.FOCUS}
    assert any("purgeInfiniteCache" in js and "refreshInfiniteCache" in js for js in tiny_app._inline_scripts)


def test_records_for_keeps_order_and_skips_unknown(tiny_cache):
    recs = table_data.records_for(tiny_cache, [3, "1", 10 ** 6, -1, 3])
    assert [r["id"] for r in recs] == [3, 1]
    assert recs[0] == table_data.page_rows(table_data.table_frame(tiny_cache), np.array([3]))[0]


def test_layout_builds(tiny_cache):
    lay = ly.layout(tiny_cache)
    grid = ly.instance_table(tiny_cache)
    assert grid.rowModelType == "infinite"
    assert grid.dashGridOptions["cacheBlockSize"] == ly.BLOCK_SIZE
    assert grid.dashGridOptions["maxConcurrentDatasourceRequests"] == 1
    leaves = [c for top in grid.columnDefs for c in top.get("children", [top])]
    assert [c["field"] for c in leaves] == [ly.POOLED] + [c[0] for c in ly.COLUMNS]
    kinds = {c["field"]: c.get("filter") for c in leaves}
    assert kinds["target_loss"] == "agNumberColumnFilter" and kinds["domain"] == "agTextColumnFilter"
    assert kinds[ly.POOLED] is False
    assert lay.id == ly.CARD


def test_pool_view_shows_the_pool_newest_first(tiny_cache):
    df = tiny_cache.instances
    names = tiny_cache.classes
    ids = [int(df["id"].iloc[0]), int(df["id"].iloc[-1]), 10 ** 7]  # the last one does not exist
    children, title = pool_view(tiny_cache, ids, "/app/")
    assert title == f"Image pool (2/{POOL_SIZE})"
    assert len(children) == 2
    first = children[0]  # newest first: the cache's last instance
    last_row = df.iloc[-1]
    img = first.children[0]
    assert img.src == f"/app/thumb/{int(last_row['id'])}.png"
    text = str(first.to_plotly_json())
    assert names[int(last_row["label"])] in text and f"#{int(last_row['id'])}" in text
    assert f"{float(last_row['target_loss']):.2f}" in text and f"{float(last_row['source_loss']):.2f}" in text
    frame = {"source": SOURCE_COLOR, "target": TARGET_COLOR}[last_row["domain"]]
    assert frame in img.style["border"]
    empty, title = pool_view(tiny_cache, [], "/")
    assert title.startswith("Image pool (0/") and "Empty" in str(empty.children)


def test_a_filter_over_the_limit_is_refused_as_too_long_not_cut(tiny_cache):
    """Issue 16, item 6: the box's maxLength was the language's limit, so a longer text arrived cut
    to a prefix and was refused as "ends too early". The box now lets longer text through (its own
    cut lies far above the limit, so even a cut text is over it) and the validator says why."""
    box = find(ly.layout(tiny_cache), ly.FILTER_INPUT)
    assert box.maxLength is None or box.maxLength > MAX_LENGTH
    long = " && ".join(["{target_loss} > 2"] * 40)  # valid piece by piece, 20 * 40 characters
    assert len(long) > MAX_LENGTH
    typed = long[:box.maxLength] if box.maxLength else long
    assert len(typed) > MAX_LENGTH  # what the browser lets through is still over the limit
    query, text, message = cb.apply_filter(tiny_cache, typed)
    assert query is NO and text is NO  # the table's query is untouched, the text stays for editing
    assert message.startswith("Refused") and "too long" in message and str(MAX_LENGTH) in message
    assert f"{len(typed):,} characters" in message and "ends too early" not in message



def test_a_click_on_a_pool_image_focuses_its_instance(tiny_cache, tiny_app):
    """Issue 16, item 6: the pool's images did nothing when clicked; each is now a pattern-matching
    button (as the confusion grid's thumbnails) whose click sets ``ids.FOCUS``."""
    children, _ = pool_view(tiny_cache, [3, 5], "/")
    assert [c.id for c in children] == [{"type": ly.POOL_ITEM, "index": 5}, {"type": ly.POOL_ITEM, "index": 3}]
    assert all(c.n_clicks == 0 and c.role == "button" for c in children)  # a redraw is no click
    assert cb.pool_focus({"type": ly.POOL_ITEM, "index": 5}, 1) == 5
    assert cb.pool_focus({"type": ly.POOL_ITEM, "index": 5}, 0) is NO     # (re)drawn, not clicked
    assert cb.pool_focus({"type": "confusion-thumb", "index": 5}, 1) is NO
    assert cb.pool_focus(None, None) is NO
    writers = [c for c in tiny_app._callback_list if f"{ids.FOCUS}.data@" in c["output"]
               and any(ly.POOL_ITEM in json.dumps(i) for i in c["inputs"])]
    assert len(writers) == 1 and writers[0]["prevent_initial_call"]
    assert [i["property"] for i in writers[0]["inputs"]] == ["n_clicks"]
