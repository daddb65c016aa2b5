"""The feature view at the paper's scale (issue 16, items 1 and 3): 31 classes, two 4096-unit layers,
hundreds of important neurons a class (~938 on the Office-31-shaped benchmark), a handful of instances.

The ranking list answers a page of rows (20, then 40 after one "show more"), whatever the class's
number of neurons, with a bounded number of bytes; the biplot projects on the checked neurons only;
the status line warns that the classifier is saturated or has more inputs than instances.
"""

from __future__ import annotations

import json

import numpy as np
import plotly
import pytest
from dash import Patch, html, no_update

from callbacks import features as cf
from dashboard.urlstate import StateSpace
from dashboard.views.features import data as fd
from dashboard.views.features import figures as ff
from dashboard.views.features import markup as fm
from layouts import features as lf
from tests.components import of_type, texts, traces
from transferviz.analysis.discriminability import project_attributions

#: Bytes of one page of the ranking grid's rows (20 rows: label, u and their hovers, a feature visualization
#: URL, a histogram URL; ~0.8 KB a row): the 938-row list of before sent ~200 times this, and the page of
#: rows with inlined SVG histograms (the checklist's) ~4 times.
PAGE_BYTES = 30_000


def _bytes(value) -> int:
    return len(json.dumps(value, cls=plotly.utils.PlotlyJSONEncoder))


@pytest.fixture(scope="module")
def big(large_cache):
    """The large cache and its class with the most ranked neurons."""
    counts = {c: fd.ranked_count(large_cache, c, "target") for c in range(len(large_cache.classes))}
    c = max(counts, key=counts.get)
    return large_cache, c


def test_the_cache_is_at_the_papers_scale(big):
    cache, c = big
    assert len(cache.classes) == 31
    assert fd.ranked_count(cache, c, "target") >= 400  # hundreds of neurons against a dozen instances
    d = fd.discriminability(cache, "target", c)
    assert d.n_source + d.n_target < 40


def test_first_page_then_show_more(big):
    cache, c = big
    space = StateSpace.from_cache(cache)
    search = f"?class={cache.classes[c]}"
    out = cf.paged_controls(cache, space, set(), search, c, "target", "most", [], None)
    options, value, status, shown, more, style = out[3], out[4], out[5], out[6], out[7], out[8]
    total = fd.ranked_count(cache, c, "target")
    assert len(options) == fm.MAX_ROWS == 20 and shown == 20 and len(value) == fm.TOP_CHECKED
    assert more == f"show 20 more (20 of {total} listed)" and style == {}
    first = _bytes(options)
    assert first < PAGE_BYTES, first
    assert f"{total} important neurons (the 20 most discriminative listed)" in texts(status)
    # one "show more": 40 rows, the checks kept; only the 20 new rows travel (appended by a patch)
    out = cf.paged_controls(cache, space, {lf.MORE}, search, c, "target", "most", value, shown)
    assert isinstance(out[3], Patch) and out[4] is no_update and out[6] == 40
    (op,) = out[3].to_plotly_json()["operations"]
    assert op["operation"] == "Extend" and len(op["params"]["value"]) == 20
    page2 = [o["value"] for o in fm.ranking(cache, c, "target", "most", value, shown=40)[0]]
    assert page2[:20] == [o["value"] for o in options] and [o["value"] for o in op["params"]["value"]] == page2[20:]
    assert out[7] == f"show 20 more (40 of {total} listed)"
    assert _bytes(op) < PAGE_BYTES
    # a model or order switch: a new list, one page again
    out = cf.paged_controls(cache, space, {lf.ORDER}, search, c, "target", "least", value, 40)
    assert len(out[3]) == 20 and out[6] == 20 and _bytes(out[3]) < PAGE_BYTES
    out = cf.paged_controls(cache, space, {lf.MODEL}, search, c, "source", "most", value, 40)
    assert len(out[3]) == 20 and out[6] == 20


def test_every_page_until_all_then_the_button_hides(big):
    cache, c = big
    d = fd.discriminability(cache, "target", c)
    total = len(d.neurons)
    options, _, _ = fm.ranking(cache, c, "target", "most", shown=total)
    assert len(options) == total
    assert fm.more_label(total, total) == "" and fm.more_label(total - 3, total) == f"show 3 more ({total - 3} of " \
        f"{total} listed)"
    # images only for the listed rows' neurons: a page of them, not the whole list
    page = fm.ranking(cache, c, "target", "most")[0]
    imgs = [o["image"] for o in page if "/featvis/" in o["image"]]
    hists = [o["hist"] for o in page if "/ranking-hist/target/" in o["hist"]]
    assert len(imgs) <= fm.MAX_ROWS and len(hists) == len(page) == fm.MAX_ROWS


def test_a_checked_neuron_below_the_page_is_listed(big):
    cache, c = big
    full = [o["value"] for o in fm.ranking(cache, c, "target", "most", shown=10**6)[0]]
    late, mid = full[-1], full[30]
    space = StateSpace.from_cache(cache)
    link = f"?class={cache.classes[c]}&model=target&order=most&neurons={late}"
    out = cf.paged_controls(cache, space, {"url"}, link, c, "target", "most", [], None)
    assert out[4] == [late] and len(out[3]) == 21 and out[3][-1]["value"] == late
    # "show more" over a check below the page that the new page reaches: the whole list, in order
    out = cf.paged_controls(cache, space, {lf.MORE}, link, c, "target", "most", [mid], 20)
    assert isinstance(out[3], list) and [o["value"] for o in out[3]] == full[:40]


def test_the_biplot_projects_on_the_checked_neurons_only(big):
    cache, c = big
    d = fd.discriminability(cache, "target", c)
    checked = fm.default_checked(cache, c, "target", "most")
    fig = ff.biplot_figure(cache, c, "target", checked)
    labels = traces(fig, "axes-labels")[0]
    assert len(labels.x) == len(checked) == 5
    keys = [fd.neuron_key(a, n) for a, n in zip(d.neurons["layer"], d.neurons["neuron"])]
    rows = [keys.index(k) for k in checked]
    a = fd.attributions(cache, "target", d.points["id"].to_numpy(), d.neurons.iloc[rows])
    coords, _ = project_attributions(a, d.neurons["discriminability"].to_numpy()[rows])
    pts = {t.meta["domain"]: t for t in traces(fig, "instances")}
    src = d.points["domain"].to_numpy() == "source"
    np.testing.assert_allclose(np.column_stack([pts["source"].x, pts["source"].y]), coords[src], atol=1e-5)
    # not the build's projection on all of the class's neurons
    assert not np.allclose(coords, d.points[["x", "y"]].to_numpy(dtype=float), atol=1e-3)
    assert _bytes(fig.to_plotly_json()) < 60_000


def test_the_status_warns_and_sets_the_accuracy_beside_its_null(big):
    cache, c = big
    d = fd.discriminability(cache, "target", c)
    status = fm.ranking(cache, c, "target", "most")[2]
    text = texts(status)
    assert d.inputs_outnumber_instances
    assert f"{len(d.neurons)} neurons outnumber the {d.n_source + d.n_target} instances" in text
    assert "nested cross-validation" in text and "with shuffled domains" in text
    assert len(of_type(status, html.Div)) >= 2  # the warning is its own line
    assert d.null_mean is not None and 0 <= d.null_mean <= 1 and d.n_permutations > 0
    # no u of a listed row reads as zero
    for o in fm.ranking(cache, c, "target", "most", shown=10**6)[0]:
        u_text = o["u_text"]
        assert u_text == "0" or float(u_text) != 0


def test_a_find_patches_the_ring_alone(big):
    cache, c = big
    d = fd.discriminability(cache, "target", c)
    checked = fm.default_checked(cache, c, "target", "most")
    found = [int(d.points["id"].iloc[0]), int(d.points["id"].iloc[-1])]
    patch = cf.highlight_patch(cache, found, c, "target", checked)
    assert isinstance(patch, Patch)
    ops = patch.to_plotly_json()["operations"]
    fig = ff.biplot_figure(cache, c, "target", checked, found)
    ring = traces(fig, "highlight")[0]
    index = list(fig.data).index(ring)
    assert {tuple(op["location"][:2]) for op in ops} == {("data", index)}  # that trace, nothing else
    sent = {op["location"][2]: op["params"]["value"] for op in ops}
    np.testing.assert_allclose(sent["x"], ring.x) and np.testing.assert_allclose(sent["y"], ring.y)
    assert len(sent["x"]) == 2 and _bytes(ops) < 1_000
    assert cf.highlight_patch(cache, found, None, "target", checked) is no_update


def test_a_cache_from_before_the_regularised_classifier_still_opens(tiny_cache):
    # the tiny cache's discriminate stage may be of either version: drop the new columns to make it old
    import pandas as pd

    c = 4
    t = tiny_cache.discriminability_tables("target")
    old = t["summary"].drop(columns=[k for k in ("method", "null_mean", "null_p95", "p_value", "n_permutations",
                                                 "saturated", "inputs_outnumber_instances") if k in t["summary"]])
    row = old[old["class_index"] == c].iloc[0]
    diag = fd._diagnostics(row, float(row["cv_accuracy"]), int(row["n_source"] + row["n_target"]))
    d = fd.Discriminability("ok", float(row["cv_accuracy"]), int(row["n_source"]), int(row["n_target"]),
                            pd.DataFrame({"layer": ["a"] * int(row["n_neurons"])}), pd.DataFrame(), **diag)
    assert d.method is None and d.null_mean is None
    assert "no permutation null in this cache: rebuild it" in fd.classifier_note(d)
    assert d.saturated == (d.cv_accuracy >= 0.99)
    if d.inputs_outnumber_instances:
        assert "predates the regularised classifier" in fd.classifier_warning(d)
