"""Issue 11 item 5 (dashboard): the views on real networks.

Layer pairs without weights (a ResNet's residual pairs) in the network relation view; short
layer tags (``L3``) with the full module path on hover wherever layers are named (sixteen
layers, paths such as ``features.0.block.1.0``, 64 to 2048 neurons); a network figure that
scrolls rather than shrinks; feature visualizations at fixed display sizes whatever their
pixel size (224 px).

The caches are the tiny test cache seen through small ``Cache`` subclasses: one whose
``layer_links()`` reports a pair unlinked (the real accessors then have no weights for it),
one with sixteen long-named layers, one whose feature visualizations are 224 px PNGs.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from dashboard.lookups import featvis_px, layer_tag, layer_title
from dashboard.theme import NETWORK_CONFIG
from dashboard.views.features import markup as fm
from dashboard.views.features import ranking_grid as rg
from dashboard.views.models_data.figures import weight_change_chart
from dashboard.views.models_data.markup import models_table
from dashboard.views.network import data as nd
from dashboard.views.network import figures as nf
from dashboard.views.network import markup as nm
from dashboard.views.neuron_change.data import ALL
from dashboard.views.neuron_change.markup import IMAGE_PX as CHANGE_PX
from dashboard.views.neuron_change.markup import change_list
from dashboard.views.timeline.figures import drift_heatmap
from layouts import features as features_layout
from layouts import network as network_layout
from layouts import neuron_change as change_layout
from tests.components import of_type, texts, traces, walk
from tests.dashboard.network_fixtures import layer_block_from_similarity, model_weights_from_important_weights
from transferviz.cache import Cache

REPO = Path(__file__).resolve().parents[2]
#: the roles of everything the figure draws for a pair's weights
WEIGHT_ROLES = ("weights", "correspondence", "weight-boxes", "weight-box-lines", "weight-box-hover",
                "pie-with-corr", "pie-no-corr", "pie-hover", "weight-hist")


# --------------------------------------------------------------------------------------
# caches
# --------------------------------------------------------------------------------------
class UnlinkedCache(Cache):
    """The tiny cache with its second pair (L2 -> L3) joined through an addition, as a ResNet's
    blocks are: ``layer_links()`` says so, and the real accessors then hold no weights for it."""

    reason = "joined through a residual addition"  # as the library words it (tests/core/test_graph_build.py)

    @property
    def unlinked(self) -> tuple[str, str]:
        return self.layers[1], self.layers[2]

    def layer_links(self) -> pd.DataFrame:
        df = super().layer_links().copy()
        a, b = self.unlinked
        hit = (df["from_layer"] == a) & (df["to_layer"] == b)
        df.loc[hit, "linked"] = False
        df.loc[hit, "reason"] = self.reason
        if "weights" in df.columns:
            df["weights"] = df["weights"].astype(object)
            df.loc[hit, "weights"] = None
        return df


#: Sixteen analysed layers of an EfficientNet-like model: long module paths, 64 to 2048 neurons.
LONG_LAYERS = [f"features.{i // 3}.block.{i % 3}.0" for i in range(12)] + ["layer3.1", "layer4.0", "layer4.1",
                                                                           "classifier.1"]
LONG_SIZES = [64, 64, 96, 128, 128, 192, 256, 256, 384, 512, 512, 768, 1024, 1024, 2048, 2048]


class SixteenLayerCache(Cache):
    """The tiny cache's metadata with sixteen long-named layers (for what only names layers)."""

    @property
    def layer_info(self) -> dict:
        return {"layers": list(LONG_LAYERS), "embedding_layer": "classifier.1",
                "detail": [{"name": n, "number": i + 1, "type": "Conv2d" if i < 15 else "Linear", "neurons": k,
                            "output_shape": [k, 7, 7], "params": k * 9, "weight_change": 0.01 * (i + 1)}
                           for i, (n, k) in enumerate(zip(LONG_LAYERS, LONG_SIZES))]}


def _png(px: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (px, px), (120, 30, 200)).save(buf, format="PNG")
    return buf.getvalue()


class BigFeatvisCache(Cache):
    """The tiny cache whose feature visualizations are 224 px PNGs (a ResNet's input size)."""

    png = _png(224)

    def featvis(self, which, layer, neuron):  # type: ignore[override]
        return self.png if int(neuron) in self.featvis_neurons(which, layer) else None


@pytest.fixture(scope="module")
def unlinked(tiny_cache) -> UnlinkedCache:
    return UnlinkedCache(tiny_cache.root, tiny_cache.manifest)


@pytest.fixture(scope="module")
def sixteen(tiny_cache) -> SixteenLayerCache:
    return SixteenLayerCache(tiny_cache.root, tiny_cache.manifest)


@pytest.fixture(scope="module")
def big_featvis(tiny_cache) -> BigFeatvisCache:
    return BigFeatvisCache(tiny_cache.root, tiny_cache.manifest)


def _figure_class(cache: Cache) -> int:
    """A class with important neurons in every layer (so every matrix is drawn)."""
    for c in range(len(cache.classes)):
        if all(len(nd.class_important(cache, m, layer, c)) for m in ("source", "target") for layer in cache.layers):
            return c
    raise AssertionError("no class with important neurons everywhere")


def _annotation_texts(fig) -> list[str]:
    return [a.text or "" for a in fig.layout.annotations]


# --------------------------------------------------------------------------------------
# unlinked pairs in the network relation view
# --------------------------------------------------------------------------------------
def test_unlinked_pair_has_no_weights_in_the_cache(unlinked):
    a, b = unlinked.unlinked
    assert nd.pair_link(unlinked, a, b) == (False, "joined through a residual addition")
    assert nd.pair_link(unlinked, *unlinked.layers[:2]) == (True, "")
    assert unlinked.weight_block("target", a, b, 0) is None  # what the view reads for a pair
    pair = nd.pair_block(unlinked, 0, a, b)
    assert not pair.linked and pair.target is None and pair.source is None and not pair.has_weights


def test_unlinked_pair_draws_both_similarity_matrices_and_says_why(unlinked):
    L = unlinked.layers
    a, b = unlinked.unlinked
    c = _figure_class(unlinked)
    fig = nf.network_figure(unlinked, c, [1, 3])
    # the three similarity matrices along the diagonal, the unlinked pair's two among them
    assert [m["layer"] for m in fig.layout.meta["matrices"]] == L[:3]
    assert {t.meta["layer"] for t in traces(fig, "similarity")} == set(L[:3])
    # the linked pair L1 -> L2 keeps its weights; the unlinked L2 -> L3 has no weight trace at all
    drawn = {(t.meta["layer_from"], t.meta["layer_to"]) for role in WEIGHT_ROLES for t in traces(fig, role)}
    assert (L[0], L[1]) in drawn and (a, b) not in drawn
    assert {t.meta["model"] for t in traces(fig, "weights", layer_from=L[0])} == {"source", "target"}
    # no weight-block frames, titles or "not in the cache" notes for it: one line with the reason instead
    notes = _annotation_texts(fig)
    assert not [t for t in notes if "weights L2→L3" in t and "no weights" not in t]
    assert not [t for t in notes if "not in the cache" in t]
    assert sum("weights L1→L2" in t for t in notes) == 2  # the linked pair: source and target titles
    line = [t for t in notes if "no weights L2→L3" in t]
    assert len(line) == 1 and f"{a} -> {b}: joined through a residual addition" in line[0]
    assert "<br>" not in line[0]  # one line
    assert fig.layout.meta["unlinked"] == [{"from": a, "to": b, "reason": "joined through a residual addition"}]
    tinted = [s for s in fig.layout.shapes if s.fillcolor and s.layer == "below" and s.line.width == 1]
    assert len(tinted) == 2  # the two weight blocks of L1 -> L2 only


def test_only_an_unlinked_pair_has_no_weight_legend_or_colour_bar(unlinked):
    c = _figure_class(unlinked)
    fig = nf.network_figure(unlinked, c, [2, 3])
    assert len(traces(fig, "similarity")) == 2
    assert not [t for role in WEIGHT_ROLES for t in traces(fig, role)]
    keys = [t.name for t in traces(fig, "legend-key")]
    assert keys == ["source neuron / model", "target neuron / model"]  # no weight glyphs to explain
    assert not [t for t in fig.data if getattr(t, "coloraxis", None) == "coloraxis2"]


def test_unlinked_message_fits_in_the_figure():
    """A long reason widens the figure (a larger, scrolling figure) rather than running off it."""
    rng = np.random.default_rng(0)
    blocks = [layer_block_from_similarity(name, i + 1, rng.random((8, 8)), [0, 1], [2, 3])
              for i, name in enumerate(("features.0.block.1.0", "features.0.block.2.0"))]
    reason = "features.0.block.1.0 -> features.0.block.2.0: joined through a squeeze-and-excitation product"
    # a reason that names the pair already is shown as it is (not "a -> b: a -> b: ...")
    pair = nd.PairBlock(blocks[0].name, blocks[1].name, linked=False, reason=reason)
    fig = nf.relation_matrices(blocks, [pair])
    assert sum(t.count(" -> ") for t in _annotation_texts(fig)) == 1
    assert not [t for role in WEIGHT_ROLES for t in traces(fig, role)]
    note = next(a for a in fig.layout.annotations if "no weights" in (a.text or ""))
    assert reason in note.text and "<br>" not in note.text and reason in note.hovertext
    # the line's estimated end lies inside the x range: the figure grew to hold it
    cell_px = fig.layout.meta["cell_px"]
    end = note.x + len(re.sub("<[^>]+>", "", note.text)) * nf._CHAR_EM * note.font.size / cell_px
    assert end <= fig.layout.xaxis.range[1]
    linked = nf.relation_matrices(blocks, [nd.PairBlock(blocks[0].name, blocks[1].name)])
    assert fig.layout.width > linked.layout.width


def test_linked_pairs_are_drawn_as_before():
    """A pair that the cache links (the default) still gets its weight blocks."""
    rng = np.random.default_rng(1)
    blocks = [layer_block_from_similarity(f"l{i}", i + 1, rng.random((10, 10)), [0, 1, 2], [3, 4, 5])
              for i in range(2)]
    mw = {m: model_weights_from_important_weights(m, [0, 1], [3, 4], [0.5, 0.2], [0, 1, 2] if m == "source"
                                                  else [3, 4, 5], [0, 1, 2] if m == "source" else [3, 4, 5])
          for m in ("source", "target")}
    fig = nf.relation_matrices(blocks, [nd.PairBlock("l0", "l1", target=mw["target"], source=mw["source"])])
    assert traces(fig, "weights") and fig.layout.meta["unlinked"] == []
    assert not [t for t in _annotation_texts(fig) if "no weights" in t]


def test_stale_weight_click_on_an_unlinked_pair_explains(unlinked):
    a, b = unlinked.unlinked
    num = unlinked.layer_numbers
    # a weight square of this pair cannot be on the page; a stale click (another cache's figure) says why
    cd = [nf._KIND_WEIGHT, 1, num[a], num[b], 0, 0, -1]
    panel = nm.detail_panel(unlinked, {"points": [{"customdata": cd}]}, 0)
    assert panel.to_plotly_json()["props"].get("data-kind") == "no-weights"
    assert f"{a} -> {b}: joined through a residual addition" in texts(panel) and "no weights" in texts(panel)
    spans = [s for s in of_type(panel, "Span") if getattr(s, "title", None)]
    assert {s.children for s in spans} == {"L2", "L3"} and a in spans[0].title


def test_warm_skips_unlinked_pairs(tiny_cache):
    cache = UnlinkedCache(tiny_cache.root, tiny_cache.manifest)  # a fresh memo
    nd.warm(cache)
    a, b = cache.unlinked
    L = cache.layers
    assert ("network.boxes", L[0], L[1]) in cache._memo
    assert ("network.boxes", a, b) not in cache._memo
    assert ("network.important_weights", "target", a, b) not in cache._memo


# --------------------------------------------------------------------------------------
# short tags, full paths on hover
# --------------------------------------------------------------------------------------
def test_layer_tag_and_title(sixteen):
    assert [layer_tag(sixteen, x) for x in LONG_LAYERS] == [f"L{i}" for i in range(1, 17)]
    assert layer_title(sixteen, "features.0.block.1.0") == "L2 = features.0.block.1.0 (Conv2d, 64 neurons)"
    assert layer_title(sixteen, "classifier.1") == "L16 = classifier.1 (Linear, 2048 neurons)"
    assert layer_tag(sixteen, "fc") == "fc"  # not analysed: its name


def test_network_layer_slider_short_marks_full_paths_on_hover(sixteen):
    tree = network_layout.layout(sixteen)
    slider = next(c for c in walk(tree) if getattr(c, "id", None) == network_layout.LAYERS)
    marks = slider.marks
    assert [marks[i]["label"] for i in range(1, 17)] == [f"L{i}" for i in range(1, 17)]
    assert all(len(m["label"]) <= 3 for m in marks.values())
    box = next(c for c in walk(tree) if slider in (getattr(c, "children", None),))
    # hover: one line per layer with its full path; the handles' tooltip names the path too
    lines = box.title.split("\n")
    assert len(lines) == 16 and all(path in line for path, line in zip(LONG_LAYERS, lines))
    assert json.loads(box.to_plotly_json()["props"]["data-layer-names"]) == LONG_LAYERS
    assert slider.tooltip["transform"] == "tvLayerName"
    # sixteen marks at 2.4rem would run over the next card: the group and the slider shrink to the card
    group = next(c for c in walk(tree) if "tv-network-layers" in (getattr(c, "className", "") or ""))
    assert group.style["minWidth"] == 0 and group.style["maxWidth"] == "100%" and group.style["flex"] == "0 1 auto"
    assert box.style["minWidth"] == 0 and slider.allow_direct_input is False
    js = (REPO / "dashboard" / "assets" / "transferviz.js").read_text()
    assert "dccFunctions.tvLayerName" in js and "data-layer-names" in js


def test_neuron_change_dropdown_short_labels(sixteen):
    options = change_layout.layer_options(sixteen)
    layers = options[1:]
    assert [o["label"] for o in layers] == [f"L{i}" for i in range(1, 17)]
    assert [o["value"] for o in layers] == LONG_LAYERS
    for o, path in zip(layers, LONG_LAYERS):
        assert path in o["title"] and path in o["search"]  # hover and search find the full path


def test_feature_ranking_label_fits_and_names_the_path(sixteen):
    width = fm.label_px(sixteen)
    assert width == round(7.5 * 9) + 6 > fm.COL_LABEL_PX  # "L16 #2047": nine characters and the padding
    row = {"label": "L16 #2047", "layer": "classifier.1", "neuron": 2047, "discriminability": 0.5}
    cells = fm.grid_row(row, "target", 0, lambda p: p, title=layer_title(sixteen, "classifier.1"))
    assert cells["label"] == "L16 #2047" and cells["value"] == "classifier.1:2047"
    assert "classifier.1" in cells["title"] and "2047" in cells["title"]  # the label's hover names the path
    grid = features_layout.layout(sixteen)
    (ranking,) = [g for g in of_type(grid, "AgGrid") if g.id == features_layout.RANKING]
    label = next(c for c in ranking.columnDefs if c["field"] == "label")
    assert label["width"] == width and label["tooltipField"] == "title"


def test_feature_ranking_label_width_is_unchanged_for_small_caches(tiny_cache):
    # seven layers of at most a few hundred neurons ("L7 #255"): the label column keeps its width
    assert fm.label_px(tiny_cache) == fm.COL_LABEL_PX


def test_drift_rows_short_tags_and_path_hover():
    drift = pd.DataFrame([{"layer": x, "epoch": e, "mean_cos": 1 - 0.01 * e * (i + 1) / 16, "min_cos": 0.9}
                          for i, x in enumerate(LONG_LAYERS) for e in range(4)])
    fig = drift_heatmap(drift, LONG_LAYERS, [0, 1, 2, 3], 1)
    t = fig.data[0]
    assert list(t.y) == [f"L{i}" for i in range(1, 17)]
    assert [row[0][2] for row in t.customdata] == LONG_LAYERS and "%{customdata[2]}" in t.hovertemplate
    assert fig.layout.margin.l <= 60  # no room wasted on long tick labels
    assert t.texttemplate is None  # 16 rows in ~160 px: values would overprint
    # a layer missing from the table keeps its own number
    fig2 = drift_heatmap(drift[drift.layer != LONG_LAYERS[0]], LONG_LAYERS, [0, 1, 2, 3], 1)
    assert list(fig2.data[0].y)[:2] == ["L2", "L3"]


def test_models_table_and_weight_change_ticks():
    rows = [{"name": f"layer{i // 10}.{i % 10}.conv", "type": "Conv2d", "params": 100, "output_shape": [8, 4, 4],
             "analysed": i % 5 == 0, "number": i // 5 + 1 if i % 5 == 0 else None, "weight_change": 0.01 * i}
            for i in range(40)]
    table = models_table(rows, None)
    tagged = [td for td in of_type(table, "Td") if td.children == "L3"]
    assert len(tagged) == 1 and tagged[0].title == "L3 = layer1.0.conv"
    frame = pd.DataFrame({"label": [f"L{r['number']}" if r["analysed"] else r["name"] for r in rows],
                          "name": [r["name"] for r in rows], "type": "Conv2d",
                          "analysed": [r["analysed"] for r in rows],
                          "weight_change": [r["weight_change"] for r in rows]})
    fig = weight_change_chart(frame)
    ticks = list(fig.layout.xaxis.ticktext)
    assert [x for x in ticks if x] == [f"L{i}" for i in range(1, 9)]  # forty long paths would overprint
    assert list(fig.data[0].x) == frame["name"].tolist()  # every bar still hovers its module
    few = weight_change_chart(frame.iloc[:6])
    assert list(few.layout.xaxis.ticktext) == ["L1"] + frame["name"].tolist()[1:5] + ["L2"]


def test_detail_panels_name_layers_by_tag_with_the_path_on_hover(tiny_cache):
    c = _figure_class(tiny_cache)
    L = tiny_cache.layers
    n = int(nd.class_important(tiny_cache, "target", L[1], c)[0])
    panel = nm.neuron_panel(nd.neuron_detail(tiny_cache, c, "target", L[1], n), "x", tiny_cache.domains)
    tags = [s for s in of_type(panel, "Span") if s.children == f"L2 #{n}"]
    assert tags and tags[0].title == layer_title(tiny_cache, L[1])
    path = [s for s in of_type(panel, "Span") if "tv-layer-path" in (getattr(s, "className", "") or "")]
    assert path and path[0].title == layer_title(tiny_cache, L[1])


# --------------------------------------------------------------------------------------
# the network figure scrolls rather than shrinks
# --------------------------------------------------------------------------------------
def _large_case(sizes=(2048, 2048, 1024, 512), k_frac=0.1):
    """Four layers with ~10 % important neurons of up to 2048 (205 in a matrix), as a ResNet's last stages."""
    rng = np.random.default_rng(2)
    blocks = []
    for i, n in enumerate(sizes):
        k = int(np.ceil(n * k_frac))
        blocks.append(nd.LayerBlock(f"layer{i + 3}.{i % 2}", i + 1, rng.choice(n, k, replace=False),
                                    rng.choice(n, k, replace=False), rng.random((k, k)), n_source=n, n_target=n))
    pairs = [nd.PairBlock(a.name, b.name, linked=False, reason=f"{a.name} -> {b.name}: joined through a residual "
                          "addition") for a, b in zip(blocks, blocks[1:])]
    return blocks, pairs


def test_large_network_figure_keeps_its_cells_and_its_box_scrolls(sixteen):
    blocks, pairs = _large_case()
    fig = nf.relation_matrices(blocks, pairs)
    cell = fig.layout.meta["cell_px"]
    # ~600 cells across and down: far larger than any card or screen; cells keep their pixel size
    assert fig.layout.width > 8000 and fig.layout.height > 8000
    xr, yr = fig.layout.xaxis.range, fig.layout.yaxis.range
    plot_w = fig.layout.width - fig.layout.margin.l - fig.layout.margin.r
    plot_h = fig.layout.height - fig.layout.margin.t - fig.layout.margin.b
    assert plot_w / (xr[1] - xr[0]) == pytest.approx(cell, rel=0.01)
    assert plot_h / abs(yr[1] - yr[0]) == pytest.approx(cell, rel=0.01)
    # the neuron indices (four digits) get a label band wide enough for them
    assert nf._label_band(blocks) * cell >= 4 * 0.6 * 9
    # the card: the graph takes the figure's pixel size and its box scrolls both ways
    tree = network_layout.layout(sixteen)
    box = next(c for c in walk(tree) if getattr(c, "id", None) == network_layout.SCROLL)
    graph = next(c for c in walk(tree) if getattr(c, "id", None) == network_layout.GRAPH)
    assert "tv-scroll" in box.className.split() and box.style == network_layout.SCROLL_STYLE
    assert box.style["maxHeight"].endswith("vh") and box.style["minWidth"] == 0
    assert graph.style == {"display": "inline-block"} and "width" not in graph.style
    assert NETWORK_CONFIG.get("responsive") is False  # plotly must not fit the figure to its box
    css = (REPO / "dashboard" / "assets" / "transferviz.css").read_text()
    assert re.search(r"\.tv-scroll\s*\{\s*overflow:\s*auto;", css)


# --------------------------------------------------------------------------------------
# feature visualizations at fixed display sizes
# --------------------------------------------------------------------------------------
def _featvis_imgs(tree) -> list:
    return [i for i in of_type(tree, "Img") if "tv-featvis" in (getattr(i, "className", "") or "")]


def _fixed(img, px: int) -> None:
    assert img.width == px and img.height == px
    for key in ("width", "height", "minWidth", "maxWidth"):
        assert img.style[key] == f"{px}px", key
    assert img.style["flex"] == "none"


def test_featvis_px_reads_one_header(tiny_cache, big_featvis):
    assert featvis_px(big_featvis) == 224
    assert featvis_px(tiny_cache) in (None, 28, 56)  # the tiny build's own size


def test_224px_feature_visualizations_keep_fixed_display_sizes(big_featvis):
    c = _figure_class(big_featvis)
    options, _, _ = fm.ranking(big_featvis, c, "target", "most")
    # the ranking grid's pictures are markdown images: their display size comes from the grid's stylesheet,
    # which fixes every "feature ..." image of the ranking grid at IMAGE_PX, smoothed (shrunk 8x here)
    imgs = [o["image"] for o in options if "/featvis/" in o["image"]]
    assert imgs, "the tiny cache has feature visualizations"
    assert all(i.startswith("![feature visualization](/featvis/target/") for i in imgs)
    css = (Path(__file__).parents[2] / "dashboard" / "assets" / "tv-grid.css").read_text()
    rule = css.split('.tv-ranking-grid .ag-cell img[alt^="feature"]', 1)[1].split("}", 1)[0]
    assert f"width: {rg.IMAGE_PX}px" in rule and f"height: {rg.IMAGE_PX}px" in rule and "image-rendering: auto" in rule
    L = big_featvis.layers
    n = next(int(x) for x in nd.class_important(big_featvis, "target", L[1], c)
             if int(x) in big_featvis.featvis_neurons("target", L[1]))
    panel = nm.neuron_panel(nd.neuron_detail(big_featvis, c, "target", L[1], n), "x", big_featvis.domains)
    sizes = sorted({img.width for img in _featvis_imgs(panel)})
    assert sizes and max(sizes) == 96
    for img in _featvis_imgs(panel):
        _fixed(img, img.width)
        assert img.style["imageRendering"] == "auto"
    change = change_list(big_featvis, ALL, True)
    assert _featvis_imgs(change)
    for img in _featvis_imgs(change):
        _fixed(img, CHANGE_PX)


def test_small_feature_visualizations_stay_crisp(tiny_cache):
    px = featvis_px(tiny_cache)
    if px is None:
        pytest.skip("the tiny cache was built without feature visualizations")
    c = _figure_class(tiny_cache)
    L = tiny_cache.layers
    n = next(int(x) for x in nd.class_important(tiny_cache, "target", L[1], c)
             if int(x) in tiny_cache.featvis_neurons("target", L[1]))
    panel = nm.neuron_panel(nd.neuron_detail(tiny_cache, c, "target", L[1], n), "x", tiny_cache.domains)
    big = [img for img in _featvis_imgs(panel) if img.width == 96]
    assert big and big[0].style["imageRendering"] == "pixelated"  # 56 px shown at 96: enlarged, crisp


# --------------------------------------------------------------------------------------
# the feature ranking of sixteen layers stays a list the browser can build
# --------------------------------------------------------------------------------------
def test_ranking_lists_at_most_max_rows_and_keeps_checked_ones():
    rows = [{"layer": f"layer{i % 16}", "neuron": i, "label": f"L{i % 16 + 1} #{i}"} for i in range(500)]
    assert fm.listed_rows(rows, []) == rows[:fm.MAX_ROWS]
    late = "layer3:403"  # a link may check a neuron far down the list: it stays listed (and checked)
    shown = fm.listed_rows(rows, [late, "layer0:0"])
    assert len(shown) == fm.MAX_ROWS + 1 and shown[-1]["neuron"] == 403 and shown[:-1] == rows[:fm.MAX_ROWS]
    assert fm.listed_rows(rows[:10], []) == rows[:10]


def test_ranking_of_many_important_neurons_is_cut_with_a_note(tiny_cache, monkeypatch):
    c = _figure_class(tiny_cache)
    full, value, _ = fm.ranking(tiny_cache, c, "target", "most", shown=10**6)  # every row
    assert len(full) > 8, "the tiny cache ranks more than eight neurons"
    monkeypatch.setattr(fm, "MAX_ROWS", 8)
    options, value2, status = fm.ranking(tiny_cache, c, "target", "most")
    assert [o["value"] for o in options] == [o["value"] for o in full[:8]] and value2 == value
    assert f"{len(full)} important neurons (the 8 most discriminative listed)" in texts(status)
    late = full[-1]["value"]
    options, value3, _ = fm.ranking(tiny_cache, c, "target", "most", [late])
    assert value3 == [late] and options[-1]["value"] == late and len(options) == 9


def test_back_to_a_link_checking_a_neuron_below_the_cut_rebuilds_the_list(tiny_cache, monkeypatch):
    from dash import no_update

    from callbacks import features as cf
    from dashboard.urlstate import StateSpace

    c = _figure_class(tiny_cache)
    full = [o["value"] for o in fm.ranking(tiny_cache, c, "target", "most", shown=10**6)[0]]
    monkeypatch.setattr(fm, "MAX_ROWS", 8)
    space = StateSpace.from_cache(tiny_cache)
    top = fm.default_checked(tiny_cache, c, "target", "most")
    link = f"?class={tiny_cache.classes[c]}&model=target&order=most&neurons={full[-1]}"
    out = cf.feature_controls(tiny_cache, space, {"url"}, link, c, "target", "most", top)
    assert out[4] == [full[-1]] and out[3] is not no_update and out[3][-1]["value"] == full[-1]
    # checks within the listed rows: the list stays as it is
    link = f"?class={tiny_cache.classes[c]}&model=target&order=most&neurons={full[6]}"
    out = cf.feature_controls(tiny_cache, space, {"url"}, link, c, "target", "most", top)
    assert out[4] == [full[6]] and out[3] is no_update
