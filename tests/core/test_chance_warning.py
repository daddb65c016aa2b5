"""A build warns loudly when a model ends at chance level (issue 16, item 7)."""

from __future__ import annotations

import numpy as np

from transferviz.build.framework import BuildReport
from transferviz.build.inputs import chance_warning


def test_balanced_classes_at_one_over_k_warn():
    labels = np.repeat(np.arange(31), 10)  # 310 images, chance 1/31
    line = chance_warning("source", 0.032, labels)
    assert line is not None and "source model is at chance level" in line
    assert "0.032" in line and "310 images" in line and "chance 0.032" in line


def test_clearly_learned_model_does_not_warn():
    labels = np.repeat(np.arange(10), 20)
    assert chance_warning("target", 0.6, labels) is None


def test_chance_is_the_majority_class_share():
    # 90% of the labels are class 0: 0.9 accuracy is what always answering 0 scores
    labels = np.array([0] * 90 + [1] * 10)
    assert chance_warning("target", 0.9, labels) is not None
    assert chance_warning("target", 0.99, labels) is None


def test_a_few_lucky_answers_on_a_small_split_still_warn():
    labels = np.repeat(np.arange(10), 2)  # 20 images, chance 0.1: 3 right is not evidence of learning
    assert chance_warning("source", 0.15, labels) is not None


def test_empty_split_says_nothing():
    assert chance_warning("source", float("nan"), np.array([], dtype=np.int64)) is None


def test_report_repeats_the_warnings_in_its_summary(tmp_path):
    report = BuildReport(tmp_path, tmp_path / "b", [
        {"name": "models", "reused": False, "seconds": 1.0, "summary": "", "warnings": ["the source model is x"]},
        {"name": "data", "reused": True, "seconds": 0.1, "summary": ""}], 1.1)
    assert report.warnings == ["[models] the source model is x"]
    assert report.summary().splitlines()[-1] == "WARNING [models] the source model is x"


def test_the_page_shows_the_build_warnings_above_every_tab(tiny_cache, tmp_path):
    import json

    from layouts.page import page_layout
    from tests.conftest import copy_cache
    from transferviz.cache import Cache

    copy = copy_cache(tiny_cache, tmp_path / "c")
    manifest = json.loads((copy.root / "manifest.json").read_text())
    manifest["stages"]["models"]["notes"]["warnings"] = ["the source model is at chance level: test"]
    (copy.root / "manifest.json").write_text(json.dumps(manifest))
    warned = Cache.open(copy.root)
    assert warned.build_warnings() == ["the source model is at chance level: test"]
    assert "the source model is at chance level: test" in str(page_layout(warned))
