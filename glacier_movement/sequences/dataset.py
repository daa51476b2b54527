"""The patch-sequence datasets: :class:`SequenceDataset` over one glacier's frames (indices, no
file per sequence) and :class:`ConcatSequences` over several."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .. import io
from ..errors import GlacierError
from .patches import _quiet_readonly, extract_patches, patch_grid

#: Bytes the original's layout spends per sequence: two pickled float32 (4, 50, 50) arrays.
ORIGINAL_BYTES_PER_SEQUENCE = 2 * 4 * 50 * 50 * 4


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
        s, r, c = self.positions(np.asarray(i, dtype=np.int64))
        if np.ndim(i) == 0:
            return int(s), int(r), int(c)
        return s, r, c

    def positions(self, i: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(start, row, col) arrays of the int64 index array ``i``."""
        s, rem = np.divmod(i, self.n_positions)
        r, c = np.divmod(rem, self.grid[1])
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

    def __getitem__(self, i: Any):
        if np.ndim(i) > 0 and isinstance(i, list | tuple | np.ndarray | torch.Tensor):
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
        return np.asarray(~self.interpolated[first + np.arange(self.n_out)].any(axis=1))

    def batch(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        """Sequences ``indices`` as one batch: x (B, n_in, P, P), y (B, n_out, P, P), float32.

        One numpy fancy-indexing gather per tensor on the strided patch view; only the batch is
        copied (contiguous, fresh memory).
        """
        if isinstance(indices, torch.Tensor):
            indices = indices.cpu().numpy()
        idx = self._check(np.asarray(indices, dtype=np.int64).reshape(-1))
        s, r, c = self.positions(idx)
        r, c = r[:, None], c[:, None]
        x = self._np_windows[s[:, None] + np.arange(self.n_in), r, c]
        y = self._np_windows[s[:, None] + np.arange(self.n_in, self.length), r, c]
        if self.clim_input:
            if self._np_clim is None:
                raise GlacierError("this dataset has no climatology: build it with climatology=…")
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

    def __getitem__(self, i: Any):
        if np.ndim(i) > 0 and isinstance(i, list | tuple | np.ndarray | torch.Tensor):
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
