"""Times the demo build from nothing, stage by stage, on this machine.

    python benchmarks/build.py [--config configs/digits.yaml] [--device auto]

Goal (issue 2): the whole demo build from nothing in at most 3 minutes on a 2-core CPU,
training well under half of it. Prints each stage's seconds and share of the total.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from transferviz.build import build
from transferviz.config import load_config
from transferviz.preprocess import resolve_device

GOAL_S = 180.0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(Path(__file__).resolve().parent.parent / "configs" / "digits.yaml"))
    p.add_argument("--device", default="auto")
    p.add_argument("--no-featvis", action="store_true")
    args = p.parse_args()
    cfg = load_config(args.config)
    device = resolve_device(args.device)
    print(f"demo build of '{cfg.name}' from nothing on {device} ({torch.get_num_threads()} torch threads)")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        report = build(cfg, Path(tmp), device, featvis=not args.no_featvis, progress=False, log=lambda m: None)
        total = time.perf_counter() - t0
        t1 = time.perf_counter()
        again = build(cfg, Path(tmp), device, featvis=not args.no_featvis, progress=False, log=lambda m: None)
        rebuild = time.perf_counter() - t1
    print(f"{'stage':<13} {'seconds':>8} {'share':>6}")
    for s in report.stages:
        print(f"{s['name']:<13} {s['seconds']:8.1f} {s['seconds'] / total:6.1%}  {s['summary']}")
    print(f"{'total':<13} {total:8.1f}   goal {GOAL_S:.0f} s -> {'OK' if total <= GOAL_S else 'OVER'} "
          f"({total / GOAL_S:.2f} of the goal)")
    train = next(s["seconds"] for s in report.stages if s["name"] == "models")
    print(f"training share of the build: {train / total:.1%} (goal: well under 50%)")
    print(f"unchanged rebuild (every stage but data reused): {rebuild:.1f} s = {rebuild / total:.1%} of a full build; "
          f"reused: {sum(s['reused'] for s in again.stages)}/{len(again.stages)} stages")


if __name__ == "__main__":
    main()
