"""View A callbacks: the confusion table follows and drives the selected class.

The score and the accuracy chart are static (built in ``layouts/statistics.py``); the row
selection itself is synchronised with the URL by ``callbacks/page.py``. Here:

* the selected class's row is highlighted (the radio button alone is easy to miss), and
* clicking any cell of a row selects that row, not only its radio button.
"""

from __future__ import annotations

from typing import Any, Sequence

import dash
from dash import Input, Output, State

from layouts import ids
from layouts import statistics as stats_layout
from transferviz.cache import Cache

NO = dash.no_update


def highlight_rows(selected_class: Any) -> list[dict[str, Any]]:
    """``style_data_conditional`` of the table for the selected class (None: no highlight)."""
    try:
        cls = int(selected_class) if selected_class is not None else None
    except (TypeError, ValueError):
        cls = None
    return stats_layout.selected_row_style(cls)


def row_from_cell(active_cell: dict | None, selected_rows: Sequence[int] | None) -> Any:
    """``selected_rows`` after a click on a cell: the clicked row's class (row id = class index).

    ``active_cell["row"]`` counts rows in the *sorted* view, so the row id is used instead.
    """
    if not active_cell or active_cell.get("row_id") is None:
        return NO
    row = int(active_cell["row_id"])
    return NO if list(selected_rows or []) == [row] else [row]


def register(app: dash.Dash, cache: Cache) -> None:
    @app.callback(
        Output(stats_layout.TABLE, "style_data_conditional"),
        Input(ids.SELECTED_CLASS, "data"),
    )
    def _highlight(selected_class):
        return highlight_rows(selected_class)

    @app.callback(
        Output(stats_layout.TABLE, "selected_rows", allow_duplicate=True),
        Input(stats_layout.TABLE, "active_cell"),
        State(stats_layout.TABLE, "selected_rows"),
        prevent_initial_call=True,
    )
    def _select_clicked_row(active_cell, selected_rows):
        return row_from_cell(active_cell, selected_rows)
