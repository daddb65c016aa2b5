"""Image parameterisation for feature visualization: a Fourier spectrum, decorrelated colour, a sigmoid.

This is a PyTorch port of lucid's ``fft_image`` + ``to_valid_rgb(decorrelate=True, sigmoid=True)``
(``lucid/optvis/param/spatial.py`` and ``color.py``). Optimising pixels directly lets the
optimiser exploit high frequencies (the image turns into adversarial noise); optimising the
Fourier coefficients, each scaled by ``1 / frequency``, makes a unit step in the parameters move
low frequencies more than high ones, i.e. preconditions the optimisation towards natural-image
statistics (Olah et al., *Feature Visualization*, Distill 2017, section "Preconditioning").

Layout: a batch of spectra is one real tensor of shape ``(B, C, H, W // 2 + 1, 2)`` (real and
imaginary parts, which is what Adam optimises); :func:`spectrum_to_image` maps it to images
``(B, C, H, W)`` in ``(0, 1)`` and :func:`image_to_spectrum` is its exact inverse on ``(0, 1)``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = [
    "COLOR_CORRELATION_SVD_SQRT",
    "color_matrix",
    "rfft2d_freqs",
    "spectrum_scale",
    "spectrum_to_image",
    "image_to_spectrum",
    "FourierImage",
]

# lucid's ImageNet colour correlation (square root of the SVD of the RGB covariance). Its columns
# are the principal colour axes; mixing independently-optimised channels through it makes each
# parameter a direction of natural colour variation instead of a raw R, G or B value. It is
# used for every 3-channel model: for gray-ish inputs (digits replicated to RGB) the first
# column is the luminance axis, so the parameterisation still spans every colour and is only a
# fixed, invertible change of basis.
COLOR_CORRELATION_SVD_SQRT = torch.tensor([[0.26, 0.09, 0.02],
                                           [0.27, 0.00, -0.05],
                                           [0.27, -0.09, 0.03]], dtype=torch.float32)

# lucid divides the spatial image by 4 before the sigmoid: with sd=0.01 coefficients the
# initial image is then a faint, almost uniform gray, and early Adam steps stay in the
# sigmoid's linear range.
_LUCID_IMAGE_DIVISOR = 4.0


def color_matrix() -> Tensor:
    """lucid's colour matrix normalised by its largest column norm, shape ``(3, 3)``.

    The normalisation keeps every decorrelated channel at most as large as the largest
    input channel, so the sigmoid's operating range does not depend on the colour matrix.
    """
    m = COLOR_CORRELATION_SVD_SQRT
    return m / torch.linalg.vector_norm(m, dim=0).max()


def rfft2d_freqs(h: int, w: int) -> Tensor:
    """Spatial frequency magnitude (cycles per pixel) of every ``rfft2`` coefficient, ``(h, w//2+1)``.

    Unlike lucid's helper (which keeps ``w // 2 + 2`` columns for odd ``w`` and crops the
    image afterwards), this matches ``torch.fft.rfft2`` exactly, so odd sizes need no cropping.
    """
    fy = torch.fft.fftfreq(h, dtype=torch.float64)[:, None]
    fx = torch.fft.rfftfreq(w, dtype=torch.float64)[None, :]
    return torch.sqrt(fx * fx + fy * fy)


def spectrum_scale(h: int, w: int, decay_power: float = 1.0) -> Tensor:
    """Per-coefficient scale ``sqrt(h*w) / max(f, 1/max(h, w)) ** decay_power``, float32 ``(h, w//2+1)``.

    ``1/f`` equalises the expected energy per octave (natural images have a ``1/f`` amplitude
    spectrum); the clamp keeps the DC term finite; ``sqrt(h*w)`` makes the inverse transform
    (which divides by ``h*w``) unitary, so learning rates carry over between image sizes.
    """
    freqs = rfft2d_freqs(h, w)
    scale = 1.0 / freqs.clamp_min(1.0 / max(h, w)) ** decay_power
    return (scale * math.sqrt(h * w)).to(torch.float32)


def _decorrelate(t: Tensor) -> Tensor:
    """Mixes channels ``(B, 3, H, W)`` through the normalised colour matrix (pixel-wise ``M @ rgb``)."""
    m = color_matrix().to(device=t.device, dtype=t.dtype)
    return torch.einsum("ij,bjhw->bihw", m, t)


def _correlate(t: Tensor) -> Tensor:
    """Inverse of :func:`_decorrelate`."""
    m_inv = torch.linalg.inv(color_matrix().double()).to(device=t.device, dtype=t.dtype)
    return torch.einsum("ij,bjhw->bihw", m_inv, t)


def spectrum_to_image(spectrum: Tensor, h: int, w: int, *, scale: Tensor | None = None,
                      decorrelate: bool = True, decay_power: float = 1.0) -> Tensor:
    """Maps real spectra ``(B, C, h, w//2+1, 2)`` to images ``(B, C, h, w)`` in ``(0, 1)``.

    ``scale`` is :func:`spectrum_scale` (pass it to avoid recomputing it every step).
    ``decorrelate`` needs ``C == 3``.
    """
    if scale is None:
        scale = spectrum_scale(h, w, decay_power)
    coeffs = torch.view_as_complex(spectrum.contiguous()) * scale.to(spectrum.device)
    img = torch.fft.irfft2(coeffs, s=(h, w)) / _LUCID_IMAGE_DIVISOR
    if decorrelate:
        img = _decorrelate(img)
    return torch.sigmoid(img)


def image_to_spectrum(image: Tensor, *, scale: Tensor | None = None, decorrelate: bool = True,
                      decay_power: float = 1.0, eps: float = 1e-6) -> Tensor:
    """Inverse of :func:`spectrum_to_image`: images ``(B, C, H, W)`` in ``[0, 1]`` to real spectra.

    Pixels are clamped to ``[eps, 1 - eps]`` before the logit, so exact 0 and 1 (which the
    sigmoid never reaches) map to large finite values. Useful to start an optimisation from a
    real image and to test the parameterisation.
    """
    h, w = image.shape[-2:]
    if scale is None:
        scale = spectrum_scale(h, w, decay_power)
    x = torch.logit(image.clamp(eps, 1.0 - eps))
    if decorrelate:
        x = _correlate(x)
    coeffs = torch.fft.rfft2(x * _LUCID_IMAGE_DIVISOR) / scale.to(image.device)
    return torch.view_as_real(coeffs).contiguous()


class FourierImage(nn.Module):
    """A batch of images parameterised by their scaled Fourier spectra (the only parameter).

    ``FourierImage(spectrum, h, w)()`` returns ``(B, C, h, w)`` images in ``(0, 1)``.
    Construct the initial spectrum with :meth:`random_spectrum` (per-image generators, so an
    image's start does not depend on what else is in the batch) or :func:`image_to_spectrum`.
    """

    scale: Tensor  # non-persistent buffer registered in __init__ (declared for type checkers)

    def __init__(self, spectrum: Tensor, h: int, w: int, *, decorrelate: bool = True,
                 decay_power: float = 1.0) -> None:
        super().__init__()
        if spectrum.ndim != 5 or spectrum.shape[-1] != 2 or tuple(spectrum.shape[2:4]) != (h, w // 2 + 1):
            raise ValueError(f"spectrum shape {tuple(spectrum.shape)} is not (B, C, {h}, {w // 2 + 1}, 2)")
        if decorrelate and spectrum.shape[1] != 3:
            raise ValueError("colour decorrelation needs 3 channels")
        self.h, self.w = h, w
        self.decorrelate = decorrelate
        self.spectrum = nn.Parameter(spectrum.detach().clone().float())
        self.register_buffer("scale", spectrum_scale(h, w, decay_power).to(spectrum.device), persistent=False)

    @staticmethod
    def random_spectrum(generators: list[torch.Generator], channels: int, h: int, w: int,
                        sd: float = 0.01) -> Tensor:
        """lucid's initialisation ``sd * N(0, 1)``, one CPU generator per image, shape ``(B, C, h, w//2+1, 2)``."""
        shape = (channels, h, w // 2 + 1, 2)
        return torch.stack([sd * torch.randn(shape, generator=g, dtype=torch.float32) for g in generators])

    def forward(self) -> Tensor:
        return spectrum_to_image(self.spectrum, self.h, self.w, scale=self.scale, decorrelate=self.decorrelate)
