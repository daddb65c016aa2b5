"""The dashboard's shareable state and its URL query string: parse, validate, serialise.

Every view's state that a link should reproduce lives in the query string::

    ?class=3&classes=3,8&layers=features.0,features.3,features.6&model=target&order=most
     &neurons=features.3:12,classifier.1:4

=========  ===========================================================  =========================
key        meaning                                                      owner
=========  ===========================================================  =========================
class      the class selected across views (a class *name*)             statistics table / state
classes    classes shown in the instance view (names, ``,``-joined)     instance view
layers     consecutive analysed layers of the network relation view     network view
           (at most ``MAX_LAYERS``; a link naming more keeps the first)
model      ``source`` or ``target`` (feature view's model switch)       feature view
order      ``most`` or ``least`` discriminative first (feature view)    feature view
neurons    checked neurons ``layer:index`` (empty = the top five)       feature view
tab        the open tab (``analysis`` when absent)                      page
focus      the instance under inspection (an id; absent: none)          page (image query, maps)
shown      neurons a layer the network view draws (a count or ``all``;  network view
           absent: the top ``DEFAULT_SHOWN`` by the class's ranking)
scale      similarity colours: ``absolute`` (absent), ``minmax`` or     network view
           ``quantile`` (relative to each matrix)
hide       network view parts hidden: ``nonimportant``, ``source``      network view
=========  ===========================================================  =========================

A link never produces an error page: an unknown key, an unknown class or layer, an
out-of-range neuron index or a malformed value falls back to that key's default and
adds a human-readable notice (shown in ``layouts.ids.NOTICE``).

Everything here is pure: the cache is only read to learn the valid values
(:class:`StateSpace`), so the functions are tested without Dash or a browser.
Names (not indices) are written for classes, so a link stays readable and survives a
rebuild that keeps the class list; an integer is accepted as a fallback for ``class``
and ``classes`` when it is not itself a class name.

How views use it: ``callbacks/page.py`` owns the URL (it shows the notices and keeps
``SELECTED_CLASS``, the confusion table and the instance checklist in step). A view that
records its own key writes ``Output(URL, "search", allow_duplicate=True)`` with
:func:`update_search`, which keeps every other key, and returns ``no_update`` for the URL
whenever nothing changed (above all when the URL itself fired it) so two callbacks never
bounce the URL between them. Reading a key: ``parse_state(search, space)[0].layers``;
the cache's :class:`StateSpace` comes from :func:`space_of` (built once per cache).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal, Sequence
from urllib.parse import quote, unquote_plus

import numpy as np

from transferviz.cache import Cache

__all__ = [
    "State",
    "StateSpace",
    "KEYS",
    "MAX_LAYERS",
    "default_state",
    "space_of",
    "parse_state",
    "to_search",
    "update_search",
    "with_changes",
]

Model = Literal["source", "target"]
Order = Literal["most", "least"]

#: The query-string keys, in the order they are written.
KEYS: tuple[str, ...] = ("class", "classes", "layers", "model", "order", "neurons", "tab", "focus",
                         "shown", "scale", "hide")
MODELS: tuple[str, ...] = ("source", "target")
ORDERS: tuple[str, ...] = ("most", "least")
#: The page's tab values (``layouts.ids.TAB_*``; a test checks that they match), the first the default.
TABS: tuple[str, ...] = ("analysis", "diagnosis", "timeline", "change", "preview")
#: How many consecutive layers the network relation view shows by default.
DEFAULT_LAYER_COUNT = 3
#: At most this many consecutive layers in the network relation view (and so in ``layers``): a
#: link naming more keeps the first ones, with a notice.
MAX_LAYERS = 4
#: The network view's "neurons shown": the top this many important neurons of each layer by the
#: class's ranking (``None``: all); a link may ask for any count from 1 to ``MAX_SHOWN`` or ``all``.
DEFAULT_SHOWN = 32
SHOWN_CHOICES: tuple[int | None, ...] = (8, 16, 32, 64, 128, 256, None)
MAX_SHOWN = 4096
#: The network view's similarity colour scales (the first the default) and what it may hide.
SCALES: tuple[str, ...] = ("absolute", "minmax", "quantile")
HIDEABLE: tuple[str, ...] = ("nonimportant", "source")


@dataclass(frozen=True)
class State:
    """The shareable dashboard state (hashable; compare with ``==``).

    ``cls`` is a class index; ``classes`` the instance view's class indices (sorted);
    ``layers`` consecutive analysed layers in forward order; ``neurons`` the feature
    view's checked ``(layer, index)`` pairs, ``()`` meaning "the top five".
    """

    cls: int
    classes: tuple[int, ...]
    layers: tuple[str, ...]
    model: Model = "target"
    order: Order = "most"
    neurons: tuple[tuple[str, int], ...] = ()
    tab: str = TABS[0]
    focus: int | None = None
    shown: int | None = DEFAULT_SHOWN  # network view: neurons shown a layer (None: all)
    scale: str = SCALES[0]  # network view: similarity colour scale
    hide: tuple[str, ...] = ()  # network view: hidden parts, in HIDEABLE's order


@dataclass(frozen=True)
class StateSpace:
    """The valid values of a cache: what the parser checks a link against.

    ``default_cls`` is the class whose target-minus-source accuracy difference on the
    target validation data is largest (where fine-tuning helped most, the natural first
    question); ``companions[c]`` is the class the target model most often mistakes
    ``c``'s target instances for (or -1), shown beside ``c`` in the instance view.
    """

    classes: tuple[str, ...]
    layers: tuple[str, ...]
    neuron_counts: dict[str, int] = field(hash=False, compare=False)
    default_cls: int = 0
    companions: tuple[int, ...] = ()
    n_instances: int | None = None  # instance ids are 0..n-1; None: not checked


    @classmethod
    def from_cache(cls, cache: Cache) -> "StateSpace":
        classes = tuple(cache.classes)
        layers = tuple(cache.layers)
        return cls(classes, layers, dict(cache.layer_sizes), _default_class(cache, len(classes)),
                   _companions(cache, len(classes)), len(cache.instances))

    # -- defaults
    def default_classes(self, c: int) -> tuple[int, ...]:
        """The instance view's classes for class ``c``: ``c`` and the class it is most mistaken for."""
        other = self.companions[c] if 0 <= c < len(self.companions) else -1
        return tuple(sorted({c, other})) if other >= 0 and other != c else (c,)

    def default_layers(self) -> tuple[str, ...]:
        return self.layers[:DEFAULT_LAYER_COUNT]

    def default(self) -> State:
        c = self.default_cls
        return State(c, self.default_classes(c), self.default_layers(), "target", "most", ())


def _default_class(cache: Any, n: int) -> int:
    """Largest target-minus-source accuracy difference; ties and NaN fall back to the lowest index."""
    try:
        table = cache.class_table
        diff = np.asarray(table["diff"], dtype=float)
        idx = np.asarray(table["class_index"], dtype=int)
    except Exception:  # no table (partial cache): the first class is a fine default
        return 0
    ok = np.isfinite(diff)
    if not ok.any():
        return 0
    best = np.flatnonzero(ok & (diff == diff[ok].max()))
    c = int(idx[best].min())
    return c if 0 <= c < n else 0


def _companions(cache: Any, n: int) -> tuple[int, ...]:
    """Per class: the most frequent wrong prediction of the target model on target instances (-1: none)."""
    try:
        conf = np.asarray(cache.confusion("target", "target"), dtype=np.int64)
    except Exception:
        return tuple([-1] * n)
    out = []
    for c in range(min(n, conf.shape[0])):
        row = conf[c].copy()
        row[c] = 0
        out.append(int(row.argmax()) if row.max() > 0 else -1)
    return tuple(out + [-1] * (n - len(out)))


def space_of(cache: Cache) -> StateSpace:
    """The cache's :class:`StateSpace`, built once per cache object (the layouts and several
    views' callbacks all need it at start-up; a published cache never changes)."""
    return cache.memo(("urlstate.space",), lambda: StateSpace.from_cache(cache))


def _space(cache_or_space: Any) -> StateSpace:
    return cache_or_space if isinstance(cache_or_space, StateSpace) else space_of(cache_or_space)


def default_state(cache_or_space: Any) -> State:
    """The state a link without a query string opens."""
    return _space(cache_or_space).default()


# --- parsing ------------------------------------------------------------------------

def _split_query(search: str | None) -> tuple[dict[str, list[str]], list[str]]:
    """``?a=x,y&b=z`` -> ``{"a": ["x", "y"], "b": ["z"]}``; the list items are unquoted separately,
    so a comma inside a (percent-encoded) class name survives. Repeated keys: the last wins."""
    raw: dict[str, list[str]] = {}
    order: list[str] = []
    text = (search or "").lstrip("?")
    for part in text.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        key = unquote_plus(key).strip()
        raw[key] = [unquote_plus(v) for v in value.split(",")] if value != "" else []
        if key not in order:
            order.append(key)
    return raw, order


def _class_of(token: str, space: StateSpace) -> int | None:
    if token in space.classes:
        return space.classes.index(token)
    if token.strip().lstrip("-").isdigit():
        i = int(token)
        if 0 <= i < len(space.classes):
            return i
    return None


def _short(values: Sequence[str], limit: int = 40) -> str:
    text = ",".join(values)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_state(search: str | None, cache_or_space: Any) -> tuple[State, list[str]]:
    """Parses a query string (with or without the leading ``?``) into a :class:`State`.

    Args:
        search: ``dcc.Location.search``, e.g. ``"?class=3&model=source"``; ``None``/``""``
            gives the defaults.
        cache_or_space: a :class:`transferviz.cache.Cache` or a prepared :class:`StateSpace`.

    Returns:
        ``(state, notices)``: every invalid key falls back to its default and adds one
        notice sentence; valid keys are kept. Never raises on user input.
    """
    space = _space(cache_or_space)
    base = space.default()
    raw, order = _split_query(search)
    notices: list[str] = []

    unknown = [k for k in order if k not in KEYS]
    if unknown:
        notices.append(f"Ignored unknown link parameter(s): {', '.join(repr(k) for k in unknown)}.")

    cls = base.cls
    if "class" in raw:
        vals = raw["class"]
        c = _class_of(vals[0], space) if len(vals) == 1 else None
        if c is None:
            notices.append(f"Unknown class {_short(vals)!r} in the link; showing class "
                           f"{space.classes[cls]!r} instead.")
        else:
            cls = c

    classes = space.default_classes(cls)
    if "classes" in raw:
        vals = raw["classes"]
        found = [_class_of(v, space) for v in vals]
        if any(f is None for f in found):
            bad = [v for v, f in zip(vals, found) if f is None]
            notices.append(f"Unknown class(es) {_short(bad)!r} in the instance view's selection; "
                           "showing the default classes.")
        else:
            classes = tuple(sorted(set(f for f in found if f is not None)))

    layers = base.layers
    if "layers" in raw:
        vals = raw["layers"]
        problem = _layers_problem(vals, space)
        if problem:
            notices.append(f"{problem} Showing layers {', '.join(layers)}.")
        else:
            layers = tuple(sorted(set(vals), key=space.layers.index))
            if len(layers) > MAX_LAYERS:
                dropped = layers[MAX_LAYERS:]
                layers = layers[:MAX_LAYERS]
                notices.append(f"The link names {len(layers) + len(dropped)} layers, but the network view draws at "
                               f"most {MAX_LAYERS} at once: dropped {len(dropped)} ({_short(dropped)}); "
                               f"showing layers {', '.join(layers)}.")

    model: Any = _choice(raw, "model", MODELS, base.model, notices, "Unknown model {!r} (use source or target); "
                         "showing the target model.")
    order_: Any = _choice(raw, "order", ORDERS, base.order, notices, "Unknown order {!r} (use most or least); "
                          "showing the most discriminative first.")

    neurons: tuple[tuple[str, int], ...] = ()
    if "neurons" in raw:
        parsed, problem = _parse_neurons(raw["neurons"], space)
        if problem:
            notices.append(f"{problem} Checking the top five neurons instead.")
        else:
            neurons = parsed

    tab = _choice(raw, "tab", TABS, base.tab, notices, f"Unknown tab {{!r}} (use {', '.join(TABS)}); "
                  f"showing the {base.tab} tab.")

    focus = base.focus
    if "focus" in raw:
        vals = raw["focus"]
        i = int(vals[0]) if len(vals) == 1 and vals[0].isdigit() else None
        if i is None or (space.n_instances is not None and i >= space.n_instances):
            limit = f" (ids 0-{space.n_instances - 1})" if space.n_instances else ""
            notices.append(f"Unknown instance {_short(vals)!r} to focus{limit}; focusing none.")
        else:
            focus = i

    shown, scale, hide, more = _parse_network(raw)
    notices += more
    return State(cls, classes, layers, model, order_, neurons, tab, focus, shown, scale, hide), notices


def _parse_network(raw: dict[str, list[str]]) -> tuple[int | None, str, tuple[str, ...], list[str]]:
    """The network view's keys ``shown``, ``scale`` and ``hide`` (defaults and a notice each when bad)."""
    notices: list[str] = []
    shown: int | None = DEFAULT_SHOWN
    if "shown" in raw:
        vals = raw["shown"]
        if len(vals) == 1 and vals[0] == "all":
            shown = None
        elif len(vals) == 1 and vals[0].isdigit() and 1 <= int(vals[0]) <= MAX_SHOWN:
            shown = int(vals[0])
        else:
            notices.append(f"Unknown number of neurons shown {_short(vals)!r} (use 1-{MAX_SHOWN} or all); "
                           f"showing the top {DEFAULT_SHOWN}.")
    scale = _choice(raw, "scale", SCALES, SCALES[0], notices, f"Unknown colour scale {{!r}} (use "
                    f"{', '.join(SCALES)}); showing {SCALES[0]}.")
    hide: tuple[str, ...] = ()
    if "hide" in raw:
        vals = raw["hide"]
        if all(v in HIDEABLE for v in vals):
            hide = tuple(h for h in HIDEABLE if h in vals)
        else:
            notices.append(f"Unknown part(s) to hide {_short(vals)!r} (use {', '.join(HIDEABLE)}); hiding nothing.")
    return shown, scale, hide, notices


def _choice(raw: dict[str, list[str]], key: str, choices: Sequence[str], default: str, notices: list[str],
            notice: str) -> str:
    """The link's one value of ``key`` when it is one of ``choices``; else ``default``, and ``notice``
    (with ``{!r}`` for the value given) is added to ``notices``. An absent key is the default, silently."""
    if key not in raw:
        return default
    vals = raw[key]
    if len(vals) == 1 and vals[0] in choices:
        return vals[0]
    notices.append(notice.format(_short(vals)))
    return default


def _layers_problem(vals: list[str], space: StateSpace) -> str | None:
    if not vals:
        return "The link names no layers."
    unknown = [v for v in vals if v not in space.layers]
    if unknown:
        return f"Unknown layer(s) {_short(unknown)!r} (analysed: {', '.join(space.layers)})."
    pos = sorted({space.layers.index(v) for v in vals})
    if pos != list(range(pos[0], pos[0] + len(pos))):
        return f"Layers {_short(vals)!r} are not consecutive."
    return None


def _parse_neurons(vals: list[str], space: StateSpace) -> tuple[tuple[tuple[str, int], ...], str | None]:
    out: list[tuple[str, int]] = []
    for v in vals:
        layer, sep, idx = v.rpartition(":")
        if not sep or layer not in space.layers or not idx.isdigit():
            return (), f"Malformed or unknown neuron {v!r} (expected layer:index)."
        n = space.neuron_counts.get(layer)
        i = int(idx)
        if n is not None and not 0 <= i < n:
            return (), f"Neuron {v!r} is out of range (layer {layer} has {n} neurons)."
        if (layer, i) not in out:
            out.append((layer, i))
    return tuple(out), None


# --- serialising --------------------------------------------------------------------

def _q(text: str) -> str:
    # ':' and '.' stay readable (layer names); ',' and '&' inside a name are escaped.
    return quote(str(text), safe=".:-_~")


def to_search(state: State, cache_or_space: Any | None = None) -> str:
    """Serialises ``state`` to ``"?class=...&..."`` (the inverse of :func:`parse_state`).

    With the cache (or a :class:`StateSpace`) classes are written by name; without it by
    index (which :func:`parse_state` also accepts). Empty ``neurons`` is left out.
    """
    names = _space(cache_or_space).classes if cache_or_space is not None else None

    def cname(i: int) -> str:
        return names[i] if names is not None and 0 <= i < len(names) else str(int(i))

    parts = [
        f"class={_q(cname(state.cls))}",
        "classes=" + ",".join(_q(cname(c)) for c in state.classes),
        "layers=" + ",".join(_q(layer) for layer in state.layers),
        f"model={state.model}",
        f"order={state.order}",
    ]
    if state.neurons:
        parts.append("neurons=" + ",".join(f"{_q(layer)}:{int(i)}" for layer, i in state.neurons))
    if state.tab != TABS[0]:
        parts.append(f"tab={_q(state.tab)}")
    if state.focus is not None:
        parts.append(f"focus={int(state.focus)}")
    if state.shown != DEFAULT_SHOWN:
        parts.append(f"shown={'all' if state.shown is None else int(state.shown)}")
    if state.scale != SCALES[0]:
        parts.append(f"scale={state.scale}")
    if state.hide:
        parts.append("hide=" + ",".join(state.hide))
    return "?" + "&".join(parts)


def with_changes(state: State, space: StateSpace | None = None, **changes: Any) -> State:
    """``state`` with some fields replaced, keeping dependent fields coherent.

    A new ``cls`` (without explicit ``classes``) also selects that class's default
    instance-view classes when a ``space`` is given; a new ``cls`` or ``model`` resets the
    checked ``neurons`` to the top five unless ``neurons`` is given, since the ranking
    list belongs to one class and model.
    """
    unknown = set(changes) - set(State.__dataclass_fields__)
    if unknown:
        raise TypeError(f"unknown State field(s): {', '.join(sorted(unknown))}")
    for key in ("classes", "layers", "neurons", "hide"):
        if key in changes and changes[key] is not None:
            changes[key] = tuple(tuple(v) if key == "neurons" else v for v in changes[key])
    new = replace(state, **changes)
    if "cls" in changes and new.cls != state.cls:
        if "classes" not in changes and space is not None:
            new = replace(new, classes=space.default_classes(new.cls))
        if "neurons" not in changes:
            new = replace(new, neurons=())
    if "model" in changes and new.model != state.model and "neurons" not in changes:
        new = replace(new, neurons=())
    return new


def update_search(search: str | None, cache_or_space: Any, **changes: Any) -> str:
    """The query string after applying ``changes`` to the state ``search`` encodes.

    For callbacks of any view that write the URL (``Output(URL, "search",
    allow_duplicate=True)``): ``update_search(search, cache, layers=("features.3", ...))``.
    Invalid parts of the old ``search`` are dropped (their defaults are written).
    """
    space = _space(cache_or_space)
    state, _ = parse_state(search, space)
    return to_search(with_changes(state, space, **changes), space)

