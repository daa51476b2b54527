"""Presets: plain dataclasses for sizes and hyperparameters (command-line options override fields).

``paper`` is the original study (docs/models.md: 50×50 patches, LSTM hidden 2,500, GPU);
``demo`` trains all models to a useful level on a 2-core CPU in minutes; ``tiny`` is for tests.
Each model's training settings come from its registry entry (models/__init__.py): its paper
:class:`TrainConfig`, changed by :data:`PRESET_TRAINING` and its own overrides per preset.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .errors import GlacierError
from .settings import SettingsError

#: The bounds of the optimisation settings, by field: (holds, words). One home for every check:
#: :class:`TrainConfig` applies them to itself and ``training.TrainSettings`` to the values it
#: sets, so a bad ``--lr`` is refused with its name before any data is read. ``not (v > 0)``
#: style checks also refuse NaN.
TRAIN_BOUNDS: dict[str, tuple[Any, str]] = {
    "batch_size": (lambda v: v >= 1, "must be ≥ 1"),
    "epochs": (lambda v: v >= 1, "must be ≥ 1"),
    "lr": (lambda v: v > 0, "must be > 0"),
    "weight_decay": (lambda v: v >= 0, "must be ≥ 0"),
    "max_steps": (lambda v: v >= 1, "must be ≥ 1"),
    "val_every": (lambda v: v >= 1, "must be ≥ 1"),
    "ckpt_every": (lambda v: v >= 1, "must be ≥ 1"),
    "clip_value": (lambda v: v > 0, "must be > 0"),
}


def check_train_bounds(values: Mapping[str, Any]) -> None:
    """A :class:`SettingsError` naming the first of ``values`` (TrainConfig field names; None
    values are unset and pass) outside :data:`TRAIN_BOUNDS`."""
    for name, (holds, words) in TRAIN_BOUNDS.items():
        v = values.get(name)
        if v is not None and not holds(v):
            raise SettingsError(name, f"{words} (got {v})")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings of one model (docs/models.md)."""

    lr: float = 1e-4
    weight_decay: float = 1e-3
    batch_size: int = 100
    epochs: int = 40
    optimizer: str = "adam"  # "adam" = AdamW (as the original), or "rmsprop"
    clip_value: float = 3.0
    val_every: int = 100  # steps between validation batches
    ckpt_every: int = 500  # steps between checkpoints
    max_steps: int | None = None  # stop early (for demos/tests); None = all epochs
    seed: int = 0
    #: feed the true frames to the decoder steps in training (the original); off = the model's own
    teacher_forcing: bool = True

    def __post_init__(self) -> None:
        check_train_bounds({f.name: getattr(self, f.name) for f in fields(self)})


@dataclass(frozen=True)
class ModelConfig:
    """Architecture sizes (docs/models.md).

    The LSTM models' hidden size is patch² (2,500 in the paper): their LSTM outputs are frames.
    ``heads`` must divide patch². ``convlstm`` is a named configuration (``big``, ``small``) or six
    hidden channel counts (encoder 3 + decoder 3). The U-Net has channels
    ``unet_base·2^k, k = 0…unet_depth``; its bottleneck ``patch / 2^unet_depth`` must be ≥ 2 px.
    SimVP has ``simvp_hid_s`` channels in its ``simvp_n_s`` encoder and decoder blocks and
    ``simvp_hid_t`` in its translator of ``simvp_n_t`` Inception blocks down and as many up
    (default: the SimVP paper's Moving-MNIST size).
    """

    layers: int = 3
    heads: int = 5
    dropout: float = 0.1
    convlstm: str | tuple[int, ...] = "big"
    unet_base: int = 64
    unet_depth: int = 4
    #: the ``+clim`` variant: the model gets the climatology of its windows and predicts the
    #: departure from it (beyond the paper; models/climatology.py)
    climatology_input: bool = False
    simvp_hid_s: int = 64
    simvp_hid_t: int = 256
    simvp_n_s: int = 4
    simvp_n_t: int = 8


@dataclass(frozen=True)
class Preset:
    name: str
    patch: int = 50
    stride: int = 10
    #: ROI size of the synthetic glaciers (rows, cols) per glacier; None = the paper's ROI.
    scene_size: dict[str, tuple[int, int]] | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
    #: model name → its TrainConfig at this preset, filled by the model registry
    train: dict[str, TrainConfig] = field(default_factory=dict)

    def train_config(self, model: str) -> TrainConfig:
        return self.train.get(model, TrainConfig())


#: What each preset changes in a model's paper :class:`TrainConfig`, before the model's own
#: ``train_overrides`` (its registry entry, models/__init__.py): demo trains on a 2-core CPU in
#: minutes, tiny is for tests.
PRESET_TRAINING: dict[str, dict[str, Any]] = {
    "paper": {},
    "demo": {"batch_size": 32, "val_every": 25, "ckpt_every": 100},
    "tiny": {"epochs": 1, "batch_size": 16, "val_every": 5, "ckpt_every": 10},
}


def train_configs(
    paper: TrainConfig, overrides: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, TrainConfig]:
    """A model's :class:`TrainConfig` at every preset: its ``paper`` one with the preset's changes
    (:data:`PRESET_TRAINING`), then the model's own ``overrides[preset]``."""
    overrides = overrides or {}
    return {
        name: replace(paper, **{**changes, **overrides.get(name, {})})
        for name, changes in PRESET_TRAINING.items()
    }


PRESETS: dict[str, Preset] = {
    # every trainable model's TrainConfig joins ``train`` when it is registered (models/__init__.py)
    "paper": Preset(name="paper"),
    # demo: 2-core CPU in minutes (20×20 patches, small widths, batch 32)
    "demo": Preset(
        name="demo",
        patch=20,
        stride=10,
        scene_size={"parvati": (160, 160), "aletsch": (120, 120)},
        model=ModelConfig(
            convlstm=(16, 8, 8, 8, 8, 8),
            unet_base=16,
            unet_depth=3,
            simvp_hid_s=16,
            simvp_hid_t=64,
            simvp_n_s=2,
            simvp_n_t=2,
        ),
    ),
    "tiny": Preset(
        name="tiny",
        patch=10,
        stride=10,
        scene_size={"parvati": (60, 60), "aletsch": (50, 50)},
        model=ModelConfig(
            layers=1,
            heads=2,
            convlstm=(4, 4, 4, 4, 4, 4),
            unet_base=4,
            unet_depth=2,
            simvp_hid_s=4,
            simvp_hid_t=16,
            simvp_n_s=2,
            simvp_n_t=2,
        ),
    ),
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise GlacierError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}") from None


def override(obj, **changes):
    """``dataclasses.replace`` that ignores None values and rejects unknown fields with a clear error."""
    names = {f.name for f in fields(obj)}
    unknown = set(changes) - names
    if unknown:
        raise GlacierError(f"unknown setting(s) {sorted(unknown)} for {type(obj).__name__}")
    return replace(obj, **{k: v for k, v in changes.items() if v is not None})
