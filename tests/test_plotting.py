"""plotting.py on tiny arrays (Agg): the files written are valid images of the expected size and
frame count (read back with Pillow), NaN and empty inputs are handled, nothing is left half-written."""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from glacier_movement import plotting
from glacier_movement.config import BANDS

#: savefig(bbox_inches="tight") pads 0.1 in on each side: 10 px at the quick-look's 100 dpi.
TIGHT_PAD_PX = 20


def _read(path) -> Image.Image:
    img = Image.open(path)
    img.load()  # decodes every byte: a truncated file fails here
    return img


def _no_temp_files(folder) -> bool:
    return not [p for p in folder.rglob("*") if ".tmp" in p.name]


@pytest.fixture
def figures(monkeypatch):
    """The figures plotting saves, kept open for inspection (the real save_figure still runs)."""
    kept = []
    real = plotting.save_figure

    def keep(fig, path, **kw):
        kept.append(fig)
        return real(fig, path, **kw)

    monkeypatch.setattr(plotting, "save_figure", keep)
    return kept


# ------------------------------------------------------------------------------ save_figure
def test_save_figure_writes_png_and_pdf_and_closes_the_figure(tmp_path):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 1))
    ax.plot([0, 1], [0, 1])
    written = plotting.save_figure(fig, tmp_path / "f.png", pdf=True, dpi=50)
    assert written == [tmp_path / "f.png", tmp_path / "f.pdf"]
    assert _read(written[0]).format == "PNG"
    assert written[1].read_bytes().startswith(b"%PDF") and b"%%EOF" in written[1].read_bytes()
    assert not plt.fignum_exists(fig.number) and _no_temp_files(tmp_path)


# ----------------------------------------------------------------------------------- frames
def test_frame_grid_lays_out_rows_of_ncols(tmp_path, figures):
    frames = np.linspace(0, 1, 6 * 8 * 10, dtype=np.float32).reshape(6, 8, 10)
    frames[2, 0, 0] = np.nan
    marked = np.array([0, 1, 0, 0, 0, 0], bool)
    titles = [f"w{i}" for i in range(6)]
    (png,) = plotting.plot_frame_grid(frames, tmp_path / "g.png", titles, marked, ncols=4)
    assert _read(png).format == "PNG"
    (fig,) = figures
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 6 and len(fig.axes) == 2 * 4 + 1  # 2 rows of 4, and the colour bar
    assert [ax.get_title() for ax in panels] == ["w0", "w1 *", "w2", "w3", "w4", "w5"]
    np.testing.assert_array_equal(panels[3].images[0].get_array(), frames[3])


def test_frames_gif_has_one_frame_per_window_enlarged_and_nan_as_vmin(tmp_path):
    t, h, w = 3, 20, 25
    frames = np.zeros((t, h, w), np.float32)
    frames[:, 15:, 20:] = 1.0
    frames[1, 15:, :5] = np.nan
    path = plotting.save_frames_gif(frames, tmp_path / "f.gif", labels=["a", "b", "c"])
    gif = _read(path)
    k = 200 // max(h, w)  # tiny frames are enlarged by a whole factor
    assert gif.format == "GIF" and gif.n_frames == t and gif.size == (w * k, h * k)
    viridis = matplotlib.colormaps["viridis"]
    low = tuple(int(v * 255) for v in viridis(0.0)[:3])
    high = tuple(int(v * 255) for v in viridis(1.0)[:3])
    for i in range(t):
        gif.seek(i)
        rgb = np.asarray(gif.convert("RGB"))
        assert tuple(rgb[17 * k, 22 * k]) == high  # value 1 → the top of the colour map
        assert tuple(rgb[17 * k, 2 * k]) == low  # 0, and NaN in frame 1 → the bottom
        label = rgb[:14, :14].reshape(-1, 3).astype(int)  # the label box: white text on black
        assert (label.max(axis=1) == label.min(axis=1)).all() and label.max() > 200
    assert _no_temp_files(tmp_path)


def test_frames_gif_shrinks_large_frames_to_max_size(tmp_path):
    frames = np.random.default_rng(0).random((2, 90, 300), dtype=np.float32)
    gif = _read(plotting.save_frames_gif(frames, tmp_path / "big.gif", max_size=150))
    assert gif.n_frames == 2 and gif.size == (150, 45)


def test_sequence_examples_one_row_per_sequence(tmp_path, figures):
    inputs = np.random.default_rng(1).random((2, 4, 5, 5))
    targets = np.random.default_rng(2).random((2, 3, 5, 5))
    labels = [[f"m{j}" for j in range(7)] for _ in range(2)]
    (png,) = plotting.plot_sequence_examples(
        inputs, targets, tmp_path / "s.png", ["a", "b"], labels
    )
    assert _read(png).format == "PNG"
    (fig,) = figures
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 2 * 7
    assert [ax.get_title() for ax in panels[3:5]] == ["input 4\nm3", "target 1\nm4"]
    np.testing.assert_array_equal(panels[7 + 4].images[0].get_array(), targets[1, 0])


# ------------------------------------------------------------------------------- evaluation
def test_scene_panels_leave_missing_columns_empty(tmp_path, figures):
    rows = {"targets": np.zeros((4, 6, 9)), "persistence": np.ones((1, 6, 9))}
    written = plotting.scene_panels_figure(rows, tmp_path / "p.png", ["t1", "t2"], pdf=True)
    assert [p.name for p in written] == ["p.png", "p.pdf"] and _read(written[0]).format == "PNG"
    (fig,) = figures
    grid = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(grid) == 2 * 4 and sum(bool(ax.images) for ax in grid) == 4 + 1
    assert not grid[4 + 1].axison  # persistence has one frame: its other columns are blank


def test_flow_quiver_shares_one_arrow_scale(tmp_path, figures):
    bg = np.zeros((2, 30, 40), np.float32)
    f = np.zeros((2, 2, 30, 40), np.float32)
    f[:, 0] = 2.0  # 2 px to the right everywhere
    out = plotting.flow_quiver_figure(
        {"target": bg, "prediction": bg}, {"target": f, "prediction": f / 2}, tmp_path / "q.png",
        row_titles=["a", "b"], grid=10,
    )  # fmt: skip
    assert _read(out[0]).format == "PNG"
    (fig,) = figures
    # the longest arrow (2 px) spans 0.9 grid cells = 9 image px: arrows × 4.5
    assert fig.axes[-1].get_ylabel().endswith("arrows ×4.5")
    quivers = [c for ax in fig.axes[:-1] for c in ax.collections]
    assert len(quivers) == 4 and {q.scale for q in quivers} == {2.0 / 9}
    assert quivers[0].N == 3 * 4  # an arrow every 10 px from 5: rows 5, 15, 25 × 4 columns


def test_flow_quiver_with_no_motion_at_all(tmp_path):
    zero = np.zeros((1, 2, 20, 20), np.float32)
    out = plotting.flow_quiver_figure({"s": np.zeros((1, 20, 20))}, {"s": zero}, tmp_path / "z.png")
    assert _read(out[0]).format == "PNG"


def test_loss_curves_log_scale_only_for_positive_losses(tmp_path, figures):
    losses = pd.DataFrame(
        {"run": ["b", "a", "a", "a"], "epoch": [1, 2, 1, 3],
         "train_loss": [0.5, 0.2, 0.4, 0.1], "val_loss": [0.6, 0.3, 0.5, 0.2]}
    )  # fmt: skip
    plotting.loss_curves_figure(losses, tmp_path / "l.png")
    with_zero = losses.assign(train_loss=[0.5, 0.2, 0.0, 0.1])
    plotting.loss_curves_figure(with_zero, tmp_path / "l0.png")
    assert _read(tmp_path / "l.png").format == _read(tmp_path / "l0.png").format == "PNG"
    (ax,), (ax0,) = figures[0].axes, figures[1].axes
    assert ax.get_yscale() == "log" and ax0.get_yscale() == "linear"
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    assert list(lines) == ["a train", "a validation", "b train", "b validation"]
    np.testing.assert_array_equal(lines["a train"].get_xdata(), [1, 2, 3])  # sorted by epoch
    np.testing.assert_array_equal(lines["a train"].get_ydata(), [0.4, 0.2, 0.1])
    assert (
        lines["a train"].get_color()
        == lines["a validation"].get_color()
        != (lines["b train"].get_color())
    )


# ------------------------------------------------------------------------------- quick-look
def _scenes(n: int, h: int = 150, w: int = 200) -> np.ndarray:
    data = np.random.default_rng(3).integers(7000, 30000, (n, len(BANDS), h, w), dtype=np.uint16)
    data[-1] = 0  # the last scene is all nodata
    return data


@pytest.mark.parametrize(("cols", "grid"), [(2, (2, 2)), (3, (2, 3)), (6, (1, 4))])
def test_quicklook_is_one_mosaic_of_the_scenes(tmp_path, cols, grid):
    """A (rows × cols) mosaic of thumbnails (at most 192 px: 200 × 150 → 192 × 144), each under a
    30 px title, 8 px apart, at 100 dpi; a nodata scene is black."""
    times = np.array(["2019-01-05", "2019-03-01", "2019-07-01", "2019-08-01"], "datetime64[D]")
    (png,) = plotting.scene_quicklook(
        _scenes(4), times, np.array([5.0, 30.0, 0.0, 1.0]), tmp_path / "q.png", cols=cols
    )
    img = _read(png)
    nrows, ncols = grid
    tw, th = 192, 144
    assert img.size == (
        ncols * (tw + 8) + 8 + TIGHT_PAD_PX,
        nrows * (th + 30) + 8 + TIGHT_PAD_PX,
    )
    rgb = np.asarray(img.convert("RGB")).astype(int)
    black = (rgb.sum(axis=2) == 0).sum()
    assert tw * th * 0.95 <= black <= tw * th * 1.05  # the nodata thumbnail, and nothing else


def test_quicklook_without_scenes_still_writes_a_figure(tmp_path):
    empty = np.zeros((0, len(BANDS), 50, 60), np.uint16)
    out = plotting.scene_quicklook(
        empty, np.array([], "datetime64[D]"), np.array([]), tmp_path / "e.png", title="2019"
    )
    assert _read(out[0]).format == "PNG" and _no_temp_files(tmp_path)
