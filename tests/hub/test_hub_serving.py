"""The run hub's serving (issue 14, item 1): which folders are runs, the table's rows, the dispatch of
``/run/<name>/`` to each run's own app, a broken run listed with its one line and answered 503 while the
others serve, a single run still opened directly."""

from __future__ import annotations

import json

import pytest

from dashboard.hub.app import create_hub, serve
from dashboard.hub.callbacks import compare_href, runs_view
from dashboard.hub.runs import RunIndex, find_run_paths, is_hub_folder, run_row, valid_run_name
from transferviz.errors import TransferVizError


@pytest.fixture(scope="module")
def hub(three_runs):
    return create_hub(three_runs)


def test_the_folder_s_links_are_its_runs_and_a_dangling_one_keeps_its_error(three_runs):
    (three_runs / "data").mkdir(exist_ok=True)  # a folder beside the runs that is none
    assert [p.name for p in find_run_paths(three_runs)] == ["alpha", "beta", "broken", "gamma"]
    assert is_hub_folder(three_runs) and not is_hub_folder(three_runs / "alpha")
    runs = {r.name: r for r in RunIndex(three_runs).scan()}
    assert runs["alpha"].ok and runs["gamma"].ok
    assert not runs["broken"].ok and "dangling link" in (runs["broken"].error or "")
    assert "\n" not in (runs["broken"].error or "")


def test_a_run_whose_manifest_is_damaged_is_listed_with_one_line(three_runs, tmp_path):
    import shutil

    root = tmp_path / "cache"
    root.mkdir()
    build = root / ".builds" / "bad-20261206-120000-1-abcdef"
    shutil.copytree(three_runs / "alpha", build, symlinks=False)
    (build / "manifest.json").write_text("{not json")
    (root / "bad").symlink_to(build)
    (root / "good").symlink_to((three_runs / "alpha").resolve())
    runs = {r.name: r for r in RunIndex(root).scan()}
    assert runs["good"].ok
    assert runs["bad"].error is not None and "manifest.json is damaged" in runs["bad"].error


def test_run_row_carries_the_table_s_columns(three_runs):
    runs = {r.name: r for r in RunIndex(three_runs).scan()}
    row = run_row(runs["alpha"], "/run/alpha/")
    c = runs["alpha"].cache
    assert c is not None
    assert row["name"] == "[alpha](/run/alpha/)" and row["error"] == ""
    assert row["domains"] == f"{c.domains['source']} \u2192 {c.domains['target']}"
    assert row["arch"] == c.config["model"]["arch"] and row["layers"] == len(c.layers)
    assert row["score"] == pytest.approx(c.summary()["transferability"])
    assert row["target_acc"] == pytest.approx(c.summary()["best_target_on_target"])
    assert (row["logme"], row["leep"], row["nce"], row["hscore"]) == (-1.0, -2.0, -1.5, 3.0)
    assert row["build_s"] == pytest.approx(sum(s["seconds"] for s in c.manifest["stages"].values()), abs=0.1)
    assert row["built"][:4].isdigit()
    gamma = run_row(runs["gamma"], "/run/gamma/")
    assert gamma["logme"] is None  # no estimates: a blank cell
    broken = run_row(runs["broken"], "/run/broken/")
    assert broken["name"] == "broken" and broken["error"] and broken["score"] is None  # no link to a dead run


def test_run_names_that_cannot_be_url_segments_are_refused():
    assert valid_run_name("digits") and valid_run_name("office-31_a.w")
    for bad in ("", ".hidden", "a/b", "a..b", "a b", "x" * 200):
        assert not valid_run_name(bad), bad


def test_the_hub_serves_each_run_under_its_name_and_a_broken_one_does_not_stop_the_others(hub):
    client = hub.server.test_client()
    assert client.get("/").status_code == 200
    r = client.get("/run/alpha/")
    assert r.status_code == 200 and b"<title>transferviz: tiny</title>" in r.data  # the run's own page
    layout = client.get("/run/alpha/_dash-layout")
    assert layout.status_code == 200 and b'"hub-home"' in layout.data  # the page links back to the hub
    assert client.get("/run/beta/_dash-layout").status_code == 200
    r = client.get("/run/alpha")
    assert r.status_code == 308 and r.headers["Location"].endswith("/run/alpha/")
    r = client.get("/run/broken/")
    assert r.status_code == 503 and r.data.decode().count("\n") == 1 and "dangling" in r.data.decode()
    r = client.get("/run/nope/")
    assert r.status_code == 404 and "no run 'nope'" in r.data.decode()
    assert client.get("/run/..%2Falpha/").status_code == 404
    # each run has its own app: its images and callbacks answer under its own prefix
    assert client.get("/run/gamma/thumb/0.png").status_code == 200
    deps = json.loads(client.get("/run/gamma/_dash-dependencies").data)
    assert deps and all("hub-" not in d["output"] for d in deps)  # not the hub's callbacks
    r = client.get("/healthz")
    assert r.status_code == 200 and r.data.decode() == "ok hub 3 run(s), not opening: broken\n"
    assert client.get("/run/alpha/healthz").data.decode().startswith("ok tiny ")  # the run's own
    hub_deps = json.loads(client.get("/_dash-dependencies").data)
    assert {d["output"] for d in hub_deps} >= {"hub-page.children"}


def test_the_hub_works_under_a_path_prefix(three_runs):
    app = create_hub(three_runs, url_base_pathname="/tv/")
    client = app.server.test_client()
    assert client.get("/tv/").status_code == 200
    assert client.get("/tv/run/beta/_dash-layout").status_code == 200
    assert client.get("/run/beta/_dash-layout").status_code == 404


def test_serve_opens_a_single_run_directly_and_a_folder_as_the_hub(three_runs, tmp_path):
    run_app = serve(three_runs / "alpha")
    assert run_app.config.url_base_pathname == "/"
    assert run_app.server.test_client().get("/_dash-layout").status_code == 200
    assert "hub-page" in str(serve(three_runs).layout)
    with pytest.raises(TransferVizError, match="no cache at"):
        serve(tmp_path / "empty")


def test_the_table_lists_every_run_and_the_compare_link_names_the_ticked_ones(three_runs):
    page = runs_view(RunIndex(three_runs), "/")
    text = str(page)
    for name in ("alpha", "beta", "gamma", "broken"):
        assert name in text
    assert "hub-problems" in text  # the broken run's line above the table
    assert compare_href("/", ["alpha", "beta"]) == "/compare?runs=alpha,beta"
    assert compare_href("/tv/", ["a"]) == "/tv/compare?runs=a"


def test_junk_in_every_input_of_the_hub_s_callbacks_is_no_500(hub):
    """As tests/reliability does for a run's app: every Input of the hub's callbacks in turn gets a value of
    the wrong type; the answer is 200, 204 or a one-line 400, never a 500."""
    from tests.reliability.callback_requests import callback_payload, slots

    junk = [7, -10**18, 1.5, "zz'\"<script>", {"a": {"b": None}}, [1, "x", None, {"run": 3}], True, [[[{"x": 1}]]],
            "/compare", "?runs=alpha,broken,../x"]
    client = hub.server.test_client()
    sent = 0
    for key in hub.callback_map:
        for pos, _spec in enumerate(slots(hub, key)):
            for value in junk:
                r = client.post("/_dash-update-component", json=callback_payload(hub, key, {pos: value}))
                assert r.status_code in (200, 204, 400), (key, pos, value, r.status_code, r.data[:300])
                sent += 1
    assert sent >= 3 * len(junk)  # the page callback's two inputs and the compare button's one
