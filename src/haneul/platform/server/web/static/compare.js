// Compare page: overlay one metric of several sessions (server-downsampled to 2,000 points each).
(function () {
  const div = document.getElementById("compare");
  if (!div) return;
  const ids = div.dataset.ids.split(",").filter(Boolean);
  const key = div.dataset.key;
  Promise.all(ids.map(async (id) => {
    const res = await fetch(`/api/v1/sessions/${id}/metrics/${encodeURIComponent(key)}?max_points=2000`);
    if (!res.ok) return null;
    const d = await res.json();
    return { x: d.steps, y: d.values, mode: "lines", name: `#${id}` };
  })).then((traces) => {
    Plotly.newPlot(div, traces.filter(Boolean), {
      title: { text: key }, xaxis: { title: "step" }, margin: { t: 40, r: 16, b: 40, l: 56 },
    }, { responsive: true, displaylogo: false });
  });
})();
