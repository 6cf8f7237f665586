// Building elements without innerHTML: every text goes in as text, so nothing a model or a user
// wrote can become markup.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else if (name === "value") el.value = value;
    else if (name in el && typeof value !== "string") el[name] = value;
    else el.setAttribute(name, value === true ? "" : value);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function announce(text) {
  replace(document.getElementById("status"), text);
}

export function statusBadge(status) {
  return h("span", { class: `status ${status}`, "data-status": status }, status);
}

export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "—";
}

export function seconds(value) {
  if (value === null || value === undefined) return "—";
  return value < 1 ? `${Math.round(value * 1000)} ms` : `${value.toFixed(value < 10 ? 2 : 1)} s`;
}

export function isoSeconds(duration) {
  // "PT1.25S" → 1.25
  const match = /^PT([\d.]+)S$/.exec(duration || "");
  return match ? Number(match[1]) : null;
}

let fieldCount = 0;
export function uid(prefix) {
  fieldCount += 1;
  return `${prefix}-${fieldCount}`;
}
