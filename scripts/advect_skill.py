"""Measure the ``advect`` forecast on a synthetic glacier: velocity endpoint error and skill against
climatology (docs/evaluation.md, "advect").

For the frames of ``<data-root>/<glacier>`` (synthesized and preprocessed; made at the demo size
when missing) it forecasts the whole frame at the test starts (or, with ``--starts val``, the
validation starts, on which the tracking settings are chosen) whose 4 target windows are
observed, with every named tracking setting, and prints the velocity's endpoint error against
``truth.npz`` and the skill 1 − MSE / MSE(climatology) on the glacier pixels and the whole frame,
beside persistence, the true velocity's advection and the ``oracle`` (baselines.oracle_scene:
its factors fitted on the training starts, as in the tables; and, as a measure of how much the
factors' estimation costs, the same family with factors fitted on the scored starts themselves —
an in-sample upper bound, never a forecast).

    python scripts/advect_skill.py --data-root /tmp/skill/motion --regime motion [--starts val]
    python scripts/advect_skill.py --data-root /tmp/skill/motion /tmp/skill/motion-s1 … \\
        --regime motion

Several data roots (replicates of one world, e.g. other seeds) are pooled: the skill then gets a
95 % paired interval over the forecast starts (clusters), from evaluation/skill.py.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from glacier_movement import advection, config
from glacier_movement import baselines as bl
from glacier_movement.baselines import glacier_sequences
from glacier_movement.evaluation.skill import skill_scores
from glacier_movement.io import read_frames
from glacier_movement.motion import advect, load_truth
from glacier_movement.preprocessing import preprocess
from glacier_movement.sequences import split_indices
from glacier_movement.synthetic import synthesize

N_IN = N_OUT = 4


def measure(root: Path, glacier: str, regime: str, which: str, patch: int, stride: int) -> dict:
    """Per-start MSE (glacier pixels, whole frame) of every forecast and the velocity EPE of each
    tracking setting at the ``which`` starts with observed targets of one data root."""
    cfg = config.get_glacier(glacier)
    paths = config.Paths(root, glacier)
    if not paths.frames.is_file():
        synthesize(cfg, root, size=(160, 160), seed=0, regime=regime)
        preprocess(cfg, root)
    fr = read_frames(paths.frames)
    ds, ref = glacier_sequences(fr, None, patch, stride)
    split = split_indices(ds, "paper")
    starts = np.unique(ds.position(split.test if which == "test" else split.val)[0])
    starts = np.array([s for s in starts if not fr.interpolated[s + N_IN : s + N_IN + N_OUT].any()])
    truth = load_truth(paths.truth, fr.roi, fr.frames.shape[1:])
    mask = truth.mask
    window = 365.25 / (12 // fr.window_months)
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
    ref.mask, ref.velocity = mask, truth.velocity
    forecasts["oracle"] = [bl.oracle_scene(ref, int(s)) for s in starts]
    # the same family with factors fitted on the scored starts (in-sample upper bound)
    deps = np.stack([bl.oracle_departures(ref, int(s) + N_IN - 1) for s in starts]).astype(float)
    anom = np.stack(targets).astype(float) - np.stack(forecasts["climatology"])
    best = np.empty((2, N_OUT))
    for p_, m in enumerate((mask, ~mask)):
        num = (deps[..., m] * anom[..., m]).sum(axis=(0, 2))
        den = (deps[..., m] ** 2).sum(axis=(0, 2))
        best[p_] = np.clip(num / np.maximum(den, 1e-12), 0, 1)
    fac = np.where(mask[None], best[0][:, None, None], best[1][:, None, None])
    forecasts["oracle, test-fitted"] = list(
        np.clip(np.stack(forecasts["climatology"]) + fac[None] * deps, 0, 1)
    )
    print(f"{root}: oracle factors (glacier, off) {bl.fit_oracle(ref).round(3).tolist()}, "
          f"test-fitted {best.round(3).tolist()}")  # fmt: skip
    epe = {}
    for name, s in advection.TRACKING.items():
        out, runs = advection.scene_forecasts(
            fr.frames, fr.window_start, fr.window_months, ref.fit, ref.clim, starts, mask, N_IN,
            N_OUT, s, progress=True,
        )  # fmt: skip
        forecasts[f"advect {name}"] = list(out)
        epe[f"advect {name}"] = [
            advection.velocity_error(r.velocity.velocity, truth, window) for r in runs
        ]
    target = np.stack(targets).astype(np.float64)
    sq = {k: (np.stack(v) - target) ** 2 for k, v in forecasts.items()}
    return {
        "starts": starts,
        "window": window,
        "glacier": {k: v[..., mask].mean(axis=(1, 2)) for k, v in sq.items()},  # (B,)
        "frame": {k: v.mean(axis=(1, 2, 3)) for k, v in sq.items()},
        "epe": epe,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--data-root", required=True, nargs="+",
        help="one or more data roots (replicates of one world: pooled with clustered intervals)",
    )  # fmt: skip
    p.add_argument("--glacier", default="parvati")
    p.add_argument("--regime", default="realistic", choices=("realistic", "motion"))
    p.add_argument("--starts", default="test", choices=("test", "val"))
    p.add_argument("--patch", type=int, default=20, help="the demo's patch (defines the split)")
    p.add_argument("--stride", type=int, default=10)
    a = p.parse_args()
    runs = {
        r: measure(Path(r), a.glacier, a.regime, a.starts, a.patch, a.stride) for r in a.data_root
    }
    for root, m in runs.items():
        print(f"{root}: {a.starts} starts with observed targets {m['starts'].tolist()}")
    names = list(next(iter(runs.values()))["glacier"])
    clusters = np.concatenate([[f"{r}|{s}" for s in m["starts"]] for r, m in runs.items()])
    print(
        f"{len(clusters)} forecast starts (clusters); skill = 1 − MSE / MSE(climatology) pooled "
        "over them, 95 % paired cluster interval; share = skill / skill of the true velocity"
    )
    print(
        f"{'forecast':20s} {'MSE glacier':>11s} {'skill glacier':>24s} {'share':>6s} "
        f"{'MSE frame':>9s} {'skill frame':>24s}  velocity EPE px/day (px/window)"
    )
    window = next(iter(runs.values()))["window"]
    for name in names:
        cells = []
        for part in ("glacier", "frame"):
            err = {k: np.concatenate([m[part][k] for m in runs.values()]) for k in names}
            sk = skill_scores(err[name], err["climatology"], clusters, err["true"])
            iv = sk.skill
            ci = f"[{iv.low:+.3f}, {iv.high:+.3f}]" if np.isfinite(iv.low) else ""
            cells.append(f"{err[name].mean():11.4f} {iv.mean:+7.3f} {ci:>16s}")
            if part == "glacier":
                cells.append(f"{sk.share.mean:6.2f}")
        e = [x for m in runs.values() for x in m["epe"].get(name, [])]
        vel = (
            f"{np.mean([x['epe_px_day'] for x in e]):.4f} "
            f"({np.mean([x['epe_px_window'] for x in e]):.2f})"
            if e
            else ""
        )
        print(f"{name:20s} {' '.join(cells)}  {vel}")
    e0 = [x for m in runs.values() for x in next(iter(m["epe"].values()))]
    print(
        f"true speed on the glacier {np.mean([x['true_px_day'] for x in e0]):.4f} px/day; no "
        f"motion has EPE {np.mean([x['zero_epe_px_window'] for x in e0]):.2f} px per "
        f"{window:.1f}-day window"
    )


if __name__ == "__main__":
    main()
