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
from dash import Input, Output, State, no_update

from callbacks.common import triggered_components
from dashboard.lookups import valid_class
from dashboard.urlstate import DEFAULT_SHOWN, MAX_SHOWN, SCALES, StateSpace, parse_state, space_of, update_search
from dashboard.views.network.data import layers_from_range, range_from_layers, warm
from dashboard.views.network.figures import network_figure
from dashboard.views.network.markup import click_layers, correspondence_view, detail_panel, hint
from layouts import ids
from layouts import network as ly
from transferviz.cache import Cache

__all__ = ["detail_after_layers", "layers_url", "register", "shown_count", "switches_url", "sync_class"]


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


def shown_count(value: Any) -> int | None:
    """The "neurons shown" selector's value as a count (``"all"``: ``None``; anything else unusable:
    the default)."""
    if value == "all":
        return None
    try:
        n = int(value)
    except (TypeError, ValueError):
        return DEFAULT_SHOWN
    return n if 1 <= n <= MAX_SHOWN else DEFAULT_SHOWN


def switches_url(space: StateSpace, triggered: set[str], search: str | None, shown: Any, scale: Any,
                 hide_nonimportant: Any, hide_source: Any) -> tuple[Any, ...]:
    """``(search, shown options, shown, scale, hide non-important, hide source)``: one callback keeps
    the view's switches and the URL's ``shown``, ``scale`` and ``hide`` equal, as :func:`layers_url`
    does for the layers: the URL wins when it fired (or on the initial call), a switch writes the URL."""
    state, _ = parse_state(search, space)
    if not triggered or ids.URL in triggered:
        want = (ly.shown_value(state.shown), state.scale, "nonimportant" in state.hide, "source" in state.hide)
        have = (shown, scale, bool(hide_nonimportant), bool(hide_source))
        controls = tuple(w if w != h else no_update for w, h in zip(want, have))
        options = ly.shown_options(state.shown) if controls[0] is not no_update else no_update
        return (no_update, options, *controls)
    hide = tuple(h for h, on in (("nonimportant", hide_nonimportant), ("source", hide_source)) if on)
    new = dict(shown=shown_count(shown), scale=scale if scale in SCALES else SCALES[0], hide=hide)
    changed = (new["shown"], new["scale"], new["hide"]) != (state.shown, state.scale, state.hide)
    return (update_search(search, space, **new) if changed else no_update), no_update, no_update, no_update, \
        no_update, no_update


#: After a zoom or pan, print every neuron index the new cell size has room for (the figure prints
#: every step-th one where cells are smaller than the text, ``figures.label_step``; the same rule
#: here, in the browser, so that zooming needs no request). It restyles the label traces of the
#: graph in place (returning a new figure updates plotly's data but not the drawn texts) and
#: writes the steps to a store, which nothing reads.
RELABEL_JS = """
function (relayout, graphId) {
  const nu = window.dash_clientside.no_update;
  const host = document.getElementById(graphId);
  const gd = host && host.querySelector('.js-plotly-plot');
  const meta = gd && gd.layout && gd.layout.meta;
  if (!relayout || !meta || meta.kind !== 'network-relation' || !meta.x_range || !gd._fullLayout) { return nu; }
  // the range drawn now (after the square-cell constraint); meta.x_range is the unzoomed one
  const base = meta.x_range, now = gd._fullLayout.xaxis.range;
  const cell = meta.cell_px * Math.abs(base[1] - base[0]) / Math.max(1e-9, Math.abs(now[1] - now[0]));
  const idx = [], texts = [], ys = [], steps = [];
  gd.data.forEach(function (t, i) {
    const m = t.meta || {};
    if (m.role !== 'neuron-labels' || !Array.isArray(t.customdata)) { return; }
    const font = (t.textfont && t.textfont.size) || 9;
    const need = m.axis === 'rows' ? 1.15 * font : (0.62 * font * m.digits + 2) / 2;
    const step = Math.max(1, Math.ceil(need / cell - 1e-9));
    if (step === (m.shown_step || m.step)) { return; }
    m.shown_step = step;
    idx.push(i);
    steps.push(step);
    texts.push(t.customdata.map(function (c, j) { return j % step === 0 ? String(c[3]) : ' '; }));
    ys.push(m.axis === 'cols'
      ? t.customdata.map(function (c, j) { return Math.floor(j / step) % 2 === 0 ? m.lines[0] : m.lines[1]; })
      : t.y);
  });
  if (!idx.length) { return nu; }
  window.Plotly.restyle(gd, {text: texts, y: ys}, idx);
  return steps;
}
"""


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
        Input(ly.SHOWN, "value"),
        Input(ly.SCALE, "value"),
    )
    def _figure(cls, layer_range, hide_nonimp, hide_source, shown, scale):
        return network_figure(cache, cls, layer_range, bool(hide_nonimp), bool(hide_source), shown=shown_count(shown),
                              color_scale=scale if scale in SCALES else SCALES[0])

    @app.callback(
        Output(ly.CORRESPONDENCE, "figure"),
        Output(ly.CORRESPONDENCE_SUMMARY, "children"),
        Input(ids.SELECTED_CLASS, "data"),
        Input(ly.LAYERS, "value"),
    )
    def _correspondence(cls, layer_range):
        return correspondence_view(cache, cls, layer_range)

    @app.callback(Output(ly.CKA, "figure"), Input(ly.CKA_DOMAIN, "value"), prevent_initial_call=True)
    def _cka(domain):
        return ly.cka_figure(cache, domain)  # the layout drew the target data's; a toggle redraws

    app.clientside_callback(RELABEL_JS, Output(ly.RELABEL, "data"), Input(ly.GRAPH, "relayoutData"),
                            State(ly.GRAPH, "id"), prevent_initial_call=True)

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

    @app.callback(
        Output(ids.URL, "search", allow_duplicate=True),
        Output(ly.SHOWN, "options"),
        Output(ly.SHOWN, "value"),
        Output(ly.SCALE, "value"),
        Output(ly.HIDE_NONIMPORTANT, "value"),
        Output(ly.HIDE_SOURCE, "value"),
        Input(ids.URL, "search"),
        Input(ly.SHOWN, "value"),
        Input(ly.SCALE, "value"),
        Input(ly.HIDE_NONIMPORTANT, "value"),
        Input(ly.HIDE_SOURCE, "value"),
        prevent_initial_call="initial_duplicate",
    )
    def _switches(search, shown, scale, hide_nonimp, hide_source):
        return switches_url(space, triggered_components(), search, shown, scale, hide_nonimp, hide_source)
