"""Office-31-shaped image folders, generated: 31 classes (Office-31's names) in two domains.

``amazon`` images are a coloured object on a white background, as product photos are;
``webcam`` images hold the same objects smaller, off centre, desaturated, blurred and noisy
on cluttered grey backgrounds. Each class is one of 8 shapes crossed with one of 4 surface
patterns, so the classes are learnable but not trivial. Written in Office-31's layout
``<root>/<domain>/images/<class>/*.png`` so that the ``image_folder`` loader reads them as it
reads the real dataset. The benchmark case of issue 16 (``benchmarks/office31_case.py``) and
the tests at the paper's scale use it; nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

__all__ = ["OFFICE31_CLASSES", "render", "write_office_shapes"]

OFFICE31_CLASSES = (
    "back_pack", "bike", "bike_helmet", "bookcase", "bottle", "calculator", "desk_chair", "desk_lamp",
    "desktop_computer", "file_cabinet", "headphones", "keyboard", "laptop_computer", "letter_tray",
    "mobile_phone", "monitor", "mouse", "mug", "paper_notebook", "pen", "phone", "printer", "projector",
    "punchers", "ring_binder", "ruler", "scissors", "speaker", "stapler", "tape_dispenser", "trash_can",
)
SHAPES = ("circle", "square", "triangle", "diamond", "cross", "ring", "bar", "star")
PATTERNS = ("solid", "hstripes", "vstripes", "dots")
CANVAS = 96  # drawn at 96 px; the loader resizes to the model's input size



RGB = tuple[int, int, int]


def _shape(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float, fill: RGB | int) -> None:
    box = (cx - r, cy - r, cx + r, cy + r)
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "square":
        draw.rectangle((cx - 0.8 * r, cy - 0.8 * r, cx + 0.8 * r, cy + 0.8 * r), fill=fill)
    elif shape == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + 0.8 * r), (cx + r, cy + 0.8 * r)], fill=fill)
    elif shape == "diamond":
        draw.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=fill)
    elif shape == "cross":
        w = 0.3 * r
        draw.rectangle((cx - w, cy - r, cx + w, cy + r), fill=fill)
        draw.rectangle((cx - r, cy - w, cx + r, cy + w), fill=fill)
    elif shape == "ring":
        draw.ellipse(box, outline=fill, width=max(2, int(0.35 * r)))
    elif shape == "bar":
        draw.rectangle((cx - r, cy - 0.35 * r, cx + r, cy + 0.35 * r), fill=fill)
    else:  # star: two overlaid triangles
        draw.polygon([(cx, cy - r), (cx - r, cy + 0.6 * r), (cx + r, cy + 0.6 * r)], fill=fill)
        draw.polygon([(cx, cy + r), (cx - r, cy - 0.6 * r), (cx + r, cy - 0.6 * r)], fill=fill)


def _pattern(img: Image.Image, mask: Image.Image, pattern: str, colour: RGB) -> None:
    """Paints the pattern in ``colour`` inside the object's mask."""
    if pattern == "solid":
        return
    layer = Image.new("L", img.size, 0)
    d = ImageDraw.Draw(layer)
    for k in range(0, CANVAS, 8):
        if pattern == "hstripes":
            d.rectangle((0, k, CANVAS, k + 3), fill=255)
        elif pattern == "vstripes":
            d.rectangle((k, 0, k + 3, CANVAS), fill=255)
        else:
            for j in range(0, CANVAS, 8):
                d.ellipse((k + 1, j + 1, k + 5, j + 5), fill=255)
    paint = Image.composite(layer, Image.new("L", img.size, 0), mask)
    img.paste(Image.new("RGB", img.size, colour), (0, 0), paint)


def render(cls: int, domain: str, rng: np.random.Generator) -> Image.Image:
    """One image of class ``cls`` in ``domain`` (``amazon`` or ``webcam``)."""
    shape, pattern = SHAPES[cls % len(SHAPES)], PATTERNS[cls // len(SHAPES)]
    hue = rng.integers(0, 256, 3)
    colour: RGB = (int(hue[0]), int(hue[1]), int(hue[2]))
    accent: RGB = (255 - colour[0], 255 - colour[1], 255 - colour[2])
    if domain == "amazon":
        img = Image.new("RGB", (CANVAS, CANVAS), (250, 250, 250))
        cx, cy = CANVAS / 2 + rng.normal(0, 3, 2)
        r = CANVAS * rng.uniform(0.30, 0.38)
    else:
        grey = int(rng.integers(70, 180))
        bg = np.clip(grey + rng.normal(0, 18, (CANVAS // 8, CANVAS // 8, 1)), 0, 255).repeat(3, axis=2)
        img = Image.fromarray(bg.astype(np.uint8)).resize((CANVAS, CANVAS), Image.Resampling.BILINEAR)
        d = ImageDraw.Draw(img)
        for _ in range(3):  # clutter: desk edges and objects of no class
            x0, y0 = rng.integers(0, CANVAS, 2)
            d.rectangle((int(x0), int(y0), int(x0) + int(rng.integers(8, 30)), int(y0) + int(rng.integers(4, 20))),
                        fill=tuple(int(v) for v in rng.integers(40, 200, 3)))
        cx, cy = CANVAS / 2 + rng.normal(0, 10, 2)
        r = CANVAS * rng.uniform(0.20, 0.30)
    mask = Image.new("L", img.size, 0)
    _shape(ImageDraw.Draw(mask), shape, cx, cy, r, 255)
    img.paste(Image.new("RGB", img.size, colour), (0, 0), mask)
    _pattern(img, mask, pattern, accent)
    if domain == "webcam":
        arr = np.asarray(img.filter(ImageFilter.GaussianBlur(rng.uniform(0.6, 1.4)))).astype(np.float32)
        grey = arr.mean(axis=2, keepdims=True)
        arr = 0.45 * arr + 0.55 * grey + rng.normal(0, 10, arr.shape)  # desaturated, noisy sensor
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    return img


def write_office_shapes(root: Path, per_class: dict[str, int], seed: int = 0) -> int:
    """Writes every domain's images under ``root``; returns how many were written."""
    n = 0
    for d, (domain, count) in enumerate(per_class.items()):
        for c, name in enumerate(OFFICE31_CLASSES):
            rng = np.random.default_rng([seed, d, c])
            folder = root / domain / "images" / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                render(c, domain, rng).save(folder / f"{domain}_{i:03d}.png")
                n += 1
    return n
