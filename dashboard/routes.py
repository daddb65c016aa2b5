"""The app's image routes and the URLs that point at them.

Images are fetched on demand by URL, never inlined in stores or figures: an instance's
thumbnail and a neuron's feature visualization, both read through :class:`Cache`.
"""

from __future__ import annotations

from collections.abc import Callable

import dash
from flask import Response, abort

from dashboard.live import health
from transferviz.cache import Cache
from transferviz.errors import TransferVizError

__all__ = ["UrlFor", "featvis_path", "no_prefix", "register_routes", "thumb_path", "thumb_src"]

#: Turns a route's path into a URL under the app's path prefix (``app.get_relative_path``).
UrlFor = Callable[[str], str]

#: Browsers may keep images a day: a build never changes (a rebuild is a new folder).
_LONG_CACHE = {"Cache-Control": "public, max-age=86400"}


def no_prefix(path: str) -> str:
    """``UrlFor`` of an app served at the root: a route's path is its URL."""
    return path


def thumb_path(instance_id: int) -> str:
    """Path of an instance thumbnail below the app's root."""
    return f"/thumb/{int(instance_id)}.png"


def featvis_path(model: str, layer: str, neuron: int) -> str:
    """Path of a neuron's feature visualization below the app's root."""
    return f"/featvis/{model}/{layer}/{int(neuron)}.png"


def thumb_src(prefix: str, instance_id: int) -> str:
    """URL of an instance thumbnail under the app's path prefix."""
    return (prefix or "/").rstrip("/") + thumb_path(instance_id)


def register_routes(app: dash.Dash, cache: Cache) -> None:
    """``/thumb/<id>.png``, ``/featvis/<model>/<layer>/<neuron>.png`` and ``/healthz``
    (:func:`dashboard.live.health`)."""
    prefix = app.config.url_base_pathname.rstrip("/")
    server = app.server

    @server.route(f"{prefix}/thumb/<int:instance_id>.png")
    def _thumb(instance_id: int) -> Response:
        try:
            png = cache.thumbnail(instance_id)
        except TransferVizError:
            abort(404)
        return Response(png, mimetype="image/png", headers=_LONG_CACHE)

    @server.route(f"{prefix}/featvis/<model>/<layer>/<int:neuron>.png")
    def _featvis(model: str, layer: str, neuron: int) -> Response:
        if model not in ("source", "target") or layer not in cache.layers:
            abort(404)
        png = cache.featvis(model, layer, neuron)  # type: ignore[arg-type]  # checked just above
        if png is None:
            abort(404)
        return Response(png, mimetype="image/png", headers=_LONG_CACHE)

    @server.route(f"{prefix}/healthz")
    def _health() -> Response:
        # "ok <run> <build folder>" while the served build's files are there; 503 once they are gone
        status, line = health(cache)
        return Response(f"{line}\n", status=status, mimetype="text/plain")
