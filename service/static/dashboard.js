/* The latentcast dashboard: series, forecasts, model versions, training and uploads, all through the /v1 API.
 *
 * Rules this file keeps:
 * - The API key lives in sessionStorage (this tab only) and travels in the Authorization header; never in a URL.
 * - User text (keys, names, descriptions, metadata, error messages) reaches the page through textContent only.
 * - No inline script or style: the page's Content-Security-Policy forbids both.
 * Times inside the page are Unix seconds (floats); times sent to the API are Unix seconds as decimal text.
 */
"use strict";

(function () {
  const KEY_STORAGE = "latentcast.apiKey";
  const QUANTILES = ["0.05", "0.25", "0.75", "0.95"];  // the 90% and 50% bands
  const OBSERVATION_PAGE = 50000;
  const MAX_OBSERVATIONS = 200000;  // time rows drawn at most; a longer window is cut at its start
  const HISTORY_POINTS = 160;  // forecast times inside the observed window (interpolation)
  const FUTURE_POINTS = 80;  // and past its last observation (extrapolation)
  const COLORS = {
    obs: "#1d232a", meanI: "#1f6fb2", meanE: "#c2410c",
    band90I: "rgba(31,111,178,0.15)", band50I: "rgba(31,111,178,0.35)",
    band90E: "rgba(194,65,12,0.13)", band50E: "rgba(194,65,12,0.32)", future: "rgba(194,65,12,0.06)",
  };

  const $ = (id) => document.getElementById(id);
  const state = {
    charts: new Map(),  // channel -> uPlot instance of the series page
    series: null,  // the series shown
    versions: [],  // versions of the chosen model
    listCursor: null,
    follow: null,  // AbortController of the job stream followed
    jobStatuses: [],  // the job's status at each event read from that stream
    view: 0,  // bumped on every navigation, so late answers of an older view are dropped
  };
  // Read-only handles for debugging and for the browser test: the charts drawn and the job stream's event count.
  window.latentcast = { charts: state.charts, jobStatuses: () => state.jobStatuses.slice() };

  // ---- small helpers ---------------------------------------------------------------------------------------

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function show(id) {
    for (const view of ["key-view", "list-view", "series-view"]) $(view).hidden = view !== id;
  }

  function notice(message) {
    $("notice").textContent = message || "";
    $("notice").hidden = !message;
  }

  /** "2026-03-01T12:00:00.250000Z" -> Unix seconds, to the microsecond (Date.parse stops at milliseconds). */
  function seconds(text) {
    const m = /^(.{19})(\.\d+)?Z$/.exec(text);
    if (!m) return Date.parse(text) / 1000;
    return Date.parse(m[1] + "Z") / 1000 + (m[2] ? parseFloat(m[2]) : 0);
  }

  function timeText(s) {
    return new Date(s * 1000).toISOString().replace(".000Z", "Z");
  }

  function durationText(s) {
    if (s === null || s === undefined) return "–";
    const units = [["d", 86400], ["h", 3600], ["min", 60]];
    for (const [name, size] of units) if (s >= size) return `${+(s / size).toPrecision(3)} ${name}`;
    return `${+s.toPrecision(3)} s`;
  }

  function num(x, digits) {
    if (typeof x !== "number") return x === null || x === undefined ? "–" : String(x);
    return Math.abs(x) >= 1e5 || (x !== 0 && Math.abs(x) < 1e-3) ? x.toExponential(2) : +x.toFixed(digits ?? 4) + "";
  }

  // ---- the API ---------------------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, body) {
      const error = body && body.error;
      let message = error ? error.message : `HTTP ${status}`;
      if (error && Array.isArray(error.details) && error.details.length > 1) {
        message += ` (and ${error.details.length - 1} more)`;
      }
      super(message);
      this.status = status;
      this.code = error ? error.code : "";
    }
  }

  function apiKey() {
    return sessionStorage.getItem(KEY_STORAGE);
  }

  async function api(path, options) {
    const opts = options || {};
    const headers = { Accept: "application/json", ...(opts.headers || {}) };
    const key = opts.key !== undefined ? opts.key : apiKey();
    if (key) headers.Authorization = `Bearer ${key}`;
    let body = opts.body;
    if (opts.json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(opts.json);
    }
    const response = await fetch(path, { method: opts.method || "GET", headers, body, signal: opts.signal,
                                         cache: "no-store" });
    if (opts.raw && response.ok) return response;
    const text = await response.text();
    let parsed = null;
    try { parsed = text ? JSON.parse(text) : null; } catch (_) { parsed = null; }
    if (!response.ok) {
      const failure = new ApiError(response.status, parsed);
      if (response.status === 401 && opts.key === undefined) askForKey("The API key was not accepted: " +
                                                                         failure.message);
      throw failure;
    }
    return parsed;
  }

  function query(params) {
    const q = new URLSearchParams();
    for (const [name, value] of params) {
      if (value !== null && value !== undefined && value !== "") q.append(name, value);
    }
    return q.toString();
  }

  // ---- the key ---------------------------------------------------------------------------------------------

  function askForKey(reason) {
    sessionStorage.removeItem(KEY_STORAGE);
    updateKeyState();
    $("key-error").textContent = reason || "";
    show("key-view");
    $("key-input").focus();
  }

  function updateKeyState() {
    const has = !!apiKey();
    $("key-state").textContent = has ? "API key set for this tab" : "";
    $("forget-key").hidden = !has;
  }

  async function submitKey(event) {
    event.preventDefault();
    const key = $("key-input").value.trim();
    if (!key) return;
    try {
      await api("/v1/series?limit=1", { key });
    } catch (err) {
      $("key-error").textContent = err.status === 401 ? "This key was not accepted (unknown or revoked)." :
        err.status === 403 ? "This key lacks the read scope." : `The key could not be checked: ${err.message}`;
      return;
    }
    sessionStorage.setItem(KEY_STORAGE, key);
    $("key-input").value = "";
    $("key-error").textContent = "";
    updateKeyState();
    route();
  }

  // ---- the series list -------------------------------------------------------------------------------------

  async function showList(append) {
    show("list-view");
    const view = state.view;
    const prefix = $("filter").value.trim();
    if (prefix && !/^[A-Za-z0-9._-]*$/.test(prefix)) {
      $("list-status").textContent = "A key has only letters, digits, '.', '_' and '-'.";
      $("series-rows").replaceChildren();
      return;
    }
    let page;
    try {
      page = await api("/v1/series?" + query([["limit", "100"], ["prefix", prefix],
                                               ["cursor", append ? state.listCursor : null]]));
    } catch (err) {
      $("list-status").textContent = err.message;
      return;
    }
    if (view !== state.view) return;
    const rows = page.items.map((s) => {
      const tr = el("tr");
      const link = el("a", s.key);
      link.href = "#/series/" + encodeURIComponent(s.key);
      const keyCell = el("td");
      keyCell.append(link);
      const total = Object.values(s.counts).reduce((a, b) => a + b, 0);
      tr.append(keyCell, el("td", s.channels.join(", ")), el("td", total.toLocaleString("en"), "num"),
                el("td", s.last_t || "–"), el("td", s.description));
      return tr;
    });
    if (append) $("series-rows").append(...rows);
    else $("series-rows").replaceChildren(...rows);
    state.listCursor = page.next_cursor;
    $("more-series").hidden = !page.next_cursor;
    const shown = $("series-rows").children.length;
    $("list-status").textContent = shown ? `${shown} series${page.next_cursor ? " so far" : ""}` :
      prefix ? "No series key starts with that." : "No series yet: upload a CSV below.";
  }

  // ---- the series page -------------------------------------------------------------------------------------

  async function showSeries(key) {
    show("series-view");
    const view = state.view;
    clearCharts();
    $("series-key").textContent = key;
    $("series-description").textContent = "";
    $("series-facts").replaceChildren();
    $("forecast-warnings").replaceChildren();
    $("forecast-status").textContent = "Loading…";
    $("metrics").replaceChildren(el("p", "No version chosen.", "muted"));
    const trainForm = $("train-form");
    if (trainForm.dataset.series !== key) {  // a fresh form per series; kept while the user stays on it
      trainForm.dataset.series = key;
      trainForm.elements.name.value = key;
      $("train-progress").hidden = true;
    }
    let series;
    try {
      series = await api(`/v1/series/${encodeURIComponent(key)}`);
    } catch (err) {
      $("forecast-status").textContent = err.message;
      return;
    }
    if (view !== state.view) return;
    state.series = series;
    renderFacts(series);
    await loadModels(series, view);
  }

  function renderFacts(series) {
    $("series-description").textContent = series.description || "";
    const facts = $("series-facts");
    const add = (name, value) => facts.append(el("dt", name), value instanceof Node ? value : el("dd", value));
    add("Channels", series.channels.map((c) => `${c} (${series.counts[c].toLocaleString("en")})`).join(", "));
    add("Observed", series.first_t ? `${series.first_t} to ${series.last_t}` : "no observations yet");
    add("Created", series.created_at);
    if (series.metadata && Object.keys(series.metadata).length) {
      const dd = el("dd");
      dd.append(el("pre", JSON.stringify(series.metadata, null, 2)));
      add("Metadata", dd);
    }
  }

  /** Fill the model picker with every model whose channels this series has, those trained on it first. */
  async function loadModels(series, view, prefer) {
    let models = [];
    try {
      let cursor = null;
      do {  // every model name: a series may be forecast by any model whose channels it has
        const page = await api("/v1/models?" + query([["limit", "1000"], ["cursor", cursor]]));
        models = models.concat(page.items);
        cursor = page.next_cursor;
      } while (cursor);
    } catch (err) {
      $("forecast-status").textContent = err.message;
      return;
    }
    if (view !== state.view) return;
    const usable = models.filter((m) => m.channels.every((c) => series.channels.includes(c)));
    const own = (m) => m.series.includes(series.key);
    usable.sort((a, b) => (own(b) - own(a)) || a.name.localeCompare(b.name));
    const select = $("model-select");
    select.replaceChildren(...usable.map((m) => {
      const option = el("option", own(m) ? m.name : `${m.name} (trained on other series)`);
      option.value = m.name;
      return option;
    }));
    if (!usable.length) {
      $("version-select").replaceChildren();
      await draw(series, null, view);
      if (view === state.view) $("forecast-status").textContent = "No model for this series yet: train one below.";
      return;
    }
    select.value = prefer && usable.some((m) => m.name === prefer.name) ? prefer.name : usable[0].name;
    await loadVersions(view, prefer);
  }

  async function loadVersions(view, prefer) {
    const name = $("model-select").value;
    let model;
    try {
      model = await api(`/v1/models/${encodeURIComponent(name)}`);
    } catch (err) {
      $("forecast-status").textContent = err.message;
      return;
    }
    if (view !== state.view) return;
    state.versions = model.versions;
    const select = $("version-select");
    select.replaceChildren(...model.versions.map((v) => {
      const option = el("option", `v${v.version} · ${v.status}`);
      option.value = String(v.version);
      return option;
    }));
    const ready = model.versions.find((v) => v.status === "ready");
    const wanted = prefer && prefer.name === name ? model.versions.find((v) => v.version === prefer.version) : null;
    const chosen = wanted || ready || model.versions[0];
    if (chosen) select.value = String(chosen.version);
    await versionChosen(view);
  }

  async function versionChosen(view) {
    const version = state.versions.find((v) => String(v.version) === $("version-select").value);
    renderMetrics(version);
    await draw(state.series, version && version.status === "ready" ? version : null, view);
    if (version && version.status !== "ready") {
      $("forecast-status").textContent = `Version ${version.version} is ${version.status}: no forecast.`;
    }
  }

  // ---- version metrics -------------------------------------------------------------------------------------

  const METHOD_NAMES = { model: "this model", classical: "its classical part", last_value: "last value",
                         drift: "drift", seasonal_naive: "seasonal naive" };

  function renderMetrics(v) {
    const box = $("metrics");
    if (!v) {
      box.replaceChildren(el("p", "No version chosen.", "muted"));
      return;
    }
    const parts = [];
    const facts = el("dl", null, "facts");
    const fact = (name, value) => facts.append(el("dt", name), el("dd", value));
    fact("Status", v.status);
    fact("Trained on", v.series.join(", "));
    fact("Channels", v.channels.join(", "));
    fact("Horizon", durationText(v.horizon_s ?? v.config.horizon));
    fact("Context", durationText(v.context_s ?? v.config.context));
    fact("Frame", v.config.frame || "–");
    fact("Created", v.created_at);
    if (v.trained_at) fact("Trained", v.trained_at);
    if (v.error) fact("Error", v.error);
    parts.push(facts);
    const metrics = v.metrics || {};
    const scalars = Object.entries(metrics).filter(([, x]) => x === null || typeof x !== "object");
    if (scalars.length) {
      const table = el("table", null, "scalars");
      const head = el("tr");
      const row = el("tr");
      for (const [name, value] of scalars) {
        head.append(el("th", name));
        row.append(el("td", num(value), "num"));
      }
      table.append(el("thead"), el("tbody"));
      table.tHead.append(head);
      table.tBodies[0].append(row);
      parts.push(table);
    }
    const backtest = metrics.backtest;
    if (backtest && backtest.methods) {
      parts.push(el("h3", "Backtest on the validation cut-offs"));
      const summary = [`${backtest.cutoffs} cut-offs, ${backtest.points} points`,
                       `best baseline: ${METHOD_NAMES[backtest.best_baseline] || backtest.best_baseline}`,
                       backtest.beats_baselines ? "the model beats the baselines" :
                         "the model does not beat the best baseline"];
      if (backtest.hit_time_limit) summary.push("training stopped at its time limit");
      if (backtest.overlap) summary.push("the cut-offs lay inside the training data (the series is short)");
      parts.push(el("p", summary.join(" · "), "backtest-summary"));
      const table = el("table", null, "backtest");
      const head = el("tr");
      const columns = [["mae", "MAE (std units)"], ["mse", "MSE (std units)"], ["rmae", "MAE ÷ last value's"],
                       ["coverage90", "90% band coverage"], ["interval90", "90% band interval score"]];
      head.append(el("th", "Method"), ...columns.map(([, label]) => el("th", label, "num")));
      const body = el("tbody");
      for (const [method, m] of Object.entries(backtest.methods)) {
        const tr = el("tr");
        tr.dataset.method = method;
        tr.append(el("td", METHOD_NAMES[method] || method),
                  ...columns.map(([name]) => el("td", num(m[name], 3), "num")));
        body.append(tr);
      }
      const thead = el("thead");
      thead.append(head);
      table.append(thead, body);
      parts.push(table);
      parts.push(...horizonTable(backtest.methods));
    }
    box.replaceChildren(...parts);
  }

  /** MAE per part of the horizon (and the 90% band's coverage where measured), one row per method. */
  function horizonTable(methods) {
    const reference = Object.values(methods).find((m) => Array.isArray(m.bands) && m.bands.length);
    if (!reference) return [];
    const table = el("table", null, "backtest-bands");
    const head = el("tr");
    head.append(el("th", "MAE up to"), ...reference.bands.map((b) => el("th", durationText(b.until_s), "num")));
    const body = el("tbody");
    for (const [method, m] of Object.entries(methods)) {
      const tr = el("tr");
      tr.dataset.method = method;
      tr.append(el("td", METHOD_NAMES[method] || method), ...reference.bands.map((_, k) => {
        const band = (m.bands || [])[k] || {};
        const coverage = typeof band.coverage90 === "number" ? ` (90%: ${Math.round(band.coverage90 * 100)}%)` : "";
        return el("td", num(band.mae, 3) + coverage, "num");
      }));
      body.append(tr);
    }
    const thead = el("thead");
    thead.append(head);
    table.append(thead, body);
    return [el("h3", "By how far ahead"), table];
  }

  // ---- charts ----------------------------------------------------------------------------------------------

  function clearCharts() {
    for (const chart of state.charts.values()) chart.destroy();
    state.charts.clear();
    $("charts").replaceChildren();
    $("legend").replaceChildren();
  }

  /** Every observation row with t >= start (Unix seconds), page by page; stops at MAX_OBSERVATIONS rows. */
  async function readObservations(series, start) {
    const t = [];
    const values = Object.fromEntries(series.channels.map((c) => [c, []]));
    let cursor = null;
    let cut = false;
    do {
      const page = await api(`/v1/series/${encodeURIComponent(series.key)}/observations?` +
        query([["limit", String(OBSERVATION_PAGE)], cursor ? ["cursor", cursor] : ["start", start.toFixed(6)]]));
      for (const s of page.t) t.push(seconds(s));
      for (const c of series.channels) values[c].push(...page.values[c]);
      cursor = page.next_cursor;
      if (cursor && t.length >= MAX_OBSERVATIONS) {
        cut = true;
        break;
      }
    } while (cursor);
    return { t, values, cut };
  }

  /** A version's horizon in seconds: the one training recorded, else its config's; 0 when neither says. */
  function horizon(version) {
    return version.horizon_s ?? version.config.horizon ?? 0;
  }

  /** Forecast times: HISTORY_POINTS across [start, last], FUTURE_POINTS across (last, last + horizon]. */
  function forecastTimes(start, last, horizonS) {
    const times = [];
    const fromMs = Math.ceil(start * 1000);  // ms, rounded inwards: never before the first observation
    const lastMs = Math.floor(last * 1000);
    const endMs = Math.floor((last + horizonS) * 1000);  // nor past the horizon
    for (let i = 0; i <= HISTORY_POINTS; i++) times.push(Math.round(fromMs + (lastMs - fromMs) * i / HISTORY_POINTS));
    for (let i = 1; i <= FUTURE_POINTS && endMs > lastMs; i++) times.push(Math.round(lastMs + (endMs - lastMs) * i / FUTURE_POINTS));
    return [...new Set(times)].filter((ms) => ms >= fromMs && ms <= endMs).map((ms) => (ms / 1000).toFixed(3));
  }

  async function draw(series, version, view) {
    clearCharts();
    $("forecast-warnings").replaceChildren();
    if (!series.first_t) {
      $("forecast-status").textContent = "No observations yet: upload a CSV below.";
      return;
    }
    const first = seconds(series.first_t);
    const last = seconds(series.last_t);
    // The window shown: the history the version reads (its context) and a little more, or all of it.
    const span = (version ? Math.max(version.context_s || 0, 2 * horizon(version)) * 1.5 : 0) || Infinity;
    const start = Math.max(first, last - span);
    $("forecast-status").textContent = "Loading…";
    let observations;
    let forecast = null;
    try {
      observations = await readObservations(series, start);
      if (version) {
        const at = forecastTimes(Math.max(start, observations.t[0] ?? start), last, horizon(version));
        forecast = await api(`/v1/series/${encodeURIComponent(series.key)}/forecast?` + query([
          ["model", version.name], ["version", String(version.version)], ["quantiles", QUANTILES.join(",")],
          ["seed", "0"], ...at.map((t) => ["at", t])]));
      }
    } catch (err) {
      if (view === state.view) $("forecast-status").textContent = err.message;
      return;
    }
    if (view !== state.view) return;
    if (forecast) {
      $("forecast-warnings").replaceChildren(...forecast.warnings.map((w) => el("li", w)));
      $("forecast-status").textContent = `Forecast by ${version.name} v${version.version}: ` +
        (horizon(version) ? `${durationText(horizon(version))} past the last observation (${series.last_t}).` :
          "its horizon is not recorded, so it is shown up to the last observation only.");
    } else {
      $("forecast-status").textContent = "Observations only.";
    }
    if (observations.cut) {
      $("forecast-status").textContent += ` Showing the first ${observations.t.length.toLocaleString("en")} ` +
        "observation times of the window.";
    }
    renderLegend(!!forecast);
    for (const channel of series.channels) {
      if (version && !version.channels.includes(channel)) continue;  // a channel the model does not forecast
      drawChannel(channel, observations, forecast, last);
    }
  }

  function renderLegend(withForecast) {
    const items = [["obs", "observations"]];
    if (withForecast) {
      items.push(["mean-i", "mean, interpolation"], ["band50-i", "50% band"], ["band90-i", "90% band"],
                 ["mean-e", "mean, extrapolation"], ["band50-e", "50% band"], ["band90-e", "90% band"],
                 ["future", "past the last observation"]);
    }
    items.push([null, "times in UTC"]);
    $("legend").replaceChildren(...items.map(([cls, label]) => {
      const item = el("span");
      if (cls) item.append(el("i", null, `swatch ${cls}`));
      item.append(el("span", label));
      return item;
    }));
  }

  /** One chart per channel: observations as points at their own times, the forecast's mean and bands split into
   * interpolation (up to the last observation) and extrapolation (after it), the boundary point in both. */
  function drawChannel(channel, observations, forecast, last) {
    const rows = new Map();  // t -> row index, observation and forecast times merged
    const times = [];
    const add = (t) => { if (!rows.has(t)) { rows.set(t, -1); times.push(t); } };
    const obsT = [];
    const obsV = [];
    observations.t.forEach((t, i) => {
      const v = observations.values[channel][i];
      if (v !== null) { obsT.push(t); obsV.push(v); add(t); }
    });
    const fT = forecast ? forecast.t.map(seconds) : [];
    fT.forEach(add);
    if (!times.length) return;
    times.sort((a, b) => a - b);
    times.forEach((t, i) => rows.set(t, i));
    const column = () => new Array(times.length).fill(null);
    const data = [times, column()];
    obsT.forEach((t, i) => { data[1][rows.get(t)] = obsV[i]; });
    const series = [{}, { label: "observations", stroke: COLORS.obs, width: 0, paths: () => null,
                          points: { show: true, size: 5, stroke: COLORS.obs, fill: COLORS.obs } }];
    const bands = [];
    if (forecast) {
      const f = forecast.channels[channel];
      // Columns: mean, q05, q95, q25, q75, for interpolation then extrapolation.
      const sources = [f.mean, f.quantiles["0.05"], f.quantiles["0.95"], f.quantiles["0.25"], f.quantiles["0.75"]];
      const joint = forecast.kind.lastIndexOf("interpolation");  // drawn in both parts, so the lines meet
      for (const part of ["interpolation", "extrapolation"]) {
        const cols = sources.map(() => column());
        fT.forEach((t, i) => {
          const inside = forecast.kind[i] === part || (part === "extrapolation" && i === joint);
          if (inside) sources.forEach((src, k) => { cols[k][rows.get(t)] = src[i]; });
        });
        const base = data.length;
        data.push(...cols);
        const interp = part === "interpolation";
        series.push({ label: `mean (${part})`, stroke: interp ? COLORS.meanI : COLORS.meanE, width: 2,
                      dash: interp ? undefined : [6, 4], spanGaps: true, points: { show: false } });
        for (const label of ["q0.05", "q0.95", "q0.25", "q0.75"]) {
          series.push({ label: `${label} (${part})`, stroke: "transparent", width: 0, spanGaps: true,
                        points: { show: false } });
        }
        bands.push({ series: [base + 2, base + 1], fill: interp ? COLORS.band90I : COLORS.band90E },
                   { series: [base + 4, base + 3], fill: interp ? COLORS.band50I : COLORS.band50E });
      }
    }
    const box = el("div", null, "chart");
    box.dataset.channel = channel;
    box.append(el("h3", channel));
    $("charts").append(box);
    const opts = {
      width: Math.max(320, box.clientWidth - 10),
      height: 280,
      series,
      bands,
      legend: { show: false },
      scales: { x: { time: true } },
      axes: [{ values: timeTicks, space: 70 }, {}],
      cursor: { drag: { x: true, y: false } },
      hooks: forecast ? { drawClear: [(u) => shadeFuture(u, last)], draw: [(u) => markLast(u, last)] } : {},
    };
    state.charts.set(channel, new uPlot(opts, data, box));
  }

  /** x-axis labels in UTC, as the API writes times: the date where it changes, the time to the tick spacing. */
  function timeTicks(u, splits, axisIdx, foundSpace, foundIncr) {
    let day = null;
    return splits.map((s) => {
      const iso = new Date(s * 1000).toISOString();
      const date = iso.slice(0, 10);
      if (foundIncr >= 86400) return date;
      const time = iso.slice(11, foundIncr < 1 ? 23 : foundIncr < 60 ? 19 : 16);
      const label = date !== day ? `${date}\n${time}` : time;
      day = date;
      return label;
    });
  }

  /** Tint the plot area past the last observation: the extrapolated part. */
  function shadeFuture(u, last) {
    const x = Math.max(u.bbox.left, u.valToPos(last, "x", true));
    const right = u.bbox.left + u.bbox.width;
    if (x >= right) return;
    u.ctx.save();
    u.ctx.fillStyle = COLORS.future;
    u.ctx.fillRect(x, u.bbox.top, right - x, u.bbox.height);
    u.ctx.restore();
  }

  function markLast(u, last) {
    const x = u.valToPos(last, "x", true);
    if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) return;
    const ctx = u.ctx;
    ctx.save();
    ctx.strokeStyle = COLORS.meanE;
    ctx.setLineDash([3, 3]);
    ctx.lineWidth = Math.max(1, devicePixelRatio);
    ctx.beginPath();
    ctx.moveTo(x, u.bbox.top);
    ctx.lineTo(x, u.bbox.top + u.bbox.height);
    ctx.stroke();
    ctx.fillStyle = COLORS.meanE;
    ctx.font = `${12 * devicePixelRatio}px system-ui, sans-serif`;
    ctx.fillText("last observation", x + 4 * devicePixelRatio, u.bbox.top + 14 * devicePixelRatio);
    ctx.restore();
  }

  function resizeCharts() {
    for (const [channel, chart] of state.charts) {
      const box = document.querySelector(`.chart[data-channel="${CSS.escape(channel)}"]`);
      if (box) chart.setSize({ width: Math.max(320, box.clientWidth - 10), height: 280 });
    }
  }

  // ---- training --------------------------------------------------------------------------------------------

  function trainingConfig(form) {
    const text = form.elements.config.value.trim();
    let config = {};
    if (text) {
      try {
        config = JSON.parse(text);
      } catch (err) {
        throw new Error(`The model configuration is not valid JSON: ${err.message}`);
      }
      if (typeof config !== "object" || config === null || Array.isArray(config)) {
        throw new Error("The model configuration must be a JSON object of field names and values.");
      }
    }
    if (form.elements.train_steps.value) config.train_steps = Number(form.elements.train_steps.value);
    if (form.elements.time_limit.value) config.time_limit = Number(form.elements.time_limit.value);
    return config;
  }

  async function submitTraining(event) {
    event.preventDefault();
    const form = event.target;
    const status = $("train-status");
    $("train-progress").hidden = false;
    let body;
    try {
      body = { name: form.elements.name.value.trim(), series: [state.series.key],
               horizon: form.elements.horizon.value.trim(), config: trainingConfig(form) };
    } catch (err) {
      setTrainStatus("error", err.message);
      return;
    }
    if (form.elements.context.value.trim()) body.context = form.elements.context.value.trim();
    let accepted;
    try {
      accepted = await api("/v1/models", { method: "POST", json: body });
    } catch (err) {
      setTrainStatus("error", `Not started: ${err.message}`);
      return;
    }
    status.dataset.job = accepted.job.id;
    setTrainStatus("queued", `Queued: ${accepted.model.name} version ${accepted.model.version}.`);
    followJob(accepted.job.id, state.view);
  }

  function setTrainStatus(status, text) {
    const node = $("train-status");
    node.dataset.status = status;
    node.textContent = text;
    node.classList.toggle("error", status === "error" || status === "failed");
    $("train-cancel").hidden = !(status === "queued" || status === "running");
  }

  function showProgress(job) {
    const p = job.progress;
    const bar = $("train-bar");
    if (p && p.epochs) {
      bar.max = p.epochs;
      bar.value = p.epoch;
    } else {
      bar.removeAttribute("value");  // indeterminate until the first step
    }
    const name = `${job.model.name} v${job.model.version}`;
    if (job.status === "queued") {
      setTrainStatus("queued", `${name}: waiting for a worker.`);
    } else if (job.status === "running") {
      const parts = [`${name}: training`];
      if (p) {
        parts.push(`step ${p.epoch} of ${p.epochs}`);
        if (p.loss !== null) parts.push(`loss ${num(p.loss)}`);
        if (p.val_mse !== null) parts.push(`validation ${num(p.val_mse)}`);
        if (p.eta_s !== null) parts.push(`about ${durationText(p.eta_s)} left`);
      }
      setTrainStatus("running", parts.join(" · "));
    } else if (job.status === "succeeded") {
      bar.max = 1;
      bar.value = 1;
      setTrainStatus("succeeded", `${name} is ready (${durationText(p ? p.elapsed_s : null)} of training).`);
    } else {
      setTrainStatus(job.status, `${name} ${job.status}${job.error ? ": " + job.error : "."}`);
    }
  }

  /** Follow a job's server-sent events until its `end` event; reconnect if the stream breaks before that. */
  async function followJob(jobId, view) {
    if (state.follow) state.follow.abort();
    const controller = new AbortController();
    state.follow = controller;
    state.jobStatuses = [];
    let finished = null;
    for (let attempt = 0; !finished && attempt < 20; attempt++) {
      try {
        const response = await api(`/v1/jobs/${encodeURIComponent(jobId)}/events`,
                                   { raw: true, signal: controller.signal, headers: { Accept: "text/event-stream" } });
        await readEventStream(response, (event) => {
          if (event.event !== "progress" && event.event !== "end") return;
          const job = JSON.parse(event.data);
          state.jobStatuses.push(job.status);
          showProgress(job);
          if (event.event === "end") finished = job;
        });
      } catch (err) {
        if (controller.signal.aborted) return;
        if (err instanceof ApiError && err.status < 500) {
          setTrainStatus("error", `Progress unavailable: ${err.message}`);
          return;
        }
      }
      if (!finished) await new Promise((resolve) => setTimeout(resolve, 1000));
      if (controller.signal.aborted) return;
    }
    if (!finished) {
      setTrainStatus("error", "Lost the job's progress stream; reload the page to see where it stands.");
      return;
    }
    if (finished.status === "succeeded" && view === state.view && state.series) {
      await loadModels(state.series, view, finished.model);
    }
  }

  async function cancelTraining() {
    const jobId = $("train-status").dataset.job;
    if (!jobId) return;
    try {
      await api(`/v1/jobs/${encodeURIComponent(jobId)}/cancel`, { method: "POST" });
    } catch (err) {
      setTrainStatus("error", `Could not cancel: ${err.message}`);
    }
  }

  // ---- CSV upload ------------------------------------------------------------------------------------------

  function csvChannels(text) {
    const header = text.split(/\r?\n/, 1)[0] || "";
    return header.split(",").slice(1).map((c) => c.trim().replace(/^"(.*)"$/, "$1")).filter((c) => c);
  }

  async function upload(key, file, description, output) {
    output.classList.remove("error");
    output.textContent = "Uploading…";
    try {
      const text = await file.text();
      let exists = true;
      try {
        await api(`/v1/series/${encodeURIComponent(key)}`);
      } catch (err) {
        if (err.status !== 404) throw err;
        exists = false;
      }
      if (!exists) {
        const channels = csvChannels(text);
        if (!channels.length) throw new Error("The CSV's first line must name the columns: t,channel1,channel2,…");
        await api("/v1/series", { method: "POST", json: { key, channels, description: description || "" } });
      }
      const result = await api(`/v1/series/${encodeURIComponent(key)}/observations`,
                               { method: "POST", body: text, headers: { "Content-Type": "text/csv" } });
      output.textContent = `${exists ? "" : "Series created. "}${result.received.toLocaleString("en")} values: ` +
        `${result.inserted} new, ${result.updated} changed, ${result.unchanged} already stored.`;
      return true;
    } catch (err) {
      output.classList.add("error");
      output.textContent = `Upload failed: ${err.message}`;
      return false;
    }
  }

  async function submitUpload(event) {
    event.preventDefault();
    const form = event.target;
    const key = form.elements.key.value.trim();
    if (await upload(key, form.elements.file.files[0], form.elements.description.value, form.elements.status)) {
      form.elements.file.value = "";
      showList(false);
    }
  }

  async function submitSeriesUpload(event) {
    event.preventDefault();
    const form = event.target;
    const key = state.series.key;
    if (await upload(key, form.elements.file.files[0], "", form.elements.status)) {
      form.elements.file.value = "";
      const view = ++state.view;
      const series = await api(`/v1/series/${encodeURIComponent(key)}`);
      if (view !== state.view) return;
      state.series = series;
      $("series-facts").replaceChildren();
      renderFacts(series);
      await versionChosen(view);
    }
  }

  // ---- navigation ------------------------------------------------------------------------------------------

  function route() {
    state.view += 1;
    notice("");
    if (!apiKey()) {
      askForKey("");
      return;
    }
    const match = /^#\/series\/(.+)$/.exec(location.hash);
    if (match) showSeries(decodeURIComponent(match[1]));
    else showList(false);
  }

  function start() {
    if (typeof uPlot === "undefined" || typeof readEventStream === "undefined") {
      notice("The dashboard's scripts did not load; reload the page.");
      return;
    }
    $("key-form").addEventListener("submit", submitKey);
    $("forget-key").addEventListener("click", () => {
      if (state.follow) state.follow.abort();
      askForKey("");
    });
    let typing = null;
    $("filter").addEventListener("input", () => {
      clearTimeout(typing);
      typing = setTimeout(() => { state.view += 1; showList(false); }, 250);
    });
    $("filter-form").addEventListener("submit", (event) => { event.preventDefault(); showList(false); });
    $("more-series").addEventListener("click", () => showList(true));
    $("upload-form").addEventListener("submit", submitUpload);
    $("series-upload-form").addEventListener("submit", submitSeriesUpload);
    $("model-select").addEventListener("change", () => { state.view += 1; loadVersions(state.view); });
    $("version-select").addEventListener("change", () => { state.view += 1; versionChosen(state.view); });
    $("train-form").addEventListener("submit", submitTraining);
    $("train-cancel").addEventListener("click", cancelTraining);
    let resizing = null;
    window.addEventListener("resize", () => { clearTimeout(resizing); resizing = setTimeout(resizeCharts, 150); });
    window.addEventListener("hashchange", route);
    updateKeyState();
    route();
  }

  document.addEventListener("DOMContentLoaded", start);
})();
