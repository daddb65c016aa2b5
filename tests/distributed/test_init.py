"""How a build joins torchrun's process group (issue 13, item 1): nothing without torchrun, gloo on CPU, and on
CUDA nccl on ``cuda:LOCAL_RANK`` with a gloo group for the metadata -- the CUDA path checked here without a GPU
by recording the calls it makes to ``torch.distributed`` -- and a barrier timeout long enough for training."""

from __future__ import annotations

import datetime

import pytest
import torch

from transferviz import distributed
from transferviz.errors import TransferVizError


@pytest.fixture()
def calls(monkeypatch):
    """The calls made to torch.distributed and torch.cuda, recorded instead of made."""
    made: list[tuple[str, dict]] = []
    monkeypatch.setattr(torch.distributed, "init_process_group", lambda **kw: made.append(("init", kw)))

    def new_group(**kw: object) -> str:
        made.append(("group", kw))
        return "gloo-group"

    monkeypatch.setattr(torch.distributed, "new_group", new_group)
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: made.append(("set_device", {"device": d})))
    monkeypatch.delenv(distributed.TIMEOUT_ENV, raising=False)
    monkeypatch.setattr(distributed, "_CURRENT", distributed.Dist())  # restored after the test
    return made


def _torchrun_env(monkeypatch, rank: int, world: int, local_rank: int) -> None:
    for k, v in {"RANK": rank, "WORLD_SIZE": world, "LOCAL_RANK": local_rank}.items():
        monkeypatch.setenv(k, str(v))


def test_without_torchrun_nothing_is_initialised(monkeypatch, calls):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    dist, device = distributed.init(torch.device("cpu"))
    assert dist == distributed.Dist() and not dist.enabled and dist.is_main and device == torch.device("cpu")
    assert calls == [] and distributed.current() is dist
    # its collectives are the identity, with no process group
    assert dist.broadcast_object({"a": 1}) == {"a": 1} and dist.all_gather_objects(3) == [3]
    assert dist.gather_objects("x") == ["x"] and dist.block(5) == range(5)
    dist.barrier()


def test_torchrun_with_one_process_stays_single(monkeypatch, calls):
    _torchrun_env(monkeypatch, 0, 1, 0)
    assert distributed.init(torch.device("cpu"))[0] == distributed.Dist() and calls == []


def test_cpu_ranks_join_with_gloo_and_a_day_long_timeout(monkeypatch, calls):
    _torchrun_env(monkeypatch, 1, 3, 1)
    dist, device = distributed.init(torch.device("cpu"))
    assert (dist.rank, dist.world, dist.local_rank, dist.backend, dist.group) == (1, 3, 1, "gloo", None)
    assert not dist.is_main and dist.enabled and device == torch.device("cpu")
    assert dist.block(10) == range(4, 7)
    assert calls == [("init", {"backend": "gloo", "timeout": datetime.timedelta(days=1), "device_id": None})]


def test_cuda_ranks_use_nccl_on_their_local_gpu_and_gloo_for_metadata(monkeypatch, calls):
    _torchrun_env(monkeypatch, 5, 8, 1)  # the second process of the second node
    monkeypatch.setenv(distributed.TIMEOUT_ENV, "7200")
    dist, device = distributed.init(torch.device("cuda"))
    assert device == torch.device("cuda", 1)
    assert (dist.rank, dist.world, dist.local_rank, dist.backend, dist.group) == (5, 8, 1, "nccl", "gloo-group")
    two_hours = datetime.timedelta(seconds=7200)
    assert calls == [("set_device", {"device": torch.device("cuda", 1)}),
                     ("init", {"backend": "nccl", "timeout": two_hours, "device_id": torch.device("cuda", 1)}),
                     ("group", {"backend": "gloo", "timeout": two_hours})]


def test_a_timeout_flag_wins_and_a_bad_one_is_one_line(monkeypatch, calls):
    _torchrun_env(monkeypatch, 0, 2, 0)
    monkeypatch.setenv(distributed.TIMEOUT_ENV, "60")
    distributed.init(torch.device("cpu"), timeout_s=90)
    assert calls[0][1]["timeout"] == datetime.timedelta(seconds=90)
    monkeypatch.setattr(distributed, "_CURRENT", distributed.Dist())
    monkeypatch.setenv(distributed.TIMEOUT_ENV, "an hour")
    with pytest.raises(TransferVizError, match=r"^TRANSFERVIZ_DIST_TIMEOUT='an hour' is not a positive number of "
                                               r"seconds; set it to e\.g\. 86400$"):
        distributed.init(torch.device("cpu"))
    with pytest.raises(TransferVizError, match=r"^--dist-timeout -5 is not a positive number of seconds; give e\.g\. "
                                               r"86400$"):
        distributed.init(torch.device("cpu"), timeout_s=-5)
