"""Signal handling of the training loop in-process (the command line's is in
tests/robustness/test_robust_signals.py): a real signal sent to this process during step k stops
``fit`` after step k with ``last.pt`` at k, the previous handlers come back, and ``--resume``
ends bit-identical to an uninterrupted run. Also the flags and locks on their own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from glacier_movement import locks
from glacier_movement.checkpoints import load_checkpoint
from glacier_movement.errors import GlacierError
from glacier_movement.signals import Deferred, Interrupted, raising
from tests.test_training import read_csv, same_weights, tiny_fit

pytestmark = pytest.mark.usefixtures("one_thread")

HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)


def _signal_at_step(monkeypatch, step: int, sig: int) -> None:
    """Send ``sig`` to this process during the forward pass of training step ``step``."""
    from glacier_movement.models import build_model as real_build

    def build(*a, **k):
        net = real_build(*a, **k)
        calls = [0]

        def hook(module, _inp, _out):
            if module.training:  # validation runs in eval mode
                calls[0] += 1
                if calls[0] == step:
                    os.kill(os.getpid(), sig)

        net.register_forward_hook(hook)
        return net

    monkeypatch.setattr("tests.test_training.build_model", build)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_fit_stops_after_the_step_and_resumes_exactly(tmp_path, monkeypatch, sig):
    full = tiny_fit(tmp_path / "full")  # 3 epochs of 6 steps, checkpoints every 4
    before = {s: signal.getsignal(s) for s in HANDLED}
    with monkeypatch.context() as m:
        _signal_at_step(m, 7, sig)
        with pytest.raises(Interrupted) as e:
            tiny_fit(tmp_path / "cut")
    assert e.value.signum == sig and e.value.exit_code == 128 + sig
    assert "at step 7 of 18" in str(e.value)
    assert {s: signal.getsignal(s) for s in HANDLED} == before  # nothing left installed
    cut = tmp_path / "cut"
    assert load_checkpoint(cut / "last.pt")["step"] == 7  # not 4, the last --ckpt-every
    assert len(read_csv(cut / "losses.csv")) == 7

    resumed = tiny_fit(cut, resume=True)
    assert resumed.step == full.step == 18
    assert same_weights(tmp_path / "full" / "last.pt", cut / "last.pt")
    assert read_csv(tmp_path / "full" / "losses.csv") == read_csv(cut / "losses.csv")


def test_sigusr1_checkpoints_and_training_goes_on(tmp_path, monkeypatch, capsys):
    tiny_fit(tmp_path / "full")
    calls = []
    import glacier_movement.training as training

    real = training.loop.save_checkpoint  # where Trainer.save writes through
    monkeypatch.setattr(
        training.loop,
        "save_checkpoint",
        lambda obj, path: (calls.append(obj["step"]), real(obj, path)),
    )
    _signal_at_step(monkeypatch, 5, signal.SIGUSR1)
    tiny_fit(tmp_path / "usr1")
    assert 5 in calls  # checkpoints every 4 and at the end, and at 5 on request
    assert "checkpoint at step 5 (SIGUSR1)" in capsys.readouterr().err
    assert same_weights(tmp_path / "full" / "last.pt", tmp_path / "usr1" / "last.pt")


def test_deferred_flags_redelivery_and_second_ctrl_c():
    seen = []
    previous = signal.signal(signal.SIGTERM, lambda s, f: seen.append(s))
    try:
        with Deferred() as flags:
            os.kill(os.getpid(), signal.SIGUSR1)
            assert flags.poll() == (0, True) and flags.poll() == (0, False)  # read once
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)  # a repeat (SLURM and torchrun) changes nothing
            assert flags.poll() == (signal.SIGTERM, False)
            assert seen == []
        # not consumed by a step: handed on to the previous handler when the block ends
        assert seen == [signal.SIGTERM]
        assert signal.getsignal(signal.SIGTERM) is not None
    finally:
        signal.signal(signal.SIGTERM, previous)

    with pytest.raises(Interrupted, match="pressed twice"), Deferred():
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)  # the user insists: stop now


def test_raising_turns_sigterm_into_interrupted():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted) as e, raising():
        os.kill(os.getpid(), signal.SIGTERM)
        torch.zeros(1)  # the handler runs at the next bytecode
    assert e.value.exit_code == 143 and signal.getsignal(signal.SIGTERM) is before


def test_lock_names_the_holder_and_is_reentrant(tmp_path):
    folder = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys; sys.path.insert(0, {str(os.getcwd())!r})
            from glacier_movement import locks
            with locks.hold({str(folder)!r}, "run 'r'"):
                print("held", flush=True)
                sys.stdin.read()
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(GlacierError, match=rf"run 'r' is being written .*pid {holder.pid}"):
            with locks.hold(folder, "run 'r'"):
                pass
    finally:
        holder.communicate("")
    assert holder.returncode == 0 and not (folder / ".lock").exists()
    with locks.hold(folder, "run 'r'") as path, locks.hold(folder, "run 'r'"):
        assert path.read_text().startswith(f"{os.getpid()}\n")
    assert not path.exists()


def test_a_worker_step_stopped_before_its_command_starts_says_so(tmp_path, monkeypatch, capfd):
    """A job's worker step that gets SIGTERM while it still parses its settings (before the
    command sets its own handlers) writes the stop into its log and returns the stop's status,
    instead of ending the worker without a word."""
    from glacier_movement import cli

    real = cli._parse_args

    def parse(argv):
        os.kill(os.getpid(), signal.SIGTERM)
        return real(argv)

    monkeypatch.setattr(cli, "_parse_args", parse)
    before = signal.getsignal(signal.SIGTERM)
    log = tmp_path / "step.log"
    with capfd.disabled():  # the step's stderr is file descriptor 2, as in a worker
        code = cli._run_logged(["models", "--preset", "tiny"], 1, str(log))
    assert code == 128 + signal.SIGTERM
    assert "models: stopped by SIGTERM before it started" in log.read_text()
    assert signal.getsignal(signal.SIGTERM) == before
