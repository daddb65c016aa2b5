"""Instance-table callbacks: rows, the validated filter box, the image pool, focus on click.

Thin controllers, called by the tests without a browser; the rows and the filter box's
column specs come from :mod:`dashboard.views.instance_table.data` (built once per cache
object, at registration), the pool's markup from ``markup.pool_view``, and the box's text is
checked by ``filterexpr.validate``. Filtering, sorting and paging run in the browser
(DataTable's native actions); the "k of N match" line is a clientside callback over the
table's ``derived_virtual_indices`` so the filtered rows never travel to the server.

Ticks and the image pool (``ids.POOL``, also written by the timeline's clicks and its
"clear trails") are kept in step: the ticked rows are always the rows whose ids are in the
pool. Ticking a row adds it to the pool as its latest; unticking it takes it out (the
earlier rule, "unticking leaves the pool alone", would leave a pooled row shown unticked,
which is what the ticks are there to show); a pool changed anywhere else (cleared,
trimmed to its :data:`dashboard.pool.POOL_SIZE`, a timeline click) re-ticks the rows
(:func:`ticks_for_pool`). No loop: the re-ticking also writes the remembered selection
(``PREV_SELECTION``), so the tick callback it triggers finds nothing new and leaves the pool.

A click on a cell focuses its row's instance (``ids.FOCUS``) every time: the callback
clears ``active_cell`` after reading it, since DataTable only reports a change, and a
second click on the same cell would otherwise say nothing (plotly/dash-table#398). The
focused instance's row is highlighted instead (:func:`row_styles`), whoever set the focus. A click on an image of the
pool focuses its instance too (:func:`pool_focus`; pattern-matching ids, as the confusion
grid's thumbnails).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dash
from dash import ALL, Input, Output, State

from callbacks.common import clicked_focus, fired_click, first_open
from dashboard.export import csv_download
from dashboard.pool import add_to_pool, as_ids, focus_id
from dashboard.views.instance_table import data
from dashboard.views.instance_table.filterexpr import cells_can_show, validate
from dashboard.views.instance_table.markup import filter_message, pool_view
from layouts import ids
from layouts import instance_table as ly
from transferviz.cache import Cache

NO = dash.no_update


# --- rows ---------------------------------------------------------------------------------

def rows_for_tab(cache: Cache, tab: str | None, loaded: bool | None) -> tuple[Any, Any]:
    """``(rows, loaded flag)``: the rows once the diagnosis tab is first opened, then never again."""
    if not first_open(tab, ids.TAB_DIAGNOSIS, loaded):
        return NO, NO
    return data.table_records(cache), True


# --- filter box ---------------------------------------------------------------------------

def apply_filter(cache: Cache, text: str | None) -> tuple[Any, Any, str, Any]:
    """``(filter_query, box text, message, pending query)`` for text typed in the box (or a chip's).

    A refused text leaves the table's query alone and the text in the box for editing. A
    query the column cells cannot show is applied in two steps, "" first (which empties the
    cells) then the query (via the pending store), so no stale cell is left over to be
    merged into the next cell edit.
    """
    res = validate(text, data.column_specs(cache))
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
    row_of = data.row_index(cache)
    ids_ = [i for i in as_ids(pool) if i in row_of]
    return [row_of[i] for i in ids_], ids_


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


def pool_focus(triggered: Any, n_clicks: Any) -> Any:
    """The id of the clicked pool image for ``ids.FOCUS``, or no_update when the pool was merely (re)drawn."""
    return clicked_focus(triggered, n_clicks, ly.POOL_ITEM)


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


def export_rows(cache: Cache, trigger: Any, row_ids: Sequence[Any] | None, pool: Any) -> Any:
    """The CSV download for the button that fired: the table's rows as the filter and the sort show them
    (``derived_virtual_row_ids``; all rows before the table reported any), or the image pool."""
    if trigger == ly.POOL_EXPORT:
        return csv_download(cache, as_ids(pool), "pool") if as_ids(pool) else NO
    if trigger == ly.EXPORT:
        return csv_download(cache, row_ids, "instances")
    return NO


def register(app: dash.Dash, cache: Cache) -> None:
    prefix = app.config.requests_pathname_prefix
    data.warm(cache)

    @app.callback(Output(ly.TABLE, "data"), Output(ly.LOADED, "data"), Input(ids.TABS, "value"),
                  State(ly.LOADED, "data"))
    def _rows(tab, loaded):
        return rows_for_tab(cache, tab, loaded)

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
        query, box, msg, pending = filter_event(cache, trig, text, table_query, pending)
        return query, box, filter_message(msg), pending

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
        return ticks_for_pool(cache, pool, loaded)

    @app.callback(Output(ids.POOL, "data", allow_duplicate=True), Input(ly.POOL_CLEAR, "n_clicks"),
                  prevent_initial_call=True)
    def _clear(_n):
        return []  # the ticks follow (_ticks)

    @app.callback(Output(ly.DOWNLOAD, "data"), Input(ly.EXPORT, "n_clicks"), Input(ly.POOL_EXPORT, "n_clicks"),
                  State(ly.TABLE, "derived_virtual_row_ids"), State(ids.POOL, "data"), prevent_initial_call=True)
    def _export(_table, _pool, row_ids, pool):
        return export_rows(cache, dash.ctx.triggered_id, row_ids, pool)

    @app.callback(Output(ly.POOL_VIEW, "children"), Output(ly.POOL_TITLE, "children"), Input(ids.POOL, "data"))
    def _pool(pool):
        return pool_view(cache, pool, prefix)

    @app.callback(Output(ids.FOCUS, "data", allow_duplicate=True),
                  Input({"type": ly.POOL_ITEM, "index": ALL}, "n_clicks"), prevent_initial_call=True)
    def _pool_click(_):
        return pool_focus(*fired_click())

    @app.callback(Output(ids.FOCUS, "data", allow_duplicate=True), Output(ly.TABLE, "active_cell"),
                  Output(ly.TABLE, "selected_cells"), Input(ly.TABLE, "active_cell"), prevent_initial_call=True)
    def _focus(active_cell):
        return cell_click(cache, active_cell)

    # FOCUS starts empty (layouts/page.py): the layout's styles hold until something sets it
    @app.callback(Output(ly.TABLE, "style_data_conditional"), Input(ids.FOCUS, "data"), prevent_initial_call=True)
    def _focus_row(focus):
        return row_styles(focus, len(cache.instances))
