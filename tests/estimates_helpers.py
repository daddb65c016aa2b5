"""Runs the transfer or cka stage alone over a built cache's artifacts (hard-linked into a scratch build folder),
so the stage tests need no new build: the tiny cache of a checkout may predate the stages."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from transferviz.build.estimates import stage_cka, stage_transfer
from transferviz.build.framework import BuildContext, BuildOptions
from transferviz.cache import Cache, CacheWriter
from transferviz.config import parse_config

STAGE_RUNS = {"transfer": stage_transfer, "cka": stage_cka}
OWN = ("analysis/transfer/", "analysis/cka/")  # what the two stages write: never adopted, so always fresh


def run_stage(cache: Cache, dest: Path, stage: str | None) -> Cache:
    """A reader over ``dest``: ``cache``'s artifacts without the two stages' (thumbnails and feature
    visualizations left out too: no stage here reads them), then ``stage`` run (None: none, an older cache)."""
    dest.mkdir(parents=True, exist_ok=True)
    manifest = json.loads((cache.root / "manifest.json").read_text())
    config = parse_config(manifest["config"], "manifest.json")
    writer = CacheWriter(dest)
    writer.adopt(cache.root, [a for rel, a in manifest["artifacts"].items()
                              if not rel.startswith(OWN + ("thumbs", "featvis"))])
    ctx = BuildContext(config, BuildOptions(cache_root=dest, device=torch.device("cpu"), progress=False), writer)
    if stage is not None:
        STAGE_RUNS[stage](ctx)
    return ctx.cache
