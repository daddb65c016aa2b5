"""Feature view figures (section 5.4.2)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboard.theme import SOURCE_COLOR, TARGET_COLOR, is_empty_figure
from dashboard.views.features.figures import (
    discriminability_biplot,
    mirrored_histogram,
    ranking_rows,
)


def test_mirrored_histogram_source_above_target_below():
    rng = np.random.default_rng(0)
    fig = mirrored_histogram(rng.normal(size=300), rng.normal(1, 1, size=80), bins=12)
    src, tgt = fig.data
    assert src.type == tgt.type == "bar"
    assert src.marker.color == SOURCE_COLOR and tgt.marker.color == TARGET_COLOR
    assert np.all(np.asarray(src.y) >= 0) and np.all(np.asarray(tgt.y) <= 0)
    assert len(src.x) == 12
    # normalised per domain: each side sums to one
    assert np.sum(src.y) == pytest.approx(1) and np.sum(tgt.y) == pytest.approx(-1)
    assert fig.layout.height == 60 and not fig.layout.xaxis.visible and not fig.layout.showlegend


def test_mirrored_histogram_edge_cases():
    assert is_empty_figure(mirrored_histogram([], []))
    one = mirrored_histogram([1.0, 1.0], [])  # constant values, one empty domain
    assert np.sum(one.data[0].y) == pytest.approx(1) and np.sum(one.data[1].y) == 0
    raw = mirrored_histogram([0, 1, 1], [0], bins=2, normalize=False)
    assert list(raw.data[0].y) == [1, 2] and list(raw.data[1].y) == [-1, 0]


def biplot_inputs():
    rng = np.random.default_rng(1)
    coords = np.concatenate([rng.normal([-1, 0], 0.5, (30, 2)), rng.normal([1, 0], 0.5, (20, 2))])
    domains = ["source"] * 30 + ["target"] * 20
    ids = np.arange(50) + 1000
    axes = np.array([[0.5, 0.1], [-0.2, 0.3], [0.05, -0.4], [1.0, 0.0]])
    labels = ["L1 #3", "L2 #7", "L5 #0", "L7 #12"]
    return coords, domains, ids, axes, labels


def test_biplot_points_axes_and_labels():
    coords, domains, ids, axes, labels = biplot_inputs()
    fig = discriminability_biplot(coords, domains, ids, axes, labels, checked=[0, 1, 3], cv_accuracy=0.91)
    pts = {t.meta["domain"]: t for t in fig.data if (t.meta or {}).get("role") == "instances"}
    assert pts["source"].type == "scattergl"
    assert pts["source"].marker.symbol == "x" and pts["source"].marker.color == SOURCE_COLOR
    assert pts["target"].marker.symbol == "circle" and pts["target"].marker.color == TARGET_COLOR
    assert list(pts["source"].customdata) == list(ids[:30])
    assert "decision direction" in fig.layout.xaxis.title.text
    lab = [t for t in fig.data if (t.meta or {}).get("role") == "axes-labels"][0]
    assert list(lab.text) == ["L1 #3", "L2 #7", "L7 #12"]
    tips = np.column_stack([lab.x, lab.y])
    # one common scale: directions and relative horizontal lengths are kept
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = tips / axes[[0, 1, 3]]
    assert np.allclose(ratio[np.isfinite(ratio)], ratio[0, 0])
    # and the axes fit inside the point cloud
    assert np.abs(tips[:, 0]).max() <= np.abs(coords[:, 0]).max() + 1e-9
    assert np.abs(tips[:, 1]).max() <= np.abs(coords[:, 1]).max() + 1e-9
    lines = [t for t in fig.data if (t.meta or {}).get("role") == "axes-lines"][0]
    assert sum(v is None for v in lines.x) == 3  # three segments from the origin
    assert any("91%" in a.text for a in fig.layout.annotations)


def test_biplot_empty_and_unchecked():
    coords, domains, ids, axes, labels = biplot_inputs()
    assert is_empty_figure(discriminability_biplot(np.zeros((0, 2)), [], [], axes, labels, [0]))
    fig = discriminability_biplot(coords, domains, ids, axes, labels, checked=[], cv_accuracy=None)
    assert not [t for t in fig.data if (t.meta or {}).get("role") == "axes-lines"]
    fig = discriminability_biplot(coords, domains, ids, axes, labels, checked=[99, -1])  # out of range: ignored
    assert not [t for t in fig.data if (t.meta or {}).get("role") == "axes-lines"]
    with pytest.raises(ValueError):
        discriminability_biplot(coords, domains[:3], ids, axes, labels, [0])


def test_ranking_rows_order_and_checks():
    table = pd.DataFrame(dict(layer=["features.0", "features.3", "classifier.1"], layer_number=[1, 2, 6],
                              neuron=[4, 9, 2], discriminability=[0.1, -0.9, 0.5]))
    rng = np.random.default_rng(0)
    src = [rng.normal(size=10) for _ in range(3)]
    tgt = [rng.normal(size=8) for _ in range(3)]
    rows = ranking_rows(table, src, tgt, top_checked=2)
    assert [r["label"] for r in rows] == ["L2 #9", "L6 #2", "L1 #4"]  # by |u|, most discriminative first
    assert [r["checked"] for r in rows] == [True, True, False]
    assert rows[0]["index"] == 1 and rows[0]["histogram"].data[0].type == "bar"
    asc = ranking_rows(table, order="ascending")
    assert [r["neuron"] for r in asc] == [4, 2, 9] and asc[0]["histogram"] is None
    assert ranking_rows(pd.DataFrame()) == []


def test_figures_are_valid():
    import plotly.graph_objects as go

    coords, domains, ids, axes, labels = biplot_inputs()
    for fig in (discriminability_biplot(coords, domains, ids, axes, labels, [0, 2], 0.7),
                mirrored_histogram([1, 2, 3], [2, 3])):
        go.Figure(fig.to_dict())


# --- issue 16: u's precision, the labels that never stack, the find box's ring, the checked projection ----

@pytest.mark.parametrize("u", [0.003, -0.00031, 2.7e-7, -1e-12, 0.5, -0.1804, 123.0])
def test_u_never_reads_as_zero(u):
    from dashboard.views.features.markup import format_u

    text = format_u(u)
    assert float(text) != 0 and text[0] == ("+" if u > 0 else "-")
    assert float(text) == pytest.approx(u, rel=0.01)  # three significant figures


def test_u_formatting_of_zero_and_a_column_of_tiny_values():
    from dashboard.views.features.markup import format_u

    assert format_u(0.0) == "0"
    column = [format_u(v) for v in np.linspace(-0.003, 0.003, 13) if v != 0]
    assert len(set(column)) == len(column)  # distinct values stay distinct, none is +0.000 / -0.000
    assert not any(t in ("+0.000", "-0.000") for t in column)


def test_axis_labels_never_stack():
    coords, domains, ids, _, _ = biplot_inputs()
    # five nearly parallel neurons: their tips (and labels) would print on top of each other
    axes = np.array([[1.0, 0.10], [0.98, 0.11], [0.97, 0.09], [1.01, 0.12], [-0.5, 0.3]])
    names = [f"L6 #{k}" for k in range(5)]
    fig = discriminability_biplot(coords, domains, ids, axes, names, checked=range(5), height=360)
    labels = [a for a in fig.layout.annotations if (a.name or "").startswith("axis label")]
    assert sorted(a.text for a in labels) == sorted(names)
    ys = {}
    for a in labels:  # the label's screen position: its tip in pixels plus its offset
        ys.setdefault(a.xanchor, []).append(a.ay - a.y * (360 - 86) / (2 * fig.layout.yaxis.range[1]))
    for side in ys.values():
        side = sorted(side)
        assert all(b - a >= 14 - 1e-6 for a, b in zip(side, side[1:]))
    # short axis titles; the legend sits above the plot, not over it
    assert len(fig.layout.xaxis.title.text) <= 45 and len(fig.layout.yaxis.title.text) <= 20
    assert fig.layout.legend.yanchor == "bottom" and fig.layout.legend.y == 1


def test_highlight_ring_overlay():
    from dashboard.highlight import HIGHLIGHT_COLOR

    coords, domains, ids, axes, labels = biplot_inputs()
    fig = discriminability_biplot(coords, domains, ids, axes, labels, [0], highlight=[1003, 1040, 99999])
    ring = [t for t in fig.data if (t.meta or {}).get("role") == "highlight"]
    assert len(ring) == 1 and fig.data.index(ring[0]) == 2  # right after the two instance traces
    np.testing.assert_allclose(np.column_stack([ring[0].x, ring[0].y]), coords[[3, 40]], rtol=1e-6)
    assert list(ring[0].customdata) == [1003, 1040]
    assert ring[0].type == "scattergl"  # drawn over the WebGL points, not beneath them
    assert ring[0].marker.symbol == "circle-open" and ring[0].marker.color == HIGHLIGHT_COLOR
    assert ring[0].showlegend
    none = discriminability_biplot(coords, domains, ids, axes, labels, [0], highlight=None)
    empty = [t for t in none.data if (t.meta or {}).get("role") == "highlight"][0]
    assert len(empty.x) == 0 and not empty.showlegend  # present, so a find patches it alone


def test_cv_accuracy_beside_its_null():
    coords, domains, ids, axes, labels = biplot_inputs()
    fig = discriminability_biplot(coords, domains, ids, axes, labels, [0], cv_accuracy=1.0, null_mean=0.52)
    assert any("100% CV accuracy (null 52%)" in a.text for a in fig.layout.annotations)


def test_checked_projections_are_kept_in_a_bounded_memo(tiny_cache, monkeypatch):
    """Issue 15: projections are memoised per set of checks, which a user can vary without end; a worker keeps
    only the newest few (an LRU), and one asked again is the same object (not recomputed)."""
    from dashboard.views.features import data as fd
    from dashboard.views.features import figures as ff

    monkeypatch.setattr(ff, "PROJECTION_MEMO", 3)
    c = next(c for c in range(len(tiny_cache.classes)) if fd.discriminability(tiny_cache, "target", c).ok)
    n = fd.discriminability(tiny_cache, "target", c).neurons
    keys = [fd.neuron_key(a, k) for a, k in zip(n["layer"], n["neuron"])]
    sets = [tuple(keys[i:i + 2]) for i in range(6)]
    first = ff._projection(tiny_cache, "target", c, sets[0])
    assert ff._projection(tiny_cache, "target", c, sets[0]) is first
    for s in sets[1:]:
        ff._projection(tiny_cache, "target", c, s)
    memo = tiny_cache.memo(("features.projections",), dict)
    assert len(memo) == 3 and ("target", c, sets[0]) not in memo and ("target", c, sets[-1]) in memo
    np.testing.assert_allclose(ff._projection(tiny_cache, "target", c, sets[0])[0], first[0])
