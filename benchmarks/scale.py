"""Time and peak memory of every build stage at 5k, 20k and 100k instances (issue 13, item 4).

    python benchmarks/scale.py [--config configs/scale.yaml] [--sizes 5000,20000,100000]
                               [--work /tmp/scale-bench] [--device cpu] [--no-featvis]

For each size N the config is rewritten with both domains' ``n_per_class`` = N / 20 (10 classes, two
domains) and name ``<name>_<N>``, and built from nothing (``--force``) in its own cache folder by a child
``python -m transferviz build`` process. The child's memory is sampled from ``/proc/<pid>/status`` every
0.2 s and charged to the stage its log says is running; the whole build's peak RSS is the kernel's
(``os.wait4``'s ``ru_maxrss``), so it misses nothing between samples. Each size's table is printed when its
build ends (a long 100k build reports the smaller sizes first) and appended to ``<work>/scale.jsonl``;
``--report`` reprints the tables and growth ratios from that file without building.

Growth: per stage, t(N) / t(previous N) beside N / previous N -- linear stages grow like N; the t-SNE stages
like N log N; stages whose work is capped or per class (featvis, architecture) stay flat.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
STAGE_START = re.compile(r"^\[(\w+)\] (?!done in|reused)")
STAGE_DONE = re.compile(r"^\[(\w+)\] done in ([0-9.]+) s")
N_CLASSES, N_DOMAINS = 10, 2


def variant(config: Path, n: int, folder: Path) -> Path:
    """``config`` with both domains sized so the build has ``n`` instances in all, written into ``folder``."""
    per_class, rest = divmod(n, N_CLASSES * N_DOMAINS)
    if rest or per_class < 2:
        raise SystemExit(f"--sizes: {n} is not a multiple of {N_CLASSES * N_DOMAINS} (10 classes x 2 domains) "
                         f"of at least {2 * N_CLASSES * N_DOMAINS}; pick e.g. 5000, 20000, 100000")
    cfg = yaml.safe_load(config.read_text())
    for side in ("source", "target"):
        if cfg[side].get("kind") != "synthetic_digits":
            raise SystemExit(f"{config}: {side}.kind must be synthetic_digits to be resized; use configs/scale.yaml")
        cfg[side]["n_per_class"] = per_class
    cfg["name"] = f"{cfg['name']}_{n}"
    out = folder / f"{cfg['name']}.yaml"
    out.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return out


def _rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def run_size(config: Path, n: int, work: Path, device: str, featvis: bool, omp_wait_policy: str) -> dict[str, Any]:
    """Builds the ``n``-instance variant in a child process; per stage its seconds and sampled peak RSS."""
    cfg_path = variant(config, n, work)
    cache_dir = work / "cache"
    log_path = work / f"build_{n}.log"
    cmd = [sys.executable, "-m", "transferviz", "build", str(cfg_path), "--cache-dir", str(cache_dir),
           "--device", device, "--force", "--quiet"] + ([] if featvis else ["--no-featvis"])
    stages: dict[str, dict[str, float]] = {}
    current = ["(start)"]
    peaks: dict[str, float] = {}
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        env = dict(os.environ)
        if omp_wait_policy:
            env["OMP_WAIT_POLICY"] = omp_wait_policy
        child = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.PIPE, text=True, bufsize=1, env=env)
        done = threading.Event()

        def sample() -> None:  # charged to whichever stage the log last started
            while not done.wait(0.2):
                rss = _rss_mb(child.pid)
                if rss is not None:
                    peaks[current[0]] = max(peaks.get(current[0], 0.0), rss)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        assert child.stderr is not None
        for line in child.stderr:
            log.write(line)
            log.flush()
            if m := STAGE_DONE.match(line):
                stages[m[1]] = {"seconds": float(m[2]), "peak_rss_mb": peaks.get(m[1], 0.0)}
                print(f"  {n:>7} {m[1]:<13} {float(m[2]):8.1f} s  rss {peaks.get(m[1], 0.0):7.0f} MB", flush=True)
            elif m := STAGE_START.match(line):
                current[0] = m[1]
        _, status, usage = os.wait4(child.pid, 0)  # this child's own rusage, not every child's so far
        child.returncode = os.waitstatus_to_exitcode(status)
        done.set()
        sampler.join()
    wall = time.perf_counter() - t0
    return {"n": n, "ok": child.returncode == 0, "wall_s": round(wall, 1), "stages": stages,
            "peak_rss_mb": round(usage.ru_maxrss / 1024.0, 1), "load_avg": os.getloadavg(), "log": str(log_path),
            "omp_wait_policy": env.get("OMP_WAIT_POLICY", "(default)")}


def report(rows: list[dict[str, Any]]) -> str:
    """The per-stage table over the sizes measured, with each stage's growth from the previous size."""
    rows = sorted(rows, key=lambda r: r["n"])
    names: list[str] = []
    for r in rows:
        names += [s for s in r["stages"] if s not in names]
    head = f"{'stage':<13}" + "".join(f" {r['n']:>8} s {'MB':>6}" for r in rows)
    head += "".join(f"  x{b['n'] / a['n']:<4.0f}growth" for a, b in zip(rows, rows[1:]))
    lines = [head]
    for s in names:
        cells = []
        for r in rows:
            st = r["stages"].get(s)
            rss = f"{st['peak_rss_mb']:>6.0f}" if st and st["peak_rss_mb"] else f"{'-':>6}"  # '-': ended unsampled
            cells.append(f" {st['seconds']:>8.1f}   {rss}" if st else f" {'-':>8}   {'-':>6}")
        growth = []
        for a, b in zip(rows, rows[1:]):
            sa, sb = a["stages"].get(s), b["stages"].get(s)
            ok = sa and sb and sa["seconds"] > 0.05
            growth.append(f"  {sb['seconds'] / sa['seconds']:>10.1f}" if ok else f"  {'-':>10}")
        lines.append(f"{s:<13}" + "".join(cells) + "".join(growth))
    lines.append(f"{'build':<13}" + "".join(f" {r['wall_s']:>8.1f}   {r['peak_rss_mb']:>6.0f}" for r in rows)
                 + "".join(f"  {b['wall_s'] / a['wall_s']:>10.1f}" for a, b in zip(rows, rows[1:])))
    lines.append("build = wall clock of the child and its kernel-measured peak RSS; stage MB = sampled peak RSS "
                 "while the stage ran; load average (1, 5, 15 min) at the end: "
                 + "; ".join(f"{r['n']}: {', '.join(f'{v:.1f}' for v in r['load_avg'])}"
                             + f" (OMP_WAIT_POLICY {r.get('omp_wait_policy', '(default)')})"
                             + ("" if r["ok"] else " (FAILED: see " + r["log"] + ")") for r in rows))
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, default=ROOT / "configs" / "scale.yaml")
    p.add_argument("--sizes", default="5000,20000,100000", help="instances in all, comma-separated")
    p.add_argument("--work", type=Path, default=Path("/tmp/scale-bench"), help="configs, caches, logs, results")
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-featvis", action="store_true")
    p.add_argument("--omp-wait-policy", default="PASSIVE",
                   help="OMP_WAIT_POLICY of the build ('' keeps the environment's). PASSIVE: torch's OpenMP threads "
                        "sleep instead of spinning between parallel regions; on a shared, oversubscribed 2-core "
                        "machine spinning made the abstract stage ~30x slower (measured 13.8 s vs 0.46 s a class)")
    p.add_argument("--report", action="store_true", help="only reprint the tables of <work>/scale.jsonl")
    args = p.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    results = args.work / "scale.jsonl"
    if not args.report:
        for n in (int(v) for v in args.sizes.split(",")):
            print(f"building {n} instances (log: {args.work / f'build_{n}.log'}) ...", flush=True)
            row = run_size(args.config, n, args.work, args.device, not args.no_featvis, args.omp_wait_policy)
            with open(results, "a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(f"{n} instances: {'done' if row['ok'] else 'FAILED'} in {row['wall_s']:.0f} s, "
                  f"peak RSS {row['peak_rss_mb']:.0f} MB", flush=True)
    if not results.is_file():
        raise SystemExit(f"{results} does not exist; run without --report first")
    latest: dict[int, dict[str, Any]] = {}
    for line in results.read_text().splitlines():  # the last run of each size counts
        row = json.loads(line)
        latest[row["n"]] = row
    print(report(list(latest.values())))


if __name__ == "__main__":
    main()
