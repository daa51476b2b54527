"""The trained model a command works on: ``--run``/``--checkpoint`` resolved to a checkpoint, its
glacier and the label of its outputs (``test``, ``infer`` and ``flow`` share these settings)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from . import config, settings
from .catalog import Catalog
from .checkpoints import load_checkpoint, load_model, resolve_device
from .errors import DataError, GlacierError
from .models import TRAINABLE
from .settings import SettingsError, device_option, option


@dataclass(frozen=True)
class ModelChoice:
    """The settings that pick a trained model and where its outputs go (``test``, ``infer`` and
    ``flow`` share them)."""

    run: str | None = option(
        None, metavar="NAME", help="a trained run under <data-root>/models/ (its last.pt)"
    )
    checkpoint: Path | None = option(
        None,
        metavar="PATH",
        help="a checkpoint file written by `glacier-movement train` (wins over --run)",
    )
    best: bool = option(
        False, help="with --run: use best.pt (lowest validation loss) instead of last.pt"
    )
    model: str | None = option(None, choices=TRAINABLE, help="refuse a checkpoint of another model")
    glacier: str | None = option(
        None,
        help="glacier to evaluate on, a name or a path to its .toml (default: the run's first "
        "training glacier)",
    )
    name: str | None = option(None, help="label of the outputs (default: the run's folder name)")
    batch_size: int = option(100, help="patches per forward pass (default 100)")
    device: str | None = device_option()

    def __post_init__(self) -> None:
        settings.check_choices(self)
        if self.batch_size < 1:
            raise SettingsError("batch_size", f"must be at least 1, got {self.batch_size}")
        if not (self.run or self.checkpoint):
            raise SettingsError(
                "run",
                "or --checkpoint: no model given: pass --run NAME (a folder under "
                "<data-root>/models) or --checkpoint PATH",
            )
        if self.checkpoint and self.best:
            raise SettingsError(
                "best",
                "goes with --run (it picks best.pt of a run); with --checkpoint name the file itself",
            )


@dataclass
class Selected:
    """The checkpoint a command works on and where its outputs go."""

    path: Path
    label: str
    checkpoint: dict
    glacier: config.GlacierConfig
    paths: config.Paths
    model: torch.nn.Module | None = None  # loaded by select(with_model=True)

    @property
    def fingerprint(self) -> dict:
        """Identifies the checkpoint file's version (for reusing saved predictions)."""
        st = self.path.stat()
        return {
            "path": str(self.path.resolve()),
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "step": self.checkpoint.get("step"),
        }

    @property
    def patch(self) -> int:
        return int(self.checkpoint["config"]["patch"])

    @property
    def stride(self) -> int:
        return int(self.checkpoint["config"]["stride"])

    @property
    def train_split(self) -> str:
        return str(self.checkpoint["config"].get("split", "paper"))

    def load_model(self, device: str | torch.device | None) -> torch.nn.Module:
        """The model, in eval mode on ``device`` (read from the file once)."""
        if self.model is None:
            self.model, _ = load_model(self.path, device=resolve_device(device))
        return self.model.to(resolve_device(device))


def select(choice: ModelChoice, catalog: Catalog, with_model: bool = True) -> Selected:
    """Resolve ``run``/``checkpoint``, check ``model``, pick the glacier and the label.

    With ``with_model`` the model is loaded too (one read of the file); without, only the
    checkpoint dict is (``flow`` loads the model only when it has to predict again).
    """
    if not choice.checkpoint:
        assert choice.run is not None  # ModelChoice requires a run or a checkpoint
        files = catalog.run(choice.run)
        path = files.best if choice.best else files.last
        if not path.is_file():
            runs = catalog.runs()
            hint = (
                f"trained runs: {', '.join(runs)}"
                if runs
                else "no run is trained yet: run `glacier-movement train` first"
            )
            raise DataError(f"{path} does not exist ({hint})")
        label = choice.name or (choice.run + ("-best" if choice.best else ""))
    else:
        path = Path(choice.checkpoint)
        label = choice.name or (path.parent.name if path.stem in ("last", "best") else path.stem)
    model = None
    if with_model:
        model, ckpt = load_model(path, expect=choice.model, device=resolve_device(choice.device))
    else:
        ckpt = load_checkpoint(path)
        name = ckpt.get("model_name")
        if choice.model is not None and name != choice.model:
            raise GlacierError(
                f"checkpoint {path} holds a {name!r} model, not {choice.model!r}: pick the "
                f"{choice.model} run's checkpoint"
            )
    trained_on = ckpt.get("config", {}).get("glaciers") or []
    glacier = config.get_glacier(
        choice.glacier or (trained_on[0] if trained_on else ""), catalog.root
    )
    return Selected(
        path=path,
        label=label,
        checkpoint=ckpt,
        glacier=glacier,
        paths=catalog.glacier(glacier.name),
        model=model,
    )
