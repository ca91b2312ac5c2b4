"""The client commands of the real `latentcast` command (a subprocess) against a real server."""

import csv
import io
import json
import os
import signal
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from latentcast import Client
from tests.e2e.conftest import wait_for
from tests.latentcast.conftest import T0, Server, Trained, sine_series
from tests.serving import ROOT
from tests.training_data import TINY

pytestmark = pytest.mark.slow

# The console script the package installs, running this checkout's code.
LATENTCAST = [str(Path(sys.executable).with_name("latentcast"))]
if not Path(LATENTCAST[0]).exists():
    LATENTCAST = [sys.executable, "-m", "service.cli"]


def _env(server: Server) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LATENTCAST_")}
    return {**env, "PYTHONPATH": str(ROOT), "LATENTCAST_URL": server.url, "LATENTCAST_KEY": server.key}


def latentcast(server: Server, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([*LATENTCAST, *args], cwd=ROOT, env={**_env(server), **env}, capture_output=True,
                          text=True, timeout=180)


def test_import_csv_creates_the_series_and_batches(server: Server, client: Client, tmp_path: Path) -> None:
    path = tmp_path / "room.csv"
    path.write_text("time,temp,hum\n"
                    "2026-01-01T00:00:00Z,21.5,0.4\n"
                    "2026-01-01T00:00:01.5Z,,0.41\n"
                    "\n"
                    f"{T0 + 3},22,\n"
                    "2026-01-01T01:00:04+01:00,22.5,0.43\n")
    done = latentcast(server, "import", str(path), "--series", "cli-room", "--batch-values", "4")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ("imported 4 rows into cli-room: 6 values, 6 inserted, 0 updated, 0 unchanged")
    assert "created series cli-room with channels temp, hum" in done.stderr
    series = client.series("cli-room")
    assert series.channels == ["temp", "hum"] and series.counts == {"temp": 3, "hum": 3}
    assert client.observations("cli-room")[1] == {"t": datetime(2026, 1, 1, 0, 0, 1, 500000, tzinfo=UTC),
                                                  "temp": None, "hum": 0.41}
    again = latentcast(server, "import", str(path), "--series", "cli-room")
    assert again.returncode == 0 and "6 unchanged" in again.stdout and "created" not in again.stderr

    # A bad cell is named by its line in the file, not in the request that carried it.
    bad = tmp_path / "bad.csv"
    bad.write_text("t,temp,hum\n" + "".join(f"{T0 + 10 + i},{i},\n" for i in range(5)) + f"{T0 + 20},warm,\n")
    failed = latentcast(server, "import", str(bad), "--series", "cli-room", "--batch-values", "4")
    assert failed.returncode == 1 and failed.stdout == ""
    assert failed.stderr.startswith("error: validation_error: bad.csv line 7, column temp: "), failed.stderr
    assert client.series("cli-room").counts["temp"] == 3 + 4  # the first two requests (two rows each) went in


def test_import_refuses_what_it_cannot_read(server: Server, tmp_path: Path) -> None:
    missing = latentcast(server, "import", str(tmp_path / "nope.csv"), "--series", "x")
    assert missing.returncode == 1 and "nope.csv: no such file" in missing.stderr
    (tmp_path / "one.csv").write_text("t\n1,\n")
    header = latentcast(server, "import", str(tmp_path / "one.csv"), "--series", "x")
    assert header.returncode == 1 and "one column per channel" in header.stderr
    (tmp_path / "data.parquet").write_bytes(b"PAR1")
    parquet = latentcast(server, "import", str(tmp_path / "data.parquet"), "--series", "x")
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        assert parquet.returncode == 1
        assert parquet.stderr.strip() == ("error: reading Parquet needs pandas and pyarrow: "
                                          "pip install 'latentcast[parquet]'")
    else:
        assert parquet.returncode == 1 and parquet.stderr.startswith("error:")  # four bytes are no Parquet file


def test_train_follow_then_jobs_and_models(server: Server, client: Client) -> None:
    sine_series(client, "cli-train-1", seed=4)
    # TTY_COMPATIBLE=1: rich draws the progress bar as on a terminal (it draws none into a pipe).
    done = latentcast(server, "train", "--series", "cli-train-1", "--horizon", "PT30S", "--follow",
                      "--config", json.dumps(TINY), TTY_COMPATIBLE="1")
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.strip()
    job = client.job(job_id)
    assert job.status == "succeeded" and (job.model_name, job.model_version) == ("cli-train-1", 1)
    assert "training cli-train-1 version 1" in done.stderr and "cli-train-1 version 1 is ready" in done.stderr
    assert "2/2" in done.stderr  # the bar reached the last of the job's two epochs
    assert client.version("cli-train-1", 1).config["horizon"] == 30.0

    jobs = latentcast(server, "jobs", "--status", "succeeded")
    assert jobs.returncode == 0 and job_id in jobs.stdout
    line = next(row for row in jobs.stdout.splitlines() if job_id in row)
    assert "succeeded" in line and "cli-train-1 v1" in line and "2/2" in line
    assert job_id not in latentcast(server, "jobs", "--status", "failed").stdout

    models = latentcast(server, "models")
    row = next(r for r in models.stdout.splitlines() if "cli-train-1" in r)
    assert models.returncode == 0 and "ready" in row and "val_mse" in row
    versions = latentcast(server, "models", "cli-train-1")
    assert versions.returncode == 0 and "cli-train-1" in versions.stdout
    client.delete_model("cli-train-1")
    gone = latentcast(server, "models", "cli-train-1")
    assert gone.returncode == 1 and gone.stderr.startswith("error: no_model: no model named 'cli-train-1'")


def test_train_errors_and_no_follow(server: Server, client: Client) -> None:
    unknown = latentcast(server, "train", "--series", "cli-nowhere", "--horizon", "P7D")
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert unknown.stderr.startswith("error: not_found: ") and "cli-nowhere" in unknown.stderr
    bad = latentcast(server, "train", "--series", "cli-nowhere", "--config", "[1]")
    assert bad.returncode == 1 and "--config must be a JSON object" in bad.stderr
    prefix = latentcast(server, "train", "--series-prefix", "cli-nothing-", "--horizon", "P7D")
    assert prefix.returncode == 1
    assert prefix.stderr.strip() == ("error: validation_error: body.series_prefix: no series key starts with "
                                     "'cli-nothing-'")
    both = latentcast(server, "train", "--series", "a", "--series-prefix", "b")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr  # argparse's usage error


def test_ctrl_c_detaches_and_the_job_keeps_running(server: Server, client: Client) -> None:
    sine_series(client, "cli-long-1", seed=5)
    proc = subprocess.Popen([*LATENTCAST, "train", "--series", "cli-long-1", "--name", "cli-long", "--follow",
                             "--config", json.dumps({**TINY, "epochs": 2000})], cwd=ROOT, env=_env(server),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        job_id = proc.stdout.readline().strip()
        wait_for(lambda: (j := client.job(job_id)).status == "running" and j.progress, timeout=120, every=0.2,
                 what="the job to be running")
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert f"stopped following; job {job_id} keeps running" in err and "Traceback" not in err
    assert client.job(job_id).status == "running"  # detached, not cancelled
    with pytest.raises(TimeoutError, match=job_id):
        client.wait(job_id, timeout=0.5)
    assert client.cancel_job(job_id).id == job_id
    assert client.wait(job_id, timeout=60).status == "cancelled"


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_forecast_csv_and_table(server: Server, trained: Trained) -> None:
    gaps = [b - a for a, b in zip(trained.times, trained.times[1:], strict=False)]
    gap = statistics.median(gaps)
    done = latentcast(server, "forecast", trained.series, "--horizon", "PT10S", "--csv", "--seed", "1")
    assert done.returncode == 0, done.stderr
    rows = _csv(done.stdout)
    assert list(rows[0]) == ["t", "kind", "channel", "mean", "std", "q0.05", "q0.5", "q0.95"]
    # The step defaults to the series' median gap: times last+gap, last+2·gap, ... up to last+10 s.
    times = sorted({datetime.fromisoformat(r["t"]).timestamp() for r in rows})
    last = trained.times[-1]
    assert times == pytest.approx([last + k * gap for k in range(1, int(10 // gap) + 1)], abs=1e-5)
    assert [r["channel"] for r in rows[:2]] == ["a", "b"] and {r["kind"] for r in rows} == {"extrapolation"}
    assert all(float(r["q0.05"]) <= float(r["q0.95"]) for r in rows)
    with Client(server.url, server.key) as client:
        same = client.forecast(trained.series, horizon="PT10S", step=f"{gap:.6f}", seed=1)
    assert [float(r["mean"]) for r in rows] == [r["mean"] for r in same.records()]

    table = latentcast(server, "forecast", trained.series, "--horizon", "PT4S", "--step", "2", "--quantiles",
                       "0.25,0.75")
    assert table.returncode == 0, table.stderr
    assert "shared-1: model shared version 1" in table.stdout
    for word in ("q0.25", "q0.75", "extrapolation"):
        assert word in table.stdout
    stamp = datetime.fromtimestamp(last + 2, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert sum(stamp in line for line in table.stdout.splitlines()) == 2  # channels a and b at last + 2 s

    at = latentcast(server, "forecast", trained.series, "--at", str(last - 50), "--at", str(last + 1), "--csv")
    assert [r["kind"] for r in _csv(at.stdout)] == ["interpolation"] * 2 + ["extrapolation"] * 2


def test_forecast_errors(server: Server, trained: Trained, tmp_path: Path) -> None:
    unknown = latentcast(server, "forecast", "cli-nowhere", "--horizon", "PT1H")
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert unknown.stderr.startswith("error: not_found: no series with key 'cli-nowhere'")
    past = latentcast(server, "forecast", trained.series, "--horizon", "P1D", "--step", "PT1H")
    assert past.returncode == 1 and past.stderr.startswith("error: validation_error: ")
    assert "horizon" in past.stderr
    wrong_key = subprocess.run([*LATENTCAST, "jobs", "--key", "lc_wrong"], cwd=ROOT, env=_env(server),
                               capture_output=True, text=True, timeout=60)
    assert wrong_key.returncode == 1 and wrong_key.stderr.startswith("error: unauthorized: ")
    # --url beats LATENTCAST_URL; nothing listening there is an error that says where it looked.
    down = latentcast(server, "models", "--url", "http://127.0.0.1:9")
    assert down.returncode == 1 and "cannot reach the latentcast server at http://127.0.0.1:9" in down.stderr
    # Without LATENTCAST_KEY, the admin key file of the current folder (here: none, so the server says 401).
    env = {k: v for k, v in _env(server).items() if k != "LATENTCAST_KEY"}
    keyless = subprocess.run([*LATENTCAST, "models"], cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=60)
    assert keyless.returncode == 1 and keyless.stderr.startswith("error: unauthorized: ")
    (tmp_path / "latentcast-data").mkdir()
    (tmp_path / "latentcast-data" / "admin.key").write_text(server.key + "\n")
    keyed = subprocess.run([*LATENTCAST, "models"], cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=60)
    assert keyed.returncode == 0 and "shared" in keyed.stdout
