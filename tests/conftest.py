"""Shared fixtures: a tiny config and cache (seconds to build) and the real demo cache (built once)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent

# Two cores: keep torch from oversubscribing when pytest-xdist runs workers side by side.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def tiny_config_dict(name: str = "tiny", **overrides) -> dict:
    cfg = {
        "name": name,
        "seed": 0,
        "source": {"kind": "synthetic_digits", "n_per_class": 16},
        "target": {"kind": "sklearn_digits", "max_per_class": 14},
        "model": {"arch": "small_alexnet", "input_size": 28},
        "training": {"source": {"epochs": 2, "lr": 0.003}, "target": {"epochs": 2, "lr": 0.002}},
        "analysis": {"n_steps": 4, "discriminability_folds": 3, "tsne_perplexity": 10},
        "featvis": {"steps": 4},
    }
    for key, value in overrides.items():
        cfg[key] = value
    return cfg


@pytest.fixture(scope="session")
def tiny_config():
    from transferviz.config import parse_config

    return parse_config(tiny_config_dict(), "tiny.yaml")


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory, tiny_config):
    """A complete small cache, every stage run (featvis included)."""
    from transferviz.pipeline import build

    root = tmp_path_factory.mktemp("tiny-cache")
    build(tiny_config, root, torch.device("cpu"), progress=False, log=lambda m: None)
    from transferviz.cache import Cache

    return Cache.open(root / "tiny")


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory):
    """The real embedded demo, built once per test session from configs/digits.yaml.

    Set TRANSFERVIZ_TEST_DEMO_CACHE to a built cache folder to skip the build while iterating.
    """
    from transferviz.cache import Cache

    given = os.environ.get("TRANSFERVIZ_TEST_DEMO_CACHE")
    if given:
        return Cache.open(given)
    from transferviz.config import load_config
    from transferviz.pipeline import build

    root = tmp_path_factory.mktemp("demo-cache")
    build(load_config(REPO / "configs" / "digits.yaml"), root, torch.device("cpu"), progress=False,
          log=lambda m: None)
    return Cache.open(root / "digits")
