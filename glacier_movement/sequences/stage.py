"""The ``sequences`` stage: :class:`SequencesSettings`, the summary, the example figure and the
optional export of one file per sequence."""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .. import config, io, locks, settings
from ..catalog import Catalog
from ..errors import DataError, GlacierError
from ..plotting import plot_sequence_examples
from ..presets import get_preset
from ..settings import glacier_option, option
from .dataset import SequenceDataset
from .patches import extract_patches
from .splits import SPLIT_MODES, Split, split_indices


# ------------------------------------------------------------------------------------ export
def export_files(
    dataset: SequenceDataset,
    out_dir: str | os.PathLike,
    indices=None,
    splits: dict[str, Split | str] | None = None,
    chunk: int = 1024,
    progress: bool = True,
) -> Path:
    """Write the original's one-file-per-sequence layout: ``DIR/input/{i}.npy``, ``DIR/target/{i}.npy``.

    ``i`` is the dataset index (start, row, col order); ``DIR/index.csv`` lists each file's start,
    patch row/col, top-left pixel and, when ``splits`` are given, its part in each split mode.
    Only for tools that need files: it costs ≈ (n_in + n_out)·P²·4 bytes per sequence. Written
    into a temporary folder that is renamed onto ``DIR`` at the end (DIR must be absent or empty),
    so an interrupted export leaves nothing behind. Raises if the disk lacks the space.
    """
    out_dir = Path(out_dir)
    idx = np.arange(len(dataset)) if indices is None else np.asarray(indices, dtype=np.int64)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise GlacierError(
            f"{out_dir} exists and is not an empty folder: choose a new --export-files folder"
        )
    p = dataset.patch
    need = len(idx) * ((dataset.length * p * p * 4) + 2 * 128)  # data + .npy headers
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(out_dir.parent).free
    print(
        f"warning: exporting {len(idx):,} sequences as {2 * len(idx):,} .npy files, "
        f"≈ {need / 1e9:.2f} GB in {out_dir} (the data set itself needs no files)",
        file=sys.stderr,
    )
    if need > 0.95 * free:
        raise GlacierError(
            f"exporting needs ≈ {need / 1e9:.2f} GB but {out_dir.parent} has {free / 1e9:.2f} GB free: "
            "free disk space or export elsewhere"
        )
    tmp = out_dir.parent / f".{out_dir.name}.partial-{os.getpid()}"

    try:
        (tmp / "input").mkdir(parents=True)
        (tmp / "target").mkdir()
        with tqdm(total=len(idx), unit="seq", desc="export", disable=not progress) as bar:
            for a in range(0, len(idx), chunk):
                part = idx[a : a + chunk]
                x, y = dataset.batch(part)
                xs, ys = x.numpy(), y.numpy()
                for k, i in enumerate(part.tolist()):  # one file per sequence is the point here
                    np.save(tmp / "input" / f"{i}.npy", xs[k])
                    np.save(tmp / "target" / f"{i}.npy", ys[k])
                bar.update(len(part))
        _write_index_csv(tmp / "index.csv", dataset, idx, splits or {})
        if out_dir.exists():
            out_dir.rmdir()  # empty (checked above); rename needs it gone on some systems
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def _write_index_csv(
    path: Path, ds: SequenceDataset, idx: np.ndarray, splits: dict[str, Split | str]
) -> None:
    s, r, c = ds.position(idx)
    y0, x0 = ds.pixel_origin(r, c)
    cols = {"index": idx, "start": s, "row": r, "col": c, "y0": y0, "x0": x0}
    header = list(cols)
    table = np.stack([np.asarray(v, dtype=np.int64) for v in cols.values()], axis=1).astype(str)
    for mode, sp in splits.items():
        if not isinstance(sp, Split):
            continue
        label = np.full(len(ds), "none", dtype=object)
        for part in ("train", "val", "test"):
            label[getattr(sp, part)] = part
        table = np.concatenate([table, label[idx][:, None].astype(str)], axis=1)
        header.append(f"split_{mode}")
    np.savetxt(path, table, fmt="%s", delimiter=",", header=",".join(header), comments="")


# ---------------------------------------------------------------------------------- the stage
@dataclass(frozen=True)
class SequencesSettings:
    """Cut the frames into patch sequences and split them (no file per sequence).

    Describe the patch sequences of a glacier's frames (frames.npz from `preprocess`): P×P patches
    at a stride, n_in input + n_out target frames per sequence, ordered by (start, patch row, patch
    col). Writes <glacier>/sequences.json (settings, counts, both split modes) and a figure of
    example sequences. Sequences are served from the frames at training time; --export-files
    writes the original's one-file-per-sequence layout only when asked.
    """

    glacier: str = glacier_option()
    preset: str | None = option(
        None, help="take --patch/--stride defaults from a preset (paper, demo, tiny)"
    )
    patch: int | None = option(None, help="patch size in pixels (default 50, the paper's)")
    stride: int | None = option(None, help="patch stride in pixels (default 10)")
    window: int = option(4, help="input frames = target frames per sequence (default 4)")
    split: str = option(
        "paper",
        choices=SPLIT_MODES,
        help="split mode recorded as the default for training (both are reported)",
    )
    test_fraction: float = option(0.2, help="share of sequences for testing (default 0.2)")
    val_fraction: float = option(0.1, help="share of train+val for validation (default 0.1)")
    max_frame: int | None = option(
        None,
        metavar="N",
        help="use only the first N frames (default: the glacier's training frames, 19 for "
        "Aletsch; all for Parvati)",
    )
    examples: int = option(4, help="example sequences in the figure (default 4, 0 = none)")
    export_files: Path | None = option(
        None,
        metavar="DIR",
        help="also write DIR/input/{i}.npy and DIR/target/{i}.npy per sequence (large)",
    )

    def __post_init__(self) -> None:
        settings.check_choices(self)
        if self.preset is not None:
            get_preset(self.preset)

    def sizes(self) -> tuple[int, int]:
        """(patch, stride): the options, else the preset's, else the paper's 50 and 10."""
        pre = get_preset(self.preset) if self.preset else None
        patch = self.patch if self.patch is not None else (pre.patch if pre else 50)
        stride = self.stride if self.stride is not None else (pre.stride if pre else 10)
        return patch, stride


def summarize(
    ds: SequenceDataset, splits: dict[str, Split | str], fr: io.Frames | None = None
) -> dict:
    """The JSON-ready description of a dataset and its splits (what ``sequences.json`` holds).

    ``splits`` maps mode → :class:`Split`, or → the reason it could not be made.
    """
    t, h, w = ds.frames.shape

    def date(k: int) -> str | None:
        return str(fr.window_start[k]) if fr is not None and k < len(fr.window_start) else None

    out = {
        "patch": ds.patch,
        "stride": ds.stride,
        "n_in": ds.n_in,
        "n_out": ds.n_out,
        "max_frame": ds.max_frame,
        "frames_used": t,
        "frame_shape": [h, w],
        "grid": list(ds.grid),
        "n_starts": ds.n_starts,
        "n_positions": ds.n_positions,
        "n_sequences": len(ds),
        "index_order": "(start, row, col): i = (start * nR + row) * nC + col",
        "bytes_per_sequence_on_disk": 0,
        "original_layout_bytes": len(ds) * ds.length * ds.patch**2 * 4,  # float32 data only
        "splits": {},
    }
    for mode, sp in splits.items():
        if not isinstance(sp, Split):
            out["splits"][mode] = {"unavailable": sp}
            continue
        a, b = _target_frames(sp)
        out["splits"][mode] = {
            **sp.counts,
            "train_range": [int(sp.train[0]), int(sp.train[-1])] if len(sp.train) else None,
            "val_range": [int(sp.val[0]), int(sp.val[-1])] if len(sp.val) else None,
            "test_range": [int(sp.test[0]), int(sp.test[-1])],
            "test_target_frames": [a, b],
            "test_target_windows": [date(a), date(b)],
            "describe": sp.describe(),
        }
    return out


def _target_frames(sp: Split) -> tuple[int, int]:
    """(first, last) frame that a test sequence of one glacier's split predicts."""
    if sp.test_target_frames is None:  # only a mix of glaciers has none
        raise GlacierError(f"the {sp.mode} split has no test target frames: it mixes glaciers")
    return sp.test_target_frames


def _example_indices(ds: SequenceDataset, k: int) -> np.ndarray:
    """``k`` sequences worth looking at: spread over the starts, each at the patch whose ice
    fraction in its last input frame is closest to one half (the ice edge, where motion shows)."""
    starts = np.unique(np.linspace(0, ds.n_starts - 1, k).round().astype(np.int64))
    out = []
    for s in starts:
        frac = np.mean(
            extract_patches(ds.frames[s + ds.n_in - 1], ds.patch, ds.stride) > 0, (-2, -1)
        )
        r, c = np.unravel_index(np.argmin(np.abs(frac - 0.5)), frac.shape)
        out.append(ds.index(s, r, c))
    return np.asarray(out, dtype=np.int64)


def _print_table(ds: SequenceDataset, splits: dict[str, Split | str], chosen: str) -> None:
    t, h, w = ds.frames.shape
    rows = [
        ("frames used", f"{t} of {h}×{w} px"),
        ("patch / stride", f"{ds.patch} / {ds.stride} px"),
        ("patch grid", f"{ds.grid[0]} × {ds.grid[1]} = {ds.n_positions:,}"),
        ("frames per sequence", f"{ds.n_in} in + {ds.n_out} out"),
        ("starts", f"{ds.n_starts}"),
        ("sequences", f"{len(ds):,}"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print()
    print(f"{'split':<8} {'train':>9} {'val':>9} {'test':>9} {'dropped':>9}  test targets")
    for mode, sp in splits.items():
        mark = " *" if mode == chosen else ""
        if not isinstance(sp, Split):
            print(f"{mode + mark:<8} unavailable: {sp}")
            continue
        a, b = _target_frames(sp)
        c = sp.counts
        print(
            f"{mode + mark:<8} {c['train']:>9,} {c['val']:>9,} {c['test']:>9,} {c['dropped']:>9,}  frames {a}–{b}"
        )
    print("(* = the split recorded for training)")


def run(s: SequencesSettings, catalog: Catalog) -> dict:
    """The ``sequences`` stage (holding the glacier's data lock): ``sequences.json``, the example
    figure and, when asked, the exported files. Returns what ``sequences.json`` holds."""
    cfg = config.get_glacier(s.glacier, catalog.root)
    paths = catalog.glacier(cfg.name)
    with locks.hold(paths.glacier_dir, f"the data of glacier {cfg.name!r}"):
        return _run_locked(s, cfg, paths)


def _run_locked(s: SequencesSettings, cfg: config.GlacierConfig, paths: config.Paths) -> dict:
    if not paths.frames.is_file():
        raise DataError(
            f"{paths.frames} does not exist: run `glacier-movement preprocess --glacier {cfg.name}` first"
        )
    fr = io.read_frames(paths.frames)
    t = fr.frames.shape[0]
    patch, stride = s.sizes()
    max_frame = s.max_frame
    if max_frame is None and cfg.train_frames is not None:
        max_frame = min(cfg.train_frames, t)
        if t <= cfg.train_frames:
            print(
                f"note: {cfg.name} has only {t} frames; using all of them for sequences "
                f"(the paper trains on the first {cfg.train_frames} and holds out the rest)",
                file=sys.stderr,
            )
    ds = SequenceDataset(
        fr.frames, patch=patch, stride=stride, n_in=s.window, n_out=s.window, max_frame=max_frame
    )
    # both modes are reported; one that cannot be made (too few frames for the strict gap) is
    # recorded with its reason unless it is the chosen one
    splits: dict[str, Split | str] = {}
    for mode in SPLIT_MODES:
        try:
            splits[mode] = split_indices(ds, mode, s.test_fraction, s.val_fraction)
        except GlacierError as e:
            if mode == s.split:
                raise
            splits[mode] = str(e)

    summary = {
        "glacier": cfg.name,
        "frames_file": str(paths.frames),
        "frames_file_bytes": paths.frames.stat().st_size,
        "frames_total": t,
        "split": s.split,
        "test_fraction": s.test_fraction,
        "val_fraction": s.val_fraction,
        **summarize(ds, splits, fr),
    }
    out_json = paths.sequences_summary
    with io.atomic_path(out_json) as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    settings.write(s, paths.settings_file("sequences"), "sequences")

    print(f"{cfg.name}: {ds!r}")
    _print_table(ds, splits, s.split)
    print(f"wrote {out_json}")
    if s.examples > 0:
        print(f"wrote {_examples_figure(ds, fr, s.examples, paths.sequence_examples, cfg.name)}")
    if s.export_files:
        out = export_files(ds, s.export_files, splits=splits)
        print(f"exported {len(ds):,} sequences to {out}")
    return summary


def _examples_figure(
    ds: SequenceDataset, fr: io.Frames, k: int, fig_path: Path, glacier: str
) -> Path:
    """``fig_path`` (``<glacier>/figures/sequence_examples.png``): ``k`` example sequences at the
    ice edge."""
    ex = _example_indices(ds, k)
    x, y = ds.batch(ex)
    s, r, c = ds.positions(ex)
    labels = [[str(fr.window_start[k])[:7] for k in range(si, si + ds.length)] for si in s.tolist()]
    titles = [
        f"start {si} · patch ({ri}, {ci})\nat y {ri * ds.stride}, x {ci * ds.stride} px"
        for si, ri, ci in zip(s.tolist(), r.tolist(), c.tolist(), strict=True)
    ]
    plot_sequence_examples(
        x.numpy(),
        y.numpy(),
        fig_path,
        row_titles=titles,
        frame_labels=labels,
        title=f"{glacier}: example sequences ({ds.n_in} inputs → {ds.n_out} targets, "
        f"{ds.patch}×{ds.patch} px)",
    )
    return fig_path
