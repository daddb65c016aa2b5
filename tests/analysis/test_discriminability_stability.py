"""Issue 12, item 4: the bootstrap stability of Algorithm 1's u and the trivial-feature baseline.

Planted truths: a neuron that separates the domains perfectly stays in the top five with its sign
in every resample, pure noise does not; a pair of image domains that differ only in colour is
flagged by the baseline, a pair drawn from one distribution is not.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import RidgeClassifier

from transferviz.analysis.discriminability import (
    BASELINE_WARN,
    STABLE,
    bootstrap_stability,
    domain_discriminability,
    image_statistics,
    ridge_coefficients,
    stability_null,
    trivial_baseline,
)


def _noise(rng: np.random.Generator, ms: int = 60, mt: int = 40, p: int = 20) -> tuple[np.ndarray, np.ndarray]:
    return rng.normal(size=(ms, p)), rng.normal(size=(mt, p))


def test_ridge_closed_form_matches_sklearn_in_primal_and_dual():
    rng = np.random.default_rng(0)
    for n, p in ((50, 8), (20, 60)):  # instances outnumber inputs, and the other way round
        x = rng.normal(size=(n, p)) * rng.uniform(0.5, 3.0, p) + 5.0
        y = (np.arange(n) < n // 3).astype(int)  # unequal classes: the balanced weights matter
        for alpha in (0.1, 30.0):
            ref = RidgeClassifier(alpha=alpha, class_weight="balanced").fit(x, y).coef_.ravel()
            assert np.allclose(ridge_coefficients(x[None], y, alpha)[0], ref, atol=1e-10)


def test_resampled_counts_and_rows_agree():
    """The fast path (resample counts) is the same computation as refitting on the resampled rows."""
    from transferviz.analysis.discriminability import _resampled_direct, _resampled_primal

    rng = np.random.default_rng(1)
    a = rng.normal(size=(70, 9)) * 4.0 + 100.0  # a large mean: the moment sums must not cancel
    a[:, 4] = 3.0  # a constant column gets u = 0 in both
    labels = (np.arange(70) >= 45).astype(np.int8)
    rows = np.concatenate([rng.integers(0, 45, (12, 45)), 45 + rng.integers(0, 25, (12, 25))], axis=1)
    fast, slow = _resampled_primal(a, labels, rows, 2.0), _resampled_direct(a, labels, rows, 2.0)
    assert np.allclose(fast, slow, atol=1e-9)
    assert np.all(fast[:, 4] == 0)


def test_planted_discriminative_neuron_is_fully_stable():
    rng = np.random.default_rng(2)
    src, tgt = _noise(rng)
    src[:, 7] = rng.normal(-3.0, 0.3, len(src))  # neuron 7 separates the domains perfectly
    tgt[:, 7] = rng.normal(3.0, 0.3, len(tgt))
    res = domain_discriminability(src, tgt, folds=5, n_permutations=0)
    assert int(np.argmax(np.abs(res.u))) == 7 and res.u[7] > 0
    stab = bootstrap_stability(src, tgt, res.u, res.alpha, n_bootstrap=100, seed=0)
    assert stab.n_bootstrap == 100 and stab.top == 5
    assert stab.stability[7] == 1.0 and stab.sign_share[7] == 1.0
    others = np.delete(stab.stability, 7)
    assert others.max() < STABLE  # the other four places of the top go to noise neurons by turns
    assert stab.n_top_stable(res.u) == 1


def test_noise_neurons_are_unstable_and_match_their_null():
    """Pure noise: no neuron comes near the planted neuron's 1.0, and the count of stable top neurons is what
    shuffled domain labels give (the bootstrap reproduces the sample's chance structure: ~2 of 5 pass)."""
    rng = np.random.default_rng(3)
    src, tgt = _noise(rng)
    res = domain_discriminability(src, tgt, folds=5, n_permutations=0)
    stab = bootstrap_stability(src, tgt, res.u, res.alpha, n_bootstrap=100, seed=0)
    assert stab.stability.max() < 0.75
    null = stability_null(src, tgt, n_bootstrap=100, n_permutations=10, seed=0)
    assert null.shape == (10,) and stab.n_top_stable(res.u) <= null.max()


def test_planted_neurons_stand_above_the_null():
    rng = np.random.default_rng(3)
    src, tgt = _noise(rng)
    src[:, :3] -= 1.5  # three neurons shifted by 1.5 sd between the domains
    res = domain_discriminability(src, tgt, folds=5, n_permutations=0)
    stab = bootstrap_stability(src, tgt, res.u, res.alpha, n_bootstrap=100, seed=0)
    assert np.all(stab.stability[:3] >= 0.95) and np.all(res.u[:3] > 0)
    null = stability_null(src, tgt, n_bootstrap=100, n_permutations=10, seed=0)
    assert stab.n_top_stable(res.u) >= 3 > null.mean()


def test_stability_is_seeded_and_degenerate_inputs_give_none():
    rng = np.random.default_rng(4)
    src, tgt = _noise(rng, 10, 8, 3)
    u = np.array([0.5, -0.2, 0.1])
    a = bootstrap_stability(src, tgt, u, 1.0, n_bootstrap=30, seed=5)
    b = bootstrap_stability(src, tgt, u, 1.0, n_bootstrap=30, seed=5)
    assert np.array_equal(a.stability, b.stability) and a.top == 3  # the top is capped at P
    assert np.all(a.top_share == 1.0)  # three neurons: every one is always in the top
    assert bootstrap_stability(src, tgt, u, 1.0, n_bootstrap=0).n_bootstrap == 0
    assert bootstrap_stability(src[:1], tgt, u, 1.0).n_bootstrap == 0
    with pytest.raises(ValueError, match="columns"):
        bootstrap_stability(src, tgt, u[:2], 1.0)


def test_image_statistics_hand_checked():
    img = np.zeros((1, 2, 2, 3), dtype=np.uint8)
    img[0, 0, 0] = (255, 0, 0)  # one saturated red pixel, one grey, two black
    img[0, 1, 1] = (102, 102, 102)
    f = image_statistics(img)[0]
    assert np.allclose(f[:3], [(1.0 + 0.4) / 4, 0.4 / 4, 0.4 / 4])
    assert np.isclose(f[3], np.std([1.0, 0.0, 0.0, 0.4]))
    assert np.isclose(f[6], 1.0 / 4)  # saturation 1 for red, 0 for grey and (by convention) black


def _digit_like(rng: np.random.Generator, n: int, tint: tuple[float, float, float]) -> np.ndarray:
    """Random blobs of ink on a dark background, the ink tinted ``tint``: the same shapes and brightness
    whatever the tint."""
    ink = (rng.random((n, 12, 12, 1)) < 0.3) * rng.uniform(0.5, 1.0, (n, 1, 1, 1))
    return (ink * np.asarray(tint) * 255).astype(np.uint8)


def test_baseline_flags_domains_that_differ_only_in_colour():
    rng = np.random.default_rng(6)
    grey = (0.8, 0.8, 0.8)
    coloured = trivial_baseline(_digit_like(rng, 40, (1.0, 0.3, 0.3)), _digit_like(rng, 30, grey), folds=5)
    same = trivial_baseline(_digit_like(rng, 40, grey), _digit_like(rng, 30, grey), folds=5)
    assert coloured.status == "ok" and coloured.flagged and coloured.cv_accuracy >= BASELINE_WARN
    assert same.status == "ok" and not same.flagged and same.cv_accuracy < 0.8


def test_grayscale_synthetic_digits_are_the_coloured_renders_in_grey():
    """Item 6: ``grayscale: true`` keeps every draw and drops only the colour; a config without the key keeps
    its dump (and so the stage keys of caches built before the option)."""
    from transferviz.config import SyntheticDigits
    from transferviz.data import synthetic_digits

    colour, grey = synthetic_digits(2, 28, seed=0), synthetic_digits(2, 28, seed=0, grayscale=True)
    g = grey.images.astype(np.float64)
    assert np.array_equal(grey.labels, colour.labels)
    assert np.all(g[..., 0] == g[..., 1]) and np.all(g[..., 1] == g[..., 2])
    luma = colour.images.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    diff = np.abs(g[..., 0] - luma)  # rounding of the rounded colour image; more where noise clipped a channel
    assert diff.mean() < 0.5 and np.percentile(diff, 99) <= 1.0
    assert image_statistics(grey.images)[:, 6].max() == 0.0  # no saturation left
    assert "grayscale" not in SyntheticDigits(kind="synthetic_digits").model_dump()
    assert SyntheticDigits(kind="synthetic_digits", grayscale=True).model_dump()["grayscale"] is True


def test_view_greys_unstable_neurons_and_warns_of_image_statistics():
    import pandas as pd

    from dashboard.views.features.data import BASELINE_WARNING, Discriminability, baseline_warning, stability_note
    from dashboard.views.features.figures import ranking_rows
    from dashboard.views.features.markup import stability_cell

    table = pd.DataFrame({"layer": ["a", "a", "b"], "neuron": [0, 1, 2], "discriminability": [0.1, -0.5, 0.3],
                          "stability": [0.2, 0.9, np.nan]})
    rows = ranking_rows(table)
    assert [r["stability"] for r in rows] == [0.9, None, 0.2]  # by |u|, NaN (no bootstrap) as None
    bar, title, unstable = stability_cell(0.2, 100)
    assert unstable and bar == "▂" and "stability 20%" in title and "of 100 resamples" in title
    assert stability_cell(0.9, 100)[2] is False and stability_cell(None) == ("–", "no bootstrap stability for this "
                                                                             "neuron", False)
    empty = pd.DataFrame()
    d = Discriminability("ok", 1.0, 10, 10, empty, empty, baseline_accuracy=0.95, n_bootstrap=100, n_top=5,
                         n_top_stable=3, null_top_stable=1.2)
    assert baseline_warning(d) == BASELINE_WARNING
    assert stability_note(d) == "3 of the top 5 stable vs 1.2 with shuffled domains"
    d.baseline_accuracy = BASELINE_WARN - 0.01
    assert baseline_warning(d) is None
