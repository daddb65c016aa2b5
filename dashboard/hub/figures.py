"""The comparison page's figures (issue 14, item 2), from the frames of :mod:`dashboard.hub.compare`.

Runs are told apart by colour (a categorical palette without the source red and target blue, which keep
their meaning: the model), models by symbol as in the run's own accuracy chart (crosses the source
model, circles the target model). Each builder returns an empty figure with a one-line reason when it
has nothing to draw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.hub.compare import LayerAxis
from dashboard.hub.runs import ESTIMATES
from dashboard.theme import DOMAIN_SYMBOLS, NEUTRAL_COLOR, apply_theme, class_palette, empty_figure

__all__ = ["MEASURE_LABELS", "accuracy_overlay", "cka_diagonal_lines", "class_gain_heatmap",
           "correspondence_lines", "run_colors", "score_bars"]

#: The measures of :func:`score_bars`, as their panels are titled.
MEASURE_LABELS: dict[str, str] = {"score": "transferability", "logme": "LogME", "leep": "LEEP", "nce": "NCE",
                                  "hscore": "H-score"}

#: Diverging scale of the gain heatmap: purple loss, white none, green gain (red/blue mean source/target).
GAIN_COLORSCALE = "PRGn"


def run_colors(names: Sequence[str]) -> dict[str, str]:
    """One colour per run, in order."""
    return dict(zip(names, class_palette(len(names))))


def accuracy_overlay(acc: pd.DataFrame, colors: Mapping[str, str], *, height: int = 300) -> go.Figure:
    """Accuracy per epoch on the target validation data, every run on one chart: one line per run and model,
    colour = run, symbol = model (source model dashed with crosses, target model solid with circles)."""
    if len(acc) == 0:
        return empty_figure("No training history in these runs", height=height)
    fig = go.Figure()
    for run in colors:
        for model in ("source", "target"):
            part = acc[(acc["run"] == run) & (acc["model"] == model)].sort_values("epoch")
            if len(part) == 0:
                continue
            fig.add_trace(go.Scatter(
                x=part["epoch"], y=part["accuracy"], mode="lines+markers", name=f"{run} · {model} model",
                legendgroup=run, meta={"run": run, "model": model},
                line=dict(color=colors[run], dash="dash" if model == "source" else "solid", width=1.8),
                marker=dict(symbol=DOMAIN_SYMBOLS[model], size=7, color=colors[run]),
                hovertemplate=f"{run} · {model} model<br>epoch %{{x}}<br>target val accuracy %{{y:.3f}}<extra></extra>",
            ))
    return apply_theme(fig, height=height, margin=dict(l=48, r=8, t=10, b=40), hovermode="closest",
                       xaxis=dict(title=dict(text="epoch"), rangemode="tozero"),
                       yaxis=dict(title=dict(text="accuracy on target val"), range=[0, 1.02]),
                       legend=dict(title=dict(text="run · model")))


def score_bars(scores: pd.DataFrame, colors: Mapping[str, str], *, height: int = 240) -> go.Figure:
    """One small bar panel per measure (the transferability score, then each estimate), one bar per run
    coloured by run; each panel has its own scale (the estimates are in different units, only their order
    across runs is comparable). A run without a measure has no bar, and the panel says "n/a" for it."""
    measures = ["score", *ESTIMATES]
    if scores.empty or scores[measures].isna().all().all():
        return empty_figure("No transferability score or estimates in these runs", height=height)
    fig = make_subplots(rows=1, cols=len(measures), subplot_titles=[MEASURE_LABELS[m] for m in measures],
                        horizontal_spacing=0.05)
    runs = list(scores.index)
    for col, m in enumerate(measures, start=1):
        values = scores[m].to_numpy(dtype=float)
        fig.add_trace(go.Bar(
            x=runs, y=[None if np.isnan(v) else float(v) for v in values], marker_color=[colors[r] for r in runs],
            text=["n/a" if np.isnan(v) else f"{v:.3g}" for v in values], textposition="outside", cliponaxis=False,
            showlegend=False, name=MEASURE_LABELS[m], meta={"measure": m},
            hovertemplate=f"%{{x}}<br>{MEASURE_LABELS[m]} %{{y:.4g}}<extra></extra>",
        ), row=1, col=col)
        fig.update_xaxes(showticklabels=False, row=1, col=col)
        if np.isnan(values).all():  # no run has it (built before the stage): say so in the empty panel
            axis = "" if col == 1 else str(col)
            fig.add_annotation(text="n/a in<br>these runs", x=0.5, y=0.5, xref=f"x{axis} domain",
                               yref=f"y{axis} domain", showarrow=False, font=dict(size=11, color=NEUTRAL_COLOR))
            fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, row=1, col=col)
    return apply_theme(fig, height=height, margin=dict(l=36, r=8, t=28, b=10), bargap=0.25)


def cka_diagonal_lines(diagonals: Mapping[str, np.ndarray | None], layers: Mapping[str, Sequence[str]],
                       axis: LayerAxis, colors: Mapping[str, str], *, domain: str = "target",
                       height: int = 280) -> go.Figure:
    """Per run, CKA between the source and the target model at each analysed layer (the CKA heatmap's
    diagonal) as one line: 1 = the layer's representation kept, lower = changed through fine-tuning."""
    drawn = {r: d for r, d in diagonals.items() if d is not None and len(d)}
    if not drawn:
        return empty_figure("No CKA in these runs (built before the cka stage)", height=height)
    fig = go.Figure()
    for run, diag in drawn.items():
        names = list(layers[run])  # the i-th analysed layer sits at position i on the shared axis
        n = min(len(names), len(diag))
        fig.add_trace(go.Scatter(
            x=list(range(n)), y=np.asarray(diag[:n], dtype=float), customdata=names[:n], mode="lines+markers", name=run,
            line=dict(color=colors[run], width=2), marker=dict(size=7, color=colors[run]), meta={"run": run},
            hovertemplate=f"{run}<br>%{{customdata}}<br>CKA(source, target) %{{y:.3f}}<extra></extra>",
        ))
    return apply_theme(fig, height=height, margin=dict(l=48, r=8, t=10, b=70), hovermode="closest",
                       xaxis=dict(title=dict(text="layer" + ("" if axis.by_name else " (by position)")),
                                  tickmode="array", tickvals=list(range(len(axis.labels))), ticktext=axis.labels,
                                  tickangle=-30),
                       yaxis=dict(title=dict(text=f"CKA on {domain} data"), range=[0, 1.05]),
                       legend=dict(title=dict(text="run")))


def correspondence_lines(by_pair: Mapping[str, pd.DataFrame | None], axis: LayerAxis,
                         colors: Mapping[str, str], *, height: int = 280) -> go.Figure:
    """Per run and linked layer pair, the correspondence share (mean over classes; solid, circles) against
    its same-index reference (dashed) and the permutation null's 95th percentile (dotted, grey markers): a
    share above the null is correspondence chance does not explain."""
    drawn = {r: f for r, f in by_pair.items() if f is not None and len(f)}
    if not drawn:
        return empty_figure("No weight-correspondence summary in these runs", height=height)
    fig = go.Figure()
    for run, f in drawn.items():
        x = f["position"].to_numpy()
        for col, label, dash, symbol in (("share", "share", "solid", "circle"),
                                         ("same_index_share", "same-index reference", "dash", "diamond-open"),
                                         ("null_p95", "chance (null p95)", "dot", "line-ew-open")):
            y = f[col].to_numpy(dtype=float)
            if np.isnan(y).all():
                continue
            fig.add_trace(go.Scatter(
                x=x, y=y, customdata=f["pair"], mode="lines+markers", name=f"{run} · {label}", legendgroup=run,
                meta={"run": run, "series": col},
                line=dict(color=colors[run], dash=dash, width=2 if col == "share" else 1.2),
                marker=dict(symbol=symbol, size=7, color=colors[run] if col != "null_p95" else NEUTRAL_COLOR),
                hovertemplate=f"{run}<br>%{{customdata}}<br>{label} %{{y:.3f}}<extra></extra>",
            ))
    # the pairs' short tags (Li -> Lj; the layer names are in the hover): full names would not fit the axis
    ticks = [f"L{i + 1}\u2192L{i + 2}" for i in range(len(axis.labels) - 1)]
    return apply_theme(fig, height=height, margin=dict(l=48, r=8, t=10, b=60), hovermode="closest",
                       xaxis=dict(title=dict(text="layer pair" + ("" if axis.by_name else " (by position)")),
                                  tickmode="array", tickvals=list(range(len(ticks))), ticktext=ticks,
                                  tickangle=-30),
                       yaxis=dict(title=dict(text="share of important target weights"), range=[0, 1.05]),
                       legend=dict(title=dict(text="run · series")))


def class_gain_heatmap(gains: pd.DataFrame, *, height: int | None = None) -> go.Figure:
    """Classes (rows) x runs (columns): the target model's accuracy minus the source model's on the class's
    target validation instances, green gain, purple loss, centred on zero; blank where a run lacks the
    class."""
    if gains.empty or gains.isna().all().all():
        return empty_figure("No per-class accuracies in these runs", height=height or 200)
    z = gains.to_numpy(dtype=float)
    lim = max(float(np.nanmax(np.abs(z))), 1e-6)
    text = [["" if np.isnan(v) else f"{v:+.2f}" for v in row] for row in z]
    fig = go.Figure(go.Heatmap(
        z=[[None if np.isnan(v) else float(v) for v in row] for row in z],  # None: a gap
        x=list(gains.columns), y=[str(c) for c in gains.index], text=text,
        texttemplate="%{text}", colorscale=GAIN_COLORSCALE, zmin=-lim, zmax=lim, zmid=0, xgap=1, ygap=1,
        colorbar=dict(title=dict(text="gain", side="right"), thickness=10),
        hovertemplate="class %{y}<br>run %{x}<br>target \u2212 source accuracy %{z:+.3f}<extra></extra>",
        hoverongaps=False,
    ))
    rows = len(gains.index)
    return apply_theme(fig, height=height or max(200, 60 + 22 * rows), margin=dict(l=60, r=8, t=50, b=10),
                       xaxis=dict(title=dict(text="run"), side="top"),
                       yaxis=dict(title=dict(text="class"), autorange="reversed", type="category"))
