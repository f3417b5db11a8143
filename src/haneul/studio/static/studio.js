// The Studio's pages: the preset list's import form, and the playground (editors, token counter,
// streaming runs with a stop button, saving versions, version history and diffs).
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const PARAMS = ["temperature", "top_p", "top_k", "max_tokens", "repetition_penalty", "stop",
                  "inject_start", "inject_restart", "seed"];

  async function api(method, path, body) {
    const res = await fetch(path, {method, headers: {"Content-Type": "application/json"},
                                   body: body === undefined ? undefined : JSON.stringify(body)});
    const data = res.status === 204 ? null : await res.json().catch(() => null);
    if (!res.ok) throw new Error((data && data.error && data.error.message) || res.statusText);
    return data;
  }

  // ---------------------------------------------------------------- the preset list
  const importForm = $("import-form");
  if (importForm) {
    importForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const file = importForm.file.files[0];
      const msg = $("import-message");
      if (!file) { msg.textContent = "choose an exported .json file first"; return; }
      try {
        const preset = await api("POST", "/api/v1/studio/import", {document: JSON.parse(await file.text())});
        location.href = "/studio/playground?preset=" + preset.id;
      } catch (err) { msg.textContent = err.message; }
    });
  }

  const stateNode = $("studio-state");
  if (!stateNode) return;

  // ---------------------------------------------------------------- the playground
  const state = JSON.parse(stateNode.textContent);
  // typed "\n" and "\t" stand for a newline and a tab in the one-line fields
  const unescape = (s) => s.replace(/\\n/g, "\n").replace(/\\t/g, "\t");
  const escape = (s) => String(s).replace(/\n/g, "\\n").replace(/\t/g, "\\t");

  function addExample(input, output) {
    const row = document.createElement("div");
    row.className = "studio-example";
    row.innerHTML = '<textarea class="ex-input" rows="2" placeholder="input"></textarea>' +
      '<textarea class="ex-output" rows="2" placeholder="output"></textarea>' +
      '<button type="button" class="ex-remove" title="remove this example">×</button>';
    row.querySelector(".ex-input").value = input || "";
    row.querySelector(".ex-output").value = output || "";
    row.querySelector(".ex-remove").addEventListener("click", () => { row.remove(); countSoon(); });
    $("examples").appendChild(row);
  }

  function fill(content) {
    $("instruction").value = content.instruction;
    $("examples").innerHTML = "";
    content.examples.forEach((e) => addExample(e.input, e.output));
    $("input-template").value = content.input_template;
    $("mode").value = content.mode;
    const models = $("model");
    models.innerHTML = "";
    const names = state.models.map((m) => m.name);
    if (!names.includes(content.model)) names.unshift(content.model);
    names.forEach((n) => { const o = document.createElement("option"); o.value = o.textContent = n; models.appendChild(o); });
    models.value = content.model;
    const p = content.params;
    for (const key of ["temperature", "top_p", "top_k", "max_tokens", "repetition_penalty"]) $("p-" + key).value = p[key];
    $("p-stop").value = p.stop.map(escape).join("\n");
    $("p-inject_start").value = escape(p.inject_start);
    $("p-inject_restart").value = escape(p.inject_restart);
    $("p-seed").value = p.seed === null ? "" : p.seed;
  }

  function content() {
    const num = (id) => Number($(id).value);
    const seed = $("p-seed").value.trim();
    return {
      instruction: $("instruction").value,
      examples: Array.from(document.querySelectorAll(".studio-example")).map((r) => ({
        input: r.querySelector(".ex-input").value, output: r.querySelector(".ex-output").value})),
      input_template: $("input-template").value || "{input}",
      mode: $("mode").value,
      model: $("model").value,
      params: {
        temperature: num("p-temperature"), top_p: num("p-top_p"), top_k: Math.trunc(num("p-top_k")),
        max_tokens: Math.trunc(num("p-max_tokens")), repetition_penalty: num("p-repetition_penalty"),
        stop: $("p-stop").value.split("\n").filter((s) => s !== "").map(unescape),
        inject_start: unescape($("p-inject_start").value), inject_restart: unescape($("p-inject_restart").value),
        seed: seed === "" ? null : Math.trunc(Number(seed)),
      },
    };
  }

  function showError(message) {
    const box = $("studio-error");
    box.textContent = message || "";
    box.hidden = !message;
  }

  // -- the live token counter: one request a moment after typing stops
  let countTimer = null;
  let countSeq = 0;
  function countSoon() {
    clearTimeout(countTimer);
    countTimer = setTimeout(countNow, 400);
  }
  async function countNow() {
    const seq = ++countSeq;
    const label = $("token-count");
    try {
      const res = await api("POST", "/api/v1/studio/tokens", Object.assign(content(), {input: $("input").value}));
      if (seq !== countSeq) return;
      if (res.tokens === null) { label.textContent = "tokens: unknown for " + res.model; return; }
      label.textContent = res.tokens + " tokens" + (res.left === null ? "" :
        " · " + res.left + " left of " + res.context_window + " after " + res.max_tokens + " max tokens");
      label.classList.toggle("over", res.left !== null && res.left < 0);
    } catch (err) {
      if (seq === countSeq) label.textContent = "tokens: " + err.message;
    }
  }
  document.querySelector(".studio").addEventListener("input", countSoon);
  document.querySelector(".studio").addEventListener("change", countSoon);

  // -- running: read the Server-Sent Events of POST /api/v1/studio/run
  let controller = null;
  async function run() {
    if (controller) return;
    showError("");
    const out = $("output");
    out.textContent = "";
    $("run-stats").textContent = "";
    const body = Object.assign(content(), {input: $("input").value});
    if (state.preset) { body.preset = String(state.preset.id); body.version = state.version; }
    controller = new AbortController();
    $("run-btn").disabled = true;
    $("stop-btn").disabled = false;
    try {
      const res = await fetch("/api/v1/studio/run", {method: "POST", signal: controller.signal,
        headers: {"Content-Type": "application/json", "Accept": "text/event-stream"}, body: JSON.stringify(body)});
      if (!res.ok) {
        const data = await res.json().catch(() => null);
        throw new Error((data && data.error && data.error.message) || res.statusText);
      }
      await window.readStudioEvents(res, (event, payload) => handle(event, payload, out));
    } catch (err) {
      if (err.name === "AbortError") $("run-stats").textContent = "stopped";
      else showError(err.message);
    } finally {
      controller = null;
      $("run-btn").disabled = false;
      $("stop-btn").disabled = true;
    }
  }

  function handle(event, payload, out) {
    if (event === "token") {
      out.textContent += payload.text;
    } else if (event === "done") {
      $("run-stats").textContent = "run " + payload.run_id + " · " + payload.finish_reason + " · " +
        Math.round(payload.latency_ms) + " ms · " + (payload.prompt_tokens ?? "?") + " prompt + " +
        (payload.completion_tokens ?? "?") + " completion tokens";
    } else if (event === "error") {
      showError(payload.message);
      $("run-stats").textContent = "run " + payload.run_id + " failed";
    } else if (event === "filtered") {
      out.textContent = payload.notice;
      $("run-stats").textContent = "run " + payload.run_id + " filtered: " + payload.reason;
    }
  }

  $("run-btn").addEventListener("click", run);
  $("stop-btn").addEventListener("click", () => { if (controller) controller.abort(); });
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); run(); }
  });
  $("add-example").addEventListener("click", () => { addExample("", ""); countSoon(); });

  // -- saving
  $("save-btn").addEventListener("click", async () => {
    const msg = $("save-message");
    const note = $("save-note").value;
    sessionStorage.setItem("studio-input", $("input").value);
    try {
      if (state.preset) {
        const v = await api("POST", "/api/v1/studio/presets/" + state.preset.id + "/versions",
                            Object.assign(content(), {note}));
        location.href = "/studio/playground?preset=" + state.preset.id + "&version=" + v.number;
      } else {
        const name = $("save-name").value.trim();
        if (!name) { msg.textContent = "give the preset a name"; return; }
        const p = await api("POST", "/api/v1/studio/presets", Object.assign(content(), {name, note}));
        location.href = "/studio/playground?preset=" + p.id;
      }
    } catch (err) { msg.textContent = err.message; }
  });

  // -- version history and diffs
  const list = $("versions");
  if (list) {
    state.versions.slice().reverse().forEach((v) => {
      const li = document.createElement("li");
      li.innerHTML = '<label><input type="checkbox" value="' + v.number + '"> ' +
        '<a href="/studio/playground?preset=' + state.preset.id + '&version=' + v.number + '">v' + v.number + "</a></label> " +
        '<span class="muted"></span>';
      li.querySelector(".muted").textContent = (v.note || "") + " · " + v.created_by;
      if (v.number === state.version) li.classList.add("current");
      list.appendChild(li);
    });
    $("diff-btn").addEventListener("click", async () => {
      const picked = Array.from(list.querySelectorAll("input:checked")).map((x) => Number(x.value)).sort((a, b) => a - b);
      const box = $("diff");
      box.hidden = false;
      if (picked.length !== 2) { box.textContent = "tick two versions to compare"; return; }
      try {
        const d = await api("GET", "/api/v1/studio/presets/" + state.preset.id + "/diff?a=" + picked[0] + "&b=" + picked[1]);
        box.innerHTML = "";
        const title = document.createElement("p");
        title.textContent = d.same ? "v" + d.a + " and v" + d.b + " are the same" : "v" + d.a + " → v" + d.b;
        box.appendChild(title);
        const table = document.createElement("table");
        const rows = Object.entries(d.changed).filter(([k]) => k !== "instruction")
          .concat(Object.entries(d.params).map(([k, v]) => ["params." + k, v]));
        for (const [key, change] of rows) {
          const tr = table.insertRow();
          tr.insertCell().textContent = key;
          tr.insertCell().textContent = JSON.stringify(change.a);
          tr.insertCell().textContent = JSON.stringify(change.b);
        }
        if (rows.length) box.appendChild(table);
        if (d.instruction_diff) {
          const pre = document.createElement("pre");
          for (const line of d.instruction_diff.split("\n")) {
            const span = document.createElement("span");
            span.className = line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : "";
            span.textContent = line + "\n";
            pre.appendChild(span);
          }
          box.appendChild(pre);
        }
      } catch (err) { box.textContent = err.message; }
    });
  }

  fill(state.content);
  // the input is not part of a preset: keep it across the page load that saving causes
  const kept = sessionStorage.getItem("studio-input");
  if (kept !== null) { $("input").value = kept; sessionStorage.removeItem("studio-input"); }
  countSoon();
})();
