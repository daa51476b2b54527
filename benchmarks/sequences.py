#!/usr/bin/env python3
"""Benchmark: sequences served from the frames, against the original's files and a training step.

Two claims of issue 4 (docs/preprocessing.md):

* disk — no bytes per sequence beyond the frames. The frames of a Parvati-size (36 × 800 × 800)
  and an Aletsch-size (27 × 600 × 600) glacier are written with ``io.write_frames`` (masked NDSI,
  like preprocessing writes) and their file sizes set against the original's layout, two pickled
  float32 (4, 50, 50) arrays per sequence (≈ 80 KB × 167,504 and × 37,632 sequences).
* loading — a shuffled batch of 100 sequences (P = 50) through the DataLoader of
  :func:`glacier_movement.sequences.make_loader` (one vectorised gather per batch), against one
  forward + backward of a 3-layer ``nn.LSTM(2500, 2500, batch_first=True)`` (the paper SA-LSTM's
  encoder) on that batch, x of shape (100, 4, 2500), in the same run. Target: loading ≥ 20× faster,
  so it never bounds training. For reference the plain ``DataLoader(dataset, batch_size=100,
  shuffle=True)`` route (100 item lookups + default collate) is timed too.

Runs on 2 CPU threads; prints a table and, last, the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from glacier_movement import io
from glacier_movement.sequences import (
    ORIGINAL_BYTES_PER_SEQUENCE,
    SequenceDataset,
    make_loader,
    split_indices,
)

TARGET_RATIO = 20.0


def frames_like(t: int, size: int, seed: int = 0) -> np.ndarray:
    """(t, size, size) float32 masked NDSI: smooth fields drifting one pixel per frame, 0 below 0.3."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    base = ndimage.gaussian_filter(rng.random((size + t, size + t), dtype=np.float32), 8.0)
    base = (base - base.min()) / (base.max() - base.min())
    out = np.stack([base[k : k + size, k : k + size] for k in range(t)])
    return np.where(out >= 0.3, out, 0.0).astype(np.float32)


def _frames_file_bytes(frames: np.ndarray, folder: Path, name: str) -> int:
    t, h, w = frames.shape
    fr = io.Frames(
        frames=frames,
        window_start=(np.datetime64("2013-01", "M") + 3 * np.arange(t)).astype("datetime64[D]"),
        window_months=3,
        n_scenes=np.ones(t, np.int64),
        interpolated=np.zeros(t, bool),
        glacier=name,
        epsg=32643,
        transform=(30.0, 0.0, 0.0, 0.0, -30.0, 0.0),
        roi=(0, h, 0, w),
    )
    return io.write_frames(folder / name / "frames.npz", fr).stat().st_size


def _median_seconds(fn, reps: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run(batches: int = 50, lstm_reps: int = 3, batch_size: int = 100) -> list[dict]:
    """Measure; return rows ``{"what", "value", "unit"}``; the last row is the loading ratio."""
    torch.set_num_threads(2)
    rows: list[dict] = []

    def row(what: str, value, unit: str) -> None:
        rows.append({"what": what, "value": value, "unit": unit})

    # --- disk -------------------------------------------------------------------------------
    parvati = frames_like(36, 800)
    with tempfile.TemporaryDirectory() as tmp:
        for name, fr, kw in (
            ("parvati", parvati, {}),
            ("aletsch", frames_like(27, 600, seed=1), {"max_frame": 19}),
        ):
            n = len(SequenceDataset(fr, **kw))
            size = _frames_file_bytes(fr, Path(tmp), name)
            used = f"first {kw['max_frame']}" if kw else "all"
            row(f"{name}: sequences ({used} of {fr.shape[0]} frames, {fr.shape[1]}²)", n, "")
            row(f"{name}: frames.npz, the only file", size / 1e6, "MB")
            row(f"{name}: bytes per sequence beyond the frames", 0, "B")
            row(
                f"{name}: original layout (≈ 80 KB × {n:,} sequences)",
                n * ORIGINAL_BYTES_PER_SEQUENCE / 1e9,
                "GB",
            )

    # --- loading ----------------------------------------------------------------------------
    t0 = time.perf_counter()
    ds = SequenceDataset(parvati, patch=50, stride=10)
    train = split_indices(ds, "paper").train
    row("dataset + split construction (Parvati size)", (time.perf_counter() - t0) * 1e3, "ms")

    loader = make_loader(ds, train, batch_size=batch_size, shuffle=True, seed=0)
    t0 = time.perf_counter()
    it = iter(loader)
    first = next(it)
    row(
        "epoch start: shuffle 120,602 indices + first batch", (time.perf_counter() - t0) * 1e3, "ms"
    )
    times = []
    for _ in range(batches):
        t0 = time.perf_counter()
        x, y = next(it)
        times.append(time.perf_counter() - t0)
    load_s = statistics.median(times)
    assert x.shape == (batch_size, 4, 50, 50) and y.shape == (batch_size, 4, 50, 50)
    row(f"shuffled batch of {batch_size} via make_loader (median of {batches})", load_s * 1e3, "ms")

    plain = iter(torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True))
    next(plain)
    plain_s = _median_seconds(lambda: next(plain), reps=min(batches, 20), warmup=0)
    row(
        f"same via DataLoader(batch_size={batch_size}, shuffle=True) + collate", plain_s * 1e3, "ms"
    )

    # --- one training step of the paper encoder ---------------------------------------------
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(2500, 2500, num_layers=3, batch_first=True)
    xb = first[0].reshape(batch_size, 4, 2500)
    yb = first[1].reshape(batch_size, 4, 2500)

    def step() -> None:
        lstm.zero_grad(set_to_none=True)
        out, _ = lstm(xb)
        torch.nn.functional.mse_loss(out, yb).backward()

    lstm_s = _median_seconds(step, reps=lstm_reps, warmup=1)
    params = sum(p.numel() for p in lstm.parameters())
    row(
        f"LSTM 2500→2500 ×3 ({params / 1e6:.0f} M params) forward+backward, B={batch_size}",
        lstm_s * 1e3,
        "ms",
    )
    row("ratio: LSTM step / batch loading (target ≥ 20×)", lstm_s / load_s, "×")
    return rows


def _fmt(v) -> str:
    if isinstance(v, int | np.integer):
        return f"{v:,}"
    return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.1f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=50, help="batches timed (default 50)")
    ap.add_argument("--lstm-reps", type=int, default=3, help="LSTM steps timed (default 3)")
    args = ap.parse_args(argv)
    rows = run(batches=args.batches, lstm_reps=args.lstm_reps)
    width = max(len(r["what"]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>12}  unit")
    for r in rows:
        print(f"{r['what']:<{width}}  {_fmt(r['value']):>12}  {r['unit']}")
    ratio = rows[-1]["value"]
    verdict = "meets" if ratio >= TARGET_RATIO else "MISSES"
    print(
        f"loading a batch is {ratio:,.0f}x faster than one LSTM training step ({verdict} ≥ {TARGET_RATIO:.0f}x)"
    )
    return 0 if ratio >= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
