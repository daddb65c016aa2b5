"""Neuron extraction by aggregated attribution ranks (paper section 5.3.1 A, Figure 3 A).

For one class ``c`` and one layer ``i`` the input is the Layer Conductance matrix of the
class's target instances, ``values`` with shape ``(M, N)`` (instances x neurons). This is
the transpose of the paper's ``A_{c,i}`` (neurons x instances): our rows are instances so
that it matches ``ConductanceResult.values[layer][mask]`` without copying.

1. Within every instance the neurons are ranked ascending (largest attribution -> rank N);
   tied values share their average rank, exactly like ``scipy.stats.rankdata(method="average")``.
2. The ranks are summed over the instances (``r'_{c,i}``).
3. The ``k`` neurons with the largest rank sums are the class's important neurons;
   ``k = ceil(10 % of N)`` in the paper (:func:`top_k`).

Ranks rather than raw values make every instance vote with the same weight: one instance
with a huge conductance cannot dominate the selection.

Empty class (``M == 0``): :func:`average_ranks` returns ``(0, N)``, :func:`rank_sums`
returns zeros and :func:`important_neurons` returns an empty index array -- with no
instances there is no evidence that any neuron matters, and an empty selection is what the
views show as "no instances of this class".
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import rankdata

__all__ = ["average_ranks", "rank_sums", "top_k", "important_neurons"]


def _check_values(values: np.ndarray) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 2:
        raise ValueError(f"values must be 2-D (instances, neurons), got shape {arr.shape}")
    if arr.size and not np.isfinite(arr).all():
        # A NaN has no rank; silently ranking it first or last would bias the selection.
        raise ValueError("values contain NaN or infinity; the attribution pass is broken")
    return arr


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks the neurons within each instance, ascending, ties sharing their average rank.

    Args:
        values: ``(M, N)`` attribution values, one row per instance, one column per neuron.

    Returns:
        ``(M, N)`` float64 ranks in ``[1, N]`` (1-based, like ``scipy.stats.rankdata``);
        ``(0, N)`` when ``M == 0``.
    """
    arr = _check_values(values)
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        return np.zeros(arr.shape, dtype=np.float64)
    return rankdata(arr, method="average", axis=1).astype(np.float64, copy=False)


def rank_sums(values: np.ndarray) -> np.ndarray:
    """Sums each neuron's within-instance ranks over all instances (the paper's ``r'_{c,i}``).

    Args:
        values: ``(M, N)`` attribution values.

    Returns:
        ``(N,)`` float64 rank sums; zeros when ``M == 0``.
    """
    return average_ranks(values).sum(axis=0)


def top_k(n: int, fraction: float = 0.1) -> int:
    """Number of items to keep: ``ceil(fraction * n)``, at least 1 and at most ``n``.

    Args:
        n: number of items (neurons, weights); ``n == 0`` gives 0.
        fraction: share to keep, in ``(0, 1]``; the paper uses 10 %.

    Returns:
        ``k`` with ``1 <= k <= n`` (0 only when ``n == 0``).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    if n == 0:
        return 0
    # round() first so that 0.1 * 30 == 3.0000000000000004 does not ceil to 4.
    return int(min(n, max(1, math.ceil(round(fraction * n, 9)))))


def important_neurons(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` neurons with the largest rank sums, most important first.

    Ties in the rank sum are broken by the lower neuron index so that the selection (and
    everything cached from it) is reproducible.

    Args:
        values: ``(M, N)`` attribution values of one class's instances at one layer.
        k: how many neurons to return; clipped to ``N``.

    Returns:
        ``(min(k, N),)`` int64 neuron indices; empty when ``M == 0`` (see module docstring).
    """
    arr = _check_values(values)
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    m, n = arr.shape
    if m == 0 or n == 0 or k == 0:
        return np.zeros(0, dtype=np.int64)
    sums = rank_sums(arr)
    # Rank sums are multiples of 0.5 and far below 2**52, so equality tests here are exact.
    order = np.lexsort((np.arange(n), -sums))
    return order[: min(k, n)].astype(np.int64)
