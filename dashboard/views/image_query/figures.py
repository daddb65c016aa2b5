"""Image query figures (issue 6 item 4): an instance's hidden-layer vector (its "waveform")
and those of its nearest neighbours. :func:`waveform_figure` draws plain arrays;
:func:`query_waveform` is what a model's panel shows for a query."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from dashboard.theme import DOMAIN_COLORS, empty_figure, fast_figure
from dashboard.views.image_query.data import Query

__all__ = ["WAVE_HEIGHT", "query_waveform", "waveform_figure"]

WAVE_HEIGHT = 104


def waveform_figure(query: np.ndarray, neighbours: Sequence[tuple[int, np.ndarray, str]], *,
                    query_label: str = "query", height: int = 130,
                    empty_message: str = "No embedding") -> go.Figure:
    """The query's hidden-layer vector as a line (x = neuron index, y = activation), dark, with
    each neighbour's ``(id, vector, domain)`` as a thin line in its domain's colour beneath it.

    Traces: one per neighbour (``meta.role == "neighbour"``, ``meta.id``), then the query
    (``meta.role == "query"``) drawn last, on top.
    """
    q = np.asarray(query, dtype=float).ravel()
    if q.size == 0:
        return empty_figure(empty_message, height=height)
    x = np.arange(q.size)
    traces = []
    for nid, vec, dom in neighbours:
        traces.append(dict(
            type="scatter", x=x, y=np.asarray(vec, dtype=float).ravel(), mode="lines", name=f"#{nid}",
            line=dict(color=DOMAIN_COLORS.get(dom, "#888888"), width=0.8), opacity=0.3,
            hovertemplate=f"#{nid} ({dom})<br>neuron %{{x}}: %{{y:.3g}}<extra></extra>",
            meta={"role": "neighbour", "id": int(nid), "domain": dom},
        ))
    traces.append(dict(
        type="scatter", x=x, y=q, mode="lines", name=query_label, line=dict(color="#000000", width=1.4),
        hovertemplate=f"{query_label}<br>neuron %{{x}}: %{{y:.3g}}<extra></extra>", meta={"role": "query"},
    ))
    layout = dict(
        height=height,
        margin=dict(l=34, r=4, t=4, b=22),
        showlegend=False,
        hovermode="closest",
        xaxis=dict(title=None, tickfont=dict(size=9), range=[-0.5, q.size - 0.5], showgrid=False),
        yaxis=dict(title=None, tickfont=dict(size=9), rangemode="tozero", nticks=4),
        # the same instance keeps the zoom when only the scope changes
        uirevision=query_label,
    )
    return fast_figure(traces, layout)


def query_waveform(q: Query, model: str) -> go.Figure:
    """``model``'s waveform of the query over those of its neighbours (coloured by their domain)."""
    a = q.answers[model]
    return waveform_figure(a.vector, [(int(i), vec, str(q.domain_of[i]))
                                      for i, vec in zip(a.neighbours.ids, a.neighbour_vectors)],
                           query_label=f"#{q.id}", height=WAVE_HEIGHT)
