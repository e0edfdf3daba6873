// The studio's JSON API (the routes of src/cnnlab/studio/api.py), one function per endpoint.
// The session cookie the server set when the page was opened with ?token= travels with every
// same-origin request; errors come back as {"error": "..."} and are thrown as ApiError.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function request(method, path, body = undefined) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body instanceof FormData) {
    init.body = body;
  } else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, `the studio does not answer (${err.message}): is it still running?`);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    throw new ApiError(response.status, `${method} ${path}: the answer is not JSON`);
  }
  if (!response.ok) {
    const message = data && data.error ? data.error : `${method} ${path} failed (${response.status})`;
    throw new ApiError(response.status, message);
  }
  return data;
}

const run = (id) => `/api/runs/${encodeURIComponent(id)}`;

export const api = {
  runs: () => request("GET", "/api/runs"),
  curves: (id) => request("GET", `${run(id)}/curves`),
  summary: (id) => request("GET", `${run(id)}/summary`),
  confusion: (id, truth, predicted, page = 0, perPage = 24) =>
    request("GET", `${run(id)}/confusion/${truth}/${predicted}?page=${page}&per_page=${perPage}`),
  layers: (id) => request("GET", `${run(id)}/layers`),
  inspectUpload: (id, file) => {
    const form = new FormData();
    form.append("image", file);
    return request("POST", `${run(id)}/inspect`, form);
  },
  inspectTest: (id, index) => request("POST", `${run(id)}/inspect`, { test_index: index }),
  explain: (id, body) => request("POST", `${run(id)}/explain`, body),
  jobs: () => request("GET", "/api/jobs"),
  startJob: (body) => request("POST", "/api/jobs", body),
  stopJob: (id) => request("POST", `/api/jobs/${encodeURIComponent(id)}/stop`),
  resumeJob: (id) => request("POST", `/api/jobs/${encodeURIComponent(id)}/resume`),
  models: () => request("GET", "/api/models"),
  datasets: () => request("GET", "/api/datasets"),
};

/**
 * Listen to /api/events for some runs (null: every event the server sends).
 * handlers: {epoch, step, status, job} -> function(record). Returns a function that closes it.
 * EventSource reconnects by itself after a dropped connection; `onState` hears "open"/"error".
 */
export function listen(runIds, handlers, onState = () => {}) {
  const query = runIds && runIds.length ? `?runs=${runIds.map(encodeURIComponent).join(",")}` : "";
  const source = new EventSource(`/api/events${query}`, { withCredentials: true });
  for (const [kind, handler] of Object.entries(handlers)) {
    source.addEventListener(kind, (event) => {
      let record;
      try {
        record = JSON.parse(event.data);
      } catch {
        return; // a torn or non-JSON event is dropped, never fatal
      }
      handler(record);
    });
  }
  source.addEventListener("open", () => onState("open"));
  source.addEventListener("error", () => onState("error"));
  return () => source.close();
}
