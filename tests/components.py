"""Dash component trees and plotly figures in tests: walk, find by id or type, collect the text, pick traces."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def _kids(component: Any) -> list[Any]:
    children = getattr(component, "children", None)
    return [c for c in (children if isinstance(children, (list, tuple)) else [children])
            if c is not None and hasattr(c, "to_plotly_json")]


def walk(component: Any) -> Iterator[Any]:
    """The component and every component below it, depth first (a list or tuple: each item's tree in turn)."""
    if isinstance(component, (list, tuple)):
        for item in component:
            yield from walk(item)
        return
    yield component
    for child in _kids(component):
        yield from walk(child)


def find(component: Any, cid: Any) -> Any:
    """The component with id ``cid`` in the tree (None when absent)."""
    return next((c for c in walk(component) if getattr(c, "id", None) == cid), None)


def of_type(component: Any, name: str | type) -> list[Any]:
    """The components of the tree of type ``name`` (a class name such as ``"Img"``, or the class itself)."""
    if isinstance(name, str):
        return [c for c in walk(component) if type(c).__name__ == name]
    return [c for c in walk(component) if isinstance(c, name)]


def texts(component: Any, sep: str = " ") -> str:
    """All text in a component tree, in reading order, joined by ``sep`` (for asserting on rendered messages)."""
    if component is None:
        return ""
    if isinstance(component, (str, int, float)):
        return str(component)
    if isinstance(component, (list, tuple)):
        return sep.join(texts(c, sep) for c in component)
    return texts(getattr(component, "children", None), sep)


def traces(fig: Any, role: str, **meta: Any) -> list[Any]:
    """The traces of ``fig`` whose ``meta`` dict has this ``role`` and these ``meta`` values.

    ``fig`` is a ``go.Figure`` (traces are plotly objects) or a figure dict such as
    ``fig.to_plotly_json()`` or a Dash response (traces are dicts).
    """
    data = fig["data"] if isinstance(fig, dict) else fig.data
    out = []
    for t in data:
        m = t.get("meta") if isinstance(t, dict) else getattr(t, "meta", None)
        if isinstance(m, dict) and m.get("role") == role and all(m.get(k) == v for k, v in meta.items()):
            out.append(t)
    return out
