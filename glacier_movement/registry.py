"""`glacier-movement glacier add|list|show`: the glaciers the pipeline knows.

A glacier is a TOML file of :class:`~glacier_movement.config.GlacierConfig` settings (keys and
defaults in docs/glaciers.md). Parvati and Aletsch ship inside the package; ``glacier add NAME
--bbox W S E N`` writes ``<data-root>/glaciers/NAME.toml``, after which ``--glacier NAME`` works in
every command (``--glacier path/to/NAME.toml`` works without adding it).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from . import config
from .config import GlacierConfig
from .errors import GlacierError
from .io import atomic_path


def existing_config(name: str, root: str | os.PathLike | None = None) -> Path | None:
    """The config file of ``name`` under the data root, matched case-insensitively (as
    :func:`config.get_glacier` finds it), or None."""
    for path in config.user_glacier_files(root):
        if path.stem.lower() == name.lower():
            return path
    return None


def write_glacier(
    cfg: GlacierConfig,
    root: str | os.PathLike | None = None,
    force: bool = False,
    comment: str = "",
) -> Path:
    """Write ``cfg`` to ``<root>/glaciers/<name>.toml`` atomically; a config of that name is
    replaced only with ``force`` (otherwise a one-line :class:`GlacierError`)."""
    config.validate_name(cfg.name)
    old = existing_config(cfg.name, root)
    if old is not None and not force:
        raise GlacierError(
            f"glacier {cfg.name!r} exists ({old}): pass --force to replace it, or choose another "
            "name"
        )
    path = config.glaciers_dir(root) / f"{cfg.name}.toml"
    text = config.glacier_to_toml(cfg, comment=comment)
    with atomic_path(path, suffix=".tmp.toml") as tmp:
        tmp.write_text(text, encoding="utf-8")
    if old is not None and old.name != path.name and old.exists() and not old.samefile(path):
        old.unlink()  # the same name in another case: one file per glacier
    return path


def known_glaciers(
    root: str | os.PathLike | None = None,
) -> list[tuple[str, str, GlacierConfig | None, str]]:
    """Every glacier: (name, source, config or None, problem) for the shipped ones, then each file
    under ``<root>/glaciers/``. A file that does not load has its one-line problem instead of a
    config (``list`` shows it and goes on)."""
    out: list[tuple[str, str, GlacierConfig | None, str]] = [
        (name, "shipped", cfg, "") for name, cfg in sorted(config.GLACIERS.items())
    ]
    for path in config.user_glacier_files(root):
        if path.stem.lower() in config.GLACIERS:
            out.append((path.stem, str(path), None, "ignored: the shipped glacier has this name"))
            continue
        try:
            out.append((path.stem, str(path), config.get_glacier(path.stem, root), ""))
        except GlacierError as e:
            out.append((path.stem, str(path), None, str(e)))
    return out


def describe(cfg: GlacierConfig) -> list[str]:
    """The settings of a config as table cells (see :func:`format_table`)."""
    r0, r1, c0, c1 = cfg.roi
    sel = cfg.scene_selection
    return [
        " ".join(f"{v:.4f}" for v in cfg.bbox),
        f"EPSG:{cfg.epsg}",
        f"{r0}:{r1},{c0}:{c1}",
        f"{cfg.window_months} mo",
        f"{cfg.years[0]}-{cfg.years[1]}",
        "all" if cfg.train_frames is None else str(cfg.train_frames),
        "all" if not sel else f"{len(sel)} years listed",
    ]


HEADER = ["name", "bbox W S E N", "CRS", "ROI rows,cols", "window", "years", "train", "scenes"]


def format_table(rows: list[tuple[str, str, GlacierConfig | None, str]]) -> str:
    """``glacier list``'s output: a table of the glaciers that load, each with its source, then a
    line per file that does not."""
    good = [[name, *describe(cfg)] for name, _, cfg, _ in rows if cfg is not None]
    sources = [src for _, src, cfg, _ in rows if cfg is not None]
    table = [[*HEADER, "source"], *[[*r, s] for r, s in zip(good, sources, strict=True)]]
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in table]
    bad = [(name, src, why) for name, src, cfg, why in rows if cfg is None]
    lines += [f"{name}: {why}" if why.startswith("ignored") else f"{why}" for name, src, why in bad]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ CLI
def _roi_arg(text: str) -> list[int]:
    try:
        parts = [int(v) for v in text.split(",")]
    except ValueError:
        parts = []
    if len(parts) != 4:
        raise argparse.ArgumentTypeError(
            f"bad ROI {text!r}: write ROW0,ROW1,COL0,COL1 (pixels of the acquired 30 m grid)"
        )
    return parts


def run_add(args: argparse.Namespace) -> int:
    data: dict = {"name": args.name, "bbox": list(args.bbox)}
    if args.epsg is not None:
        data["epsg"] = args.epsg
    if args.roi is not None:
        data["roi"] = args.roi
    if args.window_months is not None:
        data["window_months"] = args.window_months
    if args.years is not None:
        data["years"] = args.years
    if args.train_frames is not None:
        data["train_frames"] = args.train_frames
    cfg = config.glacier_from_dict(data)
    path = write_glacier(cfg, args.data_root, force=args.force)
    print(format_table([(cfg.name, str(path), cfg, "")]))
    print(
        f"wrote {path}; next: `glacier-movement acquire --glacier {cfg.name}` (or `synthesize "
        f"--glacier {cfg.name} --size 96 96` to try the pipeline offline)"
    )
    return 0


def run_list(args: argparse.Namespace) -> int:
    print(format_table(known_glaciers(args.data_root)))
    return 0


def run_show(args: argparse.Namespace) -> int:
    cfg = config.get_glacier(args.glacier, args.data_root)
    print(config.glacier_to_toml(cfg), end="")
    return 0


def register(sub, common) -> None:
    p = sub.add_parser(
        "glacier",
        help="add a glacier (any bbox on Earth), list the known glaciers, show one's settings",
        description=(
            "Glaciers are TOML configs: parvati and aletsch ship with the package; `glacier add` "
            "writes <data-root>/glaciers/NAME.toml. Then `--glacier NAME` works in every command "
            "(acquire, synthesize, preprocess, sequences, train, test, infer, flow, report), and "
            "so does `--glacier path/to/NAME.toml`. The common options --data-root DIR and "
            "--debug go after the action (`glacier list --data-root DIR`). Keys and defaults: "
            "docs/glaciers.md."
        ),
    )
    gsub = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p))
    gsub.required = True

    a = gsub.add_parser(
        "add",
        parents=[common],
        help="write <data-root>/glaciers/NAME.toml",
        description=(
            "Write a glacier config to <data-root>/glaciers/NAME.toml. Only --bbox is required; "
            "the CRS defaults to the UTM zone of the bbox centre (polar stereographic EPSG:3413 / "
            "3031 north of 84° N / south of 80° S), the ROI to the whole 30 m grid of the bbox, "
            "the window to 3 months and the years to 2013 to the last full year."
        ),
    )
    a.add_argument("name", metavar="NAME", help="glacier name: letters, digits, '_', '-', '.'")
    a.add_argument(
        "--bbox",
        nargs=4,
        type=float,
        required=True,
        metavar=("W", "S", "E", "N"),
        help="lon/lat box in degrees (WGS 84)",
    )
    a.add_argument("--epsg", type=int, help="projected CRS of the grid (default: UTM zone)")
    a.add_argument(
        "--roi",
        type=_roi_arg,
        metavar="R0,R1,C0,C1",
        help="region of interest in pixels of the 30 m grid (default: the whole grid)",
    )
    a.add_argument(
        "--window-months", type=int, metavar="N", help="averaging window, divides 12 (default 3)"
    )
    a.add_argument("--years", metavar="FIRST-LAST", help="years (default 2013 to last full year)")
    a.add_argument(
        "--train-frames",
        type=int,
        metavar="N",
        help="frames that build training sequences; the rest are the full-scene test (default all)",
    )
    a.add_argument("--force", action="store_true", help="replace an existing config of NAME")
    a.set_defaults(func=run_add)

    ls = gsub.add_parser(
        "list", parents=[common], help="every known glacier (shipped and added) and its settings"
    )
    ls.set_defaults(func=run_list)

    sh = gsub.add_parser(
        "show", parents=[common], help="print a glacier's config as TOML, every default filled in"
    )
    sh.add_argument("glacier", metavar="GLACIER", help="a glacier name or a path to its .toml")
    sh.set_defaults(func=run_show)
