"""`glacier-movement reproduce`: the main job, every stage of the experiments in order.

The job is a list of stages; each stage is a list of steps, and a step is a stage's settings
(``TrainSettings(...)``), run in-process by its command's function (``stages.py``) and printed as
the command line a user would type to run it alone. A stage that finished with the same settings is
skipped on a re-run (state in ``<results>/reproduce.json``); ``--from STAGE`` runs that stage and
every later one again. A killed job resumes: every step writes its outputs atomically, and a
training run that was cut short continues from its last checkpoint. SIGTERM or SIGINT stops the
running stage (a training run after its current step, with a checkpoint at that step), records it
as ``interrupted``, and a re-run resumes it.

Experiments (docs/evaluation.md; runs and glaciers are named in ``study.py``):
1. Parvati: the four models (and the baselines), test scores for the paper and strict splits with
   clustered intervals, full-scene predictions, optical flow scored against the true motion;
2. transfer to Aletsch: the experiment-1 SA-LSTM before and after fine-tuning on Aletsch;
3. mixed training: SA-LSTM from scratch on Parvati + Aletsch training sequences (both test sets
   excluded), tested on the Parvati test sequences and the Aletsch full scenes;
4. (beyond the paper) the motion benchmark;
5. (beyond the paper) the predictability sweep: models trained and scored in synthetic worlds of
   known predictability (``study.WORLDS``), their skill against the available (oracle) skill.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import (
    acquisition,
    checkpoints,
    config,
    evaluation,
    preprocessing,
    report,
    sequences,
    settings,
    synthetic,
    training,
)
from ..catalog import Catalog
from ..errors import GlacierError
from ..evaluation import flow
from ..io import atomic_path
from ..settings import SettingsError, device_option, option, wandb_option
from ..signals import Interrupted
from ..study import (
    EXP4_MODELS,
    MODELS,
    MOTION_GLACIER,
    Study,
    data_glaciers,
    exp1_runs,
    exp4_runs,
    exp5_runs,
    heldout_glaciers,
    motion_glaciers,
    paper_experiments,
    run_name,
    scene_label,
    train_replicates,
    variants,
    world_glacier,
    world_of,
)
from . import executors, stages

__all__ = ["Job", "STAGES", "reproduce", "run", "run_steps"]


#: Settings that change where and how fast the stages run, not what they compute (--threads does:
#: it is in the fingerprint).
_NOT_FINGERPRINTED = (
    "device", "start", "stop", "jobs", "executor", "scheduler",
    "slurm_partition", "slurm_cpus", "slurm_mem_gb", "slurm_time_min",
)  # fmt: skip


@dataclass(frozen=True)
class Job(Study):
    """Run every stage of the experiments in order, resumably (the main job).

    Stages: data → preprocess → sequences → train → test → infer → flow → experiment2 →
    experiment3 → report. Synthetic glaciers by default (no network, no account); --source
    planetary-computer downloads real Landsat-8 scenes instead. Finished stages are skipped on a
    re-run; --from STAGE runs that stage and all later ones again. Ends with <results>/README.md
    and <results>/results.csv.
    """

    years: str = option("2013-2021", help="years of scenes (default 2013-2021)")
    seed: int = option(0, help="seed of data, training and bootstrap")
    wandb: str = wandb_option()
    device: str | None = device_option()
    start: str | None = option(
        None, flag="--from", metavar="STAGE", help="run this stage and all later ones again"
    )
    stop: str | None = option(None, flag="--until", metavar="STAGE", help="stop after this stage")
    jobs: int | None = option(
        None,
        metavar="N",
        help="runs of a stage at once, each in its own worker process (default: one per core, "
        "usable cores // --threads: on 2 cores two 1-thread runs train ~2x as fast as one "
        "2-thread run; docs/benchmarks.md). 1 runs every step in this process, one after another",
    )
    threads: int = option(
        1,
        metavar="N",
        help="torch threads of every run (default 1). A run's numbers depend on it, not on "
        "--jobs; more than 1 only pays with fewer runs than cores (e.g. --jobs 1 on a big node)",
    )
    executor: str = option(
        "local",
        choices=executors.EXECUTORS,
        help="where the runs go: local worker processes (default); slurm, one SLURM job per run "
        "(submitit; --slurm-* resources); dask, tasks on a dask.distributed cluster "
        "(--scheduler). A cluster needs the data root and --results on a shared file system "
        "(docs/cluster.md)",
    )
    scheduler: str | None = option(
        None,
        metavar="ADDRESS",
        help="--executor dask: the scheduler, tcp://HOST:PORT (default: a LocalCluster of "
        "--jobs single-thread workers on this machine)",
    )
    slurm_partition: str | None = option(
        None, metavar="NAME", help="--executor slurm: the partition"
    )
    slurm_cpus: int | None = option(
        None, metavar="N", help="--executor slurm: CPUs per run (default --threads)"
    )
    slurm_mem_gb: float = option(8.0, metavar="GB", help="--executor slurm: memory per run")
    slurm_time_min: int = option(120, metavar="MIN", help="--executor slurm: time limit per run")
    #: the data root (the command line's --data-root)
    root: Path = option(Path("data"), cli=False, help="data root")

    def __post_init__(self) -> None:
        super().__post_init__()
        config.parse_years(self.years)
        for name in ("start", "stop"):
            value = getattr(self, name)
            if value is not None and value not in STAGES:
                raise GlacierError(f"unknown stage {value!r}: choose one of {', '.join(STAGES)}")
        for name in ("jobs", "threads", "slurm_cpus", "slurm_time_min"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise SettingsError(name, f"must be at least 1, not {value}")
        if self.slurm_mem_gb <= 0:
            raise SettingsError("slurm_mem_gb", f"must be positive, not {self.slurm_mem_gb}")
        if self.scheduler is not None:
            if self.executor != "dask":
                raise SettingsError("scheduler", "is for --executor dask only")
            if not re.fullmatch(r"(tcp|tls|inproc|ucx|ws|wss)://\S+", self.scheduler):
                raise SettingsError(
                    "scheduler", f"must be a dask address such as tcp://host:8786, not "
                    f"{self.scheduler!r}"
                )  # fmt: skip

    @property
    def parallel(self) -> int:
        """Runs at once: ``--jobs``, or one per usable core (``cores // --threads``)."""
        return self.jobs or executors.default_jobs(self.threads)

    def cluster(self) -> executors.Cluster:
        return executors.Cluster(
            executor=self.executor, scheduler=self.scheduler,
            slurm_partition=self.slurm_partition, slurm_cpus=self.slurm_cpus,
            slurm_mem_gb=self.slurm_mem_gb, slurm_time_min=self.slurm_time_min,
        )  # fmt: skip

    def fingerprint(self) -> dict:
        """What a finished stage depends on: change any of it and the stages run again."""
        d = {k: v for k, v in asdict(self).items() if k not in _NOT_FINGERPRINTED}
        return json.loads(json.dumps(d, default=str))  # as stored: tuples → lists, paths → str


# ----------------------------------------------------------------------------------- stages
def _train(
    job: Job, model: str, glaciers: list[str], run: str, split: str, seed: int = 0, **extra
) -> training.TrainSettings:
    return training.TrainSettings(
        glacier=tuple(glaciers), model=model.removesuffix("+clim"), preset=job.preset,
        split=split, run_name=run, climatology_input=model.endswith("+clim"), wandb=job.wandb,
        seed=job.seed + seed, resume=True, device=job.device, **extra,
    )  # fmt: skip


def _test(job: Job, run: str, glacier: str, **kw) -> evaluation.TestSettings:
    return evaluation.TestSettings(run=run, glacier=glacier, device=job.device, **kw)


def _infer(job: Job, run: str, glacier: str, name: str | None = None) -> evaluation.InferSettings:
    return evaluation.InferSettings(run=run, glacier=glacier, name=name, device=job.device)


def _flow(job: Job, run: str, glacier: str, name: str | None = None) -> flow.FlowSettings:
    return flow.FlowSettings(run=run, glacier=glacier, name=name, device=job.device)


def _scene_scores(glacier: str, scenes: list[str], name: str) -> report.SceneScoresSettings:
    return report.SceneScoresSettings(glacier=glacier, scenes=tuple(scenes), name=name)


def stage_data(job: Job) -> list[Any]:
    if job.source != "synthetic":
        return [acquisition.AcquireSettings(glacier=g, years=job.years) for g in job.glaciers]
    size = job.settings.scene_size or {}
    steps = []
    motion = {*motion_glaciers(job), *train_replicates(job, MOTION_GLACIER)}
    for k, g in enumerate(data_glaciers(job)):
        base = g.split(config.HELDOUT)[0].split(config.TRAIN)[0].removesuffix(config.MOTION)
        base = base.split(config.WORLD)[0]
        # experiment 5's worlds set regime and persistence; the others keep the defaults
        regime, rho = world_of(g) or ("motion" if g in motion else "realistic", None)
        # a custom glacier's synthetic stand-in takes the preset's Parvati size
        wh = size.get(base, size.get("parvati"))
        extra: dict[str, Any] = (
            {"persistence": rho} if rho is not None and regime == "realistic" else {}
        )
        # replicates are statistical units, not glaciers anyone looks at: their quick-look
        # figures (two thirds of a demo glacier's synthesis time) are left out
        replicate = config.HELDOUT in g or config.TRAIN in g
        step = synthetic.SynthesizeSettings(
            glacier=g, years=job.years, seed=job.seed + k,
            size=(wh[0], wh[1]) if wh else None, regime=regime, quicklook=not replicate, **extra,
        )  # fmt: skip
        steps.append(step)
    return steps


def stage_preprocess(job: Job) -> list[Any]:
    return [preprocessing.PreprocessSettings(glacier=g) for g in data_glaciers(job)]


def _training_glaciers(job: Job) -> list[str]:
    """Every glacier a run trains on, replicates (``--train-glaciers``) included."""
    out = [*(job.glaciers if paper_experiments(job) else ())]
    if 1 in job.experiments:
        out += train_replicates(job, job.glacier or "parvati")[1:]
    if motion_glaciers(job):
        out += train_replicates(job, MOTION_GLACIER)
    for w in exp5_runs(job):
        out += train_replicates(job, world_glacier(w))
    return out


def stage_sequences(job: Job) -> list[Any]:
    return [
        sequences.SequencesSettings(glacier=g, preset=job.preset) for g in _training_glaciers(job)
    ]


#: Experiment 1's variants that train one epoch at the demo preset, not their model's two: the
#: demo's rule, as for its learning rates, is the final validation MSE (the job tests
#: ``last.pt``), averaged over the 3 seeds, and a second epoch raised it for the three ``+clim``
#: variants that have one (lstm+clim +2.0 %, salstm+clim +14 %, unet+clim +1.1 %) and lowered it
#: for the others (docs/models.md, "The demo's epochs"). Chosen on validation only.
DEMO_ONE_EPOCH = ("lstm+clim", "salstm+clim", "unet+clim")


def _exp1_budget(job: Job, model: str) -> dict[str, Any]:
    return {"epochs": 1} if job.preset == "demo" and model in DEMO_ONE_EPOCH else {}


def stage_train(job: Job) -> list[Any]:
    """Experiment 1, 4 and 5's runs, each on its glacier and its training replicates, and
    experiment 3's mixed run (it needs only the data: trained here, it shares the two workers
    with the others instead of running alone after experiment 2)."""
    exp1 = train_replicates(job, job.glacier or "parvati")
    return (
        [
            _train(job, r.model, exp1, r.name, r.split, seed=r.seed_index,
                   **_exp1_budget(job, r.model))
            for r in exp1_runs(job)
        ]
        + [
            _train(job, r.model, train_replicates(job, MOTION_GLACIER), r.name, r.split,
                   seed=r.seed_index)
            for r in exp4_runs(job)
        ]
        + [
            _train(job, r.model, train_replicates(job, world_glacier(w)), r.name, r.split,
                   seed=r.seed_index)
            for w, runs in exp5_runs(job).items()
            for r in runs
        ]
        + exp3_training(job)
    )  # fmt: skip


def stage_test(job: Job) -> list[Any]:
    """Every experiment-1 run on its glacier's test sequences, and on each held-out glacier's
    (the report pools those with clustered intervals: no per-run bootstrap there).

    Held-out glaciers are scored on non-overlapping patches (stride = patch): every pixel once,
    a third of the sequences of the training stride, the same clusters (docs/evaluation.md)."""
    boot = {"bootstrap": job.bootstrap, "seed": job.seed}
    heldout = {"bootstrap": 0, "stride": job.settings.patch}
    steps = [_test(job, r.name, _glacier(job), split=r.split, **boot) for r in exp1_runs(job)]
    steps += [
        _test(job, r.name, g, **heldout)
        for g in heldout_glaciers(job)
        for r in exp1_runs(job)
        if r.split == "paper"
    ]
    steps += [  # experiment 4: scores and the motion in the forecasts (tuned Farneback)
        _test(job, r.name, g, flow="tuned", **boot)
        for g in motion_glaciers(job)
        for r in exp4_runs(job)
    ]
    steps += [  # experiment 5: each world's runs on its held-out replicates (pooled in the report)
        _test(job, r.name, g, **heldout)
        for w, runs in exp5_runs(job).items()
        for g in heldout_glaciers(job, world_glacier(w))
        for r in runs
    ]
    return steps


def stage_infer(job: Job) -> list[Any]:
    return [
        _infer(job, _exp1(job, m), _glacier(job)) for m in variants(job) if 1 in job.experiments
    ] + [
        _infer(job, run_name(4, m, job.preset), MOTION_GLACIER)
        for m in EXP4_MODELS
        if 4 in job.experiments
    ]


def stage_flow(job: Job) -> list[Any]:
    return [_flow(job, _exp1(job, m), _glacier(job)) for m in MODELS if 1 in job.experiments]


def _exp1(job: Job, model: str) -> str:
    """Experiment 1's first-seed run of ``model``."""
    return run_name(1, model, job.preset, glacier=_glacier(job))


def _glacier(job: Job) -> str:
    """Experiment 1's glacier (a resolved job names it; parvati otherwise)."""
    return job.glacier or "parvati"


def stage_experiment2(job: Job) -> list[Any]:
    if 2 not in job.experiments:
        return []
    before, after = (scene_label(2, w, job.preset) for w in ("before", "after"))
    pretrained = Catalog(job.root).run(run_name(1, "salstm", job.preset)).last
    tuned = run_name(2, "salstm", job.preset)
    return [
        _train(job, "salstm", ["aletsch"], tuned, "paper", init_from=str(pretrained)),
        _infer(job, run_name(1, "salstm", job.preset), "aletsch", before),
        _infer(job, tuned, "aletsch", after),
        _flow(job, tuned, "aletsch", after),
        _scene_scores("aletsch", [before, after], f"exp2-{job.preset}"),
    ]


def exp3_training(job: Job) -> list[Any]:
    """Experiment 3's run: the SA-LSTM from scratch on Parvati and Aletsch together (in the
    train stage)."""
    if 3 not in job.experiments:
        return []
    return [
        _train(job, "salstm", ["parvati", "aletsch"], run_name(3, "salstm", job.preset), "paper")
    ]


def stage_experiment3(job: Job) -> list[Any]:
    """Experiment 3's run (trained in the train stage) on Parvati's test sequences and on the
    full Aletsch scene, beside experiment 2's scenes."""
    if 3 not in job.experiments:
        return []
    run = run_name(3, "salstm", job.preset)
    aletsch = scene_label(3, "mixed", job.preset)
    earlier = [scene_label(2, w, job.preset) for w in ("before", "after")]
    return [
        _test(job, run, "parvati", split="paper", bootstrap=job.bootstrap, seed=job.seed),
        _infer(job, run, "aletsch", aletsch),
        _scene_scores("aletsch", [*earlier, aletsch], f"exp3-{job.preset}"),
    ]


def stage_report(job: Job) -> list[Any]:
    study = {f.name: getattr(job, f.name) for f in dataclasses.fields(Study)}
    return [
        evaluation.LossCurvesSettings(),
        report.ReportSettings(**study),
    ]


STAGES: dict[str, Callable[[Job], list[Any]]] = {
    "data": stage_data,
    "preprocess": stage_preprocess,
    "sequences": stage_sequences,
    "train": stage_train,
    "test": stage_test,
    "infer": stage_infer,
    "flow": stage_flow,
    "experiment2": stage_experiment2,
    "experiment3": stage_experiment3,
    "report": stage_report,
}


# ------------------------------------------------------------------------------------ state
@dataclass
class State:
    """What finished, with which settings and in how long (``<results>/reproduce.json``)."""

    path: Path
    fingerprint: dict
    stages: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, fingerprint: dict) -> State:
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return cls(path, fingerprint)
        except (OSError, ValueError) as e:
            raise GlacierError(
                f"{path} is unreadable ({e}); delete it to run every stage again"
            ) from None
        if data.get("fingerprint") != fingerprint:
            return cls(path, fingerprint)  # other settings: nothing counts as done
        return cls(path, fingerprint, data.get("stages", {}))

    def done(self, stage: str) -> bool:
        return self.stages.get(stage, {}).get("status") == "done"

    def save(self) -> None:
        with atomic_path(self.path) as tmp:
            tmp.write_text(
                json.dumps({"fingerprint": self.fingerprint, "stages": self.stages}, indent=2)
            )


def run_steps(steps: list[Any], root: Path, threads: int | None = None) -> None:
    """Run steps (stage settings) in order in this process, each printed as the command line that
    runs it alone, on ``threads`` torch threads (None: as they are); a step's error propagates
    (the stage stops, its state is kept)."""
    for step in steps:
        print(f"\n$ {settings.shell(stages.command_line(step, root))}", flush=True)
        stages.run(step, Catalog(root), threads=threads)


def run_stage(
    job: Job, name: str, steps: list[Any], workers: executors.LocalBackend | None = None
) -> None:
    """A stage's steps: in this process with ``--jobs 1`` and the local executor (a model
    registered in-process is known there), else in ``--jobs`` workers (``executors.py``): the
    job's ``workers`` when it keeps them from stage to stage."""
    if job.parallel == 1 and job.executor == "local":
        run_steps(steps, job.root, threads=job.threads)
        return
    executors.run_parallel(
        steps, job.root, jobs=job.parallel, threads=job.threads,
        logs=job.results / "logs" / name, cluster=job.cluster(), stage=name, workers=workers,
    )  # fmt: skip


def job_workers(job: Job) -> contextlib.AbstractContextManager[executors.LocalBackend | None]:
    """The local workers every stage of ``job`` shares (``--jobs`` > 1, local executor), else
    none."""
    if job.parallel > 1 and job.executor == "local":
        return executors.local_workers(job.threads)
    return contextlib.nullcontext()


def state_path(job: Job) -> Path:
    """``<results>/reproduce.json`` for the paper's experiments; another set of experiments keeps
    its own (``reproduce-exp4.json``, ``reproduce-exp5.json``), so running experiment 4 or 5 does
    not undo experiments 1–3."""
    if job.experiments == (1, 2, 3):
        return job.results / "reproduce.json"
    return job.results / f"reproduce-exp{''.join(map(str, job.experiments))}.json"


def _fresh(step: Any) -> Any:
    """A fresh stage starts its training runs over instead of resuming them."""
    if isinstance(step, training.TrainSettings):
        return dataclasses.replace(step, resume=False, overwrite=True)
    return step


def reproduce(job: Job, start: str | None = None, stop: str | None = None) -> State:
    """Run the stages in order, skipping those already done with the same settings; the resolved
    job goes to ``<results>/reproduce.settings.toml``."""
    job = job.resolved(job.root)
    start, stop = start or job.start, stop or job.stop
    names = list(STAGES)
    checkpoints.announce_device(job.device)  # one line; a missing GPU is an error before any stage
    settings.write(job, job.results / "reproduce.settings.toml", "reproduce")
    state = State.load(state_path(job), job.fingerprint())
    first = names.index(start) if start else None
    last = names.index(stop) if stop else len(names) - 1
    t_job = time.perf_counter()
    with job_workers(job) as workers:
        _run_stages(job, state, names, first, last, workers)
    total = sum(s.get("seconds", 0) for s in state.stages.values())
    print(
        f"\nreproduce ({job.preset}, {job.source}) finished: this run {time.perf_counter() - t_job:.0f} s, "
        f"all stages {total:.0f} s; report in {job.results / 'README.md'}"
    )
    return state


def _run_stages(
    job: Job,
    state: State,
    names: list[str],
    first: int | None,
    last: int,
    workers: executors.LocalBackend | None,
) -> None:
    """The stages ``names[: last + 1]`` of ``reproduce``, in order (see there)."""
    for i, name in enumerate(names[: last + 1]):
        if state.done(name) and (first is None or i < first):
            print(f"== {name}: done earlier in {state.stages[name]['seconds']:.0f} s, skipped")
            continue
        print(f"\n== {name}", flush=True)
        resuming = state.stages.get(name, {}).get("status") in ("running", "interrupted")
        state.stages[name] = {"status": "running"}
        state.save()
        t0 = time.perf_counter()
        steps = STAGES[name](job)
        steps = steps if resuming else [_fresh(s) for s in steps]
        try:
            run_stage(job, name, steps, workers)
        except Interrupted as e:  # SIGTERM/SIGINT: a re-run resumes this stage
            state.stages[name] = {"status": "interrupted", "signal": e.signal_name}
            state.save()
            detail = f"in stage {name}" + (f" {e.detail}" if e.detail else "")
            raise Interrupted(e.signum, detail) from e
        state.stages[name] = {
            "status": "done",
            "seconds": round(time.perf_counter() - t0, 1),
            "commands": [settings.shell(stages.command_line(s, job.root)) for s in steps],
        }
        state.save()
        if first is not None and i >= first:
            # a re-run stage invalidates the later ones
            for later in names[i + 1 :]:
                state.stages.pop(later, None)
            state.save()


def run(job: Job, catalog: Catalog) -> State:
    """The ``reproduce`` stage: the job on ``catalog``'s data root; a custom glacier's report goes
    beside, not over, the paper's (``<results>/<glacier>/``)."""
    if job.glacier not in (None, "parvati") and job.results == Path("results"):
        name = config.get_glacier(job.glacier, catalog.root).name
        job = dataclasses.replace(job, results=job.results / name)
    return reproduce(dataclasses.replace(job, root=catalog.root))


# ------------------------------------------------------------------------- experiment scripts
@dataclass(frozen=True)
class ScriptSettings:
    """Run one step of an experiment (the same commands `reproduce` runs).

    The settings of the experiment scripts of experiment2/ and experiment3/; each script's
    config file (beside it) gives the defaults.
    """

    preset: str = option("demo", help="paper, demo or tiny")
    device: str | None = device_option()
    wandb: str = wandb_option()
    seed: int = option(0, help="seed of training and bootstrap")


def experiment_step(
    stage: Callable[[Job], list[Any]], *commands: str
) -> Callable[[ScriptSettings, Catalog], None]:
    """The stage function of an experiment script: the steps of ``stage`` whose command is one
    of ``commands``, for the script's settings."""

    def run_script(s: ScriptSettings, catalog: Catalog) -> None:
        job = Job(
            preset=s.preset, root=catalog.root, seed=s.seed, wandb=s.wandb, device=s.device
        ).resolved(catalog.root)
        steps = [st for st in stage(job) if stages.command_of(st).name in commands]
        run_steps(steps, catalog.root)

    return run_script
