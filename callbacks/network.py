"""View C callbacks: the relation-matrices figure, the detail panel and the class selector.

Each callback is a module-level pure function of ``(cache, inputs...)`` (tests call them
directly); :func:`register` wires them to an app with ``app.callback``. The selected class
lives in the shared store ``layouts.ids.SELECTED_CLASS``; the title-bar dropdown mirrors
it and writes it.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import dash
import numpy as np
import plotly.graph_objects as go
from dash import Input, Output, dcc, html, no_update

from dashboard import data
from dashboard.data_network import (
    NeuronDetail,
    WeightDetail,
    class_important,
    featvis_exists,
    layer_numbers,
    network_inputs,
    neuron_detail,
    top_instances,
    valid_class,
    weight_detail,
)
from dashboard.figures.network import kernel_heatmap, parse_click, relation_matrices
from dashboard.figures.theme import DOMAIN_COLORS, GRAPH_CONFIG, empty_figure
from dashboard.urlstate import StateSpace, parse_state, space_of, update_search
from layouts import ids
from layouts import network as ly
from transferviz.cache import Cache
from transferviz.errors import TransferVizError

UrlFor = Callable[[str], str]

__all__ = [
    "layers_from_range",
    "range_from_layers",
    "network_figure",
    "detail_panel",
    "sync_class",
    "layers_url",
    "register",
]


def _identity(path: str) -> str:
    return path


# =======================================================================================
# Inputs
# =======================================================================================
def layers_from_range(cache: Cache, value: Sequence[Any] | None) -> list[str]:
    """RangeSlider ``[a, b]`` (1-based layer numbers) -> consecutive layer names.

    Out-of-range or reversed ends are clipped and ordered; more than ``MAX_LAYERS`` keep
    the first ``MAX_LAYERS`` from ``a``; nothing usable -> the default first layers.
    """
    n = len(cache.layers)
    try:
        a, b = (int(round(float(v))) for v in (value or [])[:2])
    except (TypeError, ValueError):
        a, b = 1, min(ly.DEFAULT_LAYERS, n)
    a, b = sorted((min(max(a, 1), n), min(max(b, 1), n)))
    b = min(b, a + ly.MAX_LAYERS - 1)
    return list(cache.layers[a - 1:b])


def range_from_layers(cache: Cache, layers: Sequence[str]) -> list[int]:
    """Consecutive layer names -> RangeSlider ``[a, b]`` (unknown names ignored)."""
    pos = sorted(cache.layers.index(x) + 1 for x in layers if x in cache.layers)
    if not pos:
        return [1, min(ly.DEFAULT_LAYERS, len(cache.layers))]
    return [pos[0], min(pos[-1], pos[0] + ly.MAX_LAYERS - 1)]


# =======================================================================================
# The figure
# =======================================================================================
def network_figure(cache: Cache, class_index: Any, layer_range: Sequence[Any] | None,
                   hide_nonimportant: bool = False, hide_source: bool = False) -> go.Figure:
    """The relation matrices of the chosen layers for the class (paper Figure 4)."""
    c = valid_class(cache, class_index)
    if c is None:
        return empty_figure("Select a class to see its network relation", height=300)
    layers = layers_from_range(cache, layer_range)
    try:
        blocks, pairs = network_inputs(cache, c, layers)
    except TransferVizError:
        # a partial cache (an analysis stage not run): say so instead of a callback error
        return empty_figure("This cache has no network analysis for these layers "
                            "(rebuild it with 'transferviz build CONFIG')", height=300)
    name = cache.classes[c]
    if all(len(b.tgt_important) == 0 for b in blocks):
        # the cache marks classes without target instances (no ranking is possible)
        return empty_figure(f"Class '{name}' has no target instances: no important neurons to compare",
                            height=300)
    return relation_matrices(blocks, pairs, show_nonimportant=not hide_nonimportant,
                             show_source_weights=not hide_source, class_name=name)


# =======================================================================================
# The detail panel
# =======================================================================================
def _thumb(url_for: UrlFor, instance_id: int, size: int = 40, title: str = "") -> html.Img:
    return html.Img(src=url_for(data.thumb_path(instance_id)), title=title, alt=f"instance {instance_id}",
                    className="tv-thumb", style={"width": f"{size}px", "height": f"{size}px",
                                                 "imageRendering": "pixelated", "marginRight": "2px"})


def _featvis(url_for: UrlFor, model: str, layer: str, neuron: int, size: int = 96) -> html.Img:
    return html.Img(src=url_for(data.featvis_path(model, layer, neuron)),
                    alt=f"feature visualization of {model} {layer} #{neuron}", className="tv-featvis",
                    style={"width": f"{size}px", "height": f"{size}px", "imageRendering": "pixelated"})


def _neuron_tag(model: str, number: int, neuron: int) -> html.Span:
    return html.Span(f"L{number} #{neuron}", style={"color": DOMAIN_COLORS[model]}, className="fw-semibold")


def _top_block(url_for: UrlFor, top: dict[str, list[tuple[int, float]]], class_name: str,
               domain_names: dict[str, str]) -> html.Div:
    rows = []
    for domain in ("source", "target"):
        items = top.get(domain) or []
        label = html.Span(domain_names.get(domain, domain), style={"color": DOMAIN_COLORS[domain]},
                          className="small me-1 tv-top-domain")
        if not items:
            rows.append(html.Div([label, html.Span("no instances of this class", className="small text-muted")]))
            continue
        rows.append(html.Div([label] + [_thumb(url_for, i, 40, f"instance {i}: conductance {v:.3g}")
                                        for i, v in items], className="d-flex align-items-center mb-1"))
    return html.Div([
        html.Div(f"No feature visualization in the cache. Instances of class '{class_name}' with the "
                 "highest conductance for this neuron:", className="small text-muted mb-1"),
        *rows,
    ], className="tv-top-instances")


def neuron_panel(d: NeuronDetail, class_name: str, domain_names: dict[str, str],
                 url_for: UrlFor = _identity) -> html.Div:
    """The neuron detail panel (paper Figure 1 C.1)."""
    other = "target" if d.model == "source" else "source"
    rank = (f"importance rank {d.rank}" + (f" of {d.n_neurons}" if d.n_neurons else "") + f" for class '{class_name}'"
            if d.rank else f"not among the important neurons of class '{class_name}'")
    image = (_featvis(url_for, d.model, d.layer, d.neuron) if d.has_featvis
             else _top_block(url_for, d.top, class_name, domain_names))
    sim_rows = []
    for s in d.similar:
        if s["featvis"]:
            img = _featvis(url_for, other, d.layer, s["neuron"], size=36)
        elif s["top_id"] is not None:
            img = _thumb(url_for, s["top_id"], 36, "the class's instance with the highest conductance")
        else:
            img = html.Span()
        bar = html.Div(style={"width": f"{max(0.0, min(1.0, s['similarity'])) * 40:.0f}px", "height": "6px",
                              "background": "#444"}, className="tv-sim-bar",
                       title="similarity: cosine of the two neurons' attributions over the class's target instances")
        rank_note = html.Sup(f" r{s['rank']}", className="text-muted",
                             title=f"importance rank {s['rank']} in the {other} model") if s["rank"] else ""
        sim_rows.append(html.Tr([
            html.Td([_neuron_tag(other, d.number, s["neuron"]), rank_note], className="text-nowrap"),
            html.Td(f"{s['similarity']:.3f}", className="text-end"),
            html.Td(bar, style={"verticalAlign": "middle"}),
            html.Td(img),
        ], className="tv-similar-row"))
    similar = (html.Table([html.Thead(html.Tr([html.Th("neuron"), html.Th("sim."), html.Th(""), html.Th("")])),
                           html.Tbody(sim_rows)], className="table table-sm small mb-0 tv-similar")
               if sim_rows else html.Div("No similarity data for this layer.", className="small text-muted"))
    return html.Div([
        html.Div([html.Span(f"{d.model} model · ", style={"color": DOMAIN_COLORS[d.model]}),
                  _neuron_tag(d.model, d.number, d.neuron), html.Span(f" ({d.layer})", className="text-muted")],
                 className="fw-semibold"),
        html.Div(rank, className="small text-muted mb-1"),
        image,
        html.Div([html.Span("Most similar ", className="tv-card-title"),
                  html.Span(f"{other} neurons", className="tv-card-title", style={"color": DOMAIN_COLORS[other]})],
                 className="mt-2 mb-1"),
        similar,
    ], className="tv-detail tv-detail-neuron", **{"data-kind": "neuron"})


def weight_panel(d: WeightDetail, class_name: str, images: Sequence[Any] = ()) -> html.Div:
    """The weight detail panel (paper Figure 1 C.2): neurons, their images, values and the kernel."""
    color = DOMAIN_COLORS[d.model]
    rows: list[tuple[str, Any]] = [
        ("neurons", html.Span([_neuron_tag(d.model, d.from_number, d.n1), " → ",
                               _neuron_tag(d.model, d.to_number, d.n2)])),
        ("value", "–" if d.value is None else f"{d.value:.4f}"),
        ("important", (f"yes, rank {d.rank}: among the top weights of {d.count} instance(s) of '{class_name}'"
                       if d.important else f"no, not among the important weights of '{class_name}'")),
    ]
    if d.model == "target":
        if d.counterpart is None:
            corr = "undefined (a neuron without attribution)"
        else:
            c1, c2 = d.counterpart
            corr = html.Span([("yes" if d.corresponds else "no") + ": the most similar source neurons ",
                              _neuron_tag("source", d.from_number, c1), " → ", _neuron_tag("source", d.to_number, c2),
                              " are " + ("" if d.counterpart_important else "not ") + "joined by an important source weight"])
        rows.append(("correspondence", corr))
    else:
        rows.append(("correspondence", "n/a: only target weights are matched to the source model"))
    # label above value: the panel is narrow and the values are sentences
    table = html.Div([html.Div([html.Div(k, className="text-muted text-uppercase", style={"fontSize": "0.7rem"}),
                                html.Div(v)], className="mb-1") for k, v in rows], className="small tv-weight-table")
    what = ("kernel" if d.kernel is not None and np.asarray(d.kernel).size > 1 else "weight")
    kernel = kernel_heatmap(d.kernel, f"{what} W[{d.n2}, {d.n1}] of {d.layer_to}", height=200)
    return html.Div([
        html.Div([html.Span(f"{d.model} weight ", style={"color": color}),
                  html.Span(f"L{d.from_number} → L{d.to_number}", className="text-muted")], className="fw-semibold"),
        html.Div([html.Div([_neuron_tag(d.model, num, n), html.Div(img)], className="me-2")
                  for (num, n), img in zip(((d.from_number, d.n1), (d.to_number, d.n2)), images)],
                 className="d-flex mb-1") if images else None,
        table,
        dcc.Graph(id=ly.KERNEL, figure=kernel, config={**GRAPH_CONFIG, "displayModeBar": "hover"},
                  style={"height": "200px"}),
    ], className="tv-detail tv-detail-weight", **{"data-kind": "weight"})


def neuron_image(cache: Cache, model: str, layer: str, n: int, class_index: int, url_for: UrlFor = _identity,
                 size: int = 64) -> Any:
    """The neuron's feature visualization, or (without one) the class's instance it attributes most to."""
    if featvis_exists(cache, model, layer, n):
        return _featvis(url_for, model, layer, n, size=size)
    top = top_instances(cache, model, layer, n, class_index, n=1)
    first = top.get("target") or top.get("source")
    return _thumb(url_for, first[0][0], 48, "the class's instance with the highest conductance") if first else html.Span()


def similarity_panel(cache: Cache, class_index: int, layer: str, number: int, s_neuron: int, t_neuron: int,
                     url_for: UrlFor = _identity) -> html.Div:
    """A clicked similarity cell: the two neurons side by side with their similarity."""
    sim = None
    rel = f"analysis/similarity/{layer}_block.npy"
    block = cache.array(rel)[class_index] if cache.has(rel) else None
    si = np.flatnonzero(class_important(cache, "source", layer, class_index) == s_neuron)
    ti = np.flatnonzero(class_important(cache, "target", layer, class_index) == t_neuron)
    if block is not None and len(si) and len(ti):
        sim = float(block[si[0], ti[0]])
    cols = [html.Div([_neuron_tag(model, number, n), html.Div(neuron_image(cache, model, layer, n, class_index, url_for))],
                     className="me-3") for model, n in (("source", s_neuron), ("target", t_neuron))]
    return html.Div([
        html.Div(f"L{number} ({layer}): similarity {'–' if sim is None else f'{sim:.3f}'}", className="fw-semibold"),
        html.Div(cols, className="d-flex mt-1"),
        html.Div("Click a neuron index for its five most similar neurons.", className="small text-muted mt-1"),
    ], className="tv-detail tv-detail-similarity", **{"data-kind": "similarity"})


def normalise_click(click_data: Any) -> Any:
    """The browser's clickData with array-like ``customdata`` turned back into a list.

    The figure's numeric customdata travels base64-encoded (int16); plotly.js decodes it
    into a typed array, and a typed-array row serialises to JSON as ``{"0": .., "1": ..}``,
    which :func:`parse_click` does not read. Only that shape is rewritten.
    """
    try:
        pts = click_data.get("points") or []
        cd = pts[0].get("customdata")
    except (AttributeError, IndexError, TypeError):
        return click_data
    if isinstance(cd, dict) and cd and all(isinstance(k, str) and k.isdigit() for k in cd):
        first = dict(pts[0], customdata=[cd[k] for k in sorted(cd, key=int)])
        return dict(click_data, points=[first, *pts[1:]])
    return click_data


def detail_panel(cache: Cache, click_data: dict | None, class_index: Any,
                 url_for: UrlFor = _identity) -> html.Div:
    """Decodes a click on the network figure into the matching detail panel."""
    c = valid_class(cache, class_index)
    if c is None:
        return ly.hint()
    nums = layer_numbers(cache)
    names = {str(v): k for k, v in nums.items()}
    click = parse_click(normalise_click(click_data), names)
    if click is None:
        return ly.hint()
    class_name = cache.classes[c]
    try:
        if click["kind"] == "neuron" and click["layer"] in nums and click["model"] in ("source", "target"):
            d = neuron_detail(cache, c, click["model"], click["layer"], int(click["neuron"]))
            return neuron_panel(d, class_name, cache.domains, url_for)
        if click["kind"] == "weight" and click["from"] in nums and click["to"] in nums:
            d = weight_detail(cache, c, click["model"], click["from"], click["to"], click["n1"], click["n2"])
            if click.get("has_correspondence") is not None:
                # the figure's flag comes from the cache's correspondence matrix: it is authoritative
                d.corresponds = bool(click["has_correspondence"])
            images = [neuron_image(cache, click["model"], layer, n, c, url_for, size=48)
                      for layer, n in ((click["from"], click["n1"]), (click["to"], click["n2"]))]
            return weight_panel(d, class_name, images)
        if click["kind"] == "similarity" and click["layer"] in nums:
            return similarity_panel(cache, c, click["layer"], click["layer_number"], click["source_neuron"],
                                    click["target_neuron"], url_for)
    except (IndexError, KeyError, ValueError):
        pass  # a stale click from another class or layer set: fall back to the hint
    except TransferVizError:
        return html.Div("This cache lacks the data for these details.", className="text-muted small")
    return ly.hint()


# =======================================================================================
# Class selector <-> shared store
# =======================================================================================
def sync_class(cache: Cache, triggered: str | None, store_value: Any, dropdown_value: Any) -> tuple[Any, Any]:
    """One callback keeps the dropdown and the shared store equal (circular in one callback,
    which Dash allows): returns ``(store, dropdown)`` updates."""
    if triggered == ly.CLASS:
        c = valid_class(cache, dropdown_value)
        return (c if c is not None and c != valid_class(cache, store_value) else no_update), no_update
    c = valid_class(cache, store_value)
    return no_update, (c if c is not None and c != dropdown_value else no_update)


# =======================================================================================
# Layers <-> URL
# =======================================================================================
def layers_url(cache: Cache, space: StateSpace, triggered: set[str], search: str | None,
               value: Sequence[Any] | None) -> tuple[Any, Any]:
    """``(search, slider value)``: one callback keeps the layer slider and the URL's
    ``layers`` equal. The URL wins when it fired (or on the initial call); a slider move
    writes the URL through :func:`dashboard.urlstate.update_search`."""
    state, _ = parse_state(search, space)
    if not triggered or ids.URL in triggered:
        rng = range_from_layers(cache, state.layers)
        return no_update, (rng if list(value or []) != rng else no_update)
    layers = tuple(layers_from_range(cache, value))
    rng = range_from_layers(cache, layers)
    slider = rng if list(value or []) != rng else no_update  # clamped to MAX_LAYERS
    return (update_search(search, space, layers=layers) if layers != state.layers else no_update), slider


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
        Output(ly.GRAPH, "figure"),
        Input(ids.SELECTED_CLASS, "data"),
        Input(ly.LAYERS, "value"),
        Input(ly.HIDE_NONIMPORTANT, "value"),
        Input(ly.HIDE_SOURCE, "value"),
    )
    def _figure(cls, layer_range, hide_nonimp, hide_source):
        return network_figure(get_cache(app), cls, layer_range, bool(hide_nonimp), bool(hide_source))

    @app.callback(
        Output(ly.DETAIL, "children"),
        Input(ly.GRAPH, "clickData"),
        Input(ids.SELECTED_CLASS, "data"),
    )
    def _detail(click, cls):
        if dash.ctx.triggered_id == ids.SELECTED_CLASS:
            return ly.hint()  # a new class: the old click no longer applies
        return detail_panel(get_cache(app), click, cls, url_for)

    @app.callback(
        Output(ids.SELECTED_CLASS, "data", allow_duplicate=True),
        Output(ly.CLASS, "value"),
        Input(ids.SELECTED_CLASS, "data"),
        Input(ly.CLASS, "value"),
        prevent_initial_call="initial_duplicate",
    )
    def _class(store, dropdown):
        return sync_class(get_cache(app), dash.ctx.triggered_id, store, dropdown)

    @app.callback(
        Output(ids.URL, "search", allow_duplicate=True),
        Output(ly.LAYERS, "value"),
        Input(ids.URL, "search"),
        Input(ly.LAYERS, "value"),
        prevent_initial_call="initial_duplicate",
    )
    def _layers(search, value):
        fired = triggered_components()
        return layers_url(get_cache(app), space, fired, search, value)

