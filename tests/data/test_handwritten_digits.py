"""synthetic_digits(style="handwritten"): the scale benchmark's target domain (configs/scale.yaml)."""

from __future__ import annotations

import numpy as np
import pytest

from transferviz.config import parse_config
from transferviz.data import synthetic_digits


def test_handwritten_is_grey_dark_ground_deterministic_prefix() -> None:
    a = synthetic_digits(4, 28, seed=3, style="handwritten")
    assert a.images.shape == (40, 28, 28, 3) and a.images.dtype == np.uint8
    assert np.array_equal(np.bincount(a.labels), [4] * 10)
    assert np.array_equal(a.images[..., 0], a.images[..., 1]) and np.array_equal(a.images[..., 0], a.images[..., 2])
    # bright ink on a (noisy) black ground, as MNIST: dark corners, bright strokes
    assert a.images[:, :3, :3].mean() < 30 and (a.images.reshape(40, -1).max(axis=1) > 150).all()
    assert np.array_equal(a.images, synthetic_digits(4, 28, seed=3, style="handwritten").images)
    assert np.array_equal(synthetic_digits(2, 28, seed=3, style="handwritten").images, a.images[:20])  # prefix
    assert not np.array_equal(a.images, synthetic_digits(4, 28, seed=4, style="handwritten").images)


def test_handwritten_differs_from_printed_and_leaves_printed_alone() -> None:
    printed = synthetic_digits(3, 28, seed=0, grayscale=True)
    hand = synthetic_digits(3, 28, seed=0, style="handwritten")
    assert not np.array_equal(printed.images, hand.images)
    # the default style renders exactly what it rendered before the option existed
    default = synthetic_digits(3, 28, seed=0).images
    assert np.array_equal(default, synthetic_digits(3, 28, seed=0, style="printed").images)
    with pytest.raises(ValueError, match="style must be"):
        synthetic_digits(2, 28, seed=0, style="cursive")


def test_style_key_only_in_configs_that_set_it() -> None:
    """A config without 'style' dumps (and so hashes its stage keys) as before the key existed."""
    base = {"name": "x", "source": {"kind": "synthetic_digits", "n_per_class": 5},
            "target": {"kind": "synthetic_digits", "n_per_class": 5, "style": "handwritten"}}
    cfg = parse_config(base)
    dumped = cfg.model_dump(mode="json")
    assert "style" not in dumped["source"] and dumped["target"]["style"] == "handwritten"
