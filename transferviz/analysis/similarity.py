"""Neuron similarity between the source and the target model (paper section 5.3.2, 5.3.3).

Two neurons of the same layer, one per model, are similar when their attribution
(Layer Conductance) vectors over the *same* target instances point the same way:
``S[p, q] = cos(a_src[:, p], a_tgt[:, q])``. Rows of ``S`` are source neurons, columns
target neurons, everywhere in this module.

Weight correspondence: a target weight ``n1 -> n2`` (layers i -> j) is *inherited* when the
source weight between the target neurons' most similar source neurons,
``n1' = argmax_p S_i[p, n1]`` and ``n2' = argmax_p S_j[p, n2]``, is an important source
weight. A target neuron whose attribution vector is all zero has no most similar source
neuron (its column of ``S`` is all zero), so its weights never correspond.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = [
    "cosine_similarity_matrix",
    "pearson_similarity_matrix",
    "similarity_matrix",
    "SIMILARITIES",
    "MATCHINGS",
    "match_sources",
    "own_index_recovery",
    "correspondence_from_matches",
    "correspondence_matrix_from_matches",
    "correspondence_null",
    "top_similar",
    "most_similar_source",
    "weight_correspondence",
    "correspondence_matrix",
    "correspondence_share",
    "SimilarityRegions",
    "similarity_regions",
    "DEFAULT_SIMILARITY_BINS",
]

#: Fixed histogram edges for cosine similarities: 20 bins of width 0.1 over [-1, 1], so the
#: histograms of every class, layer and region are comparable.
DEFAULT_SIMILARITY_BINS = np.linspace(-1.0, 1.0, 21)


def cosine_similarity_matrix(a_src: np.ndarray, a_tgt: np.ndarray) -> np.ndarray:
    """Cosine similarity of every source neuron with every target neuron.

    Args:
        a_src: ``(M, Ns)`` source-model attributions on the M target instances.
        a_tgt: ``(M, Nt)`` target-model attributions on the same instances, same order.

    Returns:
        ``(Ns, Nt)`` float32 in ``[-1, 1]``; a pair involving an all-zero column is 0
        (never NaN), and so is everything when ``M == 0``.
    """
    src = np.asarray(a_src, dtype=np.float64)
    tgt = np.asarray(a_tgt, dtype=np.float64)
    if src.ndim != 2 or tgt.ndim != 2:
        raise ValueError(f"attribution matrices must be 2-D, got {src.shape} and {tgt.shape}")
    if src.shape[0] != tgt.shape[0]:
        raise ValueError(f"source and target attributions cover different instances: "
                         f"{src.shape[0]} vs {tgt.shape[0]} rows")
    if not (np.isfinite(src).all() and np.isfinite(tgt).all()):
        raise ValueError("attributions contain NaN or infinity")
    # Scale by the column norms first (float64) so huge conductances cannot overflow and
    # zero columns simply stay zero.
    ns = np.linalg.norm(src, axis=0)
    nt = np.linalg.norm(tgt, axis=0)
    src_u = np.divide(src, ns, out=np.zeros_like(src), where=ns > 0)
    tgt_u = np.divide(tgt, nt, out=np.zeros_like(tgt), where=nt > 0)
    s = src_u.T @ tgt_u
    return np.clip(s, -1.0, 1.0).astype(np.float32)


#: ``analysis.similarity`` choices: the paper's raw cosine, or Pearson's r (the cosine of the
#: mean-centred columns). Max-conductance of conv neurons is never negative, so raw cosines all sit
#: high (0.6-0.9 on the demo) and mostly say "both neurons are active on the class"; centring
#: compares how the two neurons *vary* over the instances instead.
SIMILARITIES = ("cosine", "pearson")
#: ``analysis.matching`` choices (see :func:`match_sources`).
MATCHINGS = ("best", "one_to_one", "same_index")


def pearson_similarity_matrix(a_src: np.ndarray, a_tgt: np.ndarray) -> np.ndarray:
    """Pearson correlation of every source neuron with every target neuron over the instances.

    Args: as :func:`cosine_similarity_matrix`.

    Returns:
        ``(Ns, Nt)`` float32 in ``[-1, 1]``; a pair involving a constant column is 0.
    """
    src = np.asarray(a_src, dtype=np.float64)
    tgt = np.asarray(a_tgt, dtype=np.float64)
    if src.ndim != 2 or tgt.ndim != 2:
        raise ValueError(f"attribution matrices must be 2-D, got {src.shape} and {tgt.shape}")
    # centring makes a constant column all zero, which the cosine maps to 0 (never NaN)
    return cosine_similarity_matrix(src - src.mean(axis=0) if len(src) else src,
                                    tgt - tgt.mean(axis=0) if len(tgt) else tgt)


def similarity_matrix(a_src: np.ndarray, a_tgt: np.ndarray, kind: str = "cosine") -> np.ndarray:
    """``(Ns, Nt)`` similarity of the chosen ``kind`` (:data:`SIMILARITIES`)."""
    if kind == "cosine":
        return cosine_similarity_matrix(a_src, a_tgt)
    if kind == "pearson":
        return pearson_similarity_matrix(a_src, a_tgt)
    raise ValueError(f"similarity must be one of {SIMILARITIES}, got {kind!r}")


def match_sources(s: np.ndarray, matching: str = "best") -> np.ndarray:
    """The source neuron each target neuron is matched to.

    * ``best`` (the paper): the most similar source neuron (:func:`most_similar_source`); many target
      neurons may share one source neuron.
    * ``one_to_one``: the assignment maximising the summed similarity, each source neuron used at most
      once (Hungarian algorithm, ``scipy.optimize.linear_sum_assignment``); with fewer source than target
      neurons the unassigned targets get -1.
    * ``same_index``: each target neuron is matched to the source neuron of its own index. Valid only
      because the target model is fine-tuned from the source model (same architecture, neurons keep
      their positions); indices past the source's neuron count get -1.

    A target neuron whose similarity column is all zero (no attribution) is -1 under ``best`` and
    ``one_to_one`` (no defined neighbour), as in the paper's rule.

    Returns:
        ``(Nt,)`` int64 row indices or -1.
    """
    arr = np.asarray(s, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"similarity matrix must be 2-D, got shape {arr.shape}")
    ns, nt = arr.shape
    if matching == "best":
        return most_similar_source(arr)
    if matching == "same_index":
        idx = np.arange(nt, dtype=np.int64)
        idx[idx >= ns] = -1
        return idx
    if matching != "one_to_one":
        raise ValueError(f"matching must be one of {MATCHINGS}, got {matching!r}")
    from scipy.optimize import linear_sum_assignment

    out = np.full(nt, -1, dtype=np.int64)
    if ns and nt:
        rows, cols = linear_sum_assignment(arr, maximize=True)
        out[cols] = rows
        out[~np.any(arr != 0, axis=0)] = -1
    return out


def own_index_recovery(matches: np.ndarray) -> float | None:
    """Share of the target neurons matched to the source neuron of their own index (None: no neurons).

    With a fine-tuned target this is the share of neurons whose identity the matching recovers."""
    m = np.asarray(matches, dtype=np.int64).reshape(-1)
    return float((m == np.arange(len(m))).mean()) if len(m) else None


def correspondence_from_matches(tgt_pairs: np.ndarray, src_important_pairs: np.ndarray, match_i: np.ndarray,
                                match_j: np.ndarray, ns_i: int, ns_j: int) -> np.ndarray:
    """Whether each target weight ``n1 -> n2`` corresponds: the source weight between its ends' matched
    source neurons ``match_i[n1] -> match_j[n2]`` is important (the paper's rule, for any matching).

    Args:
        tgt_pairs: ``(K, 2)`` target weights ``(n1, n2)``.
        src_important_pairs: ``(L, 2)`` important source weights ``(n1', n2')``.
        match_i, match_j: ``(Nt_i,)``, ``(Nt_j,)`` matched source neuron of every target neuron, -1 for none.
        ns_i, ns_j: source neuron counts of layers i and j.

    Returns:
        ``(K,)`` bool.
    """
    tgt = _pairs(tgt_pairs, "tgt_pairs")
    if tgt.size == 0:
        return np.zeros(0, dtype=bool)
    m1, m2 = _matched_ends(tgt, match_i, match_j)
    mask = _important_mask(src_important_pairs, ns_i, ns_j)
    defined = (m1 >= 0) & (m2 >= 0)
    out = np.zeros(len(tgt), dtype=bool)
    out[defined] = mask[m2[defined], m1[defined]]
    return out


def _matched_ends(tgt: np.ndarray, match_i: np.ndarray, match_j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mi, mj = np.asarray(match_i, dtype=np.int64), np.asarray(match_j, dtype=np.int64)
    if tgt[:, 0].max() >= len(mi) or tgt[:, 1].max() >= len(mj) or tgt.min() < 0:
        raise ValueError("tgt_pairs index a neuron outside the matchings")
    return mi[tgt[:, 0]], mj[tgt[:, 1]]


def correspondence_null(tgt_pairs: np.ndarray, src_important_pairs: np.ndarray, match_i: np.ndarray,
                        match_j: np.ndarray, ns_i: int, ns_j: int, n_permutations: int = 200,
                        rng: np.random.Generator | int | None = None) -> np.ndarray:
    """Correspondence shares with the source neuron labels shuffled: the chance level of a share.

    Each permutation relabels the source neurons of layer i and of layer j independently (uniformly at
    random) and recomputes the share: the matching's structure (how many target neurons collapse onto
    one source neuron, which target weights share an end) is kept and only *which* source neurons they
    land on is random, so a share above this null says the matching finds the right neurons, not just
    that important source weights are dense. The share is a mean of lookups, so all permutations are
    vectorised gathers, one per permutation (~1.5 ms for 168 k weights of a 4096 x 4096 pair).

    Returns:
        ``(n_permutations,)`` float64 shares (empty when there are no target weights).
    """
    tgt = _pairs(tgt_pairs, "tgt_pairs")
    n_perm = int(n_permutations)
    if tgt.size == 0 or n_perm <= 0:
        return np.zeros(0, dtype=np.float64)
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    m1, m2 = _matched_ends(tgt, match_i, match_j)
    defined = (m1 >= 0) & (m2 >= 0)
    # target weights whose ends land on the same source pair always hit or miss together: one lookup each,
    # weighted by how many there are (the paper's best matching collapses many neurons onto a few)
    pair_key, weight = np.unique(m1[defined] * ns_j + m2[defined], return_counts=True)
    u1, inv1 = np.unique(pair_key // ns_j, return_inverse=True)  # only the distinct matched neurons move
    u2, inv2 = np.unique(pair_key % ns_j, return_inverse=True)
    # the mask as bits: 8x smaller, so the random lookups stay in cache (~40% faster at 4096 x 4096)
    packed = np.packbits(_important_mask(src_important_pairs, ns_i, ns_j).reshape(-1))
    dt = np.int32 if ns_i * ns_j < 2**31 else np.int64
    # all relabellings drawn at once (P x neurons, a few MB at 4096 neurons)
    perm_i = gen.permuted(np.tile(np.arange(ns_i, dtype=dt), (n_perm, 1)), axis=1)[:, u1]
    perm_j = gen.permuted(np.tile(np.arange(ns_j, dtype=dt), (n_perm, 1)), axis=1)[:, u2]
    hits = np.zeros(n_perm, dtype=np.int64)
    weighted = bool(len(weight)) and int(weight.max()) > 1
    inv1, inv2 = inv1.astype(np.intp), inv2.astype(np.intp)
    # one permutation at a time: its K lookups fit in cache, which a (P, K) gather does not (4-6x slower)
    for p in range(n_perm):
        flat = np.take(perm_j[p], inv2) * dt(ns_i) + np.take(perm_i[p], inv1)
        bits = np.take(packed, flat >> 3) & (np.uint8(128) >> (flat & 7).astype(np.uint8))
        hits[p] = int(weight[bits != 0].sum()) if weighted else np.count_nonzero(bits)
    return hits / len(tgt)


def top_similar(s: np.ndarray, k: int = 5, axis: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most similar neurons of the other model, for every neuron.

    Args:
        s: ``(Ns, Nt)`` similarity matrix.
        k: neighbours per neuron; clipped to the other model's neuron count.
        axis: ``1``: for each source neuron (row) its most similar target neurons;
            ``0``: for each target neuron (column) its most similar source neurons.

    Returns:
        ``(indices, values)``, both ``(n, k)`` (``n = Ns`` for axis 1, ``Nt`` for axis 0),
        most similar first, ties by the lower index; indices int64, values float32.
    """
    arr = np.asarray(s, dtype=np.float32)
    if arr.ndim != 2:
        raise ValueError(f"similarity matrix must be 2-D, got shape {arr.shape}")
    if axis not in (0, 1):
        raise ValueError(f"axis must be 0 or 1, got {axis}")
    rows = np.ascontiguousarray(arr if axis == 1 else arr.T)
    n, m = rows.shape
    kk = max(0, min(int(k), m))
    if kk == 0 or kk == m or n == 0:
        # A stable sort on the negated values keeps lower indices first among ties.
        idx = np.argsort(-rows, axis=1, kind="stable")[:, :kk].astype(np.int64)
        return idx, np.take_along_axis(rows, idx, axis=1).astype(np.float32)
    # A full sort of every row is O(m log m) a row: ~3.5 s a 4096 x 4096 matrix, most of a class's
    # share of the compare stage. Partitioning finds the k largest in O(m); only their order is sorted.
    part = np.argpartition(-rows, kk - 1, axis=1)[:, :kk]
    vals = np.take_along_axis(rows, part, axis=1)
    # (value descending, index ascending): the same answer as the stable sort ...
    order = np.lexsort((part, -vals), axis=1)
    idx = np.take_along_axis(part, order, axis=1).astype(np.int64)
    # ... unless the k-th value is tied with a value outside the k (the partition may have kept a
    # higher index of the tie): those rows are sorted whole, as before.
    kth = np.take_along_axis(rows, idx[:, -1:], axis=1)
    tied = np.flatnonzero((rows >= kth).sum(axis=1) > kk)
    if len(tied):
        idx[tied] = np.argsort(-rows[tied], axis=1, kind="stable")[:, :kk]
    return idx, np.take_along_axis(rows, idx, axis=1).astype(np.float32)


def most_similar_source(s: np.ndarray) -> np.ndarray:
    """For every target neuron (column) the most similar source neuron.

    Args:
        s: ``(Ns, Nt)`` similarity matrix.

    Returns:
        ``(Nt,)`` int64 row indices (ties: lower index); -1 where the column is all zero,
        i.e. the target neuron had no attribution (no defined neighbour).
    """
    arr = np.asarray(s)
    if arr.ndim != 2:
        raise ValueError(f"similarity matrix must be 2-D, got shape {arr.shape}")
    if arr.shape[0] == 0:
        return np.full(arr.shape[1], -1, dtype=np.int64)
    best = np.argmax(arr, axis=0).astype(np.int64)
    best[~np.any(arr != 0, axis=0)] = -1
    return best


def _pairs(p: np.ndarray | Sequence, name: str) -> np.ndarray:
    arr = np.asarray(p, dtype=np.int64)
    if arr.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name} must have shape (K, 2) of (n1, n2), got {arr.shape}")
    return arr


def _important_mask(src_important_pairs: np.ndarray, ns_i: int, ns_j: int) -> np.ndarray:
    """``(ns_j, ns_i)`` bool: True at ``[n2', n1']`` for every important source weight."""
    pairs = _pairs(src_important_pairs, "src_important_pairs")
    mask = np.zeros((ns_j, ns_i), dtype=bool)
    if pairs.size:
        if pairs[:, 0].max() >= ns_i or pairs[:, 1].max() >= ns_j or pairs.min() < 0:
            raise ValueError("src_important_pairs index a neuron outside the similarity matrices")
        mask[pairs[:, 1], pairs[:, 0]] = True
    return mask


def weight_correspondence(tgt_pairs: np.ndarray, src_important_pairs: np.ndarray,
                          s_i: np.ndarray, s_j: np.ndarray) -> np.ndarray:
    """Whether each target weight has an important source counterpart.

    Args:
        tgt_pairs: ``(K, 2)`` target weights as ``(n1, n2)`` (layer i neuron, layer j neuron).
        src_important_pairs: ``(L, 2)`` important source weights as ``(n1', n2')``.
        s_i: ``(Ns_i, Nt_i)`` similarity of layer i (rows source, columns target).
        s_j: ``(Ns_j, Nt_j)`` similarity of layer j.

    Returns:
        ``(K,)`` bool.
    """
    tgt = _pairs(tgt_pairs, "tgt_pairs")
    s_i, s_j = np.asarray(s_i), np.asarray(s_j)
    if tgt.size == 0:
        return np.zeros(0, dtype=bool)
    if tgt[:, 0].max() >= s_i.shape[1] or tgt[:, 1].max() >= s_j.shape[1] or tgt.min() < 0:
        raise ValueError("tgt_pairs index a neuron outside the similarity matrices")
    mask = _important_mask(src_important_pairs, s_i.shape[0], s_j.shape[0])
    n1p = most_similar_source(s_i)[tgt[:, 0]]
    n2p = most_similar_source(s_j)[tgt[:, 1]]
    defined = (n1p >= 0) & (n2p >= 0)
    out = np.zeros(tgt.shape[0], dtype=bool)
    out[defined] = mask[n2p[defined], n1p[defined]]
    return out


def correspondence_matrix(src_important_pairs: np.ndarray, s_i: np.ndarray, s_j: np.ndarray,
                          matching: str = "best") -> np.ndarray:
    """Correspondence of *every* target weight, for the boxplots' pie glyphs and red dots.

    Args:
        src_important_pairs: ``(L, 2)`` important source weights as ``(n1', n2')``.
        s_i: ``(Ns_i, Nt_i)`` similarity of layer i.
        s_j: ``(Ns_j, Nt_j)`` similarity of layer j.
        matching: how target neurons are matched to source neurons (:func:`match_sources`).

    Returns:
        ``(Nt_j, Nt_i)`` bool, indexed ``[n2, n1]`` like the weight matrices.
    """
    s_i, s_j = np.asarray(s_i), np.asarray(s_j)
    return correspondence_matrix_from_matches(src_important_pairs, match_sources(s_i, matching),
                                              match_sources(s_j, matching), s_i.shape[0], s_j.shape[0])


def correspondence_matrix_from_matches(src_important_pairs: np.ndarray, n1p: np.ndarray, n2p: np.ndarray,
                                       ns_i: int, ns_j: int) -> np.ndarray:
    """:func:`correspondence_matrix` from the matched source neuron of every target neuron (-1: none)."""
    mask = _important_mask(src_important_pairs, ns_i, ns_j)
    n1p, n2p = np.asarray(n1p, dtype=np.int64), np.asarray(n2p, dtype=np.int64)
    out = mask[np.ix_(np.maximum(n2p, 0), np.maximum(n1p, 0))]
    out[n2p < 0, :] = False
    out[:, n1p < 0] = False
    return out


def correspondence_share(tgt_pairs: np.ndarray, src_important_pairs: np.ndarray,
                         s_i: np.ndarray, s_j: np.ndarray) -> float | None:
    """Share of the target weights that correspond to an important source weight.

    Args: as :func:`weight_correspondence`.

    Returns:
        A float in ``[0, 1]``, or ``None`` when there are no target weights (undefined;
        ``None`` rather than NaN so it serialises to JSON as ``null``).
    """
    corr = weight_correspondence(tgt_pairs, src_important_pairs, s_i, s_j)
    return float(corr.mean()) if corr.size else None


@dataclass(frozen=True)
class SimilarityRegions:
    """The four regions of a grouped similarity matrix (Figure 4 B).

    Attributes:
        block: ``(len(imp_src), len(imp_tgt))`` similarities of important x important
            neurons, rows/columns in the given (rank) order.
        hist_src_imp: histogram of important source x non-important target cells.
        hist_tgt_imp: histogram of non-important source x important target cells.
        hist_neither: histogram of non-important x non-important cells.
        bin_edges: shared edges (``len = bins + 1``).
    """

    block: np.ndarray
    hist_src_imp: np.ndarray
    hist_tgt_imp: np.ndarray
    hist_neither: np.ndarray
    bin_edges: np.ndarray


def similarity_regions(s: np.ndarray, imp_src: Sequence[int], imp_tgt: Sequence[int],
                       bins: int | np.ndarray = DEFAULT_SIMILARITY_BINS) -> SimilarityRegions:
    """Splits a similarity matrix into the view's important block and three histograms.

    Args:
        s: ``(Ns, Nt)`` similarity matrix.
        imp_src: important source neurons, in rank order.
        imp_tgt: important target neurons, in rank order.
        bins: histogram edges, or a bin count over ``[-1, 1]``.

    Returns:
        :class:`SimilarityRegions`.
    """
    arr = np.asarray(s, dtype=np.float32)
    if arr.ndim != 2:
        raise ValueError(f"similarity matrix must be 2-D, got shape {arr.shape}")
    ns, nt = arr.shape
    isrc = np.asarray(imp_src, dtype=np.int64).reshape(-1)
    itgt = np.asarray(imp_tgt, dtype=np.int64).reshape(-1)
    nsrc = np.setdiff1d(np.arange(ns), isrc)
    ntgt = np.setdiff1d(np.arange(nt), itgt)
    edges = np.linspace(-1.0, 1.0, int(bins) + 1) if np.ndim(bins) == 0 else np.asarray(bins, np.float64)

    def hist(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return np.histogram(arr[np.ix_(rows, cols)].reshape(-1), bins=edges)[0].astype(np.int64)

    return SimilarityRegions(
        block=arr[np.ix_(isrc, itgt)].copy(),
        hist_src_imp=hist(isrc, ntgt),
        hist_tgt_imp=hist(nsrc, itgt),
        hist_neither=hist(nsrc, ntgt),
        bin_edges=edges.astype(np.float64),
    )
