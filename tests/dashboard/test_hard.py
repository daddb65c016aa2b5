"""Hard examples (issue 6, items 1 and 6): loss maps (hidden layer vs raw pixels), brushing, focus, detail card."""

from __future__ import annotations

import dash
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from callbacks import hard_examples as cb
from dashboard.routes import thumb_src
from dashboard.views.hard_examples import data as hard_data
from dashboard.views.hard_examples import markup as hard_markup
from dashboard.views.hard_examples.figures import (
    FOCUS_TRACE,
    LOSS_FLOOR,
    TRACE_ORDER,
    loss_color,
    loss_map,
    loss_range,
)
from layouts import hard_examples as ly
from tests.components import of_type, texts, traces, walk
from tests.conftest import copy_cache

PREFIX = "/app/"


def _expected_colors(loss_all: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Recomputed here, not with the module's helpers: log10 of the loss clipped to [0.01, q99 (>= 0.1)]."""
    hi = max(float(np.quantile(loss_all, 0.99)), 0.1)
    return np.log10(np.clip(loss_all[rows], 0.01, hi))


# --- figure builder on synthetic data --------------------------------------------------------

def _frame() -> pd.DataFrame:
    return pd.DataFrame({"id": [0, 1, 2, 3, 4], "x": [0.0, 1.0, 2.0, 3.0, 4.0], "y": [5.0, 6.0, 7.0, 8.0, 9.0],
                         "domain": ["source", "target", "source", "target", "target"],
                         "loss": [0.0, 0.5, 100.0, 0.001, 2.0]})


def test_loss_map_colours_symbols_and_trace_structure():
    df = _frame()
    fig = loss_map(df, color_range=(0.01, 10.0))
    src, tgt = traces(fig, "instances")
    assert src.marker.symbol == "x" and tgt.marker.symbol == "circle"
    assert list(src.customdata) == [0, 2] and list(tgt.customdata) == [1, 3, 4]
    np.testing.assert_allclose(src.marker.color, [np.log10(0.01), np.log10(10.0)], rtol=1e-6)  # clipped both ends
    np.testing.assert_allclose(tgt.marker.color, np.log10([0.5, 0.01, 2.0]), rtol=1e-6)
    assert fig.layout.coloraxis.cmin == pytest.approx(-2) and fig.layout.coloraxis.cmax == pytest.approx(1)
    # light (low loss) to dark (high loss)
    scale = fig.layout.coloraxis.colorscale
    lum = [sum(int(c[i:i + 2], 16) for i in (1, 3, 5)) for _, c in scale]
    assert lum == sorted(lum, reverse=True)
    assert fig.data[FOCUS_TRACE].meta["role"] == "focus" and len(fig.data[FOCUS_TRACE].x) == 0
    assert fig.layout.annotations[0].visible is False


def test_loss_map_focus_brush_and_empty():
    df = _frame()
    fig = loss_map(df, color_range=(0.01, 10.0), focus={"id": 3, "x": 3.0, "y": 8.0}, brushed=[2, 3, 99])
    ring = fig.data[FOCUS_TRACE]
    assert (list(ring.x), list(ring.y)) == ([3.0], [8.0]) and ring.marker.symbol == "circle-open"
    assert fig.layout.annotations[0].text == "#3" and fig.layout.annotations[0].visible
    src, tgt = traces(fig, "instances")
    assert [src.customdata[i] for i in src.selectedpoints] == [2]
    assert [tgt.customdata[i] for i in tgt.selectedpoints] == [3]
    # no brush: no selectedpoints at all (plotly keeps a user's own lasso)
    assert all(t.selectedpoints is None for t in traces(loss_map(df, color_range=(0.01, 10.0)), "instances"))
    empty = loss_map(df.iloc[:0], color_range=(0.01, 10.0), empty_message="nothing here",
                     focus={"id": 3, "x": 3.0, "y": 8.0})
    assert empty.layout.meta["empty"] and "nothing here" in [a.text for a in empty.layout.annotations]
    assert len(empty.data) == len(TRACE_ORDER) and list(empty.data[FOCUS_TRACE].x) == [3.0]  # same structure: patchable


def test_loss_range_and_color():
    losses = np.r_[np.zeros(98), 50.0, 1000.0]
    lo, hi = loss_range(losses)
    assert lo == LOSS_FLOOR and hi == pytest.approx(np.quantile(losses, 0.99))
    assert loss_range(np.zeros(10)) == (LOSS_FLOOR, LOSS_FLOOR * 10)  # a perfect model: the scale does not collapse
    np.testing.assert_allclose(loss_color(np.array([np.nan, -0.0, 1.0, 1e9]), 0.01, 100.0), [-2, -2, 0, 2])


# --- the maps on a cache ----------------------------------------------------------------------

def test_maps_colour_by_the_chosen_model_and_filter_rows(tiny_cache):
    df = tiny_cache.instances
    for model, domain, wrong in (("source", "both", []), ("target", "target", []), ("source", "source", ["wrong"])):
        hidden, pixels, summary = cb.update_maps(tiny_cache, model, domain, wrong, None, None)
        keep = np.ones(len(df), bool) if domain == "both" else (df["domain"] == domain).to_numpy()
        if wrong:
            keep = keep & (df[f"{model}_pred"] != df["label"]).to_numpy()
        loss = df[f"{model}_loss"].to_numpy(dtype=float)
        for fig, xy in ((hidden, np.asarray(tiny_cache.tsne())), (pixels, np.asarray(tiny_cache.pixel_tsne()))):
            shown = []
            for t in traces(fig, "instances"):
                ids = np.asarray(t.customdata, dtype=int)
                assert (df["domain"].to_numpy()[ids] == t.meta["domain"]).all()
                np.testing.assert_allclose(t.marker.color, _expected_colors(loss, ids), rtol=1e-5)
                np.testing.assert_allclose(t.x, xy[ids, 0], rtol=1e-5)
                np.testing.assert_allclose(t.y, xy[ids, 1], rtol=1e-5)
                shown += ids.tolist()
            assert sorted(shown) == np.flatnonzero(keep).tolist(), (model, domain, wrong)
        assert f"{int(keep.sum())} shown" in texts(summary)


def test_focus_ring_in_both_maps_and_patch(tiny_cache):
    fid = int(np.flatnonzero(tiny_cache.instances["domain"] == "target")[3])
    hidden, pixels, _ = cb.update_maps(tiny_cache, "target", "both", [], fid, None)
    for fig, xy in ((hidden, tiny_cache.tsne()), (pixels, tiny_cache.pixel_tsne())):
        ring = fig.data[FOCUS_TRACE]
        assert ring.meta["id"] == fid
        assert (ring.x[0], ring.y[0]) == pytest.approx((float(xy[fid, 0]), float(xy[fid, 1])))
    # a focus change patches only the ring and its label, at the same coordinates
    for patch, xy in zip(cb.focus_patches(tiny_cache, fid), (tiny_cache.tsne(), tiny_cache.pixel_tsne())):
        ops = {tuple(o["location"]): o["params"]["value"] for o in patch.to_plotly_json()["operations"]}
        ring = ops[("data", FOCUS_TRACE)]
        assert ring["x"] == pytest.approx([float(xy[fid, 0])]) and ring["y"] == pytest.approx([float(xy[fid, 1])])
        assert ops[("layout", "annotations", 0)]["text"] == f"#{fid}"
    # an unknown focus: no ring
    hidden, _, _ = cb.update_maps(tiny_cache, "target", "both", [], 10 ** 6, None)
    assert len(hidden.data[FOCUS_TRACE].x) == 0


def test_lasso_in_one_map_highlights_the_same_instances_in_the_other(tiny_cache):
    lassoed = [1, 5, 8, len(tiny_cache.instances) - 1]
    sel = {"points": [{"customdata": i, "curveNumber": 0, "pointIndex": 0} for i in lassoed],
           "lassoPoints": {"x": [0, 1, 1], "y": [0, 0, 1]}}
    brush = cb.brush_state(ly.PIXEL_MAP, None, sel, None)
    assert brush == {"source": "pixels", "ids": lassoed}
    hidden, pixels, summary = cb.update_maps(tiny_cache, "target", "both", [], None, brush)
    lit = [t.customdata[i] for t in traces(hidden, "instances") for i in t.selectedpoints]
    assert sorted(lit) == sorted(lassoed)
    # the lassoed map keeps the user's own lasso
    assert all(t.selectedpoints is None for t in traces(pixels, "instances"))
    assert f"{len(lassoed)} lassoed in the raw pixels map" in texts(summary)
    # the other way round, and under a filter only the visible ones light up
    brush = cb.brush_state(ly.HIDDEN_MAP, sel, None, None)
    hidden, pixels, _ = cb.update_maps(tiny_cache, "target", "target", [], None, brush)
    dom = tiny_cache.instances["domain"].to_numpy()
    lit = [t.customdata[i] for t in traces(pixels, "instances") for i in t.selectedpoints]
    assert sorted(lit) == sorted(i for i in lassoed if dom[i] == "target")
    # a redraw of the lassoed map only, on a new lasso
    assert cb.update_maps(tiny_cache, "target", "both", [], None, brush, skip="hidden")[0] is dash.no_update


def test_brush_is_cleared_only_by_its_own_map():
    mine = {"source": "hidden", "ids": [1, 2]}
    assert cb.brush_state(ly.HIDDEN_MAP, None, None, mine) is None
    assert cb.brush_state(ly.PIXEL_MAP, None, None, mine) is dash.no_update   # a redraw of the other map
    assert cb.brush_state(ly.HIDDEN_MAP, {"points": []}, None, mine) is None
    assert cb.brush_state(ly.HIDDEN_MAP, {"points": [], "lassoPoints": {"x": [0]}}, None, mine) == {
        "source": "hidden", "ids": []}  # a lasso around nothing highlights nothing
    assert cb.brush_state("elsewhere", None, None, mine) is dash.no_update
    assert hard_data.brushed_ids({"source": "bogus", "ids": [1]}) is None and hard_data.brushed_ids("x") is None


def test_click_sets_the_focus():
    assert cb.click_focus({"points": [{"customdata": 7, "x": 1, "y": 2}]}, 10) == 7
    assert cb.click_focus({"points": [{"customdata": [4]}]}, 10) == 4
    assert cb.click_focus({"points": [{"customdata": 12}]}, 10) is dash.no_update
    assert cb.click_focus({"points": [{"x": 1}]}, 10) is dash.no_update  # e.g. the ring: no instance
    assert cb.click_focus(None, 10) is dash.no_update


def test_detail_card_shows_both_models(tiny_cache):
    df = tiny_cache.instances
    wrong = np.flatnonzero((df["source_pred"] != df["label"]).to_numpy())
    fid = int(wrong[0]) if len(wrong) else 0
    card = hard_markup.detail_card(tiny_cache, fid, PREFIX)
    text = texts(card)
    r = df.iloc[fid]
    names = tiny_cache.classes
    assert f"#{fid}" in text and str(r["domain"]) in text and str(r["split"]) in text
    assert f"true label  {names[int(r['label'])]}" in text
    for m in ("source", "target"):
        assert f"{m} model" in text
        assert names[int(r[f"{m}_pred"])] in text
        assert f"{float(r[f'{m}_conf']):.0%}" in text and f"{float(r[f'{m}_loss']):.3g}" in text
    rows = [c for c in walk(card) if (getattr(c, "className", "") or "").startswith("hard-row-")]
    assert [c.className for c in rows] == ["hard-row-source", "hard-row-target"]
    src_row = texts(rows[0])
    source_wrong = int(r["source_pred"]) != int(r["label"])
    assert names[int(r["source_pred"])] in src_row and ("\u2717" in src_row) == source_wrong
    img = of_type(card, "Img")[0]
    assert img.src == thumb_src(PREFIX, fid)
    assert "not in this cache" in texts(hard_markup.detail_card(tiny_cache, 10 ** 6, PREFIX))
    assert "not in this cache" in texts(hard_markup.detail_card(tiny_cache, "abc", PREFIX))
    assert texts(hard_markup.detail_card(tiny_cache, None, PREFIX)) == ly.DETAIL_HINT


def test_cache_without_pixel_map_says_rebuild(tiny_cache, tmp_path):
    cache = copy_cache(tiny_cache, tmp_path / "old", "pixel_tsne.npy", "featvis", "thumbs")
    assert cache.pixel_tsne() is None
    hidden, pixels, _ = cb.update_maps(cache, "target", "both", [], 0, None)
    assert pixels.layout.meta["empty"] and "rebuild" in pixels.layout.meta["message"]
    assert len(traces(hidden, "instances")) == 2
    assert cb.focus_patches(cache, 0)[1] is dash.no_update


def test_layout_holds_the_view(tiny_cache):
    root = ly.layout(tiny_cache)
    found = {getattr(c, "id", None) for c in walk(root)}
    assert {ly.MODEL, ly.DOMAIN, ly.WRONG, ly.HIDDEN_MAP, ly.PIXEL_MAP, ly.BRUSH, ly.SUMMARY, ly.DETAIL} <= found


def test_maps_wait_for_their_tab_and_are_drawn_once(tiny_cache):
    from layouts import ids

    args = ("target", "both", [], None, None)
    # the page opens on another tab: nothing is sent, and the flag stays down
    assert cb.maps_update(tiny_cache, set(), ids.TAB_ANALYSIS, False, *args) == (dash.no_update,) * 4
    # a focus set from another tab before the maps were ever drawn: still nothing
    assert cb.maps_update(tiny_cache, {ids.FOCUS}, ids.TAB_TIMELINE, False, "target", "both", [], 3, None) \
        == (dash.no_update,) * 4
    # the tab opens: both maps and the flag, with the focus already ringed
    hidden, pixels, _, drawn = cb.maps_update(tiny_cache, {ids.TABS}, ids.TAB_DIAGNOSIS, False,
                                              "target", "both", [], 3, None)
    assert drawn is True and hidden is not dash.no_update and pixels is not dash.no_update
    ring = traces(hidden, "focus")
    assert ring and ring[0].meta["id"] == 3
    # later tab switches send nothing; a focus change patches the ring only
    assert cb.maps_update(tiny_cache, {ids.TABS}, ids.TAB_DIAGNOSIS, True, *args) == (dash.no_update,) * 4
    out = cb.maps_update(tiny_cache, {ids.FOCUS}, ids.TAB_DIAGNOSIS, True, "target", "both", [], 4, None)
    assert isinstance(out[0], dash.Patch) and out[2:] == (dash.no_update, dash.no_update)
    # a filter change redraws both maps
    out = cb.maps_update(tiny_cache, {ly.DOMAIN}, ids.TAB_DIAGNOSIS, True, "target", "source", [], None, None)
    assert all(isinstance(f, go.Figure) for f in out[:2]) and out[3] is dash.no_update
