// The presets page's "Apps and keys" section: publish a preset as a test app, make API keys with ready
// snippets, and set the team's safety filter (see studio/apps.py and studio/filters.py).
(function () {
  const $ = (id) => document.getElementById(id);
  const section = $("apps-and-keys");
  if (!section) return;
  const json = { "Content-Type": "application/json" };

  async function call(method, url, body) {
    const res = await fetch(url, { method, headers: json, body: body === undefined ? undefined : JSON.stringify(body) });
    if (res.status === 204) return null;
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error((data.error && data.error.message) || `the server answered ${res.status}`);
    return data;
  }

  function cell(row, content) {
    const td = document.createElement("td");
    if (content instanceof Node) td.appendChild(content);
    else td.textContent = content == null ? "" : String(content);
    row.appendChild(td);
  }

  function revokeButton(url, reload) {
    const b = document.createElement("button");
    b.textContent = "Revoke";
    b.className = "revoke";
    b.addEventListener("click", async () => { await call("DELETE", url); reload(); });
    return b;
  }

  const names = {};
  document.querySelectorAll("#app-publish select[name=preset] option").forEach((o) => { names[o.value] = o.textContent; });

  async function loadApps() {
    const body = document.querySelector("#apps tbody");
    if (!body) return;
    const items = await call("GET", "/api/v1/studio/apps");
    body.textContent = "";
    for (const a of items) {
      const tr = document.createElement("tr");
      if (a.revoked_at) tr.className = "revoked";
      tr.dataset.id = a.id;
      cell(tr, a.title);
      cell(tr, names[a.preset_id] || a.preset_id);
      cell(tr, a.version || "latest");
      cell(tr, `${a.rate_per_minute}/min`);
      const link = document.createElement("a");
      link.href = `/studio/apps/${a.token}`;
      link.textContent = a.revoked_at ? "revoked" : "open";
      cell(tr, link);
      cell(tr, a.revoked_at ? "" : revokeButton(`/api/v1/studio/apps/${a.id}`, loadApps));
      body.appendChild(tr);
    }
  }

  async function loadKeys() {
    const body = document.querySelector("#keys tbody");
    if (!body) return;
    body.textContent = "";
    for (const pid of Object.keys(names)) {
      for (const k of await call("GET", `/api/v1/studio/presets/${pid}/keys`)) {
        const tr = document.createElement("tr");
        if (k.revoked_at) tr.className = "revoked";
        cell(tr, `${k.prefix}…`);
        cell(tr, k.name);
        cell(tr, names[pid]);
        cell(tr, `${k.rate_per_minute}/min`);
        cell(tr, k.last_used_at ? new Date(k.last_used_at * 1000).toLocaleString() : "never");
        cell(tr, k.revoked_at ? "" : revokeButton(`/api/v1/studio/keys/${k.id}`, loadKeys));
        body.appendChild(tr);
      }
    }
  }

  const publish = $("app-publish");
  if (publish) publish.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(publish);
    const body = { preset: f.get("preset"), title: f.get("title"), description: f.get("description"),
                   rate_per_minute: Number(f.get("rate_per_minute") || 30) };
    if (f.get("version")) body.version = Number(f.get("version"));
    const made = await call("POST", "/api/v1/studio/apps", body);
    const link = $("app-share-link");
    link.href = made.url;
    link.textContent = made.url;
    $("app-share").hidden = false;
    loadApps();
  });

  const keyForm = $("key-create");
  if (keyForm) keyForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(keyForm);
    const made = await call("POST", `/api/v1/studio/presets/${f.get("preset")}/keys`,
                            { name: f.get("name"), rate_per_minute: Number(f.get("rate_per_minute") || 60) });
    $("key-value").textContent = made.key;
    $("key-python").textContent = made.snippets.python;
    $("key-curl").textContent = made.snippets.curl;
    $("key-new").hidden = false;
    loadKeys();
  });

  const filterForm = $("filter-form");
  async function loadFilter() {
    const [current, classifiers] = await Promise.all([call("GET", "/api/v1/studio/filters"),
                                                     call("GET", "/api/v1/studio/filters/classifiers")]);
    const select = filterForm.elements.classifier;
    for (const name of classifiers) {
      const o = document.createElement("option");
      o.value = o.textContent = name;
      select.appendChild(o);
    }
    filterForm.elements.words.value = current.words.join("\n");
    select.value = current.classifier || "";
    filterForm.elements.on_input.checked = current.on_input;
    filterForm.elements.on_output.checked = current.on_output;
  }
  filterForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const e = filterForm.elements;
    try {
      await call("PUT", "/api/v1/studio/filters", { words: e.words.value, classifier: e.classifier.value || null,
                                                   on_input: e.on_input.checked, on_output: e.on_output.checked });
      $("filter-message").textContent = "saved";
    } catch (err) {
      $("filter-message").textContent = err.message;
    }
  });

  loadApps().catch(() => {});
  loadKeys().catch(() => {});
  loadFilter().catch((err) => { $("filter-message").textContent = err.message; });
})();
