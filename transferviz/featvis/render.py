"""Batched activation maximisation: one Fourier-parameterised image per neuron, all optimised at once.

A neuron is ``(module_path, index)``: an output channel of a conv module (objective: the mean
of its map) or an output unit of a linear module (objective: its value), read at the module's
output, i.e. before the following ReLU, like the attributions (docs/architecture.md). Images
of neurons from different layers share one forward pass; the pass stops as soon as every
needed layer has produced its output, so a batch of conv neurons never runs the classifier.

Determinism: every neuron owns a CPU ``torch.Generator`` seeded from ``(seed, layer, index)``.
It draws the neuron's initial spectrum and, up front, all of its per-step jitter/scale/
rotation parameters. The loss is the *sum* of per-image objectives and Adam is element-wise,
so mathematically an image's trajectory does not depend on which other neurons share its
batch, on the batch size, or on the order of ``neurons``; and the same neuron of the source and
of the fine-tuned model starts from the same image and sees the same transforms, which makes
their images directly comparable (:mod:`transferviz.featvis.compare`).

Numerically, the same call gives the same images on the same machine and thread count. Across
batch compositions the images agree up to floating-point rounding: oneDNN and BLAS pick
different kernels for different batch sizes (a 1-image conv or GEMM sums in another order,
~1e-7 relative), and in a ReLU/max-pool network with Adam such a difference can occasionally
flip a near-tie and grow over many steps into a visibly different (equally valid) image.
Rendering both models with the same neuron list and batch size keeps their pairs on the same
kernels.
"""

from __future__ import annotations

import copy
import hashlib
import math
from dataclasses import dataclass
from typing import Callable, Literal, Sequence, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from transferviz.errors import TransferVizError
from transferviz.featvis.param import FourierImage

__all__ = ["Neuron", "TransformSpec", "RenderResult", "neuron_seed", "random_affine", "visualize_neurons",
           "render_neurons"]

Neuron = tuple[str, int]
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class TransformSpec:
    """Random transforms applied to the image at every step (lucid's ``standard_transforms``).

    Robustness to small shifts, zooms and rotations keeps the optimiser from producing
    pixel-aligned adversarial patterns. lucid's values for 224 px (pad 12, jitter 8 and 4,
    scale 0.9-1.1, rotate +-10 degrees) are expressed here relative to the image size, so a
    28 px image is jittered by about 2 px rather than by lucid's absolute 12 px.

    jitter: maximum shift, as a fraction of the image side, in each of x and y.
    scale: range of the zoom factor (``> 1`` zooms in).
    rotate: maximum rotation in degrees.
    """

    jitter: float = 0.06
    scale: tuple[float, float] = (0.9, 1.1)
    rotate: float = 10.0


@dataclass
class RenderResult:
    """Output of :func:`visualize_neurons`; row ``i`` of every array belongs to ``neurons[i]``.

    images: ``(N, S, S, 3)`` uint8, the untransformed final images (gray models: replicated).
    objective_start / objective_end: the raw objective (channel mean or unit value, not
        sign-flipped) on the untransformed initial / final image, float32 ``(N,)``.
    history: ``(steps, N)`` float32 raw objective on the transformed image at every step.
    """

    images: np.ndarray
    objective_start: np.ndarray
    objective_end: np.ndarray
    history: np.ndarray


def neuron_seed(seed: int, layer: str, index: int) -> int:
    """A 63-bit seed from ``(seed, layer, index)``, stable across processes and Python versions.

    (``hash(str)`` is salted per process, so it cannot be used.)
    """
    digest = hashlib.blake2b(f"{int(seed)}\x00{layer}\x00{int(index)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def random_affine(images: Tensor, u: Tensor, spec: TransformSpec) -> Tensor:
    """Shifts, zooms and rotates each image by its own parameters; differentiable in ``images``.

    ``u`` is ``(B, 4)`` uniform ``[0, 1)`` draws (shift x, shift y, zoom, angle); ``u = 0.5``
    is the identity. One ``grid_sample`` does all three (cheaper and less blurry than lucid's
    chain of crops and resizes). Area that comes from outside the image is 0.5 gray, like
    lucid's constant padding, so the border gives no contrast to exploit.
    """
    u = u.to(device=images.device, dtype=images.dtype)
    shift = (2.0 * u[:, :2] - 1.0) * (2.0 * spec.jitter)  # normalised coords span 2 per side
    lo, hi = spec.scale
    zoom = lo + (hi - lo) * u[:, 2]
    angle = (2.0 * u[:, 3] - 1.0) * math.radians(spec.rotate)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], dim=1),
                         torch.stack([sin, cos, shift[:, 1]], dim=1)], dim=1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images - 0.5, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + 0.5


class _StopForward(Exception):
    """Raised by a hook once every needed layer has produced its output (skips the rest)."""


class _Tap:
    """Forward hooks that reduce each needed layer's output to per-neuron values ``(B, n_units)``.

    The reduction (conv: mean over the map; linear: a copy) happens inside the hook: modules
    such as ``nn.ReLU(inplace=True)`` overwrite the layer output right after it is produced, so
    a kept reference would read post-ReLU values and a dead ReLU would cut the gradient.
    """

    def __init__(self, model: nn.Module, layers: Sequence[str]) -> None:
        modules = dict(model.named_modules())
        missing = [name for name in layers if name not in modules]
        if missing:
            known = [n for n, m in modules.items() if isinstance(m, (nn.Conv2d, nn.Linear))]
            raise TransferVizError(f"featvis: the model has no module {missing[0]!r}; "
                                   f"neuron layers must be module paths such as {known[:8]}")
        self.layers = list(layers)
        self.values: dict[str, Tensor] = {}
        self._handles = [modules[name].register_forward_hook(self._hook(name)) for name in self.layers]

    def _hook(self, name: str):
        def hook(_module: nn.Module, _inputs, output) -> None:
            if name in self.values:  # a module called twice: the first call counts
                return
            if not isinstance(output, Tensor):
                raise TransferVizError(f"featvis: module {name!r} does not return a single tensor")
            # conv (B, C, H, W) -> channel means; linear (B, F) -> unit values
            self.values[name] = output.flatten(2).mean(dim=2) if output.ndim > 2 else output.clone()
            if len(self.values) == len(self.layers):
                raise _StopForward

        return hook

    def run(self, model: nn.Module, x: Tensor) -> dict[str, Tensor]:
        self.values = {}
        try:
            model(x)
        except _StopForward:
            pass
        if len(self.values) != len(self.layers):
            absent = [n for n in self.layers if n not in self.values]
            raise TransferVizError(f"featvis: module {absent[0]!r} was not called in the model's forward")
        return self.values

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()


def _layer_order(model: nn.Module) -> dict[str, int]:
    return {name: i for i, (name, _) in enumerate(model.named_modules())}


def _resolve_device(model: nn.Module, device: str | torch.device | None) -> tuple[nn.Module, torch.device]:
    """The device to render on, and the model there (a copy if it had to move: the caller's stays put)."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    params = list(model.parameters()) + list(model.buffers())
    current = params[0].device if params else device
    # cast: torch's stub types device.index as int, but a bare "cuda" / "cpu" device has index None
    if cast("int | None", device.index) is None and current.type == device.type:
        device = current  # "cuda" means the model's own GPU when it is already on one
    if current.type != device.type or (device.index is not None and current != device):
        model = copy.deepcopy(model).to(device)
    return model, device


class _Objective:
    """Per-image raw objective ``(B,)``: image ``i`` reads its own neuron's value.

    Gathered with one advanced-indexing op per layer (not one op per image), which keeps
    the autograd graph small for large batches.
    """

    def __init__(self, batch: Sequence[Neuron], layers: Sequence[str], device: torch.device) -> None:
        self.groups: list[tuple[str, Tensor, Tensor, int]] = []
        order: list[int] = []
        for layer in layers:
            rows = [i for i, (name, _) in enumerate(batch) if name == layer]
            cols = [batch[i][1] for i in rows]
            self.groups.append((layer, torch.tensor(rows, device=device), torch.tensor(cols, device=device),
                                max(cols)))
            order.extend(rows)
        self.inverse = torch.argsort(torch.tensor(order, device=device))
        self._checked = False

    def __call__(self, values: dict[str, Tensor]) -> Tensor:
        if not self._checked:
            for layer, _, _, top in self.groups:
                if top >= values[layer].shape[1]:
                    raise TransferVizError(f"featvis: neuron {top} of {layer!r} does not exist "
                                           f"(the layer has {values[layer].shape[1]} units)")
            self._checked = True
        picked = torch.cat([values[layer][rows, cols] for layer, rows, cols, _ in self.groups])
        return picked[self.inverse]


def _render_batch(model: nn.Module, batch: Sequence[Neuron], *, size: int, steps: int, lr: float, seed: int,
                  mean: Tensor, std: Tensor, sign: float, device: torch.device, spec: TransformSpec,
                  decorrelate: bool, sd: float, order: dict[str, int]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    channels = mean.shape[1]
    gens = [torch.Generator().manual_seed(neuron_seed(seed, layer, index)) for layer, index in batch]
    spectrum = FourierImage.random_spectrum(gens, channels, size, size, sd)  # draws first, ...
    draws = torch.stack([torch.rand((steps, 4), generator=g) for g in gens], dim=1)  # ... then (steps, B, 4)
    image = FourierImage(spectrum.to(device), size, size, decorrelate=decorrelate).to(device)
    opt = torch.optim.Adam([image.spectrum], lr=lr)
    layers = sorted({layer for layer, _ in batch}, key=order.__getitem__)
    tap = _Tap(model, layers)
    objective = _Objective(batch, layers, device)
    history = torch.empty((steps, len(batch)), device=device)  # stays on the device: no sync per step
    try:
        with torch.no_grad():
            start = objective(tap.run(model, (image() - mean) / std)).cpu()
        for step in range(steps):
            x = random_affine(image(), draws[step], spec)
            # channels-last: same values, but CPU max-pooling is ~5x faster in it (vectorised
            # over channels) and oneDNN/cuDNN convolutions are at least as fast
            x = ((x - mean) / std).contiguous(memory_format=torch.channels_last)
            obj = objective(tap.run(model, x))
            # Sum, not mean: each image's gradient is then exactly its own objective's,
            # whatever the batch size. autograd.grad leaves the model's .grad untouched.
            (grad,) = torch.autograd.grad(-sign * obj.sum(), [image.spectrum])
            image.spectrum.grad = grad
            opt.step()
            history[step] = obj.detach()
        with torch.no_grad():
            final = image()
            end = objective(tap.run(model, (final - mean) / std)).cpu()
    finally:
        tap.close()
    return final.detach().cpu(), start, end, history.cpu()


def visualize_neurons(model: nn.Module, neurons: Sequence[Neuron], *, size: int, steps: int = 128,
                      lr: float = 0.05, seed: int = 0, mean: Sequence[float] = (0.5, 0.5, 0.5),
                      std: Sequence[float] = (0.5, 0.5, 0.5), mode: Literal["max", "min"] = "max",
                      batch_size: int = 64, device: str | torch.device | None = None,
                      progress: Progress | None = None, num_threads: int | None = None,
                      transforms: TransformSpec = TransformSpec(), decorrelate: bool | None = None,
                      sd: float = 0.01) -> RenderResult:
    """Renders one feature visualization per neuron; see :func:`render_neurons` for the arguments.

    transforms: the per-step random transforms. decorrelate: colour decorrelation (default:
    when the model takes 3 channels). sd: the initial spectrum's standard deviation.
    Returns the images with the objective before/after and per step, for diagnostics and tests.
    """
    if mode not in ("max", "min"):
        raise TransferVizError(f"featvis: mode must be 'max' or 'min', not {mode!r}")
    if len(mean) != len(std) or len(mean) < 1:
        raise TransferVizError("featvis: mean and std must have one value per input channel")
    if size < 1 or steps < 0 or batch_size < 1:
        raise TransferVizError("featvis: size and batch_size must be positive and steps non-negative")
    channels = len(mean)
    if decorrelate is None:
        decorrelate = channels == 3
    n = len(neurons)
    if n == 0:
        empty = np.zeros((0,), np.float32)
        return RenderResult(np.zeros((0, size, size, 3), np.uint8), empty, empty, np.zeros((steps, 0), np.float32))
    neurons = [(str(layer), int(index)) for layer, index in neurons]
    negative = [nrn for nrn in neurons if nrn[1] < 0]
    if negative:
        raise TransferVizError(f"featvis: neuron index {negative[0][1]} of {negative[0][0]!r} is negative")

    model, device = _resolve_device(model, device)
    order = _layer_order(model)
    unknown = [layer for layer, _ in neurons if layer not in order]
    if unknown:
        known = [name for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        raise TransferVizError(f"featvis: the model has no module {unknown[0]!r}; "
                               f"neuron layers are module paths such as {known[:8]}")
    mean_t = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    sign = 1.0 if mode == "max" else -1.0

    # Batches of neurons of the same or neighbouring layers stop the forward pass early
    # together; the order does not change any image beyond rounding (module docstring).
    todo = sorted(range(n), key=lambda i: (order[neurons[i][0]], neurons[i][1], i))
    images = torch.empty((n, channels, size, size))
    start, end = torch.empty(n), torch.empty(n)
    history = torch.empty((steps, n))

    threads_before = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(max(1, int(num_threads)))
    was_training = model.training
    model.eval()  # dropout off, batch-norm on running statistics: per-image independence
    # Without this, autograd still computes the weights' gradients on the way to the image
    # (about 20% of the time), even though autograd.grad never stores them.
    grad_flags = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in grad_flags:
        p.requires_grad_(False)
    try:
        for lo in range(0, n, batch_size):
            idx = todo[lo:lo + batch_size]
            out = _render_batch(model, [neurons[i] for i in idx], size=size, steps=steps, lr=lr, seed=seed,
                                mean=mean_t, std=std_t, sign=sign, device=device, spec=transforms,
                                decorrelate=decorrelate, sd=sd, order=order)
            images[idx], start[idx], end[idx], history[:, idx] = out
            if progress is not None:
                progress(min(lo + batch_size, n), n)
    finally:
        model.train(was_training)
        for p, flag in grad_flags:
            p.requires_grad_(flag)
        torch.set_num_threads(threads_before)

    pixels = images.permute(0, 2, 3, 1)
    if channels != 3:
        pixels = pixels[..., :1].expand(-1, -1, -1, 3)
    as_uint8 = (pixels * 255.0).round().clamp(0, 255).to(torch.uint8).numpy()
    return RenderResult(as_uint8, start.numpy().astype(np.float32), end.numpy().astype(np.float32),
                        history.numpy().astype(np.float32))


def render_neurons(model: nn.Module, neurons: Sequence[Neuron], *, size: int, steps: int = 128, lr: float = 0.05,
                   seed: int = 0, mean: Sequence[float] = (0.5, 0.5, 0.5),
                   std: Sequence[float] = (0.5, 0.5, 0.5), mode: Literal["max", "min"] = "max",
                   batch_size: int = 64, device: str | torch.device | None = None,
                   progress: Progress | None = None, num_threads: int | None = None) -> np.ndarray:
    """Feature visualizations of ``neurons``, ``(len(neurons), size, size, 3)`` uint8.

    model: any ``nn.Module``; for the call it is put in eval mode and its parameters'
        ``requires_grad`` is switched off (both restored afterwards); its parameters are
        neither changed nor given gradients. A copy is made only if it has to move to ``device``.
    neurons: ``(module_path, index)`` pairs, e.g. ``("features.3", 7)`` or ``("classifier.4", 12)``;
        any mix of layers.
    size: image side; must be an input size the model accepts.
    steps, lr: Adam iterations and learning rate (lucid: 512 and 0.05 at 224 px; small models
        converge in far fewer, see the integration notes in the package docstring).
    seed: with ``(layer, index)`` it seeds each neuron's start image and transforms.
    mean, std: the model's input normalisation, one value per input channel (its length sets
        the channel count; 1-channel images are returned replicated to RGB).
    mode: ``"max"`` maximises the objective, ``"min"`` minimises it ("least activating" image).
    batch_size: images optimised together; any value gives the same images.
    device: default CUDA when available, else CPU.
    progress: called as ``progress(done, total)`` after each batch.
    num_threads: CPU intra-op threads for the call (restored after); ``None`` keeps torch's
        setting. The tensors are small, so a second thread gains little when the cores are
        free, and on a busy machine every op waits for the other thread: 1 is the safe choice
        next to other work.
    """
    return visualize_neurons(model, neurons, size=size, steps=steps, lr=lr, seed=seed, mean=mean, std=std,
                             mode=mode, batch_size=batch_size, device=device, progress=progress,
                             num_threads=num_threads).images
