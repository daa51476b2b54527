"""The forecasting models and their registry; ``glacier-movement models`` lists them.

Every model maps 4 input frames to 4 predicted frames, ``model(x (B, 4, P, P), y=None) ->
(B, 4, P, P)``, with teacher forcing when ``y`` is given in training mode (see
:class:`~glacier_movement.models.base.Forecaster`). Build them by name with :func:`build_model`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..errors import GlacierError
from ..presets import PRESETS, Preset, TrainConfig, get_preset, override, train_configs
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
    "PAPER_MODELS",
    "EXP4_MODELS",
    "BENCHMARK_MODELS",
    "ModelNames",
    "ModelSpec",
    "register",
    "unregister",
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
    """A registry entry: everything the package needs to know about one model.

    ``build(preset, sizes)`` makes the model at a preset: ``sizes`` is this entry's ``sizes``
    value for the preset's name (the model's own architecture-size dataclass; None when the entry
    has none and the model reads :class:`~glacier_movement.presets.ModelConfig` fields).
    ``train`` is its paper :class:`TrainConfig` (None: no parameters, a baseline); every preset
    derives its own from it (``presets.PRESET_TRAINING``) and then applies ``train_overrides``
    [preset name] (the model's own choices, e.g. the demo's tuned learning rate). The flags put the
    model in the lists the study, report and benchmarks derive: ``paper`` (experiment 1's models,
    in the paper's table order), ``exp4`` (experiment 4, the motion benchmark) and ``benchmark``
    (timed by benchmarks/training.py and benchmarks/gpu.py at a paper-size batch of
    ``bench_batch``, scaled to 100).
    """

    name: str
    build: Callable[[Preset, Any], Forecaster]
    title: str  # the description in `glacier-movement models`
    original: str  # the original code's run name ("-": not in the original)
    label: str = ""  # the name in the report's captions (default: the title)
    sizes: Mapping[str, Any] = field(default_factory=dict)
    train: TrainConfig | None = None
    train_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    paper: bool = False
    exp4: bool = False
    benchmark: bool = False
    bench_batch: int = 100

    @property
    def trainable(self) -> bool:
        """Whether the model has parameters to train (baselines have none)."""
        return self.train is not None

    @property
    def caption(self) -> str:
        """The model's name in the report."""
        return self.label or self.title

    def sizes_for(self, preset: Preset) -> Any:
        """This model's sizes at ``preset`` (None when it reads ``preset.model``)."""
        if not self.sizes:
            return None
        try:
            return self.sizes[preset.name]
        except KeyError:
            raise GlacierError(
                f"model {self.name} has no sizes for preset {preset.name!r}: give one for each of "
                f"{', '.join(self.sizes)}"
            ) from None


#: The registry, in table order: name → entry. Change it with :func:`register` / :func:`unregister`.
MODELS: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    """Add ``spec`` to the registry (and its training settings to every preset)."""
    if spec.name in MODELS:
        raise GlacierError(f"model {spec.name!r} is registered already")
    unknown = set(spec.train_overrides) - set(PRESETS)
    if unknown or (spec.sizes and set(spec.sizes) != set(PRESETS)):
        raise GlacierError(
            f"model {spec.name}: sizes and train_overrides are per preset, one of "
            f"{', '.join(PRESETS)} (sizes for all of them)"
        )
    if spec.train is not None:
        for preset, cfg in train_configs(spec.train, spec.train_overrides).items():
            PRESETS[preset].train[spec.name] = cfg
    MODELS[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    """Remove model ``name`` from the registry and from every preset's training settings."""
    MODELS.pop(name)
    for preset in PRESETS.values():
        preset.train.pop(name, None)


class ModelNames(Sequence[str]):
    """The names of the registered models that have a flag, in registry order: a live view (a model
    registered later is in it), compared equal to a tuple of the same names."""

    def __init__(self, test: Callable[[ModelSpec], bool], what: str) -> None:
        self._test, self._what = test, what

    def _names(self) -> tuple[str, ...]:
        return tuple(n for n, spec in MODELS.items() if self._test(spec))

    def __getitem__(self, i):  # type: ignore[override]
        return self._names()[i]

    def __len__(self) -> int:
        return len(self._names())

    def __contains__(self, name: object) -> bool:
        return name in self._names()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and tuple(self) == tuple(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{self._names()!r}  # {self._what}"


#: Models with parameters to train, in registry order (the paper's four, then SimVP).
TRAINABLE = ModelNames(lambda s: s.trainable, "trainable models")
#: Parameter-free baselines shown beside them in `glacier-movement models`.
BASELINES = ModelNames(lambda s: not s.trainable, "parameter-free models")
#: Experiment 1's models: the paper's four, in its results table's order.
PAPER_MODELS = ModelNames(lambda s: s.paper, "the paper's models")
#: Experiment 4's models (the motion benchmark).
EXP4_MODELS = ModelNames(lambda s: s.exp4, "experiment 4's models")
#: The models the benchmarks time.
BENCHMARK_MODELS = ModelNames(lambda s: s.benchmark, "benchmarked models")

_BUILTIN = (
    ModelSpec(
        "salstm",
        lambda p, _: SALSTM(p.patch, p.model.layers, p.model.heads, p.model.dropout),
        "LSTM with self-attention (SA-LSTM)",
        "LSTMAttentionSmall",
        label="SA-LSTM (LSTM + self-attention)",
        train=TrainConfig(lr=1e-4, weight_decay=1e-3, epochs=50),
        # demo learning rates: chosen on validation loss only (scripts/tune_demo.py on the
        # calibrated world; the rate with the lowest mean final validation MSE of a model and its
        # +clim variant; table in docs/models.md)
        train_overrides={"demo": {"epochs": 2, "lr": 3e-3}},
        paper=True,
        exp4=True,
        benchmark=True,
    ),
    ModelSpec(
        "lstm",
        lambda p, _: LSTMEncDec(p.patch, p.model.layers, p.model.dropout),
        "LSTM encoder-decoder",
        "LSTMEncDec",
        label="LSTM encoder–decoder",
        train=TrainConfig(lr=1e-4, weight_decay=1e-3, epochs=40),
        train_overrides={"demo": {"epochs": 2, "lr": 3e-4}},
        paper=True,
        exp4=True,
        benchmark=True,
    ),
    ModelSpec(
        "convlstm",
        lambda p, _: ConvLSTM(p.patch, p.model.convlstm),
        "ConvLSTM",
        "ConvLSTMPredictor",
        train=TrainConfig(lr=1e-4, weight_decay=1e-3, epochs=40),
        train_overrides={"demo": {"epochs": 1, "lr": 3e-3}},  # 4× the cost of a step of the others
        paper=True,
        exp4=True,
        benchmark=True,
        bench_batch=10,
    ),
    ModelSpec(
        "unet",
        lambda p, _: UNet(p.patch, p.model.unet_base, p.model.unet_depth),
        "U-Net",
        "UNet",
        train=TrainConfig(lr=1e-3, weight_decay=1e-2, epochs=20),
        # the demo U-Net sees one frame and, trained with teacher forcing, drifts when fed its own
        # predictions (validation MSE 1.9× persistence's, growing with each step); trained on its
        # own it does not. At 1e-3 it diverged in the last steps on the calibrated world
        train_overrides={"demo": {"epochs": 2, "lr": 3e-3, "teacher_forcing": False}},
        paper=True,
        exp4=True,
        benchmark=True,
    ),
    ModelSpec(
        "simvp",
        lambda p, _: SimVP(
            p.patch, p.model.simvp_hid_s, p.model.simvp_hid_t, p.model.simvp_n_s, p.model.simvp_n_t
        ),
        "SimVP (Gao et al. 2022; not in the paper)",
        "-",
        # the SimVP paper's learning rate (1e-2, Adam without weight decay; it also used a
        # one-cycle schedule, which TrainConfig does not have) over the LSTMs' 40 epochs. SimVP
        # predicts all frames at once, so there is no teacher forcing to switch on.
        train=TrainConfig(lr=1e-2, weight_decay=0.0, epochs=40, teacher_forcing=False),
        # demo: not tuned on validation; the paper's 1e-2 came with a one-cycle warm-up, so demo
        # takes the usual Adam step for a convolutional net
        train_overrides={"demo": {"lr": 1e-3, "epochs": 2}},
        exp4=True,
        benchmark=True,
        bench_batch=10,  # GroupNorm only: a step's time scales with the batch
    ),
    ModelSpec(
        "persistence",
        lambda p, _: Persistence(p.patch),
        "persistence (last frame)",
        "persistence",
    ),
    ModelSpec(
        "linear",
        lambda p, _: LinearExtrapolation(p.patch),
        "linear extrapolation",
        "linear-extrapolation",
    ),
)
for _spec in _BUILTIN:
    register(_spec)


def build_model(name: str, preset: Preset | str = "paper") -> Forecaster:
    """Build registered model ``name`` (``salstm``, ``lstm``, ``convlstm``, ``unet``, ``simvp``,
    ``persistence``, ``linear``, …: :data:`MODELS`) with the sizes of ``preset`` (a
    :class:`Preset` or its name).

    Builds on the current default device: wrap in ``with torch.device("meta"):`` to count the
    parameters of a paper-size model without allocating its memory.
    """
    if name not in MODELS:
        raise GlacierError(f"unknown model {name!r}: choose one of {', '.join(MODELS)}")
    if isinstance(preset, str):
        preset = get_preset(preset)
    try:
        spec = MODELS[name]
        model = spec.build(preset, spec.sizes_for(preset))
    except ValueError as e:  # an impossible size combination in a preset or override
        raise GlacierError(f"cannot build {name} with preset {preset.name!r}: {e}") from None
    if preset.model.climatology_input:
        if not MODELS[name].trainable:
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
