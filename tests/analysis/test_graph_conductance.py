"""Layer Conductance of layers chosen from the graph against captum, on real torchvision networks
(random weights, BatchNorm in eval mode with non-trivial statistics, in-place activations, residual
additions, squeeze-and-excitation), and completeness on the layers that cut the graph.

float64, as in test_conductance.py: a ReLU flipping within float32 rounding would change a step."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from captum.attr import LayerConductance
from torch import nn

from transferviz.analysis.conductance import layer_conductance
from transferviz.graph import trace_model

# many tiny ops (brute-force loops, float64 paths at 32 px): one thread beats two contending ones
pytestmark = pytest.mark.usefixtures("one_torch_thread")

def _real(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random BatchNorm statistics and affine parameters, so the eval-mode BatchNorm is no identity."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(0.1 * torch.randn(n, generator=g))
            m.running_var.copy_(0.5 + torch.rand(n, generator=g))
            m.weight.data.copy_(0.5 + torch.rand(n, generator=g))
            m.bias.data.copy_(0.1 * torch.randn(n, generator=g))
    return model.double().eval()


def _data(n: int = 2, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 32, 32, generator=g, dtype=torch.float64), torch.tensor([1, 3])[:n]


def _close(ours: np.ndarray, ref: torch.Tensor, rel: float = 1e-6) -> None:
    r = ref.detach().numpy()
    assert ours.shape == r.shape
    assert np.abs(r).max() > 0
    assert np.abs(ours - r).max() <= rel * np.abs(r).max()


@pytest.fixture(scope="module")
def resnet() -> nn.Module:
    torch.manual_seed(0)
    return _real(torchvision.models.resnet18(num_classes=5))


def _match_captum(model: nn.Module, extra: list[str], checked: list[str]) -> list[str]:
    """The auto selection plus ``extra`` in one pass of the engine; captum (one path per layer) on ``checked``."""
    graph = trace_model(model, 32)
    layers = graph.select(graph.select("auto").layers + extra).layers
    x, t = _data()
    res = layer_conductance(model, layers, x, t, n_steps=3, reduce="none", device="cpu")
    for layer in checked:
        ref = LayerConductance(model, model.get_submodule(layer)).attribute(x, target=t, n_steps=3)
        _close(res.values[layer], ref)
    return layers


def test_resnet18_layers_match_captum(resnet: nn.Module) -> None:
    # the auto selection (the stem conv and the 8 BasicBlocks: residual additions, in-place ReLUs) and two
    # layers inside residual branches
    layers = _match_captum(resnet, ["layer1.0.conv1", "layer2.0.downsample.0"],
                           ["conv1", "layer2.1", "layer4.1", "layer1.0.conv1", "layer2.0.downsample.0"])
    assert len(layers) == 11


def test_mobilenet_v3_small_layers_match_captum() -> None:
    torch.manual_seed(0)
    model = _real(torchvision.models.mobilenet_v3_small(num_classes=5))
    # every block is selected (squeeze-and-excitation, residual additions, hardswish, in-place ReLUs);
    # captum checks a stride-2 SE block, a residual SE block and a conv inside an SE branch
    layers = _match_captum(model, ["features.4.block.2.fc1"], ["features.1", "features.4", "features.4.block.2.fc1"])
    assert len(layers) == 15


def test_completeness_holds_on_cut_layers(resnet: nn.Module) -> None:
    model = resnet
    graph = trace_model(model, 32)
    layers = graph.select(["conv1", "layer1.0.conv1", "layer1.0", "layer2.0.downsample.0", "layer3.1",
                           "layer4.1"]).layers
    cuts = {layer: graph.is_cut(layer) for layer in layers}
    assert cuts == {"conv1": True, "layer1.0.conv1": False, "layer1.0": True, "layer2.0.downsample.0": False,
                    "layer3.1": True, "layer4.1": True}
    x, t = _data()
    res = layer_conductance(model, layers, x, t, n_steps=32, method="riemann_trapezoid", device="cpu")
    for layer, cut in cuts.items():
        if cut:  # the discretised path integral of every cut sums to F(x) - F(b)
            assert res.completeness[layer] < 0.05, (layer, res.completeness[layer])
        else:  # a conv inside a residual branch carries only the branch's share: a large gap, no error
            assert res.completeness[layer] > 0.2, (layer, res.completeness[layer])
