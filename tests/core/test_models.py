"""Architectures, analysed layers and safe checkpoint loading."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from transferviz.errors import TransferVizError
from transferviz.models import (
    SmallAlexNet,
    analysed_layers,
    build_model,
    embedding_layer,
    head_module,
    load_checkpoint,
    load_init_weights,
)

PAPER_LAYERS = ["features.0", "features.3", "features.6", "features.8", "features.10", "classifier.1", "classifier.4"]


def test_small_alexnet_shape_and_layers():
    m = SmallAlexNet(num_classes=10, input_size=28)
    assert m(torch.zeros(2, 3, 28, 28)).shape == (2, 10)
    assert analysed_layers(m) == PAPER_LAYERS
    assert embedding_layer(m) == "classifier.1"
    assert sum(isinstance(x, nn.Conv2d) for x in m.modules()) == 5
    assert sum(isinstance(x, nn.Linear) for x in m.modules()) == 3
    assert SmallAlexNet(10, input_size=32)(torch.zeros(1, 3, 32, 32)).shape == (1, 10)


def test_torchvision_alexnet_has_the_papers_seven_layers():
    assert analysed_layers(build_model("alexnet", 31)) == PAPER_LAYERS


def tiny_factory(num_classes: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 26 * 26, 8), nn.ReLU(),
                         nn.Linear(8, num_classes))


def test_user_factory():
    m = build_model("tests.core.test_models:tiny_factory", 5)
    assert analysed_layers(m) == ["0", "3"]
    with pytest.raises(TransferVizError, match="cannot import"):
        build_model("no_such_pkg.mod:f", 5)
    with pytest.raises(TransferVizError, match="has no callable"):
        build_model("tests.core.test_models:nothing", 5)
    with pytest.raises(TransferVizError, match="package.module:factory"):
        build_model("resnet", 5)


def test_checkpoint_round_trip_and_mismatch(tmp_path):
    m = SmallAlexNet(10)
    p = tmp_path / "ok.pt"
    torch.save(m.state_dict(), p)
    m2 = SmallAlexNet(10)
    load_checkpoint(m2, p)
    assert torch.equal(m2.features[0].weight, m.features[0].weight)
    torch.save({"state_dict": m.state_dict()}, tmp_path / "wrapped.pt")
    load_checkpoint(SmallAlexNet(10), tmp_path / "wrapped.pt")
    torch.save(SmallAlexNet(7).state_dict(), tmp_path / "seven.pt")
    with pytest.raises(TransferVizError, match=r"tensor 'classifier.6.weight' has shape \(7, 64\) in the checkpoint "
                                              r"but \(10, 64\) in the architecture"):
        load_checkpoint(SmallAlexNet(10), tmp_path / "seven.pt")
    with pytest.raises(TransferVizError, match="lacks tensor 'features.0.weight'"):
        torch.save({"x": torch.zeros(1)}, tmp_path / "other.pt")
        load_checkpoint(SmallAlexNet(10), tmp_path / "other.pt")
    with pytest.raises(TransferVizError, match="does not exist"):
        load_checkpoint(SmallAlexNet(10), tmp_path / "missing.pt")


def test_pickled_module_is_refused(tmp_path):
    """A whole pickled module would execute code on load; weights_only=True refuses it."""
    p = tmp_path / "module.pt"
    torch.save(SmallAlexNet(10), p)
    with pytest.raises(TransferVizError, match="weights_only=True") as err:
        load_checkpoint(SmallAlexNet(10), p)
    assert "\n" not in str(err.value)
    assert "it pickles a transferviz.models.SmallAlexNet, not only tensors" in str(err.value)


def test_head_module():
    assert head_module(SmallAlexNet(10)) == "classifier.6"
    assert head_module(tiny_factory(3)) == "5"
    assert head_module(build_model("torchvision:squeezenet1_1", 4)) == "classifier.1"  # no nn.Linear: last conv
    assert head_module(nn.Sequential(nn.ReLU())) is None


def test_init_weights_into_small_alexnet(tmp_path):
    torch.manual_seed(0)
    p = tmp_path / "pre.pt"
    pre = SmallAlexNet(1000).state_dict()
    torch.save({"state_dict": pre}, p)
    m = SmallAlexNet(10)
    assert load_init_weights(m, p) == ("init_weights: loaded 14 tensors from pre.pt; head classifier.6.weight, "
                                       "classifier.6.bias left freshly initialised (1000 -> 10 classes)")
    assert torch.equal(m.classifier[4].weight, pre["classifier.4.weight"])
    torch.save({k: v for k, v in pre.items() if not k.startswith("classifier.6.")}, p)  # a backbone-only file
    assert load_init_weights(SmallAlexNet(10), p).endswith("left freshly initialised (not in the file)")
    torch.save(SmallAlexNet(10).state_dict(), p)  # the same classes: every tensor loads
    assert load_init_weights(SmallAlexNet(10), p) == "init_weights: loaded 16 tensors from pre.pt"
