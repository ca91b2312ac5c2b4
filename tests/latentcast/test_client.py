"""latentcast.Client against a real server: every method, the error mapping, pandas in and out."""

import math
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

import latentcast
from latentcast import ApiError, Client, ServerUnreachable
from tests.latentcast.conftest import T0, Server, Trained
from tests.serving import ROOT, free_port

pytestmark = pytest.mark.slow


def test_the_package_exports_what_it_documents_and_stays_light() -> None:
    assert sorted(latentcast.__all__) == sorted(
        ["ApiError", "ChannelForecast", "Client", "Forecast", "Job", "LatentcastError", "Progress", "Series",
         "ServerUnreachable", "Training", "Version", "WriteResult"])
    for name in latentcast.__all__:
        assert getattr(latentcast, name).__module__.startswith("latentcast.")
    # Importing the client loads neither the server, the model library, torch nor pandas.
    code = ("import sys, latentcast; heavy = [m for m in ('service', 'model', 'torch', 'pandas', 'numpy') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_series_create_get_list_update_delete(client: Client) -> None:
    made = client.create_series("ser-a", ["temp", "hum"], description="lab", metadata={"floor": 2})
    assert (made.key, made.channels, made.description, made.metadata) == ("ser-a", ["temp", "hum"], "lab",
                                                                           {"floor": 2})
    assert made.counts == {"temp": 0, "hum": 0} and made.first_t is None and made.created_at.tzinfo is not None
    for k in "bcde":
        client.create_series(f"ser-{k}", ["x"])
    # Pages of two: the iterator fetches all three pages and yields every series once, by key.
    assert [s.key for s in client.list_series("ser-", page_size=2)] == [f"ser-{k}" for k in "abcde"]
    assert [s.key for s in client.list_series("ser-d")] == ["ser-d"]

    changed = client.update_series("ser-a", description="lab 2", channels=["temp", "hum", "co2"])
    assert changed.channels == ["temp", "hum", "co2"] and changed.description == "lab 2"
    assert client.series("ser-a").metadata == {"floor": 2}

    with pytest.raises(ApiError) as taken:
        client.create_series("ser-a", ["x"])
    assert (taken.value.status, taken.value.code) == (409, "series_exists")
    client.delete_series("ser-a")
    with pytest.raises(ApiError) as gone:
        client.series("ser-a")
    assert (gone.value.status, gone.value.code) == (404, "not_found") and "ser-a" in gone.value.message


def test_observations_columns_rows_batches_and_ranges(client: Client) -> None:
    client.create_series("obs-1", ["a", "b"])
    calls = []
    times = [T0 + i for i in range(7)]
    result = client.add_observations("obs-1", t=times, values={"a": [float(i) for i in range(7)],
                                                                "b": [None, 1.5, None, 3.5, None, 5.5, None]},
                                     batch_values=4, progress=lambda sent, total: calls.append((sent, total)))
    # Two channels and four values a request: two times each, so four requests.
    assert calls == [(2, 7), (4, 7), (6, 7), (7, 7)]
    assert result == latentcast.WriteResult(received=10, inserted=10, updated=0, unchanged=0)
    again = client.add_observations("obs-1", t=times, values={"a": [float(i) for i in range(7)]})
    assert again == latentcast.WriteResult(received=7, inserted=0, updated=0, unchanged=7)

    # Rows, with aware datetimes in another zone and text times; one replaces a stored value.
    plus_one = timezone(timedelta(hours=1))
    rows = [{"t": datetime.fromtimestamp(T0 + 7, UTC).astimezone(plus_one), "values": {"a": 7.0}},
            {"t": "2026-01-01T00:00:08.25Z", "values": {"b": 8.5}},
            {"t": T0, "values": {"a": -1.0}}]
    assert client.add_observations("obs-1", rows) == latentcast.WriteResult(3, 2, 1, 0)

    records = client.observations("obs-1", page_size=3)  # four pages, joined
    assert len(records) == 9
    assert records[0] == {"t": datetime.fromtimestamp(T0, UTC), "a": -1.0, "b": None}
    assert records[-1] == {"t": datetime(2026, 1, 1, 0, 0, 8, 250000, tzinfo=UTC), "a": None, "b": 8.5}
    assert all(r["t"].tzinfo is not None for r in records)
    # start inclusive, end exclusive; a time with a '+' offset goes through the query string intact; only the
    # times where a chosen channel was observed.
    window = client.observations("obs-1", start="2026-01-01T01:00:03+01:00", end=T0 + 6, channels=["b"])
    assert window == [{"t": datetime.fromtimestamp(T0 + k, UTC), "b": b} for k, b in ((3, 3.5), (5, 5.5))]
    assert len(client.observations("obs-1", limit=4, page_size=3)) == 4
    assert client.observations("obs-1", limit=0) == [] and client.observations_frame("obs-1", limit=0).empty
    # numpy arrays' scalars go as the numbers they are.
    numpy_t = np.arange(T0 + 20, T0 + 23, dtype=np.int64)
    written = client.add_observations("obs-1", t=list(numpy_t), values={"a": list(np.array([1, 2, 3], np.float32))})
    assert written.inserted == 3
    assert [r["a"] for r in client.observations("obs-1", start=T0 + 20)] == [1.0, 2.0, 3.0]
    client.delete_observations("obs-1", start=T0 + 20)
    assert client.delete_observations("obs-1", start=T0 + 5, channels=["a"]) == 3  # a at 5, 6, 7
    assert client.series("obs-1").counts == {"a": 5, "b": 4}


def test_observation_errors_are_api_errors_with_the_place(client: Client) -> None:
    client.create_series("obs-bad", ["a"])
    with pytest.raises(ApiError) as nan:
        client.add_observations("obs-bad", t=[T0, T0 + 1], values={"a": [1.0, math.nan]})
    assert (nan.value.status, nan.value.code) == (422, "validation_error")
    assert nan.value.details[0]["loc"] == ["body", "values", "a", 1]
    with pytest.raises(ApiError) as unknown:
        client.add_observations("obs-bad", t=[T0], values={"zz": [1.0]})
    assert unknown.value.status == 422 and "zz" in unknown.value.message
    assert client.series("obs-bad").counts == {"a": 0}  # nothing of either batch was written
    with pytest.raises(ValueError, match="no time zone"):
        client.add_observations("obs-bad", t=[datetime(2026, 1, 1)], values={"a": [1.0]})
    with pytest.raises(ValueError, match="has 1 values for 2 times"):
        client.add_observations("obs-bad", t=[T0, T0 + 1], values={"a": [1.0]})
    with pytest.raises(ApiError) as missing:
        client.add_observations("no-such-series", t=[T0], values={"a": [1.0]})
    assert (missing.value.status, missing.value.code) == (404, "not_found")


def test_dataframes_in_and_out(client: Client) -> None:
    client.create_series("frame-1", ["temp", "hum"])
    index = pd.DatetimeIndex(["2026-01-01T00:00:00.000001", "2026-01-01T00:00:01.5", "2026-01-01T00:00:03"],
                             tz="UTC", name="t")
    frame = pd.DataFrame({"temp": [21.5, np.nan, 22.0], "hum": [0.4, 0.41, np.nan]}, index=index)
    assert client.add_observations("frame-1", frame, batch_values=2).inserted == 4
    back = client.observations_frame("frame-1", page_size=2)
    pd.testing.assert_frame_equal(back, frame, check_index_type=False, check_freq=False)
    assert str(back.index.tz) == "UTC" and back.index.name == "t"

    # A "t" column of Unix seconds; a zone other than UTC in the index means the same instants.
    seconds = pd.DataFrame({"t": [T0 + 10, T0 + 11], "temp": [1.0, 2.0]})
    assert client.add_observations("frame-1", seconds).inserted == 2
    tokyo = pd.DataFrame({"hum": [0.5]}, index=pd.DatetimeIndex(["2026-01-01T09:00:12"], tz="Asia/Tokyo"))
    assert client.add_observations("frame-1", tokyo).inserted == 1
    tail = client.observations_frame("frame-1", start=T0 + 10)
    assert tail.index.tolist() == [pd.Timestamp(T0 + s, unit="s", tz="UTC") for s in (10, 11, 12)]
    assert tail["temp"].tolist()[:2] == [1.0, 2.0] and math.isnan(tail["temp"].iloc[2])
    assert tail["hum"].iloc[2] == 0.5

    naive = pd.DataFrame({"temp": [1.0]}, index=pd.DatetimeIndex(["2026-01-01"]))
    with pytest.raises(ValueError, match="no time zone"):
        client.add_observations("frame-1", naive)
    empty = client.observations_frame("frame-1", start=T0 + 100)
    assert empty.empty and list(empty.columns) == ["temp", "hum"]


def test_keys_and_unreachable_servers(server: Server) -> None:
    with Client(server.url, "lc_not-a-key") as wrong, pytest.raises(ApiError) as denied:
        wrong.series("anything")
    assert (denied.value.status, denied.value.code) == (401, "unauthorized")
    with Client(f"http://127.0.0.1:{free_port()}", server.key, timeout=5) as nowhere, \
            pytest.raises(ServerUnreachable) as down:
        list(nowhere.list_series())
    assert "cannot reach the latentcast server" in str(down.value)


def test_defaults_come_from_the_environment_then_the_key_file(server: Server, tmp_path, monkeypatch) -> None:
    # No LATENTCAST_KEY: the admin key file of a server run from the current folder.
    monkeypatch.delenv("LATENTCAST_KEY", raising=False)
    monkeypatch.delenv("LATENTCAST_DATA_DIR", raising=False)
    monkeypatch.setenv("LATENTCAST_URL", server.url)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "latentcast-data").mkdir()
    (tmp_path / "latentcast-data" / "admin.key").write_text(server.key + "\n")
    with Client() as c:
        assert c.url == server.url
        c.create_series("env-1", ["a"])
    monkeypatch.setenv("LATENTCAST_KEY", "lc_wrong")
    with Client() as c, pytest.raises(ApiError) as denied:
        c.series("env-1")
    assert denied.value.status == 401
    # Without LATENTCAST_URL: the local server on the port `latentcast serve` reads, LATENTCAST_PORT, else 8000.
    monkeypatch.delenv("LATENTCAST_URL")
    monkeypatch.delenv("LATENTCAST_KEY")
    monkeypatch.setenv("LATENTCAST_PORT", server.url.rsplit(":", 1)[1])
    with Client() as c:
        assert c.url == server.url and c.series("env-1").channels == ["a"]
    monkeypatch.delenv("LATENTCAST_PORT")
    assert Client(key="x").url == "http://127.0.0.1:8000"


def test_train_wait_models_jobs_and_artifact(client: Client, trained: Trained) -> None:
    # The progress callback saw this job's changes in order and last the finished job. (Two tiny epochs may both
    # fall between two of the event stream's reads, so "running" need not show: tests/e2e follow a longer job.)
    statuses = [job.status for job in trained.progress]
    order = ["queued", "running", "succeeded"]
    assert statuses[-1] == "succeeded" and statuses == sorted(statuses, key=order.index)
    assert {job.id for job in trained.progress} == {trained.job_id}
    last = trained.progress[-1].progress
    assert (last.epoch, last.epochs) == (2, 2) and last.loss is not None

    job = client.job(trained.job_id)
    assert job.finished and job.model_name == "shared" and job.model_version == 1 and job.attempts == 1
    assert trained.job_id in [j.id for j in client.jobs(status="succeeded")]
    assert [j.id for j in client.jobs(limit=1)] == [next(iter(client.jobs())).id]

    version = client.version("shared", 1)
    assert version.status == "ready" and version.channels == ["a", "b"] and version.series == ["shared-1"]
    assert version.metrics["val_mse"] is not None and version.config["horizon"] == 60.0
    assert [v.version for v in client.versions("shared")] == [1]
    assert "shared" in [v.name for v in client.models(page_size=1)]
    blob = client.artifact("shared", 1)
    header = int.from_bytes(blob[:8], "little")  # safetensors: an 8-byte header length, then JSON
    assert blob[8:9] == b"{" and len(blob) > 8 + header

    with pytest.raises(ApiError) as finished:
        client.cancel_job(trained.job_id)
    assert (finished.value.status, finished.value.code) == (409, "job_finished")
    with pytest.raises(ApiError) as no_series:
        client.train("m", series=["no-such-series"], config={})
    assert (no_series.value.status, no_series.value.code) == (404, "not_found")
    with pytest.raises(ApiError) as bad:
        client.train("m", series=["shared-1"], config={"no_such_field": 1})
    assert bad.value.status == 422 and bad.value.details[0]["loc"] == ["body", "config", "no_such_field"]


def test_forecasts_at_times_by_horizon_and_as_a_frame(client: Client, trained: Trained) -> None:
    last = trained.times[-1]
    at = [datetime.fromtimestamp(last + 5, UTC), last - 100.5]
    fc = client.forecast("shared-1", at, seed=3, quantiles=[0.1, 0.9], samples=20)
    assert (fc.series, fc.model, fc.version) == ("shared-1", "shared", 1)
    assert fc.t == [datetime.fromtimestamp(last + 5, UTC), datetime.fromtimestamp(last - 100.5, UTC)]
    assert fc.kind == ["extrapolation", "interpolation"]
    assert set(fc.channels) == {"a", "b"} and list(fc.channels["a"].quantiles) == ["0.1", "0.9"]
    assert all(lo <= hi for lo, hi in zip(*fc.channels["a"].quantiles.values(), strict=True))
    assert client.forecast("shared-1", at, seed=3, quantiles=[0.1, 0.9], samples=20) == fc  # seeded: the same

    ahead = client.forecast("shared-1", horizon=timedelta(seconds=10), step="PT2.5S", model="shared", version=1)
    assert [t.timestamp() for t in ahead.t] == pytest.approx([last + 2.5 * k for k in range(1, 5)])
    assert set(ahead.kind) == {"extrapolation"}
    frame = ahead.to_frame()
    assert list(frame.columns) == ["t", "kind", "channel", "mean", "std", "q0.05", "q0.5", "q0.95"]
    assert len(frame) == 8 and frame["channel"].tolist()[:2] == ["a", "b"]
    assert str(frame["t"].dt.tz) == "UTC"
    assert frame["mean"].tolist() == [r["mean"] for r in ahead.records()]
    span = client.forecast("shared-1", start=T0 + 10, end=T0 + 20, step=5)
    assert len(span.t) == 3 and set(span.kind) == {"interpolation"}

    with pytest.raises(ApiError) as past:
        client.forecast("shared-1", at=last + 3600)
    assert (past.value.status, past.value.code) == (422, "validation_error") and "horizon" in past.value.message
    client.create_series("untrained-1", ["a"])
    client.add_observations("untrained-1", t=[T0], values={"a": [1.0]})
    with pytest.raises(ApiError) as none:
        client.forecast("untrained-1", horizon=10, step=1)
    assert (none.value.status, none.value.code) == (404, "no_model")
