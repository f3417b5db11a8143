// Session page: the artifact list grouped by folder, with a preview of the chosen artifact.
// Built with DOM calls and textContent only: artifact names and contents are the user's data.
(function () {
  const root = document.getElementById("artifacts");
  if (!root) return;
  const sid = root.dataset.sid;
  const list = document.getElementById("artifact-list");
  const preview = document.getElementById("artifact-preview");
  const count = document.getElementById("artifact-count");
  const IMAGE = /\.(png|jpe?g|gif|webp|svg)$/i;
  const AUDIO = /\.(wav|mp3|ogg|flac)$/i;
  const TEXT = /\.(csv|tsv|json|jsonl|txt|log|md|ya?ml|toml|py|cfg|ini)$/i;
  let shown = "";  // the list as last drawn, so that an unchanged list is not redrawn

  const url = (path) => `/api/v1/sessions/${sid}/artifacts/` + path.split("/").map(encodeURIComponent).join("/");
  const el = (tag, text, cls) => {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  };
  const size = (n) => {
    for (const [u, k] of [["GiB", 1 << 30], ["MiB", 1 << 20], ["KiB", 1 << 10]]) if (n >= k) return (n / k).toFixed(1) + " " + u;
    return n + " B";
  };
  const folderOf = (p) => (p.includes("/") ? p.slice(0, p.lastIndexOf("/")) : "");

  function draw(items) {
    const key = JSON.stringify(items.map((a) => [a.path, a.sha256]));
    if (key === shown) return;
    shown = key;
    count.textContent = items.length ? `${items.length} file${items.length > 1 ? "s" : ""}` : "";
    list.querySelectorAll("tbody").forEach((b) => b.remove());
    if (!items.length) {
      const body = el("tbody", undefined, "empty");
      const row = body.appendChild(el("tr"));
      const td = row.appendChild(el("td", "none", "muted"));
      td.colSpan = 4;
      list.appendChild(body);
      return;
    }
    const folders = new Map();
    for (const a of items) {
      const f = folderOf(a.path);
      if (!folders.has(f)) folders.set(f, []);
      folders.get(f).push(a);
    }
    for (const f of [...folders.keys()].sort()) {
      const body = el("tbody");
      const head = body.appendChild(el("tr", undefined, "artifact-folder"));
      const th = head.appendChild(el("th", (f || ".") + "/"));
      th.colSpan = 4;
      for (const a of folders.get(f)) {
        const row = body.appendChild(el("tr"));
        row.dataset.path = a.path;
        const link = el("a", f ? a.path.slice(f.length + 1) : a.path);
        link.href = url(a.path);
        link.download = a.path.split("/").pop();
        row.appendChild(el("td")).appendChild(link);
        row.appendChild(el("td", size(a.size)));
        row.appendChild(el("td")).appendChild(el("code", a.sha256.slice(0, 12)));
        const cell = row.appendChild(el("td"));
        if (IMAGE.test(a.path) || AUDIO.test(a.path) || TEXT.test(a.path) || /^text\//.test(a.media_type)) {
          const button = cell.appendChild(el("button", "preview", "artifact-show"));
          button.type = "button";
          button.addEventListener("click", () => show(a));
        }
      }
      list.appendChild(body);
    }
  }

  function table(columns, rows) {
    const wrap = el("div", undefined, "table-wrap");
    const t = wrap.appendChild(el("table"));
    const hr = t.appendChild(el("thead")).appendChild(el("tr"));
    for (const c of columns) hr.appendChild(el("th", c));
    const body = t.appendChild(el("tbody"));
    for (const r of rows) {
      const tr = body.appendChild(el("tr"));
      for (const v of r) tr.appendChild(el("td", v === null ? "" : String(v)));
    }
    return wrap;
  }

  async function show(a) {
    preview.replaceChildren(el("h3", a.path));
    if (IMAGE.test(a.path)) {
      const img = el("img");
      img.alt = a.path;
      img.src = url(a.path);
      preview.appendChild(img);
      return;
    }
    if (AUDIO.test(a.path)) {
      const audio = el("audio");
      audio.controls = true;
      audio.preload = "metadata";
      audio.src = url(a.path);
      preview.appendChild(audio);
      return;
    }
    const res = await fetch(url(a.path) + "?preview=1&lines=50");
    const body = await res.json();
    if (!res.ok) {
      preview.appendChild(el("p", body.error ? body.error.message : `error ${res.status}`, "muted"));
      return;
    }
    if (body.kind === "table") preview.appendChild(table(body.columns, body.rows));
    else if (body.kind === "text") preview.appendChild(el("pre", body.lines.join("\n")));
    else preview.appendChild(el("p", "no preview for this kind of file; download it", "muted"));
    if (body.truncated) preview.appendChild(el("p", "showing the first lines only", "muted"));
  }

  const active = () => {
    const status = document.getElementById("status");
    return !status || ["queued", "running"].includes(status.textContent.trim());
  };
  async function refresh() {
    try {
      const res = await fetch(`/api/v1/sessions/${sid}/artifacts`);
      if (res.ok) draw(await res.json());
    } catch (e) { /* the server is restarting: try again on the next tick */ }
    // a running session may log more; one more look after it ends catches its last uploads
    if (active()) setTimeout(refresh, 3000);
    else if (!refresh.last) { refresh.last = true; setTimeout(refresh, 3000); }
  }
  refresh();
})();
