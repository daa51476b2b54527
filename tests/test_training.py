"""Training: logs, checkpoints, exact resume, fine-tuning, wandb modes, DDP, and bad input."""

from __future__ import annotations

import csv
import math
import os
import signal
import subprocess
import sys
import time
import weakref
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from glacier_movement import checkpoints, cli, config, io, training
from glacier_movement.errors import DataError, GlacierError
from glacier_movement.models import build_model
from glacier_movement.presets import get_preset, override
from glacier_movement.settings import SettingsError
from glacier_movement.training import (
    CHECKPOINT_FORMAT,
    TrainSettings,
    default_run_name,
    fit,
    load_checkpoint,
    load_model,
    train_model,
)
from tests.helpers import frames_record

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent

pytestmark = pytest.mark.usefixtures("one_thread")


# ------------------------------------------------------------------------------------ data
def blob_frames(t: int, size: int, seed: int = 0) -> np.ndarray:
    """(t, size, size) float32 masked NDSI: soft discs drifting ~1 px per frame."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    n = 5
    cy, cx, r = rng.uniform(0, size, n), rng.uniform(0, size, n), rng.uniform(3, 7, n)
    out = np.zeros((t, size, size), np.float32)
    for k in range(t):
        d2 = (
            (yy[None] - ((cy + k) % size)[:, None, None]) ** 2
            + (xx[None] - ((cx + 0.5 * k) % size)[:, None, None]) ** 2
        ) / r[:, None, None] ** 2
        f = np.exp(-d2).max(axis=0)
        out[k] = np.where(f >= 0.3, f, 0)
    return out


def write_frames(root: Path, glacier: str, t: int = 12, size: int = 40, seed: int = 0) -> Path:
    fr = blob_frames(t, size, seed)
    path = config.Paths(root, glacier).frames
    io.write_frames(path, frames_record(fr, glacier))
    return path


def tensor_data(n: int = 40, p: int = 10, seed: int = 5):
    fr = torch.from_numpy(blob_frames(n + 8, 3 * p, seed))
    # sequences of one patch position, starting at every frame
    seq = torch.stack([fr[s : s + 8, :p, :p] for s in range(n)])
    return TensorDataset(seq[:, :4].contiguous(), seq[:, 4:].contiguous())


TINY_RECORD = {
    "patch": 10,
    "stride": 10,
    "preset": "tiny",
    "model_config": asdict(get_preset("tiny").model),
}


def tiny_fit(run_dir: Path, model: str = "salstm", resume: bool = False, **changes):
    ds = tensor_data()
    cfg = override(
        get_preset("tiny").train_config(model),
        **{"batch_size": 6, "epochs": 3, "val_every": 2, "ckpt_every": 4, "lr": 1e-2, **changes},
    )
    torch.manual_seed(0)
    net = build_model(model, "tiny")
    return fit(
        model, net, (ds, np.arange(32)), (ds, np.arange(32, 40)), cfg, run_dir,
        record=TINY_RECORD, resume=resume, wandb_mode="disabled", progress=False,
        device="cpu",  # bit-exact comparisons: cuDNN's backward is not deterministic
    )  # fmt: skip


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def same_weights(a: Path, b: Path) -> bool:
    sa, sb = load_checkpoint(a)["model"], load_checkpoint(b)["model"]
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# ------------------------------------------------------------------------------ the loop
def test_fit_writes_logs_and_checkpoints(tmp_path):
    res = tiny_fit(tmp_path / "run", epochs=2)
    spe = math.ceil(32 / 6)  # 6 steps per epoch
    assert res.step == 2 * spe and res.epoch == 2 and res.completed
    steps = read_csv(tmp_path / "run" / "losses.csv")
    assert [int(r["step"]) for r in steps] == list(range(1, 2 * spe + 1))
    assert [bool(r["val_loss"]) for r in steps] == [s % 2 == 0 for s in range(1, 2 * spe + 1)]
    epochs = read_csv(tmp_path / "run" / "epochs.csv")
    assert [r["epoch"] for r in epochs] == ["1", "2"]
    assert float(epochs[-1]["val_loss"]) == pytest.approx(res.val_loss, rel=1e-6)
    ck = load_checkpoint(res.last)
    assert ck["format"] == CHECKPOINT_FORMAT and ck["model_name"] == "salstm"
    assert ck["step"] == 2 * spe and ck["epoch"] == 2 and ck["batch_in_epoch"] == 0
    assert {"torch", "numpy", "python"} <= set(ck["rng"]) and "state" in ck["optimizer"]
    assert ck["config"]["train"]["batch_size"] == 6 and ck["config"]["n_train"] == 32
    model, _ = load_model(res.best, expect="salstm")
    assert not model.training
    assert res.best_val_loss == pytest.approx(min(float(r["val_loss"]) for r in epochs), rel=1e-6)
    assert np.isfinite(res.persistence_val_loss) and (tmp_path / "run" / "summary.json").is_file()


def test_resume_after_a_stop_gives_the_same_weights(tmp_path):
    full = tiny_fit(tmp_path / "a", max_steps=15)  # 2.5 epochs, uninterrupted
    tiny_fit(tmp_path / "b", max_steps=9)  # "killed" in the middle of epoch 2 …
    resumed = tiny_fit(tmp_path / "b", max_steps=15, resume=True)  # … and resumed
    assert resumed.step == full.step == 15
    assert same_weights(full.last, resumed.last)
    oa, ob = load_checkpoint(full.last)["optimizer"], load_checkpoint(resumed.last)["optimizer"]
    assert all(
        torch.equal(oa["state"][k]["exp_avg"], ob["state"][k]["exp_avg"]) for k in oa["state"]
    )
    for name in ("losses.csv", "epochs.csv"):  # the partial-epoch rows of the stop are replaced
        assert read_csv(tmp_path / "a" / name) == read_csv(tmp_path / "b" / name)


@pytest.mark.parametrize("model", ["salstm", "unet"])
def test_teacher_forcing_off_trains_on_the_models_own_predictions(tmp_path, model):
    on = tiny_fit(tmp_path / "on", model=model, max_steps=3)
    off = tiny_fit(tmp_path / "off", model=model, max_steps=3, teacher_forcing=False)
    again = tiny_fit(tmp_path / "again", model=model, max_steps=3, teacher_forcing=False)
    assert not same_weights(on.last, off.last)  # the decoder saw other inputs …
    assert same_weights(off.last, again.last)  # … deterministically
    assert load_checkpoint(off.last)["config"]["train"]["teacher_forcing"] is False


def test_resume_of_a_finished_run_trains_nothing(tmp_path):
    first = tiny_fit(tmp_path / "r", epochs=1)
    again = tiny_fit(tmp_path / "r", epochs=1, resume=True)
    assert again.step == first.step and same_weights(first.last, again.last)
    assert again.val_loss == pytest.approx(first.val_loss)


# ----------------------------------------------------------------------------- checkpoints
def test_bad_checkpoints_are_one_line_errors(tmp_path):
    res = tiny_fit(tmp_path / "run", epochs=1)
    with pytest.raises(GlacierError, match="holds a 'salstm' model, not 'unet'"):
        load_model(res.last, expect="unet")
    data = res.last.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    torch.save({"format": CHECKPOINT_FORMAT, "model": {}, "x": Path("/")}, tmp_path / "pickled.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    for name in ("cut.pt", "junk.pt", "pickled.pt", "foreign.pt", "missing.pt"):
        with pytest.raises(DataError) as err:
            load_model(tmp_path / name)
        assert "\n" not in str(err.value) and name in str(err.value)


def test_load_model_keeps_optimizer_state_off_the_device(tmp_path):
    res = tiny_fit(tmp_path / "run", epochs=1)
    model, ck = load_model(res.last, device="cpu")
    assert "optimizer" not in ck and "model" not in ck  # the weights are in the model
    assert ck["model_name"] == "salstm" and ck["step"] == res.step
    saved = load_checkpoint(res.last)["model"]
    assert all(torch.equal(v, saved[k]) for k, v in model.state_dict().items())


def test_resumed_checkpoint_is_dropped_before_training(tmp_path, monkeypatch):
    """The host copy of last.pt is freed once restored: no reference outlives the restore."""
    tiny_fit(tmp_path / "run", max_steps=3)
    refs, real = [], training.load_checkpoint

    def spy(path, map_location="cpu"):
        ck = real(path, map_location)
        refs.append(weakref.ref(next(iter(ck["model"].values()))))
        return ck

    seen = []

    class Watched(TensorDataset):
        def batch(self, idx):  # the loop's fetch: is the checkpoint still alive?
            seen.append([r() is None for r in refs])
            return self[torch.as_tensor(idx)]

    ds = tensor_data()
    monkeypatch.setattr(training.runner, "load_checkpoint", spy)  # where _restore reads it
    cfg = override(get_preset("tiny").train_config("salstm"), batch_size=6, max_steps=5)
    torch.manual_seed(0)
    fit("salstm", build_model("salstm", "tiny"), (Watched(*ds.tensors), np.arange(32)),
        (ds, np.arange(32, 40)), cfg, tmp_path / "run", record=TINY_RECORD, resume=True,
        wandb_mode="disabled", progress=False, device="cpu")  # fmt: skip
    assert len(refs) == 1 and seen and all(all(s) for s in seen)


def test_rng_restore_per_rank(tmp_path):
    """Each rank restores its own RNG state; from another world size rank 0 restores rank 0's
    and the others are reseeded deterministically (from seed, rank and step)."""
    states = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        states.append(checkpoints.rng_state())
    ck = {"rng": states[0], "rng_ranks": states, "step": 7}

    def draw(rank, world, ckpt):
        own = checkpoints.restore_rng(ckpt, rank, world, seed=0)
        return own, torch.rand(3)

    torch.manual_seed(1)
    want0 = torch.rand(3)
    torch.manual_seed(2)
    want1 = torch.rand(3)
    assert draw(0, 2, ck) == (True, pytest.approx(want0))
    own, got1 = draw(1, 2, ck)
    assert own and torch.equal(got1, want1)
    # a 3-rank resume of the 2-rank checkpoint: rank 0's own state, fresh seeds for the others
    assert torch.equal(draw(0, 3, ck)[1], want0)
    own, a = draw(2, 3, ck)
    assert not own and torch.equal(a, draw(2, 3, ck)[1])  # deterministic
    assert not torch.equal(a, draw(1, 3, ck)[1]) and not torch.equal(a, want0)
    # an older checkpoint with rank 0's state only: rank 1 no longer repeats rank 0's masks
    old = {"rng": states[0], "step": 7}
    assert not draw(1, 2, old)[0] and not torch.equal(draw(1, 2, old)[1], want0)


def test_more_ranks_than_gpus_is_one_line():
    training._check_gpu_count(0, 1)
    training._check_gpu_count(3, 4, 4)
    with pytest.raises(
        GlacierError, match=r"started 2 processes .* sees 1 GPU\(s\): use --nproc_per_node=1"
    ):
        training._check_gpu_count(1, 1, 2)
    with pytest.raises(GlacierError, match="no CUDA GPU is available: use --device cpu"):
        training._check_gpu_count(0, 0, 1)


# --------------------------------------------------------------------------- command line
def train_cli(root: Path, *args: str) -> int:
    base = ["train", "--data-root", str(root), "--preset", "tiny", "--no-progress"]
    return cli.main([*base, "--device", "cpu", *args])  # CPU: the resume steps are compared


def test_cli_train_refuse_resume_and_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "data"
    lstm = ["--glacier", "parvati", "--model", "lstm", "--wandb", "disabled"]
    assert train_cli(root, *lstm) == 2
    assert "preprocess --glacier parvati" in capsys.readouterr().err
    write_frames(root, "parvati")
    run = root / "models" / default_run_name("lstm", "parvati", "tiny")
    assert train_cli(root, *lstm, "--max-steps", "3") == 0
    out, err = capsys.readouterr()
    assert "device: cpu (1 CPU thread; torch " in err  # the device in use, one line
    assert "validation MSE" in out and "persistence" in out
    assert len(read_csv(run / "losses.csv")) == 3 and (run / "last.pt").is_file()
    assert not (root / "wandb").exists() and not (tmp_path / "wandb").exists()  # disabled: nothing
    # an existing run is not silently overwritten …
    assert train_cli(root, *lstm) == 2
    assert "--resume" in capsys.readouterr().err
    # … a resumed run keeps its settings …
    assert train_cli(root, *lstm, "--resume", "--lr", "0.5") == 2
    assert "lr=0.0001" in capsys.readouterr().err
    # … and continues from its checkpoint
    assert train_cli(root, *lstm, "--resume", "--max-steps", "5", "--epochs", "2") == 0
    assert [r["step"] for r in read_csv(run / "losses.csv")] == ["1", "2", "3", "4", "5"]
    # unknown names are one-line errors
    assert train_cli(root, "--glacier", "everest", "--model", "lstm") == 2
    assert "unknown glacier 'everest'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train_cli(root, "--glacier", "parvati", "--model", "transformer")


def test_cli_wandb_offline_writes_a_run_under_the_data_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    root = tmp_path / "data"
    write_frames(root, "parvati")
    assert (
        train_cli(root, "--glacier", "parvati", "--model", "unet", "--max-steps", "2") == 0
    )  # offline by default
    runs = list((root / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("run-*.wandb"))
    assert not (tmp_path / "wandb").exists()  # nothing in the working directory


def test_two_glaciers_and_fine_tuning(tmp_path):
    root = tmp_path / "data"
    write_frames(root, "parvati", seed=1)
    write_frames(root, "aletsch", t=10, size=30, seed=2)
    quiet = dict(preset="tiny", wandb="disabled", progress=False)
    mixed = train_model(
        TrainSettings(model="convlstm", glacier=("parvati", "aletsch"), max_steps=2, **quiet),
        root,
    )
    assert mixed.run_dir.name == "convlstm-parvati+aletsch-tiny"
    # parvati 12 frames of 40² → 5 starts × 16 patches; aletsch 10 of 30² → 3 × 9; each split 80/20 then 90/10
    assert mixed.n_train == int(int(80 * 0.8) * 0.9) + int(int(27 * 0.8) * 0.9)

    base = train_model(
        TrainSettings(model="lstm", glacier=("parvati",), max_steps=2, **quiet), root
    )
    tuned = train_model(
        TrainSettings(
            model="lstm",
            glacier=("aletsch",),
            init_from=str(base.last),
            max_steps=1,
            lr=1e-12,
            **quiet,
        ),
        root,
    )
    assert tuned.run_dir.name == "lstm-aletsch-tiny-finetuned"
    a, b = load_checkpoint(base.last)["model"], load_checkpoint(tuned.last)["model"]
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)  # started from the weights
    assert load_checkpoint(tuned.last)["config"]["init_from"] == str(base.last)
    with pytest.raises(GlacierError, match="holds a 'convlstm' model, not 'lstm'"):
        train_model(
            TrainSettings(
                model="lstm", glacier=("aletsch",), init_from=str(mixed.last), run_name="x", **quiet
            ),
            root,
        )


def test_simvp_trains_saves_and_loads_through_the_cli(tmp_path, capsys, monkeypatch):
    """`train --model simvp` and `test --model simvp` run through the ordinary path; the
    checkpoint loads back into the same model with the same predictions."""
    from glacier_movement.models import SimVP

    monkeypatch.chdir(tmp_path)
    root = tmp_path / "data"
    write_frames(root, "parvati")
    simvp = ["--glacier", "parvati", "--model", "simvp", "--wandb", "disabled"]
    t0 = time.perf_counter()
    assert train_cli(root, *simvp, "--epochs", "2", "--batch-size", "8") == 0
    assert time.perf_counter() - t0 < 30
    assert "simvp:" in capsys.readouterr().out
    run = root / "models" / default_run_name("simvp", "parvati", "tiny")
    ck = load_checkpoint(run / "last.pt")
    assert ck["model_name"] == "simvp" and ck["epoch"] == 2
    assert ck["config"]["train"]["teacher_forcing"] is False  # nothing to force: all at once
    assert ck["config"]["train"]["lr"] == get_preset("tiny").train_config("simvp").lr
    model, _ = load_model(run / "last.pt", expect="simvp")
    assert isinstance(model, SimVP) and not model.training
    state = model.state_dict()
    assert state.keys() == ck["model"].keys()
    assert all(torch.equal(state[k], ck["model"][k]) for k in state)
    fresh = build_model("simvp", "tiny")
    fresh.load_state_dict(ck["model"])
    x = torch.from_numpy(blob_frames(4, 10, seed=9))[None]
    with torch.no_grad():
        torch.testing.assert_close(model(x), fresh.eval()(x), rtol=0, atol=0)
    # resuming continues the run; the evaluation command takes the checkpoint
    assert train_cli(root, *simvp, "--resume", "--epochs", "3") == 0
    assert load_checkpoint(run / "last.pt")["epoch"] == 3
    capsys.readouterr()
    args = ["test", "--data-root", str(root), "--run", run.name, "--model", "simvp"]
    assert cli.main([*args, "--bootstrap", "0"]) == 0
    assert "| simvp-parvati-tiny |" in capsys.readouterr().out


def test_persistence_is_not_trainable():
    with pytest.raises(SettingsError, match="model persistence has no parameters to train"):
        TrainSettings(model="persistence", glacier=("parvati",), preset="tiny")


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [("lr", 0.0, "lr must be > 0"), ("lr", float("nan"), "lr must be > 0"),
     ("batch_size", 0, "batch_size must be ≥ 1"), ("max_steps", 0, "max_steps must be ≥ 1")],
)  # fmt: skip
def test_train_settings_name_the_setting_out_of_bounds(field, value, words):
    """The bounds live in the settings (presets.TRAIN_BOUNDS): a bad value is refused when the
    settings are made, with the setting's name (the command line shows its flag)."""
    with pytest.raises(SettingsError, match=words) as e:
        TrainSettings(model="lstm", glacier=("parvati",), **{field: value})
    assert e.value.field == field
    with pytest.raises(SettingsError, match=words):
        override(get_preset("tiny").train_config("lstm"), **{field: value})


def test_cli_names_the_lr_flag(capsys):
    assert cli.main(["train", "--glacier", "parvati", "--model", "lstm", "--lr", "-1"]) == 2
    assert "--lr must be > 0 (got -1.0)" in capsys.readouterr().err


# ----------------------------------------------------------------------------------- DDP
def test_torchrun_two_process_gloo_run(tmp_path):
    root = tmp_path / "data"
    write_frames(root, "parvati")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [
        str(VENV_BIN / "torchrun"), "--standalone", "--nproc_per_node=2", "-m", "glacier_movement",
        "train", "--data-root", str(root), "--glacier", "parvati", "--model", "salstm", "--preset", "tiny",
        "--epochs", "2", "--batch-size", "8", "--wandb", "disabled", "--no-progress", "--device", "cpu",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = root / "models" / "salstm-parvati-tiny"
    assert sorted(p.name for p in run.glob("*.pt")) == ["best.pt", "last.pt"]
    ck = load_checkpoint(run / "last.pt")
    n_train = ck["config"]["n_train"]  # 57: each process takes ⌈57 / 2⌉ = 29 → 4 batches of 8
    spe = math.ceil(math.ceil(n_train / 2) / 8)
    assert ck["config"]["world_size"] == 2 and ck["step"] == 2 * spe
    # each rank's own RNG state (its dropout masks), rank 0's also as "rng"
    r0, r1 = ck["rng_ranks"]
    assert torch.equal(r0["torch"], ck["rng"]["torch"]) and not torch.equal(
        r0["torch"], r1["torch"]
    )
    steps = [int(r["step"]) for r in read_csv(run / "losses.csv")]
    assert steps == list(range(1, 2 * spe + 1))  # written once (rank 0), not per process
    assert proc.stdout.count("validation MSE") == 1


# ---------------------------------------------------------------------------------- slow
@pytest.mark.slow
def test_killed_process_resumes_to_the_same_weights(tmp_path):
    """Really kill (SIGKILL) a training process after a checkpoint, resume it, compare."""
    root = tmp_path / "data"
    write_frames(root, "parvati", t=16)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    base = [
        str(VENV_BIN / "glacier-movement"), "train", "--data-root", str(root), "--glacier", "parvati",
        "--model", "salstm", "--preset", "tiny", "--epochs", "6", "--batch-size", "4", "--ckpt-every", "5",
        "--wandb", "disabled", "--no-progress", "--device", "cpu",
    ]  # fmt: skip
    subprocess.run(
        [*base, "--run-name", "full"], check=True, env=env, capture_output=True, timeout=600
    )
    proc = subprocess.Popen(
        [*base, "--run-name", "cut"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    last = root / "models" / "cut" / "last.pt"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if last.is_file() and load_checkpoint(last)["step"] >= 10:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "training finished before it could be killed: make it longer"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    subprocess.run(
        [*base, "--run-name", "cut", "--resume"],
        check=True,
        env=env,
        capture_output=True,
        timeout=600,
    )
    assert same_weights(root / "models" / "full" / "last.pt", last)
    assert read_csv(root / "models" / "full" / "epochs.csv") == read_csv(
        root / "models" / "cut" / "epochs.csv"
    )
