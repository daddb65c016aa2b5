"""Instance view (paper section 5.2): the t-SNE scatter of the selected classes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.lookups import class_colors
from dashboard.theme import (
    DOMAIN_SYMBOLS,
    MISPREDICTED_COLOR,
    apply_theme,
    class_palette,
    empty_figure,
)
from dashboard.views.instances.data import projection_frame
from transferviz.cache import Cache

__all__ = ["SCATTER_HEIGHT", "class_palette", "class_color_map", "scatter_figure", "tsne_scatter"]

#: Height of the scatter in px (the layout reserves it).
SCATTER_HEIGHT = 340

_REQUIRED = ("id", "x", "y", "label", "label_name", "domain", "target_pred")


def class_color_map(labels: Sequence[Any]) -> dict[Any, str]:
    """Map every label (in the given order) to a colour of :func:`class_palette`.

    Pass *all* class labels of the run (not only the selected ones) so a class keeps its
    colour whatever the selection.
    """
    labels = list(dict.fromkeys(labels))
    return dict(zip(labels, class_palette(len(labels))))


def _resolve_colors(labels: list[Any], class_colors: Mapping[Any, str] | Sequence[str] | None) -> dict[Any, str]:
    if class_colors is None:
        return class_color_map(labels)
    if isinstance(class_colors, Mapping):
        out: dict[Any, str] = {}
        spare = [c for c in class_palette(len(labels) + len(class_colors)) if c not in set(class_colors.values())]
        for lab in labels:
            # labels may come back from JSON as strings: try the int/str twin too
            twin = str(lab) if not isinstance(lab, str) else (int(lab) if lab.lstrip("-").isdigit() else None)
            out[lab] = class_colors.get(lab) or class_colors.get(twin) or spare.pop(0)
        return out
    seq = list(class_colors)
    if not seq:
        return class_color_map(labels)
    return {
        lab: seq[int(lab) % len(seq)] if isinstance(lab, (int, np.integer)) else seq[i % len(seq)]
        for i, lab in enumerate(labels)
    }


def tsne_scatter(
    df: pd.DataFrame,
    class_colors: Mapping[Any, str] | Sequence[str] | None = None,
    *,
    class_names: Mapping[Any, str] | None = None,
    height: int = 420,
    empty_message: str = "Select one or more classes to project their instances",
) -> go.Figure:
    """WebGL scatter of a t-SNE map: colour = class, cross = source, circle = target.

    ``df`` columns: ``id`` (instance id, returned as ``customdata`` so callbacks can look
    up thumbnails), ``x``, ``y``, ``label`` (true class), ``label_name``, ``domain``
    (``'source'``/``'target'``) and ``target_pred`` (the target model's predicted label).
    ``class_colors`` maps a label to a colour (or is a palette indexed by integer label);
    by default :func:`class_palette` over the labels present. ``class_names`` names
    predicted labels that are not among the plotted classes.

    Instances the target model mispredicts (``target_pred != label``) get a dark grey
    border (``marker.line``, 1.5 px on crosses, 2 px on circles; WebGL draws it around the
    filled ``'x'`` cross as well as around circles), the others none; a data-less legend
    key (``meta.role == "legend-key"``) explains it. A selected class missing from a
    domain is noted in the top-left corner ("Class 'bike' has no source instances").
    One trace per (class, domain), ``meta = {"role":
    "instances", "label", "domain"}``, grouped in the legend by class; points carry
    ``customdata = id`` and a hover text with domain, true label and prediction.
    """
    if df is None or len(df) == 0:
        return empty_figure(empty_message, height=height)
    missing = [c for c in _REQUIRED if c not in df.columns]
    if missing:
        return empty_figure(f"Projection lacks column(s): {', '.join(missing)}", height=height)
    df = df.dropna(subset=["x", "y"])
    if len(df) == 0:
        return empty_figure("No projected coordinates for the selected classes", height=height)

    names: dict[Any, str] = {}
    for lab, nm in zip(df["label"].tolist(), df["label_name"].tolist()):
        names.setdefault(lab, str(nm))
    if class_names:
        for k, v in class_names.items():
            names.setdefault(k, str(v))

    def name_of(lab: Any) -> str:
        if lab in names:
            return names[lab]
        if pd.isna(lab):
            return "—"
        return str(lab)

    labels = sorted(dict.fromkeys(df["label"].tolist()), key=lambda v: (str(type(v)), v))
    colors = _resolve_colors(labels, class_colors)
    wrong = (df["target_pred"].to_numpy() != df["label"].to_numpy())
    size = 9 if len(df) < 2000 else 6

    # hover texts, vectorised: "<b>bike</b> · source<br>true: bike<br>target model: phone ✗"
    uniq = {v: name_of(v) for v in dict.fromkeys(df["target_pred"].tolist())}
    pred_names = df["target_pred"].map(uniq).astype(str)
    label_names = df["label_name"].astype(str)
    hover_all = ("<b>" + label_names + "</b> · " + df["domain"].astype(str) + "<br>true: " + label_names
                 + "<br>target model: " + pred_names + np.where(wrong, " ✗", ""))

    # plain numpy columns once (pandas' Arrow-backed strings are slow to slice repeatedly)
    lab_arr = df["label"].to_numpy(dtype=object)
    dom_arr = df["domain"].to_numpy(dtype=object)
    x_arr, y_arr = df["x"].to_numpy(dtype=float), df["y"].to_numpy(dtype=float)
    id_arr = df["id"].to_numpy()
    hover_arr = hover_all.to_numpy(dtype=object)

    traces: list[dict] = []
    for lab in labels:
        is_lab = lab_arr == lab
        for domain in ("source", "target"):
            sel = is_lab & (dom_arr == domain)
            if not sel.any():
                continue
            miss = wrong[sel]
            # a cross's border hugs its thin arms: 1.5 px reads as strongly as 2 px on a disc
            border = 1.5 if domain == "source" else 2.0
            traces.append(
                dict(
                    type="scattergl",
                    x=x_arr[sel],
                    y=y_arr[sel],
                    mode="markers",
                    name=f"{name_of(lab)} ({domain})",
                    legendgroup=str(lab),
                    marker=dict(
                        symbol=DOMAIN_SYMBOLS[domain],
                        size=size,
                        color=colors[lab],
                        opacity=0.9,
                        line=dict(
                            color=np.where(miss, MISPREDICTED_COLOR, "white").tolist(),
                            width=np.where(miss, border, 0.0),
                        ),
                    ),
                    customdata=id_arr[sel],
                    hovertext=hover_arr[sel],
                    hovertemplate="%{hovertext}<extra></extra>",
                    meta={"role": "instances", "label": lab if not isinstance(lab, np.generic) else lab.item(),
                          "domain": domain},
                )
            )
    if wrong.any():
        # legend key only (no data points, so selections and clicks never hit it)
        traces.append(
            dict(
                type="scattergl",
                x=[None],
                y=[None],
                mode="markers",
                name="mispredicted by target model",
                legendrank=2000,
                marker=dict(symbol="circle", size=size, color="white",
                            line=dict(color=MISPREDICTED_COLOR, width=2.0)),
                hoverinfo="skip",
                meta={"role": "legend-key"},
            )
        )
    # built without per-point validation (thousands of points); the tests validate the structure
    fig = go.Figure(data=traces, _validate=False)
    notes = []
    for lab in labels:
        present = set(df.loc[df["label"] == lab, "domain"])
        for domain in ("source", "target"):
            if domain not in present:
                notes.append(f"Class '{name_of(lab)}' has no {domain} instances")
    annotations = [
        dict(text="<br>".join(notes), x=0, y=1, xref="paper", yref="paper", xanchor="left", yanchor="top",
             showarrow=False, align="left", font=dict(size=11, color="#666666"), bgcolor="rgba(255,255,255,0.8)")
    ] if notes else []
    apply_theme(
        fig,
        annotations=annotations,
        height=height,
        margin=dict(l=10, r=10, t=10, b=10),
        xaxis=dict(visible=False, showgrid=False),
        yaxis=dict(visible=False, showgrid=False, scaleanchor="x", scaleratio=1),
        legend=dict(orientation="h", x=0, y=-0.02, yanchor="top", font=dict(size=10)),
        dragmode="lasso",
        hovermode="closest",
        # a new class selection resets the zoom; re-renders of the same selection keep it
        uirevision="tsne|" + ",".join(str(v) for v in labels),
    )
    return fig


def scatter_figure(cache: Cache, chosen: Sequence[int], memo_dir: Path | None) -> tuple[go.Figure, pd.DataFrame]:
    """The scatter of the ``chosen`` classes (a class-selection t-SNE, memoized on disk) and its frame.

    Plotly's own hover label is switched off on instance points: the view's ``dcc.Tooltip``
    with the thumbnail replaces it.
    """
    df = projection_frame(cache, chosen, memo_dir)
    names = dict(enumerate(cache.classes))
    fig = tsne_scatter(df, class_colors(cache), class_names=names, height=SCATTER_HEIGHT,
                       empty_message="Select one or more classes above to project their instances")
    for t in fig.data:
        if isinstance(t.meta, dict) and t.meta.get("role") == "instances":
            # no per-point hover text either: it is never shown, and it was half the payload
            t.hoverinfo, t.hovertemplate, t.hovertext = "none", None, None
            # a numpy customdata travels as a base64 typed array, which dcc.Graph leaves out
            # of hoverData/selectedData (it copies customdata only from plain arrays)
            if t.customdata is not None:
                t.customdata = [int(v) for v in t.customdata]
    return fig, df
