// Sessions list: refresh rows every 2 s from the JSON API with the page's own filters.
(function () {
  const table = document.getElementById("sessions");
  const body = table.querySelector("tbody");
  const total = document.getElementById("total");
  const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));
  const num = (v) => (v === null || v === undefined ? "-" : Number(v).toPrecision(4).replace(/\.?0+(e|$)/, "$1"));
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
    return `<tr data-id="${s.id}"><td><input type="checkbox" class="pick" value="${s.id}" ${picked.has(String(s.id)) ? "checked" : ""}></td>` +
      `<td><a href="/sessions/${s.id}">${s.id}</a></td><td><a href="/sessions/${s.id}">${esc(s.name)}</a></td>` +
      `<td><span class="status ${esc(s.status)}">${esc(s.status)}</span></td><td>${esc(s.owner)}</td><td>${age(s.created_at)}</td>` +
      `<td class="metrics">${metrics}</td></tr>`;
  }
  async function refresh() {
    try {
      const query = table.dataset.query.replace(/status=&/, "");
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
  setInterval(refresh, 2000);
})();
