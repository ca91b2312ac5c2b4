"""Settings, read once from LATENTCAST_* environment variables (pydantic-settings).

`get_settings()` reads them for the CLI; an app keeps the Settings it was built with (`create_app(settings)`) in
its state and hands them to handlers as `SettingsDep`, so tests pass their own instead of patching globals.
"""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MiB = 1024 * 1024


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LATENTCAST_", frozen=True, extra="ignore")

    data_dir: Path = Path("latentcast-data")
    # None: a SQLite file in data_dir. postgresql://… for PostgreSQL (psycopg 3 is used either way).
    database_url: str | None = None
    # None: a SqliteHuey queue file in data_dir. redis://… (RedisHuey) or postgresql://… (PostgresHuey).
    queue_url: str | None = None
    # The queue's name inside that store: workers and API servers of one deployment share it.
    queue_name: str = Field("latentcast", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    auth: Literal["enabled", "disabled"] = "enabled"
    # Where `latentcast serve` listens unless --host/--port say otherwise.
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)

    # Limits on every request.
    max_body_bytes: int = Field(16 * MiB, ge=1024)
    max_values_per_request: int = Field(1_000_000, ge=1)
    # Slow clients (service.api.http_server, service.api.limits): a request's line and headers must arrive within
    # header_timeout_seconds and be at most max_header_bytes; its body must arrive within body_timeout_seconds of
    # the server starting to read it (16 MiB in 60 s: about 2.2 Mbit/s); an idle connection is closed after
    # keep_alive_seconds (behind a load balancer, set it above the balancer's own idle timeout).
    header_timeout_seconds: float = Field(10.0, gt=0, le=3600)
    max_header_bytes: int = Field(64 * 1024, ge=1024, le=16 * MiB)
    body_timeout_seconds: float = Field(60.0, gt=0, le=86400)
    keep_alive_seconds: float = Field(5.0, gt=0, le=3600)

    # Per-key quotas (service.api.quotas, service.storage.jobs): per API key, or, with auth disabled, over all requests.
    # At most rate_limit_requests in any rate_limit_window_seconds (0: no limit), counted in Redis when queue_url
    # is a Redis one (shared by every API replica), in each API process otherwise.
    rate_limit_requests: int = Field(1000, ge=0, le=10**9)
    rate_limit_window_seconds: int = Field(10, ge=1, le=86400)
    # Training jobs queued or running at once, per key.
    max_active_jobs_per_key: int = Field(10, ge=1, le=1_000_000)
    # Open job event streams (server-sent events) per key, in each API process.
    max_event_streams_per_key: int = Field(16, ge=1, le=1_000_000)

    # Background training.
    job_max_attempts: int = Field(3, ge=1)
    heartbeat_seconds: float = Field(5.0, gt=0)
    # A running job whose heartbeat is older than this is presumed dead and re-queued.
    stale_after_seconds: float = Field(60.0, gt=0)
    # A queued job not claimed within this long is enqueued again (its message may have been lost).
    requeue_after_seconds: float = Field(60.0, gt=0)
    sweep_every_seconds: float = Field(15.0, gt=0)
    worker_threads: int = Field(1, ge=1, le=64)

    # Forecasting.
    model_cache_bytes: int = Field(512 * MiB, ge=MiB)
    # Requests per batch. 32 clients on 2 cores: batches of 16 (two in turn: one solves while the API prepares the
    # other) gave the same throughput as 32 with a p99 of 344 ms against 527.
    forecast_batch_size: int = Field(16, ge=1, le=1024)
    forecast_batch_wait_ms: float = Field(2.0, ge=0, le=1000)
    # torch intra-op threads in the API process (0: torch's default, one per core). A forecast is many small matrix
    # products: threads contend with each other and with the server's own (2 busy cores: 40 ms with 1 thread,
    # 600 ms with 2). Raise on a dedicated many-core machine.
    forecast_torch_threads: int = Field(1, ge=0, le=256)
    # Child processes that solve forecasts (each with forecast_torch_threads threads and its own copy of the models
    # in use, bounded by model_cache_bytes). 0: solve in threads of the API process, where the solves wait for the
    # GIL behind the server's own work (32 clients on 2 cores: half the throughput).
    forecast_processes: int = Field(1, ge=0, le=64)

    @field_validator("database_url", "queue_url")
    @classmethod
    def _empty_is_default(cls, value: str | None) -> str | None:
        return value or None

    @property
    def db_url(self) -> str:
        """The SQLAlchemy URL, with the psycopg 3 driver named for PostgreSQL."""
        url = self.database_url or f"sqlite:///{(self.data_dir / 'latentcast.db').resolve()}"
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix):]
        return url

    @property
    def is_sqlite(self) -> bool:
        return self.db_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
