"""The figure of docs/synthetic.md: synthetic frames at the paper's size, one per season.

Reads <data-root>/{parvati,aletsch}/frames.npz (`synthesize` + `preprocess` at the default size)
and draws Parvati's frames 31-34 (Oct-Dec 2020 … Jul-Sep 2021) and Aletsch's frames 22-25 (May-Aug
2020 … May-Aug 2021), the windows of the real frames that the original stores, on the same grey
scale (NDSI 0-0.8, 0 = below the 0.3 threshold), to set beside real NDSI frames.

    python scripts/season_figure.py --data-root /tmp/realism/after --out docs/figures/synthetic_seasons.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from glacier_movement.io import read_frames  # noqa: E402
from glacier_movement.preprocessing import window_label  # noqa: E402

WINDOWS = {"parvati": (31, 32, 33, 34), "aletsch": (22, 23, 24, 25)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root", type=Path, required=True, help="root holding both frames.npz")
    ap.add_argument("--out", type=Path, required=True, help="PNG to write")
    args = ap.parse_args()
    fig, axes = plt.subplots(2, 4, figsize=(10, 5.9))
    for row, (glacier, idx) in zip(axes, WINDOWS.items(), strict=True):
        fr = read_frames(args.data_root / glacier / "frames.npz")
        for ax, t in zip(row, idx, strict=True):
            ax.imshow(fr.frames[t], cmap="gray", vmin=0.0, vmax=0.8, interpolation="nearest")
            ax.set_title(
                f"{glacier} {t}: {window_label(fr.window_start[t], fr.window_months)}", fontsize=8
            )
            ax.axis("off")
    fig.suptitle(
        "Synthetic frames, realistic regime, paper size, seed 0 (NDSI, black < 0.3)", fontsize=9
    )
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=80)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
