"""The pipeline's commands: each a name, a settings class and the function that runs it.

The command line (``cli/__init__.py``) offers them as subcommands and the job (reproduce.py)
runs their settings in order; both read this one table, so a command's name, settings and
function cannot come apart. ``reproduce`` itself is the command line's only addition.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .. import (
    acquisition,
    evaluation,
    framestats,
    models,
    preprocessing,
    registry,
    report,
    sequences,
    settings,
    synthetic,
    training,
)
from ..catalog import Catalog
from ..evaluation import flow


@dataclass(frozen=True)
class Command:
    """A command: its settings class (whose docstring is the help: first paragraph the one-line
    summary, the rest the description) and the function that runs it."""

    name: str  # "train"; a space makes a nested command ("glacier add")
    settings: type
    run: Callable[[Any, Catalog], Any]


#: Every stage command in pipeline order (this is also --help's order).
COMMANDS: tuple[Command, ...] = (
    Command("glacier add", registry.AddSettings, registry.run_add),
    Command("glacier list", registry.ListSettings, registry.run_list),
    Command("glacier show", registry.ShowSettings, registry.run_show),
    Command("synthesize", synthetic.SynthesizeSettings, synthetic.run),
    Command("acquire", acquisition.AcquireSettings, acquisition.run),
    Command("preprocess", preprocessing.PreprocessSettings, preprocessing.run),
    Command("frames-stats", framestats.FramesStatsSettings, framestats.run),
    Command("sequences", sequences.SequencesSettings, sequences.run),
    Command("models", models.ModelsSettings, models.run),
    Command("train", training.TrainSettings, training.run),
    Command("test", evaluation.TestSettings, evaluation.run_test),
    Command("infer", evaluation.InferSettings, evaluation.run_infer),
    Command("loss-curves", evaluation.LossCurvesSettings, evaluation.run_loss_curves),
    Command("flow", flow.FlowSettings, flow.run),
    Command("scene-scores", report.SceneScoresSettings, report.run_scene_scores),
    Command("report", report.ReportSettings, report.run_report),
)
_BY_SETTINGS = {c.settings: c for c in COMMANDS}


def command_of(s: Any) -> Command:
    """The command whose settings ``s`` are."""
    return _BY_SETTINGS[type(s)]


def command_line(s: Any, root: str | Path | None = None) -> list[str]:
    """The ``glacier-movement`` argv that runs ``s`` alone (see ``settings.command_line``)."""
    return settings.command_line(command_of(s).name, s, root)


def run(s: Any, catalog: Catalog, threads: int | None = None) -> Any:
    """Run the stage whose settings ``s`` are; with ``threads``, on that many torch threads."""
    with torch_threads(threads):
        return command_of(s).run(s, catalog)


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """torch's intra-op thread count is ``n`` inside the block (None: left as it is).

    A run's numbers depend on it (a reduction split over threads adds in another order: 1 and 2
    threads give U-Net weights that differ by about 1e-7), so the job runs every step with a fixed
    count (``reproduce --threads``), in this process and in its workers alike.
    """
    if not n:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
