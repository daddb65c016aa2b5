"""WSGI entry point for deployment: ``gunicorn dashboard.wsgi:server``.

The cache folder comes from ``TRANSFERVIZ_CACHE`` (default ``cache/digits``): one run's
folder serves its analysis, a folder of runs (``cache/``) the run hub (:mod:`dashboard.hub.app`).
Every worker opens the cache read-only and memory-mapped, so they share one copy
in the page cache and behave as one.
"""

from __future__ import annotations

import os

from dashboard.hub.app import serve
from transferviz.errors import TransferVizError

try:
    app = serve(os.environ.get("TRANSFERVIZ_CACHE", "cache/digits"),
                url_base_pathname=os.environ.get("TRANSFERVIZ_URL_PREFIX", "/"))
except TransferVizError as exc:  # a missing or damaged cache
    # gunicorn prints an AppImportError as one line and stops; any other exception is a traceback per worker
    from gunicorn.errors import AppImportError

    raise AppImportError(f"error: {exc}") from None
server = app.server
