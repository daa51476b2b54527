"""Experiment 5 (the predictability sweep) end to end at the tiny preset, and its stage lists."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from glacier_movement import config, synthetic, training
from glacier_movement.cli.reproduce import STAGES, Job, reproduce, state_path
from glacier_movement.errors import GlacierError
from glacier_movement.study import EXP5_MODELS, WORLDS, world_glacier


def _job(base: Path, **kw) -> Job:
    return Job(
        preset="tiny",
        root=base / "data",
        results=base / "results",
        bootstrap=100,
        wandb="disabled",
        heldout=1,
        experiments=(5,),
        jobs=1,
        **kw,
    )


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    job = _job(tmp_path_factory.mktemp("exp5"), seeds=2)
    reproduce(job)
    return job


def test_stage_lists(tmp_path):
    job = _job(tmp_path).resolved()
    assert job.seeds == 2  # experiment 5 trains at least 2 seeds by default
    data = STAGES["data"](job)
    worlds = {world_glacier(w): WORLDS[w] for w in WORLDS}
    assert [s.glacier for s in data] == [g for w in worlds for g in (w, config.heldout_name(w, 1))]
    for s in data:
        regime, rho = worlds[s.glacier.split(config.HELDOUT)[0]]
        assert s.regime == regime and (regime == "motion" or s.persistence == rho)
    assert len({s.seed for s in data}) == len(data)  # every replicate its own seed
    train = STAGES["train"](job)
    assert len(train) == len(WORLDS) * len(EXP5_MODELS) * 2
    assert all(isinstance(s, training.TrainSettings) and len(s.glacier) == 1 for s in train)
    test = STAGES["test"](job)
    assert {s.glacier for s in test} == {config.heldout_name(w, 1) for w in worlds}
    # --train-glaciers 2: a training replicate per world, with a seed no held-out one has
    job2 = _job(tmp_path, train_glaciers=2).resolved()
    data2 = STAGES["data"](job2)
    assert [s.glacier for s in data2[: len(data)]] == [s.glacier for s in data]
    assert [s.seed for s in data2[: len(data)]] == [s.seed for s in data]
    extra = data2[len(data) :]
    assert [s.glacier for s in extra] == [config.train_name(w, 2) for w in worlds]
    assert not {s.seed for s in extra} & {s.seed for s in data}
    for s in extra:
        assert (s.regime, s.persistence if s.regime == "realistic" else None) == (
            worlds[s.glacier.split(config.TRAIN)[0]][0],
            None if s.regime == "motion" else worlds[s.glacier.split(config.TRAIN)[0]][1],
        )
    train2 = STAGES["train"](job2)
    assert all(s.glacier == (s.glacier[0], config.train_name(s.glacier[0], 2)) for s in train2)
    assert {s.glacier for s in STAGES["sequences"](job2)} == {
        g for w in worlds for g in (w, config.train_name(w, 2))
    }


def test_train_glaciers_in_experiments_1_and_4(tmp_path):
    one = Job(preset="tiny", experiments=(1, 2, 3, 4), root=tmp_path).resolved()
    two = Job(preset="tiny", experiments=(1, 2, 3, 4), root=tmp_path, train_glaciers=2).resolved()
    d1, d2 = STAGES["data"](one), STAGES["data"](two)
    assert d2[: len(d1)] == d1  # the glaciers before keep their seeds: the numbers do not move
    assert [s.glacier for s in d2[len(d1) :]] == ["parvati-train-2", "parvati-motion-train-2"]
    assert d2[-1].regime == "motion"
    runs = {s.run_name: s.glacier for s in STAGES["train"](two)}
    assert runs["salstm-parvati-tiny"] == ("parvati", "parvati-train-2")
    assert runs["simvp-parvati-motion-tiny"] == ("parvati-motion", "parvati-motion-train-2")
    assert STAGES["train"](one)[0].glacier == ("parvati",)
    assert config.get_glacier("parvati-train-2").bbox == config.get_glacier("parvati").bbox
    with pytest.raises(GlacierError, match="training replicate"):
        config.validate_name("my-train-2")
    with pytest.raises(GlacierError, match="experiment-5 world"):
        config.validate_name("my-world-x")


def test_worlds_have_their_persistence(job):
    for w, (regime, rho) in WORLDS.items():
        for g in (world_glacier(w), config.heldout_name(world_glacier(w), 1)):
            with np.load(config.Paths(job.root, g).truth) as f:
                assert str(f["regime"]) == regime
                if regime == "realistic":
                    assert float(f["persistence"]) == rho
    assert synthetic  # the generator that wrote them


def test_results_figure_and_words(job):
    df = pd.read_csv(job.results / "results.csv")
    assert set(df["experiment"]) == {5}
    assert set(df["test_set"]) == set(WORLDS)
    for w in WORLDS:
        rows = df[(df["test_set"] == w) & (df["targets"] == "observed")].set_index("model")
        assert {*EXP5_MODELS, "oracle", "advect", "climatology", "persistence"} <= set(rows.index)
        assert (rows["available_skill"] == rows.loc["oracle", "skill_climatology"]).all()
        assert rows.loc[list(EXP5_MODELS), "n_seeds"].eq(2).all()
    assert (job.results / "figures" / "experiment5_skill.png").stat().st_size > 1000
    text = (job.results / "README.md").read_text()
    assert "Experiment 5 — the predictability sweep" in text
    assert "figures/experiment5_skill.png" in text
    assert "takes a significant share of the available skill" in text or (
        "takes no significant share" in text or "Available skill" in text
    )
    for m in EXP5_MODELS:
        assert f"- {m}: " in text.split("### The sweep")[1]
    assert state_path(job).name == "reproduce-exp5.json"
    state = json.loads(state_path(job).read_text())
    assert state["fingerprint"]["experiments"] == [5]
    assert all(s["status"] == "done" for s in state["stages"].values())


def test_the_words_follow_the_share_intervals(tmp_path, monkeypatch):
    """The section names a world for a model only where its share's interval lies above 0."""
    from glacier_movement.report import experiments  # where the section looks its helpers up
    from glacier_movement.study import Study

    share = {  # world → lstm+clim's share interval; unet+clim never takes a share
        "rho0": (np.nan, np.nan, np.nan),
        "rho90": (0.4, 0.1, 0.7),
        "motion": (0.3, -0.1, 0.6),
    }

    def fake_pooled(root, glaciers, runs, n_bootstrap, seed=0):
        w = next(w for w in WORLDS if glaciers[0].startswith(world_glacier(w) + "-"))
        rows = []
        for m, (s, lo, hi) in [
            ("oracle", (0.2, 0.1, 0.3)),
            ("lstm+clim", share[w]),
            ("unet+clim", (-0.5, -0.9, -0.2)),
            ("advect", (0.0, -0.1, 0.1)),
        ]:
            rows.append(
                {
                    "model": m, "targets": "observed", "n_clusters": 36,
                    "skill_climatology": 0.2 * s if m != "oracle" else 0.2,
                    "skill_climatology_low": 0.2 * lo if m != "oracle" else 0.1,
                    "skill_climatology_high": 0.2 * hi if m != "oracle" else 0.3,
                    "available_skill": 0.2,
                    "share_available": s, "share_available_low": lo, "share_available_high": hi,
                }
            )  # fmt: skip
        return pd.DataFrame(rows), pd.DataFrame()

    monkeypatch.setattr(experiments, "pooled_scores", fake_pooled)
    monkeypatch.setattr(experiments, "_score_section", lambda *a, **k: [])
    monkeypatch.setattr(experiments, "_advect_epe", lambda *a, **k: None)
    rs = Study(preset="tiny", experiments=(5,), heldout=6, bootstrap=0).resolved()
    md, rows = experiments._experiment5_md(tmp_path, tmp_path, rs)
    text = "\n".join(md)
    assert "- lstm+clim: rho90." in text  # motion's interval includes 0, rho0's is undefined
    assert "- unet+clim: in no world." in text
    assert "108 clusters in all" in text
    assert {r["test_set"] for r in rows} == set(WORLDS) and {r["experiment"] for r in rows} == {5}
    assert (tmp_path / "figures" / "experiment5_skill.png").is_file()
