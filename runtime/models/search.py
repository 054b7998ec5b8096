"""The one decode loop for greedy and beam search, driven by a step function.

    step(previous, sentence, state) -> (log_probs, state, attention)

`previous` (n,) holds the last token of each live hypothesis, `sentence` (n,) the sentence each one
belongs to, `state` a tuple of arrays with one row per live hypothesis (for the translator: the
decoder's h and c). The step returns log-probabilities (n, V), the next state (rows in the same
order) and attention weights (n, S) or None. The loop never looks inside the state: it only picks
rows, so a test can drive it with constructed log-probabilities.

Beam search keeps `beam_size` hypotheses per sentence, ranked by length-normalised score: the sum of
the chosen tokens' log-probabilities (the end token included) divided by their number. A finished
hypothesis keeps its slot and competes with its frozen score, but leaves the batch: only live
hypotheses go through the step, and a sentence whose slots are all finished costs nothing more.
Selection is two-stage and exact: each live row's best `beam_size` tokens (`best_tokens` over V),
then the best `beam_size` of those k·k candidates plus the finished ones (a sort of a few entries).
Greedy is beam_size 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

Step = Callable[[np.ndarray, np.ndarray, tuple], tuple[np.ndarray, tuple, "np.ndarray | None"]]


@dataclass
class Hypothesis:
    ids: list[int]  # target ids, the end token excluded
    score: float  # length-normalised log-probability
    attention: np.ndarray | None  # (steps incl. the end token, source positions) when asked for


def best_tokens(log_probs: np.ndarray, m: int) -> np.ndarray:
    """The indices of each row's m largest entries (n, m), in no particular order. For a few, m
    rounds of argmax (SIMD, ~3x faster than np.argpartition's introselect at V = 8,000); else
    argpartition."""
    if m > 8:
        return np.argpartition(log_probs, log_probs.shape[-1] - m, axis=-1)[:, -m:]
    if m == 1:
        return log_probs.argmax(-1)[:, None]
    work, rows = log_probs.copy(), np.arange(len(log_probs))
    top = np.empty((len(log_probs), m), dtype=np.int64)
    for j in range(m):
        top[:, j] = work.argmax(-1)
        work[rows, top[:, j]] = -np.inf
    return top


def search(step: Step, state: tuple, batch: int, start_id: int, end_id: int, max_length: int,
           beam_size: int = 1, attention: bool = False) -> list[Hypothesis]:
    """Decode `batch` sentences whose initial `state` rows are one per sentence; the best hypothesis each."""
    if beam_size < 1:
        raise ValueError(f"beam size must be >= 1, got {beam_size}")
    k = beam_size
    scores = np.full((batch, k), -np.inf)
    scores[:, 0] = 0.0  # one live hypothesis per sentence to start from; -inf slots are empty
    lengths = np.zeros((batch, k), dtype=np.int64)
    finished = np.zeros((batch, k), dtype=bool)
    tokens = np.zeros((batch, k, 0), dtype=np.int64)
    weights_so_far = None
    previous = np.full(batch, start_id, dtype=np.int32)
    live = np.flatnonzero(np.isfinite(scores) & ~finished)  # flat slot index (sentence * k + slot) per state row
    for _ in range(max_length):
        if live.size == 0:
            break
        log_probs, state, weights = step(previous, live // k, state)
        vocab = log_probs.shape[-1]
        m = min(k, vocab)
        # each live row's best m tokens (adding the row's running score changes no order inside the row)
        top = best_tokens(log_probs, m)
        # candidates per sentence: k slots x m continuations (empty where a slot is not live), then
        # each finished slot once with its frozen score
        cand_total = np.full((batch * k, m), -np.inf)
        cand_total[live] = scores.reshape(-1)[live, None] + np.take_along_axis(log_probs, top, -1)
        cand_token = np.zeros((batch * k, m), dtype=np.int64)
        cand_token[live] = top
        grown = (lengths + 1).reshape(-1, 1)
        ranked = np.concatenate([(cand_total / grown).reshape(batch, k * m),
                                 np.where(finished, scores / np.maximum(lengths, 1), -np.inf)], 1)
        best = np.argsort(-ranked, axis=-1, kind="stable")[:, :k]  # (batch, k), a few entries per row
        kept = best >= k * m  # a finished hypothesis keeps its slot
        parent = np.where(kept, best - k * m, best // m)
        flat_parent = np.arange(batch)[:, None] * k + parent
        token = np.where(kept, end_id,
                         cand_token.reshape(batch, k * m)[np.arange(batch)[:, None], np.minimum(best, k * m - 1)])
        new_scores = np.where(kept, scores.reshape(-1)[flat_parent],
                              cand_total.reshape(batch, k * m)[np.arange(batch)[:, None], np.minimum(best, k * m - 1)])
        lengths = lengths.reshape(-1)[flat_parent] + ~kept
        finished = kept | (token == end_id)
        scores = new_scores
        tokens = np.concatenate([tokens.reshape(batch * k, -1)[flat_parent], token[:, :, None]], -1)
        row_of = np.full(batch * k, -1)
        row_of[live] = np.arange(live.size)  # state row of each previously live slot
        if attention:
            source = weights.shape[-1]
            new = np.zeros((batch, k, 1, source), dtype=np.float32)
            grew = ~kept & np.isfinite(scores)
            new[grew, 0] = weights[row_of[flat_parent[grew]]]
            old = (weights_so_far.reshape(batch * k, -1, source)[flat_parent] if weights_so_far is not None
                   else new[:, :, :0])
            weights_so_far = np.concatenate([old, new], 2)
        live = np.flatnonzero(np.isfinite(scores) & ~finished)
        rows = row_of[flat_parent.reshape(-1)[live]]
        state = tuple(array[rows] for array in state)
        previous = token.reshape(-1)[live].astype(np.int32)
    normalised = np.where(np.isfinite(scores), scores / np.maximum(lengths, 1), -np.inf)
    choice = normalised.argmax(-1)
    out = []
    for b in range(batch):
        slot, steps = choice[b], int(lengths[b, choice[b]])
        ids = [int(t) for t in tokens[b, slot, :steps]]
        if ids and ids[-1] == end_id:
            ids.pop()
        out.append(Hypothesis(ids, float(normalised[b, slot]),
                              weights_so_far[b, slot, :steps] if weights_so_far is not None else None))
    return out
