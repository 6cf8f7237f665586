// The console's shell: sign-in, navigation between views (routed after "#"), and sign-out.

import { ApiError, apiKey, get, setApiKey } from "./api.js";
import { renderBatches } from "./batches.js";
import { h, replace } from "./dom.js";
import { renderPlayground } from "./playground.js";
import { renderPrediction, renderPredictions } from "./predictions.js";
import { renderQueues } from "./queues.js";

const ROUTES = [
  [/^#\/playground$/, renderPlayground, "Playground"],
  [/^#\/predictions$/, renderPredictions, "Predictions"],
  [/^#\/predictions\/([\w-]+)$/, renderPrediction, "Prediction"],
  [/^#\/queues$/, renderQueues, "Queues"],
  [/^#\/batches$/, renderBatches, "Batches"],
];

let cleanup = null;
const main = () => document.getElementById("main");

function showSignIn(message) {
  const input = h("input", { id: "api-key", type: "password", autocomplete: "off", required: true });
  const form = h(
    "form",
    { class: "panel", "aria-labelledby": "sign-in-title" },
    h("h1", { id: "sign-in-title" }, "Sign in"),
    h("p", {}, "Use an API key of this server (INFERQ_API_KEYS). It stays in this tab's session storage."),
    h("div", { class: "field" }, h("label", { for: "api-key" }, "API key"), input),
    message ? h("p", { class: "error", role: "alert" }, message) : null,
    h("button", { type: "submit" }, "Sign in"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    setApiKey(input.value.trim());
    try {
      await start();
    } catch (error) {
      setApiKey(null);
      showSignIn(error instanceof ApiError && error.status === 401 ? "That key is not valid." : error.message);
    }
  });
  replace(document.getElementById("account"));
  replace(main(), form);
  input.focus();
}

async function start() {
  const user = await get("/v1/user");
  const signOut = h("button", { type: "button", onclick: () => { setApiKey(null); route(); } }, "Sign out");
  replace(document.getElementById("account"), h("span", { "data-testid": "owner" }, user.username || user.name || ""), signOut);
  if (!location.hash || location.hash === "#") location.hash = "#/playground";
  else route();
}

function route() {
  if (cleanup) cleanup();
  cleanup = null;
  if (!apiKey()) {
    showSignIn();
    return;
  }
  const hash = location.hash || "#/playground";
  for (const link of document.querySelectorAll("header nav a")) {
    const current = hash.startsWith(link.getAttribute("href"));
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  for (const [pattern, render, title] of ROUTES) {
    const match = pattern.exec(hash);
    if (match) {
      document.title = `${title} · inferq console`;
      const view = replace(main());
      cleanup = render(view, ...match.slice(1)) || null;
      return;
    }
  }
  location.hash = "#/playground";
}

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", () => {
  if (apiKey()) start().catch(() => { setApiKey(null); showSignIn("Your key was refused; sign in again."); });
  else showSignIn();
});
