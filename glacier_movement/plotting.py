"""Figures (PNG, optionally PDF), written atomically. Matplotlib runs headless (Agg).

Stage modules call the functions here; each function takes arrays and a path and returns the
path(s) written.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .io import atomic_path  # noqa: E402


def save_figure(fig, path: str | os.PathLike, pdf: bool = False, dpi: int = 120) -> list[Path]:
    """Save ``fig`` to ``path`` (PNG) atomically, and a PDF beside it when ``pdf``; close it."""
    path = Path(path)
    written = []
    targets = [path] + ([path.with_suffix(".pdf")] if pdf else [])
    try:
        for target in targets:
            with atomic_path(target, suffix=".tmp" + target.suffix) as tmp:
                fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=target.suffix[1:])
            written.append(target)
    finally:
        plt.close(fig)
    return written
