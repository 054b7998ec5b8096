// Scores texts with the JS library under Node (onnxruntime-web, WASM):
//   node web/test/parity.mjs BUNDLE_DIR TEXTS.json OUT.json [GRAPH] [OPTIONS_JSON]
// GRAPH: "model" (default: the JS tokenizer feeds model.onnx) or "text" (model_text.onnx tokenizes).
// TEXTS.json is a JSON list of strings; OUT.json gets [{probability, label, tokens, attention, token_count,
// oov_share, truncated_tokens, status}, ...]; OPTIONS_JSON is classify's options, e.g. '{"force": true}', and
// "raw": true for the graph's own probabilities (temperature 1).
import fs from "node:fs";
import path from "node:path";
import { classifierFromBytes, ort } from "../src/index.js";

const [bundle, textsFile, outFile, graph = "model", options = "{}"] = process.argv.slice(2);
ort.env.wasm.numThreads = 1;
const manifest = JSON.parse(fs.readFileSync(path.join(bundle, "manifest.json"), "utf8"));
const bytes = fs.readFileSync(path.join(bundle, manifest.graphs[graph].file));
const model = await classifierFromBytes(manifest, bytes, { where: bundle, graph });
const texts = JSON.parse(fs.readFileSync(textsFile, "utf8"));
const started = performance.now();
const classifyOptions = JSON.parse(options);
if (classifyOptions.raw) model.temperature = 1; // "raw": the graph's own probabilities, no calibration
const results = await model.classify(texts, classifyOptions);
console.error(`scored ${texts.length} texts in ${(performance.now() - started).toFixed(0)} ms`);
fs.writeFileSync(outFile, JSON.stringify(results));
