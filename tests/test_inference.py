"""Full-scene prediction, stitching and scene files (glacier_movement.inference)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from glacier_movement.errors import GlacierError
from glacier_movement.evaluation import inference, metrics
from glacier_movement.io import Frames
from tests.helpers import Echo, LastFrame, frames, frames_record


def test_scene_scores_carry_tile_bootstrap_intervals():
    rng = np.random.default_rng(3)
    targets = rng.random((4, 40, 60)).astype(np.float32)
    preds = targets + rng.normal(0, 0.1, targets.shape).astype(np.float32)
    # tile errors: the mean over equal tiles is the scene's error
    tiles = metrics.tile_errors(preds, targets, 20)
    assert tiles["MSE"].shape == (6,)
    assert tiles["MSE"].mean() == pytest.approx(float(((preds - targets) ** 2).mean()), rel=1e-6)
    assert tiles["MAE"][0] == pytest.approx(float(np.abs(preds - targets)[:, :20, :20].mean()))
    inputs = np.repeat(targets[:1], 4, axis=0)
    scene = inference.Scene(
        inputs=inputs, targets=targets, predictions=preds, persistence=inputs[-1:].repeat(4, 0),
        frame_indices=np.arange(8), window_start=np.arange(8).astype("datetime64[D]"),
        meta={"patch": 20},
    )  # fmt: skip
    df = inference.scene_scores(scene, n_resamples=500).set_index("predictor")
    for name in ("model", inference.PERSISTENCE):
        r = df.loc[name]
        assert r["MSE_low"] <= r["MSE"] <= r["MSE_high"]
        assert r["MAE_low"] <= r["MAE"] <= r["MAE_high"]
    assert df.loc["model", "MSE_high"] < df.loc[inference.PERSISTENCE, "MSE_low"]


@pytest.mark.parametrize("shape", [(40, 60), (37, 53)])
def test_predict_scene_of_identity_model_returns_inputs(shape):
    f = frames(8, *shape, seed=3)
    m = Echo()
    out = inference.predict_scene(m, f, patch=10, batch_size=7)
    assert out.shape == (4, *shape) and out.dtype == np.float32
    np.testing.assert_array_equal(out, f[:4])  # padding cropped off, patches back in place
    n_patches = -(-shape[0] // 10) * -(-shape[1] // 10)
    assert sum(m.batch_sizes) == n_patches and max(m.batch_sizes) == 7  # batched, not per patch
    assert not any(m.grad_enabled)
    np.testing.assert_array_equal(inference.persistence_scene(f), np.repeat(f[3:4], 4, axis=0))
    np.testing.assert_array_equal(
        inference.predict_scene(LastFrame(), f, patch=10), inference.persistence_scene(f)
    )


def test_predict_scene_rejects_short_input():
    with pytest.raises(GlacierError, match="needs"):
        inference.predict_scene(Echo(), frames(3), patch=10)


def test_scene_window_matches_the_original():
    np.testing.assert_array_equal(inference.scene_window(36), np.arange(28, 36))  # Parvati
    np.testing.assert_array_equal(inference.scene_window(27), np.arange(19, 27))  # Aletsch
    np.testing.assert_array_equal(inference.scene_window(36, last=10), np.arange(26, 34))
    for bad in (7, 37):
        with pytest.raises(GlacierError, match="--last"):
            inference.scene_window(36, last=bad)


class PatchMean(nn.Module):
    """Predicts every pixel of a patch as the mean of its input frame k, for lead k."""

    def forward(self, x, y=None):
        return x.mean(dim=(-2, -1), keepdim=True).expand_as(x).clone()


def test_predict_scene_stitches_each_patch_back_to_its_place():
    # a 25×32 scene in 10×10 patches: zero-padded to 30×40, 3×4 patches in row-major order
    f = frames(4, 25, 32, seed=5)
    out = inference.predict_scene(PatchMean(), f, patch=10, batch_size=5)
    padded = np.zeros((4, 30, 40), np.float32)
    padded[:, :25, :32] = f
    want = np.empty((4, 30, 40), np.float32)
    for r in range(3):
        for c in range(4):
            block = padded[:, 10 * r : 10 * r + 10, 10 * c : 10 * c + 10]
            want[:, 10 * r : 10 * r + 10, 10 * c : 10 * c + 10] = block.mean(axis=(1, 2))[
                :, None, None
            ]
    np.testing.assert_allclose(out, want[:, :25, :32], rtol=1e-6)
    # the lead order is kept: a model that reverses its frames gives the frames reversed
    flip = nn.Module()
    flip.forward = lambda x, y=None: torch.flip(x, dims=(1,))
    np.testing.assert_array_equal(inference.predict_scene(flip, f, patch=10), f[:4][::-1])


class ClimEcho(nn.Module):
    """A +clim model that forecasts the climatology of the 4 target windows."""

    clim_input = True

    def forward(self, x, y=None):
        assert x.shape[1] == 12  # 4 inputs, then the climatology of the 8 windows
        return x[:, 8:12].clone()


def test_predict_scene_gives_a_clim_model_the_climatology():
    f, clim = frames(8, 20, 20, seed=1), frames(8, 20, 20, seed=2)
    out = inference.predict_scene(ClimEcho(), f, patch=10, climatology=clim)
    np.testing.assert_array_equal(out, clim[4:])
    with pytest.raises(GlacierError, match="climatology"):
        inference.predict_scene(ClimEcho(), f, patch=10)


def _scene(seed: int = 0) -> inference.Scene:
    window = frames(8, 20, 30, seed=seed)
    clim = np.full((4, 20, 30), 0.4, np.float32)
    return inference.Scene(
        inputs=window[:4],
        targets=window[4:],
        predictions=np.clip(window[4:] + 0.05, 0, 1),
        persistence=inference.persistence_scene(window),
        frame_indices=np.arange(10, 18),
        window_start=(np.datetime64("2019-01", "M") + 3 * np.arange(8)).astype("datetime64[D]"),
        meta={"label": "run", "patch": 10},
        baselines={"persistence": inference.persistence_scene(window), "climatology": clim},
    )


def test_save_and_load_scene_round_trip(tmp_path):
    scene = _scene()
    fr: Frames = frames_record(frames(8, 20, 30), "parvati")
    written = inference.save_scene(scene, tmp_path / "run", fr)
    assert written[-1] == tmp_path / "run" / "scene.json"  # the completeness mark comes last
    back = inference.load_scene(tmp_path / "run")
    for name in ("inputs", "targets", "predictions", "persistence"):
        np.testing.assert_array_equal(getattr(back, name), getattr(scene, name))
    assert set(back.baselines) == {"persistence", "climatology"}
    np.testing.assert_array_equal(back.frame_indices, scene.frame_indices)
    np.testing.assert_array_equal(back.window_start, scene.window_start)
    # scores in scene.json are those of the arrays: the model's MSE is the mean squared error
    model = next(r for r in back.meta["scores"] if r["predictor"] == "model")
    assert model["MSE"] == pytest.approx(metrics.mse(scene.predictions, scene.targets))
    assert (tmp_path / "run" / "images" / "targets_3.png").is_file()
    (tmp_path / "run" / "scene.json").unlink()
    assert inference.load_scene(tmp_path / "run") is None  # incomplete: not a scene


def test_structure_scores_of_a_perfect_and_a_flat_forecast():
    scene = _scene(3)
    scene.predictions = scene.targets.copy()
    scene.baselines["flat"] = np.full_like(scene.targets, scene.targets.mean())
    df = inference.structure_scores(scene).set_index(["predictor", "lead"])
    perfect = df.loc["model"]
    np.testing.assert_allclose(perfect["pattern_corr"], 1.0)
    np.testing.assert_allclose(perfect["anomaly_corr"], 1.0)
    np.testing.assert_allclose(perfect["spatial_sd"], perfect["target_sd"])
    flat = df.loc["flat"]
    assert (flat["spatial_sd"] == 0).all() and flat["pattern_corr"].isna().all()
