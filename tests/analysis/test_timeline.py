"""Fine-tuning timeline (issue 6, item 7): shared-map placement, weight drift, accuracy by epoch."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch

from transferviz.analysis.timeline import MapPlacer, accuracy_table, flip_epochs, neuron_cosine, weight_drift


def _final(n=80, d=72, seed=0):
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(n, d)).astype(np.float32)
    pos = rng.normal(size=(n, 2)).astype(np.float32) * 20
    return rng, emb, pos


def test_unchanged_embedding_keeps_its_position_exactly():
    rng, emb, pos = _final()
    placer = MapPlacer(emb, pos, k=10)
    assert placer.pca is not None  # D > 50: placement goes through the final PCA
    epochs = []
    for e in range(4):
        x = emb.copy()
        moved = rng.choice(len(emb), size=30 - 5 * e, replace=False)
        x[moved] += rng.normal(scale=1.0, size=(len(moved), emb.shape[1])).astype(np.float32)
        epochs.append((x, moved))
    for x, moved in epochs:
        out = placer.place(x)
        assert out.shape == (len(emb), 2) and out.dtype == np.float32
        keep = np.setdiff1d(np.arange(len(emb)), moved)
        np.testing.assert_array_equal(out[keep], pos[keep])
        assert np.isfinite(out).all()
        # moved points lie inside the hull of the map (weighted averages of final positions)
        assert (out[moved].min(0) >= pos.min(0) - 1e-4).all() and (out[moved].max(0) <= pos.max(0) + 1e-4).all()
    # the final embeddings themselves map onto the final map exactly
    np.testing.assert_array_equal(placer.place(emb), pos)


def test_instance_constant_across_epochs_has_one_position():
    rng, emb, pos = _final(n=50, d=20)  # D <= 50: no PCA
    placer = MapPlacer(emb, pos)
    stack = []
    for e in range(5):
        x = emb + rng.normal(scale=0.5, size=emb.shape).astype(np.float32)
        x[7] = emb[7]
        stack.append(placer.place(x))
    stack = np.stack(stack)
    assert stack.shape == (5, 50, 2)
    assert (stack[:, 7] == pos[7]).all()


def test_placement_of_a_copy_of_another_instance_takes_its_position():
    _, emb, pos = _final(n=40, d=10)
    placer = MapPlacer(emb, pos, k=10)
    x = emb.copy()
    x[3] = emb[11]
    np.testing.assert_allclose(placer.place(x)[3], pos[11], atol=1e-5)


def test_placer_rejects_wrong_shapes():
    _, emb, pos = _final(n=20, d=8)
    with pytest.raises(ValueError):
        MapPlacer(emb, pos[:5])
    with pytest.raises(ValueError):
        MapPlacer(emb, pos).place(emb[:, :4])


def _tiny_model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                               torch.nn.Linear(4 * 4 * 4, 5))


def test_drift_is_one_at_epoch_zero_and_decreases_with_perturbation():
    ref = _tiny_model()
    models = [(0, copy.deepcopy(ref))]
    for e, scale in enumerate((0.05, 0.2, 1.0), 1):
        m = copy.deepcopy(ref)
        g = torch.Generator().manual_seed(e)
        with torch.no_grad():
            for layer in (m[0], m[3]):
                layer.weight += scale * layer.weight.abs().mean() * torch.randn(layer.weight.shape, generator=g)
        models.append((e, m))
    df = weight_drift(ref, models, ["0", "3"])
    assert list(df.columns) == ["epoch", "layer", "mean_cos", "min_cos"]
    assert len(df) == 4 * 2
    zero = df[df.epoch == 0]
    np.testing.assert_allclose(zero.mean_cos, 1.0, atol=1e-12)
    np.testing.assert_allclose(zero.min_cos, 1.0, atol=1e-12)
    for layer in ("0", "3"):
        sub = df[df.layer == layer].sort_values("epoch")
        assert np.all(np.diff(sub.mean_cos.to_numpy()) < 0)
        assert (sub.min_cos <= sub.mean_cos + 1e-12).all()
        assert (sub.min_cos >= -1).all() and (sub.mean_cos <= 1).all()


def test_neuron_cosine_rows_and_zero_rows():
    a = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    b = torch.tensor([[2.0, 0.0], [0.0, 0.0], [1.0, 0.0], [-1.0, -1.0]])
    np.testing.assert_allclose(neuron_cosine(a, b), [1.0, 1.0, 0.0, -1.0])
    with pytest.raises(ValueError):
        neuron_cosine(a, b[:2])


def test_accuracy_table_matches_predictions():
    rng = np.random.default_rng(1)
    n, k = 120, 3
    labels = rng.integers(0, k, n)
    domains = np.where(np.arange(n) < 50, "source", "target")
    splits = np.where(rng.random(n) < 0.3, "val", "train")
    pred = np.stack([np.where(rng.random(n) < p, labels, (labels + 1) % k) for p in (0.2, 0.6, 1.0)])
    epochs = [0, 1, 2]
    df = accuracy_table(pred, labels, domains, epochs, k, splits)
    assert len(df) == 3 * 2 * k
    for row in df.itertuples():
        sel = (domains == row.domain) & (labels == row.class_index)
        assert row.n == sel.sum()
        assert row.accuracy == pytest.approx((pred[epochs.index(row.epoch)][sel] == row.class_index).mean())
    assert (df[df.epoch == 2].accuracy == 1.0).all()
    # overall accuracy recovers from the per-class rows weighted by n
    e1 = df[df.epoch == 1]
    assert (e1.accuracy * e1.n).sum() / e1.n.sum() == pytest.approx((pred[1] == labels).mean())


def test_flip_epochs():
    pred = np.array([[0, 1, 2], [0, 2, 2], [1, 2, 2]])
    np.testing.assert_array_equal(flip_epochs(pred), [[False] * 3, [False, True, False], [True, False, False]])


def test_cache_timeline_accessors(tiny_cache):
    c = tiny_cache
    n = len(c.instances)
    epochs = c.timeline_epochs()
    assert list(epochs) == c.epochs("target") == [0, 1, 2]
    pos = c.timeline_positions()
    assert pos.shape == (len(epochs), n, 2) and pos.dtype == np.float32 and np.isfinite(pos).all()
    pred = np.asarray(c.timeline_pred())
    assert pred.shape == (len(epochs), n)
    assert c.timeline_flips().shape == pred.shape
    acc = c.timeline_accuracy()
    assert {"epoch", "class_index", "domain", "accuracy"} <= set(acc.columns)
    assert len(acc) == len(epochs) * 2 * len(c.classes)
    df = c.instances
    for e, epoch in enumerate(epochs):
        sub = acc[(acc.epoch == epoch) & (acc.domain == "target") & (acc.class_index == 0)]
        sel = ((df.domain == "target") & (df.label == 0)).to_numpy()
        assert sub.accuracy.iloc[0] == pytest.approx((pred[e][sel] == 0).mean())
    # epoch 0 is the source model: its predictions are the forward stage's source predictions
    np.testing.assert_array_equal(pred[0], df["source_pred"].to_numpy())
    drift = c.timeline_drift()
    assert set(drift.layer) == set(c.layers)
    np.testing.assert_allclose(drift[drift.epoch == 0][["mean_cos", "min_cos"]].to_numpy(), 1.0, atol=1e-9)
    assert isinstance(drift, pd.DataFrame)
