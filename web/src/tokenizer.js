// The Python tokenizer (runtime/tokenizer.py, word mode) in JavaScript, for bundles served in the browser.
//
// Python is the one definition: this file reproduces it and the conformance corpus
// (tests/test_web.py: 25,000 IMDB test reviews + a hand-written adversarial set) proves that every
// row gets the same ids. Python's str.lower(), `\w` and `\s` come from web/src/unicode-tables.js,
// generated from Python's own unicodedata (web/tools/unicode_tables.py), never from the JS engine.

import { CASED, CASE_IGNORABLE, LOWER, SPACE, WORD } from "./unicode-tables.js";

export const FORMAT = "attn-tokenizer/1";
const TOKENIZER_FIELDS = ["format", "spec", "vocab", "sentencepiece_model"];
export const PAD_ID = 0;
export const OOV_ID = 1;
const WORD_START = "\u2581";
const SPEC_DEFAULTS = {
  max_len: 500, mode: "word", lowercase: true, html_breaks: true, punctuation: "strip", truncation: "pre", pad_id: 0, oov_id: 1,
  join_clitics: false, split_negation: false, lowercase_mapping: "full", negation_as_not: false,
};
const LOWERCASE_MAPPINGS = ["full", "simple"];

function inRanges(ranges, cp) {
  let lo = 0;
  let hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (cp < ranges[mid][0]) hi = mid - 1;
    else if (cp > ranges[mid][1]) lo = mid + 1;
    else return true;
  }
  return false;
}

function classBody(ranges) {
  const hex = (cp) => `\\u{${cp.toString(16)}}`;
  return ranges.map(([a, b]) => (a === b ? hex(a) : `${hex(a)}-${hex(b)}`)).join("");
}

const W = classBody(WORD);
const S = classBody(SPACE);
const WORD_PATTERN = `[${W}]+(?:'[${W}]+)*`;
const PATTERNS = {
  strip: new RegExp(WORD_PATTERN, "gu"),
  keep: new RegExp(`${WORD_PATTERN}|[^${W}${S}]`, "gu"),
};
const HTML_BREAK = new RegExp(`<br[${S}]*/?>`, "giu");
const ASCII = /^[\x00-\x7f]*$/;
// join_clitics (as runtime/tokenizer.py): curly apostrophes become straight, treebank clitics rejoin
// ("does n't" -> "doesn't"), treebank brackets become brackets ("-lrb-" -> "("). Python's IGNORECASE
// matches "\u017f" (long s) for "s" in the clitics, as JS's "iu" does; the brackets match ASCII case only
// (a long s there makes Python's lookup fail: noted in the README).
const CURLY_APOSTROPHE = /[\u2019\u2018\u02bc]/gu;
const DETACHED_CLITIC = new RegExp(`(?<=[${W}])[${S}]+(n't|'s|'re|'ve|'m|'ll|'d)(?![${W}])`, "giu");
const PTB_BRACKETS = { "-lrb-": "(", "-rrb-": ")", "-lsb-": "[", "-rsb-": "]", "-lcb-": "{", "-rcb-": "}" };
const PTB_BRACKET = /-lrb-|-rrb-|-lsb-|-rsb-|-lcb-|-rcb-/gi;
// split_negation (as runtime/tokenizer.py): "n't" leaves its word ("doesn't" -> "does n't ", "can't" ->
// "ca n't "), curly apostrophe or straight, when a word character, a space or the start precedes it.
// No "i" flag: JS case-insensitivity also folds the classes around "n't" by the engine's Unicode version.
const NEGATION = new RegExp(`(?<![^${W}${S}])([nN])['\u2019\u2018\u02bc]([tT])(?![${W}])`, "gu");

// Python's str.lower() of a capital sigma (U+03A3): final sigma when a cased letter precedes it and
// none follows (case-ignorable characters skipped on both sides), as CPython's handle_capital_sigma.
function isFinalSigma(cps, i) {
  let j = i - 1;
  while (j >= 0 && inRanges(CASE_IGNORABLE, cps[j])) j--;
  if (j < 0 || !inRanges(CASED, cps[j])) return false;
  j = i + 1;
  while (j < cps.length && inRanges(CASE_IGNORABLE, cps[j])) j++;
  return j === cps.length || !inRanges(CASED, cps[j]);
}

/** lowercase_mapping "simple" (runtime/tokenizer.py): one code point to one, as ONNX Runtime's
 * StringNormalizer; str.lower() after mapping the only two code points where the full mapping differs. */
export function simpleLower(text) {
  return pythonLower(text.replace(/\u0130/g, "i").replace(/\u03a3/g, "\u03c3"));
}

/** Python's `text.lower()`. */
export function pythonLower(text) {
  if (ASCII.test(text)) return text.toLowerCase();
  const cps = Array.from(text, (ch) => ch.codePointAt(0));
  let out = "";
  for (let i = 0; i < cps.length; i++) {
    const cp = cps[i];
    if (cp === 0x3a3) out += isFinalSigma(cps, i) ? "\u03c2" : "\u03c3";
    else out += LOWER.get(cp) ?? String.fromCodePoint(cp);
  }
  return out;
}

const WORD_CHARACTER = new RegExp(`[${W}]`, "u");

/** Whether `text` holds a word character (Python's `\w`, as the tokenizer's words are made of). */
export function hasWordCharacter(text) {
  return WORD_CHARACTER.test(text);
}

export class Tokenizer {
  /** From the JSON a bundle's manifest carries under "tokenizer" (format attn-tokenizer/1). */
  constructor(data) {
    if (!data || typeof data !== "object" || data.format !== FORMAT) {
      throw new Error(`not a tokenizer: expected format ${JSON.stringify(FORMAT)}, found ${JSON.stringify(data && data.format)}`);
    }
    // a field beside "spec" (a spec option put at the top level, say) is refused, as in Python, never ignored
    const stray = Object.keys(data).filter((key) => !TOKENIZER_FIELDS.includes(key));
    if (stray.length) throw new Error(`tokenizer has unknown field(s) ${stray.join(", ")}`);
    const unknown = Object.keys(data.spec || {}).filter((key) => !(key in SPEC_DEFAULTS));
    if (unknown.length) throw new Error(`tokenizer spec has unknown field(s) ${unknown.join(", ")}`);
    this.spec = { ...SPEC_DEFAULTS, ...data.spec };
    if (this.spec.mode === "sentencepiece") {
      throw new Error("sentencepiece tokenizers (the Korean bundle) are not supported in the browser: no maintained "
        + "JS SentencePiece build reproduces the Python ids exactly (see docs/browser.md)");
    }
    if (this.spec.mode !== "word") throw new Error(`unknown tokenizer mode ${JSON.stringify(this.spec.mode)}`);
    if (!(this.spec.punctuation in PATTERNS)) throw new Error(`unknown punctuation ${JSON.stringify(this.spec.punctuation)}`);
    if (!["pre", "post"].includes(this.spec.truncation)) throw new Error(`unknown truncation ${JSON.stringify(this.spec.truncation)}`);
    if (!LOWERCASE_MAPPINGS.includes(this.spec.lowercase_mapping)) {
      throw new Error(`unknown lowercase_mapping ${JSON.stringify(this.spec.lowercase_mapping)}`);
    }
    if (!(this.spec.max_len >= 1)) throw new Error(`tokenizer max_len must be >= 1, got ${this.spec.max_len}`);
    this.vocab = data.vocab; // vocab[i] has id i + 2
    this.index = new Map(this.vocab.map((token, i) => [token, i + 2]));
    if (this.index.size !== this.vocab.length) throw new Error("tokenizer vocabulary holds duplicate tokens");
    if (this.spec.negation_as_not) {
      // as runtime/tokenizer.py: the split-off "n't" is looked up as "not" (OOV where "not" is not in the vocabulary)
      if (!this.spec.split_negation) throw new Error("tokenizer negation_as_not needs split_negation");
      this.index.set("n't", this.index.get("not") ?? OOV_ID);
    }
    this.pattern = PATTERNS[this.spec.punctuation];
  }

  get vocabSize() {
    return this.vocab.length + 2;
  }

  normalize(text) {
    if (typeof text !== "string") throw new TypeError(`tokenizer expects a string, got ${typeof text}`);
    if (this.spec.lowercase) text = this.spec.lowercase_mapping === "simple" ? simpleLower(text) : pythonLower(text);
    if (this.spec.html_breaks) text = text.replace(HTML_BREAK, " ");
    if (this.spec.join_clitics) {
      text = text.replace(CURLY_APOSTROPHE, "'");
      text = text.replace(DETACHED_CLITIC, "$1");
      text = text.replace(PTB_BRACKET, (match) => PTB_BRACKETS[match.toLowerCase()]);
    }
    if (this.spec.split_negation) text = text.replace(NEGATION, " $1'$2 ");
    return text;
  }

  split(text) {
    return Array.from(this.normalize(text).matchAll(this.pattern), (match) => match[0]);
  }

  /** The tokens the model sees, after truncation to max_len. */
  tokenize(text) {
    return this.tokenizeCounted(text).tokens;
  }

  /** {tokens: what the model sees (truncated), total: the token count before truncation}. */
  tokenizeCounted(text) {
    const tokens = this.split(text);
    const max = this.spec.max_len;
    if (tokens.length <= max) return { tokens, total: tokens.length };
    const kept = this.spec.truncation === "pre" ? tokens.slice(tokens.length - max) : tokens.slice(0, max);
    return { tokens: kept, total: tokens.length };
  }

  idOf(token) {
    return this.index.get(token) ?? OOV_ID;
  }

  /** Ids of one text (no padding). */
  encodeOne(text) {
    return Int32Array.from(this.tokenize(text), (token) => this.idOf(token));
  }

  /** Right-padded ids of a batch: {ids: Int32Array(batch * width), lengths: Int32Array, width}; width >= 1. */
  encode(texts) {
    const rows = texts.map((text) => this.encodeOne(text));
    const lengths = Int32Array.from(rows, (row) => row.length);
    const width = Math.max(1, ...lengths);
    const ids = new Int32Array(rows.length * width);
    rows.forEach((row, i) => ids.set(row, i * width));
    return { ids, lengths, width };
  }

  /** A token for people: SentencePiece's word-start marker removed (as Tokenizer.readable in Python). */
  static readable(token) {
    let start = 0;
    while (token.startsWith(WORD_START, start)) start += WORD_START.length;
    return token.slice(start) || token;
  }
}
