"""Micro-batching for attn-serve: the rows of concurrent requests for one model are merged into
token-budgeted batches and run on worker threads, off the event loop.

    request   submit(Job) -> rows queued (QueueFull past `max_queue_rows`) -> await job.future
    former    (one asyncio task per model) waits for rows and a free worker, then up to `max_wait_s`
              for more rows unless the budget is already full, takes the oldest row and the rows
              nearest to it in length while rows x (longest row) <= `max_batch_tokens` -> runs the
              batch on the executor
    workers   `run(key, payloads)` on the shared thread pool: one single-threaded onnxruntime run per
              worker, one worker per core (as attn-score), so a batch never waits for the event loop

A request's rows may be split over several batches (both workers serve one large request) and rows
of several requests share one batch. Rows merge only with rows of the same key (a translation's
beam size). A cancelled job (its deadline passed, its client left) loses its queued rows before
they reach a worker; rows already running finish and are dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


class QueueFull(Exception):
    """The model's queue holds too many rows to take this request now."""


@dataclass(eq=False)
class Job:
    """One request's rows for one model: `payloads[i]` is what `run` needs for row i, `widths[i]` its
    token count. `future` gets the list of row results, in row order."""

    payloads: Sequence[Any]
    widths: Sequence[int]
    key: Any = None
    future: asyncio.Future | None = None
    results: list = field(default_factory=list)
    queued: int = 0  # rows no worker has started
    remaining: int = 0  # rows without a result yet
    cancelled: bool = False
    arrived: float = 0.0


class Batcher:
    """The queue and batch former of one model. `run(key, payloads) -> results` runs on `executor`;
    `slots` (shared by every model) bounds the batches in flight to the number of workers."""

    def __init__(self, run: Callable[[Any, list], list], executor, slots: asyncio.Semaphore, max_batch_tokens: int,
                 max_wait_s: float, max_queue_rows: int, on_batch: Callable[[int, int], None] | None = None):
        self.run, self.executor, self.slots = run, executor, slots
        self.max_batch_tokens, self.max_wait_s, self.max_queue_rows = max_batch_tokens, max_wait_s, max_queue_rows
        self.on_batch = on_batch or (lambda rows, tokens: None)
        self.rows: list[tuple[Job, int]] = []  # (job, row index) in arrival order
        self.queued_rows = 0
        self.draining = False
        self.changed = asyncio.Event()
        self.task: asyncio.Task | None = None
        self.in_flight: set[asyncio.Future] = set()

    # === Requests ===
    def submit(self, job: Job) -> asyncio.Future:
        """Queue the job's rows; its future resolves to their results. QueueFull if they do not fit."""
        loop = asyncio.get_running_loop()
        job.future = loop.create_future()
        job.results, job.remaining, job.arrived = [None] * len(job.payloads), len(job.payloads), loop.time()
        if not job.payloads:
            job.future.set_result([])
            return job.future
        if self.queued_rows + len(job.payloads) > self.max_queue_rows:
            raise QueueFull(f"{self.queued_rows} rows queued, {len(job.payloads)} more would pass the limit of "
                            f"{self.max_queue_rows} (--max-queue-rows)")
        self.rows.extend((job, row) for row in range(len(job.payloads)))
        job.queued = len(job.payloads)
        self.queued_rows += job.queued
        self.changed.set()
        return job.future

    def cancel(self, job: Job) -> int:
        """Drop the job's rows that no worker has started; returns how many were dropped."""
        if job.cancelled or (job.future is not None and job.future.done()):
            return 0
        job.cancelled = True
        dropped, job.queued = job.queued, 0
        self.queued_rows -= dropped
        if job.future is not None:
            job.future.cancel()
        self.changed.set()  # the former looks again: a batch that was waiting may now be empty
        return dropped

    # === Batch former ===
    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.form_batches())

    def drain(self) -> None:
        """Shutting down: no more waiting for rows to fill a batch; what is queued runs now."""
        self.draining = True
        self.changed.set()

    async def form_batches(self) -> None:
        while True:
            await self.wait_for_rows()
            await self.slots.acquire()
            try:
                await self.wait_for_batch()
                key, taken = self.take()
            except BaseException:
                self.slots.release()
                raise
            if not taken:
                self.slots.release()
                continue
            self.launch(key, taken)

    async def wait_for_rows(self) -> None:
        while not self.purge():
            self.changed.clear()
            await self.changed.wait()

    async def wait_for_batch(self) -> None:
        """Until the oldest row has waited `max_wait_s`, the rows queued fill the budget, or draining."""
        loop = asyncio.get_running_loop()
        while self.purge() and not self.draining and not self.budget_full():
            delay = self.rows[0][0].arrived + self.max_wait_s - loop.time()
            if delay <= 0:
                return
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), delay)
            except asyncio.TimeoutError:
                return

    def purge(self) -> bool:
        """Forget the rows of cancelled jobs; True if rows are queued."""
        if any(job.cancelled for job, _ in self.rows):
            self.rows = [(job, row) for job, row in self.rows if not job.cancelled]
        return bool(self.rows)

    def budget_full(self) -> bool:
        key = self.rows[0][0].key
        widths = [job.widths[row] for job, row in self.rows if job.key == key]
        return len(widths) * max(max(widths), 1) >= self.max_batch_tokens

    def take(self) -> tuple[Any, list[tuple[Job, int]]]:
        """(key, [(job, row), ...]): the oldest row, then the queued rows of its key nearest to it in
        length (older first among equals) while rows x (longest row) stays within the budget. Every
        batch holds the oldest row, so none waits forever; similar lengths waste little on padding."""
        if not self.purge():
            return None, []
        anchor_job, anchor_row = self.rows[0]
        key, anchor = anchor_job.key, max(int(anchor_job.widths[anchor_row]), 1)
        nearest = sorted((index for index, (job, _) in enumerate(self.rows) if job.key == key),
                         key=lambda index: abs(self.width(index) - anchor))
        chosen, width = [], anchor
        for index in nearest:
            wider = max(width, self.width(index))
            if chosen and (len(chosen) + 1) * wider > self.max_batch_tokens:
                continue
            chosen.append(index)
            width = wider
        taken = [self.rows[index] for index in sorted(chosen)]
        picked = set(chosen)
        self.rows = [entry for index, entry in enumerate(self.rows) if index not in picked]
        for job, _ in taken:
            job.queued -= 1
        self.queued_rows -= len(taken)
        return key, taken

    def width(self, index: int) -> int:
        job, row = self.rows[index]
        return max(int(job.widths[row]), 1)

    # === Workers ===
    def launch(self, key: Any, taken: list[tuple[Job, int]]) -> None:
        payloads = [job.payloads[row] for job, row in taken]
        self.on_batch(len(taken), len(taken) * max(max(int(job.widths[row]), 1) for job, row in taken))
        running = asyncio.get_running_loop().run_in_executor(self.executor, self.run, key, payloads)
        self.in_flight.add(running)
        running.add_done_callback(lambda done: self.finish(taken, done))

    def finish(self, taken: list[tuple[Job, int]], done: asyncio.Future) -> None:
        self.in_flight.discard(done)
        self.slots.release()
        error = done.exception()
        results = None if error else done.result()
        for index, (job, row) in enumerate(taken):
            if job.future.done():  # cancelled, or failed by an earlier batch
                continue
            if error is not None:
                job.future.set_exception(error)
                continue
            job.results[row] = results[index]
            job.remaining -= 1
            if job.remaining == 0:
                job.future.set_result(job.results)
        self.changed.set()

    async def stop(self) -> None:
        """After the server stopped taking requests: wait for the batches in flight, end the former."""
        if self.in_flight:
            await asyncio.wait(set(self.in_flight))
        if self.task is not None:
            self.task.cancel()
