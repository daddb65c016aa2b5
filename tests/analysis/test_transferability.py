"""Transferability estimates against their published definitions on small hand-checked inputs (issue 14, item 3),
and the transfer stage on the tiny cache."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from transferviz.analysis.transferability import (
    ESTIMATES,
    _Spectrum,
    h_score,
    h_score_saturated,
    leep,
    logme,
    logme_class,
    nce,
    transfer_estimates,
)
from transferviz.errors import TransferVizError

# --- LEEP and NCE, exactly, by hand -----------------------------------------------------------------------

# three target instances, two target classes, the source model's softmax over two source classes
THETA = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
Y = np.array([0, 1, 0])


def test_leep_matches_a_hand_computation():
    # P(y, z) = 1/3 sum_i theta_i[z] [y_i = y]:  y=0: z0 (0.9 + 0.6) / 3 = 1/2, z1 (0.1 + 0.4) / 3 = 1/6
    #                                             y=1: z0 0.2 / 3 = 1/15,     z1 0.8 / 3 = 4/15
    # P(z0) = 1/2 + 1/15 = 17/30, P(z1) = 1/6 + 4/15 = 13/30
    # P(y | z): P(0|z0) = 15/17, P(1|z0) = 2/17, P(0|z1) = 5/13, P(1|z1) = 8/13
    eep = [0.9 * 15 / 17 + 0.1 * 5 / 13,  # instance 0, label 0
           0.2 * 2 / 17 + 0.8 * 8 / 13,   # instance 1, label 1
           0.6 * 15 / 17 + 0.4 * 5 / 13]  # instance 2, label 0
    expected = sum(math.log(p) for p in eep) / 3
    assert leep(THETA, Y) == pytest.approx(expected, abs=1e-15)


def test_leep_of_a_source_model_that_already_predicts_the_target_is_near_zero_and_above_a_useless_one():
    confident = np.array([[0.999, 0.001], [0.001, 0.999], [0.999, 0.001]])
    useless = np.full((3, 2), 0.5)
    assert -0.01 < leep(confident, Y) <= 0
    # a uniform predictor's EEP is the label prior: LEEP = mean log prior = (2 log 2/3 + log 1/3) / 3
    assert leep(useless, Y) == pytest.approx((2 * math.log(2 / 3) + math.log(1 / 3)) / 3, abs=1e-15)


def test_nce_matches_a_hand_computation():
    z = np.array([0, 0, 1])  # the source model's hard predictions
    # P(y=0, z=0) = P(y=1, z=0) = P(y=0, z=1) = 1/3; P(z=0) = 2/3, P(z=1) = 1/3
    # -H(Y|Z) = 1/3 log(1/2) + 1/3 log(1/2) + 1/3 log(1) = -2/3 log 2
    assert nce(z, Y) == pytest.approx(-2 / 3 * math.log(2), abs=1e-15)
    assert nce(np.array([1, 0, 1]), Y) == 0.0  # Z determines Y (another label order): no uncertainty left


def test_nce_with_more_source_classes_than_target_classes():
    z = np.array([2, 0, 2, 1])
    y = np.array([0, 1, 1, 1])
    # z=2 holds y=0 and y=1 once each (H = log 2, weight 1/2); z=0 and z=1 are pure
    assert nce(z, y) == pytest.approx(-0.5 * math.log(2), abs=1e-15)


def test_transfer_estimates_take_nce_from_the_softmax_argmax():
    est = transfer_estimates(np.array([[0.0], [1.0], [3.0], [2.0]]),
                             np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]]), np.array([0, 1, 0, 1]))
    assert set(est) == set(ESTIMATES)
    assert est["nce"] == pytest.approx(nce(np.array([0, 1, 0, 1]), np.array([0, 1, 0, 1])))
    assert est["leep"] == pytest.approx(leep(np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]]),
                                             np.array([0, 1, 0, 1])))


def test_bad_inputs_are_one_line_errors():
    with pytest.raises(TransferVizError, match="summing to 1"):
        leep(np.array([[0.5, 0.6], [0.2, 0.8]]), np.array([0, 1]))
    with pytest.raises(TransferVizError, match="vector of 2"):
        leep(np.array([[0.5, 0.5], [0.2, 0.8]]), np.array([0, 1, 1]))
    with pytest.raises(TransferVizError, match="NaN"):
        h_score(np.array([[np.nan], [1.0]]), np.array([0, 1]))
    with pytest.raises(TransferVizError, match="two target classes"):
        logme(np.ones((4, 2)), np.zeros(4, dtype=int))


# --- H-score: closed forms ----------------------------------------------------------------------------------

def test_h_score_of_one_feature_is_the_between_class_share_of_its_variance():
    f = np.array([[0.0], [2.0], [4.0], [6.0]])
    y = np.array([0, 0, 1, 1])
    # class means 1 and 5: E[f|Y] = (1, 1, 5, 5), variance 4 x 2^2 / 3 = 16/3; f's variance (9+1+1+9) / 3 = 20/3
    assert h_score(f, y) == pytest.approx(16 / 20, abs=1e-12)


def test_h_score_of_class_indicator_features_is_classes_minus_one():
    y = np.repeat(np.arange(4), [3, 5, 2, 6])
    f = np.eye(4)[y] * [1.0, 2.0, -3.0, 0.5]  # no within-class variance; rank K - 1 after centring
    assert h_score(f, y) == pytest.approx(3.0, abs=1e-9)


@pytest.mark.parametrize("n, d", [(90, 6), (20, 45)])  # both of the library's branches (D <= n, D > n)
def test_h_score_equals_the_definition_with_covariances_and_a_pseudo_inverse(n, d):
    rng = np.random.default_rng(n)
    y = rng.integers(0, 4, n)
    f = rng.normal(size=(n, d)) + y[:, None] * rng.normal(size=d)
    g = np.stack([f[y == c].mean(0) for c in y])  # E[f | Y] per instance
    expected = np.trace(np.linalg.pinv(np.cov(f.T), rcond=1e-15, hermitian=True) @ np.cov(g.T))
    assert h_score(f, y) == pytest.approx(expected, rel=1e-8)


def test_h_score_saturates_at_classes_minus_one_with_too_few_instances_for_the_dimensions():
    rng = np.random.default_rng(2)
    y = np.repeat(np.arange(3), 4)  # 12 instances, 3 classes
    for d in (11, 30):  # n - 1 <= D: pure noise scores the maximum
        assert h_score_saturated(12, d)
        assert h_score(rng.normal(size=(12, d)), y) == pytest.approx(2.0, abs=1e-8)
    assert not h_score_saturated(12, 5)
    assert h_score(rng.normal(size=(12, 5)), y) < 2.0 - 1e-3


def test_h_score_is_invariant_to_an_invertible_linear_map_of_the_features():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 80)
    f = rng.normal(size=(80, 5)) + y[:, None] * [1.0, 0.0, 0.5, 0.0, 0.0]
    a = rng.normal(size=(5, 5)) + 3 * np.eye(5)
    assert h_score(f @ a + 7.0, y) == pytest.approx(h_score(f, y), rel=1e-9)


# --- LogME against an independent evidence maximisation ------------------------------------------------------

def direct_log_evidence(log_alpha: float, log_beta: float, f: np.ndarray, t: np.ndarray) -> float:
    """log p(t | F, alpha, beta) / n from its matrix form (You et al. 2021, eq. 2): no SVD, no profiling."""
    # the search wanders to huge alpha where the features explain nothing: e^60 is that limit to ~1e-20
    alpha, beta = np.exp(np.clip(log_alpha, -60, 60)), np.exp(np.clip(log_beta, -60, 60))
    n, d = f.shape
    a = alpha * np.eye(d) + beta * f.T @ f
    m = beta * np.linalg.solve(a, f.T @ t)
    value = (d / 2 * np.log(alpha) + n / 2 * np.log(beta) - n / 2 * np.log(2 * np.pi)
             - beta / 2 * np.sum((t - f @ m) ** 2) - alpha / 2 * m @ m - 0.5 * np.linalg.slogdet(a)[1])
    return float(value / n)


def direct_max_evidence(f: np.ndarray, t: np.ndarray) -> float:
    """The maximum over (log alpha, log beta) by Nelder-Mead from several starts (a 2-D search; the library
    profiles beta out and searches one dimension, then Brent)."""
    best = -np.inf
    for start in ((0.0, 0.0), (3.0, 0.0), (-3.0, 2.0), (6.0, 1.0)):
        r = minimize(lambda p: -direct_log_evidence(p[0], p[1], f, t), start, method="Nelder-Mead",
                     options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 20_000})
        best = max(best, -float(r.fun))
    return best


@pytest.mark.parametrize("n, d", [(60, 6), (25, 40), (150, 20)])
def test_logme_class_evidence_equals_a_direct_maximisation(n, d):
    rng = np.random.default_rng(n + d)
    y = rng.integers(0, 3, n)
    f = rng.normal(size=(n, d))
    f[:, 0] += 1.5 * (y == 1) - (y == 2)  # one informative direction: an interior maximum for classes 1 and 2
    spec = _Spectrum(f)
    for c in (1, 2):
        t = (y == c).astype(np.float64)
        assert logme_class(spec, t).evidence == pytest.approx(direct_max_evidence(f, t), abs=1e-6)


def test_logme_of_a_class_the_features_do_not_explain_is_the_noise_only_limit():
    rng = np.random.default_rng(3)
    f = rng.normal(size=(80, 4))
    t = (rng.random(80) < 0.5).astype(np.float64)
    # no bias and random features: the evidence rises to its alpha -> inf limit, w = 0, beta = n / |t|^2
    fit = logme_class(_Spectrum(f), t)
    beta = 80 / float(t @ t)
    limit = 0.5 * np.log(beta) - 0.5 * np.log(2 * np.pi) - 0.5
    assert np.isinf(fit.alpha) and fit.beta == pytest.approx(beta)
    assert fit.evidence == pytest.approx(limit, abs=1e-12)
    assert fit.evidence == pytest.approx(direct_max_evidence(f, t), abs=1e-6)


def test_logme_is_the_mean_class_evidence_and_ranks_informative_features_higher():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 4, 200)
    noise = rng.normal(size=(200, 8))
    informative = noise + 2.0 * np.eye(8)[y]
    spec = _Spectrum(informative)
    per_class = [logme_class(spec, (y == c).astype(np.float64)).evidence for c in range(4)]
    assert logme(informative, y) == pytest.approx(np.mean(per_class), abs=1e-12)
    assert logme(informative, y) > logme(noise, y)


# --- the transfer stage ---------------------------------------------------------------------------------------

def test_transfer_stage_on_the_tiny_cache(tiny_cache, tmp_path):
    """The stage's stored estimates are the four functions applied to the source model's softmax and stored
    embedding on the target training rows; the Cache returns them; an older cache returns None."""
    from tests.estimates_helpers import run_stage

    cache = run_stage(tiny_cache, tmp_path, "transfer")
    est = cache.transfer_estimates()
    assert est is not None and set(est) == set(ESTIMATES)
    df = cache.instances
    rows = np.flatnonzero(((df.domain == "target") & (df.split == "train")).to_numpy())
    y = df["label"].to_numpy()[rows]
    with torch.no_grad():
        prob = torch.softmax(cache.model("source")(cache.inputs(rows)).double(), 1).numpy()
    feats = np.asarray(cache.embedding("source"))[rows]
    assert est["leep"] == pytest.approx(leep(prob, y), abs=1e-6)
    assert est["nce"] == pytest.approx(nce(prob.argmax(1), y), abs=1e-12)
    assert est["hscore"] == pytest.approx(h_score(feats, y), rel=1e-9)
    assert est["logme"] == pytest.approx(logme(feats, y), abs=1e-9)
    stored = json.loads((cache.root / "analysis/transfer/estimates.json").read_text())
    assert stored["instances"] == len(rows)
    fresh = run_stage(tiny_cache, tmp_path / "older", None)
    assert fresh.transfer_estimates() is None and fresh.cka() is None and fresh.cka_layers is None
