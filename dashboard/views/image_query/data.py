"""The image query's slice of the cache: nearest neighbours by cosine similarity in each model's
embedding space (issue 6 item 4), and which instance to query.

Pure numpy over :meth:`Cache.embedding` (the activation at the input of the embedding layer,
one row per instance). The L2-normalised copy is made once per cache object and model
(:meth:`Cache.memo`: a built cache never changes), so a query is one matrix-vector product
and an ``argpartition`` (well under 150 ms on the demo).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dashboard.lookups import MODELS, Model, instance_records
from dashboard.pool import focus_id
from transferviz.cache import Cache
from transferviz.errors import TransferVizError

#: Where a query's neighbours may come from: every instance, the query's own domain, the other domain.
SCOPES: tuple[str, ...] = ("all", "same", "other")
K = 5

__all__ = ["K", "SCOPES", "Answer", "Neighbours", "Query", "default_query", "domains", "embeddings_problem",
           "nearest", "parse_typed_id", "query", "query_answers", "scope_mask", "unit_embedding", "unit_rows", "warm"]


@dataclass(frozen=True)
class Neighbours:
    """The ``k`` nearest instances of one query in one model, most similar first."""

    ids: np.ndarray          # int64 instance ids
    similarity: np.ndarray   # float32 cosine similarity to the query


def warm(cache: Cache) -> None:
    """Normalises both models' embeddings at start-up (~0.1 s on the demo) rather than in the
    first visitor's query; a cache without embeddings is reported by the view itself."""
    try:
        for m in MODELS:
            unit_embedding(cache, m)
    except (TransferVizError, OSError, ValueError):
        pass


# --- nearest neighbours ---------------------------------------------------------------

def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (float32); an all-zero row stays zero (similarity 0 to everything)."""
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)


def unit_embedding(cache: Cache, model: Model) -> np.ndarray:
    """The model's L2-normalised embeddings, (N, D) float32, once per cache object (the cache's
    informative error when it has none)."""
    return cache.memo(("image_query.unit_embedding", model), lambda: unit_rows(cache.embedding(model)))


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


def query(cache: Cache, model: Model, query_id: int, scope: str = "all", k: int = K) -> Neighbours:
    """Nearest neighbours of instance ``query_id`` in ``model``'s embedding space within ``scope``."""
    unit = unit_embedding(cache, model)
    return nearest(unit, int(query_id), scope_mask(domains(cache), int(query_id), scope), k)


# --- one query in both models ---------------------------------------------------------

@dataclass(frozen=True)
class Answer:
    """One model's view of the query."""

    conf: float                          # its confidence in its prediction for the query
    loss: float                          # its loss on the query (never -0.0)
    vector: np.ndarray                   # the query's embedding
    neighbours: Neighbours
    neighbour_vectors: np.ndarray        # (k, D) their embeddings, in neighbour order
    neighbour_records: list[dict[str, Any]]  # their instance records, in neighbour order


@dataclass(frozen=True)
class Query:
    """What the view shows about one query: the instance and each model's answer."""

    id: int
    record: dict[str, Any]               # the query's instance record (dashboard.lookups.instance_records)
    n_values: int                        # length of an embedding vector
    answers: dict[str, Answer]           # model -> its answer
    domain_of: np.ndarray                # every instance's domain
    labels: np.ndarray                   # every instance's true label


def embeddings_problem(cache: Cache) -> str | None:
    """Why this cache cannot be queried (no embeddings, or ones that do not match the instance
    table), None when it can."""
    try:
        emb = [cache.embedding(m) for m in MODELS]
    except TransferVizError:
        return "This cache has no embeddings (its 'forward' stage); rebuild it to query images."
    if any(e.shape[0] != len(cache.instances) for e in emb):
        return "The embeddings do not match the instance table; rebuild the cache."
    return None


def query_answers(cache: Cache, query_id: int, scope: Any) -> Query:
    """Both models' answers to instance ``query_id`` with neighbours from ``scope`` (unknown: "all");
    call :func:`embeddings_problem` first."""
    scope = scope if scope in SCOPES else "all"
    df = cache.instances
    answers: dict[str, Answer] = {}
    for m in MODELS:
        emb = cache.embedding(m)
        found = query(cache, m, query_id, scope)
        answers[m] = Answer(
            conf=float(df[f"{m}_conf"].iloc[query_id]),
            loss=abs(float(df[f"{m}_loss"].iloc[query_id])),  # float32 rounding can print a certain hit as -0.00
            vector=np.asarray(emb[query_id]), neighbours=found, neighbour_vectors=np.asarray(emb[found.ids]),
            neighbour_records=instance_records(cache, found.ids))
    return Query(id=query_id, record=instance_records(cache, [query_id])[0],
                 n_values=int(cache.embedding("source").shape[1]), answers=answers, domain_of=domains(cache),
                 labels=df["label"].to_numpy())


# --- which instance -------------------------------------------------------------------

def default_query(cache: Cache) -> tuple[int, str]:
    """``(id, why)``: the target-domain instance the target model finds hardest (highest loss),
    else the first instance."""
    df = cache.instances
    if "target_loss" in df:
        # a mask and argmax, no copy of the frame: the first of equal highest losses (as idxmax), NaN skipped
        loss = np.where(df["domain"].to_numpy() == "target", df["target_loss"].to_numpy(dtype=np.float64), np.nan)
        if np.isfinite(loss).any():
            row = int(np.argmax(np.where(np.isnan(loss), -np.inf, loss)))
            return int(df["id"].iloc[row]), "the target instance with the highest target-model loss"
    return int(df["id"].iloc[0]), "the first instance"


def parse_typed_id(value: Any, n_instances: int) -> tuple[int | None, str | None]:
    """``(id, None)`` for a valid typed id, else ``(None, message)``: one line, no traceback."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, f"Type an instance id from 0 to {n_instances - 1}."
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isascii() and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        return None, f"'{value}' is not an instance id: type a whole number from 0 to {n_instances - 1}."
    i = focus_id(value, n_instances)
    if i is None:
        return None, f"No instance {value}: ids run from 0 to {n_instances - 1}."
    return i, None
