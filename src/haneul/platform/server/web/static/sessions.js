// Sessions list: one scroll area over every matching session. The table holds only the rows in view
// plus a margin, between two spacer rows that stand for the rest; rows come from the JSON API in
// blocks of the page's size (with the page's filter, sort, columns and archived switch), fetched as
// they scroll into view and kept; every 2 s the blocks in view are fetched again. Also: pick
// params/metrics/tags columns from every key of the matching sessions (kept in the URL as cols=...),
// compare ticked sessions, save the current view under a name.
(function () {
  const table = document.getElementById("sessions");
  const body = table.querySelector("tbody");
  const scroller = document.getElementById("sessions-scroll");
  const totalEl = document.getElementById("total");
  const cols = table.dataset.cols ? table.dataset.cols.split(",") : [];
  const query = table.dataset.query + (cols.length ? `&columns=${encodeURIComponent(cols.join(","))}` : "");
  const BLOCK = Number(table.dataset.block) || 50;
  const MARGIN = 40;      // rows rendered above and below the visible ones
  const STEP = 10;        // the rendered window moves in steps of this many rows
  const MAX_BLOCKS = 60;  // blocks kept; the farthest from view are dropped first
  const ncols = table.tHead.rows[0].cells.length;
  const {esc, num} = window.haneulFormat;
  const cell = (v) => (v === null || v === undefined ? "-" : typeof v === "number" && !Number.isInteger(v) ? num(v) : esc(v));
  const age = (t) => {
    if (!t) return "-";
    let s = Math.max(0, Math.floor(Date.now() / 1000 - t));
    for (const [u, n] of [["d", 86400], ["h", 3600], ["m", 60]]) if (s >= n) return Math.floor(s / n) + u;
    return s + "s";
  };
  function row(s) {
    const metrics = Object.entries(s.metrics || {}).slice(0, 4)
      .map(([k, v]) => `<span class="metric">${esc(k)}=${num(v)}</span>`).join("") +
      (s.metric_count > 4 ? `<span class="muted more">+${s.metric_count - 4} more</span>` : "");
    const tags = Object.entries(s.tags || {}).map(([k, v]) => ` <span class="tag">${esc(k)}=${esc(v)}</span>`).join("");
    const extra = cols.map((c) => `<td class="col-extra">${cell((s.columns || {})[c])}</td>`).join("");
    return `<tr data-id="${s.id}"><td><input type="checkbox" class="pick" value="${s.id}"></td>` +
      `<td><a href="/sessions/${s.id}">${s.id}</a></td><td><a href="/sessions/${s.id}">${esc(s.name)}</a>${tags}</td>` +
      `<td><a href="/projects/${encodeURIComponent(s.project)}">${esc(s.project)}</a></td>` +
      `<td><span class="status ${esc(s.status)}">${esc(s.status)}</span>${s.archived ? ' <span class="muted">archived</span>' : ""}</td>` +
      `<td>${esc(s.owner)}</td><td>${age(s.created_at)}</td>${extra}<td class="metrics">${metrics}</td></tr>`;
  }

  // ticked sessions, including those scrolled out of the table
  const picked = new Set([...body.querySelectorAll(".pick:checked")].map((e) => e.value));
  body.addEventListener("change", (e) => {
    if (!e.target.classList.contains("pick")) return;
    if (e.target.checked) picked.add(e.target.value); else picked.delete(e.target.value);
  });
  document.getElementById("compare-btn").addEventListener("click", () => {
    if (picked.size) location.href = `/compare?ids=${[...picked].join(",")}`;
  });

  // a bad filter shows its message above an empty table until it is fixed: nothing to scroll or refresh
  if (!document.getElementById("filter-error")) {
    let total = Number(table.dataset.total) || 0;
    let generation = 0;  // bumped on each refresh tick: blocks fetched before it are stale
    const blocks = new Map();  // block number -> {rows: [html], generation}
    const loading = new Set();
    const served = [...body.querySelectorAll("tr[data-id]")];
    const emptyRow = served.length ? `<tr><td colspan="${ncols}" class="muted">No session matches.</td></tr>` : body.innerHTML;
    // rows have one fixed height (app.css); it is measured on the first row drawn
    let rowHeight = 32, measured = false;
    const measure = () => {
      const r = body.querySelector("tr[data-id]");
      if (r && r.getBoundingClientRect().height) [rowHeight, measured] = [r.getBoundingClientRect().height, true];
      return measured;
    };
    measure();
    const start = Number(table.dataset.offset) || 0;
    if (served.length) blocks.set(Math.floor(start / BLOCK), {rows: served.map((r) => r.outerHTML), generation});
    let window_ = null;  // [from, to, total]: rows from..to-1 of total are in the table now
    let loadTimer = null;

    const spacer = (rows) => (rows > 0
      ? `<tr class="spacer" aria-hidden="true"><td colspan="${ncols}" style="height:${rows * rowHeight}px"></td></tr>` : "");
    function visibleRange() {
      const top = Math.max(0, scroller.scrollTop - table.tHead.getBoundingClientRect().height);
      const from = Math.floor(top / rowHeight);
      return [from, Math.min(total, Math.ceil((top + scroller.clientHeight) / rowHeight) + 1)];
    }
    function render(force) {
      if (!total) {
        window_ = null;
        body.innerHTML = emptyRow;
        return;
      }
      const [a, b] = visibleRange();
      const from = Math.max(0, Math.floor((a - MARGIN) / STEP) * STEP);
      const to = Math.min(total, Math.ceil((b + MARGIN) / STEP) * STEP);
      const same = window_ && window_[0] === from && window_[1] === to && window_[2] === total;
      if (same && !force) return;
      const rows = [];
      for (let i = from; i < to; i++) {
        const block = blocks.get(Math.floor(i / BLOCK));
        const r = block && block.rows[i % BLOCK];
        rows.push(r || `<tr class="loading"><td colspan="${ncols}" class="muted">…</td></tr>`);
      }
      if (same) {
        // the same rows: replace only those whose content changed, so a row being clicked stays put
        const drawn = body.querySelectorAll(":scope > tr:not(.spacer)");
        rows.forEach((html, k) => {
          const t = document.createElement("template");
          t.innerHTML = html;
          const fresh = t.content.firstElementChild;
          if (signature(fresh) === signature(drawn[k])) return;
          drawn[k].replaceWith(fresh);
          const box = fresh.querySelector(".pick");
          if (box) box.checked = picked.has(box.value);
        });
        return;
      }
      window_ = [from, to, total];
      body.innerHTML = spacer(from) + rows.join("") + spacer(total - to);
      for (const box of body.querySelectorAll(".pick")) box.checked = picked.has(box.value);
      if (!measured && measure()) render(true);  // the first rows ever drawn: now their height is known
    }
    // what a row shows (a row drawn by the server and the same row drawn here differ only in spacing)
    const signature = (tr) => tr.className + [...tr.cells].map((c) => c.innerHTML.trim()).join("\t");
    function setTotal(n) {
      totalEl.textContent = `${n} sessions`;
      total = n;
    }
    async function load(n, gen) {
      loading.add(n);
      try {
        const res = await fetch(`/api/v1/sessions?${query}&limit=${BLOCK}&offset=${n * BLOCK}`);
        if (!res.ok) return;
        const data = await res.json();
        blocks.set(n, {rows: data.items.map(row), generation: gen});
        setTotal(data.total);
        render(true);
      } catch (e) { /* server restarting: try again on the next tick */ } finally {
        loading.delete(n);
      }
    }
    // fetch the blocks under the window that are missing or stale; drop the farthest beyond the cap
    function loadMissing() {
      if (!window_) return;
      const lo = Math.floor(window_[0] / BLOCK), hi = Math.floor((window_[1] - 1) / BLOCK);
      for (let n = lo; n <= hi; n++) {
        const block = blocks.get(n);
        if (!loading.has(n) && (!block || block.generation < generation)) load(n, generation);
      }
      if (blocks.size > MAX_BLOCKS) {
        const far = [...blocks.keys()].sort((x, y) => Math.abs(y - lo) - Math.abs(x - lo));
        for (const n of far.slice(0, blocks.size - MAX_BLOCKS)) blocks.delete(n);
      }
    }
    function update() {
      render(false);
      clearTimeout(loadTimer);
      loadTimer = setTimeout(loadMissing, 50);  // a fast scroll fetches where it stops, not on the way
    }
    const pager = document.getElementById("pager");
    if (pager) pager.style.display = "none";  // the scroll area replaces the page links
    if (total) {
      render(true);
      if (start < total) scroller.scrollTop = start * rowHeight + table.tHead.getBoundingClientRect().height;
      update();
    }
    scroller.addEventListener("scroll", update, {passive: true});
    window.addEventListener("resize", update);
    setInterval(async () => {
      generation += 1;
      if (total) { loadMissing(); return; }
      // nothing to show yet: ask whether sessions have appeared
      try {
        const res = await fetch(`/api/v1/sessions?${query}&limit=${BLOCK}&offset=0`);
        if (!res.ok) return;
        const data = await res.json();
        if (!data.total) return;
        blocks.set(0, {rows: data.items.map(row), generation});
        setTotal(data.total);
        render(true);
      } catch (e) { /* try again on the next tick */ }
    }, 2000);
  }

  // The column picker offers every key of the matching sessions, asked of the API when first opened.
  const picker = document.getElementById("column-picker");
  const list = document.getElementById("column-list");
  picker.addEventListener("toggle", async () => {
    if (!picker.open || list.dataset.loaded) return;
    try {
      const res = await fetch(`/api/v1/sessions/keys?${table.dataset.query}`);
      if (!res.ok) return;
      const keys = await res.json();
      const offered = ["params", "metrics", "tags"].flatMap((group) => keys[group].map((k) => `${group}.${k}`));
      const all = [...cols.filter((c) => !offered.includes(c)), ...offered];
      list.innerHTML = all.length ? all.map((c) => `<label><input type="checkbox" class="col-pick" value="${esc(c)}"` +
        `${cols.includes(c) ? " checked" : ""}> ${esc(c)}</label>`).join("") : '<span class="muted">no params, metrics or tags</span>';
      list.dataset.loaded = "1";
    } catch (e) { /* keep what the page offered */ }
  });
  // a picked column goes into the URL, so the page (and a saved view) reopens with it
  list.addEventListener("change", (e) => {
    if (!e.target.classList.contains("col-pick")) return;
    const checked = [...list.querySelectorAll(".col-pick:checked")].map((box) => box.value);
    const chosen = [...cols.filter((c) => checked.includes(c)), ...checked.filter((c) => !cols.includes(c))];
    const url = new URL(location.href);
    url.searchParams.set("cols", chosen.join(","));
    location.href = url.toString();
  });
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
})();
