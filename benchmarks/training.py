#!/usr/bin/env python3
"""Benchmark: training throughput of every model, at the demo preset and at paper size.

* demo preset — for each model, sequences per second of (a) the bare training step (batch fetch
  from a ``SequenceDataset``, forward with teacher forcing, MSE, backward, clipping, AdamW) and
  (b) the whole :func:`glacier_movement.training.fit` loop over the same steps (progress, CSV
  logs, validation batches, checkpoints). (b)/(a) is the cost of the loop's bookkeeping.
* paper preset — seconds per training step at batch 100 (docs/models.md) for the models where one
  step fits in about a minute of CPU; the ConvLSTM ``big`` step is timed at batch 10 and scaled
  ×10 (README measured ≈ 52 s and 8.5 GB at batch 100). A model is skipped when its
  estimated memory exceeds half of the available memory. README's figures (2 threads:
  LSTM 2500×3 ≈ 2.6 s, U-Net ≈ 11 s, ConvLSTM ≈ 52 s) are printed beside ours.

The data are synthetic drifting snow fields of the demo size (36 frames of 160×160). Runs on 2
threads (``--threads``). The last line is the loop-overhead ratio of the paper's best model.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from glacier_movement.models import BENCHMARK_MODELS, MODELS, build_model, count_parameters
from glacier_movement.presets import get_preset, override
from glacier_movement.sequences import IndexBatchSampler, SequenceDataset
from glacier_movement.training import fit

#: README: CPU seconds per paper-size training step at batch 100 on 2 threads.
SPEC_STEP_S = {"lstm": 2.6, "unet": 11.0, "convlstm": 52.0}


def paper_batch(name: str) -> tuple[int, int]:
    """Paper-size run of ``name``: (batch actually run, factor to batch 100), from its registry
    entry's ``bench_batch``."""
    batch = MODELS[name].bench_batch
    return batch, 100 // batch


def frames(t: int = 36, size: int = 160, seed: int = 0) -> np.ndarray:
    """(t, size, size) float32 masked NDSI: smooth fields drifting one pixel per frame."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    base = ndimage.gaussian_filter(rng.random((size + t, size + t)), 5.0)
    base = (base - base.min()) / (base.max() - base.min())
    out = np.stack([base[k : k + size, k // 2 : k // 2 + size] for k in range(t)])
    return np.where(out >= 0.45, out, 0.0).astype(np.float32)


def bare_steps(model, ds, idx: np.ndarray, batch: int, steps: int) -> float:
    """Seconds for ``steps`` training steps after one warm-up step."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-3)
    model.train()
    sampler = IndexBatchSampler(idx, batch, shuffle=True, seed=0)
    batches = iter(sampler)
    t0 = 0.0
    for k in range(steps + 1):
        if k == 1:
            t0 = time.perf_counter()
        b = next(batches, None)
        if b is None:
            batches = iter(sampler)
            b = next(batches)
        x, y = ds.batch(b)
        opt.zero_grad(set_to_none=True)
        loss = F.mse_loss(model(x, y), y)
        loss.backward()
        torch.nn.utils.clip_grad_value_(model.parameters(), 3.0)
        opt.step()
    return time.perf_counter() - t0


def demo_rows(steps: int) -> list[dict]:
    pre = get_preset("demo")
    ds = SequenceDataset(frames(), pre.patch, pre.stride)
    train_idx, val_idx = np.arange(0, len(ds) - 200), np.arange(len(ds) - 200, len(ds))
    rows = []
    for name in BENCHMARK_MODELS:
        cfg = pre.train_config(name)
        torch.manual_seed(0)
        model = build_model(name, pre)
        bare = bare_steps(model, ds, train_idx, cfg.batch_size, steps)
        # the whole loop: validation batch and checkpoint every 10 steps, a full validation at the end
        loop_cfg = override(cfg, max_steps=steps + 1, val_every=10, ckpt_every=10, epochs=1000)
        torch.manual_seed(0)
        model = build_model(name, pre)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            res = fit(name, model, (ds, train_idx), (ds, val_idx[: cfg.batch_size]), loop_cfg, Path(tmp) / "run",
                      record={"patch": pre.patch, "stride": pre.stride, "model_config": {}},
                      wandb_mode="disabled", progress=False)  # fmt: skip
            loop = time.perf_counter() - t0
        # fit ran steps + 1 steps and two validation passes of one batch: compare per step
        rows.append(
            {
                "model": name,
                "params": count_parameters(model),
                "batch": cfg.batch_size,
                "seq_s": steps * cfg.batch_size / bare,
                "loop_seq_s": res.step * cfg.batch_size / loop,
                "ratio": (loop / res.step) / (bare / steps),
            }
        )
        print(f"  demo {name}: {rows[-1]['seq_s']:.0f} seq/s", file=sys.stderr, flush=True)
    return rows


def available_bytes() -> float:
    try:
        with open("/proc/meminfo") as f:
            info = {ln.split(":")[0]: float(ln.split()[1]) * 1024 for ln in f}
        return info.get("MemAvailable", math.inf)
    except OSError:
        return math.inf


def paper_rows(models: list[str]) -> list[dict]:
    pre = get_preset("paper")
    p = pre.patch
    rows = []
    for name in models:
        batch, scale = paper_batch(name)
        with torch.device("meta"):
            n = count_parameters(build_model(name, pre))
        need = 16 * n + 2e9  # weights, gradients, 2 AdamW moments (float32) + activations
        if need > 0.5 * available_bytes():
            rows.append(
                {
                    "model": name,
                    "params": n,
                    "batch": batch,
                    "step_s": math.nan,
                    "note": "skipped: memory",
                }
            )
            continue
        torch.manual_seed(0)
        model = build_model(name, pre)
        x, y = torch.rand(batch, 4, p, p), torch.rand(batch, 4, p, p)
        ds = torch.utils.data.TensorDataset(x, y)
        ds.batch = lambda b, ds=ds: ds[torch.as_tensor(b)]  # the benchmark's fetch interface
        sec = bare_steps(model, ds, np.arange(batch), batch, 1)
        rows.append(
            {"model": name, "params": n, "batch": batch, "step_s": sec * scale,
             "note": f"batch {batch} ×{scale}" if scale > 1 else ""}
        )  # fmt: skip
        print(f"  paper {name}: {sec * scale:.1f} s/step", file=sys.stderr, flush=True)
        del model, x, y, ds
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20, help="timed demo steps per model (default 20)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    ap.add_argument(
        "--paper", default=",".join(BENCHMARK_MODELS), help="paper-size models to time ('' = none)"
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    demo = demo_rows(args.steps)
    paper = paper_rows([m for m in args.paper.split(",") if m])

    pre = get_preset("demo")
    print(
        f"\nTraining throughput at the demo preset ({pre.patch}×{pre.patch} patches, {args.threads} threads)"
    )
    print(
        f"{'model':<10} {'params':>11} {'batch':>6} {'step seq/s':>11} {'fit seq/s':>10} {'fit/step':>9}"
    )
    for r in demo:
        print(
            f"{r['model']:<10} {r['params']:>11,} {r['batch']:>6} {r['seq_s']:>11.0f} {r['loop_seq_s']:>10.0f} {r['ratio']:>8.2f}x"
        )
    if paper:
        print(
            f"\nPaper preset (50×50 patches), seconds per training step at batch 100 ({args.threads} threads)"
        )
        print(f"{'model':<10} {'params':>13} {'s/step':>8} {'paper-era s/step':>12}  note")
        for r in paper:
            spec = SPEC_STEP_S.get(r["model"])
            print(
                f"{r['model']:<10} {r['params']:>13,} {r['step_s']:>8.1f} "
                f"{(f'{spec:.1f}' if spec else '–'):>12}  {r['note']}"
            )
    sa = next(r for r in demo if r["model"] == "salstm")
    print(f"\nfit loop vs bare step, SA-LSTM demo: {sa['ratio']:.2f}x the time per step")
    return 0


if __name__ == "__main__":
    sys.exit(main())
