"""presets.py: `override`, `get_preset`, and the invariants of every preset that the models, the
patch grid and the training loop rely on (a wrong edit of a preset fails here, by name)."""

from __future__ import annotations

from dataclasses import fields

import pytest
import torch

from glacier_movement.errors import GlacierError
from glacier_movement.models import (
    CONVLSTM_CONFIGS,
    MODELS,
    TRAINABLE,
    build_model,
    count_parameters,
)
from glacier_movement.presets import PRESETS, ModelConfig, TrainConfig, get_preset, override
from glacier_movement.sequences import patch_grid

PRESET_NAMES = sorted(PRESETS)


# ------------------------------------------------------------------------------- override
def test_override_changes_only_the_given_fields_and_returns_a_new_object():
    base = TrainConfig()
    new = override(base, lr=0.5, epochs=3)
    assert (new.lr, new.epochs) == (0.5, 3)
    changed = {f.name for f in fields(TrainConfig) if getattr(new, f.name) != getattr(base, f.name)}
    assert changed == {"lr", "epochs"}
    assert base.lr != 0.5  # frozen original untouched


def test_override_ignores_none_but_keeps_falsy_values():
    base = TrainConfig(max_steps=7, seed=3)
    assert override(base, lr=None, max_steps=None) == base
    # 0, 0.0 and False are settings, not "not given" (max_steps=0 is out of bounds: TRAIN_BOUNDS)
    new = override(base, weight_decay=0.0, seed=0, teacher_forcing=False)
    assert (new.weight_decay, new.seed, new.teacher_forcing) == (0.0, 0, False)


def test_override_rejects_unknown_fields_naming_them_and_the_class():
    with pytest.raises(GlacierError) as e:
        override(ModelConfig(), heads=2, hedas=3, depht=1)
    msg = str(e.value)
    assert "['depht', 'hedas']" in msg and "ModelConfig" in msg and "heads" not in msg
    # an unknown field is an error even when its value is None
    with pytest.raises(GlacierError, match="TrainConfig"):
        override(TrainConfig(), learning_rate=None)


def test_override_nests_on_a_preset():
    tiny = get_preset("tiny")
    new = override(tiny, patch=20, model=override(tiny.model, heads=4))
    assert (new.patch, new.model.heads, new.model.layers) == (20, 4, tiny.model.layers)
    assert new.train is tiny.train and get_preset("tiny").patch == 10


# ------------------------------------------------------------------------------ get_preset
@pytest.mark.parametrize("name", PRESET_NAMES)
def test_get_preset_returns_the_preset_of_that_name(name):
    assert get_preset(name) is PRESETS[name] and get_preset(name).name == name


def test_get_preset_unknown_name_lists_the_choices():
    with pytest.raises(GlacierError) as e:
        get_preset("Tiny")
    msg = str(e.value)
    assert "unknown preset 'Tiny'" in msg and all(n in msg for n in PRESET_NAMES)
    assert "\n" not in msg


# -------------------------------------------------------------------- per-model train configs
@pytest.mark.parametrize("name", PRESET_NAMES)
def test_every_trainable_model_has_its_own_train_config(name):
    """`train_config` falls back to TrainConfig()'s defaults (batch 100, 40 epochs) for a model a
    preset forgot: a new model must get an explicit entry in every preset."""
    preset = get_preset(name)
    assert set(preset.train) == set(TRAINABLE)
    for model in TRAINABLE:
        assert preset.train_config(model) is preset.train[model]
    assert preset.train_config("no-such-model") == TrainConfig()


def test_demo_and_tiny_keep_the_papers_regularisation_and_optimizer():
    """demo and tiny shrink the budget; they keep the paper's weight decay, clipping, optimizer
    and teacher-forcing choice per model (the demo U-Net alone trains on its own outputs)."""
    paper = get_preset("paper")
    for name in ("demo", "tiny"):
        for model in TRAINABLE:
            ours, ref = get_preset(name).train_config(model), paper.train_config(model)
            assert ours.weight_decay == ref.weight_decay, (name, model)
            assert (ours.optimizer, ours.clip_value) == (ref.optimizer, ref.clip_value)
            if (name, model) != ("demo", "unet"):
                assert ours.teacher_forcing == ref.teacher_forcing, (name, model)
    assert not get_preset("demo").train_config("unet").teacher_forcing
    for name in PRESET_NAMES:  # SimVP predicts all frames at once: nothing to teacher-force
        assert not get_preset(name).train_config("simvp").teacher_forcing


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_budgets_are_consistent(name):
    """Every setting passes training's checks (the same bounds as `train`'s errors), and the
    smaller presets train no longer and at no bigger batch than the paper's."""
    paper = get_preset("paper")
    for model in TRAINABLE:
        cfg = get_preset(name).train_config(model)
        assert cfg.epochs >= 1 and cfg.batch_size >= 1 and cfg.lr > 0 and cfg.clip_value > 0
        assert cfg.weight_decay >= 0 and cfg.val_every >= 1 and cfg.ckpt_every >= 1
        assert cfg.max_steps is None  # presets train whole epochs; max_steps is for one run
        assert cfg.optimizer in ("adam", "rmsprop")
        ref = paper.train_config(model)
        assert cfg.epochs <= ref.epochs and cfg.batch_size <= ref.batch_size, model


# --------------------------------------------------------------- model sizes the models rely on
@pytest.mark.parametrize("name", PRESET_NAMES)
def test_attention_heads_divide_the_lstm_width(name):
    """The LSTMs' hidden size is patch²; SA-LSTM splits it over ``heads``."""
    p = get_preset(name)
    assert p.model.heads >= 1 and (p.patch**2) % p.model.heads == 0


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_unet_bottleneck_is_at_least_2_px(name):
    """Each of the ``unet_depth`` max-pools halves the patch (floor); BatchNorm needs ≥ 2 px."""
    p = get_preset(name)
    size = p.patch
    for _ in range(p.model.unet_depth):
        size //= 2
    assert size >= 2, (p.patch, p.model.unet_depth)


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_convlstm_and_simvp_sizes(name):
    m = get_preset(name).model
    spec = CONVLSTM_CONFIGS[m.convlstm] if isinstance(m.convlstm, str) else m.convlstm
    assert len(spec) == 6 and min(spec) >= 1  # encoder 3 + decoder 3 hidden channel counts
    assert min(m.simvp_hid_s, m.simvp_hid_t, m.simvp_n_s, m.simvp_n_t) >= 1
    assert 0 <= m.dropout < 1 and m.layers >= 1 and not m.climatology_input


@pytest.mark.parametrize("name", ["demo", "tiny"])
def test_scene_sizes_fit_the_patch_grid(name):
    """A synthetic scene is tiled without a margin both by the training grid (patch, stride) and
    by full-scene inference (non-overlapping patches), and holds several patches a side."""
    p = get_preset(name)
    assert p.scene_size and {"parvati", "aletsch"} <= set(p.scene_size)
    for glacier, (h, w) in p.scene_size.items():
        n_r, n_c = patch_grid(h, w, p.patch, p.stride)
        assert (n_r - 1) * p.stride + p.patch == h and (n_c - 1) * p.stride + p.patch == w, glacier
        assert h % p.patch == 0 and w % p.patch == 0, glacier
        assert min(h, w) >= 4 * p.patch, glacier


# ------------------------------------------------ the registry gives the presets' former values
#: (preset, model, parameters, (lr, weight_decay, batch_size, epochs, val_every, ckpt_every,
#: teacher_forcing)) as the presets held them before the model registry (commit e82f18e).
BEFORE_REGISTRY = [
    ("paper", "salstm", 200072500, (0.0001, 0.001, 100, 50, 100, 500, True)),
    ("paper", "lstm", 300120000, (0.0001, 0.001, 100, 40, 100, 500, True)),
    ("paper", "convlstm", 1554593, (0.0001, 0.001, 100, 40, 100, 500, True)),
    ("paper", "unet", 31036481, (0.001, 0.01, 100, 20, 100, 500, True)),
    ("paper", "simvp", 14471297, (0.01, 0.0, 100, 40, 100, 500, False)),
    ("paper", "persistence", 0, None),
    ("paper", "linear", 0, None),
    ("demo", "salstm", 5131600, (0.003, 0.001, 32, 2, 25, 100, True)),
    ("demo", "lstm", 7699200, (0.0003, 0.001, 32, 2, 25, 100, True)),
    ("demo", "convlstm", 35433, (0.003, 0.001, 32, 1, 25, 100, True)),
    ("demo", "unet", 482449, (0.003, 0.01, 32, 2, 25, 100, False)),
    ("demo", "simvp", 231905, (0.001, 0.0, 32, 2, 25, 100, False)),
    ("demo", "persistence", 0, None),
    ("demo", "linear", 0, None),
    ("tiny", "salstm", 161300, (0.0001, 0.001, 16, 1, 5, 10, True)),
    ("tiny", "lstm", 161600, (0.0001, 0.001, 16, 1, 5, 10, True)),
    ("tiny", "convlstm", 6613, (0.0001, 0.001, 16, 1, 5, 10, True)),
    ("tiny", "unet", 7477, (0.001, 0.01, 16, 1, 5, 10, True)),
    ("tiny", "simvp", 15161, (0.01, 0.0, 16, 1, 5, 10, False)),
    ("tiny", "persistence", 0, None),
    ("tiny", "linear", 0, None),
]


@pytest.mark.parametrize(("preset", "model", "params", "train"), BEFORE_REGISTRY)
def test_registry_keeps_every_train_config_and_parameter_count(preset, model, params, train):
    p = get_preset(preset)
    with torch.device("meta"):
        assert count_parameters(build_model(model, p)) == params
    if train is None:
        assert model not in p.train
        return
    cfg = p.train_config(model)
    keys = ("lr", "weight_decay", "batch_size", "epochs", "val_every", "ckpt_every")
    assert tuple(getattr(cfg, k) for k in (*keys, "teacher_forcing")) == train
    assert (cfg.optimizer, cfg.clip_value, cfg.max_steps, cfg.seed) == ("adam", 3.0, None, 0)


def test_registry_keeps_the_model_order():
    """The built-in models keep their order (a model added later may follow them)."""
    before = [(p, m) for p, m, *_ in BEFORE_REGISTRY]
    known = {m for _, m in before}
    assert before == [(p, m) for p in PRESETS for m in MODELS if m in known]
