// Experiments: cnnlab's experiments, each with the lecture's claim and its source as the
// experiment's module states them (/api/experiments reads the catalogue), the results found
// under the runs roots with their verdict and figures, and a button per tier that queues
// `cnnlab experiment run NAME --tier T` as a studio job. A running experiment's progress (the
// job's state, each of its runs' epochs) arrives live on the event stream.
//
// Routes: #/experiments (the list), #/experiments/FOLDER_ID (one result: verdict, figures,
// findings, runs).

import { api } from "./api.js";
import { duration, fill, h, percent, runHref } from "./dom.js";

const ACTIVE = new Set(["queued", "running"]);
const RETRY_MS = 1000; // a job that started before its folder was written: look again

async function get(path) {
  const response = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } });
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new Error(data && data.error ? data.error : `GET ${path} failed (${response.status})`);
  return data;
}

const folderPath = (id) => `/api/experiments/${encodeURIComponent(id)}`;
const folderHref = (id) => `#/experiments/${encodeURIComponent(id)}`;

/** The event stream of some experiment folders and of every job (see cnnlab/studio/live.py). */
function watch(folderIds, handlers, onState) {
  const query = folderIds.length ? `?experiments=${folderIds.map(encodeURIComponent).join(",")}` : "";
  const source = new EventSource(`/api/events${query}`, { withCredentials: true });
  for (const [kind, handler] of Object.entries(handlers)) {
    source.addEventListener(kind, (event) => {
      let record;
      try {
        record = JSON.parse(event.data);
      } catch {
        return; // a torn event is dropped, never fatal
      }
      handler(record);
    });
  }
  source.addEventListener("open", () => onState("open"));
  source.addEventListener("error", () => onState("error"));
  return () => source.close();
}

export async function render(main, { arg, app, isCurrent }) {
  return arg ? renderOne(main, arg, app, isCurrent) : renderList(main, app, isCurrent);
}

// --- the list --------------------------------------------------------------------------------

async function renderList(main, app, isCurrent) {
  const state = { listing: await get("/api/experiments"), close: null, watched: "", retry: null, tiers: {} };
  if (!isCurrent()) return null;
  const list = h("div", { class: "experiments" });
  main.append(h("h1", {}, "Experiments"),
    h("p", { class: "hint" }, "The lectures' empirical claims, each rerun by ",
      h("code", {}, "cnnlab experiment run NAME --tier T"),
      ". Tiers: smoke checks the machinery (no verdict), quick takes minutes, full the paper's scale. Results are the experiment folders found under the runs roots."),
    list);

  async function refresh() {
    try {
      state.listing = await get("/api/experiments");
    } catch (err) {
      app.error(err);
      return;
    }
    if (isCurrent()) draw();
  }

  function draw() {
    const { experiments = [], others = [], jobs = [] } = state.listing;
    fill(list, experiments.map((e) => card(e, jobs.filter((j) => j.experiment && j.experiment.name === e.name))),
      others.length ? h("section", { class: "experiment" }, h("h2", {}, "Other experiment folders"),
        resultsTable(others)) : null);
    // Watch the folders that are not finished; a job whose folder is not written yet: look again.
    const open = [...experiments.flatMap((e) => e.results), ...others].filter((f) => f.state !== "finished" && f.state !== "damaged");
    const ids = open.map((f) => f.id).sort().join(",");
    if (ids !== state.watched || !state.close) {
      if (state.close) state.close();
      state.watched = ids;
      state.close = watch(ids ? ids.split(",") : [], { job: onJob, experiment: onExperiment, epoch: onEpoch }, app.live);
    }
    const known = new Set(open.map((f) => f.id));
    const waiting = jobs.some((j) => ACTIVE.has(j.state) && j.run && !known.has(j.run) && j.state === "running");
    clearTimeout(state.retry);
    if (waiting) state.retry = setTimeout(refresh, RETRY_MS);
  }

  function onJob(job) {
    if (!job.experiment) return;
    const jobs = state.listing.jobs || [];
    const i = jobs.findIndex((j) => j.id === job.id);
    if (i >= 0 && jobs[i].state === job.state) return;
    refresh(); // a new job, or one that started or ended: its folder and verdict change
  }

  function onExperiment(record) {
    for (const f of allFolders()) {
      if (f.id === record.experiment) Object.assign(f, record, { id: record.experiment });
    }
    draw();
  }

  function onEpoch(record) {
    for (const f of allFolders()) {
      const run = (f.runs || []).find((r) => r.id === record.run);
      if (run && record.epoch > (run.epochs_done || 0)) {
        run.epochs_done = record.epoch;
        run.final_val_acc = record.val_acc;
        draw();
      }
    }
  }

  function allFolders() {
    return [...(state.listing.experiments || []).flatMap((e) => e.results), ...(state.listing.others || [])];
  }

  function card(e, jobs) {
    // The tier picked survives the redraws that live events cause.
    const picked = state.tiers[e.name] || "smoke";
    const tier = h("select", { id: `tier-${e.name}`, onchange: () => { state.tiers[e.name] = tier.value; } },
      e.tiers.map((t) => h("option", { value: t.tier, selected: t.tier === picked }, `${t.tier} · ${t.words}`)));
    const start = h("button", { type: "submit", "data-experiment": e.name }, "Run");
    const form = h("form", { class: "run-tier", onsubmit: async (event) => {
      event.preventDefault();
      start.disabled = true;
      try {
        await api.startJob({ kind: "experiment", name: e.name, tier: tier.value });
        app.clearError();
        await refresh();
      } catch (err) {
        app.error(err);
      } finally {
        start.disabled = false;
      }
    } }, h("label", { for: tier.id }, "Tier"), tier, start);
    const pending = jobs.filter((j) => ACTIVE.has(j.state) && !e.results.some((f) => f.id === j.run));
    return h("article", { class: "experiment", "data-experiment": e.name, "aria-labelledby": `exp-${e.name}` },
      h("h2", { id: `exp-${e.name}` }, e.title, " ", h("code", { class: "name" }, e.name)),
      h("p", { class: "claim" }, h("strong", {}, "Claim. "), e.claim),
      h("p", { class: "source" }, h("strong", {}, "Source. "), e.source),
      form,
      pending.map((j) => h("p", { class: "pending" }, h("span", { class: `badge ${j.state}` }, j.state), ` job ${j.id}: `,
        h("code", {}, (j.command || []).join(" ")))),
      e.results.length ? resultsTable(e.results) : h("p", { class: "hint" }, "No results under the runs roots yet."));
  }
  draw();
  return () => {
    clearTimeout(state.retry);
    if (state.close) state.close();
  };
}

/** The found folders of one experiment: tier, state, verdict, time; a run's progress. */
function resultsTable(folders) {
  return h("div", { class: "table-wrap" }, h("table", { class: "experiment-results" },
    h("thead", {}, h("tr", {}, ["Folder", "Tier", "State", "Verdict", "Time"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, folders.map((f) => h("tr", { "data-folder": f.id, class: f.state },
      h("td", {}, h("a", { href: folderHref(f.id) }, f.id)),
      h("td", {}, f.tier || "–"),
      h("td", {}, h("span", { class: `badge ${f.state}` }, f.state), f.reason ? h("div", { class: "reason" }, f.reason) : null),
      h("td", { class: "verdict-cell" }, f.state === "finished" ? h("span", { class: `verdict ${verdictClass(f)}` }, f.verdict_words) : progress(f.runs)),
      h("td", { class: "num" }, f.seconds !== undefined && f.seconds !== null ? duration(f.seconds) : "–"))))));
}

function verdictClass(f) {
  if (f.judged !== "verdict") return "none";
  return f.held === true ? "held" : f.held === false ? "not-held" : "none";
}

/** "first 3/3 epochs, second 1/4": how far the experiment's runs got. */
function progress(runs) {
  if (!runs || !runs.length) return h("span", { class: "hint" }, "no run yet");
  return h("ul", { class: "progress" }, runs.map((r) => h("li", { "data-run": r.id },
    `${r.label}: ${r.epochs_done}/${r.epochs ?? "?"} epochs`,
    h("progress", { max: r.epochs || 1, value: r.epochs_done || 0, "aria-label": `${r.label} epochs` }))));
}

// --- one result --------------------------------------------------------------------------------

async function renderOne(main, id, app, isCurrent) {
  let folder = await get(folderPath(id));
  if (!isCurrent()) return null;
  const body = h("div", { class: "experiment-detail" });
  main.append(h("p", {}, h("a", { href: "#/experiments" }, "← all experiments")), body);

  function draw() {
    const f = folder;
    fill(body,
      h("h1", {}, f.title || f.experiment || f.id, " ", h("code", { class: "name" }, `${f.tier || ""} tier`)),
      h("p", { class: "meta" }, h("span", { class: `badge ${f.state}` }, f.state), " ", h("code", {}, f.id),
        f.data ? ` · data ${f.data}` : "", f.seed !== undefined && f.seed !== null ? ` · seed ${f.seed}` : "",
        f.seconds ? ` · ${duration(f.seconds)}` : "", f.machine ? ` · ${f.machine}` : ""),
      f.reason ? h("p", { class: "error" }, f.reason) : null,
      f.state === "finished" ? h("section", { class: `verdict-box ${verdictClass(f)}`, "aria-labelledby": "verdict-h" },
        h("h2", { id: "verdict-h" }, `Verdict: ${f.verdict_words}`), h("p", { class: "verdict-text" }, f.verdict),
        f.rerun ? h("p", {}, "Rerun: ", h("code", {}, f.rerun)) : null) : null,
      (f.figures || []).length ? h("section", { "aria-labelledby": "figures-h" }, h("h2", { id: "figures-h" }, "Figures"),
        h("div", { class: "experiment-figures" }, f.figures.map((fig) => h("figure", {},
          h("img", { src: fig.url, alt: fig.caption, loading: "lazy" }), h("figcaption", {}, fig.caption))))) : null,
      (f.findings || []).length ? h("section", { "aria-labelledby": "findings-h" }, h("h2", { id: "findings-h" }, "What was measured"),
        f.findings.map(markdownBlock)) : null,
      (f.departures || []).length ? h("section", { "aria-labelledby": "departures-h" }, h("h2", { id: "departures-h" }, "How this departs from the paper"),
        h("ul", {}, f.departures.map((d) => h("li", {}, d)))) : null,
      h("section", { "aria-labelledby": "runs-h" }, h("h2", { id: "runs-h" }, "Its runs"), runsTable(f.runs || [], f.state)));
  }

  function onEpoch(record) {
    const run = (folder.runs || []).find((r) => r.id === record.run);
    if (run && record.epoch > (run.epochs_done || 0)) {
      Object.assign(run, { epochs_done: record.epoch, final_val_acc: record.val_acc });
      draw();
    }
  }
  async function onChange() {
    try {
      folder = await get(folderPath(id));
      if (isCurrent()) draw();
    } catch (err) {
      app.error(err);
    }
  }
  draw();
  if (folder.state === "finished" || folder.state === "damaged") return null;
  return watch([id], { epoch: onEpoch, experiment: onChange }, app.live);
}

function runsTable(runs, state) {
  if (!runs.length) return h("p", { class: "hint" }, state === "finished" ? "Its run folders are not here (results kept without them)." : "No run yet.");
  return h("div", { class: "table-wrap" }, h("table", { class: "experiment-runs" },
    h("thead", {}, h("tr", {}, ["Run", "Model", "Status", "Epochs", "Validation", "Test top-1"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, runs.map((r) => h("tr", { "data-run": r.id },
      h("td", {}, h("a", { href: runHref(r.id) }, r.label)),
      h("td", {}, r.model || "–"),
      h("td", {}, h("span", { class: `badge ${r.status}` }, r.status)),
      h("td", { class: "num" }, `${r.epochs_done}/${r.epochs ?? "?"}`),
      h("td", { class: "num" }, percent(r.final_val_acc)),
      h("td", { class: "num" }, percent(r.test_top1)))))));
}

/** A findings block: a Markdown pipe table as a table, anything else as a paragraph of text. */
function markdownBlock(text) {
  const lines = String(text).trim().split("\n");
  const isTable = lines.length >= 2 && lines.every((l) => l.trim().startsWith("|")) && /^\|?[\s:|-]+\|?$/.test(lines[1].trim());
  if (!isTable) return h("p", { class: "finding" }, String(text).replaceAll("**", ""));
  const cells = (line) => line.trim().replace(/^\||\|$/g, "").split("|").map((c) => c.trim().replaceAll("**", "").replaceAll("`", ""));
  const [head, , ...rows] = lines;
  return h("div", { class: "table-wrap" }, h("table", { class: "finding" },
    h("thead", {}, h("tr", {}, cells(head).map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows.map((row) => h("tr", {}, cells(row).map((c) => h("td", { class: /^[-+]?[\d.,]+%?$/.test(c) ? "num" : null }, c)))))));
}
