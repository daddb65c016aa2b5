"""Cache slices shaped for the figure builders and components of views A and B.

Small pure lookups (a cache in, plain Python / numpy / pandas out) so that callbacks
stay thin and are tested without Dash. Nothing here writes the cache; the one thing
heavier than a lookup, the class-selection t-SNE, is memoized on disk
(:func:`projection_frame`). The network and feature views keep theirs in
``dashboard/data_network.py``.
"""

from __future__ import annotations

import math
import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from dashboard.figures.theme import class_palette
from transferviz.cache import Cache

__all__ = [
    "TABLE_COLUMNS",
    "class_counts",
    "class_colors",
    "distinct_class_palette",
    "class_table_records",
    "instance_records",
    "memo_dir_for",
    "projection_frame",
    "selected_ids",
    "featvis_path",
    "thumb_path",
    "thumb_src",
    "transferability",
]

#: Rows of the confusion table: (column id, header). Ids are stable for tests and styling.
TABLE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("class", "class"),
    ("n", "n"),
    ("source_acc", "source acc"),
    ("target_acc", "target acc"),
    ("diff", "difference"),
    ("mistaken_for", "mistaken for (count)"),
)

NONE_MISTAKEN = "\u2014"

#: Selection-map settings; part of the memo key, so changing them never serves a stale map.
SELECTION_ITERATIONS = 100


def _num(x: Any) -> float | None:
    """JSON-safe number: NaN/inf become None (an empty, sortable-last cell)."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


# --- view A: statistics ---------------------------------------------------------------

def class_table_records(cache: Cache) -> list[dict[str, Any]]:
    """The confusion table rows in class order; row ``i`` is class ``i`` and carries ``id = i``
    (DataTable's row id, so selections survive sorting)."""
    if not cache.has("analysis/class_table.parquet"):
        return []
    t = cache.class_table.sort_values("class_index")
    rows = []
    for r in t.to_dict("records"):
        n = int(r["n"])
        rows.append({
            "id": int(r["class_index"]),
            "class_index": int(r["class_index"]),
            "class": str(r["class"]),
            "n": n,
            "source_acc": _num(r["source_acc"]),
            "target_acc": _num(r["target_acc"]),
            "diff": _num(r["diff"]),
            # a dash, not a blank, for "never mistaken" (a blank reads as missing data)
            "mistaken_for": (str(r.get("mistaken_for") or "") or NONE_MISTAKEN) if n
            else "no target validation instances",
            "source_mistaken_for": (str(r.get("source_mistaken_for") or "") or NONE_MISTAKEN) if n else "",
        })
    return rows


def transferability(cache: Cache) -> float | None:
    """The run's transferability score (pipeline's ``analysis/summary.json``), else from the history."""
    if cache.has("analysis/summary.json"):
        v = _num(cache.json("analysis/summary.json").get("transferability"))
        if v is not None:
            return v
    from dashboard.figures.statistics import transferability_score

    try:
        return transferability_score(history_frame(cache))
    except Exception:
        return None


def history_frame(cache: Cache) -> pd.DataFrame | None:
    """``models/history.parquet`` or None when the cache has no training history (given checkpoints)."""
    return cache.history if cache.has("models/history.parquet") else None


def best_accuracies(cache: Cache) -> dict[str, float | None]:
    """Best accuracies on the target validation data behind the score (for the badge's caption)."""
    if not cache.has("analysis/summary.json"):
        return {"target": None, "source": None}
    s = cache.json("analysis/summary.json")
    return {"target": _num(s.get("best_target_on_target")), "source": _num(s.get("best_source_on_target"))}


# --- view B: instances ----------------------------------------------------------------

def class_counts(cache: Cache) -> pd.DataFrame:
    """Per class: ``class_index``, ``name``, ``source`` and ``target`` instance counts (all splits)."""
    df = cache.instances
    n = len(cache.classes)
    out = pd.DataFrame({"class_index": np.arange(n), "name": cache.classes})
    for dom in ("source", "target"):
        labels = df.loc[df["domain"] == dom, "label"].to_numpy()
        out[dom] = np.bincount(labels, minlength=n)[:n] if len(labels) else 0
    return out


def class_colors(cache: Cache) -> dict[int, str]:
    """Class index -> colour over *all* classes, so a class keeps its colour whatever the selection."""
    n = len(cache.classes)
    return dict(enumerate(distinct_class_palette(n) if n <= 16 else class_palette(n)))


#: How many of the theme's class colours are taken in order before the rest are picked for contrast.
_KEEP_IN_ORDER = 8


def distinct_class_palette(n: int) -> list[str]:
    """``n`` (<= 16) colours of the theme's class palette, none two alike.

    The theme lists its 16 colours so that the first eight are Tableau's (without the
    domain red and blue); taken in order, the 9th and 10th (teal, dark orange) would sit
    next to green and orange, and ten digit classes would show two pairs of near twins.
    So the first eight are kept and each further colour is the remaining one farthest (in
    CIELAB) from all chosen so far. The greedy order does not depend on ``n``: it is
    computed once and cut.
    """
    return list(_distinct_order()[:max(n, 0)])


@lru_cache(maxsize=1)
def _distinct_order() -> tuple[str, ...]:
    pool = class_palette(16)
    lab = {c: _lab(c) for c in pool}
    chosen = pool[:_KEEP_IN_ORDER]
    while len(chosen) < len(pool):
        rest = [c for c in pool if c not in chosen]
        chosen.append(max(rest, key=lambda c: min(float(np.linalg.norm(lab[c] - lab[k])) for k in chosen)))
    return tuple(chosen)


def _lab(hex_color: str) -> np.ndarray:
    """CIELAB of an ``#rrggbb`` colour (D65), for perceptual colour distances."""
    rgb = np.array([int(hex_color[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ lin
    xyz = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


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
    key = cache.manifest.get("inputs", {}).get("project")
    return f"{cache.name}:{key}" if key else str(cache.root)


def _selection_coords(cache: Cache, rows: np.ndarray, classes: Sequence[int], memo_dir: Path | None) -> np.ndarray:
    """(len(rows), 2) coordinates: the global map for all classes, else the memoized selection map."""
    from transferviz.analysis.projection import memoized_selection_map, selection_key, selection_map

    global_map = cache.array("analysis/tsne.npy")
    if len(set(classes)) >= len(cache.classes) or memo_dir is None:
        # every class selected (or memo disabled): the global map *is* the map of this selection
        return np.asarray(global_map[rows], dtype=np.float32)
    seed = int(cache.config.get("seed", 0))
    perplexity = float(cache.config.get("analysis", {}).get("tsne_perplexity", 30))
    feats_rel = "analysis/pca50.npy" if cache.has("analysis/pca50.npy") else "analysis/embedding/target.npy"

    def compute() -> np.ndarray:
        return selection_map(np.asarray(cache.array(feats_rel)[rows]), np.asarray(global_map[rows]), seed,
                             perplexity=perplexity, n_iter=SELECTION_ITERATIONS)

    key = selection_key(_cache_id(cache), classes, f"seed={seed};perp={perplexity};it={SELECTION_ITERATIONS}")
    return memoized_selection_map(memo_dir, key, compute, expected_rows=len(rows))


def projection_frame(cache: Cache, classes: Iterable[int], memo_dir: Path | None) -> pd.DataFrame:
    """The instances of ``classes`` (both domains, all splits) with their map coordinates.

    Columns are those of :func:`dashboard.figures.instances.tsne_scatter` (``id x y label
    label_name domain target_pred``). Unknown class indices are ignored; none left -> an
    empty frame. ``memo_dir=None`` uses the global map's coordinates (no t-SNE run).
    """
    n = len(cache.classes)
    cls = sorted({int(c) for c in classes if 0 <= int(c) < n})
    cols = ["id", "x", "y", "label", "label_name", "domain", "target_pred"]
    if not cls or not cache.has("analysis/tsne.npy"):
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


def instance_records(cache: Cache, ids: Iterable[int]) -> list[dict[str, Any]]:
    """Hover and list details of instances: id, domain (+ display name), split, true label and
    both models' predictions and confidences. Unknown ids are skipped; input order is kept."""
    df = cache.instances
    id_col = df["id"].to_numpy()
    wanted = [int(i) for i in ids]
    # instance ids are row numbers by construction; fall back to a search if a cache ever differs
    if len(id_col) > 0 and id_col[0] == 0 and id_col[-1] == len(id_col) - 1:
        found = [(i, i) for i in wanted if 0 <= i < len(df)]
    else:
        first = {int(v): pos for pos, v in reversed(list(enumerate(id_col)))}
        found = [(i, first[i]) for i in wanted if i in first]
    if not found:
        return []
    # one positional take and one array per column: a per-row ``iloc`` costs ~65 us, which a
    # lasso over thousands of points would pay thousands of times
    sub = df.iloc[[pos for _, pos in found]]
    cols = {c: sub[c].to_numpy() for c in ("domain", "split", "label", "target_pred", "source_pred", "target_conf")}
    names = cache.classes
    domains = cache.domains

    def name(k: int) -> str:
        return names[k] if 0 <= k < len(names) else str(k)

    out = []
    for j, (i, _) in enumerate(found):
        dom = str(cols["domain"][j])
        label, t_pred, s_pred = int(cols["label"][j]), int(cols["target_pred"][j]), int(cols["source_pred"][j])
        out.append({
            "id": i,
            "domain": dom,
            "domain_name": domains.get(dom, dom),
            "split": str(cols["split"][j]),
            "label": label,
            "label_name": name(label),
            "target_pred": t_pred,
            "target_pred_name": name(t_pred),
            "target_conf": _num(cols["target_conf"][j]),
            "source_pred": s_pred,
            "source_pred_name": name(s_pred),
            "correct": t_pred == label,
        })
    return out


def selected_ids(selected_data: dict | None) -> list[int]:
    """Instance ids of a lasso/box selection (``customdata`` of the chosen points), first-seen order."""
    if not selected_data:
        return []
    seen: dict[int, None] = {}
    for p in selected_data.get("points") or []:
        cd = p.get("customdata")
        if isinstance(cd, list):
            cd = cd[0] if cd else None
        if cd is None:
            continue
        try:
            seen.setdefault(int(cd), None)
        except (TypeError, ValueError):
            continue
    return list(seen)


def thumb_path(instance_id: int) -> str:
    """Path of an instance thumbnail below the app's root (the route is in ``dashboard.app``)."""
    return f"/thumb/{int(instance_id)}.png"


def featvis_path(model: str, layer: str, neuron: int) -> str:
    """Path of a neuron's feature visualization below the app's root (``dashboard.app``)."""
    return f"/featvis/{model}/{layer}/{int(neuron)}.png"


def thumb_src(prefix: str, instance_id: int) -> str:
    """URL of an instance thumbnail under the app's path prefix (served by ``dashboard.app``)."""
    return (prefix or "/").rstrip("/") + thumb_path(instance_id)
