// Per-row diagnostics and calibration, as runtime/screening.py: token_count, oov_share,
// truncated_tokens and a status (ok, empty, unknown, other-script); a row that is not ok gets the
// label "unknown" and a null probability unless labels are forced. The scripts are JavaScript's
// \p{Script=...} (Unicode's Script property, as Python's `regex` package gives it; tests/test_screening.py
// checks that both agree on every letter).

import { hasWordCharacter } from "./tokenizer.js";

export const STATUSES = ["ok", "empty", "unknown", "other-script"];
export const UNKNOWN_LABEL = "unknown";
export const DEFAULT_MAX_OOV_SHARE = 0.5;
const DEFAULT_SCRIPT_SHARE = 0.1;
const NEUTRAL_SCRIPTS = ["Common", "Inherited"];
export const SCRIPTS = ["Latin", "Greek", "Cyrillic", "Armenian", "Hebrew", "Arabic", "Devanagari", "Bengali", "Tamil",
  "Thai", "Georgian", "Hangul", "Hiragana", "Katakana", "Han"];
const LANGUAGE_SCRIPTS = {
  en: ["Latin"], es: ["Latin"], fr: ["Latin"], de: ["Latin"], it: ["Latin"], pt: ["Latin"], nl: ["Latin"],
  ko: ["Hangul", "Han"], ja: ["Han", "Hiragana", "Katakana"], zh: ["Han"], ru: ["Cyrillic"], uk: ["Cyrillic"],
  el: ["Greek"], ar: ["Arabic"], he: ["Hebrew"], hi: ["Devanagari"], th: ["Thai"],
};

const scriptClass = (scripts) => scripts.map((name) => `\\p{Script=${name}}`).join("");
const count = (pattern, text) => (text.match(pattern) || []).length;

/** The scripts of ISO 639-1 codes, in order, once each. */
export function scriptsOfLanguages(languages) {
  const unknown = languages.filter((code) => !(code in LANGUAGE_SCRIPTS));
  if (unknown.length) throw new Error(`unknown language code(s) ${unknown.join(", ")}`);
  return [...new Set(languages.flatMap((code) => LANGUAGE_SCRIPTS[code]))];
}

/** The scripts holding at least 10 % of a vocabulary's letters (old manifests declare none). */
export function defaultScripts(vocab) {
  const text = vocab.join("");
  const letters = count(/\p{L}/gu, text);
  return SCRIPTS.filter((name) => letters && count(new RegExp(`(?=\\p{L})\\p{Script=${name}}`, "gu"), text)
    >= DEFAULT_SCRIPT_SHARE * letters);
}

export class Screen {
  constructor(scripts, maxOovShare, oovId = 1) {
    this.scripts = scripts;
    this.maxOovShare = maxOovShare;
    this.oovId = oovId;
    const own = scriptClass(scripts);
    this.own = scripts.length ? new RegExp(`(?=\\p{L})[${own}]`, "gu") : null;
    this.foreign = scripts.length ? new RegExp(`(?![${own}${scriptClass(NEUTRAL_SCRIPTS)}])\\p{L}`, "gu") : null;
  }

  static fromManifest(manifest, vocab) {
    const declared = manifest.diagnostics || {};
    let scripts = declared.scripts;
    if (!scripts) scripts = manifest.languages?.length ? scriptsOfLanguages(manifest.languages) : defaultScripts(vocab);
    return new Screen(scripts, declared.max_oov_share ?? DEFAULT_MAX_OOV_SHARE);
  }

  foreignScript(text) {
    if (!this.foreign) return false;
    const foreign = count(this.foreign, text);
    return foreign > 0 && foreign > count(this.own, text);
  }

  /** One row's diagnostics from its text, the ids the model read and the token count before truncation. */
  check(text, ids, total) {
    const read = ids.length;
    const oov = ids.reduce((n, id) => n + (id === this.oovId ? 1 : 0), 0);
    const share = read ? oov / read : null;
    let status = "ok";
    if (!read || !hasWordCharacter(text)) status = "empty";
    else if (this.foreignScript(text)) status = "other-script";
    else if (oov === read || share > this.maxOovShare) status = "unknown";
    return { token_count: total, oov_share: share, truncated_tokens: total - read, status };
  }
}

/** {probability, label} as the outputs give them: null and "unknown" for a row that is not ok, unless `force`. */
export function verdict(probability, diagnostics, labels, threshold = 0.5, force = false) {
  if (diagnostics.status !== "ok" && !force) return { probability: null, label: UNKNOWN_LABEL };
  return { probability, label: labels[probability >= threshold ? 1 : 0] };
}

/** The manifest's calibration temperature (1 = the graph's own probabilities). */
export function temperatureOf(manifest) {
  return manifest.calibration?.temperature ?? 1;
}

/** sigmoid(logit(p) / T) in float64, rounded to float32, as runtime.screening.apply_temperature. */
export function applyTemperature(probability, temperature) {
  if (temperature === 1) return probability;
  const logit = Math.log(probability) - Math.log1p(-probability);
  return Math.fround(1 / (1 + Math.exp(-logit / temperature)));
}
