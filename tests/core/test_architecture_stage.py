"""The architecture stage: ``models/modules.json`` against a direct forward pass and the weights."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load_file

from transferviz.build.inputs import module_table


@pytest.fixture(scope="module")
def modules(tiny_cache) -> list[dict]:
    rows = tiny_cache.modules()
    assert rows is not None, "the tiny build must write models/modules.json"
    return rows


def _leaves(model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    return {n: m for n, m in model.named_modules() if n and not list(m.children())}


def test_rows_are_the_leaf_modules_in_forward_order(tiny_cache, modules):
    model = tiny_cache.model("target")
    leaves = _leaves(model)
    order: list[str] = []
    hooks = [m.register_forward_hook(lambda mod, i, o, n=n: order.append(n) if n not in order else None)
             for n, m in leaves.items()]
    with torch.no_grad():
        model(tiny_cache.inputs([0]))
    for h in hooks:
        h.remove()
    assert [r["name"] for r in modules] == order
    assert [r["type"] for r in modules] == [type(leaves[n]).__name__ for n in order]


def test_output_shapes_equal_a_real_forward_pass(tiny_cache, modules):
    model = tiny_cache.model("source")  # same architecture: the shapes must hold for both models
    x = tiny_cache.inputs([3, 5])  # two instances: the batch dimension must not leak into the shapes
    seen: dict[str, tuple[int, ...]] = {}
    hooks = [m.register_forward_hook(lambda mod, i, o, n=n: seen.setdefault(n, tuple(o.shape)) and None)
             for n, m in _leaves(model).items()]
    with torch.no_grad():
        logits = model(x)
    for h in hooks:
        h.remove()
    for r in modules:
        assert (2, *r["output_shape"]) == seen[r["name"]], r["name"]
    assert modules[-1]["output_shape"] == [len(tiny_cache.classes)] == list(logits.shape[1:])


def test_params_are_the_sum_of_numel(tiny_cache, modules):
    model = tiny_cache.model("target")
    leaves = _leaves(model)
    for r in modules:
        assert r["params"] == sum(p.numel() for p in leaves[r["name"]].parameters()), r["name"]
    assert sum(r["params"] for r in modules) == sum(p.numel() for p in model.parameters())


def test_analysed_layers_carry_the_paper_numbers(tiny_cache, modules):
    analysed = [(r["name"], r["number"]) for r in modules if r["analysed"]]
    assert analysed == [(n, i) for i, n in enumerate(tiny_cache.layers, 1)]
    assert all(r["number"] is None for r in modules if not r["analysed"])


def test_weight_change_equals_a_direct_computation(tiny_cache, modules):
    src = load_file(str(tiny_cache.root / "models/source.safetensors"))
    tgt = load_file(str(tiny_cache.root / "models/target.safetensors"))
    for r in modules:
        keys = [k for k in src if k.rsplit(".", 1)[0] == r["name"]]
        if not keys:
            assert r["params"] == 0 and r["weight_change"] is None, r["name"]
            continue
        diff = math.sqrt(sum(float(((tgt[k] - src[k]) ** 2).sum()) for k in keys))
        base = math.sqrt(sum(float((src[k] ** 2).sum()) for k in keys))
        assert r["weight_change"] == pytest.approx(diff / base, rel=1e-5), r["name"]
        assert r["weight_change"] > 0  # fine-tuning trained every layer of the tiny build


def test_an_unchanged_module_has_zero_change(tiny_cache):
    source = tiny_cache.model("source")
    target = tiny_cache.model("target")
    with torch.no_grad():  # freeze one layer by hand: copy the source's weights into the target
        target.features[3].load_state_dict(source.features[3].state_dict())
    rows = {r["name"]: r for r in module_table(target, source, tiny_cache.inputs([0]), tiny_cache.layers)}
    assert rows["features.3"]["weight_change"] == 0.0
    assert rows["features.0"]["weight_change"] > 0


def test_older_cache_without_the_artifact_gives_none(tiny_cache, tmp_path):
    from transferviz.cache import Cache

    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "layers.json").write_text((tiny_cache.root / "models/layers.json").read_text())
    m = tiny_cache.manifest  # an older build's manifest does not list it (a listed artifact must be there)
    older = {**m, "artifacts": {k: v for k, v in m["artifacts"].items() if k != "models/modules.json"}}
    assert Cache(tmp_path, older).modules() is None
