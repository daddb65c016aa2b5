"""Instance view callbacks: the t-SNE scatter of the chosen classes, its hover card and the
selection list. Thin controllers over :mod:`dashboard.views.instances` (tests and the benchmark
call the same functions without a browser)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import dash
import plotly.graph_objects as go
from dash import Input, Output

from dashboard.lookups import instance_records, selected_ids
from dashboard.views.instances.data import memo_dir_for, warm
from dashboard.views.instances.figures import scatter_figure
from dashboard.views.instances.markup import instance_card, scatter_summary, selection_list
from layouts import instances as inst_layout
from transferviz.cache import Cache

NO = dash.no_update


def update_scatter(cache: Cache, classes: Sequence[Any] | None, memo_dir: Path | None) -> tuple[go.Figure, Any, Any]:
    """``(figure, selectedData, summary)`` for the checked classes. The selection is cleared
    (``None``) because its points belong to the previous map."""
    try:
        chosen = sorted({int(c) for c in (classes or [])})
    except (TypeError, ValueError):
        chosen = []
    fig, df = scatter_figure(cache, chosen, memo_dir)
    return fig, None, scatter_summary(df, len(chosen))


def hover_card(cache: Cache, hover_data: dict | None, prefix: str) -> tuple[bool, Any, Any]:
    """``(show, bbox, children)`` of the tooltip for the hovered point (hidden when none)."""
    pts = (hover_data or {}).get("points") or []
    ids = selected_ids({"points": pts[:1]})
    if not ids:
        return False, NO, NO
    recs = instance_records(cache, ids)
    if not recs:
        return False, NO, NO
    bbox = pts[0].get("bbox")
    if not bbox:  # no position to attach to (should not happen with plotly >= 2): show nothing
        return False, NO, NO
    return True, bbox, instance_card(recs[0], prefix)


def register(app: dash.Dash, cache: Cache) -> None:
    memo_dir = memo_dir_for(cache)
    prefix = app.config.requests_pathname_prefix
    warm(cache, memo_dir)

    @app.callback(
        Output(inst_layout.SCATTER, "figure"),
        Output(inst_layout.SCATTER, "selectedData"),
        Output(inst_layout.SUMMARY, "children"),
        Input(inst_layout.CLASSES, "value"),
    )
    def _scatter(classes):
        return update_scatter(cache, classes, memo_dir)

    @app.callback(
        Output(inst_layout.TOOLTIP, "show"),
        Output(inst_layout.TOOLTIP, "bbox"),
        Output(inst_layout.TOOLTIP, "children"),
        Input(inst_layout.SCATTER, "hoverData"),
    )
    def _hover(hover_data):
        return hover_card(cache, hover_data, prefix)

    @app.callback(
        Output(inst_layout.SELECTION, "children"),
        Input(inst_layout.SCATTER, "selectedData"),
    )
    def _selection(selected_data):
        return selection_list(cache, selected_data, prefix)
