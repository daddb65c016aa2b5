"""The neuron panel's "most similar neurons" table as a dash-ag-grid grid (issue 13: one table component).

Five rows, sent whole (client-side row model): the other model's neuron (``L3 #12`` in that model's
colour, its importance rank as ``r4``), the similarity (sortable as a number), a bar of it, and the
neuron's feature visualization, or the class's instance with the highest conductance when the
visualization was not rendered. The picture is a markdown image (dash-ag-grid's built-in
``markdown`` cell renderer: no JavaScript of our own); its size comes from ``assets/tv-grid.css``.
"""

from __future__ import annotations

from typing import Any

import dash_ag_grid as dag

from dashboard.routes import UrlFor, featvis_path, thumb_path
from dashboard.theme import DOMAIN_COLORS

__all__ = ["GRID", "bar", "similar_grid", "similar_rows"]

GRID = "network-similar-grid"
#: Characters of the similarity bar (each in eighths: 40 steps, as the 40 px bar it replaces).
BAR_CHARS = 5
_EIGHTHS = " ▏▎▍▌▋▊▉"


def bar(value: float, width: int = BAR_CHARS) -> str:
    """A similarity in [0, 1] as a bar of block characters (clipped outside)."""
    steps = round(max(0.0, min(1.0, float(value))) * width * 8)
    full, part = divmod(steps, 8)
    return ("█" * full + (_EIGHTHS[part] if part else "")).ljust(width)


def similar_rows(similar: list[dict[str, Any]], other: str, layer: str, number: int,
                 url_for: UrlFor) -> list[dict[str, Any]]:
    """The grid's rows for ``NeuronDetail.similar`` (the other model's neurons of ``layer``)."""
    rows = []
    for s in similar:
        n = int(s["neuron"])
        if s["has_featvis"]:
            image = f"![feature visualization of {other} #{n}]({url_for(featvis_path(other, layer, n))})"
        elif s["top_id"] is not None:
            # the class's instance with the highest conductance, its reason on hover
            image = (f"![instance {int(s['top_id'])}]({url_for(thumb_path(int(s['top_id'])))} "
                     '"the class\'s instance with the highest conductance (feature visualization not rendered)")')
        else:
            image = ""
        rows.append({"neuron": f"L{number} #{n}", "rank": f"r{s['rank']}" if s["rank"] else "",
                     "similarity": round(float(s["similarity"]), 3), "bar": bar(s["similarity"]), "image": image})
    return rows


def similar_grid(similar: list[dict[str, Any]], other: str, layer: str, number: int, layer_title: str | None,
                 url_for: UrlFor) -> dag.AgGrid:
    """The grid (five rows fit unscrolled; the image column holds 36 px pictures; ~230 px wide)."""
    rows = similar_rows(similar, other, layer, number, url_for)
    cols = [
        {"field": "neuron", "headerName": "neuron", "width": 64, "headerTooltip": layer_title or layer,
         "cellStyle": {"color": DOMAIN_COLORS[other], "fontWeight": 600}},
        {"field": "rank", "headerName": "", "width": 28, "headerTooltip": f"importance rank in the {other} model",
         "cellStyle": {"color": "#6c757d", "fontSize": "0.7rem"}},
        {"field": "similarity", "headerName": "sim.", "width": 46, "type": "rightAligned",
         "headerTooltip": "cosine of the two neurons' attributions over the class's target instances",
         "valueFormatter": {"function": "d3.format('.3f')(params.value)"}},
        {"field": "bar", "headerName": "", "flex": 1, "minWidth": 40, "sortable": False,
         "cellStyle": {"color": "#444", "fontSize": "0.7rem", "letterSpacing": "-1px"}},
        {"field": "image", "headerName": "", "width": 44, "sortable": False, "cellRenderer": "markdown"},
    ]
    return dag.AgGrid(
        id=GRID, rowData=rows, columnDefs=cols, className="tv-grid tv-similar-grid",
        defaultColDef={"sortable": True, "resizable": False, "suppressHeaderMenuButton": True},
        dashGridOptions={"rowHeight": 40, "headerHeight": 24, "domLayout": "autoHeight", "suppressCellFocus": True,
                         "tooltipShowDelay": 300, "animateRows": False},
        # the panel is ~250 px wide: narrow paddings so the five columns fit without a scroll bar
        style={"width": "100%", "fontSize": "0.75rem", "--ag-cell-horizontal-padding": "4px",
               "--ag-header-column-resize-handle-display": "none"},
    )
