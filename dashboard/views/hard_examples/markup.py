"""Run-time markup of the hard examples view: the line under the maps and the focused instance's card."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from dash import html

from dashboard.components import thumb_img
from dashboard.lookups import MODELS, instance_records
from dashboard.pool import focus_id
from dashboard.theme import DOMAIN_COLORS, MISPREDICTED_COLOR, POSITIVE_COLOR, SOURCE_COLOR, TARGET_COLOR
from dashboard.views.hard_examples import data
from dashboard.views.hard_examples.figures import LOSS_QUANTILE, color_range
from transferviz.cache import Cache

__all__ = ["DETAIL_HINT", "detail_card", "summary_line"]

#: What the card says before an instance is focused (also the layout's initial text).
DETAIL_HINT = "Click a point in either map to see the instance and both models' predictions."


def summary_line(cache: Cache, model: Any, domain: Any, wrong_only: Any, brush: Any) -> list[Any]:
    """Counts shown, mispredicted, the colour scale's range and the brush."""
    model, domain, wrong_only = data.selection(model, domain, wrong_only)
    d = data.hard_data(cache)
    keep = data.visible_rows(d, model, domain, wrong_only)
    n_s = int((keep & (d.domain == "source")).sum())
    n_t = int((keep & (d.domain == "target")).sum())
    wrong = int((keep & d.wrong[model]).sum())
    lo, hi = color_range(cache, model)
    drawn = len(data.drawn_rows(d, keep, model))
    # past dashboard.sampling.MAX_POINTS the maps draw a sample: the counts are of every instance the filters keep
    shown = f"{n_s + n_t} shown: " if drawn == n_s + n_t else f"{n_s + n_t:,} match ({drawn:,} drawn): "
    parts: list[Any] = [
        shown, html.Span(f"{n_s} source \u00d7", style={"color": SOURCE_COLOR}), ", ",
        html.Span(f"{n_t} target \u25cb", style={"color": TARGET_COLOR}), "; ",
        html.Span(f"{wrong} mispredicted", style={"color": MISPREDICTED_COLOR, "fontWeight": 600}),
        f" by the {model} model. Colour: its loss, log scale from {lo:g} to {hi:.3g} "
        f"(the {LOSS_QUANTILE:.0%} quantile; above it darkest).",
    ]
    brushed = data.brushed_ids(brush)
    if brushed is not None:
        n_vis = int(np.isin(d.ids[keep], brushed).sum())
        src = data.MAPS[brush["source"]][0]
        parts.append(html.B(f" {len(brushed)} lassoed in the {src} map ({n_vis} shown); double-click it to clear."))
    return parts


def _model_row(model: str, rec: dict[str, Any], row: pd.Series) -> html.Tr:
    right = rec[f"{model}_pred"] == rec["label"]
    conf, loss = float(row[f"{model}_conf"]), float(row[f"{model}_loss"])
    return html.Tr([
        html.Td(f"{model} model", style={"color": DOMAIN_COLORS[model], "fontWeight": 600, "paddingRight": 8}),
        html.Td([html.B(rec[f"{model}_pred_name"]),
                 html.Span(" \u2713" if right else " \u2717",
                           style={"color": POSITIVE_COLOR if right else MISPREDICTED_COLOR, "fontWeight": 700})],
                style={"paddingRight": 8}),
        html.Td(f"{conf:.0%}", style={"paddingRight": 8, "textAlign": "right"}),
        html.Td(f"{loss:.3g}", style={"textAlign": "right"}),
    ], className=f"hard-row-{model}")


def detail_card(cache: Cache, focus: Any, prefix: str) -> Any:
    """The focused instance: image, domain, split, true label and both models' prediction,
    confidence and loss (a hint when nothing is focused, a message for an unknown id)."""
    if focus is None:
        return html.Div(DETAIL_HINT, className="text-muted small")
    df = cache.instances
    fid = focus_id(focus, len(df))
    recs = instance_records(cache, [fid]) if fid is not None else []
    # a found record always has a row (the hard data's rows are cache.instances'): pos is None only without one
    pos = data.row_of(data.hard_data(cache), recs[0]["id"]) if recs else None
    if not recs or pos is None:
        return html.Div(f"Instance {focus!r} is not in this cache.", className="text-muted small")
    rec = recs[0]
    row = df.iloc[pos]
    color = DOMAIN_COLORS.get(rec["domain"], "#555")
    head = html.Tr([html.Th(h, style={"fontWeight": 400, "color": "#777", "paddingRight": 8,
                                      "textAlign": "right" if h in ("confidence", "loss") else "left"})
                    for h in ("", "prediction", "confidence", "loss")])
    changed = rec["source_pred"] != rec["target_pred"]
    return html.Div(style={"display": "flex", "gap": "10px", "alignItems": "center", "fontSize": "0.76rem"}, children=[
        thumb_img(prefix, rec["id"], rec["domain"], 76),
        html.Div([
            html.Div([html.B(f"#{rec['id']} "), html.Span(rec["domain"], style={"color": color, "fontWeight": 600}),
                      f" ({rec['domain_name']}) \u00b7 {rec['split']} \u00b7 true label ", html.B(rec["label_name"])]),
            html.Table([html.Thead(head), html.Tbody([_model_row(m, rec, row) for m in MODELS])],
                       style={"fontVariantNumeric": "tabular-nums", "lineHeight": 1.25}),
            html.Div("fine-tuning changed the prediction" if changed else "both models predict the same class",
                     className="text-muted", style={"fontSize": "0.7rem"}),
        ]),
    ])
