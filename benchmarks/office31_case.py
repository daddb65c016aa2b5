"""The benchmark case of issue 16: an Office-31-shaped run made on this machine.

    python benchmarks/office31_case.py --out /tmp/office31-case [--build] [--cache-dir DIR]

Writes 31 classes (Office-31's class names) in two domains under ``OUT/data``, in Office-31's
layout ``<root>/<domain>/images/<class>/*.png``: ``amazon``, 35 images a class, each a
coloured object on a white background as product photos are; ``webcam``, 20 images a class,
the same objects smaller, off centre, desaturated, blurred and noisy on cluttered grey
backgrounds. 1,705 images in all, as the issue's run. Each class is one of 8 shapes crossed
with one of 4 surface patterns, so the classes are learnable but not trivial.

It writes ``OUT/office31_case.yaml`` (torchvision AlexNet at 64 px: two 4096-unit linear
layers, 410 important neurons each) and, with ``--build``, builds the cache with
``transferviz build`` into ``--cache-dir`` (default ``OUT/cache``). Nothing is downloaded.
Feature visualizations use few steps so that the build fits a 2-core machine; the analysis
views' sizes (classes, ranked neurons, matrix sizes) are those of the paper's run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from transferviz.data.office_shapes import OFFICE31_CLASSES, write_office_shapes

CONFIG = """\
# Issue 16's benchmark case: Office-31-shaped (31 classes, 1,705 images), torchvision AlexNet at 64 px.
# Written by benchmarks/office31_case.py; the images are generated, nothing is downloaded.
name: office31_case
seed: 0
source: {{kind: image_folder, root: {root}, domain: amazon}}
target: {{kind: image_folder, root: {root}, domain: webcam}}
val_fraction: 0.15
model:
  arch: alexnet
  input_size: 64
training:
  source: {{epochs: 14, lr: 0.0003, batch_size: 32, optimizer: adam}}
  target: {{epochs: 8, lr: 0.0001, batch_size: 32, optimizer: adam}}
analysis:
  n_steps: 16
  neuron_fraction: 0.1
featvis:
  steps: 8
  size: 64
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="folder for the images, the config and the cache")
    p.add_argument("--source-per-class", type=int, default=35)
    p.add_argument("--target-per-class", type=int, default=20)
    p.add_argument("--build", action="store_true", help="build the cache with `transferviz build`")
    p.add_argument("--cache-dir", type=Path, default=None, help="where the cache goes (default OUT/cache)")
    args = p.parse_args()
    out = args.out.resolve()
    data = out / "data"
    if not (data / "webcam").is_dir():
        n = write_office_shapes(data, {"amazon": args.source_per_class, "webcam": args.target_per_class})
        print(f"wrote {n} images of {len(OFFICE31_CLASSES)} classes under {data}")
    config = out / "office31_case.yaml"
    config.write_text(CONFIG.format(root=data))
    print(f"config: {config}")
    if args.build:
        cache_dir = args.cache_dir or out / "cache"
        cmd = [sys.executable, "-m", "transferviz", "build", str(config), "--cache-dir", str(cache_dir)]
        print(" ".join(cmd), flush=True)
        raise SystemExit(subprocess.call(cmd))


if __name__ == "__main__":
    main()
