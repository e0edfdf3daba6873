// Drawing the architecture diagram as SVG (layout from arch_layout.js) and exporting it.
//
// Volumes are boxes as the slides draw them: the front face is W wide and H high, the oblique
// depth is C, each on a log scale (arch_layout.js `face`, `depth`); a vector is a thin bar. An
// addition is a circled +, a concatenation a "C" tile; a folded block is a card that opens on
// click or Enter. Every unit and tag is a focusable button (role="button"): the page's click
// handler receives the row or block it stands for.

import { place, chain } from "./arch_layout.js";

export const SVG_NS = "http://www.w3.org/2000/svg";
export const KIND_COLOURS = { // Okabe-Ito, colour-blind safe; the legend lists them
  conv: "#0072B2", pool: "#E69F00", linear: "#CC79A7", adaptive_pool: "#E69F00",
  lrn: "#56B4E9", input: "#999999", other: "#777777", cat: "#009E73", elementwise: "#D55E00",
  reshape: "#999999", softmax: "#777777",
};
export const LEGEND = [
  ["conv", "convolution"], ["pool", "pooling"], ["linear", "fully connected"],
  ["lrn", "local response norm"], ["cat", "concatenation"], ["elementwise", "residual addition"],
];

export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const short = (name) => name.split(".").slice(-2).join(".");

/** "55×55×96" (the slides' H×W×C), or "4096" for a vector. */
export function volume(shape) {
  return shape.length === 3 ? `${shape[1]}×${shape[2]}×${shape[0]}` : shape.join("×");
}

/** The label lines of a unit; `hidden(row)` says whether question mode hides its volume. */
export function unitLines(data, unit, hidden) {
  if (unit.block !== undefined) {
    const b = data.blocks[unit.block];
    const first = data.rows[b.first], last = data.rows[b.last];
    const kind = { residual: `residual, ${b.shortcut} shortcut`, concat: "branches, concatenated",
      dense: "dense concatenation", sequence: "" }[b.kind];
    return [
      `▸ ${b.name}`,
      [b.type, b.summary || kind].filter(Boolean).join(" · "),
      `${volume(first.input_shape)} → ${hidden(b.last) ? "?" : volume(last.output_shape)}`,
      `${b.text.params} params · ${b.text.macs} MACs`,
    ];
  }
  const row = data.rows[unit.row];
  const head = `${short(row.name)} · ${row.type}`;
  const geo = [];
  if (row.filters) geo.push(row.kind === "linear" ? `${row.filters} out` : `${row.filters} filters`);
  if (row.kernel !== null) geo.push(`${Array.isArray(row.kernel) ? row.kernel.join("x") : `${row.kernel}x${row.kernel}`}`);
  if (row.stride !== null && row.stride !== 1) geo.push(`stride ${row.stride}`);
  if (row.padding) geo.push(`pad ${row.padding}`);
  if (row.groups > 1) geo.push(`groups ${row.groups}`);
  const out = hidden(unit.row) ? "output ?" : volume(row.output_shape);
  const lines = [head];
  if (geo.length) lines.push(geo.join(" · "));
  lines.push(out);
  if (unit.tags.length) lines.push(unit.tags.map((i) => data.rows[i].type).join(" + "));
  return lines;
}

function box(g, x, y, colour) {
  const [fw, fh, d] = g.box;
  const dx = 0.7 * d, dy = 0.45 * d;
  const top = y; // the back edge's top
  return [
    s("polygon", { class: "side", points: `${x + fw},${top + dy} ${x + fw + dx},${top} ${x + fw + dx},${top + fh} ${x + fw},${top + fh + dy}`, fill: colour, "fill-opacity": 0.55, stroke: "#333", "stroke-width": 0.8 }),
    s("polygon", { class: "top", points: `${x},${top + dy} ${x + dx},${top} ${x + fw + dx},${top} ${x + fw},${top + dy}`, fill: colour, "fill-opacity": 0.35, stroke: "#333", "stroke-width": 0.8 }),
    s("rect", { class: "front", x, y: top + dy, width: fw, height: fh, fill: colour, "fill-opacity": 0.8, stroke: "#333", "stroke-width": 0.8 }),
  ];
}

function unitGlyph(unit, data) {
  const row = data.rows[unit.row];
  const colour = KIND_COLOURS[row.kind] || KIND_COLOURS.other;
  const g = unit.glyph;
  const { x, y } = unit;
  if (row.kind === "elementwise") {
    return [s("circle", { cx: x + 13, cy: y + 13, r: 12, fill: "#fff", stroke: colour, "stroke-width": 2 }),
      s("text", { x: x + 13, y: y + 18, "text-anchor": "middle", "font-size": 17, fill: colour, "font-weight": 700 }, "+")];
  }
  if (row.kind === "cat") {
    return [s("rect", { x, y, width: 26, height: 26, rx: 5, fill: "#fff", stroke: colour, "stroke-width": 2 }),
      s("text", { x: x + 13, y: y + 18, "text-anchor": "middle", "font-size": 13, fill: colour, "font-weight": 700 }, "C")];
  }
  if (g.box) return box(g, x, y, colour);
  if (g.bar) return [s("rect", { x, y, width: g.w, height: g.h, fill: colour, "fill-opacity": 0.8, stroke: "#333", "stroke-width": 0.8 })];
  return [s("rect", { x, y, width: g.w, height: g.h, rx: 3, fill: colour, "fill-opacity": 0.5, stroke: "#333", "stroke-width": 0.8 })];
}

function edgePath(a, b) {
  const x1 = a.x + (a.glyph.w || a.w) / 2, y1 = a.y + a.h;
  const x2 = b.x + (b.glyph.w || b.w) / 2, y2 = b.y;
  if (a.lane === b.lane && b.rank > a.rank + 1) { // a skip (identity shortcut, dense): an arc left
    const bend = Math.min(40, 14 + 5 * (b.rank - a.rank));
    const xa = a.x - 4, xb = b.x - 4;
    return { d: `M${xa},${a.y + a.h / 2} C${xa - bend},${a.y + a.h / 2} ${xb - bend},${b.y + 8} ${xb},${b.y + 8}`, skip: true };
  }
  const my = (y1 + y2) / 2;
  return { d: `M${x1},${y1} C${x1},${my} ${x2},${my} ${x2},${y2}`, skip: false };
}

/**
 * Draw the diagram into `svg`. opts: {open, hidden(row), selected, onRow(i), onBlock(k, open)}.
 * Returns the layout.
 */
export function draw(svg, data, opts) {
  const lay = place(data, opts.open, (u) => unitLines(data, u, opts.hidden));
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${lay.width} ${lay.height}`);
  svg.setAttribute("width", lay.width);
  svg.setAttribute("height", lay.height);
  svg.append(s("defs", {}, s("marker", { id: "arch-arrow", viewBox: "0 0 8 8", refX: 7, refY: 4, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
    s("path", { d: "M0,0 L8,4 L0,8 z", fill: "#555" }))));
  svg.append(s("rect", { class: "paper", x: 0, y: 0, width: lay.width, height: lay.height, fill: "#ffffff" }));
  const frames = s("g", { class: "frames" });
  for (const f of lay.frames.sort((p, q) => p.depth - q.depth)) {
    const b = data.blocks[f.block];
    const close = () => opts.onBlock(f.block, false);
    frames.append(s("g", { class: "frame", "data-block": b.name },
      s("rect", { x: f.x, y: f.y, width: f.w, height: f.h, rx: 8, fill: f.depth % 2 ? "#f4f7fb" : "#fbfbf7", stroke: "#b8c2cc", "stroke-dasharray": "4 3" }),
      s("g", { class: "fold", role: "button", tabindex: 0, "aria-label": `fold ${b.name}`, "data-block": b.name, onclick: close, onkeydown: keys(close) },
        s("text", { x: f.x + 8, y: f.y + 15, "font-size": 12, "font-weight": 600, fill: "#333" },
          `▾ ${b.name} · ${b.type}${b.kind === "residual" ? ` (residual, ${b.shortcut} shortcut)` : b.kind === "dense" ? " (dense concatenation)" : b.kind === "concat" ? " (branches, concatenated)" : ""}`))));
  }
  svg.append(frames);
  const edges = s("g", { class: "edges" });
  for (const u of lay.list) for (const v of u.from) {
    const p = edgePath(lay.list[v], u);
    edges.append(s("path", { class: p.skip ? "edge skip" : "edge", d: p.d, fill: "none", stroke: p.skip ? "#D55E00" : "#555", "stroke-width": p.skip ? 1.2 : 1.1, "stroke-opacity": p.skip ? 0.7 : 0.9, "marker-end": "url(#arch-arrow)" }));
  }
  svg.append(edges);
  const nodes = s("g", { class: "units" });
  for (const u of lay.list) nodes.append(u.block !== undefined ? blockCard(u, data, opts) : rowUnit(u, data, opts));
  svg.append(nodes);
  return lay;
}

function keys(action) {
  return (event) => {
    if (event.key === "Enter" || event.key === " ") { event.preventDefault(); action(); }
  };
}

function rowUnit(u, data, opts) {
  const row = data.rows[u.row];
  const lines = unitLines(data, u, opts.hidden);
  const tx = u.x + u.glyph.w + 10;
  const pick = () => opts.onRow(u.row);
  const g = s("g", { class: `unit${opts.selected === u.row ? " selected" : ""}`, role: "button", tabindex: 0,
    "data-row": row.name, "data-kind": row.kind, "aria-label": `${row.name}, ${row.type}: details`, onclick: pick, onkeydown: keys(pick) },
  s("rect", { class: "hit", x: u.x - 4, y: u.y - 3, width: u.w + 6, height: u.h + 4, rx: 4, fill: opts.selected === u.row ? "#fff3c4" : "#ffffff", "fill-opacity": opts.selected === u.row ? 1 : 0 }),
  ...unitGlyph(u, data));
  lines.slice(0, u.tags.length ? -1 : undefined).forEach((t, n) => g.append(s("text", {
    x: tx, y: u.y + 12 + 14 * n, "font-size": n === 0 ? 12 : 11, "font-weight": n === 0 ? 600 : 400,
    fill: n === lines.length - 1 - (u.tags.length ? 1 : 0) ? "#0b3d6b" : "#222", class: n === 0 ? "name" : "detail",
  }, t)));
  const parent = s("g", {}, g);
  if (u.tags.length) { // the attached norm/activation/dropout: each its own button
    let x = tx;
    const y = u.y + 12 + 14 * (lines.length - 1) - 10;
    for (const i of u.tags) {
      const tag = data.rows[i];
      const w = tag.type.length * 6.2 + 10;
      const pickTag = (event) => { event.stopPropagation(); opts.onRow(i); };
      parent.append(s("g", { class: `tag${opts.selected === i ? " selected" : ""}`, role: "button", tabindex: 0, "data-row": tag.name,
        "aria-label": `${tag.name}, ${tag.type}: details`, onclick: pickTag, onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") pickTag(e); } },
      s("rect", { x, y, width: w, height: 13, rx: 6, fill: opts.selected === i ? "#ffd866" : "#eef1f4", stroke: "#9aa5b1", "stroke-width": 0.6 }),
      s("text", { x: x + 5, y: y + 10, "font-size": 10, fill: "#333" }, tag.type)));
      x += w + 4;
    }
  }
  return parent;
}

function blockCard(u, data, opts) {
  const b = data.blocks[u.block];
  const lines = unitLines(data, u, opts.hidden);
  const openIt = () => opts.onBlock(u.block, true);
  const colour = { residual: "#D55E00", concat: "#009E73", dense: "#009E73", sequence: "#0072B2" }[b.kind];
  const g = s("g", { class: "block", role: "button", tabindex: 0, "data-block": b.name, "data-kind": b.kind,
    "aria-label": `open ${b.name}, ${b.type}`, "aria-expanded": "false", onclick: openIt, onkeydown: keys(openIt) },
  s("rect", { x: u.x, y: u.y, width: u.w, height: u.h, rx: 8, fill: "#ffffff", stroke: colour, "stroke-width": 1.6 }),
  s("rect", { x: u.x, y: u.y, width: 6, height: u.h, rx: 3, fill: colour }));
  lines.forEach((t, n) => g.append(s("text", { x: u.x + 14, y: u.y + 17 + 14 * n, "font-size": n === 0 ? 12 : 11, "font-weight": n === 0 ? 600 : 400, fill: "#222" }, t)));
  return g;
}

/** The legend of the colours (kinds) and shapes, as SVG. */
export function legend() {
  const items = LEGEND.map(([k, label], n) => s("g", { transform: `translate(${n * 150},0)` },
    s("rect", { x: 0, y: 0, width: 12, height: 12, fill: KIND_COLOURS[k], "fill-opacity": 0.8, stroke: "#333", "stroke-width": 0.6 }),
    s("text", { x: 17, y: 10, "font-size": 11, fill: "#222" }, label)));
  items.push(s("g", { transform: `translate(${LEGEND.length * 150},0)` },
    s("path", { d: "M0,6 C-8,6 -8,14 0,14", fill: "none", stroke: "#D55E00" }),
    s("text", { x: 8, y: 10, "font-size": 11, fill: "#222" }, "shortcut / skip")));
  return s("svg", { class: "arch-legend", width: (LEGEND.length + 1) * 150, height: 16, role: "img", "aria-label": "legend" }, items);
}

// --- export ---------------------------------------------------------------------------------

const STYLE_PROPS = ["fill", "fill-opacity", "stroke", "stroke-width", "stroke-opacity", "stroke-dasharray",
  "font-family", "font-size", "font-weight", "text-anchor", "opacity"];

/** The diagram as a standalone SVG document: computed styles inlined, no outside reference. */
export function svgText(svg) {
  const copy = svg.cloneNode(true);
  const from = svg.querySelectorAll("*");
  const to = copy.querySelectorAll("*");
  from.forEach((el, n) => {
    const style = getComputedStyle(el);
    const inline = STYLE_PROPS.map((p) => `${p}:${style.getPropertyValue(p)}`).join(";");
    to[n].setAttribute("style", inline);
    to[n].removeAttribute("tabindex");
    to[n].removeAttribute("role");
  });
  copy.setAttribute("xmlns", SVG_NS);
  copy.setAttribute("font-family", "DejaVu Sans, Arial, sans-serif");
  return '<?xml version="1.0" encoding="UTF-8"?>\n' + new XMLSerializer().serializeToString(copy);
}

/** The SVG drawn on a canvas at `scale`, as a PNG blob (no request: the SVG is a blob URL). */
export function pngBlob(text, width, height, scale = 2) {
  // Canvases stop at about 16,000 px a side (and a few hundred megapixels): a long diagram is
  // scaled down to fit rather than failing.
  scale = Math.min(scale, 16000 / Math.max(width, height), Math.sqrt(1.2e8 / (width * height)));
  return new Promise((resolve, reject) => {
    const url = URL.createObjectURL(new Blob([text], { type: "image/svg+xml" }));
    const img = new Image();
    img.onload = () => {
      const canvas = document.createElement("canvas");
      canvas.width = Math.ceil(width * scale);
      canvas.height = Math.ceil(height * scale);
      const ctx = canvas.getContext("2d");
      ctx.fillStyle = "#ffffff";
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
      URL.revokeObjectURL(url);
      canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error("the PNG could not be made"))), "image/png");
    };
    img.onerror = () => { URL.revokeObjectURL(url); reject(new Error("the SVG could not be drawn for the PNG")); };
    img.src = url;
  });
}

export { chain };
