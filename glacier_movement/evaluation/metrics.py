"""Scores and bootstrap intervals of forecasts (numpy and scipy; no torch, no I/O).

Scores
------
Per-pixel MSE and MAE (the paper's convention: the mean over every predicted pixel of every
sequence), SSIM and PSNR per predicted frame (data range 1.0, NDSI units), per lead time, on and
off the glacier, per tile of a full scene, and the spatial structure of a forecast (spatial sd,
pattern and anomaly correlation). Shapes: ``pred``/``target`` (B, T, H, W) or (T, H, W) NDSI.

What is resampled and why
-------------------------
A test set is many overlapping patch sequences cut from a few scenes: all sequences that share a
forecast start time of one glacier see the same input frames and the same target frames, so their
errors move together (one cloudy or interpolated target window raises them all). Resampling
sequences as if they were independent then treats hundreds of near-copies as hundreds of
replicates, and the interval comes out about 10× too narrow. The independent units are the
**clusters** — forecast start time × glacier — so :func:`cluster_bootstrap` resamples whole
clusters with replacement (the cluster bootstrap of Cameron, Gelbach & Miller 2008) and keeps every
sequence of a drawn cluster.

A trained model adds a second source of variation: its training seed. With per-seed errors
``values`` of shape (S, N) the bootstrap resamples **seeds and clusters independently** (the
crossed, "pigeonhole" two-way bootstrap of Owen 2007), so the interval covers both "another set of
start times" and "another training run". Owen shows the scheme is mildly conservative (it counts
the seed × cluster interaction in both margins); it never understates either source.

The statistic is the pooled mean over every sequence (and seed) of the drawn units — a ratio
estimator, sum of values / number of values — so a cluster with more sequences weighs more, exactly
as in the point estimate on the original sample. The interval is the percentile interval of the
bootstrap distribution.

Comparisons are **paired** (:func:`paired_difference`): the difference model − baseline is formed
per sequence (and seed) first, and the same draw of clusters and seeds scores both, so what the two
share — a hard start time, a bad target window — cancels. :func:`verdict` turns the paired interval
of an error difference into the report's words: "better" only when the whole interval lies below
0, "worse" when above, otherwise "not distinguishable".

Shapes: ``values`` (N,) per-sequence errors (e.g. MSE in NDSI², MAE in NDSI) or (S, N) per
training seed × sequence; ``clusters`` (N,) hashable labels (``"parvati|2019-07-01"``, ints, or
tuples). See ``docs/statistics.md``.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage, stats

from ..errors import GlacierError

#: The words of :func:`verdict` (for a difference model − baseline of an error metric).
BETTER, WORSE, NOT_DISTINGUISHABLE = "better", "worse", "not distinguishable"

#: Score columns of a sequence (:func:`sequence_scores`).
METRICS = ("MSE", "MAE", "SSIM", "PSNR")
#: PSNR of a frame predicted without any error is infinite; it is capped here (MSE floor 1e-10
#: for data range 1) so that means stay finite and the ordering of predictors is kept.
PSNR_MAX_DB = 100.0

# Bound the (chunk × seeds × clusters) float64 work arrays of one bootstrap chunk to ~32 MB.
_CHUNK_ELEMENTS = 4_000_000


@dataclass(frozen=True)
class Interval:
    """A bootstrap interval of a mean.

    ``mean`` is the statistic on the original sample (the pooled mean; for
    :func:`bootstrap_interval` the mean of the bootstrap distribution), ``low`` and ``high`` the
    (1−c)/2 and (1+c)/2 percentiles of its bootstrap distribution (2.5 / 97.5 % for c = 0.95).
    Units are those of the values (NDSI² for MSE, NDSI for MAE).
    """

    mean: float
    low: float
    high: float

    @property
    def width(self) -> float:
        return self.high - self.low


def cluster_codes(clusters: Sequence[Hashable] | np.ndarray, n: int | None = None) -> np.ndarray:
    """Integer codes 0 … G−1 of the cluster labels (N,), in order of first appearance.

    Labels may be strings, ints or any hashable (e.g. ``(glacier, start)`` tuples). ``n``, when
    given, is the number of sequences the labels must match.
    """
    arr = clusters if isinstance(clusters, np.ndarray) else None
    if arr is not None and arr.ndim == 1 and arr.dtype.kind in "iubUS":
        # fast path: np.unique sorts, so re-rank the codes by first appearance
        _, first, inverse = np.unique(arr, return_index=True, return_inverse=True)
        rank = np.empty(first.size, dtype=np.int64)
        rank[np.argsort(first, kind="stable")] = np.arange(first.size)
        codes = rank[inverse.reshape(-1)]
    else:
        if arr is not None and arr.ndim != 1:
            raise GlacierError(
                f"cluster labels must be one label per sequence, shape (N,), got shape {arr.shape}"
            )
        labels = list(clusters)
        index: dict[Hashable, int] = {}
        try:
            codes = np.fromiter(
                (index.setdefault(k, len(index)) for k in labels), dtype=np.int64, count=len(labels)
            )
        except TypeError as exc:
            raise GlacierError(
                f"cluster labels must be hashable (strings, ints or tuples): {exc}"
            ) from None
    if n is not None and codes.size != n:
        raise GlacierError(
            f"got {codes.size} cluster labels for {n} sequences; give one label per sequence"
        )
    return codes


def n_clusters(clusters: Sequence[Hashable] | np.ndarray) -> int:
    """Number of distinct cluster labels (independent units of the bootstrap)."""
    codes = cluster_codes(clusters)
    return int(codes.max()) + 1 if codes.size else 0


def _as_seeds_by_sequences(values: np.ndarray | Sequence[float], name: str) -> np.ndarray:
    """``values`` as a finite float64 (S, N) array; (N,) becomes (1, N)."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 1:
        v = v[None]
    if v.ndim != 2 or v.size == 0:
        raise GlacierError(
            f"{name} must be per-sequence errors (N,) or per seed × sequence (S, N), "
            f"got shape {np.shape(values)}"
        )
    if not np.isfinite(v).all():
        raise GlacierError(
            f"{name} contains {int((~np.isfinite(v)).sum())} NaN/inf values; "
            "drop those sequences (and their cluster labels) before the bootstrap"
        )
    return v


def bootstrap_distribution(
    values: np.ndarray | Sequence[float],
    clusters: Sequence[Hashable] | np.ndarray,
    n_resamples: int = 2000,
    seed: int = 0,
    resample_seeds: bool = True,
) -> np.ndarray:
    """Bootstrap distribution (n_resamples,) of the pooled mean, resampling whole clusters.

    ``values`` (N,) or (S, N); ``clusters`` (N,). Each resample draws G clusters with
    replacement (G = number of clusters) and, when S > 1 and ``resample_seeds``, S seeds with
    replacement, independently of the clusters (Owen's two-way bootstrap); the statistic is
    sum of the drawn values / their number.

    Implementation: the per seed × cluster sums (S, G) and per-cluster counts (G,) are computed
    once; a resample is a count vector over clusters (how often each was drawn) and one over
    seeds, so the statistic of a chunk of resamples is two matrix products. ``scipy.stats.
    bootstrap`` can resample clusters for S = 1 (paired sums and counts, ratio statistic) but not
    the crossed seeds × clusters scheme, and it materialises the resampled data; one count-matrix
    code path serves both cases and costs O(n_resamples × S × G), independent of N.
    """
    v = _as_seeds_by_sequences(values, "values")
    n_seeds, n = v.shape
    codes = cluster_codes(clusters, n)
    g = int(codes.max()) + 1
    if g < 2:
        raise GlacierError(
            f"a bootstrap interval needs at least 2 independent clusters (forecast start × "
            f"glacier), got {g}; score more start times or glaciers"
        )
    if n_resamples < 1:
        raise GlacierError(f"the number of bootstrap resamples must be positive, got {n_resamples}")

    counts = np.bincount(codes, minlength=g).astype(np.float64)  # (G,)
    # (S, G) sums: one bincount over seed-offset codes
    offsets = (np.arange(n_seeds)[:, None] * g + codes[None]).ravel()
    sums = np.bincount(offsets, weights=v.ravel(), minlength=n_seeds * g).reshape(n_seeds, g)
    two_way = n_seeds > 1 and resample_seeds

    rng = np.random.default_rng(seed)
    out = np.empty(n_resamples, dtype=np.float64)
    chunk = max(1, _CHUNK_ELEMENTS // (g * max(n_seeds, 1)))
    for start in range(0, n_resamples, chunk):
        r = min(chunk, n_resamples - start)
        w = _draw_counts(rng, r, g)  # (r, G): times each cluster is drawn
        if two_way:
            s_w = _draw_counts(rng, r, n_seeds)  # (r, S): times each seed is drawn
            num = np.einsum("rg,rg->r", w, s_w @ sums)
        else:
            num = w @ sums.sum(axis=0)
        # every drawn seed sees the same sequences: the count is S × the drawn clusters' sizes
        out[start : start + r] = num / (n_seeds * (w @ counts))
    return out


def _draw_counts(rng: np.random.Generator, r: int, k: int) -> np.ndarray:
    """(r, k) float64 counts: each row is how often each of k units is drawn in k draws."""
    idx = rng.integers(0, k, size=(r, k))
    flat = (idx + k * np.arange(r)[:, None]).ravel()
    return np.bincount(flat, minlength=r * k).reshape(r, k).astype(np.float64)


def cluster_bootstrap(
    values: np.ndarray | Sequence[float],
    clusters: Sequence[Hashable] | np.ndarray,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    resample_seeds: bool = True,
) -> Interval:
    """Percentile interval of the pooled mean of ``values``, resampling whole clusters.

    ``values``: (N,) per-sequence errors or (S, N) per training seed × sequence; ``clusters``:
    (N,) labels, one per sequence (forecast start × glacier). ``mean`` of the result is the
    pooled mean of the original sample; ``low``/``high`` the percentile interval of
    :func:`bootstrap_distribution`. With S > 1, seeds are resampled too (two-way) unless
    ``resample_seeds`` is False (then the interval is conditional on these seeds).
    """
    if not 0 < confidence < 1:
        raise GlacierError(
            f"the confidence level must lie strictly between 0 and 1, got {confidence}"
        )
    v = _as_seeds_by_sequences(values, "values")
    dist = bootstrap_distribution(v, clusters, n_resamples, seed, resample_seeds)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(dist, [alpha, 1 - alpha])
    return Interval(float(v.mean()), float(low), float(high))


def paired_difference(
    a: np.ndarray | Sequence[float],
    b: np.ndarray | Sequence[float],
    clusters: Sequence[Hashable] | np.ndarray,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    resample_seeds: bool = True,
) -> Interval:
    """Paired interval of pooled mean(a) − pooled mean(b) over the same clusters (and seeds).

    ``a``: (S, N) or (N,) errors of a model; ``b``: (N,) errors of a deterministic baseline
    (broadcast over the seeds) or the same shape as ``a``. Because the pooled mean is linear and
    both are scored on the same draw, this is the cluster bootstrap of the per-sequence
    difference a − b — what the two share cancels before resampling.
    """
    a_ = _as_seeds_by_sequences(a, "a")
    b_ = _as_seeds_by_sequences(b, "b")
    if a_.shape[1] != b_.shape[1] or (b_.shape[0] != 1 and b_.shape[0] != a_.shape[0]):
        raise GlacierError(
            f"paired errors must cover the same sequences: a has shape {np.shape(a)}, b has shape "
            f"{np.shape(b)}; b must be (N,) or the same (S, N) as a"
        )
    return cluster_bootstrap(a_ - b_, clusters, n_resamples, confidence, seed, resample_seeds)


def verdict(iv: Interval) -> str:
    """Words for the interval of a difference model − baseline of an error metric.

    "better" when the whole interval lies below 0, "worse" when above 0, otherwise (including an
    end exactly at 0) "not distinguishable".
    """
    if not (np.isfinite(iv.low) and np.isfinite(iv.high)) or iv.low > iv.high:
        raise GlacierError(f"not a valid interval: [{iv.low}, {iv.high}]")
    if iv.high < 0:
        return BETTER
    if iv.low > 0:
        return WORSE
    return NOT_DISTINGUISHABLE


# --------------------------------------------------------------------------------------- scores
def sequence_errors(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-sequence mean squared and mean absolute error.

    ``pred``, ``target``: (B, T, H, W) NDSI. Returns two float64 arrays (B,): the mean over the
    T·H·W pixels of each sequence. All sequences have the same size, so the mean of these is the
    paper's per-pixel MSE/MAE over the whole set.
    """
    pred, target = _pair(pred, target)
    diff = pred.astype(np.float64) - target
    axes = tuple(range(1, diff.ndim))
    return np.mean(diff * diff, axis=axes), np.mean(np.abs(diff), axis=axes)


def mse(pred: np.ndarray, target: np.ndarray) -> float:
    """Per-pixel mean squared error over all pixels (the paper's MSE)."""
    pred, target = _pair(pred, target)
    return float(np.mean(np.square(pred.astype(np.float64) - target)))


def mae(pred: np.ndarray, target: np.ndarray) -> float:
    """Per-pixel mean absolute error over all pixels (the paper's MAE)."""
    pred, target = _pair(pred, target)
    return float(np.mean(np.abs(pred.astype(np.float64) - target)))


def ssim_frames(
    pred: np.ndarray, target: np.ndarray, data_range: float = 1.0, win_size: int = 7
) -> np.ndarray:
    """SSIM of every frame, (..., H, W) → (...).

    The same computation as ``skimage.metrics.structural_similarity(target, pred,
    data_range=data_range)`` per frame (7×7 uniform window, sample covariance, K1 = 0.01,
    K2 = 0.03, mean over the window centres at least 3 px from the border), vectorised over all
    frames at once instead of one call per frame. Frames smaller than 7 px use the largest odd
    window that fits.
    """
    pred, target = _pair(pred, target)
    win_size = min(win_size, *(s if s % 2 else s - 1 for s in pred.shape[-2:]))
    if win_size < 1:
        raise ValueError(f"frames of shape {pred.shape[-2:]} are too small for SSIM")
    x = target.astype(np.float64)
    y = pred.astype(np.float64)
    # one filter call over the five stacked moments (E[x], E[y], E[x²], E[y²], E[xy])
    ux, uy, uxx, uyy, uxy = np.asarray(
        ndimage.uniform_filter(np.stack([x, y, x * x, y * y, x * y]), size=win_size, axes=(-2, -1))
    )
    n = win_size * win_size
    cov_norm = n / (n - 1) if n > 1 else 1.0
    vx, vy, vxy = cov_norm * (uxx - ux * ux), cov_norm * (uyy - uy * uy), cov_norm * (uxy - ux * uy)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    pad = (win_size - 1) // 2
    h, w = s.shape[-2:]
    return s[..., pad : h - pad, pad : w - pad].mean(axis=(-2, -1))


def psnr_frames(
    pred: np.ndarray, target: np.ndarray, data_range: float = 1.0, max_db: float = PSNR_MAX_DB
) -> np.ndarray:
    """PSNR in dB of every frame, (..., H, W) → (...): 10·log10(range² / MSE), capped at ``max_db``.

    Equals ``skimage.metrics.peak_signal_noise_ratio(target, pred, data_range=data_range)``
    wherever that is finite; an exact prediction (e.g. an empty patch predicted empty) gets
    ``max_db`` instead of infinity.
    """
    pred, target = _pair(pred, target)
    err = np.mean(np.square(pred.astype(np.float64) - target), axis=(-2, -1))
    floor = data_range**2 * 10 ** (-max_db / 10)
    return 10 * np.log10(data_range**2 / np.maximum(err, floor))


def sequence_scores(pred: np.ndarray, target: np.ndarray) -> dict[str, np.ndarray]:
    """MSE, MAE, SSIM and PSNR of each sequence, (B, T, H, W) → {metric: (B,)}.

    SSIM and PSNR are per frame, then averaged over the sequence's T frames.
    """
    m2, m1 = sequence_errors(pred, target)
    return {
        "MSE": m2,
        "MAE": m1,
        "SSIM": ssim_frames(pred, target).mean(axis=-1),
        "PSNR": psnr_frames(pred, target).mean(axis=-1),
    }


def _pair(pred, target) -> tuple[np.ndarray, np.ndarray]:
    """``pred`` and ``target`` as arrays of the same shape (else ValueError)."""
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from target shape {target.shape}")
    return pred, target


def per_lead(pred: np.ndarray, target: np.ndarray) -> dict[str, np.ndarray]:
    """Per-sequence MSE and MAE of each lead time: (B, T, H, W) → {"MSE_l1": (B,), "MAE_l1": (B,),
    … "MAE_lT"} (NDSI², NDSI)."""
    d = pred.astype(np.float64) - target
    out = {}
    for k in range(d.shape[1]):
        out[f"MSE_l{k + 1}"] = np.mean(d[:, k] ** 2, axis=(-2, -1))
        out[f"MAE_l{k + 1}"] = np.mean(np.abs(d[:, k]), axis=(-2, -1))
    return out


def masked_errors(pred: np.ndarray, target: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
    """MSE over the glacier pixels (``mask`` (B, P, P)) and off them, per sequence, of ``pred``,
    ``target`` (B, T, P, P): {"MSE_glacier": (B,), "MSE_off": (B,)}; NaN where a sequence has none."""
    sq = (pred.astype(np.float64) - target) ** 2
    m = mask[:, None].astype(np.float64)
    n_on = m.sum(axis=(1, 2, 3)) * sq.shape[1]
    n_off = (1 - m).sum(axis=(1, 2, 3)) * sq.shape[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "MSE_glacier": np.where(n_on > 0, (sq * m).sum(axis=(1, 2, 3)) / n_on, np.nan),
            "MSE_off": np.where(n_off > 0, (sq * (1 - m)).sum(axis=(1, 2, 3)) / n_off, np.nan),
        }


def tile_errors(pred: np.ndarray, target: np.ndarray, tile: int) -> dict[str, np.ndarray]:
    """Per-pixel MSE and MAE of each ``tile``×``tile`` tile of a scene, over its 4 frames.

    ``pred``, ``target`` (T, H, W); the scene is cropped to whole tiles. Returns (n_tiles,) arrays.
    """
    t, h, w = target.shape
    ny, nx = h // tile, w // tile
    if ny * nx == 0:
        raise GlacierError(f"a {h}×{w} scene holds no {tile}×{tile} tile to resample")
    d = (pred - target)[:, : ny * tile, : nx * tile].astype(np.float64)
    d = d.reshape(t, ny, tile, nx, tile)
    return {
        "MSE": (d**2).mean(axis=(0, 2, 4)).ravel(),
        "MAE": np.abs(d).mean(axis=(0, 2, 4)).ravel(),
    }


def scene_scores(
    forecasts: Mapping[str, np.ndarray],
    targets: np.ndarray,
    tile: int,
    n_resamples: int = 1000,
    seed: int = 0,
) -> list[dict]:
    """MSE, MAE, SSIM and PSNR of full-scene forecasts against their targets, one row per forecast.

    ``forecasts``: name → (T, H, W) NDSI; ``targets`` (T, H, W). Each row holds ``predictor`` (the
    name), the four scores over the whole scene and ``MSE_low`` … ``MAE_high``: the 95 %
    percentile bootstrap interval (:func:`bootstrap_interval`) over the scene's ``tile``×``tile``
    tiles (the same tiles for every forecast), when there are at least 2 tiles and resamples.
    """
    rows = []
    for name, pred in forecasts.items():
        s = sequence_scores(pred[None], targets[None])
        row = {"predictor": name, **{m: float(v[0]) for m, v in s.items()}}
        for metric, values in tile_errors(pred, targets, tile).items():
            if values.size >= 2 and n_resamples > 0:
                ci = bootstrap_interval(values, n_resamples, seed=seed)
                row |= {f"{metric}_low": ci.low, f"{metric}_high": ci.high}
        rows.append(row)
    return rows


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two equally shaped arrays over all elements; NaN when one is constant."""
    a, b = a - a.mean(), b - b.mean()
    den = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return float((a * b).sum()) / den if den > 0 else math.nan


def structure_scores(
    forecasts: Mapping[str, np.ndarray], targets: np.ndarray, climatology: np.ndarray | None
) -> list[dict]:
    """Does a forecast carry the scene's structure, or is it a gray field near the mean?

    ``forecasts``: name → (T, H, W) NDSI; ``targets`` and ``climatology`` (T, H, W). One row per
    forecast and lead time: ``predictor``, ``lead`` (1 … T), ``spatial_sd`` (standard deviation
    over the scene's pixels, NDSI) beside the target's (``target_sd``), ``pattern_corr`` (Pearson
    correlation with the target over the pixels) and ``anomaly_corr`` (the same of the departures
    from the climatology — the anomaly correlation coefficient of forecast verification; NaN
    without a climatology).
    """
    clim = climatology
    rows = []
    for name, pred in forecasts.items():
        for k in range(targets.shape[0]):
            p, t = pred[k].astype(np.float64), targets[k].astype(np.float64)
            rows.append(
                {
                    "predictor": name,
                    "lead": k + 1,
                    "spatial_sd": float(p.std()),
                    "target_sd": float(t.std()),
                    "pattern_corr": _corr(p, t),
                    "anomaly_corr": math.nan if clim is None else _corr(p - clim[k], t - clim[k]),
                }
            )
    return rows


# ---------------------------------------------------------------------------- plain bootstrap
def bootstrap_interval(
    values: np.ndarray, n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> Interval:
    """Percentile bootstrap of the mean of ``values`` (N,), each value resampled independently
    (for values that are independent, e.g. the tiles of one scene; clustered data: see
    :func:`cluster_bootstrap`).

    Returns the mean of the bootstrap distribution and its (1−c)/2 and (1+c)/2 percentiles
    (2.5 / 97.5 % for c = 0.95), as the paper's bootstrap option did (docs/preprocessing.md).
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or values.size < 2:
        raise GlacierError(f"a bootstrap needs at least 2 test sequences, got {values.size}")
    if n_resamples < 1:
        raise GlacierError(f"--bootstrap must be a positive number of resamples, got {n_resamples}")
    res = stats.bootstrap(
        (values,),
        np.mean,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        # bound the resampled matrix (batch × N float64) to ~160 MB on large test sets
        batch=max(1, 20_000_000 // values.size),
        rng=np.random.default_rng(seed),
    )
    ci = res.confidence_interval
    return Interval(float(res.bootstrap_distribution.mean()), float(ci.low), float(ci.high))
