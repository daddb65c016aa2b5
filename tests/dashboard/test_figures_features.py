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
