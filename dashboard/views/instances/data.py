"""The instance view's slice of the cache: the instances of the selected classes with their map
coordinates, and the class picker's search. Nothing here runs a t-SNE: the build precomputed the
global map and one map per class (:func:`transferviz.analysis.projection.class_maps`), and a
selection is positioned from those (:func:`selection_coords`)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from transferviz.analysis.projection import cached_class_maps
from transferviz.cache import Cache

__all__ = ["COLUMNS", "match_classes", "projection_frame", "selection_coords"]

#: Columns of :func:`projection_frame` (those :func:`dashboard.views.instances.figures.tsne_scatter` reads).
COLUMNS = ["id", "x", "y", "label", "label_name", "domain", "target_pred"]


def selection_coords(cache: Cache, ids: np.ndarray, classes: Sequence[int]) -> tuple[np.ndarray, str]:
    """``(len(ids), 2)`` map coordinates of the instances ``ids`` of the selected ``classes``, and
    which map they come from (``"class"`` or ``"global"``).

    * One class: its own map, precomputed by the build's ``classmaps`` stage. Within one class
      the global map packs the class into one tight cluster; the class's own map spreads its
      instances by their neighbourhoods within the class, which is what the view is for when
      one class is inspected (how its source and target instances mix, where the mispredicted
      ones sit).
    * Several classes: the global map's coordinates of those instances. Maps of different
      classes share no coordinate frame (each is a separate t-SNE), so placing them side by side
      would hide the one thing a multi-class view shows -- which classes' instances lie near
      each other (the confusions). The global map keeps those relations, every instance keeps
      its place as classes are added or removed, and it costs a lookup.
    * Caches built before the ``classmaps`` stage: the global map for one class too.

    No t-SNE is run here; every selection costs an array lookup.
    """
    maps = cached_class_maps(cache) if len(set(classes)) == 1 else None
    if maps is not None:
        return np.asarray(maps[ids], dtype=np.float32), "class"
    return np.asarray(cache.tsne()[ids], dtype=np.float32), "global"


def projection_frame(cache: Cache, classes: Iterable[int]) -> pd.DataFrame:
    """The instances of ``classes`` (both domains, all splits) with their map coordinates
    (:func:`selection_coords`).

    Columns :data:`COLUMNS` (``id x y label label_name domain target_pred``); ``attrs["map"]``
    says which map the coordinates come from. Unknown class indices are ignored; none left ->
    an empty frame.
    """
    n = len(cache.classes)
    cls = sorted({int(c) for c in classes if 0 <= int(c) < n})
    if not cls or not cache.has_tsne:
        return pd.DataFrame(columns=COLUMNS)
    df = cache.instances
    rows = np.flatnonzero(np.isin(df["label"].to_numpy(), cls))
    if len(rows) == 0:
        return pd.DataFrame(columns=COLUMNS)
    ids = df["id"].to_numpy()[rows]
    xy, source = selection_coords(cache, ids, cls)
    sub = df.iloc[rows]
    out = pd.DataFrame({
        "id": ids,
        "x": xy[:, 0],
        "y": xy[:, 1],
        "label": sub["label"].to_numpy(),
        "label_name": sub["label_name"].astype(str).to_numpy(),
        "domain": sub["domain"].astype(str).to_numpy(),
        "target_pred": sub["target_pred"].to_numpy(),
    })
    out.attrs["map"] = source
    return out


def _normalise(text: str) -> str:
    # "back_pack", "back-pack" and "Back Pack" are the same class to someone typing
    return re.sub(r"[_\-\s]+", " ", text.lower()).strip()


def match_classes(names: Sequence[str], query: str | None) -> list[int]:
    """Indices of the classes whose name contains any of the query's terms (case-insensitive;
    terms are separated by commas; ``_``, ``-`` and spaces are alike). An empty query matches all."""
    terms = [t for t in (_normalise(part) for part in (query or "").split(",")) if t]
    if not terms:
        return list(range(len(names)))
    normed = [_normalise(str(nm)) for nm in names]
    return [i for i, nm in enumerate(normed) if any(t in nm for t in terms)]
