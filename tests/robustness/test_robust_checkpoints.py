"""Truncated, foreign and mismatched checkpoints, through the command line: one line naming the
checkpoint and the fix, exit 2, no output of the command written."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from tests.robustness.conftest import RUN

EVAL = ["--bootstrap", "0", "--device", "cpu"]
TRAIN = ["--glacier", "parvati", "--preset", "tiny", "--wandb", "disabled", "--device", "cpu"]


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])


# ------------------------------------------------------------------------------- truncated
@pytest.mark.parametrize(
    "command, args",
    [
        ("test", ["--checkpoint", "{ckpt}", *EVAL]),
        ("infer", ["--run", RUN, "--device", "cpu"]),
        ("train", ["--model", "salstm", "--run-name", RUN, "--resume", *TRAIN]),
        ("train", ["--model", "salstm", "--run-name", "tuned", "--init-from", RUN, *TRAIN]),
    ],
    ids=["test", "infer", "train-resume", "train-init-from"],
)
def test_truncated_checkpoint(cli, copy, trained_root, command, args):
    """The run's last.pt cut to a third (a copy killed mid-transfer, a full disk elsewhere)."""
    root = copy(trained_root)
    ckpt = root / "models" / RUN / "last.pt"
    _truncate(ckpt)
    args = [a.replace("{ckpt}", str(ckpt)) for a in args]
    cli.expect_error(
        command,
        args,
        [f"checkpoint {ckpt} cannot be read", "truncated or not a checkpoint", "train again"],
        root=root,
        watch=[root],
    )


# ------------------------------------------------------------------------- another model
@pytest.mark.parametrize(
    "command, args, words",
    [
        ("test", ["--run", RUN, "--model", "unet", *EVAL], ["holds a 'salstm' model, not 'unet'"]),
        (
            "infer",
            ["--run", RUN, "--model", "convlstm", "--device", "cpu"],
            ["holds a 'salstm' model, not 'convlstm'", "pick the convlstm run's checkpoint"],
        ),
        (
            "train",
            ["--model", "unet", "--run-name", RUN, "--resume", *TRAIN],
            [f"run '{RUN}' was trained with model='salstm', not 'unet'", "use another --run-name"],
        ),
        (
            "train",
            ["--model", "lstm", "--run-name", "tuned", "--init-from", RUN, *TRAIN],
            ["holds a 'salstm' model, not 'lstm'", "pick a checkpoint of a lstm run"],
        ),
    ],
    ids=["test", "infer", "train-resume", "train-init-from"],
)
def test_checkpoint_of_another_model(cli, copy, trained_root, command, args, words):
    root = copy(trained_root)
    cli.expect_error(command, args, words, root=root, watch=[root])


def test_checkpoint_without_the_format_mark(cli, copy, trained_root, tmp_path):
    """Weights only, but not written by `glacier-movement train` (e.g. a bare state_dict)."""
    root = copy(trained_root)
    foreign = tmp_path / "state_dict.pt"
    torch.save({"lstm.weight": torch.zeros(2, 2)}, foreign)
    cli.expect_error(
        "test",
        ["--checkpoint", foreign, *EVAL],
        [f"checkpoint {foreign} is not a glacier-movement checkpoint", "format mark"],
        root=root,
        watch=[root],
    )


def test_checkpoint_of_another_patch_size(cli, copy, trained_root):
    """A run folder holding a checkpoint of other sizes: the weights do not fit the model."""
    root = copy(trained_root)
    other = root / "models" / "other"
    other.mkdir()
    shutil.copy(root / "models" / RUN / "last.pt", other / "last.pt")
    cli.expect_error(
        "train",
        ["--model", "salstm", "--run-name", "x", "--init-from", "other", "--patch", "8", *TRAIN],
        ["checkpoint", "does not fit this", "use the same preset/patch size it was trained with"],
        root=root,
        watch=[root],
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA GPU")
@pytest.mark.parametrize("command", ["test", "infer", "train"])
def test_cuda_asked_for_without_a_gpu(cli, trained_root, command):
    """`--device cuda` on a CPU-only machine: the fix is named, nothing is written."""
    args = {
        "test": ["--run", RUN, "--bootstrap", "0"],
        "infer": ["--run", RUN],
        "train": ["--model", "salstm", "--run-name", "gpu", *TRAIN[:-2]],
    }[command]
    cli.expect_error(
        command,
        [*args, "--device", "cuda"],
        ["--device cuda was asked for but no CUDA GPU is available", "use --device cpu"],
        root=trained_root,
        watch=[trained_root],
    )
