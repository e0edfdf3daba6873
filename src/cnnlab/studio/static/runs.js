// Runs: every run under the roots with its status (and why, for failed and damaged ones),
// sortable and filterable; tick several to overlay their curves, which update live.

import { api, listen } from "./api.js";
import { epochSeries, lineChart } from "./chart.js";
import { date, duration, fill, h, percent, runHref } from "./dom.js";

const PICKED_KEY = "cnnlab.studio.compare"; // the ticked runs survive a reload
const STATUSES = ["finished", "running", "interrupted", "failed", "damaged"];

// The table's columns: what each shows, and the value it sorts by.
const COLUMNS = [
  { key: "id", label: "Run", sort: (r) => r.id, cell: (r) => h("a", { href: runHref(r.id) }, r.id) },
  { key: "status", label: "Status", sort: (r) => r.status,
    cell: (r) => [h("span", { class: `badge ${r.status}` }, r.status),
      r.reason && r.status !== "running" ? h("div", { class: "reason" }, r.reason) : null] },
  { key: "model", label: "Model", sort: (r) => r.model, cell: (r) => r.model },
  { key: "data", label: "Data", sort: (r) => r.data, cell: (r) => r.data },
  { key: "recipe", label: "Recipe", sort: (r) => r.recipe, cell: (r) => r.recipe },
  { key: "epochs", label: "Epochs", numeric: true, sort: (r) => r.epochs_done,
    cell: (r) => `${r.epochs_done}${r.epochs ? ` / ${r.epochs}` : ""}` },
  { key: "best_val_acc", label: "Best val.", numeric: true, sort: (r) => r.best_val_acc, cell: (r) => percent(r.best_val_acc) },
  { key: "final_val_acc", label: "Last val.", numeric: true, sort: (r) => r.final_val_acc, cell: (r) => percent(r.final_val_acc) },
  { key: "test_top1", label: "Test top-1", numeric: true, sort: (r) => r.test_top1, cell: (r) => percent(r.test_top1) },
  { key: "seconds", label: "Time", numeric: true, sort: (r) => r.seconds, cell: (r) => duration(r.seconds) },
  { key: "modified", label: "Modified", numeric: true, sort: (r) => r.modified, cell: (r) => date(r.modified) },
];

function loadPicked() {
  try {
    return new Set(JSON.parse(localStorage.getItem(PICKED_KEY) || "[]"));
  } catch {
    return new Set();
  }
}

/** Does a run pass the filters? (text matches id, model, data or recipe; accuracy in percent) */
function passes(run, f) {
  const text = f.text.trim().toLowerCase();
  if (text && ![run.id, run.model, run.data, run.recipe].some((s) => String(s || "").toLowerCase().includes(text))) return false;
  if (f.status && run.status !== f.status) return false;
  const best = Number.isFinite(run.test_top1) ? run.test_top1 : run.best_val_acc;
  if (f.minAcc !== "" && !(Number.isFinite(best) && 100 * best >= Number(f.minAcc))) return false;
  if (f.since && !(run.modified >= new Date(f.since).getTime() / 1000)) return false;
  return true;
}

function compare(a, b) {
  const missing = (v) => v === null || v === undefined || v === "" || Number.isNaN(v);
  if (missing(a)) return missing(b) ? 0 : 1; // missing values sort last either way
  if (missing(b)) return -1;
  return typeof a === "number" ? a - b : String(a).localeCompare(String(b), "en", { numeric: true });
}

export async function render(main, { app, isCurrent }) {
  const state = {
    runs: [], roots: [], picked: loadPicked(), curves: new Map(),
    filter: { text: "", status: "", minAcc: "", since: "" },
    sort: { key: "modified", descending: true },
  };
  let closeEvents = () => {};
  let watched = "";

  const count = h("p", { class: "count", "aria-live": "polite" });
  const body = h("tbody");
  const head = h("tr");
  const charts = h("div", { class: "charts" });
  const rootsLine = h("p", { class: "roots" });

  const input = (label, el) => h("label", {}, label, el);
  const text = h("input", { type: "search", placeholder: "model, data, name", oninput: (e) => { state.filter.text = e.target.value; drawTable(); } });
  const status = h("select", { onchange: (e) => { state.filter.status = e.target.value; drawTable(); } },
    h("option", { value: "" }, "any"), STATUSES.map((s) => h("option", { value: s }, s)));
  const minAcc = h("input", { type: "number", min: 0, max: 100, step: 1, inputmode: "decimal", class: "short",
    oninput: (e) => { state.filter.minAcc = e.target.value; drawTable(); } });
  const since = h("input", { type: "date", onchange: (e) => { state.filter.since = e.target.value; drawTable(); } });
  const clear = h("button", { type: "button", onclick: () => { state.picked.clear(); savePicked(); drawTable(); drawCharts(); } }, "Clear comparison");

  main.append(
    h("h1", {}, "Runs"), rootsLine,
    h("form", { class: "filters", role: "search", onsubmit: (e) => e.preventDefault() },
      input("Search ", text), input("Status ", status), input("Accuracy ≥ (%) ", minAcc), input("Modified since ", since)),
    count,
    h("div", { class: "table-wrap" }, h("table", { class: "runs" }, h("thead", {}, head), body)),
    h("section", { class: "compare", "aria-labelledby": "compare-h" },
      h("h2", { id: "compare-h" }, "Curves of the ticked runs ", clear), charts),
  );

  function savePicked() {
    localStorage.setItem(PICKED_KEY, JSON.stringify([...state.picked]));
  }

  function drawHead() {
    fill(head, h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Compare")),
      COLUMNS.map((c) => {
        const active = state.sort.key === c.key;
        return h("th", { scope: "col", class: c.numeric ? "num" : null,
          "aria-sort": active ? (state.sort.descending ? "descending" : "ascending") : "none" },
        h("button", { type: "button", class: "sort", onclick: () => {
          state.sort = { key: c.key, descending: active ? !state.sort.descending : Boolean(c.numeric) };
          drawHead(); drawTable();
        } }, c.label, active ? (state.sort.descending ? " ▼" : " ▲") : ""));
      }));
  }

  function drawTable() {
    const column = COLUMNS.find((c) => c.key === state.sort.key);
    const shown = state.runs.filter((r) => passes(r, state.filter));
    shown.sort((a, b) => {
      const order = compare(column.sort(a), column.sort(b));
      const bothPresent = column.sort(a) != null && column.sort(b) != null;
      return state.sort.descending && bothPresent ? -order : order;
    });
    count.textContent = `${shown.length} of ${state.runs.length} runs`;
    fill(body, shown.map((r) => h("tr", { "data-run": r.id, class: state.picked.has(r.id) ? "picked" : null },
      h("td", {}, h("input", { type: "checkbox", checked: state.picked.has(r.id), "aria-label": `compare ${r.id}`,
        onchange: (e) => { if (e.target.checked) state.picked.add(r.id); else state.picked.delete(r.id); savePicked(); drawTable(); pickedChanged(); } })),
      COLUMNS.map((c) => h("td", { class: c.numeric ? "num" : null }, c.cell(r))))));
  }

  async function pickedChanged() {
    const missing = [...state.picked].filter((id) => !state.curves.has(id) && state.runs.some((r) => r.id === id));
    await Promise.all(missing.map(async (id) => {
      try {
        state.curves.set(id, await api.curves(id));
      } catch (err) {
        app.error(`${id}: ${err.message}`);
      }
    }));
    if (!isCurrent()) return;
    drawCharts();
    watch();
  }

  let pending = false;
  function drawCharts() {
    if (pending) return; // live events arrive in bursts: draw once per frame
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      const runs = [...state.picked].filter((id) => state.curves.has(id))
        .map((id) => ({ id, label: id, epochs: state.curves.get(id).epochs || [] }));
      if (!runs.length) {
        fill(charts, h("p", { class: "hint" }, "Tick runs in the table to overlay their loss and accuracy here."));
        return;
      }
      fill(charts,
        lineChart({ title: "Loss (training dashed, validation solid)", xLabel: "epoch", yLabel: "loss", integerX: true, series: epochSeries(runs, "loss") }),
        lineChart({ title: "Accuracy (training dashed, validation solid)", xLabel: "epoch", yLabel: "accuracy", integerX: true,
          yFormat: (v) => `${Math.round(100 * v)}%`, series: epochSeries(runs, "acc") }));
    });
  }

  /** Listen to the ticked runs and the running ones; reopened when that set changes. */
  function watch() {
    // Only listed runs: a ticked run deleted since would make the server refuse the stream.
    const listed = state.runs.filter((r) => state.picked.has(r.id) || r.status === "running");
    const ids = listed.map((r) => r.id).sort();
    const key = ids.join(",");
    if (key === watched) return;
    watched = key;
    closeEvents();
    closeEvents = listen(ids, {
      epoch: onEpoch,
      status: () => refresh(),
      job: () => refresh(),
    }, app.live);
  }

  function onEpoch(record) {
    const curves = state.curves.get(record.run);
    if (curves) {
      const epochs = (curves.epochs || []).filter((r) => r.epoch !== record.epoch);
      epochs.push(record);
      epochs.sort((a, b) => a.epoch - b.epoch);
      curves.epochs = epochs;
      drawCharts();
    }
    const run = state.runs.find((r) => r.id === record.run);
    if (run) {
      run.epochs_done = Math.max(run.epochs_done || 0, record.epoch);
      if (typeof record.val_acc === "number") {
        run.final_val_acc = record.val_acc;
        run.best_val_acc = Math.max(run.best_val_acc ?? -Infinity, record.val_acc);
      }
      drawTable();
    }
  }

  let refreshing = null;
  async function refresh() {
    if (refreshing) return refreshing; // one listing at a time; a burst of events asks once
    refreshing = (async () => {
      try {
        const data = await api.runs();
        if (!isCurrent()) return;
        state.runs = data.runs || [];
        state.roots = data.roots || [];
        rootsLine.textContent = `Runs under ${state.roots.join(", ") || "(no folder)"}`;
        drawTable();
        await pickedChanged();
      } catch (err) {
        app.error(err);
      } finally {
        refreshing = null;
      }
    })();
    return refreshing;
  }

  drawHead();
  await refresh();
  if (!state.picked.size) drawCharts();
  return () => closeEvents();
}
