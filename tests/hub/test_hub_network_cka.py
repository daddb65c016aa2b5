"""The CKA heatmap beside the network relation view (issue 14, item 4, the dashboard side): rows the source
model's layers, columns the target model's, the diagonal outlined, the domain toggle, an empty state for a
cache built before the cka stage."""

from __future__ import annotations

import numpy as np

from dashboard.theme import is_empty_figure
from dashboard.views.network.data import CkaMatrix, cka_matrix
from dashboard.views.network.figures import cka_heatmap
from layouts import network as ly
from transferviz.cache import Cache


def test_heatmap_draws_the_matrix_source_rows_target_columns_and_outlines_the_diagonal():
    m = np.array([[1.0, 0.2, 0.1], [0.3, 0.8, 0.4], [0.0, 0.5, 0.6]])
    fig = cka_heatmap(CkaMatrix(m, ["a", "b", "c"], "target"), ["L1", "L2", "L3"],
                      ["L1 = a", "L2 = b", "L3 = c"])
    heat = fig.data[0]
    np.testing.assert_array_equal(np.asarray(heat.z), m)  # z[i][j]: source layer i vs target layer j
    assert heat.customdata[1][2] == "source L2 = b<br>target L3 = c"
    assert (heat.zmin, heat.zmax) == (0.0, 1.0)
    assert fig.layout.yaxis.title.text == "source model layer" and fig.layout.xaxis.title.text == "target model layer"
    assert fig.layout.yaxis.autorange == "reversed"  # L1 at the top, as the relation matrices read
    outlined = sorted((s.x0 + 0.5, s.y0 + 0.5) for s in fig.layout.shapes)
    assert outlined == [(0.0, 0.0), (1.0, 1.0), (2.0, 2.0)]
    assert list(fig.layout.xaxis.ticktext) == ["L1", "L2", "L3"]
    assert fig.layout.meta["domain"] == "target"


def test_no_cka_gives_the_empty_state_with_the_fix():
    fig = cka_heatmap(None, [], [])
    assert is_empty_figure(fig) and "rebuild" in fig.layout.meta["message"]


def test_the_view_reads_the_cache_s_matrix_for_each_domain(three_runs):
    alpha = Cache.open(three_runs / "alpha")
    n = len(alpha.layers)
    target = cka_matrix(alpha, "target")
    source = cka_matrix(alpha, "source")
    assert target is not None and source is not None
    np.testing.assert_allclose(np.diagonal(target.values), 1.0 - 0.1 * np.arange(n))
    np.testing.assert_allclose(source.values, 0.5 * target.values)
    assert cka_matrix(alpha, "anything else").domain == "target"  # a crafted request: the default
    fig = ly.cka_figure(alpha, "source")
    np.testing.assert_allclose(np.asarray(fig.data[0].z), source.values)
    assert list(fig.layout.xaxis.ticktext) == [f"L{i + 1}" for i in range(n)]
    gamma = Cache.open(three_runs / "gamma")  # built before the stage
    assert cka_matrix(gamma, "target") is None and is_empty_figure(ly.cka_figure(gamma, "target"))
    box = str(ly.cka_box(alpha))
    assert ly.CKA_DOMAIN in box and "diagonal" in box
