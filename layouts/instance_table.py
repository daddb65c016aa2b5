"""Instance table (issue 6, item 2; issue 13, item 4): every instance with both models' predictions,
a filter-expression box, and the image pool of the ticked rows.

The table is a dash-ag-grid ``AgGrid`` with the infinite row model: the grid asks the server
for blocks of 100 rows (``getRowsRequest``: the block, its ``sortModel`` and ``filterModel``)
and ``callbacks/instance_table.py`` answers with only those rows, filtered and sorted in pandas
(``dashboard/views/instance_table/rows.py``), so the page stays light at 100k instances. The
box's expression (validated by :mod:`dashboard.views.instance_table.filterexpr`, never
evaluated as code) and the column filters of the grid's filter row combine with AND: the
box says what crosses columns (``{source_loss} > {target_loss}``, ``||``, ``!( )``), the
column filters refine one column each; the box keeps its chips and the "k of N match" line.

The tick column (☑) is the image pool (``ids.POOL``, shared with other views): a click on a
tick adds or removes the row's instance, and a pool changed elsewhere re-ticks the rows (the
rows carry ``pooled``, refreshed when the pool changes). A click on any other cell focuses
its instance (``ids.FOCUS``), every click; the focused instance's row is highlighted.
"""

from __future__ import annotations

from typing import Any

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.pool import POOL_SIZE
from dashboard.theme import MISPREDICTED_COLOR, SOURCE_COLOR, SOURCE_LIGHT, TARGET_COLOR, TARGET_LIGHT
from dashboard.views.instance_table.data import COLUMNS
from dashboard.views.instance_table.filterexpr import EXAMPLE, MAX_LENGTH
from dashboard.views.instance_table.markup import POOL_ITEM as POOL_ITEM  # a pool image's id type (built there)
from transferviz.cache import Cache

# Component ids of this view.
CARD = "table-card"
TABLE = "table-instances"
COUNT = "table-count"
FILTER_INPUT = "table-filter-input"
FILTER_APPLY = "table-filter-apply"
FILTER_MSG = "table-filter-msg"
CHIP = "table-chip"              # pattern-matching type: {"type": CHIP, "index": i}
POOL_VIEW = "table-pool"
POOL_TITLE = "table-pool-title"
POOL_CLEAR = "table-pool-clear"
EXPORT = "table-export"            # the CSV of the rows the filter and the sort show
POOL_EXPORT = "table-pool-export"  # the CSV of the image pool
DOWNLOAD = "table-download"
BOX_QUERY = "table-box-query"  # dcc.Store: the box's validated (canonical) query, read by the row source
REFRESH = "table-refresh"      # dcc.Store: written by the clientside refresh of the grid's blocks (never read)

#: Rows per block the grid asks for (one getRowsRequest); the table shows about 13 at a time.
BLOCK_SIZE = 100
#: Blocks the grid keeps (the oldest are dropped): a new pool or focus reloads the kept blocks, so few.
MAX_BLOCKS = 10
ROW_HEIGHT = 24
#: Column id of the tick column (the image pool).
POOLED = "pooled"
#: Background of the focused instance's row (neutral: red/blue mean source/target).
FOCUS_ROW_COLOR = "#fff1b8"
#: The box's own cut (``maxLength``), well above the language's limit
#: (:data:`~dashboard.views.instance_table.filterexpr.MAX_LENGTH`): a text over that limit reaches the
#: validator whole (or still over the limit, if cut here) and is refused as too long, never cut to
#: a prefix that would be refused for something else ("ends too early").
INPUT_MAX_LENGTH = 4 * MAX_LENGTH

#: Example chips: (label, expression); each is validated like typed text.
CHIPS: tuple[tuple[str, str], ...] = (
    ("target wrong", "{target_pred} != {label}"),
    ("prediction changed", "{pred_changed} = yes"),
    ("fixed by fine-tuning", "{source_pred} != {label} && {target_pred} = {label}"),
    ("broken by fine-tuning", "{source_pred} = {label} && {target_pred} != {label}"),
    ("hardest: target loss > 2", "{target_loss} > 2"),
    ("target domain, wrong", "{domain} = target && {target_pred} != {label}"),
)

_MISPREDICTED = {"backgroundColor": "#e4e4e4", "color": MISPREDICTED_COLOR, "fontWeight": 700}
# the filter row's cells take the whole width (the full filter, with its other options, opens from the
# header's menu): typing a value there means "equals" for text and "greater than" for numbers
_TEXT_FILTER = {"filter": "agTextColumnFilter", "floatingFilter": True, "suppressFloatingFilterButton": True,
                # categorical columns: match a value (or a part of one), as DataTable's filter cells did
                "filterParams": {"filterOptions": ["equals", "notEqual", "contains", "notContains", "startsWith"],
                                 "maxNumConditions": 1}}
_NUMBER_FILTER = {"filter": "agNumberColumnFilter", "floatingFilter": True, "suppressFloatingFilterButton": True,
                  "filterParams": {"filterOptions": ["greaterThan", "greaterThanOrEqual", "lessThan",
                                                     "lessThanOrEqual", "equals", "notEqual", "inRange", "blank"],
                                   "maxNumConditions": 2}}
#: Narrowest widths that show the header and a typical value (the grid's flex shares the rest).
_WIDTHS = {"id": 58, "domain": 84, "split": 64, "label": 70, "pred_changed": 86}
_TOOLTIPS = {"pred_changed": "does the target model predict another class than the source model?",
             "source_loss": "cross-entropy of the true label", "target_loss": "cross-entropy of the true label"}


def _cell_style(cid: str) -> dict[str, Any] | None:
    """Per-column colours: the domain, a wrong prediction, a changed prediction."""
    if cid == "domain":
        return {"styleConditions": [
            {"condition": "params.value === 'source'",
             "style": {"color": SOURCE_COLOR, "backgroundColor": SOURCE_LIGHT, "fontWeight": 600}},
            {"condition": "params.value === 'target'",
             "style": {"color": TARGET_COLOR, "backgroundColor": TARGET_LIGHT, "fontWeight": 600}}]}
    if cid in ("source_pred", "target_pred"):
        return {"styleConditions": [{"condition": "params.data && params.value !== params.data.label",
                                     "style": _MISPREDICTED}]}
    if cid == "pred_changed":
        return {"styleConditions": [{"condition": "params.value === 'yes'", "style": {"fontWeight": 700}}]}
    return None


def _column(cid: str, name: str, kind: str, dom: dict[str, str]) -> dict[str, Any]:
    numeric = kind == "numeric"
    col: dict[str, Any] = {"field": cid, "colId": cid, "headerName": name, "sortable": True,
                           **(_NUMBER_FILTER if numeric else _TEXT_FILTER),
                           "type": "rightAligned" if numeric else None, "minWidth": _WIDTHS.get(cid, 64)}
    if cid in ("source_conf", "target_conf", "source_loss", "target_loss"):
        col["valueFormatter"] = {"function": "params.value == null ? '' : d3.format('.3f')(params.value)"}
    if cid == "domain":
        col["headerTooltip"] = f"source = {dom.get('source', 'source')}, target = {dom.get('target', 'target')}"
    elif cid in _TOOLTIPS:
        col["headerTooltip"] = _TOOLTIPS[cid]
    if (style := _cell_style(cid)) is not None:
        col["cellStyle"] = style
    return {k: v for k, v in col.items() if v is not None}


def column_defs(cache: Cache) -> list[dict[str, Any]]:
    """The grid's columns: the tick column, then :data:`COLUMNS` with each model's three under its group."""
    dom = cache.domains
    out: list[dict[str, Any]] = [{
        "field": POOLED, "colId": POOLED, "headerName": "", "width": 38, "maxWidth": 38, "sortable": False,
        "filter": False, "resizable": False, "headerTooltip": "tick a row to add its image to the pool",
        "valueFormatter": {"function": "params.value ? '\u2611' : '\u2610'"},
        "cellStyle": {"fontSize": "1rem", "textAlign": "center", "cursor": "pointer", "padding": 0},
    }]
    groups: dict[str, dict[str, Any]] = {}
    for cid, group, name, kind in COLUMNS:
        col = _column(cid, name, kind, dom)
        if not group:
            out.append(col)
            continue
        if group not in groups:
            color = SOURCE_COLOR if group.startswith("source") else TARGET_COLOR
            groups[group] = {"headerName": group, "children": [], "headerStyle": {"color": color},
                             "headerClass": f"tv-group-{group.split()[0]}"}
            out.append(groups[group])
        groups[group]["children"].append(col)
    return out


def instance_table(cache: Cache) -> dag.AgGrid:
    return dag.AgGrid(
        id=TABLE,
        rowModelType="infinite",
        columnDefs=column_defs(cache),
        defaultColDef={"resizable": True, "suppressHeaderMenuButton": False, "flex": 1},
        # one block in flight at a time: dash-ag-grid answers the latest request with each response
        dashGridOptions={"cacheBlockSize": BLOCK_SIZE, "maxConcurrentDatasourceRequests": 1,
                         "infiniteInitialRowCount": 1, "maxBlocksInCache": MAX_BLOCKS, "rowHeight": ROW_HEIGHT,
                         "headerHeight": 26, "groupHeaderHeight": 22, "floatingFiltersHeight": 28,
                         "tooltipShowDelay": 300, "animateRows": False, "suppressCellFocus": True},
        getRowId="params.data.id + ''",  # AG Grid wants string ids
        getRowStyle={"styleConditions": [{"condition": "params.data && params.data.focused",
                                          "style": {"backgroundColor": FOCUS_ROW_COLOR}}]},
        style={"height": 13 * ROW_HEIGHT + 80, "fontSize": "0.74rem"},
        className="tv-grid",
    )


def _chips() -> html.Div:
    return html.Div([html.Span("try:", className="text-muted me-1")] + [
        html.Button(label, id={"type": CHIP, "index": i}, n_clicks=0, title=expr, type="button",
                    className="btn btn-outline-secondary btn-sm py-0 px-2 me-1 mb-1", style={"fontSize": "0.7rem"})
        for i, (label, expr) in enumerate(CHIPS)
    ], style={"fontSize": "0.72rem"})


def layout(cache: Cache) -> html.Div:
    return html.Div(id=CARD, className="tv-card h-100", children=[
        html.Div([
            html.Span("Instance table", className="tv-card-title"),
            html.Span([" every instance; ", html.Span("source", style={"color": SOURCE_COLOR}), " / ",
                       html.Span("target", style={"color": TARGET_COLOR}),
                       " domain; grey bold prediction = mispredicted; tick (\u2610) rows to add them to the "
                       "image pool; shift-click headers to sort by several columns"],
                      className="text-muted small ms-1"),
        ]),
        dbc.InputGroup([
            dbc.Input(id=FILTER_INPUT, type="text", debounce=False, placeholder=f"filter, e.g. {EXAMPLE}",
                      autocomplete="off", maxLength=INPUT_MAX_LENGTH, style={"fontFamily": "monospace"}),
            dbc.Button("Apply", id=FILTER_APPLY, n_clicks=0, color="secondary"),
        ], size="sm", className="mt-1"),
        _chips(),
        html.Div(id=FILTER_MSG, className="small text-muted", style={"minHeight": 18, "lineHeight": 1.25},
                 children="Type a filter across columns ({column} op value, && ||, !( )) and press Enter; "
                          "the grid's filter row refines single columns."),
        html.Div([
            html.Div(id=COUNT, className="small fw-semibold", style={"minHeight": 18},
                     children="Loading the instances…"),
            dbc.Button("CSV", id=EXPORT, n_clicks=0, size="sm", color="link", className="py-0 ms-2",
                       title="download the rows that match the filter, in the table's order, as CSV"),
        ], className="d-flex align-items-center"),
        dcc.Store(id=DOWNLOAD),  # the last export: {file, bytes} or {error} (dashboard/export.py)
        instance_table(cache),
        dcc.Store(id=BOX_QUERY, data=""),
        dcc.Store(id=REFRESH),
        html.Div([
            html.Span(id=POOL_TITLE, children=f"Image pool (0/{POOL_SIZE})", className="tv-card-title"),
            dbc.Button("clear", id=POOL_CLEAR, n_clicks=0, size="sm", color="link", className="py-0 ms-2"),
            dbc.Button("CSV", id=POOL_EXPORT, n_clicks=0, size="sm", color="link", className="py-0",
                       title="download the pool's instances as CSV"),
        ], className="mt-2 d-flex align-items-center"),
        html.Div(id=POOL_VIEW, style={"display": "flex", "flexWrap": "wrap", "gap": "4px", "minHeight": 40}),
    ])
