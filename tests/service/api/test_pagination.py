"""Page cursors of every list route (series, observations, models, jobs, API keys), on both backends: each list pages
through with its own cursors, and anything else a client sends as a cursor is a 422 naming query.cursor."""

import base64

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from service.storage import keys
from tests.training_data import TINY, add_series

LISTS = ("/v1/series", "/v1/series/room/observations", "/v1/models", "/v1/jobs", "/v1/keys")


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.fixture
def filled(client: TestClient, engine: Engine) -> TestClient:
    """Three series ("room" with 12 observations), two models, three jobs, two API keys."""
    add_series(engine, "room", n=12)
    keys.create_key(engine, "a-reader", ["read"])
    for key in ("a", "b"):
        assert client.post("/v1/series", json={"key": key, "channels": ["x"]}).status_code == 201
    for name in ("m1", "m2", "m2"):
        r = client.post("/v1/models", json={"name": name, "series": ["room"], "config": TINY})
        assert r.status_code == 202, r.text
    return client


def _walk(client: TestClient, path: str) -> list:
    """Every item of a list, one per page."""
    seen, cursor = [], None
    while True:
        r = client.get(path, params={"limit": 1, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        body = r.json()
        seen += body["t"] if "t" in body else [i.get("key") or i.get("name") or i["id"] for i in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return seen


def test_each_list_pages_through_with_its_own_cursors(filled: TestClient) -> None:
    assert _walk(filled, "/v1/series") == ["a", "b", "room"]
    whole = filled.get("/v1/series/room/observations").json()
    assert len(whole["t"]) > 5 and whole["next_cursor"] is None
    assert _walk(filled, "/v1/series/room/observations") == whole["t"]
    assert _walk(filled, "/v1/models") == ["m1", "m2"]
    assert len(set(_walk(filled, "/v1/jobs"))) == 3
    assert _walk(filled, "/v1/keys") == ["a-reader", "test-admin"]


def _refused(r, cursor: str) -> None:
    assert r.status_code == 422, f"{cursor!r}: {r.status_code} {r.text}"
    err = r.json()["error"]
    assert err["code"] == "validation_error"
    [detail] = err["details"]
    assert detail["loc"] == ["query", "cursor"]
    # Each list caps a cursor's length at what its own cursors need: a longer one is refused for that
    assert detail["msg"] == "not a cursor this server gave out" or detail["msg"].startswith("String should have")
    assert err["message"] == f"query.cursor: {detail['msg']}"


BAD_EVERYWHERE = [
    "!!!", "garbage!", "a", "=", "bm9wZQ==", "\U000666e6", "\xff\xff",  # not unpadded base64 of UTF-8
    b64(b"\xff\xfe"), b64(b"k:\x00"), b64(b"t:\x00"), b64(b"\x00"), b64(b"1:\x00"), b64(b"k:a\nb"),
    b64(b"t:99999999999999999999"), b64(b"9" * 40 + b":x"), b64(b"t:1_000"), b64(b"t: 5"),
    b64("t:١٢".encode()), b64(b"k:" + b"a" * 200), b64(b"-1:abc"),
]


@pytest.mark.parametrize("path", LISTS)
def test_a_cursor_the_server_did_not_give_out_is_422(filled: TestClient, path: str) -> None:
    for cursor in BAD_EVERYWHERE:
        _refused(filled.get(path, params={"cursor": cursor}), cursor)


@pytest.mark.parametrize(("path", "cursor"), [
    ("/v1/series/room/observations", "dDo5OTk5OTk5OTk5OTk5OTk5OTk5OQ"),  # t:99999999999999999999
    ("/v1/series/room/observations", b64(b"t:9223372036854775807")),  # in int64, past the year 9999
    ("/v1/series/room/observations", b64(b"t:-9223372036854775809")),
    ("/v1/jobs", b64(b"9" * 40 + b":x")),
    ("/v1/jobs", b64(b"9223372036854775808:x")),
    ("/v1/models", "%F1%A6%9B%A6"),
    ("/v1/models", "%FF%FF"),
    ("/v1/series", "%FF%FF"),
    ("/v1/jobs", "%FF%FF"),
    ("/v1/keys", "%FF%FF"),
    ("/v1/keys", b64(b"a:-x")),
])
def test_out_of_range_and_undecodable_cursors_are_422(filled: TestClient, path: str, cursor: str) -> None:
    _refused(filled.get(f"{path}?cursor={cursor}"), cursor)


def test_another_lists_cursor_is_refused(filled: TestClient) -> None:
    """Cursors name their list: one list's cursor given to another is refused, not misread."""
    cursors = {}
    for path in LISTS:
        cursors[path] = filled.get(path, params={"limit": 1}).json()["next_cursor"]
        assert cursors[path]
    for path in LISTS:
        for other, cursor in cursors.items():
            if other != path:
                _refused(filled.get(path, params={"cursor": cursor}), cursor)


@pytest.mark.parametrize("path", LISTS)
def test_an_empty_cursor_is_the_first_page(filled: TestClient, path: str) -> None:
    assert filled.get(path, params={"cursor": ""}).json() == filled.get(path).json()
