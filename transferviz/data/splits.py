"""Seeded, per-class (stratified) train/validation splits (the paper's 85/15, section 6.1)."""

from __future__ import annotations

import numpy as np

__all__ = ["stratified_split", "TRAIN", "VAL"]

TRAIN = "train"
VAL = "val"


def stratified_split(labels, val_fraction: float = 0.15, seed: int = 0) -> np.ndarray:
    """Returns ``"train"`` / ``"val"`` per instance (``<U5`` array, same length as ``labels``).

    Within each class, ``round(n * val_fraction)`` instances (half rounds up) go to
    validation, chosen by a permutation drawn from ``numpy.random.default_rng(seed)``
    class by class in sorted label order.  A class with at least two instances
    keeps at least one on each side when ``val_fraction > 0``; a singleton class
    stays in training.  The result depends only on ``labels``, ``val_fraction``
    and ``seed``.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be one-dimensional, got shape {labels.shape}")
    if not 0.0 <= float(val_fraction) < 1.0:
        raise ValueError(f"val_fraction must lie in [0, 1), got {val_fraction}")
    out = np.full(len(labels), TRAIN, dtype="<U5")
    rng = np.random.default_rng(seed)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        n = len(idx)
        n_val = int(np.floor(n * val_fraction + 0.5))
        if val_fraction > 0 and n >= 2:
            n_val = min(max(n_val, 1), n - 1)
        elif n < 2:
            n_val = 0
        out[rng.permutation(idx)[:n_val]] = VAL
    return out
