"""Important weights of pairs the graph links, on real blocks, against the brute-force loops of
test_weights.py: a ResNet BasicBlock's conv1 -> conv2 (through BatchNorm and ReLU), a depthwise
convolution after a 1x1 one (MobileNetV3), a block's one conv (Conv2dNormActivation), and a block
followed by the head through global average pooling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from torch import nn
from torchvision.ops.misc import Conv2dNormActivation

from tests.analysis.test_graph_conductance import _real
from tests.analysis.test_weights import brute_conv_levels, brute_important, brute_linear_levels
from transferviz.analysis.weights import important_weights, layer_in_groups, layer_inputs, weight_value_matrix
from transferviz.errors import TransferVizError
from transferviz.graph import trace_model

# many tiny ops (brute-force loops, float64 paths at 32 px): one thread beats two contending ones
pytestmark = pytest.mark.usefixtures("one_torch_thread")

def _check_pair(model: nn.Module, size: int, layer_i: str, layer_j: str, inputs: torch.Tensor,
                k_inst: int = 5, k_cls: int = 7) -> str:
    graph = trace_model(model, size)
    link = graph.link(layer_i, layer_j)
    assert link.linked, link.reason
    via = link.weights
    assert via is not None
    shape = graph.modules[layer_i].shape
    assert shape is not None
    mod = model.get_submodule(via)
    x = layer_inputs(model, via, inputs)
    n_in, in_groups = layer_in_groups(shape, mod, layer_i, via)
    if isinstance(mod, nn.Conv2d):
        levels = brute_conv_levels(mod, x)
    else:
        levels = brute_linear_levels(mod, x, in_groups)
    values = weight_value_matrix(mod, in_groups)
    res = important_weights(model, layer_i, via, inputs, k_instance=k_inst, k_class=k_cls, batch_size=2,
                            layer_i_shape=shape)
    n1, n2, counts, vals = brute_important(levels, values, k_inst, k_cls)
    np.testing.assert_array_equal(res.counts, counts)
    np.testing.assert_array_equal(res.n1, n1)
    np.testing.assert_array_equal(res.n2, n2)
    np.testing.assert_allclose(res.value, vals)
    assert res.counts.shape == (mod.weight.shape[0], n_in)
    return via


@pytest.fixture(scope="module")
def resnet() -> nn.Module:
    torch.manual_seed(0)
    return _real(torchvision.models.resnet18(num_classes=4)).float()


def test_basic_block_conv1_to_conv2_matches_brute_force(resnet: nn.Module):
    model = resnet
    inputs = torch.randn(2, 3, 32, 32)
    # what conv2 receives is conv1's output through bn1 and the (in-place) ReLU, nothing else
    seen: dict[str, torch.Tensor] = {}
    block = model.layer1[0]
    h = block.conv1.register_forward_hook(lambda m, i, o: seen.setdefault("conv1", o.detach().clone()))
    with torch.no_grad():
        model(inputs)
    h.remove()
    expected = torch.relu(block.bn1(seen["conv1"]))
    torch.testing.assert_close(layer_inputs(model, "layer1.0.conv2", inputs), expected)
    assert _check_pair(model, 32, "layer1.0.conv1", "layer1.0.conv2", inputs) == "layer1.0.conv2"
    with pytest.raises(TransferVizError, match="not consecutive"):  # without the graph's word: refused
        important_weights(model, "layer1.0.conv1", "layer1.1.conv1", inputs)


def test_block_to_head_through_global_pooling(resnet: nn.Module):
    torch.manual_seed(1)
    assert _check_pair(resnet, 32, "layer4.1", "fc", torch.randn(2, 3, 32, 32), k_inst=6, k_cls=4) == "fc"


def test_depthwise_after_pointwise():
    torch.manual_seed(2)
    model = _real(torchvision.models.mobilenet_v3_small(num_classes=3)).float()
    via = _check_pair(model, 32, "features.2.block.0.0", "features.2.block.1.0", torch.randn(2, 3, 32, 32))
    assert model.get_submodule(via).groups == model.get_submodule(via).in_channels  # depthwise


def test_a_blocks_one_conv_joins_it():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), Conv2dNormActivation(4, 6, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(6, 2)).eval()
    with torch.no_grad():
        model[1][1].running_var.uniform_(0.5, 1.5)
    assert _check_pair(model, 12, "0", "1", torch.randn(3, 3, 12, 12)) == "1.0"
