"""The neuron panel's most-similar-neurons table as a dash-ag-grid grid (issue 13: one table component)."""

from __future__ import annotations

import pytest

from dashboard.routes import featvis_path, thumb_path
from dashboard.views.network import data as nd
from dashboard.views.network import markup as nm
from dashboard.views.network.similar_grid import BAR_CHARS, GRID, bar, similar_rows
from tests.components import find


@pytest.mark.parametrize("value, text", [
    (1.0, "█████"), (0.0, "     "), (0.5, "██▌  "), (0.1, "▌    "), (0.025, "▏    "), (1.7, "█████"), (-0.3, "     "),
])
def test_bar_is_the_similarity_in_eighths(value, text):
    assert bar(value) == text and len(bar(value)) == BAR_CHARS


def test_rows_carry_each_neuron_its_picture_and_rank():
    similar = [{"neuron": 4, "similarity": 0.91234, "rank": 2, "has_featvis": True, "top_id": 7},
               {"neuron": 9, "similarity": 0.5, "rank": None, "has_featvis": False, "top_id": 13},
               {"neuron": 1, "similarity": 0.25, "rank": None, "has_featvis": False, "top_id": None}]
    rows = similar_rows(similar, "source", "features.3", 2, lambda p: "/app/" + p.lstrip("/"))
    assert [r["neuron"] for r in rows] == ["L2 #4", "L2 #9", "L2 #1"]
    assert [r["rank"] for r in rows] == ["r2", "", ""]
    assert [r["similarity"] for r in rows] == [0.912, 0.5, 0.25]
    assert rows[0]["image"].endswith("(/app/" + featvis_path("source", "features.3", 4).lstrip("/") + ")")
    assert "(/app/" + thumb_path(13).lstrip("/") in rows[1]["image"]
    assert rows[2]["image"] == ""


def test_the_neuron_panel_holds_the_grid(tiny_cache):
    c = 0
    layer = tiny_cache.layers[1]
    n = int(nd.class_important(tiny_cache, "target", layer, c)[0])
    detail = nd.neuron_detail(tiny_cache, c, "target", layer, n)
    assert detail.similar, "the tiny cache has similarity data"
    grid = find(nm.neuron_panel(detail, "x", tiny_cache.domains), GRID)
    assert [r["neuron"] for r in grid.rowData] == [f"L{detail.number} #{int(s['neuron'])}" for s in detail.similar]
    assert [c["field"] for c in grid.columnDefs] == ["neuron", "rank", "similarity", "bar", "image"]
    assert grid.columnDefs[-1]["cellRenderer"] == "markdown"
