"""Run-time markup of the instance view: the line under the checklist, the hover card and the
lasso/box selection list."""

from __future__ import annotations

from typing import Any

import pandas as pd
from dash import html

from dashboard.components import thumb_img
from dashboard.lookups import instance_records, selected_ids
from dashboard.theme import DOMAIN_COLORS, MISPREDICTED_COLOR, POSITIVE_COLOR, SOURCE_COLOR, TARGET_COLOR
from transferviz.cache import Cache

__all__ = ["MAX_LISTED", "SELECTION_HINT", "instance_card", "scatter_summary", "selection_list"]

#: Thumbnails listed for a lasso/box selection; beyond this the list says how many more.
MAX_LISTED = 120
#: What the selection list says before anything is selected (also the layout's initial text).
SELECTION_HINT = "Draw a lasso or a box on the map (mode bar) to list those instances here."


def scatter_summary(df: pd.DataFrame | None, n_classes: int) -> Any:
    """One line under the checklist: how many instances of each domain, how many mispredicted."""
    if n_classes == 0 or df is None or len(df) == 0:
        return "No class selected." if n_classes == 0 else "The selected classes have no instances."
    dom = df["domain"].to_numpy()
    n_s, n_t = int((dom == "source").sum()), int((dom == "target").sum())
    wrong = int((df["target_pred"].to_numpy() != df["label"].to_numpy()).sum())
    return [f"{n_classes} class{'es' if n_classes != 1 else ''}: ",
            html.Span(f"{n_s} source", style={"color": SOURCE_COLOR}), " \u00d7 + ",
            html.Span(f"{n_t} target", style={"color": TARGET_COLOR}), " \u25cb; ",
            html.Span(f"{wrong} mispredicted", style={"color": MISPREDICTED_COLOR, "fontWeight": 600}),
            " by the target model (dark border)"]


def instance_card(rec: dict[str, Any], prefix: str, img_px: int = 84) -> html.Div:
    color = DOMAIN_COLORS.get(rec["domain"], "#555")
    verdict = ("\u2713", POSITIVE_COLOR) if rec["correct"] else ("\u2717", MISPREDICTED_COLOR)
    conf = rec.get("target_conf")
    return html.Div(style={"display": "flex", "gap": "8px", "alignItems": "center", "fontSize": "0.78rem"}, children=[
        thumb_img(prefix, rec["id"], rec["domain"], img_px),
        html.Div([
            html.Div([html.Span(rec["domain"], style={"color": color, "fontWeight": 600}),
                      f" \u00b7 {rec['domain_name']} \u00b7 {rec['split']}"]),
            html.Div(["true label: ", html.B(rec["label_name"])]),
            html.Div(["target model: ", html.B(rec["target_pred_name"]),
                      html.Span(f" {verdict[0]}", style={"color": verdict[1], "fontWeight": 700}),
                      f" ({conf:.0%})" if conf is not None else ""]),
            html.Div(f"source model: {rec['source_pred_name']}", className="text-muted"),
            html.Div(f"instance #{rec['id']}", className="text-muted"),
        ], style={"lineHeight": 1.3, "whiteSpace": "nowrap"}),
    ])


def _thumb(rec: dict[str, Any], prefix: str) -> html.Div:
    mark = "" if rec["correct"] else " \u2717"
    title = (f"#{rec['id']} · {rec['domain']} ({rec['domain_name']}) · true {rec['label_name']} · "
             f"target model {rec['target_pred_name']}{mark}")
    return html.Div(title=title, style={"width": 50, "textAlign": "center", "fontSize": "0.66rem"}, children=[
        thumb_img(prefix, rec["id"], rec["domain"], 44, alt=title,
                  outline=f"2px solid {MISPREDICTED_COLOR}" if not rec["correct"] else "none",
                  outlineOffset="-1px" if not rec["correct"] else "0"),
        html.Div([rec["label_name"], html.Span(f"\u2192{rec['target_pred_name']}", style={"color": MISPREDICTED_COLOR})
                  if not rec["correct"] else ""],
                 style={"whiteSpace": "nowrap", "overflow": "hidden", "textOverflow": "ellipsis"}),
    ])


def selection_list(cache: Cache, selected_data: dict | None, prefix: str) -> Any:
    """The chosen instances as thumbnails (domain-coloured frame; dark outline and arrow when mispredicted)."""
    ids = selected_ids(selected_data)
    if not ids:
        if selected_data and (selected_data.get("range") or selected_data.get("lassoPoints")):
            return html.Div("No instances inside the selection.", className="text-muted small")
        return html.Div(SELECTION_HINT, className="text-muted small")
    recs = instance_records(cache, ids)
    n_s = sum(r["domain"] == "source" for r in recs)
    wrong = sum(not r["correct"] for r in recs)
    head = html.Div([
        html.B(f"{len(recs)} selected: "),
        html.Span(f"{n_s} source", style={"color": SOURCE_COLOR}), ", ",
        html.Span(f"{len(recs) - n_s} target", style={"color": TARGET_COLOR}),
        f"; {wrong} mispredicted by the target model",
    ], className="small mb-1")
    shown = [_thumb(r, prefix) for r in recs[:MAX_LISTED]]
    more = ([html.Div(f"… and {len(recs) - MAX_LISTED} more", className="text-muted small align-self-center")]
            if len(recs) > MAX_LISTED else [])
    return html.Div([head, html.Div(shown + more, style={"display": "flex", "flexWrap": "wrap", "gap": "4px"})])
