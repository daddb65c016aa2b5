"""Throughput of the multi-layer conductance engine against captum's LayerConductance, layer by layer.

    python benchmarks/conductance.py --instances 256 --n-steps 16

Both compute the same values for all analysed layers of SmallAlexNet (28 px, 10 classes);
captum needs one interpolation pass per layer, the engine one pass in total.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from transferviz.analysis.conductance import layer_conductance  # noqa: E402
from transferviz.models import SmallAlexNet, analysed_layers  # noqa: E402


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=256)
    parser.add_argument("--n-steps", type=int, default=16)
    parser.add_argument("--method", default="gausslegendre")
    parser.add_argument("--memory-budget-mb", type=float, default=512)
    parser.add_argument("--captum-batch", type=int, default=64,
                        help="instances per captum call (all steps of them in one pass)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=2, help="timed repeats; the best is reported")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--skip-captum", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    model = SmallAlexNet(num_classes=10, input_size=28).eval()
    layers = analysed_layers(model)
    x = torch.randn(args.instances, 3, 28, 28)
    t = torch.randint(0, 10, (args.instances,))
    kw = dict(n_steps=args.n_steps, method=args.method, memory_budget_mb=args.memory_budget_mb,
              device=args.device, reduce="none")

    layer_conductance(model, layers, x[:8], t[:8], **kw)  # warm-up (allocator, kernels)
    best = (float("inf"), float("inf"))
    for _ in range(args.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        res = layer_conductance(model, layers, x, t, **kw)
        best = min(best, (time.perf_counter() - t0, time.process_time() - c0))
    rows = [("transferviz (all layers, one pass)", *best)]

    if not args.skip_captum:
        cm = model.to(args.device)
        xd, td = x.to(args.device), t.to(args.device)
        t0, c0 = time.perf_counter(), time.process_time()
        ref = _captum_loop(cm, layers, xd, td, args.n_steps, args.method, args.captum_batch)
        rows.append((f"captum LayerConductance x {len(layers)} layers", time.perf_counter() - t0,
                     time.process_time() - c0))
        err = max(float((torch.from_numpy(res.values[n]) - ref[n].cpu()).abs().max() / ref[n].abs().max())
                  for n in layers)

    print(f"SmallAlexNet 28 px, {len(layers)} layers, {args.instances} instances, n_steps={args.n_steps}, "
          f"{args.method}, device={args.device}, torch threads={torch.get_num_threads()}")
    # CPU seconds are the steadier figure on a machine shared with other work.
    print(f"{'engine':<40}{'wall s':>8}{'inst/s':>9}{'CPU s':>8}{'inst/CPU-s':>12}")
    for label, sec, cpu in rows:
        print(f"{label:<40}{sec:>8.2f}{args.instances / sec:>9.1f}{cpu:>8.2f}{args.instances / cpu:>12.1f}")
    if len(rows) == 2:
        print(f"speed-up: {rows[1][1] / rows[0][1]:.1f}x wall, {rows[1][2] / rows[0][2]:.1f}x CPU;  "
              f"max |diff| / max |captum| = {err:.1e}")


if __name__ == "__main__":
    main()
