"""Shared fixtures: a tiny config, cache (seconds to build) and app, and the real demo cache (built once);
helpers to copy a cache and to send a request through Dash's callback endpoint."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as transferviz/__init__.py does, before torch loads
import torch  # noqa: E402

REPO = Path(__file__).resolve().parent.parent

# Two cores: keep torch from oversubscribing when pytest-xdist runs workers side by side.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

#: About the most the suite holds on disk at once (the demo, the 31-class and 100k fixtures, one
#: architecture build): below it, the header says so before hundreds of setup errors would.
SUITE_DISK_GB = 5.0


def pytest_report_header(config) -> list[str]:
    import tempfile

    tmp = Path(tempfile.gettempdir())
    free = shutil.disk_usage(tmp).free / 2**30
    line = f"transferviz: {free:.1f} GB free under {tmp}"
    if free < SUITE_DISK_GB:
        line += (f" -- WARNING: the suite writes up to about {SUITE_DISK_GB:.0f} GB of caches there; free space "
                 f"or point TMPDIR at a larger disk")
    return [line]


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch on one thread for a module of many tiny ops, where two threads contend with each other and
    with whatever else shares the machine's two cores (``pytest.mark.usefixtures("one_torch_thread")``)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_config_dict(name: str = "tiny", **overrides) -> dict:
    cfg = {
        "name": name,
        "seed": 0,
        "source": {"kind": "synthetic_digits", "n_per_class": 16},
        "target": {"kind": "sklearn_digits", "max_per_class": 14},
        "model": {"arch": "small_alexnet", "input_size": 28},
        "training": {"source": {"epochs": 2, "lr": 0.003}, "target": {"epochs": 2, "lr": 0.002}},
        "analysis": {"n_steps": 4, "discriminability_folds": 3, "discriminability_permutations": 4,
                     "discriminability_bootstrap": 20, "discriminability_stability_null": 2, "tsne_perplexity": 10,
                     "correspondence_permutations": 50},
        "featvis": {"steps": 4},
    }
    for key, value in overrides.items():
        cfg[key] = value
    return cfg


@pytest.fixture(scope="session")
def tiny_config():
    from transferviz.config import parse_config

    return parse_config(tiny_config_dict(), "tiny.yaml")


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory, tiny_config):
    """A complete small cache, every stage run (featvis included).

    Set TRANSFERVIZ_TEST_TINY_CACHE to a built tiny cache folder to skip the build while iterating
    (as TRANSFERVIZ_TEST_DEMO_CACHE does for the demo).
    """
    from transferviz.cache import Cache

    given = os.environ.get("TRANSFERVIZ_TEST_TINY_CACHE")
    if given:
        return Cache.open(given)
    from transferviz.build import build

    root = tmp_path_factory.mktemp("tiny-cache")
    build(tiny_config, root, torch.device("cpu"), progress=False, log=lambda m: None)
    return Cache.open(root / "tiny")


def large_config_dict(data_root: Path, name: str = "large") -> dict:
    """The paper's scale in a test's time: torchvision AlexNet at 64 px (two 4096-unit linear layers,
    ~938 important neurons a class) over 31 generated Office-31-shaped classes, a handful of images each."""
    return {
        "name": name,
        "seed": 0,
        "source": {"kind": "image_folder", "root": str(data_root), "domain": "amazon"},
        "target": {"kind": "image_folder", "root": str(data_root), "domain": "webcam"},
        "val_fraction": 0.2,
        "model": {"arch": "alexnet", "input_size": 64},
        "training": {"source": {"epochs": 1, "lr": 0.0003, "optimizer": "adam"},
                     "target": {"epochs": 1, "lr": 0.0001, "optimizer": "adam"}},
        "analysis": {"n_steps": 2, "discriminability_folds": 3, "discriminability_permutations": 4,
                     "discriminability_bootstrap": 20, "discriminability_stability_null": 2, "tsne_perplexity": 10,
                     "correspondence_permutations": 20},  # the 4096 x 4096 pair's null: ~0.7 s a class at 200
        "featvis": {"enabled": False},  # 4,512 neurons a model: a minute of CI for images no test here reads
    }


@pytest.fixture(scope="session")
def large_cache(tmp_path_factory):
    """A real cache at the paper's scale (31 classes, 4096-unit layers; see :func:`large_config_dict`),
    built once per session in about a minute. Set TRANSFERVIZ_TEST_LARGE_CACHE to a built one to skip it."""
    from transferviz.cache import Cache

    given = os.environ.get("TRANSFERVIZ_TEST_LARGE_CACHE")
    if given:
        return Cache.open(given)
    from transferviz.build import build
    from transferviz.config import parse_config
    from transferviz.data.office_shapes import write_office_shapes

    root = tmp_path_factory.mktemp("large-cache")
    write_office_shapes(root / "data", {"amazon": 6, "webcam": 6})
    cfg = parse_config(large_config_dict(root / "data"), "large.yaml")
    build(cfg, root, torch.device("cpu"), progress=False, log=lambda m: None)
    return Cache.open(root / "large")


@pytest.fixture(scope="session")
def tiny_app(tiny_cache):
    """The dashboard app on the tiny cache (built once; tests only read it or send it requests)."""
    from dashboard.app import create_app

    return create_app(tiny_cache.root)


@pytest.fixture(scope="session")
def inflated_cache(tmp_path_factory, tiny_cache):
    """Factory ``inflated_cache(n, src=None)``: the tiny cache (or ``src``) inflated to ``n`` instances by
    tools/inflate_cache.py (repeated rows, fresh ids, jittered maps), made once per (src, n) per session:
    ~1 s for 20k rows of the tiny cache, ~6 s for 100k. A scale test's cache, not a build."""
    import sys

    sys.path.insert(0, str(REPO / "tools"))
    from inflate_cache import inflate

    from transferviz.cache import Cache

    made: dict[tuple[str, int], Cache] = {}

    def make(n: int, src=None) -> Cache:
        base = src if src is not None else tiny_cache
        key = (str(base.root), int(n))
        if key not in made:
            dst = tmp_path_factory.mktemp("inflated") / f"{base.root.name}-{n}"
            made[key] = Cache.open(inflate(base.root, dst, int(n), progress=False))
        return made[key]

    return make


def copy_cache(cache, dest: Path, *drop: str):
    """A real copy of ``cache`` at ``dest`` without the files and folders named ``drop``
    (``shutil.ignore_patterns``: matched by name at any depth), opened as a Cache.

    Tests that rewrite files of a cache work on such a copy, never on the shared one.
    """
    from transferviz.cache import Cache

    shutil.copytree(cache.root, dest, ignore=shutil.ignore_patterns(*drop) if drop else None)
    if drop:  # as a build without them would have it: the manifest lists no dropped artifact (Cache checks it)
        manifest = json.loads((dest / "manifest.json").read_text())
        manifest["artifacts"] = {rel: a for rel, a in manifest["artifacts"].items() if (dest / rel).exists()}
        (dest / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return Cache.open(dest)


def rerecord(root: Path, *rels: str) -> None:
    """Records in the manifest the shapes of artifacts a test rewrote on purpose (rows dropped from a table,
    ...), as the build would have: the Cache checks every artifact against its record."""
    import numpy as np
    import pyarrow.parquet as pq

    manifest = json.loads((root / "manifest.json").read_text())
    for rel in rels:
        record = manifest["artifacts"][rel]
        if record["kind"] == "table":
            md = pq.read_metadata(root / rel)
            record["shape"] = [md.num_rows, md.num_columns]
        else:
            a = np.load(root / rel, mmap_mode="r")
            record["dtype"], record["shape"] = str(a.dtype), list(a.shape)
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1))


def dispatch(app, output: str, outputs: list[dict], inputs: list[dict], changed: list[str],
             state: list[dict] | tuple = ()) -> dict:
    """One request through Dash's ``/_dash-update-component`` endpoint, as the browser sends it;
    the JSON answer (``{}`` for a 204: every output was ``no_update``)."""
    payload = {"output": output, "outputs": outputs, "inputs": inputs, "changedPropIds": changed,
               "state": list(state)}
    r = app.server.test_client().post("/_dash-update-component", json=payload)
    assert r.status_code in (200, 204), r.data[:500]
    return r.get_json() if r.status_code == 200 else {}


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory):
    """The real embedded demo, built once per test session from configs/digits.yaml.

    Set TRANSFERVIZ_TEST_DEMO_CACHE to a built cache folder to skip the build while iterating.
    """
    from transferviz.cache import Cache

    given = os.environ.get("TRANSFERVIZ_TEST_DEMO_CACHE")
    if given:
        return Cache.open(given)
    from transferviz.build import build
    from transferviz.config import load_config

    root = tmp_path_factory.mktemp("demo-cache")
    build(load_config(REPO / "configs" / "digits.yaml"), root, torch.device("cpu"), progress=False,
          log=lambda m: None)
    return Cache.open(root / "digits")
