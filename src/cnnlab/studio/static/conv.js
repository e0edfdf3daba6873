// The convolution lab: one conv layer on a small input, step by step.
//
// The settings live in the URL fragment (#/conv?h=5&w=5&channels=3&...&step=4), so a reload, a
// link or a test lands on the same configuration and step. The server computes everything with
// cnnlab.scratch (POST /api/labs/conv): the padded input, the output, the im2col matrix, the
// output-size formula and, when the windows do not tile the input, the analyzer's note. The page
// steps through the output cells with the twin in conv_step.js (instant), and pooling comes from
// POST /api/labs/pool (cnnlab.scratch.layers, forward and backward).

import { fill, h } from "./dom.js";
import { block, fmt, formatGrids, grid, labs, parseGrids } from "./conv_grid.js";
import { backward, cell, cellOf } from "./conv_step.js";

// The form: [setting, label, fieldset]. Ranges and defaults come from GET /api/labs.
const FIELDS = [
  ["h", "Height", "input"], ["w", "Width", "input"], ["channels", "Channels", "input"],
  ["seed", "Seed", "input"], ["crop_x", "Crop left", "photo"], ["crop_y", "Crop top", "photo"],
  ["kernel", "Kernel size", "layer"], ["filters", "Filters", "layer"], ["stride", "Stride", "layer"],
  ["padding", "Padding", "layer"], ["dilation", "Dilation", "layer"],
];
const SOURCES = {
  random: "random integers (seeded)",
  grid: "typed grid",
  photo: "crop of the sample photo",
  slides: "the slides' box filter (f and 1/9 box)",
};
const POOL_FIELDS = [["size", "Window"], ["stride", "Stride"], ["padding", "Padding"], ["seed", "Seed of ∂L/∂y"]];
const PLAY_MS = 350;
const SUM_TERMS = 27; // the sum is written out term by term up to this many products

// Typed grids travel in the fragment: numbers by ",", rows by ";", channels (or blocks) by "|".
const encode = (blocks) => blocks.map((rows) => rows.map((r) => r.join(",")).join(";")).join("|");
const decode = (text) => text.split("|").map((b) => b.split(";").map((r) => r.split(",").map(Number)));

export async function render(main, { params, isCurrent }) {
  const constants = await labs.constants();
  if (!isCurrent()) return null;
  const cfg = readConfig(params, constants);
  const lab = h("section", { id: "conv-lab", class: "lab", "data-key": params.toString(), "aria-labelledby": "conv-title" });
  const results = h("div", { class: "lab-results" });
  const form = settingsForm(cfg, constants);
  main.append(h("h1", { id: "conv-title" }, "Convolution lab"),
    h("p", { class: "hint" }, "One convolution layer, computed by cnnlab.scratch (the NumPy layers with ",
      "their backward passes): pick the input, the filters and the geometry, then step through the ",
      "output cells with ← and → (Home, End) or the buttons."),
    lab);
  lab.append(form.element, results);

  let data;
  try {
    data = await labs.conv(requestBody(cfg));
  } catch (err) {
    fill(results, h("p", { class: "error", id: "conv-error", role: "alert" }, err.message));
    lab.dataset.ready = "error";
    return null;
  }
  if (!isCurrent()) return null;
  form.loaded(data);
  const view = drawLab(results, data, cfg, params);
  const pool = poolPanel(results, data, params);
  lab.dataset.ready = "1";
  return () => {
    view.stop();
    pool.stop();
  };
}

function readConfig(params, constants) {
  const cfg = { source: params.get("source") || "random", mode: params.get("mode") || "zero", photo: params.get("photo") || "sample" };
  for (const [name, [, , byDefault]] of Object.entries(constants.conv)) {
    cfg[name] = params.has(name) ? Number(params.get(name)) : byDefault;
  }
  cfg.input = params.get("input") ? decode(params.get("input")) : null;
  cfg.weights = params.get("weights") ? decode(params.get("weights")) : null;
  return cfg;
}

/** The JSON body of POST /api/labs/conv; typed weights arrive as K·C blocks of k rows. */
function requestBody(cfg) {
  const body = { ...cfg };
  delete body.weights;
  if (!cfg.input || cfg.source !== "grid") delete body.input;
  if (cfg.weights) {
    body.weights = Array.from({ length: cfg.filters }, (_, k) =>
      Array.from({ length: cfg.channels }, (_, c) => cfg.weights[k * cfg.channels + c]));
  }
  return body;
}

// --- the form --------------------------------------------------------------------------------

function settingsForm(cfg, constants) {
  const inputs = {};
  const field = ([name, label]) => {
    const [low, high] = constants.conv[name];
    inputs[name] = h("input", { id: `conv-${name}`, type: "number", min: low, max: high, step: 1, value: cfg[name], class: "short" });
    return h("div", { class: "field", "data-for": name }, h("label", { for: `conv-${name}` }, label), inputs[name]);
  };
  const source = h("select", { id: "conv-source", onchange: () => showFor(source.value) },
    constants.sources.map((s) => h("option", { value: s, selected: s === cfg.source }, SOURCES[s] || s)));
  const mode = h("select", { id: "conv-mode" }, constants.modes.map((m) => h("option", { value: m, selected: m === cfg.mode }, m)));
  const typed = h("textarea", { id: "conv-input", rows: 6, cols: 30, spellcheck: "false" });
  const weights = h("textarea", { id: "conv-weights", rows: 4, cols: 30, spellcheck: "false",
    placeholder: "blank: seeded random integers" }, cfg.weights ? formatGrids(cfg.weights) : "");
  const [lo, hi] = constants.random.x;
  const [wlo, whi] = constants.random.w;
  const photoRow = h("div", { class: "field-row", "data-for": "photo" },
    FIELDS.filter((f) => f[2] === "photo").map(field),
    h("p", { class: "hint" }, `A crop of ${constants.sample} shrunk to ${constants.crop_side} px; channels 1 (gray) or 3 (RGB).`));
  const typedRow = h("div", { class: "field", "data-for": "grid" },
    h("label", { for: "conv-input" }, "Input values (rows on lines, a blank line between channels)"), typed);
  const error = h("p", { class: "error", role: "alert", hidden: true });
  const element = h("form", { class: "lab-form", onsubmit: submit },
    h("fieldset", {}, h("legend", {}, "Input"),
      h("div", { class: "field" }, h("label", { for: "conv-source" }, "Values"), source),
      h("div", { class: "field-row" }, FIELDS.filter((f) => f[2] === "input").map(field)),
      photoRow, typedRow,
      h("p", { class: "hint" }, `Random: input ${lo}…${hi}, weights and bias ${wlo}…${whi}, from the seed.`)),
    h("fieldset", {}, h("legend", {}, "Layer"),
      h("div", { class: "field-row" }, FIELDS.filter((f) => f[2] === "layer").map(field),
        h("div", { class: "field" }, h("label", { for: "conv-mode" }, "Padding mode"), mode)),
      h("div", { class: "field" }, h("label", { for: "conv-weights" },
        "Weights (optional: a k-row block per filter and channel, filter by filter, blank lines between)"), weights)),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Compute"), error));
  showFor(cfg.source);

  function showFor(value) {
    photoRow.hidden = value !== "photo";
    typedRow.hidden = value !== "grid";
  }

  function submit(event) {
    event.preventDefault();
    const q = new URLSearchParams({ source: source.value });
    for (const [name] of FIELDS) {
      if (name.startsWith("crop") && source.value !== "photo") continue;
      q.set(name, inputs[name].value);
    }
    q.set("mode", mode.value);
    if (source.value === "photo" && cfg.photo !== "sample") q.set("photo", cfg.photo);
    try {
      if (source.value === "grid") q.set("input", encode(parseGrids(typed.value)));
      if (weights.value.trim()) q.set("weights", encode(parseGrids(weights.value)));
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
      return;
    }
    location.hash = `#/conv?${q}`;
  }

  return {
    element,
    /** After a computation: the typed grid starts from the values shown. */
    loaded(data) {
      typed.value = formatGrids(data.x);
    },
  };
}

// --- the lab ---------------------------------------------------------------------------------

function drawLab(results, data, cfg, params) {
  const S = data.settings;
  const [ho, wo] = data.out_size;
  const total = S.filters * ho * wo;
  const pad = S.padding;
  const isPad = (r, c) => r < pad || c < pad || r >= pad + S.h || c >= pad + S.w;

  // Output size: the slides' formula with the numbers in, and the analyzer's words.
  const { rows, cols } = data.formula;
  const formula = h("section", { class: "formula", "aria-labelledby": "conv-size-h" },
    h("h2", { id: "conv-size-h" }, "Output size"),
    h("p", {}, "(W − F + 2P)/S + 1, with F = d·(K − 1) + 1 the dilated filter's extent",
      S.dilation > 1 ? ` (here ${S.dilation}·(${S.kernel} − 1) + 1 = ${rows.extent})` : "", ":"),
    h("p", { class: "eq", id: "conv-formula-rows" }, `height: ${rows.text}`),
    h("p", { class: "eq", id: "conv-formula-cols" }, `width: ${cols.text}`),
    h("p", {}, `Output: ${S.filters} filter${S.filters > 1 ? "s" : ""} × ${ho} × ${wo}; `,
      `the ${S.mode} border adds ${pad} on each side (${S.h + 2 * pad} × ${S.w + 2 * pad} padded).`),
    data.notes.map((note) => h("p", { class: "note", "data-source": "analyzer" }, "The analyzer: ", note)));

  // The stepper.
  const status = h("span", { id: "conv-status", "aria-live": "polite" });
  const play = h("button", { type: "button", id: "conv-play", onclick: () => toggle() }, "Play");
  const buttons = h("div", { class: "stepper", role: "group", "aria-label": "step through the output cells" },
    h("button", { type: "button", id: "conv-first", onclick: () => show(0) }, "« First"),
    h("button", { type: "button", id: "conv-back", onclick: () => show(t - 1) }, "◀ Back"),
    h("button", { type: "button", id: "conv-step", onclick: () => show(t + 1) }, "Step ▶"),
    play,
    h("button", { type: "button", id: "conv-last", onclick: () => show(total - 1) }, "Last »"),
    status);

  // Padded input, one grid per channel.
  const inputs = data.xp.map((plane, c) => grid(plane, { label: `padded input, channel ${c}`,
    className: "conv-input", cls: (r, col) => (isPad(r, col) ? "pad" : null) }));
  // The filter of the current cell, its products, the sum.
  const weights = data.w[0].map((_, c) => grid(null, { rows: S.kernel, cols: S.kernel, label: `weights, channel ${c}`, className: "conv-weights" }));
  const products = data.w[0].map((_, c) => grid(null, { rows: S.kernel, cols: S.kernel, label: `products, channel ${c}`, className: "conv-products" }));
  const bias = h("span", { id: "conv-bias" });
  const sumTerms = h("span", { id: "conv-sum-terms" });
  const sumValue = h("strong", { id: "conv-sum" });
  const sum = h("p", { class: "sum" }, sumTerms, " = ", sumValue);
  // Output, one grid per filter.
  const outputs = data.out.map((plane, k) => grid(null, { rows: ho, cols: wo, label: `output, filter ${k}`, className: "conv-out" }));
  // Backward: dXp and dW of the current cell.
  const dx = data.xp.map((plane, c) => grid(null, { rows: plane.length, cols: plane[0].length, label: `dX (padded), channel ${c}`,
    className: "conv-dx", cls: (r, col) => (isPad(r, col) ? "pad" : null) }));
  const dw = data.w[0].map((_, c) => grid(null, { rows: S.kernel, cols: S.kernel, label: `dW, channel ${c}`, className: "conv-dw" }));
  const im2col = im2colPanel(data);

  const chan = (c) => (S.channels > 1 ? ` · channel ${c}` : "");
  const filterTitle = h("span", {});
  fill(results, formula,
    h("section", { "aria-labelledby": "conv-step-h" }, h("h2", { id: "conv-step-h" }, "Step by step"), buttons,
      h("div", { class: "blocks" },
        h("div", { class: "blocks-col" }, inputs.map((g, c) => block(`Padded input${chan(c)}`, h("div", { class: "scroll" }, g.table)))),
        h("div", { class: "blocks-col" },
          h("figure", { class: "block" }, h("figcaption", {}, filterTitle),
            h("div", { class: "blocks" }, weights.map((g, c) => h("div", {}, h("small", {}, `w${chan(c)}`), g.table))),
            h("p", {}, "bias b = ", bias)),
          block("Element-wise products x · w", h("div", { class: "blocks" }, products.map((g, c) => h("div", {}, h("small", {}, `c = ${c}`), g.table))), sum)),
        h("div", { class: "blocks-col" }, outputs.map((g, k) => block(`Output · filter ${k}`, h("div", { class: "scroll" }, g.table)))))),
    h("section", { "aria-labelledby": "conv-back-h" }, h("h2", { id: "conv-back-h" }, "Backward pass of this cell"),
      h("p", { class: "hint" }, "With ∂L/∂y = 1 at the current cell and 0 elsewhere: the cell adds the window to dW of its filter ",
        "(the other filters get nothing) and its filter, placed on the window, to dX, shown on the padded input: a zero ",
        "border's share is dropped, a reflect, replicate or circular border's flows back to the pixels it copies. db of the filter gets 1."),
      h("div", { class: "blocks" },
        h("div", { class: "blocks-col" }, dx.map((g, c) => block(`dX (padded)${chan(c)}`, h("div", { class: "scroll" }, g.table)))),
        h("div", { class: "blocks-col" }, block("dW of this filter", h("div", { class: "blocks" }, dw.map((g, c) => h("div", {}, h("small", {}, `c = ${c}`), g.table))))))),
    im2col.element);

  let t = -1;
  let taps = [];
  let k = -1;
  let timer = null;
  const start = params.get("step") === "last" ? total - 1 : Number(params.get("step") || 0);
  show(Number.isFinite(start) ? start : 0);

  /** Move to output cell n: highlight its window, write its products and sum, fill the output. */
  function show(n) {
    n = Math.max(0, Math.min(total - 1, n));
    const at = cellOf(n, data.out_size);
    const one = cell(data.xp, data.w, data.b, at.k, at.i, at.j, S.stride, S.dilation);
    const grad = backward(data.xp, data.w, at.k, at.i, at.j, S.stride, S.dilation);
    for (const { c, r, col } of taps) {
      inputs[c].cells[r][col].classList.remove("tap");
      dx[c].cells[r][col].textContent = "";
      dx[c].cells[r][col].classList.remove("tap");
    }
    taps = [];
    data.xp.forEach((_, c) => one.window.forEach(({ r, c: col }) => taps.push({ c, r, col })));
    for (const { c, r, col } of taps) inputs[c].cells[r][col].classList.add("tap");
    for (const { c, r, col, value } of grad.dxp) {
      dx[c].cells[r][col].textContent = fmt(value);
      dx[c].cells[r][col].classList.add("tap");
    }
    if (at.k !== k) {
      k = at.k;
      filterTitle.textContent = `Filter ${k}`;
      data.w[k].forEach((plane, c) => plane.forEach((row, u) => row.forEach((v, vv) => { weights[c].cells[u][vv].textContent = fmt(v); })));
      bias.textContent = fmt(data.b[k]);
    }
    one.products.forEach((plane, c) => plane.forEach((row, u) => row.forEach((p, v) => {
      products[c].cells[u][v].textContent = fmt(p);
      products[c].cells[u][v].title = `${fmt(data.xp[c][one.window[u * S.kernel + v].r][one.window[u * S.kernel + v].c])} × ${fmt(data.w[k][c][u][v])}`;
    })));
    grad.dw.forEach((plane, c) => plane.forEach((row, u) => row.forEach((v, vv) => { dw[c].cells[u][vv].textContent = fmt(v); })));
    const term = (v) => (v < 0 ? `(${fmt(v)})` : fmt(v));
    const terms = one.terms.length <= SUM_TERMS ? one.terms.map((x) => term(x.p)).join(" + ") : `Σ of ${one.terms.length} products`;
    sumTerms.textContent = `${terms} + b ${term(data.b[k])}`;
    sumValue.textContent = fmt(one.sum);
    fillOutputs(n);
    im2col.show(at);
    status.textContent = `cell ${n + 1} of ${total}: filter ${at.k}, row ${at.i}, column ${at.j}`;
    results.closest(".lab").dataset.step = String(n);
  }

  /** Output cells up to n hold cnnlab.scratch's values; the current one is marked. */
  function fillOutputs(n) {
    const [lo, hi] = t < 0 ? [0, total - 1] : [Math.min(t, n), Math.max(t, n)];
    for (let m = lo; m <= hi; m++) {
      const c = cellOf(m, data.out_size);
      const td = outputs[c.k].cells[c.i][c.j];
      td.textContent = m <= n ? fmt(data.out[c.k][c.i][c.j]) : "";
      td.classList.toggle("filled", m <= n);
      td.classList.toggle("current", m === n);
    }
    t = n;
  }

  function toggle(on = timer === null) {
    clearInterval(timer);
    timer = null;
    play.textContent = on ? "Pause" : "Play";
    if (!on) return;
    if (t >= total - 1) show(0);
    timer = setInterval(() => (t >= total - 1 ? toggle(false) : show(t + 1)), PLAY_MS);
  }

  const keys = (event) => {
    if (event.target.closest("input, textarea, select") || event.altKey || event.ctrlKey || event.metaKey) return;
    const move = { ArrowRight: t + 1, ArrowLeft: t - 1, Home: 0, End: total - 1 }[event.key];
    if (move === undefined) return;
    event.preventDefault();
    show(move);
  };
  document.addEventListener("keydown", keys);
  return {
    stop() {
      toggle(false);
      document.removeEventListener("keydown", keys);
    },
  };
}

/** im2col: the matrix whose one product with the weights replaces the loops. */
function im2colPanel(data) {
  const S = data.settings;
  const [ho, wo] = data.out_size;
  const [rows, cols] = data.col_shape;
  const kk = S.kernel * S.kernel;
  const rowName = (r) => `${Math.floor(r / kk)},${Math.floor((r % kk) / S.kernel)},${r % S.kernel}`;
  const weights = grid(data.w.map((f) => f.flat(2)), { label: "weights as a matrix", className: "conv-wmat",
    rowHead: (k) => `filter ${k}`, colHead: rowName });
  const col = data.col ? grid(data.col, { label: "im2col matrix", className: "conv-col",
    rowHead: rowName, colHead: (c) => `${Math.floor(c / wo)},${c % wo}` }) : null;
  const product = h("p", { class: "eq", id: "conv-gemm" });
  const element = h("section", { "aria-labelledby": "conv-im2col-h" }, h("h2", { id: "conv-im2col-h" }, "im2col: one matrix product"),
    h("p", {}, `Every window, unrolled, is a column of a ${rows} × ${cols} matrix (rows: channel, kernel row, kernel column; `,
      `columns: output row, column). Then Y = W · col + b is one ${S.filters} × ${rows} by ${rows} × ${cols} product `,
      "instead of the loops (cnnlab.scratch.fast.im2col and conv2d_forward)."),
    product,
    block("W (filters × C·k·k)", h("div", { class: "scroll" }, weights.table)),
    col ? block("col (C·k·k × Ho·Wo)", h("div", { class: "scroll tall" }, col.table))
      : h("p", { class: "note" }, `The im2col matrix has ${rows} × ${cols} = ${(rows * cols).toLocaleString("en")} entries; the lab draws it up to `,
        `${data.im2col_limit.toLocaleString("en")}: shrink the input or the kernel to see it. The current column is the window above, read row by row.`));
  let last = null;
  return {
    element,
    show({ k, i, j }) {
      const c = i * wo + j;
      if (last) {
        weights.cells[last.k].forEach((td) => td.classList.remove("current"));
        if (col) col.cells.forEach((row) => row[last.c].classList.remove("current"));
      }
      weights.cells[k].forEach((td) => td.classList.add("current"));
      if (col) col.cells.forEach((row) => row[c].classList.add("current"));
      last = { k, c };
      product.textContent = `y[${k}, ${i}, ${j}] = W[filter ${k}] · col[:, column ${c}] + b[${k}] = ${fmt(data.out[k][i][j])}`;
    },
  };
}

// --- pooling ---------------------------------------------------------------------------------

function poolPanel(results, data, params) {
  const section = h("section", { id: "pool-lab", "aria-labelledby": "pool-h" });
  results.append(section);
  const values = {};
  let selected = { c: 0, i: 0, j: 0 };
  let answer = null;
  let drawn = null;
  const kind = h("select", { id: "pool-kind", onchange: update },
    ["max", "avg"].map((v) => h("option", { value: v, selected: v === (params.get("pool_kind") || "max") }, v === "max" ? "max pooling" : "average pooling")));
  const fields = POOL_FIELDS.map(([name, label]) => {
    values[name] = h("input", { id: `pool-${name}`, type: "number", class: "short", value: params.get(`pool_${name}`) || (name === "padding" ? 0 : name === "seed" ? 0 : 2), onchange: update });
    return h("div", { class: "field" }, h("label", { for: `pool-${name}` }, label), values[name]);
  });
  const out = h("div", {});
  fill(section, h("h2", { id: "pool-h" }, "Pooling and its backward pass"),
    h("p", { class: "hint" }, "Pooling the same input (cnnlab.scratch.layers). Backward: each output's ∂L/∂y (seeded integers) goes, for max ",
      "pooling, all to the pixel that was the maximum; for average pooling, shared equally by the window. Pick an output cell ",
      "(click or focus it) to see its window and where its gradient goes."),
    h("form", { class: "lab-form", onsubmit: (e) => { e.preventDefault(); update(); } },
      h("div", { class: "field-row" }, h("div", { class: "field" }, h("label", { for: "pool-kind" }, "Kind"), kind), fields,
        h("div", { class: "actions" }, h("button", { type: "submit" }, "Pool")))),
    out);
  update();

  async function update() {
    const body = { x: data.x, kind: kind.value };
    for (const [name] of POOL_FIELDS) body[name] = Number(values[name].value);
    try {
      answer = await labs.pool(body);
    } catch (err) {
      fill(out, h("p", { class: "error", id: "pool-error" }, err.message));
      return;
    }
    selected = { c: 0, i: 0, j: 0 };
    draw();
  }

  function draw() {
    const [t, , l] = answer.pads;
    const fillValue = answer.kind === "max" ? -Infinity : 0;
    const padded = data.x.map((plane) => {
      const rows = plane.length + 2 * t;
      const cols = plane[0].length + 2 * l;
      return Array.from({ length: rows }, (_, r) => Array.from({ length: cols }, (_, c) => {
        const rr = r - t;
        const cc = c - l;
        return rr >= 0 && cc >= 0 && rr < plane.length && cc < plane[0].length ? plane[rr][cc] : fillValue;
      }));
    });
    drawn = padded.map((plane, c) => ({
      input: grid(plane, { label: `pooling input, channel ${c}`, className: "pool-in",
        cls: (r, cc) => (r < t || cc < l || r >= t + data.x[c].length || cc >= l + data.x[c][0].length ? "pad" : null) }),
      out: grid(answer.out[c], { label: `pooled, channel ${c}`, className: "pool-out", focusable: true }),
      dout: grid(answer.dout[c], { label: `dL/dy, channel ${c}`, className: "pool-dout" }),
      dx: grid(answer.dx[c], { label: `dX, channel ${c}`, className: "pool-dx", cls: (r, cc) => (answer.dx[c][r][cc] === 0 ? "zero" : null) }),
    }));
    const name = answer.kind === "max" ? "max" : "average";
    fill(out, drawn.map((g, c) => h("div", { class: "blocks", "data-channel": c },
      block(`Input${data.x.length > 1 ? ` · channel ${c}` : ""}${t || l ? ` (border: ${answer.kind === "max" ? "−∞" : "0"})` : ""}`, h("div", { class: "scroll" }, g.input.table)),
      block(`${name} pooled`, g.out.table),
      block("∂L/∂y", g.dout.table),
      block(`dX = ${name === "max" ? "routed to each maximum" : "shared by each window"}`, h("div", { class: "scroll" }, g.dx.table)))));
    drawn.forEach((g, c) => g.out.cells.forEach((row, i) => row.forEach((td, j) => {
      const pick = () => select({ c, i, j });
      td.addEventListener("click", pick);
      td.addEventListener("focus", pick);
    })));
    select(selected);
  }

  function select(next) {
    for (const g of drawn) {
      for (const table of [g.input, g.out, g.dx]) table.table.querySelectorAll(".tap, .current, .routed").forEach((td) => td.classList.remove("tap", "current", "routed"));
    }
    selected = next;
    const { c, i, j } = next;
    const g = drawn[c];
    g.out.cells[i][j].classList.add("current");
    const s = answer.stride;
    for (let u = 0; u < answer.size; u++) {
      for (let v = 0; v < answer.size; v++) g.input.cells[i * s + u][j * s + v].classList.add("tap");
    }
    if (answer.argmax) {
      const [r, col] = answer.argmax[c][i][j];
      g.input.cells[r][col].classList.add("current");
      const [t, , l] = answer.pads;
      const row = g.dx.cells[r - t];
      if (row && row[col - l]) row[col - l].classList.add("routed");
    }
  }

  return { stop() {} };
}
