"""Baselines against hand-computed values on a tiny frame stack; the +clim wrapper; strict gap."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glacier_movement import baselines as bl
from glacier_movement.evaluation import persistence_forecast
from glacier_movement.evaluation.inference import persistence_scene
from glacier_movement.models import ClimatologyInput, LinearExtrapolation, Persistence, build_model
from glacier_movement.presets import get_preset, override
from glacier_movement.sequences import SequenceDataset, split_indices


def stack(t=12, value=lambda k: 0.1 * k):
    """(T, 1, 1) frames whose value is known per frame; 3-month windows from 2013-01."""
    frames = np.array([value(k) for k in range(t)], np.float32).reshape(t, 1, 1)
    start = (np.datetime64("2013-01", "M") + 3 * np.arange(t)).astype("datetime64[D]")
    return frames, start


def test_window_of_year():
    _, start = stack(8)
    np.testing.assert_array_equal(bl.window_of_year(start, 3), [0, 1, 2, 3, 0, 1, 2, 3])
    # Jan, Apr, Jul, Oct, Jan, Apr in 4-month windows
    np.testing.assert_array_equal(bl.window_of_year(start[:6], 4), [0, 0, 1, 2, 0, 0])


def test_climatology_uses_observed_frames_before_the_test_period_only():
    frames, start = stack(12)
    interp = np.zeros(12, bool)
    interp[4] = True  # window 0 of year 2: not an observation
    ref = bl.reference(frames, start, 3, interp, first_test_target=9)
    # window 0: frames 0 and 8 (4 interpolated) → (0.0 + 0.8) / 2; window 1: frames 1, 5 (9 is test)
    assert ref.clim[0, 0, 0] == pytest.approx(0.4)
    assert ref.clim[1, 0, 0] == pytest.approx(0.3)
    assert ref.clim[9, 0, 0] == pytest.approx(0.3)  # a test frame gets its window's climatology
    assert ref.clim[3, 0, 0] == pytest.approx(0.5)  # window 3: frames 3, 7
    assert not ref.fit[9:].any() and not ref.fit[4]


def test_each_baseline_against_hand_computed_values():
    frames, start = stack(12)
    ref = bl.reference(frames, start, 3, np.zeros(12, bool), first_test_target=9)
    take = bl.scene_take(ref)
    s = np.array([4])  # inputs 4…7, targets 8…11
    f = {name: bl.forecast(name, ref, s, take)[0, :, 0, 0] for name in bl.BASELINES}
    np.testing.assert_allclose(f["persistence"], [0.7] * 4)
    np.testing.assert_allclose(f["linear"], [0.8, 0.9, 1.0, 1.0], atol=1e-6)  # clipped at 1
    # climatology of windows 0…3 from frames 0…8: (0, 4, 8), (1, 5), (2, 6), (3, 7)
    np.testing.assert_allclose(f["climatology"], [0.4, 0.3, 0.4, 0.5], atol=1e-6)
    # seasonal-naive: the same window a year earlier, frames 4…7
    np.testing.assert_allclose(f["seasonal-naive"], [0.4, 0.5, 0.6, 0.7], atol=1e-6)
    a = ref.damping
    dep = 0.7 - 0.5  # last input (window 3) minus its climatology
    np.testing.assert_allclose(
        f["damped-persistence"], np.clip([0.4, 0.3, 0.4, 0.5] + a * dep, 0, 1), atol=1e-6
    )


def test_seasonal_naive_never_reads_a_target_with_three_windows_a_year():
    frames, start = stack(12)
    ref = bl.reference(frames, start, 4, np.zeros(12, bool), first_test_target=9)
    out = bl.forecast("seasonal-naive", ref, np.array([2]), bl.scene_take(ref))[0, :, 0, 0]
    # targets 6, 7, 8, 9; a year = 3 windows: 3, 4, 5, then 9 − 3 = 6 is a target → 9 − 6 = 3
    np.testing.assert_allclose(out, [0.3, 0.4, 0.5, 0.3], atol=1e-6)


def test_damping_is_fitted_by_least_squares_and_clipped():
    rng = np.random.default_rng(0)
    clim = np.zeros((20, 4, 4), np.float32)
    frames = np.zeros((20, 4, 4), np.float32)
    frames[0] = rng.random((4, 4))
    for k in range(1, 20):  # AR(1) anomalies with factor 0.5
        frames[k] = 0.5 * frames[k - 1]
    a = bl.fit_damping(frames, clim, np.arange(5), 4, 4)
    np.testing.assert_allclose(a, [0.5, 0.25, 0.125, 0.0625], rtol=1e-5)
    assert (bl.fit_damping(-frames * 0 + frames[::-1], clim, np.arange(3), 4, 4) <= 1).all()


def test_dataset_take_matches_reference_forecasts_on_patches():
    rng = np.random.default_rng(1)
    frames = rng.random((12, 20, 20)).astype(np.float32)
    _, start = stack(12)
    ref = bl.reference(frames, start, 3, np.zeros(12, bool), first_test_target=9)
    ds = SequenceDataset(frames, patch=10, stride=5, climatology=ref.clim)
    idx = np.array([0, 7, len(ds) - 1])
    s, r, c = ds.position(idx)
    got = bl.forecast("climatology", ref, s, lambda st, fi: ds.take(st, fi, r, c))
    for k in range(len(idx)):
        y0, x0 = r[k] * 5, c[k] * 5
        want = ref.clim[s[k] + 4 : s[k] + 8, y0 : y0 + 10, x0 : x0 + 10]
        np.testing.assert_array_equal(got[k], want)


def test_clim_input_batches_and_wrapper():
    rng = np.random.default_rng(2)
    frames = rng.random((10, 12, 12)).astype(np.float32)
    clim = rng.random((10, 12, 12)).astype(np.float32)
    ds = SequenceDataset(frames, patch=6, stride=6, climatology=clim, clim_input=True)
    x, y = ds.batch([0, 5])
    assert x.shape == (2, 12, 6, 6) and y.shape == (2, 4, 6, 6)
    np.testing.assert_array_equal(x[0, 4:].numpy(), clim[0:8, :6, :6])
    # a wrapped persistence predicts climatology + the last input's departure
    m = ClimatologyInput(Persistence(6))
    pred = m(x)
    want = x[:, 3:4] - x[:, 7:8] + x[:, 8:]
    torch.testing.assert_close(pred, want)
    # every trainable model gets a +clim variant through the preset
    pre = get_preset("tiny")
    pre = override(pre, model=override(pre.model, climatology_input=True))
    net = build_model("salstm", pre)
    assert net.clim_input and net(torch.zeros(2, 12, pre.patch, pre.patch)).shape == (
        2,
        4,
        pre.patch,
        pre.patch,
    )


def test_strict_split_drops_windows_interpolated_from_the_test_period():
    frames = np.random.default_rng(3).random((20, 10, 10)).astype(np.float32)
    interp = np.zeros(20, bool)
    plain = split_indices(SequenceDataset(frames, patch=10, stride=10), "strict")
    first = plain.test_target_frames[0]
    interp[first - 2 : first] = True  # filled from the first test target frame
    ds = SequenceDataset(frames, patch=10, stride=10, interpolated=interp)
    strict = split_indices(ds, "strict")
    starts = ds.position(np.concatenate([strict.train, strict.val]))[0]
    assert (starts + ds.length - 1 < first - 2).all()
    assert strict.dropped == plain.dropped + 2
    np.testing.assert_array_equal(ds.observed_targets([0]), [True])


def test_one_implementation_of_persistence_and_linear_for_tables_scenes_and_models():
    """The tables' baselines (``forecast``), the full scenes (``persistence_scene``), the
    evaluation fallback and the torch forecasters give the same numbers, bit for bit."""
    rng = np.random.default_rng(0)
    frames = rng.random((12, 6, 6)).astype(np.float32)
    start = (np.datetime64("2013-01", "M") + 3 * np.arange(12)).astype("datetime64[D]")
    ref = bl.reference(frames, start, 3, np.zeros(12, bool), first_test_target=9)
    x = torch.from_numpy(frames[None, 2:6].copy())  # inputs 2…5 of the sequence starting at 2
    with torch.no_grad():
        pers_t = Persistence(6).eval()(x).numpy()
        lin_t = LinearExtrapolation(6).eval()(x).numpy()
    pers = bl.forecast("persistence", ref, np.array([2]), bl.scene_take(ref))
    lin = bl.forecast("linear", ref, np.array([2]), bl.scene_take(ref))
    np.testing.assert_array_equal(pers, pers_t)
    np.testing.assert_array_equal(lin, lin_t)
    np.testing.assert_array_equal(persistence_forecast(frames[None, 2:6]), pers)
    np.testing.assert_array_equal(persistence_scene(frames[2:10]), pers[0])
    np.testing.assert_array_equal(pers[0], np.repeat(frames[5:6], 4, axis=0))  # by hand
    want = np.clip(frames[5] + np.arange(1, 5)[:, None, None] * (frames[5] - frames[4]), 0, 1)
    np.testing.assert_allclose(lin[0], want, atol=1e-6)
    with pytest.raises(bl.GlacierError, match="unknown baseline 'nope'"):
        bl.forecast("nope", ref, np.array([2]), bl.scene_take(ref))


def _moving_glacier(t=20, size=48, speed=(0.01, 0.02)):
    """A textured glacier band moving at a known steady velocity (px/day) over rock, with a
    seasonal brightness cycle: (frames, window starts, velocity (2, H, W), mask)."""
    rng = np.random.default_rng(3)
    import cv2

    tex = cv2.GaussianBlur(rng.random((size, size)).astype(np.float32), (0, 0), 2.0)
    tex = (tex - tex.min()) / (tex.max() - tex.min())
    mask = np.zeros((size, size), bool)
    mask[:, 8:40] = True
    vel = np.zeros((2, size, size), np.float32)
    vel[0][mask], vel[1][mask] = speed
    start = (np.datetime64("2013-01", "M") + 3 * np.arange(t)).astype("datetime64[D]")
    days = (start - start[0]).astype(np.float64)
    from glacier_movement.motion import advect

    frames = np.stack(
        [
            np.where(mask, 0.3 + 0.6 * advect(tex, vel * np.float32(d)), 0.1 * (k % 4))
            for k, d in enumerate(days)
        ]
    ).astype(np.float32)
    return frames, start, vel, mask


def test_advect_and_oracle_read_no_target_frame_and_crop_like_the_scene(tmp_path):
    """advect and the oracle are whole-frame forecasts cut to patches (the same numbers as the
    scene's); neither changes when the target frames change; the oracle needs the truth."""
    from glacier_movement.evaluation import PatchTake

    frames, start, vel, mask = _moving_glacier()
    ref = bl.reference(frames, start, 3, np.zeros(len(frames), bool), first_test_target=16)
    with pytest.raises(Exception, match="truth"):
        bl.forecast(bl.ORACLE, ref, np.array([10]), bl.scene_take(ref))
    ref.mask, ref.velocity = mask, vel
    ds = SequenceDataset(frames, patch=16, stride=16, climatology=ref.clim)
    idx = np.arange(len(ds))
    s, r, c = ds.position(idx)
    for name in ("advect", bl.ORACLE):
        patches = bl.forecast(name, ref, s, PatchTake(ds, r, c))
        scenes = bl.forecast(name, ref, s, bl.scene_take(ref))
        for k in (0, len(idx) // 2, len(idx) - 1):
            np.testing.assert_array_equal(
                patches[k], scenes[k][:, r[k] * 16 : r[k] * 16 + 16, c[k] * 16 : c[k] * 16 + 16]
            )
        # a start whose targets are changed: the same forecast (fresh caches)
        changed = frames.copy()
        changed[16:] = 0.5
        ref2 = bl.reference(changed, start, 3, np.zeros(len(frames), bool), first_test_target=16)
        ref2.mask, ref2.velocity = mask, vel
        st = np.array([12])  # inputs 12…15, targets 16…19: the test period
        np.testing.assert_array_equal(
            bl.forecast(name, ref2, st, bl.scene_take(ref2)),
            bl.forecast(name, ref, st, bl.scene_take(ref)),
        )


def test_oracle_carries_the_departure_by_the_true_motion():
    """On a glacier that only moves, the oracle's factors on the glacier are ≈ 1 and it beats the
    climatology and advect there by a wide margin; off the glacier (a pure seasonal cycle) it is
    the climatology."""
    frames, start, vel, mask = _moving_glacier()
    ref = bl.reference(frames, start, 3, np.zeros(len(frames), bool), first_test_target=16)
    ref.mask, ref.velocity = mask, vel
    a = bl.fit_oracle(ref)
    assert a.shape == (2, 4) and (a[0] > 0.8).all()
    st = np.array([12])
    take = bl.scene_take(ref)
    orc = bl.forecast(bl.ORACLE, ref, st, take)[0]
    clim = bl.forecast("climatology", ref, st, take)[0]
    target = frames[16:20]
    inner = mask.copy()
    inner[:4], inner[-4:] = False, False  # away from the replicated edges
    err = {n: float(((f - target)[:, inner] ** 2).mean()) for n, f in (("o", orc), ("c", clim))}
    assert err["o"] < 0.2 * err["c"]
    np.testing.assert_allclose(orc[:, ~mask], np.clip(clim[:, ~mask], 0, 1), atol=1e-6)


def test_attach_truth_without_a_truth_file_leaves_real_data_alone(tmp_path):
    from glacier_movement.io import Frames  # noqa: F401  (the Frames type attach_truth takes)

    frames, start = stack(12)
    ref = bl.reference(frames, start, 3, np.zeros(12, bool), first_test_target=9)
    assert bl.attach_truth(ref, None, tmp_path / "truth.npz").velocity is None  # type: ignore[arg-type]
    assert bl.ORACLE in bl.REFERENCES and bl.ORACLE not in bl.BASELINES
