// The model queues: waiting and running predictions by priority class, the oldest wait, live
// worker processes, throughput and latency over the last minutes, and a chart of queue depth.

import { get, request } from "./api.js";
import { h, replace, seconds } from "./dom.js";
import { parseMetrics, windowFigures } from "./metrics.js";

const REFRESH_MS = 2000;
const WINDOW_MS = 5 * 60 * 1000;
const CLASSES = ["interactive", "default", "batch"];
const SVG = "http://www.w3.org/2000/svg";

function chart(points) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "chart");
  svg.setAttribute("viewBox", "0 0 300 80");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  const peak = Math.max(1, ...points.map((p) => p.queued + p.running));
  const latest = points[points.length - 1];
  // The x axis spans the samples kept (at least 30 s), so a fresh page's line fills the chart.
  const span = Math.max(30_000, latest.at - points[0].at);
  const start = latest.at - span;
  svg.setAttribute("aria-label", `Queue depth over the last ${Math.round(span / 1000)} s: now ${latest.queued} queued, ${latest.running} running, peak ${peak}`);
  const x = (t) => ((t - start) / span) * 300;
  const y = (v) => 76 - (v / peak) * 70;
  for (const [key, colour] of [["queued", "#0b57d0"], ["running", "#146c2e"]]) {
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", colour);
    line.setAttribute("stroke-width", "2");
    line.setAttribute("vector-effect", "non-scaling-stroke");
    line.setAttribute("points", points.map((p) => `${x(p.at).toFixed(1)},${y(p[key]).toFixed(1)}`).join(" "));
    svg.append(line);
  }
  return svg;
}

function figure(term, value, testid) {
  return [h("dt", {}, term), h("dd", { "data-testid": testid }, value)];
}

function card(queue, history, window) {
  const rows = CLASSES.map((name) => {
    const line = queue.classes[name] || { queued: 0, running: 0, oldest_queued_age: null };
    return h("tr", {}, h("th", { scope: "row" }, name), h("td", { "data-testid": `${name}-queued` }, line.queued), h("td", {}, line.running), h("td", {}, seconds(line.oldest_queued_age)));
  });
  const rate = window && window.perMinute !== null ? `${window.perMinute.toFixed(1)}/min (${window.ended} in ${window.minutes.toFixed(1)} min)` : "measuring…";
  const latency = (p50, p95) => (p50 === null ? "—" : `${seconds(p50)} / ${seconds(p95)}`);
  return h("section", { class: "panel card", "data-queue": queue.queue, "aria-labelledby": `q-${queue.queue}` },
    h("h2", { id: `q-${queue.queue}` }, queue.queue),
    h("p", { class: "hint" }, queue.models.join(", ")),
    h("dl", { class: "figures" },
      figure("queued", queue.queued, "queued"),
      figure("running", queue.running, "running"),
      figure("worker processes", queue.worker_processes, "workers"),
      figure("yours queued / running", `${queue.yours.queued} / ${queue.yours.running}`, "yours"),
      figure("throughput", rate, "throughput"),
      figure("run p50 / p95", window ? latency(window.runP50, window.runP95) : "—", "run-latency"),
      figure("wait p50 / p95", window ? latency(window.waitP50, window.waitP95) : "—", "wait-latency")),
    h("table", { "aria-label": `${queue.queue} by priority class` },
      h("thead", {}, h("tr", {}, h("th", {}, "class"), h("th", {}, "queued"), h("th", {}, "running"), h("th", {}, "oldest wait"))),
      h("tbody", {}, rows)),
    chart(history));
}

export function renderQueues(view) {
  const cards = h("div", { class: "cards" });
  const note = h("p", { class: "hint" });
  const onlyBusy = h("input", { type: "checkbox", id: "only-busy" });
  replace(view, h("h1", {}, "Queues"),
    h("div", { class: "row" }, onlyBusy, h("label", { for: "only-busy" }, "Only queues with work or workers")),
    note, cards);
  const history = new Map();
  const samples = [];
  let timer = null;
  let stopped = false;

  async function sampleMetrics() {
    const text = await (await request("GET", "/metrics")).text();
    samples.push({ at: Date.now(), ...parseMetrics(text) });
    while (samples.length > 2 && samples[1].at < Date.now() - WINDOW_MS) samples.shift();
  }

  async function refresh() {
    const [queues] = await Promise.all([get("/v1/queues"), sampleMetrics().catch(() => null)]);
    const now = Date.now();
    const shown = [];
    for (const queue of queues.data) {
      const points = history.get(queue.queue) || [];
      points.push({ at: now, queued: queue.queued, running: queue.running });
      while (points.length && points[0].at < now - WINDOW_MS) points.shift();
      history.set(queue.queue, points);
      if (onlyBusy.checked && !queue.queued && !queue.running && !queue.worker_processes) continue;
      const window = samples.length > 1 ? windowFigures(samples[0], samples[samples.length - 1], queue.models) : null;
      shown.push(card(queue, points, window));
    }
    replace(cards, shown);
    replace(note, `Refreshed every ${REFRESH_MS / 1000} s; throughput and latency over the last ${Math.round(WINDOW_MS / 60000)} minutes since this page opened, from /metrics.`);
  }

  async function loop() {
    try {
      await refresh();
    } catch (error) {
      replace(note, h("span", { class: "error" }, error.message));
    }
    if (!stopped) timer = setTimeout(loop, REFRESH_MS);
  }
  onlyBusy.addEventListener("change", () => refresh().catch(() => null));
  loop();
  return () => { stopped = true; clearTimeout(timer); };
}
