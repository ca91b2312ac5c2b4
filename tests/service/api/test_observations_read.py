"""Reading and deleting observations, exact times, and pagination under concurrent inserts, on both backends."""

import csv
import io
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

URL = "/v1/series/room-1/observations"


@pytest.fixture
def room(client: TestClient) -> TestClient:
    assert client.post("/v1/series", json={"key": "room-1", "channels": ["temp", "hum"]}).status_code == 201
    return client


def _put(client: TestClient, seconds: list[int], channel: str = "temp") -> None:
    r = client.post(URL, json={"t": seconds, "values": {channel: [float(s) for s in seconds]}})
    assert r.status_code == 200, r.text


# Given time → the stored time, to the microsecond.
EXACT = [
    ("1969-07-20T20:17:40.000001Z", "1969-07-20T20:17:40.000001Z"),
    ("1000-01-01T00:00:00.999999+00:00", "1000-01-01T00:00:00.999999Z"),
    ("2026-03-01T12:00:00.5-07:00", "2026-03-01T19:00:00.500000Z"),
    ("2026-03-01T05:30:00.000002+05:30", "2026-03-01T00:00:00.000002Z"),
    ("9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999999Z"),
]
# Numbers written with six decimals far from 1970: a float64 cannot hold these to the microsecond.
EXACT_NUMERIC = [
    ("253402300798.999999", "9999-12-31T23:59:58.999999Z"),
    ("-30610223999.999999", "1000-01-01T00:00:00.000001Z"),
    ("32503680000.000001", "3000-01-01T00:00:00.000001Z"),
    ("-1.000001", "1969-12-31T23:59:58.999999Z"),
]


@pytest.mark.parametrize("form", ["rows", "columns", "csv"])
def test_times_round_trip_exactly(room: TestClient, form: str) -> None:
    texts = [f'"{given}"' for given, _ in EXACT] + [n for n, _ in EXACT_NUMERIC]
    wanted = [want for _, want in EXACT] + [w for _, w in EXACT_NUMERIC]
    values = list(range(len(texts)))
    if form == "rows":
        rows = ",".join(f'{{"t": {t}, "values": {{"temp": {v}}}}}' for t, v in zip(texts, values, strict=True))
        body = f'{{"observations": [{rows}]}}'
        r = room.post(URL, content=body, headers={"content-type": "application/json"})
    elif form == "columns":
        body = f'{{"t": [{",".join(texts)}], "values": {{"temp": {values}}}}}'
        r = room.post(URL, content=body, headers={"content-type": "application/json"})
    else:
        body = "t,temp\n" + "".join(f"{t.strip(chr(34))},{v}\n" for t, v in zip(texts, values, strict=True))
        r = room.post(URL, content=body, headers={"content-type": "text/csv"})
    assert r.status_code == 200, r.text
    got = room.get(URL).json()
    assert dict(zip(got["t"], got["values"]["temp"], strict=True)) == {w: float(v) for w, v in
                                                                       zip(wanted, values, strict=True)}
    # What comes out goes back in as the same instant: re-sending it changes nothing.
    again = room.post(URL, json={"t": got["t"], "values": {"temp": got["values"]["temp"]}}).json()
    assert again["unchanged"] == len(values)


def test_before_year_1000_is_refused_even_as_a_number(room: TestClient) -> None:
    r = room.post(URL, content=b'{"t": [-30610224000.000001], "values": {"temp": [1]}}',
                  headers={"content-type": "application/json"})
    assert r.status_code == 422 and "years 1000 to 9999" in r.json()["error"]["details"][0]["msg"]


def test_range_channels_and_limit(room: TestClient) -> None:
    _put(room, [0, 10, 20, 30])
    _put(room, [5, 20], "hum")
    got = room.get(URL, params={"start": "1970-01-01T00:00:10Z", "end": "30"}).json()
    assert got["t"] == ["1970-01-01T00:00:10.000000Z", "1970-01-01T00:00:20.000000Z"]
    assert got["values"] == {"temp": [10.0, 20.0], "hum": [None, 20.0]}
    got = room.get(URL, params={"channels": "hum"}).json()
    assert got["values"] == {"hum": [5.0, 20.0]} and len(got["t"]) == 2
    for params, loc in [({"channels": "co2"}, ["query", "channels"]), ({"limit": 0}, ["query", "limit"]),
                        ({"limit": 100_001}, ["query", "limit"]), ({"start": "yesterday"}, ["query", "start"]),
                        ({"cursor": "bm9wZQ"}, ["query", "cursor"])]:
        r = room.get(URL, params=params)
        assert r.status_code == 422 and r.json()["error"]["details"][0]["loc"] == loc, params


def test_query_start_and_end_round_to_the_microsecond(room: TestClient) -> None:
    _put(room, [0, 10, 20, 30])
    ten, twenty = "1970-01-01T00:00:10.000000Z", "1970-01-01T00:00:20.000000Z"
    # start ≤ t < end, each rounded first; ties go to the even µs (9.9999995 and 10.0000005 → 10.000000).
    for start, end, want in [
        ("9.9999995", "1970-01-01T00:00:20.0000015Z", [ten, twenty]),
        ("1970-01-01T00:00:09.999999500Z", "20.000000500000000000000000000000001", [ten, twenty]),
        ("10.0000005", "1970-01-01T00:00:20.0000005Z", [ten]),
        ("10.0000015", "1970-01-01T00:00:20.0000004999Z", []),
    ]:
        r = room.get(URL, params={"start": start, "end": end})
        assert r.status_code == 200, r.text
        assert r.json()["t"] == want, (start, end)
    r = room.get(URL, params={"start": "1970-01-01T00:00:09.9999995 01:00"})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["loc"] == ["query", "start"]
    assert "%2B" in r.json()["error"]["message"]
    r = room.delete(URL, params={"start": "9.9999995", "end": "10.0000015"})
    assert r.status_code == 200 and r.json() == {"deleted": 1}


def test_plus_offset_sent_unencoded_gets_a_hint(room: TestClient) -> None:
    r = room.get(URL + "?start=2026-03-01T12:00:00+01:00")
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["loc"] == ["query", "start"]
    assert "%2B" in r.json()["error"]["message"]
    assert room.get(URL + "?start=2026-03-01T12:00:00%2B01:00").status_code == 200


def test_csv_out(room: TestClient) -> None:
    _put(room, [0, 1])
    _put(room, [1], "hum")
    r = room.get(URL, headers={"Accept": "text/csv"}, params={"limit": 1})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert list(csv.reader(io.StringIO(r.text))) == [["t", "temp", "hum"], ["1970-01-01T00:00:00.000000Z", "0.0", ""]]
    r2 = room.get(URL, headers={"Accept": "text/csv"}, params={"cursor": r.headers["X-Next-Cursor"]})
    assert r2.text.splitlines()[1:] == ["1970-01-01T00:00:01.000000Z,1.0,1.0"] and "X-Next-Cursor" not in r2.headers


def test_pagination_under_concurrent_inserts(room: TestClient) -> None:
    existing = list(range(0, 100, 2))
    _put(room, existing)
    seen: list[str] = []
    cursor = None
    inserted_between = 0
    while True:
        params = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        page = room.get(URL, params=params).json()
        seen += page["t"]
        # Between page reads, rows land before, inside and after the page just read, on both channels.
        inserted_between += 1
        _put(room, [inserted_between * 2 - 1, 1000 + inserted_between], "hum")
        _put(room, [inserted_between * 4 + 1], "temp")
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)), "a row came twice"
    first_stamps = {f"1970-01-01T00:{s // 60:02d}:{s % 60:02d}.000000Z" for s in existing}
    assert first_stamps <= set(seen), "a row that existed before was skipped"
    assert seen == sorted(seen)


def test_delete_range(room: TestClient) -> None:
    _put(room, [0, 10, 20, 30])
    _put(room, [10, 20], "hum")
    r = room.delete(URL, params={"start": "10", "end": "1970-01-01T00:00:30Z", "channels": "temp"})
    assert r.status_code == 200 and r.json() == {"deleted": 2}
    assert room.get(URL).json()["values"] == {"temp": [0.0, None, None, 30.0], "hum": [None, 10.0, 20.0, None]}
    assert room.delete(URL).json() == {"deleted": 4}
    assert room.delete("/v1/series/nope/observations").status_code == 404


def test_decimal_text_survives_in_values(room: TestClient) -> None:
    # Values go through float64 (they are measurements), and come back as the shortest text of that float.
    r = room.post(URL, content=b'{"t": [0], "values": {"temp": [0.1]}}', headers={"content-type": "application/json"})
    assert r.status_code == 200
    assert Decimal(room.get(URL).text.split('"temp":[')[1].split("]")[0]) == Decimal("0.1")
