// Studies list: redrawn from GET /api/v1/tune/studies every 3 s while any study runs (and once more
// after the last one stops), so launched trials, best values and statuses stay current.
(function () {
  const body = document.querySelector("#studies tbody");
  const {esc, num} = window.haneulFormat;
  const age = (t) => {
    let s = Math.max(0, Math.floor(Date.now() / 1000 - t));
    for (const [u, n] of [["d", 86400], ["h", 3600], ["m", 60]]) if (s >= n) return Math.floor(s / n) + u;
    return s + "s";
  };
  const row = (s) => `<tr data-id="${s.id}"><td>${s.id}</td><td><a href="/tune/${s.id}">${esc(s.name)}</a></td>` +
    `<td><span class="status ${esc(s.status)}">${esc(s.status)}</span></td><td>${s.launched} / ${s.budget.trials}</td>` +
    `<td>${s.best_value === null ? "-" : `${num(s.best_value)} <span class="muted">#${s.best_trial}</span>`}</td>` +
    `<td>${esc(s.sampler)}</td><td>${esc(s.pruner)}</td><td>${age(s.created_at)} ago</td></tr>`;
  let live = true;
  async function refresh() {
    try {
      const res = await fetch("/api/v1/tune/studies");
      if (!res.ok) return;
      const studies = await res.json();
      if (studies.length) body.innerHTML = studies.map(row).join("");
      live = studies.some((s) => s.status === "running");
    } catch (e) { /* server restarting: try again on the next tick */ }
  }
  const timer = setInterval(() => (live ? refresh() : clearInterval(timer)), 3000);
})();
