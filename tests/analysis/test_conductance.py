"""The multi-layer conductance engine against captum's LayerConductance, layer by layer.

Exactness tests run in float64: a ReLU whose pre-activation lies within float32 rounding of
zero at some path point may flip between two equally valid float32 evaluations (different
batch sizes pick different kernels), which changes a gradient by a whole step.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from captum.attr import LayerConductance
from torch import nn

from transferviz.analysis.conductance import ConductanceResult, layer_conductance, path_alphas
from transferviz.errors import TransferVizError
from transferviz.models import SmallAlexNet, analysed_layers

N = 3


def _small(scale: str = "default", dtype: torch.dtype = torch.float64, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = SmallAlexNet(num_classes=10, input_size=28)
    if scale == "trained":
        # Trained nets keep activations O(1) through depth and have larger logits than
        # PyTorch's default init: He init plus non-zero biases mimics that.
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.normal_(m.bias, std=0.05)
    return model.to(dtype).eval()


def _data(n: int = N, dtype: torch.dtype = torch.float64, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 28, 28, generator=g, dtype=dtype), torch.randint(0, 10, (n,), generator=g)


def _baseline(kind: str, x: torch.Tensor) -> float | torch.Tensor:
    g = torch.Generator().manual_seed(2)
    if kind == "zero":
        return 0.0
    if kind == "shared":
        return 0.3 * torch.randn(1, *x.shape[1:], generator=g, dtype=x.dtype)
    return 0.3 * torch.randn(*x.shape, generator=g, dtype=x.dtype)  # one baseline per instance


def _captum(model: nn.Module, layer: str, x: torch.Tensor, t: torch.Tensor, **kw) -> torch.Tensor:
    return LayerConductance(model, model.get_submodule(layer)).attribute(x, target=t, **kw).detach()


def _assert_close(ours: np.ndarray, ref: torch.Tensor, rel: float = 1e-4) -> None:
    ref_np = ref.cpu().double().numpy()
    assert ours.shape == ref_np.shape
    scale = np.abs(ref_np).max()
    assert scale > 0
    assert np.abs(ours - ref_np).max() <= rel * scale


@pytest.mark.parametrize("scale,method,n_steps,baseline", [
    ("default", "gausslegendre", 8, "zero"),
    ("trained", "gausslegendre", 16, "shared"),
    ("trained", "riemann_trapezoid", 8, "zero"),
    ("default", "riemann_trapezoid", 16, "per_instance"),
    ("trained", "riemann_left", 8, "per_instance"),
])
def test_matches_captum_on_every_layer(scale: str, method: str, n_steps: int, baseline: str) -> None:
    model = _small(scale)
    x, t = _data()
    b = _baseline(baseline, x)
    layers = analysed_layers(model)
    kw = dict(n_steps=n_steps, method=method, baseline=b, device="cpu")
    full = layer_conductance(model, layers, x, t, reduce="none", **kw)
    peak = layer_conductance(model, layers, x, t, reduce="max", **kw)
    for layer in layers:
        ref = _captum(model, layer, x, t, baselines=b, n_steps=n_steps, method=method)
        _assert_close(full.values[layer], ref)
        ref_peak = ref.amax(dim=(2, 3)) if ref.dim() == 4 else ref
        _assert_close(peak.values[layer], ref_peak)
        assert peak.values[layer].dtype == np.float32
        assert peak.values[layer].shape == (N, ref.shape[1])


def test_matches_captum_in_float32() -> None:
    """The production dtype, where differences are float32 rounding only."""
    model = _small("trained", dtype=torch.float32)
    x, t = _data(2, dtype=torch.float32)
    layers = analysed_layers(model)
    res = layer_conductance(model, layers, x, t, n_steps=8, reduce="none", device="cpu")
    for layer in layers:
        _assert_close(res.values[layer], _captum(model, layer, x, t, n_steps=8))


def test_sum_reduction_and_scalar_target() -> None:
    model = _small()
    x, _ = _data()
    full = layer_conductance(model, ["features.3", "classifier.1"], x, 4, n_steps=4, reduce="none")
    summed = layer_conductance(model, ["features.3", "classifier.1"], x, 4, n_steps=4, reduce="sum")
    np.testing.assert_allclose(summed.values["features.3"], full.values["features.3"].sum(axis=(2, 3)),
                               rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(summed.values["classifier.1"], full.values["classifier.1"], rtol=0, atol=0)


@pytest.mark.parametrize("method,baseline", [("gausslegendre", "per_instance"), ("riemann_trapezoid", "shared")])
def test_completeness_is_captum_convergence_delta(method: str, baseline: str) -> None:
    model = _small("trained")
    x, t = _data()
    b = _baseline(baseline, x)
    layer = "features.6"
    res = layer_conductance(model, [layer], x, t, n_steps=8, method=method, baseline=b)
    _, delta = LayerConductance(model, model.get_submodule(layer)).attribute(
        x, baselines=b, target=t, n_steps=8, method=method, return_convergence_delta=True)
    with torch.no_grad():
        bb = torch.as_tensor(b, dtype=x.dtype).expand_as(x)
        span = (model(x) - model(bb)).gather(1, t.view(-1, 1)).squeeze(1)
    expected = float((delta.abs() / span.abs().clamp_min(1e-6)).mean())
    assert res.completeness[layer] == pytest.approx(expected, rel=1e-6, abs=1e-9)


class _SmoothNet(nn.Module):
    """A small CNN with smooth activations, where the discretised path integral converges."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Softplus(), nn.AvgPool2d(2),
                                      nn.Conv2d(8, 8, 3, padding=1), nn.Tanh(), nn.AvgPool2d(2))
        self.classifier = nn.Sequential(nn.Linear(8 * 7 * 7, 16), nn.Softplus(), nn.Linear(16, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


def test_completeness_gap_shrinks_with_steps() -> None:
    torch.manual_seed(0)
    model = _SmoothNet().double().eval()
    x, t = _data()
    layers = analysed_layers(model)
    coarse = layer_conductance(model, layers, x, t, n_steps=16, method="riemann_trapezoid")
    fine = layer_conductance(model, layers, x, t, n_steps=64, method="riemann_trapezoid")
    for layer in layers:
        # Conductance pairs each step's difference with the gradient at its start: O(1/n_steps).
        assert fine.completeness[layer] < 1e-2
        assert fine.completeness[layer] < 0.5 * coarse.completeness[layer]


def test_inplace_relu_gives_same_result_as_out_of_place_copy() -> None:
    model = _small("trained")
    plain = copy.deepcopy(model)
    for m in plain.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False
    x, t = _data()
    layers = analysed_layers(model)
    a = layer_conductance(model, layers, x, t, n_steps=8, reduce="none")
    b = layer_conductance(plain, layers, x, t, n_steps=8, reduce="none")
    for layer in layers:
        np.testing.assert_array_equal(a.values[layer], b.values[layer])


class _FunctionalInplace(nn.Module):
    """In-place ReLUs in ``forward`` itself, which no module flag can switch off."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.conv2 = nn.Conv2d(6, 6, 3, padding=1)
        self.fc1 = nn.Linear(6 * 7 * 7, 12)
        self.fc2 = nn.Linear(12, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x), inplace=True), 2)
        x = F.max_pool2d(F.relu(self.conv2(x), inplace=True), 2)
        x = F.relu(self.fc1(torch.flatten(x, 1)), inplace=True)
        return self.fc2(x)


def test_functional_inplace_ops_are_handled() -> None:
    torch.manual_seed(0)
    model = _FunctionalInplace().double().eval()
    x, t = _data()
    layers = analysed_layers(model)
    res = layer_conductance(model, layers, x, t, n_steps=8, reduce="none")
    for layer in layers:
        _assert_close(res.values[layer], _captum(model, layer, x, t, n_steps=8))


@pytest.mark.parametrize("budget_mb", [0.05, 4.0, 24.0])
def test_memory_budget_splits_do_not_change_results(budget_mb: float) -> None:
    """0.05 MB: one path point per pass; 4 MB: a few points per pass, with carries between
    passes; 24 MB: two whole instances per pass."""
    model = _small("trained")
    x, t = _data()
    b = _baseline("per_instance", x)
    layers = analysed_layers(model)
    kw = dict(n_steps=6, method="gausslegendre", baseline=b, reduce="none")
    ref = layer_conductance(model, layers, x, t, memory_budget_mb=4096, **kw)
    done: list[int] = []
    res = layer_conductance(model, layers, x, t, memory_budget_mb=budget_mb, progress=done.append, **kw)
    for layer in layers:
        np.testing.assert_allclose(res.values[layer], ref.values[layer], rtol=1e-6,
                                   atol=1e-9 * np.abs(ref.values[layer]).max())
        assert res.completeness[layer] == pytest.approx(ref.completeness[layer], rel=1e-6)
    assert done == ([1, 2, 3] if budget_mb < 24 else [2, 3])


def test_callers_model_is_left_untouched() -> None:
    model = SmallAlexNet(num_classes=10, input_size=28)  # training mode, in-place ReLUs, grads on
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, t = _data(2, dtype=torch.float32)
    layer_conductance(model, analysed_layers(model), x, t, n_steps=4)
    assert model.training
    assert all(m.inplace for m in model.modules() if isinstance(m, nn.ReLU))
    assert all(p.requires_grad and p.grad is None for p in model.parameters())
    assert all(not m._forward_hooks for m in model.modules())
    assert all(p.is_contiguous() for p in model.parameters())
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])


def test_works_under_no_grad_and_inference_mode() -> None:
    model = _small(dtype=torch.float32)
    x, t = _data(2, dtype=torch.float32)
    ref = layer_conductance(model, ["features.6"], x, t, n_steps=4)
    with torch.no_grad():
        a = layer_conductance(model, ["features.6"], x, t, n_steps=4)
    with torch.inference_mode():
        b = layer_conductance(model, ["features.6"], x.clone(), t, n_steps=4)
    np.testing.assert_array_equal(a.values["features.6"], ref.values["features.6"])
    np.testing.assert_array_equal(b.values["features.6"], ref.values["features.6"])


def test_result_type_and_errors() -> None:
    model = _small()
    x, t = _data(2)
    res = layer_conductance(model, ["features.0"], x, t, n_steps=2)
    assert isinstance(res, ConductanceResult) and set(res.values) == {"features.0"}
    with pytest.raises(TransferVizError, match="features.99"):
        layer_conductance(model, ["features.99"], x, t)
    with pytest.raises(ValueError, match="reduce"):
        layer_conductance(model, ["features.0"], x, t, reduce="mean")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        layer_conductance(model, ["features.0"], x, t, method="simpson")
    with pytest.raises(ValueError, match="targets"):
        layer_conductance(model, ["features.0"], x, t[:1])
    assert len(path_alphas("gausslegendre", 16)) == 17


def test_autocast_runs_and_stays_close() -> None:
    model = _small("trained", dtype=torch.float32)
    x, t = _data(4, dtype=torch.float32)
    layers = ["features.3", "classifier.4"]
    ref = layer_conductance(model, layers, x, t, n_steps=8)
    low = layer_conductance(model, layers, x, t, n_steps=8, autocast=True, device="cpu")
    for layer in layers:
        a, b = low.values[layer], ref.values[layer]
        assert a.dtype == np.float32 and np.isfinite(a).all()
        assert np.abs(a - b).max() < 0.05 * np.abs(b).max()
        assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.99


def test_torchvision_alexnet_matches_captum() -> None:
    from torchvision.models import alexnet

    torch.manual_seed(0)
    model = alexnet(weights=None, num_classes=5).eval()
    layers = analysed_layers(model)
    assert layers == ["features.0", "features.3", "features.6", "features.8", "features.10",
                      "classifier.1", "classifier.4"]
    x = torch.randn(2, 3, 224, 224)
    t = torch.tensor([1, 3])
    check = ["features.10", "classifier.4"]
    res = layer_conductance(model, check, x, t, n_steps=2, method="riemann_trapezoid", reduce="max")
    for layer in check:
        ref = _captum(model, layer, x, t, n_steps=2, method="riemann_trapezoid")
        _assert_close(res.values[layer], ref.amax(dim=(2, 3)) if ref.dim() == 4 else ref)
