"""`glacier-movement <command>`: one subcommand per pipeline stage.

Each stage module exposes ``register(subparsers, common)`` that adds its subcommand and sets
``func`` (called with the parsed arguments). This file holds only the dispatch and the error
policy: user errors are one line on stderr and a non-zero exit; tracebacks only with ``--debug``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = getattr(args, "debug", False) or "--debug" in argv
    try:
        rc = args.func(args)
        return int(rc or 0)
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
