"""Instance view: the t-SNE scatter (section 5.2)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dashboard.theme import MISPREDICTED_COLOR, is_empty_figure
from dashboard.views.instances.figures import class_color_map, tsne_scatter
from tests.components import traces


def projection():
    rng = np.random.default_rng(0)
    n = 40
    label = np.array([0, 3] * (n // 2))
    domain = np.array(["source"] * (n // 2) + ["target"] * (n // 2))
    pred = label.copy()
    pred[[1, 5, 30, 33]] = 7  # four mispredictions
    return pd.DataFrame(
        dict(id=np.arange(100, 100 + n), x=rng.normal(size=n), y=rng.normal(size=n), label=label,
             label_name=np.where(label == 0, "bike", "phone"), domain=domain, target_pred=pred)
    )


def test_webgl_traces_per_class_and_domain():
    df = projection()
    colours = class_color_map(range(10))
    fig = tsne_scatter(df, colours, class_names={7: "mug"})
    ts = traces(fig, "instances")
    assert all(t.type == "scattergl" for t in ts)
    assert {(t.meta["label"], t.meta["domain"]) for t in ts} == {
        (0, "source"), (0, "target"), (3, "source"), (3, "target")
    }
    for t in ts:
        assert t.marker.symbol == ("x" if t.meta["domain"] == "source" else "circle")
        assert t.marker.color == colours[t.meta["label"]]
    assert sum(len(t.x) for t in ts) == len(df)


def test_mispredicted_points_get_a_dark_grey_border_and_ids_in_customdata():
    df = projection()
    fig = tsne_scatter(df)
    wrong_ids = set(df.loc[df.target_pred != df.label, "id"])
    seen = set()
    for t in traces(fig, "instances"):
        for i, c, w in zip(t.customdata, t.marker.line.color, t.marker.line.width):
            if i in wrong_ids:
                seen.add(i)
                assert c == MISPREDICTED_COLOR and w > 0
            else:
                assert w == 0
    assert seen == wrong_ids
    keys = traces(fig, "legend-key")
    assert len(keys) == 1 and keys[0].x == (None,)


def test_hover_names_domain_truth_and_prediction():
    df = projection()
    fig = tsne_scatter(df, class_names={7: "mug"})
    t = traces(fig, "instances", label=3, domain="source")[0]
    k = list(t.customdata).index(101)  # id 101: label 3, source, predicted 7
    assert "source" in t.hovertext[k] and "phone" in t.hovertext[k] and "mug" in t.hovertext[k]
    assert t.hovertemplate.startswith("%{hovertext}")


def test_empty_and_missing_domain_states():
    assert is_empty_figure(tsne_scatter(projection().iloc[:0]))
    assert is_empty_figure(tsne_scatter(None))
    df = projection()
    only_target = df[~((df.label == 0) & (df.domain == "source"))]
    fig = tsne_scatter(only_target)
    assert "Class 'bike' has no source instances" in fig.layout.annotations[0].text


def test_colours_stay_stable_when_selection_changes():
    df = projection()
    colours = class_color_map(range(10))
    one = tsne_scatter(df[df.label == 3], colours)
    both = tsne_scatter(df, colours)
    c1 = {t.meta["label"]: t.marker.color for t in traces(one, "instances")}
    c2 = {t.meta["label"]: t.marker.color for t in traces(both, "instances")}
    assert c1[3] == c2[3]
    # labels coming back as strings still find their colour
    assert tsne_scatter(df.assign(label=df.label.astype(str)), {"3": "#123456", "0": "#654321"})


def test_figure_is_valid_and_survives_odd_predictions():
    import plotly.graph_objects as go
    import plotly.io as pio

    df = projection()
    df["target_pred"] = df["target_pred"].astype(float)
    df.loc[3, "target_pred"] = np.nan  # no prediction recorded
    fig = tsne_scatter(df)
    go.Figure(fig.to_dict())  # the builder skips per-point validation for speed; validate once here
    pio.to_json(fig)
    # a new class selection gets a new uirevision (zoom resets), the same one keeps it
    assert tsne_scatter(df).layout.uirevision == fig.layout.uirevision
    assert tsne_scatter(df[df.label == 0]).layout.uirevision != fig.layout.uirevision
