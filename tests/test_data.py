import gzip

import pytest

from runtime.io.tables import InputError
from trainer.data import load_labelled, parse_label_map, read_aclimdb, read_table, shuffle_split


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_csv_gz_tsv_and_label_map(tmp_path):
    csv_path = write(tmp_path / "a.csv", 'text,label\n"good, really",pos\nbad,neg\n')
    data = read_table(csv_path)
    assert data.texts == ["good, really", "bad"] and data.labels.tolist() == [1, 0]
    gz = tmp_path / "a.csv.gz"
    gz.write_bytes(gzip.compress(csv_path.read_bytes()))
    assert read_table(gz).texts == data.texts
    tsv = write(tmp_path / "a.tsv", 'id\tdocument\tlabel\n1\t"quoted" text\t1\n2\t\t0\n')
    nsmc_like = read_table(tsv, text_column="document")
    assert nsmc_like.texts == ['"quoted" text', ""]  # literal quotes kept, empty document kept
    custom = read_table(write(tmp_path / "b.csv", "text,label\nx,yes\ny,no\n"), label_map=parse_label_map("yes=1,no=0"))
    assert custom.labels.tolist() == [1, 0]


def test_shared_imdb_file_reads(imdb_train):
    assert len(imdb_train) == 25_000 and set(imdb_train.labels.tolist()) == {0, 1}


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="nope.csv: no such file"):
        read_table(tmp_path / "nope.csv")


def test_missing_column_lists_existing(tmp_path):
    path = write(tmp_path / "a.csv", "review,label\nx,1\n")
    with pytest.raises(InputError, match=r"no text column 'text'; the columns are: 'review', 'label'"):
        read_table(path)


def test_unknown_label_names_line(tmp_path):
    path = write(tmp_path / "a.csv", "text,label\nx,1\ny,maybe\n")
    with pytest.raises(InputError, match=r"line 3: unknown label 'maybe'"):
        read_table(path)


@pytest.mark.parametrize("content, message", [("", "file is empty"), ("text,label\n", "no data rows")])
def test_empty_data(tmp_path, content, message):
    with pytest.raises(InputError, match=message):
        read_table(write(tmp_path / "a.csv", content))


def test_aclimdb_layout(tmp_path):
    for split, name, text in [("train", "pos", "loved it"), ("train", "neg", "hated it"), ("train", "pos", "great")]:
        folder = tmp_path / split / name
        folder.mkdir(parents=True, exist_ok=True)
        write(folder / f"{len(list(folder.iterdir()))}_9.txt", text)
    data = load_labelled(tmp_path)
    assert sorted(zip(data.texts, data.labels.tolist())) == [("great", 1), ("hated it", 0), ("loved it", 1)]
    with pytest.raises(InputError, match="aclImdb layout"):
        read_aclimdb(tmp_path / "train" / "pos")


def test_shuffle_split_is_deterministic_and_disjoint(imdb_train):
    train_a, val_a = shuffle_split(imdb_train, 0.1, seed=5, limit=1000)
    train_b, val_b = shuffle_split(imdb_train, 0.1, seed=5, limit=1000)
    assert train_a.texts == train_b.texts and val_a.texts == val_b.texts
    assert (len(train_a), len(val_a)) == (900, 100)
    assert not set(train_a.texts) & set(val_a.texts)
    assert 0.3 < train_a.labels.mean() < 0.7  # shuffled: the file itself is sorted by label


def test_long_fields_are_read_and_the_csv_cap_is_left_as_it_was(tmp_path):
    import csv

    long = "word " * 100_000  # 500 KB: beyond the csv module's 128 KB default cap
    path = tmp_path / "long.csv"
    path.write_text(f"text,label\n{long},1\nshort,0\n")
    before = csv.field_size_limit()
    data = read_table(path)
    assert data.texts == [long, "short"] and csv.field_size_limit() == before  # raised per row only


def test_importing_the_packages_changes_no_global_state():
    """No import-time side effects: the csv field cap and the environment stay as they were."""
    import os
    import subprocess
    import sys

    probe = ("import csv, os; cap, env = csv.field_size_limit(), dict(os.environ); "
             "import runtime, runtime.io.tables, runtime.cli, trainer.cli, trainer.data; "
             "print(csv.field_size_limit() == cap, dict(os.environ) == env)")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True)
    assert result.stdout.split() == ["True", "True"], result.stderr
