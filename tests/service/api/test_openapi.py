"""The OpenAPI document declares every status each route can return, all with the one error shape."""

import pytest
from fastapi.testclient import TestClient

ERROR_REF = "#/components/schemas/ErrorBody"

EXPECTED = {
    ("/v1/series", "post"): {"201", "401", "403", "409", "413", "422", "429", "503", "507"},
    ("/v1/series", "get"): {"200", "401", "403", "422", "429", "503"},
    ("/v1/series/{key}", "get"): {"200", "401", "403", "404", "422", "429", "503"},
    ("/v1/series/{key}", "patch"): {"200", "401", "403", "404", "413", "422", "429", "503", "507"},
    ("/v1/series/{key}", "delete"): {"204", "401", "403", "404", "422", "429", "503", "507"},
    ("/v1/series/{key}/observations", "post"): {"200", "401", "403", "404", "413", "415", "422", "429", "503", "507"},
    ("/v1/series/{key}/observations", "get"): {"200", "401", "403", "404", "422", "429", "503"},
    ("/v1/series/{key}/observations", "delete"): {"200", "401", "403", "404", "422", "429", "503", "507"},
}
READS_BY_POST = {"/v1/forecast"}  # a POST that writes nothing


@pytest.fixture(params=["sqlite"])
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:
    from service.storage.db import migrate

    url = f"sqlite:///{tmp_path / 'x.db'}"
    migrate(url)
    return url


def test_statuses_declared(anon_client: TestClient) -> None:
    doc = anon_client.get("/openapi.json").json()
    for (path, method), statuses in EXPECTED.items():
        op = doc["paths"][path][method]
        assert set(op["responses"]) == statuses, (path, method)
        for status, resp in op["responses"].items():
            if int(status) >= 400:
                assert resp["content"]["application/json"]["schema"]["$ref"] == ERROR_REF, (path, method, status)


def test_every_route_on_the_database_declares_503_and_every_write_507(anon_client: TestClient) -> None:
    doc = anon_client.get("/openapi.json").json()
    operations = [(path, method, op) for path, ops in doc["paths"].items() if path.startswith("/v1/")
                  for method, op in ops.items()]
    assert len(operations) >= 20
    for path, method, op in operations:
        assert "503" in op["responses"], (path, method)
        assert "Retry-After" in op["responses"]["503"]["headers"], (path, method)
        writes = method in ("post", "patch", "delete") and path not in READS_BY_POST
        assert ("507" in op["responses"]) == writes, (path, method)
        assert "429" in op["responses"], (path, method)  # every key is rate limited
        assert "Retry-After" in op["responses"]["429"]["headers"], (path, method)
    assert set(doc["paths"]["/readyz"]["get"]["responses"]) == {"200", "503"}


def test_observation_body_forms_documented(anon_client: TestClient) -> None:
    op = anon_client.get("/openapi.json").json()["paths"]["/v1/series/{key}/observations"]
    content = op["post"]["requestBody"]["content"]
    assert set(content) == {"application/json", "text/csv"}
    assert [s["title"] for s in content["application/json"]["schema"]["oneOf"]] == ["ObservationRows",
                                                                                     "ObservationColumns"]
    assert "text/csv" in op["get"]["responses"]["200"]["content"]


def test_framework_errors_use_the_error_shape(client: TestClient) -> None:
    for r in (client.put("/v1/series"), client.get("/v1/nothing-here"), client.get("/v1/series?limit=abc"),
              client.post("/v1/series", content=b"{", headers={"content-type": "application/json"})):
        assert r.status_code >= 400
        body = r.json()
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body


def test_a_405_names_every_method_the_path_answers(client: TestClient) -> None:
    # each path's methods as the OpenAPI document states them: the Allow header must list them all, not only the
    # first route's (routes for one path are registered separately, one per method)
    paths = client.get("/openapi.json").json()["paths"]
    for path, concrete in [("/v1/series", "/v1/series"), ("/v1/series/{key}", "/v1/series/room"),
                           ("/v1/series/{key}/observations", "/v1/series/room/observations"),
                           ("/v1/models/{name}", "/v1/models/m"), ("/v1/keys", "/v1/keys")]:
        declared = {m.upper() for m in paths[path]}
        r = client.request("OPTIONS", concrete)
        assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
        assert set(r.headers["allow"].split(", ")) == declared, (path, r.headers["allow"])
