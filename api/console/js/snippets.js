// "Copy as": the exact request the playground sent, as curl and as Python (wriftai, openai).

function py(value, indent = 0) {
  // JSON is Python apart from true/false/null.
  return JSON.stringify(value, null, 4)
    .replace(/\btrue\b/g, "True").replace(/\bfalse\b/g, "False").replace(/\bnull\b/g, "None")
    .split("\n").join("\n" + " ".repeat(indent));
}

function shellQuote(text) {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

export function curl(base, body) {
  return [
    `curl -N ${base}/v1/predictions \\`,
    `  -H "Authorization: Bearer $INFERQ_API_KEY" \\`,
    `  -H "Content-Type: application/json" \\`,
    `  -H "Prefer: wait" \\`,
    `  -d ${shellQuote(JSON.stringify(body))}`,
  ].join("\n");
}

export function wriftai(base, body) {
  return [
    "import os",
    "",
    "import wriftai",
    "",
    `client = wriftai.Client(access_token=os.environ["INFERQ_API_KEY"], api_base_url="${base}/v1")`,
    `prediction = client.predictions.create(`,
    `    model="${body.model}",`,
    `    input=${py(body.input, 4)},`,
    `    wait=True,`,
    `)`,
    `print(prediction["status"], prediction["output"])`,
  ].join("\n");
}

const IMAGE_ARGS = ["prompt", "n", "quality", "background", "output_format", "output_compression", "partial_images"];

export function openai(base, body, compatibilities) {
  const head = ["import os", "", "from openai import OpenAI", "", `client = OpenAI(base_url="${base}/v1", api_key=os.environ["INFERQ_API_KEY"])`];
  const input = body.input;
  if (compatibilities.openai_embeddings) {
    const args = [`    model="${body.model}",`, `    input=${py(input.input, 4)},`];
    if (input.dimensions) args.push(`    dimensions=${input.dimensions},`);
    return [...head, "vectors = client.embeddings.create(", ...args, ")", "print(len(vectors.data[0].embedding))"].join("\n");
  }
  if (compatibilities.openai_images_generations) {
    const args = [`    model="${body.model}",`];
    for (const name of IMAGE_ARGS) if (name in input) args.push(`    ${name}=${py(input[name], 4)},`);
    if (input.width && input.height) args.push(`    size="${input.width}x${input.height}",`);
    return [...head, "image = client.images.generate(", ...args, ")", "print(image.data[0].b64_json[:40])"].join("\n");
  }
  return "# This model has no OpenAI-compatible endpoint: use curl or wriftai.";
}
