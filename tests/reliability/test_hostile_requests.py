"""Hostile requests to ``/_dash-update-component`` never answer 500 (issue 15, items 6 and 8).

A value of the wrong type or shape for any Input or State of any callback is a 200 (no output changed, one
line in the page's error alert) or a 204; a request Dash cannot dispatch at all is a 400 with one line.
The sweep builds its requests from the app's own callback map, so a callback added later is swept too.
"""

from __future__ import annotations

import json
import logging

import pytest

from dashboard.components import ERROR_ALERT
from layouts import instance_table as table_layout
from tests.reliability.callback_requests import callback_payload, find_callback, outputs_of, slots

URL = "/_dash-update-component"

#: Values a crafted request can put where a callback expects something else.
JUNK = {
    "int": 7,
    "negative": -10**18,
    "float": 1.5,
    "string": "zz'\"<script>",
    "dict": {"points": 3, "a": {"b": None}},
    "list": [1, "x", None, {"customdata": "y"}],
    "bool": True,
    "nested": [[[{"points": [[{"customdata": [1]}]]}]]],
}


@pytest.fixture(scope="module")
def client(tiny_app):
    return tiny_app.server.test_client()


@pytest.fixture(autouse=True)
def _quiet_guard_logs(caplog):
    # the guards log each rejected request with its traceback: hundreds of them here
    caplog.set_level(logging.CRITICAL, logger="dashboard.guards")


def _alert(answer: dict) -> str | None:
    """The error alert's line in a callback's answer, if the guard set it."""
    return (answer.get("sideUpdate") or {}).get(ERROR_ALERT, {}).get("children")


def _check_answer(r, where: str) -> None:
    assert r.status_code in (200, 204, 400), f"{where}: {r.status_code} {r.data[:300]!r}"
    if r.status_code == 200:
        line = _alert(r.get_json())
        assert line is None or ("\n" not in line and "Traceback" not in line), f"{where}: {line!r}"
    if r.status_code == 400:
        text = r.get_data(as_text=True)
        assert text.startswith("bad callback request: ") and text.count("\n") == 1, f"{where}: {text!r}"


@pytest.mark.parametrize("kind", sorted(JUNK))
def test_junk_in_every_input_of_every_callback_is_no_500(tiny_app, client, kind):
    """Every Input and State of every server callback in turn gets the junk value (the rest None)."""
    sent = 0
    for key in tiny_app.callback_map:
        for pos, spec in enumerate(slots(tiny_app, key)):
            r = client.post(URL, json=callback_payload(tiny_app, key, {pos: JUNK[kind]}))
            _check_answer(r, f"{key} {spec['id']}.{spec['property']}={kind}")
            sent += 1
    assert sent > 100  # the sweep reached the app's callbacks (53 with ~150 inputs on the tiny app)


@pytest.mark.parametrize("value", [42, 3.5, {"q": "label = 3"}, ["label = 3"], True],
                         ids=["number", "float", "dict", "list", "bool"])
def test_filter_box_value_of_the_wrong_type(tiny_app, client, value):
    """Issue 15 item 8: the table's filter box value sent as a number, dict, list or bool answered 500."""
    key = find_callback(tiny_app, f"..{table_layout.BOX_QUERY}.data...")
    names = [f"{s['id']}.{s['property']}" for s in slots(tiny_app, key)]
    values = {names.index(f"{table_layout.FILTER_APPLY}.n_clicks"): 1,
              names.index(f"{table_layout.FILTER_INPUT}.value"): value}
    r = client.post(URL, json=callback_payload(tiny_app, key, values))
    assert r.status_code in (200, 204), r.data[:300]
    if r.status_code == 200:
        answer = r.get_json()
        # either the filter took the value as text, or the view kept its state and the alert says why
        assert answer.get("response") or "did not expect" in (_alert(answer) or "")


@pytest.mark.parametrize("selected", [{"points": 5}, {"points": [{"customdata": "x"}, 7, None]}, [1, 2], "lasso", 3],
                         ids=["points-int", "points-junk", "list", "string", "number"])
def test_selected_data_of_the_wrong_shape(tiny_app, client, selected):
    key = find_callback(tiny_app, "inst-selection.children")
    r = client.post(URL, json=callback_payload(tiny_app, key, {0: selected}))
    assert r.status_code == 200, r.data[:300]
    answer = r.get_json()
    assert answer.get("response") or "did not expect" in (_alert(answer) or "")


def _raw(client, data: bytes, content_type: str = "application/json"):
    return client.post(URL, data=data, content_type=content_type)


def _good(tiny_app) -> dict:
    return callback_payload(tiny_app, find_callback(tiny_app, "inst-selection.children"))


MALFORMED = {
    "empty body": lambda app: b"",
    "not JSON": lambda app: b"{output: nope",
    "a JSON list": lambda app: b"[1, 2]",
    "a JSON string": lambda app: b'"output"',
    "unknown output": lambda app: json.dumps({**_good(app), "output": "nope.children"}).encode(),
    "no output": lambda app: json.dumps({k: v for k, v in _good(app).items() if k != "output"}).encode(),
    "inputs not a list": lambda app: json.dumps({**_good(app), "inputs": {"id": "x"}}).encode(),
    "input not an object": lambda app: json.dumps({**_good(app), "inputs": [5]}).encode(),
    "inputs missing": lambda app: json.dumps({**_good(app), "inputs": []}).encode(),
    "outputs of another callback": lambda app: json.dumps(
        {**_good(app), "outputs": outputs_of(find_callback(app, "..inst-scatter.figure"))}).encode(),
    "deeply nested body": lambda app: b"[" * 100_000 + b"]" * 100_000,
    "deeply nested value": lambda app: json.dumps(_good(app)).replace(
        '"value": null', '"value": ' + "[" * 5000 + "]" * 5000, 1).encode(),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_request_is_a_400_with_one_line(tiny_app, client, case):
    r = _raw(client, MALFORMED[case](tiny_app))
    assert r.status_code == 400, r.data[:300]
    text = r.get_data(as_text=True)
    assert text.startswith("bad callback request: ") and text.count("\n") == 1 and "Traceback" not in text


def test_a_non_json_content_type_is_a_400(client):
    r = _raw(client, b"output=x", "application/x-www-form-urlencoded")
    assert r.status_code == 400


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_in_json_is_no_500(tiny_app, client, literal):
    """Python's JSON parser takes NaN and Infinity (the issue's NaN request answered 500)."""
    body = json.dumps(_good(tiny_app)).replace('"value": null', f'"value": {literal}', 1).encode()
    r = _raw(client, body)
    _check_answer(r, literal)
    assert r.status_code == 200


def test_a_valid_request_still_works(tiny_app, client):
    """The guards let the real thing through: the selection list of an empty lasso."""
    r = client.post(URL, json=_good(tiny_app))
    assert r.status_code == 200
    answer = r.get_json()
    assert _alert(answer) is None and "inst-selection" in answer["response"]


def test_a_callback_with_nothing_to_do_still_answers_204(tiny_app, client):
    """A callback raising PreventUpdate (the models tab's panels while another tab is shown) is Dash's 204,
    never the guard's 400: the browser logs any 4xx as a console error."""
    from layouts import ids
    from layouts import models_data as lay

    key = find_callback(tiny_app, f"..{lay.MODELS}.children")
    tab = next(i for i, s in enumerate(slots(tiny_app, key)) if s["id"] == ids.TABS)
    r = client.post(URL, json=callback_payload(tiny_app, key, {tab: ids.TAB_ANALYSIS}))
    assert r.status_code == 204, r.data[:300]
