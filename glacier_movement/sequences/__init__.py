"""Patches and sequences of NDSI frames, without one file per sequence (docs/preprocessing.md).

The original cut every frame into 50×50 patches with stride 10 and wrote two pickle files per
sequence (about 80 KB each sequence, over 13 GB for Parvati). Sequences overlap heavily, so here
they are *views* into the frames: a sequence is fully described by its start frame and its patch
position, and :class:`SequenceDataset` serves it on demand.

Terms and shapes
----------------
- frames: float32 (T, H, W) masked NDSI (0 or in [0.3, 1]), one per seasonal window.
- patch grid: ``nR = (H − P) // stride + 1`` rows and ``nC = (W − P) // stride + 1`` columns of
  P×P patches (Parvati 800² → 76×76 = 5,776; Aletsch 600² → 56×56 = 3,136).
- sequence i ↔ (start s, row r, col c), in that order (start-major, then row, then col):
  ``i = (s · nR + r) · nC + c``; input = frames s … s+n_in−1, target = frames
  s+n_in … s+n_in+n_out−1 at that patch, shapes (n_in, P, P) and (n_out, P, P).
- starts: s = 0 … T' − (n_in + n_out), T' = ``max_frame`` or T (Parvati 36 → 29 starts,
  167,504 sequences; Aletsch's first 19 frames → 12 starts, 37,632 sequences).

Splits (:func:`split_indices`): ``paper`` takes, in index order (= time order), the first 80 % for
training + validation and the last 20 % for testing, and the last 10 % of the first part for
validation; ``strict`` additionally drops every training/validation sequence that contains (as
input or target) a frame that is a target of any test sequence, then splits the rest 90/10.

Modules: ``patches`` (grid, extract, stitch), ``dataset`` (:class:`SequenceDataset`,
:class:`ConcatSequences`), ``splits`` (splits, bootstrap, batch sampler and loader) and ``stage``
(the command, export).
"""

from __future__ import annotations

from .dataset import ORIGINAL_BYTES_PER_SEQUENCE as ORIGINAL_BYTES_PER_SEQUENCE
from .dataset import ConcatSequences, SequenceDataset
from .patches import extract_patches, patch_grid, stitch_patches
from .splits import SPLIT_MODES as SPLIT_MODES
from .splits import IndexBatchSampler, Split, bootstrap_resample, make_loader, split_indices
from .stage import SequencesSettings, export_files, run

__all__ = [
    "patch_grid",
    "extract_patches",
    "stitch_patches",
    "SequenceDataset",
    "ConcatSequences",
    "IndexBatchSampler",
    "make_loader",
    "Split",
    "split_indices",
    "bootstrap_resample",
    "export_files",
    "SequencesSettings",
    "run",
]
