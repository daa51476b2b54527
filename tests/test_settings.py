"""Typed settings: conversion, config files, resolved-settings files and equivalent command lines,
and the command line generated from them (cli/)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from glacier_movement import cli, settings
from glacier_movement.cli.reproduce import Job
from glacier_movement.errors import GlacierError
from glacier_movement.preprocessing import PreprocessSettings
from glacier_movement.settings import SettingsError, option
from glacier_movement.synthetic import SynthesizeSettings
from glacier_movement.training import TrainSettings


@dataclass(frozen=True)
class Toy:
    """A toy stage.

    Its description.
    """

    name: str = option(help="a name")
    size: tuple[int, int] | None = option(None, nargs=2, metavar=("H", "W"), help="H W")
    rate: float = option(0.5, help="a rate", choices=(0.5, 1.0))
    tags: tuple[str, ...] = option((), repeat=True, help="repeatable")
    figures: bool = option(True, flag="--no-figures", help="no figures")
    path: Path | None = option(None, help="a path")


def test_options_resolve_types_and_flags():
    opts = {o.name: o for o in settings.options(Toy)}
    assert (opts["size"].kind, opts["size"].sequence, opts["size"].optional) == (int, True, True)
    assert opts["name"].required and not opts["rate"].required
    assert opts["figures"].flag == "--no-figures" and opts["tags"].flag == "--tags"
    assert opts["path"].kind is Path


def test_build_converts_and_names_the_bad_setting():
    t = settings.build(Toy, {"name": "x", "size": ["3", 4], "rate": "1.0", "path": "a/b"})
    assert t == Toy(name="x", size=(3, 4), rate=1.0, path=Path("a/b"))
    with pytest.raises(SettingsError, match="rate must be one of 0.5, 1.0, not 2.0") as e:
        settings.build(Toy, {"name": "x", "rate": 2})
    assert e.value.field == "rate"
    with pytest.raises(SettingsError, match="size must be an integer, not 'big'"):
        settings.build(Toy, {"name": "x", "size": ["big", 1]})
    with pytest.raises(SettingsError, match="is not a setting of Toy: valid are name, size"):
        settings.build(Toy, {"name": "x", "colour": "red"})
    with pytest.raises(SettingsError, match="name is required"):
        settings.build(Toy, {})
    with pytest.raises(SettingsError, match="must be true or false"):
        settings.build(Toy, {"name": "x", "figures": "maybe"})


def test_toml_round_trip_and_command_line(tmp_path):
    t = Toy(name="x y", size=(3, 4), tags=("a", "b"), figures=False)
    path = settings.write(t, tmp_path / "toy.settings.toml", "toy")
    assert settings.build(Toy, settings.read_config(path)) == t
    assert settings.command_line("toy", t, "data") == [
        "toy", "--data-root", "data", "--name", "x y", "--size", "3", "4",
        "--tags", "a", "--tags", "b", "--no-figures",
    ]  # fmt: skip
    assert settings.shell(["toy", "--name", "x y"]) == "glacier-movement toy --name 'x y'"


def test_yaml_config_and_bad_files(tmp_path):
    (tmp_path / "a.yaml").write_text("name: x\nsize: [1, 2]\n")
    assert settings.read_config(tmp_path / "a.yaml") == {"name": "x", "size": [1, 2]}
    (tmp_path / "b.toml").write_text("name = \n")
    with pytest.raises(GlacierError, match="b.toml is not valid TOML"):
        settings.read_config(tmp_path / "b.toml")
    with pytest.raises(GlacierError, match="cannot read the config file"):
        settings.read_config(tmp_path / "missing.toml")
    (tmp_path / "c.yaml").write_text("- a\n- b\n")
    with pytest.raises(GlacierError, match="must hold a table of settings"):
        settings.read_config(tmp_path / "c.yaml")


def test_stage_settings_check_themselves():
    with pytest.raises(SettingsError, match="max_cloud 150 is not a percentage") as e:
        PreprocessSettings(glacier="parvati", max_cloud=150)
    assert cli._flag(PreprocessSettings, e.value.field) == "--max-cloud"
    with pytest.raises(GlacierError, match="unknown preset 'huge'"):
        TrainSettings(glacier=("parvati",), model="lstm", preset="huge")
    with pytest.raises(SettingsError, match="experiments 2 builds on experiment 1"):
        Job(experiments=(2,))


def test_every_command_line_option_round_trips():
    """Settings → equivalent command line → parsed settings gives the same settings (the line
    ``reproduce`` prints for a step runs that step)."""
    cases = [
        ("synthesize", SynthesizeSettings(glacier="parvati", size=(64, 80), quicklook=False)),
        ("train", TrainSettings(glacier=("parvati", "aletsch"), model="salstm", lr=0.01,
                                teacher_forcing=False, progress=False, run_name="r")),
        ("reproduce", Job(experiments=(1, 2, 3, 4), strict_models=("salstm", "unet"),
                          clim_variants=False, seeds=2, start="test")),
        ("preprocess", PreprocessSettings(glacier="aletsch", roi=(1, 9, 2, 8), figures=False)),
    ]  # fmt: skip
    for command, s in cases:
        argv = settings.command_line(command, s)
        _, parsed, _ = cli.parse(argv)
        assert parsed == s, argv


def test_config_file_then_command_line(tmp_path, capsys):
    cfg = tmp_path / "train.toml"
    cfg.write_text('glacier = ["parvati"]\nmodel = "lstm"\nlr = 0.5\nepochs = 3\n')
    _, s, _ = cli.parse(["train", "--config", str(cfg), "--lr", "0.1"])
    assert (s.glacier, s.model, s.lr, s.epochs) == (("parvati",), "lstm", 0.1, 3)
    cfg.write_text('glacier = ["parvati"]\nmodel = "lstm"\nlearning_rate = 0.5\n')
    assert cli.main(["train", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "error: learning_rate is not a setting of TrainSettings in" in err
    assert len(err.splitlines()) == 1


def test_the_job_prints_command_lines_that_run_its_steps(tmp_path):
    """Every step of the demo job (all five experiments, with training replicates): the command
    line ``reproduce`` prints parses back to the settings the job runs (the workers of --jobs
    run the command lines)."""
    from glacier_movement.cli import stages
    from glacier_movement.cli.reproduce import STAGES

    job = Job(preset="demo", experiments=(1, 2, 3, 4, 5), root=tmp_path, train_glaciers=2)
    job = job.resolved()
    steps = [step for stage in STAGES.values() for step in stage(job)]
    assert len(steps) > 100
    for step in steps:
        command, parsed, ns = cli.parse(stages.command_line(step, tmp_path))
        want = (stages.command_of(step).name, step, tmp_path)
        assert (command.name, parsed, Path(ns.data_root)) == want
