"""Variant (e) of `python -m bench classifier`: TensorFlow Lite (LiteRT) of the same Keras model,
the edge format a Keras user tries first.

The masked BiLSTM becomes a `WHILE` loop over TensorList ops. The converter is tried as a user
would, in order, and the first model that converts AND runs is timed:
  1. the masked model, input [batch, time], TFLite builtins: the conversion fails (tensor lists
     with a dynamic element shape cannot be lowered);
  2. the same with SELECT_TF_OPS (Flex ops; tensor-list lowering off, as the converter's error
     advises): it converts, but TF's own `tf.lite.Interpreter` has no Flex delegate;
  3. the unmasked twin (`export_twin`, the network the ONNX export converts, same weights) with its
     variables frozen to constants, input [1, time], builtins: converts and runs. Without a mask a
     row must be run alone at its own length (padding would enter the LSTMs), so this variant
     scores row by row, batch 1 (an edge device's usual case). Unfrozen, the same graph converts
     but fails at invoke with READ_VARIABLE (the resource variables inside the WHILE body).
Each attempt's one-line error is logged and printed under the table; if none runs, the row holds
them instead of figures and the benchmark goes on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

ATTEMPTS = ("masked, builtins", "masked, builtins+select_tf_ops", "unmasked twin frozen, batch 1, builtins")
NOTES = "tflite.json"  # beside the .tflite file: how it was made, what failed before


def error_line(error: BaseException) -> str:
    """The one line that says what failed: the last 'error:' line of a converter error (the rest is
    MLIR call-site locations), else the exception's first line."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    errors = [line for line in lines if "error:" in line and "loc(" not in line]
    text = (errors[-1] if errors else lines[0] if lines else "").replace("<unknown>:0: ", "")
    return f"{type(error).__name__}: {text}"


def _converter(model, config, attempt: str):
    import tensorflow as tf

    if attempt.startswith("unmasked"):
        from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

        from trainer.models.classifier import export_twin

        twin = export_twin(model, config)
        function = tf.function(lambda tokens: twin(tokens, training=False))
        frozen = convert_variables_to_constants_v2(
            function.get_concrete_function(tf.TensorSpec((1, None), tf.int32, name="tokens")))
        return tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    function = tf.function(lambda tokens: model(tokens, training=False))
    concrete = function.get_concrete_function(tf.TensorSpec((None, None), tf.int32, name="tokens"))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)
    if "select" in attempt:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
        converter._experimental_lower_tensor_list_ops = False  # what the builtins failure asks for
    return converter


def convert(model, config, tokenizer, work: Path, log) -> tuple[str, str]:
    """(worker kind, path) for variant (e): ("tflite", model.tflite, with tokenizer.json and
    tflite.json beside it) for the first attempt that converts and runs, else ("failed", the
    one-line error of each attempt)."""
    import json

    tokenizer.save(work / "tokenizer.json")
    failures = []
    for k, attempt in enumerate(ATTEMPTS):
        try:
            blob = _converter(model, config, attempt).convert()
        except Exception as error:  # ConverterError and friends: record and try the next way
            failures.append(f"convert ({attempt}): {error_line(error)}")
            log(f"  (e) {failures[-1]}")
            continue
        path = work / f"model-{k}.tflite"
        path.write_bytes(blob)
        batch1 = attempt.startswith("unmasked")
        problem = probe(path, batch1)
        if problem is None:
            log(f"  (e) {attempt}: converted ({len(blob) / 1e6:.2f} MB) and runs")
            (work / NOTES).write_text(json.dumps({"how": attempt, "batch1": batch1,
                                                  "megabytes": round(len(blob) / 1e6, 2), "failed_first": failures}))
            return "tflite", str(path)
        failures.append(f"invoke ({attempt}, {len(blob) / 1e3:.0f} kB converted): {problem}")
        log(f"  (e) {failures[-1]}")
    return "failed", "; ".join(failures)


def probe(path: Path, batch1: bool) -> str | None:
    """None when the interpreter runs the model on a small input, else the one-line error."""
    try:
        run = interpreter_scorer(str(path))
        run(np.array([[1, 2, 3]] if batch1 else [[1, 2, 3], [4, 5, 0]], dtype=np.int32))
    except Exception as error:  # the Interpreter raises RuntimeError / ValueError
        return error_line(error)
    return None


def interpreter_scorer(path: str, threads: int = 0):
    """probabilities(ids) for one batch through tf.lite.Interpreter: the input resized to the
    batch's shape, the probability told from the attention by rank (1 vs 2)."""
    import warnings

    import tensorflow as tf

    with warnings.catch_warnings():  # "tf.lite.Interpreter is deprecated": it is still what TF ships
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_path=path, num_threads=threads or None)
    tokens = interpreter.get_input_details()[0]["index"]
    shape = [None]

    def score(ids: np.ndarray) -> np.ndarray:
        if shape[0] != ids.shape:
            interpreter.resize_tensor_input(tokens, list(ids.shape))
            interpreter.allocate_tensors()
            shape[0] = ids.shape
        interpreter.set_tensor(tokens, np.ascontiguousarray(ids, dtype=np.int32))
        interpreter.invoke()
        probability = next(o for o in interpreter.get_output_details() if len(o["shape"]) == 1)
        return interpreter.get_tensor(probability["index"]).reshape(-1).copy()

    return score


def worker_scorer(model_path: str, threads: int, padded: bool = False):
    """The bench worker's (score(texts), tokenizer, None) for variant (e): our tokenizer, then the
    runtime's token-budget batches, or one row at a time at its own length for a batch-1 model."""
    import json

    from runtime.models.classifier import DEFAULT_BATCH_TOKENS, token_budget_batches
    from runtime.tokenizer import Tokenizer

    folder = Path(model_path).parent
    tokenizer = Tokenizer.load(folder / "tokenizer.json")
    batch1 = json.loads((folder / NOTES).read_text())["batch1"]
    run = interpreter_scorer(model_path, threads)

    def score(texts):
        ids, lengths = tokenizer.encode(texts)
        out = np.empty(len(texts), dtype=np.float32)
        if batch1:
            for row, length in enumerate(lengths):
                out[row] = run(ids[row : row + 1, : max(int(length), 1)])[0]
            return out
        for rows in token_budget_batches(lengths, DEFAULT_BATCH_TOKENS):
            out[rows] = run(ids[rows, : max(int(lengths[rows[-1]]), 1)])
        return out

    return score, tokenizer, None
