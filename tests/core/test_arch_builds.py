"""End to end for every architecture the README names: a tiny cache (a few instances per class, one
epoch, n_steps 4, the default layer preset) built through ``transferviz.build.build`` on the CPU at
the smallest size each runs at, then opened and read as the dashboard reads it.

Slow by nature (eight builds): the sizes and counts are the least that still exercise every stage.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from tests.conftest import tiny_config_dict
from transferviz.cache import Cache

#: ``torchvision:<name>`` -> input side in px (AlexNet's pooling needs 63 px and more).
ARCHS = {
    "resnet18": 32, "resnet50": 32, "vgg16_bn": 32, "mobilenet_v3_large": 32, "efficientnet_b0": 32,
    "densenet121": 32, "convnext_tiny": 32, "alexnet": 64,
}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=sorted(ARCHS))
def arch_cache(request, tmp_path_factory) -> Iterator[tuple[str, Cache]]:
    from transferviz.build import build
    from transferviz.config import parse_config

    name = request.param
    cfg = tiny_config_dict(
        name.replace("_", "-"), source={"kind": "synthetic_digits", "n_per_class": 3},
        target={"kind": "sklearn_digits", "max_per_class": 3},
        model={"arch": f"torchvision:{name}", "input_size": ARCHS[name]},
        training={"source": {"epochs": 1, "lr": 0.003}, "target": {"epochs": 1, "lr": 0.002}},
        analysis={"n_steps": 4, "discriminability_folds": 2, "tsne_perplexity": 5})
    # small ops at 32 px: one thread beats two contending for the machine's two cores
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp(f"arch-{name}")
    try:
        build(parse_config(cfg, f"{name}.yaml"), root, torch.device("cpu"), featvis=False, progress=False,
              log=lambda m: None)
    finally:
        torch.set_num_threads(before)
    yield name, Cache.open(root / cfg["name"])
    # eight builds of up to 1.6 GB each (VGG-16's weights): one on disk at a time, not all until the session ends
    shutil.rmtree(root, ignore_errors=True)


def test_every_architecture_builds_and_reads(arch_cache: tuple[str, Cache]) -> None:
    name, c = arch_cache
    n = len(c.instances)
    assert 0 < len(c.layers) <= 16, c.layers
    assert c.layer_info["embedding_layer"], "an embedding layer was chosen"
    assert c.embedding("target").shape[0] == n
    links = c.layer_links()
    assert list(links.columns[:4]) == ["from_layer", "to_layer", "linked", "reason"]
    assert list(zip(links.from_layer, links.to_layer)) == list(zip(c.layers[:-1], c.layers[1:]))
    assert all(r == "" for r in links.reason[links.linked]) and all(links.reason[~links.linked].str.len() > 0)
    for layer in c.layers:
        cond = np.asarray(c.conductance("target", layer))
        assert cond.shape == (n, c.layer_sizes[layer]) and np.isfinite(cond).all()
        assert len(c.important_neurons("target", layer, 0)) > 0
        assert c.similarity_block(layer, 0) is not None
    for row in links.itertuples(index=False):
        block = c.weight_block("target", row.from_layer, row.to_layer, 0)
        assert (block is not None) == bool(row.linked), (row.from_layer, row.to_layer, row.reason)
    assert c.tsne().shape == (n, 2)
