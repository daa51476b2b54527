"""Security: no pickle is ever loaded, and downloads come only from the hrefs the STAC API gave.

* The source of the package and of the experiment scripts is parsed (not grepped as text, so a
  docstring that says "never pickle" is fine): no pickle-family import, no ``torch.load`` without
  ``weights_only=True``, no ``allow_pickle=True``, no ``pandas.read_pickle``.
* A checkpoint whose pickle would run code (``__reduce__`` → ``os.system``) is refused by the
  command line, and the code does not run.
* ``acquire`` against a real STAC API server and a real file server on loopback: every request
  the file server sees is for an asset href the STAC API returned (and only the band assets).
"""

from __future__ import annotations

import ast
import json
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest
import torch

from tests.robustness.conftest import REPO, RUN
from tests.stac_server import RustacServer


@pytest.fixture
def cli(cli_process):
    """A hostile checkpoint, were it ever run, runs in a throw-away process."""
    return cli_process


#: The package and every experiment script (the original's entry points, now thin wrappers).
SOURCES = sorted(
    [*(REPO / "glacier_movement").rglob("*.py"), *REPO.glob("experiment*/**/*.py")],
    key=str,
)
PICKLE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve"}


def _unsafe_calls(path: Path) -> list[str]:
    """Places in one source file that could load a pickle."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    name = path.relative_to(REPO) if path.is_relative_to(REPO) else path
    found = []
    for node in ast.walk(tree):
        where = f"{name}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            mods = [a.name for a in node.names]
            if any(m.split(".")[0] in PICKLE_MODULES for m in mods):
                found.append(f"{where}: imports {', '.join(mods)}")
        elif isinstance(node, ast.ImportFrom):
            mod, names = node.module or "", {a.name for a in node.names}
            if mod.split(".")[0] in PICKLE_MODULES:
                found.append(f"{where}: imports from {mod}")
            if mod.startswith("torch") and "load" in names:  # a bare load() would escape the check
                found.append(f"{where}: imports load from {mod}")
        elif isinstance(node, ast.Call):
            func = ast.unparse(node.func)
            kw = {k.arg: k.value for k in node.keywords}
            if func.endswith("read_pickle"):
                found.append(f"{where}: {func}")
            if func in ("torch.load", "torch.serialization.load"):
                safe = kw.get("weights_only")
                if not (isinstance(safe, ast.Constant) and safe.value is True):
                    found.append(f"{where}: {func} without weights_only=True")
            allow = kw.get("allow_pickle")
            if allow is not None and not (isinstance(allow, ast.Constant) and not allow.value):
                found.append(f"{where}: {func}(allow_pickle={ast.unparse(allow)})")
    return found


def test_no_pickle_is_loaded_anywhere():
    assert len(SOURCES) > 20  # the package and the scripts were found
    found = [f for path in SOURCES for f in _unsafe_calls(path)]
    assert not found, "places that could load a pickle:\n" + "\n".join(found)
    # the one torch.load there is, is the safe one
    text = (REPO / "glacier_movement" / "checkpoints.py").read_text()
    assert "torch.load(path, map_location=map_location, weights_only=True)" in text


def test_the_source_check_finds_unsafe_loads(tmp_path):
    """The check itself: each of these would be reported."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import pickle\nfrom joblib import load\nimport torch\nimport numpy as np\n"
        "torch.load('a.pt')\ntorch.load('a.pt', weights_only=False)\n"
        "np.load('a.npz', allow_pickle=True)\nimport pandas as pd\npd.read_pickle('x')\n"
        "torch.load('a.pt', weights_only=True)\nnp.load('a.npz', allow_pickle=False)\n"
    )
    found = _unsafe_calls(bad)
    assert len(found) == 6, found


class _Payload:
    """Unpickling this runs ``touch <marker>``: what a hostile checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("command", ["test", "train"])
def test_hostile_checkpoint_is_refused_and_never_run(cli, copy, trained_root, tmp_path, command):
    root = copy(trained_root)
    marker = tmp_path.parent / f"{tmp_path.name}-pwned"
    ckpt = root / "models" / RUN / "last.pt"
    good = torch.load(ckpt, weights_only=True)
    torch.save({**good, "extra": _Payload(marker)}, ckpt)  # a valid checkpoint, plus the payload
    args = {
        "test": ["--run", RUN, "--bootstrap", "0", "--device", "cpu"],
        "train": [
            *("--glacier", "parvati", "--model", "salstm", "--preset", "tiny"),
            *("--run-name", RUN, "--resume", "--wandb", "disabled", "--device", "cpu"),
        ],
    }[command]
    cli.expect_error(
        command,
        args,
        [f"checkpoint {ckpt} is not a glacier-movement checkpoint", "objects that are not weights"],
        root=root,
        watch=[root],
    )
    assert not marker.exists(), "the checkpoint's pickle ran code"


def test_assets_are_read_only_from_the_hrefs_the_stac_api_returned(cli, tmp_path, stac_catalog):
    """The file server serves also a scene that no item lists, and each item links a QA and a
    thermal asset that acquisition does not need: none of them is requested."""
    root = tmp_path / "data"
    files = stac_catalog.files
    n_before = len(files.log)
    with RustacServer(stac_catalog.hrefs) as server:
        url = f"{server.url}/collections/landsat-c2-l2/items?limit=100"
        with urllib.request.urlopen(url, timeout=10) as r:
            returned = json.load(r)["features"]
        bbox = [str(v) for v in stac_catalog.bbox]
        res = cli.run(
            "acquire",
            *("--bbox", *bbox, "--name", "testglacier", "--years", "2015"),
            *("--stac-url", server.url),
            root=root,
        )
    assert res.rc == 0 and "Traceback" not in res.stderr, res
    assert len(returned) == 2
    band_paths = {
        urlparse(a["href"]).path
        for it in returned
        for key, a in it["assets"].items()
        if key not in ("qa_pixel", "lwir11")
    }
    requested = {urlparse(path).path for _, path, _ in files.log[n_before:]}
    assert requested, "nothing was downloaded"
    assert requested <= band_paths, f"not returned by the STAC API: {requested - band_paths}"
    assert stac_catalog.decoy not in requested
    assert not any("QA_PIXEL" in p or "ST_B10" in p for p in requested)
    assert all(status in (200, 206) for _, _, status in files.log[n_before:]), files.log
