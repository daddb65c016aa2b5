"""Dash callbacks: one module per view, each with ``register(app, cache)`` and thin controllers
(which inputs fired, what to leave as ``no_update``); what they draw comes from
``dashboard/views/<view>/``."""

from __future__ import annotations

import dash

from callbacks import (
    confusion_grid,
    features,
    hard_examples,
    image_query,
    instance_table,
    instances,
    models_data,
    network,
    neuron_change,
    page,
    statistics,
    timeline,
)
from transferviz.cache import Cache

__all__ = ["VIEWS", "register_all"]

#: Registration order: the page's URL state first, then the views tab by tab.
VIEWS = (page, statistics, instances, network, features, neuron_change, hard_examples, image_query, instance_table,
         confusion_grid, timeline, models_data)


def register_all(app: dash.Dash, cache: Cache) -> None:
    for module in VIEWS:
        module.register(app, cache)
