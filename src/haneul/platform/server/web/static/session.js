// Session page: live log lines and live metric charts over Server-Sent Events.
(function () {
  const root = document.getElementById("session");
  const sid = root.dataset.id;
  const log = document.getElementById("log");
  const charts = document.getElementById("charts");
  const statusEl = document.getElementById("status");
  const series = {};  // key -> {div, x, y}
  const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));
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

  // The server drew one container per key of this page. With every key on one page the page
  // follows all keys and adds charts for new ones (up to one page's worth); otherwise it follows
  // exactly the keys it shows.
  const followAll = charts.dataset.followAll === "true";
  const maxCharts = Number(charts.dataset.maxCharts || 24);
  const shown = [...charts.querySelectorAll(".chart[data-key]")];
  function chartFor(key) {
    if (series[key]) return series[key];
    let div = shown.find((d) => d.dataset.key === key);
    if (!div) {
      if (!followAll || Object.keys(series).length >= maxCharts) return null;
      const none = document.getElementById("no-metrics");
      if (none) none.remove();
      div = document.createElement("div");
      div.className = "chart";
      div.dataset.key = key;
      charts.appendChild(div);
    }
    div.textContent = "";
    const s = { div, x: [], y: [] };
    series[key] = s;
    Plotly.newPlot(div, [{ x: s.x, y: s.y, mode: "lines", name: key, line: { width: 1.5 } }],
      { title: { text: key, font: { size: 13 } }, margin: { t: 32, r: 12, b: 32, l: 48 }, xaxis: { title: "step" } },
      { responsive: true, displaylogo: false });
    return s;
  }
  const follow = followAll ? "" : shown.map((d) => `&key=${encodeURIComponent(d.dataset.key)}`).join("");
  if (followAll || shown.length) {
    const metrics = new EventSource(`/api/v1/sessions/${sid}/stream/metrics?max_points=2000${follow}`);
    metrics.addEventListener("points", (e) => {
      const p = JSON.parse(e.data);
      const s = chartFor(p.key);
      if (s) Plotly.extendTraces(s.div, { x: [p.steps], y: [p.values] }, [0], 20000);
    });
    metrics.addEventListener("end", () => { metrics.close(); refreshStatus(); });
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
