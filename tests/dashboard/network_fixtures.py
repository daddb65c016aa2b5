"""Synthetic inputs of the network relation figure: build its dataclasses from raw values.

The dashboard reads these blocks ready-made from the cache (``dashboard.views.network.data``);
the figure tests make them from a full similarity matrix, an important-weight list or raw
weight groups instead, so they can check every region against numbers they chose.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from dashboard.lookups import Model
from dashboard.views.network.data import Histogram, LayerBlock, ModelWeights, NeuronBoxes, PairBlock, _f, _i
from dashboard.views.network.figures import _label_band, _place

__all__ = ["benchmark_case", "histogram_from_values", "layer_block_from_similarity", "layout_geometry",
           "model_weights_from_important_weights", "neuron_boxes_from_groups"]


def histogram_from_values(values: Any, bins: int = 10, value_range: tuple[float, float] | None = None) -> Histogram:
    """Histogram of ``values`` (NaNs dropped) with ``bins`` equal bins over ``value_range``
    (default: the data range, widened to a unit interval around a constant)."""
    v = _f(values)
    v = v[np.isfinite(v)]
    if value_range is None:
        if len(v):
            lo, hi = float(v.min()), float(v.max())
            if hi - lo < 1e-12:
                lo, hi = lo - 0.5, hi + 0.5
        else:
            lo, hi = 0.0, 1.0
        value_range = (lo, hi)
    counts, edges = np.histogram(v, bins=bins, range=value_range)
    return Histogram(counts=counts, edges=edges)


def layer_block_from_similarity(
    name: str,
    number: int,
    similarity: np.ndarray,
    src_important: Sequence[int],
    tgt_important: Sequence[int],
    bins: int = 10,
) -> LayerBlock:
    """A block from the full ``(N_source, N_target)`` similarity matrix.

    Histograms use ``bins`` equal bins over [0, 1] (values outside are clipped into
    the end bins, as cosine similarity of attributions can be slightly negative).
    """
    S = np.asarray(similarity, dtype=float)
    si, ti = _i(src_important), _i(tgt_important)
    ns = np.setdiff1d(np.arange(S.shape[0]), si)
    nt = np.setdiff1d(np.arange(S.shape[1]), ti)

    def h(v: np.ndarray) -> Histogram | None:
        if v.size == 0:
            return None
        return histogram_from_values(np.clip(v, 0.0, 1.0), bins=bins, value_range=(0.0, 1.0))

    return LayerBlock(
        name=name,
        number=number,
        src_important=si,
        tgt_important=ti,
        similarity=S[np.ix_(si, ti)],
        hist_imp_nonimp=h(S[np.ix_(si, nt)]),
        hist_nonimp_imp=h(S[np.ix_(ns, ti)]),
        hist_nonimp_nonimp=h(S[np.ix_(ns, nt)]),
        n_source=S.shape[0],
        n_target=S.shape[1],
    )


def neuron_boxes_from_groups(
    neurons: Sequence[int],
    groups: Sequence[Sequence[float]],
    no_correspondence_counts: Sequence[int] | None = None,
) -> NeuronBoxes:
    """Boxplot statistics from one array of weight values per neuron.

    Whiskers follow Tukey (the most extreme values within 1.5 IQR of the box).
    ``no_correspondence_counts[j]`` counts the weights of ``groups[j]`` without a
    source correspondence (target model only).
    """
    stats = np.full((len(groups), 6), np.nan)
    for j, g in enumerate(groups):
        v = _f(g)
        v = v[np.isfinite(v)]
        stats[j, 5] = len(v)
        if len(v) == 0:
            continue
        q1, med, q3 = np.percentile(v, [25, 50, 75])
        iqr = q3 - q1
        lo = v[v >= q1 - 1.5 * iqr].min()
        hi = v[v <= q3 + 1.5 * iqr].max()
        stats[j, :5] = (q1, med, q3, lo, hi)
    stats[:, 5] = np.nan_to_num(stats[:, 5])
    share = None
    if no_correspondence_counts is not None:
        cnt = _f(no_correspondence_counts)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(stats[:, 5] > 0, cnt / np.maximum(stats[:, 5], 1), np.nan)
    return NeuronBoxes(
        neurons=_i(neurons),
        q1=stats[:, 0],
        median=stats[:, 1],
        q3=stats[:, 2],
        lower=stats[:, 3],
        upper=stats[:, 4],
        count=stats[:, 5],
        no_correspondence=share,
    )


def model_weights_from_important_weights(
    model: Model,
    from_idx: Sequence[int],
    to_idx: Sequence[int],
    values: Sequence[float],
    important_from: Sequence[int],
    important_to: Sequence[int],
    has_correspondence: Sequence[bool] | None = None,
    bins: int = 10,
) -> ModelWeights:
    """Split a model's important-weight list into the four regions of Figure 4 C.

    ``from_idx``/``to_idx``/``values`` list the important weights (neuron in layer i,
    neuron in layer i+1, value); ``important_from``/``important_to`` are the layers'
    important neurons (rank order); ``has_correspondence`` flags the weights with a
    corresponding important source weight (target model only).
    """
    fi, ti, v = _i(from_idx), _i(to_idx), _f(values)
    corr = None if has_correspondence is None else np.asarray(has_correspondence, dtype=bool).reshape(-1)
    imp_f, imp_t = _i(important_from), _i(important_to)
    a = np.isin(fi, imp_f)
    b = np.isin(ti, imp_t)
    r1 = a & b

    def boxes(neurons: np.ndarray, owner: np.ndarray, sel: np.ndarray) -> NeuronBoxes:
        groups, ncount = [], []
        for n in neurons:
            m = sel & (owner == n)
            groups.append(v[m])
            ncount.append(int((~corr[m]).sum()) if corr is not None else 0)
        return neuron_boxes_from_groups(neurons, groups, ncount if corr is not None else None)

    rest = v[~a & ~b]
    return ModelWeights(
        model=model,
        rows=fi[r1],
        cols=ti[r1],
        values=v[r1],
        has_correspondence=None if corr is None else corr[r1],
        boxes_from=boxes(imp_f, fi, a & ~b),
        boxes_to=boxes(imp_t, ti, ~a & b),
        hist_rest=histogram_from_values(rest, bins=bins) if len(rest) else None,
    )


def layout_geometry(
    blocks: Sequence[LayerBlock], show_nonimportant: bool = True, first_rows: Model = "target", strip: float = 4.0
) -> list[dict[str, Any]]:
    """Where the figure puts each similarity matrix (data units, y growing downwards), without
    drawing it: one dict per block with ``x0, y0, width, height`` of the matrix (strips
    included), ``row_domain`` and ``col_domain``."""
    return [
        dict(x0=m.x0, y0=m.y0, width=m.w, height=m.h, row_domain=m.row_domain, col_domain=m.col_domain)
        for m in _place(blocks, show_nonimportant, first_rows, strip, _label_band(blocks))
    ]


def benchmark_case(n_layers: int = 7, n_neurons: int = 4096, k: int = 410, seed: int = 0,
                   similarity_range: tuple[float, float] = (0.998, 0.999)) -> tuple[list[LayerBlock], list[PairBlock]]:
    """Inputs at the issue's benchmark scale (torchvision AlexNet's 4096-unit layers, 10 % important:
    410 important neurons a layer and model), built directly in the shape the cache stores them: the
    important x important similarity block (values in ``similarity_range``, as measured: every
    similarity about 0.999), every important x important weight of both models (the target's with a
    correspondence flag for a third of them), a boxplot per important neuron and the histograms."""
    rng = np.random.default_rng(seed)
    lo, hi = similarity_range
    edges = np.linspace(0.0, 1.0, 21)
    blocks: list[LayerBlock] = []
    for li in range(n_layers):
        src = rng.choice(n_neurons, k, replace=False)
        tgt = rng.choice(n_neurons, k, replace=False)
        hists = [Histogram(rng.integers(0, 1000, 20), edges) for _ in range(3)]
        blocks.append(LayerBlock(f"classifier.{li}", li + 1, src, tgt, rng.uniform(lo, hi, (k, k)), *hists,
                                 n_source=n_neurons, n_target=n_neurons))

    def boxes(neurons: np.ndarray, with_share: bool) -> NeuronBoxes:
        q = np.sort(rng.normal(0.0, 0.02, (len(neurons), 5)), axis=1)
        return NeuronBoxes(neurons, q[:, 1], q[:, 2], q[:, 3], q[:, 0], q[:, 4], rng.integers(1, 50, len(neurons)),
                           rng.random(len(neurons)) if with_share else None)

    pairs: list[PairBlock] = []
    for a, b in zip(blocks, blocks[1:]):
        mws = {}
        for model in ("source", "target"):
            ia, ib = a.important(model), b.important(model)  # type: ignore[arg-type]
            target = model == "target"
            mws[model] = ModelWeights(
                model, np.tile(ia, len(ib)), np.repeat(ib, len(ia)), rng.normal(0.0, 0.02, len(ia) * len(ib)),
                has_correspondence=(rng.random(len(ia) * len(ib)) < 1 / 3) if target else None,
                boxes_from=boxes(ia, target), boxes_to=boxes(ib, target),
                hist_rest=Histogram(rng.integers(0, 1000, 20), np.linspace(-0.1, 0.1, 21)))
        pairs.append(PairBlock(a.name, b.name, target=mws["target"], source=mws["source"]))
    return blocks, pairs
