"""attn-serve's Prometheus metrics (prometheus-client), in a registry of the application's own."""

from __future__ import annotations

import time
from functools import partial

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

ENDPOINTS = ("/v1/score", "/v1/translate", "/v1/models", "/healthz", "/readyz", "/metrics")
BATCH_ROWS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
LATENCY_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    def __init__(self):
        self.registry = registry = CollectorRegistry()
        self.requests = Counter("attn_requests", "HTTP requests answered, by endpoint and status code",
                                ["endpoint", "code"], registry=registry)
        self.latency = Histogram("attn_request_seconds", "Time from request to response, by endpoint", ["endpoint"],
                                 buckets=LATENCY_S, registry=registry)
        self.rows = Counter("attn_rows", "Rows (texts) answered, by model", ["model"], registry=registry)
        self.batch_rows = Histogram("attn_batch_rows", "Rows per batch run on a worker, by model", ["model"],
                                    buckets=BATCH_ROWS, registry=registry)
        self.batch_tokens = Counter("attn_batch_tokens", "Padded tokens (rows x longest row) run, by model", ["model"],
                                    registry=registry)
        self.in_flight = Gauge("attn_in_flight_requests", "Scoring and translating requests arrived and not yet "
                               "answered", registry=registry)
        self.queue = Gauge("attn_queue_rows", "Rows waiting for a worker, by model", ["model"], registry=registry)
        self.cancelled = Counter("attn_cancelled_requests", "Requests given up, by model and reason (deadline, "
                                 "disconnected)", ["model", "reason"], registry=registry)
        self.cancelled_rows = Counter("attn_cancelled_rows", "Queued rows dropped before reaching a worker, by model "
                                      "and reason", ["model", "reason"], registry=registry)
        self.content_type = CONTENT_TYPE_LATEST

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def batch_observer(self, model: str):
        def observe(rows: int, tokens: int) -> None:
            self.batch_rows.labels(model).observe(rows)
            self.batch_tokens.labels(model).inc(tokens)
        return observe

    def watch_queue(self, model: str, batcher) -> None:
        self.queue.labels(model).set_function(lambda: batcher.queued_rows)

    def middleware(self, app):
        """ASGI middleware counting every HTTP response and timing it, by endpoint."""
        return partial(self.observe, app)

    async def observe(self, app, scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)
        endpoint = scope["path"] if scope["path"] in ENDPOINTS else "other"
        started, status = time.perf_counter(), [500]

        async def sending(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await app(scope, receive, sending)
        finally:
            self.requests.labels(endpoint, str(status[0])).inc()
            self.latency.labels(endpoint).observe(time.perf_counter() - started)
