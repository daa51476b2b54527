"""`glacier-movement glacier add|list|show`: the glaciers the pipeline knows.

A glacier is a TOML file of :class:`~glacier_movement.config.GlacierConfig` settings (keys and
defaults in docs/glaciers.md). Parvati and Aletsch ship inside the package; ``glacier add NAME
--bbox W S E N`` writes ``<data-root>/glaciers/NAME.toml``, after which ``--glacier NAME`` works in
every command (``--glacier path/to/NAME.toml`` works without adding it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from . import config
from .catalog import Catalog
from .config import GlacierConfig
from .errors import GlacierError
from .io import atomic_path
from .settings import option


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


# --------------------------------------------------------------------------------- the stages
@dataclass(frozen=True)
class AddSettings:
    """Write <data-root>/glaciers/NAME.toml.

    Write a glacier config to <data-root>/glaciers/NAME.toml. Only --bbox is required; the CRS
    defaults to the UTM zone of the bbox centre (polar stereographic EPSG:3413 / 3031 north of
    84° N / south of 80° S), the ROI to the whole 30 m grid of the bbox, the window to 3 months and
    the years to 2013 to the last full year.
    """

    name: str = option(
        positional=True, metavar="NAME", help="glacier name: letters, digits, '_', '-', '.'"
    )
    bbox: tuple[float, ...] = option(
        nargs=4, metavar=("W", "S", "E", "N"), help="lon/lat box in degrees (WGS 84)"
    )
    epsg: int | None = option(None, help="projected CRS of the grid (default: UTM zone)")
    roi: tuple[int, ...] | None = option(
        None,
        parse=config.parse_roi,
        metavar="R0,R1,C0,C1",
        help="region of interest in pixels of the 30 m grid (default: the whole grid)",
    )
    window_months: int | None = option(
        None, metavar="N", help="averaging window, divides 12 (default 3)"
    )
    years: str | None = option(
        None, metavar="FIRST-LAST", help="years (default 2013 to last full year)"
    )
    train_frames: int | None = option(
        None,
        metavar="N",
        help="frames that build training sequences; the rest are the full-scene test (default all)",
    )
    force: bool = option(False, help="replace an existing config of NAME")


@dataclass(frozen=True)
class ListSettings:
    """Every known glacier (shipped and added) and its settings.

    One line per glacier config: the shipped ones and those in <data-root>/glaciers/, with bbox,
    CRS, ROI, window, years, training frames and scene count.
    """


@dataclass(frozen=True)
class ShowSettings:
    """Print a glacier's config as TOML, every default filled in.

    The printed TOML is a complete config: save it, edit it, and pass it as --glacier FILE.
    """

    glacier: str = option(
        positional=True, metavar="GLACIER", help="a glacier name or a path to its .toml"
    )


def run_add(s: AddSettings, catalog: Catalog) -> Path:
    data: dict = {"name": s.name, "bbox": list(s.bbox)}
    for key in ("epsg", "roi", "window_months", "years", "train_frames"):
        value = getattr(s, key)
        if value is not None:
            data[key] = list(value) if isinstance(value, tuple) else value
    cfg = config.glacier_from_dict(data)
    path = write_glacier(cfg, catalog.root, force=s.force)
    print(format_table([(cfg.name, str(path), cfg, "")]))
    print(
        f"wrote {path}; next: `glacier-movement acquire --glacier {cfg.name}` (or `synthesize "
        f"--glacier {cfg.name} --size 96 96` to try the pipeline offline)"
    )
    return path


def run_list(s: ListSettings, catalog: Catalog) -> str:
    table = format_table(known_glaciers(catalog.root))
    print(table)
    return table


def run_show(s: ShowSettings, catalog: Catalog) -> str:
    text = config.glacier_to_toml(config.get_glacier(s.glacier, catalog.root))
    print(text, end="")
    return text
