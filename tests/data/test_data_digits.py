"""sklearn_digits and synthetic_digits: shapes, classes, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from transferviz.data import font_pool, sklearn_digits, synthetic_digits
from transferviz.data import synthetic as synthetic_module

DIGITS = tuple(str(d) for d in range(10))


def test_sklearn_digits() -> None:
    d = sklearn_digits(28)
    assert d.images.shape == (1797, 28, 28, 3) and d.images.dtype == np.uint8
    assert d.labels.dtype == np.int64 and d.classes == DIGITS
    assert np.array_equal(d.images[..., 0], d.images[..., 2])
    assert d.images.max() > 200 and d.images[:, 0, 0].mean() < 30  # bright ink on a dark ground
    assert np.bincount(d.labels).min() >= 170
    assert sklearn_digits(16).images.shape == (1797, 16, 16, 3)


def test_synthetic_shapes_and_determinism() -> None:
    a = synthetic_digits(6, 28, seed=0)
    assert a.images.shape == (60, 28, 28, 3) and a.images.dtype == np.uint8
    assert a.classes == DIGITS and a.labels.dtype == np.int64
    assert np.array_equal(np.bincount(a.labels), [6] * 10)
    assert np.array_equal(a.images, synthetic_digits(6, 28, seed=0).images)
    assert not np.array_equal(a.images, synthetic_digits(6, 28, seed=1).images)
    prefix = synthetic_digits(3, 28, seed=0)
    assert np.array_equal(prefix.images, a.images[:30])  # n=3 is a prefix of n=6
    assert a.images.reshape(60, -1).std(axis=1).min() > 5  # never a blank image
    assert synthetic_digits(2, 32, seed=0).images.shape == (20, 32, 32, 3)


def test_synthetic_without_system_fonts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(synthetic_module, "font_pool", lambda: (synthetic_module.DEFAULT_FONT,))
    synthetic_module._renderer.cache_clear()
    try:
        d = synthetic_digits(2, 28, seed=0)
        assert d.images.shape == (20, 28, 28, 3) and d.images.reshape(20, -1).std(axis=1).min() > 5
    finally:
        synthetic_module._renderer.cache_clear()
    assert font_pool()[-1] == synthetic_module.DEFAULT_FONT
