"""Run-time markup of the neuron-change view: the table of the most changed neurons with their
source and target feature visualizations side by side."""

from __future__ import annotations

from typing import Any

from dash import html

from dashboard.components import featvis_img
from dashboard.lookups import featvis_px, layer_tag, layer_title
from dashboard.routes import UrlFor, featvis_path, no_prefix
from dashboard.views.neuron_change.data import changed_rows
from transferviz.cache import Cache

__all__ = ["IMAGE_PX", "change_list"]

#: Display size of the feature visualizations in the list, whatever their pixel size.
IMAGE_PX = 72


def change_list(cache: Cache, layer: str, show_gray: bool, url_for: UrlFor = no_prefix) -> html.Div | html.Table:
    """The list for the layer selector's value (a layer or ``ALL``) and the gray switch, or
    why there is none."""
    change = cache.feature_change
    if change is None:
        return html.Div("This cache has no feature visualizations (it was built with --no-featvis or featvis."
                        "enabled: false); rebuild without it to compare neurons.", className="text-muted")
    rows = changed_rows(change, cache.layers, layer, show_gray)
    if rows.empty:
        return html.Div("No neuron to show: every visualization of this layer was detected as gray.",
                        className="text-muted")
    native = featvis_px(cache)

    def img(model: str, layer: str, neuron: int) -> html.Img:
        return featvis_img(url_for(featvis_path(model, layer, neuron)), IMAGE_PX, native,
                           alt=f"{model} feature visualization of {layer} #{neuron}", border="1px solid #ddd")
    body = []
    r: Any  # the stubs type itertuples' fields as any scalar or NA; the columns are the cache's (str, int64, ...)
    for r in rows.itertuples():
        gray = [s for s, g in (("source", r.gray_source), ("target", r.gray_target)) if g]
        body.append(html.Tr([
            html.Td(layer_tag(cache, r.layer), title=layer_title(cache, r.layer)), html.Td(f"#{r.neuron}"),
            html.Td(f"{r.similarity:.2f}"),
            html.Td(img("source", r.layer, r.neuron)),
            html.Td(img("target", r.layer, r.neuron)),
            html.Td(f"{r.colourfulness_source:.2f} / {r.colourfulness_target:.2f}"
                    + (f" (gray: {', '.join(gray)})" if gray else ""), className="small text-muted"),
        ]))
    head = html.Thead(html.Tr([html.Th("layer"), html.Th("neuron"), html.Th("similarity"),
                               html.Th("source", className="tv-source"), html.Th("target", className="tv-target"),
                               html.Th("colourfulness")]))
    return html.Table([head, html.Tbody(body)], className="table table-sm align-middle", id="change-table")
