"""`glacier-movement <command>`: one subcommand per pipeline stage, generated from its settings.

Every command is a settings dataclass and a plain function (:data:`COMMANDS`); this module turns the
settings' fields into argparse options (flag, help, metavar, choices and default come from the
field, see ``settings.option``), reads ``--config FILE`` (TOML or YAML; the command line wins over
the file), builds the settings and calls the function. It also holds the error policy: user errors
are one line on stderr and exit 2, internal errors one line and exit 3, a stop by signal 130/143 with
the command that resumes; tracebacks only with ``--debug``.

The folder holds what runs the commands: ``stages`` (the table of every command: name, settings
class, function), ``reproduce`` (the job: the stages' settings in order, resumable) and
``executors`` (a stage's independent runs in local workers, SLURM jobs or dask tasks). Only
``python -m glacier_movement`` (``__main__``) imports this layer.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .. import __version__, settings, signals
from ..catalog import Catalog
from ..errors import GlacierError
from ..settings import MissingSetting, Option, SettingsError
from . import reproduce, stages
from .stages import Command

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 3


#: Every command in pipeline order (this is also --help's order): the stages, then the job.
COMMANDS: list[Command] = [*stages.COMMANDS, Command("reproduce", reproduce.Job, reproduce.run)]
#: Command groups: the parent command's help.
GROUPS = {
    "glacier": (
        "add a glacier (any bbox on Earth), list the known glaciers, show one's settings",
        "Glaciers are TOML configs: parvati and aletsch ship with the package; `glacier add` "
        "writes <data-root>/glaciers/NAME.toml. Then `--glacier NAME` works in every command "
        "(acquire, synthesize, preprocess, sequences, train, test, infer, flow, report), and so "
        "does `--glacier path/to/NAME.toml`. The common options --data-root DIR and --debug go "
        "after the action (`glacier list --data-root DIR`). Keys and defaults: docs/glaciers.md.",
    )
}


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line that points to --help."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


# --------------------------------------------------------------------------- parser generation
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
    g.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="read settings from a TOML or YAML file (keys: the option names); options given "
        "on the command line win. Every run writes its resolved settings in this form",
    )
    g.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    return p


def _help_parts(cls: type) -> tuple[str, str]:
    doc = inspect.cleandoc(cls.__doc__ or "")
    head, _, rest = doc.partition("\n\n")
    return " ".join(head.split()).rstrip("."), rest


def _help_text(o: Option, shown: Mapping[str, Any]) -> str:
    text = o.help.replace("%", "%%")
    if o.name in shown:  # a script's config file sets it
        value = shown[o.name]
        value = " ".join(map(str, value)) if isinstance(value, list | tuple) else value
        return f"{text} [this script: {value}]"
    if o.required:
        return f"{text} (required)"
    if o.kind is bool or o.default in (None, ()) or "default" in text:
        return text
    default = " ".join(map(str, o.default)) if isinstance(o.default, tuple) else o.default
    return f"{text} (default {default})"


def add_options(
    parser: argparse.ArgumentParser, cls: type, shown: Mapping[str, Any] | None = None
) -> None:
    """One argparse option per settings field; defaults are left out (SUPPRESS) so that the
    settings know which options the command line gave. ``shown``: values a config file gives,
    named in the help."""
    for o in settings.options(cls):
        m = o.meta
        if not m.get("cli", True):
            continue
        kw: dict[str, Any] = {"help": _help_text(o, shown or {}), "default": argparse.SUPPRESS}
        if m.get("metavar") is not None:
            kw["metavar"] = m["metavar"]
        if o.kind is bool and not o.sequence:
            kw["action"] = (
                argparse.BooleanOptionalAction
                if m.get("negatable")
                else ("store_false" if o.flag.startswith("--no-") else "store_true")
            )
            kw.pop("metavar", None)
        else:
            kw["type"] = _parser_type(m["parse"]) if m.get("parse") else o.kind
            if m.get("choices") is not None and m.get("parse") is None:
                kw["choices"] = m["choices"]
            if o.sequence and m.get("parse") is None:
                if m.get("repeat"):
                    kw["action"] = "append"
                else:
                    kw["nargs"] = m.get("nargs") or "+"
        if m.get("positional"):
            kw.pop("default")
            parser.add_argument(o.name, **kw)
        else:
            parser.add_argument(o.flag, dest=o.name, **kw)


def _parser_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """``parse`` whose ValueError message argparse shows as it is."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return convert


def build_parser() -> argparse.ArgumentParser:
    common = common_parser()
    parser = OneLineParser(
        prog="glacier-movement",
        description=(
            "Glacier movement prediction from Landsat-8 snow/ice (NDSI) sequences: acquisition, "
            "preprocessing, sequences, models, training, evaluation and optical flow "
            "(Müller et al., NeurIPS 2023 CCAI workshop). Every option can also come from "
            "--config FILE."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    sub.required = True
    groups: dict[str, Any] = {}
    for c in COMMANDS:
        group, _, action = c.name.rpartition(" ")
        target = sub
        if group:
            if group not in groups:
                help_, desc = GROUPS[group]
                gp = sub.add_parser(group, help=help_, description=desc)
                groups[group] = gp.add_subparsers(
                    dest="action", metavar="ACTION", parser_class=OneLineParser
                )
                groups[group].required = True
            target = groups[group]
        help_, desc = _help_parts(c.settings)
        p = target.add_parser(action, parents=[common], help=help_, description=desc or help_)
        add_options(p, c.settings)
        p.set_defaults(_command=c)
    return parser


def _flag(cls: type, field: str) -> str:
    o = next((o for o in settings.options(cls) if o.name == field), None)
    if o is None:
        return field
    return o.name.upper() if o.meta.get("positional") else o.flag


def _parse_args(
    argv: list[str],
) -> tuple[Command, Callable[[], Any], argparse.Namespace]:
    """The command, a function that builds its settings, and the common options. Bad syntax is
    the parser's one-line error (SystemExit 2)."""
    parser = build_parser()
    ns = parser.parse_args(argv)
    cmd: Command = ns._command
    return cmd, lambda: settings_from(_subparser(parser, cmd.name), cmd.settings, ns), ns


def parse(argv: list[str]) -> tuple[Command, Any, argparse.Namespace]:
    """The command, its settings (config file, then the command line) and the common options.
    Bad syntax is the parser's one-line error (SystemExit 2); a bad value is a
    :class:`SettingsError` (``main`` prints it in one line and returns 2)."""
    cmd, make, ns = _parse_args(argv)
    return cmd, make(), ns


def settings_from(parser: argparse.ArgumentParser, cls: type, ns: argparse.Namespace) -> Any:
    """``cls`` from the parsed options over the ``--config`` file's values over the defaults; a
    missing required option is the parser's error, as argparse words it."""
    given = {o.name: getattr(ns, o.name) for o in settings.options(cls) if hasattr(ns, o.name)}
    values = settings.read_config(ns.config) if ns.config else {}
    where = f" in {ns.config}" if ns.config else ""
    try:
        return settings.build(cls, {**settings.build_partial(cls, values, where), **given})
    except MissingSetting as e:
        parser.error(f"the following arguments are required: {_flag(cls, e.field)}")


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    for part in name.split():
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[part]
    return parser


# ------------------------------------------------------------------------------------ running
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
    if argv[:1] == [WORKER]:
        return worker(argv[1:])
    cmd, make, ns = _parse_args(argv)
    return execute(cmd, make, ns, argv)


def execute(cmd: Command, make: Callable[[], Any], ns: argparse.Namespace, argv: list[str]) -> int:
    """Build the settings (``make``) and run the command under the error policy; returns the
    exit status."""
    debug = ns.debug or "--debug" in argv
    name = cmd.name.split()[0]  # "glacier" for "glacier add": the messages name the command
    try:
        obj = make()
        # SIGTERM as SIGINT: stop, outputs stay whole; `train` stops after its current step
        with signals.raising():
            cmd.run(obj, Catalog.at(ns.data_root))
            return 0
    except signals.Interrupted as e:
        if int(os.environ.get("RANK", "0")) == 0:  # one line for a torchrun job, not one a rank
            where = f" {e.detail}" if e.detail else "; outputs written so far are complete"
            print(
                f"glacier-movement {name}: stopped by {e.signal_name}{where}; continue "
                f"with: {resume_command(name, argv)}",
                file=sys.stderr,
                flush=True,
            )
        return e.exit_code
    except SettingsError as e:
        if debug:
            raise
        print(
            f"glacier-movement {name}: error: {_flag(cmd.settings, e.field)} {e.message}",
            file=sys.stderr,
        )
        return EXIT_USER_ERROR
    except GlacierError as e:
        if debug:
            raise
        print(f"glacier-movement {name}: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(
            f"glacier-movement {name}: interrupted; outputs written so far are complete, run "
            "again to resume",
            file=sys.stderr,
        )
        return 130
    except MemoryError:
        if debug:
            raise
        print(
            f"glacier-movement {name}: error: out of memory; use a smaller --size, "
            "--batch-size or preset",
            file=sys.stderr,
        )
        return EXIT_USER_ERROR
    except Exception as e:  # noqa: BLE001 - the policy: one line unless --debug
        if debug:
            raise
        first = str(e).splitlines()[0] if str(e) else ""
        print(
            f"glacier-movement {name}: internal error: {type(e).__name__}: {first} "
            "(run again with --debug for the traceback and report it)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL_ERROR


def script(
    config: str | Path,
    command: str | Command,
    doc: str | None = None,
    argv: list[str] | None = None,
) -> int:
    """Entry point of the experiment scripts: ``command`` (a ``glacier-movement`` command's name,
    or a script's own :class:`Command`) with the settings of the ``config`` file beside the
    script; options given to the script win over the file, and its --help shows the file's
    values as the defaults."""
    argv = sys.argv[1:] if argv is None else argv
    cmd = (
        command if isinstance(command, Command) else next(c for c in COMMANDS if c.name == command)
    )
    parser = OneLineParser(
        prog=Path(sys.argv[0]).name,
        description=doc or " ".join(_help_parts(cmd.settings)),
        parents=[common_parser()],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_options(parser, cmd.settings, shown=settings.read_config(config))
    ns = parser.parse_args(["--config", str(config), *argv])
    full = [*cmd.name.split(), "--config", str(config), *argv]  # what --resume continues
    return execute(cmd, lambda: settings_from(parser, cmd.settings, ns), ns, full)


# ------------------------------------------------------------------------------------- workers
#: The hidden command of the processes that run `reproduce --jobs N`'s steps (executors.py).
WORKER = "_worker"


def _run_logged(argv: list[str], threads: int, log: str) -> int:
    """Run the command ``argv`` on ``threads`` torch threads, its stdout and stderr appended to
    ``log``; its exit status."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log, "ab", buffering=0) as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            # a stop that comes before the command set its own handlers (while it parses its
            # settings) must not end the worker without a word in the step's log
            with stages.torch_threads(threads), signals.raising():
                return main(argv)
        except signals.Interrupted as e:
            print(
                f"glacier-movement {argv[0] if argv else ''}: stopped by {e.signal_name} before "
                "it started; nothing was written",
                file=sys.stderr,
                flush=True,
            )
            return e.exit_code
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _watch_stop(path: Path) -> None:
    """SIGTERM to this process once ``path`` exists (how the job stops a step on a cluster node:
    a training run writes its checkpoint, as on Ctrl-C)."""

    def watch() -> None:
        while not path.exists():
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True).start()


def worker(argv: list[str]) -> int:
    """``glacier-movement _worker``: run steps of ``reproduce --jobs N`` as their command lines.

    - ``--serve``: one step after another (a local worker pays Python's and torch's start once),
      each a JSON line on stdin ``{"argv": [...], "threads": N, "log": PATH}``; the exit status of
      each is answered on stdout as ``status N``. A step stopped by a signal ends the worker.
    - ``--threads N --log FILE [--stop FILE] -- ARGV...``: one step (the cluster executors' job).
    """
    if argv == ["--serve"]:
        answers = os.fdopen(os.dup(1), "w", buffering=1)
        for line in sys.stdin:
            if not line.strip():
                continue
            task = json.loads(line)
            code = _run_logged([str(a) for a in task["argv"]], int(task["threads"]), task["log"])
            answers.write(f"status {code}\n")
            if code in (130, 143):
                return code
        return 0
    p = OneLineParser(prog=f"glacier-movement {WORKER}")
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--stop", default=None)
    p.add_argument("command", nargs=argparse.REMAINDER)
    ns = p.parse_args(argv)
    command = ns.command[1:] if ns.command[:1] == ["--"] else ns.command
    if ns.stop:  # the job removed any earlier attempt's stop file before it submitted this one
        _watch_stop(Path(ns.stop))
    return _run_logged(command, ns.threads, ns.log)
