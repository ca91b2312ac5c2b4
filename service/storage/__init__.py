"""Series and observation storage: the one place that queries those tables.

Times are integer µs since the epoch, UTC, everywhere in this package.
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
