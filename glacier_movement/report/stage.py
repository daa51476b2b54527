"""The ``report`` command: ``<results>/README.md``, ``results.csv`` and
``results_per_seed.csv`` from what the stages wrote (the paper's experiments, 4 and 5, each
with the settings it ran under)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .. import settings
from ..catalog import Catalog
from ..io import atomic_path, write_csv, write_text
from ..study import (
    Study,
)
from .experiments import _experiment4_md, _experiment5_md
from .paper import _write_paper
from .scores import RESULT_COLUMNS, _read_json


def _settings_for(results: Path, rs: Study) -> tuple[Study | None, Study | None, Study | None]:
    """The settings of the paper's experiments (1–3), of experiment 4 and of experiment 5 to
    report: this call's for the experiments it ran, the stored ones (``<results>/report.json``)
    for the others — a job that runs only experiment 4 (or 5) adds its section beside the earlier
    experiments."""
    stored = _read_json(results / "report.json")
    groups = {}
    for key, exps in (("paper", {1, 2, 3}), ("motion", {4}), ("predictability", {5})):
        if exps & set(rs.experiments):
            groups[key] = settings.plain(rs) | {"experiments": sorted(exps & set(rs.experiments))}
        elif key in stored:
            groups[key] = stored[key]
    with atomic_path(results / "report.json") as tmp:
        tmp.write_text(json.dumps(groups, indent=2) + "\n")
    names = {o.name for o in settings.options(Study)}

    def load(d: dict | None) -> Study | None:
        if d is None:
            return None
        return settings.build(Study, {k: v for k, v in d.items() if k in names})

    return load(groups.get("paper")), load(groups.get("motion")), load(groups.get("predictability"))


def write_report(root: Path, results: Path, rs: Study) -> tuple[Path, Path]:
    """Write ``<results>/README.md``, ``results.csv`` and ``results_per_seed.csv`` from the
    stages' outputs."""
    results.mkdir(parents=True, exist_ok=True)
    paper, motion, sweep = _settings_for(results, rs)
    exp4_md, exp4_rows = _experiment4_md(root, motion) if motion else ([], [])
    exp5_md, exp5_rows = _experiment5_md(root, results, sweep) if sweep else ([], [])
    md, rows = [*exp4_md, *exp5_md], [*exp4_rows, *exp5_rows]
    if paper is None:
        return _write_motion_only(root, results, motion or sweep or rs, md, rows)
    return _write_paper(root, results, paper, md, rows)


def _write_motion_only(
    root: Path, results: Path, rs: Study, md: list[str], rows: list[dict]
) -> tuple[Path, Path]:
    csv_path = write_csv(
        pd.DataFrame(rows, columns=pd.Index(RESULT_COLUMNS)), results / "results.csv", "%.6g"
    )
    head = [
        "# Results: glacier movement prediction",
        "",
        f"Preset **{rs.preset}**, synthetic data, {rs.seeds} seed(s), {rs.bootstrap} bootstrap "
        "resamples. How to read the intervals and verdicts: docs/evaluation.md.",
        "",
    ]
    readme = write_text("\n".join([*head, *md]), results / "README.md")
    return readme, csv_path


@dataclass(frozen=True)
class ReportSettings(Study):
    """Collect every result into <results>/README.md and results.csv.

    Write <results>/README.md (held-out glaciers headline, experiment tables with every baseline,
    clustered paired intervals and verdicts, per-lead and on/off-glacier scores, forecast
    structure, training, flow, the paper's numbers, figures, settings, stage times),
    <results>/results.csv and <results>/results_per_seed.csv (columns: docs/evaluation.md) from
    what the stages wrote. The options name the study whose runs it reads (`reproduce` passes its
    own).
    """


def run_report(study: Study, catalog: Catalog) -> tuple[Path, Path]:
    """The ``report`` stage: ``<results>/README.md`` and ``results.csv`` from what the stages of
    ``study`` wrote."""
    rs = study.resolved(catalog.root)
    readme, csv = write_report(catalog.root, Path(rs.results), rs)
    settings.write(study, Path(rs.results) / "report.settings.toml", "report")
    print(f"wrote {readme} and {csv}")
    return readme, csv
