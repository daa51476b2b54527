"""A STAC API in trouble, through the command line: real servers on loopback (``rustac serve``
behind a proxy that answers HTTP 500), then nothing listening at all."""

from __future__ import annotations

import time

import pytest

from glacier_movement import io
from tests.stac_server import FlakyProxy, RustacServer


@pytest.fixture
def cli(cli_process):
    """A server failing or down, the command's own timeouts: each command a process."""
    return cli_process


def _acquire_args(catalog, url: str, *extra: str) -> list[str]:
    bbox = [str(v) for v in catalog.bbox]
    return ["--bbox", *bbox, "--name", "testglacier", "--years", "2015", "--stac-url", url, *extra]


def test_stac_server_answering_500_then_down(cli, tmp_path, stac_catalog):
    """500 to every request: retried (--retries 2 = 3 requests), then one line with the status;
    the server gone: one line, fast. Nothing is written either time."""
    root = tmp_path / "data"
    with FlakyProxy(fail_first=10**6) as proxy:
        with RustacServer(stac_catalog.hrefs, public_url=proxy.url) as server:
            proxy.target = server.url
            line = cli.expect_error(
                "acquire",
                _acquire_args(stac_catalog, proxy.url, "--retries", "2"),
                [f"cannot open the STAC API at {proxy.url} (after 2 retries): HTTP 500"],
                root=root,
            )
            assert "check the network and --stac-url" in line
        assert [status for _, _, status in proxy.log] == [500, 500, 500]
        url = proxy.url
    # both servers are stopped: nothing listens on the port any more
    t0 = time.monotonic()
    cli.expect_error(
        "acquire",
        _acquire_args(stac_catalog, url, "--retries", "2"),
        [f"cannot open the STAC API at {url}", "Connection refused", "check the network"],
        root=root,
    )
    assert time.monotonic() - t0 < 30
    assert not root.exists()


def test_stac_server_recovering_from_500s(cli, tmp_path, stac_catalog):
    """The first requests (landing page, search) get 500; the retries succeed and the year file
    holds both scenes."""
    root = tmp_path / "data"
    with FlakyProxy(fail_first=2, fail_search=2) as proxy:
        with RustacServer(stac_catalog.hrefs, public_url=proxy.url) as server:
            proxy.target = server.url
            res = cli.run("acquire", *_acquire_args(stac_catalog, proxy.url), root=root)
    assert res.rc == 0 and "Traceback" not in res.stderr, res
    statuses = [status for _, _, status in proxy.log]
    assert statuses[:2] == [500, 500] and 200 in statuses, proxy.log
    search = [status for _, path, status in proxy.log if path.startswith("/search")]
    assert search[:3] == [500, 500, 200], proxy.log
    scenes = io.read_scenes(root / "testglacier" / "raw" / "2015.npz")
    assert len(scenes.times) == 2
