"""The instance table's scroll at 100k instances (issue 13, item 4): time and bytes of one 100-row block.

    python benchmarks/table.py [--cache DIR | --inflate SRC] [--instances 100000] [--blocks 200]

The grid (dash-ag-grid, infinite row model) asks the server for one block per ``getRowsRequest``;
each request here goes through Dash's own ``/_dash-update-component`` endpoint with Flask's test
client, so a timing covers what the browser waits for on the server: the request's parsing and
checks, the filter (the box's query AND the column filters, one pandas mask), the sort, the slice,
and the JSON answer. Per query (no filter; a sort; a sort with a column filter and a box query)
the first block computes and caches the answer's order ("cold"); the following blocks of a scroll
(consecutive blocks, then random jumps of the scroll bar) slice it ("warm"). Printed: p50/p95 of the
warm blocks and the cold times (ms), bytes per block (the answer's body as sent, raw and gzip -6),
and whether the warm p95 meets the goal (<= 150 ms). The machine's load average is printed first:
everything is wall time on a shared machine. Gzip sizes of an inflated cache flatter (its rows repeat
the source's values); the raw size is the honest one.

The 100k cache is the tiny test cache (or ``--inflate SRC``) inflated by ``tools/inflate_cache.py``
into ``/tmp/transferviz-table-bench/`` unless ``--cache`` names one.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))

GOAL_P95_MS = 150.0
BLOCK = 100

#: (name, box query, filterModel, sortModel): what a user scrolls through.
QUERIES: tuple[tuple[str, str, dict, list], ...] = (
    ("no filter, no sort", "", {}, []),
    ("sort by target loss", "", {}, [{"colId": "target_loss", "sort": "desc"}]),
    ("box + column filter + 2-key sort", "{target_pred} != {label}",
     {"domain": {"filterType": "text", "type": "equals", "filter": "target"}},
     [{"colId": "label", "sort": "asc"}, {"colId": "source_loss", "sort": "desc"}]),
)


def _cache(args: argparse.Namespace) -> Path:
    if args.cache:
        return Path(args.cache)
    from inflate_cache import inflate

    src = Path(args.inflate or os.environ.get("TRANSFERVIZ_TEST_TINY_CACHE", REPO / "cache" / "digits"))
    dst = Path("/tmp/transferviz-table-bench") / f"{src.name}-{args.instances}"
    if not dst.exists():
        print(f"inflating {src} to {args.instances:,} instances in {dst} ...", flush=True)
        inflate(src, dst, args.instances, progress=True)
    return dst


def _request(app: Any, key: str, request: dict, box: str) -> tuple[float, bytes]:
    from tests.reliability.callback_requests import callback_payload

    client = app.server.test_client()
    payload = callback_payload(app, key, {0: request, 1: box, 2: [], 3: None})
    t0 = time.perf_counter()
    r = client.post("/_dash-update-component", json=payload)
    dt = (time.perf_counter() - t0) * 1000
    if r.status_code != 200:
        raise SystemExit(f"the row callback answered {r.status_code}: {r.data[:200]!r}")
    return dt, r.data


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache", help="a built (or inflated) cache; default: inflate one")
    p.add_argument("--inflate", help="the cache to inflate (default: $TRANSFERVIZ_TEST_TINY_CACHE or cache/digits)")
    p.add_argument("--instances", type=int, default=100_000)
    p.add_argument("--blocks", type=int, default=200, help="warm blocks per query")
    args = p.parse_args(argv)

    from dashboard.app import create_app
    from layouts import instance_table as ly
    from tests.reliability.callback_requests import find_callback

    root = _cache(args)
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} cores, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")
    t0 = time.perf_counter()
    app = create_app(root)
    print(f"app over {root} built in {time.perf_counter() - t0:.1f} s")
    key = find_callback(app, f"..{ly.TABLE}.getRowsResponse...")
    rng = np.random.default_rng(0)
    all_warm: list[float] = []
    sizes: list[int] = []
    gz: list[int] = []
    print(f"\n{'query':34s} {'rows':>8s} {'cold ms':>8s} {'p50 ms':>7s} {'p95 ms':>7s} {'KB/block':>9s} "
          f"{'gzip KB':>8s}")
    for name, box, fm, sm in QUERIES:
        def req(start: int, fm: dict = fm, sm: list = sm) -> dict:
            return {"startRow": start, "endRow": start + BLOCK, "filterModel": fm, "sortModel": sm}

        # the first block of a query is new to the order cache: it filters and sorts the 100k rows
        cold, body = _request(app, key, req(0), box)
        rows = json.loads(body)["response"][ly.TABLE]["getRowsResponse"]["rowCount"]
        warm, q_sizes, q_gz = [], [], []
        last = max(rows - BLOCK, 0)
        starts = [BLOCK * k for k in range(1, args.blocks // 2 + 1)]
        starts += [int(s) for s in rng.integers(0, last + 1, size=args.blocks - len(starts))]
        for s in starts:
            s = min(s, last)
            dt, body = _request(app, key, req(s), box)
            warm.append(dt)
            q_sizes.append(len(body))
            q_gz.append(len(gzip.compress(body, 6)))
        all_warm += warm
        sizes += q_sizes
        gz += q_gz
        print(f"{name:34s} {rows:8,d} {cold:8.1f} {np.percentile(warm, 50):7.1f} {np.percentile(warm, 95):7.1f} "
              f"{np.median(q_sizes) / 1024:9.1f} {np.median(q_gz) / 1024:8.1f}")
    p95 = float(np.percentile(all_warm, 95))
    print(f"\nall warm blocks: n={len(all_warm)}, p50 {np.percentile(all_warm, 50):.1f} ms, p95 {p95:.1f} ms "
          f"(goal <= {GOAL_P95_MS:.0f} ms: {'met' if p95 <= GOAL_P95_MS else 'NOT met'}); "
          f"bytes per {BLOCK}-row block: median {int(np.median(sizes)):,} raw, {int(np.median(gz)):,} gzip")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
