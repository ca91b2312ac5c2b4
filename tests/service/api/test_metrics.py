"""Prometheus /metrics: no key needed; requests counted by route template and status."""

from fastapi.testclient import TestClient


def _sample(text: str, prefix: str) -> float:
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, (prefix, lines)
    return float(lines[0].rsplit(" ", 1)[1])


def test_metrics_count_by_route_template(client: TestClient, anon_client: TestClient) -> None:
    client.post("/v1/series", json={"key": "m-1", "channels": ["v"]})
    for key in ("m-1", "m-1", "nope"):
        client.get(f"/v1/series/{key}")
    client.get("/v1/not-a-route")
    r = client.get("/metrics", headers={"Authorization": ""})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert _sample(text, 'latentcast_http_requests_total{method="GET",route="/v1/series/{key}",status="200"}') == 2
    assert _sample(text, 'latentcast_http_requests_total{method="GET",route="/v1/series/{key}",status="404"}') == 1
    assert _sample(text, 'latentcast_http_requests_total{method="POST",route="/v1/series",status="201"}') == 1
    assert _sample(text, 'latentcast_http_requests_total{method="GET",route="unmatched",status="404"}') == 1
    assert _sample(text, 'latentcast_http_request_duration_seconds_count{method="GET",route="/v1/series/{key}"}') == 3
    assert "m-1" not in text
    assert anon_client.get("/metrics").status_code == 200
