"""The forecasters: shapes, teacher forcing, parameter counts, learning, the `models` command."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glacier_movement import cli
from glacier_movement.errors import GlacierError
from glacier_movement.models import (
    BASELINES,
    CONVLSTM_CONFIGS,
    MODELS,
    TRAINABLE,
    ConvLSTM,
    LinearExtrapolation,
    Persistence,
    build_model,
    count_parameters,
)
from glacier_movement.presets import PRESETS, get_preset, override

#: The paper's published parameter counts (SPEC 1.8).
PAPER_COUNTS = {
    "salstm": 200_072_500,
    "lstm": 300_120_000,
    "convlstm": 1_554_593,
    "unet": 31_036_481,
}

pytestmark = pytest.mark.usefixtures("one_thread")


def blobs(b: int, p: int, seed: int = 0, t: int = 8) -> torch.Tensor:
    """(b, t, p, p) masked-NDSI-like frames: bright discs drifting one pixel per frame."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(
        torch.arange(p, dtype=torch.float32), torch.arange(p, dtype=torch.float32), indexing="ij"
    )
    cy, cx = torch.rand(b, 1, generator=g) * p, torch.rand(b, 1, generator=g) * p
    r = 1.5 + torch.rand(b, 1, generator=g) * p / 4
    k = torch.arange(t, dtype=torch.float32)
    d2 = (yy - (cy + k)[..., None, None]) ** 2 + (xx - (cx + 0.5 * k)[..., None, None]) ** 2
    f = torch.exp(-d2 / r[..., None, None] ** 2)
    return torch.where(f >= 0.3, f, torch.zeros(()))


# ------------------------------------------------------------------------------------ shapes
@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("b", [1, 3])
def test_shapes_tiny_train_and_eval(name, b):
    torch.manual_seed(0)
    m = build_model(name, "tiny")
    p = get_preset("tiny").patch
    seq = blobs(b, p)
    x, y = seq[:, :4], seq[:, 4:]
    m.train()
    out = m(x, y)
    assert out.shape == (b, 4, p, p) and out.dtype == torch.float32 and torch.isfinite(out).all()
    if count_parameters(m):
        out.square().mean().backward()  # the graph reaches every parameter
        assert all(q.grad is not None for q in m.parameters())
    m.eval()
    with torch.no_grad():
        assert m(x).shape == (b, 4, p, p)


@pytest.mark.parametrize("preset", ["paper", "demo"])
@pytest.mark.parametrize("name", list(MODELS))
def test_shapes_big_presets_on_meta_device(name, preset):
    # Paper models hold up to 300 M parameters: the meta device checks shapes without memory.
    with torch.device("meta"):
        m = build_model(name, preset)
        p = get_preset(preset).patch
        for b in (1, 2):
            x, y = torch.empty(b, 4, p, p), torch.empty(b, 4, p, p)
            assert m.train()(x, y).shape == (b, 4, p, p)
            assert m.eval()(x).shape == (b, 4, p, p)


def test_wrong_input_shape_is_a_clear_error():
    m = build_model("salstm", "tiny")
    with pytest.raises(ValueError, match=r"expects input \(B, 4, 10, 10\)"):
        m(torch.zeros(2, 4, 12, 12))
    with pytest.raises(ValueError, match="expects targets"):
        m.train()(torch.zeros(2, 4, 10, 10), torch.zeros(2, 3, 10, 10))


# ---------------------------------------------------------------------------- teacher forcing
@pytest.mark.parametrize("name", TRAINABLE)
def test_teacher_forcing_feeds_the_targets(name):
    torch.manual_seed(1)
    m = build_model(name, "tiny").train()
    p = m.patch
    seq = blobs(4, p, seed=2)
    x, y = seq[:, :4], seq[:, 4:]

    def run(target):
        torch.manual_seed(123)  # the same dropout masks in every call
        return m(x, target)

    free = run(None)
    forced = run(y)
    # the first frame is predicted from the inputs alone; later ones from the fed frames
    torch.testing.assert_close(forced[:, 0], free[:, 0])
    assert not torch.equal(forced[:, 1:], free[:, 1:])
    # causality, through gradients (independent of how strongly an untrained model reacts):
    # predicted frame k depends on target k−1 (fed at step k) and on no later target
    for k in range(1, 4):
        yk = y.clone().requires_grad_(True)
        run(yk)[:, k].sum().backward()
        assert yk.grad[:, k - 1].abs().sum() > 0, k
        assert torch.all(yk.grad[:, k:] == 0), k
    # feeding the model's own predictions as "targets" reproduces free running exactly: the
    # targets enter precisely where the predictions would
    torch.testing.assert_close(run(free.detach()), free, rtol=1e-5, atol=1e-6)
    # in evaluation mode the targets are ignored
    m.eval()
    with torch.no_grad():
        torch.testing.assert_close(m(x, y), m(x))


# --------------------------------------------------------------------------- parameter counts
@pytest.mark.parametrize("name", TRAINABLE)
def test_paper_parameter_counts(name):
    with torch.device("meta"):
        n = count_parameters(build_model(name, "paper"))
    assert abs(n - PAPER_COUNTS[name]) <= 1e-3 * PAPER_COUNTS[name], (name, n)


def test_parameter_breakdown_matches_the_paper_architecture():
    with torch.device("meta"):
        sa = build_model("salstm", "paper")
        ed = build_model("lstm", "paper")
    assert count_parameters(sa.encoder) == 150_060_000  # LSTM(2500, 2500, 3)
    assert count_parameters(sa.attention) == 25_010_000  # MHA(2500, 5 heads)
    assert count_parameters(sa.head) == 25_002_500  # Linear(10000, 2500)
    assert count_parameters(ed.encoder) == count_parameters(ed.decoder) == 150_060_000


@pytest.mark.parametrize("config", list(CONVLSTM_CONFIGS))
def test_convlstm_counts_follow_the_cell_formula(config):
    ch = CONVLSTM_CONFIGS[config]
    ins = (1, ch[0], ch[1], ch[2], ch[3], ch[4])  # encoder from frames, decoder from encoder maps
    expected = (
        sum((i + h) * 4 * h * 9 + 4 * h for i, h in zip(ins, ch, strict=True)) + ch[5] * 9 + 1
    )
    with torch.device("meta"):
        assert count_parameters(ConvLSTM(50, config)) == expected
    assert config != "big" or expected == PAPER_COUNTS["convlstm"]


def test_baselines_have_no_parameters_and_do_what_they_say():
    x = torch.rand(2, 4, 10, 10)
    for name in BASELINES:
        assert count_parameters(build_model(name, "tiny")) == 0
    pers = Persistence(10)(x)
    assert torch.equal(pers, x[:, 3:4].expand(-1, 4, -1, -1))
    lin = LinearExtrapolation(10)(x)
    k = torch.arange(1, 5).view(1, 4, 1, 1)
    torch.testing.assert_close(lin, (x[:, 3:4] + k * (x[:, 3:4] - x[:, 2:3])).clamp(0, 1))


# ---------------------------------------------------------------------------------- errors
def test_unknown_model_or_preset_and_impossible_sizes():
    with pytest.raises(GlacierError, match="unknown model 'gru'"):
        build_model("gru", "tiny")
    with pytest.raises(GlacierError, match="unknown preset 'huge'"):
        build_model("lstm", "huge")
    tiny = get_preset("tiny")
    with pytest.raises(GlacierError, match="too small for depth"):
        build_model("unet", override(tiny, model=override(tiny.model, unet_depth=4)))
    with pytest.raises(GlacierError, match="not divisible by 3 attention heads"):
        build_model("salstm", override(tiny, model=override(tiny.model, heads=3)))


# ------------------------------------------------------------------------------- learning
@pytest.mark.parametrize(
    ("name", "steps", "lr"),
    [("salstm", 200, 3e-3), ("lstm", 200, 1e-2), ("convlstm", 150, 1e-2), ("unet", 150, 1e-2)],
)
def test_overfits_a_fixed_batch(name, steps, lr):
    """A few hundred steps on one fixed batch must cut the loss by 10× or more."""
    torch.manual_seed(0)
    m = build_model(name, "tiny").train()
    seq = blobs(4, m.patch, seed=3)
    x, y = seq[:, :4], seq[:, 4:]
    opt = torch.optim.AdamW(m.parameters(), lr=lr, weight_decay=0.0)
    first = None
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(m(x, y), y)
        loss.backward()
        torch.nn.utils.clip_grad_value_(m.parameters(), 3.0)
        opt.step()
        first = loss.item() if first is None else first
    m.eval()
    with torch.no_grad():
        final = float(torch.nn.functional.mse_loss(m(x), y))  # free-running, no teacher forcing
    assert final * 10 <= first, (name, first, final)


# ----------------------------------------------------------------------------------- CLI
def test_models_command_prints_paper_counts(capsys):
    assert cli.main(["models", "--preset", "paper"]) == 0
    out = capsys.readouterr().out
    for name, n in PAPER_COUNTS.items():
        line = next(ln for ln in out.splitlines() if ln.startswith(name + " "))
        assert f"{n:,}" in line
    assert "persistence" in out


def test_models_command_small_convlstm_and_bad_preset(capsys):
    assert cli.main(["models", "--preset", "paper", "--convlstm", "small"]) == 0
    assert "842,233" in capsys.readouterr().out  # ConvLSTM [64,64,24,24,64,24]
    assert cli.main(["models", "--preset", "nope"]) == 2
    assert "unknown preset 'nope'" in capsys.readouterr().err


def test_every_preset_builds_every_model():
    for preset in PRESETS:
        with torch.device("meta"):
            for name in MODELS:
                assert build_model(name, preset).patch == PRESETS[preset].patch
    assert np.isclose(get_preset("paper").train_config("unet").lr, 1e-3)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
@pytest.mark.parametrize("name", ["salstm", "lstm"])
def test_lstms_run_in_float32_and_learn_under_autocast(name, device):
    """--amp: the LSTMs stay float32 (on CUDA, cuDNN would run them in float16, where their
    gradients underflow to 0); on the CPU, bf16 autocast would run them in bf16."""
    torch.manual_seed(0)
    model = build_model(name, "tiny").train().to(device)
    x, y = torch.rand(3, 4, 10, 10, device=device), torch.rand(3, 4, 10, 10, device=device)
    lstms = [m for m in model.modules() if isinstance(m, torch.nn.LSTM)]
    dtypes = []
    hooks = [m.register_forward_hook(lambda m, i, o: dtypes.append(o[0].dtype)) for m in lstms]
    with torch.autocast(device, dtype=torch.bfloat16):
        pred = model(x, y)
    for h in hooks:
        h.remove()
    assert dtypes and set(dtypes) == {torch.float32}
    torch.nn.functional.mse_loss(pred.float(), y).backward()
    for m in lstms:
        for pname, p in m.named_parameters():
            assert p.grad is not None and p.grad.dtype == torch.float32, pname
            assert (p.grad != 0).float().mean() > 0.5, f"{pname}: mostly zero gradients"
