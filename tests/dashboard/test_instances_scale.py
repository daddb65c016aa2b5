"""Instance view with many classes (issue 16, item 4): the build's per-class maps, selections that
never run a t-SNE in the request, the class picker's search and all / none, at the paper's scale."""

from __future__ import annotations

import time

import numpy as np
import plotly.io as pio

import transferviz.analysis.projection as projection
from callbacks import instances as cb_inst
from dashboard.views.instances.data import match_classes, projection_frame
from layouts import instances as inst_layout
from tests.components import traces
from tests.conftest import dispatch
from transferviz.analysis.projection import CLASS_MAP_ITERATIONS, CLASS_MAPS, cached_class_maps, selection_map


def _forbid_tsne(monkeypatch):
    """Every way to run a t-SNE raises: a request that needs one fails the test."""
    import openTSNE
    import openTSNE.affinity

    def boom(*_a, **_k):
        raise AssertionError("a t-SNE ran in a request")

    for mod, name in ((projection, "selection_map"), (projection, "tsne_map"), (projection, "class_maps"),
                      (openTSNE, "TSNE"), (openTSNE, "TSNEEmbedding"), (openTSNE.affinity, "PerplexityBasedNN")):
        monkeypatch.setattr(mod, name, boom)


def test_the_build_writes_one_map_per_class(tiny_cache):
    maps = cached_class_maps(tiny_cache)
    assert maps is not None, ("this tiny cache predates the classmaps stage: unset TRANSFERVIZ_TEST_TINY_CACHE "
                              "(or point it at a fresh build)")
    assert tiny_cache.manifest["artifacts"][CLASS_MAPS]["path"] == CLASS_MAPS
    assert tiny_cache.stage_key("classmaps") is not None
    df = tiny_cache.instances
    assert maps.shape == (len(df), 2) and maps.dtype == np.float32 and np.isfinite(maps).all()
    cfg = tiny_cache.config
    feats, glob = np.asarray(tiny_cache.projection_features()), np.asarray(tiny_cache.tsne())
    for c in (0, len(tiny_cache.classes) - 1):
        ids = df.loc[df.label == c, "id"].to_numpy()
        # each class's rows are that class's own map (both domains), refined from its global positions
        expected = selection_map(feats[ids], glob[ids], int(cfg["seed"]),
                                 perplexity=float(cfg["analysis"]["tsne_perplexity"]), n_iter=CLASS_MAP_ITERATIONS)
        np.testing.assert_array_equal(maps[ids], expected)
        assert set(df.loc[ids, "domain"]) == {"source", "target"}
        frame = projection_frame(tiny_cache, [c])
        assert frame.attrs["map"] == "class"
        np.testing.assert_array_equal(frame[["x", "y"]].to_numpy(), maps[frame["id"].to_numpy()])


def test_selections_never_run_a_tsne(tiny_cache, monkeypatch):
    _forbid_tsne(monkeypatch)
    n = len(tiny_cache.classes)
    df = tiny_cache.instances
    for chosen in ([2], [2, 5], [0, 3, 7, 9], list(range(n))):
        fig = cb_inst.update_scatter(tiny_cache, chosen)[0]
        assert sum(len(t.x) for t in traces(fig, "instances")) == int(df.label.isin(chosen).sum())
    # several classes: the global map's coordinates (nothing computed, every instance keeps its place)
    frame = projection_frame(tiny_cache, [2, 5])
    assert frame.attrs["map"] == "global"
    np.testing.assert_array_equal(frame[["x", "y"]].to_numpy(), np.asarray(tiny_cache.tsne())[frame["id"]])


def test_31_class_selections_answer_under_a_second(large_cache, monkeypatch):
    big = large_cache
    _forbid_tsne(monkeypatch)
    n = len(big.classes)
    assert n == 31
    rng = np.random.default_rng(0)
    selections = [[int(c)] for c in range(0, n, 3)] + [sorted(rng.choice(n, k, replace=False).tolist())
                                                       for k in (2, 3, 5, 10, 20) for _ in range(3)]
    selections.append(list(range(n)))
    cb_inst.update_scatter(big, [0])  # first call pays the memory maps and the imports
    times, sizes = [], []
    for chosen in selections:
        t = time.perf_counter()
        fig = cb_inst.update_scatter(big, chosen)[0]
        body = pio.to_json(fig)  # what the callback sends, serialised as Dash does
        times.append(time.perf_counter() - t)
        sizes.append(len(body))
    assert float(np.percentile(times, 95)) < 1.0, times
    everything = cb_inst.update_scatter(big, list(range(n)))[0]
    pts = traces(everything, "instances")
    assert len({t.marker.color for t in pts}) == 31
    assert sum(len(t.x) for t in pts) == len(big.instances)
    # bytes per instance drawn: x, y, id and a border width each; well under a kilobyte
    assert max(sizes) / len(big.instances) < 200, max(sizes)


def test_picker_search_matches_names_by_any_term():
    names = ["back_pack", "bike", "bike_helmet", "desk_chair", "desk_lamp", "mobile_phone", "phone", "mug"]
    assert match_classes(names, "bike") == [1, 2]
    assert match_classes(names, "Desk Lamp") == [4]  # case, spaces and underscores alike
    assert match_classes(names, "bike, phone") == [1, 2, 5, 6]
    assert match_classes(names, "  ") == list(range(len(names)))
    assert match_classes(names, None) == list(range(len(names)))
    assert match_classes(names, "zebra") == []


def test_picker_filters_and_all_none_act_on_what_the_search_shows(tiny_cache):
    opts = inst_layout.class_options(tiny_cache)
    name = tiny_cache.classes[3]
    shown = cb_inst.picker_options(tiny_cache, opts, name)
    assert [o["value"] for o in shown] == match_classes(list(tiny_cache.classes), name) and 3 in [o["value"]
                                                                                              for o in shown]
    assert cb_inst.picker_options(tiny_cache, opts, "") == opts
    # "all" checks what the search shows and keeps the rest; "none" unchecks only what it shows
    assert cb_inst.check_shown(tiny_cache, name, [0, 5], True) == sorted({0, 5, *match_classes(tiny_cache.classes,
                                                                                                 name)})
    assert cb_inst.check_shown(tiny_cache, name, [0, 3], False) == [0]
    assert cb_inst.check_shown(tiny_cache, "", [0, 3], True) == list(range(len(tiny_cache.classes)))
    assert cb_inst.check_shown(tiny_cache, None, [0, 3], False) == []
    assert cb_inst.picker_status(tiny_cache, name, [0, 3]).startswith(f"2/{len(tiny_cache.classes)} checked")


def test_picker_search_wiring(tiny_app, tiny_cache):
    name = tiny_cache.classes[3]
    # a single output travels as one dict, not a list of one (as the browser sends it)
    output = {"id": inst_layout.CLASSES, "property": "options"}
    resp = dispatch(tiny_app, "inst-classes.options", output,  # type: ignore[arg-type]
                    [{"id": inst_layout.SEARCH, "property": "value", "value": name}], ["inst-class-search.value"])
    values = [o["value"] for o in resp["response"][inst_layout.CLASSES]["options"]]
    assert values == match_classes(list(tiny_cache.classes), name)


def test_picker_labels_are_cut_in_their_own_cell(tiny_cache):
    # the name is the only part of an option that may shrink: ellipsis, never wider than its cell
    for o in inst_layout.class_options(tiny_cache):
        swatch, name, source, target = o["label"].children
        assert name.style["minWidth"] == 0 and name.style["textOverflow"] == "ellipsis"
        assert name.style["whiteSpace"] == "nowrap" and name.style["overflow"] == "hidden"
        assert source.style["flex"].startswith("0 0") and target.style["flex"].startswith("0 0")
