"""The feature view's ranking list as a dash-ag-grid grid (issue 13: the app's one table component).

One row per listed neuron of Algorithm 1 (client-side row model: a page of ``MAX_ROWS`` rows is sent
whole, "show more" appends a page); a row's checkbox (the grid's row selection) puts the neuron on
the biplot and in the URL's ``neurons``. The row id is the neuron's ``"layer:index"`` key, so the
server sets the selection as ``{"ids": [...]}`` and the grid reports the rows' data.

Pictures are markdown images (dash-ag-grid's built-in ``markdown`` cell renderer, no JavaScript of our
own). That renderer keeps only relative and http(s) URLs (react-markdown's ``defaultUrlTransform``
drops ``data:`` URIs), so a row's mirrored conductance histogram is served by a route of its own
(:func:`hist_path`, :mod:`dashboard.views.features.hist_route`) instead of being inlined: each listed
row's image loads once and the browser keeps it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dash_ag_grid as dag

__all__ = ["IMAGE_PX", "ROW_PX", "hist_path", "keys_of_selection", "ranking_columns", "ranking_grid", "selection",
           "stability_bar"]

#: Display size of a row's feature visualization, whatever its pixel size (``assets/tv-grid.css``).
IMAGE_PX = 28
#: Height of a row: the 28 px picture and the histogram with a little air.
ROW_PX = 34
#: A share in [0, 1] in ninths of a character cell: "·" for none, then eighth blocks up to a full one.
_BLOCKS = "·▁▂▃▄▅▆▇█"


def hist_path(model: str, class_index: int, layer: str, neuron: int) -> str:
    """Path (below the app's root) of a ranked neuron's mirrored conductance histogram, an SVG."""
    return f"/ranking-hist/{model}/{int(class_index)}/{layer}/{int(neuron)}.svg"


def stability_bar(stability: float) -> str:
    """A bootstrap stability in [0, 1] (clipped) as one block character, its height the share."""
    return _BLOCKS[round(max(0.0, min(1.0, float(stability))) * 8)]


def selection(keys: Sequence[str]) -> dict[str, list[str]]:
    """The grid's ``selectedRows`` for the neurons ``keys`` (row ids)."""
    return {"ids": [str(k) for k in keys]}


def keys_of_selection(selected: Any) -> list[str]:
    """Neuron keys of the grid's ``selectedRows``: the rows' data the grid reports after a click
    (``[{"value": "features.3:12", ...}]``) or the ``{"ids": [...]}`` the server last set. Junk gives []."""
    if isinstance(selected, Mapping):
        raw = selected.get("ids")
        items = raw if isinstance(raw, list) else []
    elif isinstance(selected, list):
        items = [r.get("value") if isinstance(r, Mapping) else None for r in selected]
    else:
        return []
    return [v for v in items if isinstance(v, str)]


def ranking_columns(label_px: int, with_images: bool, with_stability: bool) -> list[dict[str, Any]]:
    """Column definitions: neuron (in its model's colour), u, the stability bar (caches with a
    bootstrap), the feature visualization (caches with some) and the histogram, which takes the rest.
    Unstable neurons' label, u and bar are greyed (``tv-unstable-cell``)."""
    faded = {"tv-unstable-cell": "params.data.unstable"}
    cols: list[dict[str, Any]] = [
        {"field": "label", "headerName": "neuron", "width": label_px, "tooltipField": "title",
         "cellClassRules": {"tv-source": "params.data.model === 'source'",
                            "tv-target": "params.data.model === 'target'", **faded},
         "cellStyle": {"fontWeight": 600}},
        {"field": "u_text", "headerName": "u", "width": 54, "type": "rightAligned", "tooltipField": "u_title",
         "headerTooltip": "discriminability: the regularised domain classifier's weight of the neuron "
                          "(three significant figures; compare values with each other)",
         "cellClassRules": faded, "cellStyle": {"fontFamily": "var(--bs-font-monospace)"}},
    ]
    if with_stability:
        cols.append({"field": "stability", "headerName": "s", "width": 20, "tooltipField": "stability_title",
                     "headerTooltip": "bootstrap stability: the share of resamples of the instances in which the "
                                      "neuron is among the top neurons by |u| with the same sign; unstable "
                                      "neurons are greyed",
                     "cellClassRules": faded, "cellStyle": {"textAlign": "center"}})
    if with_images:
        cols.append({"field": "image", "headerName": "", "width": IMAGE_PX + 6, "cellRenderer": "markdown"})
    # the caption is short: the column is ~80 px wide in a 1366 px screen's three-column card
    cols.append({"field": "hist", "headerName": "src ↑ tgt ↓", "flex": 1, "minWidth": 60,
                 "cellRenderer": "markdown",
                 "headerTooltip": "histogram of the neuron's Layer Conductance over the class's source instances "
                                  "(above the axis) and target instances (below), each normalised to its domain "
                                  "size"})
    return cols


def ranking_grid(id_: str, label_px: int, with_images: bool, with_stability: bool) -> dag.AgGrid:
    """The empty grid of the layout (the controls callback fills its rows and selection)."""
    return dag.AgGrid(
        id=id_, rowData=[], columnDefs=ranking_columns(label_px, with_images, with_stability),
        getRowId="params.data.value", selectedRows=selection([]),
        # the server's order (most or least discriminative first) is the list: no sorting, no moving
        defaultColDef={"sortable": False, "resizable": False, "suppressMovable": True,
                       "suppressHeaderMenuButton": True},
        dashGridOptions={
            # a checkbox per row; a click elsewhere on the row does not toggle it (the pictures are
            # for looking at), and there is no select-all: the biplot needs a handful of axes
            "rowSelection": {"mode": "multiRow", "checkboxes": True, "headerCheckbox": False,
                             "enableClickSelection": False},
            "selectionColumnDef": {"width": 28, "pinned": False, "suppressHeaderMenuButton": True},
            "rowHeight": ROW_PX, "headerHeight": 24, "suppressCellFocus": True, "tooltipShowDelay": 300,
            "animateRows": False, "suppressRowHoverHighlight": False,
        },
        className="tv-grid tv-ranking-grid",
        # the card is ~240 px wide at 1366 px: narrow paddings so the columns fit without a scroll bar
        style={"height": "15.5rem", "width": "100%", "fontSize": "0.8rem", "--ag-cell-horizontal-padding": "3px",
               "--ag-header-column-resize-handle-display": "none"},
    )
