// What the two labs share: the labs' endpoints, number formatting and grids of numbers.
//
// A grid is a <table> whose cells are kept in `cells[r][c]`, so a step of the conv lab updates a
// handful of cells instead of redrawing thousands (a step's goal is 50 ms).

import { ApiError } from "./api.js";
import { h } from "./dom.js";

async function call(method, path, body) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, `the studio does not answer (${err.message}): is it still running?`);
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, (data && data.error) || `${path} failed (${response.status})`);
  return data;
}

let constants = null;

/** The labs' endpoints (src/cnnlab/studio/labs.py). */
export const labs = {
  /** The forms' ranges and choices, fetched once per page. */
  constants: async () => (constants ||= await call("GET", "/api/labs")),
  conv: (body) => call("POST", "/api/labs/conv", body),
  pool: (body) => call("POST", "/api/labs/pool", body),
  box: () => call("GET", "/api/labs/box"),
  sample: () => call("POST", "/api/labs/photo", {}),
  upload: (file) => {
    const form = new FormData();
    form.append("image", file);
    return call("POST", "/api/labs/photo", form);
  },
  filter: (body) => call("POST", "/api/labs/filter", body),
  receptive: (layers, channels) => call("GET", `/api/labs/receptive?layers=${layers}&channels=${channels}`),
};

/**
 * A number as the labs print it: integers whole, others to 4 significant digits without trailing
 * zeros (90 · 1/9 = 9.999999999999998 prints 10, as the slides do); -0 prints 0.
 */
export function fmt(v) {
  if (v === null || v === undefined) return "";
  if (!Number.isFinite(v)) return v > 0 ? "∞" : v < 0 ? "−∞" : "NaN";
  const r = Number(v.toPrecision(4));
  return String(Object.is(r, -0) ? 0 : r);
}

/**
 * A table of numbers. values: rows of numbers (or null: empty cells of `rows` x `cols`).
 * Returns {table, cells} with cells[r][c] the <td>. opts: {label, cls(r, c), rowHead, colHead,
 * focusable}: cls gives extra classes per cell, rowHead/colHead label the rows/columns.
 */
export function grid(values, opts = {}) {
  const rows = values ? values.length : opts.rows;
  const cols = values ? (values[0] || []).length : opts.cols;
  const cells = [];
  const body = [];
  for (let r = 0; r < rows; r++) {
    const row = [];
    for (let c = 0; c < cols; c++) {
      const td = h("td", { class: opts.cls ? opts.cls(r, c) : null, "data-r": r, "data-c": c,
        tabindex: opts.focusable ? 0 : null }, values ? fmt(values[r][c]) : "");
      row.push(td);
    }
    cells.push(row);
    body.push(h("tr", {}, opts.rowHead ? h("th", { scope: "row" }, opts.rowHead(r)) : null, row));
  }
  const head = opts.colHead
    ? h("thead", {}, h("tr", {}, opts.rowHead ? h("th", {}) : null,
      Array.from({ length: cols }, (_, c) => h("th", { scope: "col" }, opts.colHead(c)))))
    : null;
  const table = h("table", { class: `grid ${opts.className || ""}`, "aria-label": opts.label || null },
    head, h("tbody", {}, body));
  return { table, cells };
}

/** A titled block: <figure class="block"><figcaption>title</figcaption>...</figure>. */
export function block(title, ...children) {
  return h("figure", { class: "block" }, h("figcaption", {}, title), ...children);
}

/** Parse typed numbers: rows on lines, numbers split by spaces or commas; blank lines split
 * channels. Returns [channel][row][col] or throws an Error naming the bad line. */
export function parseGrids(text) {
  const channels = [[]];
  text.split("\n").forEach((line, n) => {
    const words = line.trim().split(/[\s,;]+/).filter(Boolean);
    if (!words.length) {
      if (channels[channels.length - 1].length) channels.push([]);
      return;
    }
    const row = words.map(Number);
    if (row.some((v) => !Number.isFinite(v))) throw new Error(`line ${n + 1}: "${line.trim()}" is not all numbers`);
    channels[channels.length - 1].push(row);
  });
  if (!channels[channels.length - 1].length) channels.pop();
  return channels;
}

/** The inverse of parseGrids: channels as blocks of lines. */
export function formatGrids(channels) {
  return channels.map((rows) => rows.map((row) => row.map(fmt).join(" ")).join("\n")).join("\n\n");
}
