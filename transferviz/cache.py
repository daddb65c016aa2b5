"""The cache: the contract between the build and the dashboard.

Layout (``docs/cache.md`` documents every artifact)::

    cache/<run>            -> symlink to cache/.builds/<run>-<build id>/
    cache/.builds/<run>-<build id>/manifest.json, data/, models/, analysis/, thumbs/

A build writes into a fresh folder under ``.builds`` and publishes it by
atomically replacing the ``<run>`` symlink (``os.replace``), so readers never see
half a cache and a failed or interrupted build leaves the previous one in place.
Arrays are ``.npy`` (opened memory-mapped), tables Parquet, weights safetensors,
images PNG, metadata JSON: no pickle anywhere.
"""

from __future__ import annotations

import io
import json
import os
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

SCHEMA_VERSION = 1
BUILDS_DIR = ".builds"
ModelName = Literal["source", "target"]

__all__ = ["Cache", "CacheWriter", "SCHEMA_VERSION", "publish", "new_build_dir", "ModelName"]


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

    def _target(self, rel: str) -> Path:
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def array(self, rel: str, arr: np.ndarray, meaning: str) -> None:
        arr = np.ascontiguousarray(arr)
        np.save(self._target(rel), arr, allow_pickle=False)
        self.artifacts[rel] = Artifact(rel, "array", meaning, str(arr.dtype), list(arr.shape))

    def table(self, rel: str, df: pd.DataFrame, meaning: str) -> None:
        df.to_parquet(self._target(rel), index=False)
        self.artifacts[rel] = Artifact(rel, "table", meaning, None, [len(df), len(df.columns)])

    def json(self, rel: str, obj: Any, meaning: str) -> None:
        self._target(rel).write_text(json.dumps(obj, indent=1, default=_json_default))
        self.artifacts[rel] = Artifact(rel, "json", meaning)

    def weights(self, rel: str, state: dict, meaning: str) -> None:
        from safetensors.torch import save_file

        save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(self._target(rel)))
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


def _link_or_copy(src: str | Path, dst: str | Path) -> None:
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

def new_build_dir(cache_root: Path, run: str) -> Path:
    # time for humans, pid and a random tag so two builds in one second never collide
    d = cache_root / BUILDS_DIR / f"{run}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    d.mkdir(parents=True, exist_ok=False)
    return d


def current_build(cache_root: Path, run: str) -> Path | None:
    """The published build folder of ``run``, if any (following the symlink)."""
    link = cache_root / run
    if link.is_symlink() or link.is_dir():
        real = link.resolve()
        if (real / "manifest.json").is_file():
            return real
    return None


def publish(cache_root: Path, run: str, build: Path, keep: int = 2) -> Path:
    """Atomically points ``cache_root/run`` at ``build``; keeps the newest ``keep`` builds."""
    link = cache_root / run
    if link.exists() and not link.is_symlink():
        # A plain folder (e.g. copied by hand): move it aside so the symlink can take its place.
        link.rename(cache_root / BUILDS_DIR / f"{run}-moved-{time.strftime('%Y%m%d-%H%M%S')}")
    tmp_link = cache_root / f".{run}.link-{os.getpid()}"
    if tmp_link.is_symlink():
        tmp_link.unlink()
    tmp_link.symlink_to(os.path.relpath(build, cache_root))
    os.replace(tmp_link, link)  # the atomic step
    prune_builds(cache_root, run, keep)
    return link


def prune_builds(cache_root: Path, run: str, keep: int = 2) -> None:
    """Deletes old or unfinished builds of ``run`` except the newest ``keep`` finished ones.

    The previous build is kept so a dashboard still reading it is not pulled out from under.
    """
    builds_root = cache_root / BUILDS_DIR
    if not builds_root.is_dir():
        return
    live = current_build(cache_root, run)
    mine = sorted((d for d in builds_root.iterdir() if d.name.startswith(f"{run}-") and d.is_dir()),
                  key=lambda d: d.stat().st_mtime, reverse=True)
    finished = [d for d in mine if (d / "manifest.json").is_file()]
    keep_set = set(finished[:keep]) | ({live} if live else set())
    for d in mine:
        if d in keep_set:
            continue
        if not (d / "manifest.json").is_file() and time.time() - d.stat().st_mtime < 60:
            continue  # maybe another build in progress right now
        shutil.rmtree(d, ignore_errors=True)


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
        rebuild = "rebuild it with 'transferviz build CONFIG --force'"
        try:
            manifest = json.loads(mf.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:  # truncated or overwritten by hand
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
        """Whether the file or folder is on disk (an optional artifact, or one a user removed)."""
        return (self.root / rel).exists()

    def array(self, rel: str, mmap: bool = True) -> np.ndarray:
        """The array at ``rel``: memory-mapped read-only (kept per cache object), or loaded
        into memory with ``mmap=False``."""
        if mmap:
            return self.memo(("array", rel), lambda: self._load_array(rel, mmap=True))
        return self._load_array(rel, mmap=False)

    def _load_array(self, rel: str, mmap: bool) -> np.ndarray:
        p = self.root / rel
        if not p.is_file():
            raise TransferVizError(f"cache {self.root} lacks {rel}; rebuild it with 'transferviz build CONFIG'")
        return np.load(p, mmap_mode="r" if mmap else None, allow_pickle=False)

    def _optional_array(self, rel: str) -> np.ndarray | None:
        return self.array(rel) if self._exists(rel) else None

    def table(self, rel: str) -> pd.DataFrame:
        p = self.root / rel
        if not p.is_file():
            raise TransferVizError(f"cache {self.root} lacks {rel}; rebuild it with 'transferviz build CONFIG'")
        return pd.read_parquet(p)

    def _optional_table(self, rel: str) -> pd.DataFrame | None:
        return self.table(rel) if self._exists(rel) else None

    def json(self, rel: str) -> Any:
        return json.loads((self.root / rel).read_text())

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
        """Per instance: id, domain, split, label, label_name and each model's pred, loss and conf."""
        rel = "data/instances.parquet" if (self.root / "data/instances.parquet").is_file() else "data/base.parquet"
        return self.table(rel)

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
        p = self.root / "thumbs" / f"{int(instance_id)}.png"
        if not p.is_file():
            raise TransferVizError(f"no thumbnail for instance {instance_id} in {self.root}")
        return p.read_bytes()

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

    def discriminability(self, which: ModelName, cls: str | int) -> dict[str, Any]:
        """Algorithm 1 for the class: summary row, neurons (u, biplot axes) and instance coordinates."""
        ci = self.class_index(cls)
        base = f"analysis/discriminability/{which}"
        pick = lambda df: df[df.class_index == ci].reset_index(drop=True)  # noqa: E731
        summary = pick(self.table(f"{base}/summary.parquet"))
        return {"summary": summary.iloc[0].to_dict() if len(summary) else {},
                "neurons": pick(self.table(f"{base}/neurons.parquet")),
                "points": pick(self.table(f"{base}/points.parquet"))}

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
        p = self.root / "featvis" / which / layer / f"{int(neuron)}.png"
        return p.read_bytes() if p.is_file() else None

    @property
    @_memoized
    def feature_change(self) -> pd.DataFrame | None:
        """Per rendered neuron, how its visualization changed through fine-tuning (None without featvis)."""
        p = self.root / "featvis" / "change.parquet"
        return pd.read_parquet(p) if p.is_file() else None

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
