"""Issue 16 item 2: the network relation view at 4096 units (the paper's own scale).

At the benchmark case's sizes (410 important neurons a layer and model, 10 % of AlexNet's
4096-unit layers; seven layers) the view draws the top neurons by rank, one heatmap trace a
matrix, in a figure that fits its card and stays small on the wire; relative colour scales
spread similarities that all read about 0.999; the switches live in the URL.
"""

from __future__ import annotations

import re

import numpy as np
import plotly.graph_objects as go
import pytest
from dash import no_update

from callbacks import network as cn
from dashboard.urlstate import DEFAULT_SHOWN, MAX_LAYERS, State, StateSpace, parse_state, to_search, update_search
from dashboard.views.network import figures as nf
from dashboard.views.network.data import LayerBlock
from layouts import ids
from layouts import network as ly
from tests.components import traces
from tests.dashboard.network_fixtures import benchmark_case, layer_block_from_similarity

ONE_MB = 1_000_000
K = 410  # important neurons a layer and model at the benchmark scale


@pytest.fixture(scope="module")
def bench():
    return benchmark_case(n_layers=7, k=K)


def windows(blocks, pairs):
    """Every figure the view can draw from the case: MAX_LAYERS consecutive layers at a time."""
    for a in range(len(blocks) - MAX_LAYERS + 1):
        yield blocks[a:a + MAX_LAYERS], pairs[a:a + MAX_LAYERS - 1]


def fitted(blocks, pairs, **kw):
    return nf.relation_matrices(blocks, pairs, class_name="back_pack", fit=nf.FIT_PX, **kw)


# --------------------------------------------------------------------------------------
# bytes, rows and traces at the benchmark scale
# --------------------------------------------------------------------------------------
def test_default_figures_are_under_a_megabyte_with_the_top_neurons(bench):
    for blocks, pairs in windows(*bench):
        fig = fitted(blocks, pairs, shown=DEFAULT_SHOWN)
        size = len(fig.to_json())
        assert size < ONE_MB, f"{[b.name for b in blocks]}: {size} bytes"
        sims = traces(fig, "similarity")
        assert len(sims) == MAX_LAYERS  # one heatmap a matrix, not a shape a cell
        assert all(t.type == "heatmap" and np.asarray(t.z).shape == (DEFAULT_SHOWN, DEFAULT_SHOWN) for t in sims)
        weights = traces(fig, "weights")
        assert len(weights) == 2 * (MAX_LAYERS - 1)  # one heatmap a corner
        assert all(np.asarray(t.z).shape == (DEFAULT_SHOWN, DEFAULT_SHOWN) for t in weights)
        labels = traces(fig, "neuron-labels")
        assert len(labels) == 2 * MAX_LAYERS and all(len(t.x) == DEFAULT_SHOWN for t in labels)
        # the red dots: one trace a target corner at most
        assert len(traces(fig, "correspondence")) <= MAX_LAYERS - 1


def test_seven_layers_at_once_keep_one_trace_a_matrix(bench):
    blocks, pairs = bench
    fig = fitted(blocks, pairs, shown=DEFAULT_SHOWN)
    assert len(traces(fig, "similarity")) == 7 and len(traces(fig, "weights")) == 12
    # the trace count grows with the layers, never with the neurons
    assert len(fig.data) == len(fitted(blocks, pairs, shown=8).data)


def test_all_neurons_draw_every_row_and_label_every_index(bench):
    blocks, pairs = bench
    fig = fitted(blocks[:3], pairs[:2], shown=None)
    for t in traces(fig, "similarity"):
        assert np.asarray(t.z).shape == (K, K)
    for t in traces(fig, "neuron-labels"):
        assert len(t.x) == K and len(t.customdata) == K  # a hover and click target for each
    assert "top" not in fig.layout.title.text  # nothing filtered: no "top n of" line


def test_the_top_neurons_are_the_first_by_rank(bench):
    blocks, pairs = bench
    fig = fitted(blocks[:2], pairs[:1], shown=5)
    rows = traces(fig, "neuron-labels", axis="rows")[0]  # matrix 1: target rows
    assert [c[3] for c in rows.customdata] == [int(n) for n in blocks[0].tgt_important[:5]]
    sim = traces(fig, "similarity")[0]
    # matrix 1 has target rows: the transposed block of the top five of each model
    assert np.allclose(np.asarray(sim.z), blocks[0].similarity[:5, :5].T, atol=1e-6)
    assert "top 5 of 410 important neurons a layer (class ranking)" in fig.layout.title.text
    assert fig.layout.meta["matrices"][0]["important"] == {"source": K, "target": K}


def test_every_shown_index_and_red_dot_opens_its_details(bench):
    blocks, pairs = bench
    fig = fitted(blocks[:3], pairs[:2], shown=DEFAULT_SHOWN)
    names = fig.layout.meta["layer_names"]
    for t in traces(fig, "neuron-labels"):
        shown = set(map(int, (blocks[[b.name for b in blocks].index(t.meta["layer"])]
                               .important(t.meta["domain"])[:DEFAULT_SHOWN])))
        got = {nf.parse_click({"points": [{"customdata": c}]}, names)["neuron"] for c in t.customdata}
        assert got == shown
        assert t.marker.size >= 5  # a target the pointer can hit even where cells are a few pixels
    dots = traces(fig, "correspondence")
    assert dots
    for t in dots:
        for cd in t.customdata:
            click = nf.parse_click({"points": [{"customdata": cd.tolist()}]}, names)  # as the browser sends it
            assert click["kind"] == "weight" and click["has_correspondence"] is True


# --------------------------------------------------------------------------------------
# the figure fits its card
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("shown", [8, DEFAULT_SHOWN, None])
def test_the_figure_fits_its_card(bench, shown):
    blocks, pairs = bench
    fig = fitted(blocks[:MAX_LAYERS], pairs[:MAX_LAYERS - 1], shown=shown)
    assert fig.layout.width <= nf.FIT_PX[0] and fig.layout.height <= nf.FIT_PX[1]
    # square cells (zoom and pan keep them square) and the cell size the meta reports
    xr = fig.layout.xaxis.range
    plot_w = fig.layout.width - fig.layout.margin.l - fig.layout.margin.r
    assert plot_w / (xr[1] - xr[0]) == pytest.approx(fig.layout.meta["cell_px"], rel=0.02)
    assert fig.layout.yaxis.scaleanchor == "x" and fig.layout.dragmode == "zoom"


def test_printed_indices_never_overlap_and_the_rest_stay_clickable(bench):
    blocks, pairs = bench
    fig = fitted(blocks[:MAX_LAYERS], pairs[:MAX_LAYERS - 1], shown=None)
    cell = fig.layout.meta["cell_px"]
    for t in traces(fig, "neuron-labels"):
        printed = [i for i, s in enumerate(t.text) if s.strip()]
        assert printed[0] == 0 and len(printed) < len(t.text)  # cells of a few px: every step-th index
        step = printed[1] - printed[0]
        font = t.textfont.size
        if t.meta["axis"] == "rows":
            assert step * cell >= font  # a text line each
        else:  # two staggered lines: a label's width every other printed index
            assert 2 * step * cell >= 0.6 * font * 4
    assert nf.label_step(16, 9, 3, "rows") == 1  # large cells print every index


def test_legend_and_title_have_their_rows(bench):
    """Issue 16 item 6: at 1366 px the legend ran off the card (the figure was wider than its box);
    fitted, it wraps inside the figure, and the top margin holds its rows below the title."""
    blocks, pairs = bench
    fig = fitted(blocks[:3], pairs[:2], shown=DEFAULT_SHOWN)
    names = [t.name for t in traces(fig, "legend-key")]
    width = fig.layout.width
    widest = max(40 + 0.6 * fig.layout.legend.font.size * len(n) for n in names)
    rows = -(-len(names) // max(1, int((width - 16 + 16) // widest)))
    title_lines = fig.layout.title.text.count("<br>") + 1
    assert fig.layout.margin.t >= 17 * title_lines + 20 * rows
    assert width <= nf.FIT_PX[0]


# --------------------------------------------------------------------------------------
# histograms still summarise every neuron
# --------------------------------------------------------------------------------------
def test_histograms_count_every_neuron_of_their_regions():
    rng = np.random.default_rng(3)
    n = 60
    S = rng.random((n, n))
    si, ti = rng.choice(n, 20, replace=False), rng.choice(n, 20, replace=False)
    block = layer_block_from_similarity("features.0", 1, S, si, ti, bins=8)
    fig = nf.relation_matrices([block], [], shown=4)
    totals = {}
    for t in traces(fig, "similarity-hist"):
        totals[t.meta["region"]] = int(re.search(r"total (\d+)", t.hovertext[0]).group(1))
    # matrix 1 has target rows: right strip = important target x non-important source
    assert totals == {"right": 20 * 40, "bottom": 40 * 20, "corner": 40 * 40}
    right = next(t for t in traces(fig, "similarity-hist") if t.meta["region"] == "right")
    assert "all 20 important target × non-important source" in right.hovertext[0]
    assert np.asarray(traces(fig, "similarity")[0].z).shape == (4, 4)


def test_weight_colours_span_the_weights_drawn():
    blocks, pairs = benchmark_case(n_layers=2, n_neurons=200, k=20, seed=4)
    tw = pairs[0].target
    assert tw is not None
    # an extreme weight between two important neurons that the filter hides
    far = np.flatnonzero((tw.rows == blocks[0].tgt_important[-1]) & (tw.cols == blocks[1].tgt_important[-1]))[0]
    tw.values[far] = 50.0
    shown = nf.relation_matrices(blocks, pairs, shown=5).layout.coloraxis2
    every = nf.relation_matrices(blocks, pairs).layout.coloraxis2
    assert every.cmax == 50.0 and shown.cmax < 1.0


# --------------------------------------------------------------------------------------
# colour scales
# --------------------------------------------------------------------------------------
def _grey(axis: dict, value: float) -> float:
    """Darkness in [0, 1] (0 white, 1 black) that a plotly colour axis gives ``value``."""
    t = (value - axis["cmin"]) / (axis["cmax"] - axis["cmin"])
    stops = [(float(p), _darkness(c)) for p, c in axis["colorscale"]]
    xs, ys = zip(*stops)
    return float(np.interp(min(1.0, max(0.0, t)), xs, ys))


def _darkness(colour: str) -> float:
    if colour.startswith("#"):
        r = int(colour[1:3], 16)
    else:
        r = int(float(re.findall(r"[\d.]+", colour)[0]))
    return 1.0 - r / 255.0


def _axis(fig: go.Figure, name: str) -> dict:
    return fig.layout[name].to_plotly_json()


def near_one_matrix() -> LayerBlock:
    """Similarities of 0.998 to 0.999, as measured on the benchmark case: one shade on 0-1."""
    z = np.linspace(0.998, 0.999, 36).reshape(6, 6)
    return LayerBlock("classifier.4", 1, np.arange(6), np.arange(6), z)


def test_absolute_scale_cannot_tell_them_apart():
    fig = nf.relation_matrices([near_one_matrix()], [])
    axis = _axis(fig, "coloraxis")
    assert axis["cmin"] == 0 and axis["cmax"] == 1
    assert _grey(axis, 0.999) - _grey(axis, 0.998) < 0.002  # the problem: every cell one dark grey
    assert "absolute" in fig.layout.coloraxis.colorbar.title.text


def test_min_max_spreads_each_matrix_over_the_greys():
    block = near_one_matrix()
    other = LayerBlock("classifier.6", 2, np.arange(6), np.arange(6), np.linspace(0.2, 0.5, 36).reshape(6, 6))
    fig = nf.relation_matrices([block, other], [], color_scale="minmax")
    sims = traces(fig, "similarity")
    assert len({t.coloraxis for t in sims}) == 2  # an axis a matrix
    first = _axis(fig, sims[0].coloraxis)
    assert _grey(first, 0.998) == pytest.approx(0.0) and _grey(first, 0.999) == pytest.approx(1.0)
    assert _grey(first, 0.9985) == pytest.approx(0.5, abs=1e-6)
    second = _axis(fig, sims[1].coloraxis)
    assert _grey(second, 0.2) == pytest.approx(0.0) and _grey(second, 0.5) == pytest.approx(1.0)
    # the hover still reads the raw similarity, with the digits that tell 0.998 from 0.999
    assert np.asarray(sims[0].z).max() == pytest.approx(0.999, abs=1e-6) and "%{z:.4f}" in sims[0].hovertemplate
    bar = fig.layout.coloraxis.colorbar
    assert "min–max of each matrix" in bar.title.text and list(bar.ticktext) == ["min", "", "max"]
    assert not first.get("showscale", True)  # one bar for all, in relative units


def test_deciles_spread_a_skewed_matrix_evenly():
    # most similarities at 0.999, a few low outliers: min-max leaves the bulk one shade
    rng = np.random.default_rng(5)
    z = np.r_[rng.uniform(0.9985, 0.999, 95), [0.2, 0.3, 0.4, 0.5, 0.6]].reshape(10, 10)
    block = LayerBlock("classifier.4", 1, np.arange(10), np.arange(10), z)
    mm = _axis(nf.relation_matrices([block], [], color_scale="minmax"), "coloraxis3")
    q = _axis(nf.relation_matrices([block], [], color_scale="quantile"), "coloraxis3")
    lo, med, hi = np.quantile(z, [0.1, 0.5, 0.9])
    assert _grey(mm, hi) - _grey(mm, lo) < 0.01
    assert _grey(q, med) == pytest.approx(0.5, abs=0.01)
    assert _grey(q, hi) - _grey(q, lo) == pytest.approx(0.8, abs=0.02)
    stops = [p for p, _ in q["colorscale"]]
    assert stops[0] == 0 and stops[-1] == 1 and all(b > a for a, b in zip(stops, stops[1:]))


def test_colour_axes_of_constant_and_tied_matrices_are_valid():
    const = nf.similarity_color_axis(np.full((3, 3), 0.999), "quantile")
    ties = nf.similarity_color_axis(np.r_[np.zeros(50), np.ones(50)], "quantile")
    for axis in (const, ties):
        go.layout.Coloraxis(**axis)  # plotly accepts it (stops increasing, cmin < cmax)
    with pytest.raises(ValueError, match="color_scale"):
        nf.relation_matrices([near_one_matrix()], [], color_scale="log")


def test_network_figure_passes_the_switches(tiny_cache):
    n = len(tiny_cache.layers)
    fig = nf.network_figure(tiny_cache, 1, [1, min(3, n)], shown=2, color_scale="quantile")
    assert fig.layout.meta["shown"] == 2 and fig.layout.meta["color_scale"] == "quantile"
    assert all(np.asarray(t.z).shape[0] <= 2 for t in traces(fig, "similarity"))
    assert fig.layout.width <= nf.FIT_PX[0]


def test_large_cache_figures_fit_and_stay_small(large_cache):
    """The real AlexNet cache at the paper's scale (31 classes, 4096-unit layers)."""
    n = len(large_cache.layers)
    for rng in ([1, MAX_LAYERS], [max(1, n - MAX_LAYERS + 1), n]):
        fig = nf.network_figure(large_cache, 0, rng)
        assert len(fig.to_json()) < ONE_MB
        assert fig.layout.width <= nf.FIT_PX[0] and fig.layout.height <= nf.FIT_PX[1]
        for t in traces(fig, "neuron-labels"):
            assert len(t.customdata) <= DEFAULT_SHOWN


# --------------------------------------------------------------------------------------
# the kernel heatmap's title (item 6)
# --------------------------------------------------------------------------------------
def test_kernel_title_wraps_inside_the_panel():
    """Issue 16 item 6: "kernel W[12, 3] of features.0.block.1.0" was one centred line wider than
    the detail panel's graph, cut at both ends."""
    fig = nf.kernel_heatmap(np.ones((3, 3)), "kernel W[1234, 3071] of features.0.block.1.0")
    lines = fig.layout.title.text.split("<br>")
    assert len(lines) >= 2 and " ".join(lines) == "kernel W[1234, 3071] of features.0.block.1.0"
    # the panel's graph is about 210 px wide at 1366 px (15.5rem less its padding and scroll bar)
    assert all(len(line) * 0.62 * fig.layout.title.font.size <= 200 for line in lines)
    assert fig.layout.title.x == 0 and fig.layout.title.xanchor == "left"
    assert fig.layout.margin.t >= 15 * len(lines)


# --------------------------------------------------------------------------------------
# the switches in the URL (item 7)
# --------------------------------------------------------------------------------------
LAYERS = ("features.0", "features.3", "features.6", "classifier.1", "classifier.4")


@pytest.fixture()
def space() -> StateSpace:
    return StateSpace(classes=("bike", "mug"), layers=LAYERS, neuron_counts={x: 4096 for x in LAYERS})


def test_network_keys_round_trip(space):
    state = State(1, (1,), LAYERS[:2], shown=None, scale="quantile", hide=("nonimportant", "source"))
    search = to_search(state, space)
    assert "shown=all" in search and "scale=quantile" in search and "hide=nonimportant,source" in search
    assert parse_state(search, space) == (state, [])
    counted = State(1, (1,), LAYERS[:2], shown=64, scale="minmax")
    assert parse_state(to_search(counted, space), space) == (counted, [])


def test_network_defaults_are_not_written(space):
    search = to_search(State(0, (0,), LAYERS[:3]), space)
    assert not re.search(r"(shown|scale|hide)=", search)
    state, notices = parse_state(search, space)
    assert (state.shown, state.scale, state.hide, notices) == (DEFAULT_SHOWN, "absolute", (), [])


@pytest.mark.parametrize("search, fragment", [
    ("?shown=0", "neurons shown"), ("?shown=lots", "neurons shown"), ("?shown=5000", "neurons shown"),
    ("?scale=log", "colour scale"), ("?hide=source,everything", "hide"),
])
def test_bad_network_values_fall_back_with_a_notice(space, search, fragment):
    state, notices = parse_state(search, space)
    assert len(notices) == 1 and fragment in notices[0]
    assert (state.shown, state.scale, state.hide) == (DEFAULT_SHOWN, "absolute", ())


def test_switches_follow_the_url(space):
    search = "?class=mug&shown=all&scale=minmax&hide=source"
    out = cn.switches_url(space, {ids.URL}, search, DEFAULT_SHOWN, "absolute", False, False)
    assert out[0] is no_update  # the URL fired: it is not written back
    assert out[2:] == ("all", "minmax", no_update, True)
    # a link's count outside the choices becomes an option of its own
    out = cn.switches_url(space, set(), "?shown=50", DEFAULT_SHOWN, "absolute", False, False)
    assert out[2] == 50 and {"label": "top 50", "value": 50} in out[1]
    # nothing differs: nothing is sent
    out = cn.switches_url(space, {ids.URL}, "?shown=all", "all", "absolute", False, False)
    assert all(v is no_update for v in out)


def test_switches_write_the_url(space):
    search = "?class=mug&layers=features.3,features.6"
    out = cn.switches_url(space, {ly.SCALE}, search, 64, "quantile", True, False)
    state, _ = parse_state(out[0], space)
    assert (state.shown, state.scale, state.hide, state.layers) == (64, "quantile", ("nonimportant",),
                                                                    ("features.3", "features.6"))
    assert all(v is no_update for v in out[1:])
    # the same values as the URL: no write (no ping-pong between callbacks)
    same = update_search(search, space, shown=64, scale="quantile", hide=("nonimportant",))
    assert cn.switches_url(space, {ly.SHOWN}, same, 64, "quantile", True, False)[0] is no_update
    assert cn.shown_count("all") is None and cn.shown_count("junk") == DEFAULT_SHOWN and cn.shown_count(16) == 16


def test_layout_has_the_switches(tiny_cache):
    from tests.components import walk

    tree = ly.layout(tiny_cache)
    found = {getattr(c, "id", None): c for c in walk(tree)}
    assert found[ly.SHOWN].value == DEFAULT_SHOWN and found[ly.SCALE].value == "absolute"
    assert [o["value"] for o in found[ly.SCALE].options] == list(nf.COLOR_SCALES)
    assert any("rank" in (getattr(c, "children", "") or "") for c in walk(tree) if isinstance(
        getattr(c, "children", None), str))



def test_weight_block_titles_stay_inside_the_fitted_figure(bench):
    """At 1366 px the last block's title ran off the figure's right edge and the last lower-left
    title under the colour bars: titles are shortened or right-aligned to fit, and the plot
    keeps a text line under the last block whatever the cell size."""
    blocks, pairs = bench
    fig = fitted(blocks[:MAX_LAYERS], pairs[:MAX_LAYERS - 1], shown=DEFAULT_SHOWN)
    cell = fig.layout.meta["cell_px"]
    (x_lo, x_hi), y_hi = fig.layout.xaxis.range, fig.layout.yaxis.range[0]
    titles = [a for a in fig.layout.annotations if a.hovertext and "weights L" in a.hovertext]
    assert len(titles) == 2 * (MAX_LAYERS - 1)
    for a in titles:
        width = len(re.sub("<[^>]+>", "", a.text)) * nf._CHAR_EM * a.font.size / cell
        left, right = (a.x, a.x + width) if a.xanchor == "left" else (a.x - width, a.x)
        assert x_lo <= left and right <= x_hi + 1e-9, a.text
        if a.yanchor == "top":  # a lower-left title: a text line below its y
            assert a.y + 14 / cell <= y_hi, a.text
    assert any(a.text == f"<b>{a.hovertext}</b>" for a in titles)  # the whole title where it fits
