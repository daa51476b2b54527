"""`reproduce --jobs N`: a stage's independent runs in worker processes, with the same numbers.

The tiny job runs twice (``--jobs 1`` in-process, shared with tests/test_reproduce.py through the
``tiny_run`` fixture, and ``--jobs 2`` in two local workers) and the two must give byte-identical
results.csv and results_per_seed.csv. The failure
path, SIGTERM → resume and the dependency order run on the data those runs left. The SLURM and
dask executors' end-to-end runs carry the ``cluster`` marker (``.ci/run`` runs them when a
SLURM daemon can start: ``scripts/start_slurm.sh``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from glacier_movement import evaluation
from glacier_movement.checkpoints import load_checkpoint
from glacier_movement.cli import executors, main
from glacier_movement.cli.reproduce import (
    Job,
    exp3_training,
    reproduce,
    stage_experiment2,
    stage_experiment3,
    stage_train,
)
from glacier_movement.cli.stages import command_of
from glacier_movement.errors import GlacierError
from glacier_movement.models import ModelsSettings
from glacier_movement.training import TrainSettings
from tests.helpers import tiny_job

REPO = Path(__file__).resolve().parents[1]
OUTPUTS = ("results.csv", "results_per_seed.csv")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _weights(root: Path) -> dict[str, dict[str, torch.Tensor]]:
    return {
        p.parent.name: load_checkpoint(p)["model"] for p in sorted(root.glob("models/*/last.pt"))
    }


def _same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        a[r].keys() == b[r].keys() and all(torch.equal(a[r][k], b[r][k]) for k in a[r]) for r in a
    )


@pytest.fixture(scope="module")
def serial(tiny_run):
    """The tiny job with --jobs 1 (every step in this process; shared with test_reproduce.py)."""
    return tiny_run[0]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, request):
    """The tiny job with --jobs 1 and with --jobs 2 (two local workers): {1: job, 2: job}."""
    job = tiny_job(tmp_path_factory.mktemp("jobs2"), 2)
    reproduce(job)
    # --jobs 1 after: under xdist another worker may be running it for test_reproduce.py meanwhile
    return {1: request.getfixturevalue("serial"), 2: job}


def test_jobs_1_and_2_give_identical_results(runs):
    for name in OUTPUTS:
        assert _sha(runs[1].results / name) == _sha(runs[2].results / name), name
    assert _same_weights(_weights(runs[1].root), _weights(runs[2].root))
    # the same commands, stage by stage; each worker's output in its log
    states = [json.loads((runs[n].results / "reproduce.json").read_text()) for n in (1, 2)]
    for name, stage in states[1]["stages"].items():
        assert stage["status"] == "done"
        commands = [c.replace(str(runs[2].root.parent), "BASE") for c in stage["commands"]]
        assert commands == [
            c.replace(str(runs[1].root.parent), "BASE")
            for c in states[0]["stages"][name]["commands"]
        ]
    logs = sorted((runs[2].results / "logs" / "train").glob("*.log"))
    assert logs and all(p.read_text().startswith("$ glacier-movement train ") for p in logs)
    # --jobs and the executor are not in the fingerprint; --threads is
    assert "threads" in states[0]["fingerprint"] and "jobs" not in states[0]["fingerprint"]


def test_dependencies_keep_training_before_its_readers(runs):
    """A fine-tuning run waits for nothing of its stage; its inference, flow and the scene scores
    wait for it; a summary waits for every earlier step."""
    job = runs[2]
    steps = stage_experiment2(job)
    names = [command_of(s).name for s in steps]
    assert names == ["train", "infer", "infer", "flow", "scene-scores"]
    deps = executors.dependencies(steps)
    assert deps[0] == set() and deps[1] == set()  # infer "before" reads experiment 1's run
    assert deps[2] == {0} and 0 in deps[3] and 2 in deps[3] and deps[4] == {0, 1, 2, 3}
    # experiment 3's run trains in the train stage (beside the others); its readers come after
    steps3 = stage_experiment3(job)
    assert [command_of(s).name for s in steps3] == ["test", "infer", "scene-scores"]
    assert executors.dependencies(steps3) == [set(), set(), {0, 1}]
    assert [s.run_name for s in exp3_training(job)] == [
        s.run_name for s in stage_train(job) if "+aletsch" in str(s.run_name)
    ]
    # and in the --jobs 2 run, the fine-tuning finished before its inference started
    logs = runs[2].results / "logs" / "experiment2"
    train, after = sorted(logs.glob("1-*.log"))[0], sorted(logs.glob("3-*.log"))[0]
    assert train.stat().st_mtime <= after.stat().st_mtime


def test_a_failed_run_stops_the_stage_with_its_one_line_error(runs, tmp_path):
    """One step fails (a test of a run that does not exist); a training run beside it is stopped
    with a checkpoint or finishes; the error is the failed step's own line."""
    job = runs[2]
    train = TrainSettings(
        glacier=("parvati",), model="lstm", preset="tiny", run_name="jobs-failure-test",
        wandb="disabled", device="cpu", max_steps=4000,
    )  # fmt: skip
    bad = evaluation.TestSettings(run="no-such-run", glacier="parvati", device="cpu")
    with executors.local_workers(threads=1) as workers:
        # the job's workers are up before its stage: the stop reaches the run, not an import
        # that has yet to set the run's signal handlers (then SIGTERM just ends the process)
        warm = [ModelsSettings(preset="tiny"), ModelsSettings(preset="tiny")]
        executors.run_parallel(
            warm, job.root, jobs=2, threads=1, logs=tmp_path / "warm", workers=workers
        )
        with pytest.raises(GlacierError) as e:
            executors.run_parallel(
                [train, bad], job.root, jobs=2, threads=1, logs=tmp_path / "logs", stage="test",
                workers=workers,
            )  # fmt: skip
    msg = str(e.value)
    assert len(msg.splitlines()) == 1
    assert msg.startswith("test no-such-run failed: glacier-movement test: error:")
    train_log = next((tmp_path / "logs").glob("1-*.log")).read_text()
    assert "stopped by SIGTERM" in train_log or "checkpoints in" in train_log
    # stopped or finished, the run let its lock go
    assert not (job.root / "models" / "jobs-failure-test" / ".lock").exists()


def _reproduce_cli(job: Job, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "glacier_movement", "reproduce", "--data-root", str(job.root),
        "--results", str(job.results), "--preset", "tiny", "--bootstrap", "200", "--wandb",
        "disabled", "--seeds", "1", "--heldout", "1", *extra,
    ]  # fmt: skip


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}


@pytest.mark.timeout(900)
def test_sigterm_stops_the_workers_and_a_rerun_resumes_with_the_same_results(runs, tmp_path):
    """SIGTERM to the job during training: each worker's run checkpoints, the stage is recorded
    interrupted (exit 143), and the re-run finishes with the weights of the uninterrupted run."""
    src = runs[2]
    job = tiny_job(tmp_path, 2)
    shutil.copytree(src.root, job.root, ignore=shutil.ignore_patterns("models", ".lock"))
    shutil.copytree(src.results, job.results, ignore=shutil.ignore_patterns("logs"))
    argv = _reproduce_cli(job, "--jobs", "2", "--from", "train", "--until", "train")
    proc = subprocess.Popen(argv, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    logs = job.results / "logs" / "train"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        texts = [p.read_text(errors="replace") for p in logs.glob("*.log")] if logs.exists() else []
        if len(texts) >= 3 and any("step/s" in t for t in texts[2:]):
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=300)
    assert proc.returncode == 143, err.decode()[-2000:]
    assert "stopped by SIGTERM in stage train" in err.decode()
    state = json.loads((job.results / "reproduce.json").read_text())
    assert state["stages"]["train"]["status"] == "interrupted"
    stopped = [p for p in logs.glob("*.log") if "stopped by SIGTERM" in p.read_text()]
    assert stopped, "no training run was stopped at a checkpoint"
    assert not list(job.root.glob("models/*/.lock"))  # every worker let its run go
    done = subprocess.run(
        _reproduce_cli(job, "--jobs", "2", "--until", "train"), env=_env(), capture_output=True
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    state = json.loads((job.results / "reproduce.json").read_text())
    assert state["stages"]["train"]["status"] == "done"
    mine, theirs = _weights(job.root), _weights(src.root)
    assert len(mine) >= 9  # the tiny job's training runs (experiment 1)
    assert _same_weights(mine, {run: theirs[run] for run in mine})


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--jobs", "0"], "--jobs must be at least 1, not 0"),
        (["--threads", "0"], "--threads must be at least 1, not 0"),
        (["--jobs", "two"], "--jobs"),
        (["--executor", "k8s"], "--executor"),
        (["--scheduler", "tcp://x:1"], "--scheduler is for --executor dask only"),
        (["--executor", "dask", "--scheduler", "nowhere"], "--scheduler must be a dask address"),
    ],
)
def test_bad_parallel_settings_are_one_line_errors(args, words, tmp_path, capsys):
    try:
        code = main(["reproduce", "--data-root", str(tmp_path), "--results", str(tmp_path), *args])
    except SystemExit as e:  # the parser's own errors (not an integer, not a choice)
        code = e.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err, err


def test_default_jobs_is_one_per_core():
    assert executors.default_jobs(1) == executors.usable_cores()
    assert executors.default_jobs(executors.usable_cores() * 2) == 1


def test_the_longest_runs_start_first_in_dependency_order():
    """Training before tests, the costlier model first, ties in list order; a step still waits
    for the steps it reads."""

    def train(model: str, name: str) -> TrainSettings:
        return TrainSettings(glacier=("parvati",), model=model, preset="tiny", run_name=name)

    steps = [
        evaluation.TestSettings(run="lstm-parvati-tiny", glacier="parvati"),
        train("lstm", "lstm-parvati-tiny"),
        evaluation.TestSettings(run="convlstm+clim-parvati-tiny", glacier="parvati"),
        train("convlstm", "convlstm-parvati-tiny"),
        train("lstm", "lstm-parvati-tiny-seed1"),
        evaluation.TestSettings(run="my-own-run", glacier="parvati"),  # unknown model: the least
    ]
    assert executors.start_order(steps) == [3, 1, 4, 2, 0, 5]
    assert executors.cost(steps[2]) == executors.MODEL_COST["convlstm"]
    assert executors.dependencies(steps)[0] == set()  # the test comes first in the list here
    assert executors.dependencies([steps[1], steps[0]])[1] == {0}


def test_a_jobs_workers_outlive_its_stages(tmp_path):
    """Workers shared by two stages: the second stage's steps run in the first stage's
    processes (no second start), which end with the job."""
    with executors.local_workers(threads=1) as workers:
        for stage in ("one", "two"):
            executors.run_parallel(
                [ModelsSettings(preset=p) for p in ("tiny", "demo", "paper")], tmp_path, jobs=2, threads=1,
                logs=tmp_path / stage, stage=stage, workers=workers,
            )  # fmt: skip
            if stage == "one":
                pids = sorted(w.proc.pid for w in workers.workers)
        assert len(pids) == 2 and sorted(w.proc.pid for w in workers.workers) == pids
        assert all(w.proc.poll() is None for w in workers.workers)
        procs = [w.proc for w in workers.workers]
    assert all(p.poll() is not None for p in procs)
    assert all("salstm" in p.read_text() for p in (tmp_path / "two").glob("*.log"))
    with pytest.raises(ValueError):  # shared workers are local workers of one thread count
        executors.run_parallel([], tmp_path, jobs=2, threads=2, logs=tmp_path, workers=workers)


# ------------------------------------------------------------------------------------ clusters
def _slurm_up() -> bool:
    if shutil.which("sinfo") is None:
        return False
    res = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30)
    return res.returncode == 0 and any(s in res.stdout for s in ("idle", "mixed", "allocated"))


@pytest.mark.cluster
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("executor", ["dask", "slurm"])
def test_cluster_executor_gives_the_local_results(executor, tmp_path, request):
    """The tiny job end to end on a real dask LocalCluster / the local SLURM daemon: the same
    results.csv as the local executor (one machine: pytest's temporary folder is "shared").
    The two are independent (own folders, own cluster): `make test-cluster` runs them at once."""
    if executor == "slurm" and not _slurm_up():
        pytest.skip("no SLURM daemon answers (scripts/start_slurm.sh starts one)")
    job = tiny_job(tmp_path, 2, executor=executor)
    reproduce(job)
    # the --jobs 1 run after: built once, by whichever of the two tests gets here first
    serial = request.getfixturevalue("serial")
    for name in OUTPUTS:
        assert _sha(job.results / name) == _sha(serial.results / name), name
