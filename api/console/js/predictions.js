// The key's predictions, newest first and refreshed live, and one prediction's page.

import { followPrediction, get, post } from "./api.js";
import { announce, h, isoSeconds, replace, seconds, statusBadge, when } from "./dom.js";
import { json, renderOutput } from "./output.js";
import { followDeliveries } from "./webhooks.js";

const STATUSES = ["pending", "starting", "started", "succeeded", "failed", "cancelled", "abandoned"];
const TERMINAL = new Set(["succeeded", "failed", "cancelled", "abandoned"]);
const REFRESH_MS = 1500;

function modelName(model) {
  return `${model.owner}/${model.name}:${model.version_number}`;
}

export function renderPredictions(view) {
  const statusSelect = h("select", { id: "filter-status" }, h("option", { value: "" }, "any"), STATUSES.map((s) => h("option", { value: s }, s)));
  const modelSelect = h("select", { id: "filter-model" }, h("option", { value: "" }, "any"));
  const body = h("tbody");
  const note = h("p", { class: "hint" });
  replace(view,
    h("h1", {}, "Predictions"),
    h("div", { class: "row", role: "search" },
      h("label", { for: "filter-status" }, "Status"), statusSelect,
      h("label", { for: "filter-model" }, "Model"), modelSelect),
    h("div", { class: "table-wrap" }, h("table", { "aria-label": "Predictions, newest first" },
      h("thead", {}, h("tr", {}, h("th", {}, "Prediction"), h("th", {}, "Status"), h("th", {}, "Model"), h("th", { class: "wide" }, "Created"), h("th", { class: "wide" }, "Run time"))),
      body)),
    note);
  const seenModels = new Set();
  let timer = null;
  let stopped = false;

  async function refresh() {
    const query = new URLSearchParams({ page_size: "50" });
    if (statusSelect.value) query.append("statuses", statusSelect.value);
    const page = await get(`/v1/predictions?${query}`);
    for (const item of page.items) {
      const name = `${item.model.owner}/${item.model.name}`;
      if (!seenModels.has(name)) {
        seenModels.add(name);
        modelSelect.append(h("option", { value: name }, name));
      }
    }
    const items = page.items.filter((p) => !modelSelect.value || `${p.model.owner}/${p.model.name}` === modelSelect.value);
    replace(body, items.map((p) => h("tr", { "data-id": p.id },
      h("td", {}, h("a", { href: `#/predictions/${p.id}` }, p.id.slice(0, 8))),
      h("td", {}, statusBadge(p.status)),
      h("td", {}, modelName(p.model)),
      h("td", { class: "wide" }, when(p.created_at)),
      h("td", { class: "wide" }, seconds(isoSeconds(p.execution_time))))));
    replace(note, items.length ? `The newest ${items.length} shown; refreshed every ${REFRESH_MS / 1000} s.` : "No predictions match.");
  }

  async function loop() {
    try {
      await refresh();
    } catch (error) {
      replace(note, h("span", { class: "error" }, error.message));
    }
    if (!stopped) timer = setTimeout(loop, REFRESH_MS);
  }
  statusSelect.addEventListener("change", () => refresh().catch(() => null));
  modelSelect.addEventListener("change", () => refresh().catch(() => null));
  loop();
  return () => { stopped = true; clearTimeout(timer); };
}

function timeline(prediction, seen) {
  const created = Date.parse(prediction.created_at);
  const setup = isoSeconds(prediction.setup_time) || 0;
  const run = isoSeconds(prediction.execution_time);
  const items = [h("li", {}, `created ${when(prediction.created_at)}`)];
  for (const [status, at] of seen) {
    items.push(h("li", {}, `${status}, seen at ${new Date(at).toLocaleTimeString()} (+${seconds((at - created) / 1000)})`));
  }
  if (TERMINAL.has(prediction.status)) {
    const ended = Date.parse(prediction.updated_at);
    if (run !== null) {
      const started = ended - (run + setup) * 1000;
      items.push(h("li", {}, `waited for a worker ${seconds(Math.max(0, started - created) / 1000)}; set up ${seconds(setup)}; ran ${seconds(run)}`));
    }
    items.push(h("li", {}, `${prediction.status} ${when(prediction.updated_at)} (${seconds((ended - created) / 1000)} after creation)`));
  }
  return h("ol", { class: "timeline", "data-testid": "timeline" }, items);
}

export function renderPrediction(view, id) {
  const controller = new AbortController();
  const header = h("div", { class: "row" });
  const cancel = h("button", { type: "button", class: "danger", id: "cancel" }, "Cancel");
  const sections = {
    timeline: h("div"), input: h("div"), deliveries: h("div"), logs: h("pre", { "data-testid": "logs", tabindex: "0" }), output: h("div", { "aria-live": "polite" }),
  };
  replace(view,
    h("p", {}, h("a", { href: "#/predictions" }, "← Predictions")),
    h("h1", {}, "Prediction ", h("code", {}, id)),
    header,
    h("div", { class: "grid" },
      h("div", {}, h("h2", {}, "Status"), sections.timeline, h("h2", {}, "Input"), sections.input),
      h("div", {}, h("h2", {}, "Output"), sections.output, h("h2", {}, "Logs"), sections.logs)),
    h("h2", {}, "Webhook deliveries"), sections.deliveries);
  const seen = [];
  let last = null;
  let streamed = "";

  function show(prediction) {
    if (!seen.length || seen[seen.length - 1][0] !== prediction.status) seen.push([prediction.status, Date.now()]);
    replace(header, statusBadge(prediction.status), ` ${modelName(prediction.model)}`, cancel);
    cancel.disabled = TERMINAL.has(prediction.status);
    replace(sections.timeline, timeline(prediction, seen));
    if (!last) replace(sections.input, json(prediction.input));
    sections.logs.textContent = prediction.logs || "(no logs)";
    if (TERMINAL.has(prediction.status)) {
      replace(sections.output, prediction.error ? h("p", { class: "error" }, `${prediction.error.source}: ${prediction.error.message}`) : renderOutput(prediction.output, prediction));
    } else if (streamed) {
      replace(sections.output, h("pre", { "data-testid": "stream-text" }, streamed));
    } else {
      replace(sections.output, h("p", {}, "Not finished yet."));
    }
    if (last && last.status !== prediction.status) announce(`Prediction ${prediction.status}`);
    last = prediction;
  }

  cancel.addEventListener("click", async () => {
    cancel.disabled = true;
    try {
      await post(`/v1/predictions/${id}/cancel`);
      announce("Cancellation requested");
    } catch (error) {
      header.append(h("span", { class: "error", role: "alert" }, error.message));
    }
  });

  async function poll() {
    while (!controller.signal.aborted) {
      const prediction = await get(`/v1/predictions/${id}`);
      show(prediction);
      if (TERMINAL.has(prediction.status)) return prediction;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    return null;
  }

  followDeliveries(sections.deliveries, id, controller.signal);
  poll().then((first) => first).catch((error) => replace(sections.output, h("p", { class: "error" }, error.message)));
  get(`/v1/predictions/${id}`).then((prediction) => {
    if (!prediction.stream || TERMINAL.has(prediction.status)) return null;
    return followPrediction(id, (event) => {
      if (event.event === "init") streamed = "";
      else if (event.event === "output" && typeof event.data === "string") streamed += event.data;
      else if (event.event === "output" || event.event === "done" || event.event === "error") {
        get(`/v1/predictions/${id}`).then(show).catch(() => null);
        return;
      }
      if (last && !TERMINAL.has(last.status)) show(last);
    }, controller.signal);
  }).catch(() => null);
  return () => controller.abort();
}
