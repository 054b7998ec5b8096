"""The attn-serve ASGI application (FastAPI on Starlette): endpoints, request schemas, limits, metrics.

    POST /v1/score       {"model": "imdb", "texts": [...], "explain": K}     one row dict per text
    POST /v1/translate   {"model": "spa-eng", "texts": [...], "beam_size": 4}
    GET  /v1/models      the served models, as `attn-score --list-models` lists them
    GET  /healthz        alive;  GET /readyz: models loaded and sha256-verified, not shutting down
    GET  /metrics        Prometheus text;  GET /openapi.json: the schema (from the request models)

Every error is JSON `{"error": "<one line>"}`: 413 (body or texts over the limit), 422 (malformed JSON,
a wrong type, an unknown model or field), 503 with Retry-After (the queue is full), 504 (the deadline
passed). A client that disconnects loses its queued rows before they reach a worker.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from runtime import catalog
from runtime.models.translator import MAX_BEAM
from runtime.serve.batcher import Batcher, QueueFull
from runtime.serve.limits import Limits
from runtime.serve.metrics import Metrics

log = logging.getLogger("attn-serve")
MAX_EXPLAIN = 100


# === Request and response schemas (the OpenAPI schema is made from these) ===
class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ScoreRequest(Strict):
    model: str = Field(description="A served model's name (GET /v1/models).", examples=["imdb"])
    texts: list[str] = Field(description="The texts to score; each gets one result, in order.")
    explain: int = Field(0, ge=0, le=MAX_EXPLAIN, description="Most attended tokens per text (0 = none).")
    threshold: float = Field(0.5, ge=0, le=1, description="The second label at or above this probability.")
    force_labels: bool = Field(False, description="Also give rows whose status is not ok the model's probability and "
                                                  "label (else: label 'unknown', probability null), as --force-labels.")


class TranslateRequest(Strict):
    model: str = Field(description="A served translation model's name.", examples=["spa-eng"])
    texts: list[str] = Field(description="The sentences to translate; each gets one result, in order.")
    beam_size: int = Field(4, ge=1, le=MAX_BEAM, description="Beam width (1 = greedy).")


class Results(BaseModel):
    model: str
    results: list[dict[str, Any]] = Field(description="One dict per text, in order (the rows attn-score / "
                                                      "attn-translate write as JSON lines, without the id).")


class Problem(BaseModel):
    error: str = Field(description="What is wrong, on one line.")


REQUESTS = {"/v1/score": ScoreRequest, "/v1/translate": TranslateRequest}
# The endpoints answer with a JSONResponse of Results' shape: FastAPI then skips validating the answer
# against the model again (the schema still documents it), which cost more than the JSON itself.
PROBLEMS = {code: {"model": Problem} for code in (413, 422, 503, 504)}


# === Limits and errors ===
class BodyLimit:
    """ASGI middleware: a body past `max_bytes` (declared or streamed) gets 413 and never reaches the
    application; a body within it is read once and handed on whole."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return await self.reject(int(declared), scope, receive, send)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.max_bytes:
                return await self.reject(size, scope, receive, send, more)
        whole, handed = {"type": "http.request", "body": b"".join(chunks), "more_body": False}, False

        async def replay():
            nonlocal handed
            if handed:
                return await receive()  # after the body: waits for the client to disconnect
            handed = True
            return whole

        await self.app(scope, replay, send)

    async def reject(self, size: int, scope, receive, send, more: bool = False):
        at_least = "at least " if more else ""
        message = f"request body is {at_least}{size:,} bytes; the limit is {self.max_bytes:,} (--max-body-bytes)"
        await JSONResponse({"error": message}, 413, headers={"Connection": "close"})(scope, receive, send)


class Admission:
    """ASGI middleware: past `limit` scoring or translating requests in flight (arrived, not yet
    answered), a new one gets 503 with Retry-After before its body is read. The row queue bounds the
    work waiting for a worker; this bounds what waits for the event loop (parsing, tokenizing)."""

    PATHS = ("/v1/score", "/v1/translate")

    def __init__(self, app, service: "Service"):
        self.app, self.service = app, service

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] not in self.PATHS:
            return await self.app(scope, receive, send)
        service = self.service
        if service.in_flight >= service.limits.max_in_flight:
            message = f"{service.in_flight} requests in flight, the limit (--max-in-flight); retry later"
            headers = {"Retry-After": str(service.limits.retry_after_s)}
            return await JSONResponse({"error": message}, 503, headers=headers)(scope, receive, send)
        service.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            service.in_flight -= 1


def validation_message(request: Request, errors: list[dict]) -> str:
    """The first validation error on one line, naming the field."""
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"] if part != "body")
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    if first["type"] == "json_invalid":
        at = f" at character {where}" if where else ""
        return f"body is not valid JSON: {first.get('ctx', {}).get('error', first['msg'])}{at}"
    if first["type"] == "extra_forbidden":
        known = ", ".join(REQUESTS[request.url.path].model_fields) if request.url.path in REQUESTS else ""
        return f"unknown field {where!r}" + (f"; the fields are: {known}" if known else "") + more
    if first["type"] == "missing":
        return f"field {where!r} is missing{more}" if where else f"the body is missing: send a JSON object{more}"
    if not where:
        kind = request.headers.get("content-type", "none")
        if "json" not in kind:
            return f"the body must be JSON sent with Content-Type: application/json (got {kind!r})"
        return f"the body must be a JSON object: {first['msg']}{more}"
    return f"field {where!r}: {first['msg']}{more}"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError):
        return JSONResponse({"error": validation_message(request, error.errors())}, 422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException):
        return JSONResponse({"error": str(error.detail)}, error.status_code, headers=error.headers)

    @app.exception_handler(Exception)
    async def failed(request: Request, error: Exception):  # a bug: logged in full here, one line to the client
        log.exception("request to %s failed", request.url.path)
        first = (str(error).splitlines() or [""])[0]
        return JSONResponse({"error": f"internal error: {type(error).__name__}: {first}"}, 500)


# === The application ===
class Service:
    """The served models, their batchers and the limits: what the endpoints share."""

    def __init__(self, models: dict, limits: Limits, executor, workers: int, metrics: Metrics):
        self.models, self.limits, self.executor, self.workers, self.metrics = models, limits, executor, workers, metrics
        self.batchers: dict[str, Batcher] = {}
        self.draining = False
        self.in_flight = 0  # scoring and translating requests between arrival and answer (Admission)
        metrics.in_flight.set_function(lambda: self.in_flight)

    def start(self) -> None:
        slots = asyncio.Semaphore(self.workers)  # every model's batches share the workers
        for name, served in self.models.items():
            self.batchers[name] = Batcher(served.run, self.executor, slots, self.limits.max_batch_tokens,
                                          self.limits.max_wait_ms / 1e3, self.limits.max_queue_rows,
                                          on_batch=self.metrics.batch_observer(name))
            self.metrics.watch_queue(name, self.batchers[name])
            self.batchers[name].start()

    def drain(self) -> None:
        """Shutdown began: /readyz says so and queued rows run without waiting for more."""
        self.draining = True
        for batcher in self.batchers.values():
            batcher.drain()

    def pick(self, name: str, task: str):
        served = self.models.get(name)
        if served is None:
            listed = ", ".join(f"{key} ({model.task})" for key, model in self.models.items())
            raise HTTPException(422, f"unknown model {name!r}; this server serves: {listed}")
        if served.task != task:
            endpoint = "/v1/score" if served.task == "sentiment" else "/v1/translate"
            raise HTTPException(422, f"model {name!r} is a {served.task} model: POST {endpoint}")
        return served

    def check_count(self, texts: list[str]) -> None:
        if len(texts) > self.limits.max_texts:
            raise HTTPException(413, f"{len(texts):,} texts in one request; the limit is {self.limits.max_texts:,} "
                                     "(--max-texts): split the request")

    async def results(self, request: Request, name: str, job) -> list[dict]:
        """Queue the job and wait for its rows: 503 when the queue is full, 504 past the deadline; a
        client that leaves first takes its queued rows with it."""
        batcher = self.batchers[name]
        try:
            future = batcher.submit(job)
        except QueueFull as error:
            raise HTTPException(503, f"model {name!r} is busy: {error}; retry later",
                                headers={"Retry-After": str(self.limits.retry_after_s)}) from None
        left = asyncio.ensure_future(disconnected(request))
        done, _ = await asyncio.wait({future, left}, timeout=self.limits.timeout_s, return_when=asyncio.FIRST_COMPLETED)
        left.cancel()
        if future in done:
            self.metrics.rows.labels(name).inc(len(job.payloads))
            return future.result()
        reason = "disconnected" if left in done else "deadline"
        self.metrics.cancelled.labels(name, reason).inc()
        self.metrics.cancelled_rows.labels(name, reason).inc(batcher.cancel(job))
        if reason == "disconnected":
            raise HTTPException(499, "client closed the request")  # nobody reads it; counted in the metrics
        raise HTTPException(504, f"not answered within {self.limits.timeout_s:g} s (--timeout); the queue holds "
                                 f"{batcher.queued_rows} rows: retry later or send fewer texts")


async def disconnected(request: Request) -> None:
    """Returns when the client has closed the connection (the body was read already)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def create_app(models: dict, limits: Limits, executor, workers: int) -> FastAPI:
    """The application over loaded models ({name: ServedClassifier | ServedTranslator})."""
    metrics = Metrics()
    service = Service(models, limits, executor, workers, metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service.start()
        yield
        service.drain()
        for batcher in service.batchers.values():
            await batcher.stop()

    app = FastAPI(title="attn-serve", version=catalog.version(), lifespan=lifespan, redoc_url=None,
                  summary="Sentiment scores and translations from attn-onnx bundles, micro-batched.")
    app.state.service = service
    install_error_handlers(app)
    add_routes(app, service)
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)
    app.add_middleware(Admission, service=service)
    app.add_middleware(metrics.middleware)
    return app


def add_routes(app: FastAPI, service: Service) -> None:
    @app.post("/v1/score", response_model=Results, responses=PROBLEMS)
    async def score(body: ScoreRequest, request: Request):
        """Sentiment per text, as attn-score's rows: probability, label, with `explain` K the K most attended
        tokens, and the screening (token_count, oov_share, truncated_tokens, status); a row whose status is
        not ok gets label 'unknown' and no probability unless `force_labels`."""
        served = service.pick(body.model, "sentiment")
        service.check_count(body.texts)
        job = served.job(body.texts, body.explain, body.threshold, body.force_labels)
        return JSONResponse({"model": body.model, "results": await service.results(request, served.name, job)})

    @app.post("/v1/translate", response_model=Results, responses=PROBLEMS)
    async def translate(body: TranslateRequest, request: Request):
        """A translation per sentence: text, length-normalised log-probability and attn-translate's per-row
        diagnostics (source_tokens, segments, windowed, copied, missing, oov)."""
        served = service.pick(body.model, "translation")
        service.check_count(body.texts)
        job = served.job(body.texts, body.beam_size)
        return JSONResponse({"model": body.model, "results": await service.results(request, served.name, job)})

    @app.get("/v1/models")
    async def models():
        """The served models, as `attn-score --list-models` lists them."""
        return {"models": [catalog.describe(served.model.bundle.path, name) for name, served in service.models.items()]}

    @app.get("/healthz")
    async def healthz():
        """The process is alive and its event loop answers."""
        return {"status": "ok"}

    @app.get("/readyz", responses={503: {"model": Problem}})
    async def readyz():
        """Ready: every model loaded and its graphs' sha256 verified at start-up, and not shutting down."""
        if service.draining:
            return JSONResponse({"error": "shutting down: finishing the requests in flight"}, 503)
        return {"status": "ready", "models": {name: {"task": served.task, "sha256_verified": True}
                                              for name, served in service.models.items()}}

    @app.get("/metrics", response_class=Response)
    async def metrics():
        """Prometheus text: requests, rows, batch sizes, queue depth, latency."""
        return Response(service.metrics.exposition(), media_type=service.metrics.content_type)
