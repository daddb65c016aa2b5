"""The cache: the contract between the pipeline and the dashboard.

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
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable, Literal

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
            self.artifacts[a["path"]] = Artifact(**{k: a.get(k) for k in ("path", "kind", "meaning", "dtype", "shape")})


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

class Cache:
    """Read-only access to a built cache. Arrays come back memory-mapped.

    >>> c = Cache.open("cache/digits")          # doctest: +SKIP
    >>> c.instances.head(); c.layers; c.model("target")
    """

    def __init__(self, root: Path, manifest: dict[str, Any]) -> None:
        self.root = root
        self.manifest = manifest
        # read-only memory maps by relative path: np.load re-reads the header and re-maps the
        # file (~0.2-0.7 ms), and a dashboard figure touches dozens of arrays per request
        self._maps: dict[str, np.ndarray] = {}

    @classmethod
    def open(cls, path: str | Path) -> "Cache":
        p = Path(path)
        root = p.resolve()
        mf = root / "manifest.json"
        if not mf.is_file():
            raise TransferVizError(f"no cache at {p} (no manifest.json); build one with "
                                   "'transferviz build configs/digits.yaml'")
        manifest = json.loads(mf.read_text())
        version = manifest.get("schema_version")
        if version != SCHEMA_VERSION:
            raise TransferVizError(f"cache {p} has schema version {version}, this transferviz reads "
                                   f"{SCHEMA_VERSION}; rebuild it with 'transferviz build CONFIG --force'")
        return cls(root, manifest)

    # -- generic access
    def has(self, rel: str) -> bool:
        return rel in self.manifest.get("artifacts", {}) or (self.root / rel).exists()

    def array(self, rel: str, mmap: bool = True) -> np.ndarray:
        """The array at ``rel``: memory-mapped read-only (kept per cache object), or loaded
        into memory with ``mmap=False``."""
        if mmap and rel in self._maps:
            return self._maps[rel]
        p = self.root / rel
        if not p.is_file():
            raise TransferVizError(f"cache {self.root} lacks {rel}; rebuild it with 'transferviz build CONFIG'")
        arr = np.load(p, mmap_mode="r" if mmap else None, allow_pickle=False)
        if mmap:
            self._maps[rel] = arr
        return arr

    def table(self, rel: str) -> pd.DataFrame:
        p = self.root / rel
        if not p.is_file():
            raise TransferVizError(f"cache {self.root} lacks {rel}; rebuild it with 'transferviz build CONFIG'")
        return pd.read_parquet(p)

    def json(self, rel: str) -> Any:
        return json.loads((self.root / rel).read_text())

    # -- run-level metadata
    @property
    def name(self) -> str:
        return self.manifest["config"]["name"]

    @property
    def config(self) -> dict[str, Any]:
        return self.manifest["config"]

    @cached_property
    def meta(self) -> dict[str, Any]:
        return self.json("data/meta.json")

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])

    @property
    def layers(self) -> list[str]:
        """Analysed layers in forward order (the paper's Layer 1..L)."""
        return list(self.layer_info["layers"])

    @cached_property
    def layer_info(self) -> dict[str, Any]:
        """Analysed layers, per-layer detail (type, shape, neurons, weight change) and the embedding layer."""
        return self.json("models/layers.json")

    def modules(self) -> list[dict[str, Any]] | None:
        """Every leaf module in forward order (name, type, output_shape, params, analysed, number,
        weight_change), or None for a cache built before the architecture stage existed."""
        p = self.root / "models" / "modules.json"
        return json.loads(p.read_text()) if p.is_file() else None

    @property
    def domains(self) -> dict[str, str]:
        return dict(self.meta["domain_names"])

    @cached_property
    def instances(self) -> pd.DataFrame:
        """Per instance: id, domain, split, label, label_name and each model's pred, loss and conf."""
        rel = "data/instances.parquet" if (self.root / "data/instances.parquet").is_file() else "data/base.parquet"
        return self.table(rel)

    @cached_property
    def history(self) -> pd.DataFrame:
        return self.table("models/history.parquet")

    @cached_property
    def images(self) -> np.ndarray:
        """uint8 (N, S, S, 3) images at the model's input size, row i = instance id i."""
        return self.array("data/images.npy")

    def inputs(self, ids: Iterable[int] | np.ndarray):
        """The preprocessed tensor exactly as the models see those instances."""
        from transferviz.preprocess import to_tensor

        idx = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.int64)
        m = self.config["model"]
        return to_tensor(np.asarray(self.images[idx]), m["mean"], m["std"])

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

    def important_weights(self, which: ModelName, layer_i: str, layer_j: str, cls: str | int) -> pd.DataFrame:
        """Important weights ``layer_i -> layer_j`` of the class (5.3.1 B); target rows carry 'corresponds'."""
        self._check_pair(layer_i, layer_j)
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

    @cached_property
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

    def tsne(self) -> np.ndarray:
        """(N, 2) t-SNE map of the target model's embeddings."""
        return self.array("analysis/tsne.npy")

    def pixel_tsne(self) -> np.ndarray | None:
        """(N, 2) t-SNE map of the instances' raw pixels; None for caches built before that stage."""
        rel = "analysis/pixel_tsne.npy"
        return self.array(rel) if (self.root / rel).is_file() else None

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

    def timeline_accuracy(self) -> pd.DataFrame:
        """Per epoch, class_index and domain: accuracy, n, val_accuracy."""
        return self.table("analysis/timeline/accuracy.parquet")

    def timeline_drift(self) -> pd.DataFrame:
        """Per epoch and layer: mean_cos and min_cos of the neurons' incoming weights to the source's."""
        return self.table("analysis/timeline/drift.parquet")

    @cached_property
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

    def featvis(self, which: ModelName, layer: str, neuron: int) -> bytes | None:
        """PNG of the neuron's feature visualization, or None when the cache has none."""
        p = self.root / "featvis" / which / layer / f"{int(neuron)}.png"
        return p.read_bytes() if p.is_file() else None

    @cached_property
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
        im = im.resize((im.width * scale, im.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=False)
    return buf.getvalue()
