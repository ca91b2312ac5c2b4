"""GET /v1/series/{key}/forecast with a trained toy model, on both backends."""

import asyncio
import dataclasses

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete

import model
from service.app import create_app
from service.config import Settings
from service.storage.tables import models
from service.times.durations import format_duration, format_seconds
from service.times.timefmt import format_time
from tests.service.forecast_support import (
    T0,
    S,
    add_points,
    add_series,
    perturbed_artifact,
    publish,
    toy_artifact,
    toy_model,
    toy_sequence,
)

URL = "/v1/series/room/forecast"
LEVEL = 1.3


def iso(t_s: float) -> str:
    return format_time(T0 + int(round(t_s * S)))


@pytest.fixture
def room(engine: Engine) -> tuple[np.ndarray, np.ndarray]:
    """A series the model never saw (level 1.3), and a ready version trained on it; returns its (t_s, values)."""
    t, v = toy_sequence(np.random.default_rng(42), LEVEL)
    add_series(engine, "room", t, v)
    publish(engine, "toy", 1, toy_artifact(), ["room"])
    return t, v


def test_mean_is_close_to_the_observations_near_observed_times(client: TestClient, room: tuple) -> None:
    t, v = room
    r = client.get(URL, params={"at": [iso(x) for x in t], "seed": 1})
    assert r.status_code == 200, r.text
    body = r.json()
    mean = np.array(body["channels"]["temp"]["mean"])
    # The training mean is ~0: predicting it would miss by ~1.3.
    assert np.sqrt(np.mean((mean - v) ** 2)) < 0.35
    assert body["series"] == "room" and body["model"] == {"name": "toy", "version": 1}
    assert body["warnings"] == []  # a version with no backtest has nothing to warn about


def test_request_order_repeats_and_kind_flags(client: TestClient, room: tuple) -> None:
    t, _ = room
    asked = [t[-1] + 10, t[0] + 0.5, t[-1] + 10, float(t[len(t) // 2]), t[-1]]
    r = client.get(URL, params={"at": [iso(x) for x in asked], "seed": 3, "quantiles": "0.9,0.1"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["t"] == [iso(x) for x in asked]
    assert body["kind"] == ["extrapolation", "interpolation", "extrapolation", "interpolation", "interpolation"]
    ch = body["channels"]["temp"]
    assert set(ch) == {"mean", "std", "quantiles"} and set(ch["quantiles"]) == {"0.9", "0.1"}
    assert ch["mean"][0] == ch["mean"][2] and ch["std"][0] == ch["std"][2]
    q90, q10 = np.array(ch["quantiles"]["0.9"]), np.array(ch["quantiles"]["0.1"])
    assert np.all(q90 > q10)  # keys follow the levels asked, whatever their order
    assert all(len(ch[k]) == len(asked) for k in ("mean", "std"))


def test_range_and_horizon_forms(client: TestClient, room: tuple) -> None:
    t, _ = room
    r = client.get(URL, params={"start": iso(t[0]), "end": iso(t[0] + 60), "step": "PT15S"})
    assert r.status_code == 200, r.text
    assert r.json()["t"] == [iso(t[0] + 15 * k) for k in range(5)]
    r = client.get(URL, params={"horizon": "30", "step": "10"})
    assert r.status_code == 200, r.text
    assert r.json()["t"] == [iso(t[-1] + 10 * k) for k in (1, 2, 3)]
    assert r.json()["kind"] == ["extrapolation"] * 3


def test_times_and_durations_below_the_microsecond_are_rounded(client: TestClient, room: tuple) -> None:
    t, _ = room
    u = T0 + int(round((t[-1] + 10) * S))  # µs of a time ahead of the last observation

    def seconds(us: int, more: str) -> str:  # Unix seconds with digits below the µs: 7 or more decimals
        return f"{us // S}.{us % S:06d}{more}"

    at = [seconds(u, "4"), format_time(u)[:-1] + "6Z", format_time(u)[:-1] + "499+00:00", seconds(u, "5")]
    r = client.get(URL, params={"at": at, "seed": 1})
    assert r.status_code == 200, r.text
    tie = u if u % 2 == 0 else u + 1  # half to even
    assert r.json()["t"] == [format_time(u), format_time(u + 1), format_time(u), format_time(tie)]
    a = T0 + int(round(t[0] * S))
    r = client.get(URL, params={"start": format_time(a)[:-1] + "4999Z", "end": seconds(a + 60 * S, "0000001"),
                                "step": "PT15.0000004S"})
    assert r.status_code == 200, r.text
    assert r.json()["t"] == [format_time(a + 15 * S * k) for k in range(5)]
    r = client.get(URL, params={"horizon": "30.0000004", "step": "10.00000049"})
    assert r.status_code == 200, r.text
    assert r.json()["t"] == [iso(t[-1] + 10 * k) for k in (1, 2, 3)]
    # POST /v1/forecast: numbers keep their text (a body written by hand, not through a float).
    obs = ",".join(f'{{"t": {seconds(T0 + int(round(x * S)), "4")}, "values": {{"temp": 1.5}}}}' for x in t)
    body = f'{{"model": "toy", "observations": [{obs}], "at": [{seconds(u, "6")}], "seed": 1}}'
    r = client.post("/v1/forecast", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    assert r.json()["t"] == [format_time(u + 1)]
    # Two observations that round to one microsecond with different values: refused, both times named.
    clash = (f'{{"model": "toy", "at": [{seconds(u, "")}], "observations": [{{"t": {seconds(u, "4")}, "values": '
             f'{{"temp": 1}}}}, {{"t": "{format_time(u)[:-1]}3Z", "values": {{"temp": 2}}}}]}}')
    r = client.post("/v1/forecast", content=clash, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    detail = r.json()["error"]["details"][0]
    assert detail["loc"] == ["body", "observations", 1, "values", "temp"]
    assert "both round to that microsecond" in detail["msg"] and format_time(u)[:-1] + "3Z" in detail["msg"]


def test_limits_are_422_naming_the_limit(client: TestClient, room: tuple) -> None:
    t, _ = room
    r = client.get(URL, params={"at": [iso(t[0]), iso(t[0] - 1)]})
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["details"][0]["loc"] == ["query", "at", 1] and iso(t[0]) in err["message"]
    horizon = toy_model().horizon
    limit = format_time(T0 + int(round(t[-1] * S)) + int(round(horizon * S)))
    horizon_us = int(round(horizon * S))
    # The model's horizon in seconds and in ISO 8601, and how to get a longer one.
    named = (f"the model's horizon of {format_seconds(horizon_us)} s ({format_duration(horizon_us)}); training "
             'with a longer horizon (POST /v1/models "horizon") extends it')
    r = client.get(URL, params={"at": [iso(t[-1]), iso(t[-1] + horizon + 1)]})
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "validation_error" and err["details"][0]["loc"] == ["query", "at", 1]
    assert limit in err["message"] and named in err["message"] and err["message"].endswith(err["details"][0]["msg"])
    r = client.get(URL, params={"at": iso(t[-1] + horizon)})
    assert r.status_code == 200, r.text
    r = client.get(URL, params={"horizon": f"{horizon + 5:.6f}", "step": "1"})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["loc"] == ["query", "horizon"]
    assert named in r.json()["error"]["message"]
    body = {"model": "toy", "observations": [{"t": iso(0), "values": {"temp": 1.0}}], "at": [iso(horizon + 1)]}
    r = client.post("/v1/forecast", json=body)
    assert r.status_code == 422 and r.json()["error"]["details"][0]["loc"] == ["body", "at", 0]
    assert named in r.json()["error"]["message"]


_LOSING = {"cutoffs": 12, "points": 480, "steps": 40, "hit_time_limit": True,
           "methods": {"model": {"mae": 0.52, "mse": 0.4, "rmae": 1.3, "coverage90": 0.8, "bands": []},
                       "classical": {"mae": 0.5, "mse": 0.38, "rmae": 1.25, "coverage90": None, "bands": []},
                       "last_value": {"mae": 0.4, "mse": 0.3, "rmae": 1.0, "coverage90": None, "bands": []},
                       "drift": {"mae": 0.45, "mse": 0.33, "rmae": 1.125, "coverage90": None, "bands": []}},
           "best_baseline": "last_value", "beats_baselines": False}


def test_a_version_that_lost_its_backtest_says_so(client: TestClient, engine: Engine, room: tuple) -> None:
    t, _ = room
    publish(engine, "toy", 2, toy_artifact(), ["room"], metrics={"epochs_run": 30, "backtest": _LOSING})
    expected = ["on its validation backtest this model's error was 1.3× that of the last-value baseline",
                "training of this version stopped at its time limit (240 s) before its planned steps were done, "
                "so it may be undertrained: a larger `time_limit` in the training config gives it longer"]
    r = client.get(URL, params={"at": iso(t[-1] + 5)})
    assert r.status_code == 200, r.text
    assert r.json()["model"] == {"name": "toy", "version": 2} and r.json()["warnings"] == expected
    body = {"model": "toy", "observations": [{"t": iso(0), "values": {"temp": 1.0}}], "at": [iso(1)]}
    assert client.post("/v1/forecast", json=body).json()["warnings"] == expected
    # The version that has no backtest says nothing, and neither does one that won.
    assert client.get(URL, params={"at": iso(t[-1] + 5), "version": 1}).json()["warnings"] == []
    won = {**_LOSING, "hit_time_limit": False, "beats_baselines": True}
    publish(engine, "toy", 3, toy_artifact(), ["room"], metrics={"backtest": won})
    r = client.get(URL, params={"at": iso(t[-1] + 5)})
    assert r.json()["model"]["version"] == 3 and r.json()["warnings"] == []


def test_a_version_whose_bands_were_checked_part_of_the_way_says_how_far(client: TestClient, engine: Engine,
                                                                       room: tuple) -> None:
    t, _ = room
    horizon = model.from_bytes(toy_artifact()).horizon
    checked = {"beats_baselines": True, "hit_time_limit": False, "calibrated_until_s": horizon / 4}
    publish(engine, "toy", 2, toy_artifact(), ["room"], metrics={"backtest": checked})
    r = client.get(URL, params={"at": iso(t[-1] + 5)})
    assert r.status_code == 200 and r.json()["model"]["version"] == 2, r.text
    [warning] = r.json()["warnings"]
    assert warning.startswith("forecasts of this version could be checked against later readings of its history "
                              f"only up to {format_duration(round(horizon / 4 * 1e6))} ahead, of its horizon of "
                              f"{format_duration(round(horizon * 1e6))}")
    whole = {**checked, "calibrated_until_s": horizon}
    publish(engine, "toy", 3, toy_artifact(), ["room"], metrics={"backtest": whole})
    assert client.get(URL, params={"at": iso(t[-1] + 5)}).json()["warnings"] == []


def test_backtest_warnings_survive_odd_metrics() -> None:
    from service.forecasting.versions import backtest_warnings

    seasonal = {**_LOSING, "hit_time_limit": False, "best_baseline": "seasonal_naive",
                "methods": {"model": {"mae": 3.0}, "seasonal_naive": {"mae": 2.0}}}
    assert backtest_warnings({"backtest": seasonal}, {}) == [
        "on its validation backtest this model's error was 1.5× that of the seasonal-naive baseline"]
    no_mae = {"beats_baselines": False, "best_baseline": "drift", "methods": {"model": {"mae": None}}}
    assert backtest_warnings({"backtest": no_mae}, {}) == [
        "on its validation backtest this model did worse than the drift baseline"]
    assert backtest_warnings({"backtest": {"beats_baselines": False}}, None) == [
        "on its validation backtest this model did worse than a simple baseline"]
    assert backtest_warnings({"backtest": {"hit_time_limit": True}}, {"time_limit": None})[0].startswith(
        "training of this version stopped at its time limit before")
    assert backtest_warnings(None, None) == backtest_warnings({"backtest": None}, {}) == []
    nothing = backtest_warnings({"backtest": {"calibrated_until_s": 0.0}}, {}, 86_400.0)
    assert nothing == ["no forecast of this version could be checked against later readings of its history (too "
                       "few of them, or none within its horizon, P1D, of an earlier one), so its bands have a normal "
                       "distribution's width and may not hold what they promise"]
    part = backtest_warnings({"backtest": {"calibrated_until_s": 21_600}}, {}, 86_400.0)
    assert len(part) == 1 and " only up to PT6H ahead, of its horizon of P1D " in part[0]
    for odd in ({"calibrated_until_s": "6h"}, {"calibrated_until_s": -1.0}, {"calibrated_until_s": 86_400.0}):
        assert backtest_warnings({"backtest": odd}, {}, 86_400.0) == []  # malformed, or checked the whole way
    assert backtest_warnings({"backtest": {"calibrated_until_s": 0.0}}, {}, None) == []  # no horizon: nothing to say


def test_version_choice_409_and_404(client: TestClient, engine: Engine, room: tuple) -> None:
    t, _ = room
    publish(engine, "toy", 2, toy_artifact(), ["room"], status="training")
    at = {"at": iso(t[-1])}
    assert client.get(URL, params=at).json()["model"] == {"name": "toy", "version": 1}  # newest *ready*
    r = client.get(URL, params={**at, "version": 2})
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_ready"
    assert "training" in r.json()["error"]["message"]
    r = client.get(URL, params={**at, "model": "toy", "version": 7})
    assert r.status_code == 404 and r.json()["error"]["code"] == "no_model"
    # Any model whose channels the series has may answer, trained on it or not.
    add_series(engine, "other", t, np.zeros_like(t))
    r = client.get("/v1/series/other/forecast", params={**at, "model": "toy"})
    assert r.status_code == 200 and r.json()["series"] == "other"
    r = client.get("/v1/series/other/forecast", params=at)
    assert r.status_code == 404 and r.json()["error"]["code"] == "no_model"


def test_channel_mismatch_is_422(client: TestClient, engine: Engine, room: tuple) -> None:
    from service import storage

    storage.create_series(engine, "wind", ["speed"], "", {})
    r = client.get("/v1/series/wind/forecast", params={"at": "1767225600", "model": "toy"})
    assert r.status_code == 422 and "temp" in r.json()["error"]["message"]


def test_hot_swap_after_retraining_and_delete(client: TestClient, engine: Engine, room: tuple,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from service.forecasting import versions

    monkeypatch.setattr(versions, "RETAIN_EVERY_S", 0.0)  # drop left-over models at each request here
    t, _ = room
    params = {"at": [iso(x) for x in t[:5]], "seed": 5}
    first = client.get(URL, params=params).json()
    publish(engine, "toy", 2, perturbed_artifact(0.05), ["room"])
    second = client.get(URL, params=params).json()
    assert second["model"] == {"name": "toy", "version": 2}
    assert second["channels"]["temp"]["mean"] != first["channels"]["temp"]["mean"]
    with engine.begin() as conn:
        conn.execute(delete(models).where(models.c.version == 2))
    third = client.get(URL, params=params).json()
    assert third["model"] == {"name": "toy", "version": 1}
    assert third["channels"] == first["channels"]
    assert [k.version for k in client.app.state.model_cache.keys()] == [1]


def test_a_new_observation_changes_the_next_forecast(client: TestClient, engine: Engine, room: tuple) -> None:
    from service import storage

    t, _ = room
    params = {"at": [iso(t[-1] + 5), iso(t[-1] + 20)], "seed": 9}
    before = client.get(URL, params=params).json()
    assert before["kind"] == ["extrapolation", "extrapolation"]
    add_points(engine, storage.get_series(engine, "room"), np.array([t[-1] + 10]), np.array([-1.5]))
    after = client.get(URL, params=params).json()
    assert after["kind"] == ["interpolation", "extrapolation"]
    # No retraining: the encoder read the new point from the database.
    assert abs(after["channels"]["temp"]["mean"][1] - before["channels"]["temp"]["mean"][1]) > 1e-3


@pytest.mark.parametrize("processes", [0, 1])  # solved in the API's threads, or in a solver process
def test_seeded_answer_alone_equals_answer_in_a_burst(settings: Settings, admin_key: str, room: tuple,
                                                      processes: int) -> None:
    t, _ = room
    at = [iso(x) for x in np.linspace(t[0], t[-1] + 20, 100)]
    app = create_app(settings.model_copy(update={"forecast_processes": processes}))
    with TestClient(app, headers={"Authorization": f"Bearer {admin_key}"}) as client:
        alone = client.get(URL, params={"at": at, "seed": 11}).json()
        responses = asyncio.run(_burst(app, client, at))
    assert all(r.status_code == 200 for r in responses)
    assert max(app.state.batcher.batch_sizes) > 1  # the burst was batched
    inside = responses[16].json()
    for key in ("mean", "std"):
        np.testing.assert_allclose(inside["channels"]["temp"][key], alone["channels"]["temp"][key], rtol=1e-4,
                                   atol=1e-9)
    for q, values in alone["channels"]["temp"]["quantiles"].items():
        np.testing.assert_allclose(inside["channels"]["temp"]["quantiles"][q], values, rtol=1e-4, atol=1e-9)


async def _burst(app: object, client: TestClient, at: list[str]) -> list[httpx.Response]:

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=dict(client.headers)) as ac:
        # 31 other requests (other seeds, other times) around the one under test
        calls = [ac.get(URL, params={"at": at[i:] or at, "seed": 100 + i}) for i in range(31)]
        calls.insert(16, ac.get(URL, params={"at": at, "seed": 11}))
        return await asyncio.gather(*calls)


def _count_observations(engine: Engine) -> int:
    from sqlalchemy import func, select

    from service.storage.tables import observations

    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(observations)).scalar_one()


@pytest.mark.parametrize("form", ["rows", "columns"])
def test_post_forecast_equals_get_for_the_same_data_and_seed(client: TestClient, engine: Engine, room: tuple,
                                                             form: str) -> None:
    t, v = room
    at = [iso(t[-1] + 7), iso(t[3] + 0.25), iso(t[-1])]
    # The whole series as context on both sides.
    got = client.get(URL, params={"at": at, "seed": 21, "samples": 30, "context": "1000"}).json()
    stored = _count_observations(engine)
    if form == "rows":
        obs = [{"t": iso(x), "values": {"temp": float(y)}} for x, y in zip(t, v, strict=True)]
    else:
        obs = {"t": [iso(x) for x in t], "values": {"temp": [float(y) for y in v]}}
    r = client.post("/v1/forecast", json={"model": "toy", "observations": obs, "at": at, "seed": 21,
                                          "samples": 30})
    assert r.status_code == 200, r.text
    posted = r.json()
    assert "series" not in posted
    assert posted == {k: got[k] for k in ("model", "t", "kind", "channels", "warnings")}
    assert _count_observations(engine) == stored  # nothing stored


@pytest.mark.parametrize(("body", "status", "loc"), [
    ({"observations": [], "at": [0]}, 422, ["body", "model"]),
    ({"model": "toy", "observations": [], "at": ["2026-01-01T00:00:00Z"]}, 422, ["body", "observations"]),
    ({"model": "toy", "observations": {"t": ["x"], "values": {"temp": [1]}}, "at": [0]}, 422,
     ["body", "observations", "t", 0]),
    ({"model": "toy", "observations": [{"t": "2026-01-01T00:00:00Z", "values": {"temp": "1"}}], "at": [0]}, 422,
     ["body", "observations", 0, "values", "temp"]),
    ({"model": "toy", "observations": [{"t": 1767225600, "values": {"temp": 1}}], "at": [1767225599]}, 422,
     ["body", "at", 0]),
    ({"model": "toy", "observations": [], "at": [0], "extra": 1}, 422, ["body", "extra"]),
    ({"model": "toy", "observations": [], "at": [0], "samples": 0}, 422, ["body", "samples"]),
    ({"model": "ghost", "observations": [], "at": [0]}, 404, None),
    ({"model": "toy", "version": 5, "observations": [], "at": [0]}, 404, None),
])
def test_post_forecast_refusals(client: TestClient, room: tuple, body: dict, status: int, loc: list | None) -> None:
    r = client.post("/v1/forecast", json=body)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    if loc is not None:
        assert err["details"][0]["loc"] == loc, err
    else:
        assert err["code"] == "no_model"


def test_post_forecast_needs_read_scope_only(anon_client: TestClient, engine: Engine, room: tuple) -> None:
    from service.storage import keys

    reader = keys.create_key(engine, "reader", ["read"])
    body = {"model": "toy", "observations": [{"t": 1767225600, "values": {"temp": 1}}], "at": [1767225601]}
    assert anon_client.post("/v1/forecast", json=body).status_code == 401
    r = anon_client.post("/v1/forecast", json=body, headers={"Authorization": f"Bearer {reader}"})
    assert r.status_code == 200, r.text
    assert r.json()["kind"] == ["extrapolation"]


def test_an_oversized_context_is_422(client: TestClient, room: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    from service.forecasting import forecast

    t, _ = room
    monkeypatch.setattr(forecast, "MAX_CONTEXT_POINTS", 5)
    r = client.get(URL, params={"at": iso(t[0])})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["loc"] == ["query", "context"]
    assert "more than 5" in r.json()["error"]["message"]
    r = client.get(URL, params={"at": iso(t[-1]), "context": "1"})  # a short window is fine
    assert r.status_code == 200, r.text


def test_a_solver_failure_is_a_422_naming_the_times(client: TestClient, engine: Engine) -> None:
    """A model whose dynamics overflow (every latent grows by 1e38 per second) answers 422 solver_error."""
    broken = model.from_bytes(toy_artifact())
    broken.network.dynamics.net[-1].bias.data.fill_(1e38)
    t, v = toy_sequence(np.random.default_rng(42), LEVEL)
    add_series(engine, "room", t, v)
    publish(engine, "toy", 1, model.to_bytes(broken), ["room"])
    r = client.get(URL, params={"at": iso(t[-1] + 5), "seed": 1})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "solver_error"
    assert error["details"][0]["loc"] == ["query", "at"] and "solver failed" in error["message"]


def test_a_dead_solver_is_a_503(settings: Settings, admin_key: str, room: tuple, monkeypatch) -> None:
    from service.forecasting.solver_pool import SolverPool, SolverUnavailable

    def dead(self, *args, **kwargs):
        raise SolverUnavailable("the forecast process died twice solving this request")

    monkeypatch.setattr(SolverPool, "forecast_batch", dead)
    app = create_app(settings.model_copy(update={"forecast_processes": 1}))
    with TestClient(app, headers={"Authorization": f"Bearer {admin_key}"}) as client:
        response = client.get(URL, params={"at": iso(room[0][-1])})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["error"]["code"] == "solver_unavailable"


def test_a_forecast_beyond_float64_is_a_422_not_a_500(client: TestClient, engine: Engine) -> None:
    """A model trained on values near 1e308 (stored before values were bounded) has an infinite scale: its
    forecasts are not finite numbers, which JSON cannot carry. Both forecast routes answer 422 saying so."""
    huge = model.from_bytes(toy_artifact())
    huge.normaliser = dataclasses.replace(huge.normaliser, std=np.array([np.inf]))
    t, v = toy_sequence(np.random.default_rng(42), LEVEL)
    add_series(engine, "room", t, v)
    publish(engine, "toy", 1, model.to_bytes(huge), ["room"])
    for r, part in ((client.get(URL, params={"at": [iso(t[0]), iso(t[-1] + 5)], "seed": 1}), "query"),
                    (client.post("/v1/forecast", json={"model": "toy", "at": [iso(t[-1])], "observations": {
                        "t": [iso(x) for x in t], "values": {"temp": v.tolist()}}}), "body")):
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["code"] == "non_finite_forecast"
        assert error["details"] == [{"loc": [part, "at"], "msg": error["message"].split(": ", 1)[1]}]
        assert "not finite" in error["message"] and "model 'toy' version 1" in error["message"]
