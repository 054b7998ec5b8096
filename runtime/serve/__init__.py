"""attn-serve: an HTTP endpoint for the bundles (the `serve` extra: FastAPI on uvicorn, prometheus-client).

    batcher.py   micro-batching: concurrent requests' rows merged into token-budgeted batches, run on
                 the one-thread-per-core worker threads, bounded queue, cancellation (no web imports)
    models.py    what a served model does with a batch: the classifier's and the translator's rows
    limits.py    what a request may ask and how long it may wait (the command's defaults)
    app.py       the ASGI application: endpoints, request schemas (the OpenAPI schema), limits, metrics
    cli.py       the `attn-serve` command: loads and verifies the models, runs uvicorn, drains on SIGTERM

Nothing here is imported by `import runtime`; the web packages are imported only by app.py and cli.py.
"""
