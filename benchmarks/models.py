#!/usr/bin/env python3
"""Benchmark: the demo models' CPU training and inference, against the code they replaced.

Three switches make the demo job's training faster on the CPU without changing the maths (only
the order of rounding; docs/benchmarks.md):

* ``LSTMEncDec.one_pass_teacher``: under teacher forcing the decoder's inputs are all known, so
  it runs over the 4 steps in one call instead of four;
* ``ConvLSTM.one_pass_teacher``: likewise its 4 decoder windows run as one batch;
* ``UNet.channels_last``: the U-Net's weights, and so its activations, are NHWC, for which
  oneDNN has faster convolutions than for NCHW (training and inference).

For each model at the demo preset (20×20 patches, one thread, as every run of the demo job), the
same run times a training step at batch 32 (teacher forcing where the preset has it, MSE,
backward, AdamW) and an inference pass at batch 100 with the switches off (the reference) and on,
interleaved ``--repeats`` times; the median of each is kept. The last line is the ratio over the
four models together, weighted as in the demo job (per sample: 2 epochs, 1 for the ConvLSTM).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from glacier_movement.models import build_model
from glacier_movement.models.convlstm import ConvLSTM
from glacier_movement.models.lstm import LSTMEncDec
from glacier_movement.models.unet import UNet
from glacier_movement.presets import get_preset

MODELS = ("lstm", "salstm", "convlstm", "unet")


def switches(on: bool) -> None:
    LSTMEncDec.one_pass_teacher = on
    ConvLSTM.one_pass_teacher = on
    UNet.channels_last = on


def timed(fn: Callable[[], object], n: int) -> float:
    fn()  # warm-up: oneDNN builds its kernels on the first call
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n


def measure(name: str, on: bool, steps: int) -> tuple[float, float]:
    """(s per training sample, s per inference sample) of ``name`` with the switches ``on``."""
    switches(on)
    torch.manual_seed(0)
    model = build_model(name, "demo")
    cfg = get_preset("demo").train_config(name)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    p = get_preset("demo").patch
    x, y = torch.rand(32, 4, p, p), torch.rand(32, 4, p, p)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = F.mse_loss(model(x, y if cfg.teacher_forcing else None), y)
        loss.backward()
        opt.step()

    train = timed(step, steps) / 32
    model.eval()
    xe = torch.rand(100, 4, p, p)
    with torch.no_grad():
        infer = timed(lambda: model(xe), max(1, steps // 2)) / 100
    return train, infer


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=6, help="timed training steps per measurement")
    ap.add_argument("--repeats", type=int, default=3, help="reference/new pairs per model")
    a = ap.parse_args()
    torch.set_num_threads(1)
    epochs = {m: get_preset("demo").train_config(m).epochs for m in MODELS}
    tot = {(on, k): 0.0 for on in (False, True) for k in (0, 1)}
    print(
        f"{'model':<9} {'train ms/seq ref → new':>24} {'×':>6} {'infer ms/seq ref → new':>24} {'×':>6}"
    )
    for name in MODELS:
        runs = {False: [], True: []}
        for _ in range(a.repeats):
            for on in (False, True):
                runs[on].append(measure(name, on, a.steps))
        med = {on: [statistics.median(r[k] for r in runs[on]) for k in (0, 1)] for on in runs}
        for on in (False, True):
            tot[(on, 0)] += med[on][0] * epochs[name]
            tot[(on, 1)] += med[on][1]
        (r0, i0), (r1, i1) = med[False], med[True]
        print(
            f"{name:<9} {r0 * 1e3:>10.2f} → {r1 * 1e3:>9.2f} {r0 / r1:>6.2f} "
            f"{i0 * 1e3:>10.2f} → {i1 * 1e3:>9.2f} {i0 / i1:>6.2f}",
            flush=True,
        )
    switches(True)
    print(
        f"demo models on the CPU: training {tot[(False, 0)] / tot[(True, 0)]:.2f}x, inference "
        f"{tot[(False, 1)] / tot[(True, 1)]:.2f}x faster than step-by-step teacher forcing and an NCHW U-Net"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
