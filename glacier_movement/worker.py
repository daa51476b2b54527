"""``python -m glacier_movement.worker TASK``: run one step of the job in this process.

The process the parallel job (``executors.py``) starts for each step: it reads the pickled
:class:`~glacier_movement.executors.Task`, sets torch's intra-op threads to the task's count and
runs the step's command under the command line's policy (one-line errors, SIGTERM/SIGINT stop a
training run at a checkpoint, exit status 0 / 1 / 2 / 130 / 143), as ``glacier-movement`` would.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

from . import cli, stages


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m glacier_movement.worker TASK_FILE", file=sys.stderr)
        return 2
    task = pickle.loads(Path(argv[0]).read_bytes())

    import torch

    torch.set_num_threads(task.threads)
    cmd = next(c for c in cli.COMMANDS if c.settings is type(task.step))
    ns = argparse.Namespace(debug=False, data_root=task.root)
    code = cli.execute(cmd, lambda: task.step, ns, stages.command_line(task.step, task.root))
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
