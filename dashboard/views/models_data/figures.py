"""Models & data preview: weight change per layer and class counts per domain and split.

Builders take plain DataFrames (shaped by ``dashboard/views/models_data/data.py``), never the cache.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from dashboard.theme import (
    DOMAIN_COLORS,
    DOMAIN_LIGHT,
    NEUTRAL_COLOR,
    apply_theme,
    empty_figure,
)

#: Analysed layers in a dark grey, other modules with parameters (the head) lighter: weight change
#: compares the two models, so neither domain colour fits.
ANALYSED_BAR = "#555555"
OTHER_BAR = "#b8b8b8"
#: Up to this many bars, the modules that are not analysed layers are ticked by name too.
NAMED_TICKS = 12


def weight_change_chart(layers: pd.DataFrame, *, height: int = 190) -> go.Figure:
    """Relative L2 weight change (source -> target) of each module with parameters, in forward order.

    ``layers`` has ``label`` (x tick, e.g. ``"L3"`` or the module name), ``name``, ``type``,
    ``weight_change`` and ``analysed``. The largest change is marked, answering "which
    layer moved most in fine-tuning". Rows with a missing change are left out.

    Bars are placed by module name (unique) and ticked with ``label``: analysed layers by their
    short tag; the other modules by name only while there are at most ``NAMED_TICKS`` bars (a
    ResNet-50 has over a hundred modules with parameters, their paths would overprint). Every
    bar's hover names its module in full.
    """
    df = layers.dropna(subset=["weight_change"]) if len(layers) else layers
    if len(df) == 0:
        return empty_figure("No weight change recorded in this cache", height=height)
    weights = df["weight_change"].astype(float)
    top = weights.idxmax()  # a row label (the frame's index is unique), typed Hashable: read it with .at
    names = df["name"].astype(str).tolist()
    ticks = [str(label) if analysed or len(df) <= NAMED_TICKS else ""
             for label, analysed in zip(df["label"], df["analysed"])]
    fig = go.Figure(go.Bar(
        x=names,
        y=weights.tolist(),
        marker_color=[ANALYSED_BAR if a else OTHER_BAR for a in df["analysed"]],
        marker_line=dict(width=[2 if i == top else 0 for i in df.index], color="#000000"),
        customdata=list(zip(df["name"], df["type"])),
        hovertemplate="%{customdata[0]} (%{customdata[1]})<br>||Wt\u2212Ws|| / ||Ws|| = %{y:.4f}<extra></extra>",
        meta={"role": "weight_change"},
    ))
    fig.add_annotation(x=df.at[top, "name"], y=float(weights.max()), text="moved most",
                       showarrow=False, yshift=10, font=dict(size=10, color=NEUTRAL_COLOR))
    apply_theme(fig, height=height, margin=dict(l=44, r=8, t=24, b=24), showlegend=False, bargap=0.35,
                title=dict(text="weight change source \u2192 target (relative L2)", font=dict(size=12)),
                yaxis=dict(rangemode="tozero", tickformat=".2f"),
                xaxis=dict(type="category", showgrid=False, tickmode="array", tickvals=names, ticktext=ticks))
    return fig


def class_count_chart(counts: pd.DataFrame, domain_names: dict[str, str], *, height: int = 200) -> go.Figure:
    """Instances per class: one bar per domain (source red, target blue), train solid and val pale
    stacked on it (the title says which).

    ``counts`` is long: ``class_name``, ``domain``, ``split``, ``n`` (one row per class, domain
    and split, zeros included so that an absent class shows as a missing bar).
    """
    if counts is None or len(counts) == 0 or int(counts["n"].sum()) == 0:
        return empty_figure("No instances in the cache", height=height)
    order = list(dict.fromkeys(counts["class_name"].astype(str)))
    fig = go.Figure()
    for dom in ("source", "target"):
        train = _series(counts, dom, "train", order)
        val = _series(counts, dom, "val", order)
        name = domain_names.get(dom, dom)
        for split, y, base, color in (("train", train, None, DOMAIN_COLORS[dom]),
                                      ("val", val, train, DOMAIN_LIGHT[dom])):
            fig.add_trace(go.Bar(
                x=order, y=y, base=base, offsetgroup=dom, name=f"{name} {split}", legendgroup=dom,
                marker=dict(color=color, line=dict(color=DOMAIN_COLORS[dom], width=1)),
                hovertemplate=f"{name} ({dom}) {split}<br>class %{{x}}: %{{customdata}}<extra></extra>",
                customdata=y, meta={"domain": dom, "split": split},
            ))
    apply_theme(fig, height=height, barmode="group", bargap=0.25, bargroupgap=0.05, showlegend=False,
                margin=dict(l=40, r=8, t=24, b=24),
                # the domain colours are named by the text above the chart; a legend would fight the mode bar
                title=dict(text="instances per class: solid = train, pale = val", font=dict(size=12)),
                xaxis=dict(type="category", showgrid=False), yaxis=dict(rangemode="tozero"))
    return fig


def _series(counts: pd.DataFrame, domain: str, split: str, order: list[str]) -> list[int]:
    part = counts[(counts["domain"] == domain) & (counts["split"] == split)]
    by_class = dict(zip(part["class_name"].astype(str), part["n"].astype(int)))
    return [by_class.get(c, 0) for c in order]
