"""Domain discriminability of neurons (paper section 5.4.1, Algorithm 1) and its biplot (5.4.2).

Input: the Layer Conductance values of the P selected (important) neurons on the source
instances ``a_src (Ms, P)`` and on the target instances ``a_tgt (Mt, P)`` -- Algorithm 1's
matrix ``A`` is their vertical stack, with domain labels 0 (source) and 1 (target).

Steps (:func:`domain_discriminability`):

1. Standardise every column of ``A`` over all ``Ms + Mt`` rows (z-scores). Conductances of
   different layers differ by orders of magnitude; without this the SVM coefficients would
   measure scale, not discriminability. A constant column becomes all zero (not NaN) and
   gets a zero coefficient.
2. A regularised linear domain classifier, because the inputs (P important neurons, ~938 a
   class on an Office-31-shaped run) usually outnumber the instances (~55 a class): an
   unregularised linear model then separates *any* labelling of the rows, so its accuracy says
   nothing. We use ridge classification (``sklearn.linear_model.RidgeClassifierCV``: squared
   loss, L2 penalty, like the paper's L2 linear SVM a linear model whose weights are the
   discriminability; ``class_weight="balanced"`` because the domains often differ a lot in
   size) with its penalty chosen by *nested* cross validation: the inner loop is ridge's exact
   leave-one-out over ``ALPHAS`` on each outer training set, the outer loop a stratified k-fold
   (k = ``min(folds, smaller domain size)``; the scaler is refit inside every fold). Ridge was
   chosen over a logistic model for its closed-form leave-one-out (the whole nested procedure
   and its permutations take about a second per class and model at 938 x 55). The outer
   accuracy is set beside a *permutation null*: the same nested procedure with the domain
   labels shuffled ``n_permutations`` times (``sklearn.model_selection.permutation_test_score``:
   mean, 95th percentile, p-value). Flags: ``saturated`` (CV accuracy >= ``SATURATED``: a
   trivial cue may separate the domains, so a perfect classifier is expected, not a finding)
   and ``inputs_outnumber_instances`` (P > Ms + Mt). The final model is fit on all rows
   (penalty again by leave-one-out); ``u = coef_`` is the domain discriminability: ``u_p > 0``
   means a larger attribution of neuron p points to the *target* domain, ``|u_p|`` is how
   much the neuron separates the domains (heavily regularised weights are small: compare them
   with each other, not with a fixed threshold).
3. Biplot projection ``W = [u_hat, g'_hat]`` (P x 2): ``u_hat = u / |u|``; ``g`` is the first
   principal component of the standardised ``A`` and ``g'`` is ``g`` with its ``u_hat``
   component removed, normalised (the paper uses ``[u, g]``; orthonormal columns keep the
   plot undistorted). ``coords = A_std @ W``: the horizontal coordinate is the signed
   distance along the SVM normal, so the decision boundary is the vertical line
   ``x = boundary_x = -intercept / |u|``; the vertical axis shows the largest remaining
   variance. If ``g`` is parallel to ``u`` the next principal component is used.
4. Axes (biplot arrows): neuron p's arrow is its row ``W[p] = (u_p / |u|, g'_p)``, all
   multiplied by one common factor so the longest arrow spans 90 % of the largest
   ``|coords|``. One factor for all arrows keeps horizontal lengths proportional to
   ``|u_p|``, i.e. to the discriminability.

:func:`project_active` redoes step 3-4 for a subset of neurons of a result, and
:func:`project_attributions` for the raw attributions of a subset (the view projects the
instances on its checked neurons only, as section 5.4.2 says, from the cache's conductance).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

__all__ = ["ALPHAS", "METHOD", "N_PERMUTATIONS", "SATURATED", "DiscriminabilityResult", "domain_discriminability",
           "project_active", "project_attributions", "discriminability_order"]

_EPS = 1e-12
#: Ridge penalties the inner leave-one-out chooses from (on z-scored inputs; wide, because the
#: right penalty grows with the number of inputs).
ALPHAS = np.logspace(-2, 6, 17)
#: Label shuffles of the permutation null (19: a p-value resolution of 0.05 at ~1 s a class and model).
N_PERMUTATIONS = 19
#: A cross-validated accuracy at or above this is flagged "saturated".
SATURATED = 0.99
#: What the classifier is, in words, for the cache's summary and the view.
METHOD = "ridge classifier, penalty by nested CV (inner leave-one-out, outer stratified k-fold)"


@dataclass(frozen=True)
class DiscriminabilityResult:
    """Algorithm 1's result and the biplot geometry.

    Attributes:
        status: ``"ok"`` or a one-line reason why nothing was computed (then every array is
            empty and the scores are ``None``).
        cv_accuracy: mean cross-validated accuracy of the domain classifier.
        cv_balanced_accuracy: the same as balanced accuracy (robust to unequal domain sizes).
        n_folds: folds used.
        u: ``(P,)`` SVM coefficients on standardised attributions (domain discriminability).
        intercept: the SVM intercept.
        g: ``(P,)`` first principal component of the standardised ``A`` (sign: largest
            entry positive).
        projection: ``(P, 2)`` ``W = [u_hat, g'_hat]``.
        coords: ``(Ms + Mt, 2)`` ``A_std @ W``; rows are source instances then target ones.
        axes: ``(P, 2)`` biplot arrows, ``W`` times one common scale factor.
        labels: ``(Ms + Mt,)`` int8 domain labels, 0 = source, 1 = target.
        a_std: ``(Ms + Mt, P)`` float32 standardised attributions (for :func:`project_active`).
        boundary_x: horizontal position of the decision boundary in ``coords``.
        converged: always true for ridge (closed form); kept for caches and callers of the SVM version.
        null_mean: mean accuracy of the nested procedure over the label permutations.
        null_p95: its 95th percentile.
        p_value: ``(1 + #null >= accuracy) / (1 + n_permutations)``.
        n_permutations: label shuffles behind the null (0: none computed).
        alpha: the ridge penalty of the final model (leave-one-out over ``ALPHAS`` on all rows).
        n_inputs: P, the classifier's inputs.
        n_instances: ``Ms + Mt``.
        saturated: ``cv_accuracy >= SATURATED``.
        inputs_outnumber_instances: ``P > Ms + Mt``.
    """

    status: str
    cv_accuracy: float | None
    cv_balanced_accuracy: float | None
    n_folds: int
    u: np.ndarray
    intercept: float
    g: np.ndarray
    projection: np.ndarray
    coords: np.ndarray
    axes: np.ndarray
    labels: np.ndarray
    a_std: np.ndarray
    boundary_x: float
    converged: bool
    null_mean: float | None = None
    null_p95: float | None = None
    p_value: float | None = None
    n_permutations: int = 0
    alpha: float | None = None
    n_inputs: int = 0
    n_instances: int = 0
    saturated: bool = False
    inputs_outnumber_instances: bool = False


def _empty(status: str, n_inputs: int = 0, n_instances: int = 0) -> DiscriminabilityResult:
    z1 = np.zeros(0, dtype=np.float32)
    z2 = np.zeros((0, 2), dtype=np.float32)
    return DiscriminabilityResult(status, None, None, 0, z1, 0.0, z1.copy(), z2, z2.copy(), z2.copy(),
                                  np.zeros(0, dtype=np.int8), np.zeros((0, 0), dtype=np.float32), 0.0, True,
                                  n_inputs=n_inputs, n_instances=n_instances,
                                  inputs_outnumber_instances=n_inputs > n_instances)


def _standardise(a: np.ndarray) -> np.ndarray:
    mean = a.mean(axis=0)
    std = a.std(axis=0)
    centred = a - mean
    # Constant columns: centred values are exactly 0 already; dividing by 1 keeps them 0.
    return centred / np.where(std > _EPS * np.maximum(1.0, np.abs(mean)), std, 1.0)


def _principal_directions(a_std: np.ndarray) -> np.ndarray:
    """Principal axes (rows) of the already centred matrix, each with its largest entry positive."""
    if a_std.shape[0] == 0 or a_std.shape[1] == 0:
        return np.zeros((0, a_std.shape[1]))
    _, _, vt = np.linalg.svd(a_std, full_matrices=False)
    signs = np.sign(vt[np.arange(vt.shape[0]), np.argmax(np.abs(vt), axis=1)])
    signs[signs == 0] = 1.0
    return vt * signs[:, None]


def _biplot(a_std: np.ndarray, u: np.ndarray, pcs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Returns ``(W (P,2), coords (N,2), axes (P,2))`` for the given columns."""
    p = a_std.shape[1]
    norm_u = float(np.linalg.norm(u))
    u_hat = u / norm_u if norm_u > _EPS else np.zeros(p)
    g_hat = np.zeros(p)
    for pc in pcs:  # first principal direction not parallel to u
        resid = pc - (pc @ u_hat) * u_hat
        n = float(np.linalg.norm(resid))
        if n > 1e-6:
            g_hat = resid / n
            break
    w = np.stack([u_hat, g_hat], axis=1)
    coords = a_std @ w
    row_len = np.linalg.norm(w, axis=1)
    extent = float(np.abs(coords).max()) if coords.size else 0.0
    longest = float(row_len.max()) if row_len.size else 0.0
    scale = 0.9 * extent / longest if longest > _EPS and extent > _EPS else 1.0
    return w, coords, w * scale


def _classifier() -> Any:
    from sklearn.linear_model import RidgeClassifierCV

    # cv=None: the exact (generalised) leave-one-out over ALPHAS, the inner loop of the nested CV
    return RidgeClassifierCV(alphas=ALPHAS, class_weight="balanced")


def domain_discriminability(a_src: np.ndarray, a_tgt: np.ndarray, folds: int = 10, seed: int = 0,
                            n_permutations: int = N_PERMUTATIONS) -> DiscriminabilityResult:
    """Algorithm 1: how well each selected neuron's attributions separate the two domains.

    Args:
        a_src: ``(Ms, P)`` attributions of the P selected neurons on source instances.
        a_tgt: ``(Mt, P)`` attributions of the same neurons on target instances.
        folds: outer cross-validation folds (the paper uses 10); lowered to the smaller domain size.
        seed: seeds the fold shuffling and the label permutations.
        n_permutations: label shuffles of the permutation null (0: none).

    Returns:
        :class:`DiscriminabilityResult`; ``status != "ok"`` when P == 0 or a domain has fewer
        than 2 instances (cross validation needs two per class).
    """
    from sklearn import config_context
    from sklearn.model_selection import StratifiedKFold, cross_val_score, permutation_test_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    src = np.asarray(a_src, dtype=np.float64)
    tgt = np.asarray(a_tgt, dtype=np.float64)
    if src.ndim != 2 or tgt.ndim != 2 or src.shape[1] != tgt.shape[1]:
        raise ValueError(f"a_src and a_tgt must be (M, P) with the same P, got {src.shape} and {tgt.shape}")
    if not (np.isfinite(src).all() and np.isfinite(tgt).all()):
        raise ValueError("attributions contain NaN or infinity")
    ms, mt, p = src.shape[0], tgt.shape[0], src.shape[1]
    if p == 0:
        return _empty("no neurons selected", 0, ms + mt)
    if ms < 2 or mt < 2:
        which, count = ("source", ms) if ms < 2 else ("target", mt)
        return _empty(f"the {which} domain has {count} instance(s); at least 2 per domain are needed", p, ms + mt)

    a = np.vstack([src, tgt])
    labels = np.concatenate([np.zeros(ms, dtype=np.int8), np.ones(mt, dtype=np.int8)])
    a_std = _standardise(a)
    n_folds = int(min(folds, ms, mt))
    cv = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    nested = make_pipeline(StandardScaler(), _classifier())
    # the matrices are small (~55 x 938): BLAS threads only contend with each other (10x slower on a
    # busy 2-core machine), one thread is the fast way; the inputs were checked finite above, and the
    # ~200 fits of the nested CV and its null spend most of their time in sklearn's checks otherwise
    with threadpool_limits(limits=1, user_api="blas"), config_context(assume_finite=True,
                                                                      skip_parameter_validation=True):
        balanced = cross_val_score(nested, a, labels, cv=cv, scoring="balanced_accuracy")
        if n_permutations > 0:
            accuracy, null, p_value = permutation_test_score(nested, a, labels, cv=cv, n_permutations=n_permutations,
                                                             random_state=seed, scoring="accuracy")
        else:
            accuracy = float(np.mean(cross_val_score(nested, a, labels, cv=cv, scoring="accuracy")))
            null, p_value = np.zeros(0), None
        clf = _classifier().fit(a_std, labels)
        u = np.asarray(clf.coef_, dtype=np.float64).reshape(-1)  # binary: one row, or (P,) in some versions
        intercept = float(np.asarray(clf.intercept_).reshape(-1)[0])
        pcs = _principal_directions(a_std)
        w, coords, axes = _biplot(a_std, u, pcs)
    norm_u = float(np.linalg.norm(u))
    accuracy = float(accuracy)
    return DiscriminabilityResult(
        status="ok",
        cv_accuracy=accuracy,
        cv_balanced_accuracy=float(np.mean(balanced)),
        n_folds=n_folds,
        u=u.astype(np.float32),
        intercept=intercept,
        g=(pcs[0] if len(pcs) else np.zeros(p)).astype(np.float32),
        projection=w.astype(np.float32),
        coords=coords.astype(np.float32),
        axes=axes.astype(np.float32),
        labels=labels,
        a_std=a_std.astype(np.float32),
        boundary_x=-intercept / norm_u if norm_u > _EPS else 0.0,
        converged=True,
        null_mean=float(np.mean(null)) if len(null) else None,
        null_p95=float(np.percentile(null, 95)) if len(null) else None,
        p_value=float(p_value) if p_value is not None else None,
        n_permutations=int(len(null)),
        alpha=float(clf.alpha_),
        n_inputs=p,
        n_instances=ms + mt,
        saturated=accuracy >= SATURATED,
        inputs_outnumber_instances=p > ms + mt,
    )


def project_attributions(a: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The biplot of a subset of neurons from their raw attributions (the view's checked neurons).

    Args:
        a: ``(Ms + Mt, K)`` attributions of the K neurons on the class's instances (rows as
            in the result: source then target).
        u: ``(K,)`` their discriminability (the stored ``u`` of those neurons).

    Returns:
        ``(coords (Ms+Mt, 2), axes (K, 2))`` float32: step 1 (z-scores over the rows) and steps
        3-4 on these columns only (``g`` is the first principal component of these columns).
    """
    x = np.asarray(a, dtype=np.float64)
    w = np.asarray(u, dtype=np.float64).reshape(-1)
    if x.ndim != 2 or x.shape[1] != w.size:
        raise ValueError(f"a must be (M, K) with K = len(u) = {w.size}, got {x.shape}")
    if x.shape[1] == 0:
        return np.zeros((x.shape[0], 2), np.float32), np.zeros((0, 2), np.float32)
    x = np.nan_to_num(x)
    std = _standardise(x)
    _, coords, axes = _biplot(std, w, _principal_directions(std))
    return coords.astype(np.float32), axes.astype(np.float32)


def project_active(result: DiscriminabilityResult, active: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Biplot with only the ``active`` neurons (the view's checked rows; top five by default).

    Uses the stored ``u`` and the standardised attributions restricted to the active
    columns; ``g`` is recomputed as the first principal component of those columns.

    Args:
        result: an ``"ok"`` :class:`DiscriminabilityResult`.
        active: column indices (0..P-1) of the active neurons.

    Returns:
        ``(coords (Ms+Mt, 2), axes (len(active), 2))`` float32.
    """
    if result.status != "ok":
        return np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32)
    idx = np.asarray(active, dtype=np.int64).reshape(-1)
    if idx.size == 0:
        return np.zeros((result.a_std.shape[0], 2), np.float32), np.zeros((0, 2), np.float32)
    sub = result.a_std[:, idx].astype(np.float64)
    _, coords, axes = _biplot(sub, result.u[idx].astype(np.float64), _principal_directions(sub))
    return coords.astype(np.float32), axes.astype(np.float32)


def discriminability_order(u: np.ndarray, descending: bool = True) -> np.ndarray:
    """Order of the feature ranking list: by ``u`` value, ties by the lower column index.

    Args:
        u: ``(P,)`` discriminability values.
        descending: largest first (the view's default) or smallest first.

    Returns:
        ``(P,)`` int64 column indices.
    """
    arr = np.asarray(u, dtype=np.float64).reshape(-1)
    key = -arr if descending else arr
    return np.lexsort((np.arange(arr.size), key)).astype(np.int64)
