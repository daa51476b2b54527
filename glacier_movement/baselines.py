"""Forecasts a forecaster gets for free: persistence, climatology, seasonal-naive,
damped persistence and linear extrapolation (see docs/evaluation.md).

Every baseline predicts the ``n_out`` target frames of a sequence that starts at frame ``s`` from
what is known at forecast time: the input frames ``s … s+n_in−1`` and the glacier's frames before
its first test target frame (``first_test_target``). None of them reads a target frame.

- ``persistence``: the last input frame, repeated.
- ``climatology``: for target frame ``j``, the mean of the frames of the same window of the year
  (``window_of_year``) among the *observed* frames before ``first_test_target`` (interpolated
  windows are not observations).
- ``seasonal-naive``: the same window one year earlier, ``j − K·m`` with K windows per year and
  the smallest m that reaches a frame known at forecast time (``≤ s+n_in−1``).
- ``damped-persistence``: climatology plus the last input frame's departure from its own
  climatology times a per-lead factor ``a_k`` fitted by least squares on the training starts
  (anomaly persistence, the classic benchmark of seasonal forecasting), clipped to [0, 1].
- ``linear``: the last change continued, ``x_last + k·(x_last − x_prev)``, clipped to [0, 1].
- ``advect``: the glaciologist's free forecast (:mod:`advection`): the ice velocity tracked in
  the frames known at forecast time (``fit`` frames up to the last input), the last input carried
  by velocity × days on the glacier, the climatology elsewhere. Computed on whole frames, once
  per forecast start, and cropped to each sequence's patch (``take.crop``).

Beside them, on synthetic data only, the **oracle** (:data:`ORACLE`, :func:`oracle_scene`): the
ceiling a forecaster with the generator's knowledge reaches. It is not a baseline — it reads
``truth.npz`` — and is never ranked among the models (docs/evaluation.md).

Shapes: frames (T, H, W) masked NDSI; a forecast is (B, n_out, …) where … is the patch (P, P) of
a sequence or the whole frame (H, W), gathered through a ``take(stack, frame_indices)`` callable
so that the same code serves patch sequences and full scenes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import advection
from .errors import GlacierError
from .io import Frames, load_npz
from .models.baselines import extrapolate, persist
from .motion import advect, load_truth
from .sequences import SequenceDataset, split_indices

#: take(stack, frame_indices (B, k)) → (B, k, …): ``stack`` is "frames" or "clim". A take may
#: also have ``crop(scenes (U, k, H, W), which (B,)) → (B, k, …)``: the whole-frame forecasts of
#: U distinct starts cut to each sequence's patch (without it: ``scenes[which]``, whole frames).
Take = Callable[[str, np.ndarray], np.ndarray]
#: The oracle's name in the tables (docs/evaluation.md): a ceiling, never ranked.
ORACLE = "oracle"


def window_of_year(window_start: np.ndarray, window_months: int) -> np.ndarray:
    """Index of each window within its year, (T,) datetime64 → (T,) int in 0 … 12/months − 1."""
    months = np.asarray(window_start).astype("datetime64[M]").astype(np.int64) % 12
    return months // int(window_months)


def climatology_frames(frames: np.ndarray, woy: np.ndarray, fit: np.ndarray) -> np.ndarray:
    """The climatology of every frame's window of the year, (T, H, W) float32.

    ``fit`` (T,) bool marks the frames the climatology may be built from. A window of the year
    without any fit frame takes the mean of all fit frames.
    """
    frames = np.asarray(frames, dtype=np.float32)
    woy, fit = np.asarray(woy), np.asarray(fit, dtype=bool)
    if not fit.any():
        raise GlacierError(
            "no observed frame before the first test target to build a climatology from: "
            "preprocess more years"
        )
    overall = frames[fit].mean(axis=0, dtype=np.float64)
    by_window = {
        int(k): (
            frames[fit & (woy == k)].mean(axis=0, dtype=np.float64)
            if (fit & (woy == k)).any()
            else overall
        )
        for k in np.unique(woy)
    }
    return np.stack([by_window[int(k)] for k in woy]).astype(np.float32)


def fit_damping(
    frames: np.ndarray, clim: np.ndarray, starts: np.ndarray, n_in: int = 4, n_out: int = 4
) -> np.ndarray:
    """Least-squares factors a_k (n_out,) of anomaly persistence over the frames of ``starts``.

    a_k = Σ A_last·A_k / Σ A_last² over every pixel of every start, with A = frame − climatology,
    A_last the last input frame's anomaly and A_k the anomaly of target k; clipped to [0, 1]
    (a departure neither grows nor flips sign on average). No start → zeros (= climatology).
    """
    starts = np.asarray(starts, dtype=np.int64)
    if starts.size == 0:
        return np.zeros(n_out)
    anom = np.asarray(frames, np.float64) - clim
    last = anom[starts + n_in - 1]
    den = float((last * last).sum())
    if den == 0.0:
        return np.zeros(n_out)
    num = np.array([(last * anom[starts + n_in + k]).sum() for k in range(n_out)])
    return np.clip(num / den, 0.0, 1.0)


@dataclass
class Reference:
    """What the baselines (and the ``+clim`` models) know about one glacier.

    ``frames`` (T, H, W) NDSI; ``woy`` (T,) window of the year; ``per_year`` windows per year;
    ``first_test_target`` the first frame any test sequence predicts; ``fit`` (T,) the frames the
    climatology is built from; ``clim`` (T, H, W) the climatology of each frame's window;
    ``damping`` (n_out,) the anomaly-persistence factors.
    """

    frames: np.ndarray
    woy: np.ndarray
    per_year: int
    first_test_target: int
    fit: np.ndarray
    clim: np.ndarray
    damping: np.ndarray
    n_in: int = 4
    n_out: int = 4
    #: (T,) datetime64 window starts and the window length (months): ``advect``'s days
    window_start: np.ndarray | None = None
    window_months: int = 3
    #: (H, W) bool glacier pixels (synthetic: the true ice extent; :func:`attach_truth`)
    mask: np.ndarray | None = None
    #: synthetic data only (:func:`attach_truth`): true velocity (2, H, W) px/day; None = no oracle
    velocity: np.ndarray | None = None
    #: whole-frame forecasts per (name, start) and tracked pairs, computed once per glacier
    scenes: dict = field(default_factory=dict, repr=False)
    tracks: dict = field(default_factory=dict, repr=False)


def reference(
    frames: np.ndarray,
    window_start: np.ndarray,
    window_months: int,
    interpolated: np.ndarray,
    first_test_target: int,
    n_in: int = 4,
    n_out: int = 4,
) -> Reference:
    """Build a glacier's :class:`Reference` from its frames (``io.Frames`` fields).

    The climatology uses the observed frames before ``first_test_target``; the damping factors are
    fitted on every start whose targets all lie before it (the training period).
    """
    frames = np.asarray(frames, dtype=np.float32)
    t = frames.shape[0]
    if not 0 < first_test_target <= t:
        raise GlacierError(f"first test target frame {first_test_target} is outside 1…{t}")
    woy = window_of_year(window_start, window_months)
    fit = (np.arange(t) < first_test_target) & ~np.asarray(interpolated, dtype=bool)
    clim = climatology_frames(frames, woy, fit)
    train_starts = np.arange(max(0, first_test_target - n_in - n_out + 1))
    return Reference(
        frames=frames,
        woy=woy,
        per_year=12 // int(window_months),
        first_test_target=int(first_test_target),
        fit=fit,
        clim=clim,
        damping=fit_damping(frames, clim, train_starts, n_in, n_out),
        n_in=n_in,
        n_out=n_out,
        window_start=np.asarray(window_start),
        window_months=int(window_months),
    )


@dataclass(frozen=True)
class Lead:
    """The frame indices a baseline forecast reads: ``starts`` (B, 1) first input frame, ``last``
    (B, 1) last input frame, ``target`` (B, n_out) the target frames."""

    starts: np.ndarray
    last: np.ndarray
    target: np.ndarray


#: baseline(reference, lead, take) → (B, n_out, …) forecast.
Baseline = Callable[[Reference, Lead, Take], np.ndarray]


def _per_lead(v: np.ndarray, like: np.ndarray) -> np.ndarray:
    """(n_out,) per-lead values shaped to broadcast against ``like`` (B, n_out, …), float32."""
    return np.asarray(v, np.float32).reshape((1, -1) + (1,) * (like.ndim - 2))


def _persistence(ref: Reference, t: Lead, take: Take) -> np.ndarray:
    return persist(take("frames", t.last), ref.n_out)


def _linear(ref: Reference, t: Lead, take: Take) -> np.ndarray:
    return extrapolate(take("frames", t.last), take("frames", t.last - 1), ref.n_out)


def _climatology(ref: Reference, t: Lead, take: Take) -> np.ndarray:
    return take("clim", t.target)


def _seasonal_naive(ref: Reference, t: Lead, take: Take) -> np.ndarray:
    k = ref.per_year
    m = -(-(t.target - t.last) // k)  # ceil: the latest same-window frame known at forecast time
    source = t.target - k * m
    # no frame a year earlier (only with more windows per year than inputs): persistence
    source = np.where(source >= 0, source, np.broadcast_to(t.last, source.shape))
    return take("frames", source)


def _damped_persistence(ref: Reference, t: Lead, take: Take) -> np.ndarray:
    departure = take("frames", t.last) - take("clim", t.last)  # (B, 1, …)
    c = take("clim", t.target)
    return np.clip(c + _per_lead(ref.damping, c) * departure, 0.0, 1.0)


def _scenes(ref: Reference, t: Lead, take: Take, name: str, scene) -> np.ndarray:
    """Whole-frame forecasts ``scene(ref, start) → (n_out, H, W)`` of the sequences' starts,
    computed once per start and glacier (``ref.scenes``), cut to each sequence by ``take``."""
    starts = t.starts[:, 0]
    unique, which = np.unique(starts, return_inverse=True)
    for s in unique:
        if (name, int(s)) not in ref.scenes:
            ref.scenes[name, int(s)] = scene(ref, int(s))
    stack = np.stack([ref.scenes[name, int(s)] for s in unique])  # (U, n_out, H, W)
    crop = getattr(take, "crop", None)
    return stack[which.reshape(-1)] if crop is None else crop(stack, which.reshape(-1))


def advect_scene(ref: Reference, start: int) -> np.ndarray:
    """``advect``'s whole-frame forecast (n_out, H, W) of the sequence starting at ``start``."""
    if ref.window_start is None:
        raise GlacierError("advect needs the frames' window starts: build the Reference with them")
    last = start + ref.n_in - 1
    clim = ref.clim[last + 1 : last + 1 + ref.n_out]
    if min(ref.frames.shape[1:]) < advection.TRACKING[advection.DEFAULT_TRACKING].tile:
        return clim.copy()  # frames smaller than one tracking tile: nothing to track
    return advection.advect_forecast(
        ref.frames, ref.window_start, ref.window_months, ref.fit, last,
        ref.clim[last + 1 : last + 1 + ref.n_out], ref.mask, None, ref.tracks,
    ).forecast  # fmt: skip


def _advect(ref: Reference, t: Lead, take: Take) -> np.ndarray:
    return _scenes(ref, t, take, "advect", advect_scene)


# ------------------------------------------------------------------------------------ oracle
def oracle_departures(ref: Reference, last: int) -> np.ndarray:
    """The last input's departure from its climatology carried to each target window (n_out, H, W):
    on the glacier by the **true** velocity × days (:func:`motion.advect`), unmoved elsewhere."""
    if ref.velocity is None or ref.mask is None or ref.window_start is None:
        raise GlacierError("the oracle needs the truth of a synthetic glacier (attach_truth)")
    dep = ref.frames[last] - ref.clim[last]
    days = advection.target_days(ref.window_start, last, ref.window_months, ref.n_out)
    return np.stack(
        [np.where(ref.mask, advect(dep, ref.velocity * np.float32(d)), dep) for d in days]
    ).astype(np.float32)


def fit_oracle(ref: Reference) -> np.ndarray:
    """The oracle's persistence factors (2, n_out): [0] glacier, [1] off-glacier pixels, per lead.

    a_k = Σ D_k·A_k / Σ D_k² by least squares over the training starts (every target before the
    first test target; observed targets only), D_k the carried departure
    (:func:`oracle_departures`) and A_k the target's departure; clipped to [0, 1]. Cached in
    ``ref.scenes``.
    """
    key = ("oracle-factors", -1)
    if key in ref.scenes:
        return ref.scenes[key]
    n_in, n_out = ref.n_in, ref.n_out
    num, den = np.zeros((2, n_out)), np.zeros((2, n_out))
    parts = np.stack([ref.mask, ~ref.mask]) if ref.mask is not None else None
    for s in range(max(0, ref.first_test_target - n_in - n_out + 1)):
        last = s + n_in - 1
        if not ref.fit[last]:
            continue
        dep = oracle_departures(ref, last).astype(np.float64)
        for k in range(n_out):
            j = last + 1 + k
            if not ref.fit[j]:
                continue
            target = ref.frames[j].astype(np.float64) - ref.clim[j]
            for p in range(2):
                m = parts[p] if parts is not None else slice(None)
                num[p, k] += float((dep[k][m] * target[m]).sum())
                den[p, k] += float((dep[k][m] ** 2).sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        factors = np.clip(np.where(den > 0, num / den, 0.0), 0.0, 1.0)
    ref.scenes[key] = factors
    return factors


def oracle_scene(ref: Reference, start: int) -> np.ndarray:
    """The oracle's whole-frame forecast (n_out, H, W) of the sequence starting at ``start``:
    climatology + a_k × the last input's departure carried by the true motion
    (:func:`oracle_departures`, :func:`fit_oracle`), clipped to the frames' range [0, 1]."""
    last = start + ref.n_in - 1
    a = fit_oracle(ref)
    dep = oracle_departures(ref, last)
    assert ref.mask is not None  # oracle_departures checked it
    factor = np.where(ref.mask[None], a[0][:, None, None], a[1][:, None, None])
    clim = ref.clim[last + 1 : last + 1 + ref.n_out]
    return np.clip(clim + factor.astype(np.float32) * dep, 0.0, 1.0).astype(np.float32)


def _oracle(ref: Reference, t: Lead, take: Take) -> np.ndarray:
    return _scenes(ref, t, take, ORACLE, oracle_scene)


def attach_truth(ref: Reference, fr: Frames, truth: Path | None) -> Reference:
    """Give ``ref`` the synthetic glacier's truth (its ``mask`` and ``velocity``, cropped to the
    frames' ROI) when ``truth`` is a truth.npz; unchanged otherwise (real data: no oracle)."""
    if truth is None or not Path(truth).is_file():
        return ref
    t = load_truth(Path(truth), fr.roi, fr.frames.shape[1:])
    ref.mask, ref.velocity = t.mask, t.velocity
    ref.scenes.clear()
    return ref


#: Every baseline, in table order: its one implementation, used by the test tables, the full
#: scenes, the training summaries and the ``+clim`` models' references alike. A new baseline is
#: one function here (persistence and linear extrapolation share their formulas with the torch
#: forecasters of models/baselines.py).
BASELINE_FORECASTS: dict[str, Baseline] = {
    "persistence": _persistence,
    "climatology": _climatology,
    "seasonal-naive": _seasonal_naive,
    "damped-persistence": _damped_persistence,
    "linear": _linear,
    "advect": _advect,
}
#: Baselines in table order.
BASELINES: tuple[str, ...] = tuple(BASELINE_FORECASTS)
#: Every predictor that is not a trained model: the baselines and the oracle.
REFERENCES: tuple[str, ...] = (*BASELINES, ORACLE)


def table_rank(name: str) -> int:
    """Where a predictor goes in every table, as a sort key: the models first (0, in their own
    order under a stable sort), then the baselines in :data:`BASELINES` order, the oracle (a
    ceiling, not ranked) last."""
    return REFERENCES.index(name) + 1 if name in REFERENCES else 0


def forecast(name: str, ref: Reference, starts: np.ndarray, take: Take) -> np.ndarray:
    """Baseline ``name``'s forecast of the sequences starting at ``starts`` (B,) → (B, n_out, …).

    ``take(stack, idx)`` gathers frames (``"frames"``) or climatology (``"clim"``) at frame
    indices ``idx`` (B, k) for each of the B sequences (their patch, or the whole frame).
    """
    try:
        baseline = _oracle if name == ORACLE else BASELINE_FORECASTS[name]
    except KeyError:
        raise GlacierError(
            f"unknown baseline {name!r}: choose one of {', '.join(BASELINES)}"
        ) from None
    if name == ORACLE and ref.velocity is None:
        raise GlacierError("the oracle needs the truth of a synthetic glacier (attach_truth)")
    s = np.asarray(starts, dtype=np.int64).reshape(-1, 1)
    last = s + ref.n_in - 1  # (B, 1)
    target = s + ref.n_in + np.arange(ref.n_out).reshape(1, -1)  # (B, n_out)
    return baseline(ref, Lead(s, last, target), take)


def scene_take(ref: Reference) -> Take:
    """``take`` over whole frames: (B, k) indices → (B, k, H, W)."""
    stacks = {"frames": ref.frames, "clim": ref.clim}
    return lambda stack, idx: stacks[stack][np.asarray(idx)]


def glacier_sequences(
    fr: Frames, train_frames: int | None, patch: int, stride: int, clim_input: bool = False
) -> tuple[SequenceDataset, Reference]:
    """A glacier's sequence dataset with its climatology and interpolation flags, and its
    :class:`Reference`.

    ``train_frames`` limits the sequences to the first frames (Aletsch: 19); the first test target
    is that of the ``paper`` split of those sequences (the strict split shares it), and the
    climatology uses only observed frames before it.
    """
    t = fr.frames.shape[0]
    max_frame = min(train_frames, t) if train_frames else None
    kw = {"patch": patch, "stride": stride, "max_frame": max_frame}
    probe = SequenceDataset(fr.frames, interpolated=fr.interpolated, **kw)
    targets = split_indices(probe, "paper").test_target_frames
    assert targets is not None  # the paper split always sets it
    first = targets[0]
    ref = reference(fr.frames, fr.window_start, fr.window_months, fr.interpolated, first)
    ds = SequenceDataset(
        fr.frames, climatology=ref.clim, interpolated=fr.interpolated, clim_input=clim_input, **kw
    )
    return ds, ref


def glacier_mask(fr: Frames, ref: Reference, truth: Path | None = None) -> tuple[np.ndarray, str]:
    """Glacier pixels of the frames' grid (H, W) bool and where they come from.

    Synthetic data: the true ice extent of ``truth.npz`` (cropped to the ROI). Real data: the
    pixels that are snow/ice in every observed frame before the test period.
    """
    h, w = fr.frames.shape[1:]
    if truth is not None and Path(truth).is_file():
        m = load_npz(Path(truth), {"glacier_mask": "ice extent (H, W)"})["glacier_mask"]
        r0, c0 = fr.roi[0], fr.roi[2]
        if m.ndim == 2 and m.shape[0] >= r0 + h and m.shape[1] >= c0 + w:
            return np.asarray(m[r0 : r0 + h, c0 : c0 + w], dtype=bool), "true ice extent"
    return np.asarray((ref.frames[ref.fit] > 0).all(axis=0)), "snow/ice in every training frame"
