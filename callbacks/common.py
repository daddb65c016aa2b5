"""Controller helpers every view's callbacks share."""

from __future__ import annotations

import dash

__all__ = ["first_open", "triggered_components"]


def triggered_components() -> set[str]:
    """Ids of the components whose change fired the running callback (empty on the initial call)."""
    return {t["prop_id"].split(".")[0] for t in dash.ctx.triggered if t.get("prop_id", ".") != "."}


def first_open(tab: str | None, view_tab: str, loaded: bool | None) -> bool:
    """Whether a view on ``view_tab`` must send its content now: its tab is shown and the
    content has not been sent before. Heavy views (the instance table's rows, the loss maps,
    the model and data panels) wait for their tab, then send once; a flag store (``loaded``)
    is checked instead of the content itself, which would be uploaded on every tab switch."""
    return tab == view_tab and not loaded
