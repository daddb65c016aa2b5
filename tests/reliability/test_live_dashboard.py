"""A dashboard over a changing cache (issue 15, items 5 and 7): it keeps serving the build it opened (and
pruning leaves that build alone), switches to a newly published build at the next page load, says which
build it serves on ``/healthz`` and fails there once the build's files are gone; and it serves a
read-only cache, as another user, without writing a byte."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import dashboard.app as dashboard_app
from layouts import ids
from layouts import instances as inst_layout
from tests.conftest import REPO, dispatch
from tests.reliability.lifecycle_helpers import RUN, published_copy, republish, tiny_config_file, wait_for
from transferviz.cache import current_build, prune_builds
from transferviz.cli import main
from transferviz.locks import try_lock

#: The instance view's scatter for classes 0 and 1: a data callback reading the build's tables and maps.
SCATTER_OUTPUT = ("..inst-scatter.figure...inst-scatter.selectedData...inst-summary.children..."
                  "inst-class-key.children...inst-class-key-title.children..")
SCATTER_OUTPUTS: list[dict] = [{"id": inst_layout.SCATTER, "property": "figure"},
                               {"id": inst_layout.SCATTER, "property": "selectedData"},
                               {"id": inst_layout.SUMMARY, "property": "children"},
                               {"id": inst_layout.KEY, "property": "children"},
                               {"id": inst_layout.KEY_TITLE, "property": "children"}]
SCATTER_INPUTS: list[dict] = [{"id": inst_layout.CLASSES, "property": "value", "value": [0, 1]},
                              {"id": ids.HIGHLIGHT, "property": "data", "value": None}]
SCATTER_CHANGED = ["inst-classes.value"]


def _scatter(app) -> dict:
    return dispatch(app, SCATTER_OUTPUT, SCATTER_OUTPUTS, SCATTER_INPUTS, SCATTER_CHANGED)


def _health(client) -> tuple[int, str]:
    r = client.get("/healthz")
    return r.status_code, r.get_data(as_text=True)


@pytest.fixture()
def root(tmp_path, tiny_cache) -> Path:
    return published_copy(tiny_cache, tmp_path / "cache")


@pytest.fixture()
def layouts_built(monkeypatch) -> list[str]:
    """The build folder of every page layout the app builds (it should build one per build, not per request)."""
    built: list[str] = []
    real = dashboard_app.page_layout

    def counting(cache):
        built.append(cache.root.name)
        return real(cache)

    monkeypatch.setattr(dashboard_app, "page_layout", counting)
    return built


def test_dashboard_switches_to_a_new_build_at_the_next_page_load(root, tmp_path, layouts_built, capsys):
    app = dashboard_app.create_app(root / RUN)
    client = app.server.test_client()
    old = current_build(root, RUN)
    assert old is not None
    assert _health(client) == (200, f"ok tiny {old.name}\n")
    for _ in range(2):
        assert client.get("/_dash-layout").status_code == 200
    assert layouts_built == [old.name]  # built once for the build, not per page load

    assert main(["build", str(tiny_config_file(tmp_path / "tiny.yaml")), "--cache-dir", str(root), "--quiet"]) == 0
    capsys.readouterr()
    new = current_build(root, RUN)
    assert new is not None and new != old
    status, line = _health(client)
    assert status == 200 and line == (f"ok tiny {old.name}; newer build {new.name} is published, "
                                      "served from the next page load\n")
    assert _scatter(app)["response"]  # an open page's callbacks keep working meanwhile
    # the build being served is in use: a prune that would delete it (keep only the newest) leaves it
    assert prune_builds(root, RUN, keep=1) == [] and (old / "manifest.json").is_file()

    assert client.get("/_dash-layout").status_code == 200  # a page load: the safe point to switch
    assert _health(client) == (200, f"ok tiny {new.name}\n")
    assert client.get("/_dash-layout").status_code == 200
    assert layouts_built == [old.name, new.name]
    # the old build is no longer held: pruning deletes it, and every request is answered from the new one
    assert prune_builds(root, RUN, keep=1) == [old]
    assert client.get("/thumb/3.png").status_code == 200
    assert _scatter(app)["response"]


def test_dashboard_given_a_build_folder_never_switches(root):
    served = current_build(root, RUN)
    assert served is not None
    app = dashboard_app.create_app(served)
    client = app.server.test_client()
    republish(root)
    assert client.get("/_dash-layout").status_code == 200
    assert _health(client) == (200, f"ok tiny {served.name}\n")


def _rename_a_class(build: Path) -> None:
    meta = build / "data" / "meta.json"
    data = json.loads(meta.read_text())
    data["classes"][0] = "renamed"
    meta.unlink()  # a hard link into the served build: replace it, never write through it
    meta.write_text(json.dumps(data))


def test_dashboard_keeps_serving_when_the_new_build_differs_in_what_views_registered(root):
    """The views derive the classes, layers and counts once, at start-up: a build that changes them needs a
    restart, and the running app keeps serving its build and says so rather than mixing the two."""
    app = dashboard_app.create_app(root / RUN)
    client = app.server.test_client()
    served = current_build(root, RUN)
    assert served is not None
    new = republish(root, edit=_rename_a_class)
    assert client.get("/_dash-layout").status_code == 200
    status, line = _health(client)
    assert status == 200 and line == (f"ok tiny {served.name}; newer build {new.name} is published but not served: "
                                      "its classes, layers or instances differ from the served build's; restart "
                                      "the dashboard to serve it\n")
    assert prune_builds(root, RUN, keep=1) == []  # the served build stays, held by the app
    assert _scatter(app)["response"]


def test_healthz_fails_with_one_line_once_the_served_build_is_gone(root, tiny_cache):
    app = dashboard_app.create_app(root / RUN)
    client = app.server.test_client()
    served = current_build(root, RUN)
    assert served is not None and _health(client)[0] == 200
    shutil.rmtree(served)  # deleted behind the dashboard's back (its lock stops only transferviz's pruning)
    status, line = _health(client)
    assert status == 503 and line.count("\n") == 1
    assert line == (f"error: the served build {served.name} of run tiny is gone (manifest.json missing); "
                    "restart the dashboard on a built cache\n")
    # once a build is published again, the answer says how to get it served
    new = republish(root, tiny_cache.root)
    status, line = _health(client)
    assert status == 503 and line.endswith(f"; reload the page to serve the published build {new.name}\n")
    assert client.get("/_dash-layout").status_code == 200  # the page load switches to it
    assert _health(client) == (200, f"ok tiny {new.name}\n")
    assert client.get("/thumb/0.png").status_code == 200


# --- a read-only cache, served by another user ---------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _snapshot(base: Path) -> dict[str, tuple]:
    """Every file and folder under ``base``: mode, size, modification time and content hash."""
    out: dict[str, tuple] = {}
    for p in sorted(base.rglob("*")):
        st = p.lstat()
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() and not p.is_symlink() else ""
        out[p.relative_to(base).as_posix()] = (st.st_mode, st.st_size, st.st_mtime_ns, digest)
    return out


#: Starts ``python -m dashboard ARGS`` with this environment's packages, whichever interpreter runs it (below).
_BOOT = ("import runpy, site, sys; [site.addsitedir(p) for p in {sites!r}]; sys.path.insert(0, {repo!r}); "
         "sys.argv = ['dashboard', *sys.argv[1:]]; runpy.run_module('dashboard', run_name='__main__')")


def _start_as_nobody(args: list[str]) -> subprocess.Popen:
    """``python -m dashboard ARGS`` as user nobody (65534): with this interpreter when nobody may run it, else
    with the system's Python of the same version (this one may live under root's home) and this environment's
    site-packages."""
    import site

    boot = _BOOT.format(sites=site.getsitepackages(), repo=str(REPO))
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    env = {**os.environ, "HOME": "/nonexistent", "PYTHONDONTWRITEBYTECODE": "1"}
    for exe in (sys.executable, shutil.which(version, path="/usr/local/bin:/usr/bin:/bin")):
        if exe is None:
            continue
        try:
            return subprocess.Popen([exe, "-c", boot, *args], cwd=REPO, env=env, user=65534, group=65534,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        except PermissionError:
            continue
    pytest.skip(f"no {version} that user nobody may run")


def _request(url: str, body: dict | None = None) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


@pytest.mark.skipif(os.geteuid() != 0, reason="serving as another user (nobody) needs root")
def test_dashboard_serves_a_read_only_cache_as_another_user_without_writing(tiny_cache):
    base = Path(tempfile.mkdtemp(prefix="tv-readonly-"))
    proc = None
    try:
        base.chmod(0o755)  # mkdtemp makes it 0700: nobody must reach the cache inside
        root = published_copy(tiny_cache, base / "cache")
        build = current_build(root, RUN)
        assert build is not None
        (build / ".lock").touch()  # every build folder has one (a cache built before folder locks lacks it)
        subprocess.run(["chmod", "-R", "a-w", str(base)], check=True)
        before = _snapshot(base)
        port = _free_port()
        proc = _start_as_nobody(["--cache", str(root / RUN), "--port", str(port)])
        url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            assert proc is not None and proc.poll() is None, proc.stdout.read() if proc and proc.stdout else ""
            try:
                return _request(f"{url}/healthz")[0] == 200
            except OSError:
                return False

        wait_for(up, 120, "the dashboard to answer")
        assert _request(f"{url}/healthz") == (200, f"ok tiny {build.name}\n".encode())
        assert _request(f"{url}/")[0] == 200
        assert _request(f"{url}/_dash-layout")[0] == 200
        status, body = _request(f"{url}/thumb/0.png")
        assert status == 200 and body[:4] == b"\x89PNG"
        status, body = _request(f"{url}/_dash-update-component", {
            "output": SCATTER_OUTPUT, "outputs": SCATTER_OUTPUTS, "inputs": SCATTER_INPUTS,
            "changedPropIds": SCATTER_CHANGED, "state": []})
        assert status == 200 and inst_layout.SCATTER in json.loads(body)["response"], body[:300]
        # the server holds the read-only build's lock (shared): pruning could not take it
        assert try_lock(build / ".lock", create=False) is None
        proc.terminate()
        proc.wait(timeout=30)
        assert _snapshot(base) == before
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        subprocess.run(["chmod", "-R", "u+w", str(base)], check=True)
        shutil.rmtree(base)
