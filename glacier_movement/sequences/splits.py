"""Train/validation/test splits (paper and strict modes), the bootstrap resample, and the batch
sampler and loader that read them."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler, Sampler

from ..errors import GlacierError
from .dataset import ConcatSequences, SequenceDataset

SPLIT_MODES = ("paper", "strict")


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
                cast(Any, range(len(self.indices))),  # it needs only len()
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
