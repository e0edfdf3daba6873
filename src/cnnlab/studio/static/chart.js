// Line charts drawn as SVG: several runs overlaid, training dashed and validation solid.
//
// Axis limits are robust: one diverged run (a loss of 1e6, or NaN) must not flatten the others.
// The y range covers every series whose values lie near the typical series' range; values beyond
// it are drawn on the edge as a triangle (infinite or NaN values as a cross) in the series' colour,
// each with a tooltip giving the true value, and a note under the chart names the clipped runs.

import { h } from "./dom.js";

const WIDTH = 640;
const HEIGHT = 300;
const MARGIN = { top: 14, right: 16, bottom: 38, left: 58 };
const SPANS = 2; // how far past the typical range (in typical spans) a series may reach unclipped
const MAX_DOTS = 120; // points per series drawn as hoverable dots (step logs have thousands)

// Okabe & Ito's colour-blind-safe palette, black left out (it is the axes' colour).
export const PALETTE = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#8c6d1f", "#6a3d9a"];

/** The lower median: with two series, the smaller middle value, so one run cannot set the scale. */
function lowerMedian(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

/**
 * The y limits [lo, hi] for some series (each an array of y values, non-finite ones ignored).
 * Each series' own range is taken; the typical range is the lower median of their minima and
 * maxima; a series reaching more than SPANS typical spans beyond it is clipped there.
 */
export function robustLimits(seriesValues) {
  const ranges = seriesValues
    .map((values) => values.filter(Number.isFinite))
    .filter((values) => values.length)
    .map((values) => [Math.min(...values), Math.max(...values)]);
  if (!ranges.length) return [0, 1];
  const typicalLo = lowerMedian(ranges.map((r) => r[0]));
  const typicalHi = lowerMedian(ranges.map((r) => r[1]));
  const span = typicalHi - typicalLo || Math.abs(typicalHi) || 1;
  const lo = Math.max(Math.min(...ranges.map((r) => r[0])), typicalLo - SPANS * span);
  const hi = Math.min(Math.max(...ranges.map((r) => r[1])), typicalHi + SPANS * span);
  const pad = (hi - lo || Math.abs(hi) || 1) * 0.04;
  return [lo - pad, hi + pad];
}

/** About `count` round tick values between lo and hi (1, 2 or 5 times a power of ten apart). */
export function ticks(lo, hi, count = 5) {
  const raw = (hi - lo) / count;
  if (!(raw > 0) || !Number.isFinite(raw)) return [lo];
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  }
  return out;
}

function label(v) {
  if (v === 0) return "0";
  const a = Math.abs(v);
  return a >= 1e4 || a < 1e-3 ? v.toExponential(0) : String(Number(v.toPrecision(4)));
}

/**
 * A chart: {title, xLabel, yLabel, series: [{label, color, dash, points: [[x, y|null], ...]}],
 * yFormat?: (v) => string, integerX?: bool, empty?: the text shown when there is no point}. Returns a <figure> with the SVG, a legend and the
 * clipping note; `series` may be empty (the chart then says there is nothing to draw).
 */
export function lineChart({ title, xLabel, yLabel, series, yFormat = label, integerX = false, empty = "nothing recorded yet" }) {
  const drawn = series.filter((s) => s.points.length);
  const xs = drawn.flatMap((s) => s.points.map((p) => p[0])).filter(Number.isFinite);
  let [x0, x1] = xs.length ? [Math.min(...xs), Math.max(...xs)] : [0, 1];
  if (x0 === x1) [x0, x1] = [x0 - 1, x1 + 1];
  const [y0, y1] = robustLimits(drawn.map((s) => s.points.map((p) => p[1])));
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const sx = (x) => MARGIN.left + ((x - x0) / (x1 - x0)) * plotW;
  const sy = (y) => MARGIN.top + (1 - (y - y0) / (y1 - y0)) * plotH;

  const svg = h("svg", {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-label": title, class: "chart",
  }, h("title", {}, title));
  svg.append(axes(sx, sy, x0, x1, y0, y1, xLabel, yLabel, yFormat, integerX));

  const clipped = [];
  for (const s of drawn) {
    const { group, outside } = line(s, sx, sy, y0, y1, yFormat);
    svg.append(group);
    if (outside) clipped.push(`${s.label} (${outside})`);
  }
  if (!drawn.length) {
    svg.append(h("text", { x: WIDTH / 2, y: HEIGHT / 2, "text-anchor": "middle", class: "empty" }, empty));
  }
  return h("figure", { class: "chart-figure" },
    h("figcaption", {}, title),
    svg,
    legend(drawn),
    clipped.length
      ? h("p", { class: "clip-note" },
        "Off the scale, drawn on the edge (▲ beyond, ✕ not a number): ", clipped.join("; "))
      : null);
}

function axes(sx, sy, x0, x1, y0, y1, xLabel, yLabel, yFormat, integerX) {
  const g = h("g", { class: "axes" });
  const bottom = HEIGHT - MARGIN.bottom;
  for (const v of ticks(y0, y1)) {
    g.append(h("line", { x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: sy(v), y2: sy(v), class: "grid" }),
      h("text", { x: MARGIN.left - 6, y: sy(v) + 4, "text-anchor": "end" }, yFormat(v)));
  }
  const xt = ticks(x0, x1, 6).filter((v) => !integerX || Number.isInteger(v));
  for (const v of xt) {
    g.append(h("line", { x1: sx(v), x2: sx(v), y1: bottom, y2: bottom + 4, class: "tick" }),
      h("text", { x: sx(v), y: bottom + 16, "text-anchor": "middle" }, label(v)));
  }
  g.append(
    h("line", { x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: bottom, y2: bottom, class: "axis" }),
    h("line", { x1: MARGIN.left, x2: MARGIN.left, y1: MARGIN.top, y2: bottom, class: "axis" }),
    h("text", { x: MARGIN.left + (WIDTH - MARGIN.left - MARGIN.right) / 2, y: HEIGHT - 4, "text-anchor": "middle", class: "axis-label" }, xLabel),
    h("text", { x: 12, y: MARGIN.top + (bottom - MARGIN.top) / 2, "text-anchor": "middle", class: "axis-label",
      transform: `rotate(-90 12 ${MARGIN.top + (bottom - MARGIN.top) / 2})` }, yLabel),
  );
  return g;
}

/** One series: its polyline segments (broken at gaps) and the markers of clipped values. */
function line(s, sx, sy, y0, y1, yFormat) {
  const g = h("g", { class: "series", "data-label": s.label });
  const style = { stroke: s.color, "stroke-dasharray": s.dash ? "6 4" : null };
  let segment = [];
  let beyond = null;
  let notNumber = 0;
  const flush = () => {
    if (segment.length > 1) g.append(h("polyline", { points: segment.join(" "), fill: "none", ...style }));
    else if (segment.length === 1) {
      const [x, y] = segment[0].split(",");
      g.append(h("circle", { cx: x, cy: y, r: 2.5, fill: s.color }));
    }
    segment = [];
  };
  const dots = s.points.length <= MAX_DOTS;
  for (const [x, y] of s.points) {
    if (!Number.isFinite(x)) continue;
    const tip = `${s.label}: ${x} → ${y === null || y === undefined ? "not a number" : yFormat(y)}`;
    if (!Number.isFinite(y)) {
      flush();
      notNumber += 1;
      g.append(marker("✕", sx(x), sy(y1) + 4, s.color, tip));
    } else if (y > y1 || y < y0) {
      flush();
      beyond = beyond === null ? y : Math.max(beyond, y);
      const top = y > y1;
      g.append(marker(top ? "▲" : "▼", sx(x), top ? sy(y1) + 5 : sy(y0) - 1, s.color, tip));
    } else {
      segment.push(`${sx(x).toFixed(1)},${sy(y).toFixed(1)}`);
      if (dots) g.append(h("circle", { cx: sx(x), cy: sy(y), r: 2.2, fill: s.color, class: "dot" }, h("title", {}, tip)));
    }
  }
  flush();
  const notes = [];
  if (beyond !== null) notes.push(`up to ${yFormat(beyond)}`);
  if (notNumber) notes.push(`${notNumber} not a number`);
  return { group: g, outside: notes.join(", ") };
}

function marker(symbol, x, y, color, tip) {
  return h("text", { x, y, "text-anchor": "middle", class: "marker", fill: color }, symbol, h("title", {}, tip));
}

function legend(series) {
  return h("ul", { class: "legend" }, series.map((s) =>
    h("li", {},
      h("svg", { viewBox: "0 0 24 8", class: "swatch", "aria-hidden": "true" },
        h("line", { x1: 0, x2: 24, y1: 4, y2: 4, stroke: s.color, "stroke-width": 2.5,
          "stroke-dasharray": s.dash ? "5 3" : null })),
      s.label)));
}

/**
 * Series for runs' epoch records: for each run, train (dashed) and validation (solid) of one
 * quantity ("loss" or "acc"). runs: [{id, label, epochs: [metrics.jsonl records]}].
 */
export function epochSeries(runs, quantity) {
  return runs.flatMap((run, i) => {
    const color = PALETTE[i % PALETTE.length];
    const pick = (key) => run.epochs.map((r) => [r.epoch, typeof r[key] === "number" ? r[key] : null]);
    const has = (key) => run.epochs.some((r) => key in r); // no validation split: no line
    return [
      has(`train_${quantity}`) && { label: `${run.label} train`, color, dash: true, points: pick(`train_${quantity}`) },
      has(`val_${quantity}`) && { label: `${run.label} validation`, color, dash: false, points: pick(`val_${quantity}`) },
    ].filter(Boolean);
  });
}
