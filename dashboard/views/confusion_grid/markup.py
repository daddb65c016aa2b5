"""Run-time markup of the confusion grid: the clicked cell's caption and its thumbnails."""

from __future__ import annotations

from typing import Any

import numpy as np
from dash import html

from dashboard.components import thumb_img
from dashboard.lookups import instance_records
from dashboard.theme import CORRECT_COLOR, DOMAIN_COLORS, MISPREDICTED_COLOR
from dashboard.views.confusion_grid import data
from transferviz.cache import Cache

__all__ = ["LIST_HINT", "MAX_LISTED", "THUMB", "cell_list"]

#: Pattern-matching id type of a listed thumbnail: ``{"type": THUMB, "index": instance id}``.
THUMB = "confusion-thumb"
#: Thumbnails listed for a cell; beyond this the list says how many more.
MAX_LISTED = 60
#: What the list says before a cell is chosen (also the layout's initial text).
LIST_HINT = "Click a cell of the grid to see its instances."


def _thumb(rec: dict[str, Any], model: str, conf: float | None, prefix: str) -> html.Div:
    """A clickable thumbnail: domain-coloured frame, id and the model's confidence."""
    conf_text = f"{conf:.0%}" if conf is not None and np.isfinite(conf) else "\u2014"
    title = (f"#{rec['id']} · {rec['domain']} ({rec['domain_name']}) · {rec['split']} · true {rec['label_name']} · "
             f"{model} model: {rec[f'{model}_pred_name']} ({conf_text}) · click to query this instance")
    return html.Div(
        id={"type": THUMB, "index": rec["id"]}, n_clicks=0, title=title, role="button",
        style={"width": 48, "textAlign": "center", "fontSize": "0.64rem", "cursor": "pointer", "lineHeight": 1.15},
        children=[
            thumb_img(prefix, rec["id"], rec["domain"], 42, alt=title),
            html.Div(f"#{rec['id']}", className="text-muted"),
            html.Div(conf_text),
        ])


def cell_list(cache: Cache, model: Any, domain: Any, split: Any, cell: Any, prefix: str) -> tuple[Any, Any]:
    """``(caption, thumbnails)`` of the clicked cell; the hint when no cell is chosen."""
    model, domain, split = data.selection(model, domain, split)
    names = cache.classes
    c = data.valid_cell(cell, len(names))
    if c is None:
        return "", html.Div(LIST_HINT, className="text-muted small")
    true, pred = c
    found = data.cell_ids(cache, model, domain, split, true, pred)
    verdict = ("correct", CORRECT_COLOR) if true == pred else ("mistaken", MISPREDICTED_COLOR)
    caption = html.Div([
        html.B(f"true {names[true]} \u2192 predicted {names[pred]}"),
        html.Span(f" ({verdict[0]})", style={"color": verdict[1]}), ": ",
        html.B(str(len(found))), f" instance{'s' if len(found) != 1 else ''} of the ",
        html.Span(cache.domains.get(domain, domain), style={"color": DOMAIN_COLORS[domain]}),
        f" {'' if split == 'all' else split + ' '}data, ",
        html.Span(f"{model} model", style={"color": DOMAIN_COLORS[model]}),
        "; number = its confidence",
    ], className="small")
    if len(found) == 0:
        return caption, html.Div("This cell is empty: no instance of this selection falls here.",
                                  className="text-muted small")
    conf = cache.instances[f"{model}_conf"].to_numpy()  # ids are row numbers (docs/cache.md)
    shown = [_thumb(r, model, float(conf[r["id"]]), prefix)
             for r in instance_records(cache, found[:MAX_LISTED])]
    more = ([html.Div(f"\u2026 and {len(found) - MAX_LISTED} more", className="text-muted small align-self-center")]
            if len(found) > MAX_LISTED else [])
    return caption, html.Div(shown + more, style={"display": "flex", "flexWrap": "wrap", "gap": "3px"})
