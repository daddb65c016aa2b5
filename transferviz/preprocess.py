"""The one place images become model inputs (training, analysis and ``Cache.inputs`` share it)."""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import torch


def to_tensor(images: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float32 (N, 3, H, W), scaled to [0, 1] then normalised per channel."""
    x = torch.from_numpy(np.array(images, copy=True)).permute(0, 3, 1, 2).float().div_(255.0)
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return (x - m) / s


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else the CPU; ``cpu``, ``cuda`` and ``cuda:N`` are checked against
    what this machine has, so that a wrong one is a one-line error before any work starts."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    from transferviz.errors import TransferVizError

    if device != "cpu" and not re.fullmatch(r"cuda(:(0|[1-9][0-9]*))?", device):
        raise TransferVizError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N (N a GPU index)")
    resolved = torch.device(device)
    check_device(resolved)
    return resolved


def check_device(device: torch.device) -> None:
    """A one-line error when ``device`` is not on this machine (CUDA asked for without one, an index past
    the last GPU); what ``torch.device`` accepts but transferviz does not run on (``mps``, ...) too."""
    from transferviz.errors import TransferVizError

    if device.type == "cpu":
        return
    if device.type != "cuda":
        raise TransferVizError(f"device {str(device)!r} is not supported; use auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise TransferVizError(f"--device {device} was asked for but no CUDA device is visible; "
                               "use --device auto or cpu")
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise TransferVizError(f"--device {device}: this machine has {count} CUDA device(s), "
                               f"cuda:0 to cuda:{count - 1}; pick one of them or use --device cuda")
