"""Linear CKA with the unbiased HSIC estimator, minibatched (issue 14, item 4), and the cka stage on the tiny cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from transferviz.analysis.cka import MIN_BATCH, MinibatchCKA, batches, gram, hsic_unbiased, linear_cka
from transferviz.build.estimates import layer_kernels
from transferviz.errors import TransferVizError


def related(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two representations of n instances that share part of their structure (CKA well inside (0, 1))."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 12)) * np.linspace(3, 0.5, 12)
    y = x @ rng.normal(size=(12, 9)) + 4 * rng.normal(size=(n, 9))
    return x, y


def u_centred_hsic(k: np.ndarray, l: np.ndarray) -> float:  # noqa: E741
    """The unbiased HSIC written another way (Szekely & Rizzo's U-centring): with K~ the kernel with a zero
    diagonal, K^_ij = K~_ij - r_i/(n-2) - r_j/(n-2) + s/((n-1)(n-2)) off the diagonal (r row sums, s the
    total), HSIC_1 = sum_{i != j} K^_ij L^_ij / (n (n - 3))."""
    n = len(k)

    def u_centre(a: np.ndarray) -> np.ndarray:
        a = a.copy()
        np.fill_diagonal(a, 0)
        r = a.sum(1)
        out = a - r[:, None] / (n - 2) - r[None, :] / (n - 2) + a.sum() / ((n - 1) * (n - 2))
        np.fill_diagonal(out, 0)
        return out

    return float(np.sum(u_centre(k) * u_centre(l)) / (n * (n - 3)))


def direct_cka(x: np.ndarray, y: np.ndarray) -> float:
    k, l = x @ x.T, y @ y.T  # noqa: E741
    return u_centred_hsic(k, l) / np.sqrt(u_centred_hsic(k, k) * u_centred_hsic(l, l))


def test_hsic_equals_the_u_centred_form():
    x, y = related(30)
    assert hsic_unbiased(gram(x), gram(y)) == pytest.approx(u_centred_hsic(gram(x), gram(y)), rel=1e-10)


def test_cka_of_a_representation_with_itself_is_one():
    x, _ = related(50)
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    acc = MinibatchCKA(1, 1)
    for part in batches(50, 16, seed=0):
        acc.update([gram(x[part])], [gram(x[part])])
    assert acc.result()[0, 0] == pytest.approx(1.0, abs=1e-12)


def test_cka_is_invariant_to_orthogonal_transforms_and_isotropic_scaling():
    x, y = related(60)
    q, _ = np.linalg.qr(np.random.default_rng(5).normal(size=(9, 9)))
    base = linear_cka(x, y)
    assert 0.2 < base < 0.9  # a case where invariance is not trivially 0 or 1
    assert linear_cka(x, y @ q) == pytest.approx(base, rel=1e-10)
    assert linear_cka(7.5 * x, 0.01 * y) == pytest.approx(base, rel=1e-10)
    # not invariant to an anisotropic scaling (what makes the invariances above a real check)
    assert abs(linear_cka(x * np.linspace(1, 20, 12), y) - base) > 1e-3


def test_one_batch_minibatch_cka_equals_the_direct_full_batch_formula():
    x, y = related(40)
    acc = MinibatchCKA(2, 1)
    acc.update([gram(x), gram(y)], [gram(y)])
    assert acc.result()[0, 0] == pytest.approx(direct_cka(x, y), rel=1e-10)
    assert acc.result()[1, 0] == pytest.approx(1.0, abs=1e-12)


def biased_hsic(k: np.ndarray, l: np.ndarray) -> float:  # noqa: E741
    """The biased estimator tr(K H L H) (H the centring matrix), up to its 1/(n-1)^2 that cancels in CKA."""
    h = np.eye(len(k)) - 1.0 / len(k)
    return float(np.trace(k @ h @ l @ h))


def test_minibatch_cka_agrees_with_the_full_batch_cka_on_random_data():
    """Unbiased per batch, the averaged HSIC estimates the same population value as the full batch: 2,000
    instances in batches of 256 land within 0.005 of the full-batch CKA, closer than the same average of the
    biased estimator, whose bias grows as the batches shrink."""
    x, y = related(2000, seed=2)
    full = direct_cka(x, y)
    acc = MinibatchCKA(1, 1)
    sums = np.zeros(3)
    for part in batches(2000, 256, seed=1):
        k, l = gram(x[part]), gram(y[part])  # noqa: E741
        acc.update([k], [l])
        sums += [biased_hsic(k, l), biased_hsic(k, k), biased_hsic(l, l)]
    assert acc.batches == 8 and acc.instances == 2000
    assert 0.2 < full < 0.9
    assert acc.result()[0, 0] == pytest.approx(full, abs=0.005)
    biased = sums[0] / np.sqrt(sums[1] * sums[2])
    assert abs(biased - full) > 2 * abs(acc.result()[0, 0] - full)


def test_batches_cover_every_instance_once_and_keep_four_per_batch():
    parts = batches(1030, 256, seed=0)
    assert [len(p) for p in parts] == [206] * 5
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(1030))
    assert [len(p) for p in batches(9, 256, seed=0)] == [9]
    assert all(len(p) >= MIN_BATCH for p in batches(9, 2, seed=0))
    assert batches(3, 256, seed=0) == []


def test_bad_kernels_are_one_line_errors():
    with pytest.raises(TransferVizError, match="at least 4"):
        hsic_unbiased(np.eye(3), np.eye(3))
    acc = MinibatchCKA(1, 1)
    with pytest.raises(TransferVizError, match="same instances"):
        acc.update([np.eye(5)], [np.eye(6)])
    with pytest.raises(TransferVizError, match="no batches"):
        acc.result()


def test_layer_kernels_take_the_output_before_an_in_place_activation_overwrites_it():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3)
    model = nn.Sequential(conv, nn.ReLU(inplace=True), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    x = torch.randn(5, 3, 8, 8)
    with torch.no_grad():
        raw = conv(x).flatten(1).double()  # negative values included: the ReLU would have zeroed them
    k_conv, k_lin = layer_kernels(model, ["0", "3"], x, torch.device("cpu"))
    assert np.allclose(k_conv, (raw @ raw.T).numpy(), rtol=1e-5)
    assert (raw < 0).any()
    with torch.no_grad():
        out = model(x).double()
    assert np.allclose(k_lin, (out @ out.T).numpy(), rtol=1e-5)


def test_cka_stage_on_the_tiny_cache(tiny_cache, tmp_path):
    """Both matrices are (layers x layers), read back by the Cache; the target-data matrix equals a direct
    recomputation from the two models' activations with the same batches."""
    from tests.estimates_helpers import run_stage
    from transferviz.build.estimates import CKA_BATCH

    cache = run_stage(tiny_cache, tmp_path, "cka")
    layers = cache.layers
    assert cache.cka_layers == layers
    df = cache.instances
    for domain in ("target", "source"):
        m = cache.cka(domain)
        assert m is not None and m.shape == (len(layers), len(layers))
        assert np.all(np.isfinite(m)) and np.all(m <= 1 + 1e-9)
    rows = np.flatnonzero((df.domain == "target").to_numpy())
    acc = MinibatchCKA(len(layers), len(layers))
    for part in batches(len(rows), CKA_BATCH, seed=int(cache.config["seed"])):
        acts = {}
        for which in ("source", "target"):
            feats: list[np.ndarray] = []
            model = cache.model(which).eval()
            hooks = [dict(model.named_modules())[name].register_forward_hook(
                lambda m, i, o, f=feats: f.append(o.detach().flatten(1).double().clone().numpy()))
                for name in layers]
            with torch.no_grad():
                model(cache.inputs(rows[part]))
            for h in hooks:
                h.remove()
            acts[which] = feats
        acc.update([gram(a) for a in acts["source"]], [gram(a) for a in acts["target"]])
    assert np.allclose(cache.cka("target"), acc.result(), atol=1e-5)
    with pytest.raises(TransferVizError, match="unknown domain"):
        cache.cka("both")
