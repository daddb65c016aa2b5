"""Do the transferability estimates rank source models as fine-tuning does? (issue 14, item 3)

    python benchmarks/transferability.py [--target-epochs 4] [--seeds 1] [--out transferability.csv]

One target, the demo's (scikit-learn's handwritten digit scans, its training and validation split as the build
makes it), and a family of source models at the demo's size (small_alexnet, 28 px), varied in source domain,
source epochs, source data size, label set and architecture (200 rendered digits per class, as the demo renders
them but fewer, to keep the whole run to minutes):

    printed-grey-{1,3,6}ep   the demo's rendered printed digits in grey, 1, 3 or 6 source epochs
    printed-colour-3ep       the same renders in colour
    handwritten-style-3ep    rendered digits elastically distorted, bright ink on black (closer to the scans)
    printed-grey-40pc-3ep    40 printed digits per class instead of 200
    printed-narrow-3ep       small_alexnet at half width (8-16 channels, 64-32 hidden units)
    printed-0to4-3ep         trained on the digits 0-4 only (a 5-class head, replaced by a fresh 10-class one
                             for fine-tuning)
    untrained                random initialisation, no source training

For each: LogME, LEEP, NCE and H-score of the source model alone on the target training split (before any
fine-tuning), then fine-tuning on it (Adam, lr 1e-3, batch 32, 8 epochs) and the realised best target accuracy
over the epochs (as the build's best_target_on_target) on every other target instance. The target training set
is 10 scans per class of the build's training split (``--target-per-class``): with all of them every source,
even none, reaches 98-99% and there is no ranking to predict. Prints the
per-model table and Kendall's tau (scipy.stats.kendalltau, tau-b) between each estimate and that accuracy.
Every fine-tuning runs ``--seeds`` times (default 2, seeds 1..k) and the accuracy is their mean, which lowers
the noise of the ranking being predicted. About 3-6 minutes on a 2-core CPU (torch on one thread: two threads on a
busy 2-core machine trained 10x slower, waiting on each other).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.stats import kendalltau
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from transferviz import data  # noqa: E402
from transferviz.analysis.transferability import ESTIMATES  # noqa: E402
from transferviz.build.estimates import source_estimates  # noqa: E402
from transferviz.config import TrainSpec  # noqa: E402
from transferviz.models import SmallAlexNet, embedding_layer, head_module  # noqa: E402
from transferviz.preprocess import to_tensor  # noqa: E402
from transferviz.training import TrainData, train_model  # noqa: E402

SIZE, SEED, VAL = 28, 0, 0.15  # the demo's input size, seed and validation fraction
MEAN = STD = (0.5, 0.5, 0.5)
DEVICE = torch.device("cpu")


@dataclass(frozen=True)
class Candidate:
    name: str
    domain: str  # "grey", "colour" or "handwritten": which rendered source domain
    epochs: int  # source epochs (0: untrained)
    per_class: int = 200
    classes: int = 10  # the first `classes` digits only
    narrow: bool = False


FAMILY = [
    Candidate("printed-grey-1ep", "grey", 1),
    Candidate("printed-grey-3ep", "grey", 3),
    Candidate("printed-grey-6ep", "grey", 6),
    Candidate("printed-colour-3ep", "colour", 3),
    Candidate("handwritten-style-3ep", "handwritten", 3),
    Candidate("printed-grey-40pc-3ep", "grey", 3, per_class=40),
    Candidate("printed-narrow-3ep", "grey", 3, narrow=True),
    Candidate("printed-0to4-3ep", "grey", 3, classes=5),
    Candidate("untrained", "grey", 0),
]


Split = tuple[torch.Tensor, torch.Tensor]


def split(dom: data.DomainData, seed: int) -> tuple[Split, Split]:
    """The domain's (train, val) tensors, split as the build's data stage splits it."""
    part = data.stratified_split(dom.labels, VAL, seed)
    x = to_tensor(dom.images, MEAN, STD)
    y = torch.from_numpy(dom.labels.astype(np.int64))
    tr, va = torch.from_numpy(np.flatnonzero(part == "train")), torch.from_numpy(np.flatnonzero(part == "val"))
    return (x[tr], y[tr]), (x[va], y[va])


def few_shot(train: Split, val: Split, per_class: int) -> tuple[Split, Split]:
    """The first ``per_class`` instances of each class of the training split for fine-tuning, every other
    target instance for evaluation (0: the splits as they are). With all 1,528 training scans every source,
    even none, fine-tunes to 98-99% and the ranking to predict is noise; with a few per class the source
    matters, which is the regime a transferability estimate is for."""
    if per_class <= 0:
        return train, val
    y = train[1].numpy()
    keep = np.zeros(len(y), bool)
    for k in np.unique(y):
        keep[np.flatnonzero(y == k)[:per_class]] = True
    rest = torch.from_numpy(np.flatnonzero(~keep))
    idx = torch.from_numpy(np.flatnonzero(keep))
    return (train[0][idx], train[1][idx]), (torch.cat([val[0], train[0][rest]]), torch.cat([val[1], train[1][rest]]))


def _few(part: Split, n: int = 8) -> Split:
    return part[0][:n], part[1][:n]


def source_domain(c: Candidate, renders: dict[str, data.DomainData]) -> data.DomainData:
    dom = renders[c.domain]
    keep = np.zeros(len(dom.labels), bool)
    for k in range(c.classes):
        keep[np.flatnonzero(dom.labels == k)[:c.per_class]] = True
    return replace(dom, images=dom.images[keep], labels=dom.labels[keep], origins=(),
                   classes=dom.classes[:c.classes])


def new_model(c: Candidate) -> torch.nn.Module:
    torch.manual_seed(SEED)
    if c.narrow:
        return SmallAlexNet(c.classes, input_size=SIZE, widths=(8, 16, 16, 16, 16), hidden=(64, 32))
    return SmallAlexNet(c.classes, input_size=SIZE)


def fine_tune(model: torch.nn.Module, target: TrainData, spec: TrainSpec, seed: int) -> float:
    """The best target validation accuracy over the fine-tuning epochs; a head of another size is replaced by
    a fresh 10-class head first (the usual practice for a source with other classes)."""
    model = _with_head(model, 10)
    outcome = train_model(model, "target", target, spec, DEVICE, seed, keep_states=False)
    return max(float(row["target_val"]) for row in outcome.history)


def _with_head(model: torch.nn.Module, classes: int) -> torch.nn.Module:
    import copy

    model = copy.deepcopy(model)
    name = str(head_module(model))
    parent, _, leaf = name.rpartition(".")
    owner = model.get_submodule(parent) if parent else model
    head = getattr(owner, leaf)
    if head.out_features != classes:
        torch.manual_seed(SEED)
        setattr(owner, leaf, torch.nn.Linear(head.in_features, classes))
    return model


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--target-per-class", type=int, default=10, help="target training instances per class, "
                    "drawn from the build's training split (0: all of it; the rest is the evaluation set)")
    ap.add_argument("--target-epochs", type=int, default=8, help="fine-tuning epochs")
    ap.add_argument("--seeds", type=int, default=2, help="fine-tuning runs per model, accuracy averaged")
    ap.add_argument("--out", type=Path, help="also write the per-model table as CSV")
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    renders = {"grey": data.synthetic_digits(200, SIZE, SEED, grayscale=True),
               "colour": data.synthetic_digits(200, SIZE, SEED, grayscale=False),
               "handwritten": data.synthetic_digits(200, SIZE, SEED, style="handwritten")}
    tgt = data.sklearn_digits(SIZE)
    tgt_train, tgt_val = few_shot(*split(tgt, SEED + 1), args.target_per_class)
    print(f"target: {len(tgt_train[1])} training, {len(tgt_val[1])} evaluation scans; data ready in "
          f"{time.perf_counter() - t0:.0f} s", file=sys.stderr)
    src_spec = TrainSpec(lr=3e-3, batch_size=32, optimizer="adam")
    tgt_spec = TrainSpec(epochs=args.target_epochs, lr=1e-3, batch_size=32, optimizer="adam")
    rows = []
    for c in tqdm(FAMILY, desc="source models", unit="model"):
        t = time.perf_counter()
        src = source_domain(c, renders)
        s_train, s_val = split(src, SEED)
        # each phase evaluates every split after every epoch: the other domain's splits cut to a few instances,
        # which only the history's unused columns read
        model = new_model(c)
        src_acc = float("nan")
        if c.epochs:
            phase = TrainData(s_train, s_val, _few(tgt_train), _few(tgt_val))
            out = train_model(model, "source", phase, src_spec.model_copy(update={"epochs": c.epochs}), DEVICE, SEED,
                              keep_states=False)
            model, src_acc = out.model, float(out.history[-1]["val"])
        model.eval()
        est = source_estimates(model, embedding_layer(model, SIZE), tgt_train[0], tgt_train[1].numpy(), DEVICE)
        target = TrainData(_few(s_train), _few(s_val), tgt_train, tgt_val)
        accs = [fine_tune(model, target, tgt_spec, SEED + s) for s in range(1, args.seeds + 1)]
        rows.append({"model": c.name, "source_val": src_acc, **est, "target_best": float(np.mean(accs)),
                     "seconds": time.perf_counter() - t})
    table = pd.DataFrame(rows)
    print(table.rename(columns=ESTIMATES).to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"\nKendall's tau (tau-b) of each estimate with the realised best target accuracy, {len(table)} models:")
    for key, label in ESTIMATES.items():
        tau, p = kendalltau(table[key], table["target_best"])
        print(f"  {label:<8} tau {tau:+.3f}  (p = {p:.3f})")
    print(f"total {time.perf_counter() - t0:.0f} s; fine-tuning {args.target_epochs} epochs x {args.seeds} seed(s)")
    if args.out:
        table.to_csv(args.out, index=False)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
