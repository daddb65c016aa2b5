"""Callback requests built from an app's own callback map, as the browser would send them, with chosen
input values: for sweeping every callback with junk (tests/reliability)."""

from __future__ import annotations

import json
from typing import Any

import dash

#: Wildcards of pattern-matching ids; a request names one concrete component in their place.
_WILDCARDS = ('"ALL"', '"MATCH"', '"ALLSMALLER"', '["ALL"]', '["MATCH"]', '["ALLSMALLER"]')


def _component_id(raw: str) -> Any:
    """A callback map's id string as the request sends it (a dict id with wildcards made index 0)."""
    try:
        parsed = json.loads(raw)
    except ValueError:
        return raw
    if isinstance(parsed, dict):
        return {k: (0 if json.dumps(v) in _WILDCARDS else v) for k, v in parsed.items()}
    return parsed


def _is_pattern(raw: str) -> bool:
    return any(w in raw for w in _WILDCARDS)


def outputs_of(key: str) -> Any:
    """The ``outputs`` field of a request to the callback whose map key is ``key``."""
    multi = key.startswith("..")
    parts = key[2:-2].split("...") if multi else [key]
    outs = []
    for part in parts:
        raw, prop = part.rsplit(".", 1)
        prop = prop.split("@")[0]  # allow_duplicate outputs carry a hash after the property
        outs.append({"id": _component_id(raw), "property": prop})
    return outs if multi else outs[0]


def slots(app: dash.Dash, key: str) -> list[dict]:
    """The callback's Inputs then States, in request order (a position in this list is a ``values`` key)."""
    cb = app.callback_map[key]
    return [*cb["inputs"], *cb.get("state", [])]


def callback_payload(app: dash.Dash, key: str, values: dict[int, Any] | None = None) -> dict:
    """A request to callback ``key`` with every Input and State None except ``values`` (position in
    :func:`slots` -> value); the first Input given a value (else the first Input) is the trigger."""
    cb = app.callback_map[key]
    values = values or {}

    def entry(pos: int, spec: dict) -> Any:
        item = {"id": _component_id(spec["id"]), "property": spec["property"], "value": values.get(pos)}
        return [item] if _is_pattern(spec["id"]) else item

    n_in = len(cb["inputs"])
    entries = [entry(i, spec) for i, spec in enumerate(slots(app, key))]
    fired = min((i for i in values if i < n_in), default=0)
    spec = cb["inputs"][fired]
    return {"output": key, "outputs": outputs_of(key), "inputs": entries[:n_in], "state": entries[n_in:],
            "changedPropIds": [f"{spec['id']}.{spec['property']}"]}


def find_callback(app: dash.Dash, output_prefix: str) -> str:
    """The callback map key that starts with ``output_prefix`` (one must)."""
    keys = [k for k in app.callback_map if k.startswith(output_prefix)]
    assert len(keys) == 1, (output_prefix, keys)
    return keys[0]
