"""The ``acquire`` stage: :class:`AcquireSettings` (every check of its values), the request it
resolves to, and :func:`acquire` over a glacier's years."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from tqdm import tqdm

from .. import config, locks, settings
from ..catalog import Catalog
from ..errors import GlacierError
from ..registry import existing_config, write_glacier
from ..settings import SettingsError, option
from .loading import Computer, SceneLoader, StackstacLoader, resign_href
from .stac import (
    COLLECTIONS,
    DEFAULT_COLLECTION,
    LEGACY_COLLECTION,
    PC_STAC_URL,
    AcquireRequest,
    _short,
    open_catalog,
    validate_bbox,
    validate_epsg,
)  # fmt: skip
from .years import YearReport, _existing_year, _no_bar, acquire_year

# pystac, pystac_client, planetary_computer, stackstac, distributed, rasterio and pyproj are
# imported inside the functions that use them: they are slow to load and only the
# download itself needs them, not the settings, the filters or `--help`.


# ----------------------------------------------------------------------------------- the stage
def _check_not_synthetic(paths: config.Paths, s: AcquireRequest) -> None:
    """Refuse to mix real scenes into a folder of synthetic ones (or replace them with --force)."""
    if not paths.truth.exists():
        return
    if not s.force:
        raise GlacierError(
            f"{paths.glacier_dir} holds synthetic scenes (truth.npz): acquire into another "
            "--data-root or --name, or pass --force to replace them"
        )
    removed = [paths.truth, *sorted(paths.raw_dir.glob("*.npz"))]
    for p in removed:
        p.unlink(missing_ok=True)
    print(
        f"--force: removed the synthetic data of {s.name} ({len(removed)} files)", file=sys.stderr
    )


def acquire(
    s: AcquireRequest,
    root: str | os.PathLike,
    loader: SceneLoader | None = None,
    resign: Callable[[str], str] = resign_href,
    progress: bool | None = None,
    client=None,
) -> list[YearReport]:
    """Acquire every year of ``s`` into ``<root>/<name>/raw/<year>.npz``; returns one report per
    year (also for skipped ones). ``resign`` maps an expired signed href to a fresh one;
    ``client`` is an open ``distributed.Client`` to compute on (overrides ``s.scheduler``).

    Raises GlacierError when nothing at all was found or kept (after printing the table).
    """
    loader = loader or StackstacLoader()
    paths = config.Paths(Path(root), s.name)
    years = range(s.years[0], s.years[1] + 1)
    _check_not_synthetic(paths, s)

    reports: dict[int, YearReport] = {}
    todo = []
    for y in years:
        existing = None if s.force else _existing_year(paths.raw_year(y), s)
        if existing is None:
            todo.append(y)
        else:
            n = existing.data.shape[0]
            reports[y] = YearReport(y, kept=n, status="exists, skipped", path=paths.raw_year(y))
    if todo:
        catalog = open_catalog(s)
        _check_collection(catalog, s)
        with Computer(s.scheduler, s.threads, client) as computer:
            bar = tqdm(todo, desc=f"acquire {s.name}", unit="year", disable=_no_bar(progress))
            for y in bar:
                bar.set_postfix_str(str(y))
                reports[y] = acquire_year(catalog, y, s, paths, loader, computer, resign, progress)
    out = [reports[y] for y in years]
    print(format_report(out, s))
    if todo and not any(r.path for r in out):
        if not any(r.found for r in out):
            raise GlacierError(
                f"no Landsat 8 scene in {s.collection} at {s.stac_url} for bbox "
                f"{' '.join(f'{v:g}' for v in s.bbox)} in {s.years[0]}-{s.years[1]}: check "
                "--bbox (W S E N, degrees), --years and --collection; no file was written"
            )
        raise GlacierError(
            f"{sum(r.found for r in out)} scenes found but none passed the filters "
            f"({sum(r.clouds for r in out)} too cloudy, {sum(r.gaps for r in out)} too gappy): "
            "raise --max-cloud or --max-missing; no file was written"
        )
    return out


def _check_collection(catalog, s: AcquireRequest) -> None:
    """A server without the collection is a clear error, not an empty result."""
    from pystac_client.exceptions import APIError

    other = LEGACY_COLLECTION if s.collection == DEFAULT_COLLECTION else DEFAULT_COLLECTION
    try:
        found = catalog.get_collection(s.collection)  # None on HTTP 404
    except (APIError, OSError, KeyError, ValueError) as e:
        raise GlacierError(
            f"cannot read collection {s.collection!r} from {s.stac_url} ({_short(e, 120)}): "
            f"check --stac-url, or try --collection {other}"
        ) from None
    if found is None:
        raise GlacierError(
            f"the STAC API at {s.stac_url} has no collection {s.collection!r}: "
            f"try --collection {other}"
        )


def format_report(reports: Sequence[YearReport], s: AcquireRequest) -> str:
    """The per-year table printed at the end of a run."""
    head = (
        "year",
        "found",
        "other platform",
        f"clouds >{s.max_cloud:g}%",
        f"gaps ≥{s.max_missing:g}",
        "kept",
        "result",
    )
    rows = [
        (
            str(r.year),
            str(r.found),
            str(r.other_platform),
            str(r.clouds),
            str(r.gaps),
            str(r.kept),
            r.status,
        )
        for r in reports
    ]
    widths = [max(len(x) for x in col) for col in zip(head, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i < 6 else c for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join(
        [
            f"Landsat 8 scenes of {s.name} ({s.collection}, EPSG:{s.epsg}):",
            line(head),
            *map(line, rows),
        ]
    )


# ---------------------------------------------------------------------------------- the stage
@dataclass(frozen=True)
class AcquireSettings:
    """Download Landsat 8 scenes from the Planetary Computer (STAC).

    Search a STAC API (the Microsoft Planetary Computer by default) once per year over a glacier's
    bbox, keep Landsat 8 scenes with eo:cloud_cover <= --max-cloud and a missing-pixel fraction
    < --max-missing, stack the 7 reflective bands at 30 m in UTM and write
    <data-root>/<glacier>/raw/<year>.npz (uint16 DN, 0 = nodata). Finished years are skipped unless
    --force. Needs internet; the rest of the pipeline runs on `glacier-movement synthesize` data
    without it. Give either --glacier or --bbox with --name.
    """

    glacier: str | None = option(
        None,
        metavar="NAME",
        help="a configured glacier (parvati, aletsch, one added with `glacier add`) or the path "
        "of its .toml",
    )
    bbox: tuple[float, ...] | None = option(
        None, nargs=4, metavar=("W", "S", "E", "N"), help="any lon/lat box (degrees); needs --name"
    )
    name: str | None = option(
        None,
        help="glacier name for --bbox: its data folder, and <data-root>/glaciers/NAME.toml is "
        "written so later stages accept --glacier NAME",
    )
    years: str | None = option(
        None, help="YYYY or FIRST-LAST (default: the glacier's; --bbox 2013-2021)"
    )
    max_cloud: float = option(
        20.0, metavar="PERCENT", help="largest eo:cloud_cover kept (default 20)"
    )
    max_missing: float = option(
        0.5,
        metavar="FRACTION",
        help="drop scenes with this fraction of missing pixels or more (default 0.5)",
    )
    collection: str = option(
        DEFAULT_COLLECTION,
        help=f"STAC collection: {DEFAULT_COLLECTION} (default) or the legacy {LEGACY_COLLECTION}",
    )
    stac_url: str = option(
        PC_STAC_URL, metavar="URL", help="STAC API (default: Planetary Computer)"
    )
    epsg: int | None = option(
        None,
        help="output CRS (default: the glacier's; for --bbox the UTM zone of the bbox centre, "
        "polar stereographic beyond UTM)",
    )
    scheduler: str = option(
        "threads",
        metavar="ADDRESS",
        help="'threads' (default), 'local' (a dask LocalCluster) or a dask.distributed scheduler "
        "address",
    )
    threads: int = option(8, help="scenes read at once with --scheduler threads (default 8)")
    retries: int = option(3, help="HTTP retries per STAC request (default 3)")
    force: bool = option(False, help="download years whose files exist again")

    def __post_init__(self) -> None:
        """Every check that needs no glacier config and no network (the one home of the
        acquire bounds; :func:`resolve` only adds what a configured glacier decides)."""
        if self.glacier is None and self.bbox is None:
            raise SettingsError("glacier", "or --bbox is required: say where to download")
        if self.glacier is not None and self.bbox is not None:
            raise SettingsError("glacier", "and --bbox exclude each other: give one of them")
        if self.bbox is not None:
            object.__setattr__(self, "bbox", validate_bbox(self.bbox))
            if not self.name:
                raise SettingsError("bbox", "needs --name NAME (the folder the scenes go to)")
        if self.name is not None:
            config.validate_name(self.name, "name")
        if self.years is not None:
            config.parse_years(self.years)
        if self.collection not in COLLECTIONS:
            raise SettingsError(
                "collection",
                f"{self.collection!r} is an unknown collection: use {DEFAULT_COLLECTION} (current "
                f"Planetary Computer) or {LEGACY_COLLECTION} (the original's legacy id)",
            )
        if self.epsg is not None:
            validate_epsg(self.epsg)
        if not 0 <= self.max_cloud <= 100:
            raise SettingsError("max_cloud", f"{self.max_cloud} is not a percentage: give 0 to 100")
        if not 0 < self.max_missing <= 1:
            raise SettingsError(
                "max_missing", f"{self.max_missing} is not a fraction: give a number in (0, 1]"
            )
        if self.threads < 1:
            raise SettingsError("threads", f"must be ≥ 1 (got {self.threads})")
        if self.retries < 0:
            raise SettingsError("retries", f"must be ≥ 0 (got {self.retries})")
        if urlparse(self.stac_url).scheme not in ("http", "https"):
            raise SettingsError(
                "stac_url", f"{self.stac_url!r} is not an http(s) URL of a STAC API"
            )


def resolve(s: AcquireSettings, root: str | os.PathLike | None) -> AcquireRequest:
    """The request of the stage's settings (a configured glacier, or a bbox and a name); the
    settings checked their values when they were made, the glacier's config its own."""
    if s.glacier:
        g = config.get_glacier(s.glacier, root)
        bbox, name, epsg, years = g.bbox, g.name, g.epsg, g.years
        if s.name and s.name != g.name:
            raise SettingsError("name", "goes with --bbox; a named --glacier uses its own name")
    else:
        assert s.bbox is not None and s.name is not None  # AcquireSettings.__post_init__
        bbox, name, years = s.bbox, s.name, (2013, 2021)
        epsg = config.default_epsg(bbox)
    if s.years:
        years = config.parse_years(s.years)
    w, south, e, n = (float(v) for v in bbox)
    return AcquireRequest(
        name=name, bbox=(w, south, e, n), years=years, epsg=s.epsg or epsg,
        collection=s.collection, stac_url=s.stac_url, max_cloud=s.max_cloud,
        max_missing=s.max_missing, force=s.force, scheduler=s.scheduler, threads=s.threads,
        retries=s.retries,
    )  # fmt: skip


def bbox_glacier(
    s: AcquireRequest, root: str | os.PathLike | None
) -> tuple[config.GlacierConfig, bool]:
    """The glacier config ``acquire --bbox … --name`` stands for, and whether it must be written.

    An existing config of the name must hold the same bbox and CRS (the scenes on disk belong to
    it); otherwise a one-line error before anything is downloaded.
    """
    old = existing_config(s.name, root)
    if old is not None:
        cfg = config.get_glacier(old.stem, root)
        if tuple(cfg.bbox) != tuple(s.bbox) or cfg.epsg != s.epsg:
            raise GlacierError(
                f"glacier {s.name!r} is configured in {old} with bbox "
                f"{' '.join(f'{v:g}' for v in cfg.bbox)} on EPSG:{cfg.epsg}: use `acquire "
                f"--glacier {cfg.name}`, or another --name for this bbox"
            )
        return cfg, False
    cfg = config.glacier_from_dict(
        {"name": s.name, "bbox": list(s.bbox), "epsg": s.epsg, "years": list(s.years)}
    )
    return cfg, True


def run(s: AcquireSettings, catalog: Catalog) -> list[YearReport]:
    """The ``acquire`` stage (holding the glacier's data lock): the year files, and for a
    ``--bbox`` glacier its config once the download succeeded."""
    req = resolve(s, catalog.root)
    # check (and make) the config of a --bbox glacier before downloading, write it after success
    glacier, new = bbox_glacier(req, catalog.root) if not s.glacier else (None, False)
    paths = catalog.glacier(req.name)
    t0 = time.perf_counter()
    with locks.hold(paths.glacier_dir, f"the data of glacier {req.name!r}"):
        reports = acquire(req, catalog.root)
        settings.write(s, paths.settings_file("acquire"), "acquire")
    written = [r for r in reports if r.status == "written"]
    print(
        f"{len(written)} year files written, {sum(r.status.startswith('exists') for r in reports)} "
        f"skipped, under {paths.raw_dir} in {time.perf_counter() - t0:.0f} s"
    )
    if new:
        assert glacier is not None  # bbox_glacier made it
        path = write_glacier(
            glacier, catalog.root, comment="written by `glacier-movement acquire --bbox`"
        )
        print(f"glacier config -> {path}: use --glacier {req.name} in the next commands")
    return reports
