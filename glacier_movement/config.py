"""Glacier configurations, the data root, and the on-disk layout.

A glacier is a small TOML file of :class:`GlacierConfig` settings (docs/glaciers.md). The two
glaciers of the original study ship inside the package (``glacier_movement/glaciers/*.toml``:
bounding boxes, UTM zones, regions of interest, window lengths, hand-picked Aletsch scenes); any
other glacier is a file under ``<data-root>/glaciers/`` (written by ``glacier-movement glacier
add`` or ``acquire --bbox … --name``) or anywhere, passed by path. :func:`get_glacier` finds both.
"""

from __future__ import annotations

import datetime
import functools
import json
import math
import os
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import GlacierError

#: Landsat-8 reflective bands kept by acquisition, in the order of the original (green = 2, swir16 = 5).
BANDS: tuple[str, ...] = ("coastal", "red", "green", "blue", "nir08", "swir16", "swir22")
GREEN, SWIR16 = BANDS.index("green"), BANDS.index("swir16")

#: Collection 2 Level-2 surface reflectance: reflectance = DN * SCALE + OFFSET, DN 0 = nodata.
SCALE, OFFSET = 0.0000275, -0.2

#: Landsat 8 launched 2013-02-11; the archive is still growing.
LANDSAT8_FIRST_YEAR, LANDSAT8_LAST_YEAR = 2013, 2026

#: NDSI at or above this is snow/ice (masks keep the NDSI value there, 0 elsewhere).
NDSI_THRESHOLD = 0.3

DATA_ROOT_ENV = "GLACIER_DATA_ROOT"


@dataclass(frozen=True)
class GlacierConfig:
    """Everything the pipeline needs to know about one glacier (one config file's settings).

    ``bbox`` is (west, south, east, north) in degrees (WGS 84); ``epsg`` the projected CRS of the
    30 m grid. ``roi`` is (row0, row1, col0, col1) in pixels of the acquired 30 m grid; preprocessing crops
    it (intersected with the scene, so small synthetic scenes work). ``window_months`` is the
    length of the seasonal averaging window (12 must be divisible by it).
    """

    name: str
    bbox: tuple[float, float, float, float]  # lon/lat: west, south, east, north
    epsg: int
    roi: tuple[int, int, int, int]
    window_months: int
    years: tuple[int, int] = (2013, 2021)
    #: Per year, indices of usable scenes in the real archive's item order (None = all kept scenes).
    scene_selection: dict[int, tuple[int, ...]] | None = None
    #: Frames used to build training sequences (None = all); the rest are the full-scene test.
    train_frames: int | None = None

    @property
    def roi_shape(self) -> tuple[int, int]:
        r0, r1, c0, c1 = self.roi
        return r1 - r0, c1 - c0

    @property
    def frames_per_year(self) -> int:
        return 12 // self.window_months


# ------------------------------------------------------------------------------ checks
#: A glacier name names its data folder and its config file: letters, digits, '_', '-', '.'.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
#: Folders of the data root that are not glaciers (models/, glaciers/): no glacier may take them.
RESERVED_NAMES = frozenset({"glaciers", "models"})
#: Pixel size of the acquired Landsat grid, metres.
GRID_RESOLUTION = 30.0
#: UTM covers 80° S to 84° N; beyond, a glacier gets polar stereographic coordinates.
UTM_SOUTH, UTM_NORTH = -80.0, 84.0
EPSG_POLAR_SOUTH, EPSG_POLAR_NORTH = 3031, 3413  # Antarctic / NSIDC north polar stereographic


def validate_name(name: str, what: str = "glacier name", shipped: bool = False) -> str:
    """Check that ``name`` can name a glacier: a safe file name, not a data-root folder of another
    kind, and not a shipped glacier's (unless ``shipped``). Returns it unchanged."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or len(name) > 100:
        raise GlacierError(
            f"bad {what} {name!r}: use letters, digits, '_', '-' or '.' (it names the data folder)"
        )
    if name.lower() in _SHIPPED_FILES and not shipped:
        raise GlacierError(
            f"{what} {name!r} is a shipped glacier of the paper: use --glacier {name.lower()} as "
            "it is, or choose another name"
        )
    for tag, kind in ((HELDOUT, "a held-out replicate"), (TRAIN, "a training replicate")):
        if tag in name.lower():
            raise GlacierError(
                f"{what} {name!r} reads as {kind} (<glacier>{tag}<k>): choose a name without "
                f"{tag!r}"
            )
    if WORLD in name.lower():
        raise GlacierError(
            f"{what} {name!r} reads as an experiment-5 world (<glacier>{WORLD}<label>): choose a "
            f"name without {WORLD!r}"
        )
    if name.lower() in RESERVED_NAMES:
        raise GlacierError(
            f"{what} {name!r} is taken by the data root's {name.lower()}/ folder: choose another name"
        )
    return name


def validate_bbox(bbox: Sequence[float]) -> tuple[float, float, float, float]:
    """Check a lon/lat bbox (W, S, E, N); GlacierError in one line if it is not a valid box."""
    if len(bbox) != 4:
        raise GlacierError(f"a bbox is 4 numbers W S E N, got {len(bbox)}")
    w, s, e, n = (float(v) for v in bbox)
    if not all(math.isfinite(v) for v in (w, s, e, n)):
        raise GlacierError(f"bbox {w} {s} {e} {n} holds a non-finite number: give degrees W S E N")
    if not (-180 <= w <= 180 and -180 <= e <= 180 and -90 <= s <= 90 and -90 <= n <= 90):
        raise GlacierError(
            f"bbox {w} {s} {e} {n} is out of range: longitudes must lie in [-180, 180] and "
            "latitudes in [-90, 90] (order W S E N)"
        )
    if w >= e or s >= n:
        raise GlacierError(
            f"bbox {w} {s} {e} {n} is empty or reversed: give W S E N with W < E and S < N"
        )
    return w, s, e, n


def utm_epsg(lon: float, lat: float) -> int:
    """EPSG code of the WGS 84 UTM zone holding (lon, lat): 326zz north, 327zz south.

    (The Norway/Svalbard zone exceptions are ignored: pass ``--epsg`` there.)
    """
    zone = int((lon + 180.0) // 6.0) % 60 + 1
    return (32600 if lat >= 0 else 32700) + zone


def default_epsg(bbox: Sequence[float]) -> int:
    """The output CRS of a bbox (W, S, E, N): the UTM zone of its centre, or polar stereographic
    (EPSG:3413 north of 84° N, EPSG:3031 south of 80° S) where UTM is not defined."""
    w, s, e, n = bbox
    lon, lat = 0.5 * (w + e), 0.5 * (s + n)
    if lat > UTM_NORTH:
        return EPSG_POLAR_NORTH
    if lat < UTM_SOUTH:
        return EPSG_POLAR_SOUTH
    return utm_epsg(lon, lat)


@functools.lru_cache(maxsize=64)
def validate_epsg(epsg: int) -> int:
    """Check that ``epsg`` is a projected CRS in metres (a 30 m grid needs one)."""
    from pyproj import CRS  # pyproj loads its database: only when a CRS is checked
    from pyproj.exceptions import CRSError

    try:
        crs = CRS.from_epsg(int(epsg))
    except CRSError:
        raise GlacierError(
            f"EPSG:{epsg} is not a known coordinate system: give a UTM zone such as 32643"
        ) from None
    if not crs.is_projected or crs.axis_info[0].unit_name not in ("metre", "meter"):
        raise GlacierError(
            f"EPSG:{epsg} is not a projected CRS in metres: give a UTM zone such as 32643"
        )
    return int(epsg)


@functools.lru_cache(maxsize=64)
def grid_shape(bbox: tuple[float, float, float, float], epsg: int) -> tuple[int, int]:
    """(rows, cols) of the largest 30 m grid acquisition can build over ``bbox`` in ``epsg``.

    Acquisition covers the bbox's projected bounds, snapped outwards to the scenes' pixel edges,
    so its grid has at most ceil(extent / 30 m) + 1 pixels a side.
    """
    from pyproj import Transformer  # as above: only for a new glacier's grid

    minx, miny, maxx, maxy = Transformer.from_crs(4326, epsg, always_xy=True).transform_bounds(
        *bbox, densify_pts=21
    )
    if not all(math.isfinite(v) for v in (minx, miny, maxx, maxy)):
        raise GlacierError(
            f"bbox {' '.join(f'{v:g}' for v in bbox)} cannot be projected to EPSG:{epsg}: give "
            "an EPSG code whose area covers the bbox (leave it out for the UTM zone)"
        )
    res = GRID_RESOLUTION
    return math.ceil((maxy - miny) / res) + 1, math.ceil((maxx - minx) / res) + 1


def last_full_year(today: datetime.date | None = None) -> int:
    """The last calendar year Landsat 8 has fully covered (the default end of a glacier's years)."""
    year = (today or datetime.date.today()).year - 1
    return max(LANDSAT8_FIRST_YEAR, min(year, LANDSAT8_LAST_YEAR))


def check_window_months(window_months: int) -> int:
    """Check the averaging window's length: it must divide the year into equal windows."""
    if isinstance(window_months, bool) or not isinstance(window_months, int):
        raise GlacierError(f"window length {window_months!r} is not a whole number of months")
    if window_months < 1 or 12 % window_months:
        raise GlacierError(
            f"window length {window_months} months does not divide the year: use 1, 2, 3, 4, 6 or 12"
        )
    return window_months


def check_roi(roi: Sequence[int], grid: tuple[int, int]) -> tuple[int, int, int, int]:
    """Check an ROI (row0, row1, col0, col1) against a (rows, cols) grid: whole pixels, not empty,
    inside the grid."""
    if len(roi) != 4 or any(isinstance(v, bool) or not isinstance(v, int) for v in roi):
        raise GlacierError(
            f"ROI {list(roi)} is not 4 whole pixel numbers: give [row0, row1, col0, col1]"
        )
    r0, r1, c0, c1 = roi
    if not (0 <= r0 < r1 and 0 <= c0 < c1):
        raise GlacierError(
            f"ROI rows {r0}:{r1}, cols {c0}:{c1} is empty or negative: give row0 < row1 and "
            "col0 < col1, all >= 0"
        )
    h, w = grid
    if r1 > h or c1 > w:
        raise GlacierError(
            f"ROI rows {r0}:{r1}, cols {c0}:{c1} lies outside the {h}×{w} px grid of the bbox: "
            f"give an ROI inside [0, {h}] × [0, {w}], or leave it out for the whole grid"
        )
    return r0, r1, c0, c1


# --------------------------------------------------------------------------- config files
#: Keys of a glacier config file (TOML), in the order they are written.
CONFIG_KEYS: tuple[str, ...] = (
    "name",
    "bbox",
    "epsg",
    "roi",
    "window_months",
    "years",
    "train_frames",
    "scene_selection",
)
#: The shipped glaciers of the paper: TOML files inside the package.
_SHIPPED_FILES = {"parvati": "parvati.toml", "aletsch": "aletsch.toml"}


def _whole(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise GlacierError(f"{key} = {value!r} is not a whole number")
    return value


def glacier_from_dict(
    data: dict[str, Any], name: str | None = None, shipped: bool = False
) -> GlacierConfig:
    """A :class:`GlacierConfig` from the keys of a config file, defaults filled and every value
    checked (one-line :class:`GlacierError` naming the key).

    ``name`` is used when the dict has none (a file's stem); ``shipped`` allows the names of
    the shipped glaciers (for checking their own files). Defaults: ``epsg`` the UTM zone of
    the bbox centre (polar stereographic beyond UTM), ``roi`` the whole grid of the bbox,
    ``window_months`` 3, ``years`` 2013 to the last full year, no ``train_frames`` limit, no
    ``scene_selection``.
    """
    unknown = [k for k in data if k not in CONFIG_KEYS]
    if unknown:
        raise GlacierError(
            f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}: the "
            f"keys are {', '.join(CONFIG_KEYS)}"
        )
    name = data.get("name", name)
    if name is None:
        raise GlacierError('no name: add name = "my-glacier"')
    validate_name(name, shipped=shipped)
    if "bbox" not in data:
        raise GlacierError("no bbox: add bbox = [W, S, E, N] in degrees")
    bbox = data["bbox"]
    if not isinstance(bbox, list) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in bbox
    ):
        raise GlacierError(
            f"bbox = {bbox!r} is not a list of numbers: give [W, S, E, N] in degrees"
        )
    bbox = validate_bbox(bbox)
    epsg = validate_epsg(_whole(data["epsg"], "epsg")) if "epsg" in data else default_epsg(bbox)
    grid = grid_shape(bbox, epsg)
    roi = data.get("roi", [0, grid[0], 0, grid[1]])
    if not isinstance(roi, list):
        raise GlacierError(f"roi = {roi!r} is not a list: give [row0, row1, col0, col1]")
    roi = check_roi(roi, grid)
    window_months = check_window_months(_whole(data.get("window_months", 3), "window_months"))
    years = data.get("years", [LANDSAT8_FIRST_YEAR, last_full_year()])
    if isinstance(years, str):
        years = parse_years(years)
    elif isinstance(years, list) and len(years) == 2:
        years = parse_years(f"{_whole(years[0], 'years')}-{_whole(years[1], 'years')}")
    else:
        raise GlacierError(f"years = {years!r} is not [FIRST, LAST]: give e.g. [2013, 2021]")
    train_frames = data.get("train_frames")
    if train_frames is not None and _whole(train_frames, "train_frames") < 2:
        raise GlacierError(
            f"train_frames = {train_frames} is too small: give the number of frames (>= 2) that "
            "build training sequences, or leave it out to use all"
        )
    selection = data.get("scene_selection")
    if selection is not None:
        if not isinstance(selection, dict):
            raise GlacierError(
                "scene_selection is not a table: write [scene_selection] and lines YEAR = [i, …]"
            )
        out: dict[int, tuple[int, ...]] = {}
        for year, idx in selection.items():
            if not str(year).isdigit() or not years[0] <= int(year) <= years[1]:
                raise GlacierError(
                    f"scene_selection year {year!r} is not one of the years {years[0]}-{years[1]}"
                )
            if not isinstance(idx, list) or any(_whole(i, "scene index") < 0 for i in idx):
                raise GlacierError(
                    f"scene_selection {year} = {idx!r} is not a list of scene indices >= 0"
                )
            out[int(year)] = tuple(idx)
        selection = out
    return GlacierConfig(
        name=name,
        bbox=bbox,
        epsg=epsg,
        roi=roi,
        window_months=window_months,
        years=years,
        scene_selection=selection,
        train_frames=train_frames,
    )


def glacier_to_toml(cfg: GlacierConfig, comment: str = "") -> str:
    """The TOML text of a config, every value explicit (flat; ``tomllib`` reads it back equal)."""

    def ints(values: Sequence[int]) -> str:
        return "[" + ", ".join(str(int(v)) for v in values) + "]"

    lines = [f"# {ln}".rstrip() for ln in comment.splitlines()]
    lines += [
        f"name = {json.dumps(cfg.name)}",
        "bbox = [" + ", ".join(repr(float(v)) for v in cfg.bbox) + "]  # W S E N, degrees",
        f"epsg = {int(cfg.epsg)}",
        f"roi = {ints(cfg.roi)}  # row0, row1, col0, col1 in pixels of the acquired 30 m grid",
        f"window_months = {int(cfg.window_months)}",
        f"years = {ints(cfg.years)}",
    ]
    if cfg.train_frames is not None:
        lines.append(f"train_frames = {int(cfg.train_frames)}")
    if cfg.scene_selection:
        lines += ["", "[scene_selection]"]
        lines += [f"{y} = {ints(idx)}" for y, idx in sorted(cfg.scene_selection.items())]
    return "\n".join(lines) + "\n"


def parse_glacier_toml(text: str, source: str, name: str | None = None) -> GlacierConfig:
    """A config from TOML text; errors are one line starting with ``source``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise GlacierError(
            f"glacier config {source} is not valid TOML ({e}): fix the file"
        ) from None
    try:
        return glacier_from_dict(data, name=name)
    except GlacierError as e:
        raise GlacierError(f"glacier config {source}: {e}") from None


def load_glacier_file(path: str | os.PathLike) -> GlacierConfig:
    """Read and check a glacier config file (TOML); its name defaults to the file's stem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GlacierError(
            f"glacier config {path} does not exist: check the path, or write one with "
            "`glacier-movement glacier add NAME --bbox W S E N`"
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        why = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
        raise GlacierError(f"cannot read glacier config {path}: {why}; fix the file") from None
    return parse_glacier_toml(text, str(path), name=path.stem)


#: This module's package (``__package__``, never None for a module imported from a package).
_PACKAGE = __name__.rpartition(".")[0]


def _load_shipped() -> dict[str, GlacierConfig]:
    out = {}
    for key, file in _SHIPPED_FILES.items():
        text = (resources.files(_PACKAGE) / "glaciers" / file).read_text(encoding="utf-8")
        data = tomllib.loads(text)
        # trusted files (tests check them like any other): no projection math at import
        out[key] = GlacierConfig(
            name=data["name"],
            bbox=tuple(data["bbox"]),
            epsg=data["epsg"],
            roi=tuple(data["roi"]),
            window_months=data["window_months"],
            years=tuple(data["years"]),
            scene_selection=(
                {int(y): tuple(v) for y, v in data["scene_selection"].items()}
                if "scene_selection" in data
                else None
            ),
            train_frames=data.get("train_frames"),
        )
    return out


#: The glaciers of the paper, read from glacier_movement/glaciers/*.toml.
GLACIERS: dict[str, GlacierConfig] = _load_shipped()


def shipped_config_text(name: str) -> str:
    """The TOML text of a shipped glacier's config file."""
    return (resources.files(_PACKAGE) / "glaciers" / _SHIPPED_FILES[name]).read_text("utf-8")


def glaciers_dir(root: str | os.PathLike | None = None) -> Path:
    """Where ``glacier add`` writes configs: ``<data-root>/glaciers/``."""
    return data_root(root) / "glaciers"


def user_glacier_files(root: str | os.PathLike | None = None) -> list[Path]:
    """The config files under ``<data-root>/glaciers/``, sorted by name."""
    d = glaciers_dir(root)
    return sorted(d.glob("*.toml")) if d.is_dir() else []


#: ``<glacier>-heldout-<k>``: a held-out replicate of a glacier's configuration (another
#: synthetic glacier of the same kind, made with another seed; no model trains on it).
HELDOUT = "-heldout-"


#: ``<glacier>-motion``: a shipped glacier's configuration for the synthetic motion regime
#: (``synthesize --regime motion``; experiment 4, docs/synthetic.md).
MOTION = "-motion"


#: ``<glacier>-train-<k>``: the k-th training replicate of a glacier (k ≥ 2; the glacier itself is
#: the first): the same configuration and world, another seed (``reproduce --train-glaciers N``).
TRAIN = "-train-"


#: ``<glacier>-world-<label>``: a shipped glacier's configuration in one of experiment 5's worlds
#: (the predictability sweep; ``study.WORLDS`` gives each label's regime and persistence).
WORLD = "-world-"


def heldout_name(base: str, k: int) -> str:
    """Name of the k-th held-out replicate of ``base`` (``parvati-heldout-1``)."""
    return f"{base}{HELDOUT}{k}"


def train_name(base: str, k: int) -> str:
    """Name of the k-th training replicate of ``base`` (``parvati-train-2``); the first is
    ``base`` itself."""
    return base if k == 1 else f"{base}{TRAIN}{k}"


def is_config_path(name: str) -> bool:
    """``--glacier`` holds a path to a config file (not a name): it ends in .toml or has a slash."""
    return name.endswith(".toml") or "/" in name or os.sep in name


def get_glacier(name: str, root: str | os.PathLike | None = None) -> GlacierConfig:
    """The configuration of a glacier: a shipped name (parvati, aletsch; case-insensitive), a
    name added under the data root (``<root>/glaciers/<name>.toml``, ``root`` as
    :func:`data_root`), or the path of a config file (ends in .toml or holds a '/').
    ``<glacier>-heldout-<k>`` is a held-out replicate with the configuration of ``<glacier>``,
    ``<glacier>-train-<k>`` a training replicate; ``<glacier>-motion`` the configuration of a
    shipped glacier for the motion regime, ``<glacier>-world-<label>`` for an experiment-5 world."""
    name = str(name)
    if is_config_path(name):
        return load_glacier_file(name)
    if name.lower() in GLACIERS:
        return GLACIERS[name.lower()]
    if name.lower().endswith(MOTION) and name.lower().removesuffix(MOTION) in GLACIERS:
        return replace(GLACIERS[name.lower().removesuffix(MOTION)], name=name.lower())
    base, sep, k = name.lower().partition(HELDOUT)
    if sep and k.isdigit() and base:
        cfg = get_glacier(name[: len(base)], root)
        return replace(cfg, name=heldout_name(cfg.name, int(k)))
    base, sep, k = name.lower().rpartition(TRAIN)
    if sep and k.isdigit() and int(k) >= 2 and base:
        cfg = get_glacier(name[: len(base)], root)
        return replace(cfg, name=train_name(cfg.name, int(k)))
    base, sep, label = name.lower().partition(WORLD)
    if sep and base in GLACIERS and re.fullmatch(r"[a-z0-9]+", label):
        return replace(GLACIERS[base], name=name.lower())
    files = user_glacier_files(root)
    for path in [f for f in files if f.stem == name] or [
        f for f in files if f.stem.lower() == name.lower()
    ]:
        cfg = load_glacier_file(path)
        if cfg.name != path.stem:
            raise GlacierError(
                f"glacier config {path} is named {cfg.name!r}: rename the file to "
                f"{cfg.name}.toml or fix its name"
            )
        return cfg
    added = [f.stem for f in files if f.stem.lower() not in GLACIERS]
    here = f", or one added under {glaciers_dir(root)}: {', '.join(added)}" if added else ""
    raise GlacierError(
        f"unknown glacier {name!r}: choose one of {', '.join(sorted(GLACIERS))}{here} (or "
        f"<glacier>{HELDOUT}<k> for a held-out replicate); add a glacier with `glacier-movement "
        "glacier add NAME --bbox W S E N`, or pass the path of its .toml"
    )


def parse_years(text: str) -> tuple[int, int]:
    """Parse ``2013-2021`` or ``2017`` into an inclusive (first, last) pair within Landsat 8's life."""
    parts = text.split("-")
    try:
        first, last = (int(parts[0]), int(parts[-1])) if len(parts) in (1, 2) else (0, -1)
    except ValueError:
        raise GlacierError(f"bad year range {text!r}: write it as YYYY or YYYY-YYYY") from None
    if len(parts) not in (1, 2) or first > last:
        raise GlacierError(f"bad year range {text!r}: write it as FIRST-LAST with FIRST <= LAST")
    if first < LANDSAT8_FIRST_YEAR or last > LANDSAT8_LAST_YEAR:
        raise GlacierError(
            f"year range {text!r} is outside Landsat 8's life: use years "
            f"{LANDSAT8_FIRST_YEAR}-{LANDSAT8_LAST_YEAR}"
        )
    return first, last


def parse_roi(text: str) -> tuple[int, ...]:
    """``R0,R1,C0,C1`` (pixels, the command line's ``--roi``) as four integers; ValueError with
    the fix otherwise."""
    try:
        parts = tuple(int(v) for v in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 4 or parts[0] >= parts[1] or parts[2] >= parts[3] or min(parts) < 0:
        raise ValueError(f"bad ROI {text!r}: write ROW0,ROW1,COL0,COL1 with ROW0<ROW1, COL0<COL1")
    return parts


def data_root(path: str | os.PathLike | None = None) -> Path:
    """The data root ("pathOrigin" of the original): argument, else $GLACIER_DATA_ROOT, else ./data."""
    if path is None:
        path = os.environ.get(DATA_ROOT_ENV) or "data"
    return Path(path)


#: A scene folder's record (``<glacier>/results/<label>/``), written last by ``infer``.
SCENE_META = "scene.json"


@dataclass(frozen=True)
class Paths:
    """The on-disk layout under the data root, for one glacier (the data-folder half of
    catalog.py's catalog: ``Catalog.glacier(name)``)."""

    root: Path
    glacier: str

    @property
    def glacier_dir(self) -> Path:
        return self.root / self.glacier

    @property
    def raw_dir(self) -> Path:
        return self.glacier_dir / "raw"

    def raw_year(self, year: int) -> Path:
        return self.raw_dir / f"{year}.npz"

    @property
    def truth(self) -> Path:
        return self.glacier_dir / "truth.npz"

    @property
    def frames(self) -> Path:
        return self.glacier_dir / "frames.npz"

    @property
    def figures_dir(self) -> Path:
        return self.glacier_dir / "figures"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def results_dir(self) -> Path:
        return self.glacier_dir / "results"

    # outputs of test / infer / flow / scene-scores, named by a run label (docs/data.md)
    def result_file(self, label: str, kind: str) -> Path:
        """``test``'s outputs of ``label``: kind ``results`` (CSV), ``per_sequence`` (CSV.gz),
        ``motion`` (motion EPE CSV) or ``markdown``."""
        names = {
            "results": f"{label}_results.csv",
            "per_sequence": f"{label}_per_sequence.csv.gz",
            "motion": f"{label}_motion_epe.csv",
            "markdown": f"{label}_results.md",
        }
        return self.results_dir / names[kind]

    def baseline_cache(self, patch: int, stride: int) -> Path:
        """``test``'s per-sequence rows of the baselines on the test sequences of ``patch`` px
        patches every ``stride`` px: the same for every run tested here, so written once and
        reused while its fingerprint (frames, truth, code) holds."""
        return self.results_dir / f"baselines_{patch}px_stride{stride}.npz"

    def scene_dir(self, label: str) -> Path:
        """``infer``'s full-scene prediction of ``label`` (arrays, images, GeoTIFFs)."""
        return self.results_dir / label

    def scene_figure(self, label: str) -> Path:
        return self.figures_dir / f"{label}_scene.png"

    def flow_figure(self, label: str) -> Path:
        return self.figures_dir / f"{label}_flow.png"

    def flow_epe(self, label: str) -> Path:
        """``flow``'s end-point errors against the true motion (synthetic glaciers)."""
        return self.scene_dir(label) / "flow_epe.csv"

    def flow_epe_summary(self, label: str) -> Path:
        """``flow``'s mean end-point errors (JSON) beside :meth:`flow_epe`."""
        return self.scene_dir(label) / "flow_epe.json"

    def flow_arrays(self, label: str) -> Path:
        """``flow``'s flow fields and backgrounds (compressed npz)."""
        return self.scene_dir(label) / "flow.npz"

    def scene_meta(self, label: str) -> Path:
        """``infer``'s scene record (scores, structure, metadata), written last: its presence
        marks a complete scene folder."""
        return self.scene_dir(label) / SCENE_META

    def scene_settings_file(self, label: str, command: str) -> Path:
        """The resolved settings a scene stage (``flow``) writes into the scene folder."""
        return self.scene_dir(label) / f"{command}.settings.toml"

    def scene_scores(self, name: str) -> Path:
        return self.results_dir / f"{name}_scene_scores.csv"

    def generalization_figure(self, name: str) -> Path:
        return self.figures_dir / f"{name}_generalization.png"

    @property
    def frames_figure(self) -> Path:
        return self.figures_dir / "frames.png"

    @property
    def alignment(self) -> Path:
        """``preprocess``'s alignment record (per scene warp, cc, window; the template)."""
        return self.glacier_dir / "alignment.npz"

    @property
    def sequences_summary(self) -> Path:
        """``sequences``' description of the patch sequences (JSON)."""
        return self.glacier_dir / "sequences.json"

    @property
    def sequence_examples(self) -> Path:
        return self.figures_dir / "sequence_examples.png"

    def settings_file(self, command: str) -> Path:
        """The resolved settings the data stages write (``<glacier>/<command>.settings.toml``)."""
        return self.glacier_dir / f"{command}.settings.toml"
