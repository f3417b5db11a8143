// A published test app: send the input, show the answer as it streams (see studio/apps.py).
(function () {
  const $ = (id) => document.getElementById(id);
  const root = $("studio-app");
  if (!root) return;
  const token = root.dataset.token;
  const out = $("app-output");
  const message = $("app-message");
  const button = $("app-run");

  function say(text) {
    message.textContent = text || "";
    message.hidden = !text;
  }

  function handle(event, data) {
    if (event === "token") out.textContent += data.text;
    else if (event === "filtered") {
      out.textContent = data.notice;
      out.classList.add("filtered");
    } else if (event === "error") say(data.message);
    else if (event === "done") root.dataset.done = String(data.run_id);
  }

  async function run(ev) {
    ev.preventDefault();
    say("");
    out.textContent = "";
    out.classList.remove("filtered");
    delete root.dataset.done;
    button.disabled = true;
    try {
      const res = await fetch(`/studio/apps/${token}/run`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ input: $("app-input").value }),
      });
      if (!res.ok) {
        const body = await res.json().catch(() => ({}));
        const text = (body.error && body.error.message) || `the server answered ${res.status}`;
        const retry = res.headers.get("Retry-After");
        say(res.status === 429 && retry ? `${text} (Retry-After: ${retry} s)` : text);
        return;
      }
      await window.readStudioEvents(res, handle);
    } catch (err) {
      say(String(err));
    } finally {
      button.disabled = false;
    }
  }

  $("app-form").addEventListener("submit", run);
})();
