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

The package's modules: ``data`` (the sequences, the climatology baseline's loss, loss
evaluation), ``loop`` (:class:`Trainer`, its state and callback hooks), ``callbacks`` (validation,
logs, wandb, progress, checkpoints), ``runner`` (:func:`fit`: one run, DDP, resume) and ``stage``
(the command: :class:`TrainSettings`, :func:`train_model`).
"""

from __future__ import annotations

from ..checkpoints import (
    CHECKPOINT_FORMAT,
    announce_device,
    cuda_warning,
    device_report,
    load_checkpoint,
    load_model,
    resolve_checkpoint,
    resolve_device,
)
from .data import evaluate_loss, load_sequences
from .loop import Callback, Trainer, TrainResult, TrainState
from .runner import _check_gpu_count as _check_gpu_count
from .runner import fit
from .stage import WANDB_MODES as WANDB_MODES
from .stage import TrainSettings, default_run_name, run, train_model

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
