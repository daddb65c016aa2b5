"""Run-time markup that several views share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypedDict

import dash_bootstrap_components as dbc
from dash import html

from dashboard.routes import thumb_src
from dashboard.theme import DOMAIN_COLORS

__all__ = ["ERROR_ALERT", "DataAttrs", "Title", "error_alert", "featvis_img", "featvis_missing", "notice_alert",
           "thumb_img"]

#: The page's one alert for a view that could not be updated (set by :mod:`dashboard.guards`).
ERROR_ALERT = "view-error"


class Title(TypedDict, total=False):
    """``**`` keywords that give a component a ``title`` only when there is one (an explicit
    ``title=None`` is still sent as a prop); a TypedDict, so that mypy matches it against ``title``
    alone rather than every keyword of the component."""

    title: str


#: ``**`` keywords of the ``data-*`` attributes the views set: no Python identifiers, they reach a
#: component through its ``**kwargs``; typed so that mypy does not match them against its other keywords.
DataAttrs = TypedDict("DataAttrs", {"data-kind": str, "data-class": int, "data-empty": str,
                                    "data-layer-names": str}, total=False)


def thumb_img(prefix: str, instance_id: int, domain: str, px: int, *, border: int = 2, alt: str | None = None,
              title: str | None = None, **style: Any) -> html.Img:
    """An instance thumbnail ``px`` x ``px`` in a frame of its domain's colour (grey for an unknown
    domain); ``alt`` defaults to "instance ID", extra keyword arguments are added to its style."""
    extra: Title = {} if title is None else {"title": title}
    return html.Img(src=thumb_src(prefix, instance_id), width=px, height=px,
                    alt=f"instance {instance_id}" if alt is None else alt, **extra,
                    style={"imageRendering": "pixelated", "borderRadius": 2,
                           "border": f"{border}px solid {DOMAIN_COLORS.get(domain, '#555')}", **style})


def featvis_img(src: str, px: int, native_px: int | None, *, alt: str, title: str | None = None,
                **style: Any) -> html.Img:
    """A feature visualization shown at ``px`` x ``px`` whatever its pixel size (a 224 px PNG must not
    grow a ranking row or a detail panel): width and height attributes, and a style that a flex row
    or a table cell can neither stretch nor squeeze. ``native_px`` is the images' pixel width
    (:func:`dashboard.lookups.featvis_px`): crisp (pixelated) when shown at that size or larger,
    smoothed when shrunk (nearest-neighbour shrinking would alias them into noise); extra keyword
    arguments are added to the style."""
    extra: Title = {} if title is None else {"title": title}
    shrunk = native_px is not None and native_px > px
    return html.Img(src=src, width=px, height=px, alt=alt, className="tv-featvis", **extra,
                    style={"width": f"{px}px", "height": f"{px}px", "minWidth": f"{px}px", "maxWidth": f"{px}px",
                           "flex": "none", "objectFit": "contain",
                           "imageRendering": "auto" if shrunk else "pixelated", **style})


def featvis_missing(px: int, command: str) -> html.Span:
    """In place of a feature visualization the build did not render (it renders the neurons the views pick):
    a ``px`` box that says so, the command that renders it on hover."""
    text = "not rendered" if px >= 48 else "–"  # a ranking row's 28 px cell: the hover says it
    return html.Span(text, title=f"not rendered: {command}", className="tv-featvis-missing text-muted",
                     style={"width": f"{px}px", "height": f"{px}px", "minWidth": f"{px}px", "flex": "none",
                            "display": "inline-flex", "alignItems": "center", "justifyContent": "center",
                            "textAlign": "center", "fontSize": "9px", "lineHeight": "1", "border": "1px dashed #bbb",
                            "borderRadius": 2, "background": "#f7f7f7"})


def build_warning_alert(warnings: Sequence[str]) -> dbc.Alert | None:
    """The build's warnings (a model at chance level, ...) above every tab: a finding drawn from a model
    that learned nothing must not look like one. None when the build had none."""
    if not warnings:
        return None
    return dbc.Alert(
        [html.Strong("The build warned: "), html.Ul([html.Li(w) for w in warnings], className="mb-0 ps-3")],
        id="build-warnings", color="danger", dismissable=True, is_open=True, className="py-1 px-2 my-1 small",
    )


def notice_alert(notices: Sequence[str]) -> dbc.Alert:
    """The dismissable notice for a link with values the cache does not know."""
    return dbc.Alert(
        [html.Strong("Parts of this link did not fit this dataset, so defaults are shown instead: "),
         html.Ul([html.Li(n) for n in notices], className="mb-0 ps-3")],
        color="warning", dismissable=True, is_open=True, className="py-1 px-2 my-1 small",
    )


def error_alert() -> dbc.Alert:
    """Hidden until a callback fails: then :mod:`dashboard.guards` fills it with one line (a damaged cache
    file and the fix, or a request the view did not expect) and opens it; the view keeps what it showed."""
    return dbc.Alert(id=ERROR_ALERT, color="danger", dismissable=True, is_open=False,
                     className="py-1 px-2 my-1 small")
