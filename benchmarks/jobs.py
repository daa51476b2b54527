#!/usr/bin/env python3
"""Benchmark: the same short training runs one after another (``reproduce --jobs 1``) and two at
a time (``--jobs 2``), and whether they end with the same weights.

Both sides run every training run with one torch thread (``--threads 1``, the job's default):
serially in this process, as the job does with ``--jobs 1`` (``reproduce.run_steps``), and in
parallel in two worker processes through ``executors.run_parallel``, as with ``--jobs 2`` (each
step sent as its command line; process start and torch import included; the longest runs first,
as the job orders them). The data are drifting snow discs (``--frames`` frames of ``--size``²
pixels); the runs are ``--runs`` trainings with different seeds of the ``--models`` in turn (by
default the job's four models, two runs each: the demo job's training stage is 25 runs of these
four, of unequal length), ``--steps`` steps each at the ``--preset`` sizes (the demo's: 20×20
patches, batch 32). The last line is
``parallel runs: <S> s serial, <P> s with 2 jobs, <R>x; results identical: yes|no``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from glacier_movement import config, io
from glacier_movement.checkpoints import load_checkpoint
from glacier_movement.cli.executors import run_parallel, usable_cores
from glacier_movement.cli.reproduce import run_steps
from glacier_movement.training import TrainSettings


def drifting_frames(t: int, size: int, seed: int = 0) -> np.ndarray:
    """(t, size, size) float32 masked NDSI (values below 0.3 set to 0): soft discs drifting
    about one pixel per frame."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    n = max(3, size // 8)
    cy, cx, r = rng.uniform(0, size, n), rng.uniform(0, size, n), rng.uniform(3, 8, n)
    k = np.arange(t, dtype=np.float32)[:, None, None, None]
    d2 = ((yy - (cy[:, None, None] + k) % size) ** 2 + (xx - (cx[:, None, None] + 0.5 * k) % size) ** 2) / r[:, None, None] ** 2  # fmt: skip
    f = np.exp(-d2).max(axis=1)
    return np.where(f >= 0.3, f, 0).astype(np.float32)


def write_data(root: Path, t: int, size: int) -> None:
    """``root``/parvati/frames.npz: ``t`` seasonal (3-month) windows from 2013-01."""
    fr = drifting_frames(t, size)
    record = io.Frames(
        frames=fr,
        window_start=(np.datetime64("2013-01", "M") + 3 * np.arange(t)).astype("datetime64[D]"),
        window_months=3, n_scenes=np.ones(t, np.int64), interpolated=np.zeros(t, bool),
        glacier="parvati", epsg=32643, transform=(30.0, 0.0, 0.0, 0.0, -30.0, 0.0),
        roi=(0, size, 0, size),
    )  # fmt: skip
    io.write_frames(config.Paths(root, "parvati").frames, record)


def steps(runs: int, preset: str, max_steps: int, models: list[str]) -> list[TrainSettings]:
    return [
        TrainSettings(
            glacier=("parvati",),
            model=models[k % len(models)],
            preset=preset,
            run_name=f"run{k}",
            seed=k,
            max_steps=max_steps,
            wandb="disabled",
            device="cpu",
            progress=False,
        )  # fmt: skip
        for k in range(runs)
    ]


def same(a: Path, b: Path, names: list[str]) -> bool:
    for n in names:
        sa = load_checkpoint(a / "models" / n / "last.pt")["model"]
        sb = load_checkpoint(b / "models" / n / "last.pt")["model"]
        if sa.keys() != sb.keys() or not all(torch.equal(sa[k], sb[k]) for k in sa):
            return False
    return True


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=8, help="training runs (default 8)")
    p.add_argument(
        "--models",
        default="lstm,salstm,convlstm,unet",
        help="models of the runs, in turn (default lstm,salstm,convlstm,unet; the earlier "
        "default was --runs 4 --models lstm,salstm)",
    )
    p.add_argument("--preset", default="demo", help="model and batch sizes (default demo)")
    p.add_argument("--steps", type=int, default=120, help="training steps per run (default 120)")
    p.add_argument("--frames", type=int, default=36, help="frames of the data (default 36)")
    p.add_argument("--size", type=int, default=80, help="frame side in pixels (default 80)")
    args = p.parse_args()
    print(
        f"{args.runs} training runs of {args.models} ({args.preset} preset, {args.steps} steps, "
        f"{args.frames} frames of "
        f"{args.size}² px), 1 thread each; {usable_cores()} cores, load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    todo = steps(args.runs, args.preset, args.steps, args.models.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        serial, parallel = Path(tmp) / "serial", Path(tmp) / "parallel"
        for root in (serial, parallel):
            write_data(root, args.frames, args.size)
        t0 = time.perf_counter()
        run_steps(todo, serial, threads=1)
        s = time.perf_counter() - t0
        t0 = time.perf_counter()
        run_parallel(todo, parallel, jobs=2, threads=1, logs=Path(tmp) / "logs", stage="train")
        par = time.perf_counter() - t0
        identical = same(serial, parallel, [t.run_name for t in todo])
    print(f"load at the end {os.getloadavg()[0]:.1f}")
    print(
        f"parallel runs: {s:.1f} s serial, {par:.1f} s with 2 jobs, {s / par:.2f}x; "
        f"results identical: {'yes' if identical else 'no'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
