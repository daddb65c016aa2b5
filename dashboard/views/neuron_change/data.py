"""The neuron-change view's slice of the cache: which neurons' feature visualizations changed
most through fine-tuning (:attr:`Cache.feature_change`), most changed first."""

from __future__ import annotations

import pandas as pd

__all__ = ["ALL", "ONE_LAYER", "PER_LAYER", "changed_rows"]

#: The layer selector's value for "every layer" (``PER_LAYER`` neurons of each).
ALL = "__all__"
PER_LAYER = 5
ONE_LAYER = 24


def changed_rows(change: pd.DataFrame, layers: list[str], layer: str, show_gray: bool) -> pd.DataFrame:
    """Most changed first: the five of every layer, or the top ``ONE_LAYER`` of one layer."""
    df = change if show_gray else change[~(change.gray_source | change.gray_target)]
    df = df.dropna(subset=["similarity"]).sort_values(["similarity", "neuron"], kind="stable")
    if layer == ALL:
        df = df.groupby("layer", sort=False).head(PER_LAYER)
        order = {name: i for i, name in enumerate(layers)}
        return df.sort_values(by=["layer", "similarity"], key=lambda s: s.map(order) if s.name == "layer" else s,
                              kind="stable")
    return df[df.layer == layer].head(ONE_LAYER)
