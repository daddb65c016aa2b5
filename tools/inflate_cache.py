"""Inflates a built cache to N instances: a valid cache for benchmarks and scale tests of the dashboard.

    python tools/inflate_cache.py SRC DST --instances 100000 [--jitter 0.02] [--seed 0] [--force]

Every per-instance artifact (the instance tables, images, thumbnails, embeddings, PCA features, the
t-SNE maps, conductance, the timeline's positions and predictions, the discriminability biplot points)
gets N rows made from SRC's rows: source instances first, then target ones, each domain's rows
repeated in order with fresh ids (0..N-1) and the map coordinates of every repeat after the first
moved by a small Gaussian jitter (``--jitter`` times the coordinates' standard deviation), so repeats
do not sit exactly on top of each other. The first copy of each row keeps SRC's values exactly.
What is computed from the instances (confusion counts, the class table, the timeline's per-class
accuracy, the split counts in data/meta.json) is recomputed from the inflated rows with the build's
own functions; what is per class or per neuron and computed from SRC's instances (important neurons,
similarity, weights, discriminability summaries, top instances, whose ids stay valid) is hard-linked
unchanged. The manifest records the new shapes and ``inflated: {source, instances, seed, jitter}``.

Not a build: the numbers describe SRC's instances, repeated. DST is written to a temporary folder
beside it and renamed into place, so it is never half-written. ~10 s for 100k from the demo cache.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))

from transferviz.analysis.timeline import accuracy_table  # noqa: E402
from transferviz.build.inputs import class_table  # noqa: E402
from transferviz.cache import Cache  # noqa: E402
from transferviz.errors import TransferVizError  # noqa: E402

#: Per-instance arrays with instances on axis 0 (prefix match for the per-model and per-layer ones).
AXIS0 = ("data/images.npy", "analysis/tsne.npy", "analysis/class_tsne.npy", "analysis/pixel_tsne.npy",
         "analysis/pca50.npy", "analysis/embedding/", "analysis/conductance/")
#: Per-instance arrays with instances on axis 1 (epoch, instance, ...).
AXIS1 = ("analysis/timeline/positions.npy", "analysis/timeline/pred.npy", "analysis/timeline/flips.npy")
#: Map coordinates: jittered on repeats (timeline positions share the global map's jitter, so an
#: instance whose embedding did not change keeps its final-map position at every epoch).
COORDS = ("analysis/tsne.npy", "analysis/class_tsne.npy", "analysis/pixel_tsne.npy",
          "analysis/timeline/positions.npy")
TABLES = ("data/base.parquet", "data/instances.parquet")
POINTS = ("analysis/discriminability/source/points.parquet", "analysis/discriminability/target/points.parquet")
#: Recomputed from the inflated instance table.
DERIVED = ("analysis/confusion.npy", "analysis/class_table.parquet", "analysis/timeline/accuracy.parquet",
           "data/meta.json")
REWRITTEN_DIRS = ("thumbs",)
SKIP = {".lock", "manifest.json"}  # a fresh lock: sharing SRC's inode would share its flock


def is_axis0(rel: str) -> bool:
    return any(rel == p or (p.endswith("/") and rel.startswith(p)) for p in AXIS0)


def row_map(domains: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(orig, copy): for each of the ``n`` new rows the SRC row it repeats and which repeat it is (0: first).

    Source rows first, then target rows, in the domains' SRC proportions (at least one row each when
    SRC has the domain); each domain's rows are repeated in their SRC order.
    """
    src = np.flatnonzero(domains == "source")
    tgt = np.flatnonzero(domains == "target")
    if len(src) + len(tgt) != len(domains):
        raise TransferVizError("inflate_cache: SRC has instances of neither domain; it is not a transferviz cache")
    if n < (len(src) > 0) + (len(tgt) > 0):
        raise TransferVizError(f"inflate_cache: --instances {n} is too few; give at least 2")
    n_src = int(round(n * len(src) / len(domains)))
    n_src = min(max(n_src, 1 if len(src) else 0), n - (1 if len(tgt) else 0))
    n_tgt = n - n_src
    parts, copies = [], []
    for rows, k in ((src, n_src), (tgt, n_tgt)):
        if k:
            j = np.arange(k)
            parts.append(rows[j % len(rows)])
            copies.append(j // len(rows))
    return np.concatenate(parts).astype(np.int64), np.concatenate(copies).astype(np.int64)


def spread(coords: np.ndarray) -> float:
    """The standard deviation of the finite coordinates (0 for none)."""
    finite = np.asarray(coords, dtype=np.float64)[np.isfinite(coords)]
    return float(finite.std()) if finite.size else 0.0


def jittered(coords: np.ndarray, copy: np.ndarray, noise: np.ndarray, jitter: float,
             scale: float | None = None) -> np.ndarray:
    """``coords`` (rows on the second-to-last axis, xy last) moved by ``noise`` x ``jitter`` x ``scale``
    (default: their own :func:`spread`) on the rows with ``copy > 0``; the first copy of each row keeps
    its SRC coordinates exactly."""
    out = np.array(coords, dtype=np.float32, copy=True)
    scale = spread(out) if scale is None else scale
    moved = copy > 0
    out[..., moved, :] += (noise[moved] * (jitter * scale)).astype(np.float32)
    return out


def save_npy(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.ascontiguousarray(arr), allow_pickle=False)


def inflate(src: Path, dst: Path, n: int, jitter: float = 0.02, seed: int = 0, force: bool = False,
            progress: bool = True) -> Path:
    """Writes the inflated cache to ``dst`` (see the module docstring) and returns it."""
    cache = Cache.open(src)
    cache.verify()
    root = cache.root
    if dst.exists() or dst.is_symlink():
        if not force:
            raise TransferVizError(f"inflate_cache: {dst} exists; remove it or pass --force")
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    artifacts: dict[str, Any] = manifest["artifacts"]
    df0 = cache.instances
    n0 = len(df0)
    orig, copy = row_map(df0["domain"].astype(str).to_numpy(), n)
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((n, 2))

    arrays = [r for r, a in artifacts.items() if a.get("kind") == "array" and (is_axis0(r) or r in AXIS1)]
    unknown = [r for r, a in artifacts.items() if a.get("kind") == "array" and r not in arrays
               and r not in DERIVED and a.get("shape") and n0 in a["shape"][:2]]
    if unknown:
        raise TransferVizError(f"inflate_cache: {unknown[0]} (shape {artifacts[unknown[0]]['shape']}) looks "
                               f"per-instance but is not known to tools/inflate_cache.py; add it to AXIS0 or AXIS1")
    rewritten = set(arrays) | set(TABLES) | set(DERIVED) | {r for r in POINTS if r in artifacts}

    tmp = dst.parent / f".{dst.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)

    def ignore(folder: str, names: list[str]) -> set[str]:
        rel = Path(folder).relative_to(root)
        out = set()
        for name in names:
            r = (rel / name).as_posix() if rel != Path(".") else name
            if r in SKIP or r in rewritten or r in REWRITTEN_DIRS:
                out.add(name)
        return out

    # hard links for everything that does not change (models, per-class and per-neuron analysis,
    # featvis): never opened for writing below, so SRC cannot be modified through them
    shutil.copytree(root, tmp, symlinks=True, ignore=ignore, copy_function=os.link)
    try:
        _write_instances(cache, tmp, artifacts, arrays, orig, copy, noise, jitter, progress)
        manifest["inflated"] = {"source": str(root), "instances": int(n), "source_instances": int(n0),
                                "seed": int(seed), "jitter": float(jitter)}
        data_notes = manifest["stages"].get("data", {}).get("notes", {})
        if isinstance(data_notes, dict):
            df = pd.read_parquet(tmp / "data/instances.parquet")
            counts = df["domain"].value_counts()
            data_notes["summary"] = (f"{int(counts.get('source', 0))} source + {int(counts.get('target', 0))} target "
                                     f"instances, {len(cache.classes)} classes (inflated from {n0})")
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        Cache.open(tmp).verify()
        if dst.exists() or dst.is_symlink():
            old = dst.parent / f".{dst.name}.old-{os.getpid()}"
            os.replace(dst, old) if not dst.is_symlink() else dst.unlink()
            shutil.rmtree(old, ignore_errors=True)
        os.replace(tmp, dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dst


def _write_instances(cache: Cache, out: Path, artifacts: dict[str, Any], arrays: list[str], orig: np.ndarray,
                     copy: np.ndarray, noise: np.ndarray, jitter: float, progress: bool) -> None:
    """Writes every per-instance artifact and what is derived from them into ``out``; updates ``artifacts``."""
    from tqdm.auto import tqdm

    n = len(orig)
    df0 = cache.instances
    steps = tqdm(total=len(arrays) + 4, desc="inflate", unit="artifact", disable=not progress)
    for rel in arrays:
        a = cache.array(rel)
        axis = 1 if rel in AXIS1 else 0
        new = np.take(a, orig, axis=axis)
        if rel in COORDS:
            # the timeline's positions are in the global map's frame (its last epoch is that map): the same
            # jitter, so a repeat's final-epoch position stays its global-map position
            frame = "analysis/tsne.npy" if rel == "analysis/timeline/positions.npy" else rel
            new = jittered(new, copy, noise, jitter, spread(cache.array(frame)) if frame in artifacts else None)
        save_npy(out / rel, new)
        artifacts[rel]["shape"] = list(new.shape)
        steps.update()

    df = df0.iloc[orig].reset_index(drop=True)
    df["id"] = np.arange(n, dtype=np.int64)
    for rel in TABLES:
        cols = list(cache.table(rel).columns)
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        df[cols].to_parquet(out / rel, index=False)
        artifacts[rel]["shape"] = [n, len(cols)]
    steps.update()

    new_ids = pd.DataFrame({"id": orig, "new_id": np.arange(n, dtype=np.int64), "copy": copy,
                            "nx": noise[:, 0], "ny": noise[:, 1]})
    for rel in POINTS:
        if rel not in artifacts:
            continue
        pts = cache.table(rel)
        cols = list(pts.columns)
        m = pts.merge(new_ids, on="id", how="inner")
        moved = m["copy"].to_numpy() > 0
        for c, z in (("x", "nx"), ("y", "ny")):
            scale = float(np.nanstd(pts[c].to_numpy(dtype=np.float64))) if len(pts) else 0.0
            vals = m[c].to_numpy(dtype=np.float32).copy()
            vals[moved] += (m[z].to_numpy()[moved] * jitter * scale).astype(np.float32)
            m[c] = vals
        m["id"] = m["new_id"]
        m = m.sort_values(["class_index", "id"], kind="stable")[cols].reset_index(drop=True)
        m.to_parquet(out / rel, index=False)
        artifacts[rel]["shape"] = [len(m), len(cols)]
    steps.update()

    _write_derived(cache, out, artifacts, df)
    steps.update()

    thumbs = out / "thumbs"
    thumbs.mkdir()
    src_thumbs = cache.root / "thumbs"
    for new_id, old in enumerate(orig.tolist()):  # hard links: 100k in ~1 s, no PNG re-encoded
        os.link(src_thumbs / f"{old}.png", thumbs / f"{new_id}.png")
    artifacts["thumbs"]["shape"] = [n]
    steps.update()
    steps.close()


def _write_derived(cache: Cache, out: Path, artifacts: dict[str, Any], df: pd.DataFrame) -> None:
    """Confusion counts, the class table, the timeline's accuracy and the split counts, recomputed
    from the inflated instance table with the build's own code (transferviz.build.inputs, .analysis)."""
    classes = cache.classes
    k = len(classes)
    conf = np.zeros((2, 2, k, k), dtype=np.int64)  # as the forward stage counts them
    for mi, which in enumerate(("source", "target")):
        for di, dom in enumerate(("source", "target")):
            sub = df[df["domain"] == dom]
            np.add.at(conf[mi, di], (sub["label"].to_numpy(), sub[f"{which}_pred"].to_numpy()), 1)
    save_npy(out / "analysis/confusion.npy", conf)
    table = class_table(df, classes)
    table.to_parquet(out / "analysis/class_table.parquet", index=False)
    artifacts["analysis/class_table.parquet"]["shape"] = list(table.shape)

    rel = "analysis/timeline/accuracy.parquet"
    if rel in artifacts:
        pred = np.load(out / "analysis/timeline/pred.npy")
        epochs = np.load(out / "analysis/timeline/epochs.npy")
        acc = accuracy_table(pred, df["label"].to_numpy(), df["domain"].astype(str).to_numpy(), epochs.tolist(),
                             k, splits=df["split"].astype(str).to_numpy())
        old_cols = list(cache.table(rel).columns)
        acc[old_cols].to_parquet(out / rel, index=False)
        artifacts[rel]["shape"] = [len(acc), len(old_cols)]

    meta = dict(cache.meta)
    meta["counts"] = {dom: {str(s): int(c) for s, c in df.loc[df["domain"] == dom, "split"].value_counts().items()}
                      for dom in ("source", "target")}
    (out / "data/meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", type=Path, help="a built cache (a published link or a build folder)")
    ap.add_argument("dst", type=Path, help="the folder to write (must not exist, unless --force)")
    ap.add_argument("--instances", type=int, required=True, help="N, the number of instances of the new cache")
    ap.add_argument("--jitter", type=float, default=0.02, help="map jitter of repeats, x the coordinates' std")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--force", action="store_true", help="replace DST when it exists")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    try:
        out = inflate(a.src, a.dst, a.instances, a.jitter, a.seed, a.force, progress=not a.quiet)
    except TransferVizError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{out}: {a.instances} instances from {a.src} in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
