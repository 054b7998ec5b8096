// attn-onnx in the browser: load a sentiment bundle (manifest.json + model.onnx) from a URL and
// classify texts with onnxruntime-web (WASM), with each token's attention weight.
//
//   import { loadBundle } from "./src/index.js";
//   const model = await loadBundle("../../artifacts/imdb-bilstm-attention-int8/");
//   const [result] = await model.classify(["A wonderful, moving film."]);
//   // {probability: 0.98, label: "positive", tokens: ["a", "wonderful", ...], attention: [0.05, 0.41, ...]}
//
// In a page, map the bare specifier "onnxruntime-web" with an import map (see demo/index.html).

import * as ort from "onnxruntime-web";
import { Tokenizer } from "./tokenizer.js";

export { ort, Tokenizer };
export { pythonLower } from "./tokenizer.js";

export const BUNDLE_FORMAT = "attn-bundle/1";
export const DEFAULT_BATCH_TOKENS = 4096; // as runtime/classifier.py: rows sorted by length, batches padded to their own longest

async function sha256Hex(bytes) {
  const digest = await globalThis.crypto.subtle.digest("SHA-256", bytes);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Row indices sorted by length, cut so that rows x (longest row in the batch) <= batchTokens
 * (runtime.classifier.token_budget_batches). */
export function tokenBudgetBatches(lengths, batchTokens = DEFAULT_BATCH_TOKENS) {
  const order = Array.from(lengths.keys()).sort((a, b) => lengths[a] - lengths[b]);
  const batches = [];
  let start = 0;
  while (start < order.length) {
    let stop = start + 1;
    while (stop < order.length && (stop + 1 - start) * Math.max(lengths[order[stop]], 1) <= batchTokens) stop++;
    batches.push(order.slice(start, stop));
    start = stop;
  }
  return batches;
}

export class Classifier {
  constructor(manifest, session, { batchTokens = DEFAULT_BATCH_TOKENS } = {}) {
    this.manifest = manifest;
    this.session = session;
    this.tokenizer = new Tokenizer(manifest.tokenizer);
    this.labels = manifest.labels;
    this.precision = manifest.precision;
    this.batchTokens = batchTokens;
    this._queue = Promise.resolve(); // onnxruntime-web runs one call per session at a time
  }

  /** Probability of the second label, the label, and each token's attention weight, per text. */
  classify(texts, { threshold = 0.5 } = {}) {
    const run = this._queue.then(() => this._classify(Array.from(texts), threshold));
    this._queue = run.catch(() => {});
    return run;
  }

  async _classify(texts, threshold) {
    const rows = texts.map((text) => this.tokenizer.tokenize(text));
    const lengths = rows.map((tokens) => tokens.length);
    const results = new Array(texts.length);
    for (const batch of tokenBudgetBatches(lengths, this.batchTokens)) {
      const width = Math.max(lengths[batch[batch.length - 1]], 1);
      const ids = new Int32Array(batch.length * width);
      batch.forEach((row, i) => ids.set(rows[row].map((token) => this.tokenizer.idOf(token)), i * width));
      const output = await this.session.run({ tokens: new ort.Tensor("int32", ids, [batch.length, width]) });
      const probability = output.probability.data;
      const attention = output.attention.data;
      batch.forEach((row, i) => {
        const p = probability[i];
        results[row] = {
          probability: p,
          label: this.labels[p >= threshold ? 1 : 0],
          tokens: rows[row].map(Tokenizer.readable),
          attention: Array.from(attention.subarray(i * width, i * width + lengths[row])),
        };
      });
      output.probability.dispose?.();
      output.attention.dispose?.();
    }
    return results;
  }
}

function checkManifest(manifest, where) {
  if (!manifest || manifest.format !== BUNDLE_FORMAT) {
    throw new Error(`${where}: not an attn-onnx bundle (format ${JSON.stringify(manifest && manifest.format)})`);
  }
  if (manifest.task !== "sentiment") {
    throw new Error(`${where}: task is ${JSON.stringify(manifest.task)}; the browser library runs 'sentiment' bundles`);
  }
}

/** A Classifier from a parsed manifest and the model graph's bytes (checked against the manifest's sha256). */
export async function classifierFromBytes(manifest, modelBytes, { where = "bundle", sessionOptions = {}, ...options } = {}) {
  checkManifest(manifest, where);
  const graph = manifest.graphs.model;
  const actual = await sha256Hex(modelBytes);
  if (actual !== graph.sha256) {
    throw new Error(`${where}: ${graph.file} is corrupt or was changed (sha256 ${actual}, manifest says ${graph.sha256})`);
  }
  new Tokenizer(manifest.tokenizer); // an unsupported tokenizer fails here, before the session is built
  const session = await ort.InferenceSession.create(new Uint8Array(modelBytes), {
    executionProviders: ["wasm"], graphOptimizationLevel: "all", ...sessionOptions,
  });
  return new Classifier(manifest, session, options);
}

/** Loads the bundle folder at `url` (manifest.json + its model graph) and returns a Classifier. */
export async function loadBundle(url, options = {}) {
  const base = new URL(String(url).endsWith("/") ? String(url) : `${url}/`, globalThis.location?.href);
  const get = async (name) => {
    const response = await fetch(new URL(name, base));
    if (!response.ok) throw new Error(`${new URL(name, base)}: HTTP ${response.status}`);
    return response;
  };
  const manifest = await (await get("manifest.json")).json();
  checkManifest(manifest, base.href);
  const bytes = await (await get(manifest.graphs.model.file)).arrayBuffer();
  return classifierFromBytes(manifest, bytes, { where: base.href, ...options });
}
