"""``python -m glacier_movement.worker TASK`` (or ``--serve``): run steps of the job here.

The process the parallel job (``executors.py``) starts: it reads a pickled
:class:`~glacier_movement.executors.Task`, sets torch's intra-op threads to the task's count and
runs the step's command under the command line's policy (one-line errors, SIGTERM/SIGINT stop a
training run at a checkpoint, exit status 0 / 1 / 2 / 130 / 143), as ``glacier-movement`` would.

With ``--serve`` it runs one task after another, each task file's path read from stdin and its
exit status answered on stdout (``status N``), with the step's output going to its own log: a
local worker pays Python's and torch's start (about 5 CPU seconds) once, not once per step. A
step stopped by a signal ends the worker too.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
from pathlib import Path

from . import cli, stages


def run_task_file(path: str | Path) -> int:
    """Run the pickled task at ``path`` in this process; its exit status."""
    task = pickle.loads(Path(path).read_bytes())

    import torch

    torch.set_num_threads(task.threads)
    cmd = next(c for c in cli.COMMANDS if c.settings is type(task.step))
    ns = argparse.Namespace(debug=False, data_root=task.root)
    return cli.execute(cmd, lambda: task.step, ns, stages.command_line(task.step, task.root))


def serve() -> int:
    """Tasks from stdin, one path a line; ``status N`` for each on the original stdout, while the
    step's stdout and stderr go to its log (appended: the job wrote its first line)."""
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    for line in sys.stdin:
        path = line.strip()
        if not path:
            continue
        log_path = pickle.loads(Path(path).read_bytes()).log
        with open(log_path, "ab", buffering=0) as log:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            try:
                code = run_task_file(path)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
        answers.write(f"status {code}\n")
        if code in (130, 143):  # stopped: the job is stopping, this worker with it
            return code
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--serve"]:
        return serve()
    if len(argv) != 1:
        print("usage: python -m glacier_movement.worker TASK_FILE | --serve", file=sys.stderr)
        return 2
    code = run_task_file(argv[0])
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
