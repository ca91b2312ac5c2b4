"""A Python client for the latentcast forecasting API. Light: httpx only (pandas when installed, for frames).

    from latentcast import Client
    with Client() as client:
        client.create_series("room-1", ["temp"])
"""

from latentcast._client import Client
from latentcast._errors import ApiError, LatentcastError, ServerUnreachable
from latentcast._types import ChannelForecast, Forecast, Job, Progress, Series, Training, Version, WriteResult

__all__ = [
    "ApiError",
    "ChannelForecast",
    "Client",
    "Forecast",
    "Job",
    "LatentcastError",
    "Progress",
    "Series",
    "ServerUnreachable",
    "Training",
    "Version",
    "WriteResult",
]
