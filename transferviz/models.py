"""Model architectures, analysed-layer discovery and safe checkpoint loading.

Three kinds of architecture are supported:

* ``small_alexnet`` -- a compact AlexNet-style CNN (five conv and three linear
  layers, named like torchvision's AlexNet) for small images; a demo epoch takes
  seconds on two CPU cores.
* ``alexnet`` -- torchvision's AlexNet for 224 px images (the paper's backbone).
* ``package.module:factory`` -- the user's own architecture; ``factory`` is called
  with ``num_classes=`` and must return an ``nn.Module``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from transferviz.errors import TransferVizError

__all__ = [
    "SmallAlexNet",
    "build_model",
    "analysed_layers",
    "embedding_layer",
    "load_state_dict_checked",
    "load_checkpoint",
]


class SmallAlexNet(nn.Module):
    """AlexNet's shape (5 conv + 3 linear, ReLU, max-pooling) shrunk for 28-32 px inputs.

    Module paths mirror torchvision's AlexNet (``features.0`` ... ``classifier.6``)
    so that the paper's "Layer 1-7" numbering reads the same on both.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3, input_size: int = 28,
                 widths: tuple[int, int, int, int, int] = (16, 32, 32, 32, 32),
                 hidden: tuple[int, int] = (128, 64), dropout: float = 0.3) -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = widths
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, kernel_size=5, padding=2),  # features.0
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, kernel_size=3, padding=1),  # features.3
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, kernel_size=3, padding=1),  # features.6
            nn.ReLU(inplace=True),
            nn.Conv2d(c3, c4, kernel_size=3, padding=1),  # features.8
            nn.ReLU(inplace=True),
            nn.Conv2d(c4, c5, kernel_size=3, padding=1),  # features.10
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        side = input_size // 4
        side = (side - 3) // 2 + 1
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(c5 * side * side, hidden[0]),  # classifier.1
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden[0], hidden[1]),  # classifier.4
            nn.ReLU(inplace=True),
            nn.Linear(hidden[1], num_classes),  # classifier.6
        )
        # He initialisation: PyTorch's default (kaiming_uniform with a=sqrt(5)) shrinks activations
        # layer after layer in a BatchNorm-free ReLU stack, and the demo would need many more epochs.
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                assert m.bias is not None  # every layer above is built with the default bias=True
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


def _import_factory(spec: str):
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise TransferVizError(
            f"model arch {spec!r} is not 'small_alexnet', 'alexnet' or 'package.module:factory'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise TransferVizError(
            f"model arch {spec!r}: cannot import {module_name!r} ({exc}); put it on PYTHONPATH") from exc
    factory = getattr(module, attr, None)
    if factory is None or not callable(factory):
        raise TransferVizError(f"model arch {spec!r}: {module_name} has no callable {attr!r}")
    return factory


def build_model(arch: str, num_classes: int, input_size: int = 28, in_channels: int = 3) -> nn.Module:
    """Builds an untrained model of the named architecture."""
    if arch == "small_alexnet":
        return SmallAlexNet(num_classes=num_classes, in_channels=in_channels, input_size=input_size)
    if arch == "alexnet":
        from torchvision.models import alexnet

        return alexnet(weights=None, num_classes=num_classes)
    model = _import_factory(arch)(num_classes=num_classes)
    if not isinstance(model, nn.Module):
        raise TransferVizError(f"model arch {arch!r}: the factory returned {type(model).__name__}, not nn.Module")
    return model


def analysed_layers(model: nn.Module) -> list[str]:
    """Module paths of every conv layer and every hidden linear layer, in forward order.

    The last ``nn.Linear`` is the classifier output and is not analysed (the
    paper's AlexNet has Layers 1-7: five conv and two hidden linear layers).
    Order is module registration order, which is forward order for the
    sequential CNNs this tool targets.
    """
    convs_and_linears = [(name, m) for name, m in model.named_modules()
                         if isinstance(m, (nn.Conv2d, nn.Linear))]
    linear_names = [name for name, m in convs_and_linears if isinstance(m, nn.Linear)]
    last_linear = linear_names[-1] if linear_names else None
    return [name for name, _ in convs_and_linears if name != last_linear]


def embedding_layer(model: nn.Module) -> str:
    """The first linear layer: its *input* is the paper's "right before the FC layers" embedding."""
    for name, m in model.named_modules():
        if isinstance(m, nn.Linear):
            return name
    raise TransferVizError("the model has no nn.Linear layer to take an embedding before; "
                           "set analysis.embedding_layer in the config")


def load_state_dict_checked(model: nn.Module, state: Mapping[str, torch.Tensor], origin: str) -> None:
    """Loads ``state`` strictly, naming the first mismatched tensor on failure."""
    own = model.state_dict()
    for key, tensor in own.items():
        if key not in state:
            raise TransferVizError(f"{origin}: checkpoint lacks tensor {key!r} {tuple(tensor.shape)} "
                                   "that the architecture needs; check model.arch")
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise TransferVizError(f"{origin}: tensor {key!r} has shape {tuple(state[key].shape)} in the "
                                   f"checkpoint but {tuple(tensor.shape)} in the architecture; "
                                   "check model.arch and num_classes")
    extra = [k for k in state if k not in own]
    if extra:
        raise TransferVizError(f"{origin}: checkpoint has tensor {extra[0]!r} that the architecture "
                               "lacks; check model.arch")
    model.load_state_dict(state, strict=True)


def load_checkpoint(model: nn.Module, path: str | Path) -> None:
    """Loads a user's checkpoint (a state_dict, or {'state_dict': ...}) with ``weights_only=True``."""
    path = Path(path)
    if not path.is_file():
        raise TransferVizError(f"checkpoint {path} does not exist; fix the path in the config")
    # whatever the file holds (torch.load returns any pickled object): checked below
    state: object
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # pickle errors come in many types
            raise TransferVizError(f"checkpoint {path} cannot be loaded with weights_only=True ({exc}); "
                                   "save it as a plain state_dict") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise TransferVizError(f"checkpoint {path} holds {type(state).__name__}, not a state_dict")
    load_state_dict_checked(model, state, str(path))
