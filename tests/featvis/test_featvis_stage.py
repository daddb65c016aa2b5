"""The featvis stage split by neuron across ranks (issue 13, item 1 for the per-neuron stage): each rank renders
its contiguous block of chunks, rank 0 merges; the result equals the single-process build's, byte for byte."""

from __future__ import annotations

import json

import pandas as pd
import torch

from transferviz.build.analysis import stage_featvis
from transferviz.build.framework import BuildContext, BuildOptions
from transferviz.build.shards import CHUNK_ENV
from transferviz.cache import CacheWriter
from transferviz.config import parse_config
from transferviz.distributed import Dist


def test_two_ranks_render_what_one_process_rendered(tiny_cache, tmp_path, monkeypatch):
    from transferviz.build import analysis

    # every 24th of the 336 neurons, across layers (seconds, not half a minute), in 2 chunks: one a rank
    subset = analysis.featvis_neurons(tiny_cache)[::24]
    monkeypatch.setattr(analysis, "featvis_neurons", lambda cache: subset)
    monkeypatch.setenv(CHUNK_ENV, "7")
    own = set(tiny_cache.manifest["stages"]["featvis"]["artifacts"])
    arts = tiny_cache.manifest["artifacts"]
    cfg = parse_config(tiny_cache.config, "tiny.yaml")
    opts = BuildOptions(cache_root=tmp_path, device=torch.device("cpu"), progress=False)
    writer = CacheWriter(tmp_path / "build")
    writer.adopt(tiny_cache.root, [arts[r] for r in arts if r not in own])
    before = set(writer.artifacts)
    # rank 1 first (no process group: the collectives are no-ops, the split is real): its shards, no artifact
    for rank in (1, 0):
        ctx = BuildContext(cfg, opts, writer, dist=Dist(rank=rank, world=2), stage="featvis", stage_key="k" * 16,
                           log=lambda m: None)
        stage_featvis(ctx)
        if rank == 1:
            assert set(writer.artifacts) == before and not (tmp_path / "build" / "featvis").exists()
            shards = sorted(p.name for p in (tmp_path / "build" / ".shards").rglob("*.npz"))
            assert shards == ["0000000007-0000000014.npz"] * 2  # its one chunk, both models
    assert set(writer.artifacts) - before == own
    built = tmp_path / "build"
    for which in ("source", "target"):
        files = sorted(p.relative_to(built) for p in (built / "featvis" / which).rglob("*.png"))
        assert [str(f) for f in files] == sorted(f"featvis/{which}/{layer}/{n}.png" for layer, n in subset)
        for rel in files:  # the single-process build's images, byte for byte
            assert (built / rel).read_bytes() == (tiny_cache.root / rel).read_bytes(), rel
    # per-neuron measures equal the full build's (the gray cut-off and ranks depend on the set rendered)
    got = pd.read_parquet(built / "featvis/change.parquet")
    ref = tiny_cache.feature_change.set_index(["layer", "neuron"]).loc[subset].reset_index()
    cols = ["layer", "neuron", "similarity", "colourfulness_source", "colourfulness_target"]
    pd.testing.assert_frame_equal(got[cols], ref[cols], check_exact=True)
    assert json.loads((built / "featvis/meta.json").read_text())["n_neurons"] == len(subset)
    assert ctx.notes["rendered"] == len(subset) and ctx.notes["neurons_total"] == 336
