// Compare mode: several models' totals side by side, and cost against accuracy in the manner of
// Canziani et al. 2016 (x: multiply-adds on a log scale, y: published ImageNet top-1, circle area:
// parameters). Every number comes from /api/architecture/compare (the analyzer's totals and
// torchvision's published accuracy); a model with no published accuracy is in the table only.

import { h } from "./dom.js";
import { s } from "./arch_draw.js";

const W = 760, H = 430, M = { l: 64, r: 24, t: 20, b: 52 };
const FAMILY_COLOURS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#000000", "#999999"];

/** The table of totals (strings formatted by the server, cnnlab.formats). */
export function table(models) {
  const head = ["model", "input", "parameters", "MACs", "activation memory", "training memory", "top-1 %", "top-5 %"];
  return h("div", { class: "table-wrap" }, h("table", { class: "arch-compare" },
    h("thead", {}, h("tr", {}, head.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, models.map((m) => h("tr", { "data-model": m.model },
      h("th", { scope: "row" }, m.model), h("td", {}, m.input_size.join("x")), h("td", { class: "num" }, m.params_text),
      h("td", { class: "num" }, m.macs_text), h("td", { class: "num" }, m.activation_text), h("td", { class: "num" }, m.training_text),
      h("td", { class: "num" }, m.top1 === null ? "–" : m.top1.toFixed(2)), h("td", { class: "num" }, m.top5 === null ? "–" : m.top5.toFixed(2)))))));
}

function ticks(lo, hi) {
  const out = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= lo && v <= hi) out.push(v);
    }
  }
  return out;
}

/** The cost-against-accuracy chart; `families` maps a model to its family (the colours). */
export function chart(models, families) {
  const shown = models.filter((m) => m.top1 !== null && m.macs > 0);
  const svg = s("svg", { class: "arch-chart", viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img",
    "aria-label": "multiply-adds against published top-1 accuracy; circle area: parameters" });
  if (!shown.length) {
    svg.append(s("text", { x: 20, y: 40, "font-size": 13 }, "none of these models has a published ImageNet accuracy"));
    return svg;
  }
  const g = shown.map((m) => m.macs / 1e9);
  const lo = Math.min(...g) / 1.6, hi = Math.max(...g) * 1.6;
  const accs = shown.map((m) => m.top1);
  const ylo = Math.floor(Math.min(...accs) - 3), yhi = Math.ceil(Math.max(...accs) + 3);
  const x = (v) => M.l + (Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo)) * (W - M.l - M.r);
  const y = (v) => H - M.b - (v - ylo) / (yhi - ylo) * (H - M.t - M.b);
  const maxP = Math.max(...shown.map((m) => m.params));
  const r = (p) => 4 + 26 * Math.sqrt(p / maxP); // area follows the parameter count
  svg.append(s("rect", { x: 0, y: 0, width: W, height: H, fill: "#ffffff" }));
  const axes = s("g", { class: "axes", "font-size": 11, fill: "#333" });
  for (const t of ticks(lo, hi)) {
    axes.append(s("line", { x1: x(t), x2: x(t), y1: M.t, y2: H - M.b, stroke: "#e3e6ea" }),
      s("text", { x: x(t), y: H - M.b + 15, "text-anchor": "middle" }, String(t)));
  }
  for (let t = Math.ceil(ylo / 5) * 5; t <= yhi; t += 5) {
    axes.append(s("line", { x1: M.l, x2: W - M.r, y1: y(t), y2: y(t), stroke: "#e3e6ea" }),
      s("text", { x: M.l - 6, y: y(t) + 4, "text-anchor": "end" }, String(t)));
  }
  axes.append(s("line", { x1: M.l, x2: W - M.r, y1: H - M.b, y2: H - M.b, stroke: "#333" }),
    s("line", { x1: M.l, x2: M.l, y1: M.t, y2: H - M.b, stroke: "#333" }),
    s("text", { x: (M.l + W - M.r) / 2, y: H - 14, "text-anchor": "middle", "font-size": 12 }, "G-MACs per image (log scale; 1 MAC = the slides' \"flop\")"),
    s("text", { x: 16, y: (M.t + H - M.b) / 2, "text-anchor": "middle", "font-size": 12, transform: `rotate(-90 16 ${(M.t + H - M.b) / 2})` }, "published ImageNet top-1 (%)"));
  svg.append(axes);
  const names = [...new Set(shown.map((m) => families[m.model] || "other"))];
  const colour = (m) => FAMILY_COLOURS[names.indexOf(families[m.model] || "other") % FAMILY_COLOURS.length];
  const dots = s("g", { class: "dots" });
  const placed = []; // label boxes already drawn: a label tries above, below, right, left
  const label = (m) => {
    const cx = x(m.macs / 1e9), cy = y(m.top1), rr = r(m.params), w = m.model.length * 6.4, hh = 12;
    const tries = [[cx, cy - rr - 4, "middle"], [cx, cy + rr + 12, "middle"], [cx + rr + 4, cy + 4, "start"], [cx - rr - 4, cy + 4, "end"]];
    const box = ([tx, ty, anchor]) => {
      const x0 = anchor === "middle" ? tx - w / 2 : anchor === "start" ? tx : tx - w;
      return [x0, ty - hh + 2, x0 + w, ty + 2];
    };
    const free = (b) => placed.every((p) => b[2] < p[0] || b[0] > p[2] || b[3] < p[1] || b[1] > p[3]);
    const pick = tries.find((t) => free(box(t))) || tries[0];
    placed.push(box(pick));
    return s("text", { x: pick[0], y: pick[1], "text-anchor": pick[2], "font-size": 11, fill: "#222" }, m.model);
  };
  for (const m of [...shown].sort((a, b) => b.params - a.params)) {
    dots.append(s("g", { class: "dot", "data-model": m.model },
      s("circle", { cx: x(m.macs / 1e9), cy: y(m.top1), r: r(m.params), fill: colour(m), "fill-opacity": 0.45, stroke: colour(m), "stroke-width": 1.2 },
        s("title", {}, `${m.model}: ${m.macs_text} MACs, ${m.params_text} parameters, top-1 ${m.top1.toFixed(2)}%`)),
      label(m)));
  }
  svg.append(dots);
  // Legend: the families' colours and the circle sizes.
  const leg = s("g", { class: "legend", "font-size": 11, fill: "#222" });
  names.forEach((f, n) => leg.append(s("circle", { cx: M.l + 12, cy: M.t + 10 + 16 * n, r: 5, fill: FAMILY_COLOURS[n % FAMILY_COLOURS.length], "fill-opacity": 0.6 }),
    s("text", { x: M.l + 22, y: M.t + 14 + 16 * n }, f)));
  const sizes = [maxP, maxP / 4].map((p) => Math.round(p / 1e6));
  sizes.forEach((p, n) => {
    const cy = M.t + 26 + 16 * names.length + 34 * n;
    leg.append(s("circle", { cx: M.l + 40, cy, r: r(p * 1e6), fill: "none", stroke: "#555" }),
      s("text", { x: M.l + 74, y: cy + 4 }, `${p} M parameters`));
  });
  svg.append(leg);
  return svg;
}
