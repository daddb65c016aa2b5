"""The compare stage class by class (issue 13, item 3): the same results as the former all-at-once code,
with one class's similarity matrix in memory instead of every class's, and a one-line error when even one
class's matrix exceeds analysis.memory_budget_mb."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from transferviz.analysis import similarity as sim
from transferviz.build.analysis import (
    COMPARE_BYTES_PER_CELL,
    MODELS,
    _check_compare_budget,
    compare_layer,
    stage_compare,
)
from transferviz.errors import TransferVizError

EDGES = np.linspace(-1, 1, 21)


def reference_compare(a_s, a_t, class_rows, imp_s, imp_t, similarity, matching, edges):
    """The stage's code before issue 13: every class's full matrix stacked first, then reduced (kept here as
    the reference the class-by-class version must reproduce)."""
    n_cls, ns, nt = len(class_rows), a_s.shape[1], a_t.shape[1]
    k = imp_t.shape[1]
    full = np.zeros((n_cls, ns, nt), dtype=np.float32)
    for ci, rows in enumerate(class_rows):
        full[ci] = sim.similarity_matrix(a_s[rows], a_t[rows], similarity)
    block = np.zeros((n_cls, k, k), dtype=np.float32)
    hists = np.zeros((n_cls, 3, len(edges) - 1), dtype=np.int64)
    top = {key: np.zeros((n_cls, n, 5), dtype=dt) for key, n, dt in
           (("s2t_idx", ns, np.int32), ("s2t_val", ns, np.float32),
            ("t2s_idx", nt, np.int32), ("t2s_val", nt, np.float32))}
    matches = np.full((n_cls, nt), -1, dtype=np.int64)
    for ci in range(n_cls):
        matches[ci] = sim.match_sources(full[ci], matching)
        if imp_t[ci, 0] >= 0:
            reg = sim.similarity_regions(full[ci], imp_s[ci], imp_t[ci], bins=edges)
            block[ci], hists[ci] = reg.block, [reg.hist_src_imp, reg.hist_tgt_imp, reg.hist_neither]
        top["s2t_idx"][ci], top["s2t_val"][ci] = sim.top_similar(full[ci], 5, axis=1)
        top["t2s_idx"][ci], top["t2s_val"][ci] = sim.top_similar(full[ci], 5, axis=0)
    return full, matches, block, hists, top


def _synthetic(n_cls: int, ns: int, nt: int, per_class: int, k: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    n = n_cls * per_class
    a_s = rng.standard_normal((n, ns)).astype(np.float32)
    a_t = (0.7 * a_s[:, :nt] if nt <= ns else rng.standard_normal((n, nt))).astype(np.float32) \
        + 0.3 * rng.standard_normal((n, nt)).astype(np.float32)
    a_t[:, 3] = 0.0  # a dead target neuron: no match under best / one_to_one
    rows = [np.arange(c * per_class, (c + 1) * per_class) for c in range(n_cls)]
    imp_s = np.stack([rng.permutation(ns)[:k] for _ in range(n_cls)])
    imp_t = np.stack([rng.permutation(nt)[:k] for _ in range(n_cls)])
    imp_s[1], imp_t[1] = -1, -1  # a class without target instances
    return a_s, a_t, rows, imp_s, imp_t


@pytest.mark.parametrize("similarity,matching", [("cosine", "best"), ("pearson", "one_to_one"),
                                                 ("cosine", "same_index")])
def test_class_by_class_equals_all_at_once(tmp_path, similarity, matching):
    a_s, a_t, rows, imp_s, imp_t = _synthetic(n_cls=4, ns=24, nt=20, per_class=9, k=5)
    full_ref, matches, block, hists, top = reference_compare(a_s, a_t, rows, imp_s, imp_t, similarity, matching,
                                                             EDGES)
    out = np.lib.format.open_memmap(tmp_path / "full.npy", mode="w+", dtype=np.float32, shape=full_ref.shape)
    res = compare_layer(a_s, a_t, rows, imp_s, imp_t, similarity, matching, EDGES, full=out)
    assert np.array_equal(np.asarray(out), full_ref)
    assert np.array_equal(res.matches, matches)
    assert np.array_equal(res.block, block) and np.array_equal(res.hists, hists)
    assert res.hists[1].sum() == 0 and res.hists[0].sum() == 24 * 20 - 25  # the empty class; region counts
    for key in top:
        assert res.top[key].dtype == top[key].dtype and np.array_equal(res.top[key], top[key]), key
    assert res.recovery == pytest.approx(np.mean([sim.own_index_recovery(m) for m in matches]))


def test_peak_memory_is_one_class_not_all():
    """20 classes of a 512 x 512 layer: the stacked matrices alone are 20 MB; class by class the whole
    computation peaks at about one class's working set (COMPARE_BYTES_PER_CELL per cell, 8 MB)."""
    n_cls, n = 20, 512
    a_s, a_t, rows, imp_s, imp_t = _synthetic(n_cls=n_cls, ns=n, nt=n, per_class=12, k=50)
    stacked = n_cls * n * n * 4
    tracemalloc.start()
    try:
        compare_layer(a_s, a_t, rows, imp_s, imp_t, "cosine", "best", EDGES)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    outputs = n_cls * n * 5 * 16 + n_cls * n * 8  # top-5 lists and matches, kept for every class
    assert peak < n * n * COMPARE_BYTES_PER_CELL + outputs + (1 << 20), peak
    assert peak < stacked / 2


def test_budget_error_is_one_line():
    _check_compare_budget("fc", 4096, 4096, 4096)  # Office-31's 4096-unit layer fits the default budget
    with pytest.raises(TransferVizError) as err:
        _check_compare_budget("classifier.1", 4096, 4096, 256)
    msg = str(err.value)
    assert "\n" not in msg and "classifier.1" in msg and "analysis.memory_budget_mb" in msg and "513" in msg


def test_stage_reproduces_the_cached_tiny_artifacts(tiny_cache, tmp_path):
    """The stage rerun over the tiny cache's inputs writes the arrays and tables its compare stage wrote."""
    from transferviz.build.framework import BuildContext, BuildOptions
    from transferviz.cache import CacheWriter
    from transferviz.config import parse_config

    records = tiny_cache.manifest["stages"]["compare"]["artifacts"]
    assert any(r.endswith("_t2s_idx.npy") for r in records)
    writer = CacheWriter(tmp_path / "build")
    arts = tiny_cache.manifest["artifacts"]
    writer.adopt(tiny_cache.root, [arts[r] for r in arts if r not in set(records)])
    cfg = parse_config(tiny_cache.config, "tiny.yaml")
    ctx = BuildContext(cfg, BuildOptions(cache_root=tmp_path, device=__import__("torch").device("cpu")), writer)
    stage_compare(ctx)
    assert sorted(set(writer.artifacts) & set(records)) == sorted(records)
    for rel in records:
        if rel.endswith(".npy"):
            new, old = np.load(tmp_path / "build" / rel), np.asarray(tiny_cache.array(rel))
            assert new.dtype == old.dtype and np.array_equal(new, old, equal_nan=True), rel
        else:
            import pandas as pd

            pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "build" / rel), tiny_cache.table(rel))
    assert MODELS == ("source", "target")
