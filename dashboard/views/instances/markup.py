"""Run-time markup of the instance view: the class picker's options, the line under the picker,
the class key under the map, the hover card and the lasso/box selection list."""

from __future__ import annotations

from typing import Any

import pandas as pd
from dash import html

from dashboard.components import thumb_img
from dashboard.lookups import class_counts, instance_records, selected_ids
from dashboard.theme import DOMAIN_COLORS, MISPREDICTED_COLOR, POSITIVE_COLOR, SOURCE_COLOR, TARGET_COLOR
from dashboard.views.instances.figures import TIER_SYMBOLS, class_style
from transferviz.cache import Cache

__all__ = ["MAX_LISTED", "SELECTION_HINT", "class_key", "class_options", "filter_options", "instance_card",
           "picker_count", "scatter_summary", "selection_list"]

#: Thumbnails listed for a lasso/box selection; beyond this the list says how many more.
MAX_LISTED = 120
#: What the selection list says before anything is selected (also the layout's initial text).
SELECTION_HINT = "Draw a lasso or a box on the map (mode bar) to list those instances here."


#: Characters of (source, target) shapes of each :data:`TIER_SYMBOLS` pair, for text keys.
_TIER_GLYPHS: tuple[tuple[str, str], ...] = (("\u00d7", "\u25cb"), ("+", "\u25a1"), ("\u29d7", "\u25c7"),
                                            ("\u22c8", "\u25b3"))
#: Width of a picker count column (padding included): three digits and a gap, so counts line up, stay apart
#: and never push the name out.
_COUNT_WIDTH = 30


def _swatch(color: str) -> html.Span:
    return html.Span(style={"display": "inline-block", "flex": "0 0 9px", "width": 9, "height": 9, "borderRadius": 2,
                            "backgroundColor": color, "margin": "0 4px 0 2px"})


def _count(n: int, color: str, domain: str) -> html.Span:
    # a zero count is the "class absent from one domain" empty state: make it visible, not red/blue
    return html.Span(str(n), title=f"{n} {domain} instance{'s' if n != 1 else ''}",
                     style={"color": color if n else "#9e9e9e", "fontVariantNumeric": "tabular-nums",
                            "flex": f"0 0 {_COUNT_WIDTH}px", "textAlign": "right", "paddingLeft": 4,
                            "boxSizing": "border-box",
                            "fontStyle": "normal" if n else "italic"})


def _tier_mark(index: int, n_classes: int) -> str:
    """Past the palette's size a class is told by its shapes too: say which (nothing for the first tier)."""
    symbols = class_style(index, n_classes)[1]
    tier = TIER_SYMBOLS.index(symbols)
    return "" if tier == 0 else " " + "/".join(_TIER_GLYPHS[tier])


def class_options(cache: Cache) -> list[dict]:
    """Checklist options, one row a class: colour swatch (the class's scatter colour), the name
    (cut with an ellipsis in its own column, the full name in the tooltip, so it never runs into the
    next checkbox), then the source and target counts in fixed columns."""
    counts = class_counts(cache)
    n = len(cache.classes)
    opts = []
    r: Any  # the stubs type itertuples' fields as any scalar or NA; the counts are integer columns
    for r in counts.itertuples(index=False):
        i = int(r.class_index)
        name = f"{r.name}{_tier_mark(i, n)}"
        label = html.Span([
            _swatch(class_style(i, n)[0]),
            html.Span(name, title=f"{r.name}: {int(r.source)} source, {int(r.target)} target instances",
                      className="tv-class-name",
                      style={"flex": "1 1 auto", "minWidth": 0, "overflow": "hidden", "textOverflow": "ellipsis",
                             "whiteSpace": "nowrap"}),
            _count(int(r.source), SOURCE_COLOR, "source"),
            _count(int(r.target), TARGET_COLOR, "target"),
        ], style={"display": "flex", "alignItems": "center", "minWidth": 0, "flex": "1 1 auto", "overflow": "hidden"})
        opts.append({"label": label, "value": i})
    return opts


def filter_options(options: list[dict], matched: list[int]) -> list[dict]:
    """The picker's options of the ``matched`` classes only (the checked value is not touched:
    a checked class hidden by the search stays checked)."""
    keep = set(matched)
    return [o for o in options if o["value"] in keep]


def picker_count(n_checked: int, n_shown: int, n_classes: int) -> str:
    """The picker's status: how many classes are checked, and how many the search shows."""
    shown = "" if n_shown == n_classes else f" \u00b7 {n_shown} match{'es' if n_shown != 1 else ''}"
    return f"{n_checked}/{n_classes} checked{shown}"


def class_key(cache: Cache, chosen: list[int]) -> list[html.Span]:
    """The key of the classes on the map (swatch and name; past the palette, the shapes too), shown
    in a collapsible box under the map: the map's own legend stays one row, whatever the classes."""
    n = len(cache.classes)
    style = {"display": "inline-flex", "alignItems": "center", "marginRight": 8, "whiteSpace": "nowrap"}
    return [html.Span([_swatch(class_style(c, n)[0]), f"{cache.classes[c]}{_tier_mark(c, n)}"], style=style)
            for c in chosen if 0 <= c < n]


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
