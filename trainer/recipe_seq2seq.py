"""The recipe `attn-export train-translator` runs, as a library an app can call: read and split the
sentence pairs (by sentence group), train and select on validation loss, and, once the bundle is
exported, score the held-out test split once and record it in the manifest.

    data = load_translator_data("spa-eng.tsv.gz", source_column="spa", target_column="eng")
    result, metrics = train_and_measure(data, Seq2SeqConfig())
    save_translator_training(result, out, {"metrics": metrics, "data": data.provenance})
    export_translator_bundle(result, out, metrics=metrics, data=data.provenance,
                             parity_sentences=data.validation.sources[:50])
    report = evaluate_test_split(out, data.test, beam_size=4)

The command line only parses options, calls these, saves and exports, and reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from runtime.bundle import sha256_of
from runtime.io.tables import InputError
from trainer.config import Seq2SeqConfig
from trainer.data import SentencePairs, read_pairs, split_pairs


@dataclass
class TranslatorData:
    """Pairs to train on, to select on (validation loss) and to test once, and where they came from."""

    train: SentencePairs
    validation: SentencePairs
    test: SentencePairs
    provenance: dict = field(default_factory=dict)  # recorded in the manifest's "data"


def load_translator_data(pairs: str | Path, *, source_column: str, target_column: str,
                         validation_fraction: float = 0.05, test_fraction: float = 0.05, seed: int = 0,
                         limit: int | None = None) -> TranslatorData:
    """Read the pairs file and split it by sentence group (seeded); with `limit`, train on that many of
    the training pairs (a seeded sample; validation and test stay whole)."""
    import numpy as np

    train, validation, test = split_pairs(read_pairs(pairs, source_column, target_column),
                                          validation_fraction, test_fraction, seed)
    if limit:
        train = train.take(np.random.default_rng(seed).permutation(len(train))[:limit])
    provenance = {"pairs": str(pairs), "pairs_sha256": sha256_of(pairs),
                  "direction": f"{source_column}->{target_column}",
                  "train_pairs": len(train), "validation_pairs": len(validation), "test_pairs": len(test),
                  "split_seed": seed, "validation_fraction": validation_fraction, "test_fraction": test_fraction}
    return TranslatorData(train, validation, test, provenance)


def train_and_measure(data: TranslatorData, config: Seq2SeqConfig, *, patience: int | None = None,
                      time_budget_s: float | None = None, verbose: int = 2, log: Callable[[str], None] = print,
                      init_from: str | Path | None = None):
    """(result, metrics): train on `data.train`, keep the best `data.validation` loss epoch; the test
    split is not touched (see `evaluate_test_split`). `init_from` continues a saved training/ folder."""
    from trainer.fit_seq2seq import train_translator

    result = train_translator(data.train, data.validation, config, patience=patience, time_budget_s=time_budget_s,
                              verbose=verbose, log=log, init_from=init_from)
    metrics = {"validation_loss": round(result.validation_loss, 4), "best_epoch": result.best_epoch,
               "train_seconds": round(result.elapsed_s, 1), "history": result.history}
    return result, metrics


def evaluate_test_split(folder: str | Path, test: SentencePairs, beam_size: int = 4) -> dict:
    """Score the exported bundle in `folder` (through onnxruntime, as users run it) on the test split
    once, and record the report as the manifest's metrics["test"]; returns the report."""
    import runtime
    from trainer.converter import record_metrics
    from trainer.evaluate_seq2seq import evaluate

    report = evaluate(runtime.load(folder, provider="cpu"), test, beam_size=beam_size)
    record_metrics(folder, {"test": report})
    return report



def recorded_test_split(folder: str | Path, pairs: str | Path | None = None, *, unscored: bool = True) -> SentencePairs:
    """The held-out test split of the bundle in `folder`, carved again from its pairs file (the manifest's,
    or `pairs`) with the recorded direction, split seed and fractions. Refuses (InputError) another pairs
    file (sha256), a re-split that does not give the recorded sizes and, with `unscored` (what
    `evaluate-translator` asks), a bundle whose test split was already scored: it is scored once (CI's
    floors re-read the shipped bundles' split with `unscored=False`, to check, never to choose)."""
    from runtime.bundle import Bundle

    manifest = Bundle.load(folder).manifest
    if manifest.get("task") != "translation":
        raise InputError(f"{folder}: not a translation bundle")
    done = (manifest.get("metrics") or {}).get("test")
    if done and unscored:
        raise InputError(f"{folder}: its test split was scored already (BLEU {done.get('bleu')}); a model's test split "
                         "is scored once")
    data = manifest.get("data") or {}
    pairs = pairs or data.get("pairs")
    if not pairs or not data.get("pairs_sha256") or "->" not in data.get("direction", ""):
        raise InputError(f"{folder}: its manifest records no pairs file, sha256 and direction to carve the test "
                         "split from")
    if sha256_of(pairs) != data["pairs_sha256"]:
        raise InputError(f"{pairs}: not the pairs file {folder} was trained on (sha256 {data['pairs_sha256'][:12]}…)")
    source_column, target_column = data["direction"].split("->")
    carved = load_translator_data(pairs, source_column=source_column, target_column=target_column,
                                  validation_fraction=data.get("validation_fraction", 0.05),
                                  test_fraction=data.get("test_fraction", 0.05), seed=data["split_seed"])
    sizes = {k: carved.provenance[k] for k in ("validation_pairs", "test_pairs")}  # --limit cuts train only
    if any(data.get(k) not in (None, v) for k, v in sizes.items()):
        raise InputError(f"{folder}: the re-split of {pairs} gives {sizes}, not the recorded sizes; not its test split")
    return carved.test


def continued_config(folder: str | Path, pairs: str | Path, **training) -> tuple[Seq2SeqConfig, dict]:
    """The network of `folder`/training (architecture, tokenizers, split seed) with new training settings
    (`epochs`, `learning_rate`, `batch_size`), and the saved run's record. Refuses another pairs file: the
    held-out test split must stay the one the saved run never saw."""
    import json

    from trainer.fit_seq2seq import TRAINING

    source = Path(folder) / TRAINING
    try:
        config = Seq2SeqConfig.from_dict(json.loads((source / "config.json").read_text(encoding="utf-8")))
        record = json.loads((source / "history.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InputError(f"--init-from {folder}: no readable {TRAINING}/config.json and history.json "
                         f"({error})") from None
    recorded = record.get("data", {}).get("pairs_sha256")
    if recorded and recorded != sha256_of(pairs):
        raise InputError(f"--init-from {folder}: it was trained on {record['data'].get('pairs')} "
                         f"(sha256 {recorded[:12]}…), not {pairs}; continuing on other pairs would leak its test split")
    for name, value in training.items():
        setattr(config, name, value)
    return config, record
