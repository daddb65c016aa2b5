"""Weight correspondence under each similarity and matching, beside its references (issue 12, items 1-3).

    python benchmarks/correspondence.py [--cache cache/digits] [--permutations 200] [--paper-weights]

Recomputed from a built cache's conductance (no new attribution): for each ``analysis.similarity``
(cosine, pearson) x ``analysis.matching`` (best, one_to_one, same_index),

* own-index recovery per layer: the share of target neurons matched to the source neuron of their own
  index (the fine-tuned target keeps its neurons' positions, so this is how often the matching finds a
  neuron's own ancestor), mean over classes;
* the correspondence share per linked layer pair (mean over classes), its permutation null's mean and 95th
  percentile (means over classes) and in how many classes the share is above that percentile;

and once per pair the same-index reference. The important weights are recomputed with the active-receiver
rule (``analysis.active_receivers``, the default; a forward pass of both models, no attribution), and the
script first prints how many important weights that rule changes against the paper's rule. With
``--paper-weights`` the cache's own important weights are used instead (whatever rule built them).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from transferviz.analysis import similarity as sim  # noqa: E402
from transferviz.analysis.weights import important_weights, receiver_activity  # noqa: E402
from transferviz.build.analysis import linked_pairs  # noqa: E402
from transferviz.cache import Cache, ModelName, pair_name  # noqa: E402

MODELS: tuple[ModelName, ModelName] = ("source", "target")


def class_rows(df: pd.DataFrame, c: int) -> np.ndarray:
    return np.flatnonzero(((df.domain == "target") & (df.label == c)).to_numpy())


def recompute_weights(cache: Cache, df: pd.DataFrame,
                      active: bool) -> dict[tuple[ModelName, str], list[np.ndarray]]:
    """(model, pair name) -> per class the (k, 2) important weights, as the abstract stage computes them."""
    cfg = cache.config["analysis"]
    x = cache.inputs(np.arange(len(df)))
    shapes = {d["name"]: d["output_shape"] for d in cache.layer_info["detail"]}
    out: dict[tuple[ModelName, str], list[np.ndarray]] = {}
    for which in MODELS:
        model = cache.model(which)
        for li, lj, via in linked_pairs(cache):
            cond = np.asarray(cache.conductance(which, lj)) if active and via == lj else None
            per_class = []
            for ci in range(len(cache.classes)):
                rows = class_rows(df, ci)
                res = important_weights(model, li, via, x[rows], k_instance=cfg.get("weight_top_k"),
                                        k_class=cfg.get("weight_top_k"), fraction=cfg.get("neuron_fraction", 0.1),
                                        layer_i_shape=shapes[li], memory_budget_mb=1024,
                                        receiver_active=None if cond is None else receiver_activity(cond[rows]))
                per_class.append(res.pairs)
            out[(which, pair_name(li, lj))] = per_class
    return out


def cached_weights(cache: Cache) -> dict[tuple[ModelName, str], list[np.ndarray]]:
    out: dict[tuple[ModelName, str], list[np.ndarray]] = {}
    for which in MODELS:
        for li, lj, _ in linked_pairs(cache):
            t = cache.important_weight_table(which, li, lj)
            out[(which, pair_name(li, lj))] = [t.loc[t.class_index == ci, ["n1", "n2"]].to_numpy(np.int64)
                                               for ci in range(len(cache.classes))]
    return out


def changed_weights(cache: Cache, df: pd.DataFrame, before: dict, after: dict) -> pd.DataFrame:
    """Per model and pair: important weights (summed over classes), how many the rule replaced, and how many
    end in a receiving neuron whose conductance is zero on every instance of the class, before and after."""
    rows = []
    for (which_name, name), per_class in before.items():
        which: ModelName = "source" if which_name == "source" else "target"
        lj = next(b for a, b, _ in linked_pairs(cache) if pair_name(a, b) == name)
        cond = np.asarray(cache.conductance(which, lj))
        n = changed = dead_before = dead_after = 0
        for ci, old in enumerate(per_class):
            new = after[(which, name)][ci]
            dead = np.asarray(~receiver_activity(cond[class_rows(df, ci)]).any(axis=0), dtype=bool)
            n += len(old)
            changed += len({tuple(p) for p in old} - {tuple(p) for p in new})
            dead_before += int(dead[old[:, 1]].sum()) if len(old) else 0
            dead_after += int(dead[new[:, 1]].sum()) if len(new) else 0
        rows.append({"model": which, "pair": name, "important": n, "changed": changed,
                     "changed_share": changed / max(1, n), "into_dead_before": dead_before,
                     "into_dead_after": dead_after})
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", default="cache/digits")
    ap.add_argument("--permutations", type=int, default=200)
    ap.add_argument("--paper-weights", action="store_true", help="use the cache's important weights as they are")
    args = ap.parse_args()
    cache = Cache.open(args.cache)
    df = cache.table("data/base.parquet")
    classes, layers = cache.classes, cache.layers
    pairs = linked_pairs(cache)
    cached = cached_weights(cache)
    if args.paper_weights:
        weights = cached
    else:
        t0 = time.perf_counter()
        paper = recompute_weights(cache, df, active=False)
        weights = recompute_weights(cache, df, active=True)
        print(f"active receivers (non-zero conductance of the receiving neuron), {time.perf_counter() - t0:.1f} s:")
        print(changed_weights(cache, df, paper, weights).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        print()

    cond = {(m, layer): np.asarray(cache.conductance(m, layer)) for m in MODELS for layer in layers}
    recovery_rows, share_rows = [], []
    same_index: dict[str, float] = {}
    for kind in sim.SIMILARITIES:
        t0 = time.perf_counter()
        sims = {layer: [sim.similarity_matrix(cond[("source", layer)][class_rows(df, ci)],
                                              cond[("target", layer)][class_rows(df, ci)], kind)
                        for ci in range(len(classes))] for layer in layers}
        for matching in sim.MATCHINGS:
            matches = {layer: [sim.match_sources(s, matching) for s in sims[layer]] for layer in layers}
            recovery_rows.append({"similarity": kind, "matching": matching,
                                  **{layer: np.mean([sim.own_index_recovery(m) for m in matches[layer]])
                                     for layer in layers}})
            row: dict = {"similarity": kind, "matching": matching}
            for pi, (li, lj, _) in enumerate(pairs):
                name = pair_name(li, lj)
                ns_i, ns_j = cond[("source", li)].shape[1], cond[("source", lj)].shape[1]
                shares, means, p95s, above, same = [], [], [], 0, []
                for ci in range(len(classes)):
                    tgt, src = weights[("target", name)][ci], weights[("source", name)][ci]
                    if not len(tgt):
                        continue
                    m_i, m_j = matches[li][ci], matches[lj][ci]
                    share = sim.correspondence_from_matches(tgt, src, m_i, m_j, ns_i, ns_j).mean()
                    null = sim.correspondence_null(tgt, src, m_i, m_j, ns_i, ns_j, args.permutations,
                                                   np.random.default_rng([0, pi, ci]))
                    p95 = float(np.percentile(null, 95))
                    shares.append(share)
                    means.append(null.mean())
                    p95s.append(p95)
                    above += int(share > p95)
                    same.append(sim.correspondence_from_matches(tgt, src, np.arange(ns_i), np.arange(ns_j),
                                                                ns_i, ns_j).mean())
                row[name] = f"{np.mean(shares):.2f} ({np.mean(means):.3f}/{np.mean(p95s):.3f}; {above}/{len(shares)})"
                same_index[name] = float(np.mean(same))
            share_rows.append(row)
        print(f"[{kind}: similarities and matchings in {time.perf_counter() - t0:.1f} s]")
    print()
    print("own-index recovery per layer (share of target neurons matched to their own index, mean over classes):")
    print(pd.DataFrame(recovery_rows).to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print()
    print("correspondence share per layer pair, mean over classes: share (null mean/p95; classes with share > p95)")
    table = pd.DataFrame(share_rows)
    ref = {"similarity": "reference", "matching": "same-index", **{k: f"{v:.2f}" for k, v in same_index.items()}}
    table = pd.concat([table, pd.DataFrame([ref])], ignore_index=True)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
