"""Tests of glacier_movement.synthetic: the synthetic Landsat-8 glacier, its truth, its CLI."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from pyproj import Transformer
from skimage.registration import phase_cross_correlation

from glacier_movement import io, motion
from glacier_movement.cli import main
from glacier_movement.config import BANDS, GREEN, OFFSET, SCALE, SWIR16, Paths, get_glacier
from glacier_movement.errors import GlacierError
from glacier_movement.settings import SettingsError
from glacier_movement.synthetic import (
    MAX_SPEED,
    NDSI_PERCENTILES,
    PAD,
    REGIMES,
    SPECTRA,
    Generator,
    SynthesizeSettings,
    WindowMotionShare,
    geotransform,
    quicklooks,
    summarize,
    synthesize,
)

YEARS = (2015, 2016)


@pytest.fixture(scope="module")
def parvati(tmp_path_factory):
    """Parvati, 96×96 ROI, 2015–2016, seed 0: (root, scenes per year, truth)."""
    root = tmp_path_factory.mktemp("synth")
    files = synthesize(
        get_glacier("parvati"), root, size=(96, 96), years=YEARS, seed=0, progress=False
    )
    paths = Paths(root, "parvati")
    assert files == [paths.raw_year(2015), paths.raw_year(2016), paths.truth]
    scenes = {y: io.read_scenes(paths.raw_year(y)) for y in YEARS}
    truth = io.load_npz(paths.truth)
    return root, scenes, truth


def _ndsi(green: np.ndarray, swir: np.ndarray) -> np.ndarray:
    g, s = green.astype(np.float64), swir.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (g - s) / (g + s)


def _dewarp(img: np.ndarray, warp: np.ndarray) -> np.ndarray:
    """Undo a scene's misregistration with the truth: TRUE → OBSERVED homography, inverse map."""
    h, w = img.shape
    return cv2.warpPerspective(img, warp, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)


def _doy(times: np.ndarray) -> np.ndarray:
    return (times.astype("datetime64[D]") - times.astype("datetime64[Y]")).astype(int) + 1


# ------------------------------------------------------------------------------- the files
def test_scene_files_shapes_dtypes_and_georeference(parvati):
    _, scenes, truth = parvati
    cfg = get_glacier("parvati")
    x0, y0 = Transformer.from_crs(4326, cfg.epsg, always_xy=True).transform_bounds(*cfg.bbox)[::3]
    n_total = 0
    for year, s in scenes.items():
        n = len(s.times)
        n_total += n
        assert s.data.dtype == np.uint16 and s.data.shape == (n, len(BANDS), 96, 96)
        assert s.times.dtype == np.dtype("datetime64[ns]") and np.all(
            np.diff(s.times) > np.timedelta64(0)
        )
        assert np.all(s.times.astype("datetime64[Y]").astype(int) + 1970 == year)
        assert s.bands == BANDS and s.glacier == "parvati" and s.epsg == 32643
        assert (s.scale, s.offset) == (SCALE, OFFSET)
        a, b, c, d, e, f = s.transform
        assert (a, b, d, e) == (30.0, 0.0, 0.0, -30.0)
        assert abs(c - x0) <= 30 and abs(f - y0) <= 30  # the bbox's projected upper-left corner
        # overpass near 10:12 local solar time (≈ 05:01 UTC at 77.65° E)
        hours = (s.times - s.times.astype("datetime64[D]")) / np.timedelta64(1, "h")
        assert np.all(np.abs(hours - (10.2 - 77.654 / 15)) < 0.05)
    assert len(truth["scene_times"]) == n_total
    assert np.array_equal(truth["scene_times"], np.concatenate([s.times for s in scenes.values()]))


def test_aletsch_scene_grid_keeps_the_roi_offsets(tmp_path):
    cfg = get_glacier("aletsch")
    synthesize(cfg, tmp_path, size=(40, 48), years=(2017, 2017), seed=3, progress=False)
    s = io.read_scenes(Paths(tmp_path, "aletsch").raw_year(2017))
    assert s.data.shape[2:] == (50 + 40, 100 + 48)  # rows 50:90, cols 100:148 are the ROI
    assert s.epsg == 32632
    t = io.load_npz(Paths(tmp_path, "aletsch").truth)
    assert tuple(t["roi"]) == (50, 90, 100, 148)
    r0, r1, c0, c1 = t["roi"]
    assert t["glacier_mask"][r0:r1, c0:c1].any()  # the glacier is in the ROI
    assert t["velocity"].shape == (2, 90, 148)


def test_truth_contents(parvati):
    _, scenes, t = parvati
    n = len(t["scene_times"])
    shape = (96, 96)
    assert t["velocity"].dtype == np.float32 and t["velocity"].shape == (2, *shape)
    assert t["glacier_mask"].dtype == bool and t["glacier_mask"].shape == shape
    assert t["warps"].dtype == np.float64 and t["warps"].shape == (n, 3, 3)
    for key in ("cloud_cover", "missing_fraction", "snowline", "terminus_position"):
        assert t[key].shape == (n,), key
    assert t["kept"].dtype == bool and t["written"].all()
    mask, vel = t["glacier_mask"], t["velocity"]
    speed = np.hypot(*vel)
    assert 0.02 < mask.mean() < 0.3
    assert np.all(speed[~mask] == 0)  # zero on rock
    assert 0.97 * MAX_SPEED < speed.max() <= MAX_SPEED + 1e-9  # largest on the centreline
    assert np.all(vel[1][mask] > 0)  # the ice flows down the image
    # zero at the margins: the slowest ice is much slower than the centreline
    assert speed[mask].min() < 0.3 * speed.max()
    # the terminus retreats: positions fall, and the extent of the last scene is smaller
    term = t["terminus_position"]
    assert np.all(np.diff(term) < 0)
    with np.errstate(invalid="ignore"):
        first = mask & (t["along_flow"] <= term[0])
        last = mask & (t["along_flow"] <= term[-1])
    assert np.array_equal(first, mask) and last.sum() < mask.sum()
    # the warps: a translation of at most a few px plus a slight perspective
    corners = np.array([[0, 0, 1], [95, 0, 1], [95, 95, 1], [0, 95, 1]], dtype=float).T
    moved = np.einsum("nij,jk->nik", t["warps"], corners)
    moved = moved[:, :2] / moved[:, 2:]
    shift = np.linalg.norm(moved - corners[:2], axis=1)
    assert shift.max() < 5.0 and np.median(shift) > 0.2
    assert np.abs(t["warps"][:, 2, :2]).max() > 0  # not affine: perspective terms are used
    # the values in the scene files agree with the truth
    cc = np.concatenate([s.cloud_cover for s in scenes.values()])
    assert np.allclose(cc, t["cloud_cover"])
    miss = np.concatenate([(s.data[:, GREEN] == 0).mean(axis=(1, 2)) for s in scenes.values()])
    assert np.allclose(miss, t["missing_fraction"])
    assert np.array_equal(t["kept"], (cc <= 20) & (miss < 0.5))


def test_acquisition_statistics(tmp_path):
    """Dates near a 16-day revisit, 8–20 kept per year, cloud 0–100 % with several > 20 %,
    missing mostly < 0.5 with a few above, nodata in all bands at once."""
    synthesize(
        get_glacier("parvati"), tmp_path, size=(48, 48), years=(2014, 2019), seed=7, progress=False
    )
    t = io.load_npz(Paths(tmp_path, "parvati").truth)
    years = t["scene_times"].astype("datetime64[Y]").astype(int) + 1970
    for year in range(2014, 2020):
        sel = years == year
        assert 18 <= sel.sum() <= 28
        assert 8 <= t["kept"][sel].sum() <= 20
        assert (t["cloud_cover"][sel] > 20).sum() >= 3
        gaps = np.diff(t["scene_times"][sel].astype("datetime64[D]")).astype(int)
        assert set(np.unique(gaps % 16)) <= {0, 7, 9}  # 16-day cycle and the neighbouring path
        assert np.median(gaps) == 16
    cc, miss = t["cloud_cover"], t["missing_fraction"]
    assert cc.min() >= 0 and cc.max() <= 100 and cc.max() > 80 and (cc < 2).sum() > 10
    assert np.mean(miss < 0.5) > 0.85 and (miss >= 0.5).sum() >= 2
    assert (miss == 0).sum() > 10 and ((miss > 0) & (miss < 0.5)).sum() > 10
    s = io.read_scenes(Paths(tmp_path, "parvati").raw_year(2016))
    zero = s.data == 0
    assert np.array_equal(zero.any(axis=1), zero.all(axis=1))  # DN 0 in every band together


def test_deterministic_per_seed(tmp_path):
    cfg = get_glacier("parvati")
    a = synthesize(cfg, tmp_path / "a", size=(40, 40), years=(2015, 2016), seed=5, progress=False)
    b = synthesize(cfg, tmp_path / "b", size=(40, 40), years=(2015, 2016), seed=5, progress=False)
    c = synthesize(cfg, tmp_path / "c", size=(40, 40), years=(2015, 2016), seed=6, progress=False)
    d = synthesize(cfg, tmp_path / "d", size=(40, 40), years=(2016, 2016), seed=5, progress=False)
    for fa, fb, fc in zip(a, b, c, strict=True):
        xa, xb, xc = io.load_npz(fa), io.load_npz(fb), io.load_npz(fc)
        assert xa.keys() == xb.keys()
        for k in xa:
            assert xa[k].tobytes() == xb[k].tobytes(), k  # same seed: identical arrays
        main_key = "data" if "data" in xa else "warps"
        assert xa[main_key].tobytes() != xc[main_key].tobytes()  # another seed: other data
    # a year does not depend on which other years were generated with it
    assert io.load_npz(a[1])["data"].tobytes() == io.load_npz(d[0])["data"].tobytes()


# --------------------------------------------------------------------------- NDSI, seasons
def test_ndsi_separates_snow_and_ice_from_everything_else(parvati):
    """NDSI ≥ 0.3 on most of the ice in clear scenes, < 0.3 on snow-free ground in summer, and
    snow over the valley in winter — from DN and from reflectance (they differ by the offset)."""
    _, scenes, t = parvati
    data = np.concatenate([s.data for s in scenes.values()])
    times = t["scene_times"]
    doy = _doy(times)
    clear = np.flatnonzero((t["cloud_cover"] <= 5) & (t["missing_fraction"] < 0.2))
    checked = {"ice": 0, "ground": 0, "winter": 0}
    for i in clear:
        g = _dewarp(data[i, GREEN].astype(np.float32), t["warps"][i])
        s = _dewarp(data[i, SWIR16].astype(np.float32), t["warps"][i])
        valid = (g > 0) & (s > 0)
        from_dn = _ndsi(g, s)
        from_refl = _ndsi(g * SCALE + OFFSET, s * SCALE + OFFSET)
        with np.errstate(invalid="ignore"):
            ice = t["glacier_mask"] & (t["along_flow"] <= t["terminus_position"][i]) & valid
        for nd in (from_dn, from_refl):
            assert np.mean(nd[ice] >= 0.3) > 0.6, str(times[i])
        assert not np.allclose(from_dn[valid], from_refl[valid])
        checked["ice"] += 1
        ground = ~np.isfinite(t["along_flow"]) & (t["elevation"] < t["snowline"][i] - 300) & valid
        if 170 <= doy[i] <= 290 and ground.sum() > 200:
            for nd in (from_dn, from_refl):
                assert np.mean(nd[ground] < 0.3) > 0.9, str(times[i])
            checked["ground"] += 1
        if doy[i] <= 60 or doy[i] >= 340:  # winter: snow everywhere but on cliffs
            assert np.mean(from_dn[valid] >= 0.3) > 0.7, str(times[i])
            checked["winter"] += 1
    assert checked["ice"] >= 10 and checked["ground"] >= 1 and checked["winter"] >= 2, checked


def _dn_ndsi(spectrum: np.ndarray) -> float:
    """NDSI of a reflectance spectrum computed from its DN, as preprocessing does by default."""
    g, s = (spectrum[[GREEN, SWIR16]].astype(np.float64) - OFFSET) / SCALE
    return float((g - s) / (g + s))


def test_spectra_are_calibrated_to_a_real_glacier():
    """Summer snow at the real scene's mode (≈ 0.69 from DN), firn between snow and ice, clean ice
    in the real ice range, a snow–ice contrast ≥ 0.1; fine-grained fresh snow stays bright at
    1.6 µm (0.1–0.2) and debris stays below the 0.3 threshold."""
    snow, firn, ice = (_dn_ndsi(SPECTRA[k]) for k in ("snow_old", "firn", "ice"))
    assert 0.67 <= snow <= 0.71
    assert 0.40 <= ice <= 0.60 and ice < firn < snow
    assert snow - ice >= 0.1
    assert SPECTRA["snow_old"][SWIR16] <= 0.019 and SPECTRA["ice"][SWIR16] <= 0.019
    assert 0.1 <= SPECTRA["snow_fresh"][SWIR16] <= 0.2
    assert _dn_ndsi(SPECTRA["debris"]) < 0.3


def test_summer_ndsi_percentiles_in_the_real_range(parvati):
    """The stored summer DN-NDSI percentiles of snow/ice pixels land in the range of the real
    Athabasca scene (0.41–0.72, a little slack for a small ROI), increasing, with a snow mode
    near the top; synthesize prints them."""
    root, _, t = parvati
    pct = t["summer_ndsi_percentiles"]
    assert pct.shape == (len(NDSI_PERCENTILES),) and np.all(np.diff(pct) >= 0)
    assert t["summer_ndsi_pixels"] > 1000
    assert 0.38 <= pct[0] and pct[-1] <= 0.74, pct
    assert 0.60 <= pct[2] <= 0.70 and pct[-1] >= 0.66, pct
    line = [x for x in summarize(get_glacier("parvati"), root) if "DN-NDSI" in x]
    assert len(line) == 1 and f"{pct[2]:.3f}" in line[0]


def test_summer_snow_ice_contrast_in_rendered_scenes():
    """A clear late-summer scene: bare ice (below the snow line) and snow (well above it) differ by
    ≥ 0.1 in DN-NDSI at the median, as on the real glacier (it was ≈ 0.05–0.15 before)."""
    gen = Generator(get_glacier("parvati"), (128, 128), seed=0)
    plan = replace(_clear_late_summer(gen, 2016), warp=np.eye(3))
    dn = gen.render(plan)
    t = gen.truth([plan], np.ones(1, bool))
    nd = _ndsi(dn[GREEN], dn[SWIR16])
    with np.errstate(invalid="ignore"):
        ice = t["glacier_mask"] & (t["along_flow"] <= t["terminus_position"][0])
    ice &= t["elevation"] < plan.snowline - 150
    # sunlit snow (the real scene's mode is that of sunlit snow; snow in the shade of the
    # realistic regime's range is darker, and its DN-NDSI lower)
    sun = gen.sun(plan.doy)
    cos_i = sum(n[PAD:-PAD, PAD:-PAD] * v for n, v in zip(gen.normal, sun, strict=True))
    lit = (cos_i >= 0.8 * sun[2]) & (gen.shadow(plan.doy)[PAD:-PAD, PAD:-PAD] < 0.05)
    snow = (t["elevation"] > plan.snowline + 300) & (nd >= 0.3) & lit
    assert ice.sum() > 300 and snow.sum() > 300
    assert 0.40 <= np.median(nd[ice]) <= 0.55 and np.median(nd[snow]) >= 0.65  # real: 0.69
    assert np.median(nd[snow]) - np.median(nd[ice]) >= 0.1


def test_snow_line_rises_through_summer(parvati):
    _, _, t = parvati
    doy = _doy(t["scene_times"])
    sl = t["snowline"]
    # winter: the snow line in the lowest part of the range (realistic regime: it moves with the
    # persistent anomaly and the storms, so some winter scenes show snow-free valley floors)
    assert np.median(sl[doy < 60]) < np.percentile(t["elevation"], 25)
    # summer: more than 1 km higher (Parvati's peaks in June, before the monsoon's snow)
    assert np.median(sl[(doy > 140) & (doy < 260)]) > np.median(sl[doy < 60]) + 1000
    late_summer = np.median(sl[(doy > 220) & (doy < 260)])
    # the tongue is bare (the monsoon's storms whiten the glacier's upper half now and then)
    assert late_summer > np.percentile(t["elevation"][t["glacier_mask"]], 25)


def test_clouds_are_bright_ndsi_ambiguous_blobs():
    """The same scenes rendered with and without their clouds: the clouds cover about the cloud
    cover in bright blobs whose NDSI falls on both sides of 0.3."""
    from scipy import ndimage

    gen = Generator(get_glacier("parvati"), (128, 128), seed=0)
    plans = [p for p in gen.plan_year(2015) if 0.3 <= p.cloud <= 0.9]
    assert len(plans) >= 3
    ndsi_of_clouds = []
    for plan in plans:
        p = replace(plan, wedge=None, stripes=0, holes=0.0)
        cloudy = gen.render(p) * SCALE + OFFSET  # sets p.cloud_cover
        clear = gen.render(replace(p, cloud=0.0)) * SCALE + OFFSET
        cloud = cloudy[SWIR16] - clear[SWIR16] > 0.05  # clouds reflect in swir16, snow does not
        assert 0.4 * p.cloud_cover < 100 * cloud.mean() <= 1.05 * p.cloud_cover
        assert np.mean(cloudy[BANDS.index("blue")][cloud] > 0.45) > 0.8  # bright
        labels, n = ndimage.label(cloud)
        assert cloud.sum() / n > 30  # blobs, not speckle
        ndsi_of_clouds.append(_ndsi(cloudy[GREEN][cloud], cloudy[SWIR16][cloud]))
    nd = np.concatenate(ndsi_of_clouds)
    assert 0.05 < np.mean(nd >= 0.3) < 0.95  # ambiguous: some pass as snow, some do not


# ---------------------------------------------------------------------------------- motion
def _measure_shift(
    a: np.ndarray, b: np.ndarray, win: tuple[int, int, int, int]
) -> tuple[np.ndarray, tuple[int, int]]:
    """Displacement (dx, dy) of the texture of ``a`` in ``b`` over a window, by phase correlation:
    an integer estimate on the whole window, then sub-pixel phase correlation (upsampled DFT) of
    the window against ``b``'s window moved by that estimate (so the lag no longer biases it).
    Returns the shift and the rows that took part."""
    # high-pass first: smooth brightness variations (and the window's taper on them) bias the
    # correlation peak towards zero lag in a window this small
    a = a - cv2.GaussianBlur(a, (0, 0), 3.0)
    b = b - cv2.GaussianBlur(b, (0, 0), 3.0)
    r0, r1, c0, c1 = win
    # even sizes: cv2.phaseCorrelate is off by half a pixel on odd ones; copies: it may write
    # into views
    r1, c1 = r1 - (r1 - r0) % 2, c1 - (c1 - c0) % 2
    wa, wb = a[r0:r1, c0:c1].copy(), b[r0:r1, c0:c1].copy()
    (dx, dy), _ = cv2.phaseCorrelate(
        wa, wb, cv2.createHanningWindow((c1 - c0, r1 - r0), cv2.CV_32F)
    )
    oy, ox = int(round(dy)), int(round(dx))
    h = (r1 - r0) - abs(oy)
    hann = np.outer(np.hanning(h), np.hanning(c1 - c0))
    pa = a[r0 : r0 + h, c0:c1] * hann
    pb = b[r0 + oy : r0 + oy + h, c0 + ox : c1 + ox] * hann
    res = phase_cross_correlation(pa, pb, upsample_factor=20, normalization=None)[0]
    return np.array([ox - res[1], oy - res[0]]), (r0, r0 + h + oy)


def _window(ok: np.ndarray) -> tuple[int, int, int, int]:
    """The largest block of full-width rows of a band-shaped region ``ok``: (r0, r1, c0, c1)."""
    width = ok.sum(axis=1)
    good = np.concatenate([[0], (width >= 0.8 * width.max()).astype(int), [0]])
    starts, ends = np.flatnonzero(np.diff(good) == 1), np.flatnonzero(np.diff(good) == -1)
    k = int(np.argmax(ends - starts))
    r0, r1 = int(starts[k]), int(ends[k])
    c0 = max(int(np.flatnonzero(ok[r]).min()) for r in range(r0, r1))
    c1 = min(int(np.flatnonzero(ok[r]).max()) for r in range(r0, r1)) + 1
    return r0, r1, c0, c1


def _clear_late_summer(gen: Generator, year: int):
    """The plan of ``year``'s scene nearest early September, made clear: no clouds, no gaps, no
    fresh snow of a monsoon storm (the snow line at least the climate's summer line; everything
    else — date, sun, haze, noise, misregistration — as drawn)."""
    plan = min(gen.plan_year(year), key=lambda p: abs(p.doy - 245))
    snowline = max(plan.snowline, gen.clim.snow_summer)
    return replace(plan, cloud=0.0, wedge=None, stripes=0, holes=0.0, snowline=snowline)


def _apply(warp: np.ndarray, xy: np.ndarray) -> np.ndarray:
    p = warp @ np.array([xy[0], xy[1], 1.0])
    return p[:2] / p[2]


@pytest.mark.parametrize("seed", [0, 1])
def test_motion_is_real_and_known(seed):
    """Between clear late-summer scenes a year apart, phase correlation on the upper glacier
    (where the field is nearly uniform) recovers velocity × Δt within 0.5 px once each scene's
    misregistration is undone with the truth's warps; on the scenes as observed it measures the
    motion plus the difference of the two warps, as the truth predicts."""
    gen = Generator(get_glacier("parvati"), (384, 384), seed=seed)
    plans = [_clear_late_summer(gen, year) for year in (2015, 2016, 2017, 2018)]
    truth = gen.truth(plans, np.ones(len(plans), bool))
    vel, warps = truth["velocity"], truth["warps"]
    speed = np.hypot(*vel)
    observed = [gen.render(p)[GREEN].astype(np.float32) for p in plans]
    assert all(o.min() > 0 for o in observed)  # clear: no nodata
    true = [_dewarp(o, w) for o, w in zip(observed, warps, strict=True)]
    errors, warp_effects = [], []
    for i in range(len(plans) - 1):
        p, q = plans[i], plans[i + 1]
        dt = q.t - p.t
        assert 330 <= dt <= 400
        # a window where the flow is uniform (≥ 97 % of the top speed, straight down the image)
        # and the ice is bare in both scenes (below both snow lines)
        ok = (speed >= 0.97 * speed.max()) & (np.abs(vel[0]) <= 0.01 * speed.max())
        ok &= truth["glacier_mask"] & (truth["elevation"] < min(p.snowline, q.snowline) - 120)
        r0, r1, c0, c1 = _window(ok)
        assert r1 - r0 >= 40 and c1 - c0 >= 20, (r0, r1, c0, c1)
        found, (ra, rb) = _measure_shift(true[i], true[i + 1], (r0, r1, c0, c1))
        expected = vel[:, ra:rb, c0:c1].reshape(2, -1).mean(axis=1) * dt
        assert expected[1] > 9.0 and abs(expected[0]) < 0.2  # about 11 px down the image
        errors.append(float(np.hypot(*(found - expected))))
        # as observed: the window centre moves from H_i(c) to H_j(c + d)
        centre = np.array([(c0 + c1) / 2, (ra + rb) / 2])
        predicted = _apply(warps[i + 1], centre + expected) - _apply(warps[i], centre)
        raw, _ = _measure_shift(observed[i], observed[i + 1], (r0, r1, c0, c1))
        assert np.hypot(*(raw - predicted)) < 0.5, (raw, predicted)
        warp_effects.append(float(np.hypot(*(predicted - expected))))
    assert max(errors) < 0.5, errors
    assert max(warp_effects) > 0.5, warp_effects  # the misregistration matters


def test_texture_moves_with_the_velocity_field():
    """The advected texture itself: every pixel's value reappears velocity × Δt downstream."""
    gen = Generator(get_glacier("aletsch"), (200, 200), seed=1)
    sel = np.arange(gen.band_idx.size)
    t0, dt = 400.0, 30.0
    a, b = gen.texture(t0, sel), gen.texture(t0 + dt, sel)
    hp, wp = gen.shape[0] + 16, gen.shape[1] + 16
    rows, cols = np.divmod(gen.band_idx, wp)
    x, y = cols - 8.0, rows - 8.0  # scene coordinates (the render is padded by 8 px)
    vx, vy = gen.geom.velocity(x, y)
    # follow each pixel of the upper glacier 30 days downstream (≤ 1 px: velocity × Δt is exact
    # enough) and compare with the later texture interpolated there
    img_b = np.zeros((hp * wp, 4), np.float32)
    img_b[gen.band_idx] = b
    img_b = img_b.reshape(hp, wp, 4)
    inner = (np.abs(gen.band_eta) < 0.8) & (y > 0.1 * 200 + 50) & (y < 0.45 * 200 + 50)
    mx = (x + vx * dt + 8).astype(np.float32)[inner]
    my = (y + vy * dt + 8).astype(np.float32)[inner]
    moved = cv2.remap(img_b, mx.reshape(1, -1), my.reshape(1, -1), cv2.INTER_LINEAR).reshape(-1, 4)
    err = np.abs(moved - a[inner])
    static = np.abs(b[inner] - a[inner])
    # texture is unit-variance: advected values match far better than values left in place
    assert np.median(err[:, [0, 1, 3]]) < 0.15 < np.median(static[:, [0, 1, 3]])


# --------------------------------------------------------------------------- motion regime
def test_motion_share_of_known_changes():
    """The motion share itself: a texture moved by exactly the displacement given is all motion
    (1), an unrelated frame is none (≤ 0), and a moved texture that also brightens is in between."""
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.random((60, 60), dtype=np.float32), (0, 0), 2.0)
    disp = np.zeros((2, 60, 60), np.float32)
    disp[1] = 2.0  # two rows down
    moved = np.roll(base, 2, axis=0)
    mask = np.zeros((60, 60), bool)
    mask[10:50, 10:50] = True
    assert motion.motion_share(np.stack([base, moved]), disp[None], mask) == pytest.approx(1.0)
    other = cv2.GaussianBlur(rng.random((60, 60), dtype=np.float32), (0, 0), 2.0)
    zero = np.zeros_like(disp)
    assert motion.motion_share(np.stack([base, other]), zero[None], mask) == 0.0
    both = motion.motion_share(np.stack([base, moved + 0.02]), disp[None], mask)
    assert 0.0 < both < 1.0
    with pytest.raises(GlacierError, match="displacement"):
        motion.motion_share(np.stack([base, moved]), disp, mask)


def test_motion_share_per_regime(tmp_path):
    """Realistic: ice motion explains little of the change between windows (seasonal snow does);
    motion: it explains most of it. Both written to truth.npz and printed."""
    cfg = get_glacier("parvati")
    shares = {}
    for regime in REGIMES:
        root = tmp_path / regime
        synthesize(
            cfg, root, size=(64, 64), years=(2015, 2016), seed=0, progress=False, regime=regime
        )
        t = io.load_npz(Paths(root, "parvati").truth)
        assert str(t["regime"]) == regime
        shares[regime] = float(t["motion_share"])
        line = [x for x in summarize(cfg, root) if "motion share" in x]
        assert len(line) == 1 and f"{shares[regime]:.3f}" in line[0]
    assert shares["realistic"] < 0.2 and shares["motion"] >= 0.5, shares


def test_motion_regime_speeds_snow_line_and_texture():
    """Speeds scale with --size (the demo size moves 1–3 px per 3-month window); the tongue stays
    bare ice all year with a texture across the snow/ice range and dark bands below 0.3."""
    cfg = get_glacier("parvati")
    assert Generator(cfg, (96, 96), regime="realistic").clim.max_speed == MAX_SPEED
    assert Generator(cfg, (400, 400), regime="motion").clim.max_speed == pytest.approx(0.08)
    gen = Generator(cfg, (160, 160), seed=1, regime="motion")
    plans = gen.plan_year(2016)
    truth = gen.truth(plans[:1], np.ones(1, bool))
    per_window = np.hypot(*truth["velocity"])[truth["glacier_mask"]] * 365.25 / 4
    assert 2.5 <= per_window.max() <= 3.0 and np.median(per_window) >= 1.5
    tongue = truth["glacier_mask"] & (truth["elevation"] < gen.z_stable - 50)
    assert tongue.sum() > 0.5 * truth["glacier_mask"].sum()
    medians = []
    for doy in (20, 245):  # mid-winter and late summer
        plan = min(plans, key=lambda p: abs(p.doy - doy))
        plan = replace(plan, cloud=0.0, wedge=None, stripes=0, holes=0.0, warp=np.eye(3))
        dn = gen.render(plan)
        nd = _ndsi(dn[GREEN], dn[SWIR16])[tongue]
        assert 0.1 < np.mean(nd < 0.3) < 0.4  # dark debris bands
        assert np.percentile(nd, 25) < 0.4 and np.percentile(nd, 90) > 0.6  # ice texture
        medians.append(np.median(nd))
    assert abs(medians[0] - medians[1]) < 0.03  # no winter snow on the tongue
    with pytest.raises(GlacierError, match="regime"):
        Generator(cfg, (64, 64), regime="fast")


def test_flow_of_true_frames_beats_zero_flow_in_the_motion_regime():
    """The benchmark checks itself: on window means of a motion-regime glacier (another seed and
    years than the tuning's), Farneback flow of the true frames with the tuned setting is far
    closer to the true motion than zero flow; the paper's setting is reported, not required."""
    cfg = get_glacier("parvati")
    gen = Generator(cfg, (128, 128), seed=3, regime="motion")
    windows = WindowMotionShare(gen, cfg.window_months, keep_frames=True)
    for year in (2019, 2020):
        for p in gen.plan_year(year):
            _, _, clean = gen.render_full(p, clean=True)
            windows.add(p, clean)
    assert windows.share() >= 0.5
    frames, times = np.stack(windows.frames), np.array(windows.times)
    assert len(frames) == 8
    true = windows.velocity[None] * np.diff(times)[:, None, None, None]
    mask = windows.along <= gen.geom.terminus(times[-1])
    zero = motion.endpoint_error(np.zeros_like(true), true, mask).mean()
    tuned = motion.endpoint_error(
        motion.sequence_flow(frames, **motion.FARNEBACK_TUNED), true, mask
    )
    assert 1.0 < zero < 3.0
    assert tuned.mean() < 0.5 * zero, (tuned, zero)


# ------------------------------------------------------------------------------ quick-looks
def test_quicklooks_are_written(parvati):
    root, scenes, _ = parvati
    figs = quicklooks(get_glacier("parvati"), root, YEARS)
    assert [f.name for f in figs] == ["quicklook_2015.png", "quicklook_2016.png"]
    for f in figs:
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        img = cv2.imread(str(f))
        assert img.shape[0] > 300 and img.shape[1] > 600
        assert img.std() > 20  # not a blank canvas
    assert not list(figs[0].parent.glob(".*tmp*"))


# ----------------------------------------------------------------------------------- errors
def test_too_small_size_and_bad_years_raise():
    cfg = get_glacier("parvati")
    with pytest.raises(GlacierError, match="too small"):
        Generator(cfg, (31, 64))
    with pytest.raises(GlacierError, match="year"):
        synthesize(cfg, "/nonexistent", size=(32, 32), years=(2021, 2013))
    with pytest.raises(GlacierError, match="Landsat 8"):
        synthesize(cfg, "/nonexistent", size=(32, 32), years=(2010, 2012))


def test_refuses_to_overwrite_acquired_scenes(tmp_path, parvati):
    cfg = get_glacier("parvati")
    paths = Paths(tmp_path, "parvati")
    _, scenes, _ = parvati
    io.write_scenes(paths.raw_year(2015), scenes[2015])  # a "real" download: no truth.npz
    before = paths.raw_year(2015).read_bytes()
    with pytest.raises(GlacierError, match="--force"):
        synthesize(cfg, tmp_path, size=(32, 32), years=(2015, 2015), progress=False)
    assert paths.raw_year(2015).read_bytes() == before and not paths.truth.exists()
    synthesize(cfg, tmp_path, size=(32, 32), years=(2015, 2015), progress=False, force=True)
    assert io.read_scenes(paths.raw_year(2015)).data.shape[2:] == (32, 32)


def test_only_kept_writes_what_acquisition_would_keep(tmp_path):
    cfg = get_glacier("aletsch")
    synthesize(
        cfg, tmp_path, size=(32, 32), years=(2018, 2018), seed=1, progress=False, only_kept=True
    )
    paths = Paths(tmp_path, "aletsch")
    s = io.read_scenes(paths.raw_year(2018))
    t = io.load_npz(paths.truth)
    assert np.array_equal(t["written"], t["kept"]) and len(s.times) == t["kept"].sum() < len(
        t["kept"]
    )
    assert np.array_equal(s.times, t["scene_times"][t["kept"]])
    assert s.cloud_cover.max() <= 20 and (s.data[:, GREEN] == 0).mean(axis=(1, 2)).max() < 0.5


# -------------------------------------------------------------------------------------- CLI
def test_persistence_is_recorded_with_the_anomaly(parvati, tmp_path):
    """``--persistence``: the default ρ and the anomaly the oracle needs are in the truth; another
    ρ changes the anomaly's persistence (its lag-1 window correlation) and is recorded."""
    _, _, t = parvati
    assert float(t["persistence"]) == 0.5 and float(t["anomaly_std_m"]) > 0
    assert t["snowline_anomaly"].shape == t["scene_times"].shape
    assert np.isfinite(t["snowline_anomaly"]).all()
    cfg = get_glacier("parvati")
    synthesize(cfg, tmp_path, size=(32, 32), years=(2015, 2015), progress=False, persistence=0.0)
    t0 = io.load_npz(Paths(tmp_path, "parvati").truth)
    assert float(t0["persistence"]) == 0.0
    assert not np.allclose(t0["snowline_anomaly"], t["snowline_anomaly"][: len(t0["scene_times"])])
    with pytest.raises(SettingsError, match="persistence"):
        SynthesizeSettings(glacier="parvati", persistence=1.0)
    assert SynthesizeSettings(glacier="parvati").persistence == 0.5


def test_cli_synthesize(tmp_path, capsys):
    rc = main(
        [
            "synthesize",
            "--glacier",
            "Aletsch",
            "--size",
            "32",
            "40",
            "--years",
            "2019-2020",
            "--seed",
            "4",
            "--data-root",
            str(tmp_path),
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out.splitlines()
    assert len([line for line in out if "scenes generated" in line]) == 2
    assert any("quick-look" in line for line in out)
    paths = Paths(tmp_path, "aletsch")
    assert io.read_scenes(paths.raw_year(2020)).data.shape[2:] == (50 + 32, 100 + 40)
    with Image.open(paths.figures_dir / "quicklook_2019.png") as img:
        img.load()  # a whole PNG: one mosaic of the year's scenes
        assert img.format == "PNG" and min(img.size) > 50
    assert geotransform(get_glacier("aletsch")) == io.read_scenes(paths.raw_year(2019)).transform


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--glacier", "rhone"], "unknown glacier"),
        (["--glacier", "parvati", "--years", "2021-2013"], "year range"),
        (["--glacier", "parvati", "--years", "1999-2001"], "Landsat 8"),
        (["--glacier", "parvati", "--years", "20x5"], "year range"),
        (["--glacier", "parvati", "--size", "16", "16"], "too small"),
        (["--glacier", "parvati", "--persistence", "1.0"], "--persistence"),
        (["--glacier", "parvati", "--persistence", "-0.1"], "--persistence"),
        (["--glacier", "parvati", "--size", "64"], "--size"),  # argparse: needs H and W
        ([], "--glacier"),  # argparse: required
    ],
)
def test_cli_errors_are_one_line(tmp_path, capsys, args, words):
    try:
        rc = main(["synthesize", "--data-root", str(tmp_path), "--no-quicklook", *args])
    except SystemExit as e:  # argparse's own errors exit from the parser
        rc = e.code
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err, err
    assert not (tmp_path / "parvati").exists()


def test_console_script_exit_status(tmp_path):
    """The real entry point: one line on stderr and a non-zero exit status."""
    script = Path(sys.executable).parent / "glacier-movement"  # the installed console script
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "glacier_movement"]
    r = subprocess.run(
        [*cmd, "synthesize", "--glacier", "nowhere", "--data-root", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "unknown glacier 'nowhere'" in r.stderr
    assert not (tmp_path / "nowhere").exists()
