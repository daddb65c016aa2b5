"""Many runs in one server (issue 14, item 1): the hub at the prefix, each run's analysis under
``<prefix>run/<name>/``.

:func:`serve` picks what a path is: a run (its link or a build folder) opens directly as before; a folder of
runs opens the hub. The hub is a Dash app of its own (the table of runs and the comparison page); its Flask
server's WSGI entry is wrapped by :class:`RunDispatcher`, which hands every request under ``run/<name>/`` to
that run's own dashboard (``dashboard.app.create_app`` with the run's URL prefix), made on the first request
for it. Each run's app holds its own cache and callbacks (``create_app`` registers on the app, never
globally), so runs stay independent, and a run that fails to open answers its one-line error (503) without
touching the others. ``app.run`` (``python -m dashboard``) and gunicorn (``dashboard.wsgi:server``) both call
the Flask server, so both serve the runs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import dash
from werkzeug.utils import redirect
from werkzeug.wrappers import Response

from dashboard.app import SECURITY_HEADERS, create_app
from dashboard.guards import callback_error, install_guards
from dashboard.hub import callbacks as hub_callbacks
from dashboard.hub.markup import frame
from dashboard.hub.runs import RunIndex, is_hub_folder, run_href, valid_run_name
from transferviz.errors import TransferVizError

__all__ = ["RunDispatcher", "create_hub", "serve"]

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def serve(path: str | Path, url_base_pathname: str = "/") -> dash.Dash:
    """The app for ``path``: the hub when it is a folder of runs (no manifest of its own, at least one run),
    else the run's dashboard as before (with its one-line error when ``path`` is no cache)."""
    p = Path(path)
    if is_hub_folder(p):
        return create_hub(p, url_base_pathname=url_base_pathname)
    return create_app(p, url_base_pathname=url_base_pathname)


def create_hub(root: str | Path, url_base_pathname: str = "/") -> dash.Dash:
    """The hub over the runs of the folder ``root``: the table of runs and the comparison page at
    ``url_base_pathname``, each run's analysis under ``<url_base_pathname>run/<name>/``."""
    root = Path(root)
    index = RunIndex(root)
    if not index.scan():
        raise TransferVizError(f"no runs in {root}; build one with 'transferviz build CONFIG --cache-dir {root}'")
    app = dash.Dash(
        __name__, title=f"transferviz: runs in {root.name or root}", url_base_pathname=url_base_pathname,
        suppress_callback_exceptions=True,  # the pages are made by a callback: their components come later
        compress=True, on_error=callback_error,
        assets_folder=str(Path(__file__).resolve().parent.parent / "assets"),  # the run pages' vendored Bootstrap
    )
    prefix = app.config.url_base_pathname
    app.layout = frame(root, prefix)
    hub_callbacks.register(app, index, prefix)

    @app.server.route(f"{prefix}healthz")
    def _health() -> Response:
        # the hub answers while its folder lists runs; each run's own /healthz is under run/<name>/
        runs = index.scan()
        failed = [r.name for r in runs if not r.ok]
        line = f"ok hub {len(runs) - len(failed)} run(s)" + (f", not opening: {', '.join(failed)}" if failed else "")
        return Response(f"{line}\n", status=200 if len(runs) > len(failed) else 503, mimetype="text/plain")

    @app.server.after_request
    def _security_headers(response):  # type: ignore[no-untyped-def]
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        return response

    install_guards(app, None)  # a malformed callback request: one line and 400, never a 500
    app.server.wsgi_app = RunDispatcher(app.server.wsgi_app, index, prefix)  # type: ignore[method-assign]
    return app


class RunDispatcher:
    """WSGI middleware: ``<prefix>run/<name>/...`` goes to the run's own app (made on its first request),
    everything else to the hub."""

    def __init__(self, hub: WsgiApp, index: RunIndex, prefix: str) -> None:
        self.hub = hub
        self.index = index
        self.prefix = prefix if prefix.endswith("/") else prefix + "/"
        self._apps: dict[str, tuple[str, WsgiApp]] = {}  # run -> (the build its app was made on, its app)
        self._lock = threading.Lock()  # one app made at a time (create_app reads and checks the cache)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        runs = self.prefix + "run/"
        if not path.startswith(runs):
            return self.hub(environ, start_response)
        name, slash, _ = path[len(runs):].partition("/")
        if not slash:  # /run/<name>: the app's pages and routes live below /run/<name>/
            query = environ.get("QUERY_STRING")
            return redirect(f"{runs}{name}/" + (f"?{query}" if query else ""), code=308)(environ, start_response)
        app, status, problem = self.app_for(name)
        if app is None:
            return Response(f"{problem}\n", status=status, mimetype="text/plain")(environ, start_response)
        return app(environ, start_response)

    def app_for(self, name: str) -> tuple[WsgiApp | None, int, str]:
        """The run's app (made now if needed), else the HTTP status and the one-line reason."""
        run = self.index.get(name) if valid_run_name(name) else None
        if run is None:
            return None, 404, f"no run '{name}' in {self.index.root}; the hub at {self.prefix} lists the runs"
        if run.cache is None:
            return None, 503, f"run '{name}' does not open: {run.error}"
        with self._lock:
            made = self._apps.get(name)
            if made is not None:
                # the run's app follows its link itself (dashboard.live); a new build is served there
                return made[1], 200, ""
            try:
                app = create_app(run.path, url_base_pathname=run_href(self.prefix, name), hub_href=self.prefix)
            except TransferVizError as exc:
                return None, 503, f"run '{name}' does not open: {exc}"
            self._apps[name] = (run.build, app.server)
            return app.server, 200, ""
