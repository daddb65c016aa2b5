"""Builds that cannot destroy each other (issue 15, items 1 and 9): one build of a run at a time (an OS lock
the kernel frees when its holder dies), pruning that never deletes a folder in use, nothing published that
its manifest does not describe, and a folder the user made at ``cache/<run>`` never touched."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from tests.conftest import REPO, tiny_config_dict
from tests.reliability.lifecycle_helpers import (
    RUN,
    error_lines,
    fingerprint,
    kill,
    published_copy,
    start_lock_holder,
    tiny_config_file,
    wait_for,
)
from transferviz.build.framework import BuildOptions, Stage, run_build
from transferviz.cache import (
    Cache,
    current_build,
    new_build_dir,
    prune_builds,
    publish,
    reader_lock,
    run_lock,
    verify_build,
)
from transferviz.cli import main
from transferviz.config import parse_config
from transferviz.errors import TransferVizError
from transferviz.locks import try_lock

REFUSAL = r"error: another build of run 'tiny' is running \(pid {pid}, since [^)]+\); wait for it to finish or stop it"


def _build_folders(root: Path) -> list[str]:
    return sorted(d.name for d in (root / ".builds").iterdir() if d.is_dir())


@pytest.fixture()
def root(tmp_path, tiny_cache) -> Path:
    """A cache root whose run 'tiny' is a published copy of the tiny cache."""
    return published_copy(tiny_cache, tmp_path / "cache")


# --- one build of a run at a time ---------------------------------------------------------------

def test_second_build_refuses_at_once_naming_the_running_builds_pid(root, tmp_path, capsys):
    holder = start_lock_holder(root)  # a real second process, as a running build holds it
    try:
        before, folders = fingerprint(root), _build_folders(root)
        assert main(["build", str(tiny_config_file(tmp_path / "tiny.yaml")), "--cache-dir", str(root),
                     "--quiet"]) == 2
        err = capsys.readouterr().err
        [line] = error_lines(err)
        assert re.fullmatch(REFUSAL.format(pid=holder.pid), line), line
        assert "[data]" not in err  # refused before any work
        assert fingerprint(root) == before and _build_folders(root) == folders
    finally:
        kill(holder)


def test_run_lock_is_freed_when_its_holder_is_killed_and_other_runs_are_free(tmp_path):
    holder = start_lock_holder(tmp_path)
    try:
        with pytest.raises(TransferVizError, match=REFUSAL.format(pid=holder.pid)[len("error: "):]):
            run_lock(tmp_path, RUN)
        with run_lock(tmp_path, "tiny2"), run_lock(tmp_path, "tin"):  # other runs build in parallel
            pass
        holder.send_signal(signal.SIGKILL)  # no cleanup runs: the kernel drops the lock
        holder.wait(timeout=30)
        with run_lock(tmp_path, RUN) as lock:
            assert json.loads(lock.path.read_text())["pid"] == os.getpid()
    finally:
        kill(holder)


def test_run_lock_that_cannot_be_taken_is_one_line(tmp_path):
    (tmp_path / ".builds").write_text("a file where the builds folder belongs")
    with pytest.raises(TransferVizError) as err:
        run_lock(tmp_path, RUN)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"cannot take the build lock {tmp_path / '.builds' / 'tiny.lock'}")
    assert msg.endswith("(--cache-dir)")


def test_two_concurrent_build_processes_one_builds_the_other_refuses(root, tmp_path):
    """Two real ``transferviz build`` processes of one run, started together into one root. Whichever takes the
    run lock is paused (SIGSTOP) at once -- the issue's paused build -- so the other surely meets it mid-build."""
    cmd = [sys.executable, "-m", "transferviz", "build", str(tiny_config_file(tmp_path / "tiny.yaml")),
           "--cache-dir", str(root), "--quiet"]
    lock_file = root / ".builds" / f"{RUN}.lock"
    procs = [subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]

    def holder() -> subprocess.Popen | None:
        try:
            pid = json.loads(lock_file.read_text()).get("pid")
        except (OSError, ValueError):
            return None
        return next((p for p in procs if p.pid == pid), None)

    try:
        wait_for(lambda: holder() is not None, 120, "a build to take the run lock")
        winner = holder()
        assert winner is not None
        winner.send_signal(signal.SIGSTOP)
        [loser] = [p for p in procs if p is not winner]
        try:
            _, loser_err = loser.communicate(timeout=120)
        finally:
            winner.send_signal(signal.SIGCONT)
        _, winner_err = winner.communicate(timeout=300)
    finally:
        for p in procs:
            kill(p)
    assert loser.returncode == 2, loser_err
    [line] = error_lines(loser_err)
    assert re.fullmatch(REFUSAL.format(pid=winner.pid), line), line
    assert winner.returncode == 0, winner_err
    live = current_build(root, RUN)
    assert live is not None and f"-{winner.pid}-" in live.name  # the winner's folder is published
    verify_build(live)  # every artifact of its manifest is there with its recorded shape
    cache = Cache.open(root / RUN)
    assert len(cache.instances) > 0 and cache.model("target") is not None


# --- pruning ------------------------------------------------------------------------------------

def _folder(builds: Path, day: int, finished: bool, lock_file: bool = True, run: str = RUN) -> Path:
    d = builds / f"{run}-202612{day:02d}-120000-{100 + day}-abcdef"
    d.mkdir(parents=True)
    if lock_file:
        (d / ".lock").touch()
    if finished:
        (d / "manifest.json").write_text("{}")
    os.utime(d, (day * 86400.0, day * 86400.0))  # older folders first, by day
    return d


def test_prune_deletes_only_folders_nobody_uses(tmp_path):
    builds = tmp_path / ".builds"
    dead_old = _folder(builds, 1, finished=True)
    served_old = _folder(builds, 2, finished=True)
    writing = _folder(builds, 3, finished=False)
    dead = _folder(builds, 4, finished=False)
    dead_without_lock = _folder(builds, 5, finished=False, lock_file=False)
    live = _folder(builds, 6, finished=True)
    os.utime(dead_without_lock)  # just now: no grace period is needed to know it is dead
    other_run = _folder(builds, 1, finished=True, run="tiny-2")  # a run whose name starts like this one's
    user_folder = builds / "tiny-moved-20261201-120000"  # what older versions moved aside: the user's data
    user_folder.mkdir()
    (tmp_path / RUN).symlink_to(f".builds/{live.name}")
    reader = reader_lock(served_old)  # a dashboard serving an old build
    writer = try_lock(writing / ".lock")  # a build still writing
    assert reader is not None and writer is not None
    deleted = prune_builds(tmp_path, RUN, keep=1)
    assert set(deleted) == {dead_old, dead, dead_without_lock}
    assert not any(d.exists() for d in deleted)
    assert all(d.is_dir() for d in (served_old, writing, live, other_run, user_folder))
    reader.release()
    writer.release()
    assert set(prune_builds(tmp_path, RUN, keep=1)) == {served_old, writing}
    assert live.is_dir() and other_run.is_dir() and user_folder.is_dir()


def test_a_killed_builds_folder_goes_with_the_next_prune(root):
    """A build killed mid-way leaves an unfinished folder whose lock the kernel freed: the next prune deletes it."""
    code = ("import os, sys; from pathlib import Path; from transferviz.cache import new_build_dir; "
            "d, lock = new_build_dir(Path(sys.argv[1]), 'tiny'); print(d, flush=True); os.kill(os.getpid(), 9)")
    proc = subprocess.run([sys.executable, "-c", code, str(root)], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL
    abandoned = Path(proc.stdout.strip())
    assert abandoned.is_dir() and not (abandoned / "manifest.json").exists()
    assert prune_builds(root, RUN) == [abandoned] and current_build(root, RUN) is not None


# --- nothing published that the manifest does not describe ---------------------------------------

def _first(manifest: dict, kind: str, ndim: int | None = None) -> str:
    return next(rel for rel, a in manifest["artifacts"].items()
                if a["kind"] == kind and (ndim is None or len(a.get("shape", [])) == ndim))


def _replace(p: Path, data: bytes) -> None:
    p.unlink()  # the copy's file may be a hard link into the previous build: never write through it
    p.write_bytes(data)


def _damage_array_shape(p: Path) -> None:
    a = np.load(p)
    p.unlink()
    np.save(p, a[:-1])


def _damage_array_dtype(p: Path) -> None:
    a = np.load(p)
    p.unlink()
    np.save(p, a.astype(np.float64 if a.dtype != np.float64 else np.float32))


def _damage_table_rows(p: Path) -> None:
    df = pd.read_parquet(p)
    p.unlink()
    df.iloc[:-1].to_parquet(p, index=False)


def _drop_one_png(p: Path) -> None:
    next(p.rglob("*.png")).unlink()


DAMAGES = {
    "array missing": (("array", 2), lambda p: p.unlink(), "is missing"),
    "array of another shape": (("array", 2), _damage_array_shape, "of shape"),
    "array of another dtype": (("array", 2), _damage_array_dtype, "the manifest says"),
    "array truncated": (("array", 2), lambda p: _replace(p, p.read_bytes()[:-7]), "truncated"),
    "table with a row fewer": (("table", None), _damage_table_rows, "rows"),
    "table not Parquet": (("table", None), lambda p: _replace(p, b"not parquet"), "Parquet"),
    "png-dir with an image fewer": (("png-dir", None), _drop_one_png, "PNG images"),
    "json empty": (("json", None), lambda p: _replace(p, b""), "JSON"),
    "safetensors truncated": (("safetensors", None), lambda p: _replace(p, p.read_bytes()[:100]), "safetensors"),
}


@pytest.fixture(scope="module")
def publish_root(tmp_path_factory, tiny_cache) -> Path:
    return published_copy(tiny_cache, tmp_path_factory.mktemp("publish") / "cache")


@pytest.mark.parametrize("case", list(DAMAGES))
def test_publish_refuses_a_build_whose_artifact_is_not_as_recorded(publish_root, case):
    (kind, ndim), damage, problem = DAMAGES[case]
    root = publish_root
    before = fingerprint(root)
    live = current_build(root, RUN)
    assert live is not None
    build, writing = new_build_dir(root, RUN)
    try:
        shutil.copytree(live, build, copy_function=os.link, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".lock"))
        rel = _first(json.loads((build / "manifest.json").read_text()), kind, ndim)
        damage(build / rel)
        with pytest.raises(TransferVizError) as err:
            publish(root, RUN, build)
        msg = str(err.value)
        assert "\n" not in msg and msg.startswith("build not published, the published cache is unchanged")
        assert rel in msg and problem in msg, msg
        assert fingerprint(root) == before
    finally:
        writing.release()
        shutil.rmtree(build)


def test_a_build_whose_stage_lost_an_artifact_is_removed_unpublished(publish_root, tmp_path):
    root = publish_root
    before, folders = fingerprint(root), _build_folders(root)

    def loses_its_array(ctx) -> None:
        ctx.writer.array("data/extra.npy", np.zeros(3), "an array the stage then loses")
        (ctx.writer.root / "data/extra.npy").unlink()

    stage = Stage("lossy", loses_its_array, lambda c: {}, always_run=True)
    cfg = parse_config(tiny_config_dict(), "tiny.yaml")
    with pytest.raises(TransferVizError, match=r"data/extra\.npy is missing"):
        run_build(cfg, [stage], BuildOptions(root, torch.device("cpu"), progress=False),
                  log=lambda m: None)
    assert fingerprint(root) == before and _build_folders(root) == folders


# --- a folder the user made ---------------------------------------------------------------------

def test_a_plain_folder_at_the_run_path_is_refused_before_any_work_and_kept(tmp_path, capsys):
    root = tmp_path / "cache"
    mine = root / RUN
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("my notes")
    assert main(["build", str(tiny_config_file(tmp_path / "tiny.yaml")), "--cache-dir", str(root), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert error_lines(err) == [f"error: {mine} is a folder transferviz did not create; move it away "
                                f"(e.g. to {mine}.mine) and build again"]
    assert "[data]" not in err and (mine / "notes.txt").read_text() == "my notes"
    assert not (root / ".builds").exists()  # nothing was started
    # publish refuses it too (a folder made while a build ran), and leaves it where it is
    build = root / ".builds" / "tiny-20261206-120000-1-abcdef"
    build.mkdir(parents=True)
    with pytest.raises(TransferVizError, match="is a folder transferviz did not create"):
        publish(root, RUN, build)
    assert mine.is_dir() and not mine.is_symlink() and (mine / "notes.txt").read_text() == "my notes"
