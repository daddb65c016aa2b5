"""stratified_split: proportions per class, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from transferviz.data import stratified_split


def test_per_class_proportions() -> None:
    labels = np.repeat(np.arange(4), [100, 40, 7, 1])
    split = stratified_split(labels, 0.15, seed=3)
    assert split.shape == labels.shape and set(np.unique(split)) == {"train", "val"}
    n_val = [int((split[labels == c] == "val").sum()) for c in range(4)]
    assert n_val == [15, 6, 1, 0]  # round(n * 0.15); a singleton class stays in training


def test_deterministic_and_seeded() -> None:
    labels = np.tile(np.arange(10), 50)
    a = stratified_split(labels, seed=0)
    assert np.array_equal(a, stratified_split(labels, seed=0))
    assert not np.array_equal(a, stratified_split(labels, seed=1))
    assert (a == "val").sum() == 10 * round(50 * 0.15)


def test_string_labels_and_bad_fraction() -> None:
    split = stratified_split(["a", "b"] * 10, 0.5, seed=0)
    assert (split == "val").sum() == 10
    assert (stratified_split([0, 0, 1], 0.0) == "train").all()
    with pytest.raises(ValueError):
        stratified_split([0, 1], 1.0)
