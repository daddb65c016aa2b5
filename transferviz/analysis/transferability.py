"""Transferability estimates: how well a source model should transfer to a target task, before fine-tuning.

Each takes the source model's view of the *target* training data only: its embedding (features) or its
predictions over its own (source) classes, and the target labels. Higher is better for all four.

LogME    You et al. 2021, "LogME: Practical Assessment of Pre-trained Models for Transfer Learning": per target
         class, the maximised log marginal evidence of Bayesian linear regression from the features to the
         class's one-hot column, divided by n; averaged over classes.
LEEP     Nguyen et al. 2020, "LEEP: A New Measure to Evaluate Transferability of Learned Representations": the
         mean log-likelihood of the target labels under the "expected empirical predictor" built from the
         source model's softmax over source classes.
NCE      Tran et al. 2019, "Transferability and Hardness of Supervised Classification Tasks": the negative
         conditional entropy -H(Y | Z) of the target labels Y given the source model's hard predictions Z.
H-score  Bao et al. 2019, "An Information-Theoretic Approach to Transferability in Task Transfer Learning":
         tr(cov(f)^+ cov(E[f | Y])) of the features f.

No package on PyPI implements these four (thuml's Transfer-Learning-Library has them in ``tllib.ranking`` but is
installed from its repository with a whole training framework, and its LogME stops MacKay's iteration at a 1%
change), so they are written here from the papers' definitions and tested against them in
tests/analysis/test_transferability.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from transferviz.errors import TransferVizError

__all__ = ["ESTIMATES", "logme", "leep", "nce", "h_score", "h_score_saturated", "transfer_estimates", "LogMEFit",
           "logme_class"]

#: The estimates' keys (as stored in the cache and returned by ``Cache.transfer_estimates``) and display names.
ESTIMATES: dict[str, str] = {"logme": "LogME", "leep": "LEEP", "nce": "NCE", "hscore": "H-score"}


def _labels(y: np.ndarray, n: int) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n:
        raise TransferVizError(f"labels must be a vector of {n} class indices, got shape {y.shape}")
    if n == 0:
        raise TransferVizError("no instances to estimate transferability on; the target training split is empty")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise TransferVizError("labels must be non-negative integer class indices")
    return y.astype(np.int64)


def _probabilities(prob: np.ndarray) -> np.ndarray:
    p = np.asarray(prob, dtype=np.float64)
    if p.ndim != 2:
        raise TransferVizError(f"source probabilities must be (instances, source classes), got shape {p.shape}")
    if np.any(p < 0) or not np.allclose(p.sum(1), 1.0, atol=1e-4):
        raise TransferVizError("source probabilities must be non-negative rows summing to 1 (a softmax output)")
    return p


# --- LEEP and NCE: from the source model's predictions ---------------------------------------------------

def leep(prob: np.ndarray, y: np.ndarray) -> float:
    """LEEP (Nguyen et al. 2020, eq. 1-2): with theta_i the source softmax of instance i over source classes z,
    P(y, z) = 1/n sum_i theta_i[z] [y_i = y], P(y | z) = P(y, z) / P(z), and
    LEEP = 1/n sum_i log sum_z P(y_i | z) theta_i[z]. At most 0; closer to 0 = better."""
    p = _probabilities(prob)
    y = _labels(y, len(p))
    k = int(y.max()) + 1
    joint = np.zeros((k, p.shape[1]))
    np.add.at(joint, y, p)
    joint /= len(p)
    pz = joint.sum(0)
    # a source class no instance gives any probability to has P(z) = 0 and weight 0 in every sum below
    cond = np.divide(joint, pz, out=np.zeros_like(joint), where=pz > 0)
    eep = np.einsum("iz,iz->i", p, cond[y])  # the expected empirical predictor's probability of the true label
    return float(np.mean(np.log(eep)))


def nce(pred: np.ndarray, y: np.ndarray) -> float:
    """NCE (Tran et al. 2019): -H(Y | Z) = sum_{y,z} P(y, z) log P(y | z), from the empirical joint distribution
    of the target labels Y and the source model's hard predictions Z. At most 0; closer to 0 = better."""
    z = np.asarray(pred)
    y = _labels(y, len(z))
    z = _labels(z, len(y))
    joint = np.zeros((int(y.max()) + 1, int(z.max()) + 1))
    np.add.at(joint, (y, z), 1.0)
    joint /= len(y)
    pz = joint.sum(0, keepdims=True)
    nz = joint > 0
    return float(np.sum(joint[nz] * np.log((joint / np.where(pz > 0, pz, 1.0))[nz])))


# --- H-score: from the features ----------------------------------------------------------------------------

def h_score(features: np.ndarray, y: np.ndarray) -> float:
    """H-score (Bao et al. 2019, Def. 2): tr(cov(f)^+ cov(E[f | Y])), E[f | Y] the class mean of each instance's
    class. The pseudo-inverse (as in the authors' code, cutoff 1e-15 of the largest eigenvalue) keeps it defined
    for a rank-deficient cov(f); both covariances' normalisations cancel. Between 0 and min(D, classes - 1).
    Uninformative with n <= D + 1 instances: the centred features then span every centred vector of the n
    instances, class means included, and any generic features score exactly classes - 1 (see
    :func:`h_score_saturated`).

    Computed in cov(f)'s eigenbasis: with eigenpairs (l_i, v_i) and the centred class means m_c of n_c
    instances, tr(cov(f)^+ cov(E[f|Y])) = sum_i sum_c n_c (m_c . v_i)^2 / l_i; with fewer instances than
    dimensions the same sum in F F^T's eigenbasis, sum_i sum_c n_c (mean over class c of u_i)^2."""
    f = _features(features)
    y = _labels(y, len(f))
    f = f - f.mean(0)
    _, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    onehot = np.zeros((len(f), len(counts)))
    onehot[np.arange(len(f)), inverse] = 1.0
    if f.shape[1] <= len(f):
        lam, v = _eigh(f.T @ f)
        means = (onehot.T @ f) / counts[:, None]  # (classes, D)
        share = np.divide(counts @ (means @ v) ** 2, lam, out=np.zeros_like(lam), where=lam > 0)
    else:  # F F^T has the same non-zero eigenvalues; its unit eigenvectors u_i need no 1 / l_i
        lam, u = _eigh(f @ f.T)
        share = counts @ ((onehot.T @ u) / counts[:, None]) ** 2
    keep = lam > lam.max() * 1e-15 if lam.size and lam.max() > 0 else np.zeros(len(lam), bool)
    return float(np.sum(share[keep]))


def h_score_saturated(n: int, d: int) -> bool:
    """Whether n instances of D-dimensional features are too few for the H-score to tell sources apart (it is
    classes - 1 for any generic features once n - 1 <= D)."""
    return n - 1 <= d


def _features(features: np.ndarray) -> np.ndarray:
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2:
        raise TransferVizError(f"features must be (instances, dimensions), got shape {f.shape}")
    if not np.all(np.isfinite(f)):
        raise TransferVizError("features contain NaN or infinite values; check the source model's embedding")
    return f


# --- LogME: from the features ------------------------------------------------------------------------------

@dataclass(frozen=True)
class LogMEFit:
    """One class's maximised evidence: ``evidence`` = log p(y | F, alpha, beta) / n at the maximum, and the
    prior precision ``alpha`` and noise precision ``beta`` there (``alpha`` inf: the features explain nothing
    of the class, the evidence's supremum is the noise-only model's)."""

    evidence: float
    alpha: float
    beta: float


class _Spectrum:
    """The eigenvalues ``sigma`` of F^T F (F the n x D features) on F's column space and the coordinates there
    (``project``), computed once and shared by every class's fit.

    From the eigendecomposition of the smaller of the two Gram matrices (F^T F or F F^T, as the LogME authors'
    code does), not an SVD of F: the Gram product parallelises well and the decomposition is of a
    min(n, D)-sized matrix, so 100k instances cost one pass over the features."""

    def __init__(self, f: np.ndarray) -> None:
        self.n, self.d = f.shape
        self._f = f
        if self.n >= self.d:
            sigma, self._v = _eigh(f.T @ f)
            self._u = None
        else:
            sigma, self._u = _eigh(f @ f.T)
        keep = sigma > sigma.max() * 1e-13 if sigma.size and sigma.max() > 0 else np.zeros(len(sigma), bool)
        self.sigma = np.where(keep, sigma, 0.0)  # rounding noise of a rank-deficient F is not a direction

    def project(self, y: np.ndarray) -> np.ndarray:
        """U^T y: y's coordinates along the left singular vectors of F (0 where F has no direction)."""
        if self._u is not None:
            return np.where(self.sigma > 0, self._u.T @ y, 0.0)
        s = np.sqrt(self.sigma)
        # U = F V S^-1 on F's rank
        return np.divide(self._v.T @ (self._f.T @ y), s, out=np.zeros_like(s), where=s > 0)


def _eigh(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (clipped at 0) and eigenvectors of the symmetric PSD matrix ``a``, on one BLAS thread: the
    LAPACK routine on two threads ran 100x slower on a shared, busy 2-core machine (threads waiting on each
    other), while one thread decomposes a 300 x 300 matrix in milliseconds."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        w, v = np.linalg.eigh(a)
    return np.clip(w, 0.0, None), v


#: The grid of log(alpha / beta) the profiled evidence is searched on, around log of F^T F's largest eigenvalue:
#: below it every direction is barely shrunk (the least-squares end), above it the weights vanish (noise only).
_GRID = np.linspace(-30.0, 25.0, 221)


def logme_class(spec: _Spectrum, y: np.ndarray) -> LogMEFit:
    """The maximised log evidence / n of Bayesian linear regression ``y = F w + e``, ``w ~ N(0, I / alpha)``,
    ``e ~ N(0, I / beta)``, the quantity LogME (You et al. 2021, eq. 2) averages over classes.

    The authors maximise it with MacKay's fixed-point updates from alpha = beta = 1, which can settle on a
    lower stationary point (seen with fewer instances than dimensions: it drifts to alpha -> inf while a
    higher interior maximum exists). Here beta is profiled out exactly instead (for a fixed ratio
    lambda = alpha / beta the best beta is n / (|y - F m|^2 + lambda m'm)), which leaves a function of
    lambda alone: searched on a log grid, then refined by Brent's method (scipy) between the best point's
    neighbours, so the result is the global maximum over the grid's range."""
    from scipy.optimize import minimize_scalar

    proj = spec.project(y)  # coordinates of y in the column space of F
    outside = max(float(y @ y - proj @ proj), 0.0)  # the part of |y|^2 no linear map of F can reach
    scale = np.log(max(float(spec.sigma.max()), 1e-300))

    def neg(log_lam: float) -> float:
        return -_profiled(spec, proj, outside, float(np.exp(log_lam)))[0]

    grid = scale + _GRID
    values = np.array([neg(g) for g in grid])
    best = int(np.argmin(values))
    if best == len(grid) - 1:  # still rising at the grid's end: the weights are worth nothing, the limit is
        n = spec.n               # the noise-only model, w = 0 and beta = n / |y|^2
        beta = n / float(y @ y)
        return LogMEFit(float((n / 2 * np.log(beta) - n / 2 * np.log(2 * np.pi) - n / 2) / n), np.inf, beta)
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    opt = minimize_scalar(neg, bounds=(lo, hi), method="bounded", options={"xatol": 1e-10})
    log_lam = float(opt.x) if opt.fun <= values[best] else float(grid[best])
    evidence, beta = _profiled(spec, proj, outside, float(np.exp(log_lam)))
    return LogMEFit(evidence / spec.n, float(np.exp(log_lam)) * beta, beta)


def _profiled(spec: _Spectrum, proj: np.ndarray, outside: float, lam: float) -> tuple[float, float]:
    """The log evidence maximised over beta for alpha = lam * beta, and that beta.

    log p(y | F, alpha, beta) = D/2 log alpha + n/2 log beta - n/2 log 2 pi - beta/2 |y - F m|^2 - alpha/2 m'm
    - 1/2 log |A| with A = alpha I + beta F^T F and m = beta A^-1 F^T y (LogME, eq. 2). With alpha = lam beta,
    m, |y - F m|^2 and m'm depend on lam alone and the log beta terms add up to n/2 log beta, so the best beta
    is n / E, E = |y - F m|^2 + lam m'm, and the evidence there is
    r/2 log lam + n/2 log(n / E) - n/2 - n/2 log 2 pi - 1/2 sum_i log(lam + sigma_i) over F^T F's r = min(n, D)
    eigenvalues sigma_i on the row space (the other D - r directions of A cancel against D/2 log alpha)."""
    n, sigma = spec.n, spec.sigma
    shrink = sigma / (lam + sigma)  # eigenvalues of beta F A^-1 F^T: how much of each direction the fit keeps
    res = outside + float(np.sum(((1 - shrink) * proj) ** 2))
    mm = float(np.sum(np.divide(shrink * shrink * proj * proj, sigma, out=np.zeros_like(sigma), where=sigma > 0)))
    energy = res + lam * mm
    if energy <= 0:
        raise TransferVizError("LogME: the features reproduce a class's labels exactly; the evidence has no "
                               "finite maximum (duplicate or leaked label features?)")
    r = len(sigma)
    evidence = (r / 2 * np.log(lam) + n / 2 * np.log(n / energy) - n / 2 - n / 2 * np.log(2 * np.pi)
                - float(np.sum(np.log(lam + sigma))) / 2)
    return float(evidence), n / energy


def logme(features: np.ndarray, y: np.ndarray) -> float:
    """LogME (You et al. 2021): the mean over the target classes present in ``y`` of the maximised log evidence
    / n of each class's one-hot column given the features (raw, as the paper uses them)."""
    f = _features(features)
    y = _labels(y, len(f))
    classes = np.unique(y)
    if len(classes) < 2:
        raise TransferVizError("LogME needs at least two target classes in the training split")
    spec = _Spectrum(f)
    return float(np.mean([logme_class(spec, (y == c).astype(np.float64)).evidence for c in classes]))


def transfer_estimates(features: np.ndarray, prob: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """All four estimates for one source model on the target training data: ``features`` its embedding (n, D),
    ``prob`` its softmax over its own classes (n, Z), ``y`` the target labels (n,). Keys: :data:`ESTIMATES`."""
    p = _probabilities(prob)
    return {"logme": logme(features, y), "leep": leep(p, y), "nce": nce(p.argmax(1), y),
            "hscore": h_score(features, y)}
