// Small DOM helpers. Every string from the server (a run's name, a reason, a class name) goes
// into the page as a text node, never as HTML, so a crafted run directory cannot inject markup.

/**
 * Make an element: h("button", {type: "button", onclick: f}, "Stop").
 * Attributes starting with "on" become listeners; `class`, `for` and data-* are set as given;
 * `null`/`false` attributes are left out; children may be strings, numbers, nodes or arrays.
 */
export function h(tag, attrs = {}, ...children) {
  const svg = SVG_TAGS.has(tag);
  const el = svg ? document.createElementNS(SVG_NS, tag) : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "value" && !svg) {
      el.value = value;
    } else if (key === "checked" || key === "selected" || key === "disabled") {
      el[key] = Boolean(value);
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

const SVG_NS = "http://www.w3.org/2000/svg"; // the SVG namespace name, not a request
const SVG_TAGS = new Set([
  "svg", "g", "path", "line", "polyline", "circle", "rect", "text", "title", "polygon",
]);

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** An <img> only for data: URIs of images (what the API returns); anything else is refused. */
export function dataImage(uri, alt, attrs = {}) {
  if (typeof uri !== "string" || !uri.startsWith("data:image/")) {
    return h("span", { class: "missing" }, "(no image)");
  }
  return h("img", { src: uri, alt, ...attrs });
}

/** 0.8734 -> "87.34%"; null/undefined/NaN -> "–". */
export function percent(x, digits = 2) {
  return Number.isFinite(x) ? `${(100 * x).toFixed(digits)}%` : "–";
}

/** A number for a table cell: 3 significant digits, "–" when missing. */
export function num(x) {
  if (!Number.isFinite(x)) return "–";
  return Math.abs(x) >= 1000 ? Math.round(x).toLocaleString("en") : x.toPrecision(3);
}

/** Seconds -> "1 h 02 min", "3 min 20 s", "4.2 s". */
export function duration(s) {
  if (!Number.isFinite(s)) return "–";
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(Math.round(s % 60)).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
}

/** Unix seconds -> "2026-12-07 12:58" in local time (sortable, unambiguous). */
export function date(unix) {
  if (!Number.isFinite(unix)) return "–";
  const d = new Date(unix * 1000);
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** The URL fragment of a run's page: run ids are URL-encoded path segments. */
export function runHref(id) {
  return `#/run/${encodeURIComponent(id)}`;
}

/** The URL fragment of Inspect for a run, optionally with a test image. */
export function inspectHref(run, testIndex = null) {
  const q = new URLSearchParams({ run });
  if (testIndex !== null && testIndex !== undefined) q.set("test", String(testIndex));
  return `#/inspect?${q}`;
}
