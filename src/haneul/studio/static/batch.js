// Jobs over a table, run as platform sessions: the batch-test form and result page, and the p-tuning form
// and job list; each follows what is running until it ends.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);

  // the table a job reads: an uploaded file's text, or a platform dataset (and its file)
  async function addTable(f, body) {
    const file = f.upload.files[0];
    if (file) { body.upload = await file.text(); body.upload_name = file.name; }
    else { body.dataset = f.dataset.value.trim(); if (f.file.value.trim()) body.file = f.file.value.trim(); }
  }

  async function post(url, body) {
    const res = await fetch(url, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
    const data = await res.json().catch(() => null);
    if (!res.ok) throw new Error((data && data.error && data.error.message) || res.statusText);
    return data;
  }

  const form = $("batch-form");
  if (form) {
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const f = form.elements;
      const body = {preset: f.preset.value, input_column: f.input_column.value, expected_column: f.expected_column.value,
                    metric: f.metric.value};
      if (f.version.value) body.version = Number(f.version.value);
      if (f.limit.value) body.limit = Number(f.limit.value);
      try {
        if (f.label_map.value.trim()) body.label_map = JSON.parse(f.label_map.value);
        await addTable(f, body);
        location.href = "/studio/batch/" + (await post("/api/v1/studio/batch-tests", body)).id;
      } catch (err) { $("batch-message").textContent = err.message; }
    });
  }

  const tuning = $("ptune-form");
  if (tuning) {
    tuning.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const f = tuning.elements;
      const body = {preset: f.preset.value, name: f.name.value.trim(), input_column: f.input_column.value,
                    label_column: f.label_column.value, labels: f.labels.value.split(",").map((w) => w.trim()),
                    method: f.method.value, steps: Number(f.steps.value), virtual_tokens: Number(f.virtual_tokens.value),
                    test_rows: Number(f.test_rows.value)};
      if (f.version.value) body.version = Number(f.version.value);
      try {
        await addTable(f, body);
        await post("/api/v1/studio/ptune", body);
        location.reload();
      } catch (err) { $("ptune-message").textContent = err.message; }
    });
    const running = document.querySelectorAll("#ptune-jobs tr[data-status=queued], #ptune-jobs tr[data-status=running]");
    if (running.length) {
      const timer = setInterval(async () => {
        for (const row of running) {
          const res = await fetch("/api/v1/studio/ptune/" + row.dataset.id);
          if (!res.ok) continue;
          const job = await res.json();
          row.querySelector(".ptune-status").textContent = job.status;
          if (job.status !== "queued" && job.status !== "running") { clearInterval(timer); location.reload(); return; }
        }
      }, 2000);
    }
  }

  const summary = $("batch-summary");
  if (summary && (summary.dataset.status === "queued" || summary.dataset.status === "running")) {
    const timer = setInterval(async () => {
      const res = await fetch("/api/v1/studio/batch-tests/" + summary.dataset.id);
      if (!res.ok) return;
      const t = await res.json();
      $("batch-status").textContent = t.status;
      $("batch-done").textContent = t.rows_done;
      $("batch-score").textContent = t.score === null || t.score === undefined ? "-" : t.score.toFixed(2);
      if (t.status !== "queued" && t.status !== "running") { clearInterval(timer); location.reload(); }
    }, 2000);
  }
})();
