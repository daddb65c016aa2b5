"""svhn and mnist through torchvision, on tiny fake files written here; missing files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from transferviz.data import mnist, svhn
from transferviz.errors import TransferVizError


def _write_idx(path: Path, arr: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in arr.shape)
    path.write_bytes(header + arr.astype(np.uint8).tobytes())


def test_mnist_from_idx_files(tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    labels = np.tile(np.arange(10), 6)  # 6 per digit
    images = np.repeat((labels * 20).astype(np.uint8)[:, None, None], 28, 1).repeat(28, 2)
    _write_idx(raw / "train-images-idx3-ubyte", images)
    _write_idx(raw / "train-labels-idx1-ubyte", labels)
    d = mnist(tmp_path, per_class=4, image_size=32, seed=0)
    assert d.images.shape == (40, 32, 32, 3) and d.classes == tuple(str(i) for i in range(10))
    assert np.array_equal(np.bincount(d.labels), [4] * 10)
    assert np.array_equal(d.images[:, 5, 5, 1], d.labels * 20)  # pixels stay with their label
    assert d.converted == 40
    again = mnist(tmp_path, per_class=4, image_size=32, seed=0)
    assert again.origins == d.origins
    assert mnist(tmp_path, per_class=4, image_size=32, seed=1).origins != d.origins


def test_mnist_missing_is_one_line_with_layout(tmp_path: Path) -> None:
    (tmp_path / "MNIST" / "raw").mkdir(parents=True)
    (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").write_bytes(b"")
    (tmp_path / "MNIST" / "raw" / "train-labels-idx1-ubyte.gz").write_bytes(b"")
    with pytest.raises(TransferVizError) as err:
        mnist(tmp_path, 10, 28, 0, where="configs/svhn_mnist.yaml")
    msg = str(err.value)
    assert "\n" not in msg and "MNIST/raw/train-images-idx3-ubyte" in msg
    assert "gunzip" in msg and "configs/svhn_mnist.yaml" in msg


def test_svhn_from_mat_file(tmp_path: Path) -> None:
    sio = pytest.importorskip("scipy.io")
    digits = np.tile(np.arange(10), 5)
    X = np.repeat((digits * 20).astype(np.uint8)[None, None, None, :], 32, 0).repeat(32, 1).repeat(3, 2)
    y = np.where(digits == 0, 10, digits).reshape(-1, 1)  # SVHN stores digit 0 as label 10
    sio.savemat(tmp_path / "train_32x32.mat", {"X": X, "y": y})
    d = svhn(tmp_path, per_class=3, image_size=28, seed=0)
    assert d.images.shape == (30, 28, 28, 3) and d.classes == tuple(str(i) for i in range(10))
    assert np.array_equal(np.bincount(d.labels), [3] * 10)
    assert np.array_equal(d.images[:, 14, 14, 0], d.labels * 20)
    assert d.converted == 0 and d.skipped == 0


def test_svhn_missing_and_corrupt(tmp_path: Path) -> None:
    with pytest.raises(TransferVizError) as err:
        svhn(tmp_path, 10, 28, 0)
    assert "train_32x32.mat" in str(err.value) and "\n" not in str(err.value)
    pytest.importorskip("scipy.io")
    (tmp_path / "train_32x32.mat").write_bytes(b"not a mat file")
    with pytest.raises(TransferVizError, match="cannot read SVHN"):
        svhn(tmp_path, 10, 28, 0)
