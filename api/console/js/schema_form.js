// A form generated from a model version's input JSON Schema, and the input read back from it.

import { h, uid } from "./dom.js";

function typeOf(schema) {
  if (schema.enum) return "enum";
  const types = Array.isArray(schema.type) ? schema.type.filter((t) => t !== "null") : [schema.type];
  if (types.length === 1 && types[0]) return types[0];
  if (schema.anyOf || schema.oneOf) {
    const first = (schema.anyOf || schema.oneOf).find((s) => s.type === "array");
    if (first && first.items?.type === "string") return "lines";
  }
  return "json";
}

function control(name, schema, id, required) {
  const kind = typeOf(schema);
  const common = { id, name, required: required && schema.default === undefined };
  if (kind === "enum") {
    const options = schema.enum.map((v) => h("option", { value: JSON.stringify(v), selected: v === schema.default }, String(v)));
    return [kind, h("select", common, required ? null : h("option", { value: "" }, "(default)"), options)];
  }
  if (kind === "integer" || kind === "number") {
    return [kind, h("input", {
      ...common, type: "number", min: schema.minimum ?? schema.exclusiveMinimum, max: schema.maximum ?? schema.exclusiveMaximum,
      step: schema.multipleOf || (kind === "integer" ? 1 : "any"), value: schema.default ?? "",
    })];
  }
  if (kind === "boolean") return [kind, h("input", { id, name, type: "checkbox", checked: schema.default === true })];
  if (kind === "string" && (schema.contentEncoding === "base64" || schema.format === "data-url")) {
    return ["file", h("input", { ...common, type: "file" })];
  }
  if (kind === "string") {
    const long = /prompt|text|message/.test(name) || (schema.maxLength ?? 1000) > 200;
    return [kind, h(long ? "textarea" : "input", { ...common, value: schema.default ?? "", minlength: schema.minLength, maxlength: schema.maxLength })];
  }
  if ((kind === "array" && schema.items?.type === "string") || kind === "lines") {
    return ["lines", h("textarea", { ...common, rows: 3 })];
  }
  return ["json", h("textarea", { ...common, rows: 3, value: schema.default === undefined ? "" : JSON.stringify(schema.default) })];
}

function describe(schema, kind) {
  const parts = [];
  if (schema.description) parts.push(schema.description);
  if (schema.minimum !== undefined || schema.maximum !== undefined) parts.push(`range ${schema.minimum ?? "…"}–${schema.maximum ?? "…"}`);
  if (schema.default !== undefined && schema.default !== null) parts.push(`default ${JSON.stringify(schema.default)}`);
  if (kind === "lines") parts.push("one item per line");
  if (kind === "json") parts.push("JSON");
  return parts.join(" · ");
}

// Builds the fields into `container`; returns a function that reads the input (a promise).
export function buildForm(container, schema) {
  const required = new Set(schema.required || []);
  const readers = [];
  for (const [name, property] of Object.entries(schema.properties || {})) {
    const id = uid(`in-${name}`);
    const [kind, input] = control(name, property, id, required.has(name));
    const hint = describe(property, kind);
    const hintId = hint ? `${id}-hint` : null;
    if (hintId) input.setAttribute("aria-describedby", hintId);
    const label = h("label", { for: id }, name, required.has(name) ? " *" : "");
    const field = kind === "boolean"
      ? h("div", { class: "field" }, h("div", { class: "row" }, input, label), hintId ? h("p", { class: "hint", id: hintId }, hint) : null)
      : h("div", { class: "field" }, label, input, hintId ? h("p", { class: "hint", id: hintId }, hint) : null);
    container.append(field);
    readers.push(async (input_) => {
      const value = await read(kind, input);
      if (value !== undefined) input_[name] = value;
    });
  }
  return async () => {
    const input = {};
    for (const reader of readers) await reader(input);
    return input;
  };
}

async function read(kind, el) {
  if (kind === "boolean") return el.checked;
  if (kind === "file") {
    const file = el.files[0];
    if (!file) return undefined;
    const url = await new Promise((resolve) => { const r = new FileReader(); r.onload = () => resolve(r.result); r.readAsDataURL(file); });
    return url.slice(url.indexOf(",") + 1);
  }
  const text = el.value;
  if (text === "") return undefined;
  if (kind === "enum") return JSON.parse(text);
  if (kind === "integer" || kind === "number") return Number(text);
  if (kind === "lines") return text.split("\n").map((s) => s.trim()).filter(Boolean);
  if (kind === "json") {
    try {
      return JSON.parse(text);
    } catch {
      throw new Error(`${el.name}: not valid JSON`);
    }
  }
  return text;
}
