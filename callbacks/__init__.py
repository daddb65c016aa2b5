"""Dash callbacks: one module per view, each with ``register(app)``."""

from __future__ import annotations

from typing import Any

import dash
from dash import html

from dashboard import data
from dashboard.figures.theme import DOMAIN_COLORS


def triggered_components() -> set[str]:
    """Ids of the components whose change fired the running callback (empty on the initial call)."""
    return {t["prop_id"].split(".")[0] for t in dash.ctx.triggered if t.get("prop_id", ".") != "."}


def first_open(tab: str | None, view_tab: str, loaded: bool | None) -> bool:
    """Whether a view on ``view_tab`` must send its content now: its tab is shown and the
    content has not been sent before. Heavy views (the instance table's rows, the loss maps,
    the model and data panels) wait for their tab, then send once; a flag store (``loaded``)
    is checked instead of the content itself, which would be uploaded on every tab switch."""
    return tab == view_tab and not loaded


def thumb_img(prefix: str, instance_id: int, domain: str, px: int, *, border: int = 2, alt: str | None = None,
              title: str | None = None, **style: Any) -> html.Img:
    """An instance thumbnail ``px`` x ``px`` in a frame of its domain's colour (grey for an unknown
    domain); ``alt`` defaults to "instance ID", extra keyword arguments are added to its style."""
    extra = {} if title is None else {"title": title}
    return html.Img(src=data.thumb_src(prefix, instance_id), width=px, height=px,
                    alt=f"instance {instance_id}" if alt is None else alt, **extra,
                    style={"imageRendering": "pixelated", "borderRadius": 2,
                           "border": f"{border}px solid {DOMAIN_COLORS.get(domain, '#555')}", **style})


def register_all(app: dash.Dash) -> None:
    from callbacks import (
        change,
        confusion,
        features,
        hard,
        instances,
        network,
        preview,
        query,
        state,
        statistics,
        table,
        timeline,
    )
    from dashboard.app import get_cache
    from dashboard.data_network import warm

    warm(get_cache(app))  # the network and feature views' small tables, parsed once at start-up

    for module in (state, statistics, instances, network, features, change, hard, query, table, confusion, timeline,
                   preview):
        module.register(app)
