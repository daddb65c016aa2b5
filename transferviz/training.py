"""Training the source model and fine-tuning the target model from it.

Each epoch of each model records its accuracy on the source training split, the
target training split and its own domain's validation split: the six series of
the paper's accuracy chart (section 5.1). Each epoch's weights are kept for the
fine-tuning timeline.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from transferviz.config import TrainSpec

__all__ = ["TrainData", "TrainOutcome", "train_model", "evaluate", "predict", "epoch_accuracies"]


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


def _optimizer(model: nn.Module, spec: TrainSpec) -> torch.optim.Optimizer:
    if spec.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay)
    return torch.optim.Adam(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)


def train_model(model: nn.Module, which: str, data: TrainData, spec: TrainSpec, device: torch.device,
                seed: int, keep_states: bool = True,
                on_step: Callable[[int], None] | None = None) -> TrainOutcome:
    """Trains ``model`` (a copy) on its own domain's training split.

    ``which`` is ``"source"`` or ``"target"``: it picks the training and
    validation split. ``on_step`` receives the number of instances processed.
    """
    model = copy.deepcopy(model).to(device)
    x_train, y_train = data.source_train if which == "source" else data.target_train
    opt = _optimizer(model, spec)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(seed)
    outcome = TrainOutcome(model=model)
    for epoch in range(1, spec.epochs + 1):
        model.train()
        order = torch.randperm(len(x_train), generator=gen)
        for i in range(0, len(order), spec.batch_size):
            idx = order[i:i + spec.batch_size]
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
    model.eval()
    return outcome


