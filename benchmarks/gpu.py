#!/usr/bin/env python3
"""Benchmark: GPU readiness of every model at the paper preset, in one run of under 5 minutes.

Prints one table and a few lines:

* per model at the paper preset (50×50 patches, batch 100): training steps/s in float32 and
  with ``--amp`` (bf16 autocast; the LSTMs stay float32), peak GPU memory of each, and the
  memory computed without a GPU (:func:`memory_estimate`: weights + gradients + AdamW moments
  + the activations autograd saves for backward, measured on the meta device at batches 2 and 4
  and scaled linearly to the batch) beside it;
* LSTM gradients: the share that is exactly 0 under ``--amp`` (should be 0 %; cuDNN's float16
  LSTMs would zero most of them) and, from the float32 step, the share below float16's smallest
  subnormal 2⁻²⁴ (what float16 would flush to 0);
* one ``train --amp`` → ``train --resume`` → ``test`` → ``infer`` pass through the command line
  at the demo preset (synthetic drifting snow frames written straight to ``frames.npz``);
* one DDP run of ``train`` under ``torchrun`` with 2 processes: NCCL with 2 GPUs, else gloo with
  both ranks on one GPU (``GLACIER_DIST_BACKEND=gloo``).

``--device cpu --dry-run`` runs every part at the tiny preset, batch 4, 2 steps (tests/test_gpu_bench.py
runs it, so the script cannot rot). SimVP is included when ``glacier_movement.models`` has it.
"""

from __future__ import annotations

import argparse
import contextlib
import io as pyio
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from glacier_movement import cli, config, io  # noqa: E402
from glacier_movement.models import BENCHMARK_MODELS, build_model, count_parameters  # noqa: E402
from glacier_movement.presets import get_preset  # noqa: E402

GiB = 2**30
FP16_TINY = 2.0**-24  # float16's smallest subnormal: smaller gradients become 0 in float16


def models() -> list[str]:
    """The models the benchmarks time (the registry's ``benchmark`` flag)."""
    return list(BENCHMARK_MODELS)


# ----------------------------------------------------------------------------- memory, no GPU
def saved_activation_bytes(name: str, preset: str, batch: int) -> int:
    """Bytes autograd saves for backward in one training forward (teacher forcing) of ``name`` at
    ``batch``, on the meta device (shapes only: nothing is allocated). Parameters (and views of
    them) are not counted; storages shared by several saved tensors are counted once."""
    pre = get_preset(preset)
    with torch.device("meta"):
        model = build_model(name, pre).train()
        x = torch.empty(batch, 4, pre.patch, pre.patch)
        y = torch.empty(batch, 4, pre.patch, pre.patch)
    params = {p.untyped_storage()._cdata for p in model.parameters()}
    seen: dict[int, int] = {}
    keep = []  # hold the tensors so that no storage id is reused during the forward

    def pack(t: torch.Tensor) -> torch.Tensor:
        key = t.untyped_storage()._cdata
        if key not in params:
            seen[key] = t.untyped_storage().nbytes()
            keep.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        F.mse_loss(model(x, y), y)
    return sum(seen.values())


def memory_estimate(name: str, preset: str = "paper", batch: int = 100) -> dict[str, float]:
    """Training memory of ``name`` at ``batch`` in bytes, without a GPU: float32 weights,
    gradients and the two AdamW moments (16 B per parameter) plus the saved activations, measured
    at batches 2 and 4 and extrapolated linearly. CUDA context, cuDNN workspaces and allocator
    slack come on top (typically 0.5–2 GiB)."""
    with torch.device("meta"):
        n = count_parameters(build_model(name, get_preset(preset)))
    a2, a4 = (saved_activation_bytes(name, preset, b) for b in (2, 4))
    per_sample = (a4 - a2) / 2
    act = a2 + per_sample * (batch - 2)
    return {"params": n, "states": 16.0 * n, "activations": act, "total": 16.0 * n + act}


# ------------------------------------------------------------------------------- GPU steps
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def lstm_grads(model: torch.nn.Module) -> torch.Tensor | None:
    """All gradients of the model's nn.LSTM weights as one flat float32 tensor (None: no LSTM)."""
    gs = [
        p.grad.detach().float().flatten()
        for m in model.modules()
        if isinstance(m, torch.nn.LSTM)
        for p in m.parameters()
        if p.grad is not None
    ]
    return torch.cat(gs) if gs else None


def step_rate(
    name: str, preset: str, batch: int, device: torch.device, amp: bool, steps: int
) -> dict[str, float]:
    """Training steps/s (forward with teacher forcing, MSE, backward, clipping, AdamW) of
    ``name`` at ``batch`` on random NDSI-like data, after one warm-up step; peak memory; the
    LSTM gradients' share of exact zeros and of values below 2⁻²⁴ (last step)."""
    pre = get_preset(preset)
    torch.manual_seed(0)
    model = build_model(name, pre).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-3)
    x = torch.rand(batch, 4, pre.patch, pre.patch, device=device)
    y = torch.rand(batch, 4, pre.patch, pre.patch, device=device)
    cast = torch.autocast(device.type, dtype=torch.bfloat16) if amp else contextlib.nullcontext()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    t0 = 0.0
    for k in range(steps + 1):
        if k == 1:
            _sync(device)
            t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with cast:
            pred = model(x, y)
        F.mse_loss(pred.float(), y).backward()
        torch.nn.utils.clip_grad_value_(model.parameters(), 3.0)
        g = lstm_grads(model) if k == steps else None
        opt.step()
    _sync(device)
    sec = time.perf_counter() - t0
    out = {
        "steps_s": steps / sec,
        "peak": torch.cuda.max_memory_allocated(device) if device.type == "cuda" else math.nan,
        "zero": float((g == 0).float().mean()) if g is not None else math.nan,
        "tiny": float((g.abs() < FP16_TINY).float().mean()) if g is not None else math.nan,
    }
    del model, opt, x, y, pred, g
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return out


# ------------------------------------------------------------------------ command-line pass
def drifting_frames(t: int, size: int, seed: int = 0) -> np.ndarray:
    """(t, size, size) float32 masked NDSI: a smooth snow field drifting one pixel per frame."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    base = ndimage.gaussian_filter(rng.random((size + t, size + t)), 4.0)
    base = (base - base.min()) / (base.max() - base.min())
    out = np.stack([base[k : k + size, k // 2 : k // 2 + size] for k in range(t)])
    return np.where(out >= 0.45, out, 0.0).astype(np.float32)


def write_frames(root: Path, glacier: str, t: int, size: int) -> None:
    fr = drifting_frames(t, size)
    io.write_frames(
        config.Paths(root, glacier).frames,
        io.Frames(
            frames=fr,
            window_start=(np.datetime64("2013-01", "M") + 3 * np.arange(t)).astype("datetime64[D]"),
            window_months=3,
            n_scenes=np.ones(t, np.int64),
            interpolated=np.zeros(t, bool),
            glacier=glacier,
            epsg=32643,
            transform=(30.0, 0.0, 600000.0, 0.0, -30.0, 3550000.0),
            roi=(0, size, 0, size),
        ),
    )


def _cli(*argv: str) -> float:
    """Run one command in-process (its output swallowed); seconds. A failure raises."""
    t0 = time.perf_counter()
    buf = pyio.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        rc = cli.main(list(argv))
    if rc:
        raise RuntimeError(f"`glacier-movement {' '.join(argv)}` exited {rc}:\n{buf.getvalue()}")
    return time.perf_counter() - t0


def cli_pass(root: Path, device: str, preset: str, steps: int) -> dict[str, float]:
    """``train --amp`` for ``steps`` steps, ``--resume`` for as many more, ``test``, ``infer``."""
    size = get_preset(preset).scene_size["parvati"][0]
    write_frames(root, "parvati", t=36, size=size)
    common = ["--data-root", str(root), "--glacier", "parvati", "--device", device]
    train = ["train", *common, "--model", "salstm", "--preset", preset, "--amp"]
    train += ["--wandb", "disabled", "--no-progress", "--batch-size", "8"]
    out = {"train": _cli(*train, "--max-steps", str(steps))}
    out["resume"] = _cli(*train, "--resume", "--max-steps", str(2 * steps))
    run = f"salstm-parvati-{preset}"
    out["test"] = _cli("test", *common, "--run", run, "--bootstrap", "0")
    out["infer"] = _cli("infer", *common, "--run", run)
    from glacier_movement.checkpoints import load_checkpoint

    ck = load_checkpoint(root / "models" / run / "last.pt")
    if ck["step"] != 2 * steps:
        raise RuntimeError(f"the resumed run stopped at step {ck['step']}, not {2 * steps}")
    out["amp"] = float(ck["config"]["amp"])
    return out


def ddp_run(root: Path, device: str, preset: str, steps: int) -> dict[str, object]:
    """``torchrun --nproc_per_node=2 … train`` for ``steps`` steps: NCCL with ≥ 2 GPUs, gloo with
    both ranks on the one GPU otherwise (and on the CPU)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    backend = "gloo"
    if device.startswith("cuda"):
        backend = "nccl" if torch.cuda.device_count() >= 2 else "gloo"
        env["GLACIER_DIST_BACKEND"] = backend
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [
        str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "glacier_movement", "train",
        "--data-root", str(root), "--glacier", "parvati", "--model", "salstm", "--preset", preset,
        "--max-steps", str(steps), "--batch-size", "8", "--wandb", "disabled", "--no-progress",
        "--device", device, "--run-name", "ddp",
    ]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    sec = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"torchrun exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    from glacier_movement.checkpoints import load_checkpoint

    ck = load_checkpoint(root / "models" / "ddp" / "last.pt")
    return {"backend": backend, "seconds": sec, "ranks": len(ck.get("rng_ranks", []))}


# ------------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    ap.add_argument("--dry-run", action="store_true", help="tiny preset, batch 4, 2 steps")
    ap.add_argument("--steps", type=int, default=5, help="timed steps per model and mode")
    ap.add_argument("--batch", type=int, default=100, help="batch size (paper 100)")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no usable CUDA GPU: run with --device cpu --dry-run", file=sys.stderr)
        return 2
    preset, cli_preset = ("tiny", "tiny") if args.dry_run else ("paper", "demo")
    batch, steps = (4, 2) if args.dry_run else (args.batch, args.steps)
    t_all = time.perf_counter()
    if device.type == "cuda":
        print(f"GPU {torch.cuda.get_device_name(device)}, torch {torch.__version__}", flush=True)

    rows = []
    for name in models():
        est = memory_estimate(name, preset, batch)
        fp32 = step_rate(name, preset, batch, device, False, steps)
        amp = step_rate(name, preset, batch, device, True, steps)
        rows.append((name, est, fp32, amp))
        print(f"  {name}: {fp32['steps_s']:.2f} / {amp['steps_s']:.2f} steps/s", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        passed = cli_pass(Path(tmp) / "cli", args.device, cli_preset, steps)
        ddp = ddp_run(Path(tmp) / "cli", args.device, cli_preset, steps)

    gib = lambda b: "–" if not math.isfinite(b) else f"{b / GiB:.1f}"  # noqa: E731
    pct = lambda v: "–" if not math.isfinite(v) else f"{100 * v:.1f}"  # noqa: E731
    print(f"\n{preset} preset, batch {batch}, {steps} timed steps, device {device}")
    print(
        f"{'model':<9} {'params':>12} {'fp32 st/s':>9} {'amp st/s':>9} {'peak fp32':>9} "
        f"{'peak amp':>9} {'computed':>9} {'LSTM 0-grad amp %':>17} {'fp32 <2^-24 %':>13}"
    )
    for name, est, fp32, amp in rows:
        print(
            f"{name:<9} {est['params']:>12,} {fp32['steps_s']:>9.2f} {amp['steps_s']:>9.2f} "
            f"{gib(fp32['peak']):>9} {gib(amp['peak']):>9} {gib(est['total']):>9} "
            f"{pct(amp['zero']):>17} {pct(fp32['tiny']):>13}"
        )
    print("(memory in GiB; 'computed' = weights + grads + AdamW + saved activations, no GPU)")
    print(
        f"CLI at {cli_preset} (salstm, --amp → {'on' if passed['amp'] else 'off'}): train "
        f"{passed['train']:.1f} s, --resume {passed['resume']:.1f} s, test {passed['test']:.1f} s, "
        f"infer {passed['infer']:.1f} s"
    )
    print(
        f"DDP: torchrun 2 ranks over {ddp['backend']}, {steps} steps in {ddp['seconds']:.1f} s "
        f"(checkpoint holds {ddp['ranks']} ranks' RNG states)"
    )
    print(f"total {time.perf_counter() - t_all:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
