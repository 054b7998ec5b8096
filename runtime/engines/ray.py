"""Score and translate datasets on Ray Data (the optional `ray` extra: pip install 'attn-onnx[ray]').

    import ray, runtime.engines.ray as rd
    ds = ray.data.read_parquet("s3://bucket/reviews/")              # any Ray Dataset with a text column
    rd.score_dataset(ds, model="imdb", id_column="id", workers=4).write_parquet("s3://bucket/scores/")

`score_dataset` / `translate_dataset` add a `map_batches` stage whose callable class loads and
verifies the bundle once per actor (an actor pool of `workers`, `cpus_per_worker` CPUs each, which
are also onnxruntime's intra-op threads). The bundle travels in Ray's object store: the driver loads
and verifies it (sha256 of every graph) and puts its files' bytes there once; each actor writes them
to a private temporary folder and loads them with the same verification. So a worker never needs
the bundle on its own disk, and every actor runs exactly the bytes the driver checked, even if
someone re-exports the bundle folder during the job.

`score_files` / `translate_files` are what `attn-score --engine ray` and `attn-translate --engine
ray` run: many files (CSV, TSV, JSONL, text lines, Parquet; .gz) read with the same reader and the
same column rules as the plain commands, partitioned output written to a temporary folder that is
renamed to OUTDIR with a `_SUCCESS` marker only once every partition is written.

`runtime.cli` imports this module only once `--engine ray` runs, and Ray only when a job starts; the
commands' Click options and summary line live in `runtime.cli`, so nothing here imports Click.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Iterator

from runtime.bundle import MANIFEST, Bundle, BundleError
from runtime.engines.local import DEFAULT_CHUNK_ROWS, TRANSLATE_CHUNK_ROWS
from runtime.errors import AttnError, EngineError, InputError, OutputError, require_extra
from runtime.io.atomic import Interrupted
from runtime.io.diagnostics import DIAGNOSTIC_TYPES, DIAGNOSTICS, LIST_DIAGNOSTICS, Notes, row_diagnostics
from runtime.io.inputs import InputFile, check_inputs, expand_inputs, file_rows
from runtime.io.parquet import is_text_type
from runtime.io.writers import TRANSLATION_HEADER, score_header, score_row_cells, translation_row_cells
from runtime.models.classifier import DEFAULT_BATCH_TOKENS
from runtime.session import SessionOptions

__all__ = ["score_files", "translate_files", "score_dataset", "translate_dataset", "read_files", "expand_inputs",
           "connect", "default_workers", "EngineError", "SUCCESS"]

SUCCESS = "_SUCCESS"  # completion marker, written after every partition (Hadoop/Spark convention)
READ_ROWS = 4096  # rows per table a file reader yields
# one file reader per this many scoring/translating actors: a reader parses ~58,000 IMDB reviews/s, an
# actor scores ~650/s on one core (2026-12-02); unbounded, Ray starts a worker process per read task
ACTORS_PER_READER = 16
SCORE_ROWS = DEFAULT_CHUNK_ROWS  # rows per scoring batch (per actor call); sorted by length inside, as attn-score
TRANSLATE_ROWS = TRANSLATE_CHUNK_ROWS  # sentences per translation batch, as attn-translate's chunk
CONNECT_TIMEOUT_S = 10  # --address: a cluster that does not answer in this time is reported, never waited on


def require_ray():
    """The `ray` module with Ray Data, or the MissingExtraError naming the extra to install."""
    return require_extra("ray", "ray", "ray.data", "pyarrow", needed_by="the Ray engine", what="Ray Data and pyarrow")


# === Bundle shipping ===
def pack_bundle(model, task: str) -> dict:
    """Load and verify the bundle here (fails before any job starts), then return its files as bytes:
    {"name", "files": {relative name: bytes}} for the object store."""
    from runtime import resolve_bundle_path

    bundle = Bundle.load(resolve_bundle_path(model), verify=True)
    if bundle.task != task:
        command = "attn-translate" if bundle.task == "translation" else "attn-score"
        raise BundleError(f"{bundle.path}: task is {bundle.task!r}, this needs a {task!r} bundle (use {command})")
    names = [MANIFEST] + [graph["file"] for graph in bundle.manifest["graphs"].values()]
    return {"name": bundle.path.name, "files": {name: (bundle.path / name).read_bytes() for name in names}}


def _unpack_and_load(packed: dict, **options):
    """In an actor: write the bundle's bytes to a private folder, load (sha256-verified), drop the folder
    (onnxruntime holds the graphs in memory from then on)."""
    import ray

    import runtime

    packed = ray.get(packed[0])  # (reference,): nested, so Ray leaves resolving it to us
    with tempfile.TemporaryDirectory(prefix="attn-bundle-") as folder:
        root = Path(folder) / packed["name"]
        for name, data in packed["files"].items():
            target = (root / name).resolve()
            if root.resolve() not in target.parents:
                raise BundleError(f"{packed['name']}: graph file name {name!r} leaves the bundle folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        return runtime.load(root, verify=True, **options)


def _text_list(column, name: str) -> list[str]:
    """A pyarrow column as texts: null -> "" (scored, never dropped, as attn-score does)."""
    import pyarrow as pa

    if not is_text_type(pa, column.type):
        raise InputError(f"column {name!r} is {column.type}, expected text")
    return ["" if text is None else text for text in column.to_pylist()]


def _passed_through(batch, keep_columns, id_column) -> dict:
    """The kept columns and the id (as text, like attn-score's output) of a pyarrow batch."""
    import pyarrow as pa

    columns = {name: batch.column(name) for name in keep_columns}
    if id_column:
        columns["id"] = batch.column(id_column).cast(pa.string())
    return columns


class _Scorer:
    """Ray Data callable class: one Classifier per actor, built from the bundle in the object store."""

    def __init__(self, packed, text_column, id_column, keep_columns, explain, threshold, provider, threads,
                 batch_tokens, session_options=None, force_labels=False, csv_cells=False):
        self.model = _unpack_and_load(packed, provider=provider, threads=threads, batch_tokens=batch_tokens,
                                      session_options=session_options)
        self.text_column, self.id_column, self.keep_columns = text_column, id_column, list(keep_columns)
        self.explain, self.threshold, self.force_labels, self.csv_cells = explain, threshold, force_labels, csv_cells

    def __call__(self, batch):
        import pyarrow as pa

        from runtime.io.parquet import diagnostic_fields, explanation_type, explanation_value

        texts = _text_list(batch.column(self.text_column), self.text_column)
        records = self.model.score(texts, self.threshold, self.force_labels, self.explain)  # attn-score's rows
        columns = _passed_through(batch, self.keep_columns, self.id_column)
        if self.csv_cells:  # the cells attn-score's CSV holds, made by the same function
            cells = [score_row_cells(record, self.explain > 0) for record in records]
            for index, name in enumerate(score_header(self.explain > 0)):
                columns[name] = pa.array([row[index] for row in cells], type=pa.string())
            return pa.table(columns)
        columns["probability"] = pa.array([r["probability"] for r in records], type=pa.float32())
        columns["label"] = pa.array([r["label"] for r in records], type=pa.string())
        if self.explain:  # as attn-score's Parquet: a list of {token, weight}
            columns["explanation"] = pa.array([explanation_value(r["explanation"]) for r in records],
                                              type=explanation_type(pa))
        for field in diagnostic_fields(pa):
            columns[field.name] = pa.array([r[field.name] for r in records], type=field.type)
        return pa.table(columns)


class _Translator:
    """Ray Data callable class: one Translator per actor."""

    def __init__(self, packed, text_column, id_column, keep_columns, beam_size, max_length, provider, threads,
                 session_options=None, csv_cells=False):
        self.model = _unpack_and_load(packed, provider=provider, threads=threads, session_options=session_options)
        self.text_column, self.id_column, self.keep_columns = text_column, id_column, list(keep_columns)
        self.beam_size, self.max_length, self.csv_cells = beam_size, max_length, csv_cells

    def __call__(self, batch):
        import pyarrow as pa

        sources = _text_list(batch.column(self.text_column), self.text_column)
        results = self.model.translate(sources, beam_size=self.beam_size, max_length=self.max_length)
        columns = _passed_through(batch, self.keep_columns, self.id_column)
        diagnostics = [row_diagnostics(result) for result in results]
        if self.csv_cells:  # the cells attn-translate's CSV holds, made by the same function
            cells = [translation_row_cells(*row) for row in zip(sources, results, diagnostics)]
            for index, name in enumerate(TRANSLATION_HEADER):
                columns[name] = pa.array([row[index] for row in cells], type=pa.string())
            return pa.table(columns)
        columns["source"] = pa.array(sources, type=pa.string())
        columns["translation"] = pa.array([result.text for result in results], type=pa.string())
        columns["score"] = pa.array([result.score for result in results], type=pa.float32())  # as attn-translate
        for name in DIAGNOSTICS:  # lists as JSON text, as the explanation column
            values = [d[name] for d in diagnostics]
            columns[name] = pa.array([json.dumps(v, ensure_ascii=False) for v in values] if name in LIST_DIAGNOSTICS
                                     else values, type=DIAGNOSTIC_TYPES[name](pa))
        return pa.table(columns)


def _actor_pool(workers):
    """ActorPoolStrategy from an int (fixed pool) or a (min, max) pair (autoscaling)."""
    ray = require_ray()
    if isinstance(workers, tuple):
        return ray.data.ActorPoolStrategy(min_size=workers[0], max_size=workers[1])
    if int(workers) < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    return ray.data.ActorPoolStrategy(size=int(workers))


def score_dataset(ds, model=None, *, text_column: str = "text", id_column: str | None = None, keep_columns=(),
                  explain: int = 0, threshold: float = 0.5, workers: int | tuple[int, int] = 1,
                  cpus_per_worker: float = 1, provider: str = "auto", batch_rows: int = SCORE_ROWS,
                  batch_tokens: int = DEFAULT_BATCH_TOKENS, force_labels: bool = False,
                  session_options: SessionOptions | dict | None = None, csv_cells: bool = False):
    """A Dataset with, per row of `ds`: the `keep_columns`, `id` (the id column as text, when
    `id_column` is given), `probability` (float32, as `Classifier.score`: null for a row that is not
    ok unless `force_labels`), `label`, with `explain=K` an `explanation` (the K most attended tokens,
    a list of {token, weight}, as attn-score's Parquet), then token_count, oov_share, truncated_tokens
    and status. With `csv_cells` every result column is instead the text attn-score writes in its CSV.
    Lazy, like every Ray Dataset: nothing runs until it is written or consumed. The bundle is
    loaded and verified here first, so a bad bundle fails before any job. `session_options` are
    onnxruntime's settings per actor (as `runtime.load`); their threads default to `cpus_per_worker`."""
    return _map_on_actors(ds, _Scorer, model, "sentiment", batch_rows, workers, cpus_per_worker, session_options,
                          text_column=text_column, id_column=id_column, keep_columns=tuple(keep_columns),
                          explain=explain, threshold=threshold, provider=provider, batch_tokens=batch_tokens,
                          force_labels=force_labels, csv_cells=csv_cells)


def _map_on_actors(ds, actor, model, task: str, batch_rows: int, workers, cpus_per_worker: float, session_options,
                   **arguments):
    """`ds` through a pool of `actor`s, each built from the bundle (loaded and verified here first, then
    put in the object store once) with onnxruntime threads defaulting to `cpus_per_worker`."""
    ray = require_ray()
    packed = (ray.put(pack_bundle(model, task)),)
    options = SessionOptions.of(session_options)
    threads = options.threads or max(1, int(cpus_per_worker))
    return ds.map_batches(actor, batch_size=batch_rows, batch_format="pyarrow", compute=_actor_pool(workers),
                          num_cpus=cpus_per_worker,
                          fn_constructor_kwargs=dict(packed=packed, threads=threads,
                                                     session_options=options, **arguments))


def translate_dataset(ds, model="spa-eng", *, text_column: str = "text", id_column: str | None = None, keep_columns=(),
                      beam_size: int = 4, max_length: int | None = None, workers: int | tuple[int, int] = 1,
                      cpus_per_worker: float = 1, provider: str = "auto", batch_rows: int = TRANSLATE_ROWS,
                      session_options: SessionOptions | dict | None = None, csv_cells: bool = False):
    """A Dataset with, per row of `ds`: the `keep_columns`, `id` (when `id_column` is given),
    `source`, `translation` and `score` (float32 length-normalised log-probability), as
    `Translator.translate`, then runtime.io.diagnostics.DIAGNOSTICS (`copied` and `missing` as JSON
    lists). With `csv_cells` every result column is instead the text attn-translate writes in its CSV."""
    if beam_size < 1:
        raise ValueError(f"beam size must be >= 1, got {beam_size}")
    return _map_on_actors(ds, _Translator, model, "translation", batch_rows, workers, cpus_per_worker, session_options,
                          text_column=text_column, id_column=id_column, keep_columns=tuple(keep_columns),
                          beam_size=beam_size, max_length=max_length, provider=provider, csv_cells=csv_cells)


# === Files (the --engine ray commands): planned by runtime.io.inputs, read in Ray tasks ===
def _read_files(task: dict, encoding: str, quoting: str) -> Iterator:
    """Ray Data generator: the input file of `task` as tables of file, row, id, text."""
    import pyarrow as pa

    for index in range(len(task["name"])):
        name, fmt, text_column, id_column = (str(task[field][index])
                                             for field in ("name", "format", "text_column", "id_column"))
        file = InputFile(name, os.fsdecode(bytes(task["path"][index])), fmt, text_column, id_column)
        rows = []
        for row in file_rows(file, encoding, quoting):
            rows.append(row)
            if len(rows) == READ_ROWS:
                yield _rows_table(pa, file.name, rows)
                rows = []
        if rows:
            yield _rows_table(pa, file.name, rows)


def _rows_table(pa, name: str, rows: list[tuple[int, str, str]]):
    numbers, ids, texts = zip(*rows)
    return pa.table({"file": pa.array([name] * len(rows), pa.string()), "row": pa.array(numbers, pa.int64()),
                     "id": pa.array(ids, pa.string()), "text": pa.array(texts, pa.string())})


def read_files(files: list[InputFile], encoding: str = "utf-8", quoting: str = "auto", readers: int = 1):
    """A Dataset of (file, row, id, text) over checked input files; each file is one read task, at most
    `readers` of them at a time (each in a worker process Ray starts and keeps for the job)."""
    ray = require_ray()
    # the path as bytes: a file name that is not UTF-8 cannot travel as Arrow text
    items = [{"name": f.name, "path": os.fsencode(f.path), "format": f.format, "text_column": f.text_column,
              "id_column": f.id_column} for f in files]
    # readers are light next to scoring: they take no CPU slot, so the scoring actors can hold them all
    return ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
        _read_files, batch_size=1, fn_kwargs=dict(encoding=encoding, quoting=quoting), num_cpus=0,
        concurrency=max(1, min(readers, len(items))))


# === Output ===
def _new_output_folder(outdir: str) -> Path:
    """OUTDIR as an absolute path that does not exist yet, in a folder that does (never overwritten)."""
    final = Path(os.path.abspath(outdir))
    if final.exists():
        raise OutputError(f"{outdir}: already exists; the Ray engine writes a new folder "
                          "(pick another name or remove it)")
    if not final.parent.is_dir():
        raise OutputError(f"{outdir}: output folder's parent {str(final.parent)!r} does not exist")
    return final


def _count_written(folder: Path, fmt: str, files: list[InputFile]) -> int:
    """Rows in the written partitions, checked against the inputs: every file's rows 1..n exactly
    once (rows in == rows out). Reads only the file and row columns."""
    import pyarrow.compute as pc

    table = _read_written(folder, fmt, ["file", "row"])
    stats = table.group_by("file").aggregate([("row", "count"), ("row", "count_distinct"), ("row", "max")])
    by_file = {r["file"]: r for r in stats.to_pylist()}
    for file in files:
        found = by_file.get(file.name)
        if found is None or not (found["row_count"] == found["row_count_distinct"] == found["row_max"]):
            raise EngineError(f"{file.name}: the output does not hold each of its rows exactly once; output discarded")
    if len(by_file) != len(files) or pc.min(table["row"]).as_py() < 1:
        raise EngineError("the output holds rows of no input file; output discarded")
    return table.num_rows


def _read_written(folder: Path, fmt: str, columns: list[str], types: dict | None = None):
    """These columns of the partitions written into `folder`, as one pyarrow table."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    types = {"file": lambda pa: pa.string(), "row": lambda pa: pa.int64(), **(types or {})}
    parts = sorted(p for p in folder.iterdir() if not p.name.startswith((".", "_")))
    if fmt == "parquet":
        tables = [pq.read_table(p, columns=columns) for p in parts]
    else:
        convert = pacsv.ConvertOptions(include_columns=columns, column_types={c: types[c](pa) for c in columns})
        tables = [pacsv.read_csv(p, parse_options=pacsv.ParseOptions(newlines_in_values=True), convert_options=convert)
                  for p in parts]
    return pa.concat_tables(tables) if tables else pa.table({c: pa.array([], types[c](pa)) for c in columns})


def partial_folder(outdir: str) -> Path:
    """The hidden temporary folder beside OUTDIR that a job writes into (`.OUTDIR.partial-XXXXXXXX`)."""
    final = Path(os.path.abspath(outdir))
    return final.parent / f".{final.name}.partial-{uuid.uuid4().hex[:8]}"


def write_output(ds, outdir: str, fmt: str, files: list[InputFile], summary: dict, partial: Path | None = None) -> int:
    """Write `ds` partitioned (Parquet or CSV) into a temporary folder beside OUTDIR; check rows in ==
    rows out; add the _SUCCESS marker; rename to OUTDIR, never over anything that appeared there
    meanwhile (an empty folder included). On any failure the temporary folder is removed: OUTDIR
    appears complete or not at all. Returns the rows written."""
    if fmt not in ("parquet", "csv"):
        raise OutputError(f"--format {fmt}: the Ray engine writes parquet or csv")
    final = _new_output_folder(outdir)
    partial = partial or partial_folder(outdir)
    try:
        (ds.write_parquet if fmt == "parquet" else ds.write_csv)(str(partial))
        if not partial.is_dir():  # Ray writes nothing for an empty dataset; inputs always have rows
            raise EngineError("the job wrote no output")
        rows = _count_written(partial, fmt, files)
        marker = {**summary, "rows": rows, "files": len(files), "format": fmt,
                  "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        (partial / SUCCESS).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")
        rename_new_folder(partial, final)
    except FileExistsError:
        shutil.rmtree(partial, ignore_errors=True)
        raise OutputError(f"{outdir}: appeared while the job ran (made by someone else); it is left as it is and this "
                         "job's output was discarded") from None
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return rows


def rename_new_folder(source: Path, target: Path) -> None:
    """Rename `source` to `target` only if nothing is at `target`, not even an empty folder (which a plain
    rename() silently replaces): Linux's renameat2(RENAME_NOREPLACE), atomic; elsewhere, or on a file
    system without it, a check just before the rename. FileExistsError when `target` exists."""
    import ctypes

    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is not None:
        at_fdcwd, rename_noreplace = -100, 1
        if renameat2(at_fdcwd, os.fsencode(source), at_fdcwd, os.fsencode(target), rename_noreplace) == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.ENOSYS, errno.EINVAL):  # EEXIST above all
            raise (FileExistsError if code == errno.EEXIST else OSError)(code, os.strerror(code), str(target))
    if os.path.lexists(target):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(target))
    os.rename(source, target)


# === Running a job ===
def connect(address: str | None) -> bool:
    """Join the cluster at `address`, or start a local Ray with this machine's cores. True when this
    call started/joined Ray (and `disconnect` should leave it); False when Ray was already initialised."""
    ray = require_ray()
    if ray.is_initialized():
        return False
    options = dict(include_dashboard=False, logging_level="ERROR", log_to_driver=False, configure_logging=True)
    if address:
        check_reachable(address)
    try:
        if address:
            ray.init(address=address, **options)
        else:
            ray.init(num_cpus=os.cpu_count() or 1, **options)
    except Exception as error:  # Ray raises bare Exception when its raylet misses the start-up window
        raise EngineError(f"cannot {'reach the Ray cluster at ' + address if address else 'start a local Ray'}: "
                          f"{str(error).splitlines()[0] if str(error) else type(error).__name__}") from None
    return True


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """EngineError naming `address` when nothing accepts a connection there within `timeout` seconds:
    ray.init would retry for minutes, silently. 'auto' and names without a port are left to Ray."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as error:
        reason = (error.strerror or str(error) or type(error).__name__).lower()
        raise EngineError(f"cannot reach the Ray cluster at {address}: {reason} "
                          "(is `ray start --head` running there?)") from None


def _quiet_data_context():
    """No progress bars or execution banners: the commands report one summary line themselves."""
    import logging

    ray = require_ray()
    logging.getLogger("ray.data").setLevel(logging.CRITICAL)  # a failed job is reported once, by us
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    context.enable_auto_log_stats = False
    context.execution_options.preserve_order = True  # partitions follow the input order: files, then rows
    # actors that never start (no CPUs, workers failing to register): fail, never hang
    context.wait_for_min_actors_s = 600
    return context


def default_workers(cpus_per_worker: float) -> int:
    """All the cluster's CPUs, `cpus_per_worker` each."""
    ray = require_ray()
    return max(1, int(ray.cluster_resources().get("CPU", 1) // cpus_per_worker))


def _check_capacity(workers: int, cpus_per_worker: float) -> None:
    """A pool larger than the cluster would wait for CPUs forever: refuse it up front."""
    ray = require_ray()
    cpus = ray.cluster_resources().get("CPU", 0)
    if workers * cpus_per_worker > cpus:
        raise EngineError(f"--workers {workers} x --cpus-per-worker {cpus_per_worker:g} needs "
                          f"{workers * cpus_per_worker:g} CPUs; the Ray cluster has {cpus:g}")


def user_error(error: BaseException) -> BaseException:
    """The InputError/BundleError raised in a worker, out of Ray's wrappers; else `error` itself."""
    seen, pending = set(), [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        cause = getattr(current, "cause", None)  # RayTaskError: the exception raised in the worker
        if isinstance(cause, BaseException) and cause is not current:
            pending.append(cause)
            continue
        if isinstance(current, AttnError):
            message = str(current).splitlines()[0] if str(current) else type(current).__name__
            try:
                return type(current)(message)
            except TypeError:  # a subclass with another constructor
                return EngineError(message)
        pending += [current.__cause__, current.__context__]
    return error


@contextlib.contextmanager
def _ray_chatter_into(log_fd: int):
    """Send file descriptor 2 to the log `log_fd` while Ray runs: Ray's C++ core worker, its Python
    loggers and warnings write there, not between our one-line messages. Restored afterwards."""
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(log_fd, 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


class _Signals:
    """SIGTERM, SIGHUP and SIGINT raise `Interrupted` in the driver while a job may still be cut short
    (`armed`), so the partial folder is removed on the way out and the command exits 128 + N with its
    `interrupted` line; once the output is renamed into place, or while Ray shuts down (`raising`
    off), they are only remembered. `arm()` again after ray.init, which installs a SIGTERM handler of
    its own (it exits 15)."""

    NAMES = ("SIGTERM", "SIGHUP", "SIGINT")

    def __init__(self):
        self.received: int | None = None
        self.armed = self.raising = True
        self._previous: dict = {}

    def arm(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (getattr(signal, name) for name in self.NAMES if hasattr(signal, name)):
            if signum == signal.SIGINT and signal.getsignal(signum) is signal.SIG_IGN:
                continue  # a background job's ignored Ctrl-C stays ignored, as in the plain command
            previous = signal.signal(signum, self._handle)
            self._previous.setdefault(signum, previous)

    def _handle(self, signum, frame) -> None:
        first = self.received is None
        self.received = self.received or signum
        if self.armed and self.raising and first:
            raise Interrupted(signum)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def _run(build, inputs, outdir, fmt, address, workers, cpus_per_worker, input_format, encoding, quoting,
         text_column, id_column, summary) -> dict:
    started = time.perf_counter()
    require_ray()
    signals = _Signals()
    signals.arm()
    log_fd, log_name = tempfile.mkstemp(prefix="attn-ray-", suffix=".log")  # private: 0600, a new name (O_EXCL)
    partial = partial_folder(outdir)
    try:
        files = check_inputs(inputs, input_format, encoding, quoting, text_column, id_column)
        _new_output_folder(outdir)  # fail before starting Ray
        with _ray_chatter_into(log_fd):
            started_ray = False
            try:
                started_ray = connect(address)
                signals.arm()
                ray_started = time.perf_counter()
                _quiet_data_context()
                workers = workers or default_workers(cpus_per_worker)
                _check_capacity(workers, cpus_per_worker)
                readers = -(-workers // ACTORS_PER_READER)
                ds = build(read_files(files, encoding, quoting, readers), workers)
                rows = write_output(ds, outdir, fmt, files, {**summary, "workers": workers, "engine": "ray"}, partial)
                signals.armed = False  # OUTDIR is complete: a signal now changes nothing
                return {"rows": rows, "files": len(files), "workers": workers, "seconds": time.perf_counter() - started,
                        "ray_start_seconds": ray_started - started}
            finally:
                signals.raising = False  # a signal during the clean-up must not cut it short
                if started_ray:
                    import ray

                    ray.shutdown()
                shutil.rmtree(partial, ignore_errors=True)  # a part a worker wrote after the failure
    except Exception as error:
        if signals.received and signals.armed:  # Ray's processes got the signal too and failed first
            raise Interrupted(signals.received) from None
        cause = user_error(error)
        if cause is error and not isinstance(error, AttnError):
            raise EngineError(f"the Ray job failed: {type(error).__name__}: "
                              f"{str(error).splitlines()[0] if str(error) else ''}") from None
        raise cause from None
    finally:
        os.close(log_fd)
        os.unlink(log_name)
        signals.restore()


def score_files(inputs, outdir: str, *, model=None, fmt: str = "parquet", address: str | None = None,
                workers: int | None = None, cpus_per_worker: float = 1, input_format: str = "auto",
                encoding: str = "utf-8", quoting: str = "auto", text_column: str | None = None,
                id_column: str | None = None, explain: int = 0, threshold: float = 0.5, provider: str = "auto",
                batch_tokens: int = DEFAULT_BATCH_TOKENS, force_labels: bool = False, chunk_rows: int = SCORE_ROWS,
                threads: int = 0, graph_optimization: str = "all", memory_arena: bool = True) -> dict:
    """`attn-score --engine ray`: score every row of every input file into OUTDIR (columns file, row,
    id, probability, label[, explanation], token_count, oov_share, truncated_tokens, status).
    Returns {"rows", "files", "workers", "seconds", "statuses"}. The command's options keep their
    meaning: `chunk_rows` rows per actor call (sorted by length inside), `threads` onnxruntime threads
    per actor (0: `cpus_per_worker`), `graph_optimization`, `memory_arena`."""
    options = SessionOptions(threads=threads, optimization=graph_optimization, memory_arena=memory_arena)

    def build(ds, pool):
        return score_dataset(ds, model, text_column="text", id_column="id", keep_columns=("file", "row"),
                             explain=explain, threshold=threshold, workers=pool, cpus_per_worker=cpus_per_worker,
                             provider=provider, batch_rows=chunk_rows, batch_tokens=batch_tokens,
                             force_labels=force_labels, session_options=options, csv_cells=fmt == "csv")

    require_ray()
    pack_bundle(model, "sentiment")  # a bad bundle fails before Ray starts
    done = _run(build, inputs, outdir, fmt, address, workers, cpus_per_worker, input_format, encoding, quoting,
                text_column, id_column, {"command": "attn-score", "model": str(model or "imdb")})
    return {**done, "statuses": score_statuses(Path(outdir), fmt)}


def score_statuses(folder: Path, fmt: str) -> dict[str, int]:
    """Rows per status (runtime.screening) in a written attn-score output folder."""
    import pyarrow.compute as pc

    table = _read_written(folder, fmt, ["status"], {"status": lambda pa: pa.string()})
    return {r["values"]: r["counts"] for r in pc.value_counts(table.column("status")).to_pylist()}


def translate_files(inputs, outdir: str, *, model="spa-eng", fmt: str = "parquet", address: str | None = None,
                    workers: int | None = None, cpus_per_worker: float = 1, input_format: str = "auto",
                    encoding: str = "utf-8", quoting: str = "auto", text_column: str | None = None,
                    id_column: str | None = None, beam_size: int = 4, max_length: int | None = None,
                    provider: str = "auto", threads: int = 0, graph_optimization: str = "all",
                    memory_arena: bool = True) -> dict:
    """`attn-translate --engine ray`: translate every row into OUTDIR (columns file, row, id, source,
    translation, score, then runtime.io.diagnostics.DIAGNOSTICS); `threads`, `graph_optimization` and
    `memory_arena` as in `score_files`. Returns {"rows", "files", "workers", "seconds", "notes"} (notes: the
    stderr lines naming the rows to look at)."""
    options = SessionOptions(threads=threads, optimization=graph_optimization, memory_arena=memory_arena)

    def build(ds, pool):
        return translate_dataset(ds, model, text_column="text", id_column="id", keep_columns=("file", "row"),
                                 beam_size=beam_size, max_length=max_length, workers=pool,
                                 cpus_per_worker=cpus_per_worker, provider=provider, session_options=options,
                                 csv_cells=fmt == "csv")

    require_ray()
    pack_bundle(model, "translation")  # a bad bundle fails before Ray starts
    done = _run(build, inputs, outdir, fmt, address, workers, cpus_per_worker, input_format, encoding, quoting,
                text_column, id_column, {"command": "attn-translate", "model": str(model)})
    return {**done, "notes": translation_notes(Path(outdir), fmt)}


def translation_notes(folder: Path, fmt: str) -> list[str]:
    """attn-translate's stderr notes (runtime.io.diagnostics.Notes) from a written output folder, rows
    named FILE:ROW in input order."""
    table = _read_written(folder, fmt, ["file", "row", *DIAGNOSTICS], DIAGNOSTIC_TYPES)
    notes = Notes(unit="row")
    for record in table.sort_by([("file", "ascending"), ("row", "ascending")]).to_pylist():
        diagnostics = {name: json.loads(record[name]) if name in LIST_DIAGNOSTICS else record[name]
                       for name in DIAGNOSTICS}
        notes.add(f"{record['file']}:{record['row']}", diagnostics)
    return notes.lines()
