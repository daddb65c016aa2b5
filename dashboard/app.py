"""The Dash app factory: one process (or many gunicorn workers) over one read-only cache."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import dash

from callbacks import register_all
from dashboard.guards import install_guards
from dashboard.live import LiveCache
from dashboard.routes import register_routes
from layouts.page import page_layout

__all__ = ["SECURITY_HEADERS", "create_app"]

#: Sent with every answer (issue 15): no MIME sniffing, no framing by other sites (clickjacking), no
#: full URLs -- which carry the dashboard's state -- leaked to other origins. Dash's own scripts are
#: inline and eval-free by default but its renderer needs 'unsafe-eval' for clientside callbacks,
#: so the policy restricts framing only rather than scripts.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
    "Content-Security-Policy": "frame-ancestors 'self'",
    "Referrer-Policy": "same-origin",
}


def create_app(cache_dir: str | Path, url_base_pathname: str = "/", hub_href: str | None = None) -> dash.Dash:
    """Builds the dashboard for the cache at ``cache_dir`` (``hub_href``: the run hub's URL, when the run is
    served by one: the page's title links back to it).

    The cache is handed to every view's ``register(app, cache)`` (never the global
    ``@dash.callback``), so two apps in one process stay independent.
    """
    # the build the cache's link names now, followed to newly published builds at page loads (dashboard/live.py)
    live = LiveCache.open(cache_dir)
    cache = live.as_cache()  # what the views get: every attribute forwarded to the build served
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
    register_routes(app, cache)

    @app.server.after_request
    def _security_headers(response):  # type: ignore[no-untyped-def]
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        return response

    install_guards(app, cache)  # the cache checked; no 500 from a callback or a malformed request
    page = page_layout if hub_href is None else partial(page_layout, hub_href=hub_href)
    live.install(app, page)  # the layout, built once per build; page loads switch to a new build
    register_all(app, cache)
    return app
