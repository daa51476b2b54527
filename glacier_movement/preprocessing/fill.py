"""Missing pixels: the 5×5 kernel of Vonica, Ancuța & Frîncu (2021), pass after pass
(docs/preprocessing.md)."""

from __future__ import annotations

import cv2
import numpy as np

#: One axis of the 5×5 kernel of Vonica et al. (2021); the kernel is its outer product
#: (1 2 3 2 1 / 2 4 6 4 2 / 3 6 9 6 3 / 2 4 6 4 2 / 1 2 3 2 1).
VONICA_1D = np.array([1.0, 2.0, 3.0, 2.0, 1.0])
VONICA_KERNEL = np.outer(VONICA_1D, VONICA_1D)
_VONICA_1D32 = VONICA_1D.astype(np.float32)
_VONICA_32 = VONICA_KERNEL.ravel().astype(np.float32)

#: fill_missing gathers the 25 neighbours of each missing pixel instead of filtering the whole
#: bounding box when 25 · (missing pixels) is below this fraction of the box's area.
_GATHER_FRACTION = 0.5


# ------------------------------------------------------------------------------ missing pixels
def fill_missing(band: np.ndarray, max_passes: int | None = None) -> np.ndarray:
    """Fill the missing (NaN) pixels of one band with the 5×5 Vonica kernel, pass after pass.

    ``band`` is (H, W), any unit (here DN); NaN marks a missing pixel. In one pass every missing
    pixel that has at least one valid pixel in its 5×5 neighbourhood (inside the image) becomes
    the kernel-weighted mean of those valid pixels, computed from the pixels valid at the START of
    the pass (pixels filled in the same pass do not feed each other). Passes repeat until nothing
    is missing, or ``max_passes`` passes have run (then NaN may remain). One pass is exactly the
    normalized convolution ``conv(value·valid, w) / conv(valid, w)`` at missing pixels where the
    denominator is > 0, in float64. It is evaluated as two separable 5-tap filters over the
    bounding box of what is still missing, or, when few pixels are left (the later passes), as
    a gather of their 25 neighbours and a product with the kernel: the same sums either way.
    Only missing pixels change.

    Returns a new array of the input's float dtype (float64 for integer input).
    Raises ``ValueError`` when the band is not 2-D, holds infinities, or is entirely missing.
    """
    a = np.asarray(band)
    if a.ndim != 2:
        raise ValueError(f"fill_missing expects one 2-D band, got shape {a.shape}")
    out_dtype = a.dtype if np.issubdtype(a.dtype, np.floating) else np.dtype(np.float64)
    missing = np.isnan(a)
    n_missing = int(np.count_nonzero(missing))
    if n_missing == 0:
        return a.astype(out_dtype, copy=True)
    if n_missing == missing.size:
        raise ValueError(
            f"the band ({a.shape[0]}×{a.shape[1]}) is entirely missing: nothing to fill from"
        )
    if int(np.count_nonzero(~np.isfinite(a))) != n_missing:
        raise ValueError("the band holds infinite values; only NaN may mark missing pixels")

    # Zero-padded (2 px, the kernel radius) value·valid and valid images: outside the image
    # counts as missing, and every 5×5 window of an image pixel lies inside the padded arrays.
    h, w = a.shape
    pw = w + 4
    vp = np.zeros((h + 4, pw))
    vp[2:-2, 2:-2] = a
    mp = np.zeros((h + 4, pw), dtype=np.float32)  # 0/1 and sums ≤ 81: exact in float32
    mp[2:-2, 2:-2] = ~missing
    rows, cols = np.divmod(np.flatnonzero(missing), w)
    idx = (rows + 2) * pw + (cols + 2)  # flat indices of missing pixels in the padded arrays
    vp.ravel()[idx] = 0.0
    offsets = (np.arange(-2, 3)[:, None] * pw + np.arange(-2, 3)[None, :]).ravel()
    vflat, mflat = vp.ravel(), mp.ravel()  # views: writes go into vp/mp
    n_left = len(idx)
    is_missing = np.zeros(vflat.size, dtype=bool)  # padded flat; the border is not "missing"
    is_missing[idx] = True
    slot = np.empty(vflat.size, dtype=np.int64)  # scratch for deduplicating the frontier
    cand = idx  # the pixels this pass can fill (all missing ones, or the frontier)
    passes = 0
    r, c = rows + 2, cols + 2  # padded coordinates of the candidates
    while n_left and (max_passes is None or passes < max_passes):
        if passes:
            r, c = np.divmod(cand, pw)
        num, den = _pass_sums(vp, mp, cand, r, c, offsets)
        # den holds exact small integers (sums of integer weights), so "> 0.5" is "> 0".
        ok = den > 0.5
        filled = cand[ok]
        if not len(filled):  # cannot happen while a valid pixel exists; never loop forever
            raise ValueError(f"{n_left} missing pixels have no valid pixel within reach")
        vflat[filled] = num[ok] / den[ok]
        mflat[filled] = 1.0
        is_missing[filled] = False
        n_left -= len(filled)
        passes += 1
        cand = _next_candidates(filled, offsets, is_missing, slot, n_left)
    out = vp[2:-2, 2:-2].astype(out_dtype, copy=True)
    if n_left:
        r, c = np.divmod(np.flatnonzero(is_missing), pw)
        out[r - 2, c - 2] = np.nan
    return out


def _pass_sums(
    vp: np.ndarray,
    mp: np.ndarray,
    cand: np.ndarray,
    r: np.ndarray,
    c: np.ndarray,
    offsets: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """One :func:`fill_missing` pass's kernel sums at the candidate pixels.

    ``vp`` (H+4, W+4) float64 value·valid and ``mp`` (H+4, W+4) float32 valid (0/1) are the
    zero-padded images; ``cand`` (n,) flat indices into them, ``r``/``c`` (n,) the same as padded
    rows and columns; ``offsets`` (25,) the flat offsets of a 5×5 window. Returns (num (n,) float64
    = Σ w·value·valid, den (n,) float32 = Σ w·valid): a gather of the 25 neighbours when few pixels
    are left, else two separable 5-tap filters over their bounding box (the same sums).
    """
    r0, r1, c0, c1 = r.min() - 2, r.max() + 3, c.min() - 2, c.max() + 3
    if len(cand) * 25 < _GATHER_FRACTION * (r1 - r0) * (c1 - c0):
        near = cand[:, None] + offsets  # (n, 25) neighbours
        num = np.take(vp.ravel(), near) @ VONICA_KERNEL.ravel()
        den = np.take(mp.ravel(), near) @ _VONICA_32
        return num, den
    # The box reaches 2 px beyond every candidate, so its own border (zeros) never
    # enters a candidate's sum.
    box = (r - r0) * (c1 - c0) + (c - c0)
    num = cv2.sepFilter2D(
        vp[r0:r1, c0:c1], cv2.CV_64F, VONICA_1D, VONICA_1D, borderType=cv2.BORDER_CONSTANT
    ).ravel()[box]
    den = cv2.sepFilter2D(
        mp[r0:r1, c0:c1],
        cv2.CV_32F,
        _VONICA_1D32,
        _VONICA_1D32,
        borderType=cv2.BORDER_CONSTANT,
    ).ravel()[box]
    return num, den


def _next_candidates(
    filled: np.ndarray,
    offsets: np.ndarray,
    is_missing: np.ndarray,
    slot: np.ndarray,
    n_left: int,
) -> np.ndarray:
    """The padded flat indices (m,) that the next :func:`fill_missing` pass visits.

    A pixel fillable in the next pass has a valid neighbour now but had none at the start of
    this pass: a neighbour ``filled`` (flat indices) in this pass. When that frontier is small
    (nodata wedges: ~150 thin passes), only its missing pixels are visited (each once, at its
    last occurrence in the gathered neighbours); otherwise every pixel still missing (``is_missing``, padded flat
    bool). ``slot`` is int64 scratch of the padded size; ``n_left`` the pixels still missing.
    """
    if 25 * len(filled) < n_left:
        near = (filled[:, None] + offsets).ravel()
        near = near[is_missing[near]]
        # Deduplicate without sorting: the last write of each index wins.
        order = np.arange(len(near))
        slot[near] = order
        return near[slot[near] == order]
    return np.flatnonzero(is_missing)
