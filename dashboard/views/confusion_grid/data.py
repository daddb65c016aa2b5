"""The confusion grid's slice of the cache: counts and cell members, recomputed from the instance table.

The grid is recomputed from ``cache.instances`` (label, ``{model}_pred``, domain, split),
so any split can be shown; for ``split == "all"`` it equals ``cache.confusion(model,
domain)`` (tested). Everything here is a few milliseconds of numpy over that table.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from dashboard.lookups import MODELS
from transferviz.cache import Cache

__all__ = ["DEFAULTS", "DOMAINS", "SPLITS", "cell_ids", "confusion_counts", "selection", "valid_cell"]

#: The controls' initial values, also what an unknown value falls back to.
DEFAULTS = {"model": "target", "domain": "target", "split": "all"}
DOMAINS = ("source", "target")
SPLITS = ("all", "train", "val")


def selection(model: Any, domain: Any, split: Any) -> tuple[str, str, str]:
    """The radio values, anything unknown replaced by the view's default."""
    model = model if model in MODELS else DEFAULTS["model"]
    domain = domain if domain in DOMAINS else DEFAULTS["domain"]
    split = split if split in SPLITS else DEFAULTS["split"]
    return model, domain, split


def _rows(df: pd.DataFrame, domain: str, split: str) -> np.ndarray:
    keep = df["domain"].to_numpy() == domain
    if split != "all":
        keep &= df["split"].to_numpy() == split
    return keep


def confusion_counts(cache: Cache, model: str, domain: str, split: str = "all") -> np.ndarray:
    """(true, predicted) counts of ``model`` on the ``domain`` instances of ``split``."""
    df = cache.instances
    n = len(cache.classes)
    keep = _rows(df, domain, split)
    true = df["label"].to_numpy()[keep]
    pred = df[f"{model}_pred"].to_numpy()[keep]
    return np.bincount(true * n + pred, minlength=n * n)[: n * n].reshape(n, n)


def cell_ids(cache: Cache, model: str, domain: str, split: str, true: int, pred: int) -> np.ndarray:
    """Ids of the instances in one cell, in id order."""
    df = cache.instances
    keep = (_rows(df, domain, split) & (df["label"].to_numpy() == int(true))
            & (df[f"{model}_pred"].to_numpy() == int(pred)))
    return df["id"].to_numpy()[keep]


def valid_cell(cell: Any, n_classes: int) -> tuple[int, int] | None:
    """``(true, predicted)`` of a stored cell if both are class indices, else None (a store holds anything)."""
    try:
        t, p = (int(v) for v in cell)
    except (TypeError, ValueError):
        return None
    return (t, p) if 0 <= t < n_classes and 0 <= p < n_classes else None
