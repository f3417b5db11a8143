// Session page: one small chart per sys/* key (CPU %, resident memory, GPU use), polled while the
// session runs. The section stays hidden for a session without system metrics (sampling off).
(function () {
  const root = document.getElementById("system");
  if (!root || typeof Plotly === "undefined") return;
  const sid = root.dataset.sid;
  const prefix = root.dataset.prefix;
  const box = document.getElementById("system-charts");
  const drawn = {};  // key -> chart div
  const api = `/api/v1/sessions/${sid}/metrics`;
  const titles = { "sys/cpu_percent": "CPU %", "sys/rss_mb": "resident memory (MiB)" };

  async function refresh() {
    try {
      const res = await fetch(`${api}?q=${encodeURIComponent(prefix)}`);
      const keys = res.ok ? (await res.json()).map((k) => k.key).filter((k) => k.startsWith(prefix)) : [];
      if (keys.length) root.hidden = false;
      for (const key of keys.sort()) {
        const h = await fetch(`${api}/${key.split("/").map(encodeURIComponent).join("/")}?max_points=2000`);
        if (!h.ok) continue;
        const data = await h.json();
        let div = drawn[key];
        if (!div) {
          div = drawn[key] = document.createElement("div");
          div.className = "chart";
          div.dataset.key = key;
          box.appendChild(div);
        }
        Plotly.react(div, [{ x: data.steps, y: data.values, mode: "lines", line: { width: 1.5 }, name: key }],
          { title: { text: titles[key] || key.slice(prefix.length), font: { size: 12 } },
            margin: { t: 28, r: 10, b: 28, l: 48 }, xaxis: { title: "s" } },
          { responsive: true, displaylogo: false });
      }
    } catch (e) { /* the server is restarting: the next tick tries again */ }
    const status = document.getElementById("status");
    if (!status || ["queued", "running"].includes(status.textContent.trim())) setTimeout(refresh, 5000);
  }
  refresh();
})();
