"""Clustered, paired bootstrap intervals for test scores (pure numpy; no torch, no I/O).

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

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from .errors import GlacierError

#: The words of :func:`verdict` (for a difference model − baseline of an error metric).
BETTER, WORSE, NOT_DISTINGUISHABLE = "better", "worse", "not distinguishable"

# Bound the (chunk × seeds × clusters) float64 work arrays of one bootstrap chunk to ~32 MB.
_CHUNK_ELEMENTS = 4_000_000


@dataclass(frozen=True)
class Interval:
    """A bootstrap interval of a mean.

    ``mean`` is the statistic on the original sample (the pooled mean), ``low`` and ``high`` the
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
