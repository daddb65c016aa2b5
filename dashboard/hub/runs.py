"""The runs of a cache folder (issue 14, item 1): which entries are runs, each opened read-only on its
own, and the hub table's row of each.

A cache folder as ``transferviz build`` leaves it holds one link per run (``cache/<run>`` ->
``.builds/<run>-<date>-...``); a folder copied by hand may hold build folders under run names. Every
non-hidden link, and every folder with a ``manifest.json``, is a run. A run that does not open (a
dangling link, a damaged manifest, an artifact that fails its check) is kept with its one-line error:
the hub lists it and serves the others.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from dashboard.lookups import json_number
from transferviz.cache import Cache
from transferviz.errors import TransferVizError

__all__ = ["ESTIMATES", "Run", "RunIndex", "find_run_paths", "is_hub_folder", "is_run_folder", "open_run",
           "run_href", "run_row", "valid_run_name"]

#: The transferability estimates before fine-tuning (``Cache.transfer_estimates``), in the hub's column order.
ESTIMATES: tuple[str, ...] = ("logme", "leep", "nce", "hscore")

#: A run name that may appear in a URL path (the build names runs by the config's ``name``).
_RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def run_href(prefix: str, name: str) -> str:
    """The URL of a run's analysis under the hub at ``prefix`` (``/`` or ``/tv/``)."""
    return f"{prefix.rstrip('/')}/run/{name}/"


def valid_run_name(name: str) -> bool:
    """Whether ``name`` can be a run's URL segment (no slashes, dots only inside, no hidden names)."""
    return bool(_RUN_NAME.fullmatch(name)) and ".." not in name


def is_run_folder(path: Path) -> bool:
    """Whether ``path`` is one run (a run's link, or a build folder): it holds a ``manifest.json``."""
    return (path / "manifest.json").is_file()


def find_run_paths(root: Path) -> list[Path]:
    """The runs of the cache folder ``root``, by name: its non-hidden links and its folders holding a
    manifest (a folder of anything else, e.g. a data folder beside the runs, is not a run)."""
    try:
        entries = sorted(root.iterdir(), key=lambda p: p.name)
    except OSError:
        return []
    return [p for p in entries if not p.name.startswith(".") and (p.is_symlink() or is_run_folder(p))]


def is_hub_folder(root: Path) -> bool:
    """Whether ``root`` is a folder of runs (not itself a run) holding at least one run."""
    return root.is_dir() and not is_run_folder(root) and bool(find_run_paths(root))


@dataclass(frozen=True)
class Run:
    """One run of the hub: its link and either its opened, checked cache or why it did not open."""

    name: str
    path: Path
    cache: Cache | None
    error: str | None
    build: str  # the build folder the link named when opened ("" when it names none)

    @property
    def ok(self) -> bool:
        return self.cache is not None


def open_run(path: Path) -> Run:
    """Opens and checks (``Cache.verify``: headers only, milliseconds) the run at ``path``; a failure is
    the run's one-line error, never an exception."""
    name = path.name
    build = path.resolve().name if path.exists() else ""
    if not valid_run_name(name):
        return Run(name, path, None, f"'{name}' cannot be a URL segment; rename the run's link "
                   "(letters, digits, '.', '_', '-')", build)
    if not path.exists():
        return Run(name, path, None, f"{path} names no build (a dangling link); rebuild the run or remove the link",
                   build)
    try:
        cache = Cache.open(path)
        cache.verify()
        _ = cache.meta, cache.layers  # what every row reads: a damaged one is this run's error, not the hub's
    except TransferVizError as exc:
        return Run(name, path, None, str(exc).splitlines()[0] if str(exc) else type(exc).__name__, build)
    except (OSError, ValueError, KeyError, TypeError) as exc:  # a manifest of the wrong shape, a vanished file
        return Run(name, path, None, f"cannot open {path}: {type(exc).__name__}: {str(exc)[:160]}", build)
    return Run(name, path, cache, None, build)


class RunIndex:
    """The runs of one cache folder, rescanned on demand (a run built while the hub runs appears at the next
    hub page load); a run is reopened only when its link names another build."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._runs: dict[str, Run] = {}

    def scan(self) -> list[Run]:
        """Every run of the folder now, by name."""
        with self._lock:
            fresh: dict[str, Run] = {}
            for path in find_run_paths(self.root):
                old = self._runs.get(path.name)
                build = path.resolve().name if path.exists() else ""
                fresh[path.name] = old if old is not None and old.build == build and old.ok else open_run(path)
            self._runs = fresh
            return list(fresh.values())

    def runs(self) -> list[Run]:
        """The runs of the last scan (scanning once if none ran yet)."""
        with self._lock:
            if self._runs:
                return list(self._runs.values())
        return self.scan()

    def get(self, name: str) -> Run | None:
        """The run named ``name`` (rescanning once when it is not known: built after the last scan)."""
        known = {r.name: r for r in self.runs()}
        if name not in known:
            known = {r.name: r for r in self.scan()}
        return known.get(name)


def _build_seconds(cache: Cache) -> float | None:
    """Seconds the build's stages took (a reused stage counts its copy, not its first computation)."""
    stages = cache.manifest.get("stages", {})
    secs = [json_number(s.get("seconds")) for s in stages.values() if isinstance(s, dict)]
    known = [s for s in secs if s is not None]
    return round(sum(known), 1) if known else None


def _build_date(cache: Cache) -> str:
    created = str(cache.manifest.get("created") or "")
    try:
        return datetime.strptime(created, "%Y-%m-%dT%H:%M:%S%z").strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return created


def run_row(run: Run, href: str) -> dict[str, Any]:
    """The hub table's row of ``run``: name (a markdown link to ``href``), domains, architecture, analysed
    layers, both models' best accuracy on the target validation data, the transferability score, the
    estimates, build date and time; a run that did not open has its name, blanks and its ``error``."""
    row: dict[str, Any] = {"run": run.name, "name": run.name, "error": run.error or ""}
    if run.cache is None:
        return row | {"domains": "", "arch": "", "layers": None, "layer_names": "", "source_acc": None,
                      "target_acc": None, "score": None, "built": "", "build_s": None,
                      **{e: None for e in ESTIMATES}}
    c = run.cache
    dom = c.domains
    summary = c.summary() or {}
    estimates = c.transfer_estimates() or {}
    layers = c.layers
    return row | {
        # markdown: the grid renders the link (a plain <a>: the run is another app, a full page load)
        "name": f"[{run.name}]({href})",
        "domains": f"{dom.get('source', '?')} \u2192 {dom.get('target', '?')}",
        "arch": str(c.config.get("model", {}).get("arch", "?")),
        "layers": len(layers),
        "layer_names": ", ".join(layers),
        "source_acc": json_number(summary.get("best_source_on_target")),
        "target_acc": json_number(summary.get("best_target_on_target")),
        "score": json_number(summary.get("transferability")),
        "built": _build_date(c),
        "build_s": _build_seconds(c),
        **{e: json_number(estimates.get(e)) for e in ESTIMATES},
    }
