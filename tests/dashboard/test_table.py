"""Instance table: the filter-expression validator (a whitelist, never evaluated) and the pure
functions behind the table's rows, the image pool and the focus, checked against the cache."""

from __future__ import annotations

import builtins
import re

import dash
import numpy as np
import pytest

from callbacks import table as cb
from dashboard.filterexpr import EXAMPLE, MAX_LENGTH, ColumnSpec, tokenize, validate
from dashboard.pool import POOL_SIZE
from layouts import ids
from layouts import table as ly

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
    ("x" * (MAX_LENGTH + 1), "longer than"),
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

def test_records_match_the_cache(tiny_cache):
    df = tiny_cache.instances
    recs = cb.table_records(tiny_cache)
    assert len(recs) == len(df)
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


def test_rows_load_once_when_the_tab_opens(tiny_cache):
    assert cb.rows_for_tab(tiny_cache, ids.TAB_ANALYSIS, False) == (NO, NO)
    rows, loaded = cb.rows_for_tab(tiny_cache, ids.TAB_DIAGNOSIS, False)
    assert len(rows) == len(tiny_cache.instances) and loaded is True
    # later visits to the tab send nothing (and upload nothing: the flag, not the rows, is checked)
    assert cb.rows_for_tab(tiny_cache, ids.TAB_DIAGNOSIS, True) == (NO, NO)


def test_column_specs_come_from_the_cache(tiny_cache):
    specs = cb.column_specs(tiny_cache)
    df = tiny_cache.instances
    assert set(specs) == {c[0] for c in ly.COLUMNS}
    assert set(specs["domain"].values) == set(df["domain"].unique())
    assert set(specs["split"].values) == set(df["split"].unique())
    assert specs["label"].values == tuple(tiny_cache.classes)
    assert specs["target_loss"].kind == "numeric" and specs["target_loss"].values is None


def test_filter_event_dispatch(tiny_cache):
    # a valid box query is written to the table and shown in the box
    q, box, msg, pending = cb.filter_event(tiny_cache, ly.FILTER_INPUT, "target_loss > 1", "")
    assert (q, box, pending) == ("{target_loss} > 1", "{target_loss} > 1", None) and "applied" in msg
    # a refused one leaves the table and the box alone
    q, box, msg, pending = cb.filter_event(tiny_cache, ly.FILTER_APPLY, "eval(1)", "{id} > 3")
    assert q is NO and box is NO and pending is NO and msg.startswith("Refused")
    # a query the column cells cannot show goes in two steps: "" now, the query next
    q, box, msg, pending = cb.filter_event(tiny_cache, ly.FILTER_INPUT, "{id} < 2 || {id} > 5", "")
    assert q == "" and pending == box == "{id} < 2 || {id} > 5"
    # ... and its second step coming back from the table changes nothing
    assert cb.filter_event(tiny_cache, ly.TABLE, None, pending, pending) == (NO, NO, NO, NO)
    # a column cell's query is mirrored in the box
    q, box, msg, pending = cb.filter_event(tiny_cache, ly.TABLE, None, "{id} s> 3", None)
    assert q is NO and box == "{id} s> 3" and "Column filters" in msg
    # a chip applies its expression
    q, box, _, _ = cb.filter_event(tiny_cache, {"type": ly.CHIP, "index": 0}, None, "")
    assert q == validate(ly.CHIPS[0][1], cb.column_specs(tiny_cache)).query
    assert cb.filter_event(tiny_cache, {"type": ly.CHIP, "index": 99}, None, "") == (NO, NO, NO, NO)


@pytest.mark.parametrize("query, expected", [
    ("{id} > 1 && {domain} = \"target\"", True),
    ("{target_pred} != {label}", True),
    ("{id} > 1 || {id} < 0", False),
    ("!({id} = 1)", False),
    ("({id} = 1)", False),
    ("{id} > 1 && {id} < 5", False),
])
def test_cells_can_show(query, expected):
    assert cb.cells_can_show(query) is expected


# --- pool and focus ---------------------------------------------------------------------------

def test_pool_after_selection_adds_only_new_ticks():
    pool, sel = cb.pool_after_selection([5], [1, 2], [])
    assert pool == [5, 1, 2] and sel == [1, 2]
    pool, sel = cb.pool_after_selection(pool, [1, 2, 9], sel)      # one more tick
    assert pool == [5, 1, 2, 9]
    pool2, sel = cb.pool_after_selection(pool, [2, 9], sel)        # unticking keeps the pool
    assert pool2 == pool and sel == [2, 9]
    pool3, _ = cb.pool_after_selection(pool, [2, 9, 5], sel)       # re-ticking moves to the end
    assert pool3 == [1, 2, 9, 5]
    many, _ = cb.pool_after_selection([], list(range(40)), [])
    assert many == list(range(40 - POOL_SIZE, 40))
    assert cb.pool_after_selection(None, None, None) == ([], [])


def test_pool_view_shows_the_pool_newest_first(tiny_cache):
    df = tiny_cache.instances
    names = tiny_cache.classes
    ids = [int(df["id"].iloc[0]), int(df["id"].iloc[-1]), 10 ** 7]  # the last one does not exist
    children, title = cb.pool_view(tiny_cache, ids, "/app/")
    assert title == f"Image pool (2/{POOL_SIZE})"
    assert len(children) == 2
    first = children[0]  # newest first: the cache's last instance
    last_row = df.iloc[-1]
    img = first.children[0]
    assert img.src == f"/app/thumb/{int(last_row['id'])}.png"
    text = str(first.to_plotly_json())
    assert names[int(last_row["label"])] in text and f"#{int(last_row['id'])}" in text
    assert f"{float(last_row['target_loss']):.2f}" in text and f"{float(last_row['source_loss']):.2f}" in text
    frame = {"source": "#d62728", "target": "#1f77b4"}[last_row["domain"]]
    assert frame in img.style["border"]
    empty, title = cb.pool_view(tiny_cache, [], "/")
    assert title.startswith("Image pool (0/") and "Empty" in str(empty.children)


def test_focus_from_cell(tiny_cache):
    n = len(tiny_cache.instances)
    assert cb.focus_from_cell(tiny_cache, {"row": 0, "column": 1, "column_id": "split", "row_id": 3}) == 3
    assert cb.focus_from_cell(tiny_cache, {"row": 0, "column": 1, "row_id": n}) is NO     # unknown id
    assert cb.focus_from_cell(tiny_cache, {"row": 0, "column": 1}) is NO
    assert cb.focus_from_cell(tiny_cache, None) is NO


def test_records_for_keeps_order_and_skips_unknown(tiny_cache):
    recs = cb.records_for(tiny_cache, [3, "1", 10 ** 6, -1, 3])
    assert [r["id"] for r in recs] == [3, 1]
    assert recs[0] == cb.table_records(tiny_cache)[3]


def test_layout_builds(tiny_cache):
    lay = ly.layout(tiny_cache)
    table = ly.instance_table(tiny_cache)
    assert table.page_size == ly.PAGE_SIZE and table.row_selectable == "multi"
    assert table.sort_mode == "multi" and table.filter_action == "native"
    assert [c["id"] for c in table.columns] == [c[0] for c in ly.COLUMNS]
    assert lay.id == ly.CARD
    assert np.all([isinstance(c["name"], list) for c in table.columns])
