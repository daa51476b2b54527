"""glacier-movement: Landsat-8 glacier movement prediction, reproduced end to end.

Data flows one way through the stages: ``synthetic`` / ``acquisition`` (scenes) →
``preprocessing`` (NDSI frames) → ``sequences`` (patch sequences) → ``training`` (runs of the
``models``) → ``evaluation`` (test scores against ``baselines`` with ``evaluation.metrics``,
full scenes with ``evaluation.inference``, optical flow scored against the true ``motion`` with
``evaluation.flow``) → ``report``. ``cli.reproduce`` runs them in order as a list of stage
settings; ``cli`` is the command line over it.

Every stage is a settings dataclass plus a function ``run(settings, catalog)`` (``settings``
builds the command line and the config files from the dataclass fields; ``catalog`` names every
output path). A module imports only modules of lower layers (:data:`LAYERS`, where a folder is
one layer; a test checks it).
"""

__version__ = "0.1.0"

#: The layers of the package, lowest first: a module imports only modules listed before it (a
#: folder is one layer: its modules import each other freely).
LAYERS = (
    # foundations: errors, configuration, files, settings and paths, process safety
    "errors", "config", "io", "settings", "catalog", "locks", "signals", "presets", "registry",
    "plotting", "motion", "models",
    # data stages (baselines and advection sit here: training's climatology loss forecasts with
    # the baselines, and the advect baseline is one of them)
    "sequences", "advection", "baselines", "framestats", "preprocessing", "synthetic",
    "acquisition",
    # training and the trained model a command works on
    "checkpoints", "selection", "training",
    # evaluation/: metrics, skill, full-scene inference, flow and the test / infer stages
    "evaluation",
    # the study and its report
    "study", "report",
    # cli/: the command line, its command table, the job and its executors
    "cli", "__main__",
)  # fmt: skip
