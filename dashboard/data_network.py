"""Cache slices -> inputs of the network relation (C) and feature (D) figure builders.

Pure read-only helpers: every function takes a :class:`~transferviz.cache.Cache` and plain
values and returns numpy/pandas/dataclasses; nothing here knows about Dash. Callbacks call
these, then the builders in :mod:`dashboard.figures`.

Small tables (boxplot stats, important-weight lists, Algorithm 1 outputs) are parsed once
per process and per build folder by ``lru_cache``: a built cache is immutable (a rebuild
publishes a *new* folder), so keying on the resolved root is safe, and it keeps every
callback a look-up (Parquet parsing alone costs 2-10 ms a file). Arrays stay memory-mapped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from dashboard.figures.network import Histogram, LayerBlock, ModelWeights, NeuronBoxes, PairBlock
from transferviz.cache import Cache, pair_name

Model = Literal["source", "target"]
MODELS: tuple[Model, Model] = ("source", "target")

__all__ = [
    "warm",
    "valid_class",
    "pair_name",
    "layer_numbers",
    "layer_label",
    "class_important",
    "layer_block",
    "pair_block",
    "network_inputs",
    "featvis_exists",
    "top_instances",
    "NeuronDetail",
    "neuron_detail",
    "WeightDetail",
    "weight_detail",
    "read_kernel",
    "Discriminability",
    "discriminability",
    "ranking_table",
    "conductance_by_domain",
    "mirrored_histogram_svg",
    "ranking_histograms",
]


def _root(cache: Cache) -> str:
    return str(cache.root)


def _arr(cache: Cache, rel: str) -> np.ndarray:
    """A memory-mapped cache array (the cache keeps its maps; raises its own error when missing)."""
    return cache.array(rel)


# =======================================================================================
# Layers and classes
# =======================================================================================
def valid_class(cache: Cache, class_index: Any) -> int | None:
    """The class index if it names a class of the cache, else ``None`` (stores and URLs
    hand the callbacks anything: None, strings, stale indices)."""
    try:
        c = int(class_index)
    except (TypeError, ValueError):
        return None
    return c if 0 <= c < len(cache.classes) else None


def layer_numbers(cache: Cache) -> dict[str, int]:
    """Layer name -> the paper's layer number (1-based, forward order)."""
    out = {}
    for i, name in enumerate(cache.layers):
        out[name] = i + 1
    for d in cache.layer_info.get("detail", []):
        if d.get("name") in out and d.get("number"):
            out[d["name"]] = int(d["number"])
    return out


def layer_label(cache: Cache, layer: str) -> str:
    """``"L3"`` style short name."""
    return f"L{layer_numbers(cache).get(layer, '?')}"


def _layer_sizes(cache: Cache) -> dict[str, int]:
    return {d["name"]: int(d["neurons"]) for d in cache.layer_info.get("detail", []) if "neurons" in d}


def class_important(cache: Cache, model: Model, layer: str, class_index: int) -> np.ndarray:
    """Important neurons of ``layer`` for the class, rank order; empty when the class has none
    (the cache writes -1 where a class lacks target instances)."""
    imp = np.asarray(_arr(cache, f"analysis/neurons/{model}/{layer}.npy")[class_index], dtype=np.int64)
    return imp[imp >= 0]


def _class_rows(cache: Cache, class_index: int, domain: str) -> np.ndarray:
    """Row positions (= instance ids) of the class's instances of one domain."""
    return _class_rows_memo(_root(cache), int(class_index), domain)


@lru_cache(maxsize=8)
def _labels_domains(root: str) -> tuple[np.ndarray, np.ndarray]:
    p = Path(root) / "data" / "instances.parquet"
    if not p.is_file():
        p = Path(root) / "data" / "base.parquet"  # the same rows, before the forward stage
    df = pd.read_parquet(p, columns=["domain", "label"])
    return df["label"].to_numpy(), df["domain"].astype(str).to_numpy()


@lru_cache(maxsize=256)
def _class_rows_memo(root: str, class_index: int, domain: str) -> np.ndarray:
    labels, domains = _labels_domains(root)
    rows = np.flatnonzero((domains == domain) & (labels == class_index))
    rows.setflags(write=False)  # shared between callers
    return rows


def warm(cache: Cache) -> None:
    """Parses the small tables the views look up (instance labels, boxplot statistics,
    important weights, Algorithm 1 outputs) once, at app start, so that no user's first
    click pays for it. Missing artifacts are skipped: the views show their empty states."""
    root = _root(cache)
    _labels_domains(root)
    layers = cache.layers
    for a, b in zip(layers[:-1], layers[1:]):
        pair = pair_name(a, b)
        if (cache.root / f"analysis/weights/{pair}_boxes.parquet").is_file():
            _boxes_by_class(root, pair)
        for model in MODELS:
            _important_weights(root, model, pair)
    for model in MODELS:
        _disc_tables(root, model)


# =======================================================================================
# Network relation view (C)
# =======================================================================================
def _trim_similarity_hist(counts: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drops the negative half of the [-1, 1] similarity bins when it is empty everywhere.

    The cache bins cosine similarity over [-1, 1]; conductance attributions are mostly
    positive, so the negative half is usually empty and would leave every strip half blank.
    ``counts`` is (regions, bins); the trim is shared by the regions of one layer so they
    stay comparable.
    """
    neg = edges[1:] <= 0
    if neg.any() and not counts[:, neg].any():
        keep = ~neg
        first = int(np.argmax(keep))
        return counts[:, keep], edges[first:]
    return counts, edges


def layer_block(cache: Cache, class_index: int, layer: str) -> LayerBlock:
    """One similarity matrix (Figure 4 B) for a class: important block + three histograms."""
    number = layer_numbers(cache)[layer]
    src = class_important(cache, "source", layer, class_index)
    tgt = class_important(cache, "target", layer, class_index)
    sizes = _layer_sizes(cache)
    if len(src) == 0 or len(tgt) == 0:
        return LayerBlock(layer, number, [], [], None, n_source=sizes.get(layer), n_target=sizes.get(layer))
    block = np.asarray(_arr(cache, f"analysis/similarity/{layer}_block.npy")[class_index], dtype=float)
    counts = np.asarray(_arr(cache, f"analysis/similarity/{layer}_hist.npy")[class_index], dtype=float)
    edges = np.asarray(_arr(cache, "analysis/similarity/hist_edges.npy"), dtype=float)
    counts, edges = _trim_similarity_hist(counts, edges)
    # regions in the cache: [important src x other tgt, other src x important tgt, neither]
    hists = [Histogram(counts[r], edges) if counts[r].sum() > 0 else None for r in range(3)]
    return LayerBlock(
        name=layer,
        number=number,
        src_important=src,
        tgt_important=tgt,
        similarity=block[: len(src), : len(tgt)],
        hist_imp_nonimp=hists[0],
        hist_nonimp_imp=hists[1],
        hist_nonimp_nonimp=hists[2],
        n_source=sizes.get(layer),
        n_target=sizes.get(layer),
    )


_BOX_COLS = ("neuron", "q1", "median", "q3", "min", "max", "count", "non_corresponding")


@lru_cache(maxsize=64)
def _boxes_by_class(root: str, pair: str) -> dict[tuple[str, int, str], dict[str, np.ndarray]]:
    df = pd.read_parquet(Path(root) / f"analysis/weights/{pair}_boxes.parquet")
    if df.empty:
        return {}
    if "non_corresponding" not in df:
        df["non_corresponding"] = np.nan
    return {(str(m), int(c), str(s)): {k: g[k].to_numpy(dtype=float) for k in _BOX_COLS}
            for (m, c, s), g in df.groupby(["model", "class_index", "side"], sort=False)}


def _neuron_boxes(b: dict[str, np.ndarray] | None, with_share: bool) -> NeuronBoxes | None:
    if not b or len(b["neuron"]) == 0:
        return None
    return NeuronBoxes(
        neurons=b["neuron"].astype(np.int64),
        q1=b["q1"], median=b["median"], q3=b["q3"],
        # the cache keeps min/max: the whiskers span every weight of the box
        lower=b["min"], upper=b["max"], count=b["count"],
        no_correspondence=b["non_corresponding"] if with_share else None,
    )


def _model_weights(cache: Cache, model: Model, class_index: int, li: str, lj: str) -> ModelWeights | None:
    pair = pair_name(li, lj)
    rel = f"analysis/weights/{model}/{pair}_block.npy"
    if not cache.has(rel):
        return None
    imp_i = class_important(cache, model, li, class_index)
    imp_j = class_important(cache, model, lj, class_index)
    if len(imp_i) == 0 or len(imp_j) == 0:
        return None
    block = np.asarray(_arr(cache, rel)[class_index], dtype=float)[: len(imp_j), : len(imp_i)]  # (k_j, k_i)
    # region 1 as a weight list: rows = layer-i neuron, cols = layer-j neuron
    rows = np.tile(imp_i, len(imp_j))
    cols = np.repeat(imp_j, len(imp_i))
    vals = block.reshape(-1)
    keep = np.isfinite(vals)  # NaN: no weight (pairs across conv groups)
    corr = None
    if model == "target" and cache.has(f"analysis/weights/target/{pair}_block_corr.npy"):
        c = np.asarray(_arr(cache, f"analysis/weights/target/{pair}_block_corr.npy")[class_index], dtype=bool)
        corr = c[: len(imp_j), : len(imp_i)].reshape(-1)[keep]
    boxes = _boxes_by_class(_root(cache), pair) if cache.has(f"analysis/weights/{pair}_boxes.parquet") else {}
    hist = None
    if cache.has(f"analysis/weights/{pair}_hist.npy"):
        mi = MODELS.index(model)
        counts = np.asarray(_arr(cache, f"analysis/weights/{pair}_hist.npy")[mi, class_index], dtype=float)
        edges = np.asarray(_arr(cache, f"analysis/weights/{pair}_hist_edges.npy")[mi, class_index], dtype=float)
        hist = Histogram(counts, edges) if counts.sum() > 0 else None
    with_share = model == "target"
    return ModelWeights(
        model=model,
        rows=rows[keep],
        cols=cols[keep],
        values=vals[keep],
        has_correspondence=corr,
        # side "in" = a layer-i neuron's weights to non-important layer-j neurons (region 3)
        boxes_from=_neuron_boxes(boxes.get((model, class_index, "in")), with_share),
        # side "out" = a layer-j neuron's weights from non-important layer-i neurons (region 2)
        boxes_to=_neuron_boxes(boxes.get((model, class_index, "out")), with_share),
        hist_rest=hist,
    )


def pair_block(cache: Cache, class_index: int, li: str, lj: str) -> PairBlock:
    """Both models' weights between two consecutive layers (Figure 4 C)."""
    return PairBlock(li, lj, target=_model_weights(cache, "target", class_index, li, lj),
                     source=_model_weights(cache, "source", class_index, li, lj))


def network_inputs(cache: Cache, class_index: int, layers: list[str]) -> tuple[list[LayerBlock], list[PairBlock]]:
    """Blocks and pairs for :func:`dashboard.figures.network.relation_matrices`."""
    blocks = [layer_block(cache, class_index, layer) for layer in layers]
    pairs = [pair_block(cache, class_index, a, b) for a, b in zip(layers[:-1], layers[1:])]
    return blocks, pairs


# ----------------------------------------------------------------------------- neurons
@lru_cache(maxsize=32)
def _featvis_files(root: str, model: str, layer: str) -> frozenset[int]:
    # one directory listing per layer instead of a stat per ranking row / similar neuron
    d = Path(root) / "featvis" / model / layer
    if not d.is_dir():
        return frozenset()
    return frozenset(int(p.stem) for p in d.glob("*.png") if p.stem.isdigit())


def featvis_exists(cache: Cache, model: Model, layer: str, neuron: int) -> bool:
    """Whether the cache holds a feature visualization PNG of the neuron."""
    return int(neuron) in _featvis_files(_root(cache), model, layer)


def top_instances(cache: Cache, model: Model, layer: str, neuron: int, class_index: int,
                  n: int = 3) -> dict[str, list[tuple[int, float]]]:
    """The class's instances with the highest conductance for the neuron, per domain:
    ``{"source": [(id, value), ...], "target": [...]}`` (the stand-in for a missing
    feature visualization)."""
    cond = cache.conductance(model, layer)
    out: dict[str, list[tuple[int, float]]] = {}
    for domain in MODELS:
        rows = _class_rows(cache, class_index, domain)
        if len(rows) == 0:
            out[domain] = []
            continue
        vals = np.asarray(cond[rows, int(neuron)], dtype=float)
        order = np.argsort(-vals, kind="stable")[:n]
        out[domain] = [(int(rows[i]), float(vals[i])) for i in order]
    return out


@dataclass
class NeuronDetail:
    """What the neuron detail panel shows."""

    model: Model
    layer: str
    number: int
    neuron: int
    rank: int | None  # importance rank for the class (1 = most important), None if not important
    n_neurons: int | None
    has_featvis: bool
    top: dict[str, list[tuple[int, float]]]
    similar: list[dict[str, Any]] = field(default_factory=list)  # other model: neuron, similarity, featvis, top id


def neuron_detail(cache: Cache, class_index: int, model: Model, layer: str, neuron: int) -> NeuronDetail:
    """A neuron's feature visualization (or top instances) and its five most similar
    neurons in the other model (``{layer}_s2t_*`` / ``{layer}_t2s_*``)."""
    other: Model = "target" if model == "source" else "source"
    key = "s2t" if model == "source" else "t2s"
    imp = class_important(cache, model, layer, class_index)
    hits = np.flatnonzero(imp == int(neuron))
    has_fv = featvis_exists(cache, model, layer, neuron)
    similar: list[dict[str, Any]] = []
    idx_rel, val_rel = f"analysis/similarity/{layer}_{key}_idx.npy", f"analysis/similarity/{layer}_{key}_val.npy"
    if cache.has(idx_rel) and cache.has(val_rel):
        idx = np.asarray(_arr(cache, idx_rel)[class_index, int(neuron)])
        val = np.asarray(_arr(cache, val_rel)[class_index, int(neuron)], dtype=float)
        other_imp = class_important(cache, other, layer, class_index)
        for j, s in zip(idx, val):
            j = int(j)
            fv = featvis_exists(cache, other, layer, j)
            top_id = None
            if not fv:
                t = top_instances(cache, other, layer, j, class_index, n=1)
                first = t.get("target") or t.get("source")
                top_id = first[0][0] if first else None
            pos = np.flatnonzero(other_imp == j)
            similar.append(dict(neuron=j, similarity=float(s), featvis=fv, top_id=top_id,
                                rank=int(pos[0]) + 1 if len(pos) else None))
    return NeuronDetail(
        model=model, layer=layer, number=layer_numbers(cache)[layer], neuron=int(neuron),
        rank=int(hits[0]) + 1 if len(hits) else None, n_neurons=_layer_sizes(cache).get(layer),
        has_featvis=has_fv,
        top={} if has_fv else top_instances(cache, model, layer, neuron, class_index),
        similar=similar,
    )


# ----------------------------------------------------------------------------- weights
@lru_cache(maxsize=64)
def _important_weights(root: str, model: str, pair: str) -> pd.DataFrame:
    p = Path(root) / f"analysis/weights/{model}/{pair}.parquet"
    df = pd.read_parquet(p) if p.is_file() else pd.DataFrame(columns=["class_index", "rank", "n1", "n2", "count", "value"])
    return df.set_index(["class_index", "n1", "n2"]).sort_index()


def read_kernel(cache: Cache, model: Model, li: str, lj: str, n1: int, n2: int) -> np.ndarray | None:
    """The weight's kernel, read straight from the model's safetensors file (memory-mapped
    slice; no model is built): conv -> conv the (kh, kw) kernel ``W[n2, n1]``; conv -> linear
    the spatial block of channel ``n1`` in row ``n2`` (square maps only); linear -> linear the
    single weight. ``None`` when it cannot be read."""
    from safetensors import safe_open

    p = cache.root / "models" / f"{model}.safetensors"
    if not p.is_file():
        return None
    try:
        with safe_open(str(p), framework="np") as f:
            key = f"{lj}.weight"
            if key not in f.keys():
                return None
            sl = f.get_slice(key)
            shape = sl.get_shape()
            if len(shape) == 4:  # conv: (out, in / groups, kh, kw)
                if n2 >= shape[0] or n1 >= shape[1]:
                    return None  # grouped conv across groups: no weight
                return np.asarray(sl[n2:n2 + 1, n1:n1 + 1])[0, 0]
            if len(shape) == 2:
                n_in_layer = _layer_sizes(cache).get(li)
                if n_in_layer and shape[1] != n_in_layer and shape[1] % n_in_layer == 0:
                    # linear after a flatten of n_in_layer channels: the channel's spatial block
                    per = shape[1] // n_in_layer
                    row = np.asarray(sl[n2:n2 + 1, n1 * per:(n1 + 1) * per])[0]
                    side = int(round(per ** 0.5))
                    return row.reshape(side, side) if side * side == per else row.reshape(1, -1)
                return np.asarray(sl[n2:n2 + 1, n1:n1 + 1]).reshape(1, 1)
    except Exception:  # noqa: BLE001 - a broken or foreign file: the panel says "no kernel"
        return None
    return None


@dataclass
class WeightDetail:
    """What the weight detail panel shows."""

    model: Model
    layer_from: str
    layer_to: str
    from_number: int
    to_number: int
    n1: int
    n2: int
    value: float | None  # the value the view draws (kernel mean / W)
    important: bool  # in the model's important-weight list for the class
    count: int | None  # instances of the class with this weight in their top k
    rank: int | None
    corresponds: bool | None  # target only
    counterpart: tuple[int, int] | None  # target only: most similar source neurons n1', n2'
    counterpart_important: bool | None
    kernel: np.ndarray | None


def _most_similar_source(cache: Cache, layer: str, class_index: int, target_neuron: int) -> int | None:
    """``most_similar_source`` of the analysis, from the stored top-5 (None: no attribution)."""
    rel = f"analysis/similarity/{layer}_t2s_idx.npy"
    vrel = f"analysis/similarity/{layer}_t2s_val.npy"
    if not (cache.has(rel) and cache.has(vrel)):
        return None
    if float(_arr(cache, vrel)[class_index, int(target_neuron), 0]) == 0.0:
        return None  # an all-zero column: the analysis defines no neighbour
    return int(_arr(cache, rel)[class_index, int(target_neuron), 0])


def weight_detail(cache: Cache, class_index: int, model: Model, li: str, lj: str, n1: int, n2: int) -> WeightDetail:
    """A weight's neurons, value, importance count, source correspondence and kernel."""
    pair = pair_name(li, lj)
    nums = layer_numbers(cache)
    value = None
    vrel = f"analysis/weights/{model}/{pair}_values.npy"
    if cache.has(vrel):
        v = float(_arr(cache, vrel)[int(n2), int(n1)])
        value = v if np.isfinite(v) else None
    iw = _important_weights(_root(cache), model, pair)
    key = (int(class_index), int(n1), int(n2))
    important = key in iw.index
    count = rank = None
    if important:
        row = iw.loc[key]
        row = row.iloc[0] if isinstance(row, pd.DataFrame) else row
        count, rank = int(row["count"]), int(row["rank"]) + 1
    corresponds = counterpart = counterpart_important = None
    if model == "target":
        c1 = _most_similar_source(cache, li, class_index, n1)
        c2 = _most_similar_source(cache, lj, class_index, n2)
        if c1 is not None and c2 is not None:
            counterpart = (c1, c2)
            counterpart_important = (int(class_index), c1, c2) in _important_weights(_root(cache), "source", pair).index
            # the paper's rule (5.3.2): the target weight corresponds when the most similar
            # source neurons are joined by an important source weight
            corresponds = bool(counterpart_important)
    return WeightDetail(
        model=model, layer_from=li, layer_to=lj, from_number=nums.get(li, 0), to_number=nums.get(lj, 0),
        n1=int(n1), n2=int(n2), value=value, important=important, count=count, rank=rank,
        corresponds=corresponds, counterpart=counterpart, counterpart_important=counterpart_important,
        kernel=read_kernel(cache, model, li, lj, int(n1), int(n2)),
    )


# =======================================================================================
# Feature view (D)
# =======================================================================================
@lru_cache(maxsize=16)
def _disc_tables(root: str, model: str) -> dict[str, pd.DataFrame]:
    base = Path(root) / "analysis" / "discriminability" / model
    out = {}
    for name in ("summary", "neurons", "points"):
        p = base / f"{name}.parquet"
        out[name] = pd.read_parquet(p) if p.is_file() else pd.DataFrame()
    return out


@dataclass
class Discriminability:
    """Algorithm 1 for one class and model, ready for the ranking list and the biplot."""

    status: str  # "ok" or why not (e.g. a domain without instances of the class)
    cv_accuracy: float | None
    n_source: int
    n_target: int
    neurons: pd.DataFrame  # layer, layer_number, neuron, discriminability, axis_x, axis_y (row = column of A)
    points: pd.DataFrame  # id, domain, x, y

    @property
    def ok(self) -> bool:
        return self.status == "ok" and len(self.neurons) > 0


def discriminability(cache: Cache, model: Model, class_index: int) -> Discriminability:
    """The class's Algorithm 1 outputs (summary, neuron axes, biplot points); memoized per
    build, class and model (treat the frames as read-only)."""
    return _discriminability(_root(cache), model, int(class_index), tuple(sorted(layer_numbers(cache).items())))


@lru_cache(maxsize=512)
def _discriminability(root: str, model: str, class_index: int,
                      numbers: tuple[tuple[str, int], ...]) -> Discriminability:
    t = _disc_tables(root, model)
    summ, neu, pts = t["summary"], t["neurons"], t["points"]
    empty_n = pd.DataFrame(columns=["layer", "layer_number", "neuron", "discriminability", "axis_x", "axis_y"])
    empty_p = pd.DataFrame(columns=["id", "domain", "x", "y"])
    row = summ[summ["class_index"] == class_index] if len(summ) else summ
    if row is None or len(row) == 0:
        return Discriminability("missing", None, 0, 0, empty_n, empty_p)
    r = row.iloc[0]
    status = str(r["status"])
    cv = float(r["cv_accuracy"]) if pd.notna(r.get("cv_accuracy")) else None
    ns, nt = int(r.get("n_source", 0) or 0), int(r.get("n_target", 0) or 0)
    if status != "ok":
        return Discriminability(status, cv, ns, nt, empty_n, empty_p)
    n = neu[neu["class_index"] == class_index].reset_index(drop=True)
    nums = dict(numbers)
    n = pd.DataFrame({
        "layer": n["layer"].astype(str),
        "layer_number": n["layer"].map(nums).astype("Int64"),
        "neuron": n["neuron"].astype(int),
        "discriminability": n["u"].astype(float),
        "axis_x": n["axis_x"].astype(float),
        "axis_y": n["axis_y"].astype(float),
    })
    p = pts[pts["class_index"] == class_index][["id", "domain", "x", "y"]].reset_index(drop=True)
    return Discriminability(status, cv, ns, nt, n, p)


def ranking_table(d: Discriminability) -> pd.DataFrame:
    """The table :func:`dashboard.figures.features.ranking_rows` sorts (row = column of A)."""
    return d.neurons[["layer", "layer_number", "neuron", "discriminability"]]


def conductance_by_domain(cache: Cache, model: Model, class_index: int,
                          neurons: pd.DataFrame) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per neuron (row of ``neurons``: ``layer``, ``neuron``), its conductance over the
    class's source and target instances; one memory-mapped gather per layer."""
    for layer in set(neurons["layer"]):
        cache.conductance(model, str(layer))  # the cache's own errors for a missing layer or file
    return _conductance_by_domain(cache, model, int(class_index),
                                  neurons["layer"].astype(str).to_numpy(), neurons["neuron"].to_numpy(dtype=np.int64))


def _conductance_by_domain(cache: Cache, model: str, class_index: int, layers: np.ndarray,
                           cols_all: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rs, rt = _class_rows(cache, class_index, "source"), _class_rows(cache, class_index, "target")
    src: list[np.ndarray] = [np.zeros(0)] * len(layers)
    tgt: list[np.ndarray] = [np.zeros(0)] * len(layers)
    for layer in dict.fromkeys(layers):  # forward order of first appearance
        idx = np.flatnonzero(layers == layer)
        cond = cache.conductance(model, str(layer))
        cols = cols_all[idx]
        a_s = np.asarray(cond[rs][:, cols], dtype=float) if len(rs) else np.zeros((0, len(cols)))
        a_t = np.asarray(cond[rt][:, cols], dtype=float) if len(rt) else np.zeros((0, len(cols)))
        for k, i in enumerate(idx):
            src[int(i)], tgt[int(i)] = a_s[:, k], a_t[:, k]
    return src, tgt


def ranking_histograms(cache: Cache, model: Model, class_index: int, width: int = 160,
                       height: int = 30) -> dict[tuple[str, int], str]:
    """``(layer, neuron) -> SVG`` mirrored conductance histogram of every ranked neuron.

    Memoized per build, model and class: the list is rebuilt on every order switch and
    class visit, the histograms never change. Empty when the class has no ranking.
    """
    d = discriminability(cache, model, class_index)
    if not d.ok:
        return {}
    for layer in set(d.neurons["layer"]):
        cache.conductance(model, str(layer))  # the cache's own errors for a missing layer or file
    return _ranking_histograms(cache, model, int(class_index), width, height)


@lru_cache(maxsize=128)
def _ranking_histograms(cache: Cache, model: str, class_index: int, width: int,
                        height: int) -> dict[tuple[str, int], str]:
    neu = _disc_tables(_root(cache), model)["neurons"]
    n = neu[neu["class_index"] == class_index]
    layers, cols = n["layer"].astype(str).to_numpy(), n["neuron"].to_numpy(dtype=np.int64)
    src, tgt = _conductance_by_domain(cache, model, class_index, layers, cols)
    return {(str(layer), int(k)): mirrored_histogram_svg(src[i], tgt[i], width=width, height=height)
            for i, (layer, k) in enumerate(zip(layers, cols))}


def mirrored_histogram_svg(src: np.ndarray, tgt: np.ndarray, bins: int = 20, *, width: int = 150,
                           height: int = 40, colors: tuple[str, str] | None = None) -> str:
    """A ranking-row mirrored histogram as a tiny SVG string (source bars up, target down).

    Same encoding as :func:`dashboard.figures.features.mirrored_histogram` (shared bins over
    both domains, each domain normalised to its own instance count, red above and blue below
    a thin axis) but as an image: a ranking list holds one per important neuron (38+ rows),
    and a Plotly figure each would cost ~25 ms of server time and one plot instance in the
    browser per row, where this costs a few hundred microseconds and one ``<img>``.
    """
    from dashboard.figures.theme import SOURCE_COLOR, TARGET_COLOR

    cs_color, ct_color = colors or (SOURCE_COLOR, TARGET_COLOR)
    s = np.asarray(src, dtype=float).reshape(-1)
    t = np.asarray(tgt, dtype=float).reshape(-1)
    s, t = s[np.isfinite(s)], t[np.isfinite(t)]
    mid = height / 2
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" preserveAspectRatio="none">']  # stretches with its <img>
    if len(s) or len(t):
        both = np.concatenate([s, t])
        lo, hi = float(both.min()), float(both.max())
        if hi - lo < 1e-12:
            lo, hi = lo - 0.5, hi + 0.5
        # equal bins by arithmetic (np.histogram's generality costs more than the drawing)
        scale = bins / (hi - lo)
        ys = np.bincount(np.clip(((s - lo) * scale).astype(np.int64), 0, bins - 1), minlength=bins) / max(len(s), 1)
        yt = np.bincount(np.clip(((t - lo) * scale).astype(np.int64), 0, bins - 1), minlength=bins) / max(len(t), 1)
        m = float(max(ys.max(initial=0), yt.max(initial=0))) or 1.0
        bw = width / bins
        for j in range(bins):
            x = j * bw + bw * 0.04
            w = bw * 0.92
            if ys[j] > 0:
                h = ys[j] / m * (mid - 1)
                parts.append(f'<rect x="{x:.2f}" y="{mid - h:.2f}" width="{w:.2f}" height="{h:.2f}" fill="{cs_color}"/>')
            if yt[j] > 0:
                h = yt[j] / m * (mid - 1)
                parts.append(f'<rect x="{x:.2f}" y="{mid:.2f}" width="{w:.2f}" height="{h:.2f}" fill="{ct_color}"/>')
    parts.append(f'<line x1="0" y1="{mid}" x2="{width}" y2="{mid}" stroke="#555555" stroke-width="0.8"/>')
    parts.append("</svg>")
    return "".join(parts)
