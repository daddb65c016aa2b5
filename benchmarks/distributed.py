"""Seconds of the attribute stage with one process and with two under torchrun, and their ratio.

    python benchmarks/distributed.py --cache /tmp/demo16/digits [--config configs/digits.yaml] [--stage attribute]

Starts from a hard-linked copy of a built cache (the original is never written) whose ``--stage`` key is
spoiled in the copy's manifest, and builds only that stage and the stages it depends on (reused), as
``transferviz build`` does -- the same framework, shards and publishing, in a worker of this script (so the
stages after it, which other code may have changed since the cache was built, do not run). Three builds: one
process with torch's default threads, one process with one thread, and ``torchrun --standalone
--nproc-per-node 2`` (torchrun gives each rank one thread). Prints the stage's seconds as each build logs
them (``[attribute] done in ...``), the ratios, and the load average before and after (on a shared machine
the ratio means little under load).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def spoiled_copy(cache: Path, root: Path, stage: str) -> None:
    """``root/<run>``: the published build of ``cache``, hard-linked, with ``stage``'s key spoiled."""
    build = cache.resolve()
    manifest = json.loads((build / "manifest.json").read_text())
    run = manifest["config"]["name"]
    dst = root / ".builds" / build.name
    shutil.copytree(build, dst, copy_function=os.link, ignore=shutil.ignore_patterns(".lock"))
    if stage not in manifest["stages"]:
        sys.exit(f"error: the cache has no stage {stage!r}; choose one of {', '.join(manifest['stages'])}")
    manifest["stages"][stage]["key"] = "spoiled by benchmarks/distributed.py"
    (dst / "manifest.json").unlink()  # a hard link into the original: never write through it
    (dst / "manifest.json").write_text(json.dumps(manifest))
    (root / run).symlink_to(f".builds/{build.name}")


def timed_build(cache: Path, config: str, stage: str, processes: int, threads: int | None) -> float:
    with tempfile.TemporaryDirectory(prefix="tvz-dist-bench-") as tmp:
        root = Path(tmp)
        spoiled_copy(cache, root, stage)
        args = [str(Path(__file__).resolve()), "--worker", "--config", config, "--root", str(root), "--stage", stage]
        cmd = [sys.executable, *args] if processes == 1 else \
            [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}", *args]
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
        env.pop("OMP_NUM_THREADS", None)
        if threads is not None:
            env["OMP_NUM_THREADS"] = str(threads)
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"error: the build failed ({' '.join(cmd[1:4])} ...):\n{proc.stderr[-2000:]}")
        m = re.search(rf"^\[{re.escape(stage)}\] done in ([0-9.]+) s", proc.stderr, re.M)
        if m is None:
            sys.exit(f"error: the build did not recompute {stage}:\n{proc.stderr[-2000:]}")
        return float(m.group(1))


def worker(config: str, root: Path, stage: str) -> None:
    """One rank's build of ``stage`` and the stages it depends on (every rank of a torchrun group runs this)."""
    import torch

    from transferviz import distributed
    from transferviz.build import STAGES
    from transferviz.build.framework import BuildOptions, run_build
    from transferviz.config import load_config

    by_name = {s.name: s for s in STAGES}
    needed, todo = set(), [stage]
    while todo:
        name = todo.pop()
        if name not in needed:
            needed.add(name)
            todo.extend(by_name[name].deps)
    distributed.init(torch.device("cpu"))
    try:
        run_build(load_config(config), [s for s in STAGES if s.name in needed],
                  BuildOptions(root, torch.device("cpu"), featvis=False, progress=False),
                  log=lambda m: print(m, file=sys.stderr, flush=True))
    finally:
        distributed.shutdown()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache", type=Path, default=REPO / "cache" / "digits", help="a built cache (default cache/digits)")
    p.add_argument("--config", default="configs/digits.yaml", help="the config it was built from")
    p.add_argument("--stage", default="attribute", help="the stage to time (default attribute)")
    p.add_argument("--only", choices=["default", "one-thread", "two"], nargs="+",
                   help="run only these of the three builds (on a busy machine each takes minutes)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        sys.path.insert(0, str(REPO))
        worker(a.config, a.root, a.stage)
        return
    if not (a.cache / "manifest.json").is_file():
        sys.exit(f"error: no built cache at {a.cache}; build one with `transferviz build {a.config}` or pass --cache")
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    runs = {"default": ("1 process, default threads", 1, None), "one-thread": ("1 process, 1 thread", 1, 1),
            "two": ("2 processes (torchrun)", 2, None)}
    seconds = {}
    for key, (label, procs, threads) in runs.items():
        if a.only and key not in a.only:
            continue
        seconds[key] = timed_build(a.cache, a.config, a.stage, procs, threads)
        print(f"{a.stage:<10} {label:<28} {seconds[key]:7.1f} s", flush=True)
    for key in ("default", "one-thread"):
        if key in seconds and "two" in seconds:
            print(f"ratio {runs[key][0]} / 2 processes: {seconds[key] / seconds['two']:.2f}x")
    load1 = os.getloadavg()
    print(f"cpus {os.cpu_count()}, load average before {load0[0]:.2f} {load0[1]:.2f}, after {load1[0]:.2f} "
          f"{load1[1]:.2f}; {time.perf_counter() - t0:.0f} s in all")


if __name__ == "__main__":
    main()
