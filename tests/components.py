"""Walking Dash component trees in tests: find by id, iterate, collect the text."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def _kids(component: Any) -> list[Any]:
    children = getattr(component, "children", None)
    return [c for c in (children if isinstance(children, (list, tuple)) else [children])
            if c is not None and hasattr(c, "to_plotly_json")]


def walk(component: Any) -> Iterator[Any]:
    """The component and every component below it, depth first."""
    yield component
    for child in _kids(component):
        yield from walk(child)


def find(component: Any, cid: Any) -> Any:
    """The component with id ``cid`` in the tree (None when absent)."""
    return next((c for c in walk(component) if getattr(c, "id", None) == cid), None)


def texts(component: Any) -> str:
    """All text in a component tree (for asserting on rendered messages)."""
    if component is None:
        return ""
    if isinstance(component, (str, int, float)):
        return str(component)
    if isinstance(component, (list, tuple)):
        return " ".join(texts(c) for c in component)
    return texts(getattr(component, "children", None))
