"""View A, statistics (paper section 5.1): transferability score, accuracy chart, confusion table.

The score and the chart depend only on the run, so they are built once here rather than
by a callback (nothing to wait for on page load). The table is a dash-ag-grid ``AgGrid``
(client-side rows: one per class); a click on a row selects its class in every other view
through the URL state (``callbacks/page.py``, with the conversions of ``callbacks/statistics.py``).
"""

from __future__ import annotations

from typing import Any

import dash_ag_grid as dag
from dash import dcc, html
from dash.development.base_component import Component

from dashboard.theme import (
    FONT_FAMILY,
    NEGATIVE_COLOR,
    POSITIVE_COLOR,
    SOURCE_COLOR,
    TARGET_COLOR,
    empty_figure,
    graph_config,
)
from dashboard.urlstate import default_state
from dashboard.views.statistics import data
from dashboard.views.statistics.figures import accuracy_chart, transferability_badge
from transferviz.cache import Cache

# Component ids of this view.
CARD = "stats-card"
BADGE = "stats-badge"
ACCURACY = "stats-accuracy"
TABLE = "stats-table"

#: Height (px) of the chart; the table may grow a little past it so ten classes fit unscrolled.
BAND_HEIGHT = 262
TABLE_MAX_HEIGHT = 282
SELECTED_ROW_BG = "#fff4d6"  # pale amber: neither domain colour, so it cannot be read as red/blue


def _badge(cache: Cache) -> html.Div:
    score = data.transferability(cache)
    b = transferability_badge(score)
    best = data.best_accuracies(cache)

    def fmt(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.2f}"

    return html.Div(
        id=BADGE,
        title=b["title"],
        className="text-center",
        style={"flex": "0 0 118px", "alignSelf": "center"},
        children=[
            html.Div("transferability", className="tv-card-title", style={"fontSize": "0.7rem"}),
            html.Div(b["text"], className="fw-bold", style={"fontSize": "2.1rem", "lineHeight": 1.1,
                                                         "color": b["color"]}),
            html.Div(["best on target val:", html.Br(),
                      html.Span(f"target model {fmt(best['target'])}", style={"color": TARGET_COLOR}), html.Br(),
                      html.Span(f"source model {fmt(best['source'])}", style={"color": SOURCE_COLOR})],
                     className="text-muted", style={"fontSize": "0.72rem", "lineHeight": 1.25, "marginTop": 4}),
        ],
    )


def _accuracy(cache: Cache) -> dcc.Graph:
    hist = data.history_frame(cache)
    if hist is None:
        fig = empty_figure("This cache has no training history (models were given as checkpoints)",
                           height=BAND_HEIGHT)
    else:
        fig = accuracy_chart(hist, height=BAND_HEIGHT)
        # room above the plot for the mode bar, which would otherwise cover the legend's title
        fig.update_layout(margin_t=30)
    return dcc.Graph(id=ACCURACY, figure=fig, config=graph_config("accuracy"),
                     style={"height": BAND_HEIGHT})


_HEADER_TIPS = {
    "n": "instances of the class in the target validation set",
    "source_acc": "source model's accuracy on the class's target validation instances",
    "target_acc": "target model's accuracy on the class's target validation instances",
    "diff": "target minus source accuracy",
    **{cid: f"classes the {model} model predicts for the class's target validation instances "
            "(most frequent first); sort to group the classes by it"
       for cid, model in data.MISTAKE_COLUMNS.items()},
}
_MODEL_COLOR = {"source_acc": SOURCE_COLOR, "target_acc": TARGET_COLOR, "source_mistaken_for": SOURCE_COLOR,
                "mistaken_for": TARGET_COLOR}


def column_defs() -> list[dict[str, Any]]:
    """The grid's columns: numbers stay numbers (numeric sort) with a display format; widths that fit the
    card at 1366 x 768 with both models' mistakes (long lists end in an ellipsis, the tooltip has them)."""
    cols: list[dict[str, Any]] = []
    for cid, name in data.TABLE_COLUMNS:
        col: dict[str, Any] = {"field": cid, "colId": cid, "headerName": name, "headerTooltip": _HEADER_TIPS.get(cid),
                               "sortable": True}
        if cid in ("source_acc", "target_acc", "diff", "n"):
            # the numeric headers ("source acc") wrap onto two lines instead of being cut
            col.update(type="rightAligned", width={"n": 46, "diff": 72}.get(cid, 60), minWidth=40, flex=0)
        if cid in ("source_acc", "target_acc"):
            col["valueFormatter"] = {"function": "params.value == null ? '' : d3.format('.2f')(params.value)"}
        if cid == "diff":
            col["valueFormatter"] = {"function": "params.value == null ? '' : d3.format('+.2f')(params.value)"}
            col["cellStyle"] = {"styleConditions": [
                {"condition": "params.value > 0", "style": {"color": POSITIVE_COLOR, "fontWeight": 600}},
                {"condition": "params.value < 0", "style": {"color": NEGATIVE_COLOR, "fontWeight": 600}}]}
        if cid in _MODEL_COLOR:
            col["headerStyle"] = {"color": _MODEL_COLOR[cid]}
            if cid.endswith("_acc"):
                col["cellStyle"] = {"color": _MODEL_COLOR[cid]}
        if cid == "class":
            col.update(width=70, minWidth=50, flex=0, cellStyle={"fontWeight": 600})
        if cid in data.MISTAKE_COLUMNS:
            model = data.MISTAKE_COLUMNS[cid]
            tip = f"'{model} model: ' + (params.value || '')"
            col.update(minWidth=100, flex=1, tooltipValueGetter={"function": tip})
        cols.append({k: v for k, v in col.items() if v is not None})
    return cols


def selection(class_index: int | None) -> dict[str, list[str]]:
    """The grid's ``selectedRows`` for a class (its row id is the class index); none: no row."""
    return {"ids": [] if class_index is None else [str(int(class_index))]}


def _table(cache: Cache) -> html.Div:
    rows = data.class_table_records(cache)
    # the table is always rendered (the state callback reads and writes its selection); an empty
    # one says why above it
    # start on the default class so a plain link renders without waiting for the state callback
    start = default_state(cache).cls if rows else None
    note: list[Component] = [] if rows else [
        html.Div("This cache has no confusion table (its forward stage did not run).", className="text-muted p-2")]
    return html.Div(note + [dag.AgGrid(
        id=TABLE,
        rowData=rows,
        columnDefs=column_defs(),
        getRowId="params.data.id + ''",  # row id = class index (AG Grid wants string ids)
        selectedRows=selection(start),
        # a click anywhere on a row selects its class (one at a time; not unselectable by a second click)
        dashGridOptions={"rowSelection": {"mode": "singleRow", "checkboxes": False, "enableClickSelection": True},
                         "rowHeight": 24, "headerHeight": 34, "tooltipShowDelay": 300, "animateRows": False,
                         "suppressCellFocus": True},
        defaultColDef={"resizable": True, "wrapHeaderText": True, "autoHeaderHeight": True,
                       "suppressHeaderMenuButton": True},
        # the figures' font so the band reads as one; the selected class's row in pale amber
        style={"height": TABLE_MAX_HEIGHT, "fontFamily": FONT_FAMILY, "fontSize": "0.8rem",
               "--ag-selected-row-background-color": SELECTED_ROW_BG, "--ag-font-family": FONT_FAMILY,
               "--ag-font-size": "12.5px", "--ag-cell-horizontal-padding": "6px", "cursor": "pointer"},
    )])


def layout(cache: Cache) -> html.Div:
    """The statistics band across the top of the page."""
    return html.Div(id=CARD, className="tv-card mb-2 mt-1", children=[
        html.Div([
            html.Span("Statistics", className="tv-card-title"),
            html.Span(" accuracy per epoch of both models; per-class accuracy on the target validation data "
                      "(select a row to inspect that class below)", className="text-muted small ms-1"),
        ]),
        html.Div(style={"display": "flex", "flexWrap": "wrap", "gap": "8px", "alignItems": "stretch"}, children=[
            _badge(cache),
            html.Div(_accuracy(cache), style={"flex": "1 1 430px", "minWidth": 340}),
            html.Div(_table(cache), style={"flex": "1 1 470px", "minWidth": 360}),
        ]),
    ])
