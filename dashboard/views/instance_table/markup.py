"""Run-time markup of the instance table: the image pool and the filter box's message."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dash import html

from dashboard.components import thumb_img
from dashboard.pool import POOL_SIZE, as_ids
from dashboard.theme import MISPREDICTED_COLOR, SOURCE_COLOR, TARGET_COLOR
from dashboard.views.instance_table.data import records_for
from transferviz.cache import Cache

__all__ = ["POOL_ITEM", "filter_message", "pool_view"]

#: Pattern-matching id type of a pool image: ``{"type": POOL_ITEM, "index": instance id}``; a click
#: focuses the instance (``ids.FOCUS``), as the confusion grid's thumbnails do.
POOL_ITEM = "table-pool-item"


def _pool_item(rec: dict[str, Any], prefix: str) -> html.Div:

    def model_line(model: str, mcolor: str) -> html.Div:
        pred, loss = rec[f"{model}_pred"], rec[f"{model}_loss"]
        wrong = pred != rec["label"]
        return html.Div([
            html.Span(model[0].upper(), style={"color": mcolor, "fontWeight": 700}), " ",
            html.Span(pred, style={"fontWeight": 700, "color": MISPREDICTED_COLOR} if wrong else {}),
            "\u2717" if wrong else "", f" {loss:.2f}" if loss is not None else "",
        ], style={"whiteSpace": "nowrap"})

    title = (f"#{rec['id']} · {rec['domain']} · {rec['split']} · true {rec['label']} · "
             f"source model {rec['source_pred']} (loss {rec['source_loss']}) · "
             f"target model {rec['target_pred']} (loss {rec['target_loss']}) · click to inspect it")
    return html.Div(id={"type": POOL_ITEM, "index": int(rec["id"])}, n_clicks=0, role="button",
                    title=title, className="table-pool-item",
                    style={"width": 74, "fontSize": "0.64rem", "lineHeight": 1.2, "textAlign": "center",
                           "cursor": "pointer"}, children=[
        thumb_img(prefix, rec["id"], rec["domain"], 52, border=3),
        html.Div(f"#{rec['id']}", className="text-muted"),
        html.Div(["true ", html.B(rec["label"])], style={"whiteSpace": "nowrap", "overflow": "hidden",
                                                         "textOverflow": "ellipsis"}),
        model_line("source", SOURCE_COLOR),
        model_line("target", TARGET_COLOR),
    ])


def pool_view(cache: Cache, pool: Sequence[Any] | None, prefix: str) -> tuple[Any, str]:
    """``(children, title)`` of the image pool, newest first."""
    recs = records_for(cache, as_ids(pool)[-POOL_SIZE:])
    title = f"Image pool ({len(recs)}/{POOL_SIZE})"
    if not recs:
        return html.Div("Empty: tick rows in the table (or click instances on the timeline) to collect them here.",
                        className="text-muted small"), title
    return [_pool_item(r, prefix) for r in reversed(recs)], title


def filter_message(message: Any) -> Any:
    """The filter box's message as shown: a refusal in red, anything else (or no update) as it is."""
    if isinstance(message, str) and message.startswith("Refused"):
        return html.Span(message, className="text-danger")
    return message
