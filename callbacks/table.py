"""Instance-table callbacks: rows, the validated filter box, the image pool, focus on click.

Thin callbacks over module-level pure functions (cache + plain values in) that the tests
call without a browser. The rows are built once per process, keyed on the app's Cache
object (:func:`table_records`). Filtering, sorting and paging run in the browser (DataTable's
native actions); the "k of N match" line is a clientside callback over the table's
``derived_virtual_indices`` so the filtered rows never travel to the server.

Ticks and the image pool (``ids.POOL``, also written by the timeline's clicks and its
"clear trails") are kept in step: the ticked rows are always the rows whose ids are in the
pool. Ticking a row adds it to the pool as its latest; unticking it takes it out (the
earlier rule, "unticking leaves the pool alone", would leave a pooled row shown unticked,
which is what the ticks are there to show); a pool changed anywhere else (cleared,
trimmed to its :data:`POOL_SIZE`, a timeline click) re-ticks the rows
(:func:`ticks_for_pool`). No loop: the re-ticking also writes the remembered selection
(``PREV_SELECTION``), so the tick callback it triggers finds nothing new and leaves the pool.

A click on a cell focuses its row's instance (``ids.FOCUS``) every time: the callback
clears ``active_cell`` after reading it, since DataTable only reports a change, and a
second click on the same cell would otherwise say nothing (plotly/dash-table#398). The
focused instance's row is highlighted instead (:func:`row_styles`), whoever set the focus.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import dash
from dash import ALL, Input, Output, State, html

from callbacks import first_open, thumb_img
from dashboard import data
from dashboard.app import get_cache
from dashboard.figures.theme import (
    MISPREDICTED_COLOR,
    SOURCE_COLOR,
    TARGET_COLOR,
)
from dashboard.filterexpr import ColumnSpec, validate
from dashboard.pool import POOL_SIZE, add_to_pool, as_ids, focus_id
from layouts import ids
from layouts import table as ly
from transferviz.cache import Cache

NO = dash.no_update
ROUND = 4  # decimals kept for confidences and losses: the rows travel as JSON (~1 MB on the demo)


# --- rows ---------------------------------------------------------------------------------

def table_records(cache: Cache) -> list[dict[str, Any]]:
    """One row per instance, in ``cache.instances`` order; labels and predictions as class names,
    ``pred_changed`` as "yes"/"no" (the filter language compares text, not booleans)."""
    return _records(cache)


@lru_cache(maxsize=4)
def _records(cache: Cache) -> list[dict[str, Any]]:
    """Memoized per Cache object (it hashes by identity; the app holds one per process)."""
    df = cache.instances
    names = list(cache.classes)

    def name(i: int) -> str:
        return names[i] if 0 <= i < len(names) else str(i)

    def num(x: Any) -> float | None:
        v = data._num(x)
        return None if v is None else round(v, ROUND) + 0.0  # + 0.0: no "-0.0" in the table

    return [{
        "id": int(r.id), "domain": str(r.domain), "split": str(r.split), "label": name(int(r.label)),
        "source_pred": name(int(r.source_pred)), "source_conf": num(r.source_conf), "source_loss": num(r.source_loss),
        "target_pred": name(int(r.target_pred)), "target_conf": num(r.target_conf), "target_loss": num(r.target_loss),
        "pred_changed": "yes" if bool(r.pred_changed) else "no",
    } for r in df.itertuples(index=False)]


def records_for(cache: Cache, instance_ids: Sequence[Any]) -> list[dict[str, Any]]:
    """Rows of ``instance_ids`` in that order; unknown ids are skipped."""
    recs, row_of = _records(cache), _row_index(cache)
    return [recs[row_of[i]] for i in as_ids(instance_ids) if i in row_of]


def rows_for_tab(cache: Cache, tab: str | None, loaded: bool | None) -> tuple[Any, Any]:
    """``(rows, loaded flag)``: the rows once the diagnosis tab is first opened, then never again."""
    if not first_open(tab, ids.TAB_DIAGNOSIS, loaded):
        return NO, NO
    return table_records(cache), True


# --- filter box ---------------------------------------------------------------------------

def column_specs(cache: Cache) -> dict[str, ColumnSpec]:
    """What the filter box may name: each column's kind and, for categorical ones, its values."""
    return _specs(cache)


@lru_cache(maxsize=4)
def _specs(cache: Cache) -> dict[str, ColumnSpec]:
    df = cache.instances
    classes = tuple(str(c) for c in cache.classes)
    values = {"domain": tuple(sorted(df["domain"].astype(str).unique())),
              "split": tuple(sorted(df["split"].astype(str).unique())),
              "label": classes, "source_pred": classes, "target_pred": classes, "pred_changed": ("yes", "no")}
    aliases = {"label": ("label_name",), "pred_changed": ("changed",)}
    return {cid: ColumnSpec(cid, kind, values.get(cid) if kind == "text" else None, aliases.get(cid, ()))
            for cid, _, _, kind in ly.COLUMNS}


def cells_can_show(query: str) -> bool:
    """Whether DataTable can spread ``query`` over its column filter cells: ``&&``-joined
    conditions, one per column (what its MultiColumnsSyntaxTree accepts). Errs towards "no"."""
    if any(tok in query for tok in ("||", "!(", "(")):
        return False
    left = re.findall(r"(?:^|&& )\{(\w+)\}", query)
    return len(left) == len(set(left))


def apply_filter(cache: Cache, text: str | None) -> tuple[Any, Any, str, Any]:
    """``(filter_query, box text, message, pending query)`` for text typed in the box (or a chip's).

    A refused text leaves the table's query alone and the text in the box for editing. A
    query the column cells cannot show is applied in two steps, "" first (which empties the
    cells) then the query (via the pending store), so no stale cell is left over to be
    merged into the next cell edit.
    """
    res = validate(text, column_specs(cache))
    if not res.ok:
        return NO, NO, res.message, NO
    if res.query and not cells_can_show(res.query):
        return "", res.query, res.message, res.query
    return res.query, res.query, res.message, None


def sync_from_table(query: str | None, pending: str | None) -> tuple[Any, Any, Any, Any]:
    """The table's query changed without the box: a column filter cell (the box shows it) or
    the second step of a box query (nothing to do)."""
    q = query or ""
    if pending and q == pending:
        return NO, NO, NO, NO
    return NO, q, (f"Column filters: {q}" if q else "Filter cleared: every instance is shown."), None


def filter_event(cache: Cache, trigger: Any, text: str | None, table_query: str | None,
                 pending: str | None = None) -> tuple[Any, Any, Any, Any]:
    """Dispatches the filter callback on what fired it: a chip, the box (Enter/Apply) or the table."""
    if isinstance(trigger, dict) and trigger.get("type") == ly.CHIP:
        i = trigger.get("index")
        if not isinstance(i, int) or not 0 <= i < len(ly.CHIPS):
            return NO, NO, NO, NO
        return apply_filter(cache, ly.CHIPS[i][1])
    if trigger == ly.TABLE:
        return sync_from_table(table_query, pending)
    return apply_filter(cache, text)


# --- image pool ---------------------------------------------------------------------------

def pool_after_selection(pool: Sequence[Any] | None, selected: Sequence[Any] | None,
                         previous: Sequence[Any] | None) -> tuple[list[int], list[int]]:
    """``(pool, selection to remember)``: the ids ticked since the last selection join the pool
    as its latest, the ids unticked since then leave it (the ticks mirror the pool)."""
    sel = as_ids(selected)
    now, before = set(sel), set(as_ids(previous))
    new = [i for i in sel if i not in before]
    gone = before - now
    kept = [i for i in as_ids(pool) if i not in gone]
    return (add_to_pool(kept, new) if new else kept), sel


def ticks_for_pool(cache: Cache, pool: Sequence[Any] | None, loaded: bool | None) -> tuple[Any, Any]:
    """``(selected_rows, selection to remember)`` showing ``pool`` as ticks: the table's row
    indices of the pooled ids (pool order) and those ids; nothing before the rows are loaded."""
    if not loaded:
        return NO, NO
    row_of = _row_index(cache)
    ids_ = [i for i in as_ids(pool) if i in row_of]
    return [row_of[i] for i in ids_], ids_


@lru_cache(maxsize=4)
def _row_index(cache: Cache) -> dict[int, int]:
    """Instance id -> its row in :func:`table_records`."""
    return {r["id"]: k for k, r in enumerate(_records(cache))}


def _pool_item(rec: dict[str, Any], prefix: str) -> html.Div:

    def model_line(model: str, mcolor: str) -> html.Div:
        pred, loss = rec[f"{model}_pred"], rec[f"{model}_loss"]
        wrong = pred != rec["label"]
        return html.Div([
            html.Span(model[0].upper(), style={"color": mcolor, "fontWeight": 700}), " ",
            html.Span(pred, style={"fontWeight": 700, "color": MISPREDICTED_COLOR} if wrong else {}),
            "\u2717" if wrong else "", f" {loss:.2f}" if loss is not None else "",
        ], style={"whiteSpace": "nowrap"})

    title = (f"#{rec['id']} · {rec['domain']} · {rec['split']} · true {rec['label']} · "
             f"source model {rec['source_pred']} (loss {rec['source_loss']}) · "
             f"target model {rec['target_pred']} (loss {rec['target_loss']})")
    return html.Div(title=title, className="table-pool-item",
                    style={"width": 74, "fontSize": "0.64rem", "lineHeight": 1.2, "textAlign": "center"}, children=[
        thumb_img(prefix, rec["id"], rec["domain"], 52, border=3),
        html.Div(f"#{rec['id']}", className="text-muted"),
        html.Div(["true ", html.B(rec["label"])], style={"whiteSpace": "nowrap", "overflow": "hidden",
                                                         "textOverflow": "ellipsis"}),
        model_line("source", SOURCE_COLOR),
        model_line("target", TARGET_COLOR),
    ])


def pool_view(cache: Cache, pool: Sequence[Any] | None, prefix: str) -> tuple[Any, str]:
    """``(children, title)`` of the image pool, newest first."""
    recs = records_for(cache, as_ids(pool)[-POOL_SIZE:])
    title = f"Image pool ({len(recs)}/{POOL_SIZE})"
    if not recs:
        return html.Div("Empty: tick rows in the table (or click instances on the timeline) to collect them here.",
                        className="text-muted small"), title
    return [_pool_item(r, prefix) for r in reversed(recs)], title


def focus_from_cell(cache: Cache, active_cell: dict | None) -> Any:
    """The clicked row's instance id for ``ids.FOCUS`` (the table's rows carry ``id`` as row id)."""
    if not active_cell:
        return NO
    fid = focus_id(active_cell.get("row_id"), len(cache.instances))
    return NO if fid is None else fid


def cell_click(cache: Cache, active_cell: dict | None) -> tuple[Any, Any, Any]:
    """``(focus, active_cell, selected_cells)`` after a click: the row's instance, and the click
    forgotten so that the next click on the same cell is a change again. Our own reset (None)
    changes nothing."""
    if not active_cell:
        return NO, NO, NO
    return focus_from_cell(cache, active_cell), None, []


#: Background of the focused instance's row (neutral: red/blue mean source/target).
FOCUS_ROW_COLOR = "#fff1b8"


def row_styles(focus: Any, n_instances: int) -> list[dict]:
    """The table's conditional styles with the focused instance's row highlighted (first, so
    the per-column colours of domain and mispredictions still show on it)."""
    fid = focus_id(focus, n_instances)
    row = ([{"if": {"filter_query": f"{{id}} = {fid}"}, "backgroundColor": FOCUS_ROW_COLOR}]
           if fid is not None else [])
    return row + ly.style_data_conditional()


# --- wiring -------------------------------------------------------------------------------

_COUNT_JS = """
function(indices, rows) {
    const n = (rows || []).length;
    if (!n) { return "Loading the instances…"; }
    const k = (indices || []).length;
    return `${k.toLocaleString("en")} of ${n.toLocaleString("en")} instances match`;
}
"""


def register(app: dash.Dash) -> None:
    prefix = app.config.requests_pathname_prefix
    # built at start-up (~0.1 s on the demo), not when the first visitor opens the tab
    table_records(get_cache(app))
    column_specs(get_cache(app))

    @app.callback(Output(ly.TABLE, "data"), Output(ly.LOADED, "data"), Input(ids.TABS, "value"),
                  State(ly.LOADED, "data"))
    def _rows(tab, loaded):
        return rows_for_tab(get_cache(app), tab, loaded)

    app.clientside_callback(_COUNT_JS, Output(ly.COUNT, "children"),
                            Input(ly.TABLE, "derived_virtual_indices"), Input(ly.TABLE, "data"))

    @app.callback(
        Output(ly.TABLE, "filter_query"), Output(ly.FILTER_INPUT, "value"), Output(ly.FILTER_MSG, "children"),
        Output(ly.PENDING_QUERY, "data"),
        Input(ly.FILTER_APPLY, "n_clicks"), Input(ly.FILTER_INPUT, "n_submit"),
        Input({"type": ly.CHIP, "index": ALL}, "n_clicks"), Input(ly.TABLE, "filter_query"),
        State(ly.FILTER_INPUT, "value"), State(ly.PENDING_QUERY, "data"),
        prevent_initial_call=True,
    )
    def _filter(_apply, _submit, chips, table_query, text, pending):
        trig = dash.ctx.triggered_id
        if isinstance(trig, dict) and not any(chips or []):
            return NO, NO, NO, NO  # chips re-rendered, nothing clicked
        query, box, msg, pending = filter_event(get_cache(app), trig, text, table_query, pending)
        if isinstance(msg, str) and msg.startswith("Refused"):
            msg = html.Span(msg, className="text-danger")
        return query, box, msg, pending

    @app.callback(Output(ly.TABLE, "filter_query", allow_duplicate=True), Input(ly.PENDING_QUERY, "data"),
                  prevent_initial_call=True)
    def _second_step(pending):
        return pending if pending else NO

    @app.callback(
        Output(ids.POOL, "data", allow_duplicate=True), Output(ly.PREV_SELECTION, "data"),
        Input(ly.TABLE, "selected_row_ids"), State(ly.PREV_SELECTION, "data"), State(ids.POOL, "data"),
        prevent_initial_call=True,
    )
    def _select(selected, previous, pool):
        new_pool, sel = pool_after_selection(pool, selected, previous)
        return (NO if new_pool == as_ids(pool) else new_pool), sel

    @app.callback(
        Output(ly.TABLE, "selected_rows"), Output(ly.PREV_SELECTION, "data", allow_duplicate=True),
        Input(ids.POOL, "data"), Input(ly.LOADED, "data"),
        prevent_initial_call=True,
    )
    def _ticks(pool, loaded):
        return ticks_for_pool(get_cache(app), pool, loaded)

    @app.callback(Output(ids.POOL, "data", allow_duplicate=True), Input(ly.POOL_CLEAR, "n_clicks"),
                  prevent_initial_call=True)
    def _clear(_n):
        return []  # the ticks follow (_ticks)

    @app.callback(Output(ly.POOL_VIEW, "children"), Output(ly.POOL_TITLE, "children"), Input(ids.POOL, "data"))
    def _pool(pool):
        return pool_view(get_cache(app), pool, prefix)

    @app.callback(Output(ids.FOCUS, "data", allow_duplicate=True), Output(ly.TABLE, "active_cell"),
                  Output(ly.TABLE, "selected_cells"), Input(ly.TABLE, "active_cell"), prevent_initial_call=True)
    def _focus(active_cell):
        return cell_click(get_cache(app), active_cell)

    # FOCUS starts empty (layouts/page.py): the layout's styles hold until something sets it
    @app.callback(Output(ly.TABLE, "style_data_conditional"), Input(ids.FOCUS, "data"), prevent_initial_call=True)
    def _focus_row(focus):
        return row_styles(focus, len(get_cache(app).instances))
