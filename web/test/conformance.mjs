// Conformance: the JS tokenizer must give every corpus row exactly the ids the Python tokenizer gave.
//   node web/test/conformance.mjs CORPUS.jsonl
// The corpus (tests/web_corpus.py) is the definition. Stops at the first mismatch, printing the text.
import fs from "node:fs";
import readline from "node:readline";
import { Tokenizer } from "../src/tokenizer.js";

const show = (text) => JSON.stringify(text.length > 300 ? `${text.slice(0, 300)}... (${text.length} chars)` : text);

function firstDifference(a, b) {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

const lines = readline.createInterface({ input: fs.createReadStream(process.argv[2], { encoding: "utf8" }), crlfDelay: Infinity });
let tokenizers = null;
let rows = 0;
for await (const line of lines) {
  if (tokenizers === null) {
    tokenizers = JSON.parse(line).tokenizers.map((data) => new Tokenizer(data));
    continue;
  }
  const row = JSON.parse(line);
  const tokenizer = tokenizers[row.tokenizer];
  const tokens = tokenizer.tokenize(row.text);
  const ids = tokens.map((token) => tokenizer.idOf(token));
  const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
  if (!same(ids, row.ids) || !same(tokens, row.tokens)) {
    const at = firstDifference(tokens, row.tokens);
    console.error(`MISMATCH in row ${rows + 1} (${row.name}, tokenizer ${row.tokenizer} ${JSON.stringify(tokenizer.spec)}):`);
    console.error(`  text: ${show(row.text)}`);
    console.error(`  first differing token #${at}: python ${JSON.stringify(row.tokens.slice(at, at + 5))} js ${JSON.stringify(tokens.slice(at, at + 5))}`);
    console.error(`  python: ${row.tokens.length} tokens, js: ${tokens.length} tokens`);
    process.exit(1);
  }
  rows++;
}
console.log(JSON.stringify({ rows }));
