"""The training loop: :class:`Trainer` with its :class:`TrainState` (what a checkpoint saves and a
resume restores) and the :class:`Callback` hooks; :class:`TrainResult`, what a run produced."""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import io
from ..catalog import RunPaths
from ..checkpoints import (
    CHECKPOINT_FORMAT,
    rng_states,
    save_checkpoint,
)
from ..errors import GlacierError
from ..presets import TrainConfig
from ..sequences import IndexBatchSampler
from .data import _autocast, _fetch, evaluate_loss


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


def _last_epoch_train(path: Path) -> float:
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        return float(rows[-1]["train_loss"]) if rows else math.nan
    except (OSError, KeyError, ValueError):
        return math.nan
