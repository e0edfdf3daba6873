// Inspect: question a trained network about one image. Drop or upload an image, or pick a test
// image; the page shows the top 5 classes (the numbers `cnnlab predict` prints) and Grad-CAM,
// saliency, occlusion and feature maps for any layer and any class, each with its faithfulness
// scores (what `cnnlab show` computes) and the time the server took to answer.

import { api } from "./api.js";
import { dataImage, fill, h, percent } from "./dom.js";

// The explanation methods: [method, title, does it use the chosen layer?]
const METHODS = [
  ["gradcam", "Grad-CAM", true],
  ["saliency", "Saliency", false],
  ["occlusion", "Occlusion", false],
  ["features", "Feature maps", true],
];

export async function render(main, { params, app, isCurrent }) {
  const listing = await api.runs();
  if (!isCurrent()) return null;
  const runs = (listing.runs || []).filter((r) => r.status === "finished" || r.status === "interrupted" || r.status === "failed");
  const state = { run: params.get("run") || (runs[0] && runs[0].id) || "", imageId: null, classes: [], layers: [], busy: 0 };

  const runSelect = h("select", { id: "inspect-run", onchange: () => { location.hash = `#/inspect?run=${encodeURIComponent(runSelect.value)}`; } },
    runs.map((r) => h("option", { value: r.id, selected: r.id === state.run }, `${r.id} (${r.model}, ${r.status})`)));
  const file = h("input", { id: "inspect-file", type: "file", accept: "image/*", onchange: () => file.files[0] && upload(file.files[0]) });
  const testIndex = h("input", { id: "inspect-test", type: "number", min: 0, value: params.get("test") ?? 0, class: "short" });
  const drop = h("label", { class: "drop", for: "inspect-file" }, "Drop an image here, or choose a file: ", file);
  for (const [kind, on] of [["dragover", true], ["dragenter", true], ["dragleave", false], ["drop", false]]) {
    drop.addEventListener(kind, (e) => {
      e.preventDefault();
      drop.classList.toggle("over", on);
      if (kind === "drop" && e.dataTransfer.files[0]) upload(e.dataTransfer.files[0]);
    });
  }
  const layer = h("select", { id: "inspect-layer", onchange: explainAll });
  const target = h("select", { id: "inspect-class", onchange: explainAll });
  const picture = h("div", { class: "picture" });
  const top5 = h("ol", { class: "top5", "aria-label": "top 5 classes" });
  const maps = h("div", { class: "maps" });

  main.append(h("h1", {}, "Inspect"),
    h("div", { class: "inspect-controls" },
      h("div", { class: "field" }, h("label", { for: "inspect-run" }, "Network (run)"), runSelect),
      drop,
      h("form", { class: "field inline", onsubmit: (e) => { e.preventDefault(); pickTest(); } },
        h("label", { for: "inspect-test" }, "or test image #"), testIndex, h("button", { type: "submit" }, "Use it"))),
    h("div", { class: "inspect-layout" },
      h("section", { "aria-labelledby": "pred-h" }, h("h2", { id: "pred-h" }, "Prediction"), picture, top5),
      h("section", { "aria-labelledby": "maps-h" }, h("h2", { id: "maps-h" }, "Explanations"),
        h("div", { class: "inspect-controls" },
          h("div", { class: "field" }, h("label", { for: "inspect-layer" }, "Layer (Grad-CAM, feature maps)"), layer),
          h("div", { class: "field" }, h("label", { for: "inspect-class" }, "Class to explain"), target)),
        maps)));

  if (!state.run) {
    fill(maps, h("p", { class: "hint" }, "No trained run yet: train one in Jobs."));
    return null;
  }
  // The layer list (the analyzer's names and shapes) and the class names load the network once.
  const [layers, summary] = await Promise.all([
    api.layers(state.run).catch((err) => { app.error(err); return []; }),
    // The class names, from the test results of a finished run (else the top 5's names).
    runs.some((r) => r.id === state.run && r.status === "finished") ? api.summary(state.run).catch(() => null) : null,
  ]);
  if (!isCurrent()) return null;
  state.layers = layers;
  state.classes = summary ? summary.classes || [] : [];
  fill(layer, h("option", { value: "" }, "the method's default"), layers.map((l) =>
    h("option", { value: l.name }, `${l.name} · ${l.kind || l.type || ""} · ${(l.output_shape || []).join("×")}`)));
  drawClasses([]);
  if (params.has("test")) await pickTest();
  else fill(maps, h("p", { class: "hint" }, "Pick an image to explain."));

  function drawClasses(top) {
    const names = state.classes.length ? state.classes.map((name, index) => ({ name, index })) : top.map((t) => ({ name: t.class, index: t.index }));
    const keep = target.value;
    fill(target, h("option", { value: "" }, "the predicted class"), names.map((c) => h("option", { value: c.index }, `${c.index}: ${c.name}`)));
    if ([...target.options].some((o) => o.value === keep)) target.value = keep;
  }

  async function pickTest() {
    const index = Number(testIndex.value);
    fill(picture, h("p", {}, `test image #${index}`));
    await predict(() => api.inspectTest(state.run, index));
  }

  async function upload(f) {
    const url = URL.createObjectURL(f); // a local blob: the file never leaves this computer but for the studio
    fill(picture, h("img", { src: url, alt: `uploaded ${f.name}`, class: "preview", onload: () => URL.revokeObjectURL(url) }));
    await predict(() => api.inspectUpload(state.run, f));
  }

  async function predict(call) {
    fill(top5, h("li", { class: "loading" }, "predicting…"));
    try {
      const answer = await call();
      state.imageId = answer.image_id;
      fill(top5, answer.top5.map((t) => h("li", {},
        h("span", { class: "name" }, t.class),
        h("span", { class: "bar", style: `--p: ${Math.max(0, Math.min(1, t.probability)).toFixed(4)}` }),
        h("span", { class: "p" }, percent(t.probability, 1)))));
      drawClasses(answer.top5);
      await explainAll();
    } catch (err) {
      fill(top5, h("li", { class: "error" }, err.message));
    }
  }

  /** One card per method, filled in turn (one network, one lock on the server: no parallelism):
   * first every map alone (the quick answer to a layer or class switch), then each map's
   * faithfulness scores (a hundred or more forward passes each) beneath it. */
  async function explainAll() {
    if (!state.imageId) return;
    const mine = ++state.busy;
    const cards = METHODS.map(([method, title]) => h("figure", { class: "map", "data-method": method },
      h("figcaption", {}, title), h("p", { class: "loading" }, "computing…")));
    fill(maps, cards);
    const bodies = METHODS.map(([method, , usesLayer]) => {
      const body = { image_id: state.imageId, method };
      if (usesLayer && layer.value) body.layer = layer.value;
      if (target.value !== "") body.class = Number(target.value);
      return body;
    });
    const scored = [];
    for (const [i, [method, title]] of METHODS.entries()) {
      const t0 = performance.now();
      try {
        const answer = await api.explain(state.run, { ...bodies[i], faithfulness: false });
        if (mine !== state.busy || !isCurrent()) return;
        const ms = performance.now() - t0;
        const scores = h("div", { class: "faithfulness" }, method === "features" ? faithfulness(null) : h("p", { class: "loading" }, "measuring faithfulness…"));
        fill(cards[i], h("figcaption", {}, `${title}: ${answer.class_name ?? answer.class}`,
          answer.layer ? ` at ${answer.layer}` : "", h("span", { class: "ms" }, ` ${ms.toFixed(0)} ms`)),
        dataImage(answer.png, `${title} of the image for class ${answer.class_name ?? answer.class}`), scores);
        if (method !== "features") scored.push([i, scores]);
      } catch (err) {
        if (mine !== state.busy) return;
        fill(cards[i], h("figcaption", {}, title), h("p", { class: "error" }, err.message));
      }
    }
    for (const [i, box] of scored) {
      try {
        const answer = await api.explain(state.run, bodies[i]);
        if (mine !== state.busy || !isCurrent()) return;
        box.replaceWith(faithfulness(answer.faithfulness));
      } catch (err) {
        if (mine !== state.busy) return;
        fill(box, h("p", { class: "error" }, err.message));
      }
    }
  }
  return null;
}

// The faithfulness scores shown per explanation: [key, key of the random-order baseline, label].
// Deletion: the class probability's area as the most important pixels go first (lower: the map
// found pixels that matter); insertion the reverse (higher is better); a random order is the bar.
const FAITH_ROWS = [
  ["deletion", "deletion_random", "Deletion area (lower is better)"],
  ["insertion", "insertion_random", "Insertion area (higher is better)"],
  ["class_sensitivity", null, "Class sensitivity"],
];

/** The faithfulness scores ({method: {mean: {...}}}) as one small table per map; null: a note. */
function faithfulness(scores) {
  if (!scores) return h("p", { class: "hint" }, "No faithfulness scores for this method.");
  const fmt = (v) => (typeof v === "number" ? v.toFixed(3) : "–");
  return h("div", { class: "faithfulness" }, Object.entries(scores).map(([method, result]) => {
    const mean = (result && result.mean) || result || {};
    return h("table", { class: "scores" },
      h("caption", {}, `Faithfulness of ${method}: `, h("strong", { class: "verdict" }, String(mean.verdict ?? "–"))),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "score"), h("th", { scope: "col", class: "num" }, "map"), h("th", { scope: "col", class: "num" }, "random order"))),
      h("tbody", {}, FAITH_ROWS.filter(([k]) => k in mean).map(([k, random, label]) =>
        h("tr", {}, h("th", { scope: "row" }, label), h("td", { class: "num" }, fmt(mean[k])), h("td", { class: "num" }, random ? fmt(mean[random]) : "")))),
      mean.caveats && mean.caveats.length ? h("tfoot", {}, h("tr", {}, h("td", { colspan: 3, class: "hint" }, [].concat(mean.caveats).join(" ")))) : null);
  }));
}
