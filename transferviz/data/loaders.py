"""Domain loaders: image folders, scikit-learn's digits, SVHN and MNIST, and class alignment.

Every loader returns a :class:`DomainData`: RGB ``uint8`` images already at the
model's input size, ``int64`` labels indexing ``classes``, and the number of
files skipped (unreadable) and converted (not RGB).

Preprocessing conventions
-------------------------
* **Resizing keeps the aspect ratio**: an image that is not square is first
  centre-cropped to a square (its shorter side), then resized to ``S x S`` with
  an antialiased bicubic filter (``PIL.ImageOps.fit``).  Nothing is stretched.
* **Colour**: grayscale (``L``, ``1``), palette (``P``), ``CMYK``, 16-bit and other
  modes are converted to RGB and counted in ``converted``; images with an alpha
  channel are composited over white first.  EXIF orientation is applied.
* **Unreadable or corrupt files** are skipped and counted in ``skipped`` (their
  names are logged at WARNING level); files whose extension is not an image
  extension are ignored, not counted.
* **Images over a pixel limit** (``max_pixels``, default 40 megapixels) are skipped
  the same way, their size read from the header and never decoded, and counted in
  ``oversized`` too; Pillow's own decompression-bomb limit counts as one.
* Nothing is ever downloaded: a dataset whose files are absent raises a one-line
  :class:`~transferviz.errors.TransferVizError` naming the expected layout.
"""

from __future__ import annotations

import logging
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageOps

from transferviz.config import DEFAULT_MAX_PIXELS
from transferviz.errors import TransferVizError

__all__ = [
    "DomainData",
    "IMAGE_EXTENSIONS",
    "DEFAULT_LAYOUT",
    "sklearn_digits",
    "image_folder",
    "svhn",
    "mnist",
    "check_image_folder",
    "check_svhn",
    "check_mnist",
    "align_classes",
    "to_rgb",
    "fit_square",
]

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
DEFAULT_LAYOUT = "{root}/{domain}/images/{class}/*"
DIGIT_CLASSES = tuple(str(d) for d in range(10))

# Everything PIL raises for a file it cannot decode (truncated, not an image, bomb, ...).
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)


@dataclass(frozen=True, eq=False)
class DomainData:
    """One domain's instances, preprocessed to the model's input size.

    ``images``: ``uint8 (N, S, S, 3)`` RGB; ``labels``: ``int64 (N,)`` indexing ``classes``;
    ``skipped``: unreadable/corrupt files skipped; ``converted``: non-RGB images
    converted to RGB; ``origins``: where each instance came from (a path relative
    to the domain's class folders, or ``"<dataset>[<index>]"``), empty if not tracked;
    ``oversized``: of the skipped files, those over the pixel limit.
    Equality is identity (the fields are arrays).
    """

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    skipped: int = 0
    converted: int = 0
    origins: tuple[str, ...] = ()
    oversized: int = 0

    def __post_init__(self) -> None:
        if self.labels.dtype != np.int64 and np.issubdtype(self.labels.dtype, np.integer):
            object.__setattr__(self, "labels", self.labels.astype(np.int64))
        object.__setattr__(self, "classes", tuple(self.classes))
        object.__setattr__(self, "origins", tuple(self.origins))
        n = len(self.labels)
        if self.images.ndim != 4 or self.images.shape[3] != 3 or self.images.shape[1] != self.images.shape[2]:
            raise ValueError(f"DomainData.images must be (N, S, S, 3), got {self.images.shape}")
        if self.images.dtype != np.uint8 or self.labels.dtype != np.int64:
            raise ValueError(f"DomainData needs uint8 images and int64 labels, got "
                             f"{self.images.dtype} and {self.labels.dtype}")
        if len(self.images) != n or (self.origins and len(self.origins) != n):
            raise ValueError("DomainData: images, labels and origins differ in length")
        if n and (self.labels.min() < 0 or self.labels.max() >= len(self.classes)):
            raise ValueError("DomainData: a label does not index into classes")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def image_size(self) -> int:
        return int(self.images.shape[1])

    def counts(self) -> dict[str, int]:
        """Instances per class name."""
        per = np.bincount(self.labels, minlength=len(self.classes))
        return {c: int(k) for c, k in zip(self.classes, per)}


# --------------------------------------------------------------------------- preprocessing

def to_rgb(im: Image.Image) -> tuple[Image.Image, bool]:
    """Returns ``(rgb_image, converted)``; alpha is composited over white."""
    mode = im.mode
    if mode == "RGB":
        return im, False
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB"), True
    if mode in ("I", "F") or mode.startswith("I;"):
        a = np.asarray(im, dtype=np.float64)
        top = a.max() if a.size else 0.0
        if top > 255:
            a = a * (255.0 / top)
        g = np.clip(np.rint(a), 0, 255).astype(np.uint8)
        return Image.fromarray(np.repeat(g[..., None], 3, axis=2)), True
    return im.convert("RGB"), True


def fit_square(im: Image.Image, size: int) -> np.ndarray:
    """Centre-crops to a square and resizes to ``size`` (antialiased bicubic); ``uint8 (S, S, 3)``."""
    if im.size != (size, size):
        im = ImageOps.fit(im, (size, size), method=Image.Resampling.BICUBIC)
    return np.asarray(im, dtype=np.uint8)


def _resize_batch(images: np.ndarray, size: int) -> np.ndarray:
    """``uint8 (N, H, W, 3)`` -> ``(N, size, size, 3)`` via :func:`fit_square`."""
    if images.shape[1] == size and images.shape[2] == size:
        return np.ascontiguousarray(images)
    out = np.empty((len(images), size, size, 3), dtype=np.uint8)
    for i, a in enumerate(images):
        out[i] = fit_square(Image.fromarray(a), size)
    return out


def _gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[..., None], 3, axis=-1)


def _check_size(image_size: int) -> None:
    if not isinstance(image_size, (int, np.integer)) or image_size < 8:
        raise TransferVizError(f"image size {image_size!r} is not an integer >= 8; set model.input_size")


# --------------------------------------------------------------------------- sklearn digits

def sklearn_digits(image_size: int) -> DomainData:
    """scikit-learn's 1797 handwritten digits (8x8, values 0..16), smoothly upsampled.

    Values are scaled to 0..255 (ink is bright, background dark), each image is
    upsampled with bicubic interpolation to ``image_size`` and clipped, and the
    gray channel is repeated three times (each instance counts as ``converted``).
    Classes are ``"0"`` .. ``"9"``.
    """
    _check_size(image_size)
    from sklearn.datasets import load_digits

    bunch = load_digits()
    raw = np.asarray(bunch.images, dtype=np.float32) * (255.0 / 16.0)  # (N, 8, 8)
    n = len(raw)
    gray = np.empty((n, image_size, image_size), dtype=np.uint8)
    for i in range(n):
        up = Image.fromarray(raw[i]).resize((image_size, image_size), Image.Resampling.BICUBIC)
        gray[i] = np.clip(np.rint(np.asarray(up)), 0, 255).astype(np.uint8)
    labels = np.asarray(bunch.target, dtype=np.int64)
    return DomainData(images=_gray_to_rgb(gray), labels=labels, classes=DIGIT_CLASSES,
                      converted=n, origins=tuple(f"sklearn_digits[{i}]" for i in range(n)))


# --------------------------------------------------------------------------- image folders

def _layout_parts(layout: str, root: Path, domain: str) -> tuple[Path, str, str]:
    """Splits ``layout`` into (class parent folder, glob inside a class folder, readable form)."""
    if layout.count("{class}") != 1:
        raise TransferVizError(f"image folder layout {layout!r} must contain '{{class}}' exactly once, "
                               f"e.g. {DEFAULT_LAYOUT!r}")
    head, tail = layout.split("{class}")
    if head and not head.endswith("/") or tail and not tail.startswith("/"):
        raise TransferVizError(f"image folder layout {layout!r}: '{{class}}' must be a whole folder name, "
                               f"e.g. {DEFAULT_LAYOUT!r}")
    try:
        parent = head.format(root=str(root), domain=domain)
    except (KeyError, IndexError, ValueError) as exc:
        raise TransferVizError(f"image folder layout {layout!r}: only {{root}}, {{domain}} and {{class}} "
                               f"may appear ({exc})") from None
    pattern = tail.lstrip("/") or "*"
    readable = f"{parent}<class>/{pattern if pattern not in ('*', '**/*') else '<image>'}"
    return Path(parent or "."), pattern, readable


def _read_image(path: Path, size: int, max_pixels: int) -> tuple[np.ndarray | None, bool, bool]:
    """``(uint8 (S,S,3) or None if skipped, converted, over max_pixels)``; the size comes from the header,
    before anything is decoded."""
    try:
        with Image.open(path) as im:
            width, height = im.size
            if width * height > max_pixels:
                log.warning("skipping image %s: %d x %d pixels, more than max_pixels %d", path, width, height,
                            max_pixels)
                return None, False, True
            if im.format == "JPEG" and im.mode == "RGB":
                im.draft("RGB", (size, size))  # decode at a reduced scale, never below `size`
            im.load()
            im = ImageOps.exif_transpose(im)
            rgb, converted = to_rgb(im)
            return fit_square(rgb, size), converted, False
    except Image.DecompressionBombError as exc:  # beyond Pillow's own limit, whatever max_pixels says
        log.warning("skipping image %s (%s)", path, exc)
        return None, False, True
    except _DECODE_ERRORS as exc:
        log.warning("skipping unreadable image %s (%s)", path, exc)
        return None, False, False


def check_image_folder(root: Path | str, domain: str, layout: str = DEFAULT_LAYOUT, *,
                       where: str = "the config") -> tuple[Path, str, str, str]:
    """A one-line error unless the root and the domain's folder of class folders exist (what can be checked
    before any image is read); returns that folder, the glob inside a class folder, the expected layout and
    the fix, for :func:`image_folder`'s messages."""
    root = Path(root)
    parent, pattern, readable = _layout_parts(layout, root, domain)
    default = " (Office-31 layout)" if layout == DEFAULT_LAYOUT else ""
    expected = f"expected {readable} with extensions {'/'.join(e[1:] for e in IMAGE_EXTENSIONS)}{default}"
    fix = f"set the data root in {where}"
    if not root.is_dir():
        what = "is a file, not a folder" if root.exists() else "does not exist"
        raise TransferVizError(f"data root {root} {what}: {expected}; {fix}")
    if not parent.is_dir():
        raise TransferVizError(f"no folder {parent} for domain {domain!r}: {expected}; {fix}")
    return parent, pattern, expected, fix


def image_folder(root: Path | str, domain: str, image_size: int, layout: str = DEFAULT_LAYOUT, *,
                 where: str = "the config", workers: int | None = None,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> DomainData:
    """Loads one domain from class folders (Office-31 layout by default).

    ``layout`` is a path template with ``{root}``, ``{domain}`` and ``{class}``
    (a whole folder name); the part after ``{class}`` is a glob inside each class
    folder (``*``, ``*.jpg``, ``**/*``).  Class names are the names of the class
    folders that hold at least one readable image, sorted; any names work.
    Files with an extension in :data:`IMAGE_EXTENSIONS` (any case) are read; those of more than
    ``max_pixels`` pixels are skipped (and counted in ``skipped`` and ``oversized``) without being decoded.
    ``where`` names the config file in error messages.
    """
    _check_size(image_size)
    parent, pattern, expected, fix = check_image_folder(root, domain, layout, where=where)

    def is_image(p: Path) -> bool:
        return p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file() and not p.name.startswith(".")

    class_dirs = sorted((d for d in parent.iterdir() if d.is_dir() and not d.name.startswith(".")),
                        key=lambda d: d.name)
    files: list[tuple[str, Path]] = []
    for d in class_dirs:
        files.extend((d.name, p) for p in sorted(d.glob(pattern), key=lambda p: str(p)) if is_image(p))
    if not files:
        loose = sum(1 for p in parent.iterdir() if is_image(p))
        hint = f" (found {loose} images directly in it: put them in one folder per class)" if loose else ""
        raise TransferVizError(f"no images under {parent}{hint}: {expected}; {fix}")

    n_workers = workers or min(4, os.cpu_count() or 1)
    # max_pixels is the limit that counts: Pillow's warning for images between its own two limits would
    # only repeat it (the filter is process-wide, so the loader threads see it too)
    with warnings.catch_warnings(), ThreadPoolExecutor(max_workers=n_workers) as pool:  # PIL decodes without the GIL
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        results = list(pool.map(lambda cp: _read_image(cp[1], image_size, max_pixels), files))

    kept = [(c, p, arr, conv) for (c, p), (arr, conv, _) in zip(files, results) if arr is not None]
    skipped = len(files) - len(kept)
    oversized = sum(big for _, _, big in results)
    if not kept:
        why = (f"{oversized} of them have more than max_pixels = {max_pixels:,} pixels; raise the domain's "
               f"max_pixels in {where} to read them" if oversized else "corrupt or not images")
        raise TransferVizError(f"none of the {len(files)} images under {parent} could be read ({why}): "
                               f"{expected}; {fix}")
    classes = tuple(sorted({c for c, _, _, _ in kept}))
    index = {c: i for i, c in enumerate(classes)}
    empty = [d.name for d in class_dirs if d.name not in index]
    if empty:
        log.warning("domain %r: class folders without readable images ignored: %s", domain, ", ".join(empty))
    images = np.stack([arr for _, _, arr, _ in kept])
    labels = np.asarray([index[c] for c, _, _, _ in kept], dtype=np.int64)
    origins = tuple(p.relative_to(parent).as_posix() for _, p, _, _ in kept)
    return DomainData(images=images, labels=labels, classes=classes, skipped=skipped,
                      converted=sum(conv for _, _, _, conv in kept), origins=origins, oversized=oversized)


# --------------------------------------------------------------------------- SVHN / MNIST

def _sample_per_class(labels: np.ndarray, per_class: int, seed: int, name: str) -> np.ndarray:
    """Seeded sample of up to ``per_class`` indices of each label; sorted indices."""
    if per_class < 1:
        raise TransferVizError(f"{name}: per_class must be >= 1, got {per_class}; fix it in the config")
    rng = np.random.default_rng(seed)
    chosen = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if len(idx) < per_class:
            log.warning("%s: class %s has only %d instances (< %d requested); taking all",
                        name, c, len(idx), per_class)
        chosen.append(rng.choice(idx, size=min(per_class, len(idx)), replace=False))
    return np.sort(np.concatenate(chosen))


def _digits_domain(images: np.ndarray, digits: np.ndarray, keep: np.ndarray, image_size: int,
                   name: str, converted: bool) -> DomainData:
    """``images``: the kept instances only, ``uint8 (K, H, W, 3)``; ``digits``: all labels."""
    present = np.unique(digits[keep])
    classes = tuple(str(int(d)) for d in present)
    remap = np.full(int(present.max()) + 1, -1, dtype=np.int64)
    remap[present] = np.arange(len(present))
    imgs = _resize_batch(images, image_size)
    return DomainData(images=imgs, labels=remap[digits[keep]], classes=classes,
                      converted=len(keep) if converted else 0,
                      origins=tuple(f"{name}[{int(i)}]" for i in keep))


def check_svhn(root: Path | str, *, where: str = "the config") -> Path:
    """The SVHN file under ``root``, or a one-line error naming the expected layout."""
    mat = Path(root) / "train_32x32.mat"
    if not mat.is_file():
        raise TransferVizError(f"SVHN file {mat} not found: expected <root>/train_32x32.mat "
                               f"(torchvision SVHN layout, split 'train'; downloading is off); "
                               f"set the data root in {where}")
    return mat


def svhn(root: Path | str, per_class: int, image_size: int, seed: int, *,
         where: str = "the config") -> DomainData:
    """SVHN's training split via ``torchvision.datasets.SVHN(root, split="train", download=False)``.

    Needs ``<root>/train_32x32.mat`` (and scipy).  torchvision maps SVHN's label 10
    to digit 0.  The file's MD5 is not checked, so a re-saved or reduced file with
    the same ``X``/``y`` variables works.  ``per_class`` instances of each digit are
    sampled with ``seed`` (all of a digit's if it has fewer); classes are the digits present.
    """
    _check_size(image_size)
    root = Path(root)
    mat = check_svhn(root, where=where)
    try:
        import scipy.io  # noqa: F401  (torchvision's SVHN reads .mat files with scipy)
    except ImportError:
        raise TransferVizError("reading SVHN needs scipy: pip install scipy") from None
    from torchvision.datasets import SVHN

    class _LocalSVHN(SVHN):
        def _check_integrity(self) -> bool:  # presence only: no MD5, never a download
            return os.path.isfile(os.path.join(self.root, self.filename))

    try:
        ds = _LocalSVHN(str(root), split="train", download=False)
        data = np.asarray(ds.data)  # (N, 3, 32, 32)
        digits = np.asarray(ds.labels, dtype=np.int64)
        if data.ndim != 4 or data.shape[1] != 3 or len(data) != len(digits) or len(data) == 0:
            raise ValueError(f"X has shape {data.shape} for {len(digits)} labels")
    except Exception as exc:  # scipy/torchvision raise many types on a bad file
        raise TransferVizError(f"cannot read SVHN file {mat} ({type(exc).__name__}: "
                               f"{str(exc).splitlines()[0] if str(exc) else ''}): expected variables X "
                               f"(32, 32, 3, N) and y (N, 1); replace the file") from None
    if digits.min() < 0 or digits.max() > 9:
        raise TransferVizError(f"SVHN file {mat} has labels outside 0..10; replace the file")
    keep = _sample_per_class(digits, per_class, seed, "svhn")
    images = np.ascontiguousarray(data[keep].transpose(0, 2, 3, 1)).astype(np.uint8, copy=False)
    return _digits_domain(images, digits, keep, image_size, "svhn", converted=False)


_MNIST_TRAIN = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")


def check_mnist(root: Path | str, *, where: str = "the config") -> Path:
    """The folder of MNIST's unpacked training files under ``root``, or a one-line error naming the expected
    layout (and where the files are when they lie one folder off, or still packed)."""
    root = Path(root)
    raw = root / "MNIST" / "raw"
    missing = [f for f in _MNIST_TRAIN if not (raw / f).is_file()]
    if missing:
        hint = ""
        for cand in (root / "raw", root, raw):
            if all((cand / f).is_file() for f in _MNIST_TRAIN) and cand != raw:
                hint = f" (found them in {cand}: set the root to the folder that contains MNIST/raw)"
                break
            if all((cand / (f + ".gz")).is_file() for f in _MNIST_TRAIN):
                hint = f" (found .gz archives in {cand}: unpack them with gunzip into {raw})"
                break
        raise TransferVizError(f"MNIST files not found: expected {raw}/{_MNIST_TRAIN[0]} and "
                               f"{_MNIST_TRAIN[1]} (torchvision MNIST layout, unpacked; downloading is off)"
                               f"{hint}; set the data root in {where}")
    return raw


def mnist(root: Path | str, per_class: int, image_size: int, seed: int, *,
          where: str = "the config") -> DomainData:
    """MNIST's training split via ``torchvision.datasets.MNIST(root, train=True, download=False)``.

    Needs the unpacked ``<root>/MNIST/raw/train-images-idx3-ubyte`` and
    ``train-labels-idx1-ubyte`` (the ``t10k`` files are not needed).  ``per_class``
    instances of each digit are sampled with ``seed``; the gray images are resized
    and repeated to RGB (each counts as ``converted``).
    """
    _check_size(image_size)
    root = Path(root)
    raw = check_mnist(root, where=where)
    from torchvision.datasets import MNIST

    class _LocalMNIST(MNIST):
        @property
        def raw_folder(self) -> str:  # torchvision derives it from the class name
            return os.path.join(self.root, "MNIST", "raw")

        @property
        def processed_folder(self) -> str:
            return os.path.join(self.root, "MNIST", "processed")

        def _check_exists(self) -> bool:  # only the training files are needed
            return all(os.path.isfile(os.path.join(self.raw_folder, f)) for f in _MNIST_TRAIN)

    try:
        ds = _LocalMNIST(str(root), train=True, download=False)
        gray = ds.data.numpy()  # (N, 28, 28) uint8
        digits = ds.targets.numpy().astype(np.int64)
        if gray.ndim != 3 or len(gray) != len(digits) or len(gray) == 0:
            raise ValueError(f"{len(gray)} images for {len(digits)} labels")
    except Exception as exc:  # torchvision asserts / raises TypeError on bad idx files
        raise TransferVizError(f"cannot read MNIST files in {raw} ({type(exc).__name__}: "
                               f"{str(exc).splitlines()[0] if str(exc) else 'bad idx header'}); "
                               f"replace them with the original unpacked idx files") from None
    if digits.min() < 0 or digits.max() > 9:
        raise TransferVizError(f"MNIST labels in {raw} lie outside 0..9; replace the label file")
    keep = _sample_per_class(digits, per_class, seed, "mnist")
    return _digits_domain(_gray_to_rgb(gray[keep]), digits, keep, image_size, "mnist", converted=True)


# --------------------------------------------------------------------------- pairing

def align_classes(a: DomainData, b: DomainData, *,
                  names: Sequence[str] = ("source", "target")) -> tuple[DomainData, DomainData]:
    """Gives ``b`` the class order of ``a`` (labels remapped); both must hold the same classes.

    Classes present in one domain only are a one-line error listing them.
    """
    for d, name in zip((a, b), names):
        if len(set(d.classes)) != len(d.classes):
            raise TransferVizError(f"{name} domain has duplicate class names {list(d.classes)}")
    only_a = [c for c in a.classes if c not in set(b.classes)]
    only_b = [c for c in b.classes if c not in set(a.classes)]
    if only_a or only_b:
        parts = [f"only in {n}: {', '.join(map(repr, only))}"
                 for n, only in zip(names, (only_a, only_b)) if only]
        raise TransferVizError(f"classes present in one domain only ({'; '.join(parts)}); "
                               f"give both domains the same class folders")
    if a.classes == b.classes:
        return a, b
    position = {c: i for i, c in enumerate(a.classes)}
    lookup = np.asarray([position[c] for c in b.classes], dtype=np.int64)
    return a, replace(b, labels=lookup[b.labels], classes=a.classes)
