"""Several processes building one cache, on ``torch.distributed`` (started by ``torchrun``).

``torchrun --standalone --nproc-per-node N -m transferviz build CONFIG`` starts N copies of the build;
:func:`init` (called once by the CLI) joins them into a process group from torchrun's environment
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``...). Without torchrun (or with one process)
nothing is initialised and :func:`current` is a single-process :class:`Dist` whose collectives do nothing.

Only metadata passes between ranks (the build folder's path, stage decisions, artifact records, row
counts): the rows themselves go through shard files in the build folder (``transferviz.build.shards``),
so the folder must be on a file system every rank sees (any local disk for ``--standalone``).

Backends: ``gloo`` on CPU; on CUDA ``nccl`` with one GPU per local rank (``cuda:LOCAL_RANK``), plus a
``gloo`` group for the object collectives and barriers, which need no GPU memory and keep their own
(long) timeout. The timeout matters: every rank waits at a barrier while rank 0 alone trains the models,
which can take hours, so the default is a day (``--dist-timeout`` / ``TRANSFERVIZ_DIST_TIMEOUT``, seconds).
torchrun stops the other ranks when one dies, so a long timeout never leaves a dead build hanging.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["Dist", "current", "init", "shutdown", "DEFAULT_TIMEOUT_S", "TIMEOUT_ENV", "block_of"]

DEFAULT_TIMEOUT_S = 24 * 3600.0
TIMEOUT_ENV = "TRANSFERVIZ_DIST_TIMEOUT"


def block_of(n: int, rank: int, world: int) -> range:
    """Rank ``rank``'s contiguous block of ``range(n)``: sizes differ by at most one, the first ``n % world``
    ranks take one more, no row is repeated (unlike ``DistributedSampler``, which pads with duplicates)."""
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"rank {rank} is not in a world of {world}")
    base, extra = divmod(max(n, 0), world)
    start = rank * base + min(rank, extra)
    return range(start, start + base + (1 if rank < extra else 0))


@dataclass(frozen=True)
class Dist:
    """This process's place among the build's processes; the single-process default does no communication."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str | None = None  # None: no process group (a single process)
    group: Any = None  # the gloo group used for barriers and object collectives

    @property
    def is_main(self) -> bool:
        """Rank 0: trains, runs the non-sharded stages, merges the shards and publishes."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.backend is not None and self.world > 1

    def block(self, n: int) -> range:
        """This rank's contiguous block of ``range(n)`` (see :func:`block_of`)."""
        return block_of(n, self.rank, self.world)

    def barrier(self) -> None:
        if self.enabled:
            torch.distributed.barrier(group=self.group)

    def broadcast_object(self, obj: Any = None, src: int = 0) -> Any:
        """Rank ``src``'s ``obj`` on every rank (a small, picklable object: metadata only)."""
        if not self.enabled:
            return obj
        box = [obj if self.rank == src else None]
        torch.distributed.broadcast_object_list(box, src=src, group=self.group)
        return box[0]

    def all_gather_objects(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order, on every rank."""
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world
        torch.distributed.all_gather_object(out, obj, group=self.group)
        return out

    def gather_objects(self, obj: Any) -> list[Any] | None:
        """Every rank's ``obj``, in rank order, on rank 0; None on the other ranks."""
        if not self.enabled:
            return [obj]
        out: list[Any] | None = [None] * self.world if self.is_main else None
        torch.distributed.gather_object(obj, out, dst=0, group=self.group)
        return out


_CURRENT = Dist()


def current() -> Dist:
    """The build's :class:`Dist` (single process unless :func:`init` joined a torchrun group)."""
    return _CURRENT


def _timeout_s(timeout_s: float | None) -> float:
    from transferviz.errors import TransferVizError

    if timeout_s is not None:
        if not timeout_s > 0:
            raise TransferVizError(f"--dist-timeout {timeout_s:g} is not a positive number of seconds; "
                                   "give e.g. 86400")
        return float(timeout_s)
    raw = os.environ.get(TIMEOUT_ENV)
    if not raw:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise TransferVizError(f"{TIMEOUT_ENV}={raw!r} is not a positive number of seconds; set it to e.g. 86400")
    return value


def init(device: torch.device, timeout_s: float | None = None) -> tuple[Dist, torch.device]:
    """Joins torchrun's process group when started by torchrun with more than one process; returns this
    process's :class:`Dist` and the device it computes on (``cuda:LOCAL_RANK`` for a CUDA build)."""
    global _CURRENT
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        _CURRENT = Dist()
        return _CURRENT, device
    if _CURRENT.enabled:
        return _CURRENT, device
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    timeout = datetime.timedelta(seconds=_timeout_s(timeout_s))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
    torch.distributed.init_process_group(backend=backend, timeout=timeout, device_id=device if backend == "nccl"
                                         else None)
    # metadata goes over gloo whatever the compute backend: CPU objects, no GPU memory, its own timeout
    group = torch.distributed.new_group(backend="gloo", timeout=timeout) if backend == "nccl" else None
    _CURRENT = Dist(rank=rank, world=world, local_rank=local_rank, backend=backend, group=group)
    return _CURRENT, device


def shutdown() -> None:
    """Leaves the process group (at the end of the build); a single process has nothing to leave."""
    global _CURRENT
    if _CURRENT.enabled and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    _CURRENT = Dist()
