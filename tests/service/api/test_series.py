"""Series routes on both backends."""

import json

import pytest
from fastapi.testclient import TestClient


def _create(client: TestClient, key: str = "room-1", **extra: object) -> dict:
    r = client.post("/v1/series", json={"key": key, "channels": ["temp", "hum"], **extra})
    assert r.status_code == 201, r.text
    return r.json()


def test_create_get_and_empty_stats(client: TestClient) -> None:
    body = _create(client, description="lab", metadata={"floor": 2})
    assert body["key"] == "room-1" and body["channels"] == ["temp", "hum"]
    assert body["counts"] == {"temp": 0, "hum": 0} and body["first_t"] is None and body["last_t"] is None
    assert body["created_at"].endswith("Z") and len(body["created_at"]) == 27
    assert client.get("/v1/series/room-1").json() == body


def test_counts_and_time_range_follow_observations(client: TestClient) -> None:
    _create(client)
    client.post("/v1/series/room-1/observations",
                json={"t": ["2026-03-01T12:00:00Z", "2026-03-01T13:00:00Z"], "values": {"temp": [1, 2]}})
    body = client.get("/v1/series/room-1").json()
    assert body["counts"] == {"temp": 2, "hum": 0}
    assert (body["first_t"], body["last_t"]) == ("2026-03-01T12:00:00.000000Z", "2026-03-01T13:00:00.000000Z")


def test_duplicate_key_409(client: TestClient) -> None:
    _create(client)
    r = client.post("/v1/series", json={"key": "room-1", "channels": ["x"]})
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "series_exists" and "room-1" in r.json()["error"]["message"]


@pytest.mark.parametrize(("body", "loc"), [
    ({"key": "-bad", "channels": ["a"]}, ["body", "key"]),
    ({"key": "k" * 129, "channels": ["a"]}, ["body", "key"]),
    ({"key": "ok", "channels": []}, ["body", "channels"]),
    ({"key": "ok", "channels": [f"c{i}" for i in range(65)]}, ["body", "channels"]),
    ({"key": "ok", "channels": ["a", "a"]}, ["body", "channels"]),
    ({"key": "ok", "channels": ["a b"]}, ["body", "channels", 0]),
    ({"key": "ok", "channels": ["a"], "description": "d" * 1001}, ["body", "description"]),
    ({"key": "ok", "channels": ["a"], "metadata": {"x": "y" * 17000}}, ["body", "metadata"]),
    ({"key": "ok", "channels": ["a"], "metadata": [1]}, ["body", "metadata"]),
    ({"key": 5, "channels": ["a"]}, ["body", "key"]),
    ({"key": "ok", "channels": ["a"], "color": "red"}, ["body", "color"]),
])
def test_create_rejects_with_loc(client: TestClient, body: dict, loc: list) -> None:
    r = client.post("/v1/series", json=body)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "validation_error"
    assert err["details"][0]["loc"] == loc
    assert client.get("/v1/series").json()["items"] == []


def test_metadata_nan_is_refused(client: TestClient) -> None:
    r = client.post("/v1/series", content=b'{"key": "ok", "channels": ["a"], "metadata": {"x": NaN}}',
                    headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["loc"] == ["body", "metadata"]


def test_list_pages_and_prefix(client: TestClient) -> None:
    for key in ["b-1", "a-2", "a-1", "c"]:
        _create(client, key)
    r = client.get("/v1/series", params={"limit": 2})
    page = r.json()
    assert [s["key"] for s in page["items"]] == ["a-1", "a-2"] and page["next_cursor"]
    page2 = client.get("/v1/series", params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert [s["key"] for s in page2["items"]] == ["b-1", "c"] and page2["next_cursor"] is None
    assert [s["key"] for s in client.get("/v1/series", params={"prefix": "a-"}).json()["items"]] == ["a-1", "a-2"]
    assert client.get("/v1/series", params={"limit": 1001}).status_code == 422
    r = client.get("/v1/series", params={"cursor": "garbage!"})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["loc"] == ["query", "cursor"]


def test_patch_adds_channels_and_replaces_metadata(client: TestClient) -> None:
    _create(client, metadata={"a": 1})
    r = client.patch("/v1/series/room-1", json={"channels": ["temp", "hum", "co2"], "metadata": {"b": 2}})
    assert r.status_code == 200, r.text
    assert r.json()["channels"] == ["temp", "hum", "co2"] and r.json()["metadata"] == {"b": 2}
    r = client.patch("/v1/series/room-1", json={"channels": ["temp"]})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["loc"] == ["body", "channels"]
    assert "hum" in r.json()["error"]["message"]
    assert client.get("/v1/series/room-1").json()["channels"] == ["temp", "hum", "co2"]
    assert client.patch("/v1/series/room-1", json={"description": 3}).status_code == 422


def test_delete_cascades_and_unknown_is_404(client: TestClient) -> None:
    _create(client)
    client.post("/v1/series/room-1/observations", json={"t": [0], "values": {"temp": [1.5]}})
    assert client.delete("/v1/series/room-1").status_code == 204
    for r in (client.get("/v1/series/room-1"), client.delete("/v1/series/room-1"),
              client.patch("/v1/series/room-1", json={}), client.get("/v1/series/room-1/observations")):
        assert r.status_code == 404
        assert r.json()["error"] == {"code": "not_found", "message": "no series with key 'room-1'", "details": []}
    _create(client)  # the key is free again, and the old observations are gone
    assert client.get("/v1/series/room-1").json()["counts"] == {"temp": 0, "hum": 0}


def _nested(depth: int) -> bytes:
    """A metadata object `depth` levels deep: {"x": {"x": … 1 …}}."""
    return b'{"x":' * (depth - 1) + b'{"x":1' + b"}" * depth


@pytest.mark.parametrize("depth", [17, 900])
def test_metadata_nested_too_deep_is_refused_before_storing(client: TestClient, depth: int) -> None:
    body = b'{"key": "deep", "channels": ["a"], "metadata": ' + _nested(depth) + b"}"
    for _ in range(2):  # a retry gets the same answer, not a 409: nothing was stored
        r = client.post("/v1/series", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 422, r.text
        err = r.json()["error"]
        assert err["code"] == "validation_error"
        assert err["details"][0]["loc"] == ["body", "metadata"]
        assert f"nested {depth} levels deep; the limit is 16" in err["details"][0]["msg"]
    assert client.get("/v1/series/deep").status_code == 404
    assert client.get("/v1/series").json() == {"items": [], "next_cursor": None}
    _create(client)
    r = client.patch("/v1/series/room-1", content=b'{"metadata": ' + _nested(depth) + b"}",
                     headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["loc"] == ["body", "metadata"]
    assert client.get("/v1/series/room-1").json()["metadata"] == {}


def test_metadata_at_the_limits_is_stored_and_read_back(client: TestClient) -> None:
    deep = {"x": 1}
    for _ in range(15):
        deep = {"x": deep}  # 16 levels
    lists = {"a": [[[[1]]]]}  # lists count as levels too: 5
    big = {"s": "y" * (16 * 1024 - 8)}  # 16 KiB as compact JSON, exactly
    assert len(json.dumps(big, separators=(",", ":"))) == 16 * 1024
    for key, metadata in (("deep", deep), ("lists", lists), ("big", big)):
        assert _create(client, key, metadata=metadata)["metadata"] == metadata
    assert [s["metadata"] for s in client.get("/v1/series").json()["items"]] == [big, deep, lists]


def test_metadata_over_16_kib_is_refused_with_its_size(client: TestClient) -> None:
    r = client.post("/v1/series", json={"key": "big", "channels": ["a"], "metadata": {"s": "y" * (16 * 1024 - 7)}})
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "validation_error" and err["details"][0]["loc"] == ["body", "metadata"]
    assert "16385 bytes as JSON; the limit is 16384" in err["details"][0]["msg"]
