"""Hard-example callbacks: the two loss maps, brushing between them, focus on click, the detail card.

Thin controllers: what the maps, the line under them and the card show comes from
:mod:`dashboard.views.hard_examples` (``figures.loss_maps``, ``markup.summary_line``,
``markup.detail_card``), over per-instance arrays prepared once per cache object
(``data.hard_data``, warmed at registration).

Brushing: a lasso in one map is kept in ``BRUSH`` (``{"source": map key, "ids": [...]}``);
the *other* map shows those ids as its ``selectedpoints`` (larger, the rest faded). The
lassoed map is never given ``selectedpoints``: it keeps the user's own lasso, which plotly
re-applies when the map is redrawn (a filter change re-selects inside the outline and so
updates the brush). A double-click that clears a lasso clears the brush only if that map
made it. A focus change (a click in either map, or any other view) patches only the focus
ring and its label (``dash.Patch``): kilobytes, and the lasso stays untouched.
"""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State

from callbacks.common import triggered_components
from dashboard.export import export_callback_js, register_export
from dashboard.highlight import highlight_trace
from dashboard.lookups import selected_ids
from dashboard.views.hard_examples import data
from dashboard.views.hard_examples.figures import FOCUS_TRACE, HIGHLIGHT_TRACE, focus_label, focus_ring, loss_maps
from dashboard.views.hard_examples.markup import detail_card, summary_line
from layouts import hard_examples as ly
from layouts import ids
from transferviz.cache import Cache

NO = dash.no_update
#: Map graph id -> map key.
KEY_OF = {graph_id: key for key, graph_id, _, _ in ly.MAPS}


def maps_update(cache: Cache, fired: set[str], tab: str | None, drawn: bool | None, model: Any, domain: Any,
                wrong_only: Any, focus: Any, brush: Any, highlight: Any = None) -> tuple[Any, Any, Any, Any]:
    """``(hidden map, pixel map, summary, drawn flag)`` for whatever fired the maps' callback.

    The maps (~1 MB of JSON) wait until the diagnosis tab is first shown; a focus set
    meanwhile (e.g. from the timeline) is simply part of that first drawing. Once drawn, a
    tab switch sends nothing, a focus change patches the ring only, a find (``ids.HIGHLIGHT``)
    patches the find rings only, and a new lasso redraws
    only the other map (the lassoed one keeps its own outline).
    """
    if not drawn:
        if tab != ids.TAB_DIAGNOSIS:
            return NO, NO, NO, NO
        return (*update_maps(cache, model, domain, wrong_only, focus, brush, highlight=highlight), True)
    if fired == {ids.TABS}:
        return NO, NO, NO, NO
    if fired == {ids.FOCUS}:
        return (*focus_patches(cache, focus), NO, NO)
    if fired == {ids.HIGHLIGHT}:
        return (*ring_patches(cache, highlight=highlight), NO, NO)
    if fired == {ids.FOCUS, ids.HIGHLIGHT}:  # the find box set both at once (an id search)
        return (*ring_patches(cache, focus=focus, highlight=highlight), NO, NO)
    lassoed = fired == {ly.BRUSH} and data.brushed_ids(brush) is not None
    return (*update_maps(cache, model, domain, wrong_only, focus, brush,
                         skip=brush["source"] if lassoed else None, highlight=highlight), NO)


def update_maps(cache: Cache, model: Any, domain: Any, wrong_only: Any, focus: Any, brush: Any,
                skip: str | None = None, highlight: Any = None) -> tuple[Any, Any, Any]:
    """``(hidden-layer map, raw-pixel map, summary line)`` for the controls, focus and brush;
    the map named ``skip`` (a map key) is left as it is (``no_update``)."""
    figs = loss_maps(cache, model, domain, wrong_only, focus, brush, keys=[k for k in data.MAP_KEYS if k != skip],
                     highlight=highlight)
    hidden, pixels = (figs.get(key, NO) for key in data.MAP_KEYS)
    return hidden, pixels, summary_line(cache, model, domain, wrong_only, brush)


_KEEP = object()  # ring_patches: leave this ring as it is


def ring_patches(cache: Cache, focus: Any = _KEEP, highlight: Any = _KEEP) -> tuple[Any, Any]:
    """A new focus or a new find moves only its rings: one ``dash.Patch`` a map of its focus trace
    and label and/or its find-ring trace (kilobytes instead of redrawing thousands of points, and
    the user's lasso stays untouched)."""
    d = data.hard_data(cache)
    out: list[Any] = []
    for key in data.MAP_KEYS:
        if d.maps[key] is None:
            out.append(NO)
            continue
        patch = dash.Patch()
        if focus is not _KEEP:
            point = data.focus_point(d, key, focus)
            patch["data"][FOCUS_TRACE] = focus_ring(point)
            patch["layout"]["annotations"][0] = focus_label(point)
        if highlight is not _KEEP:
            patch["data"][HIGHLIGHT_TRACE] = highlight_trace(*data.highlight_points(d, key, highlight))
        out.append(patch)
    return out[0], out[1]


def focus_patches(cache: Cache, focus: Any) -> tuple[Any, Any]:
    """:func:`ring_patches` of a new focus."""
    return ring_patches(cache, focus=focus)


def brush_state(trigger: str | None, sel_hidden: dict | None, sel_pixels: dict | None, current: Any) -> Any:
    """The new ``BRUSH`` after a (de)selection in the map ``trigger`` (a graph id)."""
    key = KEY_OF.get(trigger or "")
    if key is None:
        return NO
    sel = sel_hidden if key == "hidden" else sel_pixels
    if not sel or not (sel.get("points") or sel.get("lassoPoints") or sel.get("range")):
        # cleared: only the map that made the brush may clear it
        return None if isinstance(current, dict) and current.get("source") == key else NO
    return {"source": key, "ids": selected_ids(sel)}


def click_focus(click_data: dict | None, n_instances: int) -> Any:
    """The clicked instance's id for ``ids.FOCUS`` (no update for a click on nothing)."""
    clicked = [i for i in selected_ids(click_data) if 0 <= i < n_instances]
    return clicked[0] if clicked else NO


def export_selection(cache: Cache, state: dict) -> tuple[list[int], str]:
    """What the view's CSV button exports (``dashboard.export``'s chooser): the lasso selection
    (``brush``), or, without one, every instance the filters (``model``, ``domain``, ``wrong_only``) show."""
    chosen = data.brushed_ids(state.get("brush"))
    if chosen is not None:
        return chosen, "hard_examples_selection"
    wrong = state.get("wrong_only")
    d = data.hard_data(cache)
    shown = data.visible_rows(d, *data.selection(state.get("model"), state.get("domain"),
                                                 wrong if isinstance(wrong, list) else None))
    return d.ids[shown].tolist(), "hard_examples_shown"


def register(app: dash.Dash, cache: Cache) -> None:
    prefix = app.config.requests_pathname_prefix
    data.warm(cache)

    @app.callback(
        Output(ly.HIDDEN_MAP, "figure"), Output(ly.PIXEL_MAP, "figure"), Output(ly.SUMMARY, "children"),
        Output(ly.DRAWN, "data"),
        Input(ly.MODEL, "value"), Input(ly.DOMAIN, "value"), Input(ly.WRONG, "value"),
        Input(ids.FOCUS, "data"), Input(ly.BRUSH, "data"), Input(ids.TABS, "value"), Input(ids.HIGHLIGHT, "data"),
        State(ly.DRAWN, "data"),
    )
    def _maps(model, domain, wrong_only, focus, brush, tab, highlight, drawn):
        return maps_update(cache, triggered_components(), tab, drawn, model, domain, wrong_only, focus,
                           brush, highlight)

    @app.callback(
        Output(ly.BRUSH, "data"),
        Input(ly.HIDDEN_MAP, "selectedData"), Input(ly.PIXEL_MAP, "selectedData"), State(ly.BRUSH, "data"),
        prevent_initial_call=True,
    )
    def _brush(sel_hidden, sel_pixels, current):
        return brush_state(dash.ctx.triggered_id, sel_hidden, sel_pixels, current)

    @app.callback(
        Output(ids.FOCUS, "data", allow_duplicate=True),
        Input(ly.HIDDEN_MAP, "clickData"), Input(ly.PIXEL_MAP, "clickData"),
        prevent_initial_call=True,
    )
    def _click(click_hidden, click_pixels):
        clicked = click_hidden if dash.ctx.triggered_id == ly.HIDDEN_MAP else click_pixels
        return click_focus(clicked, len(cache.instances))

    # the CSV button: the browser posts the view's state to the export route (no callback on the server)
    url = register_export(app, cache, "hard_examples", export_selection)
    app.clientside_callback(
        export_callback_js(url, ["brush", "model", "domain", "wrong_only"]),
        Output(ly.DOWNLOAD, "data"), Input(ly.EXPORT, "n_clicks"), State(ly.BRUSH, "data"),
        State(ly.MODEL, "value"), State(ly.DOMAIN, "value"), State(ly.WRONG, "value"), prevent_initial_call=True)

    @app.callback(Output(ly.DETAIL, "children"), Input(ids.FOCUS, "data"))
    def _detail(focus):
        return detail_card(cache, focus, prefix)
