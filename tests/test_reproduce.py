"""The main job end to end at the tiny preset (one run shared by the tests of this module)."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from glacier_movement import config, io
from glacier_movement.cli import main
from glacier_movement.reproduce import MODELS, STAGES, Job, reproduce, run_name
from glacier_movement.sequences import SequenceDataset, split_indices
from glacier_movement.training import load_sequences

RESULT_COLUMNS = "experiment,glacier,model,split,MSE,MAE,MSE_low,MSE_high,MAE_low,MAE_high"


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    base = tmp_path_factory.mktemp("reproduce")
    job = Job(
        preset="tiny",
        root=base / "data",
        results=base / "results",
        bootstrap=200,
        wandb="disabled",
        years="2013-2021",
    )
    reproduce(job)
    return job


def test_every_stage_finished_with_its_time(job):
    state = json.loads((job.results / "reproduce.json").read_text())
    assert list(state["stages"]) == list(STAGES)
    for name, s in state["stages"].items():
        assert s["status"] == "done", name
        assert s["seconds"] >= 0 and s["commands"], name


def test_results_csv_has_every_experiment_with_persistence(job):
    text = (job.results / "results.csv").read_text()
    assert text.splitlines()[0] == RESULT_COLUMNS
    df = pd.read_csv(job.results / "results.csv")
    assert set(df["experiment"]) == {1, 2, 3}
    exp1 = df[df["experiment"] == 1]
    assert {run_name(1, m, "tiny") for m in MODELS} <= set(exp1["model"])
    assert run_name(1, "salstm", "tiny", "strict") in set(exp1["model"])
    # persistence beside the models, for both split modes, with bootstrap intervals
    persist = exp1[exp1["model"] == "persistence"]
    assert set(persist["split"]) == {"paper", "strict"}
    assert (persist["MSE_low"] <= persist["MSE"]).all() and (
        persist["MSE"] <= persist["MSE_high"]
    ).all()
    models = exp1[exp1["model"] != "persistence"]
    assert models[["MSE_low", "MSE_high", "MAE_low", "MAE_high"]].notna().all().all()
    assert "persistence" in set(df[df["experiment"] == 2]["model"])
    assert "persistence" in set(df[df["experiment"] == 3]["model"])


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
    assert "persistence" in text and "strict" in text
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(links) >= 6
    for target in links:
        assert (job.results / target).is_file(), target


def test_rerun_skips_finished_stages(job, capsys):
    before = (job.results / "results.csv").stat().st_mtime_ns
    reproduce(job)
    out = capsys.readouterr().out
    assert out.count("skipped") == len(STAGES)
    assert (job.results / "results.csv").stat().st_mtime_ns == before


def test_from_stage_reruns_only_that_stage_and_later(job, capsys):
    reproduce(job, start="report")
    out = capsys.readouterr().out
    assert out.count("skipped") == len(STAGES) - 1
    assert "$ glacier-movement report" in out


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
