"""The ``train`` stage: :class:`TrainSettings`, :func:`train_model` (one run under its lock) and
the resume checks."""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from .. import config, locks, settings
from ..catalog import Catalog, RunPaths
from ..checkpoints import (
    announce_device,
    load_checkpoint,
    load_weights,
    resolve_checkpoint,
    seed_all,
)
from ..errors import GlacierError
from ..models import MODELS, TRAINABLE, build_model, count_parameters
from ..models.convlstm import resolve_channels
from ..presets import Preset, TrainConfig, check_train_bounds, get_preset, override
from ..settings import SettingsError, device_option, option, wandb_option
from .data import load_sequences
from .loop import TrainResult
from .runner import fit

WANDB_MODES = settings.WANDB_MODES
#: Settings a resumed run must keep (changing them would not continue the same run).
_LOCKED = (
    "lr", "weight_decay", "batch_size", "optimizer", "clip_value", "seed", "teacher_forcing",
)  # fmt: skip


#: The name a run gets without ``run_name`` (catalog.py names every output).
default_run_name = Catalog.run_name


# ------------------------------------------------------------------------------ entry point
def train_model(s: TrainSettings, root: str | os.PathLike | None = None) -> TrainResult:
    """Train ``s.model`` on the sequences of ``s.glacier`` (one name, or several to mix them) at
    ``s.preset``; the Python form of ``glacier-movement train`` (its settings were checked when
    ``s`` was made).

    :attr:`TrainSettings.overrides` (``epochs``, ``batch_size``, ``lr``, …) change the preset's
    :class:`TrainConfig`; None values keep the preset's. ``init_from`` loads only the weights of a
    checkpoint of the same model (experiment 2's fine-tuning). With ``resume`` a run continues
    from its ``last.pt`` with its stored settings (only ``epochs``, ``max_steps``, ``val_every`` and
    ``ckpt_every`` may change); an existing run is otherwise refused unless ``overwrite``.
    ``climatology_input`` trains the ``+clim`` variant (models/climatology.py; run name
    ``<model>+clim-…``).
    Returns the :class:`TrainResult` (run directory, final losses, persistence baseline).
    """
    pre = get_preset(s.preset)
    if s.convlstm is not None:
        try:
            pre = override(pre, model=override(pre.model, convlstm=resolve_channels(s.convlstm)))
        except ValueError as e:
            raise GlacierError(str(e)) from None
    pre = override(pre, patch=s.patch, stride=s.stride)
    if s.climatology_input:
        pre = override(pre, model=override(pre.model, climatology_input=True))
    cfgs = [config.get_glacier(g, root) for g in s.glacier]
    gl = [cfg.name for cfg in cfgs]
    root = config.data_root(root)
    label = s.model + ("+clim" if pre.model.climatology_input else "")
    name = s.run_name or default_run_name(
        label, gl, pre.name, s.split, finetuned=s.init_from is not None
    )
    run_dir = Catalog(root).run_dir(name)
    cfg = override(pre.train_config(s.model), **s.overrides)
    # one writer per run: rank 0 holds <run>/.lock for the whole run (torchrun's other ranks join it)
    first = int(os.environ.get("RANK", "0")) == 0
    with locks.hold(run_dir, f"run {name!r}") if first else contextlib.nullcontext():
        return _train_locked(s, pre, cfgs, root, name, run_dir, cfg)


def _train_locked(
    s: TrainSettings,
    pre: Preset,
    cfgs: list[config.GlacierConfig],
    root: Path,
    name: str,
    run_dir: Path,
    cfg: TrainConfig,
) -> TrainResult:
    """The rest of :func:`train_model`, under the run's lock: ``pre`` is the preset with the
    settings' sizes, ``cfgs`` the glaciers, ``cfg`` the optimisation settings."""
    model, split = s.model, s.split
    gl = [c.name for c in cfgs]
    label = model + ("+clim" if pre.model.climatology_input else "")
    files = RunPaths(run_dir)
    last = files.last
    rank = int(os.environ.get("RANK", "0"))
    if last.is_file() and not s.resume:
        if not s.overwrite:
            raise GlacierError(
                f"run {name!r} already exists ({last}): pass --resume to continue it, --overwrite to "
                "start it again, or another --run-name"
            )
        if rank == 0:
            for f in files.outputs:
                f.unlink(missing_ok=True)
    if s.resume and last.is_file():
        cfg = _resumed_config(name, last, s.overrides, model, pre, gl, split)
    elif s.resume and rank == 0:
        print(
            f"note: {last} does not exist yet; starting run {name!r} from the beginning",
            file=sys.stderr,
        )

    train, val, info = load_sequences(
        root, cfgs, pre.patch, pre.stride, split, pre.model.climatology_input
    )
    seed_all(cfg.seed)  # the same initial weights for the same seed
    net = build_model(model, pre)
    init_from = None
    if s.init_from is not None:
        init_from = resolve_checkpoint(root, s.init_from)
        src = load_checkpoint(init_from)
        if src.get("model_name") != model:
            raise GlacierError(
                f"--init-from {init_from} holds a {src.get('model_name')!r} model, not {model!r}: pick a checkpoint of a {model} run"
            )
        if not (s.resume and last.is_file()):
            load_weights(net, src["model"], init_from)
    record = {
        "preset": pre.name,
        "patch": pre.patch,
        "stride": pre.stride,
        "model_config": asdict(pre.model),
        "glaciers": gl,
        "split": split,
        "init_from": str(init_from) if init_from else None,
        "n_sequences": info["n_sequences"],
        "climatology_val_loss": info["climatology_val_loss"],
    }
    if rank == 0 and s.progress:
        print(
            f"training {label} ({count_parameters(net):,} parameters) on {'+'.join(gl)}: "
            f"{info['train']:,} training / {info['val']:,} validation sequences of {pre.patch}×{pre.patch} px, "
            f"preset {pre.name}, {cfg.epochs} epochs × batch {cfg.batch_size}"
            + (f", at most {cfg.max_steps} steps" if cfg.max_steps else "")
            + f" → {run_dir}",
            file=sys.stderr,
        )
    return fit(
        model,
        net,
        train,
        val,
        cfg,
        run_dir,
        record=record,
        resume=s.resume,
        wandb_mode=s.wandb,
        wandb_root=root,
        device=s.device,
        amp=s.amp,
        progress=s.progress,
    )


def _resumed_config(
    name: str,
    last: Path,
    overrides: dict[str, Any],
    model: str,
    pre: Preset,
    glaciers: list[str],
    split: str,
) -> TrainConfig:
    """The settings of the run ``name`` that ``last`` (its ``last.pt``) holds, with the
    ``overrides`` a resume may change; a changed :data:`_LOCKED` setting, model, preset,
    glaciers, split, patch, stride or climatology input is a one-line :class:`GlacierError`."""
    stored = load_checkpoint(last)["config"]
    base = TrainConfig(
        **{k: v for k, v in stored["train"].items() if k in {f.name for f in fields(TrainConfig)}}
    )
    given = {k: v for k, v in overrides.items() if v is not None}
    for k in _LOCKED:
        if k in given and given[k] != getattr(base, k):
            raise GlacierError(
                f"run {name!r} was trained with {k}={getattr(base, k)!r}; a resumed run keeps it "
                f"(drop --{k.replace('_', '-')} or start a new --run-name)"
            )
    for key, now in (
        ("model", model),
        ("preset", pre.name),
        ("glaciers", glaciers),
        ("split", split),
        ("patch", pre.patch),
        ("stride", pre.stride),
        ("climatology_input", pre.model.climatology_input),
    ):
        if key == "climatology_input":
            stored[key] = bool(stored.get("model_config", {}).get(key, False))
        if stored.get(key) != now:
            raise GlacierError(
                f"run {name!r} was trained with {key}={stored.get(key)!r}, not {now!r}: use another --run-name"
            )
    return override(base, **given)


# --------------------------------------------------------------------------------------- CLI
# ---------------------------------------------------------------------------------- the stage
@dataclass(frozen=True)
class TrainSettings:
    """Train a model on a glacier's patch sequences (checkpoints, resume, wandb, DDP).

    Train one model (docs/models.md: MSE loss, AdamW or RMSprop, gradient clipping by value 3) on
    the patch sequences of one or several glaciers. Writes <data-root>/models/<run>/ {last.pt,
    best.pt, losses.csv, epochs.csv, summary.json, train.settings.toml}. Options left unset take
    the preset's value. Under `torchrun --nproc_per_node=N` it trains with DistributedDataParallel.
    """

    glacier: tuple[str, ...] = option(
        repeat=True,
        metavar="NAME",
        help="glacier to train on (a name or a path to its .toml); repeat to mix glaciers "
        "(experiment 3)",
    )
    model: str = option(choices=TRAINABLE, help="which model")
    preset: str = option("demo", help="paper, demo or tiny (default demo)")
    split: str = option("paper", choices=("paper", "strict"), help="split mode (default paper)")
    epochs: int | None = option(None, help="epochs (preset: paper 50/40/40/20/40)")
    batch_size: int | None = option(None, help="batch size per process (paper 100)")
    lr: float | None = option(None, help="learning rate")
    weight_decay: float | None = option(None, help="weight decay")
    optimizer: str | None = option(
        None, choices=("adam", "rmsprop"), help="adam = AdamW (default) or rmsprop"
    )
    max_steps: int | None = option(None, help="stop after this many optimisation steps")
    val_every: int | None = option(None, help="steps between validation batches (paper 100)")
    ckpt_every: int | None = option(None, help="steps between checkpoints (paper 500)")
    seed: int | None = option(None, help="random seed (default 0)")
    teacher_forcing: bool | None = option(
        None,
        negatable=True,
        help="feed the true frames to the decoder in training (default: the preset's; paper: on)",
    )
    patch: int | None = option(None, help="patch size in pixels (default: the preset's)")
    stride: int | None = option(None, help="patch stride in pixels (default: the preset's)")
    convlstm: str | None = option(
        None, metavar="CONFIG", help="ConvLSTM channels: big, small or six numbers"
    )
    climatology_input: bool = option(
        False,
        help="the +clim variant (beyond the paper): the model gets the climatology of its input "
        "and target windows and predicts the departure from it",
    )
    run_name: str | None = option(
        None, help="run folder under <data-root>/models (default <model>-<glaciers>-<preset>)"
    )
    resume: bool = option(False, help="continue the run from its last.pt")
    overwrite: bool = option(False, help="start an existing run again from scratch")
    init_from: str | None = option(
        None,
        metavar="CKPT|RUN",
        help="start from the weights of this checkpoint, or of run NAME's last.pt (fine-tuning)",
    )
    wandb: str = wandb_option()
    amp: bool = option(False, help="bf16 mixed precision (CUDA only)")
    device: str | None = device_option()
    progress: bool = option(True, flag="--no-progress", help="no progress bar")

    def __post_init__(self) -> None:
        if isinstance(self.glacier, str):  # TrainSettings(glacier="parvati") from Python
            object.__setattr__(self, "glacier", (self.glacier,))
        if self.model in MODELS and self.model not in TRAINABLE:
            raise SettingsError(
                "model",
                f"{self.model} has no parameters to train: choose one of {', '.join(TRAINABLE)}",
            )
        settings.check_choices(self)
        get_preset(self.preset)
        if not self.glacier:
            raise SettingsError("glacier", "needs at least one glacier")
        check_train_bounds(self.overrides)

    @property
    def overrides(self) -> dict[str, Any]:
        """The TrainConfig fields these settings have (None: the preset's value)."""
        return {f.name: getattr(self, f.name) for f in fields(TrainConfig) if hasattr(self, f.name)}


def run(s: TrainSettings, catalog: Catalog) -> TrainResult:
    """The ``train`` stage: one run, its resolved settings in ``<run>/train.settings.toml``."""
    dev = announce_device(s.device).type
    if s.amp and dev != "cuda":
        print("note: --amp works on CUDA only; training in float32", file=sys.stderr)
    res = train_model(s, catalog.root)
    if int(os.environ.get("RANK", "0")) == 0:
        settings.write(s, RunPaths(res.run_dir).settings_file("train"), "train")
        clim = json.loads(RunPaths(res.run_dir).summary.read_text())["config"].get(
            "climatology_val_loss", math.nan
        )
        print(
            f"{s.model}{'+clim' if s.climatology_input else ''}: {res.step} steps, "
            f"{res.epoch:g} epochs in {res.seconds:.0f} s; validation MSE {res.val_loss:.5f} (best "
            f"{res.best_val_loss:.5f}); baselines on the same sequences: persistence "
            f"{res.persistence_val_loss:.5f}, climatology {clim:.5f}; checkpoints in {res.run_dir}"
        )
    return res
