// Session page: live log lines and live metric charts over Server-Sent Events.
(function () {
  const root = document.getElementById("session");
  const sid = root.dataset.id;
  const log = document.getElementById("log");
  const charts = document.getElementById("charts");
  const statusEl = document.getElementById("status");
  const series = {};  // key -> {div, x, y}

  function appendLines(lines) {
    const stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.textContent += lines.map((l) => l + "\n").join("");
    if (log.textContent.length > 400000) log.textContent = log.textContent.slice(-300000);
    if (stick) log.scrollTop = log.scrollHeight;
  }
  const logs = new EventSource(`/api/v1/sessions/${sid}/stream/logs?tail=200`);
  logs.addEventListener("lines", (e) => appendLines(JSON.parse(e.data)));
  logs.addEventListener("end", () => { logs.close(); refreshStatus(); });

  function chartFor(key) {
    if (series[key]) return series[key];
    const none = document.getElementById("no-metrics");
    if (none) none.remove();
    const div = document.createElement("div");
    div.className = "chart";
    div.dataset.key = key;
    charts.appendChild(div);
    const s = { div, x: [], y: [] };
    series[key] = s;
    Plotly.newPlot(div, [{ x: s.x, y: s.y, mode: "lines", name: key, line: { width: 1.5 } }],
      { title: { text: key, font: { size: 13 } }, margin: { t: 32, r: 12, b: 32, l: 48 }, xaxis: { title: "step" } },
      { responsive: true, displaylogo: false });
    return s;
  }
  const metrics = new EventSource(`/api/v1/sessions/${sid}/stream/metrics?max_points=2000`);
  metrics.addEventListener("points", (e) => {
    const p = JSON.parse(e.data);
    const s = chartFor(p.key);
    Plotly.extendTraces(s.div, { x: [p.steps], y: [p.values] }, [0], 20000);
  });
  metrics.addEventListener("end", () => { metrics.close(); refreshStatus(); });

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
      if (ck.length) body.innerHTML = ck.map((c) =>
        `<tr><td><a href="/api/v1/sessions/${sid}/checkpoints/${encodeURIComponent(c.name)}">${c.name}</a></td>` +
        `<td>${c.kind}</td><td>${c.size}</td><td><code>${c.sha256.slice(0, 12)}</code></td><td></td></tr>`).join("");
    } catch (e) { /* retry on the next tick */ }
  }
  const timer = setInterval(() => {
    refreshStatus();
    if (!["queued", "running"].includes(root.dataset.status)) clearInterval(timer);
  }, 2000);
})();
