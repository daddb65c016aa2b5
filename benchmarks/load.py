"""Load: gunicorn with several workers over a built cache, many clients replaying a realistic visit.

    python benchmarks/load.py [--cache cache/digits] [--workers 4] [--clients 32] [--duration 60]

A visit is what a user's first minute on the dashboard sends: the page load (``/``, ``/_dash-layout``,
``/_dash-dependencies``), every callback the analysis tab fires on load for one class (the URL state, the
instance view's class-selection map, the network figure, the feature view and its biplot), the
thumbnails of a dozen of that class's instances and the feature visualizations of its first neurons, a
new class selection in the instance view (one to three classes drawn at random), and the diagnosis tab
(hard-example maps, the instance table, the confusion grid, the image query). Payloads are the ones the
browser sends, made beforehand from the app's own callback specs (``benchmarks/callbacks.py``) so the
clients spend their time waiting, not building JSON.

Printed: requests served, errors (any answer but 200/204, or no answer), p50/p95/p99 per request type,
and every worker's resident memory before and after. Goals (issue 15): no errors; p95 under 300 ms
for every type but the first visit of a class selection never drawn before, which has 1 s.

The clients are threads of this process, on the same machine as the server: on a 2-core machine
they take a share of the CPU the workers would otherwise have, so the latencies are an upper bound.
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

GOAL_P95_MS = 300.0
GOAL_NEW_SELECTION_P95_MS = 1000.0
NEW_SELECTION = "class selection (new)"


def bench_callbacks() -> Any:
    """benchmarks/callbacks.py, loaded under another name: its file name is the dashboard's ``callbacks`` package's."""
    spec = importlib.util.spec_from_file_location("bench_callbacks", Path(__file__).with_name("callbacks.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_callbacks"] = module
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Request:
    kind: str  # the request type the report groups by
    method: str
    path: str
    body: bytes | None = None


def _kind(first_output: str, tab: str) -> str:
    """The request type of a callback, by its first output's id."""
    for prefix, kind in (("inst-scatter", "class selection"), ("network-graph", "network figure"),
                         ("features-", "feature view"), ("feature-biplot", "feature view"), ("url", "url state")):
        if first_output.startswith(prefix):
            return kind
    return "diagnosis tab" if tab == "diagnosis" else "other callbacks"


def _post(payload: dict[str, Any], kind: str, prefix: str) -> Request:
    return Request(kind, "POST", f"{prefix}_dash-update-component", json.dumps(payload).encode())


def plan_visits(cache_dir: Path, prefix: str, seed: int = 0) -> list[list[Request]]:
    """Per class, the requests of one visit (in the order a browser sends them)."""
    import logging
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    logging.getLogger("transferviz").setLevel(logging.ERROR)
    bc = bench_callbacks()
    from dashboard.app import create_app
    from dashboard.urlstate import StateSpace
    from layouts import ids
    from layouts import instances as inst
    from transferviz.cache import Cache

    cache = Cache.open(cache_dir)
    app = create_app(cache_dir)
    space = StateSpace.from_cache(cache)
    scen = bc.Scenario(cache, space, bc._layout_values(app.layout))
    cbs = [cb for cb in bc.callbacks_of(app) if cb.initial]
    rng = random.Random(seed)
    n_classes = len(space.classes)
    layers = cache.layers
    visits: list[list[Request]] = []
    for c in range(n_classes):
        scen.i = c
        reqs = [Request("page", "GET", prefix), Request("page", "GET", f"{prefix}_dash-layout"),
                Request("page", "GET", f"{prefix}_dash-dependencies")]
        for tab in (ids.TAB_ANALYSIS, ids.TAB_DIAGNOSIS):
            scen.tab = tab
            for cb in cbs:
                cb_tab = bc.tab_of(cb)
                if cb_tab != tab:
                    continue
                first = bc._split_output(cb.output)[0][0]["id"]
                kind = _kind(first if isinstance(first, str) else "", "diagnosis" if tab == ids.TAB_DIAGNOSIS else "")
                reqs.append(_post(cb.payload(scen.value), kind, prefix))
            if tab == ids.TAB_ANALYSIS:
                reqs += [Request("thumbnail", "GET", f"{prefix}thumb/{i}.png") for i in scen.ids_of_class(c, 12)]
                if cache.has_featvis:  # the feature view's images of the class's first rendered neurons
                    layer = layers[-2] if len(layers) > 1 else layers[-1]
                    rendered = cache.featvis_neurons("target", layer)
                    neurons = [int(n) for n in cache.important_neurons("target", layer, c) if int(n) in rendered][:6]
                    reqs += [Request("feature image", "GET", f"{prefix}featvis/target/{layer}/{n}.png")
                             for n in neurons]
                # a class selection of one to three classes: new to the server the first time it is drawn
                picks = sorted(rng.sample(range(n_classes), rng.randint(1, min(3, n_classes))))
                scen_sel = [cb for cb in cbs if cb.output.startswith("..inst-scatter.figure")]
                for cb in scen_sel:
                    values = lambda cid, prop: (  # noqa: E731
                        picks if (cid, prop) == (inst.CLASSES, "value")
                        else scen.value(cid, prop))
                    reqs.append(_post(cb.payload(values), "class selection", prefix))
        visits.append(reqs)
    return visits


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _workers(master: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{master}/task/{master}/children").read_text().split()]
    except OSError:
        return []


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def start_gunicorn(cache_dir: Path, workers: int, port: int) -> subprocess.Popen:
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or shutil.which("gunicorn")
    if gunicorn is None:
        raise SystemExit("gunicorn is not installed; 'pip install -e .' installs it")
    env = {**os.environ, "TRANSFERVIZ_CACHE": str(cache_dir)}
    proc = subprocess.Popen([gunicorn, "-w", str(workers), "-b", f"127.0.0.1:{port}", "--timeout", "120",
                             "--log-level", "warning", "dashboard.wsgi:server"], cwd=REPO, env=env)
    deadline = time.time() + 180
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200 and len(_workers(proc.pid)) == workers:
                return proc
        except OSError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise SystemExit("gunicorn did not answer within 180 s")


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.times: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.error_examples: list[str] = []
        self.seen_selections: set[bytes] = set()

    def kind_of(self, req: Request) -> str:
        """A class selection is 'new' the first time any client sends it (no worker has drawn it yet)."""
        if req.kind != "class selection" or req.body is None:
            return req.kind
        with self.lock:
            if req.body in self.seen_selections:
                return req.kind
            self.seen_selections.add(req.body)
            return NEW_SELECTION

    def add(self, kind: str, seconds: float, ok: bool, why: str = "") -> None:
        with self.lock:
            if ok:
                self.times[kind].append(seconds * 1000)
            else:
                self.errors[kind] += 1
                if len(self.error_examples) < 5:
                    self.error_examples.append(f"{kind}: {why}")


def client(port: int, visits: list[list[Request]], rec: Recorder, stop: float, seed: int) -> None:
    rng = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/json", "Accept-Encoding": "gzip, deflate, br"}
    while time.time() < stop:
        for req in visits[rng.randrange(len(visits))]:
            if time.time() >= stop:
                return
            kind = rec.kind_of(req)
            t = time.perf_counter()
            try:
                conn.request(req.method, req.path, body=req.body, headers=headers)
                r = conn.getresponse()
                r.read()
                ok, why = r.status in (200, 204), f"HTTP {r.status} {req.path}"
            except (OSError, http.client.HTTPException) as exc:
                ok, why = False, f"{type(exc).__name__} {req.path}"
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            rec.add(kind, time.perf_counter() - t, ok, why)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache", type=Path, default=REPO / "cache" / "digits", help="a built cache (default cache/digits)")
    p.add_argument("--workers", type=int, default=4, help="gunicorn workers (default 4)")
    p.add_argument("--clients", type=int, default=32, help="concurrent clients (default 32)")
    p.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    if not (args.cache / "manifest.json").is_file():
        print(f"no built cache at {args.cache}; build one with 'transferviz build configs/digits.yaml'",
              file=sys.stderr)
        return 2
    t = time.perf_counter()
    visits = plan_visits(args.cache, "/")
    n_req = sum(len(v) for v in visits) / len(visits)
    print(f"{len(visits)} visits planned ({n_req:.0f} requests each) in {time.perf_counter() - t:.1f} s")
    port = _free_port()
    proc = start_gunicorn(args.cache, args.workers, port)
    try:
        workers = _workers(proc.pid)
        rss_before = {w: _rss_mb(w) for w in workers}
        rec = Recorder()
        stop = time.time() + args.duration
        threads = [threading.Thread(target=client, args=(port, visits, rec, stop, k), daemon=True)
                   for k in range(args.clients)]
        t0 = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join(args.duration + 120)
        wall = time.perf_counter() - t0
        rss_after = {w: _rss_mb(w) for w in _workers(proc.pid)}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()

    served = sum(len(v) for v in rec.times.values())
    errors = sum(rec.errors.values())
    print(f"\ngunicorn -w {args.workers}, {args.clients} clients, {wall:.0f} s over {args.cache}: "
          f"{served} requests served ({served / wall:.0f}/s), {errors} errors")
    print(f"{'request type':<24} {'count':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}  goal p95")
    rows = []
    for kind in sorted(set(rec.times) | set(rec.errors)):
        v = rec.times.get(kind, [])
        goal = GOAL_NEW_SELECTION_P95_MS if kind == NEW_SELECTION else GOAL_P95_MS
        p95 = pct(v, 95)
        ok = "yes" if p95 < goal and not rec.errors.get(kind) else "NO"
        rows.append({"type": kind, "count": len(v), "errors": rec.errors.get(kind, 0),
                     "p50_ms": statistics.median(v) if v else float("nan"), "p95_ms": p95, "p99_ms": pct(v, 99)})
        print(f"{kind:<24} {len(v):6d} {rows[-1]['p50_ms']:8.0f} {p95:8.0f} {rows[-1]['p99_ms']:8.0f}  "
              f"<{goal:.0f}: {ok}")
    for example in rec.error_examples:
        print(f"  error: {example}")
    print("worker RSS (MB): before " + ", ".join(f"{v:.0f}" for v in rss_before.values())
          + "; after " + ", ".join(f"{v:.0f}" for v in rss_after.values()))
    if args.json:
        args.json.write_text(json.dumps({"served": served, "errors": errors, "seconds": wall, "types": rows,
                                         "rss_before_mb": list(rss_before.values()),
                                         "rss_after_mb": list(rss_after.values())}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
