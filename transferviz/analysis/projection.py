"""t-SNE maps of the instance embeddings (paper section 5.2) with openTSNE.

* :func:`pca_features` -- PCA to at most 50 dimensions (seeded). Both maps work on these
  features; the build stage should cache them once so selection maps never redo the PCA.
* :func:`tsne_map` -- the global map of all instances: PCA, then openTSNE with PCA
  initialisation, exact neighbours below 1000 points and Annoy above, Barnes-Hut below
  10 000 points and FFT above (openTSNE's ``"auto"`` rules), all seeded.
* :func:`pixel_map` -- the same instances positioned by their raw pixels (issue 6, item 6):
  pixels pooled to at most 32 px a side, standardised, then :func:`tsne_map` with a
  shorter optimisation (see :data:`PIXEL_ITERATIONS`).
* :func:`selection_map` -- the map of the instances of a subset (one class). It does not
  start from scratch: the instances' positions in the global map are the initialisation
  (centred and rescaled to openTSNE's standard std of 1e-4, which keeps their arrangement
  but lets t-SNE choose the subset's own scale) and the embedding is refined for a short,
  exaggeration-free run on the subset's own affinities. Starting from a good layout makes
  the exaggeration phase unnecessary and keeps the subset's map visually consistent with the
  global map (no random rotation or mirroring).
* :func:`class_maps` -- :func:`selection_map` of every class (both domains), computed once by
  the build's ``classmaps`` stage so that the dashboard never runs a t-SNE in a request;
  :func:`cached_class_maps` reads them back from a built cache.

Determinism: everything is seeded; with ``n_jobs=1`` results are bit-identical between runs.
With ``n_jobs > 1`` Annoy's index build and the threaded gradients may differ in the last
bits (and then grow into visibly different but equally valid maps).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from transferviz.cache import Cache

__all__ = [
    "pca_features",
    "tsne_map",
    "pixel_map",
    "selection_map",
    "selection_iterations",
    "SELECTION_ITERATION_BUDGET",
    "CLASS_MAP_ITERATIONS",
    "CLASS_MAPS",
    "class_maps",
    "cached_class_maps",
    "tsne_methods",
]

#: Below this many points t-SNE is meaningless (perplexity would be < 1): PCA is used instead.
MIN_TSNE_POINTS = 5
#: openTSNE's ``"auto"`` rules (1.0): exact neighbours below this many points, Annoy's approximate ones above...
APPROX_NEIGHBOURS_FROM = 1_000
#: ...and Barnes-Hut gradients below this many, FFT-interpolated ones (linear in N per iteration) above.
FFT_GRADIENTS_FROM = 10_000


def tsne_methods(n: int) -> dict[str, str]:
    """What openTSNE's ``"auto"`` picks for ``n`` points, for a stage's notes: at 100k instances the maps are
    approximate twice over (Annoy neighbours, FFT gradients), which is what keeps them N log N."""
    return {"neighbours": "exact" if n < APPROX_NEIGHBOURS_FROM else "annoy (approximate)",
            "negative_gradient": "barnes-hut" if n < FFT_GRADIENTS_FROM else "fft (interpolated)"}


def pca_features(x: np.ndarray, pca_dims: int = 50, seed: int = 0) -> np.ndarray:
    """Reduces the features to at most ``pca_dims`` principal components.

    Args:
        x: ``(N, D)`` features (e.g. the embedding before the first linear layer).
        pca_dims: target dimension; no reduction when ``D <= pca_dims``.
        seed: seeds the randomized SVD.

    Returns:
        ``(N, min(D, pca_dims, N))`` float32 (centred when reduced).
    """
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim != 2:
        raise ValueError(f"features must be 2-D (N, D), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("features contain NaN or infinity")
    n, d = arr.shape
    if d <= pca_dims or n <= 1:
        return arr.copy()
    from sklearn.decomposition import PCA

    dims = min(pca_dims, n)
    return PCA(n_components=dims, random_state=seed).fit_transform(arr).astype(np.float32)


def _effective_perplexity(n: int, perplexity: float) -> float:
    # openTSNE uses 3 * perplexity neighbours, which must stay below n.
    return float(max(1.0, min(perplexity, (n - 1) / 3.0)))


def _tiny_layout(x: np.ndarray) -> np.ndarray:
    """Layout for fewer than MIN_TSNE_POINTS points: the first two principal components."""
    n = x.shape[0]
    out = np.zeros((n, 2), dtype=np.float32)
    if n <= 1:
        return out
    centred = x - x.mean(axis=0)
    u, s, _ = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
    k = min(2, s.size)
    out[:, :k] = (u[:, :k] * s[:k]).astype(np.float32)
    return out


def tsne_map(x: np.ndarray, seed: int = 0, pca_dims: int = 50, perplexity: float = 30,
             n_jobs: int = 1, *, early_exaggeration_iter: int = 250, n_iter: int = 500) -> np.ndarray:
    """Global t-SNE map of all instances.

    Args:
        x: ``(N, D)`` features.
        seed: seeds PCA, neighbour search and optimisation.
        pca_dims: PCA dimension before t-SNE.
        perplexity: lowered to ``(N - 1) / 3`` for small N.
        n_jobs: openTSNE threads (1 = bit-reproducible).
        early_exaggeration_iter, n_iter: optimisation lengths (defaults: openTSNE's own).

    Returns:
        ``(N, 2)`` float32; for ``N < 5`` the first two principal components instead.
    """
    from openTSNE import TSNE

    feats = pca_features(x, pca_dims, seed)
    n = feats.shape[0]
    if n < MIN_TSNE_POINTS:
        return _tiny_layout(feats)
    tsne = TSNE(perplexity=_effective_perplexity(n, perplexity), initialization="pca",
                random_state=seed, n_jobs=n_jobs, verbose=False,
                early_exaggeration_iter=early_exaggeration_iter, n_iter=n_iter)
    return np.asarray(tsne.fit(feats), dtype=np.float32)


#: Pixel map optimisation (early exaggeration, then normal iterations). A third of openTSNE's
#: 250 + 500: on the demo's 4797 digits the optimisation takes ~7.5 s instead of ~22 s (one thread), with the
#: same 10-NN label accuracy on the handwritten digits (0.978 vs 0.977) and the same share of
#: PCA-space neighbours kept (0.44): the PCA initialisation already holds the global layout.
PIXEL_ITERATIONS: tuple[int, int] = (100, 150)
#: Larger images are block-averaged down to at most this many pixels a side before the PCA
#: (224 px Office-31 photos would otherwise need a 150 528-column float matrix).
PIXEL_MAX_SIDE = 32


def _pooled_pixels(images: np.ndarray, max_side: int, chunk: int = 1024) -> np.ndarray:
    """``(N, D)`` float32 pixels, block-averaged so no side exceeds ``max_side`` (chunked: the
    uint8 stack may be memory-mapped and large). Written into one preallocated array rather than
    concatenated from chunks: at 100k 28 px images the float32 matrix is 0.94 GB, and the chunk list
    plus its concatenation held twice that."""
    n = len(images)
    if n == 0:
        return np.zeros((0, 0), dtype=np.float32)
    h, w = images.shape[1], images.shape[2]
    f = max(1, -(-max(h, w) // max_side))  # ceil: the smallest integer factor that fits
    hh, ww = h // f, w // f
    out: np.ndarray | None = None
    for i in range(0, n, chunk):
        block = np.asarray(images[i:i + chunk], dtype=np.float32)
        if f > 1:
            block = block[:, :hh * f, :ww * f].reshape(len(block), hh, f, ww, f, -1).mean(axis=(2, 4))
        flat = block.reshape(len(block), -1)
        if out is None:
            out = np.empty((n, flat.shape[1]), dtype=np.float32)
        out[i:i + len(flat)] = flat
    assert out is not None
    return out


def pixel_map(images: np.ndarray, seed: int = 0, perplexity: float = 30, pca_dims: int = 50, n_jobs: int = 1,
              max_side: int = PIXEL_MAX_SIDE, iterations: tuple[int, int] = PIXEL_ITERATIONS) -> np.ndarray:
    """t-SNE map of instances positioned by their raw pixels (what the network starts from).

    Args:
        images: ``(N, H, W[, C])`` images (uint8 or float; may be memory-mapped).
        seed, perplexity, pca_dims, n_jobs: as for :func:`tsne_map`.
        max_side: block-average larger images down to this many pixels a side.
        iterations: ``(early exaggeration, normal)`` openTSNE iterations.

    Returns:
        ``(N, 2)`` float32, row i = image i. Each pixel column is standardised (zero mean,
        unit variance; constant columns become 0) so that every pixel weighs the same in the PCA.
    """
    x = _pooled_pixels(np.asarray(images) if not hasattr(images, "shape") else images, max_side)
    if len(x) == 0:
        return np.zeros((0, 2), dtype=np.float32)
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    if not (std > 0).any():  # all images identical: nothing to lay out (t-SNE would divide by 0)
        return np.zeros((len(x), 2), dtype=np.float32)
    x -= mean
    x /= np.where(std > 0, std, 1.0).astype(np.float32)
    ee, it = iterations
    return tsne_map(x, seed=seed, pca_dims=pca_dims, perplexity=perplexity, n_jobs=n_jobs,
                    early_exaggeration_iter=ee, n_iter=it)


#: Point-iterations one selection map may spend (issue 13: a class-selection map of up to 5,000 instances
#: in under 2 s): up to 2,500 instances get the full ``n_iter``, 5,000 half of it (~1.1 CPU-s for the
#: optimisation and ~0.5 for the affinities; benchmarks/dashboard_scale.py measures it). The map starts
#: from the global map's positions, so a shorter refinement keeps the global neighbourhoods, spread less.
SELECTION_ITERATION_BUDGET = 250_000
#: The fewest refinement iterations, whatever the size (beyond ~25,000 instances the budget is exceeded).
MIN_SELECTION_ITERATIONS = 10
#: Up to this many instances the neighbours are searched exactly (scikit-learn): faster than building an
#: Annoy index there (5,000 x 50 PCA dims: 1.9 s against 6.6 s on a loaded 2-core machine) and exact.
EXACT_KNN_MAX = 5_000


def selection_iterations(n: int, n_iter: int = 100, budget: int = SELECTION_ITERATION_BUDGET) -> int:
    """Refinement iterations of a selection map of ``n`` instances: ``n_iter``, fewer when ``n * n_iter``
    exceeds ``budget`` point-iterations, never below :data:`MIN_SELECTION_ITERATIONS` (nor above ``n_iter``)."""
    return int(min(n_iter, max(MIN_SELECTION_ITERATIONS, budget // max(int(n), 1))))


def selection_map(x_subset: np.ndarray, init_positions: np.ndarray, seed: int = 0, *,
                  perplexity: float = 30, n_iter: int = 100, pca_dims: int = 50,
                  n_jobs: int = 1, budget: int = SELECTION_ITERATION_BUDGET) -> np.ndarray:
    """t-SNE map of a subset (the selected classes), refined from its global-map positions.

    Args:
        x_subset: ``(n, D)`` features of the subset -- preferably the cached
            :func:`pca_features` rows (otherwise a PCA of the subset is done here).
        init_positions: ``(n, 2)`` the same instances' positions in the global map.
        seed: seeds the neighbour search and optimisation.
        perplexity: lowered to ``(n - 1) / 3`` for small subsets.
        n_iter: refinement iterations (no early exaggeration), at most; fewer for a large subset
            (:func:`selection_iterations` with ``budget`` point-iterations).
        pca_dims: PCA dimension if ``x_subset`` is wider.
        n_jobs: openTSNE threads.
        budget: see :data:`SELECTION_ITERATION_BUDGET`.

    Returns:
        ``(n, 2)`` float32; for ``n < 5`` the centred initial positions.
    """
    from openTSNE import TSNEEmbedding
    from openTSNE.affinity import PerplexityBasedNN

    feats = pca_features(x_subset, pca_dims, seed)
    init = np.asarray(init_positions, dtype=np.float64)
    n = feats.shape[0]
    if init.shape != (n, 2):
        raise ValueError(f"init_positions must have shape ({n}, 2), got {init.shape}")
    if not np.isfinite(init).all():
        raise ValueError("init_positions contain NaN or infinity")
    init = init - init.mean(axis=0) if n else init
    if n < MIN_TSNE_POINTS:
        return init.astype(np.float32)
    if float(init.std()) == 0.0:
        # All global positions equal (degenerate): spread them deterministically.
        init = np.random.default_rng(seed).normal(size=init.shape)
    # openTSNE's rescale(): one factor for both axes (aspect kept), std of x-axis -> 1e-4.
    ref = float(init[:, 0].std()) or float(init.std())
    init = init / ref * 1e-4
    affinities = PerplexityBasedNN(feats, perplexity=_effective_perplexity(n, perplexity),
                                   method="exact" if n <= EXACT_KNN_MAX else "auto",
                                   n_jobs=n_jobs, random_state=seed, verbose=False)
    # FFT above 1,000 points: at 5,000 it is ~30% faster than Barnes-Hut (1.06 against 1.49 CPU-s for 50
    # iterations), whose trees also deepen on the coincident points a selection may hold; openTSNE's
    # "auto" (Barnes-Hut below 10,000) is kept for smaller maps, so the demo's class maps do not change
    embedding = TSNEEmbedding(init, affinities, random_state=seed, n_jobs=n_jobs,
                              negative_gradient_method="fft" if n > 1_000 else "auto", verbose=False)
    embedding = embedding.optimize(selection_iterations(n, n_iter, budget), momentum=0.8, learning_rate="auto")
    return np.asarray(embedding, dtype=np.float32)


#: Refinement iterations of each class's map. 100 exaggeration-free iterations from the global positions
#: were the dashboard's request-time selection maps before this stage; on the demo's ten classes of ~480
#: instances all ten maps take ~5 s on one thread (the global map ~25 s).
CLASS_MAP_ITERATIONS = 100

#: The build's per-class maps: ``(N, 2)`` float32, row i = instance i's position in the map of its own class.
CLASS_MAPS = "analysis/class_tsne.npy"


def class_maps(features: np.ndarray, global_map: np.ndarray, labels: np.ndarray, seed: int = 0, *,
               perplexity: float = 30, n_iter: int = CLASS_MAP_ITERATIONS) -> np.ndarray:
    """One t-SNE map per class, all in one array.

    Each class's instances (both domains) get :func:`selection_map` on their own features,
    refined from their global-map positions. Every instance belongs to exactly one class, so
    the maps share one ``(N, 2)`` array: the rows of class ``c`` (``labels == c``) hold
    class ``c``'s map; maps of different classes share no coordinate frame.

    Args:
        features: ``(N, D)`` t-SNE input of every instance (the cached PCA features).
        global_map: ``(N, 2)`` the global map, the initialisation of each class's map.
        labels: ``(N,)`` integer class of every instance.
        seed, perplexity, n_iter: as for :func:`selection_map`.

    Returns:
        ``(N, 2)`` float32.
    """
    feats = np.asarray(features)
    init = np.asarray(global_map)
    labs = np.asarray(labels)
    if not (len(feats) == len(init) == len(labs)):
        raise ValueError(f"features, global_map and labels disagree in length: {len(feats)}, {len(init)}, {len(labs)}")
    out = np.zeros((len(labs), 2), dtype=np.float32)
    for c in np.unique(labs):
        rows = np.flatnonzero(labs == c)
        out[rows] = selection_map(feats[rows], init[rows], seed, perplexity=perplexity, n_iter=n_iter)
    return out


def cached_class_maps(cache: "Cache") -> np.ndarray | None:
    """The build's per-class maps (see :func:`class_maps`), memory-mapped; None for a cache
    built before the ``classmaps`` stage existed."""
    return cache.array(CLASS_MAPS) if cache.has(CLASS_MAPS) else None
