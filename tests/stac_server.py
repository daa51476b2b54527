"""Real servers on loopback for the acquisition tests, and a small Landsat-like STAC catalog.

* :class:`RustacServer` runs ``rustac serve`` (a real STAC API server, the ``rustac`` wheel's CLI)
  on 127.0.0.1 with a collection and an item collection loaded into its memory backend.
* :class:`FlakyProxy` is a real HTTP server on 127.0.0.1 that answers 500 to the first requests
  and forwards the others to the STAC server (rustac is started with ``--addr`` = the proxy's URL,
  so every link it writes points back through the proxy).
* :class:`FileServer` serves files over HTTP with byte ranges (what GDAL's /vsicurl/ reads COGs
  with); with ``token=`` it answers 403 to a request without ``?token=<token>``, like an expired
  Planetary Computer SAS signature; with ``fail_first=n`` it answers 503 to the first n requests.
* :func:`write_item` writes one scene as seven single-band Cloud-Optimized GeoTIFFs and returns its
  STAC item, shaped like the Planetary Computer's ``landsat-c2-l2`` items (or the legacy
  ``landsat-8-c2-l2`` ones). Every server binds 127.0.0.1 only, on a free port, and stops on exit.
"""

from __future__ import annotations

import http.server
import json
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np

#: Asset keys (= common names) of the seven reflective bands, in the real collection's order,
#: with their USGS band numbers.
LANDSAT_BANDS: tuple[tuple[str, int], ...] = (
    ("coastal", 1),
    ("blue", 2),
    ("green", 3),
    ("red", 4),
    ("nir08", 5),
    ("swir16", 6),
    ("swir22", 7),
)
SR_RASTER = {
    "scale": 2.75e-05,
    "offset": -0.2,
    "nodata": 0,
    "data_type": "uint16",
    "spatial_resolution": 30,
}
COG = "image/tiff; application=geotiff; profile=cloud-optimized"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 10.0) -> None:
    """Wait until ``url`` answers (any HTTP status), or raise."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not come up in {timeout} s") from None
            time.sleep(0.05)


# --------------------------------------------------------------------------------- STAC server
class RustacServer:
    """``rustac serve`` on 127.0.0.1 (context manager); ``url`` is its STAC API root.

    ``public_url`` is the address the server writes into its links (default: its own).
    """

    def __init__(self, hrefs: Sequence[Path | str], public_url: str | None = None):
        exe = Path(sys.executable).with_name("rustac")
        self.exe = str(exe) if exe.exists() else shutil.which("rustac")
        if self.exe is None:
            raise RuntimeError("the rustac CLI is not installed (pip install rustac)")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.public_url = public_url or self.url
        self.hrefs = [str(h) for h in hrefs]
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> RustacServer:
        cmd = [
            self.exe,
            "serve",
            "--addr",
            self.public_url,
            "--bind",
            f"127.0.0.1:{self.port}",
            *self.hrefs,
        ]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_http(self.url + "/")
        except RuntimeError:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            if self.proc.stderr is not None:
                self.proc.stderr.close()
            self.proc = None


# --------------------------------------------------------------------------- threaded servers
class _ThreadedServer:
    """A ThreadingHTTPServer on 127.0.0.1 in a daemon thread (context manager)."""

    handler: type[http.server.BaseHTTPRequestHandler]

    def __init__(self) -> None:
        self.log: list[tuple[str, str, int]] = []  # (method, path, status)
        self._lock = threading.Lock()
        owner = self

        class Handler(self.handler):  # type: ignore[name-defined, misc]
            server_owner = owner

            def log_message(self, *args) -> None:  # keep test output clean
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def record(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self.log.append((method, path, status))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _handle(self) -> None:
        owner: FlakyProxy = self.server_owner  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if owner.should_fail(self.path):
            payload = b'{"code":"InternalServerError","description":"flaky"}'
            self.send_response(500)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            owner.record(self.command, self.path, 500)
            return
        req = urllib.request.Request(
            owner.target + self.path,
            data=body if self.command == "POST" else None,
            method=self.command,
            headers={
                k: v for k, v in self.headers.items() if k.lower() in ("content-type", "accept")
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                status, ctype, payload = r.status, r.headers.get("Content-Type"), r.read()
        except urllib.error.HTTPError as e:
            status, ctype, payload = e.code, e.headers.get("Content-Type"), e.read()
        self.send_response(status)
        self.send_header("Content-Type", ctype or "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        owner.record(self.command, self.path, status)

    do_GET = do_POST = _handle


class FlakyProxy(_ThreadedServer):
    """Forwards to ``target`` but answers HTTP 500 to the first ``fail_first`` requests, and to
    the first ``fail_search`` requests whose path starts with /search."""

    handler = _ProxyHandler

    def __init__(self, target: str = "", fail_first: int = 2, fail_search: int = 2):
        super().__init__()
        self.target = target
        self.fail_first, self.fail_search = fail_first, fail_search
        self._seen = self._seen_search = 0

    def should_fail(self, path: str) -> bool:
        with self._lock:
            self._seen += 1
            if self._seen <= self.fail_first:
                return True
            if path.startswith("/search"):
                self._seen_search += 1
                return self._seen_search <= self.fail_search
            return False


class _FileHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _handle(self, head: bool) -> None:
        owner: FileServer = self.server_owner  # type: ignore[attr-defined]
        url = urlparse(self.path)
        path = (owner.root / url.path.lstrip("/")).resolve()
        status = 200
        if owner.should_fail():
            status = 503
        elif owner.token is not None and parse_qs(url.query).get("token") != [owner.token]:
            status = 403
        elif owner.root not in path.parents or not path.is_file():
            status = 404
        if status != 200:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            owner.record(self.command, self.path, status)
            return
        data = path.read_bytes()
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if m:  # one byte range, the way GDAL asks for COG tiles
            start = int(m.group(1))
            end = min(int(m.group(2)) if m.group(2) else len(data) - 1, len(data) - 1)
            status, chunk = 206, data[start : end + 1]
        else:
            chunk = data
        self.send_response(status)
        self.send_header("Content-Type", "image/tiff")
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.send_header("Content-Length", str(len(chunk)))
        self.end_headers()
        if not head:
            self.wfile.write(chunk)
        owner.record(self.command, self.path, status)

    def do_GET(self) -> None:
        self._handle(head=False)

    def do_HEAD(self) -> None:
        self._handle(head=True)


class FileServer(_ThreadedServer):
    """Serves the files under ``root`` over HTTP with byte ranges; 403 without ``?token=token``;
    503 to the first ``fail_first`` requests."""

    handler = _FileHandler

    def __init__(self, root: Path, token: str | None = None, fail_first: int = 0):
        super().__init__()
        self.root = Path(root).resolve()
        self.token = token
        self.fail_first = fail_first
        self._seen = 0

    def should_fail(self) -> bool:
        with self._lock:
            self._seen += 1
            return self._seen <= self.fail_first


# ------------------------------------------------------------------------------------ catalog
def footprint_lonlat(
    epsg: int, transform: Sequence[float], shape: tuple[int, int]
) -> list[list[float]]:
    """Lon/lat ring (closed, 5 points) of a raster's footprint."""
    from pyproj import Transformer

    a, _, c, _, e, f = transform[:6]
    h, w = shape
    xs = [c, c + w * a, c + w * a, c, c]
    ys = [f + h * e, f + h * e, f, f, f + h * e]
    lon, lat = Transformer.from_crs(epsg, 4326, always_xy=True).transform(xs, ys)
    return [[float(x), float(y)] for x, y in zip(lon, lat, strict=True)]


def inner_bbox(
    epsg: int, transform: Sequence[float], shape: tuple[int, int], margin_px: int
) -> tuple[float, ...]:
    """A lon/lat bbox (W, S, E, N) whose UTM envelope lies inside the raster, ``margin_px`` pixels
    (roughly) from its edges."""
    a, _, c, _, e, f = transform[:6]
    h, w = shape
    m = margin_px
    inner = (a, 0.0, c + m * a, 0.0, e, f + m * e)
    ring = footprint_lonlat(epsg, inner, (h - 2 * m, w - 2 * m))
    (llx, lly), (lrx, lry), (urx, ury), (ulx, uly) = ring[:4]
    return max(llx, ulx), max(lly, lry), min(lrx, urx), min(uly, ury)


def write_item(
    folder: Path,
    item_id: str,
    data: np.ndarray,
    *,
    epsg: int,
    transform: Sequence[float],
    datetime: str,
    cloud_cover: float,
    platform: str | None = "landsat-8",
    collection: str = "landsat-c2-l2",
    proj_key: str = "proj:epsg",
    legacy: bool = False,
    href_base: str | None = None,
    href_query: str = "",
) -> dict[str, Any]:
    """Write one scene as seven single-band COGs under ``folder`` and return its STAC item.

    ``data`` is uint16 (7, H, W) in :data:`LANDSAT_BANDS` order (coastal, blue, green, red, nir08,
    swir16, swir22), 0 = nodata. Items look like the Planetary Computer's: ``proj:epsg`` (STAC 1.0)
    or ``proj:code`` (STAC 1.1, ``proj_key="proj:code"``), ``proj:shape``/``proj:transform``/
    ``proj:bbox``, ``eo:cloud_cover``, assets with ``eo:bands`` common names and ``raster:bands``
    scale/offset/nodata, plus a ``lwir11`` (other scale) and a ``qa_pixel`` asset whose files do not
    exist (acquisition must not read them). ``legacy=True`` gives the old ``landsat-8-c2-l2`` shape:
    assets keyed ``SR_B1`` … with no ``raster:bands``. Hrefs are ``file://`` URIs, or
    ``href_base + name + href_query`` when ``href_base`` is given (HTTP on loopback).
    """
    import rasterio
    from rasterio.transform import Affine

    folder.mkdir(parents=True, exist_ok=True)
    _, h, w = data.shape
    aff = Affine(*transform[:6])
    assets: dict[str, Any] = {}
    for b, (name, number) in enumerate(LANDSAT_BANDS):
        fname = f"{item_id}_SR_B{number}.TIF"
        path = folder / fname
        with rasterio.open(
            path, "w", driver="COG", width=w, height=h, count=1, dtype="uint16",
            crs=f"EPSG:{epsg}", transform=aff, nodata=0,
        ) as ds:  # fmt: skip
            ds.write(data[b], 1)
        href = path.as_uri() if href_base is None else f"{href_base}{fname}{href_query}"
        asset = {
            "href": href,
            "type": COG,
            "title": f"{name} band",
            "roles": ["data", "reflectance"],
            "eo:bands": [{"name": f"OLI_B{number}", "common_name": name}],
        }
        if not legacy:
            asset["raster:bands"] = [dict(SR_RASTER)]
        assets[f"SR_B{number}" if legacy else name] = asset
    missing = (href_base or folder.as_uri() + "/") + f"{item_id}_QA_PIXEL.TIF"
    assets["qa_pixel"] = {"href": missing, "type": COG, "roles": ["cloud"]}
    if not legacy:
        assets["lwir11"] = {
            "href": missing.replace("QA_PIXEL", "ST_B10"),
            "type": COG,
            "roles": ["data", "temperature"],
            "eo:bands": [{"name": "TIRS_B10", "common_name": "lwir11"}],
            "raster:bands": [
                {"scale": 0.00341802, "offset": 149.0, "nodata": 0, "data_type": "uint16"}
            ],
        }
    ring = footprint_lonlat(epsg, transform, (h, w))
    lons, lats = [p[0] for p in ring], [p[1] for p in ring]
    a, _, c, _, e, f = transform[:6]
    props: dict[str, Any] = {
        "datetime": datetime,
        "eo:cloud_cover": cloud_cover,
        "proj:shape": [h, w],
        "proj:transform": [a, 0.0, c, 0.0, e, f],
        "proj:bbox": [c, f + h * e, c + w * a, f],
        proj_key: epsg if proj_key == "proj:epsg" else f"EPSG:{epsg}",
        "instruments": ["oli", "tirs"],
    }
    if platform is not None:
        props["platform"] = platform
    proj_ext = "v1.1.0" if proj_key == "proj:epsg" else "v2.0.0"
    return {
        "type": "Feature",
        "stac_version": "1.0.0" if proj_key == "proj:epsg" else "1.1.0",
        "stac_extensions": [
            f"https://stac-extensions.github.io/projection/{proj_ext}/schema.json",
            "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
        ],
        "id": item_id,
        "collection": collection,
        "bbox": [min(lons), min(lats), max(lons), max(lats)],
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": props,
        "links": [],
        "assets": assets,
    }


def write_catalog(folder: Path, items: Sequence[dict[str, Any]]) -> list[Path]:
    """Write one collection JSON per collection id of ``items`` and an item collection; returns
    the hrefs to hand to ``rustac serve`` (collections first)."""
    folder.mkdir(parents=True, exist_ok=True)
    hrefs: list[Path] = []
    for cid in sorted({it["collection"] for it in items}):
        members = [it for it in items if it["collection"] == cid]
        bbox = [
            min(it["bbox"][0] for it in members), min(it["bbox"][1] for it in members),
            max(it["bbox"][2] for it in members), max(it["bbox"][3] for it in members),
        ]  # fmt: skip
        coll = {
            "type": "Collection",
            "stac_version": "1.0.0",
            "id": cid,
            "description": f"test fixture for {cid}",
            "license": "proprietary",
            "links": [],
            "extent": {
                "spatial": {"bbox": [bbox]},
                "temporal": {"interval": [["2013-03-18T00:00:00Z", None]]},
            },
        }
        path = folder / f"{cid}.collection.json"
        path.write_text(json.dumps(coll))
        hrefs.append(path)
    items_path = folder / "items.json"
    items_path.write_text(json.dumps({"type": "FeatureCollection", "features": list(items)}))
    return [*hrefs, items_path]
