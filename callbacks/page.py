"""URL query string <-> shared state (selected class, instance-view classes), with notices.

One callback owns the synchronisation between the URL and the controls of views A and B
(the confusion table's selected row and the instance view's class checklist). Dash lets a
property be both an input and an output of *one* callback, which is what makes the
two-way link loop-free: a change from either side updates the other side in the same
call, and the callback is not re-triggered by its own outputs.

* The URL changed (page load, back/forward, or another view wrote its own key): parse it,
  fall back to defaults with a notice for anything invalid, and push the class into
  ``SELECTED_CLASS``, the table and the checklist -- only where they differ, so views
  reading ``SELECTED_CLASS`` do not redraw when an unrelated key changed. The URL itself is
  rewritten only to drop invalid values from a link.
* A table row was selected: that class becomes the selected class (and the instance view
  shows it beside the class it is most mistaken for); the URL records it.
* The checklist changed: the URL records the instance view's classes.
* ``SELECTED_CLASS`` was set by another view (the network view's class dropdown writes it
  with ``allow_duplicate``): the URL, the table and the checklist follow.

Keys owned by other views (``layers``, ``model``, ``order``, ``neurons``) pass through
untouched because every write goes through :func:`dashboard.urlstate.to_search` of the
*parsed* state. Those views write the URL with ``allow_duplicate=True`` outputs via
:func:`dashboard.urlstate.update_search` and return ``no_update`` for the URL when the URL
itself triggered them, so no two callbacks ping-pong.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import dash
from dash import Input, Output

from callbacks.statistics import classes_of_selection, selection_for
from dashboard.components import notice_alert
from dashboard.lookups import find_instances, layer_tag
from dashboard.urlstate import TABS, State, StateSpace, parse_state, space_of, to_search, update_search, with_changes
from dashboard.views.features.data import unranked_neurons
from layouts import ids
from layouts import instances as inst_layout
from layouts import statistics as stats_layout
from transferviz.cache import Cache

NO = dash.no_update

#: Output order of :func:`sync_state`.
OUTPUTS = ("search", "selected_class", "notice", "table_rows", "instance_classes")


def _same_classes(a: Sequence[Any] | None, b: Sequence[int]) -> bool:
    try:
        return sorted(int(v) for v in (a or [])) == sorted(b)
    except (TypeError, ValueError):
        return False


#: A check of a parsed link against the cache beyond :func:`parse_state`'s: the state to show and
#: the notices for what it dropped.
LinkCheck = Callable[[State], tuple[State, list[str]]]


def neuron_check(cache: Cache, space: StateSpace) -> LinkCheck:
    """The link's ``neurons`` against the ranking list they check: a valid neuron that is not an
    important one of the link's class and model cannot be checked, so it is dropped with a
    notice naming it (``parse_state`` knows the layers' sizes, not the rankings)."""
    def check(state: State) -> tuple[State, list[str]]:
        if not state.neurons:
            return state, []
        dropped = unranked_neurons(cache, state.model, state.cls, state.neurons)
        if not dropped:
            return state, []
        names = ", ".join(f"{layer_tag(cache, layer)} #{n} ({layer}:{n})" for layer, n in dropped)
        kept = tuple(x for x in state.neurons if x not in dropped)
        notice = (f"Neuron(s) {names} of the link are not important neurons of class "
                  f"{space.classes[state.cls]!r} for the {state.model} model, so the ranking list cannot "
                  "check them" + ("." if kept else "; checking the top five neurons instead."))
        return with_changes(state, space, neurons=kept), [notice]
    return check


def sync_state(space: StateSpace, trigger: str | None, search: str | None, table_rows: Sequence[int] | None,
               checklist: Sequence[Any] | None, current_cls: Any,
               check: LinkCheck | None = None) -> tuple[Any, Any, Any, Any, Any]:
    """The pure logic of the state callback.

    Args:
        space: the valid values of the cache.
        trigger: id of the component that fired (``ids.URL``, the table, the checklist) or
            ``None`` on the initial call (treated as a URL change).
        search: ``dcc.Location.search``.
        table_rows: the class indices selected in the confusion table (its ``selectedRows`` converted
            by ``callbacks.statistics.classes_of_selection``).
        checklist: the instance view's selected class indices.
        current_cls: ``SELECTED_CLASS.data`` (an input: other views may set it too).
        check: a further check of a link that changed (:func:`neuron_check`), its notices shown
            beside :func:`parse_state`'s.

    Returns:
        ``(search, selected_class, notice, table_rows, instance_classes)`` with
        ``dash.no_update`` wherever nothing changes.
    """
    state, notices = parse_state(search, space)

    if trigger == stats_layout.TABLE:
        if not table_rows:
            return NO, NO, NO, NO, NO
        cls = int(table_rows[0])
        if not 0 <= cls < len(space.classes) or cls == state.cls and current_cls == cls:
            return NO, NO, NO, NO, NO
        new = with_changes(state, space, cls=cls)
        return (to_search(new, space), cls, NO, NO,
                NO if _same_classes(checklist, new.classes) else list(new.classes))

    if trigger == ids.SELECTED_CLASS:
        # another view (e.g. the network view's class dropdown) chose a class
        try:
            cls = int(current_cls)
        except (TypeError, ValueError):
            return NO, NO, NO, NO, NO
        if not 0 <= cls < len(space.classes) or cls == state.cls:
            return NO, NO, NO, NO, NO
        new = with_changes(state, space, cls=cls)
        return (to_search(new, space), NO, NO, [cls],
                NO if _same_classes(checklist, new.classes) else list(new.classes))

    if trigger == inst_layout.CLASSES:
        try:
            chosen = tuple(sorted({int(v) for v in (checklist or []) if 0 <= int(v) < len(space.classes)}))
        except (TypeError, ValueError):
            return NO, NO, NO, NO, NO
        if chosen == state.classes:
            return NO, NO, NO, NO, NO
        return to_search(with_changes(state, space, classes=chosen), space), NO, NO, NO, NO

    # the URL changed, or the initial call
    if check is not None:
        state, more = check(state)
        notices = notices + more
    clean = to_search(state, space) if notices else NO  # rewrite a link only to drop what was invalid
    return (
        clean,
        NO if current_cls == state.cls else state.cls,
        notice_alert(notices) if notices else NO,  # a notice stays until dismissed
        NO if list(table_rows or []) == [state.cls] else [state.cls],
        NO if _same_classes(checklist, state.classes) else list(state.classes),
    )


def sync_tab_focus(space: StateSpace, trigger: str | None, search: str | None, tab: Any,
                   focus: Any) -> tuple[Any, Any, Any]:
    """``(search, tab, focus)`` keeping the open tab and the focused instance in the link.

    The URL fired (page load, back/forward, an edited link) or the initial call: the tab and
    the focus follow the link, where they differ. The tab or the focus changed: the link
    records it (``update_search`` keeps every other key). ``no_update`` wherever nothing changes.
    """
    state, _ = parse_state(search, space)  # page's other callback shows the notices for a bad link
    if trigger in (None, ids.URL):
        return NO, NO if tab == state.tab else state.tab, NO if focus == state.focus else state.focus
    new_tab = tab if tab in TABS else state.tab
    try:
        new_focus = None if focus is None else int(focus)
    except (TypeError, ValueError):
        new_focus = state.focus
    if (new_tab, new_focus) == (state.tab, state.focus):
        return NO, NO, NO
    return update_search(search, space, tab=new_tab, focus=new_focus), NO, NO


def register(app: dash.Dash, cache: Cache) -> None:
    # The cache never changes under a running app, so its valid values are derived once.
    space = space_of(cache)
    check = neuron_check(cache, space)

    @app.callback(
        Output(ids.URL, "search"),
        Output(ids.SELECTED_CLASS, "data"),
        Output(ids.NOTICE, "children"),
        Output(stats_layout.TABLE, "selectedRows"),
        Output(inst_layout.CLASSES, "value"),
        Input(ids.URL, "search"),
        Input(stats_layout.TABLE, "selectedRows"),
        Input(inst_layout.CLASSES, "value"),
        Input(ids.SELECTED_CLASS, "data"),
    )
    def _sync_state(search, table_selection, checklist, current_cls):
        # the confusion grid speaks row data / row ids, the state logic class indices
        search_, cls, notice, rows, classes = sync_state(space, dash.ctx.triggered_id, search,
                                                         classes_of_selection(table_selection), checklist,
                                                         current_cls, check)
        return search_, cls, notice, selection_for(rows), classes

    @app.callback(
        Output(ids.FOCUS, "data", allow_duplicate=True),
        Output(ids.HIGHLIGHT, "data"),
        Output(ids.FIND_MESSAGE, "children"),
        Input(ids.FIND, "value"),
        prevent_initial_call=True,
    )
    def _find(text):
        found = find_instances(cache, text)
        return (NO if found.focus is None else found.focus), found.ids, found.message

    @app.callback(
        Output(ids.URL, "search", allow_duplicate=True),
        Output(ids.TABS, "value"),
        Output(ids.FOCUS, "data", allow_duplicate=True),
        Input(ids.URL, "search"),
        Input(ids.TABS, "value"),
        Input(ids.FOCUS, "data"),
        prevent_initial_call="initial_duplicate",
    )
    def _tab_focus(search, tab, focus):
        return sync_tab_focus(space, dash.ctx.triggered_id, search, tab, focus)
