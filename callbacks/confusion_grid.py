"""Confusion grid callbacks: the grid and the clicked cell's thumbnails follow the controls; a click
on a cell chooses it, a click on a thumbnail focuses its instance.

Thin controllers; what they show comes from :mod:`dashboard.views.confusion_grid`
(:func:`~dashboard.views.confusion_grid.figures.grid_figure`,
:func:`~dashboard.views.confusion_grid.markup.cell_list`).
"""

from __future__ import annotations

from typing import Any

import dash
from dash import ALL, Input, Output

from callbacks.common import clicked_focus, fired_click
from dashboard.views.confusion_grid.figures import grid_figure
from dashboard.views.confusion_grid.markup import cell_list
from layouts import confusion_grid as ly
from layouts import ids
from transferviz.cache import Cache

NO = dash.no_update


def parse_cell(click_data: dict | None, n_classes: int) -> list[int] | None:
    """``[true, predicted]`` of a clicked grid cell (the heatmap's y and x are class indices)."""
    pts = (click_data or {}).get("points") or []
    if not pts:
        return None
    try:
        true, pred = int(pts[0]["y"]), int(pts[0]["x"])
    except (KeyError, TypeError, ValueError):
        return None
    return [true, pred] if 0 <= true < n_classes and 0 <= pred < n_classes else None


def thumb_focus(triggered: Any, n_clicks: Any) -> Any:
    """The id of the clicked thumbnail, or no_update when the list was merely (re)drawn."""
    return clicked_focus(triggered, n_clicks, ly.THUMB)


def register(app: dash.Dash, cache: Cache) -> None:
    prefix = app.config.requests_pathname_prefix

    @app.callback(
        Output(ly.GRAPH, "figure"),
        Input(ly.MODEL, "value"), Input(ly.DOMAIN, "value"), Input(ly.SPLIT, "value"), Input(ly.CELL, "data"),
    )
    def _grid(model, domain, split, cell):
        return grid_figure(cache, model, domain, split, cell)

    @app.callback(Output(ly.CELL, "data"), Input(ly.GRAPH, "clickData"), prevent_initial_call=True)
    def _click(click_data):
        cell = parse_cell(click_data, len(cache.classes))
        return NO if cell is None else cell

    @app.callback(
        Output(ly.CAPTION, "children"), Output(ly.LIST, "children"),
        Input(ly.MODEL, "value"), Input(ly.DOMAIN, "value"), Input(ly.SPLIT, "value"), Input(ly.CELL, "data"),
    )
    def _list(model, domain, split, cell):
        return cell_list(cache, model, domain, split, cell, prefix)

    @app.callback(
        Output(ids.FOCUS, "data", allow_duplicate=True),
        Input({"type": ly.THUMB, "index": ALL}, "n_clicks"),
        prevent_initial_call=True,
    )
    def _focus(_):
        return thumb_focus(*fired_click())
