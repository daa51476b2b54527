#!/usr/bin/env python3
"""Benchmark of the synthetic Landsat-8 glacier: how long a year of scenes takes to generate.

Generates one Parvati-size year (800×800 ROI, ≈ 23 scenes of 7 bands) and one demo-size year
(160×160) into a temporary data root, timing each step, and as the reference reads the written
Parvati year file back with ``io.read_scenes`` in the same run (the generator stands in for a
download, so "how many file reads is a generated year" is the figure that matters).

Run: ``.venv/bin/python benchmarks/synthetic.py [--year 2015] [--seed 0]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from glacier_movement import io  # noqa: E402
from glacier_movement.config import BANDS, OFFSET, SCALE, Paths, get_glacier  # noqa: E402
from glacier_movement.synthetic import Generator, geotransform, synthesize  # noqa: E402


def one_year(root: Path, size: tuple[int, int], year: int, seed: int) -> dict:
    """Time the steps of one Parvati year at ``size`` (ROI), then the whole stage end to end."""
    cfg = get_glacier("parvati")
    t0 = time.perf_counter()
    gen = Generator(cfg, size, seed)
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    plans = gen.plan_year(year)
    t_plan = time.perf_counter() - t0
    data = np.empty((len(plans), len(BANDS), *gen.shape), np.uint16)
    render = []
    for i, p in enumerate(plans):
        t0 = time.perf_counter()
        data[i] = gen.render(p)
        render.append(time.perf_counter() - t0)
    scenes = io.Scenes(
        times=np.array([p.time for p in plans], dtype="datetime64[ns]"),
        data=data,
        cloud_cover=np.array([p.cloud_cover for p in plans]),
        glacier=cfg.name,
        epsg=cfg.epsg,
        transform=geotransform(cfg),
        scale=SCALE,
        offset=OFFSET,
    )
    path = root / "steps" / f"{year}.npz"
    t0 = time.perf_counter()
    io.write_scenes(path, scenes)
    t_write = time.perf_counter() - t0
    t0 = time.perf_counter()
    io.read_scenes(path)
    t_read = time.perf_counter() - t0
    # the stage as users run it (build, plan, render, write the year file and truth.npz)
    t0 = time.perf_counter()
    synthesize(cfg, root / "stage", size=size, years=(year, year), seed=seed, progress=False)
    t_stage = time.perf_counter() - t0
    return dict(
        size=f"{size[0]}×{size[1]}",
        n=len(plans),
        build=t_build,
        plan=t_plan,
        render_ms=1000 * float(np.mean(render)),
        render_max_ms=1000 * float(np.max(render)),
        write=t_write,
        read=t_read,
        stage=t_stage,
        mb=path.stat().st_size / 1e6,
        truth=Paths(root / "stage", cfg.name).truth.is_file(),
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--year", type=int, default=2015)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in ((800, 800), (160, 160)):
            rows.append(one_year(Path(tmp) / f"{size[0]}", size, args.year, args.seed))
    print(f"synthetic Parvati year {args.year}, seed {args.seed}")
    head = f"{'ROI':>9} {'scenes':>6} {'build s':>8} {'plan s':>7} {'render ms/scene':>16} {'max ms':>7} {'write s':>8} {'file MB':>8} {'read s':>7} {'stage s':>8} {'stage ms/scene':>15}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['size']:>9} {r['n']:>6} {r['build']:>8.2f} {r['plan']:>7.2f} {r['render_ms']:>16.1f} "
            f"{r['render_max_ms']:>7.1f} {r['write']:>8.2f} {r['mb']:>8.1f} {r['read']:>7.2f} "
            f"{r['stage']:>8.2f} {1000 * r['stage'] / r['n']:>15.1f}"
        )
    big = rows[0]
    print(
        f"summary: a Parvati-size year ({big['size']}, {big['n']} scenes) synthesizes in "
        f"{big['stage']:.1f} s end to end ({1000 * big['stage'] / big['n']:.0f} ms/scene; rendering "
        f"{big['render_ms']:.0f} ms/scene) = {big['stage'] / big['read']:.1f}× the time to read the "
        f"same year file back ({big['read']:.2f} s, reference, same run)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
