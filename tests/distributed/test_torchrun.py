"""Real builds of the tiny config (issue 13, items 1 and 2): a two-process torchrun build (gloo, CPU) equals the
single-process build on every array and table of the cache, and a build SIGKILLed during attribute resumes from
its shards, says so, and equals an uninterrupted build.

To stay fast, each build starts from a published copy of the tiny cache whose sharded stages (forward,
attribute, abstract, timeline) must be redone -- their keys are spoiled in its manifest -- so every build
computes exactly the stages that torchrun splits; the other stages are reused, as a real rebuild reuses them
(the resume test redoes attribute alone and compares its artifacts).
Every build uses chunks of 30 rows (10 shards), so one and two processes compute every row in the same batch."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.distributed.helpers import RUN, SHARDED, arrays, build_cmd, differences, env, run, stale_copy
from tests.reliability.lifecycle_helpers import kill, tiny_config_file
from transferviz.cache import current_build, unfinished_builds

CHUNK = 30


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> Path:
    return tiny_config_file(tmp_path_factory.mktemp("config") / "tiny.yaml")


@pytest.fixture(scope="module")
def single(tmp_path_factory, tiny_cache, config) -> Path:
    """The single-process build: the reference."""
    root = stale_copy(tiny_cache.root, tmp_path_factory.mktemp("single") / "cache")
    proc = run(build_cmd(config, root), CHUNK)
    assert proc.returncode == 0, proc.stderr
    for stage in SHARDED:
        assert re.search(rf"^\[{stage}\] done in", proc.stderr, re.M), proc.stderr
    live = current_build(root, RUN)
    assert live is not None
    return live


def test_two_process_torchrun_build_equals_the_single_process_build(single, tiny_cache, config, tmp_path):
    root = stale_copy(tiny_cache.root, tmp_path / "cache")
    proc = run(build_cmd(config, root, processes=2), CHUNK)
    assert proc.returncode == 0, proc.stderr
    assert "with 2 processes (gloo)" in proc.stderr
    for stage in SHARDED:  # computed, not reused, and logged once (by rank 0)
        assert len(re.findall(rf"^\[{stage}\] done in", proc.stderr, re.M)) == 1, proc.stderr
    live = current_build(root, RUN)
    assert live is not None and json.loads((live / "manifest.json").read_text())["processes"] == 2
    a, b = arrays(single), arrays(live)
    assert any(k.startswith("analysis/conductance/") for k in b) and len(b) == len(a)
    assert differences(a, b) == []  # bitwise equal, every array and table
    assert not (live / ".shards").exists() and unfinished_builds(root, RUN) == []


def test_a_build_killed_during_attribute_resumes_and_equals_an_uninterrupted_build(single, tiny_cache, config,
                                                                                      tmp_path):
    root = stale_copy(tiny_cache.root, tmp_path / "cache", stages=("attribute",))
    published = current_build(root, RUN)
    proc = subprocess.Popen(build_cmd(config, root), cwd=REPO, env=env(CHUNK), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while True:  # the moment attribute's second shard is complete: SIGKILL, no cleanup at all
            records = list((root / ".builds").glob(f"*/.shards/attribute-*/attribute-c{CHUNK}/*.json"))
            if len(records) >= 2 or proc.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert proc.poll() is None, f"the build ended before it could be killed: {proc.communicate()[1]}"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        kill(proc)
    assert current_build(root, RUN) == published  # the killed build changed nothing that readers see
    [kept] = unfinished_builds(root, RUN)
    done = len(list(kept.glob(f".shards/attribute-*/attribute-c{CHUNK}/*.json")))
    assert 2 <= done < 10

    proc2 = run(build_cmd(config, root), CHUNK)
    assert proc2.returncode == 0, proc2.stderr
    err = proc2.stderr
    assert f"resuming the interrupted build {kept.name}" in err
    assert "[data] kept" not in err and "[attribute] kept" not in err  # data always runs; attribute resumes
    m = re.search(r"^attribute: resuming, (\d+)% already done$", err, re.M)
    assert m is not None, err
    assert int(m.group(1)) >= round(100 * done * CHUNK / 300) - 1  # at least the shards seen before the kill
    assert current_build(root, RUN) == kept.resolve() and unfinished_builds(root, RUN) == []
    produced = json.loads((kept / "manifest.json").read_text())["stages"]["attribute"]["artifacts"]
    assert any(p.startswith("analysis/conductance/") for p in produced)
    a, b = arrays(single), arrays(kept)
    assert differences({p: a[p] for p in produced}, {p: b[p] for p in produced}) == []
