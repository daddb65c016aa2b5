"""STUB: replaced by the view's implementation (issue 6)."""

from __future__ import annotations

from dash import html

from transferviz.cache import Cache


def layout(cache: Cache) -> html.Div:
    return html.Div("timeline view: not built yet", className="tv-card")
