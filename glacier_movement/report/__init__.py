"""Results of the three experiments, collected from what the stages wrote.

Commands:
- ``scene-scores`` — the original's ``AletschMSE.py`` and ``aletschGeneralizationPlot.py``: MSE/MAE
  (SSIM, PSNR) of several full-scene predictions of one glacier against their targets, beside
  persistence, and the figure targets / predictions (re-thresholded at 0.3, median-filtered 3×3).
- ``report`` — ``<results>/README.md`` (every table with persistence, intervals and split mode, the
  paper's numbers beside ours, figures, settings, stage timings) and ``<results>/results.csv``.

Nothing here trains or predicts: a table row exists only where its stage wrote its file.

The package's modules, from the numbers to the command: ``scenes`` (the ``scene-scores``
command), ``scores`` (pooled scores, intervals, the rows of ``results.csv``), ``tables`` (markdown
tables and verdict sentences), ``paper`` (the sections of experiments 1–3), ``experiments`` (the
sections of experiments 4 and 5) and ``stage`` (the ``report`` command). Every public name is
importable from the package itself.
"""

from __future__ import annotations

from .experiments import EXP5_FIGURE, world_label
from .paper import ORIGINAL_PREDICTIONS_MD, PAPER_SCORES
from .scenes import SceneScoresSettings, generalization_panels, run_scene_scores, scene_scores
from .scores import RESULT_COLUMNS, motion_table, pooled_scores, results_rows
from .stage import ReportSettings, run_report, write_report
from .tables import flow_verdict, lead_table, skill_sentences, skill_table, verdict_sentences

__all__ = [
    "EXP5_FIGURE",
    "ORIGINAL_PREDICTIONS_MD",
    "PAPER_SCORES",
    "RESULT_COLUMNS",
    "ReportSettings",
    "SceneScoresSettings",
    "flow_verdict",
    "generalization_panels",
    "lead_table",
    "motion_table",
    "pooled_scores",
    "results_rows",
    "run_report",
    "run_scene_scores",
    "scene_scores",
    "skill_sentences",
    "skill_table",
    "verdict_sentences",
    "world_label",
    "write_report",
]
