"""STUB: replaced by the view's implementation (issue 6)."""

from __future__ import annotations

import dash


def register(app: dash.Dash) -> None:
    pass
