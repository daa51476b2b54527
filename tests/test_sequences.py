"""Patches, stitching, the sequence dataset, splits, loaders and the `sequences` command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from glacier_movement import io
from glacier_movement.cli import main
from glacier_movement.errors import GlacierError
from glacier_movement.sequences import (
    ConcatSequences,
    SequenceDataset,
    bootstrap_resample,
    export_files,
    extract_patches,
    make_loader,
    patch_grid,
    split_indices,
    stitch_patches,
)
from tests.helpers import frames_record

RNG = np.random.default_rng(0)


def _frames(t: int = 12, h: int = 37, w: int = 41, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((t, h, w), dtype=np.float32)


def _big(t: int, h: int, w: int) -> np.ndarray:
    """A (t, h, w) float32 array that takes no memory (all strides 0)."""
    return np.broadcast_to(np.zeros((1, 1, 1), np.float32), (t, h, w))


# ----------------------------------------------------------------------------------- patches
@pytest.mark.parametrize(
    ("h", "w", "p", "s", "grid"),
    [
        (800, 800, 50, 10, (76, 76)),
        (600, 600, 50, 10, (56, 56)),
        (37, 41, 10, 4, (7, 8)),
        (5, 5, 5, 1, (1, 1)),
    ],
)
def test_patch_grid(h, w, p, s, grid):
    assert patch_grid(h, w, p, s) == grid


def test_extract_is_a_view_with_the_right_patches():
    f = _frames()
    p = extract_patches(f, 10, 4)
    assert p.shape == (12, 7, 8, 10, 10)
    assert np.shares_memory(p, f)
    for t, r, c in RNG.integers(0, [12, 7, 8], size=(20, 3)):
        np.testing.assert_array_equal(p[t, r, c], f[t, r * 4 : r * 4 + 10, c * 4 : c * 4 + 10])
    pt = extract_patches(torch.from_numpy(f), 10, 4)
    assert pt.data_ptr() == torch.from_numpy(f).data_ptr()
    np.testing.assert_array_equal(pt.numpy(), p)


@pytest.mark.parametrize(("shape", "p"), [((40, 60), 10), ((3, 2, 50, 50), 25), ((7, 7), 7)])
def test_stitch_inverts_extract_when_stride_is_patch(shape, p):
    x = RNG.random(shape).astype(np.float32)
    y = stitch_patches(extract_patches(x, p, p), shape[-2:], p)
    assert y.dtype == np.float32 and y.shape == x.shape
    np.testing.assert_array_equal(y, x)  # exact: copied, not averaged


def _stitch_reference(patches: np.ndarray, shape, stride) -> np.ndarray:
    n_r, n_c, p, _ = patches.shape
    total, count = np.zeros(shape), np.zeros(shape)
    for r in range(n_r):
        for c in range(n_c):
            total[r * stride : r * stride + p, c * stride : c * stride + p] += patches[r, c]
            count[r * stride : r * stride + p, c * stride : c * stride + p] += 1
    return np.divide(total, count, out=np.zeros(shape), where=count > 0)


@pytest.mark.parametrize(
    ("shape", "p", "s"), [((30, 30), 10, 5), ((37, 41), 10, 4), ((23, 19), 6, 3)]
)
def test_stitch_is_the_mean_of_overlaps_and_zero_where_uncovered(shape, p, s):
    # independent patches (not cut from one image), so the mean really mixes different values
    n_r, n_c = patch_grid(*shape, p, s)
    patches = RNG.random((n_r, n_c, p, p))
    got = stitch_patches(patches, shape, s)
    np.testing.assert_allclose(got, _stitch_reference(patches, shape, s), rtol=1e-12)
    # (37 - 10) % 4 = 3 rows/cols uncovered at the bottom/right
    covered_h, covered_w = (n_r - 1) * s + p, (n_c - 1) * s + p
    assert not got[covered_h:].any() and not got[:, covered_w:].any()
    # cutting an image and stitching it back returns it (up to rounding) where covered
    img = RNG.random(shape)
    back = stitch_patches(extract_patches(img, p, s), shape, s)
    np.testing.assert_allclose(
        back[:covered_h, :covered_w], img[:covered_h, :covered_w], atol=1e-12
    )


def test_stitch_torch_in_torch_out_and_integers():
    x = torch.arange(2 * 20 * 20, dtype=torch.float32).reshape(2, 20, 20)
    y = stitch_patches(extract_patches(x, 5, 5), (20, 20), 5)
    assert isinstance(y, torch.Tensor) and torch.equal(y, x)
    ints = np.arange(100).reshape(10, 10)
    out = stitch_patches(extract_patches(ints, 4, 2), (10, 10), 2)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, ints.astype(float))


def test_stitch_rejects_a_grid_that_does_not_fit():
    with pytest.raises(GlacierError, match="do not tile"):
        stitch_patches(np.zeros((3, 3, 5, 5)), (20, 20), 5)


@pytest.mark.parametrize(
    ("p", "s", "match"),
    [(60, 10, "larger than the frames"), (10, 0, "stride"), (0, 5, "patch size")],
)
def test_bad_patch_settings_are_clear_errors(p, s, match):
    with pytest.raises(GlacierError, match=match):
        extract_patches(np.zeros((50, 50)), p, s)
    with pytest.raises(GlacierError, match=match):
        SequenceDataset(np.zeros((8, 50, 50), np.float32), patch=p, stride=s)


# ----------------------------------------------------------------------------------- dataset
def test_paper_sequence_counts():
    parvati = SequenceDataset(_big(36, 800, 800), patch=50, stride=10)
    assert (parvati.n_starts, parvati.n_positions, len(parvati)) == (29, 5776, 167_504)
    aletsch = SequenceDataset(_big(27, 600, 600), patch=50, stride=10, max_frame=19)
    assert (aletsch.n_starts, aletsch.n_positions, len(aletsch)) == (12, 3136, 37_632)
    np.testing.assert_array_equal(aletsch.starts, np.arange(12))


@pytest.mark.parametrize(
    ("t", "h", "w", "p", "s", "n"), [(8, 20, 20, 10, 10, 2), (13, 37, 41, 10, 4, 3)]
)
def test_count_formula(t, h, w, p, s, n):
    ds = SequenceDataset(_frames(t, h, w), patch=p, stride=s, n_in=n, n_out=n)
    assert len(ds) == (t - 2 * n + 1) * ((h - p) // s + 1) * ((w - p) // s + 1)


def test_items_equal_direct_slices_and_are_views():
    f = _frames()
    ds = SequenceDataset(f, patch=10, stride=4, n_in=3, n_out=2)
    n_r, n_c = ds.grid
    for i in RNG.integers(0, len(ds), 30):
        s, r, c = int(i) // (n_r * n_c), (int(i) // n_c) % n_r, int(i) % n_c
        assert ds.position(i) == (s, r, c)
        x, y = ds[int(i)]
        assert x.dtype == torch.float32 and x.shape == (3, 10, 10) and y.shape == (2, 10, 10)
        np.testing.assert_array_equal(
            x.numpy(), f[s : s + 3, r * 4 : r * 4 + 10, c * 4 : c * 4 + 10]
        )
        np.testing.assert_array_equal(
            y.numpy(), f[s + 3 : s + 5, r * 4 : r * 4 + 10, c * 4 : c * 4 + 10]
        )
        assert np.shares_memory(x.numpy(), f)
    assert ds.index(*ds.position(np.arange(len(ds)))).tolist() == list(range(len(ds)))
    x, _ = ds[-1]
    np.testing.assert_array_equal(x.numpy(), ds[len(ds) - 1][0].numpy())
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_index_order_is_start_then_row_then_col():
    ds = SequenceDataset(_frames(), patch=10, stride=4)
    s, r, c = ds.position(np.arange(len(ds)))
    key = (s * 100 + r) * 100 + c
    assert (np.diff(key) > 0).all()
    assert s[0] == 0 and s[-1] == ds.n_starts - 1


def test_batch_equals_items():
    ds = SequenceDataset(_frames(), patch=10, stride=4)
    idx = RNG.integers(0, len(ds), 17)
    x, y = ds.batch(idx)
    assert x.shape == (17, 4, 10, 10) and y.shape == (17, 4, 10, 10) and x.is_contiguous()
    for k, i in enumerate(idx):
        xi, yi = ds[int(i)]
        assert torch.equal(x[k], xi) and torch.equal(y[k], yi)
    xl, _ = ds[list(idx)]  # lists and tensors index batches too
    xt, _ = ds[torch.as_tensor(idx)]
    assert torch.equal(xl, x) and torch.equal(xt, x)
    assert ds.batch([])[0].shape == (0, 4, 10, 10)
    with pytest.raises(IndexError):
        ds.batch([0, len(ds)])


def test_max_frame_never_touches_later_frames():
    f = _frames(t=20)
    f[15:] = np.nan  # anything after max_frame would show up
    ds = SequenceDataset(f, patch=10, stride=4, max_frame=15)
    assert ds.n_starts == 8
    x, y = ds.batch(np.arange(len(ds)))
    assert torch.isfinite(x).all() and torch.isfinite(y).all()
    # the last sequence ends exactly at frame 14
    np.testing.assert_array_equal(ds[len(ds) - 1][1].numpy()[-1], f[14, 24:34, 28:38])


def test_too_few_frames_and_bad_max_frame():
    with pytest.raises(GlacierError, match="only 7 frames.*needs 4 \\+ 4 = 8"):
        SequenceDataset(np.zeros((7, 60, 60), np.float32))
    with pytest.raises(GlacierError, match="max-frame 30"):
        SequenceDataset(np.zeros((20, 60, 60), np.float32), max_frame=30)
    with pytest.raises(GlacierError, match="\\(T, H, W\\)"):
        SequenceDataset(np.zeros((60, 60), np.float32))


def test_other_dtypes_and_tensors_are_accepted():
    f = _frames(t=8, h=20, w=20)
    a = SequenceDataset(f.astype(np.float64), patch=10, stride=5)
    b = SequenceDataset(torch.from_numpy(f), patch=10, stride=5)
    assert torch.equal(a[3][0], b[3][0]) and a[3][0].dtype == torch.float32


# ----------------------------------------------------------------------------------- splits
def test_paper_split_sizes_and_order():
    ds = SequenceDataset(_big(36, 800, 800))
    sp = split_indices(ds, "paper")
    n = len(ds)
    assert len(sp.test) == n - int(0.8 * n) == 33_501
    assert len(sp.train) + len(sp.val) == 134_003
    assert len(sp.train) == int(134_003 * 0.9) == 120_602
    # chronological, contiguous: train < val < test and together every index once
    np.testing.assert_array_equal(np.concatenate([sp.train, sp.val, sp.test]), np.arange(n))
    assert sp.val[0] == sp.train[-1] + 1 and sp.test[0] == sp.val[-1] + 1
    assert sp.test_target_frames == (27, 35) and sp.dropped == 0
    assert "train 120,602" in sp.describe()


def _frames_of(ds, idx):
    s = ds.position(idx)[0]
    return s[:, None] + np.arange(ds.length)


@pytest.mark.parametrize(
    "shape_kwargs",
    [
        ((36, 800, 800), {}),
        ((27, 600, 600), {"max_frame": 19}),
        ((10, 30, 30), {"patch": 10, "stride": 10, "n_in": 2, "n_out": 3}),
    ],
)
def test_strict_split_keeps_test_targets_out_of_training(shape_kwargs):
    shape, kwargs = shape_kwargs
    ds = SequenceDataset(_big(*shape), **kwargs)
    paper, strict = split_indices(ds, "paper"), split_indices(ds, "strict")
    np.testing.assert_array_equal(strict.test, paper.test)
    test_targets = np.unique(_frames_of(ds, strict.test)[:, ds.n_in :])
    for part in (strict.train, strict.val):
        assert len(part)
        assert not np.isin(_frames_of(ds, part), test_targets).any()
    # only the gap is dropped: every kept candidate + dropped = the paper's train+val
    assert len(strict.train) + len(strict.val) + strict.dropped == len(paper.train) + len(paper.val)
    # and the gap is the minimum: the next-later start would touch a test target
    last = strict.val[-1] if len(strict.val) else strict.train[-1]
    s_last = ds.position(last)[0]
    assert s_last + ds.length == test_targets.min()
    # paper mode does leak (that is why strict exists)
    assert np.isin(_frames_of(ds, paper.val), test_targets).any()
    assert len(strict.train) == int((len(strict.train) + len(strict.val)) * 0.9 + 1e-9)


def test_split_errors_and_tiny_data():
    ds = SequenceDataset(_frames(t=8, h=10, w=10), patch=10, stride=10)  # one sequence
    with pytest.raises(GlacierError, match="too few"):
        split_indices(ds)
    ds = SequenceDataset(_frames(t=9, h=20, w=20), patch=10, stride=10)  # 2 starts, 8 sequences
    with pytest.raises(GlacierError, match="strict split .* leaves no training"):
        split_indices(ds, "strict")
    with pytest.raises(GlacierError, match="unknown split mode"):
        split_indices(ds, "random")
    with pytest.raises(GlacierError, match="fractions"):
        split_indices(ds, test_fraction=1.0)


def test_concat_batches_and_splits_per_part():
    a = SequenceDataset(_frames(t=12, seed=1), patch=10, stride=4)
    b = SequenceDataset(_frames(t=14, h=30, w=30, seed=2), patch=10, stride=5)
    both = ConcatSequences([a, b])
    assert len(both) == len(a) + len(b)
    idx = RNG.permutation(len(both))[:40]
    x, y = both.batch(idx)
    for k, i in enumerate(idx):
        part, j = (0, i) if i < len(a) else (1, i - len(a))
        assert torch.equal(x[k], (a, b)[part][int(j)][0]) and torch.equal(
            y[k], (a, b)[part][int(j)][1]
        )
    sp = split_indices(both, "strict")
    sa, sb = split_indices(a, "strict"), split_indices(b, "strict")
    np.testing.assert_array_equal(sp.test, np.concatenate([sa.test, sb.test + len(a)]))
    assert sp.dropped == sa.dropped + sb.dropped and len(sp.parts) == 2
    with pytest.raises(GlacierError, match="share patch size"):
        ConcatSequences([a, SequenceDataset(_frames(), patch=8, stride=4)])


def test_bootstrap_resample_is_reproducible():
    test = np.arange(100, 150)
    draws = list(bootstrap_resample(test, 5, 7))
    assert len(draws) == 5 and all(d.shape == (50,) and np.isin(d, test).all() for d in draws)
    again = list(bootstrap_resample(test, 5, np.random.default_rng(7)))
    assert all(np.array_equal(u, v) for u, v in zip(draws, again, strict=True))
    assert any(len(np.unique(d)) < 50 for d in draws)  # with replacement


# ----------------------------------------------------------------------------------- loaders
def test_loader_shapes_coverage_and_reproducible_shuffle():
    ds = SequenceDataset(_frames(), patch=10, stride=4)
    idx = split_indices(ds).train
    loader = make_loader(ds, idx, batch_size=32, shuffle=True, seed=3)
    batches = [(x, y) for x, y in loader]
    assert len(batches) == len(loader) == -(-len(idx) // 32)
    assert batches[0][0].shape == (32, 4, 10, 10) and batches[0][1].shape == (32, 4, 10, 10)
    assert batches[-1][0].shape[0] == len(idx) - 32 * (len(batches) - 1)
    # the same seed gives the same order, a new epoch or seed another; all indices once per epoch
    orders = {}
    for seed in (3, 3, 4):
        s = make_loader(ds, idx, batch_size=32, seed=seed).sampler
        orders.setdefault(seed, []).append([np.concatenate(list(s)), np.concatenate(list(s))])
    (e0, e1), (f0, _) = orders[3][0], orders[3][1]
    np.testing.assert_array_equal(e0, f0)
    assert not np.array_equal(e0, e1) and not np.array_equal(e0, orders[4][0][0])
    np.testing.assert_array_equal(np.sort(e0), idx)
    s = make_loader(ds, idx, batch_size=32, seed=3).sampler
    s.set_epoch(1)
    np.testing.assert_array_equal(np.concatenate(list(s)), e1)  # resume at epoch 1
    # loader batches are the dataset's values
    x0, y0 = batches[0]
    first = make_loader(ds, idx, batch_size=32, seed=3).sampler
    xb, yb = ds.batch(next(iter(first)))
    assert torch.equal(x0, xb) and torch.equal(y0, yb)


def test_loader_batch_size_one_unshuffled_and_drop_last():
    ds = SequenceDataset(_frames(t=8, h=20, w=20), patch=10, stride=5)
    loader = make_loader(ds, np.arange(len(ds)), batch_size=1, shuffle=False)
    got = [x for x, _ in loader]
    assert len(got) == len(ds) and got[0].shape == (1, 4, 10, 10)
    assert all(torch.equal(g[0], ds[i][0]) for i, g in enumerate(got))
    assert len(make_loader(ds, np.arange(len(ds)), batch_size=4, drop_last=True)) == len(ds) // 4
    with pytest.raises(GlacierError, match="batch size"):
        make_loader(ds, np.arange(len(ds)), batch_size=0)


def test_distributed_ranks_share_the_epoch():
    ds = SequenceDataset(_frames(), patch=10, stride=4)
    idx = np.arange(0, len(ds), 3)
    parts = [
        np.concatenate(
            [
                b
                for b in make_loader(
                    ds, idx, 8, seed=5, distributed=True, num_replicas=2, rank=r
                ).sampler
            ]
        )
        for r in (0, 1)
    ]
    assert not np.intersect1d(parts[0], parts[1]).size or len(idx) % 2  # disjoint (padding aside)
    assert set(np.concatenate(parts)) == set(idx)
    with pytest.raises(GlacierError, match="process group"):
        make_loader(ds, idx, 8, distributed=True)


def test_plain_dataloader_collate_also_works():
    ds = SequenceDataset(_frames(t=8, h=20, w=20), patch=10, stride=5)
    x, y = next(iter(torch.utils.data.DataLoader(ds, batch_size=5, shuffle=False)))
    xb, yb = ds.batch(np.arange(5))
    assert torch.equal(x, xb) and torch.equal(y, yb)


# ----------------------------------------------------------------------------------- command


def _write_frames(root, glacier="parvati", t=14, h=40, w=40):
    f = _frames(t, h, w, seed=5)
    f[f < 0.3] = 0
    io.write_frames(root / glacier / "frames.npz", frames_record(f, glacier))
    return f


def test_command_writes_summary_and_figure(tmp_path, capsys):
    _write_frames(tmp_path)
    rc = main(
        [
            "sequences",
            "--glacier",
            "parvati",
            "--data-root",
            str(tmp_path),
            "--patch",
            "10",
            "--stride",
            "5",
            "--split",
            "strict",
        ]
    )
    assert rc == 0
    info = json.loads((tmp_path / "parvati" / "sequences.json").read_text())
    ds = SequenceDataset(_write_frames(tmp_path), patch=10, stride=5)
    assert info["n_sequences"] == len(ds) == 7 * 49
    assert info["split"] == "strict" and set(info["splits"]) == {"paper", "strict"}
    assert info["splits"]["strict"]["test"] == len(split_indices(ds, "strict").test)
    assert info["splits"]["paper"]["train"] == len(split_indices(ds, "paper").train)
    assert info["bytes_per_sequence_on_disk"] == 0
    assert (tmp_path / "parvati" / "figures" / "sequence_examples.png").stat().st_size > 1000
    out = capsys.readouterr().out
    assert "343" in out and "strict *" in out


def test_command_aletsch_defaults_to_training_frames(tmp_path, capsys):
    _write_frames(tmp_path, "aletsch", t=27, h=30, w=30)
    assert (
        main(
            [
                "sequences",
                "--glacier",
                "aletsch",
                "--data-root",
                str(tmp_path),
                "--preset",
                "tiny",
                "--examples",
                "0",
            ]
        )
        == 0
    )
    info = json.loads((tmp_path / "aletsch" / "sequences.json").read_text())
    assert info["frames_used"] == 19 and info["patch"] == 10 and info["n_sequences"] == 12 * 9
    assert not (tmp_path / "aletsch" / "figures").exists()


def test_command_without_frames_says_what_to_run(tmp_path, capsys):
    rc = main(["sequences", "--glacier", "aletsch", "--data-root", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and "run `glacier-movement preprocess --glacier aletsch` first" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "aletsch" / "sequences.json").exists()


def test_command_bad_settings_are_one_line_errors(tmp_path, capsys):
    _write_frames(tmp_path, t=7)
    assert (
        main(["sequences", "--glacier", "parvati", "--data-root", str(tmp_path), "--patch", "10"])
        == 2
    )
    assert "only 7 frames" in capsys.readouterr().err
    _write_frames(tmp_path)
    assert (
        main(["sequences", "--glacier", "parvati", "--data-root", str(tmp_path), "--patch", "50"])
        == 2
    )
    assert "larger than the frames" in capsys.readouterr().err
    assert (
        main(
            [
                "sequences",
                "--glacier",
                "parvati",
                "--data-root",
                str(tmp_path),
                "--patch",
                "10",
                "--stride",
                "0",
            ]
        )
        == 2
    )
    assert "stride" in capsys.readouterr().err


def test_export_files_layout(tmp_path, capsys):
    f = _write_frames(tmp_path, t=12, h=20, w=20)
    out = tmp_path / "export"
    rc = main(
        [
            "sequences",
            "--glacier",
            "parvati",
            "--data-root",
            str(tmp_path),
            "--patch",
            "10",
            "--stride",
            "10",
            "--examples",
            "0",
            "--export-files",
            str(out),
        ]
    )
    assert rc == 0
    ds = SequenceDataset(f, patch=10, stride=10)
    assert len(list((out / "input").glob("*.npy"))) == len(ds) == 20
    for i in range(len(ds)):
        np.testing.assert_array_equal(np.load(out / "input" / f"{i}.npy"), ds[i][0].numpy())
        np.testing.assert_array_equal(np.load(out / "target" / f"{i}.npy"), ds[i][1].numpy())
    rows = (out / "index.csv").read_text().splitlines()
    assert rows[0] == "index,start,row,col,y0,x0,split_paper,split_strict" and len(rows) == 21
    assert rows[-1] == "19,4,1,1,10,10,test,test" and rows[1] == "0,0,0,0,0,0,train,train"
    assert rows[5] == "4,1,0,0,0,0,train,none"  # start 1 is in the strict gap
    assert "warning: exporting 20 sequences" in capsys.readouterr().err
    # never into a non-empty folder, and nothing half-written
    with pytest.raises(GlacierError, match="not an empty folder"):
        export_files(ds, out)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_command_reports_a_split_that_cannot_be_made(tmp_path, capsys):
    _write_frames(tmp_path, t=9, h=20, w=20)  # 2 starts: the strict gap swallows the training part
    args = ["sequences", "--glacier", "parvati", "--data-root", str(tmp_path), "--patch", "10"]
    assert main([*args, "--examples", "1"]) == 0
    info = json.loads((tmp_path / "parvati" / "sequences.json").read_text())
    assert "leaves no training" in info["splits"]["strict"]["unavailable"]
    assert info["splits"]["paper"]["test"] == 2
    assert "unavailable" in capsys.readouterr().out
    assert main([*args, "--split", "strict"]) == 2
    assert "--split paper" in capsys.readouterr().err


def test_pickled_dataset_carries_the_frames_not_the_views():
    # DataLoader workers started with spawn/forkserver get the dataset pickled (not our format)
    import pickle

    ds = SequenceDataset(_frames(t=10, h=60, w=60), patch=20, stride=2)
    blob = pickle.dumps(ds)
    assert len(blob) < 2 * ds.frames.nbytes  # the expanded view would be ~100× larger
    again = pickle.loads(blob)
    idx = np.arange(0, len(ds), 7)
    assert torch.equal(again.batch(idx)[0], ds.batch(idx)[0])


def test_loader_with_worker_processes():
    ds = SequenceDataset(_frames(t=9, h=20, w=20), patch=10, stride=5)
    idx = np.arange(len(ds))
    serial = [x for x, _ in make_loader(ds, idx, 4, seed=1)]
    parallel = [x for x, _ in make_loader(ds, idx, 4, seed=1, num_workers=2)]
    assert all(torch.equal(a, b) for a, b in zip(serial, parallel, strict=True))


def test_concat_batches_carry_the_climatology_of_clim_models():
    """A +clim model trains on several glaciers (experiment 5's --train-glaciers): the batch of a
    ConcatSequences holds each part's extra climatology channels."""
    fa, fb = _frames(t=12, seed=1), _frames(t=12, h=30, w=30, seed=2)
    a = SequenceDataset(fa, patch=10, stride=5, climatology=fa * 0.5, clim_input=True)
    b = SequenceDataset(fb, patch=10, stride=5, climatology=fb * 0.5, clim_input=True)
    both = ConcatSequences([a, b])
    idx = np.array([0, len(a) + 1, 1])
    x, y = both.batch(idx)
    assert x.shape == (3, 2 * a.n_in + a.n_out, 10, 10) and y.shape == (3, a.n_out, 10, 10)
    for k, i in enumerate(idx):
        part, j = (a, i) if i < len(a) else (b, i - len(a))
        assert torch.equal(x[k], part[int(j)][0]) and torch.equal(y[k], part[int(j)][1])
    assert both.batch(np.array([], dtype=np.int64))[0].shape[0] == 0
