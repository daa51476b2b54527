"""`glacier-movement <command>`: one subcommand per pipeline stage.

Each stage module exposes ``register(subparsers, common)`` that adds its subcommand and sets
``func`` (called with the parsed arguments). This file holds only the dispatch and the error
policy: user errors are one line on stderr and a non-zero exit; tracebacks only with ``--debug``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import re
import shlex
import sys

from . import __version__, config, locks, signals
from .errors import GlacierError

#: Stage modules that contribute subcommands, in pipeline order (this is also --help's order).
#: A module registers through ``register(subparsers, common)``.
STAGES = [
    "glacier_movement.registry",  # glacier add|list|show
    "glacier_movement.synthetic",  # synthesize
    "glacier_movement.acquisition",  # acquire
    "glacier_movement.preprocessing",  # preprocess
    "glacier_movement.sequences",  # sequences
    "glacier_movement.models",  # models
    "glacier_movement.training",  # train
    "glacier_movement.evaluation",  # test, infer
    "glacier_movement.flow",  # flow
    "glacier_movement.report",  # report, loss-curves
    "glacier_movement.reproduce",  # reproduce
]

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 3
#: Commands that write a glacier's data folder: one process at a time per glacier.
DATA_STAGES = ("synthesize", "acquire", "preprocess", "sequences")


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line that points to --help."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def common_parser() -> argparse.ArgumentParser:
    """Options every subcommand takes."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("common options")
    g.add_argument(
        "--data-root",
        default=None,
        metavar="DIR",
        help="data root ('pathOrigin' of the original); default $GLACIER_DATA_ROOT or ./data",
    )
    g.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    return p


def build_parser() -> argparse.ArgumentParser:
    common = common_parser()
    parser = OneLineParser(
        prog="glacier-movement",
        description=(
            "Glacier movement prediction from Landsat-8 snow/ice (NDSI) sequences: acquisition, "
            "preprocessing, sequences, models, training, evaluation and optical flow "
            "(Müller et al., NeurIPS 2023 CCAI workshop)."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    sub.required = True
    for name in STAGES:
        importlib.import_module(name).register(sub, common)
    return parser


def _data_glacier(args: argparse.Namespace) -> str | None:
    """The glacier whose data folder a data stage writes (None: not a data stage, or a name the
    stage itself will refuse)."""
    if args.command not in DATA_STAGES:
        return None
    name = getattr(args, "glacier", None) or getattr(args, "name", None)  # acquire --bbox --name
    if not name:
        return None
    try:
        return config.get_glacier(name).name
    except GlacierError:  # acquire --bbox --name NAME: a new folder (if NAME is a plain name)
        plain = args.command == "acquire" and re.fullmatch(r"\w[\w.-]*", name)
        return name if plain else None


def run_command(args: argparse.Namespace) -> int:
    """``args.func(args)`` holding the lock of the glacier data it writes (``train`` locks its run
    itself): a second writer fails at once naming the first one's pid."""
    glacier = _data_glacier(args)
    with contextlib.ExitStack() as stack:
        if glacier is not None:
            folder = config.Paths(config.data_root(args.data_root), glacier).glacier_dir
            stack.enter_context(locks.hold(folder, f"the data of glacier {glacier!r}"))
        return int(args.func(args) or 0)


def resume_command(command: str, argv: list[str]) -> str:
    """The command line that continues a stopped ``glacier-movement`` command: ``train`` with
    ``--resume`` (not ``--overwrite``), any other command as it was (finished outputs are kept)."""
    argv = list(argv)
    if command == "train":
        argv = [a for a in argv if a != "--overwrite"]
        argv += [] if "--resume" in argv else ["--resume"]
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:  # started by torchrun: continue the same way
        per_node = int(os.environ.get("LOCAL_WORLD_SIZE", world))
        nodes = f"--nnodes={world // per_node} " if world > per_node else ""
        prog = f"torchrun {nodes}--nproc_per_node={per_node} -m glacier_movement"
    else:
        prog = "glacier-movement"
    return f"{prog} {shlex.join(argv)}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = getattr(args, "debug", False) or "--debug" in argv
    try:
        # SIGTERM as SIGINT: stop, outputs stay whole; `train` stops after its current step
        with signals.raising():
            return run_command(args)
    except signals.Interrupted as e:
        if int(os.environ.get("RANK", "0")) == 0:  # one line for a torchrun job, not one a rank
            where = f" {e.detail}" if e.detail else "; outputs written so far are complete"
            print(
                f"glacier-movement {args.command}: stopped by {e.signal_name}{where}; continue "
                f"with: {resume_command(args.command, argv)}",
                file=sys.stderr,
                flush=True,
            )
        return e.exit_code
    except GlacierError as e:
        if debug:
            raise
        print(f"glacier-movement {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(
            f"glacier-movement {args.command}: interrupted; outputs written so far are complete, run again to resume",
            file=sys.stderr,
        )
        return 130
    except MemoryError:
        if debug:
            raise
        print(
            f"glacier-movement {args.command}: error: out of memory; use a smaller --size, --batch-size or preset",
            file=sys.stderr,
        )
        return EXIT_USER_ERROR
    except Exception as e:  # noqa: BLE001 - the policy: one line unless --debug
        if debug:
            raise
        first = str(e).splitlines()[0] if str(e) else ""
        print(
            f"glacier-movement {args.command}: internal error: {type(e).__name__}: {first} "
            "(run again with --debug for the traceback and report it)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
