"""The Fourier parameterisation: exact round trip, value range, shapes, frequency scaling."""

from __future__ import annotations

import pytest
import torch

from transferviz.featvis.param import (
    FourierImage,
    color_matrix,
    image_to_spectrum,
    rfft2d_freqs,
    spectrum_scale,
    spectrum_to_image,
)


@pytest.mark.parametrize("h,w", [(28, 28), (17, 23), (32, 20)])
@pytest.mark.parametrize("decorrelate", [True, False])
def test_round_trip_image_spectrum_image(h: int, w: int, decorrelate: bool) -> None:
    gen = torch.Generator().manual_seed(1)
    image = 0.02 + 0.96 * torch.rand((2, 3, h, w), generator=gen)
    spectrum = image_to_spectrum(image, decorrelate=decorrelate)
    assert spectrum.shape == (2, 3, h, w // 2 + 1, 2)
    back = spectrum_to_image(spectrum, h, w, decorrelate=decorrelate)
    torch.testing.assert_close(back, image, atol=2e-5, rtol=0)


def test_round_trip_spectrum_image_spectrum() -> None:
    # Start from an image's spectrum (a real image's spectrum is Hermitian-consistent,
    # which irfft2 needs for an exact inverse).
    gen = torch.Generator().manual_seed(2)
    spectrum = image_to_spectrum(0.1 + 0.8 * torch.rand((1, 3, 16, 16), generator=gen))
    again = image_to_spectrum(spectrum_to_image(spectrum, 16, 16))
    torch.testing.assert_close(again, spectrum, atol=1e-3, rtol=1e-3)


def test_values_stay_in_unit_interval_even_for_huge_spectra() -> None:
    gen = torch.Generator().manual_seed(3)
    for sd in (0.01, 1.0, 100.0):
        img = spectrum_to_image(sd * torch.randn((4, 3, 20, 11, 2), generator=gen), 20, 20)
        assert torch.isfinite(img).all()
        assert img.min() >= 0.0 and img.max() <= 1.0


def test_lucid_initialisation_is_faint_gray() -> None:
    gens = [torch.Generator().manual_seed(s) for s in range(3)]
    image = FourierImage(FourierImage.random_spectrum(gens, 3, 28, 28, sd=0.01), 28, 28)()
    assert image.shape == (3, 3, 28, 28)
    assert (image - 0.5).abs().max() < 0.1


def test_random_spectrum_depends_only_on_its_generator() -> None:
    one = FourierImage.random_spectrum([torch.Generator().manual_seed(7)], 3, 12, 12)
    many = FourierImage.random_spectrum([torch.Generator().manual_seed(s) for s in (5, 7, 9)], 3, 12, 12)
    assert torch.equal(one[0], many[1])


def test_frequencies_and_one_over_f_scale() -> None:
    freqs = rfft2d_freqs(6, 7)
    assert freqs.shape == (6, 4)  # matches torch.fft.rfft2's last dim w // 2 + 1
    assert freqs[0, 0] == 0.0
    scale = spectrum_scale(8, 8)
    # DC clamped to 1/max(h, w); every coefficient scaled by sqrt(h*w) / f
    assert scale[0, 0] == pytest.approx(8 * 8.0)
    assert scale[0, 1] == pytest.approx(8 / 0.125)
    assert (scale[0, 1:] <= scale[0, 0]).all()


def test_colour_matrix_is_invertible_and_normalised() -> None:
    m = color_matrix()
    assert torch.linalg.vector_norm(m, dim=0).max() == pytest.approx(1.0)
    assert abs(torch.linalg.det(m.double()).item()) > 1e-3


def test_gradients_reach_the_spectrum() -> None:
    image = FourierImage(torch.zeros((1, 3, 8, 5, 2)), 8, 8)
    image().mean().backward()
    assert image.spectrum.grad is not None and image.spectrum.grad.abs().sum() > 0
