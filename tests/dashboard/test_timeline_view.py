"""Fine-tuning timeline view (issue 6, item 7): figure builders and pure callbacks on the tiny cache.

Every check recomputes the expected values from the cache's own arrays and tables.
"""

from __future__ import annotations

import base64
import json

import numpy as np
import plotly.graph_objects as go
import pytest
from dash import Patch

from callbacks import timeline as ct
from dashboard.pool import POOL_SIZE
from dashboard.theme import is_empty_figure
from dashboard.views.timeline import data as tv_data
from dashboard.views.timeline import figures as tv_figs
from dashboard.views.timeline import markup as tv_markup
from layouts import timeline as tl
from tests.components import find, traces
from tests.conftest import copy_cache

# --- helpers ------------------------------------------------------------------------------

def arr(v) -> np.ndarray:
    """Plain list, numpy array or plotly.js typed-array spec -> numpy array."""
    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
    return np.asarray(v if v is not None else [])


def fig_dict(fig) -> dict:
    return json.loads(fig.to_json())


def apply_patch(fig: dict, patch: Patch) -> dict:
    """Applies a Patch's Assign operations the way dash-renderer does."""
    ops = json.loads(json.dumps(patch.to_plotly_json()["operations"], default=lambda o: o.tolist()))
    for op in ops:
        assert op["operation"] == "Assign", op
        node = fig
        *parents, leaf = op["location"]
        for p in parents:
            node = node.setdefault(p, {}) if isinstance(node, dict) else node[p]
        node[leaf] = op["params"]["value"]
    return fig


@pytest.fixture(scope="module")
def td(tiny_cache):
    data = tv_data.timeline_data(tiny_cache)
    assert data is not None, "the tiny build keeps per-epoch weights, so it has a timeline"
    return data


@pytest.fixture(scope="module")
def arrays(tiny_cache):
    df = tiny_cache.instances
    return {
        "epochs": [int(e) for e in tiny_cache.timeline_epochs()],
        "pos": np.asarray(tiny_cache.timeline_positions()),
        "pred": np.asarray(tiny_cache.timeline_pred()),
        "flips": np.asarray(tiny_cache.timeline_flips()),
        "labels": df["label"].to_numpy(),
        "domains": df["domain"].to_numpy().astype(str),
    }


# --- the map --------------------------------------------------------------------------------

def test_map_points_sit_at_the_cache_positions_of_the_epoch(td, arrays):
    n = arrays["pos"].shape[1]
    assert len(arrays["epochs"]) >= 2
    for i, e in enumerate(arrays["epochs"]):
        fig = fig_dict(tv_figs.map_figure(td, i, "both", []))
        seen = []
        for t in traces(fig, "instances"):
            ids = np.asarray(t["customdata"], dtype=int)
            assert isinstance(t["customdata"], list)  # plain list: dcc.Graph copies it into clickData
            np.testing.assert_array_equal(arr(t["x"]), arrays["pos"][i, ids, 0])
            np.testing.assert_array_equal(arr(t["y"]), arrays["pos"][i, ids, 1])
            assert (arrays["labels"][ids] == t["meta"]["label"]).all()
            assert (arrays["domains"][ids] == t["meta"]["domain"]).all()
            # mispredicted at this epoch <=> a border
            wrong = arrays["pred"][i, ids] != arrays["labels"][ids]
            np.testing.assert_array_equal(arr(t["marker"]["line"]["width"]) > 0, wrong)
            seen.extend(ids.tolist())
        assert sorted(seen) == list(range(n)), "every instance drawn exactly once"
        # fixed axes: the same ranges at every epoch, covering every epoch's positions
        xr, yr = fig["layout"]["xaxis"]["range"], fig["layout"]["yaxis"]["range"]
        assert xr[0] <= arrays["pos"][..., 0].min() and xr[1] >= arrays["pos"][..., 0].max()
        assert yr[0] <= arrays["pos"][..., 1].min() and yr[1] >= arrays["pos"][..., 1].max()
        assert fig["layout"]["xaxis"]["autorange"] is False


def test_an_unchanged_instance_keeps_its_place_and_the_axes_stay_fixed():
    from dashboard.views.timeline.data import MapGroup, map_ranges
    from dashboard.views.timeline.figures import map_epoch_fields, timeline_map

    rng = np.random.default_rng(0)
    pos = rng.normal(size=(4, 6, 2)).astype(np.float32)
    pos[:, 2] = pos[-1, 2]  # instance 2's embedding never changes
    hov = np.array(["0 0 0 0"] * 3, dtype=object)
    groups = [MapGroup(0, "source", np.array([0, 1, 2]), hov), MapGroup(1, "target", np.array([3, 4, 5]), hov)]
    ranges = map_ranges(pos)
    spots, axes = set(), set()
    for e in range(4):
        fields = map_epoch_fields(pos[e], np.zeros(6, bool), np.zeros(6, bool), groups, "both", [], 2)
        fig = fig_dict(timeline_map(fields, groups, {0: "#111", 1: "#222"}, {0: "a", 1: "b"}, ranges))
        t = traces(fig, "instances")[0]
        spots.add((float(arr(t["x"])[2]), float(arr(t["y"])[2])))
        axes.add((tuple(fig["layout"]["xaxis"]["range"]), tuple(fig["layout"]["yaxis"]["range"])))
        np.testing.assert_array_equal(arr(traces(fig, "instances")[1]["x"]), pos[e, 3:, 0])
    assert spots == {(float(pos[0, 2, 0]), float(pos[0, 2, 1]))}
    assert len(axes) == 1


@pytest.mark.parametrize("domain", ["both", "source", "target"])
def test_flip_rings_are_the_flips_of_the_epoch(td, arrays, domain):
    for i, e in enumerate(arrays["epochs"]):
        flipped = arrays["flips"][i].copy()
        if domain != "both":
            flipped &= arrays["domains"] == domain
        rows = np.flatnonzero(flipped)
        fig = fig_dict(tv_figs.map_figure(td, i, domain, []))
        (ring,) = traces(fig, "flips")
        np.testing.assert_array_equal(arr(ring["x"]), arrays["pos"][i, rows, 0])
        np.testing.assert_array_equal(arr(ring["y"]), arrays["pos"][i, rows, 1])
        # the other domain's instance traces are hidden, not removed (the trace layout is fixed)
        for t in traces(fig, "instances"):
            assert t["visible"] is (domain in ("both", t["meta"]["domain"]))
        text = str(tv_markup.summary(td, i, domain))
        if i > 0:
            assert f"{len(rows)} prediction" in text and f"flipped at epoch {e}" in text
            n_s = int((arrays["flips"][i] & (arrays["domains"] == "source")).sum())
            assert f"{n_s} source" in text


def test_trails_follow_the_pool_instances_over_epochs(td, arrays):
    n = arrays["pos"].shape[1]
    pool = [3, n - 1, n + 7]  # the last id is unknown: no trail, no error
    last = len(arrays["epochs"]) - 1
    for i in range(last + 1):
        fig = fig_dict(tv_figs.map_figure(td, i, "target", pool))
        slots = traces(fig, "trail")
        assert len(slots) == POOL_SIZE
        for slot, inst in zip(slots, [3, n - 1]):
            np.testing.assert_allclose(slot["x"], arrays["pos"][:i + 1, inst, 0], rtol=1e-6)
            np.testing.assert_allclose(slot["y"], arrays["pos"][:i + 1, inst, 1], rtol=1e-6)
            assert slot["customdata"] == [inst] * (i + 1)
            assert slot["text"][-1] == f"#{inst}"
            assert slot["marker"]["size"][-1] > slot["marker"]["size"][0] or i == 0
        for slot in slots[2:]:
            assert slot["x"] == []


def test_scrubbing_patches_give_the_figure_built_from_scratch(tiny_cache, td, arrays):
    pool = [5, 1]
    first = ct.scrub(tiny_cache, arrays["epochs"][0], "both", pool, "target", [], set())
    base = fig_dict(first[0])
    for i, e in enumerate(arrays["epochs"]):
        for domain in ("both", "source"):
            map_out, acc_out, drift_out, _ = ct.scrub(tiny_cache, e, domain, pool, "target", [], {tl.SLIDER})
            assert isinstance(map_out, Patch) and isinstance(acc_out, Patch) and isinstance(drift_out, Patch)
            patched = apply_patch(json.loads(json.dumps(base)), map_out)
            fresh = fig_dict(tv_figs.map_figure(td, i, domain, pool))
            assert len(patched["data"]) == len(fresh["data"])
            for a, b in zip(patched["data"], fresh["data"]):
                for key in ("x", "y", "customdata", "text", "visible"):
                    if key in b:
                        np.testing.assert_array_equal(arr(a.get(key)), arr(b[key]), err_msg=key)
                if "line" in b.get("marker", {}) and "width" in b["marker"]["line"]:
                    np.testing.assert_array_equal(arr(a["marker"]["line"]["width"]), arr(b["marker"]["line"]["width"]))
            acc = apply_patch(fig_dict(first[1]), acc_out)
            assert acc["layout"]["shapes"][0]["x0"] == acc["layout"]["shapes"][0]["x1"] == e
            drift = apply_patch(fig_dict(first[2]), drift_out)
            assert drift["layout"]["shapes"][0]["x0"] == pytest.approx(i - 0.5)


def test_scrub_redraws_only_what_a_control_changed(tiny_cache, arrays):
    e = arrays["epochs"][-1]
    m, acc, drift, _ = ct.scrub(tiny_cache, e, "both", [], "source", ["val"], {tl.ACC_DOMAIN})
    assert isinstance(m, Patch) and drift is ct.NO
    assert not isinstance(acc, Patch) and "source" in acc.layout.title.text
    m, acc, drift, _ = ct.scrub(tiny_cache, e, "target", [2], "target", [], {ct.ids.POOL})
    assert isinstance(m, Patch) and acc is ct.NO and drift is ct.NO


def test_whole_figures_wait_for_the_tab_and_patches_wait_for_the_figures(tiny_cache, arrays):
    ids = ct.ids
    e = arrays["epochs"][-1]
    args = (e, "both", [1], "target", [])
    # the page opens on another tab: nothing is sent
    assert ct.timeline_update(tiny_cache, set(), ids.TAB_ANALYSIS, False, *args) == (ct.NO,) * 5
    # the tab opens: whole figures and the flag
    out = ct.timeline_update(tiny_cache, {ids.TABS}, ids.TAB_TIMELINE, False, *args)
    assert all(isinstance(f, go.Figure) for f in out[:3]) and out[4] is True
    # a pool change before those figures arrived (the flag is still False): whole figures again,
    # never a patch onto the placeholder
    out = ct.timeline_update(tiny_cache, {ids.POOL}, ids.TAB_TIMELINE, False, *args)
    assert isinstance(out[0], go.Figure) and out[4] is True
    # once drawn: a step answers patches, a tab switch nothing
    out = ct.timeline_update(tiny_cache, {tl.SLIDER}, ids.TAB_TIMELINE, True, *args)
    assert isinstance(out[0], Patch) and out[4] is ct.NO
    assert ct.timeline_update(tiny_cache, {ids.TABS}, ids.TAB_TIMELINE, True, *args) == (ct.NO,) * 5


def test_a_step_moves_no_epoch_marker_onto_an_empty_chart(tiny_cache, td, arrays, monkeypatch):
    from dataclasses import replace

    bare = replace(td, accuracy=None, drift=None)
    monkeypatch.setattr(ct, "timeline_data", lambda cache: bare)
    e = arrays["epochs"][-1]
    first = ct.scrub(tiny_cache, arrays["epochs"][0], "both", [], "target", [], set())
    assert not first[1].layout.shapes and not first[2].layout.shapes  # the empty states
    m, acc, drift, _ = ct.scrub(tiny_cache, e, "both", [], "target", [], {tl.SLIDER})
    assert isinstance(m, Patch) and acc is ct.NO and drift is ct.NO


def test_epoch_index_snaps_to_a_kept_epoch():
    epochs = [0, 2, 5]
    assert [tv_data.epoch_index(v, epochs) for v in (0, 1.4, 2, 4, 5, 99, -3)] == [0, 1, 1, 2, 2, 2, 0]
    assert tv_data.epoch_index(None, epochs) == 0 and tv_data.epoch_index("x", epochs) == 0


# --- the charts -----------------------------------------------------------------------------

@pytest.mark.parametrize("domain,val_only", [("target", False), ("source", False), ("target", True)])
def test_accuracy_lines_are_the_table(tiny_cache, td, domain, val_only):
    table = tiny_cache.timeline_accuracy()
    col = "val_accuracy" if val_only else "accuracy"
    fig = fig_dict(tv_figs.accuracy_chart(td.accuracy, domain, val_only, td.class_colors, td.class_names, 1))
    sub = table[table["domain"] == domain]
    lines = traces(fig, "class")
    assert sorted(t["meta"]["label"] for t in lines) == sorted(sub["class_index"].unique().tolist())
    for t in lines:
        rows = sub[sub["class_index"] == t["meta"]["label"]].sort_values("epoch")
        assert t["x"] == rows["epoch"].tolist()
        want = rows[col].to_numpy(dtype=float)
        got = np.array([np.nan if v is None else v for v in t["y"]], dtype=float)
        np.testing.assert_allclose(got, want, equal_nan=True)
        assert t["line"]["color"] == td.class_colors[t["meta"]["label"]]
    (mean,) = traces(fig, "mean")
    np.testing.assert_allclose(np.array(mean["y"], dtype=float),
                               sub.groupby("epoch")[col].mean().sort_index().to_numpy(dtype=float))
    assert fig["layout"]["shapes"][0]["x0"] == 1


def test_drift_heatmap_is_the_table(tiny_cache, td):
    drift = tiny_cache.timeline_drift()
    epochs = [int(e) for e in tiny_cache.timeline_epochs()]
    fig = fig_dict(tv_figs.drift_heatmap(td.drift, td.layers, epochs, 1))
    z = np.array(fig["data"][0]["z"], dtype=float)
    assert z.shape == (len(tiny_cache.layers), len(epochs))
    for r in drift.itertuples():
        assert z[tiny_cache.layers.index(r.layer), epochs.index(int(r.epoch))] == pytest.approx(r.mean_cos)
    # short tags on the rows, the full module path in the hover
    assert fig["data"][0]["y"] == [f"L{i + 1}" for i in range(len(tiny_cache.layers))]
    assert [row[0][2] for row in fig["data"][0]["customdata"]] == list(tiny_cache.layers)
    assert "%{customdata[2]}" in fig["data"][0]["hovertemplate"]
    assert (z[:, 0] == pytest.approx(1.0))  # epoch 0 is the source model itself
    shape = fig["layout"]["shapes"][0]
    assert (shape["x0"], shape["x1"]) == (0.5, 1.5)


def test_empty_tables_give_messages():
    assert is_empty_figure(tv_figs.accuracy_chart(None, "target", False, {}, {}, 0))
    assert is_empty_figure(tv_figs.drift_heatmap(None, ["a"], [0, 1], 0))


# --- playback, clicks, layout -------------------------------------------------------------------

def test_playback_steps_stops_at_the_end_and_pauses():
    epochs = [0, 2, 5]
    PLAY, TICK = tl.PLAY, tl.INTERVAL
    assert ct.playback(PLAY, 0, False, epochs) == (0, True)  # play starts from where the slider is
    assert ct.playback(TICK, 0, True, epochs) == (2, True)  # a tick: the next kept epoch
    assert ct.playback(TICK, 2, True, epochs) == (5, False)  # reaching the last epoch stops playback
    assert ct.playback(TICK, 5, False, epochs) == (5, False)  # a late tick while stopped: nothing
    assert ct.playback(PLAY, 5, False, epochs) == (0, True)  # play at the end restarts
    assert ct.playback(PLAY, 2, True, epochs) == (2, False)  # pause keeps the epoch
    assert ct.playback(TICK, 2, False, epochs) == (2, False)  # paused: ticks do nothing
    assert ct.playback(TICK, 1.6, True, epochs) == (5, False)  # off-grid value snaps (to 2) then steps
    assert ct.playback(PLAY, 0, False, []) == (0, False)


def test_a_click_adds_the_instance_to_the_pool_and_focuses_it():
    click = {"points": [{"curveNumber": 0, "pointNumber": 4, "customdata": 7}]}
    assert ct.click_to_pool(click, [3, 7, 9], 100) == ([3, 9, 7], 7)
    assert ct.click_to_pool(click, None, 100) == ([7], 7)
    assert ct.click_to_pool({"points": [{"curveNumber": 0}]}, [1], 100) == (ct.NO, ct.NO)
    assert ct.click_to_pool(click, [1], 5) == (ct.NO, ct.NO)  # id beyond the cache: ignored
    full = list(range(POOL_SIZE))
    pool, _ = ct.click_to_pool({"points": [{"customdata": 99}]}, full, 100)
    assert pool == full[1:] + [99]


def test_layout_has_a_mark_per_epoch_and_starts_paused_at_the_source_model(tiny_cache, arrays):
    lay = tl.layout(tiny_cache)
    slider = find(lay, tl.SLIDER)
    assert sorted(slider.marks) == arrays["epochs"] and slider.value == arrays["epochs"][0]
    assert find(lay, tl.INTERVAL).disabled is True
    assert "source model" in str(lay)


def test_a_cache_without_timeline_shows_a_message(tiny_cache, tmp_path):
    from transferviz.cache import Cache

    root = copy_cache(tiny_cache, tmp_path / "no-timeline", "timeline").root  # without analysis/timeline/
    mf = json.loads((root / "manifest.json").read_text())
    mf["artifacts"] = {k: v for k, v in mf["artifacts"].items() if not k.startswith("analysis/timeline/")}
    (root / "manifest.json").write_text(json.dumps(mf))
    cache = Cache.open(root)
    assert tv_data.timeline_data(cache) is None
    assert "no fine-tuning timeline" in str(tl.layout(cache))
    m, acc, drift, text = ct.scrub(cache, 3, "both", [1], "target", [], set())
    assert is_empty_figure(m) and is_empty_figure(acc) and is_empty_figure(drift)
    assert "no fine-tuning timeline" in text


# --- issue 16, item 6: keyboard slider, rings toggle, highlighted class -------------------------

def test_the_epoch_slider_steps_one_kept_epoch_per_arrow_key(tiny_cache, arrays):
    """``step=None`` made dash 4's slider step by a hundredth of its range and snap back to the same
    mark: the arrow keys did nothing. The step is now the gap between kept epochs."""
    slider = find(tl.layout(tiny_cache), tl.SLIDER)
    epochs = arrays["epochs"]
    assert slider.step is not None and slider.step == tl.epoch_step(epochs)
    assert all((e - epochs[0]) % slider.step == 0 for e in epochs)  # every mark is a stop
    assert slider.min == epochs[0] and slider.max == epochs[-1]
    assert "arrow keys" in str(tl.layout(tiny_cache))
    assert tl.epoch_step([0, 1, 2, 3]) == 1
    assert tl.epoch_step([0, 2, 4, 6]) == 2
    assert tl.epoch_step([0, 5, 10]) == 5
    assert tl.epoch_step([0, 1, 2, 5]) == 1  # uneven gaps: stops between marks snap to the nearest kept epoch
    assert tl.epoch_step([3]) == 1 and tl.epoch_step([]) == 1


def _epoch_with_flips(arrays) -> int:
    counts = arrays["flips"].sum(axis=1)
    assert counts[1:].any(), "the tiny build flips some predictions"
    return int(np.flatnonzero(counts)[-1])


def test_flip_rings_are_a_toggle_that_keeps_the_map_structure_and_the_count(tiny_cache, td, arrays):
    i = _epoch_with_flips(arrays)
    e, k = arrays["epochs"][i], int(arrays["flips"][i].sum())
    lay = tl.layout(tiny_cache)
    assert find(lay, tl.RINGS).value == [tl.RINGS_ON]  # on by default, as before
    on = fig_dict(tv_figs.map_figure(td, i, "both", [2]))
    off = fig_dict(tv_figs.map_figure(td, i, "both", [2], show_flips=False))
    assert len(on["data"]) == len(off["data"])  # the trace structure is fixed
    assert [t.get("meta") for t in on["data"]] == [t.get("meta") for t in off["data"]]
    assert len(arr(traces(on, "flips")[0]["x"])) == k
    assert len(arr(traces(off, "flips")[0]["x"])) == 0
    # scrubbing with the toggle off: the patched figure is the one built with rings off
    base = fig_dict(ct.scrub(tiny_cache, arrays["epochs"][0], "both", [2], "target", [], set())[0])
    m, acc, drift, text = ct.scrub(tiny_cache, e, "both", [2], "target", [], {tl.RINGS}, [])
    assert isinstance(m, Patch) and acc is ct.NO and drift is ct.NO
    patched = apply_patch(base, m)
    assert len(arr(traces(patched, "flips")[0]["x"])) == 0
    assert f"{k} prediction" in str(text) and "rings hidden" in str(text)
    _, _, _, text = ct.scrub(tiny_cache, e, "both", [2], "target", [], {tl.RINGS}, [tl.RINGS_ON])
    assert f"{k} prediction" in str(text) and "ringed on the map" in str(text)
    assert ct.show_rings(None) and ct.show_rings([tl.RINGS_ON]) and not ct.show_rings([])
    first = ct.timeline_update(tiny_cache, set(), ct.ids.TAB_TIMELINE, False, e, "both", [], "target", [], [])
    assert len(arr(traces(fig_dict(first[0]), "flips")[0]["x"])) == 0


def test_the_selected_class_is_bold_in_the_accuracy_chart_and_the_others_faded(tiny_cache, td, arrays):
    labels = sorted(td.accuracy.loc[td.accuracy["domain"] == "target", "class_index"].unique().tolist())
    c = int(labels[1])
    fig = fig_dict(tv_figs.accuracy_chart(td.accuracy, "target", False, td.class_colors, td.class_names, 1,
                                          highlight=c))
    lines = traces(fig, "class")
    assert sorted(t["meta"]["label"] for t in lines) == labels
    (bold,) = [t for t in lines if t["meta"]["label"] == c]
    assert bold["line"]["width"] == tv_figs.HIGHLIGHT_WIDTH and bold.get("opacity", 1) == 1
    assert lines[-1] is bold  # drawn above the others
    assert all(t["opacity"] == tv_figs.FADED_OPACITY and t["line"]["width"] < tv_figs.HIGHLIGHT_WIDTH
               for t in lines if t is not bold)
    assert td.class_names[c] in fig["layout"]["title"]["text"]
    assert all(t["customdata"] == [t["meta"]["label"]] * len(t["x"]) for t in lines)
    for nothing in (None, 10 ** 6, "x", True, 1.5):
        plain = traces(fig_dict(tv_figs.accuracy_chart(td.accuracy, "target", False, td.class_colors,
                                                       td.class_names, 1, highlight=nothing)), "class")
        assert all(t.get("opacity", 1) == 1 and t["line"]["width"] == 1.5 for t in plain)
    # a class selected elsewhere redraws only the accuracy chart
    e = arrays["epochs"][-1]
    m, acc, drift, text = ct.scrub(tiny_cache, e, "both", [], "target", [], {ct.ids.SELECTED_CLASS}, None, c)
    assert m is ct.NO and drift is ct.NO and text is ct.NO
    assert [t for t in traces(fig_dict(acc), "class") if t["meta"]["highlighted"]][0]["meta"]["label"] == c
    # a click on a line selects its class; the mean line (no customdata) selects nothing
    n = len(tiny_cache.classes)
    assert ct.class_from_accuracy_click({"points": [{"customdata": c, "x": 1}]}, n) == c
    for bad in (None, {}, {"points": [{"x": 1}]}, {"points": [{"customdata": n}]}, {"points": [{"customdata": True}]}):
        assert ct.class_from_accuracy_click(bad, n) is ct.NO


def test_timeline_wiring_reads_the_rings_and_the_selected_class(tiny_app):
    cbs = tiny_app._callback_list
    scrub = next(c for c in cbs if f"{tl.MAP}.figure" in c["output"])
    inputs = {(i["id"], i["property"]) for i in scrub["inputs"]}
    assert {(tl.RINGS, "value"), (ct.ids.SELECTED_CLASS, "data")} <= inputs
    pick = [c for c in cbs if f"{ct.ids.SELECTED_CLASS}.data@" in c["output"]
            and [(i["id"], i["property"]) for i in c["inputs"]] == [(tl.ACCURACY, "clickData")]]
    assert len(pick) == 1 and pick[0]["prevent_initial_call"]
