"""The report's tables from constructed per-sequence rows (glacier_movement.report)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from glacier_movement import config, report
from glacier_movement import evaluation as ev
from glacier_movement.io import write_csv


def per_sequence(model_shift: float, n_starts: int = 12, per_start: int = 8, seed: int = 0):
    """Rows of ``test`` for a model, persistence and climatology on ``n_starts`` forecast starts:
    climatology's MSE is persistence's − 0.01 and the model's is climatology's − ``model_shift``
    on every sequence; starts share a common error (clusters). Lead and glacier columns too."""
    rng = np.random.default_rng(seed)
    start = np.repeat(np.arange(n_starts), per_start)
    pers = 0.05 + rng.random(n_starts)[start] * 0.05 + rng.random(start.size) * 0.005
    frames = []
    for name, mse in (
        ("model", pers - 0.01 - model_shift),
        ("persistence", pers),
        ("climatology", pers - 0.01),
    ):
        frames.append(
            pd.DataFrame(
                {
                    "predictor": name,
                    "index": np.arange(start.size),
                    "start": start,
                    "observed": True,
                    "MSE": mse,
                    "MAE": np.sqrt(mse),
                    "SSIM": 0.5 + 0.0 * mse,
                    "PSNR": 10 * np.log10(1 / mse),
                    **{f"MSE_l{k}": mse * k / 2.5 for k in range(1, 5)},
                    **{f"MAE_l{k}": np.sqrt(mse) for k in range(1, 5)},
                    "MSE_glacier": 2 * mse,
                    "MSE_off": mse / 2,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


@pytest.fixture
def root(tmp_path):
    """A data root where ``test`` wrote the per-sequence rows of two runs on one glacier."""
    results = config.Paths(tmp_path, "parvati").results_dir
    for run, shift in (("good", 0.01), ("same", 0.0)):
        per = per_sequence(shift)
        write_csv(per, results / f"{run}_per_sequence.csv.gz")
    return tmp_path


def test_pooled_scores_show_the_rows_means_and_the_verdicts(root):
    table, seeds = report.pooled_scores(
        root, ["parvati"], {"good model": ["good"], "same model": ["same"]}, 300
    )
    t = table[table["targets"] == "observed"].set_index("model")
    want = per_sequence(0.01)
    good_mse = want.loc[want["predictor"] == "model", "MSE"].mean()
    clim_mse = want.loc[want["predictor"] == "climatology", "MSE"].mean()
    assert t.loc["good model", "MSE"] == pytest.approx(good_mse)
    assert t.loc["climatology", "MSE"] == pytest.approx(clim_mse)
    assert t.loc["good model", "dMSE_climatology"] == pytest.approx(-0.01)
    assert t.loc["good model", "vs_climatology"] == "better"
    assert t.loc["same model", "vs_climatology"] == "not distinguishable"
    assert t.loc["same model", "vs_persistence"] == "better"
    assert set(seeds["model"]) == {"good model", "same model"}

    md = ev.results_markdown(t.reset_index())
    line = next(x for x in md.splitlines() if x.startswith("| good model |"))
    assert line.startswith(f"| good model | {good_mse:.4f} [")
    assert "**better**" in line
    assert "96 sequences in 12 independent clusters" in md

    words = report.verdict_sentences(t.reset_index(), ["good model", "same model"])
    assert words[0].startswith("- good model: **better than persistence**")
    assert "**better than climatology** (MSE -0.0100" in words[0]
    assert words[-1] == "- Better than climatology: good model; every other model is not."


def test_lead_table_shows_each_lead_and_on_off_glacier(root):
    table, _ = report.pooled_scores(root, ["parvati"], {"good model": ["good"]}, 0)
    t = table[table["targets"] == "observed"]
    lines = report.lead_table(t).splitlines()
    assert lines[0] == (
        "| model | MSE t+1 | MSE t+2 | MSE t+3 | MSE t+4 | MSE on glacier | MSE off glacier |"
    )
    assert lines[1] == "|---|---|---|---|---|---|---|"
    want = per_sequence(0.01)
    m = want.loc[want["predictor"] == "model", "MSE"].mean()
    row = next(x for x in lines if x.startswith("| good model |")).strip("| ").split(" | ")
    got = [float(v) for v in row[1:]]
    np.testing.assert_allclose(
        got, [m / 2.5, 2 * m / 2.5, 3 * m / 2.5, 4 * m / 2.5, 2 * m, m / 2], atol=5e-5
    )


def test_scene_table_right_aligns_numbers():
    df = pd.DataFrame(
        [{"model": "exp2-after", "MSE": 0.01234, "MSE_low": 0.01, "MSE_high": 0.015,
          "MAE": 0.05, "MAE_low": np.nan, "MAE_high": np.nan, "SSIM": 0.7, "PSNR": 19.0}]
    )  # fmt: skip
    assert report.tables._scene_md(df).splitlines() == [
        "| prediction | MSE | MSE 95 % CI | MAE | MAE 95 % CI | SSIM | PSNR (dB) |",
        "|---|---:|---|---:|---|---:|---:|",
        "| exp2-after | 0.0123 | [0.0100, 0.0150] | 0.0500 | – | 0.700 | 19.00 |",
    ]


def test_scene_table_lists_models_then_baselines_then_the_oracle():
    # scene-score files come in file-name order; the table must not
    names = ["exp2-before", "advect", "climatology", "oracle", "persistence", "exp2-after"]
    df = pd.DataFrame({"model": names, "MSE": 0.01, "MAE": 0.05, "SSIM": 0.7, "PSNR": 19.0})
    rows = [line.split(" | ")[0].lstrip("| ") for line in report.tables._scene_md(df).splitlines()]
    assert rows[2:] == [
        "exp2-before", "exp2-after", "persistence", "climatology", "advect",
        "oracle (ceiling, not ranked)",
    ]  # fmt: skip
