"""The decode loop (runtime.models.search) driven by constructed log-probabilities, no model: beam must beat
greedy where greedy is short-sighted, a wide beam finds the exhaustive optimum, beam 1 is greedy,
attention follows the chosen hypothesis, finished hypotheses leave the batch."""

import itertools

import numpy as np
import pytest

from runtime.models.search import best_tokens, search

START, END = 0, 1


def table_step(tables, calls=None):
    """A step whose log-probabilities depend on (sentence, previous token) only: tables[s][prev] (V,).
    The state is each row's step count; attention is (sentence, step, previous) so paths can be traced."""
    with np.errstate(divide="ignore"):  # probability 0 -> log-probability -inf, on purpose
        tables = np.log(np.asarray(tables, dtype=np.float64))

    def step(previous, sentence, state):
        (t,) = state
        if calls is not None:
            calls.append(sentence.copy())
        log_probs = tables[sentence, previous].astype(np.float32)
        weights = np.stack([sentence, t, previous], -1).astype(np.float32)
        return log_probs, (t + 1,), weights

    return step


def run(tables, beam, max_length=4, attention=False, calls=None):
    batch = len(tables)
    return search(table_step(tables, calls), (np.zeros(batch, np.int64),), batch, START, END, max_length, beam,
                  attention)


def normalised(tables, sentence, ids, max_length):
    """Length-normalised log-probability of a path (end token included unless cut at max_length)."""
    path = list(ids) + ([END] if len(ids) < max_length else [])
    total, previous = 0.0, START
    for token in path:
        total += np.log(tables[sentence][previous][token])
        previous = token
    return total / len(path)


# tokens: 0 start, 1 end, 2 "a", 3 "b"; greedy takes "a" (0.5) and then ends badly (0.3),
# "b" (0.4) ends well (0.9): beam finds  b </s>  (as keras-hub's beam sampler test does)
SHORT_SIGHTED = [[
    [0.0, 0.1, 0.5, 0.4],  # after <s>
    [0.25, 0.25, 0.25, 0.25],  # after </s> (never read)
    [0.0, 0.3, 0.35, 0.35],  # after a
    [0.0, 0.9, 0.05, 0.05],  # after b
]]


def test_beam_beats_greedy_where_greedy_is_short_sighted():
    greedy, = run(SHORT_SIGHTED, beam=1)
    beam, = run(SHORT_SIGHTED, beam=2)
    assert greedy.ids[0] == 2 and beam.ids == [3]
    assert beam.score == pytest.approx((np.log(0.4) + np.log(0.9)) / 2)
    assert greedy.score == pytest.approx(normalised(SHORT_SIGHTED, 0, greedy.ids, 4))
    assert beam.score > greedy.score


def random_tables(rng, sentences, vocab):
    tables = rng.dirichlet(np.full(vocab, 0.3), size=(sentences, vocab))
    tables[:, :, START] = 1e-9  # the start token is never produced
    return tables / tables.sum(-1, keepdims=True)


def test_wide_beam_finds_the_exhaustive_optimum():
    rng = np.random.default_rng(0)
    vocab, max_length = 4, 3
    tables = random_tables(rng, 20, vocab)
    words = range(2, vocab)
    paths = [list(p) for n in range(max_length + 1) for p in itertools.product(words, repeat=n)]
    # a beam as wide as the number of paths keeps every one of them
    for sentence, found in enumerate(run(tables, beam=len(paths), max_length=max_length)):
        best = max(normalised(tables, sentence, p, max_length) for p in paths)
        assert found.score == pytest.approx(best, abs=1e-6)
        assert normalised(tables, sentence, found.ids, max_length) == pytest.approx(best, abs=1e-6)


def test_beam_of_one_is_greedy_and_beam_scores_are_the_paths_scores():
    rng = np.random.default_rng(1)
    tables = random_tables(rng, 30, 6)
    for sentence, got in enumerate(run(tables, beam=1, max_length=6)):
        ids, previous = [], START
        for _ in range(6):  # the textbook greedy decode
            previous = int(np.argmax(tables[sentence][previous]))
            if previous == END:
                break
            ids.append(previous)
        assert got.ids == ids
        assert got.score == pytest.approx(normalised(tables, sentence, ids, 6), abs=1e-6)
    greedy, beams = run(tables, beam=1, max_length=6), run(tables, beam=4, max_length=6)
    for sentence, beam in enumerate(beams):
        assert beam.score == pytest.approx(normalised(tables, sentence, beam.ids, 6), abs=1e-6)
    assert sum(b.score > g.score + 1e-9 for b, g in zip(beams, greedy)) >= 5  # beam finds better paths
    assert np.mean([b.score for b in beams]) > np.mean([g.score for g in greedy])


def test_attention_follows_the_chosen_hypothesis_and_is_gathered_only_when_asked():
    rng = np.random.default_rng(2)
    tables = random_tables(rng, 8, 5)
    for sentence, hyp in enumerate(run(tables, beam=3, max_length=5, attention=True)):
        steps = len(hyp.ids) + (1 if len(hyp.ids) < 5 else 0)
        previous = [START] + hyp.ids
        expected = [[sentence, t, previous[t]] for t in range(steps)]
        np.testing.assert_array_equal(hyp.attention, expected)
    assert all(h.attention is None for h in run(tables, beam=3, max_length=5))


def test_finished_hypotheses_and_sentences_leave_the_batch():
    # sentence 0 ends at once with certainty; sentence 1 never ends before max_length
    ends_now = [[0.0, 1.0, 0.0, 0.0]] * 4
    goes_on = [[0.0, 0.0, 0.5, 0.5]] * 4
    calls = []
    done, long = run([ends_now, goes_on], beam=2, max_length=5, calls=calls)
    assert done.ids == [] and done.score == 0.0 and len(long.ids) == 5
    assert list(calls[0]) == [0, 1]  # first step: one hypothesis per sentence
    assert all(0 not in rows for rows in calls[1:])  # sentence 0 finished: never decoded again
    assert all(list(rows) == [1, 1] for rows in calls[1:])


def test_best_tokens_matches_a_full_sort():
    rng = np.random.default_rng(3)
    values = rng.standard_normal((50, 300)).astype(np.float32)
    for m in (1, 4, 12):
        expected = np.sort(np.argsort(-values, axis=-1)[:, :m], -1)
        np.testing.assert_array_equal(np.sort(best_tokens(values, m), -1), expected)


def test_beam_size_must_be_positive():
    with pytest.raises(ValueError, match="beam size must be >= 1"):
        run(SHORT_SIGHTED, beam=0)
