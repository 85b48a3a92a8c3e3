"""Tests of ich_study.stats against independent references (sklearn, plain O(n^2) DeLong, formulas)."""
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats
from sklearn.metrics import roc_auc_score, roc_curve

from ich_study.core import LabelError
from ich_study.stats import (auc_confidence_interval, bootstrap_auc_ci, bootstrap_roc_band,
                             delong_auc_variance, delong_covariance, delong_paired_test,
                             operating_point_metrics, sensitivity_at_specificity,
                             threshold_at_sensitivity, wilson_interval)


def tied_data(seed, n=80, decimals=1):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    labels[:2] = [0, 1]
    a = np.round(rng.normal(labels * 1.0, 1.0), decimals)
    b = np.round(0.5 * a + rng.normal(labels * 0.5, 1.0), decimals)   # correlated with a
    return labels, a, b


def plain_delong(labels, scores):
    """DeLong 1988 written out: pairwise kernel, placement values, sample covariances."""
    k = len(scores)
    pos = [s[labels == 1] for s in scores]
    neg = [s[labels == 0] for s in scores]
    m, n = len(pos[0]), len(neg[0])
    v10 = np.zeros((k, m)); v01 = np.zeros((k, n)); aucs = np.zeros(k)
    for r in range(k):
        total = 0.0
        for i in range(m):
            for j in range(n):
                x, y = pos[r][i], neg[r][j]
                psi = 1.0 if x > y else (0.5 if x == y else 0.0)
                v10[r, i] += psi / n
                v01[r, j] += psi / m
                total += psi
        aucs[r] = total / (m * n)
    s10 = np.zeros((k, k)); s01 = np.zeros((k, k))
    for r in range(k):
        for s in range(k):
            s10[r, s] = sum((v10[r, i] - aucs[r]) * (v10[s, i] - aucs[s]) for i in range(m)) / (m - 1)
            s01[r, s] = sum((v01[r, j] - aucs[r]) * (v01[s, j] - aucs[s]) for j in range(n)) / (n - 1)
    return aucs, s10 / m + s01 / n


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_equals_sklearn(seed):
    labels, a, _ = tied_data(seed)
    assert delong_auc_variance(labels, a)[0] == pytest.approx(roc_auc_score(labels, a), abs=1e-12)


@pytest.mark.parametrize("seed,decimals", [(0, 1), (3, 0), (4, 2)])
def test_delong_variance_and_covariance_match_plain_definition(seed, decimals):
    labels, a, b = tied_data(seed, decimals=decimals)
    assert len(np.unique(a)) < len(a)              # the data really has ties
    fast_aucs, fast_cov = delong_covariance(labels, [a, b])
    plain_aucs, plain_cov = plain_delong(labels, [a, b])
    np.testing.assert_allclose(fast_aucs, plain_aucs, atol=1e-12)
    np.testing.assert_allclose(fast_cov, plain_cov, atol=1e-12)
    assert abs(fast_cov[0, 1]) > 1e-5              # covariance is really exercised
    auc, variance = delong_auc_variance(labels, a)
    assert variance == pytest.approx(plain_cov[0, 0], abs=1e-12)
    z, p = delong_paired_test(labels, a, b)
    z_plain = (plain_aucs[0] - plain_aucs[1]) / math.sqrt(plain_cov[0, 0] + plain_cov[1, 1] - 2 * plain_cov[0, 1])
    assert z == pytest.approx(z_plain, abs=1e-9)
    assert p == pytest.approx(2 * (1 - scipy_stats.norm.cdf(abs(z_plain))), abs=1e-9)


def test_model_against_itself():
    labels, a, _ = tied_data(5)
    assert delong_paired_test(labels, a, a) == (0.0, 1.0)
    assert delong_paired_test(labels, a, 3 * a + 1) == (0.0, 1.0)   # monotone transform: same AUC


def test_confidence_interval_on_auc_scale():
    labels, a, _ = tied_data(6)
    low, auc, high = auc_confidence_interval(labels, a, level=0.9)
    _, variance = delong_auc_variance(labels, a)
    assert auc - low == pytest.approx(1.6448536 * math.sqrt(variance), abs=1e-6)
    assert high - auc == pytest.approx(auc - low, abs=1e-12)


def test_errors():
    with pytest.raises(LabelError, match="both classes"):
        delong_auc_variance([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="NaN"):
        auc_confidence_interval([0, 1, 1], [0.1, np.nan, 0.3])
    with pytest.raises(ValueError, match="shape"):
        delong_paired_test([0, 1, 1], [0.1, 0.2, 0.3], [0.1, 0.2])
    with pytest.raises(LabelError, match="0/1"):
        bootstrap_auc_ci([0, 2], [0.1, 0.2])


def test_bootstrap_seeded_and_stratified():
    labels, a, _ = tied_data(7)
    first = bootstrap_auc_ci(labels, a, n_boot=300, seed=11)
    assert first == bootstrap_auc_ci(labels, a, n_boot=300, seed=11)
    assert first != bootstrap_auc_ci(labels, a, n_boot=300, seed=12)
    low, auc, high = first
    assert low < auc < high
    # bootstrap and DeLong intervals agree roughly on a moderate sample
    d_low, _, d_high = auc_confidence_interval(labels, a)
    assert abs((high - low) - (d_high - d_low)) < 0.08


def test_roc_curve_matches_sklearn_vertices():
    labels, a, _ = tied_data(8)
    fpr, tpr, _ = roc_curve(labels, a)
    # at specificity 1 - fpr_k the step curve reaches at least tpr_k, and at most the next vertex
    got = sensitivity_at_specificity(labels, a, 1 - fpr)
    expected = np.array([tpr[fpr <= f + 1e-12].max() for f in fpr])
    np.testing.assert_allclose(got, expected)
    band = bootstrap_roc_band(labels, a, n_boot=100, seed=0)
    assert len(band) == 101 and band.sensitivity.iloc[0] == 1.0
    assert ((band.low <= band.sensitivity + 1e-12) & (band.sensitivity <= band.high + 1e-12)).all()


def test_threshold_at_sensitivity_is_largest():
    rng = np.random.default_rng(9)
    labels = rng.integers(0, 2, 200)
    scores = rng.random(200) + labels
    for target in [0.5, 0.9, 0.98, 1.0]:
        t = threshold_at_sensitivity(labels, scores, target)
        positives = scores[labels == 1]
        assert (positives >= t).mean() >= target
        larger = positives[positives > t]
        if larger.size:
            assert (positives >= larger.min()).mean() < target
    # exact: 50 positives, target 0.98 -> 49 must be caught -> 49th highest positive score
    positives = np.arange(50) / 50.0
    assert threshold_at_sensitivity(np.ones(50, int), positives, 0.98) == positives[1]


def test_wilson_known_values_and_metrics():
    # formula written out (as in statsmodels.stats.proportion.proportion_confint method='wilson')
    for successes, n in [(8, 10), (0, 7), (98, 100), (177, 177)]:
        z = 1.959963984540054
        p = successes / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        low, high = wilson_interval(successes, n)
        assert low == pytest.approx(max(0, centre - half), abs=1e-12)
        assert high == pytest.approx(min(1, centre + half), abs=1e-12)
    assert wilson_interval(8, 10) == pytest.approx((0.4901624, 0.9433178), abs=1e-6)
    metrics = operating_point_metrics([1, 1, 1, 1, 0, 0, 0], [0.9, 0.5, 0.5, 0.1, 0.5, 0.2, 0.0], 0.5)
    assert (metrics["tp"], metrics["fn"], metrics["tn"], metrics["fp"]) == (3, 1, 2, 1)
    assert metrics["sensitivity"] == 0.75 and metrics["specificity"] == pytest.approx(2 / 3)
    assert metrics["accuracy"] == pytest.approx(5 / 7)
    assert (metrics["accuracy_low"], metrics["accuracy_high"]) == wilson_interval(5, 7)
    with pytest.raises(ValueError):
        wilson_interval(1, 0)
