"""The ``advect`` forecast (advection.py) on constructed frames with known motion."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from glacier_movement import advection as adv
from glacier_movement.baselines import reference
from glacier_movement.errors import GlacierError
from glacier_movement.motion import Truth
from glacier_movement.sequences import SequenceDataset

#: A uniform ice velocity, px/day ([0] x, [1] y): 3.65 px right and 7.3 px down per year.
V = np.array([0.01, 0.02])
#: Seasonal brightness of the four 3-month windows (winter … autumn).
GAIN = np.array([1.0, 0.92, 0.75, 0.86])
SIZE, MARGIN = 64, 24


def _pattern(seed: int = 0) -> np.ndarray:
    """A smooth random texture, NDSI 0.35 … 0.95, larger than the frames (margins for shifts)."""
    rng = np.random.default_rng(seed)
    big = SIZE + 2 * MARGIN
    tex = ndimage.gaussian_filter(rng.standard_normal((big, big)), 1.5)
    tex = (tex - tex.min()) / (tex.max() - tex.min())
    return 0.35 + 0.6 * tex


def _shifted(pattern: np.ndarray, days: float) -> np.ndarray:
    """The pattern moved by V × days (sub-pixel, bilinear), cropped to SIZE × SIZE."""
    d = V * days
    moved = ndimage.shift(pattern, (d[1], d[0]), order=1, mode="nearest")
    return moved[MARGIN : MARGIN + SIZE, MARGIN : MARGIN + SIZE].astype(np.float32)


def _world(years: int = 3):
    """Quarterly frames of a texture moving at V with a seasonal brightness change."""
    starts = np.array(
        [f"{2013 + k // 4}-{1 + 3 * (k % 4):02d}-01" for k in range(4 * years)],
        dtype="datetime64[D]",
    )
    days = (starts - starts[0]).astype(np.float64)
    pattern = _pattern()
    frames = np.stack([_shifted(pattern, d) * GAIN[k % 4] for k, d in enumerate(days)]).astype(
        np.float32
    )
    return frames, starts, days, pattern


def test_pairs_are_the_same_window_of_the_year_known_before_the_last_input():
    known = np.ones(12, bool)
    known[5] = False
    # frame 5 is unknown: no (1, 5) nor (5, 9); frames after 9 are not known yet
    assert adv.tracking_pairs(known, 9, (4,)) == [(0, 4), (2, 6), (3, 7), (4, 8)]
    assert adv.tracking_pairs(known, 9, (4, 8)) == [(0, 4), (2, 6), (3, 7), (4, 8), (0, 8), (1, 9)]
    assert adv.pair_separations(adv.Tracking(max_years=2), 4) == (4, 8)
    assert adv.pair_separations(adv.Tracking(separations=(1, 2)), 4) == (1, 2)


def test_target_days_count_calendar_months():
    starts = np.array(["2013-07-01", "2013-10-01"], dtype="datetime64[D]")
    # from 2013-10-01 to 2014-01-01, -04-01, -07-01, -10-01
    np.testing.assert_array_equal(adv.target_days(starts, 1, 3, 4), [92, 182, 273, 365])


def test_phase_correlation_finds_a_known_shift():
    big = _pattern(1)
    # b(x) = a(x − d) with d = (−5, 3): b's tile is the pattern 3 rows up, 5 columns right
    a, b = big[30:62, 30:62], big[27:59, 35:67]
    shift, response = adv.phase_correlate(a[None], b[None], adv._hann(32)[None])
    # one pass is biased a little towards 0 by the window (what track_pair's passes remove)
    np.testing.assert_allclose(shift[0], [-5, 3], atol=0.35)
    assert response[0] > 0.3


def test_window_deformation_removes_the_window_bias():
    big = _pattern(2)
    moved = ndimage.shift(big, (2.2, -4.6), order=3, mode="nearest")  # d = (−4.6, 2.2)
    a, b = big[MARGIN:-MARGIN, MARGIN:-MARGIN], moved[MARGIN:-MARGIN, MARGIN:-MARGIN]
    mask = np.ones(a.shape, bool)
    one = adv.track_pair(a, b, mask, adv.Tracking(iterations=1))[2]
    two = adv.track_pair(a, b, mask, adv.Tracking(iterations=2))[2]
    inner = two[1:-1, 1:-1].reshape(-1, 2)
    np.testing.assert_allclose(np.median(inner, axis=0), [-4.6, 2.2], atol=0.1)

    def bias(g: np.ndarray) -> float:
        return float(np.abs(np.median(g[1:-1, 1:-1].reshape(-1, 2), 0) - [-4.6, 2.2]).sum())

    assert bias(two) < bias(one)


def test_median_test_drops_the_one_outlier():
    grid = np.full((5, 5, 2), 1.0)
    grid += np.random.default_rng(0).normal(0, 0.01, grid.shape)
    grid[2, 2] = [5.0, -3.0]
    grid[0, 4] = np.nan
    keep = adv.median_test(grid, threshold=2.0, eps=0.1)
    assert not keep[2, 2] and not keep[0, 4]
    assert keep.sum() == 23


@pytest.mark.parametrize("name", ["same-season", "adjacent"])
def test_velocity_and_forecast_of_a_moving_texture(name):
    frames, starts, days, pattern = _world()
    t = frames.shape[0]
    last = t - 5  # inputs end at frame 7; targets 8 … 11
    s = adv.Tracking(tile=32, step=8) if name == "same-season" else adv.TRACKING[name]
    known = np.arange(t) <= last
    mask = np.ones((SIZE, SIZE), bool)
    vel = adv.estimate_velocity(frames, starts, known, last, 4, mask, s)
    assert vel.tiles > 0 and all(j <= last for _, j in vel.pairs)
    inner = (slice(12, -12), slice(12, -12))
    for c in range(2):
        np.testing.assert_allclose(np.median(vel.velocity[c][inner]), V[c], atol=0.0015)
    truth = Truth(np.broadcast_to(V[:, None, None], (2, SIZE, SIZE)).astype(np.float32), mask)
    err = adv.velocity_error(vel.velocity, truth, 91.3)
    assert err["epe_px_window"] < 0.25 < err["zero_epe_px_window"]

    clim = np.full((4, SIZE, SIZE), 0.5, np.float32)
    out = adv.advect_forecast(frames, starts, 3, known, last, clim, mask, s)
    assert out.fallback == ""
    np.testing.assert_array_equal(out.days, [92, 182, 273, 365])  # from 2014-10-01
    for k in range(4):
        # the last input's brightness carried to where the texture will be
        expected = _shifted(pattern, days[last] + out.days[k]) * GAIN[last % 4]
        err = np.abs(out.forecast[k] - expected)[inner]
        assert np.median(err) < 0.01, (k, np.median(err))
        assert np.median(np.abs(frames[last] - expected)[inner]) > 3 * np.median(err)


def test_climatology_off_the_glacier_and_without_a_glacier():
    frames, starts, _, _ = _world()
    known = np.arange(12) <= 7
    clim = np.full((4, SIZE, SIZE), 0.5, np.float32)
    mask = np.zeros((SIZE, SIZE), bool)
    mask[:, :32] = True
    out = adv.advect_forecast(frames, starts, 3, known, 7, clim, mask, adv.TRACKING["adjacent"])
    assert out.fallback == ""
    np.testing.assert_array_equal(out.forecast[:, :, 32:], clim[:, :, 32:])
    assert not np.allclose(out.forecast[:, :, :32], 0.5)
    none = adv.advect_forecast(frames, starts, 3, known, 7, clim, np.zeros_like(mask))
    assert none.fallback == "no glacier pixel"
    np.testing.assert_array_equal(none.forecast, clim)


def test_too_little_history_falls_back_to_climatology():
    frames, starts, _, _ = _world(years=1)
    clim = np.full((4, SIZE, SIZE), 0.5, np.float32)
    # four windows known: no window has its same window of the year before it
    same = adv.TRACKING["same-season"]
    out = adv.advect_forecast(frames[:4], starts[:4], 3, np.ones(4, bool), 3, clim, s=same)
    assert out.fallback == "no pair of frames to track known at forecast time"
    assert out.velocity.pairs == []
    np.testing.assert_array_equal(out.forecast, clim)
    # adjacent pairs need two known windows: the last input alone is not enough
    known = np.array([False, False, False, True])
    out = adv.advect_forecast(frames[:4], starts[:4], 3, known, 3, clim)
    assert out.fallback == "no pair of frames to track known at forecast time"


def test_sequence_forecasts_are_patches_of_the_scene_forecasts():
    frames, starts, _, _ = _world()
    ref = reference(frames, starts, 3, np.zeros(12, bool), first_test_target=8)
    ds = SequenceDataset(frames, patch=16, stride=16, climatology=ref.clim)
    idx = np.array([5, 16 * 2 + 3, 16 * 3 + 15, 16 * 2 + 9])  # starts 0, 2, 3, 2
    mask = np.ones((SIZE, SIZE), bool)
    out = adv.sequence_forecasts(ds, ref, starts, 3, idx, mask)
    assert out.shape == (4, 4, 16, 16)
    scenes, _ = adv.scene_forecasts(frames, starts, 3, ref.fit, ref.clim, np.array([2]), mask)
    for b in (1, 3):  # the two sequences of start 2
        s, r, c = ds.position(idx[b])
        assert s == 2
        patch = scenes[0, :, 16 * r : 16 * r + 16, 16 * c : 16 * c + 16]
        np.testing.assert_array_equal(out[b], patch)


def test_default_mask_is_snow_ice_in_every_known_frame():
    frames = np.full((3, 4, 4), 0.5, np.float32)
    frames[1, 0, 0] = 0.0
    frames[2, 3, 3] = 0.0  # frame 2 is not known: does not count
    m = adv.default_mask(frames, np.array([True, True, False]))
    assert not m[0, 0] and m[3, 3] and m.sum() == 15


def test_scene_forecasts_stack_one_forecast_per_start():
    frames, starts, _, _ = _world()
    clim = np.full((12, SIZE, SIZE), 0.5, np.float32)
    out, runs = adv.scene_forecasts(
        frames, starts, 3, np.arange(12) < 8, clim, np.array([3, 4]), np.ones((SIZE, SIZE), bool)
    )
    assert out.shape == (2, 4, SIZE, SIZE) and [r.fallback for r in runs] == ["", ""]
    # start 3 (last input 6) may use frames up to 6 only
    assert max(j for _, j in runs[0].velocity.pairs) == 6


def test_bad_settings_are_named():
    with pytest.raises(GlacierError, match="tracking method"):
        adv.Tracking(method="lucas-kanade")
    with pytest.raises(GlacierError, match="tile"):
        adv.Tracking(tile=7)
    with pytest.raises(GlacierError, match="separations"):
        adv.Tracking(separations=(0,))


def test_advect_velocity_errors_are_empty_without_a_truth(tmp_path):
    from glacier_movement import config
    from glacier_movement.evaluation import advect_velocity_errors

    paths = config.Paths(tmp_path, "parvati")
    assert advect_velocity_errors(paths, config.get_glacier("parvati"), 10, 10).empty
