"""Command line: ``transferviz build CONFIG``, ``info CACHE``, ``sensitivity CACHE``, ``featvis CACHE``,
``score --target CONFIG CHECKPOINT...`` (or ``python -m transferviz``)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from transferviz.errors import TransferVizError, disk_error

if TYPE_CHECKING:
    from transferviz.cache import Cache, ModelName

DEFAULT_CACHE = Path("cache")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="transferviz", description="Explain and diagnose transfer learning "
                                "between a source and a fine-tuned target CNN.")
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="train or load the models and compute every analysis into a cache")
    b.add_argument("config", help="YAML config, e.g. configs/digits.yaml (or just 'digits')")
    b.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="folder holding caches (default: cache)")
    b.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    b.add_argument("--force", action="store_true", help="rebuild every stage, reusing nothing (and discard the "
                   "unfinished folder of an interrupted build instead of resuming it)")
    b.add_argument("--dist-timeout", type=float, default=None, metavar="SECONDS",
                   help="under torchrun: how long a rank waits for the others, e.g. while rank 0 trains "
                   "(default: TRANSFERVIZ_DIST_TIMEOUT or a day)")
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
    f = sub.add_parser("featvis", help="render feature visualizations of neurons the build left out and publish "
                       "them as a new build of the run (the published one is never changed in place)")
    f.add_argument("cache", type=Path, help="the run's link, e.g. cache/digits")
    f.add_argument("--layer", required=True, help="an analysed layer, e.g. classifier.1")
    f.add_argument("--neurons", required=True, help="indices and ranges, e.g. 3,17,40-45")
    f.add_argument("--model", choices=("source", "target", "both"), default="both",
                   help="which model's visualizations (default both: the change view compares the two)")
    f.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    f.add_argument("--quiet", action="store_true", help="no progress bar")
    sc = sub.add_parser("score", help="rank candidate source models for a config's target data before any "
                        "fine-tuning, by LogME, LEEP, NCE and H-score")
    sc.add_argument("--target", required=True, help="the config whose target training data and model arch to use")
    sc.add_argument("checkpoints", nargs="+", type=Path, help="state_dict checkpoints (.pt/.pth/.safetensors) of "
                    "the config's architecture, with any head size")
    sc.add_argument("--by", default="mean", help="rank by mean (of the four estimates' ranks; default), logme, "
                    "leep, nce or hscore")
    sc.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
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
        if args.command == "featvis":
            return _featvis(args)
        if args.command == "score":
            return _score(args)
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
        print("interrupted: the previous cache (if any) is untouched; the same build resumes where this one "
              "stopped", file=sys.stderr)
        return 130
    return 1


def _build(args: argparse.Namespace) -> int:
    # Imported per command, not at the top, so that `transferviz --help` and argument errors stay
    # instant: the build pulls in torch, pandas and the analysis libraries (seconds to import).
    from transferviz import distributed
    from transferviz.build import build
    from transferviz.config import load_config
    from transferviz.preprocess import resolve_device

    cfg = load_config(args.config)
    # under torchrun: joins the process group (a CUDA build computes on cuda:LOCAL_RANK); else nothing
    dist, device = distributed.init(resolve_device(args.device), args.dist_timeout)
    try:
        if dist.is_main:
            ranks = f" with {dist.world} processes ({dist.backend})" if dist.enabled else ""
            print(f"building '{cfg.name}' into {args.cache_dir / cfg.name} on {device}{ranks}", file=sys.stderr)
        report = build(cfg, args.cache_dir, device, force=args.force, featvis=not args.no_featvis,
                       progress=not args.quiet, log=lambda m: print(m, file=sys.stderr))
    finally:
        distributed.shutdown()
    if dist.is_main:
        print(report.summary())
    return 0


def _score(args: argparse.Namespace) -> int:
    from transferviz.analysis.transferability import ESTIMATES
    from transferviz.build.estimates import rank_table, score_checkpoints
    from transferviz.config import load_config
    from transferviz.preprocess import check_device, resolve_device

    if args.by != "mean" and args.by not in ESTIMATES:  # before the slow part: a typo is instant
        raise TransferVizError(f"--by {args.by!r}: choose mean or one of {', '.join(ESTIMATES)}")
    cfg = load_config(args.target)
    device = resolve_device(args.device)
    check_device(device)
    scores, errors = score_checkpoints(cfg, args.checkpoints, device, log=lambda m: print(m, file=sys.stderr))
    for line in errors.values():
        print(f"error: {line}", file=sys.stderr)
    if scores.empty:
        raise TransferVizError("no checkpoint could be scored; fix the errors above")
    table = rank_table(scores, args.by).rename(columns=ESTIMATES)
    with pd_options():
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    by = "the mean rank of the four estimates" if args.by == "mean" else ESTIMATES[args.by]
    print(f"rank 1 = expected to transfer best to {cfg.name}'s target data (by {by}); every estimate: higher = better")
    return 2 if errors else 0


def _featvis(args: argparse.Namespace) -> int:
    from transferviz.featvis.extend import add_neurons, parse_neurons
    from transferviz.preprocess import resolve_device

    neurons = parse_neurons(args.neurons)  # before the slow imports and the lock: a typo is instant
    models: tuple[ModelName, ...] = ("source", "target") if args.model == "both" else (args.model,)
    report = add_neurons(args.cache, args.layer, neurons, models, device=resolve_device(args.device),
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
