// loadBundle against hostile bundles served over HTTP:  node web/test/loader.mjs BASE_URL OTHER_ORIGIN_URL
// BASE_URL serves good/ (a real bundle) and one folder per broken manifest (tests/test_web.py builds them).
// Each must be refused with one message naming the URL; nothing may be fetched from OTHER_ORIGIN_URL.
import assert from "node:assert/strict";
import { loadBundle } from "../src/index.js";

const [base, other] = process.argv.slice(2);
const refuses = async (name, pattern) => {
  await assert.rejects(loadBundle(`${base}${name}/`), (error) => {
    assert.match(error.message, pattern, `${name}: ${error.message}`);
    assert.ok(error.message.startsWith(`${base}${name}/`), `${name}: the message does not name the URL: ${error.message}`);
    return true;
  }, `${name} was loaded`);
};
const inside = /: graphs\.model\.file ".*" must be a file name inside the bundle folder$/;

await refuses("dotdot", inside);
await refuses("encoded-dotdot", inside);
await refuses("absolute-path", inside);
await refuses("other-origin", inside);
await refuses("backslash", inside);
await refuses("no-graphs", /: the manifest has no graphs\.model with a file and a sha256/);
await refuses("bad-json", /manifest\.json: not valid JSON \(/);
await refuses("no-labels", /: a sentiment bundle needs 2 label names, found undefined$/);

const model = await loadBundle(`${base}good/`);
for (const threshold of [NaN, 2, -0.5, "0.5"]) {
  await assert.rejects(model.classify(["a good film"], { threshold }), /threshold must be a probability from 0 to 1/);
}
const [result] = await model.classify(["a good film"], { threshold: 0 });
assert.ok(typeof result.label === "string", "a valid threshold scores");
console.log(JSON.stringify({ ok: true, other }));
