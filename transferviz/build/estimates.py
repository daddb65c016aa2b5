"""The comparison stages of issue 14: transferability estimates before fine-tuning, and layer-level CKA.

transfer  LogME, LEEP, NCE and H-score of the source model alone on the target training data
          (:mod:`transferviz.analysis.transferability`); seconds
cka       linear CKA (unbiased HSIC, minibatched) between every analysed layer of the source model and every
          analysed layer of the target model, on the target data and on the source data
          (:mod:`transferviz.analysis.cka`)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from transferviz.analysis.cka import MinibatchCKA, batches
from transferviz.analysis.transferability import ESTIMATES, h_score_saturated, transfer_estimates
from transferviz.build.framework import BuildContext
from transferviz.build.inputs import (
    check_data_paths,
    choose_embedding_layer,
    embed,
    load_domains,
    model_graph,
)
from transferviz.config import Config
from transferviz.errors import TransferVizError
from transferviz.models import build_model, check_input_size, head_module, load_state_dict_checked, read_checkpoint

__all__ = ["CKA_BATCH", "stage_transfer", "stage_cka", "layer_kernels", "source_estimates", "target_training_data",
           "load_source_checkpoint", "score_checkpoints", "rank_table"]

#: Instances per CKA minibatch. The estimator is unbiased at any size; its spread over reshufflings barely depends
#: on it (3,000 random instances: std 0.0014 at 128, 0.0011 at 256, 0.0008 at 512, around the full-batch 0.649),
#: while the kernels' cost per instance grows with it (a layer's b x b kernel costs b x its width per instance).
CKA_BATCH = 128


# --- transfer ------------------------------------------------------------------------------------------------

def source_estimates(model: torch.nn.Module, embedding_layer: str, x: torch.Tensor, y: np.ndarray,
                     device: torch.device, features: np.ndarray | None = None) -> dict[str, float]:
    """The four estimates of ``model`` (a source model, with its own head) for target instances ``x`` with
    labels ``y``: its softmax over its own classes for LEEP and NCE, the input of ``embedding_layer`` (or the
    given ``features``, the same numbers already computed) for LogME and H-score."""
    logits, emb = embed(model, embedding_layer, x, device)
    prob = torch.softmax(logits.double(), 1).numpy()
    return transfer_estimates(emb.numpy() if features is None else features, prob, y)


def stage_transfer(ctx: BuildContext) -> None:
    c, w = ctx.cache, ctx.writer
    df = c.table("data/base.parquet")
    rows = np.flatnonzero(((df.domain == "target") & (df.split == "train")).to_numpy())
    y = df["label"].to_numpy()[rows]
    model = ctx.models()["source"]
    layer = choose_embedding_layer(ctx.config, model_graph(ctx.config, model))  # as the forward stage chose it
    # the features are the forward stage's stored rows (the embedding the views show); the pass below is for
    # the softmax, which the cache does not keep
    features = np.asarray(c.embedding("source"))[rows]
    est = source_estimates(model, layer, ctx.inputs()[torch.from_numpy(rows)], y, ctx.device, features)
    saturated = h_score_saturated(len(rows), features.shape[1])
    w.json("analysis/transfer/estimates.json",
           {**est, "instances": int(len(rows)), "classes": int(len(np.unique(y))), "embedding_layer": layer,
            "features_dim": int(features.shape[1]), "hscore_saturated": saturated},
           "transferability estimates of the source model alone on the target training split, before "
           "fine-tuning (higher = better): logme (You et al. 2021, mean over classes of the max log evidence / n, "
           "features = the source embedding), leep (Nguyen et al. 2020, from its softmax over source classes), "
           "nce (Tran et al. 2019, -H(Y|Z) with Z its hard predictions), hscore (Bao et al. 2019, embedding); "
           "instances, classes, embedding_layer, features_dim; hscore_saturated: too few instances for the "
           "embedding's dimensions (n <= D + 1), where the H-score is classes - 1 for any features")
    ctx.notes["estimates"] = est
    ctx.notes["summary"] = ", ".join(f"{ESTIMATES[k]} {v:.3f}" for k, v in est.items()) + f" on {len(rows)} " \
        "target training instances" + (f" (H-score uninformative: {len(rows)} instances for {features.shape[1]} "
                                       "dimensions)" if saturated else "")


# --- transferviz score: ranking candidate source models before any fine-tuning --------------------------------

def target_training_data(cfg: Config) -> tuple[torch.Tensor, np.ndarray]:
    """The config's target training split, normalised for the model, and its labels: the same instances in the
    same order as the build's (both domains loaded and class-aligned as the data stage does, split with its
    seed), so a checkpoint scores here exactly as the transfer stage scores the built source model."""
    from transferviz.data import stratified_split
    from transferviz.preprocess import to_tensor

    check_data_paths(cfg)
    _, tgt = load_domains(cfg)
    train = stratified_split(tgt.labels, cfg.val_fraction, cfg.seed + 1) == "train"
    return to_tensor(tgt.images[train], cfg.model.mean, cfg.model.std), tgt.labels[train].astype(np.int64)


def load_source_checkpoint(cfg: Config, path: Path) -> torch.nn.Module:
    """A candidate source model: a state_dict checkpoint of the config's architecture, read safely and checked
    tensor by tensor as ``checkpoints.source`` is (one-line errors), its head sized as the checkpoint's (a
    candidate may have been trained on any number of classes)."""
    arch, size = cfg.model.arch, cfg.model.input_size
    if not path.is_file():  # read_checkpoint's own line points at the config, where these paths are not
        raise TransferVizError(f"checkpoint {path} {'is a folder' if path.is_dir() else 'does not exist'}; "
                               "pass the path of a state_dict file")
    state = read_checkpoint(path, "the checkpoint path")
    template = build_model(arch, 2, size)
    head = head_module(template)
    weight = state.get(f"{head}.weight") if head is not None else None
    if not isinstance(weight, torch.Tensor) or weight.dim() < 1:
        raise TransferVizError(f"checkpoint {path} has no head tensor '{head}.weight': not a state_dict of "
                               f"model arch {arch!r}; pass checkpoints of the config's architecture")
    model = build_model(arch, int(weight.shape[0]), size)
    check_input_size(model, arch, size)
    load_state_dict_checked(model, state, str(path))
    return model.eval()


def score_checkpoints(cfg: Config, paths: Sequence[Path], device: torch.device,
                      log: Callable[[str], None] = print) -> tuple[pd.DataFrame, dict[str, str]]:
    """Every candidate's estimates for the config's target training data (one row per scored checkpoint:
    ``model``, ``classes`` of its head, :data:`ESTIMATES`' keys) and the one-line error of each checkpoint that
    could not be scored. The target data is loaded once (the checkpoints first checked, so a bad path fails
    before that)."""
    from tqdm.auto import tqdm

    errors: dict[str, str] = {}
    models: dict[str, torch.nn.Module] = {}
    for p in paths:
        try:
            models[str(p)] = load_source_checkpoint(cfg, Path(p))
        except TransferVizError as exc:
            errors[str(p)] = str(exc)
    rows: list[dict[str, Any]] = []
    if models:
        x, y = target_training_data(cfg)
        log(f"scoring {len(models)} source models on {len(y)} target training instances ({cfg.target.kind})")
        layer = choose_embedding_layer(cfg, model_graph(cfg, next(iter(models.values()))))
        for name, model in tqdm(models.items(), desc="  score", unit="model", leave=False, mininterval=0.5):
            try:
                est = source_estimates(model, layer, x, y, device)
            except TransferVizError as exc:
                errors[name] = f"checkpoint {name}: {exc}"
                continue
            rows.append({"model": name, "classes": _head_size(model), **est})
    return pd.DataFrame(rows, columns=["model", "classes", *ESTIMATES]), errors


def _head_size(model: torch.nn.Module) -> int:
    """The number of classes the model's head predicts (its source classes)."""
    head = dict(model.named_modules())[str(head_module(model))]
    return int(getattr(head, "weight").shape[0])


def rank_table(scores: pd.DataFrame, by: str = "mean") -> pd.DataFrame:
    """``scores`` with ``rank`` (1 = expected to transfer best) added and sorted by it: by one estimate, or by
    ``mean``, the mean of the four estimates' ranks (their scales differ, their orders can be averaged)."""
    if by != "mean" and by not in ESTIMATES:
        raise TransferVizError(f"--by {by!r}: choose mean or one of {', '.join(ESTIMATES)}")
    ranks = scores[list(ESTIMATES)].rank(ascending=False, method="average")
    key = ranks.mean(axis=1) if by == "mean" else ranks[by]
    out = scores.assign(rank=key.rank(method="min").astype(int))
    return out.sort_values(["rank", "model"]).reset_index(drop=True)


# --- cka -----------------------------------------------------------------------------------------------------

@torch.no_grad()
def layer_kernels(model: torch.nn.Module, layers: Sequence[str], x: torch.Tensor,
                  device: torch.device) -> list[np.ndarray]:
    """The linear kernel (n x n, float64) of each layer's output on the batch ``x``, the output flattened.

    Conv maps are flattened (channels x positions), not pooled, as Kornblith et al. 2019 and Nguyen et al.
    2021 do: pooling over positions would make a layer whose features moved in space look unchanged. The
    kernel is taken in the hook itself, before a following in-place activation can overwrite the output."""
    modules = dict(model.named_modules())
    kernels: dict[str, torch.Tensor] = {}

    def hook(name: str) -> Callable[..., None]:
        def capture(module: torch.nn.Module, inp: Any, out: Any) -> None:
            if name not in kernels:  # a module called twice keeps its first output, as the architecture does
                a = torch.flatten(out, 1).float()
                kernels[name] = (a @ a.T).double().cpu()
        return capture

    handles = [modules[name].register_forward_hook(hook(name)) for name in layers]
    try:
        model.to(device).eval()(x.to(device))
    finally:
        for h in handles:
            h.remove()
    return [kernels[name].numpy() for name in layers]


def stage_cka(ctx: BuildContext) -> None:
    c, w = ctx.cache, ctx.writer
    layers = c.layers
    df = c.table("data/base.parquet")
    models = ctx.models()
    x = ctx.inputs()
    plan = {d: np.flatnonzero((df.domain == d).to_numpy()) for d in ("target", "source")}
    parts = {d: batches(len(rows), CKA_BATCH, ctx.config.seed) for d, rows in plan.items()}
    bar = ctx.bar(sum(len(rows) for rows in plan.values()), "cka", "img")
    diagonals: dict[str, list[float | None]] = {}  # None: no estimate (JSON has no NaN)
    for domain, rows in plan.items():
        acc = MinibatchCKA(len(layers), len(layers))
        for part in parts[domain]:
            xb = x[torch.from_numpy(rows[part])]
            acc.update(layer_kernels(models["source"], layers, xb, ctx.device),
                       layer_kernels(models["target"], layers, xb, ctx.device))
            bar.update(len(part))
        if acc.batches:
            matrix = acc.result()
        else:  # fewer than four instances in the domain: no unbiased estimate exists
            matrix = np.full((len(layers), len(layers)), np.nan)
        w.array(f"analysis/cka/{domain}.npy", matrix.astype(np.float64),
                f"(layers x layers) linear CKA, unbiased HSIC, minibatches of {CKA_BATCH}: source model's layer "
                f"i (row) vs target model's layer j (column) on all {domain}-domain instances; order: "
                "analysis/cka/meta.json layers")
        diagonals[domain] = [round(float(v), 4) if np.isfinite(v) else None for v in np.diag(matrix)]
    bar.close()
    w.json("analysis/cka/meta.json",
           {"layers": layers, "batch_size": CKA_BATCH, "conv": "flattened",
            "instances": {d: int(len(rows)) for d, rows in plan.items()},
            "batches": {d: len(p) for d, p in parts.items()}, "seed": ctx.config.seed},
           "the CKA matrices' layers (rows: source model, columns: target model), batch size, how conv maps "
           "enter (flattened), instances and batches per domain, the shuffle seed")
    ctx.notes["diagonal"] = diagonals
    ctx.notes["summary"] = "CKA diagonal on target data " + ", ".join(
        "n/a" if v is None else f"{v:.2f}" for v in diagonals["target"])
