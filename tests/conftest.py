"""Shared fixtures: small slices of the real IMDB data and a tiny model trained once per run (shared by
the pytest-xdist workers through a file lock)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# real headless Chromium (`chromium`) and local HTTP servers (`serve`) for browser tests
pytest_plugins = ["browser"]



def _find_datasets() -> Path:
    """ATTN_DATASETS if set, else the nearest `shared/datasets` beside the repository or one of its
    ancestors (../shared/datasets for a checkout next to shared/)."""
    if os.environ.get("ATTN_DATASETS"):
        return Path(os.environ["ATTN_DATASETS"])
    repo = Path(__file__).resolve().parents[1]
    candidates = [folder / "shared" / "datasets" for folder in repo.parents]
    return next((c for c in candidates if c.is_dir()), candidates[0])


DATASETS = _find_datasets()
IMDB_TRAIN = DATASETS / "imdb" / "train.csv.gz"
IMDB_TEST = DATASETS / "imdb" / "test.csv.gz"

# tiny but real: learns IMDB sentiment in one epoch on 2,000 reviews in a few seconds
TINY = dict(vocab_size=5000, max_len=200, embedding_dim=32, lstm_units=16, attention_units=16, dense_units=8,
            batch_size=64, epochs=1, learning_rate=3e-3, seed=0)


@pytest.fixture(scope="session")
def imdb_train():
    from trainer.data import read_table

    return read_table(IMDB_TRAIN)


@pytest.fixture(scope="session")
def imdb_test():
    from trainer.data import read_table

    return read_table(IMDB_TEST)


@pytest.fixture(scope="session")
def imdb_split(imdb_train):
    """2,000 training reviews and 1,000 other reviews, from a seeded shuffle (the file is sorted by label)."""
    order = np.random.default_rng(0).permutation(len(imdb_train))
    return imdb_train.take(order[:2000]), imdb_train.take(order[2000:3000])


def train_tiny(train, validation, **overrides):
    from runtime.tokenizer import TokenizerSpec
    from trainer.fit import train_classifier
    from trainer.models.classifier import ClassifierConfig

    config = ClassifierConfig(**{**TINY, **overrides})
    return train_classifier(train, validation, config, TokenizerSpec(max_len=config.max_len), verbose=0,
                            log=lambda _: None)


@pytest.fixture(scope="session")
def shared_dir(tmp_path_factory) -> Path:
    """A folder every pytest-xdist worker of this run shares (the run's base temporary folder), for
    what is made once per run: the first worker to need it makes it under a file lock, the others
    wait and read it."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def made_once(shared_dir: Path, name: str, make) -> Path:
    """shared_dir/name, made by `make(folder)` the first time any worker asks for it."""
    from filelock import FileLock

    folder, done = shared_dir / name, shared_dir / f"{name}.done"
    with FileLock(str(shared_dir / f"{name}.lock")):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)  # a worker that failed half way
            folder.mkdir()
            make(folder)
            done.touch()
    return folder


@pytest.fixture(scope="session")
def tiny_training(shared_dir, request) -> Path:
    """The training/ folder (model.keras, tokenizer.json, history.json) of a concat-attention
    classifier trained for one epoch on 2,000 IMDB reviews, trained once per run."""
    from trainer.fit import save_training_outputs

    def train(folder):
        save_training_outputs(train_tiny(*request.getfixturevalue("imdb_split")), folder)

    return made_once(shared_dir, "tiny_training", train) / "training"


def load_training(training: Path):
    """The TrainResult that `save_training_outputs` wrote into `training` (the same weights)."""
    import json

    import keras

    import trainer.attention  # noqa: F401  (registers the attention layers for loading)
    from runtime.tokenizer import Tokenizer
    from trainer.fit import TrainResult
    from trainer.models.classifier import ClassifierConfig

    summary = json.loads((training / "history.json").read_text(encoding="utf-8"))
    return TrainResult(keras.saving.load_model(training / "model.keras"), Tokenizer.load(training / "tokenizer.json"),
                       ClassifierConfig.from_dict(summary["config"]), summary["history"],
                       summary["validation_accuracy"], summary["best_epoch"], summary["elapsed_s"])


@pytest.fixture(scope="session")
def tiny_result(tiny_training):
    """`tiny_training` as a TrainResult (the Keras model, its tokenizer and config)."""
    return load_training(tiny_training)


@pytest.fixture(scope="session")
def tiny_bundle(tiny_training, shared_dir):
    """`tiny_training` exported as a bundle folder, once per run (tests read it, never change it)."""
    from trainer.export import export_bundle

    def export(out):
        result = load_training(tiny_training)
        export_bundle(result.model, result.config, result.tokenizer, out, log=lambda _: None)

    return made_once(shared_dir, "tiny_bundle", export)


@pytest.fixture(scope="session")
def text_bundle(tiny_bundle, tmp_path_factory):
    """`tiny_bundle` with a text graph (model_text.onnx), added the way `attn-export text-graph BUNDLE
    --lowercase-mapping simple` adds it (the tiny tokenizer lowercases fully, which does not compile)."""
    import shutil

    from trainer.text_graph import add_text_graph

    out = tmp_path_factory.mktemp("text_bundle") / "tiny-text"
    shutil.copytree(tiny_bundle, out)
    add_text_graph(out, lowercase_mapping="simple", log=lambda _: None)
    return out


@pytest.fixture(scope="session")
def negating_text_bundle(tiny_bundle, tmp_path_factory):
    """`tiny_bundle` declared with a split_negation tokenizer ("didn't" -> "did n't"), and its text graph:
    the compiled negation split, for the runtimes that load it (onnxruntime-web under Node, Chromium)."""
    import json
    import shutil

    from trainer.text_graph import add_text_graph

    out = tmp_path_factory.mktemp("negating_text_bundle") / "tiny-negating"
    shutil.copytree(tiny_bundle, out)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    manifest["tokenizer"]["spec"] |= {"split_negation": True, "lowercase_mapping": "simple"}
    (out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    add_text_graph(out, texts=["I didn't like it.", "It wasn’t bad<br />n't've", "Shouldn't've x'n't"],
                   log=lambda _: None)
    return out


# pytest-xdist hands whole test files to the workers in collection order (--dist loadfile): the longest
# files go first, so no worker starts a long one while the other has nothing left. The order is each file's
# summed setup + call time, longest first (`--durations=0`, 2026-12-04; the text graph's conformance tests
# were split from its bundle tests then, so that 380 s of one file became two of about 210 and 170 s).
LONGEST_FIRST = ("test_train_export.py", "test_tokenizer_graph.py", "test_translator.py", "test_text_graph.py",
                 "test_distributed_failures.py", "test_distill.py", "test_finetune.py", "test_shipped.py",
                 "test_web.py", "test_counterfactual.py", "test_extra_data.py", "test_runtime.py",
                 "test_newcomer.py", "test_distributed.py", "test_korean.py", "test_engine_spec.py",
                 "test_readme.py", "test_serve.py", "test_bad_input.py", "test_screening.py")


def pytest_collection_modifyitems(items):
    stale = [name for name in LONGEST_FIRST if not (Path(__file__).parent / name).exists()]
    if stale:  # a renamed file would silently fall to the back of the queue
        raise pytest.UsageError(f"tests/conftest.py LONGEST_FIRST names files that do not exist: {stale}")
    rank = {name: place for place, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


@pytest.fixture(scope="session")
def ray_local():
    """A real local Ray with 2 CPUs. Ray missing is a failure, not a skip: CI installs '.[dev]'."""
    try:
        import pyarrow  # noqa: F401
        import ray
        import ray.data  # noqa: F401
    except ImportError as error:
        pytest.fail(f"the Ray engine's tests need Ray Data and pyarrow ({error}): pip install -e '.[dev]'")
    started = not ray.is_initialized()
    for attempt in (1, 2) if started else ():
        try:  # a loaded machine can miss Ray's 30 s raylet start-up window once
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
                     object_store_memory=256 * 2**20)
            break
        except Exception:
            ray.shutdown()
            if attempt == 2:
                raise
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def reviews(imdb_test):
    """240 IMDB test reviews of mixed length and label (the file is sorted by label)."""
    picked = imdb_test.take(list(range(0, 25_000, 25_000 // 240))[:240])
    return [str(text) for text in picked.texts]
