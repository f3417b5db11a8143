// Batch tests: the form that starts one, and a result page that follows a running test until it ends.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);

  const form = $("batch-form");
  if (form) {
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const msg = $("batch-message");
      const f = form.elements;
      const body = {preset: f.preset.value, input_column: f.input_column.value, expected_column: f.expected_column.value,
                    metric: f.metric.value};
      if (f.version.value) body.version = Number(f.version.value);
      if (f.limit.value) body.limit = Number(f.limit.value);
      try {
        if (f.label_map.value.trim()) body.label_map = JSON.parse(f.label_map.value);
        const file = f.upload.files[0];
        if (file) { body.upload = await file.text(); body.upload_name = file.name; }
        else { body.dataset = f.dataset.value.trim(); if (f.file.value.trim()) body.file = f.file.value.trim(); }
        const res = await fetch("/api/v1/studio/batch-tests", {method: "POST", headers: {"Content-Type": "application/json"},
                                                                body: JSON.stringify(body)});
        const data = await res.json().catch(() => null);
        if (!res.ok) throw new Error((data && data.error && data.error.message) || res.statusText);
        location.href = "/studio/batch/" + data.id;
      } catch (err) { msg.textContent = err.message; }
    });
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
