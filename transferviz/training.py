"""Training the source model and fine-tuning the target model from it.

Each epoch of each model records its accuracy on the source training split, the
target training split and its own domain's validation split: the six series of
the paper's accuracy chart (section 5.1). Each epoch's weights are kept for the
fine-tuning timeline.
"""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from transferviz.config import TrainSpec
from transferviz.errors import TransferVizError
from transferviz.models import head_module

__all__ = ["TrainData", "TrainOutcome", "train_model", "evaluate", "predict", "epoch_accuracies",
           "frozen_parameters", "build_optimizer", "describe_finetuning"]


@dataclass
class TrainData:
    """Preprocessed tensors of both domains' splits (CPU; moved to the device per batch)."""

    source_train: tuple[torch.Tensor, torch.Tensor]
    source_val: tuple[torch.Tensor, torch.Tensor]
    target_train: tuple[torch.Tensor, torch.Tensor]
    target_val: tuple[torch.Tensor, torch.Tensor]


@dataclass
class TrainOutcome:
    model: nn.Module
    history: list[dict[str, float]] = field(default_factory=list)
    epoch_states: list[dict[str, torch.Tensor]] = field(default_factory=list)


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, device: torch.device, batch_size: int = 512) -> torch.Tensor:
    """Logits for ``x`` (on the CPU), evaluated in batches in eval mode."""
    was_training = model.training
    model.eval()
    out = [model(x[i:i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)]
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0)


def evaluate(model: nn.Module, data: tuple[torch.Tensor, torch.Tensor], device: torch.device) -> float:
    x, y = data
    if len(x) == 0:
        return float("nan")
    return float((predict(model, x, device).argmax(1) == y).float().mean())


def epoch_accuracies(model: nn.Module, which: str, epoch: int, data: TrainData, device: torch.device) -> dict:
    """One history row: the paper's three series for this model (source train, target train,
    own-domain val) plus both validation sets, which the transferability score needs."""
    source_val = evaluate(model, data.source_val, device)
    target_val = evaluate(model, data.target_val, device)
    return {"epoch": epoch, "model": which,
            "source_train": evaluate(model, data.source_train, device),
            "target_train": evaluate(model, data.target_train, device),
            "val": source_val if which == "source" else target_val,
            "source_val": source_val, "target_val": target_val}


def _covered(name: str, prefix: str) -> bool:
    """Whether the module or parameter path ``name`` lies under the module path ``prefix``."""
    return name == prefix or name.startswith(prefix + ".")


def frozen_parameters(model: nn.Module, prefixes: tuple[str, ...], key: str = "freeze") -> list[str]:
    """Names of the parameters under any of ``prefixes``; a prefix that matches no parameter is a
    one-line error naming it (``key`` is the config key, e.g. ``training.target.freeze``)."""
    names = [n for n, _ in model.named_parameters()]
    for prefix in prefixes:
        if not any(_covered(n, prefix) for n in names):
            top = list(dict.fromkeys(n.split(".", 1)[0] for n in names))
            modules = [m for m, mod in model.named_modules() if m and any(True for _ in mod.parameters())]
            close = difflib.get_close_matches(prefix, modules, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise TransferVizError(f"{key}: {prefix!r} matches no parameter of the model; {hint}"
                                   f"its top-level modules with parameters: {', '.join(top)}")
    return [n for n in names if any(_covered(n, p) for p in prefixes)]


def _frozen_norms(model: nn.Module, prefixes: tuple[str, ...]) -> list[nn.Module]:
    """The BatchNorm layers under a frozen prefix: kept in eval mode, so their statistics stay too."""
    return [m for n, m in model.named_modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and any(_covered(n, p) for p in prefixes)]


def build_optimizer(model: nn.Module, spec: TrainSpec, which: str = "target") -> torch.optim.Optimizer:
    """The optimizer over the parameters that are not frozen: one group at ``spec.lr``, and with
    ``spec.head_lr`` a second group (``name: 'head'``) holding the head's parameters at that rate."""
    key = f"training.{which}"
    frozen = set(frozen_parameters(model, spec.freeze, f"{key}.freeze"))
    head = None
    if spec.head_lr is not None:
        head = head_module(model)
        if head is None:
            raise TransferVizError(f"{key}.head_lr: the model has no nn.Linear (or nn.Conv2d) head; remove head_lr")
    body: list[nn.Parameter] = []
    head_params: list[nn.Parameter] = []
    for name, p in model.named_parameters():
        if name in frozen:
            continue
        (head_params if head is not None and _covered(name, head) else body).append(p)
    groups: list[dict[str, Any]] = []
    if body:
        groups.append({"params": body, "lr": spec.lr, "name": "body"})
    if head_params:
        groups.append({"params": head_params, "lr": spec.head_lr, "name": "head"})
    if not groups:
        raise TransferVizError(f"{key}.freeze covers every parameter of the model; nothing would be trained")
    if spec.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay)
    return torch.optim.Adam(groups, lr=spec.lr, weight_decay=spec.weight_decay)


def describe_finetuning(model: nn.Module, spec: TrainSpec, which: str) -> str:
    """One line for the build summary on what ``freeze`` and ``head_lr`` do to this model ('' if neither);
    a one-line error for a prefix that matches nothing, a freeze that covers everything or a missing head."""
    build_optimizer(model, spec, which)  # the checks, before any training
    parts = []
    if spec.freeze:
        frozen = set(frozen_parameters(model, spec.freeze, f"training.{which}.freeze"))
        n_frozen = sum(p.numel() for n, p in model.named_parameters() if n in frozen)
        n_all = sum(p.numel() for p in model.parameters())
        parts.append(f"froze {', '.join(spec.freeze)} ({n_frozen:,} of {n_all:,} parameters)")
    if spec.head_lr is not None:
        parts.append(f"head {head_module(model)} at lr {spec.head_lr:g} (others {spec.lr:g})")
    return f"{which}: {'; '.join(parts)}" if parts else ""


def _batches(order: torch.Tensor, size: int, merge_single: bool) -> list[torch.Tensor]:
    """``order`` cut into batches of ``size``; with ``merge_single``, a last batch of one instance joins the one
    before (BatchNorm cannot train on one value per channel: a 1x1 map, as ResNets give at 32 px)."""
    batches = [order[i:i + size] for i in range(0, len(order), size)]
    if merge_single and len(batches) > 1 and len(batches[-1]) == 1:
        batches[-2:] = [torch.cat(batches[-2:])]
    return batches


def train_model(model: nn.Module, which: str, data: TrainData, spec: TrainSpec, device: torch.device,
                seed: int, keep_states: bool = True,
                on_step: Callable[[int], None] | None = None) -> TrainOutcome:
    """Trains ``model`` (a copy) on its own domain's training split.

    ``which`` is ``"source"`` or ``"target"``: it picks the training and
    validation split. ``on_step`` receives the number of instances processed.
    Parameters under ``spec.freeze`` get no gradient and no update, and the BatchNorm layers among them
    stay in eval mode (their running statistics unchanged); ``spec.head_lr`` trains the head at its own rate.
    The returned model has every parameter's ``requires_grad`` as it was given.
    """
    model = copy.deepcopy(model).to(device)
    x_train, y_train = data.source_train if which == "source" else data.target_train
    opt = build_optimizer(model, spec, which)
    frozen = set(frozen_parameters(model, spec.freeze))
    norms = _frozen_norms(model, spec.freeze)
    has_norms = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    requires_grad = {n: p.requires_grad for n, p in model.named_parameters()}
    for n, p in model.named_parameters():
        if n in frozen:
            p.requires_grad_(False)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(seed)
    outcome = TrainOutcome(model=model)
    try:
        for epoch in range(1, spec.epochs + 1):
            model.train()
            for m in norms:
                m.eval()
            order = torch.randperm(len(x_train), generator=gen)
            for idx in _batches(order, spec.batch_size, merge_single=has_norms):
                xb, yb = x_train[idx].to(device), y_train[idx].to(device)
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(xb), yb)
                loss.backward()
                opt.step()
                if on_step:
                    on_step(len(idx))
            outcome.history.append(epoch_accuracies(model, which, epoch, data, device))
            if keep_states:
                outcome.epoch_states.append({k: v.detach().cpu().clone() for k, v in model.state_dict().items()})
    finally:
        for n, p in model.named_parameters():
            p.requires_grad_(requires_grad[n])
    model.eval()
    return outcome
