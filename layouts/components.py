"""Layout-time components that several views' layouts share (so no view's layout imports another's)."""

from __future__ import annotations

import dash_bootstrap_components as dbc

__all__ = ["segmented"]


def segmented(component_id: str, options: list[dict], value: str) -> dbc.RadioItems:
    """Radio items drawn as a compact row of joined buttons (one line where plain radios would wrap).

    dbc wraps each option in a ``.form-check`` div padded for the (here hidden) radio; the
    label's negative margin takes that padding back. The checked option gets a grey fill
    but keeps its own text colour (the red/blue of a model or domain).
    """
    return dbc.RadioItems(
        id=component_id, options=options, value=value, className="btn-group me-2 mb-1",
        inputClassName="btn-check", labelClassName="btn btn-outline-secondary",
        labelStyle={"marginLeft": "-1.5em", "fontSize": "0.7rem", "padding": "0 5px", "borderRadius": 0,
                    "lineHeight": "18px", "color": "#444"},
        labelCheckedStyle={"backgroundColor": "#dcdfe3", "fontWeight": 700, "boxShadow": "inset 0 -2px 0 #555"},
        style={"borderRadius": 4, "overflow": "hidden"})
