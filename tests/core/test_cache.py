"""The cache contract: the Cache API round trip, stage reuse and atomic publishing."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import yaml

import transferviz.build as build_package
from tests.conftest import REPO, tiny_config_dict
from transferviz.build import build
from transferviz.cache import FOLDER_LOCK, Cache, current_build
from transferviz.config import parse_config
from transferviz.errors import TransferVizError


def test_api_round_trip(tiny_cache: Cache):
    c = tiny_cache
    df = c.instances
    for col in ["id", "domain", "split", "label", "source_pred", "source_loss", "source_conf",
                "target_pred", "target_loss", "target_conf"]:
        assert col in df.columns
    assert list(df["id"]) == list(range(len(df)))
    assert set(df.domain) == {"source", "target"} and set(df.split) == {"train", "val"}
    assert c.classes == [str(i) for i in range(10)]
    assert c.layers == ["features.0", "features.3", "features.6", "features.8", "features.10",
                        "classifier.1", "classifier.4"]
    assert set(c.history.model) == {"source", "target"}
    assert {"epoch", "source_train", "target_train", "val"} <= set(c.history.columns)
    ids = np.array([0, 5, len(df) - 1])
    x = c.inputs(ids)
    assert tuple(x.shape) == (3, 3, 28, 28) and x.dtype == torch.float32
    with torch.no_grad():
        for which in ("source", "target"):
            model = c.model(which)
            assert not model.training
            pred = model(x).argmax(1).numpy()
            assert (pred == df.loc[ids, f"{which}_pred"].to_numpy()).all()
    assert c.thumbnail(5)[:8] == b"\x89PNG\r\n\x1a\n"
    assert isinstance(c.images, np.memmap)


def test_manifest_describes_artifacts(tiny_cache: Cache):
    m = tiny_cache.manifest
    assert m["schema_version"] == 1
    assert m["config"]["name"] == "tiny"
    assert "torch" in m["packages"]
    for name, stage in m["stages"].items():
        assert stage["seconds"] >= 0
        for rel in stage["artifacts"]:
            art = m["artifacts"][rel]
            assert art["meaning"]
            assert (tiny_cache.root / rel).exists()
            if art["kind"] == "array":
                arr = np.load(tiny_cache.root / rel, mmap_mode="r")
                assert list(arr.shape) == art["shape"] and str(arr.dtype) == art["dtype"]
    # no pickle anywhere: every file is one of the declared formats
    exts = {p.suffix for p in tiny_cache.root.rglob("*") if p.is_file() and p.name != FOLDER_LOCK}
    assert exts <= {".npy", ".parquet", ".json", ".safetensors", ".png"}


def test_epoch_checkpoints_and_model_errors(tiny_cache: Cache):
    assert tiny_cache.epochs("target") == [0, 1, 2]
    assert tiny_cache.epochs("source") == [1, 2]
    m0 = tiny_cache.model("target", epoch=0)
    src = tiny_cache.model("source")
    for a, b in zip(m0.state_dict().values(), src.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(TransferVizError, match="available epochs"):
        tiny_cache.model("target", epoch=99)
    with pytest.raises(TransferVizError, match="'source' or 'target'"):
        tiny_cache.model("teacher")  # type: ignore[arg-type]


def test_open_errors(tmp_path):
    with pytest.raises(TransferVizError, match="no cache at"):
        Cache.open(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"schema_version": 999}))
    with pytest.raises(TransferVizError, match="schema version 999.*--force"):
        Cache.open(tmp_path)



@pytest.mark.parametrize("content, says", [
    (b'{"schema_version": 1, "config": {', "manifest.json is damaged"),  # truncated mid-write
    (b"\xff\xfe\x00", "manifest.json is damaged"),                      # not text
    (b"[1, 2]", "manifest.json holds no manifest (a list)"),
    (b'{"schema_version": 1, "artifacts": {}, "stages": {}}', "manifest.json lacks config"),
    (b'{"schema_version": 1, "config": {}}', "manifest.json lacks artifacts, stages"),
])
def test_a_damaged_manifest_is_one_line_naming_the_fix(tmp_path, content, says):
    """Issue 15, item 7 (part): a truncated or hand-edited manifest is a one-line error naming the file and
    the fix, in Cache.open (so in `transferviz info` and the dashboard), never a JSONDecodeError or KeyError."""
    (tmp_path / "manifest.json").write_bytes(content)
    with pytest.raises(TransferVizError) as err:
        Cache.open(tmp_path)
    msg = str(err.value)
    assert says in msg and "\n" not in msg and msg.endswith("rebuild it with 'transferviz build CONFIG --force'")


def _quiet_build(cfg, root, **kw):
    return build(cfg, root, torch.device("cpu"), progress=False, log=lambda m: None, **kw)


def test_reuse_and_invalidation(tmp_path):
    cfg = parse_config(tiny_config_dict(featvis={"enabled": False}), "t.yaml")
    first = _quiet_build(cfg, tmp_path)
    assert not any(s["reused"] for s in first.stages)
    second = _quiet_build(cfg, tmp_path)
    reused = {s["name"]: s["reused"] for s in second.stages}
    assert reused.pop("data") is False  # always re-read: its content hash guards everything else
    assert all(reused.values()), reused
    c1, c2 = first.build_dir, second.build_dir
    assert np.array_equal(np.load(c1 / "analysis/conductance/target/features.0.npy"),
                          np.load(c2 / "analysis/conductance/target/features.0.npy"))
    # a new analysis setting re-runs the analysis but keeps the trained models
    cfg3 = parse_config(tiny_config_dict(featvis={"enabled": False},
                                         analysis={"n_steps": 3, "discriminability_folds": 3,
                                                   "tsne_perplexity": 10}), "t.yaml")
    third = {s["name"]: s["reused"] for s in _quiet_build(cfg3, tmp_path).stages}
    assert third["models"] and third["forward"] and not third["attribute"]
    forced = _quiet_build(cfg3, tmp_path, force=True)
    assert not any(s["reused"] for s in forced.stages)
    # only the newest two finished builds are kept
    assert len([d for d in (tmp_path / ".builds").iterdir() if d.is_dir()]) == 2


def test_failed_build_leaves_previous_cache(tmp_path, monkeypatch):
    cfg = parse_config(tiny_config_dict(featvis={"enabled": False}), "t.yaml")
    _quiet_build(cfg, tmp_path)
    before = current_build(tmp_path, "tiny")
    manifest = (before / "manifest.json").read_text()

    def boom(ctx):
        raise RuntimeError("disk on fire")

    stages = [dataclasses.replace(s, run=boom) if s.name == "forward" else s for s in build_package.STAGES]
    monkeypatch.setattr(build_package, "STAGES", stages)
    with pytest.raises(RuntimeError, match="disk on fire"):
        _quiet_build(cfg, tmp_path, force=True)
    assert current_build(tmp_path, "tiny") == before
    assert (before / "manifest.json").read_text() == manifest
    assert len(Cache.open(tmp_path / "tiny").instances) > 0


def test_killed_build_leaves_previous_cache(tmp_path):
    """A real process killed mid-build (SIGKILL: no cleanup runs) must not disturb the published cache."""
    cfg_path = tmp_path / "tiny.yaml"
    cfg_path.write_text(yaml.safe_dump(tiny_config_dict(featvis={"enabled": False})))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "transferviz", "build", str(cfg_path), "--cache-dir", str(tmp_path / "c"), "--quiet"]
    subprocess.run(cmd, check=True, env=env, capture_output=True, cwd=REPO)
    before = current_build(tmp_path / "c", "tiny")
    manifest = (before / "manifest.json").read_text()
    proc = subprocess.Popen(cmd + ["--force"], env=env, stderr=subprocess.PIPE, text=True, cwd=REPO)
    deadline = time.time() + 120
    for line in proc.stderr:  # wait until training is under way, then kill without warning
        if "[models]" in line or time.time() > deadline:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert current_build(tmp_path / "c", "tiny") == before
    assert (before / "manifest.json").read_text() == manifest
    c = Cache.open(tmp_path / "c" / "tiny")
    assert len(c.instances) > 0 and c.conductance("target", c.layers[0]).shape[0] == len(c.instances)
    # the next build prunes the abandoned half-written folder (its lock died with the build) and succeeds
    subprocess.run(cmd, check=True, env=env, capture_output=True, cwd=REPO)
    assert Cache.open(tmp_path / "c" / "tiny").manifest["stages"]["models"]["reused"]


def test_analysis_accessors(tiny_cache: Cache):
    c = tiny_cache
    layer, nxt = c.layers[1], c.layers[2]
    n = c.conductance("target", layer).shape[1]
    imp = c.important_neurons("target", layer, "3")
    assert 1 <= len(imp) <= n and len(set(imp)) == len(imp)
    s = c.similarity(layer, 3)
    assert s.shape == (c.conductance("source", layer).shape[1], n) and np.isfinite(s).all()
    idx, val = c.most_similar(layer, 3, "t2s")
    assert idx.shape == (n, 5) and (np.diff(val, axis=1) <= 1e-6).all()
    w = c.important_weights("target", layer, nxt, 3)
    assert {"n1", "n2", "count", "value", "corresponds"} <= set(w.columns)
    with pytest.raises(TransferVizError, match="not consecutive"):
        c.important_weights("target", c.layers[0], nxt, 3)
    with pytest.raises(TransferVizError, match="unknown layer"):
        c.conductance("target", "features.99")
    with pytest.raises(TransferVizError, match="unknown class"):
        c.similarity(layer, "eleven")
    d = c.discriminability("target", 3)
    assert d["summary"]["status"] == "ok" and len(d["points"]) == (c.instances.label == 3).sum()
    assert c.tsne().shape == (len(c.instances), 2)
    assert c.confusion("target", "target").sum() == (c.instances.domain == "target").sum()
    top = c.top_instances("target", layer, int(imp[0]))
    assert top.shape == (2, 5)
    assert (c.instances.loc[top[0][top[0] >= 0], "domain"] == "source").all()
    png = c.featvis("target", layer, int(imp[0]))
    assert png is not None and png[:4] == b"\x89PNG"
    assert c.feature_change is not None and len(c.feature_change) > 0


def test_identical_weights_are_written_once_and_linked(tmp_path):
    """The final model repeats its last epoch's checkpoint: one file on disk, two names, same tensors."""
    from safetensors.torch import load_file

    from transferviz.cache import CacheWriter

    w = CacheWriter(tmp_path)
    a = {"w": torch.arange(12, dtype=torch.float32).reshape(3, 4), "b": torch.zeros(3, dtype=torch.bfloat16)}
    w.weights("models/epochs/m_001.safetensors", a, "epoch 1")
    w.weights("models/m.safetensors", {k: v.clone() for k, v in a.items()}, "final")
    changed = dict(a, b=torch.ones(3, dtype=torch.bfloat16))
    w.weights("models/other.safetensors", changed, "differs in one tensor")
    renamed = {"w2": a["w"], "b": a["b"]}
    w.weights("models/renamed.safetensors", renamed, "same bytes under another name")
    ino = {name: (tmp_path / "models" / name).stat().st_ino
           for name in ("epochs/m_001.safetensors", "m.safetensors", "other.safetensors", "renamed.safetensors")}
    assert ino["m.safetensors"] == ino["epochs/m_001.safetensors"]
    assert len({ino["m.safetensors"], ino["other.safetensors"], ino["renamed.safetensors"]}) == 3
    for name, state in (("m.safetensors", a), ("other.safetensors", changed), ("renamed.safetensors", renamed)):
        got = load_file(str(tmp_path / "models" / name))
        assert got.keys() == state.keys() and all(torch.equal(got[k], state[k]) for k in state)
    assert set(w.artifacts) == {f"models/{n}" for n in ino}
