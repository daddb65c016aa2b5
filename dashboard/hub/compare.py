"""What the comparison page draws, read from 2-6 runs (issue 14, item 2): pure functions of
``{run name: Cache}``, tested on synthetic runs.

Runs compare on what they share: classes by name (the per-class gains of a class that only some runs
have are drawn for those runs), layers by position (the i-th analysed layer of each run) when the
architectures or layer lists differ. :func:`differences` words what they do not share, for the page's note.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dashboard.hub.runs import ESTIMATES
from dashboard.lookups import json_number
from transferviz.cache import Cache

__all__ = ["MAX_RUNS", "MIN_RUNS", "LayerAxis", "accuracy_frame", "cka_diagonals", "class_gains",
           "correspondence_by_pair", "differences", "layer_axis", "parse_run_list", "scores_frame"]

MIN_RUNS, MAX_RUNS = 2, 6

Runs = Mapping[str, Cache]


def parse_run_list(text: str | None, known: Sequence[str]) -> tuple[list[str], str | None]:
    """The runs a comparison URL names (``runs=a,b``: known names, first-seen order) and the problem with
    it, one line (None: 2-6 known runs)."""
    asked = [n for n in (text or "").split(",") if n]
    unknown = [n for n in asked if n not in known]
    names = list(dict.fromkeys(n for n in asked if n in known))
    if unknown:
        return names, f"unknown run(s): {', '.join(unknown[:6])}; choose runs in the hub's table"
    if not MIN_RUNS <= len(names) <= MAX_RUNS:
        return names, (f"a comparison needs {MIN_RUNS} to {MAX_RUNS} runs, the link names {len(names)}; "
                       "tick them in the hub's table")
    return names, None


def accuracy_frame(runs: Runs) -> pd.DataFrame:
    """Per run, model and epoch, the accuracy on the target validation data (the data the transferability
    score is measured on): columns run, model, epoch, accuracy. A run without history adds no rows."""
    parts = []
    for name, c in runs.items():
        if not c.has_history:
            continue
        h = c.history
        col = "target_val" if "target_val" in h.columns else None
        for model in ("source", "target"):
            part = h[h["model"] == model]
            # the target model's own validation data is the target's: 'val' in histories without target_val
            column = col or ("val" if model == "target" else None)
            if column is None or column not in part.columns or len(part) == 0:
                continue
            acc = pd.to_numeric(part[column], errors="coerce")
            keep = acc.notna().to_numpy()
            parts.append(pd.DataFrame({"run": name, "model": model,
                                       "epoch": part["epoch"].to_numpy()[keep].astype(int),
                                       "accuracy": acc.to_numpy(dtype=float)[keep]}))
    cols = ["run", "model", "epoch", "accuracy"]
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)


def scores_frame(runs: Runs) -> pd.DataFrame:
    """Per run (rows, in order): the transferability score and the estimates before fine-tuning (NaN where
    the run lacks them); columns ``score`` and :data:`ESTIMATES`."""
    rows = []
    for c in runs.values():
        s = c.summary() or {}
        e = c.transfer_estimates() or {}
        score = json_number(s.get("transferability"))
        rows.append({"score": np.nan if score is None else score,
                     **{k: (np.nan if json_number(e.get(k)) is None else float(e[k])) for k in ESTIMATES}})
    return pd.DataFrame(rows, index=list(runs), columns=["score", *ESTIMATES], dtype=float)


@dataclass(frozen=True)
class LayerAxis:
    """How layers line up across runs: by name when every run analysed the same layers, else by position."""

    by_name: bool
    labels: list[str]  # the axis' tick labels: the shared layer names, or L1..Ln


def layer_axis(runs: Runs) -> LayerAxis:
    """The shared layer axis of ``runs`` (see :class:`LayerAxis`)."""
    lists = [tuple(c.layers) for c in runs.values()]
    if lists and all(ls == lists[0] for ls in lists):
        return LayerAxis(True, list(lists[0]))
    n = max((len(ls) for ls in lists), default=0)
    return LayerAxis(False, [f"L{i + 1}" for i in range(n)])


def cka_diagonals(runs: Runs, domain: str = "target") -> dict[str, np.ndarray | None]:
    """Per run, CKA between source layer i and target layer i on ``domain``'s data (the heatmap's diagonal:
    1 = the layer's representation kept through fine-tuning, lower = changed), in the run's layer order;
    None for a run built before the cka stage."""
    out: dict[str, np.ndarray | None] = {}
    for name, c in runs.items():
        m = c.cka(domain)
        out[name] = None if m is None else np.diagonal(np.asarray(m, dtype=float)).copy()
    return out


def correspondence_by_pair(runs: Runs) -> dict[str, pd.DataFrame | None]:
    """Per run, the correspondence share of each linked layer pair, averaged over classes, beside its
    same-index reference and the permutation null's 95th percentile (``Cache.correspondence_summary``);
    columns pair (``from -> to``), position (the pair's first layer, 0-based), share, same_index_share,
    null_p95. None for a run without the summary."""
    out: dict[str, pd.DataFrame | None] = {}
    for name, c in runs.items():
        s = c.correspondence_summary() if c.has_correspondence else None
        if s is None or len(s) == 0:  # a run without the artifact: not drawn, and :func:`differences` says so
            out[name] = None
            continue
        g = (s.groupby(["from_layer", "to_layer"], sort=False)[["share", "same_index_share", "null_p95"]]
             .mean().reset_index())
        pos = {layer: i for i, layer in enumerate(c.layers)}
        g["position"] = g["from_layer"].map(pos).astype(int)
        g["pair"] = g["from_layer"].astype(str) + " \u2192 " + g["to_layer"].astype(str)
        out[name] = g.sort_values("position")[["pair", "position", "share", "same_index_share", "null_p95"]] \
            .reset_index(drop=True)
    return out


def class_gains(runs: Runs) -> pd.DataFrame:
    """Classes (rows, by name: the first run's order, then classes only later runs have) x runs (columns):
    the target model's accuracy minus the source model's on the class's target validation instances
    (``class_table``'s ``diff``); NaN where a run lacks the class or has no such instances."""
    cols: dict[str, pd.Series] = {}
    order: list[str] = []
    for name, c in runs.items():
        if not c.has_class_table:
            cols[name] = pd.Series(dtype=float)
            continue
        t = c.class_table
        order += [str(k) for k in t["class"] if str(k) not in order]
        cols[name] = pd.Series(pd.to_numeric(t["diff"], errors="coerce").to_numpy(dtype=float),
                               index=t["class"].astype(str).to_numpy())
    for name in runs:
        order += [k for k in cols[name].index if k not in order]
    return pd.DataFrame({name: cols[name].reindex(order) for name in runs}, index=pd.Index(order, name="class"),
                        dtype=float)


def differences(runs: Runs) -> list[str]:
    """What the runs do not share, one line each: classes, architectures, layers, and the measures a run
    lacks (built before the stage); empty when they compare on everything."""
    notes: list[str] = []
    class_sets = {name: set(c.classes) for name, c in runs.items()}
    shared = set.intersection(*class_sets.values()) if class_sets else set()
    for name, cs in class_sets.items():
        extra = sorted(cs - shared)
        if extra:
            notes.append(f"{name} has classes the others lack ({_short(extra)}): the gain heatmap leaves them blank "
                         "for the other runs")
    archs = {name: str(c.config.get("model", {}).get("arch", "?")) for name, c in runs.items()}
    if len(set(archs.values())) > 1:
        notes.append("architectures differ (" + ", ".join(f"{n}: {a}" for n, a in archs.items())
                     + "): layers are compared by position (L1 = each run's first analysed layer)")
    elif not layer_axis(runs).by_name:
        notes.append("the runs analysed different layers: layers are compared by position (L1 = each run's first)")
    for measure, missing in (("CKA", [n for n, c in runs.items() if c.cka("target") is None]),
                             ("transferability estimates", [n for n, c in runs.items()
                                                            if c.transfer_estimates() is None]),
                             ("training history", [n for n, c in runs.items() if not c.has_history]),
                             ("weight correspondence", [n for n, c in runs.items() if not c.has_correspondence])):
        if missing:
            notes.append(f"no {measure} in {', '.join(missing)} (built before that stage or without it): "
                         "not drawn for them")
    return notes


def _short(names: Sequence[str], limit: int = 8) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")
