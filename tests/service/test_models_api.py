"""/v1/models over HTTP (no worker runs here: jobs stay queued unless a test runs one itself)."""

import math
import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

import model
from model import from_bytes
from service.config import Settings
from service.storage import keys
from service.training import executor, trainer
from service.training import request as train_request
from tests.training_data import TINY, TINY_LOCAL, add_series


def _train(client: TestClient, name: str = "rooms", series: list[str] | None = None, config: dict | None = None,
           **kw) -> dict:
    response = client.post("/v1/models", json={"name": name, "series": series or ["room-1"],
                                               "config": {**TINY, **(config or {})}}, **kw)
    assert response.status_code == 202, response.text
    return response.json()


def _refused(response, loc: list, text: str) -> dict:
    """A 422 naming `loc` whose message and detail say `text`."""
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error" and error["details"][0]["loc"] == loc, error
    assert text in error["details"][0]["msg"] and text in error["message"], error
    return error


def test_post_creates_a_queued_version_and_job(client: TestClient, engine: Engine, settings: Settings) -> None:
    add_series(engine, "room-1")
    body = _train(client)
    assert body["model"] == {"name": "rooms", "version": 1, "status": "queued"}
    job = body["job"]
    assert set(job) == {"id", "kind", "status", "model", "progress", "attempts", "error", "created_at",
                        "started_at", "finished_at"}
    assert job["kind"] == "train" and job["status"] == "queued" and job["model"] == {"name": "rooms", "version": 1}
    assert job["progress"] is None and job["attempts"] == 0 and job["started_at"] is None
    assert executor.pending_job_ids(executor.get_queue(settings).huey) == {job["id"]}  # sent after the commit
    retried = client.get(f"/v1/jobs/{job['id']}").json()
    assert retried == job
    assert _train(client)["model"]["version"] == 2  # training again makes version n+1
    queued = client.get("/v1/models/rooms/versions/1").json()
    assert queued["horizon_s"] is None and queued["context_s"] is None  # known once training ends


def test_idempotency_key(client: TestClient, engine: Engine) -> None:
    add_series(engine, "room-1")
    first = _train(client, headers={"Idempotency-Key": "abc"})
    again = _train(client, headers={"Idempotency-Key": "abc"})
    assert again["job"]["id"] == first["job"]["id"] and again["model"] == first["model"]
    other = client.post("/v1/models", json={"name": "rooms", "series": ["room-1"], "config": {"epochs": 3}},
                        headers={"Idempotency-Key": "abc"})
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_key_reused"
    assert len(client.get("/v1/models/rooms").json()["versions"]) == 1


def test_bad_config_is_refused_naming_the_field(client: TestClient, engine: Engine) -> None:
    add_series(engine, "room-1")
    for config, field in (({"latent_dims": 3}, "latent_dims"), ({"epochs": 0}, "epochs"),
                          ({"solver": "magic"}, "solver"), ({"rtol": "small"}, "rtol")):
        response = client.post("/v1/models", json={"name": "rooms", "series": ["room-1"], "config": config})
        assert response.status_code == 422, config
        error = response.json()["error"]
        assert error["details"][0]["loc"] == ["body", "config", field]
        assert field in error["message"]
    assert client.get("/v1/jobs").json()["items"] == []  # nothing half-written


def test_series_checked_up_front(client: TestClient, engine: Engine) -> None:
    add_series(engine, "room-1", ("temp",))
    add_series(engine, "room-2", ("co2",))
    add_series(engine, "tiny", ("temp",), n=5)
    missing = client.post("/v1/models", json={"name": "m", "series": ["room-1", "nope"]})
    assert missing.status_code == 404 and "nope" in missing.json()["error"]["message"]
    disjoint = client.post("/v1/models", json={"name": "m", "series": ["room-1", "room-2"]})
    assert disjoint.status_code == 422 and disjoint.json()["error"]["details"][0]["loc"] == ["body", "series"]
    assert "no channel in common" in disjoint.json()["error"]["message"]
    short = client.post("/v1/models", json={"name": "m", "series": ["tiny"]})
    assert short.status_code == 422 and "too little data" in short.json()["error"]["message"]
    doubled = client.post("/v1/models", json={"name": "m", "series": ["room-1", "room-1"]})
    assert doubled.status_code == 422
    bad_name = client.post("/v1/models", json={"name": "no spaces", "series": ["room-1"]})
    assert bad_name.status_code == 422 and bad_name.json()["error"]["details"][0]["loc"] == ["body", "name"]
    assert client.get("/v1/models").json()["items"] == []


def test_default_window_is_chosen_from_the_data(client: TestClient, engine: Engine) -> None:
    add_series(engine, "room-1", n=400, every_s=2.0)
    version = _train(client, series=["room-1"], config={"frame": "global"})["model"]["version"]
    config = client.get(f"/v1/models/rooms/versions/{version}").json()["config"]
    assert 64 * 1.0 < config["window"] < 64 * 3.0  # 64 gaps of about 2 s (at least 1 s, at most 3 s)
    assert config["latent_dim"] == TINY["latent_dim"]  # the overrides are kept


def test_the_local_frame_gets_no_default_window(client: TestClient, engine: Engine) -> None:
    add_series(engine, "room-1", n=400, every_s=2.0)
    version = _train(client, config={"frame": "local"})["model"]["version"]
    config = client.get(f"/v1/models/rooms/versions/{version}").json()["config"]
    assert config["frame"] == "local" and config["window"] is None


@pytest.mark.parametrize(("horizon", "context", "horizon_s", "context_s"), [
    ("P90D", 3600, 90 * 86_400.0, 3600.0),
    (900.5, "PT30M", 900.5, 1800.0),
    ("86400", "P1W", 86_400.0, 7 * 86_400.0),
    (900.1234565, "PT30M0.0000015S", 900.123456, 1800.000002),  # rounded to the µs, half to even
])
def test_horizon_and_context_fill_the_config(client: TestClient, engine: Engine, horizon: object, context: object,
                                             horizon_s: float, context_s: float) -> None:
    add_series(engine, "room-1")
    r = client.post("/v1/models", json={"name": "rooms", "series": ["room-1"], "config": TINY, "horizon": horizon,
                                        "context": context})
    assert r.status_code == 202, r.text
    config = client.get("/v1/models/rooms/versions/1").json()["config"]
    assert (config["horizon"], config["context"]) == (horizon_s, context_s)
    assert model.ModelConfig.from_dict(config).horizon == horizon_s  # what the worker will build


def test_top_level_durations_win_over_the_config(client: TestClient, engine: Engine) -> None:
    add_series(engine, "room-1")
    r = client.post("/v1/models", json={"name": "rooms", "series": ["room-1"], "horizon": "PT1H",
                                        "config": {**TINY, "horizon": 10, "context": 20}})
    assert r.status_code == 202, r.text
    config = client.get("/v1/models/rooms/versions/1").json()["config"]
    assert config["horizon"] == 3600.0  # the top-level value
    assert config["context"] == 20.0  # no top-level context: the config's stays


@pytest.mark.parametrize("field", ["horizon", "context"])
@pytest.mark.parametrize(("value", "reason"), [
    ("P1M", "years and months"),
    ("soon", "not a duration"),
    (-5, "not a duration"),
    (0, "not positive"),
    ("PT0S", "not positive"),
    (1e-7, "rounds to zero"),
    ("PT0.0000004S", "rounds to zero"),
    ("P99999999999D", "100 years"),
    (True, "expected seconds"),
    ([60], "expected seconds"),
    ("P" + "1" * 70 + "D", "at most 64 characters"),
])
def test_bad_durations_are_422_naming_the_field(client: TestClient, engine: Engine, field: str, value: object,
                                                reason: str) -> None:
    add_series(engine, "room-1")
    r = client.post("/v1/models", json={"name": "rooms", "series": ["room-1"], field: value})
    _refused(r, ["body", field], reason)
    assert client.get("/v1/jobs").json()["items"] == []


def test_series_prefix_trains_on_every_matching_key(client: TestClient, engine: Engine) -> None:
    for key, seed in (("site-a.2", 1), ("site-a.1", 2), ("site_a.9", 3), ("Site-a.3", 4), ("site-b.1", 5)):
        add_series(engine, key, seed=seed)
    r = client.post("/v1/models", json={"name": "site-a", "series_prefix": "site-a", "config": TINY})
    assert r.status_code == 202, r.text
    version = client.get("/v1/models/site-a/versions/1").json()
    assert version["series"] == ["site-a.1", "site-a.2"]  # the resolved keys are stored, in key order
    r = client.post("/v1/models", json={"name": "underscore", "series_prefix": "site_", "config": TINY})
    assert r.status_code == 202, r.text
    assert client.get("/v1/models/underscore/versions/1").json()["series"] == ["site_a.9"]  # '_' is no wildcard


def test_series_prefix_refusals(client: TestClient, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, seed in (("site-a.1", 1), ("site-a.2", 2), ("site-a.3", 3)):
        add_series(engine, key, seed=seed)
    def post(**body: object):
        return client.post("/v1/models", json={"name": "m", "config": TINY, **body})

    _refused(post(series_prefix="room"), ["body", "series_prefix"], "no series key starts with 'room'")
    _refused(post(series_prefix="site-a", series=["site-a.1"]), ["body", "series_prefix"], "not both")
    _refused(post(), ["body", "series"], "series_prefix")
    _refused(post(series_prefix=""), ["body", "series_prefix"], "at least 1 character")
    monkeypatch.setattr(train_request, "MAX_TRAINING_SERIES", 2)
    error = _refused(post(series_prefix="site-a"), ["body", "series_prefix"], "more than 2 series keys")
    assert "at most 2 series" in error["message"]
    _refused(post(series=["site-a.1", "site-a.2", "site-a.3"]), ["body", "series"], "at most 2")
    assert client.get("/v1/models").json()["items"] == [] and client.get("/v1/jobs").json()["items"] == []


def test_at_most_10000_series_in_a_list(client: TestClient) -> None:
    assert train_request.MAX_TRAINING_SERIES == 10_000
    keys_ = [f"s{i}" for i in range(10_001)]
    r = client.post("/v1/models", json={"name": "m", "series": keys_})
    _refused(r, ["body", "series"], "at most 10000 items")


def test_openapi_shows_the_training_fields(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()["components"]["schemas"]["TrainRequest"]
    props = schema["properties"]
    assert schema["required"] == ["name"]
    assert props["series"]["anyOf"][0]["maxItems"] == 10_000
    assert props["series_prefix"]["anyOf"][0]["maxLength"] == 128 and props["series_prefix"]["description"]
    for field in ("horizon", "context"):
        number, text = props[field]["oneOf"]
        assert number["type"] == "number" and number["minimum"] == 1e-6  # a microsecond at least
        assert number["maximum"] == 3_162_240_000  # 100 years
        assert text["type"] == "string" and text["maxLength"] == 64
        assert "ISO 8601" in props[field]["description"]


def _train_local(client: TestClient, engine: Engine, settings: Settings, name: str, key: str, points: int,
                 horizon: float, context: float | None = None) -> dict[str, Any]:
    """Version 1 of model `name`, trained (TINY_LOCAL, `horizon` s, `context` s where given) on a new series `key`
    of `points` points."""
    add_series(engine, key, n=points)
    given = {"context": context} if context is not None else {}
    response = client.post("/v1/models", json={"name": name, "series": [key], "horizon": horizon, **given,
                                               "config": TINY_LOCAL})
    assert response.status_code == 202, response.text
    job = response.json()["job"]
    assert trainer.run_job(engine, settings, job["id"], worker_id="w", shutdown=threading.Event()) == "succeeded"
    version: dict[str, Any] = client.get(f"/v1/models/{name}/versions/1").json()
    return version


def test_a_local_frame_version_carries_its_backtest(client: TestClient, engine: Engine,
                                                    settings: Settings) -> None:
    """A local-frame training stores fit's backtest beside the baselines in the version's metrics."""
    version = _train_local(client, engine, settings, "rooms", "room-1", points=400, horizon=20,
                           context=60)  # given: one context's candidates to choose among (faster)
    metrics = version["metrics"]
    assert metrics["steps_run"] == TINY_LOCAL["train_steps"] and metrics["val_mae"] is not None
    component = metrics["component"]  # the classical part chosen from the data, as the artifact holds it
    assert {"trend", "seasons", "context", "half_life", "persistence", "blend", "linear_inside"} <= set(component)
    assert component["context"] == version["context_s"] and isinstance(component["linear_inside"], bool)
    backtest = metrics["backtest"]
    assert backtest["cutoffs"] > 0 and backtest["steps"] == TINY_LOCAL["train_steps"]
    assert backtest["network_trained"] is True  # its cut-offs hold enough values to weigh the network
    assert backtest["stopped_early"] is False  # never PATIENCE scores without a lower one: all its steps ran
    assert {"model", "classical", "last_value", "drift"} <= set(backtest["methods"])
    assert backtest["methods"]["last_value"]["rmae"] == pytest.approx(1.0)
    assert backtest["best_baseline"] in ("last_value", "drift", "seasonal_naive")
    assert isinstance(backtest["beats_baselines"], bool)
    assert version["config"]["horizon"] == 20.0 and version["config"]["frame"] == "local"
    assert version["horizon_s"] == 20.0 and version["context_s"] == 60.0  # what a client needs to ask for a forecast
    # it serves: up to the horizon past the last observation, with the warnings its backtest calls for
    last = client.get("/v1/series/room-1").json()["last_t"]
    answer = client.get("/v1/series/room-1/forecast", params={"model": "rooms", "horizon": "20", "step": "5"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert len(body["t"]) == 4 and body["kind"] == ["extrapolation"] * 4 and body["t"][0] > last
    assert all(math.isfinite(v) for v in body["channels"]["a"]["mean"])
    assert isinstance(body["warnings"], list) and (len(body["warnings"]) > 0) == (not backtest["beats_baselines"])
    past = client.get("/v1/series/room-1/forecast", params={"model": "rooms", "horizon": "25", "step": "5"})
    assert past.status_code == 422 and "horizon" in past.json()["error"]["message"]


def test_a_series_too_short_to_weigh_the_network_is_served_by_its_classical_part(
        client: TestClient, engine: Engine, settings: Settings) -> None:
    """30 points: the validation cut-offs hold too few values to give the network any weight, so the version is
    ready without training it, says so, and still serves forecasts with bands up to its horizon."""
    version = _train_local(client, engine, settings, "short", "short-1", points=30, horizon=6)
    metrics = version["metrics"]
    assert metrics["component"]["context"] == version["context_s"]  # chosen from the data, as the artifact holds it
    assert metrics["steps_run"] == 0 and "val_mae" not in metrics
    assert metrics["backtest"]["network_trained"] is False and metrics["backtest"]["steps"] == 0
    assert metrics["component"]["blend"] == [0.0, 0.0]
    answer = client.get("/v1/series/short-1/forecast", params={"model": "short", "horizon": "6", "step": "2"})
    assert answer.status_code == 200, answer.text
    channel = answer.json()["channels"]["a"]
    assert len(channel["mean"]) == 3 and all(math.isfinite(v) for v in channel["mean"])
    lower, upper = channel["quantiles"]["0.05"], channel["quantiles"]["0.95"]
    assert all(math.isfinite(lo) and lo < hi for lo, hi in zip(lower, upper, strict=True))  # calibrated bands


def test_metrics_are_made_json_safe() -> None:
    """numpy numbers become JSON numbers and a non-finite one null (PostgreSQL's JSON refuses NaN)."""
    import numpy as np

    safe = trainer._json_safe({"a": np.int64(3), "b": [np.float32(0.5), math.nan], "c": np.bool_(False)})
    assert safe == {"a": 3, "b": [0.5, None], "c": False}
    assert type(safe["a"]) is int and type(safe["c"]) is bool


def test_no_backtest_no_metrics_entry(client: TestClient, engine: Engine, settings: Settings) -> None:
    add_series(engine, "room-1")
    job = _train(client, config={"frame": "global"})["job"]
    assert trainer.run_job(engine, settings, job["id"], worker_id="w", shutdown=threading.Event()) == "succeeded"
    assert "backtest" not in client.get("/v1/models/rooms/versions/1").json()["metrics"]


def test_read_versions_artifact_and_delete(client: TestClient, engine: Engine, settings: Settings) -> None:
    add_series(engine, "room-1")
    first = _train(client)
    _train(client)
    _train(client, name="other")
    assert client.get("/v1/models/rooms/versions/1/artifact").status_code == 409  # not trained yet

    job_id = first["job"]["id"]
    assert trainer.run_job(engine, settings, job_id, worker_id="w", shutdown=threading.Event()) == "succeeded"
    v1 = client.get("/v1/models/rooms/versions/1").json()
    assert v1["status"] == "ready" and v1["channels"] == ["a", "b"] and v1["series"] == ["room-1"]
    assert v1["trained_at"] is not None and v1["metrics"]["epochs_run"] == TINY["epochs"]
    artifact = client.get("/v1/models/rooms/versions/1/artifact")
    assert artifact.status_code == 200 and artifact.headers["content-type"] == "application/octet-stream"
    assert from_bytes(artifact.content).channels == ("a", "b")

    listing = client.get("/v1/models").json()
    assert [(m["name"], m["version"]) for m in listing["items"]] == [("other", 1), ("rooms", 2)]
    page = client.get("/v1/models", params={"limit": 1}).json()
    assert [m["name"] for m in page["items"]] == ["other"]
    rest = client.get("/v1/models", params={"limit": 1, "cursor": page["next_cursor"]}).json()
    assert [m["name"] for m in rest["items"]] == ["rooms"] and rest["next_cursor"] is None
    assert [v["version"] for v in client.get("/v1/models/rooms").json()["versions"]] == [2, 1]

    assert client.delete("/v1/models/rooms/versions/2").status_code == 204
    assert client.get("/v1/models/rooms/versions/2").status_code == 404
    assert client.delete("/v1/models/rooms/versions/2").status_code == 404
    assert client.delete("/v1/models/rooms").status_code == 204
    assert client.get("/v1/models/rooms").status_code == 404
    assert client.get(f"/v1/jobs/{job_id}").status_code == 404  # its job went with it
    assert client.delete("/v1/models/rooms").status_code == 404


def test_scopes(client: TestClient, engine: Engine, anon_client: TestClient) -> None:
    add_series(engine, "room-1")
    reader = keys.create_key(engine, "reader", ["read"])
    headers = {"Authorization": f"Bearer {reader}"}
    body = {"name": "rooms", "series": ["room-1"]}
    assert anon_client.get("/v1/models").status_code == 401
    assert anon_client.post("/v1/models", json=body, headers=headers).status_code == 403
    assert anon_client.get("/v1/models", headers=headers).status_code == 200
    assert anon_client.delete("/v1/models/rooms", headers=headers).status_code == 403


def test_out_of_range_config_is_refused_naming_the_field(client: TestClient, engine: Engine) -> None:
    add_series(engine, "room-1")
    cases = (({"rtol": 10**400}, "rtol", "a finite number"), ({"seed": 2**70}, "seed", "at most 2**63 - 1"),
             ({"seed": -1}, "seed", ">= 0"), ({"device": "cuda:99"}, "device", "N from 0 to 64"),
             ({"device": "tpu:0"}, "device", "'cuda:N'"), ({"latent_dim": 100_000}, "latent_dim", "at most 256"),
             ({"epochs": 10**9}, "epochs", "at most 100000"), ({"train_steps": 10**7}, "train_steps", "at most"),
             ({"time_limit": 10**7}, "time_limit", "7 days"), ({"horizon": 4e9}, "horizon", "100 years"),
             ({"context": 4e9}, "context", "100 years"), ({"batch_size": 10**6}, "batch_size", "at most 4096"),
             ({"iwae_samples": 1000}, "iwae_samples", "at most 64"), ({"units": 4096}, "units", "at most 1024"),
             ({"hidden_dim": 4096}, "hidden_dim", "at most 1024"))
    for config, field, reason in cases:
        response = client.post("/v1/models", json={"name": "rooms", "series": ["room-1"], "config": config})
        assert response.status_code == 422, (config, response.text)
        error = response.json()["error"]
        assert error["code"] == "validation_error"
        assert error["details"][0]["loc"] == ["body", "config", field]
        assert reason in error["details"][0]["msg"], error
    assert client.get("/v1/jobs").json()["items"] == []  # nothing half-written
    assert client.get("/v1/models").json()["items"] == []


def test_a_cuda_device_is_accepted_for_a_worker_that_may_have_it(client: TestClient, engine: Engine) -> None:
    """The API machine need not have the worker's GPU: the worker checks (test_run_job), not the POST."""
    add_series(engine, "room-1")
    response = client.post("/v1/models", json={"name": "rooms", "series": ["room-1"],
                                               "config": {**TINY, "device": "cuda:1"}})
    assert response.status_code == 202, response.text
    assert client.get("/v1/models/rooms/versions/1").json()["config"]["device"] == "cuda:1"


@pytest.mark.parametrize("prefix", ["a\x00", "-a", "a b"])
def test_a_prefix_no_key_can_start_with_is_422(client: TestClient, prefix: str) -> None:
    response = client.post("/v1/models", json={"name": "rooms", "series_prefix": prefix})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["loc"] == ["body", "series_prefix"]
