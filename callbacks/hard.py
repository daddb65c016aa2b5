"""Hard-example callbacks: the two loss maps, brushing between them, focus on click, the detail card.

Thin callbacks over module-level pure functions (cache + plain values in). The per-instance
arrays both maps need (positions, losses, hover texts) are prepared once per process, keyed
on the app's Cache object (:func:`hard_data`); a callback then only filters and builds figures.

Brushing: a lasso in one map is kept in ``BRUSH`` (``{"source": map key, "ids": [...]}``);
the *other* map shows those ids as its ``selectedpoints`` (larger, the rest faded). The
lassoed map is never given ``selectedpoints``: it keeps the user's own lasso, which plotly
re-applies when the map is redrawn (a filter change re-selects inside the outline and so
updates the brush). A double-click that clears a lasso clears the brush only if that map
made it. A focus change (a click in either map, or any other view) patches only the focus
ring and its label (``dash.Patch``): kilobytes, and the lasso stays untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import dash
import numpy as np
import pandas as pd
from dash import Input, Output, State, html

from callbacks import thumb_img, triggered_components
from dashboard import data
from dashboard.app import get_cache
from dashboard.figures.hard import (
    FOCUS_TRACE,
    LOSS_QUANTILE,
    focus_label,
    focus_ring,
    loss_map,
    loss_range,
)
from dashboard.figures.theme import (
    DOMAIN_COLORS,
    MISPREDICTED_COLOR,
    POSITIVE_COLOR,
    SOURCE_COLOR,
    TARGET_COLOR,
    empty_figure,
)
from dashboard.pool import as_ids, focus_id
from layouts import hard as ly
from layouts import ids
from transferviz.cache import Cache

NO = dash.no_update
MODELS = ("source", "target")
DOMAINS = ("both", "source", "target")
MAP_KEYS = tuple(m[0] for m in ly.MAPS)
KEY_OF = {m[1]: m[0] for m in ly.MAPS}
TITLE_OF = {m[0]: m[2] for m in ly.MAPS}
NO_PIXEL_MAP = ("This cache has no raw-pixel map (it was built before the 'pixels' stage): "
                "rebuild it with 'transferviz build CONFIG' (the other stages are reused).")
NO_HIDDEN_MAP = "This cache has no t-SNE map (analysis/tsne.npy): rebuild it with 'transferviz build CONFIG'."


# --- per-process data ----------------------------------------------------------------------

@dataclass(frozen=True)
class HardData:
    """Both maps' inputs, row i = row i of ``cache.instances``."""

    ids: np.ndarray
    domain: np.ndarray                       # 'source' / 'target'
    maps: dict[str, np.ndarray | None]       # map key -> (N, 2) positions, None when the cache lacks it
    loss: dict[str, np.ndarray]              # model -> loss
    wrong: dict[str, np.ndarray]             # model -> prediction != label
    ranges: dict[str, tuple[float, float]]   # model -> colour-scale range (fixed whatever the filters)
    hover: dict[str, np.ndarray]             # model -> hover text: domain, true label, that model's answer


def hard_data(cache: Cache) -> HardData:
    """Memoized per Cache object (it hashes by identity; the app holds one per process)."""
    return _hard_data(cache)


@lru_cache(maxsize=4)
def _hard_data(cache: Cache) -> HardData:
    df = cache.instances
    n = len(df)
    names = dict(enumerate(cache.classes))

    def text(values: Any) -> np.ndarray:
        return np.asarray(values, dtype=object).astype(str).astype(object)

    def class_name(col: str) -> np.ndarray:
        return text(df[col].map(names).fillna(df[col].astype(str)))

    label = df["label"].to_numpy(dtype=np.int64)
    # "target, true <b>3</b><br>source model: 5 ✗ 82%, loss 2.31" (the id comes from customdata). Only
    # the coloured model's answer: both maps carry every instance's text, so it is kept short (the
    # detail card shows both models).
    head = text(df["domain"]) + ", true <b>" + class_name("label") + "</b><br>"
    loss, wrong, hover = {}, {}, {}
    for m in MODELS:
        loss[m] = df[f"{m}_loss"].to_numpy(dtype=np.float64)
        wrong[m] = df[f"{m}_pred"].to_numpy(dtype=np.int64) != label
        conf = text(np.char.mod("%.0f%%", 100 * df[f"{m}_conf"].to_numpy(dtype=np.float64)))
        hover[m] = (head + f"{m} model: " + class_name(f"{m}_pred") + np.where(wrong[m], " \u2717 ", " ")
                    + conf + ", loss " + text(np.char.mod("%.3g", loss[m])))

    def positions(arr: np.ndarray | None) -> np.ndarray | None:
        if arr is None:
            return None
        arr = np.asarray(arr, dtype=np.float64)
        return arr if arr.shape == (n, 2) else None  # a stale or foreign array: treat as missing

    hidden = cache.tsne() if (cache.root / "analysis/tsne.npy").is_file() else None
    return HardData(
        ids=df["id"].to_numpy(dtype=np.int64), domain=text(df["domain"]),
        maps={"hidden": positions(hidden), "pixels": positions(cache.pixel_tsne())},
        loss=loss, wrong=wrong, ranges={m: loss_range(loss[m]) for m in MODELS}, hover=hover)


# --- the maps ------------------------------------------------------------------------------

def maps_update(cache: Cache, fired: set[str], tab: str | None, drawn: bool | None, model: Any, domain: Any,
                wrong_only: Any, focus: Any, brush: Any) -> tuple[Any, Any, Any, Any]:
    """``(hidden map, pixel map, summary, drawn flag)`` for whatever fired the maps' callback.

    The maps (~1 MB of JSON) wait until the diagnosis tab is first shown; a focus set
    meanwhile (e.g. from the timeline) is simply part of that first drawing. Once drawn, a
    tab switch sends nothing, a focus change patches the ring only, and a new lasso redraws
    only the other map (the lassoed one keeps its own outline).
    """
    if not drawn:
        if tab != ids.TAB_DIAGNOSIS:
            return NO, NO, NO, NO
        return (*update_maps(cache, model, domain, wrong_only, focus, brush), True)
    if fired == {ids.TABS}:
        return NO, NO, NO, NO
    if fired == {ids.FOCUS}:
        return (*focus_patches(cache, focus), NO, NO)
    lassoed = fired == {ly.BRUSH} and brushed_ids(brush) is not None
    return (*update_maps(cache, model, domain, wrong_only, focus, brush,
                         skip=brush["source"] if lassoed else None), NO)


def selection(model: Any, domain: Any, wrong_only: Any) -> tuple[str, str, bool]:
    """The controls' values, anything unknown replaced by the view's default."""
    model = model if model in MODELS else ly.DEFAULTS["model"]
    domain = domain if domain in DOMAINS else ly.DEFAULTS["domain"]
    return model, domain, bool(wrong_only) and ly.WRONG_ONLY in (wrong_only or [])


def visible_rows(d: HardData, model: str, domain: str, wrong_only: bool) -> np.ndarray:
    """Boolean mask of the instances the filters keep."""
    keep = np.ones(len(d.ids), dtype=bool) if domain == "both" else d.domain == domain
    return keep & d.wrong[model] if wrong_only else keep


def brushed_ids(brush: Any) -> list[int] | None:
    """The brush's instance ids (None: no brush)."""
    if not isinstance(brush, dict) or brush.get("source") not in MAP_KEYS:
        return None
    return as_ids(brush.get("ids"))


def update_maps(cache: Cache, model: Any, domain: Any, wrong_only: Any, focus: Any, brush: Any,
                skip: str | None = None) -> tuple[Any, Any, Any]:
    """``(hidden-layer map, raw-pixel map, summary line)`` for the controls, focus and brush.

    The brush highlights its ids in the map it did not come from; the map it came from keeps
    the user's own lasso (plotly re-applies it to the new points). The map named ``skip`` (a
    map key) is left as it is (``no_update``).
    """
    model, domain, wrong_only = selection(model, domain, wrong_only)
    d = hard_data(cache)
    keep = visible_rows(d, model, domain, wrong_only)
    brushed = brushed_ids(brush)
    frame = pd.DataFrame({"id": d.ids[keep], "domain": d.domain[keep], "loss": d.loss[model][keep],
                          "hover": d.hover[model][keep]})
    figs = []
    for key in MAP_KEYS:
        xy = d.maps[key]
        if key == skip:
            figs.append(NO)
        elif xy is None:
            figs.append(empty_figure(NO_PIXEL_MAP if key == "pixels" else NO_HIDDEN_MAP, height=ly.MAP_HEIGHT))
        else:
            figs.append(loss_map(frame.assign(x=xy[keep, 0], y=xy[keep, 1]), color_range=d.ranges[model],
                                 focus=focus_point(d, key, focus),
                                 brushed=brushed if brushed is not None and brush["source"] != key else None,
                                 height=ly.MAP_HEIGHT, show_colorbar=key == "pixels",
                                 loss_name=f"{model} model loss", uirevision=f"hard-{key}",
                                 empty_message="No instances match the filters" if len(d.ids) else
                                 "This cache has no instances"))
    return figs[0], figs[1], summary_line(d, keep, model, brushed, brush)


def focus_point(d: HardData, key: str, focus: Any) -> dict[str, Any] | None:
    """``{"id", "x", "y"}`` of the focused instance in map ``key`` (None: no valid focus or no map)."""
    fid = focus_id(focus, len(d.ids))
    xy = d.maps.get(key)
    row = _row_of(d, fid) if fid is not None else None
    if xy is None or row is None:
        return None
    return {"id": fid, "x": float(xy[row, 0]), "y": float(xy[row, 1])}


def focus_patches(cache: Cache, focus: Any) -> tuple[Any, Any]:
    """A new focus moves only the ring: a ``dash.Patch`` of each map's focus trace (kilobytes instead
    of redrawing thousands of points, and the user's lasso stays untouched)."""
    d = hard_data(cache)
    out = []
    for key in MAP_KEYS:
        if d.maps[key] is None:
            out.append(NO)
            continue
        point = focus_point(d, key, focus)
        patch = dash.Patch()
        patch["data"][FOCUS_TRACE] = focus_ring(point)
        patch["layout"]["annotations"][0] = focus_label(point)
        out.append(patch)
    return out[0], out[1]


def _row_of(d: HardData, instance_id: int) -> int | None:
    if 0 <= instance_id < len(d.ids) and d.ids[instance_id] == instance_id:
        return instance_id  # ids are row numbers by construction
    hit = np.flatnonzero(d.ids == instance_id)
    return int(hit[0]) if len(hit) else None


def summary_line(d: HardData, keep: np.ndarray, model: str, brushed: list[int] | None, brush: Any) -> Any:
    """Counts shown, mispredicted, the colour scale's range and the brush."""
    n_s = int((keep & (d.domain == "source")).sum())
    n_t = int((keep & (d.domain == "target")).sum())
    wrong = int((keep & d.wrong[model]).sum())
    lo, hi = d.ranges[model]
    parts: list[Any] = [
        f"{n_s + n_t} shown: ", html.Span(f"{n_s} source \u00d7", style={"color": SOURCE_COLOR}), ", ",
        html.Span(f"{n_t} target \u25cb", style={"color": TARGET_COLOR}), "; ",
        html.Span(f"{wrong} mispredicted", style={"color": MISPREDICTED_COLOR, "fontWeight": 600}),
        f" by the {model} model. Colour: its loss, log scale from {lo:g} to {hi:.3g} "
        f"(the {LOSS_QUANTILE:.0%} quantile; above it darkest).",
    ]
    if brushed is not None:
        n_vis = int(np.isin(d.ids[keep], brushed).sum())
        src = TITLE_OF[brush["source"]]
        parts.append(html.B(f" {len(brushed)} lassoed in the {src} map ({n_vis} shown); double-click it to clear."))
    return parts


# --- brushing, focus -----------------------------------------------------------------------

def brush_state(trigger: str | None, sel_hidden: dict | None, sel_pixels: dict | None, current: Any) -> Any:
    """The new ``BRUSH`` after a (de)selection in the map ``trigger`` (a graph id)."""
    key = KEY_OF.get(trigger or "")
    if key is None:
        return NO
    sel = sel_hidden if key == "hidden" else sel_pixels
    if not sel or not (sel.get("points") or sel.get("lassoPoints") or sel.get("range")):
        # cleared: only the map that made the brush may clear it
        return None if isinstance(current, dict) and current.get("source") == key else NO
    return {"source": key, "ids": data.selected_ids(sel)}


def click_focus(click_data: dict | None, n_instances: int) -> Any:
    """The clicked instance's id for ``ids.FOCUS`` (no update for a click on nothing)."""
    clicked = [i for i in data.selected_ids(click_data) if 0 <= i < n_instances]
    return clicked[0] if clicked else NO


# --- the detail card -----------------------------------------------------------------------

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
        return html.Div(ly.DETAIL_HINT, className="text-muted small")
    df = cache.instances
    fid = focus_id(focus, len(df))
    recs = data.instance_records(cache, [fid]) if fid is not None else []
    if not recs:
        return html.Div(f"Instance {focus!r} is not in this cache.", className="text-muted small")
    rec = recs[0]
    row = df.iloc[_row_of(hard_data(cache), rec["id"])]
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


# --- wiring --------------------------------------------------------------------------------

def register(app: dash.Dash) -> None:
    cache = get_cache(app)
    prefix = app.config.requests_pathname_prefix
    try:
        hard_data(cache)  # prepared at start-up, not on the first visitor's request
    except Exception:  # the callback reports any real problem when the tab is used
        pass

    @app.callback(
        Output(ly.HIDDEN_MAP, "figure"), Output(ly.PIXEL_MAP, "figure"), Output(ly.SUMMARY, "children"),
        Output(ly.DRAWN, "data"),
        Input(ly.MODEL, "value"), Input(ly.DOMAIN, "value"), Input(ly.WRONG, "value"),
        Input(ids.FOCUS, "data"), Input(ly.BRUSH, "data"), Input(ids.TABS, "value"), State(ly.DRAWN, "data"),
    )
    def _maps(model, domain, wrong_only, focus, brush, tab, drawn):
        return maps_update(get_cache(app), triggered_components(), tab, drawn, model, domain, wrong_only, focus,
                           brush)

    @app.callback(
        Output(ly.BRUSH, "data"),
        Input(ly.HIDDEN_MAP, "selectedData"), Input(ly.PIXEL_MAP, "selectedData"), State(ly.BRUSH, "data"),
        prevent_initial_call=True,
    )
    def _brush(sel_hidden, sel_pixels, current):
        return brush_state(dash.ctx.triggered_id, sel_hidden, sel_pixels, current)

    @app.callback(
        Output(ids.FOCUS, "data", allow_duplicate=True),
        Input(ly.HIDDEN_MAP, "clickData"), Input(ly.PIXEL_MAP, "clickData"),
        prevent_initial_call=True,
    )
    def _click(click_hidden, click_pixels):
        clicked = click_hidden if dash.ctx.triggered_id == ly.HIDDEN_MAP else click_pixels
        return click_focus(clicked, len(get_cache(app).instances))

    @app.callback(Output(ly.DETAIL, "children"), Input(ids.FOCUS, "data"))
    def _detail(focus):
        return detail_card(get_cache(app), focus, prefix)
