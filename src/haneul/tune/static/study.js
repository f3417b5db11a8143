// A study's page: every trial comes once from GET .../table as compact rows (then, every 2.5 s while
// the study runs, only the trials that can still change), and everything below the header is drawn
// here from them: best-so-far against wall time and compute, parameter importances, a contour of the
// two most important parameters, parallel coordinates, slice plots, each trial's intermediate values
// (pruned trials marked x at their last step), a PBT lineage tree, and a sortable trial table that
// keeps only the rows in view in the DOM (as the sessions list does), so 10,000 trials stay smooth.
// The forms edit the study through the REST API: narrow or widen the space, change the budget,
// enqueue a hand-written trial, stop or resume.
(function () {
  const root = document.getElementById("study");
  const id = root.dataset.id;
  const api = `/api/v1/tune/studies/${id}`;
  const maximize = root.dataset.direction === "maximize";
  const created = Number(root.dataset.created);
  const POLL_MS = 2500;
  const IMPORTANCE_MS = 10000;  // importances cost more than the rest; asked at most this often
  const $ = (x) => document.getElementById(x);
  const {esc, num} = window.haneulFormat;
  const better = (a, b) => (maximize ? a > b : a < b);
  const LAYOUT = {margin: {l: 55, r: 15, t: 32, b: 42}, font: {size: 11}, showlegend: false};
  const CONFIG = {displaylogo: false, responsive: true};

  // ------------------------------------------------------------------ state
  let study = null;         // the study as GET .../studies/{id} gives it
  let columns = {};         // column name -> index in a row
  let params = [];          // parameter names; a row's values for them start at columns.params0
  const rows = new Map();   // trial number -> row (a list)
  let importances = {};
  let importanceAt = 0;
  let completeSeen = -1;    // complete trials when importances were last asked
  let timer = null;

  const col = (r, name) => r[columns[name]];
  const param = (r, i) => r[columns.params0 + i];
  const trialsIn = (...states) => [...rows.values()].filter((r) => states.includes(col(r, "state")));
  const complete = () => trialsIn("complete").filter((r) => col(r, "value") !== null);

  function showError(message) {
    const el = $("tune-error");
    el.textContent = message || "";
    el.hidden = !message;
  }
  async function errorOf(res) {
    try {
      const body = await res.json();
      return (body.error && body.error.message) || body.detail || `HTTP ${res.status}`;
    } catch (e) { return `HTTP ${res.status}`; }
  }
  async function call(method, path, body) {
    const res = await fetch(path, {method, headers: {"Content-Type": "application/json"},
                                   body: body === undefined ? undefined : JSON.stringify(body)});
    if (!res.ok) throw new Error(await errorOf(res));
    return res.json();
  }

  // ------------------------------------------------------------------ loading
  // the first trial that can still change: a running one, else none (ask only for new numbers)
  function after() {
    let last = -1, firstRunning = null;
    for (const [n, r] of rows) {
      last = Math.max(last, n);
      if (col(r, "state") === "running" && (firstRunning === null || n < firstRunning)) firstRunning = n;
    }
    return firstRunning === null ? last : firstRunning - 1;
  }
  async function loadTable() {
    const res = await fetch(`${api}/table?after=${after()}`);
    if (!res.ok) throw new Error(await errorOf(res));
    const data = await res.json();
    columns = Object.fromEntries(data.columns.map((c, i) => [c, i]));
    columns.params0 = data.columns.length;
    let changed = JSON.stringify(data.params) !== JSON.stringify(params);
    if (changed && params.length) {  // a parameter was added: rows already held lack it; take them again
      rows.clear();
      params = data.params;
      study = data.study;
      return loadTable();
    }
    params = data.params;
    for (const r of data.rows) {
      const old = rows.get(r[0]);
      if (!old || JSON.stringify(old) !== JSON.stringify(r)) changed = true;
      rows.set(r[0], r);
    }
    const statusChanged = !study || study.status !== data.study.status || study.best_value !== data.study.best_value;
    study = data.study;
    return changed || statusChanged;
  }
  async function loadImportances(force) {
    const n = complete().length;
    if (!force && (n === completeSeen || Date.now() - importanceAt < IMPORTANCE_MS)) return;
    importanceAt = Date.now();
    completeSeen = n;
    const res = await fetch(`${api}/importances`);
    if (res.ok) importances = await res.json();
    drawImportances();
    drawContour();
  }
  async function loadIntermediate() {
    const res = await fetch(`${api}/intermediate?limit=300`);
    if (res.ok) drawIntermediate(await res.json());
  }

  let polling = false;  // a slow answer must not overlap the next tick's request
  async function poll() {
    if (polling) return;
    polling = true;
    try {
      const changed = await loadTable();
      if (changed) {
        drawHeader();
        table.refresh();
        drawPlots();
        await loadIntermediate();
      }
      await loadImportances(false);
      if (study.status !== "running") stopPolling();
    } catch (e) { /* the server restarting: try again on the next tick */ } finally {
      polling = false;
    }
  }
  function startPolling() {
    if (timer === null) timer = setInterval(poll, POLL_MS);
  }
  function stopPolling() {
    clearInterval(timer);
    timer = null;
  }

  // ------------------------------------------------------------------ header
  function drawHeader() {
    const s = study;
    const status = $("study-status");
    status.textContent = s.status;
    status.className = `status ${s.status}`;
    root.dataset.status = s.status;
    $("study-reason").textContent = s.reason || "-";
    $("study-best").textContent = s.best_value === null ? "-" : `${num(s.best_value)} (trial ${s.best_trial})`;
    const best = s.best_trial === null ? null : rows.get(s.best_trial);
    $("study-best-params").textContent = best
      ? params.map((p, i) => (param(best, i) === null || param(best, i) === undefined ? null : `${p}=${typeof param(best, i) === "number" ? num(param(best, i)) : param(best, i)}`)).filter(Boolean).join(", ")
      : "-";
    const counts = Object.entries(s.trials).sort().map(([k, v]) => ` · ${v} ${k}`).join("");
    $("study-trials").textContent = `${s.launched} / ${s.budget.trials} launched${counts}`;
    const b = s.budget;
    $("study-budget").textContent = `${b.concurrent} at a time · ${b.cpus} cpus, ${b.gpus} gpus per trial` +
      (b.wall_time ? ` · wall time ${Math.round(b.wall_time)} s` : "");
    $("study-elapsed").textContent = `${Math.round(s.elapsed)} s`;
    $("stop-btn").hidden = s.status !== "running";
    $("resume-btn").hidden = s.status === "running";
  }

  // ------------------------------------------------------------------ plots
  const react = (el, traces, layout) => Plotly.react(el, traces, Object.assign({}, LAYOUT, layout), CONFIG);
  const space = () => (study && study.spec.space) || {};
  const isNumeric = (p) => space()[p] ? space()[p].type !== "categorical" : rows.size > 0 &&
    [...rows.values()].every((r) => { const v = param(r, params.indexOf(p)); return v === null || v === undefined || typeof v === "number"; });
  const isLog = (p) => Boolean(space()[p] && space()[p].log);
  const scatter = (n) => (n > 2000 ? "scattergl" : "scatter");

  function drawPlots() {
    drawHistory();
    drawParallel();
    drawSlices();
    drawContour();
    drawLineage();
  }

  // best so far against wall time (since the study was created) and against summed compute
  function drawHistory() {
    const ended = [...rows.values()].filter((r) => col(r, "ended_at") !== null)
      .sort((a, b) => col(a, "ended_at") - col(b, "ended_at"));
    const wall = {x: [], y: []}, compute = {x: [], y: []}, points = {x: [], y: [], text: []};
    let best = null, spent = 0;
    for (const r of ended) {
      spent += col(r, "compute_s") || 0;
      const v = col(r, "value");
      if (col(r, "state") === "complete" && v !== null) {
        points.x.push(col(r, "ended_at") - created);
        points.y.push(v);
        points.text.push(`trial ${col(r, "number")}`);
        if (best === null || better(v, best)) best = v;
      }
      if (best === null) continue;
      wall.x.push(col(r, "ended_at") - created);
      wall.y.push(best);
      compute.x.push(spent);
      compute.y.push(best);
    }
    const line = {mode: "lines", line: {shape: "hv", color: "#2563eb"}, name: "best so far"};
    react($("plot-history"), [
      {type: scatter(points.x.length), mode: "markers", x: points.x, y: points.y, text: points.text,
       marker: {size: 4, color: "#94a3b8"}, name: "trial"},
      {type: "scatter", x: wall.x, y: wall.y, ...line}],
    {title: {text: "best so far / wall time"}, xaxis: {title: {text: "seconds since created"}}});
    react($("plot-compute"), [{type: "scatter", x: compute.x, y: compute.y, ...line}],
      {title: {text: "best so far / compute"}, xaxis: {title: {text: "trial seconds, summed"}}});
  }

  function dimension(p, i, trials) {
    const values = trials.map((r) => param(r, i));
    if (isNumeric(p)) {
      return {label: p, values: values.map((v) => (v === null || v === undefined ? NaN : isLog(p) ? Math.log10(v) : v)),
              ...(isLog(p) ? {tickformat: ".2f", label: `log10 ${p}`} : {})};
    }
    const choices = [...new Set(values.map(String))].sort();
    return {label: p, values: values.map((v) => choices.indexOf(String(v))), tickvals: choices.map((_, k) => k),
            ticktext: choices};
  }
  // the best PARALLEL_MAX complete trials: more lines hide each other and take seconds to draw
  const PARALLEL_MAX = 1000;
  function drawParallel() {
    const all = complete();
    const trials = all.length <= PARALLEL_MAX ? all
      : all.sort((a, b) => (better(col(a, "value"), col(b, "value")) ? -1 : 1)).slice(0, PARALLEL_MAX);
    const dims = params.map((p, i) => dimension(p, i, trials));
    const values = trials.map((r) => col(r, "value"));
    dims.push({label: study.objective.metric, values});
    const which = trials.length < all.length ? `the best ${trials.length} of ${all.length} complete trials` : "complete trials";
    react($("plot-parallel"), [{type: "parcoords", dimensions: dims,
      line: {color: values, colorscale: "Viridis", reversescale: !maximize, showscale: true}}],
    {title: {text: `parallel coordinates (${which})`}, margin: {l: 60, r: 60, t: 70, b: 30}});
  }

  function drawSlices() {
    const holder = $("plot-slices");
    const shown = params.slice(0, 12);
    for (const el of [...holder.children]) if (!shown.includes(el.dataset.param)) el.remove();
    const trials = complete();
    const values = trials.map((r) => col(r, "value"));
    const numbers = trials.map((r) => col(r, "number"));
    shown.forEach((p, i) => {
      let el = holder.querySelector(`[data-param="${CSS.escape(p)}"]`);
      if (!el) {
        el = document.createElement("div");
        el.className = "chart slice";
        el.dataset.param = p;
        holder.appendChild(el);
      }
      const xs = trials.map((r) => param(r, i));
      react(el, [{type: scatter(xs.length), mode: "markers", x: xs, y: values, text: numbers.map((n) => `trial ${n}`),
                  marker: {size: 5, color: numbers, colorscale: "Blues", showscale: false}}],
        {title: {text: `slice: ${p}`}, xaxis: {title: {text: p}, type: isLog(p) ? "log" : isNumeric(p) ? "linear" : "category"},
         yaxis: {title: {text: study.objective.metric}}});
    });
  }

  // the two most important numeric parameters (by the last importances; else the first two)
  function contourPair() {
    const numeric = params.filter(isNumeric);
    const ranked = Object.keys(importances).filter((p) => numeric.includes(p));
    const pair = [...ranked, ...numeric.filter((p) => !ranked.includes(p))].slice(0, 2);
    return pair.length === 2 ? pair : null;
  }
  function drawContour() {
    const el = $("plot-contour");
    const pair = contourPair();
    if (!pair || !study) {
      react(el, [], {title: {text: "contour: needs two numeric parameters"}});
      return;
    }
    const [px, py] = pair;
    const ix = params.indexOf(px), iy = params.indexOf(py);
    const tx = (p, v) => (isLog(p) ? Math.log10(v) : v);
    const pts = complete().filter((r) => typeof param(r, ix) === "number" && typeof param(r, iy) === "number")
      .map((r) => [tx(px, param(r, ix)), tx(py, param(r, iy)), col(r, "value")]);
    const traces = [];
    if (pts.length >= 3) {
      // the mean value in each cell of a grid over the sampled range (at most 20 cells a side, fewer
      // for a parameter with fewer distinct values, so a stepped one leaves no empty columns);
      // empty cells are interpolated
      const cells = [0, 1].map((k) => Math.max(1, Math.min(20, new Set(pts.map((q) => q[k])).size)));
      const lo = [0, 1].map((k) => Math.min(...pts.map((q) => q[k])));
      const hi = [0, 1].map((k) => Math.max(...pts.map((q) => q[k])));
      const width = [0, 1].map((k) => (hi[k] - lo[k]) / cells[k] || 1);
      const sum = Array.from({length: cells[1]}, () => new Array(cells[0]).fill(0));
      const count = Array.from({length: cells[1]}, () => new Array(cells[0]).fill(0));
      for (const [x, y, v] of pts) {
        const cx = Math.min(cells[0] - 1, Math.floor((x - lo[0]) / width[0]));
        const cy = Math.min(cells[1] - 1, Math.floor((y - lo[1]) / width[1]));
        sum[cy][cx] += v;
        count[cy][cx] += 1;
      }
      const z = sum.map((line, cy) => line.map((s, cx) => (count[cy][cx] ? s / count[cy][cx] : null)));
      const centre = (k) => Array.from({length: cells[k]}, (_, c) => lo[k] + (c + 0.5) * width[k]);
      traces.push({type: "contour", x: centre(0), y: centre(1), z, connectgaps: true, colorscale: "Viridis",
                   reversescale: !maximize, contours: {coloring: "heatmap"}, colorbar: {thickness: 10}});
    }
    traces.push({type: scatter(pts.length), mode: "markers", x: pts.map((q) => q[0]), y: pts.map((q) => q[1]),
                 marker: {size: 4, color: "#111827", opacity: 0.5}});
    const axis = (p) => ({title: {text: isLog(p) ? `log10 ${p}` : p}});
    react(el, traces, {title: {text: `contour: ${px} × ${py}`}, xaxis: axis(px), yaxis: axis(py)});
  }

  function drawImportances() {
    const entries = Object.entries(importances).sort((a, b) => a[1] - b[1]);
    react($("plot-importance"), [{type: "bar", orientation: "h", x: entries.map((e) => e[1]), y: entries.map((e) => e[0]),
                                  marker: {color: "#2563eb"}}],
      {title: {text: entries.length ? "parameter importances (PED-ANOVA)" : "importances: needs more complete trials"},
       margin: {l: 90, r: 15, t: 32, b: 30}});
  }

  // each trial's intermediate values, one trace per state (trials separated by gaps), pruned ones
  // marked x at the step where the pruner stopped them
  function drawIntermediate(list) {
    const colours = {complete: "#2563eb", pruned: "#dc2626", running: "#16a34a"};
    const groups = {};
    const marks = {x: [], y: [], text: []};
    for (const t of list) {
      const g = groups[t.state] || (groups[t.state] = {x: [], y: [], text: []});
      t.steps.forEach((s, k) => { g.x.push(s); g.y.push(t.values[k]); g.text.push(`trial ${t.number}`); });
      g.x.push(null); g.y.push(null); g.text.push("");
      if (t.state === "pruned" && t.steps.length) {
        marks.x.push(t.steps[t.steps.length - 1]);
        marks.y.push(t.values[t.values.length - 1]);
        marks.text.push(`trial ${t.number} pruned`);
      }
    }
    const traces = Object.entries(groups).map(([state, g]) => ({
      type: "scatter", mode: "lines", name: state, x: g.x, y: g.y, text: g.text, connectgaps: false,
      line: {width: 1, color: colours[state] || "#9ca3af"}, opacity: 0.7}));
    traces.push({type: "scatter", mode: "markers", name: "pruned here", x: marks.x, y: marks.y, text: marks.text,
                 marker: {symbol: "x", size: 9, color: "#dc2626"}});
    react($("plot-intermediate"), traces, {title: {text: "intermediate values (x: pruned)"}, showlegend: true,
      xaxis: {title: {text: "step"}}, yaxis: {title: {text: study ? study.objective.metric : ""}}});
  }

  // PBT: a tree of trials, each at (generation, number): generation 0 started fresh, a fork is one
  // generation after the trial whose checkpoint it started from, and an edge joins the two
  function drawLineage() {
    const el = $("plot-lineage");
    const all = [...rows.values()].sort((a, b) => col(a, "number") - col(b, "number"));
    if (!all.some((r) => col(r, "parent_trial") !== null)) return;
    el.hidden = false;
    const depth = new Map();
    for (const r of all) {  // a parent is always numbered below its forks
      const parent = col(r, "parent_trial");
      depth.set(col(r, "number"), depth.has(parent) ? depth.get(parent) + 1 : 0);
    }
    const at = (r) => depth.get(col(r, "number"));
    const edges = {x: [], y: []};
    for (const r of all) {
      const parent = rows.get(col(r, "parent_trial"));
      if (!parent) continue;
      edges.x.push(at(parent), at(r), null);
      edges.y.push(col(parent, "number"), col(r, "number"), null);
    }
    react(el, [
      {type: "scatter", mode: "lines", x: edges.x, y: edges.y, line: {color: "#cbd5e1", width: 1}, hoverinfo: "skip"},
      {type: "scatter", mode: "markers", x: all.map(at), y: all.map((r) => col(r, "number")),
       text: all.map((r) => `trial ${col(r, "number")}: ${col(r, "state")} ${num(col(r, "value"))}`),
       marker: {size: 8, color: all.map((r) => col(r, "value")), colorscale: "Viridis", reversescale: !maximize,
                showscale: true}}],
    {title: {text: "PBT lineage (edges: forked from)"}, xaxis: {title: {text: "generation"}, dtick: 1},
     yaxis: {title: {text: "trial"}}});
  }

  // ------------------------------------------------------------------ the trial table
  const table = (function () {
    const el = $("trials");
    const head = el.tHead.rows[0];
    const body = el.tBodies[0];
    const scroller = $("trials-scroll");
    const MARGIN = 30;
    let order = [];   // trial numbers in the current sort
    let sortKey = "number", desc = false;
    let rowHeight = 30, measured = false, drawn = null;
    const keys = () => ["number", "state", "value", ...params.map((p) => `params.${p}`), "last_step", "compute_s"];
    const value = (r, key) => (key.startsWith("params.") ? param(r, params.indexOf(key.slice(7))) : col(r, key));
    function header() {
      head.innerHTML = keys().map((k) => `<th><a href="#" data-key="${esc(k)}">${esc(k.replace(/^params\./, ""))}` +
        `${k === sortKey ? (desc ? " ▾" : " ▴") : ""}</a></th>`).join("") + "<th>session</th>";
    }
    function compare(a, b) {
      const x = value(a, sortKey), y = value(b, sortKey);
      const missing = (v) => v === null || v === undefined;
      if (missing(x) || missing(y)) return missing(x) - missing(y) || col(a, "number") - col(b, "number");
      const c = x < y ? -1 : x > y ? 1 : col(a, "number") - col(b, "number");
      return desc ? -c : c;
    }
    function cell(v) {
      if (v === null || v === undefined) return "-";
      return typeof v === "number" && !Number.isInteger(v) ? num(v) : esc(v);
    }
    function line(r) {
      const n = col(r, "number"), sid = col(r, "session_id");
      const state = col(r, "state"), reason = col(r, "reason");
      const link = (text) => (sid === null ? text : `<a href="/sessions/${sid}">${text}</a>`);
      return `<tr data-number="${n}"><td>${link(n)}</td>` +
        `<td><span class="status ${esc(state)}"${reason ? ` title="${esc(reason)}"` : ""}>${esc(state)}</span></td>` +
        `<td>${cell(col(r, "value"))}</td>${params.map((_, i) => `<td>${cell(param(r, i))}</td>`).join("")}` +
        `<td>${cell(col(r, "last_step"))}</td><td>${cell(col(r, "compute_s"))}</td><td>${sid === null ? "-" : link(`#${sid}`)}</td></tr>`;
    }
    const ncols = () => head.cells.length;
    const spacer = (n) => (n > 0 ? `<tr class="spacer" aria-hidden="true"><td colspan="${ncols()}" style="height:${n * rowHeight}px"></td></tr>` : "");
    function render(force) {
      const total = order.length;
      if (!total) {
        body.innerHTML = `<tr><td colspan="${ncols()}" class="muted">No trials yet.</td></tr>`;
        drawn = null;
        return;
      }
      const top = Math.max(0, scroller.scrollTop - el.tHead.getBoundingClientRect().height);
      const a = Math.floor(top / rowHeight), b = Math.ceil((top + scroller.clientHeight) / rowHeight) + 1;
      const from = Math.max(0, Math.floor((a - MARGIN) / 10) * 10), to = Math.min(total, Math.ceil((b + MARGIN) / 10) * 10);
      if (!force && drawn && drawn[0] === from && drawn[1] === to) return;
      drawn = [from, to];
      const html = [];
      for (let i = from; i < to; i++) html.push(line(rows.get(order[i])));
      body.innerHTML = spacer(from) + html.join("") + spacer(total - to);
      if (!measured) {
        const first = body.querySelector("tr[data-number]");
        if (first && first.getBoundingClientRect().height) {
          rowHeight = first.getBoundingClientRect().height;
          measured = true;
          render(true);
        }
      }
    }
    function refresh() {
      header();
      order = [...rows.values()].sort(compare).map((r) => col(r, "number"));
      $("trial-total").textContent = `${order.length} trials`;
      render(true);
    }
    head.addEventListener("click", (e) => {
      const a = e.target.closest("a[data-key]");
      if (!a) return;
      e.preventDefault();
      desc = a.dataset.key === sortKey ? !desc : a.dataset.key === "value" ? maximize : false;
      sortKey = a.dataset.key;
      refresh();
    });
    scroller.addEventListener("scroll", () => render(false), {passive: true});
    window.addEventListener("resize", () => render(false));
    return {refresh};
  })();

  // ------------------------------------------------------------------ editing
  function parseChoice(text) {
    const t = text.trim();
    if (t === "true" || t === "false") return t === "true";
    return t !== "" && Number.isFinite(Number(t)) ? Number(t) : t;
  }
  $("edit-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    showError("");
    const form = e.target;
    const changes = {};
    const edited = {};
    for (const tr of form.querySelectorAll("tr[data-param]")) {
      const name = tr.dataset.param;
      const now = Object.assign({}, space()[name]);
      if (tr.dataset.type === "categorical") {
        const added = tr.querySelector("input[name=add]").value.split(",").filter((c) => c.trim()).map(parseChoice);
        if (!added.length) continue;
        now.choices = [...now.choices, ...added.filter((c) => !now.choices.includes(c))];
      } else {
        const low = tr.querySelector("input[name=low]").value.trim(), high = tr.querySelector("input[name=high]").value.trim();
        if (Number(low) === now.low && Number(high) === now.high) continue;
        now.low = low === "" ? low : Number(low);
        now.high = high === "" ? high : Number(high);
      }
      edited[name] = now;
    }
    if (Object.keys(edited).length) changes.space = edited;
    const budget = {};
    for (const key of ["trials", "concurrent"]) {
      const v = Number(form.elements[key].value);
      if (v !== study.budget[key]) budget[key] = v;
    }
    if (Object.keys(budget).length) changes.budget = budget;
    if (!Object.keys(changes).length) {
      $("edit-message").textContent = "nothing changed";
      return;
    }
    try {
      study = await call("PATCH", api, changes);
      for (const input of form.querySelectorAll("input[name=add]")) input.value = "";
      $("edit-message").textContent = "applied: trials launched from now on follow it";
      drawHeader();
      if (study.status === "running") startPolling();
    } catch (err) {
      showError(err.message);
    }
  });
  $("enqueue-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    showError("");
    const values = {};
    for (const input of e.target.querySelectorAll("input[data-type]")) {
      const text = input.value.trim();
      if (text === "") continue;
      if (input.dataset.type === "categorical") {
        const choices = (space()[input.name] || {}).choices || [];
        const match = choices.find((c) => String(c) === text);
        values[input.name] = match === undefined ? text : match;
      } else {
        values[input.name] = Number.isFinite(Number(text)) ? Number(text) : text;
      }
    }
    try {
      await call("POST", `${api}/trials`, {params: values});
      $("enqueue-message").textContent = "queued: the next trial launched uses these parameters";
      startPolling();
    } catch (err) {
      showError(err.message);
    }
  });
  for (const [button, action] of [["stop-btn", "stop"], ["resume-btn", "resume"]]) {
    $(button).addEventListener("click", async () => {
      showError("");
      try {
        study = await call("POST", `${api}/${action}`);
        drawHeader();
        if (study.status === "running") startPolling();
      } catch (err) {
        showError(err.message);
      }
    });
  }

  // ------------------------------------------------------------------ start
  (async function () {
    try {
      await loadTable();
      drawHeader();
      table.refresh();
      await new Promise((done) => requestAnimationFrame(() => setTimeout(done)));  // show the table first
      drawPlots();
      // one after the other: the first requests of a server load Optuna, which two at once can trip
      await loadIntermediate();
      await loadImportances(true);
    } catch (err) {
      showError(err.message);
    }
    if (study && study.status === "running") startPolling();
  })();
})();
