"""Bounded config loading (issue 15, item 2): alias bombs, huge files and non-UTF-8 files are refused with
one line, at once, before anything is constructed; ordinary anchors still work."""

from __future__ import annotations

import time

import pytest

from transferviz.config import MAX_CONFIG_BYTES, load_config
from transferviz.errors import TransferVizError

LEVELS = "abcdefghij"


def _mapping_bomb() -> str:
    lines = ["a: &a {x: 1, y: 1}"]
    for prev, cur in zip(LEVELS, LEVELS[1:]):
        lines.append(f"{cur}: &{cur} {{" + ", ".join(f"k{j}: *{prev}" for j in range(9)) + "}")
    return "\n".join(lines) + "\n"


def _list_bomb() -> str:
    lines = ["a: &a [1, 1]"]
    for prev, cur in zip(LEVELS, LEVELS[1:]):
        lines.append(f"{cur}: &{cur} [" + ", ".join(f"*{prev}" for _ in range(9)) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("text", [_mapping_bomb(), _list_bomb(), "a: &a [*a]\n", "a: &a {b: *a}\n"],
                         ids=["mapping-bomb", "list-bomb", "self-list", "self-mapping"])
def test_alias_bombs_are_refused_at_once_in_one_line(tmp_path, text):
    p = tmp_path / "bomb.yaml"
    p.write_text(text)
    assert len(text) < 1000
    t = time.perf_counter()
    with pytest.raises(TransferVizError) as err:
        load_config(p)
    assert time.perf_counter() - t < 2
    msg = str(err.value)
    assert "\n" not in msg and "aliases expand to more than" in msg and str(p) in msg


def test_a_huge_file_is_refused_without_reading_it(tmp_path):
    p = tmp_path / "big.yaml"
    with open(p, "wb") as f:
        f.truncate(MAX_CONFIG_BYTES + 1)
    with pytest.raises(TransferVizError, match=r"more than a config's 1,048,576; pass the YAML config"):
        load_config(p)


def test_a_binary_file_is_refused_in_one_line(tmp_path):
    p = tmp_path / "bin.yaml"
    p.write_bytes(b"name: x\n\xff\xfe\x00")
    with pytest.raises(TransferVizError) as err:
        load_config(p)
    assert str(err.value) == f"{p} is not UTF-8 text (byte 8); save the config as UTF-8 YAML"


def test_ordinary_anchors_still_load(tmp_path):
    p = tmp_path / "ok.yaml"
    p.write_text("name: anchors\nsource: {kind: synthetic_digits, n_per_class: 8}\n"
                 "target: {kind: sklearn_digits}\n"
                 "training:\n  source: &train {epochs: 2, lr: 0.001}\n  target: *train\n")
    cfg = load_config(p)
    assert cfg.training is not None and cfg.training.target == cfg.training.source
    assert cfg.training.target.epochs == 2
