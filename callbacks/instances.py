"""View B callbacks: the t-SNE scatter of the chosen classes, its hover card and the selection list.

Each callback is a thin wrapper over a module-level pure function taking the cache, so
tests and the benchmark call the same code without a browser. The scatter is the only
place that may compute (a class-selection t-SNE), memoized on disk by
:func:`dashboard.data.projection_frame`; hover and selection are lookups.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import dash
import plotly.graph_objects as go
from dash import Input, Output, html

from callbacks import thumb_img
from dashboard import data
from dashboard.app import get_cache
from dashboard.figures.instances import tsne_scatter
from dashboard.figures.theme import (
    DOMAIN_COLORS,
    MISPREDICTED_COLOR,
    POSITIVE_COLOR,
    SOURCE_COLOR,
    TARGET_COLOR,
)
from layouts import instances as inst_layout
from transferviz.cache import Cache

NO = dash.no_update
#: Thumbnails listed for a lasso/box selection; beyond this the list says how many more.
MAX_LISTED = 120


# --- the scatter ----------------------------------------------------------------------

def update_scatter(cache: Cache, classes: Sequence[Any] | None, memo_dir: Path | None) -> tuple[go.Figure, Any, Any]:
    """``(figure, selectedData, summary)`` for the checked classes.

    The selection is cleared (``None``) because its points belong to the previous map.
    Plotly's own hover label is switched off on instance points: the ``dcc.Tooltip``
    with the thumbnail replaces it.
    """
    try:
        chosen = sorted({int(c) for c in (classes or [])})
    except (TypeError, ValueError):
        chosen = []
    df = data.projection_frame(cache, chosen, memo_dir)
    names = dict(enumerate(cache.classes))
    fig = tsne_scatter(df, data.class_colors(cache), class_names=names, height=inst_layout.SCATTER_HEIGHT,
                       empty_message="Select one or more classes above to project their instances")
    for t in fig.data:
        if isinstance(t.meta, dict) and t.meta.get("role") == "instances":
            # no per-point hover text either: it is never shown, and it was half the payload
            t.hoverinfo, t.hovertemplate, t.hovertext = "none", None, None
            # a numpy customdata travels as a base64 typed array, which dcc.Graph leaves out
            # of hoverData/selectedData (it copies customdata only from plain arrays)
            if t.customdata is not None:
                t.customdata = [int(v) for v in t.customdata]
    return fig, None, scatter_summary(df, len(chosen))


def scatter_summary(df, n_classes: int) -> Any:
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


# --- hover card -----------------------------------------------------------------------

def _instance_card(rec: dict[str, Any], prefix: str, img_px: int = 84) -> html.Div:
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


def hover_card(cache: Cache, hover_data: dict | None, prefix: str) -> tuple[bool, Any, Any]:
    """``(show, bbox, children)`` of the tooltip for the hovered point (hidden when none)."""
    pts = (hover_data or {}).get("points") or []
    ids = data.selected_ids({"points": pts[:1]})
    if not ids:
        return False, NO, NO
    recs = data.instance_records(cache, ids)
    if not recs:
        return False, NO, NO
    bbox = pts[0].get("bbox")
    if not bbox:  # no position to attach to (should not happen with plotly >= 2): show nothing
        return False, NO, NO
    return True, bbox, _instance_card(recs[0], prefix)


# --- lasso / box selection list -------------------------------------------------------

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
    ids = data.selected_ids(selected_data)
    if not ids:
        if selected_data and (selected_data.get("range") or selected_data.get("lassoPoints")):
            return html.Div("No instances inside the selection.", className="text-muted small")
        return html.Div(inst_layout.SELECTION_HINT, className="text-muted small")
    recs = data.instance_records(cache, ids)
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


# --- wiring ---------------------------------------------------------------------------

def _warm_up(cache: Cache, memo_dir: Path) -> None:
    """Pays at start-up what the first visitor would otherwise wait for: openTSNE's import
    (seconds) and the default selection's map (memoized on disk for every worker). Done
    synchronously, not in a thread: the server then answers its first page in well under 2 s,
    and no thread is running when gunicorn forks workers from a preloaded app."""
    try:
        import openTSNE  # noqa: F401  (even when the default map needs no t-SNE run)

        from dashboard.urlstate import default_state

        data.projection_frame(cache, default_state(cache).classes, memo_dir)
    except Exception:  # the callback reports any real error when a user asks for the map
        pass


def register(app: dash.Dash) -> None:
    cache = get_cache(app)
    memo_dir = data.memo_dir_for(cache)
    prefix = app.config.requests_pathname_prefix
    _warm_up(cache, memo_dir)

    @app.callback(
        Output(inst_layout.SCATTER, "figure"),
        Output(inst_layout.SCATTER, "selectedData"),
        Output(inst_layout.SUMMARY, "children"),
        Input(inst_layout.CLASSES, "value"),
    )
    def _scatter(classes):
        return update_scatter(get_cache(app), classes, memo_dir)

    @app.callback(
        Output(inst_layout.TOOLTIP, "show"),
        Output(inst_layout.TOOLTIP, "bbox"),
        Output(inst_layout.TOOLTIP, "children"),
        Input(inst_layout.SCATTER, "hoverData"),
    )
    def _hover(hover_data):
        return hover_card(get_cache(app), hover_data, prefix)

    @app.callback(
        Output(inst_layout.SELECTION, "children"),
        Input(inst_layout.SCATTER, "selectedData"),
    )
    def _selection(selected_data):
        return selection_list(get_cache(app), selected_data, prefix)
