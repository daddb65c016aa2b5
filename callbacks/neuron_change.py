"""Neuron-change view callbacks: the list of the most changed neurons (a look-up in the cache's
feature-change table, built by :mod:`dashboard.views.neuron_change`).

The list waits for its tab like the other heavy views (:func:`callbacks.common.first_open`
and the ``LOADED`` flag store): a page load that never opens the tab does not build it."""

from __future__ import annotations

import dash
from dash import Input, Output, State
from dash.exceptions import PreventUpdate

from callbacks.common import first_open, triggered_components
from dashboard.views.neuron_change.data import ALL
from dashboard.views.neuron_change.markup import change_list
from layouts import ids as page_ids
from layouts import neuron_change as ly
from transferviz.cache import Cache

__all__ = ["register"]


def register(app: dash.Dash, cache: Cache) -> None:
    """Wires the view's callback to ``app`` over ``cache``."""

    @app.callback(Output(ly.LIST, "children"), Output(ly.LOADED, "data"), Input(ly.LAYER, "value"),
                  Input(ly.SHOW_GRAY, "value"), Input(page_ids.TABS, "value"), State(ly.LOADED, "data"))
    def _list(layer, show_gray, tab, loaded):
        # a control change redraws; a tab switch draws only the first time the tab is shown
        fired = triggered_components()
        if not fired & {ly.LAYER, ly.SHOW_GRAY} and not first_open(tab, page_ids.TAB_CHANGE, loaded):
            raise PreventUpdate
        return change_list(cache, layer or ALL, bool(show_gray), app.get_relative_path), True
