// The studio's page: a router over the views, a message line and the live-connection state.
//
// A view is one row of VIEWS plus its own module, which exports
// `render(main, {arg, params, app})` and may return a function that cleans up (closes its event
// stream) when the page moves to another view. Routes live in the URL fragment
// (#/runs, #/run/ID, #/jobs, #/inspect?run=ID&test=N), so reloading keeps the place.

import { h, fill } from "./dom.js";

const VIEWS = [
  { route: "runs", label: "Runs", nav: true, load: () => import("./runs.js") },
  { route: "run", label: "Run", nav: false, load: () => import("./run.js") },
  { route: "jobs", label: "Jobs", nav: true, load: () => import("./jobs.js") },
  { route: "inspect", label: "Inspect", nav: true, load: () => import("./inspect.js") },
  { route: "architecture", label: "Architectures", nav: true, load: () => import("./architecture.js") },
  { route: "conv", label: "Conv lab", nav: true, load: () => import("./conv.js") },
  { route: "filters", label: "Filters lab", nav: true, load: () => import("./filters.js") },
  { route: "experiments", label: "Experiments", nav: true, load: () => import("./experiments.js") },
];
const DEFAULT_ROUTE = "runs";

let cleanup = null;
let generation = 0; // a slow view that finishes after the user moved on draws nothing

/** What the views share: the message line and the live indicator. */
const app = {
  error(err) {
    const box = document.getElementById("message");
    fill(box, String(err && err.message ? err.message : err),
      h("button", { type: "button", class: "link", onclick: () => { box.hidden = true; } }, "dismiss"));
    box.hidden = false;
  },
  clearError() {
    document.getElementById("message").hidden = true;
  },
  live(state) {
    const el = document.getElementById("live");
    el.textContent = state === "open" ? "live" : state === "error" ? "reconnecting…" : state;
    el.dataset.state = state;
  },
};

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, query = ""] = raw.split("?");
  const [route, ...rest] = path.split("/");
  return {
    route: route || DEFAULT_ROUTE,
    arg: rest.length ? decodeURIComponent(rest.join("/")) : null,
    params: new URLSearchParams(query),
  };
}

async function show() {
  const { route, arg, params } = parseHash();
  const view = VIEWS.find((v) => v.route === route) || VIEWS.find((v) => v.route === DEFAULT_ROUTE);
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.route === (view.nav ? view.route : "runs")) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (cleanup) cleanup();
  cleanup = null;
  app.clearError();
  const mine = ++generation;
  const main = document.getElementById("view");
  main.replaceChildren(h("p", { class: "loading" }, "loading…"));
  main.setAttribute("aria-busy", "true");
  try {
    const module = await view.load();
    if (mine !== generation) return;
    main.replaceChildren();
    const done = await module.render(main, { arg, params, app, isCurrent: () => mine === generation });
    if (mine === generation) cleanup = typeof done === "function" ? done : null;
    else if (typeof done === "function") done();
  } catch (err) {
    if (mine === generation) {
      main.replaceChildren(h("p", { class: "error" }, String(err.message || err)));
      console.warn(err);
    }
  } finally {
    if (mine === generation) main.removeAttribute("aria-busy");
  }
  document.title = `${view.label}${arg ? ` ${arg}` : ""} · cnnlab studio`;
}

function start() {
  // The token has done its work (the server answered with a session cookie): keep it out of the
  // address bar, bookmarks and screenshots.
  const url = new URL(location.href);
  if (url.searchParams.has("token")) {
    url.searchParams.delete("token");
    history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
  fill(document.getElementById("nav"), VIEWS.filter((v) => v.nav).map((v) =>
    h("li", {}, h("a", { href: `#/${v.route}`, "data-route": v.route }, v.label))));
  window.addEventListener("hashchange", show);
  show();
}

start();
