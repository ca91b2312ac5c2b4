"""The dashboard in a real browser: Debian's chromium driven by Selenium against `latentcast serve` (the API, its
worker and its forecast solver as real processes), with API keys on.

It enters a key, uploads a CSV, filters the list, opens a series whose description is an HTML injection attempt,
trains a model from the form and follows the job's event stream to the end, then checks the forecast's chart (the
library's own data and the pixels it drew), the version's backtest table, the Content-Security-Policy and where the
key went. Without chromium, chromedriver or selenium it skips, saying what is missing; under CI=true it fails.
LATENTCAST_DASHBOARD_SCREENSHOT=<path> saves the page with its forecast there (docs/dashboard.png is one).
"""

import json
import math
import os
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.e2e.conftest import FAST, wait_for
from tests.serving import free_port, start_server, stop_server
from tests.training_data import TINY_LOCAL

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
DESCRIPTION = 'Lab sensors <img src=x onerror="window.__xss = 1"> & <b>bold</b>'
METADATA = {"room": "<script>window.__xss = 2</script>"}


def _missing() -> list[str]:
    missing = [f"{p} (apt-get install chromium chromium-driver)" for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package (pip install -e '.[dev]')")
    return missing


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    if missing := _missing():
        message = "the dashboard's browser test needs " + ", ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must run it)")
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must not try to download a browser or driver
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1500",
                "--force-device-scale-factor=1", "--lang=en-US"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """`latentcast serve` with keys on: (base URL, the admin key, the server's log)."""
    port = free_port()
    env = {f"LATENTCAST_{k.upper()}": str(v) for k, v in FAST.items()}
    env.update({"LATENTCAST_DATA_DIR": str(tmp_path / "data")})
    log = tmp_path / "serve.log"
    serve = start_server(["serve", "--port", str(port)], env, log, timeout=120)
    try:
        yield f"http://127.0.0.1:{port}", (tmp_path / "data" / "admin.key").read_text().strip(), log
    finally:
        assert stop_server(serve, timeout=90) == 0, log.read_text()


def _load_series(base: str, key: str) -> dict:
    """room-1: 300 irregular times about a second apart, a noisy wave per channel, a fifth of `b` missing."""
    rng = np.random.default_rng(3)
    t = 1_767_225_600 + np.cumsum(rng.uniform(0.5, 1.5, 300))
    a = np.sin(t / 10.0) + 0.15 * rng.standard_normal(300)
    b = np.where(rng.random(300) < 0.2, np.nan, np.cos(t / 7.0) + 0.1 * rng.standard_normal(300))
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
        r = c.post("/v1/series", json={"key": "room-1", "channels": ["a", "b"], "description": DESCRIPTION,
                                       "metadata": METADATA})
        assert r.status_code == 201, r.text
        r = c.post("/v1/series/room-1/observations", json={
            "t": [round(float(x), 6) for x in t],
            "values": {"a": a.tolist(), "b": [None if math.isnan(v) else v for v in b]}})
        assert r.status_code == 200 and r.json()["inserted"] == 300 + int((~np.isnan(b)).sum()), r.text
        return c.get("/v1/series/room-1").json()


def _shown(driver, element_id: str) -> bool:
    return driver.execute_script(f"return !document.getElementById('{element_id}').hidden")


def _text(driver, element_id: str) -> str:
    return driver.execute_script(f"return document.getElementById('{element_id}').textContent")


# What the chart of one channel holds, read through uPlot's own API, and the colours it drew inside the 90% bands
# (a column of pixels at the middle forecast time of each part, as seen on the page's white: blue while
# interpolating, red past the last observation; the faint tint of the extrapolated area alone counts as neither).
CHART_PROBE = """
const u = window.latentcast.charts.get(arguments[0]);
if (!u) return null;
const nn = (col) => col.filter((v) => v !== null && v !== undefined).length;
const xs = u.data[0];
const last = arguments[1];  // the series' last observation, any channel
function probe(meanCol, loCol, hiCol) {
  const rows = xs.map((x, i) => i).filter((i) => u.data[meanCol][i] !== null);
  const i = rows[Math.floor(rows.length / 2)];
  const x = Math.round(u.valToPos(xs[i], "x", true));
  const yHi = u.valToPos(u.data[hiCol][i], "y", true), yLo = u.valToPos(u.data[loCol][i], "y", true);
  const top = Math.round(Math.min(yHi, yLo)) + 1, height = Math.max(1, Math.round(Math.abs(yLo - yHi)) - 2);
  const px = u.ctx.getImageData(x, top, 1, height).data;
  let blue = 0, red = 0, white = 0;
  for (let k = 0; k < px.length; k += 4) {
    const over = (c) => c * px[k + 3] / 255 + 255 * (1 - px[k + 3] / 255);  // the canvas is see-through: on white
    const [r, g, b] = [over(px[k]), over(px[k + 1]), over(px[k + 2])];
    if (r > 245 && g > 245 && b > 245) white++;
    else if (b > r + 20) blue++;
    else if (r > b + 20) red++;
  }
  return {blue, red, white, height, x: xs[i]};
}
const ordered = (base) => xs.every((x, i) => u.data[base][i] === null ||
  (u.data[base + 1][i] <= u.data[base + 3][i] && u.data[base + 3][i] <= u.data[base + 4][i] &&
   u.data[base + 4][i] <= u.data[base + 2][i]));
return {
  columns: u.data.length, bands: u.bands.length, observations: nn(u.data[1]),
  meanI: nn(u.data[2]), meanE: nn(u.data[7]),
  interpAfterLast: xs.filter((x, i) => u.data[2][i] !== null && x > last).length,
  // the extrapolated part starts at the last interpolated time (times are sent to the millisecond), so they meet
  extrapBeforeLast: xs.filter((x, i) => u.data[7][i] !== null && x < last - 0.001).length,
  ordered: ordered(2) && ordered(7),
  interp: probe(2, 3, 4), extrap: probe(7, 8, 9),
  canvas: [u.ctx.canvas.width, u.ctx.canvas.height],
};
"""

# The page's event-stream parser (static/sse.js) on a stream cut at every pair of places: the same events each time.
SSE_PROBE = """
const text = "id: 1\\r\\nevent: progress\\r\\ndata: {\\"a\\": 1}\\r\\n\\r\\n: keep-alive\\n\\nevent: end\\ndata: x\\n" +
             "data: y\\r\\r";
const parse = (parts) => { const got = []; const p = new EventStreamParser((e) => got.push(e));
                           parts.forEach((s) => p.feed(s)); return JSON.stringify(got); };
const whole = parse([text]);
for (let i = 0; i <= text.length; i++)
  for (let j = i; j <= text.length; j++)
    if (parse([text.slice(0, i), text.slice(i, j), text.slice(j)]) !== whole) return "differs at " + i + "," + j;
return whole;
"""


def test_dashboard_in_a_real_browser(browser, server, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    driver = browser
    base, key, log = server
    series = _load_series(base, key)

    # The page and its files need no key, and every one carries the strict policy.
    page = httpx.get(base + "/")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy and "unsafe" not in policy
    assert "script-src 'self'" in httpx.get(base + "/static/dashboard.js").headers["content-security-policy"]

    driver.get(base + "/")
    wait_for(lambda: _shown(driver, "key-view"), timeout=10, what="the key form")
    assert json.loads(driver.execute_script(SSE_PROBE)) == [{"event": "progress", "data": '{"a": 1}', "id": "1"},
                                                            {"event": "end", "data": "x\ny", "id": "1"}]
    driver.find_element(By.ID, "key-input").send_keys("lc_not-a-key")
    driver.find_element(By.CSS_SELECTOR, "#key-form button").click()
    wait_for(lambda: "not accepted" in _text(driver, "key-error"), timeout=10, what="a refused key")
    driver.find_element(By.ID, "key-input").clear()
    driver.find_element(By.ID, "key-input").send_keys(key)
    driver.find_element(By.CSS_SELECTOR, "#key-form button").click()
    wait_for(lambda: _shown(driver, "list-view") and "room-1" in _text(driver, "series-rows"), timeout=10,
             what="the series list")
    assert driver.execute_script("return sessionStorage.getItem('latentcast.apiKey')") == key
    assert driver.execute_script("return localStorage.length + document.cookie.length") == 0

    # Upload a CSV: a new key makes a series with the header's channels.
    csv = tmp_path / "upload.csv"
    csv.write_text("t,x,y\n2026-01-01T00:00:00Z,1.5,\n2026-01-01T00:00:01.25Z,2.5,0.5\n1767225603,,4\n")
    upload = driver.find_element(By.ID, "upload-form")
    upload.find_element(By.NAME, "key").send_keys("upload-1")
    upload.find_element(By.NAME, "file").send_keys(str(csv))
    upload.find_element(By.CSS_SELECTOR, "button").click()
    wait_for(lambda: "Series created" in upload.find_element(By.NAME, "status").text, timeout=15, what="the upload")
    assert "4 values: 4 new" in upload.find_element(By.NAME, "status").text
    uploaded = httpx.get(base + "/v1/series/upload-1", headers={"Authorization": f"Bearer {key}"}).json()
    assert uploaded["channels"] == ["x", "y"] and uploaded["counts"] == {"x": 2, "y": 2}

    # The filter asks the API for keys with that prefix.
    rows = lambda: driver.execute_script(  # noqa: E731 - read at once: the list is re-drawn as the filter changes
        "return [...document.querySelectorAll('#series-rows tr a')].map((a) => a.textContent)")
    wait_for(lambda: rows() == ["room-1", "upload-1"], timeout=10, what="both series listed")
    driver.find_element(By.ID, "filter").send_keys("up")
    wait_for(lambda: rows() == ["upload-1"], timeout=10, what="the filtered list")
    driver.find_element(By.ID, "filter").clear()
    driver.find_element(By.ID, "filter").send_keys("room")
    wait_for(lambda: rows() == ["room-1"], timeout=10, what="the other filtered list")

    # The series page: user text shown as text, never as markup.
    driver.find_element(By.LINK_TEXT, "room-1").click()
    wait_for(lambda: "No model for this series yet" in _text(driver, "forecast-status"), timeout=20,
             what="the series page")
    assert _text(driver, "series-description") == DESCRIPTION
    assert METADATA["room"] in _text(driver, "series-facts")
    assert driver.find_elements(By.CSS_SELECTOR, "#series-view img, #series-view script, #series-view b") == []
    assert driver.execute_script("return window.__xss === undefined")
    observed = driver.execute_script("const u = window.latentcast.charts.get('b'); "
                                     "return u.data[1].filter((v) => v !== null).length")
    assert observed == series["counts"]["b"]  # every observation of the channel, as a point at its own time

    # Train from the form with a tiny budget and follow the job's event stream to its end.
    form = driver.find_element(By.ID, "train-form")
    assert form.find_element(By.NAME, "name").get_attribute("value") == "room-1"
    form.find_element(By.NAME, "horizon").send_keys("PT1M")
    form.find_element(By.NAME, "train_steps").send_keys(str(TINY_LOCAL["train_steps"]))
    form.find_element(By.TAG_NAME, "summary").click()
    tiny = {k: v for k, v in TINY_LOCAL.items() if k != "train_steps"}
    form.find_element(By.NAME, "config").send_keys(json.dumps(tiny))
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    def status() -> str:
        return driver.execute_script("return document.getElementById('train-status').dataset.status")

    wait_for(lambda: status() in ("succeeded", "failed", "cancelled", "error"), timeout=120, every=0.2,
             what="the training to end")
    assert status() == "succeeded", _text(driver, "train-status")
    assert "room-1 v1 is ready" in _text(driver, "train-status")
    statuses = driver.execute_script("return window.latentcast.jobStatuses()")
    assert "running" in statuses and statuses[-1] == "succeeded", statuses  # live progress events, then `end`
    bar = driver.find_element(By.ID, "train-bar")
    assert bar.get_attribute("value") == bar.get_attribute("max")

    # The page picks the new version, shows its metrics and draws its forecast.
    wait_for(lambda: _text(driver, "forecast-status").startswith("Forecast by room-1 v1"), timeout=30,
             what="the forecast")
    last = datetime.fromisoformat(series["last_t"]).timestamp()
    version = httpx.get(base + "/v1/models/room-1/versions/1", headers={"Authorization": f"Bearer {key}"}).json()
    methods = version["metrics"]["backtest"]["methods"]
    table = {r.get_attribute("data-method"): [c.text for c in r.find_elements(By.TAG_NAME, "td")]
             for r in driver.find_elements(By.CSS_SELECTOR, "#metrics table.backtest tbody tr")}
    assert set(table) == set(methods)
    assert float(table["model"][1]) == pytest.approx(methods["model"]["mae"], rel=1e-2)
    assert float(table["model"][5]) == pytest.approx(methods["model"]["interval90"], rel=1e-2)
    assert table["last_value"][5] == "–"  # no band, no interval score
    assert "cut-offs" in driver.find_element(By.CLASS_NAME, "backtest-summary").text
    by_horizon = {r.get_attribute("data-method"): [c.text for c in r.find_elements(By.TAG_NAME, "td")]
                  for r in driver.find_elements(By.CSS_SELECTOR, "#metrics table.backtest-bands tbody tr")}
    assert len(by_horizon["model"]) == 1 + len(methods["model"]["bands"])
    assert float(by_horizon["model"][-1].split()[0]) == pytest.approx(methods["model"]["bands"][-1]["mae"], rel=1e-2)

    for channel in ("a", "b"):
        chart = driver.execute_script(CHART_PROBE, channel, last)
        assert chart["columns"] == 12 and chart["bands"] == 4, chart  # x, points, (mean + 4 quantiles) x 2 parts
        assert chart["meanI"] >= 100 and chart["meanE"] >= 50, chart
        assert chart["interpAfterLast"] == 0 and chart["extrapBeforeLast"] == 0, chart
        assert chart["ordered"], "quantiles out of order in the chart's data"
        interp, extrap = chart["interp"], chart["extrap"]
        assert interp["x"] < last < extrap["x"], chart
        assert interp["blue"] > 0.6 * interp["height"] and extrap["red"] > 0.6 * extrap["height"], chart

    # Nothing the policy blocked, no script error; the only failed loads are the refused key's 401 and the
    # upload's look-up of a series that did not exist yet (404).
    logs = driver.get_log("browser")
    assert not [e for e in logs if "Content Security Policy" in e["message"]], logs
    errors = [e for e in logs if e["level"] == "SEVERE"
              and not ("status of 401" in e["message"] or "status of 404" in e["message"])]
    assert errors == [], errors
    assert driver.execute_script("return window.__xss === undefined")
    # The key went in headers only: never in the page's address, nor in any request line the server logged.
    assert key not in driver.current_url
    assert key not in log.read_text() and "GET /v1/jobs/" in log.read_text()

    shot = tmp_path / "dashboard.png"
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 20_000
    if target := os.environ.get("LATENTCAST_DASHBOARD_SCREENSHOT"):
        shutil.copyfile(shot, target)

    driver.find_element(By.ID, "forget-key").click()
    wait_for(lambda: _shown(driver, "key-view"), timeout=10, what="the key form again")
    assert driver.execute_script("return sessionStorage.getItem('latentcast.apiKey')") is None

