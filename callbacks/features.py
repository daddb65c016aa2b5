"""View D callbacks: the ranking list, the biplot and its thumbnail tooltip.

Module-level pure functions of ``(cache, inputs...)`` (tests call them directly);
:func:`register` wires them with ``app.callback``. Checklist values are ``"layer:index"``
strings, the URL's ``neurons`` format, so a selection means the same neurons whatever the
row order.
"""

from __future__ import annotations

import base64
from typing import Any, Callable, Sequence

import dash
import plotly.graph_objects as go
from dash import Input, Output, State, html, no_update

from dashboard import data
from dashboard.data_network import (
    Discriminability,
    discriminability,
    featvis_exists,
    mirrored_histogram_svg,
    ranking_histograms,
    ranking_table,
    valid_class,
)
from dashboard.figures.features import discriminability_biplot, ranking_rows
from dashboard.figures.theme import DOMAIN_COLORS, empty_figure
from dashboard.urlstate import StateSpace, parse_state, space_of, update_search
from layouts import features as ly
from layouts import ids
from transferviz.cache import Cache
from transferviz.errors import TransferVizError

UrlFor = Callable[[str], str]

__all__ = [
    "neuron_key",
    "ranking",
    "biplot_figure",
    "tooltip",
    "hovered_instance",
    "default_checked",
    "feature_controls",
    "register",
]


def _identity(path: str) -> str:
    return path


def neuron_key(layer: str, neuron: int) -> str:
    """Checklist value and URL token of a neuron: ``"features.3:12"``."""
    return f"{layer}:{int(neuron)}"


def _model(model: Any) -> str:
    return model if model in ("source", "target") else "target"


def _order(order: Any) -> str:
    return "ascending" if order == "least" else "descending"


def empty_message(cache: Cache, class_index: int | None, d: Discriminability | None) -> str:
    """Why there is nothing to rank (a class without instances in one domain, ...)."""
    if class_index is None:
        return "Select a class to rank its neurons by domain discriminability."
    name = cache.classes[class_index]
    if d is None or d.status == "missing":
        return f"The cache has no domain discriminability for class '{name}'."
    dom = cache.domains
    for which, n in (("source", d.n_source), ("target", d.n_target)):
        if n == 0:
            return (f"Class '{name}' has no {dom.get(which, which)} ({which}) instances: "
                    "domain discriminability needs both domains.")
    return f"No domain discriminability for class '{name}': {d.status}."


# =======================================================================================
# Ranking list
# =======================================================================================
def _svg_src(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def _row_label(row: dict, model: str, hist_svg: str, image: Any) -> html.Div:
    """One ranking row; ``image`` None: no feature-visualization column in this list."""
    u = row["discriminability"]
    cells = [
        html.Span(row["label"], title=f"{row['layer']} neuron {row['neuron']}",
                  style={"width": ly.COL_LABEL, "flex": "0 0 auto", "color": DOMAIN_COLORS[model]},
                  className="fw-semibold"),
        html.Span(f"{u:+.3f}", title="discriminability u (sign: towards the target domain when positive)",
                  style={"width": ly.COL_VALUE, "flex": "0 0 auto"}, className="text-end pe-1 font-monospace small"),
    ]
    if image is not None:
        cells.append(html.Span(image, style={"width": ly.COL_IMAGE, "flex": "0 0 auto"}, className="d-inline-block"))
    # the histogram takes the rest of the row (its SVG stretches), so narrow columns still fit it
    cells.append(html.Img(src=_svg_src(hist_svg), alt=f"conductance histogram of {row['label']}",
                          className="tv-mirror", style=ly.HIST_STYLE,
                          title="conductance over the class's source (red, above) and target (blue, below) "
                                "instances, each normalised to its domain"))
    return html.Div(cells, className="d-flex align-items-center tv-ranking-row", style={"width": "100%"})


def ranking(cache: Cache, class_index: Any, model: Any, order: Any, checked: Sequence[str] | None = None,
            url_for: UrlFor = _identity) -> tuple[list[dict], list[str], Any]:
    """``(options, value, status)`` of the ranking list.

    ``checked`` (``"layer:index"``; e.g. from the URL) overrides the default top five where
    it names neurons of this list; ``None`` or nothing valid -> the top five of the order.
    """
    c = valid_class(cache, class_index)
    m = _model(model)
    if c is None:
        return [], [], html.Div(empty_message(cache, None, None), className="text-muted")
    d = discriminability(cache, m, c)
    if not d.ok:
        return [], [], html.Div(empty_message(cache, c, d), className="alert alert-secondary py-1 px-2 mb-1",
                                **{"data-empty": "true"})
    table = ranking_table(d)
    rows = ranking_rows(table, order=_order(order), top_checked=ly.TOP_CHECKED)
    try:
        hists = ranking_histograms(cache, m, c)
    except TransferVizError:  # a partial cache without conductance: empty histograms
        hists = {}
    has_fv = [featvis_exists(cache, m, r["layer"], r["neuron"]) for r in rows]
    options = []
    for r, fv in zip(rows, has_fv):
        image = None
        if any(has_fv):  # reserve the column only when the cache has feature visualizations
            image = (html.Img(src=url_for(data.featvis_path(m, r["layer"], r["neuron"])), width=28, height=28,
                              style={"imageRendering": "pixelated"}, alt="feature visualization") if fv else "")
        svg = hists.get((r["layer"], int(r["neuron"]))) or mirrored_histogram_svg([], [])
        options.append({"label": _row_label(r, m, svg, image), "value": neuron_key(r["layer"], r["neuron"])})
    keys = [o["value"] for o in options]
    wanted = [k for k in (checked or []) if k in keys]
    value = wanted if wanted else [neuron_key(r["layer"], r["neuron"]) for r in rows if r["checked"]]
    dom = cache.domains
    status = html.Div([
        html.Span(f"{m} model", style={"color": DOMAIN_COLORS[m]}, className="fw-semibold"),
        f" · {len(rows)} important neurons · class '{cache.classes[c]}': ",
        html.Span(f"{d.n_source} {dom.get('source', 'source')}", className="tv-source"), " / ",
        html.Span(f"{d.n_target} {dom.get('target', 'target')}", className="tv-target"),
        " instances · domain classifier " + (f"{d.cv_accuracy:.0%} CV accuracy" if d.cv_accuracy is not None else ""),
    ], className="text-muted")
    return options, value, status


# =======================================================================================
# Biplot
# =======================================================================================
def biplot_figure(cache: Cache, class_index: Any, model: Any, checked: Sequence[str] | None) -> go.Figure:
    """The domain discrimination biplot with an axis per checked neuron."""
    c = valid_class(cache, class_index)
    m = _model(model)
    if c is None:
        return empty_figure(empty_message(cache, None, None), height=ly.BIPLOT_HEIGHT)
    d = discriminability(cache, m, c)
    if not d.ok:
        return empty_figure(empty_message(cache, c, d), height=ly.BIPLOT_HEIGHT)
    n = d.neurons
    keys = [neuron_key(layer, k) for layer, k in zip(n["layer"], n["neuron"])]
    pos = {k: i for i, k in enumerate(keys)}
    chk = [pos[k] for k in (checked or []) if k in pos]
    labels = [f"L{num} #{k}" for num, k in zip(n["layer_number"], n["neuron"])]
    fig = discriminability_biplot(
        d.points[["x", "y"]].to_numpy(dtype=float), d.points["domain"].to_numpy(), d.points["id"].to_numpy(),
        n[["axis_x", "axis_y"]].to_numpy(dtype=float), labels, chk, d.cv_accuracy, height=ly.BIPLOT_HEIGHT,
    )
    fig.layout.uirevision = f"biplot|{m}|{c}"  # a new class or model resets the zoom (one property: no re-validation of the layout)
    for t in fig.data:
        if isinstance(t.meta, dict) and t.meta.get("role") == "instances":
            # the thumbnail tooltip replaces plotly's label (it repeats u and g); hover events still fire
            t.hoverinfo, t.hovertemplate = "none", None
    return fig


# =======================================================================================
# Tooltip
# =======================================================================================
def hovered_instance(cache: Cache, hover_data: dict | None, class_index: Any, model: Any) -> int | None:
    """The instance id under the mouse in the biplot, or ``None`` (an axis label, nothing).

    Dash drops ``customdata`` from the hover events of WebGL traces, so the id is found from
    the trace and point numbers: :func:`discriminability_biplot` draws the source then the
    target instances (a domain without points has no trace), in ``points`` order, before
    the neuron axes.
    """
    pts = (hover_data or {}).get("points") or []
    if not pts:
        return None
    p = pts[0]
    cd = p.get("customdata")
    if cd is not None and not isinstance(cd, (list, dict, bool)):
        try:
            return int(cd)
        except (TypeError, ValueError):
            return None
    if cd is not None:
        return None  # a neuron axis label carries [u, g]
    c = valid_class(cache, class_index)
    if c is None:
        return None
    d = discriminability(cache, _model(model), c)
    if not d.ok:
        return None
    dom = d.points["domain"].to_numpy().astype(str)
    order = [x for x in ("source", "target") if (dom == x).any()]
    try:
        curve, point = int(p.get("curveNumber")), int(p.get("pointNumber"))
    except (TypeError, ValueError):
        return None
    if not 0 <= curve < len(order):
        return None
    ids = d.points["id"].to_numpy()[dom == order[curve]]
    return int(ids[point]) if 0 <= point < len(ids) else None


#: Points further right than this (pixels in the graph) get their tooltip on the left, so it
#: never runs off the page whichever column the view sits in.
TOOLTIP_FLIP_PX = 200


def tooltip(cache: Cache, hover_data: dict | None, class_index: Any = None, model: Any = None,
            url_for: UrlFor = _identity) -> tuple[bool, Any, Any, Any]:
    """``(show, bbox, direction, children)`` of the biplot's thumbnail tooltip."""
    i = hovered_instance(cache, hover_data, class_index, model)
    if i is None:
        return False, no_update, no_update, no_update
    p = hover_data["points"][0]
    bbox = p.get("bbox") or {}
    direction = "left" if float(bbox.get("x0", 0) or 0) > TOOLTIP_FLIP_PX else "right"
    rec = data.instance_records(cache, [i])
    if not rec:
        return False, no_update, no_update, no_update
    r = rec[0]
    children = html.Div([
        html.Img(src=url_for(data.thumb_path(i)), alt=f"instance {i}",
                 style={"width": "64px", "height": "64px", "imageRendering": "pixelated", "display": "block"}),
        html.Div([html.Span(r["domain_name"], style={"color": DOMAIN_COLORS.get(r["domain"], "#333")}),
                  f" #{i}"], className="small fw-semibold"),
        html.Div(f"label {r['label_name']} · target model: {r['target_pred_name']}", className="small"),
        *([html.Div(f"u {p['x']:.2f} · g {p['y']:.2f}", className="small text-muted")]
          if isinstance(p.get("x"), (int, float)) and isinstance(p.get("y"), (int, float)) else []),
    ], className="tv-tooltip")
    return True, p.get("bbox"), direction, children


# =======================================================================================
# The view's controller: switches, ranking list and URL keys model/order/neurons
# =======================================================================================
def default_checked(cache: Cache, class_index: Any, model: Any, order: Any) -> list[str]:
    """The top five of the ranking list in ``order`` (what ``neurons=`` empty means)."""
    c = valid_class(cache, class_index)
    if c is None:
        return []
    d = discriminability(cache, _model(model), c)
    if not d.ok:
        return []
    rows = ranking_rows(ranking_table(d), order=_order(order), top_checked=ly.TOP_CHECKED)
    return [neuron_key(r["layer"], r["neuron"]) for r in rows if r["checked"]]


def _checked(cache: Cache, c: int, model: str, order: str, wanted: Sequence[str]) -> list[str]:
    d = discriminability(cache, _model(model), c)
    keys = {neuron_key(layer, n) for layer, n in zip(d.neurons["layer"], d.neurons["neuron"])} if d.ok else set()
    return [k for k in wanted if k in keys] or default_checked(cache, c, model, order)


FEATURE_OUTPUTS = ("search", "model", "order", "options", "value", "status")


def feature_controls(cache: Cache, space: StateSpace, triggered: set[str], search: str | None, class_index: Any,
                     model: Any, order: Any, value: Sequence[str] | None,
                     url_for: UrlFor = _identity) -> tuple[Any, Any, Any, Any, Any, Any]:
    """One callback owns view D's controls and its URL keys, so nothing races.

    ``triggered`` holds the ids that fired (empty: the initial call). The URL is the
    source of truth when it fired (page load, back/forward); a switch or a checkbox
    writes its key to the URL (``update_search``), only while the URL already names the
    current class (the state callback owns ``class`` and resets ``neurons`` with it).
    Returns :data:`FEATURE_OUTPUTS`, ``no_update`` wherever nothing changes.
    """
    state, _ = parse_state(search, space)
    c = valid_class(cache, class_index)
    url_fired = not triggered or ids.URL in triggered
    new_model = state.model if url_fired else _model(model)
    new_order = state.order if url_fired else ("least" if order == "least" else "most")
    list_changed = (not triggered or ids.SELECTED_CLASS in triggered or new_model != model or new_order != order
                    or ly.MODEL in triggered or ly.ORDER in triggered)
    url_neurons = [neuron_key(layer, n) for layer, n in state.neurons]
    describes = c is not None and state.cls == c and state.model == new_model and state.order == new_order
    options: Any = no_update
    status: Any = no_update
    new_value: Any = no_update
    current = list(value or [])
    if list_changed:
        # a new list: the URL's checks where the URL describes this list, else the top five
        options, current, status = ranking(cache, c, new_model, new_order,
                                           url_neurons if describes else None, url_for)
        new_value = current
    elif url_fired and describes:
        # the same list, other checks in the URL (back / forward, an edited link)
        target = _checked(cache, c, new_model, new_order, url_neurons)
        if target != current:
            new_value = current = target
    # the URL follows the controls (never while it still names another class)
    out_search: Any = no_update
    if not url_fired and c is not None and state.cls == c:
        default = default_checked(cache, c, new_model, new_order)
        # as a set: the checklist appends in click order, the default is in rank order
        neurons = () if set(current) == set(default) else tuple(
            (k.rpartition(":")[0], int(k.rpartition(":")[2])) for k in current)
        if (new_model, new_order, neurons) != (state.model, state.order, state.neurons):
            out_search = update_search(search, space, model=new_model, order=new_order, neurons=neurons)
    return (
        out_search,
        new_model if new_model != model else no_update,
        new_order if new_order != order else no_update,
        options,
        new_value,
        status,
    )


# =======================================================================================
# Wiring
# =======================================================================================
def register(app: dash.Dash) -> None:
    from callbacks import triggered_components
    from dashboard.app import get_cache

    space = space_of(get_cache(app))  # the valid URL values never change under an app

    def url_for(path: str) -> str:
        return app.get_relative_path(path)

    @app.callback(
        Output(ids.URL, "search", allow_duplicate=True),
        Output(ly.MODEL, "value"),
        Output(ly.ORDER, "value"),
        Output(ly.RANKING, "options"),
        Output(ly.RANKING, "value"),
        Output(ly.STATUS, "children"),
        Input(ids.URL, "search"),
        Input(ids.SELECTED_CLASS, "data"),
        Input(ly.MODEL, "value"),
        Input(ly.ORDER, "value"),
        Input(ly.RANKING, "value"),
        prevent_initial_call="initial_duplicate",
    )
    def _controls(search, cls, model, order, value):
        fired = triggered_components()
        return feature_controls(get_cache(app), space, fired, search, cls, model, order, value, url_for)

    @app.callback(
        Output(ly.BIPLOT, "figure"),
        Input(ids.SELECTED_CLASS, "data"),
        Input(ly.MODEL, "value"),
        Input(ly.RANKING, "value"),
    )
    def _biplot(cls, model, checked):
        return biplot_figure(get_cache(app), cls, model, checked)

    @app.callback(
        Output(ly.TOOLTIP, "show"),
        Output(ly.TOOLTIP, "bbox"),
        Output(ly.TOOLTIP, "direction"),
        Output(ly.TOOLTIP, "children"),
        Input(ly.BIPLOT, "hoverData"),
        State(ids.SELECTED_CLASS, "data"),
        State(ly.MODEL, "value"),
    )
    def _tooltip(hover, cls, model):
        return tooltip(get_cache(app), hover, cls, model, url_for)
