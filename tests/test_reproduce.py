"""The main job end to end at the tiny preset (one run shared by the tests of this module)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from glacier_movement import config, io
from glacier_movement.baselines import BASELINES
from glacier_movement.cli import main
from glacier_movement.cli.reproduce import (
    DEMO_ONE_EPOCH,
    MODELS,
    STAGES,
    Job,
    reproduce,
    stage_data,
    stage_train,
)
from glacier_movement.evaluation import TestSettings
from glacier_movement.report import RESULT_COLUMNS
from glacier_movement.sequences import SequenceDataset, split_indices
from glacier_movement.settings import SettingsError
from glacier_movement.training import load_sequences


@pytest.fixture(scope="module")
def first_run(tiny_run):
    """The job run once (shared with tests/test_jobs.py): (job, its wall time in seconds, the
    state file it left)."""
    return tiny_run


@pytest.fixture(scope="module")
def job(first_run):
    return first_run[0]


def test_every_stage_finished_with_its_time_and_commands(first_run):
    """The stages' times add up to the job's wall time (each stage timed on its own, not from the
    job's start), and the report lists the commands each stage ran, in order."""
    job, wall, state = first_run
    assert list(state["stages"]) == list(STAGES)
    assert all(s["status"] == "done" for s in state["stages"].values())
    total = sum(s["seconds"] for s in state["stages"].values())
    assert 0.8 * wall - 1 <= total <= wall + 0.05 * len(STAGES), (total, wall)
    text = (job.results / "README.md").read_text()
    listed = text.split("Commands run, in order:")[1].split("```")[1].strip().splitlines()
    # the report is written while its own stage runs: it lists every earlier stage's commands
    earlier = [c for name, s in state["stages"].items() if name != "report" for c in s["commands"]]
    assert listed == earlier
    assert all(s["commands"] for s in state["stages"].values())
    assert all(c.startswith("glacier-movement ") for c in listed)


def test_heldout_glaciers_are_scored_on_non_overlapping_patches(first_run):
    job, _, state = first_run
    heldout = [c for c in state["stages"]["test"]["commands"] if "-heldout-" in c]
    assert heldout and all(c.endswith(f"--stride {job.settings.patch}") for c in heldout)
    with pytest.raises(SettingsError, match="stride must be ≥ 1"):
        TestSettings(run="any", stride=0)


def test_demo_job_budget_choices(tmp_path):
    """At the demo preset: the +clim variants whose second epoch did not help on validation
    train one epoch (every seed, experiment 1 only), and replicates get no quick-look figures."""
    job = Job(preset="demo", root=tmp_path).resolved(tmp_path)
    epochs = {s.run_name: s.epochs for s in stage_train(job)}
    one = {n for n, e in epochs.items() if e == 1}
    assert one == {n for n in epochs if n.startswith(DEMO_ONE_EPOCH)} and len(one) == 9
    assert all(e is None for n, e in epochs.items() if n not in one)
    looks = {s.glacier: s.quicklook for s in stage_data(job)}
    assert looks["parvati"] and looks["aletsch"]
    assert not any(v for g, v in looks.items() if "-heldout-" in g)


def test_results_csv_has_every_experiment_with_the_baselines(job):
    text = (job.results / "results.csv").read_text()
    assert text.splitlines()[0] == ",".join(RESULT_COLUMNS)
    df = pd.read_csv(job.results / "results.csv", keep_default_na=False, na_values=[""])
    assert set(df["experiment"]) == {1, 2, 3}
    exp1 = df[(df["experiment"] == 1) & (df["test_set"] == "parvati-test")]
    assert {*MODELS, *(f"{m}+clim" for m in MODELS), *BASELINES} <= set(exp1["model"])
    assert "salstm (strict)" in set(exp1["model"])
    assert set(exp1["targets"]) <= {"observed", "all"}
    # the held-out glacier table: the same models and baselines, glacier "heldout"
    held = df[df["test_set"] == "heldout"]
    assert set(held["glacier"]) == {"heldout"} and {*MODELS, *BASELINES} <= set(held["model"])
    # paired columns and verdict words
    models = exp1[exp1["model"].isin(MODELS)]
    assert models["dMSE_climatology"].notna().all()
    assert models["vs_climatology"].str.match(r"better|worse|not distinguishable|too few").all()
    assert (df.loc[df["model"].isin(BASELINES), "MSE_sd"].fillna(0) == 0).all()
    for exp in (2, 3):
        assert set(BASELINES) <= set(df[df["experiment"] == exp]["model"])
    per_seed = pd.read_csv(job.results / "results_per_seed.csv")
    assert {"model", "seed", "MSE", "test_set"} <= set(per_seed.columns)


def test_no_test_period_frame_reaches_training_or_the_climatology(job):
    from glacier_movement.baselines import glacier_sequences

    pre = job.settings
    fr = io.read_frames(config.Paths(job.root, "parvati").frames)
    ds, ref = glacier_sequences(fr, None, pre.patch, pre.stride)
    strict = split_indices(ds, "strict")
    first, last = strict.test_target_frames
    used = np.concatenate([strict.train, strict.val])
    s = ds.position(used)[0]
    assert (s + ds.length - 1 < first).all() or (s > last).all()
    assert not ref.fit[first:].any()  # the climatology uses frames before the test period
    assert not ref.fit[fr.interpolated].any()  # and no interpolated window


def test_report_holds_three_experiments_paper_numbers_figures_and_timings(job):
    text = (job.results / "README.md").read_text()
    for heading in (
        "Experiment 1",
        "Experiment 2",
        "Experiment 3",
        "published numbers",
        "Time per stage",
    ):
        assert heading in text
    assert "0.0467" in text  # the paper's SA-LSTM score, beside ours
    assert "synthetic glaciers, not on Landsat-8 data" in text
    assert "persistence" in text and "strict" in text and "climatology" in text
    assert "held-out glaciers" in text and "independent clusters" in text
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(links) >= 6
    for target in links:
        with Image.open(job.results / target) as img:
            img.load()  # a whole image, not a truncated one
            assert img.format == "PNG", target


def test_rerun_skips_finished_stages(job, capsys):
    before = (job.results / "results.csv").stat().st_mtime_ns
    reproduce(job)
    out = capsys.readouterr().out
    assert out.count("skipped") == len(STAGES)
    assert (job.results / "results.csv").stat().st_mtime_ns == before


def test_from_stage_reruns_only_that_stage_and_later(job, capsys):
    tables = ("results.csv", "results_per_seed.csv")
    before = [(job.results / name).read_bytes() for name in tables]
    reproduce(job, start="report")
    out = capsys.readouterr().out
    assert out.count("skipped") == len(STAGES) - 1
    assert "$ glacier-movement report" in out
    # the report is deterministic: the same tables again (tests/test_jobs.py compares them)
    assert [(job.results / name).read_bytes() for name in tables] == before


def test_mixed_training_excludes_both_test_sets(job):
    """Experiment 3 trains on Parvati + Aletsch with neither glacier's test data inside."""
    pre = job.settings
    (ds, train), (_, val), _ = load_sequences(
        job.root, ["parvati", "aletsch"], pre.patch, pre.stride
    )
    part, local = ds.locate(np.concatenate([train, val]))
    # Parvati: no test sequence of its own split is used for training
    parvati = ds.parts[0]
    test = split_indices(parvati, "paper").test
    assert not np.isin(local[part == 0], test).any()
    # Aletsch: its last 8 frames (the full-scene test) are in no training sequence
    frames = io.read_frames(config.Paths(job.root, "aletsch").frames).frames
    aletsch = ds.parts[1]
    assert isinstance(aletsch, SequenceDataset)
    starts = np.array([aletsch.position(i)[0] for i in local[part == 1]])
    assert starts.max() + aletsch.n_in + aletsch.n_out <= len(frames) - 8


def test_unknown_stage_and_preset_are_one_line_errors(capsys, tmp_path):
    assert main(["reproduce", "--preset", "huge", "--data-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown preset 'huge'" in err and len(err.splitlines()) == 1
    assert (
        main(
            [
                "reproduce",
                "--from",
                "painting",
                "--data-root",
                str(tmp_path),
                "--results",
                str(tmp_path / "r"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert "unknown stage 'painting'" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("script", "output"),
    [
        ("experiment2/AletschMSE.py", "aletsch/results/exp2-tiny_scene_scores.csv"),
        (
            "experiment2/plots/aletschGeneralizationPlot.py",
            "aletsch/figures/exp2-tiny_generalization.png",
        ),
        (
            "experiment2/plots/aletschGeneralizationTest.py",
            "aletsch/results/exp2-after-tiny/scene.json",
        ),
        (
            "experiment3/testing/testsetPerformanceLSTMAttention.py",
            "parvati/results/salstm-parvati+aletsch-tiny_results.csv",
        ),
        ("experiment3/AletschMSE.py", "aletsch/results/exp3-tiny_scene_scores.csv"),
    ],
)
def test_experiment_scripts_run_the_jobs_commands(job, monkeypatch, capsys, script, output):
    """The experiment-2/3 scripts run the same commands as `reproduce` (here on its tiny data)."""
    import runpy
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / script
    (job.root / output).unlink()
    argv = [str(path), "--preset", "tiny", "--data-root", str(job.root), "--wandb", "disabled"]
    monkeypatch.setattr("sys.argv", argv)
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(path), run_name="__main__")
    assert done.value.code == 0, capsys.readouterr().err
    assert (job.root / output).is_file()
    assert "$ glacier-movement " in capsys.readouterr().out


def test_experiment_script_error_is_one_line(job, tmp_path, monkeypatch, capsys):
    import runpy
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "experiment2/AletschMSE.py"
    monkeypatch.setattr("sys.argv", [str(path), "--preset", "tiny", "--data-root", str(tmp_path)])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(path), run_name="__main__")
    assert done.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "run `glacier-movement infer" in err
