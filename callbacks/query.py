"""Image query callbacks: the focused (or typed) instance's waveforms and nearest neighbours in both models.

Two thin callbacks keep the id box and ``ids.FOCUS`` in step without a loop: ``_render``
draws whatever FOCUS holds (and writes the id box only when it differs), ``_typed`` turns
a valid typed id into the focus (only when it differs) or explains an invalid one. The
work is :func:`dashboard.neighbours.query` on embeddings normalised once per process: a
matrix-vector product over the instances, well under 150 ms on the demo.
"""

from __future__ import annotations

import math
from typing import Any

import dash
import numpy as np
from dash import ALL, Input, Output, State, html

from callbacks import thumb_img
from dashboard import data, neighbours
from dashboard.app import get_cache
from dashboard.figures.diagnosis import CORRECT_COLOR, waveform_figure
from dashboard.figures.theme import DOMAIN_COLORS, MISPREDICTED_COLOR, empty_figure
from dashboard.pool import clicked_id, focus_id
from layouts import ids
from layouts import query as ly
from transferviz.cache import Cache
from transferviz.errors import TransferVizError

NO = dash.no_update
#: Output order of :func:`query_view` (after the id box and the message).
PANEL_KEYS = ("info", "head_source", "head_target", "wave_source", "wave_target", "nbrs_source", "nbrs_target",
              "summary")


# --- which instance -------------------------------------------------------------------

def default_query(cache: Cache) -> tuple[int, str]:
    """``(id, why)``: the target-domain instance the target model finds hardest (highest loss),
    else the first instance."""
    df = cache.instances
    if "target_loss" in df:
        # a mask and argmax, no copy of the frame: the first of equal highest losses (as idxmax), NaN skipped
        loss = np.where(df["domain"].to_numpy() == "target", df["target_loss"].to_numpy(dtype=np.float64), np.nan)
        if np.isfinite(loss).any():
            row = int(np.argmax(np.where(np.isnan(loss), -np.inf, loss)))
            return int(df["id"].iloc[row]), "the target instance with the highest target-model loss"
    return int(df["id"].iloc[0]), "the first instance"


def parse_typed_id(value: Any, n_instances: int) -> tuple[int | None, str | None]:
    """``(id, None)`` for a valid typed id, else ``(None, message)``: one line, no traceback."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, f"Type an instance id from 0 to {n_instances - 1}."
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isascii() and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        return None, f"'{value}' is not an instance id: type a whole number from 0 to {n_instances - 1}."
    i = focus_id(value, n_instances)
    if i is None:
        return None, f"No instance {value}: ids run from 0 to {n_instances - 1}."
    return i, None


# --- the view, pure ---------------------------------------------------------------------

def _pred_span(name: str, correct: bool) -> html.Span:
    return html.Span([html.B(name), html.Span(" \u2713" if correct else " \u2717",
                                              style={"color": CORRECT_COLOR if correct else MISPREDICTED_COLOR,
                                                     "fontWeight": 700})])


def _fmt(v: Any, spec: str) -> str:
    return format(v, spec) if v is not None and math.isfinite(v) else "\u2014"


def _head(model: str, rec: dict[str, Any], conf: float | None, loss: float | None, prefix: str) -> html.Div:
    pred = rec[f"{model}_pred_name"]
    return html.Div([
        thumb_img(prefix, rec["id"], rec["domain"], 38),
        html.Div([
            html.Div(html.B(f"{model} model", style={"color": DOMAIN_COLORS[model]})),
            html.Div(["predicts ", _pred_span(pred, rec[f"{model}_pred"] == rec["label"]),
                      f" ({_fmt(conf, '.0%')}), loss {_fmt(loss, '.2f')}"]),
        ], style={"lineHeight": 1.25}),
    ], className="d-flex align-items-center", style={"gap": 6})


def _neighbour_card(model: str, rec: dict[str, Any], sim: float, prefix: str) -> html.Div:
    pred_ok = rec[f"{model}_pred"] == rec["label"]
    title = (f"#{rec['id']} · {rec['domain']} ({rec['domain_name']}) · {rec['split']} · true {rec['label_name']} · "
             f"{model} model predicts {rec[f'{model}_pred_name']} · cosine similarity {sim:.3f} · click to query it")
    return html.Div(
        id={"type": ly.NEIGHBOUR, "index": rec["id"]}, n_clicks=0, role="button", title=title,
        style={"width": 50, "textAlign": "center", "fontSize": "0.62rem", "lineHeight": 1.15, "cursor": "pointer"},
        children=[
            thumb_img(prefix, rec["id"], rec["domain"], 40),
            html.Div(f"#{rec['id']}", className="text-muted"),
            html.Div([rec["label_name"], html.Span(f"\u2192{rec[f'{model}_pred_name']}",
                                                   style={"color": CORRECT_COLOR if pred_ok else MISPREDICTED_COLOR})],
                     style={"whiteSpace": "nowrap", "overflow": "hidden", "textOverflow": "ellipsis"}),
            html.Div(f"cos {sim:.2f}", style={"fontVariantNumeric": "tabular-nums"}),
        ])


def neighbourhood_summary(query_rec: dict[str, Any], found: dict[str, neighbours.Neighbours],
                          domain_of: np.ndarray, labels: np.ndarray) -> list[Any]:
    """One line: shared neighbours, each model's neighbours by domain, their label agreement."""
    s_ids, t_ids = (found[m].ids for m in ly.MODELS)
    shared = len(set(s_ids.tolist()) & set(t_ids.tolist()))
    k = max(len(s_ids), len(t_ids))
    if k == 0:
        return ["No other instance in this scope."]
    parts: list[Any] = [html.B("Through fine-tuning: "), f"{shared} of {k} neighbours shared"]
    for m in ly.MODELS:
        nb = found[m].ids
        n_src = int((domain_of[nb] == "source").sum())
        same = int((labels[nb] == query_rec["label"]).sum())
        parts += ["; ", html.Span(f"{m} model", style={"color": DOMAIN_COLORS[m], "fontWeight": 600}), ": ",
                  html.Span(f"{n_src} source", style={"color": DOMAIN_COLORS["source"]}), " + ",
                  html.Span(f"{len(nb) - n_src} target", style={"color": DOMAIN_COLORS["target"]}),
                  f", {same}/{len(nb)} labelled {query_rec['label_name']}"]
    return parts + ["."]


def _failure(message: str) -> dict[str, Any]:
    blank = empty_figure(message, height=ly.WAVE_HEIGHT)
    return {"info": html.Span(message, className="text-muted"), "head_source": "", "head_target": "",
            "wave_source": blank, "wave_target": blank, "nbrs_source": "", "nbrs_target": "", "summary": ""}


def query_view(cache: Cache, query_id: int, scope: str, prefix: str) -> dict[str, Any]:
    """Everything the panels show for one query, keyed by :data:`PANEL_KEYS`."""
    scope = scope if scope in neighbours.SCOPES else "all"
    try:
        emb = {m: cache.embedding(m) for m in ly.MODELS}
    except TransferVizError:
        return _failure("This cache has no embeddings (analysis/embedding/*.npy); rebuild it to query images.")
    n = len(cache.instances)
    if any(e.shape[0] != n for e in emb.values()):
        return _failure("The embeddings do not match the instance table; rebuild the cache.")
    domain_of = neighbours.domains(cache)
    found = {m: neighbours.query(cache, m, query_id, scope) for m in ly.MODELS}
    rec = data.instance_records(cache, [query_id])[0]
    df = cache.instances
    labels = df["label"].to_numpy()
    nb_recs = {m: data.instance_records(cache, found[m].ids) for m in ly.MODELS}
    out: dict[str, Any] = {"info": html.Div([
        html.B(f"#{query_id}"), " · ", html.Span(rec["domain"], style={"color": DOMAIN_COLORS.get(rec["domain"]),
                                                                       "fontWeight": 600}),
        f" ({rec['domain_name']}) · {rec['split']} · true label ", html.B(rec["label_name"]),
        html.Span(f" · {emb['source'].shape[1]} values", className="text-muted"),
    ], className="d-inline")}
    for m in ly.MODELS:
        conf = float(df[f"{m}_conf"].iloc[query_id])
        loss = abs(float(df[f"{m}_loss"].iloc[query_id]))  # float32 rounding can print a certain hit as -0.00
        out[f"head_{m}"] = _head(m, rec, conf, loss, prefix)
        nb = found[m]
        out[f"wave_{m}"] = waveform_figure(
            np.asarray(emb[m][query_id]),
            [(int(i), np.asarray(emb[m][i]), str(domain_of[i])) for i in nb.ids],
            query_label=f"#{query_id}", height=ly.WAVE_HEIGHT)
        if len(nb.ids) == 0:
            out[f"nbrs_{m}"] = html.Div("No instance in this scope.", className="text-muted small")
        else:
            out[f"nbrs_{m}"] = html.Div([_neighbour_card(m, r, float(s), prefix)
                                         for r, s in zip(nb_recs[m], nb.similarity)],
                                        className="d-flex justify-content-between", style={"gap": 2})
    out["summary"] = neighbourhood_summary(rec, found, domain_of, labels)
    return out


def render(cache: Cache, focus: Any, scope: Any, typed: Any, prefix: str) -> tuple[Any, ...]:
    """``(id box value, message, *panels)`` for the focus (the default instance when none)."""
    n = len(cache.instances)
    qid = focus_id(focus, n)
    if qid is None:
        qid, why = default_query(cache)
        message = html.Span(f"\u2014 by default {why}; type an id or click an instance", className="text-muted")
        box = NO  # the box stays empty: writing it would make the default look like a chosen focus
    else:
        message = ""
        box = NO if typed == qid else qid
    view = query_view(cache, qid, scope, prefix)
    return (box, message, *(view[k] for k in PANEL_KEYS))


def typed_focus(value: Any, focus: Any, n_instances: int) -> tuple[Any, Any]:
    """``(FOCUS, message)`` for a typed id: the focus when valid and new, else a one-line message."""
    i, message = parse_typed_id(value, n_instances)
    if i is None:
        return NO, html.Span(message, style={"color": MISPREDICTED_COLOR, "fontWeight": 600})
    return (NO if focus_id(focus, n_instances) == i else i), ""


def clicked_neighbour(triggered: Any, n_clicks: Any) -> Any:
    """The id of a clicked neighbour card, or no_update when the cards were merely (re)drawn."""
    clicked = clicked_id(triggered, n_clicks, ly.NEIGHBOUR)
    return NO if clicked is None else clicked


# --- wiring ---------------------------------------------------------------------------

def _warm_up(cache: Cache) -> None:
    """Normalises both models' embeddings at start-up (~0.1 s on the demo) rather than in the
    first visitor's query; a cache without embeddings is reported by the view itself."""
    try:
        for m in ly.MODELS:
            neighbours.unit_embedding(cache, m)
    except (TransferVizError, OSError, ValueError):
        pass


def register(app: dash.Dash) -> None:
    prefix = app.config.requests_pathname_prefix
    _warm_up(get_cache(app))
    panel_outputs = [
        Output(ly.QUERY_INFO, "children"),
        *(Output(ly.head_id(m), "children") for m in ly.MODELS),
        *(Output(ly.wave_id(m), "figure") for m in ly.MODELS),
        *(Output(ly.neighbours_id(m), "children") for m in ly.MODELS),
        Output(ly.SUMMARY, "children"),
    ]

    @app.callback(
        Output(ly.INPUT, "value"), Output(ly.MESSAGE, "children"), *panel_outputs,
        Input(ids.FOCUS, "data"), Input(ly.SCOPE, "value"), State(ly.INPUT, "value"),
    )
    def _render(focus, scope, typed):
        return render(get_cache(app), focus, scope, typed, prefix)

    @app.callback(
        Output(ids.FOCUS, "data", allow_duplicate=True), Output(ly.MESSAGE, "children", allow_duplicate=True),
        Input(ly.INPUT, "value"), State(ids.FOCUS, "data"),
        prevent_initial_call=True,
    )
    def _typed(value, focus):
        return typed_focus(value, focus, len(get_cache(app).instances))

    @app.callback(
        Output(ids.FOCUS, "data", allow_duplicate=True),
        Input({"type": ly.NEIGHBOUR, "index": ALL}, "n_clicks"),
        prevent_initial_call=True,
    )
    def _neighbour(_):
        fired = dash.ctx.triggered[0] if dash.ctx.triggered else {}
        return clicked_neighbour(dash.ctx.triggered_id, fired.get("value"))
