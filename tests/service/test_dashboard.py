"""The dashboard's files as the app serves them: no key needed, a strict Content-Security-Policy on each, nothing
inline for that policy to block, and the API's own pages (/docs) and error shape untouched.
The page's behaviour in a real browser: tests/e2e/test_dashboard_browser.py."""

from html.parser import HTMLParser

from fastapi.testclient import TestClient

from service.api.dashboard import CONTENT_SECURITY_POLICY, STATIC_DIR


class _Page(HTMLParser):
    """The tags of an HTML page: every element's attributes and every script's text."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.script_text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.script_text.append(data)


def _page(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def _policy(header: str) -> dict[str, list[str]]:
    return {d.split()[0]: d.split()[1:] for d in header.split(";") if d.strip()}


def test_the_page_needs_no_key_and_carries_a_strict_policy(anon_client: TestClient) -> None:
    r = anon_client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    policy = _policy(r.headers["content-security-policy"])
    assert policy["default-src"] == ["'none'"] and policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"] and policy["connect-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"] and policy["base-uri"] == ["'none'"]
    assert "unsafe" not in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["referrer-policy"] == "no-referrer"


def test_the_page_has_nothing_inline(anon_client: TestClient) -> None:
    """What the policy would block must not be there: inline scripts, style attributes or elements, handlers."""
    page = _page(anon_client.get("/").text)
    scripts = [attrs for tag, attrs in page.elements if tag == "script"]
    assert scripts and all((a.get("src") or "").startswith("/static/") for a in scripts)
    assert "".join(page.script_text).strip() == ""
    assert not [tag for tag, _ in page.elements if tag == "style"]
    for tag, attrs in page.elements:
        assert "style" not in attrs, tag
        assert not [name for name in attrs if name.startswith("on")], (tag, attrs)


def test_every_file_the_page_loads_is_served_with_the_policy(anon_client: TestClient) -> None:
    page = _page(anon_client.get("/").text)
    urls = [a["src"] for tag, a in page.elements if tag == "script"]
    urls += [a["href"] for tag, a in page.elements if tag == "link"]
    assert len(urls) == 6, urls  # three scripts, two style sheets, the icon
    types = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
    for url in urls:
        r = anon_client.get(url)
        assert r.status_code == 200, url
        assert r.headers["content-type"].startswith(types[url[url.rindex("."):]]), (url, r.headers["content-type"])
        assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, url
        assert r.content == (STATIC_DIR / url.removeprefix("/static/")).read_bytes()
    # A second load revalidates and gets 304, with the policy still on it.
    first = anon_client.get("/static/dashboard.js")
    again = anon_client.get("/static/dashboard.js", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


def test_the_charting_library_carries_its_licence() -> None:
    head = (STATIC_DIR / "vendor" / "uPlot.iife.min.js").read_text()[:1500]
    assert "uPlot 1.6.32" in head and "The MIT License" in head and "Leon Sorokin" in head
    assert "The MIT License" in (STATIC_DIR / "vendor" / "uPlot.min.css").read_text()[:1500]


def test_missing_and_outside_files_are_404_in_the_error_shape(anon_client: TestClient) -> None:
    for path in ("/static/nope.js", "/static/../dashboard.py", "/static/%2e%2e/dashboard.py", "/static/"):
        r = anon_client.get(path)
        assert r.status_code == 404, path
        assert r.json()["error"]["code"] == "not_found", path
    assert anon_client.post("/").status_code == 405
    assert anon_client.post("/").json()["error"]["code"] == "method_not_allowed"


def test_the_api_keeps_its_own_pages_and_auth(anon_client: TestClient) -> None:
    """/docs is FastAPI's Swagger page, an inline script: the dashboard's policy must not reach it (it would block
    that script), and the API still wants its key."""
    docs = anon_client.get("/docs")
    assert docs.status_code == 200 and "content-security-policy" not in docs.headers
    assert "SwaggerUIBundle" in "".join(_page(docs.text).script_text)
    assert "content-security-policy" not in anon_client.get("/openapi.json").headers
    assert "/" not in anon_client.get("/openapi.json").json()["paths"]
    assert anon_client.get("/v1/series").status_code == 401


def test_metrics_label_static_files_by_their_mount(anon_client: TestClient) -> None:
    """One label for every file, not one per path (the number of files must not multiply the metric's series), and
    not the label of unknown paths."""
    anon_client.get("/static/dashboard.js")
    anon_client.get("/static/sse.js")
    anon_client.get("/static/nope.js")
    anon_client.get("/")
    anon_client.get("/nope")
    text = anon_client.get("/metrics").text
    assert "dashboard.js" not in text and "sse.js" not in text
    assert 'latentcast_http_requests_total{method="GET",route="/static",status="200"} 2.0' in text
    assert 'latentcast_http_requests_total{method="GET",route="/static",status="404"} 1.0' in text
    assert 'latentcast_http_requests_total{method="GET",route="/",status="200"} 1.0' in text
    assert 'latentcast_http_requests_total{method="GET",route="unmatched",status="404"} 1.0' in text
