"""Instance view (paper section 5.2): the t-SNE scatter of the selected classes.

Classes are told apart by colour, domains by marker shape: up to :data:`PALETTE_SIZE` classes
each get their own colour (:func:`many_class_palette`); beyond that colours repeat with another
pair of shapes (:data:`TIER_SYMBOLS`), so (colour, shape) stays unique. The class key is outside
the map (the class picker's swatches and a collapsible key under the map), and the figure's own
legend is one row under the map explaining the marks (source/target shape, mispredicted border),
so the map keeps its size whatever the number of classes. The find box's ring is the page's shared
one (:mod:`dashboard.highlight`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.highlight import highlight_ids, highlight_trace
from dashboard.lookups import PALETTE_SIZE, class_colors, distinct_class_palette, many_class_palette
from dashboard.sampling import (
    MAX_POINTS,
    class_domain_strata,
    priorities,
    sample_annotation,
    sample_note,
    stratified_sample,
)
from dashboard.theme import (
    DOMAIN_SYMBOLS,
    MISPREDICTED_COLOR,
    apply_theme,
    empty_figure,
)
from dashboard.views.instances.data import projection_frame
from transferviz.cache import Cache

__all__ = ["PALETTE_SIZE", "SCATTER_HEIGHT", "TIER_SYMBOLS", "class_color_map", "class_style", "drawn_frame",
           "many_class_palette", "ring_trace", "scatter_figure", "tsne_scatter"]

#: Height of the scatter in px (the layout reserves it).
SCATTER_HEIGHT = 340
#: Bottom margin holding the one-row mark key; fixed, so the map's height never depends on the classes.
KEY_MARGIN = 24

_REQUIRED = ("id", "x", "y", "label", "label_name", "domain", "target_pred")

#: (source, target) marker symbols of the classes past each :data:`PALETTE_SIZE`: thin/cross-like for
#: source, solid for target, so the domain still reads at a glance.
TIER_SYMBOLS: tuple[tuple[str, str], ...] = (
    (DOMAIN_SYMBOLS["source"], DOMAIN_SYMBOLS["target"]),
    ("cross", "square"),
    ("hourglass", "diamond"),
    ("bowtie", "triangle-up"),
)

def class_style(index: int, n_classes: int) -> tuple[str, tuple[str, str]]:
    """``(colour, (source symbol, target symbol))`` of class ``index`` in a run of ``n_classes``.

    Up to 16 classes: the dashboard's shared colours (the same as every other view). Up to
    :data:`PALETTE_SIZE`: :func:`many_class_palette`. Beyond: the palette again, with the next
    pair of :data:`TIER_SYMBOLS`.
    """
    if n_classes <= 16:
        return distinct_class_palette(n_classes)[index], TIER_SYMBOLS[0]
    palette = many_class_palette()
    tier = (index // PALETTE_SIZE) % len(TIER_SYMBOLS)
    return palette[index % PALETTE_SIZE], TIER_SYMBOLS[tier]


def class_color_map(labels: Sequence[Any]) -> dict[Any, str]:
    """Map every label (in the given order) to the colour :func:`class_style` gives its position.

    Pass *all* class labels of the run (not only the selected ones) so a class keeps its
    colour whatever the selection.
    """
    labels = list(dict.fromkeys(labels))
    return {lab: class_style(i, len(labels))[0] for i, lab in enumerate(labels)}


def _resolve_colors(labels: list[Any], class_colors: Mapping[Any, str] | Sequence[str] | None) -> dict[Any, str]:
    if class_colors is None:
        return class_color_map(labels)
    if isinstance(class_colors, Mapping):
        out: dict[Any, str] = {}
        taken = set(class_colors.values())
        spare = [c for c in many_class_palette() if c not in taken]
        for lab in labels:
            # labels may come back from JSON as strings: try the int/str twin too
            twin = str(lab) if not isinstance(lab, str) else (int(lab) if lab.lstrip("-").isdigit() else None)
            out[lab] = class_colors.get(lab) or class_colors.get(twin) or (spare.pop(0) if spare else "#777777")
        return out
    seq = list(class_colors)
    if not seq:
        return class_color_map(labels)
    return {
        lab: seq[int(lab) % len(seq)] if isinstance(lab, (int, np.integer)) else seq[i % len(seq)]
        for i, lab in enumerate(labels)
    }


def _symbols(labels: list[Any]) -> dict[Any, tuple[str, str]]:
    """(source, target) symbols of each label: integer labels by their class index (stable whatever
    the selection), others by their position."""
    out = {}
    for i, lab in enumerate(labels):
        k = int(lab) if isinstance(lab, (int, np.integer)) else i
        out[lab] = TIER_SYMBOLS[(k // PALETTE_SIZE) % len(TIER_SYMBOLS)]
    return out


def _key_trace(name: str, symbol: str, color: str, rank: int, line: dict | None = None) -> dict:
    """A data-less legend entry (no points, so selections and clicks never hit it)."""
    return dict(type="scattergl", x=[None], y=[None], mode="markers", name=name, legendrank=rank,
                marker=dict(symbol=symbol, size=9, color=color, line=line or dict(width=0)),
                hoverinfo="skip", meta={"role": "legend-key"})


def _highlight_trace(df: pd.DataFrame, highlight: Collection[int] | None) -> dict | None:
    """The page's shared ring trace (:func:`dashboard.highlight.highlight_trace`) around the instances
    of ``highlight`` that are on the map; None when none are."""
    wanted = np.isin(df["id"].to_numpy(), highlight_ids(list(highlight) if highlight is not None else None))
    if not wanted.any():
        return None
    return highlight_trace(df["id"].to_numpy()[wanted], df["x"].to_numpy(dtype=float)[wanted],
                           df["y"].to_numpy(dtype=float)[wanted])


def tsne_scatter(
    df: pd.DataFrame | None,
    class_colors: Mapping[Any, str] | Sequence[str] | None = None,
    *,
    class_names: Mapping[Any, str] | None = None,
    height: int = 420,
    empty_message: str = "Select one or more classes to project their instances",
    highlight: Collection[int] | None = None,
) -> go.Figure:
    """WebGL scatter of a t-SNE map: colour = class, cross = source, circle = target.

    ``df`` columns: ``id`` (instance id, returned as ``customdata`` so callbacks can look
    up thumbnails), ``x``, ``y``, ``label`` (true class), ``label_name``, ``domain``
    (``'source'``/``'target'``) and ``target_pred`` (the target model's predicted label).
    ``class_colors`` maps a label to a colour (or is a palette indexed by integer label);
    by default :func:`class_color_map` over the labels present. ``class_names`` names
    predicted labels that are not among the plotted classes. Integer labels past
    :data:`PALETTE_SIZE` get the next pair of :data:`TIER_SYMBOLS`.

    Instances the target model mispredicts (``target_pred != label``) get a dark grey
    border (``marker.line``: one colour, a width per point, 1.5 px on crosses, 2 px on
    circles, 0 on the others; WebGL draws it around the filled ``'x'`` cross as well as
    around circles). A selected class
    missing from a domain is noted in the top-left corner ("Class 'bike' has no source
    instances"). One trace per (class, domain), ``meta = {"role": "instances", "label",
    "domain"}``, kept out of the legend; points carry ``customdata = id`` and a hover text
    with domain, true label and prediction. The legend is one row of data-less keys
    (``meta.role == "legend-key"``: source, target, mispredicted) under the plot in a fixed
    margin, so the plot area is the same at 1 class and at 31, with or without rings.

    ``highlight``: instance ids (the page's find box); those on the map get a ring, drawn by
    the page's shared ring trace on top (``meta.role == "highlight"``, ``customdata`` = their ids).
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
    symbols = _symbols(labels)
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
        for d, domain in enumerate(("source", "target")):
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
                    showlegend=False,
                    marker=dict(
                        symbol=symbols[lab][d],
                        size=size,
                        color=colors[lab],
                        opacity=0.9,
                        # one colour, a width per point (0 = no border): a per-point colour list was
                        # a third of the figure's bytes and of its build time at 31 classes
                        line=dict(color=MISPREDICTED_COLOR, width=np.where(miss, border, 0.0)),
                    ),
                    customdata=id_arr[sel],
                    hovertext=hover_arr[sel],
                    hovertemplate="%{hovertext}<extra></extra>",
                    meta={"role": "instances", "label": lab if not isinstance(lab, np.generic) else lab.item(),
                          "domain": domain},
                )
            )
    doms = set(dom_arr)
    keys = [_key_trace(domain, DOMAIN_SYMBOLS[domain], "#666666", i) for i, domain in enumerate(("source", "target"))
            if domain in doms]
    if wrong.any():
        keys.append(_key_trace("mispredicted", "circle", "white", 10,
                               line=dict(color=MISPREDICTED_COLOR, width=2.0)))
    ring = _highlight_trace(df, highlight)
    if ring is not None:
        # no legend key for it: the find box says what it found, the ring looks the same in every map,
        # and a fourth key would wrap the legend to a second row at 1366 px, shrinking the map
        traces.append(ring)
    # built without per-point validation (thousands of points); the tests validate the structure
    fig = go.Figure(data=traces + keys, _validate=False)
    present = set(zip(lab_arr.tolist(), dom_arr.tolist()))
    notes = [f"Class '{name_of(lab)}' has no {domain} instances"
             for lab in labels for domain in ("source", "target") if (lab, domain) not in present]
    annotations = [
        dict(text="<br>".join(notes), x=0, y=1, xref="paper", yref="paper", xanchor="left", yanchor="top",
             showarrow=False, align="left", font=dict(size=11, color="#666666"), bgcolor="rgba(255,255,255,0.8)")
    ] if notes else []
    apply_theme(
        fig,
        annotations=annotations,
        height=height,
        margin=dict(l=6, r=6, t=6, b=KEY_MARGIN),
        xaxis=dict(visible=False, showgrid=False),
        yaxis=dict(visible=False, showgrid=False, scaleanchor="x", scaleratio=1),
        showlegend=True,
        # one row under the plot, in the bottom margin (away from the mode bar): never inside the map,
        # and the same few keys at 1 class and at 31, so the map keeps its size
        legend=dict(orientation="h", x=0, xanchor="left", y=0, yanchor="top", font=dict(size=10),
                    itemclick=False, itemdoubleclick=False, bgcolor="rgba(0,0,0,0)",
                    # "normal": the (hidden) class traces' legend groups would otherwise make plotly.js
                    # stack the keys in a column, each in a group of its own
                    traceorder="normal"),
        dragmode="lasso",
        hovermode="closest",
        # a new class selection resets the zoom; re-renders of the same selection keep it
        uirevision="tsne|" + ",".join(str(v) for v in labels),
    )
    return fig


def ring_trace(df: pd.DataFrame, highlight: Collection[int] | None) -> dict:
    """The find box's ring trace over the instances of ``highlight`` in the projection frame ``df``
    (an empty ring trace when none is there): the last trace of :func:`scatter_figure`'s map."""
    return _highlight_trace(df, highlight) or highlight_trace([], [], [])


def drawn_frame(cache: Cache, df: pd.DataFrame, limit: int = MAX_POINTS) -> pd.DataFrame:
    """The rows of a projection frame the map draws: all up to ``limit``, else a stratified sample
    (class x domain, :func:`dashboard.sampling.stratified_sample`; the same instances for the same
    classes, and a class keeps its drawn points as others are added)."""
    if len(df) <= limit:
        return df
    ids_ = df["id"].to_numpy(dtype=np.int64)
    strata = class_domain_strata(df["label"].to_numpy(), df["domain"].to_numpy())
    prio = cache.memo(("sampling.priorities",), lambda: priorities(len(cache.instances)))[ids_]
    pos = stratified_sample(np.arange(len(df)), strata, prio, limit)
    return df.iloc[pos].reset_index(drop=True)


def scatter_figure(cache: Cache, chosen: Sequence[int],
                   highlight: Collection[int] | None = None) -> tuple[go.Figure, pd.DataFrame]:
    """The scatter of the ``chosen`` classes (positioned by
    :func:`dashboard.views.instances.data.selection_coords`, no t-SNE run) and its frame.

    Plotly's own hover label is switched off on instance points: the view's ``dcc.Tooltip``
    with the thumbnail replaces it.
    """
    df = projection_frame(cache, chosen)
    names = dict(enumerate(cache.classes))
    drawn = drawn_frame(cache, df)
    fig = tsne_scatter(drawn, class_colors(cache), class_names=names, height=SCATTER_HEIGHT,
                       empty_message="Select one or more classes above to project their instances",
                       highlight=None)
    # the find box's rings cover every found instance, drawn or not (a found point must never be missing);
    # always the last trace of a map with points (empty when nothing is found), so a new find patches it alone
    if len(df):
        fig.add_trace(ring_trace(df, highlight))
    note = sample_note(len(drawn), len(df))
    if note:
        fig.add_annotation(sample_annotation(note))
    if len(df):  # (an empty figure's meta holds its message)
        fig.layout.meta = {**(fig.layout.meta or {}), "note": note, "drawn": len(drawn), "total": len(df)}
    for t in fig.data:
        if isinstance(t.meta, dict) and t.meta.get("role") == "instances":
            # no per-point hover text either: it is never shown, and it was half the payload
            t.hoverinfo, t.hovertemplate, t.hovertext = "none", None, None
            # a numpy customdata travels as a base64 typed array, which dcc.Graph leaves out
            # of hoverData/selectedData (it copies customdata only from plain arrays)
            if t.customdata is not None:
                t.customdata = [int(v) for v in t.customdata]
    return fig, df
