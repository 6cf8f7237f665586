// A prediction's output as a person wants to see it: images, text, embeddings' sizes, or JSON.

import { h } from "./dom.js";

const MEDIA = { png: "image/png", jpeg: "image/jpeg", jpg: "image/jpeg", webp: "image/webp" };

export function imageUrl(b64, format) {
  return `data:${MEDIA[format] || "image/png"};base64,${b64}`;
}

function gallery(images, format, id) {
  return h(
    "div",
    { class: "gallery", "data-testid": "gallery" },
    images.map((image, index) => {
      const url = imageUrl(image.b64_json, format);
      const name = `${id || "image"}-${index}.${format || "png"}`;
      return h(
        "figure",
        {},
        h("img", { src: url, alt: image.revised_prompt || `Image ${index + 1}`, "data-testid": "output-image" }),
        h("figcaption", {}, h("a", { href: url, download: name }, `Download ${name}`)),
      );
    }),
  );
}

function decodeVector(b64) {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return new Float32Array(bytes.buffer, 0, bytes.length / 4);
}

function embeddings(output) {
  const rows = output.data.map((item, index) => {
    const vector = typeof item === "string" ? decodeVector(item) : Float32Array.from(item);
    const norm = Math.sqrt(vector.reduce((sum, x) => sum + x * x, 0));
    const head = Array.from(vector.slice(0, 4), (x) => x.toFixed(4)).join(", ");
    return h("tr", {}, h("td", {}, index), h("td", {}, vector.length), h("td", {}, norm.toFixed(4)), h("td", { class: "wide" }, `[${head}, …]`));
  });
  return h(
    "div",
    { "data-testid": "embeddings" },
    h("p", {}, `${output.data.length} vector(s) of ${output.dimensions} dimensions; ${output.prompt_tokens} prompt tokens.`),
    h("div", { class: "table-wrap" },
      h("table", {},
        h("thead", {}, h("tr", {}, h("th", {}, "#"), h("th", {}, "dimensions"), h("th", {}, "L2 norm"), h("th", { class: "wide" }, "first values"))),
        h("tbody", {}, rows))),
  );
}

export function renderOutput(output, prediction) {
  if (output === null || output === undefined) return h("p", {}, "No output.");
  if (typeof output === "string") return h("pre", { "data-testid": "output-text" }, output);
  if (Array.isArray(output) && output.every((x) => typeof x === "string")) {
    return h("pre", { "data-testid": "output-text" }, output.join(""));
  }
  if (Array.isArray(output.images) && output.images.every((x) => x && x.b64_json)) {
    return h("div", {}, gallery(output.images, output.output_format, prediction?.id), json(omitImages(output)));
  }
  if (Array.isArray(output.data) && "dimensions" in output) return embeddings(output);
  return json(output);
}

function omitImages(output) {
  const { images, ...rest } = output;
  return { ...rest, images: `${images.length} image(s), shown above` };
}

export function json(value) {
  return h("pre", { "data-testid": "output-json" }, JSON.stringify(value, null, 2));
}
