"""Run-time markup of the image query: each model's heading and neighbour cards, the line about
the neighbourhood, and the notes beside the id box."""

from __future__ import annotations

import math
from typing import Any

from dash import html

from dashboard.components import thumb_img
from dashboard.lookups import MODELS
from dashboard.theme import CORRECT_COLOR, DOMAIN_COLORS, MISPREDICTED_COLOR, empty_figure
from dashboard.views.image_query import data
from dashboard.views.image_query.figures import WAVE_HEIGHT, query_waveform
from transferviz.cache import Cache

__all__ = ["NEIGHBOUR", "PANEL_KEYS", "default_note", "neighbourhood_summary", "query_view", "refusal"]

#: Pattern-matching id type of a neighbour card: ``{"type": NEIGHBOUR, "index": instance id}``.
NEIGHBOUR = "query-neighbour"
#: The keys of :func:`query_view`, in the order of the panels' outputs.
PANEL_KEYS = ("info", "head_source", "head_target", "wave_source", "wave_target", "nbrs_source", "nbrs_target",
              "summary")


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
        id={"type": NEIGHBOUR, "index": rec["id"]}, n_clicks=0, role="button", title=title,
        style={"width": 50, "textAlign": "center", "fontSize": "0.62rem", "lineHeight": 1.15, "cursor": "pointer"},
        children=[
            thumb_img(prefix, rec["id"], rec["domain"], 40),
            html.Div(f"#{rec['id']}", className="text-muted"),
            html.Div([rec["label_name"], html.Span(f"\u2192{rec[f'{model}_pred_name']}",
                                                   style={"color": CORRECT_COLOR if pred_ok else MISPREDICTED_COLOR})],
                     style={"whiteSpace": "nowrap", "overflow": "hidden", "textOverflow": "ellipsis"}),
            html.Div(f"cos {sim:.2f}", style={"fontVariantNumeric": "tabular-nums"}),
        ])


def _neighbour_cards(model: str, answer: data.Answer, prefix: str) -> html.Div:
    if len(answer.neighbours.ids) == 0:
        return html.Div("No instance in this scope.", className="text-muted small")
    return html.Div([_neighbour_card(model, r, float(s), prefix)
                     for r, s in zip(answer.neighbour_records, answer.neighbours.similarity)],
                    className="d-flex justify-content-between", style={"gap": 2})


def neighbourhood_summary(q: data.Query) -> list[Any]:
    """One line: shared neighbours, each model's neighbours by domain, their label agreement."""
    s_ids, t_ids = (q.answers[m].neighbours.ids for m in MODELS)
    shared = len(set(s_ids.tolist()) & set(t_ids.tolist()))
    k = max(len(s_ids), len(t_ids))
    if k == 0:
        return ["No other instance in this scope."]
    parts: list[Any] = [html.B("Through fine-tuning: "), f"{shared} of {k} neighbours shared"]
    for m in MODELS:
        nb = q.answers[m].neighbours.ids
        n_src = int((q.domain_of[nb] == "source").sum())
        same = int((q.labels[nb] == q.record["label"]).sum())
        parts += ["; ", html.Span(f"{m} model", style={"color": DOMAIN_COLORS[m], "fontWeight": 600}), ": ",
                  html.Span(f"{n_src} source", style={"color": DOMAIN_COLORS["source"]}), " + ",
                  html.Span(f"{len(nb) - n_src} target", style={"color": DOMAIN_COLORS["target"]}),
                  f", {same}/{len(nb)} labelled {q.record['label_name']}"]
    return parts + ["."]


def _failure(message: str) -> dict[str, Any]:
    blank = empty_figure(message, height=WAVE_HEIGHT)
    return {"info": html.Span(message, className="text-muted"), "head_source": "", "head_target": "",
            "wave_source": blank, "wave_target": blank, "nbrs_source": "", "nbrs_target": "", "summary": ""}


def query_view(cache: Cache, query_id: int, scope: Any, prefix: str) -> dict[str, Any]:
    """Everything the panels show for one query, keyed by :data:`PANEL_KEYS`."""
    problem = data.embeddings_problem(cache)
    if problem is not None:
        return _failure(problem)
    q = data.query_answers(cache, query_id, scope)
    rec = q.record
    out: dict[str, Any] = {"info": html.Div([
        html.B(f"#{query_id}"), " · ", html.Span(rec["domain"], style={"color": DOMAIN_COLORS.get(rec["domain"]),
                                                                       "fontWeight": 600}),
        f" ({rec['domain_name']}) · {rec['split']} · true label ", html.B(rec["label_name"]),
        html.Span(f" · {q.n_values} values", className="text-muted"),
    ], className="d-inline")}
    for m in MODELS:
        a = q.answers[m]
        out[f"head_{m}"] = _head(m, rec, a.conf, a.loss, prefix)
        out[f"wave_{m}"] = query_waveform(q, m)
        out[f"nbrs_{m}"] = _neighbour_cards(m, a, prefix)
    out["summary"] = neighbourhood_summary(q)
    return out


def default_note(why: str) -> html.Span:
    """Beside the empty id box: which instance is shown by default, and why."""
    return html.Span(f"\u2014 by default {why}; type an id or click an instance", className="text-muted")


def refusal(message: str) -> html.Span:
    """Beside the id box: why a typed id was refused."""
    return html.Span(message, style={"color": MISPREDICTED_COLOR, "fontWeight": 600})
