"""Nearest neighbours by cosine similarity in a model's embedding space (the image query, issue 6 item 4).

Pure numpy over the cache's ``analysis/embedding/{model}.npy`` (the activation at the
input of the embedding layer, one row per instance). The L2-normalised copy is made once
per process and build folder (``lru_cache`` keyed by the root path: a built cache is
immutable), so a query is one matrix-vector product and an ``argpartition``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from transferviz.cache import Cache

#: Where a query's neighbours may come from: every instance, the query's own domain, the other domain.
SCOPES: tuple[str, ...] = ("all", "same", "other")
K = 5

__all__ = ["K", "SCOPES", "Neighbours", "domains", "nearest", "query", "scope_mask", "unit_embedding", "unit_rows"]


@dataclass(frozen=True)
class Neighbours:
    """The ``k`` nearest instances of one query in one model, most similar first."""

    ids: np.ndarray          # int64 instance ids
    similarity: np.ndarray   # float32 cosine similarity to the query


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (float32); an all-zero row stays zero (similarity 0 to everything)."""
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)


def _rel(model: str) -> str:
    return f"analysis/embedding/{model}.npy"


@lru_cache(maxsize=8)
def _unit(root: str, model: str) -> np.ndarray:
    return unit_rows(np.load(Path(root) / _rel(model), allow_pickle=False))


def unit_embedding(cache: Cache, model: str) -> np.ndarray:
    """The model's L2-normalised embeddings, (N, D) float32, computed once per process and build."""
    if not (cache.root / _rel(model)).is_file():
        cache.array(_rel(model))  # raises the cache's informative error
    return _unit(str(cache.root), model)


def domains(cache: Cache) -> np.ndarray:
    """Domain (``'source'``/``'target'``) of every instance; ids are row numbers (docs/cache.md)."""
    return cache.instances["domain"].to_numpy()


def scope_mask(domain_of: np.ndarray, query_id: int, scope: str) -> np.ndarray:
    """Candidates of a query: every instance, those of its own domain, or those of the other one."""
    if scope == "same":
        return domain_of == domain_of[query_id]
    if scope == "other":
        return domain_of != domain_of[query_id]
    return np.ones(len(domain_of), dtype=bool)


def nearest(unit: np.ndarray, query_id: int, candidates: np.ndarray | None = None, k: int = K) -> Neighbours:
    """The ``k`` rows of ``unit`` most cosine-similar to row ``query_id``, the query itself excluded.

    ``candidates`` is a boolean mask of the rows allowed (None: all). Ties are broken by
    the smaller id, so the answer is deterministic.
    """
    sim = unit @ unit[query_id]
    allowed = np.ones(len(unit), dtype=bool) if candidates is None else np.asarray(candidates, dtype=bool).copy()
    allowed[query_id] = False
    idx = np.flatnonzero(allowed)
    if len(idx) == 0 or k <= 0:
        return Neighbours(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32))
    s = sim[idx]
    if len(idx) > k:
        # a few more than k so that ties at the cut are resolved by id, not by partition order
        part = np.argpartition(-s, k - 1)[:k]
        cut = s[part].min()
        part = np.flatnonzero(s >= cut)
        idx, s = idx[part], s[part]
    order = np.lexsort((idx, -s))[:k]
    return Neighbours(idx[order].astype(np.int64), s[order].astype(np.float32))


def query(cache: Cache, model: str, query_id: int, scope: str = "all", k: int = K) -> Neighbours:
    """Nearest neighbours of instance ``query_id`` in ``model``'s embedding space within ``scope``."""
    unit = unit_embedding(cache, model)
    return nearest(unit, int(query_id), scope_mask(domains(cache), int(query_id), scope), k)
