"""Every SQL statement of the service, and the tables they run on.

    tables        the schema (SQLAlchemy Core; migrations/ creates it in a database)
    db            engines, migrating at start, and which database failures are outages (503, 507) rather than bugs
    series        series rows: create, list, update, delete, per-channel counts
    observations  observation reads (pages, matrices) and deletes
    bulk          the observation write path: many rows per statement
    jobs          the job state machine: every transition one conditional UPDATE
    registry      model names and versions, and their artifacts
    keys          API keys

Series and observations are used through this package (`storage.get_series`, re-exported below); the others as
modules (`from service.storage import jobs`). Times are integer µs since the epoch, UTC, everywhere in this package.
"""

from service.storage.bulk import WriteCounts, upsert_observations
from service.storage.observations import delete_observations, lock_series, read_matrix, read_page
from service.storage.series import (
    ChannelStats,
    SeriesRecord,
    channel_stats,
    create_series,
    delete_series,
    get_many,
    get_series,
    keys_with_prefix,
    list_series,
    missing,
    series_time_range,
    update_series,
)

__all__ = [
    "ChannelStats",
    "SeriesRecord",
    "WriteCounts",
    "channel_stats",
    "create_series",
    "delete_series",
    "delete_observations",
    "get_many",
    "get_series",
    "keys_with_prefix",
    "list_series",
    "lock_series",
    "missing",
    "read_matrix",
    "read_page",
    "series_time_range",
    "update_series",
    "upsert_observations",
]
