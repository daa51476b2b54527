"""Acquisition of Landsat 8 scenes from a STAC API (the Microsoft Planetary Computer by default).

`glacier-movement acquire` searches the STAC API once per calendar year over a lon/lat bounding
box, keeps Landsat 8 items with little cloud, stacks their seven reflective bands onto one UTM
grid (30 m, aligned with the native Landsat grid) and writes ``<root>/<glacier>/raw/<year>.npz``
through :func:`glacier_movement.io.write_scenes`, in exactly the format the synthetic generator
writes: uint16 digital numbers (N, 7, H, W) in :data:`config.BANDS` order, 0 = nodata, with the
collection's scale/offset (reflectance = DN * scale + offset).

Design
------
* Search: ``pystac_client.Client.open(url, modifier=planetary_computer.sign_inplace)`` with a
  ``urllib3.Retry`` (429/5xx, connection errors, short exponential back-off) so a flaky server is
  retried and a dead one fails in seconds. The ``platform`` filter is applied on the client side
  (and also sent as a ``query`` when the server conforms to it), so any STAC API gives the right
  result.
* Stacking: behind the small :class:`SceneLoader` protocol; :class:`StackstacLoader` is the
  implementation (stackstac is what the original used; odc-stac can be swapped in by writing
  another loader). Items are normalised first: ``proj:epsg`` restored from ``proj:code`` (pystac
  ≥ 1.12 rewrites it, stackstac 0.5 reads only the old key) and assets renamed to their common
  band names (the legacy ``landsat-8-c2-l2`` collection keyed them ``SR_B1`` …).
* Downloading: the stack is a dask array. The gap check reads only the green band of every
  scene that passed the cloud filter; the other six bands are read only for kept scenes. Scenes are
  computed concurrently on a thread pool (default) or on a ``dask.distributed`` cluster
  (``--scheduler local`` or a scheduler address), one progress bar per year.
* Robustness: a missing or unreadable asset is an error naming the asset (stackstac would turn a
  404 into silent nodata by default); a 403 on a signed href re-signs the items and retries once
  (SAS tokens expire during long downloads); finished year files are skipped unless ``--force``;
  every file is written atomically.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import as_completed as futures_as_completed
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlparse, urlunparse

import numpy as np
from tqdm import tqdm

from . import config, io, locks, settings
from .catalog import Catalog
from .errors import DataError, GlacierError
from .registry import existing_config, write_glacier
from .settings import SettingsError, option

# pystac, pystac_client, planetary_computer, stackstac, distributed, rasterio and pyproj are
# imported inside the functions that use them: they are slow to load and only the
# download itself needs them, not the settings, the filters or `--help`.

#: STAC API of the Microsoft Planetary Computer.
PC_STAC_URL = "https://planetarycomputer.microsoft.com/api/stac/v1"
#: Current Planetary Computer collection (Landsat 4–9, C2 L2) and the original's legacy id.
DEFAULT_COLLECTION = "landsat-c2-l2"
LEGACY_COLLECTION = "landsat-8-c2-l2"
COLLECTIONS = (DEFAULT_COLLECTION, LEGACY_COLLECTION)
PLATFORM = "landsat-8"
#: Landsat 8 OLI pixel size in metres.
RESOLUTION = 30.0
#: HTTP statuses worth retrying (rate limit and server-side trouble).
RETRY_STATUSES = (429, 500, 502, 503, 504)
#: Azure Blob Storage, where the Planetary Computer keeps its assets (the hrefs it signs).
_BLOB_DOMAIN = ".blob.core.windows.net"
#: Share of physical memory one year's kept scenes may take (they are held until written).
_MEMORY_SHARE = 0.5


# ----------------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class AcquireRequest:
    """What to acquire and how: :class:`AcquireSettings` resolved to one glacier by
    :func:`resolve` (which alone makes it; every value was checked by the settings or the
    glacier's config, so nothing here checks again).

    ``bbox`` is (west, south, east, north) in degrees (WGS 84); ``years`` an inclusive pair;
    ``max_cloud`` the largest ``eo:cloud_cover`` kept (percent, inclusive); ``max_missing`` the
    missing-pixel fraction (DN 0 on the green band) a scene must stay *below*; ``epsg`` the UTM
    zone of the output grid; ``scheduler`` ``"threads"``, ``"local"`` (a
    ``distributed.LocalCluster``) or a ``dask.distributed`` scheduler address.
    """

    name: str
    bbox: tuple[float, float, float, float]
    years: tuple[int, int]
    epsg: int
    collection: str
    stac_url: str
    max_cloud: float
    max_missing: float
    force: bool
    scheduler: str
    threads: int
    #: HTTP retries of every STAC request and the back-off factor (sleeps 0, 2f, 4f, … seconds).
    retries: int
    backoff: float = 0.5
    resolution: float = RESOLUTION
    #: (connect, read) time-outs of STAC requests, seconds.
    timeout: tuple[float, float] = (10.0, 60.0)


# The checks of a glacier's settings live in config (a config file is checked the same way).
validate_bbox, utm_epsg, validate_epsg = config.validate_bbox, config.utm_epsg, config.validate_epsg


# ------------------------------------------------------------------------------------- search
def open_catalog(s: AcquireRequest):
    """Open the STAC API with retries; GlacierError (one line) when it cannot be reached.

    Every request is retried ``s.retries`` times on connection errors, time-outs and HTTP
    429/5xx (also POST: a search changes nothing on the server), with exponential back-off.
    Items are signed for the Planetary Computer as they arrive (other hrefs are left unchanged).
    """
    import planetary_computer
    import pystac
    from pystac_client import Client
    from pystac_client.exceptions import APIError
    from pystac_client.stac_api_io import StacApiIO
    from urllib3 import Retry

    retry = Retry(
        total=s.retries,
        connect=s.retries,
        read=s.retries,
        status=s.retries,
        backoff_factor=s.backoff,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=None,  # retry POST /search too
        raise_on_status=False,  # hand the last answer on, so the message has its status
    )
    stac_io = StacApiIO(max_retries=retry, timeout=s.timeout)
    try:
        return Client.open(s.stac_url, stac_io=stac_io, modifier=planetary_computer.sign_inplace)
    except (APIError, pystac.STACError, ValueError, OSError) as e:
        raise GlacierError(
            f"cannot open the STAC API at {s.stac_url} (after {s.retries} retries): "
            f"{_short(e)}; check the network and --stac-url"
        ) from None


def _short(e: BaseException, limit: int = 300) -> str:
    """One line of an exception's message, for user-facing errors.

    urllib3's "Max retries exceeded … (Caused by NewConnectionError(…[Errno 111] Connection
    refused))" is cut down to its cause ("[Errno 111] Connection refused"). A STAC API's error
    answer (pystac_client's APIError: the body only) gets its HTTP status in front.
    """
    text = " ".join(str(e).split()) or type(e).__name__
    m = re.search(r"Caused by \w+\(.*?(\[Errno -?\d+\][^\"')]*|Read timed out|timed out)", text)
    if m:
        text = m.group(1).strip()
    status = getattr(e, "status_code", None)
    if isinstance(status, int):
        text = f"HTTP {status}: {text}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _platform_ok(props: dict[str, Any], collection: str) -> bool:
    """Landsat 8 only; the legacy collection is Landsat 8 by definition (no platform needed)."""
    platform = props.get("platform")
    if platform is None:
        return collection == LEGACY_COLLECTION
    return str(platform).lower().replace("_", "-") == PLATFORM


def search_year(catalog, s: AcquireRequest, year: int) -> tuple[list, int]:
    """Landsat 8 items of one calendar year over the bbox, sorted by acquisition time.

    Returns (items, n_other): pystac Items, and how many items of other platforms (Landsat 7/9)
    the server returned and were dropped on the client side.
    """
    from pystac_client.conformance import ConformanceClasses
    from pystac_client.exceptions import APIError

    kwargs: dict[str, Any] = {}
    if s.collection == DEFAULT_COLLECTION and catalog.conforms_to(ConformanceClasses.QUERY):
        kwargs["query"] = {"platform": {"eq": PLATFORM}}  # less to transfer; filtered below anyway
    try:
        search = catalog.search(
            collections=[s.collection],
            bbox=list(s.bbox),
            datetime=f"{year}-01-01/{year + 1}-01-01",
            limit=250,
            **kwargs,
        )
        found = list(search.items())
    except (APIError, OSError) as e:
        raise GlacierError(
            f"the search for {year} at {s.stac_url} failed (after {s.retries} retries): {_short(e)}; "
            "run again later (finished years are kept)"
        ) from None
    items, n_other = [], 0
    for item in found:
        t = item_time(item)
        if t.astype("datetime64[Y]").astype(int) + 1970 != year:
            continue  # the interval's end (Jan 1 00:00 of the next year) belongs to that year
        if _platform_ok(item.properties, s.collection):
            items.append(item)
        else:
            n_other += 1
    items.sort(key=lambda it: (item_time(it), it.id))
    return items, n_other


def item_time(item) -> np.datetime64:
    """Acquisition time of a pystac Item as naive-UTC datetime64[ns]."""
    dt = item.datetime or item.common_metadata.start_datetime
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return np.datetime64(dt, "ns")


def cloud_cover(item) -> float:
    """``eo:cloud_cover`` in percent; unknown counts as 100 (an unknown scene is not trusted)."""
    value = item.properties.get("eo:cloud_cover")
    return 100.0 if value is None else float(value)


# ---------------------------------------------------------------------------- item normalising
def _epsg_from(meta: dict[str, Any]) -> int | None:
    if meta.get("proj:epsg") is not None:
        return int(meta["proj:epsg"])
    code = meta.get("proj:code")
    if isinstance(code, str) and code.upper().startswith("EPSG:"):
        return int(code.split(":", 1)[1])
    return None


def _common_name(asset: dict[str, Any]) -> str | None:
    """Common band name of a single-band asset (eo v1 ``eo:bands`` or STAC 1.1 ``bands``)."""
    for key, name_key in (("eo:bands", "common_name"), ("bands", "eo:common_name")):
        bands = asset.get(key)
        if isinstance(bands, list) and len(bands) == 1 and isinstance(bands[0], dict):
            name = bands[0].get(name_key) or bands[0].get("common_name")
            if name:
                return str(name)
    return asset.get("eo:common_name")


def _scale_offset(asset: dict[str, Any]) -> tuple[float, float]:
    """(scale, offset) of an asset's ``raster:bands`` (or STAC 1.1 ``bands``); C2 L2 defaults."""
    for key, sk, ok in (
        ("raster:bands", "scale", "offset"),
        ("bands", "raster:scale", "raster:offset"),
    ):
        bands = asset.get(key)
        if isinstance(bands, list) and bands and isinstance(bands[0], dict) and sk in bands[0]:
            return float(bands[0][sk]), float(bands[0].get(ok, 0.0))
    return config.SCALE, config.OFFSET


def normalize_item(item) -> dict[str, Any]:
    """A plain item dict that stackstac reads right.

    ``proj:epsg`` is restored from ``proj:code`` on the item and its assets (pystac ≥ 1.12
    rewrites it; stackstac 0.5 reads only ``proj:epsg``), and the seven bands become assets named
    by their common names (the legacy collection keyed them ``SR_B1`` …); other assets are dropped.
    """
    d = item.to_dict(include_self_link=False, transform_hrefs=False)
    props = d["properties"]
    epsg = _epsg_from(props)
    if epsg is not None:
        props["proj:epsg"] = epsg
    by_name = {}
    for key, asset in d.get("assets", {}).items():
        by_name.setdefault(key, key)
        name = _common_name(asset)
        if name and name not in d["assets"]:
            by_name.setdefault(name, key)
    assets = {}
    for band in config.BANDS:
        key = by_name.get(band)
        if key is None:
            raise GlacierError(
                f"item {d['id']} has no asset for band {band!r} (assets: {', '.join(d.get('assets', {}))}): "
                "is the collection Landsat Collection 2 Level-2?"
            )
        asset = dict(d["assets"][key])
        asset_epsg = _epsg_from(asset)
        if asset_epsg is not None:
            asset["proj:epsg"] = asset_epsg
        assets[band] = asset
    d["assets"] = assets
    return d


def collection_scale_offset(items: Sequence[dict[str, Any]]) -> tuple[float, float]:
    """The one (scale, offset) of all items' bands; GlacierError if they disagree."""
    pairs = {_scale_offset(a) for it in items for a in it["assets"].values()}
    if len(pairs) != 1:
        raise GlacierError(
            f"the items carry different scale/offset pairs {sorted(pairs)}: DN from them cannot "
            "share one scene file; acquire the years separately"
        )
    return pairs.pop()


# ------------------------------------------------------------------------------------- loaders
@dataclass
class LoadedStack:
    """A lazy stack of scenes: ``data`` (N, 7, H, W) uint16 dask array, index i = items[i],
    bands in :data:`config.BANDS` order, 0 = nodata; ``transform`` the 6 affine numbers of the
    grid in ``epsg``."""

    data: Any
    transform: tuple[float, ...]
    epsg: int


class SceneLoader(Protocol):
    """Stacks normalised item dicts onto one grid (swap in odc-stac by writing another one)."""

    def stack(
        self,
        items: Sequence[dict[str, Any]],
        bbox: tuple[float, float, float, float],
        epsg: int,
        resolution: float,
    ) -> LoadedStack: ...


def grid_bounds(
    items: Sequence[dict[str, Any]],
    bbox: tuple[float, float, float, float],
    epsg: int,
    resolution: float,
) -> tuple[float, float, float, float]:
    """Bounds (minx, miny, maxx, maxy) in ``epsg`` covering the lon/lat bbox, snapped outwards to
    the native pixel grid of the items in that zone (Landsat C2 pixel edges sit at 15 m mod 30), so
    nearest-neighbour stacking copies native pixels instead of shifting them by half a pixel."""
    from pyproj import Transformer

    minx, miny, maxx, maxy = Transformer.from_crs(4326, epsg, always_xy=True).transform_bounds(
        *bbox, densify_pts=21
    )
    ox = oy = 0.0
    for it in items:
        t = it["properties"].get("proj:transform")
        if _epsg_from(it["properties"]) == epsg and t and abs(abs(t[0]) - resolution) < 1e-6:
            ox, oy = t[2] % resolution, t[5] % resolution
            break
    snap_lo = lambda v, o: o + math.floor((v - o) / resolution) * resolution  # noqa: E731
    snap_hi = lambda v, o: o + math.ceil((v - o) / resolution) * resolution  # noqa: E731
    return snap_lo(minx, ox), snap_lo(miny, oy), snap_hi(maxx, ox), snap_hi(maxy, oy)


@dataclass
class StackstacLoader:
    """:class:`SceneLoader` on stackstac: DN kept (``rescale=False``), uint16 with fill 0,
    nearest resampling, no error turned into nodata (a missing asset raises). GDAL retries asset
    reads on HTTP 429/5xx ``http_retries`` times (first after ``retry_delay`` s, then doubling)."""

    chunksize: int = 1024
    http_retries: int = 4
    retry_delay: float = 1.0

    def stack(
        self,
        items: Sequence[dict[str, Any]],
        bbox: tuple[float, float, float, float],
        epsg: int,
        resolution: float,
    ) -> LoadedStack:
        import stackstac

        arr = stackstac.stack(
            list(items),
            assets=list(config.BANDS),
            epsg=epsg,
            resolution=resolution,
            bounds=grid_bounds(items, bbox, epsg, resolution),
            snap_bounds=False,
            dtype=np.dtype("uint16"),
            # stackstac's NaN default cannot be cast to uint16 (its hint says int | float)
            fill_value=np.uint16(0),  # pyright: ignore[reportArgumentType]
            rescale=False,
            sortby_date=False,  # keep index i = items[i]
            properties=False,
            band_coords=False,
            errors_as_nodata=(),  # the default turns HTTP 404 into silent nodata
            chunksize=self.chunksize,
            gdal_env=stackstac.DEFAULT_GDAL_ENV.updated(
                always={
                    "GDAL_HTTP_MAX_RETRY": str(self.http_retries),
                    "GDAL_HTTP_RETRY_DELAY": str(self.retry_delay),
                }
            ),
        )
        transform = tuple(float(v) for v in tuple(arr.attrs["transform"])[:6])
        return LoadedStack(data=arr.data, transform=transform, epsg=epsg)


# -------------------------------------------------------------------------------- computation
class Computer:
    """Computes lists of dask arrays concurrently, yielding (index, numpy array) as they finish.

    ``"threads"``: a thread pool of ``threads`` scenes at a time (the reads are I/O bound; each
    scene's chunks run synchronously in its thread). ``"local"``: a ``distributed.LocalCluster``
    on this machine. Anything else: the address of a ``dask.distributed`` scheduler
    (``tcp://host:8786``, a Coiled cluster's address, …).
    """

    def __init__(self, scheduler: str = "threads", threads: int = 8, client=None):
        self.scheduler = scheduler or "threads"
        self.threads = threads
        self.client = client  # a caller's distributed.Client (e.g. Coiled's): used, not closed
        self._own_client = client is None
        self._cluster = None

    def __enter__(self) -> Computer:
        if self.client is not None or self.scheduler in ("threads", "synchronous", "sync"):
            return self
        from distributed import Client, LocalCluster

        try:
            if self.scheduler == "local":
                self._cluster = LocalCluster(dashboard_address=":0")
                self.client = Client(self._cluster)
                print(f"dask dashboard: {self.client.dashboard_link}", file=sys.stderr)
            else:
                self.client = Client(self.scheduler, timeout="20s")
        except (OSError, TimeoutError, ValueError) as e:
            self.__exit__(None, None, None)
            raise GlacierError(
                f"cannot connect to the dask scheduler {self.scheduler!r}: {_short(e)}; check the "
                "address (tcp://host:8786) or use --scheduler threads"
            ) from None
        return self

    def __exit__(self, *exc) -> None:
        if self.client is not None and self._own_client:
            self.client.close()
            self.client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def compute(self, arrays: Sequence[Any]) -> Iterator[tuple[int, np.ndarray]]:
        if self.client is not None:
            from distributed import as_completed

            futures: Any = self.client.compute(list(arrays))  # a list of futures
            index = {f.key: i for i, f in enumerate(futures)}
            try:
                for fut, result in as_completed(futures, with_results=True):
                    yield index[fut.key], np.asarray(result)
            finally:
                self.client.cancel(futures)
            return
        if self.scheduler in ("synchronous", "sync"):
            for i, a in enumerate(arrays):
                yield i, np.asarray(a.compute(scheduler="sync"))
            return
        pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="acquire")
        try:
            futs = {pool.submit(a.compute, scheduler="sync"): i for i, a in enumerate(arrays)}
            for f in futures_as_completed(futs):
                yield futs[f], np.asarray(f.result())
        except BaseException:
            # An error or Ctrl-C: drop the queued scenes and do not wait for the running reads.
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)


# --------------------------------------------------------------------------- asset read errors
_URL_IN_ERROR = re.compile(r"Error (?:opening|reading .*? from) '([^']+)'")


def _is_403(e: BaseException) -> bool:
    text = " ".join(str(x) for x in (e, e.__cause__, e.__context__) if x is not None)
    return bool(re.search(r"\b403\b", text))


def _strip_query(href: str) -> str:
    p = urlparse(href)
    return urlunparse(p._replace(query="")) if p.query else href


def resign_href(href: str) -> str:
    """A freshly signed Planetary Computer href (the SAS token is dropped and fetched again);
    hrefs outside Azure Blob Storage are returned unchanged."""
    import planetary_computer

    p = urlparse(href)
    if not p.netloc.endswith(_BLOB_DOMAIN):
        return href
    if set(parse_qs(p.query)) & {"st", "se", "sp", "sig"}:
        href = _strip_query(href)  # sign_url leaves anything that already looks signed alone
    return planetary_computer.sign_url(href)


def _asset_error(e: BaseException, items: Sequence[dict[str, Any]]) -> GlacierError | None:
    """Turn a stackstac/rasterio read error into one line naming the item and the asset; None
    for an error that is not about reading an asset (a bug: it keeps its traceback)."""
    from rasterio.errors import RasterioError

    m = _URL_IN_ERROR.search(str(e))
    url = m.group(1) if m else None
    if url is None and not isinstance(e, RasterioError):
        return None
    where = "an asset"
    if url:
        for it in items:
            for key, asset in it["assets"].items():
                if asset["href"] == url:
                    where = f"asset {key!r} of item {it['id']}"
        where += f" ({_strip_query(url)})"  # never print a SAS token
    cause = e.__cause__ if e.__cause__ is not None else e
    return GlacierError(
        f"cannot read {where}: {_short(cause, 200)}; the asset is missing or unreadable (check "
        "the server, or run again later: finished years are kept)"
    )


def _read_errors() -> tuple[type[BaseException], ...]:
    from rasterio.errors import RasterioError

    return (RuntimeError, RasterioError, OSError)


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
