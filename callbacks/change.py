"""Callbacks of the neuron-change tab: a lookup in ``featvis/change.parquet``, nothing heavier.

The list waits for its tab like the other heavy views (:func:`callbacks.first_open` and the
``LOADED`` flag store): a page load that never opens the tab does not build it."""

from __future__ import annotations

import dash
import pandas as pd
from dash import Input, Output, State, html
from dash.exceptions import PreventUpdate

from callbacks import first_open, triggered_components
from dashboard.data_network import layer_numbers
from layouts import change as ids
from layouts import ids as page_ids
from transferviz.cache import Cache

PER_LAYER = 5
ONE_LAYER = 24


def changed_rows(change: pd.DataFrame, layers: list[str], layer: str, show_gray: bool) -> pd.DataFrame:
    """Most changed first: the five of every layer, or the top ``ONE_LAYER`` of one layer."""
    df = change if show_gray else change[~(change.gray_source | change.gray_target)]
    df = df.dropna(subset=["similarity"]).sort_values(["similarity", "neuron"], kind="stable")
    if layer == ids.ALL:
        df = df.groupby("layer", sort=False).head(PER_LAYER)
        order = {l: i for i, l in enumerate(layers)}
        return df.sort_values(by=["layer", "similarity"], key=lambda s: s.map(order) if s.name == "layer" else s,
                              kind="stable")
    return df[df.layer == layer].head(ONE_LAYER)


def change_list(cache: Cache, layer: str, show_gray: bool, url_for) -> html.Div:
    change = cache.feature_change
    if change is None:
        return html.Div("This cache has no feature visualizations (it was built with --no-featvis or "
                        "featvis.enabled: false); rebuild without it to compare neurons.", className="text-muted")
    rows = changed_rows(change, cache.layers, layer, show_gray)
    if rows.empty:
        return html.Div("No neuron to show: every visualization of this layer was detected as gray.",
                        className="text-muted")
    number = layer_numbers(cache)
    img = {"width": "72px", "height": "72px", "imageRendering": "pixelated", "border": "1px solid #ddd"}
    body = []
    for r in rows.itertuples():
        gray = [s for s, g in (("source", r.gray_source), ("target", r.gray_target)) if g]
        body.append(html.Tr([
            html.Td(f"L{number[r.layer]}", title=r.layer), html.Td(f"#{r.neuron}"),
            html.Td(f"{r.similarity:.2f}"),
            html.Td(html.Img(src=url_for(f"featvis/source/{r.layer}/{r.neuron}.png"), style=img)),
            html.Td(html.Img(src=url_for(f"featvis/target/{r.layer}/{r.neuron}.png"), style=img)),
            html.Td(f"{r.colourfulness_source:.2f} / {r.colourfulness_target:.2f}"
                    + (f" (gray: {', '.join(gray)})" if gray else ""), className="small text-muted"),
        ]))
    head = html.Thead(html.Tr([html.Th("layer"), html.Th("neuron"), html.Th("similarity"),
                               html.Th("source", className="tv-source"), html.Th("target", className="tv-target"),
                               html.Th("colourfulness")]))
    return html.Table([head, html.Tbody(body)], className="table table-sm align-middle", id="change-table")


def register(app: dash.Dash) -> None:
    from dashboard.app import get_cache

    prefix = app.config.requests_pathname_prefix

    @app.callback(Output(ids.LIST, "children"), Output(ids.LOADED, "data"), Input(ids.LAYER, "value"),
                  Input(ids.SHOW_GRAY, "value"), Input(page_ids.TABS, "value"), State(ids.LOADED, "data"))
    def _list(layer, show_gray, tab, loaded):
        # a control change redraws; a tab switch draws only the first time the tab is shown
        fired = triggered_components()
        if not fired & {ids.LAYER, ids.SHOW_GRAY} and not first_open(tab, page_ids.TAB_CHANGE, loaded):
            raise PreventUpdate
        return change_list(get_cache(app), layer or ids.ALL, bool(show_gray), lambda p: prefix + p), True
