"""`glacier-movement reproduce`: the main job, every stage of the three experiments in order.

The job is a list of stages; each stage is a list of the same commands a user would type (so the
README's commands and the job cannot drift apart), run in-process. A stage that finished with the
same settings is skipped on a re-run (state in ``<results>/reproduce.json``); ``--from STAGE``
runs that stage and every later one again. A killed job resumes: every command writes its outputs
atomically, and a training run that was cut short continues from its last checkpoint. SIGTERM or
SIGINT stops the running stage (a training run after its current step, with a checkpoint at that
step), records it as ``interrupted``, and a re-run resumes it.

Experiments (docs/evaluation.md):
1. Parvati: the four models (and persistence), test scores for the paper and strict splits with
   bootstrap intervals, full-scene predictions, optical flow scored against the true motion;
2. transfer to Aletsch: the experiment-1 SA-LSTM before and after fine-tuning on Aletsch;
3. mixed training: SA-LSTM from scratch on Parvati + Aletsch training sequences (both test sets
   excluded), tested on the Parvati test sequences and the Aletsch full scenes.
"""

from __future__ import annotations

import argparse
import json
import shlex
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import config
from .errors import GlacierError
from .io import atomic_path
from .presets import Preset, get_preset
from .signals import Interrupted

#: The four models of the paper, in the paper's table order.
MODELS = ("salstm", "lstm", "convlstm", "unet")
#: Experiment 4 (the motion benchmark, beyond the paper): the four and SimVP.
EXP4_MODELS = (*MODELS, "simvp")
#: Experiment 4's glacier: Parvati's configuration, synthesized in the motion regime.
MOTION_GLACIER = "parvati" + config.MOTION
SOURCES = ("synthetic", "planetary-computer")


@dataclass(frozen=True)
class Job:
    """Settings of one reproduction (plain data; every field is a command-line option)."""

    preset: str = "demo"
    source: str = "synthetic"
    root: Path = Path("data")
    results: Path = Path("results")
    years: str = "2013-2021"
    seed: int = 0
    bootstrap: int = 1000
    #: models trained again on the strict split (leak-free test scores); all four with "all"
    strict_models: tuple[str, ...] = ("salstm",)
    #: training seeds of every experiment-1 model (seed, seed + 1, …)
    seeds: int = 3
    #: held-out synthetic glaciers (Parvati's configuration, other seeds) scored but never trained on
    heldout: int = 6
    #: also train the ``+clim`` variant of every model (climatology in, departures out)
    clim_variants: bool = True
    wandb: str = "offline"
    device: str | None = None
    glaciers: tuple[str, ...] = ("parvati", "aletsch")
    #: experiment 1's glacier (``reproduce --glacier NAME`` runs experiment 1 on any glacier)
    glacier: str = "parvati"
    #: which experiments to run: 1–3 (the paper's) and/or 4 (the motion benchmark)
    experiments: tuple[int, ...] = (1, 2, 3)

    @property
    def settings(self) -> Preset:
        return get_preset(self.preset)

    def fingerprint(self) -> dict:
        """What a finished stage depends on: change any of it and the stages run again."""
        d = {k: v for k, v in asdict(self).items() if k != "device"}
        return json.loads(json.dumps(d, default=str))  # as stored: tuples → lists, paths → str


# ------------------------------------------------------------------------------- run names
def run_name(
    experiment: int,
    model: str,
    preset: str,
    split: str = "paper",
    seed_index: int = 0,
    glacier: str = "parvati",
) -> str:
    """Training runs under ``<root>/models/`` (also the labels of their outputs), named as
    ``glacier-movement train`` names them: ``salstm-parvati-demo``, ``…-strict``,
    ``salstm-aletsch-demo-finetuned`` (experiment 2), ``salstm-parvati+aletsch-demo`` (3); ``model``
    may carry ``+clim``; the k-th extra seed adds ``-seed<k>``."""
    from .training import default_run_name

    glaciers = {1: [glacier], 2: ["aletsch"], 3: ["parvati", "aletsch"], 4: [MOTION_GLACIER]}[
        experiment
    ]
    name = default_run_name(model, glaciers, preset, split, finetuned=experiment == 2)
    return name + (f"-seed{seed_index}" if seed_index else "")


def variants(job: Job) -> list[str]:
    """Experiment-1 model labels: the four models, then their ``+clim`` variants."""
    return [*MODELS, *([f"{m}+clim" for m in MODELS] if job.clim_variants else [])]


def heldout_glaciers(job: Job, base: str | None = None) -> list[str]:
    """The held-out glaciers of the job (synthetic data only)."""
    if job.source != "synthetic":
        return []
    return [config.heldout_name(base or job.glacier, k) for k in range(1, job.heldout + 1)]


def motion_glaciers(job: Job) -> list[str]:
    """Experiment 4's glaciers: the motion-regime Parvati and its held-out replicates."""
    if 4 not in job.experiments or job.source != "synthetic":
        return []
    return [MOTION_GLACIER, *heldout_glaciers(job, MOTION_GLACIER)]


def data_glaciers(job: Job) -> list[str]:
    paper = [*job.glaciers, *heldout_glaciers(job)] if _paper(job) else []
    return [*paper, *motion_glaciers(job)]


def _paper(job: Job) -> bool:
    return bool({1, 2, 3} & set(job.experiments))


def exp4_runs(job: Job) -> list[Run]:
    """Experiment 4: the five models on the motion-regime glacier at every seed."""
    if 4 not in job.experiments:
        return []
    return [
        Run(m, "paper", k, run_name(4, m, job.preset, seed_index=k))
        for m in EXP4_MODELS
        for k in range(job.seeds)
    ]


def scene_label(experiment: int, what: str, preset: str) -> str:
    """Labels of the Aletsch full-scene predictions of experiments 2 and 3."""
    return f"exp{experiment}-{what}-{preset}"


@dataclass(frozen=True)
class Run:
    """One experiment-1 training run: model label (``salstm``, ``salstm+clim``), split, seed
    index (0 … seeds − 1) and run name."""

    model: str
    split: str
    seed_index: int
    name: str


def exp1_runs(job: Job) -> list[Run]:
    """Every experiment-1 training run: each variant at every seed (paper split), then the
    strict-split runs (first seed)."""
    if 1 not in job.experiments:
        return []
    runs = [
        Run(m, "paper", k, run_name(1, m, job.preset, seed_index=k, glacier=job.glacier))
        for m in variants(job)
        for k in range(job.seeds)
    ]
    runs += [
        Run(m, "strict", 0, run_name(1, m, job.preset, "strict", glacier=job.glacier))
        for m in MODELS
        if m in job.strict_models
    ]
    return runs


# ----------------------------------------------------------------------------------- stages
Command = list[str]


def _common(job: Job) -> list[str]:
    return ["--data-root", str(job.root)]


def _train(
    job: Job, model: str, glaciers: list[str], run: str, split: str, *extra: str, seed: int = 0
) -> Command:
    base, clim = model.removesuffix("+clim"), model.endswith("+clim")
    cmd = ["train", "--model", base, "--preset", job.preset, "--split", split, "--run-name", run]
    cmd += ["--climatology-input"] if clim else []
    for g in glaciers:
        cmd += ["--glacier", g]
    cmd += ["--wandb", job.wandb, "--seed", str(job.seed + seed), "--resume", *extra]
    return cmd + (["--device", job.device] if job.device else [])


def _device(job: Job) -> list[str]:
    return ["--device", job.device] if job.device else []


def stage_data(job: Job) -> list[Command]:
    if job.source == "synthetic":
        size = job.settings.scene_size or {}
        return [
            ["synthesize", "--glacier", g, "--years", job.years, "--seed", str(job.seed + k)]
            # a custom glacier's synthetic stand-in takes the preset's Parvati size
            + (["--size", *map(str, size.get(base, size.get("parvati")))] if size else [])
            + (["--regime", "motion"] if g in motion_glaciers(job) else [])
            for k, g in enumerate(data_glaciers(job))
            for base in [g.split(config.HELDOUT)[0].removesuffix(config.MOTION)]
        ]
    return [["acquire", "--glacier", g, "--years", job.years] for g in job.glaciers]


def stage_preprocess(job: Job) -> list[Command]:
    return [["preprocess", "--glacier", g] for g in data_glaciers(job)]


def stage_sequences(job: Job) -> list[Command]:
    glaciers = [*(job.glaciers if _paper(job) else ()), *motion_glaciers(job)[:1]]
    return [["sequences", "--glacier", g, "--preset", job.preset] for g in glaciers]


def stage_train(job: Job) -> list[Command]:
    return [
        _train(job, r.model, [job.glacier], r.name, r.split, seed=r.seed_index)
        for r in exp1_runs(job)
    ] + [
        _train(job, r.model, [MOTION_GLACIER], r.name, r.split, seed=r.seed_index)
        for r in exp4_runs(job)
    ]


def stage_test(job: Job) -> list[Command]:
    """Every experiment-1 run on the Parvati test sequences, and on each held-out glacier's
    (the report pools those with clustered intervals: no per-run bootstrap there)."""
    boot = ["--bootstrap", str(job.bootstrap), "--seed", str(job.seed)]
    cmds = [
        [
            "test",
            "--run",
            r.name,
            "--glacier",
            job.glacier,
            "--split",
            r.split,
            *boot,
            *_device(job),
        ]
        for r in exp1_runs(job)
    ]
    cmds += [
        ["test", "--run", r.name, "--glacier", g, "--bootstrap", "0", *_device(job)]
        for g in heldout_glaciers(job)
        for r in exp1_runs(job)
        if r.split == "paper"
    ]
    cmds += [  # experiment 4: scores and the motion in the forecasts (tuned Farneback)
        ["test", "--run", r.name, "--glacier", g, "--flow", "tuned", *boot, *_device(job)]
        for g in motion_glaciers(job)
        for r in exp4_runs(job)
    ]
    return cmds


def stage_infer(job: Job) -> list[Command]:
    return [
        ["infer", "--run", _exp1(job, m), "--glacier", job.glacier, *_device(job)]
        for m in variants(job)
        if 1 in job.experiments
    ] + [
        ["infer", "--run", run_name(4, m, job.preset), "--glacier", MOTION_GLACIER, *_device(job)]
        for m in EXP4_MODELS
        if 4 in job.experiments
    ]


def stage_flow(job: Job) -> list[Command]:
    return [
        ["flow", "--run", _exp1(job, m), "--glacier", job.glacier, *_device(job)]
        for m in MODELS
        if 1 in job.experiments
    ]


def _exp1(job: Job, model: str) -> str:
    """Experiment 1's first-seed run of ``model``."""
    return run_name(1, model, job.preset, glacier=job.glacier)


def _pretrained(job: Job) -> str:
    return str(job.root / "models" / run_name(1, "salstm", job.preset) / "last.pt")


def stage_experiment2(job: Job) -> list[Command]:
    if 2 not in job.experiments:
        return []
    before, after = (scene_label(2, w, job.preset) for w in ("before", "after"))
    return [
        _train(
            job,
            "salstm",
            ["aletsch"],
            run_name(2, "salstm", job.preset),
            "paper",
            "--init-from",
            _pretrained(job),
        ),
        [
            "infer",
            "--run",
            run_name(1, "salstm", job.preset),
            "--glacier",
            "aletsch",
            "--name",
            before,
            *_device(job),
        ],
        [
            "infer",
            "--run",
            run_name(2, "salstm", job.preset),
            "--glacier",
            "aletsch",
            "--name",
            after,
            *_device(job),
        ],
        [
            "flow",
            "--run",
            run_name(2, "salstm", job.preset),
            "--glacier",
            "aletsch",
            "--name",
            after,
            *_device(job),
        ],
        [
            "scene-scores",
            "--glacier",
            "aletsch",
            "--scenes",
            before,
            after,
            "--name",
            f"exp2-{job.preset}",
        ],
    ]


def stage_experiment3(job: Job) -> list[Command]:
    if 3 not in job.experiments:
        return []
    run = run_name(3, "salstm", job.preset)
    boot = ["--bootstrap", str(job.bootstrap), "--seed", str(job.seed)]
    aletsch = scene_label(3, "mixed", job.preset)
    earlier = [scene_label(2, w, job.preset) for w in ("before", "after")]
    return [
        _train(job, "salstm", ["parvati", "aletsch"], run, "paper"),
        ["test", "--run", run, "--glacier", "parvati", "--split", "paper", *boot, *_device(job)],
        ["infer", "--run", run, "--glacier", "aletsch", "--name", aletsch, *_device(job)],
        [
            "scene-scores", "--glacier", "aletsch", "--name", f"exp3-{job.preset}",
            "--scenes", *earlier, aletsch,
        ],
    ]  # fmt: skip


def stage_report(job: Job) -> list[Command]:
    return [
        ["loss-curves"],
        [
            "report", "--results", str(job.results), "--preset", job.preset,
            "--source", job.source, "--bootstrap", str(job.bootstrap),
            "--seeds", str(job.seeds), "--heldout", str(len(heldout_glaciers(job))),
            "--clim-variants" if job.clim_variants else "--no-clim-variants",
            "--strict-models", ",".join(job.strict_models) or "none",
            "--experiments", ",".join(map(str, job.experiments)),
            "--glacier", job.glacier,
        ],
    ]  # fmt: skip


STAGES: dict[str, Callable[[Job], list[Command]]] = {
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


def _announce(argv: Command, job: Job, *extra: str) -> Command:
    """The full command line of ``argv`` for ``job`` (data root added), printed as a user types it."""
    full = [argv[0], *_common(job), *argv[1:], *extra]
    print(f"\n$ glacier-movement {shlex.join(full)}", flush=True)
    return full


def _execute(argv: Command, job: Job) -> None:
    """Run one CLI command in-process; its errors propagate (the stage stops, state is kept)."""
    from .cli import build_parser, run_command

    full = _announce(argv, job)
    args = build_parser().parse_args(full)
    rc = run_command(args)  # with the locks the command takes on the command line
    if rc:
        raise GlacierError(f"`glacier-movement {shlex.join(full)}` exited with {rc}; see above")


def state_path(job: Job) -> Path:
    """``<results>/reproduce.json`` for the paper's experiments; another set of experiments keeps
    its own (``reproduce-exp4.json``), so running experiment 4 does not undo experiments 1–3."""
    if job.experiments == (1, 2, 3):
        return job.results / "reproduce.json"
    return job.results / f"reproduce-exp{''.join(map(str, job.experiments))}.json"


def reproduce(job: Job, start: str | None = None, stop: str | None = None) -> State:
    """Run the stages in order, skipping those already done with the same settings."""
    names = list(STAGES)
    for s in (start, stop):
        if s is not None and s not in STAGES:
            raise GlacierError(f"unknown stage {s!r}: choose one of {', '.join(names)}")
    from .training import announce_device

    announce_device(job.device)  # one line; a missing GPU is an error before any stage runs
    state = State.load(state_path(job), job.fingerprint())
    first = names.index(start) if start else None
    last = names.index(stop) if stop else len(names) - 1
    t_job = time.perf_counter()
    for i, name in enumerate(names[: last + 1]):
        if state.done(name) and (first is None or i < first):
            print(f"== {name}: done earlier in {state.stages[name]['seconds']:.0f} s, skipped")
            continue
        print(f"\n== {name}", flush=True)
        resuming = state.stages.get(name, {}).get("status") in ("running", "interrupted")
        state.stages[name] = {"status": "running"}
        state.save()
        t0 = time.perf_counter()
        commands = STAGES[name](job)
        if not resuming:  # a fresh stage starts its training runs over instead of resuming them
            commands = [[("--overwrite" if a == "--resume" else a) for a in c] for c in commands]
        try:
            for argv in commands:
                _execute(argv, job)
        except Interrupted as e:  # SIGTERM/SIGINT: a re-run resumes this stage
            state.stages[name] = {"status": "interrupted", "signal": e.signal_name}
            state.save()
            detail = f"in stage {name}" + (f" {e.detail}" if e.detail else "")
            raise Interrupted(e.signum, detail) from e
        state.stages[name] = {
            "status": "done",
            "seconds": round(time.perf_counter() - t0, 1),
            "commands": [shlex.join(["glacier-movement", *c]) for c in commands],
        }
        state.save()
        if first is not None and i >= first:
            # a re-run stage invalidates the later ones
            for later in names[i + 1 :]:
                state.stages.pop(later, None)
            state.save()
    total = sum(s.get("seconds", 0) for s in state.stages.values())
    print(
        f"\nreproduce ({job.preset}, {job.source}) finished: this run {time.perf_counter() - t_job:.0f} s, "
        f"all stages {total:.0f} s; report in {job.results / 'README.md'}"
    )
    return state


# ------------------------------------------------------------------------- experiment scripts
def run_script(
    doc: str | None,
    commands: Callable[[Job], list[Command]],
    default_preset: str,
    argv: list[str] | None = None,
) -> int:
    """Entry point of the scripts of ``experiment2/`` and ``experiment3/``: run the commands of one
    step of the job (the same commands ``reproduce`` runs) with ``--preset``, ``--data-root``,
    ``--device`` and ``--wandb`` from the command line. Stops at the first failing command."""
    import sys

    from .cli import OneLineParser, main

    p = OneLineParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--preset", default=default_preset, help=f"paper, demo or tiny (default {default_preset})"
    )
    p.add_argument(
        "--data-root", default=None, metavar="DIR", help="default $GLACIER_DATA_ROOT or ./data"
    )
    p.add_argument(
        "--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available)"
    )
    p.add_argument("--wandb", choices=("online", "offline", "disabled"), default="offline")
    p.add_argument("--seed", type=int, default=0, help="seed of training and bootstrap")
    p.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    job = Job(
        preset=args.preset,
        root=config.data_root(args.data_root),
        seed=args.seed,
        wandb=args.wandb,
        device=args.device,
    )
    for cmd in commands(job):
        rc = main(_announce(cmd, job, *(["--debug"] if args.debug else [])))
        if rc:
            return rc
    return 0


def select(stage: Callable[[Job], list[Command]], *names: str) -> Callable[[Job], list[Command]]:
    """The commands of ``stage`` whose subcommand is one of ``names``, in order."""
    return lambda job: [c for c in stage(job) if c[0] in names]


# --------------------------------------------------------------------------------------- CLI
def register(sub, common) -> None:
    p = sub.add_parser(
        "reproduce",
        parents=[common],
        help="the main job: all three experiments end to end, resumable",
        description=(
            "Run every stage of the three experiments in order: "
            + " → ".join(STAGES)
            + ". Synthetic glaciers by default (no network, no account); "
            "--source planetary-computer downloads real Landsat-8 scenes instead. Finished stages "
            "are skipped on a re-run; --from STAGE runs that stage and all later ones again. "
            "Ends with <results>/README.md and <results>/results.csv."
        ),
    )
    p.add_argument(
        "--preset", default="demo", help="paper (GPU), demo (2-core CPU, minutes) or tiny (tests)"
    )
    p.add_argument(
        "--source", choices=SOURCES, default="synthetic", help="where the scenes come from"
    )
    p.add_argument(
        "--results", default="results", metavar="DIR", help="report folder (default ./results)"
    )
    p.add_argument("--years", default="2013-2021", help="years of scenes (default 2013-2021)")
    p.add_argument("--seed", type=int, default=0, help="seed of data, training and bootstrap")
    p.add_argument(
        "--bootstrap",
        type=int,
        default=1000,
        metavar="N",
        help="bootstrap resamples (default 1000)",
    )
    p.add_argument(
        "--strict-models",
        default="salstm",
        metavar="LIST",
        help="comma-separated models also trained on the strict (leak-free) split; 'all' or 'none' (default salstm)",
    )
    p.add_argument(
        "--seeds",
        type=int,
        default=None,
        metavar="N",
        help="training seeds of every experiment-1 model (default: 3; tiny preset 1)",
    )
    p.add_argument(
        "--heldout",
        type=int,
        default=None,
        metavar="N",
        help="held-out synthetic glaciers scored but never trained on (default: 6; tiny 1; "
        "none with --source planetary-computer)",
    )
    p.add_argument(
        "--glacier",
        default=None,
        metavar="NAME",
        help="run experiment 1 (models, baselines, scores, full scenes, flow, report) on this "
        "glacier instead: a name added with `glacier add` or a .toml path (default: the paper's "
        "three experiments on parvati and aletsch)",
    )
    p.add_argument(
        "--experiments",
        default="1,2,3",
        metavar="LIST",
        help="comma-separated experiments to run: 1-3 are the paper's (default 1,2,3); 4 is the "
        "motion benchmark (beyond the paper: the five models on a motion-regime glacier)",
    )
    p.add_argument(
        "--clim-variants",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also train every model's +clim variant (climatology in, departures out; default on)",
    )
    p.add_argument("--wandb", choices=("online", "offline", "disabled"), default="offline")
    p.add_argument(
        "--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available)"
    )
    p.add_argument(
        "--from",
        dest="start",
        default=None,
        metavar="STAGE",
        help="run this stage and all later ones again",
    )
    p.add_argument(
        "--until", dest="stop", default=None, metavar="STAGE", help="stop after this stage"
    )
    p.set_defaults(func=run)


def _strict_models(text: str) -> tuple[str, ...]:
    if text == "all":
        return MODELS
    if text in ("none", ""):
        return ()
    models = tuple(m.strip() for m in text.split(","))
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise GlacierError(
            f"unknown model(s) {unknown} in --strict-models: use {', '.join(MODELS)}, all or none"
        )
    return models


def _count(value: int | None, default: int, flag: str, least: int) -> int:
    if value is None:
        return default
    if value < least:
        raise GlacierError(f"{flag} must be at least {least}, got {value}")
    return value


def parse_experiments(text: str) -> tuple[int, ...]:
    """``1,2,3`` → (1, 2, 3); each of 1–4, at least one."""
    try:
        out = tuple(sorted({int(t) for t in text.split(",") if t.strip()}))
    except ValueError:
        out = ()
    if not out or not set(out) <= {1, 2, 3, 4}:
        raise GlacierError(f"--experiments {text!r}: give a comma-separated list of 1, 2, 3, 4")
    if (2 in out or 3 in out) and 1 not in out or (3 in out and 2 not in out):
        raise GlacierError(
            "experiment 2 builds on experiment 1's models and 3 on both: run 1,2,3 together "
            "(--experiments 1,2,3), with or without 4"
        )
    return out


def run(args: argparse.Namespace) -> int:
    experiments = parse_experiments(args.experiments)
    glacier = "parvati"
    if args.glacier is not None:
        glacier = config.get_glacier(args.glacier, args.data_root).name
        if experiments != (1, 2, 3) and experiments != (1,):
            raise GlacierError(
                "--glacier runs experiment 1 on that glacier: drop --experiments (2 and 3 are "
                "the paper's Aletsch experiments, 4 the motion benchmark)"
            )
        experiments = (1,)
    get_preset(args.preset)  # fail fast on a bad preset
    config.parse_years(args.years)
    job = Job(
        preset=args.preset,
        source=args.source,
        root=config.data_root(args.data_root),
        # a custom glacier's report goes beside, not over, the paper's
        results=Path(args.results)
        / (glacier if args.glacier and args.results == "results" else ""),
        years=args.years,
        seed=args.seed,
        bootstrap=args.bootstrap,
        strict_models=_strict_models(args.strict_models),
        experiments=experiments,
        glacier=glacier,
        glaciers=(glacier,) if args.glacier is not None else ("parvati", "aletsch"),
        seeds=_count(
            args.seeds, 3 if args.preset != "tiny" and 1 in experiments else 1, "--seeds", 1
        ),
        heldout=_count(args.heldout, 1 if args.preset == "tiny" else 6, "--heldout", 0),
        clim_variants=args.clim_variants,
        wandb=args.wandb,
        device=args.device,
    )
    reproduce(job, args.start, args.stop)
    return 0
