"""Run-time markup of the network relation view: the detail panel a click on the figure fills
(a neuron, a weight or a similarity cell; paper Figure 1 C.1 and C.2) and its hint.

Images are URLs (:mod:`dashboard.routes`), passed through ``url_for`` so that an app under a
path prefix can put it in front; the default leaves them as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from dash import dcc, html

from dashboard.components import DataAttrs, Title, featvis_img, featvis_missing
from dashboard.lookups import Model, featvis_px, layer_tag, layer_title, valid_class
from dashboard.routes import UrlFor, featvis_command, featvis_path, no_prefix, thumb_path
from dashboard.theme import DOMAIN_COLORS, GRAPH_CONFIG
from dashboard.views.network.data import (
    NeuronDetail,
    WeightDetail,
    class_important,
    correspondence_choices,
    correspondence_rows,
    layers_from_range,
    link_line,
    neuron_detail,
    pair_link,
    top_instances,
    weight_detail,
)
from dashboard.views.network.figures import correspondence_strip, kernel_heatmap, normalise_click, parse_click
from dashboard.views.network.similar_grid import similar_grid
from transferviz.cache import Cache
from transferviz.errors import TransferVizError

__all__ = ["DETAIL_HINT", "KERNEL", "click_layers", "correspondence_summary", "correspondence_view", "detail_panel",
           "hint", "neuron_image", "neuron_panel", "no_weights_panel", "similarity_panel", "weight_panel"]

#: Id of the weight panel's kernel graph (made here, at run time; no callback reads it).
KERNEL = "network-kernel"

DETAIL_HINT = ("Click a neuron index for its feature visualization and its five most similar neurons "
               "in the other model; click a weight square for its neurons, values and kernel.")


def hint() -> html.Div:
    """The detail panel before any click (and after a click it cannot use)."""
    return html.Div(DETAIL_HINT, className="text-muted small tv-network-hint")


def _thumb(url_for: UrlFor, instance_id: int, size: int = 40, title: str = "") -> html.Img:
    return html.Img(src=url_for(thumb_path(instance_id)), title=title, alt=f"instance {instance_id}",
                    className="tv-thumb", style={"width": f"{size}px", "height": f"{size}px",
                                                 "imageRendering": "pixelated", "marginRight": "2px"})


def _featvis(url_for: UrlFor, model: str, layer: str, neuron: int, size: int = 96,
             native_px: int | None = None) -> html.Img:
    """A neuron's feature visualization at ``size`` px whatever its pixel size (``native_px``)."""
    return featvis_img(url_for(featvis_path(model, layer, neuron)), size, native_px,
                       alt=f"feature visualization of {model} {layer} #{neuron}")


def _neuron_tag(model: str, number: int, neuron: int, title: str = "") -> html.Span:
    """``L3 #12`` in the model's colour; ``title``: the layer's full module path on hover."""
    extra: Title = {"title": title} if title else {}
    return html.Span(f"L{number} #{neuron}", style={"color": DOMAIN_COLORS[model]}, className="fw-semibold",
                     **extra)


def _top_block(url_for: UrlFor, top: dict[str, list[tuple[int, float]]], class_name: str,
               domain_names: dict[str, str], command: str = "") -> html.Div:
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
        # the build renders the neurons the views pick; any other one is a command away
        html.Div(["Feature visualization not rendered",
                  *((": ", html.Code(command, className="tv-featvis-command user-select-all")) if command else ()),
                  f". Instances of class '{class_name}' with the highest conductance for this neuron:"],
                 className="small text-muted mb-1"),
        *rows,
    ], className="tv-top-instances")


def neuron_panel(d: NeuronDetail, class_name: str, domain_names: dict[str, str],
                 url_for: UrlFor = no_prefix) -> html.Div:
    """The neuron detail panel (paper Figure 1 C.1)."""
    other = "target" if d.model == "source" else "source"
    rank = (f"importance rank {d.rank}" + (f" of {d.n_neurons}" if d.n_neurons else "") + f" for class '{class_name}'"
            if d.rank else f"not among the important neurons of class '{class_name}'")
    image = (_featvis(url_for, d.model, d.layer, d.neuron, native_px=d.featvis_px) if d.has_featvis
             else _top_block(url_for, d.top, class_name, domain_names, d.featvis_command))
    similar = (similar_grid(d.similar, other, d.layer, d.number, d.layer_title, url_for) if d.similar
               else html.Div("No similarity data for this layer.", className="small text-muted"))
    return html.Div([
        # the short tag, the full module path on hover and, cut to the panel's width, after it
        html.Div([html.Span(f"{d.model} model · ", style={"color": DOMAIN_COLORS[d.model]}),
                  _neuron_tag(d.model, d.number, d.neuron, d.layer_title),
                  html.Span(f"({d.layer})", className="text-muted tv-layer-path ms-1", title=d.layer_title or d.layer)],
                 className="fw-semibold"),
        html.Div(rank, className="small text-muted mb-1"),
        image,
        html.Div([html.Span("Most similar ", className="tv-card-title"),
                  html.Span(f"{other} neurons", className="tv-card-title", style={"color": DOMAIN_COLORS[other]})],
                 className="mt-2 mb-1"),
        similar,
    ], className="tv-detail tv-detail-neuron", **DataAttrs({"data-kind": "neuron"}))


def weight_panel(d: WeightDetail, class_name: str, images: Sequence[Any] = ()) -> html.Div:
    """The weight detail panel (paper Figure 1 C.2): neurons, their images, values and the kernel."""
    color = DOMAIN_COLORS[d.model]
    rows: list[tuple[str, Any]] = [
        ("neurons", html.Span([_neuron_tag(d.model, d.from_number, d.n1, d.from_title), " → ",
                               _neuron_tag(d.model, d.to_number, d.n2, d.to_title)])),
        ("value", "–" if d.value is None else f"{d.value:.4f}"),
        ("important", (f"yes, rank {d.rank}: among the top weights of {d.count} instance(s) of '{class_name}'"
                       if d.important else f"no, not among the important weights of '{class_name}'")),
    ]
    if d.model == "target":
        corr: str | html.Span
        if d.counterpart is None:
            corr = "undefined (a neuron without attribution)"
        else:
            c1, c2 = d.counterpart
            corr = html.Span([("yes" if d.corresponds else "no") + ": the matched source neurons ",
                              _neuron_tag("source", d.from_number, c1), " → ", _neuron_tag("source", d.to_number, c2),
                              " are " + ("" if d.counterpart_important else "not ")
                              + "joined by an important source weight"])
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
                  html.Span(f"L{d.from_number} → L{d.to_number}", className="text-muted",
                            title=f"{d.from_title or d.layer_from}\n{d.to_title or d.layer_to}")],
                 className="fw-semibold"),
        html.Div([html.Div([_neuron_tag(d.model, num, n, t), html.Div(img)], className="me-2")
                  for (num, n, t), img in zip(((d.from_number, d.n1, d.from_title), (d.to_number, d.n2, d.to_title)),
                                              images)],
                 className="d-flex mb-1") if images else None,
        table,
        dcc.Graph(id=KERNEL, figure=kernel, config={**GRAPH_CONFIG, "displayModeBar": "hover"},
                  style={"height": "200px"}),
    ], className="tv-detail tv-detail-weight", **DataAttrs({"data-kind": "weight"}))


def neuron_image(cache: Cache, model: Model, layer: str, n: int, class_index: int, url_for: UrlFor = no_prefix,
                 size: int = 64) -> Any:
    """The neuron's feature visualization, or (without one) the class's instance it attributes most to."""
    if int(n) in cache.featvis_neurons(model, layer):
        return _featvis(url_for, model, layer, n, size=size, native_px=featvis_px(cache))
    top = top_instances(cache, model, layer, n, class_index, n=1)
    first = top.get("target") or top.get("source")
    command = featvis_command(cache, layer, n, model)
    if not first:
        return featvis_missing(48, command)
    return _thumb(url_for, first[0][0], 48, "the class's instance with the highest conductance (feature "
                  f"visualization not rendered: {command})")


def similarity_panel(cache: Cache, class_index: int, layer: str, number: int, s_neuron: int, t_neuron: int,
                     url_for: UrlFor = no_prefix) -> html.Div:
    """A clicked similarity cell: the two neurons side by side with their similarity."""
    sim = None
    block = cache.similarity_block(layer, class_index)
    si = np.flatnonzero(class_important(cache, "source", layer, class_index) == s_neuron)
    ti = np.flatnonzero(class_important(cache, "target", layer, class_index) == t_neuron)
    if block is not None and len(si) and len(ti):
        sim = float(block[si[0], ti[0]])
    neurons: tuple[tuple[Model, int], ...] = (("source", s_neuron), ("target", t_neuron))
    title = layer_title(cache, layer)
    cols = [html.Div([_neuron_tag(model, number, n, title),
                      html.Div(neuron_image(cache, model, layer, n, class_index, url_for))], className="me-3")
            for model, n in neurons]
    return html.Div([
        html.Div([html.Span(f"L{number}", title=title), f": similarity {'–' if sim is None else f'{sim:.3f}'}"],
                 className="fw-semibold"),
        html.Div(cols, className="d-flex mt-1"),
        html.Div("Click a neuron index for its five most similar neurons.", className="small text-muted mt-1"),
    ], className="tv-detail tv-detail-similarity", **DataAttrs({"data-kind": "similarity"}))


def no_weights_panel(cache: Cache, layer_from: str, layer_to: str, reason: str) -> html.Div:
    """Why two consecutive layers have no weights (no weight matrix joins them)."""
    return html.Div([
        html.Div([html.Span(layer_tag(cache, layer_from), title=layer_title(cache, layer_from)), " → ",
                  html.Span(layer_tag(cache, layer_to), title=layer_title(cache, layer_to)), ": no weights"],
                 className="fw-semibold"),
        html.Div(link_line(layer_from, layer_to, reason), className="small text-muted"),
    ], className="tv-detail tv-detail-no-weights", **DataAttrs({"data-kind": "no-weights"}))


def click_layers(cache: Cache, click_data: dict | None) -> set[str] | None:
    """The layers a click's detail panel shows (a neuron's or a similarity cell's layer, a weight's
    two layers); None when the click opens no panel."""
    names = {str(v): k for k, v in cache.layer_numbers.items()}
    click = parse_click(normalise_click(click_data), names)
    if click is None:
        return None
    if click["kind"] == "weight":
        return {str(click["from"]), str(click["to"])}
    return {str(click["layer"])}


def detail_panel(cache: Cache, click_data: dict | None, class_index: Any,
                 url_for: UrlFor = no_prefix) -> html.Div:
    """Decodes a click on the network figure into the matching detail panel."""
    c = valid_class(cache, class_index)
    if c is None:
        return hint()
    nums = cache.layer_numbers
    names = {str(v): k for k, v in nums.items()}
    click = parse_click(normalise_click(click_data), names)
    if click is None:
        return hint()
    class_name = cache.classes[c]
    try:
        if click["kind"] == "neuron" and click["layer"] in nums and click["model"] in ("source", "target"):
            d = neuron_detail(cache, c, click["model"], click["layer"], int(click["neuron"]))
            return neuron_panel(d, class_name, cache.domains, url_for)
        if click["kind"] == "weight" and click["from"] in nums and click["to"] in nums:
            linked, reason = pair_link(cache, click["from"], click["to"])
            if not linked:  # a stale click: this pair has no weights
                return no_weights_panel(cache, click["from"], click["to"], reason)
            w = weight_detail(cache, c, click["model"], click["from"], click["to"], click["n1"], click["n2"])
            if click.get("has_correspondence") is not None:
                # the figure's flag comes from the cache's correspondence matrix: it is authoritative
                w.corresponds = bool(click["has_correspondence"])
            images = [neuron_image(cache, click["model"], layer, n, c, url_for, size=48)
                      for layer, n in ((click["from"], click["n1"]), (click["to"], click["n2"]))]
            return weight_panel(w, class_name, images)
        if click["kind"] == "similarity" and click["layer"] in nums:
            return similarity_panel(cache, c, click["layer"], click["layer_number"], click["source_neuron"],
                                    click["target_neuron"], url_for)
    except (IndexError, KeyError, ValueError):
        pass  # a stale click from another class or layer set: fall back to the hint
    except TransferVizError:
        return html.Div("This cache lacks the data for these details.", className="text-muted small")
    return hint()


# =======================================================================================
# Correspondence against chance (issue 12, item 1)
# =======================================================================================
def correspondence_summary(rows: Any, tags: Sequence[str], matching: str, similarity: str,
                           permutations: int) -> str:
    """The line under the matrices: in which drawn pairs the class's correspondence share is distinguishable
    from chance (above the 95th percentile of the permutation null) and where it stands against the
    same-index reference."""
    if rows is None or not len(rows):
        return "No weight correspondence between the drawn layers."
    share, p95 = rows["share"].to_numpy(float), rows["null_p95"].to_numpy(float)
    same = rows["same_index_share"].to_numpy(float)
    how = f"{matching.replace('_', '-')} matching on {similarity} similarity"
    if not np.isfinite(p95).any():
        return (f"Correspondence share ({how}): no permutation null in this cache (built before it was stored); "
                "rebuild to tell it from chance.")
    above = [t for t, s, p in zip(tags, share, p95) if np.isfinite(s) and np.isfinite(p) and s > p]
    chance = [t for t, s, p in zip(tags, share, p95) if np.isfinite(s) and np.isfinite(p) and s <= p]
    parts = [f"Correspondence share ({how}) is above chance (> 95th percentile of {permutations} source-label "
             f"shuffles) in {len(above)} of {len(above) + len(chance)} drawn pairs"
             + (f"; not distinguishable from chance: {', '.join(chance)}" if chance else "") + "."]
    if np.isfinite(same).any():
        ratio = [f"{t} {s:.2f} vs {r:.2f}" for t, s, r in zip(tags, share, same) if np.isfinite(s) and np.isfinite(r)]
        parts.append("Observed vs same-index reference (each neuron kept at its own index): " + ", ".join(ratio)
                     + ".")
    return " ".join(parts)


def correspondence_view(cache: Cache, cls: Any, layer_range: Any) -> tuple[Any, str]:
    """``(strip figure, summary line)`` of the class over the drawn layers."""
    c = valid_class(cache, cls)
    layers = layers_from_range(cache, layer_range)
    rows = correspondence_rows(cache, c if c is not None else -1, layers)
    tags = [f"{layer_tag(cache, a)}→{layer_tag(cache, b)}" for a, b in zip(rows["from_layer"], rows["to_layer"])]
    ch = correspondence_choices(cache)
    return (correspondence_strip(rows, tags, ch["matching"], ch["permutations"]),
            correspondence_summary(rows, tags, ch["matching"], ch["similarity"], ch["permutations"]))
