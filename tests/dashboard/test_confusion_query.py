"""Confusion grid with images and the image query (issue 6 items 3 and 4), on the tiny cache.

Counts, cells and neighbours are recomputed here with plain numpy (brute force) and
compared with what the views show.
"""

from __future__ import annotations

import json

import dash
import numpy as np
import pytest

from callbacks import confusion_grid as cb_conf
from callbacks import image_query as cb_query
from dashboard.theme import is_empty_figure
from dashboard.views.confusion_grid import data as conf_data
from dashboard.views.confusion_grid import markup as conf_markup
from dashboard.views.confusion_grid.figures import (
    MAX_TEXT_CLASSES,
    confusion_heatmap,
    grid_figure,
    grid_size,
    row_shares,
)
from dashboard.views.image_query import data as query_data
from dashboard.views.image_query.figures import waveform_figure
from dashboard.views.image_query.markup import query_view
from layouts import confusion_grid as conf_layout
from layouts import ids
from layouts import image_query as query_layout
from tests.components import find, texts, traces, walk
from tests.conftest import dispatch

NO = dash.no_update
PREFIX = "/app/"


def _ids_of_type(component, type_: str) -> list[int]:
    return [c.id["index"] for c in walk(component) if isinstance(getattr(c, "id", None), dict)
            and c.id.get("type") == type_]


def _brute_confusion(df, model: str, domain: str, split: str, n: int) -> np.ndarray:
    out = np.zeros((n, n), dtype=np.int64)
    for lab, pred, dom, spl in zip(df["label"], df[f"{model}_pred"], df["domain"], df["split"]):
        if dom == domain and (split == "all" or spl == split):
            out[lab, pred] += 1
    return out


# --- confusion grid -------------------------------------------------------------------

@pytest.mark.parametrize("model", ["source", "target"])
@pytest.mark.parametrize("domain", ["source", "target"])
def test_counts_equal_the_cached_confusion_and_a_recount(tiny_cache, model, domain):
    n = len(tiny_cache.classes)
    counts = conf_data.confusion_counts(tiny_cache, model, domain, "all")
    np.testing.assert_array_equal(counts, tiny_cache.confusion(model, domain))
    df = tiny_cache.instances
    for split in ("val", "train"):
        got = conf_data.confusion_counts(tiny_cache, model, domain, split)
        np.testing.assert_array_equal(got, _brute_confusion(df, model, domain, split, n))
    val = conf_data.confusion_counts(tiny_cache, model, domain, "val")
    assert 0 < val.sum() < counts.sum()  # the tiny cache has a validation split in both domains


def test_grid_figure_shows_counts_and_row_shares(tiny_cache):
    fig = grid_figure(tiny_cache, "source", "target", "val", cell=[1, 2])
    counts = conf_data.confusion_counts(tiny_cache, "source", "target", "val")
    n = len(counts)
    by_role = {t.meta["role"]: t for t in fig.data}
    correct, errors = by_role["correct"], by_role["errors"]
    share = row_shares(counts)
    for i in range(n):
        for j in range(n):
            on, off = (correct, errors) if i == j else (errors, correct)
            assert on.z[i][j] == pytest.approx(share[i, j])
            assert off.z[i][j] is None  # the other trace leaves a gap there
            assert on.customdata[i][j][2] == counts[i, j]
            assert on.text[i][j] == (str(counts[i, j]) if i == j or counts[i, j] else "")
    assert list(fig.layout.yaxis.ticktext)[0].startswith(tiny_cache.classes[0])
    rect = fig.layout.shapes[0]
    assert (rect.x0 + 0.5, rect.y0 + 0.5) == (2, 1)  # the chosen cell (true 1, predicted 2) is outlined
    # unknown radio values fall back to the defaults instead of failing
    np.testing.assert_array_equal(
        [t.z for t in grid_figure(tiny_cache, "bogus", None, "x").data],
        [t.z for t in grid_figure(tiny_cache, "target", "target", "all").data])


def test_heatmap_builder_edge_cases():
    assert is_empty_figure(confusion_heatmap(np.zeros((3, 3), dtype=int), ["a", "b", "c"]))
    fig = confusion_heatmap(np.array([[5, 0], [0, 0]]), ["a", "b"])
    assert list(fig.layout.yaxis.ticktext) == ["a", "b (0)"]  # an absent class is marked, not silently blank
    big = confusion_heatmap(np.eye(20, dtype=int) * 3, [str(i) for i in range(20)])
    assert all(t.text is None for t in big.data)  # too many classes for numbers: hover only


def _synthetic_counts(n: int) -> np.ndarray:
    rng = np.random.default_rng(n)
    return rng.integers(0, 4, size=(n, n)) + np.eye(n, dtype=np.int64) * 20


def test_grid_keeps_its_size_and_labels_for_ten_classes():
    names = [f"class {i}" for i in range(10)]
    fig = confusion_heatmap(_synthetic_counts(10), names, height=conf_layout.GRID_HEIGHT)
    assert fig.layout.height == conf_layout.GRID_HEIGHT and fig.layout.width is None  # as before: fills the card
    assert list(fig.layout.xaxis.ticktext) == names == list(fig.layout.yaxis.ticktext)
    assert fig.layout.xaxis.tickfont.size == fig.layout.yaxis.tickfont.size == 10
    assert all(t.text is not None for t in fig.data)
    assert conf_layout.graph_style(10) == {"height": conf_layout.GRID_HEIGHT}


def test_grid_grows_with_31_classes_and_cuts_long_labels():
    n = 31
    names = [f"office_item_number_{i:02d}" for i in range(n)]  # 21 characters each, all distinct
    counts = _synthetic_counts(n)
    counts[5] = 0                                              # an absent class keeps its "(0)" mark
    fig = confusion_heatmap(counts, names, height=conf_layout.GRID_HEIGHT)
    h = fig.layout.height
    assert h == max(conf_layout.GRID_HEIGHT, 60 + 14 * n) == 494
    assert fig.layout.width == h + 10 and (h, h + 10) == grid_size(n, conf_layout.GRID_HEIGHT)
    # ~13 px a cell once titles and labels take their share, where 300 px gave ~6
    assert (h - 90) / n >= 12
    xt, yt = list(fig.layout.xaxis.ticktext), list(fig.layout.yaxis.ticktext)
    assert xt[0] == "office_ite\u2026" and all(len(t) == 11 for t in xt)
    assert yt[5] == "office_ite\u2026 (0)" and yt[6] == xt[6]
    assert list(fig.layout.xaxis.tickvals) == list(range(n))  # positions, so equal cut labels stay apart
    assert fig.layout.xaxis.tickfont.size == fig.layout.yaxis.tickfont.size == 8
    # the hover still names both classes in full
    by_role = {t.meta["role"]: t for t in fig.data}
    for i, j in ((0, 0), (3, 7), (30, 1), (30, 30)):
        cd = by_role["correct" if i == j else "errors"].customdata[i][j]
        assert cd == [names[i], names[j], counts[i, j]]
    assert "%{customdata[0]}" in fig.data[0].hovertemplate and "%{customdata[1]}" in fig.data[0].hovertemplate
    # the layout sizes the graph like the figure, inside a box of the usual height that scrolls
    assert conf_layout.graph_style(n) == {"height": h, "width": h + 10}
    # short names are not cut even above the threshold
    short = confusion_heatmap(_synthetic_counts(MAX_TEXT_CLASSES + 1), [f"c{i}" for i in range(MAX_TEXT_CLASSES + 1)])
    assert list(short.layout.xaxis.ticktext)[3] == "c3"


def test_layout_scrolls_a_large_grid_in_a_fixed_box(tiny_cache, monkeypatch):
    from transferviz.cache import Cache
    monkeypatch.setattr(Cache, "classes", property(lambda self: [f"k{i}" for i in range(31)]))
    lay = conf_layout.layout(tiny_cache)
    box = find(lay, conf_layout.GRID_BOX)
    assert box.style == {"height": conf_layout.GRID_HEIGHT, "overflow": "auto"}
    graph = box.children
    assert graph.id == conf_layout.GRAPH and graph.style == conf_layout.graph_style(31)
    assert graph.style["height"] > conf_layout.GRID_HEIGHT


def test_cell_click_lists_exactly_that_cells_instances(tiny_cache):
    df = tiny_cache.instances
    model, domain, split = "source", "target", "all"
    counts = conf_data.confusion_counts(tiny_cache, model, domain, split)
    off = np.argwhere((counts > 0) & ~np.eye(len(counts), dtype=bool))
    true, pred = (int(v) for v in (off[0] if len(off) else (0, 0)))
    click = {"points": [{"curveNumber": 1, "x": pred, "y": true, "z": 0.1}]}
    cell = cb_conf.parse_cell(click, len(tiny_cache.classes))
    assert cell == [true, pred]
    expected = df["id"][(df["domain"] == domain) & (df["label"] == true) & (df[f"{model}_pred"] == pred)].tolist()
    assert conf_data.cell_ids(tiny_cache, model, domain, split, true, pred).tolist() == expected
    caption, listing = conf_markup.cell_list(tiny_cache, model, domain, split, cell, PREFIX)
    assert _ids_of_type(listing, conf_layout.THUMB) == expected
    assert f" {len(expected)} " in f" {texts(caption)} "
    imgs = [c for c in walk(listing) if getattr(c, "src", None)]
    assert imgs[0].src == f"/app/thumb/{expected[0]}.png"
    conf0 = float(df["source_conf"].iloc[expected[0]])
    assert f"{conf0:.0%}" in texts(listing)


def test_cell_list_caps_and_empty_and_hint(tiny_cache, monkeypatch):
    counts = conf_data.confusion_counts(tiny_cache, "target", "target", "all")
    i = int(np.argmax(np.diag(counts)))
    monkeypatch.setattr(conf_markup, "MAX_LISTED", 3)
    _, listing = conf_markup.cell_list(tiny_cache, "target", "target", "all", [i, i], PREFIX)
    assert len(_ids_of_type(listing, conf_layout.THUMB)) == 3
    assert f"and {counts[i, i] - 3} more" in texts(listing)
    empty = np.argwhere(counts == 0)
    if len(empty):
        t, p = (int(v) for v in empty[0])
        _, listing = conf_markup.cell_list(tiny_cache, "target", "target", "all", [t, p], PREFIX)
        assert "empty" in texts(listing) and not _ids_of_type(listing, conf_layout.THUMB)
    caption, listing = conf_markup.cell_list(tiny_cache, "target", "target", "all", None, PREFIX)
    assert caption == "" and conf_layout.LIST_HINT in texts(listing)
    assert cb_conf.parse_cell({"points": [{"x": 99, "y": 0}]}, len(tiny_cache.classes)) is None
    assert cb_conf.parse_cell(None, 10) is None


def test_thumbnail_click_sets_focus_but_a_redraw_does_not():
    assert cb_conf.thumb_focus({"type": conf_layout.THUMB, "index": 17}, 1) == 17
    assert cb_conf.thumb_focus({"type": conf_layout.THUMB, "index": 17}, 0) is NO
    assert cb_conf.thumb_focus(None, None) is NO
    assert cb_query.clicked_neighbour({"type": query_layout.NEIGHBOUR, "index": 4}, 2) == 4
    assert cb_query.clicked_neighbour({"type": conf_layout.THUMB, "index": 4}, 2) is NO


# --- nearest neighbours ---------------------------------------------------------------

def _brute_neighbours(emb: np.ndarray, q: int, allowed: np.ndarray, k: int = 5) -> tuple[list[int], np.ndarray]:
    """``(ids, similarity of every instance to q)`` in float64, one pair at a time."""
    e = emb.astype(np.float64)
    norms = np.linalg.norm(e, axis=1)
    sims = np.array([e[i] @ e[q] / (norms[i] * norms[q]) if norms[i] and norms[q] else 0.0 for i in range(len(e))])
    cands = [i for i in range(len(e)) if allowed[i] and i != q]
    cands.sort(key=lambda i: (-sims[i], i))
    return cands[:k], sims


@pytest.mark.parametrize("scope", ["all", "same", "other"])
def test_neighbours_equal_brute_force_cosine(tiny_cache, scope):
    dom = tiny_cache.instances["domain"].to_numpy()
    n = len(dom)
    for model in ("source", "target"):
        emb = np.asarray(tiny_cache.embedding(model))
        assert emb.shape[0] == n
        for q in (0, n // 2, n - 1):
            allowed = {"all": np.ones(n, bool), "same": dom == dom[q], "other": dom != dom[q]}[scope]
            got = query_data.query(tiny_cache, model, q, scope)
            want_ids, sims = _brute_neighbours(emb, q, allowed)
            np.testing.assert_allclose(got.similarity, sims[want_ids], atol=1e-5)
            # the same ids, except where two candidates tie within float32 rounding
            for g, w in zip(got.ids.tolist(), want_ids):
                assert g == w or abs(sims[g] - sims[w]) < 1e-5, (model, q, got.ids, want_ids)
            assert q not in got.ids.tolist() and len(got.ids) == 5
            assert all(allowed[i] for i in got.ids)


def test_nearest_handles_zero_rows_ties_and_tiny_scopes():
    x = np.array([[1, 0], [0, 0], [2, 0], [0, 1], [1, 1]], dtype=np.float32)
    unit = query_data.unit_rows(x)
    assert np.all(unit[1] == 0)  # a zero vector stays zero: similarity 0, no NaN
    got = query_data.nearest(unit, 0, k=3)
    assert got.ids.tolist() == [2, 4, 1]  # 1.0, 0.707, then the zero row (0) before 3 (0) by id
    mask = np.array([True, False, False, False, False])
    assert len(query_data.nearest(unit, 0, mask).ids) == 0  # only the query itself in scope


# --- image query ----------------------------------------------------------------------

@pytest.mark.parametrize("value", [None, "", 10 ** 6, -3, 2.5, "abc", True])
def test_invalid_typed_ids_give_a_one_line_message(tiny_cache, value):
    n = len(tiny_cache.instances)
    focus, message = cb_query.typed_focus(value, 3, n)
    assert focus is NO
    text = texts(message)
    assert text and "\n" not in text and "Traceback" not in text
    assert f"{n - 1}" in text


def test_typed_id_becomes_the_focus_once(tiny_cache):
    n = len(tiny_cache.instances)
    assert cb_query.typed_focus(7, None, n) == (7, "")
    assert cb_query.typed_focus(7.0, 3, n) == (7, "")
    assert cb_query.typed_focus("7", 3, n) == (7, "")
    assert cb_query.typed_focus(7, 7, n) == (NO, "")  # already the focus: no write, no loop


def test_render_follows_focus_and_states_the_default(tiny_cache):
    df = tiny_cache.instances
    tgt = df[df["domain"] == "target"]
    default = int(tgt["id"].iloc[int(np.argmax(tgt["target_loss"].to_numpy()))])
    out = cb_query.render(tiny_cache, None, "all", None, PREFIX)
    box, message, info = out[0], out[1], out[2]
    assert box is NO and "highest target-model loss" in texts(message) and f"#{default}" in texts(info)
    out = cb_query.render(tiny_cache, 5, "all", None, PREFIX)
    assert out[0] == 5 and out[1] == "" and "#5" in texts(out[2])
    assert cb_query.render(tiny_cache, 5, "all", 5, PREFIX)[0] is NO  # the box already shows it
    assert cb_query.render(tiny_cache, 10 ** 6, "all", None, PREFIX)[0] is NO  # a stale focus: the default


def test_query_view_waveforms_and_neighbours(tiny_cache):
    q = 3
    view = query_view(tiny_cache, q, "other", PREFIX)
    dom = tiny_cache.instances["domain"].to_numpy()
    for model in ("source", "target"):
        emb = np.asarray(tiny_cache.embedding(model))
        fig = view[f"wave_{model}"]
        query_trace = traces(fig, "query")[0]
        np.testing.assert_allclose(query_trace.y, emb[q], rtol=1e-6)
        np.testing.assert_array_equal(query_trace.x, np.arange(emb.shape[1]))
        found = query_data.query(tiny_cache, model, q, "other")
        nb_traces = traces(fig, "neighbour")
        assert [t.meta["id"] for t in nb_traces] == found.ids.tolist()
        for t in nb_traces:
            np.testing.assert_allclose(t.y, emb[t.meta["id"]], rtol=1e-6)
        cards = _ids_of_type(view[f"nbrs_{model}"], query_layout.NEIGHBOUR)
        assert cards == found.ids.tolist() and all(dom[i] != dom[q] for i in cards)
        text = texts(view[f"nbrs_{model}"])
        assert f"cos {found.similarity[0]:.2f}" in text
    # the summary counts shared neighbours and each model's neighbours by domain
    s_ids = set(query_data.query(tiny_cache, "source", q, "other").ids.tolist())
    t_ids = set(query_data.query(tiny_cache, "target", q, "other").ids.tolist())
    summary = texts(view["summary"])
    assert f"{len(s_ids & t_ids)} of 5 neighbours shared" in summary
    other = "target" if dom[q] == "source" else "source"
    assert f"5 {other}" in summary


def test_waveform_builder():
    fig = waveform_figure(np.array([0.0, 1.0, 2.0]), [(4, np.array([1.0, 1.0, 1.0]), "target")])
    assert [t.meta["role"] for t in fig.data] == ["neighbour", "query"]
    assert list(fig.data[1].y) == [0.0, 1.0, 2.0] and fig.data[0].line.color == "#1f77b4"
    assert is_empty_figure(waveform_figure(np.array([]), []))


def test_missing_embeddings_give_a_message(tiny_cache, monkeypatch):
    from transferviz.errors import TransferVizError

    def missing(which):
        raise TransferVizError("no embedding")

    monkeypatch.setattr(tiny_cache, "embedding", missing)
    view = query_view(tiny_cache, 0, "all", PREFIX)
    assert "no embeddings" in texts(view["info"]) and is_empty_figure(view["wave_source"])


# --- wiring ---------------------------------------------------------------------------

def test_focus_writers_are_duplicates_without_initial_call(tiny_app):
    writers = [cb for cb in tiny_app._callback_list if f"{ids.FOCUS}.data@" in cb["output"]]
    mine = [cb for cb in writers if any(conf_layout.THUMB in json.dumps(i) or query_layout.INPUT in json.dumps(i)
                                        or query_layout.NEIGHBOUR in json.dumps(i) for i in cb["inputs"])]
    assert len(mine) == 3 and all(cb["prevent_initial_call"] for cb in mine)


def test_render_callback_through_dash(tiny_app):
    outputs = [{"id": query_layout.INPUT, "property": "value"}, {"id": query_layout.MESSAGE, "property": "children"},
               {"id": query_layout.QUERY_INFO, "property": "children"},
               *({"id": query_layout.head_id(m), "property": "children"} for m in query_layout.MODELS),
               *({"id": query_layout.wave_id(m), "property": "figure"} for m in query_layout.MODELS),
               *({"id": query_layout.neighbours_id(m), "property": "children"} for m in query_layout.MODELS),
               {"id": query_layout.SUMMARY, "property": "children"}]
    output = "..." .join(f"{o['id']}.{o['property']}" for o in outputs)
    inputs = [{"id": ids.FOCUS, "property": "data", "value": 2},
              {"id": query_layout.SCOPE, "property": "value", "value": "same"}]
    state = [{"id": query_layout.INPUT, "property": "value", "value": None}]
    answer = dispatch(tiny_app, f"..{output}..", outputs, inputs, [f"{ids.FOCUS}.data"], state)
    assert "response" in answer  # a 200 with the outputs, not a 204
    resp = answer["response"]
    assert resp[query_layout.INPUT]["value"] == 2
    wave = resp[query_layout.wave_id("target")]["figure"]
    assert len(wave["data"]) == 6
