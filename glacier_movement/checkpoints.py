"""Checkpoints: the file format, saving and loading, RNG state, and the device to run on.

A checkpoint (``<data-root>/models/<run>/last.pt`` or ``best.pt``, written by ``glacier-movement
train``) is one ``torch.save`` of a dict of plain types only — tensors, dict, list, str, int,
float, bool, None — so it loads with ``torch.load(..., weights_only=True)`` and no pickled code
ever runs (docs/models.md):

- ``format``: ``CHECKPOINT_FORMAT`` (a file without this mark is refused);
- ``model_name`` (e.g. ``"salstm"``) and ``model``: the model's ``state_dict``;
- ``optimizer``: the optimizer's ``state_dict`` (AdamW moments: twice the weights);
- the training state: ``step``, ``epoch``, ``batch_in_epoch`` (the position inside the epoch),
  ``epoch_loss_sum``, ``epoch_loss_count``, ``best_val_loss``, ``seconds`` (training wall time in
  s, summed over resumes) and ``wandb_id``;
- ``rng``: rank 0's RNG states (torch, numpy, python, cuda) as tensors and numbers, and under
  DistributedDataParallel ``rng_ranks``: every rank's, in rank order;
- ``config``: the run's record (preset, patch, stride, ``model_config``, glaciers, split,
  ``train`` settings …), from which :func:`load_model` rebuilds the model;
- ``metrics``: ``persistence_val_loss``, the baseline's validation MSE (NDSI²).
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import zipfile
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from . import io
from .catalog import Catalog
from .errors import DataError, GlacierError
from .models import MODELS, build_model
from .presets import ModelConfig, Preset

__all__ = [
    "CHECKPOINT_FORMAT",
    "plain",
    "save_checkpoint",
    "resolve_checkpoint",
    "load_checkpoint",
    "load_model",
    "load_weights",
    "seed_all",
    "rng_state",
    "rng_states",
    "restore_rng",
    "set_rng_state",
    "resolve_device",
    "announce_device",
    "device_report",
    "cuda_warning",
]

CHECKPOINT_FORMAT = "glacier-movement-checkpoint/1"


# --------------------------------------------------------------------------------- the format
def plain(obj: Any) -> Any:
    """``obj`` as plain Python types only (dict, list, str, int, float, bool, None), which
    ``torch.load(weights_only=True)`` and JSON both accept."""
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [plain(v) for v in obj]
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


def save_checkpoint(obj: dict[str, Any], path: Path) -> Path:
    """Write the checkpoint dict ``obj`` (plain types and tensors) to ``path`` atomically."""
    return io.write_serialized(path, lambda f: torch.save(obj, f), suffix=".tmp.pt")


def resolve_checkpoint(root: Path, ref: str | os.PathLike) -> Path:
    """A checkpoint file, or a run name under ``<root>/models/`` standing for its ``last.pt``."""
    path = Path(ref)
    run_last = Catalog(root).run(str(ref)).last
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
    """The preset a checkpoint's ``config`` record was trained with (enough to rebuild the model)."""
    known = {f.name for f in fields(ModelConfig)}
    mc: dict[str, Any] = {
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
    load_weights(model, ckpt.pop("model"), path)  # copied into the model: no second host copy
    model.to(device).eval()
    return model, ckpt


def load_weights(model: nn.Module, state: dict[str, torch.Tensor], path: str | os.PathLike) -> None:
    """Copy the weights ``state`` (of checkpoint ``path``) into ``model``; a mismatch (another
    preset or patch size) is a one-line :class:`GlacierError`."""
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        detail = lines[1] if len(lines) > 1 else lines[0]
        raise GlacierError(
            f"checkpoint {path} does not fit this {type(model).__name__} ({detail[:160]}): "
            "use the same preset/patch size it was trained with"
        ) from None


# ---------------------------------------------------------------------------------- RNG state
def seed_all(seed: int) -> None:
    """Seed python's, numpy's global and torch's RNGs with ``seed``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - seeds the global RNG other code may use
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
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


def rng_states(rank: int = 0, world: int = 1) -> list[dict[str, Any]] | None:
    """Every rank's :func:`rng_state`, in rank order, on rank 0 (None on the others).

    A collective under DDP (``world > 1``): every rank must call it at the same point (as the
    trainer's checkpoint save is).
    Each rank draws its own dropout masks, so each rank's state is kept, not only rank 0's.
    """
    own = rng_state()
    if world <= 1:
        return [own]
    states: list[Any] | None = [None] * world if rank == 0 else None
    torch.distributed.gather_object(own, states, dst=0)
    return states


def restore_rng(ckpt: dict[str, Any], rank: int, world: int, seed: int) -> bool:
    """Restore this rank's RNG state from a checkpoint; True when it was this rank's own.

    A checkpoint of the same world size restores every rank's own state (``rng_ranks``). From
    another world size (or an older checkpoint with rank 0's state only), rank 0 restores rank 0's
    and every other rank is reseeded deterministically from (seed, rank, step): the run continues
    reproducibly, but not bit-exactly as it would have with the old world size.
    """
    ranks = ckpt.get("rng_ranks")
    if ranks is not None and len(ranks) == world:
        set_rng_state(ranks[rank])
        return True
    if rank == 0:
        set_rng_state(ckpt["rng"])
        return True
    step = int(ckpt.get("step", 0))
    seed_all(int(np.random.SeedSequence([seed, rank, step]).generate_state(1, np.uint64)[0]))
    return False


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the RNG states saved by :func:`rng_state`."""
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


# ------------------------------------------------------------------------------------- device
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
