"""``fit``: one training run in a run folder, on one process or under DistributedDataParallel
(``torchrun``), resumed from its last checkpoint when asked."""

from __future__ import annotations

import os
import time
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from ..catalog import RunPaths
from ..checkpoints import (
    load_checkpoint,
    load_weights,
    plain,
    resolve_device,
    restore_rng,
    seed_all,
)
from ..errors import GlacierError
from ..models import Persistence, count_parameters
from ..presets import TrainConfig
from ..sequences import IndexBatchSampler
from .callbacks import Checkpointing, _main_callbacks
from .data import evaluate_loss
from .loop import Trainer, TrainResult, TrainState, _Dist, _optimizer


# ----------------------------------------------------------------------------- distributed
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
