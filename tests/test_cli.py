"""The command line: every pipeline stage is a working subcommand with a --help that explains it."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from glacier_movement.cli import build_parser, main

REPO = Path(__file__).resolve().parents[1]
COMMANDS = [
    "glacier", "synthesize", "acquire", "preprocess", "frames-stats", "sequences", "models", "train", "test", "infer",
    "loss-curves", "flow", "scene-scores", "report", "reproduce",
]  # fmt: skip
SCRIPTS = sorted(str(p.relative_to(REPO)) for p in REPO.glob("experiment[123]/**/*.py"))


def _subcommands() -> list[str]:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return list(sub.choices)


def test_every_stage_registers_and_help_lists_all_commands(capsys):
    assert _subcommands() == COMMANDS
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert all(c in out for c in COMMANDS)


@pytest.mark.parametrize("module", ["glacier_movement", "glacier_movement.cli"])
def test_python_dash_m_runs_the_command_line(module, monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["glacier-movement", "--help"])
    with pytest.raises(SystemExit) as done:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert all(c in out for c in COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_help_explains_itself(command, capsys):
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "--data-root" in out and "--debug" in out
    # a description beyond the usage line
    assert len(out.split("options:")[0].split("\n\n", 1)[-1].strip()) > 40


def test_the_three_experiments_have_their_scripts():
    expected = {
        "experiment1/LSTM/LSTMTrain.py", "experiment1/LSTM/lstmAttentionTrain.py",
        "experiment1/convLSTM/convLSTMTrain.py", "experiment1/unet/train.py",
        "experiment1/testing/testsetPerformance.py", "experiment1/plots/inferencePlot.py",
        "experiment1/plots/opticalFlow.py", "experiment1/plots/LossCurves.py",
        "experiment1/preProcessing/dataAPI.py", "experiment1/preProcessing/getData.py",
        "experiment1/preProcessing/createPatches.py",
        "experiment2/preProcessing/dataAPI.py", "experiment2/preProcessing/getData.py",
        "experiment2/preProcessing/createPatches.py", "experiment2/LSTM/lstmAttentionTrain.py",
        "experiment2/AletschMSE.py", "experiment2/plots/aletschGeneralizationTest.py",
        "experiment2/plots/aletschGeneralizationPlot.py",
        "experiment3/LSTM/lstmAttentionTrain.py",
        "experiment3/testing/testsetPerformanceLSTMAttention.py", "experiment3/AletschMSE.py",
    }  # fmt: skip
    assert expected <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_experiment_script_has_a_help(script, monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", [script, "--help"])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(REPO / script), run_name="__main__")
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "--data-root" in out
