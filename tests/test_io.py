"""Tests of glacier_movement.io: scene and frame files, validation, atomic writes, no pickle."""

from __future__ import annotations

import gzip
import os
import stat
import zipfile

import numpy as np
import pandas as pd
import pytest
import rasterio
from PIL import Image

from glacier_movement import io
from glacier_movement.config import BANDS, OFFSET, SCALE
from glacier_movement.errors import DataError, GlacierError
from tests.helpers import frames


def _scenes(n: int = 3, h: int = 6, w: int = 5, seed: int = 0) -> io.Scenes:
    rng = np.random.default_rng(seed)
    data = rng.integers(1, 60000, size=(n, len(BANDS), h, w), dtype=np.uint16)
    data[0, :, 0, :] = 0  # a nodata row
    times = np.datetime64("2015-01-03T05:01:00", "ns") + np.arange(n) * np.timedelta64(16, "D")
    return io.Scenes(
        times=times,
        data=data,
        cloud_cover=rng.uniform(0, 100, n),
        glacier="parvati",
        epsg=32643,
        transform=(30.0, 0.0, 734430.0, 0.0, -30.0, 3568920.0),
        scale=SCALE,
        offset=OFFSET,
    )


def _frames(t: int = 4, h: int = 5, w: int = 6) -> io.Frames:
    rng = np.random.default_rng(1)
    fr = rng.uniform(0, 1, (t, h, w)).astype(np.float32)
    fr[fr < 0.3] = 0
    return io.Frames(
        frames=fr,
        window_start=np.array(
            ["2013-01-01", "2013-04-01", "2013-07-01", "2013-10-01"], dtype="datetime64[D]"
        )[:t],
        window_months=3,
        n_scenes=np.array([0, 2, 3, 1])[:t],
        interpolated=np.array([True, False, False, False])[:t],
        glacier="parvati",
        epsg=32643,
        transform=(30.0, 0.0, 734430.0, 0.0, -30.0, 3568920.0),
        roi=(0, h, 0, w),
    )


def _write_raw(path, **arrays) -> None:
    """An .npz with exactly these arrays (np.savez, as a foreign tool would write it)."""
    np.savez(path, **arrays)


def _scene_arrays(s: io.Scenes) -> dict[str, np.ndarray]:
    return dict(
        times=s.times,
        data=s.data,
        bands=np.array(BANDS),
        cloud_cover=s.cloud_cover,
        scale=np.float64(s.scale),
        offset=np.float64(s.offset),
        epsg=np.int64(s.epsg),
        transform=np.asarray(s.transform),
        glacier=np.array(s.glacier),
    )


# ------------------------------------------------------------------------------- round trips
def test_scenes_round_trip(tmp_path):
    s = _scenes()
    path = io.write_scenes(tmp_path / "raw" / "2015.npz", s)
    assert path == tmp_path / "raw" / "2015.npz"
    r = io.read_scenes(path)
    assert r.data.dtype == np.uint16 and np.array_equal(r.data, s.data)
    assert r.times.dtype == np.dtype("datetime64[ns]") and np.array_equal(r.times, s.times)
    assert np.array_equal(r.cloud_cover, s.cloud_cover)
    assert (r.glacier, r.epsg, r.transform, r.scale, r.offset, r.bands) == (
        s.glacier,
        s.epsg,
        s.transform,
        s.scale,
        s.offset,
        BANDS,
    )
    refl = r.reflectance("green")
    assert refl.dtype == np.float32 and np.isnan(refl[0, 0]).all()
    assert np.allclose(refl[1], s.data[1, BANDS.index("green")] * SCALE + OFFSET, atol=1e-6)
    with zipfile.ZipFile(path) as z:  # plain .npy members: readable anywhere, no pickle
        assert sorted(z.namelist()) == sorted(f"{k}.npy" for k in _scene_arrays(s))


def test_frames_round_trip(tmp_path):
    fr = _frames()
    path = io.write_frames(tmp_path / "frames.npz", fr)
    r = io.read_frames(path)
    assert r.frames.dtype == np.float32 and np.array_equal(r.frames, fr.frames)
    assert np.array_equal(r.window_start, fr.window_start) and r.window_start.dtype == np.dtype(
        "datetime64[D]"
    )
    assert np.array_equal(r.n_scenes, fr.n_scenes) and np.array_equal(
        r.interpolated, fr.interpolated
    )
    assert (r.window_months, r.glacier, r.epsg, r.transform, r.roi) == (
        3,
        "parvati",
        32643,
        fr.transform,
        fr.roi,
    )


def test_written_files_respect_the_umask(tmp_path):
    path = io.write_scenes(tmp_path / "2015.npz", _scenes())
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


# ----------------------------------------------------------------------- invalid scene files
@pytest.mark.parametrize(
    "key",
    ["times", "data", "bands", "cloud_cover", "scale", "offset", "epsg", "transform", "glacier"],
)
def test_scene_file_missing_key(tmp_path, key):
    arrays = _scene_arrays(_scenes())
    del arrays[key]
    path = tmp_path / "2015.npz"
    _write_raw(path, **arrays)
    with pytest.raises(DataError, match=rf"{path}.*{key}") as e:
        io.read_scenes(path)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (dict(data=lambda a: a.astype(np.float32)), "dtype float32"),
        (dict(data=lambda a: a.astype(np.int16)), "dtype int16"),
        (dict(data=lambda a: a[:, :5]), "shape"),
        (dict(data=lambda a: a[0]), "shape"),
        (dict(times=lambda a: a.astype(np.int64)), "'times'"),
        (dict(times=lambda a: a[:2]), "'times'"),
        (dict(cloud_cover=lambda a: a[:1]), "'cloud_cover'"),
        (dict(bands=lambda a: a[::-1]), "bands"),
        (dict(transform=lambda a: a[:5]), "'transform'"),
        (dict(epsg=lambda a: np.array("utm")), "malformed"),
        (dict(scale=lambda a: np.array([1.0, 2.0])), "malformed"),
    ],
)
def test_scene_file_wrong_dtype_or_shape(tmp_path, change, words):
    arrays = _scene_arrays(_scenes())
    for key, f in change.items():
        arrays[key] = f(arrays[key])
    path = tmp_path / "2016.npz"
    _write_raw(path, **arrays)
    with pytest.raises(DataError) as e:
        io.read_scenes(path)
    msg = str(e.value)
    assert str(path) in msg and words in msg and "\n" not in msg, msg


def test_write_scenes_validates_before_writing(tmp_path):
    s = _scenes()
    s.data = s.data.astype(np.int32)
    path = tmp_path / "2015.npz"
    with pytest.raises(DataError, match="uint16"):
        io.write_scenes(path, s)
    assert not path.exists() and not list(tmp_path.iterdir())


@pytest.mark.parametrize("keep", [0.0, 0.1, 0.5, 0.9, 0.999])
def test_truncated_scene_file(tmp_path, keep):
    path = io.write_scenes(tmp_path / "2015.npz", _scenes(h=40, w=40))
    blob = path.read_bytes()
    path.write_bytes(blob[: int(len(blob) * keep)])
    with pytest.raises(DataError, match=rf"{path}.*(truncated|not a readable)"):
        io.read_scenes(path)


def test_corrupted_member_is_detected(tmp_path):
    path = io.write_scenes(tmp_path / "2015.npz", _scenes(h=40, w=40))
    blob = bytearray(path.read_bytes())
    i = blob.find(b"data.npy") + 4000  # inside the data member: its CRC no longer matches
    blob[i : i + 8] = b"\xff" * 8
    path.write_bytes(bytes(blob))
    with pytest.raises(DataError, match=str(path)):
        io.read_scenes(path)


@pytest.mark.parametrize(
    "write",
    [
        lambda p: p.write_text("year,scene\n2015,1\n"),  # a text file named 2015.npz
        lambda p: p.write_bytes(b""),  # empty
        lambda p: np.save(open(p, "wb"), np.arange(5)),  # a bare .npy array
        lambda p: np.savez(p, a=np.arange(3), b=np.zeros(2)),  # an .npz of other arrays
        lambda p: np.savez(p, data=np.array([{"x": 1}], dtype=object)),  # pickled objects
    ],
    ids=["text", "empty", "npy", "other-arrays", "pickle"],
)
def test_foreign_files_are_rejected_with_the_file_named(tmp_path, write):
    path = tmp_path / "2015.npz"
    write(path)
    with pytest.raises(DataError) as e:
        io.read_scenes(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        io.read_scenes(tmp_path / "2015.npz")
    with pytest.raises(DataError, match="does not exist"):
        io.read_frames(tmp_path / "frames.npz")


def test_errors_are_glacier_errors():
    assert issubclass(DataError, GlacierError)


# ----------------------------------------------------------------------- invalid frame files
def _frame_arrays(fr: io.Frames) -> dict[str, np.ndarray]:
    return dict(
        frames=fr.frames,
        window_start=fr.window_start,
        window_months=np.int64(fr.window_months),
        n_scenes=fr.n_scenes,
        interpolated=fr.interpolated,
        glacier=np.array(fr.glacier),
        epsg=np.int64(fr.epsg),
        transform=np.asarray(fr.transform),
        roi=np.asarray(fr.roi),
    )


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("frames", None, "'frames'"),  # missing
        ("roi", None, "'roi'"),
        ("frames", np.zeros((4, 5, 6)), "float32"),  # float64
        ("frames", np.zeros((5, 6), np.float32), "(T, H, W)"),
        ("n_scenes", np.zeros(3, np.int64), "'n_scenes'"),
        ("window_start", np.array(["2013-01-01"], dtype="datetime64[D]"), "'window_start'"),
        ("window_months", np.array([3, 4]), "malformed"),
        ("frames", np.full((4, 5, 6), np.nan, np.float32), "NaN"),
    ],
)
def test_frame_file_rejected(tmp_path, key, value, words):
    arrays = _frame_arrays(_frames())
    if value is None:
        del arrays[key]
    else:
        arrays[key] = value
    path = tmp_path / "frames.npz"
    _write_raw(path, **arrays)
    with pytest.raises(DataError) as e:
        io.read_frames(path)
    msg = str(e.value)
    assert str(path) in msg and words in msg and "\n" not in msg, msg


def test_truncated_frame_file(tmp_path):
    path = io.write_frames(tmp_path / "frames.npz", _frames())
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(DataError, match=str(path)):
        io.read_frames(path)


# ------------------------------------------------------------------------------ atomic writes
def test_atomic_path_keeps_the_old_file_on_error(tmp_path):
    path = tmp_path / "truth.npz"
    io.save_npz(path, a=np.arange(3))
    old = path.read_bytes()

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        with io.atomic_path(path) as tmp:
            tmp.write_bytes(b"half a file")
            raise Boom
    assert path.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["truth.npz"]  # no temporary left


def test_atomic_path_on_interrupt_and_new_file(tmp_path):
    path = tmp_path / "sub" / "2015.npz"
    with pytest.raises(KeyboardInterrupt):
        with io.atomic_path(path) as tmp:
            tmp.write_bytes(b"x")
            raise KeyboardInterrupt
    assert not path.exists() and list(path.parent.iterdir()) == []
    with io.atomic_path(path) as tmp:
        assert tmp.parent == path.parent and tmp != path
        tmp.write_bytes(b"complete")
    assert path.read_bytes() == b"complete" and list(path.parent.iterdir()) == [path]


def test_save_npz_replaces_atomically(tmp_path):
    path = tmp_path / "x.npz"
    io.save_npz(path, a=np.arange(3))
    io.save_npz(path, compress=True, a=np.arange(4), b=np.ones(2))
    out = io.load_npz(path, {"a": "the a", "b": "the b"})
    assert np.array_equal(out["a"], np.arange(4)) and np.array_equal(out["b"], np.ones(2))
    with pytest.raises(DataError, match="'c'"):
        io.load_npz(path, {"c": "the c"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npz"]


def test_atomic_path_reports_an_unwritable_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(GlacierError, match="cannot create folder"):
        with io.atomic_path(blocker / "raw" / "2015.npz"):
            pass


# ------------------------------------------------------------------------------ writers
def test_geotiff_has_crs_transform_and_values(tmp_path):
    bands = frames(4, 20, 30)
    transform = (30.0, 0.0, 600_000.0, 0.0, -30.0, 3_550_000.0)
    path = io.write_geotiff(tmp_path / "p.tif", bands, 32643, transform, ["a", "b", "c", "d"])
    with rasterio.open(path) as src:
        assert src.crs.to_epsg() == 32643
        assert tuple(src.transform)[:6] == transform
        assert src.count == 4 and src.dtypes == ("float32",) * 4 and src.nodata is None
        assert src.descriptions == ("a", "b", "c", "d")
        np.testing.assert_array_equal(src.read(), bands)
        # pixel (r, c) centre is at the affine map of (c + 0.5, r + 0.5)
        assert src.xy(2, 3) == (600_000.0 + 3.5 * 30, 3_550_000.0 - 2.5 * 30)
    assert not list(tmp_path.glob(".*"))  # no temporary left behind


def test_grayscale_png_is_min_max_scaled(tmp_path):
    img = np.array([[0.3, 0.65], [1.0, 0.3]], np.float32)
    png = io.save_grayscale(img, tmp_path / "a.png")
    got = np.asarray(Image.open(png))
    assert Image.open(png).mode == "L"
    np.testing.assert_array_equal(got, [[0, 127], [255, 0]])
    assert (
        np.asarray(Image.open(io.save_grayscale(np.zeros((3, 3)), tmp_path / "z.png"))) == 0
    ).all()
    assert io.save_grayscale(img, tmp_path / "a.pdf").read_bytes().startswith(b"%PDF")


def test_markdown_table_lines_and_alignment():
    assert io.markdown_table(["a", "b"], [["1", "2"], ["x", ""]], "lr") == (
        "| a | b |\n|---|---:|\n| 1 | 2 |\n| x |  |"
    )
    assert io.markdown_table(["only"], []) == "| only |\n|---|"
    with pytest.raises(ValueError, match="one letter"):
        io.markdown_table(["a", "b"], [], "l")


def test_write_csv_float_format_and_gzip(tmp_path):
    df = pd.DataFrame({"name": ["a", "b"], "v": [1 / 3, 2.0]})
    plain = io.write_csv(df, tmp_path / "t.csv", "%.6g")
    assert plain.read_text() == "name,v\na,0.333333\nb,2\n"
    full = io.write_csv(df, tmp_path / "t.csv.gz")
    assert gzip.decompress(full.read_bytes()).decode() == df.to_csv(index=False)
    pd.testing.assert_frame_equal(pd.read_csv(full), df)
