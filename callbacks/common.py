"""Controller helpers every view's callbacks share."""

from __future__ import annotations

from typing import Any

import dash

from dashboard.pool import clicked_id

__all__ = ["clicked_focus", "first_open", "fired_click", "triggered_components"]


def triggered_components() -> set[str]:
    """Ids of the components whose change fired the running callback (empty on the initial call)."""
    return {t["prop_id"].split(".")[0] for t in dash.ctx.triggered if t.get("prop_id", ".") != "."}


def first_open(tab: str | None, view_tab: str, loaded: bool | None) -> bool:
    """Whether a view on ``view_tab`` must send its content now: its tab is shown and the
    content has not been sent before. Heavy views (the instance table's rows, the loss maps,
    the model and data panels) wait for their tab, then send once; a flag store (``loaded``)
    is checked instead of the content itself, which would be uploaded on every tab switch."""
    return tab == view_tab and not loaded


def fired_click() -> tuple[Any, Any]:
    """``(id, n_clicks)`` of the pattern-matching component whose click fired the running callback."""
    fired = dash.ctx.triggered[0] if dash.ctx.triggered else {}
    return dash.ctx.triggered_id, fired.get("value")


def clicked_focus(triggered: Any, n_clicks: Any, kind: str) -> Any:
    """The focus after a click on a ``{"type": kind, "index": id}`` component: the instance id,
    or ``no_update`` when the component was merely (re)drawn."""
    clicked = clicked_id(triggered, n_clicks, kind)
    return dash.no_update if clicked is None else clicked
