"""The transferviz dashboard: ``create_app(cache_dir)``; ``python -m dashboard``; ``gunicorn dashboard.wsgi:server``."""

from __future__ import annotations


def create_app(cache_dir, url_base_pathname: str = "/"):
    from dashboard.app import create_app as _create

    return _create(cache_dir, url_base_pathname)


__all__ = ["create_app"]
