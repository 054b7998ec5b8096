"""Shared fixtures: small slices of the real IMDB data and tiny models trained once per session."""

from __future__ import annotations

import os
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
def tiny_result(imdb_split):
    """A concat-attention classifier trained for one epoch on 2,000 IMDB reviews."""
    return train_tiny(*imdb_split)


@pytest.fixture(scope="session")
def tiny_bundle(tiny_result, tmp_path_factory):
    """`tiny_result` exported as a bundle folder."""
    from trainer.export import export_bundle

    out = tmp_path_factory.mktemp("tiny_bundle")
    export_bundle(tiny_result.model, tiny_result.config, tiny_result.tokenizer, out, log=lambda _: None)
    return out


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
