// The architecture view: any zoo model (or a trained run's model) at any input size, drawn from
// the analyzer's rows (/api/architecture/model/NAME?size=N, /api/runs/ID/architecture), with
// each layer's analyzer row, the lecture's formulas with its numbers, the slides' errata, a
// question mode that hides volumes, parameters and multiply-adds until the student answers,
// a compare mode (totals and cost against published accuracy), and SVG/PNG export.
//
// Routes: #/architecture/alexnet_paper?size=227, #/architecture?run=0/tiny,
// #/architecture?compare=resnet50,vgg16 ; &questions=1 turns question mode on.

import { h, fill } from "./dom.js";
import { draw, legend, svgText, pngBlob, volume } from "./arch_draw.js";
import { initialOpen } from "./arch_layout.js";
import { table as compareTable, chart as compareChart } from "./arch_compare.js";

const DEFAULT_MODEL = "alexnet_paper";
const QUESTIONS = [
  { key: "volume", label: "Output volume (H×W×C)?", formula: /^output/, rows: ["output", "output volume H×W×C"] },
  { key: "params", label: "Parameters?", formula: /^parameters|^grouped/, rows: ["parameters"] },
  { key: "macs", label: "Multiply-adds?", formula: /^multiply-adds|^operations/, rows: ["multiply-adds"] },
];

async function get(path) {
  const response = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } });
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new Error(data && data.error ? data.error : `${path} failed (${response.status})`);
  return data;
}

function href(params) {
  const { model, ...rest } = params;
  const q = new URLSearchParams(Object.entries(rest).filter(([, v]) => v !== null && v !== undefined && v !== ""));
  return `#/architecture${model ? `/${encodeURIComponent(model)}` : ""}${q.toString() ? `?${q}` : ""}`;
}

// --- answers --------------------------------------------------------------------------------

/** "55x55x96", "55 × 55 × 96", "55,55,96" -> [55, 55, 96]; null when it is not a volume. */
export function parseVolume(text) {
  const parts = String(text).trim().split(/\s*[x×*,]\s*|\s+/).filter(Boolean);
  if (!parts.length || !parts.every((p) => /^\d+$/.test(p))) return null;
  return parts.map(Number);
}

/** "34944", "34,944", "34 944", "35K", "72.9M" -> {value, tolerance}; null otherwise. */
export function parseCount(text) {
  const t = String(text).trim().replace(/[\s,_'’]/g, "");
  const m = /^(\d+(?:\.(\d+))?)([kKmMgG])?$/.exec(t);
  if (!m) return null;
  const scale = { k: 1e3, m: 1e6, g: 1e9 }[(m[3] || "").toLowerCase()] || 1;
  const decimals = m[2] ? m[2].length : 0;
  // As the errata judge a slide's rounded figure: half a unit of the last digit given.
  return { value: Number(m[1]) * scale, tolerance: scale === 1 ? 0 : 0.5 * 10 ** -decimals * scale, rounded: scale !== 1 };
}

/** {right, note} for a student's answer to question `key` about `row`. */
export function check(key, text, row) {
  const answer = row.answers[key];
  if (key === "volume") {
    const got = parseVolume(text);
    if (!got) return { right: false, note: "type the volume as H×W×C, for example 55x55x96" };
    if (got.join() === answer.join()) return { right: true, note: "" };
    const chw = answer.length === 3 ? [answer[2], answer[0], answer[1]] : null;
    if (chw && got.join() === chw.join()) return { right: false, note: "those are the numbers in C×H×W order: the slides write H×W×C" };
    return { right: false, note: `not ${got.join("×")}` };
  }
  const got = parseCount(text);
  if (!got) return { right: false, note: "type a whole number (34944 or 34,944) or a rounded one (35K)" };
  const right = Math.abs(got.value - answer) <= got.tolerance;
  return { right, note: right ? (got.rounded ? "right to the digits you gave" : "") : `not ${text.trim()}` };
}

// --- the view -------------------------------------------------------------------------------

export async function render(main, { arg, params, app, isCurrent }) {
  // The diagram is asked for at once, beside the pickers' lists (its trace is the long part).
  const model = arg || (params.get("run") || params.get("compare") !== null ? null : DEFAULT_MODEL);
  const size = params.get("size") ? `?size=${encodeURIComponent(params.get("size"))}` : "";
  const wanted = params.get("compare") !== null ? null : params.get("run")
    ? `/api/runs/${encodeURIComponent(params.get("run"))}/architecture${size}`
    : `/api/architecture/model/${encodeURIComponent(model)}${size}`;
  const diagram = wanted ? get(wanted).then((data) => ({ data }), (error) => ({ error })) : null;
  const [catalog, runs] = await Promise.all([
    get("/api/architecture"), get("/api/runs").catch(() => ({ runs: [] }))]);
  if (!isCurrent()) return;
  const families = Object.fromEntries(catalog.models.map((m) => [m.name, m.family]));
  const compare = params.get("compare");
  const state = {
    model,
    diagram,
    run: params.get("run"),
    size: params.get("size") || "",
    questions: params.get("questions") === "1",
  };
  const modes = h("div", { class: "arch-modes", role: "group", "aria-label": "mode" },
    h("a", { class: "button", href: href({ model: state.model || DEFAULT_MODEL, size: state.size }), "aria-current": compare === null ? "page" : null }, "Diagram"),
    h("a", { class: "button", href: href({ compare: compare || "alexnet,vgg16,googlenet,resnet50,resnet152,densenet201,inception_v3,resnext50_32x4d" }), "aria-current": compare !== null ? "page" : null }, "Compare"));
  main.append(h("section", { class: "arch" }, h("h1", {}, "Architectures"), modes));
  const section = main.lastChild;
  if (compare !== null) return renderCompare(section, catalog, families, compare, params.get("size") || "", isCurrent);
  return renderDiagram(section, catalog, runs.runs || [], state, app, isCurrent);
}

function picker(catalog, runs, state) {
  const byFamily = {};
  for (const m of catalog.models) (byFamily[m.family] = byFamily[m.family] || []).push(m);
  const select = h("select", { id: "arch-model", name: "model" },
    Object.entries(byFamily).map(([family, models]) => h("optgroup", { label: family },
      models.map((m) => h("option", { value: m.name, selected: !state.run && m.name === state.model }, m.name)))),
    runs.length ? h("optgroup", { label: "trained runs" }, runs.filter((r) => r.status === "finished" || r.status === "interrupted").map((r) =>
      h("option", { value: `run:${r.id}`, selected: state.run === r.id }, `run ${r.id} (${r.model || "?"})`))) : null);
  const size = h("input", { id: "arch-size", name: "size", value: state.size, inputmode: "numeric", size: 10,
    placeholder: "default", "aria-describedby": "arch-size-help" });
  const questions = h("input", { id: "arch-questions", type: "checkbox", checked: state.questions });
  const form = h("form", { class: "arch-pick" },
    h("label", { for: "arch-model" }, "Model "), select,
    h("label", { for: "arch-size" }, "Input size "), size,
    h("span", { id: "arch-size-help", class: "muted" }, " 227, 224x160 or 3x227x227 "),
    h("button", { type: "submit" }, "Show"),
    h("label", { class: "arch-q" }, questions, " Question mode"));
  const go = () => {
    const pick = select.value;
    const next = pick.startsWith("run:") ? { run: pick.slice(4) } : { model: pick };
    location.hash = href({ ...next, size: size.value.trim(), questions: questions.checked ? "1" : "" });
  };
  form.addEventListener("submit", (e) => { e.preventDefault(); go(); });
  return { form, questions };
}

async function renderDiagram(section, catalog, runs, state, app, isCurrent) {
  const { form, questions } = picker(catalog, runs, state);
  const error = h("p", { class: "arch-error error", role: "alert", hidden: true });
  section.append(form, error);
  const { data, error: failed } = await state.diagram;
  if (!isCurrent()) return;
  if (failed) {
    error.textContent = failed.message; // the analyzer's one line: what is wrong and the fix
    error.hidden = false;
    return;
  }
  const view = {
    data, open: initialOpen(data), selected: null, questions: state.questions,
    known: new Map(), // row -> Set of question keys answered right or revealed
    verdicts: new Map(), // "row:key" -> the last verdict's content, kept across redraws
  };
  const t = data.totals_text;
  const summary = h("div", { class: "arch-summary" },
    h("p", {}, h("strong", {}, data.model), ` at ${data.input_size.join("x")}: `,
      h("span", { "data-total": "params" }, `${t.params} parameters`), " · ",
      h("span", { "data-total": "macs" }, `${t.macs} multiply-adds`), " · ",
      `activation memory ${t.activation_bytes} · training estimate ${t.training_memory_bytes}`),
    data.traced ? null : h("p", { class: "warn" }, "data flow not traced for this model: drawn as a chain"),
    data.warnings.length ? h("details", { class: "warn" }, h("summary", {}, `${data.warnings.length} geometry warning${data.warnings.length > 1 ? "s" : ""}`),
      h("ul", {}, data.warnings.map((w) => h("li", {}, w)))) : null,
    Object.keys(data.unused_params).length ? h("p", { class: "muted" }, `parameters this forward pass does not use (counted in the total): ${Object.entries(data.unused_params).map(([k, v]) => `${k} (${v.toLocaleString("en")})`).join(", ")}`) : null);
  const exports = h("span", { class: "arch-exports" });
  const toolbar = h("div", { class: "arch-toolbar" },
    h("button", { type: "button", "data-action": "open-all", onclick: () => { view.open = new Set(data.blocks.map((b, k) => k)); redraw(); } }, "Open every block"),
    h("button", { type: "button", "data-action": "fold-all", onclick: () => { view.open = new Set(); redraw(); } }, "Fold every block"),
    h("button", { type: "button", "data-action": "export-svg", onclick: () => exportSvg() }, "Export SVG"),
    h("button", { type: "button", "data-action": "export-png", onclick: () => exportPng().catch((e) => app.error(e)) }, "Export PNG"),
    exports);
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "arch-diagram");
  svg.setAttribute("role", "group");
  svg.setAttribute("aria-label", `${data.model} architecture diagram`);
  const canvas = h("div", { class: "arch-canvas" }, svg);
  const panel = h("aside", { class: "arch-panel", "aria-live": "polite" });
  section.append(summary, toolbar, h("div", { class: "arch-legend-wrap" }, legend()), h("div", { class: "arch-body" }, canvas, panel));
  const name = `${data.model}-${data.input_size.join("x")}`;

  function hidden(i) {
    const row = data.rows[i];
    return view.questions && row.kind !== "input" && !(view.known.get(i) || new Set()).has("volume");
  }
  function redraw() {
    const scroll = [canvas.scrollLeft, canvas.scrollTop];
    draw(svg, data, {
      open: view.open, hidden, selected: view.selected,
      onRow: (i) => { view.selected = i; redraw(); details(); },
      onBlock: (k, isOpen) => {
        if (isOpen) view.open.add(k); else for (const j of [...view.open]) if (j === k || isInside(j, k)) view.open.delete(j);
        redraw();
        const el = svg.querySelector(isOpen ? `g.frame[data-block="${CSS.escape(data.blocks[k].name)}"] g.fold` : `g.block[data-block="${CSS.escape(data.blocks[k].name)}"]`);
        if (el) el.focus();
      },
    });
    [canvas.scrollLeft, canvas.scrollTop] = scroll;
    svg.dataset.openBlocks = String(view.open.size);
  }
  function isInside(j, k) {
    for (let b = data.blocks[j].parent; b !== null; b = data.blocks[b].parent) if (b === k) return true;
    return false;
  }
  function details() {
    if (view.selected === null) {
      fill(panel, h("h2", {}, data.model), h("p", {}, "Click a layer (or Tab to it and press Enter) for its analyzer row, the lecture's working and the slides' numbers. A card ▸ is a folded block: click it to open."),
        view.questions ? h("p", {}, "Question mode: the output volumes are hidden; open a layer to answer.") : null,
        h("p", { class: "muted small" }, data.conventions));
      return;
    }
    panel.replaceChildren(...rowDetails(data, view.selected, view, () => { redraw(); details(); }, (i) => { view.selected = i; redraw(); details(); }));
  }
  function exportSvg() {
    const text = svgText(svg);
    offer(new Blob([text], { type: "image/svg+xml" }), `${name}.svg`, "svg");
  }
  async function exportPng() {
    const blob = await pngBlob(svgText(svg), Number(svg.getAttribute("width")), Number(svg.getAttribute("height")));
    offer(blob, `${name}.png`, "png");
  }
  function offer(blob, file, kind) {
    const old = exports.querySelector(`a[data-kind="${kind}"]`);
    if (old) { URL.revokeObjectURL(old.href); old.remove(); }
    const link = h("a", { href: URL.createObjectURL(blob), download: file, "data-kind": kind, class: "export-link" }, file);
    exports.append(link);
    link.click();
  }
  questions.addEventListener("change", () => { view.questions = questions.checked; redraw(); details(); });
  redraw();
  details();
  svg.dataset.drawnMs = String(Math.round(performance.now())); // the benchmark reads it
  svg.dataset.model = data.model; // which diagram is ready (a hash change keeps the page)
  svg.dataset.ready = "1";
}

function rowDetails(data, i, view, refresh, select) {
  const row = data.rows[i];
  const known = view.known.get(i) || new Set();
  const asked = QUESTIONS.filter((q) => row.kind !== "input" && (q.key === "volume" || row.answers[q.key] > 0));
  const hide = new Set(view.questions ? asked.filter((q) => !known.has(q.key)).flatMap((q) => q.rows) : []);
  const out = [h("h2", {}, row.name), h("p", {}, `${row.type} (${row.kind})`,
    row.sources.length ? [" · reads ", row.sources.map((s, n) => [n ? ", " : "", h("button", { type: "button", class: "link-button", onclick: () => select(s) }, data.rows[s].name)])] : null)];
  out.push(h("table", { class: "arch-row" }, h("tbody", {}, row.table.filter(([, v]) => v !== "").map(([label, value]) =>
    h("tr", { "data-field": label }, h("th", { scope: "row" }, label), h("td", {}, hide.has(label) ? "?" : value))))));
  if (view.questions && asked.length) {
    out.push(h("h3", {}, "Questions"));
    for (const q of asked) out.push(question(q, row, i, view, refresh));
  }
  const shown = row.formulas.filter((f) => !view.questions || !asked.some((q) => q.formula.test(f.what) && !known.has(q.key)));
  if (shown.length) {
    out.push(h("h3", {}, "Working"), h("ul", { class: "formulas" }, shown.map((f) =>
      h("li", {}, h("span", { class: "what" }, f.what), h("code", {}, f.text)))));
  }
  if (row.errata.length) {
    out.push(h("h3", {}, "The slides"), h("ul", { class: "errata" }, row.errata.map((e) =>
      h("li", { class: e.holds ? "holds" : "wrong", "data-holds": String(e.holds) },
        h("strong", {}, e.holds ? "✓ holds" : "✗ does not hold"), ` ${e.source}: “${e.claim}”: slide ${e.slide}, correct ${e.correct}`,
        e.reason && !e.holds ? h("span", { class: "reason" }, ` (${e.reason})`) : null))));
  }
  if (row.notes.length) out.push(h("p", { class: "warn" }, row.notes.join("; ")));
  return out;
}

function question(q, row, i, view, refresh) {
  const id = `arch-q-${q.key}`;
  const input = h("input", { id, name: q.key, autocomplete: "off", size: 16 });
  const verdict = h("p", { class: "verdict", "aria-live": "polite" });
  const working = row.formulas.filter((f) => q.formula.test(f.what));
  const answerText = q.key === "volume" ? volume(row.output_shape) : row.table.find(([l]) => l === q.rows[0])[1];
  const known = () => { const k = view.known.get(i) || new Set(); k.add(q.key); view.known.set(i, k); };
  const form = h("form", { class: "arch-question", "data-q": q.key },
    h("label", { for: id }, q.label, " "), input, h("button", { type: "submit" }, "Check"),
    h("button", { type: "button", class: "link-button", onclick: () => { known(); refresh(); } }, "show the answer"), verdict);
  const saved = view.verdicts.get(`${i}:${q.key}`);
  if (saved) {
    fill(verdict, ...saved.nodes.map((n) => n.cloneNode(true)));
    verdict.dataset.verdict = saved.verdict;
  } else if ((view.known.get(i) || new Set()).has(q.key)) {
    fill(verdict, h("span", { class: "answer" }, `${answerText}`), working.map((f) => h("code", { class: "working" }, f.text)));
    verdict.dataset.verdict = "shown";
  }
  const keep = () => view.verdicts.set(`${i}:${q.key}`, { verdict: verdict.dataset.verdict, nodes: [...verdict.childNodes].map((n) => n.cloneNode(true)) });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const result = check(q.key, input.value, row);
    verdict.dataset.verdict = result.right ? "right" : "wrong";
    if (result.right) {
      fill(verdict, h("strong", { class: "ok" }, "Right: "), answerText, result.note ? ` (${result.note})` : "",
        working.map((f) => h("code", { class: "working" }, f.text)));
      known();
      keep();
      refresh(); // the diagram and the table show the answer now
    } else {
      const hint = working.map((f) => f.text.replace(/=\s*[^=]*$/, "= ?"));
      fill(verdict, h("strong", { class: "bad" }, "Not quite: "), result.note, hint.length ? [". Hint: ", hint.map((t) => h("code", { class: "working" }, t))] : "");
      keep();
    }
  });
  return form;
}

async function renderCompare(section, catalog, families, compare, size, isCurrent) {
  const chosen = new Set(compare.split(",").filter(Boolean));
  const byFamily = {};
  for (const m of catalog.models) (byFamily[m.family] = byFamily[m.family] || []).push(m);
  const sizeInput = h("input", { id: "arch-compare-size", value: size, size: 10, placeholder: "each default" });
  const form = h("form", { class: "arch-compare-pick" },
    h("fieldset", {}, h("legend", {}, "Models (ImageNet top-1 where torchvision publishes it)"),
      h("div", { class: "arch-model-grid" }, Object.entries(byFamily).map(([family, models]) => h("div", { class: "family" },
        h("strong", {}, family),
        models.map((m) => h("label", {}, h("input", { type: "checkbox", value: m.name, checked: chosen.has(m.name) }), ` ${m.name}`, m.top1 !== null ? h("span", { class: "muted" }, ` ${m.top1.toFixed(1)}%`) : null)))))),
    h("label", { for: "arch-compare-size" }, "Input size "), sizeInput, " ",
    h("button", { type: "submit" }, "Compare"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const picked = [...form.querySelectorAll("input[type=checkbox]:checked")].map((c) => c.value);
    location.hash = href({ compare: picked.join(","), size: sizeInput.value.trim() });
  });
  const out = h("div", { class: "arch-compare-out" });
  section.append(form, out);
  if (!chosen.size) { out.append(h("p", {}, "Tick two models or more.")); return; }
  let data;
  try {
    data = await get(`/api/architecture/compare?models=${encodeURIComponent([...chosen].join(","))}${size ? `&size=${encodeURIComponent(size)}` : ""}`);
  } catch (err) {
    if (isCurrent()) out.append(h("p", { class: "error", role: "alert" }, err.message));
    return;
  }
  if (!isCurrent()) return;
  const chart = compareChart(data.models, families);
  out.append(compareTable(data.models), h("p", { class: "muted small" }, `MACs: lecture count (1 MAC = one multiply-add); ${data.note}.`),
    h("figure", { class: "arch-chart-figure" }, chart,
      h("figcaption", {}, "Cost against accuracy, after Canziani et al. 2016: x multiply-adds per image (log), y published top-1, circle area parameters; colour: family.")),
    h("div", { class: "arch-toolbar" }, h("button", { type: "button", "data-action": "export-chart-svg", onclick: () => {
      const link = h("a", { href: URL.createObjectURL(new Blob([svgText(chart)], { type: "image/svg+xml" })), download: "compare.svg", class: "export-link", "data-kind": "svg" }, "compare.svg");
      out.append(link);
      link.click();
    } }, "Export chart SVG")));
  chart.dataset.ready = "1";
}
