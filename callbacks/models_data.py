"""Models & data tab callbacks: the panels are built when the tab is first opened, then kept;
the sample grid follows its split control. What they show is built by
:mod:`dashboard.views.models_data`."""

from __future__ import annotations

import dash
from dash import Input, Output, State
from dash.exceptions import PreventUpdate

from callbacks.common import first_open, triggered_components
from dashboard.views.models_data.data import class_count_frame
from dashboard.views.models_data.markup import count_table, data_summary, models_panel, sample_grid
from layouts import ids
from layouts import models_data as lay
from transferviz.cache import Cache


def register(app: dash.Dash, cache: Cache) -> None:

    prefix = app.config.requests_pathname_prefix

    @app.callback(Output(lay.MODELS, "children"), Output(lay.DATA, "children"), Output(lay.COUNTS, "children"),
                  Output(lay.LOADED, "data"), Input(ids.TABS, "value"), State(lay.LOADED, "data"))
    def _panels(tab, loaded):
        if not first_open(tab, ids.TAB_PREVIEW, loaded):
            raise PreventUpdate  # built when the tab is first opened, then kept
        counts = class_count_frame(cache)
        return models_panel(cache), data_summary(cache, counts), count_table(counts, cache.domains), True

    @app.callback(Output(lay.SAMPLES, "children"), Input(lay.SAMPLE_SPLIT, "value"), Input(ids.TABS, "value"),
                  State(lay.LOADED, "data"))
    def _samples(split, tab, loaded):
        # a split change redraws; a tab switch draws only the first time (the flag is still False
        # then: the panels callback fired by the same switch sets it)
        if triggered_components() != {lay.SAMPLE_SPLIT} and not first_open(tab, ids.TAB_PREVIEW, loaded):
            raise PreventUpdate
        return sample_grid(cache, split or "train", prefix)
