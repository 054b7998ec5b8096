"""Variant (e) of `python -m bench classifier`: TensorFlow Lite (LiteRT) of the same Keras model,
the edge format a Keras user tries first.

The masked BiLSTM becomes a `WHILE` loop over TensorList ops. The converter is tried as a user
would: TFLite builtins first, then builtins + SELECT_TF_OPS (Flex ops, tensor-list lowering off, as
the converter's own error message advises). Whatever converts is then run by `tf.lite.Interpreter`
with the same token-budget batches as the runtime (input resized per batch). If no attempt
converts, or the converted model cannot run, the table row carries the exact error line instead of
figures; the benchmark goes on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

ATTEMPTS = ("builtins", "builtins+select_tf_ops")


def error_line(error: BaseException) -> str:
    """The one line that says what failed: the last 'error:' line of a converter error (the rest is
    MLIR call-site locations), else the exception's first line."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    errors = [line for line in lines if "error:" in line and "loc(" not in line]
    text = (errors[-1] if errors else lines[0] if lines else "").replace("<unknown>:0: ", "")
    return f"{type(error).__name__}: {text}"


def convert(model, tokenizer, work: Path, log) -> tuple[str, str]:
    """(worker kind, path) for variant (e): ("tflite", model.tflite, with tokenizer.json beside it)
    when a conversion succeeded and runs, else ("failed", the one-line error of each attempt)."""
    import tensorflow as tf

    tokenizer.save(work / "tokenizer.json")
    function = tf.function(lambda tokens: model(tokens, training=False))
    concrete = function.get_concrete_function(tf.TensorSpec((None, None), tf.int32, name="tokens"))
    failures = []
    for attempt in ATTEMPTS:
        converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)
        if attempt != "builtins":
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
            converter._experimental_lower_tensor_list_ops = False  # what the builtins failure asks for
        try:
            blob = converter.convert()
        except Exception as error:  # ConverterError and friends: record and try the next way
            failures.append(f"convert ({attempt}): {error_line(error)}")
            log(f"  (e) {failures[-1]}")
            continue
        path = work / f"model-{attempt.replace('+', '-')}.tflite"
        path.write_bytes(blob)
        problem = probe(path)
        if problem is None:
            log(f"  (e) converted with {attempt}: {len(blob) / 1e6:.2f} MB, runs")
            return "tflite", str(path)
        failures.append(f"invoke ({attempt}, {len(blob) / 1e3:.0f} kB converted): {problem}")
        log(f"  (e) {failures[-1]}")
    return "failed", "; ".join(failures)


def probe(path: Path) -> str | None:
    """None when the interpreter runs the model on a small batch, else the one-line error."""
    try:
        score = interpreter_scorer(str(path))
        score(np.array([[1, 2, 3, 0]], dtype=np.int32))
    except Exception as error:  # the Interpreter raises RuntimeError / ValueError
        return error_line(error)
    return None


def interpreter_scorer(path: str, threads: int = 0):
    """probabilities(ids) for one padded batch through tf.lite.Interpreter (input resized to it)."""
    import warnings

    import tensorflow as tf

    with warnings.catch_warnings():  # "tf.lite.Interpreter is deprecated": it is still what TF ships
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_path=path, num_threads=threads or None)
    signature = interpreter.get_signature_runner()  # resizes its input to each batch by itself

    def score(ids: np.ndarray) -> np.ndarray:
        outputs = signature(tokens=np.ascontiguousarray(ids, dtype=np.int32))
        return np.asarray(outputs["probability"]).reshape(-1)

    return score


def worker_scorer(model_path: str, threads: int, padded: bool = False):
    """The bench worker's (score(texts), tokenizer, None) for variant (e): our tokenizer and the
    runtime's token-budget batches, each run through the interpreter."""
    from runtime.classifier import DEFAULT_BATCH_TOKENS, token_budget_batches
    from runtime.tokenizer import Tokenizer

    tokenizer = Tokenizer.load(Path(model_path).with_name("tokenizer.json"))
    run = interpreter_scorer(model_path, threads)

    def score(texts):
        ids, lengths = tokenizer.encode(texts)
        out = np.empty(len(texts), dtype=np.float32)
        for rows in token_budget_batches(lengths, DEFAULT_BATCH_TOKENS):
            out[rows] = run(ids[rows, : max(int(lengths[rows[-1]]), 1)])
        return out

    return score, tokenizer, None
