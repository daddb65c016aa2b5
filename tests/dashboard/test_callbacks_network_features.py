"""Views C (network relation) and D (features): their functions called directly on the tiny cache.

What each callback returns comes from pure functions of ``(cache, inputs...)`` (in
``dashboard.views.network`` and ``dashboard.views.features``, the URL and tooltip
controllers in ``callbacks``); these tests call them as the app would and assert on the
figures (zig-zag, trace counts, colours), the detail panels of a neuron, weight and
similarity click, the ranking list, the biplot, the tooltip and the empty states (a class
without target instances).
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from dash import html, no_update

from callbacks import features as cf
from callbacks import network as cn
from dashboard.routes import featvis_command
from dashboard.theme import SOURCE_COLOR, TARGET_COLOR, is_empty_figure
from dashboard.urlstate import DEFAULT_LAYER_COUNT
from dashboard.views.features import data as fd
from dashboard.views.features import figures as ff
from dashboard.views.features import markup as fm
from dashboard.views.features import ranking_grid as rg
from dashboard.views.features.hist_route import register_hist_route
from dashboard.views.network import data as nd
from dashboard.views.network import figures as nf
from dashboard.views.network import markup as nm
from dashboard.views.network import similar_grid
from layouts import features as lf
from layouts import network as ln
from tests.components import find, of_type, texts, traces
from tests.conftest import copy_cache, rerecord
from transferviz.cache import Cache


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------
def prop(component, name):
    return component.to_plotly_json()["props"].get(name)


def click(customdata):
    return {"points": [{"curveNumber": 0, "pointNumber": 0, "customdata": customdata}]}


@pytest.fixture(scope="module")
def cache(tiny_cache) -> Cache:
    """The session's tiny cache (TRANSFERVIZ_TEST_TINY_CACHE can point it at a built one)."""
    return tiny_cache


@pytest.fixture(scope="module")
def plain_cache(cache, tmp_path_factory) -> Cache:
    """A copy of the tiny cache without feature visualizations (the view's fallback)."""
    return copy_cache(cache, tmp_path_factory.mktemp("plain-cache") / "plain", "featvis")


@pytest.fixture(scope="module")
def odd_cache(cache, tmp_path_factory) -> Cache:
    """A copy of the tiny cache where class 0 has no target instances (the analysis then
    writes -1 neurons and a non-ok discriminability status) and featvis PNGs exist for the
    target model's features.3 neurons."""
    c = copy_cache(cache, tmp_path_factory.mktemp("odd-cache") / "odd")
    root = c.root
    for model in ("source", "target"):
        for layer in c.layers:
            p = root / f"analysis/neurons/{model}/{layer}.npy"
            a = np.load(p)
            a[0] = -1
            np.save(p, a)
        base = root / f"analysis/discriminability/{model}"
        s = pd.read_parquet(base / "summary.parquet")
        s.loc[s.class_index == 0, ["status", "n_target"]] = [
            "the target domain has 0 instance(s); at least 2 per domain are needed", 0]
        s.loc[s.class_index == 0, "cv_accuracy"] = np.nan
        s.to_parquet(base / "summary.parquet", index=False)
        for name in ("neurons", "points"):
            t = pd.read_parquet(base / f"{name}.parquet")
            t[t.class_index != 0].to_parquet(base / f"{name}.parquet", index=False)
            rerecord(root, f"analysis/discriminability/{model}/{name}.parquet")
    fv = root / "featvis" / "target" / "features.3"
    fv.mkdir(parents=True, exist_ok=True)
    png = (cache.root / "thumbs" / "0.png").read_bytes()
    for n in range(c.layer_info["detail"][1]["neurons"]):
        (fv / f"{n}.png").write_bytes(png)
    return Cache.open(root)


# --------------------------------------------------------------------------------------
# view C: the figure
# --------------------------------------------------------------------------------------
def test_layer_range_is_clamped_and_consecutive(cache):
    L = cache.layers
    assert nd.layers_from_range(cache, [1, 3]) == L[:3]
    assert nd.layers_from_range(cache, [3, 2]) == L[1:3]  # reversed ends
    assert nd.layers_from_range(cache, [0, 99]) == L[: nd.MAX_LAYERS]  # clipped, at most MAX_LAYERS
    assert nd.layers_from_range(cache, None) == L[: DEFAULT_LAYER_COUNT]
    assert nd.layers_from_range(cache, ["x", None]) == L[: DEFAULT_LAYER_COUNT]
    assert nd.range_from_layers(cache, L[2:4]) == [3, 4]
    assert nd.range_from_layers(cache, ["nope"]) == [1, DEFAULT_LAYER_COUNT]


def test_network_figure_zigzag_and_weights(cache):
    c = 3
    fig = nf.network_figure(cache, c, [1, 3])
    L = cache.layers[:3]
    mats = fig.layout.meta["matrices"]
    assert [m["layer"] for m in mats] == L
    # the zig-zag: each matrix lies to the lower right of the previous; rows/columns swap domains
    for a, b in zip(mats, mats[1:]):
        assert b["x0"] > a["x0"] + a["width"] and b["y0"] > a["y0"] + a["height"]
        assert a["row_domain"] == b["col_domain"] and a["col_domain"] == b["row_domain"]
    assert [m["row_domain"] for m in mats] == ["target", "source", "target"]
    # one similarity heatmap per layer, drawn from the cache's important block
    sims = traces(fig, "similarity")
    assert len(sims) == 3
    imp_s = nd.class_important(cache, "source", L[0], c)
    imp_t = nd.class_important(cache, "target", L[0], c)
    block = np.asarray(cache.array(f"analysis/similarity/{L[0]}_block.npy")[c])[: len(imp_s), : len(imp_t)]
    np.testing.assert_allclose(np.asarray(sims[0].z, dtype=float), block.T, rtol=1e-5)  # matrix 1: target rows
    # neuron indices coloured by domain
    lab = {(t.meta["layer"], t.meta["axis"]): t for t in traces(fig, "neuron-labels")}
    assert lab[(L[0], "rows")].textfont.color == TARGET_COLOR
    assert lab[(L[0], "cols")].textfont.color == SOURCE_COLOR
    assert list(lab[(L[0], "rows")].text) == [str(n) for n in imp_t]
    # both models' weights for both pairs, in opposite corners
    w = traces(fig, "weights")
    assert {(t.meta["model"], t.meta["layer_from"]) for t in w} == {(m, a) for m in ("source", "target") for a in L[:2]}
    assert {t.meta["corner"] for t in traces(fig, "weights", layer_from=L[0])} == {"upper-right", "lower-left"}
    # region 1 values are the cache's block (rows layer i, columns layer i+1 in the upper-right corner)
    tw = traces(fig, "weights", model="target", layer_from=L[0])[0]
    wb = np.asarray(cache.array(f"analysis/weights/target/{L[0]}__{L[1]}_block.npy")[c], dtype=float)
    np.testing.assert_allclose(np.asarray(tw.z, dtype=float), wb.T, rtol=1e-5)
    # red dots: exactly the cache's correspondence flags of region 1 (target side only)
    n_dots = sum(len(t.x) for t in traces(fig, "correspondence"))
    n_corr = sum(int(np.asarray(cache.array(f"analysis/weights/target/{a}__{b}_block_corr.npy")[c]).sum())
                 for a, b in zip(L[:-1], L[1:]))
    assert n_dots == n_corr
    assert all(t.marker.color == SOURCE_COLOR and t.meta["model"] == "target" for t in traces(fig, "correspondence"))
    # regions 2-4: histograms, boxes, pies (target side only)
    assert traces(fig, "similarity-hist") and traces(fig, "weight-hist")
    assert {t.meta["model"] for t in traces(fig, "weight-boxes")} == {"source", "target"}
    assert {t.meta["model"] for t in traces(fig, "pie-hover")} <= {"target"}
    go.Figure(fig.to_dict())  # valid plotly
    json.loads(fig.to_json())


def test_network_switches(cache):
    full = nf.network_figure(cache, 1, [2, 3])
    slim = nf.network_figure(cache, 1, [2, 3], hide_nonimportant=True)
    for role in ("similarity-hist", "weight-boxes", "weight-hist"):
        assert traces(full, role) and not traces(slim, role)
    no_src = nf.network_figure(cache, 1, [2, 3], hide_source=True)
    assert not [t for t in no_src.data if isinstance(t.meta, dict) and t.meta.get("model") == "source"]
    assert traces(no_src, "weights", model="target")
    assert no_src.layout.meta["matrices"] == full.layout.meta["matrices"]


def test_network_single_layer_and_conv_to_linear(cache):
    one = nf.network_figure(cache, 2, [6, 6])
    assert len(traces(one, "similarity")) == 1 and not traces(one, "weights")
    mixed = nf.network_figure(cache, 2, [5, 6])  # conv -> linear pair
    assert len(traces(mixed, "weights")) == 2


def test_partial_cache_gives_empty_states(cache, tmp_path):
    part = copy_cache(cache, tmp_path / "partial", "similarity", "discriminability")  # no network analysis
    fig = nf.network_figure(part, 1, [1, 2])
    assert is_empty_figure(fig) and "no network analysis" in fig.layout.meta["message"]
    options, value, status = fm.ranking(part, 1, "target", "most")
    assert options == [] and "no domain discriminability" in texts(status)
    assert is_empty_figure(ff.biplot_figure(part, 1, "target", []))


def test_network_empty_states(cache, odd_cache):
    assert is_empty_figure(nf.network_figure(cache, None, [1, 2]))
    assert is_empty_figure(nf.network_figure(cache, 999, [1, 2]))
    fig = nf.network_figure(odd_cache, 0, [1, 2])
    assert is_empty_figure(fig) and "no target instances" in fig.layout.meta["message"]
    assert not is_empty_figure(nf.network_figure(odd_cache, 1, [1, 2]))


# --------------------------------------------------------------------------------------
# view C: the detail panel
# --------------------------------------------------------------------------------------
def _label_click(fig, layer, axis, k=0):
    t = traces(fig, "neuron-labels", layer=layer, axis=axis)[0]
    return click(list(t.customdata[k]))


def test_neuron_click_without_featvis_shows_top_instances_and_similar(plain_cache):
    cache = plain_cache
    c = 3
    fig = nf.network_figure(cache, c, [1, 3])
    layer = cache.layers[1]
    panel = nm.detail_panel(cache, _label_click(fig, layer, "cols"), c)  # matrix 2: target columns
    n = int(nd.class_important(cache, "target", layer, c)[0])
    txt = texts(panel)
    assert f"L2 #{n}" in txt and "target model" in txt and "importance rank 1" in txt
    command = featvis_command(cache, layer, n, "target")  # what renders it (a plain folder: cache/<run>)
    assert "Feature visualization not rendered" in txt and command in txt
    assert command == f"transferviz featvis cache/{cache.name} --layer {layer} --neurons {n}"
    thumbs = [i for i in of_type(panel, html.Img) if "/thumb/" in i.src]
    grid = find(panel, similar_grid.GRID)  # the most similar neurons: a dash-ag-grid grid (issue 13)
    rows = grid.rowData
    assert len(rows) == 5
    # the five most similar source neurons, from the cache's top-5, most similar first
    idx = np.asarray(cache.array(f"analysis/similarity/{layer}_t2s_idx.npy")[c, n])
    val = np.asarray(cache.array(f"analysis/similarity/{layer}_t2s_val.npy")[c, n])
    assert [r["neuron"] for r in rows] == [f"L2 #{int(j)}" for j in idx]
    assert [f"{r['similarity']:.3f}" for r in rows] == [f"{v:.3f}" for v in val]
    assert grid.columnDefs[0]["cellStyle"]["color"] == SOURCE_COLOR
    # top instances: three per domain as images, plus one per similar neuron in the grid's picture column
    assert len(thumbs) == 6
    assert sum("/thumb/" in r["image"] for r in rows) == 5
    top = nd.top_instances(cache, "target", layer, n, c)
    cond = np.asarray(cache.conductance("target", layer)[:, n])
    assert cond[top["target"][0][0]] >= cond[top["target"][1][0]]


def test_neuron_click_with_featvis(odd_cache):
    c = 1
    fig = nf.network_figure(odd_cache, c, [1, 3])
    layer = odd_cache.layers[1]
    panel = nm.detail_panel(odd_cache, _label_click(fig, layer, "cols"), c, url_for=lambda p: "/base" + p)
    imgs = [i.src for i in of_type(panel, html.Img)]
    n = int(nd.class_important(odd_cache, "target", layer, c)[0])
    assert f"/base/featvis/target/{layer}/{n}.png" in imgs
    assert "not rendered" not in texts(panel)
    # the similar source neurons: their feature visualization where the cache has one, else a thumbnail
    for row in [r for r in of_type(panel, html.Tr) if getattr(r, "className", None) == "tv-similar-row"]:
        j = int(texts(row.children[0]).split("#")[1].split()[0])
        srcs = [i.src for i in of_type(row, html.Img)]
        if j in odd_cache.featvis_neurons("source", layer):
            assert srcs == [f"/base/featvis/source/{layer}/{j}.png"]
        else:
            assert srcs and "/thumb/" in srcs[0]


def test_weight_click_shows_values_and_kernel(cache):
    c = 3
    fig = nf.network_figure(cache, c, [1, 3])
    L = cache.layers
    hm = traces(fig, "weights", model="target", layer_from=L[0])[0]
    cd = np.asarray(hm.customdata)
    payload = json.loads(json.dumps(cd[0, 0].tolist()))
    # plotly.js decodes the base64 int16 customdata into a typed array, whose JSON is an object
    browser = {str(i): v for i, v in enumerate(payload)}
    panel = nm.detail_panel(cache, click(browser), c)
    txt = texts(panel)
    assert txt == texts(nm.detail_panel(cache, click(payload), c))
    n1, n2 = int(payload[4]), int(payload[5])
    assert f"L1 #{n1}" in txt and f"L2 #{n2}" in txt
    assert "correspondence" in txt and ("yes:" in txt or "no:" in txt)
    value = float(cache.array(f"analysis/weights/target/{L[0]}__{L[1]}_values.npy")[n2, n1])
    assert f"{value:.4f}" in txt
    graphs = of_type(panel, "Graph")
    assert len(graphs) == 1
    k = np.asarray(graphs[0].figure.data[0].z)
    assert k.shape == (3, 3)  # features.3 has 3 x 3 kernels
    from safetensors.numpy import load_file

    w = load_file(str(cache.root / "models" / "target.safetensors"))[f"{L[1]}.weight"]
    np.testing.assert_allclose(k, w[n2, n1], rtol=1e-6)
    # the two neurons' images sit beside the values (paper Figure 1 C.2)
    srcs = [getattr(x, "src", "") for x in of_type(panel, "Img")]
    assert any(f"/{L[0]}/{n1}.png" in s or "/thumb/" in s for s in srcs)
    assert any(f"/{L[1]}/{n2}.png" in s or "/thumb/" in s for s in srcs)


def test_weight_detail_conv_to_linear_and_linear(cache):
    L = cache.layers
    d = nd.weight_detail(cache, 2, "source", L[4], L[5], 3, 7)
    assert d.kernel.shape == (3, 3) and d.corresponds is None  # a channel's 3 x 3 block of the flatten
    n1 = int(nd.class_important(cache, "target", L[5], 2)[0])
    n2 = int(nd.class_important(cache, "target", L[6], 2)[0])
    d = nd.weight_detail(cache, 2, "target", L[5], L[6], n1, n2)
    assert d.kernel.shape == (1, 1) and d.corresponds is not None and d.counterpart is not None
    # an important weight carries its count
    iw = cache.table(f"analysis/weights/target/{L[0]}__{L[1]}.parquet")
    r = iw[iw.class_index == 2].iloc[0]
    d = nd.weight_detail(cache, 2, "target", L[0], L[1], int(r.n1), int(r.n2))
    assert d.important and d.count == int(r["count"]) and d.rank == int(r["rank"]) + 1


def test_similarity_click_and_junk(cache):
    c = 3
    fig = nf.network_figure(cache, c, [1, 2])
    hm = traces(fig, "similarity", layer=cache.layers[1])[0]
    panel = nm.detail_panel(cache, click(np.asarray(hm.customdata)[0, 0].tolist()), c)
    assert "similarity" in texts(panel) and prop(panel, "data-kind") == "similarity"
    for junk in (None, {}, click(None), click(["neuron", "target", "no.such.layer", 1, 9]),
                 click([2, 1, 99, 98, 0, 0, 1])):
        assert nm.detail_panel(cache, junk, c).className.endswith("tv-network-hint")
    no_class = nm.detail_panel(cache, _label_click(fig, cache.layers[0], "rows"), None)
    assert no_class.className.endswith("tv-network-hint")


def test_detail_panel_resets_when_its_layer_is_no_longer_drawn(cache):
    """Issue 16 item 6: after the layer range changes, a panel showing a neuron, weight or
    similarity of a layer outside the new range goes back to the hint; one inside stays."""
    c = 3
    L = cache.layers
    fig = nf.network_figure(cache, c, [1, 3])
    neuron = _label_click(fig, L[0], "rows")  # a neuron of L1
    hm = traces(fig, "weights", model="target", layer_from=L[1])[0]
    weight = click(np.asarray(hm.customdata)[0, 0].tolist())  # a weight L2 -> L3
    sim = click(np.asarray(traces(fig, "similarity", layer=L[2])[0].customdata)[0, 0].tolist())
    assert nm.click_layers(cache, neuron) == {L[0]} and nm.click_layers(cache, weight) == {L[1], L[2]}
    # L1 no longer drawn: the L1 neuron's panel resets; L2-L3 still drawn: the weight's stays
    assert cn.detail_after_layers(cache, neuron, [2, 4]).className.endswith("tv-network-hint")
    assert cn.detail_after_layers(cache, weight, [2, 4]) is no_update
    # the weight's "to" layer L3 leaves: reset; the similarity in L3 too
    assert cn.detail_after_layers(cache, weight, [1, 2]).className.endswith("tv-network-hint")
    assert cn.detail_after_layers(cache, sim, [1, 2]).className.endswith("tv-network-hint")
    assert cn.detail_after_layers(cache, sim, [3, 3]) is no_update
    for junk in (None, {}, click(None)):  # no panel open: nothing to reset
        assert cn.detail_after_layers(cache, junk, [2, 4]) is no_update


def test_detail_panel_listens_to_the_layers(cache):
    import dash

    from layouts import ids

    app = dash.Dash(__name__, suppress_callback_exceptions=True)
    app.layout = html.Div([dash.dcc.Store(id=ids.SELECTED_CLASS), ln.layout(cache)])
    cn.register(app, cache)
    (spec,) = [v for k, v in app.callback_map.items() if k == f"{ln.DETAIL}.children"]
    assert {"id": ln.LAYERS, "property": "value"} in spec["inputs"]


def test_class_sync(cache):
    # the dropdown writes the store; the store drives the dropdown; no ping-pong
    assert cn.sync_class(cache, ln.CLASS, 1, 4) == (4, no_update)
    assert cn.sync_class(cache, ln.CLASS, 4, 4) == (no_update, no_update)
    assert cn.sync_class(cache, "sel-class", 7, 4) == (no_update, 7)
    assert cn.sync_class(cache, "sel-class", 99, 4) == (no_update, no_update)


# --------------------------------------------------------------------------------------
# view D
# --------------------------------------------------------------------------------------
def test_ranking_list_order_and_default_checks(cache):
    c = 4
    options, value, status = fm.ranking(cache, c, "target", "most", shown=10**6)  # every row, not one page
    d = fd.discriminability(cache, "target", c)
    assert len(options) == len(d.neurons) > 5
    u = {fd.neuron_key(a, n): abs(v) for a, n, v in zip(d.neurons.layer, d.neurons.neuron, d.neurons.discriminability)}
    order = [o["value"] for o in options]
    assert [u[k] for k in order] == sorted(u.values(), reverse=True)
    assert value == order[:5]  # the top five checked
    least, lvalue, _ = fm.ranking(cache, c, "target", "least", shown=10**6)
    assert [u[o["value"]] for o in least] == sorted(u.values())
    assert lvalue == [o["value"] for o in least][:5]
    # a row: label coloured by model (the grid's class rule), signed value, mirrored histogram (red up, blue down)
    row = options[0]
    first = d.neurons.iloc[[k == row["value"] for k in order_keys(d)].index(True)]
    assert row["u_text"] == fm.format_u(first.discriminability) and row["model"] == "target"
    label = next(col for col in rg.ranking_columns(58, True, True) if col["field"] == "label")
    assert label["cellClassRules"]["tv-target"] == "params.data.model === 'target'"
    # the histogram is an image of its own route (the grid's markdown cells show no data: URIs)
    url = row["hist"].split("](", 1)[1].split(" ", 1)[0]
    assert url == rg.hist_path("target", c, first.layer, first.neuron)
    import dash

    app = dash.Dash(__name__)
    app.layout = html.Div()  # Dash serves nothing without one
    register_hist_route(app, cache)
    got = app.server.test_client().get(url)
    assert got.status_code == 200 and got.mimetype == "image/svg+xml"
    body = got.get_data(as_text=True)
    assert body == fm.row_histograms(cache, "target", c, [(first.layer, first.neuron)])[(first.layer, first.neuron)]
    assert SOURCE_COLOR in body and TARGET_COLOR in body
    for bad in (url.replace("/target/", "/nope/"), url.replace(f"/{c}/", "/999/"), url.replace(".svg", "9999.svg")):
        assert app.server.test_client().get(bad).status_code == 404  # only the ranked neurons of a class
    assert "CV accuracy" in texts(status)
    # URL-given checks survive when they name neurons of the list, else the top five
    assert fm.ranking(cache, c, "target", "most", [order[7], "nope:1"])[1] == [order[7]]
    assert fm.ranking(cache, c, "target", "most", ["nope:1"])[1] == order[:5]
    src_opts = fm.ranking(cache, c, "source", "most")[0]
    assert src_opts[0]["model"] == "source" and "/ranking-hist/source/" in src_opts[0]["hist"]


def md_images(markdown: str) -> list[str]:
    """The URLs of the markdown images ``![alt](url "title")`` in a grid cell's text."""
    return re.findall(r"!\[[^\]]*\]\((\S+)", markdown)


def order_keys(d: fd.Discriminability) -> list[str]:
    """The neuron keys of a class's ranking, in the table's row order."""
    return [fd.neuron_key(a, n) for a, n in zip(d.neurons.layer, d.neurons.neuron)]


def test_ranking_row_cells():
    row = {"label": "L2 #7", "layer": "features.3", "neuron": 7, "discriminability": -0.25, "stability": 0.3}
    cmd = "transferviz featvis c --layer features.3 --neurons 7"
    cells = fm.grid_row(row, "source", 1, lambda p: "/x" + p, image=False, featvis_cmd=cmd, with_stability=True,
                        n_bootstrap=50)
    # a neuron the build did not render: the route's placeholder, the command on hover
    assert cells["image"] == f'![feature visualization](/x/featvis/source/features.3/7.png "not rendered: {cmd}")'
    assert cells["hist"].startswith("![conductance histogram of L2 #7](/x/ranking-hist/source/1/features.3/7.svg ")
    assert cells["value"] == "features.3:7" and cells["u_text"] == "-0.250"
    assert cells["unstable"] and cells["stability"] == "▂" and "of 50 resamples" in cells["stability_title"]
    plain = fm.grid_row(row, "source", 1, lambda p: p)  # no image or stability column in this list
    assert plain["image"] == "" and plain["stability"] == "" and not plain["unstable"]


def test_ranking_grid_selection_round_trip():
    # the server sets {"ids": [...]}, the grid reports its rows' data; junk reads as nothing
    assert rg.keys_of_selection(rg.selection(["a:1", "b:2"])) == ["a:1", "b:2"]
    assert rg.keys_of_selection([{"value": "a:1", "label": "L1 #1"}, {"value": "b:2"}]) == ["a:1", "b:2"]
    for junk in (None, 3, "a:1", {"ids": "a:1"}, [None, {"value": 5}], {"rows": []}):
        assert rg.keys_of_selection(junk) == []
    assert [rg.stability_bar(v) for v in (0, 0.5, 1, 1.7, -1)] == ["·", "▄", "█", "█", "·"]


def test_mirrored_histogram_svg_directions():
    svg = fm.mirrored_histogram_svg(np.ones(5), np.zeros(5), bins=4, width=40, height=20)
    rects = [r for r in svg.split("<rect")[1:]]
    red = [r for r in rects if SOURCE_COLOR in r]
    blue = [r for r in rects if TARGET_COLOR in r]
    assert len(red) == 1 and len(blue) == 1
    y_red = float(red[0].split('y="')[1].split('"')[0])
    y_blue = float(blue[0].split('y="')[1].split('"')[0])
    assert y_red < 10 <= y_blue  # source above the axis, target below
    assert "<rect" not in fm.mirrored_histogram_svg([], [])


def test_biplot_axes_for_checked_neurons(cache):
    c = 4
    options, value, _ = fm.ranking(cache, c, "target", "most")
    fig = ff.biplot_figure(cache, c, "target", value)
    pts = {t.meta["domain"]: t for t in traces(fig, "instances")}
    assert pts["source"].marker.symbol == "x" and pts["source"].marker.color == SOURCE_COLOR
    assert pts["target"].marker.symbol == "circle" and pts["target"].marker.color == TARGET_COLOR
    d = fd.discriminability(cache, "target", c)
    assert len(pts["source"].x) == d.n_source and len(pts["target"].x) == d.n_target
    lab = traces(fig, "axes-labels")[0]
    assert len(lab.text) == 5
    first = options[0]["value"].split(":")
    assert lab.text[0].endswith(f"#{first[1]}")
    assert any("CV accuracy" in a.text for a in fig.layout.annotations)
    assert fig.layout.uirevision == f"biplot|target|{c}"
    assert pts["source"].hoverinfo == "none"  # the thumbnail tooltip takes over
    none = ff.biplot_figure(cache, c, "target", [])
    assert not traces(none, "axes-lines")


def test_feature_view_empty_state(odd_cache):
    options, value, status = fm.ranking(odd_cache, 0, "target", "most")
    assert options == [] and value == []
    assert f"no {odd_cache.domains['target']} (target) instances" in texts(status)
    assert prop(status, "data-empty") == "true"
    fig = ff.biplot_figure(odd_cache, 0, "source", [])
    assert is_empty_figure(fig) and "both domains" in fig.layout.meta["message"]
    assert is_empty_figure(ff.biplot_figure(odd_cache, None, "target", []))
    assert fm.ranking(odd_cache, 1, "target", "most")[0]  # other classes unaffected


def test_ranking_featvis_thumbnail(odd_cache):
    options, _, _ = fm.ranking(odd_cache, 1, "target", "most", url_for=lambda p: "/x" + p)
    fv = [u for o in options for u in md_images(o["image"]) if "/featvis/" in u]
    assert fv and all(s.startswith("/x/featvis/target/") for s in fv)
    assert any(s.startswith("/x/featvis/target/features.3/") for s in fv)


def test_tooltip(cache):
    show, bbox, direction, children = cf.tooltip(cache, {"points": [{"customdata": 7, "bbox": {"x0": 1, "x1": 2}}]})
    assert show is True and bbox == {"x0": 1, "x1": 2} and direction == "right"
    assert cf.tooltip(cache, {"points": [{"customdata": 7, "bbox": {"x0": 400}}]})[2] == "left"
    assert of_type(children, html.Img)[0].src == "/thumb/7.png"
    assert cf.tooltip(cache, None)[0] is False
    assert cf.tooltip(cache, {"points": [{"customdata": [0.3, 0.1]}]})[0] is False  # a neuron axis label
    assert cf.tooltip(cache, {"points": [{"x": 1}]})[0] is False
    # WebGL hover events reach the server without customdata: trace and point numbers instead
    c = 4
    fig = ff.biplot_figure(cache, c, "target", [])
    for curve, t in enumerate(fig.data[:2]):
        hover = {"points": [{"curveNumber": curve, "pointNumber": 3, "bbox": {"x0": 0}}]}
        assert ff.hovered_instance(cache, hover, c, "target") == int(t.customdata[3])
        show, _, _, children = cf.tooltip(cache, hover, c, "target", url_for=lambda p: "/a" + p)
        assert show and of_type(children, html.Img)[0].src == f"/a/thumb/{int(t.customdata[3])}.png"
    axis = {"points": [{"curveNumber": 3, "pointNumber": 0}]}  # an axis line or label
    assert ff.hovered_instance(cache, axis, c, "target") is None
    assert ff.hovered_instance(cache, {"points": [{"curveNumber": 0, "pointNumber": 10**6}]}, c, "target") is None


# --------------------------------------------------------------------------------------
# wiring and speed
# --------------------------------------------------------------------------------------
def test_register_uses_app_callbacks_only(cache):
    import dash

    from callbacks import features, network
    from layouts import ids

    app = dash.Dash(__name__, suppress_callback_exceptions=True)
    app.layout = html.Div([dash.dcc.Store(id=ids.SELECTED_CLASS), ln.layout(cache), lf.layout(cache)])
    before = len(dash._callback.GLOBAL_CALLBACK_LIST)
    network.register(app, cache)
    features.register(app, cache)
    assert len(dash._callback.GLOBAL_CALLBACK_LIST) == before
    outputs = " ".join(app.callback_map)
    for comp in (ln.GRAPH, ln.DETAIL, lf.RANKING, lf.BIPLOT, lf.TOOLTIP):
        assert comp in outputs


def test_callbacks_are_lookups(cache):
    """Warm calls stay far below the 150 ms budget even on a loaded CI runner."""
    import time

    def p95(fn, n=8):
        ts = []
        for i in range(n):
            t = time.perf_counter()
            fn(i)
            ts.append(time.perf_counter() - t)
        return sorted(ts)[int(0.95 * (n - 1))]

    nf.network_figure(cache, 0, [1, 3]), fm.ranking(cache, 0, "target", "most")
    assert p95(lambda i: nf.network_figure(cache, i % 10, [1, 3])) < 1.0
    assert p95(lambda i: fm.ranking(cache, i % 10, "target", "most")) < 1.0


# --------------------------------------------------------------------------------------
# URL keys: layers (view C); model, order, neurons (view D)
# --------------------------------------------------------------------------------------
def _query(search: str) -> dict[str, str]:
    from urllib.parse import unquote

    return dict(part.split("=", 1) for part in unquote(search.lstrip("?")).split("&") if "=" in part)


def test_layers_follow_and_write_the_url(cache):
    from dashboard.urlstate import StateSpace

    space = StateSpace.from_cache(cache)
    L = cache.layers
    # the URL wins on load and on back/forward
    assert cn.layers_url(cache, space, set(), f"?layers={L[2]},{L[3]}", [1, 3]) == (no_update, [3, 4])
    assert cn.layers_url(cache, space, {"url"}, f"?layers={L[2]},{L[3]}", [3, 4]) == (no_update, no_update)
    # a slider move writes the URL, keeping the other keys
    search, slider = cn.layers_url(cache, space, {ln.LAYERS}, "?class=3&model=source", [2, 3])
    q = _query(search)
    assert q["layers"] == f"{L[1]},{L[2]}" and q["model"] == "source" and q["class"] == cache.classes[3]
    assert slider is no_update
    # more than MAX_LAYERS: clamped, the slider follows
    search, slider = cn.layers_url(cache, space, {ln.LAYERS}, "?class=3", [1, 7])
    assert slider == [1, nd.MAX_LAYERS] and len(_query(search)["layers"].split(",")) == nd.MAX_LAYERS
    # a bad link falls back to the default layers (the state callback shows the notice)
    assert cn.layers_url(cache, space, {"url"}, "?layers=nope", [2, 5])[1] == [1, DEFAULT_LAYER_COUNT]


def test_feature_controls_and_the_url(cache):
    from dashboard.urlstate import StateSpace

    space = StateSpace.from_cache(cache)
    c, name = 4, cache.classes[4]
    top_src = fm.default_checked(cache, c, "source", "least")
    pick = [o["value"] for o in fm.ranking(cache, c, "source", "least")[0]][6:8]
    link = f"?class={name}&model=source&order=least&neurons=" + ",".join(pick)
    # page load: model, order and the checked neurons come from the link
    search, model, order, options, value, status = cf.feature_controls(
        cache, space, set(), link, c, "target", "most", [])
    assert (search, model, order) == (no_update, "source", "least")
    assert len(options) > 5 and value == pick
    # the user checks the top five of this order again: the URL drops its neurons
    search = cf.feature_controls(cache, space, {lf.RANKING}, link, c, "source", "least", top_src)[0]
    assert "neurons" not in _query(search) and _query(search)["model"] == "source"
    # ... or another set: the URL records it
    search = cf.feature_controls(cache, space, {lf.RANKING}, f"?class={name}", c, "target", "most", pick[:1])[0]
    assert _query(search)["neurons"] == pick[0]
    # the model switch: a new list with its top five, the URL records the model
    search, model, order, options, value, _ = cf.feature_controls(
        cache, space, {lf.MODEL}, link, c, "target", "least", pick)
    assert model is no_update and options and value == fm.default_checked(cache, c, "target", "least")
    assert _query(search)["model"] == "target" and "neurons" not in _query(search)
    # the class changed but the URL still names the old one: the state callback owns that, no write
    assert cf.feature_controls(cache, space, {"sel-class"}, link, 2, "source", "least", [])[0] is no_update
    # back/forward to other checks of the same list: the checkboxes follow
    out = cf.feature_controls(cache, space, {"url"}, link, c, "source", "least", top_src)
    assert out[3] is no_update and out[4] == pick


def test_conductance_slices_and_histograms(cache):
    c = 2
    d = fd.discriminability(cache, "source", c)
    src, tgt = fd.conductance_by_domain(cache, "source", c, d.neurons)
    inst = cache.instances
    layer, n = str(d.neurons.layer[3]), int(d.neurons.neuron[3])
    rows_t = inst.index[(inst.domain == "target") & (inst.label == c)].to_numpy()
    np.testing.assert_allclose(tgt[3], np.asarray(cache.conductance("source", layer)[rows_t, n]))
    assert len(src[3]) == d.n_source and len(tgt[3]) == d.n_target
    hists = fm.ranking_histograms(cache, "source", c)
    assert set(hists) == {(str(a), int(k)) for a, k in zip(d.neurons.layer, d.neurons.neuron)}
    assert hists[(layer, n)] == fm.mirrored_histogram_svg(src[3], tgt[3], width=160, height=30)


def test_biplot_is_not_drawn_again_when_the_grid_echoes_its_selection(cache):
    """The server sets the ranking grid's selection, the grid reports it back: the same biplot is not redrawn."""
    from dashboard.urlstate import default_state

    c = default_state(cache).cls
    keys = [o["value"] for o in fm.ranking(cache, c, "target", "most")[0]][:3]
    fig, drawn = cf.biplot_update(cache, c, "target", {"ids": keys}, None, None)
    assert isinstance(fig, go.Figure) and drawn == [c, "target", sorted(keys)]
    # the grid's own report of the same rows, in another order: nothing to draw
    echoed = [{"value": k} for k in reversed(keys)]
    assert cf.biplot_update(cache, c, "target", echoed, None, drawn) == (no_update, no_update)
    # another check, model or class is drawn
    assert isinstance(cf.biplot_update(cache, c, "target", echoed[:2], None, drawn)[0], go.Figure)
    assert isinstance(cf.biplot_update(cache, c, "source", echoed, None, drawn)[0], go.Figure)
    other = (c + 1) % len(cache.classes)
    assert cf.biplot_update(cache, other, "target", echoed, None, drawn)[1][0] == other
