"""Crash safety: ``kill -9`` in the middle of a long command, then the same command again.

* ``train`` killed after a few checkpoints, then ``--resume``: it continues from ``last.pt`` and
  ends with exactly the weights, optimizer state and loss logs of an uninterrupted run
  (deterministic CPU, one thread).
* ``reproduce`` killed while it preprocesses the second glacier, then run again: it skips the
  finished data stage, completes, and every output file is whole (readable, consistent) with no
  temporary file left.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from glacier_movement import io
from glacier_movement.checkpoints import load_checkpoint
from tests.robustness.conftest import temp_files


@pytest.fixture
def cli(cli_process):
    """Kills and resumes: each command a process."""
    return cli_process


TRAIN = [
    *("train", "--glacier", "parvati", "--model", "salstm", "--preset", "tiny"),
    *("--epochs", "12", "--batch-size", "4", "--ckpt-every", "5"),  # 15 steps per epoch
    *("--wandb", "disabled", "--no-progress", "--device", "cpu"),
]
TOTAL_STEPS = 12 * 15


def _rows(path: Path) -> int:
    """Data rows of a CSV log (0 while it does not exist)."""
    return max(path.read_text().count("\n") - 1, 0) if path.is_file() else 0


def _assert_same_state(a: dict, b: dict) -> None:
    """Equal tensors (and numbers) everywhere in two checkpoint parts."""
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_same_state(a[k], b[k])
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same_state(x, y)
    else:
        assert a == b


def test_killed_training_resumes_to_the_same_weights(cli, copy, frames_root, tmp_path):
    root = copy(frames_root)
    full = cli.run(*TRAIN, "--run-name", "full", root=root)
    assert full.rc == 0, full

    cut = root / "models" / "cut"
    with open(tmp_path / "cut.stderr", "wb") as err:
        proc = cli.popen(*TRAIN, "--run-name", "cut", root=root, stderr=err)
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if _rows(cut / "losses.csv") >= 27:  # step 27 logged: checkpoints up to step 25
                break
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL, "training ended before the kill: make it longer"
    killed_at = load_checkpoint(cut / "last.pt")["step"]
    assert 25 <= killed_at < TOTAL_STEPS
    assert _rows(cut / "losses.csv") >= killed_at  # rows past the checkpoint are dropped below

    res = cli.run(*TRAIN, "--run-name", "cut", "--resume", root=root)
    assert res.rc == 0 and "Traceback" not in res.stderr, res
    a, b = load_checkpoint(root / "models" / "full" / "last.pt"), load_checkpoint(cut / "last.pt")
    assert a["step"] == b["step"] == TOTAL_STEPS
    _assert_same_state(a["model"], b["model"])
    _assert_same_state(a["optimizer"], b["optimizer"])
    for log in ("losses.csv", "epochs.csv"):
        assert (cut / log).read_text() == (root / "models" / "full" / log).read_text(), log
    assert not temp_files(root)


def test_killed_reproduce_completes_when_run_again(cli, tmp_path):
    root, results = tmp_path / "data", tmp_path / "results"
    args = [
        *("reproduce", "--preset", "tiny", "--years", "2013-2015", "--until", "preprocess"),
        *("--results", results, "--wandb", "disabled", "--device", "cpu"),
    ]
    with open(tmp_path / "first.stderr", "wb") as err:
        proc = cli.popen(*args, root=root, stderr=err)
        for line in proc.stdout:  # kill once the second glacier's preprocessing has started
            if line.startswith(b"$ glacier-movement preprocess") and b"aletsch" in line:
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL, "reproduce ended before the kill"
    state = json.loads((results / "reproduce.json").read_text())["stages"]
    assert state["data"]["status"] == "done" and state["preprocess"]["status"] == "running"

    res = cli.run(*args, root=root, timeout=300)
    assert res.rc == 0 and "Traceback" not in res.stderr, res
    assert "== data: done earlier" in res.stdout, res
    state = json.loads((results / "reproduce.json").read_text())["stages"]
    assert [state[s]["status"] for s in ("data", "preprocess")] == ["done", "done"]

    assert not temp_files(root, results)
    for glacier, n_frames in (("parvati", 12), ("aletsch", 9)):  # windows of 3 and 4 months
        for year in (2013, 2014, 2015):
            io.read_scenes(root / glacier / "raw" / f"{year}.npz")
        frames = io.read_frames(root / glacier / "frames.npz")
        alignment = io.load_npz(root / glacier / "alignment.npz")
        assert frames.frames.shape[0] == n_frames
        assert int(frames.n_scenes.sum()) == int(np.sum(alignment["used"]))
