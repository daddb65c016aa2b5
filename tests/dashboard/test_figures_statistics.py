"""Statistics view figures (section 5.1) and the shared theme."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboard.theme import (
    GRAPH_CONFIG,
    GRAPH_CONFIG_PNG,
    SOURCE_COLOR,
    TARGET_COLOR,
    class_palette,
    empty_figure,
    graph_config,
    is_empty_figure,
)
from dashboard.views.statistics.data import transferability_score
from dashboard.views.statistics.figures import accuracy_chart, transferability_badge


def history(n_src=4, n_tgt=3):
    rows = []
    for e in range(1, n_src + 1):
        rows.append(dict(epoch=e, model="source", source_train=0.5 + 0.1 * e, target_train=0.2 + 0.05 * e,
                         val=0.4 + 0.1 * e))
    for e in range(1, n_tgt + 1):
        rows.append(dict(epoch=e, model="target", source_train=0.8 - 0.05 * e, target_train=0.5 + 0.1 * e,
                         val=0.45 + 0.1 * e))
    return pd.DataFrame(rows)


def test_six_series_with_model_symbols_and_domain_colours():
    fig = accuracy_chart(history())
    assert len(fig.data) == 6
    assert all(t.type == "scatter" and "markers" in t.mode and "lines" in t.mode for t in fig.data)
    by_name = {t.name: t for t in fig.data}
    assert set(by_name) == {
        "source train (S)", "target train (S)", "source val (S)",
        "source train (T)", "target train (T)", "target val (T)",
    }
    for name, t in by_name.items():
        assert t.marker.symbol == ("x" if name.endswith("(S)") else "circle")
        assert t.line.color == (SOURCE_COLOR if name.startswith("source") else TARGET_COLOR)
        assert t.line.dash == ("dash" if " val " in name else "solid")
    # 'val' is the validation set of the model's own domain
    assert by_name["source val (S)"].meta["dataset"] == "source_val"
    assert by_name["target val (T)"].meta["dataset"] == "target_val"
    assert list(by_name["target train (T)"].x) == [1, 2, 3]
    assert fig.layout.yaxis.range[0] == 0 and fig.layout.yaxis.range[1] >= 1
    assert fig.layout.xaxis.title.text == "epoch"


def test_missing_values_are_skipped_and_empty_states():
    h = history()
    h.loc[h["model"] == "source", "target_train"] = np.nan
    fig = accuracy_chart(h)
    assert len(fig.data) == 5
    assert is_empty_figure(accuracy_chart(pd.DataFrame()))
    assert is_empty_figure(accuracy_chart(None))
    assert is_empty_figure(accuracy_chart(h.drop(columns=["val"])))
    assert "val" in accuracy_chart(h.drop(columns=["val"])).layout.annotations[0].text


@pytest.mark.parametrize(
    "score,text,colour,sign",
    [(0.4321, "+0.43", "#2ca02c", 1), (-0.126, "-0.13", "#d62728", -1), (0.0, "±0.00", "#7f7f7f", 0),
     (0.001, "±0.00", "#7f7f7f", 0), (None, "n/a", "#7f7f7f", None), (float("nan"), "n/a", "#7f7f7f", None)],
)
def test_transferability_badge(score, text, colour, sign):
    b = transferability_badge(score)
    assert (b["text"], b["color"], b["sign"]) == (text, colour, sign)
    assert b["title"]


def test_transferability_score():
    h = history()
    # best target-model val (0.75) - best source-model accuracy on target data (0.4)
    assert transferability_score(h) == pytest.approx(0.75 - 0.4)
    assert transferability_score(pd.DataFrame()) is None


def test_theme_configs_export_svg_or_png():
    assert GRAPH_CONFIG["toImageButtonOptions"]["format"] == "svg"
    assert GRAPH_CONFIG_PNG["toImageButtonOptions"]["format"] == "png"
    assert graph_config("acc")["toImageButtonOptions"]["filename"] == "acc"
    with pytest.raises(ValueError):
        graph_config(image_format="pdf")


def test_class_palette_distinct_and_free_of_domain_colours():
    for n in (0, 1, 10, 31, 60):
        p = class_palette(n)
        assert len(p) == n and len(set(p)) == n
        assert SOURCE_COLOR not in p and TARGET_COLOR not in p


def test_empty_figure_states_its_message():
    fig = empty_figure("Class 'bike' has no source instances", height=200)
    assert is_empty_figure(fig)
    a = fig.layout.annotations[0]
    assert a.text == "Class 'bike' has no source instances"
    assert (a.x, a.y, a.xref, a.yref) == (0.5, 0.5, "paper", "paper")
    assert fig.layout.height == 200 and not fig.data
