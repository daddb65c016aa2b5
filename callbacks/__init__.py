"""Dash callbacks: one module per view, each with ``register(app)``."""

from __future__ import annotations

import dash


def triggered_components() -> set[str]:
    """Ids of the components whose change fired the running callback (empty on the initial call)."""
    return {t["prop_id"].split(".")[0] for t in dash.ctx.triggered if t.get("prop_id", ".") != "."}


def register_all(app: dash.Dash) -> None:
    from callbacks import (change, confusion, features, hard, instances, network, preview, query, state, statistics,
                           table, timeline)

    for module in (state, statistics, instances, network, features, change, hard, query, table, confusion, timeline,
                   preview):
        module.register(app)
