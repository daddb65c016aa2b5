"""Confusion grid callbacks: counts from ``cache.instances``, the clicked cell's thumbnails, focus on click.

The grid is recomputed from the instance table (label, ``{model}_pred``, domain, split),
so any split can be shown; for ``split == "all"`` it equals ``cache.confusion(model,
domain)`` (tested). Everything here is a lookup of a few milliseconds.
"""

from __future__ import annotations

from typing import Any

import dash
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from dash import ALL, Input, Output, html

from callbacks import thumb_img
from dashboard import data
from dashboard.app import get_cache
from dashboard.figures.diagnosis import CORRECT_COLOR, confusion_heatmap
from dashboard.figures.theme import DOMAIN_COLORS, MISPREDICTED_COLOR
from dashboard.pool import clicked_id
from layouts import confusion as ly
from layouts import ids
from transferviz.cache import Cache

NO = dash.no_update
#: Thumbnails listed for a cell; beyond this the list says how many more.
MAX_LISTED = 60


def selection(model: Any, domain: Any, split: Any) -> tuple[str, str, str]:
    """The radio values, anything unknown replaced by the view's default."""
    model = model if model in ("source", "target") else ly.DEFAULTS["model"]
    domain = domain if domain in ("source", "target") else ly.DEFAULTS["domain"]
    split = split if split in ly.SPLITS else ly.DEFAULTS["split"]
    return model, domain, split


def _rows(df: pd.DataFrame, domain: str, split: str) -> np.ndarray:
    keep = df["domain"].to_numpy() == domain
    if split != "all":
        keep &= df["split"].to_numpy() == split
    return keep


def confusion_counts(cache: Cache, model: str, domain: str, split: str = "all") -> np.ndarray:
    """(true, predicted) counts of ``model`` on the ``domain`` instances of ``split``."""
    df = cache.instances
    n = len(cache.classes)
    keep = _rows(df, domain, split)
    true = df["label"].to_numpy()[keep]
    pred = df[f"{model}_pred"].to_numpy()[keep]
    return np.bincount(true * n + pred, minlength=n * n)[: n * n].reshape(n, n)


def cell_ids(cache: Cache, model: str, domain: str, split: str, true: int, pred: int) -> np.ndarray:
    """Ids of the instances in one cell, in id order."""
    df = cache.instances
    keep = (_rows(df, domain, split) & (df["label"].to_numpy() == int(true))
            & (df[f"{model}_pred"].to_numpy() == int(pred)))
    return df["id"].to_numpy()[keep]


def parse_cell(click_data: dict | None, n_classes: int) -> list[int] | None:
    """``[true, predicted]`` of a clicked grid cell (the heatmap's y and x are class indices)."""
    pts = (click_data or {}).get("points") or []
    if not pts:
        return None
    try:
        true, pred = int(pts[0]["y"]), int(pts[0]["x"])
    except (KeyError, TypeError, ValueError):
        return None
    return [true, pred] if 0 <= true < n_classes and 0 <= pred < n_classes else None


def _cell(cell: Any, n_classes: int) -> tuple[int, int] | None:
    try:
        t, p = (int(v) for v in cell)
    except (TypeError, ValueError):
        return None
    return (t, p) if 0 <= t < n_classes and 0 <= p < n_classes else None


def grid_figure(cache: Cache, model: Any, domain: Any, split: Any, cell: Any = None) -> go.Figure:
    model, domain, split = selection(model, domain, split)
    counts = confusion_counts(cache, model, domain, split)
    where = f"{cache.domains.get(domain, domain)} {'' if split == 'all' else split + ' '}data"
    return confusion_heatmap(counts, cache.classes, selected=_cell(cell, len(cache.classes)),
                             height=ly.GRID_HEIGHT, empty_message=f"No instances in the {where}")


def _thumb(rec: dict[str, Any], model: str, conf: float | None, prefix: str) -> html.Div:
    """A clickable thumbnail: domain-coloured frame, id and the model's confidence."""
    conf_text = f"{conf:.0%}" if conf is not None and np.isfinite(conf) else "\u2014"
    title = (f"#{rec['id']} · {rec['domain']} ({rec['domain_name']}) · {rec['split']} · true {rec['label_name']} · "
             f"{model} model: {rec[f'{model}_pred_name']} ({conf_text}) · click to query this instance")
    return html.Div(
        id={"type": ly.THUMB, "index": rec["id"]}, n_clicks=0, title=title, role="button",
        style={"width": 48, "textAlign": "center", "fontSize": "0.64rem", "cursor": "pointer", "lineHeight": 1.15},
        children=[
            thumb_img(prefix, rec["id"], rec["domain"], 42, alt=title),
            html.Div(f"#{rec['id']}", className="text-muted"),
            html.Div(conf_text),
        ])


def cell_list(cache: Cache, model: Any, domain: Any, split: Any, cell: Any, prefix: str) -> tuple[Any, Any]:
    """``(caption, thumbnails)`` of the clicked cell; the hint when no cell is chosen."""
    model, domain, split = selection(model, domain, split)
    names = cache.classes
    c = _cell(cell, len(names))
    if c is None:
        return "", html.Div(ly.LIST_HINT, className="text-muted small")
    true, pred = c
    found = cell_ids(cache, model, domain, split, true, pred)
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
             for r in data.instance_records(cache, found[:MAX_LISTED])]
    more = ([html.Div(f"\u2026 and {len(found) - MAX_LISTED} more", className="text-muted small align-self-center")]
            if len(found) > MAX_LISTED else [])
    return caption, html.Div(shown + more, style={"display": "flex", "flexWrap": "wrap", "gap": "3px"})


def thumb_focus(triggered: Any, n_clicks: Any) -> Any:
    """The id of the clicked thumbnail, or no_update when the list was merely (re)drawn."""
    clicked = clicked_id(triggered, n_clicks, ly.THUMB)
    return NO if clicked is None else clicked


def register(app: dash.Dash) -> None:
    prefix = app.config.requests_pathname_prefix

    @app.callback(
        Output(ly.GRAPH, "figure"),
        Input(ly.MODEL, "value"), Input(ly.DOMAIN, "value"), Input(ly.SPLIT, "value"), Input(ly.CELL, "data"),
    )
    def _grid(model, domain, split, cell):
        return grid_figure(get_cache(app), model, domain, split, cell)

    @app.callback(Output(ly.CELL, "data"), Input(ly.GRAPH, "clickData"), prevent_initial_call=True)
    def _click(click_data):
        cell = parse_cell(click_data, len(get_cache(app).classes))
        return NO if cell is None else cell

    @app.callback(
        Output(ly.CAPTION, "children"), Output(ly.LIST, "children"),
        Input(ly.MODEL, "value"), Input(ly.DOMAIN, "value"), Input(ly.SPLIT, "value"), Input(ly.CELL, "data"),
    )
    def _list(model, domain, split, cell):
        return cell_list(get_cache(app), model, domain, split, cell, prefix)

    @app.callback(
        Output(ids.FOCUS, "data", allow_duplicate=True),
        Input({"type": ly.THUMB, "index": ALL}, "n_clicks"),
        prevent_initial_call=True,
    )
    def _focus(_):
        fired = dash.ctx.triggered[0] if dash.ctx.triggered else {}
        return thumb_focus(dash.ctx.triggered_id, fired.get("value"))
