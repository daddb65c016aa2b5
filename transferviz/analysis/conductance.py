"""Multi-layer Layer Conductance: one set of interpolated forward/backward passes serves all layers.

For a hidden element ``y`` of a layer's output, the conductance along the straight path
from a baseline ``b`` to the input ``x`` is discretised exactly as
``captum.attr.LayerConductance`` does it::

    cond(y) = sum_{k < n} dF/dy(x_k) * (y(x_{k+1}) - y(x_k)),   x_k = b + alpha_k (x - b)

with ``alpha_0 .. alpha_n = alphas(n_steps + 1)`` of captum's approximation method and
``F`` the model's output logit for the instance's target class. Captum runs the whole
path once per layer; here forward hooks capture every analysed layer's output in the same
pass and a single ``torch.autograd.grad`` call returns the gradients w.r.t. all of them,
so L layers cost one path instead of L.
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass
from typing import Callable, Iterator, Literal, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from transferviz.errors import TransferVizError

__all__ = ["ConductanceResult", "layer_conductance", "path_alphas"]

Reduce = Literal["max", "sum", "none"]

# Bytes held per interpolation point divided by the bytes of its leaf-module outputs: the
# autograd graph's saved tensors, the layer gradients and the float32 step differences.
_MEMORY_FACTOR = 3.0
_EPS = 1e-6
_CHANNELS_LAST = True
# On CPU, passes with a working set beyond this run slower (cache locality), not faster.
_CPU_PASS_MB = 256.0


@dataclass
class ConductanceResult:
    """Per-layer conductance values and the completeness gap of the discretised path.

    ``values[layer]`` is ``(N, neurons)`` float32 (a conv neuron is an output channel,
    reduced over its H x W map), or the full ``(N, *layer_output_shape)`` map for
    ``reduce="none"``. ``completeness[layer]`` is the mean over instances of
    ``|sum(conductance over all layer elements) - (F(x) - F(b))| / max(|F(x) - F(b)|, eps)``.
    """

    values: dict[str, np.ndarray]
    completeness: dict[str, float]


def path_alphas(method: str, n_steps: int) -> list[float]:
    """The ``n_steps + 1`` path coefficients captum's LayerConductance evaluates for ``method``."""
    from captum.attr._utils.approximation_methods import approximation_parameters

    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    _, alphas_fn = approximation_parameters(method)  # raises ValueError on an unknown method
    return [float(a) for a in alphas_fn(n_steps + 1)]


class _Capture:
    """Forward hooks that keep each analysed layer's output of the latest forward pass."""

    def __init__(self, modules: dict[str, nn.Module]) -> None:
        self.clone: set[str] = set()  # layers whose output a later op edits in place
        self.acts: dict[str, Tensor] = {}
        self._versions: dict[str, int] = {}
        self._handles = [m.register_forward_hook(self._hook(name)) for name, m in modules.items()]

    def _hook(self, name: str) -> Callable:
        def hook(module: nn.Module, inp: tuple, out: Tensor) -> Tensor | None:
            if not isinstance(out, Tensor):
                raise TransferVizError(f"layer {name!r} returns {type(out).__name__}, not a tensor; "
                                       "analyse a conv or linear layer")
            if name in self.acts:
                raise TransferVizError(f"layer {name!r} runs more than once per forward pass; "
                                       "shared modules cannot be analysed")
            if torch.is_grad_enabled() and not out.requires_grad:
                # Parameters are frozen and the input needs no gradient, so the graph starts
                # here: nothing below the first analysed layer is differentiated.
                out.requires_grad_()
            self.acts[name] = out
            self._versions[name] = out._version
            if name in self.clone:
                # The in-place op then edits the clone; gradients still flow back to `out`.
                return out.clone()
            return None

        return hook

    def edited_in_place(self) -> list[str]:
        return [n for n, t in self.acts.items() if t._version != self._versions[n]]

    def reset(self) -> None:
        self.acts = {}
        self._versions = {}

    def remove(self) -> None:
        for h in self._handles:
            h.remove()


def _resolve_device(device: torch.device | str | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _autocast_ctx(device: torch.device,
                  autocast: bool | torch.dtype) -> Callable[[], contextlib.AbstractContextManager]:
    if autocast is False or autocast is None:
        return contextlib.nullcontext
    # float16 rather than bfloat16 by default: conductance multiplies gradients by differences
    # of activations at neighbouring path points, and bf16's 8-bit mantissa loses those
    # differences (about 10% error at the peak vs about 2% with fp16's 11 bits).
    dtype = autocast if isinstance(autocast, torch.dtype) else torch.float16
    return lambda: torch.autocast(device_type=device.type, dtype=dtype)


def _working_copy(model: nn.Module, device: torch.device) -> nn.Module:
    """A frozen eval-mode copy with in-place activations off; the caller's model is untouched.

    Turning ``inplace`` off spares a clone of each hooked output (an in-place ReLU right
    after a conv would otherwise overwrite the captured activation and its autograd history).
    """
    work = copy.deepcopy(model)
    for m in work.modules():
        if isinstance(getattr(m, "inplace", None), bool):
            # setattr: Module.__setattr__ is typed for tensors and modules only, not plain flags
            setattr(m, "inplace", False)
    return work.eval().requires_grad_(False).to(device)


def _probe(work: nn.Module, capture: _Capture, x1: Tensor, layers: Sequence[str],
           amp: Callable[[], contextlib.AbstractContextManager]) -> int:
    """Runs one sample; finds in-place edits of hooked outputs; returns activation bytes per sample."""
    leaf_bytes = [x1.nbytes]

    def count(module: nn.Module, inp: tuple, out: object) -> None:
        if isinstance(out, Tensor):
            leaf_bytes.append(out.nbytes)

    handles = [m.register_forward_hook(count) for m in work.modules() if not any(True for _ in m.children())]
    try:
        with torch.no_grad(), amp():
            capture.reset()
            work(x1)
    finally:
        for h in handles:
            h.remove()
    missing = [n for n in layers if n not in capture.acts]
    if missing:
        raise TransferVizError(f"layer {missing[0]!r} does not run in the model's forward pass; "
                               "check analysis layers")
    # Functional in-place ops (e.g. F.relu(x, inplace=True) in a custom forward) that the
    # module flags could not turn off: clone those outputs in the hook from now on.
    capture.clone.update(capture.edited_in_place())
    capture.reset()
    return sum(leaf_bytes)


def _baseline_tensor(baseline: float | Tensor, inputs: Tensor) -> Tensor:
    """The baseline as (1 | N, *sample_shape), in the inputs' dtype and device."""
    b = torch.as_tensor(baseline, dtype=inputs.dtype, device=inputs.device)
    if b.dim() == 0:
        return b.expand(1, *inputs.shape[1:])
    if b.shape == inputs.shape[1:]:
        b = b.unsqueeze(0)
    if b.dim() != inputs.dim() or b.shape[0] not in (1, inputs.shape[0]) or b.shape[1:] != inputs.shape[1:]:
        raise ValueError(f"baseline shape {tuple(b.shape)} does not match inputs {tuple(inputs.shape)}")
    return b


def _plan(n: int, n_points: int, bytes_per_point: float, budget_mb: float) -> tuple[int, int]:
    """(instances per block, points per segment) within the memory budget."""
    points = int(budget_mb * 2**20 // max(bytes_per_point, 1.0))
    if points >= n_points:
        return max(1, min(n, points // n_points)), n_points
    # One instance's path does not fit: split it into segments, carrying the last point over.
    return 1, max(1, points)


def _pass_budget_mb(dev: torch.device, memory_budget_mb: float, path_bytes: float) -> float:
    """Megabytes one forward/backward pass may hold.

    On a GPU, the whole budget. On a CPU, passes of a small network run faster below
    ``_CPU_PASS_MB`` (cache locality), but a large one (a ResNet at 224 px: ~85 MB a path point)
    would then run one or two points a pass, and tiny convolution batches cost far more than
    locality saves: there a pass may grow to hold one instance's whole path, within the budget.
    """
    if dev.type != "cpu":
        return memory_budget_mb
    return min(memory_budget_mb, max(_CPU_PASS_MB, path_bytes / 2**20))


def _segments(n_points: int, seg: int) -> Iterator[range]:
    for p0 in range(0, n_points, seg):
        yield range(p0, min(n_points, p0 + seg))


def _reduce(cond: Tensor, reduce: Reduce) -> Tensor:
    if reduce == "none" or cond.dim() <= 2:
        return cond
    dims = tuple(range(2, cond.dim()))
    return cond.amax(dim=dims) if reduce == "max" else cond.sum(dim=dims)


def layer_conductance(model: nn.Module, layers: Sequence[str], inputs: Tensor, targets: Tensor | int, *,
                      n_steps: int = 20, method: str = "gausslegendre", baseline: float | Tensor = 0.0,
                      memory_budget_mb: float = 4096, device: torch.device | str | None = None,
                      autocast: bool | torch.dtype = False, reduce: Reduce = "max",
                      progress: Callable[[int], None] | None = None) -> ConductanceResult:
    """Layer Conductance of ``targets``' logits at every layer in ``layers``, from one path per instance.

    Matches ``captum.attr.LayerConductance(model, layer).attribute(inputs, baselines=baseline,
    target=targets, n_steps=n_steps, method=method)`` for each layer (attributions at the
    layer module's output). Instances and path points are batched under
    ``memory_budget_mb``; ``progress`` receives the number of instances done so far.
    ``autocast`` (True = float16, or a dtype) runs the passes in reduced precision, for speed
    on GPUs; the step products and sums stay float32, but values lose about 2% (fp16) to 10%
    (bf16) of accuracy because neighbouring path points' activations are close.
    """
    if reduce not in ("max", "sum", "none"):
        raise ValueError(f"reduce must be 'max', 'sum' or 'none', got {reduce!r}")
    layers = list(dict.fromkeys(layers))
    if not layers:
        raise ValueError("no layers to analyse")
    named = dict(model.named_modules())
    unknown = [n for n in layers if n not in named or n == ""]
    if unknown:
        raise TransferVizError(f"layer {unknown[0]!r} is not a module of the model; "
                               "use module paths such as 'features.0'")
    alphas = path_alphas(method, n_steps)
    dev = _resolve_device(device)
    amp = _autocast_ctx(dev, autocast)

    if not inputs.is_floating_point():
        inputs = inputs.float()
    n = inputs.shape[0]
    targets = torch.as_tensor(targets, dtype=torch.long)
    if targets.dim() == 0:
        targets = targets.expand(n)
    if targets.shape != (n,):
        raise ValueError(f"targets shape {tuple(targets.shape)} does not match {n} inputs")
    base = _baseline_tensor(baseline, inputs)
    if n == 0:
        return ConductanceResult({k: np.zeros((0, 0), np.float32) for k in layers}, dict.fromkeys(layers, 0.0))

    # Callers may sit in torch.inference_mode() or no_grad(); the path needs autograd.
    with torch.inference_mode(False):
        return _run(model, layers, inputs, targets, base, alphas, dev, amp, memory_budget_mb, reduce, progress)


def _run(model: nn.Module, layers: list[str], inputs: Tensor, targets: Tensor, base: Tensor,
         alphas: list[float], dev: torch.device, amp: Callable[[], contextlib.AbstractContextManager],
         memory_budget_mb: float, reduce: Reduce, progress: Callable[[int], None] | None) -> ConductanceResult:
    n = inputs.shape[0]
    n_steps = len(alphas) - 1
    n_points = len(alphas)
    shared_base = base.shape[0] == 1
    # F(x) and F(b) for completeness come free from the path when it includes its endpoints
    # (riemann_trapezoid); otherwise they are added to the forward-only pass.
    need_fx, need_fb = alphas[-1] != 1.0, alphas[0] != 0.0
    work = _working_copy(model, dev)
    capture = _Capture({name: work.get_submodule(name) for name in layers})
    try:
        values: dict[str, np.ndarray] = {}
        gap_sum = dict.fromkeys(layers, 0.0)
        fmt = torch.contiguous_format
        if inputs.dim() == 4 and _CHANNELS_LAST:
            # NHWC makes CPU max-pooling about 4x and convolutions about 2x faster (and suits
            # tensor cores); a forward that needs NCHW (e.g. .view after a conv) falls back.
            try:
                work.to(memory_format=torch.channels_last)
                fmt = torch.channels_last
                per_sample = _probe(work, capture, inputs[:1].to(dev).contiguous(memory_format=fmt), layers, amp)
            except RuntimeError:
                work.to(memory_format=torch.contiguous_format)
                fmt = torch.contiguous_format
        if fmt is torch.contiguous_format:
            per_sample = _probe(work, capture, inputs[:1].to(dev), layers, amp)
        alphas_t = torch.tensor(alphas, dtype=inputs.dtype, device=dev)
        budget = _pass_budget_mb(dev, memory_budget_mb, per_sample * _MEMORY_FACTOR * n_points)
        block, seg = _plan(n, n_points, per_sample * _MEMORY_FACTOR, budget)

        for i0 in range(0, n, block):
            i1 = min(n, i0 + block)
            bsz = i1 - i0
            x = inputs[i0:i1].to(dev, non_blocking=True).contiguous(memory_format=fmt)
            b = (base if shared_base else base[i0:i1]).to(dev, non_blocking=True).contiguous(memory_format=fmt)
            t = targets[i0:i1].to(dev)
            diff = x - b
            cond: dict[str, Tensor] = {}
            carry: dict[str, tuple[Tensor, Tensor]] = {}
            f_x: Tensor | None = None
            f_b: Tensor | None = None

            for pts in _segments(n_points, seg):
                grad_pts = [p for p in pts if p < n_steps]  # the path's last point needs no gradient
                if grad_pts:
                    a_pts = alphas_t[grad_pts[0]:grad_pts[-1] + 1].view(-1, *([1] * x.dim()))
                    # point-major, as captum orders the path
                    xs = (b + a_pts * diff).flatten(0, 1).contiguous(memory_format=fmt)
                    capture.reset()
                    with torch.enable_grad(), amp():
                        logits = work(xs)
                    _check_in_place(capture)
                    sel = torch.zeros_like(logits)
                    sel[torch.arange(len(xs), device=dev), t.repeat(len(grad_pts))] = 1.0
                    outs = [capture.acts[name] for name in layers]
                    capture.reset()
                    gs = torch.autograd.grad(logits, outs, grad_outputs=sel, allow_unused=True)
                    if grad_pts[0] == 0 and not need_fb:
                        f_b = _pick(logits[:bsz].detach(), t)
                    del logits, sel
                    for name, a, g in zip(layers, outs, gs):
                        a = _acc(a.detach()).unflatten(0, (len(grad_pts), bsz))
                        g = torch.zeros_like(a) if g is None else _acc(g).unflatten(0, (len(grad_pts), bsz))
                        _fold(cond, carry, name, a, g)
                    del outs, gs
                if pts[-1] == n_steps:
                    extra = [b + alphas[n_steps] * diff]
                    if need_fx:
                        extra.append(x)
                    if need_fb:
                        extra.append(b)  # one row when the baseline is shared
                    capture.reset()
                    with torch.no_grad(), amp():
                        xs = torch.cat(extra) if len(extra) > 1 else extra[0]
                        logits = work(xs.contiguous(memory_format=fmt))
                    _check_in_place(capture)
                    for name in layers:
                        _fold(cond, carry, name, _acc(capture.acts[name][:bsz]).unsqueeze(0), None)
                    capture.reset()
                    lg = _acc(logits)
                    f_x = _pick(lg[bsz:2 * bsz] if need_fx else lg[:bsz], t)
                    if need_fb:
                        f_b = _pick(lg[-1:].expand(bsz, -1) if shared_base else lg[-bsz:], t)

            # the first piece starts at point 0 and the last one ends at n_steps, so both are set
            assert f_x is not None and f_b is not None
            delta = (f_x - f_b).double()
            denom = delta.abs().clamp_min(_EPS)
            for name in layers:
                c = cond[name]
                total = c.flatten(1).sum(1, dtype=torch.float64)
                gap_sum[name] += float(((total - delta).abs() / denom).sum())
                r = _reduce(c, reduce).cpu().numpy().astype(np.float32, copy=False)
                if name not in values:
                    values[name] = np.empty((n, *r.shape[1:]), np.float32)
                values[name][i0:i1] = r
            if progress is not None:
                progress(i1)
        return ConductanceResult(values, {k: v / n for k, v in gap_sum.items()})
    finally:
        capture.remove()


def _fold(cond: dict[str, Tensor], carry: dict[str, tuple[Tensor, Tensor]], name: str,
          a: Tensor, g: Tensor | None) -> None:
    """Adds ``sum_k g_k * (a_{k+1} - a_k)`` over consecutive points of one piece of the path.

    ``a`` and ``g`` are (points, batch, ...); the previous piece's last gradient and
    activation (``carry``) pair with this piece's first activation, so a path may be cut
    anywhere without changing the sum. ``g`` is None for the path's final point.
    """
    c = cond.get(name)
    if c is None:
        c = cond[name] = torch.zeros_like(a[0])
    if name in carry:
        g_prev, a_prev = carry.pop(name)
        c.addcmul_(g_prev, a[0] - a_prev)
    if len(a) > 1:
        assert g is not None  # only the path's final point (a single one) comes without gradients
        c.add_((a[1:] - a[:-1]).mul_(g[:-1]).sum(0))
    if g is not None:  # copies, so that the whole piece can be freed before the next pass
        carry[name] = (g[-1].clone(), a[-1].clone())


def _acc(t: Tensor) -> Tensor:
    """Step products and sums run in float32 at least (float64 stays float64)."""
    return t.to(torch.promote_types(t.dtype, torch.float32))


def _pick(logits: Tensor, t: Tensor) -> Tensor:
    return _acc(logits).gather(1, t.view(-1, 1)).squeeze(1)


def _check_in_place(capture: _Capture) -> None:
    edited = [n for n in capture.edited_in_place() if n not in capture.clone]
    if edited:  # the probe saw no in-place edit of this output, so it is data-dependent
        raise RuntimeError(f"layer {edited[0]!r}'s output was modified in place during the forward pass")
