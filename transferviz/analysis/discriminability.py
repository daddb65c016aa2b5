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

__all__ = ["ALPHAS", "BASELINE_FEATURES", "BASELINE_WARN", "METHOD", "N_BOOTSTRAP", "N_PERMUTATIONS", "SATURATED",
           "N_STABILITY_NULL", "STABLE", "TOP_STABLE", "BaselineResult", "DiscriminabilityResult", "StabilityResult",
           "bootstrap_stability", "cv_rows",
           "domain_discriminability", "image_statistics", "project_active", "project_attributions",
           "discriminability_order", "ridge_coefficients", "stability_null", "trivial_baseline"]

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
#: Resamples of the bootstrap stability of u (issue 12: at least 100).
N_BOOTSTRAP = 100
#: Label shuffles of the stability's null (:func:`stability_null`; each costs a penalty search and a bootstrap).
N_STABILITY_NULL = 5
#: The "top" of the stability: the neurons with the largest ``|u|`` (the five the view checks).
TOP_STABLE = 5
#: The bootstrap's Gram matrices are built from every row's outer product at once up to this many
#: elements (rows x inputs^2, 128 MB of float64), in blocks of rows above it (:func:`_resampled_primal`).
PRIMAL_BLOCK_ELEMENTS = 2**24
#: A neuron whose stability is below this is unstable (the view greys it).
STABLE = 0.5
#: The trivial baseline's accuracy at or above which the view warns of a colour / intensity confound.
BASELINE_WARN = 0.9
#: The trivial baseline's per-image statistics, in the column order of :func:`image_statistics`.
BASELINE_FEATURES = ("mean_r", "mean_g", "mean_b", "std_r", "std_g", "std_b", "saturation")


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
        n_cv_instances: the rows behind the cross-validated accuracy and its null (``Ms + Mt``, fewer when
            a domain had more than ``cv_max_rows``).
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
    n_cv_instances: int = 0


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


def cv_rows(ms: int, mt: int, max_rows: int | None, seed: int) -> np.ndarray:
    """Rows of the stacked ``[source; target]`` matrix that the cross validation uses: all of them, or where a
    domain has more than ``max_rows``, a seeded sample of ``max_rows`` of its rows (in their order)."""
    rng = np.random.default_rng([seed, 13])
    parts = []
    for offset, m in ((0, ms), (ms, mt)):
        keep = np.arange(m) if max_rows is None or m <= max_rows else np.sort(rng.choice(m, max_rows, replace=False))
        parts.append(offset + keep)
    return np.concatenate(parts)


def domain_discriminability(a_src: np.ndarray, a_tgt: np.ndarray, folds: int = 10, seed: int = 0,
                            n_permutations: int = N_PERMUTATIONS,
                            cv_max_rows: int | None = None) -> DiscriminabilityResult:
    """Algorithm 1: how well each selected neuron's attributions separate the two domains.

    Args:
        a_src: ``(Ms, P)`` attributions of the P selected neurons on source instances.
        a_tgt: ``(Mt, P)`` attributions of the same neurons on target instances.
        folds: outer cross-validation folds (the paper uses 10); lowered to the smaller domain size.
        seed: seeds the fold shuffling and the label permutations.
        n_permutations: label shuffles of the permutation null (0: none).
        cv_max_rows: above this many rows in a domain, the nested cross validation and its permutation
            null run on a seeded sample of that many rows of the domain (:func:`cv_rows`); ``u``, the biplot
            and the penalty still use every row. The CV's cost is ~210 ridge fits of ``n x P^2`` each
            (10 folds x (19 permutations + 2)): 125 s a class at 10,000 rows and 38 inputs on a loaded
            2-core machine, against 21 s at 500. None: every row (the default).

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
    sub = cv_rows(ms, mt, cv_max_rows, seed)
    a_cv, labels_cv = (a, labels) if len(sub) == len(a) else (a[sub], labels[sub])
    n_cv_src = int((labels_cv == 0).sum())
    n_folds = int(min(folds, n_cv_src, len(sub) - n_cv_src))
    cv = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    nested = make_pipeline(StandardScaler(), _classifier())
    # the matrices are small (~55 x 938): BLAS threads only contend with each other (10x slower on a
    # busy 2-core machine), one thread is the fast way; the inputs were checked finite above, and the
    # ~200 fits of the nested CV and its null spend most of their time in sklearn's checks otherwise
    with threadpool_limits(limits=1, user_api="blas"), config_context(assume_finite=True,
                                                                      skip_parameter_validation=True):
        balanced = cross_val_score(nested, a_cv, labels_cv, cv=cv, scoring="balanced_accuracy")
        if n_permutations > 0:
            accuracy, null, p_value = permutation_test_score(nested, a_cv, labels_cv, cv=cv,
                                                             n_permutations=n_permutations,
                                                             random_state=seed, scoring="accuracy")
        else:
            accuracy = float(np.mean(cross_val_score(nested, a_cv, labels_cv, cv=cv, scoring="accuracy")))
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
        n_cv_instances=len(sub),
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


# --- bootstrap stability of u (issue 12, item 4) ---------------------------------------

@dataclass(frozen=True)
class StabilityResult:
    """Bootstrap stability of ``u``, per neuron (column of ``A``).

    Attributes:
        stability: ``(P,)`` share of resamples in which the neuron is among the ``top`` neurons by
            ``|u|`` *and* its ``u`` keeps the sign of the full-data ``u``.
        top_share: ``(P,)`` share of resamples in which it is among the ``top`` (either sign).
        sign_share: ``(P,)`` share of resamples in which its ``u`` keeps its sign.
        n_bootstrap: resamples drawn (0: none, the arrays are empty).
        top: the size of the top (``min(TOP_STABLE, P)``).
    """

    stability: np.ndarray
    top_share: np.ndarray
    sign_share: np.ndarray
    n_bootstrap: int
    top: int

    def n_top_stable(self, u: np.ndarray, threshold: float = STABLE) -> int:
        """How many of the ``top`` neurons of the full-data ``u`` have stability ``>= threshold``."""
        if self.n_bootstrap == 0 or self.top == 0:
            return 0
        order = np.argsort(-np.abs(np.asarray(u, dtype=np.float64)), kind="stable")[:self.top]
        return int((self.stability[order] >= threshold).sum())


def ridge_coefficients(x: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    """Coefficients of the binary ridge classifier with balanced class weights, for a batch of data sets.

    The closed form of ``sklearn.linear_model.RidgeClassifier(alpha, class_weight="balanced").fit(x[b], y)``
    (targets -1 / +1, weighted centring for the intercept, squared loss plus ``alpha |w|^2``), solved in the
    primal (``P x P``) or the dual (``n x n``) whichever is smaller, for every ``b`` at once.

    Args:
        x: ``(B, n, P)`` inputs (already standardised as the caller wants them).
        y: ``(n,)`` labels 0 / 1, the same for every ``b`` (a stratified bootstrap keeps the domain sizes).
        alpha: the ridge penalty.

    Returns:
        ``(B, P)`` coefficients; positive values point to label 1.
    """
    x = np.asarray(x, dtype=np.float64)
    lab = np.asarray(y).reshape(-1)
    t = np.where(lab == 1, 1.0, -1.0)
    n1 = float((lab == 1).sum())
    n0 = float(lab.size - n1)
    if n0 == 0 or n1 == 0:
        raise ValueError("ridge_coefficients needs both labels")
    sw = np.where(lab == 1, lab.size / (2.0 * n1), lab.size / (2.0 * n0))  # class_weight="balanced"
    xm = np.einsum("n,bnp->bp", sw, x) / sw.sum()
    root = np.sqrt(sw)
    xs = (x - xm[:, None, :]) * root[None, :, None]
    ys = (t - float(sw @ t) / sw.sum()) * root
    p, n = x.shape[2], x.shape[1]
    if p <= n:  # matmul, not einsum: batched BLAS
        gram = np.matmul(xs.transpose(0, 2, 1), xs) + alpha * np.eye(p)
        rhs = xs.transpose(0, 2, 1) @ ys
        return np.linalg.solve(gram, rhs[..., None])[..., 0]
    kern = np.matmul(xs, xs.transpose(0, 2, 1)) + alpha * np.eye(n)
    dual = np.linalg.solve(kern, np.broadcast_to(ys, (x.shape[0], n))[..., None])[..., 0]
    return (xs.transpose(0, 2, 1) @ dual[..., None])[..., 0]


def bootstrap_stability(a_src: np.ndarray, a_tgt: np.ndarray, u: np.ndarray, alpha: float,
                        n_bootstrap: int = N_BOOTSTRAP, seed: int = 0, top: int = TOP_STABLE) -> StabilityResult:
    """How stable Algorithm 1's top neurons are when the instances are resampled.

    Each resample draws the source rows and the target rows with replacement, each domain to its own
    size; step 1 (z-scores) is redone on the resample and the final ridge model refit with the full
    data's penalty ``alpha`` (in closed form, :func:`ridge_coefficients`; the penalty is not re-chosen:
    the question is how much u moves with the instances, not with the penalty search). Per neuron, the
    share of resamples in which it is among the ``top`` by ``|u|`` (the neurons the view checks) with
    the sign of the full-data ``u``: 1.0 for a neuron that always separates the domains the same way,
    near ``top / P`` or less for noise.

    Args:
        a_src: ``(Ms, P)`` attributions on the source instances.
        a_tgt: ``(Mt, P)`` on the target instances.
        u: ``(P,)`` the full-data discriminability (whose top and signs are checked).
        alpha: the full-data ridge penalty.
        n_bootstrap: resamples (0: none).
        seed: seeds the resampling.
        top: size of the top (capped at P).

    Returns:
        :class:`StabilityResult`.
    """
    src = np.asarray(a_src, dtype=np.float64)
    tgt = np.asarray(a_tgt, dtype=np.float64)
    ref = np.asarray(u, dtype=np.float64).reshape(-1)
    p = ref.size
    if src.shape[1:] != (p,) or tgt.shape[1:] != (p,):
        raise ValueError(f"a_src {src.shape} and a_tgt {tgt.shape} must have len(u) = {p} columns")
    k = min(int(top), p)
    if n_bootstrap <= 0 or p == 0 or len(src) < 2 or len(tgt) < 2:
        z = np.zeros(0)
        return StabilityResult(z, z.copy(), z.copy(), 0, k)
    ms, mt = len(src), len(tgt)
    a = np.vstack([src, tgt])
    labels = np.concatenate([np.zeros(ms, np.int8), np.ones(mt, np.int8)])
    rng = np.random.default_rng(seed)
    rows = np.concatenate([rng.integers(0, ms, (n_bootstrap, ms)), ms + rng.integers(0, mt, (n_bootstrap, mt))],
                          axis=1)
    from threadpoolctl import threadpool_limits

    # small matrices: BLAS threads only contend (100x slower on a busy 2-core machine), as in the classifier
    with threadpool_limits(limits=1, user_api="blas"):
        coefs = (_resampled_primal if p <= ms + mt else _resampled_kernel)(a, labels, rows, alpha)
    in_top = np.zeros((n_bootstrap, p), dtype=bool)
    if k > 0:
        best = np.argpartition(-np.abs(coefs), k - 1, axis=1)[:, :k]
        np.put_along_axis(in_top, best, True, axis=1)
    same_sign = (np.sign(coefs) == np.sign(ref)[None, :]) & (ref != 0)[None, :]
    return StabilityResult(stability=(in_top & same_sign).mean(axis=0), top_share=in_top.mean(axis=0),
                           sign_share=same_sign.mean(axis=0), n_bootstrap=int(n_bootstrap), top=k)


def stability_null(a_src: np.ndarray, a_tgt: np.ndarray, n_bootstrap: int = N_BOOTSTRAP,
                   n_permutations: int = N_STABILITY_NULL, seed: int = 0, top: int = TOP_STABLE,
                   threshold: float = STABLE) -> np.ndarray:
    """How many of the top neurons look stable when the domains do not differ at all: the null of
    :meth:`StabilityResult.n_top_stable`.

    The bootstrap reproduces the sample it resamples, chance structure included: on pure noise the
    largest ``|u|`` of 20 neurons keeps its place and sign in about half of the resamples, so ~2 of the
    top 5 pass ``STABLE`` with no domain difference at all. Each permutation shuffles the domain labels
    over the pooled rows (the domain sizes kept), chooses the penalty as the full model does (leave-one-out
    over ``ALPHAS``), refits ``u`` and counts the stable top neurons of its own bootstrap.

    Args:
        a_src, a_tgt: as :func:`bootstrap_stability`.
        n_bootstrap: resamples per permutation.
        n_permutations: label shuffles (0: an empty result).
        seed: seeds the shuffles and their resamples.
        top, threshold: as :meth:`StabilityResult.n_top_stable`.

    Returns:
        ``(n_permutations,)`` int64: the stable top count of each shuffle.
    """
    src = np.asarray(a_src, dtype=np.float64)
    tgt = np.asarray(a_tgt, dtype=np.float64)
    ms = len(src)
    a = np.vstack([src, tgt])
    if n_permutations <= 0 or n_bootstrap <= 0 or ms < 2 or len(tgt) < 2 or a.shape[1] == 0:
        return np.zeros(0, dtype=np.int64)
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng([seed, 12])
    out = np.zeros(n_permutations, dtype=np.int64)
    labels = np.concatenate([np.zeros(ms, np.int8), np.ones(len(a) - ms, np.int8)])
    for i in range(n_permutations):
        perm = a[rng.permutation(len(a))]
        with threadpool_limits(limits=1, user_api="blas"):
            clf = _classifier().fit(_standardise(perm), labels)
        u = np.asarray(clf.coef_, dtype=np.float64).reshape(-1)
        stab = bootstrap_stability(perm[:ms], perm[ms:], u, float(clf.alpha_), n_bootstrap,
                                   seed=int(rng.integers(2**31)), top=top)
        out[i] = stab.n_top_stable(u, threshold)
    return out


def _standardised_rows(a: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``(B, n, P)``: the resamples ``a[rows[b]]``, each z-scored over its own rows (as :func:`_standardise`)."""
    x = a[rows]
    mean = x.mean(axis=1, keepdims=True)
    std = x.std(axis=1, keepdims=True)
    return (x - mean) / np.where(std > _EPS * np.maximum(1.0, np.abs(mean)), std, 1.0)


def _resampled_direct(a: np.ndarray, labels: np.ndarray, rows: np.ndarray, alpha: float) -> np.ndarray:
    """Ridge coefficients of every resample from the resampled rows themselves (used when inputs outnumber
    instances: :func:`ridge_coefficients` then solves an ``n x n`` system each)."""
    n, p = rows.shape[1], a.shape[1]
    chunk = max(1, int(2e7 // max(1, n * p)))  # ~160 MB of float64 a chunk at most
    out = np.empty((len(rows), p))
    for lo in range(0, len(rows), chunk):
        out[lo:lo + chunk] = ridge_coefficients(_standardised_rows(a, rows[lo:lo + chunk]), labels, alpha)
    return out


def _resample_moments(a: np.ndarray, labels: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, ...]:
    """What both count-based solvers share: ``(a0, t, counts, w, total, abar, tbar, inv)`` -- the shift-free
    rows, the -1/+1 targets, each resample's count of each row, its ridge weights (count x balanced class
    weight) and their sums, weighted column means, weighted mean target, and ``1 / std`` of each resample's
    columns (0 for a constant column: its coefficient is 0, as with :func:`_standardise`)."""
    n = a.shape[0]
    t = np.where(labels == 1, 1.0, -1.0)
    sw = np.where(labels == 1, n / (2.0 * (labels == 1).sum()), n / (2.0 * (labels == 0).sum()))
    a0 = a - a.mean(axis=0)  # shift-free: keeps the moment sums below free of cancellation
    counts = np.zeros((len(rows), n))
    np.add.at(counts, (np.arange(len(rows))[:, None], rows), 1.0)
    mean = counts @ a0 / n  # z-score scale of each resample's columns (population std over its rows)
    std = np.sqrt(np.maximum(counts @ (a0 * a0) / n - mean * mean, 0.0))
    std = np.where(std > _EPS * np.maximum(1.0, np.abs(mean + a.mean(axis=0))), std, np.inf)
    w = counts * sw
    total = w.sum(axis=1, keepdims=True)
    return a0, t, counts, w, total, w @ a0 / total, (w @ t)[:, None] / total, 1.0 / std


def _resampled_kernel(a: np.ndarray, labels: np.ndarray, rows: np.ndarray, alpha: float) -> np.ndarray:
    """Ridge coefficients of every resample when inputs outnumber instances, from resample counts (the dual
    of :func:`_resampled_primal`): each resample's ``n x n`` kernel of its weighted-centred z-scores is one
    matrix product of the rows' outer products with the resample's squared column scales."""
    a0, t, _, w, total, abar, tbar, inv = _resample_moments(a, labels, rows)
    n, p = a0.shape
    v = inv * inv
    kern = np.zeros((len(rows), n, n))
    step = max(1, int(4e6 // (n * n)))  # columns per outer-product block (~32 MB)
    for lo in range(0, p, step):
        c = slice(lo, lo + step)
        outer = (a0[:, None, c] * a0[None, :, c]).reshape(n * n, -1)
        kern += (v[:, c] @ outer.T).reshape(-1, n, n)
    cross = (abar * v) @ a0.T  # (B, n): sum_p abar_p v_p a0_ip
    kern += -cross[:, :, None] - cross[:, None, :] + ((abar * abar * v).sum(axis=1))[:, None, None]
    root = np.sqrt(w)
    kern = kern * root[:, :, None] * root[:, None, :] + alpha * np.eye(n)
    gamma = root * np.linalg.solve(kern, (root * (t[None, :] - tbar))[..., None])[..., 0]
    return inv * (gamma @ a0 - gamma.sum(axis=1, keepdims=True) * abar)


def _resampled_primal(a: np.ndarray, labels: np.ndarray, rows: np.ndarray, alpha: float,
                      block_elements: int = PRIMAL_BLOCK_ELEMENTS) -> np.ndarray:
    """Ridge coefficients of every resample when instances outnumber inputs, from resample *counts*.

    The same result as :func:`ridge_coefficients` on :func:`_standardised_rows`, ~10x faster: a resample
    is a count ``c_i`` per original row, and the z-scores only rescale the centred columns (the ridge's
    weighted centring removes their shift), so the weighted Gram matrix and right-hand side of every
    resample are one matrix product of the counts with the rows' outer products. Above ``block_elements``
    (rows x inputs^2) that product is summed over blocks of rows, so memory stays bounded at 100k-instance
    scale; the sum's order then differs, so the result agrees to rounding (~1e-12 relative), not bitwise.
    """
    a0, t, _, w, total, abar, tbar, inv = _resample_moments(a, labels, rows)
    n, p = a0.shape
    if n * p * p <= block_elements:  # every row's outer product at once (the demo: 480 x 38^2, 5 MB)
        gram = (w @ (a0[:, :, None] * a0[:, None, :]).reshape(n, p * p)).reshape(-1, p, p)
    else:  # in row blocks: 10k rows of 400 inputs would otherwise be a 13 GB outer-product array
        step = max(1, block_elements // (p * p))
        flat = np.zeros((len(rows), p * p))
        for lo in range(0, n, step):
            blk = a0[lo:lo + step]
            flat += w[:, lo:lo + step] @ (blk[:, :, None] * blk[:, None, :]).reshape(len(blk), p * p)
        gram = flat.reshape(-1, p, p)
    gram -= total[:, :, None] * abar[:, :, None] * abar[:, None, :]
    rhs = (w * t) @ a0 - total * abar * tbar
    gram *= inv[:, :, None] * inv[:, None, :]
    gram += alpha * np.eye(p)
    return np.linalg.solve(gram, (rhs * inv)[..., None])[..., 0]


# --- trivial-feature baseline (issue 12, item 4) -----------------------------------------

@dataclass(frozen=True)
class BaselineResult:
    """The domain classifier of Algorithm 1 on per-image statistics instead of neurons.

    Attributes:
        status: ``"ok"`` or why not (as :class:`DiscriminabilityResult`).
        cv_accuracy: its nested cross-validated accuracy (the same procedure and folds as the neurons').
        cv_balanced_accuracy: the same as balanced accuracy.
        flagged: ``cv_accuracy >= BASELINE_WARN``: simple image statistics alone separate the domains.
    """

    status: str
    cv_accuracy: float | None
    cv_balanced_accuracy: float | None
    flagged: bool


def image_statistics(images: np.ndarray) -> np.ndarray:
    """Per image, the colour and intensity statistics of :data:`BASELINE_FEATURES`.

    Args:
        images: ``(N, H, W, 3)`` uint8 (or floats in 0..1) RGB images.

    Returns:
        ``(N, 7)`` float64: the mean and standard deviation of each channel (0..1) and the mean HSV
        saturation ``(max - min) / max`` over the pixels (0 where a pixel is black).
    """
    x = np.asarray(images)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"images must be (N, H, W, 3), got {x.shape}")
    x = x.astype(np.float64) / (255.0 if np.issubdtype(x.dtype, np.integer) else 1.0)
    flat = x.reshape(len(x), -1, 3)
    hi, lo = flat.max(axis=2), flat.min(axis=2)
    sat = np.divide(hi - lo, hi, out=np.zeros_like(hi), where=hi > 0)
    return np.concatenate([flat.mean(axis=1), flat.std(axis=1), sat.mean(axis=1, keepdims=True)], axis=1)


def trivial_baseline(images_src: np.ndarray, images_tgt: np.ndarray, folds: int = 10,
                     seed: int = 0) -> BaselineResult:
    """How well simple image statistics alone separate the domains: :func:`domain_discriminability`'s
    nested cross-validation (same classifier, folds and seed) on :func:`image_statistics` of the class's
    source and target images. An accuracy near the neurons' says the neurons need not be more than
    colour or brightness detectors to separate the domains.

    Args:
        images_src: ``(Ms, H, W, 3)`` the class's source images.
        images_tgt: ``(Mt, H, W, 3)`` its target images.
        folds: outer folds (as for the neurons).
        seed: the fold shuffling's seed (as for the neurons: the same folds).
    """
    res = domain_discriminability(image_statistics(images_src), image_statistics(images_tgt), folds=folds,
                                  seed=seed, n_permutations=0)
    acc = res.cv_accuracy
    return BaselineResult(res.status, acc, res.cv_balanced_accuracy, acc is not None and acc >= BASELINE_WARN)
