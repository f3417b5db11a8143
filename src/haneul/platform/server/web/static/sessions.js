// Sessions list: refresh rows every 2 s from the JSON API with the page's own filters; pick
// params/metrics columns (kept in the URL as cols=...), save the current view under a name.
(function () {
  const table = document.getElementById("sessions");
  const body = table.querySelector("tbody");
  const total = document.getElementById("total");
  const cols = table.dataset.cols ? table.dataset.cols.split(",") : [];
  const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));
  const num = (v) => (v === null || v === undefined ? "-" : Number(v).toPrecision(4).replace(/\.?0+(e|$)/, "$1"));
  const cell = (v) => (v === null || v === undefined ? "-" : typeof v === "number" && !Number.isInteger(v) ? num(v) : esc(v));
  const age = (t) => {
    if (!t) return "-";
    let s = Math.max(0, Math.floor(Date.now() / 1000 - t));
    for (const [u, n] of [["d", 86400], ["h", 3600], ["m", 60]]) if (s >= n) return Math.floor(s / n) + u;
    return s + "s";
  };
  function row(s, picked) {
    const metrics = Object.entries(s.metrics || {}).slice(0, 4)
      .map(([k, v]) => `<span class="metric">${esc(k)}=${num(v)}</span>`).join("") +
      (s.metric_count > 4 ? `<span class="muted more">+${s.metric_count - 4} more</span>` : "");
    const tags = Object.entries(s.tags || {}).map(([k, v]) => ` <span class="tag">${esc(k)}=${esc(v)}</span>`).join("");
    const extra = cols.map((c) => `<td class="col-extra">${cell((s.columns || {})[c])}</td>`).join("");
    return `<tr data-id="${s.id}"><td><input type="checkbox" class="pick" value="${s.id}" ${picked.has(String(s.id)) ? "checked" : ""}></td>` +
      `<td><a href="/sessions/${s.id}">${s.id}</a></td><td><a href="/sessions/${s.id}">${esc(s.name)}</a>${tags}</td>` +
      `<td><a href="/projects/${encodeURIComponent(s.project)}">${esc(s.project)}</a></td>` +
      `<td><span class="status ${esc(s.status)}">${esc(s.status)}</span>${s.archived ? ' <span class="muted">archived</span>' : ""}</td>` +
      `<td>${esc(s.owner)}</td><td>${age(s.created_at)}</td>${extra}<td class="metrics">${metrics}</td></tr>`;
  }
  async function refresh() {
    if (document.getElementById("filter-error")) return;  // the table shows nothing until the filter is fixed
    try {
      const query = table.dataset.query + (cols.length ? `&columns=${encodeURIComponent(cols.join(","))}` : "");
      const res = await fetch(`/api/v1/sessions?${query}`);
      if (!res.ok) return;
      const data = await res.json();
      const picked = new Set([...document.querySelectorAll(".pick:checked")].map((e) => e.value));
      if (data.items.length) body.innerHTML = data.items.map((s) => row(s, picked)).join("");
      total.textContent = `${data.total} sessions`;
    } catch (e) { /* server restarting: try again next tick */ }
  }
  document.getElementById("compare-btn").addEventListener("click", () => {
    const ids = [...document.querySelectorAll(".pick:checked")].map((e) => e.value);
    if (ids.length) location.href = `/compare?ids=${ids.join(",")}`;
  });
  // a picked column goes into the URL, so the page (and a saved view) reopens with it
  for (const box of document.querySelectorAll(".col-pick")) {
    box.addEventListener("change", () => {
      const chosen = [...document.querySelectorAll(".col-pick:checked")].map((e) => e.value);
      const url = new URL(location.href);
      url.searchParams.set("cols", chosen.join(","));
      location.href = url.toString();
    });
  }
  document.getElementById("save-view").addEventListener("click", async () => {
    const name = document.getElementById("view-name").value.trim();
    if (!name) return;
    const url = new URL(location.href);
    const res = await fetch("/api/v1/views", {
      method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({name, filter: document.getElementById("filter").value, columns: cols,
                            sort: url.searchParams.get("sort") || "id", desc: url.searchParams.get("desc") !== "false"}),
    });
    if (res.ok) location.reload();
    else alert((await res.json()).error.message);
  });
  setInterval(refresh, 2000);
})();
