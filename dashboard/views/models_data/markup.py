"""Run-time markup of the models & data view: the module table and the architecture note, the
class-count table and per-domain totals, and the grid of sample images.

Both models share one architecture, so the model panel is one table whose last column is
what differs: each module's relative L2 weight change.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from dash import dcc, html

from dashboard.components import DataAttrs, Title, thumb_img
from dashboard.theme import DOMAIN_COLORS, NEUTRAL_COLOR, SOURCE_COLOR, TARGET_COLOR, graph_config
from dashboard.views.models_data.data import (
    DOMAINS,
    SPLITS,
    class_count_frame,
    layer_label,
    module_rows,
    sample_ids,
    weight_change_frame,
)
from dashboard.views.models_data.figures import class_count_chart, weight_change_chart
from transferviz.cache import Cache

__all__ = ["FALLBACK_NOTE", "SAMPLES_PER_CLASS", "count_table", "data_summary", "models_panel", "models_table",
           "sample_grid"]

#: Sample images per class, domain and split in the grid.
SAMPLES_PER_CLASS = 3
DASH = "\u2014"
FALLBACK_NOTE = ("Older cache (no models/modules.json): output shapes and weight change of the modules that are "
                 "not analysed are unavailable (analysed layers: from models/layers.json, weight tensor only). "
                 "'transferviz build CONFIG' adds them in about a second, without retraining.")
TABLE_HEIGHT = 250
CHART_HEIGHT = 160
ABSENT_BG = "#fff4d6"  # pale amber: a class missing from a domain, neither domain colour
THUMB_PX = 40
#: Compact cells (Bootstrap's table-sm pads 4 px): ~20 px rows so the tab fits a 1366 x 768 screen.
CELL = {"padding": "1px 5px", "lineHeight": 1.35}
NUM = {**CELL, "textAlign": "right", "fontVariantNumeric": "tabular-nums"}


def _shape(shape: list[int] | None) -> str:
    return "\u00d7".join(str(s) for s in shape) if shape else DASH


def _change_cell(value: float | None, top: float) -> html.Td:
    if value is None:
        return html.Td(DASH, className="text-muted", title="no parameters", style=CELL)
    width = 0.0 if top <= 0 else 100 * value / top
    return html.Td(html.Div([
        html.Span(f"{value:.3f}", style={"width": 40, "fontVariantNumeric": "tabular-nums"}),
        html.Div(html.Div(style={"width": f"{width:.1f}%", "height": 8, "background": NEUTRAL_COLOR,
                                 "borderRadius": 1}),
                 style={"flex": "1 1 auto", "minWidth": 60, "background": "#f0f0f0"}),
    ], style={"display": "flex", "alignItems": "center", "gap": 6}), style=CELL)


def _layer_title(row: dict[str, Any]) -> Title:
    """The hover of an analysed layer's tag (``L3``): its full module path."""
    return {"title": f"{layer_label(row)} = {row['name']}"} if row.get("analysed") else {}


def models_table(rows: list[dict[str, Any]], embedding: str | None) -> html.Table:
    """One row per module, then a totals row (parameters)."""
    top = max((r["weight_change"] for r in rows if r.get("weight_change") is not None), default=0.0)
    body = []
    for r in rows:
        emb = r["name"] == embedding
        body.append(html.Tr(className="fw-semibold" if r["analysed"] else "", children=[
            html.Td([r["name"], html.Span("emb", className="badge text-bg-secondary ms-1",
                                          title="embedding layer: the maps and the image query use its input")
                     if emb else ""], style=CELL),
            html.Td(r["type"], style=CELL),
            html.Td(_shape(r.get("output_shape")), title="output shape of one instance (no batch dimension)",
                    style=CELL),
            html.Td(f"{int(r['params']):,}", style=NUM),
            html.Td(layer_label(r) if r["analysed"] else "", style=CELL, **_layer_title(r)),
            _change_cell(r.get("weight_change"), top),
        ]))
    n_an = sum(bool(r["analysed"]) for r in rows)
    total = html.Tr(className="fw-bold", style={"borderTop": "2px solid #999"}, children=[
        html.Td(f"total: {len(rows)} modules", style=CELL), html.Td("", style=CELL), html.Td("", style=CELL),
        html.Td(f"{sum(int(r['params']) for r in rows):,}", style=NUM, id="preview-total-params"),
        html.Td(f"{n_an} analysed", style=CELL), html.Td("", style=CELL),
    ])
    head = html.Thead(html.Tr([html.Th("module", style=CELL), html.Th("type", style=CELL),
                               html.Th("output shape", style=CELL), html.Th("params", style=NUM),
                               html.Th("layer", style=CELL),
                               html.Th("weight change S\u2192T", style=CELL,
                                       title="||Wt \u2212 Ws|| / ||Ws|| over the module's parameters")]),
                      style={"position": "sticky", "top": 0, "background": "white", "zIndex": 1})
    return html.Table([head, html.Tbody(body + [total])], className="table table-sm mb-0", id="preview-module-table",
                      style={"fontSize": "0.75rem"})


def _embedding_note(rows: list[dict[str, Any]], embedding: str | None) -> str:
    names = [r["name"] for r in rows]
    if not embedding or embedding not in names:
        return f"Embedding layer: {embedding or 'unknown'}."
    i = names.index(embedding)
    label = f" ({layer_label(rows[i])})" if rows[i]["analysed"] else ""
    size = ""
    prev = rows[i - 1].get("output_shape") if i > 0 else None
    if prev:
        size = f", {math.prod(prev):,} values"
    return f"Embedding: the input of {embedding}{label}{size}; the maps, the timeline and the image query use it."


def models_panel(cache: Cache) -> list[Any]:
    """Title, the shared-architecture note, the module table and the weight-change chart."""
    rows, complete = module_rows(cache)
    info = cache.layer_info
    model = cache.config.get("model", {})
    size = model.get("input_size")
    classes = len(cache.classes)
    head_rows = [r for r in rows if r["params"]]
    head = head_rows[-1] if head_rows else None
    head_out = (head.get("output_shape") or [None])[-1] if head else None
    heads = (f"both heads, {head['name']}, output {head_out} classes" if head is not None and head_out is not None
             else f"both heads output {info.get('num_classes', classes)} classes")
    note = html.Div(className="small", style={"lineHeight": 1.3}, children=[
        html.Div([html.B(str(model.get("arch", "?"))), f", input 3\u00d7{size}\u00d7{size}" if size else "", ": the ",
                  html.Span("source", className="tv-source fw-semibold"), " and ",
                  html.Span("target", className="tv-target fw-semibold"),
                  (f" models share it (same modules and parameter shapes; {heads}); only their weights differ, "
                   "shown by the last column.")]),
        html.Div(_embedding_note(rows, info.get("embedding_layer")), className="text-muted"),
    ])
    children: list[Any] = [html.Span("Models", className="tv-card-title"), note]
    if not complete:
        children.append(html.Div(FALLBACK_NOTE, className="alert alert-warning py-1 px-2 my-1 small",
                                 id="preview-fallback"))
    children += [
        html.Div(models_table(rows, info.get("embedding_layer")), className="mt-1",
                 style={"maxHeight": TABLE_HEIGHT, "overflowY": "auto"}),
        dcc.Graph(figure=weight_change_chart(weight_change_frame(rows), height=CHART_HEIGHT),
                  config=graph_config("weight_change"), style={"height": CHART_HEIGHT}),
    ]
    return children


def count_table(counts: pd.DataFrame, domain_names: dict[str, str]) -> html.Table:
    """Class x (domain, split) counts with totals; a class absent from a domain is flagged."""
    wide = counts.pivot_table(index=["class_index", "class_name"], columns=["domain", "split"], values="n",
                              aggfunc="sum", fill_value=0)
    cols = [(d, s) for d in DOMAINS for s in SPLITS]
    wide = wide.reindex(columns=pd.MultiIndex.from_tuples(cols), fill_value=0)
    num = NUM
    body = []
    for (ci, name), r in wide.iterrows():
        absent = [d for d in DOMAINS if int(r[d].sum()) == 0]
        cells = [html.Td(str(name), title=f"class {ci}", style=CELL)]
        for d, s in cols:
            v = int(r[(d, s)])
            cells.append(html.Td(str(v), style={**num, "color": DOMAIN_COLORS[d] if v else "#9e9e9e",
                                                "fontStyle": "normal" if v else "italic"}))
        cells.append(html.Td(str(int(r.sum())), style={**num, "fontWeight": 600}))
        flag = (html.Span("\u26a0", title=f"no {' or '.join(absent)} instances of this class")
                if absent else "")
        cells.append(html.Td(flag, style=CELL))
        body.append(html.Tr(cells, style={"background": ABSENT_BG} if absent else None,
                            **(Title(title=f"absent from {', '.join(domain_names.get(d, d) for d in absent)}")
                               if absent else Title())))
    totals = [html.Td("total", style=CELL)] + [html.Td(f"{int(wide[c].sum()):,}", style=num) for c in cols]
    totals += [html.Td(f"{int(wide.to_numpy().sum()):,}", style=num), html.Td("", style=CELL)]
    body.append(html.Tr(totals, className="fw-bold", style={"borderTop": "2px solid #999"}))
    head = html.Thead([
        html.Tr([html.Th("", style=CELL)] + [html.Th(domain_names.get(d, d), colSpan=2, title=f"{d} domain",
                                                      className=f"tv-{d} text-center", style=CELL) for d in DOMAINS]
                + [html.Th("", style=CELL), html.Th("", style=CELL)]),
        html.Tr([html.Th("class", style=CELL)] + [html.Th(s, style=num) for _, s in cols]
                + [html.Th("all", style=num), html.Th("", style=CELL)]),
    ], style={"position": "sticky", "top": 0, "background": "white", "zIndex": 1})
    return html.Table([head, html.Tbody(body)], className="table table-sm mb-0", id="preview-count-table",
                      style={"fontSize": "0.72rem"})


def data_summary(cache: Cache, counts: pd.DataFrame | None = None) -> list[Any]:
    """Title, image size and per-domain totals with skipped and converted files, and the count chart.
    ``counts``: :func:`class_count_frame` of the cache, when the caller already has it."""
    meta = cache.meta
    names = cache.domains
    counts = class_count_frame(cache) if counts is None else counts
    size = meta.get("image_size")
    lines = []
    for d in DOMAINS:
        part = counts[counts.domain == d]
        by_split = {s: int(part.loc[part.split == s, "n"].sum()) for s in SPLITS}
        skipped = int(meta.get("skipped", {}).get(d, 0))
        converted = int(meta.get("converted", {}).get(d, 0))
        lines.append(html.Div([
            html.Span(f"{names.get(d, d)}", style={"color": DOMAIN_COLORS[d], "fontWeight": 600}),
            html.Span(f" ({d}) ", className="text-muted"),
            f"{sum(by_split.values()):,} = {by_split['train']:,} train + {by_split['val']:,} val; ",
            html.Span(f"{skipped:,} unreadable file{'s' if skipped != 1 else ''} skipped",
                      style={"color": "#b35900"} if skipped else None),
            f", {converted:,} converted to RGB",
        ]))
    return [
        html.Div([html.Span("Data", className="tv-card-title"),
                  html.Span(f" {len(cache.classes)} classes; images {size}\u00d7{size} px RGB (the model's input size)"
                            if size else f" {len(cache.classes)} classes", className="text-muted small ms-1")]),
        html.Div(lines, className="small", style={"lineHeight": 1.35}),
        dcc.Graph(figure=class_count_chart(counts, names, height=CHART_HEIGHT), config=graph_config("class_counts"),
                  style={"height": CHART_HEIGHT}),
    ]


def _thumbs(ids_: list[int], domain: str, label: str, prefix: str, per_class: int) -> html.Div:
    color = DOMAIN_COLORS[domain]
    if not ids_:
        return html.Div(f"no {domain}", className="text-muted fst-italic text-center",
                        title=f"no {domain} instance of class {label} in this split",
                        style={"width": per_class * (THUMB_PX + 4), "height": THUMB_PX + 4,
                               "lineHeight": f"{THUMB_PX}px", "border": f"1px dashed {color}", "borderRadius": 2,
                               "fontSize": "0.68rem"})
    imgs = [thumb_img(prefix, i, domain, THUMB_PX, alt=f"#{i}", title=f"#{i} \u00b7 {domain} \u00b7 class {label}")
            for i in ids_]
    return html.Div(imgs, style={"display": "flex", "gap": 4, "width": per_class * (THUMB_PX + 4)})


def sample_grid(cache: Cache, split: str, prefix: str, per_class: int = SAMPLES_PER_CLASS) -> html.Div:
    """For each class, ``per_class`` source and target thumbnails of ``split``; an empty mark where none."""
    split = split if split in SPLITS else "train"
    picks = {d: sample_ids(cache.instances, d, split, per_class) for d in DOMAINS}
    names = cache.domains
    head = html.Div(style={"display": "flex", "gap": 8, "fontSize": "0.7rem", "fontWeight": 600}, children=[
        html.Div("class", style={"width": 44}),
        html.Div(names.get("source", "source"), style={"width": per_class * (THUMB_PX + 4), "color": SOURCE_COLOR}),
        html.Div(names.get("target", "target"), style={"width": per_class * (THUMB_PX + 4), "color": TARGET_COLOR}),
    ])
    rows = []
    for ci, label in enumerate(cache.classes):
        rows.append(html.Div(
            style={"display": "flex", "gap": 8, "alignItems": "center", "marginBottom": 3},
            **DataAttrs({"data-class": ci}),
            children=[html.Div(label, title=label, className="small text-truncate", style={"width": 44}),
                      *[_thumbs(picks[d].get(ci, []), d, label, prefix, per_class) for d in DOMAINS]]))
    return html.Div([head, *rows], id="preview-sample-grid")
