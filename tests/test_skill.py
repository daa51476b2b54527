"""Skill against climatology and share of the available skill (evaluation/skill.py)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from glacier_movement.errors import GlacierError
from glacier_movement.evaluation import metrics, score_rows
from glacier_movement.evaluation.skill import (
    SKILL_COLUMNS,
    add_skill_columns,
    skill_parts,
    skill_rows,
    skill_scores,
)


def test_hand_computed_skill_and_share():
    model = np.array([1.0, 2.0, 3.0, 4.0])
    clim = np.array([2.0, 2.0, 4.0, 4.0])
    oracle = np.array([1.0, 1.0, 2.0, 2.0])
    s = skill_scores(model, clim, ["a", "a", "b", "b"], oracle, n_resamples=200)
    assert s.skill.mean == pytest.approx(1 - 10 / 12)  # 1/6
    assert s.available.mean == pytest.approx(1 - 6 / 12)  # 1/2
    assert s.share.mean == pytest.approx((1 / 6) / (1 / 2))
    # two clusters: a draw is (a, a) → 1 − 3/4, (b, b) → 1 − 7/8 or one of each → 1/6
    assert s.skill.low == pytest.approx(1 / 8) and s.skill.high == pytest.approx(1 / 4)


def test_climatology_has_zero_skill_and_the_oracle_a_share_of_one():
    rng = np.random.default_rng(0)
    clim = rng.gamma(2.0, 0.01, 60)
    oracle = clim * rng.uniform(0.5, 0.9, 60)
    clusters = np.repeat(np.arange(12), 5)
    c = skill_scores(clim, clim, clusters, oracle, n_resamples=300)
    assert (c.skill.mean, c.skill.low, c.skill.high) == (0.0, 0.0, 0.0)
    o = skill_scores(oracle, clim, clusters, oracle, n_resamples=300)
    assert o.share.mean == pytest.approx(1.0)
    assert o.share.low == pytest.approx(1.0) and o.share.high == pytest.approx(1.0)
    assert o.skill.mean == pytest.approx(o.available.mean)
    assert 0 < o.available.low < o.available.mean < o.available.high


def test_clustered_interval_is_wider_than_iid_when_clusters_are_correlated():
    rng = np.random.default_rng(1)
    g, per = 20, 15
    clusters = np.repeat(np.arange(g), per)
    clim = rng.gamma(4.0, 0.005, g * per)
    # the forecast's gain over climatology is a property of the start (cluster), shared by its
    # sequences
    gain = np.repeat(rng.normal(0.1, 0.15, g), per) + rng.normal(0, 0.02, g * per)
    model = clim * (1 - gain)
    clustered = skill_scores(model, clim, clusters, n_resamples=2000).skill
    iid = skill_scores(model, clim, np.arange(g * per), n_resamples=2000).skill
    assert clustered.mean == pytest.approx(iid.mean)
    assert clustered.high - clustered.low > 2.5 * (iid.high - iid.low)


def test_paired_interval_is_narrower_than_unpaired_when_errors_share_cluster_effects():
    rng = np.random.default_rng(2)
    g, per = 25, 8
    clusters = np.repeat(np.arange(g), per)
    hard = np.repeat(rng.gamma(1.5, 0.02, g), per)  # a hard start raises every forecast's error
    clim = hard * rng.uniform(0.9, 1.1, g * per)
    model = 0.8 * hard * rng.uniform(0.9, 1.1, g * per)
    paired = skill_scores(model, clim, clusters, n_resamples=2000, seed=3).skill
    # unpaired: the same cluster bootstrap, but model and climatology drawn independently
    dm = metrics.bootstrap_distribution(model, clusters, 2000, seed=4)
    dc = metrics.bootstrap_distribution(clim, clusters, 2000, seed=5)
    low, high = np.quantile(1 - dm / dc, [0.025, 0.975])
    assert paired.low < 0.2 < paired.high
    assert paired.high - paired.low < 0.3 * (high - low)


def test_seeds_are_resampled_too():
    rng = np.random.default_rng(3)
    clusters = np.repeat(np.arange(15), 4)
    clim = rng.gamma(4.0, 0.005, 60)
    # two training seeds of very different quality
    model = np.stack([clim * 0.7, clim * 1.1]) * rng.uniform(0.95, 1.05, (2, 60))
    both = skill_scores(model, clim, clusters, n_resamples=2000).skill
    fixed = skill_scores(model, clim, clusters, n_resamples=2000, resample_seeds=False).skill
    assert both.mean == pytest.approx(1 - model.mean() / clim.mean())
    assert both.high - both.low > 2 * (fixed.high - fixed.low)


def test_nan_sequences_are_left_out_of_every_forecast():
    model = np.array([1.0, np.nan, 3.0, 4.0])
    clim = np.array([2.0, 100.0, 4.0, 4.0])
    s = skill_scores(model, clim, [0, 0, 1, 1], n_resamples=50)
    assert s.skill.mean == pytest.approx(1 - 8 / 10)


def test_share_is_undefined_without_available_skill():
    clim = np.array([1.0, 1.0, 1.0, 1.0])
    s = skill_scores(clim * 0.5, clim, [0, 1, 2, 3], oracle=clim * 1.2, n_resamples=100)
    assert s.available.mean == pytest.approx(-0.2)
    assert math.isnan(s.share.mean) and math.isnan(s.share.low)


def test_errors_are_named():
    with pytest.raises(GlacierError, match="climatology errors"):
        skill_scores([1.0, 2.0], [1.0, 2.0, 3.0], [0, 1])
    with pytest.raises(GlacierError, match="confidence"):
        skill_scores([1.0, 2.0], [1.0, 2.0], [0, 1], confidence=1.0)


def _per_sequence(with_oracle: bool = True) -> pd.DataFrame:
    """Per-sequence rows of 3 predictors (+ oracle) on 40 sequences in 10 clusters."""
    rng = np.random.default_rng(4)
    n = 40
    clim = rng.gamma(4.0, 0.005, (n, 2))  # two leads
    glacier = np.where(np.arange(n) % 5 == 0, np.nan, clim[:, 0] * 1.5)
    errs = {
        "climatology": (clim, glacier),
        "persistence": (clim * 2.0, glacier * 3.0),
        "model": (clim * [0.9, 1.0], glacier * 0.8),
    }
    if with_oracle:
        errs["oracle"] = (clim * [0.6, 0.8], glacier * 0.5)
    rows = []
    for name, (lead, gl) in errs.items():
        rows.append(
            pd.DataFrame(
                {
                    "predictor": name,
                    "key": [f"p|{i}" for i in range(n)],
                    "cluster": [f"p|{i // 4}" for i in range(n)],
                    "seed": 0,
                    "observed": np.arange(n) < 32,
                    "MSE": lead.mean(axis=1),
                    "MAE": np.sqrt(lead.mean(axis=1)),
                    "MSE_l1": lead[:, 0],
                    "MSE_l2": lead[:, 1],
                    "MSE_glacier": gl,
                    "SSIM": 0.5,
                    "PSNR": 20.0,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def test_skill_parts_name_the_leads_and_pixel_sets():
    cols = ["MSE", "MAE", "MSE_l2", "MSE_l10", "MSE_l1", "MSE_glacier", "MSE_off", "MSE_sd"]
    assert skill_parts(cols) == {
        "MSE": "",
        "MSE_l1": "_l1",
        "MSE_l2": "_l2",
        "MSE_l10": "_l10",
        "MSE_glacier": "_glacier",
        "MSE_off": "_off",
    }


def test_skill_rows_per_lead_and_glacier():
    per = _per_sequence()
    rows = skill_rows(per, n_resamples=200).set_index("model")
    assert rows.loc["climatology", "skill_climatology"] == 0.0
    assert rows.loc["persistence", "skill_climatology"] == pytest.approx(-1.0)
    assert rows.loc["model", "skill_climatology_l1"] == pytest.approx(0.1)
    assert rows.loc["model", "skill_climatology_l2"] == pytest.approx(0.0, abs=1e-12)
    assert rows.loc["model", "skill_climatology_glacier"] == pytest.approx(0.2)
    assert rows.loc["oracle", "available_skill_glacier"] == pytest.approx(0.5)
    assert rows.loc["model", "share_available_glacier"] == pytest.approx(0.4)
    assert rows.loc["oracle", "share_available_l2"] == pytest.approx(1.0)
    low, high = rows.loc["model", ["share_available_low", "share_available_high"]]
    assert low < rows.loc["model", "share_available"] < high


def test_results_table_gains_the_skill_columns():
    per = _per_sequence()
    results = pd.concat(
        [
            score_rows(per[per["observed"]], 100).assign(targets="observed"),
            score_rows(per, 100).assign(targets="all"),
        ],
        ignore_index=True,
    )
    out = add_skill_columns(results, per, n_resamples=100)
    assert set(SKILL_COLUMNS) <= set(out.columns) and len(out) == len(results)
    obs = out[out["targets"] == "observed"].set_index("model")
    sel = per[per["observed"] & (per["predictor"] != "oracle")]
    expect = (
        1
        - sel.loc[sel.predictor == "model", "MSE"].mean()
        / sel.loc[sel.predictor == "climatology", "MSE"].mean()
    )
    assert obs.loc["model", "skill_climatology"] == pytest.approx(expect)
    assert obs["available_skill"].nunique() == 1
    assert obs.loc["oracle", "share_available"] == pytest.approx(1.0)
    # no oracle: NaN available skill and share, the skill is still there
    per_no = _per_sequence(with_oracle=False)
    out_no = add_skill_columns(score_rows(per_no, 50), per_no, n_resamples=50)
    assert out_no["available_skill"].isna().all() and out_no["share_available_high"].isna().all()
    assert out_no["skill_climatology"].notna().all()


def test_skill_rows_pool_a_models_seeds():
    per = _per_sequence()
    model = per[per["predictor"] == "model"]
    second = model.assign(seed=1, MSE=model["MSE"] * 3.0)
    rows = skill_rows(pd.concat([per, second]), n_resamples=200).set_index("model")
    clim = per.loc[per["predictor"] == "climatology", "MSE"].mean()
    pooled = (model["MSE"].mean() + second["MSE"].mean()) / 2
    assert rows.loc["model", "skill_climatology"] == pytest.approx(1 - pooled / clim)
    # the second seed is much worse: the interval reaches halfway to each seed's own skill
    low, high = rows.loc["model", ["skill_climatology_low", "skill_climatology_high"]]
    point = 1 - pooled / clim
    only0, only1 = 1 - model["MSE"].mean() / clim, 1 - second["MSE"].mean() / clim
    assert low < (point + only1) / 2 and high > (point + only0) / 2


def test_skill_rows_need_the_climatology():
    per = _per_sequence()
    with pytest.raises(GlacierError, match="climatology"):
        skill_rows(per[per["predictor"] != "climatology"], n_resamples=10)


def test_share_is_undefined_against_almost_no_available_skill():
    """An oracle a hair better than climatology (available skill < MIN_AVAILABLE) gives no share:
    the ratio would be noise."""
    from glacier_movement.evaluation.skill import MIN_AVAILABLE

    clim = np.full(8, 1.0)
    s = skill_scores(np.full(8, 1.2), clim, np.arange(8), clim * (1 - MIN_AVAILABLE / 2))
    assert 0 < s.available.mean < MIN_AVAILABLE
    assert math.isnan(s.share.mean) and math.isnan(s.share.low) and math.isnan(s.share.high)
