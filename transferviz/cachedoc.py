"""Renders the artifact table of ``docs/cache.md`` from a built cache's manifest.

``python -m transferviz.cachedoc cache/digits`` prints it; ``--write docs/cache.md`` replaces the
table there. The table is generated, and ``tests/core/test_cachedoc.py`` fails when the one in
``docs/cache.md`` differs from what the stages really write.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from transferviz.cache import Cache

__all__ = ["HEADER", "artifact_table", "documented_table", "with_table"]

HEADER = "| path | stage | kind | dtype | meaning |"


def artifact_table(cache: Cache) -> str:
    layers = "|".join(re.escape(layer) for layer in sorted(cache.layers, key=len, reverse=True))  # longest first

    def generic(path: str) -> str:
        # collapse per-model / per-layer / per-pair names into patterns
        p = re.sub(r"/(source|target)/", "/{model}/", path)
        p = re.sub(r"^models/(source|target)\.", "models/{model}.", p)
        p = re.sub(r"epochs/(source|target)_\d+", "epochs/{model}_{epoch:03d}", p)
        p = re.sub(r"embedding/(source|target)\.", "embedding/{model}.", p)
        p = re.sub(r"^featvis/(source|target)$", "featvis/{model}", p)
        p = re.sub(rf"({layers})__({layers})", "{layer_i}__{layer_j}", p)
        p = re.sub(rf"/({layers})(?=[._])", "/{layer}", p)
        return p

    rows: dict[str, tuple[str, str, str]] = {}
    for path, art in cache.manifest["artifacts"].items():
        key = generic(path)
        if key in rows:
            continue
        meaning = art["meaning"]
        if "{model}" in key:  # only per-model artifacts name the model generically
            meaning = re.sub(r"\b(source|target)([- ])model\b", r"{model}\2model", meaning)
        meaning = re.sub(rf"\b({layers}) -> ({layers})\b", "{layer_i} -> {layer_j}", meaning)
        meaning = re.sub(rf"(?<![\w.])({layers})(?![\w.])", "{layer}", meaning)
        rows[key] = (art["kind"], art.get("dtype", ""), meaning)
    stage_of: dict[str, str] = {}
    for name, st in cache.manifest["stages"].items():
        for p in st["artifacts"]:
            stage_of.setdefault(generic(p), name)
    lines = [HEADER, "| --- | --- | --- | --- | --- |"]
    for key, (kind, dtype, meaning) in rows.items():
        lines.append(f"| `{key}` | {stage_of.get(key, '')} | {kind} | {dtype or ''} | {meaning.replace('|', '/')} |")
    return "\n".join(lines)


def documented_table(doc: str) -> str:
    """The artifact table in the text of ``docs/cache.md``: its header line and the table lines after it."""
    lines = doc.splitlines()
    if HEADER not in lines:
        raise ValueError(f"no artifact table (a line {HEADER!r}) in the document")
    start = end = lines.index(HEADER)
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return "\n".join(lines[start:end])


def with_table(doc: str, table: str) -> str:
    """The text of ``docs/cache.md`` with its artifact table replaced by ``table``."""
    return doc.replace(documented_table(doc), table, 1)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m transferviz.cachedoc", description=__doc__.splitlines()[0])
    p.add_argument("cache", nargs="?", default="cache/digits", help="a built cache (default: cache/digits)")
    p.add_argument("--write", type=Path, metavar="DOC", help="replace the artifact table in DOC (docs/cache.md)")
    args = p.parse_args(argv)
    table = artifact_table(Cache.open(args.cache))
    if args.write is None:
        print(table)
    else:
        args.write.write_text(with_table(args.write.read_text(), table))


if __name__ == "__main__":
    main()
