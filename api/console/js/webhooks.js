// A prediction's webhook deliveries: every attempt from GET /v1/predictions/{id}/webhooks, as a
// table refreshed while the prediction's page is open.

import { get } from "./api.js";
import { h, replace, seconds, statusBadge, when } from "./dom.js";

const REFRESH_MS = 2000;
const OUTCOMES = { delivered: "delivered", retrying: "will retry", given_up: "given up" };

function row(attempt) {
  const answer = attempt.status_code !== null ? `HTTP ${attempt.status_code}` : attempt.error;
  return h("tr", { "data-outcome": attempt.outcome },
    h("td", {}, when(attempt.attempted_at)),
    h("td", {}, statusBadge(attempt.status)),
    h("td", {}, String(attempt.attempt)),
    h("td", { "data-testid": "delivery-answer" }, answer),
    h("td", {}, seconds(attempt.duration_ms / 1000)),
    h("td", {}, OUTCOMES[attempt.outcome] || attempt.outcome));
}

function summary(log) {
  if (!log.pending) return log.data.length ? "Nothing waits for delivery." : "No delivery attempted (a prediction without a webhook has none).";
  const next = log.next_attempt_at ? `; next attempt ${when(log.next_attempt_at)}` : "";
  return `${log.pending} status change${log.pending === 1 ? "" : "s"} waiting for delivery${next}.`;
}

// Fills ``container`` with the deliveries of prediction ``id`` and keeps them current until
// ``signal`` aborts (the page closes).
export function followDeliveries(container, id, signal) {
  const body = h("tbody");
  const note = h("p", { class: "hint", "aria-live": "polite" });
  replace(container,
    h("div", { class: "table-wrap" }, h("table", { "data-testid": "deliveries" },
      h("caption", {}, "Webhook delivery attempts, oldest first (the last 50)"),
      h("thead", {}, h("tr", {},
        h("th", { scope: "col" }, "Time"), h("th", { scope: "col" }, "Status sent"), h("th", { scope: "col" }, "Attempt"),
        h("th", { scope: "col" }, "Answer"), h("th", { scope: "col" }, "Duration"), h("th", { scope: "col" }, "Outcome"))),
      body)),
    note);

  async function refresh() {
    try {
      const log = await get(`/v1/predictions/${id}/webhooks`);
      replace(body, log.data.map(row));
      replace(note, summary(log));
    } catch (error) {
      replace(note, h("span", { class: "error" }, error.message));
    }
    if (!signal.aborted) setTimeout(refresh, REFRESH_MS);
  }
  refresh();
}
