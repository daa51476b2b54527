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
"""

from __future__ import annotations

import contextlib
import csv
import errno
import json
import math
import os
import random
import sys
import time
import zipfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import config, io, locks, settings, signals
from .catalog import Catalog
from .errors import DataError, GlacierError
from .models import MODELS, TRAINABLE, Persistence, build_model, count_parameters
from .presets import ModelConfig, Preset, TrainConfig, get_preset, override
from .settings import SettingsError, option

__all__ = [
    "CHECKPOINT_FORMAT",
    "TrainResult",
    "default_run_name",
    "load_sequences",
    "fit",
    "train_model",
    "load_checkpoint",
    "load_model",
    "evaluate_loss",
    "TrainSettings",
    "run",
]

CHECKPOINT_FORMAT = "glacier-movement-checkpoint/1"
WANDB_MODES = ("online", "offline", "disabled")
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


def default_run_name(
    model: str,
    glaciers: str | Sequence[str],
    preset: str,
    split: str = "paper",
    finetuned: bool = False,
) -> str:
    """``<model>-<glacier>[+<glacier>…]-<preset>[-strict][-finetuned]``, e.g. ``salstm-parvati-demo``."""
    gl = [glaciers] if isinstance(glaciers, str) else list(glaciers)
    name = f"{model}-{'+'.join(gl)}-{preset}"
    if split != "paper":
        name += f"-{split}"
    if finetuned:
        name += "-finetuned"
    return name


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
    from .baselines import glacier_sequences
    from .sequences import ConcatSequences, split_indices

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
    from .baselines import forecast

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


# -------------------------------------------------------------------------------- checkpoints
def _rng_state() -> dict[str, Any]:
    """Every RNG state as tensors and plain numbers (loadable with weights_only=True)."""
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()  # noqa: NPY002 - the global RNG is what other code uses
    py_version, py_state, py_gauss = random.getstate()
    out = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": str(np_name),
            "keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "gauss": float(np_gauss),
        },
        "python": {
            "version": int(py_version),
            "state": torch.tensor(py_state, dtype=torch.int64),
            "gauss": py_gauss,
        },
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def _rng_states(dd: _Dist) -> list[dict[str, Any]] | None:
    """Every rank's :func:`_rng_state`, in rank order, on rank 0 (None on the others).

    A collective under DDP: every rank must call it at the same point (as ``checkpoint()`` is).
    Each rank draws its own dropout masks, so each rank's state is kept, not only rank 0's.
    """
    own = _rng_state()
    if dd.world <= 1:
        return [own]
    states: list[Any] | None = [None] * dd.world if dd.main else None
    torch.distributed.gather_object(own, states, dst=0)
    return states


def _restore_rng(ckpt: dict[str, Any], rank: int, world: int, seed: int) -> bool:
    """Restore this rank's RNG state from a checkpoint; True when it was this rank's own.

    A checkpoint of the same world size restores every rank's own state (``rng_ranks``). From
    another world size (or an older checkpoint with rank 0's state only), rank 0 restores rank 0's
    and every other rank is reseeded deterministically from (seed, rank, step): the run continues
    reproducibly, but not bit-exactly as it would have with the old world size.
    """
    ranks = ckpt.get("rng_ranks")
    if ranks is not None and len(ranks) == world:
        _set_rng_state(ranks[rank])
        return True
    if rank == 0:
        _set_rng_state(ckpt["rng"])
        return True
    step = int(ckpt.get("step", 0))
    _seed_all(int(np.random.SeedSequence([seed, rank, step]).generate_state(1, np.uint64)[0]))
    return False


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(  # noqa: NPY002
        (n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"])
    )
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["state"].tolist()), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        with contextlib.suppress(RuntimeError, IndexError):  # a different GPU count
            torch.cuda.set_rng_state_all(state["cuda"])


def _plain(obj: Any) -> Any:
    """``obj`` as plain Python types only (dict, list, str, int, float, bool, None), which
    ``torch.load(weights_only=True)`` and JSON both accept."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or type(obj) in (bool, int, float, str):
        return obj
    if isinstance(obj, str):  # a str subclass such as torch's TorchVersion
        return obj.encode().decode()
    if isinstance(obj, bool | int | float):  # e.g. an IntEnum
        return (
            bool(obj) if isinstance(obj, bool) else int(obj) if isinstance(obj, int) else float(obj)
        )
    return f"{obj}"


def _save(obj: dict[str, Any], path: Path) -> Path:
    return io.write_serialized(path, lambda f: torch.save(obj, f), suffix=".tmp.pt")


def resolve_checkpoint(root: Path, ref: str | os.PathLike) -> Path:
    """A checkpoint file, or a run name under ``<root>/models/`` standing for its ``last.pt``."""
    path = Path(ref)
    run_last = root / "models" / str(ref) / "last.pt"
    if not path.is_file() and os.sep not in str(ref) and run_last.is_file():
        return run_last
    return path


def load_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Read a checkpoint with ``torch.load(weights_only=True)`` (no pickle code runs) and check it.

    A missing, truncated or foreign file raises a one-line :class:`DataError`.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"checkpoint {path} does not exist: train the model first (glacier-movement train)"
        )
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        first = first.split(". ")[0]  # torch's reader adds sentences for its developers
        raise DataError(
            f"checkpoint {path} cannot be read ({first[:160]}); it is truncated or not a checkpoint: "
            "delete it and train again"
        ) from None
    except Exception as e:  # weights_only refuses foreign pickles with UnpicklingError
        raise DataError(
            f"checkpoint {path} is not a glacier-movement checkpoint ({type(e).__name__}); "
            "it holds objects that are not weights: use a checkpoint written by `glacier-movement train`"
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT or "model" not in ckpt:
        raise DataError(
            f"checkpoint {path} is not a glacier-movement checkpoint (no {CHECKPOINT_FORMAT!r} "
            "format mark): use a checkpoint written by `glacier-movement train`"
        )
    return ckpt


def _preset_from_config(cfg: dict[str, Any]) -> Preset:
    known = {f.name for f in fields(ModelConfig)}
    mc = {
        k: (tuple(v) if isinstance(v, list) else v)
        for k, v in cfg["model_config"].items()
        if k in known
    }
    return Preset(
        name=cfg.get("preset", "checkpoint"),
        patch=int(cfg["patch"]),
        stride=int(cfg["stride"]),
        model=ModelConfig(**mc),
    )


def load_model(
    path: str | os.PathLike, expect: str | None = None, device: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """The trained model of a checkpoint, in evaluation mode on ``device``, and the rest of the
    checkpoint dict (config, step, metrics …) without its ``model`` weights (they are in the
    model) and ``optimizer`` state.

    ``expect``: the model name the caller needs (e.g. ``"salstm"``); a checkpoint of another model
    raises a one-line :class:`GlacierError`. The file is read to host memory and only the weights
    go to ``device``: the AdamW moments (twice the weights: 2.4 GB for the paper LSTM) are never
    moved to the GPU for inference, and are dropped here.
    """
    ckpt = load_checkpoint(path, map_location="cpu")
    ckpt.pop("optimizer", None)
    name = ckpt.get("model_name")
    if expect is not None and name != expect:
        raise GlacierError(
            f"checkpoint {path} holds a {name!r} model, not {expect!r}: pick the {expect} run's checkpoint"
        )
    if name not in MODELS:
        raise DataError(
            f"checkpoint {path} holds an unknown model {name!r}: it was written by another version"
        )
    model = build_model(name, _preset_from_config(ckpt["config"]))
    _load_weights(model, ckpt.pop("model"), path)  # copied into the model: no second host copy
    model.to(device).eval()
    return model, ckpt


def _load_weights(model: nn.Module, state: dict[str, torch.Tensor], path: Path | str) -> None:
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        detail = lines[1] if len(lines) > 1 else lines[0]
        raise GlacierError(
            f"checkpoint {path} does not fit this {type(model).__name__} ({detail[:160]}): "
            "use the same preset/patch size it was trained with"
        ) from None


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
    import torch.distributed as dist

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


def device_report(device: torch.device) -> str:
    """One line naming the device a command uses, e.g. ``device: cuda:0 (NVIDIA H200, 140 GiB;
    torch 2.13.0+cu128, CUDA 12.8)`` or ``device: cpu (2 CPU threads; torch 2.13.0+cpu)``."""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return (
            f"device: {device} ({props.name}, {props.total_memory / 2**30:.0f} GiB; "
            f"torch {torch.__version__}, CUDA {torch.version.cuda})"
        )
    n = torch.get_num_threads()
    return f"device: {device} ({n} CPU thread{'s' * (n != 1)}; torch {torch.__version__})"


def cuda_warning() -> str | None:
    """A warning when this torch was built with CUDA but cannot use a GPU (driver too old for
    its CUDA version, or no GPU visible): otherwise the default device falls back to the CPU
    without a word."""
    if torch.version.cuda is None or torch.cuda.is_available():
        return None
    return (
        f"warning: torch {torch.__version__} is built for CUDA {torch.version.cuda} but finds no "
        "usable GPU (no GPU visible, or a driver too old for this CUDA: see nvidia-smi); "
        "running on the CPU"
    )


def announce_device(device: str | torch.device | None) -> torch.device:
    """Resolve ``device`` as the commands do and print it (and :func:`cuda_warning` when the
    device was left to the default) on one line to stderr; rank 0 only under torchrun."""
    dev = resolve_device(device, int(os.environ.get("LOCAL_RANK", "0")))
    if int(os.environ.get("RANK", "0")) == 0:
        warning = cuda_warning() if device in (None, "auto") else None
        if warning:
            print(warning, file=sys.stderr)
        print(device_report(dev), file=sys.stderr)
    return dev


def resolve_device(device: str | torch.device | None, local_rank: int = 0) -> torch.device:
    """``cpu``/``cuda``/``cuda:N``/None (= CUDA when available); a missing GPU is a clear error."""
    if device is None or str(device) == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise GlacierError(
                "--device cuda was asked for but no CUDA GPU is available: use --device cpu"
            )
        if device.index is None:
            device = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    return device


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
    import wandb

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
    except wandb.errors.UsageError as e:
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


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - seeds the global RNG other code may use
    torch.manual_seed(seed)


def _check_train_config(cfg: TrainConfig) -> None:
    checks = [
        (cfg.batch_size >= 1, f"batch size must be ≥ 1 (got {cfg.batch_size})"),
        (cfg.epochs >= 1, f"epochs must be ≥ 1 (got {cfg.epochs})"),
        (cfg.lr > 0, f"learning rate must be > 0 (got {cfg.lr})"),
        (cfg.weight_decay >= 0, f"weight decay must be ≥ 0 (got {cfg.weight_decay})"),
        (
            cfg.max_steps is None or cfg.max_steps >= 1,
            f"max steps must be ≥ 1 (got {cfg.max_steps})",
        ),
        (cfg.val_every >= 1 and cfg.ckpt_every >= 1, "val_every and ckpt_every must be ≥ 1"),
        (cfg.clip_value > 0, f"clip value must be > 0 (got {cfg.clip_value})"),
    ]
    for ok, msg in checks:
        if not ok:
            raise GlacierError(msg)


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
    _check_train_config(cfg)
    run_dir = Path(run_dir)
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"
    if device is None or str(device) == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dist_info = _dist_setup(torch.device(device))  # the backend follows the device type
    try:
        device = resolve_device(device, dist_info.local_rank)
        result = _fit(
            model_name,
            model,
            train,
            val,
            cfg,
            run_dir,
            last_path,
            best_path,
            record or {},
            resume,
            wandb_mode,
            Path(wandb_root) if wandb_root else run_dir.parent.parent,
            device,
            amp,
            progress,
            dist_info,
            t_start,
        )
        if dist_info.owned:
            # Leave together: a rank that tears gloo down while rank 0 still writes its last
            # checkpoint can abort ("terminate called without an active exception").
            torch.distributed.barrier()
        return result
    finally:
        if dist_info.owned:
            torch.distributed.destroy_process_group()


def _fit(
    model_name,
    model,
    train,
    val,
    cfg,
    run_dir,
    last_path,
    best_path,
    record,
    resume,
    wandb_mode,
    wandb_root,
    device,
    amp,
    progress,
    dd: _Dist,
    t_start,
) -> TrainResult:
    from tqdm import tqdm

    from .sequences import IndexBatchSampler

    train_ds, train_idx = train[0], np.asarray(train[1], dtype=np.int64)
    val_ds, val_idx = val[0], np.asarray(val[1], dtype=np.int64)
    if not len(train_idx) or not len(val_idx):
        raise GlacierError(
            f"need training and validation sequences (got {len(train_idx)} and {len(val_idx)})"
        )
    if count_parameters(model) == 0:
        raise GlacierError(
            f"{model_name} has no parameters to train: evaluate it directly (glacier-movement test)"
        )
    amp = bool(amp and device.type == "cuda")

    # -- state: fresh, or from last.pt -----------------------------------------------------------
    _seed_all(cfg.seed + dd.rank)  # dropout masks differ between processes
    ckpt = load_checkpoint(last_path) if resume and last_path.is_file() else None
    model.to(device)
    if ckpt is not None:
        if ckpt.get("model_name") != model_name:
            raise GlacierError(
                f"{last_path} holds a {ckpt.get('model_name')!r} run, not {model_name!r}: use another --run-name"
            )
        _load_weights(model, ckpt["model"], last_path)
    opt = _optimizer(model, cfg)
    if ckpt is not None:
        opt.load_state_dict(ckpt["optimizer"])
    state = {
        "step": 0,
        "epoch": 0,
        "batch_in_epoch": 0,
        "epoch_loss_sum": 0.0,
        "epoch_loss_count": 0,
        "best_val_loss": math.inf,
        "seconds": 0.0,
        "wandb_id": None,
    }
    resumed = ckpt is not None
    if ckpt is not None:
        state.update({k: ckpt[k] for k in state if k in ckpt})
        _restore_rng(ckpt, dd.rank, dd.world, cfg.seed)
    # The weights and optimizer state now live in the model and the optimizer: drop the host
    # copy (≈ 3.6 GB for the paper LSTM, on every rank) instead of keeping it for the whole run.
    del ckpt
    if not resumed and dd.main:
        for f in (last_path, best_path):
            f.unlink(missing_ok=True)

    net: nn.Module = model
    if dd.world > 1:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )

    sampler = IndexBatchSampler(
        train_idx,
        cfg.batch_size,
        shuffle=True,
        seed=cfg.seed,
        distributed=dd.world > 1,
        num_replicas=dd.world,
        rank=dd.rank,
    )
    steps_per_epoch = len(sampler)
    total_steps = cfg.epochs * steps_per_epoch
    if cfg.max_steps is not None:
        total_steps = min(total_steps, cfg.max_steps)
    val_batches = _val_batches(val_idx, cfg.batch_size)

    record = _plain(
        {
            **record,
            "model": model_name,
            "train": asdict(cfg),
            "n_train": len(train_idx),
            "n_val": len(val_idx),
            "world_size": dd.world,
            "device": device.type,
            "amp": amp,
            "parameters": count_parameters(model),
            "steps_per_epoch": steps_per_epoch,
            "torch": torch.__version__,
        }
    )
    persistence = evaluate_loss(
        Persistence(model.patch, model.n_in, model.n_out),
        (val_ds, val_idx),
        cfg.batch_size,
        device,
        False,
        dd.rank,
        dd.world,
    )

    # -- logs (rank 0) ------------------------------------------------------------------------
    logs = None
    wb = None
    if dd.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        done_epochs, step0 = state["epoch"], state["step"]
        logs = (
            _Csv(
                run_dir / "losses.csv",
                ("step", "train_loss", "val_loss"),
                keep=lambda s: s <= step0 if resumed else False,
            ),
            _Csv(
                run_dir / "epochs.csv",
                ("epoch", "train_loss", "val_loss"),
                keep=lambda e: e <= done_epochs if resumed else False,
            ),
        )
        wb = _wandb_start(
            wandb_mode, model_name, record, Path(wandb_root), run_dir.name, state["wandb_id"]
        )
        if wb is not None:
            state["wandb_id"] = wb.id

    def checkpoint(path: Path) -> None:
        rngs = _rng_states(dd)  # a collective: every rank calls checkpoint() at the same step
        if not dd.main:
            return
        _save(
            {
                "format": CHECKPOINT_FORMAT,
                "model_name": model_name,
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                **state,
                "seconds": state["seconds"] + time.perf_counter() - t_start,
                "rng": rngs[0],  # rank 0's (what a one-process run restores)
                **({"rng_ranks": rngs} if dd.world > 1 else {}),
                "config": record,
                "metrics": {"persistence_val_loss": persistence},
            },
            path,
        )

    def full_validation(epoch_label: float, mean_train: float) -> float:
        v = evaluate_loss(model, (val_ds, val_idx), cfg.batch_size, device, amp, dd.rank, dd.world)
        if dd.main:
            logs[1].write(round(epoch_label, 4), mean_train, v)
            if wb is not None:
                wb.log(
                    {"epoch": epoch_label, "epochTrainLoss": mean_train, "epochValidationLoss": v},
                    step=state["step"],
                )
        if v < state["best_val_loss"]:
            state["best_val_loss"] = v
            checkpoint(best_path)
        return v

    # -- the loop -----------------------------------------------------------------------------
    net.train()
    last_val = final_train_epoch = math.nan
    bar = tqdm(
        total=total_steps,
        initial=state["step"],
        disable=not (progress and dd.main),
        unit="step",
        desc=f"{model_name}",
        dynamic_ncols=True,
        mininterval=1.0,
        file=sys.stderr,
    )
    # SIGTERM/SIGINT stop after the current step, SIGUSR1 asks for a checkpoint (until the end)
    flags = signals.Deferred().install()
    try:
        while state["step"] < total_steps:
            epoch, skip = state["epoch"], state["batch_in_epoch"]
            sampler.set_epoch(epoch)
            for b, idx in enumerate(sampler):
                if b < skip:
                    continue  # batches done before the resume: same order, so skip them
                if state["step"] >= total_steps:
                    break
                x, y = (t.to(device, non_blocking=True) for t in _fetch(train_ds, idx))
                opt.zero_grad(set_to_none=True)
                with _autocast(device, amp):
                    # teacher forcing (the model is in training mode) unless the preset turns it off
                    pred = net(x, y if cfg.teacher_forcing else None)
                loss = F.mse_loss(pred.float(), y)
                loss.backward()
                nn.utils.clip_grad_value_(model.parameters(), cfg.clip_value)
                opt.step()

                lval = loss.detach()
                if dd.world > 1:
                    torch.distributed.all_reduce(lval)
                    lval /= dd.world
                lval = float(lval)
                if not math.isfinite(lval):
                    raise GlacierError(
                        f"training diverged at step {state['step'] + 1} (loss {lval}): lower --lr "
                        f"(now {cfg.lr:g}) or train without --amp; the last good checkpoint is {last_path}"
                    )
                state["step"] += 1
                state["batch_in_epoch"] = b + 1
                state["epoch_loss_sum"] += lval
                state["epoch_loss_count"] += 1
                vb = None
                if dd.main and state["step"] % cfg.val_every == 0:
                    batch = val_batches[(state["step"] // cfg.val_every - 1) % len(val_batches)]
                    vb = evaluate_loss(model, (val_ds, batch), cfg.batch_size, device, amp)
                    last_val = vb
                if dd.main:
                    logs[0].write(state["step"], lval, vb)
                    if wb is not None:
                        wb.log(
                            {
                                "trainLoss": lval,
                                **({"validationLoss": vb} if vb is not None else {}),
                            },
                            step=state["step"],
                        )
                    bar.update(1)
                    bar.set_postfix_str(
                        f"epoch {epoch + 1}/{cfg.epochs} loss {state['epoch_loss_sum'] / state['epoch_loss_count']:.4g}"
                        + (f" val {last_val:.4g}" if math.isfinite(last_val) else ""),
                        refresh=False,
                    )
                if state["step"] % cfg.ckpt_every == 0:
                    checkpoint(last_path)
                stop, wanted = flags.poll(dd.world, device)  # collective under DDP
                if stop or wanted:
                    _checkpoint_now(state["step"], cfg.ckpt_every, last_path, checkpoint, dd, stop)
                if stop:
                    flags.consume()
                    raise signals.Interrupted(
                        stop, f"at step {state['step']} of {total_steps} ({last_path} written)"
                    )
            if state["batch_in_epoch"] >= steps_per_epoch:  # the epoch is complete
                mean_train = state["epoch_loss_sum"] / max(state["epoch_loss_count"], 1)
                state.update(
                    epoch=epoch + 1, batch_in_epoch=0, epoch_loss_sum=0.0, epoch_loss_count=0
                )
                last_val = full_validation(epoch + 1, mean_train)
                final_train_epoch = mean_train
            else:
                break  # max_steps reached inside the epoch
        epochs_done = state["epoch"] + state["batch_in_epoch"] / steps_per_epoch
        final_train = final_train_epoch
        if state["batch_in_epoch"]:  # stopped inside an epoch: validate here too
            final_train = state["epoch_loss_sum"] / state["epoch_loss_count"]
            last_val = full_validation(epochs_done, final_train)
        elif not math.isfinite(last_val):  # resumed a finished run: nothing trained, just score
            last_val = evaluate_loss(
                model, (val_ds, val_idx), cfg.batch_size, device, amp, dd.rank, dd.world
            )
        if dd.main and not math.isfinite(final_train):
            final_train = _last_epoch_train(run_dir / "epochs.csv")
        checkpoint(last_path)
        seconds = state["seconds"] + time.perf_counter() - t_start
        result = TrainResult(
            run_dir=run_dir,
            last=last_path,
            best=best_path if best_path.is_file() else None,
            step=state["step"],
            epoch=round(epochs_done, 4),
            train_loss=final_train,
            val_loss=last_val,
            best_val_loss=state["best_val_loss"],
            persistence_val_loss=persistence,
            seconds=round(seconds, 2),
            n_train=len(train_idx),
            n_val=len(val_idx),
            completed=state["step"] >= cfg.epochs * steps_per_epoch
            or (cfg.max_steps is not None and state["step"] >= cfg.max_steps),
        )
        if dd.main:
            with io.atomic_path(run_dir / "summary.json") as tmp:
                tmp.write_text(
                    json.dumps({**result.as_dict(), "config": record}, indent=2, default=str) + "\n"
                )
            if wb is not None:
                wb.summary.update(
                    {"finalValidationLoss": last_val, "persistenceValidationLoss": persistence}
                )
        return result
    except BaseException:
        flags.restore(redeliver=False)
        if wb is not None:
            wb.finish(exit_code=1)
            wb = None
        raise
    finally:
        bar.close()
        if logs is not None:
            for lg in logs:
                lg.close()
        if wb is not None:
            wb.finish()
        flags.restore()  # a stop that came after the last step goes to the previous handler


def _checkpoint_now(step, ckpt_every, last_path, checkpoint, dd: _Dist, stop: int) -> None:
    """``last.pt`` at ``step`` on a signal (rank 0 writes; the other ranks wait for it)."""
    if step % ckpt_every:  # else written just now
        checkpoint(last_path)
    if dd.world > 1:
        torch.distributed.barrier()  # no rank leaves (and tears gloo down) before the file exists
    if dd.main and not stop:
        print(f"checkpoint at step {step} (SIGUSR1): {last_path}", file=sys.stderr, flush=True)


def _last_epoch_train(path: Path) -> float:
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        return float(rows[-1]["train_loss"]) if rows else math.nan
    except (OSError, KeyError, ValueError):
        return math.nan


# ------------------------------------------------------------------------------ entry point
def train_model(
    model: str,
    glaciers: str | Sequence[str],
    preset: str | Preset = "demo",
    *,
    root: str | os.PathLike | None = None,
    split: str = "paper",
    run_name: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    init_from: str | os.PathLike | None = None,
    wandb: str = "offline",
    amp: bool = False,
    device: str | None = None,
    progress: bool = True,
    patch: int | None = None,
    stride: int | None = None,
    convlstm: str | tuple[int, ...] | None = None,
    climatology_input: bool = False,
    **overrides,
) -> TrainResult:
    """Train ``model`` on the sequences of ``glaciers`` (one name, or several to mix them) at a
    preset; the Python form of ``glacier-movement train``.

    ``overrides`` are :class:`TrainConfig` fields (``epochs``, ``batch_size``, ``lr``,
    ``weight_decay``, ``optimizer``, ``max_steps``, ``val_every``, ``ckpt_every``, ``seed``,
    ``clip_value``); None values keep the preset's. ``init_from`` loads only the weights of a
    checkpoint of the same model (experiment 2's fine-tuning). With ``resume`` a run continues
    from its ``last.pt`` with its stored settings (only ``epochs``, ``max_steps``, ``val_every`` and
    ``ckpt_every`` may change); an existing run is otherwise refused unless ``overwrite``.
    ``climatology_input`` trains the ``+clim`` variant (models/climatology.py; run name
    ``<model>+clim-…``).
    Returns the :class:`TrainResult` (run directory, final losses, persistence baseline).
    """
    if model not in MODELS:
        raise GlacierError(f"unknown model {model!r}: choose one of {', '.join(TRAINABLE)}")
    if model not in TRAINABLE:
        raise GlacierError(
            f"{model} has no parameters to train: choose one of {', '.join(TRAINABLE)}"
        )
    pre = get_preset(preset) if isinstance(preset, str) else preset
    if convlstm is not None:
        from .models.convlstm import resolve_channels

        try:
            pre = override(pre, model=override(pre.model, convlstm=resolve_channels(convlstm)))
        except ValueError as e:
            raise GlacierError(str(e)) from None
    pre = override(pre, patch=patch, stride=stride)
    if climatology_input:
        pre = override(pre, model=override(pre.model, climatology_input=True))
    gl = [glaciers] if isinstance(glaciers, str) else list(glaciers)
    cfgs = [config.get_glacier(g, root) for g in gl]
    gl = [cfg.name for cfg in cfgs]
    root = config.data_root(root)
    label = model + ("+clim" if pre.model.climatology_input else "")
    name = run_name or default_run_name(label, gl, pre.name, split, finetuned=init_from is not None)
    run_dir = config.Paths(root, gl[0]).models_dir / name
    cfg = override(pre.train_config(model), **overrides)
    # one writer per run: rank 0 holds <run>/.lock for the whole run (torchrun's other ranks join it)
    first = int(os.environ.get("RANK", "0")) == 0
    with locks.hold(run_dir, f"run {name!r}") if first else contextlib.nullcontext():
        return _train_locked(
            model, pre, cfgs, root, name, run_dir, cfg, overrides, split=split, resume=resume,
            overwrite=overwrite, init_from=init_from, wandb=wandb, amp=amp, device=device,
            progress=progress,
        )  # fmt: skip


def _train_locked(
    model, pre, cfgs, root, name, run_dir, cfg, overrides, *, split, resume, overwrite, init_from,
    wandb, amp, device, progress,
) -> TrainResult:  # fmt: skip
    """The rest of :func:`train_model`, under the run's lock."""
    gl = [c.name for c in cfgs]
    label = model + ("+clim" if pre.model.climatology_input else "")
    last = run_dir / "last.pt"
    rank = int(os.environ.get("RANK", "0"))
    if last.is_file() and not resume:
        if not overwrite:
            raise GlacierError(
                f"run {name!r} already exists ({last}): pass --resume to continue it, --overwrite to "
                "start it again, or another --run-name"
            )
        if rank == 0:
            for f in ("last.pt", "best.pt", "losses.csv", "epochs.csv", "summary.json"):
                (run_dir / f).unlink(missing_ok=True)
    if resume and last.is_file():
        stored = load_checkpoint(last)["config"]
        base = TrainConfig(
            **{
                k: v
                for k, v in stored["train"].items()
                if k in {f.name for f in fields(TrainConfig)}
            }
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
            ("glaciers", gl),
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
        cfg = override(base, **given)
    elif resume and rank == 0:
        print(
            f"note: {last} does not exist yet; starting run {name!r} from the beginning",
            file=sys.stderr,
        )

    train, val, info = load_sequences(
        root, cfgs, pre.patch, pre.stride, split, pre.model.climatology_input
    )
    _seed_all(cfg.seed)  # the same initial weights for the same seed
    net = build_model(model, pre)
    if init_from is not None:
        init_from = resolve_checkpoint(root, init_from)
        src = load_checkpoint(init_from)
        if src.get("model_name") != model:
            raise GlacierError(
                f"--init-from {init_from} holds a {src.get('model_name')!r} model, not {model!r}: pick a checkpoint of a {model} run"
            )
        if not (resume and last.is_file()):
            _load_weights(net, src["model"], init_from)
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
    if rank == 0 and progress:
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
        resume=resume,
        wandb_mode=wandb,
        wandb_root=root,
        device=device,
        amp=amp,
        progress=progress,
    )


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
    wandb: str = option(
        "offline",
        choices=WANDB_MODES,
        help="Weights & Biases mode (default offline: files under <data-root>/wandb, `wandb sync` "
        "later)",
    )
    amp: bool = option(False, help="bf16 mixed precision (CUDA only)")
    device: str | None = option(None, help="cpu, cuda or cuda:N (default: cuda when available)")
    progress: bool = option(True, flag="--no-progress", help="no progress bar")

    def __post_init__(self) -> None:
        get_preset(self.preset)
        if not self.glacier:
            raise SettingsError("glacier", "needs at least one glacier")

    @property
    def overrides(self) -> dict[str, Any]:
        """The TrainConfig fields set here (None: the preset's)."""
        names = ("epochs", "batch_size", "lr", "weight_decay", "optimizer", "max_steps",
                 "val_every", "ckpt_every", "seed", "teacher_forcing")  # fmt: skip
        return {k: getattr(self, k) for k in names}


def run(s: TrainSettings, catalog: Catalog) -> TrainResult:
    """The ``train`` stage: one run, its resolved settings in ``<run>/train.settings.toml``."""
    dev = announce_device(s.device).type
    if s.amp and dev != "cuda":
        print("note: --amp works on CUDA only; training in float32", file=sys.stderr)
    res = train_model(
        s.model, s.glacier, s.preset, root=catalog.root, split=s.split, run_name=s.run_name,
        resume=s.resume, overwrite=s.overwrite, init_from=s.init_from, wandb=s.wandb, amp=s.amp,
        device=s.device, progress=s.progress, patch=s.patch, stride=s.stride,
        convlstm=s.convlstm, climatology_input=s.climatology_input, **s.overrides,
    )  # fmt: skip
    if int(os.environ.get("RANK", "0")) == 0:
        settings.write(s, res.run_dir / "train.settings.toml", "train")
        clim = json.loads((res.run_dir / "summary.json").read_text())["config"].get(
            "climatology_val_loss", math.nan
        )
        print(
            f"{s.model}{'+clim' if s.climatology_input else ''}: {res.step} steps, "
            f"{res.epoch:g} epochs in {res.seconds:.0f} s; validation MSE {res.val_loss:.5f} (best "
            f"{res.best_val_loss:.5f}); baselines on the same sequences: persistence "
            f"{res.persistence_val_loss:.5f}, climatology {clim:.5f}; checkpoints in {res.run_dir}"
        )
    return res
