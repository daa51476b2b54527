"""Scene preprocessing: missing-pixel filling, ECC alignment, seasonal windows, NDSI frames.

This is the original ``createPatches.py`` / ``monthlyAverageScenesEnCC`` (docs/preprocessing.md), rebuilt:

1. crop the region of interest (ROI) and keep the green and swir16 bands (digital numbers, DN);
2. fill missing pixels with the 5×5 kernel of Vonica, Ancuța & Frîncu (2021), pass after pass
   (:func:`fill_missing`, a normalized convolution instead of a Python loop over pixels);
3. align every scene to the median-filtered temporal mean (:func:`align_scenes`): by default a
   translation by subpixel phase correlation, refined against the mean of the aligned scenes;
   the paper's ECC maximisation is an option; scenes are aligned in parallel threads, with a
   stated policy for scenes where the alignment fails. On synthetic data the residual
   misregistration against the generator's warps is reported (:func:`alignment_error`);
4. average the aligned scenes in fixed windows of ``window_months`` months per year
   (:func:`average_windows`);
5. NDSI = (green − swir16) / (green + swir16) and the snow/ice mask: NDSI where NDSI ≥ 0.3 else 0
   (:func:`ndsi`, :func:`snow_mask`);
6. empty windows are interpolated linearly in time and thresholded again; leading and trailing
   empty windows take the nearest window with data (:func:`interpolate_windows`).

The command ``glacier-movement preprocess --glacier G`` runs it on ``<root>/<G>/raw/<year>.npz``
and writes ``<root>/<G>/frames.npz`` (:class:`glacier_movement.io.Frames`), the alignment record
``<root>/<G>/alignment.npz`` and figures (a grid of all frames, an animated GIF).

The package's modules, in the order the data flows: ``fill`` (missing pixels), ``align``
(alignment, and its error against the synthetic generator's warps), ``windows`` (windows, NDSI,
the mask, the region of interest), ``scenes`` (scene files: listing, filtering, loading, filling)
and ``stage`` (the command). Every public name is importable from the package itself.
"""

from __future__ import annotations

from .align import (
    Alignment,
    AlignmentError,
    AlignOptions,
    align_scenes,
    alignment_error,
    ecc_template,
    find_warp,
    phase_shift,
    scene_gray,
    warp_scene,
)

# used by tests (private, kept importable from the package as before the split)
from .align import _standardize as _standardize
from .align import default_workers as default_workers
from .fill import VONICA_KERNEL, fill_missing
from .scenes import SceneRecord, is_synthetic, raw_files
from .stage import Preprocessed, PreprocessSettings, preprocess, run, run_preprocessing
from .stage import _motion_share_line as _motion_share_line
from .windows import (
    average_windows,
    interpolate_windows,
    ndsi,
    roi_transform,
    roi_window,
    snow_mask,
    window_index,
    window_label,
    window_starts,
)

__all__ = [
    "AlignOptions",
    "Alignment",
    "AlignmentError",
    "Preprocessed",
    "SceneRecord",
    "VONICA_KERNEL",
    "align_scenes",
    "alignment_error",
    "average_windows",
    "ecc_template",
    "fill_missing",
    "find_warp",
    "interpolate_windows",
    "is_synthetic",
    "ndsi",
    "phase_shift",
    "preprocess",
    "raw_files",
    "PreprocessSettings",
    "roi_transform",
    "roi_window",
    "run",
    "run_preprocessing",
    "scene_gray",
    "snow_mask",
    "warp_scene",
    "window_index",
    "window_label",
    "window_starts",
]
