"""Micro-batching for attn-serve: the rows of concurrent requests for one model are merged into
token-budgeted batches and run on worker threads, off the event loop.

    request   submit(Job) -> rows queued (QueueFull past `max_queue_rows`) -> await job.future
    former    (one asyncio task per model) waits for rows and a free worker, then up to `max_wait_s`
              for more rows unless the budget is already full, takes rows first-in first-out while
              rows x (longest row) <= `max_batch_tokens` -> runs the batch on the executor
    workers   `run(key, payloads)` on the shared thread pool: one single-threaded onnxruntime run per
              worker, one worker per core (as attn-score), so a batch never waits for the event loop

A request's rows may be split over several batches (both workers serve one large request) and rows
of several requests share one batch. Rows merge only with rows of the same key (a translation's
beam size). A cancelled job (its deadline passed, its client left) loses its queued rows before
they reach a worker; rows already running finish and are dropped.
"""

from __future__ import annotations

import asyncio
from collections import deque
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
    next_row: int = 0  # rows before it have been handed to a worker
    remaining: int = 0  # rows without a result yet
    cancelled: bool = False
    arrived: float = 0.0

    @property
    def queued(self) -> int:
        return len(self.payloads) - self.next_row


class Batcher:
    """The queue and batch former of one model. `run(key, payloads) -> results` runs on `executor`;
    `slots` (shared by every model) bounds the batches in flight to the number of workers."""

    def __init__(self, run: Callable[[Any, list], list], executor, slots: asyncio.Semaphore, max_batch_tokens: int,
                 max_wait_s: float, max_queue_rows: int, on_batch: Callable[[int, int], None] | None = None):
        self.run, self.executor, self.slots = run, executor, slots
        self.max_batch_tokens, self.max_wait_s, self.max_queue_rows = max_batch_tokens, max_wait_s, max_queue_rows
        self.on_batch = on_batch or (lambda rows, tokens: None)
        self.jobs: deque[Job] = deque()
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
        self.jobs.append(job)
        self.queued_rows += len(job.payloads)
        self.changed.set()
        return job.future

    def cancel(self, job: Job) -> int:
        """Drop the job's rows that no worker has started; returns how many were dropped."""
        if job.cancelled or (job.future is not None and job.future.done()):
            return 0
        job.cancelled = True
        dropped = job.queued
        self.queued_rows -= dropped
        job.next_row = len(job.payloads)
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
        while not self.drop_cancelled():
            self.changed.clear()
            await self.changed.wait()

    async def wait_for_batch(self) -> None:
        """Until the oldest row has waited `max_wait_s`, the rows queued fill the budget, or draining."""
        loop = asyncio.get_running_loop()
        while self.drop_cancelled() and not self.draining and not self.budget_full():
            delay = self.jobs[0].arrived + self.max_wait_s - loop.time()
            if delay <= 0:
                return
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), delay)
            except asyncio.TimeoutError:
                return

    def drop_cancelled(self) -> bool:
        """Pop finished or cancelled jobs off the head; True if rows are queued."""
        while self.jobs and (self.jobs[0].cancelled or self.jobs[0].queued == 0):
            self.jobs.popleft()
        return bool(self.jobs)

    def budget_full(self) -> bool:
        rows, width = 0, 1
        for job in self.jobs:
            if job.cancelled or job.key != self.jobs[0].key:
                continue
            rows += job.queued
            width = max(width, max(job.widths[job.next_row:], default=1))
            if rows * width >= self.max_batch_tokens:
                return True
        return False

    def take(self) -> tuple[Any, list[tuple[Job, int]]]:
        """(key, [(job, row), ...]): rows first-in first-out of the head job's key, while rows x (longest
        row) stays within the budget; the first row is always taken (a long row runs alone)."""
        if not self.drop_cancelled():
            return None, []
        key, taken, width = self.jobs[0].key, [], 1
        for job in self.jobs:
            if job.cancelled or job.key != key:
                continue
            while job.queued:
                row_width = max(int(job.widths[job.next_row]), 1)
                if taken and (len(taken) + 1) * max(width, row_width) > self.max_batch_tokens:
                    return key, self.account(taken)
                taken.append((job, job.next_row))
                width = max(width, row_width)
                job.next_row += 1
        return key, self.account(taken)

    def account(self, taken: list[tuple[Job, int]]) -> list[tuple[Job, int]]:
        self.queued_rows -= len(taken)
        self.drop_cancelled()
        return taken

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
