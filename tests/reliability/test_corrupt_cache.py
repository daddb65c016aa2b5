"""A damaged cache is one line naming the file and the fix, for every reader (issue 15, items 4 and 7).

A matrix of damage (truncated, zero bytes, garbage, missing, wrong dtype / shape / rows, not an object)
to the manifest, the instance table, an analysis array, a weights file, JSON files and PNG images, read
through ``Cache.open`` and the file's accessor, ``transferviz info``, the dashboard's start
(``python -m dashboard`` and gunicorn's import of ``dashboard.wsgi``) and a running dashboard whose
files are damaged after it started (no 500: the view keeps its state, the page's alert says why).

One copy of the tiny cache is damaged one file at a time and restored after each case.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from dashboard.components import ERROR_ALERT
from tests.conftest import copy_cache
from tests.reliability.callback_requests import callback_payload, find_callback
from transferviz.cache import Cache
from transferviz.errors import TransferVizError

FIX = "transferviz build CONFIG --force"


def _truncate(p: Path) -> None:
    data = p.read_bytes()
    p.write_bytes(data[:len(data) // 2])


def _zero(p: Path) -> None:
    p.write_bytes(b"")


def _garbage(p: Path) -> None:
    p.write_bytes(b"this is not what the build wrote\n" * 4)


def _missing(p: Path) -> None:
    p.unlink()


def _not_object(p: Path) -> None:
    p.write_text("[1, 2, 3]")


def _deeply_nested(p: Path) -> None:
    p.write_text("[" * 100_000 + "]" * 100_000)  # past the JSON parser's recursion limit


def _npy_float64(p: Path) -> None:
    np.save(p, np.load(p).astype(np.float64))


def _npy_wider(p: Path) -> None:
    a = np.load(p)
    np.save(p, np.zeros((a.shape[0], a.shape[1] + 1), dtype=a.dtype))


def _parquet_fewer_rows(p: Path) -> None:
    pd.read_parquet(p).iloc[:7].to_parquet(p, index=False)


def _layers(c: Cache) -> Any:
    return c.layers


@dataclass(frozen=True)
class Damage:
    rel: str                        # the damaged file, relative to the cache
    how: Callable[[Path], None]
    read: Callable[[Cache], Any]    # the accessor that reads it
    at_start: bool = True           # the start-up check (headers, counts) sees it; PNG contents it does not

    @property
    def id(self) -> str:
        return f"{self.rel}-{self.how.__name__.lstrip('_')}"


TSNE, INST, WEIGHTS, META, THUMB = ("analysis/tsne.npy", "data/instances.parquet", "models/target.safetensors",
                                    "data/meta.json", "thumbs/5.png")
FEATVIS = "featvis/target/features.0/0.png"

CASES = [
    *(Damage("manifest.json", how, lambda c: c) for how in (_truncate, _zero, _garbage, _missing, _not_object,
                                                            _deeply_nested)),
    *(Damage(INST, how, lambda c: c.instances) for how in (_truncate, _zero, _garbage, _missing, _parquet_fewer_rows)),
    *(Damage(TSNE, how, lambda c: c.tsne()) for how in (_truncate, _zero, _garbage, _missing, _npy_float64,
                                                        _npy_wider)),
    *(Damage(WEIGHTS, how, lambda c: c.model("target")) for how in (_truncate, _zero, _garbage)),
    *(Damage(META, how, lambda c: c.classes) for how in (_truncate, _garbage, _missing)),
    Damage("models/layers.json", _truncate, _layers),
    # listed in the manifest, so not an optional artifact the build skipped: its accessor must not say "none"
    Damage("analysis/pixel_tsne.npy", _missing, lambda c: c.pixel_tsne()),
    Damage("analysis/timeline/accuracy.parquet", _garbage, lambda c: c.timeline_accuracy()),
    Damage(THUMB, _truncate, lambda c: c.thumbnail(5), at_start=False),
    Damage(THUMB, _garbage, lambda c: c.thumbnail(5), at_start=False),
    Damage(FEATVIS, _truncate, lambda c: c.featvis("target", "features.0", 0), at_start=False),
]


@pytest.fixture(scope="module")
def work(tiny_cache, tmp_path_factory) -> Path:
    """A copy of the tiny cache that the cases damage, one file at a time."""
    return copy_cache(tiny_cache, tmp_path_factory.mktemp("corrupt") / "tiny").root


#: What the start-up check (headers and counts) sees; a PNG's contents only its reader does.
AT_START = [d for d in CASES if d.at_start]


def _ids(cases: list[Damage]) -> list[str]:
    return [d.id for d in cases]


@pytest.fixture(params=CASES, ids=_ids(CASES))
def damaged(request, work) -> Iterator[tuple[Path, Damage]]:
    d: Damage = request.param
    p = work / d.rel
    original = p.read_bytes()
    d.how(p)
    yield work, d
    p.write_bytes(original)


def _one_line_naming(message: str, d: Damage) -> None:
    assert "\n" not in message.strip() and "Traceback" not in message, message
    assert d.rel in message, message
    if d.rel == "manifest.json" and d.how is _missing:
        assert "no manifest.json" in message and "transferviz build" in message, message
    else:
        assert FIX in message, message


def test_accessor_raises_one_line(damaged):
    root, d = damaged
    with pytest.raises(TransferVizError) as err:
        d.read(Cache.open(root))
    _one_line_naming(str(err.value), d)


@pytest.mark.parametrize("damaged", AT_START, ids=_ids(AT_START), indirect=True)
def test_transferviz_info_is_one_line(damaged, capsys):
    from transferviz.cli import main

    root, d = damaged
    assert main(["info", str(root)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    _one_line_naming(err, d)


@pytest.mark.parametrize("damaged", AT_START, ids=_ids(AT_START), indirect=True)
def test_dashboard_refuses_to_start(damaged, capsys, monkeypatch):
    """``python -m dashboard`` stops with one line and exit 2 (it never reaches ``app.run``)."""
    import dash

    from dashboard.__main__ import main

    def serve(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the dashboard started serving a damaged cache")

    monkeypatch.setattr(dash.Dash, "run", serve)
    root, d = damaged
    assert main(["--cache", str(root), "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    _one_line_naming(err, d)


def test_gunicorn_import_fails_with_the_one_line(tiny_cache, tmp_path, monkeypatch):
    """gunicorn prints an AppImportError as one line and stops (any other exception: a traceback per worker)."""
    from gunicorn.errors import AppImportError

    root = copy_cache(tiny_cache, tmp_path / "tiny").root
    _truncate(root / TSNE)
    monkeypatch.setenv("TRANSFERVIZ_CACHE", str(root))
    monkeypatch.delitem(sys.modules, "dashboard.wsgi", raising=False)
    with pytest.raises(AppImportError) as err:
        importlib.import_module("dashboard.wsgi")
    assert str(err.value).startswith("error: cache ")
    _one_line_naming(str(err.value), Damage(TSNE, _truncate, lambda c: c))


def test_instances_never_fall_back_to_another_table(tiny_cache, tmp_path):
    """Issue 15 item 7: without data/instances.parquet the API read data/base.parquet, which lacks every
    model column, and the dashboard died at start with an AttributeError."""
    c = copy_cache(tiny_cache, tmp_path / "tiny", "instances.parquet")
    assert (c.root / "data/base.parquet").is_file()
    with pytest.raises(TransferVizError, match="data/instances.parquet is missing"):
        c.instances


def test_an_unlisted_optional_artifact_stays_optional(tiny_cache, tmp_path):
    """What the manifest does not list (a build that skipped the pixel map) is None, not an error."""
    c = copy_cache(tiny_cache, tmp_path / "tiny", "pixel_tsne.npy")  # the copy's manifest no longer lists it
    assert "analysis/pixel_tsne.npy" not in c.manifest["artifacts"]
    assert c.pixel_tsne() is None
    c.verify()  # and the start-up check does not ask for it


def test_the_check_reads_each_array_header_once(tiny_cache, tmp_path, monkeypatch):
    """Validation is header-only and once per artifact per Cache object: the fast path stays a memo hit."""
    from numpy.lib import format as npy

    c = copy_cache(tiny_cache, tmp_path / "tiny")
    calls = []
    real = npy.read_magic
    monkeypatch.setattr(npy, "read_magic", lambda f: calls.append(1) or real(f))
    for _ in range(5):
        c.tsne()
        c.array("analysis/confusion.npy", mmap=False)
    assert len(calls) == 2


# --- a running dashboard whose files are damaged after it started ----------------------------------

@pytest.fixture(scope="module")
def live(tiny_cache, tmp_path_factory):
    """An app over its own copy (the start-up check passed), and that copy's folder."""
    from dashboard.app import create_app

    root = copy_cache(tiny_cache, tmp_path_factory.mktemp("live") / "tiny").root
    return create_app(root), root


@pytest.fixture(autouse=True)
def _quiet_guard_logs(caplog):
    caplog.set_level(logging.CRITICAL, logger="dashboard.guards")


LIVE_SCATTER = [("analysis/tsne.npy", _truncate, [0, 1]),       # mapped at the start: cut short since
                ("analysis/class_tsne.npy", _truncate, [2]),     # read first now (one class: its own map)
                ("analysis/class_tsne.npy", _missing, [3])]


@pytest.mark.parametrize("rel,how,classes", LIVE_SCATTER, ids=[f"{r}-{h.__name__[1:]}" for r, h, _ in LIVE_SCATTER])
def test_a_view_over_a_file_damaged_after_start_keeps_its_state_and_says_why(live, rel, how, classes):
    app, root = live
    p = root / rel
    original = p.read_bytes()
    how(p)
    try:
        key = find_callback(app, "..inst-scatter.figure")
        r = app.server.test_client().post("/_dash-update-component", json=callback_payload(app, key, {0: classes}))
    finally:
        p.write_bytes(original)
    assert r.status_code == 200, r.data[:300]
    answer = r.get_json()
    assert answer["response"] == {}  # every output as it was
    alert = answer["sideUpdate"][ERROR_ALERT]
    assert alert["is_open"] is True
    _one_line_naming(alert["children"], Damage(rel, how, lambda c: c))


@pytest.mark.parametrize("rel,url", [(THUMB, "/thumb/5.png"), (FEATVIS, "/featvis/target/features.0/0.png")],
                         ids=["thumbnail", "featvis"])
def test_an_image_damaged_after_start_is_a_404(live, rel, url):
    app, root = live
    p = root / rel
    original = p.read_bytes()
    client = app.server.test_client()
    assert client.get(url).status_code == 200
    _truncate(p)
    try:
        r = client.get(url)
    finally:
        p.write_bytes(original)
    assert r.status_code == 404 and b"Traceback" not in r.data


def test_the_page_has_the_error_alert_closed(live):
    app, _ = live
    r = app.server.test_client().get("/_dash-layout")
    assert r.status_code == 200 and ERROR_ALERT.encode() in r.data


def test_an_unreadable_file_says_so_and_how_to_fix_it(tiny_cache, monkeypatch):
    """A file this user may not read (safetensors wrote weights 0600) is no damage: the fix is a chmod, not a
    rebuild. (As root every file is readable: os.access answers for the file as another user would.)"""
    import os

    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: not str(p).endswith(WEIGHTS) and real(p, mode))
    with pytest.raises(TransferVizError) as err:
        Cache.open(tiny_cache.root).verify()
    message = str(err.value)
    assert "\n" not in message and f"{WEIGHTS} is not readable by this user" in message and "chmod -R a+rX" in message
