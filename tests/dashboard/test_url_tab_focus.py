"""The open tab and the focused instance in the link (issue 16, item 7): parsed, validated, written
only when not the default, and kept in step with the tabs and ``ids.FOCUS`` by the page's callback."""

from __future__ import annotations

import dash
import pytest

from callbacks.page import sync_tab_focus
from dashboard.urlstate import TABS, StateSpace, parse_state, to_search, update_search, with_changes
from layouts import ids

LAYERS = ("a", "b", "c")


@pytest.fixture()
def space() -> StateSpace:
    return StateSpace(classes=("bike", "mug"), layers=LAYERS, neuron_counts={"a": 4, "b": 4, "c": 4},
                      n_instances=50)


def test_tab_values_are_the_pages_tabs():
    assert TABS == (ids.TAB_ANALYSIS, ids.TAB_DIAGNOSIS, ids.TAB_TIMELINE, ids.TAB_CHANGE, ids.TAB_PREVIEW)


def test_defaults_are_not_written(space):
    state, notices = parse_state("", space)
    assert (state.tab, state.focus, notices) == ("analysis", None, [])
    assert "tab=" not in to_search(state, space) and "focus=" not in to_search(state, space)


def test_round_trip(space):
    state = with_changes(parse_state("", space)[0], space, tab="diagnosis", focus=17)
    search = to_search(state, space)
    assert search.endswith("&tab=diagnosis&focus=17")
    assert parse_state(search, space) == (state, [])


@pytest.mark.parametrize("query, notice", [
    ("?tab=nope", "Unknown tab 'nope'"),
    ("?focus=50", "Unknown instance '50' to focus (ids 0-49)"),
    ("?focus=-3", "Unknown instance '-3'"),
    ("?focus=x", "Unknown instance 'x'"),
])
def test_bad_values_fall_back_with_a_notice(space, query, notice):
    state, notices = parse_state(query, space)
    assert (state.tab, state.focus) == ("analysis", None)
    assert len(notices) == 1 and notices[0].startswith(notice)


def test_changing_the_class_keeps_tab_and_focus(space):
    state = with_changes(parse_state("?tab=timeline&focus=3", space)[0], space, cls=1)
    assert (state.tab, state.focus) == ("timeline", 3)


def test_the_link_drives_the_tab_and_the_focus(space):
    search = "?tab=diagnosis&focus=7"
    assert sync_tab_focus(space, None, search, "analysis", None) == (dash.no_update, "diagnosis", 7)
    assert sync_tab_focus(space, ids.URL, search, "diagnosis", 7) == (dash.no_update,) * 3


def test_a_tab_click_or_a_focus_is_written_to_the_link(space):
    search = update_search("", space, cls=0)
    out, tab, focus = sync_tab_focus(space, ids.TABS, search, "timeline", None)
    assert (tab, focus) == (dash.no_update, dash.no_update)
    assert parse_state(out, space)[0].tab == "timeline" and parse_state(out, space)[0].cls == 0
    out2, _, _ = sync_tab_focus(space, ids.FOCUS, out, "timeline", 12)
    assert parse_state(out2, space)[0].focus == 12
    # nothing new: nothing written
    assert sync_tab_focus(space, ids.FOCUS, out2, "timeline", 12) == (dash.no_update,) * 3


def test_clearing_the_focus_removes_it_from_the_link(space):
    out, _, _ = sync_tab_focus(space, ids.FOCUS, "?focus=4", "analysis", None)
    assert "focus=" not in out
