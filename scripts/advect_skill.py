"""Measure the ``advect`` forecast on a synthetic glacier: velocity endpoint error and skill against
climatology (docs/evaluation.md, "advect").

For the frames of ``<data-root>/<glacier>`` (synthesized and preprocessed; made at the demo size
when missing) it forecasts the whole frame at the test starts (or, with ``--starts val``, the
validation starts, on which the tracking settings are chosen) whose 4 target windows are
observed, with every named tracking setting, and prints the velocity's endpoint error against
``truth.npz`` and the skill 1 − MSE / MSE(climatology) on the glacier pixels and the whole frame,
beside persistence and the true velocity's advection.

    python scripts/advect_skill.py --data-root /tmp/skill/motion --regime motion [--starts val]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from glacier_movement import advection, config
from glacier_movement.baselines import glacier_sequences
from glacier_movement.io import read_frames
from glacier_movement.motion import advect, load_truth
from glacier_movement.preprocessing import preprocess
from glacier_movement.sequences import split_indices
from glacier_movement.synthetic import synthesize

N_IN = N_OUT = 4


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", required=True)
    p.add_argument("--glacier", default="parvati")
    p.add_argument("--regime", default="realistic", choices=("realistic", "motion"))
    p.add_argument("--starts", default="test", choices=("test", "val"))
    p.add_argument("--patch", type=int, default=20, help="the demo's patch (defines the split)")
    p.add_argument("--stride", type=int, default=10)
    a = p.parse_args()
    cfg = config.get_glacier(a.glacier)
    paths = config.Paths(Path(a.data_root), a.glacier)
    if not paths.frames.is_file():
        synthesize(cfg, a.data_root, size=(160, 160), seed=0, regime=a.regime)
        preprocess(cfg, a.data_root)
    fr = read_frames(paths.frames)
    ds, ref = glacier_sequences(fr, None, a.patch, a.stride)
    split = split_indices(ds, "paper")
    starts = np.unique(ds.position(split.test if a.starts == "test" else split.val)[0])
    starts = np.array([s for s in starts if not fr.interpolated[s + N_IN : s + N_IN + N_OUT].any()])
    truth = load_truth(paths.truth, fr.roi, fr.frames.shape[1:])
    mask = truth.mask
    window = 365.25 / (12 // fr.window_months)
    print(f"{a.glacier} ({a.regime}), {a.starts} starts with observed targets: {starts.tolist()}")

    forecasts: dict[str, list[np.ndarray]] = {"climatology": [], "persistence": [], "true": []}
    targets = []
    for s in starts:
        last = s + N_IN - 1
        days = advection.target_days(fr.window_start, last, fr.window_months, N_OUT)
        clim = ref.clim[last + 1 : last + 1 + N_OUT]
        moved = np.stack([advect(fr.frames[last], truth.velocity * np.float32(d)) for d in days])
        forecasts["climatology"].append(clim)
        forecasts["persistence"].append(np.repeat(fr.frames[last : last + 1], N_OUT, axis=0))
        forecasts["true"].append(np.where(mask, moved, clim))
        targets.append(fr.frames[last + 1 : last + 1 + N_OUT])
    epe = {}
    for name, s in advection.TRACKING.items():
        out, runs = advection.scene_forecasts(
            fr.frames, fr.window_start, fr.window_months, ref.fit, ref.clim, starts, mask, N_IN,
            N_OUT, s, progress=True,
        )  # fmt: skip
        forecasts[f"advect {name}"] = list(out)
        errs = [advection.velocity_error(r.velocity.velocity, truth, window) for r in runs]
        epe[f"advect {name}"] = {k: float(np.mean([e[k] for e in errs])) for k in errs[0]}
    target = np.stack(targets).astype(np.float64)

    def mse(pred: list[np.ndarray], on: np.ndarray | None) -> float:
        sq = (np.stack(pred) - target) ** 2
        return float(sq[..., on].mean() if on is not None else sq.mean())

    ref_g, ref_f = mse(forecasts["climatology"], mask), mse(forecasts["climatology"], None)
    print(f"{'forecast':24s} {'MSE glacier':>11s} {'MSE frame':>9s} {'skill glacier':>13s} "
          f"{'skill frame':>11s}  velocity EPE px/day (px/window)")  # fmt: skip
    for name, pred in forecasts.items():
        g, f = mse(pred, mask), mse(pred, None)
        e = epe.get(name)
        vel = f"{e['epe_px_day']:.4f} ({e['epe_px_window']:.2f})" if e else ""
        print(f"{name:24s} {g:11.4f} {f:9.4f} {1 - g / ref_g:+13.3f} {1 - f / ref_f:+11.3f}  {vel}")
    speed = next(iter(epe.values()))
    print(
        f"true speed on the glacier {speed['true_px_day']:.4f} px/day; no motion has EPE "
        f"{speed['zero_epe_px_window']:.2f} px per {window:.1f}-day window"
    )


if __name__ == "__main__":
    main()
