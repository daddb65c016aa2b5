"""The Dash app factory: one process (or many gunicorn workers) over one read-only cache."""

from __future__ import annotations

from pathlib import Path

import dash
from flask import Response, abort

from transferviz.cache import Cache

__all__ = ["create_app", "get_cache"]

_CACHE_KEY = "TRANSFERVIZ_CACHE_OBJECT"


def get_cache(app: dash.Dash) -> Cache:
    """The app's cache (opened once per process; read-only, so workers need no coordination)."""
    return app.server.config[_CACHE_KEY]


def create_app(cache_dir: str | Path, url_base_pathname: str = "/") -> dash.Dash:
    """Builds the dashboard for the cache at ``cache_dir``.

    Callbacks are registered per view with ``register(app)`` (never the global
    ``@dash.callback``), so two apps in one process stay independent.
    """
    cache = Cache.open(cache_dir)
    app = dash.Dash(
        __name__,
        title=f"transferviz: {cache.name}",
        suppress_callback_exceptions=True,
        url_base_pathname=url_base_pathname,
        # the instance table's rows and the loss maps are ~1 MB of JSON each, mostly repeated
        # keys and hover text: compressed they are ~5-20x smaller (needs dash[compress])
        compress=True,
        # Bootstrap 5.3.6 (MIT) is vendored in assets/: the page must style itself offline,
        # and a CDN stylesheet would log a console error on machines without internet.
        assets_folder=str(Path(__file__).parent / "assets"),
    )
    app.server.config[_CACHE_KEY] = cache
    _register_routes(app, cache)

    from callbacks import register_all
    from layouts.page import page_layout

    app.layout = page_layout(cache)
    register_all(app)
    return app


def _register_routes(app: dash.Dash, cache: Cache) -> None:
    """Images are fetched on demand by URL, never inlined in stores or figures."""
    prefix = app.config.url_base_pathname.rstrip("/")
    server = app.server
    long_cache = {"Cache-Control": "public, max-age=86400"}

    @server.route(f"{prefix}/thumb/<int:instance_id>.png")
    def _thumb(instance_id: int) -> Response:
        p = cache.root / "thumbs" / f"{instance_id}.png"
        if not p.is_file():
            abort(404)
        return Response(p.read_bytes(), mimetype="image/png", headers=long_cache)

    @server.route(f"{prefix}/featvis/<model>/<layer>/<int:neuron>.png")
    def _featvis(model: str, layer: str, neuron: int) -> Response:
        if model not in ("source", "target") or layer not in cache.layers:
            abort(404)
        png = cache.featvis(model, layer, neuron)
        if png is None:
            abort(404)
        return Response(png, mimetype="image/png", headers=long_cache)

    @server.route(f"{prefix}/healthz")
    def _health() -> Response:
        return Response(f"ok {cache.name}\n", mimetype="text/plain")
