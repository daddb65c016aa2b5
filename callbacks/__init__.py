"""Dash callbacks: one module per view, each with ``register(app)``."""

from __future__ import annotations

import dash


def register_all(app: dash.Dash) -> None:
    from callbacks import change, features, instances, network, state, statistics

    for module in (state, statistics, instances, network, features, change):
        module.register(app)
