"""Farneback flow on NDSI frames and its endpoint error against known motion."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from glacier_movement import motion as fl
from glacier_movement.errors import DataError
from glacier_movement.io import save_npz


def textured_blob(h=120, w=120, seed=0):
    """A snow/ice-like frame: a textured blob of NDSI 0.3…1 on 0 background, and its core mask."""
    rng = np.random.default_rng(seed)
    tex = ndimage.gaussian_filter(rng.random((h, w)), 2.0)
    tex = (tex - tex.min()) / (tex.max() - tex.min())
    yy, xx = np.mgrid[:h, :w]
    blob = np.exp(-(((yy - h / 2) / (h / 4)) ** 2 + ((xx - w / 2) / (w / 4)) ** 2))
    img = np.where(blob > 0.3, 0.3 + 0.7 * tex * blob, 0.0).astype(np.float32)
    return img, blob > 0.5


@pytest.mark.parametrize(("dx", "dy"), [(3, 2), (-2, 3)])
def test_flow_of_a_known_shift_is_recovered(dx, dy):
    img, core = textured_blob()
    moved = ndimage.shift(img, (dy, dx), order=1)
    f = fl.farneback(img, moved)
    assert f.shape == (2, *img.shape) and f.dtype == np.float32
    assert abs(f[0][core].mean() - dx) < 0.5 and abs(f[1][core].mean() - dy) < 0.5
    true = np.broadcast_to(np.array([dx, dy], np.float32)[:, None, None], f.shape)
    assert fl.endpoint_error(f, true, core) < 0.5


def test_flow_needs_the_0_255_scale():
    """README: Farneback on 0–1 floats (as the original passed them) sees almost no motion."""
    import cv2

    img, core = textured_blob()
    moved = ndimage.shift(img, (2, 3), order=1)
    p = fl.FARNEBACK
    raw = cv2.calcOpticalFlowFarneback(
        img,
        moved,
        None,
        p["pyr_scale"],
        p["levels"],
        p["winsize"],
        p["iterations"],
        p["poly_n"],
        p["poly_sigma"],
        p["flags"],
    )
    assert np.abs(raw[..., 0][core]).mean() < 0.01
    assert fl.farneback(img, moved)[0][core].mean() == pytest.approx(3, abs=0.5)
    np.testing.assert_array_equal(
        fl.to_uint8(np.array([-0.1, 0.0, 0.5, 1.0, 1.2])), [0, 0, 128, 255, 255]
    )


def test_sequence_flow_and_threshold():
    img, _ = textured_blob(60, 60)
    seq = np.stack([ndimage.shift(img, (0, k), order=1) for k in range(3)])
    flows = fl.sequence_flow(seq)
    assert flows.shape == (2, 2, 60, 60)
    assert flows[:, 0, 25:35, 25:35].mean() == pytest.approx(1.0, abs=0.3)  # 1 px per pair
    got = fl.threshold(np.array([0.1, 0.29, 0.3, 0.8]))
    np.testing.assert_array_equal(got, np.array([0, 0, 0.3, 0.8], np.float32))
    with pytest.raises(fl.GlacierError, match="T >= 2"):
        fl.sequence_flow(seq[:1])


def test_endpoint_error_hand_values():
    true = np.zeros((2, 2, 4, 4), np.float32)
    true[:, 0] = 1.0  # 1 px to the right in both pairs
    assert fl.endpoint_error(true, true).tolist() == [0.0, 0.0]  # the true field scores zero
    est = true.copy()
    est[1, 0] += 3.0
    est[1, 1] += 4.0  # pair 1 off by (3, 4): 5 px
    mask = np.zeros((4, 4), bool)
    mask[1:3, 1:3] = True
    np.testing.assert_allclose(fl.endpoint_error(est, true, mask), [0.0, 5.0])
    est[1, :, 0, 0] = 100.0  # outside the mask: ignored
    np.testing.assert_allclose(fl.endpoint_error(est, true, mask), [0.0, 5.0])
    with pytest.raises(DataError, match="no pixel"):
        fl.endpoint_error(est, true, np.zeros((4, 4), bool))


def test_truth_is_cropped_to_the_roi_and_scaled_by_window_length(tmp_path):
    vel = np.zeros((2, 30, 40), np.float32)
    vel[0] = np.arange(40)[None, :] / 100  # x velocity grows with the raw column
    vel[1] = np.arange(30)[:, None] / 100
    mask = np.zeros((30, 40), bool)
    mask[10:20, 12:30] = True
    save_npz(tmp_path / "truth.npz", velocity=vel, glacier_mask=mask)
    t = fl.load_truth(tmp_path / "truth.npz", roi=(5, 25, 10, 40), shape=(20, 25))
    assert t.velocity.shape == (2, 20, 25) and t.mask.shape == (20, 25)
    # frame pixel (r, c) is raw (r + 5, c + 10)
    assert t.velocity[0, 3, 4] == pytest.approx(14 / 100) and t.velocity[1, 3, 4] == pytest.approx(
        8 / 100
    )
    assert t.mask[5, 2] and not t.mask[4, 2] and t.mask.sum() == 10 * 18
    days = fl.window_days(
        np.array(["2021-01-01", "2021-04-01", "2021-07-01"], dtype="datetime64[D]")
    )
    np.testing.assert_array_equal(days, [90, 91])
    disp = t.displacement(days)
    assert disp.shape == (2, 2, 20, 25)
    assert disp[1, 0, 3, 4] == pytest.approx(91 * 0.14, rel=1e-6)
    with pytest.raises(DataError, match="does not hold"):
        fl.load_truth(tmp_path / "truth.npz", roi=(5, 25, 10, 40), shape=(30, 25))


def test_flow_errors_table():
    vel = np.zeros((2, 10, 10), np.float32)
    vel[0] = 0.02  # 0.02 px/day to the right
    truth = fl.Truth(vel, np.ones((10, 10), bool))
    days = np.array([100.0, 50.0])
    true = truth.displacement(days)
    df = fl.flow_errors(
        {"targets": true, "persistence": np.zeros_like(true)}, truth, days, ["0→1", "1→2"]
    )
    t = df.set_index(["source", "pair"])
    assert t.loc[("targets", "0→1"), "epe_px"] == pytest.approx(0.0, abs=1e-6)
    assert t.loc[("persistence", "0→1"), "epe_px"] == pytest.approx(2.0)
    assert t.loc[("persistence", "mean"), "epe_px"] == pytest.approx(1.5)
    assert t.loc[("persistence", "mean"), "true_px"] == pytest.approx(1.5)
    assert t.loc[("targets", "1→2"), "flow_px"] == pytest.approx(1.0)
