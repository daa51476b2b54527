"""Independent steps of a stage in parallel: local worker processes, SLURM jobs or a dask cluster.

``reproduce --jobs N`` hands each stage's steps (stage settings, ``stages.py``) to
:func:`run_parallel`. It works out which steps wait for which (:func:`dependencies`: a test, an
inference or a fine-tuning run waits for the training run it reads, a scene's optical flow for
its inference, a summary such as ``scene-scores`` for every earlier step of its stage), and keeps
up to N of the others running at once, the longest first (:func:`cost`).

A step travels as its command line (``stages.command_line``, what a user would type to run it
alone), never as a Python object: ``glacier-movement _worker`` runs it exactly as the command
would run alone (one-line errors, SIGTERM → checkpoint, exit status 143) on ``--threads`` torch
threads, so a run's numbers do not depend on N or on the worker that ran it. Its output goes to
``<results>/logs/<stage>/<NN>-<command>-<name>.log``; the terminal shows one overall bar and each
worker's last line. Where the process runs is the executor's business:

- ``local``: N worker processes of the job (``_worker --serve``: each runs one step after
  another, stage after stage, paying Python's and torch's start once: :func:`local_workers`);
  they get SIGTERM when the job dies, even by ``kill -9``;
- ``slurm``: one SLURM job per step, submitted with ``submitit`` (``CommandFunction`` of the
  step's command line; partition, CPUs, memory and time from the job's settings);
- ``dask``: one task per step on a ``dask.distributed`` cluster (``--scheduler tcp://…``, or a
  ``LocalCluster`` of N single-thread workers): the task runs the step's command line.

SLURM and dask need the data root and the results folder on a file system that every node sees.
A remote step is stopped through a ``.stop`` file beside its log, which the step's process turns
into SIGTERM for itself (a cluster's own cancel might kill it before its checkpoint).

The first step that fails stops the stage: the others are sent SIGTERM (a training run writes
its checkpoint at its current step) and :class:`~glacier_movement.errors.GlacierError` carries the
failed step's one-line error. SIGINT/SIGTERM of the job stops every worker the same way and
raises :class:`~glacier_movement.signals.Interrupted`: a re-run resumes (``reproduce.py``).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .. import settings
from ..errors import GlacierError
from ..signals import Interrupted
from . import stages

__all__ = [
    "EXECUTORS",
    "Task",
    "Cluster",
    "default_jobs",
    "dependencies",
    "run_parallel",
    "usable_cores",
]

#: The executors ``--executor`` offers.
EXECUTORS = ("local", "slurm", "dask")
#: Seconds between two looks at the running steps.
POLL_S = 0.25
#: Seconds a stopped step has to write its checkpoint and exit before it is killed.
STOP_GRACE_S = 120.0


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask: a SLURM allocation, taskset)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_jobs(threads: int = 1) -> int:
    """One run per core (each run ``threads`` threads): on a 2-core machine two 1-thread runs did
    2.44 training steps/s together, one 2-thread run 0.92 (docs/benchmarks.md)."""
    return max(1, usable_cores() // max(1, threads))


@dataclass(frozen=True)
class Cluster:
    """Where the steps run and with what (the job's ``--executor`` settings)."""

    executor: str = "local"
    #: dask scheduler address (None: a LocalCluster with one single-thread worker per job)
    scheduler: str | None = None
    slurm_partition: str | None = None
    #: CPUs per SLURM job (None: the run's threads)
    slurm_cpus: int | None = None
    slurm_mem_gb: float = 8.0
    slurm_time_min: int = 120


# ------------------------------------------------------------------------------------ tasks
@dataclass(frozen=True)
class Task:
    """One step to run in its own process: its settings, the data root, the torch thread count,
    and the files it leaves (``log``; ``.stop`` beside it asks it to stop)."""

    index: int
    step: Any
    root: Path
    threads: int
    log: Path

    @property
    def command(self) -> list[str]:
        """The step's ``glacier-movement`` argv (what runs it alone)."""
        return stages.command_line(self.step, self.root)

    @property
    def label(self) -> str:
        """``train salstm-parvati-tiny``: the command and what it works on."""
        s = self.step
        what = [getattr(s, k, None) for k in ("run_name", "name", "run", "glacier")]
        name = next((str(w if isinstance(w, str) else "+".join(w)) for w in what if w), "")
        return f"{stages.command_of(s).name} {name}".strip()

    @property
    def stop_file(self) -> Path:
        return self.log.with_suffix(".stop")

    def worker_argv(self) -> list[str]:
        """The process that runs this step alone (a cluster job's command line)."""
        return [
            sys.executable, "-m", "glacier_movement", "_worker", "--threads", str(self.threads),
            "--log", str(self.log), "--stop", str(self.stop_file), "--", *self.command,
        ]  # fmt: skip


def _child_env(threads: int) -> dict[str, str]:
    """A worker's environment: ``threads`` OpenMP/MKL threads (the worker also sets torch's count
    for each step), and this process's import path (this source tree, also on a cluster node)."""
    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[k] = str(threads)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    env["PYTHONUNBUFFERED"] = "1"  # the log's last line is the worker's current line
    return env


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the job's process dies (even by kill -9), so an
    orphaned run checkpoints and exits instead of holding its run's lock."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _start_log(task: Task) -> None:
    """The log's first line: the command that runs the step alone."""
    task.log.parent.mkdir(parents=True, exist_ok=True)
    task.log.write_text(f"$ {settings.shell(task.command)}\n")


# ---------------------------------------------------------------------------------- backends
class Backend(Protocol):
    def submit(self, task: Task) -> Any: ...
    def poll(self, handle: Any) -> int | None: ...
    def wait(self, timeout: float) -> None: ...
    def stop(self, task: Task, handle: Any) -> None: ...
    def kill(self, task: Task, handle: Any) -> None: ...
    def close(self) -> None: ...


class _Worker:
    """A local worker process (``_worker --serve``) and the task it runs."""

    def __init__(self, threads: int):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "glacier_movement", "_worker", "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=_child_env(threads),
            start_new_session=True,  # Ctrl-C reaches the job alone: it stops each step once
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        assert self.proc.stdout is not None
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.buffer = b""
        self.task: Task | None = None

    def give(self, task: Task) -> None:
        self.task = task
        line = json.dumps({"argv": task.command, "threads": task.threads, "log": str(task.log)})
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{line}\n".encode())
        self.proc.stdin.flush()

    def status(self) -> int | None:
        """The running task's exit status once it has one."""
        assert self.proc.stdout is not None
        with contextlib.suppress(BlockingIOError, TypeError):
            self.buffer += self.proc.stdout.read() or b""
        if b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            self.task = None
            return int(line.split()[1])
        code = self.proc.poll()
        if code is not None:  # died in the step (killed, out of memory)
            self.task = None
            return code if code != 0 else -1
        return None


class LocalBackend:
    """Worker processes on this machine, each running one step after another."""

    def __init__(self, threads: int):
        self.threads = threads
        self.workers: list[_Worker] = []

    def submit(self, task: Task) -> _Worker:
        self.workers = [w for w in self.workers if w.proc.poll() is None]
        worker = next((w for w in self.workers if w.task is None), None)
        if worker is None:
            worker = _Worker(self.threads)
            self.workers.append(worker)
        _start_log(task)
        worker.give(task)
        return worker

    def poll(self, handle: _Worker) -> int | None:
        return handle.status()

    def wait(self, timeout: float) -> None:
        """Until a busy worker answers (or dies), at most ``timeout`` s: the job hands out the next
        step at once instead of at the next look (169 short test runs in the demo job)."""
        pipes = [w.proc.stdout for w in self.workers if w.task is not None and w.proc.stdout]
        if pipes:
            select.select(pipes, [], [], timeout)
        else:
            time.sleep(timeout)

    def stop(self, task: Task, handle: _Worker) -> None:
        if handle.proc.poll() is None:
            handle.proc.send_signal(signal.SIGTERM)

    def kill(self, task: Task, handle: _Worker) -> None:
        if handle.proc.poll() is None:
            handle.proc.kill()

    def close(self) -> None:
        for w in self.workers:
            with contextlib.suppress(OSError):
                if w.proc.stdin is not None:
                    w.proc.stdin.close()
        for w in self.workers:
            try:
                w.proc.wait(10)
            except subprocess.TimeoutExpired:
                w.proc.kill()
                w.proc.wait()


class _RemoteBackend:
    """Shared by SLURM and dask: a step is stopped by its ``.stop`` file."""

    def wait(self, timeout: float) -> None:
        time.sleep(timeout)

    def stop(self, task: Task, handle: Any) -> None:
        task.stop_file.touch()

    def kill(self, task: Task, handle: Any) -> None:
        with contextlib.suppress(Exception):
            handle.cancel()

    def poll(self, handle: Any) -> int | None:
        if not handle.done():
            return None
        try:
            return _status(handle.result())
        except Exception as e:  # noqa: BLE001 - a lost worker or a failed job: the step failed
            _note(handle, e)
            return -1


def _status(result: Any) -> int:
    """A finished remote task's exit status: dask returns it, submitit's CommandFunction returns
    the output (it raises on a non-zero status)."""
    return result if isinstance(result, int) else 0


class DaskBackend(_RemoteBackend):
    """Tasks on a ``dask.distributed`` cluster: the scheduler at ``address``, or a LocalCluster
    of ``workers`` single-thread worker processes. A task is ``subprocess.call`` of the step's
    command line, run by the dask worker."""

    def __init__(self, address: str | None, workers: int, threads: int):
        from dask.distributed import Client, LocalCluster

        self.threads = threads
        self._cluster = None
        try:
            if address:
                self.client = Client(address, timeout="30s")
            else:
                # dashboard_address=None: no dashboard (documented; the annotation says str)
                self._cluster = LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True,
                    dashboard_address=None, silence_logs=40,  # pyright: ignore[reportArgumentType]
                )  # fmt: skip
                self.client = Client(self._cluster)
        except OSError as e:
            raise GlacierError(
                f"--scheduler {address}: cannot reach the dask scheduler ({e})"
            ) from None

    def submit(self, task: Task) -> Any:
        _start_log(task)
        return self.client.submit(
            subprocess.call, task.worker_argv(), env=_child_env(self.threads),
            stdin=subprocess.DEVNULL, pure=False, key=f"step-{task.index}-{os.getpid()}-{time.time_ns()}",
        )  # fmt: skip

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


def _no_sacct_noise(record: logging.LogRecord) -> bool:
    return "Bypassing sacct error" not in record.getMessage()


class SlurmBackend(_RemoteBackend):
    """One SLURM job per step through ``submitit`` (its files under ``folder``): the job runs the
    step's command line (``submitit.helpers.CommandFunction``)."""

    def __init__(self, cluster: Cluster, threads: int, folder: Path):
        import submitit

        self.submitit = submitit
        # without SLURM accounting (a small cluster, scripts/start_slurm.sh) submitit warns at
        # every poll that sacct failed, then reads the job's result file: keep its other warnings
        logging.getLogger("submitit").addFilter(_no_sacct_noise)  # once: a filter is a set member
        self.threads = threads
        self.executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
        params: dict[str, Any] = dict(
            cpus_per_task=cluster.slurm_cpus or threads, mem_gb=cluster.slurm_mem_gb,
            timeout_min=cluster.slurm_time_min, tasks_per_node=1, nodes=1,
            slurm_job_name="glacier-movement",
        )  # fmt: skip
        if cluster.slurm_partition:
            params["slurm_partition"] = cluster.slurm_partition
        self.executor.update_parameters(**params)

    def submit(self, task: Task) -> Any:
        _start_log(task)
        fn = self.submitit.helpers.CommandFunction(task.worker_argv(), env=_child_env(self.threads))
        try:
            return self.executor.submit(fn)
        except Exception as e:  # noqa: BLE001 - sbatch refused: its message is the error
            first = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
            raise GlacierError(f"--executor slurm: cannot submit {task.label}: {first}") from None

    def close(self) -> None:
        pass


_NOTES: dict[int, str] = {}


def _note(handle: Any, e: Exception) -> None:
    lines = [ln for ln in str(e).strip().splitlines() if ln.strip()]
    _NOTES[id(handle)] = f"{type(e).__name__}: {lines[-1] if lines else ''}".strip()


def make_backend(cluster: Cluster, jobs: int, threads: int, folder: Path) -> Backend:
    """The backend of ``cluster.executor``."""
    if cluster.executor == "local":
        return LocalBackend(threads)
    if cluster.executor == "dask":
        return DaskBackend(cluster.scheduler, jobs, threads)
    if cluster.executor == "slurm":
        return SlurmBackend(cluster, threads, folder / "slurm")
    raise GlacierError(f"--executor {cluster.executor}: choose one of {', '.join(EXECUTORS)}")


# ------------------------------------------------------------------------------ dependencies
def _reads_and_writes(step: Any) -> tuple[set[tuple], set[tuple]]:
    """What a step reads and writes that another step of its stage may write or read: a run
    folder (``("run", name)``) and a full scene's prediction (``("scene", glacier, label)``)."""
    reads: set[tuple] = set()
    writes: set[tuple] = set()
    run_name = getattr(step, "run_name", None)
    if run_name:  # a training run
        writes.add(("run", run_name))
        parent = getattr(step, "init_from", None)
        if parent:
            p = Path(parent)
            reads.add(("run", p.parent.name if p.suffix == ".pt" else p.name))
    run = getattr(step, "run", None)
    if run:  # test, infer, flow: read a run; infer and flow write a scene that flow reads
        reads.add(("run", run))
        cmd = stages.command_of(step).name
        if cmd in ("infer", "flow"):
            key = ("scene", getattr(step, "glacier", None), getattr(step, "name", None) or run)
            (writes if cmd == "infer" else reads).add(key)
            if cmd == "flow":
                writes.add(key)  # flow runs the inference when it is missing
    return reads, writes


#: Steps that summarise what the earlier steps of their stage wrote: they wait for all of them.
SUMMARIES = ("scene-scores", "loss-curves", "report")


def dependencies(steps: Sequence[Any]) -> list[set[int]]:
    """For each step, the indices of the earlier steps it waits for."""
    deps: list[set[int]] = []
    io = [_reads_and_writes(s) for s in steps]
    for i, step in enumerate(steps):
        if stages.command_of(step).name in SUMMARIES:
            deps.append(set(range(i)))
            continue
        reads, writes = io[i]
        deps.append(
            {
                j
                for j in range(i)
                if io[j][1] & reads or io[j][1] & writes or io[j][0] & writes  # read/write order
            }
        )
    return deps


#: Relative time of a model's runs: the demo job's training runs took about 120 s (ConvLSTM),
#: 95 s (SA-LSTM), 80 s (U-Net) and 55 s (LSTM) each, two at a time (docs/benchmarks.md).
MODEL_COST = {"convlstm": 2.2, "salstm": 1.7, "unet": 1.5, "lstm": 1.0}
#: What a training run costs beside a test, an inference or a flow step of the same model.
TRAIN_COST = 20.0


def cost(step: Any) -> float:
    """A rough relative run time of ``step``, to start the longest first: a stage of unequal
    runs ends sooner when no long run starts last beside an idle worker. The model is the
    training run's, or the leading name of the run a test, inference or flow reads."""
    model = getattr(step, "model", None)
    run = getattr(step, "run", None)
    if model is None and isinstance(run, str):
        model = re.split(r"[^a-z]", run, maxsplit=1)[0]
    c = MODEL_COST.get(str(model), 1.0)
    return c * TRAIN_COST if getattr(step, "run_name", None) else c


def start_order(steps: Sequence[Any]) -> list[int]:
    """The order in which ready steps start: the costliest first (:func:`cost`), ties in list
    order. Dependencies still hold: a step starts only once those it waits for are done."""
    costs = [cost(s) for s in steps]
    return sorted(range(len(steps)), key=lambda i: (-costs[i], i))


# ---------------------------------------------------------------------------------- display
def last_line(log: Path, limit: int = 4096) -> str:
    """The last line a step printed (a progress bar's current state: after its last ``\\r``)."""
    try:
        with open(log, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - limit))
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    parts = [p.strip() for p in re.split(r"[\r\n]", text)]
    return next((p for p in reversed(parts) if p), "")


def failure_line(log: Path, status: int) -> str:
    """The step's one-line error (``glacier-movement train: error: …``) from the end of its log,
    else its last line with the exit status."""
    try:
        with open(log, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 16384))
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:
        lines = []
    for line in reversed(lines):
        if line.startswith("glacier-movement ") and ("error" in line or "stopped" in line):
            return line.strip()
    tail = next((ln.strip() for ln in reversed(lines) if ln.strip()), "")
    return f"exit status {status}" + (f": {tail}" if tail else "")


@dataclass
class _Display:
    """One overall bar and one line per worker with its step and that step's last line."""

    total: int
    stage: str
    slots: int
    bars: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        from tqdm.auto import tqdm

        self.tqdm = tqdm
        self.main = tqdm(total=self.total, desc=self.stage, unit="run", position=0, leave=True)
        self._shown = 0.0
        if not sys.stderr.isatty():  # a log file: the bar alone (lines under it would pile up)
            self.slots = 0
        self.bars = [
            tqdm(total=0, bar_format="{desc}", position=k + 1, leave=False)
            for k in range(self.slots)
        ]

    def show(self, running: dict[int, Task]) -> None:
        if not self.bars or time.monotonic() - self._shown < 1.0:
            return
        self._shown = time.monotonic()
        width = 110
        tasks = list(running.values())
        for k, bar in enumerate(self.bars):
            if k < len(tasks):
                t = tasks[k]
                text = f"  [{t.label}] {last_line(t.log)}"
            else:
                text = "  (idle)"
            bar.set_description_str(text[:width], refresh=True)

    def write(self, text: str) -> None:
        self.tqdm.write(text, file=sys.stdout)

    def close(self) -> None:
        for bar in self.bars:
            bar.close()
        self.main.close()


# ------------------------------------------------------------------------------------- the loop
@contextlib.contextmanager
def local_workers(threads: int) -> Iterator[LocalBackend]:
    """Local workers that outlive a stage: the job passes them to every stage's
    :func:`run_parallel`, so Python's, torch's and the package's start (about 4 CPU s a worker)
    is paid once per job, not once per stage; they end with the block."""
    backend = LocalBackend(threads)
    try:
        yield backend
    finally:
        backend.close()


def run_parallel(
    steps: Sequence[Any],
    root: Path,
    *,
    jobs: int,
    threads: int,
    logs: Path,
    cluster: Cluster | None = None,
    stage: str = "steps",
    workers: LocalBackend | None = None,
) -> None:
    """Run ``steps`` (stage settings) with up to ``jobs`` at once, each in its own process with
    ``threads`` threads, in dependency order; logs under ``logs``; with ``workers``
    (:func:`local_workers`, the local executor only), in those, left running for the next stage.
    Raises :class:`GlacierError` with the first failed step's one-line error, or
    :class:`Interrupted` when the job was stopped (the running steps checkpoint first)."""
    cluster = cluster or Cluster()
    if workers is not None and (cluster.executor != "local" or workers.threads != threads):
        raise ValueError("shared workers are local workers of the same --threads")
    root, logs = Path(root).absolute(), Path(logs).absolute()
    deps = dependencies(steps)
    width = len(str(len(steps)))
    tasks = [
        Task(i, s, Path(root), threads, logs / f"{i + 1:0{width}d}-{_slug(Task(i, s, root, 1, logs).label)}.log")
        for i, s in enumerate(steps)
    ]  # fmt: skip
    for t in tasks:  # a stop request of an earlier attempt must not stop this one
        t.stop_file.unlink(missing_ok=True)
    backend: Backend = workers or make_backend(cluster, jobs, threads, logs)
    pending = start_order(steps)
    running: dict[int, tuple[Task, Any, float]] = {}
    done: set[int] = set()
    display = _Display(len(tasks), stage, min(jobs, len(tasks)))
    failure: str | None = None
    try:
        try:
            while (pending and failure is None) or running:
                if failure is None:
                    for i in list(pending):
                        if len(running) >= jobs:
                            break
                        if deps[i] <= done:
                            t = tasks[i]
                            display.write(f"$ {settings.shell(t.command)}  (log: {t.log})")
                            running[i] = (t, backend.submit(t), time.perf_counter())
                            pending.remove(i)
                    if pending and not running:  # cannot happen: dependencies point backwards
                        raise GlacierError(f"steps {pending} of stage {stage} wait for nothing")
                finished = False
                for i, (t, handle, t0) in list(running.items()):
                    status = backend.poll(handle)
                    if status is None:
                        continue
                    finished = True
                    del running[i]
                    if status == 0:
                        done.add(i)
                        display.main.update(1)
                        display.write(f"done: {t.label} in {time.perf_counter() - t0:.0f} s")
                    elif failure is None:
                        note = _NOTES.pop(id(handle), "")
                        line = failure_line(t.log, status)
                        if note and not line.startswith("glacier-movement "):
                            line = note  # the cluster's word: the step never wrote its error
                        failure = f"{t.label} failed: {line} (log: {t.log})"
                        display.write(f"failed: {failure}; stopping the other steps")
                        for other, h, _ in running.values():
                            backend.stop(other, h)
                display.show({k: v[0] for k, v in running.items()})
                if not finished:  # a step just ended: hand out the next one first
                    backend.wait(POLL_S)
        except KeyboardInterrupt as e:  # Interrupted (SIGTERM) or Ctrl-C: stop the workers
            _stop_all(backend, running, display)
            if isinstance(e, Interrupted):
                raise
            raise Interrupted(signal.SIGINT) from e
    finally:
        display.close()
        if workers is None:
            backend.close()
    if failure is not None:
        raise GlacierError(failure)


def _stop_all(backend: Backend, running: dict[int, tuple[Task, Any, float]], display) -> None:
    """SIGTERM (or the stop file) to every running step, then wait for each to checkpoint and
    exit; a second interrupt or the grace time kills what is left."""
    for t, h, _ in running.values():
        backend.stop(t, h)
    if running:
        display.write(f"stopping {len(running)} running step(s); each writes its checkpoint")
    deadline = time.monotonic() + STOP_GRACE_S
    try:
        while running and time.monotonic() < deadline:
            for i, (_t, h, _) in list(running.items()):
                if backend.poll(h) is not None:
                    del running[i]
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        pass
    for t, h, _ in running.values():
        backend.kill(t, h)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", text).strip("-")[:80]
