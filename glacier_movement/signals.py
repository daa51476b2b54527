"""Signals of long commands: stop at a step boundary (SIGTERM, SIGINT), checkpoint on request (SIGUSR1).

Two ways to handle SIGTERM and SIGINT, each a context manager that restores the previous handlers
when it ends (the Python API leaves nothing installed):

- :func:`raising`: the signal raises :class:`Interrupted` at once, wherever the main thread is
  (what SIGINT's KeyboardInterrupt does, now for SIGTERM too). The command line runs every command
  under it; every output is written atomically, so what exists is complete.
- :class:`Deferred`: the handlers only set flags, which the training loop reads after each
  optimizer step (:meth:`Deferred.poll`) to write ``last.pt`` at that step and then stop, or, for
  SIGUSR1 (what SLURM's ``--signal`` sends before a time limit), to write it and go on. Under
  ``torchrun`` the flags are all-reduced, so every rank stops at the same step. A second SIGINT
  (Ctrl-C pressed again) raises at once. A stop request that no step boundary consumed (it came
  during the final validation) is delivered again to the previous handler when the block ends.

The exit status of a stopped command is ``128 + signal number``: 130 for SIGINT, 143 for SIGTERM.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["STOP_SIGNALS", "CHECKPOINT_SIGNAL", "Interrupted", "Deferred", "raising"]

#: Signals that stop a command (the order of their exit codes: 143, 130).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
#: The checkpoint request (absent on Windows).
CHECKPOINT_SIGNAL: signal.Signals | None = getattr(signal, "SIGUSR1", None)

Handler = Callable[[int, Any], Any] | int | None


class Interrupted(KeyboardInterrupt):
    """A command stopped by SIGTERM or SIGINT. ``detail`` says where (e.g. ``at step 37 of 180 …``).

    A KeyboardInterrupt, so code that handles Ctrl-C handles it, and ``except Exception`` does not
    swallow it.
    """

    def __init__(self, signum: int, detail: str = ""):
        self.signum = int(signum)
        self.detail = detail
        super().__init__(f"stopped by {self.signal_name}" + (f" {detail}" if detail else ""))

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        """The shell's status of a process killed by the signal: 130 (SIGINT), 143 (SIGTERM)."""
        return 128 + self.signum


def _main_thread() -> bool:
    # signal.signal works only in the main thread; elsewhere (a notebook's worker thread, a
    # server) the handlers stay as they are and the flags are never set
    return threading.current_thread() is threading.main_thread()


def _install(handlers: dict[int, Handler]) -> dict[int, Handler]:
    """Install ``handlers``; return the previous ones (for :func:`_restore`)."""
    previous = {}
    for sig, h in handlers.items():
        previous[sig] = signal.getsignal(sig)
        signal.signal(sig, h)
    return previous


def _restore(previous: dict[int, Handler]) -> None:
    for sig, h in previous.items():
        # None: a handler installed outside Python; the default is the closest we can restore
        signal.signal(sig, signal.SIG_DFL if h is None else h)


@contextmanager
def raising() -> Iterator[None]:
    """SIGTERM and SIGINT raise :class:`Interrupted` at once inside the block."""
    if not _main_thread():
        yield
        return

    def handler(signum: int, _frame: Any) -> None:
        raise Interrupted(signum)

    previous = _install(dict.fromkeys(STOP_SIGNALS, handler))
    try:
        yield
    finally:
        _restore(previous)


class Deferred:
    """Stop and checkpoint requests, set by signal handlers and read at step boundaries.

    Use as ``with Deferred() as flags:`` or with :meth:`install` / :meth:`restore` where a block
    does not fit. ``stop`` is the first stop signal received (0: none); ``checkpoint`` is True
    after SIGUSR1 until :meth:`poll` reads it.
    """

    def __init__(self) -> None:
        self.stop = 0
        self.checkpoint = False
        self._previous: dict[int, Handler] | None = None

    # -- handlers ---------------------------------------------------------------------------
    def _on_stop(self, signum: int, _frame: Any) -> None:
        if self.stop and signum == signal.SIGINT:
            raise Interrupted(signum, "at once (Ctrl-C pressed twice); the last checkpoint stays")
        # SLURM and torchrun may both send SIGTERM to a worker: a repeat keeps the graceful stop
        self.stop = self.stop or signum

    def _on_checkpoint(self, _signum: int, _frame: Any) -> None:
        self.checkpoint = True

    def install(self) -> Deferred:
        """Install the handlers (in the main thread only); returns ``self``."""
        if self._previous is None and _main_thread():
            handlers: dict[int, Handler] = dict.fromkeys(STOP_SIGNALS, self._on_stop)
            if CHECKPOINT_SIGNAL is not None:
                handlers[CHECKPOINT_SIGNAL] = self._on_checkpoint
            self._previous = _install(handlers)
        return self

    def restore(self, redeliver: bool = True) -> None:
        """Put the previous handlers back (idempotent). With ``redeliver``, a stop request that was
        not consumed is raised again, now for the previous handler to act on."""
        if self._previous is None:
            return
        _restore(self._previous)
        self._previous = None
        pending, self.stop = self.stop, 0
        if redeliver and pending:
            signal.raise_signal(pending)

    def consume(self) -> None:
        """The stop request has been acted on (checkpoint written, Interrupted raised)."""
        self.stop = 0

    def __enter__(self) -> Deferred:
        return self.install()

    def __exit__(self, exc_type, exc, tb) -> None:
        self.restore(redeliver=exc_type is None)

    # -- reading ----------------------------------------------------------------------------
    def poll(self, world: int = 1, device: Any = None) -> tuple[int, bool]:
        """``(stop signal or 0, checkpoint requested)`` and clear the checkpoint request.

        With ``world > 1`` this is a collective call (every rank must make it at the same step):
        the flags are all-reduced (max), so a signal that reached one rank stops them all there.
        """
        stop, ckpt = self.stop, self.checkpoint
        self.checkpoint = False
        if world > 1:  # torch only under torchrun: signals.py serves every command
            import torch
            import torch.distributed as dist

            flags = torch.tensor([stop, int(ckpt)], dtype=torch.int64, device=device)
            dist.all_reduce(flags, op=dist.ReduceOp.MAX)
            stop, ckpt = int(flags[0]), bool(flags[1])
            self.stop = self.stop or stop  # a rank that got no signal still stops (consumed later)
        return stop, ckpt
