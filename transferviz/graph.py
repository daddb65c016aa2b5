"""A model's computation graph: the layers that can be analysed, which of them cut the graph,
which consecutive layers are joined by one weight matrix, and the layer presets.

Discovery
---------
:func:`trace_model` traces the model (in eval mode) with torchvision's
``models.feature_extraction.NodePathTracer`` (``torch.fx``; every ``torch.nn`` module is a
leaf, everything else is traced through) and runs the traced graph once on an example input
to learn each node's shape. Each module call is recorded with the graph node of its input and
of its output, so a block such as a ResNet ``BasicBlock`` (``layer3.1``) or a DenseNet dense
block is a module like any other. A model that ``torch.fx`` cannot trace (data-dependent
control flow, ...) falls back to one hooked forward pass: the modules in the order their
outputs are produced, and the autograd graph of that pass (``grad_fn`` nodes) as the graph.

Both give the same :class:`ModelGraph`: nodes in forward order with their *data* inputs
(tensors computed from the model input; parameters, constants and shapes are not data) and an
operation class (conv, linear, per-channel, addition, concatenation, product, other).

* **Usable layer**: a module that runs once per forward pass and returns one tensor of shape
  ``(N, C, H, W)`` (a neuron is a channel) or ``(N, F)`` (a neuron is a unit) computed from the
  input; not one that returns its input unchanged (``Identity``, ``Dropout`` in eval mode),
  not a ``Linear`` applied channels-last to a 4-D tensor.
* **Cut**: every path from the input to the output goes through the layer's output. Only then
  does Layer Conductance sum to ``F(x) - F(baseline)`` (completeness); a conv inside a
  residual block carries only its branch's share.
* **Weight link** of a consecutive pair ``i -> j`` (:meth:`ModelGraph.link`): layer ``j`` is a
  ``Conv2d``/``Linear`` whose input is computed from layer ``i``'s output through per-channel
  operations only (BatchNorm, activations, pooling, dropout, flatten, identity, affine by
  constants), or a block whose output comes from one such ``Conv2d``/``Linear`` through
  per-channel operations only (``Conv2dNormActivation``, DenseNet's transition). Then neuron
  ``n1`` of layer ``i`` is channel ``n1`` of what that module receives, and its weights join
  the two layers as in the paper (section 5.3.1 B). Otherwise the pair has no weights, with
  a one-line reason: a residual addition, a concatenation, a squeeze-and-excitation (or other
  elementwise) product, a block containing its own convolutions, a conv or linear layer that
  is not analysed, parallel branches, or an operation that is not per-channel.

Presets (:meth:`ModelGraph.select`)
-----------------------------------
* ``all``: every ``Conv2d`` and every hidden ``Linear`` (2-D output), in forward order; the
  *head* (the conv/linear layer the logits follow from through per-channel operations) is
  left out. AlexNet-shaped models keep the paper's Layers 1-7.
* ``blocks``: walk the module tree from the root, going *into* plain containers (modules whose
  type is exactly ``nn.Sequential``, ``nn.ModuleList`` or ``nn.ModuleDict``: stages such as
  ResNet's ``layer1``). Each other child is taken whole when it contains a conv or linear
  layer (a block: ``BasicBlock``, ``InvertedResidual``, ``Conv2dNormActivation``, ``_DenseBlock``,
  ``_Transition``, ``CNBlock``), and a conv or hidden linear layer met directly is taken as
  it is (a stem conv such as ResNet's ``conv1``, AlexNet's convs, hidden classifier layers).
  A model that wraps its whole backbone in one module is entered. The head is left out. So
  ResNet-18 gives ``conv1`` and its eight ``BasicBlock``\\ s, MobileNetV3 and EfficientNet their
  stem, every inverted-residual block and the last conv block, DenseNet-121 ``conv0``, the four
  dense blocks and the three transitions.
* ``auto`` (the default): ``all`` when that is at most :data:`MAX_AUTO_LAYERS` layers,
  otherwise ``blocks`` thinned evenly to at most :data:`MAX_AUTO_LAYERS` (first and last kept).
* An explicit list of module paths: each must be a usable layer; they are put in forward order.
"""

from __future__ import annotations

import math
import warnings
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Sequence

import torch
from torch import Tensor, fx, nn

from transferviz.errors import TransferVizError

__all__ = ["MAX_AUTO_LAYERS", "PRESETS", "Link", "ModelGraph", "ModuleCall", "Node", "Selection", "trace_model"]

MAX_AUTO_LAYERS = 16
PRESETS = ("auto", "all", "blocks")

# operation classes of graph nodes
INPUT, OUTPUT, CONV, LINEAR, CHANNEL, ADD, CAT, MUL, OTHER = (
    "input", "output", "conv", "linear", "per_channel", "add", "cat", "mul", "other")

_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)  # exact types: stages, not blocks
_CHANNEL_MODULES: tuple[type, ...] = (
    nn.modules.batchnorm._BatchNorm, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.SELU,
    nn.CELU, nn.GELU, nn.SiLU, nn.Mish, nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh, nn.Sigmoid, nn.Tanh,
    nn.Softplus, nn.Softsign, nn.Tanhshrink, nn.Threshold, nn.LogSigmoid, nn.Hardshrink, nn.Softshrink,
    nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd, nn.modules.pooling._AdaptiveAvgPoolNd,
    nn.modules.pooling._AdaptiveMaxPoolNd, nn.modules.pooling._LPPoolNd, nn.modules.dropout._DropoutNd,
    nn.Flatten, nn.Identity, nn.Upsample, nn.modules.padding._ConstantPadNd, nn.modules.padding._ReflectionPadNd,
    nn.modules.padding._ReplicationPadNd,
)
_GLOBAL_POOL_MODULES: tuple[type, ...] = (nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd)
_CHANNEL_FUNCS = frozenset({
    "relu", "relu_", "relu6", "hardtanh", "hardtanh_", "hardswish", "hardswish_", "hardsigmoid", "silu", "gelu",
    "elu", "elu_", "selu", "celu", "leaky_relu", "leaky_relu_", "sigmoid", "sigmoid_", "tanh", "tanh_", "softplus",
    "mish", "logsigmoid", "threshold", "clamp", "clamp_", "clip", "dropout", "dropout1d", "dropout2d", "dropout3d",
    "alpha_dropout", "feature_alpha_dropout", "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d",
    "avg_pool3d", "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d", "adaptive_max_pool1d",
    "adaptive_max_pool2d", "lp_pool2d", "batch_norm", "interpolate", "upsample", "pad", "contiguous", "clone",
    "float", "to", "type", "double", "half", "identity",
})
_RESHAPE_FUNCS = frozenset({"flatten", "view", "reshape", "squeeze", "unsqueeze"})
_REDUCE_FUNCS = frozenset({"mean", "amax", "amin"})
_ADD_FUNCS = frozenset({"add", "iadd", "sub", "isub", "add_", "sub_", "rsub"})
_MUL_FUNCS = frozenset({"mul", "imul", "mul_", "truediv", "itruediv", "div", "div_"})
_CAT_FUNCS = frozenset({"cat", "concat", "concatenate", "stack"})
_GLOBAL_POOL_FUNCS = frozenset({"adaptive_avg_pool2d", "adaptive_max_pool2d", "mean", "amax"})
# autograd node names (``type(grad_fn).__name__`` without ``Backward<n>``) of the fallback
_AUTOGRAD_CHANNEL = ("Relu", "Threshold", "Hardtanh", "Hardswish", "Hardsigmoid", "Silu", "Gelu", "Elu", "LeakyRelu",
                     "Sigmoid", "Tanh", "Softplus", "Mish", "LogSigmoid", "Prelu", "NativeBatchNorm", "CudnnBatchNorm",
                     "MiopenBatchNorm", "BatchNorm", "MaxPool", "AvgPool", "AdaptiveAvgPool", "AdaptiveMaxPool",
                     "View", "Reshape", "UnsafeView", "Clone", "ToCopy", "Mean", "Amax", "Squeeze", "Unsqueeze",
                     "Expand", "Upsample", "ConstantPadNd", "ReflectionPad", "ReplicationPad", "NativeDropout",
                     "Alias", "Clamp")
_AUTOGRAD_GLOBAL_POOL = ("AdaptiveAvgPool", "AdaptiveMaxPool", "Mean", "Amax")


@dataclass(frozen=True)
class Node:
    """One operation of the graph, in forward order; ``inputs`` are its data inputs (node indices)."""

    index: int
    op: str
    label: str
    inputs: tuple[int, ...] = ()
    module: str | None = None  # the leaf module a call_module node runs
    global_pool: bool = False  # a pooling to one value per channel (squeeze-and-excitation detection)


@dataclass(frozen=True)
class ModuleCall:
    """What one module does in the forward pass."""

    path: str
    type: str
    leaf: bool
    calls: int
    out: int | None  # node of its output tensor (None: not a single data tensor)
    inp: int | None  # node of its first tensor input
    shape: tuple[int, ...] | None  # output shape without the batch dimension
    in_shape: tuple[int, ...] | None
    alias: bool  # returns its input unchanged
    seq: int  # when its call finished, among all module calls


@dataclass(frozen=True)
class Link:
    """Whether two consecutive analysed layers are joined by one weight matrix, and why not."""

    from_layer: str
    to_layer: str
    linked: bool
    reason: str = ""  # one line when not linked, e.g. "joined through a residual addition"
    weights: str | None = None  # the Conv2d/Linear module whose weights join them (to_layer or one inside it)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Selection:
    """The analysed layers in forward order, the preset that chose them and why, in one line."""

    layers: list[str]
    requested: str  # auto, all, blocks or list
    used: str  # all, blocks or list
    reason: str


@dataclass
class ModelGraph:
    """The traced graph of one model; see the module docstring for the rules."""

    nodes: list[Node]
    input: int
    output: int
    modules: dict[str, ModuleCall]
    module_types: dict[str, type]  # every module of the model (called or not), by path ("" = the model)
    children: dict[str, list[str]]
    method: str  # "fx" or "hooks"
    note: str = ""  # why the fallback was used
    _consumers: list[list[int]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._consumers = [[] for _ in self.nodes]
        for n in self.nodes:
            for i in n.inputs:
                self._consumers[i].append(n.index)

    # -- layers ------------------------------------------------------------------------
    def _pos(self, path: str) -> tuple[int, int]:
        m = self.modules[path]
        return (m.out if m.out is not None else len(self.nodes), m.seq) if self.method == "fx" else (m.seq, 0)

    def in_forward_order(self, paths: Iterable[str]) -> list[str]:
        return sorted(dict.fromkeys(paths), key=self._pos)

    def unusable(self, path: str) -> str | None:
        """Why the module cannot be an analysed layer (one line), or None when it can."""
        if path not in self.module_types or path == "":
            return "is not a module of the model (module paths look like 'layer1.0' or 'features.3')"
        m = self.modules.get(path)
        if m is None:
            return "never runs in the model's forward pass"
        if m.calls > 1:
            return f"runs {m.calls} times per forward pass (a shared module); pick one that runs once"
        if m.alias:
            return "returns its input unchanged (Identity, Dropout in eval mode); pick the layer before it"
        if m.out is None or m.shape is None:
            return "does not return one tensor computed from the input"
        if len(m.shape) not in (1, 3):
            return f"returns a tensor of shape (N, {', '.join(map(str, m.shape))}), not (N, C, H, W) or (N, F)"
        if issubclass(self.module_types[path], nn.Linear) and len(m.shape) != 1:
            return "is a Linear layer applied to a channels-last tensor; analyse the block around it"
        return None

    def candidates(self) -> list[str]:
        """Every module that may be analysed, in forward order."""
        return self.in_forward_order(p for p in self.modules if self.unusable(p) is None)

    def neurons(self, path: str) -> int:
        shape = self.modules[path].shape
        assert shape is not None
        return int(shape[0])

    def _is(self, path: str, kind: type) -> bool:
        return path in self.module_types and issubclass(self.module_types[path], kind)

    def head(self) -> str | None:
        """The layer the logits follow from through per-channel operations (the classifier)."""
        n = self.output
        seen = 0
        while seen < len(self.nodes):
            seen += 1
            node = self.nodes[n]
            if node.op in (CONV, LINEAR) and node.module is not None:
                return node.module
            if node.op in (CHANNEL, OUTPUT) and len(node.inputs) == 1:
                n = node.inputs[0]
                continue
            break
        linears = [p for p in self.candidates() if self._is(p, nn.Linear)]
        return linears[-1] if linears else None

    def conv_linear_layers(self) -> list[str]:
        """The ``all`` preset: every Conv2d and hidden Linear layer, forward order, the head left out."""
        head = self.head()
        return [p for p in self.candidates() if p != head and self.modules[p].leaf
                and (self._is(p, nn.Conv2d) or self._is(p, nn.Linear))]

    def _has_weights(self, path: str) -> bool:
        prefix = path + "."
        return any(q.startswith(prefix) and (self._is(q, nn.Conv2d) or self._is(q, nn.Linear))
                   for q in self.modules)

    def _units(self, path: str, layers: set[str]) -> list[str]:
        out: list[str] = []
        for child in self.children.get(path, []):
            t = self.module_types[child]
            if t in _CONTAINERS:
                out += self._units(child, layers)
            elif not self.children.get(child):
                if child in layers:
                    out.append(child)
            elif self._has_weights(child):
                if self.unusable(child) is None:
                    out.append(child)
                else:  # a block run twice or returning a tuple: its parts may still be blocks
                    out += self._units(child, layers)
        return out

    def block_layers(self) -> list[str]:
        """The ``blocks`` preset (rule in the module docstring)."""
        layers = set(self.conv_linear_layers())
        head = self.head()
        units = self._units("", layers)
        while len([u for u in units if self.children.get(u)]) == 1 and len(units) <= 2:
            wrapper = next(u for u in units if self.children.get(u))
            inner = self._units(wrapper, layers)
            if len(inner) <= 1:
                break
            units = [u for u in units if u != wrapper] + inner  # a wrapper around the whole backbone
        logits = self.nodes[self.output].inputs
        units = [u for u in units if u != head and self.modules[u].out not in logits
                 and not (head is not None and head.startswith(u + "."))]
        # hidden linear layers inside a block that was not taken whole (e.g. a custom head)
        covered = {u for u in units}
        extra = [p for p in layers if self._is(p, nn.Linear) and p not in covered
                 and not any(p.startswith(u + ".") for u in units)]
        ordered = self.in_forward_order(units + extra)
        seen_out: set[int] = set()
        result = []
        for p in ordered:  # two modules with one output (a block and its last part): keep the first
            out = self.modules[p].out
            assert out is not None
            if out not in seen_out:
                seen_out.add(out)
                result.append(p)
        return result

    def select(self, spec: str | Sequence[str], max_layers: int = MAX_AUTO_LAYERS) -> Selection:
        """The analysed layers for ``analysis.layers``: a preset name or a list of module paths."""
        if isinstance(spec, str):
            if spec not in PRESETS:
                raise TransferVizError(f"analysis.layers: unknown preset {spec!r}; use one of "
                                       f"{', '.join(PRESETS)} or a list of module paths")
            return self._preset(spec, max_layers)
        paths = list(spec)
        if not paths:
            raise TransferVizError("analysis.layers: the list is empty; name at least one module path")
        for p in paths:
            why = self.unusable(p)
            if why is not None:
                raise TransferVizError(f"analysis.layers: {p!r} {why}")
        ordered = self.in_forward_order(paths)
        outs: dict[int, str] = {}
        for p in ordered:
            out = self.modules[p].out
            assert out is not None
            if out in outs:
                raise TransferVizError(f"analysis.layers: {outs[out]!r} and {p!r} have the same output; list one")
            outs[out] = p
        moved = " (put in forward order)" if ordered != list(dict.fromkeys(paths)) else ""
        return Selection(ordered, "list", "list", f"explicit list: {_span(ordered)}{moved}")

    def _preset(self, spec: str, max_layers: int) -> Selection:
        every = self.conv_linear_layers()
        if spec == "all":
            if not every:
                raise TransferVizError("analysis.layers: the model has no conv or hidden linear layer; "
                                       "list the module paths to analyse")
            return Selection(every, "all", "all", f"all: every conv and hidden linear layer: {_span(every)}")
        blocks = self.block_layers()
        if spec == "blocks":
            if not blocks:
                raise TransferVizError("analysis.layers: the model has no blocks or conv/linear layers; "
                                       "list the module paths to analyse")
            return Selection(blocks, "blocks", "blocks", f"blocks: stage/block outputs and hidden linear layers: "
                                                         f"{_span(blocks)}")
        if every and len(every) <= max_layers:
            return Selection(every, "auto", "all", f"auto: {len(every)} conv/linear layers <= {max_layers}, "
                                                   f"using all: {_span(every)}")
        used, chosen = ("blocks", blocks) if blocks else ("all", every)
        if not chosen:
            raise TransferVizError("analysis.layers: the model has no conv or linear layer to analyse; "
                                   "list the module paths to analyse")
        thinned = _thin(chosen, max_layers)
        extra = f", {len(chosen)} thinned evenly to {len(thinned)}" if len(thinned) < len(chosen) else ""
        return Selection(thinned, "auto", used, f"auto: {len(every)} conv/linear layers > {max_layers}, using "
                                                f"{used}{extra}: {_span(thinned)}")

    # -- graph queries -------------------------------------------------------------------
    def _reach(self, start: int, forward: bool, avoid: int | None = None) -> set[int]:
        seen = {start}
        todo = deque([start])
        while todo:
            n = todo.popleft()
            for m in (self._consumers[n] if forward else self.nodes[n].inputs):
                if m != avoid and m not in seen:
                    seen.add(m)
                    todo.append(m)
        return seen

    def is_cut(self, path: str) -> bool:
        """Whether every path from the input to the output goes through the module's output."""
        out = self.modules[path].out
        if out is None:
            return False
        if out in (self.input, self.output):
            return True
        return self.output not in self._reach(self.input, forward=True, avoid=out)

    def _channel_path(self, start: int | None, target: int) -> bool:
        """Whether ``start`` is computed from ``target`` through single-input per-channel operations."""
        n = start
        for _ in range(len(self.nodes)):
            if n is None:
                return False
            if n == target:
                return True
            node = self.nodes[n]
            if node.op != CHANNEL or len(node.inputs) != 1:
                return False
            n = node.inputs[0]
        return False

    def _inner_weights(self, path: str) -> str | None:
        """The one Conv2d/Linear inside a block whose output the block's output is, up to per-channel ops."""
        m = self.modules[path]
        n = m.out
        for _ in range(len(self.nodes)):
            if n is None:
                return None
            node = self.nodes[n]
            if node.op in (CONV, LINEAR) and node.module is not None:
                return node.module if node.module.startswith(path + ".") else None
            if node.op != CHANNEL or len(node.inputs) != 1:
                return None
            n = node.inputs[0]
        return None

    def link(self, a: str, b: str) -> Link:
        """Whether layers ``a`` and ``b`` (``a`` first) are joined by one weight matrix (module docstring)."""
        ma, mb = self.modules[a], self.modules[b]
        assert ma.out is not None and mb.out is not None
        below = self._reach(ma.out, forward=True)
        if mb.out not in below:
            return Link(a, b, False, f"{b} does not take {a}'s output (parallel branches)")
        weights = b if mb.leaf else self._inner_weights(b)
        if weights is not None and (self._is(weights, nn.Conv2d) or self._is(weights, nn.Linear)) \
                and self._channel_path(self.modules[weights].inp, ma.out):
            mismatch = self._size_mismatch(a, weights)
            if mismatch is None:
                return Link(a, b, True, "", weights)
            return Link(a, b, False, mismatch)
        between = (below & self._reach(mb.out, forward=False)) - {ma.out}
        return Link(a, b, False, self._reason(a, b, between))

    def _size_mismatch(self, a: str, weights: str) -> str | None:
        shape = self.modules[a].shape
        assert shape is not None
        mod_t = self.module_types[weights]
        in_shape = self.modules[weights].in_shape
        n = int(shape[0])
        if issubclass(mod_t, nn.Conv2d):
            if in_shape is None or int(in_shape[0]) != n:
                return f"{weights} takes {in_shape[0] if in_shape else '?'} channels, not {a}'s {n}"
            return None
        if in_shape is None or len(in_shape) != 1:
            return f"{weights} is a Linear layer applied to a {len(in_shape or ()) + 1}-D tensor"
        f = int(in_shape[0])
        if f == n or (len(shape) == 3 and f == n * int(shape[1]) * int(shape[2])) \
                or (len(shape) == 3 and f % n == 0):
            return None
        return f"{weights} takes {f} features, which do not split into {a}'s {n} neurons"

    def _reason(self, a: str, b: str, between: set[int]) -> str:
        nodes = [self.nodes[i] for i in sorted(between)]
        if any(n.op == ADD for n in nodes):
            return "joined through a residual addition"
        if any(n.op == CAT for n in nodes):
            return "joined through a concatenation"
        products = [n for n in nodes if n.op == MUL]
        if products:
            if any(self._squeeze_excitation(n) for n in products):
                return "joined through a squeeze-and-excitation product"
            return "joined through an elementwise product"
        mb = self.modules[b]
        if not mb.leaf and self._has_weights(b):
            return f"{b} contains its own convolutions" if any(
                self._is(q, nn.Conv2d) for q in self.modules if q.startswith(b + ".")) \
                else f"{b} contains its own linear layers"
        layers = [n.module for n in nodes if n.op in (CONV, LINEAR) and n.module is not None and n.module != b]
        if layers:
            more = f" and {len(layers) - 1} more layers" if len(layers) > 1 else ""
            return f"joined through {layers[0]}{more}, which is not analysed"
        if mb.leaf and not (self._is(b, nn.Conv2d) or self._is(b, nn.Linear)):
            return f"{b} is a {self.module_types[b].__name__}, not a Conv2d or Linear layer with weights"
        others = [n for n in nodes if n.op == OTHER]
        if others:
            return f"joined through {others[0].label}, which is not a per-channel operation"
        if mb.leaf:
            return f"{b} is a {self.module_types[b].__name__}, whose weights are not analysed"
        return "not joined by one weight matrix"

    def _squeeze_excitation(self, node: Node) -> bool:
        """A product of two data tensors where one factor comes from a global pooling the other lacks."""
        if len(node.inputs) < 2:
            return False
        ups = [self._reach(i, forward=False) for i in node.inputs[:2]]
        pools = [{n for n in u if self.nodes[n].global_pool} for u in ups]
        return bool(pools[0] - ups[1]) or bool(pools[1] - ups[0])

    def links(self, layers: Sequence[str]) -> list[Link]:
        """One :class:`Link` per pair of consecutive layers."""
        return [self.link(a, b) for a, b in zip(layers[:-1], layers[1:])]

    def embedding_layer(self) -> str | None:
        """The first Linear layer (forward order) that takes an (N, F) input: its input is the embedding."""
        linears = [p for p, m in self.modules.items() if self._is(p, nn.Linear) and m.in_shape is not None
                   and len(m.in_shape) == 1]
        return self.in_forward_order(linears)[0] if linears else None

    def summary(self, layers: Sequence[str]) -> dict[str, Any]:
        """What ``models/graph.json`` stores about ``layers``: per layer kind and cut, and the links."""
        rows = []
        for p in layers:
            kind = ("conv" if self._is(p, nn.Conv2d) else "linear" if self._is(p, nn.Linear)
                    else "block" if not self.modules[p].leaf else "other")
            rows.append({"name": p, "type": self.module_types[p].__name__, "kind": kind, "cut": self.is_cut(p)})
        return {"method": self.method, "note": self.note, "layers": rows,
                "links": [lk.as_dict() for lk in self.links(layers)]}


def _span(layers: Sequence[str]) -> str:
    shown = " ".join(layers) if len(layers) <= 4 else f"{layers[0]} {layers[1]} ... {layers[-1]}"
    return f"{shown} ({len(layers)} layer{'s' if len(layers) != 1 else ''})"


def _thin(layers: Sequence[str], k: int) -> list[str]:
    """At most ``k`` of ``layers``, evenly spaced, the first and the last kept."""
    n = len(layers)
    if n <= k:
        return list(layers)
    if k == 1:
        return [layers[-1]]
    idx = sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})
    return [layers[i] for i in idx]


# --- tracing ------------------------------------------------------------------------------

def _example(model: nn.Module, input_size: int | None, in_channels: int | None) -> Tensor:
    """A zero batch of two the model accepts: the given size, or the first of a few usual ones."""
    first = next((m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))), None)
    param = next(model.parameters(), torch.empty(0))
    kw: dict[str, Any] = {"device": param.device, "dtype": param.dtype if param.is_floating_point() else None}
    if isinstance(first, nn.Linear) and input_size is None:
        return torch.zeros(2, first.in_features, **kw)
    channels = in_channels or (first.in_channels if isinstance(first, nn.Conv2d) else 3)
    if input_size is not None:  # the caller knows it: tracing will say if the model does not take it
        return torch.zeros(2, channels, input_size, input_size, **kw)
    sizes = [224, 32, 28, 64, 96, 128, 299]
    last: Exception | None = None
    was_training = model.training
    model.eval()
    try:
        for s in sizes:
            x = torch.zeros(2, channels, s, s, **kw)
            try:
                with torch.no_grad():
                    model(x)
                return x
            except Exception as exc:  # noqa: BLE001 - a size the model does not take
                last = exc
    finally:
        model.train(was_training)
    why = " ".join(str(last).split())[:200]
    raise TransferVizError(f"the model does not run on a ({channels}, {sizes[0]}, {sizes[0]}) input ({why})")


def _name(target: Any) -> str:
    return target if isinstance(target, str) else str(getattr(target, "__name__", target))


def _classify_module(mod: nn.Module) -> str:
    if isinstance(mod, nn.modules.conv._ConvNd):
        return CONV
    if isinstance(mod, nn.Linear):
        return LINEAR
    if isinstance(mod, _CHANNEL_MODULES):
        return CHANNEL
    return OTHER


def _shape_channel_preserving(in_shape: tuple[int, ...] | None, out_shape: tuple[int, ...] | None) -> bool:
    """A reshape or reduction that keeps each channel's values together: same shape, (N, C, H, W) ->
    (N, C*H*W) channel-major or (N, C) or (N, C, 1, 1), and back from (N, C) to (N, C, 1, 1)."""
    if in_shape is None or out_shape is None:
        return False
    if in_shape == out_shape:
        return True
    if len(in_shape) == 3 and len(out_shape) == 1:
        return out_shape[0] in (in_shape[0], in_shape[0] * in_shape[1] * in_shape[2])
    if len(in_shape) == 3 and len(out_shape) == 3:
        return out_shape[0] == in_shape[0] and out_shape[1:] == (1, 1)
    if len(in_shape) == 1 and len(out_shape) == 3:
        return out_shape[0] == in_shape[0] and out_shape[1:] == (1, 1)
    return False


class _Tracer:
    """torchvision's NodePathTracer, also recording each module call's input and output proxies."""

    def __new__(cls) -> Any:
        from torchvision.models.feature_extraction import NodePathTracer

        class Tracer(NodePathTracer):
            def __init__(self) -> None:
                # no leaf modules beyond torch.nn's: torchvision blocks (Conv2dNormActivation,
                # SqueezeExcitation) are traced through, so their convs and products are seen
                super().__init__(leaf_modules=[], autowrap_modules=(math,))
                self.calls: list[tuple[str, nn.Module, Any, Any]] = []

            def call_module(self, m: nn.Module, forward: Callable, args: Any, kwargs: Any) -> Any:
                out = super().call_module(m, forward, args, kwargs)
                try:
                    path = self.path_of_module(m)
                except NameError:
                    return out
                self.calls.append((path, m, args, out))
                return out

        return Tracer()


def _first_proxy(args: Any) -> fx.Node | None:
    for a in args:
        if isinstance(a, fx.Proxy):
            return a.node
        if isinstance(a, (list, tuple)):
            for b in a:
                if isinstance(b, fx.Proxy):
                    return b.node
    return None


def _trace_fx(model: nn.Module, x: Tensor) -> tuple[list[Node], int, int, dict[str, ModuleCall]]:
    tracer = _Tracer()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = tracer.trace(model)
    gm = fx.GraphModule(model, graph)
    values: dict[fx.Node, tuple[bool, tuple[int, ...] | None]] = {}
    alias: set[fx.Node] = set()  # nodes that return an input tensor unchanged

    class Record(fx.Interpreter):
        def run_node(self, n: fx.Node) -> Any:
            before = [(t, t._version) for a in n.all_input_nodes if isinstance(t := self.env.get(a), Tensor)]
            r = super().run_node(n)
            if any(r is t and r._version == v for t, v in before):
                alias.add(n)
            is_tensor = isinstance(r, Tensor) or (isinstance(r, (list, tuple))
                                                  and any(isinstance(e, Tensor) for e in r))
            shape = tuple(int(s) for s in r.shape[1:]) if isinstance(r, Tensor) and r.dim() >= 1 else None
            values[n] = (is_tensor, shape)
            return r

    with torch.no_grad():
        Record(gm).run(x)
    fx_nodes = list(graph.nodes)
    index = {n: i for i, n in enumerate(fx_nodes)}
    data: dict[fx.Node, bool] = {}
    nodes: list[Node] = []
    inp = out = -1
    modules = dict(model.named_modules())
    for i, n in enumerate(fx_nodes):
        is_tensor, shape = values.get(n, (False, None))
        ins = tuple(index[a] for a in n.all_input_nodes if data.get(a))
        data[n] = n.op == "placeholder" or (n.op == "output" and bool(ins)) or (is_tensor and bool(ins))
        label = tracer.node_to_qualname.get(n, n.name)
        module = None
        pool = False
        if n.op == "placeholder":
            op, inp = INPUT, i
        elif n.op == "output":
            op, out = OUTPUT, i
        elif n.op == "call_module":
            mod = modules[str(n.target)]
            op, module = _classify_module(mod), str(n.target)
            label = f"{n.target} ({type(mod).__name__})"
            pool = isinstance(mod, _GLOBAL_POOL_MODULES)
        elif n.op in ("call_function", "call_method"):
            name = _name(n.target)
            first = n.all_input_nodes[0] if n.all_input_nodes else None
            in_shape = values.get(first, (False, None))[1] if first is not None else None
            if name in _ADD_FUNCS:
                op = ADD if len(ins) >= 2 else CHANNEL
            elif name in _MUL_FUNCS:
                op = MUL if len(ins) >= 2 else CHANNEL
            elif name in _CAT_FUNCS:
                op = CAT
            elif name in _CHANNEL_FUNCS:
                op = CHANNEL
                pool = name in _GLOBAL_POOL_FUNCS
            elif name in _RESHAPE_FUNCS or name in _REDUCE_FUNCS:
                op = CHANNEL if _shape_channel_preserving(in_shape, shape) else OTHER
                pool = name in _GLOBAL_POOL_FUNCS and op == CHANNEL and in_shape != shape
            elif name == "getitem" and first is not None and nodes[index[first]].op == CHANNEL \
                    and not isinstance(values.get(first, (False, None))[1], tuple):
                op = CHANNEL  # an item of a per-channel op's tuple (max_pool2d with indices)
            else:
                op = OTHER
            label = f"{label} ({name})" if name not in label else label
        else:  # get_attr
            op = OTHER
        nodes.append(Node(i, op, label, ins if data[n] or n.op == "output" else (), module, pool))
    calls: dict[str, list[tuple[nn.Module, Any, Any, int]]] = {}
    for seq, (path, mod, args, result) in enumerate(tracer.calls):
        calls.setdefault(path, []).append((mod, args, result, seq))
    records: dict[str, ModuleCall] = {}
    for path, cs in calls.items():
        mod, args, result, seq = cs[0]
        in_node = _first_proxy(args)
        out_node = result.node if isinstance(result, fx.Proxy) else None
        out_i = index[out_node] if out_node is not None and data.get(out_node) else None
        in_i = index[in_node] if in_node is not None and data.get(in_node) else None
        shape = values.get(out_node, (False, None))[1] if out_node is not None else None
        in_shape = values.get(in_node, (False, None))[1] if in_node is not None else None
        records[path] = ModuleCall(path, type(mod).__name__, not list(mod.children()), len(cs), out_i, in_i,
                                   shape, in_shape,
                                   out_node is not None and (out_node is in_node or out_node in alias), seq)
    return nodes, inp, out, records


def _trace_hooks(model: nn.Module, x: Tensor) -> tuple[list[Node], int, int, dict[str, ModuleCall]]:
    """The fallback: module calls from hooks, the graph from the autograd graph of one forward pass."""
    x = x.clone().requires_grad_(True)
    rec: dict[str, dict[str, Any]] = {}
    seq = [0]

    def pre(path: str) -> Callable:
        def hook(mod: nn.Module, args: Any) -> None:
            r = rec.setdefault(path, {"calls": 0})
            r["calls"] += 1
            if r["calls"] == 1:
                t = next((a for a in args if isinstance(a, Tensor)), None)
                r["in"] = None if t is None else ("input" if t is x else t.grad_fn)
                r["in_shape"] = tuple(int(s) for s in t.shape[1:]) if t is not None else None
                r["args"] = [(a, a._version) for a in args if isinstance(a, Tensor)]
        return hook

    def post(path: str) -> Callable:
        def hook(mod: nn.Module, args: Any, result: Any) -> None:
            r = rec[path]
            if "seq" in r:
                return
            r["seq"] = seq[0]
            seq[0] += 1
            if isinstance(result, Tensor):
                r["out"] = "input" if result is x else result.grad_fn
                r["shape"] = tuple(int(s) for s in result.shape[1:])
                r["alias"] = any(result is a and a._version == v for a, v in r.pop("args", []))
            else:
                r["out"], r["shape"], r["alias"] = None, None, False
                r.pop("args", None)
        return hook

    named = [(p, m) for p, m in model.named_modules() if p]
    handles = [m.register_forward_pre_hook(pre(p)) for p, m in named]
    handles += [m.register_forward_hook(post(p)) for p, m in named]
    try:
        with torch.enable_grad():
            y = model(x)
    finally:
        for h in handles:
            h.remove()
    if not isinstance(y, Tensor) or y.grad_fn is None:
        raise TransferVizError("the model's output has no autograd graph from its input; "
                               "list analysis.layers and make the forward pass differentiable")
    # every autograd node from the output back, in a topological (forward) order
    order: list[Any] = []
    state: dict[Any, int] = {}
    stack: list[tuple[Any, bool]] = [(y.grad_fn, False)]
    while stack:
        fn, done = stack.pop()
        if done:
            order.append(fn)
            continue
        if fn in state:
            continue
        state[fn] = 1
        stack.append((fn, True))
        for nxt, _ in reversed(fn.next_functions):
            if nxt is not None and nxt not in state:
                stack.append((nxt, False))
    in_fn = next((fn for fn in order if type(fn).__name__ == "AccumulateGrad" and fn.variable is x), None)
    index = {fn: i for i, fn in enumerate(order)}
    derived: dict[Any, bool] = {}
    for fn in order:
        derived[fn] = fn is in_fn or any(derived.get(n, False) for n, _ in fn.next_functions if n is not None)
    leaf_of: dict[Any, tuple[str, nn.Module]] = {}
    modules = dict(named)
    for p, r in rec.items():
        if r.get("out") is not None and r["out"] != "input" and not list(modules[p].children()):
            leaf_of.setdefault(r["out"], (p, modules[p]))
    nodes: list[Node] = []
    for i, fn in enumerate(order):
        ins = tuple(index[n] for n, _ in fn.next_functions if n is not None and derived.get(n))
        name = type(fn).__name__
        base = name.split("Backward")[0]
        module = None
        pool = base.startswith(_AUTOGRAD_GLOBAL_POOL)
        if fn is in_fn:
            op = INPUT
        elif fn in leaf_of:
            module, mod = leaf_of[fn]
            op = _classify_module(mod)
            pool = isinstance(mod, _GLOBAL_POOL_MODULES)
            name = f"{module} ({type(mod).__name__})"
        elif base in ("Add", "Sub"):
            op = ADD if len(ins) >= 2 else CHANNEL
        elif base in ("Mul", "Div"):
            op = MUL if len(ins) >= 2 else CHANNEL
        elif base in ("Cat", "Stack"):
            op = CAT
        elif base.startswith("Convolution"):
            op = CONV
        elif base in ("Addmm", "Mm", "Linear"):
            op = LINEAR
        elif base.startswith(_AUTOGRAD_CHANNEL):
            op = CHANNEL
        else:
            op = OTHER
        nodes.append(Node(i, op, name, ins if derived[fn] else (), module, pool))
    if in_fn is None:
        raise TransferVizError("the model's output does not depend on its input through autograd")
    out = len(nodes)
    nodes.append(Node(out, OUTPUT, "output", (index[y.grad_fn],)))
    records: dict[str, ModuleCall] = {}
    for p, r in rec.items():
        if "seq" not in r:
            continue

        def node_of(fn: Any) -> int | None:
            if fn == "input":
                return index[in_fn]
            return index[fn] if fn is not None and derived.get(fn) else None

        records[p] = ModuleCall(p, type(modules[p]).__name__, not list(modules[p].children()), r["calls"],
                                node_of(r.get("out")), node_of(r.get("in")), r.get("shape"), r.get("in_shape"),
                                bool(r.get("alias")), r["seq"])
    return nodes, index[in_fn], out, records


def trace_model(model: nn.Module, input_size: int | None = None, in_channels: int | None = None, *,
                example: Tensor | None = None, method: str = "auto") -> ModelGraph:
    """The model's :class:`ModelGraph`, traced in eval mode on a zero batch (``input_size`` px,
    or ``example``; without either, the first of a few usual sizes the model takes).

    ``method``: ``auto`` (``torch.fx``, falling back to a hooked forward pass), ``fx`` or ``hooks``.
    The model's training flag is restored; its parameters are not changed.
    """
    x = example if example is not None else _example(model, input_size, in_channels)
    was_training = model.training
    model.eval()
    note = ""
    try:
        if method in ("auto", "fx"):
            try:
                nodes, inp, out, records = _trace_fx(model, x)
                used = "fx"
            except Exception as exc:  # noqa: BLE001 - fx fails in many ways on untraceable code
                if method == "fx":
                    raise
                first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
                note = f"torch.fx cannot trace the model ({type(exc).__name__}: {first[:160]}); " \
                       "layers and links come from a hooked forward pass"
                method = "hooks"
        if method == "hooks":
            try:
                nodes, inp, out, records = _trace_hooks(model, x)
            except TransferVizError:
                raise
            except Exception as exc:  # noqa: BLE001 - whatever the forward pass raised, in one line
                first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
                raise TransferVizError(f"cannot find the model's layers: a hooked forward pass on a zero batch "
                                       f"failed ({type(exc).__name__}: {first[:160]})") from exc
            used = "hooks"
    finally:
        model.train(was_training)
    types = {p: type(m) for p, m in model.named_modules()}
    children: dict[str, list[str]] = {p: [] for p in types}
    for p in types:
        if p:
            parent = p.rsplit(".", 1)[0] if "." in p else ""
            children.setdefault(parent, []).append(p)
    return ModelGraph(nodes, inp, out, records, types, children, used, note)
