"""The STAC side: the API and collection constants, :class:`AcquireRequest` (what one glacier's
acquisition asks for), the per-year search and the normalising of items."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import numpy as np

from .. import config
from ..errors import GlacierError

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
