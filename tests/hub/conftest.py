"""Synthetic folders of runs for the hub's tests: copies of the session's tiny cache, each edited into a
run of its own (a class renamed, known CKA matrices and estimates written), published as the build
publishes (``<root>/<run>`` -> ``.builds/<run>-...``). Seconds, no build."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import rerecord


def add_cka(root: Path, target: np.ndarray, source: np.ndarray | None = None) -> None:
    """Writes the cka stage's artifacts (``Cache.cka``'s files) into the run at ``root``, recorded in its
    manifest as the build records them."""
    from transferviz.cache import Cache

    layers = Cache.open(root).layers
    d = root / "analysis" / "cka"
    d.mkdir(parents=True, exist_ok=True)
    manifest = json.loads((root / "manifest.json").read_text())
    for domain, m in (("target", target), ("source", target if source is None else source)):
        rel = f"analysis/cka/{domain}.npy"
        np.save(root / rel, np.asarray(m, dtype=np.float64))
        manifest["artifacts"][rel] = {"path": rel, "kind": "array", "meaning": "test CKA", "dtype": "float64",
                                      "shape": list(np.shape(m))}
    (d / "meta.json").write_text(json.dumps({"layers": layers}))
    manifest["artifacts"]["analysis/cka/meta.json"] = {"path": "analysis/cka/meta.json", "kind": "json",
                                                       "meaning": "test CKA layers"}
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1))


def add_estimates(root: Path, values: dict[str, float]) -> None:
    """Writes the transfer stage's estimates (``Cache.transfer_estimates``' file) into the run at ``root``."""
    rel = "analysis/transfer/estimates.json"
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(json.dumps(values))
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["artifacts"][rel] = {"path": rel, "kind": "json", "meaning": "test estimates"}
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1))


def rename_class(root: Path, old: str, new: str) -> None:
    """Renames class ``old`` to ``new`` in the run at ``root`` (its class list and its class table): a run
    whose class set differs from the others' in one class."""
    meta_path = root / "data" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["classes"] = [new if c == old else c for c in meta["classes"]]
    meta_path.write_text(json.dumps(meta))
    table_path = root / "analysis" / "class_table.parquet"
    t = pd.read_parquet(table_path)
    t["class"] = t["class"].astype(str).replace({old: new})
    t.to_parquet(table_path, index=False)
    rerecord(root, "analysis/class_table.parquet")


def set_class_diff(root: Path, diffs: dict[str, float]) -> None:
    """Sets the class table's target-minus-source accuracy of the named classes (known test values)."""
    table_path = root / "analysis" / "class_table.parquet"
    t = pd.read_parquet(table_path)
    for cls, v in diffs.items():
        t.loc[t["class"].astype(str) == cls, "diff"] = v
    t.to_parquet(table_path, index=False)


def publish_copy(source: Path, root: Path, run: str) -> Path:
    """A copy of the build at ``source`` published as run ``run`` in the cache folder ``root``; the run's
    build folder (write to it before the hub opens it)."""
    build = root / ".builds" / f"{run}-20261206-120000-1-abcdef"
    shutil.copytree(source, build, ignore=shutil.ignore_patterns(".lock"))
    (root / run).symlink_to(Path(".builds") / build.name)
    return build


@pytest.fixture(scope="session")
def three_runs(tiny_cache, tmp_path_factory) -> Path:
    """A cache folder of three runs of the tiny cache: ``alpha`` and ``beta`` (known CKA and estimates,
    beta's class gains known), ``gamma`` with class "9" renamed "nine" and no CKA or estimates (an older
    build), plus ``broken``, a link to nothing."""
    root = tmp_path_factory.mktemp("hub-runs")
    n = len(tiny_cache.layers)
    alpha = publish_copy(tiny_cache.root, root, "alpha")
    beta = publish_copy(tiny_cache.root, root, "beta")
    gamma = publish_copy(tiny_cache.root, root, "gamma")
    for d in (alpha, beta, gamma):  # the session cache may already hold the stages: every run says what it is
        manifest = json.loads((d / "manifest.json").read_text())
        for rel in [r for r in manifest["artifacts"] if r.startswith(("analysis/cka", "analysis/transfer"))]:
            del manifest["artifacts"][rel]
        (d / "manifest.json").write_text(json.dumps(manifest, indent=1))
        shutil.rmtree(d / "analysis" / "cka", ignore_errors=True)
        shutil.rmtree(d / "analysis" / "transfer", ignore_errors=True)
    # alpha: CKA falls from 1.0 by 0.1 a layer on the diagonal; beta: 0.5 everywhere
    diag_a = np.eye(n) * (1.0 - 0.1 * np.arange(n)) + (1 - np.eye(n)) * 0.2
    add_cka(alpha, diag_a, source=diag_a * 0.5)
    add_cka(beta, np.full((n, n), 0.5))
    add_estimates(alpha, {"logme": -1.0, "leep": -2.0, "nce": -1.5, "hscore": 3.0})
    add_estimates(beta, {"logme": -0.5, "leep": -2.5, "nce": -1.0, "hscore": 2.0})
    set_class_diff(beta, {"0": 0.25, "1": -0.5})
    rename_class(gamma, "9", "nine")
    (root / "broken").symlink_to(Path(".builds") / "broken-20261206-120000-1-000000")
    return root


@pytest.fixture(scope="session")
def other_arch_run(three_runs, tmp_path_factory) -> Path:
    """A run recorded as another architecture that analysed one layer fewer (its last dropped from the layer
    list), beside a copy of ``alpha``: the pair a comparison lines up by layer position."""
    root = tmp_path_factory.mktemp("hub-arch")
    publish_copy((three_runs / "alpha").resolve(), root, "alpha")
    delta = publish_copy((three_runs / "alpha").resolve(), root, "delta")
    manifest = json.loads((delta / "manifest.json").read_text())
    manifest["config"]["model"]["arch"] = "resnet18"
    (delta / "manifest.json").write_text(json.dumps(manifest, indent=1))
    layers_path = delta / "models" / "layers.json"
    info = json.loads(layers_path.read_text())
    info["layers"] = info["layers"][:-1]
    layers_path.write_text(json.dumps(info))
    n = len(info["layers"])
    add_cka(delta, np.eye(n) * 0.9 + 0.05)
    return root
