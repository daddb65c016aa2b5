"""How much the findings depend on the choices the paper leaves open (issue 12, item 5).

``transferviz sensitivity CACHE_OR_CONFIG`` reruns the abstract and compare steps of a built cache for a
small grid of those choices -- one choice changed at a time from the values the cache was built with --
from the cached conductance (no new attribution) and the cached models, and writes a table:

* ``important neurons``: per layer, the Jaccard index of each class's important neurons (target model)
  under the variant against the built ones, averaged over classes, and the overlap coefficient (shared /
  the smaller set: 1 when a smaller k keeps a subset, so a change of k is read from it, not from Jaccard);
* ``important weights``: per linked layer pair, the same for the important weights (target model);
* ``correspondence share``: per pair, the mean share of important target weights that correspond to
  important source weights, built and under the variant, and the change.

The grid: ``neuron_fraction`` halved and doubled, the important-weight ``k`` halved and doubled, the
active-receiver rule flipped, the other ``weight_reduction`` (a conv weight's level over the map: max or
sum), the other ``similarity``, the other two ``matching`` rules. ``baseline``, ``n_steps`` and the
attribution method change the conductance itself, so they need a rebuild (their effect on completeness is
in the attribute stage's notes).

A Jaccard near 1 and a change near 0 say a finding does not hang on that choice; a Jaccard of 0.3 says
the important set is mostly the choice's doing, and the views should be read with that in mind.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from transferviz.analysis import ranking
from transferviz.analysis import similarity as sim
from transferviz.analysis.weights import REDUCTIONS, important_weights, receiver_activity
from transferviz.build.analysis import linked_pairs
from transferviz.cache import Cache, pair_name
from transferviz.config import AnalysisSpec, parse_config
from transferviz.preprocess import to_tensor

__all__ = ["Variant", "default_grid", "sensitivity_table", "COLUMNS"]

COLUMNS = ["choice", "value", "measure", "scope", "built", "variant", "change", "overlap"]
MODELS = ("source", "target")


@dataclass(frozen=True)
class Variant:
    """One choice changed from the built value: ``choice`` names the config key (``weight_k`` scales the
    important-weight k of every pair by ``value``)."""

    choice: str
    value: Any

    @property
    def changes_weights(self) -> bool:
        return self.choice in ("neuron_fraction", "weight_k", "active_receivers", "weight_reduction")


def default_grid(a: AnalysisSpec) -> list[Variant]:
    """The one-at-a-time grid around the built analysis choices ``a``."""
    out = [Variant("neuron_fraction", f) for f in (a.neuron_fraction / 2, min(1.0, a.neuron_fraction * 2))
           if f != a.neuron_fraction]
    out += [Variant("weight_k", 0.5), Variant("weight_k", 2.0), Variant("active_receivers", not a.active_receivers)]
    out += [Variant("weight_reduction", r) for r in REDUCTIONS if r != a.weight_reduction]
    out += [Variant("similarity", s) for s in sim.SIMILARITIES if s != a.similarity]
    out += [Variant("matching", m) for m in sim.MATCHINGS if m != a.matching]
    return out


def _jaccard(a: Iterable[Any], b: Iterable[Any]) -> tuple[float, float]:
    """Jaccard index and overlap coefficient (shared / the smaller set) of two sets. When a choice changes how
    many are kept (k halved), Jaccard is at most the size ratio even for nested sets; the overlap is 1 then,
    and below 1 only when the variant keeps members the built set lacks."""
    sa, sb = set(a), set(b)
    if not sa and not sb:
        return 1.0, 1.0
    shared = len(sa & sb)
    return shared / len(sa | sb), (shared / min(len(sa), len(sb)) if sa and sb else 0.0)


def _mean_pair(values: list[tuple[float, float]]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=float).reshape(-1, 2)
    return float(arr[:, 0].mean()), float(arr[:, 1].mean())


class _Run:
    """The cache's classes, layers, conductance and models, read once, and what the grid derives from them."""

    def __init__(self, cache: Cache, device: torch.device) -> None:
        self.cache, self.device = cache, device
        self.config = parse_config(cache.config, f"{cache.root}/manifest.json")
        self.a = self.config.analysis
        # the same instances and layer pairs as the abstract and compare stages
        self.rows = [cache.class_rows(c, "target") for c in range(len(cache.classes))]
        self.pairs = linked_pairs(cache)
        self.shapes = {d["name"]: d["output_shape"] for d in cache.layer_info["detail"]}
        self._x: torch.Tensor | None = None
        self._models: dict[str, torch.nn.Module] = {}

    def inputs(self) -> torch.Tensor:
        if self._x is None:
            m = self.config.model
            self._x = to_tensor(np.asarray(self.cache.images), m.mean, m.std)
        return self._x

    def model(self, which: str) -> torch.nn.Module:
        if which not in self._models:
            self._models[which] = self.cache.model(which).to(self.device).eval()  # type: ignore[arg-type]
        return self._models[which]

    def neurons(self, which: str, layer: str, fraction: float) -> list[np.ndarray]:
        """Each class's important neurons at ``fraction`` (the built ones at the built fraction)."""
        if fraction == self.a.neuron_fraction:
            built = self.cache.array(f"analysis/neurons/{which}/{layer}.npy")
            return [row[row >= 0] for row in np.asarray(built)]
        cond = self.cache.conductance(which, layer)  # type: ignore[arg-type]
        k = ranking.top_k(cond.shape[1], fraction)
        return [ranking.important_neurons(np.asarray(cond[r]), k) if len(r) else np.zeros(0, np.int64)
                for r in self.rows]

    def weights(self, which: str, pair: tuple[str, str, str], v: Variant | None) -> list[np.ndarray]:
        """Each class's important weights ``(K, 2)`` (n1, n2) of ``pair`` under ``v`` (None: the built ones)."""
        li, lj, via = pair
        if v is None or not v.changes_weights:
            t = self.cache.table(f"analysis/weights/{which}/{pair_name(li, lj)}.parquet")
            return [t.loc[t.class_index == c, ["n1", "n2"]].to_numpy() for c in range(len(self.rows))]
        fraction = v.value if v.choice == "neuron_fraction" else self.a.neuron_fraction
        active_rule = v.value if v.choice == "active_receivers" else self.a.active_receivers
        reduction = v.value if v.choice == "weight_reduction" else self.a.weight_reduction
        cond_j = self.cache.conductance(which, lj) if active_rule and via == lj else None  # type: ignore[arg-type]
        built = self.weights(which, pair, None)
        out = []
        for c, r in enumerate(self.rows):
            k = self.a.weight_top_k
            if v.choice == "weight_k":  # scale what the build kept for this class and pair
                k = max(1, int(round(len(built[c]) * v.value)))
            active = None if cond_j is None else receiver_activity(np.asarray(cond_j[r]))
            res = important_weights(self.model(which), li, via, self.inputs()[r], k_instance=k, k_class=k,
                                    device=self.device, memory_budget_mb=self.a.memory_budget_mb,
                                    fraction=fraction, layer_i_shape=self.shapes[li], receiver_active=active,
                                    reduction=reduction)
            out.append(np.column_stack([res.n1, res.n2]) if len(r) else np.zeros((0, 2), np.int64))
        return out

    def matches(self, layer: str, similarity: str, matching: str) -> list[np.ndarray]:
        """Each class's matched source neuron of every target neuron of ``layer``."""
        a_s = self.cache.conductance("source", layer)  # type: ignore[arg-type]
        a_t = self.cache.conductance("target", layer)  # type: ignore[arg-type]
        return [sim.match_sources(sim.similarity_matrix(np.asarray(a_s[r]), np.asarray(a_t[r]), similarity),
                                  matching) for r in self.rows]


def _share(tgt: list[np.ndarray], src: list[np.ndarray], m_i: list[np.ndarray], m_j: list[np.ndarray],
           ns_i: int, ns_j: int) -> float:
    shares = [float(sim.correspondence_from_matches(t, s, a, b, ns_i, ns_j).mean())
              for t, s, a, b in zip(tgt, src, m_i, m_j) if len(t)]
    return float(np.mean(shares)) if shares else float("nan")


def sensitivity_table(cache: Cache, grid: list[Variant] | None = None, device: torch.device | None = None,
                      progress: bool = True, log: Callable[[str], None] | None = None) -> pd.DataFrame:
    """The table of :data:`COLUMNS` for ``grid`` (default :func:`default_grid`) on a built cache."""
    run = _Run(cache, device or torch.device("cpu"))
    a = run.a
    grid = default_grid(a) if grid is None else grid
    sizes = cache.layer_sizes
    built_match: dict[str, list[np.ndarray]] = {}
    built_w = {(m, p): run.weights(m, p, None) for m in MODELS for p in run.pairs}
    rows: list[dict[str, Any]] = []
    bar = tqdm(total=len(grid), desc="  sensitivity", unit="choice", disable=not progress, file=sys.stderr,
               leave=False, dynamic_ncols=True)

    def matched(layer: str, similarity: str, matching: str) -> list[np.ndarray]:
        key = f"{layer}|{similarity}|{matching}"
        if key not in built_match:
            built_match[key] = run.matches(layer, similarity, matching)
        return built_match[key]

    built_share = {p: _share(built_w[("target", p)], built_w[("source", p)],
                             matched(p[0], a.similarity, a.matching), matched(p[1], a.similarity, a.matching),
                             sizes[p[0]], sizes[p[1]]) for p in run.pairs}
    for v in grid:
        if log:
            log(f"[sensitivity] {v.choice} = {v.value}")
        if v.choice == "neuron_fraction":
            for layer in cache.layers:
                built_n, var_n = run.neurons("target", layer, a.neuron_fraction), run.neurons("target", layer, v.value)
                j, o = _mean_pair([_jaccard(x, y) for x, y in zip(built_n, var_n)])
                rows.append({"choice": v.choice, "value": v.value, "measure": "important neurons", "scope": layer,
                             "built": 1.0, "variant": j, "change": j - 1.0, "overlap": o})
        similarity = v.value if v.choice == "similarity" else a.similarity
        matching = v.value if v.choice == "matching" else a.matching
        for p in run.pairs:
            w = {m: run.weights(m, p, v) for m in MODELS} if v.changes_weights else \
                {m: built_w[(m, p)] for m in MODELS}
            name = f"{p[0]}->{p[1]}"
            if v.changes_weights:
                j, o = _mean_pair([_jaccard(map(tuple, x), map(tuple, y))
                                   for x, y in zip(built_w[("target", p)], w["target"])])
                rows.append({"choice": v.choice, "value": v.value, "measure": "important weights", "scope": name,
                             "built": 1.0, "variant": j, "change": j - 1.0, "overlap": o})
            share = _share(w["target"], w["source"], matched(p[0], similarity, matching),
                           matched(p[1], similarity, matching), sizes[p[0]], sizes[p[1]])
            rows.append({"choice": v.choice, "value": v.value, "measure": "correspondence share", "scope": name,
                         "built": built_share[p], "variant": share, "change": share - built_share[p],
                         "overlap": float("nan")})
        bar.update(1)
    bar.close()
    return pd.DataFrame(rows, columns=COLUMNS)
