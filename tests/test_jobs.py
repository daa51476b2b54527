"""Independent steps in parallel (`reproduce --jobs N`, executors.py): order, failures, resume,
and the same numbers whatever the number of jobs or the executor."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest
import torch

from glacier_movement import config, evaluation, io, signals, training
from glacier_movement.checkpoints import load_checkpoint
from glacier_movement.errors import GlacierError
from glacier_movement.executors import (
    Cluster,
    dependencies,
    last_line,
    run_parallel,
    torch_threads,
)
from glacier_movement.reproduce import (
    Job,
    reproduce,
    run_steps,
    stage_experiment2,
    stage_experiment3,
    stage_test,
)
from glacier_movement.signals import Interrupted
from tests.helpers import frames_record
from tests.test_training import blob_frames

pytestmark = pytest.mark.usefixtures("one_thread")


# ------------------------------------------------------------------------------ dependencies
def _names(steps, deps, i):
    return sorted(
        getattr(steps[j], "run_name", None) or getattr(steps[j], "run", "") for j in deps[i]
    )


def test_fine_tuning_and_its_readers_wait_for_their_runs(tmp_path):
    job = Job(preset="tiny", root=tmp_path, seeds=1, heldout=1).resolved(tmp_path)
    exp2 = stage_experiment2(job)  # train (init-from exp1), infer before, infer after, flow, scores
    deps = dependencies(exp2)
    assert deps[0] == set()  # its parent is an earlier stage's run
    assert deps[1] == set()  # the exp-1 run before fine-tuning: ready at once
    assert deps[2] == {0}  # the fine-tuned run's inference waits for its training
    assert deps[3] == {0, 2}  # the flow of that scene waits for its inference too
    assert deps[4] == {0, 1, 2, 3}  # scene-scores summarises them all
    exp3 = stage_experiment3(job)  # train mixed, test, infer, scene-scores
    assert dependencies(exp3) == [set(), {0}, {0}, {0, 1, 2}]
    # the test stage: every run on every glacier at once
    assert all(d == set() for d in dependencies(stage_test(job)))


def test_init_from_a_run_folder_of_the_same_stage_waits_for_it(tmp_path):
    steps = [
        training.TrainSettings(glacier=("parvati",), model="lstm", run_name="parent"),
        training.TrainSettings(glacier=("parvati",), model="lstm", run_name="other"),
        training.TrainSettings(
            glacier=("aletsch",), model="lstm", run_name="child", init_from=str(tmp_path / "parent")
        ),
        evaluation.TestSettings(run="child", glacier="aletsch"),
    ]
    deps = dependencies(steps)
    assert deps == [set(), set(), {0}, {2}]
    assert _names(steps, deps, 3) == ["child"]


# ----------------------------------------------------------------------------- real runs
def _frames_root(root: Path) -> Path:
    fr = blob_frames(16, 40, seed=3)
    io.write_frames(config.Paths(root, "parvati").frames, frames_record(fr, "parvati"))
    return root


def _train_steps(epochs: int = 1, **kw) -> list[training.TrainSettings]:
    return [
        training.TrainSettings(
            glacier=("parvati",),
            model=m,
            preset="tiny",
            run_name=f"{m}-{seed}",
            seed=seed,
            epochs=epochs,
            wandb="disabled",
            device="cpu",
            progress=True,
            **kw,
        )  # fmt: skip
        for m, seed in (("salstm", 0), ("lstm", 1))
    ]


def _same_weights(a: Path, b: Path) -> bool:
    sa, sb = load_checkpoint(a)["model"], load_checkpoint(b)["model"]
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _all_same(a: Path, b: Path, steps) -> bool:
    return all(
        _same_weights(a / "models" / s.run_name / "last.pt", b / "models" / s.run_name / "last.pt")
        for s in steps
    )


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """Two tiny training runs one after another in this process, one thread (``--jobs 1``)."""
    root = _frames_root(tmp_path_factory.mktemp("serial"))
    with torch_threads(1):  # --threads 1, the job's default
        run_steps(_train_steps(), root)
    return root


def test_two_jobs_give_the_serial_runs_weights_and_logs_per_run(serial, tmp_path):
    root = _frames_root(tmp_path / "data")
    logs = tmp_path / "logs"
    run_parallel(_train_steps(), root, jobs=2, threads=1, logs=logs, stage="train")
    assert _all_same(serial, root, _train_steps())
    names = sorted(p.name for p in logs.glob("*.log"))
    assert names == ["1-train-salstm-0.log", "2-train-lstm-1.log"]
    text = (logs / names[0]).read_text()
    assert text.startswith("$ glacier-movement train --data-root")
    assert "device: cpu (1 CPU thread;" in text  # the run's own thread count, not the machine's
    assert last_line(logs / names[0])  # what the worker's line under the bar shows


def test_a_failing_step_stops_the_stage_with_its_one_line_error(tmp_path):
    root = _frames_root(tmp_path / "data")
    steps = [evaluation.TestSettings(run="missing", glacier="parvati"), *_train_steps(epochs=50)]
    t0 = time.perf_counter()
    with pytest.raises(GlacierError) as e:
        run_parallel(steps, root, jobs=2, threads=1, logs=tmp_path / "logs", stage="test")
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith("test missing failed: glacier-movement test: error: ")
    assert "(log: " in msg
    # the training run that was running beside it was stopped (a checkpoint), not run to the end
    assert time.perf_counter() - t0 < 120
    log = (tmp_path / "logs" / "2-train-salstm-0.log").read_text()
    # stopped at a checkpoint, or while its worker was still starting (nothing to save yet)
    assert "stopped by SIGTERM" in log or "step/s" not in log, log[-300:]
    assert "50 epochs in" not in log
    # the third step never started
    assert not (tmp_path / "logs" / "3-train-lstm-1.log").exists()


def test_sigterm_of_the_job_checkpoints_the_workers_and_a_rerun_resumes_to_the_same_weights(
    serial, tmp_path
):
    root = _frames_root(tmp_path / "data")
    logs = tmp_path / "logs"
    steps = _train_steps()
    started = [logs / "1-train-salstm-0.log", logs / "2-train-lstm-1.log"]

    def stop_when_training():  # SIGTERM to this process once both runs are past their start
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if all("step" in last_line(p) or "it/s" in last_line(p) for p in started):
                break
            time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=stop_when_training, daemon=True).start()
    with pytest.raises(Interrupted), signals.raising():
        run_parallel(steps, root, jobs=2, threads=1, logs=logs, stage="train")
    for p in started:
        assert "stopped by SIGTERM" in p.read_text(), p.read_text()[-500:]
    # the re-run resumes each run from its checkpoint: the same weights as without a stop
    resumed = [s.__class__(**{**s.__dict__, "resume": True}) for s in steps]
    run_parallel(resumed, root, jobs=2, threads=1, logs=logs, stage="train")
    assert "resum" in (logs / "1-train-salstm-0.log").read_text().lower()
    assert _all_same(serial, root, steps)


def test_dask_local_cluster_gives_the_serial_weights(serial, tmp_path):
    pytest.importorskip("dask.distributed")
    root = _frames_root(tmp_path / "data")
    run_parallel(
        _train_steps(), root, jobs=2, threads=1, logs=tmp_path / "logs",
        cluster=Cluster(executor="dask"), stage="train",
    )  # fmt: skip
    assert _all_same(serial, root, _train_steps())


@pytest.mark.cluster
def test_slurm_jobs_give_the_serial_weights(serial, tmp_path):
    if shutil.which("sbatch") is None:
        pytest.skip("no SLURM here: scripts/start_slurm.sh starts a one-node cluster")
    root = _frames_root(tmp_path / "data")
    run_parallel(
        _train_steps(), root, jobs=2, threads=1, logs=tmp_path / "logs",
        cluster=Cluster(executor="slurm", slurm_mem_gb=2, slurm_time_min=10), stage="train",
    )  # fmt: skip
    assert _all_same(serial, root, _train_steps())
    assert list((tmp_path / "logs" / "slurm").glob("*_submission.sh"))  # went through sbatch


@pytest.mark.slow
def test_the_tiny_job_gives_the_same_results_csv_with_one_and_two_jobs(tmp_path):
    """The whole tiny job (`make test-slow`): byte-identical results.csv for --jobs 1 and 2."""
    out = {}
    for jobs in (1, 2):
        base = tmp_path / f"jobs{jobs}"
        job = Job(
            preset="tiny", root=base / "data", results=base / "results", bootstrap=200,
            wandb="disabled", seeds=1, heldout=1, jobs=jobs,
        )  # fmt: skip
        reproduce(job)
        out[jobs] = (job.results / "results.csv").read_bytes()
    assert out[1] == out[2]
    assert list((tmp_path / "jobs2" / "results" / "logs" / "train").glob("*.log"))
