"""Feature view callbacks: the controls and the ranking list with their URL keys, the biplot
and its thumbnail tooltip.

What the outputs show is built in :mod:`dashboard.views.features`; here is only what depends
on Dash: which input fired, what to leave as ``no_update`` and when to write the URL.
The ranking grid's row ids are ``"layer:index"`` strings, the URL's ``neurons`` format: the functions
here take and give those keys; :func:`register` turns them into the grid's ``selectedRows`` and back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dash
from dash import Input, Output, Patch, State, no_update

from callbacks.common import triggered_components
from dashboard.lookups import Model, valid_class
from dashboard.routes import UrlFor, no_prefix
from dashboard.urlstate import StateSpace, parse_state, space_of, update_search
from dashboard.views.features.data import neuron_key, ranked_count, valid_model, warm
from dashboard.views.features.figures import biplot_figure, ring_update
from dashboard.views.features.hist_route import register_hist_route
from dashboard.views.features.markup import (
    MAX_ROWS,
    checked_neurons,
    default_checked,
    instance_tooltip,
    listed_keys,
    listed_neurons,
    more_label,
    ranking,
)
from dashboard.views.features.ranking_grid import keys_of_selection, selection
from layouts import features as ly
from layouts import ids
from transferviz.cache import Cache

__all__ = ["feature_controls", "highlight_patch", "paged_controls", "register", "tooltip"]


def tooltip(cache: Cache, hover_data: dict | None, class_index: Any = None, model: Any = None,
            url_for: UrlFor = no_prefix) -> tuple[bool, Any, Any, Any]:
    """``(show, bbox, direction, children)`` of the biplot's thumbnail tooltip; nothing but
    ``show`` changes while the mouse is over no instance."""
    shown = instance_tooltip(cache, hover_data, class_index, model, url_for)
    if shown is None:
        return False, no_update, no_update, no_update
    return (True, *shown)


def feature_controls(cache: Cache, space: StateSpace, triggered: set[str], search: str | None, class_index: Any,
                     model: Any, order: Any, value: Sequence[str] | None,
                     url_for: UrlFor = no_prefix) -> tuple[Any, Any, Any, Any, Any, Any]:
    """:func:`paged_controls` less its paging outputs: ``(search, model, order, rows, value, status)``."""
    out = paged_controls(cache, space, triggered, search, class_index, model, order, value, None, url_for)
    return out[0], out[1], out[2], out[3], out[4], out[5]


def paged_controls(cache: Cache, space: StateSpace, triggered: set[str], search: str | None, class_index: Any,
                   model: Any, order: Any, value: Sequence[str] | None, shown: Any,
                   url_for: UrlFor = no_prefix) -> tuple[Any, Any, Any, Any, Any, Any, Any, Any, Any]:
    """One callback owns the view's controls and its URL keys, so nothing races.

    ``triggered`` holds the ids that fired (empty: the initial call). The URL is the
    source of truth when it fired (page load, back/forward); a switch or a checkbox
    writes its key to the URL (``update_search``), only while the URL already names the
    current class (:mod:`callbacks.page` owns ``class`` and resets ``neurons`` with it).
    The list shows ``shown`` rows (a page, ``MAX_ROWS``, when None); "show more" (``ly.MORE``) adds a
    page (a ``Patch`` appending its rows where the list grows at its end; the whole list where a checked
    row below the pages must move into order), a new list (class, model, order) starts again at one page.
    Returns ``(search, model, order, rows, value, status, shown, more text, more style)`` (rows: the grid's
    ``rowData``, value: the checked keys),
    ``no_update`` wherever nothing changes.
    """
    state, _ = parse_state(search, space)
    c = valid_class(cache, class_index)
    url_fired = not triggered or ids.URL in triggered
    new_model = state.model if url_fired else valid_model(model)
    new_order = state.order if url_fired else ("least" if order == "least" else "most")
    list_changed = (not triggered or ids.SELECTED_CLASS in triggered or new_model != model or new_order != order
                    or ly.MODEL in triggered or ly.ORDER in triggered)
    page = int(shown) if isinstance(shown, int) and shown > 0 else MAX_ROWS
    url_neurons = [neuron_key(layer, n) for layer, n in state.neurons]
    describes = c is not None and state.cls == c and state.model == new_model and state.order == new_order
    options: Any = no_update
    status: Any = no_update
    new_value: Any = no_update
    current = list(value or [])
    new_shown: Any = no_update
    if list_changed:
        # a new list: the URL's checks where the URL describes this list, else the top five; one page
        page = new_shown = MAX_ROWS
        options, current, status = ranking(cache, c, new_model, new_order,
                                           url_neurons if describes else None, url_for, shown=page)
        new_value = current
    elif ly.MORE in triggered and c is not None:
        # "show more": one more page, the same checks; only the new rows travel when the list grows at its end
        before = listed_keys(cache, c, new_model, new_order, current, page)
        page = new_shown = page + MAX_ROWS
        options, _, status = ranking(cache, c, new_model, new_order, current, url_for, shown=page)
        if [o["value"] for o in options[:len(before)]] == before:
            appended = Patch()
            appended.extend(options[len(before):])
            options = appended
    elif url_fired and describes and c is not None:  # describes implies a class: spelled out for the type checker
        # the same list, other checks in the URL (back / forward, an edited link)
        target = checked_neurons(cache, c, new_model, new_order, url_neurons)
        if target != current:
            if not set(target) <= listed_neurons(cache, c, new_model, new_order, current, page):
                # a check below the listed pages: the list is rebuilt to show it
                options, _, status = ranking(cache, c, new_model, new_order, target, url_for, shown=page)
            new_value = current = target
    # the URL follows the controls (never while it still names another class)
    out_search: Any = no_update
    if not url_fired and c is not None and state.cls == c:
        default = default_checked(cache, c, new_model, new_order)
        # as a set: the grid reports its selection in its own order, the default is in rank order
        neurons = () if set(current) == set(default) else tuple(
            (k.rpartition(":")[0], int(k.rpartition(":")[2])) for k in current)
        if (new_model, new_order, neurons) != (state.model, state.order, state.neurons):
            out_search = update_search(search, space, model=new_model, order=new_order, neurons=neurons)
    return (
        out_search,
        new_model if new_model != model else no_update,
        new_order if new_order != order else no_update,
        options,
        new_value,
        status,
        new_shown,
        *_more_button(cache, c, new_model, page, options is not no_update),
    )


def _more_button(cache: Cache, c: int | None, model: Model, shown: int, changed: bool) -> tuple[Any, Any]:
    """``(text, style)`` of the "show more" button for a list of ``shown`` rows; hidden when all are shown."""
    if not changed:
        return no_update, no_update
    text = more_label(shown, ranked_count(cache, c, model))
    return text, ({"display": "none"} if not text else {})


def highlight_patch(cache: Cache, highlight: Sequence[int] | None, class_index: Any, model: Any,
                    checked: Sequence[str] | None) -> Any:
    """The biplot's ring trace for the find box's ``highlight``, as a patch of that one trace (the
    points, axes and labels are not sent again); ``no_update`` over an empty state."""
    update = ring_update(cache, class_index, model, checked, highlight)
    if update is None:
        return no_update
    index, props = update
    patch = Patch()
    for key, v in props.items():
        patch["data"][index][key] = v
    return patch


def biplot_update(cache: Cache, cls: Any, model: Any, selected: Any, highlight: Any, drawn: Any) -> tuple[Any, Any]:
    """``(figure, drawn key)`` of the biplot, or no update when the figure already shows this class, model
    and checked neurons: once the server has set the ranking grid's selection, the grid reports it back
    (``selectedRows`` fires again, the same rows), which would draw the same thousands of points twice on
    every page load and class change."""
    checked = keys_of_selection(selected)
    key = [valid_class(cache, cls), str(valid_model(model)), sorted(checked)]
    if drawn == key:
        return no_update, no_update
    return biplot_figure(cache, cls, model, checked, highlight), key


def register(app: dash.Dash, cache: Cache) -> None:
    """Wires the view's callbacks to ``app`` over ``cache``, parsing Algorithm 1's tables now, once."""
    warm(cache)
    register_hist_route(app, cache)  # the grid rows' histogram images
    space = space_of(cache)  # the valid URL values never change under an app

    @app.callback(
        Output(ids.URL, "search", allow_duplicate=True),
        Output(ly.MODEL, "value"),
        Output(ly.ORDER, "value"),
        Output(ly.RANKING, "rowData"),
        Output(ly.RANKING, "selectedRows"),
        Output(ly.STATUS, "children"),
        Output(ly.SHOWN, "data"),
        Output(ly.MORE, "children"),
        Output(ly.MORE, "style"),
        Input(ids.URL, "search"),
        Input(ids.SELECTED_CLASS, "data"),
        Input(ly.MODEL, "value"),
        Input(ly.ORDER, "value"),
        Input(ly.RANKING, "selectedRows"),
        Input(ly.MORE, "n_clicks"),
        State(ly.SHOWN, "data"),
        prevent_initial_call="initial_duplicate",
    )
    def _controls(search, cls, model, order, selected, _more, shown):
        out = paged_controls(cache, space, triggered_components(), search, cls, model, order,
                             keys_of_selection(selected), shown, app.get_relative_path)
        return (*out[:4], out[4] if out[4] is no_update else selection(out[4]), *out[5:])

    @app.callback(
        Output(ly.BIPLOT, "figure"),
        Output(ly.BIPLOT_DRAWN, "data"),
        Input(ids.SELECTED_CLASS, "data"),
        Input(ly.MODEL, "value"),
        Input(ly.RANKING, "selectedRows"),
        State(ids.HIGHLIGHT, "data"),
        State(ly.BIPLOT_DRAWN, "data"),
    )
    def _biplot(cls, model, selected, highlight, drawn):
        return biplot_update(cache, cls, model, selected, highlight, drawn)

    @app.callback(
        Output(ly.BIPLOT, "figure", allow_duplicate=True),
        Input(ids.HIGHLIGHT, "data"),
        State(ids.SELECTED_CLASS, "data"),
        State(ly.MODEL, "value"),
        State(ly.RANKING, "selectedRows"),
        prevent_initial_call=True,
    )
    def _highlight(highlight, cls, model, selected):
        return highlight_patch(cache, highlight, cls, model, keys_of_selection(selected))

    @app.callback(
        Output(ly.TOOLTIP, "show"),
        Output(ly.TOOLTIP, "bbox"),
        Output(ly.TOOLTIP, "direction"),
        Output(ly.TOOLTIP, "children"),
        Input(ly.BIPLOT, "hoverData"),
        State(ids.SELECTED_CLASS, "data"),
        State(ly.MODEL, "value"),
    )
    def _tooltip(hover, cls, model):
        return tooltip(cache, hover, cls, model, app.get_relative_path)
