"""The catalog: every output path and name under a data root, in one place (docs/data.md).

A glacier's data, scene predictions, scores and figures are named by :class:`config.Paths`
(``catalog.glacier(name)``); training runs live under ``<root>/models/<run>/`` and are named by
:meth:`Catalog.run_name`. Stage functions take a catalog (``run(settings, catalog)``) instead of
spelling paths themselves.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from . import config


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
