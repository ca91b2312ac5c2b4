"""The client commands of `latentcast`: import, train, forecast, jobs, models.

They talk to a server over HTTP (`--url`, else LATENTCAST_URL, else http://127.0.0.1:$LATENTCAST_PORT; `--key`, else
LATENTCAST_KEY, else latentcast-data/admin.key) and need nothing of the server's code. Results go to stdout
(tables, CSV, a new job's id), progress and messages to stderr. An error answer prints its code and message on
stderr and exits 1; Ctrl-C while following a training exits 130 and leaves the job running.
"""

import argparse
import csv
import io
import itertools
import json
import statistics
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from latentcast._client import DEFAULT_BATCH_VALUES, Client
from latentcast._errors import ApiError, LatentcastError
from latentcast._types import Forecast, Job, Series, Version, WriteResult

CSV_SHAPE = ("a header line, then one line per time: the first column the time (RFC 3339 with an offset, or Unix "
             "seconds), then one column per channel; an empty cell means not observed")
PARQUET_SUFFIXES = (".parquet", ".pq")
# The median gap that the forecast step defaults to is taken over at most this many of the newest times.
GAP_SAMPLE = 2000


class UsageError(LatentcastError):
    """Something wrong on this side (a file, an argument) before or instead of asking the server."""


def add_commands(sub: Any) -> None:
    """Register the client commands on `latentcast`'s subparsers; each sets `client_command`."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=None,
                        help="the server (default: LATENTCAST_URL, else http://127.0.0.1:$LATENTCAST_PORT, port "
                             "8000 when unset)")
    common.add_argument("--key", default=None,
                        help="API key (default: LATENTCAST_KEY, else the file latentcast-data/admin.key)")

    imp = sub.add_parser("import", parents=[common], help="upload a CSV (or Parquet) file of observations",
                         description=f"Upload observations to a series. CSV: {CSV_SHAPE}. A Parquet file has "
                                     "the same columns (or the times as its index) and needs "
                                     "pip install 'latentcast[parquet]'. The series is created with the file's "
                                     "channels when it does not exist.")
    imp.add_argument("file", help="a .csv file, or .parquet / .pq")
    imp.add_argument("--series", required=True, help="the series key")
    imp.add_argument("--batch-values", type=int, default=DEFAULT_BATCH_VALUES,
                     help=f"values per request (default {DEFAULT_BATCH_VALUES})")
    imp.set_defaults(client_command=cmd_import)

    train = sub.add_parser("train", parents=[common], help="train a new model version",
                           description="Start training; prints the job's id on stdout. --follow shows its "
                                       "progress until it ends (Ctrl-C stops following, not training).")
    which = train.add_mutually_exclusive_group(required=True)
    which.add_argument("--series", help="comma-separated series keys")
    which.add_argument("--series-prefix", help="every series whose key starts with this")
    train.add_argument("--name", help="the model's name (default: the first series key, or the prefix)")
    train.add_argument("--horizon", help="how far forecasts must reach: seconds or ISO 8601 (P7D, PT6H)")
    train.add_argument("--context", help="how much history the model reads: seconds or ISO 8601")
    train.add_argument("--config", help='ModelConfig fields as a JSON object, e.g. \'{"train_steps": 400}\'')
    train.add_argument("--follow", action="store_true", help="show progress until the job ends")
    train.set_defaults(client_command=cmd_train)

    fc = sub.add_parser("forecast", parents=[common], help="forecast a series",
                        description="Forecast at last+step, last+2*step, ... up to last+horizon (last: the series' "
                                    "last observation), or at the times given with --at.")
    fc.add_argument("series", help="the series key")
    when = fc.add_mutually_exclusive_group(required=True)
    when.add_argument("--horizon", help="seconds or ISO 8601 (PT6H)")
    when.add_argument("--at", action="append", help="a time (RFC 3339 or Unix seconds); repeatable")
    fc.add_argument("--step", help="seconds or ISO 8601 (default: the median gap between the series' times)")
    fc.add_argument("--model", help="model name (default: the model last trained on the series)")
    fc.add_argument("--version", type=int, help="model version (default: the newest ready one)")
    fc.add_argument("--quantiles", help="comma-separated levels in (0, 1) (default 0.05,0.5,0.95)")
    fc.add_argument("--samples", type=int, help="Monte Carlo samples (default 100)")
    fc.add_argument("--seed", type=int, help="makes the numbers reproducible")
    fc.add_argument("--csv", action="store_true", help="CSV on stdout instead of a table")
    fc.set_defaults(client_command=cmd_forecast)

    jobs = sub.add_parser("jobs", parents=[common], help="list training jobs, newest first")
    jobs.add_argument("--status", choices=["queued", "running", "succeeded", "failed", "cancelled"])
    jobs.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    jobs.set_defaults(client_command=cmd_jobs)

    models = sub.add_parser("models", parents=[common], help="list models (or one model's versions)")
    models.add_argument("name", nargs="?", help="show every version of this model")
    models.set_defaults(client_command=cmd_models)


def run(args: argparse.Namespace) -> int:
    """Run a client command; errors become a message on stderr and exit status 1."""
    try:
        with Client(args.url, args.key) as client:
            status: int = args.client_command(client, args)
            return status
    except ApiError as exc:
        _say(f"error: {exc.code}: {exc.message}")
    except LatentcastError as exc:
        _say(f"error: {exc}")
    return 1


# -- import ---------------------------------------------------------------------------------------------------------

def cmd_import(client: Client, args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    if path.suffix.lower() in PARQUET_SUFFIXES:
        rows, result = _import_parquet(client, path, args.series, args.batch_values)
    else:
        rows, result = _import_csv(client, path, args.series, args.batch_values)
    print(f"imported {rows} rows into {args.series}: {result.received} values, {result.inserted} inserted, "
          f"{result.updated} updated, {result.unchanged} unchanged")
    return 0


def _ensure_series(client: Client, key: str, channels: list[str]) -> Series:
    """The series, created with `channels` when it does not exist."""
    try:
        return client.series(key)
    except ApiError as exc:
        if exc.status != 404:
            raise
    series = client.create_series(key, channels)
    _say(f"created series {key} with channels {', '.join(channels)}")
    return series


def _import_csv(client: Client, path: Path, key: str, batch_values: int) -> tuple[int, Any]:
    with path.open(newline="", encoding="utf-8-sig") as handle:  # -sig: spreadsheets start files with a BOM
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header or len(header) < 2 or not all(h.strip() for h in header[1:]):
            raise UsageError(f"{path}: expected {CSV_SHAPE}; the header must name a time column and at least one "
                             "channel")
        channels = [h.strip() for h in header[1:]]
        _ensure_series(client, key, channels)
        per_request = max(1, batch_values // len(channels))
        total_rows = max(0, _count_lines(path) - 1)
        result, rows = WriteResult(), 0
        batch: list[list[str]] = []
        lines: list[int] = []  # the file's line number of each row in `batch`, to name it in an error
        with _bar() as bar:
            task = bar.add_task(f"importing {path.name}", total=total_rows)

            def send() -> None:
                nonlocal result, rows
                body = io.StringIO()
                writer = csv.writer(body, lineterminator="\n")
                writer.writerow(["t", *channels])  # the API wants its time column called t
                writer.writerows(batch)
                try:
                    result += client.add_csv(key, body.getvalue())
                except ApiError as exc:
                    raise _at_file_line(exc, path, lines) from None
                rows += len(batch)
                bar.update(task, completed=rows)
                batch.clear()
                lines.clear()

            for row in reader:
                if not row or not any(cell.strip() for cell in row):
                    continue  # blank lines carry nothing
                batch.append(row)
                lines.append(reader.line_num)
                if len(batch) == per_request:
                    send()
            if batch:
                send()
            bar.update(task, total=rows, completed=rows)
    return rows, result


def _count_lines(path: Path) -> int:
    count = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            count += chunk.count(b"\n")
    return count


def _at_file_line(exc: ApiError, path: Path, lines: list[int]) -> ApiError:
    """The server names a CSV problem by its line in the request ([..., "line", n, column]); say the file's line."""
    if not exc.details or not isinstance(exc.details[0], dict):
        return exc
    loc = exc.details[0].get("loc") or []
    if len(loc) < 3 or loc[1] != "line" or not isinstance(loc[2], int) or not 2 <= loc[2] <= len(lines) + 1:
        return exc
    where = f"{path.name} line {lines[loc[2] - 2]}" + (f", column {loc[3]}" if len(loc) > 3 else "")
    more = f" (and {len(exc.details) - 1} more problems)" if len(exc.details) > 1 else ""
    return ApiError(exc.status, exc.code, f"{where}: {exc.details[0].get('msg')}{more}", exc.details)


def _import_parquet(client: Client, path: Path, key: str, batch_values: int) -> tuple[int, Any]:
    try:
        import pandas
        frame = pandas.read_parquet(path)
    except ImportError:
        raise UsageError("reading Parquet needs pandas and pyarrow: pip install 'latentcast[parquet]'") from None
    if not isinstance(frame.index, pandas.RangeIndex):
        frame = frame.reset_index()  # times kept as the index: make them the first column
    if frame.shape[1] < 2:
        raise UsageError(f"{path}: expected a time column and at least one channel column")
    frame = frame.rename(columns={frame.columns[0]: "t"})
    channels = [str(c) for c in frame.columns[1:]]
    _ensure_series(client, key, channels)
    with _bar() as bar:
        task = bar.add_task(f"importing {path.name}", total=len(frame))
        result = client.add_observations(key, frame, batch_values=batch_values,
                                         progress=lambda sent, _: bar.update(task, completed=sent))
    return len(frame), result


# -- train ----------------------------------------------------------------------------------------------------------

def cmd_train(client: Client, args: argparse.Namespace) -> int:
    series = [s.strip() for s in args.series.split(",") if s.strip()] if args.series else None
    config: dict[str, Any] = {}
    if args.config:
        try:
            config = json.loads(args.config)
        except json.JSONDecodeError as exc:
            raise UsageError(f"--config is not JSON: {exc}") from None
        if not isinstance(config, dict):
            raise UsageError("--config must be a JSON object of ModelConfig fields")
    name = args.name or (series[0] if series else args.series_prefix)
    started = client.train(name, series=series, series_prefix=args.series_prefix, horizon=args.horizon,
                           context=args.context, config=config)
    print(started.job.id, flush=True)
    _say(f"training {started.name} version {started.version}: job {started.job.id}")
    if not args.follow:
        return 0
    try:
        job = _follow(client, started.job)
    except KeyboardInterrupt:
        _say(f"stopped following; job {started.job.id} keeps running (see `latentcast jobs`)")
        return 130
    if job.status != "succeeded":
        _say(f"error: job {job.id} {job.status}" + (f": {job.error}" if job.error else ""))
        return 1
    _say(f"{job.model_name} version {job.model_version} is ready")
    return 0


def _follow(client: Client, job: Job) -> Job:
    with _bar() as bar:
        task = bar.add_task(job.status, total=None)
        for update in client.follow(job.id):
            job, p = update, update.progress
            if p is None:
                bar.update(task, description=job.status)
                continue
            detail = "" if p.loss is None else f" loss {p.loss:.4g}"
            detail += "" if p.val_mse is None else f" val {p.val_mse:.4g}"
            bar.update(task, description=f"{job.status}{detail}", total=p.epochs, completed=p.epoch)
    return job


# -- forecast -------------------------------------------------------------------------------------------------------

def cmd_forecast(client: Client, args: argparse.Namespace) -> int:
    quantiles = None
    if args.quantiles:
        try:
            quantiles = [float(q) for q in args.quantiles.split(",")]
        except ValueError:
            raise UsageError(f"--quantiles {args.quantiles!r}: expected numbers separated by commas") from None
    common = {"model": args.model, "version": args.version, "quantiles": quantiles, "samples": args.samples,
              "seed": args.seed}
    if args.at:
        if args.step:
            raise UsageError("--step goes with --horizon, not with --at")
        forecast = client.forecast(args.series, at=args.at, **common)
    else:
        step = args.step or f"{_median_gap_s(client, args.series):.6f}"
        forecast = client.forecast(args.series, horizon=args.horizon, step=step, **common)
    for warning in forecast.warnings:
        _say(f"warning: {warning}")
    if args.csv:
        _write_csv(forecast, sys.stdout)
    else:
        _stdout().print(_forecast_table(forecast))
    return 0


def _median_gap_s(client: Client, key: str) -> float:
    """The median gap in seconds between the series' newest times (up to GAP_SAMPLE of them)."""
    series = client.series(key)
    if series.first_t is None or series.last_t is None:
        raise UsageError(f"series {key} has no observations: nothing to forecast from")
    rows = max(series.counts.values())
    # A window that holds about GAP_SAMPLE times if they are spread evenly; the whole series when it is short.
    start = series.last_t - (series.last_t - series.first_t) * min(1.0, GAP_SAMPLE / rows)
    times = [r["t"] for r in client.observations(key, start=start, limit=GAP_SAMPLE)]
    if len(times) < 2:
        times = [r["t"] for r in client.observations(key, limit=GAP_SAMPLE)]
    if len(times) < 2:
        raise UsageError(f"series {key} has one observation time: give --step")
    gap: float = statistics.median((b - a).total_seconds() for a, b in itertools.pairwise(times))
    if gap < 1e-6:
        raise UsageError(f"series {key}'s median gap is under a microsecond: give --step")
    return gap


def _stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # the API's own form: UTC, six fractional digits


def _write_csv(forecast: Forecast, out: Any) -> None:
    records = forecast.records()
    writer = csv.writer(out, lineterminator="\n")
    columns = ["t", "kind", "channel", "mean", "std"] + [f"q{q}" for q in _levels(forecast)]
    writer.writerow(columns)
    for r in records:
        writer.writerow([_stamp(r["t"]), *(r[c] if isinstance(r[c], str) else repr(r[c]) for c in columns[1:])])


def _levels(forecast: Forecast) -> list[str]:
    first = next(iter(forecast.channels.values()), None)
    return list(first.quantiles) if first else []


def _forecast_table(forecast: Forecast) -> Any:
    from rich.table import Table

    title = f"{forecast.series}: model {forecast.model} version {forecast.version}"
    table = Table(title=title)
    for name in ("t", "kind", "channel"):
        table.add_column(name, no_wrap=True)
    levels = _levels(forecast)
    for name in ["mean", "std", *(f"q{q}" for q in levels)]:
        table.add_column(name, justify="right", no_wrap=True)
    for r in forecast.records():
        table.add_row(_stamp(r["t"]), r["kind"], r["channel"], f"{r['mean']:.6g}", f"{r['std']:.6g}",
                      *(f"{r[f'q{q}']:.6g}" for q in levels))
    return table


# -- jobs and models ------------------------------------------------------------------------------------------------

def cmd_jobs(client: Client, args: argparse.Namespace) -> int:
    from rich.table import Table

    table = Table()
    table.add_column("id", no_wrap=True, min_width=36)
    for name in ("status", "model", "progress", "loss", "created", "error"):
        table.add_column(name, no_wrap=name != "error")
    for job in client.jobs(status=args.status, limit=args.limit):
        p = job.progress
        model = f"{job.model_name} v{job.model_version}" if job.model_name else "-"
        table.add_row(job.id, job.status, model, f"{p.epoch}/{p.epochs}" if p else "-",
                      f"{p.loss:.4g}" if p and p.loss is not None else "-", _stamp(job.created_at)[:19] + "Z",
                      job.error or "")
    _stdout().print(table)
    return 0


def cmd_models(client: Client, args: argparse.Namespace) -> int:
    from rich.table import Table

    versions: list[Version] = client.versions(args.name) if args.name else list(client.models())
    table = Table()
    for name in ("name", "version", "status", "channels", "series", "score", "trained"):
        table.add_column(name, no_wrap=name in ("name", "version", "status", "trained"))
    for v in versions:
        table.add_row(v.name, str(v.version), v.status, ",".join(v.channels), ",".join(v.series[:5])
                      + (f" (+{len(v.series) - 5})" if len(v.series) > 5 else ""), v.error or _score(v.metrics),
                      _stamp(v.trained_at)[:19] + "Z" if v.trained_at else "-")
    _stdout().print(table)
    return 0


def _score(metrics: dict[str, Any] | None) -> str:
    """A version's validation result in a few words: its backtest against the best baseline (the default frame),
    else its validation error (the global frame)."""
    if not metrics:
        return "-"
    backtest = metrics.get("backtest") or {}
    methods = backtest.get("methods") or {}
    best = backtest.get("best_baseline")
    ours = (methods.get("model") or {}).get("mae")
    theirs = (methods.get(best) or {}).get("mae") if best else None
    if ours is not None and theirs:
        return f"MAE {ours / theirs:.3g}x {best}'s"
    for name in ("val_mae", "val_mse"):
        if metrics.get(name) is not None:
            return f"{name} {metrics[name]:.4g}"
    return "-"


# -- output ---------------------------------------------------------------------------------------------------------

def _say(message: str) -> None:
    """A message for the person at the terminal, on stderr, never wrapped or styled."""
    print(message, file=sys.stderr, flush=True)


def _stdout() -> Any:
    from rich.console import Console

    console = Console()
    # Into a pipe or file, tables take the width their cells need: rich would otherwise squeeze them into 80
    # columns and cut ids and times short.
    return console if console.is_terminal else Console(width=10_000)


def _stderr() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def _bar() -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = _stderr()
    # Drawn on a terminal only: piped into a log, a bar is noise (TTY_COMPATIBLE=1 forces it).
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, disable=not console.is_terminal)

