"""Layers from the traced graph: discovery in forward order, the presets, cuts and weight links
(transferviz.graph), on the demo's SmallAlexNet, torchvision's ResNet-18, MobileNetV3-small and
DenseNet-121 with random weights, and on small hand-made models (a concatenation, a model torch.fx
cannot trace)."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from tests.conftest import tiny_config_dict
from transferviz.config import parse_config
from transferviz.errors import TransferVizError
from transferviz.graph import MAX_AUTO_LAYERS, _thin, trace_model
from transferviz.models import SmallAlexNet, analysed_layers, embedding_layer

PAPER_LAYERS = ["features.0", "features.3", "features.6", "features.8", "features.10", "classifier.1", "classifier.4"]
RESNET_BLOCKS = [f"layer{s}.{b}" for s in range(1, 5) for b in range(2)]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tracing runs many tiny ops: one thread is faster than two that contend for the two shared cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=5)
    return model, trace_model(model, 32)


@pytest.fixture(scope="module")
def mobilenet():
    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v3_small(num_classes=5)
    return model, trace_model(model, 32)


def _links(graph, layers):
    return {(lk.from_layer, lk.to_layer): lk for lk in graph.links(layers)}


def test_small_alexnet_keeps_the_papers_seven_layers_in_every_preset():
    model = SmallAlexNet(num_classes=10, input_size=28)
    g = trace_model(model, 28)
    assert g.method == "fx"
    for preset in ("all", "blocks", "auto"):
        assert g.select(preset).layers == PAPER_LAYERS, preset
    sel = g.select("auto")
    assert (sel.requested, sel.used) == ("auto", "all")
    assert sel.reason.startswith("auto: 7 conv/linear layers <= 16, using all: features.0")
    assert all(g.is_cut(layer) for layer in PAPER_LAYERS)
    links = g.links(PAPER_LAYERS)
    assert [(lk.linked, lk.weights) for lk in links] == [(True, b) for b in PAPER_LAYERS[1:]]
    assert g.head() == "classifier.6" and g.embedding_layer() == "classifier.1"
    assert analysed_layers(model) == PAPER_LAYERS  # the models.py wrapper, input size found by itself
    assert embedding_layer(model, 28) == "classifier.1"


def test_resnet18_presets(resnet):
    model, g = resnet
    every = g.select("all").layers
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    assert sorted(every) == sorted(convs) and len(every) == 20  # fc is the head
    assert every[:3] == ["conv1", "layer1.0.conv1", "layer1.0.conv2"]
    # forward order, not registration order: the downsample branch runs after conv2 in torchvision's forward
    assert every.index("layer2.0.downsample.0") == every.index("layer2.0.conv2") + 1
    blocks = g.select("blocks").layers
    assert blocks == ["conv1", *RESNET_BLOCKS]  # the stem conv and the eight BasicBlocks
    auto = g.select("auto")
    assert auto.layers == blocks and auto.used == "blocks"
    assert auto.reason.startswith("auto: 20 conv/linear layers > 16, using blocks: conv1 layer1.0 ... layer4.1 (9")
    assert g.head() == "fc" and g.embedding_layer() == "fc"  # the embedding: pooled features, fc's input
    assert analysed_layers(model, "blocks", 32) == blocks


def test_resnet18_cuts(resnet):
    _, g = resnet
    assert g.is_cut("conv1") and all(g.is_cut(b) for b in RESNET_BLOCKS) and g.is_cut("layer3")
    # a conv inside a residual block, and the downsample branch, carry only their branch's share
    for inside in ("layer1.0.conv1", "layer1.0.conv2", "layer2.0.downsample.0", "layer4.1.conv2"):
        assert not g.is_cut(inside), inside


def test_resnet18_links(resnet):
    _, g = resnet
    links = _links(g, g.select("all").layers)
    assert links[("conv1", "layer1.0.conv1")].linked  # through bn1, relu and the max-pool
    conv_pair = links[("layer1.0.conv1", "layer1.0.conv2")]
    assert conv_pair.linked and conv_pair.weights == "layer1.0.conv2"
    assert links[("layer1.0.conv2", "layer1.1.conv1")].reason == "joined through a residual addition"
    assert links[("layer2.0.conv2", "layer2.0.downsample.0")].reason == (
        "layer2.0.downsample.0 does not take layer2.0.conv2's output (parallel branches)")
    blocks = _links(g, g.select("blocks").layers)
    assert not any(lk.linked for lk in blocks.values())
    assert blocks[("layer3.0", "layer3.1")].reason == "joined through a residual addition"
    tail = g.link("layer4.1", "fc")  # a block, then the head through average pooling and flatten
    assert tail.linked and tail.weights == "fc"
    assert g.link("layer1.0.conv1", "layer2.0.conv1").reason.startswith("joined through a residual addition")
    assert g.link("layer4.0.conv1", "layer4.1.conv1").linked is False


def test_mobilenet_v3_squeeze_excitation_and_inner_weights(mobilenet):
    _, g = mobilenet
    blocks = g.select("blocks").layers
    assert blocks == [f"features.{i}" for i in range(13)] + ["classifier.0"]
    assert g.select("auto").layers == blocks  # 53 conv/linear layers > 16; 14 blocks fit
    links = _links(g, blocks)
    assert links[("features.0", "features.1")].reason == "joined through a squeeze-and-excitation product"
    assert links[("features.2", "features.3")].reason == "joined through a residual addition"
    assert links[("features.1", "features.2")].reason == "features.2 contains its own convolutions"
    # a Conv2dNormActivation block: its one conv joins it to the layer before
    last = links[("features.11", "features.12")]
    assert last.linked and last.weights == "features.12.0"
    assert links[("features.12", "classifier.0")].linked
    assert g.is_cut("features.1.block.1") and not g.is_cut("features.1.block.1.fc1")  # SE: the product bypasses
    depthwise = g.link("features.2.block.0.0", "features.2.block.1.0")  # 1x1 expand -> depthwise 3x3
    assert depthwise.linked
    assert g.link("features.2.block.1.0", "features.2.block.1").reason == "features.2.block.1 contains its own " \
                                                                          "convolutions"


class ConcatNet(nn.Module):
    """Two branches concatenated, then a conv: the pair a -> c is joined through the concatenation."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(3, 4, 3, padding=1)
        self.c = nn.Conv2d(8, 6, 3, padding=1)
        self.fc = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.cat([torch.relu(self.a(x)), torch.relu(self.b(x))], dim=1)
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(torch.relu(self.c(y)), 1), 1))


def test_concatenation_is_unlinked():
    g = trace_model(ConcatNet(), 16)
    assert g.select("all").layers == ["a", "b", "c"]
    assert g.link("b", "c").reason == "joined through a concatenation"
    assert g.link("a", "b").reason == "b does not take a's output (parallel branches)"
    assert not g.is_cut("a") and g.is_cut("c")
    assert g.link("c", "fc").linked


def test_densenet121_blocks_concatenations_and_transitions():
    torch.manual_seed(0)
    g = trace_model(torchvision.models.densenet121(num_classes=3), 32)
    blocks = g.select("blocks").layers
    assert blocks == ["features.conv0", "features.denseblock1", "features.transition1", "features.denseblock2",
                      "features.transition2", "features.denseblock3", "features.transition3", "features.denseblock4"]
    links = _links(g, blocks)
    assert links[("features.conv0", "features.denseblock1")].reason == "joined through a concatenation"
    trans = links[("features.denseblock1", "features.transition1")]  # BN, ReLU, 1x1 conv, average pooling
    assert trans.linked and trans.weights == "features.transition1.conv"
    layer1, layer2 = "features.denseblock1.denselayer1", "features.denseblock1.denselayer2"
    assert g.link(layer1, layer2).reason == "joined through a concatenation"
    assert not g.is_cut(layer1) and g.is_cut("features.denseblock1")


class Stacked(nn.Module):
    """Twenty residual blocks of two convs: 41 conv layers, 20 blocks."""

    def __init__(self, n: int = 20) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.blocks = nn.Sequential(*[Residual() for _ in range(n)])
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)).mean(dim=(2, 3)))


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.conv2(torch.relu(self.conv1(x))))


def test_auto_thins_blocks_evenly():
    g = trace_model(Stacked(), 8)
    assert len(g.select("all").layers) == 41
    blocks = g.select("blocks").layers
    assert blocks == ["stem"] + [f"blocks.{i}" for i in range(20)]
    auto = g.select("auto")
    assert len(auto.layers) == MAX_AUTO_LAYERS and auto.layers[0] == "stem" and auto.layers[-1] == "blocks.19"
    assert auto.layers == _thin(blocks, MAX_AUTO_LAYERS)
    assert "21 thinned evenly to 16" in auto.reason
    assert _thin(list("abcdefghij"), 4) == ["a", "d", "g", "j"]
    assert _thin(list("abc"), 4) == ["a", "b", "c"]


class Untraceable(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.conv2 = nn.Conv2d(6, 6, 3, padding=1)
        self.conv3 = nn.Conv2d(6, 8, 3, padding=1)
        self.fc1 = nn.Linear(8 * 4 * 4, 10)
        self.fc2 = nn.Linear(10, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.conv1(x)))
        if bool(x.detach().mean() > -1.0):  # always true, but a traced Proxy has no truth value
            x = x + self.conv2(x)
        x = nn.functional.max_pool2d(torch.relu(self.conv3(x)), 2)
        return self.fc2(torch.relu(self.fc1(torch.flatten(x, 1))))


def test_fallback_to_a_hooked_forward_pass():
    g = trace_model(Untraceable(), 8)
    assert g.method == "hooks" and "torch.fx cannot trace" in g.note
    layers = g.select("auto").layers
    assert layers == ["conv1", "conv2", "conv3", "fc1"]
    assert [g.is_cut(p) for p in layers] == [True, False, True, True]
    links = _links(g, layers)
    assert links[("conv1", "conv2")].linked  # BatchNorm and ReLU
    assert links[("conv2", "conv3")].reason == "joined through a residual addition"
    assert links[("conv3", "fc1")].linked  # ReLU, max-pooling, flatten
    assert g.embedding_layer() == "fc1" and g.head() == "fc2"


def test_fx_and_hooks_agree_on_resnet18(resnet):
    model, g = resnet
    h = trace_model(model, 32, method="hooks")
    assert h.method == "hooks"
    for preset in ("all", "blocks"):
        layers = g.select(preset).layers
        assert h.select(preset).layers == layers
        assert [h.is_cut(p) for p in layers] == [g.is_cut(p) for p in layers]
        assert h.links(layers) == g.links(layers)


def test_explicit_lists_are_checked_and_ordered(resnet):
    _, g = resnet
    sel = g.select(["layer4.1", "conv1", "layer2.0.conv1"])
    assert sel.layers == ["conv1", "layer2.0.conv1", "layer4.1"] and sel.used == "list"
    assert "put in forward order" in sel.reason
    bad = {"layer9": "is not a module of the model", "layer1.0.relu": "runs 2 times per forward pass",
           "fc": None}
    for path, message in bad.items():
        if message is None:
            assert g.select([path]).layers == [path]  # the head may be listed
            continue
        with pytest.raises(TransferVizError, match=f"analysis.layers: '{path}' {message}"):
            g.select([path])
    with pytest.raises(TransferVizError, match="'layer1.1' and 'layer1' have the same output"):
        g.select(["layer1", "layer1.1"])
    with pytest.raises(TransferVizError, match="unknown preset"):
        g.select("everything")
    dropout = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Dropout(0.5), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    with pytest.raises(TransferVizError, match="'1' returns its input unchanged"):
        trace_model(dropout, 8).select(["1"])


def test_config_layer_spec_and_early_check():
    from transferviz.build import check_layers

    def cfg(layers, arch="small_alexnet"):
        d = tiny_config_dict()
        d["model"] = {"arch": arch, "input_size": 28}
        d["analysis"] = {"layers": layers}
        return parse_config(d, "t.yaml")

    assert cfg(["features.3", "features.0"]).analysis.layers == ("features.3", "features.0")
    assert parse_config(tiny_config_dict(), "t.yaml").analysis.layers == "auto"
    with pytest.raises(TransferVizError, match=r"t.yaml: 'analysis.layers': must be 'auto', 'all', 'blocks'"):
        cfg("block")
    with pytest.raises(TransferVizError, match="'features.0' is listed twice"):
        cfg(["features.0", "features.0"])
    check_layers(cfg(["features.3", "classifier.1"]))  # fine: nothing raised
    with pytest.raises(TransferVizError, match="analysis.layers: 'features.99' is not a module of the model"):
        check_layers(cfg(["features.99"]))  # before any training: build() calls it first
