// A run's page: its summary, curves (epochs and training steps, live while it trains), per-class
// scores, most-confused pairs, worst errors and a confusion matrix whose cells open their test
// images; every number comes from the same functions as `cnnlab report`.

import { api, listen } from "./api.js";
import { epochSeries, lineChart } from "./chart.js";
import { dataImage, date, duration, fill, h, inspectHref, percent } from "./dom.js";

const PER_PAGE = 24; // thumbnails per page of a confusion cell

// The per-class and confused-pairs tables: column label and how to show a value.
const SCORE_COLUMNS = [
  ["Class", "name", String], ["Precision", "precision", percent], ["Recall", "recall", percent],
  ["F1", "f1", percent], ["Images", "support", String],
];
const PAIR_COLUMNS = [
  ["True class", "true", String], ["Predicted as", "predicted", String], ["Images", "count", String],
  ["Share of the class", "share", percent],
];

export async function render(main, { arg: id, app, isCurrent }) {
  if (!id) {
    main.append(h("p", {}, "No run named: pick one in ", h("a", { href: "#/runs" }, "Runs"), "."));
    return null;
  }
  const header = h("div", { class: "run-head" });
  const summary = h("section", { "aria-labelledby": "summary-h" }, h("h2", { id: "summary-h" }, "Summary"));
  const curves = h("div", { class: "charts three" });
  const results = h("div");
  main.append(h("h1", {}, id), header, summary,
    h("section", { "aria-labelledby": "curves-h" }, h("h2", { id: "curves-h" }, "Curves"), curves),
    results);

  let history = { epochs: [], steps: [] };
  let pending = false; // one redraw per frame however many live records arrive
  // A job's run page may open before the trainer made the folder: wait for it to be listed.
  let run = null;
  for (let tries = 0; ; tries += 1) {
    run = ((await api.runs()).runs || []).find((r) => r.id === id);
    if (!isCurrent()) return null;
    if (run) break;
    fill(header, h("p", { class: "hint" }, "No run with this name yet (a job that is starting?): waiting for it…"));
    await new Promise((resolve) => setTimeout(resolve, Math.min(500 * (tries + 1), 3000)));
  }
  const curvesData = await api.curves(id).catch((err) => { app.error(err); return null; });
  if (!isCurrent()) return null;
  if (curvesData) history = { epochs: curvesData.epochs || [], steps: curvesData.steps || [] };
  drawHeader(header, id, run, null);
  drawSummary(summary, run); // the runs list's facts until the test results come
  drawCurves();

  async function loadResults() {
    try {
      const data = await api.summary(id);
      if (!isCurrent()) return;
      drawHeader(header, id, run, data.report_url);
      drawSummary(summary, data.summary);
      drawResults(results, id, data);
    } catch (err) {
      fill(results, h("p", { class: "hint" }, `No test results to show: ${err.message}`));
    }
  }
  // Test results exist once a run finished; asking earlier would only be refused.
  if (run.status === "finished") await loadResults();
  else fill(results, h("p", { class: "hint" }, `The test results (confusion matrix, per-class scores, worst errors) appear when the run finishes; it is ${run.status}.`));

  function drawCurves() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      const one = [{ id, label: "", epochs: history.epochs }];
      const tidy = (series) => series.map((s) => ({ ...s, label: s.label.trim() }));
      fill(curves,
        lineChart({ title: "Loss per epoch", xLabel: "epoch", yLabel: "loss", integerX: true, series: tidy(epochSeries(one, "loss")) }),
        lineChart({ title: "Accuracy per epoch", xLabel: "epoch", yLabel: "accuracy", integerX: true,
          yFormat: (v) => `${Math.round(100 * v)}%`, series: tidy(epochSeries(one, "acc")) }),
        lineChart({ title: "Training loss per step", xLabel: "step", yLabel: "loss",
          empty: "no step log: the run was trained without one (cnnlab train --step-log writes steps.jsonl)", series: [
          { label: "step loss", color: "#0072b2", points: history.steps.map((s) => [s.step, s.loss]) }] }));
    });
  }

  return listen([id], {
    epoch: (record) => {
      if (record.run !== id) return;
      history.epochs = history.epochs.filter((r) => r.epoch !== record.epoch).concat([record]).sort((a, b) => a.epoch - b.epoch);
      if (run.status !== "finished") {
        run.epochs_done = Math.max(run.epochs_done || 0, record.epoch);
        if (typeof record.val_acc === "number") {
          run.final_val_acc = record.val_acc;
          run.best_val_acc = Math.max(run.best_val_acc ?? -Infinity, record.val_acc);
        }
        drawHeader(header, id, run, null);
        drawSummary(summary, run);
      }
      drawCurves();
    },
    step: (record) => {
      if (record.run !== id) return;
      const last = history.steps[history.steps.length - 1];
      if (!last || record.step > last.step) history.steps.push(record);
      drawCurves();
    },
    status: (record) => {
      if (record.run !== id) return;
      // The stream opens with the current status: only a change (a run finishing) reloads.
      if (record.status === run.status) return;
      run.status = record.status;
      drawHeader(header, id, run, null);
      if (record.status === "finished") loadResults();
    },
  }, app.live);
}

function drawHeader(el, id, run, reportUrl) {
  fill(el,
    run ? h("span", { class: `badge ${run.status}` }, run.status) : h("span", { class: "badge damaged" }, "not listed"),
    run && run.reason && run.status !== "running" ? h("span", { class: "reason" }, ` ${run.reason}`) : null,
    run ? h("span", { class: "facts" }, ` ${run.model} on ${run.data}, ${run.recipe} recipe, ${run.epochs_done}${run.epochs ? ` of ${run.epochs}` : ""} epochs`) : null,
    h("span", { class: "links" },
      reportUrl && reportUrl.startsWith("/") ? h("a", { href: reportUrl, target: "_blank", rel: "noopener" }, "Static report") : null,
      h("a", { href: inspectHref(id) }, "Inspect this network")));
}

// The summary's fields in the order shown: [key, label, format]; keys not listed follow as given.
const SUMMARY_FIELDS = [
  ["model", "Model", String], ["data", "Data", String], ["recipe", "Recipe", String],
  ["epochs_done", "Epochs trained", String], ["best_val_acc", "Best validation accuracy", percent],
  ["final_val_acc", "Last validation accuracy", percent], ["test_top1", "Test top-1", percent],
  ["top5", "Test top-5", percent], ["loss", "Test loss", (v) => v.toPrecision(4)],
  ["seconds", "Training time", duration], ["modified", "Last written", date],
];
const SUMMARY_SKIP = new Set(["id", "run", "status", "reason", "epochs", "path", "history"]); // in the header

/** The summary object ({field: value}) as a definition list, known fields formatted first. */
function drawSummary(section, summary) {
  const s = summary || {};
  const known = new Set(SUMMARY_FIELDS.map(([k]) => k));
  const rows = [
    ...SUMMARY_FIELDS.filter(([k]) => s[k] !== undefined && s[k] !== null).map(([k, label, fmt]) => [label, fmt(s[k])]),
    ...Object.entries(s).filter(([k, v]) => !known.has(k) && !SUMMARY_SKIP.has(k) && v !== null && typeof v !== "object")
      .map(([k, v]) => [k.replaceAll("_", " "), String(v)]),
  ];
  fill(section, h("h2", { id: "summary-h" }, "Summary"),
    h("dl", { class: "summary" }, rows.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v)))));
}

function table(columns, rows, caption) {
  return h("div", { class: "table-wrap" }, h("table", {},
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, columns.map(([label, , fmt]) => h("th", { scope: "col", class: fmt === String ? null : "num" }, label)))),
    h("tbody", {}, rows.map((row) => h("tr", {}, columns.map(([, key, fmt]) =>
      h("td", { class: fmt === String ? null : "num" }, row[key] === null || row[key] === undefined ? "–" : fmt(row[key]))))))));
}

function drawResults(el, id, data) {
  const classes = data.classes || [];
  const cell = h("div", { class: "cell-images", "aria-live": "polite" },
    h("p", { class: "hint" }, "Click a cell of the matrix to see its test images."));
  fill(el,
    h("section", { "aria-labelledby": "confusion-h" }, h("h2", { id: "confusion-h" }, "Confusion matrix"),
      h("div", { class: "confusion-layout" }, confusionMatrix(data.confusion || [], classes, (t, p) => openCell(cell, id, classes, t, p, 0)), cell)),
    h("section", { "aria-labelledby": "scores-h" }, h("h2", { id: "scores-h" }, "Per-class scores"),
      table(SCORE_COLUMNS, data.per_class || [], "Recall is the per-class accuracy; precision the share of the images predicted as the class that are.")),
    h("section", { "aria-labelledby": "pairs-h" }, h("h2", { id: "pairs-h" }, "Most confused pairs"),
      table(PAIR_COLUMNS, data.confused || [], "Test images of one class predicted as another, most first.")),
    h("section", { "aria-labelledby": "worst-h" }, h("h2", { id: "worst-h" }, "Worst errors"),
      h("p", { class: "hint" }, "The misclassified test images the network was most sure of."),
      h("div", { class: "gallery" }, (data.worst || []).map((w) => worstError(id, w)))));
}

function worstError(id, w) {
  const picture = h("figure", {}, dataImage(w.uri, w.alt || "worst error", { class: "thumb" }), h("figcaption", { class: "wrong" }, w.caption || ""));
  return Number.isInteger(w.index) ? h("a", { href: inspectHref(id, w.index), class: "plain" }, picture) : picture;
}

/** The matrix as a table of buttons; a cell's shade is its share of its true class. */
function confusionMatrix(matrix, classes, onPick) {
  const name = (i) => classes[i] ?? String(i);
  return h("div", { class: "table-wrap" }, h("table", { class: "confusion" },
    h("caption", {}, "Rows: true class; columns: predicted class. Click a cell for its images."),
    h("thead", {}, h("tr", {}, h("td"), matrix.map((_, j) => h("th", { scope: "col", class: "pred" }, h("span", {}, name(j)))))),
    h("tbody", {}, matrix.map((row, i) => {
      const total = row.reduce((a, b) => a + b, 0) || 1;
      return h("tr", {}, h("th", { scope: "row" }, name(i)), row.map((count, j) => {
        const share = count / total;
        return h("td", {}, h("button", {
          type: "button", class: `cell${i === j ? " diagonal" : ""}`, "data-true": i, "data-pred": j,
          style: `--share: ${share.toFixed(3)}`, "aria-label": `${count} ${name(i)} predicted as ${name(j)}`,
          disabled: count === 0, onclick: () => onPick(i, j),
        }, String(count)));
      }));
    }))));
}

async function openCell(el, id, classes, t, p, page) {
  const title = `${classes[t] ?? t} predicted as ${classes[p] ?? p}`;
  fill(el, h("h3", {}, title), h("p", { class: "loading" }, "loading…"));
  try {
    const data = await api.confusion(id, t, p, page, PER_PAGE);
    const pages = Math.max(1, Math.ceil(data.total / PER_PAGE));
    fill(el, h("h3", {}, `${title}: ${data.total} images`),
      h("div", { class: "thumbs" }, data.images.map((img) =>
        h("a", { href: inspectHref(id, img.index), class: "thumb-link", title: `test image ${img.index}: open in Inspect` },
          dataImage(img.uri, `test image ${img.index}`, { class: "thumb" }), h("span", {}, `#${img.index}`)))),
      h("div", { class: "pager" },
        h("button", { type: "button", disabled: page <= 0, onclick: () => openCell(el, id, classes, t, p, page - 1) }, "Previous"),
        h("span", {}, ` page ${page + 1} of ${pages} `),
        h("button", { type: "button", disabled: page + 1 >= pages, onclick: () => openCell(el, id, classes, t, p, page + 1) }, "Next")));
  } catch (err) {
    fill(el, h("h3", {}, title), h("p", { class: "error" }, err.message));
  }
}
