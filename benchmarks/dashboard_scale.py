"""The dashboard at 100k instances (issue 13, item 4): bytes on the wire of the scatter maps before and
after, the class-selection t-SNE at 5,000 instances, callback p95 and the first page load.

    python benchmarks/dashboard_scale.py --inflate cache/digits [--instances 100000] [--before HEAD]
    python benchmarks/dashboard_scale.py --cache /tmp/digits100k [--repeat 10] [--skip-callbacks]

The 100k cache is the demo cache inflated by ``tools/inflate_cache.py`` (repeated rows, fresh ids,
jittered maps) unless ``--cache`` names one. Printed:

* the machine's load average and cores (everything here is wall time on a shared machine; the t-SNE
  also gets its CPU time, which load does not inflate as much);
* bytes of each map's figure as Dash sends it (``dash._utils.to_json``, raw and gzip -6): the two loss
  maps of the hard-example view, the instance view with every class checked, the timeline's last epoch;
  "before" is the same measurement run in the ``--before`` git revision's tree (``git archive``, nothing
  in this checkout is touched; ``--before none`` skips it);
* the class-selection t-SNE (``selection_map``) of 5,000 instances: wall and CPU seconds, iterations.
  Goal < 2 s;
* the instance CSV exports of every row through their routes (median and p95 ms, bytes sent);
* ``benchmarks/callbacks.py`` over the cache: every callback's p95 and the server side of the first page
  load. Goals: p95 <= 300 ms, first load <= 3 s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmarks

from load import bench_callbacks  # noqa: E402 (after the path)

GOAL_P95_MS = 300.0
GOAL_FIRST_LOAD_S = 3.0
GOAL_SELECTION_TSNE_S = 2.0
SELECTION_SIZE = 5_000

#: Run in a tree (this one or an older revision's) with the cache path as argv[1]: prints one JSON line of
#: each map's bytes. Only APIs that exist since the maps did, so an older tree runs it unchanged.
WIRE_SNIPPET = r'''
import gzip, json, sys, time, warnings
warnings.filterwarnings("ignore")
from dash._utils import to_json
from transferviz.cache import Cache
from callbacks import hard_examples as cbh, instances as cbi
from dashboard.views.hard_examples import data as hd
c = Cache.open(sys.argv[1])
hd.hard_data(c)  # the view warms this at start-up: not part of a request
out = {}
def size(name, fig, seconds):
    body = to_json(fig).encode()
    out[name] = {"bytes": len(body), "gzip": len(gzip.compress(body, 6)), "ms": seconds * 1000,
                 "typed_arrays": body.count(b'"bdata"')}
t = time.perf_counter(); h, p, _ = cbh.update_maps(c, "target", "both", [], None, None); dt = time.perf_counter() - t
size("loss map, hidden layer", h, dt / 2); size("loss map, raw pixels", p, dt / 2)
t = time.perf_counter(); f = cbi.update_scatter(c, list(range(len(c.classes))))[0]
size("instance map, all classes", f, time.perf_counter() - t)
try:
    from dashboard.views.timeline.data import timeline_data
    from dashboard.views.timeline.figures import map_figure
    td = timeline_data(c)
    if td is not None:
        t = time.perf_counter(); f = map_figure(td, len(td.epochs) - 1, "both", [])
        size("timeline map, last epoch", f, time.perf_counter() - t)
except ImportError:
    pass
print(json.dumps(out))
'''


def wire_bytes(cache_dir: Path, tree: Path) -> dict[str, Any]:
    """The maps' bytes measured by :data:`WIRE_SNIPPET` in ``tree`` (a checkout of some revision)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    r = subprocess.run([sys.executable, "-c", WIRE_SNIPPET, str(cache_dir)], cwd=tree, env=env,
                       capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise SystemExit(f"error: measuring the maps in {tree} failed: {r.stderr.strip().splitlines()[-1:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def revision_tree(rev: str, into: Path) -> Path:
    """The files of git revision ``rev`` in ``into`` (``git archive``: this checkout is not touched)."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def selection_tsne(cache_dir: Path, n: int = SELECTION_SIZE) -> dict[str, Any]:
    """Times ``selection_map`` on ``n`` instances of the cache (the first rows of each domain in the
    proportions of the cache, which an inflated cache holds once each before its repeats)."""
    import numpy as np

    import transferviz.analysis.projection as projection
    from transferviz.cache import Cache

    c = Cache.open(cache_dir)
    dom = c.instances["domain"].astype(str).to_numpy()
    src, tgt = np.flatnonzero(dom == "source"), np.flatnonzero(dom == "target")
    k_src = min(len(src), int(round(n * len(src) / len(dom))))
    rows = np.r_[src[:k_src], tgt[:n - k_src]]
    feats, init = np.asarray(c.projection_features())[rows], np.asarray(c.tsne())[rows]
    projection.selection_map(feats[:200], init[:200])  # imports and numba compilation, not part of a request
    t, cpu = time.perf_counter(), time.process_time()
    projection.selection_map(feats, init, int(c.config["seed"]), perplexity=float(c.config["analysis"]
                                                                                 ["tsne_perplexity"]))
    return {"instances": len(rows), "wall_s": time.perf_counter() - t, "cpu_s": time.process_time() - cpu,
            "iterations": projection.selection_iterations(len(rows))}


def export_routes(cache_dir: Path, repeat: int) -> dict[str, Any]:
    """The instance CSVs of every row (the table with no filter; the hard-example view's 'both domains'),
    posted to their routes through Flask's test client as the page posts them, gzip accepted: median and
    p95 ms, raw and sent bytes. A download a user asked for, not a callback; reported beside them."""
    import gzip
    import statistics

    from dashboard.app import create_app

    app = create_app(cache_dir)
    client = app.server.test_client()
    states = {"instances": {"what": "shown", "request": None, "box_query": ""},
              "hard_examples": {"brush": None, "model": "target", "domain": "both", "wrong_only": []}}
    out: dict[str, Any] = {}
    for kind, state in states.items():
        times, r = [], None
        for _ in range(repeat + 1):
            t = time.perf_counter()
            r = client.post(f"/export/{kind}.csv", json=state, headers={"Accept-Encoding": "gzip, deflate, br"})
            times.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200, r.get_data(as_text=True)
        assert r is not None
        times = sorted(times[1:])  # the first warms the route
        sent = r.get_data()
        p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
        out[kind] = {"median_ms": statistics.median(times), "p95_ms": p95, "bytes": len(gzip.decompress(sent)),
                     "sent_bytes": len(sent)}
    return out


def load_line() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} / {fifteen:.1f} (1/5/15 min) on {os.cpu_count()} cores"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--cache", type=Path, help="a cache of many instances (e.g. made by tools/inflate_cache.py)")
    src.add_argument("--inflate", type=Path, help="inflate this cache to --instances first (into a temporary folder)")
    p.add_argument("--instances", type=int, default=100_000)
    p.add_argument("--before", default="HEAD", help="git revision of the 'before' bytes ('none': skip)")
    p.add_argument("--repeat", type=int, default=10, help="calls per callback (benchmarks/callbacks.py)")
    p.add_argument("--skip-callbacks", action="store_true", help="only the bytes and the selection t-SNE")
    p.add_argument("--json", type=Path, help="also write the results here")
    a = p.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="dashboard-scale-") as tmp:
        cache_dir = a.cache
        print(load_line())
        if a.inflate is not None:
            sys.path.insert(0, str(REPO / "tools"))
            from inflate_cache import inflate

            t = time.perf_counter()
            cache_dir = inflate(a.inflate, Path(tmp) / "inflated", a.instances, progress=False)
            print(f"inflated {a.inflate} to {a.instances:,} instances in {time.perf_counter() - t:.1f} s")
        results: dict[str, Any] = {"load": os.getloadavg(), "cores": os.cpu_count()}

        after = wire_bytes(cache_dir, REPO)
        before = None
        if a.before != "none":
            before = wire_bytes(cache_dir, revision_tree(a.before, Path(tempfile.mkdtemp(dir=tmp))))
        results["bytes"] = {"after": after, "before": before}
        print(f"\nbytes on the wire ({a.before if before else 'no'} 'before'; gzip -6 in brackets):")
        for name, v in after.items():
            b = (before or {}).get(name)
            was = f"{b['bytes']:>11,} ({b['gzip']:>9,})  ->" if b else ""
            print(f"  {name:<28} {was} {v['bytes']:>10,} ({v['gzip']:>9,})  built in {v['ms']:.0f} ms")

        sel = selection_tsne(cache_dir)
        results["selection_tsne"] = sel
        ok = "yes" if sel["wall_s"] < GOAL_SELECTION_TSNE_S else "NO (wall)"
        print(f"\nclass-selection t-SNE of {sel['instances']:,} instances: {sel['wall_s']:.2f} s wall, "
              f"{sel['cpu_s']:.2f} s CPU, {sel['iterations']} iterations; < {GOAL_SELECTION_TSNE_S:.0f} s: {ok}")
        print("  " + load_line())

        ex = export_routes(cache_dir, a.repeat)
        results["exports"] = ex
        print("\ninstance CSV exports of every row, by their routes (not callbacks; gzip level 1):")
        for kind, v in ex.items():
            print(f"  /export/{kind}.csv  median {v['median_ms']:.0f} ms, p95 {v['p95_ms']:.0f} ms; "
                  f"{v['bytes']:,} bytes of CSV, {v['sent_bytes']:,} sent")

        if not a.skip_callbacks:
            out = Path(tmp) / "callbacks.json"
            print(f"\nbenchmarks/callbacks.py --repeat {a.repeat} over {cache_dir}:")
            bench_callbacks().main(["--cache", str(cache_dir), "--repeat", str(a.repeat), "--json", str(out)])
            cb = json.loads(out.read_text())
            worst = max(cb["callbacks"], key=lambda r: r["p95_ms"] if r["p95_ms"] == r["p95_ms"] else -1)
            first = cb["first_load"]["first_load_s"]
            over = [r["callback"] for r in cb["callbacks"] if not r["p95_ms"] <= GOAL_P95_MS]
            results["callbacks"] = cb
            size = f"{a.instances:,} instances" if a.inflate else "the cache's size"
            print(f"\nat {size}: worst callback p95 {worst['p95_ms']:.0f} ms "
                  f"({worst['callback'].split(',')[0]}); {len(over)} over {GOAL_P95_MS:.0f} ms; first page load "
                  f"{first:.2f} s (goal <= {GOAL_FIRST_LOAD_S:.0f} s: {'yes' if first <= GOAL_FIRST_LOAD_S else 'NO'})")
            print("  " + load_line())
        if a.json:
            a.json.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
