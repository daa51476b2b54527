"""config.py: glacier configs (defaults, checks, TOML round trip), held-out and motion names,
validate_epsg, grid_shape against an independent geodesic measure, the data root and the layout.

The command-line face of the same checks (one-line errors, exit 2) is in
tests/robustness/test_robust_glaciers.py and test_robust_arguments.py."""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import replace

import pytest
from pyproj import Geod

from glacier_movement import config
from glacier_movement.errors import GlacierError

#: A 0.1° box on the central meridian of UTM zone 43N (75° E), where the UTM scale is 0.9996.
BOX = (74.95, 31.95, 75.05, 32.05)


# ---------------------------------------------------------------------- glacier configs
def test_defaults_are_filled_from_the_bbox():
    """Only name and bbox given: the UTM zone of the centre, the whole grid as ROI, 3-month
    windows and Landsat 8's full years."""
    cfg = config.glacier_from_dict({"name": "box", "bbox": list(BOX)})
    assert cfg.epsg == 32643 == config.utm_epsg(75.0, 32.0)
    rows, cols = config.grid_shape(BOX, 32643)
    assert cfg.roi == (0, rows, 0, cols) and cfg.roi_shape == (rows, cols)
    assert cfg.window_months == 3 and cfg.frames_per_year == 4
    assert cfg.years == (config.LANDSAT8_FIRST_YEAR, config.last_full_year())
    assert cfg.train_frames is None and cfg.scene_selection is None


@pytest.mark.parametrize(("months", "per_year"), [(1, 12), (2, 6), (4, 3), (6, 2), (12, 1)])
def test_frames_per_year_divides_the_year(months, per_year):
    cfg = config.glacier_from_dict({"name": "g", "bbox": list(BOX), "window_months": months})
    assert cfg.frames_per_year == per_year and cfg.frames_per_year * months == 12


def test_toml_round_trip_keeps_every_field(tmp_path):
    cfg = config.glacier_from_dict(
        {"name": "box.b-2", "bbox": list(BOX), "epsg": 32644, "roi": [3, 40, 5, 60],
         "window_months": 4, "years": "2014-2016", "train_frames": 5,
         "scene_selection": {"2015": [0, 3], "2014": [2]}}
    )  # fmt: skip
    text = config.glacier_to_toml(cfg, comment="two\nlines")
    assert text.startswith("# two\n# lines\n")
    assert config.glacier_from_dict(tomllib.loads(text)) == cfg
    assert cfg.scene_selection == {2014: (2,), 2015: (0, 3)} and cfg.years == (2014, 2016)
    # a file's stem is the name when the file has none
    path = tmp_path / "stem.toml"
    path.write_text(text.replace('name = "box.b-2"\n', ""))
    assert config.load_glacier_file(path) == replace(cfg, name="stem")


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"bbox": [75.05, 31.95, 74.95, 32.05]}, "empty or reversed"),
        ({"bbox": [74.95, 31.95, 75.05]}, "4 numbers"),
        ({"bbox": "74 31 75 32"}, "not a list of numbers"),
        ({"epsg": 4326}, "not a projected CRS in metres"),
        ({"epsg": 32643.0}, "epsg = 32643.0 is not a whole number"),
        ({"roi": [0, 10_000, 0, 5]}, "lies outside the"),
        ({"roi": [5, 5, 0, 5]}, "empty or negative"),
        ({"window_months": 5}, "does not divide the year"),
        ({"years": [2013]}, "is not [FIRST, LAST]"),
        ({"years": "2010-2014"}, "outside Landsat 8's life"),
        ({"train_frames": 1}, "train_frames = 1 is too small"),
        ({"scene_selection": {"2030": [0]}, "years": "2014-2016"}, "not one of the years"),
        ({"scene_selection": {"2015": [-1]}}, "not a list of scene indices >= 0"),
        ({"colour": "blue"}, "unknown key 'colour'"),
    ],
)
def test_bad_values_are_one_line_errors_naming_the_key(changes, words):
    with pytest.raises(GlacierError) as e:
        config.glacier_from_dict({"name": "g", "bbox": list(BOX), **changes})
    assert words in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("parvati", "is a shipped glacier"),
        ("Models", "taken by the data root's models/ folder"),
        ("glaciers", "taken by the data root's glaciers/ folder"),
        ("rhone-heldout-1", "reads as a held-out replicate"),
        ("../up", "bad glacier name"),
        ("-dash", "bad glacier name"),
        ("a" * 101, "bad glacier name"),
    ],
)
def test_names_that_would_clash_on_disk_are_refused(name, words):
    with pytest.raises(GlacierError, match=re.escape(words)):
        config.validate_name(name)


def test_shipped_names_are_allowed_for_the_shipped_files():
    assert config.validate_name("parvati", shipped=True) == "parvati"


# ---------------------------------------------------------------- held-out and motion names
@pytest.mark.parametrize("base", ["parvati", "aletsch"])
def test_heldout_and_motion_glaciers_take_the_base_configuration(base):
    cfg = config.get_glacier(base)
    for name in (
        config.heldout_name(base, 3),
        base + config.MOTION,
        config.heldout_name(base + config.MOTION, 1),
    ):
        other = config.get_glacier(name)
        assert other.name == name and replace(other, name=base) == cfg


def test_heldout_name_is_lower_case_whatever_the_spelling():
    assert config.get_glacier("Parvati-Heldout-2").name == "parvati-heldout-2"


def test_heldout_replicate_of_a_user_glacier(tmp_path):
    (tmp_path / "glaciers").mkdir()
    user = config.glacier_from_dict({"name": "box", "bbox": list(BOX), "window_months": 6})
    (tmp_path / "glaciers" / "box.toml").write_text(config.glacier_to_toml(user))
    assert config.get_glacier("box", tmp_path) == user
    held = config.get_glacier("box-heldout-4", tmp_path)
    assert held == replace(user, name="box-heldout-4")
    # under another data root there is no "box" to replicate: the error names the base
    with pytest.raises(GlacierError, match="unknown glacier 'box': choose one of"):
        config.get_glacier("box-heldout-4", tmp_path / "elsewhere")


@pytest.mark.parametrize("name", ["nope", "nope-motion", "parvati-heldout-x", "-heldout-1"])
def test_unknown_glacier_lists_the_choices(name, tmp_path):
    with pytest.raises(GlacierError) as e:
        config.get_glacier(name, tmp_path)
    msg = str(e.value)
    assert f"unknown glacier {name!r}" in msg and "aletsch, parvati" in msg and "\n" not in msg


@pytest.mark.parametrize(
    ("text", "is_path"),
    [("parvati", False), ("my.toml", True), ("dir/my", True), ("parvati-heldout-1", False)],
)
def test_a_glacier_argument_is_a_path_when_it_looks_like_one(text, is_path):
    assert config.is_config_path(text) is is_path


# ----------------------------------------------------------------- projection and grid size
def test_validate_epsg_accepts_projected_metre_crs_only():
    assert config.validate_epsg(32643) == 32643 and config.validate_epsg(3413) == 3413
    with pytest.raises(GlacierError, match="not a projected CRS in metres"):
        config.validate_epsg(4326)  # geographic: degrees
    with pytest.raises(GlacierError, match="not a projected CRS in metres"):
        config.validate_epsg(2263)  # New York state plane: US feet
    with pytest.raises(GlacierError, match="EPSG:999999 is not a known coordinate system"):
        config.validate_epsg(999999)


def test_grid_shape_matches_the_geodesic_size_of_the_box():
    """ceil(extent / 30 m) + 1 a side, the extent measured on the ellipsoid (pyproj.Geod, no
    projection) times UTM's scale 0.9996 on the central meridian; E–W at the wider south edge."""
    geod = Geod(ellps="WGS84")
    w, s, e, n = BOX
    north_south = geod.inv(75.0, s, 75.0, n)[2] * 0.9996
    east_west = geod.inv(w, s, e, s)[2] * 0.9996
    rows, cols = config.grid_shape(BOX, 32643)
    assert abs(rows - (math.ceil(north_south / 30) + 1)) <= 1
    assert abs(cols - (math.ceil(east_west / 30) + 1)) <= 1
    # twice as wide: twice the columns (up to the snap), the same rows
    rows2, cols2 = config.grid_shape((w, s, e + 0.1, n), 32643)
    assert rows2 == rows and abs((cols2 - 1) - 2 * (cols - 1)) <= 2


def test_utm_zones_and_hemispheres():
    assert config.utm_epsg(-180.0, 10.0) == 32601 and config.utm_epsg(179.9, 10.0) == 32660
    assert config.utm_epsg(8.0, 46.5) == 32632 and config.utm_epsg(8.0, -46.5) == 32732


# ------------------------------------------------------------------------------- the data root
def test_data_root_argument_then_environment_then_data(monkeypatch, tmp_path):
    monkeypatch.setenv(config.DATA_ROOT_ENV, str(tmp_path / "env"))
    assert config.data_root(tmp_path / "arg") == tmp_path / "arg"
    assert config.data_root() == tmp_path / "env"
    monkeypatch.setenv(config.DATA_ROOT_ENV, "")  # set but empty: the default
    assert config.data_root() == config.Path("data")
    monkeypatch.delenv(config.DATA_ROOT_ENV)
    assert config.data_root() == config.Path("data")
    assert config.glaciers_dir() == config.Path("data", "glaciers")


def test_user_glacier_files_are_the_toml_files_sorted(tmp_path):
    assert config.user_glacier_files(tmp_path) == []  # no glaciers/ folder yet
    d = tmp_path / "glaciers"
    d.mkdir()
    for name in ("b.toml", "a.toml", "notes.txt"):
        (d / name).write_text("")
    assert [p.name for p in config.user_glacier_files(tmp_path)] == ["a.toml", "b.toml"]


# ---------------------------------------------------------------------------------- layout
def test_paths_keep_each_glacier_in_its_folder_and_share_the_models(tmp_path):
    a, b = config.Paths(tmp_path, "a"), config.Paths(tmp_path, "b")
    per_glacier = [a.raw_dir, a.raw_year(2015), a.truth, a.frames, a.figures_dir, a.results_dir]
    assert all(p.is_relative_to(tmp_path / "a") for p in per_glacier)
    assert len(set(per_glacier)) == len(per_glacier)  # no two outputs share a path
    assert a.raw_year(2015) != a.raw_year(2016) and a.raw_year(2015).parent == a.raw_dir
    # trained runs are shared by the glaciers (experiment 3 trains on two) and sit beside them,
    # in a folder no glacier may take
    assert a.models_dir == b.models_dir and a.models_dir.parent == tmp_path
    assert a.models_dir.name in config.RESERVED_NAMES
    assert not set(per_glacier) & {p for p in [b.raw_dir, b.truth, b.frames, b.results_dir]}
