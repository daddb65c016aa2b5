"""The page's find box (issue 16, item 7): an id focuses and rings one instance, a class name rings its
instances in every map, anything else says what the box takes; the hard-example maps patch only their rings."""

from __future__ import annotations

import dash
import numpy as np

import callbacks.hard_examples as hard_cb
from dashboard.highlight import highlight_ids, highlight_trace
from dashboard.lookups import FIND_MAX_IDS, find_instances
from dashboard.views.hard_examples.figures import HIGHLIGHT_TRACE, loss_maps
from layouts import ids


def test_an_id_focuses_and_rings_it(tiny_cache):
    found = find_instances(tiny_cache, " #12 ")
    assert (found.focus, found.ids) == (12, [12])
    assert found.message.startswith("#12: " + tiny_cache.classes[int(tiny_cache.instances.label[12])])
    assert find_instances(tiny_cache, "3").message.endswith("(class '3': type class:3)")


def test_a_class_name_rings_its_instances_any_case(tiny_cache):
    name = tiny_cache.classes[3]  # the digits' classes are named like numbers: "class:" says which is meant
    found = find_instances(tiny_cache, f"Class: {name.upper()}")
    want = tiny_cache.instances.loc[tiny_cache.instances.label == 3, "id"].tolist()
    assert found.focus is None and found.ids == want and len(want) > 0
    assert f"class {name!r}: " in found.message and "instances ringed" in found.message


def test_unknown_text_and_out_of_range_ids_say_what_the_box_takes(tiny_cache):
    n = len(tiny_cache.instances)
    assert find_instances(tiny_cache, str(n)).message == f"No instance #{n}: ids run 0-{n - 1}."
    bad = find_instances(tiny_cache, "class:zebra")
    assert (bad.focus, bad.ids) == (None, None) and bad.message.startswith("No instance id or class named 'zebra'")
    assert find_instances(tiny_cache, "  ") == find_instances(tiny_cache, None)
    assert find_instances(tiny_cache, "").message == ""


def test_a_huge_class_rings_at_most_the_cap():
    assert FIND_MAX_IDS >= 1000  # a real class of Office-31 (~100 images) is always ringed whole


def test_highlight_ids_tolerates_anything():
    assert highlight_ids(None).tolist() == [] and highlight_ids("x").tolist() == []
    assert highlight_ids([3, "1", 3]).tolist() == [1, 3] and highlight_ids(["a"]).tolist() == []


def test_highlight_trace_shape():
    tr = highlight_trace(np.array([4, 5]), np.array([0.0, 1.0]), np.array([2.0, 3.0]))
    assert tr["meta"] == {"role": "highlight", "count": 2} and tr["customdata"] == [4, 5]
    assert highlight_trace([], [], [])["meta"]["count"] == 0


def test_hard_maps_ring_the_found_instances_whatever_the_filters(tiny_cache):
    target_ids = tiny_cache.instances.loc[tiny_cache.instances.domain == "target", "id"].tolist()[:3]
    figs = loss_maps(tiny_cache, "target", "source", [], None, None, highlight=target_ids)
    for key, xy in (("hidden", tiny_cache.tsne()), ("pixels", tiny_cache.pixel_tsne())):
        ring = figs[key].data[HIGHLIGHT_TRACE]
        assert list(ring.customdata) == sorted(target_ids)
        np.testing.assert_allclose(ring.x, xy[sorted(target_ids), 0], rtol=1e-6)
    assert len(loss_maps(tiny_cache, "target", "both", [], None, None)["hidden"].data[HIGHLIGHT_TRACE].x) == 0


def test_a_find_patches_only_the_rings(tiny_cache):
    out = hard_cb.maps_update(tiny_cache, {ids.HIGHLIGHT}, ids.TAB_DIAGNOSIS, True, "target", "both", [], None,
                              None, [1, 2])
    assert out[2:] == (dash.no_update, dash.no_update)
    for patch in out[:2]:
        ops = {tuple(op["location"]): op["params"]["value"] for op in patch.to_plotly_json()["operations"]}
        assert list(ops) == [("data", HIGHLIGHT_TRACE)] and ops[("data", HIGHLIGHT_TRACE)]["customdata"] == [1, 2]
    both = hard_cb.maps_update(tiny_cache, {ids.HIGHLIGHT, ids.FOCUS}, ids.TAB_DIAGNOSIS, True, "target", "both",
                               [], 7, None, [7])
    ops = [tuple(op["location"]) for op in both[0].to_plotly_json()["operations"]]
    assert ("data", HIGHLIGHT_TRACE) in ops and ("layout", "annotations", 0) in ops


def test_the_find_callback_through_dash(tiny_app, tiny_cache):
    from tests.conftest import dispatch

    (cb,) = [c for c in tiny_app._callback_list if f"{ids.FIND_MESSAGE}.children" in c["output"]]
    outputs = [{"id": i, "property": p} for i, p in ((ids.FOCUS, "data"), (ids.HIGHLIGHT, "data"),
                                                      (ids.FIND_MESSAGE, "children"))]
    out = dispatch(tiny_app, cb["output"], outputs, [{"id": ids.FIND, "property": "value", "value": "5"}],
                   [f"{ids.FIND}.value"])
    resp = out["response"]
    assert resp[ids.FOCUS]["data"] == 5 and resp[ids.HIGHLIGHT]["data"] == [5]


def test_the_timeline_map_rings_the_found_instances(tiny_cache):
    import callbacks.timeline as tl_cb
    from dashboard.views.timeline.data import timeline_data

    td = timeline_data(tiny_cache)
    assert td is not None
    epoch = td.epochs[-1]
    fig = tl_cb.scrub(tiny_cache, epoch, "both", [], "target", [], set(), None, None, [3, 9])[0]
    (ring,) = [t for t in fig.data if (t.meta or {}).get("role") == "highlight"]
    assert list(ring.customdata) == [3, 9]
    np.testing.assert_allclose(ring.x, td.positions[-1][[3, 9], 0], rtol=1e-6)
    # a new find patches the ring trace alone and leaves the charts and the summary
    map_out, acc, drift, summary = tl_cb.scrub(tiny_cache, epoch, "both", [], "target", [], {ids.HIGHLIGHT},
                                               None, None, [4])
    ops = map_out.to_plotly_json()["operations"]
    assert {op["location"][1] for op in ops} == {list(fig.data).index(ring)}
    assert (acc, drift, summary) == (dash.no_update,) * 3
