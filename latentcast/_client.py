"""`Client`: the API as typed Python calls, over one httpx connection pool.

Lists that the API pages (series, jobs, models, observations) are iterated here, page after page, so a caller sees
one sequence. Large uploads are split into requests of at most `batch_values` values: each request is all or
nothing, so a failure leaves the earlier batches written, and re-sending the whole upload is safe (the server
answers `unchanged` for what it already has).
"""

import json
import numbers
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import httpx

from latentcast._config import default_key, default_url
from latentcast._errors import ApiError, ServerUnreachable
from latentcast._frames import frame_columns, is_frame, observations_frame
from latentcast._times import Duration, Time, encode_duration, encode_time, parse_time
from latentcast._types import Forecast, Job, Series, Training, Version, WriteResult

# A request of 200,000 values is a few MB of JSON: well inside the server's 16 MiB and 1,000,000-value limits.
DEFAULT_BATCH_VALUES = 200_000


class Client:
    """A latentcast server. `url` defaults to LATENTCAST_URL, else http://127.0.0.1:$LATENTCAST_PORT (8000 when
    unset); `key` to LATENTCAST_KEY, else the admin key a server run from the current folder wrote
    (latentcast-data/admin.key). `timeout`: seconds for each request to connect, send and answer. Use it as a
    context manager, or call `close()`."""

    def __init__(self, url: str | None = None, key: str | None = None, *, timeout: float = 60.0,
                 transport: httpx.BaseTransport | None = None):
        self.url = (url or default_url()).rstrip("/")
        key = key if key is not None else default_key()
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- series ---------------------------------------------------------------------------------------------------

    def create_series(self, key: str, channels: Sequence[str], *, description: str = "",
                      metadata: Mapping[str, Any] | None = None) -> Series:
        body = {"key": key, "channels": list(channels), "description": description, "metadata": dict(metadata or {})}
        return Series.from_json(self._send("POST", "/v1/series", body=body).json())

    def series(self, key: str) -> Series:
        """One series with its per-channel counts and time range."""
        return Series.from_json(self._send("GET", f"/v1/series/{key}").json())

    def list_series(self, prefix: str | None = None, *, page_size: int = 100) -> Iterator[Series]:
        """Every series (whose key starts with `prefix`), by key; pages are fetched as the iteration reaches them."""
        for doc in self._pages("/v1/series", {"prefix": prefix}, page_size):
            yield Series.from_json(doc)

    def update_series(self, key: str, *, description: str | None = None, metadata: Mapping[str, Any] | None = None,
                      channels: Sequence[str] | None = None) -> Series:
        """Change the description or metadata, or add channels (`channels` is the full new list: the existing ones
        in their order, then the new ones)."""
        body: dict[str, Any] = {}
        if description is not None:
            body["description"] = description
        if metadata is not None:
            body["metadata"] = dict(metadata)
        if channels is not None:
            body["channels"] = list(channels)
        return Series.from_json(self._send("PATCH", f"/v1/series/{key}", body=body).json())

    def delete_series(self, key: str) -> None:
        """Delete a series and all its observations."""
        self._send("DELETE", f"/v1/series/{key}")

    # -- observations ---------------------------------------------------------------------------------------------

    def add_observations(self, key: str, data: Any = None, *, t: Sequence[Time] | None = None,
                         values: Mapping[str, Sequence[float | None]] | None = None,
                         batch_values: int = DEFAULT_BATCH_VALUES,
                         progress: Callable[[int, int], None] | None = None) -> WriteResult:
        """Write observations, in one of three forms:

        - `t=[...], values={"temp": [...], ...}`: columns, every list as long as `t`;
        - `data=[{"t": ..., "values": {"temp": 21.5}}, ...]`: rows, each naming the channels it has;
        - `data=frame`: a pandas DataFrame with times in its index or a "t" column (timezone-aware datetimes or
          Unix seconds) and a column per channel, NaN where a channel was not observed.

        A time is an aware datetime, RFC 3339 text with an offset, or Unix seconds; None (NaN in a frame) means "not
        observed". The data goes in requests of at most `batch_values` values; `progress(rows_sent, rows)` is
        called after each. Returns the counts summed over every request.
        """
        times, columns = self._columns(data, t, values)
        rows = len(times)
        per_request = max(1, batch_values // max(1, len(columns)))
        total = WriteResult()
        for first in range(0, rows, per_request):
            part = slice(first, first + per_request)
            body = {"t": [encode_time(x) for x in times[part]], "values": {c: v[part] for c, v in columns.items()}}
            total += WriteResult.from_json(self._send("POST", f"/v1/series/{key}/observations", body=body).json())
            if progress is not None:
                progress(min(first + per_request, rows), rows)
        return total

    def add_csv(self, key: str, text: str | bytes) -> WriteResult:
        """Write CSV as the API takes it, in one request: header `t,<channel>,...`, a time per line, an empty cell
        where a channel was not observed."""
        content = text.encode() if isinstance(text, str) else text
        response = self._send("POST", f"/v1/series/{key}/observations", content=content,
                              headers={"Content-Type": "text/csv"})
        return WriteResult.from_json(response.json())

    def observations(self, key: str, *, start: Time | None = None, end: Time | None = None,
                     channels: Sequence[str] | None = None, limit: int | None = None,
                     page_size: int = 10_000) -> list[dict[str, Any]]:
        """Observations with `start <= t < end`, oldest first, as records: {"t": datetime, "<channel>": value or
        None, ...}, one per time. `limit` stops after that many times (None: all of them)."""
        records = []
        for t, values in self._observation_pages(key, start, end, channels, limit, page_size):
            names = list(values)
            for i, stamp in enumerate(t):
                records.append({"t": parse_time(stamp), **{n: values[n][i] for n in names}})
        return records

    def observations_frame(self, key: str, *, start: Time | None = None, end: Time | None = None,
                           channels: Sequence[str] | None = None, limit: int | None = None,
                           page_size: int = 10_000) -> Any:
        """As `observations`, as a pandas DataFrame: a UTC DatetimeIndex named "t", a float column per channel,
        NaN where a channel was not observed."""
        t: list[str] = []
        merged: dict[str, list[float | None]] | None = None
        for page_t, values in self._observation_pages(key, start, end, channels, limit, page_size):
            t.extend(page_t)
            if merged is None:
                merged = {n: [] for n in values}
            for n, col in values.items():
                merged[n].extend(col)
        if merged is None:  # limit=0: no page was asked for
            merged = {}
        return observations_frame(t, merged)

    def delete_observations(self, key: str, *, start: Time | None = None, end: Time | None = None,
                            channels: Sequence[str] | None = None) -> int:
        """Delete observations with `start <= t < end` (of `channels`, default all); returns how many values."""
        params = {"start": _query_time(start), "end": _query_time(end), "channels": _comma(channels)}
        deleted: int = self._send("DELETE", f"/v1/series/{key}/observations", params=params).json()["deleted"]
        return deleted

    # -- training and jobs ----------------------------------------------------------------------------------------

    def train(self, name: str, *, series: Sequence[str] | None = None, series_prefix: str | None = None,
              horizon: Duration | None = None, context: Duration | None = None,
              config: Mapping[str, Any] | None = None, idempotency_key: str | None = None) -> Training:
        """Start training a new version of model `name` on `series` (their common channels), or on every series
        whose key starts with `series_prefix`. `horizon`: how far past the last observation forecasts must reach;
        `context`: how much history the model reads (seconds, ISO 8601 text such as "P7D", or a timedelta; the
        server chooses from the data when left out). `config`: ModelConfig fields by name. Returns at once with the
        version and its job; `wait(training.job.id)` follows it. A retry with the same `idempotency_key` (and body)
        answers as the first request did instead of training again."""
        body: dict[str, Any] = {"name": name, "config": dict(config or {})}
        if series is not None:
            body["series"] = list(series)
        if series_prefix is not None:
            body["series_prefix"] = series_prefix
        if horizon is not None:
            body["horizon"] = encode_duration(horizon)
        if context is not None:
            body["context"] = encode_duration(context)
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return Training.from_json(self._send("POST", "/v1/models", body=body, headers=headers).json())

    def job(self, job_id: str) -> Job:
        return Job.from_json(self._send("GET", f"/v1/jobs/{job_id}").json())

    def jobs(self, *, status: str | None = None, limit: int | None = None, page_size: int = 50) -> Iterator[Job]:
        """Jobs, newest first (only those with `status` when given); `limit` stops after that many."""
        for n, doc in enumerate(self._pages("/v1/jobs", {"status": status}, page_size)):
            if limit is not None and n >= limit:
                return
            yield Job.from_json(doc)

    def cancel_job(self, job_id: str) -> Job:
        """Ask a job to stop: a queued one at once, a running one within an epoch. 409 (ApiError) once finished."""
        return Job.from_json(self._send("POST", f"/v1/jobs/{job_id}/cancel").json())

    def follow(self, job_id: str, *, timeout: float | None = None) -> Iterator[Job]:
        """The job each time its status or progress changes, ending with it finished (succeeded, failed or
        cancelled), read from the server's event stream. A dropped stream is reopened. `timeout`: seconds before
        TimeoutError (checked at each event, and at the keep-alives the server sends every 15 s)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                with self._http.stream("GET", f"/v1/jobs/{job_id}/events") as response:
                    if response.status_code >= 400:
                        response.read()
                        raise _api_error(response)
                    event = None
                    for line in response.iter_lines():
                        _check_deadline(deadline, job_id)
                        if line.startswith("event:"):
                            event = line[len("event:"):].strip()
                        elif line.startswith("data:"):
                            job = Job.from_json(json.loads(line[len("data:"):]))
                            yield job
                            if event == "end":
                                return
            except httpx.TransportError:
                pass  # the stream broke off: look at the job, then open a new one
            job = self.job(job_id)  # a job deleted meanwhile (its model was) raises ApiError 404 here
            if job.finished:
                yield job
                return
            _check_deadline(deadline, job_id)
            time.sleep(0.5)

    def wait(self, job_id: str, *, progress: Callable[[Job], None] | None = None,
             timeout: float | None = None) -> Job:
        """Block until the job finishes and return it (check `.status`: succeeded, failed or cancelled; `.error`
        says why it failed). `progress(job)` is called on every change of its progress or status."""
        job = None
        for job in self.follow(job_id, timeout=timeout):
            if progress is not None:
                progress(job)
        assert job is not None  # follow always yields the finished job last
        return job

    # -- models ---------------------------------------------------------------------------------------------------

    def models(self, *, page_size: int = 100) -> Iterator[Version]:
        """Each model name with its newest version, by name."""
        for doc in self._pages("/v1/models", {}, page_size):
            yield Version.from_json(doc)

    def versions(self, name: str) -> list[Version]:
        """A model's versions, newest first, with their metrics."""
        return [Version.from_json(d) for d in self._send("GET", f"/v1/models/{name}").json()["versions"]]

    def version(self, name: str, version: int) -> Version:
        return Version.from_json(self._send("GET", f"/v1/models/{name}/versions/{version}").json())

    def artifact(self, name: str, version: int) -> bytes:
        """A ready version's saved model (safetensors with its config; `model.load` reads it in the full package)."""
        return self._send("GET", f"/v1/models/{name}/versions/{version}/artifact").content

    def delete_version(self, name: str, version: int) -> None:
        self._send("DELETE", f"/v1/models/{name}/versions/{version}")

    def delete_model(self, name: str) -> None:
        """Delete every version of a model (a job still training one stops)."""
        self._send("DELETE", f"/v1/models/{name}")

    # -- forecasts ------------------------------------------------------------------------------------------------

    def forecast(self, key: str, at: Time | Iterable[Time] | None = None, *, start: Time | None = None,
                 end: Time | None = None, step: Duration | None = None, horizon: Duration | None = None,
                 model: str | None = None, version: int | None = None, quantiles: Sequence[float] | None = None,
                 samples: int | None = None, seed: int | None = None, context: Duration | None = None) -> Forecast:
        """Forecast series `key` at the times `at` (one or many, any order); or at start, start+step, ... up to end
        (inclusive); or at last+step, last+2*step, ... up to last+horizon, last being the series' last observation.
        `model`/`version` default to the newest ready version of the model last trained on the series; `quantiles`
        to (0.05, 0.5, 0.95); `samples` to 100. The same `seed` gives the same numbers. `.to_frame()` on the answer
        gives a DataFrame."""
        if at is not None and (isinstance(at, str | int | float | datetime)):
            at = [at]
        params = {
            "at": [str(encode_time(x)) for x in at] if at is not None else None,
            "start": _query_time(start), "end": _query_time(end),
            "step": None if step is None else encode_duration(step),
            "horizon": None if horizon is None else encode_duration(horizon),
            "model": model, "version": version,
            "quantiles": None if quantiles is None else ",".join(repr(float(q)) for q in quantiles),
            "samples": samples, "seed": seed,
            "context": None if context is None else encode_duration(context),
        }
        return Forecast.from_json(self._send("GET", f"/v1/series/{key}/forecast", params=params).json())

    # -- plumbing -------------------------------------------------------------------------------------------------

    def _send(self, method: str, path: str, *, body: Any = None, params: Mapping[str, Any] | None = None,
              content: bytes | None = None, headers: Mapping[str, str] | None = None) -> httpx.Response:
        headers = dict(headers or {})
        if body is not None:
            # Encoded here rather than by httpx, which refuses NaN: the server names a NaN's place in its 422.
            content = json.dumps(body, separators=(",", ":"), default=_plain_number).encode()
            headers["Content-Type"] = "application/json"
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._http.request(method, path, params=query, content=content, headers=headers)
        except httpx.TransportError as exc:
            raise ServerUnreachable(self.url, str(exc) or type(exc).__name__) from None
        if response.status_code >= 400:
            raise _api_error(response)
        return response

    def _pages(self, path: str, params: Mapping[str, Any], page_size: int) -> Iterator[dict[str, Any]]:
        cursor = None
        while True:
            page = self._send("GET", path, params={**params, "limit": page_size, "cursor": cursor}).json()
            yield from page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return

    def _observation_pages(self, key: str, start: Time | None, end: Time | None, channels: Sequence[str] | None,
                           limit: int | None, page_size: int) -> Iterator[tuple[list[str], dict[str, list[Any]]]]:
        params: dict[str, Any] = {"start": _query_time(start), "end": _query_time(end), "channels": _comma(channels)}
        cursor, left = None, limit
        if left is not None and left <= 0:
            return
        while True:
            size = page_size if left is None else min(page_size, left)
            page = self._send("GET", f"/v1/series/{key}/observations",
                              params={**params, "limit": size, "cursor": cursor}).json()
            yield page["t"], page["values"]
            cursor = page["next_cursor"]
            if left is not None:
                left -= len(page["t"])
            if cursor is None or (left is not None and left <= 0):
                return

    @staticmethod
    def _columns(data: Any, t: Sequence[Time] | None,
                 values: Mapping[str, Sequence[float | None]] | None) -> tuple[list[Any], dict[str, list[Any]]]:
        """Any accepted input as (times, {channel: values}), every list as long as times."""
        if data is not None and (t is not None or values is not None):
            raise TypeError("give either data (rows or a DataFrame) or t= and values=, not both")
        if data is None:
            if t is None or values is None:
                raise TypeError("give data (rows or a DataFrame), or both t= and values=")
            times = list(t)
            columns = {name: list(col) for name, col in values.items()}
            for name, col in columns.items():
                if len(col) != len(times):
                    raise ValueError(f"channel {name!r} has {len(col)} values for {len(times)} times")
            return times, columns
        if is_frame(data):
            return frame_columns(data)
        rows = list(data)
        names = list(dict.fromkeys(name for row in rows for name in row["values"]))
        return [row["t"] for row in rows], {n: [row["values"].get(n) for row in rows] for n in names}


def _api_error(response: httpx.Response) -> ApiError:
    try:
        info = response.json()["error"]
        return ApiError(response.status_code, info["code"], info["message"], info.get("details") or [])
    except (ValueError, KeyError, TypeError):  # not the API's error shape: a proxy's page, say
        text = response.text.strip().replace("\n", " ")[:300]
        return ApiError(response.status_code, "http_error", f"HTTP {response.status_code}: {text}")


def _plain_number(value: Any) -> int | float:
    """numpy's scalars (np.int64, np.float32, ...) as the Python numbers json writes; anything else is refused."""
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    raise TypeError(f"{type(value).__name__} cannot be sent as JSON: give numbers, text or None")


def _check_deadline(deadline: float | None, job_id: str) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise TimeoutError(f"job {job_id} did not finish in time")


def _query_time(value: Time | None) -> str | None:
    return None if value is None else str(encode_time(value))


def _comma(names: Sequence[str] | None) -> str | None:
    if names is None:
        return None
    return names if isinstance(names, str) else ",".join(names)
