"""The scene files of a glacier: listing, selection, loading with the quality filter, cropping
and filling."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
from tqdm.auto import tqdm

from .. import io
from ..config import (
    GREEN,
    SWIR16,
    GlacierConfig,
    Paths,
)  # fmt: skip
from ..errors import GlacierError
from .fill import fill_missing
from .windows import roi_transform, roi_window

#: Sequences need 4 input + 4 target frames.
MIN_FRAMES = 8

SELECTIONS = ("auto", "config", "all")

#: Acquisition's filter (docs/data.md), applied again to the scene files (synthetic ones hold all).
MAX_CLOUD, MAX_MISSING = 20.0, 0.5


# ------------------------------------------------------------------------------ scene files
@dataclass
class SceneRecord:
    """Where a preprocessed scene came from: year file, index within it, time, cloud cover (%)."""

    path: Path
    index: int
    time: np.datetime64
    cloud_cover: float

    @property
    def label(self) -> str:
        return f"{self.path.name} scene {self.index} ({np.datetime_as_string(self.time, unit='D')})"


def raw_files(paths: Paths) -> list[tuple[int, Path]]:
    """The yearly scene files ``raw/<year>.npz`` present, as (year, path) sorted by year."""
    out = []
    if paths.raw_dir.is_dir():
        for p in paths.raw_dir.glob("*.npz"):
            if re.fullmatch(r"\d{4}", p.stem):
                out.append((int(p.stem), p))
    return sorted(out)


def is_synthetic(paths: Paths) -> bool:
    """Synthetic data are recognised by their ground truth file ``<glacier>/truth.npz``."""
    return paths.truth.is_file()


def _select(cfg: GlacierConfig, year: int, n: int, mode: str, path: Path) -> tuple[np.ndarray, str]:
    """Indices of the scenes of one year's file to use, and a note for the summary."""
    if mode == "all" or cfg.scene_selection is None:
        return np.arange(n), ""
    chosen = cfg.scene_selection.get(year)
    if chosen is None:
        return np.arange(n), f"{year}: no scene selection configured, all {n} scenes used"
    bad = [i for i in chosen if not 0 <= i < n]
    if bad:
        raise GlacierError(
            f"the {cfg.name} scene selection for {year} lists scene {bad[0]} but {path} holds {n} "
            "scenes: the selection indexes the real archive's items; use --select-scenes all for "
            "other data"
        )
    return np.asarray(chosen, dtype=np.int64), ""


def load_scenes(
    cfg: GlacierConfig,
    paths: Paths,
    *,
    select_scenes: str = "auto",
    roi: tuple[int, int, int, int] | None = None,
    max_cloud: float = MAX_CLOUD,
    max_missing: float = MAX_MISSING,
    progress: bool = False,
) -> tuple[list[np.ndarray], list[SceneRecord], dict]:
    """Read every ``raw/<year>.npz``, select scenes, filter, crop the ROI, fill missing pixels.

    Scene selection (``select_scenes``; "auto" = the configured lists for acquired data, all
    scenes for synthetic data, see :func:`is_synthetic`) indexes each year file's scene list. Then
    acquisition's filter is applied again: a scene is kept if its cloud cover is ≤ ``max_cloud``
    percent and its fraction of nodata pixels (green band, whole scene) is < ``max_missing``.
    Acquired files hold only such scenes (a no-op there); synthetic files hold every generated
    scene, also the cloudy and gappy ones.

    Returns (scenes: list of float32 (2, H, W) green/swir16 DN without missing pixels, in time
    order; their records; grid info: epsg, transform, roi used, scale, offset, selection mode,
    notes, fill statistics). Raises :class:`GlacierError` for no files, mismatched grids or an
    entirely missing scene (naming file, index and date).
    """
    files = raw_files(paths)
    if not files:
        raise GlacierError(
            f"no scene files {paths.raw_dir}/<year>.npz: run `glacier-movement acquire --glacier "
            f"{paths.glacier}` or `glacier-movement synthesize --glacier {paths.glacier}` first"
        )
    if select_scenes not in SELECTIONS:
        raise GlacierError(f"--select-scenes must be one of {', '.join(SELECTIONS)}")
    mode = select_scenes
    if mode == "auto":
        mode = "all" if is_synthetic(paths) else "config"

    crops: list[np.ndarray] = []  # uint16 (2, h, w) ROI crops, filled below
    records: list[SceneRecord] = []
    notes: list[str] = []
    grid = None
    n_read = n_cloudy = n_gappy = 0
    for year, path in tqdm(
        files, desc="reading scenes", unit="file", disable=not progress, leave=False
    ):
        s = io.read_scenes(path)
        shape = s.data.shape[2:]
        this = (shape, s.epsg, tuple(np.round(s.transform, 6)), s.scale, s.offset)
        if grid is None:
            grid = this
            first_path = path
            roi_used = roi_window(roi or cfg.roi, shape)
        else:
            _check_same_grid(grid, this, first_path, path)
        chosen, note = _select(cfg, year, len(s.times), mode, path)
        if note:
            notes.append(note)
        missing = (s.data[chosen, GREEN] == 0).mean(axis=(1, 2)) if len(chosen) else np.zeros(0)
        keep = (s.cloud_cover[chosen] <= max_cloud) & (missing < max_missing)
        n_cloudy += int((s.cloud_cover[chosen] > max_cloud).sum())
        n_gappy += int(((s.cloud_cover[chosen] <= max_cloud) & (missing >= max_missing)).sum())
        n_read += len(s.times)
        chosen = chosen[keep]
        r0, r1, c0, c1 = roi_used
        for i in chosen:
            crops.append(s.data[i, [GREEN, SWIR16], r0:r1, c0:c1].copy())
            t = cast(np.datetime64, s.times[i])  # one element of datetime64[ns] times
            records.append(SceneRecord(path, int(i), t, float(s.cloud_cover[i])))
        del s
    if not records:
        raise GlacierError(
            f"no usable scene in {paths.raw_dir}: {n_read} read, {n_cloudy} over {max_cloud:g} % "
            f"cloud, {n_gappy} with ≥ {max_missing:g} missing; acquire more scenes or relax "
            "--max-cloud / --max-missing"
        )

    assert grid is not None  # set with roi_used by the first file (records is not empty)
    order = np.argsort(np.array([r.time for r in records], dtype="datetime64[ns]"), kind="stable")
    records = [records[i] for i in order]
    crops = [crops[i] for i in order]
    filled_fraction = fill_scenes(crops, records, roi_used, progress)
    info = {
        "epsg": grid[1],
        "transform": roi_transform(grid[2], roi_used),
        "roi": roi_used,
        "scale": grid[3],
        "offset": grid[4],
        "selection": mode,
        "notes": notes,
        "n_read": n_read,
        "n_cloudy": n_cloudy,
        "n_gappy": n_gappy,
        "missing_fraction": filled_fraction,
        "shape": grid[0],
    }
    return crops, records, info


def _check_same_grid(grid: tuple, this: tuple, first_path: Path, path: Path) -> None:
    """Raise :class:`GlacierError` when a year file's grid differs from the first file's.

    ``grid`` and ``this`` are (shape (H, W), epsg, rounded transform, scale, offset) of the first
    file (``first_path``) and of ``path``: the shapes and the georeference must match.
    """
    if this[0] != grid[0]:
        shape = this[0]
        raise GlacierError(
            f"scenes of different shapes: {first_path} has {grid[0][0]}×{grid[0][1]} pixels, "
            f"{path} has {shape[0]}×{shape[1]}; acquire or synthesize all years with the same size"
        )
    if this[1:3] != grid[1:3]:
        raise GlacierError(
            f"scenes on different grids: {first_path} is EPSG:{grid[1]} {grid[2]}, {path} is "
            f"EPSG:{this[1]} {this[2]}; acquire all years with the same --epsg and bounds"
        )


def fill_scenes(
    crops: list[np.ndarray],
    records: Sequence[SceneRecord],
    roi: tuple[int, int, int, int],
    progress: bool = False,
) -> np.ndarray:
    """Fill the missing pixels (DN 0) of ROI crops band by band with :func:`fill_missing`.

    ``crops`` is a list of uint16 (2, h, w) green/swir16 DN crops; each is replaced, in place in
    the list, by its float32 (2, h, w) filled version. ``records`` (one per crop) and ``roi``
    (row0, row1, col0, col1) only name a scene in the error. Returns the fraction of pixels
    filled per scene, (N,) float64. Raises :class:`GlacierError` when a band is entirely missing.
    """
    band_names = ("green", "swir16")
    filled_fraction = np.zeros(len(crops))
    for k in tqdm(
        range(len(crops)),
        desc="filling missing pixels",
        unit="scene",
        disable=not progress,
        leave=False,
    ):
        dn = crops[k]
        nodata = dn == 0
        filled_fraction[k] = nodata.mean()
        out = np.empty(dn.shape, dtype=np.float32)
        for b in range(2):
            band = dn[b].astype(np.float64)
            band[nodata[b]] = np.nan
            try:
                out[b] = fill_missing(band)
            except ValueError as e:
                r0, r1, c0, c1 = roi
                raise GlacierError(
                    f"{records[k].label}: band {band_names[b]} cannot be filled in the region of "
                    f"interest rows {r0}:{r1}, cols {c0}:{c1} ({e}); remove the scene from the "
                    "file (acquire again) or choose another --roi"
                ) from None
        crops[k] = out
    return filled_fraction
