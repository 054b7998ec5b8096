"""A streaming pipeline for the commands: reading, parsing and tokenizing the next chunk overlaps
inference on the current ones, and results come back in input order.

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
from itertools import islice
from typing import Callable, Iterable, Iterator, NamedTuple, TypeVar

from runtime.session import resolve_provider

T = TypeVar("T")
DEFAULT_CHUNK_ROWS = 1024  # long enough for the length sort to cut padding; the first rows are written early
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


def ordered_map(chunks: Iterable, prepare: Callable, work: Callable, workers: int = 2, depth: int | None = None) -> Iterator:
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


def translate_rows(translator, rows: Iterable[tuple[str, str]], workers: int = 2, chunk_rows: int = 256,
                   position: Callable[[], int | None] | None = None, **options) -> Iterator[tuple[list, list, int | None]]:
    """attn-translate's pipeline: (chunk of (id, text), translations, input position) per chunk, in input order."""
    def work(item):
        chunk, at = item
        return chunk, translator.translate([text for _, text in chunk], **options), at

    for _, result in ordered_map(chunked(rows, chunk_rows), lambda chunk: (chunk, position() if position else None), work, workers):
        yield result
