"""The neuron-change tab: most changed neurons per layer, gray ones left out unless asked for."""

from __future__ import annotations

import pandas as pd

from dashboard.views.neuron_change.data import ALL, PER_LAYER, changed_rows
from dashboard.views.neuron_change.markup import change_list


def _frame() -> pd.DataFrame:
    return pd.DataFrame({
        "layer": ["a", "a", "a", "b", "b"], "neuron": [0, 1, 2, 0, 1],
        "similarity": [0.9, 0.1, 0.5, 0.3, float("nan")],
        "colourfulness_source": [1.0] * 5, "colourfulness_target": [1.0] * 5,
        "gray_source": [False, True, False, False, False], "gray_target": [False] * 5,
        "most_changed_rank": [-1] * 5})


def test_rows_order_and_gray_filter():
    rows = changed_rows(_frame(), ["a", "b"], ALL, show_gray=False)
    assert list(zip(rows.layer, rows.neuron)) == [("a", 2), ("a", 0), ("b", 0)]
    with_gray = changed_rows(_frame(), ["a", "b"], ALL, show_gray=True)
    assert list(zip(with_gray.layer, with_gray.neuron))[:2] == [("a", 1), ("a", 2)]
    only_b = changed_rows(_frame(), ["a", "b"], "b", show_gray=False)
    assert list(only_b.neuron) == [0]


def test_list_on_a_cache(tiny_cache):
    out = change_list(tiny_cache, ALL, True)  # a 4-step tiny render is mostly gray
    rows = out.children[1].children
    assert 0 < len(rows) <= PER_LAYER * len(tiny_cache.layers)
    srcs = [td.children.src for td in rows[0].children if hasattr(td.children, "src")]
    assert srcs[0].startswith("/featvis/source/") and srcs[1].startswith("/featvis/target/")
