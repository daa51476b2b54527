"""Experiment 4 (the motion benchmark) end to end at the tiny preset, and its options."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from glacier_movement import config
from glacier_movement.cli.reproduce import Job, reproduce, state_path
from glacier_movement.errors import GlacierError
from glacier_movement.presets import get_preset
from glacier_movement.study import EXP4_MODELS, MOTION_GLACIER, Study, parse_experiments, run_name


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    base = tmp_path_factory.mktemp("exp4")
    job = Job(
        preset="tiny",
        root=base / "data",
        results=base / "results",
        bootstrap=200,
        wandb="disabled",
        seeds=1,
        heldout=1,
        experiments=(4,),
        jobs=1,
    )
    reproduce(job)
    return job


def test_motion_glaciers_are_parvati_in_the_motion_regime(job):
    for g in (MOTION_GLACIER, config.heldout_name(MOTION_GLACIER, 1)):
        cfg = config.get_glacier(g)
        assert cfg.name == g and cfg.bbox == config.get_glacier("parvati").bbox
        with np.load(config.Paths(job.root, g).truth) as f:
            assert str(f["regime"]) == "motion" and float(f["motion_share"]) > 0.5


def test_results_hold_the_five_models_the_baselines_and_motion_scores(job):
    df = pd.read_csv(job.results / "results.csv")
    exp4 = df[df["experiment"] == 4]
    assert {*EXP4_MODELS, "persistence", "climatology"} <= set(exp4["model"])
    assert (exp4["n_clusters"] >= 2).all()
    # the ceiling and the glaciologist's forecast, with skill columns (docs/evaluation.md)
    assert {"oracle", "advect"} <= set(exp4["model"])
    obs = exp4[exp4["targets"] == "observed"].set_index("model")
    assert obs.loc["oracle", "share_available"] == 1.0
    assert (obs["available_skill"] == obs.loc["oracle", "skill_climatology"]).all()
    assert obs.loc["climatology", "skill_climatology"] == 0.0
    text = (job.results / "README.md").read_text()
    assert "oracle (ceiling, not ranked)" in text and "`advect`'s tracked velocity" in text
    assert "Experiment 4" in text and "Is there motion in the forecasts?" in text
    assert "(zero flow = persistence)" in text and "targets flow" in text
    for m in EXP4_MODELS:
        epe = pd.read_csv(
            config.Paths(job.root, MOTION_GLACIER).results_dir
            / f"{run_name(4, m, 'tiny')}_motion_epe.csv"
        )
        assert set(epe["source"]) == {"predictions", "targets", "zero"}
        zero = epe[epe["source"] == "zero"]
        assert (zero["epe_px"] - zero["true_px"]).abs().max() < 1e-9  # zero flow misses it all
    # its own state file: experiments 1-3 keep theirs
    assert state_path(job).name == "reproduce-exp4.json"
    state = json.loads(state_path(job).read_text())
    assert state["fingerprint"]["experiments"] == [4]
    assert all(s["status"] == "done" for s in state["stages"].values())


def test_experiment_lists():
    def experiments(text: str) -> tuple[int, ...]:
        return Study(experiments=parse_experiments(text)).experiments

    assert experiments("1,2,3") == (1, 2, 3)
    assert experiments("4") == (4,)
    assert experiments("4,1,2,3") == (1, 2, 3, 4)
    for bad in ("6", "x", ""):  # not a list of experiments
        with pytest.raises(ValueError, match="give a comma-separated list"):
            experiments(bad)
    for bad in ("2", "1,3"):  # 2 needs 1's models, 3 needs 1 and 2
        with pytest.raises(GlacierError, match="builds on experiment 1"):
            experiments(bad)


# a whole job in the test body: over 300 s on a loaded 2-core machine
@pytest.mark.timeout(1800)
def test_reproduce_runs_experiment_1_on_a_custom_glacier(tmp_path, monkeypatch):
    from glacier_movement.cli import main

    monkeypatch.chdir(tmp_path)
    root = str(tmp_path / "data")
    assert (
        main(
            ["glacier", "add", "myg", "--bbox", "7.9", "46.4", "8.0", "46.48", "--data-root", root]
        )
        == 0
    )
    argv = [
        "reproduce",
        "--glacier",
        "myg",
        "--preset",
        "tiny",
        "--heldout",
        "1",
        "--jobs",
        "1",
        "--data-root",
        root,
    ]
    argv += ["--no-clim-variants", "--strict-models", "none", "--wandb", "disabled"]
    assert main(argv) == 0
    df = pd.read_csv(tmp_path / "results" / "myg" / "results.csv")
    assert set(df["glacier"]) == {"myg", "heldout"} and set(df["experiment"]) == {1}
    assert {"salstm", "climatology"} <= set(df["model"])
    text = (tmp_path / "results" / "myg" / "README.md").read_text()
    assert "Experiment 1 — myg" in text and "Experiment 2" not in text
    from glacier_movement import io

    held = io.read_frames(tmp_path / "data" / "myg-heldout-1" / "frames.npz")
    # a custom glacier's synthetic stand-in takes the preset's Parvati size
    assert held.glacier == "myg-heldout-1"
    assert held.frames.shape[1:] == get_preset("tiny").scene_size["parvati"]
    # a custom glacier runs experiment 1 only
    assert main([*argv[:-2], "--experiments", "4"]) == 2


def test_preprocess_reports_the_motion_share_of_its_frames(job):
    from glacier_movement import io
    from glacier_movement.preprocessing import _motion_share_line

    paths = config.Paths(job.root, MOTION_GLACIER)
    line = _motion_share_line(paths.truth, io.read_frames(paths.frames))
    share = float(line.split("): ")[1].split(" in these frames")[0])
    assert 0.2 < share <= 1.0  # motion explains a large part of the change in the frames too
