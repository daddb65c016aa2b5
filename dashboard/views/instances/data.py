"""The instance view's slice of the cache: the instances of the selected classes with their
map coordinates. The one thing heavier than a lookup, the class-selection t-SNE, is memoized
on disk (:func:`projection_frame`)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from dashboard.urlstate import default_state
from transferviz.analysis.projection import memoized_selection_map, selection_key, selection_map
from transferviz.cache import Cache

__all__ = ["SELECTION_ITERATIONS", "memo_dir_for", "projection_frame", "warm"]

#: Selection-map settings; part of the memo key, so changing them never serves a stale map.
SELECTION_ITERATIONS = 100


def memo_dir_for(cache: Cache) -> Path:
    """Where class-selection t-SNE maps are memoized.

    Preferred: ``<folder holding the build>/.memo-<run>`` -- beside the cache rather than
    in it (a published cache is read-only and content-addressed), shared by every worker
    and surviving rebuilds (the memo key holds the projection stage's key, so a map made
    from other data is never served). ``prune_builds`` only removes ``<run>-*`` folders,
    so the memo is left alone. If that folder cannot be written (read-only mount), a
    per-user folder in the system temp dir is used instead.
    """
    preferred = cache.root.parent / f".memo-{cache.name}"
    probe = preferred if preferred.exists() else preferred.parent
    if os.access(probe, os.W_OK | os.X_OK):
        return preferred
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    return Path(tempfile.gettempdir()) / f"transferviz-memo-{uid}" / cache.name


def _cache_id(cache: Cache) -> str:
    """Identifies what the selection maps depend on: the projection stage's key (else the build)."""
    key = cache.stage_key("project")
    return f"{cache.name}:{key}" if key else str(cache.root)


def _selection_coords(cache: Cache, rows: np.ndarray, classes: Sequence[int], memo_dir: Path | None) -> np.ndarray:
    """(len(rows), 2) coordinates: the global map for all classes, else the memoized selection map."""
    global_map = cache.tsne()
    if len(set(classes)) >= len(cache.classes) or memo_dir is None:
        # every class selected (or memo disabled): the global map *is* the map of this selection
        return np.asarray(global_map[rows], dtype=np.float32)
    seed = int(cache.config.get("seed", 0))
    perplexity = float(cache.config.get("analysis", {}).get("tsne_perplexity", 30))

    def compute() -> np.ndarray:
        return selection_map(np.asarray(cache.projection_features()[rows]), np.asarray(global_map[rows]), seed,
                             perplexity=perplexity, n_iter=SELECTION_ITERATIONS)

    key = selection_key(_cache_id(cache), classes, f"seed={seed};perp={perplexity};it={SELECTION_ITERATIONS}")
    return memoized_selection_map(memo_dir, key, compute, expected_rows=len(rows))


def projection_frame(cache: Cache, classes: Iterable[int], memo_dir: Path | None) -> pd.DataFrame:
    """The instances of ``classes`` (both domains, all splits) with their map coordinates.

    Columns are those of :func:`dashboard.views.instances.figures.tsne_scatter` (``id x y label
    label_name domain target_pred``). Unknown class indices are ignored; none left -> an
    empty frame. ``memo_dir=None`` uses the global map's coordinates (no t-SNE run).
    """
    n = len(cache.classes)
    cls = sorted({int(c) for c in classes if 0 <= int(c) < n})
    cols = ["id", "x", "y", "label", "label_name", "domain", "target_pred"]
    if not cls or not cache.has_tsne:
        return pd.DataFrame(columns=cols)
    df = cache.instances
    rows = np.flatnonzero(np.isin(df["label"].to_numpy(), cls))
    if len(rows) == 0:
        return pd.DataFrame(columns=cols)
    ids = df["id"].to_numpy()[rows]
    xy = _selection_coords(cache, ids, cls, memo_dir)
    sub = df.iloc[rows]
    return pd.DataFrame({
        "id": ids,
        "x": xy[:, 0],
        "y": xy[:, 1],
        "label": sub["label"].to_numpy(),
        "label_name": sub["label_name"].astype(str).to_numpy(),
        "domain": sub["domain"].astype(str).to_numpy(),
        "target_pred": sub["target_pred"].to_numpy(),
    })


def warm(cache: Cache, memo_dir: Path) -> None:
    """Pays at start-up what the first visitor would otherwise wait for: openTSNE's import
    (seconds) and the default selection's map (memoized on disk for every worker). Done
    synchronously, not in a thread: the server then answers its first page in well under 2 s,
    and no thread is running when gunicorn forks workers from a preloaded app."""
    try:
        import openTSNE  # noqa: F401  (imported for its start-up cost, even when the default map needs no t-SNE run)

        projection_frame(cache, default_state(cache).classes, memo_dir)
    except Exception:  # noqa: BLE001 - the callback reports any real error when a user asks for the map
        pass
