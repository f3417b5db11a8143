// The compare page: 2-4 columns (a preset or a model each) answer one input; one event stream carries
// every column's tokens, tagged with the column's index.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const state = JSON.parse($("compare-state").textContent);
  const box = $("compare-columns");
  let controller = null;

  function addColumn() {
    if (box.children.length >= state.max_columns) return;
    const col = document.createElement("section");
    col.className = "compare-column";
    const presets = state.presets.map((p) => `<option value="${p.id}">${p.name.replace(/</g, "&lt;")} (v${p.versions})</option>`).join("");
    const models = state.models.map((m) => `<option value="${m.name}">${m.name}</option>`).join("");
    col.innerHTML = `<label class="block">Preset <select class="c-preset"><option value="">(none: a model)</option>${presets}</select></label>` +
      `<label class="block">Model <select class="c-model"><option value="">(the preset's)</option>${models}</select></label>` +
      `<button type="button" class="c-remove" title="remove this column">×</button>` +
      `<pre class="studio-output c-output" aria-live="polite"></pre><p class="muted c-stats"></p>`;
    col.querySelector(".c-remove").addEventListener("click", () => col.remove());
    box.appendChild(col);
  }

  function columnBody(col) {
    const out = {};
    const preset = col.querySelector(".c-preset").value;
    const model = col.querySelector(".c-model").value;
    if (preset) out.preset = preset;
    if (model) out.model = model;
    return out;
  }

  function showError(message) { const e = $("compare-error"); e.textContent = message; e.hidden = !message; }

  async function run() {
    const cols = Array.from(box.children);
    showError("");
    cols.forEach((c) => { c.querySelector(".c-output").textContent = ""; c.querySelector(".c-stats").textContent = ""; });
    controller = new AbortController();
    $("compare-run").disabled = true; $("compare-stop").disabled = false;
    try {
      const res = await fetch("/api/v1/studio/compare", {method: "POST", signal: controller.signal,
        headers: {"Content-Type": "application/json"},
        body: JSON.stringify({input: $("compare-input").value, columns: cols.map(columnBody)})});
      if (!res.ok) {
        const data = await res.json().catch(() => null);
        throw new Error((data && data.error && data.error.message) || res.statusText);
      }
      await window.readStudioEvents(res, (event, d) => handle(event, d, cols));
    } catch (err) {
      if (err.name !== "AbortError") showError(err.message);
    } finally {
      controller = null;
      $("compare-run").disabled = false; $("compare-stop").disabled = true;
    }
  }

  function handle(event, d, cols) {
    const col = cols[d.column];
    if (!col) return;
    if (event === "token") col.querySelector(".c-output").textContent += d.text;
    else if (event === "done") col.querySelector(".c-stats").textContent =
      `${d.latency_ms} ms · ${d.prompt_tokens ?? "?"} + ${d.completion_tokens ?? "?"} tokens · run ${d.run_id}`;
    else if (event === "error") col.querySelector(".c-stats").textContent = "error: " + d.message;
    else if (event === "filtered") col.querySelector(".c-stats").textContent = d.notice || "filtered";
  }

  $("compare-add").addEventListener("click", addColumn);
  $("compare-run").addEventListener("click", run);
  $("compare-stop").addEventListener("click", () => { if (controller) controller.abort(); });
  document.addEventListener("keydown", (ev) => { if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) run(); });
  addColumn(); addColumn();
})();
