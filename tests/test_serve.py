"""attn-serve as a real server process on 127.0.0.1 (a free port), over HTTP with httpx: results equal
the library's, every limit, SIGTERM drain, metrics that move.

Three servers: `server` (imdb + spa-eng, small limits), `slow` (rows wait 2 s for a batch unless the
token budget fills, deadline 1.5 s, a 4-row queue: 503, 504 and disconnects happen deterministically, with
no worker time) and one per drain test."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

import runtime
from runtime import catalog
from runtime.io.diagnostics import DIAGNOSTICS, row_diagnostics
from runtime.serve.process import ServerProcess

SENTENCES = ["Tom y María se casaron en 2015.", "Hola.", "No sé qué hacer con mi vida."]
LONG = " ".join(["the film was long and the story was good"] * 10)  # ~90 tokens: fills a 64-token budget alone


@pytest.fixture(scope="module")
def reviews():
    from runtime.io.tables import TableReader
    from tests.conftest import IMDB_TEST

    texts = []
    for number, (_, record) in enumerate(TableReader(str(IMDB_TEST)).records()):
        if number % 997 == 0:  # both labels (the file is sorted by label), short and long reviews
            texts.append(record["text"])
        if len(texts) == 24:
            return texts
    return texts


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    args = ["--model", "imdb", "--model", "spa-eng", "--max-texts", "8", "--max-body-bytes", "40000",
            "--max-wait-ms", "100"]
    with ServerProcess(args, log=tmp_path_factory.mktemp("serve") / "server.log") as process:
        yield process


@pytest.fixture(scope="module")
def slow(tmp_path_factory):
    args = ["--model", "imdb", "--workers", "1", "--max-wait-ms", "2000", "--max-batch-tokens", "64",
            "--timeout", "1.5", "--max-queue-rows", "4", "--max-texts", "4", "--retry-after", "3",
            "--max-in-flight", "2"]
    with ServerProcess(args, log=tmp_path_factory.mktemp("serve") / "slow.log") as process:
        yield process


@pytest.fixture(scope="module")
def classifier():
    return runtime.load("imdb")


def post(process, path, body, **options):
    return httpx.post(process.url + path, json=body, timeout=options.pop("timeout", 60), **options)


def metric(process, name: str, **labels) -> float:
    """One sample of /metrics (0 when absent)."""
    text = httpx.get(process.url + "/metrics", timeout=30).text
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        found = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if found and ",".join(sorted((found.group(1) or "").split(","))) == wanted:
            return float(found.group(2))
    return 0.0


def wait_for(condition, timeout_s: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def one_line_error(response) -> str:
    body = response.json()
    assert set(body) == {"error"}, body
    assert "\n" not in body["error"] and "Traceback" not in body["error"], body
    return body["error"]


# === Results ===
def test_concurrent_scores_equal_the_library(server, classifier, reviews):
    requests = [reviews[i : i + size] for i, size in zip((0, 1, 3, 6, 10, 13, 17, 22), (1, 2, 3, 4, 3, 4, 5, 2))]
    with ThreadPoolExecutor(len(requests)) as pool:
        answers = list(pool.map(lambda texts: post(server, "/v1/score", {"model": "imdb", "texts": texts,
                                                                         "explain": 3}), requests))
    texts = [text for chunk in requests for text in chunk]
    rows = [row for answer in answers for row in answer.json()["results"]]
    assert [answer.status_code for answer in answers] == [200] * len(requests)
    assert_rows_equal(rows, classifier.score(texts, explain=3))


def assert_rows_equal(rows: list[dict], expected: list[dict]) -> None:
    """Served rows against `Classifier.score`'s records: probabilities within 1e-6 (batch composition
    moves fp32 by ~1e-7), explanation weights within their 4-digit rounding, the rest equal."""
    assert len(rows) == len(expected)
    for row, want in zip(rows, expected):
        assert set(row) == set(want), (row, want)
        if want["probability"] is None:
            assert row["probability"] is None, row
        else:
            assert abs(row["probability"] - want["probability"]) <= 1e-6, (row, want)
        assert {k: v for k, v in row.items() if k not in ("probability", "oov_share", "explanation")} == \
               {k: v for k, v in want.items() if k not in ("probability", "oov_share", "explanation")}
        assert row["oov_share"] == pytest.approx(want["oov_share"], abs=1e-9) if want["oov_share"] is not None \
            else row["oov_share"] is None
        if "explanation" in want:
            assert [item["token"] for item in row["explanation"]] == [token for token, _ in want["explanation"]]
            np.testing.assert_allclose([item["weight"] for item in row["explanation"]],
                                       [weight for _, weight in want["explanation"]], atol=6e-5)


def test_rows_carry_the_screening_and_unknown_rows_no_label(server, classifier):
    """Empty, blank and Korean-into-English rows get their status and no confident answer; force_labels
    and threshold reach the record as in attn-score."""
    texts = ["", "   ", "정말 재미있는 영화였어요", "A wonderful, moving film.", "It was fine, I guess."]
    answer = post(server, "/v1/score", {"model": "imdb", "texts": texts})
    assert answer.status_code == 200, answer.text
    rows = answer.json()["results"]
    assert [row["status"] for row in rows[:3]] == ["empty", "empty", "other-script"]
    assert [(row["label"], row["probability"]) for row in rows[:3]] == [("unknown", None)] * 3
    assert_rows_equal(rows, classifier.score(texts))
    forced = post(server, "/v1/score", {"model": "imdb", "texts": texts, "force_labels": True, "threshold": 0.9})
    assert_rows_equal(forced.json()["results"], classifier.score(texts, threshold=0.9, force=True))


def test_concurrent_requests_share_batches(server):
    before_batches = metric(server, "attn_batch_rows_count", model="imdb")
    before_rows = metric(server, "attn_batch_rows_sum", model="imdb")
    texts = [f"a good film number {i}" for i in range(16)]
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda text: post(server, "/v1/score", {"model": "imdb", "texts": [text]}), texts))
    assert all(answer.status_code == 200 for answer in answers)
    batches = metric(server, "attn_batch_rows_count", model="imdb") - before_batches
    assert metric(server, "attn_batch_rows_sum", model="imdb") - before_rows == 16
    assert batches < 16, f"{batches:g} batches for 16 concurrent one-text requests: nothing was merged"


def test_translations_equal_the_library(server):
    answer = post(server, "/v1/translate", {"model": "spa-eng", "texts": SENTENCES, "beam_size": 2})
    assert answer.status_code == 200, answer.text
    expected = runtime.load("spa-eng").translate(SENTENCES, beam_size=2)
    rows = answer.json()["results"]
    assert [row["translation"] for row in rows] == [result.text for result in expected]
    np.testing.assert_allclose([row["score"] for row in rows], [result.score for result in expected], atol=1e-5)
    assert [{key: row[key] for key in DIAGNOSTICS} for row in rows] == [row_diagnostics(result) for result in expected]


def test_models_health_ready_and_schema(server):
    listed = httpx.get(server.url + "/v1/models").json()["models"]
    shipped = runtime.shipped_bundles()
    assert listed == [catalog.describe(shipped["imdb"], "imdb"), catalog.describe(shipped["spa-eng"], "spa-eng")]
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(server.url + "/readyz").json()
    assert ready["models"]["imdb"]["sha256_verified"] and ready["models"]["spa-eng"]["task"] == "translation"
    schema = httpx.get(server.url + "/openapi.json").json()
    assert {"/v1/score", "/v1/translate", "/v1/models"} <= set(schema["paths"])
    assert set(schema["components"]["schemas"]["ScoreRequest"]["properties"]) == {"model", "texts", "explain",
                                                                                   "threshold", "force_labels"}


def test_listens_on_loopback_only(server):
    """Nothing listens beyond --host (default 127.0.0.1): the kernel's table of listening sockets."""
    listening = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as handle:
            lines = handle.read().splitlines()[1:]
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == server.port:
                listening.append(local.rsplit(":", 1)[0])
    assert listening == ["0100007F"], listening  # 127.0.0.1, and no IPv6 or wildcard socket


# === Limits ===
def test_body_over_the_limit_is_413(server):
    big = {"model": "imdb", "texts": ["word " * 9000]}
    answer = post(server, "/v1/score", big)
    assert answer.status_code == 413 and "--max-body-bytes" in one_line_error(answer)

    def chunks():  # no Content-Length: the limit holds for a streamed body too
        for _ in range(10):
            yield b" " * 5000
    streamed = httpx.post(server.url + "/v1/score", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413 and "--max-body-bytes" in one_line_error(streamed)


def test_too_many_texts_is_413(server):
    answer = post(server, "/v1/score", {"model": "imdb", "texts": ["fine"] * 9})
    assert answer.status_code == 413 and "limit is 8 (--max-texts)" in one_line_error(answer)


@pytest.mark.parametrize("body, reason", [
    (b'{"model": "imdb", "texts": ["a"', "not valid JSON"),
    (b'["imdb"]', "must be a JSON object"),
    (b'{"model": "imdb", "texts": "one text"}', "field 'texts'"),
    (b'{"model": "imdb", "texts": ["ok", 3]}', "field 'texts.1'"),
    (b'{"model": "imdb", "texts": ["ok"], "explain": "2"}', "field 'explain'"),
    (b'{"model": "imdb", "texts": ["ok"], "explain": -1}', "field 'explain'"),
    (b'{"model": "imdb", "texts": ["ok"], "threshold": 1.5}', "field 'threshold'"),
    (b'{"model": "imdb", "texts": ["ok"], "force_labels": "yes"}', "field 'force_labels'"),
    (b'{"model": "imdb", "texts": ["ok"], "top_k": 2}', "unknown field 'top_k'; the fields are: model, texts, explain"),
    (b'{"texts": ["ok"]}', "field 'model' is missing"),
    (b'{"model": "yelp", "texts": ["ok"]}', "unknown model 'yelp'; this server serves: imdb (sentiment), spa-eng"),
    (b'{"model": "spa-eng", "texts": ["ok"]}', "a translation model: POST /v1/translate"),
])
def test_bad_requests_are_422_with_one_line(server, body, reason):
    answer = httpx.post(server.url + "/v1/score", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 422
    assert reason in one_line_error(answer)


def test_bad_translate_request_is_422(server):
    answer = post(server, "/v1/translate", {"model": "spa-eng", "texts": ["Hola."], "beam_size": 0})
    assert answer.status_code == 422 and "field 'beam_size'" in one_line_error(answer)
    answer = post(server, "/v1/translate", {"model": "imdb", "texts": ["Hola."]})
    assert answer.status_code == 422 and "POST /v1/score" in one_line_error(answer)


def test_metrics_move(server):
    samples = {"ok": ("attn_requests_total", {"endpoint": "/v1/score", "code": "200"}),
               "invalid": ("attn_requests_total", {"endpoint": "/v1/score", "code": "422"}),
               "rows": ("attn_rows_total", {"model": "imdb"}),
               "timed": ("attn_request_seconds_count", {"endpoint": "/v1/score"})}
    before = {key: metric(server, name, **labels) for key, (name, labels) in samples.items()}
    assert post(server, "/v1/score", {"model": "imdb", "texts": ["good", "bad", "fine"]}).status_code == 200
    assert post(server, "/v1/score", {"model": "imdb"}).status_code == 422
    after = {key: metric(server, name, **labels) for key, (name, labels) in samples.items()}
    assert {key: after[key] - before[key] for key in samples} == {"ok": 1, "invalid": 1, "rows": 3, "timed": 2}
    assert "attn_queue_rows{model=\"spa-eng\"} 0.0" in httpx.get(server.url + "/metrics").text


def test_full_queue_is_503_with_retry_after_and_deadline_504(slow):
    """A 4-row queue: 4 short rows wait for their batch (2 s) and hold it; one more row is refused at once.
    The waiting rows pass their 1.5 s deadline (504) and are dropped before any worker runs them."""
    batches, started = metric(slow, "attn_batch_rows_count", model="imdb"), time.monotonic()
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(post, slow, "/v1/score", {"model": "imdb", "texts": ["good", "bad", "fine", "ok"]})
        wait_for(lambda: metric(slow, "attn_queue_rows", model="imdb") == 4, what="4 queued rows")
        refused = post(slow, "/v1/score", {"model": "imdb", "texts": ["one more"]})
        assert refused.status_code == 503 and refused.headers["retry-after"] == "3"
        assert "--max-queue-rows" in one_line_error(refused)
        late = waiting.result()
    assert late.status_code == 504 and "(--timeout)" in one_line_error(late)
    assert metric(slow, "attn_cancelled_rows_total", model="imdb", reason="deadline") >= 4
    assert metric(slow, "attn_queue_rows", model="imdb") == 0
    time.sleep(max(0.0, started + 2.3 - time.monotonic()))  # past the 2 s the rows would have waited for a batch
    assert metric(slow, "attn_batch_rows_count", model="imdb") == batches, "a worker ran rows nobody waits for"
    control = post(slow, "/v1/score", {"model": "imdb", "texts": [LONG]})  # fills the 64-token budget: runs at once
    assert control.status_code == 200 and metric(slow, "attn_batch_rows_count", model="imdb") == batches + 1


def test_requests_past_the_in_flight_limit_are_503(slow):
    """Two requests wait for their batch; a third is refused before its body is read."""
    with ThreadPoolExecutor(2) as pool:
        waiting = [pool.submit(post, slow, "/v1/score", {"model": "imdb", "texts": ["good", "bad"]}) for _ in range(2)]
        wait_for(lambda: metric(slow, "attn_in_flight_requests") == 2, what="2 requests in flight")
        refused = post(slow, "/v1/score", {"model": "imdb", "texts": ["one more"]})
        assert refused.status_code == 503 and refused.headers["retry-after"] == "3"
        assert "--max-in-flight" in one_line_error(refused)
        assert [answer.result().status_code for answer in waiting] == [504, 504]
    assert metric(slow, "attn_in_flight_requests") == 0


def test_disconnected_client_costs_no_worker_time(slow):
    batches = metric(slow, "attn_batch_rows_count", model="imdb")
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout), httpx.Client(timeout=httpx.Timeout(60, read=0.3)) as client:
        client.post(slow.url + "/v1/score", json={"model": "imdb", "texts": ["good", "bad"]})
    wait_for(lambda: metric(slow, "attn_cancelled_requests_total", model="imdb", reason="disconnected") == 1,
             timeout_s=1.0, what="the disconnect to be noticed (before the 1.5 s deadline)")
    assert metric(slow, "attn_cancelled_rows_total", model="imdb", reason="disconnected") == 2
    time.sleep(max(0.0, started + 2.3 - time.monotonic()))  # past the 2 s the rows would have waited
    assert metric(slow, "attn_batch_rows_count", model="imdb") == batches
    assert metric(slow, "attn_queue_rows", model="imdb") == 0


# === Start-up and shutdown ===
def test_sigterm_drains_in_flight_requests_and_exits_0(tmp_path, classifier):
    """Rows waiting 10 s for a batch run at once on SIGTERM; a request whose body is still arriving is
    answered once it is complete; no new connection is accepted; exit 0."""
    args = ["--model", "imdb", "--max-wait-ms", "10000", "--grace-period", "20"]
    release = threading.Event()

    def slow_body():
        yield b'{"model": "imdb", '
        release.wait(30)
        yield b'"texts": ["what a slow, wonderful film"]}'

    with ServerProcess(args, log=tmp_path / "drain.log") as process, ThreadPoolExecutor(2) as pool:
        streaming = pool.submit(httpx.post, process.url + "/v1/score", content=slow_body(), timeout=60,
                                headers={"content-type": "application/json"})
        queued = pool.submit(post, process, "/v1/score", {"model": "imdb", "texts": ["good fun", "dull"]})
        wait_for(lambda: metric(process, "attn_queue_rows", model="imdb") == 2, what="2 queued rows")
        signalled = time.monotonic()
        process.terminate()
        answer = queued.result(timeout=30)
        assert answer.status_code == 200 and time.monotonic() - signalled < 5, "queued rows waited out --max-wait-ms"
        np.testing.assert_allclose([row["probability"] for row in answer.json()["results"]],
                                   classifier.predict(["good fun", "dull"]), atol=1e-6)
        wait_for(lambda: refused(process.port), what="the listening socket to close")
        assert process.process.poll() is None, "exited with a request in flight"
        release.set()
        late = streaming.result(timeout=30)
        assert late.status_code == 200 and late.json()["results"][0]["label"] in ("positive", "negative")
        assert process.process.wait(timeout=20) == 0
    assert "Traceback" not in process.stderr() and "attn-serve: stopped" in process.stderr()


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except OSError:
        return True


def test_start_up_verifies_the_models(tmp_path):
    """A graph that does not match its manifest's sha256 stops the server before it listens, in one line."""
    import shutil

    bundle = tmp_path / "imdb-copy"
    shutil.copytree(runtime.shipped_bundles()["imdb"], bundle)
    with open(bundle / "model.onnx", "ab") as graph:
        graph.write(b"\0")
    process = ServerProcess(["--model", str(bundle)], log=tmp_path / "bad.log")
    with pytest.raises(RuntimeError, match="exited with 1"):
        process.start()
    lines = [line for line in process.stderr().splitlines() if line.strip()]
    expected = (f"Error: {bundle / 'model.onnx'}: sha256 does not match the manifest (file changed or corrupt); "
                "re-export the bundle")
    assert lines == [expected], lines


def test_runtime_import_stays_light():
    """`import runtime` loads none of the web packages."""
    import subprocess
    import sys

    web = ("fastapi", "uvicorn", "starlette", "prometheus_client")
    code = f"import json, runtime, sys; print(json.dumps([m for m in {web!r} if m in sys.modules]))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == []
