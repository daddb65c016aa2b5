"""The hard examples view's slice of the cache: both maps' positions and each model's losses.

Everything both maps need (positions, losses, hover texts) is prepared once per cache object
(:func:`hard_data`, through :meth:`Cache.memo`: a built cache never changes), so a callback
only filters rows and builds figures. The controls' and the brush store's values are checked
here too: stores and radios hand the callbacks anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dashboard.highlight import highlight_ids
from dashboard.lookups import MODELS
from dashboard.pool import as_ids, focus_id
from dashboard.sampling import MAX_POINTS, class_domain_strata, priorities, stratified_sample
from transferviz.cache import Cache

__all__ = ["DEFAULTS", "DOMAINS", "MAPS", "MAP_KEYS", "WRONG_ONLY", "HardData", "brushed_ids", "drawn_rows",
           "focus_point", "highlight_points", "hard_data", "row_of", "selection", "visible_rows", "warm"]

DOMAINS = ("both", "source", "target")
#: The controls' initial values, also what an unknown value falls back to.
DEFAULTS = {"model": "target", "domain": "both"}
#: The value of the "only mispredicted" checkbox.
WRONG_ONLY = "wrong"
#: The two maps, in page order: key -> (title, what positions the instances).
MAPS: dict[str, tuple[str, str]] = {"hidden": ("hidden layer", "t-SNE of the target model's embeddings"),
                                    "pixels": ("raw pixels", "t-SNE of the images' pixels")}
MAP_KEYS = tuple(MAPS)


@dataclass(frozen=True)
class HardData:
    """Both maps' inputs, row i = row i of ``cache.instances``."""

    ids: np.ndarray
    domain: np.ndarray                       # 'source' / 'target'
    maps: dict[str, np.ndarray | None]       # map key -> (N, 2) positions, None when the cache lacks it
    loss: dict[str, np.ndarray]              # model -> loss
    wrong: dict[str, np.ndarray]             # model -> prediction != label
    hover: dict[str, np.ndarray]             # model -> hover text: domain, true label, that model's answer
    strata: np.ndarray | None = None         # class x domain code of each row (the maps' sample keeps their shares)
    priority: np.ndarray | None = None       # fixed random order of the rows (dashboard.sampling.priorities)


def warm(cache: Cache) -> None:
    """Prepares :func:`hard_data` at start-up rather than on the first visitor's request."""
    try:
        hard_data(cache)
    except Exception:  # noqa: BLE001 - the maps' callback reports any real problem when the tab is used
        pass


def hard_data(cache: Cache) -> HardData:
    """The maps' inputs, computed once per cache object."""
    return cache.memo(("hard_examples.data",), lambda: _hard_data(cache))


def _hard_data(cache: Cache) -> HardData:
    df = cache.instances
    n = len(df)
    names = dict(enumerate(cache.classes))

    def text(values: Any) -> np.ndarray:
        return np.asarray(values, dtype=object).astype(str).astype(object)

    def class_name(col: str) -> np.ndarray:
        return text(df[col].map(names).fillna(df[col].astype(str)))

    label = df["label"].to_numpy(dtype=np.int64)
    # "target, true <b>3</b><br>source model: 5 ✗ 82%, loss 2.31" (the id comes from customdata). Only
    # the coloured model's answer: both maps carry every instance's text, so it is kept short (the
    # detail card shows both models).
    head = text(df["domain"]) + ", true <b>" + class_name("label") + "</b><br>"
    loss: dict[str, np.ndarray] = {}
    wrong: dict[str, np.ndarray] = {}
    hover: dict[str, np.ndarray] = {}
    for m in MODELS:
        loss[m] = df[f"{m}_loss"].to_numpy(dtype=np.float64)
        wrong[m] = df[f"{m}_pred"].to_numpy(dtype=np.int64) != label
        conf = text(np.char.mod("%.0f%%", 100 * df[f"{m}_conf"].to_numpy(dtype=np.float64)))
        hover[m] = (head + f"{m} model: " + class_name(f"{m}_pred") + np.where(wrong[m], " \u2717 ", " ")
                    + conf + ", loss " + text(np.char.mod("%.3g", loss[m])))

    def positions(arr: np.ndarray | None) -> np.ndarray | None:
        if arr is None:
            return None
        arr = np.asarray(arr, dtype=np.float64)
        return arr if arr.shape == (n, 2) else None  # a stale or foreign array: treat as missing

    hidden = cache.tsne() if cache.has_tsne else None  # built without the t-SNE map: that map says so
    return HardData(
        ids=df["id"].to_numpy(dtype=np.int64), domain=text(df["domain"]),
        maps={"hidden": positions(hidden), "pixels": positions(cache.pixel_tsne())},
        loss=loss, wrong=wrong, hover=hover,
        strata=class_domain_strata(label, text(df["domain"])), priority=priorities(n))


def drawn_rows(d: HardData, keep: np.ndarray, model: str, limit: int = MAX_POINTS) -> np.ndarray:
    """The rows a map draws of those ``keep`` selects: all up to ``limit``, else a stratified sample
    (:func:`dashboard.sampling.stratified_sample`, class x domain) that always includes the
    ``limit // 10`` highest losses of ``model`` -- the hard examples this view is for."""
    rows = np.flatnonzero(keep)
    if len(rows) <= limit:
        return rows
    loss = np.nan_to_num(d.loss[model][rows], nan=-np.inf)
    top = limit // 10
    hardest = rows[np.argpartition(-loss, top - 1)[:top]] if top else None
    strata = d.strata if d.strata is not None else np.zeros(len(d.ids), np.int64)
    priority = d.priority if d.priority is not None else priorities(len(d.ids))
    return stratified_sample(rows, strata, priority, limit, must=hardest)


def selection(model: Any, domain: Any, wrong_only: Any) -> tuple[str, str, bool]:
    """The controls' values, anything unknown replaced by the view's default."""
    model = model if model in MODELS else DEFAULTS["model"]
    domain = domain if domain in DOMAINS else DEFAULTS["domain"]
    return model, domain, bool(wrong_only) and WRONG_ONLY in (wrong_only or [])


def visible_rows(d: HardData, model: str, domain: str, wrong_only: bool) -> np.ndarray:
    """Boolean mask of the instances the filters keep."""
    keep = np.ones(len(d.ids), dtype=bool) if domain == "both" else d.domain == domain
    return keep & d.wrong[model] if wrong_only else keep


def brushed_ids(brush: Any) -> list[int] | None:
    """The brush's instance ids (None: no brush). The brush store holds
    ``{"source": map key, "ids": [...]}``: the lasso of one map."""
    if not isinstance(brush, dict) or brush.get("source") not in MAP_KEYS:
        return None
    return as_ids(brush.get("ids"))


def row_of(d: HardData, instance_id: int) -> int | None:
    """The row of ``instance_id`` in :class:`HardData` (and ``cache.instances``), None if unknown."""
    if 0 <= instance_id < len(d.ids) and d.ids[instance_id] == instance_id:
        return instance_id  # ids are row numbers by construction
    hit = np.flatnonzero(d.ids == instance_id)
    return int(hit[0]) if len(hit) else None


def highlight_points(d: HardData, key: str, highlight: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(ids, x, y)`` of the find box's instances (``ids.HIGHLIGHT``) in map ``key``, whatever the
    filters (as the focus: a found instance shows even where the filters hide its point)."""
    xy = d.maps.get(key)
    found = highlight_ids(highlight)
    if xy is None or not len(found):
        return found[:0], np.zeros(0, np.float32), np.zeros(0, np.float32)
    rows = [r for r in (row_of(d, int(i)) for i in found) if r is not None]
    rows_arr = np.asarray(rows, dtype=np.int64)
    return d.ids[rows_arr], xy[rows_arr, 0], xy[rows_arr, 1]


def focus_point(d: HardData, key: str, focus: Any) -> dict[str, Any] | None:
    """``{"id", "x", "y"}`` of the focused instance in map ``key`` (None: no valid focus or no map)."""
    fid = focus_id(focus, len(d.ids))
    xy = d.maps.get(key)
    row = row_of(d, fid) if fid is not None else None
    if xy is None or row is None:
        return None
    return {"id": fid, "x": float(xy[row, 0]), "y": float(xy[row, 1])}
