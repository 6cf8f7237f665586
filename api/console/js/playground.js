// The playground: pick a model and version, fill the form its input schema makes, run it with
// streaming, and see images (partial ones too), text or embeddings arrive.

import { followPrediction, get, readEvents, request } from "./api.js";
import { announce, h, replace, statusBadge } from "./dom.js";
import { imageUrl, renderOutput } from "./output.js";
import { buildForm } from "./schema_form.js";
import { curl, openai, wriftai } from "./snippets.js";

async function allModels() {
  const models = [];
  let cursor = "";
  do {
    const page = await get(`/v1/models?page_size=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    models.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return models.sort((a, b) => a.id.localeCompare(b.id));
}

export function renderPlayground(view) {
  const controller = new AbortController();
  const modelSelect = h("select", { id: "pg-model" });
  const versionSelect = h("select", { id: "pg-version" });
  const fields = h("div", { id: "pg-fields" });
  const runButton = h("button", { type: "submit" }, "Run");
  const form = h("form", { class: "panel", "aria-label": "Input" },
    h("div", { class: "field" }, h("label", { for: "pg-model" }, "Model"), modelSelect),
    h("div", { class: "field" }, h("label", { for: "pg-version" }, "Version"), versionSelect),
    h("p", { class: "hint", id: "pg-description" }),
    fields, runButton);
  const result = h("section", { "aria-label": "Result", "aria-live": "polite", id: "pg-result" });
  const snippets = h("section", { "aria-label": "Copy as" });
  replace(view, h("h1", {}, "Playground"), h("div", { class: "grid" }, form, h("div", {}, result, snippets)));
  let readInput = null;
  let version = null;
  const models = new Map();

  async function loadVersion() {
    const [owner, name] = modelSelect.value.split("/");
    version = await get(`/v1/models/${owner}/${name}/versions/${versionSelect.value}`);
    replace(fields);
    readInput = buildForm(fields, version.schemas.prediction.input);
  }

  async function loadModel() {
    const [owner, name] = modelSelect.value.split("/");
    replace(document.getElementById("pg-description"), models.get(modelSelect.value)?.description || "");
    const versions = await get(`/v1/models/${owner}/${name}/versions?page_size=50`);
    replace(versionSelect, versions.items.map((v) => h("option", { value: String(v.number) }, `v${v.number}`)));
    await loadVersion();
  }

  modelSelect.addEventListener("change", () => loadModel().catch(showError));
  versionSelect.addEventListener("change", () => loadVersion().catch(showError));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    run().catch(showError);
  });

  function showError(error) {
    runButton.disabled = false;
    result.append(h("p", { class: "error", role: "alert" }, error.message));
  }

  async function run() {
    const input = await readInput();
    const body = { model: `${modelSelect.value}:${versionSelect.value}`, input, stream: true };
    showSnippets(body);
    runButton.disabled = true;
    const status = h("p", {}, "Starting…");
    const live = h("div", { "data-testid": "live-output" });
    const text = h("pre", { "data-testid": "stream-text", hidden: true });
    replace(result, h("h2", {}, "Result"), status, text, live);
    const partials = new Map();
    const response = await request("POST", "/v1/predictions", body, { Prefer: "wait" });
    let id = null;
    let ended = false;
    const onEvent = (event) => {
      const data = event.data;
      if (data && data.id && !id) id = data.id;
      if (event.event === "done" || event.event === "error") ended = true;
      if (event.event === "init") {
        replace(status, statusBadge(data.status), " ", h("a", { href: `#/predictions/${data.id}` }, data.id));
        text.textContent = "";
      } else if (event.event === "output") {
        if (data && data.type === "partial_image") {
          const key = data.image_index;
          const img = partials.get(key) || h("img", { alt: `Image ${key + 1}, partial`, "data-testid": "partial-image" });
          img.src = imageUrl(data.b64_json, input.output_format);
          if (!partials.has(key)) { partials.set(key, img); live.append(img); }
        } else if (typeof data === "string") {
          text.hidden = false;
          text.textContent += data;
        } else {
          text.hidden = false;
          text.textContent += JSON.stringify(data) + "\n";
        }
      } else if (event.event === "done") {
        replace(status, statusBadge(data.status), " ", h("a", { href: `#/predictions/${data.id}` }, data.id));
        replace(live, data.error ? h("p", { class: "error" }, data.error.message) : renderOutput(data.output, data));
        announce(`Prediction ${data.status}`);
      } else if (event.event === "error") {
        replace(status, statusBadge("failed"));
        replace(live, h("p", { class: "error", role: "alert" }, data.message || "The prediction failed"));
      }
    };
    await readEvents(response, onEvent);
    // The create's stream ends cleanly when it idles past its wait: follow the rest.
    if (!ended && id) await followPrediction(id, onEvent, controller.signal);
    runButton.disabled = false;
  }

  function showSnippets(body) {
    const base = location.origin;
    const texts = { curl: curl(base, body), "Python (wriftai)": wriftai(base, body), "Python (openai)": openai(base, body, version.compatibilities || {}) };
    const pre = h("pre", { id: "snippet", tabindex: "0" });
    const tabs = Object.keys(texts).map((name) => h("button", {
      type: "button", role: "tab", "aria-selected": "false", "aria-controls": "snippet",
      onclick: (event) => select(name, event.currentTarget),
    }, name));
    const copy = h("button", { type: "button", class: "secondary", onclick: async () => {
      await navigator.clipboard.writeText(pre.textContent).catch(() => null);
      announce("Copied");
    } }, "Copy");
    function select(name, tab) {
      for (const t of tabs) t.setAttribute("aria-selected", String(t === tab));
      pre.textContent = texts[name];
    }
    replace(snippets, h("h2", {}, "Copy as"), h("div", { class: "tabs", role: "tablist" }, tabs), pre, copy);
    select("curl", tabs[0]);
  }

  allModels().then((found) => {
    for (const model of found) models.set(model.id, model);
    replace(modelSelect, found.map((m) => h("option", { value: m.id }, m.id)));
    const preferred = found.find((m) => m.id === "inferq/sketch");
    if (preferred) modelSelect.value = preferred.id;
    return loadModel();
  }).catch(showError);
  return () => controller.abort();
}
