"""The benchmark's data sets, each a list of `Series` on its native grid with real times in seconds.

`LOADERS` maps a data set's name to its loader: the data sets the targets are judged on. `HELD_OUT` maps eight more,
on which no default of the model was chosen: run with `realdata_bench.py --held-out`, they show whether a change
that helps the targets' series helps series it was not made on (they are not targets). Every loader reads data
shipped inside statsmodels, pmdarima or sktime (the `bench` extra), so nothing is downloaded; each imports its
library when called. Dated grids use the dates (month and quarter starts, business days, 1 January for annual
data) as Unix seconds, UTC; undated ones an index times their step (half-hourly taylor from its first half hour,
5 June 2000; heart rate every 0.5 s).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from benchmarks.realdata.protocol import Series

__all__ = ["HELD_OUT", "LOADERS", "PANEL", "PANEL_SIZE"]

PANEL = "fertility"  # the "many series, one model" data set
PANEL_SIZE = 50  # its countries with the most complete data


def _seconds(start: str, count: int, unit: str, every: int = 1) -> np.ndarray:
    """(count,) Unix seconds of `count` grid points from `start` ("1950-01"), `every` `unit`s ("M", "Y") apart."""
    first = np.datetime64(start, unit)
    return (first + every * np.arange(count)).astype("datetime64[s]").astype(np.float64)


def _one(dataset: str, times: np.ndarray, values: np.ndarray, channels: tuple[str, ...],
         season: int | None) -> list[Series]:
    values = np.asarray(values, dtype=np.float64).reshape(len(times), len(channels))
    return [Series(dataset, dataset, np.asarray(times, dtype=np.float64), values, channels, season)]


def elnino() -> list[Series]:
    """Monthly sea surface temperature (°C), 1950-2010: the 12 month columns read year by year."""
    import statsmodels.api as sm

    frame = sm.datasets.elnino.load_pandas().data
    values = frame.drop(columns="YEAR").to_numpy().reshape(-1)
    return _one("elnino", _seconds(f"{int(frame['YEAR'].iloc[0])}-01", values.size, "M"), values,
                ("temperature",), 12)


def nile() -> list[Series]:
    """Annual flow of the Nile at Aswan (10⁸ m³), 1871-1970."""
    import statsmodels.api as sm

    frame = sm.datasets.nile.load_pandas().data
    return _one("nile", _seconds(str(int(frame["year"].iloc[0])), len(frame), "Y"), frame["volume"], ("volume",),
                None)


def fertility() -> list[Series]:
    """Births per woman by country, annual from 1960: the PANEL_SIZE countries with the most years of data
    (ties in the file's order), one series each, named by country code."""
    import statsmodels.api as sm

    frame = sm.datasets.fertility.load_pandas().data
    years = [c for c in frame.columns if c.isdigit()]
    counts = frame[years].notna().sum(axis=1).to_numpy()
    chosen = np.argsort(-counts, kind="stable")[:PANEL_SIZE]
    times = _seconds(years[0], len(years), "Y")
    return [Series(PANEL, str(frame["Country Code"].iloc[i]), times, frame[years].iloc[i].to_numpy(float)[:, None],
                   ("fertility",), None) for i in chosen]


def taylor() -> list[Series]:
    """Half-hourly electricity demand in England and Wales (MW), 12 weeks from Monday 5 June 2000."""
    from pmdarima.datasets import load_taylor

    values = load_taylor()
    times = np.datetime64("2000-06-05T00:00", "s").astype(np.float64) + 1800.0 * np.arange(values.size)
    return _one("taylor", times, values, ("demand",), 48)


def woolyrnq() -> list[Series]:
    """Quarterly woollen yarn production in Australia (tonnes), from Q1 1965."""
    from pmdarima.datasets import load_woolyrnq

    data = load_woolyrnq(as_series=True)
    year, quarter = int(data.index[0].split()[1]), int(data.index[0][1])
    start = f"{year}-{3 * (quarter - 1) + 1:02d}"
    return _one("woolyrnq", _seconds(start, len(data), "M", every=3), data.to_numpy(), ("production",), 4)


def heartrate() -> list[Series]:
    """Heart rate (beats per minute) every 0.5 s, 150 points."""
    from pmdarima.datasets import load_heartrate

    values = load_heartrate()
    return _one("heartrate", 0.5 * np.arange(values.size), values, ("rate",), None)


def msft() -> list[Series]:
    """Microsoft's daily close price (USD) on trading days from 13 March 1986: a random walk."""
    from pmdarima.datasets import load_msft

    frame = load_msft()
    times = np.array(frame["Date"].to_numpy(), dtype="datetime64[s]").astype(np.float64)
    return _one("msft", times, frame["Close"], ("close",), None)


def uschange() -> list[Series]:
    """Quarterly % changes of US consumption, income, production, savings and unemployment, from Q1 1970."""
    from sktime.datasets import load_uschange

    consumption, others = load_uschange()
    frame = others.assign(Consumption=consumption)[["Consumption", *others.columns]]
    return _one("uschange", _seconds("1970-01", len(frame), "M", every=3), frame.to_numpy(),
                tuple(str(c) for c in frame.columns), 4)


def pbs() -> list[Series]:
    """Monthly scripts of immune sera and immunoglobulins in Australia's PBS, from July 1991 (intermittent)."""
    from sktime.datasets import load_PBS_dataset

    data = load_PBS_dataset()
    return _one("pbs", _seconds(str(data.index[0]), len(data), "M"), data.to_numpy(), ("scripts",), 12)


LOADERS: dict[str, Callable[[], list[Series]]] = {
    "elnino": elnino, "nile": nile, "fertility": fertility, "taylor": taylor, "woolyrnq": woolyrnq,
    "heartrate": heartrate, "msft": msft, "uschange": uschange, "pbs": pbs,
}


# --- held out: no default was chosen on these ---

def airpassengers() -> list[Series]:
    """Monthly international airline passengers (thousands), 1949-1960: a trend and a season that grows with it."""
    from pmdarima.datasets import load_airpassengers

    values = load_airpassengers()
    return _one("airpassengers", _seconds("1949-01", values.size, "M"), values, ("passengers",), 12)


def wineind() -> list[Series]:
    """Monthly Australian wine sales by winemakers (bottles of 1 litre or less), from January 1980."""
    from pmdarima.datasets import load_wineind

    values = load_wineind()
    return _one("wineind", _seconds("1980-01", values.size, "M"), values, ("bottles",), 12)


def ausbeer() -> list[Series]:
    """Quarterly Australian beer production (megalitres), from Q1 1956 (the file's trailing empty quarter left
    out)."""
    from pmdarima.datasets import load_ausbeer

    values = load_ausbeer()
    values = values[: int(np.flatnonzero(~np.isnan(values))[-1]) + 1]
    return _one("ausbeer", _seconds("1956-01", values.size, "M", every=3), values, ("production",), 4)


def austres() -> list[Series]:
    """Quarterly Australian residents (thousands), from Q2 1971: a smooth rise."""
    from pmdarima.datasets import load_austres

    values = load_austres()
    return _one("austres", _seconds("1971-04", values.size, "M", every=3), values, ("residents",), 4)


def lynx() -> list[Series]:
    """Annual Canadian lynx trappings, 1821-1934: a cycle of about ten years that is not a calendar season."""
    from pmdarima.datasets import load_lynx

    values = load_lynx()
    return _one("lynx", _seconds("1821", values.size, "Y"), values, ("trappings",), None)


def sunspots() -> list[Series]:
    """Annual sunspot activity, 1700-2008: a cycle of about eleven years, its amplitude changing."""
    import statsmodels.api as sm

    frame = sm.datasets.sunspots.load_pandas().data
    return _one("sunspots", _seconds(str(int(frame["YEAR"].iloc[0])), len(frame), "Y"), frame["SUNACTIVITY"],
                ("activity",), None)


def co2() -> list[Series]:
    """Atmospheric CO2 at Mauna Loa (ppm), monthly means of the weekly readings from March 1958 (a month without
    one left empty): a rising trend and a yearly season."""
    import statsmodels.api as sm

    monthly = sm.datasets.co2.load_pandas().data["co2"].resample("MS").mean()
    return _one("co2", _seconds("1958-03", len(monthly), "M"), monthly.to_numpy(), ("ppm",), 12)


def realgdp() -> list[Series]:
    """Quarterly US real GDP (billions of chained 2005 dollars), from Q1 1959: a trend with recessions."""
    import statsmodels.api as sm

    frame = sm.datasets.macrodata.load_pandas().data
    return _one("realgdp", _seconds("1959-01", len(frame), "M", every=3), frame["realgdp"], ("gdp",), 4)


HELD_OUT: dict[str, Callable[[], list[Series]]] = {
    "airpassengers": airpassengers, "wineind": wineind, "ausbeer": ausbeer, "austres": austres, "lynx": lynx,
    "sunspots": sunspots, "co2": co2, "realgdp": realgdp,
}
