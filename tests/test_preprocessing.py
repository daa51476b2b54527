"""Tests of glacier_movement.preprocessing: filling, ECC, windows, NDSI, the stage end to end."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from glacier_movement import io
from glacier_movement.cli import main
from glacier_movement.config import BANDS, GREEN, SWIR16, Paths, get_glacier
from glacier_movement.errors import GlacierError
from glacier_movement.preprocessing import (
    AlignOptions,
    _standardize,
    align_scenes,
    alignment_error,
    average_windows,
    ecc_template,
    fill_missing,
    find_warp,
    interpolate_windows,
    ndsi,
    phase_shift,
    preprocess,
    roi_transform,
    roi_window,
    run_preprocessing,
    snow_mask,
    warp_scene,
    window_index,
    window_label,
    window_starts,
)

KERNEL = np.outer([1, 2, 3, 2, 1], [1, 2, 3, 2, 1]).astype(float)


def reference_fill(img: np.ndarray, max_passes: int | None = None) -> np.ndarray:
    """The original's way: pixel by pixel, a weighted np.ma.average over the 5×5 window."""
    img = img.astype(np.float64).copy()
    passes = 0
    while np.isnan(img).any() and (max_passes is None or passes < max_passes):
        valid = ~np.isnan(img)
        pv = np.pad(np.nan_to_num(img), 2)
        pm = np.pad(valid.astype(float), 2)
        new = img.copy()
        for r, c in np.argwhere(~valid):
            w = (KERNEL * pm[r : r + 5, c : c + 5]).ravel()
            if w.sum() > 0:
                new[r, c] = np.ma.average(pv[r : r + 5, c : c + 5].ravel(), weights=w)
        img = new
        passes += 1
    return img


# ------------------------------------------------------------------------------ fill_missing
@pytest.mark.parametrize("seed", range(12))
def test_fill_missing_equals_reference_loop(seed):
    rng = np.random.default_rng(seed)
    h, w = rng.integers(1, 28, size=2)
    img = rng.uniform(5000, 30000, size=(h, w))
    img[rng.random((h, w)) < rng.uniform(0.05, 0.9)] = np.nan
    if seed % 3 == 0:  # a wedge along one edge: many passes
        img[:, : max(1, w // 2)] = np.nan
    if np.isnan(img).all():
        img[0, 0] = 1.0
    got = fill_missing(img)
    assert not np.isnan(got).any()
    np.testing.assert_allclose(got, reference_fill(img), rtol=0, atol=1e-8)


def test_fill_missing_one_pass_uses_only_pixels_valid_at_its_start():
    img = np.full((1, 9), np.nan)
    img[0, 0] = 10.0
    one = fill_missing(img, max_passes=1)
    # Pixels 1 and 2 are within reach of pixel 0 and take its value; 3.. stay missing this pass.
    np.testing.assert_array_equal(one[0, :3], [10.0, 10.0, 10.0])
    assert np.isnan(one[0, 3:]).all()
    np.testing.assert_allclose(one, reference_fill(img, max_passes=1), equal_nan=True)
    np.testing.assert_array_equal(fill_missing(img), np.full((1, 9), 10.0))


def test_fill_missing_changes_only_missing_pixels_and_keeps_dtype():
    rng = np.random.default_rng(3)
    img = rng.uniform(0, 1, (40, 50)).astype(np.float32)
    holes = rng.random(img.shape) < 0.3
    img[holes] = np.nan
    got = fill_missing(img)
    assert got.dtype == np.float32 and got is not img
    np.testing.assert_array_equal(got[~holes], img[~holes])
    assert np.isnan(img[holes]).all()  # the input is not modified
    # A weighted mean stays within the range of the valid pixels.
    assert img[~holes].min() <= got.min() and got.max() <= img[~holes].max()


def test_fill_missing_without_holes_and_bad_input():
    a = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(fill_missing(a), a)
    with pytest.raises(ValueError, match="entirely missing"):
        fill_missing(np.full((5, 6), np.nan))
    with pytest.raises(ValueError, match="2-D"):
        fill_missing(np.zeros((2, 3, 4)))
    bad = np.ones((4, 4))
    bad[0, 0], bad[1, 1] = np.inf, np.nan
    with pytest.raises(ValueError, match="infinite"):
        fill_missing(bad)


# ------------------------------------------------------------------------------ NDSI, windows
def test_ndsi_from_dn_and_reflectance():
    s, o = 0.0000275, -0.2
    g_dn, s_dn = (0.8 - o) / s, (0.1 - o) / s  # reflectance 0.8 and 0.1 (docs/data.md)
    assert ndsi(np.array([g_dn]), np.array([s_dn]), "reflectance", s, o)[0] == pytest.approx(
        0.7778, abs=1e-4
    )
    assert ndsi(np.array([g_dn]), np.array([s_dn]), "dn")[0] == pytest.approx(0.5385, abs=1e-4)
    # Dark pixels: negative reflectance sum → undefined → 0, never outside [-1, 1].
    dark = ndsi(np.array([7000.0, 7200.0]), np.array([7000.0, 7400.0]), "reflectance", s, o)
    assert np.all(np.abs(dark) <= 1) and dark[0] == 0
    with pytest.raises(ValueError):
        ndsi(np.ones(1), np.ones(1), "toa")


def test_snow_mask_threshold_semantics():
    x = np.array([-0.5, 0.0, 0.29999, 0.3, 0.31, 0.9, 1.0], dtype=np.float32)
    np.testing.assert_array_equal(
        snow_mask(x), [0, 0, 0, np.float32(0.3), np.float32(0.31), np.float32(0.9), 1]
    )
    assert snow_mask(x).dtype == np.float32


def test_interpolation_is_linear_and_rethresholded():
    t, h, w = 7, 2, 3
    frames = np.zeros((t, h, w), dtype=np.float32)
    frames[1] = 0.96
    frames[1, 0, 0] = 0.0  # goes 0 → 0.6: 0.2 (→ 0 after threshold), 0.4
    frames[4] = 0.6
    frames[4, 1, 2] = 0.0  # goes 0.96 → 0: 0.64, 0.32 (kept: ≥ 0.3)
    have = np.array([False, True, False, False, True, False, False])
    out, interp = interpolate_windows(frames, have)
    np.testing.assert_array_equal(interp, ~have)
    np.testing.assert_array_equal(out[0], frames[1])  # leading: nearest
    np.testing.assert_array_equal(out[5], frames[4])  # trailing: nearest
    np.testing.assert_array_equal(out[6], frames[4])
    np.testing.assert_allclose(out[2, 0, 1], 0.96 + (0.6 - 0.96) / 3, rtol=1e-6)
    np.testing.assert_allclose(out[3, 0, 1], 0.96 + 2 * (0.6 - 0.96) / 3, rtol=1e-6)
    assert out[2, 0, 0] == 0.0 and out[3, 0, 0] == pytest.approx(0.4, rel=1e-6)
    assert out[2, 1, 2] == pytest.approx(0.64, rel=1e-6) and out[3, 1, 2] == pytest.approx(
        0.32, rel=1e-6
    )
    np.testing.assert_array_equal(out[have], frames[have])
    with pytest.raises(ValueError):
        interpolate_windows(frames, np.zeros(t, bool))


def test_windows_per_glacier_and_scene_assignment():
    parvati, aletsch = get_glacier("parvati"), get_glacier("aletsch")
    assert len(window_starts(2013, 2021, parvati.window_months)) == 36
    assert len(window_starts(2013, 2021, aletsch.window_months)) == 27
    times = np.array(
        ["2013-01-01T00:00", "2013-03-31T23:59", "2013-04-01", "2014-12-31", "2015-05-02"],
        dtype="datetime64[ns]",
    )
    np.testing.assert_array_equal(window_index(times, 2013, 3), [0, 0, 1, 7, 9])
    np.testing.assert_array_equal(window_index(times, 2013, 4), [0, 0, 0, 5, 7])
    assert window_label(np.datetime64("2014-05-01"), 4) == "May–Aug 2014"
    with pytest.raises(GlacierError, match="divide"):
        window_starts(2013, 2014, 5)


def test_average_windows_mean_and_running():
    scenes = [np.full((2, 2, 2), v, dtype=np.float32) for v in (1.0, 2.0, 6.0, 5.0)]
    index = np.array([0, 0, 0, 2])
    mean, counts = average_windows(scenes, index, 3, "mean")
    np.testing.assert_array_equal(counts, [3, 0, 1])
    assert np.all(mean[0] == 3.0) and np.isnan(mean[1]).all() and np.all(mean[2] == 5.0)
    running, _ = average_windows(scenes, index, 3, "running")
    assert np.all(running[0] == ((1 + 2) / 2 + 6) / 2)  # the original's fold weights late scenes
    dropped, counts = average_windows(scenes, index, 3, "mean", use=np.array([1, 1, 0, 1], bool))
    assert np.all(dropped[0] == 1.5) and counts[0] == 2


def test_roi_window_and_transform():
    assert roi_window((50, 650, 100, 700), (120, 160)) == (50, 120, 100, 160)
    with pytest.raises(GlacierError, match="outside"):
        roi_window((50, 650, 100, 700), (40, 40))
    t = (30.0, 0.0, 600000.0, 0.0, -30.0, 5200000.0)
    assert roi_transform(t, (50, 650, 100, 700)) == (30.0, 0.0, 603000.0, 0.0, -30.0, 5198500.0)


# ------------------------------------------------------------------------------ ECC
def _texture(shape, seed, sigma=3.0):
    rng = np.random.default_rng(seed)
    t = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return (t - t.min()) / np.ptp(t)


def _corner_error(est, true, h, w):
    corners = np.array([[0, 0, 1], [w - 1, 0, 1], [0, h - 1, 1], [w - 1, h - 1, 1]], float).T
    a, b = est @ corners, true @ corners
    return np.abs(a[:2] / a[2] - b[:2] / b[2]).max()


def test_ecc_recovers_a_known_homography():
    h, w = 160, 192
    base = (_texture((h, w), 0) * 20000 + 6000).astype(np.float32)
    true = np.array([[1.004, 0.003, 2.6], [-0.002, 0.997, -1.8], [1.5e-5, -1e-5, 1.0]])
    # observed(true · x) = base(x), i.e. observed(y) = base(true⁻¹ · y): warpPerspective's forward map.
    observed = cv2.warpPerspective(
        base, true, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )
    warp, cc = find_warp(base, observed)
    assert cc > 0.98
    assert _corner_error(warp, true, h, w) < 0.5
    # Same warp from reflectance-scaled images: ECC ignores gain and offset.
    warp_r, _ = find_warp(base * np.float32(2.75e-5) - 0.2, observed * np.float32(2.75e-5) - 0.2)
    assert _corner_error(warp_r, true, h, w) < 0.05


def test_align_scenes_registers_shifted_scenes_and_applies_failure_policy():
    h, w = 96, 96
    tex_g, tex_s = _texture((h, w), 1), _texture((h, w), 2)
    base = np.stack([tex_g * 15000 + 9000, tex_s * 8000 + 7000]).astype(np.float32)
    shifts = [(0.0, 0.0), (1.5, -1.0), (-1.2, 0.8), (0.7, 1.6), (-1.0, -1.4)]
    scenes = []
    for dx, dy in shifts:
        m = np.array([[1, 0, dx], [0, 1, dy], [0, 0, 1]], float)  # observed(x + d) = base(x)
        scenes.append(warp_scene(base, np.linalg.inv(m)))
    scenes.append(np.full((2, h, w), 12000, np.float32))  # a uniform (cloud) scene: ECC fails
    # The template is the mean: the warps are relative to the mean position.
    mean_shift = np.mean(shifts, axis=0)
    for policy in ("keep", "drop"):
        opts = AlignOptions(method="ecc", on_failure=policy, iterations=200)
        aligned, al = align_scenes([s.copy() for s in scenes], opts)
        np.testing.assert_array_equal(al.success, [True] * 5 + [False])
        np.testing.assert_array_equal(al.used, [True] * 5 + [policy == "keep"])
        assert "Iterations do not converge" in al.errors[5] and np.isnan(al.cc[5])
        np.testing.assert_array_equal(al.warps[5], np.eye(3))
        np.testing.assert_array_equal(aligned[5], scenes[5])  # kept unaligned
        for i, (dx, dy) in enumerate(shifts):
            np.testing.assert_allclose(
                al.warps[i][:2, 2], [dx - mean_shift[0], dy - mean_shift[1]], atol=0.25
            )
        # After alignment the scenes agree with each other far better than before.
        inner = (slice(None), slice(8, -8), slice(8, -8))
        before = np.mean([np.abs(scenes[i] - scenes[0])[inner].mean() for i in range(1, 5)])
        after = np.mean([np.abs(aligned[i] - aligned[0])[inner].mean() for i in range(1, 5)])
        assert after < 0.2 * before
    assert ecc_template(scenes).shape == (h, w)
    _, chained = align_scenes(scenes[:5], AlignOptions("ecc", chain_init=True, iterations=200))
    assert chained.success.all()
    with pytest.raises(ValueError, match="method"):
        AlignOptions(method="sift")


def test_phase_alignment_recovers_shifts_and_applies_failure_policy():
    # Phase correlation needs detail at the pixel scale (as real scenes have): texture σ 1 px.
    h, w = 128, 128
    rng = np.random.default_rng(8)
    tex_g, tex_s = _texture((h, w), 1, 1.0), _texture((h, w), 2, 1.0)
    base = np.stack([tex_g * 15000 + 9000, tex_s * 8000 + 7000]).astype(np.float32)
    shifts = np.array([(0.0, 0.0), (1.5, -1.0), (-1.2, 0.8), (0.7, 1.6), (-1.0, -1.4)])
    scenes = []
    for dx, dy in shifts:
        m = np.array([[1, 0, dx], [0, 1, dy], [0, 0, 1]], float)
        scenes.append(warp_scene(base, np.linalg.inv(m)) + rng.normal(0, 30, (2, h, w)))
    scenes.append(np.full((2, h, w), 12000, np.float32))  # uniform (cloud): no peak, fails
    for policy in ("keep", "drop"):
        opts = AlignOptions(on_failure=policy, workers=2)
        aligned, al = align_scenes([s.copy() for s in scenes], opts)
        np.testing.assert_array_equal(al.success, [True] * 5 + [False])
        np.testing.assert_array_equal(al.used, [True] * 5 + [policy == "keep"])
        assert "uniform" in al.errors[5] and np.isnan(al.cc[5])
        np.testing.assert_array_equal(aligned[5], scenes[5])
        np.testing.assert_array_equal(al.warps[:, :2, :2], np.repeat(np.eye(2)[None], 6, 0))
        est = al.warps[:5, :2, 2]
        # relative to the template (the mean position): compare shift differences
        np.testing.assert_allclose(est - est.mean(0), shifts - shifts.mean(0), atol=0.3)
        assert al.cc[:5].min() > 0.8


def test_phase_shift_finds_subpixel_shifts():
    h, w = 128, 160
    base = _texture((h, w), 7, 1.0).astype(np.float32)
    true = np.array([[1.0, 0.0, 2.3], [0.0, 1.0, -1.6], [0.0, 0.0, 1.0]])
    observed = cv2.warpPerspective(base, true, (w, h), borderMode=cv2.BORDER_REFLECT)
    a, b = _standardize(base), _standardize(observed)
    a0, b0 = a.copy(), b.copy()
    warp = phase_shift(a, b)
    # The inputs stay as given (cv2.phaseCorrelate windows them in place); calls agree.
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(b, b0)
    np.testing.assert_array_equal(phase_shift(a, b), warp)
    np.testing.assert_array_equal(warp[:2, :2], np.eye(2))
    assert _corner_error(warp, true, h, w) < 0.2  # measured 0.14 px
    with pytest.raises(cv2.error, match="uniform"):
        phase_shift(a, np.zeros_like(a))


def test_alignment_error_against_known_warps():
    rng = np.random.default_rng(3)
    n, shape, offset = 6, (40, 50), (5, 7)
    true = np.repeat(np.eye(3)[None], n, axis=0)
    true[:, :2, 2] = rng.uniform(-2, 2, (n, 2))  # translations on the scene grid
    true[:, 0, 1] = rng.uniform(-0.004, 0.004, n)  # a little shear
    mask = np.zeros(shape, bool)
    mask[10:30, 20:40] = True
    # The true warps moved onto the ROI grid are a perfect alignment: zero error.
    shift = np.array([[1.0, 0, offset[1]], [0, 1, offset[0]], [0, 0, 1]])
    perfect = np.linalg.inv(shift) @ true @ shift
    err = alignment_error(perfect, true, mask, offset=offset)
    np.testing.assert_allclose(err.after, 0, atol=1e-9)
    assert err.on == "glacier" and err.n_pixels == mask.sum() and err.n_worse == 0
    # Unaligned: the error is the true displacement, the same as "before"; never "worse".
    ident = np.repeat(np.eye(3)[None], n, axis=0)
    none = alignment_error(ident, true, mask, offset=offset)
    np.testing.assert_allclose(none.after, none.before)
    ys, xs = np.nonzero(mask)
    back = np.linalg.inv(perfect)  # where an unaligned pixel's ground truly lies
    q = np.einsum("nij,jp->nip", back, np.stack([xs, ys, np.ones_like(xs)]).astype(float))
    expect = np.hypot(q[:, 0] / q[:, 2] - xs, q[:, 1] / q[:, 2] - ys).mean(axis=1)
    np.testing.assert_allclose(none.before, expect, rtol=1e-5)
    # A known residual: perfect warps followed by a 0.5 px shift in x on scene 2, 3 px on scene 4.
    bad = perfect.copy()
    bad[2] = bad[2] @ np.array([[1, 0, 0.5], [0, 1, 0], [0, 0, 1.0]])
    bad[4] = bad[4] @ np.array([[1, 0, 0], [0, 1, 3.0], [0, 0, 1.0]])
    e = alignment_error(bad, true, mask, offset=offset)
    np.testing.assert_allclose(e.after[[0, 1, 3, 5]], 0, atol=1e-9)
    assert e.after[2] == pytest.approx(0.5, rel=1e-2) and e.after[4] == pytest.approx(3, rel=1e-2)
    assert e.max == pytest.approx(e.after[4]) and e.median == pytest.approx(0.0, abs=1e-9)
    assert e.n_worse == int((e.after > e.before).sum()) and e.worse[4] == (e.before[4] < 3)
    # The common offset: the mean residual vector, removed in the relative errors.
    np.testing.assert_allclose(e.offset, [0.5 / n, 3 / n], rtol=1e-3)
    # Dropped scenes leave the statistics; no mask: every pixel of the ROI.
    used = np.array([True, True, True, True, False, True])
    e2 = alignment_error(bad, true, None, shape=shape, offset=offset, used=used)
    assert e2.on == "all" and e2.n_pixels == 40 * 50 and e2.max == pytest.approx(0.5, rel=1e-2)
    assert "worse than unaligned" in " ".join(e2.lines())
    with pytest.raises(ValueError, match="3, 3"):
        alignment_error(bad[:, :2], true, mask)


def test_ecc_blocks_are_the_same_iterations_and_stop_early():
    h, w = 80, 96
    base = (_texture((h, w), 4) * 20000 + 6000).astype(np.float32)
    true = np.array([[1.0, 0.002, 1.4], [0.001, 1.0, -0.9], [0.0, 0.0, 1.0]])
    observed = cv2.warpPerspective(base, true, (w, h), borderMode=cv2.BORDER_REFLECT)
    # eps = 0: OpenCV never stops early, so 3 blocks of 10 iterations are 30 iterations.
    one, cc1 = find_warp(base, observed, iterations=30, eps=0.0, stop_px=None)
    blocks, cc2 = find_warp(
        base, observed, iterations=30, eps=0.0, stop_px=1e-12, block=10, patience=99
    )
    np.testing.assert_allclose(blocks, one, rtol=0, atol=1e-6)
    assert cc2 == pytest.approx(cc1, abs=1e-6)
    # The default stopping rule finds the same warp as the full iteration budget.
    full, _ = find_warp(base, observed, iterations=2000, stop_px=None)
    fast, _ = find_warp(base, observed, iterations=2000)
    assert _corner_error(fast, full, h, w) < 0.1 and _corner_error(fast, true, h, w) < 0.5


@pytest.mark.parametrize("motion", ["translation", "euclidean", "affine"])
def test_ecc_other_motion_models(motion):
    h, w = 80, 96
    base = (_texture((h, w), 5) * 20000 + 6000).astype(np.float32)
    true = np.array([[1.0, 0.0, -1.7], [0.0, 1.0, 2.2], [0.0, 0.0, 1.0]])
    observed = cv2.warpPerspective(base, true, (w, h), borderMode=cv2.BORDER_REFLECT)
    warp, cc = find_warp(base, observed, motion=motion)
    assert warp.shape == (3, 3) and cc > 0.98 and _corner_error(warp, true, h, w) < 0.3
    with pytest.raises(ValueError, match="motion"):
        find_warp(base, observed, motion="rigid")


def test_ecc_template_band_mix():
    rng = np.random.default_rng(6)
    scenes = rng.uniform(5000, 20000, size=(3, 2, 20, 24)).astype(np.float32)
    mean = scenes.mean(axis=0)
    med_g, med_s = cv2.medianBlur(mean[0], 3), cv2.medianBlur(mean[1], 3)
    # Default: same mix as every scene's gray image (green, swir16, swir16) → 0.114 g + 0.886 s.
    np.testing.assert_allclose(
        ecc_template(scenes), 0.114 * med_g + 0.587 * med_s + 0.299 * mean[1], rtol=1e-4
    )
    # The original's zeroed third channel.
    np.testing.assert_allclose(
        ecc_template(scenes, "zero"), 0.114 * med_g + 0.587 * med_s, rtol=1e-4
    )
    with pytest.raises(ValueError):
        ecc_template(scenes, "blue")


# ------------------------------------------------------------------------------ end to end
def write_tiny_glacier(
    root,
    glacier="parvati",
    years=(2015, 2016),
    shape=(48, 56),
    skip_windows=(),
    seed=0,
    truth=False,
):
    """Tiny scene files: an ice body (NDSI ≈ 0.47 from DN) on rock, textured, shifted, with holes.

    Two scenes in every 3-month window except those in ``skip_windows`` (global window index).
    """
    rng = np.random.default_rng(seed)
    h, w = shape
    yy, xx = np.mgrid[:h, :w]
    ice = ((yy - h / 2) / (h / 3)) ** 2 + ((xx - w / 2) / (w / 3)) ** 2 < 1
    tex = _texture(shape, seed + 10, sigma=2.0)
    paths = Paths(root, glacier)
    k = 0
    for y in years:
        times, data = [], []
        for q in range(4):
            k += 1
            if k - 1 in skip_windows:
                continue
            for day in (5, 40):
                dn = np.zeros((len(BANDS), h, w), np.float64)
                dn[:] = 9000 + 2000 * tex
                dn[GREEN] = np.where(ice, 25000, 9000) + 3000 * tex
                dn[SWIR16] = np.where(ice, 9000, 12000) + 1500 * tex
                dx, dy = rng.uniform(-1.5, 1.5, 2)
                m = np.array([[1, 0, dx], [0, 1, dy], [0, 0, 1]], float)
                dn = np.stack(
                    [
                        cv2.warpPerspective(
                            b.astype(np.float32), m, (w, h), borderMode=cv2.BORDER_REFLECT
                        )
                        for b in dn
                    ]
                )
                dn = np.round(dn).astype(np.uint16)
                dn[:, rng.random((h, w)) < 0.05] = 0  # holes
                dn[:, :, : rng.integers(0, 6)] = 0  # a nodata wedge along the left edge
                data.append(dn)
                times.append(np.datetime64(f"{y}-{3 * q + 1:02d}-01") + np.timedelta64(day, "D"))
        io.write_scenes(
            paths.raw_year(y),
            io.Scenes(
                times=np.array(times, dtype="datetime64[ns]"),
                data=np.array(data).reshape(len(data), len(BANDS), h, w),
                cloud_cover=np.full(len(data), 5.0),
                glacier=glacier,
                epsg=32643,
                transform=(30.0, 0.0, 600000.0, 0.0, -30.0, 3550000.0),
                scale=0.0000275,
                offset=-0.2,
            ),
        )
    if truth:
        io.save_npz(paths.truth, velocity=np.zeros((2, h, w), np.float32))
    return paths, ice


def test_preprocess_end_to_end(tmp_path):
    paths, ice = write_tiny_glacier(tmp_path, skip_windows=(0, 3, 4))
    cfg = get_glacier("parvati")
    # A cloudy scene (over acquisition's 20 %) is dropped: Jul–Sep 2016 keeps one scene.
    s = io.read_scenes(paths.raw_year(2016))
    s.cloud_cover[3] = 55.0
    io.write_scenes(paths.raw_year(2016), s)
    result = run_preprocessing(cfg, tmp_path, ecc_iterations=300)
    fr = io.read_frames(paths.frames)
    assert fr.frames.shape == (8, 48, 56) and fr.window_months == 3
    np.testing.assert_array_equal(fr.n_scenes, [0, 2, 2, 0, 0, 2, 1, 2])
    np.testing.assert_array_equal(fr.interpolated, fr.n_scenes == 0)
    assert str(fr.window_start[0]) == "2015-01-01" and str(fr.window_start[-1]) == "2016-10-01"
    assert fr.roi == (0, 48, 0, 56) and fr.transform == (30.0, 0.0, 600000.0, 0.0, -30.0, 3550000.0)
    # Frames are masked NDSI: 0 or ≥ 0.3; the ice body is snow/ice, the rock is not.
    f = fr.frames
    assert np.all((f == 0) | (f >= 0.3)) and f.max() <= 1
    inner = ndimage.binary_erosion(ice, iterations=4)
    outer = ~ndimage.binary_dilation(ice, iterations=4)
    assert (f[:, inner] >= 0.3).mean() > 0.99 and (f[:, outer] == 0).mean() > 0.99
    np.testing.assert_array_equal(f[0], f[1])  # leading empty window = nearest
    al = io.load_npz(paths.glacier_dir / "alignment.npz")
    assert al["warps"].shape == (9, 3, 3) and al["success"].all() and al["cc"].min() > 0.9
    with Image.open(paths.figures_dir / "frames.gif") as gif:
        assert gif.n_frames == len(fr.frames)  # one GIF frame per window
    with Image.open(paths.figures_dir / "frames.png") as png:
        png.load()
        assert png.format == "PNG"
    text = "\n".join(result.summary)
    assert "9 scenes used of 10" in text and "dropped 1 over 20 % cloud" in text
    assert "2 interpolated" in text and "1 at the ends" in text
    # The original's running average and reflectance NDSI are options; same shape, no writing.
    fr2 = preprocess(
        cfg, tmp_path, average="running", ndsi_input="reflectance", write=False, ecc_iterations=300
    )
    assert fr2.frames.shape == f.shape and not np.array_equal(fr2.frames, f)


def test_cli_preprocess_and_bad_input(tmp_path, capsys):
    root = str(tmp_path)
    assert main(["preprocess", "--glacier", "parvati", "--data-root", root]) == 2
    assert "no scene files" in capsys.readouterr().err
    for opt, value, words in (
        ("--max-cloud", "120", "percentage"),
        ("--max-missing", "2", "fraction"),
    ):
        assert main(["preprocess", "--glacier", "parvati", "--data-root", root, opt, value]) == 2
        assert words in capsys.readouterr().err

    write_tiny_glacier(tmp_path, years=(2015,), shape=(32, 32))
    assert main(["preprocess", "--glacier", "parvati", "--data-root", root]) == 2
    assert "at least 8 frames" in capsys.readouterr().err

    # Different shapes in another year.
    write_tiny_glacier(tmp_path / "b", years=(2016,), shape=(30, 32))
    (tmp_path / "b/parvati/raw/2016.npz").rename(tmp_path / "parvati/raw/2016.npz")
    assert main(["preprocess", "--glacier", "parvati", "--data-root", root]) == 2
    err = capsys.readouterr().err.split("\r")[-1]  # after the cleared progress bars
    assert "different shapes" in err and "2016.npz" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "parvati/frames.npz").exists()

    # A scene entirely missing in the ROI (a quarter of the scene, so acquisition's filter kept
    # it): named by file, index and date; nothing written.
    write_tiny_glacier(tmp_path, years=(2015, 2016), shape=(32, 32))
    p = tmp_path / "parvati/raw/2016.npz"
    s = io.read_scenes(p)
    s.data[3, :, 16:, 16:] = 0
    io.write_scenes(p, s)
    args = ["preprocess", "--glacier", "parvati", "--data-root", root]
    assert main([*args, "--roi", "16,32,16,32"]) == 2
    err = capsys.readouterr().err
    assert "2016.npz scene 3 (2016-05-11)" in err and "cannot be filled" in err
    assert not (tmp_path / "parvati/frames.npz").exists()

    # The whole scene missing fails acquisition's filter (missing ≥ 0.5): dropped and reported.
    s.data[3] = 0
    io.write_scenes(p, s)
    assert main([*args, "--chain-init"]) == 2
    assert "--align ecc" in capsys.readouterr().err
    rc = main([*args, "--align", "ecc", "--ecc-iterations", "200", "--chain-init", "--no-figures"])
    out = capsys.readouterr().out
    assert rc == 0 and "15 scenes used of 16" in out and "1 with ≥ 0.5 missing" in out
    assert "8 frames" in out and "frames.npz" in out and "alignment.npz" in out
    assert io.read_frames(tmp_path / "parvati/frames.npz").frames.shape == (8, 32, 32)


def test_aletsch_selection_applies_to_acquired_data_only(tmp_path):
    cfg = get_glacier("aletsch")
    # 4-month windows: 3 years give 9 frames; 8 scenes per year file.
    paths, _ = write_tiny_glacier(tmp_path, "aletsch", years=(2015, 2016, 2017), shape=(96, 140))
    with pytest.raises(
        GlacierError, match=r"2015 lists scene 8 but .*2015.npz holds 8 scenes.*--select-scenes all"
    ):
        run_preprocessing(cfg, tmp_path, write=False, ecc_iterations=100)
    res = run_preprocessing(cfg, tmp_path, write=False, select_scenes="all", ecc_iterations=100)
    assert len(res.scenes) == 24
    # The configured ROI (50:650, 100:700) is cut to the 96×140 scene grid.
    assert res.frames.roi == (50, 96, 100, 140) and res.frames.frames.shape == (9, 46, 40)
    assert (
        res.frames.transform[2] == 600000.0 + 30 * 100
        and res.frames.transform[5] == 3550000.0 - 30 * 50
    )
    # With truth.npz (synthetic data) "auto" uses every scene.
    io.save_npz(paths.truth, velocity=np.zeros((2, 96, 140), np.float32))
    res = run_preprocessing(cfg, tmp_path, write=False, ecc_iterations=100)
    assert len(res.scenes) == 24


def test_preprocess_synthetic_glacier_end_to_end(tmp_path):
    """The synthetic generator's scenes (all of them, also the cloudy ones) → 8 frames."""
    synthetic = pytest.importorskip("glacier_movement.synthetic")
    cfg = get_glacier("parvati")
    synthetic.synthesize(cfg, tmp_path, size=(64, 64), years=(2013, 2014), seed=0, progress=False)
    res = run_preprocessing(cfg, tmp_path, figures=False)
    fr = io.read_frames(Paths(tmp_path, "parvati").frames)
    truth = io.load_npz(Paths(tmp_path, "parvati").truth)
    assert fr.frames.shape == (8, 64, 64) and fr.roi == (0, 64, 0, 64)
    assert np.all((fr.frames == 0) | (fr.frames >= 0.3))
    # Acquisition's filter is applied to the synthetic files, which hold every generated scene.
    kept = truth["kept"]
    assert len(res.scenes) == int(kept.sum()) < len(kept)
    # Alignment undoes the known misregistration: after ECC, the scenes' residual warps agree.
    idx = np.searchsorted(truth["scene_times"], np.array([r.time for r in res.scenes]))
    pts = np.array([[0, 0, 1], [63, 0, 1], [0, 63, 1], [63, 63, 1]], float).T

    def spread(warps):
        q = np.array(
            [np.linalg.inv(truth["warps"][i]) @ w @ pts for i, w in zip(idx, warps, strict=True)]
        )
        q = q[:, :2] / q[:, 2:]
        return np.median(np.abs(q - np.median(q, axis=0)).max(axis=(1, 2)))

    before = spread([np.eye(3)] * len(idx))
    after = spread(res.alignment.warps)
    assert after < 0.6 * before, (before, after)


@pytest.mark.parametrize("method", ["phase", "ecc"])
def test_parallel_alignment_is_identical_to_serial_and_reports_the_error(tmp_path, method):
    """workers=1 and workers=2 give bit-identical frames and warps on a generated scene set;
    the alignment error against the generator's warps is in the summary and alignment.npz."""
    synthetic = pytest.importorskip("glacier_movement.synthetic")
    cfg = get_glacier("parvati")
    synthetic.synthesize(cfg, tmp_path, size=(64, 64), years=(2013, 2014), seed=1, progress=False)
    opts = dict(figures=False, align=method, ecc_iterations=300)
    serial = run_preprocessing(cfg, tmp_path, workers=1, write=False, **opts)
    par = run_preprocessing(cfg, tmp_path, workers=2, **opts)
    np.testing.assert_array_equal(par.frames.frames, serial.frames.frames)
    np.testing.assert_array_equal(par.alignment.warps, serial.alignment.warps)
    np.testing.assert_array_equal(par.alignment.success, serial.alignment.success)
    np.testing.assert_array_equal(par.alignment.cc, serial.alignment.cc)
    assert [r.time for r in par.scenes] == [r.time for r in serial.scenes]

    paths = Paths(tmp_path, "parvati")
    truth = io.load_npz(paths.truth)
    idx = np.searchsorted(truth["scene_times"], np.array([r.time for r in par.scenes]))
    mask = truth["glacier_mask"][:64, :64]
    expect = alignment_error(
        par.alignment.warps, truth["warps"][idx], mask, used=par.alignment.used
    )
    al = io.load_npz(paths.glacier_dir / "alignment.npz")
    np.testing.assert_allclose(al["error_px"], expect.after)
    np.testing.assert_allclose(al["error_unaligned_px"], expect.before)
    assert str(al["error_on"]) == "glacier"
    np.testing.assert_allclose(
        al["error_stats"], [expect.median, expect.p90, expect.max, expect.n_worse]
    )
    text = "\n".join(par.summary)
    assert f"90th percentile {expect.p90:.2f}" in text and "worse than unaligned" in text
    # Alignment reduces the misregistration of most scenes on this small set too.
    assert np.median(expect.after) < 0.6 * np.median(expect.before)
    if par.alignment.success.all():
        assert "in 2 workers" in text
