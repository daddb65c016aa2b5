"""Neuron cosine similarity, top-5 and weight correspondence (section 5.3.2)."""

from __future__ import annotations

import numpy as np
import pytest

from transferviz.analysis.similarity import (
    correspondence_matrix,
    correspondence_share,
    cosine_similarity_matrix,
    most_similar_source,
    similarity_regions,
    top_similar,
    weight_correspondence,
)


def test_cosine_hand_checked_and_zero_columns():
    a_src = np.array([[1.0, 0.0, 0.0],
                      [0.0, 2.0, 0.0]])   # source neurons: e1, 2*e2, zero
    a_tgt = np.array([[3.0, 1.0],
                      [0.0, 1.0]])        # target neurons: 3*e1, (1, 1)
    s = cosine_similarity_matrix(a_src, a_tgt)
    assert s.dtype == np.float32 and s.shape == (3, 2)
    r = 1 / np.sqrt(2)
    np.testing.assert_allclose(s, [[1.0, r], [0.0, r], [0.0, 0.0]], rtol=1e-6)
    assert not np.isnan(cosine_similarity_matrix(np.zeros((0, 2)), np.zeros((0, 3)))).any()


def test_cosine_matches_formula_and_is_bounded():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(20, 4)), rng.normal(size=(20, 5)) * 1e6
    s = cosine_similarity_matrix(a, b)
    ref = (a.T @ b) / np.outer(np.linalg.norm(a, axis=0), np.linalg.norm(b, axis=0))
    np.testing.assert_allclose(s, ref, rtol=1e-5, atol=1e-6)
    assert np.abs(cosine_similarity_matrix(a, a)).max() <= 1.0
    np.testing.assert_allclose(np.diag(cosine_similarity_matrix(a, a)), 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match="different instances"):
        cosine_similarity_matrix(a, b[:3])


def test_top_similar_both_directions_with_ties():
    s = np.array([[0.1, 0.9, 0.5],
                  [0.9, 0.2, 0.9]])
    idx, val = top_similar(s, k=2, axis=1)
    np.testing.assert_array_equal(idx, [[1, 2], [0, 2]])   # tie 0.9/0.9 -> lower index first
    np.testing.assert_allclose(val, [[0.9, 0.5], [0.9, 0.9]], rtol=1e-6)
    idx, val = top_similar(s, k=5, axis=0)                  # k clipped to 2 source neurons
    assert idx.shape == (3, 2)
    np.testing.assert_array_equal(idx, [[1, 0], [0, 1], [1, 0]])


def test_most_similar_source_undefined_for_zero_column():
    s = np.array([[0.2, 0.0, -0.5],
                  [0.7, 0.0, -0.1]])
    np.testing.assert_array_equal(most_similar_source(s), [1, -1, 1])


def test_weight_correspondence_hand_checked():
    # Layer i: target neuron t -> most similar source neuron: 0->2, 1->0.
    s_i = np.array([[0.1, 0.9],
                    [0.2, 0.1],
                    [0.8, 0.3]])
    # Layer j: target 0 -> source 1, target 1 -> source 0, target 2 has no attribution (zero column).
    s_j = np.array([[0.1, 0.7, 0.0],
                    [0.6, 0.2, 0.0]])
    src_important = np.array([[2, 1], [0, 0]])   # source weights 2->1 and 0->0
    tgt = np.array([[0, 0],    # (2, 1): important -> True
                    [1, 1],    # (0, 0): important -> True
                    [0, 1],    # (2, 0): not important
                    [1, 0],    # (0, 1): not important
                    [0, 2]])   # n2 undefined -> False
    np.testing.assert_array_equal(weight_correspondence(tgt, src_important, s_i, s_j),
                                  [True, True, False, False, False])
    assert correspondence_share(tgt, src_important, s_i, s_j) == pytest.approx(0.4)
    assert correspondence_share(np.zeros((0, 2)), src_important, s_i, s_j) is None
    full = correspondence_matrix(src_important, s_i, s_j)
    assert full.shape == (3, 2)  # [n2, n1]
    np.testing.assert_array_equal(full[tgt[:, 1], tgt[:, 0]], weight_correspondence(tgt, src_important, s_i, s_j))


def test_similarity_regions():
    s = np.array([[0.9, -0.5, 0.1],
                  [0.05, 1.0, -1.0]])
    reg = similarity_regions(s, imp_src=[1], imp_tgt=[2, 1], bins=4)   # edges -1, -0.5, 0, 0.5, 1
    np.testing.assert_allclose(reg.block, [[-1.0, 1.0]])
    np.testing.assert_array_equal(reg.hist_src_imp, [0, 0, 1, 0])       # s[1, 0] = 0.05
    np.testing.assert_array_equal(reg.hist_tgt_imp, [0, 1, 1, 0])       # s[0, 2], s[0, 1] = 0.1, -0.5
    np.testing.assert_array_equal(reg.hist_neither, [0, 0, 0, 1])       # s[0, 0] = 0.9
    assert len(reg.bin_edges) == 5


def test_top_similar_equals_a_stable_full_sort_with_ties():
    """The partitioned top-k is the stable full sort's answer (lower index first among ties), on small
    matrices full of ties and on a 4096-wide one."""
    import numpy as np

    from transferviz.analysis.similarity import top_similar

    rng = np.random.default_rng(3)

    def reference(s, k, axis):
        rows = s if axis == 1 else s.T
        idx = np.argsort(-rows, axis=1, kind="stable")[:, :k]
        return idx, np.take_along_axis(rows, idx, axis=1)

    cases = [rng.integers(-2, 3, (int(rng.integers(1, 20)), int(rng.integers(1, 20)))).astype(np.float32) / 2
             for _ in range(100)] + [rng.random((40, 4096)).astype(np.float32)]
    for s in cases:
        for k in (1, 3, 5, 50):
            for axis in (0, 1):
                idx, val = top_similar(s, k, axis=axis)
                other = s.shape[1] if axis == 1 else s.shape[0]  # the other model's neuron count
                ridx, rval = reference(s, min(k, other), axis)
                np.testing.assert_array_equal(idx, ridx)
                np.testing.assert_array_equal(val, rval)
