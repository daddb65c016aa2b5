"""Throughput of the multi-layer conductance engine against captum's LayerConductance, layer by layer,
and against the method's floor on this machine.

    python benchmarks/conductance.py --instances 256 --n-steps 16                  # the demo's SmallAlexNet
    python benchmarks/conductance.py --arch torchvision:resnet18 --size 224 --instances 8
    python benchmarks/conductance.py --arch torchvision:resnet50 --size 224 --instances 4 --layers blocks

Both compute the same values for all analysed layers (``--layers``: a preset of
``analysis.layers`` or a comma-separated list of module paths); captum needs one interpolation
pass per layer, the engine one pass in total. The *floor* is the least any exact method must
do: the forward pass of every interpolation point (``n_steps + 1`` per instance) and one
backward pass from the target logits to the earliest analysed layer, over the same points, in
one batch, without hooks. *Efficiency* = floor time / engine time; *ratio* = captum time /
engine time (goal: efficiency >= 0.7 and ratio >= 0.7 x the number of layers, issue 11).

The last lines turn the measured per-instance cost into what a build's attribute stage costs
for Office-31 (4,110 images, both models) on this machine, and, from the FLOPs of the same
work (``torch.utils.flop_counter``), on one H100 at an assumed sustained rate.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from transferviz.analysis.conductance import layer_conductance, path_alphas  # noqa: E402
from transferviz.models import analysed_layers, build_model  # noqa: E402

#: Office-31: amazon 2,817 + webcam 795 + dslr 498 images; every one is attributed in both models.
OFFICE31_IMAGES = 4110
#: Assumed sustained H100 rate for this work: TF32 tensor cores at ~40% of their 495 TFLOP/s dense peak
#: (convolutions and their gradients at 224 px batch well; hooks and reductions do not).
H100_FLOPS = 0.4 * 495e12


def _captum_loop(model: torch.nn.Module, layers: list[str], x: torch.Tensor, t: torch.Tensor,
                 n_steps: int, method: str, batch: int) -> dict[str, torch.Tensor]:
    from captum.attr import LayerConductance

    out = {}
    for name in layers:
        lc = LayerConductance(model, model.get_submodule(name))
        parts = [lc.attribute(x[i:i + batch], target=t[i:i + batch], n_steps=n_steps, method=method).detach()
                 for i in range(0, len(x), batch)]
        out[name] = torch.cat(parts)
    return out


def _floor_pass(model: torch.nn.Module, first_layer: str, points: torch.Tensor, targets: torch.Tensor) -> None:
    """Forward of every point and one backward to ``first_layer``'s output: what any exact method needs."""
    captured: dict[str, torch.Tensor] = {}
    handle = model.get_submodule(first_layer).register_forward_hook(
        lambda _m, _i, out: captured.__setitem__("out", out))
    try:
        logits = model(points)
        torch.autograd.grad(logits.gather(1, targets[:, None]).sum(), captured["out"])
    finally:
        handle.remove()


def floor_seconds(model: torch.nn.Module, first_layer: str, x: torch.Tensor, t: torch.Tensor, n_steps: int,
                  method: str, batch: int) -> tuple[float, float]:
    """(seconds, FLOPs) of the floor over all instances, ``batch`` instances' points per pass."""
    from torch.utils.flop_counter import FlopCounterMode

    alphas = path_alphas(method, n_steps)

    def points(i: int) -> tuple[torch.Tensor, torch.Tensor]:
        xb, tb = x[i:i + batch], t[i:i + batch]
        return torch.cat([a * xb for a in alphas]), tb.repeat(len(alphas))

    p, tp = points(0)
    with FlopCounterMode(display=False) as counter:
        _floor_pass(model, first_layer, p, tp)
    flops = counter.get_total_flops() * (len(x) / len(p) * len(alphas))
    best = float("inf")
    # the faster of the two memory layouts (the engine picks NHWC where the model allows it)
    for fmt in (torch.contiguous_format, torch.channels_last):
        model.to(memory_format=fmt)
        t0 = time.perf_counter()
        for i in range(0, len(x), batch):
            pi, ti = points(i)
            _floor_pass(model, first_layer, pi.contiguous(memory_format=fmt), ti)
        best = min(best, time.perf_counter() - t0)
    model.to(memory_format=torch.contiguous_format)
    return best, float(flops)


def _hours(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="small_alexnet", help="model.arch, e.g. torchvision:resnet18")
    parser.add_argument("--size", type=int, default=None, help="input side in px (default 28, or 224 for torchvision)")
    parser.add_argument("--classes", type=int, default=31, help="head size (Office-31 has 31)")
    parser.add_argument("--layers", default="auto", help="analysis.layers: auto, all, blocks or a,b,c")
    parser.add_argument("--instances", type=int, default=256)
    parser.add_argument("--n-steps", type=int, default=16)
    parser.add_argument("--method", default="gausslegendre")
    parser.add_argument("--memory-budget-mb", type=float, default=None,
                        help="the engine's budget (default: analysis.memory_budget_mb's default)")
    parser.add_argument("--captum-batch", type=int, default=None,
                        help="instances per captum call and per floor pass (default: 64 at 28 px, 2 at 224 px)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=1, help="timed repeats; the best is reported")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--skip-captum", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    size = args.size or (28 if args.arch == "small_alexnet" else 224)
    batch = args.captum_batch or max(2, min(64, (64 * 28 * 28) // (size * size)))

    torch.manual_seed(0)
    model = build_model(args.arch, args.classes, size).eval()
    spec = args.layers.split(",") if "," in args.layers else args.layers
    layers = analysed_layers(model, spec, size)
    x = torch.randn(args.instances, 3, size, size)
    t = torch.randint(0, args.classes, (args.instances,))
    kw: dict = dict(n_steps=args.n_steps, method=args.method, device=args.device, reduce="max")
    if args.memory_budget_mb is not None:
        kw["memory_budget_mb"] = args.memory_budget_mb

    layer_conductance(model, layers, x[:1], t[:1], **kw)  # warm-up (allocator, kernels)
    best = (float("inf"), float("inf"))
    for _ in range(args.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        res = layer_conductance(model, layers, x, t, **kw)
        best = min(best, (time.perf_counter() - t0, time.process_time() - c0))
    rows = [("transferviz (all layers, one pass)", *best)]
    floor_s, flops = floor_seconds(model, layers[0], x, t, args.n_steps, args.method, batch)

    err = None
    if not args.skip_captum:
        t0, c0 = time.perf_counter(), time.process_time()
        ref = _captum_loop(model, layers, x, t, args.n_steps, args.method, batch)
        rows.append((f"captum LayerConductance x {len(layers)} layers", time.perf_counter() - t0,
                     time.process_time() - c0))
        err = max(float((torch.from_numpy(res.values[n]) - ref[n].amax(dim=tuple(range(2, ref[n].dim())))
                         if ref[n].dim() > 2 else torch.from_numpy(res.values[n]) - ref[n]).abs().max()
                        / max(float(ref[n].abs().max()), 1e-12)) for n in layers)

    print(f"{args.arch} {size} px, {len(layers)} layers ({args.layers}: {', '.join(layers)}), {args.instances} "
          f"instances, n_steps={args.n_steps}, {args.method}, device={args.device}, "
          f"torch threads={torch.get_num_threads()}")
    # CPU seconds are the steadier figure on a machine shared with other work.
    print(f"{'engine':<40}{'wall s':>8}{'inst/s':>9}{'CPU s':>8}{'inst/CPU-s':>12}")
    for label, sec, cpu in rows:
        print(f"{label:<40}{sec:>8.2f}{args.instances / sec:>9.2f}{cpu:>8.2f}{args.instances / cpu:>12.2f}")
    print(f"{'floor (forward of every point + 1 backward)':<40}{floor_s:>8.2f}{args.instances / floor_s:>9.2f}")
    engine_s = rows[0][1]
    print(f"efficiency (floor / engine): {floor_s / engine_s:.2f}   (goal >= 0.7)")
    if err is not None:
        ratio = rows[1][1] / engine_s
        print(f"ratio (captum / engine): {ratio:.2f} = {ratio / len(layers):.2f} x {len(layers)} layers   "
              f"(goal >= 0.7 x layers);  max |diff| / max |captum| = {err:.1e}")
        # captum's pass for a deep layer needs only a short backward, so its L passes cost less than
        # L full paths: no exact engine can beat captum by more than captum time / floor time
        print(f"ratio the floor allows (captum / floor): {rows[1][1] / floor_s:.2f} "
              f"= {rows[1][1] / floor_s / len(layers):.2f} x {len(layers)} layers")
    per_instance = engine_s / args.instances
    cpu_total = 2 * OFFICE31_IMAGES * per_instance
    print(f"Office-31 ({OFFICE31_IMAGES} images x 2 models): attribute stage ~{_hours(cpu_total)}"
          f" on this machine; ~{_hours(2 * OFFICE31_IMAGES * flops / args.instances / H100_FLOPS)} on one H100 "
          f"({flops / args.instances / 1e9:.1f} GFLOP an instance at the floor, at an assumed "
          f"{H100_FLOPS / 1e12:.0f} TFLOP/s sustained)")


if __name__ == "__main__":
    main()
