"""Shared fixtures of the robustness suite: the command line run as a user runs it, and small data.

Every case runs a ``glacier-movement`` command and checks the error policy of the command line.
The ``cli`` fixture runs the command's ``main()`` in this process, in the environment, working
folder and warning filters a fresh process would have (a process start costs about 4 s of CPU);
``cli_process`` runs ``python -m glacier_movement …`` in a subprocess (the interpreter running
the tests, so any venv works), for what only a process shows: signals, kills, a full disk
(``ulimit -f``), the entry point's exit status and traceback. Both check:

* a non-zero exit (2: a user error, not 3: an internal error);
* exactly ONE line on stderr that says ``error:``, naming the problem and the fix;
* no traceback (unless ``--debug``);
* nothing half-written: no temporary files, no new output file, old outputs unchanged
  byte for byte (:meth:`Cli.snapshot` before, :meth:`Cli.assert_untouched` after).

The data are made once per test run, shared by the pytest-xdist workers (:func:`built_once`): a
small synthetic Parvati (48×48 px, 2013-2015), the same
preprocessed, and the same with a tiny SA-LSTM checkpoint. A test that changes data copies them
first (:func:`copy_root`). Also here: :func:`file_size_limit` (a full disk for one command) and
:func:`stac_catalog` (scenes behind a real file server on loopback, for ``rustac serve``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import resource
import shutil
import signal
import subprocess
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.helpers import built_once

REPO = Path(__file__).resolve().parents[2]
#: The tiny checkpoint of the session's trained root (``models/<RUN>/last.pt``).
RUN = "salstm-parvati-tiny"


# ---------------------------------------------------------------------------------- results
@dataclass
class Result:
    """One finished command: its argv, exit status and output."""

    argv: list[str]
    rc: int
    stdout: str
    stderr: str

    @property
    def stderr_lines(self) -> list[str]:
        """stderr as a terminal shows it: a progress bar's carriage returns overwrite the line."""
        return [ln.split("\r")[-1].rstrip() for ln in self.stderr.split("\n")]

    def __str__(self) -> str:  # shown by pytest when an assertion fails
        return (
            f"$ {' '.join(self.argv)}\n-> exit {self.rc}\n--- stdout\n{self.stdout[-3000:]}"
            f"\n--- stderr\n{self.stderr[-3000:]}"
        )


def tree_state(*dirs: Path) -> dict[Path, str]:
    """SHA-256 of every file under ``dirs`` (missing folders hold nothing)."""
    out: dict[Path, str] = {}
    for d in dirs:
        if not Path(d).exists():
            continue
        for p in sorted(Path(d).rglob("*")):
            if p.is_file() and not p.is_symlink():
                out[p] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def temp_files(*dirs: Path) -> list[Path]:
    """Temporary files (``io.atomic_path`` names them ``.<name>.<pid>.<random>.tmp…``)."""
    return [p for d in dirs if Path(d).exists() for p in Path(d).rglob("*") if ".tmp" in p.name]


#: The warning filters of a fresh interpreter (``python -W`` unset): pytest's own filters show
#: warnings that a user's process would not, and record instead of print them.
FRESH_WARNING_FILTERS: list[tuple[str, type[Warning], str]] = [
    ("default", DeprecationWarning, "__main__"),
    ("ignore", DeprecationWarning, ""),
    ("ignore", PendingDeprecationWarning, ""),
    ("ignore", ImportWarning, ""),
    ("ignore", ResourceWarning, ""),
]


class Cli:
    """Runs ``glacier-movement`` in a clean environment: in a subprocess (``process=True``), or
    its ``main()`` in this process with that environment, working folder, stdout and stderr.

    The data root comes only from ``root`` (set as ``$GLACIER_DATA_ROOT``) or an explicit
    ``--data-root`` in the arguments; the working directory is the test's own folder, so the
    default ``./data`` can never be the repository's. One CPU thread: runs are deterministic.
    """

    def __init__(self, cwd: Path, process: bool = True):
        self.cwd = cwd
        self.process = process

    def env(self, root: Path | None = None, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GLACIER_", "WANDB_"))}
        env.update(
            PYTHONPATH=os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])]),
            PYTHONUNBUFFERED="1",
            OMP_NUM_THREADS="1",
            MKL_NUM_THREADS="1",
            MPLBACKEND="Agg",
            WANDB_MODE="disabled",
            WANDB_SILENT="true",
        )
        if root is not None:
            env["GLACIER_DATA_ROOT"] = str(root)
        env.update(extra)
        return env

    def argv(self, args: Sequence[str]) -> list[str]:
        return [sys.executable, "-m", "glacier_movement", *map(str, args)]

    def run(
        self,
        *args: str | Path,
        root: Path | None = None,
        timeout: float = 180,
        preexec_fn: Callable[[], None] | None = None,
        env: dict[str, str] | None = None,
    ) -> Result:
        shown = ["glacier-movement", *map(str, args)]
        if not self.process:
            if preexec_fn is not None:
                raise TypeError("preexec_fn needs a process: use the cli_process fixture")
            return Result(shown, *self._main(list(map(str, args)), env or self.env(root)))
        p = subprocess.run(
            self.argv(args),
            cwd=self.cwd,
            env=env or self.env(root),
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=preexec_fn,
        )
        return Result(shown, p.returncode, p.stdout, p.stderr)

    def _main(self, args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
        """``python -m glacier_movement *args`` in this process: (exit status, stdout, stderr).
        An exception that escapes ``main()`` ends as it would end the process: its traceback on
        stderr, exit 1."""
        from glacier_movement.cli import main

        out, err = io.StringIO(), io.StringIO()

        def show(message, category, filename, lineno, file=None, line=None) -> None:
            err.write(warnings.formatwarning(message, category, filename, lineno, line))

        saved_env, saved_cwd = dict(os.environ), os.getcwd()
        os.environ.clear()
        os.environ.update(env)
        os.chdir(self.cwd)
        try:
            with (
                contextlib.redirect_stdout(out),
                contextlib.redirect_stderr(err),
                warnings.catch_warnings(),
            ):
                warnings.resetwarnings()
                for action, category, module in FRESH_WARNING_FILTERS:
                    warnings.filterwarnings(action, category=category, module=module, append=True)
                warnings.showwarning = show
                try:
                    rc = main(args)
                except SystemExit as e:  # the parser's own errors, --help, --version
                    rc = e.code if isinstance(e.code, int) else int(e.code is not None)
                except Exception:
                    traceback.print_exc()
                    rc = 1
        finally:
            os.chdir(saved_cwd)
            os.environ.clear()
            os.environ.update(saved_env)
        return rc, out.getvalue(), err.getvalue()

    def popen(
        self, *args: str | Path, root: Path | None = None, stderr: Any = subprocess.PIPE
    ) -> subprocess.Popen:
        """Start a command (stdout piped, binary) to kill it in the middle, always a process.
        ``stderr`` may be a file: progress bars must not fill a pipe nobody reads."""
        return subprocess.Popen(
            self.argv(args),
            cwd=self.cwd,
            env=self.env(root),
            stdout=subprocess.PIPE,
            stderr=stderr,
        )

    # ------------------------------------------------------------------------- assertions
    def snapshot(self, *dirs: Path) -> dict[Path, str]:
        """Every file under ``dirs`` (default: the test's folder) and its hash."""
        return tree_state(*(dirs or (self.cwd,)))

    def assert_untouched(self, before: dict[Path, str], *dirs: Path) -> None:
        """No temporary file, no new file, no file changed or removed since ``before``."""
        dirs = dirs or (self.cwd,)
        assert not temp_files(*dirs), f"temporary files left behind: {temp_files(*dirs)}"
        after = tree_state(*dirs)
        new = sorted(set(after) - set(before))
        gone = sorted(set(before) - set(after))
        changed = sorted(p for p in set(after) & set(before) if after[p] != before[p])
        assert not new, f"new files after a failed command: {new}"
        assert not gone, f"files removed by a failed command: {gone}"
        assert not changed, f"files changed by a failed command: {changed}"

    @staticmethod
    def error_line(res: Result, command: str, *words: str) -> str:
        """The one error line of a failed command; checks exit 2, no traceback, the words."""
        assert res.rc == 2, f"expected exit 2 (a user error):\n{res}"
        assert "Traceback" not in res.stderr, f"a traceback without --debug:\n{res}"
        errors = [ln for ln in res.stderr_lines if "error" in ln.lower()]
        assert len(errors) == 1, f"expected exactly one error line:\n{res}"
        line = errors[0]
        # ... and it is the last thing written: no second line of the message after it
        assert [ln for ln in res.stderr_lines if ln.strip()][-1] == line, (
            f"output after the error:\n{res}"
        )
        assert line.startswith(f"glacier-movement {command}: error: "), line
        assert "internal error" not in line, line
        for w in words:
            assert w in line, f"{w!r} is not in the error line:\n{line}"
        return line

    def expect_error(
        self,
        command: str,
        args: Sequence[str | Path],
        words: Sequence[str],
        *,
        root: Path | None = None,
        watch: Sequence[Path] = (),
        **kw,
    ) -> str:
        """Run ``glacier-movement command *args``; it must fail cleanly with ``words`` in its one
        error line and leave the test folder (and ``watch``) exactly as it was. Returns the line."""
        dirs = (self.cwd, *watch)
        before = self.snapshot(*dirs)
        res = self.run(command, *args, root=root, **kw)
        line = self.error_line(res, command, *words)
        self.assert_untouched(before, *dirs)
        return line


def file_size_limit(limit: int) -> Callable[[], None]:
    """A ``preexec_fn`` that makes every file the command writes stop at ``limit`` bytes (a full
    disk, as ``ulimit -f``): SIGXFSZ is ignored, so a write past the limit fails with EFBIG instead
    of killing the process."""

    def limit_writes() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return limit_writes


# ----------------------------------------------------------------------------------- fixtures
@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """A command-line runner working in this test's own folder, ``main()`` in this process."""
    return Cli(tmp_path, process=False)


@pytest.fixture
def cli_process(tmp_path: Path) -> Cli:
    """A command-line runner working in this test's own folder, each command a process."""
    return Cli(tmp_path)


def copy_root(src: Path, dst: Path) -> Path:
    """A private copy of a session data root (for tests that change files)."""
    shutil.copytree(src, dst)
    return dst


@pytest.fixture
def copy(tmp_path: Path) -> Callable[[Path], Path]:
    """``copy(session_root)`` → a private copy under this test's folder, at ``<tmp>/data``."""

    def _copy(src: Path, name: str = "data") -> Path:
        return copy_root(src, tmp_path / name)

    return _copy


@pytest.fixture(scope="session")
def raw_root(tmp_path_factory) -> Path:
    """A data root with synthetic Parvati scene files (48×48 px, 2013-2015) and truth.npz."""
    from glacier_movement.config import get_glacier
    from glacier_movement.synthetic import synthesize

    def build(root: Path) -> None:
        synthesize(
            get_glacier("parvati"), root, size=(48, 48), years=(2013, 2015), seed=0, progress=False
        )

    return built_once(tmp_path_factory, "robust-raw", build)


@pytest.fixture(scope="session")
def frames_root(raw_root: Path, tmp_path_factory) -> Path:
    """``raw_root`` preprocessed: + frames.npz (12 frames of 3 months) and alignment.npz."""
    from glacier_movement.config import get_glacier
    from glacier_movement.preprocessing import run_preprocessing

    def build(root: Path) -> None:
        copy_root(raw_root, root)
        run_preprocessing(get_glacier("parvati"), root, figures=False)

    return built_once(tmp_path_factory, "robust-frames", build)


@pytest.fixture(scope="session")
def trained_root(frames_root: Path, tmp_path_factory) -> Path:
    """``frames_root`` + a tiny SA-LSTM run (3 steps): ``models/salstm-parvati-tiny/last.pt``."""
    from glacier_movement.training import TrainSettings, train_model

    def build(root: Path) -> None:
        copy_root(frames_root, root)
        s = TrainSettings(
            model="salstm", glacier=("parvati",), preset="tiny", max_steps=3, wandb="disabled",
            progress=False,
        )  # fmt: skip
        train_model(s, root)

    root = built_once(tmp_path_factory, "robust-trained", build)
    assert (root / "models" / RUN / "last.pt").is_file()
    return root


# ------------------------------------------------------------------------------ STAC catalog
#: A 40×48 px UTM 43N grid near Parvati with Landsat's pixel edges (15 m mod 30), and a lon/lat
#: box inside it (5 px margin), as tests/test_acquisition.py uses.
STAC_EPSG = 32643
STAC_TRANSFORM = (30.0, 0.0, 600015.0, 0.0, -30.0, 3550035.0)
STAC_SHAPE = (40, 48)


@dataclass
class StacCatalog:
    """Scene files served over HTTP on loopback and the STAC items that point to them."""

    files: Any  # tests.stac_server.FileServer, its log records every request
    hrefs: list[Path]  # what `rustac serve` loads (collection, item collection)
    items: list[dict]
    bbox: tuple[float, ...]
    decoy: str  # URL path of a COG that no item links to


@pytest.fixture(scope="session")
def stac_catalog(tmp_path_factory) -> Iterator[StacCatalog]:
    """Two Landsat 8 scenes of 2015 as single-band COGs behind a real file server on 127.0.0.1,
    their items (HTTP hrefs) written for ``rustac serve``, and a decoy scene no item links to.
    Each test starts its own STAC server on these (``tests.stac_server.RustacServer``)."""
    import numpy as np

    from tests.stac_server import FileServer, inner_bbox, write_catalog, write_item

    folder = tmp_path_factory.mktemp("robust-stac")
    with FileServer(folder / "assets") as files:
        rng = np.random.default_rng(0)
        items = []
        for sid, day, cloud in (
            ("A", "2015-03-04", 5.0),
            ("B", "2015-08-12", 12.0),
            ("X", "2015-09-01", 1.0),
        ):
            data = rng.integers(1, 60000, size=(7, *STAC_SHAPE), dtype=np.uint16)
            items.append(
                write_item(
                    folder / "assets", f"LC08_{sid}", data, epsg=STAC_EPSG,
                    transform=STAC_TRANSFORM, datetime=f"{day}T05:30:00Z", cloud_cover=cloud,
                    href_base=files.url + "/",
                )
            )  # fmt: skip
        decoy = items.pop()  # its files are served, but the catalog does not list it
        yield StacCatalog(
            files=files,
            hrefs=write_catalog(folder / "catalog", items),
            items=items,
            bbox=inner_bbox(STAC_EPSG, STAC_TRANSFORM, STAC_SHAPE, margin_px=5),
            decoy=urlparse(decoy["assets"]["green"]["href"]).path,
        )
