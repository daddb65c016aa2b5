"""Shared by the build-lifecycle and live-dashboard tests: cache roots that hold a published copy of the tiny
cache (run ``tiny``), and what the tests compare them by."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from tests.conftest import REPO, tiny_config_dict
from transferviz.cache import Cache, current_build, new_build_dir, publish, run_lock

RUN = "tiny"
_BUILD_NAME = re.compile(r"tiny-\d{8}-\d{6}-\d+-[0-9a-f]{6}")

#: A process that takes run ``tiny``'s build lock in the cache root ``argv[1]``, says so, and keeps it.
HOLD_RUN_LOCK = ("import sys, time; from pathlib import Path; from transferviz.cache import run_lock; "
                 "lock = run_lock(Path(sys.argv[1]), 'tiny'); print('held', flush=True); time.sleep(120)")


def published_copy(cache: Cache, root: Path) -> Path:
    """``root/tiny -> root/.builds/<build>``: a real copy of ``cache``'s build folder, published as a build
    publishes it, so that a build into ``root`` reuses its stages. Returns ``root``."""
    name = cache.root.name if _BUILD_NAME.fullmatch(cache.root.name) else "tiny-20260101-000000-1-000000"
    shutil.copytree(cache.root, root / ".builds" / name, symlinks=True)
    (root / RUN).symlink_to(f".builds/{name}")
    return root


def tiny_config_file(path: Path) -> Path:
    """The tiny config (the one the tiny cache is built from) as a YAML file."""
    path.write_text(yaml.safe_dump(tiny_config_dict()))
    return path


def republish(root: Path, source: Path | None = None, edit: Callable[[Path], None] | None = None) -> Path:
    """Publishes a new build of run ``tiny`` made of hard links to the files of ``source`` (default: the live
    build) -- what a build that reuses every stage makes, in milliseconds -- through the real lock, folder and
    publish steps; ``edit(folder)`` may change it first (replacing files, never writing through a link).
    Returns its folder."""
    with run_lock(root, RUN):
        source = source or current_build(root, RUN)
        assert source is not None
        build, writing = new_build_dir(root, RUN)
        for src in source.rglob("*"):
            dst = build / src.relative_to(source)
            if src.is_dir():
                dst.mkdir(parents=True, exist_ok=True)
            elif src.name != ".lock":
                try:
                    os.link(src, dst)
                except OSError:  # another file system
                    shutil.copy2(src, dst)
        if edit is not None:
            edit(build)
        writing.release()
        publish(root, RUN, build)
    return build


def fingerprint(root: Path) -> dict[str, str]:
    """The run link's target and the SHA-256 of every file of the build it points at."""
    link = root / RUN
    build = link.resolve()
    out = {"<link>": os.readlink(link)}
    for p in sorted(build.rglob("*")):
        if p.is_file():
            out[p.relative_to(build).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def error_lines(stderr: str) -> list[str]:
    """The ``error:`` lines of a CLI's stderr (asserted to be exactly one, with no traceback)."""
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def start_lock_holder(root: Path) -> subprocess.Popen:
    """A second process holding run ``tiny``'s build lock in ``root`` (returns once it holds it)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD_RUN_LOCK, str(root)], cwd=REPO, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
