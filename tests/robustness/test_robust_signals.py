"""Signals and locks through the command line, with real processes and real signals.

* SIGTERM / SIGINT during ``train``: exit 143 / 130, ``last.pt`` at the step it stopped at, one
  line on stderr naming that step and the ``--resume`` command; that command ends with exactly the
  weights, optimizer state and loss logs of an uninterrupted run (CPU, one thread).
* SIGUSR1 during ``train``: a checkpoint at that step, and training goes on to the same end.
* Two ``train`` of one run: the second exits 2 at once naming the first's pid; the first (held
  with SIGSTOP meanwhile, so it surely holds the lock) ends unharmed. The same for two
  ``preprocess`` of one glacier.
* A lock file left by a ``kill -9``'d ``train`` does not block the next one.

Signals are sent with ``Popen.send_signal`` once the loss log shows training has begun (never
after a fixed sleep), and ``--ckpt-every`` is larger than the run, so every checkpoint seen
before the end was written because of a signal.
"""

from __future__ import annotations

import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest

from glacier_movement.checkpoints import load_checkpoint
from tests.robustness.conftest import Cli, copy_root, temp_files
from tests.robustness.test_robust_crash import _assert_same_state, _rows


@pytest.fixture
def cli(cli_process):
    """Signals, kills and the lock of a live process: each command a process."""
    return cli_process


STEPS_PER_EPOCH = 15  # tiny preset, batch 4, 57 training sequences
EPOCHS = 6
TOTAL_STEPS = EPOCHS * STEPS_PER_EPOCH
TRAIN = [
    *("train", "--glacier", "parvati", "--model", "salstm", "--preset", "tiny"),
    *("--epochs", str(EPOCHS), "--batch-size", "4", "--ckpt-every", "1000"),
    *("--wandb", "disabled", "--no-progress", "--device", "cpu"),
]


@pytest.fixture(scope="module")
def reference(frames_root: Path, tmp_path_factory) -> Path:
    """The uninterrupted run ``models/full`` (its own data root)."""
    root = copy_root(frames_root, tmp_path_factory.mktemp("signals-ref") / "data")
    res = Cli(root.parent).run(*TRAIN, "--run-name", "full", root=root)
    assert res.rc == 0, res
    return root / "models" / "full"


def _start(cli: Cli, root: Path, run: str, err: Path, *extra: str) -> subprocess.Popen:
    return cli.popen(*TRAIN, "--run-name", run, *extra, root=root, stderr=err.open("wb"))


def _wait_for(proc: subprocess.Popen, ready, what: str, timeout: float = 90) -> None:
    """Poll ``ready()`` every 10 ms while ``proc`` runs."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, f"the process ended before {what}: make the run longer"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def _finish(proc: subprocess.Popen, timeout: float = 120) -> int:
    rc = proc.wait(timeout=timeout)
    proc.stdout.close()
    return rc


def _assert_same_run(a: Path, b: Path) -> None:
    """Bit-identical weights and optimizer state at the same step, identical loss logs."""
    ca, cb = load_checkpoint(a / "last.pt"), load_checkpoint(b / "last.pt")
    assert ca["step"] == cb["step"] == TOTAL_STEPS
    _assert_same_state(ca["model"], cb["model"])
    _assert_same_state(ca["optimizer"], cb["optimizer"])
    for log in ("losses.csv", "epochs.csv"):
        assert (a / log).read_text() == (b / log).read_text(), log


@pytest.mark.parametrize(
    ("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"]
)
def test_stop_signal_checkpoints_the_step_and_resumes_exactly(
    cli, copy, frames_root, reference, tmp_path, sig, code
):
    root = copy(frames_root)
    run = root / "models" / "cut"
    proc = _start(cli, root, "cut", tmp_path / "cut.stderr")
    _wait_for(proc, lambda: _rows(run / "losses.csv") >= 10, "step 10")
    sent_after = _rows(run / "losses.csv")
    proc.send_signal(sig)
    assert _finish(proc) == code
    stderr = (tmp_path / "cut.stderr").read_text()
    assert "Traceback" not in stderr, stderr

    step = load_checkpoint(run / "last.pt")["step"]
    assert sent_after <= step < TOTAL_STEPS  # the step in progress was finished, no more
    assert _rows(run / "losses.csv") == step  # nothing logged past the checkpoint
    assert not (run / ".lock").exists() and not temp_files(root)

    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    stops = [ln for ln in lines if "stopped by" in ln]
    assert len(stops) == 1 and lines[-1] == stops[0], stderr
    line = stops[0]
    assert line.startswith(f"glacier-movement train: stopped by {sig.name} at step {step} of "), (
        line
    )
    command = shlex.split(line.split("continue with: ", 1)[1])
    assert command[:2] == ["glacier-movement", "train"] and command[-1] == "--resume", line

    res = cli.run(*command[1:], root=root)  # the command exactly as printed
    assert res.rc == 0 and "Traceback" not in res.stderr, res
    _assert_same_run(reference, run)


def test_sigusr1_writes_a_checkpoint_and_training_goes_on(
    cli, copy, frames_root, reference, tmp_path
):
    root = copy(frames_root)
    run = root / "models" / "usr1"
    proc = _start(cli, root, "usr1", tmp_path / "usr1.stderr")
    _wait_for(proc, lambda: _rows(run / "losses.csv") >= 10, "step 10")
    sent_after = _rows(run / "losses.csv")
    proc.send_signal(signal.SIGUSR1)
    # --ckpt-every exceeds the run: a last.pt before the end is the one SIGUSR1 asked for
    _wait_for(proc, (run / "last.pt").is_file, "the SIGUSR1 checkpoint")
    step = load_checkpoint(run / "last.pt")["step"]
    assert sent_after <= step < TOTAL_STEPS
    assert _finish(proc) == 0
    stderr = (tmp_path / "usr1.stderr").read_text()
    assert f"checkpoint at step {step} (SIGUSR1)" in stderr, stderr
    _assert_same_run(reference, run)  # the checkpoint changed nothing in the training


def test_second_train_of_a_run_exits_at_once_and_the_first_is_unharmed(
    cli, copy, frames_root, reference, tmp_path
):
    root = copy(frames_root)
    run = root / "models" / "twice"
    proc = _start(cli, root, "twice", tmp_path / "first.stderr")
    try:
        _wait_for(proc, lambda: _rows(run / "losses.csv") >= 1, "training")
        proc.send_signal(signal.SIGSTOP)  # the first holds the lock for as long as we look
        t0 = time.monotonic()
        res = cli.run(*TRAIN, "--run-name", "twice", root=root, timeout=60)
        waited = time.monotonic() - t0
        line = cli.error_line(res, "train", f"pid {proc.pid}", "run 'twice'")
        assert "being written by another process" in line
        assert waited < 30, f"the second train waited {waited:.0f} s"
    finally:
        proc.send_signal(signal.SIGCONT)
    assert _finish(proc) == 0, (tmp_path / "first.stderr").read_text()
    _assert_same_run(reference, run)
    assert not (run / ".lock").exists()


def test_second_preprocess_of_a_glacier_exits_at_once(cli, copy, raw_root, tmp_path):
    root = copy(raw_root)
    lock = root / "parvati" / ".lock"
    args = ("preprocess", "--glacier", "parvati")
    proc = cli.popen(*args, root=root, stderr=(tmp_path / "first.stderr").open("wb"))
    try:
        _wait_for(
            proc, lambda: lock.is_file() and lock.read_text().startswith(f"{proc.pid}\n"), "lock"
        )
        proc.send_signal(signal.SIGSTOP)
        res = cli.run(*args, root=root, timeout=60)
        cli.error_line(res, "preprocess", f"pid {proc.pid}", "glacier 'parvati'")
    finally:
        proc.send_signal(signal.SIGCONT)
    assert _finish(proc) == 0, (tmp_path / "first.stderr").read_text()
    assert (root / "parvati" / "frames.npz").is_file() and not lock.exists()


def test_a_lock_left_by_kill_9_does_not_block(cli, copy, frames_root, tmp_path):
    root = copy(frames_root)
    run = root / "models" / "stale"
    proc = _start(cli, root, "stale", tmp_path / "killed.stderr")
    _wait_for(proc, lambda: _rows(run / "losses.csv") >= 1, "training")
    proc.send_signal(signal.SIGKILL)
    assert _finish(proc) == -signal.SIGKILL
    assert (run / ".lock").read_text().startswith(f"{proc.pid}\n")  # left behind by the kill

    # no last.pt yet: the same command starts afresh (a few steps suffice to show it ran)
    res = cli.run(*TRAIN, "--run-name", "stale", "--max-steps", "3", root=root)
    assert res.rc == 0 and "Traceback" not in res.stderr, res
    assert load_checkpoint(run / "last.pt")["step"] == 3
    assert not (run / ".lock").exists()
