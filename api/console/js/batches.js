// The key's batches: progress from request_counts, status, timestamps, result files, cancel.

import { blobUrl, get, post } from "./api.js";
import { announce, h, replace, statusBadge } from "./dom.js";

const REFRESH_MS = 2000;
const ENDED = new Set(["completed", "failed", "expired", "cancelled"]);
const STAMPS = ["created_at", "in_progress_at", "finalizing_at", "completed_at", "failed_at", "expired_at", "cancelling_at", "cancelled_at"];

function stamp(seconds) {
  return new Date(seconds * 1000).toLocaleString();
}

function fileLink(id, label) {
  if (!id) return null;
  const link = h("a", { href: "#", "data-file": id }, label);
  link.addEventListener("click", async (event) => {
    event.preventDefault();
    const url = await blobUrl(`/v1/files/${id}/content`);
    const download = h("a", { href: url, download: `${id}.jsonl` });
    document.body.append(download);
    download.click();
    download.remove();
  });
  return link;
}

function row(batch, onCancel) {
  const counts = batch.request_counts || { total: 0, completed: 0, failed: 0 };
  const done = counts.completed + counts.failed;
  const label = `${done} of ${counts.total} requests done (${counts.failed} failed)`;
  const times = STAMPS.filter((name) => batch[name]).map((name) => h("div", {}, `${name.replace(/_at$/, "").replace("_", " ")}: ${stamp(batch[name])}`));
  const cancel = ENDED.has(batch.status) || batch.status === "cancelling"
    ? null
    : h("button", { type: "button", class: "danger", onclick: () => onCancel(batch.id) }, "Cancel");
  return h("tr", { "data-id": batch.id },
    h("td", {}, h("code", {}, batch.id), h("div", { class: "hint" }, `${batch.endpoint} · ${batch.model || ""}`)),
    h("td", {}, statusBadge(batch.status)),
    h("td", {},
      h("progress", { class: "progress", max: String(Math.max(counts.total, 1)), value: String(done), "aria-label": label, "data-testid": "progress" }),
      h("div", { class: "hint", "data-testid": "counts" }, label)),
    h("td", { class: "wide" }, times),
    h("td", {}, fileLink(batch.output_file_id, "output"), " ", fileLink(batch.error_file_id, "errors"), cancel));
}

export function renderBatches(view) {
  const body = h("tbody");
  const note = h("p", { class: "hint" });
  replace(view, h("h1", {}, "Batches"),
    h("p", {}, "Create batches with the Files and Batches API (see the README); they appear here."),
    h("div", { class: "table-wrap" }, h("table", { "aria-label": "Batches, newest first" },
      h("thead", {}, h("tr", {}, h("th", {}, "Batch"), h("th", {}, "Status"), h("th", {}, "Progress"), h("th", { class: "wide" }, "Timestamps"), h("th", {}, "Files"))),
      body)),
    note);
  let timer = null;
  let stopped = false;

  async function cancel(id) {
    try {
      await post(`/v1/batches/${id}/cancel`);
      announce("Batch cancellation requested");
      await refresh();
    } catch (error) {
      replace(note, h("span", { class: "error", role: "alert" }, error.message));
    }
  }

  async function refresh() {
    const page = await get("/v1/batches?limit=100");
    replace(body, page.data.map((batch) => row(batch, cancel)));
    replace(note, page.data.length ? `Refreshed every ${REFRESH_MS / 1000} s.` : "No batches yet.");
  }

  async function loop() {
    try {
      await refresh();
    } catch (error) {
      replace(note, h("span", { class: "error" }, error.message));
    }
    if (!stopped) timer = setTimeout(loop, REFRESH_MS);
  }
  loop();
  return () => { stopped = true; clearTimeout(timer); };
}
