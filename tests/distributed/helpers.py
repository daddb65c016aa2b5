"""Shared by the distributed-build tests: cache roots whose published build must redo some stages, the
commands that build into them (one process, or two under torchrun), and array-by-array comparison."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from tests.conftest import REPO

RUN = "tiny"
_BUILD_NAME = re.compile(r"tiny-\d{8}-\d{6}-\d+-[0-9a-f]{6}")
#: The stages whose rows a torchrun build splits across its processes.
SHARDED = ("forward", "attribute", "abstract", "timeline")


def stale_copy(build: Path, root: Path, stages: tuple[str, ...] = SHARDED) -> Path:
    """``root/tiny -> root/.builds/<copy of build>`` with the manifest's keys of ``stages`` spoiled, so a build
    into ``root`` redoes exactly those (their dependants' keys are unchanged: they are reused). Returns root."""
    build = build.resolve()
    name = build.name if _BUILD_NAME.fullmatch(build.name) else "tiny-20260101-000000-1-000000"
    dst = root / ".builds" / name
    shutil.copytree(build, dst, copy_function=os.link, ignore=shutil.ignore_patterns(".lock"))
    manifest = json.loads((build / "manifest.json").read_text())
    for stage in stages:
        manifest["stages"][stage]["key"] = "stale"
    (dst / "manifest.json").unlink()  # a hard link into the source build: never write through it
    (dst / "manifest.json").write_text(json.dumps(manifest))
    (root / RUN).symlink_to(f".builds/{name}")
    return root


def build_cmd(config: Path, root: Path, processes: int = 1) -> list[str]:
    """``transferviz build`` of ``config`` into ``root``: as is, or under torchrun with ``processes`` ranks."""
    args = ["-m", "transferviz", "build", str(config), "--cache-dir", str(root), "--no-featvis", "--quiet"]
    if processes == 1:
        return [sys.executable, *args]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}", *args]


def env(chunk_rows: int) -> dict[str, str]:
    """The environment of a test build: small chunks (several shards from the tiny config), one thread per
    process (so one and two processes compute with the same kernels), CPU only."""
    return {**os.environ, "TRANSFERVIZ_CHUNK_ROWS": str(chunk_rows), "OMP_NUM_THREADS": "1",
            "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(REPO)}


def run(cmd: list[str], chunk_rows: int, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=REPO, env=env(chunk_rows), capture_output=True, text=True, timeout=timeout)


def arrays(build: Path) -> dict[str, np.ndarray | pd.DataFrame]:
    """Every array and table of a build, by artifact path."""
    manifest = json.loads((build / "manifest.json").read_text())
    out: dict[str, np.ndarray | pd.DataFrame] = {}
    for rel, a in manifest["artifacts"].items():
        if a["kind"] == "array":
            out[rel] = np.load(build / rel, allow_pickle=False)
        elif a["kind"] == "table":
            out[rel] = pd.read_parquet(build / rel)
    return out


def differences(a: dict, b: dict) -> list[str]:
    """The artifacts that are not bitwise equal (NaN equal to NaN), one line each; empty when all are."""
    out = [f"{k}: only in one build" for k in sorted(set(a) ^ set(b))]
    for k in sorted(set(a) & set(b)):
        x, y = a[k], b[k]
        if isinstance(x, pd.DataFrame):
            try:
                pd.testing.assert_frame_equal(x, y, check_exact=True)
            except AssertionError as exc:
                out.append(f"{k}: {str(exc).splitlines()[0]}")
        elif x.shape != y.shape or x.dtype != y.dtype or not np.array_equal(x, y, equal_nan=x.dtype.kind == "f"):
            out.append(f"{k}: {x.dtype}{x.shape} vs {y.dtype}{y.shape}, "
                       f"max abs diff {np.nanmax(np.abs(x - y)) if x.shape == y.shape else 'n/a'}")
    return out
