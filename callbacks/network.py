"""Network relation view callbacks: the figure, the detail panel, the class selector and the layers in the URL.

What the outputs show is built in :mod:`dashboard.views.network`; here is only what depends
on Dash: which input fired and what to leave as ``no_update``. The selected class lives in
the shared store ``layouts.ids.SELECTED_CLASS``; the title-bar dropdown mirrors it and
writes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dash
from dash import Input, Output, no_update

from callbacks.common import triggered_components
from dashboard.lookups import valid_class
from dashboard.urlstate import StateSpace, parse_state, space_of, update_search
from dashboard.views.network.data import layers_from_range, range_from_layers, warm
from dashboard.views.network.figures import network_figure
from dashboard.views.network.markup import click_layers, detail_panel, hint
from layouts import ids
from layouts import network as ly
from transferviz.cache import Cache

__all__ = ["detail_after_layers", "layers_url", "register", "sync_class"]


def sync_class(cache: Cache, triggered: str | None, store_value: Any, dropdown_value: Any) -> tuple[Any, Any]:
    """One callback keeps the dropdown and the shared store equal (circular in one callback,
    which Dash allows): returns ``(store, dropdown)`` updates."""
    if triggered == ly.CLASS:
        c = valid_class(cache, dropdown_value)
        return (c if c is not None and c != valid_class(cache, store_value) else no_update), no_update
    c = valid_class(cache, store_value)
    return no_update, (c if c is not None and c != dropdown_value else no_update)


def detail_after_layers(cache: Cache, click_data: Any, layer_range: Sequence[Any] | None) -> Any:
    """The detail panel after the layer range changed: the hint when the panel shows a neuron,
    weight or similarity of a layer no longer drawn, else unchanged."""
    shown = click_layers(cache, click_data)
    if shown is None or shown <= set(layers_from_range(cache, layer_range)):
        return no_update
    return hint()


def layers_url(cache: Cache, space: StateSpace, triggered: set[str], search: str | None,
               value: Sequence[Any] | None) -> tuple[Any, Any]:
    """``(search, slider value)``: one callback keeps the layer slider and the URL's
    ``layers`` equal. The URL wins when it fired (or on the initial call); a slider move
    writes the URL through :func:`dashboard.urlstate.update_search`."""
    state, _ = parse_state(search, space)
    if not triggered or ids.URL in triggered:
        rng = range_from_layers(cache, state.layers)
        return no_update, (rng if list(value or []) != rng else no_update)
    layers = tuple(layers_from_range(cache, value))
    rng = range_from_layers(cache, layers)
    slider = rng if list(value or []) != rng else no_update  # clamped to MAX_LAYERS
    return (update_search(search, space, layers=layers) if layers != state.layers else no_update), slider


def register(app: dash.Dash, cache: Cache) -> None:
    """Wires the view's callbacks to ``app`` over ``cache``, parsing its small tables now, once."""
    warm(cache)
    space = space_of(cache)  # the valid URL values never change under an app

    @app.callback(
        Output(ly.GRAPH, "figure"),
        Input(ids.SELECTED_CLASS, "data"),
        Input(ly.LAYERS, "value"),
        Input(ly.HIDE_NONIMPORTANT, "value"),
        Input(ly.HIDE_SOURCE, "value"),
    )
    def _figure(cls, layer_range, hide_nonimp, hide_source):
        return network_figure(cache, cls, layer_range, bool(hide_nonimp), bool(hide_source))

    @app.callback(
        Output(ly.DETAIL, "children"),
        Input(ly.GRAPH, "clickData"),
        Input(ids.SELECTED_CLASS, "data"),
        Input(ly.LAYERS, "value"),
    )
    def _detail(click, cls, layer_range):
        if dash.ctx.triggered_id == ids.SELECTED_CLASS:
            return hint()  # a new class: the old click no longer applies
        if dash.ctx.triggered_id == ly.LAYERS:
            return detail_after_layers(cache, click, layer_range)  # a layer no longer drawn: the hint
        return detail_panel(cache, click, cls, app.get_relative_path)

    @app.callback(
        Output(ids.SELECTED_CLASS, "data", allow_duplicate=True),
        Output(ly.CLASS, "value"),
        Input(ids.SELECTED_CLASS, "data"),
        Input(ly.CLASS, "value"),
        prevent_initial_call="initial_duplicate",
    )
    def _class(store, dropdown):
        return sync_class(cache, dash.ctx.triggered_id, store, dropdown)

    @app.callback(
        Output(ids.URL, "search", allow_duplicate=True),
        Output(ly.LAYERS, "value"),
        Input(ids.URL, "search"),
        Input(ly.LAYERS, "value"),
        prevent_initial_call="initial_duplicate",
    )
    def _layers(search, value):
        return layers_url(cache, space, triggered_components(), search, value)
