"""The forecasters: shapes, teacher forcing, parameter counts, learning, the `models` command."""

from __future__ import annotations

import time

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
    SimVP,
    build_model,
    count_parameters,
)
from glacier_movement.models.simvp import INCEPTION_KERNELS
from glacier_movement.presets import PRESETS, get_preset, override

#: The paper's published parameter counts (docs/evaluation.md).
PAPER_COUNTS = {
    "salstm": 200_072_500,
    "lstm": 300_120_000,
    "convlstm": 1_554_593,
    "unet": 31_036_481,
}

#: Trained models that predict one frame at a time (and so take teacher forcing).
AUTOREGRESSIVE = [n for n in TRAINABLE if build_model(n, "tiny").autoregressive]

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


@pytest.mark.parametrize("preset", ["paper", "demo", "tiny"])
def test_simvp_shapes_at_every_preset(preset):
    # real tensors, not the meta device: the encoder/decoder sizes (50 → 25 → 13 → 25 → 50) and
    # GroupNorm must work for batch size 1
    torch.manual_seed(0)
    m = build_model("simvp", preset)
    p = get_preset(preset).patch
    for b in (1, 2):
        seq = blobs(b, p)
        out = m.train()(seq[:, :4], seq[:, 4:])
        assert out.shape == (b, 4, p, p) and torch.isfinite(out).all()
        with torch.no_grad():
            assert m.eval()(seq[:, :4]).shape == (b, 4, p, p)


@pytest.mark.parametrize("patch", [7, 13, 25, 33, 51])
@pytest.mark.parametrize("n_s", [1, 3, 4, 5])
def test_simvp_odd_patch_sizes_come_back_to_size(patch, n_s):
    m = SimVP(patch, hid_s=4, hid_t=8, n_s=n_s, n_t=2)
    x = torch.rand(1, 4, patch, patch)
    assert m(x).shape == (1, 4, patch, patch)
    # the latent frame is ⌈P / 2^(n_s // 2)⌉ wide: one stride-2 block per two blocks
    h = x.reshape(4, 1, patch, patch)
    for block in m.encoder:
        h = block(h)
    assert h.shape[-1] == -(-patch // 2 ** (n_s // 2))


def test_simvp_is_not_autoregressive_and_ignores_targets():
    torch.manual_seed(0)
    m = build_model("simvp", "tiny").train()
    seq = blobs(3, m.patch, seed=4)
    x, y = seq[:, :4], seq[:, 4:]
    yg = y.clone().requires_grad_(True)
    out = m(x, yg)
    torch.testing.assert_close(out, m(x))  # no dropout, no teacher forcing: the same output
    out.sum().backward()
    assert yg.grad is None  # the targets are not in the graph
    # every output frame depends on every input frame (one pass over the stacked frames)
    xg = x.clone().requires_grad_(True)
    m(xg)[:, 0].sum().backward()
    assert all(xg.grad[:, k].abs().sum() > 0 for k in range(4))
    with pytest.raises(ValueError, match="expects targets"):  # shapes are still checked
        m(x, y[:, :3])
    with pytest.raises(ValueError, match="T frames to T frames"):
        SimVP(10, n_in=4, n_out=2)
    tiny = get_preset("tiny")
    with pytest.raises(GlacierError, match="cannot build simvp.*must all be ≥ 1"):
        build_model("simvp", override(tiny, model=override(tiny.model, simvp_n_t=0)))


# ---------------------------------------------------------------------------- teacher forcing
@pytest.mark.parametrize("name", AUTOREGRESSIVE)
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


@pytest.mark.parametrize("name", ["lstm", "convlstm"])
def test_one_pass_teacher_forcing_is_the_step_by_step_one(name, monkeypatch):
    """The teacher-forced decoder in one pass (a speed-up, benchmarks/models.py) gives the
    outputs and gradients of running it step by step."""
    torch.manual_seed(1)
    m = build_model(name, "tiny").train()  # tiny: one LSTM layer, so no dropout
    seq = blobs(4, m.patch, seed=3)
    x, y = seq[:, :4], seq[:, 4:]

    def run(one_pass: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        monkeypatch.setattr(type(m), "one_pass_teacher", one_pass)
        m.zero_grad()
        out = m(x, y)
        out.square().mean().backward()
        return out.detach(), [p.grad.clone() for p in m.parameters()]

    (one, g1), (steps, g2) = run(True), run(False)
    torch.testing.assert_close(one, steps, rtol=1e-5, atol=1e-6)
    for a, b in zip(g1, g2, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_unet_weights_are_channels_last():
    m = build_model("unet", "tiny")
    convs = [c for c in m.modules() if isinstance(c, torch.nn.Conv2d)]
    assert convs and all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)


# --------------------------------------------------------------------------- parameter counts
@pytest.mark.parametrize("name", list(PAPER_COUNTS))
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


def simvp_count(hid_s: int, hid_t: int, n_s: int, n_t: int, t: int = 4, groups: int = 8) -> int:
    """SimVP's parameters from its layer list (conv weights + biases, GroupNorm scale + shift)."""

    def conv(cin, cout, k, g=1):
        return cin // g * cout * k * k + cout

    def inception(cin, cout):
        mid = hid_t // 2
        g = np.gcd.reduce([groups, mid, cout])
        return conv(cin, mid, 1) + sum(conv(mid, cout, k, g) + 2 * cout for k in INCEPTION_KERNELS)

    spatial = 2 * n_s * (conv(hid_s, hid_s, 3) + 2 * hid_s)  # encoder + decoder blocks …
    spatial += conv(1, hid_s, 3) - conv(hid_s, hid_s, 3)  # … the first sees one channel …
    spatial += conv(2 * hid_s, hid_s, 3) - conv(hid_s, hid_s, 3)  # … the last also the skip
    assert n_t >= 2  # the up path below: first block, middle blocks with skips, last block
    down = inception(t * hid_s, hid_t) + (n_t - 1) * inception(hid_t, hid_t)
    up = inception(hid_t, hid_t) + (n_t - 2) * inception(2 * hid_t, hid_t)
    up += inception(2 * hid_t, t * hid_s)
    return int(spatial + down + up + conv(hid_s, 1, 1))


@pytest.mark.parametrize("preset", list(PRESETS))
def test_simvp_count_follows_the_layer_formula(preset):
    mc = get_preset(preset).model
    with torch.device("meta"):
        n = count_parameters(build_model("simvp", preset))
    sizes = (mc.simvp_hid_s, mc.simvp_hid_t, mc.simvp_n_s, mc.simvp_n_t)
    assert n == simvp_count(*sizes)
    # the paper preset is the SimVP paper's Moving-MNIST size (64, 256, 4, 8) on 4 frames
    assert preset != "paper" or sizes == (64, 256, 4, 8)


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


def test_simvp_overfits_eight_sequences_quickly():
    """A tiny SimVP fits 8 fixed sequences to a tenth of persistence's MSE in < 15 s of CPU."""
    torch.manual_seed(0)
    m = build_model("simvp", "tiny").train()
    seq = blobs(8, m.patch, seed=3)
    x, y = seq[:, :4], seq[:, 4:]
    persistence = float(torch.nn.functional.mse_loss(x[:, 3:4].expand_as(y), y))
    opt = torch.optim.AdamW(m.parameters(), lr=1e-2, weight_decay=0.0)
    cpu = time.process_time()
    for _ in range(150):
        opt.zero_grad()
        torch.nn.functional.mse_loss(m(x), y).backward()
        opt.step()
    cpu = time.process_time() - cpu
    m.eval()
    with torch.no_grad():
        final = float(torch.nn.functional.mse_loss(m(x), y))
    assert final <= persistence / 10 and final < 5e-3, (final, persistence)
    assert cpu < 15, cpu


# ----------------------------------------------------------------------------------- CLI
def test_models_command_prints_paper_counts(capsys):
    assert cli.main(["models", "--preset", "paper"]) == 0
    out = capsys.readouterr().out
    for name, n in PAPER_COUNTS.items():
        line = next(ln for ln in out.splitlines() if ln.startswith(name + " "))
        assert f"{n:,}" in line
    assert "persistence" in out


@pytest.mark.parametrize("preset", ["paper", "demo"])
def test_models_command_lists_simvp_with_its_count(capsys, preset):
    assert cli.main(["models", "--preset", preset]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("simvp "))
    with torch.device("meta"):
        n = count_parameters(build_model("simvp", preset))
    assert line.split()[-1] == f"{n:,}"
    mc = get_preset(preset).model
    assert f"SimVP spatial {mc.simvp_hid_s} × {mc.simvp_n_s}, temporal {mc.simvp_hid_t}" in out


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
