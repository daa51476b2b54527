"""One year of one glacier: search, cloud and gap filters, download of the kept scenes, the year
file and its provenance record."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from .. import config, io
from ..errors import DataError, GlacierError
from .loading import (
    Computer,
    LoadedStack,
    SceneLoader,
    _asset_error,
    _is_403,
    _read_errors,
)  # fmt: skip
from .stac import (
    _MEMORY_SHARE,
    AcquireRequest,
    _short,
    cloud_cover,
    collection_scale_offset,
    item_time,
    normalize_item,
    search_year,
)  # fmt: skip

# pystac, pystac_client, planetary_computer, stackstac, distributed, rasterio and pyproj are
# imported inside the functions that use them: they are slow to load and only the
# download itself needs them, not the settings, the filters or `--help`.


# ------------------------------------------------------------------------------------ per year
@dataclass
class YearReport:
    """What happened to one year: counts of Landsat 8 items and the outcome."""

    year: int
    found: int = 0
    other_platform: int = 0
    clouds: int = 0
    gaps: int = 0
    kept: int = 0
    status: str = ""
    path: Path | None = None
    kept_ids: list[str] = field(default_factory=list)


def _existing_year(path: Path, s: AcquireRequest) -> io.Scenes | None:
    """The finished year file at ``path``, or None if there is none (or a damaged one)."""
    if not path.exists():
        return None
    try:
        scenes = io.read_scenes(path)
    except DataError as e:
        print(
            f"note: {path} is damaged ({_short(e, 120)}); downloading the year again",
            file=sys.stderr,
        )
        return None
    if scenes.epsg != s.epsg:
        raise GlacierError(
            f"{path} was acquired on EPSG:{scenes.epsg}, not EPSG:{s.epsg}: pass --force to "
            "download it again, or the matching --epsg"
        )
    return scenes


def _fetch(
    loader: SceneLoader,
    computer: Computer,
    items: list[dict[str, Any]],
    s: AcquireRequest,
    select: Callable[[Any, int], Any],
    indices: Sequence[int],
    desc: str,
    resign: Callable[[str], str],
    progress: bool | None,
) -> tuple[dict[int, np.ndarray], LoadedStack]:
    """Compute ``select(stack.data, i)`` for every i in ``indices``.

    On HTTP 403 (an expired signature) the items are re-signed, the stack rebuilt and the scenes
    not yet read are tried once more; any other read error is a GlacierError naming the asset.
    """
    done: dict[int, np.ndarray] = {}
    resigned = False
    with tqdm(
        total=len(indices), desc=desc, unit="scene", leave=False, disable=_no_bar(progress)
    ) as bar:
        while True:
            stack = loader.stack(items, s.bbox, s.epsg, s.resolution)
            todo = [i for i in indices if i not in done]
            try:
                for k, arr in computer.compute([select(stack.data, i) for i in todo]):
                    done[todo[k]] = arr
                    bar.update(1)
                return done, stack
            except _read_errors() as e:
                if _is_403(e) and not resigned:
                    resigned = True
                    for it in items:
                        for asset in it["assets"].values():
                            asset["href"] = resign(asset["href"])
                    tqdm.write(
                        f"{desc}: HTTP 403 (expired signature?): re-signing the items, retrying",
                        file=sys.stderr,
                    )
                    continue
                err = _asset_error(e, items)
                if err is None:
                    raise
                raise err from None


def _no_bar(progress: bool | None) -> bool | None:
    """tqdm's ``disable``: None = show bars only on a terminal (not in logs of cluster jobs)."""
    return None if progress is None else not progress


def _memory_budget() -> float:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") * _MEMORY_SHARE
    except (ValueError, OSError, AttributeError):
        return float("inf")


def acquire_year(
    catalog,
    year: int,
    s: AcquireRequest,
    paths: config.Paths,
    loader: SceneLoader,
    computer: Computer,
    resign: Callable[[str], str],
    progress: bool | None,
) -> YearReport:
    """Search, filter, download and write one year; returns its report (no file if none kept)."""
    rep = YearReport(year)
    found, rep.other_platform = search_year(catalog, s, year)
    rep.found = len(found)
    if not found:
        rep.status = "no Landsat 8 scene found"
        return rep
    clear = [it for it in found if cloud_cover(it) <= s.max_cloud]
    rep.clouds = len(found) - len(clear)
    if not clear:
        rep.status = "all too cloudy"
        return rep
    items = [normalize_item(it) for it in clear]
    scale, offset = collection_scale_offset(items)

    # Gap check on the green band only (1/7 of the data), before the rest is downloaded.
    green, stack = _fetch(
        loader,
        computer,
        items,
        s,
        lambda d, i: d[i, config.GREEN],
        range(len(items)),
        f"{year} gap check",
        resign,
        progress,
    )
    missing = np.array([np.count_nonzero(green[i] == 0) / green[i].size for i in range(len(items))])
    keep = np.flatnonzero(missing < s.max_missing)
    rep.gaps = len(items) - len(keep)
    rep.kept = len(keep)
    if not len(keep):
        rep.status = "all too gappy"
        return rep
    _, _, h, w = stack.data.shape
    need = len(keep) * len(config.BANDS) * h * w * 2
    if need > _memory_budget():
        raise GlacierError(
            f"{year}: {len(keep)} scenes of {h}×{w} px need {need / 2**30:.1f} GiB in memory, more "
            "than half of this machine's: use a smaller bbox or a machine with more memory"
        )

    others = np.array([b for b in range(len(config.BANDS)) if b != config.GREEN])
    rest, stack = _fetch(
        loader,
        computer,
        items,
        s,
        lambda d, i: d[i, others],
        keep.tolist(),
        f"{year} download",
        resign,
        progress,
    )
    data = np.empty((len(keep), len(config.BANDS), h, w), dtype=np.uint16)
    for j, i in enumerate(keep.tolist()):
        data[j, others] = rest[i]
        data[j, config.GREEN] = green[i]
    scenes = io.Scenes(
        times=np.array([item_time(clear[i]) for i in keep], dtype="datetime64[ns]"),
        data=data,
        cloud_cover=np.array([cloud_cover(clear[i]) for i in keep], dtype=np.float64),
        glacier=s.name,
        epsg=stack.epsg,
        transform=stack.transform,
        scale=scale,
        offset=offset,
    )
    path = paths.raw_year(year)
    rep.kept_ids = [clear[i].id for i in keep]
    _write_provenance(path, s, rep, found, missing, clear)
    io.write_scenes(path, scenes)
    rep.path = path
    rep.status = "written"
    return rep


def _write_provenance(
    path: Path, s: AcquireRequest, rep: YearReport, found, missing, clear
) -> None:
    """``<year>.items.json`` beside the scene file: which items were kept or dropped, and why."""
    frac = {it.id: float(m) for it, m in zip(clear, missing, strict=True)}
    records = []
    for it in found:
        cc = cloud_cover(it)
        reason = (
            "clouds" if cc > s.max_cloud else "gaps" if frac[it.id] >= s.max_missing else "kept"
        )
        records.append(
            {
                "id": it.id,
                "datetime": str(item_time(it)),
                "cloud_cover": cc,
                "missing_fraction": frac.get(it.id),
                "result": reason,
            }
        )
    doc = {
        "stac_url": s.stac_url,
        "collection": s.collection,
        "bbox": list(s.bbox),
        "year": rep.year,
        "epsg": s.epsg,
        "max_cloud": s.max_cloud,
        "max_missing": s.max_missing,
        "other_platform": rep.other_platform,
        "items": records,
    }
    with io.atomic_path(path.with_name(f"{path.stem}.items.json")) as tmp:
        tmp.write_text(json.dumps(doc, indent=1))
