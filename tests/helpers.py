"""Small builders shared by the tests."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from glacier_movement import io


def frames_record(frames: np.ndarray, glacier: str) -> io.Frames:
    """``frames`` (T, H, W) masked NDSI as a frames.npz record: 3-month windows from 2013-01."""
    t, h, w = frames.shape
    return io.Frames(
        frames=frames,
        window_start=(np.datetime64("2013-01", "M") + 3 * np.arange(t)).astype("datetime64[D]"),
        window_months=3,
        n_scenes=np.ones(t, np.int64),
        interpolated=np.zeros(t, bool),
        glacier=glacier,
        epsg=32643,
        transform=(30.0, 0.0, 0.0, 0.0, -30.0, 0.0),
        roi=(0, h, 0, w),
    )


def frames(t: int = 12, h: int = 30, w: int = 40, seed: int = 0) -> np.ndarray:
    """Random masked NDSI frames (T, H, W) float32: values below 0.3 set to 0."""
    rng = np.random.default_rng(seed)
    f = rng.random((t, h, w), dtype=np.float32)
    return np.where(f >= 0.3, f, 0).astype(np.float32)


class LastFrame(nn.Module):
    """Persistence written independently of the package: repeat the last input frame."""

    def forward(self, x, y=None):
        return x[:, -1:].repeat(1, 4, 1, 1)


class Echo(nn.Module):
    """Returns its input frames as the prediction (an 'identity' forecaster); records calls."""

    def __init__(self):
        super().__init__()
        self.batch_sizes = []
        self.grad_enabled = []

    def forward(self, x, y=None):
        self.batch_sizes.append(x.shape[0])
        self.grad_enabled.append(torch.is_grad_enabled())
        return x.clone()


def built_once(tmp_path_factory: Any, name: str, build: Callable[[Path], None]) -> Path:
    """``<shared tmp>/<name>/data`` made by ``build(root)`` once per test run.

    Under pytest-xdist every worker has its own temporary folder; the data go one level up, in the
    run's common folder, and a blocking ``flock`` lets the first worker build them while the others
    wait (a finished build is marked by a ``.done`` file, so a failed one is retried). Without
    xdist this is a plain session folder."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    folder = base / f"shared-{name}"
    root = folder / "data"
    with open(base / f"shared-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not (folder / ".done").is_file():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(root)
            (folder / ".done").touch()
    return root


#: The tiny job of tests/test_reproduce.py and tests/test_jobs.py (``make reproduce PRESET=tiny``
#: with fewer bootstrap samples, one seed and one held-out glacier).
TINY_JOB: dict[str, Any] = dict(
    preset="tiny", bootstrap=200, wandb="disabled", years="2013-2021", seeds=1, heldout=1
)


def tiny_job(base: Path, jobs: int, **kw: Any) -> Any:
    """The tiny :class:`~glacier_movement.cli.reproduce.Job` with its data and results under ``base``."""
    from glacier_movement.cli.reproduce import Job

    return Job(root=base / "data", results=base / "results", jobs=jobs, **{**TINY_JOB, **kw})


def shared_tiny_job(tmp_path_factory: Any) -> tuple[Any, float, dict]:
    """The tiny job with ``--jobs 1`` (every step in this process), run once per test run and
    shared by the xdist workers (:func:`built_once`): (job, its wall time in seconds, the state
    file it left, as it was right after the run)."""
    from glacier_movement.cli.reproduce import reproduce

    def build(root: Path) -> None:
        job = tiny_job(root.parent, 1)
        t0 = time.perf_counter()
        reproduce(job)
        seconds = time.perf_counter() - t0
        state = json.loads((job.results / "reproduce.json").read_text())
        (root.parent / "run.json").write_text(json.dumps({"seconds": seconds, "state": state}))

    root = built_once(tmp_path_factory, "tiny-job", build)
    run = json.loads((root.parent / "run.json").read_text())
    return tiny_job(root.parent, 1), run["seconds"], run["state"]
