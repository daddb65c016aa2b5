"""The route of the ranking grid's histograms: ``/ranking-hist/<model>/<class>/<layer>/<neuron>.svg``.

The grid's markdown cells cannot show ``data:`` URIs (see :mod:`dashboard.views.features.ranking_grid`),
so each listed neuron's mirrored conductance histogram is an SVG of its own URL, drawn on first request
and kept per build, model and class (:func:`dashboard.views.features.markup.row_histograms`).
"""

from __future__ import annotations

import dash
from flask import Response, abort

from dashboard.lookups import MODELS
from dashboard.views.features.data import discriminability, neuron_key
from dashboard.views.features.markup import mirrored_histogram_svg, row_histograms
from transferviz.cache import Cache
from transferviz.errors import TransferVizError

__all__ = ["histogram_svg", "register_hist_route"]

#: Browsers may keep a histogram a day: a build never changes (a rebuild is a new folder).
_LONG_CACHE = {"Cache-Control": "public, max-age=86400"}


def histogram_svg(cache: Cache, model: str, class_index: int, layer: str, neuron: int) -> str | None:
    """The SVG of a neuron of the class's ranking for ``model``; None for anything the ranking does
    not list (an unknown model, class, layer or neuron). A cache without conductance (a partial
    build) gets the empty histogram, as the list showed before."""
    if model not in MODELS or not 0 <= class_index < len(cache.classes):
        return None
    d = discriminability(cache, model, class_index)  # type: ignore[arg-type]  # checked just above
    if not d.ok or neuron_key(layer, neuron) not in set(map(neuron_key, d.neurons["layer"], d.neurons["neuron"])):
        return None
    try:
        svg = row_histograms(cache, model, class_index, [(layer, neuron)]).get((layer, neuron))  # type: ignore[arg-type]
    except TransferVizError:
        svg = None
    return svg or mirrored_histogram_svg([], [])


def register_hist_route(app: dash.Dash, cache: Cache) -> None:
    """Adds the histogram route to ``app``'s server, under its path prefix (as :mod:`dashboard.routes`)."""
    prefix = (app.config.url_base_pathname or app.config.routes_pathname_prefix or "/").rstrip("/")

    @app.server.route(f"{prefix}/ranking-hist/<model>/<int:class_index>/<layer>/<int:neuron>.svg")
    def _ranking_hist(model: str, class_index: int, layer: str, neuron: int) -> Response:
        svg = histogram_svg(cache, model, class_index, layer, neuron)
        if svg is None:
            abort(404)
        return Response(svg, mimetype="image/svg+xml", headers=_LONG_CACHE)
