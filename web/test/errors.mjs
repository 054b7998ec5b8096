// Refusals of the JS library, each one clear message:  node web/test/errors.mjs
// A tampered graph (sha256), a sentencepiece (Korean) bundle, a translator bundle, a stray tokenizer field.
import assert from "node:assert/strict";
import fs from "node:fs";
import { classifierFromBytes } from "../src/index.js";

const read = (bundle) => JSON.parse(fs.readFileSync(`artifacts/${bundle}/manifest.json`, "utf8"));
const refuses = async (manifest, bytes, pattern) => {
  await assert.rejects(classifierFromBytes(manifest, bytes, { where: "B" }), (error) => {
    assert.match(error.message, pattern);
    return true;
  });
};

const manifest = read("imdb-bilstm-attention-int8");
const bytes = fs.readFileSync("artifacts/imdb-bilstm-attention-int8/model.onnx");
bytes[bytes.length - 10] ^= 1;
await refuses(manifest, bytes, /^B: model\.onnx is corrupt or was changed \(sha256 [0-9a-f]{64}, manifest says/);

const korean = read("nsmc-bilstm-attention");
korean.graphs.model.sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"; // sha256 of no bytes
await refuses(korean, new Uint8Array(0), /sentencepiece tokenizers \(the Korean bundle\) are not supported in the browser/);

await refuses(read("spa-eng-attention"), new Uint8Array(0), /^B: task is "translation"; the browser library runs 'sentiment' bundles/);
await refuses({ format: "something" }, new Uint8Array(0), /^B: not an attn-onnx bundle/);

// a spec option beside "spec" in the tokenizer is refused, not ignored (Python's Tokenizer.from_dict does the same)
const stray = read("imdb-bilstm-attention-int8");
stray.tokenizer.negation_as_not = true;
await refuses(stray, fs.readFileSync("artifacts/imdb-bilstm-attention-int8/model.onnx"),
  /tokenizer has unknown field\(s\) negation_as_not/);
console.log("ok");
