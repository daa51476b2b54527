"""Skill against climatology and the share of the available skill, with clustered, paired
intervals (docs/evaluation.md, docs/statistics.md).

An error alone does not say whether a forecast knows anything a calendar does not. The **skill
against climatology** of a forecast is

    skill = 1 − mean(MSE_forecast) / mean(MSE_climatology)

over the same sequences (the pooled means of :mod:`metrics`): 0 = as good as the climatology,
1 = perfect, < 0 = worse. On synthetic data the ``oracle`` — the best forecast the generator
allows from what is known at forecast time — has the largest skill any forecast can expect: the
**available skill**. A forecast's **share of the available skill** is skill / available skill
(1 = it takes all there is; the oracle's own share is 1).

Intervals
---------
The same resampling as :func:`metrics.bootstrap_distribution`: whole clusters (forecast start ×
glacier) with replacement and, for a forecast with S > 1 training seeds, the seeds independently
of the clusters (Owen's two-way bootstrap). It is **paired**: one draw of clusters (and seeds)
scores the forecast, the climatology and the oracle together, so what they share — a hard start,
an odd target window — cancels in the ratios instead of widening them. The interval is the
percentile interval of the bootstrap distribution of the ratio; its ``mean`` is the statistic on
the original sample.

The share is a ratio of two skills; it is not defined where the available skill is below
:data:`MIN_AVAILABLE` (NaN then: a ratio to almost nothing — e.g. off a glacier whose only
predictable change is its motion — is noise). When more than (1 − confidence)/2 of the
resamples have an available skill below it, the share's interval is not defined either (NaN
ends: the oracle is not distinguishable from the climatology); below that, those resamples are
left out.

Shapes: per-sequence errors ``model`` (N,) or (S, N) (seeds × sequences), ``climatology`` and
``oracle`` (N,) (deterministic forecasts), ``clusters`` (N,) labels. Sequences where any of them
is NaN (e.g. ``MSE_glacier`` of a patch without glacier pixels) are left out of all three.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import GlacierError
from .metrics import Interval, cluster_codes

#: The columns :func:`add_skill_columns` adds to a results table (the whole-sequence MSE); the
#: per-lead and glacier / off-glacier variants carry the part's suffix before ``_low``/``_high``
#: (``skill_climatology_l1``, ``skill_climatology_l1_low``, …, ``share_available_glacier_high``).
SKILL_COLUMNS = (
    "skill_climatology",
    "skill_climatology_low",
    "skill_climatology_high",
    "available_skill",
    "share_available",
    "share_available_low",
    "share_available_high",
)
#: The smallest available skill a share of it is computed against (1 % of the climatology's MSE).
MIN_AVAILABLE = 0.01
#: Names of the reference forecasts in the per-sequence rows.
CLIMATOLOGY, ORACLE = "climatology", "oracle"

# Bound the (chunk × seeds × clusters) float64 work arrays of one bootstrap chunk (~32 MB).
_CHUNK_ELEMENTS = 4_000_000


@dataclass(frozen=True)
class Skill:
    """Skill of one forecast: ``skill`` against climatology, the oracle's ``available`` skill and
    the ``share`` skill / available (None without an oracle), each with its interval."""

    skill: Interval
    available: Interval | None = None
    share: Interval | None = None


def _draw_counts(rng: np.random.Generator, r: int, k: int) -> np.ndarray:
    """(r, k) float64: how often each of k units is drawn in k draws with replacement, r times."""
    idx = rng.integers(0, k, size=(r, k))
    flat = (idx + k * np.arange(r)[:, None]).ravel()
    return np.bincount(flat, minlength=r * k).reshape(r, k).astype(np.float64)


def _as_2d(values, name: str) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    v = v[None] if v.ndim == 1 else v
    if v.ndim != 2 or v.size == 0:
        raise GlacierError(
            f"{name} must be per-sequence errors (N,) or per seed × sequence (S, N), "
            f"got shape {np.shape(values)}"
        )
    return v


def _interval(point: float, dist: np.ndarray, confidence: float) -> Interval:
    alpha = (1 - confidence) / 2
    if np.isnan(point) or np.mean(np.isnan(dist)) > alpha:
        return Interval(point, math.nan, math.nan)
    low, high = np.nanquantile(dist, [alpha, 1 - alpha])
    return Interval(point, float(low), float(high))


def skill_scores(
    model: np.ndarray | Sequence[float],
    climatology: np.ndarray | Sequence[float],
    clusters: Sequence[Hashable] | np.ndarray,
    oracle: np.ndarray | Sequence[float] | None = None,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    resample_seeds: bool = True,
) -> Skill:
    """Skill against climatology, available skill and share of it, with paired cluster intervals.

    ``model`` (N,) or (S, N) per-sequence MSE (NDSI²) of a forecast; ``climatology`` and
    ``oracle`` (N,) those of the climatology and the oracle on the same sequences; ``clusters``
    (N,) one label per sequence. See the module's docstring for the statistic and the resampling.
    ``n_resamples`` 0, or fewer than 2 clusters, gives the point values with NaN interval ends.
    """
    if not 0 < confidence < 1:
        raise GlacierError(
            f"the confidence level must lie strictly between 0 and 1, got {confidence}"
        )
    if n_resamples < 0:
        raise GlacierError(f"the number of bootstrap resamples must be ≥ 0, got {n_resamples}")
    m = _as_2d(model, "model")
    n = m.shape[1]
    c = _as_2d(climatology, "climatology")
    o = None if oracle is None else _as_2d(oracle, "oracle")
    for name, v in (("climatology", c), ("oracle", o)):
        if v is not None and v.shape != (1, n):
            raise GlacierError(
                f"{name} errors must be one per sequence of the model's, shape ({n},), "
                f"got {v.shape[1:] if v.shape[0] == 1 else v.shape}"
            )
    codes = cluster_codes(clusters, n)
    ok = np.isfinite(m).all(axis=0) & np.isfinite(c[0])
    if o is not None:
        ok &= np.isfinite(o[0])
    if not ok.any():
        raise GlacierError("no sequence has finite errors for the forecast, climatology and oracle")
    m, c, codes = m[:, ok], c[0, ok], codes[ok]
    o = None if o is None else o[0, ok]
    _, codes = np.unique(codes, return_inverse=True)
    g, n_seeds = int(codes.max()) + 1, m.shape[0]

    # per seed × cluster sums; every forecast covers the same sequences, so counts cancel
    offsets = (np.arange(n_seeds)[:, None] * g + codes[None]).ravel()
    sums_m = np.bincount(offsets, weights=m.ravel(), minlength=n_seeds * g).reshape(n_seeds, g)
    sums_c = np.bincount(codes, weights=c, minlength=g)
    sums_o = None if o is None else np.bincount(codes, weights=o, minlength=g)

    def ratio(num, den):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(den > 0, 1.0 - num / den, np.nan)

    skill0 = float(ratio(sums_m.sum() / n_seeds, sums_c.sum()))
    avail0 = None if sums_o is None else float(ratio(sums_o.sum(), sums_c.sum()))
    share0 = None if avail0 is None else (skill0 / avail0 if avail0 >= MIN_AVAILABLE else math.nan)

    if n_resamples == 0 or g < 2:
        nan = math.nan
        return Skill(
            Interval(skill0, nan, nan),
            None if avail0 is None else Interval(avail0, nan, nan),
            None if share0 is None else Interval(share0, nan, nan),
        )
    rng = np.random.default_rng(seed)
    two_way = n_seeds > 1 and resample_seeds
    dist = np.empty((3, n_resamples))
    chunk = max(1, _CHUNK_ELEMENTS // (g * n_seeds))
    for start in range(0, n_resamples, chunk):
        r = min(chunk, n_resamples - start)
        w = _draw_counts(rng, r, g)  # (r, G) the clusters of this draw, for every forecast
        if two_way:
            s_w = _draw_counts(rng, r, n_seeds)  # (r, S) the seeds, independently of clusters
            num_m = np.einsum("rg,rg->r", w, s_w @ sums_m) / n_seeds
        else:
            num_m = w @ sums_m.sum(axis=0) / n_seeds
        den = w @ sums_c
        dist[0, start : start + r] = ratio(num_m, den)
        if sums_o is not None:
            avail = ratio(w @ sums_o, den)
            dist[1, start : start + r] = avail
            with np.errstate(divide="ignore", invalid="ignore"):
                dist[2, start : start + r] = np.where(
                    avail >= MIN_AVAILABLE, dist[0, start : start + r] / avail, np.nan
                )
    skill = _interval(skill0, dist[0], confidence)
    if avail0 is None:
        return Skill(skill)
    assert share0 is not None  # set whenever avail0 is
    return Skill(
        skill, _interval(avail0, dist[1], confidence), _interval(share0, dist[2], confidence)
    )


# ------------------------------------------------------------------------------------- tables
def skill_parts(columns: Sequence[str]) -> dict[str, str]:
    """Error column → column suffix of the skill scores: ``MSE`` → "", ``MSE_l1`` → "_l1", …,
    ``MSE_glacier`` → "_glacier", ``MSE_off`` → "_off" (those present in ``columns``)."""
    parts = {"MSE": ""} if "MSE" in columns else {}
    leads = sorted(
        (c for c in columns if c.startswith("MSE_l") and c[5:].isdigit()), key=lambda c: int(c[5:])
    )
    parts |= {c: c[3:] for c in leads}
    parts |= {c: c[3:] for c in ("MSE_glacier", "MSE_off") if c in columns}
    return parts


def _columns(sfx: str) -> tuple[str, ...]:
    """:data:`SKILL_COLUMNS` with ``sfx`` (e.g. "_l1") before ``_low``/``_high`` or at the end."""
    out = []
    for c in SKILL_COLUMNS:
        end = next((e for e in ("_low", "_high") if c.endswith(e)), "")
        out.append(f"{c[: len(c) - len(end)]}{sfx}{end}")
    return tuple(out)


def skill_rows(
    per_sequence: pd.DataFrame,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    climatology: str = CLIMATOLOGY,
    oracle: str = ORACLE,
) -> pd.DataFrame:
    """Skill columns of every predictor from per-sequence rows.

    ``per_sequence``: rows as :func:`evaluation.score_rows` takes them — ``predictor``, ``key``
    (pairs the sequences of different predictors), ``cluster``, ``seed`` and the error columns
    ``MSE``, ``MSE_l1`` …, ``MSE_glacier``, ``MSE_off`` (those present). Needs a ``climatology``
    predictor; the ``oracle`` is optional (NaN available skill and share without it). One row per
    predictor: ``model`` and, for each part (:func:`skill_parts`), :data:`SKILL_COLUMNS` with the
    part's suffix.
    """
    preds = per_sequence["predictor"].unique()
    if climatology not in preds:
        raise GlacierError(
            f"no {climatology!r} rows among the predictors ({', '.join(map(str, preds))}): "
            "score the climatology on the same sequences"
        )
    keys = np.sort(np.asarray(per_sequence["key"].unique()))
    clusters = per_sequence.drop_duplicates("key").set_index("key").loc[keys, "cluster"].to_numpy()
    parts = skill_parts([str(c) for c in per_sequence.columns])

    cache: dict[tuple[str, str], np.ndarray] = {}

    def matrix(name: str, col: str) -> np.ndarray:
        if (name, col) in cache:
            return cache[name, col]
        sub = per_sequence[per_sequence["predictor"] == name]
        wide = sub.pivot_table(
            index="seed", columns="key", values=col, aggfunc="first", dropna=False
        )
        if wide.shape[1] != len(keys) or not set(keys) <= set(wide.columns):
            raise GlacierError(
                f"predictor {name!r} was scored on {wide.shape[1]} of the {len(keys)} sequences: "
                "score every predictor on the same test set"
            )
        cache[name, col] = wide[keys].to_numpy(dtype=np.float64)
        return cache[name, col]

    rows = []
    for name in preds:
        row: dict[str, object] = {"model": name}
        for col, sfx in parts.items():
            names = _columns(sfx)
            ref = matrix(climatology, col)[0]
            orc = matrix(oracle, col)[0] if oracle in preds else None
            sk = skill_scores(matrix(name, col), ref, clusters, orc, n_resamples, confidence, seed)
            row |= dict(zip(names[:3], (sk.skill.mean, sk.skill.low, sk.skill.high), strict=True))
            if sk.available is None or sk.share is None:
                row |= dict.fromkeys(names[3:], math.nan)
            else:
                row[names[3]] = sk.available.mean
                row |= dict(
                    zip(names[4:], (sk.share.mean, sk.share.low, sk.share.high), strict=True)
                )
        rows.append(row)
    return pd.DataFrame(rows)


def add_skill_columns(
    results: pd.DataFrame,
    per_sequence: pd.DataFrame,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """``results`` (one row per predictor, its name in ``model``) with the skill columns of
    :func:`skill_rows` added, matched on ``model``.

    When ``results`` has a ``targets`` column (:func:`evaluation.summarize`: "observed" = the
    sequences whose target windows were all observed, "all"), each of its groups gets the skill
    of the matching sequences (``per_sequence["observed"]``). Predictors without per-sequence
    rows get NaN.
    """
    if "targets" not in results:
        return results.merge(
            skill_rows(per_sequence, n_resamples, seed, confidence), on="model", how="left"
        )
    parts = []
    for targets, sub in results.groupby("targets", sort=False):
        if targets == "observed":
            if "observed" not in per_sequence:
                raise GlacierError(
                    "per-sequence rows need an 'observed' column for targets=observed"
                )
            seqs = per_sequence.loc[per_sequence["observed"].astype(bool)]
        elif targets == "all":
            seqs = per_sequence
        else:
            raise GlacierError(f"unknown targets {targets!r}: expected 'observed' or 'all'")
        parts.append(
            sub.merge(
                skill_rows(pd.DataFrame(seqs), n_resamples, seed, confidence),
                on="model",
                how="left",
            )
        )
    return pd.concat(parts, ignore_index=True)
