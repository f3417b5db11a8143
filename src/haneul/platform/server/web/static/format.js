// Formatting shared by every page's scripts (plugins' too): window.haneulFormat.{esc, num}.
window.haneulFormat = (function () {
  // text made safe to put inside HTML
  const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));
  // Python's format(v, ".4g"), so that a number drawn in the browser reads like one drawn by the server
  const num = (v) => {
    if (v === null || v === undefined) return "-";
    const x = Number(v);
    if (!Number.isFinite(x)) return Number.isNaN(x) ? "nan" : x > 0 ? "inf" : "-inf";
    const [mantissa, e] = x.toExponential(3).split("e");
    const exp = Number(e);
    if (exp < -4 || exp >= 4) {
      return `${mantissa.replace(/\.?0+$/, "")}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
    }
    return x.toFixed(3 - exp).replace(/(\.\d*?)0+$/, "$1").replace(/\.$/, "");
  };
  return {esc, num};
})();
