"""Full-scene prediction: batched patch inference, stitching, and the scene files ``infer`` writes.

A full-scene test window is 8 consecutive frames of a glacier: 4 inputs, then 4 targets.
:func:`predict_scene` cuts the 4 input frames (T, H, W) into non-overlapping P×P patches,
predicts them in batches and stitches the 4 predicted frames back to (4, H, W);
:func:`save_scene` writes a :class:`Scene` as ``.npy`` arrays, grayscale PNG (PDF) images,
georeferenced GeoTIFFs and ``scene.json`` (scores, structure, metadata), which
:func:`load_scene` reads back. All frames are NDSI in [0, 1] (0 = no snow/ice), float32.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..baselines import BASELINES, ORACLE, attach_truth, forecast, glacier_sequences, scene_take
from ..checkpoints import resolve_device
from ..config import SCENE_META
from ..errors import DataError, GlacierError
from ..io import Frames, read_frames, save_array, save_grayscale, write_geotiff, write_text
from ..models.baselines import persist
from ..plotting import scene_panels_figure
from ..selection import Selected
from ..sequences import extract_patches, stitch_patches
from . import metrics

#: Frames of one full-scene test window: 4 inputs, then 4 targets.
N_IN = N_OUT = 4
#: Name of the persistence baseline in every table.
PERSISTENCE = "persistence"


# ------------------------------------------------------------------------------ prediction
def predict_scene(
    model: torch.nn.Module,
    frames: np.ndarray,
    patch: int,
    batch_size: int = 100,
    device: str | torch.device | None = "cpu",
    progress: bool = False,
    climatology: np.ndarray | None = None,
) -> np.ndarray:
    """Predict the 4 frames after ``frames[:4]`` over the whole scene.

    ``frames``: (T ≥ 4, H, W) NDSI (the full-scene window; only the first 4 frames are read).
    The 4 input frames are zero-padded at the bottom and right to multiples of ``patch`` (0 is
    "no snow/ice", the frames' own background), cut into non-overlapping ``patch``×``patch``
    patches (stride = patch, as the original), predicted in batches of ``batch_size`` under
    ``torch.no_grad()`` in eval mode, stitched back and cropped to (H, W).

    A ``+clim`` model also gets ``climatology`` (8, H, W): that of the 4 input and 4 target
    windows. Returns float32 (4, H, W).
    """
    frames = np.asarray(frames, dtype=np.float32)
    n_ch = N_IN
    if getattr(model, "clim_input", False):
        if climatology is None or np.shape(climatology)[0] != N_IN + N_OUT:
            raise GlacierError("a +clim model needs the climatology of the 8 windows of the scene")
        frames = np.concatenate([frames[:N_IN], np.asarray(climatology, np.float32)])
        n_ch = 2 * N_IN + N_OUT
    if frames.ndim != 3 or frames.shape[0] < N_IN:
        raise GlacierError(
            f"a full-scene prediction needs (>= {N_IN}, H, W) frames, got {frames.shape}"
        )
    _, h, w = frames.shape
    ph, pw = -(-h // patch) * patch, -(-w // patch) * patch
    inputs = np.zeros((n_ch, ph, pw), dtype=np.float32)
    inputs[:, :h, :w] = frames[:n_ch]
    grid = np.asarray(extract_patches(inputs, patch, patch))  # (C, nR, nC, P, P), a view
    n_r, n_c = grid.shape[1:3]
    # (nR·nC, C, P, P): one sample per patch position, in row-major order
    batch = np.ascontiguousarray(grid.transpose(1, 2, 0, 3, 4)).reshape(
        n_r * n_c, n_ch, patch, patch
    )
    device = resolve_device(device)
    model = model.to(device).eval()
    out = np.empty((n_r * n_c, N_OUT, patch, patch), dtype=np.float32)
    with torch.no_grad():
        for start in tqdm(
            range(0, len(batch), batch_size), desc="scene", unit="batch", disable=not progress
        ):
            chunk = torch.from_numpy(batch[start : start + batch_size]).to(device)
            pred = model(chunk)
            if pred.shape != (len(chunk), N_OUT, patch, patch):
                raise ValueError(
                    f"the model returned {tuple(pred.shape)} for input {tuple(chunk.shape)}"
                )
            out[start : start + len(chunk)] = pred.float().cpu().numpy()
    grid_out = out.reshape(n_r, n_c, N_OUT, patch, patch).transpose(2, 0, 1, 3, 4)
    scene = stitch_patches(grid_out, shape=(ph, pw), stride=patch)
    return np.ascontiguousarray(scene[:, :h, :w], dtype=np.float32)


def persistence_scene(frames: np.ndarray) -> np.ndarray:
    """The persistence baseline over the whole scene: frame 3 repeated, (T ≥ 4, H, W) → (4, H, W)."""
    frames = np.asarray(frames, dtype=np.float32)
    return persist(frames[None, N_IN - 1 : N_IN], N_OUT)[0]


# ----------------------------------------------------------------------------------- scenes
@dataclass
class Scene:
    """A full-scene test window and its predictions (what ``infer`` writes).

    ``inputs``, ``targets``, ``predictions``, ``persistence``: float32 (4, H, W) NDSI;
    ``baselines``: every baseline's forecast of the targets (name → (4, H, W));
    ``frame_indices``: the 8 frame indices (4 inputs then 4 targets) in ``frames.npz``;
    ``window_start``: their window start days (datetime64[D], (8,)).
    """

    inputs: np.ndarray
    targets: np.ndarray
    predictions: np.ndarray
    persistence: np.ndarray
    frame_indices: np.ndarray
    window_start: np.ndarray
    meta: dict = field(default_factory=dict)
    baselines: dict[str, np.ndarray] = field(default_factory=dict)

    def forecasts(self) -> dict[str, np.ndarray]:
        """The model's and every baseline's forecast (persistence alone for older scenes)."""
        return {"model": self.predictions, **(self.baselines or {PERSISTENCE: self.persistence})}


def scene_window(n_frames: int, last: int = 8) -> np.ndarray:
    """Indices of the 8-frame window starting ``last`` frames before the end (default: the last 8).

    Parvati (36 frames) → 28…35, Aletsch (27 frames) → 19…26, as the original.
    """
    n = N_IN + N_OUT
    if last < n or last > n_frames:
        raise GlacierError(
            f"--last {last} does not fit: the frame file holds {n_frames} frames and a scene test "
            f"needs {n} (use {n} <= --last <= {n_frames}, or preprocess more years)"
        )
    first = n_frames - last
    return np.arange(first, first + n)


def scene_scores(scene: Scene, n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """MSE, MAE, SSIM and PSNR of the stitched predictions and of every baseline against the
    targets (the original's ``AletschMSE.py``): rows ``model`` and the baselines' names, columns
    ``predictor``, ``MSE`` … ``PSNR`` and ``MSE_low`` … ``MAE_high``: the 95 % percentile bootstrap
    interval over the scene's patch-size tiles (the same tiles for every predictor), so full-scene
    scores carry an uncertainty like the test-set scores (:func:`metrics.scene_scores`)."""
    tile = int(scene.meta.get("patch") or 10)
    return pd.DataFrame(
        metrics.scene_scores(scene.forecasts(), scene.targets, tile, n_resamples, seed)
    )


def structure_scores(scene: Scene) -> pd.DataFrame:
    """Spatial structure of every forecast of ``scene`` per lead time (:func:`metrics.
    structure_scores`: ``spatial_sd``, ``target_sd``, ``pattern_corr``, ``anomaly_corr`` against
    the scene's climatology baseline)."""
    return pd.DataFrame(
        metrics.structure_scores(
            scene.forecasts(), scene.targets, scene.baselines.get("climatology")
        )
    )


def save_scene(scene: Scene, out_dir: Path, frames: Frames, pdf: bool = False) -> list[Path]:
    """Write a scene: arrays (.npy), grayscale images, GeoTIFFs; ``scene.json`` last.

    ``scene.json`` is written after everything else, so its presence marks a complete set.
    """
    (out_dir / SCENE_META).unlink(missing_ok=True)  # an interrupted rewrite is not complete
    written = []
    for name in ("inputs", "targets", "predictions", "persistence"):
        written.append(save_array(getattr(scene, name), out_dir / f"{name}.npy"))
    for name, arr in scene.baselines.items():
        written.append(save_array(arr, out_dir / f"baseline_{name}.npy"))
    for stale in set(out_dir.glob("baseline_*.npy")) - set(written):  # from an earlier scene
        stale.unlink()
    for name in ("targets", "predictions"):
        arr = getattr(scene, name)
        for k in range(arr.shape[0]):
            for ext in (".png", ".pdf") if pdf else (".png",):
                written.append(save_grayscale(arr[k], out_dir / "images" / f"{name}_{k}{ext}"))
        dates = [str(d) for d in scene.window_start[N_IN:]]
        written.append(
            write_geotiff(
                out_dir / f"{name}.tif",
                arr,
                frames.epsg,
                frames.transform,
                [f"{name} {d}" for d in dates],
            )
        )
    meta = dict(scene.meta)
    meta |= {
        "frame_indices": [int(i) for i in scene.frame_indices],
        "window_start": [str(d) for d in scene.window_start],
        "shape": list(scene.targets.shape),
        "epsg": frames.epsg,
        "scores": scene_scores(scene).to_dict(orient="records"),
        "structure": structure_scores(scene).to_dict(orient="records"),
    }
    written.append(write_text(json.dumps(meta, indent=2) + "\n", out_dir / SCENE_META))
    return written


def load_scene(out_dir: Path) -> Scene | None:
    """Read a scene written by :func:`save_scene`, or None when it is absent or incomplete."""
    meta_path = out_dir / SCENE_META
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        arrays = {
            n: np.load(out_dir / f"{n}.npy", allow_pickle=False)
            for n in ("inputs", "targets", "predictions", "persistence")
        }
        baselines = {
            p.stem.removeprefix("baseline_"): np.load(p, allow_pickle=False)
            for p in sorted(out_dir.glob("baseline_*.npy"))
        }
    except (OSError, ValueError):
        return None
    return Scene(
        **arrays,
        baselines=baselines,
        frame_indices=np.asarray(meta["frame_indices"]),
        window_start=np.asarray(meta["window_start"], dtype="datetime64[D]"),
        meta=meta,
    )


# ------------------------------------------------------------------------ a run's full scene
def _frames(sel: Selected) -> Frames:
    if not sel.paths.frames.is_file():
        raise DataError(
            f"{sel.paths.frames} does not exist: run `glacier-movement preprocess --glacier {sel.glacier.name}` first"
        )
    return read_frames(sel.paths.frames)


def infer(
    sel: Selected,
    device: str | torch.device | None,
    batch_size: int,
    last: int = 8,
    pdf: bool = False,
) -> Scene:
    """Predict, save and draw the full-scene window of a selected checkpoint (``infer``)."""
    fr = _frames(sel)
    idx = scene_window(fr.frames.shape[0], last)
    window = fr.frames[idx]
    model = sel.load_model(device)
    h, w = window.shape[1:]
    print(
        f"predicting {sel.label} on {sel.glacier.name} frames {idx[0]}–{idx[-1]} ({h}×{w} px)",
        file=sys.stderr,
    )
    _, ref = glacier_sequences(fr, sel.glacier.train_frames, sel.patch, sel.stride)
    # synthetic data: the truth gives advect its glacier (as in `test`) and adds the oracle
    ref = attach_truth(ref, fr, sel.paths.truth)
    refs = (*BASELINES, ORACLE) if ref.velocity is not None else BASELINES
    pred = predict_scene(
        model, window, sel.patch, batch_size, device, progress=True, climatology=ref.clim[idx]
    )
    take = scene_take(ref)
    scene = Scene(
        baselines={b: forecast(b, ref, idx[:1], take)[0] for b in refs},
        inputs=window[:N_IN],
        targets=window[N_IN:],
        predictions=pred,
        persistence=persistence_scene(window),
        frame_indices=idx,
        window_start=fr.window_start[idx].astype("datetime64[D]"),
        meta={
            "label": sel.label,
            "glacier": sel.glacier.name,
            "model": sel.checkpoint.get("model_name"),
            "patch": sel.patch,
            "last": last,
            "checkpoint": sel.fingerprint,
        },
    )
    out_dir = sel.paths.scene_dir(sel.label)
    save_scene(scene, out_dir, fr, pdf=pdf)
    dates = [str(d)[:7] for d in scene.window_start]
    fig = scene_panels_figure(
        {"inputs": scene.inputs, "targets": scene.targets, "predictions": scene.predictions},
        sel.paths.scene_figure(sel.label),
        column_titles=[f"{a} → {b}" for a, b in zip(dates[:N_IN], dates[N_IN:], strict=True)],
        title=f"{sel.label} on {sel.glacier.name}: inputs (frames {idx[0]}–{idx[3]}), targets and predictions (frames {idx[4]}–{idx[7]})",
        pdf=pdf,
    )
    print(f"wrote {out_dir}/ (npy, images, GeoTIFF, scene.json) and {fig[0]}")
    return scene
