"""Batched feature visualization: planted detectors, determinism, batch == one-at-a-time, no side effects."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from transferviz.errors import TransferVizError
from transferviz.featvis.render import TransformSpec, neuron_seed, random_affine, render_neurons
from transferviz.featvis.render import visualize_neurons as render
from transferviz.models import SmallAlexNet


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: a second intra-op thread only adds synchronisation (and on a loaded
    machine, waits of milliseconds per op); one thread keeps these tests fast and stable."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _red_detector() -> nn.Module:
    """A 1x1 conv whose only channel computes R - G - B (on normalised pixels)."""
    conv = nn.Conv2d(3, 1, kernel_size=1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, -1.0, -1.0]).view(1, 3, 1, 1))
        conv.bias.zero_()
    return nn.Sequential(conv)


def _vertical_edge_detector() -> nn.Module:
    """Horizontal derivative of luminance (responds to vertical edges), ReLU, then a readout conv."""
    edge = nn.Conv2d(3, 1, kernel_size=3, padding=1, bias=False)
    readout = nn.Conv2d(1, 1, kernel_size=1)
    with torch.no_grad():
        kernel = torch.tensor([[-1.0, 0.0, 1.0]] * 3) / 9.0
        edge.weight.copy_(kernel.expand(1, 3, 3, 3))
        readout.weight.fill_(1.0)
        readout.bias.zero_()
    return nn.Sequential(edge, nn.ReLU(), readout)


def _small_alexnet() -> nn.Module:
    torch.manual_seed(0)
    return SmallAlexNet(num_classes=10, input_size=28)


def test_red_detector_gives_a_red_image_and_the_objective_increases() -> None:
    result = render(_red_detector(), [("0", 0)], size=16, steps=64, lr=0.2, device="cpu")
    img = result.images[0].astype(np.float64) / 255.0
    r, g, b = img[..., 0].mean(), img[..., 1].mean(), img[..., 2].mean()
    assert r > max(g, b) + 0.3, (r, g, b)
    assert result.objective_end[0] > result.objective_start[0] + 1.0
    # the per-step objective (on transformed images) rises too
    assert result.history[-8:, 0].mean() > result.history[:8, 0].mean()


def test_min_mode_gives_the_opposite_colour() -> None:
    result = render(_red_detector(), [("0", 0)], size=16, steps=64, lr=0.2, mode="min", device="cpu")
    img = result.images[0].astype(np.float64) / 255.0
    r, g, b = img[..., 0].mean(), img[..., 1].mean(), img[..., 2].mean()
    assert r < min(g, b) - 0.3, (r, g, b)
    assert result.objective_end[0] < result.objective_start[0] - 1.0


def test_vertical_edge_detector_gives_vertical_structure() -> None:
    result = render(_vertical_edge_detector(), [("2", 0)], size=24, steps=64, device="cpu")
    lum = result.images[0].astype(np.float64).mean(axis=2) / 255.0
    vertical_edge_energy = np.abs(np.diff(lum, axis=1)).mean()  # changes along x
    horizontal_edge_energy = np.abs(np.diff(lum, axis=0)).mean()
    assert vertical_edge_energy > 1.5 * horizontal_edge_energy, (vertical_edge_energy, horizontal_edge_energy)
    assert result.objective_end[0] > result.objective_start[0]


def test_linear_neuron_objective_is_the_unit_value() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4), nn.ReLU(inplace=True), nn.Linear(4, 2))
    # a unit that starts negative: the objective must be read before the in-place ReLU
    with torch.no_grad():
        model[1].bias.fill_(-5.0)
    result = render(model, [("1", 0), ("1", 3)], size=8, steps=32, device="cpu")
    assert (result.objective_start < 0).all()
    assert (result.objective_end > result.objective_start + 1.0).all()


def _planted_bank() -> nn.Module:
    """Four smooth planted detectors (red, green, blue, vertical edges) and a linear readout."""
    torch.manual_seed(0)
    colour = nn.Conv2d(3, 4, kernel_size=3, padding=1)
    with torch.no_grad():
        colour.weight.zero_()
        colour.bias.zero_()
        for c in range(3):  # channel c: its colour minus the other two
            colour.weight[c, :, 1, 1] = -0.5
            colour.weight[c, c, 1, 1] = 1.0
        colour.weight[3, :, :, 0] = -1.0 / 9
        colour.weight[3, :, :, 2] = 1.0 / 9
    return nn.Sequential(colour, nn.Softplus(), nn.Flatten(), nn.Linear(4 * 12 * 12, 3))


def test_batch_path_equals_one_at_a_time_path() -> None:
    model = _planted_bank()
    neurons = [("0", 0), ("3", 2), ("0", 3), ("0", 1), ("3", 0), ("0", 2), ("0", 0)]
    kwargs = dict(size=12, steps=24, seed=5, device="cpu")
    batched = render(model, neurons, batch_size=64, **kwargs)
    chunked_reversed = render(model, neurons[::-1], batch_size=3, **kwargs)
    for i, neuron in enumerate(neurons):
        single = render(model, [neuron], batch_size=1, **kwargs)
        np.testing.assert_allclose(batched.history[:, i], single.history[:, 0], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(batched.images[i], single.images[0], atol=1)
        np.testing.assert_allclose(batched.images[i], chunked_reversed.images[len(neurons) - 1 - i], atol=1)
    assert np.array_equal(batched.images[0], batched.images[6])  # same neuron twice, same batch
    assert not np.array_equal(batched.images[0], batched.images[3])


def test_batch_path_on_small_alexnet_starts_identically() -> None:
    """Mixed conv/linear layers in one batch: same start images, transforms and objectives.

    (Later steps agree only up to kernel rounding, which a max-pool network can amplify;
    see the render module docstring.)
    """
    torch.manual_seed(0)
    model = SmallAlexNet(num_classes=10, input_size=28)
    neurons = [("features.0", 3), ("classifier.4", 5), ("features.6", 1), ("features.10", 30),
               ("classifier.1", 7), ("features.3", 12)]
    kwargs = dict(size=28, steps=1, seed=3, device="cpu")
    batched = render(model, neurons, **kwargs)
    for i, neuron in enumerate(neurons):
        single = render(model, [neuron], batch_size=1, **kwargs)
        np.testing.assert_allclose(batched.objective_start[i], single.objective_start[0], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(batched.history[0, i], single.history[0, 0], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(batched.objective_end[i], single.objective_end[0], rtol=1e-3, atol=1e-4)


def test_deterministic_for_a_seed_and_different_across_seeds() -> None:
    model = _small_alexnet()
    neurons = [("features.3", 2), ("classifier.1", 9)]
    a = render_neurons(model, neurons, size=28, steps=6, seed=11, device="cpu")
    b = render_neurons(model, neurons, size=28, steps=6, seed=11, device="cpu")
    c = render_neurons(model, neurons, size=28, steps=6, seed=12, device="cpu")
    assert a.shape == (2, 28, 28, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert neuron_seed(0, "features.3", 2) == neuron_seed(0, "features.3", 2)
    assert neuron_seed(0, "features.3", 2) != neuron_seed(0, "features.3", 3)


def test_model_is_left_untouched() -> None:
    model = _small_alexnet()
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    calls: list[tuple[int, int]] = []
    torch.set_num_threads(2)  # the fixture restores its own setting afterwards
    render_neurons(model, [("features.0", 0), ("classifier.4", 1), ("features.8", 2)], size=28, steps=4,
                   batch_size=2, device="cpu", progress=lambda done, total: calls.append((done, total)),
                   num_threads=1)
    assert torch.get_num_threads() == 2  # restored after the call
    assert model.training
    assert all(p.grad is None for p in model.parameters())
    assert all(p.requires_grad for p in model.parameters())
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert not model.features[0]._forward_hooks
    assert calls == [(2, 3), (3, 3)]


def test_gray_model_returns_rgb_images() -> None:
    torch.manual_seed(0)
    model = SmallAlexNet(num_classes=10, in_channels=1, input_size=28)
    images = render_neurons(model, [("features.3", 0)], size=28, steps=4, mean=(0.5,), std=(0.5,), device="cpu")
    assert images.shape == (1, 28, 28, 3)
    assert np.array_equal(images[..., 0], images[..., 2])


def test_identity_transform_and_gray_padding() -> None:
    img = torch.rand((2, 3, 10, 10))
    same = random_affine(img, torch.full((2, 4), 0.5), TransformSpec())
    torch.testing.assert_close(same, img, atol=1e-6, rtol=0)
    zoomed_out = random_affine(img, torch.tensor([[0.5, 0.5, 0.0, 0.5]] * 2), TransformSpec(scale=(0.5, 0.5)))
    assert torch.allclose(zoomed_out[..., 0, 0], torch.tensor(0.5))  # outside the image: mid-gray


def test_errors_name_the_problem() -> None:
    model = _small_alexnet()
    with pytest.raises(TransferVizError, match="no module"):
        render_neurons(model, [("features.99", 0)], size=28, steps=1, device="cpu")
    with pytest.raises(TransferVizError, match="does not exist"):
        render_neurons(model, [("features.0", 16)], size=28, steps=1, device="cpu")
    with pytest.raises(TransferVizError, match="mode"):
        render_neurons(model, [("features.0", 0)], size=28, steps=1, mode="mean", device="cpu")
    assert render_neurons(model, [], size=28, device="cpu").shape == (0, 28, 28, 3)
