"""The forecasting models and their registry; ``glacier-movement models`` lists them.

Every model maps 4 input frames to 4 predicted frames, ``model(x (B, 4, P, P), y=None) ->
(B, 4, P, P)``, with teacher forcing when ``y`` is given in training mode (see
:class:`~glacier_movement.models.base.Forecaster`). Build them by name with :func:`build_model`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import GlacierError
from ..presets import Preset, get_preset, override
from ..settings import SettingsError, option
from .base import Forecaster
from .baselines import LinearExtrapolation, Persistence
from .climatology import ClimatologyInput
from .convlstm import CONVLSTM_CONFIGS, ConvLSTM, resolve_channels
from .lstm import SALSTM, LSTMEncDec
from .simvp import SimVP
from .unet import UNet

__all__ = [
    "MODELS",
    "TRAINABLE",
    "BASELINES",
    "CONVLSTM_CONFIGS",
    "ClimatologyInput",
    "ConvLSTM",
    "Forecaster",
    "LSTMEncDec",
    "LinearExtrapolation",
    "Persistence",
    "SALSTM",
    "SimVP",
    "UNet",
    "build_model",
    "count_parameters",
    "ModelsSettings",
]


@dataclass(frozen=True)
class ModelSpec:
    """A registry entry: how to build the model from a preset, and what it is."""

    build: Callable[[Preset], Forecaster]
    title: str  # the name used in the paper / results tables
    original: str  # the original code's run name


MODELS: dict[str, ModelSpec] = {
    "salstm": ModelSpec(
        lambda p: SALSTM(p.patch, p.model.layers, p.model.heads, p.model.dropout),
        "LSTM with self-attention (SA-LSTM)",
        "LSTMAttentionSmall",
    ),
    "lstm": ModelSpec(
        lambda p: LSTMEncDec(p.patch, p.model.layers, p.model.dropout),
        "LSTM encoder-decoder",
        "LSTMEncDec",
    ),
    "convlstm": ModelSpec(
        lambda p: ConvLSTM(p.patch, p.model.convlstm), "ConvLSTM", "ConvLSTMPredictor"
    ),
    "unet": ModelSpec(
        lambda p: UNet(p.patch, p.model.unet_base, p.model.unet_depth), "U-Net", "UNet"
    ),
    "simvp": ModelSpec(
        lambda p: SimVP(
            p.patch, p.model.simvp_hid_s, p.model.simvp_hid_t, p.model.simvp_n_s, p.model.simvp_n_t
        ),
        "SimVP (Gao et al. 2022; not in the paper)",
        "-",
    ),
    "persistence": ModelSpec(
        lambda p: Persistence(p.patch), "persistence (last frame)", "persistence"
    ),
    "linear": ModelSpec(
        lambda p: LinearExtrapolation(p.patch), "linear extrapolation", "linear-extrapolation"
    ),
}
#: Models with parameters to train: the paper's four in its results table's order, then SimVP.
TRAINABLE: tuple[str, ...] = ("salstm", "lstm", "convlstm", "unet", "simvp")
#: Parameter-free baselines shown beside them.
BASELINES: tuple[str, ...] = ("persistence", "linear")


def build_model(name: str, preset: Preset | str = "paper") -> Forecaster:
    """Build model ``name`` (``salstm``, ``lstm``, ``convlstm``, ``unet``, ``simvp``,
    ``persistence``, ``linear``) with the sizes of ``preset`` (a :class:`Preset` or its name).

    Builds on the current default device: wrap in ``with torch.device("meta"):`` to count the
    parameters of a paper-size model without allocating its memory.
    """
    if name not in MODELS:
        raise GlacierError(f"unknown model {name!r}: choose one of {', '.join(MODELS)}")
    if isinstance(preset, str):
        preset = get_preset(preset)
    try:
        model = MODELS[name].build(preset)
    except ValueError as e:  # an impossible size combination in a preset or override
        raise GlacierError(f"cannot build {name} with preset {preset.name!r}: {e}") from None
    if preset.model.climatology_input:
        if name not in TRAINABLE:
            raise GlacierError(
                f"{name} has no parameters: a +clim variant applies to trained models"
            )
        model = ClimatologyInput(model)
    return model


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


# ---------------------------------------------------------------------------------- the stage
@dataclass(frozen=True)
class ModelsSettings:
    """List the models and their parameter counts.

    Print every model with its parameter count at a preset (paper-size models are built on
    PyTorch's meta device, so nothing is allocated).
    """

    preset: str = option("paper", help="paper, demo or tiny (default paper)")
    convlstm: str | None = option(
        None,
        metavar="CONFIG",
        help=f"ConvLSTM channels: {' or '.join(CONVLSTM_CONFIGS)} or six numbers (default: the "
        "preset's)",
    )

    def __post_init__(self) -> None:
        get_preset(self.preset)
        if self.convlstm is not None:
            try:
                resolve_channels(self.convlstm)
            except ValueError as e:
                raise SettingsError("convlstm", str(e)) from None


def model_table(preset: Preset) -> list[tuple[str, str, int]]:
    """(name, title, parameters) for every registered model at ``preset``."""
    rows = []
    with torch.device("meta"):
        for name, spec in MODELS.items():
            rows.append((name, spec.title, count_parameters(build_model(name, preset))))
    return rows


def run(s: ModelsSettings, catalog: Any = None) -> list[tuple[str, str, int]]:
    """The ``models`` stage: prints (and returns) the model table at the preset."""
    preset = get_preset(s.preset)
    if s.convlstm is not None:
        preset = override(
            preset, model=override(preset.model, convlstm=resolve_channels(s.convlstm))
        )
    m = preset.model
    print(
        f"preset {preset.name}: patch {preset.patch}×{preset.patch}, LSTM hidden {preset.patch**2} × "
        f"{m.layers} layers, {m.heads} heads; ConvLSTM {list(resolve_channels(m.convlstm))}; "
        f"U-Net {m.unet_base}…{m.unet_base * 2**m.unet_depth}; SimVP spatial {m.simvp_hid_s} × "
        f"{m.simvp_n_s}, temporal {m.simvp_hid_t} × {m.simvp_n_t}"
    )
    rows = model_table(preset)
    width = max(len(t) for _, t, _ in rows)
    print(f"{'model':<12} {'description':<{width}} {'parameters':>14}")
    for name, title, n in rows:
        print(f"{name:<12} {title:<{width}} {n:>14,}")
    return rows
