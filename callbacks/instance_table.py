"""Instance-table callbacks: the grid's blocks, the validated filter box, the image pool, focus on click.

Thin controllers, called by the tests without a browser. The grid (dash-ag-grid, infinite row
model) asks for a block with ``getRowsRequest``; :func:`rows_for_request` answers it from
:mod:`dashboard.views.instance_table.rows` (filter box AND column filters, sort, slice: only
the block travels) together with the "k of N match" line. The box's text is checked by
``filterexpr.validate`` and its canonical query kept in ``ly.BOX_QUERY``; a clientside
callback then makes the grid drop its blocks and ask again (``purgeInfiniteCache``).

The tick column and the image pool (``ids.POOL``, also written by the timeline's clicks and
its "clear trails") cannot disagree: each row carries ``pooled`` from the pool itself, and a
pool changed anywhere makes the grid reload its loaded blocks (``refreshInfiniteCache``).
Likewise the focused instance's row (``focused``). A click on the tick cell adds the row's
instance to the pool as its latest, or takes it out; a click on any other cell focuses the
instance (``ids.FOCUS``), every click (``cellClicked`` carries a timestamp, so the same cell
clicked twice is two changes). A click on an image of the pool focuses its instance too
(:func:`pool_focus`; pattern-matching ids, as the confusion grid's thumbnails).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dash
from dash import ALL, Input, Output, State

from callbacks.common import clicked_focus, fired_click
from dashboard.export import ExportError, export_callback_js, register_export
from dashboard.pool import add_to_pool, as_ids, focus_id
from dashboard.views.instance_table import data
from dashboard.views.instance_table.filterexpr import EXAMPLE, validate
from dashboard.views.instance_table.markup import filter_message, pool_view
from dashboard.views.instance_table.rows import answer, matching_ids
from layouts import ids
from layouts import instance_table as ly
from transferviz.cache import Cache

NO = dash.no_update


# --- rows ---------------------------------------------------------------------------------

def rows_for_request(cache: Cache, request: Any, box_query: Any, pool: Any, focus: Any) -> tuple[Any, Any]:
    """``(getRowsResponse, count line)`` for one block the grid asked for; a refused request gets no
    rows (the grid stops waiting) and the reason in the count line, never an error."""
    if request is None:
        return NO, NO
    ans = answer(cache, request, box_query, pool if isinstance(pool, list) else [], focus)
    return ans.response, (ans.count if ans.ok else filter_message(ans.count))


# --- filter box ---------------------------------------------------------------------------

def apply_filter(cache: Cache, text: Any) -> tuple[Any, Any, str]:
    """``(box query, box text, message)`` for text typed in the box (or a chip's). A refused text
    leaves the query alone and the text in the box for editing."""
    if text is not None and not isinstance(text, str):
        return NO, NO, f"Refused: the filter must be text. A valid example: {EXAMPLE}"
    res = validate(text, data.column_specs(cache))
    if not res.ok:
        return NO, NO, res.message
    return res.query, res.query, res.message


def filter_event(cache: Cache, trigger: Any, text: Any) -> tuple[Any, Any, Any]:
    """Dispatches the filter callback on what fired it: a chip or the box (Enter/Apply)."""
    if isinstance(trigger, dict) and trigger.get("type") == ly.CHIP:
        i = trigger.get("index")
        if not isinstance(i, int) or not 0 <= i < len(ly.CHIPS):
            return NO, NO, NO
        return apply_filter(cache, ly.CHIPS[i][1])
    return apply_filter(cache, text)


# --- clicks: ticks (the pool) and focus -------------------------------------------------------

def toggle_in_pool(pool: Sequence[Any] | None, instance_id: int) -> list[int]:
    """The pool with ``instance_id`` taken out if it was in, else added as the latest."""
    now = as_ids(pool)
    return [i for i in now if i != instance_id] if instance_id in now else add_to_pool(now, [instance_id])


def cell_click(cache: Cache, clicked: Any, pool: Any) -> tuple[Any, Any]:
    """``(pool, focus)`` after a click on a cell: the tick cell toggles the row's instance in the pool,
    any other cell focuses it. Anything malformed changes nothing."""
    if not isinstance(clicked, Mapping):
        return NO, NO
    fid = focus_id(clicked.get("rowId"), len(cache.instances))
    if fid is None:
        return NO, NO
    if clicked.get("colId") == ly.POOLED:
        return toggle_in_pool(pool if isinstance(pool, list) else [], fid), NO
    return NO, fid


def pool_focus(triggered: Any, n_clicks: Any) -> Any:
    """The id of the clicked pool image for ``ids.FOCUS``, or no_update when the pool was merely (re)drawn."""
    return clicked_focus(triggered, n_clicks, ly.POOL_ITEM)


# --- export -------------------------------------------------------------------------------

def export_rows(cache: Cache, state: dict) -> tuple[list[int], str]:
    """What a CSV button of the table exports (``dashboard.export``'s chooser): with ``what`` "pool" the
    image pool; else the rows the box (``box_query``) and the grid's column filters keep, in the grid's
    sort (``request``: its last ``getRowsRequest``; every row before it asked)."""
    if state.get("what") == "pool":
        pool = as_ids(state.get("pool") if isinstance(state.get("pool"), list) else [])
        if not pool:
            raise ExportError("the image pool is empty: tick instances in the table to add them")
        return pool, "pool"
    row_ids = matching_ids(cache, state.get("request") or {}, state.get("box_query"))
    if row_ids is None:
        raise ExportError("the table's filters or sort are not valid: clear them and export again")
    return row_ids, "instances"


# --- wiring -------------------------------------------------------------------------------

#: A new box query: drop every block and start from the top; a new pool or focus: reload the
#: loaded blocks where they are (their ``pooled``/``focused`` flags changed).
_REFRESH_JS = """
function(_query, _pool, _focus) {
    const trig = (dash_clientside.callback_context.triggered || []).map(t => t.prop_id);
    const purge = trig.some(p => p.startsWith("%(box)s."));
    dash_ag_grid.getApiAsync("%(grid)s").then(api => {
        if (purge) { api.purgeInfiniteCache(); api.ensureIndexVisible(0, "top"); }
        else { api.refreshInfiniteCache(); }
    }).catch(() => null);
    return Date.now();
}
"""


def register(app: dash.Dash, cache: Cache) -> None:
    prefix = app.config.requests_pathname_prefix
    data.warm(cache)

    @app.callback(Output(ly.TABLE, "getRowsResponse"), Output(ly.COUNT, "children"),
                  Input(ly.TABLE, "getRowsRequest"), State(ly.BOX_QUERY, "data"), State(ids.POOL, "data"),
                  State(ids.FOCUS, "data"), prevent_initial_call=True)
    def _rows(request, box_query, pool, focus):
        return rows_for_request(cache, request, box_query, pool, focus)

    @app.callback(
        Output(ly.BOX_QUERY, "data"), Output(ly.FILTER_INPUT, "value"), Output(ly.FILTER_MSG, "children"),
        Input(ly.FILTER_APPLY, "n_clicks"), Input(ly.FILTER_INPUT, "n_submit"),
        Input({"type": ly.CHIP, "index": ALL}, "n_clicks"),
        State(ly.FILTER_INPUT, "value"),
        prevent_initial_call=True,
    )
    def _filter(_apply, _submit, chips, text):
        trig = dash.ctx.triggered_id
        if isinstance(trig, dict) and not any(chips or []):
            return NO, NO, NO  # chips re-rendered, nothing clicked
        query, box, msg = filter_event(cache, trig, text)
        return query, box, filter_message(msg)

    app.clientside_callback(_REFRESH_JS % {"box": ly.BOX_QUERY, "grid": ly.TABLE}, Output(ly.REFRESH, "data"),
                            Input(ly.BOX_QUERY, "data"), Input(ids.POOL, "data"), Input(ids.FOCUS, "data"),
                            prevent_initial_call=True)

    @app.callback(Output(ids.POOL, "data", allow_duplicate=True), Output(ids.FOCUS, "data", allow_duplicate=True),
                  Input(ly.TABLE, "cellClicked"), State(ids.POOL, "data"), prevent_initial_call=True)
    def _click(clicked, pool):
        return cell_click(cache, clicked, pool)

    @app.callback(Output(ids.POOL, "data", allow_duplicate=True), Input(ly.POOL_CLEAR, "n_clicks"),
                  prevent_initial_call=True)
    def _clear(_n):
        return []  # the ticks follow (the grid reloads its blocks)

    # the CSV buttons: the browser posts the table's state to the export route (no callback on the server)
    url = register_export(app, cache, "instances", export_rows)
    app.clientside_callback(
        export_callback_js(url, ["request", "box_query", "pool"], {ly.EXPORT: "shown", ly.POOL_EXPORT: "pool"}),
        Output(ly.DOWNLOAD, "data"), Input(ly.EXPORT, "n_clicks"), Input(ly.POOL_EXPORT, "n_clicks"),
        State(ly.TABLE, "getRowsRequest"), State(ly.BOX_QUERY, "data"), State(ids.POOL, "data"),
        prevent_initial_call=True)

    @app.callback(Output(ly.POOL_VIEW, "children"), Output(ly.POOL_TITLE, "children"), Input(ids.POOL, "data"))
    def _pool(pool):
        return pool_view(cache, pool, prefix)

    @app.callback(Output(ids.FOCUS, "data", allow_duplicate=True),
                  Input({"type": ly.POOL_ITEM, "index": ALL}, "n_clicks"), prevent_initial_call=True)
    def _pool_click(_):
        return pool_focus(*fired_click())
