"""POST observations in each form, on both backends: counts, idempotence, replacement, and all-or-nothing 422s."""

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings

URL = "/v1/series/room-1/observations"
CSV = {"content-type": "text/csv"}
JSON = {"content-type": "application/json"}


@pytest.fixture
def room(client: TestClient) -> TestClient:
    r = client.post("/v1/series", json={"key": "room-1", "channels": ["temp", "hum"]})
    assert r.status_code == 201
    return client


def _all(client: TestClient) -> dict:
    r = client.get(URL)
    assert r.status_code == 200
    return r.json()


ROWS = {"observations": [{"t": "2026-03-01T12:00:00.25Z", "values": {"temp": 21.5, "hum": 0.41}},
                         {"t": 1772366460.5, "values": {"temp": 21.7}}]}
COLUMNS = {"t": ["2026-03-01T12:00:00.25Z", 1772366460.5], "values": {"temp": [21.5, 21.7], "hum": [0.41, None]}}
CSV_BODY = b"t,temp,hum\n2026-03-01T12:00:00.25Z,21.5,0.41\n1772366460.5,21.7,\n"
STORED = {"t": ["2026-03-01T12:00:00.250000Z", "2026-03-01T12:01:00.500000Z"],
          "values": {"temp": [21.5, 21.7], "hum": [0.41, None]}, "next_cursor": None}


@pytest.mark.parametrize("form", ["rows", "columns", "csv"])
def test_each_form_writes_then_resend_is_unchanged(room: TestClient, form: str) -> None:
    def send():
        if form == "csv":
            return room.post(URL, content=CSV_BODY, headers=CSV)
        return room.post(URL, json=ROWS if form == "rows" else COLUMNS)

    r = send()
    assert r.status_code == 200, r.text
    assert r.json() == {"received": 3, "inserted": 3, "updated": 0, "unchanged": 0}
    assert _all(room) == STORED
    r = send()
    assert r.json() == {"received": 3, "inserted": 0, "updated": 0, "unchanged": 3}
    assert _all(room) == STORED


def test_new_value_replaces_and_counts_updated(room: TestClient) -> None:
    room.post(URL, json=COLUMNS)
    r = room.post(URL, json={"t": ["2026-03-01T12:00:00.25Z", "2026-03-01T13:00:00Z"],
                             "values": {"temp": [22.0, 23.0], "hum": [0.41, None]}})
    assert r.json() == {"received": 3, "inserted": 1, "updated": 1, "unchanged": 1}
    got = _all(room)
    assert got["values"]["temp"] == [22.0, 21.7, 23.0]


def test_identical_duplicate_in_a_batch_counts_once(room: TestClient) -> None:
    body = {"observations": [{"t": 0, "values": {"temp": 1.0}}, {"t": "1970-01-01T00:00:00Z", "values": {"temp": 1}}]}
    assert room.post(URL, json=body).json() == {"received": 1, "inserted": 1, "updated": 0, "unchanged": 0}


BAD_JSON = [
    # (body text, loc of the first detail)
    ('{"t": [0, 1], "values": {"temp": [1, NaN]}}', ["body", "values", "temp", 1]),
    ('{"t": [0], "values": {"temp": [Infinity]}}', ["body", "values", "temp", 0]),
    ('{"observations": [{"t": 0, "values": {"temp": -Infinity}}]}', ["body", "observations", 0, "values", "temp"]),
    ('{"t": [0], "values": {"temp": [1e400]}}', ["body", "values", "temp", 0]),
    ('{"t": [0], "values": {"temp": [1e308]}}', ["body", "values", "temp", 0]),
    ('{"t": [0, 1], "values": {"temp": [1, -1.0000001e100]}}', ["body", "values", "temp", 1]),
    ('{"t": [0, 1], "values": {"temp": [null, 1e101]}}', ["body", "values", "temp", 1]),
    ('{"t": [0], "values": {"temp": [100000000000000000000000000000000000000000000000000000000000000000000000000000000'
     '00000000000000000000000]}}', ["body", "values", "temp", 0]),
    ('{"observations": [{"t": 0, "values": {"temp": 1e101}}]}', ["body", "observations", 0, "values", "temp"]),
    ('{"t": [0], "values": {"temp": ["21.5"]}}', ["body", "values", "temp", 0]),
    ('{"t": [0], "values": {"temp": [true]}}', ["body", "values", "temp", 0]),
    ('{"t": [0], "values": {"co2": [1]}}', ["body", "values", "co2"]),
    ('{"t": [0, 1], "values": {"temp": [1]}}', ["body", "values", "temp"]),
    ('{"t": ["2026-03-01T12:00:00"], "values": {"temp": [1]}}', ["body", "t", 0]),
    ('{"t": ["2026-03-01"], "values": {"temp": [1]}}', ["body", "t", 0]),
    ('{"t": ["9999-12-31T23:59:59.9999995Z"], "values": {"temp": [1]}}', ["body", "t", 0]),  # rounds past 9999
    ('{"t": ["1772366460"], "values": {"temp": [1]}}', ["body", "t", 0]),
    ('{"t": [true], "values": {"temp": [1]}}', ["body", "t", 0]),
    ('{"t": [1e13], "values": {"temp": [1]}}', ["body", "t", 0]),
    ('{"t": ["0999-01-01T00:00:00Z"], "values": {"temp": [1]}}', ["body", "t", 0]),
    ('{"t": [253402300799.9999995], "values": {"temp": [1]}}', ["body", "t", 0]),
    ('{"t": [1%s], "values": {"temp": [1]}}' % ("0" * 4300), ["body"]),  # past int()'s digit limit
    ('{"t": [1e99999999999999999999], "values": {"temp": [1]}}', ["body"]),  # past Decimal's exponent limit
    ('{"t": [0], "values": {"temp": [1%s]}}' % ("0" * 4300), ["body"]),
    ('{"observations": [{"t": 5, "values": {"temp": 1}}, {"t": 5, "values": {"temp": 2}}]}',
     ["body", "observations", 1, "values", "temp"]),
    ('{"observations": [{"t": 5, "values": {"temp": null, "hum": null}}]}', ["body", "observations", 0, "values"]),
    ('{"observations": [{"values": {"temp": 1}}]}', ["body", "observations", 0, "t"]),
    ('{"observations": [{"t": 5, "values": {"temp": 1}, "x": 1}]}', ["body", "observations", 0, "x"]),
    ('{"observations": [{"t": 5, "values": {"temp": 1, "temp": 2}}]}', ["body"]),
    ('{"t": [0], "values": {"temp": [1]', ["body"]),
    ('[1, 2]', ["body"]),
    ('{"rows": []}', ["body", "rows"]),
]


@pytest.mark.parametrize(("text", "loc"), BAD_JSON)
def test_bad_json_is_422_and_writes_nothing(room: TestClient, text: str, loc: list) -> None:
    room.post(URL, json=COLUMNS)
    before = _all(room)
    # Valid values ride along in the same body (at t = 0 or 5): they must not be written either.
    r = room.post(URL, content=text.encode(), headers=JSON)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "validation_error" and err["details"][0]["loc"] == loc, err
    assert err["details"][0]["msg"]
    assert _all(room) == before


# Times with digits below the microsecond, as numpy, time.time(), pandas and Go write them, and what is stored.
ROUNDED = [
    ("1767225600.1234567", "2026-01-01T00:00:00.123457Z"),
    ("1767225601.0000005", "2026-01-01T00:00:01.000000Z"),  # a tie: to the even microsecond
    ("1767225602.0000015", "2026-01-01T00:00:02.000002Z"),
    ("1.767225603000000500000000000000000001e9", "2026-01-01T00:00:03.000001Z"),  # just past the tie
    ('"2026-01-01T00:00:04.1234567Z"', "2026-01-01T00:00:04.123457Z"),
    ('"2026-01-01T00:00:05.12345678+00:00"', "2026-01-01T00:00:05.123457Z"),
    ('"2026-01-01T01:00:06.123456789+01:00"', "2026-01-01T00:00:06.123457Z"),
    ('"2026-01-01T00:00:07.000000500Z"', "2026-01-01T00:00:07.000000Z"),
    ('"2026-01-01T00:00:07.999999500001Z"', "2026-01-01T00:00:08.000000Z"),  # 12 digits, carried to the second
]


def _body(form: str, times: list[str], values: list[float]) -> tuple[bytes, dict]:
    """A body with the times written as given (JSON text: numbers bare, strings quoted)."""
    if form == "csv":
        lines = "".join(f"{t.strip(chr(34))},{v}\n" for t, v in zip(times, values, strict=True))
        return f"t,temp\n{lines}".encode(), CSV
    if form == "rows":
        rows = ",".join(f'{{"t": {t}, "values": {{"temp": {v}}}}}' for t, v in zip(times, values, strict=True))
        return f'{{"observations": [{rows}]}}'.encode(), JSON
    return f'{{"t": [{",".join(times)}], "values": {{"temp": {values}}}}}'.encode(), JSON


@pytest.mark.parametrize("form", ["rows", "columns", "csv"])
def test_sub_microsecond_times_are_rounded_half_to_even(room: TestClient, form: str) -> None:
    values = [float(i) for i in range(len(ROUNDED))]
    body, headers = _body(form, [given for given, _ in ROUNDED], values)
    r = room.post(URL, content=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"received": len(ROUNDED), "inserted": len(ROUNDED), "updated": 0, "unchanged": 0}
    assert room.get(URL).json()["t"] == [stored for _, stored in ROUNDED]
    # The same times again are the same instants.
    r = room.post(URL, content=body, headers=headers)
    assert r.json()["unchanged"] == len(ROUNDED)


@pytest.mark.parametrize("form", ["rows", "columns", "csv"])
def test_a_number_with_very_many_digits_is_read_quickly(room: TestClient, form: str) -> None:
    # 100,000 digits: the CSV reader's own field limit is 131,072 characters (a longer cell is a 422 there).
    body, headers = _body(form, ["1767225600." + "1" * 100_000, '"2026-01-01T00:00:01.%sZ"' % ("9" * 100_000)],
                          [1.0, 2.0])
    start = time.perf_counter()
    r = room.post(URL, content=body, headers=headers)
    assert r.status_code == 200, r.text
    assert time.perf_counter() - start < 10  # linear in the digits: well under a second
    assert room.get(URL).json()["t"] == ["2026-01-01T00:00:00.111111Z", "2026-01-01T00:00:02.000000Z"]


@pytest.mark.parametrize(("form", "loc"), [
    ("rows", ["body", "observations", 1, "values", "temp"]),
    ("columns", ["body", "values", "temp", 1]),
    ("csv", ["body", "line", 3, "temp"]),
])
def test_times_that_round_together_with_different_values_are_422(room: TestClient, form: str, loc: list) -> None:
    # 1767225600.0000005 is a tie, to the even 0 µs; 1767225599.9999996 is nearer 0 µs too.
    body, headers = _body(form, ["1767225600.0000005", "1767225599.9999996"], [1.0, 2.0])
    r = room.post(URL, content=body, headers=headers)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "validation_error" and err["details"][0]["loc"] == loc
    msg = err["details"][0]["msg"]
    assert "'temp' at 2026-01-01T00:00:00.000000Z is given twice with different values: 2.0 here, 1.0 at " in msg
    quote = "'" if form == "csv" else ""
    assert (f"times {quote}1767225599.9999996{quote} and {quote}1767225600.0000005{quote} both round to that "
            "microsecond") in msg
    assert room.get(URL).json()["t"] == []
    # The same value twice is one observation, as it is for the same time written twice.
    body, headers = _body(form, ["1767225600.0000005", '"2026-01-01T00:00:00.0000004Z"'], [1.0, 1.0])
    r = room.post(URL, content=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"received": 1, "inserted": 1, "updated": 0, "unchanged": 0}


def test_conflicting_duplicate_names_both_places(room: TestClient) -> None:
    r = room.post(URL, json={"t": [5, "1970-01-01T00:00:05Z"], "values": {"temp": [1, 2]}})
    detail = r.json()["error"]["details"][0]
    assert detail["loc"] == ["body", "values", "temp", 1]
    assert "body.values.temp.0" in detail["msg"] and "1970-01-01T00:00:05.000000Z" in detail["msg"]
    assert "round" not in detail["msg"]  # the same instant written two ways, not a rounding


BAD_CSV = [
    (b"t,temp\n0,nan\n", ["body", "line", 2, "temp"]),
    (b"t,temp\n0,inf\n", ["body", "line", 2, "temp"]),
    (b"t,temp\n0,1e400\n", ["body", "line", 2, "temp"]),
    (b"t,temp\n0,-1e101\n", ["body", "line", 2, "temp"]),
    (b"t,temp\n0,abc\n", ["body", "line", 2, "temp"]),
    (b"t,temp\n0,1\n2026-03-01T12:00:00,1\n", ["body", "line", 3, "t"]),
    (b"t,temp,co2\n0,1,2\n", ["body", "line", 1, "co2"]),
    (b"time,temp\n0,1\n", ["body", "line", 1, "t"]),
    (b"t,temp\n0,1,2\n", ["body", "line", 2]),
    (b"t,temp,hum\n0,,\n", ["body", "line", 2]),
    (b"t,temp\n5,1\n5,2\n", ["body", "line", 3, "temp"]),
    (b"t,temp\n5.0000015,1\n5.0000025,2\n", ["body", "line", 3, "temp"]),  # both round to 5.000002
    (b"t,temp\n253402300799.9999995,1\n", ["body", "line", 2, "t"]),
    (b"t,temp\n1e99999999999999999999,1\n", ["body", "line", 2, "t"]),
    (b"t,temp\n\xff,1\n", ["body"]),
]


@pytest.mark.parametrize(("body", "loc"), BAD_CSV)
def test_bad_csv_is_422_and_writes_nothing(room: TestClient, body: bytes, loc: list) -> None:
    room.post(URL, json=COLUMNS)
    before = _all(room)
    r = room.post(URL, content=body, headers=CSV)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"][0]["loc"] == loc
    assert _all(room) == before


def test_every_bad_field_is_listed(room: TestClient) -> None:
    r = room.post(URL, json={"t": ["x", 0, "y"], "values": {"temp": [1, "2", 3]}})
    locs = [d["loc"] for d in r.json()["error"]["details"]]
    assert locs == [["body", "t", 0], ["body", "t", 2], ["body", "values", "temp", 1]]


def test_unsupported_media_type_415(room: TestClient) -> None:
    r = room.post(URL, content=b"t=1", headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"


def test_unknown_series_404(room: TestClient) -> None:
    r = room.post("/v1/series/nope/observations", json=COLUMNS)
    assert r.status_code == 404 and "nope" in r.json()["error"]["message"]


@pytest.fixture
def small_client(settings: Settings, admin_key: str) -> Iterator[TestClient]:
    small = settings.model_copy(update={"max_body_bytes": 2048, "max_values_per_request": 10})
    with TestClient(create_app(small), headers={"Authorization": f"Bearer {admin_key}"}) as c:
        assert c.post("/v1/series", json={"key": "room-1", "channels": ["temp", "hum"]}).status_code == 201
        yield c


def test_body_over_limit_413(small_client: TestClient) -> None:
    body = b"t,temp\n" + b"".join(b"%d,1.0\n" % i for i in range(400))
    r = small_client.post(URL, content=body, headers=CSV)
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the cap must hold while the body streams
        yield body[:1000]
        yield body[1000:]

    r = small_client.post(URL, content=chunks(), headers=CSV)
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    r = small_client.post("/v1/series", content=chunks(), headers=JSON)
    assert r.status_code == 413
    assert small_client.get(URL).json()["t"] == []


def test_too_many_values_422(small_client: TestClient) -> None:
    r = small_client.post(URL, json={"t": list(range(6)), "values": {"temp": [1] * 6, "hum": [2] * 6}})
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["loc"] == ["body"] and "limit is 10" in r.json()["error"]["message"]
    assert small_client.get(URL).json()["t"] == []


@pytest.mark.parametrize("body", [{"observations": []}, {"t": [], "values": {"temp": []}}, {"t": [], "values": {}}])
def test_empty_batch_writes_nothing(room: TestClient, body: dict) -> None:
    r = room.post(URL, json=body)
    assert r.status_code == 200, r.text
    assert r.json() == {"received": 0, "inserted": 0, "updated": 0, "unchanged": 0}


@pytest.mark.parametrize(("body", "headers", "loc", "shown"), [
    (b'{"t": [0], "values": {"temp": [1e308]}}', JSON, ["body", "values", "temp", 0], "1E+308"),
    (b'{"observations": [{"t": 0, "values": {"temp": -2e100}}]}', JSON, ["body", "observations", 0, "values", "temp"],
     "-2E+100"),
    (b"t,temp\n0,1e101\n", CSV, ["body", "line", 2, "temp"], "'1e101'"),
])
def test_values_beyond_1e100_are_refused_saying_the_limit(room: TestClient, body: bytes, headers: dict, loc: list,
                                                          shown: str) -> None:
    r = room.post(URL, content=body, headers=headers)
    assert r.status_code == 422, r.text
    [detail] = r.json()["error"]["details"]
    assert detail == {"loc": loc, "msg": f"{shown} is out of range: values must be finite, from -1e100 to 1e100"}


def test_extreme_values_within_the_limit_are_stored_exactly(room: TestClient) -> None:
    values = [1e100, -1e100, 1e-320, -0.0, 5e-324, 9.999999999999999e99]
    r = room.post(URL, json={"t": list(range(len(values))), "values": {"temp": values}})
    assert r.status_code == 200, r.text
    got = room.get(URL, params={"channels": "temp"}).json()["values"]["temp"]
    assert got == values
    csv_text = room.get(URL, params={"channels": "temp"}, headers={"Accept": "text/csv"}).text
    # Compared as floats: SQLite drops the sign of -0.0, and -0.0 == 0.0
    assert [float(line.split(",")[1]) for line in csv_text.splitlines()[1:]] == values
