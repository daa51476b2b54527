"""Patches of frames: the patch grid, extracting (views, no copy) and stitching back."""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import GlacierError


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
