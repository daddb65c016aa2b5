"""The input stages: the data, the two models, their forward pass, and the architecture.

data         both domains loaded, aligned, split; images, labels and thumbnails
models       the source model trained and the target model fine-tuned from it (or both loaded)
forward      predictions, losses, embeddings, confusion counts, class table, transferability
architecture the analysed layers chosen from the traced graph (analysis.layers; models/layers.json), which of
             them cut the graph and which consecutive pairs one weight matrix joins (models/graph.json); every
             leaf module's output shape, parameters and weight change
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy.stats import binomtest

from transferviz import data
from transferviz.build.framework import MODELS, BuildContext, file_hash
from transferviz.cache import png_bytes
from transferviz.config import Config, DomainSpec
from transferviz.data import loaders
from transferviz.errors import TransferVizError
from transferviz.graph import ModelGraph, Selection, trace_model
from transferviz.models import (
    TORCHVISION_PREFIX,
    build_model,
    check_input_size,
    head_module,
    load_checkpoint,
    load_init_weights,
    load_state_dict_checked,
    read_checkpoint,
)
from transferviz.preprocess import check_device, to_tensor
from transferviz.training import TrainData, describe_finetuning, epoch_accuracies, train_model

__all__ = [
    "load_domain", "load_domains", "layer_table", "graph_table", "model_graph", "choose_layers",
    "choose_embedding_layer", "relative_change", "module_table", "class_table", "embed",
    "checkpoint_fingerprint", "stage_data", "stage_models", "stage_forward", "stage_architecture",
    "preflight", "check_cache_root", "check_data_paths", "check_model_inputs", "read_history_csv", "MIN_FREE_BYTES",
]


# --- pre-flight: what can be checked before any work starts ----------------------------

#: Free space the cache folder's disk must have for a build to start: a small build writes about 10 MB,
#: the demo 70 MB (a full disk during the build is still caught: one line, the previous cache kept).
MIN_FREE_BYTES = 100 * 2**20


def preflight(cfg: Config, cache_root: Path, device: torch.device) -> None:
    """Checks the device, the cache folder and the model's inputs (the factory, checkpoints, initial weights,
    history CSV, freeze prefixes) now, so that each fault is one line before the data stage, not after it."""
    check_device(device)
    check_cache_root(cache_root)
    check_data_paths(cfg)
    check_model_inputs(cfg)


def check_cache_root(root: Path) -> None:
    """The cache folder exists (or is created), is a folder, can be written (tried, not only asked: root
    passes every permission check but not a read-only mount) and has :data:`MIN_FREE_BYTES` free."""
    fix = "pass --cache-dir a writable folder"
    existing = root
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        raise TransferVizError(f"cache folder {root}: {existing} is a file, not a folder; {fix}")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TransferVizError(f"cache folder {root} cannot be created ({exc.strerror}); {fix}") from None
    for folder in (root, root / ".builds"):
        if folder.is_dir() and not _writable(folder):
            raise TransferVizError(f"cache folder {folder} is not writable by this user; make it writable "
                                   f"or {fix}")
    free = shutil.disk_usage(root).free
    if free < MIN_FREE_BYTES:
        raise TransferVizError(f"cache folder {root} has {free / 2**20:.0f} MB free, less than the "
                               f"{MIN_FREE_BYTES / 2**20:.0f} MB a build needs; free space or pass --cache-dir "
                               "a folder on another disk")


def _writable(folder: Path) -> bool:
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    try:  # an unnamed temporary file where the OS has one: nothing is left behind even if killed
        with tempfile.TemporaryFile(dir=folder, prefix=".write-probe-"):
            return True
    except OSError:
        return False


def check_data_paths(cfg: Config) -> None:
    """Both domains' folders and files exist (their content is the data stage's to read): a typo in a data
    root fails before the other domain is loaded, or rendered."""
    for spec in (cfg.source, cfg.target):
        if spec.kind == "image_folder":
            loaders.check_image_folder(Path(spec.root), spec.domain)
        elif spec.kind == "svhn":
            loaders.check_svhn(Path(spec.root))
        elif spec.kind == "mnist":
            loaders.check_mnist(Path(spec.root))


def check_model_inputs(cfg: Config) -> None:
    """A user's factory, checkpoints, initial weights, history CSV and freeze prefixes, checked against the
    architecture before any data is read. Only what the config names is checked (no model is built for a
    built-in architecture with nothing to check it against)."""
    ck, spec = cfg.checkpoints, cfg.training
    tunes = spec is not None and any(s.freeze or s.head_lr is not None for s in (spec.source, spec.target))
    init = cfg.model.init_weights if ck is None else None  # loading checkpoints, the models stage ignores it
    factory = ":" in cfg.model.arch and not cfg.model.arch.startswith(TORCHVISION_PREFIX)
    if not (factory or ck is not None or init is not None or tunes):
        return
    model = build_model(cfg.model.arch, 2, cfg.model.input_size)  # a factory's errors surface here
    check_input_size(model, cfg.model.arch, cfg.model.input_size)
    if init is not None:
        load_init_weights(model, init)
    if spec is not None and tunes:
        for which, s in (("source", spec.source), ("target", spec.target)):
            describe_finetuning(model, s, which)
    if ck is not None:
        _check_checkpoints(cfg, model)


def _check_checkpoints(cfg: Config, model: torch.nn.Module) -> None:
    """Every checkpoint read safely and checked tensor by tensor against the architecture, its head sized as
    the source checkpoint's (the data stage, which knows the class count, has not run yet)."""
    ck = cfg.checkpoints
    assert ck is not None
    state = read_checkpoint(ck.source, "checkpoints.source")
    head = head_module(model)
    weight = state.get(f"{head}.weight") if head is not None else None
    if isinstance(weight, torch.Tensor) and weight.dim() >= 1 and weight.shape[0] != 2:
        model = build_model(cfg.model.arch, int(weight.shape[0]), cfg.model.input_size)
    load_state_dict_checked(model, state, str(ck.source))
    del state
    for path in (ck.target, *ck.target_epochs):
        load_checkpoint(model, path)
    if ck.history is not None:
        read_history_csv(Path(ck.history))


# --- data ---------------------------------------------------------------------------

def load_domain(spec: DomainSpec, image_size: int, seed: int) -> data.DomainData:
    """One domain as its config describes it, subsampled per class (seeded) to ``max_per_class``."""
    dom = _read_domain(spec, image_size, seed)
    if spec.max_per_class is None:
        return dom
    rng = np.random.default_rng(seed)
    keep = np.sort(np.concatenate([rng.permutation(np.flatnonzero(dom.labels == c))[:spec.max_per_class]
                                   for c in np.unique(dom.labels)]))
    origins = tuple(dom.origins[i] for i in keep) if dom.origins else ()
    return replace(dom, images=dom.images[keep], labels=dom.labels[keep], origins=origins)


def _read_domain(spec: DomainSpec, image_size: int, seed: int) -> data.DomainData:
    if spec.kind == "synthetic_digits":
        return data.synthetic_digits(spec.n_per_class, image_size, seed, grayscale=spec.grayscale, style=spec.style)
    if spec.kind == "sklearn_digits":
        return data.sklearn_digits(image_size)
    if spec.kind == "image_folder":
        return data.image_folder(Path(spec.root), spec.domain, image_size, max_pixels=spec.max_pixels)
    if spec.kind == "svhn":
        return data.svhn(Path(spec.root), spec.per_class, image_size, seed)
    if spec.kind == "mnist":
        return data.mnist(Path(spec.root), spec.per_class, image_size, seed)
    raise TransferVizError(f"unknown domain kind {spec.kind!r}")


def load_domains(cfg: Config) -> tuple[data.DomainData, data.DomainData]:
    """The source and target domains with their classes aligned."""
    src = load_domain(cfg.source, cfg.model.input_size, cfg.seed)
    tgt = load_domain(cfg.target, cfg.model.input_size, cfg.seed + 1)
    return data.align_classes(src, tgt)


def _domain_name(spec: DomainSpec, fallback: str) -> str:
    return getattr(spec, "name", None) or getattr(spec, "domain", None) or fallback


def stage_data(ctx: BuildContext) -> str:
    cfg = ctx.config
    src, tgt = load_domains(cfg)
    n_src, n_tgt = len(src.labels), len(tgt.labels)
    if n_src == 0 or n_tgt == 0:
        raise TransferVizError("a domain has no instances; check the data paths in the config")
    images = np.concatenate([src.images, tgt.images])
    labels = np.concatenate([src.labels, tgt.labels]).astype(np.int64)
    split = np.concatenate([data.stratified_split(src.labels, cfg.val_fraction, cfg.seed),
                            data.stratified_split(tgt.labels, cfg.val_fraction, cfg.seed + 1)])
    classes = list(src.classes)
    df = pd.DataFrame({
        "id": np.arange(len(labels), dtype=np.int64),
        "domain": np.array(["source"] * n_src + ["target"] * n_tgt),
        "split": split.astype(str),
        "label": labels,
        "label_name": np.array(classes, dtype=object)[labels],
    })
    w = ctx.writer
    w.array("data/images.npy", images, "uint8 (N, S, S, 3) RGB images at the model's input size; row = instance id")
    w.table("data/base.parquet", df, "per instance: id, domain, split, label, label_name")
    scale = max(1, 64 // images.shape[1])
    bar = ctx.bar(len(images), "thumbnails", "img")

    def thumbs() -> Iterator[tuple[str, bytes]]:
        for i, img in enumerate(images):
            bar.update(1)
            yield str(i), png_bytes(img, scale)

    w.png_dir("thumbs", thumbs(), f"thumbnail of each instance, '<id>.png', {scale}x nearest upscale")
    bar.close()
    meta = {"classes": classes,
            "domain_names": {"source": _domain_name(cfg.source, "source"),
                             "target": _domain_name(cfg.target, "target")},
            "image_size": int(images.shape[1]),
            "counts": {d: {s: int(((df.domain == d) & (df.split == s)).sum()) for s in ("train", "val")}
                       for d in ("source", "target")},
            "skipped": {"source": src.skipped, "target": tgt.skipped},
            "oversized": {"source": src.oversized, "target": tgt.oversized},
            "converted": {"source": src.converted, "target": tgt.converted}}
    w.json("data/meta.json", meta,
           "classes, domain display names, image size, split counts, skipped (oversized among them)/converted files")
    if "synthetic_digits" in (cfg.source.kind, cfg.target.kind):
        # what the rendered digits depend on besides the config (issue 15), kept in the manifest
        ctx.notes["fonts"] = data.font_provenance()
    h = hashlib.sha256()
    for part in (images.tobytes(), labels.tobytes(), "|".join(split).encode(), "|".join(classes).encode()):
        h.update(part)
    digest = h.hexdigest()[:16]
    oversized = src.oversized + tgt.oversized
    unreadable = src.skipped + tgt.skipped - oversized  # the skipped count includes the oversized
    skipped = [f"{unreadable} unreadable files"] * bool(unreadable) + [f"{oversized} over max_pixels"] * bool(oversized)
    ctx.notes.update(data_hash=digest, skipped_files=meta["skipped"], converted=meta["converted"],
                     summary=f"{n_src} source + {n_tgt} target instances, {len(classes)} classes"
                             + (f", skipped {' and '.join(skipped)}" if skipped else ""))
    if oversized:
        ctx.notes["oversized_files"] = meta["oversized"]
        ctx.notes["warnings"] = [f"skipped {oversized} images with more pixels than their domain's max_pixels "
                                 f"(source {src.oversized}, target {tgt.oversized}); raise max_pixels in the "
                                 "config to use them"]
    return digest


# --- models -------------------------------------------------------------------------

def _split_tensors(ctx: BuildContext) -> TrainData:
    c = ctx.cache
    df = c.table("data/base.parquet")
    x = to_tensor(np.asarray(c.images), ctx.config.model.mean, ctx.config.model.std)
    y = torch.tensor(df["label"].to_numpy(), dtype=torch.long)

    def part(domain: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.from_numpy(np.flatnonzero(((df.domain == domain) & (df.split == split)).to_numpy()))
        return x[idx], y[idx]

    return TrainData(part("source", "train"), part("source", "val"), part("target", "train"), part("target", "val"))


def _new_model(cfg: Config, n_classes: int, check: bool = False) -> torch.nn.Module:
    """The configured architecture, freshly (and reproducibly) initialised; ``check``: one forward pass at the
    configured input size first, so that a too small ``model.input_size`` fails before any training."""
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model.arch, n_classes, cfg.model.input_size)
    if check:
        check_input_size(model, cfg.model.arch, cfg.model.input_size)
    return model


def stage_models(ctx: BuildContext) -> None:
    cfg, w = ctx.config, ctx.writer
    split = _split_tensors(ctx)
    classes = ctx.cache.json("data/meta.json")["classes"]
    device = ctx.device
    rows: list[dict[str, Any]] = []
    notes: list[str] = []  # init_weights, freeze and head_lr: what they did, for the summary
    if cfg.checkpoints is None:
        spec = cfg.training
        assert spec is not None  # the config fills in the default training when no checkpoints are given
        base = _new_model(cfg, len(classes), check=True)
        if cfg.model.init_weights is not None:
            notes.append(load_init_weights(base, cfg.model.init_weights))
        # freeze prefixes and head_lr checked against the model now, not after training the source model
        notes += [line for line in (describe_finetuning(base, spec.source, "source"),
                                    describe_finetuning(base, spec.target, "target")) if line]
        n_src, n_tgt = len(split.source_train[0]), len(split.target_train[0])
        bar = ctx.bar(spec.source.epochs * n_src + spec.target.epochs * n_tgt, "train", "img")

        def trained(n: int) -> None:
            bar.update(n)

        src = train_model(base, "source", split, spec.source, device, cfg.seed, spec.keep_epoch_checkpoints, trained)
        tgt = train_model(src.model, "target", split, spec.target, device, cfg.seed + 1,
                          spec.keep_epoch_checkpoints, trained)
        bar.close()
        source_model, target_model = src.model.cpu().eval(), tgt.model.cpu().eval()
        for k, st in enumerate(src.epoch_states, 1):
            w.weights(f"models/epochs/source_{k:03d}.safetensors", st, f"source model after epoch {k}")
        if tgt.epoch_states:
            w.weights("models/epochs/target_000.safetensors", source_model.state_dict(),
                      "target model at epoch 0 = the source model it starts from")
        for k, st in enumerate(tgt.epoch_states, 1):
            w.weights(f"models/epochs/target_{k:03d}.safetensors", st, f"target model after epoch {k}")
        rows = src.history + tgt.history
    else:
        ck = cfg.checkpoints
        source_model, target_model = _new_model(cfg, len(classes), check=True), _new_model(cfg, len(classes))
        load_checkpoint(source_model, ck.source)
        load_checkpoint(target_model, ck.target)
        for k, p in enumerate(ck.target_epochs, 1):
            m = _new_model(cfg, len(classes))
            load_checkpoint(m, p)
            w.weights(f"models/epochs/target_{k:03d}.safetensors", m.state_dict(),
                      f"target model after epoch {k} ({p})")
        if ck.target_epochs:
            w.weights("models/epochs/target_000.safetensors", source_model.state_dict(),
                      "target model at epoch 0 = the source model")
        if ck.history is not None:
            rows = read_history_csv(Path(ck.history))
        else:
            rows = [epoch_accuracies(source_model.to(device), "source", 1, split, device),
                    epoch_accuracies(target_model.to(device), "target", 1, split, device)]
        source_model, target_model = source_model.cpu().eval(), target_model.cpu().eval()
    w.weights("models/source.safetensors", source_model.state_dict(), "final source model weights")
    w.weights("models/target.safetensors", target_model.state_dict(), "final target model weights")
    hist = pd.DataFrame(rows)
    for col in ("source_val", "target_val"):
        if col not in hist:
            hist[col] = np.nan
    hist = hist[["epoch", "model", "source_train", "target_train", "val", "source_val", "target_val"]]
    w.table("models/history.parquet", hist, "per model and epoch: accuracy on source train, target train, "
            "own-domain val (the paper's six series), plus source_val and target_val")
    # models/layers.json (the analysed layers) is the architecture stage's: it follows analysis.layers
    last = hist.groupby("model").tail(1).set_index("model")
    ctx.notes["final_accuracy"] = last.to_dict(orient="index")
    warnings = [line for which, (_, labels) in (("source", split.source_val), ("target", split.target_val))
                if (line := chance_warning(which, float(last.loc[which, "val"]), labels.numpy()))]
    if warnings:
        ctx.notes["warnings"] = warnings
    ctx.notes["summary"] = "; ".join(
        [f"source val {last.loc['source', 'val']:.3f}, target val {last.loc['target', 'val']:.3f}, "
         f"source on target val {last.loc['source', 'target_val']:.3f}"] + notes)
    if notes:
        ctx.notes["model_setup"] = notes


def chance_warning(which: str, accuracy: float, labels: np.ndarray, alpha: float = 0.01) -> str | None:
    """A one-line warning when a model's own-domain validation accuracy is no better than chance.

    Chance is the majority class's share of the validation labels (what always answering that class
    scores; 1/K for balanced classes), and "no better" is a one-sided binomial test at ``alpha``: on a
    small validation split a few lucky answers must not pass for learning. Every analysis of a model
    that learned nothing describes noise, so the build says so loudly rather than analyse it silently.
    """
    n = int(len(labels))
    if n == 0 or not np.isfinite(accuracy):
        return None
    chance = float(np.bincount(labels).max() / n)
    correct = int(round(accuracy * n))
    p = float(binomtest(correct, n, chance, alternative="greater").pvalue)
    if p < alpha:
        return None
    return (f"the {which} model is at chance level: validation accuracy {accuracy:.3f} on {n} images, "
            f"chance {chance:.3f} (binomial p = {p:.2f}); its analyses describe noise -- train it longer, "
            f"with another learning rate, or check its data")


HISTORY_COLUMNS = ("epoch", "model", "source_train", "target_train", "val")
_ACCURACIES = ("source_train", "target_train", "val", "source_val", "target_val")


def read_history_csv(path: Path) -> list[dict[str, Any]]:
    """The rows of ``checkpoints.history``, checked: the columns of :data:`HISTORY_COLUMNS` (``source_val`` and
    ``target_val`` optional), rows for both models, integer epochs and accuracies between 0 and 1. Any fault
    is one line naming the file, and the column and row where it lies."""
    fix = "fix checkpoints.history in the config"
    if not path.is_file():
        raise TransferVizError(f"history CSV {path} does not exist; {fix}")
    if path.stat().st_size == 0:
        raise TransferVizError(f"history CSV {path} is empty; write its header {','.join(HISTORY_COLUMNS)} and a "
                               "row per model and epoch")
    try:
        df = pd.read_csv(path, skipinitialspace=True)
    except (ValueError, UnicodeDecodeError, OSError) as exc:  # pandas' parser and decoding errors
        reason = " ".join(str(exc).split())[:160]
        raise TransferVizError(f"history CSV {path} cannot be read as CSV ({reason}); {fix}") from None
    missing = [c for c in HISTORY_COLUMNS if c not in df.columns]
    if missing:
        raise TransferVizError(f"history CSV {path} lacks columns {missing}; expected {', '.join(HISTORY_COLUMNS)}")
    if df.empty:
        raise TransferVizError(f"history CSV {path} has a header but no rows; add a row per model and epoch")
    bad = sorted(set(map(str, df["model"])) - set(MODELS))
    if bad:
        raise TransferVizError(f"history CSV {path}: column 'model' has {bad}; allowed: source, target")
    for which in MODELS:
        if not (df["model"] == which).any():
            raise TransferVizError(f"history CSV {path} has no rows for the {which} model; "
                                   "give a row per epoch of both models")
    for col in ("epoch", *(c for c in _ACCURACIES if c in df.columns)):
        values = pd.to_numeric(df[col], errors="coerce")
        optional = col in ("source_val", "target_val")
        wrong = values.isna() & ~(optional & df[col].isna())
        if col == "epoch":
            wrong |= values.notna() & ((values % 1 != 0) | (values < 0))
            what = "a whole number >= 0"
        else:
            wrong |= (values < 0) | (values > 1)
            what = "an accuracy between 0 and 1"
        if wrong.any():
            i = int(np.flatnonzero(wrong.to_numpy())[0])
            raise TransferVizError(f"history CSV {path} line {i + 2}: column {col!r} is {str(df[col].iloc[i])!r}, "
                                   f"not {what}; {fix}")
        df[col] = values.astype(np.int64) if col == "epoch" else values.astype(np.float64)
    return [{str(k): v for k, v in row.items()} for row in df.to_dict(orient="records")]


def checkpoint_fingerprint(cfg: Config) -> dict[str, str]:
    """Content hashes of the checkpoint files the models stage reads, so replacing one rebuilds it."""
    out: dict[str, str] = {}
    if cfg.model.init_weights is not None and Path(cfg.model.init_weights).is_file():
        out["init_weights"] = file_hash(Path(cfg.model.init_weights))
    if cfg.checkpoints is not None:
        for name in ("source", "target", "history"):
            p = getattr(cfg.checkpoints, name)
            if p is not None and Path(p).is_file():
                out[name] = file_hash(Path(p))
        for i, p in enumerate(cfg.checkpoints.target_epochs):
            if Path(p).is_file():
                out[f"epoch{i}"] = file_hash(Path(p))
    return out


def model_graph(cfg: Config, model: torch.nn.Module) -> ModelGraph:
    """The traced graph of ``model`` at the configured input size (:mod:`transferviz.graph`)."""
    return trace_model(model, cfg.model.input_size, 3)


def choose_layers(cfg: Config, graph: ModelGraph) -> Selection:
    """The analysed layers ``analysis.layers`` asks for (a preset or a checked list) and why."""
    return graph.select(cfg.analysis.layers)


def choose_embedding_layer(cfg: Config, graph: ModelGraph) -> str:
    """``analysis.embedding_layer`` (checked), or the first linear layer taking an (N, F) input."""
    name = cfg.analysis.embedding_layer
    if name is not None:
        if name not in graph.module_types or name == "":
            raise TransferVizError(f"analysis.embedding_layer {name!r} is not a module of the model "
                                   "(module paths look like 'fc' or 'classifier.1')")
        if name not in graph.modules:
            raise TransferVizError(f"analysis.embedding_layer {name!r} never runs in the model's forward pass")
        return name
    found = graph.embedding_layer()
    if found is None:
        raise TransferVizError("the model has no nn.Linear layer to take an embedding before; "
                               "set analysis.embedding_layer in the config")
    return found


def layer_table(target: torch.nn.Module, source: torch.nn.Module, cfg: Config, n_classes: int,
                graph: ModelGraph | None = None, layers: list[str] | None = None) -> dict[str, Any]:
    """Analysed layers with type, output shape, neurons, parameters and relative L2 weight change.

    A conv or linear layer's change is its weight's (as ever); a block's is that of all its parameters.
    """
    graph = graph or model_graph(cfg, target)
    layers = layers if layers is not None else choose_layers(cfg, graph).layers
    emb = choose_embedding_layer(cfg, graph)
    mods_t, mods_s = dict(target.named_modules()), dict(source.named_modules())
    rows = []
    for i, name in enumerate(layers, 1):
        mt, ms = mods_t[name], mods_s[name]
        shape = graph.modules[name].shape
        assert shape is not None  # a selected layer returns one tensor
        if isinstance(mt, (torch.nn.Conv2d, torch.nn.Linear)):
            drift: float | None = relative_change([mt.weight], [ms.weight])
        else:
            params = list(mt.parameters())
            drift = relative_change(params, ms.parameters()) if params else None
        rows.append({"name": name, "number": i, "type": type(mt).__name__, "output_shape": list(shape),
                     "neurons": int(shape[0]), "params": int(sum(p.numel() for p in mt.parameters())),
                     "weight_change": drift})
    all_modules = [{"name": n, "type": type(m).__name__,
                    "params": int(sum(p.numel() for p in m.parameters(recurse=False)))}
                   for n, m in target.named_modules() if n and not list(m.children())]
    return {"layers": [r["name"] for r in rows], "detail": rows, "embedding_layer": emb, "modules": all_modules,
            "num_classes": n_classes}


def graph_table(graph: ModelGraph, selection: Selection) -> dict[str, Any]:
    """What ``models/graph.json`` holds: how the layers were found and chosen, which cut the graph, the links."""
    return {"selection": {"requested": selection.requested, "used": selection.used, "reason": selection.reason},
            **graph.summary(selection.layers)}


def relative_change(target: Iterable[torch.Tensor], source: Iterable[torch.Tensor]) -> float:
    """Relative L2 change ``||Wt - Ws|| / ||Ws||`` of the given tensors taken together (one long vector)."""
    t = torch.cat([p.detach().flatten().cpu() for p in target])
    s = torch.cat([p.detach().flatten().cpu() for p in source])
    return float((t - s).norm() / s.norm().clamp_min(1e-12))


# --- forward ------------------------------------------------------------------------

@torch.no_grad()
def embed(model: torch.nn.Module, layer: str, x: torch.Tensor, device: torch.device,
          batch: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and the (flattened) input of ``layer`` for every instance."""
    module = dict(model.named_modules())[layer]
    captured: list[torch.Tensor] = []
    h = module.register_forward_hook(lambda m, i, o: captured.append(torch.flatten(i[0], 1).float().cpu()))
    model = model.to(device).eval()
    logits = []
    try:
        for i in range(0, len(x), batch):
            logits.append(model(x[i:i + batch].to(device)).float().cpu())
    finally:
        h.remove()
    return torch.cat(logits), torch.cat(captured)


#: Instances per checkpointed chunk of the forward passes (a multiple of ``embed``'s batch, so a split
#: build computes every instance in the same batch as a single process: bitwise equal results).
FORWARD_CHUNK = 4096


def forward_rows(ctx: BuildContext, name: str, models: dict[str, torch.nn.Module], layer: str,
                 desc: str) -> dict[str, tuple[torch.Tensor, torch.Tensor]] | None:
    """Logits and ``layer``'s input (the embedding) of every instance for each of ``models``, computed in
    checkpointed chunks split across the build's processes; on rank 0, None on the others."""
    x = ctx.inputs()

    def chunk(rows: range) -> dict[str, np.ndarray]:
        out = {}
        for which, model in models.items():
            logits, emb = embed(model, layer, x[rows.start:rows.stop], ctx.device)
            out[f"{which}/logits"], out[f"{which}/embedding"] = logits.numpy(), emb.numpy()
        return out

    merged = ctx.rows(name, len(x), chunk, rows_per_chunk=FORWARD_CHUNK, desc=desc, unit="inst")
    if merged is None:
        return None
    return {which: (torch.from_numpy(np.asarray(merged[f"{which}/logits"])),
                    torch.from_numpy(np.asarray(merged[f"{which}/embedding"]))) for which in models}


def stage_forward(ctx: BuildContext) -> None:
    c, w = ctx.cache, ctx.writer
    df = c.table("data/base.parquet")
    classes = c.json("data/meta.json")["classes"]
    y = torch.tensor(df["label"].to_numpy(), dtype=torch.long)
    models = ctx.models()
    # the architecture stage records it in models/layers.json; chosen here the same way, since this stage
    # does not depend on the analysed layers (changing analysis.layers keeps the forward stage)
    emb_layer = choose_embedding_layer(ctx.config, model_graph(ctx.config, models["target"]))
    outputs = forward_rows(ctx, "forward", {str(k): m for k, m in models.items()}, emb_layer, "forward passes")
    if outputs is None:
        return  # another rank of a torchrun build: rank 0 writes the artifacts
    for which in MODELS:
        logits, emb = outputs[which]
        prob = logits.softmax(1)
        df[f"{which}_pred"] = logits.argmax(1).numpy().astype(np.int64)
        df[f"{which}_loss"] = F.cross_entropy(logits, y, reduction="none").numpy().astype(np.float32)
        df[f"{which}_conf"] = prob.max(1).values.numpy().astype(np.float32)
        w.array(f"analysis/embedding/{which}.npy", emb.numpy().astype(np.float32),
                f"{which} model's activation at the input of {emb_layer} (the embedding), (N, D)")
    df["pred_changed"] = df["source_pred"] != df["target_pred"]
    w.table("data/instances.parquet", df, "per instance: id, domain, split, label, label_name, and for each model "
            "pred, loss, conf (probability of the predicted class); pred_changed")
    k = len(classes)
    conf = np.zeros((2, 2, k, k), dtype=np.int64)
    for mi, which in enumerate(MODELS):
        for di, dom in enumerate(("source", "target")):
            sub = df[df.domain == dom]
            np.add.at(conf[mi, di], (sub.label.to_numpy(), sub[f"{which}_pred"].to_numpy()), 1)
    w.array("analysis/confusion.npy", conf,
            "confusion counts (model[source,target], domain[source,target], true, predicted) over all instances")
    table = class_table(df, classes)
    w.table("analysis/class_table.parquet", table, "the paper's confusion table on the target validation set")
    hist = c.table("models/history.parquet")
    best_t = hist.loc[hist.model == "target", "target_val"].max()
    best_s = hist.loc[hist.model == "source", "target_val"].max()
    score = float(best_t - best_s)
    w.json("analysis/summary.json", {"transferability": score, "best_target_on_target": float(best_t),
                                     "best_source_on_target": float(best_s)},
           "transferability score = best target-model accuracy minus best source-model accuracy, on target val")
    ctx.notes["summary"] = f"transferability {score:+.3f}"


def class_table(df: pd.DataFrame, classes: list[str]) -> pd.DataFrame:
    """Per class, on the target validation set: both accuracies, their difference, the confusions."""
    val = df[(df.domain == "target") & (df.split == "val")]
    rows = []
    for ci, name in enumerate(classes):
        sub = val[val.label == ci]
        n = len(sub)
        acc_s = float((sub.source_pred == ci).mean()) if n else float("nan")
        acc_t = float((sub.target_pred == ci).mean()) if n else float("nan")
        wrong = sub.loc[sub.target_pred != ci, "target_pred"].value_counts()
        wrong_s = sub.loc[sub.source_pred != ci, "source_pred"].value_counts()
        rows.append({"class": name, "class_index": ci, "n": n, "source_acc": acc_s, "target_acc": acc_t,
                     "diff": acc_t - acc_s,
                     "mistaken_for": ", ".join(f"{classes[int(p)]} ({int(cnt)})" for p, cnt in wrong.items()),
                     "source_mistaken_for": ", ".join(f"{classes[int(p)]} ({int(cnt)})" for p, cnt in wrong_s.items())})
    return pd.DataFrame(rows)


# --- architecture ---------------------------------------------------------------------

def module_table(target: torch.nn.Module, source: torch.nn.Module, x: torch.Tensor,
                 analysed: list[str]) -> list[dict[str, Any]]:
    """Every leaf module of ``target`` in forward order with its output shape on ``x`` (no batch
    dimension), trainable parameters, analysed-layer number and relative L2 weight change from ``source``.

    Forward order is the order of first calls (a module called twice keeps its first shape);
    leaf modules the forward pass never calls come last with ``output_shape`` None.
    """
    leaves = {n: m for n, m in target.named_modules() if n and not list(m.children())}
    shapes: dict[str, list[int] | None] = {}

    def record(name: str) -> Callable[[torch.nn.Module, Any, Any], None]:
        def hook(mod: torch.nn.Module, inp: Any, out: Any) -> None:  # returning a value would replace the output
            if name not in shapes:
                shapes[name] = list(out.shape[1:]) if isinstance(out, torch.Tensor) else None
        return hook

    hooks = [m.register_forward_hook(record(n)) for n, m in leaves.items()]
    device = next(target.parameters(), torch.empty(0)).device  # the forward stage may have moved it
    try:
        with torch.no_grad():
            target.eval()(x.to(device))
    finally:
        for h in hooks:
            h.remove()
    source_modules = dict(source.named_modules())
    number = {n: i for i, n in enumerate(analysed, 1)}
    rows = []
    for name in [*shapes, *(n for n in leaves if n not in shapes)]:
        params = list(leaves[name].parameters())
        rows.append({"name": name, "type": type(leaves[name]).__name__, "output_shape": shapes.get(name),
                     "params": int(sum(p.numel() for p in params if p.requires_grad)),
                     "analysed": name in number, "number": number.get(name),
                     "weight_change": relative_change(params, source_modules[name].parameters()) if params else None})
    return rows


def stage_architecture(ctx: BuildContext) -> None:
    c, w, cfg = ctx.cache, ctx.writer, ctx.config
    models = ctx.models()
    graph = model_graph(cfg, models["target"])
    selection = choose_layers(cfg, graph)
    table = layer_table(models["target"], models["source"], cfg, len(c.classes), graph, selection.layers)
    w.json("models/layers.json", table,
           "analysed layers in order, the embedding layer, and per-layer shapes, parameters and weight drift")
    info = graph_table(graph, selection)
    w.json("models/graph.json", info,
           "how the analysed layers were found (method: fx or hooks) and chosen (selection: preset and reason), "
           "each layer's kind and whether it cuts the graph, and per consecutive pair whether one weight "
           "matrix joins them (links: from_layer, to_layer, linked, reason, weights)")
    rows = module_table(models["target"], models["source"], c.inputs([0]), selection.layers)
    ctx.writer.json("models/modules.json", rows,
                    "every leaf module in forward order: name, type, output_shape (one instance, no batch dim), "
                    "trainable params, analysed and its layer number, weight_change = relative L2 change "
                    "source -> target of all its parameters (null without parameters)")
    total = sum(r["params"] for r in rows)
    unlinked = [lk for lk in info["links"] if not lk["linked"]]
    not_cut = [r["name"] for r in info["layers"] if not r["cut"]]
    ctx.notes["layers"] = selection.reason
    ctx.notes["summary"] = "; ".join(
        [f"{len(rows)} modules, {total:,} trainable parameters", selection.reason,
         f"{len(info['links']) - len(unlinked)} of {len(info['links'])} consecutive pairs joined by weights"]
        + ([f"{len(not_cut)} layers inside branches (not cuts)"] if not_cut else [])
        + ([graph.note] if graph.note else []))
