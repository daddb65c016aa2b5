"""Small cache lookups that several views share: instance details for hovers and lists, lasso
selections, class colours and counts, and the validation of class indices that stores and URLs
hand the callbacks. Pure: a cache and plain values in, plain Python / numpy / pandas out.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import plotly.express as px

from dashboard.highlight import HIGHLIGHT_COLOR
from dashboard.theme import SOURCE_COLOR, TARGET_COLOR, class_palette
from transferviz.cache import Cache

__all__ = ["FIND_MAX_IDS", "MODELS", "PALETTE_SIZE", "Found", "Model", "class_colors", "class_counts",
           "distinct_class_palette", "many_class_palette",
           "featvis_px", "find_instances", "instance_records", "json_number", "layer_tag", "layer_title",
           "selected_ids", "valid_class"]

Model = Literal["source", "target"]
MODELS: tuple[Model, Model] = ("source", "target")


def json_number(x: Any) -> float | None:
    """JSON-safe number: NaN/inf become None (an empty, sortable-last cell)."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def valid_class(cache: Cache, class_index: Any) -> int | None:
    """The class index if it names a class of the cache, else ``None`` (stores and URLs
    hand the callbacks anything: None, strings, stale indices)."""
    try:
        c = int(class_index)
    except (TypeError, ValueError):
        return None
    return c if 0 <= c < len(cache.classes) else None


def layer_tag(cache: Cache, layer: str) -> str:
    """The short label of an analysed layer, the paper's ``L3`` (the name itself for any other module).

    Module paths of real networks (``features.0.block.1.0``, ``layer3.1``) are too long for
    selectors, axes and table cells: every view names a layer by this tag and puts
    :func:`layer_title` (the full path) in its hover."""
    number = cache.layer_numbers.get(layer)
    return f"L{number}" if number else str(layer)


def layer_title(cache: Cache, layer: str) -> str:
    """The hover text of a layer's tag: ``"L3 = features.0.block.1.0 (Conv2d, 64 neurons)"``."""
    detail = cache.memo(("lookups.layer_detail",),
                        lambda: {str(d.get("name")): d for d in cache.layer_info.get("detail", [])})
    d = detail.get(layer) or {}
    extra = [str(d["type"])] if d.get("type") else []
    if d.get("neurons"):
        extra.append(f"{int(d['neurons'])} neurons")
    tag = layer_tag(cache, layer)
    head = f"{tag} = {layer}" if tag != layer else str(layer)
    return head + (f" ({', '.join(extra)})" if extra else "")


_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def featvis_px(cache: Cache) -> int | None:
    """The pixel width of the cache's feature visualizations (one PNG header read, once per cache);
    None without any. The views show them at fixed display sizes and smooth them only when they
    are shrunk (a 224 px image in a 28 px slot), keeping small ones crisp (pixelated)."""
    return cache.memo(("lookups.featvis_px",), lambda: _featvis_px(cache))


def _featvis_px(cache: Cache) -> int | None:
    for model in MODELS:
        for layer in cache.layers:
            neurons = cache.featvis_neurons(model, layer)
            png = cache.featvis(model, layer, min(neurons)) if neurons else None
            if png and png[:8] == _PNG_MAGIC and len(png) >= 24:
                return int.from_bytes(png[16:20], "big")
    return None


def class_counts(cache: Cache) -> pd.DataFrame:
    """Per class: ``class_index``, ``name``, ``source`` and ``target`` instance counts (all splits)."""
    df = cache.instances
    n = len(cache.classes)
    out = pd.DataFrame({"class_index": np.arange(n), "name": cache.classes})
    for dom in ("source", "target"):
        labels = df.loc[df["domain"] == dom, "label"].to_numpy()
        out[dom] = np.bincount(labels, minlength=n)[:n] if len(labels) else 0
    return out


def class_colors(cache: Cache) -> dict[int, str]:
    """Class index -> colour over *all* classes, so a class keeps its colour whatever the selection and
    in every view: up to 16 classes the theme's colours (:func:`distinct_class_palette`), up to
    :data:`PALETTE_SIZE` :func:`many_class_palette`, beyond that the palette again (the instance view
    tells those apart by marker shape)."""
    n = len(cache.classes)
    if n <= 16:
        return dict(enumerate(distinct_class_palette(n)))
    palette = many_class_palette()
    return {i: palette[i % PALETTE_SIZE] for i in range(n)}


#: How many of the theme's class colours are taken in order before the rest are picked for contrast.
_KEEP_IN_ORDER = 8


def distinct_class_palette(n: int) -> list[str]:
    """``n`` (<= 16) colours of the theme's class palette, none two alike.

    The theme lists its 16 colours so that the first eight are Tableau's (without the
    domain red and blue); taken in order, the 9th and 10th (teal, dark orange) would sit
    next to green and orange, and ten digit classes would show two pairs of near twins.
    So the first eight are kept and each further colour is the remaining one farthest (in
    CIELAB) from all chosen so far. The greedy order does not depend on ``n``: it is
    computed once and cut.
    """
    return list(_DISTINCT_ORDER[:max(n, 0)])


def _distinct_order() -> tuple[str, ...]:
    pool = class_palette(16)
    lab = {c: _lab(c) for c in pool}
    chosen = pool[:_KEEP_IN_ORDER]
    while len(chosen) < len(pool):
        rest = [c for c in pool if c not in chosen]
        chosen.append(max(rest, key=lambda c: min(float(np.linalg.norm(lab[c] - lab[k])) for k in chosen)))
    return tuple(chosen)


def _lab(hex_color: str) -> np.ndarray:
    """CIELAB of an ``#rrggbb`` colour (D65), for perceptual colour distances."""
    rgb = np.array([int(hex_color[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ lin
    xyz = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


_DISTINCT_ORDER: tuple[str, ...] = _distinct_order()  # computed once, at import

#: Distinct class colours before shapes take over (the instance view; Office-31 has 31 classes).
PALETTE_SIZE = 31
# plotly's qualitative sets, the pool the palette is chosen from
_QUALITATIVE = ("Plotly", "D3", "G10", "T10", "Alphabet", "Dark24", "Light24", "Set1", "Set2", "Set3", "Pastel1",
                "Dark2", "Bold", "Safe", "Vivid", "Prism", "Antique")
#: A class colour this close (CIELAB distance) to the source red or target blue would read as a domain
#: (or, to the find box's ring colour, hide the ring).
_MIN_DOMAIN_DISTANCE = 30.0
#: Lightness bounds: paler colours vanish on the white map, darker ones merge with the mispredicted border.
_LIGHTNESS = (30.0, 80.0)


def _hex(color: str) -> str:
    if color.startswith("rgb"):
        r, g, b = (int(float(v)) for v in color[color.index("(") + 1:-1].split(",")[:3])
        return f"#{r:02x}{g:02x}{b:02x}"
    return color.lower()


@functools.cache
def many_class_palette() -> tuple[str, ...]:
    """:data:`PALETTE_SIZE` class colours, as far apart as plotly's qualitative sets allow.

    Glasbey-like: it starts from the first eight colours of the dashboard's own class palette
    (what a run of up to 16 classes shows in every view) and adds, one at a time, the colour of
    plotly's qualitative sets farthest in CIELAB from every colour chosen so far, among those
    far enough from the two domain colours and neither too pale nor too dark for the map. The
    greedy order does not depend on the class count, so a class keeps its colour in runs of
    any size above 16.
    """
    pool: list[str] = []
    for name in _QUALITATIVE:
        for c in getattr(px.colors.qualitative, name):
            h = _hex(c)
            if h not in pool:
                pool.append(h)
    lab = {c: _lab(c) for c in pool}
    domains = [_lab(SOURCE_COLOR), _lab(TARGET_COLOR), _lab(HIGHLIGHT_COLOR)]
    usable = [c for c in pool if min(float(np.linalg.norm(lab[c] - d)) for d in domains) >= _MIN_DOMAIN_DISTANCE
              and _LIGHTNESS[0] <= lab[c][0] <= _LIGHTNESS[1]]
    chosen = [_hex(c) for c in distinct_class_palette(8)]
    for c in chosen:
        lab.setdefault(c, _lab(c))
    while len(chosen) < PALETTE_SIZE:
        rest = [c for c in usable if c not in chosen]
        chosen.append(max(rest, key=lambda c: min(float(np.linalg.norm(lab[c] - lab[k])) for k in chosen)))
    return tuple(chosen)


def instance_records(cache: Cache, ids: Iterable[int]) -> list[dict[str, Any]]:
    """Hover and list details of instances: id, domain (+ display name), split, true label and
    both models' predictions and confidences. Unknown ids are skipped; input order is kept."""
    df = cache.instances
    id_col = df["id"].to_numpy()
    wanted = [int(i) for i in ids]
    # instance ids are row numbers by construction; fall back to a search if a cache ever differs
    if len(id_col) > 0 and id_col[0] == 0 and id_col[-1] == len(id_col) - 1:
        found = [(i, i) for i in wanted if 0 <= i < len(df)]
    else:
        first = {int(v): pos for pos, v in reversed(list(enumerate(id_col)))}
        found = [(i, first[i]) for i in wanted if i in first]
    if not found:
        return []
    # one positional take and one array per column: a per-row ``iloc`` costs ~65 us, which a
    # lasso over thousands of points would pay thousands of times
    sub = df.iloc[[pos for _, pos in found]]
    cols = {c: sub[c].to_numpy() for c in ("domain", "split", "label", "target_pred", "source_pred", "target_conf")}
    names = cache.classes
    domains = cache.domains

    def name(k: int) -> str:
        return names[k] if 0 <= k < len(names) else str(k)

    out = []
    for j, (i, _) in enumerate(found):
        dom = str(cols["domain"][j])
        label, t_pred, s_pred = int(cols["label"][j]), int(cols["target_pred"][j]), int(cols["source_pred"][j])
        out.append({
            "id": i,
            "domain": dom,
            "domain_name": domains.get(dom, dom),
            "split": str(cols["split"][j]),
            "label": label,
            "label_name": name(label),
            "target_pred": t_pred,
            "target_pred_name": name(t_pred),
            "target_conf": json_number(cols["target_conf"][j]),
            "source_pred": s_pred,
            "source_pred_name": name(s_pred),
            "correct": t_pred == label,
        })
    return out


def selected_ids(selected_data: dict | None) -> list[int]:
    """Instance ids of a lasso/box selection (``customdata`` of the chosen points), first-seen order."""
    if not selected_data:
        return []
    seen: dict[int, None] = {}
    for p in selected_data.get("points") or []:
        cd = p.get("customdata")
        if isinstance(cd, list):
            cd = cd[0] if cd else None
        if cd is None:
            continue
        try:
            seen.setdefault(int(cd), None)
        except (TypeError, ValueError):
            continue
    return list(seen)


@dataclass(frozen=True)
class Found:
    """What the page's find box matched: the instance to focus (an id search), the ids every map rings,
    and the line shown under the box."""

    focus: int | None
    ids: list[int] | None
    message: str


#: Found ids beyond this are not ringed (a class of a 100k-instance cache): the maps would redraw
#: megabytes of rings, and a ring per point says nothing.
FIND_MAX_IDS = 5000


def find_instances(cache: Cache, text: Any) -> Found:
    """Parses the find box: an instance id (``12`` or ``#12``) focuses and rings that instance; a
    class name (any case; ``class:NAME`` where a class is named like a number, as the digits are)
    rings that class's instances in every map; anything else says what the box takes."""
    query = str(text or "").strip()
    if not query:
        return Found(None, None, "")
    n = len(cache.instances)
    names = {str(name).casefold(): k for k, name in enumerate(cache.classes)}
    prefix, sep, rest = query.partition(":")
    as_class = bool(sep) and prefix.strip().casefold() in ("class", "label")
    token = rest.strip() if as_class else query.lstrip("#").strip()
    if not as_class and token.isdigit():
        i = int(token)
        if i >= n:
            return Found(None, None, f"No instance #{i}: ids run 0-{n - 1}.")
        rec = instance_records(cache, [i])[0]
        also = f" (class {token!r}: type class:{token})" if token.casefold() in names else ""
        return Found(i, [i], f"#{i}: {rec['label_name']}, {rec['domain_name']} ({rec['domain']}){also}")
    k = names.get(token.casefold())
    if k is None:
        close = [name for name in cache.classes if token.casefold() in str(name).casefold()][:3]
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return Found(None, None, f"No instance id or class named {token[:40]!r}: type an id (0-{n - 1}) "
                                 f"or a class name.{hint}")
    df = cache.instances
    rows = df[df["label"].to_numpy() == k]
    counts = rows["domain"].value_counts()
    ids = rows["id"].to_numpy(dtype=np.int64)
    shown = ids[:FIND_MAX_IDS].tolist()
    more = f" (the first {FIND_MAX_IDS} ringed)" if len(ids) > FIND_MAX_IDS else ""
    return Found(None, shown, f"class {cache.classes[k]!r}: {counts.get('source', 0)} source and "
                              f"{counts.get('target', 0)} target instances ringed{more}")
