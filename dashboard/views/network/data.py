"""The network relation view's slice of the cache (paper Figure 4 B-C and the detail panel).

Pure read-only helpers: a :class:`~transferviz.cache.Cache` and plain values in, numpy,
pandas and the dataclasses below out (:class:`LayerBlock`, :class:`PairBlock` and their
parts, the inputs of :func:`dashboard.views.network.figures.relation_matrices`; the details
behind the detail panel); nothing here knows about Dash. Small tables (boxplot statistics,
important-weight lists) are parsed once per cache object through :meth:`Cache.memo` (a built
cache never changes; a rebuild is a new folder), which keeps every click a look-up. Arrays
stay memory-mapped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, SupportsInt, cast

import numpy as np
import pandas as pd

from dashboard.lookups import MODELS, Model, featvis_px, layer_title
from dashboard.routes import featvis_command
from dashboard.urlstate import DEFAULT_LAYER_COUNT
from dashboard.urlstate import MAX_LAYERS as URL_MAX_LAYERS
from transferviz.cache import Cache
from transferviz.errors import TransferVizError

__all__ = ["MAX_LAYERS", "Histogram", "LayerBlock", "ModelWeights", "NeuronBoxes", "NeuronDetail", "PairBlock",
           "WeightDetail", "class_important", "layer_block", "layers_from_range", "link_line", "network_inputs",
           "neuron_detail", "pair_block", "pair_link", "range_from_layers", "top_instances", "warm", "weight_detail",
           "correspondence_rows", "correspondence_choices", "CkaMatrix", "cka_matrix"]

#: At most this many consecutive layers at once (``dashboard.urlstate.MAX_LAYERS``, which a link
#: is checked against): each more layer adds ~25 ms of figure building and serialising (p95
#: budget 150 ms) and a screenful of scrolling.
MAX_LAYERS = URL_MAX_LAYERS


# =======================================================================================
# Data classes (plain numpy; read from cache slices)
# =======================================================================================
def _f(a: Any) -> np.ndarray:
    return np.asarray(a if a is not None else [], dtype=float).reshape(-1)


def _i(a: Any) -> np.ndarray:
    return np.asarray(a if a is not None else [], dtype=np.int64).reshape(-1)


@dataclass
class Histogram:
    """Counts over bins: ``counts`` (B,), ``edges`` (B+1,) ascending."""

    counts: np.ndarray
    edges: np.ndarray

    def __post_init__(self) -> None:
        self.counts = _f(self.counts)
        self.edges = _f(self.edges)
        if len(self.edges) != len(self.counts) + 1 and len(self.counts):
            raise ValueError(
                f"histogram needs len(edges) == len(counts) + 1, got {len(self.edges)} and {len(self.counts)}"
            )

    @property
    def total(self) -> int:
        """Number of values counted."""
        return int(round(float(self.counts.sum()))) if len(self.counts) else 0


@dataclass
class LayerBlock:
    """One analysed layer's neuron similarity matrix, split by importance (Figure 4 B).

    ``similarity`` is the block of the full source x target similarity matrix restricted
    to the important neurons: shape ``(len(src_important), len(tgt_important))``, rows
    source, columns target, both in rank order (most important first). The three
    histograms summarise the other regions, oriented (source, target):
    ``hist_imp_nonimp`` = important source x non-important target,
    ``hist_nonimp_imp`` = non-important source x important target,
    ``hist_nonimp_nonimp`` = non-important x non-important; ``None`` when absent.
    ``n_source``/``n_target`` are the layer's neuron counts (for hover texts).
    """

    name: str
    number: int
    src_important: np.ndarray
    tgt_important: np.ndarray
    similarity: np.ndarray
    hist_imp_nonimp: Histogram | None = None
    hist_nonimp_imp: Histogram | None = None
    hist_nonimp_nonimp: Histogram | None = None
    n_source: int | None = None
    n_target: int | None = None

    def __post_init__(self) -> None:
        self.src_important = _i(self.src_important)
        self.tgt_important = _i(self.tgt_important)
        s = np.asarray(self.similarity if self.similarity is not None else np.zeros((0, 0)), dtype=float)
        if s.size == 0:
            s = np.zeros((len(self.src_important), len(self.tgt_important)))
        if s.shape != (len(self.src_important), len(self.tgt_important)):
            raise ValueError(
                f"layer {self.name}: similarity block has shape {s.shape}, expected "
                f"{(len(self.src_important), len(self.tgt_important))} (source rows x target columns)"
            )
        self.similarity = s

    def important(self, model: Model) -> np.ndarray:
        """Important neuron indices of ``model`` in rank order."""
        return self.src_important if model == "source" else self.tgt_important


@dataclass
class NeuronBoxes:
    """Boxplot statistics per important neuron (regions 2 and 3 of Figure 4 C).

    For each important neuron ``neurons[j]`` (one side of a layer pair), the distribution
    of the important weights joining it to non-important neurons on the other side:
    ``q1``, ``median``, ``q3``, whiskers ``lower``/``upper`` and ``count`` (all (k,);
    NaN statistics where ``count == 0``). ``no_correspondence`` (target model only; else
    ``None``) is the share in [0, 1] of those weights without a corresponding important
    weight in the source model.
    """

    neurons: np.ndarray
    q1: np.ndarray
    median: np.ndarray
    q3: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    count: np.ndarray
    no_correspondence: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.neurons = _i(self.neurons)
        for name in ("q1", "median", "q3", "lower", "upper", "count"):
            arr = _f(getattr(self, name))
            if len(arr) != len(self.neurons):
                raise ValueError(f"NeuronBoxes.{name} has {len(arr)} values for {len(self.neurons)} neurons")
            setattr(self, name, arr)
        if self.no_correspondence is not None:
            self.no_correspondence = _f(self.no_correspondence)
            if len(self.no_correspondence) != len(self.neurons):
                raise ValueError("NeuronBoxes.no_correspondence must have one share per neuron")


@dataclass
class ModelWeights:
    """One model's important weights between layer i (``from``) and layer i+1 (``to``).

    Region 1: ``rows``/``cols``/``values`` (K,) - the important weights whose two neurons
    are both important (``rows`` in layer i, ``cols`` in layer i+1, neuron indices);
    ``has_correspondence`` (K,) bool, target model only (``None`` for the source model).
    Regions 2/3: ``boxes_to`` - per important neuron of layer i+1, its weights from
    non-important layer-i neurons; ``boxes_from`` - per important neuron of layer i, its
    weights to non-important layer-(i+1) neurons. Region 4: ``hist_rest`` - the important
    weights between non-important neurons.
    """

    model: Model
    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray
    has_correspondence: np.ndarray | None = None
    boxes_from: NeuronBoxes | None = None
    boxes_to: NeuronBoxes | None = None
    hist_rest: Histogram | None = None

    def __post_init__(self) -> None:
        if self.model not in ("source", "target"):
            raise ValueError(f"model must be 'source' or 'target', got {self.model!r}")
        self.rows, self.cols, self.values = _i(self.rows), _i(self.cols), _f(self.values)
        if not (len(self.rows) == len(self.cols) == len(self.values)):
            raise ValueError("ModelWeights rows, cols and values must have the same length")
        if self.has_correspondence is not None:
            self.has_correspondence = np.asarray(self.has_correspondence, dtype=bool).reshape(-1)
            if len(self.has_correspondence) != len(self.values):
                raise ValueError("ModelWeights.has_correspondence must have one flag per weight")


@dataclass
class PairBlock:
    """The weights between two consecutive analysed layers, for both models.

    ``linked`` is False where no weight matrix joins the two layers (a residual addition, a
    concatenation, a block with its own convolutions between them: :meth:`Cache.layer_links`);
    such a pair has no weights in the paper's sense, and ``reason`` says why in one line.
    """

    layer_from: str
    layer_to: str
    target: ModelWeights | None = None
    source: ModelWeights | None = None
    linked: bool = True
    reason: str = ""

    @property
    def has_weights(self) -> bool:
        """Whether there is anything to draw between the two layers."""
        return self.linked and (self.target is not None or self.source is not None)

    def weights(self, model: Model) -> ModelWeights | None:
        return self.target if model == "target" else self.source


def warm(cache: Cache) -> None:
    """Parses the small tables the view looks up (instance labels, boxplot statistics, important
    weights) once, at app start, so that no user's first click pays for it. Missing artifacts
    are skipped: the view shows its empty states."""
    cache.instances  # noqa: B018 - parsed now rather than on the first click
    layers = cache.layers
    for a, b in zip(layers[:-1], layers[1:]):
        if not pair_link(cache, a, b)[0]:
            continue  # no weights between them: nothing to parse
        _boxes_by_class(cache, a, b)
        for model in MODELS:
            _important_weights(cache, model, a, b)


# =======================================================================================
# The chosen layers
# =======================================================================================
def layers_from_range(cache: Cache, value: Sequence[Any] | None) -> list[str]:
    """RangeSlider ``[a, b]`` (1-based layer numbers) -> consecutive layer names.

    Out-of-range or reversed ends are clipped and ordered; more than ``MAX_LAYERS`` keep
    the first ``MAX_LAYERS`` from ``a``; nothing usable -> the default first layers.
    """
    n = len(cache.layers)
    try:
        a, b = (int(round(float(v))) for v in (value or [])[:2])
    except (TypeError, ValueError):
        a, b = 1, min(DEFAULT_LAYER_COUNT, n)
    a, b = sorted((min(max(a, 1), n), min(max(b, 1), n)))
    b = min(b, a + MAX_LAYERS - 1)
    return list(cache.layers[a - 1:b])


def range_from_layers(cache: Cache, layers: Sequence[str]) -> list[int]:
    """Consecutive layer names -> RangeSlider ``[a, b]`` (unknown names ignored)."""
    pos = sorted(cache.layers.index(x) + 1 for x in layers if x in cache.layers)
    if not pos:
        return [1, min(DEFAULT_LAYER_COUNT, len(cache.layers))]
    return [pos[0], min(pos[-1], pos[0] + MAX_LAYERS - 1)]


# =======================================================================================
# The figure's blocks
# =======================================================================================
def class_important(cache: Cache, model: Model, layer: str, class_index: int) -> np.ndarray:
    """Important neurons of ``layer`` for the class, rank order; empty when the class has none
    (the cache writes -1 where a class lacks target instances)."""
    return np.asarray(cache.important_neurons(model, layer, class_index), dtype=np.int64)


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
    number = cache.layer_numbers[layer]
    src = class_important(cache, "source", layer, class_index)
    tgt = class_important(cache, "target", layer, class_index)
    sizes = cache.layer_sizes
    if len(src) == 0 or len(tgt) == 0:
        return LayerBlock(layer, number, _i([]), _i([]), np.zeros((0, 0)), n_source=sizes.get(layer),
                          n_target=sizes.get(layer))
    stored_block = cache.similarity_block(layer, class_index)
    stored_hist = cache.similarity_hist(layer, class_index)
    if stored_block is None or stored_hist is None:
        raise TransferVizError(f"cache {cache.name!r} lacks the similarity analysis of {layer}; "
                               "rebuild it with 'transferviz build CONFIG'")
    block = np.asarray(stored_block, dtype=float)
    counts, edges = _trim_similarity_hist(np.asarray(stored_hist[0], dtype=float),
                                          np.asarray(stored_hist[1], dtype=float))
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


def _boxes_by_class(cache: Cache, li: str, lj: str) -> dict[tuple[str, int, str], dict[str, np.ndarray]]:
    """The pair's boxplot statistics grouped by (model, class, side), once per cache."""
    return cache.memo(("network.boxes", li, lj), lambda: _group_boxes(cache.weight_boxes(li, lj)))


def _group_boxes(df: pd.DataFrame | None) -> dict[tuple[str, int, str], dict[str, np.ndarray]]:
    if df is None or df.empty:
        return {}
    df = df.copy()
    if "non_corresponding" not in df:
        df["non_corresponding"] = np.nan
    # the stubs type a group key's parts as Hashable; "class_index" is an integer column
    return {(str(m), int(cast(SupportsInt, c)), str(s)): {k: g[k].to_numpy(dtype=float) for k in _BOX_COLS}
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
    stored = cache.weight_block(model, li, lj, class_index)
    if stored is None:
        return None
    imp_i = class_important(cache, model, li, class_index)
    imp_j = class_important(cache, model, lj, class_index)
    if len(imp_i) == 0 or len(imp_j) == 0:
        return None
    block = np.asarray(stored, dtype=float)[: len(imp_j), : len(imp_i)]  # (k_j, k_i)
    # region 1 as a weight list: rows = layer-i neuron, cols = layer-j neuron
    rows = np.tile(imp_i, len(imp_j))
    cols = np.repeat(imp_j, len(imp_i))
    vals = block.reshape(-1)
    keep = np.isfinite(vals)  # NaN: no weight (pairs across conv groups)
    corr = None
    stored_corr = cache.weight_block_correspondence(li, lj, class_index) if model == "target" else None
    if stored_corr is not None:
        c = np.asarray(stored_corr, dtype=bool)
        corr = c[: len(imp_j), : len(imp_i)].reshape(-1)[keep]
    boxes = _boxes_by_class(cache, li, lj)
    hist = None
    stored_hist = cache.weight_hist(model, li, lj, class_index)
    if stored_hist is not None:
        counts = np.asarray(stored_hist[0], dtype=float)
        edges = np.asarray(stored_hist[1], dtype=float)
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


def pair_link(cache: Cache, li: str, lj: str) -> tuple[bool, str]:
    """``(linked, reason)`` of two consecutive analysed layers, from :meth:`Cache.layer_links` (read
    once per cache). A pair the table does not list (not consecutive) counts as not linked."""
    links: dict[tuple[str, str], tuple[bool, str]] = cache.memo(("network.links",), lambda: {
        (str(r.from_layer), str(r.to_layer)): (bool(r.linked), str(r.reason or ""))
        for r in cache.layer_links().itertuples(index=False)})
    return links.get((li, lj), (False, f"{li} -> {lj}: not consecutive analysed layers"))


def link_line(li: str, lj: str, reason: str) -> str:
    """The one line an unlinked pair shows: ``"layer3.0 -> layer3.1: joined through a residual addition"``
    (the cache's reason names how the layers are joined; it is kept whole if it names the pair already)."""
    pair = f"{li} -> {lj}"
    why = reason or "no weight matrix joins them"
    return why if why.startswith(pair) else f"{pair}: {why}"


def pair_block(cache: Cache, class_index: int, li: str, lj: str) -> PairBlock:
    """Both models' weights between two consecutive layers (Figure 4 C); for a pair that no weight
    matrix joins, none, and the reason."""
    linked, reason = pair_link(cache, li, lj)
    if not linked:
        return PairBlock(li, lj, linked=False, reason=reason)
    return PairBlock(li, lj, target=_model_weights(cache, "target", class_index, li, lj),
                     source=_model_weights(cache, "source", class_index, li, lj))


def network_inputs(cache: Cache, class_index: int, layers: list[str]) -> tuple[list[LayerBlock], list[PairBlock]]:
    """Blocks and pairs for :func:`dashboard.views.network.figures.relation_matrices`."""
    blocks = [layer_block(cache, class_index, layer) for layer in layers]
    pairs = [pair_block(cache, class_index, a, b) for a, b in zip(layers[:-1], layers[1:])]
    return blocks, pairs


# ----------------------------------------------------------------------------- neurons
def top_instances(cache: Cache, model: Model, layer: str, neuron: int, class_index: int,
                  n: int = 3) -> dict[str, list[tuple[int, float]]]:
    """The class's instances with the highest conductance for the neuron, per domain:
    ``{"source": [(id, value), ...], "target": [...]}`` (the stand-in for a missing
    feature visualization)."""
    cond = cache.conductance(model, layer)
    out: dict[str, list[tuple[int, float]]] = {}
    for domain in MODELS:
        rows = cache.class_rows(class_index, domain)
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
    # the other model's most similar neurons: neuron, similarity, has_featvis, top_id, rank
    similar: list[dict[str, Any]] = field(default_factory=list)
    layer_title: str = ""  # the layer's full module path, for the hover of its short tag
    featvis_px: int | None = None  # pixel size of the cache's feature visualizations
    featvis_command: str = ""  # without a feature visualization: the command that renders it


def neuron_detail(cache: Cache, class_index: int, model: Model, layer: str, neuron: int) -> NeuronDetail:
    """A neuron's feature visualization (or top instances) and its five most similar
    neurons in the other model (``{layer}_s2t_*`` / ``{layer}_t2s_*``)."""
    other: Model = "target" if model == "source" else "source"
    key = "s2t" if model == "source" else "t2s"
    imp = class_important(cache, model, layer, class_index)
    hits = np.flatnonzero(imp == int(neuron))
    has_fv = int(neuron) in cache.featvis_neurons(model, layer)
    similar: list[dict[str, Any]] = []
    if cache.has_similarity(layer):
        idx_all, val_all = cache.most_similar(layer, class_index, key)
        idx = np.asarray(idx_all[int(neuron)])
        val = np.asarray(val_all[int(neuron)], dtype=float)
        other_imp = class_important(cache, other, layer, class_index)
        for j, s in zip(idx, val):
            j = int(j)
            fv = j in cache.featvis_neurons(other, layer)
            top_id = None
            if not fv:
                t = top_instances(cache, other, layer, j, class_index, n=1)
                first = t.get("target") or t.get("source")
                top_id = first[0][0] if first else None
            pos = np.flatnonzero(other_imp == j)
            similar.append(dict(neuron=j, similarity=float(s), has_featvis=fv, top_id=top_id,
                                rank=int(pos[0]) + 1 if len(pos) else None,
                                command="" if fv else featvis_command(cache, layer, j, other)))
    return NeuronDetail(
        model=model, layer=layer, number=cache.layer_numbers[layer], neuron=int(neuron),
        rank=int(hits[0]) + 1 if len(hits) else None, n_neurons=cache.layer_sizes.get(layer),
        has_featvis=has_fv,
        top={} if has_fv else top_instances(cache, model, layer, neuron, class_index),
        similar=similar, layer_title=layer_title(cache, layer), featvis_px=featvis_px(cache),
        featvis_command="" if has_fv else featvis_command(cache, layer, neuron, model),
    )


# ----------------------------------------------------------------------------- weights
def _important_weights(cache: Cache, model: Model, li: str, lj: str) -> pd.DataFrame:
    """The pair's important weights of every class, indexed by (class, n1, n2), once per cache."""
    return cache.memo(("network.important_weights", model, li, lj),
                      lambda: cache.important_weight_table(model, li, lj)
                      .set_index(["class_index", "n1", "n2"]).sort_index())


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
    from_title: str = ""  # the layers' full module paths, for the hover of their short tags
    to_title: str = ""


def _most_similar_source(cache: Cache, layer: str, class_index: int, target_neuron: int) -> int | None:
    """The source neuron the analysis matched the target neuron to (``analysis.matching``; in a cache built
    before the matching was stored: ``most_similar_source`` from the stored top-5); None: no match."""
    matched = cache.matched_sources(layer, class_index)
    if matched is not None:
        m = int(matched[int(target_neuron)])
        return None if m < 0 else m
    if not cache.has_similarity(layer):
        return None
    idx, val = cache.most_similar(layer, class_index, "t2s")
    if float(val[int(target_neuron), 0]) == 0.0:
        return None  # an all-zero column: the analysis defines no neighbour
    return int(idx[int(target_neuron), 0])


def weight_detail(cache: Cache, class_index: int, model: Model, li: str, lj: str, n1: int, n2: int) -> WeightDetail:
    """A weight's neurons, value, importance count, source correspondence and kernel."""
    nums = cache.layer_numbers
    value = None
    values = cache.weight_values(model, li, lj)
    if values is not None:
        v = float(values[int(n2), int(n1)])
        value = v if np.isfinite(v) else None
    iw = _important_weights(cache, model, li, lj)
    key = (int(class_index), int(n1), int(n2))
    important = key in iw.index
    count = rank = None
    if important:
        # a list of one full key: always a frame (its first row), which the stubs can type, unlike a bare
        # 3-tuple that they read as (row, column)
        row = iw.loc[[key]].iloc[0]
        count, rank = int(row["count"]), int(row["rank"]) + 1
    corresponds = counterpart = counterpart_important = None
    if model == "target":
        c1 = _most_similar_source(cache, li, class_index, n1)
        c2 = _most_similar_source(cache, lj, class_index, n2)
        if c1 is not None and c2 is not None:
            counterpart = (c1, c2)
            counterpart_important = (int(class_index), c1, c2) in _important_weights(cache, "source", li, lj).index
            # the paper's rule (5.3.2): the target weight corresponds when the most similar
            # source neurons are joined by an important source weight
            corresponds = bool(counterpart_important)
    return WeightDetail(
        model=model, layer_from=li, layer_to=lj, from_number=nums.get(li, 0), to_number=nums.get(lj, 0),
        n1=int(n1), n2=int(n2), value=value, important=important, count=count, rank=rank,
        corresponds=corresponds, counterpart=counterpart, counterpart_important=counterpart_important,
        kernel=cache.kernel(model, li, lj, int(n1), int(n2)), from_title=layer_title(cache, li),
        to_title=layer_title(cache, lj),
    )


# =======================================================================================
# Correspondence against its references (issue 12, item 1)
# =======================================================================================
def correspondence_rows(cache: Cache, class_index: int, layers: Sequence[str]) -> pd.DataFrame:
    """The class's correspondence share of each linked pair among ``layers`` (consecutive, in order) beside
    its same-index reference and permutation null: columns from_layer, to_layer, share, same_index_share,
    null_mean, null_p95 (empty when the cache has none)."""
    cols = ["from_layer", "to_layer", "share", "same_index_share", "null_mean", "null_p95"]
    try:
        df = cache.correspondence_summary()
    except (TransferVizError, FileNotFoundError, KeyError):
        return pd.DataFrame(columns=cols)
    names = list(cache.classes)
    if not 0 <= int(class_index) < len(names):
        return pd.DataFrame(columns=cols)
    df = df[df["class"] == names[int(class_index)]]
    wanted = list(zip(layers[:-1], layers[1:]))
    keep = [(a, b) for a, b in wanted if ((df.from_layer == a) & (df.to_layer == b)).any()]
    rows = [df[(df.from_layer == a) & (df.to_layer == b)].iloc[0] for a, b in keep]
    return pd.DataFrame([r[cols].to_dict() for r in rows], columns=cols)


def correspondence_choices(cache: Cache) -> dict[str, Any]:
    """The similarity, matching and permutation count the cache's correspondence was computed with."""
    a = (cache.config or {}).get("analysis", {}) or {}
    return {"similarity": a.get("similarity", "cosine"), "matching": a.get("matching", "best"),
            "permutations": int(a.get("correspondence_permutations", 200))}


# =======================================================================================
# Layer-level similarity (issue 14, item 4)
# =======================================================================================
@dataclass(frozen=True)
class CkaMatrix:
    """Linear CKA between the source model's layer i (row) and the target model's layer j (column) on one
    domain's data; ``layers`` names both axes (the cka stage's order)."""

    values: np.ndarray
    layers: list[str]
    domain: str


def cka_matrix(cache: Cache, domain: Any) -> CkaMatrix | None:
    """The cache's CKA matrix on ``domain``'s data ("target" for anything else a request sends); None for a
    cache built before the cka stage."""
    d = domain if domain in ("source", "target") else "target"
    values = cache.cka(d)
    if values is None:
        return None
    layers = cache.cka_layers or list(cache.layers)
    return CkaMatrix(np.asarray(values, dtype=float), list(layers), d)
