"""Models & data tab: the module table, class counts, sample images and the older-cache fallback."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dash import dcc, html

from dashboard.theme import is_empty_figure
from dashboard.views.models_data import data as PD
from dashboard.views.models_data import markup as PM
from dashboard.views.models_data.figures import class_count_chart, weight_change_chart
from tests.components import find, of_type, texts, walk
from transferviz.cache import Cache


def body_rows(table: html.Table) -> list[html.Tr]:
    tbody = of_type(table, html.Tbody)[0]
    return list(tbody.children)


def without_modules_json(cache: Cache, tmp: Path) -> Cache:
    """The same cache as an older build would be: everything but ``models/modules.json`` (symlinks)."""
    for p in cache.root.iterdir():
        if p.name not in ("models", "manifest.json"):
            (tmp / p.name).symlink_to(p)
    manifest = json.loads((cache.root / "manifest.json").read_text())
    del manifest["artifacts"]["models/modules.json"]  # an older build did not list it (Cache checks what it lists)
    (tmp / "manifest.json").write_text(json.dumps(manifest))
    (tmp / "models").mkdir()
    for p in (cache.root / "models").iterdir():
        if p.name != "modules.json":
            (tmp / "models" / p.name).symlink_to(p)
    return Cache.open(tmp)


# --- models ---------------------------------------------------------------------------

def test_table_rows_are_the_modules_and_totals_their_sum(tiny_cache):
    modules = tiny_cache.modules()
    rows, complete = PD.module_rows(tiny_cache)
    assert complete and rows == modules
    table = PM.models_table(rows, tiny_cache.layer_info["embedding_layer"])
    trs = body_rows(table)
    assert len(trs) == len(modules) + 1  # + totals
    for tr, m in zip(trs, modules):
        cells = tr.children
        assert texts(cells[0], sep="").removesuffix("emb") == m["name"]
        assert texts(cells[1], sep="") == m["type"]
        assert texts(cells[2], sep="") == "\u00d7".join(map(str, m["output_shape"]))
        assert texts(cells[3], sep="").replace(",", "") == str(m["params"])
        assert texts(cells[4], sep="") == (f"L{m['number']}" if m["analysed"] else "")
        assert texts(cells[5], sep="") == ("\u2014" if m["weight_change"] is None else f"{m['weight_change']:.3f}")
    total = sum(p.numel() for p in tiny_cache.model("target").parameters())
    assert sum(m["params"] for m in modules) == total
    assert texts(find(table, "preview-total-params"), sep="") == f"{total:,}"
    assert texts(trs[-1].children[4], sep="") == f"{len(tiny_cache.layers)} analysed"


def test_weight_change_chart_shows_every_module_with_parameters(tiny_cache):
    rows, _ = PD.module_rows(tiny_cache)
    frame = PD.weight_change_frame(rows)
    with_params = [r for r in rows if r["params"]]
    assert frame["name"].tolist() == [r["name"] for r in with_params]
    fig = weight_change_chart(frame)
    bar = fig.data[0]
    assert list(bar.y) == pytest.approx([r["weight_change"] for r in with_params])
    # bars by module name (unique), ticked with the short tags of the analysed layers
    assert list(bar.x) == frame["name"].tolist()
    assert list(fig.layout.xaxis.tickvals) == list(bar.x)
    analysed_labels = [x for x in fig.layout.xaxis.ticktext if x.startswith("L")]
    assert analysed_labels == [f"L{i}" for i in range(1, len(tiny_cache.layers) + 1)]
    top = int(np.argmax(bar.y))
    assert fig.layout.annotations[0].x == bar.x[top]  # "moved most" sits on the largest change
    assert is_empty_figure(weight_change_chart(frame.iloc[0:0]))


def test_models_panel_names_architecture_embedding_and_heads(tiny_cache):
    panel = PM.models_panel(tiny_cache)
    t = texts(panel, sep="")
    assert tiny_cache.config["model"]["arch"] in t
    emb = tiny_cache.layer_info["embedding_layer"]
    assert f"input of {emb}" in t
    assert f"output {len(tiny_cache.classes)} classes" in t
    assert PM.FALLBACK_NOTE not in t


def test_fallback_without_modules_json(tiny_cache, tmp_path):
    old = without_modules_json(tiny_cache, tmp_path)
    assert old.modules() is None
    rows, complete = PD.module_rows(old)
    assert not complete
    info = tiny_cache.layer_info
    assert [r["name"] for r in rows] == [m["name"] for m in info["modules"]]
    assert sum(r["params"] for r in rows) == sum(m["params"] for m in info["modules"])
    detail = {d["name"]: d for d in info["detail"]}
    for r in rows:
        if r["name"] in detail:  # analysed: shape and change from layers.json
            assert r["analysed"] and r["output_shape"] == detail[r["name"]]["output_shape"]
            assert r["weight_change"] == detail[r["name"]]["weight_change"]
        else:  # the other modules' shapes and changes are unknown, not invented
            assert not r["analysed"] and r["output_shape"] is None and r["weight_change"] is None
    t = texts(PM.models_panel(old), sep="")
    assert PM.FALLBACK_NOTE in t and "unavailable" in t


# --- data -----------------------------------------------------------------------------

def test_class_counts_equal_a_groupby(tiny_cache):
    counts = PD.class_count_frame(tiny_cache)
    expect = tiny_cache.instances.groupby(["label", "domain", "split"]).size()
    assert len(counts) == len(tiny_cache.classes) * 2 * 2
    for r in counts.itertuples():
        assert r.n == expect.get((r.class_index, r.domain, r.split), 0)
        assert r.class_name == tiny_cache.classes[r.class_index]
    assert counts["n"].sum() == len(tiny_cache.instances)
    table = PM.count_table(counts, tiny_cache.domains)
    trs = body_rows(table)
    assert len(trs) == len(tiny_cache.classes) + 1
    inst = tiny_cache.instances
    for ci, tr in enumerate(trs[:-1]):
        cells = [texts(c, sep="") for c in tr.children]
        assert cells[1:5] == [str(int(((inst.label == ci) & (inst.domain == d) & (inst.split == s)).sum()))
                              for d in ("source", "target") for s in ("train", "val")]
        assert cells[5] == str(int((inst.label == ci).sum()))
    assert texts(trs[-1].children[5], sep="").replace(",", "") == str(len(inst))
    fig = class_count_chart(counts, tiny_cache.domains)
    for tr in fig.data:
        sub = counts[(counts.domain == tr.meta["domain"]) & (counts.split == tr.meta["split"])]
        assert list(tr.y) == sub.sort_values("class_index")["n"].tolist()


def test_data_summary_reports_meta(tiny_cache):
    t = texts(PM.data_summary(tiny_cache), sep="")
    meta = tiny_cache.meta
    for d in ("source", "target"):
        assert tiny_cache.domains[d] in t
        n = meta["counts"][d]
        assert f"{n['train'] + n['val']:,} = {n['train']:,} train + {n['val']:,} val" in t
        assert f"{meta['converted'][d]:,} converted" in t
    assert f"{meta['image_size']}\u00d7{meta['image_size']} px" in t


def absent_class_cache(cache: Cache, cls: int, domain: str) -> Cache:
    """A view of ``cache`` whose instances lack class ``cls`` in ``domain``."""
    df = cache.instances
    kept = df[~((df.label == cls) & (df.domain == domain))].reset_index(drop=True)

    class Absent(Cache):
        @property
        def instances(self) -> pd.DataFrame:
            return kept

    return Absent(cache.root, cache.manifest)


def test_class_absent_from_a_domain_is_flagged(tiny_cache):
    c = absent_class_cache(tiny_cache, 2, "target")
    trs = body_rows(PM.count_table(PD.class_count_frame(c), c.domains))
    assert "\u26a0" in texts(trs[2], sep="") and trs[2].style
    assert all("\u26a0" not in texts(tr, sep="") for i, tr in enumerate(trs[:-1]) if i != 2)
    grid = PM.sample_grid(c, "train", "/")
    row = next(x for x in walk(grid) if getattr(x, "data-class", None) == 2)
    assert "no target" in texts(row, sep="")
    assert len(of_type(row, html.Img)) == PM.SAMPLES_PER_CLASS  # source only


# --- samples --------------------------------------------------------------------------

@pytest.mark.parametrize("split", ["train", "val"])
def test_sample_ids_belong_to_their_class_domain_and_split(tiny_cache, split):
    inst = tiny_cache.instances.set_index("id")
    for d in ("source", "target"):
        picks = PD.sample_ids(tiny_cache.instances, d, split, 3)
        for ci, chosen in picks.items():
            rows = inst.loc[chosen]
            assert (rows.label == ci).all() and (rows.domain == d).all() and (rows.split == split).all()
            pool = inst[(inst.label == ci) & (inst.domain == d) & (inst.split == split)].index
            assert chosen == sorted(pool)[:3]  # deterministic: the lowest ids
        present = set(tiny_cache.instances.query("domain == @d and split == @split").label)
        assert set(picks) == present


def test_sample_grid_thumbnails(tiny_cache):
    grid = PM.sample_grid(tiny_cache, "train", "/app/")
    picks = {d: PD.sample_ids(tiny_cache.instances, d, "train", PM.SAMPLES_PER_CLASS) for d in ("source", "target")}
    for ci in range(len(tiny_cache.classes)):
        row = next(x for x in walk(grid) if getattr(x, "data-class", None) == ci)
        srcs = [x.src for x in of_type(row, html.Img)]
        want = picks["source"].get(ci, []) + picks["target"].get(ci, [])
        assert srcs == [f"/app/thumb/{i}.png" for i in want]
    # an unknown split from the client falls back to train
    assert (texts(PM.sample_grid(tiny_cache, "nonsense", "/"), sep="")
            == texts(PM.sample_grid(tiny_cache, "train", "/"), sep=""))


def test_panels_are_graphs_with_the_builders_figures(tiny_cache):
    graphs = of_type(PM.models_panel(tiny_cache) + PM.data_summary(tiny_cache), dcc.Graph)
    assert len(graphs) == 2
    assert graphs[0].figure.data[0].meta == {"role": "weight_change"}
    assert {tr.meta["domain"] for tr in graphs[1].figure.data} == {"source", "target"}
