"""pandas in and out. pandas (and numpy, which it brings) is optional: imported only here, only when a frame is
asked for."""

from typing import Any


def require_pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise ImportError("this needs pandas: pip install 'latentcast[pandas]'") from None
    return pandas


def is_frame(value: Any) -> bool:
    """True for a pandas DataFrame, without importing pandas when the caller has not."""
    return type(value).__module__.startswith("pandas") and type(value).__name__ == "DataFrame"


def frame_columns(frame: Any) -> tuple[list[Any], dict[str, list[float | None]]]:
    """A DataFrame as the API's columns form: (times, {channel: values}).

    Times come from a column named "t" if there is one, else from the index: timezone-aware datetimes (sent as RFC
    3339 with all nine digits, which the server rounds to the microsecond) or numbers (Unix seconds). Every other
    column is a channel; NaN (or None, NaT-free missing values) means "not observed".
    """
    pd = require_pandas()
    import numpy as np

    if "t" in frame.columns:
        times, data = frame["t"], frame.drop(columns=["t"])
    else:
        times, data = frame.index.to_series(), frame
    if pd.api.types.is_datetime64_any_dtype(times):
        if getattr(times.dt, "tz", None) is None:
            raise ValueError("the frame's times have no time zone: localise them first (e.g. "
                             ".tz_localize('UTC')) so each means one instant")
        ns = times.dt.tz_convert("UTC").dt.tz_localize(None).dt.as_unit("ns").to_numpy()
        if np.isnat(ns).any():
            raise ValueError("the frame's times hold NaT: every row needs a time")
        t = [s + "Z" for s in np.datetime_as_string(ns, unit="ns").tolist()]
    elif pd.api.types.is_numeric_dtype(times) and not pd.api.types.is_bool_dtype(times):
        t = times.tolist()
    else:
        raise ValueError(f"the frame's times must be timezone-aware datetimes or Unix seconds, not {times.dtype}; "
                         "put them in the index or in a column named 't'")
    values = {}
    for name in data.columns:
        column = data[name].to_numpy(dtype=float, na_value=np.nan)
        cells = column.astype(object)
        cells[np.isnan(column)] = None
        values[str(name)] = cells.tolist()
    return t, values


def observations_frame(t: list[str], values: dict[str, list[float | None]]) -> Any:
    """The API's columns (RFC 3339 UTC times) as a DataFrame: a UTC DatetimeIndex named "t", a float column per
    channel, NaN where a channel was not observed."""
    pd = require_pandas()
    import numpy as np

    index = pd.DatetimeIndex(pd.to_datetime(t, format="ISO8601", utc=True), name="t")
    return pd.DataFrame({name: np.array(col, dtype=float) for name, col in values.items()}, index=index)


def forecast_frame(forecast: Any) -> Any:
    pd = require_pandas()
    frame = pd.DataFrame.from_records(forecast.records())
    if frame.empty:
        return frame
    frame["t"] = pd.to_datetime(frame["t"], utc=True)
    return frame
