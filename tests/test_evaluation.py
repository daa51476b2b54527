"""Test scores, bootstrap, full-scene prediction, GeoTIFF/PNG output and loss curves."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import rasterio
import torch
from PIL import Image
from torch import nn

from glacier_movement import evaluation as ev
from glacier_movement.baselines import REFERENCES
from glacier_movement.evaluation import metrics
from glacier_movement.sequences import SequenceDataset
from tests.helpers import Echo, LastFrame, frames


class Shift(nn.Module):
    """A fixed, non-trivial prediction: last frame + 0.1 with dropout (to see eval mode)."""

    def __init__(self):
        super().__init__()
        self.drop = nn.Dropout(0.9)

    def forward(self, x, y=None):
        return self.drop(x[:, -1:].repeat(1, 4, 1, 1) + 0.1)


# ---------------------------------------------------------------------------------- evaluate
def test_evaluate_scores_model_and_persistence_directly():
    ds = SequenceDataset(frames(), patch=10, stride=5)
    idx = np.arange(len(ds))[-37:]  # not a multiple of the batch size
    model = Shift()
    model.train()  # evaluate must switch to eval mode (dropout off)
    df = ev.evaluate(model, ds, idx, batch_size=8, progress=False)
    assert list(df["predictor"].unique()) == ["model", ev.PERSISTENCE]
    x, y = (t.numpy() for t in ds.batch(idx))
    last = np.repeat(x[:, -1:], 4, axis=1)
    for name, pred in (("model", last + 0.1), (ev.PERSISTENCE, last)):
        sub = df[df["predictor"] == name]
        np.testing.assert_array_equal(sub["index"], idx)
        np.testing.assert_allclose(sub["MSE"], ((pred - y) ** 2).mean(axis=(1, 2, 3)), rtol=1e-6)
        np.testing.assert_allclose(sub["MAE"], np.abs(pred - y).mean(axis=(1, 2, 3)), rtol=1e-6)
        assert sub["MSE"].mean() == pytest.approx(((pred - y) ** 2).mean(), rel=1e-6)
        np.testing.assert_allclose(
            sub["SSIM"], metrics.ssim_frames(pred, y).mean(axis=1), atol=1e-6
        )
    # a persistence model scores exactly what the built-in baseline scores
    df2 = ev.evaluate(LastFrame(), ds, idx, batch_size=100, progress=False)
    a, b = (
        df2[df2["predictor"] == k][list(metrics.METRICS)].to_numpy()
        for k in ("model", ev.PERSISTENCE)
    )
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_evaluate_batches_without_gradients():
    ds = SequenceDataset(frames(), patch=10, stride=10)
    m = Echo()
    ev.evaluate(m, ds, np.arange(25), batch_size=10, progress=False)
    assert m.batch_sizes == [10, 10, 5]
    assert not any(m.grad_enabled)


def _per_sequence(n_starts=12, per_start=10, shift=0.02, seed=5):
    """Per-sequence rows of a model, persistence and climatology: the model is ``shift`` lower
    than persistence everywhere; starts share a common effect; start 0 has interpolated targets."""
    rng = np.random.default_rng(seed)
    start = np.repeat(np.arange(n_starts), per_start)
    common = rng.random(n_starts)[start] * 0.1  # what sequences of one start share
    base = common + rng.random(start.size) * 0.01
    rows = []
    for p, v in (("model", base - shift), (ev.PERSISTENCE, base), ("climatology", base - shift)):
        rows.append(
            pd.DataFrame(
                {
                    "predictor": p,
                    "index": np.arange(start.size),
                    "start": start,
                    "observed": start != 0,
                    "MSE": v,
                    "MAE": np.sqrt(np.abs(v)),
                    "SSIM": rng.random(start.size),
                    "PSNR": 20 + rng.random(start.size),
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def test_summarize_scores_observed_targets_with_clustered_paired_verdicts():
    per = _per_sequence()
    res = ev.summarize(per, "salstm", "parvati", n_bootstrap=300)
    obs = res[res["targets"] == "observed"].set_index("model")
    every = res[res["targets"] == "all"].set_index("model")
    # interpolated target windows (start 0) are left out of the headline rows only
    assert obs.loc["salstm", "n"] == 110 and every.loc["salstm", "n"] == 120
    assert obs.loc["salstm", "n_clusters"] == 11 and every.loc["salstm", "n_clusters"] == 12
    want = per[(per.predictor == "model") & per["observed"]]["MSE"].mean()
    assert obs.loc["salstm", "MSE"] == pytest.approx(want)
    # the shared start effect cancels in the paired difference: exactly −0.02, "better"
    assert obs.loc["salstm", "dMSE_persistence"] == pytest.approx(-0.02)
    assert obs.loc["salstm", "dMSE_persistence_high"] < 0
    assert obs.loc["salstm", "vs_persistence"] == "better"
    assert obs.loc[ev.PERSISTENCE, "vs_climatology"] == "worse"
    assert obs.loc["salstm", "vs_climatology"] == "not distinguishable"  # identical errors
    # while the unpaired intervals of model and persistence overlap
    assert obs.loc["salstm", "MSE_high"] > obs.loc[ev.PERSISTENCE, "MSE_low"]
    md = ev.results_markdown(res[res["targets"] == "observed"])
    assert "**better**" in md and "11 independent clusters" in md


def test_verdicts_need_enough_clusters():
    per = _per_sequence(n_starts=4)
    res = ev.summarize(per, "salstm", "parvati", n_bootstrap=200)
    assert set(res.loc[res["model"] == "salstm", "vs_persistence"]) == {
        "too few clusters (3)",
        "too few clusters (4)",
    }


# ------------------------------------------------------------------------------ loss curves
def test_loss_curves_reads_every_run(tmp_path):
    models = tmp_path / "models"
    for run, scale in (("unet", 1.0), ("salstm", 0.5)):
        (models / run).mkdir(parents=True)
        pd.DataFrame(
            {
                "epoch": [0, 1, 2],
                "train_loss": np.array([0.1, 0.05, 0.02]) * scale,
                "val_loss": np.array([0.12, 0.08, 0.07]) * scale,
            }
        ).to_csv(models / run / "epochs.csv", index=False)
    (models / "broken").mkdir()  # a run without epochs.csv yet is skipped
    df = ev.load_epoch_losses(models)
    assert df["run"].unique().tolist() == ["salstm", "unet"]
    assert df[df.run == "salstm"]["val_loss"].tolist() == pytest.approx([0.06, 0.04, 0.035])
    out = ev.loss_curves(tmp_path)
    assert out == models / "loss_curves.png" and out.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ev.DataError, match="does not exist"):
        ev.load_epoch_losses(models, ["nope"])
    with pytest.raises(ev.DataError, match="no trained runs"):
        ev.load_epoch_losses(tmp_path / "empty")


# ------------------------------------------------------------------------------ command line
# A small glacier whose motion is known: a textured snow/ice field that drifts to the right by
# VX px/day, frames of 3-month windows, on a raw grid of which the frames are an ROI crop.
VX, VY = 0.011, 0.0055  # px/day: about 1 and 0.5 px per 91-day window
ROI = (5, 65, 7, 87)  # rows 5–65, cols 7–87 of a 70×95 raw grid
EPSG, TRANSFORM = 32643, (30.0, 0.0, 600_000.0, 0.0, -30.0, 3_550_000.0)


def write_glacier(root, n_frames=12):
    from scipy import ndimage

    from glacier_movement.io import Frames, save_npz, write_frames

    rng = np.random.default_rng(7)
    raw_h, raw_w = 70, 95
    field = ndimage.gaussian_filter(rng.random((raw_h, raw_w + 40)), 2.5)
    field = (field - field.min()) / (field.max() - field.min())
    starts = np.array(
        [f"{2019 + m // 12}-{m % 12 + 1:02d}-01" for m in range(0, 3 * n_frames, 3)],
        dtype="datetime64[D]",
    )
    days = (starts - starts[0]).astype(float)
    frames = []
    for d in days:  # the field seen through a window that moves with the ice
        moved = ndimage.shift(field, (VY * d, VX * d), order=1, mode="nearest")[
            :raw_h, 20 : 20 + raw_w
        ]
        frames.append(moved[ROI[0] : ROI[1], ROI[2] : ROI[3]])
    frames = np.stack(frames).astype(np.float32)
    frames = np.where(frames >= 0.3, frames, 0).astype(np.float32)
    gdir = root / "parvati"
    gdir.mkdir(parents=True)
    write_frames(
        gdir / "frames.npz",
        Frames(
            frames,
            starts,
            3,
            np.ones(n_frames, np.int64),
            np.zeros(n_frames, bool),
            "parvati",
            EPSG,
            TRANSFORM,
            ROI,
        ),
    )
    vel = np.zeros((2, raw_h, raw_w), np.float32)
    vel[0], vel[1] = VX, VY
    mask = np.zeros((raw_h, raw_w), bool)
    mask[15:55, 20:75] = True  # the "glacier": away from the borders the flow cannot see past
    save_npz(
        gdir / "truth.npz",
        velocity=vel,
        glacier_mask=mask,
        scene_times=starts.astype("datetime64[ns]"),
    )
    return frames


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A data root with frames, truth and a tiny SA-LSTM run (3 optimisation steps)."""
    from glacier_movement.training import TrainSettings, train_model

    root = tmp_path_factory.mktemp("root")
    frames = write_glacier(root)
    s = TrainSettings(
        model="salstm", glacier=("parvati",), preset="tiny", max_steps=3, wandb="disabled",
        progress=False, device="cpu",
    )  # fmt: skip
    train_model(s, root)
    return root, frames


def cli(root, *argv):
    from glacier_movement.cli import main

    return main([*argv, "--data-root", str(root)])


def test_cli_test_writes_scores(trained, capsys):
    root, _ = trained
    run = "salstm-parvati-tiny"
    assert (
        cli(
            root,
            "test",
            "--run",
            run,
            "--model",
            "salstm",
            "--bootstrap",
            "50",
            "--split",
            "strict",
        )
        == 0
    )
    out = capsys.readouterr()
    assert "| salstm-parvati-tiny |" in out.out and "the same for both splits" in out.err
    res_dir = root / "parvati" / "results"
    res = pd.read_csv(res_dir / f"{run}_results.csv")
    assert set(res["model"]) == {run, *REFERENCES}  # synthetic: the oracle too
    assert set(res["targets"]) == {"observed", "all"} or set(res["targets"]) == {"all"}
    assert {
        "MSE",
        "MAE",
        "SSIM",
        "PSNR",
        "n",
        "n_clusters",
        "trained_split",
        "vs_climatology",
    } <= set(res.columns)
    per = pd.read_csv(res_dir / f"{run}_per_sequence.csv.gz")
    assert set(per["predictor"]) == {"model", *REFERENCES}
    # persistence on the test sequences, computed here directly
    ds = SequenceDataset(trained[1], patch=10, stride=10)
    from glacier_movement.sequences import split_indices

    x, y = (t.numpy() for t in ds.batch(split_indices(ds, "paper").test))
    pers = res[(res.model == "persistence") & (res.targets == "all")].iloc[0]
    assert pers["MSE"] == pytest.approx(((x[:, -1:] - y) ** 2).mean(), rel=1e-5)
    assert pers["n"] == len(x)
    iv = res.dropna(subset=["MSE_low"])  # clustered: an interval needs >= 2 forecast starts
    assert (iv["MSE_low"] <= iv["MSE_high"]).all()
    assert (res["n_clusters"] >= 2).eq(res["MSE_low"].notna()).all()
    assert (res_dir / f"{run}_results.md").read_text().startswith("# ")
    assert cli(root, "test", "--run", run, "--bootstrap", "0") == 0
    assert pd.read_csv(res_dir / f"{run}_results.csv")["MSE_low"].isna().all()


def test_baseline_rows_are_cached_on_disk_and_invalidated_by_their_fingerprint(
    trained, monkeypatch, capsys
):
    """The baselines' rows are computed once per data (a miss writes the cache), read back
    exactly by a fresh process (a hit: the model alone is evaluated, the per-sequence rows are
    the same), and computed again when the cache's fingerprint or file is wrong."""
    import gzip

    from glacier_movement import config
    from glacier_movement.io import save_npz
    from glacier_movement.models import Persistence

    root, _ = trained
    run = "salstm-parvati-tiny"
    paths = config.Paths(root, "parvati")
    cache = paths.baseline_cache(10, 10)
    per_file = paths.result_file(run, "per_sequence")
    calls: list[bool] = []
    evaluate = ev.evaluate

    def spy(model, *a, **kw):
        calls.append(isinstance(model, Persistence))  # True: the baselines' pass
        return evaluate(model, *a, **kw)

    monkeypatch.setattr(ev, "evaluate", spy)

    def test_run() -> str:
        ev._BASELINE_CACHE.clear()  # as in a new worker process
        calls.clear()
        assert cli(root, "test", "--run", run, "--bootstrap", "20") == 0
        return gzip.decompress(per_file.read_bytes()).decode()

    cache.unlink(missing_ok=True)
    computed = test_run()
    assert calls == [False, True] and cache.is_file()  # miss: computed and written
    assert test_run() == computed and calls == [False]  # hit: the same rows, read back
    # a stale fingerprint (other frames, truth or code) or a broken file: computed again
    data = dict(np.load(cache))
    save_npz(cache, **{**data, "fingerprint": np.array("stale")})
    assert test_run() == computed and calls == [False, True]
    assert str(np.load(cache)["fingerprint"]) != "stale"  # rewritten
    cache.write_bytes(b"not an npz")
    assert test_run() == computed and calls == [False, True]
    capsys.readouterr()


def test_baseline_fingerprint_follows_the_data_and_the_patches(trained, tmp_path):
    import shutil

    from glacier_movement import config

    root, _ = trained
    copy = tmp_path / "parvati"
    shutil.copytree(root / "parvati", copy, ignore=shutil.ignore_patterns("results", "figures"))
    a, b = config.Paths(root, "parvati"), config.Paths(tmp_path, "parvati")
    glacier = config.get_glacier("parvati", root)
    fp = ev.baseline_fingerprint(a, glacier, 10, 10)
    assert ev.baseline_fingerprint(b, glacier, 10, 10) == fp  # the same bytes: the same rows
    assert ev.baseline_fingerprint(a, glacier, 10, 5) != fp
    with open(b.truth, "ab") as f:
        f.write(b"\0")
    assert ev.baseline_fingerprint(b, glacier, 10, 10) != fp


def test_cli_infer_and_flow(trained, capsys):
    root, frames = trained
    run = "salstm-parvati-tiny"
    assert cli(root, "infer", "--run", run, "--batch-size", "7") == 0
    out_dir = root / "parvati" / "results" / run
    targets = np.load(out_dir / "targets.npy")
    np.testing.assert_array_equal(targets, frames[-4:])
    np.testing.assert_array_equal(np.load(out_dir / "inputs.npy"), frames[-8:-4])
    pred = np.load(out_dir / "predictions.npy")
    assert pred.shape == (4, 60, 80) and np.isfinite(pred).all()
    # a synthetic glacier (truth.npz) gets the oracle beside the baselines; without truth, none
    oracle = np.load(out_dir / "baseline_oracle.npy")
    assert oracle.shape == (4, 60, 80) and np.isfinite(oracle).all()
    assert not np.array_equal(oracle, np.load(out_dir / "baseline_climatology.npy"))
    truth = root / "parvati" / "truth.npz"
    truth.rename(truth.with_suffix(".away"))
    try:
        assert cli(root, "infer", "--run", run, "--batch-size", "7") == 0
        assert not (out_dir / "baseline_oracle.npy").exists()
    finally:
        truth.with_suffix(".away").rename(truth)
    assert cli(root, "infer", "--run", run, "--batch-size", "7") == 0
    with rasterio.open(out_dir / "predictions.tif") as src:
        assert (
            src.crs.to_epsg() == EPSG and tuple(src.transform)[:6] == TRANSFORM and src.count == 4
        )
        np.testing.assert_array_equal(src.read(), pred)
    # the grayscale image is the target frame min-max scaled to 0…255 (floored)
    t3 = frames[-1].astype(np.float64)
    expected = np.floor((t3 - t3.min()) / (t3.max() - t3.min()) * 255.999).astype(np.uint8)
    with Image.open(out_dir / "images" / "targets_3.png") as img:
        assert img.mode == "L"
        np.testing.assert_array_equal(np.asarray(img), expected)
    with Image.open(root / "parvati" / "figures" / f"{run}_scene.png") as img:
        img.load()  # a whole PNG, not a truncated one
        assert img.format == "PNG" and img.width > img.height  # the frames side by side
    capsys.readouterr()

    assert cli(root, "flow", "--run", run) == 0
    assert "using the saved scene predictions" in capsys.readouterr().err
    epe = pd.read_csv(out_dir / "flow_epe.csv").set_index(["source", "pair"])
    true_px = epe.loc[("persistence", "mean"), "true_px"]
    assert true_px == pytest.approx(np.hypot(VX, VY) * 91, rel=0.02)
    # the flow of the targets finds the known motion; persistence (no motion) misses all of it
    assert epe.loc[("targets", "mean"), "epe_px"] < 0.3 * true_px
    assert epe.loc[("persistence", "mean"), "epe_px"] == pytest.approx(true_px)
    summary = json.loads((out_dir / "flow_epe.json").read_text())
    assert set(summary["epe_px"]) == {"targets", "predictions", "persistence"}
    with Image.open(root / "parvati" / "figures" / f"{run}_flow.png") as img:
        img.load()
        assert img.format == "PNG"
    with np.load(out_dir / "flow.npz") as f:
        assert f["flow_prediction"].shape == (3, 2, 60, 80)


def test_cli_flow_predicts_again_for_another_checkpoint(trained, capsys):
    import os

    root, _ = trained
    run = "salstm-parvati-tiny"
    assert cli(root, "infer", "--run", run) == 0
    ckpt = root / "models" / run / "last.pt"
    st = ckpt.stat()
    os.utime(ckpt, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # as if trained further
    capsys.readouterr()
    assert cli(root, "flow", "--run", run) == 0
    err = capsys.readouterr().err
    assert "using the saved scene" not in err and "predicting salstm-parvati-tiny" in err
    assert cli(root, "flow", "--run", run) == 0
    assert "using the saved scene predictions" in capsys.readouterr().err


def test_cli_loss_curves(trained, capsys):
    root, _ = trained
    assert cli(root, "loss-curves") == 0
    with Image.open(root / "models" / "loss_curves.png") as img:
        img.load()
        assert img.format == "PNG" and min(img.size) > 100


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["test", "--run", "nope"], "does not exist (trained runs: salstm-parvati-tiny)"),
        (
            ["infer", "--run", "salstm-parvati-tiny", "--model", "unet"],
            "holds a 'salstm' model, not 'unet'",
        ),
        (["test", "--checkpoint", "CKPT_DIR/missing.pt"], "does not exist"),
        (["flow", "--checkpoint", "CKPT_DIR/foreign.pt"], "not a glacier-movement checkpoint"),
        (["infer", "--run", "salstm-parvati-tiny", "--last", "20"], "--last 20 does not fit"),
        (["test", "--checkpoint", "CKPT_DIR/foreign.pt", "--best"], "--best goes with --run"),
        (["test", "--run", "salstm-parvati-tiny", "--bootstrap", "-1"], "--bootstrap must be"),
        (["infer"], "no model given: pass --run NAME"),
    ],
)
def test_cli_bad_input_is_one_line(trained, tmp_path, capsys, argv, message):
    root, _ = trained
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    argv = [a.replace("CKPT_DIR", str(tmp_path)) for a in argv]
    assert cli(root, *argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("script", "extra", "output"),
    [
        (
            "experiment1/testing/testsetPerformance.py",
            ["--bootstrap", "20"],
            "parvati/results/salstm-parvati-tiny_results.csv",
        ),
        (
            "experiment1/plots/inferencePlot.py",
            [],
            "parvati/results/salstm-parvati-tiny/images/predictions_0.pdf",
        ),
        ("experiment1/plots/opticalFlow.py", [], "parvati/figures/salstm-parvati-tiny_flow.png"),
        ("experiment1/plots/LossCurves.py", [], "models/loss_curves.pdf"),
    ],
)
def test_experiment_scripts(trained, monkeypatch, capsys, script, extra, output):
    import runpy
    from pathlib import Path

    root, _ = trained
    path = Path(__file__).resolve().parents[1] / script
    monkeypatch.setattr(
        "sys.argv", [str(path), "--run", "salstm-parvati-tiny", "--data-root", str(root), *extra]
    )
    if "LossCurves" in script:
        monkeypatch.setattr("sys.argv", [str(path), "--data-root", str(root)])
    (root / output).unlink(missing_ok=True)
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(path), run_name="__main__")
    assert done.value.code == 0
    assert (root / output).is_file()
