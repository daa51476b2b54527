"""The whole report (``report`` stage) on a constructed study: per-sequence rows with known values,
written where ``test``, ``scene-scores`` and training write them, then README.md, results.csv and
results_per_seed.csv checked value by value (glacier_movement.report.run_report)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from glacier_movement import config, report
from glacier_movement.catalog import Catalog
from glacier_movement.io import write_csv
from glacier_movement.presets import get_preset
from glacier_movement.study import MODELS, Study, run_name

N_STARTS, PER_START = 12, 8  # 12 forecast starts (clusters) of 8 sequences per glacier
HELDOUT = config.heldout_name("parvati", 1)
#: model MSE − climatology MSE on every sequence (salstm better, lstm the same, convlstm worse)
SHIFT = {"salstm": -0.01, "lstm": 0.0, "convlstm": 0.03, "unet": -0.002}
SEED_STEP = 0.001  # seed 0's MSE is lower by this, seed 1's higher: their mean is the shift


def persistence_mse(glacier: str) -> np.ndarray:
    """Persistence's MSE per sequence: a shared error per forecast start plus a small one."""
    rng = np.random.default_rng(len(glacier))
    start = np.repeat(np.arange(N_STARTS), PER_START)
    return 0.05 + rng.random(N_STARTS)[start] * 0.05 + rng.random(start.size) * 0.005


def model_mse(glacier: str, shift: float, seed_index: int = 0) -> np.ndarray:
    """A model's MSE per sequence: climatology's (persistence − 0.01) + ``shift``, per seed."""
    return persistence_mse(glacier) - 0.01 + shift + SEED_STEP * (2 * seed_index - 1)


def per_sequence(glacier: str, mse: np.ndarray) -> pd.DataFrame:
    """The rows ``test`` writes (``<run>_per_sequence.csv.gz``): the model and two baselines; the
    sequences of the last forecast start have an interpolated target (``observed`` False)."""
    start = np.repeat(np.arange(N_STARTS), PER_START)
    pers = persistence_mse(glacier)
    frames = []
    for name, m in (("model", mse), ("persistence", pers), ("climatology", pers - 0.01)):
        frames.append(
            pd.DataFrame(
                {
                    "predictor": name,
                    "index": np.arange(start.size),
                    "start": start,
                    "observed": start < N_STARTS - 1,
                    "MSE": m,
                    "MAE": np.sqrt(m),
                    "SSIM": 0.5 + 0.0 * m,
                    "PSNR": 10 * np.log10(1 / m),
                    **{f"MSE_l{k}": m * k / 2.5 for k in range(1, 5)},
                    **{f"MAE_l{k}": np.sqrt(m) for k in range(1, 5)},
                    "MSE_glacier": 2 * m,
                    "MSE_off": m / 2,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def observed_mean(glacier: str, mse: np.ndarray) -> float:
    start = np.repeat(np.arange(N_STARTS), PER_START)
    return float(mse[start < N_STARTS - 1].mean())


SCENE_COLUMNS = ["model", "MSE", "MSE_low", "MSE_high", "MAE", "MAE_low", "MAE_high", "SSIM"]


def scene_rows(exp: int) -> pd.DataFrame:
    """What ``scene-scores`` writes for experiment ``exp``'s Aletsch scenes."""
    rows = [
        (f"exp{exp}-after-tiny", 0.02 * exp, 0.01, 0.03, 0.1, 0.09, 0.11, 0.8),
        ("persistence", 0.05, 0.04, 0.06, 0.2, 0.19, 0.21, 0.6),
    ]
    if exp == 3:  # experiment 3's table also shows experiment 2's prediction: not its own row
        rows.insert(0, ("exp2-after-tiny", 0.04, 0.03, 0.05, 0.1, 0.09, 0.11, 0.8))
    df = pd.DataFrame(rows, columns=SCENE_COLUMNS)
    return df.assign(PSNR=10 * np.log10(1 / df["MSE"]))


@pytest.fixture(scope="module")
def study_root(tmp_path_factory) -> Path:
    """A data root as a tiny 2-seed study leaves it: experiment 1 (four models × 2 seeds on
    Parvati and on one held-out glacier, U-Net not tested there; a strict-split SA-LSTM),
    experiment 2's and 3's Aletsch scene scores, experiment 3's Parvati test, training summaries,
    one figure and the stage times."""
    root = tmp_path_factory.mktemp("report-study") / "data"
    for glacier in ("parvati", HELDOUT):
        results = config.Paths(root, glacier).results_dir
        for m in MODELS:
            if glacier == HELDOUT and m == "unet":
                continue  # a model with a missing test file is left out of that table
            for k in range(2):
                run = run_name(1, m, "tiny", seed_index=k)
                per = per_sequence(glacier, model_mse(glacier, SHIFT[m], k))
                write_csv(per, results / f"{run}_per_sequence.csv.gz")
    parvati = config.Paths(root, "parvati")
    strict = run_name(1, "salstm", "tiny", "strict")
    write_csv(
        per_sequence("parvati", model_mse("parvati", 0.02, 1)),
        parvati.results_dir / f"{strict}_per_sequence.csv.gz",
    )
    exp3 = run_name(3, "salstm", "tiny")
    write_csv(
        per_sequence("parvati", model_mse("parvati", -0.005, 1)),
        parvati.results_dir / f"{exp3}_per_sequence.csv.gz",
    )
    aletsch = config.Paths(root, "aletsch")
    for exp in (2, 3):
        write_csv(scene_rows(exp), aletsch.scene_scores(f"exp{exp}-tiny"))
    for k, val in enumerate((0.03, 0.05)):
        run_dir = Catalog(root).run_dir(run_name(1, "salstm", "tiny", seed_index=k))
        run_dir.mkdir(parents=True)
        (run_dir / "summary.json").write_text(
            json.dumps(
                {
                    "val_loss": val,
                    "persistence_val_loss": 0.09,
                    "config": {"climatology_val_loss": 0.07},
                }
            )
        )
    parvati.frames_figure.parent.mkdir(parents=True, exist_ok=True)
    parvati.frames_figure.write_bytes(b"\x89PNG not really")
    return root


@pytest.fixture(scope="module")
def written(study_root: Path, tmp_path_factory):
    """README.md text, results.csv and results_per_seed.csv of the report on ``study_root``."""
    results = tmp_path_factory.mktemp("report-results") / "results"
    results.mkdir()
    stages = {
        "data": {"seconds": 12.4, "commands": ["glacier-movement synthesize --glacier parvati"]},
        "train": {"seconds": 30.0, "commands": ["glacier-movement train --model salstm"]},
    }
    (results / "reproduce.json").write_text(json.dumps({"stages": stages}))
    study = Study(
        preset="tiny", results=results, bootstrap=200, seeds=2, heldout=1, clim_variants=False
    )
    readme, csv = report.run_report(study, Catalog(study_root))
    assert readme == results / "README.md" and csv == results / "results.csv"
    return (
        readme.read_text(),
        pd.read_csv(csv, keep_default_na=False, na_values=[""]),
        pd.read_csv(results / "results_per_seed.csv"),
        results,
    )


def _section(md: str, title: str) -> str:
    """The text of the section whose heading starts with ``title``, up to the next ## heading."""
    lines = md.splitlines()
    first = next(i for i, x in enumerate(lines) if x.startswith("#") and title in x)
    level = lines[first].split(" ")[0]
    end = next(
        (
            i
            for i in range(first + 1, len(lines))
            if lines[i].startswith("#") and len(lines[i].split(" ")[0]) <= len(level)
        ),
        len(lines),
    )
    return "\n".join(lines[first:end])


def _row(md: str, model: str) -> list[str]:
    line = next(x for x in md.splitlines() if x.startswith(f"| {model} |"))
    return line.strip("| ").split(" | ")


def test_results_csv_holds_the_constructed_means(written):
    _, res, _, _ = written
    exp1 = res[(res["experiment"] == 1) & (res["test_set"] == "parvati-test")]
    obs = exp1[(exp1["targets"] == "observed") & (exp1["split"] != "strict")].set_index("model")
    # the model row is the mean over both seeds (their offsets cancel)
    for m in MODELS:
        want = observed_mean("parvati", persistence_mse("parvati")) - 0.01 + SHIFT[m]
        assert obs.loc[m, "MSE"] == pytest.approx(want, rel=1e-5)
        assert obs.loc[m, "n_seeds"] == 2
        assert obs.loc[m, "split"] == "paper"
        assert obs.loc[m, "dMSE_climatology"] == pytest.approx(SHIFT[m], abs=2e-6)
        assert obs.loc[m, "dMSE_persistence"] == pytest.approx(SHIFT[m] - 0.01, abs=2e-6)
    pers = persistence_mse("parvati")
    assert obs.loc["persistence", "MSE"] == pytest.approx(observed_mean("parvati", pers), 1e-5)
    assert pd.isna(obs.loc["persistence", "split"])  # baselines have no split
    # observed targets: 11 of 12 starts; all targets: every sequence
    assert set(obs["n"]) == {11 * PER_START} and set(obs["n_clusters"]) == {11}
    every = exp1[exp1["targets"] == "all"]
    assert set(every["n"]) == {N_STARTS * PER_START} and set(every["n_clusters"]) == {N_STARTS}
    # the intervals bracket the mean
    assert (obs["MSE_low"] <= obs["MSE"]).all() and (obs["MSE"] <= obs["MSE_high"]).all()


def test_results_csv_verdicts_follow_the_constructed_intervals(written):
    _, res, _, _ = written
    obs = res[(res["experiment"] == 1) & (res["targets"] == "observed")]
    paper = obs[obs["split"] == "paper"]
    v = paper.set_index(["test_set", "model"])
    for test_set in ("parvati-test", "heldout"):
        assert v.loc[(test_set, "salstm"), "vs_climatology"] == "better"
        assert v.loc[(test_set, "salstm"), "vs_persistence"] == "better"
        # climatology's MSE on average, ± 0.001 by seed: resampled seeds straddle 0
        assert v.loc[(test_set, "lstm"), "vs_climatology"] == "not distinguishable"
        assert v.loc[(test_set, "lstm"), "vs_persistence"] == "better"
        assert v.loc[(test_set, "convlstm"), "vs_climatology"] == "worse"
        assert v.loc[(test_set, "convlstm"), "vs_persistence"] == "worse"
    assert ("heldout", "unet") not in v.index  # not tested on the held-out glacier
    assert v.loc[("heldout", "salstm"), "n_clusters"] == 11  # one held-out glacier
    strict = obs[obs["split"] == "strict"].set_index("model")
    assert list(strict.index) == ["salstm (strict)"]
    assert strict.loc["salstm (strict)", "vs_climatology"] == "worse"
    assert strict.loc["salstm (strict)", "n_seeds"] == 1
    exp3 = res[(res["experiment"] == 3) & (res["targets"] == "observed")].set_index("model")
    assert list(exp3.index) == ["salstm mixed (exp. 3)"]
    assert exp3.loc["salstm mixed (exp. 3)", "MSE"] == pytest.approx(
        observed_mean("parvati", model_mse("parvati", -0.005, 1)), rel=1e-5
    )
    assert exp3.loc["salstm mixed (exp. 3)", "vs_climatology"] == "better"


def test_results_csv_has_each_experiments_own_scene_rows(written):
    _, res, _, _ = written
    for exp in (2, 3):
        rows = res[(res["experiment"] == exp) & (res["glacier"] == "aletsch")].set_index("model")
        assert sorted(rows.index) == [f"exp{exp}-after-tiny", "persistence"]
        assert set(rows["test_set"]) == {"aletsch-scene"} and set(rows["targets"]) == {"all"}
        assert rows.loc[f"exp{exp}-after-tiny", "MSE"] == pytest.approx(0.02 * exp)
        assert rows.loc[f"exp{exp}-after-tiny", "MSE_high"] == pytest.approx(0.03)
    assert list(res.columns) == report.RESULT_COLUMNS


def test_per_seed_csv_gives_each_seeds_mean(written):
    _, _, seeds, _ = written
    s = seeds[(seeds["targets"] == "observed") & (seeds["test_set"] == "parvati-test")]
    s = s.set_index(["model", "seed"])
    assert sorted(s.index) == sorted((m, k) for m in MODELS for k in range(2))
    for m in MODELS:
        for k in range(2):
            want = observed_mean("parvati", model_mse("parvati", SHIFT[m], k))
            assert s.loc[(m, k), "MSE"] == pytest.approx(want, rel=1e-5)
            assert s.loc[(m, k), "n"] == 11 * PER_START
    held = seeds[seeds["test_set"] == "heldout"]
    assert set(held["model"]) == {"salstm", "lstm", "convlstm"}


def test_readme_tables_show_the_values_and_verdicts(written):
    md, res, _, _ = written
    exp1 = _section(md, "Experiment 1")
    obs = res[
        (res["experiment"] == 1)
        & (res["test_set"] == "parvati-test")
        & (res["targets"] == "observed")
        & (res["split"] != "strict")
    ].set_index("model")
    row = _row(exp1, "salstm")
    assert row[0] == "salstm"
    assert row[1] == (
        f"{obs.loc['salstm', 'MSE']:.4f} [{obs.loc['salstm', 'MSE_low']:.4f}, "
        f"{obs.loc['salstm', 'MSE_high']:.4f}]"
    )
    # the verdict against climatology, then skill against climatology and share of available
    assert row[-3].endswith(": **better**") and row[-3].startswith("-0.0100 [")
    assert _row(exp1, "convlstm")[-3].endswith(": **worse**")
    assert _row(exp1, "lstm")[-3].endswith(": **not distinguishable**")
    assert _row(exp1, "climatology")[-3] == "(itself)"
    sk = obs.loc["salstm"]
    assert row[-2] == (
        f"{sk['skill_climatology']:+.3f} [{sk['skill_climatology_low']:+.3f}, "
        f"{sk['skill_climatology_high']:+.3f}]"
    )
    assert sk["skill_climatology"] > 0 and sk["skill_climatology_low"] > 0  # better: skill > 0
    assert _row(exp1, "climatology")[-2].startswith("+0.000")
    assert row[-1] == "–"  # no oracle rows in this fixture: no available skill, no share
    assert "88 sequences in 11 independent clusters" in exp1
    # the verdict sentences under the observed-targets table
    assert "- salstm: **better than persistence** (MSE -0.0200" in exp1
    assert "**better than climatology** (MSE -0.0100" in exp1
    assert "- lstm: **better than persistence**" in exp1
    lstm = next(x for x in exp1.splitlines() if x.startswith("- lstm: "))
    # ± 0.001 per seed: the seed resampling alone spans [-0.001, 0.001] (the sign of 0 is noise)
    assert "**not distinguishable from climatology** (MSE " in lstm
    assert lstm.endswith("0.0000, 95 % CI [-0.0010, 0.0010] includes 0).")
    assert "- convlstm: **worse than persistence** (MSE +0.0200" in exp1
    assert "- Better than climatology: salstm, unet; every other model is not." in exp1
    # per lead: the constructed leads are MSE × k / 2.5, on/off glacier 2× and ½×
    lead = _row(_section(md, "Per lead time"), "salstm")
    m = obs.loc["salstm", "MSE"]
    want = [m / 2.5, 2 * m / 2.5, 3 * m / 2.5, 4 * m / 2.5, 2 * m, m / 2]
    np.testing.assert_allclose([float(x) for x in lead[1:]], want, atol=5e-5)
    strict = _row(exp1, "salstm (strict)")
    assert strict[-3].endswith(": **worse**")


def test_readme_headline_is_the_heldout_glacier(written):
    md, res, _, _ = written
    head = _section(md, "Headline")
    assert head.startswith(
        "## Headline — held-out glaciers (1 synthetic glaciers never trained on)"
    )
    assert "unet" not in head  # no test file on the held-out glacier
    held = res[(res["test_set"] == "heldout") & (res["targets"] == "observed")]
    salstm = held.set_index("model").loc["salstm"]
    assert _row(head, "salstm")[1].startswith(f"{salstm['MSE']:.4f} [")
    assert "- Better than climatology: salstm; every other model is not." in head
    # the headline comes before experiment 1
    assert md.index("## Headline") < md.index("## Experiment 1")


def test_readme_training_table_from_the_summaries(written):
    md, *_ = written
    train = _section(md, "### Training")
    # seeds 0.03 and 0.05: mean 0.04, sample sd √2 × 0.01
    assert _row(train, "salstm") == ["salstm", "2", "0.0400 ± 0.0141", "0.0900", "0.0700"]
    assert "| lstm |" not in train  # no summary.json written for it


def test_readme_aletsch_sections_and_settings(written):
    md, *_ = written
    exp2 = _section(md, "Experiment 2")
    assert _row(exp2, "exp2-after-tiny") == [
        "exp2-after-tiny", "0.0400", "[0.0100, 0.0300]", "0.1000", "[0.0900, 0.1100]", "0.800",
        f"{10 * np.log10(1 / 0.04):.2f}",
    ]  # fmt: skip
    exp3 = _section(md, "Experiment 3")
    assert "salstm mixed (exp. 3)" in exp3 and "| exp3-after-tiny | 0.0600 |" in exp3
    times = _section(md, "Time per stage")
    assert "| data | 12 |" in times and "| **total** | **42** |" in times
    assert "glacier-movement train --model salstm" in md.split("Commands run, in order:")[1]


def test_readme_lists_only_the_figures_that_exist(written):
    md, _, _, results = written
    figs = _section(md, "## Figures")
    assert "![parvati: preprocessed NDSI frames](figures/parvati_frames.png)" in figs
    assert (results / "figures" / "parvati_frames.png").read_bytes() == b"\x89PNG not really"
    assert figs.count("![") == 1  # no link to a figure nobody drew
    assert sorted(p.name for p in (results / "figures").iterdir()) == ["parvati_frames.png"]


def test_readme_paper_comparison(written):
    md, *_ = written
    paper = _section(md, "The paper's published numbers")
    for r in report.PAPER_SCORES.itertuples():
        assert f"| {r.model} | {r.MSE:.4f} | {r.MAE:.4f} |" in paper
    pre = get_preset("tiny")
    assert (
        f"synthetic glaciers at the `tiny` preset ({pre.patch}×{pre.patch} patches, stride "
        f"{pre.stride})" in paper
    )
    assert "**These are scores on the built-in synthetic glaciers" in md
    # the paper's section follows the experiments and precedes the figures
    assert md.index("## Experiment 3") < md.index("## The paper's") < md.index("## Figures")


def test_report_without_experiment_1_results_names_the_fix(tmp_path):
    study = Study(preset="tiny", results=tmp_path / "results", bootstrap=10)
    with pytest.raises(Exception, match="run `glacier-movement reproduce`"):
        report.run_report(study, Catalog(tmp_path / "empty"))


def test_skill_table_marks_the_oracle_and_words_follow_the_intervals():
    """The skill table shows skill per lead and on / off the glacier with intervals, the oracle
    last as a ceiling; the sentences say 'significant share' only when the interval excludes 0."""
    import pandas as pd

    def row(name, skill, lo, hi, share, slo, shi):
        r = {"model": name, "skill_climatology": skill, "skill_climatology_low": lo,
             "skill_climatology_high": hi, "available_skill": 0.2, "share_available": share,
             "share_available_low": slo, "share_available_high": shi}  # fmt: skip
        for sfx in ("_l1", "_glacier", "_off"):
            r |= {f"skill_climatology{sfx}": skill, f"skill_climatology{sfx}_low": lo,
                  f"skill_climatology{sfx}_high": hi, f"share_available{sfx}": share,
                  f"share_available{sfx}_low": slo, f"share_available{sfx}_high": shi}  # fmt: skip
        return r

    t = pd.DataFrame(
        [
            row("oracle", 0.2, 0.1, 0.3, 1.0, 1.0, 1.0),
            row("salstm", 0.1, 0.02, 0.15, 0.5, 0.1, 0.8),
            row("lstm", -0.01, -0.05, 0.03, -0.05, -0.3, 0.2),
            row("advect", 0.05, -0.01, 0.1, 0.25, -0.05, 0.5),
        ]
    )
    md = report.skill_table(t)
    lines = md.splitlines()
    assert "skill t+1" in lines[0] and "on glacier" in lines[0] and "share off glacier" in lines[0]
    assert lines[-1].startswith("| oracle (ceiling)")
    assert "+0.10 [+0.02, +0.15]" in md
    words = "\n".join(report.skill_sentences(t, ["salstm", "lstm"]))
    assert "Available skill (oracle, a ceiling, not ranked): +0.200" in words
    assert "salstm: skill above climatology" in words and "takes a significant share" in words
    assert "lstm: skill not distinguishable from 0" in words
    assert "advect: skill not distinguishable from 0" in words
    assert report.skill_table(t.drop(columns=[c for c in t if c != "model"])) == ""
