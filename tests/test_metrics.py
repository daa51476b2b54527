"""Clustered, paired and two-way bootstrap intervals (glacier_movement.metrics) on constructed data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from glacier_movement.errors import GlacierError
from glacier_movement.evaluation import metrics
from glacier_movement.evaluation.metrics import (
    Interval,
    bootstrap_distribution,
    cluster_bootstrap,
    cluster_codes,
    n_clusters,
    paired_difference,
    verdict,
)


def iid_interval(values: np.ndarray, n_resamples: int, seed: int = 1) -> tuple[float, float]:
    """Percentile bootstrap of the mean treating every value as independent (scipy)."""
    res = stats.bootstrap(
        (values,),
        np.mean,
        n_resamples=n_resamples,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def test_perfectly_correlated_clusters_give_the_interval_of_the_cluster_means():
    rng = np.random.default_rng(0)
    g, size, r = 12, 50, 20_000
    cluster_means = rng.gamma(2.0, 0.02, g)  # MSE-like, skewed
    clusters = np.repeat(np.arange(g), size)
    values = cluster_means[clusters]  # every sequence of a cluster has the same error

    iv = cluster_bootstrap(values, clusters, n_resamples=r, seed=0)
    low, high = iid_interval(cluster_means, r)
    width = high - low
    assert iv.mean == pytest.approx(cluster_means.mean(), rel=1e-12)
    assert abs(iv.low - low) < 0.03 * width
    assert abs(iv.high - high) < 0.03 * width
    # treating the 600 near-copies as independent understates the width by ~sqrt(50)
    iid_low, iid_high = iid_interval(values, 2000)
    assert iv.width > 4 * (iid_high - iid_low)


def test_iid_data_in_many_small_clusters_is_close_to_the_iid_interval():
    rng = np.random.default_rng(1)
    values = rng.normal(0.05, 0.02, 4000)
    clusters = np.repeat(np.arange(2000), 2)
    iv = cluster_bootstrap(values, clusters, n_resamples=4000, seed=2)
    low, high = iid_interval(values, 4000)
    assert iv.width == pytest.approx(high - low, rel=0.15)
    assert iv.low < values.mean() < iv.high


def test_paired_difference_of_a_constant_shift_is_exactly_the_shift():
    rng = np.random.default_rng(3)
    clusters = np.repeat(np.arange(8), 30)
    a = rng.gamma(2.0, 0.02, (3, clusters.size))
    iv = paired_difference(a, a - 0.01, clusters, n_resamples=500)
    assert iv.mean == pytest.approx(0.01, abs=1e-12)
    assert iv.low == pytest.approx(0.01, abs=1e-12)
    assert iv.high == pytest.approx(0.01, abs=1e-12)
    assert verdict(iv) == "worse"


def test_a_shared_cluster_effect_cancels_in_the_paired_interval():
    rng = np.random.default_rng(4)
    g, size = 20, 40
    clusters = np.repeat(np.arange(g), size)
    shared = rng.normal(0.0, 0.05, g)[clusters]  # hard start times hurt both predictors
    b = 0.10 + shared + rng.normal(0, 0.005, clusters.size)
    a = 0.095 + shared + rng.normal(0, 0.005, clusters.size)
    paired = paired_difference(a, b, clusters, n_resamples=2000)
    unpaired_a = cluster_bootstrap(a, clusters, n_resamples=2000, seed=1)
    unpaired_b = cluster_bootstrap(b, clusters, n_resamples=2000, seed=2)
    assert paired.width < 0.1 * unpaired_a.width
    # the unpaired intervals overlap, yet the paired one says the model is better
    assert unpaired_a.high > unpaired_b.low
    assert verdict(paired) == "better"


def test_two_way_bootstrap_widens_with_a_large_seed_effect():
    rng = np.random.default_rng(5)
    s, g, size = 5, 15, 20
    clusters = np.repeat(np.arange(g), size)
    cluster_effect = rng.normal(0, 0.01, g)[clusters]
    seed_effect = rng.normal(0, 0.05, s)[:, None]
    values = 0.05 + cluster_effect + seed_effect + rng.normal(0, 0.002, (s, clusters.size))

    two_way = cluster_bootstrap(values, clusters, seed=0)
    one_seed = cluster_bootstrap(values[0], clusters, seed=0)
    fixed_seeds = cluster_bootstrap(values, clusters, seed=0, resample_seeds=False)
    assert two_way.mean == pytest.approx(values.mean(), rel=1e-12)
    assert two_way.width > 3 * one_seed.width
    assert two_way.width > 3 * fixed_seeds.width


def test_two_way_bootstrap_without_a_seed_effect_matches_one_seed():
    rng = np.random.default_rng(6)
    clusters = np.repeat(np.arange(25), 10)
    row = 0.05 + rng.normal(0, 0.02, 25)[clusters]
    identical_seeds = np.tile(row, (4, 1))
    two_way = cluster_bootstrap(identical_seeds, clusters, n_resamples=8000, seed=0)
    one_seed = cluster_bootstrap(row, clusters, n_resamples=8000, seed=1)
    assert two_way.low == pytest.approx(one_seed.low, abs=0.04 * one_seed.width)
    assert two_way.high == pytest.approx(one_seed.high, abs=0.04 * one_seed.width)


def test_bootstrap_distribution_matches_a_brute_force_loop():
    """Same draws (clusters first, then seeds) as an explicit loop over resamples."""
    rng = np.random.default_rng(7)
    sizes = np.array([1, 3, 7, 2, 12, 5])
    clusters = np.repeat(np.arange(sizes.size), sizes)
    values = rng.normal(0, 1, (3, clusters.size))
    r = 50
    dist = bootstrap_distribution(values, clusters, n_resamples=r, seed=11)

    draw = np.random.default_rng(11)
    cluster_idx = draw.integers(0, sizes.size, (r, sizes.size))
    seed_idx = draw.integers(0, 3, (r, 3))
    expected = [
        np.concatenate(
            [values[np.ix_(seed_idx[k], clusters == c)].ravel() for c in cluster_idx[k]]
        ).mean()
        for k in range(r)
    ]
    np.testing.assert_allclose(dist, expected, rtol=1e-12)


def test_unequal_cluster_sizes_weigh_by_size():
    rng = np.random.default_rng(8)
    sizes = rng.integers(5, 200, 40)
    clusters = np.repeat(np.arange(sizes.size), sizes)
    level = 0.2 - 0.0009 * sizes  # the big clusters have the small errors
    values = level[clusters] + rng.normal(0, 0.01, clusters.size)
    pooled, mean_of_means = values.mean(), level.mean()
    assert mean_of_means - pooled > 0.02  # the two estimands differ, so the test can fail

    iv = cluster_bootstrap(values, clusters, n_resamples=4000)
    assert iv.mean == pytest.approx(pooled, rel=1e-12)
    boot_mean = bootstrap_distribution(values, clusters, n_resamples=4000).mean()
    assert abs(boot_mean - pooled) < 0.05 * abs(mean_of_means - pooled)
    assert iv.low < pooled < iv.high < mean_of_means


def test_cluster_labels_strings_tuples_and_ints_agree():
    codes = np.array([2, 2, 0, 1, 0, 2])
    strings = np.array(["z|2019", "z|2019", "a|2020", "m|2021", "a|2020", "z|2019"])
    tuples = [("z", 2019), ("z", 2019), ("a", 2020), ("m", 2021), ("a", 2020), ("z", 2019)]
    expected = [0, 0, 1, 2, 1, 0]  # order of first appearance
    for labels in (codes, strings, tuples, list(strings)):
        np.testing.assert_array_equal(cluster_codes(labels), expected)
        assert n_clusters(labels) == 3
    values = np.arange(6.0)
    ivs = {
        cluster_bootstrap(values, labels, n_resamples=300) for labels in (codes, strings, tuples)
    }
    assert len(ivs) == 1


@pytest.mark.parametrize(
    ("low", "high", "word"),
    [
        (-0.02, -0.01, "better"),
        (0.01, 0.03, "worse"),
        (-0.01, 0.01, "not distinguishable"),
        (-0.01, 0.0, "not distinguishable"),
        (0.0, 0.01, "not distinguishable"),
        (0.0, 0.0, "not distinguishable"),
    ],
)
def test_verdict_words(low, high, word):
    assert verdict(Interval((low + high) / 2, low, high)) == word


def test_verdict_rejects_an_invalid_interval():
    with pytest.raises(GlacierError, match="not a valid interval"):
        verdict(Interval(0.0, float("nan"), 0.1))
    with pytest.raises(GlacierError, match="not a valid interval"):
        verdict(Interval(0.0, 0.1, -0.1))


def test_bad_input_raises_one_line_errors():
    values = np.arange(10.0)
    with pytest.raises(GlacierError, match="at least 2 independent clusters"):
        cluster_bootstrap(values, ["parvati|2019-07-01"] * 10)
    with pytest.raises(GlacierError, match="9 cluster labels for 10 sequences"):
        cluster_bootstrap(values, np.arange(9))
    with pytest.raises(GlacierError, match="shape"):
        cluster_bootstrap(np.zeros((2, 3, 4)), np.arange(4))
    with pytest.raises(GlacierError, match="NaN/inf"):
        cluster_bootstrap(np.array([0.1, np.nan, 0.2]), [0, 1, 1])
    with pytest.raises(GlacierError, match="confidence"):
        cluster_bootstrap(values, np.arange(10), confidence=95)
    with pytest.raises(GlacierError, match="resamples"):
        cluster_bootstrap(values, np.arange(10), n_resamples=0)
    with pytest.raises(GlacierError, match="same sequences"):
        paired_difference(np.zeros((3, 10)), np.zeros((2, 10)), np.arange(10))
    with pytest.raises(GlacierError, match="same sequences"):
        paired_difference(values, np.zeros(11), np.arange(10))
    with pytest.raises(GlacierError, match="hashable"):
        cluster_bootstrap(values[:2], [[0], [1]])


# ------------------------------------------------------------------------------- scores
def test_errors_against_hand_computed_values():
    target = np.zeros((2, 1, 2, 2), np.float32)
    pred = np.array([[[[1.0, 0.0], [0.0, 0.0]]], [[[0.5, 0.5], [-0.5, 0.5]]]], np.float32)
    m2, m1 = metrics.sequence_errors(pred, target)
    np.testing.assert_allclose(m2, [0.25, 0.25])  # 1/4 and 4·0.25/4
    np.testing.assert_allclose(m1, [0.25, 0.5])  # 1/4 and 4·0.5/4
    assert metrics.mse(pred, target) == pytest.approx(0.25)
    assert metrics.mae(pred, target) == pytest.approx(0.375)
    # PSNR of MSE 0.25 with range 1: 10·log10(4)
    np.testing.assert_allclose(metrics.psnr_frames(pred, target)[:, 0], 10 * np.log10(4.0))
    with pytest.raises(ValueError, match="differs"):
        metrics.mse(pred, target[:1])


def test_ssim_and_psnr_equal_skimage_per_frame():
    rng = np.random.default_rng(1)
    target = rng.random((3, 2, 20, 17)).astype(np.float32)
    pred = np.clip(target + rng.normal(0, 0.1, target.shape), 0, 1).astype(np.float32)
    got = metrics.ssim_frames(pred, target)
    want = [
        [structural_similarity(t, p, data_range=1.0) for t, p in zip(ts, ps, strict=True)]
        for ts, ps in zip(target, pred, strict=True)
    ]
    np.testing.assert_allclose(got, want, atol=1e-5)
    want_psnr = [
        [peak_signal_noise_ratio(t, p, data_range=1.0) for t, p in zip(ts, ps, strict=True)]
        for ts, ps in zip(target, pred, strict=True)
    ]
    np.testing.assert_allclose(metrics.psnr_frames(pred, target), want_psnr, rtol=1e-5)
    # identical frames: SSIM 1, PSNR capped instead of infinite
    assert metrics.ssim_frames(target, target) == pytest.approx(np.ones((3, 2)))
    assert (metrics.psnr_frames(target, target) == metrics.PSNR_MAX_DB).all()
    # frames smaller than the 7-px window use the largest odd window that fits (5 here)
    small_t, small_p = target[:, :, :6, :6], pred[:, :, :6, :6]
    np.testing.assert_allclose(
        metrics.ssim_frames(small_p, small_t)[0, 0],
        structural_similarity(small_t[0, 0], small_p[0, 0], data_range=1.0, win_size=5),
        atol=1e-5,
    )


def test_bootstrap_contains_estimate_and_narrows_with_more_samples():
    rng = np.random.default_rng(2)
    small = rng.exponential(0.05, 200)
    large = rng.exponential(0.05, 20_000)
    a = metrics.bootstrap_interval(small, 500, seed=3)
    b = metrics.bootstrap_interval(large, 500, seed=3)
    for iv, v in ((a, small), (b, large)):
        assert iv.low < v.mean() < iv.high
        assert iv.low < iv.mean < iv.high
        assert iv.mean == pytest.approx(v.mean(), rel=0.02)
    assert (b.high - b.low) < 0.3 * (a.high - a.low)  # ~ 1/sqrt(100) narrower
    assert metrics.bootstrap_interval(small, 500, seed=3) == a  # reproducible with a seed
    assert metrics.bootstrap_interval(small, 500, seed=4) != a
