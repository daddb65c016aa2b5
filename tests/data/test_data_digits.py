"""sklearn_digits and synthetic_digits: shapes, classes, determinism."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from transferviz.data import font_pool, font_provenance, sklearn_digits, synthetic_digits
from transferviz.data import synthetic as synthetic_module

DIGITS = tuple(str(d) for d in range(10))


def test_sklearn_digits() -> None:
    d = sklearn_digits(28)
    assert d.images.shape == (1797, 28, 28, 3) and d.images.dtype == np.uint8
    assert d.labels.dtype == np.int64 and d.classes == DIGITS
    assert np.array_equal(d.images[..., 0], d.images[..., 2])
    assert d.images.max() > 200 and d.images[:, 0, 0].mean() < 30  # bright ink on a dark ground
    assert np.bincount(d.labels).min() >= 170
    assert sklearn_digits(16).images.shape == (1797, 16, 16, 3)


def test_synthetic_shapes_and_determinism() -> None:
    a = synthetic_digits(6, 28, seed=0)
    assert a.images.shape == (60, 28, 28, 3) and a.images.dtype == np.uint8
    assert a.classes == DIGITS and a.labels.dtype == np.int64
    assert np.array_equal(np.bincount(a.labels), [6] * 10)
    assert np.array_equal(a.images, synthetic_digits(6, 28, seed=0).images)
    assert not np.array_equal(a.images, synthetic_digits(6, 28, seed=1).images)
    prefix = synthetic_digits(3, 28, seed=0)
    assert np.array_equal(prefix.images, a.images[:30])  # n=3 is a prefix of n=6
    assert a.images.reshape(60, -1).std(axis=1).min() > 5  # never a blank image
    assert synthetic_digits(2, 32, seed=0).images.shape == (20, 32, 32, 3)


def test_synthetic_with_pillow_font_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(synthetic_module, "font_pool", lambda: (synthetic_module.DEFAULT_FONT,))
    synthetic_module._renderer.cache_clear()
    try:
        d = synthetic_digits(2, 28, seed=0)
        assert d.images.shape == (20, 28, 28, 3) and d.images.reshape(20, -1).std(axis=1).min() > 5
    finally:
        synthetic_module._renderer.cache_clear()
    assert font_pool()[-1] == synthetic_module.DEFAULT_FONT


def test_font_pool_is_what_packages_ship() -> None:
    """Every font file lies inside an installed package (matplotlib), none in the machine's font folders."""
    import matplotlib

    package = Path(matplotlib.__file__).parent.resolve()
    files = font_pool()[:-1]
    assert len(files) == len(synthetic_module.FONT_FILES) == 21
    assert all(Path(f).resolve().is_relative_to(package) for f in files)
    provenance = font_provenance()
    assert {"matplotlib", "pillow", "freetype"} <= set(provenance)
    assert all(len(provenance[Path(f).name]) == 16 for f in files)


# the demo's source domain at its config's size and seed (configs/digits.yaml), hashed in a fresh process
_RENDER_HASH = (
    "import hashlib; from transferviz.data import synthetic_digits; "
    "print(hashlib.sha256(synthetic_digits(40, 28, seed=0).images.tobytes()).hexdigest())"
)
_SYSTEM_FONT_DIRS = [d for d in ("/usr/share/fonts", "/usr/local/share/fonts") if Path(d).is_dir()]


def _render_hash(hide_system_fonts: bool) -> str:
    cmd = [sys.executable, "-c", _RENDER_HASH]
    if hide_system_fonts:
        # a private mount namespace with an empty tmpfs over each system font folder: the process sees no fonts
        mounts = " && ".join(f"mount -t tmpfs none {d}" for d in _SYSTEM_FONT_DIRS)
        check = " && ".join(f"test -z \"$(ls -A {d})\"" for d in _SYSTEM_FONT_DIRS)
        cmd = ["unshare", "-m", "sh", "-c", f'{mounts} && {check} && exec "$0" "$@"', *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[2])
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


def _can_hide_fonts() -> bool:
    if not _SYSTEM_FONT_DIRS or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", f"mount -t tmpfs none {_SYSTEM_FONT_DIRS[0]}"],
                           capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _can_hide_fonts(), reason="needs system font folders and 'unshare -m' (root)")
def test_demo_images_do_not_depend_on_system_fonts() -> None:
    """Issue 15: the same config gave other images once Debian's chromium brought the Liberation fonts."""
    assert _render_hash(hide_system_fonts=False) == _render_hash(hide_system_fonts=True)
