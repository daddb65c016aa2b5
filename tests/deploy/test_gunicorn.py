"""Deployment: the real gunicorn serving dashboard.wsgi:server with several workers."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, bytes, str]:
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.status, r.read(), r.headers.get("Content-Type", "")


@pytest.fixture()
def gunicorn_server(tiny_cache):
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or shutil.which("gunicorn")
    if gunicorn is None:
        pytest.fail("gunicorn is not installed; it is a dependency of transferviz")
    port = _free_port()
    env = {**os.environ, "TRANSFERVIZ_CACHE": str(tiny_cache.root), "TRANSFERVIZ_URL_PREFIX": "/tv/"}
    proc = subprocess.Popen([gunicorn, "-w", "2", "-b", f"127.0.0.1:{port}", "--timeout", "120",
                             "dashboard.wsgi:server"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}/tv/"
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"gunicorn exited: {proc.stdout.read()[-2000:]}")
        try:
            if _get(base + "healthz")[0] == 200:
                break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("gunicorn did not answer within 120 s")
    yield base
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_gunicorn_serves_the_dashboard_under_a_prefix(gunicorn_server, tiny_cache):
    base = gunicorn_server
    # several requests so both workers answer; they share the read-only cache
    for _ in range(6):
        status, body, _ = _get(base + "healthz")
        assert status == 200 and body.decode().strip() == f"ok {tiny_cache.name} {tiny_cache.root.name}"
    status, body, ctype = _get(base)
    assert status == 200 and "text/html" in ctype and b"transferviz" in body
    status, body, _ = _get(base + "_dash-layout")
    layout = json.loads(body)
    assert "network-graph" in json.dumps(layout)
    status, body, ctype = _get(base + "thumb/0.png")
    assert status == 200 and ctype == "image/png" and body[:4] == b"\x89PNG"
    req = urllib.request.Request(base + "thumb/999999.png")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 404


def test_every_answer_carries_the_security_headers_and_no_versions(gunicorn_server):
    """Issue 15, item 6: no sniffing, no framing by other sites, no full URLs (the dashboard's state) to other
    origins, on pages, data, images and errors alike; the Server header names no version."""
    from dashboard.app import SECURITY_HEADERS

    for path in ("", "healthz", "_dash-layout", "thumb/0.png", "thumb/999999.png"):
        try:
            r = urllib.request.urlopen(gunicorn_server + path, timeout=30)
        except urllib.error.HTTPError as err:  # the 404 must carry them too
            r = err
        for key, value in SECURITY_HEADERS.items():
            assert r.headers.get(key) == value, (path, key, r.headers.get(key))
        server = r.headers.get_all("Server") or []
        assert len(server) <= 1 and not any(ch.isdigit() for ch in "".join(server)), server


def test_the_development_server_names_no_versions(tiny_cache):
    """``python -m dashboard`` (Werkzeug) sends one Server header without Werkzeug's and Python's versions."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "dashboard", "--cache", str(tiny_cache.root), "--port", str(port)],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while True:
            try:
                r = urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    pytest.fail("python -m dashboard did not answer within 120 s")
                time.sleep(0.5)
        assert r.headers.get_all("Server") == ["transferviz"]
        assert r.headers.get("X-Frame-Options") == "SAMEORIGIN"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
