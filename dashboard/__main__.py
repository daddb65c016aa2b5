"""``python -m dashboard [--cache DIR] [--host 127.0.0.1] [--port 8050]``.

With no ``--cache`` it serves the embedded demo (``cache/digits``), building it
first from ``configs/digits.yaml`` when it is absent. ``--cache`` names one run
(``cache/digits``: its analysis, as before) or a folder of runs (``cache/``: the run
hub, each run's analysis under ``/run/<name>/``; see :mod:`dashboard.hub.app`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from werkzeug.serving import WSGIRequestHandler

from dashboard.app import create_app
from dashboard.hub.app import serve
from transferviz.cache import current_build
from transferviz.errors import TransferVizError

REPO = Path(__file__).resolve().parent.parent
DEMO_CONFIG = REPO / "configs" / "digits.yaml"


def ensure_demo_cache(cache_root: Path) -> Path:
    """Returns the demo cache folder, building it first if it is absent."""
    if current_build(cache_root, "digits") is None:
        # the build (training, torch's autograd, openTSNE) is loaded only when there is one to run
        from transferviz.build import build
        from transferviz.config import load_config
        from transferviz.preprocess import resolve_device

        print(f"no demo cache under {cache_root}: building it from {DEMO_CONFIG} (a few minutes on a CPU)",
              file=sys.stderr)
        report = build(load_config(DEMO_CONFIG), cache_root, resolve_device("auto"),
                       log=lambda m: print(m, file=sys.stderr))
        print(report.summary(), file=sys.stderr)
    return cache_root / "digits"


class QuietServerHandler(WSGIRequestHandler):
    """Werkzeug's request handler without its ``Server: Werkzeug/x Python/y`` header (issue 15: no
    versions on the wire); the header is written before the app's, so the app cannot replace it."""

    def version_string(self) -> str:
        return "transferviz"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dashboard", description="Serve the transferviz dashboard.")
    p.add_argument("--cache", type=Path, help="a run's cache folder (cache/digits), or a folder of runs (cache/: "
                   "the run hub); default: the demo, built if absent")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8050)
    p.add_argument("--debug", action="store_true", help="Dash debug mode (hot reload, error pop-ups)")
    args = p.parse_args(argv)
    try:
        if args.cache is None:
            cache_dir = ensure_demo_cache(REPO / "cache")
            app = create_app(cache_dir)
        else:
            cache_dir = args.cache
            app = serve(cache_dir)
    except TransferVizError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"serving {cache_dir} at http://{args.host}:{args.port}/", file=sys.stderr)
    app.run(host=args.host, port=args.port, debug=args.debug, request_handler=QuietServerHandler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
