"""Patches and sequences of NDSI frames, without one file per sequence (docs/preprocessing.md).

The original cut every frame into 50×50 patches with stride 10 and wrote two pickle files per
sequence (about 80 KB each sequence, over 13 GB for Parvati). Sequences overlap heavily, so here
they are *views* into the frames: a sequence is fully described by its start frame and its patch
position, and :class:`SequenceDataset` serves it on demand.

Terms and shapes
----------------
- frames: float32 (T, H, W) masked NDSI (0 or in [0.3, 1]), one per seasonal window.
- patch grid: ``nR = (H − P) // stride + 1`` rows and ``nC = (W − P) // stride + 1`` columns of
  P×P patches (Parvati 800² → 76×76 = 5,776; Aletsch 600² → 56×56 = 3,136).
- sequence i ↔ (start s, row r, col c), in that order (start-major, then row, then col):
  ``i = (s · nR + r) · nC + c``; input = frames s … s+n_in−1, target = frames
  s+n_in … s+n_in+n_out−1 at that patch, shapes (n_in, P, P) and (n_out, P, P).
- starts: s = 0 … T' − (n_in + n_out), T' = ``max_frame`` or T (Parvati 36 → 29 starts,
  167,504 sequences; Aletsch's first 19 frames → 12 starts, 37,632 sequences).

Splits (:func:`split_indices`): ``paper`` takes, in index order (= time order), the first 80 % for
training + validation and the last 20 % for testing, and the last 10 % of the first part for
validation; ``strict`` additionally drops every training/validation sequence that contains (as
input or target) a frame that is a target of any test sequence, then splits the rest 90/10.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import sys
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler
from tqdm import tqdm

from . import config, io, locks, settings
from .catalog import Catalog
from .errors import DataError, GlacierError
from .plotting import plot_sequence_examples
from .presets import get_preset
from .settings import glacier_option, option

__all__ = [
    "patch_grid",
    "extract_patches",
    "stitch_patches",
    "SequenceDataset",
    "ConcatSequences",
    "IndexBatchSampler",
    "make_loader",
    "Split",
    "split_indices",
    "bootstrap_resample",
    "export_files",
    "SequencesSettings",
    "run",
]

SPLIT_MODES = ("paper", "strict")

#: Bytes the original's layout spends per sequence: two pickled float32 (4, 50, 50) arrays.
ORIGINAL_BYTES_PER_SEQUENCE = 2 * 4 * 50 * 50 * 4


@contextlib.contextmanager
def _quiet_readonly() -> Iterator[None]:
    """Silence torch's warning for tensors made from read-only arrays (we never write to them)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not writ.*", category=UserWarning)
        yield


# ------------------------------------------------------------------------------------ patches
def patch_grid(h: int, w: int, patch: int, stride: int) -> tuple[int, int]:
    """Number of patch rows and columns, (nR, nC), of a P×P grid with ``stride`` over H×W pixels.

    Patches start at 0, stride, 2·stride, … and must lie inside the frame, so pixels beyond the
    last full patch (when (H − P) % stride ≠ 0) belong to no patch.
    """
    for name, v in (("patch size", patch), ("stride", stride)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer):
            raise GlacierError(f"{name} must be a whole number of pixels (got {v!r})")
    if patch < 1:
        raise GlacierError(
            f"patch size must be at least 1 pixel (got {patch}): use e.g. --patch 50"
        )
    if stride < 1:
        raise GlacierError(f"stride must be at least 1 pixel (got {stride}): use e.g. --stride 10")
    if patch > h or patch > w:
        raise GlacierError(
            f"patch size {patch} px is larger than the frames ({h}×{w} px): "
            f"use --patch {min(h, w)} or smaller"
        )
    return (h - patch) // stride + 1, (w - patch) // stride + 1


def extract_patches(frames, patch: int, stride: int):
    """All P×P patches at the given stride, as a zero-copy view.

    ``frames``: numpy array or torch tensor (..., H, W). Returns (..., nR, nC, P, P) of the same
    kind, sharing memory with ``frames`` (numpy: a read-only view; torch: ``Tensor.unfold``).
    Patch (r, c) is ``frames[..., r·stride : r·stride + P, c·stride : c·stride + P]``.
    """
    if frames.ndim < 2:
        raise GlacierError(
            f"frames must have at least 2 dimensions (..., H, W), got shape {tuple(frames.shape)}"
        )
    h, w = frames.shape[-2:]
    patch_grid(h, w, patch, stride)  # validates
    if isinstance(frames, torch.Tensor):
        # unfold(H) → (..., nR, W, P); unfold(W) → (..., nR, nC, P_h, P_w)
        return frames.unfold(-2, patch, stride).unfold(-2, patch, stride)
    view = sliding_window_view(np.asarray(frames), (patch, patch), axis=(-2, -1))
    return view[..., ::stride, ::stride, :, :]


def stitch_patches(patches, shape: tuple[int, int], stride: int):
    """Reassemble patches (..., nR, nC, P, P) into images (..., H, W), the mean over overlaps.

    The exact inverse of :func:`extract_patches` when ``stride == P`` (every pixel is in one
    patch and is copied, not averaged). Pixels covered by no patch — the right/bottom margin when
    (H − P) % stride ≠ 0 — are 0. Vectorised with ``torch.nn.functional.fold`` (sum of the
    patches and of a patch of ones, then a division); numpy in → numpy out, torch in → torch out
    on the same device. Integer input gives float64; float16 gives float32.
    """
    is_numpy = not isinstance(patches, torch.Tensor)
    if is_numpy:
        with _quiet_readonly():
            t = torch.as_tensor(np.ascontiguousarray(patches))
    else:
        t = patches
    if t.ndim < 4 or t.shape[-1] != t.shape[-2]:
        raise GlacierError(f"patches must have shape (..., nR, nC, P, P), got {tuple(t.shape)}")
    *lead, n_r, n_c, p, _ = t.shape
    h, w = (int(v) for v in shape)
    if patch_grid(h, w, p, stride) != (n_r, n_c):
        raise GlacierError(
            f"{n_r}×{n_c} patches of {p} px with stride {stride} do not tile a {h}×{w} image "
            f"(that needs {patch_grid(h, w, p, stride)})"
        )
    if not t.is_floating_point():
        t = t.to(torch.float64)
    elif t.dtype in (torch.float16, torch.bfloat16):
        t = t.to(torch.float32)
    n = math.prod(lead)
    cols = t.reshape(n, n_r * n_c, p * p).transpose(1, 2)  # (N, P·P, L), as fold wants
    summed = torch.nn.functional.fold(cols, (h, w), kernel_size=p, stride=stride)
    ones = torch.ones(1, p * p, n_r * n_c, dtype=t.dtype, device=t.device)
    count = torch.nn.functional.fold(ones, (h, w), kernel_size=p, stride=stride)
    out = torch.where(count > 0, summed / count.clamp(min=1), torch.zeros((), dtype=t.dtype))
    out = out.reshape(*lead, h, w)
    return out.numpy() if is_numpy else out


# ------------------------------------------------------------------------------------ dataset
class SequenceDataset(Dataset):
    """Input/target patch sequences of one glacier, served as views into the frames.

    ``frames``: (T, H, W) NDSI frames (numpy array, memory map or CPU tensor); stored as given
    when float32 (no copy), else converted once. Only ``frames[:max_frame]`` is used (Aletsch
    trains on its first 19 of 27 frames). Item i is ``(x, y)``: float32 tensors (n_in, P, P) and
    (n_out, P, P) that share memory with the frames — do not modify them in place. Index order is
    (start, row, col); ``len = n_starts · nR · nC``.

    Indexing with a list / array / tensor of indices returns a whole batch
    (:meth:`batch`: (B, n_in, P, P), (B, n_out, P, P), one vectorised gather), which is what
    :func:`make_loader` uses.

    ``climatology`` (T, H, W) is the climatology of each frame's window of the year (see
    :mod:`glacier_movement.baselines`; :meth:`take` serves its patches); with ``clim_input`` the
    batches' ``x`` carries it for the ``+clim`` models: (B, 2·n_in + n_out, P, P) = the input
    frames, their climatology, the targets' climatology.
    ``interpolated`` (T,) bool flags windows filled for lack of scenes (not observations).
    """

    def __init__(
        self,
        frames,
        patch: int = 50,
        stride: int = 10,
        n_in: int = 4,
        n_out: int = 4,
        max_frame: int | None = None,
        climatology: np.ndarray | None = None,
        interpolated: np.ndarray | None = None,
        clim_input: bool = False,
    ) -> None:
        if isinstance(frames, torch.Tensor):
            frames = frames.detach().cpu().numpy()
        frames = np.asarray(frames)
        if frames.ndim != 3:
            raise GlacierError(f"frames must be (T, H, W), got shape {frames.shape}")
        if frames.dtype != np.float32 or min(frames.strides, default=0) < 0:
            frames = np.ascontiguousarray(frames, dtype=np.float32)  # torch needs strides ≥ 0
        if n_in < 1 or n_out < 1:
            raise GlacierError(
                f"a sequence needs at least 1 input and 1 target frame (got {n_in} and {n_out})"
            )
        t_all = frames.shape[0]
        if max_frame is not None:
            if not 1 <= max_frame <= t_all:
                raise GlacierError(
                    f"--max-frame {max_frame} is outside the {t_all} frames: use 1…{t_all}"
                )
            frames = frames[:max_frame]
        t, h, w = frames.shape
        if t < n_in + n_out:
            raise GlacierError(
                f"only {t} frames, but a sequence needs {n_in} + {n_out} = {n_in + n_out}: "
                "preprocess more years, raise --max-frame or use a smaller --window"
            )
        self.grid = patch_grid(h, w, patch, stride)
        self.frames = frames
        self.climatology = None
        if climatology is not None:
            climatology = np.ascontiguousarray(climatology, dtype=np.float32)[:t]
            if climatology.shape != frames.shape:
                raise GlacierError(
                    f"climatology {climatology.shape} does not match the frames {frames.shape}"
                )
            self.climatology = climatology
        elif clim_input:
            raise GlacierError("clim_input needs the climatology frames (climatology=…)")
        self.clim_input = bool(clim_input)
        self.interpolated = (
            np.zeros(t, bool) if interpolated is None else np.asarray(interpolated, bool)[:t]
        )
        self.patch, self.stride, self.n_in, self.n_out = patch, stride, n_in, n_out
        self.max_frame = max_frame
        self.n_starts = t - (n_in + n_out) + 1
        self.n_positions = self.grid[0] * self.grid[1]
        # numpy view for the batch gather (numpy fancy indexing on a strided view is ~5× faster
        # than torch's here); torch view for single items (slicing a tensor view costs µs).
        self._make_views()

    def _make_views(self) -> None:
        # both (T, nR, nC, P, P), sharing the frames' memory
        self._np_windows = extract_patches(self.frames, self.patch, self.stride)
        with _quiet_readonly():
            self._windows = extract_patches(torch.from_numpy(self.frames), self.patch, self.stride)
        self._np_clim = (
            None
            if self.climatology is None
            else extract_patches(self.climatology, self.patch, self.stride)
        )

    def __getstate__(self) -> dict:
        # DataLoader workers started by spawn/forkserver receive the dataset pickled: send the
        # frames once, not the strided views (pickling a view would expand it ~P²/stride² fold).
        state = self.__dict__.copy()
        del state["_np_windows"], state["_windows"], state["_np_clim"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._make_views()

    @classmethod
    def from_file(cls, path: str | os.PathLike, **kwargs) -> SequenceDataset:
        """Build from a ``frames.npz`` written by ``glacier-movement preprocess``."""
        return cls(io.read_frames(path).frames, **kwargs)

    # -- geometry -------------------------------------------------------------------------------
    @property
    def starts(self) -> np.ndarray:
        """Start frame of every sequence start, (n_starts,) int: 0 … n_starts − 1."""
        return np.arange(self.n_starts)

    @property
    def length(self) -> int:
        """Frames per sequence (n_in + n_out)."""
        return self.n_in + self.n_out

    def __len__(self) -> int:
        return self.n_starts * self.n_positions

    def position(self, i):
        """(start, row, col) of sequence index ``i`` (an int or an int array, vectorised)."""
        scalar = np.ndim(i) == 0
        i = np.asarray(i, dtype=np.int64)
        s, rem = np.divmod(i, self.n_positions)
        r, c = np.divmod(rem, self.grid[1])
        if scalar:
            return int(s), int(r), int(c)
        return s, r, c

    def index(self, start, row, col):
        """Inverse of :meth:`position` (vectorised)."""
        return (np.asarray(start) * self.grid[0] + np.asarray(row)) * self.grid[1] + np.asarray(col)

    def pixel_origin(self, row, col) -> tuple:
        """Top-left pixel (y, x) in the frame of patch (row, col)."""
        return np.asarray(row) * self.stride, np.asarray(col) * self.stride

    def target_frames(self, i):
        """First and last frame index used as a target by sequence(s) ``i``."""
        s = np.asarray(i, dtype=np.int64) // self.n_positions
        return s + self.n_in, s + self.length - 1

    # -- access ---------------------------------------------------------------------------------
    def _check(self, idx: np.ndarray) -> np.ndarray:
        n = len(self)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            bad = idx[(idx < -n) | (idx >= n)][0]
            raise IndexError(f"sequence index {bad} out of range for {n} sequences")
        return np.where(idx < 0, idx + n, idx)

    def __getitem__(self, i):
        if isinstance(i, list | tuple | np.ndarray | torch.Tensor) and np.ndim(i) > 0:
            return self.batch(i)
        i = int(i)
        i = int(self._check(np.array([i]))[0])
        if self.clim_input:
            x, y = self.batch([i])
            return x[0], y[0]
        s, r, c = self.position(i)
        x = self._windows[s : s + self.n_in, r, c]
        y = self._windows[s + self.n_in : s + self.length, r, c]
        return x, y

    def take(self, stack: str, frame_idx: np.ndarray, row: np.ndarray, col: np.ndarray):
        """Patches of ``stack`` ("frames" or "clim") at frame indices ``frame_idx`` (B, k) and patch
        positions ``row``, ``col`` (B,) → (B, k, P, P) float32 (a copy)."""
        windows = self._np_windows if stack == "frames" else self._np_clim
        if windows is None:
            raise GlacierError("this dataset has no climatology: build it with climatology=…")
        return windows[np.asarray(frame_idx), np.asarray(row)[:, None], np.asarray(col)[:, None]]

    def observed_targets(self, i) -> np.ndarray:
        """Whether every target window of sequence(s) ``i`` was observed (not interpolated)."""
        first, _ = self.target_frames(i)
        first = np.asarray(first).reshape(-1, 1)
        return ~self.interpolated[first + np.arange(self.n_out)].any(axis=1)

    def batch(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        """Sequences ``indices`` as one batch: x (B, n_in, P, P), y (B, n_out, P, P), float32.

        One numpy fancy-indexing gather per tensor on the strided patch view; only the batch is
        copied (contiguous, fresh memory).
        """
        if isinstance(indices, torch.Tensor):
            indices = indices.cpu().numpy()
        idx = self._check(np.asarray(indices, dtype=np.int64).reshape(-1))
        s, r, c = self.position(idx)
        r, c = r[:, None], c[:, None]
        x = self._np_windows[s[:, None] + np.arange(self.n_in), r, c]
        y = self._np_windows[s[:, None] + np.arange(self.n_in, self.length), r, c]
        if self.clim_input:
            x = np.concatenate([x, self._np_clim[s[:, None] + np.arange(self.length), r, c]], 1)
        return torch.from_numpy(x), torch.from_numpy(y)

    def __repr__(self) -> str:
        t, h, w = self.frames.shape
        return (
            f"SequenceDataset({len(self):,} sequences: {self.n_starts} starts × "
            f"{self.grid[0]}×{self.grid[1]} patches of {self.patch} px, stride {self.stride}, "
            f"{self.n_in}→{self.n_out} frames, from {t} frames of {h}×{w})"
        )


class ConcatSequences(Dataset):
    """Several :class:`SequenceDataset` (e.g. Parvati + Aletsch for experiment 3) as one.

    Indices run through the parts in order; :meth:`batch` gathers each part's share in one go and
    returns the batch in the requested order. :func:`split_indices` splits every part on its own
    (each glacier chronologically) and joins the results.
    """

    def __init__(self, parts: Sequence[SequenceDataset]) -> None:
        if not parts:
            raise GlacierError("no datasets to concatenate")
        first = parts[0]
        for p in parts[1:]:
            if (p.patch, p.n_in, p.n_out) != (first.patch, first.n_in, first.n_out):
                raise GlacierError(
                    "datasets to mix must share patch size and sequence lengths "
                    f"(got {first.patch}/{first.n_in}/{first.n_out} and {p.patch}/{p.n_in}/{p.n_out})"
                )
        self.parts = list(parts)
        self.offsets = np.cumsum([0] + [len(p) for p in parts])
        self.patch, self.n_in, self.n_out = first.patch, first.n_in, first.n_out

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def locate(self, i):
        """(part, index within that part) of global index ``i`` (vectorised)."""
        i = np.asarray(i, dtype=np.int64)
        part = np.searchsorted(self.offsets, i, side="right") - 1
        return part, i - self.offsets[part]

    def __getitem__(self, i):
        if isinstance(i, list | tuple | np.ndarray | torch.Tensor) and np.ndim(i) > 0:
            return self.batch(i)
        i = int(i)
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"sequence index {i} out of range for {n} sequences")
        part, local = self.locate(i % n)
        return self.parts[int(part)][int(local)]

    def batch(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(indices, torch.Tensor):
            indices = indices.cpu().numpy()
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(self)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"sequence index out of range for {n} sequences")
        part, local = self.locate(idx % n if n else idx)
        p = self.patch
        x = y = None
        for k in np.unique(part):
            sel = torch.from_numpy(np.flatnonzero(part == k))
            xk, yk = self.parts[int(k)].batch(local[sel.numpy()])
            if x is None or y is None:
                # the parts' channels: n_in frames, and the climatology too for the +clim models
                x = torch.empty((idx.size, *xk.shape[1:]), dtype=torch.float32)
                y = torch.empty((idx.size, *yk.shape[1:]), dtype=torch.float32)
            x[sel], y[sel] = xk, yk
        if x is None or y is None:
            x = torch.empty((0, self.n_in, p, p), dtype=torch.float32)
            y = torch.empty((0, self.n_out, p, p), dtype=torch.float32)
        return x, y


# ------------------------------------------------------------------------------------ splits
@dataclass(frozen=True)
class Split:
    """Train / validation / test sequence indices (int64 arrays, each in index = time order).

    ``dropped`` counts training/validation candidates removed by the strict gap;
    ``test_target_frames`` is the (first, last) frame index that some test sequence predicts
    (None for a mix of glaciers: see ``parts``).
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    mode: str
    n_total: int
    dropped: int = 0
    test_target_frames: tuple[int, int] | None = None
    parts: tuple[Split, ...] = field(default=())

    @property
    def counts(self) -> dict[str, int]:
        return {
            "train": len(self.train),
            "val": len(self.val),
            "test": len(self.test),
            "dropped": self.dropped,
        }

    def describe(self) -> str:
        """One line: the counts and shares of each part and what the strict gap removed."""
        n = max(self.n_total, 1)
        parts = ", ".join(
            f"{k} {v:,} ({100 * v / n:.1f} %)" for k, v in self.counts.items() if k != "dropped"
        )
        text = f"{self.mode} split of {self.n_total:,} sequences: {parts}"
        if self.mode == "strict":
            text += f"; {self.dropped:,} dropped by the gap"
        if self.test_target_frames is not None:
            a, b = self.test_target_frames
            text += f"; test targets are frames {a}–{b}"
        return text


def _floor(x: float) -> int:
    return math.floor(x + 1e-9)  # 0.8 · 10 must give 8 despite binary fractions


def split_indices(
    dataset: SequenceDataset | ConcatSequences,
    mode: str = "paper",
    test_fraction: float = 0.2,
    val_fraction: float = 0.1,
) -> Split:
    """Chronological train/val/test split of a dataset's sequence indices.

    Sequences are ordered by (start, row, col) — the dataset's index order, which is time order.
    - ``paper``: test = the last ``test_fraction`` (20 %); of the first part, validation = its
      last ``val_fraction`` (10 %, i.e. the most recent sequences before the test set) and
      training = the rest. (The original took the same shares but in directory-listing order.)
    - ``strict``: test as in ``paper``; from the first part, every sequence that contains — as
      input or target — a frame that is a target frame of any test sequence is dropped (a gap of
      n_in + n_out − 1 starts before the first test start), and so is every sequence that holds a
      window interpolated from a test-period frame (interpolated windows right before the first
      test target); then the rest is split the same way into training and validation. No test
      target is ever seen in training or validation.
    Counts are floors: train+val = ⌊N·(1 − test_fraction)⌋, train = ⌊that·(1 − val_fraction)⌋.
    """
    if mode not in SPLIT_MODES:
        raise GlacierError(f"unknown split mode {mode!r}: use one of {', '.join(SPLIT_MODES)}")
    if not 0 < test_fraction < 1 or not 0 <= val_fraction < 1:
        raise GlacierError(
            f"split fractions must satisfy 0 < test < 1 and 0 ≤ val < 1 (got {test_fraction}, {val_fraction})"
        )
    if isinstance(dataset, ConcatSequences):
        subs = [split_indices(p, mode, test_fraction, val_fraction) for p in dataset.parts]
        join = [
            np.concatenate(
                [getattr(s, k) + off for s, off in zip(subs, dataset.offsets, strict=False)]
            )
            for k in ("train", "val", "test")
        ]
        return Split(
            *join,
            mode=mode,
            n_total=len(dataset),
            dropped=sum(s.dropped for s in subs),
            parts=tuple(subs),
        )

    n = len(dataset)
    n_first = _floor(n * (1 - test_fraction))
    test = np.arange(n_first, n, dtype=np.int64)
    candidates = np.arange(n_first, dtype=np.int64)
    if not len(test) or not n_first:
        raise GlacierError(
            f"{n} sequences are too few for a {test_fraction:.0%} test split: use more frames or a smaller patch"
        )
    first_target = int(dataset.target_frames(test[0])[0])
    last_target = int(dataset.target_frames(test[-1])[1])
    dropped = 0
    if mode == "strict":
        # windows interpolated just before the test period were filled from a test frame: they
        # belong to the gap too
        gap_start = first_target
        interpolated = getattr(dataset, "interpolated", None)
        while interpolated is not None and gap_start > 0 and interpolated[gap_start - 1]:
            gap_start -= 1
        # a candidate uses frames [s, s + length − 1]; keep it if that misses [gap_start, last]
        s = candidates // dataset.n_positions
        keep = (s + dataset.length - 1 < gap_start) | (s > last_target)
        dropped = int((~keep).sum())
        candidates = candidates[keep]
        if not len(candidates):
            raise GlacierError(
                f"the strict split of {n} sequences leaves no training sequences "
                f"({dropped} fall in the gap before the test set): use more frames or --split paper"
            )
    n_train = _floor(len(candidates) * (1 - val_fraction))
    if n_train == 0:
        raise GlacierError(
            f"{n} sequences leave no training sequences in the {mode} split: use more frames"
        )
    return Split(
        train=candidates[:n_train],
        val=candidates[n_train:],
        test=test,
        mode=mode,
        n_total=n,
        dropped=dropped,
        test_target_frames=(first_target, last_target),
    )


def bootstrap_resample(
    test_indices: np.ndarray, n_boot: int, rng: np.random.Generator | int | None = None
) -> Iterator[np.ndarray]:
    """Yield ``n_boot`` resamples (with replacement, same size) of ``test_indices``.

    One array at a time, so 2,000 resamples of 33,501 test sequences never sit in memory
    together. Reproducible for a given seed / Generator. (For confidence intervals of a metric
    already computed per sequence, ``scipy.stats.bootstrap`` on those values is cheaper.)
    """
    rng = np.random.default_rng(rng)
    test_indices = np.asarray(test_indices)
    if n_boot < 1 or not len(test_indices):
        raise GlacierError(
            f"bootstrap needs n_boot ≥ 1 and a non-empty test set (got {n_boot}, {len(test_indices)})"
        )
    for _ in range(n_boot):
        yield test_indices[rng.integers(0, len(test_indices), len(test_indices))]


# ------------------------------------------------------------------------------------ loading
class IndexBatchSampler(Sampler):
    """Yields batches (int64 arrays) of the given dataset indices, for ``DataLoader(batch_size=None)``.

    The order of epoch e is a permutation drawn from ``torch.Generator().manual_seed(seed + e)``
    (as ``DistributedSampler`` does), so any epoch can be reproduced, e.g. after a resume. The
    epoch advances by one each time iteration starts; :meth:`set_epoch` sets it explicitly.
    With ``distributed`` each rank gets its own share through a ``DistributedSampler`` over the
    subset (``num_replicas``/``rank`` default to the initialised process group).
    """

    def __init__(
        self,
        indices,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        distributed: bool = False,
        num_replicas: int | None = None,
        rank: int | None = None,
    ) -> None:
        if (
            isinstance(batch_size, bool)
            or not isinstance(batch_size, int | np.integer)
            or batch_size < 1
        ):
            raise GlacierError(f"batch size must be a whole number ≥ 1 (got {batch_size!r})")
        self.indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        self.batch_size, self.shuffle = int(batch_size), shuffle
        self.seed, self.drop_last = seed, drop_last
        self.epoch = 0
        self._dist = None
        if distributed:
            if num_replicas is None and not (
                torch.distributed.is_available() and torch.distributed.is_initialized()
            ):
                raise GlacierError(
                    "distributed loading needs an initialised process group (run under torchrun) "
                    "or explicit num_replicas and rank"
                )
            self._dist = DistributedSampler(
                range(len(self.indices)),
                num_replicas=num_replicas,
                rank=rank,
                shuffle=shuffle,
                seed=seed,
                drop_last=drop_last,
            )

    def set_epoch(self, epoch: int) -> None:
        """Use the order of ``epoch`` for the next iteration (call before each epoch when resuming)."""
        self.epoch = int(epoch)

    def _order(self, epoch: int) -> np.ndarray:
        if self._dist is not None:
            self._dist.set_epoch(epoch)
            return np.fromiter(iter(self._dist), dtype=np.int64, count=len(self._dist))
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + epoch)
            return torch.randperm(len(self.indices), generator=g).numpy()
        return np.arange(len(self.indices))

    def _n_items(self) -> int:
        return len(self._dist) if self._dist is not None else len(self.indices)

    def __len__(self) -> int:
        n = self._n_items()
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[np.ndarray]:
        epoch, self.epoch = self.epoch, self.epoch + 1
        chosen = self.indices[self._order(epoch)]
        for b in range(len(self)):
            yield chosen[b * self.batch_size : (b + 1) * self.batch_size]


def make_loader(
    dataset: SequenceDataset | ConcatSequences,
    indices,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    distributed: bool = False,
    *,
    drop_last: bool = False,
    num_replicas: int | None = None,
    rank: int | None = None,
    num_workers: int = 0,
    pin_memory: bool = False,
) -> DataLoader:
    """A DataLoader over ``indices`` of ``dataset`` yielding (x (B, n_in, P, P), y (B, n_out, P, P)).

    Each batch is one vectorised gather (:meth:`SequenceDataset.batch`), not B item lookups and a
    collate: the sampler is an :class:`IndexBatchSampler` and the loader has ``batch_size=None``.
    The sampler is ``loader.sampler``; ``loader.sampler.set_epoch(e)`` picks epoch e's order.
    ``num_workers=0`` is the default because a batch of 100 takes milliseconds.
    """
    sampler = IndexBatchSampler(
        indices,
        batch_size,
        shuffle=shuffle,
        seed=seed,
        drop_last=drop_last,
        distributed=distributed,
        num_replicas=num_replicas,
        rank=rank,
    )
    return DataLoader(
        dataset, batch_size=None, sampler=sampler, num_workers=num_workers, pin_memory=pin_memory
    )


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
        a, b = sp.test_target_frames
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


def _example_indices(ds: SequenceDataset, k: int) -> np.ndarray:
    """``k`` sequences worth looking at: spread over the starts, each at the patch whose ice
    fraction in its last input frame is closest to one half (the ice edge, where motion shows)."""
    starts = np.unique(np.linspace(0, ds.n_starts - 1, k).round().astype(np.int64))
    out = []
    for s in starts:
        frac = (extract_patches(ds.frames[s + ds.n_in - 1], ds.patch, ds.stride) > 0).mean(
            axis=(-2, -1)
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
        a, b = sp.test_target_frames
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
    out_json = paths.glacier_dir / "sequences.json"
    with io.atomic_path(out_json) as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    settings.write(s, paths.settings_file("sequences"), "sequences")

    print(f"{cfg.name}: {ds!r}")
    _print_table(ds, splits, s.split)
    print(f"wrote {out_json}")
    if s.examples > 0:
        print(f"wrote {_examples_figure(ds, fr, s.examples, paths.figures_dir, cfg.name)}")
    if s.export_files:
        out = export_files(ds, s.export_files, splits=splits)
        print(f"exported {len(ds):,} sequences to {out}")
    return summary


def _examples_figure(
    ds: SequenceDataset, fr: io.Frames, k: int, folder: Path, glacier: str
) -> Path:
    """``folder/sequence_examples.png``: ``k`` example sequences at the ice edge."""
    ex = _example_indices(ds, k)
    x, y = ds.batch(ex)
    s, r, c = ds.position(ex)
    labels = [[str(fr.window_start[k])[:7] for k in range(si, si + ds.length)] for si in s.tolist()]
    titles = [
        f"start {si} · patch ({ri}, {ci})\nat y {ri * ds.stride}, x {ci * ds.stride} px"
        for si, ri, ci in zip(s.tolist(), r.tolist(), c.tolist(), strict=True)
    ]
    fig_path = folder / "sequence_examples.png"
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
