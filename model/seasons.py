"""Seasons: which periods a set of irregularly sampled series repeats, found from the data alone.

`detect_seasons` puts the observations on a regular grid and reads the autocorrelation's peaks, each period then
measured on the observations themselves (`refine_period`) and kept where it holds its phase through the history
(`steadiness`). Values beyond CLIP_SIGMAS robust deviations are held at that bound throughout (`clipped`): a few
glitches would otherwise dominate the autocorrelation and the fits. `harmonics` says how many Fourier pairs a
season can carry at a given spacing of the points. The local frame's component (model/frame.py) carries the
seasons found; model/local.py chooses among them by backtest.

Times here are float seconds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from model.arrays import BoolArray, FloatArray, IntArray, evenly

if TYPE_CHECKING:
    from model.data import Sequence

__all__ = ["detect_seasons", "bursty", "refine_period", "steadiness", "median_gap", "fine_gap", "harmonics", "clipped"]

MAX_HARMONICS = 6  # Fourier pairs per season at most (fewer when the data is too sparse to show them)


def _gaps(sequences: list[Sequence]) -> FloatArray:
    """The gaps (s) between consecutive observation times, over all sequences (none: empty)."""
    return np.concatenate([np.diff(s.times) for s in sequences if s.times.size > 1] or [np.zeros(0)])


def median_gap(sequences: list[Sequence]) -> float:
    """The median gap (s) between consecutive observation times, over all sequences (1.0 where there are none)."""
    gaps = _gaps(sequences)
    return float(np.median(gaps)) if gaps.size else 1.0


FINE = 0.2  # fine_gap's quantile of the gaps


def fine_gap(sequences: list[Sequence], shortest: int = 2) -> float:
    """The FINE quantile of the gaps (s) between consecutive observation times, over the sequences with at least
    `shortest` times (1.0 where there are none): the spacing of the data's densest stretches. Where a fifth of the
    gaps are this short, a pattern this fine shows in the data (detect_seasons' grid; the Fourier pairs a season
    may carry besides those the median gap allows, backtest.candidates_of)."""
    gaps = [np.diff(s.times) for s in sequences if s.times.size >= max(shortest, 2)]
    return float(np.quantile(np.concatenate(gaps), FINE)) if gaps else 1.0


def detect_seasons(sequences: list[Sequence], longest: float, limit: int = 2) -> tuple[float, ...]:
    """Seasonal periods (s) the data shows, shortest first, each at most `longest` seconds.

    Each channel of each sequence is put on a regular grid (the fine gap, fine_gap, or coarser where the longest
    series would need more than MAX_CELLS cells): each observation in its nearest cell, cells without one left
    empty (not interpolated: filling a gap of two quarters with a line wipes out a yearly cycle on a quarterly
    series). Its linear trend is removed and its autocorrelation, each lag over the pairs of filled cells it spans,
    searched for local maxima that stand 0.2 above the lowest value
    at shorter lags (a random walk's autocorrelation falls smoothly and has none) and SEASON_Z times above the
    spread white noise gives at that lag (1 / sqrt(pairs) per channel, combined over channels and sequences as the
    autocorrelation is). On a short, noisy series chance maxima stand 0.2 clear easily, and a false season is not
    harmless: among hundreds of candidates scored on a few dozen cut-offs, one that carries it can win the backtest
    by chance and then forecast cycles that are not there. Peaks are taken shortest first;
    one at a multiple of a period already taken counts only when 3% stronger (a weekly cycle over a daily one, not
    the daily cycle's echo a week on). The autocorrelation is averaged over channels and sequences by length.

    Where the observations come in bursts (bursty: an hour of readings a minute apart every day or two, at
    different hours), a grid fine enough for the bursts leaves each long lag a handful of pairs, all from the same
    few bursts, and the autocorrelation finds periods that are not there and misses the day. There the seasons are
    the peaks of a least-squares periodogram instead (_periodogram_seasons), which needs no pairs at any lag, only
    cycles seen at many phases."""
    if not any(s.times.size > 2 for s in sequences):
        return ()
    if bursty(sequences):
        return _periodogram_seasons(sequences, longest, limit)
    spans = [float(s.times[-1] - s.times[0]) for s in sequences if s.times.size > 2]
    step = max(fine_gap(sequences, shortest=3), max(spans) / MAX_CELLS)  # a long, fine series: a coarser grid
    max_lag = int(longest / step)
    if max_lag < 4:
        return ()
    total = np.zeros(max_lag + 1)
    noise = np.zeros(max_lag + 1)  # sum of weight² / pairs: the variance of the weighted mean under white noise
    weight = 0.0
    for s in sequences:
        cells = int(round((s.times[-1] - s.times[0]) / step)) + 1
        if cells < 3 * 4:
            continue
        for c in range(s.values.shape[1]):
            seen, y = _seen(s.values[:, c])
            if seen.sum() < 8:
                continue
            found = _masked_acf(np.rint((s.times[seen] - s.times[0]) / step).astype(np.int64), y,
                                cells, min(max_lag, cells // 3))  # longer lags rest on too few pairs
            if found is None:
                continue
            acf, pairs = found
            total[: acf.size] += acf * seen.sum()
            noise[: acf.size] += np.where(pairs >= MIN_PAIRS, seen.sum() ** 2 / np.maximum(pairs, 1), 0.0)
            weight += seen.sum()
    if weight == 0:
        return ()
    acf = total / weight
    noise = np.sqrt(noise) / weight
    trough = np.minimum.accumulate(acf)
    # maxima over their neighbourhood (a twentieth of the lag each side: the gaps leave the autocorrelation
    # ragged, and one cycle must not show as two peaks a step apart) standing well clear of the lowest value before
    peaks = [lag for lag in range(2, max_lag)
             if acf[lag] > 0.1 and acf[lag] - trough[lag] > 0.2 and acf[lag] > SEASON_Z * noise[lag]
             and acf[lag] >= acf[max(1, lag - 1 - lag // 20):lag].max(initial=-np.inf)
             and acf[lag] > acf[lag + 1:lag + 2 + lag // 20].max(initial=-np.inf)]
    chosen: list[tuple[int, float, float]] = []  # (lag, its autocorrelation, the refined period in seconds)
    rejected: set[int] = set()  # peaks refined and found unsteady, or the same period as one taken
    for lag in peaks:  # shortest first: a longer season must beat each shorter one it is a multiple of
        bases = [(p, a) for p, a, _ in chosen if _near_multiple(lag, p)]
        if any(acf[lag] < 1.03 * a for _, a in bases):
            continue  # an echo of a period already taken (2P, 3P, ...), not a season of its own
        if bases:  # a longer season over a shorter one: the strongest of the multiples (a week, not six days),
            # the shortest of those about as strong (a week's own multiples are as strong as it, and five weeks,
            # by chance a little stronger, must not hide it)
            multiples = [m for m in peaks if all(_near_multiple(m, p) for p, _ in bases)]
            strongest = max(acf[m] for m in multiples)
            lag = min(m for m in multiples if acf[m] >= (1 - AS_STRONG) * strongest)
            if any(lag == p for p, _, _ in chosen):
                continue
        if lag in rejected:
            continue
        period = refine_period(sequences, lag * step, step, reach=1 + lag // 20)  # the peak's own neighbourhood
        if any(abs(period - q) <= SAME_PERIOD * q for _, _, q in chosen) or steadiness(sequences, period) < STEADY:
            rejected.add(lag)  # a quasi-cycle (its phase wanders), a period between two channels' cycles, or a
            continue  # second peak of a season already taken, refined onto it: not a season (of its own)
        chosen.append((lag, float(acf[lag]), period))
        if len(chosen) == limit:
            break
    return tuple(period for _, _, period in chosen)


AS_STRONG = 0.01  # detect_seasons: a multiple's autocorrelation this close (relative) to the strongest's is as strong
SAME_PERIOD = 0.02  # detect_seasons: a refined period this close (relative) to one taken is that one
STEADY = 0.5  # detect_seasons: the cosine of a season's phase shift between the older and the newer half at least
STEADY_POINTS = 20_000  # observations (newest series first) steadiness reads at most


BURSTY = 4.0  # observations come in bursts where the mean gap is at least this many times the median gap


def bursty(sequences: list[Sequence]) -> bool:
    """Whether the observations come in bursts: their mean gap at least BURSTY times their median gap, over all
    sequences. A regular series, thinned at random (every benchmark series) or with gaps, is about 1-2; readings
    at random times, 1.4; an hour of readings a minute apart every day, 24."""
    gaps = _gaps(sequences)
    return gaps.size >= 8 and float(gaps.mean()) >= BURSTY * float(np.median(gaps))


OVERSAMPLE = 4  # _periodogram_seasons: frequencies this many times finer than 1 / the longest span
MAX_FREQUENCIES = 20_000  # ... at most this many (the shortest period searched is longer where it would be more)
SHORTEST_GAPS = 4  # ... the shortest period searched: this many mean gaps
PERIODOGRAM_CELLS = 4_000  # ... reads at most this many cells (the mean of a cell's points), over all channels
CELLS_PER_PERIOD = 8  # ... of width an eighth of the shortest period searched
FALSE_ALARM = 0.01  # ... white noise at the bursts' count shows a peak above the threshold this often, anywhere
TRIES = 3  # ... peaks refined and checked for steadiness per season, strongest first
PRIOR_HARMONICS = 3  # ... Fourier pairs of a season taken out before the next one is sought


def _periodogram_seasons(sequences: list[Sequence], longest: float, limit: int) -> tuple[float, ...]:
    """detect_seasons on bursty observations: the peaks of a least-squares periodogram (Lomb-Scargle with a level
    and a line: the share of each channel's variance a sine and cosine of the frequency explain, averaged over
    channels by their cells) over periods from SHORTEST_GAPS mean gaps to `longest`, on each channel's points
    averaged within short cells (a burst's readings are one sample of its moment, not many).

    A peak counts where white noise would reach its height with probability FALSE_ALARM over all the frequencies
    searched, the noise's independent samples taken as the number of bursts (runs of points with no gap above
    the mean gap): the points of one burst share their moment's noise. The strongest peak is refined on a finer
    grid and kept where it holds its phase through the history (steadiness); its season (PRIOR_HARMONICS Fourier
    pairs, a level and a line) is then taken out of every channel and the periodogram read again for the next:
    what stays of a cycle after its own fit is neither its harmonics nor the aliases the bursts' spacing
    makes of it. Up to `limit` seasons, shortest first."""
    mean_gap = float(_gaps(sequences).mean())
    span = max(float(s.times[-1] - s.times[0]) for s in sequences)
    step = 1.0 / (OVERSAMPLE * span)
    low = 1.0 / longest
    high = min(1.0 / (SHORTEST_GAPS * mean_gap), low + MAX_FREQUENCIES * step)
    frequencies = np.arange(low, high, step)
    if frequencies.size < 4:
        return ()
    channels = _cells(sequences, 1.0 / (CELLS_PER_PERIOD * high), mean_gap)
    bursts = sum(b for _, _, b in channels)
    if bursts <= 8:
        return ()
    threshold = 1.0 - (FALSE_ALARM / (span * (high - low))) ** (2.0 / (bursts - 4))
    chosen: list[float] = []
    values = [y for _, y, _ in channels]
    times = [t for t, _, _ in channels]
    while len(chosen) < limit:
        power = _power(times, values, frequencies)
        inner = np.flatnonzero((power[1:-1] >= power[:-2]) & (power[1:-1] > power[2:]) & (power[1:-1] >= threshold))
        found = None
        for i in (inner + 1)[np.argsort(-power[inner + 1])][:TRIES]:
            fine = np.linspace(frequencies[i] - step, frequencies[i] + step, 41)
            period = 1.0 / float(fine[int(np.argmax(_power(times, values, fine)))])
            if not any(abs(period - q) <= SAME_PERIOD * q for q in chosen) and steadiness(sequences, period) >= STEADY:
                found = period
                break
        if found is None:
            break
        chosen.append(found)
        values = [_without_season(t, y, found) for t, y in zip(times, values, strict=True)]
    return tuple(sorted(chosen))


def _cells(sequences: list[Sequence], width: float, mean_gap: float) -> list[tuple[FloatArray, FloatArray, int]]:
    """Per channel of each sequence (newest first, PERIODOGRAM_CELLS cells at most over all, spread evenly over a
    channel that has more than are left): the mean time and the mean clipped value of its observations in each
    cell of `width` s that holds any, the values standardised, and its number of bursts (runs with no gap above
    `mean_gap`). Channels with fewer than 8 cells or no spread are left out."""
    out: list[tuple[FloatArray, FloatArray, int]] = []
    budget = PERIODOGRAM_CELLS
    for s in sorted(sequences, key=lambda s: -s.times[-1]):
        for c in range(s.values.shape[1]):
            if budget <= 0:
                return out
            seen, y = _seen(s.values[:, c])
            t = s.times[seen]
            if t.size < 8:
                continue
            _, cell, counts = np.unique(np.floor((t - t[0]) / width), return_inverse=True, return_counts=True)
            t_mean = np.bincount(cell, weights=t - t[0]) / counts
            y_mean = np.bincount(cell, weights=y) / counts
            keep = evenly(t_mean.size, budget)
            t_mean, y_mean = t_mean[keep], y_mean[keep]
            if t_mean.size < 8 or not y_mean.std() > 0:
                continue
            budget -= t_mean.size
            out.append((t_mean, (y_mean - y_mean.mean()) / y_mean.std(), 1 + int(np.sum(np.diff(t) > mean_gap))))
    return out


def _power(times: list[FloatArray], values: list[FloatArray], frequencies: FloatArray) -> FloatArray:
    """(F,) the share of the variance a sine and cosine of each frequency (Hz) explain beyond a level and a line,
    per channel (times (n,) s, values (n,)), averaged over channels by their points."""
    total = np.zeros(frequencies.size)
    for t, y in zip(times, values, strict=True):
        basis, _ = np.linalg.qr(np.stack([np.ones_like(t), t / (t[-1] or 1.0)], axis=1))
        y = y - basis @ (basis.T @ y)
        yy = float(y @ y)
        if yy <= 0:
            continue
        chunk = max(1, 2_000_000 // t.size)
        for start in range(0, frequencies.size, chunk):
            angle = 2 * np.pi * np.outer(frequencies[start:start + chunk], t)
            sin, cos = np.sin(angle), np.cos(angle)
            sin_q, cos_q = sin @ basis, cos @ basis
            a = np.einsum("fn,fn->f", sin, sin) - np.einsum("fk,fk->f", sin_q, sin_q)
            b = np.einsum("fn,fn->f", sin, cos) - np.einsum("fk,fk->f", sin_q, cos_q)
            d = np.einsum("fn,fn->f", cos, cos) - np.einsum("fk,fk->f", cos_q, cos_q)
            u, v = sin @ y, cos @ y
            det = a * d - b * b
            explained = (d * u * u - 2 * b * u * v + a * v * v) / np.maximum(det, 1e-300)
            explained = np.where(det > 1e-12 * a * d, explained, 0.0)  # a frequency the points cannot resolve
            total[start:start + chunk] += t.size * explained / yy
    return total / sum(t.size for t in times)


def _without_season(t: FloatArray, y: FloatArray, period: float) -> FloatArray:
    """What is left of values y (n,) at times t (n,) s after a least-squares fit of a level, a line and
    PRIOR_HARMONICS Fourier pairs of `period` s."""
    angle = 2 * np.pi * np.remainder(t, period) / period
    design = np.column_stack([np.ones_like(t), t / (t[-1] or 1.0)]
                             + [f(j * angle) for j in range(1, PRIOR_HARMONICS + 1) for f in (np.sin, np.cos)])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    rest: FloatArray = y - design @ coef
    return rest


def steadiness(sequences: list[Sequence], period: float) -> float:
    """Whether a cycle of `period` seconds keeps its phase through each series' history: the cosine of the shift
    between its phase in the older half and in the newer half (each fitted by least squares, a sine and a cosine of
    the period beside a level and a line, on that half alone), averaged over channels and series by their
    observations (a channel constant in a half has no phase and is left out). A season repeats in step throughout
    (near 1); an autocorrelation peak can also come from a
    quasi-cycle, whose phase wanders (El Niño's 4-8 years), or, averaged over channels, from a period between two
    channels' different cycles, and then the halves disagree. 0.0 where no series holds two periods in each half:
    a season must show that it repeats. One comparison per series: a period the data does not hold agrees by
    chance about one time in three, so this rules out what the autocorrelation alone lets through, not all of it."""
    total = weight = 0.0
    budget = STEADY_POINTS
    for s in sorted(sequences, key=lambda s: -s.times[-1]):
        if budget <= 0:
            break
        budget -= s.times.size
        for c in range(s.values.shape[1]):
            seen, y = _seen(s.values[:, c])
            t = s.times[seen]
            if t.size < 12:
                continue
            middle = (t[0] + t[-1]) / 2
            halves = [t <= middle, t > middle]
            if any(h.sum() < 6 or np.ptp(t[h]) < 2 * period or not np.ptp(y[h]) > 0 for h in halves):
                continue
            phases = []
            for h in halves:
                th = t[h]
                angle = 2 * np.pi * np.remainder(th, period) / period
                design = np.column_stack([np.ones_like(th), (th - th[0]) / np.ptp(th), np.sin(angle), np.cos(angle)])
                phases.append(np.linalg.lstsq(design, y[h], rcond=None)[0][2:])
            older, newer = phases
            norm = float(np.linalg.norm(older) * np.linalg.norm(newer))
            total += (float(older @ newer) / norm if norm > 0 else 0.0) * t.size
            weight += t.size
    return total / weight if weight else 0.0


def _masked_acf(cell: IntArray, y: FloatArray, cells: int, lags: int) -> tuple[FloatArray, FloatArray] | None:
    """Autocorrelation (lags + 1,) of values `y` observed in grid cells `cell` (several in one cell: their mean)
    out of `cells`, its least-squares line removed; each lag averages the products over the pairs of filled cells
    it spans (a lag spanning fewer than MIN_PAIRS pairs: 0). Returned with those pair counts (lags + 1,); None
    when the values do not vary."""
    counts = np.bincount(cell, minlength=cells)
    filled = counts > 0
    where = np.flatnonzero(filled)
    mean = np.bincount(cell, weights=y, minlength=cells)[filled] / counts[filled]
    mean = mean - np.polyval(np.polyfit(where.astype(np.float64), mean, 1), where)
    variance = float(mean @ mean) / mean.size
    if variance <= 0:
        return None
    grid, mask = np.zeros(cells), filled.astype(np.float64)
    grid[where] = mean
    products = np.fft.irfft(np.abs(np.fft.rfft(grid, 2 * cells)) ** 2)[: lags + 1]
    pairs = np.rint(np.fft.irfft(np.abs(np.fft.rfft(mask, 2 * cells)) ** 2)[: lags + 1])
    return np.where(pairs >= MIN_PAIRS, products / np.maximum(pairs, 1) / variance, 0.0), pairs


MIN_PAIRS = 8  # _masked_acf: a lag needs this many pairs of filled cells
MAX_CELLS = 200_000  # detect_seasons' grid holds the longest series in at most this many cells
SEASON_Z = 3.0  # a season's autocorrelation is at least this many times what white noise gives at its lag: tens of
# lags are searched, and the largest of their chance values must stay below it on most series without a season


REFINE_STEPS = 101  # candidate periods tried around an autocorrelation peak, in each of REFINE_PASSES passes
REFINE_PASSES = 2  # each pass searches around the last one's best, over two of its spacings each side
REFINE_POINTS = 20_000  # points (newest first, over all sequences) the refinement reads at most


def refine_period(sequences: list[Sequence], period: float, step: float, reach: int = 1) -> float:
    """The period (s) within `reach` grid steps of `period` whose sine and cosine terms (up to 3 harmonics, as many
    as the grid resolves, with a level and a line) fit the observations best by least squares, summed over
    channels in units of each one's variance. (With harmonics finer than the grid a period aliases: on a quarterly
    grid, 3 harmonics of 273 days fit a yearly cycle as well as 365 days do.)

    The autocorrelation finds a season to the nearest grid step only (a year as 367 days on a monthly grid); over
    a long context that error turns the phase around (two days a year are three months in 45 years), so the
    component fitted on a long history would average the season away. Where the grid is much finer than the
    season (a day on a grid of minutes), its autocorrelation peak is broad and noise moves its top by several
    steps: detect_seasons searches the peak's whole neighbourhood (`reach`), then finer around the best."""
    terms = min(3, harmonics(period, step))
    lo, hi = period - reach * step, period + reach * step
    channels = _refine_channels(sequences, 1.5 * hi)
    best = period
    for _ in range(REFINE_PASSES):
        candidates = np.linspace(lo, hi, REFINE_STEPS)
        candidates = candidates[candidates > 2 * step]
        if candidates.size == 0 or not channels:
            return best
        gain = np.zeros(candidates.size)
        for t, y, line in channels:
            for i, p in enumerate(candidates):
                phase = 2 * np.pi * np.remainder(t, p) / p
                design = np.concatenate([line] + [np.stack([np.sin(j * phase), np.cos(j * phase)], axis=1)
                                                  for j in range(1, terms + 1)], axis=1)
                coef, *_ = np.linalg.lstsq(design, y, rcond=None)
                gain[i] -= float(np.sum((y - design @ coef) ** 2)) / t.size
        if not gain.any():  # constant channels: every period fits alike
            return best
        best = float(candidates[int(np.argmax(gain))])
        spacing = (hi - lo) / (REFINE_STEPS - 1)
        lo, hi = best - 2 * spacing, best + 2 * spacing
    return best


def _refine_channels(sequences: list[Sequence], span: float) -> list[tuple[FloatArray, FloatArray, FloatArray]]:
    """What refine_period fits, read once for all its passes: per channel of the newest series (REFINE_POINTS
    points at most, over a span of at least `span` s, 8 observed values at least), its observed times, their
    values clipped and standardised, and the level and line columns. A series with more points than the budget
    leaves gives that many spread evenly over its whole span (a year of readings a minute apart: one in 26), not
    its newest: two weeks of them measure a weekly season to a day at best."""
    out = []
    budget = REFINE_POINTS
    for s in sorted(sequences, key=lambda s: -s.times[-1]):
        if budget <= 0:
            break
        index = evenly(s.times.size, budget)
        t_all = s.times[index]
        if t_all.size < 8 or t_all[-1] - t_all[0] < span:
            continue
        budget -= t_all.size
        for c in range(s.values.shape[1]):
            seen, y = _seen(s.values[index, c])
            if seen.sum() < 8:
                continue
            t = t_all[seen]
            y = (y - y.mean()) / (y.std() or 1.0)
            out.append((t, y, np.stack([np.ones_like(t), (t - t[0]) / (t[-1] - t[0])], axis=1)))
    return out


CLIP_SIGMAS = 5.0  # _seen: how far from the median, in robust standard deviations, a value may lie


def clipped(y: FloatArray) -> FloatArray:
    """`y` held within CLIP_SIGMAS robust standard deviations (1.4826 x the median absolute deviation) of its
    median; as it is where that deviation is 0. Season finding reads values by products and least squares, where
    one sensor glitch a hundred times the signal outweighs a whole cycle; a cycle, a trend or ordinary noise lies
    within a few such deviations and is left as it is. Held at the bound, not left out: a cycle's own peaks can lie
    beyond it (lynx trappings, counts in bursts), and without them the cycle would not show."""
    median = float(np.median(y))
    mad = float(np.median(np.abs(y - median)))
    if mad <= 0:
        return y
    reach = CLIP_SIGMAS * 1.4826 * mad
    return np.clip(y, median - reach, median + reach)


def _seen(values: FloatArray) -> tuple[BoolArray, FloatArray]:
    """A channel's values as season finding reads them: which are observed, and those values clipped."""
    seen = ~np.isnan(values)
    return seen, clipped(values[seen]) if seen.any() else values[seen]


def _near_multiple(lag: int, period: int) -> bool:
    """Whether `lag` is about n * `period` (n >= 2): within a tenth of the period, plus n times the slack a peak
    of that period may have (a twentieth of it: a daily cycle found at 49 half-hours has its fifth at 239, not 245)."""
    ratio = lag / period
    n = round(ratio)
    return ratio > 1.5 and abs(lag - n * period) <= 0.1 * period + n * (period // 20)


def harmonics(period: float, gap: float) -> int:
    """Fourier pairs a season of `period` seconds can carry when points come every `gap` seconds (Nyquist)."""
    return int(max(1, min(MAX_HARMONICS, period // (2 * gap))))
