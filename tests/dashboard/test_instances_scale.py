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


# --- issue 13, item 4: the maps at many instances (an inflated tiny cache: tools/inflate_cache.py) -----------

SCALE_N = 20_000  # above dashboard.sampling.MAX_POINTS, so every map samples; ~1 s to inflate the tiny cache


def _wire(fig) -> dict:
    """The figure as Dash sends it (its JSON encoder), parsed back."""
    import json

    from dash._utils import to_json

    return json.loads(to_json(fig))


def _typed(v) -> bool:
    """Whether a figure value travelled as plotly's base64 typed array, not a JSON list of numbers."""
    return isinstance(v, dict) and set(v) >= {"dtype", "bdata"}


def _n(v) -> int:
    """Points in a figure value from the wire: a typed array's length from its bytes, or a list's."""
    import base64

    if _typed(v):
        return len(base64.b64decode(v["bdata"])) // np.dtype(v["dtype"]).itemsize
    return len(v)


def _scale_figures(cache):
    from callbacks import hard_examples as cb_hard
    from dashboard.views.timeline.data import timeline_data
    from dashboard.views.timeline.figures import map_figure

    hidden, pixels, _ = cb_hard.update_maps(cache, "target", "both", [], None, None)
    inst = cb_inst.update_scatter(cache, list(range(len(cache.classes))))[0]
    td = timeline_data(cache)
    timeline = map_figure(td, len(td.epochs) - 1, "both", [])
    return {"hidden": hidden, "pixels": pixels, "instances": inst, "timeline": timeline}


def test_maps_send_typed_arrays_not_float_lists_at_scale(inflated_cache):
    cache = inflated_cache(SCALE_N)
    for name, fig in _scale_figures(cache).items():
        pts = [t for t in _wire(fig)["data"] if (t.get("meta") or {}).get("role") == "instances"
               or (name == "timeline" and t.get("legendgroup") is None and t.get("x") not in ([None], []))]
        pts = [t for t in pts if _n(t["x"])]
        assert pts, name
        for t in pts:
            assert _typed(t["x"]) and _typed(t["y"]), (name, type(t["x"]))
            assert t["x"]["dtype"] in ("f4", "f8")
        # WebGL: every trace with points
        assert {t["type"] for t in pts} == {"scattergl"}, name
    # the loss colours too (a float per point)
    colors = [t["marker"]["color"] for t in _wire(_scale_figures(cache)["hidden"])["data"]
              if (t.get("meta") or {}).get("role") == "instances"]
    assert all(_typed(c) for c in colors)


def test_maps_draw_a_stratified_sample_above_the_threshold_and_say_k_of_n(inflated_cache, tiny_cache):
    from dashboard.sampling import MAX_POINTS
    from dashboard.views.hard_examples import data as hard_data

    cache = inflated_cache(SCALE_N)
    figs = _scale_figures(cache)
    note = f"showing {MAX_POINTS:,} of {SCALE_N:,} instances"
    for name, fig in figs.items():
        texts_ = [a.text for a in fig.layout.annotations if a.text]
        assert any(note in t for t in texts_), (name, texts_)
    inst = figs["instances"]
    drawn = np.concatenate([np.asarray(t.customdata) for t in traces(inst, "instances")])
    assert len(drawn) == MAX_POINTS == len(set(drawn.tolist()))
    assert inst.layout.meta["drawn"] == MAX_POINTS and inst.layout.meta["total"] == SCALE_N
    # every class and domain keeps its share (largest remainders: within one point of it)
    df = cache.instances.set_index("id")
    full = df.groupby(["label", "domain"]).size()
    got = df.loc[drawn].groupby(["label", "domain"]).size()
    assert (np.abs(got - full * MAX_POINTS / SCALE_N) <= 1).all()
    # the loss maps: always the hardest tenth of the points, whatever the sample
    d = hard_data.hard_data(cache)
    hidden = np.concatenate([np.asarray(t.customdata) for t in traces(figs["hidden"], "instances")])
    assert len(hidden) == MAX_POINTS
    hardest = np.argsort(-d.loss["target"], kind="stable")[:MAX_POINTS // 10]
    assert np.isin(d.ids[hardest], hidden).mean() > 0.99  # ties at the cut may swap a few
    # below the threshold nothing is sampled and no note is shown
    small = cb_inst.update_scatter(tiny_cache, list(range(len(tiny_cache.classes))))[0]
    assert sum(len(t.x) for t in traces(small, "instances")) == len(tiny_cache.instances)
    assert not any("showing" in (a.text or "") for a in small.layout.annotations)


def test_stratified_sample_by_hand():
    from dashboard.sampling import sample_note, stratified_sample

    strata = np.array([0] * 6 + [1] * 3 + [2])
    priority = np.array([.9, .1, .5, .3, .7, .2, .6, .4, .8, .05])
    # places 5 of 10: quotas 3, 1.5, 0.5 -> 3, 2 (the remainder's tie goes to the larger stratum), 0;
    # the empty stratum takes one from the largest -> 2, 2, 1; the lowest priorities of each stratum
    got = stratified_sample(np.arange(10), strata, priority, 5)
    assert got.tolist() == [1, 5, 6, 7, 9]
    # "must" rows are always kept and count towards k
    got = stratified_sample(np.arange(10), strata, priority, 5, must=np.array([0]))
    assert 0 in got and len(got) == 5
    assert stratified_sample(np.arange(4), strata, priority, 5).tolist() == [0, 1, 2, 3]
    assert sample_note(5, 5) == "" and sample_note(5, 10).startswith("showing 5 of 10 instances")


def test_selection_tsne_iterations_are_bounded(monkeypatch):
    """Counts the optimisation's iterations (openTSNE's per-iteration callback), not time."""
    from openTSNE import TSNEEmbedding

    from transferviz.analysis.projection import (
        SELECTION_ITERATION_BUDGET,
        selection_iterations,
    )

    assert selection_iterations(480) == 100  # the demo's classes: the full refinement
    assert selection_iterations(5_000) == SELECTION_ITERATION_BUDGET // 5_000 == 50
    assert selection_iterations(10**6) == 10 and selection_iterations(3, n_iter=7) == 7
    counted: list[int] = []
    original = TSNEEmbedding.optimize

    def counting(self, n_iter, *args, **kwargs):
        def tick(iteration, error, embedding):
            counted.append(iteration)
        return original(self, n_iter, *args, callbacks=tick, callbacks_every_iters=1, **kwargs)

    monkeypatch.setattr(TSNEEmbedding, "optimize", counting)
    rng = np.random.default_rng(0)
    x, init = rng.normal(size=(1_200, 10)), rng.normal(size=(1_200, 2))
    # a budget of 24,000 point-iterations bounds a 1,200-point map to 20 iterations
    out = selection_map(x, init, 0, perplexity=30, n_iter=100, budget=24_000)
    assert out.shape == (1_200, 2) and np.isfinite(out).all()
    assert len(counted) == 20
