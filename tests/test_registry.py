"""The model registry (models/__init__.py): every list derives from it, and a model added with one
entry runs through train → test → report (docs/models.md, "Add a model")."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pandas as pd
import pytest
import torch
from torch import nn

from glacier_movement import models, study
from glacier_movement.cli.reproduce import Job, reproduce
from glacier_movement.errors import GlacierError
from glacier_movement.models import (
    EXP4_MODELS,
    MODELS,
    PAPER_MODELS,
    TRAINABLE,
    Forecaster,
    ModelSpec,
    build_model,
    count_parameters,
    register,
    unregister,
)
from glacier_movement.presets import PRESETS, TrainConfig, get_preset
from glacier_movement.training import TrainSettings


# --------------------------------------------------------------------- a throw-away model
@dataclass(frozen=True)
class OneConvSizes:
    """The throw-away model's own sizes (ModelConfig does not grow for it)."""

    kernel: int


class OneConv(Forecaster):
    """4 frames in, 4 out at once: one k×k convolution over the frames as channels."""

    autoregressive = False

    def __init__(self, patch: int, kernel: int) -> None:
        super().__init__(patch)
        self.conv = nn.Conv2d(self.n_in, self.n_out, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, 4, P, P) → (B, 4, P, P) NDSI."""
        self._check(x, y)
        return self.conv(x)


ONE_CONV = ModelSpec(
    "oneconv",
    lambda p, sizes: OneConv(p.patch, sizes.kernel),
    "one convolution (a test's throw-away model)",
    "-",
    sizes={"paper": OneConvSizes(5), "demo": OneConvSizes(3), "tiny": OneConvSizes(3)},
    train=TrainConfig(lr=1e-3, weight_decay=0.0, epochs=3, teacher_forcing=False),
    train_overrides={"tiny": {"lr": 1e-2}},
    exp4=True,
)


@pytest.fixture
def one_conv():
    """The throw-away model registered for one test, and removed after it."""
    register(ONE_CONV)
    yield ONE_CONV
    unregister(ONE_CONV.name)


def test_registering_a_model_adds_it_everywhere_and_unregistering_removes_it(one_conv):
    assert "oneconv" in TRAINABLE and "oneconv" in EXP4_MODELS and "oneconv" in study.EXP4_MODELS
    assert "oneconv" not in PAPER_MODELS and "oneconv" not in study.MODELS
    tiny = get_preset("tiny").train_config("oneconv")
    # paper's config, the tiny preset's budget (1 epoch, batch 16 …), then the model's own lr
    assert (tiny.lr, tiny.epochs, tiny.batch_size, tiny.val_every) == (1e-2, 1, 16, 5)
    assert get_preset("demo").train_config("oneconv").lr == 1e-3
    assert count_parameters(build_model("oneconv", "tiny")) == 4 * 4 * 9 + 4
    assert count_parameters(build_model("oneconv", "paper")) == 4 * 4 * 25 + 4
    assert TrainSettings(glacier=("parvati",), model="oneconv").model == "oneconv"  # live choices
    with pytest.raises(GlacierError, match="registered already"):
        register(ONE_CONV)
    unregister("oneconv")
    try:
        assert "oneconv" not in TRAINABLE and "oneconv" not in EXP4_MODELS
        assert all("oneconv" not in p.train for p in PRESETS.values())
    finally:
        register(ONE_CONV)  # the fixture removes it again


def test_an_entry_must_give_sizes_for_every_preset():
    bad = dataclasses.replace(ONE_CONV, name="half", sizes={"tiny": OneConvSizes(3)})
    with pytest.raises(GlacierError, match="per preset"):
        register(bad)
    assert "half" not in MODELS


def test_the_lists_follow_the_flags():
    assert tuple(PAPER_MODELS) == ("salstm", "lstm", "convlstm", "unet") == study.MODELS
    assert tuple(EXP4_MODELS) == (*PAPER_MODELS, "simvp")
    assert tuple(TRAINABLE) == (*PAPER_MODELS, "simvp")
    assert tuple(models.BASELINES) == ("persistence", "linear")
    assert tuple(models.BENCHMARK_MODELS) == tuple(TRAINABLE)
    assert MODELS["salstm"].caption == "SA-LSTM (LSTM + self-attention)"
    assert MODELS["unet"].caption == "U-Net"  # no label: the title


def test_a_registered_model_runs_through_train_test_and_report(one_conv, tmp_path, monkeypatch):
    """Experiment 4 at the tiny preset with the throw-away model as its only model: it is trained,
    scored beside the baselines and written in results.csv and the README."""
    for name in tuple(EXP4_MODELS):  # a copy: the list is a live view of the registry
        if name != "oneconv":  # experiment 4 of this test: the throw-away model alone
            monkeypatch.setitem(MODELS, name, dataclasses.replace(MODELS[name], exp4=False))
    assert tuple(EXP4_MODELS) == ("oneconv",)
    job = Job(
        preset="tiny",
        root=tmp_path / "data",
        results=tmp_path / "results",
        bootstrap=50,
        wandb="disabled",
        seeds=1,
        heldout=0,
        experiments=(4,),
        jobs=1,  # in this process: a worker process would not know the registered model
    )
    reproduce(job)
    df = pd.read_csv(job.results / "results.csv")
    assert set(df["model"]) >= {"oneconv", "persistence", "climatology"}
    mine = df[df["model"] == "oneconv"]
    assert len(mine) >= 1 and mine["MSE"].between(0, 1).all()
    assert "oneconv" in (job.results / "README.md").read_text()
