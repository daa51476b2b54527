"""How alike two sets of NDSI frames are: the ``frames-stats`` command (docs/synthetic.md).

Statistics of preprocessed snow/ice frames (NDSI where NDSI ≥ 0.3, else 0), per frame and per
set of frames (``--frames 23-26,31-34``), so that a user can see how far a glacier (real or
synthetic) is from another, e.g. the synthetic benchmark world from real Landsat frames:

- ``snow_fraction``: share of pixels with NDSI ≥ the threshold (snow/ice);
- ``mse_previous``: mean squared difference to the previous window (within the set);
- ``spatial_std``: standard deviation of the frame over the ROI;
- ``texture``: mean absolute difference of horizontal neighbours (fine-scale structure);
- ``median_snow``: median NDSI of the snow/ice pixels;
- ``mse_1y`` / ``mse_2y``: MSE of the same window one / two years earlier, used as a forecast;
- ``departure_corr_lag1..4`` (whole file, when it holds ≥ 3 years): correlation of the departures
  from the seasonal climatology (the mean of each window-of-year over the file's years) at lags of
  1–4 windows, pooled over pixels. With n years of in-sample climatology, uncorrelated departures
  give about −1/(n − 1) at a lag of one year, not 0.

Pixels that are NaN (a missing window, e.g. real frames known only in a few windows) are left out;
a statistic with no pixel left is NaN. Frame numbers count from 0, as the frame files and the
original's scene files do.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd

from . import config
from .catalog import Catalog
from .errors import DataError
from .io import load_npz, write_csv
from .settings import SettingsError, option

#: Per-frame statistics, in table order (name → what it is, for the printed table).
FRAME_STATS = {
    "snow_fraction": "snow/ice fraction (NDSI >= threshold)",
    "mse_previous": "MSE between consecutive windows",
    "spatial_std": "spatial standard deviation",
    "texture": "texture: mean |difference| of horizontal neighbours",
    "median_snow": "median NDSI of snow/ice pixels",
    "mse_1y": "same window one year earlier, as a forecast (MSE)",
    "mse_2y": "same window two years earlier, as a forecast (MSE)",
}
#: Lags (windows) of the departure correlation.
LAGS = (1, 2, 3, 4)
#: Fewest years of every window-of-year for a climatology worth its name.
MIN_YEARS = 3


@dataclass(frozen=True)
class FrameFile:
    """Frames (T, H, W) float, NaN = unknown, and how many windows make a year (None: unknown)."""

    frames: np.ndarray
    per_year: int | None
    name: str


def parse_sets(text: str) -> tuple[tuple[int, ...], ...]:
    """``"23-26,31-34"`` → ((23, 24, 25, 26), (31, 32, 33, 34)); ``"5"`` → ((5,),)."""
    sets = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if m is None:
            raise ValueError(f"{part!r} is not FIRST-LAST or N (e.g. 23-26,31-34)")
        a = int(m.group(1))
        b = int(m.group(2)) if m.group(2) is not None else a
        if b < a:
            raise ValueError(f"{part!r} ends before it starts")
        sets.append(tuple(range(a, b + 1)))
    return tuple(sets)


def read_frame_file(path: Path, per_year: int | None = None) -> FrameFile:
    """A frames file: ``preprocess``'s ``frames.npz`` (key ``frames``; its ``window_months`` gives
    the windows per year), an .npz holding one (T, H, W) array (optionally ``window_months``), or a
    plain .npy (T, H, W) array. ``per_year`` overrides the file's."""
    path = Path(path)
    if path.suffix == ".npy":
        if not path.is_file():
            raise DataError(f"{path} does not exist")
        try:
            arrays = {"frames": np.load(path, allow_pickle=False)}
        except ValueError as e:
            raise DataError(f"{path} is not a plain numpy array file ({e})") from None
    else:
        arrays = load_npz(path)
    if "frames" in arrays:
        frames = arrays["frames"]
    else:
        cubes = [k for k, v in arrays.items() if np.ndim(v) == 3]
        if len(cubes) != 1:
            raise DataError(
                f"{path} has no 'frames' key and {len(cubes)} (T, H, W) arrays: name the frames "
                "'frames'"
            )
        frames = arrays[cubes[0]]
    if frames.ndim != 3 or not np.issubdtype(frames.dtype, np.number):
        raise DataError(f"{path}: the frames are {frames.dtype} {frames.shape}, expected (T, H, W)")
    if per_year is None and "window_months" in arrays:
        per_year = 12 // int(arrays["window_months"])
    name = f"{path.parent.name}/{path.stem}" if path.stem == "frames" else path.stem
    return FrameFile(np.asarray(frames, dtype=np.float32), per_year, name)


# ------------------------------------------------------------------------------- the statistics
def _mse(a: np.ndarray, b: np.ndarray) -> float:
    d = (np.asarray(a, np.float64) - b) ** 2
    return float(np.nanmean(d)) if np.isfinite(d).any() else float("nan")


def frame_statistics(frame: np.ndarray, threshold: float = config.NDSI_THRESHOLD) -> dict:
    """``snow_fraction``, ``spatial_std``, ``texture`` and ``median_snow`` of one (H, W) frame
    (NaN pixels left out; NaN when no pixel is known)."""
    x = np.asarray(frame, dtype=np.float64)
    known = np.isfinite(x)
    if not known.any():
        return {k: float("nan") for k in ("snow_fraction", "spatial_std", "texture", "median_snow")}
    v = x[known]
    snow = v[v >= threshold]
    diff = np.abs(np.diff(x, axis=1))
    return {
        "snow_fraction": float(snow.size / v.size),
        "spatial_std": float(v.std()),
        "texture": float(np.nanmean(diff)) if np.isfinite(diff).any() else float("nan"),
        "median_snow": float(np.median(snow)) if snow.size else float("nan"),
    }


def set_statistics(
    ff: FrameFile, frames: tuple[int, ...], threshold: float = config.NDSI_THRESHOLD
) -> pd.DataFrame:
    """One row per frame of ``frames`` (columns :data:`FRAME_STATS`) and a last row ``mean`` (the
    mean over the set of each statistic's known values). ``mse_previous`` needs the previous frame
    in the set; ``mse_1y``/``mse_2y`` need the windows per year."""
    t_all = ff.frames.shape[0]
    bad = [t for t in frames if not 0 <= t < t_all]
    if bad:
        raise DataError(f"{ff.name} has frames 0-{t_all - 1}: frame {bad[0]} does not exist")
    rows = []
    for t in frames:
        x = ff.frames[t]
        row = {"frame": str(t), **frame_statistics(x, threshold)}
        row["mse_previous"] = _mse(x, ff.frames[t - 1]) if t - 1 in frames else float("nan")
        for years, key in ((1, "mse_1y"), (2, "mse_2y")):
            lag = None if ff.per_year is None else years * ff.per_year
            row[key] = _mse(x, ff.frames[t - lag]) if lag is not None and t >= lag else float("nan")
        rows.append(row)
    table = pd.DataFrame(rows, columns=pd.Index(["frame", *FRAME_STATS]))
    means = {k: float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")
             for k, v in table[list(FRAME_STATS)].items()}  # fmt: skip
    return pd.concat([table, pd.DataFrame([{"frame": "mean", **means}])], ignore_index=True)


def departure_correlation(ff: FrameFile, lags: tuple[int, ...] = LAGS) -> dict[int, float] | None:
    """Correlation of departures from the seasonal climatology at each lag (windows), pooled over
    every pixel and pair of frames both known; None when the file holds fewer than
    :data:`MIN_YEARS` known frames of some window-of-year (or the windows per year are unknown).

    The climatology of window-of-year s is the mean of frames s, s + P, s + 2P… (P windows per
    year; frame 0 starts a year), the departure of frame t is frame t − climatology(t mod P).
    """
    p = ff.per_year
    x = ff.frames.astype(np.float64)
    t_all = x.shape[0]
    if p is None or t_all < MIN_YEARS * p:
        return None
    known = np.asarray(np.isfinite(x).all(axis=(1, 2)))
    season = np.arange(t_all) % p
    if min(int(known[season == s].sum()) for s in range(p)) < MIN_YEARS:
        return None
    dep = np.full_like(x, np.nan)
    for s in range(p):
        idx = np.flatnonzero((season == s) & known)
        dep[idx] = x[idx] - x[idx].mean(axis=0)
    out = {}
    for lag in lags:
        pairs = [t for t in range(t_all - lag) if known[t] and known[t + lag]]
        if not pairs:
            out[lag] = float("nan")
            continue
        a = dep[pairs].ravel()
        b = dep[[t + lag for t in pairs]].ravel()
        sa, sb = a.std(), b.std()
        out[lag] = (
            float(np.mean((a - a.mean()) * (b - b.mean())) / (sa * sb)) if sa * sb else float("nan")
        )
    return out


def statistics(
    ff: FrameFile,
    sets: tuple[tuple[int, ...], ...] | None = None,
    threshold: float = config.NDSI_THRESHOLD,
) -> pd.DataFrame:
    """Long table ``set, frame, statistic, value`` of every set (None: all frames as one set) and,
    under set ``all``, the departure correlations (``departure_corr_lag<k>``) when computable."""
    every: tuple[tuple[int, ...], ...] = sets or (tuple(range(ff.frames.shape[0])),)
    parts = []
    for frames in every:
        wide = set_statistics(ff, frames, threshold)
        long = wide.melt(id_vars="frame", var_name="statistic", value_name="value")
        first, last = frames[0], frames[-1]
        long.insert(0, "set", f"{first}-{last}" if len(frames) > 1 else str(first))
        parts.append(long)
    corr = departure_correlation(ff)
    if corr is not None:
        parts.append(pd.DataFrame(
            [{"set": "all", "frame": "all", "statistic": f"departure_corr_lag{k}", "value": v}
             for k, v in corr.items()]
        ))  # fmt: skip
    return pd.concat(parts, ignore_index=True)


def compare(table: pd.DataFrame, other: pd.DataFrame) -> pd.DataFrame:
    """``table`` with the ``other`` file's value of each (set, frame, statistic) beside it
    (``compare``), the ratio ``value / compare`` and the difference ``value − compare``."""
    keys = ["set", "frame", "statistic"]
    out = table.merge(other.rename(columns={"value": "compare"}), on=keys, how="left")
    with np.errstate(divide="ignore", invalid="ignore"):
        out["ratio"] = out["value"] / out["compare"]
    out["difference"] = out["value"] - out["compare"]
    return out


def format_table(table: pd.DataFrame, name: str, other: str | None = None) -> str:
    """The table as text: one line per set and statistic, the per-frame values, then the set's
    mean (and, with a comparison, the other file's values, mean and the ratio of the means)."""

    def fmt(v: float) -> str:
        return "—" if not np.isfinite(v) else f"{v:.3f}"

    lines = []
    head = f"{'set':<8} {'statistic':<24} {name + ' (per frame)':<34} {'mean':>7}"
    if other is not None:
        head += f"   {other + ' (per frame)':<34} {'mean':>7} {'ratio':>6}"
    lines.append(head)
    for key, g in table.groupby(["set", "statistic"], sort=False):
        set_, stat = cast(tuple[str, str], key)
        per = g.loc[g["frame"] != "mean"]
        mean = g.loc[g["frame"] == "mean"]
        mean_v = float(mean["value"].iloc[0]) if len(mean) else float(per["value"].iloc[0])
        values = " ".join(fmt(v) for v in per["value"]) if set_ != "all" else ""
        line = f"{set_:<8} {stat:<24} {values:<34} {fmt(mean_v):>7}"
        if other is not None:
            row = mean if len(mean) else per
            mean_c = float(row["compare"].iloc[0])
            ratio = mean_v / mean_c if np.isfinite(mean_c) and mean_c else float("nan")
            if set_ != "all":
                line += f"   {' '.join(fmt(v) for v in per['compare']):<34}"
            else:
                line += f"   {'':<34}"
            line += f" {fmt(mean_c):>7} {fmt(ratio):>6}"
        if np.isfinite(per["value"]).any() or (other is not None and np.isfinite(mean_v)):
            lines.append(line.rstrip())
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- the stage
@dataclass(frozen=True)
class FramesStatsSettings:
    """Statistics of a frames file (snow fraction, change, contrast, texture), beside another.

    Per frame and per set of frames (--frames 23-26,31-34): the snow/ice fraction, the MSE between
    consecutive windows, the spatial standard deviation, the texture (mean absolute difference of
    horizontal neighbours), the median NDSI of snow/ice pixels and the MSE of the same window one
    and two years earlier; with 3 or more years, the correlation of departures from the seasonal
    climatology at lags of 1-4 windows. FRAMES is preprocess's <glacier>/frames.npz, an .npz holding
    one (T, H, W) array or a .npy array (NaN = unknown pixels or windows). --compare puts another
    file's figures beside them (e.g. synthetic vs real frames, docs/synthetic.md). Prints the table
    and writes it as CSV.
    """

    path: Path = option(
        positional=True, metavar="FRAMES", help="frames file (.npz or .npy), (T, H, W) NDSI"
    )
    compare: Path | None = option(
        None, metavar="OTHER", help="a second frames file whose statistics go beside (ratio = "
        "FRAMES / OTHER)"
    )  # fmt: skip
    frames: str | None = option(
        None,
        metavar="SETS",
        help="sets of frame numbers (from 0), e.g. 23-26,31-34 (default: all frames, one set)",
    )
    per_year: int | None = option(
        None,
        metavar="N",
        help="windows per year (default: from the file's window_months; needed for the one- and "
        "two-year statistics and the departure correlation)",
    )
    threshold: float = option(
        config.NDSI_THRESHOLD, help=f"snow/ice NDSI threshold (default {config.NDSI_THRESHOLD})"
    )
    out: Path | None = option(
        None, metavar="CSV", help="CSV to write (default: FRAMES with the suffix .stats.csv)"
    )

    def __post_init__(self) -> None:
        if self.frames is not None:
            try:
                parse_sets(self.frames)
            except ValueError as e:
                raise SettingsError("frames", f"is not a list of sets: {e}") from None
        if self.per_year is not None and self.per_year < 1:
            raise SettingsError("per_year", f"must be at least 1, got {self.per_year}")


def run(s: FramesStatsSettings, catalog: Catalog) -> pd.DataFrame:
    """The ``frames-stats`` stage: the statistics table (and the comparison), printed and written
    to CSV; returns it."""
    sets = parse_sets(s.frames) if s.frames is not None else None
    ff = read_frame_file(s.path, s.per_year)
    table = statistics(ff, sets, s.threshold)
    other_name = None
    if s.compare is not None:
        other = read_frame_file(s.compare, s.per_year)
        other_name = other.name if other.name != ff.name else f"{other.name} (compare)"
        table = compare(table, statistics(other, sets, s.threshold))
    print(format_table(table, ff.name, other_name))
    out = s.out or s.path.with_suffix(".stats.csv")
    write_csv(table, out, float_format="%.6g")
    print(f"wrote {out}", file=sys.stderr)
    return table
