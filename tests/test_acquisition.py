"""Acquisition end to end against a real STAC API server on loopback.

The fixture writes small Landsat-like scenes as Cloud-Optimized GeoTIFFs (UTM 43N, one file per
band) with STAC items shaped like the Planetary Computer's, serves them with ``rustac serve`` on
127.0.0.1 (assets as file:// hrefs, or over HTTP on loopback), and runs ``glacier-movement
acquire`` against it. No part of the STAC API or of GDAL is faked.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pystac
import pytest

from glacier_movement import acquisition as acq
from glacier_movement import cli, config, io
from glacier_movement.cli import main
from glacier_movement.errors import GlacierError
from tests.stac_server import (
    LANDSAT_BANDS,
    FileServer,
    FlakyProxy,
    RustacServer,
    free_port,
    inner_bbox,
    write_catalog,
    write_item,
)

#: planetary_computer 1.0 defines a pydantic v1-style model (a warning at import, not ours).
pytestmark = pytest.mark.filterwarnings(
    "ignore:Support for class-based `config`:DeprecationWarning"
)

H, W = 40, 48
EPSG = 32643
#: Pixel edges at 15 m mod 30, like real Landsat Collection 2 grids.
TRANSFORM = (30.0, 0.0, 600015.0, 0.0, -30.0, 3550035.0)
BBOX = inner_bbox(EPSG, TRANSFORM, (H, W), margin_px=5)
#: Fixture band order → config.BANDS order.
FIXTURE_ORDER = [name for name, _ in LANDSAT_BANDS]
TO_CONFIG = [FIXTURE_ORDER.index(b) for b in config.BANDS]

# id: (collection, datetime, platform, cloud cover, missing fraction, proj key, href kind)
SCENES = {
    "A": ("landsat-c2-l2", "2015-03-04T05:30:00Z", "landsat-8", 5.0, 0.0, "proj:epsg", "file"),
    "B": ("landsat-c2-l2", "2015-07-12T05:31:10Z", "landsat-8", 15.0, 0.3, "proj:code", "file"),
    "C": ("landsat-c2-l2", "2015-05-01T05:30:00Z", "landsat-8", 60.0, 0.0, "proj:code", "file"),
    "D": ("landsat-c2-l2", "2015-06-01T05:30:00Z", "landsat-9", 1.0, 0.0, "proj:code", "file"),
    "E": ("landsat-c2-l2", "2015-09-20T05:30:00Z", "landsat-8", 10.0, 0.8, "proj:code", "file"),
    "F": ("landsat-c2-l2", "2016-02-02T05:30:00Z", "landsat-8", 0.0, 0.0, "proj:code", "file"),
    "G": ("landsat-c2-l2", "2016-10-10T05:30:00Z", "landsat-8", 20.0, 0.0, "proj:code", "file"),
    "M": ("landsat-c2-l2", "2018-04-04T05:30:00Z", "landsat-8", 3.0, 0.0, "proj:code", "file"),
    "T": ("landsat-c2-l2", "2019-04-04T05:30:00Z", "landsat-8", 3.0, 0.0, "proj:code", "http"),
    "L1": ("landsat-8-c2-l2", "2015-08-08T05:30:00Z", None, 7.0, 0.0, "proj:epsg", "file"),
    "L2": ("landsat-8-c2-l2", "2015-08-24T05:30:00Z", None, 50.0, 0.0, "proj:epsg", "file"),
}


def _scene_data(i: int, missing: float) -> np.ndarray:
    """uint16 (7, H, W) DN in fixture band order; the first rows set to 0 (nodata) for gaps."""
    rng = np.random.default_rng(100 + i)
    data = rng.integers(1, 60000, size=(7, H, W), dtype=np.uint16)
    data[:, : int(round(missing * H))] = 0
    return data


@pytest.fixture(scope="module")
def stac(tmp_path_factory):
    """The served catalog: (rustac server, asset file server, {id: data (7, H, W)})."""
    folder = tmp_path_factory.mktemp("stac")
    with FileServer(folder / "assets", token="fresh") as files:
        items, truth = [], {}
        for i, (sid, (coll, dt, platform, cc, miss, proj, kind)) in enumerate(SCENES.items()):
            truth[sid] = _scene_data(i, miss)
            http = kind == "http"
            items.append(
                write_item(
                    folder / "assets", f"LC08_{sid}", truth[sid], epsg=EPSG, transform=TRANSFORM,
                    datetime=dt, cloud_cover=cc, platform=platform, collection=coll,
                    proj_key=proj, legacy=coll == "landsat-8-c2-l2",
                    href_base=files.url + "/" if http else None,
                    href_query="?token=expired" if http else "",
                )
            )  # fmt: skip
        # Scene M lost one band file: a missing asset must be an error, not silent nodata.
        (folder / "assets" / "LC08_M_SR_B7.TIF").unlink()
        hrefs = write_catalog(folder / "catalog", items)
        with RustacServer(hrefs) as server:
            yield server, files, truth


def _acquire(url: str, root: Path, *extra: str, bbox=BBOX) -> int:
    return main(
        ["acquire", "--bbox", *map(str, bbox), "--name", "testglacier", "--stac-url", url,
         "--data-root", str(root), *extra]
    )  # fmt: skip


def _expected(truth: np.ndarray, scenes: io.Scenes) -> np.ndarray:
    """The fixture's DN on the acquired grid, in config.BANDS order."""
    a, _, c, _, e, f = scenes.transform
    assert (a, e) == (30.0, -30.0)
    c0 = (c - TRANSFORM[2]) / 30.0
    r0 = (TRANSFORM[5] - f) / 30.0
    assert c0 == int(c0) and r0 == int(r0), "grid is not aligned with the native pixels"
    h, w = scenes.data.shape[2:]
    assert int(r0) >= 0 and int(c0) >= 0 and r0 + h <= H and c0 + w <= W
    return truth[TO_CONFIG, int(r0) : int(r0) + h, int(c0) : int(c0) + w]


def _one_line_error(capsys, *words: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "error:" in err, err
    for w in words:
        assert w in err, err
    return err


# ------------------------------------------------------------------------------ end to end
def test_acquire_end_to_end_then_resume(stac, tmp_path, capsys):
    server, _, truth = stac
    assert _acquire(server.url, tmp_path, "--years", "2015-2017") == 0
    out = capsys.readouterr().out
    raw = config.Paths(tmp_path, "testglacier").raw_dir
    assert sorted(p.name for p in raw.glob("*.npz")) == ["2015.npz", "2016.npz"]

    # 2015: A kept, B kept (≈ 23 % gaps on the grid), C too cloudy, D Landsat 9, E too gappy.
    s15 = io.read_scenes(raw / "2015.npz")
    assert s15.data.shape[:2] == (2, 7) and s15.data.dtype == np.uint16
    assert list(s15.times) == [
        np.datetime64("2015-03-04T05:30:00", "ns"),
        np.datetime64("2015-07-12T05:31:10", "ns"),
    ]
    np.testing.assert_array_equal(s15.cloud_cover, [5.0, 15.0])
    assert (s15.epsg, s15.glacier, s15.bands) == (EPSG, "testglacier", config.BANDS)
    assert (s15.scale, s15.offset) == (2.75e-05, -0.2)
    for k, sid in enumerate(["A", "B"]):
        np.testing.assert_array_equal(s15.data[k], _expected(truth[sid], s15))
    assert (s15.data[1] == 0).any() and not (s15.data[0] == 0).any()  # B's gap kept as nodata
    # 2016: F (cloud 0) and G (cloud exactly 20: kept, the limit is inclusive).
    s16 = io.read_scenes(raw / "2016.npz")
    np.testing.assert_array_equal(s16.cloud_cover, [0.0, 20.0])
    np.testing.assert_array_equal(s16.data[1], _expected(truth["G"], s16))
    assert s16.transform == s15.transform  # one grid for every year

    row15 = next(line.split() for line in out.splitlines() if line.startswith("2015"))
    assert row15[:6] == ["2015", "4", "1", "1", "1", "2"]  # found, other, clouds, gaps, kept
    assert any(
        line.startswith("2017") and "no Landsat 8 scene" in line for line in out.splitlines()
    )
    prov = json.loads((raw / "2015.items.json").read_text())
    assert {r["id"]: r["result"] for r in prov["items"]} == {
        "LC08_A": "kept", "LC08_B": "kept", "LC08_C": "clouds", "LC08_E": "gaps",
    }  # fmt: skip

    # A second run downloads nothing: it does not even need the server.
    mtimes = {p: p.stat().st_mtime_ns for p in raw.iterdir()}
    dead = f"http://127.0.0.1:{free_port()}"
    assert _acquire(dead, tmp_path, "--years", "2015-2016") == 0
    assert "exists, skipped" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in raw.iterdir()} == mtimes
    # --force downloads again, to the same result.
    assert _acquire(server.url, tmp_path, "--years", "2016", "--force") == 0
    assert (raw / "2016.npz").stat().st_mtime_ns != mtimes[raw / "2016.npz"]
    np.testing.assert_array_equal(io.read_scenes(raw / "2016.npz").data, s16.data)

    # --bbox … --name wrote the glacier's config (after the first success), so the name is a
    # glacier every later stage accepts
    g = config.get_glacier("testglacier", tmp_path)
    assert (tmp_path / "glaciers" / "testglacier.toml").is_file()
    assert (g.bbox, g.epsg, g.years, g.window_months) == (tuple(BBOX), EPSG, (2015, 2017), 3)
    # the default ROI is the whole grid: at least the grid acquisition built
    h, w = s16.data.shape[2:]
    assert g.roi[0] == g.roi[2] == 0 and g.roi[1] >= h and g.roi[3] >= w
    capsys.readouterr()
    assert main(["acquire", "--glacier", "testglacier", "--stac-url", dead, "--years", "2015",
                 "--data-root", str(tmp_path)]) == 0  # fmt: skip
    assert "exists, skipped" in capsys.readouterr().out
    # the same name for another box is refused before anything is downloaded
    other = (BBOX[0], BBOX[1], BBOX[2] - 0.001, BBOX[3])
    assert _acquire(dead, tmp_path, "--years", "2015", bbox=other) == 2
    _one_line_error(capsys, "'testglacier' is configured in", "--glacier testglacier")


def test_legacy_collection(stac, tmp_path):
    server, _, truth = stac
    assert _acquire(server.url, tmp_path, "--years", "2015", "--collection", "landsat-8-c2-l2") == 0
    s = io.read_scenes(config.Paths(tmp_path, "testglacier").raw_year(2015))
    np.testing.assert_array_equal(s.cloud_cover, [7.0])  # L2 (50 %) dropped; no platform needed
    np.testing.assert_array_equal(s.data[0], _expected(truth["L1"], s))
    assert (s.scale, s.offset) == (config.SCALE, config.OFFSET)  # no raster:bands: C2 defaults


def test_distributed_scheduler(stac, tmp_path):
    """--scheduler ADDRESS computes on that dask.distributed cluster, to the same result."""
    from distributed import Client, LocalCluster

    server, _, truth = stac
    with LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, protocol="tcp://", host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:  # fmt: skip
        assert (
            _acquire(
                server.url, tmp_path, "--years", "2016", "--scheduler", cluster.scheduler_address
            )
            == 0
        )
        s = io.read_scenes(config.Paths(tmp_path, "testglacier").raw_year(2016))
        for k, sid in enumerate(["F", "G"]):
            np.testing.assert_array_equal(s.data[k], _expected(truth[sid], s))
        # An open Client (how a Coiled cluster is used) is used and left open.
        with Client(cluster) as client:
            settings = acq.resolve(
                acq.AcquireSettings(
                    bbox=BBOX, name="other", years="2016", epsg=EPSG, stac_url=server.url
                ),
                tmp_path,
            )
            acq.acquire(settings, tmp_path, client=client, progress=False)
            assert client.status == "running"
    np.testing.assert_array_equal(
        io.read_scenes(tmp_path / "other" / "raw" / "2016.npz").data, s.data
    )


# -------------------------------------------------------------------------------- robustness
def test_flaky_server_is_retried(stac, tmp_path):
    server, _, truth = stac
    with FlakyProxy(fail_first=2, fail_search=2) as proxy:
        with RustacServer(server.hrefs, public_url=proxy.url) as flaky:
            proxy.target = flaky.url
            assert _acquire(proxy.url, tmp_path, "--years", "2016") == 0
    statuses = [st for _, _, st in proxy.log]
    assert statuses[:2] == [500, 500]
    assert [st for m, p, st in proxy.log if p.startswith("/search")][:3] == [500, 500, 200]
    s = io.read_scenes(config.Paths(tmp_path, "testglacier").raw_year(2016))
    np.testing.assert_array_equal(s.data[0], _expected(truth["F"], s))


def test_server_down_fails_fast(tmp_path, capsys):
    url = f"http://127.0.0.1:{free_port()}"
    t0 = time.monotonic()
    assert _acquire(url, tmp_path, "--years", "2015") == 2
    assert time.monotonic() - t0 < 15
    _one_line_error(capsys, "cannot open the STAC API", url, "3 retries", "Connection refused")
    assert not (tmp_path / "testglacier" / "raw").exists()


def test_missing_asset_is_an_error(stac, tmp_path, capsys):
    server, _, _ = stac
    assert _acquire(server.url, tmp_path, "--years", "2018") == 2
    _one_line_error(capsys, "'swir22'", "LC08_M", "LC08_M_SR_B7.TIF")
    assert not list((tmp_path / "testglacier").rglob("*.npz"))


def test_expired_signature_is_resigned(stac, tmp_path, capsys):
    """A 403 from a signed href re-signs the items and retries (here: the real file server wants
    ?token=fresh; the re-signer stands in for the Planetary Computer's SAS token service)."""
    server, files, truth = stac
    settings = acq.resolve(
        acq.AcquireSettings(
            bbox=BBOX, name="testglacier", years="2019", epsg=EPSG, stac_url=server.url
        ),
        tmp_path,
    )
    with pytest.raises(
        GlacierError, match=r"403.*|.*403"
    ):  # the default re-signer keeps loopback hrefs
        acq.acquire(settings, tmp_path, progress=False)
    capsys.readouterr()
    n_before = len(files.log)
    reports = acq.acquire(
        settings,
        tmp_path,
        resign=lambda h: h.replace("token=expired", "token=fresh"),
        progress=False,
    )
    assert reports[0].kept == 1
    assert "re-signing" in capsys.readouterr().err
    assert any(st == 403 and "token=expired" in p for _, p, st in files.log)
    after = files.log[n_before:]
    assert after and all(st in (200, 206) and "token=fresh" in p for _, p, st in after)
    s = io.read_scenes(config.Paths(tmp_path, "testglacier").raw_year(2019))
    np.testing.assert_array_equal(s.data[0], _expected(truth["T"], s))


def test_flaky_asset_server_is_retried(tmp_path):
    """GDAL retries an asset read that got HTTP 503 (the loader's GDAL_HTTP_MAX_RETRY)."""
    data = _scene_data(7, 0.0)
    with FileServer(tmp_path / "assets", fail_first=1) as files:
        item = write_item(
            tmp_path / "assets", "LC08_R", data, epsg=EPSG, transform=TRANSFORM,
            datetime="2015-01-05T05:30:00Z", cloud_cover=1.0, href_base=files.url + "/",
        )  # fmt: skip
        with RustacServer(write_catalog(tmp_path / "catalog", [item])) as server:
            assert _acquire(server.url, tmp_path / "root", "--years", "2015") == 0
    statuses = [st for _, _, st in files.log]
    assert statuses[0] == 503 and set(statuses[1:]) <= {200, 206}
    s = io.read_scenes(config.Paths(tmp_path / "root", "testglacier").raw_year(2015))
    np.testing.assert_array_equal(s.data[0], _expected(data, s))


# ------------------------------------------------------------------------------- bad input
def test_empty_result(stac, tmp_path, capsys):
    server, _, _ = stac
    aletsch = config.get_glacier("aletsch").bbox
    assert _acquire(server.url, tmp_path, "--years", "2015-2016", bbox=aletsch) == 2
    _one_line_error(capsys, "no Landsat 8 scene", "no file was written")
    assert not list(tmp_path.rglob("*.npz"))


def test_collection_not_on_the_server(tmp_path, capsys):
    item = write_item(
        tmp_path / "assets", "LC08_Z", _scene_data(0, 0.0), epsg=EPSG, transform=TRANSFORM,
        datetime="2015-01-05T05:30:00Z", cloud_cover=1.0,
    )  # fmt: skip
    with RustacServer(write_catalog(tmp_path / "catalog", [item])) as server:
        argv = ["--years", "2015", "--collection", "landsat-8-c2-l2"]
        assert _acquire(server.url, tmp_path / "root", *argv) == 2
    _one_line_error(capsys, "has no collection 'landsat-8-c2-l2'", "--collection landsat-c2-l2")
    assert not (tmp_path / "root").exists()


def test_nothing_passes_the_filters(stac, tmp_path, capsys):
    server, _, _ = stac
    # 2015 with --max-cloud 1: only D (Landsat 9) is clear enough, and it is not Landsat 8.
    assert _acquire(server.url, tmp_path, "--years", "2015", "--max-cloud", "1") == 2
    _one_line_error(capsys, "none passed the filters", "--max-cloud")
    assert not list(tmp_path.rglob("*.npz"))


@pytest.mark.parametrize(
    "args, words",
    [
        (["--bbox", "200", "30", "201", "31", "--name", "x"], ["out of range"]),
        (["--bbox", "78", "30", "77", "31", "--name", "x"], ["W < E"]),
        (["--bbox", "77", "31", "78", "31", "--name", "x"], ["S < N"]),
        (["--glacier", "parvati", "--years", "2010-2012"], ["Landsat 8"]),
        (["--glacier", "parvati", "--years", "2020-2015"], ["FIRST <= LAST"]),
        (["--glacier", "parvati", "--collection", "sentinel-2-l2a"], ["unknown collection"]),
        (["--bbox", "77", "31", "78", "32"], ["--name"]),
        (["--glacier", "aletsch", "--max-cloud", "150"], ["--max-cloud 150.0 is not a percentage"]),
        (["--glacier", "aletsch", "--max-missing", "0"], ["--max-missing 0.0 is not a fraction"]),
        (["--glacier", "aletsch", "--threads", "0"], ["--threads must be ≥ 1"]),
        (["--glacier", "aletsch", "--retries", "-1"], ["--retries must be ≥ 0"]),
        (["--glacier", "aletsch", "--epsg", "4326"], ["metres"]),
    ],
)
def test_bad_arguments(tmp_path, capsys, args, words):
    dead = f"http://127.0.0.1:{free_port()}"
    argv = ["acquire", *args, "--stac-url", dead, "--data-root", str(tmp_path)]
    assert main(argv) == 2
    _one_line_error(capsys, *words)
    assert not any(tmp_path.iterdir())


def test_refuses_to_mix_with_synthetic_data(tmp_path, capsys):
    paths = config.Paths(tmp_path, "parvati")
    paths.glacier_dir.mkdir(parents=True)
    paths.truth.write_bytes(b"synthetic")
    assert main(["acquire", "--glacier", "parvati", "--data-root", str(tmp_path)]) == 2
    _one_line_error(capsys, "synthetic", "--force")
    assert paths.truth.exists()


# ------------------------------------------------------------------------------------ units
@pytest.mark.parametrize("glacier, epsg", [("parvati", 32643), ("aletsch", 32632)])
def test_glacier_settings_pick_the_utm_zone(glacier, epsg):
    g = config.get_glacier(glacier)
    assert acq.utm_epsg((g.bbox[0] + g.bbox[2]) / 2, (g.bbox[1] + g.bbox[3]) / 2) == epsg
    s = acq.resolve(cli.parse(["acquire", "--glacier", glacier])[1], None)
    assert (s.epsg, s.bbox, s.years, s.collection) == (epsg, g.bbox, (2013, 2021), "landsat-c2-l2")
    assert acq.utm_epsg(-70.5, -33.4) == 32719  # southern hemisphere


def test_normalize_item_restores_epsg_and_names_assets(tmp_path):
    d = write_item(
        tmp_path, "LC08_X", _scene_data(0, 0.0), epsg=EPSG, transform=TRANSFORM,
        datetime="2015-01-01T00:00:00Z", cloud_cover=1.0, platform=None,
        collection="landsat-8-c2-l2", proj_key="proj:code", legacy=True,
    )  # fmt: skip
    item = pystac.Item.from_dict(d)
    assert "proj:epsg" not in item.properties  # pystac ≥ 1.12 speaks proj:code
    n = acq.normalize_item(item)
    assert n["properties"]["proj:epsg"] == EPSG
    assert list(n["assets"]) == list(config.BANDS)  # SR_B* renamed, qa_pixel dropped
    assert n["assets"]["green"]["href"].endswith("LC08_X_SR_B3.TIF")


def test_grid_is_snapped_to_the_native_pixels():
    items = [{"properties": {"proj:epsg": EPSG, "proj:transform": list(TRANSFORM)}}]
    minx, miny, maxx, maxy = acq.grid_bounds(items, BBOX, EPSG, 30.0)
    for v in (minx, maxx, miny, maxy):
        assert (v - 15.0) % 30.0 == 0.0
    assert TRANSFORM[2] <= minx < maxx <= TRANSFORM[2] + W * 30
    assert TRANSFORM[5] - H * 30 <= miny < maxy <= TRANSFORM[5]


@pytest.mark.parametrize(
    "script, glacier, epsg",
    [
        ("experiment1/preProcessing/dataAPI.py", "parvati", 32643),
        ("experiment2/preProcessing/dataAPI.py", "aletsch", 32632),
    ],
)
def test_experiment_scripts(script, glacier, epsg):
    """The original entry points are config files for `acquire` beside the scripts."""
    config_file = (Path(__file__).parents[1] / script).with_suffix(".toml")
    s = acq.resolve(cli.parse(["acquire", "--config", str(config_file)])[1], None)
    assert (s.name, s.epsg, s.years, s.stac_url) == (glacier, epsg, (2013, 2021), acq.PC_STAC_URL)
