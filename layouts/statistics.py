"""View A, statistics (paper section 5.1): transferability score, accuracy chart, confusion table.

The score and the chart depend only on the run, so they are built once here rather than
by a callback (nothing to wait for on page load). The table's row selection selects a
class in every other view through the URL state (``callbacks/page.py``).
"""

from __future__ import annotations

from typing import Any, cast

from dash import dcc, html
from dash.dash_table.DataTable import DataTable  # dash.dash_table's computed __all__ hides it from mypy
from dash.dash_table.Format import Format, Scheme, Sign
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


def table_columns() -> list[DataTable.Columns]:
    """DataTable columns: numbers stay numbers (so native sorting is numeric) with a display format."""
    acc = Format(precision=2, scheme=Scheme.fixed)
    fmt = {"source_acc": acc, "target_acc": acc, "diff": Format(precision=2, scheme=Scheme.fixed, sign=Sign.positive)}
    cols: list[DataTable.Columns] = []
    for cid, name in data.TABLE_COLUMNS:
        col: DataTable.Columns = {"id": cid, "name": name}
        col["type"] = "numeric" if cid in fmt or cid == "n" else "text"
        if cid in fmt:
            # Format is Dash's builder of the column format dict (serialised by its to_plotly_json), which
            # the generated TypedDict names without it
            col["format"] = cast("DataTable.ColumnsFormat", fmt[cid])
        cols.append(col)
    return cols


def selected_row_style(class_index: int | None) -> list[dict[str, Any]]:
    """Conditional styles: signed difference colours, plus the selected class's row highlight."""
    styles: list[dict[str, Any]] = [
        {"if": {"filter_query": "{diff} > 0", "column_id": "diff"}, "color": POSITIVE_COLOR, "fontWeight": 600},
        {"if": {"filter_query": "{diff} < 0", "column_id": "diff"}, "color": NEGATIVE_COLOR, "fontWeight": 600},
        {"if": {"column_id": "source_acc"}, "color": SOURCE_COLOR},
        {"if": {"column_id": "target_acc"}, "color": TARGET_COLOR},
    ]
    if class_index is not None:
        styles.append({"if": {"filter_query": f"{{class_index}} = {int(class_index)}"},
                       "backgroundColor": SELECTED_ROW_BG})
    return styles


def mistake_tooltips(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per row, the full text of both "mistakes" cells (an ellipsis cuts long lists in the cell)."""
    return [{cid: {"type": "text", "value": f"{model} model: {r.get(cid) or ''}"}
             for cid, model in data.MISTAKE_COLUMNS.items()} for r in rows]


def _table(cache: Cache) -> html.Div:
    rows = data.class_table_records(cache)
    # the table is always rendered (the state callback reads and writes its selection); an empty
    # one says why above it
    # start on the default class so a plain link renders without waiting for the state callback
    start = [default_state(cache).cls] if rows else []
    note: list[Component] = [] if rows else [
        html.Div("This cache has no confusion table (its forward stage did not run).", className="text-muted p-2")]
    return html.Div(note + [DataTable(
        id=TABLE,
        columns=table_columns(),
        # the generated type wants rows of dict[str | float | int, str | number | bool]: dict keys are
        # invariant, so no dict[str, ...] fits, and it leaves out None, the empty cell of a missing value
        data=cast(Any, rows),
        sort_action="native",
        sort_mode="single",
        row_selectable="single",
        selected_rows=start,
        page_action="none",
        fixed_rows={"headers": True},
        cell_selectable=True,
        style_table={"maxHeight": TABLE_MAX_HEIGHT, "overflowY": "auto", "overflowX": "auto"},
        # DataTable's own font is monospace; use the figures' font so the band reads as one
        style_cell={"fontFamily": FONT_FAMILY, "fontSize": "0.8rem", "padding": "1px 6px", "textAlign": "right",
                    "minWidth": 40, "whiteSpace": "nowrap", "cursor": "pointer"},
        style_data={"lineHeight": "20px"},
        # widths that fit the card at 1366 x 768 with both models' mistakes: the numeric headers
        # ("source acc") need ~52 px to wrap onto two lines instead of being cut; long mistake
        # lists end in an ellipsis (the cell's tooltip has them whole)
        style_cell_conditional=[
            {"if": {"column_id": "class"}, "textAlign": "left", "fontWeight": 600, "minWidth": 56},
        ] + [{"if": {"column_id": cid}, "minWidth": w} for cid, w in (("source_acc", 52), ("target_acc", 52),
                                                                        ("diff", 70))]
          + [{"if": {"column_id": cid}, "textAlign": "left", "minWidth": 104, "width": 130, "maxWidth": 150,
              "overflow": "hidden", "textOverflow": "ellipsis"} for cid in data.MISTAKE_COLUMNS],
        style_header={"fontWeight": 600, "backgroundColor": "#f3f4f6", "fontSize": "0.75rem",
                      "whiteSpace": "normal", "lineHeight": "14px", "height": "auto", "padding": "3px 6px"},
        style_header_conditional=[
            {"if": {"column_id": "source_acc"}, "color": SOURCE_COLOR},
            {"if": {"column_id": "target_acc"}, "color": TARGET_COLOR},
            {"if": {"column_id": "source_mistaken_for"}, "color": SOURCE_COLOR},
            {"if": {"column_id": "mistaken_for"}, "color": TARGET_COLOR},
        ],
        style_data_conditional=selected_row_style(start[0] if start else None),
        tooltip_header={
            "n": "instances of the class in the target validation set",
            "source_acc": "source model's accuracy on the class's target validation instances",
            "target_acc": "target model's accuracy on the class's target validation instances",
            "diff": "target minus source accuracy",
            **{cid: f"classes the {model} model predicts for the class's target validation instances "
                    "(most frequent first); sort to group the classes by it"
               for cid, model in data.MISTAKE_COLUMNS.items()},
        },
        # (the generated type's dict keys are invariant, as for ``data``)
        tooltip_data=cast(Any, mistake_tooltips(rows)),
        tooltip_delay=300,
        tooltip_duration=None,
        # the active-cell outline is DataTable's pink; keep the focus cue but in the neutral palette
        css=[{"selector": "td.cell--selected, td.focused",
              "rule": "background-color: transparent !important; border: 1px solid #9e9e9e !important;"},
             {"selector": ".dash-spreadsheet-container .dash-spreadsheet-inner input[type=radio]",
              "rule": "cursor: pointer; margin: 0;"},
             # compact rows: a dozen classes fit the band without scrolling at 1366 x 768
             {"selector": "tr", "rule": "height: 24px !important; min-height: 24px !important;"},
             {"selector": "td.dash-cell, td.dash-select-cell",
              "rule": "height: 24px !important; padding-top: 0 !important; padding-bottom: 0 !important;"}],
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
