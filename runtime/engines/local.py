"""The local engine: `score_file` and `translate_file` read a file, run a model and write the output
file (what attn-score and attn-translate do, for apps: no Click), over a streaming pipeline in which
reading, parsing and tokenizing the next chunk overlaps inference on the current ones, and results
come back in input order.

    reader thread   rows -> chunks of `chunk_rows` -> prepare(chunk) (parse + tokenize) -> jobs
    N workers       jobs -> work(prepared) (onnxruntime releases the GIL while it runs) -> results
    caller          results, re-ordered by chunk number -> yielded in input order

Memory is bounded: at most `depth` chunks exist at once (read, queued, being scored or waiting
for their turn to be written); the reader waits for a free slot before it reads more. For the
default 2 workers that is 6 chunks of 1,024 rows; for IMDB reviews (~1.3 KB of text and at most
500 int32 ids each) about 6 x 3.3 MB = 20 MB, whatever the size of the input.

An error while reading (a bad row, undecodable bytes) is raised in the caller when its chunk's turn
comes, so everything before it has been handed on and nothing after; the commands write through a
temporary file, which that error (or Ctrl-C) removes.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from itertools import islice
from typing import Callable, Iterable, Iterator, NamedTuple, TypeVar

from runtime.errors import BundleError, InputError, OutputError
from runtime.io.atomic import OutputFile
from runtime.io.columns import TRANSLATE_COLUMNS, KeptColumns
from runtime.io.diagnostics import DIAGNOSTICS, Notes, row_diagnostics
from runtime.io.formats import SCORE_FORMATS, TRANSLATE_FORMATS, output_format
from runtime.io.rows import open_input, read_rows
from runtime.io.writers import score_writer, translation_writer
from runtime.models.classifier import DEFAULT_BATCH_TOKENS
from runtime.screening import count_statuses, verdict
from runtime.session import SessionOptions, resolve_provider

T = TypeVar("T")
DEFAULT_CHUNK_ROWS = 1024  # long enough for the length sort to cut padding; the first rows are written early
TRANSLATE_CHUNK_ROWS = 128  # sentences translated together (length-sorted inside); the Ray engine's batch too
_END = object()


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


def default_workers(provider: str = "auto") -> int:
    """One single-threaded inference worker per core on CPU (`python -m bench cli`: on 2 cores two
    1-thread workers beat one 2-thread session, and the GIL-bound tokenizer fits between them);
    one worker on an accelerator, which parallelizes a batch by itself."""
    try:
        chosen = resolve_provider(provider)
    except Exception:  # an unavailable provider is reported by load(), with its message
        chosen = provider
    return max(1, os.cpu_count() or 1) if chosen == "cpu" else 1


def plan_threads(workers: int, threads: int, provider: str = "auto") -> tuple[int, int]:
    """(workers, intra-op threads per session) from the CLI's options (0 = choose)."""
    workers = workers or default_workers(provider)
    if threads == 0 and workers > 1:
        threads = 1  # N workers x 1 thread: each run executes on its worker's own thread
    return workers, threads


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    items = iter(items)
    while chunk := list(islice(items, size)):
        yield chunk


def ordered_map(chunks: Iterable, prepare: Callable, work: Callable, workers: int = 2,
                depth: int | None = None) -> Iterator:
    """Yield (chunk, work(prepare(chunk))) for every chunk, in order. `chunks` is consumed and
    `prepare` runs on one reader thread, `work` on `workers` threads. At most `depth` chunks
    (default workers + 4) are alive at once. An exception from any stage is re-raised here, in
    chunk order; leaving the loop early (an error, Ctrl-C) stops the threads."""
    workers = max(1, workers)
    depth = depth or workers + 4
    slots = threading.Semaphore(depth)
    stop = threading.Event()
    jobs: queue.Queue = queue.Queue()
    results: queue.Queue = queue.Queue()

    def read() -> None:
        index = 0
        try:
            for chunk in chunks:
                while not slots.acquire(timeout=0.1):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                jobs.put((index, chunk, prepare(chunk)))
                index += 1
            results.put((index, _END, None))
        except BaseException as error:  # raised in the caller when its turn comes
            results.put((index, _Failure(error), None))
        finally:
            for _ in range(workers):
                jobs.put(None)

    def run() -> None:
        while (job := jobs.get()) is not None:
            index, chunk, prepared = job
            if stop.is_set():
                continue
            try:
                results.put((index, chunk, work(prepared)))
            except BaseException as error:
                results.put((index, _Failure(error), None))

    threads = [threading.Thread(target=read, name="attn-reader", daemon=True)]
    threads += [threading.Thread(target=run, name=f"attn-worker-{i}", daemon=True) for i in range(workers)]
    for thread in threads:
        thread.start()
    pending: dict[int, tuple] = {}
    index = 0
    try:
        while True:
            while index not in pending:
                try:  # wake up now and then: a Ctrl-C delivered to another thread is acted on only
                    got, chunk, result = results.get(timeout=0.2)  # when this (main) thread runs Python
                except queue.Empty:
                    continue
                pending[got] = (chunk, result)
            chunk, result = pending.pop(index)
            if chunk is _END:
                return
            if isinstance(chunk, _Failure):
                raise chunk.error
            yield chunk, result
            slots.release()
            index += 1
    finally:
        stop.set()
        for _ in range(workers):
            jobs.put(None)
        for thread in threads[1:]:  # a worker finishes its current batch (milliseconds); the reader may
            thread.join(timeout=5)  # be blocked on its input (stdin) and stops at its next chunk


class Scored(NamedTuple):
    chunk: list  # (id, text) pairs
    probabilities: object  # float32 (rows,)
    attention: list  # per row its attention over its own tokens (when asked for), else []
    explanations: list  # per row its top-k (token, weight) pairs, or None
    position: int | None  # bytes of the input read once this chunk was (for progress)
    diagnostics: list  # per row its runtime.screening.Diagnostics (token count, OOV share, truncation, status)


def score_rows(classifier, rows: Iterable[tuple[str, str]], explain_k: int = 0, want_attention: bool = False,
               workers: int = 2, chunk_rows: int = DEFAULT_CHUNK_ROWS, position: Callable[[], int | None] | None = None
               ) -> Iterator[Scored]:
    """attn-score's pipeline: a `Scored` per chunk, in input order. Tokenizing runs on the reader
    thread; scoring and the explanations on the workers. `position()` is read on the reader thread
    just after each chunk."""
    attention_wanted = want_attention or explain_k > 0

    def prepare(chunk):
        encoded = classifier.tokenizer.encode_counted([text for _, text in chunk])
        return chunk, encoded, position() if position else None

    def work(item):
        chunk, (ids, lengths, totals), at = item
        texts = [text for _, text in chunk]
        probabilities, attention = classifier.score_encoded(ids, lengths, want_attention=attention_wanted)
        if explain_k:
            explanations = classifier.top_attended(texts, attention, explain_k)
        else:
            explanations = [None] * len(chunk)
        diagnostics = classifier.screen.check(texts, ids, lengths, totals)
        return Scored(chunk, probabilities, attention, explanations, at, diagnostics)

    for _, scored in ordered_map(chunked(rows, chunk_rows), prepare, work, workers):
        yield scored


def translate_rows(translator, rows: Iterable[tuple[str, str]], workers: int = 2,
                   chunk_rows: int = TRANSLATE_CHUNK_ROWS, position: Callable[[], int | None] | None = None,
                   **options) -> Iterator[tuple[list, list, int | None]]:
    """attn-translate's pipeline: (chunk of (id, text), translations, input position) per chunk, in input order."""
    def work(item):
        chunk, at = item
        return chunk, translator.translate([text for _, text in chunk], **options), at

    for _, result in ordered_map(chunked(rows, chunk_rows),
                                 lambda chunk: (chunk, position() if position else None), work, workers):
        yield result


# === Files: the read -> model -> write loop of both commands, for apps ===
@dataclass
class Summary:
    """What a file job did: rows written, seconds, the provider that ran; score_file: rows per status
    and truncated rows (with the tokenizer `spec` that says which end was kept); translate_file: the
    stderr notes attn-translate prints (rows the model could not read, split, windowed...)."""

    rows: int = 0
    seconds: float = 0.0
    provider: str = ""
    input_name: str = ""
    statuses: Counter = field(default_factory=Counter)
    truncated: int = 0
    spec: object = None
    notes: list = field(default_factory=list)


def _session_options(workers: int, threads: int, provider: str, graph_optimization: str, memory_arena: bool):
    workers, threads = plan_threads(workers, threads, provider)
    return workers, SessionOptions(threads=threads, optimization=graph_optimization, memory_arena=memory_arena)


def score_file(input_path: str, output: str | None = None, *, model=None, fmt: str | None = None,
               text_column: str | None = None, id_column: str | None = None, threshold: float = 0.5, explain: int = 0,
               input_format: str = "auto", quoting: str = "auto", encoding: str = "utf-8", provider: str = "auto",
               threads: int = 0, graph_optimization: str = "all", memory_arena: bool = True,
               batch_tokens: int = DEFAULT_BATCH_TOKENS, workers: int = 0, chunk_rows: int = DEFAULT_CHUNK_ROWS,
               keep_columns: str | None = None, keep_all: bool = False, force_labels: bool = False,
               want_attention: bool = False, on_start: Callable | None = None,
               on_chunk: Callable | None = None) -> Summary:
    """Score every row of `input_path` (CSV, TSV, JSONL, text lines, Parquet; '-' = stdin) into
    `output` (None or '-' = stdout), in input order, as attn-score does, and return the Summary.
    `fmt`: csv, tsv, jsonl, parquet (default: what `output`'s suffix names, else csv). The output
    file appears only complete. `on_start(classifier, reader)` runs once the model and the input are
    open, before any row is read; `on_chunk(part)` after each chunk is written (a `Scored`; with
    `want_attention` it carries each row's attention). Bad input raises an AttnError naming the row."""
    import runtime

    started = time.perf_counter()
    fmt = output_format(output, fmt, SCORE_FORMATS, "csv")
    workers, options = _session_options(workers, threads, provider, graph_optimization, memory_arena)
    classifier = runtime.load(model, provider=provider, batch_tokens=batch_tokens, session_options=options)
    if not isinstance(classifier, runtime.Classifier):
        raise BundleError(f"{classifier.bundle.path}: task is {classifier.bundle.task!r}; attn-score needs a "
                          "sentiment bundle (use attn-translate for translation)")
    reader, text_column, id_column = open_input(input_path, input_format, encoding, quoting, text_column, id_column)
    kept = KeptColumns.choose(reader.name, reader.columns, keep_columns, keep_all, id_column)
    if on_start is not None:
        on_start(classifier, reader)
    if fmt == "parquet" and output in (None, "-"):
        raise OutputError("--format parquet writes a file: pass -o FILE.parquet")
    done = Summary(provider=classifier.provider, input_name=reader.name, spec=classifier.tokenizer.spec)
    with OutputFile(output, inputs=[input_path]) as handle:
        out = score_writer(handle, fmt, explain > 0, kept, getattr(reader, "arrow_types", None))
        rows = read_rows(reader, text_column, id_column, kept, typed_ids=True)
        scored = score_rows(classifier, rows, explain, workers=workers, chunk_rows=chunk_rows, position=reader.position,
                            want_attention=want_attention)
        try:
            for part in scored:
                for (row_id, _), probability, explanation, row in zip(part.chunk, part.probabilities,
                                                                      part.explanations, part.diagnostics):
                    out.write(row_id, *verdict(probability, row, classifier.labels, threshold, force_labels),
                              explanation, row)
                done.rows += len(part.chunk)
                count_statuses(part.diagnostics, done.statuses)
                done.truncated += sum(row.truncated_tokens > 0 for row in part.diagnostics)
                if on_chunk is not None:
                    on_chunk(part)
        except BaseException:
            out.abandon()  # the temporary file is discarded: no Parquet footer into a closed file later
            raise
        out.close()  # Parquet's footer, before the file is renamed into place
    done.seconds = time.perf_counter() - started
    return done


def translate_file(input_path: str, output: str | None = None, *, model="spa-eng", fmt: str | None = None,
                   text_column: str | None = None, id_column: str | None = None, beam_size: int = 4,
                   max_length: int | None = None, input_format: str = "auto", quoting: str = "auto",
                   encoding: str = "utf-8", provider: str = "auto", threads: int = 0, graph_optimization: str = "all",
                   memory_arena: bool = True, workers: int = 0, keep_columns: str | None = None, keep_all: bool = False,
                   return_attention: bool = False, on_start: Callable | None = None,
                   on_chunk: Callable | None = None) -> Summary:
    """Translate every row of `input_path` into `output` (None or '-' = stdout), in input order, as
    attn-translate does, and return the Summary (its `notes` are the lines attn-translate prints).
    `fmt`: txt, csv, tsv, jsonl, parquet (default: what `output`'s suffix names, else txt).
    `on_start(translator, reader)` runs before any row is read; `on_chunk(chunk, translations, position)`
    after each chunk is written (with `return_attention` each Translation carries its attention;
    `position`: input bytes read, for progress)."""
    import runtime

    started = time.perf_counter()
    fmt = output_format(output, fmt, TRANSLATE_FORMATS, "txt")
    workers, options = _session_options(workers, threads, provider, graph_optimization, memory_arena)
    translator = runtime.load(model, provider=provider, session_options=options)
    if not isinstance(translator, runtime.Translator):
        raise BundleError(f"{translator.bundle.path}: task is {translator.bundle.task!r}; "
                          "attn-translate needs a translation bundle")
    reader, text_column, id_column = open_input(input_path, input_format, encoding, quoting, text_column, id_column)
    kept = KeptColumns.choose(reader.name, reader.columns, keep_columns, keep_all, id_column,
                              TRANSLATE_COLUMNS + DIAGNOSTICS)
    if kept is not None and fmt == "txt":
        raise InputError("--keep-columns/--keep-all need --format csv, tsv, jsonl or parquet "
                         "(txt is one translation per line)")
    if fmt == "parquet" and output in (None, "-"):
        raise OutputError("--format parquet writes a file: pass -o FILE.parquet")
    if on_start is not None:
        on_start(translator, reader)
    done, notes = Summary(provider=translator.provider, input_name=reader.name), Notes()
    lines: deque = deque()  # each row's line number, for the notes (pushed by the reader, popped here)
    with OutputFile(output, inputs=[input_path]) as handle:
        out = translation_writer(handle, fmt, kept, getattr(reader, "arrow_types", None))
        rows = read_rows(reader, text_column, id_column, kept, lines, typed_ids=True)
        translated = translate_rows(translator, rows, workers=workers, position=reader.position, beam_size=beam_size,
                                    max_length=max_length, return_attention=return_attention)
        try:
            for chunk, results, position in translated:
                for (row_id, text), result in zip(chunk, results):
                    diagnostics = row_diagnostics(result)
                    out.write(row_id, text, result, diagnostics)
                    notes.add(str(lines.popleft()), diagnostics)
                done.rows += len(chunk)
                if on_chunk is not None:
                    on_chunk(chunk, results, position)
        except BaseException:
            out.abandon()
            raise
        out.close()
    done.seconds, done.notes = time.perf_counter() - started, notes.lines()
    return done
