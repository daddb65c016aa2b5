"""No traceback and no 500 for a user (issue 15, items 4 and 6).

Three guards, installed by :func:`install_guards` when the app is made:

* the cache is checked before anything is served (:meth:`Cache.verify`: every artifact the manifest
  lists, headers only), so a damaged cache stops the start with one line instead of failing views;
* every callback runs under Dash's ``on_error``: an exception (a file damaged after the start, a value of
  the wrong type or shape in a crafted request) leaves every output as it was and shows one line in the
  page's error alert; a :class:`TransferVizError` is shown as it is, anything else is logged with its
  traceback and shown without details;
* a request that Dash itself cannot dispatch (no JSON, not an object, an unknown output, nesting deep
  enough to exhaust the parser) is answered 400 with one line rather than a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

import dash
from dash.exceptions import PreventUpdate
from flask import Response, request
from werkzeug.exceptions import HTTPException

from dashboard.components import ERROR_ALERT
from transferviz.cache import Cache
from transferviz.errors import TransferVizError

__all__ = ["callback_error", "install_guards", "request_problem"]

log = logging.getLogger(__name__)

#: What a user sees for an exception that is not a TransferVizError: no internals of the server.
UNEXPECTED = "This view could not be updated: it received a value it did not expect ({kind}); it keeps what it showed."

# The parts of a callback request Dash reads before it runs the callback, and the JSON type each must have.
_BODY_TYPES: dict[str, tuple[type, ...]] = {"output": (str,), "outputs": (dict, list), "inputs": (list,),
                                            "state": (list,), "changedPropIds": (list,)}


def install_guards(app: dash.Dash, cache: Cache | None) -> None:
    """Checks ``cache`` (raising one :class:`TransferVizError` line when it is damaged; None: an app over no
    single cache, the run hub) and guards every callback of ``app`` and its callback endpoint; call it before
    the callbacks are registered or after."""
    if cache is not None:
        cache.verify()
    # Dash >= 2.18 calls the app's on_error for an exception in any callback without its own; it is a
    # constructor argument only, and create_app builds the app before it is guarded
    if not hasattr(app, "_on_error"):
        raise RuntimeError("this Dash has no app-wide on_error (needs Dash >= 2.18)")
    app._on_error = callback_error
    _guard_dispatch(app)
    # an image route over a damaged file (a truncated feature visualization): not found, as a missing one
    app.server.register_error_handler(TransferVizError, _unavailable)


def callback_error(err: Exception) -> None:
    """Dash's ``on_error``: no output changes (None), the page's error alert shows one line."""
    if isinstance(err, TransferVizError):
        message = str(err)
        log.warning("callback %s: %s", _callback_name(), message)
    else:
        message = UNEXPECTED.format(kind=type(err).__name__)
        log.error("callback %s failed", _callback_name(), exc_info=err)
    dash.set_props(ERROR_ALERT, {"children": message, "is_open": True})


def _callback_name() -> str:
    """The outputs of the running callback, for the server log."""
    try:
        return str(dash.callback_context.outputs_list)[:200]
    except Exception:  # noqa: BLE001 - a log line must not fail the handler
        return "?"


def request_problem(body: Any, callbacks: dict[str, Any]) -> str | None:
    """Why a parsed ``/_dash-update-component`` body cannot be dispatched (None: it can).

    Only the envelope Dash indexes before the callback runs; the values inside are the callback's to judge
    (a wrong one reaches :func:`callback_error`)."""
    if not isinstance(body, dict):
        return f"the body is a JSON {type(body).__name__}, not an object"
    for key, types in _BODY_TYPES.items():
        if key in body and not isinstance(body[key], types):
            return f"'{key}' is a JSON {type(body[key]).__name__}"
    if body.get("output") not in callbacks:
        return "it names no callback of this app"
    entries = [*body.get("inputs", []), *body.get("state", [])]
    for e in entries:
        # a pattern-matching input (ALL) sends a list of such entries
        for item in e if isinstance(e, list) else [e]:
            if not isinstance(item, dict) or "id" not in item or not isinstance(item.get("property"), str):
                return "an input is not an {id, property, value} object"
    spec = callbacks[body["output"]]
    if len(entries) != len(spec.get("inputs", [])) + len(spec.get("state", [])):
        return "its inputs do not match the callback's"
    return None


def _guard_dispatch(app: dash.Dash) -> None:
    """Wraps Dash's callback endpoint: a malformed request is answered 400 with one line."""
    server = app.server
    rule = next(r for r in server.url_map.iter_rules() if r.rule.endswith("/_dash-update-component"))
    view: Callable[..., Any] = server.view_functions[rule.endpoint]

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            body = request.get_json(silent=True)
        except RecursionError:  # nesting deeper than the parser's stack
            body = None
        problem = "the body is not JSON" if body is None else request_problem(body, app.callback_map)
        if problem:
            return _bad_request(problem)
        try:
            return view(*args, **kwargs)
        except (HTTPException, PreventUpdate):  # a callback's "nothing to do": Dash's own handler answers 204
            raise
        except Exception as exc:  # noqa: BLE001 - Dash failed on the request itself, not in a callback
            log.warning("callback request failed in Dash", exc_info=exc)
            return _bad_request(f"Dash could not process it ({type(exc).__name__})")

    server.view_functions[rule.endpoint] = guarded


def _bad_request(problem: str) -> Response:
    return Response(f"bad callback request: {problem}\n", status=400, mimetype="text/plain")


def _unavailable(err: TransferVizError) -> Response:
    log.warning("%s", err)  # the file and the fix, for whoever runs the server
    return Response("not available: the file is damaged in the cache (the server log names it)\n", status=404,
                    mimetype="text/plain")
