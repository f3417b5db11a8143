// Compare page: one chart per chosen metric with every session overlaid (server-downsampled to
// 2,000 points each), and a parallel-coordinates plot of the params that differ against a metric's
// latest value. The page's data (sessions, chosen keys, params) comes embedded in the page.
(function () {
  const holder = document.getElementById("compare-data");
  if (!holder) return;
  const data = JSON.parse(holder.textContent);
  const label = (s) => `${s.name} #${s.id}`;
  const config = { responsive: true, displaylogo: false };

  // Smoothing and log y, as on the session page, kept in the URL (?smooth=0.9&logy=1).
  const q = new URLSearchParams(location.search);
  const view = { smooth: Math.min(0.99, Math.max(0, Number(q.get("smooth")) || 0)), logy: q.get("logy") === "1" };
  const smooth = document.getElementById("smooth"), smoothValue = document.getElementById("smooth-value");
  const logy = document.getElementById("logy");
  const ema = haneulEma;  // static/smoothing.js
  const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  const faint = (hex) => `rgba(${parseInt(hex.slice(1, 3), 16)}, ${parseInt(hex.slice(3, 5), 16)}, ${parseInt(hex.slice(5, 7), 16)}, 0.25)`;

  async function fetchHistory(s, key) {
    const res = await fetch(`/api/v1/sessions/${s.id}/metrics/${encodeURIComponent(key)}?max_points=2000`);
    if (!res.ok) return null;  // this session never reported the key
    return await res.json();
  }
  // One trace per session named `name #id`; with smoothing on, the smoothed lines come first (in
  // the legend) and each session's raw line follows, faint, in the same colour.
  function traces(loaded) {
    const lines = [], raws = [];
    loaded.forEach(([s, d], i) => {
      if (!d) return;
      const color = COLORS[i % COLORS.length];
      lines.push({ x: d.steps, y: ema(d.values, view.smooth), mode: "lines", name: label(s), legendgroup: String(s.id),
                   line: { width: view.smooth > 0 ? 2 : 1.6, color } });
      if (view.smooth > 0) {
        raws.push({ x: d.steps, y: d.values, mode: "lines", name: `${label(s)} (raw)`, legendgroup: String(s.id),
                    showlegend: false, hoverinfo: "skip", line: { width: 1, color: faint(color) } });
      }
    });
    return [...lines, ...raws];
  }
  const charts = [];
  function draw(chart) {
    Plotly.react(chart.div, traces(chart.loaded), {
      title: { text: chart.key, font: { size: 14 } }, margin: { t: 40, r: 16, b: 44, l: 60 },
      xaxis: { title: { text: "step" } }, yaxis: { title: { text: chart.key }, type: view.logy ? "log" : "linear" },
      legend: { orientation: "h", y: -0.2 }, uirevision: String(view.logy),
    }, config);
  }
  for (const div of document.querySelectorAll(".compare-chart[data-key]")) {
    const key = div.dataset.key;
    Promise.all(data.sessions.map(async (s) => [s, await fetchHistory(s, key)])).then((loaded) => {
      div.textContent = "";
      const chart = { div, key, loaded };
      charts.push(chart);
      draw(chart);
    });
  }
  function changed() {
    const params = new URLSearchParams(location.search);
    params.delete("smooth");
    params.delete("logy");
    if (view.smooth > 0) params.set("smooth", String(view.smooth));
    if (view.logy) params.set("logy", "1");
    history.replaceState(null, "", `${location.pathname}?${params}`);
    carryView();
    charts.forEach(draw);
  }
  // the form that picks sessions and keys keeps the view too
  function carryView() {
    const form = document.querySelector("form.compare-form");
    form.querySelectorAll("input.view").forEach((el) => el.remove());
    const add = (name, value) => form.appendChild(Object.assign(document.createElement("input"),
      { type: "hidden", name, value, className: "view" }));
    if (view.smooth > 0) add("smooth", String(view.smooth));
    if (view.logy) add("logy", "1");
  }
  if (smooth) {
    smooth.value = view.smooth;
    smoothValue.textContent = view.smooth.toFixed(2);
    logy.checked = view.logy;
    smooth.addEventListener("input", () => {
      view.smooth = Number(smooth.value);
      smoothValue.textContent = view.smooth.toFixed(2);
      changed();
    });
    logy.addEventListener("change", () => { view.logy = logy.checked; changed(); });
    carryView();
  }

  // Parallel coordinates: one axis per differing numeric param, the last axis the metric, one line
  // per session coloured by that metric.
  const pc = document.getElementById("parcoords");
  const pick = document.getElementById("parcoords-metric");
  function drawParcoords() {
    const key = pick.value;
    const rows = data.sessions.filter((s) => typeof data.latest[s.id][key] === "number");
    if (!rows.length) {
      pc.textContent = `No session has a value of ${key} yet.`;
      return;
    }
    const metric = rows.map((s) => data.latest[s.id][key]);
    const dimensions = data.numeric.map((p) => ({ label: p, values: rows.map((s) => data.params[s.id][p]) }));
    dimensions.push({ label: `${key} (latest)`, values: metric });
    pc.textContent = "";
    Plotly.react(pc, [{
      type: "parcoords", dimensions,
      line: { color: metric, colorscale: "Viridis", showscale: true, colorbar: { title: { text: key } } },
      customdata: rows.map(label),
    }], { margin: { t: 48, r: 96, b: 24, l: 64 } }, config);
  }
  if (pc && pick) {
    pick.addEventListener("change", drawParcoords);
    drawParcoords();
  }
})();
