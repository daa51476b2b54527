"""Any glacier from one config: `glacier add|list|show`, `--glacier NAME` and `--glacier path.toml`
in the stages, and bad configs as one-line errors (exit 2, nothing written)."""

from __future__ import annotations

import datetime
import json
import tomllib

import numpy as np
import pytest

from glacier_movement import config, io
from glacier_movement.cli import main
from glacier_movement.errors import GlacierError

#: A box around the Rhône glacier (Switzerland): UTM zone 32N, like Aletsch next to it.
RHONE = ("8.35", "46.55", "8.42", "46.65")


# ------------------------------------------------------------------------------- end to end
# a whole job in the test body: over 300 s on a loaded 2-core machine
@pytest.mark.timeout(1800)
def test_custom_glacier_end_to_end(cli, tmp_path):
    """A new user's glacier through every stage, offline: add → synthesize → preprocess →
    sequences → train → test, all by name (4-month windows, 3 years: 9 frames)."""
    root = tmp_path / "data"
    add = cli.run(
        "glacier", "add", "rhone", "--bbox", *RHONE, "--window-months", "4",
        "--years", "2014-2016", root=root,
    )  # fmt: skip
    assert add.rc == 0, add
    cfg = tomllib.loads((root / "glaciers" / "rhone.toml").read_text())
    assert cfg["epsg"] == 32632 and cfg["window_months"] == 4 and cfg["years"] == [2014, 2016]
    assert cfg["roi"][:1] == [0] and cfg["roi"][2] == 0  # the whole grid of the bbox

    steps = [
        ("synthesize", "--glacier", "rhone", "--size", "48", "48", "--no-quicklook"),
        ("preprocess", "--glacier", "rhone", "--no-figures"),
        ("sequences", "--glacier", "rhone", "--preset", "tiny"),
        ("train", "--glacier", "rhone", "--model", "salstm", "--preset", "tiny",
         "--max-steps", "2", "--no-progress"),
        ("test", "--run", "salstm-rhone-tiny", "--bootstrap", "0"),
    ]  # fmt: skip
    for args in steps:
        res = cli.run(*args, root=root)
        assert res.rc == 0, res

    raw = io.read_scenes(root / "rhone" / "raw" / "2014.npz")
    assert raw.glacier == "rhone" and raw.epsg == 32632 and raw.data.shape[2:] == (48, 48)
    fr = io.read_frames(root / "rhone" / "frames.npz")
    assert fr.frames.shape == (9, 48, 48) and fr.window_months == 4
    assert str(fr.window_start[0]) == "2014-01-01" and str(fr.window_start[-1]) == "2016-09-01"
    summary = json.loads((root / "models" / "salstm-rhone-tiny" / "summary.json").read_text())
    assert summary["config"]["glaciers"] == ["rhone"], summary
    assert (root / "rhone" / "results" / "salstm-rhone-tiny_results.csv").is_file()


def test_glacier_path_toml(cli, tmp_path):
    """`--glacier path/to/x.toml` without `glacier add`: defaults filled in, data under its name,
    the config's years used by `synthesize`."""
    path = tmp_path / "configs" / "andes.toml"
    path.parent.mkdir()
    path.write_text('bbox = [-70.6, -33.5, -70.4, -33.3]\nyears = "2015"\nroi = [4, 44, 6, 46]\n')
    show = cli.run("glacier", "show", path, root=tmp_path / "data")
    assert show.rc == 0, show
    shown = tomllib.loads(show.stdout)
    assert shown["name"] == "andes" and shown["epsg"] == 32719  # southern UTM zone 19
    assert shown["window_months"] == 3 and shown["years"] == [2015, 2015]

    res = cli.run("synthesize", "--glacier", path, "--no-quicklook", root=tmp_path / "data")
    assert res.rc == 0, res
    files = sorted(p.name for p in (tmp_path / "data" / "andes" / "raw").iterdir())
    assert files == ["2015.npz"]
    # the ROI's own size, placed at its offset in the scene grid
    assert io.read_scenes(tmp_path / "data" / "andes" / "raw" / "2015.npz").data.shape[2:] == (
        44,
        46,
    )
    # a name alone does not find a config outside the data root, and says how to add it
    cli.expect_error("preprocess", ["--glacier", "andes"], ["unknown glacier 'andes'", "add"],
                     root=tmp_path / "data")  # fmt: skip


def test_glacier_list_and_add_rules(tmp_path, capsys):
    root = str(tmp_path / "data")
    assert main(["glacier", "add", "Rhone", "--bbox", *RHONE, "--data-root", root]) == 0
    capsys.readouterr()
    assert main(["glacier", "list", "--data-root", root]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [ln.split()[0] for ln in out] == ["name", "aletsch", "parvati", "Rhone"]
    rhone = out[-1]
    assert "EPSG:32632" in rhone and "3 mo" in rhone and "rhone.toml" in rhone.lower()
    last = datetime.date.today().year - 1
    assert f"2013-{min(last, config.LANDSAT8_LAST_YEAR)}" in rhone
    assert "50:650,100:700" in out[1] and "19" in out[1]  # Aletsch's ROI, training frames

    # names are found case-insensitively; a second add of the name needs --force
    assert config.get_glacier("rhone", root).name == "Rhone"
    assert main(["glacier", "add", "rhone", "--bbox", *RHONE, "--data-root", root]) == 2
    err = capsys.readouterr().err
    assert "glacier 'rhone' exists" in err and "--force" in err, err
    assert main(["glacier", "add", "rhone", "--bbox", *RHONE, "--data-root", root,
                 "--window-months", "6", "--force"]) == 0  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "data" / "glaciers").iterdir()) == ["rhone.toml"]
    assert config.get_glacier("RHONE", root).window_months == 6

    # a broken file is listed with its problem, the others still are
    (tmp_path / "data" / "glaciers" / "broken.toml").write_text("bbox = [1, 2, 3]\n")
    capsys.readouterr()
    assert main(["glacier", "list", "--data-root", root]) == 0
    out = capsys.readouterr().out
    assert "rhone" in out and "broken.toml: a bbox is 4 numbers W S E N, got 3" in out


# ------------------------------------------------------------------------------ bad configs
GOOD = "bbox = [8.35, 46.55, 8.42, 46.65]\n"


@pytest.mark.parametrize(
    "text, words",
    [
        ("bbox = [8.35, 46.55, 188.42, 46.65]\n", ["out of range", "[-180, 180]"]),
        (GOOD + "windw_months = 3\n", ["unknown key 'windw_months'", "window_months"]),
        (GOOD + "roi = [0, 5000, 0, 10]\n", ["lies outside the", "grid of the bbox"]),
        (GOOD + "roi = [10, 5, 0, 10]\n", ["empty or negative"]),
        (GOOD + "window_months = 5\n", ["5 months does not divide the year", "1, 2, 3, 4, 6"]),
        (GOOD + "years = [2010, 2014]\n", ["outside Landsat 8's life"]),
        (GOOD + "epsg = 4326\n", ["not a projected CRS"]),
        (GOOD + "train_frames = 1\n", ["train_frames = 1 is too small"]),
        (GOOD + "[scene_selection]\n2030 = [1]\n", ["scene_selection year '2030'"]),
        (GOOD + 'name = "parvati"\n', ["'parvati' is a shipped glacier"]),
        ("bbox = 8.35 46.55\n", ["is not valid TOML", "at line 1"]),
        ("name = 3\n" + GOOD, ["bad glacier name 3"]),
        ("", ["no bbox"]),
    ],
    ids=[
        "bbox-range",
        "unknown-key",
        "roi-outside",
        "roi-empty",
        "window-months",
        "years",
        "epsg",
        "train-frames",
        "selection-year",
        "shadows-parvati",
        "malformed",
        "bad-name",
        "no-bbox",
    ],  # fmt: skip
)
def test_bad_config_file(tmp_path, capsys, text, words):
    path = tmp_path / "mine.toml"
    path.write_text(text)
    root = tmp_path / "data"
    rc = main(
        ["synthesize", "--glacier", str(path), "--size", "32", "32", "--data-root", str(root)]
    )
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"glacier-movement synthesize: error: glacier config {path}"), err
    for w in words:
        assert w in err, err
    assert not root.exists()


@pytest.mark.parametrize(
    "args, words",
    [
        (["x", "--bbox", "200", "30", "201", "31"], ["out of range"]),
        (["x", "--bbox", *RHONE, "--roi", "0,5000,0,10"], ["lies outside the"]),
        (["x", "--bbox", *RHONE, "--window-months", "5"], ["does not divide the year"]),
        (["parvati", "--bbox", *RHONE], ["'parvati' is a shipped glacier"]),
        (["models", "--bbox", *RHONE], ["taken by the data root's models/"]),
        (["../up", "--bbox", *RHONE], ["bad glacier name '../up'"]),
        (["x", "--bbox", *RHONE, "--years", "2016-2014"], ["bad year range"]),
    ],
    ids=["bbox", "roi", "window", "shipped", "reserved", "unsafe", "years"],
)
def test_bad_glacier_add(tmp_path, capsys, args, words):
    root = tmp_path / "data"
    assert main(["glacier", "add", *args, "--data-root", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("glacier-movement glacier: error: "), err
    for w in words:
        assert w in err, err
    assert not root.exists()


def test_bad_glacier_add_process(cli_process, tmp_path):
    """The same through a real process: exit 2, one line, no traceback, nothing written."""
    cli_process.expect_error(
        "glacier", ["add", "x", "--bbox", *RHONE, "--roi", "0,5000,0,10"],
        ["ROI rows 0:5000, cols 0:10 lies outside the", "leave it out for the whole grid"],
        root=tmp_path / "data",
    )  # fmt: skip
    assert not (tmp_path / "data").exists()


def test_missing_config_file(tmp_path, capsys):
    missing = tmp_path / "nowhere.toml"
    assert main(["preprocess", "--glacier", str(missing), "--data-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"glacier config {missing} does not exist" in err, err


# ----------------------------------------------------------------------------- config module
@pytest.mark.parametrize("name", ["parvati", "aletsch"])
def test_shipped_configs_pass_every_check(name):
    """The package's TOML files are configs like any other: checked in full, they are what
    config.GLACIERS holds, and the TOML writer reproduces them."""
    data = tomllib.loads(config.shipped_config_text(name))
    cfg = config.glacier_from_dict(data, shipped=True)
    assert cfg == config.GLACIERS[name] == config.get_glacier(name.upper())
    again = tomllib.loads(config.glacier_to_toml(cfg))
    assert config.glacier_from_dict(again, shipped=True) == cfg
    rows, cols = config.grid_shape(cfg.bbox, cfg.epsg)
    assert cfg.roi[1] <= rows and cfg.roi[3] <= cols


@pytest.mark.parametrize(
    "bbox, epsg",
    [
        ((77.4, 31.9, 77.8, 32.2), 32643),  # Parvati: UTM 43N
        ((-70.6, -33.5, -70.4, -33.3), 32719),  # central Andes: UTM 19S
        ((-40.0, 84.2, -38.0, 84.5), 3413),  # north of UTM's 84° N: polar stereographic north
        ((160.0, -81.0, 162.0, -80.5), 3031),  # south of UTM's 80° S: Antarctic stereographic
        ((-179.9, 64.0, -179.5, 64.2), 32601),  # first zone at the antimeridian
    ],
)
def test_default_epsg(bbox, epsg):
    assert config.default_epsg(bbox) == epsg
    rows, cols = config.grid_shape(bbox, epsg)
    assert 5 < rows < 5000 and 5 < cols < 5000


def test_grid_shape_is_the_bbox_extent_in_30m_pixels():
    """Parvati's box is ≈ 25.8 km (N–S) × 31.4 km (E–W): about 860 × 1050 px, plus the snap."""
    rows, cols = config.grid_shape(config.GLACIERS["parvati"].bbox, 32643)
    assert abs(rows - 25_800 / 30) < 40 and abs(cols - 31_400 / 30) < 40


def test_last_full_year():
    assert config.last_full_year(datetime.date(2026, 11, 30)) == 2025
    assert config.last_full_year(datetime.date(2013, 6, 1)) == 2013  # not before Landsat 8


def test_get_glacier_refuses_a_renamed_file(tmp_path):
    d = tmp_path / "glaciers"
    d.mkdir()
    (d / "one.toml").write_text('name = "two"\n' + GOOD)
    with pytest.raises(GlacierError, match="is named 'two': rename the file to two.toml"):
        config.get_glacier("one", tmp_path)


def test_synthetic_glacier_for_any_config(tmp_path):
    """The generator copes with any config: polar stereographic grids, ROI offsets, odd sizes;
    preprocessing then makes frames of the configured window length."""
    from glacier_movement.preprocessing import run_preprocessing
    from glacier_movement.synthetic import synthesize

    polar = config.glacier_from_dict(
        {"name": "polar", "bbox": [-40, 85, -38, 85.3], "roi": [100, 150, 7, 64],
         "window_months": 6, "years": "2014-2017"}
    )  # fmt: skip
    assert polar.epsg == 3413
    synthesize(polar, tmp_path, years=polar.years, progress=False)
    fr = run_preprocessing(polar, tmp_path, figures=False).frames
    assert fr.frames.shape == (8, 50, 57) and fr.roi == (100, 150, 7, 64)
    assert 0.05 < float((fr.frames > 0).mean()) < 0.95  # snow and ice, and bare ground

    andes = config.glacier_from_dict(
        {"name": "andes", "bbox": [-70.6, -33.5, -70.4, -33.3], "window_months": 1,
         "years": "2014"}
    )  # fmt: skip
    synthesize(andes, tmp_path, size=(37, 53), years=andes.years, progress=False)
    scenes = io.read_scenes(tmp_path / "andes" / "raw" / "2014.npz")
    assert scenes.epsg == 32719 and scenes.data.shape[2:] == (37, 53)
    fr = run_preprocessing(andes, tmp_path, figures=False).frames
    assert fr.frames.shape == (12, 37, 53) and np.isfinite(fr.frames).all()
