"""Bad data files, too little data, ECC failures, stages out of order and a full disk, through the
command line: one line naming the file and the fix, exit 2, nothing half-written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from glacier_movement.config import GREEN, SWIR16
from glacier_movement.io import load_npz
from tests.robustness.conftest import file_size_limit, temp_files

PREPROCESS = ["preprocess", "--glacier", "parvati", "--no-figures"]


def _rewrite(path: Path, change: Callable[[dict[str, np.ndarray]], None]) -> None:
    """Rewrite an .npz as another tool would (plain ``np.savez``) after ``change`` on its arrays."""
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    change(arrays)
    np.savez(path, **arrays)


def _kept_scene(path: Path) -> int:
    """Index of the first scene of a year file that the scene filter keeps (≤ 20 % cloud, < half
    missing), so a change to it reaches the later steps."""
    with np.load(path) as f:
        missing = (f["data"][:, GREEN] == 0).mean(axis=(1, 2))
        ok = (f["cloud_cover"] <= 20) & (missing < 0.5)
    return int(np.flatnonzero(ok)[0])


# ------------------------------------------------------------------------------ scene files
def test_truncated_scene_file(cli, copy, raw_root):
    root = copy(raw_root)
    scene = root / "parvati" / "raw" / "2014.npz"
    scene.write_bytes(scene.read_bytes()[: scene.stat().st_size // 2])
    cli.expect_error(
        "preprocess",
        PREPROCESS[1:],
        [str(scene), "not a readable .npz file", "truncated", "delete it and write it again"],
        root=root,
        watch=[root],
    )


@pytest.mark.parametrize(
    "change, words",
    [
        (
            lambda a: a.update(data=a["data"].astype(np.float32)),
            ["'data' has dtype float32, expected uint16"],
        ),
        (
            lambda a: a.update(data=a["data"][:, :3]),
            ["'data' has shape (26, 3, 48, 48), expected (N, 7, H, W)"],
        ),
        (lambda a: a.update(times=a["times"][:-1]), ["'times'", "expected datetime64 (26,)"]),
    ],
    ids=["dtype", "bands", "times"],
)
def test_scene_file_with_wrong_dtype_or_shape(cli, copy, raw_root, change, words):
    root = copy(raw_root)
    scene = root / "parvati" / "raw" / "2014.npz"
    _rewrite(scene, change)
    cli.expect_error(
        "preprocess",
        PREPROCESS[1:],
        [f"{scene}: ", *words, "delete the file and acquire or synthesize it again"],
        root=root,
        watch=[root],
    )


@pytest.mark.parametrize(
    "write, words",
    [
        (
            lambda p: p.write_text("<html><body>Service unavailable</body></html>\n"),
            ["not a zip archive", "truncated or foreign", "delete it"],
        ),
        (
            lambda p: np.savez(p, image=np.zeros((3, 3))),
            ["has no 'times'", "not a file of this project", "delete it"],
        ),
        (
            lambda p: np.savez(p, data=np.array([{"x": 1}], dtype=object)),
            ["pickled Python objects, which are never loaded", "delete it"],
        ),
    ],
    ids=["html-page", "other-arrays", "pickled-objects"],
)
def test_foreign_file_named_like_a_scene_file(cli, copy, raw_root, write, words):
    root = copy(raw_root)
    scene = root / "parvati" / "raw" / "2014.npz"
    write(scene)
    line = cli.expect_error("preprocess", PREPROCESS[1:], [str(scene), *words], root=root)
    assert "allow_pickle" not in line and "pickle.load" not in line  # never advise loading it


@pytest.mark.parametrize("what", ["one-band", "every-scene"])
def test_all_missing_scene(cli, copy, raw_root, what):
    """A kept scene whose swir16 band is all nodata cannot be filled: the scene is named. Scenes
    that are entirely nodata are dropped by the filter, and if nothing is left, that is said."""
    root = copy(raw_root)
    raw = root / "parvati" / "raw"
    if what == "one-band":
        k = _kept_scene(raw / "2014.npz")
        _rewrite(raw / "2014.npz", lambda a: a["data"][k, SWIR16].fill(0))
        words = [f"2014.npz scene {k} (2014-", "band swir16 cannot be filled", "entirely missing"]
        words.append("remove the scene from the file (acquire again) or choose another --roi")
    else:
        for year in (2013, 2014, 2015):
            _rewrite(raw / f"{year}.npz", lambda a: a["data"].fill(0))
        words = [f"no usable scene in {raw}", "66 read", "45 with ≥ 0.5 missing"]
        words.append("acquire more scenes or relax --max-cloud / --max-missing")
    cli.expect_error("preprocess", PREPROCESS[1:], words, root=root, watch=[root])


@pytest.mark.parametrize("case", ["one-year", "long-windows"])
def test_fewer_than_8_frames(cli, copy, raw_root, case):
    root = copy(raw_root)
    raw = root / "parvati" / "raw"
    if case == "one-year":
        (raw / "2014.npz").unlink()
        (raw / "2015.npz").unlink()
        args, words = PREPROCESS[1:], ["covers 1 year(s) = 4 windows of 3 months"]
    else:
        args = [*PREPROCESS[1:], "--window-months", "12"]
        words = ["covers 3 year(s) = 3 windows of 12 months"]
    words += ["sequences need at least 8 frames", "add years or use a shorter --window-months"]
    cli.expect_error("preprocess", args, [str(raw), *words], root=root, watch=[root])


# ------------------------------------------------------------------------------------- ECC
@pytest.mark.parametrize(
    "policy, method, why",
    [
        ("keep", "ecc", "do not converge"),
        ("drop", "ecc", "do not converge"),
        ("drop", "phase", "uniform"),
    ],
)
def test_ecc_non_convergence_policy_is_applied_and_reported(
    cli, copy, raw_root, policy, method, why
):
    """A featureless scene makes the alignment fail (ECC, phase correlation); the stated policy
    keeps it unaligned or drops it, the summary names the scene, and alignment.npz and
    frames.npz agree with what was done."""
    root = copy(raw_root)
    k = _kept_scene(root / "parvati" / "raw" / "2014.npz")
    _rewrite(root / "parvati" / "raw" / "2014.npz", lambda a: a["data"][k].fill(9000))
    res = cli.run(*PREPROCESS, "--align", method, "--on-ecc-failure", policy, root=root)
    assert res.rc == 0 and "Traceback" not in res.stderr, res
    done = "kept unaligned" if policy == "keep" else "dropped"
    assert f"), {done} (--on-ecc-failure {policy}):" in res.stdout, res
    assert f"  2014.npz scene {k} (2014-" in res.stdout and why in res.stdout, res

    al = load_npz(root / "parvati" / "alignment.npz")
    i = int(np.flatnonzero((al["source_year"] == 2014) & (al["source_index"] == k))[0])
    assert not al["success"][i] and bool(al["used"][i]) == (policy == "keep")
    assert np.array_equal(al["used"], al["success"] | (policy == "keep"))
    assert load_npz(root / "parvati" / "frames.npz")["n_scenes"].sum() == al["used"].sum()
    assert not temp_files(root)


def test_ecc_failing_on_every_scene_with_drop(cli, copy, raw_root):
    root = copy(raw_root)
    for year in (2013, 2014, 2015):
        _rewrite(root / "parvati" / "raw" / f"{year}.npz", lambda a: a["data"].fill(9000))
    cli.expect_error(
        "preprocess",
        [*PREPROCESS[1:], "--on-ecc-failure", "drop"],
        ["phase correlation failed on every scene of parvati", "use --on-ecc-failure keep"],
        root=root,
        watch=[root],
    )


# ------------------------------------------------------------------------- stage order
@pytest.mark.parametrize(
    "command, args, words",
    [
        ("sequences", ["--glacier", "parvati"], ["frames.npz does not exist"]),
        (
            "train",
            [
                "--glacier",
                "parvati",
                "--model",
                "salstm",
                "--preset",
                "tiny",
                "--wandb",
                "disabled",
            ],
            ["no frames for parvati at"],
        ),
    ],
    ids=["sequences", "train"],
)
def test_stage_before_preprocessing(cli, copy, raw_root, command, args, words):
    root = copy(raw_root)
    cli.expect_error(
        command,
        args,
        [*words, f"{root}/parvati/frames.npz", "glacier-movement preprocess --glacier parvati"],
        root=root,
        watch=[root],
    )


# ------------------------------------------------------------------------------ disk full
def test_disk_full_while_synthesizing(cli_process, tmp_path):
    root = tmp_path / "data"
    cli_process.expect_error(
        "synthesize",
        ["--glacier", "parvati", "--size", "48", "48", "--years", "2013-2015", "--no-quicklook"],
        [f"cannot write {root}/parvati/raw/2013.npz", "File too large", "free disk space"],
        root=root,
        preexec_fn=file_size_limit(100_000),
    )


def test_disk_full_while_preprocessing_keeps_the_old_outputs(cli_process, copy, frames_root):
    """frames.npz (113 kB) does not fit, alignment.npz (18 kB) would: neither is replaced, so the
    old pair stays consistent, and no temporary file is left."""
    root = copy(frames_root)
    cli_process.expect_error(
        "preprocess",
        [*PREPROCESS[1:], "--on-ecc-failure", "drop"],  # other settings: other outputs
        [f"cannot write {root}/parvati/frames.npz", "File too large", "free disk space"],
        root=root,
        watch=[root],
        preexec_fn=file_size_limit(60_000),
    )


@pytest.mark.parametrize("limit, what", [(100_000, "best.pt"), (70, "losses.csv")])
def test_disk_full_while_training(cli_process, copy, frames_root, limit, what):
    """A checkpoint (torch.save) or a log row (appended) that does not fit: one line, no
    checkpoint, no temporary file; nothing outside the run folder changes."""
    root = copy(frames_root)
    before = cli_process.snapshot(root)
    res = cli_process.run(
        "train",
        *("--glacier", "parvati", "--model", "salstm", "--preset", "tiny", "--run-name", "full"),
        *("--wandb", "disabled", "--no-progress", "--device", "cpu"),
        root=root,
        preexec_fn=file_size_limit(limit),
    )
    run_dir = root / "models" / "full"
    cli_process.error_line(
        res, "train", f"cannot write {run_dir}/{what}", "File too large", "free disk"
    )
    assert not temp_files(root)
    assert not list(run_dir.glob("*.pt"))
    after = cli_process.snapshot(root)
    assert {p: h for p, h in after.items() if run_dir not in p.parents} == before
