"""Statistics view (paper section 5.1): accuracy chart and transferability score."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.theme import (
    DATASET_COLORS,
    DATASET_DASH,
    DOMAIN_LETTER,
    DOMAIN_SYMBOLS,
    NEGATIVE_COLOR,
    NEUTRAL_COLOR,
    POSITIVE_COLOR,
    apply_theme,
    empty_figure,
)

#: (history column, dataset key for the source model, dataset key for the target model).
#: 'val' is the validation set of the model's own domain.
_SERIES: tuple[tuple[str, dict[str, str]], ...] = (
    ("source_train", {"source": "source_train", "target": "source_train"}),
    ("target_train", {"source": "target_train", "target": "target_train"}),
    ("val", {"source": "source_val", "target": "target_val"}),
)


def _dataset_label(dataset: str) -> str:
    domain, split = dataset.split("_")
    return f"{domain} {'train' if split == 'train' else 'val'}"


def accuracy_chart(history: pd.DataFrame, *, height: int = 260, title: str | None = None) -> go.Figure:
    """Accuracy per epoch of both models on the three datasets (six series).

    ``history`` has the columns ``epoch``, ``model`` (``'source'`` or ``'target'``),
    ``source_train``, ``target_train`` and ``val``; ``val`` is the validation set of the
    model's own domain (source validation for the source model, target validation for
    the target model). Missing values (NaN) are skipped.

    Encoding: x = epoch, y = accuracy in [0, 1]; markers ``'x'`` for the source model and
    ``'circle'`` for the target model; line colour = domain the dataset comes from (red
    source, blue target); dash = training (solid) or validation (dashed); legend names
    carry the model as a suffix, e.g. ``"source train (S)"``, ``"target val (T)"``.
    Series are ordered source model first: source train, target train, val.
    """
    needed = {"epoch", "model", "source_train", "target_train", "val"}
    if history is None or len(history) == 0:
        return empty_figure("No training history in the cache", height=height)
    missing = needed - set(history.columns)
    if missing:
        return empty_figure(f"Training history lacks column(s): {', '.join(sorted(missing))}", height=height)

    fig = go.Figure()
    n_series = 0
    max_epoch = 0.0
    for model in ("source", "target"):
        part = history[history["model"] == model].sort_values("epoch")
        for column, datasets in _SERIES:
            dataset = datasets[model]
            values = pd.to_numeric(part[column], errors="coerce")
            keep = values.notna().to_numpy()
            epochs = part["epoch"].to_numpy()[keep]
            acc = values.to_numpy(dtype=float)[keep]
            if len(acc) == 0:
                continue
            max_epoch = max(max_epoch, float(np.max(epochs)))
            name = f"{_dataset_label(dataset)} ({DOMAIN_LETTER[model]})"
            fig.add_trace(
                go.Scatter(
                    x=epochs,
                    y=acc,
                    mode="lines+markers",
                    name=name,
                    legendgroup=model,
                    line=dict(color=DATASET_COLORS[dataset], dash=DATASET_DASH[dataset], width=1.8),
                    marker=dict(
                        symbol=DOMAIN_SYMBOLS[model],
                        size=8 if model == "source" else 7,
                        color=DATASET_COLORS[dataset],
                        line=dict(width=0),
                    ),
                    meta={"model": model, "dataset": dataset},
                    hovertemplate=(
                        f"{model} model · {_dataset_label(dataset)}<br>"
                        "epoch %{x}<br>accuracy %{y:.3f}<extra></extra>"
                    ),
                )
            )
            n_series += 1
    if n_series == 0:
        return empty_figure("No accuracy values in the training history", height=height)

    apply_theme(
        fig,
        height=height,
        title=dict(text=title) if title else None,
        margin=dict(l=48, r=8, t=28 if title else 10, b=40),
        xaxis=dict(title=dict(text="epoch"), rangemode="tozero", dtick=None if max_epoch > 12 else 1),
        yaxis=dict(title=dict(text="accuracy"), range=[0, 1.02], tick0=0, dtick=0.2),
        legend=dict(
            orientation="v",
            x=1.01,
            xanchor="left",
            y=1,
            yanchor="top",
            tracegroupgap=6,
            title=dict(text="dataset (model)"),
        ),
        hovermode="closest",
    )
    return fig


def transferability_badge(score: float | None) -> dict[str, Any]:
    """Text and colour of the transferability score badge.

    Returns ``{"text", "color", "sign", "title"}``: ``text`` is signed with two decimals
    (``"+0.43"``, ``"-0.12"``, ``"±0.00"`` for an exact zero), ``color`` green for a gain,
    red for a loss, grey for zero or a missing score (``None``/NaN gives ``"n/a"``);
    ``sign`` is 1, -1, 0 or ``None``.
    """
    if score is None or not isinstance(score, (int, float, np.floating, np.integer)) or math.isnan(float(score)):
        return {
            "text": "n/a",
            "color": NEUTRAL_COLOR,
            "sign": None,
            "title": "Transferability score unavailable (an accuracy is missing)",
        }
    s = float(score)
    rounded = round(s, 2)
    if rounded > 0:
        text, color, sign = f"+{rounded:.2f}", POSITIVE_COLOR, 1
    elif rounded < 0:
        text, color, sign = f"{rounded:.2f}", NEGATIVE_COLOR, -1
    else:
        text, color, sign = "±0.00", NEUTRAL_COLOR, 0
    return {
        "text": text,
        "color": color,
        "sign": sign,
        "title": (
            "Transferability score: best target-model accuracy minus best source-model "
            f"accuracy on the target validation data ({s:+.4f})"
        ),
    }
