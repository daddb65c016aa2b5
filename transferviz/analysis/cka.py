"""Linear CKA between two networks' layer representations, with the unbiased HSIC estimator, in minibatches.

Centered Kernel Alignment (Kornblith et al. 2019) compares two representations X (n x p) and Y (n x q) of the
same n instances: CKA = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)) with the linear kernels K = X X^T, L = Y Y^T.
It is 1 for representations equal up to an orthogonal transform and an isotropic scaling, and does not depend on
the layers' widths. HSIC here is the unbiased estimator of Song et al. 2012 (eq. 5), and the whole-data
similarity is the minibatch estimator of Nguyen, Raghu and Kornblith 2021 ("Do wide and deep networks learn the
same things?", eq. 3-4): the HSIC terms are averaged over minibatches of random instances before the ratio is
taken, so memory is a few batch x batch kernels however many instances there are, and (the estimator being
unbiased) the average does not drift with the batch size as the biased one would.

Written here rather than taken from a package: the PyPI packages that do minibatch CKA (``torch-cka``, last
released 2021; ``ckatorch`` and ``cka-pytorch``, which describe themselves as personal or educational projects
that may not work for every model) are not maintained libraries, and each drives its own forward passes and layer
hooks, where the build needs the analysed layers of its traced graph and the in-place-safe capture of
:func:`transferviz.build.estimates.layer_kernels`. The estimator is ~40 lines, tested against an independent form.
"""

from __future__ import annotations

import numpy as np

from transferviz.errors import TransferVizError

__all__ = ["MIN_BATCH", "gram", "hsic_unbiased", "linear_cka", "MinibatchCKA", "batches"]

#: The unbiased estimator divides by n (n - 3) and (n - 1)(n - 2): a batch needs at least four instances.
MIN_BATCH = 4


def gram(x: np.ndarray) -> np.ndarray:
    """The linear kernel X X^T of the (n, ...) activations ``x``, each instance flattened, in float64."""
    a = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    return a @ a.T


class _Centred:
    """What the unbiased HSIC needs of one kernel: the kernel with its diagonal zeroed (flattened), its row
    sums and its total, so that HSIC of many kernel pairs is one matrix product."""

    def __init__(self, k: np.ndarray) -> None:
        n = len(k)
        if k.shape != (n, n):
            raise TransferVizError(f"a kernel must be square, got shape {k.shape}")
        if n < MIN_BATCH:
            raise TransferVizError(f"the unbiased HSIC needs at least {MIN_BATCH} instances, got {n}")
        kt = np.array(k, dtype=np.float64)
        np.fill_diagonal(kt, 0.0)
        self.n = n
        self.flat = kt.ravel()
        self.rows = kt.sum(1)
        self.total = float(self.rows.sum())


def _hsic_matrix(a: list[_Centred], b: list[_Centred]) -> np.ndarray:
    """HSIC_1(K_i, L_j) for every kernel of ``a`` and of ``b`` (same instances), Song et al. 2012 eq. 5:
    1 / (n (n - 3)) [tr(K~ L~) + 1'K~1 1'L~1 / ((n - 1)(n - 2)) - 2 / (n - 2) 1'K~ L~1], K~ = K with zero
    diagonal (tr(K~ L~) = <K~, L~> as both are symmetric)."""
    n = a[0].n
    trace = np.stack([k.flat for k in a]) @ np.stack([k.flat for k in b]).T
    totals = np.outer([k.total for k in a], [k.total for k in b])
    cross = np.stack([k.rows for k in a]) @ np.stack([k.rows for k in b]).T
    return (trace + totals / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * cross) / (n * (n - 3))


def hsic_unbiased(k: np.ndarray, l: np.ndarray) -> float:  # noqa: E741 (the paper's names)
    """The unbiased HSIC estimator of kernels ``k`` and ``l`` of the same n >= 4 instances."""
    return float(_hsic_matrix([_Centred(k)], [_Centred(l)])[0, 0])


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Full-batch linear CKA with the unbiased HSIC of two representations of the same instances (rows)."""
    k, l = gram(x), gram(y)  # noqa: E741
    return hsic_unbiased(k, l) / float(np.sqrt(hsic_unbiased(k, k) * hsic_unbiased(l, l)))


class MinibatchCKA:
    """Accumulates the minibatch CKA between ``rows`` representations (e.g. the source model's layers) and
    ``cols`` representations (the target model's) batch by batch: ``update`` takes each representation's
    kernel on one batch of instances (the same instances for all), ``result`` gives the (rows x cols) CKA.

    Batches should be random samples of the data (shuffle first): the estimator averages within-batch HSIC,
    so a batch of one class alone would measure within-class similarity only."""

    def __init__(self, rows: int, cols: int) -> None:
        self.shape = (rows, cols)
        self.cross = np.zeros((rows, cols))
        self.self_rows = np.zeros(rows)
        self.self_cols = np.zeros(cols)
        self.batches = 0
        self.instances = 0

    def update(self, row_kernels: list[np.ndarray], col_kernels: list[np.ndarray]) -> None:
        """Adds one batch: the kernel (n x n, n >= 4) of every row and every column representation."""
        if (len(row_kernels), len(col_kernels)) != self.shape:
            raise TransferVizError(f"expected {self.shape[0]} row and {self.shape[1]} column kernels, got "
                                   f"{len(row_kernels)} and {len(col_kernels)}")
        kernels = [_Centred(k) for k in [*row_kernels, *col_kernels]]
        if len({k.n for k in kernels}) != 1:
            raise TransferVizError("every kernel of a batch must be over the same instances (same size)")
        from threadpoolctl import threadpool_limits

        # every pair at once, self terms on the diagonal: one small product (kernels x batch^2) per batch, on
        # one BLAS thread (two threads on a busy 2-core machine spent 10x longer waiting on each other)
        with threadpool_limits(limits=1, user_api="blas"):
            every = _hsic_matrix(kernels, kernels)
        r = self.shape[0]
        self.cross += every[:r, r:]
        diag = np.diag(every)
        self.self_rows += diag[:r]
        self.self_cols += diag[r:]
        self.batches += 1
        self.instances += kernels[0].n

    def result(self) -> np.ndarray:
        """The (rows x cols) CKA: mean cross HSIC over the batches / sqrt(mean self HSIC of each side);
        NaN where a side's mean self HSIC is not positive (a constant representation carries no similarity)."""
        if self.batches == 0:
            raise TransferVizError("no batches were added to the CKA")
        denom = np.sqrt(np.outer(np.clip(self.self_rows, 0, None), np.clip(self.self_cols, 0, None)))
        return np.divide(self.cross, denom, out=np.full(self.shape, np.nan), where=denom > 0)


def batches(n: int, batch_size: int, seed: int) -> list[np.ndarray]:
    """Row indices of ``n`` instances shuffled (seeded) and cut into near-equal batches of at most
    ``batch_size`` (at least :data:`MIN_BATCH` each; fewer than that many instances give no batch)."""
    if n < MIN_BATCH:
        return []
    order = np.random.default_rng(seed).permutation(n)
    count = max(1, -(-n // batch_size))
    while count > 1 and n // count < MIN_BATCH:
        count -= 1
    return [np.sort(part) for part in np.array_split(order, count)]
