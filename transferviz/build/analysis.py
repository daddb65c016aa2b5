"""The analysis stages: the paper's sections 5.1-5.4 (and the project's additions) computed into the cache.

attribute    Layer Conductance of every neuron of every analysed layer, all instances, both models
abstract     per class: important neurons (5.3.1 A) and important weights (5.3.1 B)
compare      per class: source x target neuron similarity, top-5, weight correspondence (5.3.2)
discriminate per class and model: Algorithm 1 and the biplot (5.4)
project      the global openTSNE map of the target model's embeddings (5.2)
classmaps    one openTSNE map per class, refined from the global map (issue 16, item 4)
pixels       the same instances mapped by their raw pixels (issue 6, item 6)
featvis      feature visualizations of the important neurons of both models (issue 5)
timeline     the fine-tuning timeline: embeddings, predictions and weight drift by epoch (issue 6, item 7)
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from transferviz.analysis import ranking
from transferviz.analysis import similarity as sim
from transferviz.analysis.conductance import layer_conductance
from transferviz.analysis.discriminability import (
    BASELINE_FEATURES,
    BASELINE_WARN,
    METHOD,
    SATURATED,
    STABLE,
    StabilityResult,
    bootstrap_stability,
    domain_discriminability,
    stability_null,
    trivial_baseline,
)
from transferviz.analysis.projection import (
    CLASS_MAP_ITERATIONS,
    CLASS_MAPS,
    PIXEL_ITERATIONS,
    class_maps,
    pca_features,
    pixel_map,
    tsne_map,
    tsne_methods,
)
from transferviz.analysis.timeline import MapPlacer, accuracy_table, flip_epochs, neuron_cosine, weight_drift
from transferviz.analysis.weights import (
    important_weights,
    layer_in_groups,
    receiver_activity,
    weight_regions,
    weight_value_matrix,
)
from transferviz.build.framework import MODELS, BuildContext
from transferviz.build.inputs import forward_rows
from transferviz.cache import Cache, CacheWriter, ModelName, pair_name, png_bytes
from transferviz.errors import TransferVizError
from transferviz.featvis import ChangeResult, compare_renders, render_neurons

__all__ = [
    "TOP_INSTANCES", "top_instances", "FEATVIS_ALL_MAX", "FEATVIS_CHUNK", "featvis_neurons", "featvis_scale",
    "write_featvis_change",
    "linked_pairs", "layer_drift", "stage_attribute", "stage_abstract", "stage_compare", "compare_layer",
    "LayerComparison", "COMPARE_BYTES_PER_CELL",
    "stage_discriminate", "stage_project", "stage_classmaps", "stage_pixels", "stage_featvis", "stage_timeline",
]

SIM_BINS = 20
WEIGHT_BINS = 20
TOP_INSTANCES = 5  # per neuron and domain, the instances kept with the highest attribution
FULL_SIMILARITY_MAX = 1024 * 1024  # larger layers keep only what the view draws (block, histograms, top-5)


def _labels(ctx: BuildContext) -> tuple[pd.DataFrame, np.ndarray]:
    df = ctx.cache.table("data/base.parquet")
    return df, df["label"].to_numpy()


def _class_rows(df: pd.DataFrame, c: int, domain: str = "target") -> np.ndarray:
    return np.flatnonzero(((df.domain == domain) & (df.label == c)).to_numpy())


def top_instances(values: np.ndarray, domains: np.ndarray, k: int = TOP_INSTANCES) -> np.ndarray:
    """Per neuron and domain, the ids of the k instances with the highest attribution (best first)."""
    out = np.full((values.shape[1], 2, k), -1, dtype=np.int64)
    for d, dom in enumerate(("source", "target")):
        rows = np.flatnonzero(domains == dom)
        if not len(rows):
            continue
        vals = values[rows]
        kk = min(k, len(rows))
        part = np.argpartition(-vals, kk - 1, axis=0)[:kk]  # (kk, neurons), unordered
        order = np.argsort(-np.take_along_axis(vals, part, 0), axis=0, kind="stable")
        out[:, d, :kk] = rows[np.take_along_axis(part, order, 0)].T
    return out


# --- attribute ---------------------------------------------------------------------

#: Instances per checkpointed chunk of the attribute stage (seconds of work on the demo, minutes for a large
#: network at 224 px on a CPU): the unit that a torchrun build splits across ranks and a resumed build keeps.
ATTRIBUTE_CHUNK = 128


def stage_attribute(ctx: BuildContext) -> None:
    a = ctx.config.analysis
    df, y = _labels(ctx)
    x = ctx.inputs()
    layers = ctx.cache.layers
    models = ctx.models()
    targets = torch.tensor(y, dtype=torch.long)

    def chunk(rows: range) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for which, model in models.items():
            res = layer_conductance(model, layers, x[rows.start:rows.stop], targets[rows.start:rows.stop],
                                    n_steps=a.n_steps, method=a.method, baseline=a.baseline,
                                    memory_budget_mb=a.memory_budget_mb, device=ctx.device, autocast=a.autocast)
            for layer in layers:
                out[f"{which}/{layer}"] = res.values[layer].astype(np.float32)
                out[f"chunk:gap/{which}/{layer}"] = np.array([res.completeness[layer]], dtype=np.float64)
        return out

    merged = ctx.rows("attribute", len(x), chunk, rows_per_chunk=ATTRIBUTE_CHUNK, desc="conductance", unit="inst")
    if merged is None:
        return  # another rank of a torchrun build: rank 0 writes the artifacts
    n_rows = np.asarray(merged["chunk:rows"], dtype=np.float64)
    completeness = {}
    for which in models:
        values = {layer: np.asarray(merged[f"{which}/{layer}"]) for layer in layers}
        for layer in layers:
            ctx.writer.array(f"analysis/conductance/{which}/{layer}.npy", values[layer],
                             f"Layer Conductance of each {layer} neuron (conv: max over its map) for each "
                             f"instance w.r.t. its true class, {which} model, (N, neurons)")
        # the mean gap over instances, from each chunk's mean weighted by its rows
        completeness[which] = {layer: float(np.asarray(merged[f"chunk:gap/{which}/{layer}"]) @ n_rows / n_rows.sum())
                               for layer in layers}
        for layer in layers:
            ctx.writer.array(f"analysis/top_instances/{which}/{layer}.npy",
                             top_instances(values[layer], df["domain"].to_numpy()),
                             f"(neuron, domain [source, target], rank) ids of the {TOP_INSTANCES} instances with the "
                             f"highest {which}-model conductance for each {layer} neuron; -1 pads short domains")
    ctx.notes["completeness"] = completeness
    # completeness holds only where every path from input to output crosses the layer (a cut); a conv inside a
    # residual branch carries only its branch's share, so its gap is no error and is not reported
    cuts = ctx.cache.layer_cuts
    checked = [layer for layer in layers if cuts.get(layer, True)]
    summary = f"{len(x)} instances x {len(layers)} layers x 2 models; "
    if checked:
        worst = max(completeness[m][layer] for m in completeness for layer in checked)
        summary += f"worst completeness gap {worst:.2e}"
        if len(checked) < len(layers):
            summary += f" over the {len(checked)} layers that cut the graph ({len(layers) - len(checked)} inside " \
                       "branches not checked)"
    else:
        summary += "no layer cuts the graph: completeness not checked"
    ctx.notes["completeness_checked"] = checked
    ctx.notes["summary"] = summary


# --- abstract ----------------------------------------------------------------------

def stage_abstract(ctx: BuildContext) -> None:
    c, w, a = ctx.cache, ctx.writer, ctx.config.analysis
    df, _ = _labels(ctx)
    classes, layers = c.classes, c.layers
    x = ctx.inputs()
    main = ctx.dist.is_main  # every rank of a torchrun build extracts weights; rank 0 alone does the rest
    important: dict[tuple[str, str], list[np.ndarray]] = {}
    for which in MODELS if main else ():
        for layer in layers:
            cond = c.conductance(which, layer)
            n = cond.shape[1]
            k = ranking.top_k(n, a.neuron_fraction)
            imp = np.full((len(classes), k), -1, dtype=np.int64)
            sums = np.zeros((len(classes), n), dtype=np.float64)
            for ci in range(len(classes)):
                rows = _class_rows(df, ci)
                if len(rows):
                    vals = np.asarray(cond[rows])
                    sums[ci] = ranking.rank_sums(vals)
                    imp[ci] = ranking.important_neurons(vals, k)
            important[(which, layer)] = list(imp)
            w.array(f"analysis/neurons/{which}/{layer}.npy", imp,
                    f"important {layer} neurons of the {which} model per class (rows), most important first; "
                    "-1 where the class has no target instances")
            w.array(f"analysis/neurons/{which}/{layer}_ranksum.npy", sums,
                    f"summed within-instance ranks of each {layer} neuron over the class's target instances")
    models = ctx.models()
    pairs = linked_pairs(c)  # weights only where one weight matrix joins the two layers
    shapes = {d["name"]: d["output_shape"] for d in c.layer_info["detail"]}
    # one task per (model, pair, class): the per-instance weight extraction, split across a torchrun build's
    # processes and checkpointed task by task; each task's table travels as Parquet bytes
    tasks = [(which, p, ci) for which in MODELS for p in range(len(pairs)) for ci in range(len(classes))]

    def receivers(which: ModelName, lj: str, via: str) -> np.ndarray | None:
        # the active-receiver rule needs the receiving neurons' conductance: the analysed layer j is the
        # module whose weights these are (not a conv inside block j, whose units have no conductance)
        return c.conductance(which, lj) if a.active_receivers and via == lj else None

    def weight_tasks(todo: range) -> dict[str, list[bytes]]:
        out = []
        for t in todo:
            which, p, ci = tasks[t]
            li, lj, via = pairs[p]
            cond_j = receivers(which, lj, via)
            rows = _class_rows(df, ci)
            active = None if cond_j is None else receiver_activity(np.asarray(cond_j[rows]))
            res = important_weights(models[which], li, via, x[rows], k_instance=a.weight_top_k,
                                    k_class=a.weight_top_k, device=ctx.device, memory_budget_mb=a.memory_budget_mb,
                                    fraction=a.neuron_fraction, layer_i_shape=shapes[li],
                                    receiver_active=active, reduction=a.weight_reduction)
            buf = io.BytesIO()
            pd.DataFrame({"class_index": ci, "rank": np.arange(len(res.n1)), "n1": res.n1, "n2": res.n2,
                          "count": res.count, "value": res.value, "level_sum": res.level_sum}
                         ).to_parquet(buf, index=False)
            out.append(buf.getvalue())
        return {"table": out}

    merged = ctx.rows("weights", len(tasks), weight_tasks, rows_per_chunk=1, desc="important weights", unit="class")
    if merged is None:
        return  # another rank of a torchrun build: rank 0 writes the artifacts
    # in task order: model, pair, class; no task at all (a network with no layer pair joined by one weight
    # matrix, e.g. a ResNet's blocks) merges no key
    tables = iter(merged.get("table", []))
    filtered: set[str] = set()
    for which in MODELS:
        mods = dict(models[which].named_modules())
        for li, lj, via in pairs:
            rows_out = [pd.read_parquet(io.BytesIO(next(tables))) for _ in classes]  # type: ignore[arg-type]
            cond_j = receivers(which, lj, via)
            name = pair_name(li, lj)
            through = "" if via == lj else f" (the weights of {via})"
            w.table(f"analysis/weights/{which}/{name}.parquet", pd.concat(rows_out, ignore_index=True),
                    f"important weights {li} -> {lj}{through} of the {which} model per class: n1 (in {li}), "
                    f"n2 (in {lj}), count of instances with it in their top k, value drawn by the view, summed level")
            w.array(f"analysis/weights/{which}/{name}_values.npy",
                    weight_value_matrix(mods[via], layer_in_groups(shapes[li], mods[via], li, via)[1])
                    .astype(np.float32),
                    f"(neurons of {lj}, neurons of {li}) weight value per pair: "
                    "W for linear, kernel-slice mean for conv")
            if cond_j is not None:
                filtered.add(name)
    ks = {layer: len(important[("target", layer)][0]) for layer in layers}
    n_pairs = max(0, len(layers) - 1)
    # every open choice of 5.3.1 that shaped these artifacts (issue 12, item 5), next to the ones the
    # attribute stage records
    ctx.notes["choices"] = {
        "conductance_reduction": "conv neuron = max over its map of the conductance",
        "weight_level": f"conv -> conv: {a.weight_reduction} over output positions of X[n1] * W[n2, n1] "
                        "(analysis.weight_reduction); conv -> linear: sum over the channel's features; "
                        "linear: W[n2, n1] * x[n1]",
        "neuron_fraction": a.neuron_fraction, "important_neurons_k": ks,
        "weight_top_k": a.weight_top_k if a.weight_top_k is not None else "default: k_i * k_j (important neurons "
                                                                          "of the two layers)",
        "baseline": a.baseline, "n_steps": a.n_steps, "method": a.method,
        "active_receivers": ("a weight counts for an instance only when its receiving neuron's conductance is "
                             "non-zero there" if a.active_receivers else "off: every instance counts (the paper)"),
        "active_receivers_pairs": sorted(filtered),
    }
    ctx.notes["summary"] = "important neurons per class: " + ", ".join(f"{layer}:{k}" for layer, k in ks.items()) \
        + (f"; important weights for {len(pairs)} of {n_pairs} layer pairs (the others are not joined by one "
           "weight matrix)" if len(pairs) < n_pairs else "")


def linked_pairs(cache: Cache) -> list[tuple[str, str, str]]:
    """(layer i, layer j, the Conv2d/Linear module whose weights join them) for each linked consecutive pair."""
    links = cache.layer_links()
    return [(str(r.from_layer), str(r.to_layer), str(r.weights or r.to_layer))
            for r in links.itertuples(index=False) if r.linked]


# --- compare -----------------------------------------------------------------------

#: Bytes a class's (source x target) similarity matrix costs per cell while it is matched, ranked and binned:
#: the float32 matrix, match_sources' float64 copy, top_similar's float32 copies, int64 partition and
#: the histogram's gathered regions (measured: +21 B/cell of peak RSS on a 4096 x 4096 layer; with margin).
COMPARE_BYTES_PER_CELL = 32


@dataclass
class LayerComparison:
    """One layer's similarity results for every class (what the compare stage keeps of its matrices)."""

    matches: np.ndarray  # (class, target neuron) matched source neuron, -1 for none
    block: np.ndarray  # (class, k, k) similarity of the important neurons, rank order
    hists: np.ndarray  # (class, region, bin) histogram counts
    top: dict[str, np.ndarray]  # s2t_idx, s2t_val (class, source neuron, 5); t2s_idx, t2s_val (class, target, 5)
    recovery: float  # mean over classes of the share of target neurons matched to their own index


def compare_layer(a_src: np.ndarray, a_tgt: np.ndarray, class_rows: Sequence[np.ndarray], imp_src: np.ndarray,
                  imp_tgt: np.ndarray, similarity: str, matching: str, edges: np.ndarray,
                  full: np.ndarray | None = None) -> LayerComparison:
    """Class by class: each class's (Ns, Nt) similarity matrix over its rows of ``a_src``/``a_tgt`` (instance x
    neuron attributions) is built, reduced to what the views read, and let go before the next class's, so that
    memory holds one class's matrix, never all of them (Office-31: 31 x 4096 x 4096 float32 = 2 GB a layer).
    ``full``: an optional (class, Ns, Nt) array (a memory map) that receives every class's matrix."""
    n_cls, ns, nt = len(class_rows), a_src.shape[1], a_tgt.shape[1]
    k = imp_tgt.shape[1]
    block = np.zeros((n_cls, k, k), dtype=np.float32)
    hists = np.zeros((n_cls, 3, len(edges) - 1), dtype=np.int64)
    top = {key: np.zeros((n_cls, n, 5), dtype=dt) for key, n, dt in
           (("s2t_idx", ns, np.int32), ("s2t_val", ns, np.float32),
            ("t2s_idx", nt, np.int32), ("t2s_val", nt, np.float32))}
    matches = np.full((n_cls, nt), -1, dtype=np.int64)
    for ci, rows in enumerate(class_rows):
        s = sim.similarity_matrix(np.asarray(a_src[rows]), np.asarray(a_tgt[rows]), similarity)
        if full is not None:
            full[ci] = s
        matches[ci] = sim.match_sources(s, matching)
        if imp_tgt[ci, 0] >= 0:
            reg = sim.similarity_regions(s, imp_src[ci], imp_tgt[ci], bins=edges)
            block[ci] = reg.block
            hists[ci] = [reg.hist_src_imp, reg.hist_tgt_imp, reg.hist_neither]
        i, v = sim.top_similar(s, 5, axis=1)
        top["s2t_idx"][ci], top["s2t_val"][ci] = i, v
        i, v = sim.top_similar(s, 5, axis=0)
        top["t2s_idx"][ci], top["t2s_val"][ci] = i, v
        del s  # before the next class's matrix is made
    recovery = float(np.mean([sim.own_index_recovery(m) for m in matches]))
    return LayerComparison(matches, block, hists, top, recovery)


def _check_compare_budget(layer: str, ns: int, nt: int, budget_mb: int) -> None:
    """One class's similarity matrix of ``layer`` must fit analysis.memory_budget_mb (the stage holds one)."""
    need = ns * nt * COMPARE_BYTES_PER_CELL / 2**20
    if need > budget_mb:
        raise TransferVizError(f"compare: one class's {layer} similarity matrix ({ns} x {nt} neurons) needs about "
                               f"{need:.0f} MB, more than analysis.memory_budget_mb = {budget_mb}; raise "
                               f"analysis.memory_budget_mb to at least {int(need) + 1} or analyse a smaller layer")


def stage_compare(ctx: BuildContext) -> None:
    c, w, a = ctx.cache, ctx.writer, ctx.config.analysis
    df, _ = _labels(ctx)
    classes, layers = c.classes, c.layers
    n_cls = len(classes)
    sizes: dict[str, tuple[int, int]] = {}  # (source, target) neuron count per layer
    matches: dict[str, np.ndarray] = {}  # (class, target neuron) matched source neuron, -1 for none
    recovery: dict[str, float] = {}
    edges = np.linspace(-1, 1, SIM_BINS + 1)
    class_rows = [_class_rows(df, ci) for ci in range(n_cls)]
    for layer in layers:
        a_s, a_t = c.conductance("source", layer), c.conductance("target", layer)
        ns, nt = sizes[layer] = (a_s.shape[1], a_t.shape[1])
        _check_compare_budget(layer, ns, nt, a.memory_budget_mb)
        full = w.array_rows(f"analysis/similarity/{layer}.npy", (n_cls, ns, nt), np.float32,
                            f"(class, source neuron, target neuron) similarity (analysis.similarity: cosine or "
                            f"Pearson) of {layer} attributions over the class's target instances") \
            if ns * nt <= FULL_SIMILARITY_MAX else None
        res = compare_layer(a_s, a_t, class_rows, c.array(f"analysis/neurons/source/{layer}.npy"),
                            c.array(f"analysis/neurons/target/{layer}.npy"), a.similarity, a.matching, edges, full)
        if full is not None:
            full.flush()
            del full
        matches[layer], recovery[layer] = res.matches, res.recovery
        w.array(f"analysis/similarity/{layer}_match.npy", res.matches.astype(np.int32),
                f"(class, target neuron) the source neuron each target {layer} neuron is matched to "
                "(analysis.matching) for weight correspondence; -1: none")
        w.array(f"analysis/similarity/{layer}_block.npy", res.block,
                "(class, important source neuron, important target neuron) similarity, both in rank order")
        w.array(f"analysis/similarity/{layer}_hist.npy", res.hists,
                "(class, region [imp src x other tgt, other src x imp tgt, neither], bin) similarity histogram counts")
        for key, arr in res.top.items():
            w.array(f"analysis/similarity/{layer}_{key}.npy", arr,
                    f"five most similar neurons in the other model ({key.replace('_', ' ')}), per class and neuron")
    w.array("analysis/similarity/hist_edges.npy", edges, "bin edges of the similarity histograms")

    shares = []
    for pi, (li, lj, _) in enumerate(linked_pairs(c)):
        name = pair_name(li, lj)
        tw = c.table(f"analysis/weights/target/{name}.parquet")
        sw = c.table(f"analysis/weights/source/{name}.parquet")
        corr_col = np.zeros(len(tw), dtype=bool)
        box_rows: list[dict] = []
        # read once per pair, not once per class: the weight values and important neurons
        values = {m: np.asarray(c.array(f"analysis/weights/{m}/{name}_values.npy")) for m in MODELS}
        imp = {(m, layer): c.array(f"analysis/neurons/{m}/{layer}.npy") for m in MODELS for layer in (li, lj)}
        k_i, k_j = imp[("target", li)].shape[1], imp[("target", lj)].shape[1]
        block_vals = {m: np.zeros((n_cls, k_j, k_i), dtype=np.float32) for m in MODELS}
        block_corr = np.zeros((n_cls, k_j, k_i), dtype=bool)
        hist_counts = np.zeros((2, n_cls, WEIGHT_BINS), dtype=np.int64)
        # one set of bin edges per pair, over both models' weights, so their histograms line up
        lo = min(float(v.min()) for v in values.values())
        hi = max(float(v.max()) for v in values.values())
        pair_edges = np.linspace(lo, hi if hi > lo else lo + 1.0, WEIGHT_BINS + 1)
        hist_edges = np.zeros((2, n_cls, WEIGHT_BINS + 1), dtype=np.float64)
        (ns_i, nt_i), (ns_j, nt_j) = sizes[li], sizes[lj]
        for ci in range(n_cls):
            sel_t = (tw.class_index == ci).to_numpy()
            src_pairs = sw.loc[sw.class_index == ci, ["n1", "n2"]].to_numpy()
            tgt_pairs = tw.loc[sel_t, ["n1", "n2"]].to_numpy()
            m_i, m_j = matches[li][ci], matches[lj][ci]
            corr_col[sel_t] = sim.correspondence_from_matches(tgt_pairs, src_pairs, m_i, m_j, ns_i, ns_j)
            cmat = sim.correspondence_matrix_from_matches(src_pairs, m_i, m_j, ns_i, ns_j)
            shares.append({"layer_i": li, "layer_j": lj, "class_index": ci, "n_target_weights": int(sel_t.sum()),
                           "share": float(corr_col[sel_t].mean()) if sel_t.any() else np.nan,
                           **_share_references(tgt_pairs, src_pairs, m_i, m_j, (ns_i, nt_i, ns_j, nt_j),
                                               a.correspondence_permutations, [ctx.config.seed, pi, ci])})
            for mi, which in enumerate(MODELS):
                imp_i, imp_j = imp[(which, li)][ci], imp[(which, lj)][ci]
                if imp_i[0] < 0:
                    continue
                regions = weight_regions(values[which], imp_i, imp_j, bins=pair_edges,
                                         correspondence=cmat if which == "target" else None)
                block_vals[which][ci] = regions.block
                if which == "target" and regions.block_corresponds is not None:
                    block_corr[ci] = regions.block_corresponds
                hist_counts[mi, ci], hist_edges[mi, ci] = regions.hist_counts, regions.bin_edges
                for side, boxes in (("out", regions.by_out), ("in", regions.by_in)):
                    for b in boxes:
                        box_rows.append({"model": which, "class_index": ci, "side": side, "neuron": b.neuron,
                                         "count": b.count, "min": b.minimum, "q1": b.q1, "median": b.median,
                                         "q3": b.q3, "max": b.maximum,
                                         "non_corresponding": np.nan if b.non_corresponding is None
                                         else b.non_corresponding})
        tw["corresponds"] = corr_col  # in place, not a copy of the whole table (~300 MB at 4096 x 4096)
        w.table(f"analysis/weights/target/{name}_correspondence.parquet", tw,
                "important target weights with 'corresponds': the most similar source neurons n1', n2' "
                "are joined by an important source weight")
        for which in MODELS:
            w.array(f"analysis/weights/{which}/{name}_block.npy", block_vals[which],
                    "(class, important neuron of layer j, important neuron of layer i) weight values, "
                    "rank order (region 1)")
        w.array(f"analysis/weights/target/{name}_block_corr.npy", block_corr,
                "(class, j, i) True where the region-1 target weight has a corresponding important source weight "
                "(red dot)")
        w.table(f"analysis/weights/{name}_boxes.parquet", pd.DataFrame(box_rows),
                "regions 2/3 boxplots: per model, class and important neuron (side 'out' = layer j neuron, "
                "weights from non-important layer-i neurons; 'in' = layer i neuron, weights to non-important "
                "layer-j neurons)")
        w.array(f"analysis/weights/{name}_hist.npy", hist_counts, "(model, class, bin) region 4 histogram counts")
        w.array(f"analysis/weights/{name}_hist_edges.npy", hist_edges,
                "(model, class, bin edge) region 4 histogram edges")
    share_df = pd.DataFrame(shares, columns=["layer_i", "layer_j", "class_index", "n_target_weights", "share",
                                             "same_index_share", "null_mean", "null_p95"])
    w.table("analysis/correspondence.parquet", share_df,
            "per linked layer pair and class: share of the important target weights that correspond to important "
            "source weights (under analysis.matching and analysis.similarity); same_index_share: the share with "
            "every neuron matched to its own index (the reference for a fine-tuned model); null_mean, null_p95: "
            "mean and 95th percentile of the share over analysis.correspondence_permutations shuffles of the "
            "source neuron labels (chance)")
    per_pair = share_df.groupby(["layer_i", "layer_j"], sort=False)[["share", "same_index_share", "null_p95"]].mean()
    ctx.notes["correspondence"] = {f"{i}->{j}": float(v) for (i, j), v in per_pair["share"].items()}
    ctx.notes["choices"] = {"similarity": a.similarity, "matching": a.matching,
                            "correspondence_permutations": a.correspondence_permutations,
                            "own_index_recovery": recovery}
    ctx.notes["summary"] = ("mean correspondence (same-index, null p95) " + ", ".join(
        f"{r.share:.2f} ({r.same_index_share:.2f}, {r.null_p95:.2f})" for r in per_pair.itertuples())
        + f"; {a.similarity} similarity, {a.matching} matching") \
        if len(per_pair) else "no consecutive layers joined by one weight matrix: no weight correspondence"


def _share_references(tgt_pairs: np.ndarray, src_pairs: np.ndarray, m_i: np.ndarray, m_j: np.ndarray,
                      sizes: tuple[int, int, int, int], n_permutations: int, seed: list[int]) -> dict[str, float]:
    """The same-index share and the permutation null (mean, 95th percentile) beside a correspondence share.

    The same-index reference matches each target neuron to the source neuron of its own index, which is
    meaningful only because the target is fine-tuned from the source (same architecture, neurons keep their
    positions); where the layer sizes differ it is NaN."""
    ns_i, nt_i, ns_j, nt_j = sizes
    if not len(tgt_pairs):
        return {"same_index_share": np.nan, "null_mean": np.nan, "null_p95": np.nan}
    same = np.nan
    if (ns_i, ns_j) == (nt_i, nt_j):
        same = float(sim.correspondence_from_matches(tgt_pairs, src_pairs, np.arange(nt_i), np.arange(nt_j),
                                                     ns_i, ns_j).mean())
    null = sim.correspondence_null(tgt_pairs, src_pairs, m_i, m_j, ns_i, ns_j, n_permutations,
                                   np.random.default_rng(seed))
    return {"same_index_share": same, "null_mean": float(null.mean()) if len(null) else np.nan,
            "null_p95": float(np.percentile(null, 95)) if len(null) else np.nan}


# --- discriminate -------------------------------------------------------------------

NO_STABILITY = StabilityResult(np.zeros(0), np.zeros(0), np.zeros(0), 0, 0)


def _trivial_baselines(ctx: BuildContext, df: pd.DataFrame) -> pd.DataFrame:
    """Per class, the domain classifier on per-image colour and intensity statistics (no neurons)."""
    a, images = ctx.config.analysis, ctx.cache.images
    out = []
    for ci in range(len(ctx.cache.classes)):
        rs, rt = _class_rows(df, ci, "source"), _class_rows(df, ci, "target")
        res = trivial_baseline(np.asarray(images[rs]), np.asarray(images[rt]), folds=a.discriminability_folds,
                               seed=ctx.config.seed)
        out.append({"class_index": ci, "status": res.status, "cv_accuracy": res.cv_accuracy,
                    "cv_balanced_accuracy": res.cv_balanced_accuracy, "flagged": res.flagged,
                    "features": ", ".join(BASELINE_FEATURES)})
    return pd.DataFrame(out, columns=["class_index", "status", "cv_accuracy", "cv_balanced_accuracy", "flagged",
                                      "features"])


def stage_discriminate(ctx: BuildContext) -> None:
    c, w, a = ctx.cache, ctx.writer, ctx.config.analysis
    df, _ = _labels(ctx)
    baseline = _trivial_baselines(ctx, df)
    w.table("analysis/discriminability/baseline.parquet", baseline,
            "per class: the same nested cross-validated domain classifier on per-image colour and intensity "
            f"statistics ({', '.join(BASELINE_FEATURES)}) of the class's instances; flagged when its accuracy "
            f">= {BASELINE_WARN}")
    ok_base = baseline[baseline.status == "ok"]
    ctx.notes["baseline_mean_cv_accuracy"] = float(ok_base.cv_accuracy.mean()) if len(ok_base) else None
    ctx.notes["baseline_flagged_classes"] = int(baseline.flagged.sum())
    for which in MODELS:
        summary: list[dict[str, Any]] = []
        neurons: list[dict[str, Any]] = []
        points: list[pd.DataFrame] = []
        for ci in range(len(c.classes)):
            rs, rt = _class_rows(df, ci, "source"), _class_rows(df, ci, "target")
            rows = np.concatenate([rs, rt])
            cols, names = [], []
            for layer in c.layers:
                imp = c.array(f"analysis/neurons/{which}/{layer}.npy")[ci]
                if imp[0] < 0:
                    continue
                # the class's rows only: reading every row for every class costs N x classes (issue 13, 100k)
                cols.append(np.asarray(c.conductance(which, layer)[rows][:, imp]))
                names += [(layer, int(n)) for n in imp]
            # row-major, as the per-domain row selections it replaces were: a column-major A sums in another
            # order downstream and moves u and the boundary in the last bits
            A = np.ascontiguousarray(np.concatenate(cols, axis=1)) if cols else np.zeros((len(rows), 0), np.float32)
            a_s, a_t = A[:len(rs)], A[len(rs):]
            res = domain_discriminability(a_s, a_t, folds=a.discriminability_folds, seed=ctx.config.seed,
                                          n_permutations=a.discriminability_permutations,
                                          cv_max_rows=a.discriminability_cv_max_rows)
            stab = bootstrap_stability(a_s, a_t, res.u, res.alpha or 1.0, a.discriminability_bootstrap,
                                       seed=ctx.config.seed) if res.status == "ok" else NO_STABILITY
            boot = stab.n_bootstrap > 0
            null = stability_null(a_s, a_t, a.discriminability_bootstrap, a.discriminability_stability_null,
                                  seed=ctx.config.seed) if boot else np.zeros(0)
            summary.append({"class_index": ci, "status": res.status, "cv_accuracy": res.cv_accuracy,
                            "cv_balanced_accuracy": res.cv_balanced_accuracy, "n_folds": res.n_folds,
                            "n_source": len(rs), "n_target": len(rt), "n_neurons": len(names),
                            "boundary_x": res.boundary_x if res.status == "ok" else np.nan,
                            "converged": res.converged, "method": METHOD, "alpha": res.alpha,
                            "null_mean": res.null_mean, "null_p95": res.null_p95, "p_value": res.p_value,
                            "n_permutations": res.n_permutations, "n_inputs": res.n_inputs,
                            "n_instances": res.n_instances, "n_cv_instances": res.n_cv_instances,
                            "saturated": res.saturated,
                            "inputs_outnumber_instances": res.inputs_outnumber_instances,
                            "n_bootstrap": stab.n_bootstrap,
                            "n_top": stab.top if boot else 0,
                            "n_top_stable": stab.n_top_stable(res.u) if boot else None,
                            "sign_flip_share": float(1.0 - stab.sign_share.mean()) if boot else None,
                            "null_top_stable_mean": float(null.mean()) if len(null) else None,
                            "null_top_stable_p95": float(np.percentile(null, 95)) if len(null) else None,
                            "n_stability_null": int(len(null))})
            if res.status != "ok":
                continue
            for p, (layer, n) in enumerate(names):
                neurons.append({"class_index": ci, "layer": layer, "neuron": n, "u": float(res.u[p]),
                                "g": float(res.g[p]), "axis_x": float(res.axes[p, 0]), "axis_y": float(res.axes[p, 1]),
                                "stability": float(stab.stability[p]) if boot else np.nan,
                                "top_share": float(stab.top_share[p]) if boot else np.nan,
                                "sign_share": float(stab.sign_share[p]) if boot else np.nan})
            ids = np.concatenate([rs, rt])
            points.append(pd.DataFrame({"class_index": ci, "id": ids,
                                        "domain": np.where(res.labels == 0, "source", "target"),
                                        "x": res.coords[:, 0].astype(np.float32),
                                        "y": res.coords[:, 1].astype(np.float32)}))
        base = f"analysis/discriminability/{which}"
        w.table(f"{base}/summary.parquet", pd.DataFrame(summary),
                f"Algorithm 1 per class ({which} model): status, nested cross-validated accuracy of the ridge domain "
                "classifier, its permutation null (mean, 95th percentile, p-value), penalty, folds, sizes, flags "
                "saturated and inputs_outnumber_instances, n_cv_instances (the rows behind the CV accuracy and its "
                "null: fewer than n_instances where analysis.discriminability_cv_max_rows sampled a domain); "
                "the bootstrap of u: resamples, the top's size, how many "
                f"of the top neurons by |u| have stability >= {STABLE}, the share of signs of u that flip, and that "
                "count's null (mean, 95th percentile over n_stability_null shuffles of the domain labels)")
        w.table(f"{base}/neurons.parquet",
                pd.DataFrame(neurons, columns=["class_index", "layer", "neuron", "u", "g", "axis_x", "axis_y",
                                               "stability", "top_share", "sign_share"]),
                "per class, each important neuron: discriminability u, first PC g, biplot axis (x, y); over the "
                "bootstrap resamples the share in which it is among the top by |u| with the sign of u (stability), "
                "among the top (top_share), with the sign of u (sign_share); NaN without a bootstrap")
        w.table(f"{base}/points.parquet", pd.concat(points, ignore_index=True) if points else
                pd.DataFrame(columns=["class_index", "id", "domain", "x", "y"]),
                "per class, each instance of the class in both domains: biplot coordinates A.[u, g']")
        ok = [s["cv_accuracy"] for s in summary if s["status"] == "ok"]
        ctx.notes[f"{which}_mean_cv_accuracy"] = float(np.mean(ok)) if ok else None
        ctx.notes[f"{which}_saturated_classes"] = sum(bool(s.get("saturated")) for s in summary)
        stable = [s["n_top_stable"] for s in summary if s.get("n_top_stable") is not None]
        ctx.notes[f"{which}_mean_top_stable"] = float(np.mean(stable)) if stable else None
        # a class whose CV ran on a sample (analysis.discriminability_cv_max_rows; issue 13's 100k instances)
        ctx.notes[f"{which}_cv_sampled_classes"] = sum(s["n_cv_instances"] < s["n_instances"] for s in summary
                                                       if s["status"] == "ok")
    ctx.notes["cv_max_rows"] = a.discriminability_cv_max_rows
    ctx.notes["summary"] = ("domain classifier mean CV accuracy: "
                            f"source model {ctx.notes['source_mean_cv_accuracy']:.2f}, "
                            f"target model {ctx.notes['target_mean_cv_accuracy']:.2f}; saturated "
                            f"(>= {SATURATED:.0%}) in {ctx.notes['source_saturated_classes']} and "
                            f"{ctx.notes['target_saturated_classes']} of {len(c.classes)} classes; trivial "
                            f"image-statistics baseline >= {BASELINE_WARN:.0%} in "
                            f"{ctx.notes['baseline_flagged_classes']} classes")


# --- project ------------------------------------------------------------------------

def stage_project(ctx: BuildContext) -> None:
    c, w, cfg = ctx.cache, ctx.writer, ctx.config
    emb = np.asarray(c.array("analysis/embedding/target.npy"))
    feats = pca_features(emb, 50, cfg.seed)
    w.array("analysis/pca50.npy", feats.astype(np.float32),
            "target-model embeddings reduced by PCA (<= 50 dims), the t-SNE input")
    w.array("analysis/tsne.npy", tsne_map(feats, seed=cfg.seed, perplexity=cfg.analysis.tsne_perplexity),
            "(N, 2) openTSNE map of every instance's target-model embedding")
    ctx.notes["tsne"] = tsne_methods(len(emb))
    ctx.notes["summary"] = f"t-SNE of {len(emb)} instances"


def stage_classmaps(ctx: BuildContext) -> None:
    """One t-SNE map per class (both domains), refined from the global map, so that the instance
    view positions a one-class selection without running a t-SNE in the request."""
    c, w, cfg = ctx.cache, ctx.writer, ctx.config
    base = c.table("data/base.parquet")
    labels = np.empty(len(base), dtype=np.int64)
    labels[base["id"].to_numpy()] = base["label"].to_numpy()  # row i = instance id i, like the maps
    xy = class_maps(np.asarray(c.projection_features()), np.asarray(c.tsne()), labels, seed=cfg.seed,
                    perplexity=cfg.analysis.tsne_perplexity)
    w.array(CLASS_MAPS, xy,
            "(N, 2) per-class openTSNE maps: the rows of class c (both domains) are class c's own map, refined "
            f"from its analysis/tsne.npy positions ({CLASS_MAP_ITERATIONS} iterations, fewer for a class of over 2,500 "
            "instances); rows = instance ids")
    ctx.notes["summary"] = f"{len(np.unique(labels))} class maps of {len(xy)} instances"


# --- pixels -------------------------------------------------------------------------

def stage_pixels(ctx: BuildContext) -> None:
    """The instances positioned by their raw pixels (issue 6, item 6), beside the hidden-layer map:
    standardised pixels, PCA to 50 dims, openTSNE with the project stage's perplexity and seed."""

    c, w, cfg = ctx.cache, ctx.writer, ctx.config
    images = c.images  # row i = instance id i, the order of cache.instances
    xy = pixel_map(images, seed=cfg.seed, perplexity=cfg.analysis.tsne_perplexity)
    w.array("analysis/pixel_tsne.npy", xy,
            "(N, 2) openTSNE map of every instance's raw pixels (standardised, PCA to <= 50 dims; "
            f"{PIXEL_ITERATIONS[0]} + {PIXEL_ITERATIONS[1]} iterations), rows = instance ids like analysis/tsne.npy")
    ctx.notes["tsne"] = tsne_methods(len(xy))
    ctx.notes["summary"] = f"pixel t-SNE of {len(xy)} instances"


# --- featvis -------------------------------------------------------------------------

#: Below this many analysed neurons (both models' layers summed once) every neuron is rendered: cheap,
#: and a user browsing a small model (the demo: 336) never meets a missing image.
FEATVIS_ALL_MAX = 512


def featvis_neurons(cache: Cache, fraction_all_max: int = FEATVIS_ALL_MAX) -> list[tuple[str, int]]:
    """The ``(layer, neuron)`` pairs the views show a feature visualization for, in layer order then index.

    Every neuron when the model is small (at most ``fraction_all_max`` in all); else the union over both
    models and every class of: the important neurons (the network view's rows, columns, weight ends and
    similarity cells), the neurons of the discrimination ranking (the features view's list), and the five
    most similar neurons in the other model of each important neuron (the neuron panel's "most similar").
    Each pair is rendered in both models, so that the two renders can be compared."""
    total = sum(int(d["neurons"]) for d in cache.layer_info["detail"])
    if total <= fraction_all_max:
        return [(d["name"], n) for d in cache.layer_info["detail"] for n in range(int(d["neurons"]))]
    out: list[tuple[str, int]] = []
    ranked = _ranked_neurons(cache)
    for layer in cache.layers:
        ids: set[int] = set(ranked.get(layer, ()))
        for which, direction in (("source", "s2t"), ("target", "t2s")):
            imp = np.asarray(cache.array(f"analysis/neurons/{which}/{layer}.npy"))
            ids |= {int(v) for v in imp.ravel() if v >= 0}
            ids |= _similar_of(cache, layer, direction, imp)
        out += [(layer, n) for n in sorted(ids)]
    return out


def _ranked_neurons(cache: Cache) -> dict[str, set[int]]:
    """Per layer, the neurons of either model's discrimination ranking (any class); empty without one."""
    out: dict[str, set[int]] = {}
    for which in MODELS:
        rel = f"analysis/discriminability/{which}/neurons.parquet"
        if not cache.has(rel):
            continue
        t = cache.table(rel)
        for layer, n in zip(t["layer"].astype(str), t["neuron"].astype(int)):
            out.setdefault(layer, set()).add(int(n))
    return out


def _similar_of(cache: Cache, layer: str, direction: str, important: np.ndarray) -> set[int]:
    """The other model's five most similar neurons of each (class, important neuron) of ``important``."""
    rel = f"analysis/similarity/{layer}_{direction}_idx.npy"
    if not cache.has(rel):
        return set()
    idx = np.asarray(cache.array(rel))  # (class, neuron, 5)
    rows, cols = np.nonzero(important >= 0)
    return {int(v) for v in idx[rows, important[rows, cols]].ravel() if v >= 0}


def featvis_scale(size: int) -> int:
    """The nearest-neighbour upscale of a ``size`` px render in its PNG (tiny renders stay legible)."""
    return max(1, 64 // size)


#: Neurons per checkpointed chunk of the featvis stage: about a minute at Office-31's ~5 neurons a second.
FEATVIS_CHUNK = 256


def stage_featvis(ctx: BuildContext) -> None:
    """Renders :func:`featvis_neurons` in both models. Under torchrun the neurons are split across the
    ranks in contiguous blocks of chunks (``ctx.rows``); each rank renders its block, rank 0 merges the
    images and writes every artifact. A neuron's image depends only on ``(seed, layer, index)``, never on
    its batch, so the result equals the single-process build's."""
    c, w, cfg = ctx.cache, ctx.writer, ctx.config
    fv = cfg.featvis
    neurons = featvis_neurons(c)
    total = sum(int(d["neurons"]) for d in c.layer_info["detail"])
    size = fv.size or cfg.model.input_size
    renders: dict[str, np.ndarray] = {}
    for which, model in ctx.models().items():
        def render(rows: range, model: torch.nn.Module = model) -> dict[str, np.ndarray]:
            return {"image": render_neurons(model, neurons[rows.start:rows.stop], size=size, steps=fv.steps,
                                            lr=fv.lr, seed=cfg.seed, mean=cfg.model.mean, std=cfg.model.std,
                                            device=ctx.device)}

        merged = ctx.rows(f"render-{which}", len(neurons), render, rows_per_chunk=FEATVIS_CHUNK,
                          desc=f"feature visualization ({which})", unit="neuron")
        if merged is not None:  # rank 0 (or the only process): every rank's images in neuron order
            renders[which] = np.asarray(merged.get("image", np.zeros((0, size, size, 3), np.uint8)))
    if not ctx.dist.is_main:
        return
    for which in MODELS:
        w.png_dir(f"featvis/{which}", ((f"{layer}/{n}", png_bytes(img, featvis_scale(size))) for (layer, n), img
                                       in zip(neurons, renders[which])),
                  f"feature visualization of each rendered {which}-model neuron, '<layer>/<neuron>.png'")
    change = write_featvis_change(w, neurons, renders["source"], renders["target"],
                                  {"size": size, "steps": fv.steps, "lr": fv.lr})
    rule = "all: a small model" if len(neurons) == total else "important, ranked and their most similar ones"
    ctx.notes["summary"] = f"{len(neurons)} of {total} neurons ({rule}) x 2 models at {size} px, {fv.steps} steps"
    ctx.notes["rendered"], ctx.notes["neurons_total"] = len(neurons), total
    ctx.notes["most_changed"] = {layer: [int(neurons[i][1]) for i in pos] for layer, pos in change.most_changed.items()}


def write_featvis_change(w: CacheWriter, neurons: list[tuple[str, int]], source: np.ndarray, target: np.ndarray,
                         settings: dict[str, Any]) -> ChangeResult:
    """Writes ``featvis/change.parquet`` and ``featvis/meta.json`` for the neurons rendered in both models
    (``source[i]`` and ``target[i]`` the renders of ``neurons[i]``); the build's stage and ``transferviz
    featvis`` (which adds neurons later and recomputes both over all of them) share it."""
    layers = [layer for layer, _ in neurons]
    change = compare_renders(source, target, layers, top=5)
    rank = np.full(len(neurons), -1, dtype=np.int64)
    for layer, pos in change.most_changed.items():
        rank[pos] = np.arange(len(pos))
    table = pd.DataFrame({"layer": layers, "neuron": [n for _, n in neurons],
                          "similarity": change.similarity, "colourfulness_source": change.score_source,
                          "colourfulness_target": change.score_target, "gray_source": change.gray_source,
                          "gray_target": change.gray_target, "most_changed_rank": rank})
    w.table("featvis/change.parquet", table,
            "per rendered neuron: cosine similarity of the embeddings of its source and target visualizations, "
            "colourfulness, gray flags, rank among the layer's five most changed (-1: not)")
    w.json("featvis/meta.json", {**settings, "gray_cutoff": change.cutoff, "n_neurons": len(neurons)},
           "feature visualization settings and the gray cut-off")
    return change


# --- timeline -------------------------------------------------------------------------

def layer_drift(reference: torch.nn.Module, epoch: int, model: torch.nn.Module, layers: list[str]) -> pd.DataFrame:
    """:func:`~transferviz.analysis.timeline.weight_drift` of one epoch's model; a layer without a weight of
    its own (a block) gets the mean and min over the neurons of every conv and linear layer inside it."""
    weighted = (torch.nn.Conv2d, torch.nn.Linear)
    mods = dict(model.named_modules())
    if all(isinstance(mods[layer], weighted) for layer in layers):
        return weight_drift(reference, [(epoch, model)], layers)
    ref = dict(reference.named_modules())
    rows = []
    for layer in layers:
        inner = [layer] if isinstance(mods[layer], weighted) else \
            [p for p, m in mods.items() if p.startswith(layer + ".") and isinstance(m, weighted)]
        if not inner:
            continue
        cos = np.concatenate([neuron_cosine(ref[p].weight, mods[p].weight) for p in inner])
        rows.append({"epoch": int(epoch), "layer": layer, "mean_cos": float(cos.mean()), "min_cos": float(cos.min())})
    return pd.DataFrame(rows, columns=["epoch", "layer", "mean_cos", "min_cos"])


def stage_timeline(ctx: BuildContext) -> None:
    """Fine-tuning timeline (issue 6, item 7): per target epoch checkpoint (0 = the source model),
    every instance's embedding placed in the final t-SNE map, its prediction, per-class accuracy,
    and per layer the cosine similarity of each neuron's incoming weights to the source model's.
    Placement: :class:`transferviz.analysis.timeline.MapPlacer` (kNN in the final PCA space;
    unchanged embeddings keep their final position exactly)."""
    c, w, cfg = ctx.cache, ctx.writer, ctx.config
    df = c.table("data/base.parquet")
    emb_layer = c.layer_info["embedding_layer"]
    epochs = c.epochs("target")
    reference = c.model("source")  # the weights of epoch 0 (training writes target_000 from them)
    if epochs:
        models: Iterable[tuple[int, torch.nn.Module]] = ((k, c.model("target", k)) for k in epochs)
    else:  # no per-epoch checkpoints kept: the final target model only
        hist = c.table("models/history.parquet")
        last = hist.loc[hist.model == "target", "epoch"]
        epochs = [int(last.max()) if len(last) else 1]
        models = [(epochs[0], c.model("target"))]
    main = ctx.dist.is_main
    placer = MapPlacer(np.asarray(c.array("analysis/embedding/target.npy")), np.asarray(c.tsne()),
                       seed=cfg.seed) if main else None
    n = len(df)
    positions = np.zeros((len(epochs), n, 2), dtype=np.float32)
    pred = np.zeros((len(epochs), n), dtype=np.int16)
    unchanged = []
    drift_parts = []
    for e, (k, model) in enumerate(models):
        # the epoch's forward passes are split across a torchrun build's processes; rank 0 places and measures
        outputs = forward_rows(ctx, f"epoch{k:04d}", {"target": model}, emb_layer, f"epoch {k} forward passes")
        if outputs is None or placer is None:
            continue
        logits, emb = outputs["target"]
        pred[e] = logits.argmax(1).numpy().astype(np.int16)
        emb_np = emb.numpy()
        unchanged.append(int(placer.unchanged(emb_np).sum()))
        positions[e] = placer.place(emb_np)
        # drift now, then let the model go: holding every epoch's model (31 AlexNets on Office-31) costs GBs
        drift_parts.append(layer_drift(reference, k, model.cpu(), c.layers))
    if not main:
        return  # another rank of a torchrun build: rank 0 writes the artifacts
    drift = pd.concat(drift_parts, ignore_index=True)
    acc = accuracy_table(pred, df["label"].to_numpy(), df["domain"].to_numpy(), epochs, len(c.classes),
                         df["split"].to_numpy())
    w.array("analysis/timeline/epochs.npy", np.asarray(epochs, dtype=np.int64),
            "target fine-tuning epoch of each timeline row (0 = the source model it starts from)")
    w.array("analysis/timeline/positions.npy", positions,
            "(epoch, instance, 2) position of each instance's target-model embedding at that epoch in the final "
            "t-SNE map (kNN-weighted average in the final PCA space; unchanged embeddings keep their position)")
    w.array("analysis/timeline/pred.npy", pred, "(epoch, instance) predicted class of the target model at that epoch")
    w.array("analysis/timeline/flips.npy", flip_epochs(pred),
            "(epoch, instance) True where the prediction differs from the previous epoch's")
    w.table("analysis/timeline/accuracy.parquet", acc,
            "per epoch, class and domain: accuracy on all its instances, n, accuracy on its validation instances")
    w.table("analysis/timeline/drift.parquet", drift,
            "per epoch and analysed layer: mean and min over neurons of the cosine similarity of the neuron's "
            "incoming weights to the source model's (a block: over the neurons of its conv and linear layers)")
    ctx.notes["unchanged_per_epoch"] = unchanged
    ctx.notes["summary"] = f"{len(epochs)} epochs x {n} instances, {len(c.layers)} layers"
