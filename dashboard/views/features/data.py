"""The feature view's slice of the cache: Algorithm 1's outputs for a class and model (the
ranking list and the biplot) and the conductance behind each ranked neuron's histogram.

Pure read-only helpers; what is derived per class is kept once per cache object through
:meth:`Cache.memo` (a built cache never changes), so order and model switches are look-ups.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from dashboard.lookups import MODELS, Model
from transferviz.analysis.discriminability import BASELINE_WARN, SATURATED
from transferviz.cache import Cache

__all__ = ["BASELINE_WARNING", "Discriminability", "attributions", "baseline_note", "baseline_warning",
           "classifier_note", "classifier_warning", "conductance_by_domain", "has_stability", "stability_note",
           "discriminability", "empty_message", "neuron_key", "ranked_count", "ranking_direction", "unranked_neurons",
           "ranking_table",
           "valid_model", "warm"]


#: The one-line warning of issue 12 when simple image statistics alone separate the domains.
BASELINE_WARNING = ("the domains differ in simple image statistics; discriminative neurons may be colour "
                    "detectors")


def warm(cache: Cache) -> None:
    """Parses Algorithm 1's tables once, at app start (missing ones are empty: the view says so)."""
    for model in MODELS:
        cache.discriminability_tables(model)


def has_stability(cache: Cache) -> bool:
    """Whether the cache's rankings carry a bootstrap stability (the list then has its column)."""
    return any(len(t) and "n_bootstrap" in t.columns and (t["n_bootstrap"].fillna(0) > 0).any()
               for t in (cache.discriminability_tables(m)["summary"] for m in MODELS))


def neuron_key(layer: str, neuron: int) -> str:
    """Checklist value and URL token of a neuron: ``"features.3:12"`` (the URL's ``neurons``
    format, so a selection means the same neurons whatever the row order)."""
    return f"{layer}:{int(neuron)}"


def valid_model(model: Any) -> Model:
    """The model a switch or URL names; anything else is the target model (the default)."""
    return model if model in MODELS else "target"


def ranking_direction(order: Any) -> Literal["ascending", "descending"]:
    """The order switch (``"most"``/``"least"`` discriminative first) as a sort direction of ``|u|``."""
    return "ascending" if order == "least" else "descending"


@dataclass
class Discriminability:
    """Algorithm 1 for one class and model, ready for the ranking list and the biplot."""

    status: str  # "ok" or why not (e.g. a domain without instances of the class)
    cv_accuracy: float | None
    n_source: int
    n_target: int
    # layer, layer_number, neuron, discriminability, axis_x, axis_y, stability (row = column of A; stability NaN
    # in caches built before the bootstrap)
    neurons: pd.DataFrame
    points: pd.DataFrame  # id, domain, x, y
    # the regularised classifier's diagnostics (issue 16); None/False in caches built before it
    null_mean: float | None = None
    null_p95: float | None = None
    p_value: float | None = None
    n_permutations: int = 0
    saturated: bool = False
    inputs_outnumber_instances: bool = False
    method: str | None = None  # None: a cache from before the regularised classifier (rebuild for it)
    # issue 12: the bootstrap of u (0 resamples: none in this cache) and the trivial-feature baseline (None: none)
    n_bootstrap: int = 0
    n_top: int = 0
    n_top_stable: int | None = None
    sign_flip_share: float | None = None
    null_top_stable: float | None = None  # the stable count's mean over shuffled domain labels
    baseline_accuracy: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok" and len(self.neurons) > 0


def discriminability(cache: Cache, model: Model, class_index: int) -> Discriminability:
    """The class's Algorithm 1 outputs (summary, neuron axes, biplot points); memoized per
    build, class and model (treat the frames as read-only)."""
    c = int(class_index)
    return cache.memo(("features.discriminability", model, c), lambda: _discriminability(cache, model, c))


def _discriminability(cache: Cache, model: Model, class_index: int) -> Discriminability:
    t = cache.discriminability_tables(model)
    summ, neu, pts = t["summary"], t["neurons"], t["points"]
    empty_n = pd.DataFrame(columns=["layer", "layer_number", "neuron", "discriminability", "axis_x", "axis_y",
                                    "stability"])
    empty_p = pd.DataFrame(columns=["id", "domain", "x", "y"])
    row = summ[summ["class_index"] == class_index] if len(summ) else summ
    if row is None or len(row) == 0:
        return Discriminability("missing", None, 0, 0, empty_n, empty_p)
    r = row.iloc[0]
    status = str(r["status"])
    cv = float(r["cv_accuracy"]) if pd.notna(r.get("cv_accuracy")) else None
    ns, nt = int(r.get("n_source", 0) or 0), int(r.get("n_target", 0) or 0)
    diag = _diagnostics(r, cv, ns + nt) | _baseline(cache, class_index)
    if status != "ok":
        return Discriminability(status, cv, ns, nt, empty_n, empty_p, **diag)
    n = neu[neu["class_index"] == class_index].reset_index(drop=True)
    nums = cache.layer_numbers
    n = pd.DataFrame({
        "layer": n["layer"].astype(str),
        "layer_number": n["layer"].map(nums).astype("Int64"),
        "neuron": n["neuron"].astype(int),
        "discriminability": n["u"].astype(float),
        "axis_x": n["axis_x"].astype(float),
        "axis_y": n["axis_y"].astype(float),
        "stability": n["stability"].astype(float) if "stability" in n.columns else np.nan,
    })
    p = pts[pts["class_index"] == class_index][["id", "domain", "x", "y"]].reset_index(drop=True)
    return Discriminability(status, cv, ns, nt, n, p, **diag)


def _baseline(cache: Cache, class_index: int) -> dict[str, Any]:
    """The class's trivial-feature baseline accuracy (None in caches built before it)."""
    table = cache.discriminability_baseline()
    if table is None or len(table) == 0:
        return {}
    row = table[table["class_index"] == class_index]
    return {"baseline_accuracy": _number(row.iloc[0], "cv_accuracy")} if len(row) else {}


def _number(r: pd.Series, name: str) -> float | None:
    v = r.get(name)
    return float(v) if v is not None and pd.notna(v) else None


def _diagnostics(r: pd.Series, cv: float | None, n_instances: int) -> dict[str, Any]:
    """The summary row's classifier diagnostics; a cache from before them (no ``method`` column) gets the
    flags that its own numbers imply (saturation, inputs vs instances) and no null."""
    method = r.get("method")
    n_inputs = int(r.get("n_neurons", 0) or 0)
    return dict(
        null_mean=_number(r, "null_mean"), null_p95=_number(r, "null_p95"), p_value=_number(r, "p_value"),
        n_permutations=int(r.get("n_permutations", 0) or 0),
        saturated=bool(r["saturated"]) if pd.notna(r.get("saturated")) else (cv is not None and cv >= SATURATED),
        inputs_outnumber_instances=n_inputs > n_instances,
        method=str(method) if method is not None and pd.notna(method) else None,
        n_bootstrap=int(_number(r, "n_bootstrap") or 0), n_top=int(_number(r, "n_top") or 0),
        n_top_stable=None if _number(r, "n_top_stable") is None else int(_number(r, "n_top_stable") or 0),
        sign_flip_share=_number(r, "sign_flip_share"), null_top_stable=_number(r, "null_top_stable_mean"),
    )


def classifier_note(d: Discriminability) -> str:
    """The domain classifier's score beside its permutation null, in words: ``"100% CV accuracy vs 52% with
    shuffled domains (95th pct 61%, p = 0.05)"``; a cache without the null says it needs a rebuild for one."""
    if d.cv_accuracy is None:
        return ""
    acc = f"{d.cv_accuracy:.0%} CV accuracy"
    if d.null_mean is None or d.null_p95 is None:
        return acc + " (no permutation null in this cache: rebuild it for one)"
    p = f", p = {d.p_value:.2g}" if d.p_value is not None else ""
    return f"{acc} vs {d.null_mean:.0%} with shuffled domains (95th pct {d.null_p95:.0%}{p})"


def baseline_note(d: Discriminability) -> str:
    """The trivial-feature baseline beside the domain classifier: ``"image statistics alone: 99%"``; "" in a
    cache without it."""
    if d.baseline_accuracy is None:
        return ""
    return f"image statistics alone: {d.baseline_accuracy:.0%}"


def baseline_warning(d: Discriminability) -> str | None:
    """:data:`BASELINE_WARNING` when the trivial baseline's accuracy reaches ``BASELINE_WARN``; None otherwise."""
    if d.baseline_accuracy is None or d.baseline_accuracy < BASELINE_WARN:
        return None
    return BASELINE_WARNING


def stability_note(d: Discriminability) -> str:
    """How many of the top neurons by ``|u|`` survive the bootstrap, beside the count with shuffled domains:
    ``"3 of the top 5 stable vs 2.0 with shuffled domains"``; "" in a cache without the bootstrap."""
    if d.n_bootstrap <= 0 or d.n_top_stable is None:
        return ""
    null = f" vs {d.null_top_stable:.1f} with shuffled domains" if d.null_top_stable is not None else ""
    return f"{d.n_top_stable} of the top {d.n_top} stable{null}"


def classifier_warning(d: Discriminability) -> str | None:
    """One line when the classifier's accuracy is no finding: saturated (the domains separate whatever the
    neurons, e.g. by colour alone) or more inputs than instances; None otherwise."""
    parts = []
    if d.saturated:
        parts.append(f"Classifier saturated ({d.cv_accuracy:.0%} CV accuracy): the domains separate easily, even "
                     "by trivial cues, so read u as a ranking, not as evidence")
    if d.inputs_outnumber_instances:
        how = ("the classifier's penalty chosen by nested cross-validation" if d.method is not None
               else "this cache predates the regularised classifier: rebuild it")
        parts.append(f"{len(d.neurons)} neurons outnumber the {d.n_source + d.n_target} instances ({how})")
    return ("; ".join(parts) + ".") if parts else None


def ranked_count(cache: Cache, class_index: int | None, model: Any) -> int:
    """How many neurons the class's ranking list has for ``model`` (0 without a ranking)."""
    if class_index is None:
        return 0
    d = discriminability(cache, valid_model(model), class_index)
    return len(d.neurons) if d.ok else 0


def unranked_neurons(cache: Cache, model: Any, class_index: int,
                     neurons: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    """The ``(layer, index)`` pairs of ``neurons`` (a link's ``neurons``) that the class's ranking
    list for ``model`` does not hold: valid neurons, but not important ones, which the list
    cannot check. Empty when the class has no ranking (the view says why)."""
    d = discriminability(cache, valid_model(model), class_index)
    if not d.ok:
        return []
    keys = {neuron_key(layer, n) for layer, n in zip(d.neurons["layer"], d.neurons["neuron"])}
    return [(layer, int(n)) for layer, n in neurons if neuron_key(layer, n) not in keys]


def empty_message(cache: Cache, class_index: int | None, d: Discriminability | None) -> str:
    """Why there is nothing to rank (no class, a class without instances in one domain, ...)."""
    if class_index is None:
        return "Select a class to rank its neurons by domain discriminability."
    name = cache.classes[class_index]
    if d is None or d.status == "missing":
        return f"The cache has no domain discriminability for class '{name}'."
    dom = cache.domains
    for which, n in (("source", d.n_source), ("target", d.n_target)):
        if n == 0:
            return (f"Class '{name}' has no {dom.get(which, which)} ({which}) instances: "
                    "domain discriminability needs both domains.")
    return f"No domain discriminability for class '{name}': {d.status}."


def ranking_table(d: Discriminability) -> pd.DataFrame:
    """The table :func:`dashboard.views.features.figures.ranking_rows` sorts (row = column of A)."""
    return d.neurons[["layer", "layer_number", "neuron", "discriminability", "stability"]]


def conductance_by_domain(cache: Cache, model: Model, class_index: int,
                          neurons: pd.DataFrame) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per neuron (row of ``neurons``: ``layer``, ``neuron``), its conductance over the
    class's source and target instances; one memory-mapped gather per layer."""
    layers = neurons["layer"].astype(str).to_numpy()
    cols_all = neurons["neuron"].to_numpy(dtype=np.int64)
    rs, rt = cache.class_rows(int(class_index), "source"), cache.class_rows(int(class_index), "target")
    src: list[np.ndarray] = [np.zeros(0)] * len(layers)
    tgt: list[np.ndarray] = [np.zeros(0)] * len(layers)
    for layer in dict.fromkeys(layers):  # forward order of first appearance
        idx = np.flatnonzero(layers == layer)
        cond = cache.conductance(model, str(layer))  # the cache's own errors for a missing layer or file
        cols = cols_all[idx]
        a_s = np.asarray(cond[rs][:, cols], dtype=float) if len(rs) else np.zeros((0, len(cols)))
        a_t = np.asarray(cond[rt][:, cols], dtype=float) if len(rt) else np.zeros((0, len(cols)))
        for k, i in enumerate(idx):
            src[int(i)], tgt[int(i)] = a_s[:, k], a_t[:, k]
    return src, tgt


def attributions(cache: Cache, model: Model, ids: np.ndarray, neurons: pd.DataFrame) -> np.ndarray:
    """``(len(ids), len(neurons))`` conductance of the rows ``ids`` (instance ids) on the neurons
    (``layer``, ``neuron``), one memory-mapped gather per layer: the biplot's input for the checked neurons."""
    rows = np.asarray(ids, dtype=np.int64)
    layers = neurons["layer"].astype(str).to_numpy()
    cols_all = neurons["neuron"].to_numpy(dtype=np.int64)
    out = np.zeros((len(rows), len(layers)))
    for layer in dict.fromkeys(layers):
        idx = np.flatnonzero(layers == layer)
        out[:, idx] = np.asarray(cache.conductance(model, str(layer))[rows][:, cols_all[idx]], dtype=float)
    return out
