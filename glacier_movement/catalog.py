"""The catalog: every output path and name under a data root, in one place (docs/data.md).

A glacier's data, scene predictions, scores and figures are named by :class:`config.Paths`
(``catalog.glacier(name)``); training runs live under ``<root>/models/<run>/``, are named by
:meth:`Catalog.run_name` and their files by :class:`RunPaths` (``catalog.run(name)``). Stage
functions take a catalog (``run(settings, catalog)``) instead of spelling paths themselves; a test
(tests/test_catalog.py) finds file names spelled elsewhere.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from . import config


@dataclass(frozen=True)
class RunPaths:
    """The files of one training run folder ``<root>/models/<run>/`` (docs/models.md)."""

    dir: Path

    @property
    def last(self) -> Path:
        """The latest checkpoint (every ``ckpt_every`` steps and at the end)."""
        return self.dir / "last.pt"

    @property
    def best(self) -> Path:
        """The checkpoint of the lowest full-validation loss."""
        return self.dir / "best.pt"

    @property
    def losses(self) -> Path:
        """Per-step losses (CSV)."""
        return self.dir / "losses.csv"

    @property
    def epochs(self) -> Path:
        """Per-epoch losses (CSV)."""
        return self.dir / "epochs.csv"

    @property
    def summary(self) -> Path:
        """The final metrics (JSON)."""
        return self.dir / "summary.json"

    @property
    def outputs(self) -> tuple[Path, ...]:
        """What a run writes while it trains (``--overwrite`` removes these)."""
        return (self.last, self.best, self.losses, self.epochs, self.summary)

    def settings_file(self, command: str) -> Path:
        """The resolved settings of ``command`` (``<run>/<command>.settings.toml``)."""
        return self.dir / f"{command}.settings.toml"


@dataclass(frozen=True)
class Catalog:
    """The layout under ``root`` (the data root, 'pathOrigin' of the original)."""

    root: Path

    @classmethod
    def at(cls, root: str | os.PathLike | None = None) -> Catalog:
        """The catalog of ``root``, else $GLACIER_DATA_ROOT, else ./data."""
        return cls(config.data_root(root))

    def glacier(self, name: str) -> config.Paths:
        return config.Paths(self.root, name)

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    def run_dir(self, run: str) -> Path:
        return self.models_dir / run

    def run(self, run: str) -> RunPaths:
        """The files of run ``run``."""
        return RunPaths(self.run_dir(run))

    def runs(self) -> list[str]:
        """The runs under ``models/`` that have a last checkpoint, sorted."""
        return sorted(p.parent.name for p in self.models_dir.glob(f"*/{RunPaths(Path()).last}"))

    @property
    def loss_curves(self) -> Path:
        return self.models_dir / "loss_curves.png"

    @staticmethod
    def run_name(
        model: str,
        glaciers: str | Sequence[str],
        preset: str,
        split: str = "paper",
        finetuned: bool = False,
        seed_index: int = 0,
    ) -> str:
        """``<model>-<glacier>[+<glacier>…]-<preset>[-strict][-finetuned][-seed<k>]``, e.g.
        ``salstm-parvati-demo``; ``model`` may carry ``+clim``; the k-th extra seed of a job adds
        ``-seed<k>``."""
        gl = [glaciers] if isinstance(glaciers, str) else list(glaciers)
        name = f"{model}-{'+'.join(gl)}-{preset}"
        if split != "paper":
            name += f"-{split}"
        if finetuned:
            name += "-finetuned"
        return name + (f"-seed{seed_index}" if seed_index else "")
