"""The fine-tuning timeline (issue 6, item 7): embeddings, predictions and weight drift by epoch.

* :class:`MapPlacer` -- places any epoch's embeddings into the *final* t-SNE map
  (``analysis/tsne.npy``) so positions are comparable between epochs.
* :func:`neuron_cosine` / :func:`weight_drift` -- per analysed layer and neuron, the cosine
  similarity of its incoming weights (the flattened weight row) to the source model's.
* :func:`accuracy_table` -- per epoch, class and domain, the accuracy of the predictions.

Placement choice (documented, deliberate): openTSNE's ``TSNEEmbedding.transform`` would
re-optimise every point of every epoch against the final map, which costs several seconds
per epoch and moves even points whose embedding did not change (it optimises a fresh
initialisation). Instead each epoch's embeddings are projected with the PCA fitted on the
final embeddings (the same PCA as :func:`~transferviz.analysis.projection.pca_features`, the
t-SNE input) and placed at the inverse-distance weighted average of the final-map positions
of their ``k`` (10) nearest *final* embeddings in that PCA space. An instance whose embedding
equals its final embedding keeps exactly its final-map position. This is openTSNE's own
initialisation for ``transform`` (weighted neighbour average) without the optimisation step:
deterministic, exact for unchanged points, and a few milliseconds per epoch.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import torch

__all__ = ["MapPlacer", "neuron_cosine", "weight_drift", "accuracy_table", "flip_epochs", "K_NEIGHBOURS"]

K_NEIGHBOURS = 10
#: Relative tolerance under which an embedding counts as unchanged (float32 forward noise).
UNCHANGED_RTOL = 1e-6


class MapPlacer:
    """Places embeddings into the map computed from ``final_embeddings``.

    Args:
        final_embeddings: ``(N, D)`` the embeddings the map was made from (row = instance id).
        final_positions: ``(N, 2)`` their positions in the map.
        k: neighbours averaged for a changed embedding.
        pca_dims: PCA dimension (as for the t-SNE input).
        seed: seeds the randomized SVD, as in ``pca_features``.
    """

    def __init__(self, final_embeddings: np.ndarray, final_positions: np.ndarray, k: int = K_NEIGHBOURS,
                 pca_dims: int = 50, seed: int = 0) -> None:
        from sklearn.neighbors import NearestNeighbors

        self.final = np.asarray(final_embeddings, dtype=np.float32)
        self.positions = np.asarray(final_positions, dtype=np.float32)
        if self.final.ndim != 2 or self.positions.shape != (len(self.final), 2):
            raise ValueError(f"need (N, D) embeddings and (N, 2) positions, got {self.final.shape}, "
                             f"{self.positions.shape}")
        n, d = self.final.shape
        self.pca = None
        if d > pca_dims and n > 1:
            from sklearn.decomposition import PCA

            self.pca = PCA(n_components=min(pca_dims, n), random_state=seed).fit(self.final)
        self.k = max(1, min(int(k), n))
        self._scale = np.linalg.norm(self.final, axis=1)
        self._nn = NearestNeighbors(n_neighbors=self.k).fit(self._project(self.final))

    def _project(self, x: np.ndarray) -> np.ndarray:
        return (self.pca.transform(x) if self.pca is not None else x).astype(np.float32)

    def unchanged(self, embeddings: np.ndarray) -> np.ndarray:
        """``(N,)`` True where the instance's embedding equals its final embedding."""
        x = np.asarray(embeddings, dtype=np.float32)
        return np.linalg.norm(x - self.final, axis=1) <= UNCHANGED_RTOL * (1.0 + self._scale)

    def place(self, embeddings: np.ndarray) -> np.ndarray:
        """``(N, 2)`` float32 map positions of ``embeddings`` (row i = instance i at some epoch)."""
        x = np.asarray(embeddings, dtype=np.float32)
        if x.shape != self.final.shape:
            raise ValueError(f"embeddings must have shape {self.final.shape}, got {x.shape}")
        same = self.unchanged(x)
        out = self.positions.copy()
        todo = np.flatnonzero(~same)
        if len(todo):
            dist, idx = self._nn.kneighbors(self._project(x[todo]))
            w = 1.0 / np.maximum(dist.astype(np.float64), 1e-12)
            zero = dist <= 1e-12  # coincides with a final embedding: take those positions only
            w = np.where(zero.any(axis=1, keepdims=True), zero.astype(np.float64), w)
            w /= w.sum(axis=1, keepdims=True)
            out[todo] = np.einsum("nk,nkd->nd", w, self.positions[idx].astype(np.float64)).astype(np.float32)
        return out


def neuron_cosine(w_ref: torch.Tensor | np.ndarray, w: torch.Tensor | np.ndarray) -> np.ndarray:
    """Per output neuron, cosine similarity of its flattened incoming weights to the reference's.

    Rows that are zero in both count as identical (1.0); zero in one of them as 0.0.
    """
    a = torch.as_tensor(w_ref).detach().double().flatten(1)
    b = torch.as_tensor(w).detach().double().flatten(1)
    if a.shape != b.shape:
        raise ValueError(f"weight shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    na, nb = a.norm(dim=1), b.norm(dim=1)
    cos = (a * b).sum(1) / (na * nb).clamp_min(1e-300)
    cos = torch.where((na == 0) & (nb == 0), torch.ones_like(cos), torch.where((na == 0) | (nb == 0),
                                                                                 torch.zeros_like(cos), cos))
    return cos.clamp(-1.0, 1.0).numpy()


def weight_drift(reference: torch.nn.Module, models: Iterable[tuple[int, torch.nn.Module]],
                 layers: Sequence[str]) -> pd.DataFrame:
    """Per epoch and analysed layer: mean and min over neurons of :func:`neuron_cosine` to ``reference``."""
    ref = dict(reference.named_modules())
    rows = []
    for epoch, model in models:
        mods = dict(model.named_modules())
        for layer in layers:
            cos = neuron_cosine(ref[layer].weight, mods[layer].weight)
            rows.append({"epoch": int(epoch), "layer": layer, "mean_cos": float(cos.mean()),
                         "min_cos": float(cos.min())})
    return pd.DataFrame(rows, columns=["epoch", "layer", "mean_cos", "min_cos"])


def accuracy_table(pred: np.ndarray, labels: np.ndarray, domains: np.ndarray, epochs: Sequence[int],
                   n_classes: int, splits: np.ndarray | None = None) -> pd.DataFrame:
    """Per epoch, class and domain: accuracy of ``pred`` (E, N) on all the class's instances.

    Also ``n`` (instances) and, when ``splits`` is given, ``val_accuracy`` on the validation ones
    (NaN where a class has none). Accuracy is NaN for an empty (class, domain).
    """
    pred = np.asarray(pred)
    labels = np.asarray(labels)
    domains = np.asarray(domains)
    rows = []
    for e, epoch in enumerate(epochs):
        ok = pred[e] == labels
        for dom in ("source", "target"):
            for ci in range(n_classes):
                sel = (domains == dom) & (labels == ci)
                n = int(sel.sum())
                row = {"epoch": int(epoch), "class_index": ci, "domain": dom,
                       "accuracy": float(ok[sel].mean()) if n else np.nan, "n": n}
                if splits is not None:
                    v = sel & (np.asarray(splits) == "val")
                    row["val_accuracy"] = float(ok[v].mean()) if v.any() else np.nan
                rows.append(row)
    return pd.DataFrame(rows)


def flip_epochs(pred: np.ndarray) -> np.ndarray:
    """``(E, N)`` bool: True where the instance's prediction differs from the previous epoch's (row 0 False)."""
    pred = np.asarray(pred)
    out = np.zeros(pred.shape, dtype=bool)
    out[1:] = pred[1:] != pred[:-1]
    return out
