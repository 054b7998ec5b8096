// Scores a file of lines with a bundle's text graph in onnxruntime-node: no tokenizer code, the
// graph takes the raw strings (model_text.onnx, see docs/text-graph.md).
//   npm ci --ignore-scripts          # once, in examples/node
//   node score.js BUNDLE_DIR TEXTS.txt   -> one JSON line per input line: probability, label, top tokens
import fs from "node:fs";
import path from "node:path";
import ort from "onnxruntime-node";
import { applyTemperature, temperatureOf } from "../../web/src/screening.js";

const [bundle, input, batchSize = "32"] = process.argv.slice(2);
if (!bundle || !input) {
  console.error("usage: node score.js BUNDLE_DIR TEXTS.txt [BATCH]");
  process.exit(2);
}
const manifest = JSON.parse(fs.readFileSync(path.join(bundle, "manifest.json"), "utf8"));
if (!manifest.graphs?.text) {
  console.error(`${bundle}: the bundle has no text graph (attn-export text-graph ${bundle} adds one)`);
  process.exit(1);
}
const session = await ort.InferenceSession.create(path.join(bundle, manifest.graphs.text.file));
const lines = fs.readFileSync(input, "utf8").split("\n");
if (lines.at(-1) === "") lines.pop(); // the final newline ends the last line
for (let start = 0; start < lines.length; start += Number(batchSize)) {
  const batch = lines.slice(start, start + Number(batchSize));
  const out = await session.run({ text: new ort.Tensor("string", batch, [batch.length]) });
  const width = out.attention.dims[1];
  batch.forEach((_, i) => {
    const n = out.lengths.data[i];
    const tokens = out.tokens.data.slice(i * width, i * width + n);
    const weights = Array.from(out.attention.data.subarray(i * width, i * width + n));
    const top = weights.map((w, j) => [tokens[j], w]).sort((a, b) => b[1] - a[1]).slice(0, 3);
    const p = applyTemperature(out.probability.data[i], temperatureOf(manifest)); // the manifest's calibration
    console.log(JSON.stringify({ line: start + i + 1, probability: p, label: manifest.labels[p >= 0.5 ? 1 : 0], top }));
  });
}
