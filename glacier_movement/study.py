"""The study: which experiments, models, seeds and glaciers a job runs and its report reads.

:class:`Study` holds the settings ``reproduce`` and ``report`` share (one declaration, so the two
commands cannot drift apart), and this module names the runs and glaciers of the experiments
(docs/evaluation.md): experiment 1 on Parvati (the four models, their ``+clim`` variants, several
seeds, a strict-split run, held-out synthetic glaciers), 2 the transfer to Aletsch, 3 mixed
training, 4 the motion benchmark, 5 the predictability sweep (worlds of known predictability).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from . import config, settings
from .catalog import Catalog
from .models import EXP4_MODELS, PAPER_MODELS
from .presets import Preset, get_preset
from .settings import SettingsError, option
from .synthetic.landscape import PERSISTENCE

_T = TypeVar("_T")

#: The four models of the paper, in the paper's table order (the registry's ``paper`` flag).
MODELS = PAPER_MODELS
# Experiment 4 (the motion benchmark, beyond the paper) trains EXP4_MODELS: the four and SimVP
# (the registry's ``exp4`` flag).
#: Experiment 4's glacier: Parvati's configuration, synthesized in the motion regime.
MOTION_GLACIER = "parvati" + config.MOTION
SOURCES = ("synthetic", "planetary-computer")
#: The experiments ``--experiments`` takes.
EXPERIMENTS = (1, 2, 3, 4, 5)

#: Experiment 5's worlds (the predictability sweep): label → (regime, persistence ρ of the
#: snow-line anomaly). Chosen before any score, to span the available skill: ρ = 0 (the realistic
#: world with nothing to know beyond the seasonal cycle: no anomaly persists to the next window),
#: ρ = 0.9 (a persistent snow-cover anomaly a forecaster can carry forward), and the motion
#: regime (moving ice under a fixed snow line: skill from known motion; ρ does not apply there).
WORLDS: dict[str, tuple[str, float]] = {
    "rho0": ("realistic", 0.0),
    "rho90": ("realistic", 0.9),
    "motion": ("motion", PERSISTENCE),
}
#: Experiment 5's models: the two `+clim` variants with the lowest final validation MSE at their
#: chosen demo learning rates (docs/models.md: U-Net+clim 0.0191, LSTM+clim 0.0207; the `+clim`
#: variants are far below the plain models on validation), which are also the two fastest to
#: train (233 and 243 seq/s): the sweep must fit in 30 min on 2 cores.
EXP5_MODELS = ("lstm+clim", "unet+clim")


def parse_experiments(text: str) -> tuple[int, ...]:
    """``1,2,3`` → (1, 2, 3); each of 1–5, at least one."""
    try:
        out = tuple(sorted({int(t) for t in text.split(",") if t.strip()}))
    except ValueError:
        out = ()
    if not out or not set(out) <= set(EXPERIMENTS):
        raise ValueError(f"{text!r}: give a comma-separated list of 1, 2, 3, 4, 5")
    return out


def parse_models(text: str) -> tuple[str, ...]:
    """``salstm,lstm`` → ('salstm', 'lstm'); ``all`` → the four, ``none`` → ()."""
    if text == "all":
        return tuple(MODELS)
    if text in ("none", ""):
        return ()
    return tuple(m.strip() for m in text.split(","))


@dataclass(frozen=True)
class Study:
    """What a job runs and a report reads (shared by ``reproduce`` and ``report``)."""

    preset: str = option("demo", help="paper (GPU), demo (2-core CPU, minutes) or tiny (tests)")
    source: str = option("synthetic", choices=SOURCES, help="where the scenes come from")
    results: Path = option(Path("results"), metavar="DIR", help="report folder (default ./results)")
    bootstrap: int = option(1000, metavar="N", help="bootstrap resamples (default 1000)")
    seeds: int | None = option(
        None,
        metavar="N",
        help="training seeds of every model (default: 3 with experiment 1 at a preset other than "
        "tiny, else 2 with experiment 5, else 1)",
    )
    heldout: int | None = option(
        None,
        metavar="N",
        help="held-out synthetic glaciers scored but never trained on (default: 6; tiny 1; none "
        "with --source planetary-computer)",
    )
    clim_variants: bool = option(
        True,
        negatable=True,
        help="also train (and report) every model's +clim variant (climatology in, departures "
        "out; default on)",
    )
    strict_models: tuple[str, ...] = option(
        ("salstm",),
        parse=parse_models,
        metavar="LIST",
        help="comma-separated models also trained on the strict (leak-free) split; 'all' or "
        "'none' (default salstm)",
    )
    experiments: tuple[int, ...] = option(
        (1, 2, 3),
        parse=parse_experiments,
        metavar="LIST",
        help="comma-separated experiments: 1-3 are the paper's (default 1,2,3); 4 is the motion "
        "benchmark (beyond the paper: the five models on a motion-regime glacier); 5 the "
        "predictability sweep (worlds of known predictability, skill against the available skill)",
    )
    train_glaciers: int = option(
        1,
        metavar="N",
        help="synthetic training replicates of the training glacier's world that experiments 1, 4 "
        "and 5 train on (the glacier and N-1 others, other seeds than the held-out replicates; "
        "default 1)",
    )
    glacier: str | None = option(
        None,
        metavar="NAME",
        help="run experiment 1 (models, baselines, scores, full scenes, flow, report) on this "
        "glacier instead: a name added with `glacier add` or a .toml path (default: the paper's "
        "three experiments on parvati and aletsch)",
    )

    def __post_init__(self) -> None:
        settings.check_choices(self)
        get_preset(self.preset)  # fail fast on a bad preset
        unknown = [m for m in self.strict_models if m not in MODELS]
        if unknown:
            raise SettingsError(
                "strict_models",
                f"has unknown model(s) {unknown}: use {', '.join(MODELS)}, all or none",
            )
        e = set(self.experiments)
        if not e or not e <= set(EXPERIMENTS):
            raise SettingsError(
                "experiments", f"must be among 1, 2, 3, 4, 5, not {self.experiments}"
            )
        if (2 in e or 3 in e) and 1 not in e or (3 in e and 2 not in e):
            raise SettingsError(
                "experiments",
                "2 builds on experiment 1's models and 3 on both: run 1,2,3 together "
                "(--experiments 1,2,3), with or without 4",
            )
        for name, least in (("seeds", 1), ("heldout", 0), ("bootstrap", 0), ("train_glaciers", 1)):
            value = getattr(self, name)
            if value is not None and value < least:
                raise SettingsError(name, f"must be at least {least}, got {value}")

    def resolved(self, root: Path | None = None):
        """The same study with every default filled in: seeds (3; without experiment 1 or at
        tiny: 2 with experiment 5, else 1), held-out glaciers (6; tiny 1), the glacier's name (parvati), and
        experiment 1 only for another glacier."""
        glacier, experiments = "parvati", self.experiments
        if self.glacier not in (None, "parvati"):
            glacier = config.get_glacier(self.glacier, root).name
            if experiments not in ((1, 2, 3), (1,)):
                raise SettingsError(
                    "glacier",
                    "runs experiment 1 on that glacier: drop --experiments (2 and 3 are the "
                    "paper's Aletsch experiments, 4 the motion benchmark, 5 the sweep)",
                )
            experiments = (1,)
        tiny = self.preset == "tiny"
        seeds = self.seeds or (3 if not tiny and 1 in experiments else 2 if 5 in experiments else 1)
        heldout = self.heldout if self.heldout is not None else (1 if tiny else 6)
        return dataclasses.replace(
            self, glacier=glacier, experiments=experiments, seeds=seeds, heldout=heldout
        )

    @property
    def n_seeds(self) -> int:
        """``seeds`` of a :meth:`resolved` study."""
        return _resolved(self.seeds, "seeds")

    @property
    def n_heldout(self) -> int:
        """``heldout`` of a :meth:`resolved` study."""
        return _resolved(self.heldout, "heldout")

    @property
    def glacier_name(self) -> str:
        """``glacier`` of a :meth:`resolved` study."""
        return _resolved(self.glacier, "glacier")

    @property
    def settings(self) -> Preset:
        return get_preset(self.preset)

    @property
    def glaciers(self) -> tuple[str, ...]:
        """The glaciers whose data the paper's experiments need."""
        return ("parvati", "aletsch") if self.glacier in (None, "parvati") else (self.glacier,)


def _resolved(value: _T | None, name: str) -> _T:
    if value is None:  # the defaults are filled in by Study.resolved
        raise SettingsError(name, "is unset: read it from Study.resolved()")
    return value


# ------------------------------------------------------------------------------- run names
def run_name(
    experiment: int,
    model: str,
    preset: str,
    split: str = "paper",
    seed_index: int = 0,
    glacier: str = "parvati",
) -> str:
    """The training run of an experiment (also the label of its outputs): ``salstm-parvati-demo``,
    ``…-strict``, ``salstm-aletsch-demo-finetuned`` (experiment 2), ``salstm-parvati+aletsch-demo``
    (3); ``model`` may carry ``+clim``; the k-th extra seed adds ``-seed<k>``."""
    glaciers = {1: [glacier], 2: ["aletsch"], 3: ["parvati", "aletsch"], 4: [MOTION_GLACIER]}.get(
        experiment, [glacier]
    )
    return Catalog.run_name(model, glaciers, preset, split, experiment == 2, seed_index)


def world_glacier(world: str, base: str = "parvati") -> str:
    """Experiment 5's training glacier of a world (``parvati-world-rho90``)."""
    return f"{base}{config.WORLD}{world}"


def world_of(glacier: str) -> tuple[str, float] | None:
    """(regime, persistence) of an experiment-5 world's glacier or of its replicates; None for
    any other glacier."""
    base = glacier.split(config.HELDOUT)[0].split(config.TRAIN)[0]
    _, sep, label = base.partition(config.WORLD)
    return WORLDS.get(label) if sep else None


def scene_label(experiment: int, what: str, preset: str) -> str:
    """Labels of the Aletsch full-scene predictions of experiments 2 and 3."""
    return f"exp{experiment}-{what}-{preset}"


@dataclass(frozen=True)
class Run:
    """One training run: model label (``salstm``, ``salstm+clim``), split, seed index
    (0 … seeds − 1) and run name."""

    model: str
    split: str
    seed_index: int
    name: str


def variants(study: Study) -> list[str]:
    """Experiment-1 model labels: the four models, then their ``+clim`` variants."""
    return [*MODELS, *([f"{m}+clim" for m in MODELS] if study.clim_variants else [])]


def heldout_glaciers(study: Study, base: str | None = None) -> list[str]:
    """The held-out glaciers of the study (synthetic data only)."""
    if study.source != "synthetic":
        return []
    base = base or study.glacier or "parvati"
    return [config.heldout_name(base, k) for k in range(1, (study.heldout or 0) + 1)]


def motion_glaciers(study: Study) -> list[str]:
    """Experiment 4's glaciers: the motion-regime Parvati and its held-out replicates."""
    if 4 not in study.experiments or study.source != "synthetic":
        return []
    return [MOTION_GLACIER, *heldout_glaciers(study, MOTION_GLACIER)]


def train_replicates(study: Study, base: str) -> list[str]:
    """The training glaciers of a run on ``base``: ``base`` and its ``--train-glaciers`` − 1
    training replicates (synthetic data only)."""
    n = study.train_glaciers if study.source == "synthetic" else 1
    return [config.train_name(base, k) for k in range(1, n + 1)]


def exp5_glaciers(study: Study) -> list[str]:
    """Experiment 5's glaciers: per world its training glacier and held-out replicates."""
    if 5 not in study.experiments or study.source != "synthetic":
        return []
    return [
        g for w in WORLDS for g in (world_glacier(w), *heldout_glaciers(study, world_glacier(w)))
    ]


def paper_experiments(study: Study) -> bool:
    return bool({1, 2, 3} & set(study.experiments))


def data_glaciers(study: Study) -> list[str]:
    """Every glacier whose data the study needs, in the order they are made."""
    paper = [*study.glaciers, *heldout_glaciers(study)] if paper_experiments(study) else []
    # the training replicates and experiment 5 come last: the glaciers before keep their seeds
    extra = [
        *(
            train_replicates(study, study.glacier or "parvati")[1:]
            if 1 in study.experiments
            else []
        ),
        *(train_replicates(study, MOTION_GLACIER)[1:] if motion_glaciers(study) else []),
        *exp5_glaciers(study),
        *(
            g
            for w in WORLDS
            for g in train_replicates(study, world_glacier(w))[1:]
            if exp5_glaciers(study)
        ),
    ]
    return [*paper, *motion_glaciers(study), *extra]


def exp1_runs(study: Study) -> list[Run]:
    """Every experiment-1 training run: each variant at every seed (paper split), then the
    strict-split runs (first seed)."""
    if 1 not in study.experiments:
        return []
    g = study.glacier or "parvati"
    runs = [
        Run(m, "paper", k, run_name(1, m, study.preset, seed_index=k, glacier=g))
        for m in variants(study)
        for k in range(study.seeds or 1)
    ]
    runs += [
        Run(m, "strict", 0, run_name(1, m, study.preset, "strict", glacier=g))
        for m in MODELS
        if m in study.strict_models
    ]
    return runs


def exp4_runs(study: Study) -> list[Run]:
    """Experiment 4: the five models on the motion-regime glacier at every seed."""
    if 4 not in study.experiments:
        return []
    return [
        Run(m, "paper", k, run_name(4, m, study.preset, seed_index=k))
        for m in EXP4_MODELS
        for k in range(study.seeds or 1)
    ]


def exp5_runs(study: Study) -> dict[str, list[Run]]:
    """Experiment 5: per world, the models of :data:`EXP5_MODELS` at every seed."""
    if 5 not in study.experiments or study.source != "synthetic":
        return {}
    return {
        w: [
            Run(m, "paper", k, run_name(5, m, study.preset, seed_index=k, glacier=world_glacier(w)))
            for m in EXP5_MODELS
            for k in range(study.seeds or 1)
        ]
        for w in WORLDS
    }
