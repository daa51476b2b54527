"""Stacking and reading scenes: the :class:`SceneLoader` protocol and :class:`StackstacLoader`, the
threads or dask cluster that compute them, and the asset read errors (403 re-signing)."""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import as_completed as futures_as_completed
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs, urlparse, urlunparse

import numpy as np

from .. import config
from ..errors import GlacierError
from .stac import _BLOB_DOMAIN, _epsg_from, _short

# pystac, pystac_client, planetary_computer, stackstac, distributed, rasterio and pyproj are
# imported inside the functions that use them: they are slow to load and only the
# download itself needs them, not the settings, the filters or `--help`.


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
