"""The comparison page's data and figures (issue 14, item 2) on three synthetic runs whose CKA, estimates and
class gains are known (tests/hub/conftest.py), one of them with a different class set and no CKA."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dashboard.hub import compare, figures
from dashboard.hub.callbacks import compare_figures, compare_view
from dashboard.hub.runs import RunIndex
from dashboard.theme import is_empty_figure
from transferviz.cache import Cache


@pytest.fixture(scope="module")
def caches(three_runs) -> dict[str, Cache]:
    return {n: Cache.open(three_runs / n) for n in ("alpha", "beta", "gamma")}


def test_parse_run_list_keeps_known_runs_in_order_and_names_the_problem():
    known = ["a", "b", "c", "d", "e", "f", "g"]
    assert compare.parse_run_list("b,a,b", known) == (["b", "a"], None)
    names, problem = compare.parse_run_list("a", known)
    assert names == ["a"] and problem is not None and "2 to 6" in problem
    names, problem = compare.parse_run_list("a,zz,b", known)
    assert names == ["a", "b"] and problem is not None and "zz" in problem
    assert compare.parse_run_list(",".join(known), known)[1] is not None  # seven is too many
    assert compare.parse_run_list(None, known)[1] is not None


def test_scores_frame_reads_each_runs_score_and_estimates(caches):
    s = compare.scores_frame(caches)
    assert list(s.index) == ["alpha", "beta", "gamma"]
    assert s.loc["alpha", ["logme", "leep", "nce", "hscore"]].tolist() == [-1.0, -2.0, -1.5, 3.0]
    assert s.loc["beta", "logme"] == -0.5
    assert s.loc["gamma", ["logme", "leep", "nce", "hscore"]].isna().all()  # built before the stage
    assert s.loc["alpha", "score"] == pytest.approx(caches["alpha"].summary()["transferability"])
    fig = figures.score_bars(s, figures.run_colors(list(caches)))
    bars = {t.meta["measure"]: t for t in fig.data}
    assert list(bars) == ["score", "logme", "leep", "nce", "hscore"]
    assert list(bars["logme"].y) == [-1.0, -0.5, None]
    assert bars["logme"].text[2] == "n/a"
    assert not [a for a in fig.layout.annotations if "n/a" in a.text]  # every panel has a bar
    older = figures.score_bars(compare.scores_frame({"gamma": caches["gamma"]}), {"gamma": "#000"})
    assert len([a for a in older.layout.annotations if "n/a" in a.text]) == 4  # one per estimate's panel


def test_cka_diagonal_is_the_matrix_diagonal_one_line_per_run_with_cka(caches):
    n = len(caches["alpha"].layers)
    diags = compare.cka_diagonals(caches)
    np.testing.assert_allclose(diags["alpha"], 1.0 - 0.1 * np.arange(n))
    np.testing.assert_allclose(diags["beta"], np.full(n, 0.5))
    assert diags["gamma"] is None
    np.testing.assert_allclose(compare.cka_diagonals(caches, "source")["alpha"], 0.5 * (1.0 - 0.1 * np.arange(n)))
    axis = compare.layer_axis(caches)
    assert axis.by_name and axis.labels == caches["alpha"].layers
    fig = figures.cka_diagonal_lines(diags, {k: c.layers for k, c in caches.items()}, axis,
                                     figures.run_colors(list(caches)))
    assert [t.meta["run"] for t in fig.data] == ["alpha", "beta"]
    np.testing.assert_allclose(fig.data[0].y, 1.0 - 0.1 * np.arange(n))
    assert list(fig.data[0].x) == list(range(n))
    assert is_empty_figure(figures.cka_diagonal_lines({"gamma": None}, {"gamma": []}, axis, {"gamma": "#000"}))


def test_class_gains_line_up_classes_by_name_and_leave_missing_ones_blank(caches):
    g = compare.class_gains(caches)
    assert list(g.columns) == ["alpha", "beta", "gamma"]
    assert list(g.index) == [*[str(c) for c in caches["alpha"].classes], "nine"]  # gamma's own class last
    assert g.loc["0", "beta"] == 0.25 and g.loc["1", "beta"] == -0.5
    assert math.isnan(g.loc["9", "gamma"]) and math.isnan(g.loc["nine", "alpha"])
    assert g.loc["nine", "gamma"] == pytest.approx(g.loc["9", "alpha"])  # the same run's class, renamed
    t = caches["alpha"].class_table
    assert g.loc["3", "alpha"] == pytest.approx(float(t.loc[t["class"] == "3", "diff"].iloc[0]))
    fig = figures.class_gain_heatmap(g)
    heat = fig.data[0]
    assert list(heat.x) == ["alpha", "beta", "gamma"] and list(heat.y) == list(g.index)
    assert heat.z[list(g.index).index("nine")][0] is None  # a gap, not a zero
    assert heat.z[0][1] == 0.25
    assert heat.zmid == 0 and heat.zmin == -heat.zmax


def test_differences_say_what_the_runs_do_not_share(caches):
    notes = compare.differences(caches)
    text = "\n".join(notes)
    assert "gamma has classes the others lack (nine)" in text
    assert "alpha has classes the others lack (9)" in text  # alpha and beta have 9, gamma does not
    assert "no CKA in gamma" in text and "no transferability estimates in gamma" in text
    assert "architectures differ" not in text
    two = {k: caches[k] for k in ("alpha", "beta")}
    assert compare.differences(two) == []  # same classes, layers and measures: nothing to say


def test_accuracy_overlay_one_line_per_run_and_model(caches):
    acc = compare.accuracy_frame(caches)
    h = caches["alpha"].history
    a_src = acc[(acc.run == "alpha") & (acc.model == "source")]
    assert a_src["accuracy"].tolist() == pytest.approx(h[h.model == "source"]["target_val"].tolist())
    fig = figures.accuracy_overlay(acc, figures.run_colors(list(caches)))
    assert [(t.meta["run"], t.meta["model"]) for t in fig.data] == [
        (r, m) for r in ("alpha", "beta", "gamma") for m in ("source", "target")]
    colors = {t.meta["run"]: t.line.color for t in fig.data}
    assert len(set(colors.values())) == 3  # runs by colour
    assert {t.marker.symbol for t in fig.data if t.meta["model"] == "source"} == {"x"}  # models by symbol
    assert {t.marker.symbol for t in fig.data if t.meta["model"] == "target"} == {"circle"}


def test_correspondence_by_pair_averages_classes_beside_reference_and_null(caches):
    by_pair = compare.correspondence_by_pair(caches)
    s = caches["alpha"].correspondence_summary()
    first = s[s.from_layer == s.from_layer.iloc[0]]
    row = by_pair["alpha"].iloc[0]
    assert row["share"] == pytest.approx(first["share"].mean())
    assert row["null_p95"] == pytest.approx(first["null_p95"].mean())
    assert row["position"] == caches["alpha"].layers.index(first.from_layer.iloc[0])
    fig = figures.correspondence_lines(by_pair, compare.layer_axis(caches), figures.run_colors(list(caches)))
    series = {(t.meta["run"], t.meta["series"]) for t in fig.data}
    assert ("alpha", "share") in series and ("gamma", "null_p95") in series


def test_compare_view_draws_every_figure_and_the_note(three_runs):
    index = RunIndex(three_runs)
    index.scan()
    page = str(compare_view(index, "/", "?runs=alpha,gamma"))
    assert "hub-compare-notes" in page and "nine" in page
    for key in ("accuracy", "scores", "cka", "correspondence", "gains"):
        assert f"hub-fig-{key}" in page
    bad = str(compare_view(index, "/", "?runs=alpha,broken"))
    assert "hub-problem" in bad and "broken" in bad and "does not" in bad.replace("do not", "does not")
    assert "2 to 6" in str(compare_view(index, "/", "?runs=alpha"))
    figs = compare_figures({n: Cache.open(three_runs / n) for n in ("alpha", "beta")})
    assert not any(is_empty_figure(f) for f in figs.values())


def test_runs_of_different_architectures_line_up_by_layer_position_and_say_so(other_arch_run):
    runs = {n: Cache.open(other_arch_run / n) for n in ("alpha", "delta")}
    n = len(runs["alpha"].layers)
    assert len(runs["delta"].layers) == n - 1
    axis = compare.layer_axis(runs)
    assert not axis.by_name and axis.labels == [f"L{i + 1}" for i in range(n)]
    notes = "\n".join(compare.differences(runs))
    assert "architectures differ (alpha: small_alexnet, delta: resnet18)" in notes and "by position" in notes
    fig = figures.cka_diagonal_lines(compare.cka_diagonals(runs), {k: c.layers for k, c in runs.items()}, axis,
                                     figures.run_colors(list(runs)))
    lines = {t.meta["run"]: t for t in fig.data}
    assert list(lines["delta"].x) == list(range(n - 1)) and list(lines["alpha"].x) == list(range(n))
    np.testing.assert_allclose(lines["delta"].y, np.full(n - 1, 0.95))
    assert list(lines["delta"].customdata) == runs["delta"].layers  # each run's own layer names in the hover
    assert "(by position)" in fig.layout.xaxis.title.text
