"""Issue 13, item 4: the large-N code paths of the discriminate and pixels stages equal the small-N ones.

* the bootstrap's Gram matrices summed over row blocks (above ``PRIMAL_BLOCK_ELEMENTS``) equal the
  all-at-once product to rounding, and below the threshold the all-at-once path is the one taken (bitwise);
* the pooled pixel matrix written into one preallocated array equals the old chunk concatenation bitwise.
"""

from __future__ import annotations

import numpy as np

from transferviz.analysis import discriminability as disc
from transferviz.analysis.discriminability import _resampled_direct, _resampled_primal
from transferviz.analysis.projection import _pooled_pixels


def _problem(seed: int = 5, n: int = 90, p: int = 7, b: int = 11) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, p)) * rng.uniform(0.5, 4.0, p) + 50.0
    ms = 55
    labels = (np.arange(n) >= ms).astype(np.int8)
    rows = np.concatenate([rng.integers(0, ms, (b, ms)), ms + rng.integers(0, n - ms, (b, n - ms))], axis=1)
    return a, labels, rows


def test_blocked_gram_equals_all_at_once_and_the_direct_refit() -> None:
    a, labels, rows = _problem()
    n, p = a.shape
    whole = _resampled_primal(a, labels, rows, 3.0, block_elements=n * p * p)  # exactly at the threshold: one go
    for block in (p * p, 10 * p * p, n * p * p - 1):  # one row, ten rows, all but the last row per block
        blocked = _resampled_primal(a, labels, rows, 3.0, block_elements=block)
        np.testing.assert_allclose(blocked, whole, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(whole, _resampled_direct(a, labels, rows, 3.0), rtol=1e-8, atol=1e-10)


def test_default_threshold_keeps_small_problems_on_the_unblocked_path() -> None:
    """Below the threshold the default call is the all-at-once product itself, bit for bit (the demo's
    numbers do not move)."""
    a, labels, rows = _problem(seed=6)
    assert a.shape[0] * a.shape[1] ** 2 <= disc.PRIMAL_BLOCK_ELEMENTS
    default = _resampled_primal(a, labels, rows, 1.5)
    np.testing.assert_array_equal(default, _resampled_primal(a, labels, rows, 1.5, block_elements=10**12))
    blocked = _resampled_primal(a, labels, rows, 1.5, block_elements=a.shape[1] ** 2 * 4)
    np.testing.assert_allclose(blocked, default, rtol=1e-10, atol=1e-12)


def test_preallocated_pooled_pixels_equal_the_concatenated_chunks() -> None:
    rng = np.random.default_rng(7)
    for imgs, side in ((rng.integers(0, 256, (7, 28, 28, 3), dtype=np.uint8), 32),  # no pooling
                       (rng.integers(0, 256, (5, 66, 64, 3), dtype=np.uint8), 32)):  # factor 3, cropped
        f = max(1, -(-max(imgs.shape[1:3]) // side))
        hh, ww = imgs.shape[1] // f, imgs.shape[2] // f
        ref = np.concatenate([  # the pre-issue-13 computation, chunk by chunk
            (b[:, :hh * f, :ww * f].reshape(len(b), hh, f, ww, f, -1).mean(axis=(2, 4)) if f > 1 else b)
            .reshape(len(b), -1) for b in (imgs[i:i + 2].astype(np.float32) for i in range(0, len(imgs), 2))])
        out = _pooled_pixels(imgs, side, chunk=2)
        assert out.dtype == np.float32 and out.flags.c_contiguous
        np.testing.assert_array_equal(out, ref)


def test_tsne_methods_notes_name_what_opentsne_picks() -> None:
    """The project/pixels stages' notes say which approximations a map of n points used; the neighbour
    search is asked of openTSNE itself (index objects only, nothing is built)."""
    from openTSNE.affinity import get_knn_index

    from transferviz.analysis.projection import FFT_GRADIENTS_FROM, tsne_methods

    for n in (999, 1000):
        picked = type(get_knn_index(np.zeros((n, 3)), "auto", 10, "euclidean")).__name__
        assert tsne_methods(n)["neighbours"].startswith({"Sklearn": "exact", "Annoy": "annoy"}[picked])
    assert tsne_methods(4797) == {"neighbours": "annoy (approximate)", "negative_gradient": "barnes-hut"}
    assert tsne_methods(FFT_GRADIENTS_FROM)["negative_gradient"].startswith("fft")
    assert tsne_methods(100_000) == {"neighbours": "annoy (approximate)", "negative_gradient": "fft (interpolated)"}


def test_cv_row_cap_changes_nothing_at_or_below_it_and_samples_above() -> None:
    """analysis.discriminability_cv_max_rows: at or above both domain sizes the result is the uncapped one,
    bit for bit; below, the CV and its null run on cap rows per domain while u (every row) stays the same."""
    from transferviz.analysis.discriminability import cv_rows, domain_discriminability

    rng = np.random.default_rng(8)
    src, tgt = rng.normal(size=(40, 6)), rng.normal(size=(30, 6))
    src[:, 2] += 1.0  # a domain difference to find
    free = domain_discriminability(src, tgt, folds=5, n_permutations=3)
    for cap in (40, 1000):
        capped = domain_discriminability(src, tgt, folds=5, n_permutations=3, cv_max_rows=cap)
        assert capped.n_cv_instances == free.n_cv_instances == 70
        assert (capped.cv_accuracy, capped.null_mean, capped.p_value) == (free.cv_accuracy, free.null_mean,
                                                                          free.p_value)
        np.testing.assert_array_equal(capped.u, free.u)
    small = domain_discriminability(src, tgt, folds=5, n_permutations=3, cv_max_rows=20)
    assert small.n_cv_instances == 40 and small.n_instances == 70
    np.testing.assert_array_equal(small.u, free.u)  # u, the penalty and the biplot from every row
    assert small.alpha == free.alpha and small.coords.shape == free.coords.shape
    rows = cv_rows(40, 30, 20, seed=0)
    assert len(rows) == 40 and (rows[:20] < 40).all() and (rows[20:] >= 40).all()
    assert np.array_equal(rows, cv_rows(40, 30, 20, seed=0)) and not np.array_equal(rows, cv_rows(40, 30, 20, 1))
    assert np.array_equal(cv_rows(40, 30, None, seed=0), np.arange(70))
