"""Command line: ``transferviz build CONFIG``, ``info CACHE``, ``sensitivity CACHE`` (or ``python -m transferviz``)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from transferviz.errors import TransferVizError, disk_error

if TYPE_CHECKING:
    from transferviz.cache import Cache

DEFAULT_CACHE = Path("cache")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="transferviz", description="Explain and diagnose transfer learning "
                                "between a source and a fine-tuned target CNN.")
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="train or load the models and compute every analysis into a cache")
    b.add_argument("config", help="YAML config, e.g. configs/digits.yaml (or just 'digits')")
    b.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="folder holding caches (default: cache)")
    b.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    b.add_argument("--force", action="store_true", help="rebuild every stage, reusing nothing")
    b.add_argument("--no-featvis", action="store_true", help="skip the feature visualization stage")
    b.add_argument("--quiet", action="store_true", help="no progress bars")
    i = sub.add_parser("info", help="print a built cache's summary")
    i.add_argument("cache", type=Path, help="a cache folder, e.g. cache/digits")
    s = sub.add_parser("sensitivity", help="how much the important neurons, weights and correspondence shares of a "
                       "built cache change with the analysis choices the paper leaves open (no new attribution)")
    s.add_argument("target", help="a cache folder (cache/digits) or the config it was built from")
    s.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="folder holding caches, when TARGET is a "
                   "config (default: cache)")
    s.add_argument("--out", type=Path, help="CSV to write (default: sensitivity-<run>.csv here)")
    s.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    s.add_argument("--only", help="comma-separated choices to vary (default all: neuron_fraction, weight_k, "
                   "active_receivers, similarity, matching; the last two are quick)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "build":
            return _build(args)
        if args.command == "info":
            return _info(args)
        if args.command == "sensitivity":
            return _sensitivity(args)
    except TransferVizError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a disk that fills up or turns read-only mid-build is the user's to fix
        err = disk_error(exc)
        if err is None:
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the previous cache (if any) is untouched", file=sys.stderr)
        return 130
    return 1


def _build(args: argparse.Namespace) -> int:
    # Imported per command, not at the top, so that `transferviz --help` and argument errors stay
    # instant: the build pulls in torch, pandas and the analysis libraries (seconds to import).
    from transferviz.build import build
    from transferviz.config import load_config
    from transferviz.preprocess import resolve_device

    cfg = load_config(args.config)
    device = resolve_device(args.device)
    print(f"building '{cfg.name}' into {args.cache_dir / cfg.name} on {device}", file=sys.stderr)
    report = build(cfg, args.cache_dir, device, force=args.force, featvis=not args.no_featvis,
                   progress=not args.quiet, log=lambda m: print(m, file=sys.stderr))
    print(report.summary())
    return 0


def _sensitivity(args: argparse.Namespace) -> int:
    from transferviz.cache import Cache
    from transferviz.config import parse_config
    from transferviz.preprocess import resolve_device
    from transferviz.sensitivity import default_grid, sensitivity_table

    target = Path(args.target)
    if (target / "manifest.json").is_file():
        cache = Cache.open(target)
    else:
        from transferviz.config import load_config

        cache = Cache.open(args.cache_dir / load_config(args.target).name)
    grid = default_grid(parse_config(cache.config, f"{cache.root}/manifest.json").analysis)
    if args.only:
        wanted = [c.strip() for c in args.only.split(",") if c.strip()]
        known = sorted({v.choice for v in grid})
        for c in wanted:
            if c not in known:
                raise TransferVizError(f"--only: unknown choice {c!r}; choose from {', '.join(known)}")
        grid = [v for v in grid if v.choice in wanted]
    device = resolve_device(args.device)
    table = sensitivity_table(cache, grid, device=device, progress=not args.quiet)
    out = args.out or Path(f"sensitivity-{cache.name}.csv")
    table.to_csv(out, index=False)
    with pd_options():
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"wrote {out} ({len(table)} rows); Jaccard 1 / change 0: the finding does not hang on that choice")
    return 0


def pd_options():  # type: ignore[no-untyped-def]
    """Wide pandas printing for the sensitivity table (no wrapping at 80 columns)."""
    import pandas as pd

    return pd.option_context("display.width", 200, "display.max_rows", 500, "display.max_colwidth", 40)


def _info(args: argparse.Namespace) -> int:
    from transferviz.cache import Cache  # per command, as in _build: pandas is slow to import

    c = Cache.open(args.cache)
    c.verify()  # every listed artifact against its record (headers only): info is how a user checks a cache
    m = c.manifest
    print(f"{c.name}: {len(c.instances)} instances, {len(c.classes)} classes, layers {', '.join(c.layers)}")
    for line in _layer_lines(c):
        print(line)
    print(f"created {m['created']} on {m['device']}; schema {m['schema_version']}")
    for name, s in m["stages"].items():
        status = "reused" if s["reused"] else "built"
        print(f"  {name:<13} {status:<7} {s['seconds']:7.1f} s  {s['notes'].get('summary', '')}")
    return 0


def _layer_lines(c: "Cache") -> list[str]:
    """Why these layers, which do not cut the graph, and which consecutive pairs have no weights (and why)."""
    selection = c.layer_selection()
    if selection is None:  # a cache built before layers were chosen from the graph
        return []
    lines = [f"layers chosen by {selection['reason']}"]
    not_cut = [name for name, cut in c.layer_cuts.items() if not cut]
    if not_cut:
        lines.append(f"  not cuts of the graph (completeness not checked): {', '.join(not_cut)}")
    links = c.layer_links()
    lines.append(f"  weights: {int(links.linked.sum())} of {len(links)} consecutive pairs joined by one weight matrix")
    lines += [f"  {r.from_layer} -> {r.to_layer}: {r.reason}" for r in links.itertuples(index=False) if not r.linked]
    return lines


if __name__ == "__main__":
    sys.exit(main())
