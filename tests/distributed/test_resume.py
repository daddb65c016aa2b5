"""Resume and shards (issue 13, item 2), on stand-in stages that build in milliseconds: an interrupted build keeps
its folder, the next build of the same config adopts its finished stages and continues its running stage from
the last complete shard (saying how much was done), a half-written shard is redone, ``--force`` starts over,
and the unfinished folder goes once a build is published."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import tiny_config_dict
from transferviz.build.framework import STAGES_FILE, BuildContext, BuildOptions, Stage, run_build
from transferviz.build.shards import CHUNK_ENV, SHARDS_DIR, chunk_grid
from transferviz.cache import Cache, current_build, unfinished_builds
from transferviz.config import parse_config
from transferviz.distributed import block_of

N = 50  # rows of the stand-in sharded stage
CHUNK = 8  # rows per chunk: 7 chunks, the last of 2 rows


class Interrupt(KeyboardInterrupt):
    """Ctrl-C at a chosen point of the stand-in stage."""


def expected(rows: range) -> dict[str, object]:
    r = np.arange(rows.start, rows.stop)
    return {"square": (r ** 2).astype(np.int64), "vec": np.stack([r, -r], 1).astype(np.float32),
            "png": [f"row{i}".encode() * (i % 3 + 1) for i in r], "chunk:sum": np.array([r.sum()])}


class Rows:
    """The stand-in for a per-instance stage: records which rows it computed; raises after ``stop_after`` chunks."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.computed: list[range] = []
        self.stop_after = stop_after

    def __call__(self, rows: range) -> dict[str, object]:
        if self.stop_after is not None and len(self.computed) == self.stop_after:
            raise Interrupt()
        self.computed.append(rows)
        return expected(rows)


def stages(rows: Rows, before: list[str]) -> list[Stage]:
    def first(ctx: BuildContext) -> None:
        before.append("first")
        ctx.writer.array("analysis/first.npy", np.arange(3), "a finished stage")

    def sharded(ctx: BuildContext) -> None:
        merged = ctx.rows("rows", N, rows, rows_per_chunk=CHUNK, desc="rows")
        assert merged is not None
        ctx.writer.array("analysis/square.npy", np.asarray(merged["square"]), "row squared")
        ctx.writer.array("analysis/vec.npy", np.asarray(merged["vec"]), "row, -row")
        ctx.writer.array("analysis/png_len.npy", np.array([len(b) for b in merged["png"]]), "bytes per row")
        ctx.writer.array("analysis/chunk_sum.npy", np.asarray(merged["chunk:sum"]), "per chunk")
        ctx.writer.array("analysis/chunk_rows.npy", np.asarray(merged["chunk:rows"]), "rows per chunk")
        assert merged["png"] == [b for c in chunk_grid(N, CHUNK) for b in expected(c)["png"]]  # type: ignore

    return [Stage("first", first, lambda c: {}), Stage("rows", sharded, lambda c: {}, deps=("first",), sharded=True)]


def build(root: Path, rows: Rows, before: list[str], force: bool = False) -> tuple[list[str], object]:
    log: list[str] = []
    cfg = parse_config(tiny_config_dict(), "tiny.yaml")
    try:
        report = run_build(cfg, stages(rows, before), BuildOptions(root, torch.device("cpu"), force=force,
                                                                   progress=False), log=log.append)
    except Interrupt as exc:
        return log, exc
    return log, report


def check_result(root: Path) -> None:
    cache = Cache.open(root / "tiny")
    r = np.arange(N)
    assert np.array_equal(cache.array("analysis/square.npy"), r ** 2)
    assert np.array_equal(cache.array("analysis/vec.npy"), np.stack([r, -r], 1).astype(np.float32))
    assert np.array_equal(cache.array("analysis/png_len.npy"), [len(f"row{i}") * (i % 3 + 1) for i in r])
    grid = chunk_grid(N, CHUNK)
    assert np.array_equal(cache.array("analysis/chunk_sum.npy"), [sum(c) for c in grid])
    assert np.array_equal(cache.array("analysis/chunk_rows.npy"), [len(c) for c in grid])


@pytest.fixture(autouse=True)
def _no_chunk_override(monkeypatch):
    monkeypatch.delenv(CHUNK_ENV, raising=False)


def test_blocks_are_contiguous_cover_every_row_once_and_differ_by_at_most_one():
    for n in (0, 1, 7, 10, 11):
        for world in (1, 2, 3, 4):
            blocks = [block_of(n, r, world) for r in range(world)]
            assert [i for b in blocks for i in b] == list(range(n))
            assert max(map(len, blocks)) - min(map(len, blocks)) <= 1
    assert block_of(7, 0, 3) == range(0, 3) and block_of(7, 2, 3) == range(5, 7)
    with pytest.raises(ValueError):
        block_of(5, 2, 2)


def test_an_interrupted_build_resumes_from_its_last_shard_and_equals_an_uninterrupted_one(tmp_path):
    root = tmp_path / "cache"
    before: list[str] = []
    log, exc = build(root, Rows(stop_after=3), before)  # Ctrl-C after 3 of 7 chunks
    assert isinstance(exc, Interrupt)
    assert current_build(root, "tiny") is None  # nothing published
    [kept] = unfinished_builds(root, "tiny")
    assert any(f"kept in {kept}" in line for line in log)
    assert "first" in json.loads((kept / STAGES_FILE).read_text())

    rows = Rows()
    log, report = build(root, rows, before)
    assert before == ["first"]  # the finished stage was kept, not run again
    assert f"resuming the interrupted build {kept.name} (1 stages finished)" in log
    assert "[first] kept (finished before the interruption)" in log
    assert "rows: resuming, 48% already done" in log  # 24 of 50 rows
    assert rows.computed == chunk_grid(N, CHUNK)[3:]  # only the chunks not done
    check_result(root)
    assert current_build(root, "tiny") == kept.resolve()  # the resumed folder is the published one
    assert not (kept / SHARDS_DIR).exists() and not (kept / STAGES_FILE).exists()  # no scratch in the cache
    assert unfinished_builds(root, "tiny") == []


def test_a_half_written_shard_is_redone_not_trusted(tmp_path):
    root = tmp_path / "cache"
    build(root, Rows(stop_after=4), [])
    [kept] = unfinished_builds(root, "tiny")
    folder = next((kept / SHARDS_DIR).iterdir()) / f"rows-c{CHUNK}"
    shards = sorted(folder.glob("*.npz"))
    assert len(shards) == 4
    shards[1].write_bytes(shards[1].read_bytes()[:-40])  # cut short (the record's size and hash disagree)
    data = bytearray(shards[2].read_bytes())  # same size, one byte changed: only the hash tells
    data[len(data) // 2] ^= 0xFF
    shards[2].write_bytes(bytes(data))
    (folder / f"{shards[3].stem}.json").unlink()  # killed between the data and its record
    (folder / ".0000000040-0000000048.npz.123.tmp").write_bytes(b"half")  # killed while writing: never read

    rows = Rows()
    log, _ = build(root, rows, [])
    grid = chunk_grid(N, CHUNK)
    assert rows.computed == [grid[1], grid[2], grid[3], *grid[4:]]
    assert "rows: resuming, 16% already done" in log  # only the first chunk (8 rows) was trusted
    check_result(root)


def test_force_discards_partial_work_and_the_stale_folder_goes_after_publishing(tmp_path):
    root = tmp_path / "cache"
    before: list[str] = []
    build(root, Rows(stop_after=2), before)
    [stale] = unfinished_builds(root, "tiny")
    rows = Rows()
    log, report = build(root, rows, before, force=True)
    assert before == ["first", "first"] and rows.computed == chunk_grid(N, CHUNK)
    assert not any("resuming" in line for line in log)
    check_result(root)
    assert current_build(root, "tiny") != stale.resolve() and not stale.exists()  # pruned after the publish


def test_a_build_of_another_config_does_not_resume_and_removes_the_stale_folder(tmp_path):
    root = tmp_path / "cache"
    build(root, Rows(stop_after=2), [])
    [stale] = unfinished_builds(root, "tiny")
    cfg = parse_config(tiny_config_dict(seed=1), "tiny.yaml")  # another config: its partial work is not this one's
    rows = Rows()
    log: list[str] = []
    run_build(cfg, stages(rows, []), BuildOptions(root, torch.device("cpu"), progress=False), log=log.append)
    assert rows.computed == chunk_grid(N, CHUNK) and not any("resuming" in line for line in log)
    assert not stale.exists()


def test_a_failed_stage_still_removes_its_folder(tmp_path):
    """Issue 15's rule stays for a build that failed on its own (bad input, full disk): only an interrupted build
    (or one that lost a rank) keeps its folder to be resumed."""
    root = tmp_path / "cache"

    def broken(ctx: BuildContext) -> None:
        ctx.rows("rows", N, lambda r: expected(r), rows_per_chunk=CHUNK)
        raise ValueError("bad input")

    cfg = parse_config(tiny_config_dict(), "tiny.yaml")
    with pytest.raises(ValueError, match="bad input"):
        run_build(cfg, [Stage("broken", broken, lambda c: {})], BuildOptions(root, torch.device("cpu"),
                                                                           progress=False), log=lambda m: None)
    assert not any(d.is_dir() for d in (root / ".builds").iterdir())
