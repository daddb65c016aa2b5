"""URL query string <-> dashboard state: parse, validate, serialise (dashboard/urlstate.py)."""

from __future__ import annotations

import pytest

from dashboard.urlstate import (
    State,
    StateSpace,
    default_state,
    parse_state,
    to_search,
    update_search,
    with_changes,
)

LAYERS = ("features.0", "features.3", "features.6", "features.8", "classifier.1")
COUNTS = {"features.0": 16, "features.3": 32, "features.6": 32, "features.8": 32, "classifier.1": 128}


@pytest.fixture()
def space() -> StateSpace:
    # class 2 gains most from fine-tuning; class 0 is mostly mistaken for 'a,b' (a comma in a name)
    return StateSpace(classes=("bike", "phone", "mug", "a,b"), layers=LAYERS, neuron_counts=COUNTS,
                      default_cls=2, companions=(3, -1, 0, 0))


def test_empty_link_gives_defaults(space):
    for search in ("", "?", None):
        state, notices = parse_state(search, space)
        assert notices == []
        assert state == State(2, (0, 2), LAYERS[:3], "target", "most", ())
    assert default_state(space) == state


def test_round_trip_keeps_every_key(space):
    state = State(0, (0, 1, 3), ("features.3", "features.6"), "source", "least",
                  (("features.3", 12), ("classifier.1", 4)))
    search = to_search(state, space)
    assert search.startswith("?class=bike&")
    assert "classes=bike,phone,a%2Cb" in search  # the comma inside a name is escaped, the separators are not
    assert "layers=features.3,features.6" in search
    assert "neurons=features.3:12,classifier.1:4" in search
    parsed, notices = parse_state(search, space)
    assert notices == []
    assert parsed == state


def test_round_trip_without_names_uses_indices(space):
    state = State(1, (1,), LAYERS[1:3], "target", "most", ())
    search = to_search(state)
    assert "class=1" in search and "neurons" not in search
    assert parse_state(search, space) == (state, [])


def test_class_by_name_before_index():
    sp = StateSpace(classes=("1", "0"), layers=LAYERS, neuron_counts=COUNTS)
    state, notices = parse_state("?class=1", sp)
    assert notices == [] and state.cls == 0  # the class *named* "1" is index 0


@pytest.mark.parametrize("search, fragment", [
    ("?class=zebra", "Unknown class 'zebra'"),
    ("?class=99", "Unknown class '99'"),
    ("?class=bike,mug", "Unknown class"),
    ("?classes=bike,zebra", "Unknown class(es) 'zebra'"),
    ("?layers=features.0,conv9", "Unknown layer(s) 'conv9'"),
    ("?layers=features.0,features.6", "not consecutive"),
    ("?layers=", "names no layers"),
    ("?model=teacher", "Unknown model 'teacher'"),
    ("?order=random", "Unknown order 'random'"),
    ("?neurons=features.3:32", "out of range"),
    ("?neurons=features.3:-1", "Malformed or unknown neuron"),
    ("?neurons=conv9:1", "Malformed or unknown neuron"),
    ("?neurons=features.3", "Malformed or unknown neuron"),
    ("?colour=red", "Ignored unknown link parameter(s): 'colour'"),
])
def test_bad_values_fall_back_with_a_notice(space, search, fragment):
    state, notices = parse_state(search, space)
    assert len(notices) == 1 and fragment in notices[0], notices
    # only the bad key fell back; everything else is the default
    assert state == default_state(space)


def test_good_keys_survive_beside_bad_ones(space):
    state, notices = parse_state("?class=phone&model=teacher&order=least&layers=nope", space)
    assert state.cls == 1 and state.order == "least"
    assert state.model == "target" and state.layers == LAYERS[:3]
    assert len(notices) == 2


def test_garbage_never_raises(space):
    for search in ("?&&=&class", "?class=%ZZ", "?neurons=::,:", "?classes=,", "?layers=,,", "%%%", "?=x"):
        state, notices = parse_state(search, space)
        assert isinstance(state, State)
        assert all(isinstance(n, str) for n in notices)


def test_selected_class_sets_its_instance_classes_and_resets_neurons(space):
    state = State(2, (0, 2), LAYERS[:3], "target", "most", (("features.3", 1),))
    new = with_changes(state, space, cls=1)
    assert new.cls == 1 and new.classes == (1,)  # class 1 has no frequent confusion
    assert new.neurons == ()  # the ranking list of another class: back to the top five
    assert with_changes(state, space, cls=0).classes == (0, 3)
    assert with_changes(state, space, model="source").neurons == ()
    kept = with_changes(state, space, layers=["features.3", "features.6"])
    assert kept.neurons == state.neurons and kept.layers == ("features.3", "features.6")
    with pytest.raises(TypeError):
        with_changes(state, space, colour="red")


def test_update_search_keeps_other_keys(space):
    search = "?class=mug&classes=mug&layers=features.3,features.6&model=source&order=least"
    out = update_search(search, space, layers=("features.6", "features.8"))
    state, notices = parse_state(out, space)
    assert notices == []
    assert state == State(2, (2,), ("features.6", "features.8"), "source", "least", ())


def test_state_space_from_cache(tiny_cache):
    sp = StateSpace.from_cache(tiny_cache)
    assert sp.classes == tuple(tiny_cache.classes) and sp.layers == tuple(tiny_cache.layers)
    assert sp.neuron_counts[tiny_cache.layers[0]] > 0
    table = tiny_cache.table("analysis/class_table.parquet")
    assert table.loc[table.class_index == sp.default_cls, "diff"].item() == table["diff"].max()
    state, notices = parse_state("", tiny_cache)
    assert notices == [] and state.cls == sp.default_cls and sp.default_cls in state.classes
    assert state.layers == tuple(tiny_cache.layers[:3])


def test_more_layers_than_the_view_draws_keeps_the_first_with_a_notice(space):
    """Issue 16 item 6: a link naming more layers than the network view draws (MAX_LAYERS) used
    to show fewer with no notice; now the notice says how many were dropped and the limit."""
    from dashboard.urlstate import MAX_LAYERS

    assert len(LAYERS) == MAX_LAYERS + 1
    state, notices = parse_state("?layers=" + ",".join(LAYERS), space)
    assert state.layers == LAYERS[:MAX_LAYERS]
    assert len(notices) == 1, notices
    assert f"names {len(LAYERS)} layers" in notices[0] and f"at most {MAX_LAYERS}" in notices[0]
    assert "dropped 1 (classifier.1)" in notices[0]
    # exactly MAX_LAYERS: no notice; the cleaned link parses without one
    assert parse_state("?layers=" + ",".join(LAYERS[:MAX_LAYERS]), space)[1] == []
    assert parse_state(to_search(state, space), space) == (state, [])
