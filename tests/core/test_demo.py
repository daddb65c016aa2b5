"""The embedded demo: its quality bar, its transfer gap, and its analysis on the trained models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transferviz.cache import Cache

pytestmark = pytest.mark.slow


def test_quality_bar(demo_cache: Cache):
    """Issue 2: source >= 90% on source val, target >= 90% on target val, a >= 20-point transfer gap."""
    last = demo_cache.history.groupby("model").tail(1).set_index("model")
    assert last.loc["source", "val"] >= 0.90, last
    assert last.loc["target", "val"] >= 0.90, last
    assert last.loc["source", "target_val"] <= last.loc["target", "val"] - 0.20, last
    assert demo_cache.json("analysis/summary.json")["transferability"] >= 0.20


def test_history_has_six_series_per_epoch(demo_cache: Cache):
    h = demo_cache.history
    cfg = demo_cache.config["training"]
    assert (h.model == "source").sum() == cfg["source"]["epochs"]
    assert (h.model == "target").sum() == cfg["target"]["epochs"]
    assert h[["source_train", "target_train", "val"]].notna().all().all()
    assert demo_cache.epochs("target") == list(range(cfg["target"]["epochs"] + 1))


def test_recorded_predictions_match_the_models(demo_cache: Cache):
    df = demo_cache.instances
    rng = np.random.default_rng(0)
    ids = np.sort(rng.choice(len(df), 64, replace=False))
    with torch.no_grad():
        for which in ("source", "target"):
            logits = demo_cache.model(which)(demo_cache.inputs(ids))
            assert (logits.argmax(1).numpy() == df.loc[ids, f"{which}_pred"].to_numpy()).all()
            loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(df.loc[ids, "label"].to_numpy()),
                                                     reduction="none")
            assert np.allclose(loss.numpy(), df.loc[ids, f"{which}_loss"].to_numpy(), atol=1e-4)


def test_conductance_matches_captum_on_the_trained_demo_models(demo_cache: Cache):
    """Issue 3: the cached values agree with captum.attr.LayerConductance on every analysed layer."""
    from captum.attr import LayerConductance

    a = demo_cache.config["analysis"]
    ids = np.array([0, 1, len(demo_cache.instances) - 1])
    x = demo_cache.inputs(ids)
    y = torch.from_numpy(demo_cache.instances.loc[ids, "label"].to_numpy())
    for which in ("source", "target"):
        model = demo_cache.model(which)
        for m in model.modules():  # captum needs out-of-place ReLUs to read layer outputs faithfully
            if isinstance(m, torch.nn.ReLU):
                m.inplace = False
        for layer in demo_cache.layers:
            ref = LayerConductance(model, model.get_submodule(layer)).attribute(
                x, baselines=a["baseline"], target=y, n_steps=a["n_steps"], method=a["method"])
            ref = ref.amax(dim=(2, 3)) if ref.dim() == 4 else ref
            got = np.asarray(demo_cache.conductance(which, layer)[ids])
            scale = float(ref.abs().max())
            assert np.abs(got - ref.detach().numpy()).max() <= 1e-4 * scale + 1e-7, (which, layer)


def test_completeness_recorded_per_layer(demo_cache: Cache):
    comp = demo_cache.manifest["stages"]["attribute"]["notes"]["completeness"]
    assert set(comp) == {"source", "target"}
    for which in comp:
        assert set(comp[which]) == set(demo_cache.layers)
        assert all(np.isfinite(v) and v >= 0 for v in comp[which].values())
