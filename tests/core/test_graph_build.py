"""End to end: a tiny ResNet-18 cache at 32 px through transferviz.build.build, with analysed layers that
mix blocks, convs inside a block and a stage, so that some consecutive pairs are joined by weights and
others are not; the cache opens, says which and why, and the weight accessors and the network view's
data are None or empty for the unlinked pairs without failing."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
import torchvision
from torch import nn

from tests.conftest import tiny_config_dict
from transferviz.cache import Cache

LAYERS = ["conv1", "layer1.1", "layer2.0.conv1", "layer2.0.conv2", "layer3", "layer4.1"]


def resnet18(num_classes: int) -> nn.Module:
    """torchvision's ResNet-18 through the package.module:factory form (no weights, none downloaded)."""
    return torchvision.models.resnet18(num_classes=num_classes)


@pytest.fixture(scope="module")
def resnet_cache(tmp_path_factory) -> Cache:
    from transferviz.build import build
    from transferviz.config import parse_config

    # a 32 px ResNet runs small ops: one thread is faster than two contending for the two shared cores
    before = torch.get_num_threads()
    torch.set_num_threads(1)

    cfg = tiny_config_dict(
        "resnet", source={"kind": "synthetic_digits", "n_per_class": 3},
        target={"kind": "sklearn_digits", "max_per_class": 3},
        model={"arch": "tests.core.test_graph_build:resnet18", "input_size": 32},
        training={"source": {"epochs": 1, "lr": 0.003}, "target": {"epochs": 1, "lr": 0.002}},
        analysis={"n_steps": 4, "discriminability_folds": 2, "tsne_perplexity": 5, "layers": LAYERS})
    root = tmp_path_factory.mktemp("resnet-cache")
    try:
        build(parse_config(cfg, "resnet.yaml"), root, torch.device("cpu"), featvis=False, progress=False,
              log=lambda m: None)
    finally:
        torch.set_num_threads(before)
    return Cache.open(root / "resnet")


def test_layers_cuts_and_selection(resnet_cache: Cache):
    c = resnet_cache
    assert c.layers == LAYERS
    assert c.layer_info["embedding_layer"] == "fc"
    assert c.embedding("target").shape == (len(c.instances), 512)  # the pooled features
    cuts = {d["name"]: d["cut"] for d in c.layer_info["detail"]}
    assert cuts == {"conv1": True, "layer1.1": True, "layer2.0.conv1": False, "layer2.0.conv2": False,
                    "layer3": True, "layer4.1": True}
    assert c.layer_cuts == cuts
    sel = c.layer_selection()
    assert sel is not None and sel["requested"] == "list" and sel["reason"].startswith("explicit list: conv1")
    detail = {d["name"]: d for d in c.layer_info["detail"]}
    assert detail["layer3"]["type"] == "Sequential" and detail["layer3"]["neurons"] == 256
    assert detail["layer4.1"]["params"] == sum(p.numel() for p in resnet18(10).layer4[1].parameters())
    notes = c.manifest["stages"]["attribute"]["notes"]
    assert notes["completeness_checked"] == ["conv1", "layer1.1", "layer3", "layer4.1"]
    assert "inside branches not checked" in c.manifest["stages"]["attribute"]["notes"]["summary"]


def test_layer_links_and_weights(resnet_cache: Cache):
    c = resnet_cache
    links = c.layer_links()
    assert list(links.columns[:4]) == ["from_layer", "to_layer", "linked", "reason"]
    assert links["linked"].dtype == bool and len(links) == len(LAYERS) - 1
    rows = {(r.from_layer, r.to_layer): r for r in links.itertuples(index=False)}
    assert rows[("layer1.1", "layer2.0.conv1")].linked  # conv1 of the next block reads the block's output
    assert rows[("layer2.0.conv1", "layer2.0.conv2")].linked
    assert rows[("conv1", "layer1.1")].reason == "joined through a residual addition"
    assert rows[("layer2.0.conv2", "layer3")].reason == "joined through a residual addition"
    assert not rows[("layer3", "layer4.1")].linked
    for r in links.itertuples(index=False):
        a, b = r.from_layer, r.to_layer
        for which in ("source", "target"):
            if r.linked:
                assert c.weight_block(which, a, b, 0) is not None
                assert c.weight_values(which, a, b) is not None
                assert len(c.important_weight_table(which, a, b)) > 0
            else:
                assert c.weight_block(which, a, b, 0) is None and c.weight_values(which, a, b) is None
                assert c.weight_hist(which, a, b, 0) is None and c.weight_boxes(a, b) is None
                assert c.important_weights(which, a, b, 0) is None
                assert c.kernel(which, a, b, 0, 0) is None
                assert len(c.important_weight_table(which, a, b)) == 0
                assert not (c.root / f"analysis/weights/{which}/{a}__{b}.parquet").exists()
    assert c.weight_block_correspondence("conv1", "layer1.1", 0) is None
    kernel = c.kernel("target", "layer2.0.conv1", "layer2.0.conv2", 1, 2)
    assert kernel is not None and kernel.shape == (3, 3)
    corr = c.correspondence
    assert set(zip(corr.layer_i, corr.layer_j)) == {("layer1.1", "layer2.0.conv1"),
                                                    ("layer2.0.conv1", "layer2.0.conv2")}
    for layer in LAYERS:  # similarity stays per layer for every layer
        assert c.has_similarity(layer) and c.similarity_block(layer, 0) is not None
    drift = c.timeline_drift()
    assert drift is not None and set(drift.layer) == set(LAYERS)


def test_network_view_reads_unlinked_pairs(resnet_cache: Cache):
    from dashboard.views.network import data as network

    network.warm(resnet_cache)
    for a, b in zip(LAYERS[:-1], LAYERS[1:]):
        block = network.pair_block(resnet_cache, 0, a, b)
        assert (block.target is None) == (not resnet_cache.is_linked(a, b))


def test_info_lists_the_layers_and_why(resnet_cache: Cache, capsys):
    from transferviz.cli import main

    assert main(["info", str(resnet_cache.root)]) == 0
    out = capsys.readouterr().out
    assert "layers chosen by explicit list: conv1" in out
    assert "not cuts of the graph (completeness not checked): layer2.0.conv1, layer2.0.conv2" in out
    assert "2 of 5 consecutive pairs joined by one weight matrix" in out
    assert "conv1 -> layer1.1: joined through a residual addition" in out


def test_older_caches_are_all_linked(resnet_cache: Cache, tmp_path):
    from tests.conftest import copy_cache

    old = copy_cache(resnet_cache, tmp_path / "old", "graph.json")  # as built before graph.json: not listed either
    links = old.layer_links()
    assert links["linked"].all() and (links["reason"] == "").all()
    assert list(links["weights"]) == LAYERS[1:]
    assert old.layer_selection() is None and all(old.layer_cuts.values())
    assert all(d["cut"] for d in old.layer_info["detail"])
    assert isinstance(links, pd.DataFrame)
