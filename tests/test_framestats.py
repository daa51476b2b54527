"""frames-stats: the statistics of frames files against hand-computed values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import frames_record

from glacier_movement import framestats, io
from glacier_movement.catalog import Catalog
from glacier_movement.cli import main
from glacier_movement.errors import DataError
from glacier_movement.framestats import FrameFile, FramesStatsSettings, parse_sets
from glacier_movement.settings import SettingsError

A = np.array([[0.0, 0.5, 0.5], [0.4, 0.0, 0.8]], np.float32)
B = np.array([[0.3, 0.0, 0.5], [0.4, 0.6, 0.0]], np.float32)


def test_one_frame_by_hand():
    s = framestats.frame_statistics(A)
    assert s["snow_fraction"] == pytest.approx(4 / 6)
    mean = 2.2 / 6
    assert s["spatial_std"] == pytest.approx(np.sqrt(1.3 / 6 - mean**2))
    # |0.5-0| + |0.5-0.5| + |0-0.4| + |0.8-0| over 4 neighbour pairs
    assert s["texture"] == pytest.approx((0.5 + 0.0 + 0.4 + 0.8) / 4)
    assert s["median_snow"] == pytest.approx(0.5)  # of 0.5, 0.5, 0.4, 0.8


def test_nan_pixels_are_left_out():
    x = A.copy()
    x[1, 2] = np.nan  # the 0.8 is unknown
    s = framestats.frame_statistics(x)
    assert s["snow_fraction"] == pytest.approx(3 / 5)
    assert s["texture"] == pytest.approx((0.5 + 0.0 + 0.4) / 3)
    assert s["median_snow"] == pytest.approx(0.5)
    empty = framestats.frame_statistics(np.full((2, 2), np.nan))
    assert all(np.isnan(v) for v in empty.values())


def test_set_pairs_and_year_lags_by_hand():
    # 2 windows per year, frames 0..5: A B A B 0 B (frame 4 all zero)
    f = np.stack([A, B, A, B, np.zeros_like(A), B])
    table = framestats.set_statistics(FrameFile(f, 2, "x"), (3, 4, 5))
    rows = table.set_index("frame")
    assert np.isnan(rows.loc["3", "mse_previous"])  # frame 2 is not in the set
    assert rows.loc["4", "mse_previous"] == pytest.approx(float(np.mean(B**2)))
    assert rows.loc["5", "mse_previous"] == pytest.approx(float(np.mean(B**2)))
    assert rows.loc["3", "mse_1y"] == pytest.approx(0.0)  # frame 1 = B
    assert rows.loc["4", "mse_1y"] == pytest.approx(float(np.mean(A**2)))  # frame 2 = A
    assert rows.loc["5", "mse_2y"] == pytest.approx(0.0)  # frame 1 = B
    assert np.isnan(rows.loc["3", "mse_2y"])  # two years before frame 3 is frame -1
    assert rows.loc["4", "mse_2y"] == pytest.approx(float(np.mean(A**2)))  # frame 0 = A
    assert rows.loc["mean", "mse_previous"] == pytest.approx(float(np.mean(B**2)))
    assert rows.loc["mean", "snow_fraction"] == pytest.approx((4 / 6 + 0 + 4 / 6) / 3)


def test_departure_correlation_by_hand():
    # 2 windows a year, 3 years: a seasonal cycle 0 / 1 plus year anomalies +1, -1, 0 (mean 0, so
    # the climatology is the cycle and the departures are 1 1 -1 -1 0 0)
    cycle = np.array([0.0, 1.0] * 3)
    anomaly = np.repeat([1.0, -1.0, 0.0], 2)
    f = np.broadcast_to((cycle + anomaly)[:, None, None], (6, 2, 3)).astype(np.float32)
    corr = framestats.departure_correlation(FrameFile(f, 2, "x"), lags=(1, 2))
    # lag 1: pairs (d0,d1) … (d4,d5) = (1,1) (1,-1) (-1,-1) (-1,0) (0,0), every pixel alike
    a, b = [1, 1, -1, -1, 0], [1, -1, -1, 0, 0]
    assert corr[1] == pytest.approx(np.corrcoef(a, b)[0, 1])
    # lag 2: (1,-1) (1,-1) (-1,0) (-1,0)
    assert corr[2] == pytest.approx(np.corrcoef([1, 1, -1, -1], [-1, -1, 0, 0])[0, 1])
    assert framestats.departure_correlation(FrameFile(f[:4], 2, "x")) is None  # 2 years only
    assert framestats.departure_correlation(FrameFile(f, None, "x")) is None


def test_parse_sets():
    assert parse_sets("23-26,31-34") == ((23, 24, 25, 26), (31, 32, 33, 34))
    assert parse_sets("5") == ((5,),)
    for bad in ("26-23", "a-b", ""):
        with pytest.raises(ValueError):
            parse_sets(bad)
    with pytest.raises(SettingsError, match="frames"):
        FramesStatsSettings(path="x.npz", frames="1-")


def test_command_reads_frames_npz_and_compares(tmp_path, capsys):
    f = np.stack([A, B, A, B, A, B, A, B])  # 4 windows a year (frames_record: 3-month windows)
    io.write_frames(tmp_path / "frames.npz", frames_record(f, "g"))
    other = f.copy()
    other[4:] = np.where(other[4:] > 0, other[4:], np.nan)  # unknown pixels: left out
    np.save(tmp_path / "other.npy", other)
    out = tmp_path / "stats.csv"
    main(["frames-stats", str(tmp_path / "frames.npz"), "--compare", str(tmp_path / "other.npy"),
          "--frames", "4-7", "--out", str(out)])  # fmt: skip
    text = capsys.readouterr().out
    assert "snow_fraction" in text and "texture" in text and "ratio" in text
    table = pd.read_csv(out)
    row = table[(table["frame"] == "mean") & (table["statistic"] == "snow_fraction")].iloc[0]
    assert row["value"] == pytest.approx(4 / 6)  # A and B: 4 of 6 pixels
    assert row["compare"] == pytest.approx(1.0)  # only the snow pixels are known
    assert row["ratio"] == pytest.approx(row["value"] / row["compare"])
    y1 = table[(table["frame"] == "mean") & (table["statistic"] == "mse_1y")].iloc[0]
    assert y1["value"] == pytest.approx(0.0)  # frames 4-7 repeat frames 0-3
    assert "mse_2y" not in set(table.dropna(subset=["value"])["statistic"])  # only 2 years


def test_plain_array_and_bad_files(tmp_path):
    np.savez(tmp_path / "cube.npz", cube=np.stack([A, B]))
    ff = framestats.read_frame_file(tmp_path / "cube.npz", per_year=None)
    assert ff.frames.shape == (2, 2, 3) and ff.per_year is None
    np.savez(tmp_path / "two.npz", a=np.stack([A, B]), b=np.stack([A, B]))
    with pytest.raises(DataError, match="'frames'"):
        framestats.read_frame_file(tmp_path / "two.npz")
    with pytest.raises(DataError, match="frame 4 does not exist"):
        framestats.run(FramesStatsSettings(path=tmp_path / "cube.npz", frames="4-5"),
                       Catalog.at(tmp_path))  # fmt: skip
