"""Weight activation levels and important weights (section 5.3.1 B) against brute-force loops."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from transferviz.analysis import weights as W
from transferviz.analysis.weights import (
    connection_mask,
    default_weight_k,
    important_weights,
    layer_inputs,
    weight_levels,
    weight_regions,
    weight_value_matrix,
)
from transferviz.errors import TransferVizError


def brute_conv_levels(conv: nn.Conv2d, x: torch.Tensor) -> np.ndarray:
    """level[b, n2, n1] = max over the map of the single-channel convolution, by loops."""
    b = x.shape[0]
    n_out, n_in = conv.out_channels, conv.in_channels
    cin_g = n_in // conv.groups
    out_g = n_out // conv.groups
    out = np.full((b, n_out, n_in), -np.inf)
    if conv.padding_mode != "zeros":
        x = F.pad(x, conv._reversed_padding_repeated_twice, mode=conv.padding_mode)
        pad = 0
    else:
        pad = conv.padding
    for n2 in range(n_out):
        g = n2 // out_g
        for n1 in range(g * cin_g, (g + 1) * cin_g):
            k = conv.weight[n2:n2 + 1, n1 - g * cin_g:n1 - g * cin_g + 1]
            y = F.conv2d(x[:, n1:n1 + 1], k, None, conv.stride, pad, conv.dilation)
            out[:, n2, n1] = y.flatten(1).amax(1).detach().numpy()
    return out


def brute_linear_levels(lin: nn.Linear, x: torch.Tensor, in_groups: int | None) -> np.ndarray:
    w = lin.weight.detach().double().numpy()
    xv = x.reshape(x.shape[0], -1).double().numpy()
    b, (n_out, n_feat) = xv.shape[0], w.shape
    n_in = in_groups or n_feat
    per = n_feat // n_in
    out = np.zeros((b, n_out, n_in))
    for i in range(b):
        for n2 in range(n_out):
            for n1 in range(n_in):
                out[i, n2, n1] = sum(w[n2, f] * xv[i, f] for f in range(n1 * per, (n1 + 1) * per))
    return out


@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=3, padding=1),
    dict(kernel_size=3, stride=2, padding=2, dilation=2),
    dict(kernel_size=2, padding=1, padding_mode="reflect"),
    dict(kernel_size=3, padding="same"),
    dict(kernel_size=3, padding=1, groups=2),
])
def test_conv_levels_match_loops(kwargs):
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, **kwargs)
    x = torch.relu(torch.randn(2, 4, 7, 7))
    got = weight_levels(conv, x).numpy()
    np.testing.assert_allclose(got, brute_conv_levels(conv, x), rtol=1e-5, atol=1e-5)
    # Tiny budget: one output row per chunk, same numbers.
    np.testing.assert_allclose(weight_levels(conv, x, memory_budget_mb=1e-4).numpy(), got, rtol=1e-6)
    np.testing.assert_allclose(weight_levels(conv, x, rows=(2, 5)).numpy(), got[:, 2:5], rtol=1e-6)


def test_grouped_conv_marks_unconnected_pairs():
    conv = nn.Conv2d(4, 6, 3, groups=2)
    mask = connection_mask(conv)
    assert mask.shape == (6, 4)
    assert mask[:3, :2].all() and mask[3:, 2:].all() and not mask[:3, 2:].any() and not mask[3:, :2].any()
    assert np.isnan(weight_value_matrix(conv)[0, 3])


def test_linear_levels_match_loops():
    torch.manual_seed(1)
    lin = nn.Linear(5, 3)
    x = torch.randn(2, 5)
    np.testing.assert_allclose(weight_levels(lin, x).numpy(), brute_linear_levels(lin, x, None), rtol=1e-5,
                               atol=1e-6)
    # Hand check of one entry: level[b, n2, n1] = W[n2, n1] * x[b, n1].
    assert weight_levels(lin, x)[1, 2, 4].item() == pytest.approx((lin.weight[2, 4] * x[1, 4]).item())


def test_flattened_conv_features_are_summed_per_channel():
    torch.manual_seed(2)
    lin = nn.Linear(3 * 2 * 2, 4)  # after a conv with 3 channels and a 2x2 map
    x = torch.randn(2, 3, 2, 2)
    got = weight_levels(lin, x, in_groups=3).numpy()
    np.testing.assert_allclose(got, brute_linear_levels(lin, x, 3), rtol=1e-5, atol=1e-6)
    # The channel shares add up to the unit's pre-activation (minus bias).
    np.testing.assert_allclose(got.sum(2), (lin(x.flatten(1)) - lin.bias).detach().numpy(), rtol=1e-5, atol=1e-6)
    vals = weight_value_matrix(lin, 3)
    assert vals[1, 2] == pytest.approx(lin.weight[1, 8:12].mean().item())
    with pytest.raises(TransferVizError):
        weight_levels(lin, x, in_groups=5)


def test_value_matrix_is_kernel_mean():
    conv = nn.Conv2d(2, 3, 3)
    vals = weight_value_matrix(conv)
    assert vals.shape == (3, 2)
    assert vals[2, 1] == pytest.approx(conv.weight[2, 1].mean().item())


class Tiny(nn.Module):
    """AlexNet-like paths: features.0/3 conv, classifier.1/4 hidden linear (5*2*2 -> 6 -> 3), classifier.6 output."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(4, 5, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Linear(20, 6), nn.ReLU(), nn.Dropout(0.5),
                                        nn.Linear(6, 3), nn.ReLU(), nn.Linear(3, 2))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def brute_important(levels: np.ndarray, values: np.ndarray, k_inst: int, k_cls: int):
    m, n_out, n_in = levels.shape
    counts = np.zeros(n_out * n_in, dtype=np.int64)
    for i in range(m):
        flat = levels[i].reshape(-1)
        order = sorted(range(flat.size), key=lambda f: (-flat[f], f))
        for f in order[:k_inst]:
            counts[f] += 1
    sums = levels.sum(0).reshape(-1)
    order = sorted(range(counts.size), key=lambda f: (-counts[f], -sums[f], f))[:k_cls]
    n2, n1 = np.divmod(np.array(order), n_in)
    return n1, n2, counts.reshape(n_out, n_in), values.reshape(-1)[order]


@pytest.mark.parametrize("pair, budget", [(("features.0", "features.3"), 256), (("features.0", "features.3"), 1e-4),
                                          (("features.3", "classifier.1"), 256),
                                          (("classifier.1", "classifier.4"), 1e-4)])
def test_important_weights_match_brute_force(pair, budget):
    torch.manual_seed(3)
    model = Tiny()
    model.train()  # must be switched to eval (dropout off) and back
    inputs = torch.randn(7, 2, 8, 8)
    layer_i, layer_j = pair
    mod_j = dict(model.named_modules())[layer_j]
    x = layer_inputs(model, layer_j, inputs)
    assert model.training
    if isinstance(mod_j, nn.Conv2d):
        levels, in_groups = brute_conv_levels(mod_j, x), None
    else:
        in_groups = 5 if layer_i == "features.3" else None
        levels = brute_linear_levels(mod_j, x, in_groups)
    values = weight_value_matrix(mod_j, in_groups)
    res = important_weights(model, layer_i, layer_j, inputs, k_instance=4, k_class=5, batch_size=3,
                            memory_budget_mb=budget)
    n1, n2, counts, vals = brute_important(levels, values, 4, 5)
    np.testing.assert_array_equal(res.counts, counts)
    np.testing.assert_array_equal(res.n1, n1)
    np.testing.assert_array_equal(res.n2, n2)
    np.testing.assert_allclose(res.value, vals)
    assert res.counts.sum() == 7 * 4 and res.n_instances == 7
    assert res.pairs.shape == (5, 2)
    assert model.training


def test_layer_inputs_is_post_relu_and_pool():
    torch.manual_seed(4)
    model = Tiny().eval()
    inputs = torch.randn(2, 2, 8, 8)
    x = layer_inputs(model, "features.3", inputs)
    expected = F.max_pool2d(torch.relu(model.features[0](inputs)), 2)
    torch.testing.assert_close(x, expected)


def test_default_k_and_empty_class():
    assert default_weight_k(4096, 4096) == 410 * 410
    assert default_weight_k(16, 32) == 2 * 4
    model = Tiny()
    res = important_weights(model, "features.0", "features.3", torch.zeros(0, 2, 8, 8))
    assert res.n1.shape == (0,) and res.pairs.shape == (0, 2) and res.counts.sum() == 0
    assert res.k_instance == res.k_class == default_weight_k(4, 5)
    with pytest.raises(TransferVizError, match="not consecutive"):
        important_weights(model, "features.0", "classifier.1", torch.zeros(1, 2, 8, 8))


def test_row_topk_prefilter_is_exact_with_ties():
    g = torch.Generator().manual_seed(5)
    row = torch.round(torch.randn(300_000, generator=g) * 4) / 4  # heavy ties
    for k in (1, 1000, 20_000):
        pos, vals = W._row_topk(row, k)
        flat = row.numpy()
        order = np.lexsort((np.arange(flat.size), -flat))[:k]
        np.testing.assert_array_equal(pos.numpy(), np.sort(order))
        np.testing.assert_array_equal(vals.numpy(), flat[np.sort(order)])


def test_weight_regions_hand_checked():
    # rows: layer-j neurons 0..2, cols: layer-i neurons 0..3
    vm = np.array([[0.0, 1.0, 2.0, 3.0],
                   [4.0, 5.0, 6.0, 7.0],
                   [8.0, 9.0, 10.0, 11.0]])
    corr = np.zeros_like(vm, dtype=bool)
    corr[2, 0] = True
    regions = weight_regions(vm, important_in=[3, 1], important_out=[2], bins=4, correspondence=corr)
    np.testing.assert_array_equal(regions.block, [[11.0, 9.0]])  # rank order kept
    assert regions.block_corresponds.tolist() == [[False, False]]
    # Region (2): important out neuron 2 from non-important in neurons 0, 2.
    (box,) = regions.by_out
    assert (box.neuron, box.count, box.minimum, box.median, box.maximum) == (2, 2, 8.0, 9.0, 10.0)
    assert box.non_corresponding == pytest.approx(0.5)
    # Region (3): important in neurons 3 then 1, to non-important out neurons 0, 1.
    assert [b.neuron for b in regions.by_in] == [3, 1]
    np.testing.assert_array_equal(regions.by_in[0].values, [3.0, 7.0])
    assert regions.by_in[1].q1 == pytest.approx(2.0)
    # Region (4): non-important both sides: rows 0,1 x cols 0,2 -> 0, 2, 4, 6; bins over [0, 11].
    np.testing.assert_allclose(regions.bin_edges, np.linspace(0, 11, 5))
    np.testing.assert_array_equal(regions.hist_counts, [2, 1, 1, 0])
    assert regions.hist_counts.sum() == 4


@pytest.mark.parametrize("k_inst", [5, 300, 1500])
def test_linear_zero_input_shortcut_is_exact(k_inst):
    # After the ReLU about half the inputs are 0; the shortcut skips their columns while
    # the k-th level is > 0 and must fall back (k=1500 > positive levels) otherwise.
    torch.manual_seed(6)
    model = nn.Sequential(nn.Linear(8, 40), nn.ReLU(), nn.Linear(40, 50), nn.ReLU(), nn.Linear(50, 2))
    inputs = torch.randn(6, 8)
    x = layer_inputs(model, "2", inputs)
    assert (x == 0).any()
    levels = brute_linear_levels(model[2], x, None)
    res = important_weights(model, "0", "2", inputs, k_instance=k_inst, k_class=7)
    n1, n2, counts, _ = brute_important(levels, weight_value_matrix(model[2]), k_inst, 7)
    np.testing.assert_array_equal(res.counts, counts)
    np.testing.assert_array_equal(res.n1, n1)
    np.testing.assert_array_equal(res.n2, n2)


# --------------------------------------------------------------------- active receivers (issue 12, item 3)


def brute_important_active(levels: np.ndarray, values: np.ndarray, active: np.ndarray, k_inst: int, k_cls: int):
    """As brute_important, but an instance's levels into inactive receivers neither count nor add up."""
    m, n_out, n_in = levels.shape
    lv = np.where(active[:, :, None], levels, -np.inf)
    counts = np.zeros(n_out * n_in, dtype=np.int64)
    for i in range(m):
        flat = lv[i].reshape(-1)
        order = [f for f in sorted(range(flat.size), key=lambda f: (-flat[f], f)) if np.isfinite(flat[f])]
        for f in order[:k_inst]:
            counts[f] += 1
    sums = np.where(np.isfinite(lv), lv, 0.0).sum(0).reshape(-1)
    order = sorted(range(counts.size), key=lambda f: (-counts[f], -sums[f], f))[:k_cls]
    n2, n1 = np.divmod(np.array(order), n_in)
    return n1, n2, counts.reshape(n_out, n_in), sums[order]


@pytest.mark.parametrize("pair, budget", [(("features.0", "features.3"), 256), (("features.0", "features.3"), 1e-4),
                                          (("features.3", "classifier.1"), 256),
                                          (("classifier.1", "classifier.4"), 256),
                                          (("classifier.1", "classifier.4"), 1e-4)])
def test_active_receivers_match_brute_force(pair, budget):
    torch.manual_seed(6)
    model = Tiny()
    inputs = torch.randn(7, 2, 8, 8)
    layer_i, layer_j = pair
    mod_j = dict(model.named_modules())[layer_j]
    x = layer_inputs(model, layer_j, inputs)
    if isinstance(mod_j, nn.Conv2d):
        levels, in_groups = brute_conv_levels(mod_j, x), None
    else:
        in_groups = 5 if layer_i == "features.3" else None
        levels = brute_linear_levels(mod_j, x, in_groups)
    n_out = levels.shape[1]
    active = np.random.default_rng(0).random((7, n_out)) < 0.5
    active[0] = False  # an instance with no active receiver counts no weight at all
    res = important_weights(model, layer_i, layer_j, inputs, k_instance=4, k_class=5, batch_size=3,
                            memory_budget_mb=budget, receiver_active=active)
    n1, n2, counts, sums = brute_important_active(levels, weight_value_matrix(mod_j, in_groups), active, 4, 5)
    np.testing.assert_array_equal(res.counts, counts)
    np.testing.assert_array_equal(res.n1, n1)
    np.testing.assert_array_equal(res.n2, n2)
    np.testing.assert_allclose(res.level_sum, sums, rtol=1e-5, atol=1e-6)
    assert (res.counts[~active.any(0)] == 0).all()  # a receiver never active has no counted weight
    # every receiver active: exactly the unfiltered result
    full = important_weights(model, layer_i, layer_j, inputs, k_instance=4, k_class=5, batch_size=3,
                             memory_budget_mb=budget, receiver_active=np.ones((7, n_out), bool))
    plain = important_weights(model, layer_i, layer_j, inputs, k_instance=4, k_class=5, batch_size=3,
                              memory_budget_mb=budget)
    np.testing.assert_array_equal(full.counts, plain.counts)
    np.testing.assert_array_equal(full.pairs, plain.pairs)
    with pytest.raises(ValueError, match="receiver_active"):
        important_weights(model, layer_i, layer_j, inputs, receiver_active=active[:3])


def test_active_receivers_hand_built_linear_pair():
    """x = relu(W0 u) feeds two receivers; receiver 0 gets the largest levels but is dead (its pre-activation
    is negative: a large negative bias), so its conductance is zero and its weights must not be important."""
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(2))
        model[0].bias.zero_()
        model[2].weight.copy_(torch.tensor([[5.0, 4.0],    # receiver 0: levels 5*x0, 4*x1 ...
                                            [1.0, 2.0]]))  # receiver 1: levels 1*x0, 2*x1
        model[2].bias.copy_(torch.tensor([-100.0, 0.0]))   # ... but it never fires
        model[4].weight.fill_(1.0)
        model[4].bias.zero_()
    inputs = torch.tensor([[1.0, 1.0], [2.0, 1.0], [1.0, 3.0]])
    plain = important_weights(model, "0", "2", inputs, k_instance=1, k_class=1)
    assert (plain.n2[0], plain.n1[0]) == (0, 0)  # the paper's rule picks a weight into the dead unit
    from transferviz.analysis.conductance import layer_conductance

    cond = layer_conductance(model, ["2"], inputs, 0, n_steps=8).values["2"]
    active = W.receiver_activity(cond)
    np.testing.assert_array_equal(active, [[False, True]] * 3)  # zero conductance exactly where it is dead
    res = important_weights(model, "0", "2", inputs, k_instance=1, k_class=2, receiver_active=active)
    # levels into receiver 1 per instance: (1, 2), (2, 2), (1, 6): top-1 is n1 = 1, 0 (a tie: lower index), 1
    assert res.pairs.tolist() == [[1, 1], [0, 1]]
    assert res.count.tolist() == [2, 1]
    np.testing.assert_allclose(res.level_sum, [2 + 2 + 6, 1 + 2 + 1])


def test_conv_level_reduction_max_or_sum_over_the_map():
    """analysis.weight_reduction: a conv weight's level is the max (the paper) or the sum of X[n1] * W[n2, n1]
    over the output map. One input channel with a single peak of 10, the other 2 everywhere (3 x 3): the max
    ranks the peak first, the sum the broad channel (10 < 18)."""
    from transferviz.analysis.weights import important_weights, weight_levels

    conv = torch.nn.Conv2d(2, 1, kernel_size=1, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    x = torch.zeros(1, 2, 3, 3)
    x[0, 0, 1, 1] = 10.0
    x[0, 1] = 2.0
    np.testing.assert_allclose(weight_levels(conv, x).numpy(), [[[10.0, 2.0]]])
    np.testing.assert_allclose(weight_levels(conv, x, reduction="sum").numpy(), [[[10.0, 18.0]]])
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 2, 1), conv)
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(2).reshape(2, 2, 1, 1))
        model[0].bias.zero_()
    top = {r: important_weights(model, "0", "1", x, k_instance=1, k_class=1, reduction=r).n1[0]
           for r in ("max", "sum")}
    assert top == {"max": 0, "sum": 1}
    with pytest.raises(ValueError, match="reduction must be one of"):
        important_weights(model, "0", "1", x, reduction="mean")
