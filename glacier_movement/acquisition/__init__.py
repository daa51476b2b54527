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

Modules: ``stac`` (constants, :class:`AcquireRequest`, search, item normalising), ``loading``
(loaders, threads or dask, asset read errors), ``years`` (one year: filters, download, year file)
and ``stage`` (the command: :class:`AcquireSettings`, :func:`resolve`, :func:`acquire`).
"""

from __future__ import annotations

from .loading import Computer, LoadedStack, SceneLoader, StackstacLoader, grid_bounds, resign_href
from .stac import (
    COLLECTIONS,
    DEFAULT_COLLECTION,
    LEGACY_COLLECTION,
    PC_STAC_URL,
    PLATFORM,
    RESOLUTION,
    RETRY_STATUSES,
    AcquireRequest,
    cloud_cover,
    collection_scale_offset,
    item_time,
    normalize_item,
    open_catalog,
    search_year,
    utm_epsg,
    validate_bbox,
    validate_epsg,
)
from .stage import AcquireSettings, acquire, bbox_glacier, format_report, resolve, run
from .years import YearReport, acquire_year

__all__ = [
    "AcquireRequest",
    "cloud_cover",
    "collection_scale_offset",
    "COLLECTIONS",
    "DEFAULT_COLLECTION",
    "item_time",
    "LEGACY_COLLECTION",
    "normalize_item",
    "open_catalog",
    "PC_STAC_URL",
    "PLATFORM",
    "RESOLUTION",
    "RETRY_STATUSES",
    "search_year",
    "utm_epsg",
    "validate_bbox",
    "validate_epsg",
    "Computer",
    "grid_bounds",
    "LoadedStack",
    "resign_href",
    "SceneLoader",
    "StackstacLoader",
    "acquire_year",
    "YearReport",
    "acquire",
    "AcquireSettings",
    "bbox_glacier",
    "format_report",
    "resolve",
    "run",
]
