"""``transferviz featvis CACHE --layer L --neurons 3,17,40-45``: renders neurons the build left out.

The build renders only the neurons the views show (:func:`transferviz.build.analysis.featvis_neurons`);
this adds others later without breaking the cache's guarantees (issue 15): a published build never
changes in place. Under the run's build lock, a new build folder gets hard links to every file of the
published build except the two it rewrites (``featvis/change.parquet``, ``featvis/meta.json``), the new
PNGs, and a manifest whose records say so; it is then published atomically like a build, and a running
dashboard switches to it at its next page load (:mod:`dashboard.live`).

The images equal what the featvis stage would have rendered: a neuron's render depends only on
``(seed, layer, index)`` and the settings, which come from the build (``featvis/meta.json``, else its config).
The change table is recomputed over every neuron rendered in both models, from the PNGs (an integer
nearest-neighbour upscale, decoded back exactly), so its gray cut-off and most-changed ranks are the ones
the stage would have found for the enlarged set.
"""

from __future__ import annotations

import io
import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from transferviz.cache import (
    BUILDS_DIR,
    Artifact,
    Cache,
    CacheWriter,
    ModelName,
    current_build,
    new_build_dir,
    publish,
    run_lock,
)
from transferviz.errors import TransferVizError

__all__ = ["AddReport", "add_neurons", "parse_neurons", "run_link"]

#: The artifacts this command rewrites (never written through: in the new folder they are fresh files).
REWRITTEN = ("featvis/change.parquet", "featvis/meta.json")


@dataclass
class AddReport:
    link: Path
    build_dir: Path | None  # None when every asked neuron was already rendered (nothing published)
    rendered: dict[ModelName, list[int]]  # model -> the neurons rendered now
    already: dict[ModelName, list[int]]  # model -> the asked neurons the cache already had
    seconds: float

    def summary(self) -> str:
        if self.build_dir is None:
            return f"{self.link}: every asked neuron is already rendered; nothing to do"
        done = "; ".join(f"{m}: {len(v)} rendered" + (f", {len(self.already[m])} already there"
                                                    if self.already[m] else "")
                         for m, v in self.rendered.items())
        return f"published {self.link} -> {self.build_dir.name} in {self.seconds:.1f} s ({done})"


def parse_neurons(spec: str) -> list[int]:
    """``"3,17,40-45"`` -> ``[3, 17, 40, 41, 42, 43, 44, 45]`` (sorted, without repeats)."""
    out: set[int] = set()
    for part in (p.strip() for p in str(spec).split(",")):
        if not part:
            continue
        lo, dash, hi = part.partition("-")
        try:
            a = int(lo)
            b = int(hi) if dash else a
        except ValueError:
            raise TransferVizError(f"--neurons: {part!r} is not a neuron index or range; write e.g. "
                                   "3,17,40-45") from None
        if a < 0 or b < a:
            raise TransferVizError(f"--neurons: {part!r} is not an increasing range of indices >= 0; write "
                                   "e.g. 40-45")
        out.update(range(a, b + 1))
    if not out:
        raise TransferVizError("--neurons: no neuron given; write e.g. 3,17,40-45")
    return sorted(out)


def run_link(path: str | Path) -> tuple[Path, str]:
    """``(cache root, run)`` of the run's link ``cache/<run>`` (a symlink to ``cache/.builds/<build>``)."""
    p = Path(path)
    parent = p.parent.resolve() if p.parent != Path("") else Path.cwd()
    link = parent / p.name
    if not link.is_symlink() or current_build(parent, p.name) is None \
            or link.resolve().parent != parent / BUILDS_DIR:
        raise TransferVizError(f"{path} is not a run's link (cache/<run> -> cache/{BUILDS_DIR}/<build>); pass "
                               "the link the build made, e.g. cache/digits: a published build never changes in "
                               "place, so new renders go into a new build published at that link")
    return parent, p.name


def check_neurons(cache: Cache, layer: str, neurons: Sequence[int]) -> None:
    """One line for an unknown layer or a neuron index past the layer's size."""
    if layer not in cache.layers:
        raise TransferVizError(f"--layer: unknown layer {layer!r}; analysed layers: {', '.join(cache.layers)}")
    size = int(cache.layer_sizes[layer])
    bad = [n for n in neurons if not 0 <= n < size]
    if bad:
        raise TransferVizError(f"--neurons: {', '.join(map(str, bad[:5]))}{' ...' if len(bad) > 5 else ''} out of "
                               f"range: layer {layer} has {size} neurons (0-{size - 1})")


def settings(cache: Cache) -> dict[str, Any]:
    """The render settings of the cache's feature visualizations: the build's ``featvis/meta.json`` when it
    has one (what its images were made with), else its config's ``featvis`` (and input size)."""
    cfg = cache.config
    if cache.has("featvis/meta.json"):
        meta = cache.json("featvis/meta.json")
        return {"size": int(meta["size"]), "steps": int(meta["steps"]), "lr": float(meta["lr"])}
    fv, model = cfg.get("featvis") or {}, cfg["model"]
    return {"size": int(fv.get("size") or model["input_size"]), "steps": int(fv.get("steps", 64)),
            "lr": float(fv.get("lr", 0.05))}


def add_neurons(path: str | Path, layer: str, neurons: Sequence[int],
                models: Sequence[ModelName] = ("source", "target"), device: torch.device | None = None,
                progress: bool = True, log: Callable[[str], None] = print) -> AddReport:
    """Renders ``neurons`` of ``layer`` in ``models`` into a new build of the run at ``path`` and publishes it
    (see the module docstring); neurons already rendered are left as they are."""
    t0 = time.perf_counter()
    root, run = run_link(path)
    neurons = sorted({int(n) for n in neurons})
    live = current_build(root, run)
    if live is not None:  # a bad argument is refused before the lock (which writes the holder's pid)
        check_neurons(Cache.open(live), layer, neurons)
    with run_lock(root, run):  # no build of the run may publish between our read and our publish
        prev = current_build(root, run)
        if prev is None:  # cannot happen under the lock after run_link, unless the link was removed
            raise TransferVizError(f"{path}: the run's link names no finished build; build it first")
        cache = Cache.open(prev)
        check_neurons(cache, layer, neurons)
        already = {m: [n for n in neurons if n in cache.featvis_neurons(m, layer)] for m in models}
        todo = {m: [n for n in neurons if n not in set(already[m])] for m in models}
        if not any(todo.values()):
            return AddReport(root / run, None, {m: [] for m in models}, already, time.perf_counter() - t0)
        build, writing = new_build_dir(root, run)
        try:
            _write(cache, build, layer, todo, device, progress, log)
            writing.release()  # a finished folder now: readers may lock it once it is published
            publish(root, run, build)
        except BaseException:
            if current_build(root, run) != build.resolve():
                shutil.rmtree(build, ignore_errors=True)
            raise
        finally:
            writing.release()
    return AddReport(root / run, build, todo, already, time.perf_counter() - t0)


def _write(cache: Cache, build: Path, layer: str, todo: dict[ModelName, list[int]], device: torch.device | None,
           progress: bool, log: Callable[[str], None]) -> None:
    # imported here: the build package imports this package (renders, change table)
    from tqdm.auto import tqdm

    from transferviz.build.analysis import featvis_scale, write_featvis_change
    from transferviz.build.framework import progress_to
    from transferviz.cache import png_bytes
    from transferviz.featvis.render import render_neurons

    cfg, s = cache.config, settings(cache)
    arts = cache.manifest["artifacts"]
    writer = CacheWriter(build)
    writer.adopt(cache.root, [a for rel, a in arts.items() if rel not in REWRITTEN])  # hard links
    scale = featvis_scale(s["size"])
    for which, ns in todo.items():
        if not ns:
            continue
        log(f"[featvis] rendering {len(ns)} {which}-model neurons of {layer} ({s['size']} px, {s['steps']} steps)")
        bar = tqdm(total=len(ns), desc=f"  feature visualization ({which})", unit="neuron", disable=not progress,
                   leave=False, mininterval=0.5)
        imgs = render_neurons(cache.model(which), [(layer, n) for n in ns], size=s["size"], steps=s["steps"],
                              lr=s["lr"], seed=int(cfg.get("seed", 0)), mean=cfg["model"]["mean"],
                              std=cfg["model"]["std"], device=device,
                              progress=progress_to(bar))
        bar.close()
        folder = build / "featvis" / which
        for n, img in zip(ns, imgs):
            target = folder / layer / f"{n}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "xb") as f:  # "x": a new file, never one hard-linked to the published build
                f.write(png_bytes(img, scale))
        rel = f"featvis/{which}"
        old = writer.artifacts.get(rel)
        writer.artifacts[rel] = Artifact(rel, "png-dir", old.meaning if old else
                                         f"feature visualization of each rendered {which}-model neuron, "
                                         "'<layer>/<neuron>.png'", None, [sum(1 for _ in folder.rglob("*.png"))])
    both = _rendered_in_both(build, cache.layers)
    if both:
        src = np.stack([_decode(build / "featvis" / "source" / lay / f"{n}.png", scale) for lay, n in both])
        tgt = np.stack([_decode(build / "featvis" / "target" / lay / f"{n}.png", scale) for lay, n in both])
        write_featvis_change(writer, both, src, tgt, s)
    _write_manifest(cache, build, writer, layer, todo)


def _rendered_in_both(build: Path, layers: Sequence[str]) -> list[tuple[str, int]]:
    """``(layer, neuron)`` rendered in both models, in the stage's order (analysed layers, then index)."""
    out: list[tuple[str, int]] = []
    for layer in layers:
        have = [{int(p.stem) for p in (build / "featvis" / m / layer).glob("*.png") if p.stem.isdigit()}
                for m in ("source", "target")]
        out += [(layer, n) for n in sorted(have[0] & have[1])]
    return out


def _decode(path: Path, scale: int) -> np.ndarray:
    """The render a PNG holds: the featvis stage upscales by an integer nearest-neighbour factor, so every
    ``scale``-th pixel is the original one."""
    from PIL import Image

    with Image.open(io.BytesIO(path.read_bytes())) as im:
        arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    return arr[::scale, ::scale]


def _write_manifest(cache: Cache, build: Path, writer: CacheWriter, layer: str,
                    todo: dict[ModelName, list[int]]) -> None:
    """The published manifest with the new records; the featvis stage's record lists the added neurons (a later
    build with unchanged featvis inputs reuses the enlarged set along with the rest of the stage)."""
    manifest = json.loads(json.dumps(cache.manifest))  # a deep copy
    manifest["artifacts"] = {k: a.as_dict() for k, a in sorted(writer.artifacts.items())}
    stage = manifest["stages"].setdefault("featvis", {"key": "", "output_key": "", "seconds": 0.0, "reused": False,
                                                       "artifacts": [], "notes": {}})
    ours = {f"featvis/{m}" for m in todo} | {r for r in REWRITTEN if r in writer.artifacts}
    stage["artifacts"] = sorted(set(stage.get("artifacts", [])) | {r for r in ours if r in writer.artifacts})
    notes = stage.setdefault("notes", {})
    notes.setdefault("added", []).append({"layer": layer, "neurons": {m: v for m, v in todo.items() if v},
                                          "when": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    counts = {m: manifest["artifacts"].get(f"featvis/{m}", {}).get("shape", [0])[0] for m in ("source", "target")}
    built = notes.setdefault("summary_built", notes.get("summary", ""))  # the stage's own line, kept once
    notes["summary"] = "; ".join(x for x in (built, f"neurons added later ('transferviz featvis'): now "
                                             f"{counts['source']} source and {counts['target']} target images") if x)
    (build / "manifest.json").write_text(json.dumps(manifest, indent=1))
