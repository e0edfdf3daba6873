// Jobs: start a training (or an experiment) from a form, see the exact command it runs, and
// the queue (one job at a time) with stop and resume buttons. The queue lives in the server, so
// a reload loses nothing; `job` events keep the table current.

import { api, listen } from "./api.js";
import { date, fill, h, runHref } from "./dom.js";

const RECIPES = ["fast", "paper", "fast94"]; // `cnnlab train --recipe` choices
const TIERS = ["smoke", "quick", "full"]; // `cnnlab experiment run --tier` choices
const FORM_KEY = "cnnlab.studio.jobform"; // the form's last values survive a reload
const ACTIVE = new Set(["queued", "running"]);

// The training form's fields: [name, label, input attributes]; their order is the command's.
const TRAIN_FIELDS = [
  ["epochs", "Epochs", { type: "number", min: 1, max: 10000, value: 1 }],
  ["seed", "Seed", { type: "number", min: 0, value: 0 }],
  ["threads", "Threads (0: all cores)", { type: "number", min: 0, max: 256, value: 0 }],
  ["limit_train", "Training images (empty: all)", { type: "number", min: 1 }],
];

/** The command the server will run for a training request (it adds --out, the new run folder). */
export function trainCommand(spec) {
  const argv = ["cnnlab", "train", spec.model, "--data", spec.data, "--recipe", spec.recipe,
    "--epochs", String(spec.epochs), "--seed", String(spec.seed), "--threads", String(spec.threads)];
  if (spec.limit_train) argv.push("--limit-train", String(spec.limit_train));
  return argv;
}

/** An argv as a shell line (quoted where a word needs it), as a user would type it. */
export function shellLine(argv) {
  return argv.map((w) => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replaceAll("'", "'\\''")}'`)).join(" ");
}

export async function render(main, { app, isCurrent }) {
  const [models, datasets, jobs] = await Promise.all([api.models(), api.datasets(), api.jobs()]);
  if (!isCurrent()) return null;
  let saved = {};
  try {
    saved = JSON.parse(localStorage.getItem(FORM_KEY) || "{}");
  } catch { /* a damaged entry: start from the defaults */ }

  const byFamily = new Map();
  for (const m of models.models || []) {
    if (!byFamily.has(m.family)) byFamily.set(m.family, []);
    byFamily.get(m.family).push(m);
  }
  const model = h("select", { id: "job-model", name: "model", required: true },
    [...byFamily].map(([family, ms]) => h("optgroup", { label: family },
      ms.map((m) => h("option", { value: m.name, title: m.description || m.paper || "" }, m.name)))));
  const data = h("select", { id: "job-data", name: "data" },
    h("optgroup", { label: "Datasets" }, (datasets.datasets || []).map((d) =>
      h("option", { value: d.name, disabled: d.installed === false },
        `${d.name}${d.installed === false ? " (not installed)" : ""}`))),
    (datasets.folders || []).length
      ? h("optgroup", { label: "Image folders under the roots" }, datasets.folders.map((f) => h("option", { value: f }, f)))
      : null);
  const recipe = h("select", { id: "job-recipe", name: "recipe" }, RECIPES.map((r) => h("option", { value: r }, r)));
  const numbers = Object.fromEntries(TRAIN_FIELDS.map(([name, , attrs]) => [name, h("input", { id: `job-${name}`, name, ...attrs })]));
  const expName = h("input", { id: "job-exp-name", name: "name", placeholder: "see `cnnlab experiment list`" });
  const expTier = h("select", { id: "job-exp-tier", name: "tier" }, TIERS.map((t) => h("option", { value: t, selected: t === "quick" }, t)));
  const kind = h("select", { id: "job-kind", name: "kind" }, h("option", { value: "train" }, "training"), h("option", { value: "experiment" }, "experiment"));
  const command = h("div", { id: "job-command" });
  const trainBox = h("fieldset", {}, h("legend", {}, "Training"),
    field("Model", model), field("Data", data), field("Recipe", recipe),
    TRAIN_FIELDS.map(([name, label]) => field(label, numbers[name])));
  const expBox = h("fieldset", { hidden: true }, h("legend", {}, "Experiment"), field("Name", expName), field("Tier", expTier));

  if (!saved.model && [...model.options].some((o) => o.value === "lenet5")) model.value = "lenet5"; // trains in seconds on a CPU
  for (const [el, key] of [[model, "model"], [data, "data"], [recipe, "recipe"], [kind, "kind"], [expName, "name"], [expTier, "tier"],
    ...Object.entries(numbers).map(([k, el]) => [el, k])]) {
    if (saved[key] !== undefined && (el.tagName !== "SELECT" || [...el.options].some((o) => o.value === saved[key] && !o.disabled))) el.value = saved[key];
  }

  function spec() {
    if (kind.value === "experiment") return { kind: "experiment", name: expName.value.trim(), tier: expTier.value };
    const out = { kind: "train", model: model.value, data: data.value, recipe: recipe.value };
    for (const [name] of TRAIN_FIELDS) if (numbers[name].value !== "") out[name] = Number(numbers[name].value);
    return out;
  }
  function update() {
    const s = spec();
    trainBox.hidden = s.kind !== "train";
    expBox.hidden = s.kind !== "experiment";
    const argv = s.kind === "train" ? trainCommand(s) : ["cnnlab", "experiment", "run", s.name || "NAME", "--tier", s.tier];
    fill(command, argvCode(argv), h("code", { class: "argv-tail" }, " ", h("span", {}, "--out …")));
    localStorage.setItem(FORM_KEY, JSON.stringify({ ...s, kind: s.kind }));
  }

  const queue = h("tbody");
  const state = { jobs: jobs.jobs || [] };
  const submit = h("button", { type: "submit" }, "Queue it");
  const form = h("form", { class: "job-form", oninput: update, onchange: update, onsubmit: async (e) => {
    e.preventDefault();
    submit.disabled = true;
    try {
      upsert(await api.startJob(spec()));
      app.clearError();
    } catch (err) {
      app.error(err);
    } finally {
      submit.disabled = false;
    }
  } }, field("Kind", kind), trainBox, expBox,
  h("p", { class: "command" }, "Runs ", command, h("br"),
    h("small", {}, "The studio picks the new run folder (--out) under the first root; the queue shows each job's exact command.")),
  submit);

  main.append(h("h1", {}, "Jobs"),
    h("div", { class: "jobs-layout" },
      h("section", { "aria-labelledby": "new-h" }, h("h2", { id: "new-h" }, "New job"), form),
      h("section", { "aria-labelledby": "queue-h" }, h("h2", { id: "queue-h" }, "Queue"),
        h("p", { class: "hint" }, "One job runs at a time. Stop is a clean interrupt (Ctrl-C): the run keeps its checkpoints and Resume continues it."),
        h("div", { class: "table-wrap" }, h("table", { class: "jobs" },
          h("thead", {}, h("tr", {}, ["#", "State", "Command", "Run", "Started", "Ended", ""].map((c) => h("th", { scope: "col" }, c)))),
          queue)))));

  function upsert(job) {
    const i = state.jobs.findIndex((j) => j.id === job.id);
    if (i >= 0) state.jobs[i] = job;
    else state.jobs.push(job);
    draw();
  }

  function action(label, fn, job) {
    return h("button", { type: "button", "data-action": label.toLowerCase(), "aria-label": `${label} job ${job.id}`, onclick: async (e) => {
      e.target.disabled = true;
      try {
        upsert(await fn(job.id));
      } catch (err) {
        app.error(err);
        e.target.disabled = false;
      }
    } }, label);
  }

  function draw() {
    const rows = [...state.jobs].sort((a, b) => b.id - a.id);
    fill(queue, rows.length ? rows.map((j) => h("tr", { "data-job": j.id, class: j.state },
      h("td", {}, String(j.id)),
      h("td", {}, h("span", { class: `badge ${j.state}` }, j.state),
        j.returncode !== null && j.returncode !== undefined && j.state !== "running" ? h("div", { class: "reason" }, `exit ${j.returncode}`) : null),
      h("td", {}, argvCode(j.command || []),
        j.log ? h("details", {}, h("summary", {}, "output"), h("pre", { class: "log" }, j.log)) : null),
      h("td", {}, j.run ? h("a", { href: runHref(j.run) }, j.run) : "–"),
      h("td", { class: "when" }, date(j.started)),
      h("td", { class: "when" }, date(j.ended)),
      h("td", { class: "actions" },
        ACTIVE.has(j.state) ? action("Stop", api.stopJob, j) : null,
        j.kind === "train" && (j.state === "stopped" || j.state === "failed") ? action("Resume", api.resumeJob, j) : null)))
      : h("tr", {}, h("td", { colspan: 7, class: "hint" }, "No jobs yet.")));
  }

  update();
  draw();
  return listen([], { job: upsert }, app.live);
}

/** A command line whose words never break inside (a wrap falls between words). */
function argvCode(argv) {
  // Long words (a run folder's path) may break anywhere, the others nowhere.
  return h("code", { class: "argv" }, shellLine(argv).split(" ").map((w, i) =>
    [i ? " " : "", h("span", { class: w.length > 24 ? "long" : null }, w)]));
}

function field(label, input) {
  return h("div", { class: "field" }, h("label", { for: input.id }, label), input);
}
