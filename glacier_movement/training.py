"""Training: the loop, checkpoints, exact resume, Weights & Biases, DistributedDataParallel (docs/models.md).

``glacier-movement train --glacier G --model NAME --preset demo`` (or :func:`train_model`) trains
one model on a glacier's patch sequences (or on several glaciers' sequences together) and writes,
under ``<data-root>/models/<run>/``:

- ``last.pt`` — every ``ckpt_every`` steps and at the end: model, optimizer, step, epoch, the
  position inside the epoch, RNG states (torch, numpy, python) and the configuration, as plain
  types (loadable with ``torch.load(..., weights_only=True)``); ``best.pt`` — the same at the
  lowest full-validation loss so far (the original kept only the last);
- ``losses.csv`` (step, train_loss, val_loss; val_loss every ``val_every`` steps) and
  ``epochs.csv`` (epoch, train_loss, val_loss: mean training loss and a full validation pass per
  epoch; a run stopped by ``max_steps`` inside an epoch gets a fractional epoch row);
- ``summary.json`` — the final metrics, beside the persistence baseline's validation loss.

Resume: ``--resume`` reloads ``last.pt`` and continues with the same batch order (epoch e's order
is drawn from ``seed + e``; the batches already done are skipped), so a killed run ends with the
same weights as an uninterrupted one (deterministic CPU, one process).

Under ``torchrun --nproc_per_node=N`` the same command trains with DistributedDataParallel (gloo
on CPU, NCCL on CUDA): every process sees its share of each epoch's batches (``--batch-size`` is
per process), losses are averaged over processes, and only rank 0 logs and writes files.

The loop is a small :class:`Trainer`: a :class:`TrainState` (what a checkpoint saves and a resume
restores) and :class:`Callback` objects for the rest — :class:`Validation` (a batch every
``val_every`` steps), :class:`CsvLogs`, :class:`Wandb`, :class:`ProgressBar` and
:class:`Checkpointing` (``last.pt``, ``best.pt``, signals). The checkpoint format, loading and
the RNG states are in :mod:`glacier_movement.checkpoints`.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from . import config, io, locks, settings, signals
from .baselines import forecast, glacier_sequences
from .catalog import Catalog, RunPaths
from .checkpoints import (
    CHECKPOINT_FORMAT,
    announce_device,
    cuda_warning,
    device_report,
    load_checkpoint,
    load_model,
    load_weights,
    plain,
    resolve_checkpoint,
    resolve_device,
    restore_rng,
    rng_states,
    save_checkpoint,
    seed_all,
)
from .errors import DataError, GlacierError
from .models import MODELS, TRAINABLE, Persistence, build_model, count_parameters
from .models.convlstm import resolve_channels
from .presets import Preset, TrainConfig, check_train_bounds, get_preset, override
from .sequences import ConcatSequences, IndexBatchSampler, split_indices
from .settings import SettingsError, device_option, option, wandb_option

__all__ = [
    "CHECKPOINT_FORMAT",
    "TrainResult",
    "TrainState",
    "Trainer",
    "Callback",
    "default_run_name",
    "load_sequences",
    "fit",
    "train_model",
    "load_checkpoint",
    "load_model",
    "resolve_checkpoint",
    "resolve_device",
    "announce_device",
    "device_report",
    "cuda_warning",
    "evaluate_loss",
    "TrainSettings",
    "run",
]

WANDB_MODES = settings.WANDB_MODES
#: Settings a resumed run must keep (changing them would not continue the same run).
_LOCKED = (
    "lr", "weight_decay", "batch_size", "optimizer", "clip_value", "seed", "teacher_forcing",
)  # fmt: skip


# ------------------------------------------------------------------------------------ results
@dataclass
class TrainResult:
    """What a training run produced. Losses are MSE per pixel (NDSI²)."""

    run_dir: Path
    last: Path  # last.pt
    best: Path | None  # best.pt (None if no validation pass ran)
    step: int  # optimisation steps done
    epoch: float  # epochs done (fractional when stopped by max_steps)
    train_loss: float  # mean training loss of the last (partial) epoch
    val_loss: float  # full validation pass at the end
    best_val_loss: float
    persistence_val_loss: float  # the baseline on the same validation sequences
    seconds: float  # training wall time, summed over resumes
    n_train: int
    n_val: int
    completed: bool  # all epochs (or max_steps) done

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("run_dir", "last", "best"):
            d[k] = None if d[k] is None else str(d[k])
        return d


#: The name a run gets without ``run_name`` (catalog.py names every output).
default_run_name = Catalog.run_name


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


# --------------------------------------------------------------------------------- CSV logging
class _Csv:
    """Append-only CSV that keeps rows whose first column passes ``keep`` when reopened."""

    def __init__(self, path: Path, header: Sequence[str], keep=None):
        self.path = path
        rows: list[list[str]] = []
        if keep is not None and path.is_file():
            with open(path, newline="") as f:
                r = csv.reader(f)
                if next(r, None) == list(header):
                    rows = [row for row in r if row and keep(float(row[0]))]
        with io.atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(rows)
        self._f = open(path, "a", newline="", buffering=1)  # noqa: SIM115 - closed in close()
        self._w = csv.writer(self._f)

    def write(self, *row) -> None:
        try:
            self._w.writerow(
                ["" if v is None else (f"{v:.8g}" if isinstance(v, float) else v) for v in row]
            )
        except OSError as e:  # appended, not written through atomic_path: say it the same way
            if e.errno in (errno.ENOSPC, errno.EFBIG):
                raise GlacierError(
                    f"cannot write {self.path}: {e.strerror}; free disk space and run again with --resume"
                ) from e
            raise

    def close(self) -> None:
        # a row that could not be flushed was reported by write(); do not mask that error here
        with contextlib.suppress(OSError):
            self._f.close()


# ----------------------------------------------------------------------------- distributed
@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owned: bool = False  # we initialised the process group (and destroy it)

    @property
    def main(self) -> bool:
        return self.rank == 0


def _dist_backend(device: torch.device) -> str:
    """NCCL on CUDA, gloo on the CPU; ``$GLACIER_DIST_BACKEND=gloo`` lets several ranks share
    one GPU (NCCL allows one rank per GPU), e.g. to try DDP on a one-GPU machine."""
    backend = os.environ.get("GLACIER_DIST_BACKEND") or (
        "nccl" if device.type == "cuda" else "gloo"
    )
    if backend not in ("nccl", "gloo"):
        raise GlacierError(f"GLACIER_DIST_BACKEND={backend!r} is not a backend: use nccl or gloo")
    return backend


def _check_gpu_count(local_rank: int, n_gpus: int, local_world: int | None = None) -> None:
    """One NCCL rank per GPU: a torchrun process without a GPU of its own is a one-line error
    (instead of NCCL's "Duplicate GPU detected" at the first collective)."""
    if n_gpus == 0:
        raise GlacierError(
            "--device cuda was asked for but no CUDA GPU is available: use --device cpu"
        )
    if local_rank >= n_gpus:
        started = local_world if local_world is not None else local_rank + 1
        raise GlacierError(
            f"torchrun started {started} processes on this node but torch sees {n_gpus} GPU(s): use "
            f"--nproc_per_node={n_gpus} (one process per GPU), or --device cpu"
        )


def _dist_setup(device: torch.device) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    backend = _dist_backend(device)
    if device.type == "cuda" and backend == "nccl" and device.index is None:
        local_world = os.environ.get("LOCAL_WORLD_SIZE")
        _check_gpu_count(
            int(os.environ.get("LOCAL_RANK", "0")),
            torch.cuda.device_count(),
            int(local_world) if local_world else None,
        )
    owned = False
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
        owned = True
    return _Dist(
        dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), owned
    )


# ------------------------------------------------------------------------------------- wandb
def _wandb_start(
    mode: str, project: str, cfg: dict[str, Any], root: Path, name: str, run_id: str | None
):
    """A wandb run (or None when disabled). Files go to ``<root>/wandb/``; offline never touches
    the network (upload later with ``wandb sync <root>/wandb/offline-run-*``)."""
    if mode not in WANDB_MODES:
        raise GlacierError(f"unknown wandb mode {mode!r}: use one of {', '.join(WANDB_MODES)}")
    if mode == "disabled":
        return None
    os.environ["WANDB_MODE"] = mode
    os.environ.setdefault("WANDB_SILENT", "true")
    import wandb  # slow to import (~1 s): only runs that log load it

    (root / "wandb").mkdir(parents=True, exist_ok=True)
    try:
        return wandb.init(
            project=project,
            config=cfg,
            dir=str(root),
            name=name,
            id=run_id,
            resume="allow" if run_id else None,
            mode=mode,
        )
    except wandb.errors.UsageError as e:  # pyright: ignore[reportAttributeAccessIssue] - lazy module
        raise GlacierError(
            f"wandb {mode} failed ({str(e).splitlines()[0][:120]}): run `wandb login` first, or use "
            "--wandb offline (upload later with `wandb sync`) or --wandb disabled"
        ) from None


# ---------------------------------------------------------------------------------- the loop
def _optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":  # the original's "adam" was AdamW
        return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise GlacierError(f"unknown optimizer {cfg.optimizer!r}: use adam (AdamW) or rmsprop")


@dataclass
class TrainState:
    """Where a run stands: saved in every checkpoint (these fields, in this order) and restored
    on resume. Losses are MSE per pixel (NDSI²)."""

    step: int = 0  # optimisation steps done
    epoch: int = 0  # complete epochs done
    batch_in_epoch: int = 0  # batches of the current epoch done (the position to resume at)
    epoch_loss_sum: float = 0.0  # sum of the current epoch's step losses …
    epoch_loss_count: int = 0  # … and their number
    best_val_loss: float = math.inf  # lowest full-validation loss so far (best.pt)
    seconds: float = 0.0  # training wall time of the previous sessions, s
    wandb_id: str | None = None  # the wandb run to continue

    def epoch_mean(self) -> float:
        """Mean training loss of the current epoch so far."""
        return self.epoch_loss_sum / max(self.epoch_loss_count, 1)


@dataclass
class StepLog:
    """One optimisation step, as the callbacks see it: ``val_loss`` is set (by
    :class:`Validation`, on rank 0) on the steps that score a validation batch."""

    step: int
    epoch: int  # the epoch the step belongs to (0-based)
    train_loss: float  # the step's loss, averaged over processes
    val_loss: float | None = None


class Callback:
    """What the training loop calls; every hook is optional (a no-op here).

    ``on_step`` after each optimisation step, ``on_validation`` after each full validation pass
    (end of an epoch, or the end of a run stopped inside one), ``on_end`` with the result, and
    ``close`` once, last, whether the run ended (``failed=False``) or raised (``failed=True``).
    Hooks run in the order of :attr:`Trainer.callbacks`; ``close`` in reverse order on failure.
    """

    def on_step(self, t: Trainer, log: StepLog) -> None:
        pass

    def on_validation(self, t: Trainer, epoch: float, train_loss: float, val_loss: float) -> None:
        pass

    def on_end(self, t: Trainer, result: TrainResult) -> None:
        pass

    def close(self, failed: bool) -> None:
        pass


@dataclass(eq=False)
class Trainer:
    """One run's model, optimizer, data and state, and the loop over them (:meth:`fit`).

    ``model`` is the bare model (validation, checkpoints); ``net`` is what trains (the model, or
    its DistributedDataParallel wrapper). ``train``/``val`` are ``(dataset, indices)``.
    """

    model_name: str
    model: nn.Module
    net: nn.Module
    opt: torch.optim.Optimizer
    cfg: TrainConfig
    train: tuple[Any, np.ndarray]
    val: tuple[Any, np.ndarray]
    sampler: IndexBatchSampler
    device: torch.device
    amp: bool
    dd: _Dist
    run_dir: Path
    record: dict[str, Any]  # the checkpoints' ``config`` (plain types)
    persistence: float  # the persistence baseline's validation loss
    state: TrainState
    t_start: float  # time.perf_counter() when this session started
    callbacks: list[Callback] = field(default_factory=list)
    val_loss: float = math.nan  # the last full validation pass
    final_train: float = math.nan  # mean training loss of the last complete epoch

    @property
    def last_path(self) -> Path:
        return RunPaths(self.run_dir).last

    @property
    def best_path(self) -> Path:
        return RunPaths(self.run_dir).best

    @property
    def steps_per_epoch(self) -> int:
        return len(self.sampler)

    @property
    def total_steps(self) -> int:
        total = self.cfg.epochs * self.steps_per_epoch
        return total if self.cfg.max_steps is None else min(total, self.cfg.max_steps)

    def seconds(self) -> float:
        """Training wall time so far, summed over resumes, s."""
        return self.state.seconds + time.perf_counter() - self.t_start

    def fit(self) -> TrainResult:
        """The loop: epochs of batches in the sampler's order, from where the state stands."""
        s = self.state
        failed = True
        try:
            self.net.train()
            while s.step < self.total_steps:
                epoch, skip = s.epoch, s.batch_in_epoch
                self.sampler.set_epoch(epoch)
                for b, idx in enumerate(self.sampler):
                    if b < skip:
                        continue  # batches done before the resume: same order, so skip them
                    if s.step >= self.total_steps:
                        break
                    loss = self.train_step(idx)
                    s.step, s.batch_in_epoch = s.step + 1, b + 1
                    s.epoch_loss_sum += loss
                    s.epoch_loss_count += 1
                    log = StepLog(s.step, epoch, loss)
                    for cb in self.callbacks:
                        cb.on_step(self, log)
                if s.batch_in_epoch < self.steps_per_epoch:
                    break  # max_steps reached inside the epoch
                self.final_train = s.epoch_mean()
                s.epoch, s.batch_in_epoch = epoch + 1, 0
                s.epoch_loss_sum, s.epoch_loss_count = 0.0, 0
                self.validate(epoch + 1, self.final_train)
            result = self.finish()
            failed = False
            return result
        finally:
            for cb in reversed(self.callbacks) if failed else self.callbacks:
                cb.close(failed)

    def train_step(self, idx: np.ndarray) -> float:
        """One optimisation step on the training sequences ``idx``; the loss, averaged over
        processes. A non-finite loss stops the run with a one-line error."""
        x, y = (t.to(self.device, non_blocking=True) for t in _fetch(self.train[0], idx))
        self.opt.zero_grad(set_to_none=True)
        with _autocast(self.device, self.amp):
            # teacher forcing (the model is in training mode) unless the preset turns it off
            pred = self.net(x, y if self.cfg.teacher_forcing else None)
        loss = F.mse_loss(pred.float(), y)
        loss.backward()
        nn.utils.clip_grad_value_(self.model.parameters(), self.cfg.clip_value)
        self.opt.step()
        lval = loss.detach()
        if self.dd.world > 1:
            torch.distributed.all_reduce(lval)
            lval /= self.dd.world
        lval = float(lval)
        if not math.isfinite(lval):
            raise GlacierError(
                f"training diverged at step {self.state.step + 1} (loss {lval}): lower --lr "
                f"(now {self.cfg.lr:g}) or train without --amp; the last good checkpoint is "
                f"{self.last_path}"
            )
        return lval

    def evaluate(self) -> float:
        """A full validation pass (every process scores its share): the mean loss."""
        cfg, dd = self.cfg, self.dd
        return evaluate_loss(
            self.model, self.val, cfg.batch_size, self.device, self.amp, dd.rank, dd.world
        )

    def validate(self, epoch: float, train_loss: float) -> float:
        """A full validation pass after ``epoch`` epochs (fractional inside an epoch), handed to
        the callbacks with the epoch's mean ``train_loss``."""
        self.val_loss = self.evaluate()
        for cb in self.callbacks:
            cb.on_validation(self, epoch, train_loss, self.val_loss)
        return self.val_loss

    def finish(self) -> TrainResult:
        """The end of the run: validate a partial epoch, write ``last.pt`` and the summary."""
        s = self.state
        epochs_done = s.epoch + s.batch_in_epoch / self.steps_per_epoch
        final_train = self.final_train
        if s.batch_in_epoch:  # stopped inside an epoch: validate here too
            final_train = s.epoch_loss_sum / s.epoch_loss_count
            self.validate(epochs_done, final_train)
        elif not math.isfinite(
            self.val_loss
        ):  # resumed a finished run: nothing trained, just score
            self.val_loss = self.evaluate()
        if self.dd.main and not math.isfinite(final_train):
            final_train = _last_epoch_train(RunPaths(self.run_dir).epochs)
        self.save(self.last_path)
        n_all = self.cfg.epochs * self.steps_per_epoch
        result = TrainResult(
            run_dir=self.run_dir,
            last=self.last_path,
            best=self.best_path if self.best_path.is_file() else None,
            step=s.step,
            epoch=round(epochs_done, 4),
            train_loss=final_train,
            val_loss=self.val_loss,
            best_val_loss=s.best_val_loss,
            persistence_val_loss=self.persistence,
            seconds=round(self.seconds(), 2),
            n_train=len(self.train[1]),
            n_val=len(self.val[1]),
            completed=s.step >= n_all
            or (self.cfg.max_steps is not None and s.step >= self.cfg.max_steps),
        )
        if self.dd.main:
            with io.atomic_path(RunPaths(self.run_dir).summary) as tmp:
                summary = {**result.as_dict(), "config": self.record}
                tmp.write_text(json.dumps(summary, indent=2, default=str) + "\n")
        for cb in self.callbacks:
            cb.on_end(self, result)
        return result

    def save(self, path: Path) -> None:
        """A checkpoint of the model, optimizer, state and RNG states at ``path``: a collective
        under DDP (every rank calls it at the same step; rank 0 writes)."""
        rngs = rng_states(self.dd.rank, self.dd.world)
        if not self.dd.main:
            return
        assert rngs is not None  # rank 0 holds every rank's states
        save_checkpoint(
            {
                "format": CHECKPOINT_FORMAT,
                "model_name": self.model_name,
                "model": self.model.state_dict(),
                "optimizer": self.opt.state_dict(),
                **asdict(self.state),
                "seconds": self.seconds(),
                "rng": rngs[0],  # rank 0's (what a one-process run restores)
                **({"rng_ranks": rngs} if self.dd.world > 1 else {}),
                "config": self.record,
                "metrics": {"persistence_val_loss": self.persistence},
            },
            path,
        )


# --------------------------------------------------------------------------------- callbacks
class Validation(Callback):
    """Every ``val_every`` steps, the loss on one validation batch (rank 0; the batches taken in
    turn), into the step's log."""

    def __init__(self, t: Trainer):
        self.batches = _val_batches(t.val[1], t.cfg.batch_size)

    def on_step(self, t: Trainer, log: StepLog) -> None:
        if log.step % t.cfg.val_every == 0:
            batch = self.batches[(log.step // t.cfg.val_every - 1) % len(self.batches)]
            log.val_loss = evaluate_loss(
                t.model, (t.val[0], batch), t.cfg.batch_size, t.device, t.amp
            )


class CsvLogs(Callback):
    """``losses.csv`` (step, train_loss, val_loss) and ``epochs.csv`` (epoch, train_loss,
    val_loss); a resumed run keeps the rows up to its checkpoint and drops the later ones."""

    def __init__(self, t: Trainer, resumed: bool):
        step0, epochs0 = t.state.step, t.state.epoch
        self.steps = _Csv(
            RunPaths(t.run_dir).losses,
            ("step", "train_loss", "val_loss"),
            keep=lambda s: s <= step0 if resumed else False,
        )
        self.epochs = _Csv(
            RunPaths(t.run_dir).epochs,
            ("epoch", "train_loss", "val_loss"),
            keep=lambda e: e <= epochs0 if resumed else False,
        )

    def on_step(self, t: Trainer, log: StepLog) -> None:
        self.steps.write(log.step, log.train_loss, log.val_loss)

    def on_validation(self, t: Trainer, epoch: float, train_loss: float, val_loss: float) -> None:
        self.epochs.write(round(epoch, 4), train_loss, val_loss)

    def close(self, failed: bool) -> None:
        self.steps.close()
        self.epochs.close()


class Wandb(Callback):
    """The losses to a Weights & Biases run (its id kept in the state, so a resume continues it)."""

    def __init__(self, run: Any):
        self.run = run

    def on_step(self, t: Trainer, log: StepLog) -> None:
        val = {"validationLoss": log.val_loss} if log.val_loss is not None else {}
        self.run.log({"trainLoss": log.train_loss, **val}, step=log.step)

    def on_validation(self, t: Trainer, epoch: float, train_loss: float, val_loss: float) -> None:
        self.run.log(
            {"epoch": epoch, "epochTrainLoss": train_loss, "epochValidationLoss": val_loss},
            step=t.state.step,
        )

    def on_end(self, t: Trainer, result: TrainResult) -> None:
        self.run.summary.update(
            {"finalValidationLoss": result.val_loss, "persistenceValidationLoss": t.persistence}
        )

    def close(self, failed: bool) -> None:
        if failed:
            self.run.finish(exit_code=1)
        else:
            self.run.finish()


class ProgressBar(Callback):
    """A tqdm bar on stderr: steps, epoch, the epoch's mean loss, the last validation loss."""

    def __init__(self, t: Trainer):
        self.last_val = math.nan
        self.bar = tqdm(
            total=t.total_steps,
            initial=t.state.step,
            unit="step",
            desc=f"{t.model_name}",
            dynamic_ncols=True,
            mininterval=1.0,
            file=sys.stderr,
        )

    def on_step(self, t: Trainer, log: StepLog) -> None:
        if log.val_loss is not None:
            self.last_val = log.val_loss
        self.bar.update(1)
        self.bar.set_postfix_str(
            f"epoch {log.epoch + 1}/{t.cfg.epochs} loss {t.state.epoch_mean():.4g}"
            + (f" val {self.last_val:.4g}" if math.isfinite(self.last_val) else ""),
            refresh=False,
        )

    def on_validation(self, t: Trainer, epoch: float, train_loss: float, val_loss: float) -> None:
        self.last_val = val_loss

    def close(self, failed: bool) -> None:
        self.bar.close()


class Checkpointing(Callback):
    """``last.pt`` every ``ckpt_every`` steps and on signals, ``best.pt`` at a new lowest
    validation loss. Every rank has one (the saves and the signal poll are collectives).

    SIGTERM/SIGINT stop the run after the current step (``last.pt`` written, then
    :class:`signals.Interrupted`); SIGUSR1 asks for a ``last.pt`` now and training goes on.
    """

    def __init__(self) -> None:
        self.flags = signals.Deferred().install()

    def on_step(self, t: Trainer, log: StepLog) -> None:
        if log.step % t.cfg.ckpt_every == 0:
            t.save(t.last_path)
        stop, wanted = self.flags.poll(t.dd.world, t.device)  # collective under DDP
        if not (stop or wanted):
            return
        if log.step % t.cfg.ckpt_every:  # else written just now
            t.save(t.last_path)
        if t.dd.world > 1:
            torch.distributed.barrier()  # no rank leaves (and tears gloo down) before the file exists
        if not stop:
            if t.dd.main:
                print(
                    f"checkpoint at step {log.step} (SIGUSR1): {t.last_path}",
                    file=sys.stderr,
                    flush=True,
                )
            return
        self.flags.consume()
        raise signals.Interrupted(
            stop, f"at step {log.step} of {t.total_steps} ({t.last_path} written)"
        )

    def on_validation(self, t: Trainer, epoch: float, train_loss: float, val_loss: float) -> None:
        if val_loss < t.state.best_val_loss:
            t.state.best_val_loss = val_loss
            t.save(t.best_path)

    def close(self, failed: bool) -> None:
        # a stop that came after the last step goes to the previous handler
        self.flags.restore(redeliver=not failed)


def fit(
    model_name: str,
    model: nn.Module,
    train: tuple[Any, np.ndarray],
    val: tuple[Any, np.ndarray],
    cfg: TrainConfig,
    run_dir: str | os.PathLike,
    *,
    record: dict[str, Any] | None = None,
    resume: bool = False,
    wandb_mode: str = "offline",
    wandb_root: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    amp: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Train ``model`` on ``train = (dataset, indices)``, validating on ``val``, into ``run_dir``.

    ``dataset[indices]`` must give ``(x (B, 4, P, P), y (B, 4, P, P))`` — a ``SequenceDataset``,
    ``ConcatSequences`` or ``TensorDataset`` — or items that collate to it. ``record`` is stored
    as the checkpoint's ``config`` (plain types; :func:`load_model` rebuilds the model from its
    ``patch``, ``stride`` and ``model_config``). With ``resume`` and a ``last.pt`` in ``run_dir``,
    training continues exactly where it stopped. Runs DistributedDataParallel when started by
    ``torchrun`` with several processes.
    """
    t_start = time.perf_counter()
    run_dir = Path(run_dir)
    if device is None or str(device) == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dist_info = _dist_setup(torch.device(device))  # the backend follows the device type
    try:
        device = resolve_device(device, dist_info.local_rank)
        t, resumed = _trainer(
            model_name, model, train, val, cfg, run_dir, record or {},
            resume=resume, device=device, amp=amp, dd=dist_info, t_start=t_start,
        )  # fmt: skip
        if dist_info.main:
            root = Path(wandb_root) if wandb_root else run_dir.parent.parent
            t.callbacks = _main_callbacks(t, resumed, wandb_mode, root, progress)
        t.callbacks.append(Checkpointing())  # last: it installs the signal handlers
        result = t.fit()
        if dist_info.owned:
            # Leave together: a rank that tears gloo down while rank 0 still writes its last
            # checkpoint can abort ("terminate called without an active exception").
            torch.distributed.barrier()
        return result
    finally:
        if dist_info.owned:
            torch.distributed.destroy_process_group()


def _trainer(
    model_name: str,
    model: nn.Module,
    train: tuple[Any, np.ndarray],
    val: tuple[Any, np.ndarray],
    cfg: TrainConfig,
    run_dir: Path,
    record: dict[str, Any],
    *,
    resume: bool,
    device: torch.device,
    amp: bool,
    dd: _Dist,
    t_start: float,
) -> tuple[Trainer, bool]:
    """The :class:`Trainer` of :func:`fit` (without callbacks), fresh or restored from
    ``last.pt``, and whether it was restored."""
    train = (train[0], np.asarray(train[1], dtype=np.int64))
    val = (val[0], np.asarray(val[1], dtype=np.int64))
    if not len(train[1]) or not len(val[1]):
        raise GlacierError(
            f"need training and validation sequences (got {len(train[1])} and {len(val[1])})"
        )
    if count_parameters(model) == 0:
        raise GlacierError(
            f"{model_name} has no parameters to train: evaluate it directly (glacier-movement test)"
        )
    amp = bool(amp and device.type == "cuda")
    seed_all(cfg.seed + dd.rank)  # dropout masks differ between processes
    opt, state, resumed = _restore(model_name, model, cfg, run_dir, resume, device, dd)
    net: nn.Module = model
    if dd.world > 1:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    sampler = IndexBatchSampler(
        train[1],
        cfg.batch_size,
        shuffle=True,
        seed=cfg.seed,
        distributed=dd.world > 1,
        num_replicas=dd.world,
        rank=dd.rank,
    )
    record = plain(
        {
            **record,
            "model": model_name,
            "train": asdict(cfg),
            "n_train": len(train[1]),
            "n_val": len(val[1]),
            "world_size": dd.world,
            "device": device.type,
            "amp": amp,
            "parameters": count_parameters(model),
            "steps_per_epoch": len(sampler),
            "torch": torch.__version__,
        }
    )
    zoo: Any = model  # every model of the zoo has patch, n_in and n_out (nn.Module's hints do not)
    persistence = evaluate_loss(
        Persistence(zoo.patch, zoo.n_in, zoo.n_out), val, cfg.batch_size, device, False,
        dd.rank, dd.world,
    )  # fmt: skip
    trainer = Trainer(
        model_name, model, net, opt, cfg, train, val, sampler, device, amp, dd, run_dir, record,
        persistence, state, t_start,
    )  # fmt: skip
    return trainer, resumed


def _restore(
    model_name: str,
    model: nn.Module,
    cfg: TrainConfig,
    run_dir: Path,
    resume: bool,
    device: torch.device,
    dd: _Dist,
) -> tuple[torch.optim.Optimizer, TrainState, bool]:
    """The model (moved to ``device``), a new optimizer and state, with the weights, optimizer
    state, training state and RNG states of ``<run_dir>/last.pt`` when resuming; and whether
    they were restored. A fresh run deletes an old ``last.pt``/``best.pt`` (rank 0)."""
    last_path = RunPaths(run_dir).last
    ckpt = load_checkpoint(last_path) if resume and last_path.is_file() else None
    model.to(device)
    if ckpt is not None:
        if ckpt.get("model_name") != model_name:
            raise GlacierError(
                f"{last_path} holds a {ckpt.get('model_name')!r} run, not {model_name!r}: use another --run-name"
            )
        load_weights(model, ckpt["model"], last_path)
    opt = _optimizer(model, cfg)
    state = TrainState()
    if ckpt is None:
        if dd.main:
            for f in (last_path, RunPaths(run_dir).best):
                f.unlink(missing_ok=True)
        return opt, state, False
    opt.load_state_dict(ckpt["optimizer"])
    state = TrainState(**{f.name: ckpt[f.name] for f in fields(TrainState) if f.name in ckpt})
    restore_rng(ckpt, dd.rank, dd.world, cfg.seed)
    # The weights and optimizer state now live in the model and the optimizer: the host copy
    # (≈ 3.6 GB for the paper LSTM, on every rank) is dropped on return, not kept for the run.
    return opt, state, True


def _main_callbacks(
    t: Trainer, resumed: bool, wandb_mode: str, wandb_root: Path, progress: bool
) -> list[Callback]:
    """Rank 0's callbacks, in the order they run: validation batch, CSV logs, wandb, progress."""
    t.run_dir.mkdir(parents=True, exist_ok=True)
    callbacks: list[Callback] = [Validation(t), CsvLogs(t, resumed)]
    wb = _wandb_start(
        wandb_mode, t.model_name, t.record, wandb_root, t.run_dir.name, t.state.wandb_id
    )
    if wb is not None:
        t.state.wandb_id = wb.id
        callbacks.append(Wandb(wb))
    if progress:
        callbacks.append(ProgressBar(t))
    return callbacks


def _last_epoch_train(path: Path) -> float:
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        return float(rows[-1]["train_loss"]) if rows else math.nan
    except (OSError, KeyError, ValueError):
        return math.nan


# ------------------------------------------------------------------------------ entry point
def train_model(s: TrainSettings, root: str | os.PathLike | None = None) -> TrainResult:
    """Train ``s.model`` on the sequences of ``s.glacier`` (one name, or several to mix them) at
    ``s.preset``; the Python form of ``glacier-movement train`` (its settings were checked when
    ``s`` was made).

    :attr:`TrainSettings.overrides` (``epochs``, ``batch_size``, ``lr``, …) change the preset's
    :class:`TrainConfig`; None values keep the preset's. ``init_from`` loads only the weights of a
    checkpoint of the same model (experiment 2's fine-tuning). With ``resume`` a run continues
    from its ``last.pt`` with its stored settings (only ``epochs``, ``max_steps``, ``val_every`` and
    ``ckpt_every`` may change); an existing run is otherwise refused unless ``overwrite``.
    ``climatology_input`` trains the ``+clim`` variant (models/climatology.py; run name
    ``<model>+clim-…``).
    Returns the :class:`TrainResult` (run directory, final losses, persistence baseline).
    """
    pre = get_preset(s.preset)
    if s.convlstm is not None:
        try:
            pre = override(pre, model=override(pre.model, convlstm=resolve_channels(s.convlstm)))
        except ValueError as e:
            raise GlacierError(str(e)) from None
    pre = override(pre, patch=s.patch, stride=s.stride)
    if s.climatology_input:
        pre = override(pre, model=override(pre.model, climatology_input=True))
    cfgs = [config.get_glacier(g, root) for g in s.glacier]
    gl = [cfg.name for cfg in cfgs]
    root = config.data_root(root)
    label = s.model + ("+clim" if pre.model.climatology_input else "")
    name = s.run_name or default_run_name(
        label, gl, pre.name, s.split, finetuned=s.init_from is not None
    )
    run_dir = Catalog(root).run_dir(name)
    cfg = override(pre.train_config(s.model), **s.overrides)
    # one writer per run: rank 0 holds <run>/.lock for the whole run (torchrun's other ranks join it)
    first = int(os.environ.get("RANK", "0")) == 0
    with locks.hold(run_dir, f"run {name!r}") if first else contextlib.nullcontext():
        return _train_locked(s, pre, cfgs, root, name, run_dir, cfg)


def _train_locked(
    s: TrainSettings,
    pre: Preset,
    cfgs: list[config.GlacierConfig],
    root: Path,
    name: str,
    run_dir: Path,
    cfg: TrainConfig,
) -> TrainResult:
    """The rest of :func:`train_model`, under the run's lock: ``pre`` is the preset with the
    settings' sizes, ``cfgs`` the glaciers, ``cfg`` the optimisation settings."""
    model, split = s.model, s.split
    gl = [c.name for c in cfgs]
    label = model + ("+clim" if pre.model.climatology_input else "")
    files = RunPaths(run_dir)
    last = files.last
    rank = int(os.environ.get("RANK", "0"))
    if last.is_file() and not s.resume:
        if not s.overwrite:
            raise GlacierError(
                f"run {name!r} already exists ({last}): pass --resume to continue it, --overwrite to "
                "start it again, or another --run-name"
            )
        if rank == 0:
            for f in files.outputs:
                f.unlink(missing_ok=True)
    if s.resume and last.is_file():
        cfg = _resumed_config(name, last, s.overrides, model, pre, gl, split)
    elif s.resume and rank == 0:
        print(
            f"note: {last} does not exist yet; starting run {name!r} from the beginning",
            file=sys.stderr,
        )

    train, val, info = load_sequences(
        root, cfgs, pre.patch, pre.stride, split, pre.model.climatology_input
    )
    seed_all(cfg.seed)  # the same initial weights for the same seed
    net = build_model(model, pre)
    init_from = None
    if s.init_from is not None:
        init_from = resolve_checkpoint(root, s.init_from)
        src = load_checkpoint(init_from)
        if src.get("model_name") != model:
            raise GlacierError(
                f"--init-from {init_from} holds a {src.get('model_name')!r} model, not {model!r}: pick a checkpoint of a {model} run"
            )
        if not (s.resume and last.is_file()):
            load_weights(net, src["model"], init_from)
    record = {
        "preset": pre.name,
        "patch": pre.patch,
        "stride": pre.stride,
        "model_config": asdict(pre.model),
        "glaciers": gl,
        "split": split,
        "init_from": str(init_from) if init_from else None,
        "n_sequences": info["n_sequences"],
        "climatology_val_loss": info["climatology_val_loss"],
    }
    if rank == 0 and s.progress:
        print(
            f"training {label} ({count_parameters(net):,} parameters) on {'+'.join(gl)}: "
            f"{info['train']:,} training / {info['val']:,} validation sequences of {pre.patch}×{pre.patch} px, "
            f"preset {pre.name}, {cfg.epochs} epochs × batch {cfg.batch_size}"
            + (f", at most {cfg.max_steps} steps" if cfg.max_steps else "")
            + f" → {run_dir}",
            file=sys.stderr,
        )
    return fit(
        model,
        net,
        train,
        val,
        cfg,
        run_dir,
        record=record,
        resume=s.resume,
        wandb_mode=s.wandb,
        wandb_root=root,
        device=s.device,
        amp=s.amp,
        progress=s.progress,
    )


def _resumed_config(
    name: str,
    last: Path,
    overrides: dict[str, Any],
    model: str,
    pre: Preset,
    glaciers: list[str],
    split: str,
) -> TrainConfig:
    """The settings of the run ``name`` that ``last`` (its ``last.pt``) holds, with the
    ``overrides`` a resume may change; a changed :data:`_LOCKED` setting, model, preset,
    glaciers, split, patch, stride or climatology input is a one-line :class:`GlacierError`."""
    stored = load_checkpoint(last)["config"]
    base = TrainConfig(
        **{k: v for k, v in stored["train"].items() if k in {f.name for f in fields(TrainConfig)}}
    )
    given = {k: v for k, v in overrides.items() if v is not None}
    for k in _LOCKED:
        if k in given and given[k] != getattr(base, k):
            raise GlacierError(
                f"run {name!r} was trained with {k}={getattr(base, k)!r}; a resumed run keeps it "
                f"(drop --{k.replace('_', '-')} or start a new --run-name)"
            )
    for key, now in (
        ("model", model),
        ("preset", pre.name),
        ("glaciers", glaciers),
        ("split", split),
        ("patch", pre.patch),
        ("stride", pre.stride),
        ("climatology_input", pre.model.climatology_input),
    ):
        if key == "climatology_input":
            stored[key] = bool(stored.get("model_config", {}).get(key, False))
        if stored.get(key) != now:
            raise GlacierError(
                f"run {name!r} was trained with {key}={stored.get(key)!r}, not {now!r}: use another --run-name"
            )
    return override(base, **given)


# --------------------------------------------------------------------------------------- CLI
# ---------------------------------------------------------------------------------- the stage
@dataclass(frozen=True)
class TrainSettings:
    """Train a model on a glacier's patch sequences (checkpoints, resume, wandb, DDP).

    Train one model (docs/models.md: MSE loss, AdamW or RMSprop, gradient clipping by value 3) on
    the patch sequences of one or several glaciers. Writes <data-root>/models/<run>/ {last.pt,
    best.pt, losses.csv, epochs.csv, summary.json, train.settings.toml}. Options left unset take
    the preset's value. Under `torchrun --nproc_per_node=N` it trains with DistributedDataParallel.
    """

    glacier: tuple[str, ...] = option(
        repeat=True,
        metavar="NAME",
        help="glacier to train on (a name or a path to its .toml); repeat to mix glaciers "
        "(experiment 3)",
    )
    model: str = option(choices=TRAINABLE, help="which model")
    preset: str = option("demo", help="paper, demo or tiny (default demo)")
    split: str = option("paper", choices=("paper", "strict"), help="split mode (default paper)")
    epochs: int | None = option(None, help="epochs (preset: paper 50/40/40/20/40)")
    batch_size: int | None = option(None, help="batch size per process (paper 100)")
    lr: float | None = option(None, help="learning rate")
    weight_decay: float | None = option(None, help="weight decay")
    optimizer: str | None = option(
        None, choices=("adam", "rmsprop"), help="adam = AdamW (default) or rmsprop"
    )
    max_steps: int | None = option(None, help="stop after this many optimisation steps")
    val_every: int | None = option(None, help="steps between validation batches (paper 100)")
    ckpt_every: int | None = option(None, help="steps between checkpoints (paper 500)")
    seed: int | None = option(None, help="random seed (default 0)")
    teacher_forcing: bool | None = option(
        None,
        negatable=True,
        help="feed the true frames to the decoder in training (default: the preset's; paper: on)",
    )
    patch: int | None = option(None, help="patch size in pixels (default: the preset's)")
    stride: int | None = option(None, help="patch stride in pixels (default: the preset's)")
    convlstm: str | None = option(
        None, metavar="CONFIG", help="ConvLSTM channels: big, small or six numbers"
    )
    climatology_input: bool = option(
        False,
        help="the +clim variant (beyond the paper): the model gets the climatology of its input "
        "and target windows and predicts the departure from it",
    )
    run_name: str | None = option(
        None, help="run folder under <data-root>/models (default <model>-<glaciers>-<preset>)"
    )
    resume: bool = option(False, help="continue the run from its last.pt")
    overwrite: bool = option(False, help="start an existing run again from scratch")
    init_from: str | None = option(
        None,
        metavar="CKPT|RUN",
        help="start from the weights of this checkpoint, or of run NAME's last.pt (fine-tuning)",
    )
    wandb: str = wandb_option()
    amp: bool = option(False, help="bf16 mixed precision (CUDA only)")
    device: str | None = device_option()
    progress: bool = option(True, flag="--no-progress", help="no progress bar")

    def __post_init__(self) -> None:
        if isinstance(self.glacier, str):  # TrainSettings(glacier="parvati") from Python
            object.__setattr__(self, "glacier", (self.glacier,))
        if self.model in MODELS and self.model not in TRAINABLE:
            raise SettingsError(
                "model",
                f"{self.model} has no parameters to train: choose one of {', '.join(TRAINABLE)}",
            )
        settings.check_choices(self)
        get_preset(self.preset)
        if not self.glacier:
            raise SettingsError("glacier", "needs at least one glacier")
        check_train_bounds(self.overrides)

    @property
    def overrides(self) -> dict[str, Any]:
        """The TrainConfig fields these settings have (None: the preset's value)."""
        return {f.name: getattr(self, f.name) for f in fields(TrainConfig) if hasattr(self, f.name)}


def run(s: TrainSettings, catalog: Catalog) -> TrainResult:
    """The ``train`` stage: one run, its resolved settings in ``<run>/train.settings.toml``."""
    dev = announce_device(s.device).type
    if s.amp and dev != "cuda":
        print("note: --amp works on CUDA only; training in float32", file=sys.stderr)
    res = train_model(s, catalog.root)
    if int(os.environ.get("RANK", "0")) == 0:
        settings.write(s, RunPaths(res.run_dir).settings_file("train"), "train")
        clim = json.loads(RunPaths(res.run_dir).summary.read_text())["config"].get(
            "climatology_val_loss", math.nan
        )
        print(
            f"{s.model}{'+clim' if s.climatology_input else ''}: {res.step} steps, "
            f"{res.epoch:g} epochs in {res.seconds:.0f} s; validation MSE {res.val_loss:.5f} (best "
            f"{res.best_val_loss:.5f}); baselines on the same sequences: persistence "
            f"{res.persistence_val_loss:.5f}, climatology {clim:.5f}; checkpoints in {res.run_dir}"
        )
    return res
