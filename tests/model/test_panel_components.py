"""A model of several named series: one network, a classical component per series where the series' own cut-offs
clearly prefer one to the component shared by the panel."""

import dataclasses

import numpy as np
import pytest

import model.backtest
import model.local
from model import InputError, ModelConfig, Sequence, fit, forecast, from_bytes, to_bytes
from model.backtest import STAYS, candidates_of, choose_component, cutoffs_of, history_cutoffs
from model.frame import SCALE_FLOOR, frame_of
from model.local import OWN_COMPONENTS, choose_sizes, own_components, own_sizes

HOUR = 3600.0
DAY = 24 * HOUR
T0 = 1.7e9


def cycle(key: str | None = "cycle") -> Sequence:
    """Hourly, 60% kept: a steady daily cycle with a little noise."""
    rng = np.random.default_rng(1)
    t = T0 + np.arange(24 * 30) * HOUR
    keep = rng.random(t.size) < 0.6
    x = 10 + 3 * np.sin(2 * np.pi * t / DAY) + 0.1 * rng.normal(size=t.size)
    return Sequence(t[keep], x[keep], ("v",), key)


def walk(key: str | None = "walk") -> Sequence:
    """Hourly, 60% kept: a random walk (the last value is the best forecast)."""
    rng = np.random.default_rng(2)
    t = T0 + np.arange(24 * 30) * HOUR
    keep = rng.random(t.size) < 0.6
    return Sequence(t[keep], 10 + np.cumsum(rng.normal(size=t.size))[keep], ("v",), key)


CONFIG = ModelConfig(frame="local", horizon=2 * DAY, train_steps=4, latent_dim=2, hidden_dim=8, units=8,
                     batch_size=8, gradient="backprop")


@pytest.fixture(scope="module")
def panel():
    return fit([cycle(), walk()], CONFIG)


def test_each_named_series_keeps_the_component_its_own_cutoffs_prefer(panel):
    own = panel.components
    assert set(own) == {"cycle", "walk"}
    assert own["cycle"].seasons and own["cycle"].persistence < panel.horizon, own["cycle"]  # the daily cycle
    assert own["walk"].persistence >= panel.horizon / 2, own["walk"]  # the last residual carries: the last value
    assert own["cycle"] != panel.component  # the panel's shared choice keeps the walk's last value
    assert panel.context_seconds >= max(c.context for c in (panel.component, *own.values()))
    assert all(c.blend == panel.component.blend for c in own.values())  # one network, one blend


def test_a_context_is_forecast_with_its_series_component_and_any_other_with_the_shared_one(panel):
    floor = SCALE_FLOOR * panel.normaliser.std
    for key in ("cycle", "walk", None, "never-trained"):
        series = walk(key) if key != "cycle" else cycle(key)
        at = series.times[-1] + np.array([HOUR, DAY])
        got = forecast(panel, series, at, part="classical").mean
        component = panel.components.get(key, panel.component) if key else panel.component
        np.testing.assert_allclose(got, frame_of(component, series.times, series.values, floor).classical(at))
    at = cycle().times[-1] + np.array([HOUR, DAY])
    assert not np.allclose(forecast(panel, cycle("cycle"), at, part="classical").mean,
                           forecast(panel, cycle(None), at, part="classical").mean)  # the key chooses the answer


def test_panel_components_round_trip_through_bytes(panel):
    again = from_bytes(to_bytes(panel))
    assert again.components == panel.components and again.component == panel.component
    series = cycle()
    at = series.times[-1] + np.array([60.0, DAY])
    np.testing.assert_array_equal(forecast(again, series, at, samples=8, seed=3).quantiles,
                                  forecast(panel, series, at, samples=8, seed=3).quantiles)


def test_a_series_own_choice_must_clearly_beat_the_shared_one(monkeypatch):
    """On a random walk a level that never fades is a poor forecast: its own choice replaces it, unless the margin
    asks for more than any choice can give."""
    series = walk()
    sizes = choose_sizes([series], CONFIG)
    (cuts, past), std = _cuts([series], sizes), np.std(series.values, axis=0)
    own = choose_component([series], cuts, past, sizes, std)
    poor = next(c for c in candidates_of(sizes) if c.persistence == 0 and c.half_life >= STAYS * c.context
                and not c.trend and not c.seasons)
    assert choose_component([series], cuts, past, sizes, std, shared=poor) == own
    assert choose_component([series], cuts, past, sizes, std, shared=own) == own
    monkeypatch.setattr(model.backtest, "OWN_MARGIN", 1e-9)
    assert choose_component([series], cuts, past, sizes, std, shared=poor) == poor


def test_one_series_unnamed_series_or_too_many_share_one_component(monkeypatch):
    sizes = choose_sizes([cycle(), walk()], CONFIG)
    shared, std = candidates_of(sizes)[0], np.ones(1)
    assert own_components([cycle()], shared, sizes, std, CONFIG) == {}
    assert own_components([cycle(None), walk(None)], shared, sizes, std, CONFIG) == {}
    assert set(own_components([cycle(), walk(None)], shared, sizes, std, CONFIG)) == {"cycle"}
    assert OWN_COMPONENTS == 50  # the panel size the service's documentation names
    monkeypatch.setattr(model.local, "OWN_COMPONENTS", 1)
    assert own_components([cycle(), walk()], shared, sizes, std, CONFIG) == {}


def test_keys_are_checked():
    with pytest.raises(InputError, match="key 'a' is given to more than one"):
        fit([cycle("a"), walk("a")], CONFIG)
    with pytest.raises(InputError, match="key must be a non-empty string"):
        Sequence([0.0, 1.0], [1.0, 2.0], ("v",), "")
    with pytest.raises(InputError, match="key must be a non-empty string"):
        Sequence([0.0, 1.0], [1.0, 2.0], ("v",), 7)  # type: ignore[arg-type]
    assert cycle("k").select(("v",)).key == "k"


def weekly(key: str | None = "weekly") -> Sequence:
    """Hourly, 60% kept: a weekly cycle (no daily one) with a little noise."""
    rng = np.random.default_rng(3)
    t = T0 + np.arange(24 * 30) * HOUR
    keep = rng.random(t.size) < 0.6
    x = 10 + 3 * np.sin(2 * np.pi * t / (7 * DAY)) + 0.1 * rng.normal(size=t.size)
    return Sequence(t[keep], x[keep], ("v",), key)


def test_each_series_of_a_panel_is_offered_its_own_seasons():
    """The panel's seasons are found on all its series together; a series whose own season is not among them
    (here the walk's none, the weekly series' week beside three daily ones) gets candidates with its own."""
    panel = [cycle("a"), cycle("b"), cycle("c"), weekly(), walk()]
    sizes = choose_sizes(panel, CONFIG)
    assert any(abs(p - DAY) < HOUR for p in sizes.seasons), sizes.seasons
    assert not any(abs(p - 7 * DAY) < DAY / 2 for p in sizes.seasons), sizes.seasons
    mine = own_sizes(weekly(), sizes, CONFIG)
    assert [abs(p - 7 * DAY) < DAY / 2 for p in mine.seasons] == [True], mine.seasons
    assert own_sizes(walk(), sizes, CONFIG).seasons == ()
    assert (mine.horizon, mine.encoder) == (sizes.horizon, sizes.encoder)  # one network: one window
    assert own_sizes(weekly(), sizes, dataclasses.replace(CONFIG, seasons=(DAY,))).seasons == (DAY,)
    # the choice itself on one context long enough for the week (fewer candidates than three contexts: faster)
    config = dataclasses.replace(CONFIG, context=18 * DAY)
    sizes = choose_sizes(panel, config)
    shared = choose_component(panel, *_cuts(panel, sizes), sizes, np.ones(1))
    own = own_components(panel, shared, sizes, np.ones(1), config)
    assert [abs(p - 7 * DAY) < DAY / 2 for p in own["weekly"].seasons] == [True], own["weekly"]
    week = np.array([DAY, 3 * DAY])
    series = weekly()
    truth = 10 + 3 * np.sin(2 * np.pi * (series.times[-1] + week) / (7 * DAY))
    floor = SCALE_FLOOR * np.std(series.values, axis=0)
    errors = {name: np.abs(frame_of(c, series.times, series.values, floor).classical(series.times[-1] + week)[:, 0]
                           - truth).max() for name, c in (("own", own["weekly"]), ("shared", shared))}
    assert errors["own"] < 0.5 * errors["shared"], errors


def _cuts(sequences: list[Sequence], sizes):
    cuts, _, _ = cutoffs_of(sequences, sizes, np.random.default_rng(0))
    return cuts, history_cutoffs(sequences, sizes)


def _two_channels(key: str, cycle_channel: int, seed: int) -> Sequence:
    """Hourly over 30 days, 60% kept: a daily cycle on one channel, a random walk on the other."""
    rng = np.random.default_rng(seed)
    t = T0 + np.arange(24 * 30) * HOUR
    day = 10 + 3 * np.sin(2 * np.pi * t / DAY) + 0.1 * rng.normal(size=t.size)
    walked = 10 + np.cumsum(rng.normal(size=t.size))
    x = np.stack([day, walked] if cycle_channel == 0 else [walked, day], axis=1)
    keep = rng.random(t.size) < 0.6
    return Sequence(t[keep], x[keep], ("a", "b"), key)


def test_a_series_of_several_channels_chooses_its_own_part_per_channel():
    """Beside a shared component with a part per channel, a series keeps the shared part on a channel where its
    own choice does not clearly beat it, and takes its own on a channel where it does: one channel's own choice
    does not take the others with it."""
    sequences = [_two_channels("p", 0, 1), _two_channels("q", 1, 2), _two_channels("r", 0, 3)]
    setup = model.local.choice_setup(sequences, CONFIG)
    shared = choose_component(sequences, setup.cutoffs, setup.history, setup.sizes, setup.norm.std)
    assert len(shared.channels) == 2 and not any(part.seasons for part in shared.channels), shared
    own = own_components(sequences, shared, setup.sizes, setup.norm.std, CONFIG)
    q = own["q"]
    assert q.channels[0] == shared.channels[0]  # the walk: the shared part stays
    assert q.channels[1].seasons and q.channels[1] != shared.channels[1]  # its cycle: its own, with a season
    r = own["r"]
    assert r.channels[0].seasons and r.channels[1] == shared.channels[1]
