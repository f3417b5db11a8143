// The deployment page: refresh the status, request metrics, replicas and log tails every few seconds.
(function () {
  const root = document.getElementById("deployment");
  if (!root) return;
  const name = encodeURIComponent(root.dataset.name);
  const text = (id, value) => {
    const el = document.getElementById(id);
    if (el) el.textContent = value === null || value === undefined ? "-" : String(value);
  };
  const cell = (value) => {
    const td = document.createElement("td");
    td.textContent = value === null || value === undefined ? "-" : String(value);
    return td;
  };

  async function refresh() {
    try {
      const res = await fetch(`/api/v1/deployments/${name}`);
      if (!res.ok) return;
      const d = await res.json();
      const status = document.getElementById("status");
      status.textContent = d.status;
      status.className = `status ${d.status}`;
      text("reason", d.reason);
      text("m-requests", d.metrics.requests);
      text("m-errors", d.metrics.errors);
      text("m-p50", d.metrics.p50_ms);
      text("m-p99", d.metrics.p99_ms);
      text("m-rps", d.metrics.requests_per_s);
      text("ready", `${d.replicas_ready} / ${d.replicas_wanted} ready`);
      const body = document.querySelector("#replicas tbody");
      if (d.replicas.length) {
        body.replaceChildren(...d.replicas.map((r) => {
          const tr = document.createElement("tr");
          tr.dataset.index = r.index;
          tr.append(cell(r.index), cell(r.pid), cell(r.port), cell(r.ready ? "yes" : "no"), cell(r.restarts),
            cell(r.started_at ? `${Math.round(Date.now() / 1000 - r.started_at)} s ago` : "-"));
          return tr;
        }));
      }
      const logs = await fetch(`/api/v1/deployments/${name}/logs?lines=40`);
      if (!logs.ok) return;
      const tails = await logs.json();
      for (const [index, lines] of Object.entries(tails)) {
        const pre = document.querySelector(`pre.log[data-index="${index}"]`);
        if (pre) pre.textContent = lines.join("\n");
      }
    } catch (err) {
      // the server is restarting: try again at the next tick
    }
  }
  setInterval(refresh, 3000);
})();
