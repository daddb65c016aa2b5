"""Instance view: the t-SNE scatter (section 5.2)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dashboard.lookups import _lab, distinct_class_palette
from dashboard.theme import MISPREDICTED_COLOR, SOURCE_COLOR, TARGET_COLOR, is_empty_figure
from dashboard.views.instances.figures import (
    PALETTE_SIZE,
    SCATTER_HEIGHT,
    TIER_SYMBOLS,
    class_color_map,
    class_style,
    many_class_palette,
    tsne_scatter,
)
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
        assert t.marker.line.color == MISPREDICTED_COLOR
        for i, w in zip(t.customdata, t.marker.line.width):
            if i in wrong_ids:
                seen.add(i)
                assert w > 0
            else:
                assert w == 0
    assert seen == wrong_ids
    keys = {k.name: k for k in traces(fig, "legend-key")}
    assert set(keys) == {"source", "target", "mispredicted"}
    assert all(k.x == (None,) for k in keys.values())  # keys only: no point to select or click


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


# --- 31 classes (the benchmark case: Office-31, 1,705 instances) ---------------------------

def office31_projection(n=1705, n_classes=31, seed=0):
    rng = np.random.default_rng(seed)
    label = np.arange(n) % n_classes
    domain = np.where(rng.random(n) < 0.55, "source", "target")
    pred = np.where(rng.random(n) < 0.8, label, rng.integers(0, n_classes, n))
    return pd.DataFrame(dict(id=np.arange(n), x=rng.normal(size=n), y=rng.normal(size=n), label=label,
                             label_name=[f"class_{v:02d}" for v in label], domain=domain, target_pred=pred))


def test_31_classes_get_31_distinct_colours_far_from_the_domain_colours():
    df = office31_projection()
    fig = tsne_scatter(df, class_color_map(range(31)), height=SCATTER_HEIGHT)
    colour = {t.meta["label"]: t.marker.color for t in traces(fig, "instances")}
    assert len(colour) == 31 and len(set(colour.values())) == 31
    lab = [_lab(c) for c in many_class_palette()]
    gaps = [float(np.linalg.norm(a - b)) for i, a in enumerate(lab) for b in lab[i + 1:]]
    assert min(gaps) > 20  # CIELAB distance: no two classes alike (the shared 31-colour palette goes down to 5.5)
    for domain_colour in (SOURCE_COLOR, TARGET_COLOR):
        assert min(float(np.linalg.norm(x - _lab(domain_colour))) for x in lab) >= 30
    # a class keeps its colour whatever the selection, and up to 16 classes the shared palette is kept
    one = tsne_scatter(df[df.label == 17], class_color_map(range(31)))
    assert traces(one, "instances")[0].marker.color == colour[17]
    assert [class_style(i, 10)[0] for i in range(10)] == distinct_class_palette(10)


def test_beyond_the_palette_classes_change_shape_and_domains_stay_apart():
    n = PALETTE_SIZE + 5
    styles = [class_style(i, n) for i in range(n)]
    assert len(set(styles)) == n  # (colour, shapes) unique for every class
    assert styles[PALETTE_SIZE][0] == styles[0][0] and styles[PALETTE_SIZE][1] == TIER_SYMBOLS[1]
    assert all(src != tgt for src, tgt in TIER_SYMBOLS)
    df = office31_projection(n=400, n_classes=n)
    fig = tsne_scatter(df)
    t = traces(fig, "instances", label=PALETTE_SIZE + 1, domain="target")[0]
    assert t.marker.symbol == TIER_SYMBOLS[1][1]


def _plot_area_height(fig):
    m = fig.layout.margin
    return fig.layout.height - m.t - m.b


def test_31_classes_legend_is_outside_the_plot_and_the_map_keeps_its_size():
    df = office31_projection()
    many = tsne_scatter(df, height=SCATTER_HEIGHT)
    few = tsne_scatter(df[df.label < 2], height=SCATTER_HEIGHT)
    for fig in (many, few):
        assert not any(t.showlegend is not False for t in traces(fig, "instances"))  # the class key is outside
        legend = fig.layout.legend
        assert legend.orientation == "h" and legend.y <= 0 and legend.yanchor == "top"  # under the plot area
        assert len(traces(fig, "legend-key")) <= 4
    assert _plot_area_height(many) == _plot_area_height(few) >= SCATTER_HEIGHT - 40


def test_31_class_figure_bytes_and_rows():
    import plotly.io as pio

    df = office31_projection()
    fig = tsne_scatter(df, height=SCATTER_HEIGHT)
    pts = traces(fig, "instances")
    assert len(pts) == 62 and sum(len(t.x) for t in pts) == 1705
    size = len(pio.to_json(fig))
    # hover texts included (the dashboard strips them); about 300 KB, a per-point border colour list made it 320 KB
    assert size < 350_000, size


def test_highlight_rings_the_found_instances_on_the_map():
    df = projection()
    fig = tsne_scatter(df, highlight=[101, 103, 999])  # 999 is not on this map
    ring = traces(fig, "highlight")
    assert len(ring) == 1 and sorted(ring[0].customdata) == [101, 103]
    assert fig.data[-1 - len(traces(fig, "legend-key"))] is ring[0]  # drawn after (over) every instance trace
    assert ring[0].marker.symbol == "circle-open" and ring[0].marker.size > traces(fig, "instances")[0].marker.size
    at = {i: (x, y) for i, x, y in zip(df.id, df.x, df.y)}
    assert [at[i] for i in ring[0].customdata] == list(zip(ring[0].x, ring[0].y))
    # the legend stays one row: the rings add no key (the map keeps its size when a search rings points)
    assert [k.name for k in traces(fig, "legend-key")] == [k.name for k in traces(tsne_scatter(df), "legend-key")]
    assert not traces(tsne_scatter(df, highlight=[999]), "highlight")
    assert not traces(tsne_scatter(df, highlight=None), "highlight")


def test_every_view_gives_a_class_the_instance_views_colour_at_31_classes():
    """The timeline, the statistics and the instance view read one palette: at 31 classes the shared
    class_colors are the instance view's 31 distinct colours, not the theme's 16 repeating."""
    from types import SimpleNamespace

    from dashboard.lookups import class_colors

    fake = SimpleNamespace(classes=[f"c{i}" for i in range(31)])
    shared = class_colors(fake)  # type: ignore[arg-type]
    assert len(set(shared.values())) == 31
    assert shared == {i: class_style(i, 31)[0] for i in range(31)}
