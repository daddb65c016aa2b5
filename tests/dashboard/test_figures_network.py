"""Network relation figure (paper Figure 4): zig-zag placement, regions, clicks, empty states."""

from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest

from dashboard.theme import SOURCE_COLOR, TARGET_COLOR, is_empty_figure
from dashboard.views.network.data import LayerBlock, PairBlock
from dashboard.views.network.figures import kernel_heatmap, parse_click, relation_matrices
from tests.components import traces
from tests.dashboard.network_fixtures import (
    histogram_from_values,
    layer_block_from_similarity,
    layout_geometry,
    model_weights_from_important_weights,
    neuron_boxes_from_groups,
)


# --------------------------------------------------------------------------------------
# synthetic cache slices
# --------------------------------------------------------------------------------------
def make_case(sizes=(20, 30, 40), seed=0, k_frac=0.2):
    """Blocks and pairs for consecutive layers with known important neurons and weights."""
    rng = np.random.default_rng(seed)
    blocks, imps = [], []
    for li, n in enumerate(sizes):
        k = max(1, int(np.ceil(n * k_frac)))
        S = rng.random((n, n))
        si = rng.choice(n, k, replace=False)
        ti = rng.choice(n, k, replace=False)
        blocks.append(layer_block_from_similarity(f"features.{3 * li}", li + 1, S, si, ti, bins=8))
        imps.append({"source": si, "target": ti})
    pairs = []
    for li in range(len(sizes) - 1):
        n1, n2 = sizes[li], sizes[li + 1]
        mws = {}
        for model in ("source", "target"):
            i1, i2 = imps[li][model], imps[li + 1][model]
            # every important x important pair, plus some weights touching non-important neurons
            f = np.concatenate([np.repeat(i1, len(i2)), rng.integers(0, n1, 40)])
            t = np.concatenate([np.tile(i2, len(i1)), rng.integers(0, n2, 40)])
            ft = np.unique(np.stack([f, t], 1), axis=0)
            v = rng.random(len(ft))
            corr = (np.arange(len(ft)) % 3 == 0) if model == "target" else None
            mws[model] = model_weights_from_important_weights(model, ft[:, 0], ft[:, 1], v, i1, i2, corr, bins=6)
        pairs.append(PairBlock(blocks[li].name, blocks[li + 1].name, target=mws["target"], source=mws["source"]))
    return blocks, pairs


@pytest.fixture(scope="module")
def case():
    return make_case()


@pytest.fixture(scope="module")
def fig3(case):
    blocks, pairs = case
    return relation_matrices(blocks, pairs)


# --------------------------------------------------------------------------------------
# zig-zag placement
# --------------------------------------------------------------------------------------
def test_matrices_run_down_the_diagonal(fig3):
    mats = fig3.layout.meta["matrices"]
    assert len(mats) == 3
    for a, b in zip(mats, mats[1:]):
        # each matrix lies entirely to the lower right of the previous one (y grows downwards)
        assert b["x0"] > a["x0"] + a["width"]
        assert b["y0"] > a["y0"] + a["height"]
    # the y axis is reversed so that "down" on screen is increasing y
    r = fig3.layout.yaxis.range
    assert r[0] > r[1]


def test_axes_swap_between_consecutive_matrices(fig3):
    mats = fig3.layout.meta["matrices"]
    # paper Figure 4 A: matrix 1 has target rows / source columns, then they alternate
    assert [m["row_domain"] for m in mats] == ["target", "source", "target"]
    assert [m["col_domain"] for m in mats] == ["source", "target", "source"]


def test_first_rows_option_flips_the_zigzag(case):
    blocks, pairs = case
    fig = relation_matrices(blocks, pairs, first_rows="source")
    assert [m["row_domain"] for m in fig.layout.meta["matrices"]] == ["source", "target", "source"]
    geo = layout_geometry(blocks, first_rows="source")
    assert [g["row_domain"] for g in geo] == ["source", "target", "source"]


def test_neuron_label_colours_flip(fig3, case):
    blocks, _ = case
    colours = {}
    for t in traces(fig3, "neuron-labels"):
        colours[(t.meta["layer"], t.meta["axis"])] = t.textfont.color
    l1, l2, l3 = (b.name for b in blocks)
    assert colours[(l1, "rows")] == TARGET_COLOR and colours[(l1, "cols")] == SOURCE_COLOR
    assert colours[(l2, "rows")] == SOURCE_COLOR and colours[(l2, "cols")] == TARGET_COLOR
    assert colours[(l3, "rows")] == TARGET_COLOR and colours[(l3, "cols")] == SOURCE_COLOR


def test_neuron_labels_list_important_neurons_in_rank_order(fig3, case):
    blocks, _ = case
    t = traces(fig3, "neuron-labels", layer=blocks[0].name, axis="rows")[0]
    assert list(t.text) == [str(n) for n in blocks[0].tgt_important]  # rows of matrix 1 = target
    ys = np.asarray(t.y, dtype=float)
    assert np.all(np.diff(ys) == 1.0)  # one unit cell per neuron, in rank order top to bottom


def _block_bbox(fig, model, layer_from):
    ts = traces(fig, "weights", model=model, layer_from=layer_from)
    assert ts, f"no {model} weights from {layer_from}"
    return ts[0].meta["x0"], ts[0].meta["y0"], ts[0].meta["corner"]


def test_weight_blocks_sit_in_opposite_corners(fig3, case):
    blocks, _ = case
    m1, m2, m3 = fig3.layout.meta["matrices"]
    # pair L1-L2: matrix 1 rows are target -> target weights upper right, source lower left
    x, y, corner = _block_bbox(fig3, "target", blocks[0].name)
    assert corner == "upper-right"
    assert x == pytest.approx(m2["x0"]) and y == pytest.approx(m1["y0"])  # right of matrix 1, above matrix 2
    x, y, corner = _block_bbox(fig3, "source", blocks[0].name)
    assert corner == "lower-left"
    assert x == pytest.approx(m1["x0"]) and y == pytest.approx(m2["y0"])  # below matrix 1, left of matrix 2
    # pair L2-L3: the corners alternate
    x, y, corner = _block_bbox(fig3, "source", blocks[1].name)
    assert corner == "upper-right" and x == pytest.approx(m3["x0"]) and y == pytest.approx(m2["y0"])
    x, y, corner = _block_bbox(fig3, "target", blocks[1].name)
    assert corner == "lower-left" and x == pytest.approx(m2["x0"]) and y == pytest.approx(m3["y0"])


def test_weight_cells_align_with_the_neurons(fig3, case):
    blocks, pairs = case
    mw = pairs[0].target
    hm = traces(fig3, "weights", model="target", layer_from=blocks[0].name)[0]
    z = np.asarray(hm.z, dtype=float)
    rows = list(blocks[0].tgt_important)  # upper-right block: rows = layer-1 target neurons
    cols = list(blocks[1].tgt_important)  # columns = layer-2 target neurons
    assert z.shape == (len(rows), len(cols))
    for nf, nt, v in zip(mw.rows, mw.cols, mw.values):
        assert z[rows.index(nf), cols.index(nt)] == pytest.approx(v, rel=1e-6)
    # the lower-left block is transposed: rows = layer-2 source neurons, columns = layer-1 source neurons
    ms = pairs[0].source
    hs = traces(fig3, "weights", model="source", layer_from=blocks[0].name)[0]
    zs = np.asarray(hs.z, dtype=float)
    rows_s, cols_s = list(blocks[1].src_important), list(blocks[0].src_important)
    for nf, nt, v in zip(ms.rows, ms.cols, ms.values):
        assert zs[rows_s.index(nt), cols_s.index(nf)] == pytest.approx(v, rel=1e-6)


def test_red_dots_and_pies_only_on_the_target_side(fig3, case):
    _, pairs = case
    dots = traces(fig3, "correspondence")
    assert dots and all(t.meta["model"] == "target" for t in dots)
    assert all(t.marker.color == SOURCE_COLOR for t in dots)
    n_expected = sum(int(p.target.has_correspondence.sum()) for p in pairs)
    assert sum(len(t.x) for t in dots) == n_expected
    for role in ("pie-with-corr", "pie-no-corr", "pie-hover"):
        ts = traces(fig3, role)
        assert ts and all(t.meta["model"] == "target" for t in ts)
    # boxes exist for both models
    assert {t.meta["model"] for t in traces(fig3, "weight-boxes")} == {"source", "target"}


def test_similarity_cells_are_greys_from_white_to_black(fig3, case):
    blocks, _ = case
    hm = traces(fig3, "similarity", layer=blocks[0].name)[0]
    assert hm.type == "heatmap" and hm.coloraxis == "coloraxis"
    ca = fig3.layout.coloraxis
    assert (ca.cmin, ca.cmax) == (0.0, 1.0)
    assert ca.colorscale[0][1].lower() in ("#ffffff", "rgb(255,255,255)", "white")
    assert ca.colorscale[-1][1].lower() in ("#000000", "rgb(0,0,0)", "black")
    # matrix 1 has target rows: z is the transposed (source x target) block
    np.testing.assert_allclose(np.asarray(hm.z, dtype=float), blocks[0].similarity.T, rtol=1e-6)


def test_nonimportant_regions_are_histograms(fig3, case):
    blocks, _ = case
    bars = traces(fig3, "similarity-hist", layer=blocks[0].name)
    assert {t.meta["region"] for t in bars} == {"right", "bottom", "corner"}
    assert all(t.type == "bar" for t in bars)
    assert traces(fig3, "weight-hist")


def test_switches_hide_regions_and_source_weights(case):
    blocks, pairs = case
    full = relation_matrices(blocks, pairs)
    slim = relation_matrices(blocks, pairs, show_nonimportant=False)
    for role in ("similarity-hist", "weight-boxes", "pie-no-corr", "weight-hist"):
        assert traces(full, role) and not traces(slim, role)
    assert slim.layout.width < full.layout.width
    no_src = relation_matrices(blocks, pairs, show_source_weights=False)
    assert not [t for t in no_src.data if isinstance(t.meta, dict) and t.meta.get("model") == "source"]
    assert traces(no_src, "weights", model="target")
    # the layout does not move when the source weights are hidden
    assert no_src.layout.meta["matrices"] == full.layout.meta["matrices"]


def test_cells_keep_their_size_for_large_layers():
    small = relation_matrices(*make_case(sizes=(20, 30)))
    large = relation_matrices(*make_case(sizes=(200, 300)))
    assert large.layout.width > 3 * small.layout.width
    assert large.layout.meta["cell_px"] == small.layout.meta["cell_px"]
    # width = data units x cell_px + margins: cells never shrink
    xr = large.layout.xaxis.range
    plot_w = large.layout.width - large.layout.margin.l - large.layout.margin.r
    assert plot_w / (xr[1] - xr[0]) == pytest.approx(large.layout.meta["cell_px"], rel=0.02)


def test_every_cell_hovers(fig3):
    for t in fig3.data:
        role = (t.meta or {}).get("role")
        if role in ("similarity", "weights"):
            assert "%{z" in t.hovertemplate
        if role == "neuron-labels":
            assert t.hovertext and "neuron #" in t.hovertext[0]


def test_figure_is_valid_and_serialisable(fig3):
    # the builder skips per-trace validation for speed; validate here once
    checked = go.Figure(fig3.to_dict())
    assert len(checked.data) == len(fig3.data)
    json.loads(pio.to_json(fig3))


# --------------------------------------------------------------------------------------
# clicks
# --------------------------------------------------------------------------------------
def _click(customdata):
    return {"points": [{"curveNumber": 0, "pointNumber": 0, "customdata": customdata}]}


def test_parse_click_neuron(fig3, case):
    blocks, _ = case
    t = traces(fig3, "neuron-labels", layer=blocks[1].name, axis="cols")[0]
    out = parse_click(_click(list(t.customdata[2])))
    assert out == {"kind": "neuron", "model": "target", "layer": blocks[1].name,
                   "neuron": int(blocks[1].tgt_important[2]), "layer_number": 2}


def test_parse_click_weight(fig3, case):
    blocks, pairs = case
    hm = traces(fig3, "weights", model="target", layer_from=blocks[0].name)[0]
    cd = np.asarray(hm.customdata)
    r, c = 1, 2
    payload = json.loads(json.dumps(cd[r, c].tolist()))  # as it comes back from the browser
    out = parse_click(_click(payload), fig3.layout.meta["layer_names"])
    n1, n2 = int(blocks[0].tgt_important[r]), int(blocks[1].tgt_important[c])
    mw = pairs[0].target
    k = int(np.flatnonzero((mw.rows == n1) & (mw.cols == n2))[0])
    assert out == {"kind": "weight", "model": "target", "from": blocks[0].name, "to": blocks[1].name,
                   "n1": n1, "n2": n2, "from_number": 1, "to_number": 2,
                   "has_correspondence": bool(mw.has_correspondence[k])}
    # without the names mapping the layers read "L<number>"
    assert parse_click(_click(payload))["from"] == "L1"
    # a source weight has no correspondence flag
    hs = traces(fig3, "weights", model="source", layer_from=blocks[0].name)[0]
    cds = np.asarray(hs.customdata)
    filled = np.argwhere(np.isfinite(np.asarray(hs.z, dtype=float)))[0]
    out = parse_click(_click(cds[tuple(filled)].tolist()))
    assert out["model"] == "source" and out["has_correspondence"] is None


def test_click_on_a_red_dot_opens_its_weight(fig3, case):
    """Issue 16 item 6: the red dot sits on its weight square and takes the click; the click
    must open the same weight as a click on the square (with its correspondence)."""
    blocks, _ = case
    names = fig3.layout.meta["layer_names"]
    hm = traces(fig3, "weights", model="target", layer_from=blocks[0].name)[0]
    cd = np.asarray(hm.customdata)
    dots = [t for t in traces(fig3, "correspondence") if t.meta["layer_from"] == blocks[0].name]
    assert dots
    dot = dots[0]
    # dcc.Graph fills a scatter point's clickData customdata from the figure's data: a base64
    # (numeric) array there would reach the server as no customdata at all: nested lists in the JSON
    sent = next(t for t in json.loads(fig3.to_json())["data"] if t.get("meta") == json.loads(json.dumps(dot.meta)))
    assert isinstance(sent["customdata"], list) and isinstance(sent["customdata"][0], list)
    x0, y0 = dot.meta["x0"], dot.meta["y0"]
    for k, (x, y) in enumerate(zip(dot.x, dot.y)):
        r, c = int(round(y - y0 - 0.5)), int(round(x - x0 - 0.5))
        payload = json.loads(json.dumps(np.asarray(dot.customdata)[k].tolist()))  # as the browser sends it
        out = parse_click(_click(payload), names)
        square = parse_click(_click(cd[r, c].tolist()), names)
        assert out is not None and out == square
        assert out["kind"] == "weight" and out["has_correspondence"] is True


def test_parse_click_similarity_and_junk(fig3, case):
    blocks, _ = case
    hm = traces(fig3, "similarity", layer=blocks[1].name)[0]
    out = parse_click(_click(np.asarray(hm.customdata)[0, 1].tolist()), {2: blocks[1].name})
    # matrix 2 has source rows, target columns
    assert out == {"kind": "similarity", "layer": blocks[1].name, "layer_number": 2,
                   "source_neuron": int(blocks[1].src_important[0]),
                   "target_neuron": int(blocks[1].tgt_important[1])}
    for junk in (None, {}, {"points": []}, _click(None), _click("x"), _click([]), _click([99, 1]),
                 _click(["neuron"]), _click([2, 1, None, 2, 3, 4, 1]), "nonsense"):
        assert parse_click(junk) is None
    assert parse_click(_click({"kind": "neuron", "model": "source", "layer": "a", "neuron": 1}))["neuron"] == 1


# --------------------------------------------------------------------------------------
# empty states and data helpers
# --------------------------------------------------------------------------------------
def test_empty_states():
    assert is_empty_figure(relation_matrices([], []))
    fig = relation_matrices([], [], class_name="bike")
    assert "bike" in fig.layout.annotations[0].text
    empty_block = LayerBlock("features.0", 1, [], [], None)
    assert is_empty_figure(relation_matrices([empty_block], []))
    # one layer: a single matrix and no weights
    blocks, _ = make_case(sizes=(20,))
    one = relation_matrices(blocks, [])
    assert traces(one, "similarity") and not traces(one, "weights")
    # a layer without important neurons next to a normal one; pairs missing -> a note, no error
    blocks, _ = make_case(sizes=(20, 30))
    mixed = relation_matrices([blocks[0], LayerBlock("features.3", 2, [], [], None)], [None])
    assert any("not in the cache" in a.text for a in mixed.layout.annotations)
    assert any("no important" in a.text for a in mixed.layout.annotations)


def test_layer_block_from_similarity_counts_every_region():
    S = np.random.default_rng(1).random((10, 8))
    b = layer_block_from_similarity("l", 1, S, [3, 1], [0, 5, 7], bins=5)
    assert b.similarity.shape == (2, 3)
    assert b.similarity[0, 1] == S[3, 5]
    assert b.hist_imp_nonimp.total == 2 * 5
    assert b.hist_nonimp_imp.total == 8 * 3
    assert b.hist_nonimp_nonimp.total == 8 * 5
    with pytest.raises(ValueError):
        LayerBlock("l", 1, [1, 2], [3], np.zeros((3, 3)))


def test_model_weights_split_into_regions():
    f = np.array([0, 0, 1, 5, 6, 7, 1])
    t = np.array([2, 9, 2, 2, 8, 9, 9])
    v = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7])
    corr = np.array([True, False, False, True, False, False, True])
    mw = model_weights_from_important_weights("target", f, t, v, [0, 1], [2], corr, bins=4)
    # region 1: (0,2) and (1,2)
    assert sorted(zip(mw.rows.tolist(), mw.cols.tolist())) == [(0, 2), (1, 2)]
    assert mw.has_correspondence.tolist() == [True, False]
    # boxes_from: important layer-i neurons 0 and 1 -> non-important layer-(i+1): (0,9) and (1,9)
    assert mw.boxes_from.count.tolist() == [1, 1]
    assert mw.boxes_from.no_correspondence.tolist() == [1.0, 0.0]
    # boxes_to: important neuron 2 <- non-important 5: one weight with a correspondence
    assert mw.boxes_to.count.tolist() == [1] and mw.boxes_to.no_correspondence.tolist() == [0.0]
    # region 4: (6,8), (7,9)
    assert mw.hist_rest.total == 2


def test_neuron_boxes_statistics():
    b = neuron_boxes_from_groups([4, 5], [[1, 2, 3, 4, 100], []], [2, 0])
    assert b.count.tolist() == [5, 0]
    assert b.median[0] == 3 and b.q1[0] == 2 and b.q3[0] == 4
    assert b.upper[0] == 4  # 100 is an outlier beyond 1.5 IQR
    assert np.isnan(b.median[1]) and np.isnan(b.no_correspondence[1])
    assert b.no_correspondence[0] == pytest.approx(0.4)
    h = histogram_from_values([0.5, 0.5, 0.5], bins=3)
    assert h.total == 3


def test_kernel_heatmap():
    fig = kernel_heatmap(np.arange(9.0).reshape(3, 3) - 4, "k")
    hm = fig.data[0]
    assert hm.type == "heatmap" and hm.zmid == 0 and hm.zmin == -4 and hm.zmax == 4
    assert hm.texttemplate  # small kernels print their values
    assert np.asarray(kernel_heatmap(np.float32(0.3)).data[0].z).shape == (1, 1)  # a linear weight
    assert is_empty_figure(kernel_heatmap(None))
    assert is_empty_figure(kernel_heatmap(np.zeros(0)))
