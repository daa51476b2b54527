"""Figures (PNG, optionally PDF), written atomically. Matplotlib runs headless (Agg).

Stage modules call the functions here; each function takes arrays and a path and returns the
path(s) written.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import matplotlib
import numpy as np
from PIL import Image, ImageDraw

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from .config import BANDS, GREEN  # noqa: E402
from .io import atomic_path  # noqa: E402


def save_figure(fig, path: str | os.PathLike, pdf: bool = False, dpi: int = 120) -> list[Path]:
    """Save ``fig`` to ``path`` (PNG) atomically, and a PDF beside it when ``pdf``; close it."""
    path = Path(path)
    written = []
    targets = [path] + ([path.with_suffix(".pdf")] if pdf else [])
    try:
        for target in targets:
            with atomic_path(target, suffix=".tmp" + target.suffix) as tmp:
                fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=target.suffix[1:])
            written.append(target)
    finally:
        plt.close(fig)
    return written


# ----------------------------------------------------------------- preprocessing (frames)
def plot_frame_grid(
    frames,
    path: str | os.PathLike,
    titles=None,
    marked=None,
    ncols: int = 4,
    suptitle: str | None = None,
    vmin: float = 0.0,
    vmax: float = 1.0,
    cmap: str = "viridis",
    pdf: bool = False,
) -> list[Path]:
    """A grid of frames (T, H, W) (e.g. masked NDSI, 0 or 0.3–1), one panel per frame.

    ``titles`` label the panels (e.g. window dates); panels where ``marked`` is True get a ``*``
    and a red title (e.g. interpolated windows). With ``ncols`` = windows per year, each row is a
    year and each column a season. Returns the paths written.
    """

    frames = np.asarray(frames)
    t = frames.shape[0]
    ncols = max(1, min(ncols, t))
    nrows = -(-t // ncols)
    aspect = frames.shape[1] / max(frames.shape[2], 1)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(2.3 * ncols + 0.8, 2.3 * nrows * aspect + 0.6), squeeze=False
    )
    im = None
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i >= t:
            continue
        im = ax.imshow(frames[i], vmin=vmin, vmax=vmax, cmap=cmap, interpolation="nearest")
        is_marked = marked is not None and bool(marked[i])
        title = (titles[i] if titles is not None else f"frame {i}") + (" *" if is_marked else "")
        ax.set_title(title, fontsize=8, color="tab:red" if is_marked else "black")
    if im is not None:
        fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.6, label="NDSI (0 = no snow/ice)")
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return save_figure(fig, path, pdf=pdf)


def save_frames_gif(
    frames,
    path: str | os.PathLike,
    labels=None,
    duration_ms: int = 400,
    vmin: float = 0.0,
    vmax: float = 1.0,
    cmap: str = "viridis",
    max_size: int = 600,
) -> Path:
    """An animated GIF of frames (T, H, W) over time (the original's ``gif.py``), written atomically.

    Values are mapped through ``cmap`` between ``vmin`` and ``vmax``; ``labels`` (e.g. window
    dates) are drawn in the top-left corner; frames larger than ``max_size`` pixels are shrunk.
    """

    frames = np.asarray(frames, dtype=np.float32)
    scaled = np.clip((np.nan_to_num(frames) - vmin) / max(vmax - vmin, 1e-12), 0, 1)
    rgb = (matplotlib.colormaps[cmap](scaled)[..., :3] * 255).astype(np.uint8)
    h, w = frames.shape[1:]
    factor = min(1.0, max_size / max(h, w))
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    images = []
    for i in range(len(rgb)):
        img = Image.fromarray(rgb[i])
        if factor < 1.0:
            img = img.resize(size, Image.Resampling.BILINEAR)
        elif max(h, w) < 200:  # tiny synthetic frames: enlarge so the label fits
            k = max(1, 200 // max(h, w))
            img = img.resize((w * k, h * k), Image.Resampling.NEAREST)
        if labels is not None:
            text = str(labels[i]).replace("–", "-")  # Pillow's built-in bitmap font is ASCII
            draw = ImageDraw.Draw(img)
            draw.rectangle((0, 0, 8 + 6 * len(text), 14), fill=(0, 0, 0))
            draw.text((3, 1), text, fill=(255, 255, 255))
        images.append(img.convert("P", palette=Image.Palette.ADAPTIVE))
    path = Path(path)
    with atomic_path(path, suffix=".tmp.gif") as tmp:
        images[0].save(
            tmp, format="GIF", save_all=True, append_images=images[1:], duration=duration_ms, loop=0
        )
    return path


def plot_sequence_examples(
    inputs,
    targets,
    path: str | os.PathLike,
    row_titles: list[str] | None = None,
    frame_labels: list[list[str]] | None = None,
    title: str | None = None,
    vmax: float = 1.0,
) -> list[Path]:
    """Example sequences, one per row: input frames, then target frames (masked NDSI, 0…1).

    ``inputs`` (K, n_in, P, P), ``targets`` (K, n_out, P, P); ``frame_labels`` K lists of
    n_in + n_out strings (e.g. window start months); ``row_titles`` K strings.
    """

    inputs, targets = np.asarray(inputs), np.asarray(targets)
    k, n_in = inputs.shape[:2]
    n_out = targets.shape[1]
    n = n_in + n_out
    fig, axes = plt.subplots(k, n, figsize=(1.6 * n + 0.8, 1.75 * k + 0.6), squeeze=False)
    im = None
    for i in range(k):
        seq = np.concatenate([inputs[i], targets[i]])
        for j in range(n):
            ax = axes[i, j]
            im = ax.imshow(seq[j], cmap="viridis", vmin=0.0, vmax=vmax, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            label = ("input " if j < n_in else "target ") + str(j + 1 if j < n_in else j - n_in + 1)
            if frame_labels is not None:
                label += f"\n{frame_labels[i][j]}"
            ax.set_title(label, fontsize=7, color="black" if j < n_in else "firebrick")
            if j == n_in:  # a red frame marks where the targets begin
                for side in ax.spines.values():
                    side.set_edgecolor("firebrick")
                    side.set_linewidth(1.5)
        if row_titles is not None:
            axes[i, 0].set_ylabel(row_titles[i], fontsize=6, rotation=0, ha="right", va="center")
    if im is not None:
        fig.colorbar(im, ax=axes, shrink=0.8, label="masked NDSI")
    if title:
        fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)


# ------------------------------------------------------------------ evaluation and optical flow
def scene_panels_figure(
    rows: dict,
    path: str | os.PathLike,
    column_titles: list[str] | None = None,
    title: str | None = None,
    pdf: bool = False,
) -> list[Path]:
    """Full-scene frames side by side: one row per entry of ``rows`` (label → (K, H, W) NDSI),
    K columns, one shared grey scale 0–1 (NDSI) with a colour bar."""

    labels = list(rows)
    k = max(np.asarray(v).shape[0] for v in rows.values())
    h, w = np.asarray(rows[labels[0]]).shape[-2:]
    fig, axs = plt.subplots(
        len(labels), k, figsize=(2.6 * k + 0.8, 2.6 * h / w * len(labels) + 0.6), squeeze=False
    )
    im = None
    for i, label in enumerate(labels):
        frames = np.asarray(rows[label])
        for j in range(k):
            ax = axs[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j < frames.shape[0]:
                im = ax.imshow(frames[j], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
            else:
                ax.axis("off")
            if j == 0:
                ax.set_ylabel(label)
            if i == 0 and column_titles and j < len(column_titles):
                ax.set_title(column_titles[j], fontsize=9)
    assert im is not None  # at least one frame was drawn
    fig.colorbar(im, ax=axs, shrink=0.8, label="NDSI")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path, pdf=pdf)


def flow_quiver_figure(
    backgrounds: dict,
    flows: dict,
    path: str | os.PathLike,
    row_titles: list[str] | None = None,
    grid: int = 10,
    title: str | None = None,
    pdf: bool = False,
) -> list[Path]:
    """The original's optical-flow figure: arrows every ``grid`` px over the frame, one column per
    source (e.g. target, prediction, truth), one row per frame pair.

    ``backgrounds``: source → (K, H, W) frames drawn in grey (the pair's second frame);
    ``flows``: source → (K, 2, H, W) displacement in px ([0] x right, [1] y down). Arrows are
    coloured by length with one shared colour bar (px per window); one arrow scale is
    shared by all panels (the longest arrow spans 0.9 grid cells; the factor is in the colour-bar
    label), so lengths compare across panels.
    """

    sources = list(flows)
    k = np.asarray(flows[sources[0]]).shape[0]
    h, w = np.asarray(flows[sources[0]]).shape[-2:]
    yy, xx = np.mgrid[grid // 2 : h : grid, grid // 2 : w : grid]
    sub = {s: np.asarray(f)[:, :, grid // 2 :: grid, grid // 2 :: grid] for s, f in flows.items()}
    vmax = max(float(np.hypot(f[:, 0], f[:, 1]).max()) for f in sub.values()) or 1.0
    norm = Normalize(0.0, vmax)
    scale = vmax / (0.9 * grid)  # flow px per image px of arrow
    fig, axs = plt.subplots(
        k, len(sources), figsize=(4.2 * len(sources) + 1, 4.2 * h / w * k + 0.6), squeeze=False
    )
    q = None
    for j, s in enumerate(sources):
        for i in range(k):
            ax = axs[i, j]
            ax.imshow(
                np.asarray(backgrounds[s])[i],
                cmap="gray",
                vmin=0.0,
                vmax=1.0,
                interpolation="nearest",
            )
            u, v = sub[s][i, 0], sub[s][i, 1]
            # angles="xy": arrows in data coordinates, where imshow's y points down like the flow's
            q = ax.quiver(
                xx,
                yy,
                u,
                v,
                np.hypot(u, v),
                cmap="viridis",
                norm=norm,
                angles="xy",
                scale_units="xy",
                scale=scale,
                width=0.004,
            )
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(s)
            if j == 0 and row_titles:
                ax.set_ylabel(row_titles[i])
    assert q is not None  # at least one panel was drawn
    fig.colorbar(
        q, ax=axs, shrink=0.8, label=f"displacement (px per window); arrows ×{1 / scale:.3g}"
    )
    if title:
        fig.suptitle(title)
    return save_figure(fig, path, pdf=pdf)


def loss_curves_figure(losses, path: str | os.PathLike, pdf: bool = False) -> list[Path]:
    """Train (solid) and validation (dashed) loss per epoch, one colour per run.

    ``losses``: DataFrame with columns ``run, epoch, train_loss, val_loss`` (MSE); log-scale y.
    """
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, (run, df) in enumerate(losses.groupby("run", sort=True)):
        color = f"C{i % 10}"
        df = df.sort_values("epoch")
        ax.plot(df["epoch"], df["train_loss"], "-o", ms=3, color=color, label=f"{run} train")
        ax.plot(df["epoch"], df["val_loss"], "--s", ms=3, color=color, label=f"{run} validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE loss")
    if (losses[["train_loss", "val_loss"]].to_numpy() > 0).all():
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    return save_figure(fig, path, pdf=pdf)


def _rgb_stretch(data: np.ndarray, rgb: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """One stretch for a year's scenes: the 1st and 99th percentiles (3,) float32 of the DN of the
    bands ``rgb`` of ``data`` (N, 7, H, W) uint16, from a subsample of the valid (green > 0)
    pixels; (0, 1) without valid pixels, and ``hi`` ≥ ``lo`` + 1."""
    _, _, h, w = data.shape
    step = max(1, int(np.sqrt(h * w / 40000)))
    sub = data[:, rgb, ::step, ::step]
    valid = sub[:, 1] > 0
    lo, hi = np.zeros(3, np.float32), np.ones(3, np.float32)
    if valid.any():
        for b in range(3):
            lo[b], hi[b] = np.percentile(sub[:, b][valid], [1, 99])
    return lo, np.maximum(hi, lo + 1)


def scene_quicklook(
    data,
    times,
    cloud_cover,
    path: str | os.PathLike,
    *,
    title: str = "",
    roi: tuple[int, int, int, int] | None = None,
    max_cloud: float = 20.0,
    max_missing: float = 0.5,
    thumb: int = 192,
    cols: int = 6,
    pdf: bool = False,
) -> list[Path]:
    """RGB quick-look grid of one year's scenes (synthetic or acquired), one PNG.

    ``data``: uint16 DN (N, 7, H, W) in :data:`config.BANDS` order, 0 = nodata; ``times`` (N,)
    datetime64; ``cloud_cover`` (N,) percent. Red, green and blue are stretched between the 1st and
    99th percentiles of the year's valid DN (one stretch for all scenes, so seasons compare) with
    gamma 0.5; nodata is black. Each thumbnail (at most ``thumb`` px) is titled with its date,
    cloud cover and missing fraction, in red when the scene fails the filter (cloud >
    ``max_cloud`` or missing ≥ ``max_missing``); ``roi`` (row0, row1, col0, col1) is outlined
    (dashed yellow) when it is not the whole scene. The thumbnails form one mosaic image, so the
    figure costs one axes however many scenes there are.
    """
    rgb = [BANDS.index(b) for b in ("red", "green", "blue")]
    n, _, h, w = data.shape
    f = min(1.0, thumb / max(h, w))
    tw, th = max(1, round(w * f)), max(1, round(h * f))
    lo, hi = _rgb_stretch(data, rgb)

    ncols = min(cols, max(n, 1))
    nrows = max(1, -(-n // ncols))
    pad, head = 8, 30  # px between thumbnails, px of title above each
    pw, ph = tw + pad, th + head
    canvas = np.ones((nrows * ph + pad, ncols * pw + pad, 3), np.float32)
    labels = []
    for i in range(n):
        img = (data[i, rgb].transpose(1, 2, 0).astype(np.float32) - lo) / (hi - lo)
        img = np.sqrt(np.clip(img, 0.0, 1.0))  # gamma 0.5: dark rock and bright snow both readable
        nodata = data[i, GREEN] == 0
        img[nodata] = 0.0
        if f < 1:
            img = cv2.resize(img, (tw, th), interpolation=cv2.INTER_AREA)
        r, c = divmod(i, ncols)
        y0, x0 = r * ph + head, c * pw + pad
        canvas[y0 : y0 + th, x0 : x0 + tw] = img
        miss, cc = float(nodata.mean()), float(cloud_cover[i])
        bad = cc > max_cloud or miss >= max_missing
        day = str(np.datetime64(times[i], "D"))
        labels.append(
            (x0, y0, f"{day}\ncloud {cc:.0f}% · gaps {miss:.0%}", "red" if bad else "black")
        )

    dpi = 100
    top = 0.35 if title else 0.0  # inches for the suptitle
    fig = plt.figure(figsize=(canvas.shape[1] / dpi, canvas.shape[0] / dpi + top), dpi=dpi)
    ax = fig.add_axes((0.0, 0.0, 1.0, canvas.shape[0] / dpi / (canvas.shape[0] / dpi + top)))
    ax.imshow(canvas, interpolation="none")
    ax.set_axis_off()
    if n == 0:
        ax.text(canvas.shape[1] / 2, canvas.shape[0] / 2, "no scenes", ha="center", va="center")
    for x0, y0, text, color in labels:
        ax.text(
            x0 + tw / 2,
            y0 - 2,
            text,
            ha="center",
            va="bottom",
            fontsize=7,
            color=color,
            linespacing=1.1,
        )
        if roi is not None and tuple(roi) != (0, h, 0, w):
            r0, r1, c0, c1 = (v * f for v in roi)
            ax.add_patch(
                Rectangle(
                    (x0 + c0 - 0.5, y0 + r0 - 0.5),
                    c1 - c0,
                    r1 - r0,
                    fill=False,
                    ec="yellow",
                    lw=0.8,
                    ls="--",
                )
            )
    if title:
        fig.suptitle(
            title, fontsize=9, y=1.0 - 0.08 * top / (canvas.shape[0] / dpi + top), va="top"
        )
    return save_figure(fig, path, pdf=pdf, dpi=dpi)


def _bars(v: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Error bars (2, n) from an interval [low, high] around v (0 where not defined)."""
    return np.abs(np.nan_to_num(np.vstack([v - low, high - v])))


def skill_sweep_figure(
    points: list[dict], path: str | os.PathLike, pdf: bool = False
) -> list[Path]:
    """Experiment 5's figure: each model's skill against climatology (y) against the available
    (oracle) skill (x) of every world, one line per model across the worlds, the oracle as the
    diagonal, 95 % intervals as error bars (x: the oracle's, y: the model's).

    ``points``: dicts with ``model``, ``world``, ``available`` / ``available_low`` /
    ``available_high`` and ``skill`` / ``skill_low`` / ``skill_high``."""
    fig, ax = plt.subplots(figsize=(5.5, 4.5))

    def finite(*keys: str) -> list[float]:
        return [float(p[k]) for p in points for k in keys if np.isfinite(p[k])]

    xs = finite("available", "available_low", "available_high")
    ys = finite("skill", "skill_low", "skill_high")
    # the skill axis is cut at -1: a diverged run must not hide the rest
    x0, x1 = min([0.0, *xs]), max([0.05, *xs])
    y0, y1 = max(min([0.0, *ys]), -1.0), min(max([x1, *ys]), 1.0)
    pad_x, pad_y = 0.05 * (x1 - x0), 0.05 * (y1 - y0)
    d0, d1 = min(x0, y0), max(x1, y1)
    ax.plot([d0, d1], [d0, d1], "k--", lw=1, label="oracle (ceiling: skill = available skill)")
    ax.axhline(0.0, color="0.6", lw=0.8)
    for model in dict.fromkeys(p["model"] for p in points):
        mine = sorted((p for p in points if p["model"] == model), key=lambda p: p["available"])
        x = np.array([p["available"] for p in mine])
        y = np.array([p["skill"] for p in mine])

        xl = np.array([p["available_low"] for p in mine])
        xh = np.array([p["available_high"] for p in mine])
        yl = np.array([p["skill_low"] for p in mine])
        yh = np.array([p["skill_high"] for p in mine])
        ax.errorbar(
            x, y, xerr=_bars(x, xl, xh), yerr=_bars(y, yl, yh),
            marker="o", capsize=3, label=model,
        )  # fmt: skip
        for p in mine:
            ax.annotate(p["world"], (p["available"], p["skill"]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")  # fmt: skip
    ax.set_xlim(x0 - pad_x, x1 + pad_x)
    ax.set_ylim(y0 - pad_y, y1 + pad_y)
    ax.set_xlabel("available skill (oracle's skill against climatology)")
    ax.set_ylabel("model's skill against climatology")
    ax.set_title("Experiment 5: skill taken against skill available")
    ax.legend(fontsize=7)
    return save_figure(fig, path, pdf=pdf)
