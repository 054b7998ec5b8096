"""The specification both engines meet: the same input files give the same output records, field for
field, whether the local engine (one process, one file) or the Ray engine (Ray Data, many files into a
folder of partitions) runs them. Parametrized over the engine, the task and the output format.

The decisions it pins (issue 31):
- ids: a null, missing or binary id is an error naming the file and row on both engines
  (test_distributed.py::test_ray_refuses_the_ids_plain_refuses); any other id is written as text, as
  CSV writes it (true/false, 1.5, 7); a file without an id column gets its row number, which Ray, whose
  output mixes files, writes as FILE:ROW.
- Parquet: an explanation is a list of {token, weight (float32)} on both engines; a translation's score
  is float32; `copied` and `missing` are JSON text. CSV: the explanation is the same JSON text, the
  numbers are printed by the same functions (runtime.io.writers).
- Translation: 128 sentences per chunk on both (runtime.engines.local.TRANSLATE_CHUNK_ROWS).
Ray adds two columns of its own, `file` and `row`, that say where each record came from.

A real local Ray (tests/conftest.py::ray_local) and the shipped bundles; no mocks.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from runtime.cli import main as score_cli
from runtime.cli import translate_main as translate_cli
from runtime.engines import local, ray

LONG = " ".join(["An honest, well acted and often very funny film about growing up."] * 80)  # > 500 tokens
REVIEWS = ["A wonderful, moving film.", "Dull and far too long.", "", "😡😡😡", "정말 최고의 영화", LONG,
           'Not "bad", at all,\nreally.', "The plot was thin but the cast made it work."]
SENTENCES = ["¿Dónde está la estación?", "Tengo 3 hermanos y 2 gatos.", "", "Me gusta leer libros.",
             "El tren sale a las 10."]
TOLERANCE = {"probability": 1e-6, "score": 1e-4}  # float32 results of batches formed differently


def _inputs(root: Path, texts: list[str]) -> list[str]:
    """The same texts as CSV with text ids, JSONL with ids of every JSON type, Parquet with boolean ids
    and a dictionary-encoded text column holding a null, and text lines without ids."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root.mkdir()
    n = len(texts)
    with open(root / "texts.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["id", "text"])
        writer.writerows([f"r{i}", text] for i, text in enumerate(texts))
    ids = [7, 1.5, True, "s", 2.0, -3, False, "x y"][:n] + list(range(100, 100 + max(0, n - 8)))
    (root / "typed.jsonl").write_text("".join(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n"
                                              for i, t in zip(ids, texts)), encoding="utf-8")
    with_null = texts[:2] + [None] + texts[3:]
    pq.write_table(pa.table({"id": [i % 2 == 0 for i in range(n)],
                             "text": pa.array(with_null, pa.string()).dictionary_encode()}), root / "kinds.parquet")
    (root / "lines.txt").write_text("".join(text.replace("\n", " ") + "\n" for text in texts if text), encoding="utf-8")
    return sorted(path.name for path in root.iterdir())


def _read_local(path: Path, fmt: str) -> list[dict]:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _read_ray(folder: Path, fmt: str) -> dict[str, list[dict]]:
    """The Ray output folder's records per input file, in row order, without Ray's file and row columns."""
    parts = sorted(p for p in folder.iterdir() if not p.name.startswith(("_", ".")))
    rows = []
    for part in parts:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            rows += pq.read_table(part).to_pylist()
        else:
            with open(part, encoding="utf-8", newline="") as handle:
                rows += list(csv.DictReader(handle))
    by_file: dict[str, list[dict]] = {}
    for row in sorted(rows, key=lambda r: (r["file"], int(r["row"]))):
        by_file.setdefault(row.pop("file"), []).append(row)
        row.pop("row")
    return by_file


def _schema_without_ray_columns(path: Path):
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    return [(field.name, str(field.type)) for field in schema if field.name not in ("file", "row")]


TASKS = {  # task: (command, its texts, its options, the shipped bundle)
    "score": (score_cli, REVIEWS, ["--explain", "2"], "imdb"),
    "translate": (translate_cli, SENTENCES, ["--beam-size", "2"], "spa-eng"),
}


@pytest.fixture(scope="module")
def outputs(ray_local, tmp_path_factory):
    """Each (task, format): the local engine's output per input file, and the Ray engine's one job
    over the folder of all of them. Made once: the parametrized test below only compares."""
    made = {}
    for task, (command, texts, options, model) in TASKS.items():
        root = tmp_path_factory.mktemp(task)
        names = _inputs(root / "in", texts)
        for fmt in ("parquet", "csv"):
            local_out = {}
            for name in names:
                target = root / f"local-{fmt}-{name}.{fmt}"
                done = CliRunner().invoke(command, [str(root / "in" / name), "--model", model, *options, "-o",
                                                    str(target), "--workers", "1"])
                assert done.exit_code == 0, (name, done.output)
                local_out[name] = target
            folder = root / f"ray-{fmt}"
            done = CliRunner().invoke(command, ["--engine", "ray", str(root / "in"), "--model", model, *options,
                                                "--format", fmt, "-o", str(folder), "--workers", "1"])
            assert done.exit_code == 0, done.output
            made[task, fmt] = (local_out, folder)
    return made


def _same(field: str, a, b) -> bool:
    if field in TOLERANCE and a not in (None, "") and b not in (None, ""):
        return abs(float(a) - float(b)) <= TOLERANCE[field]
    return a == b


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
@pytest.mark.parametrize("task", list(TASKS))
def test_both_engines_write_the_same_records(outputs, task, fmt):
    local_out, folder = outputs[task, fmt]
    ray_records = _read_ray(folder, fmt)
    assert sorted(ray_records) == sorted(f"{folder.parent / 'in'}/{name}" for name in local_out), sorted(ray_records)
    for name, path in local_out.items():
        mine, theirs = _read_local(path, fmt), ray_records[f"{folder.parent / 'in'}/{name}"]
        assert len(mine) == len(theirs), name
        for number, (a, b) in enumerate(zip(mine, theirs), 1):
            if name == "lines.txt":  # no id column: the row number, which Ray prefixes with its file
                assert b["id"] == f"{folder.parent / 'in'}/{name}:{a['id']}", (name, number)
                a, b = {**a, "id": None}, {**b, "id": None}
            assert list(a) == list(b), (name, number, list(a), list(b))  # the same columns, in order
            different = [field for field in a if not _same(field, a[field], b[field])]
            assert not different, (name, number, {field: (a[field], b[field]) for field in different})
        if fmt == "parquet":
            part = next(p for p in sorted(folder.iterdir()) if p.suffix == ".parquet")
            assert _schema_without_ray_columns(part) == _schema_without_ray_columns(path), name


def test_the_outputs_hold_what_the_decisions_say(outputs):
    """The decided shapes themselves, so that both engines agreeing on something else fails too."""
    local_out, _ = outputs["score", "parquet"]
    rows = _read_local(local_out["typed.jsonl"], "parquet")
    assert [row["id"] for row in rows] == ["7", "1.5", "true", "s", "2.0", "-3", "false", "x y"]
    explanation = rows[0]["explanation"]
    assert [sorted(item) for item in explanation] == [["token", "weight"]] * 2
    assert rows[2]["status"] == "empty" and rows[4]["status"] == "other-script" and rows[0]["status"] == "ok"
    assert rows[5]["truncated_tokens"] > 0
    parquet_rows = _read_local(local_out["kinds.parquet"], "parquet")
    assert parquet_rows[2]["status"] == "empty" and parquet_rows[0]["id"] == "true"
    csv_rows = _read_local(outputs["score", "csv"][0]["texts.csv"], "csv")
    assert json.loads(csv_rows[0]["explanation"])[0]["token"] and csv_rows[2]["probability"] == ""
    translated = _read_local(outputs["translate", "parquet"][0]["texts.csv"], "parquet")
    assert "3" in translated[1]["translation"] and isinstance(json.loads(translated[1]["copied"]), list)
    assert local.TRANSLATE_CHUNK_ROWS == ray.TRANSLATE_ROWS == 128


def test_an_app_scores_and_translates_files_without_click(tmp_path):
    """runtime.engines.local is the commands' loop for apps: the same bytes as attn-score and
    attn-translate, a Summary back, and Click never imported."""
    import subprocess
    import sys

    source = tmp_path / "in.csv"
    source.write_text("id,text\na,A wonderful film.\nb,\nc,Tengo 3 gatos.\n", encoding="utf-8")
    code = f"""
import sys
from runtime.engines.local import score_file, translate_file
done = score_file({str(source)!r}, {str(tmp_path / 'scores.jsonl')!r})
print(done.rows, sorted(done.statuses.items()), done.provider)
done = translate_file({str(source)!r}, {str(tmp_path / 'out.csv')!r}, beam_size=2)
print(done.rows, 'click' in sys.modules)
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert run.returncode == 0, run.stderr
    scored = CliRunner().invoke(score_cli, [str(source), "--format", "jsonl"])
    assert (tmp_path / "scores.jsonl").read_text(encoding="utf-8") == scored.stdout
    from collections import Counter

    statuses = Counter(json.loads(line)["status"] for line in scored.stdout.splitlines())
    assert run.stdout.split("\n")[:2] == [f"3 {sorted(statuses.items())} cpu", "3 False"], run.stdout
    translated = CliRunner().invoke(translate_cli, [str(source), "--format", "csv", "--beam-size", "2"])
    assert (tmp_path / "out.csv").read_text(encoding="utf-8") == translated.stdout


def test_runtime_distributed_is_the_ray_engine_under_its_old_name():
    import importlib
    import sys

    sys.modules.pop("runtime.distributed", None)  # imported afresh, so its warning is seen here
    with pytest.warns(FutureWarning, match="import runtime.engines.ray"):
        old = importlib.import_module("runtime.distributed")
    assert all(getattr(old, name) is getattr(ray, name) for name in ray.__all__)
    assert {"score_files", "translate_files", "score_dataset", "translate_dataset"} <= set(ray.__all__)


def test_output_problems_are_output_errors_input_problems_input_errors(ray_local, tmp_path):
    """One meaning per error class (runtime/errors.py): what is wrong with the output is an OutputError
    on both engines, what is wrong with the input an InputError."""
    from runtime.errors import InputError, OutputError

    source = tmp_path / "in.csv"
    source.write_text("id,text\na,Good.\n", encoding="utf-8")
    with pytest.raises(OutputError, match="--format parquet writes a file"):
        local.score_file(str(source), None, fmt="parquet")
    (tmp_path / "out").mkdir()
    with pytest.raises(OutputError, match="already exists; the Ray engine writes a new folder"):
        ray.score_files([str(source)], str(tmp_path / "out"))
    with pytest.raises(InputError, match="no such file"):
        local.score_file(str(tmp_path / "missing.csv"))
    with pytest.raises(InputError, match="no such file"):
        ray.score_files([str(tmp_path / "missing.csv")], str(tmp_path / "new"))
