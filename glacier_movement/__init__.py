"""glacier-movement: Landsat-8 glacier movement prediction, reproduced end to end.

Data flows one way through the stages: ``synthetic`` / ``acquisition`` (scenes) →
``preprocessing`` (NDSI frames) → ``sequences`` (patch sequences) → ``training`` (runs of the
``models``) → ``evaluation`` (test scores against ``baselines``, with ``metrics``), ``inference``
(full scenes) and ``flow`` (optical flow, scored against the true ``motion``) → ``report``.
``reproduce`` runs them in order as a list of stage settings; ``cli`` is the command line over it.

Every stage is a settings dataclass plus a function ``run(settings, catalog)`` (``settings``
builds the command line and the config files from the dataclass fields; ``catalog`` names every
output path). A module imports only modules of lower layers (:data:`LAYERS`; a test checks it).
"""

__version__ = "0.1.0"

#: The layers of the package, lowest first: a module imports only modules listed before it.
LAYERS = (
    # foundations: errors, configuration, files, settings and paths, process safety
    "errors", "config", "io", "settings", "catalog", "locks", "signals", "presets", "registry",
    "plotting", "motion", "metrics", "skill", "models",
    # data stages
    "sequences", "advection", "baselines", "framestats", "preprocessing", "synthetic",
    "acquisition",
    # training and the trained model a command works on
    "checkpoints", "selection", "training",
    # evaluation stages
    "inference", "flow", "evaluation",
    # the study, its report and the job
    "study", "report", "stages", "executors", "reproduce",
    # the command line
    "cli", "__main__",
)  # fmt: skip
