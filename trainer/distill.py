"""Knowledge distillation, the recipe `attn-export distill` runs: a student classifier trained on a
teacher bundle's probabilities mixed with the true labels.

    teacher, record = load_teacher("nsmc-ensemble")      # any sentiment bundle, an ensemble included
    teacher, record = load_teachers(["nsmc-ensemble", "./runs/nsmc-seed5"])  # or several, averaged per network
    data = load_classifier_data(...)                     # the same split as `attn-export train`
    result, metrics, record = distill(data, teacher, ClassifierConfig(max_len=80), alpha=0.5, temperature=2.0)

The teacher is scored through the runtime (onnxruntime, the streaming pipeline with its worker
threads), never Keras. Each training row's target is

    alpha * sigmoid(logit(p_teacher) / temperature) + (1 - alpha) * label

a float in [0, 1], which binary cross-entropy takes as it is. With `augment=k`, k perturbed copies of
every training text (words dropped, `augment_texts`) are scored by the teacher too and join the
training rows with the same formula (the original's label): more input on which the student can learn
the teacher's function. The validation rows keep their TRUE
0/1 labels: the epoch is selected on validation accuracy against the labels, never against the
teacher, and the test file (if any) is scored once at the end (`trainer.recipe.train_and_evaluate`).
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from runtime.bundle import sha256_of
from runtime.tokenizer import Tokenizer, TokenizerSpec
from trainer.config import ClassifierConfig
from trainer.data import LabelledTexts
from trainer.recipe import ClassifierData, train_and_evaluate

DEFAULT_ALPHA = 0.5
DEFAULT_TEMPERATURE = 1.0
DEFAULT_AUGMENT_DROP = 0.15
_EPSILON = 1e-7  # probabilities are clipped to [eps, 1 - eps] before the logit


def load_teacher(name: str, threads: int = 0, workers: int = 0):
    """(classifier, record): a sentiment bundle (a shipped short name such as 'nsmc', or a folder)
    opened on the CPU through the runtime; `record` names it and its graph's sha256 for the manifest.
    A bad name or a translation bundle raises BundleError (one line)."""
    import runtime
    from runtime.bundle import BundleError
    from runtime.engines.local import plan_threads

    path = runtime.resolve_bundle_path(name)
    workers, threads = plan_threads(workers, threads, "cpu")
    teacher = runtime.load(path, provider="cpu", threads=threads)
    if not isinstance(teacher, runtime.Classifier):
        raise BundleError(f"--teacher {name}: a {teacher.bundle.task!r} bundle; "
                          "the teacher must be a sentiment classifier")
    graph = teacher.bundle.graph_path("model")
    record = {"name": str(name), "path": str(path), "model_sha256": sha256_of(graph),
              "networks": int(teacher.bundle.manifest.get("model", {}).get("members", 1)),
              "precision": teacher.bundle.manifest.get("precision")}
    teacher.workers = workers
    return teacher, record


class TeacherPanel:
    """Several teacher bundles read as one: P(positive) is the mean over all their networks (a bundle of
    k networks weighs k), the ensemble that `attn-export combine` would build, without needing their Keras
    training folders. Each bundle tokenizes with its own tokenizer; `tokenizer` (the student's default)
    is the first one's."""

    def __init__(self, teachers: list, networks: list[int]):
        self.teachers, self.networks = teachers, networks
        self.tokenizer = teachers[0].tokenizer


def load_teachers(names: list[str] | tuple[str, ...], threads: int = 0, workers: int = 0):
    """(teacher, record) for one name (as `load_teacher`) or a `TeacherPanel` of several; the record of
    a panel names each bundle (its own record) and the total network count."""
    if len(names) == 1:
        return load_teacher(names[0], threads, workers)
    import runtime
    from runtime.bundle import BundleError

    first: dict[Path, str] = {}  # checked before any session is opened (an ensemble is 45 MB)
    for name in names:
        folder = runtime.resolve_bundle_path(name).resolve()
        if folder in first:
            raise BundleError(f"--teacher {name}: the same bundle as --teacher {first[folder]} (it would count twice)")
        first[folder] = name
    loaded = [load_teacher(name, threads, workers) for name in names]
    records = [record for _, record in loaded]
    panel = TeacherPanel([teacher for teacher, _ in loaded], [record["networks"] for record in records])
    record = {"name": " + ".join(str(name) for name in names), "networks": sum(panel.networks),
              "combination": "mean of all the networks' probabilities (a bundle of k networks weighs k)",
              "bundles": records}
    return panel, record


def teacher_probabilities(teacher, texts: list[str], workers: int | None = None, progress: bool | None = None,
                          desc: str = "teacher") -> np.ndarray:
    """P(positive) of the teacher for every text, float32 (N,), in order: the runtime's pipeline
    (tokenizing on a reader thread, onnxruntime on `workers` threads), with a tqdm bar on stderr
    (automatic: when stderr is a terminal). A `TeacherPanel`: the network-weighted mean of its bundles."""
    if isinstance(teacher, TeacherPanel):
        total = np.zeros(len(texts), dtype=np.float64)
        for k, (member, networks) in enumerate(zip(teacher.teachers, teacher.networks), 1):
            total += networks * teacher_probabilities(member, texts, workers, progress,
                                                      f"{desc} {k}/{len(teacher.teachers)}")
        return (total / sum(teacher.networks)).astype(np.float32)
    from tqdm import tqdm

    from runtime.engines.local import score_rows

    workers = workers or getattr(teacher, "workers", 0) or 1
    out = np.empty(len(texts), dtype=np.float32)
    enabled = sys.stderr.isatty() if progress is None else progress
    done = 0
    with tqdm(total=len(texts), unit=" rows", file=sys.stderr, disable=not enabled,
              dynamic_ncols=True, desc=desc) as bar:
        for scored in score_rows(teacher, ((str(i), text) for i, text in enumerate(texts)), workers=workers):
            rows = len(scored.chunk)
            out[done : done + rows] = scored.probabilities
            done += rows
            bar.update(rows)
    return out


def soften(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """sigmoid(logit(p) / T): T > 1 pulls the teacher's confident answers towards 0.5 (its ranking
    kept), T = 1 leaves them as they are."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    p = np.clip(np.asarray(probabilities, dtype=np.float64), _EPSILON, 1 - _EPSILON)
    if temperature == 1.0:
        return p.astype(np.float32)
    logits = np.log(p) - np.log1p(-p)
    return (1.0 / (1.0 + np.exp(-logits / temperature))).astype(np.float32)


def soft_targets(teacher_p: np.ndarray, labels: np.ndarray, alpha: float,
                 temperature: float = DEFAULT_TEMPERATURE) -> np.ndarray:
    """alpha * soften(teacher_p, T) + (1 - alpha) * label, float32 in [0, 1]."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    return (alpha * soften(teacher_p, temperature)
            + (1.0 - alpha) * np.asarray(labels, dtype=np.float32)).astype(np.float32)


def augment_texts(texts: list[str], copies: int, drop: float = DEFAULT_AUGMENT_DROP, seed: int = 0) -> list[str]:
    """`copies` perturbed copies of every text (copy 1 of all texts, then copy 2, ...), for a teacher to
    label: each copy drops every word with probability `drop`, at least one word dropped and one kept,
    so no copy repeats its text or comes out empty; a text of fewer than 3 words drops characters
    instead (spaces are characters too), and one of fewer than 2 characters stays as it is.
    Deterministic for a seed."""
    if not 0.0 < drop < 1.0:
        raise ValueError(f"drop must be in (0, 1), got {drop}")
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(copies):
        for text in texts:
            words = text.split()
            pieces, joiner = (words, " ") if len(words) >= 3 else (list(text.strip()), "")
            if len(pieces) < 2:
                out.append(text)
                continue
            keep = rng.random(len(pieces)) >= drop
            if keep.all():
                keep[rng.integers(len(pieces))] = False
            if not keep.any():
                keep[rng.integers(len(pieces))] = True
            out.append(joiner.join(piece for piece, kept in zip(pieces, keep) if kept))
    return out


def augment_rows(rows: LabelledTexts, copies: int, drop: float, seed: int) -> LabelledTexts:
    """`copies` perturbed copies of `rows` (`augment_texts`), each with its original's label."""
    return LabelledTexts(augment_texts(rows.texts, copies, drop, seed), np.tile(rows.labels, copies),
                         f"{rows.source} (augmented x{copies})")


def distill(data: ClassifierData, teacher, config: ClassifierConfig, *, alpha: float = DEFAULT_ALPHA,
            temperature: float = DEFAULT_TEMPERATURE, spec: TokenizerSpec | None = None,
            tokenizer: Tokenizer | None = None, patience: int | None = None, refit: bool = False,
            test_name: str | None = None, progress: bool | None = None, augment: int = 0,
            augment_drop: float = DEFAULT_AUGMENT_DROP, verbose: int = 2, log: Callable[[str], None] = print,
            init_model=None):
    """(result, metrics, distillation record). Scores the teacher over the training rows (and the
    split's own validation rows, which a refit trains on), trains on the soft targets, selects on
    validation accuracy against the true labels. `augment=k`: k perturbed copies of every training row
    (and, for a refit, of the split's own validation rows) join them, labelled by the teacher; the
    validation rows that select stay as they are. `tokenizer=None` and `spec=None`: the teacher's
    tokenizer (the student sees the same tokens); a `spec` fits a new tokenizer on the training rows.
    `init_model` (one network, with its `tokenizer`) is trained on instead of a fresh one."""
    if tokenizer is None and spec is None:
        tokenizer = teacher.tokenizer
    if tokenizer is not None and tokenizer.spec.max_len != config.max_len:
        config = replace(config, max_len=tokenizer.spec.max_len)
    log(f"teacher: scoring {len(data.train)} training + {len(data.validation)} validation rows")
    train_p = teacher_probabilities(teacher, data.train.texts, progress=progress, desc="teacher (train)")
    validation_p = teacher_probabilities(teacher, data.validation.texts, progress=progress, desc="teacher (validation)")
    own_p = validation_p[: len(data.own_validation)]  # the split's own rows come first (recipe.load_classifier_data)

    def soft(rows: LabelledTexts, p: np.ndarray | None = None, desc: str = "") -> LabelledTexts:
        """`rows` with their targets (the teacher scored over them here unless `p` is given)."""
        p = teacher_probabilities(teacher, rows.texts, progress=progress, desc=desc) if p is None else p
        return LabelledTexts(rows.texts, soft_targets(p, rows.labels, alpha, temperature), rows.source,
                             rows.groups)  # --extra-pair-column's pairs stay pairs

    soft_train, soft_own = soft(data.train, train_p), soft(data.own_validation, own_p)
    if augment:
        extra = soft(augment_rows(data.train, augment, augment_drop, config.seed), desc="teacher (augmented train)")
        log(f"teacher: scored {len(extra)} augmented training rows ({augment} per row, "
            f"words dropped with p={augment_drop:g})")
        soft_train = soft_train + extra
    refit_rows = soft_train + soft_own
    if augment and refit:
        refit_rows = refit_rows + soft(augment_rows(data.own_validation, augment, augment_drop, config.seed + 1),
                                       desc="teacher (augmented validation)")
    teacher_accuracy = float(np.mean((validation_p >= 0.5).astype(np.int32) == data.validation.labels))
    log(f"teacher: validation accuracy {teacher_accuracy:.4f}; targets = {alpha:g} x teacher (T={temperature:g}) "
        f"+ {1 - alpha:g} x label")
    student_data = replace(data, train=soft_train)
    result, metrics = train_and_evaluate(student_data, config,
                                         spec or TokenizerSpec(max_len=config.max_len), patience=patience,
                                         refit=refit, tokenizer=tokenizer, test_name=test_name, verbose=verbose,
                                         log=log, refit_rows=refit_rows, init_model=init_model)
    from trainer.fit import predict_probabilities

    student_p = predict_probabilities(result.model, result.tokenizer, data.validation.texts)
    gap = float(np.mean(np.abs(student_p - validation_p)))
    agreement = float(np.mean((student_p >= 0.5) == (validation_p >= 0.5)))
    metrics["distillation"] = {"teacher_validation_accuracy": round(teacher_accuracy, 5),
                               "validation_mean_abs_gap_to_teacher": round(gap, 5),
                               "validation_agreement_with_teacher": round(agreement, 5)}
    log(f"student vs teacher on validation: mean |Δp| {gap:.4f}, same answer on {100 * agreement:.2f} % of rows")
    record = {"alpha": alpha, "temperature": temperature,
              "target": "alpha * sigmoid(logit(p_teacher) / temperature) + (1 - alpha) * label (training rows only; "
                        "validation selects on true labels)",
              "tokenizer": ("teacher's" if tokenizer is teacher.tokenizer
                            else "given" if tokenizer is not None else "fitted")}
    if augment:
        record["augment"] = {"copies": augment, "word_drop": augment_drop, "training_rows": len(soft_train),
                             "how": "each copy drops every word with probability word_drop (at least one dropped, one "
                                    "kept; characters for texts under 3 words); the teacher labels every copy"}
    return result, metrics, record


def _teacher_graphs(record: dict) -> str:
    """'5 network(s), model.onnx sha256 `a592445f…`' for a teacher record, each bundle's for a panel."""
    if "bundles" in record:
        bundles = (f"`{bundle.get('name')}` {_teacher_graphs(bundle)}" for bundle in record["bundles"])
        return f"{record.get('networks')} networks: " + "; ".join(bundles)
    return f"{record.get('networks')} network(s), model.onnx sha256 `{record.get('model_sha256', '')[:16]}…`"


def write_model_card(folder: str | Path, manifest: dict) -> Path:
    """A short MODEL_CARD.md stub from the manifest: what the student is, how it was made, its figures."""
    metrics, data, model = manifest.get("metrics", {}), manifest.get("data", {}), manifest.get("model", {})
    teacher = data.get("teacher", {})
    distilled = data.get("distillation", {})
    figures = metrics.get("distillation", {})
    lines = [
        f"# Distilled student ({Path(folder).name})", "",
        f"A single BiLSTM + {manifest.get('attention')} attention network ({manifest.get('precision')}), trained by "
        f"`attn-export distill` on the probabilities of the teacher `{teacher.get('name')}` "
        f"({_teacher_graphs(teacher)}) mixed with the true labels: target = {distilled.get('alpha')} × "
        f"sigmoid(logit(p_teacher) / {distilled.get('temperature')}) "
        f"+ {round(1 - float(distilled.get('alpha', 0)), 6)} × label.", "",
        "| figure | value |", "|---|---|",
        f"| training rows / validation rows | {data.get('train_rows')} / {data.get('validation_rows')} |",
        f"| teacher validation accuracy | {figures.get('teacher_validation_accuracy')} |",
        f"| student validation accuracy (selects the epoch) | {metrics.get('validation_accuracy')} "
        f"(epoch {metrics.get('best_epoch')}) |",
        "| student vs teacher on validation: mean abs gap, same answer | "
        f"{figures.get('validation_mean_abs_gap_to_teacher')}, {figures.get('validation_agreement_with_teacher')} |",
        f"| test accuracy (scored once, never used to select) | {metrics.get('test_accuracy', 'not measured')} |",
        f"| model | {', '.join(f'{k} {v}' for k, v in model.items())} |", "",
        "Made with:", "", "```", str(data.get("command", "")), "```", "",
        "If the teacher was trained on the same file, it has seen these validation rows: its validation figure is "
        "optimistic, and so is the student's when the file repeats texts (the teacher's targets on a training copy "
        "carry what it learned from the validation copy); read the test figure.", "",
        "This is a generated stub: add the comparison with the teacher (size, throughput) before shipping it.", "",
    ]
    path = Path(folder) / "MODEL_CARD.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
