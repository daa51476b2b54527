"""One writer at a time: an OS file lock on a run folder and on a glacier's data folder.

``train`` holds ``<data-root>/models/<run>/.lock`` for the whole run; ``synthesize``, ``acquire``,
``preprocess`` and ``sequences`` hold ``<data-root>/<glacier>/.lock`` while they write that
glacier's data. A second process that would write the same folder fails at once with a one-line
:class:`GlacierError` that names the holder's pid (written into the lock file).

The lock is ``flock(2)``: the kernel drops it when its holder exits, however it exits, so a lock
file left by a process killed with ``kill -9`` never blocks (the next holder takes it over). The
lock file is removed when the holder finishes normally. A process that forks without exec (a
multiprocessing worker) shares its parent's lock until it exits too. On a file system without
``flock`` (some Lustre mounts) the command runs unguarded after a one-line note.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import GlacierError

try:
    import fcntl
except ImportError:  # Windows: no flock; commands run unguarded
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_NAME", "hold"]

#: The lock file inside the guarded folder.
LOCK_NAME = ".lock"

#: Locks this process holds: lock path → [fd, depth]. Held again by the same process (``train``
#: inside ``reproduce``, ``fit`` inside ``train_model``) a lock is only counted, not re-locked.
_held: dict[Path, list[int]] = {}
_warned = False


def _holder(fd: int) -> str:
    """``pid N (command)`` read from a lock file; a new holder may not have written it yet."""
    text = ""
    for _ in range(20):  # at most 0.2 s: between the holder's flock and its write
        text = os.pread(fd, 4096, 0).decode(errors="replace").strip()
        if text:
            break
        time.sleep(0.01)
    pid, _, command = text.partition("\n")
    if not pid.strip().isdigit():
        return "pid unknown"
    command = " ".join(command.split())
    if len(command) > 160:
        command = command[:157] + "..."
    return f"pid {pid.strip()}" + (f": {command}" if command else "")


def _program() -> str:
    """What the user ran: ``glacier-movement`` (also for ``python -m`` and torchrun), or the script."""
    argv0 = Path(sys.argv[0] if sys.argv and sys.argv[0] else "python")
    return "glacier-movement" if "glacier" in argv0.as_posix() else argv0.name


def _makedirs(folder: Path) -> Path | None:
    """Create ``folder`` and its parents; return the topmost folder created (None: it existed)."""
    top = None
    for p in reversed([folder, *folder.parents]):
        if not p.exists():
            top = top or p
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GlacierError(
            f"cannot create folder {folder}: {e.strerror}; check the data root"
        ) from e
    return top


def _remove_empty(folder: Path, top: Path | None) -> None:
    """Remove ``folder`` and its parents up to ``top`` where this lock created them and they are
    still empty (a command that failed leaves no empty folders behind)."""
    if top is None:
        return
    for p in [folder, *folder.parents]:
        try:
            p.rmdir()
        except OSError:  # not empty (outputs written), or gone
            return
        if p == top:
            return


def _lock_file(path: Path, what: str) -> int | None:
    """Open and lock ``path``; the fd, or None where the file system has no flock."""
    global _warned
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError as e:  # a read-only folder: nothing can be written there, so no lock needed
            if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                return None
            raise
        assert fcntl is not None  # hold() calls this only where fcntl imported
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise GlacierError(
                f"{what} is being written by another process ({holder}); wait for it to end or "
                f"stop it, then run again (lock file {path})"
            ) from None
        except OSError as e:
            os.close(fd)
            if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                raise
            if not _warned:
                print(
                    f"note: {path.parent} has no file locks ({e.strerror}); nothing stops a second "
                    "process writing the same outputs",
                    file=sys.stderr,
                )
                _warned = True
            return None
        # the previous holder removes the file when it finishes: if it did so between our open
        # and our flock, we locked an orphan, and a newcomer could lock a new file; try again
        try:
            if os.path.samestat(os.fstat(fd), os.stat(path)):
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


@contextlib.contextmanager
def hold(folder: str | os.PathLike, what: str) -> Iterator[Path]:
    """Hold the exclusive lock ``<folder>/.lock`` inside the block (``folder`` is created).

    ``what`` names the guarded thing for the error message (e.g. ``run 'salstm-parvati-demo'``).
    Raises :class:`GlacierError` at once if another process holds the lock. Re-entrant within a
    process. Yields the lock file's path.
    """
    folder = Path(folder).absolute()
    path = folder / LOCK_NAME
    if path in _held:
        _held[path][1] += 1
        try:
            yield path
        finally:
            _held[path][1] -= 1
        return
    created = _makedirs(folder)
    fd = None
    try:
        if fcntl is not None:
            fd = _lock_file(path, what)
        if fd is not None:
            os.ftruncate(fd, 0)
            command = " ".join([_program(), *sys.argv[1:]])
            os.pwrite(fd, f"{os.getpid()}\n{command}\n".encode(), 0)
            _held[path] = [fd, 1]
    except BaseException:
        if fd is not None:
            os.close(fd)
        _remove_empty(folder, created)
        raise
    try:
        yield path
    finally:
        if fd is not None:
            del _held[path]
            # unlink while still holding the lock (see _lock_file), then let it go
            with contextlib.suppress(OSError):
                path.unlink()
            os.close(fd)
        _remove_empty(folder, created)
