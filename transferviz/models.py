"""Model architectures, analysed-layer discovery and safe checkpoint loading.

Four kinds of architecture are supported:

* ``small_alexnet`` -- a compact AlexNet-style CNN (five conv and three linear
  layers, named like torchvision's AlexNet) for small images; a demo epoch takes
  seconds on two CPU cores.
* ``alexnet`` -- torchvision's AlexNet for 224 px images (the paper's backbone).
* ``torchvision:<name>`` -- any classification model of ``torchvision.models``
  (``resnet50``, ``vgg16_bn``, ``efficientnet_b0``, ...), built with ``weights=None``
  and its head sized to the class count; ImageNet weights come from a local file
  (``model.init_weights``, :func:`load_init_weights`), never from the network.
* ``package.module:factory`` -- the user's own architecture; ``factory`` is called
  with ``num_classes=`` and must return an ``nn.Module``.

The *head* of a model (:func:`head_module`) is its last ``nn.Linear`` (the last
``nn.Conv2d`` for linear-free models such as SqueezeNet): the module whose shape
follows the class count.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
import warnings
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from transferviz.errors import TransferVizError
from transferviz.graph import trace_model

__all__ = [
    "SmallAlexNet",
    "build_model",
    "analysed_layers",
    "embedding_layer",
    "load_state_dict_checked",
    "load_checkpoint",
    "read_checkpoint",
    "load_init_weights",
    "head_module",
    "check_input_size",
    "check_arch",
    "torchvision_model_names",
    "TORCHVISION_PREFIX",
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


TORCHVISION_PREFIX = "torchvision:"
# Examples for error messages: the architectures the project is tested on.
_TORCHVISION_EXAMPLES = ("resnet18", "resnet50", "vgg16_bn", "mobilenet_v3_large", "efficientnet_b0",
                         "densenet121", "convnext_tiny", "alexnet")
_AUX_HEADS = ("AuxLogits", "aux1", "aux2")  # Inception v3's and GoogLeNet's training-time auxiliary classifiers


def torchvision_model_names() -> list[str]:
    """The classification models of ``torchvision.models`` (not detection, segmentation, video, ...)."""
    from torchvision import models

    return list(models.list_models(module=models))


def _unknown_torchvision(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    return (f"torchvision has no classification model {name!r}; {hint}allowed: the {len(names)} names of "
            "torchvision.models.list_models(module=torchvision.models), e.g. " + ", ".join(_TORCHVISION_EXAMPLES))


def check_arch(arch: str) -> None:
    """Validates the *form* of ``model.arch`` (and a torchvision name) without building anything.

    A ``package.module:factory`` is only imported when the model is built.
    """
    if arch in ("small_alexnet", "alexnet"):
        return
    if arch.startswith(TORCHVISION_PREFIX):
        name = arch[len(TORCHVISION_PREFIX):]
        names = torchvision_model_names()
        if name not in names:
            raise TransferVizError(_unknown_torchvision(name, names))
        return
    module_name, _, attr = arch.partition(":")
    if not module_name or not attr:
        hint = ""
        if ":" not in arch and arch in torchvision_model_names():
            hint = f"; did you mean '{TORCHVISION_PREFIX}{arch}'?"
        raise TransferVizError(f"model arch {arch!r} is not 'small_alexnet', 'alexnet', 'torchvision:<name>' "
                               f"or 'package.module:factory'{hint}")


def _import_factory(spec: str) -> Callable[..., Any]:
    """The user's ``package.module:factory``, imported and checked to take ``num_classes=``; anything that goes
    wrong on the way (a missing module, a syntax error, a module that raises) is a one-line error."""
    check_arch(spec)
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise TransferVizError(
            f"model arch {spec!r}: cannot import {module_name!r} ({exc}); put it on PYTHONPATH") from None
    except SyntaxError as exc:
        raise TransferVizError(f"model arch {spec!r}: cannot import {module_name!r}: SyntaxError in "
                               f"{exc.filename} line {exc.lineno} ({exc.msg}); fix the module") from None
    except Exception as exc:  # the module's own code runs on import and may raise anything
        raise TransferVizError(f"model arch {spec!r}: importing {module_name!r} raised "
                               f"{_one_line_reason(exc)}; fix the module") from None
    factory = getattr(module, attr, None)
    if factory is None or not callable(factory):
        raise TransferVizError(f"model arch {spec!r}: {module_name} has no callable {attr!r}")
    try:
        inspect.signature(factory).bind(num_classes=2)
    except TypeError:
        raise TransferVizError(f"model arch {spec!r}: {attr}{inspect.signature(factory)} takes no num_classes "
                               "argument; the factory is called as factory(num_classes=K)") from None
    except ValueError:
        pass  # no signature to read (a builtin): the call itself will tell
    return factory  # type: ignore[no-any-return]


def _one_line_reason(exc: BaseException) -> str:
    """``Type: message`` of an exception on one short line."""
    text = " ".join(str(exc).split())[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _call_factory(spec: str, num_classes: int) -> nn.Module:
    factory = _import_factory(spec)
    try:
        model = factory(num_classes=num_classes)
    except Exception as exc:  # the user's code: any error becomes one line naming it
        raise TransferVizError(f"model arch {spec!r}: the factory raised {_one_line_reason(exc)} "
                               f"when called with num_classes={num_classes}; fix the factory") from None
    if not isinstance(model, nn.Module):
        raise TransferVizError(f"model arch {spec!r}: the factory returned {type(model).__name__}, not nn.Module")
    return model


def _torchvision_kwargs(name: str, input_size: int) -> dict[str, Any]:
    """Builder arguments beyond ``weights=None, num_classes=`` that some families need."""
    if name in ("googlenet", "inception_v3"):
        # a plain logits tensor in training mode too (no auxiliary heads); torchvision's own initialisation,
        # asked for explicitly so that the builder does not warn about a future default
        return {"aux_logits": False, "init_weights": True}
    if name.startswith("vit_"):
        patch = int(name.rsplit("_", 1)[-1])
        if input_size % patch:
            raise TransferVizError(f"model arch '{TORCHVISION_PREFIX}{name}' needs model.input_size divisible by "
                                   f"its patch size {patch} (got {input_size})")
        return {"image_size": input_size}  # the position embedding follows the input size
    if name.startswith("maxvit_"):
        return {"input_size": (input_size, input_size)}
    return {}


def _torchvision_model(name: str, num_classes: int, input_size: int) -> nn.Module:
    from torchvision import models

    names = torchvision_model_names()
    if name not in names:
        raise TransferVizError(_unknown_torchvision(name, names))
    # weights=None always: nothing is downloaded; ImageNet weights come from model.init_weights
    try:
        return models.get_model(name, weights=None, num_classes=num_classes, **_torchvision_kwargs(name, input_size))
    except (ValueError, AssertionError) as exc:  # e.g. MaxViT checks the input size against its partitions
        reason = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise TransferVizError(f"model arch '{TORCHVISION_PREFIX}{name}' cannot be built for {input_size} px "
                               f"inputs ({reason[:200]}); change model.input_size") from exc


def build_model(arch: str, num_classes: int, input_size: int = 28, in_channels: int = 3) -> nn.Module:
    """Builds an untrained model of the named architecture, its head sized to ``num_classes``."""
    if arch == "small_alexnet":
        return SmallAlexNet(num_classes=num_classes, in_channels=in_channels, input_size=input_size)
    if arch == "alexnet":
        return _torchvision_model("alexnet", num_classes, input_size)
    if arch.startswith(TORCHVISION_PREFIX):
        return _torchvision_model(arch[len(TORCHVISION_PREFIX):], num_classes, input_size)
    return _call_factory(arch, num_classes)


def head_module(model: nn.Module) -> str | None:
    """Module path of the classification head: the last ``nn.Linear`` (registration order), or the last
    ``nn.Conv2d`` of a model without one (SqueezeNet); ``None`` for a model with neither.

    For every classification model of ``torchvision.models`` this is the layer that ``num_classes`` sizes.
    """
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if linears:
        return linears[-1]
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    return convs[-1] if convs else None


def check_input_size(model: nn.Module, arch: str, input_size: int, in_channels: int = 3) -> None:
    """One forward pass of a zero image in eval mode: a clear error when ``input_size`` is too small
    (AlexNet needs at least 63 px; VGG, DenseNet and ConvNeXt 32) or otherwise unsuitable."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, in_channels, input_size, input_size))
    except (RuntimeError, ValueError, AssertionError) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise TransferVizError(f"model arch {arch!r} cannot take {input_size} px inputs ({reason}); "
                               "raise model.input_size") from exc
    finally:
        model.train(was_training)


def analysed_layers(model: nn.Module, layers: str | Sequence[str] = "all", input_size: int | None = None,
                    in_channels: int | None = None) -> list[str]:
    """Module paths of the analysed layers in forward order, as ``analysis.layers`` chooses them.

    ``layers`` is a preset (``all``: every conv layer and every hidden linear layer, the
    classifier head left out -- the paper's AlexNet has Layers 1-7, five conv and two hidden
    linear layers; ``blocks``; ``auto``) or a list of module paths, checked against the model.
    Forward order and the presets come from the traced graph (:mod:`transferviz.graph`), on a
    zero batch of ``input_size`` px (default: the first of a few usual sizes the model takes).
    """
    return trace_model(model, input_size, in_channels).select(layers).layers


def embedding_layer(model: nn.Module, input_size: int | None = None, in_channels: int | None = None) -> str:
    """The first linear layer (forward order) that takes an (N, F) input: its *input* is the paper's
    "right before the FC layers" embedding (the pooled features of a ResNet, VGG's flattened maps)."""
    name = trace_model(model, input_size, in_channels).embedding_layer()
    if name is None:
        raise TransferVizError("the model has no nn.Linear layer to take an embedding before; "
                               "set analysis.embedding_layer in the config")
    return name


def _check_state(own: Mapping[str, torch.Tensor], state: Mapping[str, Any], origin: str,
                 skip: Collection[str] = ()) -> None:
    """Raises a one-line error naming the first tensor that is missing, extra or of another shape
    (the names in ``skip`` aside)."""
    for key, tensor in own.items():
        if key in skip:
            continue
        if key not in state:
            raise TransferVizError(f"{origin}: checkpoint lacks tensor {key!r} {tuple(tensor.shape)} "
                                   "that the architecture needs; check model.arch")
        if not isinstance(state[key], torch.Tensor):
            raise TransferVizError(f"{origin}: entry {key!r} is a {type(state[key]).__name__}, not a tensor; "
                                   "save the tensors themselves: torch.save(model.state_dict(), path)")
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise TransferVizError(f"{origin}: tensor {key!r} has shape {tuple(state[key].shape)} in the "
                                   f"checkpoint but {tuple(tensor.shape)} in the architecture; "
                                   "check model.arch and num_classes")
    extra = [k for k in state if k not in own and k not in skip]
    if extra:
        raise TransferVizError(f"{origin}: checkpoint has tensor {extra[0]!r} that the architecture "
                               "lacks; check model.arch")


def load_state_dict_checked(model: nn.Module, state: Mapping[str, torch.Tensor], origin: str) -> None:
    """Loads ``state`` strictly, naming the first mismatched tensor on failure."""
    _check_state(model.state_dict(), state, origin)
    model.load_state_dict(state, strict=True)


def _load_failure(exc: Exception) -> str:
    """The reason in a (long, multi-line) torch.load or safetensors error, on one short line: its first
    sentence, never torch's advice to retry with ``weights_only=False`` (which would run the file's code)."""
    text = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).split())
    found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if found:
        return f"it pickles a {found.group(1)}, not only tensors"
    found = re.search(r"WeightsUnpickler error: (.+?)(?: Check the documentation|$)", text)
    reason = found.group(1) if found else re.split(r"(?<=[.!?])\s", text)[0]
    reason = reason.split("weights_only")[0].rstrip(" ,;:(")
    name = type(exc).__name__
    return (f"{name}: {reason}" if reason and not found else reason or name)[:200]


def _read_state_dict(path: str | Path, what: str, fix: str) -> dict[str, Any]:
    """A state_dict (or ``{'state_dict': ...}``) from a ``.safetensors`` file or with ``weights_only=True``.

    ``what`` names the file in errors (``checkpoint``, ``init_weights``), ``fix`` the config key to correct.
    """
    path = Path(path)
    if not path.is_file():
        reason = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise TransferVizError(f"{what} {path} {reason}; fix {fix} in the config")
    if path.stat().st_size == 0:
        raise TransferVizError(f"{what} {path} is empty (0 bytes); save the weights again, e.g. "
                               "torch.save(model.state_dict(), path)")
    # whatever the file holds (torch.load returns any pickled object): checked below
    state: object
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            with warnings.catch_warnings():  # torch warns about pickle protocols; a failure says all there is
                warnings.simplefilter("ignore", UserWarning)
                state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle and safetensors errors come in many types
        how = "as safetensors" if path.suffix == ".safetensors" else "with weights_only=True"
        raise TransferVizError(f"{what} {path} cannot be loaded {how} ({_load_failure(exc)}); "
                               "save it again as a plain state_dict") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise TransferVizError(f"{what} {path} holds {type(state).__name__}, not a state_dict")
    return state


def read_checkpoint(path: str | Path, fix: str = "the path") -> dict[str, Any]:
    """A user's checkpoint as a state_dict, read safely (as :func:`load_checkpoint` reads it), not yet loaded."""
    return _read_state_dict(path, "checkpoint", fix)


def load_checkpoint(model: nn.Module, path: str | Path) -> None:
    """Loads a user's checkpoint (a state_dict, or {'state_dict': ...}) with ``weights_only=True``."""
    state = _read_state_dict(path, "checkpoint", "the path")
    load_state_dict_checked(model, state, str(path))


def load_init_weights(model: nn.Module, path: str | Path) -> str:
    """Loads pretrained weights (e.g. an ImageNet state_dict saved with ``torch.save``) into ``model``.

    Every tensor must match but the head's (:func:`head_module`), which may be sized for another class count
    (or absent, for a backbone-only file): it is then left as built, freshly initialised. The auxiliary
    classifiers of Inception v3 and GoogLeNet, which transferviz builds without, are ignored. Any other
    mismatch is a one-line error naming the tensor. Returns the line for the build summary.
    """
    path = Path(path)
    origin = f"init_weights {path}"
    state = _read_state_dict(path, "init_weights", "model.init_weights")
    own = model.state_dict()
    head = head_module(model)
    head_keys = [k for k in own if head is not None and k.rsplit(".", 1)[0] == head]
    fresh: list[str] = []
    classes: tuple[int, int] | None = None
    for key in head_keys:
        mine = own[key]
        theirs = state.get(key)
        if theirs is None:
            fresh.append(key)
        elif isinstance(theirs, torch.Tensor) and tuple(theirs.shape) != tuple(mine.shape):
            if theirs.dim() != mine.dim() or theirs.dim() == 0 or tuple(theirs.shape[1:]) != tuple(mine.shape[1:]):
                raise TransferVizError(f"{origin}: head tensor {key!r} has shape {tuple(theirs.shape)} in the file "
                                       f"but {tuple(mine.shape)} in the architecture: more than the class count "
                                       "differs; check model.arch")
            fresh.append(key)
            classes = (int(theirs.shape[0]), int(mine.shape[0]))
    aux = [k for k in state if k not in own and k.split(".", 1)[0] in _AUX_HEADS]
    _check_state(own, state, origin, skip=set(fresh) | set(aux))
    model.load_state_dict({k: state[k] for k in own if k not in fresh}, strict=False)
    line = f"init_weights: loaded {len(own) - len(fresh)} tensors from {path.name}"
    if fresh:
        why = f"{classes[0]} -> {classes[1]} classes" if classes else "not in the file"
        line += f"; head {', '.join(fresh)} left freshly initialised ({why})"
    if aux:
        heads = ", ".join(sorted({k.split(".", 1)[0] for k in aux}))
        line += f"; ignored {len(aux)} auxiliary-classifier tensors ({heads})"
    return line
