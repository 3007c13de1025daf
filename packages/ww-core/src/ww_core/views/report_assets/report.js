// ww report: sortable, filterable tables and an ESD drawn on demand from compact histogram data.
"use strict";
(function () {
  const dataNode = document.getElementById("ww-data");
  const data = dataNode ? JSON.parse(dataNode.textContent) : { esd: {} };

  function esc(text) {
    return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  }

  function cellValue(row, col) {
    const cell = row.cells[col];
    const raw = cell.dataset.v !== undefined ? cell.dataset.v : cell.textContent.trim();
    const number = Number(raw);
    return raw === "" ? "" : Number.isFinite(number) ? number : raw.toLowerCase();
  }

  function order(a, b) {
    if (typeof a === "number" && typeof b === "number") return a - b;
    if (typeof a === "number") return -1;
    if (typeof b === "number") return 1;
    return a < b ? -1 : a > b ? 1 : 0;
  }

  function sortBy(table, th, col) {
    const ascending = th.getAttribute("aria-sort") !== "ascending";
    Array.from(th.parentNode.cells).forEach((c) => c.removeAttribute("aria-sort"));
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    const body = table.tBodies[0];
    const rows = Array.from(body.rows);
    rows.sort((a, b) => {
      const x = cellValue(a, col), y = cellValue(b, col);
      if (x === "" || y === "") return (x === "") - (y === "");  // blanks (no value) always last
      return order(x, y) * (ascending ? 1 : -1);
    });
    rows.forEach((r) => body.appendChild(r));
  }

  document.querySelectorAll("table.sortable").forEach((table) => {
    Array.from(table.tHead.rows[0].cells).forEach((th, col) => {
      th.tabIndex = 0;
      th.addEventListener("click", () => sortBy(table, th, col));
      th.addEventListener("keydown", (event) => { if (event.key === "Enter") sortBy(table, th, col); });
    });
  });

  const filter = document.getElementById("filter");
  if (filter) {
    filter.addEventListener("input", () => {
      const query = filter.value.toLowerCase();
      document.querySelectorAll("#layers tbody tr").forEach((tr) => {
        tr.hidden = query !== "" && !tr.textContent.toLowerCase().includes(query);
      });
    });
  }

  function esdSvg(name, e) {
    const W = 640, H = 350, L = 62, R = 16, T = 38, B = 44;
    const bins = e.c.length, step = Math.pow(e.hi / e.lo, 1 / bins);
    const edges = Array.from({ length: bins + 1 }, (_, i) => e.lo * Math.pow(step, i));
    const density = e.c.map((c, i) => c / (e.n * (edges[i + 1] - edges[i])));
    const shown = density.filter((d) => d > 0);
    let yhi = Math.max(...shown), ylo = Math.min(...shown);
    let fit = null;
    const truncated = e.lam !== null && e.lam !== undefined && e.lnorm !== null && e.lnorm !== undefined;
    if (e.a !== null && e.xmin !== null && e.xmin > 0 && (e.a > 1 || truncated)) {
      const end = e.xmax !== null ? e.xmax : e.hi;
      if (truncated) {  // x^-alpha e^(-Lambda x), normalized over [xmin, inf): a curve, drawn through 48 points
        const f = (x) => (e.tail / e.n) * Math.exp(-e.lnorm - e.a * Math.log(x) - e.lam * x);
        fit = Array.from({ length: 48 }, (_, i) => e.xmin * Math.pow(end / e.xmin, i / 47)).map((x) => [x, f(x)]);
      } else {
        const f = (x) => (e.tail / e.n) * (e.a - 1) / e.xmin * Math.pow(x / e.xmin, -e.a);
        fit = [[e.xmin, f(e.xmin)], [end, f(end)]];
      }
      yhi = Math.max(yhi, fit[0][1]);
    }
    if (fit) ylo = Math.min(ylo, ...fit.map((p) => p[1]));  // the fitted tail ends below the smallest bin: keep it in the plot
    ylo = Math.max(ylo, yhi * 1e-12);
    const lx0 = Math.log10(e.lo), lx1 = Math.log10(edges[bins]), ly0 = Math.log10(ylo) - 0.1, ly1 = Math.log10(yhi) + 0.1;
    const sx = (x) => L + (Math.log10(x) - lx0) / (lx1 - lx0 || 1) * (W - L - R);
    const sy = (y) => H - B - (Math.log10(y) - ly0) / (ly1 - ly0 || 1) * (H - T - B);
    const parts = [`<svg class="esd" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img">`];
    parts.push(`<defs><clipPath id="esd-clip"><rect x="${L}" y="${T}" width="${W - L - R}" height="${H - T - B}"/></clipPath></defs>`);
    parts.push(`<g clip-path="url(#esd-clip)">`);
    density.forEach((d, i) => {
      if (d <= 0) return;
      const x = sx(edges[i]), w = Math.max(sx(edges[i + 1]) - x, 0.5), y = sy(Math.max(d, ylo));
      parts.push(`<rect class="bar" x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${w.toFixed(1)}" height="${(H - B - y).toFixed(1)}" fill="#8ab4e8"/>`);
    });
    if (fit) {
      if (truncated) {
        const points = fit.map((p) => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(" ");
        parts.push(`<polyline class="fit" points="${points}" fill="none" stroke="#d22" stroke-width="2"/>`);
      } else {
        parts.push(`<line class="fit" x1="${sx(fit[0][0]).toFixed(1)}" y1="${sy(fit[0][1]).toFixed(1)}" x2="${sx(fit[1][0]).toFixed(1)}" y2="${sy(fit[1][1]).toFixed(1)}" stroke="#d22" stroke-width="2"/>`);
      }
      parts.push(`<line class="xmin" x1="${sx(e.xmin).toFixed(1)}" y1="${T}" x2="${sx(e.xmin).toFixed(1)}" y2="${H - B}" stroke="#d22" stroke-dasharray="4 3"/>`);
    }
    parts.push("</g>");
    parts.push(`<rect class="frame" x="${L}" y="${T}" width="${W - L - R}" height="${H - T - B}" fill="none" stroke="#999"/>`);
    for (let p = Math.ceil(lx0); p <= Math.floor(lx1); p++) {
      parts.push(`<text x="${sx(Math.pow(10, p)).toFixed(1)}" y="${H - B + 15}" text-anchor="middle">1e${p}</text>`);
    }
    for (let p = Math.ceil(ly0); p <= Math.floor(ly1); p++) {
      parts.push(`<text x="${L - 6}" y="${(sy(Math.pow(10, p)) + 4).toFixed(1)}" text-anchor="end">1e${p}</text>`);
    }
    parts.push(`<text x="${(L + W - R) / 2}" y="${H - 8}" text-anchor="middle">eigenvalue λ of WᵀW (log)</text>`);
    parts.push(`<text x="14" y="${(T + H - B) / 2}" text-anchor="middle" transform="rotate(-90 14 ${(T + H - B) / 2})">density (log)</text>`);
    const law = truncated ? `truncated power law (Lambda = ${e.lam.toPrecision(3)})` : "power law";
    const fitted = fit ? `alpha = ${e.a.toPrecision(3)}, xmin = ${e.xmin.toPrecision(3)} (dashed), fitted ${law} in red` : "no power-law fit";
    parts.push(`<text class="title" x="${L}" y="14" font-weight="bold">${esc(name)}</text>`);
    parts.push(`<text class="fit-info" x="${L}" y="29">${e.n} eigenvalues; ${fitted}</text>`);
    parts.push("</svg>");
    return parts.join("");
  }

  const panel = document.getElementById("esd-panel");
  function show(tr, scroll = true) {
    document.querySelectorAll("tr.selected").forEach((r) => r.classList.remove("selected"));
    tr.classList.add("selected");
    panel.classList.remove("empty");
    panel.dataset.layer = tr.dataset.name;
    const esd = tr.dataset.esd !== undefined ? data.esd[tr.dataset.esd] : undefined;
    if (!esd) {
      panel.textContent = `${tr.dataset.name}: no ESD (${tr.dataset.reason || "not analyzed"})`;
      return;
    }
    panel.innerHTML = esdSvg(tr.dataset.name, esd);
    if (scroll) panel.scrollIntoView({ block: "nearest" });
  }
  if (panel) {
    document.querySelectorAll("#layers tr.layer").forEach((tr) => {
      tr.tabIndex = 0;
      tr.addEventListener("click", () => show(tr));
      tr.addEventListener("keydown", (event) => { if (event.key === "Enter") show(tr); });
    });
    document.querySelectorAll("svg.flow [data-row]").forEach((point) =>
      point.addEventListener("click", () => {
        const tr = document.querySelector(`#layers tr[data-id="${point.dataset.row}"]`);
        if (tr) show(tr);
      })
    );
    const first = data.open !== undefined && data.open !== null ? document.querySelector(`#layers tr[data-id="${data.open}"]`) : null;
    if (first) show(first, false);  // the layer farthest from the 2-6 band, without scrolling to it
  }
})();
