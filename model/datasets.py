"""Benchmark data sets, generated in code with fixed seeds. Times are seconds from 0.

Each maker returns a `Task`: training sequences, and test (context, at, truth) triples where `truth` (Q, C) holds
the values the forecast at `at` (Q,) is scored against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.integrate import solve_ivp

from model.arrays import FloatArray
from model.data import Sequence

__all__ = ["Task", "periodic", "spirals", "lotka_volterra", "panel"]


@dataclass(frozen=True)
class Task:
    name: str
    train: list[Sequence]
    test: list[tuple[Sequence, FloatArray, FloatArray]]  # (context, at (Q,), truth (Q, C))
    validation: tuple[Sequence, ...] = ()  # more series like `train` (never test), where the maker gives some


def periodic(mode: str, n: int = 1000, seed: int = 0) -> Task:
    """Rubanova et al.'s "periodic" toy set: sin(2 pi f t) + z0, f ~ U[0.4, 0.8], z0 ~ 1 + N(0, 0.1^2), plus noise
    0.01 U[0, 1); one grid shared by all series, t0 = 0 and 99 sorted draws from U[0, 5]; 80 % train, 20 % test,
    and n / 5 validation series more on the same grid.

    mode "interp": the test encoder sees 50 random points of a series, the score covers all 100;
    mode "extrap": the test encoder sees the points with t < 2.5, the score covers the rest.
    """
    rng = np.random.default_rng(seed)
    times = np.concatenate([[0.0], np.sort(rng.uniform(0, 5, 99))])

    def draw(count: int, rng: np.random.Generator) -> list[Sequence]:
        freq = rng.uniform(0.4, 0.8, count)
        z0 = 1 + rng.normal(0, 0.1, count)
        values = np.sin(2 * np.pi * freq[:, None] * times) + z0[:, None] + 0.01 * rng.random((count, times.size))
        return [Sequence(times, v[:, None], ("x",)) for v in values]

    series = draw(n, rng)
    cut = int(0.8 * n)
    test = []
    for s in series[cut:]:
        if mode == "interp":
            keep = np.sort(rng.choice(times.size, 50, replace=False))
            test.append((Sequence(times[keep], s.values[keep], ("x",)), times, s.values))
        elif mode == "extrap":
            seen = times < 2.5
            test.append((Sequence(times[seen], s.values[seen], ("x",)), times[~seen], s.values[~seen]))
        else:
            raise ValueError(f"mode must be 'interp' or 'extrap', got {mode!r}")
    validation = draw(max(1, n // 5), np.random.default_rng([seed, 1]))  # same grid, its own draws
    return Task(f"periodic-{mode}", series[:cut], test, tuple(validation))


def spirals(points: int, n: int = 1000, seed: int = 0) -> Task:
    """Chen et al. (2018) §5.1 spirals: Archimedean spirals r = 0.3 z, half clockwise, half counter-clockwise,
    centres (+-5, 0); each series a random stretch of 100 equally spaced steps (the stretch's length is a third of
    the 0..6 pi curve), observed at `points` random steps with Gaussian noise 0.3 on both channels.
    The encoder sees the observations in the first half of a stretch; the score (RMSE in the README) is against
    the noise-free spiral at all 100 steps. 80 % train, 20 % test.
    """
    rng = np.random.default_rng(seed)
    total, steps = 500, 100
    grid = np.linspace(0, 6 * np.pi, total)
    step_seconds = 0.1  # stretches span 9.9 s
    train, test = [], []
    for k in range(n):
        start = rng.integers(steps, total - 2 * steps)
        z = grid[start:start + steps]
        if rng.random() < 0.5:  # clockwise: run the curve from the outside in
            zs = 6 * np.pi + 1 - z
            truth = np.stack([0.3 * zs * np.cos(zs) - 5, 0.3 * zs * np.sin(zs)], axis=1)
        else:
            truth = np.stack([0.3 * z * np.cos(z) + 5, 0.3 * z * np.sin(z)], axis=1)
        times = np.arange(steps, dtype=np.float64) * step_seconds  # exact integers: the same times as int arange
        seen = np.sort(rng.choice(steps, points, replace=False))
        seen[0] = 0  # every stretch is observed at its start, so the window (and z0) starts there
        seen = np.unique(seen)
        noisy = truth[seen] + rng.normal(0, 0.3, (seen.size, 2))
        observed = Sequence(times[seen], noisy, ("x", "y"))
        if k < int(0.8 * n):
            train.append(observed)
        else:
            first = times[seen] < times[-1] / 2
            test.append((Sequence(times[seen][first], noisy[first], ("x", "y")), times, truth))
    return Task(f"spirals-{points}", train, test)


def lotka_volterra(n: int = 500, seed: int = 0) -> Task:
    """Predator-prey populations (scipy solve_ivp, RK45, rtol 1e-8) observed at irregular times: over 20 s, prey
    and predator each observed at their own Poisson times (rate 2/s, so channels rarely coincide), noise 2 % of
    scale. dx/dt = a x - b x y, dy/dt = d x y - c y with a, b, c, d = 1.0, 0.4, 1.0, 0.1 and random start
    populations. The encoder sees the first 10 s; the score covers the noise-free state at 40 times in the last 10.
    """
    rng = np.random.default_rng(seed)
    a, b, c, d = 1.0, 0.4, 1.0, 0.1

    def rhs(_t: float, s: FloatArray) -> list[float]:
        return [a * s[0] - b * s[0] * s[1], d * s[0] * s[1] - c * s[1]]

    train, test = [], []
    for k in range(n):
        y0 = rng.uniform([5.0, 1.0], [15.0, 4.0])
        obs = [np.sort(rng.uniform(0, 20, rng.poisson(40))) for _ in range(2)]
        future = np.sort(rng.uniform(10, 20, 40))
        times = np.unique(np.concatenate([[0.0], *obs, future]))
        sol = solve_ivp(rhs, (0, 20), y0, t_eval=times, rtol=1e-8, atol=1e-8).y.T  # (T, 2)
        values = np.full_like(sol, np.nan)
        for ch in range(2):
            where = np.isin(times, np.concatenate([[0.0], obs[ch]]))
            values[where, ch] = sol[where, ch] * (1 + 0.02 * rng.normal(size=where.sum()))
        keep = ~np.all(np.isnan(values), axis=1)
        observed = Sequence(times[keep], values[keep], ("prey", "predator"))
        if k < int(0.8 * n):
            train.append(observed)
        else:
            first = observed.times < 10
            context = Sequence(observed.times[first], observed.values[first], observed.channels)
            at = np.isin(times, future)
            test.append((context, times[at], sol[at]))
    return Task("lotka-volterra", train, test)


HOUR = 3600.0


def panel(n: int = 1000, points: int = 240, seed: int = 0) -> Task:
    """A panel of `n` irregular series of one channel, like a fleet of devices on their own clocks: gaps uniform in
    [0.5, 1.5] hours (`points` observations, about 10 days with the default); each series has its own level, trend
    and cycle, whose period (16 to 32 hours) differs from series to series, so no one season fits the panel, plus a
    weaker daily cycle shared by all and AR(1) noise (coefficient 0.8, innovations 0.05). The test part of each
    series is its last day: the encoder sees the rest, the score covers the noise-free values there. Every series
    is in `train` (its first part) and in `test`.
    """
    rng = np.random.default_rng(seed)
    train, test = [], []
    for _ in range(n):
        times = np.concatenate([[0.0], np.cumsum(rng.uniform(0.5, 1.5, points - 1))]) * HOUR
        level, trend = rng.normal(0.0, 3.0), rng.normal(0.0, 0.2)
        amp, period = rng.uniform(0.5, 2.0), rng.uniform(16.0, 32.0) * HOUR
        phase, phase_day = rng.uniform(0, 2 * np.pi, 2)
        clean = (level + trend * times / (24 * HOUR) + amp * np.sin(2 * np.pi * times / period + phase)
                 + 0.3 * np.sin(2 * np.pi * times / (24 * HOUR) + phase_day))
        noise = np.zeros(points)
        for k in range(1, points):
            noise[k] = 0.8 * noise[k - 1] + 0.05 * rng.standard_normal()
        values = (clean + noise)[:, None]
        seen = times <= times[-1] - 24 * HOUR
        train.append(Sequence(times[seen], values[seen], ("x",)))
        test.append((train[-1], times[~seen], clean[~seen, None]))
    return Task("panel", train, test)
