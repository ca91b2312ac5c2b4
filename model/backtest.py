"""Validation cut-offs in the newest part of each series, and what is measured on them: the classical component's
choice, early stopping, the calibration of the bands and the version's backtest beside the baselines.

A cut-off is a point in time inside a series: what came before it is the context, the observations in the horizon
after it are scored. Errors are in units of each channel's training std, averaged over channels.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NotRequired, TypedDict

import numpy as np

from model.arrays import BoolArray, FloatArray, IntArray, evenly
from model.calibration import Calibration
from model.data import Sequence
from model.frame import SCALE_FLOOR, Component, columns_key, frame_of, frames_sharing_columns
from model.seasons import harmonics

if TYPE_CHECKING:
    from model.fitted import FittedModel
    from model.local import Sizes
    from model.predict import _Request

__all__ = ["Backtest", "MethodScores", "BandScores", "Cutoff", "cutoffs_of", "history_cutoffs", "far_cutoffs",
           "choice_sets", "choose_blend",
           "candidates_of", "candidate_errors", "candidate_scores", "chosen_index", "choose_component",
           "choose_inside", "blend_weight", "weighable", "validation_mae", "calibration_from", "backtest",
           "BASELINES", "STAYS", "MIN_BLEND_VALUES", "OWN_MARGIN"]

CUTOFFS_PER_SERIES = 12
HISTORY_CUTOFFS = 24  # history_cutoffs' number per series
MAX_CUTOFFS = 240  # over all series (a random subset past that)
NEWEST = 0.2  # cut-offs lie in the newest fifth of each series' span (and the horizon before it)
HONEST_SHARE = 0.3  # training stops before the first cut-off when that leaves this share of the span to train on
BASELINES = ("last_value", "drift", "seasonal_naive")
BANDS = 4  # backtest errors per quarter of the horizon


class BandScores(TypedDict):
    """A method's scores on one quarter of the horizon: up to `until_s` seconds past the cut-off."""

    until_s: float
    mae: float | None
    coverage90: float | None
    interval90: NotRequired[float | None]


class MethodScores(TypedDict):
    """A method's backtest scores (None: nothing to score); coverage90 and interval90 (the 90% band's interval
    score, _scores) only for the model (versions saved before interval90 existed lack it), rmae added by
    backtest."""

    mae: float | None
    mse: float | None
    coverage90: float | None
    bands: list[BandScores]
    interval90: NotRequired[float | None]
    rmae: NotRequired[float | None]


class Backtest(TypedDict):
    """`backtest`'s result, JSON-able (FittedModel.backtest); model/local.py adds how training went."""

    cutoffs: int
    points: int
    methods: dict[str, MethodScores]
    best_baseline: NotRequired[str | None]
    beats_baselines: NotRequired[bool | None]
    overlap: NotRequired[bool]
    calibrated_until_s: NotRequired[float]
    hit_time_limit: NotRequired[bool]
    network_trained: NotRequired[bool]
    stopped_early: NotRequired[bool]
    steps: NotRequired[int]
    seconds: NotRequired[float]


@dataclass(frozen=True)
class Cutoff:
    """Sequence `series`; its observations [0, end] are the context, `future` (indices) the scored points."""

    series: int
    end: int
    future: IntArray


def cutoffs_of(sequences: list[Sequence], sizes: Sizes,
               rng: np.random.Generator) -> tuple[list[Cutoff], list[float], bool]:
    """(cut-offs, per sequence the last time training may use, whether any cut-off overlaps training data)."""
    cutoffs, limits, overlap = [], [], False
    for k, s in enumerate(sequences):
        t = s.times
        span = t[-1] - t[0]
        lo = max(t[-1] - sizes.horizon - NEWEST * span, t[0] + min(sizes.encoder / 2, span / 2))
        hi = t[-1] - 0.25 * min(sizes.horizon, span / 2)
        ends = sorted({int(np.searchsorted(t, c, side="right")) - 1
                       for c in np.linspace(lo, hi, CUTOFFS_PER_SERIES)} if hi > lo else set())
        mine = []
        for end in ends:
            if end < 1 or end >= t.size - 1:
                continue
            future = np.arange(end + 1, int(np.searchsorted(t, t[end] + sizes.horizon, side="right")))
            if future.size:
                mine.append(Cutoff(k, end, future))
        first = t[mine[0].end] if mine else t[-1]
        honest = bool(mine) and first - t[0] >= HONEST_SHARE * span
        limits.append(float(first) if honest else float(t[-1]))
        overlap |= bool(mine) and not honest
        cutoffs += mine
    if len(cutoffs) > MAX_CUTOFFS:
        cutoffs = [cutoffs[i] for i in sorted(rng.choice(len(cutoffs), MAX_CUTOFFS, replace=False))]
    return cutoffs, limits, overlap


def history_cutoffs(sequences: list[Sequence], sizes: Sizes, per_series: int = HISTORY_CUTOFFS) -> list[Cutoff]:
    """Cut-offs spread evenly over each whole series (its first encoder half-span aside): more residuals for the
    bands than the newest part alone holds, at the price of lying inside the training data."""
    out = []
    for k, s in enumerate(sequences):
        t = s.times
        lo, hi = t[0] + min(sizes.encoder / 2, (t[-1] - t[0]) / 2), t[-1] - 0.25 * sizes.horizon
        for end in sorted({int(np.searchsorted(t, c, side="right")) - 1 for c in np.linspace(lo, hi, per_series)}
                          if hi > lo else ()):
            future = np.arange(end + 1, int(np.searchsorted(t, t[end] + sizes.horizon, side="right")))
            if end >= 1 and future.size:
                out.append(Cutoff(k, end, future))
    return out


def far_cutoffs(sequences: list[Sequence], sizes: Sizes, sets: list[list[Cutoff]],
                per_series: int = HISTORY_CUTOFFS) -> list[Cutoff]:
    """Cut-offs for each series none of whose cut-offs in `sets` scores an observation past the horizon's first
    quarter: readings in bursts further apart than the horizon, where every cut-off's horizon ends before the next
    burst. Spread over its history as history_cutoffs', each is scored on the first observation more than half a
    horizon after it and the others within half a horizon of that one (the next burst). The other sets judge a
    forecast on its own burst alone, hours of a horizon of days; these judge it as far ahead as a user asks, and
    a little past that where the gap is longer: the classical forecast is defined there, the network's is not, so
    these serve the component's choice alone. (A series too short for cut-offs gets none here either: none fits
    half a horizon before its end.) At most MAX_CUTOFFS over all series, spread evenly over them."""
    reach = np.zeros(len(sequences))
    for cuts in sets:
        for c in cuts:
            t = sequences[c.series].times
            reach[c.series] = max(reach[c.series], t[c.future[-1]] - t[c.end])
    half, out = sizes.horizon / 2, []
    for k, s in enumerate(sequences):
        t = s.times
        lo, hi = t[0] + min(sizes.encoder / 2, (t[-1] - t[0]) / 2), t[-1] - half
        if reach[k] > sizes.horizon / 4 or not hi > lo:
            continue
        for end in sorted({int(np.searchsorted(t, c, side="right")) - 1 for c in np.linspace(lo, hi, per_series)}):
            first = int(np.searchsorted(t, t[end] + half, side="right"))
            if end >= 1 and first < t.size:
                out.append(Cutoff(k, end, np.arange(first, int(np.searchsorted(t, t[first] + half, side="right")))))
    return [out[i] for i in evenly(len(out), MAX_CUTOFFS)]  # many bursty series: as many as the newest set holds


def choice_sets(sequences: list[Sequence], cutoffs: list[Cutoff], history: list[Cutoff],
                sizes: Sizes) -> list[list[Cutoff]]:
    """The non-empty sets of cut-offs choose_component scores: the newest, the history's and far_cutoffs'."""
    sets = [c for c in (cutoffs, history) if c]
    far = far_cutoffs(sequences, sizes, sets)
    return [*sets, far] if far else sets


def _errors(sequences: list[Sequence], cutoffs: list[Cutoff], std: FloatArray,
            predict: Callable[[Cutoff], FloatArray]) -> FloatArray:
    """Absolute errors in std units, (points, C) NaN where unobserved, of predict(cutoff) -> (len(future), C)."""
    out = [np.abs(predict(c) - sequences[c.series].values[c.future]) / std for c in cutoffs]
    return np.concatenate(out) if out else np.zeros((0, std.size))


def _mae(errors: FloatArray) -> float:
    per_channel = [np.nanmean(errors[:, c]) for c in range(errors.shape[1]) if np.isfinite(errors[:, c]).any()]
    return float(np.mean(per_channel)) if per_channel else float("nan")


STAYS = 1e3  # a half-life this many times the span it covers: no decay (the level, or the last residual, stays)


def candidates_of(sizes: Sizes) -> list[Component]:
    """The components choose_component tries: the plain ones (_plain_candidates), then each of those with seasons
    again with as many Fourier pairs per season as the fine gap allows, where that is more than the median gap
    allows (a sharp seasonal peak, such as a December's, needs more pairs than a smooth cycle, and where a fifth of
    the gaps are that short the data shows them), last, so that a tie keeps the plainer one."""
    plain = _plain_candidates(sizes)
    finer = [dataclasses.replace(c, harmonics=pairs) for c in plain
             if (pairs := tuple(harmonics(p, sizes.fine_gap) for p in c.seasons)) != c.harmonics]
    return plain + finer


def _plain_candidates(sizes: Sizes) -> list[Component]:
    """Each context (the chosen one, three times it and the whole history, unless the config fixed it) without a trend
    or with one damped over a quarter of the horizon or the whole of it or not damped at all (a straight line: see
    best_candidate), with any subset of the seasons found,
    with each half-life from a few gaps to none at all, and the last residual fading over none, an eighth, half
    or beyond the horizon (the last value kept: what wins on a random walk or after a change of level) or, for
    each season found, the residual one season back repeated (the seasonal naive forecast, on top of the
    component); each season with as many Fourier pairs as the median gap allows."""
    gap = sizes.gap
    whole = sizes.room + sizes.horizon  # the longest series' whole span
    contexts = [sizes.context] if sizes.context_given else sorted({sizes.context, min(3 * sizes.context, sizes.room),
                                                                   max(whole, sizes.context)})
    season_sets = [()] + [tuple(p for p in sizes.seasons if p in subset)  # every subset of the seasons found
                          for n in range(1, len(sizes.seasons) + 1)
                          for subset in itertools.combinations(sizes.seasons, n)]
    afters = [(p, 0.0) for p in (0.0, sizes.horizon / 8, sizes.horizon / 2, STAYS * sizes.horizon)]
    afters += [(0.0, p) for p in sizes.seasons]  # the residual one season back: the seasonal naive forecast's way
    return [
        Component(trend=damping > 0, seasons=seasons, harmonics=tuple(harmonics(p, gap) for p in seasons),
                  half_life=float(h), damping=damping or sizes.horizon, context=context, encoder=sizes.encoder,
                  persistence=float(persistence), echo=float(echo), robust=robust, log=sizes.log)
        for robust in (False, True)
        for context in contexts
        for damping, seasons, h, (persistence, echo) in itertools.product(
            (0.0, sizes.horizon / 4, sizes.horizon, STAYS * sizes.horizon), season_sets,
            sorted({max(3 * gap, context / 32), context / 4, context, STAYS * context}), afters)]


OWN_MARGIN = 0.8  # a series' own component replaces the shared one only below this share of its error
UNDAMPED_MARGIN = 0.8  # an undamped trend is taken only below this share of the best other candidate's score
UNDAMPED_CUTOFFS = HISTORY_CUTOFFS  # ... and only on at least this many cut-offs (one series' history holds)


def undamped_trends(candidates: list[Component], horizon: float) -> BoolArray:
    """(candidates,) which carry a trend that is never damped (damping past the horizon): a straight line."""
    return np.array([c.trend and c.damping > horizon for c in candidates], dtype=bool)


def best_candidate(scores: FloatArray, candidates: list[Component], horizon: float, cutoffs: int) -> int:
    """The index of the lowest score, but a trend that is never damped (damping past the horizon) only where its
    score, on at least UNDAMPED_CUTOFFS cut-offs, is below UNDAMPED_MARGIN times that of the best candidate without
    one. A straight line goes on for good: on a history of steady growth (a population, a GDP, CO2) it is the
    forecast, but where a decline levels off after the history ends (a fertility rate), a line that keeps going
    misses by more than any damped trend, and on a short series the few cut-offs that favour it say little."""
    undamped = undamped_trends(candidates, horizon)
    best = int(np.nanargmin(scores))
    if not undamped[best]:
        return best
    bounded = int(np.nanargmin(np.where(undamped, np.nan, scores)))
    clear = cutoffs >= UNDAMPED_CUTOFFS and scores[best] < UNDAMPED_MARGIN * scores[bounded]
    return best if clear else bounded


LAST_VALUE_Z = 1.645  # the choice must beat the last value by this many standard errors: a one-sided test at 5%


def last_value(candidates: list[Component], horizon: float, like: Component | None = None) -> int | None:
    """The index of a candidate whose forecast is the last value (no trend, season or echo, the last residual
    staying), None where there is none: with `like`, one that reads the history as that one does (its context,
    half-life and fit), where there is one, so that its band's unit (the spread of what it leaves in the context)
    is that of the choice it stands in for, not the few newest points' of the shortest memory."""
    found = [i for i, c in enumerate(candidates)
             if not c.trend and not c.seasons and not c.echo and c.persistence >= STAYS * horizon]
    if like is not None:
        found.sort(key=lambda i: (candidates[i].context, candidates[i].half_life, candidates[i].robust)
                   != (like.context, like.half_life, like.robust))
    return found[0] if found else None


def beats_last_value(errors: list[list[list[FloatArray]]], sets: list[list[Cutoff]], chosen: int, last: int) -> bool:
    """Whether candidate `chosen` has the lower MAE per cut-off than candidate `last`, over every cut-off of every
    set, by more than LAST_VALUE_Z standard errors of the paired differences (fewer than 3 cut-offs: True).

    With up to 2,304 candidates and a few dozen cut-offs a series, the lowest score is in part luck, and on a
    random walk (a share price, a river's yearly flow) it is luck alone: whatever level, fade or season wins the
    backtest there forecasts worse than the last value. The last value is what a user compares against, and a
    component replaces it only where the cut-offs, paired, say it does better by more than chance would give."""
    diffs = []
    for k, cuts in enumerate(sets):
        starts = _Trim.of(cuts).starts
        theirs = _own_mae(*_cutoff_sums(errors[last][k], starts))
        mine = _own_mae(*_cutoff_sums(errors[chosen][k], starts))
        diffs.append((theirs - mine)[np.isfinite(theirs) & np.isfinite(mine)])
    d = np.concatenate(diffs)
    if d.size < 3:
        return True
    return bool(float(d.mean()) > LAST_VALUE_Z * float(d.std(ddof=1)) / np.sqrt(d.size))


def chosen_index(errors: list[list[list[FloatArray]]], sets: list[list[Cutoff]], candidates: list[Component],
                 horizon: float, last_value_default: bool = True) -> tuple[int, FloatArray]:
    """The candidate choose_component takes on these errors (candidate_errors), and every candidate's score:
    the lowest score (best_candidate), or, with `last_value_default`, the last value where that one does not beat
    it clearly (beats_last_value)."""
    scores = candidate_scores(errors, sets)
    best = best_candidate(scores, candidates, horizon, sum(len(c) for c in sets))
    last = last_value(candidates, horizon, like=candidates[best]) if last_value_default else None
    if last is None or best == last or beats_last_value(errors, sets, best, last):
        return best, scores
    return last, scores


def choose_component(sequences: list[Sequence], cutoffs: list[Cutoff], history: list[Cutoff], sizes: Sizes,
                     std: FloatArray, shared: Component | None = None) -> Component:
    """The candidate component (candidates_of) whose classical forecast has the lowest MAE on the newest cut-offs
    (`cutoffs`) and those over the whole history (`history`), and where neither scores the horizon's far part
    (bursts further apart than the horizon) far_cutoffs' too, the sets weighing the same, each set's MAE
    without the candidate's worst cut-offs (_trimmed_mae); an undamped trend only where it wins clearly
    (best_candidate); the last value unless that choice beats it clearly (beats_last_value). With `shared` (one of
    the candidates, chosen on more series), that one unless the lowest score is below OWN_MARGIN times its own.

    The classical forecast at a cut-off reads only what came before it, so cut-offs anywhere in the history are
    honest tests of a component: they keep the choice from riding on the few events in the newest part of a
    series, while the newest cut-offs keep it close to how the series behaves now. A choice made on one series'
    few cut-offs is noisier than one pooled over many: it must win clearly to be taken."""
    sets = choice_sets(sequences, cutoffs, history, sizes)
    if not sets:  # nothing to choose on: a middling plain candidate
        plain = _plain_candidates(sizes)
        return plain[len(plain) // 2]
    candidates = candidates_of(sizes)
    if shared is not None and shared not in candidates:  # chosen among another series' sizes (own_sizes)
        candidates.append(shared)
    # a series' own choice beside a shared one has that one, backed by many series, as its default instead
    errors = candidate_errors(sequences, sets, candidates, std)
    if shared is not None:
        return own_per_channel(errors, sets, candidates, sizes.horizon, shared)
    best = chosen_index(errors, sets, candidates, sizes.horizon)[0]
    return per_channel(errors, sets, candidates, sizes.horizon, best)


CHANNEL_CUTOFFS = HISTORY_CUTOFFS  # a channel chooses its own part only where this many cut-offs score it


def per_channel(errors: list[list[list[FloatArray]]], sets: list[list[Cutoff]], candidates: list[Component],
                horizon: float, joint: int) -> Component:
    """candidates[joint] (the choice over every channel together), with a part per channel (Component.channels)
    where the channels' own choices (channel_choices) differ.

    Channels of one series need not move alike: a temperature with a daily cycle beside a counter that only
    rises, a channel read hourly beside one read twice a week. One choice for all of them is made mostly on the
    channels with the most readings and the largest errors, and a channel then carries another's trend or season.
    Chosen alone, each channel gets the classical part it would get in a model of its own."""
    own = channel_choices(errors, sets, candidates, horizon, joint)
    if all(i == joint for i in own):
        return candidates[joint]
    return dataclasses.replace(candidates[joint], channels=tuple(candidates[i] for i in own))


def own_per_channel(errors: list[list[list[FloatArray]]], sets: list[list[Cutoff]], candidates: list[Component],
                    horizon: float, shared: Component) -> Component:
    """A series' own component beside the one its panel shares (`shared`, among `candidates`): per channel, the
    series' own choice on that channel's errors (chosen_index without the last value as its default: the shared
    one is) where its score is below OWN_MARGIN times the shared one's on that channel, else the shared one's
    part for it; on a single channel, that choice made once. One component where every channel takes the same."""
    index = candidates.index(shared)
    channels = errors[index][0][0].shape[1]
    picks = []  # plain components: the shared one's parts are, and no candidate but the shared one has parts
    for c in range(channels):
        theirs = shared.channels[c] if shared.channels else shared
        mine, kept = _channel_errors(errors, sets, index, c) if channels > 1 else (errors, list(range(len(sets))))
        if mine is None:  # too few cut-offs score the channel: the shared one's part
            picks.append(theirs)
            continue
        best, scores = chosen_index(mine, [sets[k] for k in kept], candidates, horizon, last_value_default=False)
        picks.append(candidates[best] if scores[best] < OWN_MARGIN * scores[index] else theirs)
    if list(shared.channels) == picks:
        return shared
    if all(p == picks[0] for p in picks):
        return picks[0]
    return dataclasses.replace(shared, channels=tuple(picks))


def _channel_errors(errors: list[list[list[FloatArray]]], sets: list[list[Cutoff]], joint: int,
                    channel: int) -> tuple[list[list[list[FloatArray]]] | None, list[int]]:
    """Every candidate's errors on one channel alone (candidate_errors' layout, one column) over the sets that
    score it, and those sets' indices; None where fewer than CHANNEL_CUTOFFS cut-offs score it."""
    seen = [[bool(np.isfinite(e[:, channel]).any()) for e in per_set] for per_set in errors[joint]]
    if sum(map(sum, seen)) < CHANNEL_CUTOFFS:
        return None, []
    kept = [k for k, per_set in enumerate(seen) if any(per_set)]  # a set may not score this channel at all
    return [[[e[:, channel:channel + 1] for e in per_candidate[k]] for k in kept] for per_candidate in errors], kept


def channel_choices(errors: list[list[list[FloatArray]]], sets: list[list[Cutoff]], candidates: list[Component],
                    horizon: float, joint: int) -> list[int]:
    """Per channel, the index of the candidate it takes: chosen_index on that channel's errors alone, over the sets
    that score it (`joint` on a single channel). A channel scored at fewer than CHANNEL_CUTOFFS cut-offs (a dozen
    readings beside hundreds of another's) takes the last value (read as the joint choice reads the history),
    the default chosen_index keeps unless the errors clearly say otherwise: its few errors cannot choose among
    thousands of candidates, and the joint choice, made on the other channels, fits their seasons to its few
    points (a daily cycle of six sine pairs through twelve readings swung its forecast to a third of the values'
    level)."""
    channels = errors[joint][0][0].shape[1]
    if channels == 1:
        return [joint]
    own = []
    rare = last_value(candidates, horizon, like=candidates[joint])
    for c in range(channels):
        mine, kept = _channel_errors(errors, sets, joint, c)
        if mine is None:
            own.append(joint if rare is None else rare)
            continue
        own.append(chosen_index(mine, [sets[k] for k in kept], candidates, horizon)[0])
    return own


def candidate_errors(sequences: list[Sequence], sets: list[list[Cutoff]], candidates: list[Component],
                     std: FloatArray) -> list[list[list[FloatArray]]]:
    """errors[i][k][j]: candidate i's absolute errors in units of `std` (n, C), NaN where unobserved, at the points
    of cut-off j of set k, its classical forecast reading only what came before the cut-off."""
    floor = SCALE_FLOOR * std
    # Candidates that differ only in how the residual goes on after the context share one fit per cut-off, and
    # fits that differ only in how they weigh the points share the context's design matrix.
    fits: dict[Component, list[int]] = {}
    for i, candidate in enumerate(candidates):
        if not candidate.channels:
            fits.setdefault(dataclasses.replace(candidate, persistence=0.0, echo=0.0), []).append(i)
    columns: dict[Component, list[Component]] = {}
    for fitted_part in fits:
        columns.setdefault(columns_key(fitted_part), []).append(fitted_part)
    errors: list[list[list[FloatArray]]] = [[[] for _ in sets] for _ in candidates]
    for i, candidate in enumerate(candidates):
        if candidate.channels:  # a part per channel (a shared choice offered to one series): fitted whole
            for k, cuts in enumerate(sets):
                for c in cuts:
                    s = sequences[c.series]
                    frame = frame_of(candidate, s.times[:c.end + 1], s.values[:c.end + 1], floor)
                    errors[i][k].append(np.abs(frame.classical(s.times[c.future]) - s.values[c.future]) / std)
    for parts in columns.values():
        for k, cuts in enumerate(sets):
            for c in cuts:
                s = sequences[c.series]
                frames = frames_sharing_columns(parts, s.times[:c.end + 1], s.values[:c.end + 1], floor)
                at, truth = s.times[c.future], s.values[c.future]
                ahead = parts[0].columns(at, frames[0].end)  # WindowFrame.base's design, the same for all parts
                for fitted_part, frame in zip(parts, frames, strict=True):
                    base = ahead @ frame.coef  # frame.base(at): WindowFrame.classical's shared part, computed once
                    for i in fits[fitted_part]:
                        residual = frame.residual(at, candidates[i])
                        forecast = frame.original(base + residual * frame.scale)
                        errors[i][k].append(np.abs(forecast - truth) / std)
    return errors


def candidate_scores(errors: list[list[list[FloatArray]]], sets: list[list[Cutoff]]) -> FloatArray:
    """(candidates,) what choose_component ranks: the mean over the sets of each one's _trimmed_mae (errors as
    candidate_errors gives them for these sets)."""
    trims = [_Trim.of(cuts) for cuts in sets]
    return np.array([np.mean([_trimmed_mae(per_set, trim) for per_set, trim in zip(mine, trims, strict=True)])
                     for mine in errors], dtype=np.float64)


TRIM = 0.1  # _trimmed_mae leaves out this share (rounded down) of each series' cut-offs in a set


@dataclass(frozen=True)
class _Trim:
    """How _trimmed_mae reads one set of cut-offs, the same for every candidate: where each cut-off's points start
    in the candidate's errors stacked in cut-off order, and per series with at least 1 / TRIM cut-offs, their
    indices."""

    starts: IntArray
    groups: tuple[IntArray, ...]

    @classmethod
    def of(cls, cutoffs: list[Cutoff]) -> _Trim:
        starts = np.cumsum([0] + [c.future.size for c in cutoffs[:-1]]).astype(np.int64)
        series = np.fromiter((c.series for c in cutoffs), dtype=np.int64, count=len(cutoffs))
        groups = []
        for k in np.unique(series):
            mine = np.flatnonzero(series == k)
            if int(TRIM * mine.size):
                groups.append(mine)
        return cls(starts=starts, groups=tuple(groups))


def _trimmed_mae(errors: list[FloatArray], trim: _Trim) -> float:
    """The MAE (as _mae) over the points of a set of cut-offs (errors[j]: cut-off j's absolute errors (n, C), n =
    its future's size >= 1; `trim`: _Trim.of those cut-offs) without each series' worst TRIM of those that score
    an observed value, ranked by each cut-off's own MAE; all of them where a series has fewer than 1 / TRIM (or
    fewer than 1 / TRIM that score one: on a channel read rarely, one channel's errors alone, most score none).

    A pooled MAE weighs most the few cut-offs just before an event no candidate foresaw (a level shift, a storm
    in a load curve), and there the candidates differ in how badly they miss, not in how well they forecast: on
    one series the choice could then turn on one or two cut-offs out of 36. Leaving each candidate's worst tenth
    out makes it rest on how the candidate does on the rest. Per series, so that in a model of many short series
    (each with a few cut-offs) nothing is left out, and a series with many cut-offs cannot lose another's. This
    runs for every candidate on every set of cut-offs: one pass of array sums, no loop over the cut-offs."""
    sums, counts = _cutoff_sums(errors, trim.starts)
    kept = np.ones(len(errors), dtype=bool)
    for mine in trim.groups:
        own = _own_mae(sums[mine], counts[mine])
        count = int(TRIM * np.isfinite(own).sum())
        ranked = mine[np.argsort(np.where(np.isfinite(own), -own, np.inf), kind="stable")]
        kept[ranked[:count]] = False
    total, n = sums[kept].sum(axis=0), counts[kept].sum(axis=0)
    return float(np.mean(total[n > 0] / n[n > 0])) if (n > 0).any() else float("nan")


def _cutoff_sums(errors: list[FloatArray], starts: IntArray) -> tuple[FloatArray, IntArray]:
    """(cut-offs, C) each cut-off's sum of observed absolute errors and their count (errors[j]: cut-off j's (n, C);
    starts: where each begins in them stacked, _Trim.starts)."""
    stacked = np.concatenate(errors)
    seen = np.isfinite(stacked)
    return (np.add.reduceat(np.where(seen, stacked, 0.0), starts, axis=0),
            np.add.reduceat(seen.astype(np.int64), starts, axis=0))


def _own_mae(sums: FloatArray, counts: IntArray) -> FloatArray:
    """(cut-offs,) each cut-off's MAE: the mean over its observed channels of their mean; NaN where none is."""
    observed = counts > 0
    means = np.divide(sums, counts, out=np.zeros(observed.shape), where=observed)
    channels = observed.sum(axis=1)
    own: FloatArray = np.divide(means.sum(axis=1), channels, out=np.full(channels.size, np.nan), where=channels > 0)
    return own


INSIDE_POINTS = 240  # choose_inside hides this many observations at most, over all series
INSIDE_MARGIN = 0.8  # the component's curve is kept between observations only below this share of the line's error


def choose_inside(sequences: list[Sequence], component: Component, std: FloatArray) -> Component:
    """`component` with linear_inside set unless its own interpolation (its curve plus the residuals' line)
    predicts held-out observations with a squared error below INSIDE_MARGIN times the observations' line's.

    The held-out points are spread over each whole series (up to INSIDE_POINTS in all), each predicted from the
    observations within half a context either side of it, as a query between observations is answered: a curve
    that fits the newest context well can still bend away from the data between points elsewhere, and the line
    is the safe default (it is what linear interpolation scores)."""
    floor = SCALE_FLOOR * std
    errors: dict[bool, list[FloatArray]] = {False: [], True: []}
    per_series = max(1, INSIDE_POINTS // len(sequences))
    budget = INSIDE_POINTS
    for s in sequences:
        if budget <= 0 or s.times.size < 3:
            continue
        hidden = np.unique(np.linspace(1, s.times.size - 2, min(per_series, budget, s.times.size - 2)).round())
        for i in hidden.astype(np.int64):
            near = np.flatnonzero(np.abs(s.times - s.times[i]) <= component.reach / 2)
            near = near[near != i]
            if near.size < 2 or near[0] > i or near[-1] < i:
                continue
            budget -= 1
            frame = frame_of(component, s.times[near], s.values[near], floor)  # the fit ignores linear_inside
            for linear in (False, True):
                guess = frame.inside(linear).classical(s.times[i:i + 1])
                errors[linear].append(((guess - s.values[i:i + 1]) / std) ** 2)
    if not errors[False]:
        return dataclasses.replace(component, linear_inside=True)
    mse = {linear: _mae(np.concatenate(e)) for linear, e in errors.items()}
    return dataclasses.replace(component, linear_inside=not bool(mse[False] < INSIDE_MARGIN * mse[True]))


def _requests(sequences: list[Sequence], cutoffs: list[Cutoff]) -> list[tuple[Sequence, FloatArray]]:
    out = []
    for c in cutoffs:
        s = sequences[c.series]
        out.append((Sequence(s.times[:c.end + 1], s.values[:c.end + 1], s.channels, s.key), s.times[c.future]))
    return out


def validation_mae(fitted: FittedModel, sequences: list[Sequence], cutoffs: list[Cutoff]) -> float:
    """The model's MAE on the cut-offs (mean of 4 samples, fixed seeds): the early-stopping score."""
    from model.predict import forecast_batch

    results = forecast_batch(fitted, _requests(sequences, cutoffs), samples=4, seeds=range(len(cutoffs)))
    means = iter([r.mean for r in results])
    return _mae(_errors(sequences, cutoffs, fitted.normaliser.std, lambda c: next(means)))


BLENDS = np.linspace(0.0, 1.0, 5)
MIN_BLEND_VALUES = 30  # observed values each half of the cut-offs must score for the network to get any weight


def choose_blend(fitted: FittedModel, sequences: list[Sequence], cutoffs: list[Cutoff]) -> tuple[float, ...]:
    """Per channel, the weight (0, 1/4, ..., 1) of the network's forecast against the classical one: the lesser of
    the weights with the lowest MAE on the older and on the newer half of the cut-offs (in time order per series),
    0 when either half scores fewer than MIN_BLEND_VALUES observed values of the channel (or there are no cut-offs).

    A weight must earn its place on both halves, and on enough values: on few cut-offs one event can make the
    network look better, and a network that only helps there hurts the forecast it is then used for (on an annual
    series of 30 points, 14-17 values per half chose a network that forecast 3.6x worse than the classical part
    ten years out). The classical forecast is the default that needs no such evidence."""
    from model.predict import forecast_batch

    channels = len(fitted.channels)
    if not weighable(sequences, cutoffs).any():
        return (0.0,) * channels
    requests = _requests(sequences, cutoffs)
    model = forecast_batch(fitted, requests, samples=16, seeds=range(len(cutoffs)))
    classical = forecast_batch(fitted, requests, part="classical")
    truth = [sequences[c.series].values[c.future] for c in cutoffs]

    def part(half: list[int], c: int) -> tuple[FloatArray, FloatArray, FloatArray]:
        return (np.concatenate([truth[k][:, c] for k in half]), np.concatenate([model[k].mean[:, c] for k in half]),
                np.concatenate([classical[k].mean[:, c] for k in half]))
    return tuple(blend_weight([part(half, c) for half in _halves(cutoffs)]) for c in range(channels))


def weighable(sequences: list[Sequence], cutoffs: list[Cutoff]) -> BoolArray:
    """(C,) per channel, whether each half of the cut-offs (_halves) scores at least MIN_BLEND_VALUES observed
    values of it: only such a channel can get any network weight from choose_blend (none without cut-offs). Where
    no channel can, the network's training would change no forecast, and fit_local skips it."""
    channels = sequences[0].values.shape[1]
    if not cutoffs:
        return np.zeros(channels, dtype=bool)
    enough = np.ones(channels, dtype=bool)
    for half in _halves(cutoffs):
        seen = sum((~np.isnan(sequences[cutoffs[k].series].values[cutoffs[k].future])).sum(axis=0) for k in half)
        enough &= np.asarray(seen) >= MIN_BLEND_VALUES
    return enough


def blend_weight(parts: list[tuple[FloatArray, FloatArray, FloatArray]]) -> float:
    """The blend for one channel from (truth, network forecast, classical forecast) on each part of the cut-offs:
    the least over the parts of the weight in BLENDS with the lowest MAE there; 0 when a part has fewer than
    MIN_BLEND_VALUES observed truths (NaN: not observed) or there are no parts."""
    best = []
    for truth, net, base in parts:
        seen = ~np.isnan(truth)
        if seen.sum() < MIN_BLEND_VALUES:
            return 0.0
        errors = [np.mean(np.abs(base[seen] + w * (net[seen] - base[seen]) - truth[seen])) for w in BLENDS]
        best.append(float(BLENDS[int(np.argmin(errors))]))
    return min(best, default=0.0)


def _halves(cutoffs: list[Cutoff]) -> list[list[int]]:
    """Indices of the older and the newer half of each series' cut-offs (a series with one cut-off: in both)."""
    older, newer = [], []
    by_series: dict[int, list[int]] = {}
    for k, c in enumerate(cutoffs):
        by_series.setdefault(c.series, []).append(k)
    for ks in by_series.values():
        ks = sorted(ks, key=lambda k: cutoffs[k].end)
        middle = len(ks) // 2
        older += ks[:middle] or ks
        newer += ks[middle:]
    return [older, newer]


def unit_prior(fitted: FittedModel, sequences: list[Sequence], cutoffs: list[Cutoff]) -> tuple[float, ...]:
    """(C,) per channel, the median over the cut-offs' contexts of the spread of what the component leaves in them
    (WindowFrame.unit on the fitted scale, each series' own component; the values' spread in a context with no
    residual freedom; 0.0 for a channel no context observes): Component.unit_prior."""
    floor = SCALE_FLOOR * fitted.normaliser.std
    channels = len(fitted.channels)
    spreads: list[list[float]] = [[] for _ in range(channels)]
    for c in cutoffs:
        s = sequences[c.series]
        component = fitted.component_for(s.key)
        assert component is not None  # a local-frame model has a component
        frame = frame_of(component, s.times[:c.end + 1], s.values[:c.end + 1], floor)
        wanted = component.logs(channels)
        for k in range(channels):
            if frame.logged[k] == wanted[k] and not np.isnan(frame.knot_r[:, k]).all():
                spreads[k].append(float(frame.unit[k] * frame.scale[k]))
    return tuple(float(np.median(v)) if v else 0.0 for v in spreads)


def calibration_from(fitted: FittedModel, sequences: list[Sequence], cutoffs: list[Cutoff],
                     far: list[Cutoff] | None = None) -> Calibration:
    """Standardised residuals of the model's forecasts on the cut-offs (32 samples each), by horizon band; and on
    `far` (far_cutoffs: observations past the horizon, which a forecast request refuses) where the network has no
    weight in that cut-off's window, so the forecast is the classical one, defined at any time: their residuals
    count in the last quarter of the horizon, which would otherwise borrow its width from forecasts hours ahead."""
    from model.predict import _local_part, _prepare, _sample, local_spread, mixed, network_unused, observation_std

    obs_std = observation_std(fitted)
    channels = len(fitted.channels)
    offsets, residuals = [], []

    def add(p: _Request, decoded: FloatArray, c: Cutoff, at: FloatArray) -> None:
        assert p.frame is not None  # the local frame's parts carry their window's frame
        mean, scale = local_spread(mixed(fitted, p, decoded), obs_std, p.frame.unit)
        truth = p.frame.to_local(p.times, sequences[c.series].values[c.future][np.searchsorted(at, p.times)])
        offsets.append(p.query - p.ctx_t[-1])
        residuals.append((truth - mean) / scale)

    for k, (context, at) in enumerate(_requests(sequences, cutoffs)):
        parts = _prepare(fitted, context, at, None, k)
        draws, _ = _sample(fitted, parts, 32, [k] * len(parts))
        for p, (decoded, _) in zip(parts, draws, strict=True):
            add(p, decoded, cutoffs[k], at)
    for c, (context, at) in zip(far or [], _requests(sequences, far or []), strict=True):
        ctx = context.select(fitted.channels)
        component = fitted.component_for(ctx.key)
        if component is None or not ctx.times.size:
            continue
        part = _local_part(fitted, component, ctx, ctx.times.size - 1, np.arange(at.size), at)
        if network_unused(fitted, [part]):
            add(part, np.zeros((1, part.times.size, channels)), c, at)
    return Calibration.from_residuals(
        np.concatenate(offsets) if offsets else np.zeros(0),
        np.concatenate(residuals) if residuals else np.zeros((0, channels)),
        fitted.horizon / fitted.normaliser.time_scale, fallback=1 / obs_std)


def baseline(name: str, s: Sequence, end: int, at: FloatArray, season: float | None) -> FloatArray:
    """A baseline forecast (len(at), C) from s's observations [0, end]: "last_value", "drift" (a least-squares
    line through the last 5 observations) or "seasonal_naive" (the series, linearly interpolated, one season back,
    or as many as it takes to reach observed time)."""
    out = np.full((at.size, s.values.shape[1]), np.nan)
    for c in range(s.values.shape[1]):
        seen = ~np.isnan(s.values[:end + 1, c])
        t, x = s.times[:end + 1][seen], s.values[:end + 1, c][seen]
        if t.size == 0:
            continue
        if name == "last_value" or (name == "drift" and t.size < 2):
            out[:, c] = x[-1]
        elif name == "drift":
            slope, intercept = np.polyfit(t[-5:] - t[-1], x[-5:], 1)
            out[:, c] = intercept + slope * (at - t[-1])
        else:
            back = np.ceil((at - t[-1]) / season) * season
            out[:, c] = np.interp(at - back, t, x)
    return out


def backtest(fitted: FittedModel, sequences: list[Sequence], cutoffs: list[Cutoff], sizes: Sizes) -> Backtest:
    """The version's backtest on the cut-offs: per method MAE, MSE, rMAE (MAE ÷ last value's), 90% coverage and
    MAE per quarter of the horizon; the best baseline and whether the model beats it."""
    from model.predict import forecast_batch

    std = fitted.normaliser.std
    requests = _requests(sequences, cutoffs)
    out: Backtest = {"cutoffs": len(cutoffs), "points": int(sum(c.future.size for c in cutoffs)), "methods": {}}
    if not cutoffs:
        out["best_baseline"], out["beats_baselines"] = None, None
        return out
    model = forecast_batch(fitted, requests, samples=64, quantiles=(0.05, 0.95), seeds=range(len(cutoffs)))
    classical = forecast_batch(fitted, requests, part="classical")
    season = min(sizes.seasons) if sizes.seasons else None
    offsets = np.concatenate([sequences[c.series].times[c.future] - sequences[c.series].times[c.end]
                              for c in cutoffs])
    predictions = {"model": [f.mean for f in model], "classical": [f.mean for f in classical]}
    for name in BASELINES:
        if name != "seasonal_naive" or season is not None:
            predictions[name] = [baseline(name, sequences[c.series], c.end, at, season)
                                 for c, (_, at) in zip(cutoffs, requests, strict=True)]
    truth = np.concatenate([sequences[c.series].values[c.future] for c in cutoffs])
    band = (np.concatenate([f.quantiles[0] for f in model]), np.concatenate([f.quantiles[1] for f in model]))
    for name, forecasts in predictions.items():
        pred = np.concatenate(forecasts)
        err = np.abs(pred - truth) / std
        out["methods"][name] = _scores(err, offsets, sizes.horizon, band if name == "model" else None, truth, std)
    last = out["methods"]["last_value"]["mae"]
    for scores in out["methods"].values():
        scores["rmae"] = scores["mae"] / last if last and scores["mae"] is not None else None
    candidates = {n: mae for n in BASELINES if n in out["methods"] and (mae := out["methods"][n]["mae"]) is not None}
    best = min(candidates, key=candidates.__getitem__) if candidates else None
    mine = out["methods"]["model"]["mae"]
    out["best_baseline"] = best
    out["beats_baselines"] = None if best is None or mine is None else bool(mine <= candidates[best])
    return out


INTERVAL_MISS = 20.0  # the 90% band's interval score: 2 / (1 - 0.9) per unit by which a value falls outside it


def _scores(err: FloatArray, offsets: FloatArray, horizon: float, band: tuple[FloatArray, FloatArray] | None,
            truth: FloatArray, std: FloatArray) -> MethodScores:
    """MAE and MSE (err: absolute errors in std units, (points, C)), and with the 90% band (lower, upper (points,
    C)) its coverage (the share of observed values inside it) and interval score (per point its width plus
    INTERVAL_MISS times the distance by which the value falls outside it, in std units, averaged like the MAE: a
    band lowers it only by being narrow where it holds, where coverage alone rewards a band wide enough to hold
    everything); the same per quarter of the horizon (offsets (points,): seconds past each point's cut-off)."""
    observed = ~np.isnan(truth)
    inside = interval = None
    if band is not None:
        lower, upper = band
        inside = (lower <= truth) & (truth <= upper)
        miss = np.maximum(lower - truth, 0.0) + np.maximum(truth - upper, 0.0)
        interval = np.where(observed, (upper - lower + INTERVAL_MISS * miss) / std, np.nan)

    def coverage(mask: BoolArray) -> float | None:
        if inside is None or not (observed & mask[:, None]).any():
            return None
        return float(inside[observed & mask[:, None]].mean())

    def interval_score(mask: BoolArray) -> float | None:
        return None if interval is None else _finite(_mae(interval[mask]))

    every = np.ones(offsets.size, dtype=bool)
    bands: list[BandScores] = []
    for b in range(BANDS):
        lo, hi = horizon * b / BANDS, horizon * (b + 1) / BANDS
        mask = (offsets > lo) & (offsets <= hi)
        bands.append({"until_s": hi, "mae": _finite(_mae(err[mask])), "coverage90": coverage(mask),
                      "interval90": interval_score(mask)})
    return {"mae": _finite(_mae(err)), "mse": _finite(_mae(err**2)), "coverage90": coverage(every),
            "interval90": interval_score(every), "bands": bands}


def _finite(x: float) -> float | None:
    """JSON has no NaN: a score with nothing behind it is None."""
    return float(x) if np.isfinite(x) else None
