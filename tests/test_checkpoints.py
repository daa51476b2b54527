"""Checkpoints: the format's round trip, refused files, RNG state, run names, devices."""

from __future__ import annotations

import random
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from glacier_movement import checkpoints
from glacier_movement.checkpoints import (
    CHECKPOINT_FORMAT,
    load_checkpoint,
    load_model,
    plain,
    resolve_checkpoint,
    resolve_device,
    rng_state,
    save_checkpoint,
    seed_all,
    set_rng_state,
)
from glacier_movement.errors import DataError, GlacierError
from glacier_movement.models import build_model
from glacier_movement.presets import get_preset

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_checkpoint(path: Path, model_name: str = "salstm", seed: int = 3) -> torch.nn.Module:
    """Save a freshly built tiny-preset model as a checkpoint, as training writes it."""
    torch.manual_seed(seed)
    model = build_model(model_name, "tiny")
    record = {
        "preset": "tiny",
        "patch": 10,
        "stride": 10,
        "model_config": asdict(get_preset("tiny").model),
    }
    save_checkpoint(
        {
            "format": CHECKPOINT_FORMAT,
            "model_name": model_name,
            "model": model.state_dict(),
            "optimizer": {"state": {}, "param_groups": []},
            "step": 12,
            "rng": rng_state(),
            "config": plain(record),
        },
        path,
    )
    return model


def test_save_and_load_round_trip(tmp_path):
    model = tiny_checkpoint(tmp_path / "a.pt")
    ck = load_checkpoint(tmp_path / "a.pt")
    assert ck["format"] == CHECKPOINT_FORMAT and ck["step"] == 12
    assert ck["config"]["model_config"]["convlstm"] == list(get_preset("tiny").model.convlstm)
    loaded, rest = load_model(tmp_path / "a.pt", expect="salstm")
    assert not loaded.training and "model" not in rest and "optimizer" not in rest
    want = model.state_dict()
    assert loaded.state_dict().keys() == want.keys()
    assert all(torch.equal(v, want[k]) for k, v in loaded.state_dict().items())
    x = torch.rand(2, 4, 10, 10)
    model.eval()
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_plain_keeps_only_plain_types():
    out = plain(
        {1: (np.float32(0.5), np.int64(3)), "v": torch.__version__, "p": Path("/a"), "n": None}
    )
    assert out == {"1": [0.5, 3], "v": str(torch.__version__), "p": "/a", "n": None}
    assert type(out["v"]) is str and type(out["1"][0]) is float and type(out["1"][1]) is int


def test_foreign_and_corrupt_files_are_one_line_errors(tmp_path):
    tiny_checkpoint(tmp_path / "good.pt")
    data = (tmp_path / "good.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 3])
    (tmp_path / "text.pt").write_text("hello")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other_format.pt")
    torch.save({"format": "someone-else/1", "model": {}}, tmp_path / "other_mark.pt")
    torch.save({"format": CHECKPOINT_FORMAT, "model": {}, "x": Path("/")}, tmp_path / "pickle.pt")
    cases = {
        "cut.pt": "cannot be read",
        "text.pt": "is not a glacier-movement checkpoint",
        "other_format.pt": "no 'glacier-movement-checkpoint/1' format mark",
        "other_mark.pt": "format mark",
        "pickle.pt": "holds objects that are not weights",
        "missing.pt": "does not exist",
    }
    for name, why in cases.items():
        with pytest.raises(DataError, match=why) as err:
            load_checkpoint(tmp_path / name)
        assert "\n" not in str(err.value) and name in str(err.value)


def test_a_checkpoint_of_another_model_or_size_is_refused(tmp_path):
    tiny_checkpoint(tmp_path / "lstm.pt")
    with pytest.raises(GlacierError, match="holds a 'salstm' model, not 'unet'"):
        load_model(tmp_path / "lstm.pt", expect="unet")
    ck = load_checkpoint(tmp_path / "lstm.pt")
    ck["config"]["patch"] = 20  # the weights no longer fit the model built from the config
    save_checkpoint(ck, tmp_path / "resized.pt")
    with pytest.raises(GlacierError, match="does not fit this SALSTM"):
        load_model(tmp_path / "resized.pt")
    ck["model_name"] = "transformer"
    save_checkpoint(ck, tmp_path / "unknown.pt")
    with pytest.raises(DataError, match="unknown model 'transformer'"):
        load_model(tmp_path / "unknown.pt")


def test_rng_state_restore_repeats_the_same_draws(tmp_path):
    seed_all(11)
    torch.rand(5)
    np.random.rand(2)  # noqa: NPY002 - the global RNG is what checkpoints keep
    random.random()
    state = rng_state()
    save_checkpoint({"rng": state}, tmp_path / "rng.pt")

    def draws():
        return torch.rand(4), np.random.rand(4), [random.random() for _ in range(4)]  # noqa: NPY002

    first = draws()
    seed_all(99)  # move every RNG elsewhere, then restore through a file
    set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True)["rng"])
    again = draws()
    assert torch.equal(first[0], again[0])
    assert np.array_equal(first[1], again[1]) and first[2] == again[2]
    one = checkpoints.rng_states()  # one process: its own state only
    assert len(one) == 1 and torch.equal(one[0]["torch"], torch.get_rng_state())


def test_resolve_checkpoint_takes_a_file_or_a_run_name(tmp_path):
    run = tmp_path / "models" / "salstm-parvati-tiny"
    run.mkdir(parents=True)
    (run / "last.pt").write_bytes(b"x")
    assert resolve_checkpoint(tmp_path, "salstm-parvati-tiny") == run / "last.pt"
    assert resolve_checkpoint(tmp_path, run / "last.pt") == run / "last.pt"
    # an unknown run name or a path with a folder stays as given: loading it says it is missing
    for ref in ("no-such-run", str(tmp_path / "elsewhere" / "salstm-parvati-tiny")):
        assert resolve_checkpoint(tmp_path, ref) == Path(ref)
        with pytest.raises(DataError, match="does not exist: train the model first"):
            load_checkpoint(resolve_checkpoint(tmp_path, ref))


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    if torch.cuda.is_available():
        assert resolve_device("cuda").type == "cuda"
    else:
        assert resolve_device(None) == torch.device("cpu")
        with pytest.raises(GlacierError, match="no CUDA GPU is available: use --device cpu"):
            resolve_device("cuda")
