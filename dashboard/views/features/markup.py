"""Run-time markup of the feature view: the ranking list (its grid rows, their tiny conductance
histograms, which rows are checked, the status line) and the biplot's thumbnail tooltip.

Images are URLs (:mod:`dashboard.routes`), passed through ``url_for`` so that an app under a
path prefix can put it in front; the default leaves them as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from dash import html
from numpy.typing import ArrayLike

from dashboard.components import DataAttrs
from dashboard.lookups import Model, instance_records, layer_title, valid_class
from dashboard.routes import UrlFor, featvis_command, featvis_path, no_prefix, thumb_path
from dashboard.theme import DOMAIN_COLORS, SOURCE_COLOR, TARGET_COLOR
from dashboard.views.features.data import (
    Discriminability,
    baseline_note,
    baseline_warning,
    classifier_note,
    classifier_warning,
    conductance_by_domain,
    discriminability,
    empty_message,
    neuron_key,
    ranking_direction,
    ranking_table,
    stability_note,
    valid_model,
)
from dashboard.views.features.figures import hovered_instance, ranking_rows
from dashboard.views.features.ranking_grid import hist_path, stability_bar
from transferviz.analysis.discriminability import STABLE, TOP_STABLE
from transferviz.cache import Cache

__all__ = ["COL_LABEL_PX", "MAX_ROWS", "TOOLTIP_FLIP_PX", "TOP_CHECKED", "checked_neurons", "default_checked",
           "format_u", "grid_row", "instance_tooltip", "label_px", "listed_keys", "listed_neurons", "listed_rows",
           "mirrored_histogram_svg", "more_label", "ranking", "ranking_histograms", "row_histograms",
           "stability_cell"]

#: Rows checked when a ranking list is (re)built, as in the paper.
TOP_CHECKED = 5
#: Rows of one page of the ranking list (:func:`listed_rows`): the list opens with the first page in its
#: order and every "show more" adds another. An Office-31-shaped run ranks ~938 neurons a class; the
#: browser needs ~25 s to build 500 such rows (~1 s for 60, growing faster than the rows), so a page
#: is kept small and each feature visualization loads only when its page is shown.
MAX_ROWS = 20
#: Narrowest width in pixels of the ranking grid's label column (``L3 #12``; wider for long labels:
#: :func:`label_px`).
COL_LABEL_PX = 60
#: Points further right than this (pixels in the graph) get their tooltip on the left, so it
#: never runs off the page whichever column the view sits in.
TOOLTIP_FLIP_PX = 200


# =======================================================================================
# Ranking list
# =======================================================================================
def mirrored_histogram_svg(src: ArrayLike, tgt: ArrayLike, bins: int = 20, *, width: int = 150,
                           height: int = 40, colors: tuple[str, str] | None = None) -> str:
    """A ranking-row mirrored histogram as a tiny SVG string (source bars up, target down).

    Same encoding as :func:`dashboard.views.features.figures.mirrored_histogram` (shared bins over
    both domains, each domain normalised to its own instance count, red above and blue below
    a thin axis) but as an image: a ranking list holds one per important neuron (38+ rows),
    and a Plotly figure each would cost ~25 ms of server time and one plot instance in the
    browser per row, where this costs a few hundred microseconds and one ``<img>``.
    """
    cs_color, ct_color = colors or (SOURCE_COLOR, TARGET_COLOR)
    s = np.asarray(src, dtype=float).reshape(-1)
    t = np.asarray(tgt, dtype=float).reshape(-1)
    s, t = s[np.isfinite(s)], t[np.isfinite(t)]
    mid = height / 2
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" preserveAspectRatio="none">']  # stretches with its <img>
    if len(s) or len(t):
        both = np.concatenate([s, t])
        lo, hi = float(both.min()), float(both.max())
        if hi - lo < 1e-12:
            lo, hi = lo - 0.5, hi + 0.5
        # equal bins by arithmetic (np.histogram's generality costs more than the drawing)
        scale = bins / (hi - lo)
        ys = np.bincount(np.clip(((s - lo) * scale).astype(np.int64), 0, bins - 1), minlength=bins) / max(len(s), 1)
        yt = np.bincount(np.clip(((t - lo) * scale).astype(np.int64), 0, bins - 1), minlength=bins) / max(len(t), 1)
        m = float(max(ys.max(initial=0), yt.max(initial=0))) or 1.0
        bw = width / bins
        for j in range(bins):
            x = j * bw + bw * 0.04
            w = bw * 0.92
            if ys[j] > 0:
                h = ys[j] / m * (mid - 1)
                parts.append(f'<rect x="{x:.2f}" y="{mid - h:.2f}" width="{w:.2f}" height="{h:.2f}" '
                             f'fill="{cs_color}"/>')
            if yt[j] > 0:
                h = yt[j] / m * (mid - 1)
                parts.append(f'<rect x="{x:.2f}" y="{mid:.2f}" width="{w:.2f}" height="{h:.2f}" fill="{ct_color}"/>')
    parts.append(f'<line x1="0" y1="{mid}" x2="{width}" y2="{mid}" stroke="#555555" stroke-width="0.8"/>')
    parts.append("</svg>")
    return "".join(parts)


def ranking_histograms(cache: Cache, model: Model, class_index: int, width: int = 160,
                       height: int = 30) -> dict[tuple[str, int], str]:
    """``(layer, neuron) -> SVG`` mirrored conductance histogram of every ranked neuron.

    Memoized per build, model and class: the list is rebuilt on every order switch and
    class visit, the histograms never change. Empty when the class has no ranking.
    """
    d = discriminability(cache, model, class_index)
    if not d.ok:
        return {}
    c = int(class_index)
    return cache.memo(("features.ranking_histograms", model, c, width, height),
                      lambda: _ranking_histograms(cache, model, c, d.neurons, width, height))


def _ranking_histograms(cache: Cache, model: Model, class_index: int, neurons: pd.DataFrame, width: int,
                        height: int) -> dict[tuple[str, int], str]:
    src, tgt = conductance_by_domain(cache, model, class_index, neurons)
    return {(str(layer), int(k)): mirrored_histogram_svg(src[i], tgt[i], width=width, height=height)
            for i, (layer, k) in enumerate(zip(neurons["layer"], neurons["neuron"]))}


def row_histograms(cache: Cache, model: Model, class_index: int, keys: Sequence[tuple[str, int]], width: int = 160,
                   height: int = 30) -> dict[tuple[str, int], str]:
    """``(layer, neuron) -> SVG`` for the ``keys`` a page of the list shows, computed on first sight and kept
    per build, model and class (a model or order switch on 938 neurons draws a page, not all of them)."""
    d = discriminability(cache, model, class_index)
    if not d.ok:
        return {}
    c = int(class_index)
    known: dict[tuple[str, int], str] = cache.memo(("features.row_histograms", model, c, width, height), dict)
    missing = [k for k in dict.fromkeys((str(a), int(b)) for a, b in keys) if k not in known]
    if missing:
        frame = pd.DataFrame({"layer": [k[0] for k in missing], "neuron": [k[1] for k in missing]})
        src, tgt = conductance_by_domain(cache, model, c, frame)
        for i, k in enumerate(missing):
            known[k] = mirrored_histogram_svg(src[i], tgt[i], width=width, height=height)
    return {k: known[k] for k in ((str(a), int(b)) for a, b in keys) if k in known}


def _ordered_rows(cache: Cache, d: Discriminability, model: Model, class_index: int,
                  order: Any) -> list[dict[str, Any]]:
    """The class's ranking rows in ``order`` (no histograms), memoized per build, model, class and order:
    a request asks for them several times (default checks, listed rows, the list) and a switch back
    finds them ready. Read-only."""
    direction = ranking_direction(order)
    return cache.memo(("features.rows", model, int(class_index), direction),
                      lambda: ranking_rows(ranking_table(d), order=direction, top_checked=TOP_CHECKED))


def default_checked(cache: Cache, class_index: Any, model: Any, order: Any) -> list[str]:
    """The top five of the ranking list in ``order`` (what ``neurons=`` empty means)."""
    c = valid_class(cache, class_index)
    if c is None:
        return []
    d = discriminability(cache, valid_model(model), c)
    if not d.ok:
        return []
    rows = _ordered_rows(cache, d, valid_model(model), c, order)
    return [neuron_key(r["layer"], r["neuron"]) for r in rows if r["checked"]]


def checked_neurons(cache: Cache, class_index: int, model: Any, order: Any, wanted: Sequence[str]) -> list[str]:
    """The neurons of ``wanted`` (``"layer:index"``; e.g. from the URL) that the class's ranking
    list holds, in their order; none of them: the top five of ``order``."""
    d = discriminability(cache, valid_model(model), class_index)
    keys = {neuron_key(layer, n) for layer, n in zip(d.neurons["layer"], d.neurons["neuron"])} if d.ok else set()
    return [k for k in wanted if k in keys] or default_checked(cache, class_index, model, order)


def listed_rows(rows: list[dict[str, Any]], checked: Sequence[str], shown: int | None = None) -> list[dict[str, Any]]:
    """The rows the list shows: the first ``shown`` (default ``MAX_ROWS``, one page) in its order, and any
    checked neuron below them (a link may check one), in order."""
    limit = MAX_ROWS if shown is None else max(int(shown), 0)
    keep = set(checked)
    return [r for i, r in enumerate(rows) if i < limit or neuron_key(r["layer"], r["neuron"]) in keep]


def listed_keys(cache: Cache, class_index: int, model: Any, order: Any, checked: Sequence[str],
                shown: int | None = None) -> list[str]:
    """The neurons (``"layer:index"``) the ranking list shows in ``order`` with ``checked`` checked, in
    list order."""
    d = discriminability(cache, valid_model(model), class_index)
    if not d.ok:
        return []
    rows = _ordered_rows(cache, d, valid_model(model), class_index, order)
    return [neuron_key(r["layer"], r["neuron"]) for r in listed_rows(rows, checked, shown)]


def listed_neurons(cache: Cache, class_index: int, model: Any, order: Any, checked: Sequence[str],
                   shown: int | None = None) -> set[str]:
    """The neurons (``"layer:index"``) the ranking list shows in ``order`` with ``checked`` checked."""
    return set(listed_keys(cache, class_index, model, order, checked, shown))


def more_label(shown: int, total: int) -> str:
    """The "show more" button's text, or "" when every row is shown (the button hides)."""
    if shown >= total:
        return ""
    return f"show {min(MAX_ROWS, total - shown)} more ({shown} of {total} listed)"


def format_u(u: float) -> str:
    """A discriminability value with three significant figures, signed: ``+0.0312``, ``-3.12e-05``.

    A regularised classifier's weights are small (the benchmark's reach ~0.003): a fixed ``+.3f`` printed
    a column of ``±0.000``. Zero is ``0``; a nonzero value never reads as zero.
    """
    v = float(u)
    if not np.isfinite(v):
        return "n/a"
    if v == 0:
        return "0"
    return f"{v:+#.3g}" if 1e-3 <= abs(v) < 1e4 else f"{v:+.2e}"  # "#": -0.180, not -0.18


def label_px(cache: Cache) -> int:
    """The width in pixels of the grid's label column: 64, or wider where the longest label of the cache
    (``L16 #2047``: sixteen layers, 2048 neurons) would not fit in it (~7.5 px a character of the bold
    0.8rem font, and the cell's padding)."""
    widest = max(cache.layer_sizes.values(), default=1)
    longest = len(f"L{len(cache.layers)} #{max(widest - 1, 0)}")
    return max(COL_LABEL_PX, round(7.5 * longest) + 6)


def stability_cell(stability: float | None, n_bootstrap: int = 0) -> tuple[str, str, bool]:
    """The ranking row's bootstrap-stability cell ``(bar, title, unstable)``: one block character as high as
    the share of resamples in which the neuron is among the top ``TOP_STABLE`` by ``|u|`` with the same sign
    (the share on hover), greyed below ``STABLE``; "–" without a value."""
    if stability is None or not np.isfinite(stability):
        return "–", "no bootstrap stability for this neuron", False
    stable = stability >= STABLE
    how = f" of {n_bootstrap}" if n_bootstrap else ""
    return stability_bar(stability), (
        f"bootstrap stability {stability:.0%}: among the top {TOP_STABLE} by |u| with the same sign in "
        f"{stability:.0%}{how} resamples of the instances ({'stable' if stable else f'unstable: < {STABLE:.0%}'})"
    ), not stable


def _md_title(text: str) -> str:
    """``text`` as a markdown image title (inside double quotes: no quotes or brackets that end it)."""
    return text.replace('"', "'").replace(")", "]").replace("(", "[")


def grid_row(row: dict, model: str, class_index: int, url_for: UrlFor, *, title: str | None = None,
             image: bool | None = None, featvis_cmd: str = "", with_stability: bool = False,
             n_bootstrap: int = 0) -> dict[str, Any]:
    """One row of the ranking grid (:mod:`dashboard.views.features.ranking_grid`). The label is the short
    ``L3 #12``; ``title`` (default: the module path) names the layer in full on hover. ``image``: None, no
    feature-visualization column in this list; True, the neuron's visualization; False, not rendered (the
    route's placeholder, ``featvis_cmd`` on hover). The histogram is an image of its own route."""
    u = float(row["discriminability"])
    layer, n = str(row["layer"]), int(row["neuron"])
    bar, bar_title, unstable = stability_cell(row.get("stability"), n_bootstrap) if with_stability else ("", "", False)
    picture = ""
    if image is not None:
        hover = "feature visualization" if image else f"not rendered: {featvis_cmd}"
        picture = f'![feature visualization]({url_for(featvis_path(model, layer, n))} "{_md_title(hover)}")'
    hist_title = ("conductance over the class's source (red, above) and target (blue, below) instances, "
                  "each normalised to its domain")
    return {
        "value": neuron_key(layer, n), "model": model, "label": row["label"],
        "title": f"{title or layer} · neuron {n}",
        "u_text": format_u(u), "u_title": f"discriminability u = {u:+.6g} (sign: towards the target domain when "
                                          "positive)",
        "stability": bar, "stability_title": bar_title, "unstable": unstable, "image": picture,
        "hist": f'![conductance histogram of {row["label"]}]({url_for(hist_path(model, class_index, layer, n))} '
                f'"{hist_title}")',
    }


def ranking(cache: Cache, class_index: Any, model: Any, order: Any, checked: Sequence[str] | None = None,
            url_for: UrlFor = no_prefix, shown: int | None = None) -> tuple[list[dict], list[str], Any]:
    """``(rows, value, status)`` of the ranking list: the grid's row data (:func:`grid_row`, ``"value"`` the
    neuron's ``"layer:index"`` key and row id), the checked keys and the status line.

    ``checked`` (``"layer:index"``; e.g. from the URL) overrides the default top five where
    it names neurons of this list; ``None`` or nothing valid -> the top five of the order.
    ``shown``: rows listed in order (default one page, ``MAX_ROWS``); checked rows below them are
    listed too. Only the listed rows are sent (their pictures load by URL as the grid shows them).
    """
    c = valid_class(cache, class_index)
    m = valid_model(model)
    if c is None:
        return [], [], html.Div(empty_message(cache, None, None), className="text-muted")
    d = discriminability(cache, m, c)
    if not d.ok:
        return [], [], html.Div(empty_message(cache, c, d), className="alert alert-secondary py-1 px-2 mb-1",
                                **DataAttrs({"data-empty": "true"}))
    rows = _ordered_rows(cache, d, valid_model(model), c, order)
    value = checked_neurons(cache, c, m, order, checked or ())
    listed = listed_rows(rows, value, shown)
    # reserve the image column only when the cache has feature visualizations for this list
    with_images = any(int(r["neuron"]) in cache.featvis_neurons(m, r["layer"]) for r in rows)
    with_stability = d.n_bootstrap > 0
    options = []
    for r in listed:
        rendered = int(r["neuron"]) in cache.featvis_neurons(m, r["layer"]) if with_images else None
        cmd = featvis_command(cache, r["layer"], r["neuron"], m) if rendered is False else ""
        options.append(grid_row(r, m, c, url_for, title=layer_title(cache, r["layer"]), image=rendered,
                                featvis_cmd=cmd, with_stability=with_stability, n_bootstrap=d.n_bootstrap))
    return options, value, _status(cache, d, m, c, order, len(listed), len(rows))


def _status(cache: Cache, d: Discriminability, m: Model, c: int, order: Any, n_listed: int,
            n_rows: int) -> html.Div:
    """The line above the list (model, counts, class, the classifier beside its null) and, when the
    classifier's accuracy is no finding, a one-line warning under it."""
    dom = cache.domains
    method = d.method or "a linear SVM without a chosen penalty: a cache built before issue 16, rebuild it"
    listed = (f" (the {n_listed} {'most' if ranking_direction(order) == 'descending' else 'least'} "
              "discriminative listed)" if n_listed < n_rows else "")
    parts: list[Any] = [
        html.Span(f"{m} model", style={"color": DOMAIN_COLORS[m]}, className="fw-semibold"),
        f" · {n_rows} important neurons{listed} · class '{cache.classes[c]}': ",
        html.Span(f"{d.n_source} {dom.get('source', 'source')}", className="tv-source"), " / ",
        html.Span(f"{d.n_target} {dom.get('target', 'target')}", className="tv-target"),
        " instances · domain classifier " + classifier_note(d),
    ]
    if baseline_note(d):  # the trivial-feature reference, beside the classifier's accuracy
        parts += [" · ", html.Span(baseline_note(d), className="tv-baseline",
                                   title="the same cross-validated domain classifier on per-image colour and "
                                         "intensity statistics (mean and std per channel, saturation), no neurons")]
    if stability_note(d):
        flips = (f"; {d.sign_flip_share:.0%} of the signs of u flip over the resamples"
                 if d.sign_flip_share is not None else "")
        parts += [" · ", html.Span(stability_note(d), className="tv-stability-note",
                                   title=f"the top {d.n_top} neurons by |u| whose bootstrap stability over "
                                         f"{d.n_bootstrap} resamples is >= {STABLE:.0%}, and the same count with "
                                         f"the domain labels shuffled (noise keeps ~2 of 5 by chance){flips}")]
    line = html.Div(parts, className="text-muted", title=f"Domain classifier: {method}.")
    # one line each, cut with an ellipsis in a narrow card; the whole of it (and the method) on hover
    warnings = [html.Div(["⚠ ", text], title=f"{text}\nClassifier: {method}.",
                         className="tv-features-warning text-warning-emphasis text-truncate")
                for text in (classifier_warning(d),) if text is not None]
    colour = baseline_warning(d)
    if colour is not None:
        warnings.append(html.Div(["⚠ ", colour], title=f"{colour} (the domain classifier on simple image statistics "
                                                      f"alone reaches {d.baseline_accuracy:.0%} accuracy)",
                                 className="tv-baseline-warning text-warning-emphasis text-truncate"))
    if not warnings:
        return line
    return html.Div([line, *warnings])


# =======================================================================================
# Tooltip
# =======================================================================================
def instance_tooltip(cache: Cache, hover_data: dict | None, class_index: Any = None, model: Any = None,
                     url_for: UrlFor = no_prefix) -> tuple[Any, str, html.Div] | None:
    """``(bbox, direction, children)`` of the biplot's thumbnail tooltip for the hovered
    instance; ``None`` when the mouse is over no instance (an axis label, nothing)."""
    i = hovered_instance(cache, hover_data, class_index, model)
    if i is None or hover_data is None:  # an instance implies hover data: spelled out for the type checker
        return None
    rec = instance_records(cache, [i])
    if not rec:
        return None
    p = hover_data["points"][0]
    bbox = p.get("bbox") or {}
    direction = "left" if float(bbox.get("x0", 0) or 0) > TOOLTIP_FLIP_PX else "right"
    r = rec[0]
    children = html.Div([
        html.Img(src=url_for(thumb_path(i)), alt=f"instance {i}",
                 style={"width": "64px", "height": "64px", "imageRendering": "pixelated", "display": "block"}),
        html.Div([html.Span(r["domain_name"], style={"color": DOMAIN_COLORS.get(r["domain"], "#333")}),
                  f" #{i}"], className="small fw-semibold"),
        html.Div(f"label {r['label_name']} · target model: {r['target_pred_name']}", className="small"),
        *([html.Div(f"u {p['x']:.2f} · g {p['y']:.2f}", className="small text-muted")]
          if isinstance(p.get("x"), (int, float)) and isinstance(p.get("y"), (int, float)) else []),
    ], className="tv-tooltip")
    return p.get("bbox"), direction, children
