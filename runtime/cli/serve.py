"""attn-serve: serve bundles over HTTP (FastAPI on uvicorn), micro-batched, with limits and metrics.

The models are loaded and their graphs' sha256 verified before the port opens. SIGTERM (or Ctrl-C)
stops accepting connections, runs what is queued at once, answers the requests in flight within
--grace-period and exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor

import click

from runtime import catalog
from runtime.catalog import version
from runtime.engines.local import plan_threads
from runtime.errors import AttnError
from runtime.models.classifier import DEFAULT_BATCH_TOKENS
from runtime.serve.limits import Limits
from runtime.session import MAX_THREADS, PROVIDERS, SessionOptions

DEFAULTS = Limits()


def load_models(specs: tuple[str, ...], provider: str, threads: int, max_batch_tokens: int) -> dict:
    """{name: served model}, each bundle loaded once and its graphs checked against their sha256."""
    import runtime
    from runtime.serve.models import model_name, served

    models = {}
    for spec in specs:
        name = model_name(spec)
        if name in models:
            raise click.UsageError(f"--model {spec}: a model named {name!r} is served already (a folder is served "
                                   "by its name)")
        model = runtime.load(spec, provider=provider, batch_tokens=max_batch_tokens, verify=True,
                             session_options=SessionOptions(threads=threads))
        models[name] = served(name, model)
    return models


def build_server(app, host: str, port: int, grace_period: float, max_connections: int, log_level: str,
                 access_log: bool):
    """(uvicorn server, bound socket). The server tells the application when shutdown begins."""
    import uvicorn

    class DrainingServer(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            super().handle_exit(sig, frame)
            asyncio.get_running_loop().call_soon_threadsafe(app.state.service.drain)

    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=access_log, lifespan="on",
                            limit_concurrency=max_connections, timeout_graceful_shutdown=grace_period)
    try:
        sock = config.bind_socket()
    except (OSError, SystemExit) as error:
        reason = getattr(error, "strerror", None) or error
        raise click.ClickException(f"cannot listen on {host}:{port}: {reason}") from None
    return DrainingServer(config), sock


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version(), "--version", prog_name="attn-serve", message="%(prog)s (attn-onnx) %(version)s")
@click.option("--model", "models", multiple=True, default=("imdb",), show_default=True,
              help="Bundle folder or shipped short name; repeat to serve several. Requests name a model by its short "
                   "name, or a folder by the folder's name.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
              help="Port (0: a free one, printed at start-up).")
@click.option("--workers", type=click.IntRange(0, MAX_THREADS), default=0, show_default=True,
              help="Inference threads, one single-threaded onnxruntime run each (0 = one per core on CPU, 1 on a GPU).")
@click.option("--provider", type=click.Choice(["auto", *PROVIDERS]), default="auto", show_default=True,
              help="onnxruntime execution provider.")
@click.option("--max-batch-tokens", type=click.IntRange(1), default=DEFAULT_BATCH_TOKENS, show_default=True,
              help="Token budget of a batch (rows x longest row); rows of concurrent requests are merged up to it.")
@click.option("--max-wait-ms", type=click.FloatRange(0, 10_000), default=DEFAULTS.max_wait_ms, show_default=True,
              help="Longest a row waits for others to fill its batch once a worker is free (0: it runs at once; "
                   "rows of concurrent requests still merge while the workers are busy).")
@click.option("--max-queue-rows", type=click.IntRange(1), default=DEFAULTS.max_queue_rows, show_default=True,
              help="Rows queued per model; a request that would pass it gets 503 with Retry-After.")
@click.option("--max-texts", type=click.IntRange(1), default=DEFAULTS.max_texts, show_default=True,
              help="Texts per request (more: 413).")
@click.option("--max-body-bytes", type=click.IntRange(1), default=DEFAULTS.max_body_bytes, show_default=True,
              help="Request body size (more: 413).")
@click.option("--timeout", "timeout_s", type=click.FloatRange(0.001), default=DEFAULTS.timeout_s, show_default=True,
              help="Seconds a request may take (more: 504; its queued rows are dropped).")
@click.option("--max-in-flight", type=click.IntRange(1), default=DEFAULTS.max_in_flight, show_default=True,
              help="Scoring and translating requests in flight at once; more get 503 with Retry-After before "
                   "their body is read.")
@click.option("--retry-after", type=click.IntRange(0), default=DEFAULTS.retry_after_s, show_default=True,
              help="Seconds a 503 tells the client to wait (Retry-After).")
@click.option("--grace-period", type=click.FloatRange(0), default=30.0, show_default=True,
              help="Seconds SIGTERM waits for the requests in flight before it cancels them.")
@click.option("--max-connections", type=click.IntRange(1), default=1024, show_default=True,
              help="Open connections and requests at once; past it uvicorn answers 503.")
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]), default="warning",
              show_default=True)
@click.option("--access-log/--no-access-log", default=False, show_default=True, help="Log every request (uvicorn's).")
@click.option("--list-models", is_flag=True, help="List the shipped models and exit.")
def main(models, host, port, workers, provider, max_batch_tokens, max_wait_ms, max_queue_rows, max_texts,
         max_body_bytes, timeout_s, max_in_flight, retry_after, grace_period, max_connections, log_level, access_log,
         list_models) -> None:
    """Serve sentiment and translation bundles over HTTP: POST /v1/score, POST /v1/translate, GET /v1/models,
    /healthz, /readyz, /metrics, /openapi.json."""
    if list_models:
        click.echo(catalog.table(catalog.listing()))
        return
    if max_texts > max_queue_rows:
        raise click.UsageError(f"--max-texts {max_texts} is above --max-queue-rows {max_queue_rows}: such a request "
                               "could never be queued")
    workers, threads = plan_threads(workers, 0, provider)
    try:
        served = load_models(models, provider, threads, max_batch_tokens)  # before the web stack: fails sooner
    except AttnError as error:
        raise click.ClickException(str(error)) from None
    try:
        from runtime.serve.app import create_app
    except ImportError as error:
        raise click.ClickException(f"attn-serve needs the serve extra: pip install 'attn-onnx[serve]' "
                                   f"({error})") from None
    limits = Limits(max_body_bytes, max_texts, max_batch_tokens, max_wait_ms, max_queue_rows, timeout_s, retry_after,
                    max_in_flight)
    logging.basicConfig(level=log_level.upper(), format="attn-serve: %(levelname)s: %(message)s")
    with ThreadPoolExecutor(workers, thread_name_prefix="attn-worker") as executor:
        app = create_app(served, limits, executor, workers)
        server, sock = build_server(app, host, port, grace_period, max_connections, log_level, access_log)
        bound_host, bound_port = sock.getsockname()[:2]
        bound_host = f"[{bound_host}]" if ":" in bound_host else bound_host  # an IPv6 address in a URL
        click.echo(f"attn-serve: serving {', '.join(served)} on http://{bound_host}:{bound_port} with {workers} "
                   f"worker{'s' * (workers != 1)}", err=True)
        for sig in (signal.SIGTERM, signal.SIGINT):  # uvicorn re-raises the signal it drained on once it is done;
            signal.signal(sig, lambda *_: None)  # with these handlers restored, that ends in exit 0
        server.run(sockets=[sock])
    click.echo("attn-serve: stopped", err=True)



if __name__ == "__main__":
    main(prog_name="attn-serve")
