// Session page: live log lines and live metric charts.
//
// Each chart fetches its key's history once (downsampled on the server, with times and the min/max
// band) and then only what arrived after its last point id; the metrics stream says which keys
// have new points. The toolbar's choices (smoothing, log y, x axis, band) live in the URL query, so
// a link reproduces the view.
(function () {
  const root = document.getElementById("session");
  const sid = root.dataset.id;
  const log = document.getElementById("log");
  const charts = document.getElementById("charts");
  const statusEl = document.getElementById("status");
  const {esc} = window.haneulFormat;
  const age = (t) => {
    if (!t) return "-";
    let s = Math.max(0, Math.floor(Date.now() / 1000 - t));
    for (const [u, n] of [["d", 86400], ["h", 3600], ["m", 60]]) if (s >= n) return Math.floor(s / n) + u;
    return s + "s";
  };

  // The placeholder stays until the first line: an empty black box reads as a broken page.
  function appendLines(lines) {
    if (!lines.length) return;
    const empty = document.getElementById("log-empty");
    if (empty) empty.remove();
    const stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.textContent += lines.map((l) => l + "\n").join("");
    if (log.textContent.length > 400000) log.textContent = log.textContent.slice(-300000);
    if (stick) log.scrollTop = log.scrollHeight;
  }
  const logs = new EventSource(`/api/v1/sessions/${sid}/stream/logs?tail=200`);
  logs.addEventListener("lines", (e) => appendLines(JSON.parse(e.data)));
  logs.addEventListener("end", () => {
    logs.close();
    const empty = document.getElementById("log-empty");
    if (empty) empty.textContent = "no output";
    refreshStatus();
  });

  // ------------------------------------------------------------------ chart controls (in the URL)
  const OVERVIEW_POINTS = 2000;   // points per chart for the whole history
  const ZOOM_POINTS = 20000;      // a zoomed window: every point unless the window is huge
  const RELOAD_AFTER = 3 * OVERVIEW_POINTS;  // live points appended before the history is re-fetched
  const X_TITLES = { step: "step", time: "time", rel: "time since start" };
  const view = readView();
  const tools = {
    smooth: document.getElementById("smooth"), smoothValue: document.getElementById("smooth-value"),
    logy: document.getElementById("logy"), xaxis: document.getElementById("xaxis"), band: document.getElementById("band"),
  };

  function readView() {
    const q = new URLSearchParams(location.search);
    const smooth = Math.min(0.99, Math.max(0, Number(q.get("smooth")) || 0));
    const x = X_TITLES[q.get("x")] ? q.get("x") : "step";
    return { smooth, logy: q.get("logy") === "1", x, band: q.get("band") !== "0" };
  }
  // Only choices that differ from the default go into the URL; the key filter and pager keep them.
  function viewParams() {
    const out = [];
    if (view.smooth > 0) out.push(["smooth", String(view.smooth)]);
    if (view.logy) out.push(["logy", "1"]);
    if (view.x !== "step") out.push(["x", view.x]);
    if (!view.band) out.push(["band", "0"]);
    return out;
  }
  function writeView() {
    const q = new URLSearchParams(location.search);
    for (const name of ["smooth", "logy", "x", "band"]) q.delete(name);
    for (const [k, v] of viewParams()) q.set(k, v);
    const search = q.toString();
    history.replaceState(null, "", location.pathname + (search ? "?" + search : "") + location.hash);
    carryView();
  }
  function carryView() {
    const form = document.getElementById("key-filter");
    if (form) {
      form.querySelectorAll("input.view").forEach((el) => el.remove());
      for (const [k, v] of viewParams()) {
        const input = Object.assign(document.createElement("input"), { type: "hidden", name: k, value: v, className: "view" });
        form.appendChild(input);
      }
      form.querySelectorAll("a[href^='?']").forEach((a) => {
        const q = new URLSearchParams(a.getAttribute("href").slice(1));
        for (const name of ["smooth", "logy", "x", "band"]) q.delete(name);
        for (const [k, v] of viewParams()) q.set(k, v);
        a.setAttribute("href", "?" + q.toString());
      });
    }
  }
  if (tools.smooth) {
    tools.smooth.value = view.smooth;
    tools.smoothValue.textContent = view.smooth.toFixed(2);
    tools.logy.checked = view.logy;
    tools.xaxis.value = view.x;
    tools.band.checked = view.band;
    tools.smooth.addEventListener("input", () => {
      view.smooth = Number(tools.smooth.value);
      tools.smoothValue.textContent = view.smooth.toFixed(2);
      changed();
    });
    tools.logy.addEventListener("change", () => { view.logy = tools.logy.checked; changed(); });
    tools.band.addEventListener("change", () => { view.band = tools.band.checked; changed(); });
    tools.xaxis.addEventListener("change", () => {
      view.x = tools.xaxis.value;
      for (const c of Object.values(series)) c.zoom = null;  // a range in one unit means nothing in another
      changed();
    });
    carryView();
  }
  function changed() {
    writeView();
    for (const c of Object.values(series)) draw(c);
  }

  // ------------------------------------------------------------------ drawing
  const ema = haneulEma;  // static/smoothing.js
  const tzShift = new Date().getTimezoneOffset() * 60000;  // date axes show UTC; shift to local time
  const started = Number(root.dataset.started) || null;
  function relUnit(c) {
    const times = c.raw.times;
    const span = times.length ? times[times.length - 1] - origin(c) : 0;
    return span > 7200 ? ["h", 3600] : span > 120 ? ["min", 60] : ["s", 1];
  }
  function origin(c) { return started ?? (c.raw.times.length ? c.raw.times[0] : 0); }
  // x values of points (steps and unix-second times) in the chosen axis
  function toX(c, steps, times) {
    if (view.x === "time") return times.map((t) => t * 1000 - tzShift);
    if (view.x === "rel") {
      const [, per] = relUnit(c), t0 = origin(c);
      return times.map((t) => (t - t0) / per);
    }
    return steps;
  }
  function xTitle(c) { return view.x === "rel" ? `${X_TITLES.rel} (${relUnit(c)[0]})` : X_TITLES[view.x]; }
  const COLOR = "#2563eb", FAINT = "rgba(37, 99, 235, 0.3)", BAND = "rgba(37, 99, 235, 0.15)";

  // Traces: 0 the points as stored, 1 the smoothed line (hidden at smoothing 0), then the band's
  // lower and upper edges (only when the server downsampled and no zoom shows every point).
  function traces(c) {
    const d = c.zoom || c.raw;
    const x = toX(c, d.steps, d.times);
    const smoothing = view.smooth > 0;
    const out = [
      { x, y: d.values, mode: "lines", name: c.key, showlegend: false, hoverinfo: smoothing ? "skip" : "x+y",
        line: { width: smoothing ? 1 : 1.5, color: smoothing ? FAINT : COLOR } },
      { x, y: ema(d.values, view.smooth), mode: "lines", name: `${c.key} (smoothed)`, showlegend: false,
        visible: smoothing, line: { width: 2.2, color: COLOR } },
    ];
    const b = c.band;
    if (view.band && b && !c.zoom) {
      const xs = [], lo = [], hi = [];
      const firsts = toX(c, b.step_first, b.time_first), lasts = toX(c, b.step_last, b.time_last);
      for (let i = 0; i < b.min.length; i++) {
        xs.push(firsts[i], lasts[i]);
        lo.push(b.min[i], b.min[i]);
        hi.push(b.max[i], b.max[i]);
      }
      out.push({ x: xs, y: lo, mode: "lines", name: "min", line: { width: 0 }, hoverinfo: "skip", showlegend: false });
      out.push({ x: xs, y: hi, mode: "lines", name: "max", line: { width: 0 }, fill: "tonexty", fillcolor: BAND,
                 hoverinfo: "skip", showlegend: false });
    }
    return out;
  }
  function layout(c) {
    return {
      title: { text: c.key, font: { size: 13 } }, margin: { t: 32, r: 12, b: 40, l: 56 }, showlegend: false,
      xaxis: { title: { text: xTitle(c), standoff: 4 }, type: view.x === "time" ? "date" : "linear" },
      yaxis: { title: { text: c.key }, type: view.logy ? "log" : "linear" },
      // keeps a user's zoom across live redraws; a new axis kind starts from the whole range
      uirevision: `${view.x}|${view.logy}`,
    };
  }
  function draw(c) {
    if (!c.drawn) {
      c.div.textContent = "";
      c.drawn = true;
      Plotly.newPlot(c.div, traces(c), layout(c), config(c));
      c.div.on("plotly_relayout", (ev) => zoomed(c, ev));
    } else {
      Plotly.react(c.div, traces(c), layout(c), config(c));
    }
  }
  const metricURL = (key) => `/api/v1/sessions/${sid}/metrics/${encodeURIComponent(key)}`;
  function config(c) {
    const file = `session-${sid}-${c.key.replace(/[^A-Za-z0-9._-]+/g, "_")}`;
    return {
      responsive: true, displaylogo: false,
      toImageButtonOptions: { format: "png", filename: file, scale: 2 },
      modeBarButtonsToAdd: [{
        name: "Download CSV (every point in view)", icon: Plotly.Icons.disk,
        click: () => {
          const range = c.zoom ? `&step_min=${c.zoom.step_min}&step_max=${c.zoom.step_max}` : "";
          location.href = `${metricURL(c.key)}?format=csv${range}`;
        },
      }],
    };
  }

  // ------------------------------------------------------------------ data
  // Zooming fetches the visible steps at full resolution; autoscale returns to the overview.
  async function zoomed(c, ev) {
    if (ev["xaxis.autorange"]) {
      if (c.zoom) { c.zoom = null; draw(c); }
      return;
    }
    const r0 = ev["xaxis.range[0]"] ?? (ev["xaxis.range"] || [])[0];
    const r1 = ev["xaxis.range[1]"] ?? (ev["xaxis.range"] || [])[1];
    if (r0 === undefined || r1 === undefined) return;
    const range = stepRange(c, r0, r1);
    if (!range) return;
    const [lo, hi] = range;
    const res = await fetch(`${metricURL(c.key)}?times=1&max_points=${ZOOM_POINTS}&step_min=${lo}&step_max=${hi}`);
    if (!res.ok) return;
    const d = await res.json();
    c.zoom = { steps: d.steps, values: d.values, times: d.times, step_min: lo, step_max: hi };
    draw(c);
  }
  // The steps behind an x range: steps directly, or the loaded points whose times fall inside
  // (widened by one point each side, so the edges of the view stay drawn).
  function stepRange(c, r0, r1) {
    if (view.x === "step") return [Math.max(0, Math.floor(r0)), Math.max(0, Math.ceil(r1))];
    const num = (r) => (typeof r === "number" ? r : Date.parse(String(r).replace(" ", "T") + "Z"));
    const a = num(r0), b = num(r1);
    const d = c.raw, x = toX(c, d.steps, d.times);
    let first = -1, last = -1;
    for (let i = 0; i < x.length; i++) {
      if (x[i] >= a && x[i] <= b) { if (first < 0) first = i; last = i; }
    }
    if (first < 0) return null;
    first = Math.max(0, first - 1);
    last = Math.min(x.length - 1, last + 1);
    let lo = Infinity, hi = -Infinity;
    for (let i = first; i <= last; i++) { lo = Math.min(lo, d.steps[i]); hi = Math.max(hi, d.steps[i]); }
    return [lo, hi];
  }

  // One fetch per chart at a time; a notice during a fetch asks for one more afterwards.
  async function refresh(c) {
    if (c.busy) { c.again = true; return; }
    c.busy = true;
    try {
      if (!c.loaded || c.raw.steps.length > RELOAD_AFTER) {
        const res = await fetch(`${metricURL(c.key)}?times=1&band=1&max_points=${OVERVIEW_POINTS}`);
        if (res.ok) {
          const d = await res.json();
          c.raw = { steps: d.steps, values: d.values, times: d.times };
          c.band = d.band;
          c.lastId = d.last_id;
          c.loaded = true;
          draw(c);
        }
      } else {
        const res = await fetch(`${metricURL(c.key)}?times=1&max_points=${OVERVIEW_POINTS}&after_id=${c.lastId}`);
        if (res.ok) {
          const d = await res.json();
          if (d.steps.length) {
            c.raw.steps.push(...d.steps);
            c.raw.values.push(...d.values);
            c.raw.times.push(...d.times);
            c.lastId = d.last_id;
            if (!c.zoom) draw(c);  // a zoomed chart keeps its window until it zooms out
          }
        }
      }
    } catch (e) { /* the next notice retries */ }
    c.busy = false;
    if (c.again) { c.again = false; refresh(c); }
  }

  // The server drew one container per key of this page. With every key on one page the page
  // follows all keys and adds charts for new ones (up to one page's worth); otherwise it follows
  // exactly the keys it shows.
  const series = {};  // key -> chart state
  const followAll = charts.dataset.followAll === "true";
  const maxCharts = Number(charts.dataset.maxCharts || 24);
  const skipPrefix = charts.dataset.skipPrefix || "";  // sys/* keys: drawn in the System section
  const shown = [...charts.querySelectorAll(".chart[data-key]")];
  function chartFor(key) {
    if (series[key]) return series[key];
    let div = shown.find((d) => d.dataset.key === key);
    if (!div) {
      if (!followAll || Object.keys(series).length >= maxCharts) return null;
      if (skipPrefix && key.startsWith(skipPrefix)) return null;
      const none = document.getElementById("no-metrics");
      if (none) none.remove();
      div = document.createElement("div");
      div.className = "chart";
      div.dataset.key = key;
      charts.appendChild(div);
    }
    const c = { key, div, raw: { steps: [], values: [], times: [] }, band: null, lastId: 0, zoom: null };
    series[key] = c;
    return c;
  }
  for (const div of shown) refresh(chartFor(div.dataset.key));

  // The stream only says which keys have new points (max_points=2 keeps its events small); each
  // chart then fetches exactly what it lacks, with times.
  const follow = followAll ? "" : shown.map((d) => `&key=${encodeURIComponent(d.dataset.key)}`).join("");
  if (followAll || shown.length) {
    const metrics = new EventSource(`/api/v1/sessions/${sid}/stream/metrics?max_points=2${follow}`);
    metrics.addEventListener("points", (e) => {
      const c = chartFor(JSON.parse(e.data).key);
      if (c) refresh(c);
    });
    metrics.addEventListener("end", () => {
      metrics.close();
      for (const c of Object.values(series)) refresh(c);
      refreshStatus();
    });
  }

  function checkpointRow(c) {
    const href = `/api/v1/sessions/${sid}/checkpoints/${encodeURIComponent(c.name)}`;
    return `<tr><td><a href="${href}">${esc(c.name)}</a></td><td>${esc(c.kind)}</td><td>${c.size}</td>` +
      `<td><code>${esc(c.sha256.slice(0, 12))}</code></td><td>${age(c.created_at)}</td></tr>`;
  }
  async function refreshStatus() {
    try {
      const res = await fetch(`/api/v1/sessions/${sid}`);
      const s = await res.json();
      statusEl.textContent = s.status;
      statusEl.className = `status ${s.status}`;
      root.dataset.status = s.status;
      document.getElementById("exit").textContent = (s.exit_code ?? "-") + (s.reason ? ` (${s.reason})` : "");
      const ck = await (await fetch(`/api/v1/sessions/${sid}/checkpoints`)).json();
      const body = document.querySelector("#checkpoints tbody");
      if (ck.length) body.innerHTML = ck.map(checkpointRow).join("");
    } catch (e) { /* retry on the next tick */ }
  }
  const timer = setInterval(() => {
    refreshStatus();
    if (!["queued", "running"].includes(root.dataset.status)) clearInterval(timer);
  }, 2000);
})();

// Pause / Resume / Fork… next to the session's facts: each POSTs to the session's route and reloads.
(function () {
  const root = document.getElementById("lifecycle");
  if (!root) return;
  const sid = document.getElementById("session").dataset.id;
  const say = (text) => { document.getElementById("lifecycle-message").textContent = text; };
  async function post(path, body) {
    const res = await fetch(`/api/v1/sessions/${sid}${path}`, {method: "POST", headers: {"Content-Type": "application/json"},
                                                               body: JSON.stringify(body || {})});
    const answer = await res.json();
    if (!res.ok) { say(answer.error.message); return null; }
    return answer;
  }
  const pause = document.getElementById("pause-btn");
  if (pause) pause.addEventListener("click", async () => {
    if (await post("/pause")) { say("asked the code to save and exit…"); setTimeout(() => location.reload(), 1500); }
  });
  const resume = document.getElementById("resume-btn");
  if (resume) resume.addEventListener("click", async () => { if (await post("/resume")) location.reload(); });
  document.getElementById("fork-btn").addEventListener("click", async () => {
    const extra = prompt("Arguments to append to the command (e.g. --lr 0.01); empty for none:", "");
    if (extra === null) return;
    const s = await post("/fork", {args: extra.split(/\s+/).filter(Boolean)});
    if (s) location.href = `/sessions/${s.id}`;
  });
})();
