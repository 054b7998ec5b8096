"""Training and evaluation of the classifier.

Texts are vectorized with `runtime.tokenizer.Tokenizer`, the same code that serves the model.
Batches are length-bucketed: rows of similar length train together, padded to a multiple of
`BUCKET_STEP`, which cuts the recurrent work on IMDB roughly in half versus padding all to 500
while keeping the number of distinct shapes (and graph retraces) small.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from runtime.tokenizer import Tokenizer, TokenizerSpec
from trainer.data import LabelledTexts
from trainer.models.classifier import ClassifierConfig, build_classifier, combine_members, member_config
from trainer.tokenizer_fit import fit_tokenizer

BUCKET_STEP = 64
SHORT_STEP = 8  # rows up to BUCKET_STEP tokens pad to a multiple of 8: a 9-token SST-2 phrase costs 16, not 64


def padded_width(longest: int, max_len: int) -> int:
    """Batch width for rows whose longest has `longest` tokens: a multiple of SHORT_STEP up to
    BUCKET_STEP, then of BUCKET_STEP (few distinct widths, little padding on short texts)."""
    longest = max(int(longest), 1)
    step = SHORT_STEP if longest <= BUCKET_STEP else BUCKET_STEP
    return min(max_len, math.ceil(longest / step) * step)


@dataclass
class TrainResult:
    model: object  # keras.Model with outputs {"probability", "attention"}
    tokenizer: Tokenizer
    config: ClassifierConfig
    history: dict = field(default_factory=dict)
    validation_accuracy: float = float("nan")
    best_epoch: int = 0
    elapsed_s: float = 0.0
    member_epochs: list[int] = field(default_factory=list)  # an ensemble's epoch count per member


def length_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator | None,
                   window: int = 50, groups: np.ndarray | None = None, count: int | None = None) -> list[np.ndarray]:
    """Index batches of similar length. With `rng`: shuffled rows, sorted inside windows of
    `window` batches, batch order shuffled. Without: plain sort (evaluation). With `groups` (and `rng`),
    rows sharing a group id >= 0 move as one unit: shuffled, sorted by their longest row and packed into
    one batch (a batch closes early rather than split a unit), so e.g. both halves of a counterfactual
    pair are in every batch together; `count` then fixes the number of batches (the two smallest merge,
    or the largest splits between its units, until it holds), so every epoch has the same step count."""
    if rng is None:
        order = np.argsort(lengths, kind="stable")
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if groups is None or not (groups >= 0).any():  # nothing grouped: rows as before (no per-row units built)
        order = rng.permutation(len(lengths))
        span = batch_size * window
        batches = []
        for start in range(0, len(order), span):
            chunk = order[start : start + span]
            chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
            batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
        rng.shuffle(batches)
        return batches
    units = _units(groups)
    order = rng.permutation(len(units))
    longest = np.array([lengths[unit].max() for unit in units])
    span = batch_size * window
    packed, start = [], 0
    while start < len(order):
        stop, rows = start, 0  # a window holds `span` rows, counted in whole units
        while stop < len(order) and rows < span:
            rows += len(units[order[stop]])
            stop += 1
        chunk = order[start:stop]
        packed += _pack([units[u] for u in chunk[np.argsort(longest[chunk], kind="stable")]], batch_size)
        start = stop
    if count is not None:
        packed = _to_count(packed, count)
    batches = [np.concatenate(batch) for batch in packed]
    rng.shuffle(batches)
    return batches


def _units(groups: np.ndarray) -> list[np.ndarray]:
    """Row indices per unit: each grouped set of rows (first-seen order), each ungrouped row alone."""
    members: dict[int, list[int]] = {}
    units: list = []
    for row, group in enumerate(groups.tolist()):
        if group < 0:
            units.append([row])
        elif group in members:
            members[group].append(row)
        else:
            members[group] = [row]
            units.append(members[group])
    return [np.asarray(unit) for unit in units]


def _pack(units: list[np.ndarray], batch_size: int) -> list[list[np.ndarray]]:
    """Consecutive units into batches (lists of units) of at most `batch_size` rows (a larger unit
    is a batch of its own)."""
    batches, current, size = [], [], 0
    for unit in units:
        if current and size + len(unit) > batch_size:
            batches.append(current)
            current, size = [], 0
        current.append(unit)
        size += len(unit)
    if current:
        batches.append(current)
    return batches


def _to_count(batches: list[list[np.ndarray]], count: int) -> list[list[np.ndarray]]:
    """Merge the two smallest batches, or split the largest between its units, until there are `count`
    (or no batch has two units left to split)."""
    batches = list(batches)

    def size(batch):
        return sum(len(unit) for unit in batch)

    while len(batches) > count > 0:
        batches.sort(key=size)
        batches = [batches[0] + batches[1]] + batches[2:]
    while len(batches) < count:
        batches.sort(key=size, reverse=True)
        largest = batches[0]
        if len(largest) < 2:
            break
        half = len(largest) // 2
        batches = [largest[:half], largest[half:]] + batches[1:]
    return batches


class BucketedBatches:
    """(ids, labels) batches cut by `length_batches`, each padded by `padded_width`.
    Iterating once is one epoch; with a seed every epoch reshuffles; `groups` keeps grouped rows
    together, in the same number of batches every epoch (that of the first packing)."""

    def __init__(self, ids: np.ndarray, lengths: np.ndarray, labels: np.ndarray, batch_size: int,
                 seed: int | None = None, groups: np.ndarray | None = None, partners: bool = False):
        self.ids, self.lengths, self.labels, self.batch_size = ids, lengths, labels.astype("float32"), batch_size
        self.rng = None if seed is None else np.random.default_rng(seed)
        self.groups = None if self.rng is None else groups
        self.partners = partners  # labels as (B, 2): [label, the row's counterfactual partner in the batch or -1]
        self.count = len(length_batches(lengths, batch_size, None))
        if self.groups is not None:
            self.count = len(length_batches(lengths, batch_size, np.random.default_rng(seed), groups=self.groups))

    def __len__(self) -> int:
        return self.count

    def __iter__(self):
        for rows in length_batches(self.lengths, self.batch_size, self.rng, groups=self.groups, count=self.count):
            width = padded_width(self.lengths[rows].max(), self.ids.shape[1])
            if not self.partners:
                yield self.ids[rows, :width], self.labels[rows]
                continue
            partner = np.full(len(rows), -1.0, np.float32)
            if self.groups is not None:
                partner = batch_partners(self.groups[rows], self.labels[rows]).astype(np.float32)
            yield self.ids[rows, :width], np.stack([self.labels[rows], partner], axis=1)


PARTNER_SIGNATURE = (((None, None), "int32"), ((None, 2), "float32"))  # feed() of BucketedBatches(partners=True)


def batch_partners(groups: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per row of one batch, the position of its counterfactual partner there: the other row of a group
    of exactly two rows whose labels lie on opposite sides of 0.5 (a CAD pair, or a pair's two changed
    sentences); -1 for every other row (ungrouped, or in a group of another size or of one label)."""
    partner = np.full(len(groups), -1, np.int64)
    members: dict[int, list[int]] = {}
    for position, group in enumerate(groups.tolist()):
        if group >= 0:
            members.setdefault(group, []).append(position)
    for rows in members.values():
        if len(rows) == 2 and (labels[rows[0]] >= 0.5) != (labels[rows[1]] >= 0.5):
            partner[rows[0]], partner[rows[1]] = rows[1], rows[0]
    return partner


def paired_loss(weight: float):
    """Binary cross-entropy plus `weight` × a pairwise logistic term on each counterfactual pair in the
    batch: softplus(z_negative − z_positive) on the two halves' logits, so the edit that flips the label
    must move the score, not only each half land on its side. Labels come as (B, 2) [label, partner
    position or −1] (`BucketedBatches(partners=True)`); per row, so Keras' batch mean is mean BCE +
    weight × mean over the batch's pairs (each counted once, from its positive half)."""
    from keras import ops

    def loss(y_true, y_pred):
        label = y_true[:, 0]
        partner = ops.cast(y_true[:, 1], "int32")
        p = ops.clip(ops.reshape(y_pred, (-1,)), 1e-7, 1 - 1e-7)
        bce = -(label * ops.log(p) + (1 - label) * ops.log(1 - p))
        logit = ops.log(p) - ops.log(1 - p)
        positive_half = ops.logical_and(partner >= 0, label >= 0.5)
        rank = ops.softplus(ops.take(logit, ops.maximum(partner, 0)) - logit)
        pairs = ops.maximum(ops.sum(ops.cast(positive_half, "float32")), 1.0)
        rows = ops.cast(ops.shape(label)[0], "float32")
        return bce + weight * ops.where(positive_half, rank, 0.0) * rows / pairs

    loss.__name__ = "paired_loss"
    return loss


def first_column(metric):
    """`metric` on the label column of (B, 2) [label, partner] targets."""
    def wrapped(y_true, y_pred):
        return metric(y_true[:, 0], y_pred)

    wrapped.__name__ = metric.__name__
    return wrapped


def feed(batches, signature: tuple | None = None):
    """(data, steps) for `Model.fit` from a re-iterable of batches (one pass = one epoch).
    TensorFlow gets a tf.data pipeline whose shapes are dynamic (one trace for every width);
    other backends get an endless generator and a step count. `signature` is a tuple of
    (shape, dtype) per element, nested like the batches; default: classifier (ids, labels)."""
    import keras

    signature = signature or (((None, None), "int32"), ((None,), "float32"))
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        def spec(item):  # a leaf is (shape, dtype name)
            if isinstance(item[1], str):
                return tf.TensorSpec(item[0], item[1])
            return tuple(spec(x) for x in item)

        dataset = tf.data.Dataset.from_generator(lambda: iter(batches), output_signature=spec(signature))
        return dataset.apply(tf.data.experimental.assert_cardinality(len(batches))).prefetch(2), None

    def endless():
        while True:
            yield from batches

    return endless(), len(batches)


def side_agreement(y_true, y_pred):
    """Per row 1.0 when the prediction is on the target's side of 0.5: accuracy for 0/1 labels
    (Keras' BinaryAccuracy), and still meaningful for soft distillation targets, which BinaryAccuracy
    would compare for equality with 0/1 (so training accuracy read ~0). Selection never uses it:
    it monitors `val_accuracy`, whose targets are always the true 0/1 labels."""
    from keras import ops

    y_true = ops.reshape(y_true, (-1,))
    y_pred = ops.reshape(y_pred, (-1,))
    return ops.cast(ops.equal(y_true >= 0.5, y_pred > 0.5), "float32")


def train_classifier(
    train: LabelledTexts,
    validation: LabelledTexts | None,
    config: ClassifierConfig,
    spec: TokenizerSpec | None = None,
    patience: int | None = None,
    verbose: int = 2,
    log: Callable[[str], None] = print,
    tokenizer: Tokenizer | None = None,
    init_model=None,
) -> TrainResult:
    """Fit the tokenizer on `train` (unless one is given), train, keep the weights of the best
    validation epoch. With `validation=None` (a refit on all rows) train exactly `config.epochs`
    epochs and keep the last. `init_model` (from `load_classifier_training`, with its `tokenizer`)
    is trained on instead of a fresh network: a fine-tune, Adam starting afresh."""
    import keras

    started = time.perf_counter()
    keras.utils.set_random_seed(config.seed)
    if tokenizer is None:
        tokenizer = fit_tokenizer(train.texts, config.vocab_size, spec or TokenizerSpec(max_len=config.max_len))
    config.vocab_size = tokenizer.vocab_size  # a small corpus may hold fewer distinct tokens
    train_ids, train_lengths = tokenizer.encode(train.texts)
    log(f"data: {len(train)} train / {len(validation) if validation else 0} validation rows, vocabulary "
        f"{tokenizer.vocab_size}, mean length {train_lengths.mean():.0f} tokens (max {config.max_len})")

    model = build_classifier(config) if init_model is None else init_model
    trainable = keras.Model(model.input, model.output["probability"])
    paired = config.pair_loss_weight > 0
    trainable.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss=paired_loss(config.pair_loss_weight) if paired else "binary_crossentropy",
        metrics=[keras.metrics.MeanMetricWrapper(first_column(side_agreement) if paired else side_agreement,
                                                 name="accuracy")]
    )
    signature = PARTNER_SIGNATURE if paired else None
    train_feed, train_steps = feed(BucketedBatches(train_ids, train_lengths, train.labels,
                                                   config.batch_size, config.seed, train.groups, paired), signature)
    val_feed, val_steps, callbacks = None, None, []
    if validation is not None:
        val_ids, val_lengths = tokenizer.encode(validation.texts)
        val_feed, val_steps = feed(BucketedBatches(val_ids, val_lengths, validation.labels, config.batch_size,
                                                   partners=paired), signature)
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor="val_accuracy", mode="max", patience=patience or config.epochs, restore_best_weights=True))
    history = trainable.fit(
        train_feed,
        steps_per_epoch=train_steps,
        validation_data=val_feed,
        validation_steps=val_steps,
        epochs=config.epochs,
        shuffle=False,  # BucketedBatches shuffles itself, per epoch
        callbacks=callbacks,
        verbose=verbose,
    ).history
    accuracies = history.get("val_accuracy", [])
    best = int(np.argmax(accuracies)) if accuracies else len(history["loss"]) - 1
    accuracies = accuracies or [float("nan")] * (best + 1)
    return TrainResult(
        model=model,
        tokenizer=tokenizer,
        config=config,
        history={k: [float(v) for v in values] for k, values in history.items()},
        validation_accuracy=float(accuracies[best]),
        best_epoch=best + 1,
        elapsed_s=time.perf_counter() - started,
        member_epochs=[best + 1],
    )


def train_ensemble(
    train: LabelledTexts,
    validation: LabelledTexts | None,
    config: ClassifierConfig,
    spec: TokenizerSpec | None = None,
    patience: int | None = None,
    epochs: list[int] | None = None,
    verbose: int = 2,
    log: Callable[[str], None] = print,
    tokenizer: Tokenizer | None = None,
    init_model=None,
) -> TrainResult:
    """`config.members` networks (seeds seed, seed+1, …) on one tokenizer fitted on `train`, each
    keeping its own best validation epoch, combined into one model whose outputs are their means.
    With `validation=None` member k trains exactly `epochs[k]` epochs (a refit). With one member this
    is `train_classifier`. The returned validation accuracy is the combined model's. A given
    `tokenizer` is used as it is instead of fitting one; `init_model` (one network) is fine-tuned."""
    if config.members == 1:
        return train_classifier(train, validation, replace(config, epochs=epochs[0]) if epochs else config, spec,
                                patience, verbose, log, tokenizer=tokenizer, init_model=init_model)
    if init_model is not None:
        raise ValueError("init_model fine-tunes one network, not an ensemble of new ones")
    started = time.perf_counter()
    results = []
    for k in range(config.members):
        member = member_config(config, k)
        if epochs:
            member.epochs = epochs[k]
        log(f"member {k + 1}/{config.members} (seed {member.seed})")
        result = train_classifier(train, validation, member, spec, patience, verbose, log, tokenizer=tokenizer)
        tokenizer = result.tokenizer
        results.append(result)
        if validation is not None:
            log(f"member {k + 1}: validation accuracy {result.validation_accuracy:.4f} (epoch {result.best_epoch})")
    config = replace(config, vocab_size=tokenizer.vocab_size)
    model = combine_members([r.model for r in results], config)
    score = float("nan")
    if validation is not None:
        score = accuracy(predict_probabilities(model, tokenizer, validation.texts), validation.labels)
        log(f"ensemble of {config.members}: validation accuracy {score:.4f}")
    return TrainResult(
        model=model,
        tokenizer=tokenizer,
        config=config,
        history={"members": [r.history for r in results],
                 "member_validation_accuracy": [r.validation_accuracy for r in results]},
        validation_accuracy=score,
        best_epoch=max(r.best_epoch for r in results),
        elapsed_s=time.perf_counter() - started,
        member_epochs=[r.best_epoch for r in results],
    )


def predict_probabilities(model, tokenizer: Tokenizer, texts: list[str], batch_size: int = 256) -> np.ndarray:
    """Keras probabilities for raw texts through the shared tokenizer: length-sorted batches, each
    padded by `padded_width` (few distinct shapes, so few graph traces)."""
    ids, lengths = tokenizer.encode(texts)
    probabilities = np.empty(len(texts), dtype=np.float32)
    for rows in length_batches(lengths, batch_size, rng=None):
        width = padded_width(lengths[rows].max(), ids.shape[1])
        probabilities[rows] = np.asarray(model.predict_on_batch(ids[rows, :width])["probability"])
    return probabilities


def accuracy(probabilities: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> float:
    return float(np.mean((probabilities >= threshold).astype(np.int32) == labels))


def save_training_outputs(result: TrainResult, folder: str | Path, extra: dict | None = None) -> Path:
    """folder/training/{model.keras, tokenizer.json, history.json}: what `attn-export convert` reads."""
    import json

    target = Path(folder) / "training"
    target.mkdir(parents=True, exist_ok=True)
    result.model.save(target / "model.keras")
    result.tokenizer.save(target / "tokenizer.json")
    summary = {
        "config": result.config.to_dict(),
        "history": result.history,
        "validation_accuracy": result.validation_accuracy,
        "best_epoch": result.best_epoch,
        "elapsed_s": round(result.elapsed_s, 1),
        **(extra or {}),
    }
    (target / "history.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return target


def load_classifier_training(folder: str | Path) -> tuple[object, ClassifierConfig, Tokenizer, dict]:
    """(model, config, tokenizer, summary) from the training/ folder `save_training_outputs` wrote
    (a run's --out or a shipped bundle). ExportError names the folder when files are missing or the
    network is not one this exporter knows; Keras' safe mode refuses a model holding code (ValueError)."""
    import json

    import keras

    import trainer.attention  # noqa: F401  (registers the attention layers for loading)
    from trainer.errors import ExportError
    from trainer.models.classifier import config_from_model

    training = Path(folder) / "training"
    if not (training / "model.keras").is_file() or not (training / "tokenizer.json").is_file():
        raise ExportError(f"{folder}: no training/model.keras and training/tokenizer.json")
    tokenizer = Tokenizer.load(training / "tokenizer.json")
    model = keras.saving.load_model(training / "model.keras")
    try:
        config = config_from_model(model)
    except ValueError as error:
        raise ExportError(f"{folder}: {error}") from None
    summary = json.loads((training / "history.json").read_text()) if (training / "history.json").is_file() else {}
    return model, config, tokenizer, summary


def combine_trained(folders) -> tuple[object, ClassifierConfig, Tokenizer, list[dict]]:
    """Read the training/ folders that `save_training_outputs` wrote (single models or ensembles)
    and combine every network into one ensemble: (model, config, tokenizer, one summary per folder).
    All must share one tokenizer and one architecture; ExportError names the folder otherwise."""
    from trainer.errors import ExportError

    ignored = ("seed", "epochs", "members", "learning_rate", "batch_size")
    if len(folders) < 2:
        raise ExportError("combine needs at least two bundles")
    members, tokenizer, architecture, sources, config = [], None, None, [], None
    for folder in folders:
        model, config, these, history = load_classifier_training(folder)
        if tokenizer is not None and these.to_dict() != tokenizer.to_dict():
            raise ExportError(f"{folder}: its tokenizer differs from {folders[0]}'s; train it with "
                             f"--tokenizer {Path(folders[0]) / 'training' / 'tokenizer.json'}")
        tokenizer = tokenizer or these
        shape = {k: v for k, v in config.to_dict().items() if k not in ignored}
        if architecture is not None and shape != architecture:
            raise ExportError(f"{folder}: architecture {shape} differs from {folders[0]}'s {architecture}")
        architecture = architecture or shape
        nested = [model.get_layer(f"member_{k}") for k in range(config.members)] if config.members > 1 else [model]
        members += nested
        sources.append({"bundle": str(folder), "networks": len(nested), "data": history.get("data", {}),
                        "metrics": {k: v for k, v in history.get("metrics", {}).items() if k != "history"}})
    # what a saved model cannot tell (max_len of a non-location score) comes from the tokenizer
    config = replace(config, members=len(members), max_len=tokenizer.spec.max_len)
    return combine_members(members, config), config, tokenizer, sources
