"""Typed stage settings: one frozen dataclass per command, the single source of truth.

Every stage is a settings dataclass plus a plain function ``run(settings, catalog)``. The command
line (``cli/``), the config files (``--config FILE``, TOML or YAML) and the resolved-settings file
each run writes beside its outputs are all generated from the dataclass fields declared with
:func:`option`: its help text, flag, metavar and choices live next to the field and its default
(docs/cli.md says why this is a small generator and not jsonargparse or tyro).

This module knows nothing of argparse: it reads field metadata, converts and checks values,
renders the equivalent command line of a settings object and writes settings files.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import shlex
import tomllib
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import GlacierError
from .io import write_text

#: Marks an option without default (the command line requires it unless a config file gives it).
REQUIRED: Any = dataclasses.MISSING


class SettingsError(GlacierError):
    """A setting has a wrong value. ``field`` names it, so the command line can name its flag."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field} {message}")
        self.field = field
        self.message = message


class MissingSetting(SettingsError):
    """A required setting was not given (the command line says which flag is missing)."""


def option(
    default: Any = REQUIRED,
    *,
    help: str,
    flag: str | None = None,
    metavar: str | tuple[str, ...] | None = None,
    choices: Sequence[Any] | None = None,  # a tuple, or a live list (models.TRAINABLE)
    nargs: int | str | None = None,
    repeat: bool = False,
    negatable: bool = False,
    parse: Callable[[str], Any] | None = None,
    positional: bool = False,
    cli: bool = True,
) -> Any:
    """A settings field with its command-line form.

    ``flag`` overrides ``--field-name`` (``--no-quicklook`` for ``quicklook: bool = True``);
    ``nargs``/``repeat`` give tuple fields their form (``--size H W``; ``--glacier A --glacier
    B``); ``negatable`` gives a bool both ``--x`` and ``--no-x``; ``parse`` converts one command-line
    string (``--experiments 1,2,3``); ``positional`` makes it an argument without flag
    (``glacier add NAME``); ``cli=False`` keeps a field out of the command line.
    """
    meta = dict(
        help=help, flag=flag, metavar=metavar, choices=choices, nargs=nargs, repeat=repeat,
        negatable=negatable, parse=parse, positional=positional, cli=cli,
    )  # fmt: skip
    if isinstance(default, list | dict | set):
        raise TypeError("settings defaults must be immutable: use a tuple")
    return dataclasses.field(default=default, metadata=meta)


# ------------------------------------------------------------------ options several stages share
#: Weights & Biases modes (``offline`` writes files under ``<data-root>/wandb``).
WANDB_MODES = ("online", "offline", "disabled")


def glacier_option() -> Any:
    """The glacier a data stage works on."""
    return option(
        help="glacier: parvati, aletsch, one added with `glacier add`, or a path to its .toml"
    )


def device_option() -> Any:
    """The torch device; None lets checkpoints.resolve_device pick CUDA when there is one."""
    return option(None, help="cpu, cuda or cuda:N (default: cuda when available)")


def wandb_option() -> Any:
    return option(
        "offline",
        choices=WANDB_MODES,
        help="Weights & Biases mode (default offline: files under <data-root>/wandb, `wandb "
        "sync` later)",
    )


# ------------------------------------------------------------------------------- introspection
@dataclasses.dataclass(frozen=True)
class Option:
    """One field of a settings class with its resolved type."""

    name: str
    kind: type  # element type: str, int, float, bool or Path
    sequence: bool  # a tuple field
    optional: bool  # None allowed
    default: Any
    meta: Mapping[str, Any]

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def flag(self) -> str:
        return self.meta.get("flag") or "--" + self.name.replace("_", "-")

    @property
    def help(self) -> str:
        return self.meta.get("help", "")

    def convert(self, value: Any, where: str = "") -> Any:
        """``value`` (from a config file or a command-line string) as this field's type."""
        if value is None:
            if self.optional or self.default is None:
                return None
            raise SettingsError(self.name, f"cannot be empty{where}")
        if isinstance(value, str) and self.meta.get("parse") is not None:
            try:
                value = self.meta["parse"](value)
            except ValueError as e:
                raise SettingsError(self.name, f"has a bad value{where}: {e}") from None
        if self.sequence:
            if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
                value = [value]
            return tuple(self._scalar(v, where) for v in value)
        return self._scalar(value, where)

    def _scalar(self, value: Any, where: str) -> Any:
        kind = self.kind
        try:
            if kind is bool:
                if isinstance(value, bool):
                    return value
                if str(value).lower() in ("true", "yes", "1", "false", "no", "0"):
                    return str(value).lower() in ("true", "yes", "1")
                raise ValueError
            if kind is int and isinstance(value, float) and not value.is_integer():
                raise ValueError
            if kind in (int, float) and isinstance(value, bool):
                raise ValueError
            out = kind(value)
        except (TypeError, ValueError):
            raise SettingsError(
                self.name, f"must be {_KIND_WORDS.get(kind, kind.__name__)}, not {value!r}{where}"
            ) from None
        self.check_choice(out, where)
        return out

    def check_choice(self, value: Any, where: str = "") -> None:
        """A :class:`SettingsError` when ``value`` is not one of the field's ``choices``."""
        choices = self.meta.get("choices")
        if choices is not None and value not in choices:
            raise SettingsError(
                self.name, f"must be one of {', '.join(map(str, choices))}, not {value!r}{where}"
            )


_KIND_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "text"}


@functools.cache
def options(cls: type) -> tuple[Option, ...]:
    """The fields of a settings dataclass with their element types (read once per class: every
    settings object checks itself with them)."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        kind, sequence, optional = _unwrap(hints[f.name])
        default = f.default
        if default is dataclasses.MISSING and f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        out.append(Option(f.name, kind, sequence, optional, default, f.metadata))
    return tuple(out)


def _unwrap(tp: Any) -> tuple[type, bool, bool]:
    optional = False
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        optional = type(None) in args
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 2 and typing.get_origin(rest[1]) is tuple:  # str | tuple[int, ...]
            rest = rest[1:]
        tp, args = rest[0], typing.get_args(rest[0])
    if typing.get_origin(tp) is tuple:
        return args[0], True, optional
    return tp, False, optional


# -------------------------------------------------------------------------------- construction
def build_partial(cls: type, values: Mapping[str, Any], where: str = "") -> dict[str, Any]:
    """``values`` converted to the types of ``cls``'s fields; an unknown name is a
    :class:`SettingsError`."""
    opts = {o.name: o for o in options(cls)}
    unknown = sorted(set(values) - set(opts))
    if unknown:
        raise SettingsError(
            unknown[0], f"is not a setting of {cls.__name__}{where}: valid are {', '.join(opts)}"
        )
    return {k: opts[k].convert(v, where) for k, v in values.items()}


def build(cls: type, values: Mapping[str, Any], where: str = "") -> Any:
    """``cls(**values)`` with every value converted and checked; unknown names and missing
    required settings are :class:`SettingsError`."""
    converted = build_partial(cls, values, where)
    missing = [o.name for o in options(cls) if o.required and o.name not in values]
    if missing:
        raise MissingSetting(missing[0], f"is required{where}")
    return cls(**converted)


def check_choices(obj: Any) -> None:
    """A :class:`SettingsError` for a field of ``obj`` outside its ``choices`` (settings made in
    Python skip the command line's checks)."""
    for o in options(type(obj)):
        value = getattr(obj, o.name)
        if value is not None:
            for v in value if o.sequence else (value,):
                o.check_choice(v)


def read_config(path: str | Path) -> dict[str, Any]:
    """The settings in a TOML or YAML file (``--config FILE``): a flat table whose keys are the
    settings' names (``batch_size`` or ``batch-size``)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise GlacierError(f"cannot read the config file {path}: {e.strerror or e}") from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml  # PyYAML comes with wandb; only YAML config files need it

            data = yaml.safe_load(text) or {}
        else:
            data = tomllib.loads(text)
    except Exception as e:  # noqa: BLE001 - any parser error is the file's fault
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise GlacierError(
            f"{path} is not valid {path.suffix[1:].upper() or 'TOML'}: {first}"
        ) from None
    if not isinstance(data, dict):
        raise GlacierError(f"{path} must hold a table of settings (name = value)")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def plain(settings: Any) -> dict[str, Any]:
    """The settings as plain TOML/JSON types (tuples as lists, paths as text, None left out)."""
    out = {}
    for o in options(type(settings)):
        v = getattr(settings, o.name)
        if v is None:
            continue
        out[o.name] = [_plain(x) for x in v] if isinstance(v, tuple) else _plain(v)
    return out


def _plain(v: Any) -> Any:
    return str(v) if isinstance(v, Path) else v


def to_toml(settings: Any, comment: str = "") -> str:
    """The settings as a TOML file that ``--config`` reads back (a flat table)."""
    lines = [f"# {c}" for c in comment.splitlines()]
    for k, v in plain(settings).items():
        lines.append(f"{k} = {json.dumps(v)}")  # JSON strings, numbers, bools and arrays are TOML
    return "\n".join(lines) + "\n"


def write(settings: Any, path: Path, command: str) -> Path:
    """Write the resolved settings of a run (``<outputs>/<command>.settings.toml``), atomically;
    ``glacier-movement <command> --config <path>`` runs the same again."""
    text = to_toml(settings, f"resolved settings of `glacier-movement {command}`")
    return write_text(text, Path(path))


def command_line(command: str, settings: Any, root: str | Path | None = None) -> list[str]:
    """The ``glacier-movement`` argv that gives ``settings`` (its fields that differ from the
    defaults; required ones always), e.g. ``['train', '--glacier', 'parvati', '--model', 'lstm']``."""
    argv = [command] + (["--data-root", str(root)] if root is not None else [])
    for o in options(type(settings)):
        v = getattr(settings, o.name)
        if not o.meta.get("cli", True) or (not o.required and v == o.default):
            continue
        argv += _flag_tokens(o, v)
    return argv


def _flag_tokens(o: Option, v: Any) -> list[str]:
    flag = o.flag
    if o.meta.get("positional"):
        return [str(v)]
    if o.kind is bool and not o.sequence:
        if o.meta.get("negatable"):
            base = "--" + o.name.replace("_", "-")
            return [base] if v else [f"--no-{base[2:]}"]
        return [flag] if v != flag.startswith("--no-") else []
    if v is None:
        return []
    if o.sequence:
        if o.meta.get("repeat"):
            return [t for x in v for t in (flag, str(x))]
        if o.meta.get("parse") is not None:  # a comma list on the command line
            return [flag, ",".join(map(str, v)) or "none"]
        return [flag, *map(str, v)]
    return [flag, str(v)]


def shell(argv: list[str]) -> str:
    """``glacier-movement …`` as a user types it."""
    return shlex.join(["glacier-movement", *argv])
