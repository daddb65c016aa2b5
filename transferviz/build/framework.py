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
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from transferviz.build import shards
from transferviz.cache import (
    SCHEMA_VERSION,
    Artifact,
    Cache,
    CacheWriter,
    ModelName,
    check_run_path,
    current_build,
    new_build_dir,
    publish,
    run_lock,
    unfinished_builds,
)
from transferviz.config import Config, config_hash
from transferviz.distributed import Dist, current
from transferviz.errors import TransferVizError
from transferviz.locks import FileLock, try_lock
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
    dist: Dist = field(default_factory=current)  # this process's rank among the build's processes
    stage: str = ""  # the running stage's name and key (they name its shard folder)
    stage_key: str = ""
    log: Callable[[str], None] = print
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

    def rows(self, name: str, n: int, compute: Callable[[range], Any], *, rows_per_chunk: int,
             desc: str | None = None, unit: str = "row") -> shards.Result | None:
        """Row-indexed work split across the build's processes in checkpointed chunks; the merged result on
        rank 0, None on the others (see :func:`transferviz.build.shards.run_rows`). Only a ``sharded`` stage
        runs on every rank; in any other stage this simply runs every chunk here."""
        return shards.run_rows(self, name, n, compute, rows_per_chunk=rows_per_chunk, desc=desc, unit=unit)


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
    # Runs on every rank of a torchrun build (rank 0 alone runs the others): its row-indexed work goes through
    # ``ctx.rows`` and only rank 0 (``ctx.dist.is_main``) writes artifacts after it.
    sharded: bool = False


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


#: In an unfinished build folder: the hash of the config it builds (a later build of the same config resumes it)
RESUME_FILE = ".resume.json"
#: In an unfinished build folder: the record of every stage finished so far (what the manifest will say)
STAGES_FILE = ".stages.json"


class _FollowerWriter(CacheWriter):
    """A non-zero rank's writer: it knows the artifacts rank 0 wrote (to read them) but writes none itself."""

    def _target(self, rel: str) -> Path:
        raise RuntimeError(f"only rank 0 writes artifacts ({rel}); a sharded stage must check ctx.dist.is_main "
                           "before writing")

    def png_dir(self, rel: str, images: Any, meaning: str) -> None:
        self._target(rel)

    def adopt(self, old_root: Path, artifacts: list[dict[str, Any]]) -> None:
        self._target(artifacts[0]["path"] if artifacts else "")


def _keeps_folder(exc: BaseException, dist: Dist) -> bool:
    """Whether a failed build keeps its folder to be resumed: when it was interrupted (Ctrl-C, a signal) or
    lost a rank. A build that failed on its inputs or the disk removes its folder, as before (issue 15)."""
    if isinstance(exc, (KeyboardInterrupt, SystemExit)):
        return True
    return dist.enabled and isinstance(exc, (torch.distributed.DistError, RuntimeError))


def run_build(config: Config, stages: list[Stage], options: BuildOptions,
              log: Callable[[str], None] = print) -> BuildReport:
    """Runs ``stages`` in order into a build folder, then publishes it atomically.

    Before any work it refuses a plain folder at ``cache/<run>`` (never the tool's to replace) and takes
    the run's build lock, held until the build is published or has failed: a second build of the run
    refuses at once with one line naming this one's pid, and cannot prune this one's folder.

    The folder is a fresh one, or the newest unfinished folder of an interrupted build of the same config
    (not with ``force``): its finished stages are kept and its running stage resumes from its last shard.

    In a torchrun build every rank calls this: rank 0 takes the lock, decides every stage and runs the
    non-sharded ones; the others follow its decisions and join the sharded stages (:attr:`Stage.sharded`).
    """
    t0 = time.perf_counter()
    dist = current()
    if not dist.is_main:
        return _follow(config, stages, replace(options, progress=False), log, dist, t0)
    root = options.cache_root
    try:
        root.mkdir(parents=True, exist_ok=True)
        check_run_path(root, config.name)
        lock = run_lock(root, config.name)
    except Exception as exc:
        dist.broadcast_object({"op": "abort", "error": str(exc)})  # the other ranks wait for the folder
        raise
    with lock:
        return _run_locked(config, stages, options, log, t0, dist)


def _open_build(config: Config, options: BuildOptions, log: Callable[[str], None]
                ) -> tuple[Path, FileLock, dict[str, Any]]:
    """The build folder, its held lock and the records of its finished stages: the newest unfinished folder
    of an interrupted build of the same config when there is one (and not ``force``), else a fresh one."""
    root, run = options.cache_root, config.name
    want = config_hash(config.model_dump(mode="json"))
    if not options.force:
        for folder in unfinished_builds(root, run):
            try:
                same = json.loads((folder / RESUME_FILE).read_text()).get("config") == want
            except (OSError, ValueError, AttributeError):
                same = False
            lock = try_lock(folder / ".lock") if same else None
            if lock is None:
                continue
            try:
                done = json.loads((folder / STAGES_FILE).read_text())
            except (OSError, ValueError):
                done = {}
            log(f"resuming the interrupted build {folder.name} ({len(done)} stages finished)")
            return folder, lock, done
    build, writing = new_build_dir(root, run)
    (build / RESUME_FILE).write_text(json.dumps({"config": want}))
    return build, writing, {}


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def _run_locked(config: Config, stages: list[Stage], options: BuildOptions, log: Callable[[str], None],
                t0: float, dist: Dist) -> BuildReport:
    root = options.cache_root
    followers_waiting = True  # the other ranks wait at a broadcast (not inside a sharded stage)
    publishing = False
    build: Path | None = None
    writing: FileLock | None = None
    try:
        prev_dir, prev_manifest = _previous(root, config.name)
        prev_stages = prev_manifest.get("stages", {}) if not options.force else {}
        build, writing, done = _open_build(config, options, log)
        dist.broadcast_object({"op": "start", "build": str(build)})
        writer = CacheWriter(build)
        ctx = BuildContext(config, options, writer, log=log)
        out_keys: dict[str, str] = {}
        records: dict[str, dict[str, Any]] = {}
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
            kept = done.get(stage.name)
            ts = time.perf_counter()
            ctx.notes, ctx.stage, ctx.stage_key = {}, stage.name, key
            reused = False
            if not stage.always_run and kept and kept.get("key") == key \
                    and all((build / p).exists() for p in kept["artifacts"]):
                # finished by the interrupted build this one resumes: already in this folder
                for rel, a in kept["records"].items():
                    writer.artifacts[rel] = Artifact(a["path"], a["kind"], a["meaning"], a.get("dtype"), a.get("shape"))
                records[stage.name] = {k: v for k, v in kept.items() if k != "records"}
                out_keys[stage.name] = kept["output_key"]
                ctx.notes = dict(kept.get("notes", {}))
                log(f"[{stage.name}] kept (finished before the interruption)")
                for warning in ctx.notes.get("warnings", []):
                    log(f"WARNING [{stage.name}] {warning}")
                continue
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
                    everyone = stage.sharded and dist.enabled
                    ctx.dist = dist if everyone else Dist()  # the processes this stage runs on
                    if everyone:
                        dist.broadcast_object({"op": "run", "stage": stage.name, "key": key,
                                               "artifacts": {k: a.as_dict() for k, a in writer.artifacts.items()}})
                        followers_waiting = False
                    out_key = stage.run(ctx) or key
                    followers_waiting = True  # the others left the stage after its last shard
                else:
                    out_key = key
                    ctx.notes.setdefault("skipped", True)
                artifacts = sorted(set(writer.artifacts) - before)
            seconds = time.perf_counter() - ts
            out_keys[stage.name] = out_key
            records[stage.name] = {"key": key, "output_key": out_key, "seconds": round(seconds, 3),
                                   "reused": reused, "artifacts": artifacts, "notes": ctx.notes}
            done[stage.name] = {**records[stage.name],
                                "records": {p: writer.artifacts[p].as_dict() for p in artifacts}}
            _write_json(build / STAGES_FILE, done)  # a resumed build keeps this stage
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
            "processes": dist.world,
            "packages": _package_versions(),
            "inputs": {name: r["output_key"] for name, r in records.items()},
            "stages": records,
            "artifacts": {k: a.as_dict() for k, a in sorted(writer.artifacts.items())},
        }
        shards.discard(ctx)  # the shards are merged into the artifacts: not part of the cache
        for extra in (RESUME_FILE, STAGES_FILE):
            (build / extra).unlink(missing_ok=True)
        publishing = True  # from here a failure means the build itself is wrong: its folder goes
        (build / "manifest.json").write_text(json.dumps(manifest, indent=1))
        # written: from here on it is a finished build, which readers may lock once it is published
        writing.release()
        link = publish(root, config.name, build)  # refuses a manifest whose artifacts do not check out
        dist.broadcast_object({"op": "done"})
    except BaseException as exc:
        if followers_waiting and not isinstance(exc, (KeyboardInterrupt, SystemExit)):
            try:  # tell the other ranks, waiting for the next stage, to stop (an interrupt stops them too)
                dist.broadcast_object({"op": "abort", "error": str(exc)})
            except Exception:
                pass
        # Leave the published cache untouched: remove this build unless it was published (a failure in
        # pruning after the link moved) or it can be resumed (interrupted, a rank lost); a killed build's
        # folder stays for the next build to resume, or goes with the next successful build's prune.
        if build is not None and current_build(root, config.name) != build.resolve():
            if not publishing and _keeps_folder(exc, dist):
                log(f"the unfinished build is kept in {build}: the same `transferviz build` resumes it, "
                    "--force starts over")
            else:
                shutil.rmtree(build, ignore_errors=True)
        raise
    finally:
        if writing is not None:
            writing.release()
    return BuildReport(link, build, [
        {"name": n, "reused": r["reused"], "skipped": r["notes"].get("skipped", False),
         "seconds": r["seconds"], "summary": r["notes"].get("summary", ""),
         "warnings": list(r["notes"].get("warnings", []))}
        for n, r in records.items()], time.perf_counter() - t0)


def _follow(config: Config, stages: list[Stage], options: BuildOptions, log: Callable[[str], None], dist: Dist,
            t0: float) -> BuildReport:
    """A non-zero rank's build: waits for rank 0's decisions and runs its share of every sharded stage."""
    by_name = {s.name: s for s in stages}
    msg = dist.broadcast_object(None)
    if msg["op"] != "start":
        raise TransferVizError(f"rank 0 stopped the build: {msg.get('error', msg['op'])}")
    build = Path(msg["build"])
    writer = _FollowerWriter(build)
    ctx = BuildContext(config, options, writer, dist=dist, log=lambda m: None)
    while True:
        msg = dist.broadcast_object(None)
        if msg["op"] == "done":
            return BuildReport(options.cache_root / config.name, build, [], time.perf_counter() - t0)
        if msg["op"] != "run":
            raise TransferVizError(f"rank 0 stopped the build: {msg.get('error', msg['op'])}")
        writer.artifacts = {k: Artifact(a["path"], a["kind"], a["meaning"], a.get("dtype"), a.get("shape"))
                            for k, a in msg["artifacts"].items()}
        ctx.notes, ctx.stage, ctx.stage_key = {}, msg["stage"], msg["key"]
        by_name[msg["stage"]].run(ctx)
