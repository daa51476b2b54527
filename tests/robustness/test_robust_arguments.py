"""Bad arguments and bad data roots, through the command line: one line, exit 2, nothing written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def _dead_url() -> str:
    """A loopback URL nothing listens on (an argument error must fail before any request)."""
    from tests.stac_server import free_port

    return f"http://127.0.0.1:{free_port()}"


# ------------------------------------------------------------------------------------ bbox
@pytest.mark.parametrize(
    "bbox, words",
    [
        (["200", "30", "201", "31"], ["out of range", "[-180, 180]", "W S E N"]),
        (["78", "30", "77", "31"], ["empty or reversed", "W < E"]),
        (["77", "31", "77", "32"], ["empty or reversed", "W < E"]),  # W == E
    ],
    ids=["out-of-range", "west-after-east", "west-equals-east"],
)
def test_bad_bbox(cli, tmp_path, bbox, words):
    cli.expect_error(
        "acquire",
        [
            "--bbox",
            *bbox,
            "--name",
            "x",
            "--stac-url",
            _dead_url(),
            "--data-root",
            tmp_path / "data",
        ],
        words,
    )
    assert not (tmp_path / "data").exists()


# ----------------------------------------------------------------------------------- years
@pytest.mark.parametrize(
    "years, words",
    [
        ("2016-2014", ["bad year range '2016-2014'", "FIRST <= LAST"]),
        ("2005-2008", ["outside Landsat 8's life", "use years 2013-"]),
        ("2013-20x5", ["bad year range", "YYYY-YYYY"]),
    ],
    ids=["reversed", "before-landsat-8", "not-a-year"],
)
def test_bad_years(cli, tmp_path, years, words):
    root = tmp_path / "data"
    cli.expect_error("synthesize", ["--glacier", "parvati", "--years", years], words, root=root)
    assert not root.exists()


# ------------------------------------------------------------------------- unknown names
@pytest.mark.parametrize(
    "command, args, words",
    [
        ("synthesize", ["--glacier", "everest"], ["unknown glacier 'everest'", "aletsch, parvati"]),
        ("preprocess", ["--glacier", "Everest"], ["unknown glacier 'Everest'", "aletsch, parvati"]),
        (
            "train",
            ["--glacier", "parvati", "--model", "gru"],
            ["--model: invalid choice: 'gru'", "salstm", "--help"],
        ),
        (
            "test",
            ["--run", "x", "--model", "transformer"],
            ["--model: invalid choice: 'transformer'", "unet"],
        ),
        (
            "train",
            ["--glacier", "parvati", "--model", "salstm", "--preset", "huge"],
            ["unknown preset 'huge'", "paper, demo, tiny"],
        ),
        ("reproduce", ["--preset", "huge"], ["unknown preset 'huge'", "paper, demo, tiny"]),
        (
            "train",
            ["--glacier", "parvati", "--model", "salstm", "--split", "random"],
            ["--split: invalid choice: 'random'", "paper", "strict"],
        ),
        (
            "sequences",
            ["--glacier", "parvati", "--split", "random"],
            ["--split: invalid choice: 'random'", "strict"],
        ),
        ("reproduce", ["--until", "everything"], ["unknown stage 'everything'", "sequences"]),
    ],
    ids=[
        "glacier-synthesize",
        "glacier-preprocess",
        "model-train",
        "model-test",
        "preset-train",
        "preset-reproduce",
        "split-train",
        "split-sequences",
        "stage-reproduce",
    ],
)
def test_unknown_names(cli, copy, frames_root, command, args, words):
    # a real, preprocessed data root is at hand, so only the name is wrong
    root = copy(frames_root)
    cli.expect_error(command, args, words, root=root)


def test_unknown_command(cli_process):
    before = cli_process.snapshot()
    res = cli_process.run("frobnicate")
    assert res.rc == 2 and "Traceback" not in res.stderr, res
    lines = [ln for ln in res.stderr_lines if ln.strip()]
    assert len(lines) == 1, res
    assert lines[0].startswith("glacier-movement: error: "), res
    assert "invalid choice: 'frobnicate'" in lines[0] and "synthesize" in lines[0], res
    cli_process.assert_untouched(before)


def test_debug_shows_the_traceback(cli_process, tmp_path):
    """The same error with --debug: the full traceback, ending in the same message."""
    res = cli_process.run("synthesize", "--glacier", "everest", "--debug", root=tmp_path / "data")
    assert res.rc != 0
    assert "Traceback (most recent call last)" in res.stderr, res
    assert "GlacierError: unknown glacier 'everest'" in res.stderr, res
    assert not (tmp_path / "data").exists()


# -------------------------------------------------------------------------------- data root
def test_data_root_missing(cli, tmp_path):
    """A data root that does not exist: say which stage writes the files; create nothing."""
    root = tmp_path / "nowhere"
    cli.expect_error(
        "preprocess",
        ["--glacier", "parvati"],
        [
            f"no scene files {root}/parvati/raw/<year>.npz",
            "glacier-movement synthesize --glacier parvati",
        ],
        root=root,
    )
    assert not root.exists()


@pytest.mark.parametrize("where", ["file", "under-a-file"])
def test_data_root_not_writable(cli, tmp_path, where):
    """A data root that is a file, or a path under one (a real error also for root, where
    permission bits do not block writes): one line, no file written."""
    blocker = tmp_path / "data"
    blocker.write_text("not a folder\n")
    root = blocker if where == "file" else blocker / "sub"
    cli.expect_error(
        "synthesize",
        ["--glacier", "parvati", "--size", "32", "32", "--years", "2013", "--no-quicklook"],
        ["cannot create folder", f"{root}/parvati", "Not a directory", "check the data root"],
        root=root,
    )
    assert blocker.read_text() == "not a folder\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through permission bits")
@pytest.mark.parametrize("existing", [False, True], ids=["new-glacier-dir", "existing-raw-dir"])
def test_data_root_read_only(cli, tmp_path, existing):
    root = tmp_path / "data"
    (root / "parvati" / "raw").mkdir(parents=True) if existing else root.mkdir()
    locked = root / "parvati" / "raw" if existing else root
    locked.chmod(0o555)
    try:
        cli.expect_error(
            "synthesize",
            ["--glacier", "parvati", "--size", "32", "32", "--years", "2013", "--no-quicklook"],
            [str(root), "Permission denied"],
            root=root,
        )
    finally:
        locked.chmod(0o755)


def test_explicit_data_root_wins_over_the_environment(cli, tmp_path):
    """--data-root is the one used (the error names it), not $GLACIER_DATA_ROOT."""
    env_root, arg_root = tmp_path / "env-root", tmp_path / "arg-root"
    line = cli.expect_error(
        "sequences",
        ["--glacier", "parvati", "--data-root", arg_root],
        [f"{arg_root}/parvati/frames.npz does not exist", "glacier-movement preprocess"],
        root=env_root,
    )
    assert str(env_root) not in line
    assert not Path(arg_root).exists() and not env_root.exists()
