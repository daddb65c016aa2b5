"""The models & data view's slice of the cache: every module of the shared architecture with its
weight change, and the instances counted per class, domain and split."""

from __future__ import annotations

from typing import Any

import pandas as pd

from transferviz.cache import Cache

__all__ = ["DOMAINS", "SPLITS", "class_count_frame", "layer_label", "module_rows", "sample_ids", "weight_change_frame"]

DOMAINS = ("source", "target")
SPLITS = ("train", "val")


def module_rows(cache: Cache) -> tuple[list[dict[str, Any]], bool]:
    """``(rows, complete)``: every leaf module (name, type, output_shape, params, analysed, number,
    weight_change). ``complete`` is False for an older cache without ``models/modules.json``, whose
    rows come from ``models/layers.json``: shapes and weight change for analysed layers only (and
    there the change is of the weight tensor alone)."""
    mods = cache.modules()
    if mods is not None:
        return mods, True
    info = cache.layer_info
    detail = {d["name"]: d for d in info.get("detail", [])}
    listed = info.get("modules") or [{"name": d["name"], "type": d["type"], "params": d["params"]}
                                     for d in info.get("detail", [])]
    rows = []
    for m in listed:
        d = detail.get(m["name"])
        rows.append({"name": m["name"], "type": m["type"], "params": int(m["params"]),
                     "output_shape": d["output_shape"] if d else None, "analysed": d is not None,
                     "number": d["number"] if d else None, "weight_change": d["weight_change"] if d else None})
    return rows, False


def layer_label(row: dict[str, Any]) -> str:
    """``L3`` for the paper's analysed layer 3, else the module name."""
    return f"L{row['number']}" if row.get("analysed") and row.get("number") else row["name"]


def weight_change_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The chart's rows: modules whose weight change is known (those with parameters), forward order."""
    keep = [r for r in rows if r.get("weight_change") is not None]
    return pd.DataFrame({"label": [layer_label(r) for r in keep], "name": [r["name"] for r in keep],
                         "type": [r["type"] for r in keep], "analysed": [bool(r["analysed"]) for r in keep],
                         "weight_change": [float(r["weight_change"]) for r in keep]})


def class_count_frame(cache: Cache) -> pd.DataFrame:
    """Long table: class_index, class_name, domain, split, n; every combination, zeros included."""
    df = cache.instances
    n = df.groupby(["label", "domain", "split"]).size()
    full = pd.MultiIndex.from_product([range(len(cache.classes)), DOMAINS, SPLITS], names=["label", "domain", "split"])
    out = n.reindex(full, fill_value=0).rename("n").reset_index().rename(columns={"label": "class_index"})
    out.insert(1, "class_name", [cache.classes[i] for i in out["class_index"]])
    out["n"] = out["n"].astype(int)
    return out


def sample_ids(instances: pd.DataFrame, domain: str, split: str, per_class: int) -> dict[int, list[int]]:
    """Per class index, the ``per_class`` lowest instance ids of ``domain`` and ``split`` (deterministic)."""
    sub = instances[(instances["domain"] == domain) & (instances["split"] == split)].sort_values("id")
    return {int(c): [int(i) for i in g["id"].head(per_class)] for c, g in sub.groupby("label", sort=True)}
