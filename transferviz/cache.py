"""The cache: the contract between the build and the dashboard.

Layout (``docs/cache.md`` documents every artifact)::

    cache/<run>            -> symlink to cache/.builds/<run>-<build id>/
    cache/.builds/<run>-<build id>/manifest.json, data/, models/, analysis/, thumbs/, .lock
    cache/.builds/<run>.lock   the run's build lock (pid of the running build)

A build writes into a fresh folder under ``.builds`` and publishes it by
atomically replacing the ``<run>`` symlink (``os.replace``), so readers never see
half a cache and a failed or interrupted build leaves the previous one in place.
Arrays are ``.npy`` (opened memory-mapped), tables Parquet, weights safetensors,
images PNG, metadata JSON: no pickle anywhere.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from functools import wraps
from pathlib import Path
from typing import Any, Iterable, Literal, TypeVar

import numpy as np
import pandas as pd

from transferviz.errors import TransferVizError
from transferviz.locks import FileLock, holder_line, try_lock

SCHEMA_VERSION = 1
BUILDS_DIR = ".builds"
ModelName = Literal["source", "target"]

__all__ = ["Cache", "CacheWriter", "SCHEMA_VERSION", "publish", "new_build_dir", "ModelName", "check_run_path",
           "prune_builds", "reader_lock", "run_lock", "verify_build", "unfinished_builds"]


@dataclass
class Artifact:
    path: str
    kind: str  # array | table | json | safetensors | png-dir
    meaning: str
    dtype: str | None = None
    shape: list[int] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class CacheWriter:
    """Writes artifacts into a build folder and records them for the manifest."""

    root: Path
    artifacts: dict[str, Artifact] = field(default_factory=dict)
    #: content digest -> the weights file already written with it (see :meth:`weights`)
    _weights_by_digest: dict[str, str] = field(default_factory=dict, repr=False)

    def _target(self, rel: str) -> Path:
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        # a resumed build rewrites files that may be hard links into a published build: never write through one
        if p.is_file() or p.is_symlink():
            p.unlink()
        return p

    def array(self, rel: str, arr: np.ndarray, meaning: str) -> None:
        arr = np.ascontiguousarray(arr)
        np.save(self._target(rel), arr, allow_pickle=False)
        self.artifacts[rel] = Artifact(rel, "array", meaning, str(arr.dtype), list(arr.shape))

    def array_rows(self, rel: str, shape: tuple[int, ...], dtype: Any, meaning: str) -> np.memmap:
        """A zero-filled ``.npy`` at ``rel`` mapped for writing, recorded like :meth:`array`: for an array
        filled row by row that need not be held in memory whole (flush it before the build publishes)."""
        mm = np.lib.format.open_memmap(self._target(rel), mode="w+", dtype=np.dtype(dtype), shape=tuple(shape))
        self.artifacts[rel] = Artifact(rel, "array", meaning, str(mm.dtype), list(mm.shape))
        return mm

    def table(self, rel: str, df: pd.DataFrame, meaning: str) -> None:
        df.to_parquet(self._target(rel), index=False)
        self.artifacts[rel] = Artifact(rel, "table", meaning, None, [len(df), len(df.columns)])

    def json(self, rel: str, obj: Any, meaning: str) -> None:
        self._target(rel).write_text(json.dumps(obj, indent=1, default=_json_default))
        self.artifacts[rel] = Artifact(rel, "json", meaning)

    def weights(self, rel: str, state: dict, meaning: str) -> None:
        from safetensors.torch import save_file

        tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
        target = self._target(rel)
        # The final models repeat the last epoch's checkpoint and target epoch 0 is the source model: a
        # hard link instead of another copy (for VGG-16 that is 550 MB a file). Same bytes, same file.
        digest = _weights_digest(tensors)
        same = self._weights_by_digest.get(digest)
        if same is not None and (self.root / same).is_file():
            _link_or_copy(self.root / same, target)
        else:
            save_file(tensors, str(target))
            # safetensors writes 0600 whatever the umask: a dashboard running as another user could not read it
            os.chmod(target, 0o666 & ~_umask())
            self._weights_by_digest[digest] = rel
        self.artifacts[rel] = Artifact(rel, "safetensors", meaning)

    def png_dir(self, rel: str, images: Iterable[tuple[str, bytes]], meaning: str) -> None:
        d = self.root / rel
        d.mkdir(parents=True, exist_ok=True)
        n = 0
        for name, data in images:
            target = d / f"{name}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            n += 1
        self.artifacts[rel] = Artifact(rel, "png-dir", meaning, None, [n])

    def adopt(self, old_root: Path, artifacts: list[dict[str, Any]]) -> None:
        """Reuses artifacts of a previous build: hard links where possible (no copy, no extra disk)."""
        for a in artifacts:
            src, dst = old_root / a["path"], self.root / a["path"]
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dst, copy_function=_link_or_copy, dirs_exist_ok=True)
            else:
                _link_or_copy(src, dst)
            self.artifacts[a["path"]] = Artifact(a["path"], a["kind"], a["meaning"], a.get("dtype"), a.get("shape"))


def _weights_digest(tensors: dict[str, Any]) -> str:
    """A digest of a state dict's names, dtypes, shapes and bytes: equal digests, equal safetensors files."""
    import torch  # here, not at the top: the dashboard reads caches without importing torch

    h = hashlib.blake2b(digest_size=32)
    for name in sorted(tensors):
        t = tensors[name]
        h.update(f"{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().data)
    return h.hexdigest()


def _umask() -> int:
    """The process's umask, read without changing it (``os.umask`` can only read it by setting it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _link_or_copy(src: str | Path, dst: str | Path) -> None:
    if os.path.lexists(dst):  # a resumed build's folder may hold it already: replace, never copy through a link
        os.unlink(dst)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


# --- publishing -------------------------------------------------------------------
#
# Builds and readers of one cache never destroy each other (issue 15), by two kinds of ``flock``
# (transferviz/locks.py), which the kernel drops when their process dies: the run lock
# ``.builds/<run>.lock``, held for a build's whole life, so one build of a run runs at a time; and
# each build folder's ``.lock``, held exclusively by the build writing the folder and shared by every
# reader serving it (the dashboard), so that pruning -- which runs under the run lock, in
# :func:`publish` -- deletes only folders nobody uses.

#: Every build folder's lock file (not an artifact: never adopted into the next build).
FOLDER_LOCK = ".lock"

#: A build folder's name: ``<run>-<date>-<time>-<pid>-<tag>`` (see :func:`new_build_dir`).
_BUILD_NAME = r"-\d{8}-\d{6}-\d+-[0-9a-f]{6}"


def run_lock(cache_root: Path, run: str) -> FileLock:
    """Takes the run's build lock (hold it for the whole build): a second build of the run refuses at
    once with one line naming the running build's pid; builds of other runs are not affected."""
    path = cache_root / BUILDS_DIR / f"{run}.lock"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = try_lock(path)
        if lock is not None:
            lock.record_holder()
    except OSError as exc:
        raise TransferVizError(f"cannot take the build lock {path} ({exc.strerror or exc}); build into a "
                               "folder you can write to, on a file system with file locks (--cache-dir)") from None
    if lock is None:
        raise TransferVizError(f"another build of run '{run}' is running ({holder_line(path)}); "
                               "wait for it to finish or stop it")
    return lock


def check_run_path(cache_root: Path, run: str) -> None:
    """Refuses a file or folder at ``cache_root/run`` that is not the run's link: a build would have to
    replace it, and transferviz never deletes or moves away data it did not create."""
    link = cache_root / run
    if link.is_symlink() or not link.exists():
        return
    what = "folder" if link.is_dir() else "file"
    raise TransferVizError(f"{link} is a {what} transferviz did not create; move it away "
                           f"(e.g. to {link}.mine) and build again")


def new_build_dir(cache_root: Path, run: str) -> tuple[Path, FileLock]:
    """A fresh build folder and its lock, which the build holds while it writes (pruning skips it)."""
    # time for humans, pid and a random tag so two builds in one second never collide
    d = cache_root / BUILDS_DIR / f"{run}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    d.mkdir(parents=True, exist_ok=False)
    lock = try_lock(d / FOLDER_LOCK)
    if lock is None:  # cannot happen to a folder made just now
        raise RuntimeError(f"{d / FOLDER_LOCK} is locked by another process")
    return d, lock


def current_build(cache_root: Path, run: str) -> Path | None:
    """The published build folder of ``run``, if any (following the symlink)."""
    link = cache_root / run
    if link.is_symlink() or link.is_dir():
        real = link.resolve()
        if (real / "manifest.json").is_file():
            return real
    return None


def verify_build(build: Path) -> None:
    """Checks that every artifact the build's manifest lists exists with its recorded kind, dtype and
    shape (headers, footers and file counts only: milliseconds); raises one line naming the first bad one."""
    reader = Cache.open(build)
    for rel in reader.manifest["artifacts"]:
        try:
            reader.check(rel)
        except TransferVizError as exc:
            raise TransferVizError(f"build not published, the published cache is unchanged: {exc}") from None


def publish(cache_root: Path, run: str, build: Path, keep: int = 2) -> Path:
    """Atomically points ``cache_root/run`` at ``build`` once every artifact of its manifest checks out
    (:func:`verify_build`), then prunes (:func:`prune_builds`). Call it holding the run lock."""
    check_run_path(cache_root, run)
    verify_build(build)
    link = cache_root / run
    tmp_link = cache_root / f".{run}.link-{os.getpid()}"
    if tmp_link.is_symlink():
        tmp_link.unlink()
    tmp_link.symlink_to(os.path.relpath(build, cache_root))
    os.replace(tmp_link, link)  # the atomic step
    prune_builds(cache_root, run, keep)
    return link


def reader_lock(build: Path) -> FileLock | None:
    """A shared lock on a published build folder: hold it while serving the build, and pruning skips
    the folder. None when the folder has no lock file and none can be made (a read-only cache built
    before folders had locks). Raises :class:`TransferVizError` when the folder is being deleted."""
    path = build / FOLDER_LOCK
    try:
        try:
            lock = try_lock(path, shared=True, create=False)  # read-only: works on a read-only cache
        except FileNotFoundError:
            lock = try_lock(path, shared=True, create=True)
    except OSError:
        return None
    if lock is None:
        raise TransferVizError(f"build {build.name} is being deleted")
    return lock


def unfinished_builds(cache_root: Path, run: str) -> list[Path]:
    """The run's build folders without a manifest (interrupted builds, or one being written), newest first."""
    builds_root = cache_root / BUILDS_DIR
    if not builds_root.is_dir():
        return []
    name = re.compile(re.escape(run) + _BUILD_NAME)
    found = [d for d in builds_root.iterdir() if name.fullmatch(d.name) and d.is_dir() and not d.is_symlink()
             and not (d / "manifest.json").exists()]
    return sorted(found, key=_mtime, reverse=True)


def prune_builds(cache_root: Path, run: str, keep: int = 2) -> list[Path]:
    """Deletes the run's old and unfinished build folders that nobody uses; returns those deleted.

    Kept: the live build, the newest ``keep`` finished ones, and every folder whose lock is held -- by
    the build writing it or a reader serving it. An unfinished folder whose lock is free is a dead build
    (the kernel dropped its killed builder's lock) and goes at once. Call it holding the run lock, as
    :func:`publish` does: then no build of the run is between making its folder and locking it.
    """
    builds_root = cache_root / BUILDS_DIR
    if not builds_root.is_dir():
        return []
    live = current_build(cache_root, run)
    name = re.compile(re.escape(run) + _BUILD_NAME)  # not another run whose name starts with this one's
    mine = sorted((d for d in builds_root.iterdir() if name.fullmatch(d.name) and d.is_dir() and not d.is_symlink()),
                  key=_mtime, reverse=True)
    finished = [d for d in mine if (d / "manifest.json").is_file()]
    keep_set = set(finished[:keep]) | ({live} if live else set())
    return [d for d in mine if d not in keep_set and _delete_unused(d)]


def _mtime(d: Path) -> float:
    try:
        return d.stat().st_mtime
    except OSError:
        return 0.0


def _delete_unused(d: Path) -> bool:
    """Deletes the build folder ``d`` unless its lock is held; whether it is gone."""
    try:
        lock = try_lock(d / FOLDER_LOCK, create=False)
        if lock is None:
            return False  # a build writing it or a reader serving it
    except FileNotFoundError:
        lock = None  # made before folders had locks, or its build died before locking it
    except OSError:
        return False
    try:
        # the manifest first: a folder that could only be deleted in part never looks finished
        (d / "manifest.json").unlink(missing_ok=True)
        shutil.rmtree(d, ignore_errors=True)
    except OSError:
        pass
    finally:
        if lock is not None:
            lock.release()
    return not d.exists()


# --- reading -----------------------------------------------------------------------

T = TypeVar("T")
_F = TypeVar("_F", bound=Callable[..., Any])


def _memoized(method: _F) -> _F:
    """Memoises a ``Cache`` method per cache object, keyed on its name and positional arguments.

    The one memo style of the project: a built cache never changes (a rebuild publishes a new
    folder, opened as a new ``Cache``), so everything derived from it can be kept for the
    object's life, and two caches in one process never share an entry.
    """
    @wraps(method)
    def wrapper(self: "Cache", *args: Any) -> Any:
        return self.memo((method.__name__, *args), lambda: method(self, *args))

    return wrapper  # type: ignore[return-value]


# --- artifact checks (issue 15): a damaged file is one line naming it and the fix, never a raw
# ValueError / ArrowInvalid / SafetensorError from deep inside a view. Each check reads headers only.

REBUILD = "rebuild it with 'transferviz build CONFIG --force'"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"IEND\xaeB`\x82"  # the last chunk of every complete PNG: a truncated one lacks it


def _one_line(exc: BaseException, limit: int = 160) -> str:
    """An exception's message on one short line (pyarrow's and numpy's run over several)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _npy_problem(p: Path, record: dict[str, Any]) -> str | None:
    """What is wrong with the ``.npy`` file at ``p`` against its manifest record (None: nothing),
    from its header and size alone; checked before memory-mapping, which would fault on a short file."""
    from numpy.lib import format as npy

    readers = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}
    try:
        with open(p, "rb") as f:
            version = npy.read_magic(f)
            if version not in readers:
                return f"a .npy file of unsupported version {version}"
            shape, _fortran, dtype = readers[version](f)
            offset = f.tell()
    except (ValueError, OSError, EOFError) as exc:
        return f"not a readable .npy file ({_one_line(exc)})"
    if dtype.hasobject:
        return "an array of Python objects (a build never writes one)"
    size, expected = p.stat().st_size, offset + int(np.prod(shape)) * dtype.itemsize
    if size != expected:
        return f"{'truncated' if size < expected else 'longer than its header says'} ({size} of {expected} bytes)"
    if record.get("dtype") is not None and str(dtype) != record["dtype"]:
        return f"{dtype}, the manifest says {record['dtype']}"
    if record.get("shape") is not None and list(shape) != list(record["shape"]):
        return f"of shape {list(shape)}, the manifest says {record['shape']}"
    return None


def _table_shape_problem(rows: int, cols: int, record: dict[str, Any]) -> str | None:
    shape = record.get("shape")
    if shape is not None and [rows, cols] != list(shape)[:2]:
        return f"a table of {rows} rows x {cols} columns, the manifest says {shape[0]} x {shape[1]}"
    return None


def _parquet_problem(p: Path, record: dict[str, Any]) -> str | None:
    """The Parquet file's footer (schema and row count) against the record, without reading the data."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        md = pq.read_metadata(p)
    except (pa.ArrowException, OSError, ValueError) as exc:
        return f"not a readable Parquet table ({_one_line(exc)})"
    return _table_shape_problem(md.num_rows, md.num_columns, record)


def _json_problem(p: Path, record: dict[str, Any]) -> str | None:
    try:
        json.loads(p.read_text(encoding="utf-8"))
    except (ValueError, OSError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return f"not readable JSON ({_one_line(exc)})"
    return None


def _safetensors_problem(p: Path, record: dict[str, Any]) -> str | None:
    """The safetensors header, which also says whether the file covers every tensor (a truncated one does not)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(p), framework="np") as f:
            f.keys()
    except (SafetensorError, OSError, ValueError) as exc:
        return f"not a readable safetensors file ({_one_line(exc)})"
    return None


def _png_dir_problem(p: Path, record: dict[str, Any]) -> str | None:
    if not p.is_dir():
        return "not a folder"
    shape = record.get("shape")
    n = sum(1 for _ in p.rglob("*.png"))
    if shape and n != shape[0]:
        return f"a folder of {n} PNG images, the manifest says {shape[0]}"
    return None


def _png_problem(data: bytes) -> str | None:
    if not data.startswith(_PNG_SIGNATURE):
        return "not a PNG image"
    if _PNG_END not in data[-12:]:
        return "a truncated PNG image"
    return None


_CHECKS: dict[str, Callable[[Path, dict[str, Any]], str | None]] = {
    "array": _npy_problem, "table": _parquet_problem, "json": _json_problem,
    "safetensors": _safetensors_problem, "png-dir": _png_dir_problem}

#: What every page load of the dashboard reads (besides the manifest): checked when it starts.
PAGE_ESSENTIALS = ("data/instances.parquet", "data/meta.json", "models/layers.json")


class Cache:
    """Read-only access to a built cache. Arrays come back memory-mapped.

    >>> c = Cache.open("cache/digits")          # doctest: +SKIP
    >>> c.instances.head(); c.layers; c.model("target")
    """

    def __init__(self, root: Path, manifest: dict[str, Any]) -> None:
        self.root = root
        self.manifest = manifest
        # everything derived from this (immutable) build: memory maps, parsed tables, and what
        # the views compute from them (see :meth:`memo`); np.load alone re-reads the header and
        # re-maps the file (~0.2-0.7 ms), and a dashboard figure touches dozens of arrays
        self._memo: dict[Hashable, Any] = {}

    @classmethod
    def open(cls, path: str | Path) -> "Cache":
        p = Path(path)
        root = p.resolve()
        mf = root / "manifest.json"
        if not mf.is_file():
            raise TransferVizError(f"no cache at {p} (no manifest.json); build one with "
                                   "'transferviz build configs/digits.yaml'")
        rebuild = REBUILD
        try:
            manifest = json.loads(mf.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:  # truncated or overwritten by hand
            raise TransferVizError(f"cache {p}: manifest.json is damaged ({exc}); {rebuild}") from None
        if not isinstance(manifest, dict):
            raise TransferVizError(f"cache {p}: manifest.json holds no manifest (a {type(manifest).__name__}); "
                                   f"{rebuild}")
        version = manifest.get("schema_version")
        if version != SCHEMA_VERSION:
            raise TransferVizError(f"cache {p} has schema version {version}, this transferviz reads "
                                   f"{SCHEMA_VERSION}; {rebuild}")
        # what every reader needs before any artifact is read (issue 15: a manifest without them
        # failed later with a KeyError deep in a view)
        missing = [k for k in ("config", "artifacts", "stages") if not isinstance(manifest.get(k), dict)]
        if missing:
            raise TransferVizError(f"cache {p}: manifest.json lacks {', '.join(missing)}; {rebuild}")
        return cls(root, manifest)

    # -- generic access
    def memo(self, key: Hashable, compute: Callable[[], T]) -> T:
        """``compute()``, once per cache object and ``key``: how readers (the dashboard's views)
        keep what they derive from this build, e.g. ``cache.memo(("rows", c), lambda: ...)``.
        Treat what comes back as read-only: every caller gets the same object."""
        try:
            return self._memo[key]  # type: ignore[no-any-return]
        except KeyError:
            value = self._memo[key] = compute()
            return value

    def has(self, rel: str) -> bool:
        return rel in self.manifest.get("artifacts", {}) or (self.root / rel).exists()

    def _exists(self, rel: str) -> bool:
        """Whether the artifact is part of this cache: listed in the manifest (then a missing file is an
        error when read, never taken for an optional artifact the build skipped) or on disk unlisted."""
        return self.has(rel)

    def _damaged(self, rel: str, problem: str) -> TransferVizError:
        """The one line for a damaged artifact: the cache, the file, what is wrong with it, the fix."""
        return TransferVizError(f"cache {self.root}: {rel} is {problem}; {REBUILD}")

    def _record(self, rel: str) -> dict[str, Any]:
        """The manifest's record of the artifact (kind, dtype, shape); empty for an unlisted file."""
        record = self.manifest.get("artifacts", {}).get(rel)
        return record if isinstance(record, dict) else {}

    def _file(self, rel: str) -> Path:
        """The artifact's path, which must be a file on disk."""
        p = self.root / rel
        if not p.is_file():
            raise self._damaged(rel, "missing")
        return p

    def check(self, rel: str) -> None:
        """Checks the artifact against its manifest record from its header alone (once per cache object);
        raises the one-line :class:`TransferVizError` naming the file when it is missing or damaged."""
        self.memo(("checked", rel), lambda: self._check_now(rel))

    def _check_now(self, rel: str) -> bool:
        record = self._record(rel)
        kind = record.get("kind") or {".npy": "array", ".parquet": "table", ".json": "json",
                                      ".safetensors": "safetensors"}.get(Path(rel).suffix)
        check = _CHECKS.get(str(kind))
        p = self.root / rel
        if not p.exists():
            raise self._damaged(rel, "missing")
        if not os.access(p, os.R_OK | (os.X_OK if p.is_dir() else 0)):  # not damaged: the fix is not a rebuild
            raise TransferVizError(f"cache {self.root}: {rel} is not readable by this user; let every user "
                                   f"that serves the cache read it, e.g. 'chmod -R a+rX {self.root}'")
        problem = check(p, record) if check else None
        if problem:
            raise self._damaged(rel, problem)
        return True

    def verify(self) -> None:
        """Checks every artifact the manifest lists (headers only: ~ms for a whole cache) and what every
        dashboard page load reads; raises one line naming the first damaged file and how many others are."""
        problems = []
        for rel in [*PAGE_ESSENTIALS, *(r for r in self.manifest["artifacts"] if r not in PAGE_ESSENTIALS)]:
            try:
                self.check(rel)
            except TransferVizError as exc:
                problems.append(exc)
        if problems:
            more = f" ({len(problems) - 1} other artifacts are damaged or missing too)" if len(problems) > 1 else ""
            raise TransferVizError(f"{problems[0]}{more}")
        # parsed, not only well-formed: what the page reads from them must be there
        _ = self.instances, self.classes, self.domains, self.layers, self.layer_info

    def array(self, rel: str, mmap: bool = True) -> np.ndarray:
        """The array at ``rel``: memory-mapped read-only (kept per cache object), or loaded
        into memory with ``mmap=False``."""
        if mmap:
            arr, path, size = self.memo(("array", rel), lambda: self._map_array(rel))
            self._check_mapped(rel, path, size)
            return arr
        return self._load_array(rel, mmap=False)

    def _map_array(self, rel: str) -> tuple[np.ndarray, str, int]:
        """The memory-mapped array, its path and the file size it needs (header and data)."""
        arr = self._load_array(rel, mmap=True)
        return arr, str(self.root / rel), getattr(arr, "offset", 0) + arr.nbytes

    def _check_mapped(self, rel: str, path: str, size: int) -> None:
        """Raises when the mapped file was cut short since it was mapped: reading past its new end would
        kill the process with SIGBUS (no Python exception). One stat (a few us); a file replaced or removed
        is harmless (the mapping keeps the old data), so only a shorter file at the path counts."""
        try:
            now = os.stat(path).st_size
        except OSError:
            return
        if now < size:
            raise self._damaged(rel, f"truncated since it was opened ({now} of {size} bytes)")

    def _load_array(self, rel: str, mmap: bool) -> np.ndarray:
        p = self._file(rel)
        self.check(rel)  # header against the manifest before mapping: a short file would fault when read
        try:
            return np.load(p, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:  # changed since the check
            raise self._damaged(rel, f"unreadable ({_one_line(exc)})") from None

    def _optional_array(self, rel: str) -> np.ndarray | None:
        return self.array(rel) if self._exists(rel) else None

    def table(self, rel: str) -> pd.DataFrame:
        import pyarrow as pa

        p = self._file(rel)
        try:
            df = pd.read_parquet(p)
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise self._damaged(rel, f"not a readable Parquet table ({_one_line(exc)})") from None
        problem = _table_shape_problem(len(df), len(df.columns), self._record(rel))
        if problem:
            raise self._damaged(rel, problem)
        return df

    def _optional_table(self, rel: str) -> pd.DataFrame | None:
        return self.table(rel) if self._exists(rel) else None

    def json(self, rel: str) -> Any:
        p = self._file(rel)
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except (ValueError, OSError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
            raise self._damaged(rel, f"not readable JSON ({_one_line(exc)})") from None

    def png(self, rel: str) -> bytes:
        """The PNG image at ``rel`` (a thumbnail, a feature visualization), checked to be whole."""
        data = self._file(rel).read_bytes()
        problem = _png_problem(data)
        if problem:
            raise self._damaged(rel, problem)
        return data

    # -- run-level metadata
    @property
    def name(self) -> str:
        return self.manifest["config"]["name"]

    @property
    def config(self) -> dict[str, Any]:
        return self.manifest["config"]

    @property
    @_memoized
    def meta(self) -> dict[str, Any]:
        return self.json("data/meta.json")

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])

    @property
    def layers(self) -> list[str]:
        """Analysed layers in forward order (the paper's Layer 1..L)."""
        return list(self.layer_info["layers"])

    @property
    @_memoized
    def layer_info(self) -> dict[str, Any]:
        """Analysed layers, per-layer detail (type, shape, neurons, weight change, ``cut``) and the embedding layer.

        ``models/layers.json`` as written, each detail row with ``cut`` added from ``models/graph.json``
        (whether every path from input to output crosses the layer; True for caches built before it:
        they were all chains)."""
        info = self.json("models/layers.json")
        cuts = self.layer_cuts
        for d in info.get("detail", []):
            d.setdefault("cut", cuts.get(d.get("name"), True))
        return info

    @property
    @_memoized
    def graph_info(self) -> dict[str, Any] | None:
        """``models/graph.json``: how the layers were found (``method``) and chosen (``selection``), each layer's
        ``kind`` and ``cut``, and the ``links``; None for a cache built before it."""
        rel = "models/graph.json"
        return self.json(rel) if self._exists(rel) else None

    @property
    @_memoized
    def layer_cuts(self) -> dict[str, bool]:
        """Analysed layer -> whether it cuts the graph (completeness holds); all True for older caches."""
        g = self.graph_info
        rows = g.get("layers", []) if g else []
        known = {str(r["name"]): bool(r["cut"]) for r in rows}
        return {layer: known.get(layer, True) for layer in self.json("models/layers.json")["layers"]}

    def layer_selection(self) -> dict[str, str] | None:
        """How the analysed layers were chosen: ``requested`` (auto, all, blocks, list), ``used`` and the
        one-line ``reason``; None for a cache built before the selection was recorded."""
        g = self.graph_info
        return dict(g["selection"]) if g and "selection" in g else None

    @_memoized
    def layer_links(self) -> pd.DataFrame:
        """One row per pair of consecutive analysed layers: ``from_layer``, ``to_layer``, ``linked`` (one weight
        matrix joins them: the paper's weights exist), ``reason`` (one line when not linked, e.g. "joined
        through a residual addition") and ``weights`` (the Conv2d/Linear module whose weights join them:
        ``to_layer`` itself or the one inside block ``to_layer``; None when not linked). Caches built before
        links were recorded are chains: every pair linked, reason "". Treat the frame as read-only."""
        layers = self.layers
        g = self.graph_info
        stored = {(str(r["from_layer"]), str(r["to_layer"])): r for r in (g.get("links", []) if g else [])}
        rows = []
        for a, b in zip(layers[:-1], layers[1:]):
            r = stored.get((a, b))
            if g is None or r is None:
                rows.append({"from_layer": a, "to_layer": b, "linked": True, "reason": "", "weights": b})
            else:
                rows.append({"from_layer": a, "to_layer": b, "linked": bool(r["linked"]),
                             "reason": str(r.get("reason") or ""), "weights": r.get("weights")})
        df = pd.DataFrame(rows, columns=["from_layer", "to_layer", "linked", "reason", "weights"])
        return df.astype({"linked": bool})

    def is_linked(self, layer_i: str, layer_j: str) -> bool:
        """Whether one weight matrix joins the consecutive analysed layers (False for any other pair)."""
        return self._weights_module(layer_i, layer_j) is not None

    def _weights_module(self, layer_i: str, layer_j: str) -> str | None:
        links: dict[tuple[str, str], str | None] = self.memo(("layer_links.by_pair",), lambda: {
            (str(r.from_layer), str(r.to_layer)): (str(r.weights) if r.linked else None)
            for r in self.layer_links().itertuples(index=False)})
        return links.get((layer_i, layer_j))

    @property
    @_memoized
    def layer_sizes(self) -> dict[str, int]:
        """Analysed layer -> its number of neurons."""
        return {d["name"]: int(d["neurons"]) for d in self.layer_info.get("detail", []) if "neurons" in d}

    @property
    @_memoized
    def layer_numbers(self) -> dict[str, int]:
        """Analysed layer -> the paper's layer number (1-based, forward order)."""
        out = {name: i + 1 for i, name in enumerate(self.layers)}
        for d in self.layer_info.get("detail", []):
            if d.get("name") in out and d.get("number"):
                out[d["name"]] = int(d["number"])
        return out

    def stage_key(self, stage: str) -> str | None:
        """The output key of a build stage (what it computed from), None for an unknown stage."""
        key = self.manifest.get("inputs", {}).get(stage)
        return None if key is None else str(key)

    def modules(self) -> list[dict[str, Any]] | None:
        """Every leaf module in forward order (name, type, output_shape, params, analysed, number,
        weight_change), or None for a cache built before the architecture stage existed."""
        rel = "models/modules.json"
        return self.json(rel) if self._exists(rel) else None

    @property
    def domains(self) -> dict[str, str]:
        return dict(self.meta["domain_names"])

    @property
    @_memoized
    def instances(self) -> pd.DataFrame:
        """Per instance: id, domain, split, label, label_name and each model's pred, loss and conf.
        (Never ``data/base.parquet`` in its place: it lacks the models' columns every view reads.)"""
        return self.table("data/instances.parquet")

    @property
    def has_history(self) -> bool:
        """Whether the cache has per-epoch training history (not for given checkpoints without one)."""
        return self._exists("models/history.parquet")

    @property
    @_memoized
    def history(self) -> pd.DataFrame:
        return self.table("models/history.parquet")

    @property
    @_memoized
    def images(self) -> np.ndarray:
        """uint8 (N, S, S, 3) images at the model's input size, row i = instance id i."""
        return self.array("data/images.npy")

    def inputs(self, ids: Iterable[int] | np.ndarray):
        """The preprocessed tensor exactly as the models see those instances."""
        from transferviz.preprocess import to_tensor

        idx = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.int64)
        m = self.config["model"]
        return to_tensor(np.asarray(self.images[idx]), m["mean"], m["std"])

    @_memoized
    def class_rows(self, cls: int, domain: str) -> np.ndarray:
        """Row positions (= instance ids) of the class's instances of one domain (read-only)."""
        df = self.instances
        rows = np.flatnonzero((df["domain"].astype(str).to_numpy() == domain) & (df["label"].to_numpy() == int(cls)))
        rows.setflags(write=False)  # shared between callers
        return rows

    def thumbnail(self, instance_id: int) -> bytes:
        rel = f"thumbs/{int(instance_id)}.png"
        if not (self.root / rel).is_file():
            raise TransferVizError(f"no thumbnail for instance {instance_id} in {self.root}")
        return self.png(rel)

    def model(self, which: ModelName, epoch: int | None = None):
        """An eval-mode module with the model's weights (``epoch=None``: the final weights)."""
        from safetensors.torch import load_file

        from transferviz.models import build_model, load_state_dict_checked

        if which not in ("source", "target"):
            raise TransferVizError(f"model must be 'source' or 'target', not {which!r}")
        rel = f"models/{which}.safetensors" if epoch is None else f"models/epochs/{which}_{int(epoch):03d}.safetensors"
        p = self.root / rel
        if not p.is_file():
            avail = sorted(x.stem for x in (self.root / "models" / "epochs").glob(f"{which}_*.safetensors"))
            raise TransferVizError(f"cache has no weights {rel}; available epochs: {', '.join(avail) or 'none'}")
        self.check(rel)
        m = self.config["model"]
        model = build_model(m["arch"], len(self.classes), m["input_size"])
        load_state_dict_checked(model, load_file(str(p)), str(p))
        return model.eval()

    def epochs(self, which: ModelName) -> list[int]:
        d = self.root / "models" / "epochs"
        return sorted(int(p.stem.split("_")[-1]) for p in d.glob(f"{which}_*.safetensors"))

    # -- analysis accessors (arrays are memory-mapped)
    def conductance(self, which: ModelName, layer: str) -> np.ndarray:
        """(instances x neurons) float32 Layer Conductance w.r.t. each instance's true class."""
        self._check_layer(layer)
        return self.array(f"analysis/conductance/{which}/{layer}.npy")

    def important_neurons(self, which: ModelName, layer: str, cls: str | int) -> np.ndarray:
        """The class's important neurons of ``layer`` (5.3.1 A), most important first."""
        self._check_layer(layer)
        row = np.asarray(self.array(f"analysis/neurons/{which}/{layer}.npy")[self.class_index(cls)])
        return row[row >= 0]

    def rank_sums(self, which: ModelName, layer: str, cls: str | int) -> np.ndarray:
        self._check_layer(layer)
        return np.asarray(self.array(f"analysis/neurons/{which}/{layer}_ranksum.npy")[self.class_index(cls)])

    def important_weights(self, which: ModelName, layer_i: str, layer_j: str,
                          cls: str | int) -> pd.DataFrame | None:
        """Important weights ``layer_i -> layer_j`` of the class (5.3.1 B); target rows carry 'corresponds'.
        None for a pair that no weight matrix joins (:meth:`layer_links`)."""
        self._check_pair(layer_i, layer_j)
        if not self.is_linked(layer_i, layer_j):
            return None
        rel = f"analysis/weights/{which}/{pair_name(layer_i, layer_j)}"
        df = self.table(f"{rel}_correspondence.parquet" if which == "target" else f"{rel}.parquet")
        return df[df.class_index == self.class_index(cls)].reset_index(drop=True)

    def similarity(self, layer: str, cls: str | int) -> np.ndarray:
        """(source neurons x target neurons) cosine similarity over the class's target instances (5.3.2)."""
        self._check_layer(layer)
        return self.array(f"analysis/similarity/{layer}.npy")[self.class_index(cls)]

    def most_similar(self, layer: str, cls: str | int, direction: str = "t2s") -> tuple[np.ndarray, np.ndarray]:
        """Five most similar neurons in the other model: ``t2s`` for each target neuron, ``s2t`` for each source one."""
        self._check_layer(layer)
        ci = self.class_index(cls)
        return (np.asarray(self.array(f"analysis/similarity/{layer}_{direction}_idx.npy")[ci]),
                np.asarray(self.array(f"analysis/similarity/{layer}_{direction}_val.npy")[ci]))

    def has_similarity(self, layer: str) -> bool:
        """Whether the similarity analysis (5.3.2) of ``layer`` is in the cache."""
        return all(self._exists(f"analysis/similarity/{layer}_{d}_{k}.npy")
                   for d in ("t2s", "s2t") for k in ("idx", "val"))

    def similarity_block(self, layer: str, cls: int) -> np.ndarray | None:
        """(k_source, k_target) similarity of the class's important neurons, both in rank order
        (padded with NaN past a class's own counts); None without the similarity analysis."""
        a = self._optional_array(f"analysis/similarity/{layer}_block.npy")
        return None if a is None else a[int(cls)]

    def similarity_hist(self, layer: str, cls: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The class's similarity histograms of ``layer``: (3 regions, bins) counts and the bin edges
        (regions: important source x other target, other source x important target, neither)."""
        counts = self._optional_array(f"analysis/similarity/{layer}_hist.npy")
        edges = self._optional_array("analysis/similarity/hist_edges.npy")
        return None if counts is None or edges is None else (counts[int(cls)], edges)

    def weight_values(self, which: ModelName, layer_i: str, layer_j: str) -> np.ndarray | None:
        """(neurons of layer_j, neurons of layer_i) value of each weight as the view draws it
        (a conv kernel's mean, NaN across conv groups); None when the cache lacks it or the pair is not linked."""
        if not self.is_linked(layer_i, layer_j):
            return None
        return self._optional_array(f"analysis/weights/{which}/{pair_name(layer_i, layer_j)}_values.npy")

    def weight_block(self, which: ModelName, layer_i: str, layer_j: str, cls: int) -> np.ndarray | None:
        """(k_j, k_i) weights between the class's important neurons, rank order (region 1); None when the
        cache lacks them or no weight matrix joins the pair (:meth:`layer_links` says why)."""
        if not self.is_linked(layer_i, layer_j):
            return None
        a = self._optional_array(f"analysis/weights/{which}/{pair_name(layer_i, layer_j)}_block.npy")
        return None if a is None else a[int(cls)]

    def weight_block_correspondence(self, layer_i: str, layer_j: str, cls: int) -> np.ndarray | None:
        """(k_j, k_i) True where the region-1 target weight has a corresponding important source weight
        (None: not in the cache, or the pair is not linked)."""
        if not self.is_linked(layer_i, layer_j):
            return None
        a = self._optional_array(f"analysis/weights/target/{pair_name(layer_i, layer_j)}_block_corr.npy")
        return None if a is None else a[int(cls)]

    def weight_hist(self, which: ModelName, layer_i: str, layer_j: str,
                    cls: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Counts and bin edges of the class's other weights (regions 2-4) of ``which`` model (None: not in
        the cache, or the pair is not linked)."""
        if not self.is_linked(layer_i, layer_j):
            return None
        pair = pair_name(layer_i, layer_j)
        counts = self._optional_array(f"analysis/weights/{pair}_hist.npy")
        edges = self._optional_array(f"analysis/weights/{pair}_hist_edges.npy")
        if counts is None or edges is None:
            return None
        mi = ("source", "target").index(which)
        return counts[mi, int(cls)], edges[mi, int(cls)]

    @_memoized
    def weight_boxes(self, layer_i: str, layer_j: str) -> pd.DataFrame | None:
        """Regions 2/3 boxplot statistics of ``layer_i -> layer_j`` per model, class, neuron and side (None: not in
        the cache, or the pair is not linked)."""
        if not self.is_linked(layer_i, layer_j):
            return None
        return self._optional_table(f"analysis/weights/{pair_name(layer_i, layer_j)}_boxes.parquet")

    @_memoized
    def important_weight_table(self, which: ModelName, layer_i: str, layer_j: str) -> pd.DataFrame:
        """Every class's important weights ``layer_i -> layer_j`` (class_index, rank, n1, n2, count, value);
        an empty table when the cache lacks them (a pair that no weight matrix joins has none)."""
        df = self._optional_table(f"analysis/weights/{which}/{pair_name(layer_i, layer_j)}.parquet")
        return df if df is not None else pd.DataFrame(columns=["class_index", "rank", "n1", "n2", "count", "value"])

    @_memoized
    def discriminability_tables(self, which: ModelName) -> dict[str, pd.DataFrame]:
        """Algorithm 1's ``summary``, ``neurons`` and ``points`` tables for every class (empty when absent)."""
        base = f"analysis/discriminability/{which}"
        out = {}
        for name in ("summary", "neurons", "points"):
            df = self._optional_table(f"{base}/{name}.parquet")
            out[name] = df if df is not None else pd.DataFrame()
        return out

    def kernel(self, which: ModelName, layer_i: str, layer_j: str, n1: int, n2: int) -> np.ndarray | None:
        """The weight joining neuron ``n1`` of ``layer_i`` to ``n2`` of ``layer_j``, read straight from
        the model's safetensors file (a memory-mapped slice; no model is built): conv -> conv the
        (kh, kw) kernel ``W[n2, n1]``; conv -> linear the spatial block of channel ``n1`` in row ``n2``
        (square maps only); linear -> linear the single weight. The weights are those of the module that
        joins the pair (``layer_j``, or the conv inside block ``layer_j``). None when it cannot be read or no
        weight matrix joins the pair."""
        from safetensors import safe_open

        module = self._weights_module(layer_i, layer_j)
        p = self.root / "models" / f"{which}.safetensors"
        if module is None or not p.is_file():
            return None
        self.check(f"models/{which}.safetensors")  # a damaged file is an error, not "no kernel"
        try:
            with safe_open(str(p), framework="np") as f:
                key = f"{module}.weight"
                if key not in f.keys():
                    return None
                sl = f.get_slice(key)
                shape = sl.get_shape()
                if len(shape) == 4:  # conv: (out, in / groups, kh, kw)
                    if n2 >= shape[0] or n1 >= shape[1]:
                        return None  # grouped conv across groups: no weight
                    return np.asarray(sl[n2:n2 + 1, n1:n1 + 1])[0, 0]
                if len(shape) == 2:
                    n_in_layer = self.layer_sizes.get(layer_i)
                    if n_in_layer and shape[1] != n_in_layer and shape[1] % n_in_layer == 0:
                        # linear after a flatten of n_in_layer channels: the channel's spatial block
                        per = shape[1] // n_in_layer
                        row = np.asarray(sl[n2:n2 + 1, n1 * per:(n1 + 1) * per])[0]
                        side = int(round(per ** 0.5))
                        return row.reshape(side, side) if side * side == per else row.reshape(1, -1)
                    return np.asarray(sl[n2:n2 + 1, n1:n1 + 1]).reshape(1, 1)
        except Exception:  # noqa: BLE001 - a broken or foreign file: the panel says "no kernel"
            return None
        return None

    @property
    @_memoized
    def correspondence(self) -> pd.DataFrame:
        """Per layer pair and class, the share of important target weights with a source counterpart."""
        return self.table("analysis/correspondence.parquet")

    @_memoized
    def correspondence_summary(self) -> pd.DataFrame:
        """Per class and linked layer pair: the correspondence ``share`` beside its references,
        ``same_index_share`` (every neuron matched to its own index) and the permutation null
        (``null_mean``, ``null_p95``); columns class, from_layer, to_layer, share, same_index_share,
        null_mean, null_p95 (NaN references in a cache built before they were stored)."""
        df = self.correspondence
        names = np.asarray(self.classes, dtype=object)
        out = pd.DataFrame({"class": names[df["class_index"].to_numpy(dtype=np.int64)] if len(df) else [],
                            "from_layer": df["layer_i"].to_numpy(), "to_layer": df["layer_j"].to_numpy(),
                            "share": df["share"].to_numpy(dtype=np.float64)})
        for col in ("same_index_share", "null_mean", "null_p95"):
            out[col] = df[col].to_numpy(dtype=np.float64) if col in df else np.nan
        return out

    def matched_sources(self, layer: str, cls: int) -> np.ndarray | None:
        """(target neurons,) the source neuron each target neuron of ``layer`` is matched to for weight
        correspondence (``analysis.matching``; -1: none); None in a cache built before it was stored."""
        a = self._optional_array(f"analysis/similarity/{layer}_match.npy")
        return None if a is None else np.asarray(a[int(cls)])

    def discriminability(self, which: ModelName, cls: str | int) -> dict[str, Any]:
        """Algorithm 1 for the class: summary row, neurons (u, biplot axes) and instance coordinates."""
        ci = self.class_index(cls)
        base = f"analysis/discriminability/{which}"
        pick = lambda df: df[df.class_index == ci].reset_index(drop=True)  # noqa: E731
        summary = pick(self.table(f"{base}/summary.parquet"))
        return {"summary": summary.iloc[0].to_dict() if len(summary) else {},
                "neurons": pick(self.table(f"{base}/neurons.parquet")),
                "points": pick(self.table(f"{base}/points.parquet"))}

    def discriminability_stability(self, which: ModelName, cls: str | int) -> pd.DataFrame | None:
        """The bootstrap stability of the class's ``u`` (issue 12): one row per important neuron, largest ``|u|``
        first, with ``layer``, ``neuron``, ``u``, ``stability`` (share of resamples in which the neuron is among
        the top by ``|u|`` with the sign of ``u``), ``top_share`` and ``sign_share``; None for a cache built before
        the bootstrap or without one (``analysis.discriminability_bootstrap: 0``)."""
        ci = self.class_index(cls)
        neurons = self.discriminability_tables(which)["neurons"]
        if "stability" not in neurons.columns:
            return None
        n = neurons[neurons.class_index == ci]
        if len(n) == 0 or n["stability"].isna().all():
            return None
        n = n.iloc[np.argsort(-n["u"].abs().to_numpy(), kind="stable")]
        return n[["layer", "neuron", "u", "stability", "top_share", "sign_share"]].reset_index(drop=True)

    @_memoized
    def discriminability_baseline(self) -> pd.DataFrame | None:
        """Per class, the trivial-feature baseline (issue 12): ``class_index``, ``status``, ``cv_accuracy``,
        ``cv_balanced_accuracy`` and ``flagged`` of the same domain classifier on per-image colour and intensity
        statistics; None for a cache built before it."""
        return self._optional_table("analysis/discriminability/baseline.parquet")

    @property
    def has_tsne(self) -> bool:
        return self._exists("analysis/tsne.npy")

    def projection_features(self) -> np.ndarray:
        """(N, d) features the t-SNE maps were made from: the PCA-50 of the target embeddings
        (the embeddings themselves for caches built before the PCA was stored)."""
        rel = "analysis/pca50.npy"
        return self.array(rel if self._exists(rel) else "analysis/embedding/target.npy")

    def tsne(self) -> np.ndarray:
        """(N, 2) t-SNE map of the target model's embeddings."""
        return self.array("analysis/tsne.npy")

    def pixel_tsne(self) -> np.ndarray | None:
        """(N, 2) t-SNE map of the instances' raw pixels; None for caches built before that stage."""
        return self._optional_array("analysis/pixel_tsne.npy")

    def embedding(self, which: ModelName) -> np.ndarray:
        return self.array(f"analysis/embedding/{which}.npy")

    # -- fine-tuning timeline (issue 6, item 7)
    def timeline_epochs(self) -> np.ndarray:
        """Target fine-tuning epoch of each timeline row (0 = the source model)."""
        return np.asarray(self.array("analysis/timeline/epochs.npy"))

    def timeline_positions(self) -> np.ndarray:
        """(epochs, N, 2) float32 position of every instance in the final t-SNE map at each epoch."""
        return self.array("analysis/timeline/positions.npy")

    def timeline_pred(self) -> np.ndarray:
        """(epochs, N) predicted class of the target model at each epoch."""
        return self.array("analysis/timeline/pred.npy")

    def timeline_flips(self) -> np.ndarray:
        """(epochs, N) True where the prediction changed from the previous epoch."""
        return self.array("analysis/timeline/flips.npy")

    def timeline_accuracy(self) -> pd.DataFrame | None:
        """Per epoch, class_index and domain: accuracy, n, val_accuracy (None without the table)."""
        return self._optional_table("analysis/timeline/accuracy.parquet")

    def timeline_drift(self) -> pd.DataFrame | None:
        """Per epoch and layer: mean_cos and min_cos of the neurons' incoming weights to the source's
        (None without the table)."""
        return self._optional_table("analysis/timeline/drift.parquet")

    @property
    def has_timeline(self) -> bool:
        """Whether the cache holds the fine-tuning timeline's per-epoch arrays."""
        return all(self._exists(f"analysis/timeline/{n}.npy") for n in ("epochs", "positions", "pred", "flips"))

    @property
    def has_class_table(self) -> bool:
        return self._exists("analysis/class_table.parquet")

    @property
    def has_correspondence(self) -> bool:
        """Whether the cache holds the weight correspondence table (:attr:`correspondence`, its summary)."""
        return self._exists("analysis/correspondence.parquet")

    @_memoized
    def summary(self) -> dict[str, Any] | None:
        """The run's summary (transferability and the best accuracies behind it), None when absent."""
        rel = "analysis/summary.json"
        return self.json(rel) if self._exists(rel) else None

    def build_warnings(self) -> list[str]:
        """What the build found wrong with its result (a model at chance level, ...), one line each,
        from the manifest's stage notes; empty for a cache built before builds warned."""
        return [str(w) for stage in self.manifest.get("stages", {}).values()
                for w in stage.get("notes", {}).get("warnings", [])]

    # -- transferability estimates and layer CKA (issue 14, items 3 and 4)
    @_memoized
    def transfer_estimates(self) -> dict[str, float] | None:
        """The source model's transferability estimates for the target before fine-tuning (the transfer stage):
        ``logme``, ``leep``, ``nce``, ``hscore`` (higher = expected to transfer better); None for a cache built
        before the stage. Treat the dict as read-only."""
        rel = "analysis/transfer/estimates.json"
        if not self._exists(rel):
            return None
        stored = self.json(rel)
        return {name: float(stored[name]) for name in ("logme", "leep", "nce", "hscore")}

    def cka(self, domain: str = "target") -> np.ndarray | None:
        """(layers x layers) linear CKA (unbiased HSIC) between the source model's activations of analysed layer
        i (row) and the target model's of layer j (column) on ``domain``'s instances ("source" or "target");
        the diagonal says how much each layer kept through fine-tuning. None for a cache built before the cka
        stage. Rows and columns follow :attr:`cka_layers`."""
        if domain not in ("source", "target"):
            raise TransferVizError(f"unknown domain {domain!r} for cka; use 'source' or 'target'")
        rel = f"analysis/cka/{domain}.npy"
        return np.asarray(self.array(rel)) if self._exists(rel) else None

    @property
    @_memoized
    def cka_layers(self) -> list[str] | None:
        """The layers of the rows and columns of :meth:`cka` (the analysed layers when it was built); None
        without the cka stage."""
        rel = "analysis/cka/meta.json"
        return [str(n) for n in self.json(rel)["layers"]] if self._exists(rel) else None

    @property
    @_memoized
    def class_table(self) -> pd.DataFrame:
        return self.table("analysis/class_table.parquet")

    @property
    def transferability(self) -> float:
        return float(self.json("analysis/summary.json")["transferability"])

    def confusion(self, which: ModelName, domain: str) -> np.ndarray:
        """(true, predicted) counts of ``which`` model on all instances of ``domain``."""
        return np.asarray(self.array("analysis/confusion.npy")[("source", "target").index(which),
                                                                ("source", "target").index(domain)])

    def top_instances(self, which: ModelName, layer: str, neuron: int) -> np.ndarray:
        """(2 domains, 5) ids of the instances with the highest attribution for the neuron (-1 pads)."""
        self._check_layer(layer)
        return np.asarray(self.array(f"analysis/top_instances/{which}/{layer}.npy")[int(neuron)])

    @property
    def has_featvis(self) -> bool:
        """Whether the cache holds feature visualizations (the featvis stage ran)."""
        return self._exists("featvis")

    @_memoized
    def featvis_neurons(self, which: ModelName, layer: str) -> frozenset[int]:
        """The neurons of ``layer`` that have a feature visualization (one listing per layer,
        not a file check per neuron)."""
        d = self.root / "featvis" / which / layer
        if not d.is_dir():
            return frozenset()
        return frozenset(int(p.stem) for p in d.glob("*.png") if p.stem.isdigit())

    def featvis(self, which: ModelName, layer: str, neuron: int) -> bytes | None:
        """PNG of the neuron's feature visualization, or None when the cache has none."""
        rel = f"featvis/{which}/{layer}/{int(neuron)}.png"
        return self.png(rel) if (self.root / rel).is_file() else None

    @property
    @_memoized
    def feature_change(self) -> pd.DataFrame | None:
        """Per rendered neuron, how its visualization changed through fine-tuning (None without featvis)."""
        return self._optional_table("featvis/change.parquet")

    def _check_pair(self, layer_i: str, layer_j: str) -> None:
        self._check_layer(layer_i)
        self._check_layer(layer_j)
        if self.layers.index(layer_j) != self.layers.index(layer_i) + 1:
            raise TransferVizError(f"{layer_i} -> {layer_j} are not consecutive analysed layers")

    def _check_layer(self, layer: str) -> None:
        if layer not in self.layers:
            raise TransferVizError(f"unknown layer {layer!r}; analysed layers: {', '.join(self.layers)}")

    def class_index(self, cls: str | int) -> int:
        if isinstance(cls, (int, np.integer)):
            if not 0 <= int(cls) < len(self.classes):
                raise TransferVizError(f"class index {cls} out of range 0..{len(self.classes) - 1}")
            return int(cls)
        if cls not in self.classes:
            raise TransferVizError(f"unknown class {cls!r}; classes: {', '.join(self.classes)}")
        return self.classes.index(cls)

    def __repr__(self) -> str:
        return f"Cache({self.root}, run={self.name!r}, {len(self.instances)} instances)"


def pair_name(layer_i: str, layer_j: str) -> str:
    """The cache's name of a pair of consecutive layers (``analysis/weights/.../<pair>_*``)."""
    return f"{layer_i}__{layer_j}"


def png_bytes(img: np.ndarray, scale: int = 1) -> bytes:
    """Encodes an (H, W, 3) uint8 image as PNG, optionally upscaled with nearest neighbour."""
    from PIL import Image

    im = Image.fromarray(np.asarray(img, dtype=np.uint8))
    if scale > 1:
        im = im.resize((im.width * scale, im.height * scale), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=False)
    return buf.getvalue()
