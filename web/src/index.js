// attn-onnx in the browser: load a sentiment bundle (manifest.json + model.onnx) from a URL and
// classify texts with onnxruntime-web (WASM), with each token's attention weight.
// A bundle with a text graph (manifest graphs.text, model_text.onnx) is scored with it: the graph
// tokenizes the raw strings itself (trainer/text_graph.py); the JS tokenizer is then not used. It
// remains the fallback for bundles without one (e.g. join_clitics specs, or split_negation with punctuation keep).
//
//   import { loadBundle } from "./src/index.js";
//   const model = await loadBundle("../../artifacts/imdb-bilstm-attention-int8/");
//   const [result] = await model.classify(["A wonderful, moving film."]);
//   // {probability: 0.98, label: "positive", tokens: ["a", "wonderful", ...], attention: [0.05, 0.41, ...],
//   //  token_count: 4, oov_share: 0, truncated_tokens: 0, status: "ok"}
//
// In a page, map the bare specifier "onnxruntime-web" with an import map (see demo/index.html).

import * as ort from "onnxruntime-web";
import { Screen, applyTemperature, temperatureOf, verdict } from "./screening.js";
import { Tokenizer } from "./tokenizer.js";

export { ort, Tokenizer };
export { pythonLower } from "./tokenizer.js";
export { STATUSES, Screen, applyTemperature } from "./screening.js";

export const BUNDLE_FORMAT = "attn-bundle/1";
export const DEFAULT_BATCH_TOKENS = 4096; // as runtime/models/classifier.py: rows sorted by length, batches padded to their own longest

async function sha256Hex(bytes) {
  const digest = await globalThis.crypto.subtle.digest("SHA-256", bytes);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Row indices sorted by length, cut so that rows x (longest row in the batch) <= batchTokens
 * (runtime.models.classifier.token_budget_batches). */
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

const CHARS_PER_TOKEN = 6; // text graph batches: rows sorted by characters, about this many per token

export class Classifier {
  /** `graph`: "text" when `session` is the bundle's text graph (raw strings in), "model" for token ids. */
  constructor(manifest, session, { batchTokens = DEFAULT_BATCH_TOKENS, graph = "model" } = {}) {
    this.manifest = manifest;
    this.session = session;
    this.graph = graph;
    this.tokenizer = graph === "text" ? null : new Tokenizer(manifest.tokenizer);
    this.labels = manifest.labels;
    this.precision = manifest.precision;
    this.batchTokens = batchTokens;
    this.temperature = temperatureOf(manifest); // calibration, applied to every probability
    this.counter = this.tokenizer ?? new Tokenizer(manifest.tokenizer); // counts tokens for the screen in both modes
    this.screen = Screen.fromManifest(manifest, this.counter.vocab); // each row's status
    this._queue = Promise.resolve(); // onnxruntime-web runs one call per session at a time
  }

  /** Per text: probability of the second label (calibrated; null unless the status is ok, or `force`),
   * the label ("unknown" likewise), each token's attention weight, and the diagnostics token_count,
   * oov_share, truncated_tokens, status (the fields of attn-score's JSONL rows). */
  classify(texts, { threshold = 0.5, force = false } = {}) {
    if (typeof threshold !== "number" || !(threshold >= 0 && threshold <= 1)) { // NaN fails too, as in Python
      return Promise.reject(new RangeError(`threshold must be a probability from 0 to 1, got ${String(threshold)}`));
    }
    const run = this._queue.then(() => this._classify(Array.from(texts), threshold, force));
    this._queue = run.catch(() => {});
    return run;
  }

  result(p, threshold, force, tokens, attention, diagnostics) {
    return { ...verdict(applyTemperature(p, this.temperature), diagnostics, this.labels, threshold, force), tokens,
      attention: Array.from(attention), ...diagnostics };
  }

  /** One row's diagnostics, counted by the JS tokenizer (the text graph reads the same tokens). */
  screenRow(text) {
    const { tokens, total } = this.counter.tokenizeCounted(text);
    return this.screen.check(text, Int32Array.from(tokens, (token) => this.counter.idOf(token)), total);
  }

  async _classifyText(texts, threshold, force) {
    const results = new Array(texts.length);
    const sizes = texts.map((text) => Math.ceil(text.length / CHARS_PER_TOKEN));
    for (const batch of tokenBudgetBatches(sizes, this.batchTokens)) {
      const text = new ort.Tensor("string", batch.map((row) => texts[row]), [batch.length]);
      const output = await this.session.run({ text });
      const width = output.attention.dims[1];
      batch.forEach((row, i) => {
        const length = output.lengths.data[i];
        const tokens = output.tokens.data.slice(i * width, i * width + length);
        results[row] = this.result(output.probability.data[i], threshold, force, tokens,
          output.attention.data.subarray(i * width, i * width + length), this.screenRow(texts[row]));
      });
      for (const tensor of Object.values(output)) tensor.dispose?.();
    }
    return results;
  }

  async _classify(texts, threshold, force) {
    if (this.graph === "text") return this._classifyText(texts, threshold, force);
    const counted = texts.map((text) => this.tokenizer.tokenizeCounted(text));
    const rows = counted.map((row) => row.tokens);
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
        const diagnostics = this.screen.check(texts[row], ids.subarray(i * width, i * width + lengths[row]),
          counted[row].total);
        results[row] = this.result(probability[i], threshold, force, rows[row].map(Tokenizer.readable),
          attention.subarray(i * width, i * width + lengths[row]), diagnostics);
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
  const graphs = manifest.graphs;
  const model = graphs && graphs.model;
  if (!model || typeof model.file !== "string" || typeof model.sha256 !== "string") {
    throw new Error(`${where}: the manifest has no graphs.model with a file and a sha256 (re-export the bundle)`);
  }
  for (const [role, graph] of Object.entries(graphs)) {
    if (!graph || typeof graph.file !== "string" || typeof graph.sha256 !== "string") {
      throw new Error(`${where}: graphs.${role} needs a file and a sha256 (re-export the bundle)`);
    }
    checkGraphFile(graph.file, where, role);
  }
  const labels = manifest.labels;
  if (!Array.isArray(labels) || labels.length !== 2 || !labels.every((label) => typeof label === "string" && label)) {
    throw new Error(`${where}: a sentiment bundle needs 2 label names, found ${JSON.stringify(labels)}`);
  }
}

/** A graph file is a relative name inside the bundle folder, as runtime/bundle.py requires: no scheme or
 * host (another origin), no absolute path, no '..' segment; and none of \ % ? # NUL, which URL parsing
 * would turn into one of those. */
function checkGraphFile(file, where, role) {
  const escapes = !file || /^[a-z][a-z0-9+.-]*:/i.test(file) || file.startsWith("/") || /[\\%?#\0]/.test(file)
    || file.split("/").includes("..");
  if (escapes) {
    throw new Error(`${where}: graphs.${role}.file ${JSON.stringify(file)} must be a file name inside the bundle folder`);
  }
}

/** The graph role a bundle is scored with: its text graph where it has one, else the token graph. */
export function preferredGraph(manifest) {
  return manifest.graphs && manifest.graphs.text ? "text" : "model";
}

/** A Classifier from a parsed manifest and the bytes of its graph `graph` ("model": token ids,
 * "text": raw strings), checked against the manifest's sha256. */
export async function classifierFromBytes(manifest, modelBytes,
  { where = "bundle", sessionOptions = {}, graph: role = "model", ...options } = {}) {
  checkManifest(manifest, where);
  const graph = manifest.graphs[role];
  if (!graph) throw new Error(`${where}: the manifest declares no ${JSON.stringify(role)} graph`);
  const actual = await sha256Hex(modelBytes);
  if (actual !== graph.sha256) {
    throw new Error(`${where}: ${graph.file} is corrupt or was changed (sha256 ${actual}, manifest says ${graph.sha256})`);
  }
  if (role !== "text") new Tokenizer(manifest.tokenizer); // an unsupported tokenizer fails here, before the session
  const session = await ort.InferenceSession.create(new Uint8Array(modelBytes), {
    executionProviders: ["wasm"], graphOptimizationLevel: "all", ...sessionOptions,
  });
  return new Classifier(manifest, session, { ...options, graph: role });
}

/** Loads the bundle folder at `url` (manifest.json + its text graph, else its model graph) and returns a Classifier;
 * options.graph = "model" forces the token graph and the JS tokenizer. */
export async function loadBundle(url, options = {}) {
  const base = new URL(String(url).endsWith("/") ? String(url) : `${url}/`, globalThis.location?.href);
  const get = async (name) => {
    const response = await fetch(new URL(name, base));
    if (!response.ok) throw new Error(`${new URL(name, base)}: HTTP ${response.status}`);
    return response;
  };
  const text = await (await get("manifest.json")).text();
  let manifest;
  try {
    manifest = JSON.parse(text);
  } catch (error) {
    throw new Error(`${new URL("manifest.json", base)}: not valid JSON (${error.message})`);
  }
  checkManifest(manifest, base.href);
  const graph = options.graph ?? preferredGraph(manifest);
  if (!manifest.graphs[graph]) throw new Error(`${base.href}: the manifest declares no ${JSON.stringify(graph)} graph`);
  const graphUrl = new URL(manifest.graphs[graph].file, base);
  if (graphUrl.origin !== base.origin || !graphUrl.pathname.startsWith(base.pathname)) { // never reached: checkGraphFile
    throw new Error(`${base.href}: graphs.${graph}.file resolves to ${graphUrl}, outside the bundle folder`);
  }
  const bytes = await (await get(manifest.graphs[graph].file)).arrayBuffer();
  return classifierFromBytes(manifest, bytes, { where: base.href, ...options, graph });
}
