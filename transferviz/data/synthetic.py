"""Printed street-number-like digits that the project renders itself (the demo's source domain).

In the spirit of SVHN: each image shows one labelled digit, centred, printed in
one of 21 fonts that installed packages ship (matplotlib's DejaVu Sans, Sans Mono and
Serif, STIX General and Computer Modern families, plus Pillow's built-in font), at
varied sizes, stroke weights, widths, slants and rotations, in a colour that
contrasts with a textured or cluttered background (gradients, stripes, blotches,
noise, random lines and shapes), often with neighbouring digits partially
visible at the left and right edges, sometimes with a shadow or outline, then
blurred and noised.

Images are composed on a canvas of twice the output size (for outputs up to
64 px) and box-downsampled, which keeps generation fast: 2000 images at 28 px
take about 1.5 s of CPU time (fonts rendered once per process and cached).

Determinism: instance ``k`` of digit ``d`` is the ``k``-th draw from
the per-digit stream ``numpy.random.default_rng([seed, d])``, so a call is reproducible and
``synthetic_digits(100, ...)`` is a prefix (per class) of ``synthetic_digits(200, ...)``.
The font pool never comes from the machine's font folders (issue 15: installing
Debian's chromium brought the Liberation fonts, and from then on the demo rendered
other images and every stage of the next build reran): the images depend only on the
config and the installed packages -- matplotlib (a dependency of captum) for the
font files, Pillow and its bundled FreeType for drawing them. :func:`font_pool`
lists the files, :func:`font_provenance` what a build records about them.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import math
from pathlib import Path

import numpy as np
import PIL.features
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

from transferviz.data.loaders import DIGIT_CLASSES, DomainData
from transferviz.errors import TransferVizError

__all__ = ["synthetic_digits", "font_pool", "font_provenance", "DEFAULT_FONT", "FONT_FILES"]

DEFAULT_FONT = "<pillow-default>"
#: The font files drawn from, in matplotlib's ``mpl-data/fonts/ttf``: families with ordinary Latin digits
#: (DejaVu's condensed/display cuts and STIX's symbol fonts are left out). A fixed list, not a glob, so a
#: matplotlib release that adds a font does not silently change the demo's images.
FONT_FILES = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf",
    "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSansMono-Oblique.ttf", "DejaVuSansMono-BoldOblique.ttf",
    "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSerif-BoldItalic.ttf",
    "STIXGeneral.ttf", "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf", "STIXGeneralBolIta.ttf",
    "cmr10.ttf", "cmb10.ttf", "cmti10.ttf", "cmss10.ttf", "cmtt10.ttf",
)


def _package_font_dir() -> Path:
    """matplotlib's bundled TrueType folder, found without importing matplotlib (a second of start-up)."""
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        raise TransferVizError("the synthetic digits draw matplotlib's bundled fonts, but matplotlib is not "
                               "installed; install it with 'pip install matplotlib'")
    return Path(next(iter(spec.submodule_search_locations))) / "mpl-data" / "fonts" / "ttf"


@functools.lru_cache(maxsize=1)
def font_pool() -> tuple[str, ...]:
    """The font files drawn from (:data:`FONT_FILES` in matplotlib's font folder), then :data:`DEFAULT_FONT`
    (Pillow's built-in). A listed file that is missing is an error rather than a smaller pool: a smaller
    pool would render other images under the same config."""
    folder = _package_font_dir()
    missing = [name for name in FONT_FILES if not (folder / name).is_file()]
    if missing:
        raise TransferVizError(f"matplotlib's font folder {folder} lacks {', '.join(missing)}; reinstall "
                               "matplotlib ('pip install --force-reinstall matplotlib')")
    return (*(str(folder / name) for name in FONT_FILES), DEFAULT_FONT)


def font_provenance() -> dict[str, str]:
    """What the rendered images depend on besides the config: each font file's content hash, and the
    versions of the packages that ship the fonts and draw them (recorded in the build's manifest)."""
    out = {"matplotlib": importlib.metadata.version("matplotlib"), "pillow": importlib.metadata.version("pillow"),
           "freetype": str(PIL.features.version("freetype2"))}
    for path in font_pool()[:-1]:
        out[Path(path).name] = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    return out


@functools.lru_cache(maxsize=512)
def _load_font(key: str, size: int):
    if key == DEFAULT_FONT:
        try:
            return ImageFont.load_default(size=size)
        except (ImportError, OSError, TypeError):  # Pillow without FreeType: a small bitmap font
            return ImageFont.load_default()
    return ImageFont.truetype(key, size=size)


@functools.lru_cache(maxsize=8192)
def _glyph(font_key: str, digit: int, weight: int, ref_h: int) -> Image.Image:
    """Tight ``L`` mask of ``digit`` scaled to height ``ref_h``, dilated by ``weight`` px."""
    size = max(8, int(ref_h * 1.4))
    font = _load_font(font_key, size)
    canvas = Image.new("L", (ref_h * 4, ref_h * 4), 0)
    freetype = isinstance(font, ImageFont.FreeTypeFont)
    stroke = weight if freetype else 0  # glyph height at this font size is about ref_h
    ImageDraw.Draw(canvas).text((ref_h, ref_h), str(digit), fill=255, font=font,
                                stroke_width=stroke, stroke_fill=255)
    bbox = canvas.getbbox() or (0, 0, 1, 1)
    g = canvas.crop(bbox)
    w = max(1, round(g.width * ref_h / g.height))
    g = g.resize((w, ref_h), Image.Resampling.BICUBIC)
    if weight > 0 and not freetype:  # bitmap fallback font: thicken by dilation
        padded = Image.new("L", (g.width + 2 * weight, g.height + 2 * weight), 0)
        padded.paste(g, (weight, weight))
        g = padded.filter(ImageFilter.MaxFilter(2 * weight + 1))
    return g


#: Pillow's ``"L"`` conversion weights (ITU-R 601-2 luma)
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _luma(c) -> float:
    return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]


def _colour(rng: np.random.Generator) -> tuple[float, float, float]:
    """A random colour (0..1): random RGB with varied saturation, a third of them near-gray."""
    u0, u1, r, g, b = rng.random(5).tolist()
    gray = (r + g + b) / 3.0
    sat = 0.05 if u0 < 0.33 else 0.35 + 0.65 * u1
    return tuple(min(1.0, max(0.0, gray + sat * (v - gray))) for v in (r, g, b))


def _colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Background and foreground colours (0..1) with luminance contrast >= 0.35."""
    bg = _colour(rng)
    fg = None
    for _ in range(30):
        cand = _colour(rng)
        if abs(_luma(cand) - _luma(bg)) >= 0.35:
            fg = cand
            break
    if fg is None:
        fg = (0.0, 0.0, 0.0) if _luma(bg) > 0.5 else (1.0, 1.0, 1.0)
    return np.asarray(bg, dtype=np.float32), np.asarray(fg, dtype=np.float32)


def _near(rng: np.random.Generator, c: np.ndarray, amount: float) -> np.ndarray:
    return np.minimum(np.maximum(c + rng.uniform(-amount, amount, 3), 0.0), 1.0).astype(np.float32)


def _u8(c: np.ndarray) -> tuple[int, int, int]:
    """An RGB colour ``(3,)`` in 0..1 as the 0..255 integer triple Pillow's ``fill`` takes."""
    r, g, b = (int(min(255.0, max(0.0, float(v) * 255.0 + 0.5))) for v in c)
    return r, g, b


# background kinds: solid, gradient, stripes, blotches, fine texture
_BG_CUMULATIVE = np.cumsum([0.15, 0.3, 0.2, 0.25, 0.1])[:-1]


class _Renderer:
    """Composes one ``C x C`` image (float32 0..1 internally) per call of :meth:`render`."""

    def __init__(self, canvas: int) -> None:
        self.C = canvas
        self.ref_h = max(16, round(0.8 * canvas))
        lin = np.linspace(-1.0, 1.0, canvas, dtype=np.float32)
        self.yy, self.xx = np.meshgrid(lin, lin, indexing="ij")
        self.fonts = font_pool()

    def _ramp(self, rng: np.random.Generator) -> np.ndarray:
        """``(C, C, 1)`` linear ramp in [-1, 1] along a random direction."""
        phi = rng.uniform(0, 2 * math.pi)
        return (self.xx * math.cos(phi) + self.yy * math.sin(phi))[..., None]

    # ----------------------------------------------------------------- background
    def background(self, rng: np.random.Generator, bg: np.ndarray) -> np.ndarray:
        C = self.C
        kind = int(np.searchsorted(_BG_CUMULATIVE, rng.random(), side="right"))
        delta = _near(rng, bg, 0.3) - bg
        base = bg
        if kind == 1:  # linear gradient
            img = base + delta * (0.5 + 0.5 * self._ramp(rng))
        elif kind == 2:  # stripes
            t = np.sin(self._ramp(rng) * (math.pi * rng.uniform(1.5, 6.0)) + rng.uniform(0, 2 * math.pi))
            img = base + delta * (0.5 + 0.5 * t)
        elif kind == 3:  # blotches: low-frequency colour noise
            k = int(rng.integers(2, 6))
            grid = (rng.random((k, k, 3)) * 255).astype(np.uint8)
            blot_img = Image.fromarray(grid).resize((C, C), Image.Resampling.BICUBIC)
            blot = np.asarray(blot_img, dtype=np.float32)
            a = rng.uniform(0.15, 0.35)
            img = base * (1 - a) + blot * (a / 255.0)
        elif kind == 4:  # fine texture
            img = base + rng.normal(0, rng.uniform(0.04, 0.1), (C, C, 1)).astype(np.float32)
        else:
            img = np.broadcast_to(base, (C, C, 3))
        # clutter: a few lines, boxes and ellipses in background-like colours
        n = int(rng.integers(0, 4))
        if n:
            mask = Image.new("L", (C, C), 0)
            draw = ImageDraw.Draw(mask)
            for _ in range(n):
                x0, y0, x1, y1 = (rng.uniform(-0.2, 1.2, 4) * C).tolist()
                box = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
                shape = rng.integers(3)
                if shape == 0:
                    draw.line((x0, y0, x1, y1), fill=255, width=int(rng.integers(1, max(2, C // 12))))
                elif shape == 1:
                    draw.rectangle(box, outline=255, width=int(rng.integers(1, max(2, C // 16))))
                else:
                    draw.ellipse(box, fill=255)
            m = np.asarray(mask, dtype=np.float32)[..., None] * (rng.uniform(0.25, 0.55) / 255.0)
            img = img + (_near(rng, bg, 0.45) - img) * m
        return img

    # ----------------------------------------------------------------- digits
    def digit_mask(self, rng: np.random.Generator, digit: int) -> Image.Image:
        """``L`` coverage of the label digit and its partially visible neighbours."""
        C, ref_h = self.C, self.ref_h
        font = self.fonts[int(rng.integers(len(self.fonts)))]
        weight = (0, 0, 1, 1, 2)[int(rng.integers(5))] * max(1, ref_h // 45)
        main = _glyph(font, digit, weight, ref_h)
        gap = int(rng.uniform(0.12, 0.4) * ref_h)
        left = _glyph(font, int(rng.integers(10)), weight, ref_h) if rng.random() < 0.4 else None
        right = _glyph(font, int(rng.integers(10)), weight, ref_h) if rng.random() < 0.4 else None
        lw = left.width + gap if left is not None else 0
        rw = right.width + gap if right is not None else 0
        H = main.height
        strip = Image.new("L", (lw + main.width + rw, H), 0)
        if left is not None:
            strip.paste(left, (0, (H - left.height) // 2))
        strip.paste(main, (lw, 0))
        if right is not None:
            strip.paste(right, (lw + main.width + gap, (H - right.height) // 2))
        cx, cy = lw + main.width / 2.0, H / 2.0

        # Forward map strip -> canvas: p = s R(theta) [[aspect, shear], [0, 1]] (q - c) + centre.
        # PIL's AFFINE wants the inverse (canvas -> strip).
        s = rng.uniform(0.55, 0.85) * C / H  # displayed digit height 0.55..0.85 of the canvas
        aspect = rng.uniform(0.8, 1.25)
        theta = min(0.3, max(-0.3, rng.normal(0.0, 0.1)))  # radians, about 6 degrees sd
        shear = rng.uniform(-0.2, 0.2)
        cos, sin = math.cos(theta), math.sin(theta)
        m00, m01 = s * cos * aspect, s * (cos * shear - sin)
        m10, m11 = s * sin * aspect, s * (sin * shear + cos)
        det = m00 * m11 - m01 * m10
        i00, i01, i10, i11 = m11 / det, -m01 / det, -m10 / det, m00 / det
        ox, oy = C / 2.0 + rng.uniform(-0.06, 0.06) * C, C / 2.0 + rng.uniform(-0.06, 0.06) * C
        data = (i00, i01, cx - (i00 * ox + i01 * oy), i10, i11, cy - (i10 * ox + i11 * oy))
        return strip.transform((C, C), Image.Transform.AFFINE, data, resample=Image.Resampling.BILINEAR)

    def render(self, rng: np.random.Generator, digit: int) -> Image.Image:
        """One ``C x C`` RGB image of ``digit`` (no blur or noise: see :func:`synthetic_digits`)."""
        C = self.C
        bg, fg = _colours(rng)
        back = self.background(rng, bg)
        img = Image.fromarray((np.clip(back, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8))
        mask = self.digit_mask(rng, digit)
        effect = rng.random()
        if effect < 0.2:  # drop shadow
            d = int(rng.integers(1, max(2, C // 20) + 1))
            dx, dy = (int(v) * d for v in rng.choice([-1, 1], 2))
            shade = bg * rng.uniform(0.2, 0.6) if _luma(bg) > 0.4 else np.minimum(bg + 0.4, 1.0)
            img = Image.composite(Image.new("RGB", (C, C), _u8(shade)), img, ImageChops.offset(mask, dx, dy))
        elif effect < 0.35:  # outline in a third colour
            ring = mask.filter(ImageFilter.MaxFilter(2 * max(1, C // 28) + 1))
            img = Image.composite(Image.new("RGB", (C, C), _u8(rng.random(3))), img, ring)
        if rng.random() < 0.3:  # shaded ink
            ramp = self._ramp(rng) * (0.5 * rng.uniform(0.1, 0.3)) + fg
            ink = Image.fromarray((np.clip(ramp, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8))
        else:
            ink = Image.new("RGB", (C, C), _u8(fg))
        return Image.composite(ink, img, mask)


@functools.lru_cache(maxsize=4)
def _renderer(canvas: int) -> _Renderer:
    return _Renderer(canvas)


#: Handwritten-style renders (``style="handwritten"``): strength of the elastic distortion (displacement in
#: canvas pixels before smoothing) and the smoothing's width as a share of the canvas -- Simard et al.'s
#: (2003) MNIST augmentation, alpha 34 and sigma 4 on 28 px, scaled to the canvas.
_ELASTIC_ALPHA, _ELASTIC_SIGMA = 34.0 / 28.0, 4.0 / 28.0


def _handwritten(r: _Renderer, rng: np.random.Generator, digit: int) -> np.ndarray:
    """One ``C x C`` float32 grey image (0..255) of ``digit`` in the style of scanned handwriting: the printed
    glyph (a random font, weight, slant, partly visible neighbours as in the printed domain) elastically
    distorted, bright ink on black -- the strokes and contrast of MNIST rather than of a street sign."""
    from scipy.ndimage import gaussian_filter, map_coordinates  # scipy ships with scikit-learn

    C = r.C
    mask = np.asarray(r.digit_mask(rng, digit), dtype=np.float32) / 255.0
    sigma = _ELASTIC_SIGMA * C
    alpha = _ELASTIC_ALPHA * C * rng.uniform(0.6, 1.2)
    dy = gaussian_filter(rng.uniform(-1.0, 1.0, (C, C)), sigma, mode="constant") * alpha
    dx = gaussian_filter(rng.uniform(-1.0, 1.0, (C, C)), sigma, mode="constant") * alpha
    yy, xx = np.meshgrid(np.arange(C), np.arange(C), indexing="ij")
    warped = map_coordinates(mask, (yy + dy, xx + dx), order=1, mode="constant").astype(np.float32)
    ink = rng.uniform(0.75, 1.0) * 255.0
    return warped * ink


def synthetic_digits(n_per_class: int, image_size: int, seed: int, grayscale: bool = False,
                     style: str = "printed") -> DomainData:
    """``10 * n_per_class`` printed digits (classes ``"0"``..``"9"``), ``uint8 (N, S, S, 3)``.

    Instances are interleaved by class (labels 0, 1, ..., 9, 0, 1, ...).  See the
    module docstring for what varies and for determinism. ``grayscale``: every image is
    converted to its luma (ITU-R 601, as Pillow's ``"L"``) repeated in the three channels --
    the same draws, so instance ``k`` is the grey version of the coloured instance ``k``;
    the colours were drawn with a luminance contrast of at least 0.35, so the digit stays legible.
    ``style="handwritten"``: the same glyphs elastically distorted, bright ink on a black background, always
    grey (a distorted, handwritten-looking target for a printed source: configs/scale.yaml); its own draws.
    """
    if style not in ("printed", "handwritten"):
        raise ValueError(f"style must be 'printed' or 'handwritten', got {style!r}")
    if n_per_class < 1:
        raise ValueError(f"n_per_class must be >= 1, got {n_per_class}")
    if image_size < 8:
        raise ValueError(f"image_size must be >= 8, got {image_size}")
    canvas = 2 * image_size if image_size <= 64 else image_size
    r = _renderer(canvas)
    n = 10 * n_per_class
    images = np.empty((n, image_size, image_size, 3), dtype=np.uint8)
    labels = np.tile(np.arange(10, dtype=np.int64), n_per_class)
    for d in range(10):
        rng = np.random.default_rng([seed, d])  # one stream per class: n=100 is a prefix of n=200
        for k in range(n_per_class):
            if style == "handwritten":
                pil = Image.fromarray(np.clip(_handwritten(r, rng, d) + 0.5, 0, 255).astype(np.uint8)).convert("RGB")
            else:
                pil = r.render(rng, d)
            if canvas != image_size:
                pil = pil.resize((image_size, image_size), Image.Resampling.BOX)
            if rng.random() < 0.4:
                pil = pil.filter(ImageFilter.GaussianBlur(rng.uniform(0.15, 0.55) * image_size / 28.0))
            a = np.asarray(pil, dtype=np.float32)
            sigma = rng.uniform(0.0, 9.0)
            if sigma > 1.0:
                a = a + rng.normal(0.0, sigma, a.shape).astype(np.float32)
            # after blur and noise: every draw is the coloured image's, only the colour goes
            if grayscale or style == "handwritten":
                a = (a @ _LUMA)[..., None]
            images[10 * k + d] = np.clip(a + 0.5, 0, 255).astype(np.uint8)
    origins = tuple(f"synthetic[{d},{k}]" for k in range(n_per_class) for d in range(10))
    return DomainData(images=images, labels=labels, classes=DIGIT_CLASSES, origins=origins)
