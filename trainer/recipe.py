"""The recipe `attn-export train` runs, as a library an app can call: read and split the data,
train and select on validation, optionally refit on train + validation, score the test set once.

    data = load_classifier_data("train.csv.gz", validation_split=0.1, split_seed=0, test_data="test.csv.gz")
    result, metrics = train_and_evaluate(data, ClassifierConfig(), TokenizerSpec(), refit=True)

The command line only parses options, calls these, saves and exports, and reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import reduce
from pathlib import Path
from typing import Callable, Sequence

from runtime.bundle import sha256_of
from runtime.io.tables import InputError
from runtime.tokenizer import Tokenizer, TokenizerSpec, join_treebank
from trainer.config import ClassifierConfig
from trainer.data import LabelledTexts, load_labelled, parse_label_map, read_table, shuffle_split


@dataclass
class ClassifierData:
    """Rows to train on, to select on (`validation`: the split's own rows plus any extra
    validation rows), to refit on (`train` + `own_validation`) and to test once."""

    train: LabelledTexts
    validation: LabelledTexts
    own_validation: LabelledTexts
    extra: dict = field(default_factory=dict)  # "train" / "validation" -> LabelledTexts
    test: LabelledTexts | None = None
    provenance: dict = field(default_factory=dict)  # recorded in the manifest's "data"


def load_classifier_data(train_data: str, *, validation_split: float, split_seed: int, limit: int | None = None,
                         text_column: str = "text", label_column: str = "label", label_map: str | None = None,
                         quoting: str = "auto", test_data: str | None = None,
                         extra_train_data: str | Sequence[str] | None = None,
                         extra_validation_data: str | Sequence[str] | None = None, extra_text_column: str | None = None,
                         extra_label_column: str | None = None, extra_train_repeat: Sequence[int] = (),
                         detreebank_extra: bool = False, extra_pair_column: str | None = None) -> ClassifierData:
    """Read the training file, split it (seeded shuffle), add extra rows, read the test file.
    Extra files may be several; `extra_train_repeat` gives each extra training file's copies (default 1:
    e.g. 4 lets 3,414 CAD rows weigh beside 90,000 others); `detreebank_extra` undoes Penn-Treebank
    tokenization in the extra files (SST-2) so the bundle's tokenizer needs no `join_clitics`;
    `extra_pair_column` (CAD's batch_id) keeps the rows of an extra training file that share a value
    there in one training batch, each copy's apart from the other copies'."""
    table = dict(text_column=text_column, label_column=label_column,
                 label_map=parse_label_map(label_map), quoting=quoting)
    train, validation = shuffle_split(load_labelled(train_data, **table), validation_split, split_seed, limit)
    extra_table = {**table, "text_column": extra_text_column or text_column,
                   "label_column": extra_label_column or label_column}
    files = {"train": _paths(extra_train_data), "validation": _paths(extra_validation_data)}
    repeats = {"train": _repeats(files["train"], extra_train_repeat), "validation": [1] * len(files["validation"])}
    parts = {kind: [read_table(path, **extra_table, group_column=extra_pair_column if kind == "train" else None)
                    for path in paths] for kind, paths in files.items()}
    if detreebank_extra:
        parts = {kind: [LabelledTexts([join_treebank(t) for t in rows.texts], rows.labels, rows.source, rows.groups)
                        for rows in group]
                 for kind, group in parts.items()}
    extra = {kind: _concatenate(_copies(group, repeats[kind])) for kind, group in parts.items() if group}
    provenance = {
        "train": str(train_data),
        "train_sha256": sha256_of(train_data) if Path(train_data).is_file() else None,
        "train_rows": len(train) + len(extra.get("train", ())),
        "validation_rows": len(validation) + len(extra.get("validation", ())),
        "validation_split": validation_split, "limit": limit, "split_seed": split_seed,
        # how the file was read, so `attn-export convert --quantize int8` carves the same validation rows again
        "text_column": text_column, "label_column": label_column, "label_map": label_map, "quoting": quoting,
        **{f"extra_{kind}": _file_records(files[kind], parts[kind], repeats[kind]) for kind in extra},
        **({"extra_detreebanked": True} if detreebank_extra else {}),
        **({"extra_pair_column": extra_pair_column} if extra_pair_column else {}),
    }
    return ClassifierData(
        train=train + extra["train"] if "train" in extra else train,
        validation=validation + extra["validation"] if "validation" in extra else validation,
        own_validation=validation, extra=extra,
        test=read_table(test_data, **table) if test_data else None,
        provenance=provenance,
    )


def _paths(value: str | Sequence[str] | None) -> list[str]:
    return [] if not value else [value] if isinstance(value, (str, Path)) else list(value)


def _repeats(paths: list[str], repeats: Sequence[int]) -> list[int]:
    if not repeats:
        return [1] * len(paths)
    if len(repeats) != len(paths) or min(repeats) < 1:
        raise InputError(f"--extra-train-repeat: give one count >= 1 per --extra-train-data file ({len(paths)}), "
                         f"got {list(repeats)}")
    return list(repeats)


def _copies(files: list[LabelledTexts], repeats: list[int]) -> list[LabelledTexts]:
    """Each file `repeat` times, every copy's group ids shifted past all earlier ones (a pair is one
    pair within one copy; copies of it train apart)."""
    copies, offset = [], 0
    for rows, n in zip(files, repeats):
        for _ in range(n):
            copies.append(rows.regrouped(offset))
            offset += int(rows.groups.max()) + 1 if rows.groups is not None and len(rows.groups) else 0
    return copies


def _concatenate(groups: list[LabelledTexts]) -> LabelledTexts:
    return reduce(lambda a, b: a + b, groups)


def _file_records(paths: list[str], parts: list[LabelledTexts], repeats: list[int]) -> dict | list[dict]:
    """One file: {file, rows, sha256} as before; several: a list of them, each with its repeat."""
    records = [{"file": str(path), "rows": len(rows) * n, "sha256": sha256_of(path), **({"repeat": n} if n > 1 else {})}
               for path, rows, n in zip(paths, parts, repeats)]
    return records[0] if len(records) == 1 else records


def train_and_evaluate(data: ClassifierData, config: ClassifierConfig, spec: TokenizerSpec, *,
                       patience: int | None = None, refit: bool = False, tokenizer: Tokenizer | None = None,
                       test_name: str | None = None, verbose: int = 2, log: Callable[[str], None] = print,
                       refit_rows: LabelledTexts | None = None, init_model=None):
    """(result, metrics): train `config.members` networks selecting each one's epochs on
    `data.validation`; with `refit`, train again on train + own validation rows for those epochs
    (the extra validation rows stay held out; `refit_rows` replaces those rows, e.g. with soft
    distillation targets); score `data.test` once, at the end. `init_model` (one network, with its
    `tokenizer`) is fine-tuned instead of a fresh one; a refit would start afresh, so it is refused."""
    from trainer.fit import accuracy, predict_probabilities, train_ensemble

    def score(model, tokenizer, rows):
        return round(accuracy(predict_probabilities(model, tokenizer, rows.texts), rows.labels), 5)

    if init_model is not None and refit:
        raise InputError("--init-from fine-tunes the saved network; --refit would train a fresh one: drop one")
    vocab_size = config.vocab_size  # training narrows the config's to the fitted vocabulary; a refit fits afresh
    result = train_ensemble(data.train, data.validation, config, spec, patience=patience, verbose=verbose, log=log,
                            tokenizer=tokenizer, init_model=init_model)
    metrics = {"validation_accuracy": round(result.validation_accuracy, 5), "best_epoch": result.best_epoch,
               "train_seconds": round(result.elapsed_s, 1), "history": result.history}
    if result.config.members > 1:
        metrics["members"] = {"epochs": result.member_epochs, "validation_accuracy": [
            round(a, 5) for a in result.history["member_validation_accuracy"]]}
    if "validation" in data.extra:  # the pooled figure selects; each part is recorded too
        metrics["validation_accuracy_by_source"] = {
            rows.source: score(result.model, result.tokenizer, rows)
            for rows in (data.own_validation, data.extra["validation"])}
        log(f"validation accuracy by source: {metrics['validation_accuracy_by_source']}")
    if refit:
        # e.g. SST-2 dev stays held out: a dev set, not training data
        everything = refit_rows if refit_rows is not None else data.train + data.own_validation
        epochs = result.member_epochs
        held = (f" (--extra-validation-data's {len(data.extra['validation'])} rows held out)"
                if "validation" in data.extra else "")
        log(f"refit: {', '.join(map(str, epochs))} epoch(s) on all {len(everything)} rows{held}")
        result = train_ensemble(everything, None, replace(result.config, vocab_size=vocab_size), spec, epochs=epochs,
                                verbose=verbose, log=log, tokenizer=tokenizer)
        metrics["refit"] = {"rows": len(everything), "epochs": epochs if result.config.members > 1 else epochs[0],
                            "train_seconds": round(result.elapsed_s, 1),
                            "note": "validation_accuracy and best_epoch come from the selection run; the shipped "
                                    "model was then trained on train + validation"
                                    + (" (not on the extra validation rows)" if "validation" in data.extra else "")}
    if data.test is not None:
        metrics["test_accuracy"] = score(result.model, result.tokenizer, data.test)
        metrics["test_rows"] = len(data.test)
        metrics["test_data"] = test_name or data.test.source
    return result, metrics
