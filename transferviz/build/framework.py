"""The stage framework: keys, reuse, timing, progress and the manifest.

A stage's *key* hashes its code version, the config slice it reads, and the
output keys of the stages it depends on. When a previous build has a stage with
the same key, its artifacts are hard-linked into the new build instead of being
recomputed. The data stage always runs (it is cheap) and its *output key* is the
content hash of the data, so editing files on disk invalidates what depends on them.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from transferviz.cache import (
    SCHEMA_VERSION,
    Cache,
    CacheWriter,
    ModelName,
    check_run_path,
    current_build,
    new_build_dir,
    publish,
    run_lock,
)
from transferviz.config import Config, config_hash
from transferviz.preprocess import to_tensor

__all__ = ["MODELS", "Stage", "BuildContext", "BuildOptions", "BuildReport", "run_build", "file_hash", "progress_to"]

MODELS: tuple[ModelName, ModelName] = ("source", "target")


@dataclass(frozen=True)
class BuildOptions:
    cache_root: Path
    device: torch.device
    force: bool = False
    featvis: bool = True
    progress: bool = True


@dataclass
class BuildContext:
    """What a running stage sees: the config, the options, the writer of the build in progress,
    and in-process objects that several stages share (loaded once per build)."""

    config: Config
    options: BuildOptions
    writer: CacheWriter
    notes: dict[str, Any] = field(default_factory=dict)  # the running stage's manifest notes
    _models: dict[ModelName, torch.nn.Module] | None = field(default=None, init=False, repr=False)
    _inputs: torch.Tensor | None = field(default=None, init=False, repr=False)

    @property
    def device(self) -> torch.device:
        return self.options.device

    @property
    def cache(self) -> Cache:
        """A reader over the build in progress (what earlier stages wrote)."""
        meta = {"schema_version": SCHEMA_VERSION, "config": self.config.model_dump(mode="json"),
                "artifacts": {k: a.as_dict() for k, a in self.writer.artifacts.items()}}
        return Cache(self.writer.root, meta)

    def models(self) -> dict[ModelName, torch.nn.Module]:
        """The final source and target models (in that order), read once from the models stage's weights."""
        if self._models is None:
            cache = self.cache
            self._models = {which: cache.model(which) for which in MODELS}
        return self._models

    def inputs(self) -> torch.Tensor:
        """Every instance's image normalised as the models expect, row = instance id (computed once)."""
        if self._inputs is None:
            model = self.config.model
            self._inputs = to_tensor(np.asarray(self.cache.images), model.mean, model.std)
        return self._inputs

    def bar(self, total: int, desc: str, unit: str = "it") -> tqdm:
        """A progress bar on stderr for a long loop (hidden when the build runs without progress)."""
        return tqdm(total=total, desc=f"  {desc}", unit=unit, disable=not self.options.progress,
                    dynamic_ncols=True, leave=False, mininterval=0.5, file=sys.stderr)


def progress_to(bar: tqdm) -> Callable[..., None]:
    """A progress callback that moves ``bar`` to the number of items done, its first argument."""
    def update(done: int, *_: int) -> None:
        bar.update(done - bar.n)
    return update


def _always(cfg: Config, opts: BuildOptions) -> bool:
    return True


@dataclass(frozen=True)
class Stage:
    """One step of the build: ``run`` writes its artifacts through ``ctx.writer``; it is reused from the
    previous build when its key (version, ``params``, the output keys of ``deps``, ``fingerprint``) is unchanged."""

    name: str
    run: Callable[[BuildContext], str | None]  # returns an output key override (data stage) or None
    params: Callable[[Config], dict[str, Any]]  # the config slice the stage reads, hashed into its key
    deps: tuple[str, ...] = ()
    version: int = 1
    fingerprint: Callable[[Config], dict[str, str]] | None = None  # hashes external inputs (checkpoint files)
    always_run: bool = False
    enabled: Callable[[Config, BuildOptions], bool] = _always
    doc: str = ""


@dataclass
class BuildReport:
    path: Path
    build_dir: Path
    stages: list[dict[str, Any]]
    seconds: float

    @property
    def warnings(self) -> list[str]:
        """What the stages found wrong with the result (a model at chance level, ...), one line each."""
        return [f"[{s['name']}] {w}" for s in self.stages for w in s.get("warnings", [])]

    def summary(self) -> str:
        lines = [f"built cache {self.path} -> {self.build_dir.name} in {self.seconds:.1f} s"]
        for s in self.stages:
            status = "reused" if s["reused"] else ("skipped" if s.get("skipped") else "built")
            extra = f"  {s['summary']}" if s.get("summary") else ""
            lines.append(f"  {s['name']:<13} {status:<7} {s['seconds']:7.1f} s{extra}")
        lines += [f"WARNING {w}" for w in self.warnings]
        return "\n".join(lines)


def file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def _package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("transferviz", "torch", "torchvision", "captum", "numpy", "pandas", "scikit-learn", "openTSNE",
                 "pillow", "matplotlib"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def _previous(cache_root: Path, run: str) -> tuple[Path | None, dict[str, Any]]:
    prev = current_build(cache_root, run)
    if prev is None:
        return None, {}
    try:
        manifest = json.loads((prev / "manifest.json").read_text())
    except (OSError, ValueError):
        return None, {}
    if manifest.get("schema_version") != SCHEMA_VERSION:
        return None, {}
    return prev, manifest


def run_build(config: Config, stages: list[Stage], options: BuildOptions,
              log: Callable[[str], None] = print) -> BuildReport:
    """Runs ``stages`` in order into a fresh build folder, then publishes it atomically.

    Before any work it refuses a plain folder at ``cache/<run>`` (never the tool's to replace) and takes
    the run's build lock, held until the build is published or has failed: a second build of the run
    refuses at once with one line naming this one's pid, and cannot prune this one's folder.
    """
    t0 = time.perf_counter()
    root = options.cache_root
    root.mkdir(parents=True, exist_ok=True)
    check_run_path(root, config.name)
    with run_lock(root, config.name):
        return _run_locked(config, stages, options, log, t0)


def _run_locked(config: Config, stages: list[Stage], options: BuildOptions, log: Callable[[str], None],
                t0: float) -> BuildReport:
    root = options.cache_root
    prev_dir, prev_manifest = _previous(root, config.name)
    prev_stages = prev_manifest.get("stages", {}) if not options.force else {}
    build, writing = new_build_dir(root, config.name)
    writer = CacheWriter(build)
    ctx = BuildContext(config, options, writer)
    out_keys: dict[str, str] = {}
    records: dict[str, dict[str, Any]] = {}
    try:
        for stage in stages:
            missing = [d for d in stage.deps if d not in out_keys]
            if missing:
                raise RuntimeError(f"stage {stage.name} depends on {missing}, which did not run")
            enabled = stage.enabled(config, options)
            key_src = {"stage": stage.name, "version": stage.version, "params": stage.params(config),
                       "deps": {d: out_keys[d] for d in stage.deps}, "enabled": enabled}
            if stage.fingerprint is not None and enabled:
                key_src["inputs"] = stage.fingerprint(config)
            key = config_hash(key_src)
            old = prev_stages.get(stage.name)
            ts = time.perf_counter()
            ctx.notes = {}
            reused = False
            if not stage.always_run and old and old.get("key") == key and prev_dir is not None \
                    and all((prev_dir / p).exists() for p in old.get("artifacts", [])):
                artifacts = list(old["artifacts"])
                writer.adopt(prev_dir, [prev_manifest["artifacts"][p] for p in artifacts])
                ctx.notes = dict(old.get("notes", {}))
                out_key = old.get("output_key", key)
                reused = True
                log(f"[{stage.name}] reused (inputs unchanged)")
            else:
                before = set(writer.artifacts)
                if enabled:
                    log(f"[{stage.name}] {stage.doc or 'running'} ...")
                    out_key = stage.run(ctx) or key
                else:
                    out_key = key
                    ctx.notes.setdefault("skipped", True)
                artifacts = sorted(set(writer.artifacts) - before)
            seconds = time.perf_counter() - ts
            out_keys[stage.name] = out_key
            records[stage.name] = {"key": key, "output_key": out_key, "seconds": round(seconds, 3),
                                   "reused": reused, "artifacts": artifacts, "notes": ctx.notes}
            if not reused:
                summary = f": {ctx.notes['summary']}" if "summary" in ctx.notes else ""
                log(f"[{stage.name}] done in {seconds:.1f} s{summary}")
            for warning in ctx.notes.get("warnings", []):  # said again when reused: still true of this cache
                log(f"WARNING [{stage.name}] {warning}")
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "config": config.model_dump(mode="json"),
            "device": str(options.device),
            "packages": _package_versions(),
            "inputs": {name: r["output_key"] for name, r in records.items()},
            "stages": records,
            "artifacts": {k: a.as_dict() for k, a in sorted(writer.artifacts.items())},
        }
        (build / "manifest.json").write_text(json.dumps(manifest, indent=1))
        # written: from here on it is a finished build, which readers may lock once it is published
        writing.release()
        link = publish(root, config.name, build)  # refuses a manifest whose artifacts do not check out
    except BaseException:
        # Leave the published cache untouched: remove this build unless it was published (a failure
        # in pruning after the link moved); a killed build's folder goes with the next build's prune.
        if current_build(root, config.name) != build.resolve():
            shutil.rmtree(build, ignore_errors=True)
        raise
    finally:
        writing.release()
    return BuildReport(link, build, [
        {"name": n, "reused": r["reused"], "skipped": r["notes"].get("skipped", False),
         "seconds": r["seconds"], "summary": r["notes"].get("summary", ""),
         "warnings": list(r["notes"].get("warnings", []))}
        for n, r in records.items()], time.perf_counter() - t0)
