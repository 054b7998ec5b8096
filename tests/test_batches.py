"""Training batches: every row fits its batch, and short rows are not padded like long ones."""

import numpy as np

from trainer.fit import BUCKET_STEP, SHORT_STEP, BucketedBatches, padded_width


def test_padded_width_steps():
    assert [padded_width(n, 500) for n in (0, 1, 8, 9, 64, 65, 130, 499)] == [8, 8, 8, 16, 64, 128, 192, 500]


def test_batches_fit_their_rows_with_little_padding():
    rng = np.random.default_rng(0)
    lengths = np.concatenate([rng.integers(1, 20, 300), rng.integers(100, 400, 100)])
    ids = np.zeros((len(lengths), 400), dtype=np.int32)
    for row, n in enumerate(lengths):
        ids[row, :n] = 1 + row
    labels = (np.arange(len(lengths)) % 2).astype("float32")
    seen = []
    for batch_ids, batch_labels in BucketedBatches(ids, lengths, labels, batch_size=32, seed=1):
        longest = int((batch_ids != 0).sum(axis=1).max())
        step = SHORT_STEP if longest <= BUCKET_STEP else BUCKET_STEP
        assert longest <= batch_ids.shape[1] < longest + step
        seen += list(batch_ids[:, 0] - 1)
        assert np.array_equal(batch_labels, (batch_ids[:, 0] - 1) % 2)
    assert sorted(seen) == list(range(len(lengths)))  # every row once per epoch
