#!/usr/bin/env python3
"""Benchmark: batched full-scene inference against the original's one-forward-per-patch loop.

Same model (SA-LSTM, the paper's best), same input: an 8-frame 800×800 sequence of masked NDSI,
whose first 4 frames are cut into non-overlapping P×P patches (paper preset: P = 50, 256 patches).

* batched — :func:`glacier_movement.evaluation.inference.predict_scene`: all patches as (B, 4, P, P)
  batches under ``torch.no_grad()``, stitched back with ``sequences.stitch_patches``.
* original loop — the original ``inferenceScenes``: one ``model.forward`` per patch on a
  (1, 4, P, P) tensor, autograd left on (the original had no ``no_grad``), patches written back
  one by one. Every iteration is the same forward, so it is timed on the first ``--loop-patches``
  patches and scaled linearly to the whole scene.
* loop without autograd — the same loop under ``torch.no_grad()``, to separate batching from
  autograd.

Outputs of the loop must equal the batched outputs on those patches (max |diff| ≤ 1e-5).
Runs on 2 CPU threads; the last line states the speed-up over the original loop as ``NNx``.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from glacier_movement.evaluation.inference import predict_scene
from glacier_movement.models import build_model, count_parameters
from glacier_movement.presets import get_preset
from glacier_movement.sequences import extract_patches

TOLERANCE = 1e-5


def scene(size: int, seed: int = 0) -> np.ndarray:
    """An 8-frame (8, size, size) float32 masked-NDSI sequence: smooth snow fields that drift."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    base = ndimage.gaussian_filter(rng.random((size + 16, size + 16)), 6.0)
    base = (base - base.min()) / (base.max() - base.min())
    frames = np.stack([base[k : k + size, k : k + size] for k in range(8)]).astype(np.float32)
    return np.where(frames >= 0.45, frames, 0.0).astype(np.float32)


def original_loop(model, patches: np.ndarray, grad: bool) -> tuple[np.ndarray, float]:
    """One forward per patch, as the original: patches (N, 4, P, P) → (N, 4, P, P), seconds."""
    model.eval()
    out = np.empty_like(patches)
    t0 = time.perf_counter()
    with torch.set_grad_enabled(grad):
        for i in range(len(patches)):
            inp = torch.from_numpy(patches[i]).unsqueeze(0)
            out[i] = model(inp).squeeze(0).detach().numpy()
    return out, time.perf_counter() - t0


def bench(preset_name: str, size: int, loop_patches: int, batch_size: int) -> dict:
    torch.manual_seed(0)
    preset = get_preset(preset_name)
    p = preset.patch
    model = build_model("salstm", preset).eval()
    frames = scene(size)
    n_r, n_c = size // p, size // p
    n = n_r * n_c
    # the patches exactly as predict_scene cuts them, row-major: (N, 4, P, P)
    grid = extract_patches(frames[:4], p, p)
    patches = np.ascontiguousarray(grid.transpose(1, 2, 0, 3, 4)).reshape(n, 4, p, p)
    k = min(loop_patches, n)

    predict_scene(
        model, frames[:, : 2 * p, : 2 * p], p, batch_size=4
    )  # warm-up (allocator, kernels)
    t0 = time.perf_counter()
    batched = predict_scene(model, frames, p, batch_size=batch_size)
    t_batched = time.perf_counter() - t0

    loop_out, t_loop_k = original_loop(model, patches[:k], grad=True)
    _, t_nograd_k = original_loop(model, patches[:k], grad=False)
    # the batched scene's patches at the looped positions
    batched_patches = np.ascontiguousarray(
        extract_patches(batched, p, p).transpose(1, 2, 0, 3, 4)
    ).reshape(n, 4, p, p)[:k]
    diff = float(np.abs(batched_patches - loop_out).max())
    return {
        "preset": preset_name,
        "patch": p,
        "params": count_parameters(model),
        "patches": n,
        "looped": k,
        "batch": batch_size,
        "batched_s": t_batched,
        "loop_s": t_loop_k / k * n,
        "loop_nograd_s": t_nograd_k / k * n,
        "max_diff": diff,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=800, help="scene side in pixels (default 800)")
    ap.add_argument(
        "--loop-patches",
        type=int,
        default=8,
        help="patches timed in the loop (paper preset; default 8)",
    )
    ap.add_argument(
        "--batch-size", type=int, default=256, help="patches per batched forward (default 256)"
    )
    ap.add_argument(
        "--presets", default="demo,paper", help="comma-separated presets (default demo,paper)"
    )
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    rows = []
    for name in args.presets.split(","):
        # the demo model's forward is ~1000× cheaper: loop over more patches for a stable time
        k = args.loop_patches if name == "paper" else max(args.loop_patches, 200)
        rows.append(bench(name, args.size, k, args.batch_size))

    print(
        f"SA-LSTM full-scene inference, {args.size}×{args.size} px, 4 → 4 frames, {args.threads} CPU threads"
    )
    print(
        f"{'preset':<7} {'P':>3} {'params':>12} {'patches':>7} {'looped':>6} {'batch':>5} "
        f"{'batched s':>10} {'loop s':>9} {'no-grad loop s':>14} {'speed-up':>8} {'vs no-grad':>10} {'max|diff|':>10}"
    )
    ok = True
    for r in rows:
        print(
            f"{r['preset']:<7} {r['patch']:>3} {r['params']:>12,} {r['patches']:>7} {r['looped']:>6} "
            f"{r['batch']:>5} {r['batched_s']:>10.2f} {r['loop_s']:>9.1f} {r['loop_nograd_s']:>14.1f} "
            f"{r['loop_s'] / r['batched_s']:>7.1f}x {r['loop_nograd_s'] / r['batched_s']:>9.1f}x "
            f"{r['max_diff']:>10.1e}"
        )
        if r["max_diff"] > TOLERANCE:
            print(
                f"error: {r['preset']}: outputs differ by {r['max_diff']:.2e} > {TOLERANCE}",
                file=sys.stderr,
            )
            ok = False
    print("loop times are measured on the first 'looped' patches and scaled to all patches")
    ref = next((r for r in rows if r["preset"] == "paper"), rows[-1])
    print(
        f"{ref['preset']} preset: batched full-scene inference is "
        f"{ref['loop_s'] / ref['batched_s']:.0f}x faster than the original's per-patch loop"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
