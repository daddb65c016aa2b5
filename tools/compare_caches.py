"""Compares the artifacts of two built caches: are they the same, file by file?

    python tools/compare_caches.py CACHE_A CACHE_B    (e.g. /tmp/base-cache/digits cache/digits)

Arrays (.npy) must have the same dtype, shape and values (NaN equal to NaN), tables (.parquet) be
equal as pandas frames (columns, dtypes, values), every other file (JSON, PNG, safetensors) be
byte-identical. ``manifest.json`` is left out: it records times, paths and stage keys. Prints
each difference and a summary; exits 1 when anything differs or is missing on one side.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

SKIP = {"manifest.json"}


def files(root: Path) -> set[str]:
    """Every file under a cache folder (a published link or a build folder), relative to it."""
    root = root.resolve()
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} - SKIP


def difference(a: Path, b: Path) -> str | None:
    """Why the file ``a`` differs from ``b``, or None when they are the same."""
    if a.suffix == ".npy":
        x, y = np.load(a, allow_pickle=False), np.load(b, allow_pickle=False)
        if x.dtype != y.dtype or x.shape != y.shape:
            return f"array {x.dtype}{list(x.shape)} vs {y.dtype}{list(y.shape)}"
        if not np.array_equal(x, y, equal_nan=x.dtype.kind in "fc"):
            diff = x != y if x.dtype.kind not in "fc" else ~((x == y) | (np.isnan(x) & np.isnan(y)))
            return f"{int(diff.sum())} of {x.size} values differ"
        return None
    if a.suffix == ".parquet":
        x, y = pd.read_parquet(a), pd.read_parquet(b)
        if not x.equals(y):
            if list(x.columns) != list(y.columns) or x.shape != y.shape:
                return f"table {list(x.columns)} {x.shape} vs {list(y.columns)} {y.shape}"
            cols = [c for c in x.columns if not x[c].equals(y[c])]
            return f"columns differ: {cols}"
        return None
    if a.read_bytes() != b.read_bytes():
        return f"bytes differ ({a.stat().st_size} vs {b.stat().st_size} bytes)"
    return None


def compare(cache_a: Path, cache_b: Path) -> tuple[Counter[str], list[str]]:
    """Files compared per kind, and one line per difference."""
    in_a, in_b = files(cache_a), files(cache_b)
    problems = [f"only in {cache_a}: {p}" for p in sorted(in_a - in_b)]
    problems += [f"only in {cache_b}: {p}" for p in sorted(in_b - in_a)]
    kinds: Counter[str] = Counter()
    for rel in sorted(in_a & in_b):
        kinds[Path(rel).suffix or "(none)"] += 1
        why = difference(cache_a.resolve() / rel, cache_b.resolve() / rel)
        if why is not None:
            problems.append(f"differs: {rel}: {why}")
    return kinds, problems


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("cache_a", type=Path)
    p.add_argument("cache_b", type=Path)
    args = p.parse_args(argv)
    for c in (args.cache_a, args.cache_b):
        if not (c / "manifest.json").is_file():
            p.error(f"{c} is not a built cache (no manifest.json)")
    kinds, problems = compare(args.cache_a, args.cache_b)
    for line in problems:
        print(line)
    detail = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    print(f"compared {sum(kinds.values())} files ({detail}): "
          + (f"{len(problems)} differences" if problems else "all equal"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
