"""The app's image routes and the URLs that point at them.

Images are fetched on demand by URL, never inlined in stores or figures: an instance's
thumbnail and a neuron's feature visualization, both read through :class:`Cache`.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from pathlib import Path

import dash
from flask import Response, abort

from dashboard.live import health
from transferviz.cache import BUILDS_DIR, Cache
from transferviz.errors import TransferVizError

__all__ = ["UrlFor", "featvis_command", "featvis_path", "no_prefix", "not_rendered_svg", "register_routes",
           "thumb_path", "thumb_src"]

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


def featvis_command(cache: Cache, layer: str, neuron: int, model: str | None = None) -> str:
    """The command that renders a neuron the build left out (the build renders only those the views pick:
    ``transferviz.build.analysis.featvis_neurons``): for ``model`` alone when the other model has it, else
    for both (the change view compares the two)."""
    root = Path(cache.root)
    link = root.parent.parent / cache.name if root.parent.name == BUILDS_DIR else Path("cache") / cache.name
    other = {"source": "target", "target": "source"}.get(str(model))
    which = f" --model {model}" if other and int(neuron) in cache.featvis_neurons(other, layer) else ""  # type: ignore[arg-type]
    return f"transferviz featvis {link} --layer {layer} --neurons {int(neuron)}{which}"


def not_rendered_svg(command: str) -> bytes:
    """The placeholder the featvis route serves for a neuron without a visualization: "not rendered" and,
    for a reader of the file, the command that renders it (never a broken-image icon)."""
    return ('<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">'
            f"<title>not rendered: {escape(command)}</title>"
            '<rect x="0.5" y="0.5" width="63" height="63" fill="#f3f3f3" stroke="#bbb" stroke-dasharray="3 2"/>'
            '<text x="32" y="29" font-size="10" text-anchor="middle" fill="#777" font-family="sans-serif">not</text>'
            '<text x="32" y="42" font-size="10" text-anchor="middle" fill="#777" font-family="sans-serif">rendered'
            "</text></svg>").encode()


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
        if not 0 <= neuron < int(cache.layer_sizes.get(layer, 0)):
            abort(404)
        png = cache.featvis(model, layer, neuron)  # type: ignore[arg-type]  # checked just above
        if png is None:
            # a neuron the build did not render (an old link, a page from before a switch): a placeholder
            # that says so, never a broken image; not kept, a later `transferviz featvis` may render it
            svg = not_rendered_svg(featvis_command(cache, layer, neuron, model))
            return Response(svg, mimetype="image/svg+xml", headers={"Cache-Control": "no-store",
                                                                     "X-Transferviz-Featvis": "not-rendered"})
        return Response(png, mimetype="image/png", headers=_LONG_CACHE)

    @server.route(f"{prefix}/healthz")
    def _health() -> Response:
        # "ok <run> <build folder>" while the served build's files are there; 503 once they are gone
        status, line = health(cache)
        return Response(f"{line}\n", status=status, mimetype="text/plain")
