"""The hub's pages (issue 14, items 1 and 2): the frame, the table of runs and the comparison of 2-6 runs.

Component ids are module constants (the callbacks and the browser test use them).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.components import error_alert
from dashboard.hub.compare import MAX_RUNS, MIN_RUNS
from dashboard.hub.runs import ESTIMATES
from dashboard.theme import FONT_FAMILY, GRAPH_CONFIG

__all__ = ["COMPARE_HINT", "COMPARE_LINK", "GRID", "PAGE", "URL", "compare_page", "frame", "problem_page",
           "runs_page"]

URL = "hub-url"
PAGE = "hub-page"
GRID = "hub-runs"
COMPARE_LINK = "hub-compare"
COMPARE_HINT = "hub-compare-hint"
#: The comparison page's figures, by what they show (ids ``hub-fig-<key>``).
FIGURES = ("accuracy", "scores", "cka", "correspondence", "gains")

# d3-format in the grid's own formatter (dash-ag-grid's function strings): blanks stay blank
_FMT3 = {"function": "params.value == null ? '' : d3.format('.3f')(params.value)"}
_FMT_SIGNED = {"function": "params.value == null ? '' : d3.format('+.3f')(params.value)"}
_FMT_SECS = {"function": "params.value == null ? '' : d3.format('.1f')(params.value) + ' s'"}

_ESTIMATE_TIPS = {
    "logme": "LogME: evidence of a linear model on the source model's embedding of the target training data",
    "leep": "LEEP: log expected empirical prediction of the source model's predictions on the target data",
    "nce": "NCE: negative conditional entropy of target labels given the source model's predictions",
    "hscore": "H-score: class separability of the source model's embedding of the target data",
}
_ESTIMATE_NAMES = {"logme": "LogME", "leep": "LEEP", "nce": "NCE", "hscore": "H-score"}


def frame(root: Path, hub_href: str) -> html.Div:
    """The hub app's layout: a bar naming the folder, the error alert and the page the URL asks for."""
    header = dbc.Navbar(dbc.Container([
        html.A("transferviz", href=hub_href, className="navbar-brand fw-bold"),
        html.Span(f"runs in {root}", className="text-light small"),
    ], fluid=True), color="dark", dark=True, className="py-1")
    return html.Div([
        dcc.Location(id=URL, refresh=False),
        header,
        dbc.Container([error_alert(), html.Div(id=PAGE)], fluid=True, className="px-2 pt-2"),
    ])


def _columns() -> list[dict[str, Any]]:
    estimate_cols = [{"field": e, "headerName": _ESTIMATE_NAMES[e], "headerTooltip": _ESTIMATE_TIPS[e],
                      "valueFormatter": _FMT3, "type": "rightAligned", "width": 72} for e in ESTIMATES]
    return [
        {"field": "name", "headerName": "run", "cellRenderer": "markdown", "pinned": "left", "width": 120,
         "headerTooltip": "the run's name: opens its analysis (the link carries the name and can be shared)"},
        {"field": "domains", "headerName": "source \u2192 target", "width": 160},
        {"field": "arch", "headerName": "architecture", "width": 108},
        {"field": "layers", "headerName": "layers", "type": "rightAligned", "width": 66,
         "tooltipField": "layer_names", "headerTooltip": "analysed layers (hover a count for their names)"},
        {"field": "source_acc", "headerName": "source model acc.", "valueFormatter": _FMT3, "type": "rightAligned",
         "width": 80, "headerTooltip": "best accuracy of the source model on the target validation data"},
        {"field": "target_acc", "headerName": "target model acc.", "valueFormatter": _FMT3, "type": "rightAligned",
         "width": 80, "headerTooltip": "best accuracy of the fine-tuned target model on the target validation data"},
        {"field": "score", "headerName": "transferability", "valueFormatter": _FMT_SIGNED, "type": "rightAligned",
         "width": 104, "headerTooltip": "target model minus source model, best accuracy on target validation"},
        *estimate_cols,
        {"field": "built", "headerName": "built", "width": 118},
        {"field": "build_s", "headerName": "build time", "valueFormatter": _FMT_SECS, "type": "rightAligned",
         "width": 80, "headerTooltip": "seconds the build's stages took (a reused stage counts its copy)"},
        {"field": "error", "headerName": "problem", "flex": 1, "minWidth": 80, "tooltipField": "error",
         "cellStyle": {"color": "#b02a37"}},
    ]


def runs_page(rows: Sequence[dict[str, Any]], root: Path, compare_href: str) -> html.Div:
    """The table of runs (every run of the folder, those that failed to open with their one-line error) and
    the button that opens a comparison of the ticked ones."""
    opened = sum(1 for r in rows if not r["error"])
    grid = dag.AgGrid(
        id=GRID, rowData=list(rows), columnDefs=_columns(),
        getRowId="params.data.run",
        # headers wrap (fourteen columns at 1366 px); sorting, no filters: a hub holds a handful of runs
        defaultColDef={"sortable": True, "resizable": True, "filter": False, "wrapHeaderText": True,
                       "autoHeaderHeight": True, "suppressHeaderMenuButton": True},
        dashGridOptions={
            # checkboxes to choose runs to compare; a run that did not open cannot be chosen
            "rowSelection": {"mode": "multiRow", "checkboxes": True, "headerCheckbox": False,
                             "enableClickSelection": False,
                             "isRowSelectable": {"function": "params.data.error === ''"}},
            "selectionColumnDef": {"pinned": "left", "width": 44},
            "domLayout": "autoHeight", "tooltipShowDelay": 300, "suppressCellFocus": True, "rowHeight": 30,
            "animateRows": False,
        },
        # the statistics table's look (its font, size and padding): fourteen columns fit 1366 px
        style={"width": "100%", "fontFamily": FONT_FAMILY, "--ag-font-family": FONT_FAMILY, "--ag-font-size": "12.5px",
               "--ag-cell-horizontal-padding": "6px"},
    )
    failed = len(rows) - opened
    problems = [html.Li([html.Strong(r["run"]), f": {r['error']}"]) for r in rows if r["error"]]
    return html.Div([
        html.Div([
            html.Span("Runs", className="tv-card-title me-2"),
            html.Span(f"{opened} run(s) in {root}" + (f", {failed} that did not open (see 'problem')" if failed
                                                          else ""), className="small text-muted me-3"),
            # a link styled as a button (Bootstrap's .disabled turns its pointer events off until runs are ticked)
            dcc.Link("compare ticked runs", id=COMPARE_LINK, href=compare_href,
                     className="btn btn-sm btn-primary disabled me-2"),
            html.Span(f"tick {MIN_RUNS} to {MAX_RUNS} runs to compare them; a run's name opens its analysis",
                      id=COMPARE_HINT, className="small text-muted"),
        ], className="d-flex flex-wrap align-items-center mb-2"),
        html.Ul(problems, className="small text-danger mb-1 ps-3", id="hub-problems") if problems else None,
        grid,
    ], className="tv-card tv-hub")


def _graph(key: str, figure: Any) -> dcc.Graph:
    # a responsive graph fills its box's height, and a card's box has none of its own: the figure's height
    height = getattr(getattr(figure, "layout", None), "height", None) or 300
    return dcc.Graph(id=f"hub-fig-{key}", figure=figure, config=GRAPH_CONFIG, style={"height": f"{height}px"})


def _card(title: str, reading: str, body: Any) -> html.Div:
    return html.Div([html.Div(title, className="tv-card-title"), html.Div(reading, className="small text-muted"),
                     body], className="tv-card h-100")


def compare_page(names: Sequence[str], links: dict[str, str], notes: Sequence[str], figures: dict[str, Any],
                 hub_href: str) -> html.Div:
    """The comparison of ``names``: the runs (each a link to its analysis), what they do not share, then the
    figures (``figures`` keyed by :data:`FIGURES`)."""
    head = html.Div([
        dcc.Link("\u2190 all runs", href=hub_href, className="me-3 small", id="hub-back"),
        html.Span("Comparing", className="tv-card-title me-2"),
        *[html.A(n, href=links[n], className="badge text-bg-light border me-1 tv-hub-run") for n in names],
    ], className="d-flex flex-wrap align-items-center mb-1")
    note = (dbc.Alert([html.Strong("These runs differ: "), html.Ul([html.Li(n) for n in notes], className="mb-0 ps-3")],
                      color="info", className="py-1 px-2 my-1 small", id="hub-compare-notes") if notes else None)
    return html.Div([
        head, note,
        dbc.Row([
            dbc.Col(_card("Accuracy on the target validation data",
                          "colour = run; crosses and dashes the source model, circles the fine-tuned target model",
                          _graph("accuracy", figures["accuracy"])), lg=7, className="mb-2"),
            dbc.Col(_card("Transferability and the estimates before fine-tuning",
                          "each panel its own scale: compare the order of the runs, not the heights across panels",
                          _graph("scores", figures["scores"])), lg=5, className="mb-2"),
        ], className="g-2"),
        dbc.Row([
            dbc.Col(_card("How much each layer changed (CKA, source vs target model)",
                          "CKA between source layer i and target layer i on the target data: 1 = kept, lower = "
                          "changed by fine-tuning", _graph("cka", figures["cka"])), lg=6, className="mb-2"),
            dbc.Col(_card("Weight correspondence by layer pair",
                          "share of important target weights with a source counterpart (mean over classes), "
                          "against the same-index reference and chance", _graph("correspondence",
                                                                                figures["correspondence"])),
                    lg=6, className="mb-2"),
        ], className="g-2"),
        _card("Per-class gain of the target model over the source model",
              "accuracy on the class's target validation instances, target minus source model; blank: the run has "
              "no such class", _graph("gains", figures["gains"])),
    ], className="tv-hub-compare")


def problem_page(message: str, hub_href: str) -> html.Div:
    """A comparison link that cannot be drawn: its one-line reason and the way back."""
    return html.Div([dbc.Alert(message, color="warning", className="py-1 px-2 my-1 small", id="hub-problem"),
                     dcc.Link("\u2190 all runs", href=hub_href, className="small")])
