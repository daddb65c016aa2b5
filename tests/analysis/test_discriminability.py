"""Domain discriminability (Algorithm 1) and the biplot geometry (section 5.4)."""

from __future__ import annotations

import numpy as np
import pytest

from transferviz.analysis.discriminability import (
    ALPHAS,
    discriminability_order,
    domain_discriminability,
    project_active,
    project_attributions,
)


def planted(ms=60, mt=40, p=6, neuron=3, shift=3.0, seed=0):
    rng = np.random.default_rng(seed)
    a_src = rng.normal(size=(ms, p))
    a_tgt = rng.normal(size=(mt, p))
    a_tgt[:, neuron] += shift       # only this neuron tells the domains apart
    return a_src, a_tgt


def test_planted_neuron_has_largest_coefficient():
    a_src, a_tgt = planted()
    res = domain_discriminability(a_src, a_tgt, folds=10, seed=0)
    assert res.status == "ok" and res.converged
    assert res.n_folds == 10
    assert int(np.argmax(np.abs(res.u))) == 3
    assert res.u[3] > 0                                  # larger attribution -> target (label 1)
    assert res.cv_accuracy > 0.85 and res.cv_balanced_accuracy > 0.85
    assert res.coords.shape == (100, 2) and res.axes.shape == (6, 2) and res.u.shape == (6,)
    np.testing.assert_array_equal(res.labels, [0] * 60 + [1] * 40)
    assert discriminability_order(res.u)[0] == 3


def test_projection_geometry():
    a_src, a_tgt = planted()
    res = domain_discriminability(a_src, a_tgt)
    w = res.projection.astype(np.float64)
    # Orthonormal columns; the first is the SVM normal.
    np.testing.assert_allclose(w.T @ w, np.eye(2), atol=1e-5)
    np.testing.assert_allclose(w[:, 0], res.u / np.linalg.norm(res.u), rtol=1e-5, atol=1e-6)
    # Horizontal coordinate vs the decision function: f = |u| * (x - boundary_x).
    f = res.a_std.astype(np.float64) @ res.u + res.intercept
    np.testing.assert_allclose(f, np.linalg.norm(res.u) * (res.coords[:, 0] - res.boundary_x), rtol=1e-4, atol=1e-4)
    # Axes: horizontal lengths proportional to |u|, longest arrow 90 % of the data extent.
    ratio = res.axes[:, 0] / res.u
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-4)
    assert np.linalg.norm(res.axes, axis=1).max() == pytest.approx(0.9 * np.abs(res.coords).max(), rel=1e-4)
    # Source left of the boundary, target right (mostly).
    assert res.coords[res.labels == 0, 0].mean() < res.boundary_x < res.coords[res.labels == 1, 0].mean()


def test_constant_columns_are_zero_not_nan():
    a_src, a_tgt = planted(p=4, neuron=0)
    a_src[:, 2] = 5.0
    a_tgt[:, 2] = 5.0
    res = domain_discriminability(a_src, a_tgt, folds=5)
    assert res.status == "ok"
    assert np.isfinite(res.u).all() and np.isfinite(res.coords).all() and np.isfinite(res.axes).all()
    np.testing.assert_array_equal(res.a_std[:, 2], 0.0)
    assert res.u[2] == pytest.approx(0.0, abs=1e-8)
    assert int(np.argmax(np.abs(res.u))) == 0


def test_all_constant_is_finite():
    res = domain_discriminability(np.ones((5, 3)), np.ones((4, 3)), folds=3)
    assert res.status == "ok"
    assert np.isfinite(res.coords).all() and np.isfinite(res.axes).all()


@pytest.mark.parametrize("ms, mt, p, word", [(1, 10, 3, "source"), (10, 0, 3, "target"), (10, 10, 0, "no neurons")])
def test_missing_domain_or_neurons_give_a_stated_empty_state(ms, mt, p, word):
    res = domain_discriminability(np.zeros((ms, p)), np.zeros((mt, p)))
    assert res.status != "ok" and word in res.status
    assert res.cv_accuracy is None and res.n_folds == 0
    assert res.u.shape == (0,) and res.coords.shape == (0, 2) and res.axes.shape == (0, 2)


def test_folds_lowered_to_smallest_domain_and_deterministic():
    a_src, a_tgt = planted(ms=30, mt=4)
    r1 = domain_discriminability(a_src, a_tgt, folds=10, seed=1)
    r2 = domain_discriminability(a_src, a_tgt, folds=10, seed=1)
    assert r1.n_folds == 4
    np.testing.assert_array_equal(r1.u, r2.u)
    np.testing.assert_array_equal(r1.coords, r2.coords)
    assert r1.cv_accuracy == r2.cv_accuracy


def test_project_active_top_five():
    a_src, a_tgt = planted(p=8)
    res = domain_discriminability(a_src, a_tgt)
    active = discriminability_order(np.abs(res.u))[:5]
    coords, axes = project_active(res, active)
    assert coords.shape == (100, 2) and axes.shape == (5, 2)
    ratio = axes[:, 0] / res.u[active]
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-4)
    full_coords, full_axes = project_active(res, np.arange(8))
    np.testing.assert_allclose(full_coords, res.coords, rtol=1e-4, atol=1e-4)


def test_nan_rejected():
    with pytest.raises(ValueError):
        domain_discriminability(np.full((3, 2), np.nan), np.zeros((3, 2)))


# --- the regularised classifier and its permutation null (issue 16, item 3) ----------------

def test_separable_domains_are_flagged_saturated_with_a_chance_level_null():
    a_src, a_tgt = planted(ms=40, mt=40, p=6, shift=12.0)  # one neuron separates the domains perfectly
    res = domain_discriminability(a_src, a_tgt, folds=5, seed=0, n_permutations=19)
    assert res.cv_accuracy == pytest.approx(1.0) and res.saturated
    assert not res.inputs_outnumber_instances and (res.n_inputs, res.n_instances) == (6, 80)
    assert res.n_permutations == 19 and 0.35 < res.null_mean < 0.65  # shuffled labels: chance
    assert res.null_p95 < 0.8 and res.p_value == pytest.approx(1 / 20)
    assert int(np.argmax(np.abs(res.u))) == 3


def test_random_labels_score_like_the_null():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(80, 20))  # no signal: the two "domains" are one distribution
    res = domain_discriminability(a[:40], a[40:], folds=5, seed=1, n_permutations=19)
    assert not res.saturated
    assert abs(res.cv_accuracy - res.null_mean) < 0.15
    assert res.p_value > 0.05 and res.cv_accuracy <= res.null_p95 + 0.1


def test_more_inputs_than_instances_is_regularised_and_flagged():
    # the benchmark's shape: 30 + 25 instances, 938 inputs; 40 of them mildly informative
    rng = np.random.default_rng(0)
    a_src, a_tgt = rng.normal(size=(30, 938)), rng.normal(size=(25, 938))
    planted = rng.choice(938, 40, replace=False)
    a_tgt[:, planted] += 1.2
    res = domain_discriminability(a_src, a_tgt, folds=10, seed=0, n_permutations=19)
    assert res.inputs_outnumber_instances and (res.n_inputs, res.n_instances) == (938, 55)
    assert res.alpha in ALPHAS
    # the signal beats its null, and the planted neurons lead the ranking
    assert res.cv_accuracy > res.null_p95 and res.p_value == pytest.approx(1 / 20)
    top = set(discriminability_order(np.abs(res.u))[:40].tolist())
    assert len(top & set(planted.tolist())) >= 25
    # pure noise of the same shape: any labelling is separable with 938 inputs, yet the nested CV
    # scores it at chance (the strongest penalty wins) and its null says so
    noise = domain_discriminability(rng.normal(size=(30, 938)), rng.normal(size=(25, 938)), folds=10, n_permutations=19)
    assert noise.inputs_outnumber_instances and not noise.saturated
    assert noise.cv_accuracy < 0.65 and noise.p_value > 0.2 and noise.alpha == ALPHAS.max()


def test_no_permutations_leaves_the_null_empty():
    a_src, a_tgt = planted()
    res = domain_discriminability(a_src, a_tgt, folds=5, n_permutations=0)
    assert res.n_permutations == 0 and res.null_mean is None and res.p_value is None
    assert res.cv_accuracy > 0.85


def test_project_attributions_uses_only_the_given_columns():
    a_src, a_tgt = planted(p=8)
    res = domain_discriminability(a_src, a_tgt, folds=5, n_permutations=0)
    active = np.array([3, 0, 6])
    raw = np.vstack([a_src, a_tgt])[:, active]
    coords, axes = project_attributions(raw, res.u[active])
    # the same as projecting the stored standardised columns: step 1 on a column needs only that column
    ref_coords, ref_axes = project_active(res, active)
    np.testing.assert_allclose(coords, ref_coords, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(axes, ref_axes, rtol=1e-4, atol=1e-4)
    # and differs from the projection on every neuron
    assert not np.allclose(coords, res.coords, atol=1e-2)
    assert project_attributions(np.zeros((5, 0)), np.zeros(0))[1].shape == (0, 2)
    with pytest.raises(ValueError):
        project_attributions(raw, res.u)
