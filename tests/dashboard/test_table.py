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
    cells_can_show,
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

def test_records_match_the_cache(tiny_cache):
    df = tiny_cache.instances
    recs = table_data.table_records(tiny_cache)
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
    specs = table_data.column_specs(tiny_cache)
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
    assert q == validate(ly.CHIPS[0][1], table_data.column_specs(tiny_cache)).query
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
    assert cells_can_show(query) is expected


# --- pool and focus ---------------------------------------------------------------------------

def test_pool_after_selection_follows_the_ticks():
    pool, sel = cb.pool_after_selection([5], [1, 2], [])
    assert pool == [5, 1, 2] and sel == [1, 2]
    pool, sel = cb.pool_after_selection(pool, [1, 2, 9], sel)      # one more tick
    assert pool == [5, 1, 2, 9]
    pool2, sel = cb.pool_after_selection(pool, [2, 9], sel)        # unticking takes the row out
    assert pool2 == [5, 2, 9] and sel == [2, 9]
    pool3, _ = cb.pool_after_selection(pool2, [2, 9, 5], sel)      # ticking a pooled id moves it to the end
    assert pool3 == [2, 9, 5]
    many, _ = cb.pool_after_selection([], list(range(40)), [])
    assert many == list(range(40 - POOL_SIZE, 40))
    assert cb.pool_after_selection(None, None, None) == ([], [])
    # the same selection again (the echo of a re-ticking) changes nothing
    assert cb.pool_after_selection([7, 3], ["3", 7], [7, 3]) == ([7, 3], [3, 7])


def test_ticks_follow_a_pool_changed_elsewhere(tiny_cache):
    recs = table_data.table_records(tiny_cache)
    n = len(recs)
    rows, ids_ = cb.ticks_for_pool(tiny_cache, [5, 2, 10 ** 7, "x"], True)
    assert ids_ == [5, 2] and [recs[r]["id"] for r in rows] == [5, 2]   # row indices of those ids
    assert cb.ticks_for_pool(tiny_cache, [], True) == ([], [])           # "clear trails": every tick goes
    assert cb.ticks_for_pool(tiny_cache, None, True) == ([], [])
    assert cb.ticks_for_pool(tiny_cache, [n - 1], True) == ([n - 1], [n - 1])
    assert cb.ticks_for_pool(tiny_cache, [5], False) == (NO, NO)        # rows not loaded yet: nothing to tick


class _Browser:
    """The two callbacks' loop as the browser runs it: ticks -> ``_select``; pool -> ``_ticks``,
    whose ``selected_rows`` come back as ``selected_row_ids`` (the rows' ids)."""

    def __init__(self, cache):
        self.cache, self.pool, self.prev, self.ticked = cache, [], [], []
        self.recs = table_data.table_records(cache)
        self.calls = 0

    def tick(self, selected):            # the user changes the ticks
        self.ticked = list(selected)
        self._select()

    def set_pool(self, pool):            # another view writes ids.POOL
        self.pool = list(pool)
        self._ticks()

    def _select(self):
        self.calls += 1
        assert self.calls < 20, "callback loop"
        new_pool, self.prev = cb.pool_after_selection(self.pool, self.ticked, self.prev)
        if new_pool != self.pool:        # the callback answers no_update otherwise
            self.set_pool(new_pool)

    def _ticks(self):
        self.calls += 1
        rows, self.prev = cb.ticks_for_pool(self.cache, self.pool, True)
        ticked = [self.recs[r]["id"] for r in rows]
        if set(ticked) != set(self.ticked):  # DataTable reports selected_row_ids only when they change
            self.ticked = ticked
            self._select()


def test_ticks_and_pool_stay_in_step_without_a_loop(tiny_cache):
    b = _Browser(tiny_cache)
    b.tick([1, 2, 3])
    assert b.pool == [1, 2, 3] and set(b.ticked) == {1, 2, 3}
    b.set_pool(b.pool + [40])            # a timeline click adds an instance: its row gets ticked
    assert set(b.ticked) == {1, 2, 3, 40}
    b.tick([1, 3, 40])                   # unticking a row takes it out of the pool
    assert b.pool == [1, 3, 40]
    b.set_pool([])                       # "clear trails" elsewhere: every tick goes
    assert b.ticked == [] and b.prev == [] and b.pool == []
    b.tick(list(range(POOL_SIZE)))       # a full pool, then one more tick evicts the oldest and unticks it
    b.tick(list(range(POOL_SIZE + 1)))
    assert b.pool == list(range(1, POOL_SIZE + 1)) and sorted(b.ticked) == b.pool
    assert b.calls < 20


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


def test_focus_from_cell(tiny_cache):
    n = len(tiny_cache.instances)
    assert cb.focus_from_cell(tiny_cache, {"row": 0, "column": 1, "column_id": "split", "row_id": 3}) == 3
    assert cb.focus_from_cell(tiny_cache, {"row": 0, "column": 1, "row_id": n}) is NO     # unknown id
    assert cb.focus_from_cell(tiny_cache, {"row": 0, "column": 1}) is NO
    assert cb.focus_from_cell(tiny_cache, None) is NO


def test_every_click_on_a_cell_focuses_its_instance(tiny_cache):
    cell = {"row": 4, "column": 2, "column_id": "split", "row_id": 7}
    # the click is forgotten (active cell and selection cleared) so the same cell clicked again
    # after the focus moved elsewhere is a change for DataTable and focuses row 7 again
    assert cb.cell_click(tiny_cache, cell) == (7, None, [])
    assert cb.cell_click(tiny_cache, dict(cell)) == (7, None, [])
    assert cb.cell_click(tiny_cache, None) == (NO, NO, NO)       # our own reset echoes back: nothing
    assert cb.cell_click(tiny_cache, {"row": 0, "column": 0, "row_id": len(tiny_cache.instances)})[0] is NO


def test_focused_row_is_highlighted():
    base = ly.style_data_conditional()
    styles = cb.row_styles(7, 100)
    assert styles[1:] == base
    assert styles[0]["if"] == {"filter_query": "{id} = 7"} and styles[0]["backgroundColor"] == cb.FOCUS_ROW_COLOR
    for bad in (None, 100, "x", -1, 2.5):
        assert cb.row_styles(bad, 100) == base


def test_table_wiring(tiny_app):
    by_out = {c["output"]: c for c in tiny_app._callback_list}
    focus = next(c for o, c in by_out.items() if f"{ly.TABLE}.active_cell" in o)
    assert f"{ids.FOCUS}.data@" in focus["output"] and focus["prevent_initial_call"]
    assert [i["property"] for i in focus["inputs"]] == ["active_cell"]
    ticks = next(c for o, c in by_out.items() if f"{ly.TABLE}.selected_rows" in o)
    assert {(i["id"], i["property"]) for i in ticks["inputs"]} == {(ids.POOL, "data"), (ly.LOADED, "data")}
    # selected_rows has one writer (the pool), so nothing else can tick rows out of step
    assert sum(f"{ly.TABLE}.selected_rows" in o for o in by_out) == 1


def test_records_for_keeps_order_and_skips_unknown(tiny_cache):
    recs = table_data.records_for(tiny_cache, [3, "1", 10 ** 6, -1, 3])
    assert [r["id"] for r in recs] == [3, 1]
    assert recs[0] == table_data.table_records(tiny_cache)[3]


def test_layout_builds(tiny_cache):
    lay = ly.layout(tiny_cache)
    table = ly.instance_table(tiny_cache)
    assert table.page_size == ly.PAGE_SIZE and table.row_selectable == "multi"
    assert table.sort_mode == "multi" and table.filter_action == "native"
    assert [c["id"] for c in table.columns] == [c[0] for c in ly.COLUMNS]
    assert lay.id == ly.CARD
    assert np.all([isinstance(c["name"], list) for c in table.columns])


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
    query, text, message, _ = cb.apply_filter(tiny_cache, typed)
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
