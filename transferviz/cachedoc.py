"""Renders the artifact table of ``docs/cache.md`` from a built cache's manifest.

``python -m transferviz.cachedoc cache/digits`` prints it; the table is generated, so it
cannot drift from what the stages really write.
"""

from __future__ import annotations

import re
import sys

from transferviz.cache import Cache


def artifact_table(cache: Cache) -> str:
    layers = "|".join(re.escape(l) for l in sorted(cache.layers, key=len, reverse=True))  # longest first

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
    stage_of = {}
    for name, st in cache.manifest["stages"].items():
        for p in st["artifacts"]:
            stage_of.setdefault(generic(p), name)
    lines = ["| path | stage | kind | dtype | meaning |", "| --- | --- | --- | --- | --- |"]
    for key, (kind, dtype, meaning) in rows.items():
        lines.append(f"| `{key}` | {stage_of.get(key, '')} | {kind} | {dtype or ''} | {meaning.replace('|', '/')} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(artifact_table(Cache.open(sys.argv[1] if len(sys.argv) > 1 else "cache/digits")))
