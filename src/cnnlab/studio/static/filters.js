// The filters lab: the slides' box filter cell by cell, a photo through the classical kernels,
// and the receptive field of stacked 3x3 layers beside one 5x5 and one 7x7.
//
// Every number and picture comes from the server (src/cnnlab/studio/labs.py): g by
// cnnlab.scratch.correlate2d, the filtered photo by cnnlab.scratch.filters (what `cnnlab filter`
// writes), the receptive fields by the analyzer's arithmetic (cnnlab.analysis.arith).

import { fill, h } from "./dom.js";
import { block, fmt, grid, labs, parseGrids } from "./conv_grid.js";

const DEFAULT_TYPED = "0 -1 0\n-1 5 -1\n0 -1 0";
const UNIT = 22; // px between units in the receptive-field drawing
const ROW = 46;

export async function render(main, { params, app, isCurrent }) {
  const constants = await labs.constants();
  if (!isCurrent()) return null;
  const boxSection = h("section", { id: "box-lab", "aria-labelledby": "box-h" });
  const photoSection = h("section", { id: "filter-lab", "aria-labelledby": "filter-h" });
  const rfSection = h("section", { id: "rf-lab", "aria-labelledby": "rf-h" });
  main.append(h("h1", {}, "Filters lab"),
    h("p", { class: "hint" }, "The image-filtering slides, computed by cnnlab.scratch (the NumPy cross-correlation that ",
      h("code", {}, "cnnlab filter"), " runs)."),
    boxSection, photoSection, rfSection);
  await Promise.all([
    boxExample(boxSection).catch((err) => app.error(err)),
    photoLab(photoSection, constants, params).catch((err) => app.error(err)),
    receptiveField(rfSection, constants, params).catch((err) => app.error(err)),
  ]);
  return null;
}

// --- the slides' box filter ------------------------------------------------------------------

async function boxExample(section) {
  const data = await labs.box();
  const f = grid(data.f, { label: "f", className: "box-f", cls: (r, c) => (data.f[r][c] ? "hi" : null) });
  const kernel = grid(data.kernel, { label: "h", className: "box-h" });
  const g = grid(data.g, { label: "g", className: "box-g", focusable: true });
  const working = h("p", { class: "eq", id: "box-working", "aria-live": "polite" });
  fill(section, h("h2", { id: "box-h" }, "The slides' box filter"),
    h("p", { class: "hint" }, `${data.source}. Point at or focus a cell of g to see its window on f.`),
    h("div", { class: "blocks" }, block("f[·,·]", f.table), block("h[·,·] = 1/9 · ones(3×3)", kernel.table), block("g = f ★ h", g.table)),
    working,
    h("p", {}, h("a", { href: "#/conv?source=slides&step=0" }, "Step through it in the convolution lab"),
      " (0, 10, 20, 30, … cell by cell)."));
  let marked = [];
  g.cells.forEach((row, i) => row.forEach((td, j) => {
    const pick = () => {
      marked.forEach((cell) => cell.classList.remove("tap"));
      marked = [];
      const values = [];
      for (let u = 0; u < 3; u++) {
        for (let v = 0; v < 3; v++) {
          marked.push(f.cells[i + u][j + v]);
          values.push(fmt(data.f[i + u][j + v]));
        }
      }
      marked.push(td);
      marked.forEach((cell) => cell.classList.add("tap"));
      working.textContent = `g[${i}, ${j}] = (${values.join(" + ")}) / 9 = ${fmt(data.g[i][j])}`;
    };
    td.addEventListener("mouseenter", pick);
    td.addEventListener("focus", pick);
  }));
}

// --- a photo through a kernel ----------------------------------------------------------------

async function photoLab(section, constants, params) {
  const kernels = constants.kernels;
  const state = { photo: "sample", busy: 0 };
  const kernel = h("select", { id: "filter-kernel", onchange: changed },
    kernels.map((k) => h("option", { value: k.name, selected: k.name === (params.get("kernel") || "box") }, k.title)));
  const mode = h("select", { id: "filter-mode", onchange: changed },
    constants.modes.map((m) => h("option", { value: m, selected: m === (params.get("mode") || "reflect") }, m)));
  const sigma = h("input", { id: "filter-sigma", type: "number", step: 0.1, min: constants.sigma[0], max: constants.sigma[1],
    value: params.get("sigma") || 1.5, class: "short", onchange: changed });
  const size = h("input", { id: "filter-size", type: "number", step: 2, min: constants.gauss_size[0], max: constants.gauss_size[1],
    value: params.get("size") || 9, class: "short", onchange: changed });
  const typed = h("textarea", { id: "filter-values", rows: 4, cols: 18, spellcheck: "false", onchange: changed }, DEFAULT_TYPED);
  const gray = h("input", { id: "filter-gray", type: "checkbox", checked: params.get("gray") === "1", onchange: changed });
  const file = h("input", { id: "filter-file", type: "file", accept: "image/*", onchange: () => file.files[0] && upload(file.files[0]) });
  const drop = h("label", { class: "drop", for: "filter-file" }, "Drop a photo here, or choose a file: ", file);
  for (const [kind, on] of [["dragover", true], ["dragenter", true], ["dragleave", false], ["drop", false]]) {
    drop.addEventListener(kind, (e) => {
      e.preventDefault();
      drop.classList.toggle("over", on);
      if (kind === "drop" && e.dataTransfer.files[0]) upload(e.dataTransfer.files[0]);
    });
  }
  const note = h("p", { class: "hint", id: "filter-note" });
  const gaussRow = h("div", { class: "field-row" },
    h("div", { class: "field" }, h("label", { for: "filter-sigma" }, "σ (pixels)"), sigma),
    h("div", { class: "field" }, h("label", { for: "filter-size" }, "Size (odd)"), size));
  const typedRow = h("div", { class: "field" }, h("label", { for: "filter-values" }, "Kernel (rows on lines)"), typed);
  const original = h("img", { id: "filter-original", alt: "the photo", class: "photo" });
  const result = h("img", { id: "filter-result", alt: "the photo filtered", class: "photo" });
  const caption = h("figcaption", { id: "filter-caption" });
  const kernelBox = h("div", { class: "scroll" });
  const time = h("p", { class: "hint", id: "filter-time", "aria-live": "polite" });
  const error = h("p", { class: "error", id: "filter-error", role: "alert", hidden: true });
  fill(section, h("h2", { id: "filter-h" }, "A photo through a kernel"),
    h("form", { class: "lab-form", onsubmit: (e) => { e.preventDefault(); apply(); } },
      h("div", { class: "field-row" },
        h("button", { type: "button", id: "filter-sample", onclick: () => useSample() }, `Use the sample (${constants.sample})`), drop),
      h("div", { class: "field-row" },
        h("div", { class: "field" }, h("label", { for: "filter-kernel" }, "Kernel"), kernel),
        h("div", { class: "field" }, h("label", { for: "filter-mode" }, "Padding mode"), mode),
        h("div", { class: "field inline" }, gray, h("label", { for: "filter-gray" }, "grayscale first")),
        h("div", { class: "actions" }, h("button", { type: "submit" }, "Apply"))),
      gaussRow, typedRow, note, error),
    h("div", { class: "photos" },
      h("figure", { class: "block" }, h("figcaption", {}, "original"), original),
      h("figure", { class: "block" }, caption, result),
      block("the kernel (cross-correlation: not flipped)", kernelBox)),
    time);
  showOptions();
  await useSample();

  function showOptions() {
    const chosen = kernels.find((k) => k.name === kernel.value);
    gaussRow.hidden = kernel.value !== "gaussian_sigma";
    typedRow.hidden = kernel.value !== "custom";
    note.textContent = chosen ? chosen.note : "";
  }

  function changed() {
    showOptions();
    const q = new URLSearchParams(location.hash.split("?")[1] || "");
    q.set("kernel", kernel.value);
    q.set("mode", mode.value);
    history.replaceState(null, "", `#/filters?${q}`);
    apply();
  }

  async function useSample() {
    await photo(() => labs.sample());
  }

  async function upload(f) {
    await photo(() => labs.upload(f));
  }

  async function photo(call) {
    error.hidden = true;
    try {
      const answer = await call();
      state.photo = answer.photo;
      original.src = answer.png;
      original.alt = `the photo (${answer.width}×${answer.height})`;
      time.textContent = answer.note;
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
      return;
    }
    await apply();
  }

  async function apply() {
    const mine = ++state.busy;
    const body = { photo: state.photo, kernel: kernel.value, mode: mode.value, gray: gray.checked };
    if (kernel.value === "gaussian_sigma") Object.assign(body, { sigma: Number(sigma.value), size: Number(size.value) });
    error.hidden = true;
    try {
      if (kernel.value === "custom") body.values = parseGrids(typed.value)[0] || [];
      const t0 = performance.now();
      const answer = await labs.filter(body);
      if (mine !== state.busy) return;
      await new Promise((resolve, reject) => {
        result.onload = resolve;
        result.onerror = () => reject(new Error("the filtered image did not decode"));
        result.src = answer.png;
      });
      const shown = performance.now() - t0;
      caption.textContent = `${kernel.options[kernel.selectedIndex].text} · ${answer.mode} border · shown as ${answer.display === "abs" ? "|g| scaled" : "g clipped to 0–255"}`;
      fill(kernelBox, grid(answer.kernel, { label: "kernel", className: "filter-kernel" }).table);
      time.textContent = `${answer.width}×${answer.height}: the server filtered it in ${answer.filter_ms.toFixed(0)} ms `
        + `(${answer.server_ms.toFixed(0)} ms with the PNG); in the page ${shown.toFixed(0)} ms from the request to the image shown.`;
      section.dataset.shown = `${kernel.value}:${answer.mode}:${body.gray ? 1 : 0}:${state.photo}`;
    } catch (err) {
      if (mine !== state.busy) return;
      error.textContent = err.message;
      error.hidden = false;
    }
  }
}

// --- the receptive field ---------------------------------------------------------------------

async function receptiveField(section, constants, params) {
  const [low, high] = constants.rf_layers;
  const layers = h("input", { id: "rf-layers", type: "number", min: low, max: high, value: params.get("layers") || 3, class: "short", onchange: draw });
  const channels = h("input", { id: "rf-channels", type: "number", min: 1, value: params.get("channels") || 64, class: "short", onchange: draw });
  const out = h("div", {});
  fill(section, h("h2", { id: "rf-h" }, "Receptive field: stacked 3×3 layers against one 5×5 and one 7×7"),
    h("p", { class: "hint" }, "Each 3×3 layer (stride 1) widens what one output sees by 2 pixels: r = r_in + (k − 1)·j "
      + "(cnnlab.analysis.arith.receptive_field). Weights for C input and C output channels, without bias."),
    h("form", { class: "lab-form", onsubmit: (e) => { e.preventDefault(); draw(); } },
      h("div", { class: "field-row" },
        h("div", { class: "field" }, h("label", { for: "rf-layers" }, "3×3 layers"), layers),
        h("div", { class: "field" }, h("label", { for: "rf-channels" }, "Channels C"), channels))),
    out);
  await draw();

  async function draw() {
    let data;
    try {
      data = await labs.receptive(layers.value, channels.value);
    } catch (err) {
      fill(out, h("p", { class: "error" }, err.message));
      return;
    }
    const top = data.stacked[data.stacked.length - 1];
    const c2 = (n) => `${fmt(n / (data.channels * data.channels))}C²`;
    fill(out, h("div", { class: "blocks" },
      block(`${data.stacked.length} stacked 3×3 layers: ${top.rf}×${top.rf}, ${c2(top.weights)}`, cone(data.stacked.map((r) => r.rf), "stacked")),
      data.single.map((s) => block(`one ${s.kernel}×${s.kernel} layer: ${s.rf}×${s.rf}, ${c2(s.weights)}`, cone([s.rf], `single-${s.kernel}`)))),
    h("table", { class: "rf-table" },
      h("caption", {}, `Weights at C = ${data.channels}.`),
      h("thead", {}, h("tr", {}, ["", "receptive field", "jump", "weights", "per C²"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {},
        data.stacked.map((r) => h("tr", { "data-layer": r.layer }, h("th", { scope: "row" }, `after 3×3 layer ${r.layer}`),
          h("td", { class: "num" }, `${r.rf}×${r.rf}`), h("td", { class: "num" }, r.jump),
          h("td", { class: "num" }, r.weights.toLocaleString("en")), h("td", { class: "num" }, c2(r.weights)))),
        data.single.map((s) => h("tr", { "data-kernel": s.kernel }, h("th", { scope: "row" }, `one ${s.kernel}×${s.kernel} layer`),
          h("td", { class: "num" }, `${s.rf}×${s.rf}`), h("td", { class: "num" }, 1),
          h("td", { class: "num" }, s.weights.toLocaleString("en")), h("td", { class: "num" }, c2(s.weights)))))));
  }
}

/**
 * A 1-D side view of what one output unit sees: fields[l] is the receptive field after layer
 * l + 1 (from cnnlab's arithmetic); the bottom row is the input, the top unit the output.
 */
function cone(fields, name) {
  const depth = fields.length;
  const widest = fields[depth - 1];
  const units = widest + 4;
  const width = units * UNIT + UNIT;
  const height = (depth + 1) * ROW;
  const mid = (units - 1) / 2;
  const x = (n) => UNIT + n * UNIT;
  const y = (level) => ROW / 2 + level * ROW; // level 0: the output unit, depth: the input
  // Every layer is the same, so the top unit sees fields[l - 1] units l levels down.
  const span = (level) => (level === 0 ? 1 : fields[level - 1]);
  const seen = (level, n) => Math.abs(n - mid) <= (span(level) - 1) / 2;
  const shapes = [];
  for (let level = 0; level < depth; level++) {
    const reach = depth === 1 ? (widest - 1) / 2 : 1;
    for (let n = 0; n < units; n++) {
      if (!seen(level, n)) continue;
      for (let m = n - reach; m <= n + reach; m++) shapes.push(h("line", { x1: x(n), y1: y(level), x2: x(m), y2: y(level + 1), class: "link" }));
    }
  }
  for (let level = 0; level <= depth; level++) {
    for (let n = 0; n < units; n++) {
      shapes.push(h("circle", { cx: x(n), cy: y(level), r: 6, class: seen(level, n) ? "seen" : "unit" }));
    }
    const label = level === 0 ? "output" : level === depth ? "input" : `layer ${depth - level}`;
    shapes.push(h("text", { x: 2, y: y(level) - 10, class: "rf-label" }, label));
  }
  return h("svg", { class: "rf", "data-name": name, viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
    "aria-label": `receptive field ${widest} units wide` }, shapes);
}
