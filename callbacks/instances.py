"""Instance view callbacks: the class picker (search, all / none, its count), the t-SNE scatter of
the checked classes with the find box's rings, its hover card and the selection list. Thin
controllers over :mod:`dashboard.views.instances` (tests and the benchmark call the same functions
without a browser). No callback runs a t-SNE: the build precomputed every map they show."""

from __future__ import annotations

from typing import Any, Sequence

import dash
import plotly.graph_objects as go
from dash import Input, Output, State

from callbacks.common import triggered_components
from dashboard.highlight import highlight_ids
from dashboard.lookups import instance_records, selected_ids
from dashboard.views.instances.data import match_classes, projection_frame
from dashboard.views.instances.figures import ring_trace, scatter_figure
from dashboard.views.instances.markup import (
    class_key,
    class_options,
    filter_options,
    instance_card,
    picker_count,
    scatter_summary,
    selection_list,
)
from layouts import ids
from layouts import instances as inst_layout
from transferviz.cache import Cache

NO = dash.no_update


def _classes(values: Sequence[Any] | None, n: int) -> list[int]:
    """The valid class indices of a client's value, sorted (garbage from a client is dropped)."""
    out = set()
    for v in values or []:
        try:
            c = int(v)
        except (TypeError, ValueError):
            continue
        if 0 <= c < n:
            out.add(c)
    return sorted(out)


def update_scatter(cache: Cache, classes: Sequence[Any] | None, highlight: Sequence[Any] | None = None,
                   trigger: str | None = None) -> tuple[go.Figure | dash.Patch, Any, Any, Any, Any]:
    """``(figure, selectedData, summary, class key, class key's title)`` for the checked classes,
    with rings around the ``highlight`` instances on the map. The lasso selection is cleared
    (``None``) when the classes change, because its points belong to the previous map, and kept
    when only the highlight changed (``trigger == ids.HIGHLIGHT``): then the answer is a ``dash.Patch`` of
    the map's ring trace (its last) and nothing else changes."""
    chosen = _classes(classes, len(cache.classes))
    found = highlight_ids(highlight).tolist()
    if trigger == ids.HIGHLIGHT:
        # only the find rings move: one dash.Patch of the map's last trace (its ring trace), not the map's
        # thousands of points again; a map without points (no class checked) has no ring trace to patch
        df = projection_frame(cache, chosen)
        if not len(df):
            return NO, NO, NO, NO, NO
        patch = dash.Patch()
        patch["data"][-1] = ring_trace(df, found)
        return patch, NO, NO, NO, NO
    fig, df = scatter_figure(cache, chosen, found)
    return fig, None, scatter_summary(df, len(chosen)), class_key(cache, chosen), f"class colours ({len(chosen)})"


def picker_options(cache: Cache, options: list[dict], query: str | None) -> list[dict]:
    """The picker's options that the search ``query`` matches (all for an empty query)."""
    return filter_options(options, match_classes(list(cache.classes), query))


def picker_status(cache: Cache, query: str | None, classes: Sequence[Any] | None) -> str:
    n = len(cache.classes)
    return picker_count(len(_classes(classes, n)), len(match_classes(list(cache.classes), query)), n)


def check_shown(cache: Cache, query: str | None, classes: Sequence[Any] | None, check: bool) -> list[int]:
    """The picker's new value after "all" (``check``) or "none": the classes the search shows are
    checked or unchecked; the others keep their state."""
    chosen = set(_classes(classes, len(cache.classes)))
    shown = set(match_classes(list(cache.classes), query))
    return sorted(chosen | shown if check else chosen - shown)


def hover_card(cache: Cache, hover_data: dict | None, prefix: str) -> tuple[bool, Any, Any]:
    """``(show, bbox, children)`` of the tooltip for the hovered point (hidden when none)."""
    pts = (hover_data or {}).get("points") or []
    ids_ = selected_ids({"points": pts[:1]})
    if not ids_:
        return False, NO, NO
    recs = instance_records(cache, ids_)
    if not recs:
        return False, NO, NO
    bbox = pts[0].get("bbox")
    if not bbox:  # no position to attach to (should not happen with plotly >= 2): show nothing
        return False, NO, NO
    return True, bbox, instance_card(recs[0], prefix)


def register(app: dash.Dash, cache: Cache) -> None:
    prefix = app.config.requests_pathname_prefix
    all_options = class_options(cache)  # the cache never changes under a running app

    @app.callback(
        Output(inst_layout.SCATTER, "figure"),
        Output(inst_layout.SCATTER, "selectedData"),
        Output(inst_layout.SUMMARY, "children"),
        Output(inst_layout.KEY, "children"),
        Output(inst_layout.KEY_TITLE, "children"),
        Input(inst_layout.CLASSES, "value"),
        Input(ids.HIGHLIGHT, "data"),
    )
    def _scatter(classes, highlight):
        # a patch only when the find box alone fired (both at once, e.g. a link: the whole map)
        fired = triggered_components()
        return update_scatter(cache, classes, highlight, ids.HIGHLIGHT if fired == {ids.HIGHLIGHT} else None)

    @app.callback(Output(inst_layout.CLASSES, "options"), Input(inst_layout.SEARCH, "value"),
                  prevent_initial_call=True)
    def _filter(query):
        return picker_options(cache, all_options, query)

    @app.callback(Output(inst_layout.PICKER_COUNT, "children"), Input(inst_layout.SEARCH, "value"),
                  Input(inst_layout.CLASSES, "value"), prevent_initial_call=True)
    def _count(query, classes):
        return picker_status(cache, query, classes)

    @app.callback(
        Output(inst_layout.CLASSES, "value", allow_duplicate=True),
        Input(inst_layout.ALL, "n_clicks"),
        Input(inst_layout.NONE, "n_clicks"),
        State(inst_layout.SEARCH, "value"),
        State(inst_layout.CLASSES, "value"),
        prevent_initial_call=True,
    )
    def _all_or_none(_all, _none, query, classes):
        new = check_shown(cache, query, classes, dash.ctx.triggered_id == inst_layout.ALL)
        return NO if new == _classes(classes, len(cache.classes)) else new

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
