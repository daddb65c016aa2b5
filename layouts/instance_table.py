"""Instance table (issue 6, item 2): every instance with both models' predictions, a
filter-expression box, and the image pool of the latest selected rows.

The table sorts (several columns at once), filters per column and pages in the browser
(DataTable's native actions); its rows are loaded by ``callbacks/instance_table.py`` when the
"Instance diagnosis" tab is first opened, so the first page stays light. The box writes
the table's ``filter_query`` only after :mod:`dashboard.views.instance_table.filterexpr` has validated the text
(it is never evaluated). How the box and the per-column filter cells share that one query:

* the box always shows the active query, whoever set it (box, chip or column cell);
* a box query made of ``&&``-joined conditions, one per column (``{domain} = target &&
  {target_loss} > 2``, ``{target_pred} != {label}``) also fills the column cells, and
  editing a cell edits that query (the box follows, e.g. ``{target_loss} s> 2``: the
  cells write a case flag, which the box accepts);
* a query the cells cannot show (``||``, ``!``, parentheses, a column used twice) empties
  the cells (DataTable would otherwise keep showing the previous cell values); typing
  into a cell then starts a new query from the cells alone, which replaces the box's
  query (the box shows the new one).

The ticked rows are the image pool (``ids.POOL``, shared with other views): ticking adds a
row, unticking removes it, and a pool changed elsewhere re-ticks the rows. Clicking a cell
focuses its instance (``ids.FOCUS``), every click, and the focused instance's row is
highlighted (see ``callbacks/instance_table.py``).
"""

from __future__ import annotations

from typing import cast

import dash_bootstrap_components as dbc
from dash import dcc, html
from dash.dash_table.DataTable import DataTable  # dash.dash_table's computed __all__ hides it from mypy
from dash.dash_table.Format import Format, Scheme

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
PREV_SELECTION = "table-prev-selection"  # dcc.Store: the row selection last seen (to find new ones)
PENDING_QUERY = "table-pending-query"    # dcc.Store: a box query waiting for its second step (see callbacks)
LOADED = "table-loaded"                  # dcc.Store: True once the rows were sent (they are sent once)

PAGE_SIZE = 12
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

_FORMATS = {"source_conf": Format(precision=3, scheme=Scheme.fixed),
            "target_conf": Format(precision=3, scheme=Scheme.fixed),
            "source_loss": Format(precision=3, scheme=Scheme.fixed),
            "target_loss": Format(precision=3, scheme=Scheme.fixed)}
_MISPREDICTED = {"backgroundColor": "#e4e4e4", "color": MISPREDICTED_COLOR, "fontWeight": 700}


def table_columns() -> list[DataTable.Columns]:
    cols: list[DataTable.Columns] = []
    for cid, group, name, kind in COLUMNS:
        col: DataTable.Columns = {"id": cid, "name": [group, name], "type": kind}
        if cid in _FORMATS:
            # Format is Dash's builder of the column format dict (serialised by its to_plotly_json), which
            # the generated TypedDict names without it
            col["format"] = cast("DataTable.ColumnsFormat", _FORMATS[cid])
        cols.append(col)
    return cols


def style_data_conditional() -> list[dict]:
    """Per-column colours (domain, mispredictions); ``callbacks/instance_table.py`` adds the focused row."""
    return [
        {"if": {"filter_query": '{domain} = "source"', "column_id": "domain"},
         "color": SOURCE_COLOR, "backgroundColor": SOURCE_LIGHT, "fontWeight": 600},
        {"if": {"filter_query": '{domain} = "target"', "column_id": "domain"},
         "color": TARGET_COLOR, "backgroundColor": TARGET_LIGHT, "fontWeight": 600},
        {"if": {"filter_query": "{source_pred} != {label}", "column_id": "source_pred"}, **_MISPREDICTED},
        {"if": {"filter_query": "{target_pred} != {label}", "column_id": "target_pred"}, **_MISPREDICTED},
        {"if": {"filter_query": '{pred_changed} = "yes"', "column_id": "pred_changed"}, "fontWeight": 700},
        {"if": {"state": "active"}, "backgroundColor": "rgba(0, 0, 0, 0.05)", "border": "1px solid #8a8a8a"},
    ]


def _header_styles() -> list[dict]:
    out = []
    for cid, group, _, _ in COLUMNS:
        if group:
            color = SOURCE_COLOR if group.startswith("source") else TARGET_COLOR
            out.append({"if": {"column_id": cid, "header_index": 0}, "color": color, "fontWeight": 600})
    return out


def instance_table(cache: Cache) -> DataTable:
    dom = cache.domains
    return DataTable(
        id=TABLE,
        columns=table_columns(),
        data=[],  # filled when the tab opens (callbacks/instance_table.py)
        page_action="native",
        page_size=PAGE_SIZE,
        sort_action="native",
        sort_mode="multi",
        filter_action="native",
        filter_query="",
        row_selectable="multi",
        selected_rows=[],
        merge_duplicate_headers=True,
        tooltip_header={"domain": f"source = {dom.get('source', 'source')}, target = {dom.get('target', 'target')}",
                        "pred_changed": "does the target model predict another class than the source model?",
                        "source_loss": "cross-entropy of the true label",
                        "target_loss": "cross-entropy of the true label"},
        tooltip_delay=300,
        style_table={"overflowX": "auto"},
        style_cell={"fontSize": "0.74rem", "padding": "0 5px", "fontFamily": "inherit",
                    "textAlign": "right", "minWidth": 44},
        style_cell_conditional=[{"if": {"column_id": c}, "textAlign": "left"}
                                for c in ("domain", "split", "label", "source_pred", "target_pred", "pred_changed")],
        style_header={"fontWeight": 600, "backgroundColor": "#f4f5f7", "padding": "1px 5px"},
        style_header_conditional=_header_styles(),
        style_filter={"backgroundColor": "#fbfbfc"},
        style_data_conditional=style_data_conditional(),
        css=[{"selector": ".dash-spreadsheet-menu", "rule": "display: none"},
             # compact rows: a page must fit beside the pool on a 768 px high screen
             {"selector": "tr", "rule": "height: 23px; min-height: 23px"},
             # the per-cell case toggle ("Aa") crowds narrow columns; cells filter case-sensitively
             {"selector": ".dash-filter--case", "rule": "display: none"}],
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
                       " domain; grey bold prediction = mispredicted; tick rows to add them to the image pool"],
                      className="text-muted small ms-1"),
        ]),
        dbc.InputGroup([
            dbc.Input(id=FILTER_INPUT, type="text", debounce=False, placeholder=f"filter, e.g. {EXAMPLE}",
                      autocomplete="off", maxLength=INPUT_MAX_LENGTH, style={"fontFamily": "monospace"}),
            dbc.Button("Apply", id=FILTER_APPLY, n_clicks=0, color="secondary"),
        ], size="sm", className="mt-1"),
        _chips(),
        html.Div(id=FILTER_MSG, className="small text-muted", style={"minHeight": 18, "lineHeight": 1.25},
                 children="Type a filter in the table's language ({column} op value, && ||, !( )) and press Enter."),
        html.Div([
            html.Div(id=COUNT, className="small fw-semibold", style={"minHeight": 18},
                     children="Loading the instances…"),
            dbc.Button("CSV", id=EXPORT, n_clicks=0, size="sm", color="link", className="py-0 ms-2",
                       title="download the rows that match the filter, in the table's order, as CSV"),
        ], className="d-flex align-items-center"),
        dcc.Download(id=DOWNLOAD),
        instance_table(cache),
        dcc.Store(id=PREV_SELECTION, data=[]),
        dcc.Store(id=PENDING_QUERY),
        dcc.Store(id=LOADED, data=False),
        html.Div([
            html.Span(id=POOL_TITLE, children=f"Image pool (0/{POOL_SIZE})", className="tv-card-title"),
            dbc.Button("clear", id=POOL_CLEAR, n_clicks=0, size="sm", color="link", className="py-0 ms-2"),
            dbc.Button("CSV", id=POOL_EXPORT, n_clicks=0, size="sm", color="link", className="py-0",
                       title="download the pool's instances as CSV"),
        ], className="mt-2 d-flex align-items-center"),
        html.Div(id=POOL_VIEW, style={"display": "flex", "flexWrap": "wrap", "gap": "4px", "minHeight": 40}),
    ])
