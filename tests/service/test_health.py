from fastapi.testclient import TestClient


def test_healthz_needs_no_key(anon_client: TestClient) -> None:
    r = anon_client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_readyz_reports_database(anon_client: TestClient) -> None:
    r = anon_client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ready"}


def test_unknown_route_has_error_shape(anon_client: TestClient) -> None:
    r = anon_client.get("/v1/nope")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
