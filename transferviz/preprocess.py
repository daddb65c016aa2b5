"""The one place images become model inputs (training, analysis and ``Cache.inputs`` share it)."""

from __future__ import annotations

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
    """``auto`` picks CUDA when present, else the CPU; asking for CUDA without one is an error."""
    from transferviz.errors import TransferVizError

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise TransferVizError("--device cuda was asked for but no CUDA device is visible; use --device auto or cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise TransferVizError(f"unknown device {device!r}; use auto, cpu or cuda")
    return torch.device(device)
