"""The timeline view's slice of the cache: every instance's place in the final map, its
prediction and whether it flipped, epoch by epoch, and the accuracy and drift tables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from dashboard.lookups import class_colors
from dashboard.pool import POOL_SIZE, as_ids
from dashboard.sampling import MAX_POINTS, class_domain_strata, priorities, sample_note, stratified_sample
from transferviz.cache import Cache

__all__ = ["DOMAIN_FILTERS", "MapGroup", "TimelineData", "domain_filter", "epoch_index", "map_ranges", "timeline_data",
           "trails"]

DOMAIN_FILTERS = ("both", "source", "target")


@dataclass(frozen=True)
class MapGroup:
    """The instances of one (class, domain) trace: ``rows`` index the timeline arrays."""

    label: int
    domain: str
    rows: np.ndarray
    hovertext: np.ndarray  # static per instance: its predicted class names over all epochs, "3 3 5 5"
    epoch_span: tuple[int, int] = (0, 0)  # first and last epoch, for the hover template


def map_ranges(positions: np.ndarray, pad: float = 0.04) -> tuple[list[float], list[float]]:
    """x and y axis ranges covering every instance at every epoch (points move, axes stay)."""
    flat = np.asarray(positions, dtype=float).reshape(-1, 2)
    finite = flat[np.isfinite(flat).all(axis=1)]
    if len(finite) == 0:
        return [-1.0, 1.0], [-1.0, 1.0]
    lo, hi = finite.min(axis=0), finite.max(axis=0)
    span = np.maximum(hi - lo, 1e-6)
    lo, hi = lo - pad * span, hi + pad * span
    return [float(lo[0]), float(hi[0])], [float(lo[1]), float(hi[1])]


@dataclass(frozen=True)
class TimelineData:
    """Everything the timeline view reads, prepared once per cache object."""

    epochs: list[int]
    positions: np.ndarray  # (E, N, 2) float32
    pred: np.ndarray  # (E, N)
    flips: np.ndarray  # (E, N) bool
    wrong: np.ndarray  # (E, N) bool: prediction != true label
    labels: np.ndarray  # (N,)
    domains: np.ndarray  # (N,) "source"/"target"
    groups: list[MapGroup]
    ranges: tuple[list[float], list[float]]
    class_names: dict[int, str]
    class_colors: dict[int, str]
    accuracy: pd.DataFrame | None
    drift: pd.DataFrame | None
    layers: list[str]
    in_domain: dict[str, np.ndarray]  # "source"/"target" -> (N,) bool, domains == that domain
    drawn: np.ndarray | None = None  # (N,) bool: the rows the map draws (None: all; see dashboard.sampling)
    note: str = ""  # "showing k of N ..." when the map draws a sample


def timeline_data(cache: Cache) -> TimelineData | None:
    """The cache's timeline arrays (None when the cache has no timeline); prepared once per Cache
    object, so a slider step is a few numpy slices."""
    return cache.memo(("timeline.data",), lambda: _timeline_data(cache))


def _timeline_data(cache: Cache) -> TimelineData | None:
    if not cache.has_timeline:
        return None
    epochs = [int(e) for e in cache.timeline_epochs()]
    positions = np.ascontiguousarray(cache.timeline_positions(), dtype=np.float32)
    pred = np.asarray(cache.timeline_pred()).astype(np.int64)
    flips = np.asarray(cache.timeline_flips(), dtype=bool)
    df = cache.instances
    labels = df["label"].to_numpy(dtype=np.int64)
    domains = df["domain"].to_numpy(dtype=object).astype(str)
    in_domain = {d: domains == d for d in ("source", "target")}
    names = dict(enumerate(cache.classes))
    wrong = pred != labels[None, :]
    # static hover text: what the model predicted at every epoch (the rest is in the trace's template)
    name_arr = np.array([names.get(i, str(i)) for i in range(max(len(names), int(pred.max(initial=0)) + 1))],
                        dtype=object)
    by_epoch = [" ".join(row) for row in name_arr[pred.T]]
    hover = np.array(by_epoch, dtype=object)
    # above dashboard.sampling.MAX_POINTS the map draws one fixed stratified sample at every epoch (the
    # same points move as the slider scrubs; an animation of different samples would flicker)
    n = len(labels)
    strata = class_domain_strata(labels, domains)
    drawn_rows = stratified_sample(np.arange(n), strata, priorities(n), MAX_POINTS)
    drawn = np.zeros(n, dtype=bool)
    drawn[drawn_rows] = True
    groups = []
    for lab in range(len(names)):
        for dom in ("source", "target"):
            rows = np.flatnonzero((labels == lab) & in_domain[dom] & drawn)
            if len(rows):
                groups.append(MapGroup(lab, dom, rows, hover[rows], (epochs[0], epochs[-1])))
    return TimelineData(
        epochs=epochs, positions=positions, pred=pred, flips=flips, wrong=wrong, labels=labels, domains=domains,
        groups=groups, ranges=map_ranges(positions), class_names=names, class_colors=class_colors(cache),
        accuracy=cache.timeline_accuracy(), drift=cache.timeline_drift(),
        layers=list(cache.layers), in_domain=in_domain,
        drawn=None if len(drawn_rows) == n else drawn, note=sample_note(len(drawn_rows), n),
    )


def epoch_index(epoch: Any, epochs: Sequence[int]) -> int:
    """Index of the kept epoch nearest to ``epoch`` (the slider may send any number; None -> 0)."""
    try:
        e = float(epoch)
    except (TypeError, ValueError):
        return 0
    if not np.isfinite(e):
        return 0
    return int(np.argmin([abs(e - x) for x in epochs]))


def domain_filter(value: Any) -> str:
    """The map's domain filter from a control value (anything unknown -> "both")."""
    return value if value in DOMAIN_FILTERS else "both"


def trails(td: TimelineData, pool: Any, i: int) -> list[tuple[int, np.ndarray, str, str, list[str]]]:
    """Trail of each pool instance over epochs ``0..i`` (positions, class colour, domain, hover texts)."""
    n = td.positions.shape[1]
    out = []
    for inst in as_ids(pool)[-POOL_SIZE:]:
        if inst >= n:  # unknown id (typed or from another cache): no trail
            continue
        lab = int(td.labels[inst])
        hover = [f"#{inst} \u00b7 epoch {td.epochs[k]}: predicted {td.class_names.get(int(p), p)}"
                 + (" \u2717" if p != lab else "") for k, p in enumerate(td.pred[:i + 1, inst])]
        out.append((inst, td.positions[:i + 1, inst], td.class_colors.get(lab, "#777"), str(td.domains[inst]),
                    hover))
    return out
