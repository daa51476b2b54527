"""The sequences a run trains and validates on, the climatology baseline's loss on them, batched
loss evaluation (MSE per pixel, NDSI²)."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import config, io
from ..baselines import forecast, glacier_sequences
from ..errors import DataError, GlacierError
from ..sequences import ConcatSequences, split_indices


# --------------------------------------------------------------------------------------- data
def load_sequences(
    root: str | os.PathLike,
    glaciers: str | config.GlacierConfig | Sequence[str | config.GlacierConfig],
    patch: int,
    stride: int,
    split: str = "paper",
    clim_input: bool = False,
) -> tuple[tuple[Any, np.ndarray], tuple[Any, np.ndarray], dict[str, Any]]:
    """The training and validation sequences of one or several glaciers (names or configs).

    Each glacier's frames (``<root>/<glacier>/frames.npz``) become a ``SequenceDataset`` (only its
    training frames: Aletsch's first 19) that knows its climatology and interpolated windows
    (``baselines.glacier_sequences``); with ``clim_input`` its batches carry the climatology for
    the ``+clim`` models. Several glaciers are concatenated and every glacier is split
    chronologically on its own. Returns ``(dataset, train_indices)``, ``(dataset, val_indices)``
    and a description, which holds the climatology baseline's validation MSE.
    """
    gl = [glaciers] if isinstance(glaciers, str | config.GlacierConfig) else list(glaciers)
    if not gl:
        raise GlacierError("no glacier given: pass --glacier NAME (several for mixed training)")
    root = Path(root)
    cfgs = [g if isinstance(g, config.GlacierConfig) else config.get_glacier(g, root) for g in gl]
    parts = []
    for cfg in cfgs:
        path = config.Paths(root, cfg.name).frames
        if not path.is_file():
            raise DataError(
                f"no frames for {cfg.name} at {path}: run `glacier-movement preprocess --glacier "
                f"{cfg.name}` first (after `synthesize` or `acquire`)"
            )
        parts.append(
            glacier_sequences(io.read_frames(path), cfg.train_frames, patch, stride, clim_input)
        )
    datasets = [d for d, _ in parts]
    ds = datasets[0] if len(datasets) == 1 else ConcatSequences(datasets)
    sp = split_indices(ds, split)
    if not len(sp.val):
        raise GlacierError(
            f"the {split} split of {len(ds)} sequences leaves no validation sequences: use more "
            "frames or a smaller patch/stride"
        )
    info = {
        "glaciers": [cfg.name for cfg in cfgs],
        "n_sequences": len(ds),
        "climatology_val_loss": _climatology_loss(parts, ds, sp.val),
        **sp.counts,
    }
    return (ds, sp.train), (ds, sp.val), info


def _climatology_loss(parts: list, ds: Any, idx: np.ndarray) -> float:
    """MSE per pixel of the climatology baseline on sequences ``idx`` of ``ds`` (one part or a
    ``ConcatSequences`` of ``parts``: (dataset, Reference) pairs of ``glacier_sequences``)."""
    sse, n = 0.0, 0
    offsets = getattr(ds, "offsets", np.array([0, len(ds)]))
    for (part, ref), lo, hi in zip(parts, offsets[:-1], offsets[1:], strict=True):
        local = idx[(idx >= lo) & (idx < hi)] - lo
        for a in range(0, len(local), 4096):
            b = local[a : a + 4096]
            s, r, c = part.position(b)
            take = lambda st, fi, p=part, r=r, c=c: p.take(st, fi, r, c)  # noqa: E731
            pred = forecast("climatology", ref, s, take)
            target_idx = s[:, None] + part.n_in + np.arange(part.n_out)
            err = pred - part.take("frames", target_idx, r, c)
            sse += float(np.square(err, dtype=np.float64).sum())
            n += err.size
    return sse / n if n else math.nan


def _fetch(ds, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch ``idx`` of a dataset: one vectorised gather where the dataset offers it
    (``SequenceDataset.batch``, ``TensorDataset`` fancy indexing), else item by item."""
    if hasattr(ds, "batch"):
        return ds.batch(idx)
    if isinstance(ds, torch.utils.data.TensorDataset):
        x, y = ds[torch.as_tensor(idx)]
        return x, y
    return torch.utils.data.default_collate([ds[int(i)] for i in idx])


def _val_batches(indices: np.ndarray, batch_size: int, rank: int = 0, world: int = 1):
    mine = indices[rank::world]
    return [mine[a : a + batch_size] for a in range(0, len(mine), batch_size)]


@torch.no_grad()
def evaluate_loss(
    model: nn.Module,
    data: tuple[Any, np.ndarray],
    batch_size: int = 100,
    device: str | torch.device = "cpu",
    amp: bool = False,
    rank: int = 0,
    world: int = 1,
) -> float:
    """Mean squared error per pixel of ``model`` (eval mode, no teacher forcing) over
    ``data = (dataset, indices)``; with ``world > 1`` each rank scores its share and the result
    is reduced over the process group."""
    ds, idx = data
    was_training = model.training
    model.eval()
    device = torch.device(device)
    total = torch.zeros(2, dtype=torch.float64, device=device)
    try:
        for b in _val_batches(np.asarray(idx), batch_size, rank, world):
            x, y = (t.to(device, non_blocking=True) for t in _fetch(ds, b))
            with _autocast(device, amp):
                pred = model(x)
            total[0] += F.mse_loss(pred.float(), y, reduction="sum").double()
            total[1] += y.numel()
    finally:
        model.train(was_training)
    if world > 1:
        torch.distributed.all_reduce(total)
    return float(total[0] / total[1]) if total[1] else math.nan


def _autocast(device: torch.device, amp: bool):
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
