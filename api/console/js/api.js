// The public API, with the key kept in this tab's session storage and sent as the bearer token.

const KEY = "inferq.apiKey";

export function apiKey() {
  return sessionStorage.getItem(KEY);
}

export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(status, body) {
    const detail = body && (typeof body.detail === "string" ? body.detail : body.error?.message);
    super(detail || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

function headers(extra = {}) {
  return { Authorization: `Bearer ${apiKey()}`, ...extra };
}

export async function request(method, path, body, extra = {}) {
  const init = { method, headers: headers(extra) };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, init);
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
  return response;
}

export async function get(path) {
  return (await request("GET", path)).json();
}

export async function post(path, body, extra) {
  return (await request("POST", path, body, extra)).json();
}

export async function blobUrl(path) {
  return URL.createObjectURL(await (await request("GET", path)).blob());
}

// Reads a text/event-stream body, calling onEvent({id, event, data}) for each event.
export async function readEvents(response, onEvent) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = { id: null, event: "message", data: "" };
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "data") event.data += (event.data ? "\n" : "") + text;
        else if (field === "id") event.id = text;
        else if (field === "event") event.event = text;
      }
      if (event.data) onEvent({ ...event, data: JSON.parse(event.data) });
    }
  }
}

// Follows a streamed prediction's events until done or error, resuming after a clean end (the
// server ends idle streams) from the last event id. Stops when signal aborts.
export async function followPrediction(id, onEvent, signal) {
  let after = null;
  while (!signal.aborted) {
    const query = after ? `?after_id=${encodeURIComponent(after)}` : "";
    const response = await fetch(`/v1/predictions/${id}/stream${query}`, { headers: headers(), signal });
    if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
    let ended = false;
    await readEvents(response, (event) => {
      if (event.id) after = event.id;
      if (event.event === "done" || event.event === "error") ended = true;
      onEvent(event);
    });
    if (ended) return;
  }
}
