"""Row-indexed work split across the build's processes, in checkpointed chunks that a resumed build keeps.

:func:`run_rows` cuts ``range(n)`` into fixed chunks of ``chunk_rows`` rows (the same grid whatever the number
of processes, so a build resumed with another ``--nproc-per-node`` keeps every finished chunk, and each row
is computed in the same batch as in a single-process build: results are bitwise equal). Each rank takes a
contiguous block of chunks, computes the chunks not already done and writes each as a *shard* into the build
folder; rank 0 then reads every shard in row order and returns the merged result (the other ranks get None).

A shard is ``<start>-<stop>.npz`` (numpy's zip of ``.npy``: no pickle) and its record ``<start>-<stop>.json``
(rows, keys, dtypes, shapes, byte size and SHA-256 of the ``.npz``), each written to a temporary name and
renamed into place, the record last: a shard is trusted only when its record exists and the file's hash
matches it, so one that a kill left half-written is computed again, never read.

``compute(rows)`` returns a dict whose values are arrays with one row per row of ``rows`` (leading
dimension ``len(rows)``) or lists of ``bytes`` (one per row: PNGs); a key starting with ``chunk:`` holds a
per-chunk value instead (leading dimension 1), merged into ``(n_chunks, ...)``, next to ``chunk:rows``, the
number of rows of each chunk (e.g. to weight per-chunk means).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, Union

import numpy as np

from transferviz.cache import CacheWriter
from transferviz.distributed import Dist

__all__ = ["run_rows", "chunk_grid", "chunk_rows", "shard_root", "CHUNK_ENV", "Value", "Result"]

#: Overrides every stage's rows per chunk (tests use small chunks to get several shards from a tiny config).
CHUNK_ENV = "TRANSFERVIZ_CHUNK_ROWS"
SHARDS_DIR = ".shards"

Value = Union[np.ndarray, list[bytes]]
Result = dict[str, Value]


class BuildContext(Protocol):
    """What :func:`run_rows` needs of :class:`transferviz.build.framework.BuildContext` (named here, not
    imported: the framework imports this module)."""

    dist: Dist
    stage: str
    stage_key: str
    writer: CacheWriter

    def log(self, message: str) -> None: ...

    def bar(self, total: int, desc: str, unit: str = "it") -> Any: ...


def chunk_rows(default: int) -> int:
    """Rows per chunk: ``default`` (a stage's choice: about a minute of work or less) unless ``CHUNK_ENV`` is set."""
    raw = os.environ.get(CHUNK_ENV)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        from transferviz.errors import TransferVizError

        raise TransferVizError(f"{CHUNK_ENV}={raw!r} is not a positive number of rows; set it to e.g. 256 or unset it")
    return value


def chunk_grid(n: int, rows: int) -> list[range]:
    """``range(n)`` cut into consecutive chunks of ``rows`` rows (the last may be shorter)."""
    return [range(s, min(n, s + rows)) for s in range(0, n, rows)]


def shard_root(ctx: BuildContext) -> Path:
    """Where the running stage keeps its shards: under the build folder, by stage and stage key, so a build
    resumed with another config (another key) never reads them."""
    return ctx.writer.root / SHARDS_DIR / f"{ctx.stage}-{ctx.stage_key[:16]}"


def run_rows(ctx: BuildContext, name: str, n: int, compute: Callable[[range], Mapping[str, Value]], *,
             rows_per_chunk: int, desc: str | None = None, unit: str = "row") -> Result | None:
    """Runs ``compute`` over this rank's chunks of ``range(n)`` (skipping those finished by an interrupted
    build), then on rank 0 returns every chunk's output merged in row order; None on the other ranks.

    ``name`` tells apart several calls within one stage; ``rows_per_chunk`` is the stage's default chunk
    size (:func:`chunk_rows` lets ``CHUNK_ENV`` override it). Every rank must call it, in the same order."""
    d = ctx.dist
    size = chunk_rows(rows_per_chunk)
    folder = shard_root(ctx) / f"{name}-c{size}"
    folder.mkdir(parents=True, exist_ok=True)
    chunks = chunk_grid(n, size)
    mine = [chunks[i] for i in d.block(len(chunks))]
    todo = [c for c in mine if not _valid(folder, c)]
    done_rows = sum(len(c) for c in mine) - sum(len(c) for c in todo)
    done_all = sum(d.all_gather_objects(done_rows))
    if d.is_main and done_all:
        label = ctx.stage if name == ctx.stage else f"{ctx.stage} ({name})"
        ctx.log(f"{label}: resuming, {100.0 * done_all / max(n, 1):.0f}% already done")
    bar = ctx.bar(sum(len(c) for c in mine), desc or name, unit)
    bar.update(done_rows)
    try:
        for c in todo:
            _write(folder, c, compute(c))
            bar.update(len(c))
    finally:
        bar.close()
    d.barrier()  # every rank's shards are on disk
    if not d.is_main:
        return None
    return _merge(folder, chunks)


def discard(ctx: BuildContext) -> None:
    """Deletes the whole build folder's shards (the build is finished: they are not part of the cache)."""
    shutil.rmtree(ctx.writer.root / SHARDS_DIR, ignore_errors=True)


# --- one shard ------------------------------------------------------------------------

def _stem(rows: range) -> str:
    return f"{rows.start:010d}-{rows.stop:010d}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _record(folder: Path, rows: range) -> dict[str, Any] | None:
    try:
        rec = json.loads((folder / f"{_stem(rows)}.json").read_text())
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) and rec.get("rows") == [rows.start, rows.stop] else None


def _valid(folder: Path, rows: range) -> bool:
    """Whether the chunk's shard is complete: its record exists and the file's size and hash match it.
    Anything else (no record, a truncated or rewritten file) is deleted, to be computed again."""
    rec = _record(folder, rows)
    data = folder / f"{_stem(rows)}.npz"
    try:
        ok = rec is not None and data.stat().st_size == rec["bytes"] and _sha256(data) == rec["sha256"]
    except (OSError, KeyError):
        ok = False
    if not ok:
        (folder / f"{_stem(rows)}.json").unlink(missing_ok=True)
        data.unlink(missing_ok=True)
    return ok


def _atomic_write(path: Path, write: Callable[[Any], None]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _write(folder: Path, rows: range, out: Mapping[str, Value]) -> None:
    arrays: dict[str, np.ndarray] = {}
    keys: dict[str, dict[str, Any]] = {}
    for i, (key, value) in enumerate(out.items()):
        want = 1 if key.startswith("chunk:") else len(rows)
        if isinstance(value, list):  # bytes, one per row: stored as one uint8 array and the offsets
            if len(value) != want:
                raise ValueError(f"{key}: {len(value)} items for {want} rows")
            lengths = np.array([len(b) for b in value], dtype=np.int64)
            arrays[f"a{i}"] = np.frombuffer(b"".join(value), dtype=np.uint8)
            arrays[f"o{i}"] = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
            keys[key] = {"index": i, "kind": "bytes"}
        else:
            arr = np.ascontiguousarray(value)
            if arr.ndim == 0 or arr.shape[0] != want:
                raise ValueError(f"{key}: leading dimension {arr.shape[:1]} for {want} rows")
            arrays[f"a{i}"] = arr
            keys[key] = {"index": i, "kind": "array", "dtype": str(arr.dtype), "shape": list(arr.shape)}
    data = folder / f"{_stem(rows)}.npz"
    _atomic_write(data, lambda f: np.savez(f, allow_pickle=False, **arrays))  # numbers only, never pickles
    rec = {"rows": [rows.start, rows.stop], "keys": keys, "bytes": data.stat().st_size, "sha256": _sha256(data)}
    _atomic_write(folder / f"{_stem(rows)}.json", lambda f: f.write(json.dumps(rec).encode()))


def _checked(folder: Path, rows: range) -> dict[str, Any]:
    """The chunk's record, after checking its file against it (every rank has finished: it must be there)."""
    rec = _record(folder, rows)
    data = folder / f"{_stem(rows)}.npz"
    if rec is None or not data.is_file() or _sha256(data) != rec["sha256"]:
        raise RuntimeError(f"shard {data} is missing or damaged after every rank finished; run the build again "
                           "(it resumes and recomputes that chunk)")
    return rec


def _read_key(folder: Path, rows: range, k: dict[str, Any]) -> Value:
    with np.load(folder / f"{_stem(rows)}.npz", allow_pickle=False) as z:
        arr = z[f"a{k['index']}"]
        if k["kind"] != "bytes":
            return arr
        off = z[f"o{k['index']}"]
    buf = arr.tobytes()
    return [buf[off[j]:off[j + 1]] for j in range(len(off) - 1)]


def _merge(folder: Path, chunks: Sequence[range]) -> Result:
    """Every chunk's output in row order, one key at a time (the peak holds the merged result and one key's
    parts, not every shard at once)."""
    records = [_checked(folder, c) for c in chunks]
    merged: Result = {}
    for key, k in (records[0]["keys"] if records else {}).items():
        values = [_read_key(folder, c, rec["keys"][key]) for c, rec in zip(chunks, records)]
        if k["kind"] == "bytes":
            merged[key] = [b for v in values for b in v]
        else:
            merged[key] = np.concatenate(values, axis=0)  # type: ignore[arg-type]
        del values
    if records:
        merged["chunk:rows"] = np.array([len(c) for c in chunks], dtype=np.int64)
    return merged
