"""``transferviz featvis CACHE --layer L --neurons ...`` (issue 13, item 3): renders neurons the build left out
into a new build that hard-links the rest, publishes it atomically, and leaves the published build as it was."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from transferviz.cache import BUILDS_DIR, Cache
from transferviz.cli import main
from transferviz.featvis.extend import parse_neurons

LAYER = "features.3"
DROPPED = {"source": [5, 6], "target": [5]}  # the build "left out" 5 in both models, 6 in the source model


def _run_copy(cache: Cache, root: Path, drop: dict[str, list[int]], without_featvis: bool = False) -> Path:
    """A run link ``root/tiny`` -> ``root/.builds/<copy of the tiny build>`` whose featvis lacks ``drop``
    (the manifest recording what is left, as a build that had not rendered them would)."""
    build = root / BUILDS_DIR / "tiny-20260101-000000-1-abcdef"
    shutil.copytree(cache.root, build, ignore=shutil.ignore_patterns(".lock"))
    manifest = json.loads((build / "manifest.json").read_text())
    if without_featvis:  # a build with --no-featvis
        shutil.rmtree(build / "featvis")
        manifest["artifacts"] = {r: a for r, a in manifest["artifacts"].items() if not r.startswith("featvis")}
        manifest["stages"]["featvis"].update(artifacts=[], notes={"skipped": True})
    for which, ns in drop.items():
        for n in ns:
            (build / "featvis" / which / LAYER / f"{n}.png").unlink()
        count = sum(1 for _ in (build / "featvis" / which).rglob("*.png"))
        manifest["artifacts"][f"featvis/{which}"]["shape"] = [count]
    (build / "manifest.json").write_text(json.dumps(manifest, indent=1))
    (root / "tiny").symlink_to(os.path.relpath(build, root))
    return build


def _snapshot(build: Path) -> dict[str, tuple[int, int, int]]:
    """Every file of a build folder: (inode, size, mtime_ns), to see that nothing in it changed."""
    return {str(p.relative_to(build)): (p.stat().st_ino, p.stat().st_size, p.stat().st_mtime_ns)
            for p in build.rglob("*") if p.is_file() and p.name != ".lock"}


@pytest.fixture(scope="module")
def extended(tiny_cache, tmp_path_factory):
    """The copy before and after one ``transferviz featvis`` that renders the dropped neurons back."""
    root = tmp_path_factory.mktemp("featvis-extend")
    old = _run_copy(tiny_cache, root, DROPPED)
    before = _snapshot(old)
    old_manifest = (old / "manifest.json").read_text()
    rc = main(["featvis", str(root / "tiny"), "--layer", LAYER, "--neurons", "4-6", "--device", "cpu", "--quiet"])
    return {"root": root, "old": old, "before": before, "old_manifest": old_manifest, "rc": rc}


def test_adds_the_neurons_in_a_new_published_build(extended, tiny_cache):
    root, old = extended["root"], extended["old"]
    assert extended["rc"] == 0
    new = (root / "tiny").resolve()
    assert new != old and new.parent == root / BUILDS_DIR
    cache = Cache.open(root / "tiny")
    cache.verify()  # every artifact against the new manifest's records (PNG counts included)
    for which, ns in DROPPED.items():
        for n in ns:  # a neuron's render depends only on (seed, layer, index): the build's very bytes
            assert cache.featvis(which, LAYER, n) == tiny_cache.featvis(which, LAYER, n), (which, n)
        assert cache.manifest["artifacts"][f"featvis/{which}"]["shape"] == \
            tiny_cache.manifest["artifacts"][f"featvis/{which}"]["shape"]
    # the change table recomputed over every neuron rendered in both models: the full build's, exactly
    pd.testing.assert_frame_equal(cache.feature_change, tiny_cache.feature_change, check_exact=True)
    added = cache.manifest["stages"]["featvis"]["notes"]["added"]
    assert added[-1]["layer"] == LAYER and added[-1]["neurons"] == DROPPED


def test_the_published_build_is_unchanged_and_the_rest_is_hard_linked(extended):
    old, new = extended["old"], (extended["root"] / "tiny").resolve()
    assert _snapshot(old) == extended["before"]
    assert (old / "manifest.json").read_text() == extended["old_manifest"]
    rewritten = {"featvis/change.parquet", "featvis/meta.json", "manifest.json"}
    fresh = {f"featvis/{w}/{LAYER}/{n}.png" for w, ns in DROPPED.items() for n in ns}
    after = _snapshot(new)
    assert set(after) == set(extended["before"]) | fresh
    for rel, (ino, size, _) in after.items():
        if rel in rewritten or rel in fresh:
            assert ino != extended["before"].get(rel, (None,))[0], rel
        else:
            assert ino == extended["before"][rel][0] and size == extended["before"][rel][1], rel


def test_asking_again_publishes_nothing(extended, capsys):
    link = extended["root"] / "tiny"
    build = link.resolve()
    assert main(["featvis", str(link), "--layer", LAYER, "--neurons", "5,6", "--device", "cpu", "--quiet"]) == 0
    assert "already rendered" in capsys.readouterr().out and link.resolve() == build


def test_a_build_without_featvis_gets_them(tiny_cache, tmp_path):
    """--no-featvis builds have no featvis folder, table or settings file: the command makes them."""
    _run_copy(tiny_cache, tmp_path, {}, without_featvis=True)
    assert main(["featvis", str(tmp_path / "tiny"), "--layer", "classifier.4", "--neurons", "0", "--model", "target",
                 "--device", "cpu", "--quiet"]) == 0
    cache = Cache.open(tmp_path / "tiny")
    cache.verify()
    assert cache.featvis("target", "classifier.4", 0) == tiny_cache.featvis("target", "classifier.4", 0)
    assert cache.featvis_neurons("source", "classifier.4") == frozenset() and cache.feature_change is None


@pytest.mark.parametrize("args,words", [
    (["--layer", "nope", "--neurons", "1"], ["unknown layer 'nope'", "features.3"]),
    (["--layer", LAYER, "--neurons", "30-33"], ["32, 33 out of range", "32 neurons (0-31)"]),
    (["--layer", LAYER, "--neurons", "3-a"], ["'3-a' is not a neuron index or range"]),
    (["--layer", LAYER, "--neurons", "9-2"], ["'9-2' is not an increasing range"]),
], ids=["layer", "range", "syntax", "order"])
def test_bad_arguments_are_one_line(extended, capsys, args, words):
    link = extended["root"] / "tiny"
    build = link.resolve()
    assert main(["featvis", str(link), *args, "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and all(w in err for w in words), err
    assert link.resolve() == build


def test_a_build_folder_is_not_a_run_link(extended, capsys):
    """A published build never changes in place: given the folder itself, the command refuses."""
    assert main(["featvis", str(extended["old"]), "--layer", LAYER, "--neurons", "1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "is not a run's link" in err and "e.g. cache/digits" in err


def test_parse_neurons():
    assert parse_neurons("3,17,40-45, 3") == [3, 17, 40, 41, 42, 43, 44, 45]
    assert parse_neurons("0") == [0]


def test_the_route_serves_a_placeholder_for_a_neuron_not_rendered(tiny_cache, tmp_path):
    """Never a broken image: a neuron without a visualization gets an SVG that says "not rendered" and names
    the command (not kept by the browser: a later command may render it); a neuron past the layer is a 404."""
    from dashboard.app import create_app

    _run_copy(tiny_cache, tmp_path, {"target": [5]})
    client = create_app(tmp_path / "tiny").server.test_client()
    r = client.get(f"/featvis/target/{LAYER}/5.png")
    assert r.status_code == 200 and r.mimetype == "image/svg+xml" and r.headers["Cache-Control"] == "no-store"
    body = r.data.decode()
    assert "not" in body and "rendered" in body
    # the source model has neuron 5: the command renders the target's alone
    assert f"transferviz featvis {tmp_path / 'tiny'} --layer {LAYER} --neurons 5 --model target" in body
    ok = client.get(f"/featvis/source/{LAYER}/5.png")
    assert ok.status_code == 200 and ok.mimetype == "image/png" and ok.data == tiny_cache.featvis("source", LAYER, 5)
    assert client.get(f"/featvis/target/{LAYER}/32.png").status_code == 404
    assert client.get("/featvis/target/nope/1.png").status_code == 404


def test_a_bad_argument_touches_nothing(tiny_cache, tmp_path, capsys):
    """Refused before the run's lock is taken: not even the lock file (a holder record) is written."""
    _run_copy(tiny_cache, tmp_path, {})
    assert main(["featvis", str(tmp_path / "tiny"), "--layer", LAYER, "--neurons", "99", "--quiet"]) == 2
    assert "out of range" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / BUILDS_DIR).iterdir()) == ["tiny-20260101-000000-1-abcdef"]
