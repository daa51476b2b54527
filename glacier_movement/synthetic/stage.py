"""The ``synthesize`` stage: the scene files, truth and quick-looks of one glacier."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .. import config, io, locks, settings
from ..catalog import Catalog
from ..config import BANDS, OFFSET, SCALE, GlacierConfig, Paths
from ..errors import GlacierError
from ..plotting import scene_quicklook
from ..settings import SettingsError, glacier_option, option
from . import landscape
from .generator import Generator
from .statistics import (
    NDSI_PERCENTILES,
    REAL_SUMMER_NDSI,
    SUMMER_MONTHS,
    SnowNdsiHistogram,
    WindowMotionShare,
    _month,
)
from .world import (
    MAX_CLOUD,
    MAX_MISSING,
    PIXEL_M,
    REGIMES,
)


# ------------------------------------------------------------------------------- georeference
def geotransform(cfg: GlacierConfig) -> tuple[float, ...]:
    """Affine (a, b, c, d, e, f) of the 30 m grid whose upper-left corner is the bbox's projected
    upper-left corner (the bounds of the bbox in ``cfg.epsg``, as stackstac builds them)."""
    from pyproj import Transformer  # PROJ bindings and their database: only for this grid

    west, south, east, north = cfg.bbox
    tr = Transformer.from_crs(4326, cfg.epsg, always_xy=True)
    left, _, _, top = tr.transform_bounds(west, south, east, north)
    return (
        PIXEL_M,
        0.0,
        float(np.floor(left / PIXEL_M) * PIXEL_M),
        0.0,
        -PIXEL_M,
        float(np.ceil(top / PIXEL_M) * PIXEL_M),
    )


def _check_years(years: tuple[int, int]) -> tuple[int, int]:
    """Validate an inclusive (first, last) year pair like ``--years`` (one-line GlacierError)."""
    first, last = (int(v) for v in years)
    return config.parse_years(f"{first}-{last}")


# ---------------------------------------------------------------------------------- the stage
def synthesize(
    cfg: GlacierConfig,
    root: str | Path,
    size: tuple[int, int] | None = None,
    years: tuple[int, int] = (2013, 2021),
    seed: int = 0,
    progress: bool = True,
    only_kept: bool = False,
    force: bool = False,
    regime: str = "realistic",
    persistence: float = landscape.PERSISTENCE,
) -> list[Path]:
    """Write ``<root>/<glacier>/raw/<year>.npz`` for each year and ``<root>/<glacier>/truth.npz``.

    ``regime`` (:data:`REGIMES`): ``realistic`` (default) or ``motion`` (the motion benchmark).
    ``persistence``: the realistic regime's snow-line anomaly correlation ρ between windows 3
    months apart (AR(1), :class:`landscape.SnowlineAnomaly`; recorded in the truth).
    Besides the files, the truth holds the summer DN-NDSI percentiles of snow/ice pixels and the
    motion share of the clean surface's window means (:class:`WindowMotionShare`).

    ``size`` is the ROI size (H, W) (default: the configured ROI, Parvati 800×800, Aletsch
    600×600); the scene grid is (roi_row0 + H, roi_col0 + W). Returns the year files, then the
    truth file. Refuses (:class:`GlacierError`) sizes under 32 px, bad years, and — unless
    ``force`` — a glacier folder that holds scene files but no truth.npz (real downloads).
    """
    first, last = _check_years(years)
    gen = Generator(cfg, size, seed, regime, persistence)
    paths = Paths(Path(root), cfg.name)
    existing = sorted(paths.raw_dir.glob("*.npz")) if paths.raw_dir.is_dir() else []
    if existing and not paths.truth.exists() and not force:
        raise GlacierError(
            f"{paths.raw_dir} holds scene files without truth.npz (acquired data?): synthesize into "
            "another --data-root, or pass --force to overwrite them"
        )
    stale = [p.name for p in existing if p.stem.isdigit() and not first <= int(p.stem) <= last]
    if stale:
        print(
            f"note: {paths.raw_dir} also holds {', '.join(stale)} from an earlier run; remove them "
            "if they are not wanted (preprocessing reads every year file)",
            file=sys.stderr,
        )

    plans = {year: gen.plan_year(year) for year in range(first, last + 1)}
    flat = [p for year in plans for p in plans[year]]
    written = np.ones(len(flat), dtype=bool)
    transform = geotransform(cfg)
    out: list[Path] = []
    i = 0
    bar = tqdm(
        total=len(flat),
        desc=f"synthesizing {cfg.name}",
        unit="scene",
        disable=None if progress else True,
    )
    summer = SnowNdsiHistogram()
    motion = WindowMotionShare(gen, cfg.window_months)
    with bar:
        for year, year_plans in plans.items():
            data = np.empty((len(year_plans), len(BANDS), *gen.shape), dtype=np.uint16)
            for j, p in enumerate(year_plans):
                is_summer = _month(p.time) in SUMMER_MONTHS
                data[j], cloudy, clean = gen.render_full(p, cloud_mask=is_summer, clean=True)
                if clean is None:  # asked for: None would be a renderer bug
                    raise GlacierError(f"scene {p.time}: the renderer returned no clean surface")
                if cloudy is not None:  # asked for (and returned) in summer only
                    summer.add(data[j], gen.roi, cloudy)
                if round(p.cloud_cover, 2) <= MAX_CLOUD and p.missing < MAX_MISSING:
                    motion.add(p, clean)  # the scenes preprocessing would average
                bar.update()
            cc = np.array([p.cloud_cover for p in year_plans], dtype=np.float64)
            miss = np.array([p.missing for p in year_plans], dtype=np.float64)
            keep = (
                (cc <= MAX_CLOUD) & (miss < MAX_MISSING)
                if only_kept
                else np.ones(len(year_plans), bool)
            )
            written[i : i + len(year_plans)] = keep
            i += len(year_plans)
            scenes = io.Scenes(
                times=np.array([p.time for p in year_plans], dtype="datetime64[ns]")[keep],
                data=data[keep],
                cloud_cover=np.round(cc[keep], 2),
                glacier=cfg.name,
                epsg=cfg.epsg,
                transform=transform,
                scale=SCALE,
                offset=OFFSET,
            )
            out.append(io.write_scenes(paths.raw_year(year), scenes))
            del data, scenes
    truth = gen.truth(flat, written)
    truth["summer_ndsi_percentiles"] = summer.percentiles()
    truth["summer_ndsi_pixels"] = np.int64(summer.n)
    truth["motion_share"] = np.float64(motion.share())
    truth["regime"] = np.array(regime)
    # float64 arrays (the truth also holds numpy scalars): asarray returns them as they are
    cc = truth["cloud_cover"] = np.round(np.asarray(truth["cloud_cover"], dtype=np.float64), 2)
    truth["kept"] = (cc <= MAX_CLOUD) & (
        np.asarray(truth["missing_fraction"], dtype=np.float64) < MAX_MISSING
    )
    out.append(io.save_npz(paths.truth, compress=True, **truth))
    return out


def summarize(cfg: GlacierConfig, root: str | Path) -> list[str]:
    """One line per year of the last synthesis: scenes generated, kept-quality, cloud and gap ranges."""
    paths = Paths(Path(root), cfg.name)
    t = io.load_npz(paths.truth, {"scene_times": "scene times", "kept": "filter flags"})
    years = t["scene_times"].astype("datetime64[Y]").astype(int) + 1970
    lines = []
    for year in np.unique(years):
        sel = years == year
        cc, miss = t["cloud_cover"][sel], t["missing_fraction"][sel]
        lines.append(
            f"{cfg.name} {year}: {sel.sum()} scenes generated, {int(t['kept'][sel].sum())} kept-quality "
            f"(cloud <= {MAX_CLOUD:.0f} %, missing < {MAX_MISSING}), {int(t['written'][sel].sum())} written; "
            f"cloud {cc.min():.0f}-{cc.max():.0f} %, missing {miss.min():.2f}-{miss.max():.2f} "
            f"-> {paths.raw_year(int(year))}"
        )
    if "summer_ndsi_percentiles" in t:
        pct = " ".join(f"{v:.3f}" for v in t["summer_ndsi_percentiles"])
        lines.append(
            f"{cfg.name}: summer (Jul-Sep) DN-NDSI of snow/ice pixels (NDSI >= 0.3, clear, valid; "
            f"{int(t['summer_ndsi_pixels'])} px), percentiles "
            f"{'/'.join(str(q) for q in NDSI_PERCENTILES)}: {pct} (a real Landsat-8 glacier, "
            f"Athabasca 2020-08-16: {REAL_SUMMER_NDSI[0]}-{REAL_SUMMER_NDSI[1]}, snow mode 0.69)"
        )
    if "motion_share" in t:
        lines.append(
            f"{cfg.name}: regime {t['regime']}, motion share {float(t['motion_share']):.3f} (the "
            "part of the change between consecutive windows on the glacier that the true ice "
            "motion explains, clean surface)"
        )
    return lines


def quicklooks(
    cfg: GlacierConfig,
    root: str | Path,
    years: tuple[int, int] | None = None,
    progress: bool = False,
) -> list[Path]:
    """RGB quick-look grids ``figures/quicklook_<year>.png`` of the scene files (synthetic or
    acquired): every scene of the year, titled with date, cloud cover and gaps."""

    paths = Paths(Path(root), cfg.name)
    files = (
        sorted(p for p in paths.raw_dir.glob("*.npz") if p.stem.isdigit())
        if paths.raw_dir.is_dir()
        else []
    )
    if years is not None:
        files = [p for p in files if years[0] <= int(p.stem) <= years[1]]
    out: list[Path] = []
    for path in tqdm(files, desc="quick-looks", unit="year", disable=None if progress else True):
        s = io.read_scenes(path)
        r0, r1, c0, c1 = cfg.roi
        h, w = s.data.shape[2:]
        roi = (min(r0, h), min(r1, h), min(c0, w), min(c1, w))
        out += scene_quicklook(
            s.data,
            s.times,
            s.cloud_cover,
            paths.figures_dir / f"quicklook_{path.stem}.png",
            title=f"{cfg.name} {path.stem}: {len(s.times)} scenes (RGB; red titles fail the "
            f"{MAX_CLOUD:.0f} % cloud / {MAX_MISSING:.0%} gap filter)",
            roi=roi,
            max_cloud=MAX_CLOUD,
            max_missing=MAX_MISSING,
        )
    return out


# ---------------------------------------------------------------------------------- the stage
@dataclass(frozen=True)
class SynthesizeSettings:
    """Write synthetic Landsat-8 scene files of a glacier with known motion.

    Write <data-root>/<glacier>/raw/<year>.npz (every generated scene: 7-band DN, clouds, gaps,
    misregistration, seasonal snow, a moving glacier) and <glacier>/truth.npz (velocity in px/day,
    glacier mask, per-scene warps), plus RGB quick-looks in <glacier>/figures/.
    """

    glacier: str = glacier_option()
    size: tuple[int, int] | None = option(
        None,
        nargs=2,
        metavar=("H", "W"),
        help="ROI size in pixels (default: the configured ROI, 800 800 / 600 600)",
    )
    years: str | None = option(
        None, help="year range FIRST-LAST (default: the glacier's, 2013-2021)"
    )
    seed: int = option(0, help="random seed (default 0); the same seed gives the same data")
    regime: str = option(
        "realistic",
        choices=REGIMES,
        help="realistic (default: a mountain range calibrated to real Parvati and Aletsch "
        "frames, docs/synthetic.md) or motion (a benchmark where ice motion dominates the "
        "frame-to-frame change: stable snow line, textured bare tongue, speeds scaled with --size)",
    )
    only_kept: bool = option(
        False, help="write only the scenes acquisition would keep (cloud <= 20 %, missing < 0.5)"
    )
    quicklook: bool = option(
        True, flag="--no-quicklook", help="do not write the quick-look figures"
    )
    persistence: float = option(
        landscape.PERSISTENCE,
        metavar="RHO",
        help="realistic regime: correlation ρ of the snow-line anomaly between windows 3 months "
        f"apart, 0 <= RHO < 1 (default {landscape.PERSISTENCE}: an AR(1) anomaly that lasts about "
        "a season; 0 = independent windows; docs/synthetic.md)",
    )
    force: bool = option(False, help="overwrite scene files that have no truth.npz (acquired data)")
    progress: bool = option(True, cli=False, help="progress bars")

    def __post_init__(self) -> None:
        settings.check_choices(self)
        if not 0.0 <= self.persistence < 1.0:
            raise SettingsError(
                "persistence",
                f"must satisfy 0 <= RHO < 1 (an AR(1) correlation), got {self.persistence}",
            )
        if self.years is not None:
            config.parse_years(self.years)


def run(s: SynthesizeSettings, catalog: Catalog) -> list[Path]:
    """The ``synthesize`` stage: scene files, truth and quick-looks of one glacier (holding the
    glacier's data lock); returns the files written."""
    cfg = config.get_glacier(s.glacier, catalog.root)
    years = config.parse_years(s.years) if s.years else cfg.years
    paths = catalog.glacier(cfg.name)
    with locks.hold(paths.glacier_dir, f"the data of glacier {cfg.name!r}"):
        files = synthesize(
            cfg, catalog.root, size=s.size, years=years, seed=s.seed, progress=s.progress,
            only_kept=s.only_kept, force=s.force, regime=s.regime, persistence=s.persistence,
        )  # fmt: skip
        settings.write(s, paths.settings_file("synthesize"), "synthesize")
        for line in summarize(cfg, catalog.root):
            print(line)
        print(f"{cfg.name}: ground truth -> {files[-1]}")
        if s.quicklook:
            figs = quicklooks(cfg, catalog.root, years, progress=s.progress)
            print(f"{cfg.name}: {len(figs)} quick-look figures -> {paths.figures_dir}")
            files += figs
    return files
