"""Correspondence share against its references (issue 12, items 1-2): the same-index share, the permutation
null and the matchings, on crafted pairs of models whose truth is known."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from transferviz.analysis.conductance import layer_conductance
from transferviz.analysis.similarity import (
    correspondence_from_matches,
    correspondence_matrix,
    correspondence_null,
    cosine_similarity_matrix,
    match_sources,
    own_index_recovery,
    pearson_similarity_matrix,
    similarity_matrix,
    weight_correspondence,
)
from transferviz.analysis.weights import important_weights, receiver_activity

N_IN, N_I, N_J = 6, 16, 12  # layer "0" has N_I neurons, layer "2" N_J; one weight matrix ("2") joins them


def mlp(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(N_IN, N_I), nn.ReLU(), nn.Linear(N_I, N_J), nn.ReLU(), nn.Linear(N_J, 3)).eval()


def shuffled(model: nn.Sequential, perm_i: np.ndarray, perm_j: np.ndarray) -> nn.Sequential:
    """The same function with its hidden neurons relabelled: target neuron q is source neuron perm[q]."""
    out = copy.deepcopy(model)
    pi, pj = torch.as_tensor(perm_i), torch.as_tensor(perm_j)
    with torch.no_grad():
        out[0].weight.copy_(model[0].weight[pi])
        out[0].bias.copy_(model[0].bias[pi])
        out[2].weight.copy_(model[2].weight[pj][:, pi])
        out[2].bias.copy_(model[2].bias[pj])
        out[4].weight.copy_(model[4].weight[:, pj])
    return out


def analyse(src: nn.Module, tgt: nn.Module, matching: str, similarity: str = "cosine") -> dict:
    """The build's 5.3.1-5.3.2 pipeline on one class: conductance, important weights (active receivers),
    similarity, matching, correspondence share, same-index share and the permutation null."""
    torch.manual_seed(0)
    x = torch.randn(80, N_IN)
    y = 0
    res = {}
    for which, model in (("source", src), ("target", tgt)):
        cond = layer_conductance(model, ["0", "2"], x, y, n_steps=8).values
        imp = important_weights(model, "0", "2", x, k_instance=6, k_class=20,
                                receiver_active=receiver_activity(cond["2"]))
        res[which] = (cond, imp.pairs)
    (c_s, src_pairs), (c_t, tgt_pairs) = res["source"], res["target"]
    m_i = match_sources(similarity_matrix(c_s["0"], c_t["0"], similarity), matching)
    m_j = match_sources(similarity_matrix(c_s["2"], c_t["2"], similarity), matching)
    share = correspondence_from_matches(tgt_pairs, src_pairs, m_i, m_j, N_I, N_J).mean()
    same = correspondence_from_matches(tgt_pairs, src_pairs, np.arange(N_I), np.arange(N_J), N_I, N_J).mean()
    null = correspondence_null(tgt_pairs, src_pairs, m_i, m_j, N_I, N_J, 200, rng=0)
    return {"share": share, "same": same, "null_mean": null.mean(), "null_p95": np.percentile(null, 95),
            "m_i": m_i, "m_j": m_j, "n_weights": len(tgt_pairs)}


def test_exact_copy_gives_same_index_share_one_far_above_null():
    src = mlp(1)
    r = analyse(src, copy.deepcopy(src), "best")
    assert r["n_weights"] == 20
    assert r["same"] == 1.0  # identical models: every important target weight is an important source weight
    assert r["share"] == pytest.approx(1.0)  # and the most similar source neuron is the neuron itself
    # chance: 20 important weights out of 16 x 12, so a random relabelling hits about 10 %
    assert r["null_mean"] == pytest.approx(20 / (N_I * N_J), abs=0.03)
    assert r["null_p95"] < 0.3 and r["share"] > r["null_p95"] + 0.6


def test_shuffled_neurons_same_index_near_chance_one_to_one_recovers():
    src = mlp(2)
    rng = np.random.default_rng(3)
    perm_i, perm_j = rng.permutation(N_I), rng.permutation(N_J)
    tgt = shuffled(src, perm_i, perm_j)
    torch.manual_seed(9)
    u = torch.randn(5, N_IN)
    torch.testing.assert_close(tgt(u), src(u))  # the same function, other neuron labels
    r = analyse(src, tgt, "one_to_one")
    # the matching recovers the planted relabelling (dead neurons have no defined match: -1)
    alive_i, alive_j = r["m_i"] >= 0, r["m_j"] >= 0
    assert alive_i.sum() >= N_I - 3 and alive_j.sum() >= N_J - 3
    np.testing.assert_array_equal(r["m_i"][alive_i], perm_i[alive_i])
    np.testing.assert_array_equal(r["m_j"][alive_j], perm_j[alive_j])
    assert r["share"] == pytest.approx(1.0)
    # keeping each neuron's own index is now meaningless: the same-index share is at chance level
    assert r["same"] <= r["null_p95"] and r["same"] < 0.3
    assert r["share"] > r["null_p95"] + 0.6


def test_hungarian_recovers_planted_permutation_where_best_collapses():
    rng = np.random.default_rng(0)
    n = 30
    perm = rng.permutation(n)
    s = rng.uniform(0.0, 0.4, size=(n, n))
    s[perm, np.arange(n)] = 1.0  # target neuron q truly is source neuron perm[q]
    s[perm[0], :] = 1.2          # ... but one source neuron is the most similar to every target neuron (a hub)
    np.testing.assert_array_equal(match_sources(s, "one_to_one"), perm)
    best = match_sources(s, "best")
    assert (best == perm[0]).all()  # the paper's argmax maps all targets onto the hub
    assert own_index_recovery(match_sources(s[:, np.argsort(perm)], "one_to_one")) == 1.0
    # fewer source than target neurons: the unassigned target gets -1; an all-zero column too
    assert (match_sources(s[:-1], "one_to_one") == -1).sum() == 1
    z = s.copy()
    z[:, 3] = 0.0
    assert match_sources(z, "one_to_one")[3] == -1 and match_sources(z, "best")[3] == -1
    np.testing.assert_array_equal(match_sources(s[:5], "same_index"), [0, 1, 2, 3, 4] + [-1] * (n - 5))
    with pytest.raises(ValueError, match="matching"):
        match_sources(s, "greedy")


def test_matching_correspondence_equals_paper_rule_for_best():
    rng = np.random.default_rng(1)
    s_i, s_j = rng.normal(size=(7, 7)), rng.normal(size=(5, 5))
    src = np.array([[0, 1], [3, 4], [6, 0], [2, 2]])
    tgt = np.array([[i, j] for i in range(7) for j in range(5)])
    got = correspondence_from_matches(tgt, src, match_sources(s_i), match_sources(s_j), 7, 5)
    np.testing.assert_array_equal(got, weight_correspondence(tgt, src, s_i, s_j))
    cm = correspondence_matrix(src, s_i, s_j, matching="same_index")
    assert cm.shape == (5, 7) and cm.sum() == len(src) and cm[1, 0] and cm[4, 3]


def test_null_is_chance_level_and_reproducible():
    rng = np.random.default_rng(2)
    ns_i, ns_j, k = 40, 30, 120
    src = np.stack([rng.integers(0, ns_i, k), rng.integers(0, ns_j, k)], axis=1)
    density = len(np.unique(src, axis=0)) / (ns_i * ns_j)
    tgt = np.stack([rng.integers(0, ns_i, 500), rng.integers(0, ns_j, 500)], axis=1)
    m_i, m_j = rng.integers(0, ns_i, ns_i), rng.integers(0, ns_j, ns_j)  # a many-to-one matching
    null = correspondence_null(tgt, src, m_i, m_j, ns_i, ns_j, 400, rng=5)
    assert null.shape == (400,)
    # every target weight's ends land on uniformly random source neurons: the expected share is the density
    assert null.mean() == pytest.approx(density, abs=4 * null.std() / np.sqrt(400) + 1e-3)
    np.testing.assert_array_equal(null, correspondence_null(tgt, src, m_i, m_j, ns_i, ns_j, 400, rng=5))
    # against a plain loop over the same relabellings (the bit-packed, deduplicated lookups change nothing)
    gen = np.random.default_rng(5)
    perm_i = gen.permuted(np.tile(np.arange(ns_i, dtype=np.int32), (400, 1)), axis=1)
    perm_j = gen.permuted(np.tile(np.arange(ns_j, dtype=np.int32), (400, 1)), axis=1)
    important = {(int(a), int(b)) for a, b in src}
    loop = [np.mean([(perm_i[p, m_i[a]], perm_j[p, m_j[b]]) in important for a, b in tgt]) for p in range(5)]
    np.testing.assert_allclose(null[:5], loop)
    assert correspondence_null(np.zeros((0, 2)), src, m_i, m_j, ns_i, ns_j, 10).size == 0
    # undefined matches never correspond, under the null either
    assert (correspondence_null(tgt, src, np.full(ns_i, -1), m_j, ns_i, ns_j, 10, rng=0) == 0).all()


def test_pearson_is_centred_cosine():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(25, 3)) + 5.0, rng.normal(size=(25, 4)) - 2.0
    ref = np.corrcoef(a.T, b.T)[:3, 3:]
    np.testing.assert_allclose(pearson_similarity_matrix(a, b), ref, rtol=1e-5, atol=1e-6)
    b[:, 2] = 7.0  # a constant column has no correlation: 0, never NaN
    assert (pearson_similarity_matrix(a, b)[:, 2] == 0).all()
    # raw cosine of offset (never negative) attributions sits near 1 whatever their relation
    assert cosine_similarity_matrix(np.abs(a), np.abs(b)).min() > 0.5
    with pytest.raises(ValueError, match="similarity"):
        similarity_matrix(a, b, "spearman")


def test_cache_correspondence_summary(tiny_cache):
    df = tiny_cache.correspondence_summary()
    assert list(df.columns) == ["class", "from_layer", "to_layer", "share", "same_index_share", "null_mean",
                                "null_p95"]
    assert len(df) and set(df["class"]) <= set(tiny_cache.classes)
    vals = df[["share", "same_index_share", "null_mean", "null_p95"]].to_numpy()
    assert np.nanmin(vals) >= 0 and np.nanmax(vals) <= 1
    # not null_p95 >= null_mean: a matching that collapses onto few source neurons makes the null lumpy
    # (mostly 0, rarely large), and then its 95th percentile may sit below its mean
    assert df.null_mean.notna().any() and (df.null_mean < df.same_index_share).mean() > 0.5
    assert tiny_cache.matched_sources(tiny_cache.layers[0], 0) is not None


def test_network_view_strip_and_summary_line(tiny_cache):
    from dashboard.views.network.markup import correspondence_summary, correspondence_view

    fig, line = correspondence_view(tiny_cache, 0, [1, 3])  # L1..L3: two pairs
    names = [t.name for t in fig.data]
    assert len(names) == 3 and names[1] == "same-index reference" and names[2].startswith("chance")
    assert list(fig.data[0].x) == ["L1→L2", "L2→L3"]
    rows = tiny_cache.correspondence_summary()
    rows = rows[rows["class"] == tiny_cache.classes[0]].iloc[:2]
    n_above = int((rows.share > rows.null_p95).sum())
    n_perm = tiny_cache.config["analysis"]["correspondence_permutations"]
    assert f"above chance (> 95th percentile of {n_perm} source-label shuffles) in {n_above} of 2 drawn pairs" in line
    np.testing.assert_allclose(fig.data[0].y, rows.share)
    # a hand-made pair below its null is named as not distinguishable from chance
    import pandas as pd

    made = pd.DataFrame({"share": [0.5, 0.02], "same_index_share": [0.9, 0.6], "null_mean": [0.01, 0.01],
                         "null_p95": [0.03, 0.03]})
    text = correspondence_summary(made, ["L1→L2", "L2→L3"], "best", "cosine", 200)
    assert "in 1 of 2 drawn pairs; not distinguishable from chance: L2→L3." in text
    assert "L1→L2 0.50 vs 0.90" in text
    # a cache built before the null was stored says so rather than claiming anything
    old = made.assign(null_mean=np.nan, null_p95=np.nan)
    assert "no permutation null" in correspondence_summary(old, ["a", "b"], "best", "cosine", 200)
