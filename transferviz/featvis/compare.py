"""How each neuron's feature visualization changed through fine-tuning (seed 003), and gray detection.

Pipeline for two renders of the same neurons (source model, fine-tuned model; same seed, so
each pair started from the same image and saw the same transforms):

1. :func:`colourfulness` scores every image; :func:`detect_gray` flags washed-out gray ones
   (a neuron whose optimisation went nowhere keeps the faint gray start image) with a
   change-point cut-off (:func:`gray_cutoff`) computed over all scores.
2. :func:`embedding_similarity` gives the cosine similarity of the two images of each neuron in
   the fixed embedding :func:`image_embedding`.
3. :func:`most_changed` lists, per layer, the neurons with the lowest similarity among those
   whose images are not gray.

:func:`compare_renders` runs the three steps.

Why this embedding (and not a network's features): no pretrained weights can be downloaded,
and the models at hand are poor judges. The source model's penultimate features were trained
on one small domain and may be blind to exactly what changed (e.g. colour, for a model trained
on gray digits); and each image was optimised to excite a unit of one of the two models, so
embedding it with either model would score the pair on that model's terms. A fixed, model-free
embedding treats both images alike, is deterministic and costs about 2 ms of CPU per image.
It has two equally weighted, separately L2-normalised blocks, so the cosine is the mean
of two cosines:

* **layout**: CIE Lab pixels averaged on a 4 x 4 grid (L centred on mid-gray, all scaled to
  about [-1, 1]): where the colours and light/dark regions are, coarse enough that a pattern
  drifting by a fraction of its period does not flip the sign. Because both images of a neuron
  start from the same image under the same transforms, an unchanged neuron gives nearly the
  same layout; a perceptual colour space makes equal distances look about equally different.
* **texture**: the Gram matrix (signed square root) of a fixed filter bank on the Lab image
  (oriented derivative-of-Gaussian filters at 4 orientations and 2 scales on L, plus blurred
  L, a and b): which orientations, stroke widths and colour-edge combinations occur, wherever
  they are (Gram matrices are translation-invariant; Gatys et al. 2015 use them as a style
  descriptor, and the seed's ``distance.py`` compares visualizations by Gram matrices too).

Similarities are comparable within a run (ranking) rather than calibrated. Check on 53
random-init SmallAlexNet neurons (28 px, 96 steps) rendered with two different seeds: the
same neuron's two images score 0.84 on average, different neurons' 0.39, and for 98% of
(neuron, other neuron) pairs the neuron's own other image is the more similar one (the
two-seed images differ more than an unchanged neuron's pair does, since those share a seed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "GRAY_FLOOR",
    "colourfulness",
    "colourfulness_scores",
    "gray_cutoff",
    "detect_gray",
    "image_embedding",
    "embedding_similarity",
    "most_changed",
    "ChangeResult",
    "compare_renders",
]

Embed = Callable[[np.ndarray], np.ndarray]

# Absolute floor of the gray cut-off: below this score an image reads as washed-out gray
# (e.g. luminance standard deviation under ~20 of 255 levels and hardly any colour). lucid's
# start image (sd = 0.01 spectrum), which a neuron with zero gradient keeps, scores ~0.005;
# a neuron whose optimisation stalled after a few steps leaves a faint image at 0.03-0.08;
# renders of SmallAlexNet neurons that worked score 0.25-0.7.
GRAY_FLOOR = 0.1
# A change point is accepted as a gray/non-gray split only if the groups' geometric means
# differ at least this much ...
_MIN_GROUP_RATIO = 3.0
# ... and the empty gap between the groups spans at least this fraction of the distance
# between their means (in log score): two clusters, not a split of one continuum.
_MIN_GAP_FRACTION = 0.25
# A cut-off above this is never a "washed-out" threshold (clearly visible images score more),
# so the change point can only move the cut-off within [GRAY_FLOOR, _MAX_CUTOFF].
_MAX_CUTOFF = 0.2
_EPS = 1e-6


def _as_float_rgb(img: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 or float in [0, 1] -> float64 in [0, 1]."""
    a = np.asarray(img)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {a.shape}")
    return a.astype(np.float64) / 255.0 if a.dtype == np.uint8 else a.astype(np.float64)


def colourfulness(img: np.ndarray) -> float:
    """Visibility score of an image: Hasler-Suesstrunk colourfulness plus luminance contrast.

    ``M = sqrt(sd(rg)^2 + sd(yb)^2) + 0.3 sqrt(mean(rg)^2 + mean(yb)^2)`` with ``rg = R - G``
    and ``yb = (R + G) / 2 - B`` (Hasler & Suesstrunk 2003), on [0, 1] pixels; plus the RMS
    contrast ``sd(0.299 R + 0.587 G + 0.114 B)``. Colourfulness alone would call every
    high-contrast black-and-white stroke image gray (common for digit models); contrast alone
    would miss colour. A washed-out gray image has neither, and scores near 0.
    """
    x = _as_float_rgb(img)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    rg = r - g
    yb = 0.5 * (r + g) - b
    hasler = math.hypot(rg.std(), yb.std()) + 0.3 * math.hypot(rg.mean(), yb.mean())
    contrast = (0.299 * r + 0.587 * g + 0.114 * b).std()
    return float(hasler + contrast)


def colourfulness_scores(images: np.ndarray) -> np.ndarray:
    """:func:`colourfulness` of each image of ``(N, H, W, 3)``, float64 ``(N,)``."""
    return np.array([colourfulness(im) for im in images], dtype=np.float64)


def gray_cutoff(scores: Sequence[float] | np.ndarray) -> float:
    """Score below which an image counts as gray: a change point in the sorted scores.

    Method (float64 throughout): sort ``log(score + 1e-6)``; for every split into a low and a
    high group fit each by its mean and take the split with the least total squared error
    (two-segment least squares; O(N) with prefix sums). The split is accepted only if it
    separates two clusters: the groups' geometric means differ by at least 3x, and the empty
    gap between them is at least a quarter of the distance between the means; then the cut-off
    is the geometric midpoint of the gap, clamped to ``[GRAY_FLOOR, 0.2]``. Otherwise (no gray
    cluster, e.g. all neurons rendered fine) the cut-off is the floor :data:`GRAY_FLOOR` (0.1).
    The clamp keeps the data-driven split from calling a visible image gray (a split between
    dull and vivid renders) or from letting a faint one through (a split between untouched
    start images and faint ones). Log scores make the split scale-free: gray images differ
    from good ones by a factor, not by an offset.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    s = s[np.isfinite(s)]
    if s.size < 3:
        return GRAY_FLOOR
    x = np.sort(np.log(np.maximum(s, 0.0) + _EPS))
    n = x.size
    c1, c2 = np.cumsum(x), np.cumsum(x * x)
    k = np.arange(1, n)  # low group x[:k], high group x[k:]
    low_sse = c2[k - 1] - c1[k - 1] ** 2 / k
    high_sum, high_sq = c1[-1] - c1[k - 1], c2[-1] - c2[k - 1]
    high_sse = high_sq - high_sum ** 2 / (n - k)
    best = int(k[np.argmin(low_sse + high_sse)])
    low_mean, high_mean = x[:best].mean(), x[best:].mean()
    distance = high_mean - low_mean
    gap = x[best] - x[best - 1]
    if distance < math.log(_MIN_GROUP_RATIO) or gap < _MIN_GAP_FRACTION * distance:
        return GRAY_FLOOR
    cut = math.exp(0.5 * (x[best - 1] + x[best])) - _EPS
    return float(min(max(cut, GRAY_FLOOR), _MAX_CUTOFF))


def detect_gray(scores: Sequence[float] | np.ndarray, cutoff: float | None = None) -> np.ndarray:
    """Boolean mask of gray images: ``score < cutoff`` (default :func:`gray_cutoff` of ``scores``).

    Pass the scores of *both* models' images together so that one cut-off serves the pair.
    Non-finite scores count as gray.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    if cutoff is None:
        cutoff = gray_cutoff(s)
    return ~(s >= cutoff)


# ---------------------------------------------------------------- embedding

_EMBED_SIDE = 32  # images are resampled to this side first: any render size gives one embedding
_LAYOUT_SIDE = 4
_XYZ_FROM_RGB = torch.tensor([[0.4124564, 0.3575761, 0.1804375],
                              [0.2126729, 0.7151522, 0.0721750],
                              [0.0193339, 0.1191920, 0.9503041]], dtype=torch.float64)
_WHITE_D65 = torch.tensor([0.95047, 1.0, 1.08883], dtype=torch.float64)


def _rgb_to_lab_scaled(rgb: Tensor) -> Tensor:
    """sRGB ``(N, 3, H, W)`` in [0, 1] -> (L - 50, a, b) / 50, roughly in [-1, 1]."""
    lin = torch.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = torch.einsum("ij,njhw->nihw", _XYZ_FROM_RGB, lin) / _WHITE_D65.view(1, 3, 1, 1)
    delta = 6.0 / 29.0
    f = torch.where(xyz > delta ** 3, xyz.clamp_min(1e-12) ** (1.0 / 3.0), xyz / (3 * delta ** 2) + 4.0 / 29.0)
    lightness = 116.0 * f[:, 1] - 16.0
    a = 500.0 * (f[:, 0] - f[:, 1])
    b = 200.0 * (f[:, 1] - f[:, 2])
    return torch.stack([lightness - 50.0, a, b], dim=1) / 50.0


def _filter_bank() -> tuple[Tensor, Tensor]:
    """Oriented derivative-of-Gaussian kernels ``(8, 1, k, k)`` and a Gaussian blur ``(1, 1, k, k)``.

    Derivatives at 4 angles (0, 45, 90, 135 degrees) x sigma 1, 2 (thin and thick strokes);
    the blur has sigma 1. All share one size (sigma-2 support), so one conv call applies them.
    """
    t = torch.arange(-6, 7, dtype=torch.float64)  # radius 3 sigma for sigma = 2
    yy, xx = torch.meshgrid(t, t, indexing="ij")
    kernels = []
    for sigma in (1.0, 2.0):
        g = torch.exp(-0.5 * (xx ** 2 + yy ** 2) / sigma ** 2)
        for angle in (0.0, 45.0, 90.0, 135.0):
            c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
            k = -(c * xx + s * yy) / sigma ** 2 * g  # derivative along the direction
            kernels.append(k / k.abs().sum())
    g1 = torch.exp(-0.5 * (xx ** 2 + yy ** 2))
    return torch.stack(kernels)[:, None], (g1 / g1.sum())[None, None]


_ORIENTED, _BLUR = _filter_bank()


def image_embedding(images: np.ndarray) -> np.ndarray:
    """The documented model-free embedding (module docstring), ``(N, H, W, 3)`` -> float32 ``(N, D)``.

    Rows are unit vectors (a block with no signal, e.g. a flat gray image's texture, is zero),
    so the dot product of two rows is their cosine similarity. Deterministic: fixed filters,
    float64 on the CPU.
    """
    a = np.asarray(images)
    if a.ndim != 4 or a.shape[-1] != 3:
        raise ValueError(f"expected (N, H, W, 3) images, got shape {a.shape}")
    x = torch.from_numpy(a.astype(np.float64) / 255.0 if a.dtype == np.uint8 else a.astype(np.float64))
    x = x.permute(0, 3, 1, 2).clamp(0.0, 1.0)
    if x.shape[0] == 0:
        return np.zeros((0, 3 * _LAYOUT_SIDE ** 2 + 66), np.float32)
    if tuple(x.shape[-2:]) != (_EMBED_SIDE, _EMBED_SIDE):
        x = F.interpolate(x, size=(_EMBED_SIDE, _EMBED_SIDE), mode="bilinear", align_corners=False,
                          antialias=True).clamp(0.0, 1.0)
    lab = _rgb_to_lab_scaled(x)
    layout = F.adaptive_avg_pool2d(lab, _LAYOUT_SIDE).flatten(1)

    pad = _ORIENTED.shape[-1] // 2
    # replicate padding: no artificial edges at the border
    padded = F.pad(lab, (pad, pad, pad, pad), mode="replicate").float()
    # float32 convolutions: float64 ones take a slow non-vectorised path (6x slower)
    oriented = F.conv2d(padded[:, :1], _ORIENTED.float())
    blurred = F.conv2d(padded.reshape(-1, 1, *padded.shape[-2:]), _BLUR.float()).reshape(lab.shape)
    maps = torch.cat([oriented, blurred], dim=1).flatten(2).double()  # (N, 11, P)
    gram = maps @ maps.transpose(1, 2) / maps.shape[-1]
    iu = torch.triu_indices(gram.shape[1], gram.shape[1])
    texture = gram[:, iu[0], iu[1]]
    texture = texture.sign() * texture.abs().sqrt()  # compress the range: energies are squares

    def unit(block: Tensor) -> Tensor:
        norm = block.norm(dim=1, keepdim=True)
        return torch.where(norm > 1e-9, block / norm.clamp_min(1e-9), torch.zeros_like(block))

    return (torch.cat([unit(layout), unit(texture)], dim=1) / math.sqrt(2.0)).numpy().astype(np.float32)


def embedding_similarity(imgs_a: np.ndarray, imgs_b: np.ndarray, embed: Embed | None = None) -> np.ndarray:
    """Cosine similarity of ``embed(imgs_a)[i]`` and ``embed(imgs_b)[i]`` for each pair, float32 ``(N,)``.

    ``embed`` maps ``(N, H, W, 3)`` images to ``(N, D)`` features; default
    :func:`image_embedding`. A zero feature vector gives similarity 0 (as in
    ``analysis.similarity``).
    """
    if len(imgs_a) != len(imgs_b):
        raise ValueError(f"{len(imgs_a)} images against {len(imgs_b)}: pairs need equal counts")
    embed = embed or image_embedding
    ea = np.asarray(embed(np.asarray(imgs_a)), dtype=np.float64)
    eb = np.asarray(embed(np.asarray(imgs_b)), dtype=np.float64)
    na, nb = np.linalg.norm(ea, axis=1), np.linalg.norm(eb, axis=1)
    dot = np.einsum("nd,nd->n", ea, eb)
    ok = (na > 0) & (nb > 0)
    out = np.zeros(len(ea), dtype=np.float64)
    out[ok] = dot[ok] / (na[ok] * nb[ok])
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def most_changed(similarity: np.ndarray, layers: Sequence[str], gray_mask: np.ndarray | None = None,
                 top: int = 5) -> dict[str, np.ndarray]:
    """Per layer, positions of the ``top`` least similar pairs, most changed first.

    similarity: ``(N,)`` per-neuron similarity; layers: ``(N,)`` each neuron's layer; gray_mask:
    ``(N,)`` True where either image is gray (those, and NaN similarities, are left out).
    Returns ``{layer: int64 positions into the inputs}`` with layers in order of first
    appearance; ties keep input order (stable sort), so the result is deterministic.
    """
    sim = np.asarray(similarity, dtype=np.float64).ravel()
    names = list(layers)
    if len(names) != sim.size:
        raise ValueError(f"{sim.size} similarities but {len(names)} layer names")
    keep = np.isfinite(sim)
    if gray_mask is not None:
        keep &= ~np.asarray(gray_mask, dtype=bool).ravel()
    out: dict[str, np.ndarray] = {}
    for layer in dict.fromkeys(names):
        pos = np.flatnonzero(keep & np.array([n == layer for n in names], dtype=bool))
        out[layer] = pos[np.argsort(sim[pos], kind="stable")][:top].astype(np.int64)
    return out


@dataclass
class ChangeResult:
    """Output of :func:`compare_renders`; arrays are per neuron (row of the inputs)."""

    similarity: np.ndarray  # float32 (N,)
    score_source: np.ndarray  # float64 (N,) colourfulness
    score_target: np.ndarray
    cutoff: float
    gray_source: np.ndarray  # bool (N,)
    gray_target: np.ndarray
    most_changed: dict[str, np.ndarray]


def compare_renders(source: np.ndarray, target: np.ndarray, layers: Sequence[str], *, top: int = 5,
                    embed: Embed | None = None) -> ChangeResult:
    """Steps 1-3 of the module docstring for two renders of the same neurons (same order).

    One gray cut-off is computed over the scores of both renders together; a neuron is left
    out of :func:`most_changed` when either of its images is gray.
    """
    if len(source) != len(target) or len(source) != len(layers):
        raise ValueError("source, target and layers must have one row per neuron")
    s_src, s_tgt = colourfulness_scores(source), colourfulness_scores(target)
    cutoff = gray_cutoff(np.concatenate([s_src, s_tgt]))
    g_src, g_tgt = detect_gray(s_src, cutoff), detect_gray(s_tgt, cutoff)
    sim = embedding_similarity(source, target, embed)
    return ChangeResult(sim, s_src, s_tgt, cutoff, g_src, g_tgt, most_changed(sim, layers, g_src | g_tgt, top))
