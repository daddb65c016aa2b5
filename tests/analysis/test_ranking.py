"""Neuron extraction (section 5.3.1 A): ranks, rank sums, top-k, important neurons."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import rankdata

from transferviz.analysis.ranking import average_ranks, important_neurons, rank_sums, top_k


def test_average_ranks_hand_checked_with_ties():
    values = np.array([[0.5, 0.1, 0.5, 0.9],
                       [3.0, 2.0, 1.0, 0.0]])
    expected = np.array([[2.5, 1.0, 2.5, 4.0],
                         [4.0, 3.0, 2.0, 1.0]])
    np.testing.assert_array_equal(average_ranks(values), expected)
    np.testing.assert_array_equal(rank_sums(values), [6.5, 4.0, 4.5, 5.0])


def test_average_ranks_matches_scipy_rowwise():
    rng = np.random.default_rng(0)
    values = rng.integers(0, 4, size=(7, 9)).astype(float)  # many ties
    for row, ranks in zip(values, average_ranks(values)):
        np.testing.assert_array_equal(ranks, rankdata(row, method="average"))


@pytest.mark.parametrize("n, fraction, k", [(0, 0.1, 0), (1, 0.1, 1), (9, 0.1, 1), (10, 0.1, 1), (11, 0.1, 2),
                                            (30, 0.1, 3), (64, 0.1, 7), (4096, 0.1, 410), (5, 1.0, 5)])
def test_top_k_is_ceil_clipped(n, fraction, k):
    assert top_k(n, fraction) == k


def test_top_k_rejects_bad_fraction():
    with pytest.raises(ValueError):
        top_k(10, 0.0)
    with pytest.raises(ValueError):
        top_k(10, 1.5)


def test_important_neurons_order_and_tie_break():
    # Rank sums: neuron 0 -> 6, 1 -> 3, 2 -> 6, 3 -> 5 (instance-wise ranks below).
    values = np.array([[4.0, 1.0, 3.0, 2.0],    # ranks 4 1 3 2
                       [2.0, 1.0, 3.0, 4.0]])   # ranks 2 1 3 4
    np.testing.assert_array_equal(rank_sums(values), [6, 2, 6, 6])
    # All of 0, 2, 3 tie at 6: lower index first.
    np.testing.assert_array_equal(important_neurons(values, 3), [0, 2, 3])
    np.testing.assert_array_equal(important_neurons(values, 10), [0, 2, 3, 1])
    assert important_neurons(values, 1).dtype == np.int64


def test_ranks_not_magnitudes_decide():
    # Neuron 0 has one huge value but is last on every other instance.
    values = np.array([[100.0, 1.0, 2.0],
                       [0.0, 1.0, 2.0],
                       [0.0, 1.0, 2.0]])
    assert important_neurons(values, 1).tolist() == [2]


def test_empty_class():
    values = np.zeros((0, 5))
    assert average_ranks(values).shape == (0, 5)
    np.testing.assert_array_equal(rank_sums(values), np.zeros(5))
    out = important_neurons(values, 2)
    assert out.shape == (0,) and out.dtype == np.int64


def test_nan_is_rejected():
    with pytest.raises(ValueError, match="NaN"):
        important_neurons(np.array([[np.nan, 1.0]]), 1)
