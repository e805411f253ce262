"""Compiled CPU kernels for word2vec training: word2vec.c's SGD, one (context, centre) pair at a time.

The batched torch updates of `Word2VecSGD` (`training_word2vec`) run on any device, but on a CPU a batch is a few dozen
memory-bound tensor ops per few thousand pairs, and summing the updates of a batch is an approximation that needs a
cap on rows hit many times. These kernels are the loops of word2vec.c (and of gensim's Cython `word2vec_inner`):
for every kept centre word, its dynamic window, and for every pair the output step (negative sampling or the Huffman
path) followed by the input step, each reading the vectors as the previous pair left them. Compiled with numba
(`nogil=True`), several Python threads run them at once on the shared vectors without locks (Hogwild), as
word2vec.c's threads do.

gensim's `word2vec_inner` arithmetic (word2vec.c's but for one rule): the sigmoid from a 1000-entry table over
[-6, 6), read at the integer index factor 83 (`TABLE_SCALE`); a score with |f| >= 6 is skipped for both objectives
(word2vec.c saturates the sigmoid there with negative sampling; measured on WikiText-2 CBOW: 1e-4 of the output steps
are such wrong-side scores); noise words are drawn from the unigram^0.75 distribution (an alias table read with
word2vec.c's linear congruential generator; a draw equal to the centre word is skipped), a fresh draw per pair or
CBOW example, or one draw shared by the examples of `shared_by` consecutive centre words (Ji et al. 2016; see
`train_span`); CBOW's error is added whole to every context word (mean or sum). The reported loss is the loss of the
scores the update used: -log sigmoid of the score from a table (the middle of the scores each entry covers), its
asymptotes beyond +-6, summed over pairs (skip-gram) or centre words (CBOW).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

try:  # an optional accelerator: without numba, training falls back to the batched torch updates
    import numba
except ImportError:  # pragma: no cover - numba is a dependency; this keeps the package importable without it
    numba = None

MAX_EXP = 6.0
EXP_TABLE_SIZE = 1000
# word2vec.c reads the table at int((f + MAX_EXP) * (EXP_TABLE_SIZE / MAX_EXP / 2)) with integer #defines, so the factor
# is C's integer 1000 / 6 / 2 = 83, not 83.33 (gensim's Cython, with cdivision, compiles the same 83): a score f reads
# the entry at x = 0.996 f - 0.024 (less up to 0.012 of rounding down), a sigmoid a little under 1/2 at f = 0. Kept, to
# be word2vec.c's arithmetic; its effect on quality was below the seeds' spread (CBOW + hierarchical softmax, 14 seeds).
TABLE_SCALE = EXP_TABLE_SIZE // int(MAX_EXP) // 2  # 83
_LCG_MUL = np.uint64(25214903917)  # word2vec.c: next_random = next_random * 25214903917 + 11
_LCG_ADD = np.uint64(11)
_SHIFT = np.uint64(11)
_UNIT = 1.0 / 9007199254740992.0  # 2**-53: the top 53 bits of the generator as a uniform float in [0, 1)


def available() -> bool:
    """True when numba is importable (the compiled kernels can run)."""
    return numba is not None


def sigmoid_tables() -> tuple[np.ndarray, np.ndarray]:
    """word2vec.c's table: sigmoid at x_i = (i / 1000 * 2 - 1) * 6 (a score f reads entry int((f + 6) * 83), see
    `TABLE_SCALE`), and the loss table `[2, 1000]`: -log(1 - sigmoid) (label 0) and -log sigmoid (label 1) of the
    score itself, at the middle of the scores [i / 83 - 6, (i + 1) / 83 - 6) that read entry i, so that the reported
    loss is the loss of the scores (not of the table's shifted sigmoid) and is not biased by the rounding down."""
    i = np.arange(EXP_TABLE_SIZE, dtype=np.float64)
    x = (i / EXP_TABLE_SIZE * 2.0 - 1.0) * MAX_EXP
    sig = 1.0 / (1.0 + np.exp(-x))
    mid = (i + 0.5) / TABLE_SCALE - MAX_EXP
    loss = np.stack([np.logaddexp(0.0, mid), np.logaddexp(0.0, -mid)])  # -log(1 - sig(m)), -log sig(m)
    return sig.astype(np.float32), loss.astype(np.float32)


def alias_table(probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker's alias table of a distribution (Vose's construction): draw a bucket b uniformly, keep b with
    probability prob[b], else take alias[b]. An exact O(1) draw (two table reads) where word2vec.c reads a 1e8-entry
    unigram table and gensim bisects the cumulative table."""
    p = np.asarray(probabilities, dtype=np.float64)
    n = p.shape[0]
    scaled = p / p.sum() * n
    prob = np.ones(n, dtype=np.float64)
    alias = np.arange(n, dtype=np.int64)
    small = [i for i in range(n) if scaled[i] < 1.0]
    large = [i for i in range(n) if scaled[i] >= 1.0]
    while small and large:
        s, g = small.pop(), large.pop()
        prob[s], alias[s] = scaled[s], g
        scaled[g] -= 1.0 - scaled[s]
        (small if scaled[g] < 1.0 else large).append(g)
    return prob, alias  # leftovers (rounding) keep prob 1


class KernelTables(NamedTuple):
    """The arrays `train_span` (and the Triton kernel) read besides the vectors. One objective's side holds the real
    tables; the other side holds one-element placeholders, since the kernels take every argument."""

    hs: bool
    points: np.ndarray  # [V, D] Huffman nodes of each word's path (hierarchical softmax)
    codes: np.ndarray  # [V, D] the branch taken at each node
    lengths: np.ndarray  # [V] path lengths
    alias_prob: np.ndarray  # Walker alias table of the noise distribution (negative sampling)
    alias: np.ndarray
    sig_table: np.ndarray  # word2vec.c's sigmoid table and the loss table (`sigmoid_tables`)
    logsig_table: np.ndarray


def kernel_tables(output_layer, objective: str) -> KernelTables:
    """`KernelTables` of a `Word2VecForPreTraining.output_layer` (its Huffman buffers or its noise distribution)."""
    hs = objective == "hierarchical_softmax"
    empty_i = np.zeros((1, 1), dtype=np.int64)
    if hs:
        points, codes, lengths = (t.cpu().numpy() for t in (output_layer.huffman_points, output_layer.huffman_codes,
                                                            output_layer.huffman_lengths))
        alias_prob, alias = np.ones(1), empty_i[0]
    else:
        points, codes, lengths = empty_i, empty_i, empty_i[0]
        alias_prob, alias = alias_table(output_layer.noise_distribution.detach().cpu().double().numpy())
    sig, logsig = sigmoid_tables()
    return KernelTables(hs, points, codes, lengths, alias_prob, alias, sig, logsig)


def _njit(**kwargs):
    if numba is None:  # pragma: no cover
        return lambda f: f
    return numba.njit(nogil=True, fastmath=True, cache=True, **kwargs)


@_njit(inline="always")
def _draw_noise(state, alias_prob, alias, noise):
    """Fills `noise` with words of the noise distribution: Walker's alias method (a bucket, then a coin) read with
    word2vec.c's linear congruential generator; `state` is the one-element generator state (updated in place)."""
    vocab = alias_prob.shape[0]
    for k in range(noise.shape[0]):
        state[0] = state[0] * _LCG_MUL + _LCG_ADD
        u = np.float64(state[0] >> _SHIFT) * _UNIT * vocab
        bucket = min(int(u), vocab - 1)
        noise[k] = bucket if u - bucket < alias_prob[bucket] else alias[bucket]


@_njit(inline="always")
def _output_step(h, neu1e, target, alpha, syn1, hs, points, codes, lengths, noise, sig_table, logsig_table):
    """The output side for hidden vector `h` predicting `target`: moves the output rows (the target and the words of
    `noise`, or the nodes of the target's Huffman path), accumulates the error of h into `neu1e`, returns the loss.
    A score with |f| >= 6 is skipped, as gensim's `word2vec_inner` does for both objectives (word2vec.c skips it with
    hierarchical softmax only and with negative sampling saturates the sigmoid instead: a full-rate step for a noise
    word above +6 or the target below -6); the loss takes the asymptote of -log sigmoid there."""
    dim = h.shape[0]
    loss = 0.0
    if hs:
        for n in range(lengths[target]):
            node = points[target, n]
            row = syn1[node]
            f = np.float32(0.0)
            for d in range(dim):
                f += h[d] * row[d]
            code = codes[target, n]
            if f <= -MAX_EXP or f >= MAX_EXP:
                if (f > 0.0) != (code == 0):
                    loss += f if f > 0.0 else -f
                continue
            idx = int((f + MAX_EXP) * TABLE_SCALE)
            loss += logsig_table[1 - code, idx]  # the branch probability is sig (code 0) or 1 - sig (code 1)
            g = np.float32((1.0 - code - sig_table[idx]) * alpha)
            for d in range(dim):  # one pass: the error reads the node vector before it moves
                v = row[d]
                neu1e[d] += g * v
                row[d] = v + g * h[d]
        return loss
    for k in range(noise.shape[0] + 1):
        if k == 0:
            word, label = target, 1
        else:
            word, label = noise[k - 1], 0
            if word == target:  # a noise word equal to the target is skipped
                continue
        row = syn1[word]
        f = np.float32(0.0)
        for d in range(dim):
            f += h[d] * row[d]
        if f <= -MAX_EXP or f >= MAX_EXP:
            if (f > 0.0) != (label == 1):
                loss += f if f > 0.0 else -f
            continue
        idx = int((f + MAX_EXP) * TABLE_SCALE)
        loss += logsig_table[label, idx]
        g = np.float32((label - sig_table[idx]) * alpha)
        for d in range(dim):  # one pass: the error reads the output vector before it moves
            v = row[d]
            neu1e[d] += g * v
            row[d] = v + g * h[d]
    return loss


@_njit(inline="always")
def _example(h, neu1e, target, alpha, syn1, hs, points, codes, lengths, noise, sig_table, logsig_table, draw, state,
             alias_prob, alias):
    """One example (a pair, or a CBOW window): the error `neu1e` starts at zero, the noise words are drawn for it
    unless a shared draw serves it (`draw` False), then `_output_step`; returns its loss."""
    for d in range(neu1e.shape[0]):
        neu1e[d] = 0.0
    if draw:
        _draw_noise(state, alias_prob, alias, noise)
    return _output_step(h, neu1e, target, alpha, syn1, hs, points, codes, lengths, noise, sig_table, logsig_table)


@_njit()
def train_span(syn0, syn1, ids, windows, left_room, right_room, start, stop, alpha_start, alpha_end,
               cbow, cbow_mean, hs, points, codes, lengths, alias_prob, alias, negative, seed,
               sig_table, logsig_table, shared_by=0):
    """Train on the centre words at kept positions [start, stop) of an epoch (`_EpochData`'s arrays), in place.

    The learning rate falls linearly from `alpha_start` at `start` to `alpha_end` at `stop`. Skip-gram: for each
    context word c of centre w (word2vec.c's order), c's input vector predicts w. CBOW: the (mean or sum of the)
    context vectors predict w. Negative sampling draws `negative` noise words for every pair (skip-gram) or centre
    word (CBOW) when `shared_by` is 0, as word2vec.c and gensim do; with `shared_by` = n >= 1 one draw serves the
    examples of n consecutive centre words (those with a context), so that for skip-gram the pairs of a window share
    their noise words (Ji et al. 2016, "Parallelizing Word2Vec in Shared and Distributed Memory"): every example
    still sees `negative` words of the noise distribution, the draws and the noise rows' cache misses are shared.
    Returns (summed loss, examples), examples = pairs (skip-gram) or centre words with at least one context word
    (CBOW)."""
    dim = syn0.shape[1]
    neu1 = np.empty(dim, dtype=np.float32)
    neu1e = np.empty(dim, dtype=np.float32)
    noise = np.empty(0 if hs else negative, dtype=np.int64)
    state = np.empty(1, dtype=np.uint64)
    state[0] = np.uint64(seed)
    loss = 0.0
    examples = 0
    span = max(stop - start, 1)
    since = shared_by  # centre words served by the current draw
    for i in range(start, stop):
        alpha = alpha_start + (alpha_end - alpha_start) * ((i - start) / span)
        reach = windows[i]
        lo = i - min(reach, left_room[i])
        hi = i + min(reach, right_room[i])
        if hi == lo:  # word2vec.c skips a centre word left without context (no pair, no draw)
            continue
        centre = ids[i]
        if shared_by > 0:
            if since >= shared_by:
                _draw_noise(state, alias_prob, alias, noise)
                since = 0
            since += 1
        if cbow:
            count = 0
            for d in range(dim):
                neu1[d] = 0.0
            for j in range(lo, hi + 1):
                if j != i:
                    row = syn0[ids[j]]
                    for d in range(dim):
                        neu1[d] += row[d]
                    count += 1
            if cbow_mean:
                inv = np.float32(1.0 / count)
                for d in range(dim):
                    neu1[d] *= inv
            loss += _example(neu1, neu1e, centre, alpha, syn1, hs, points, codes, lengths, noise, sig_table,
                             logsig_table, shared_by == 0, state, alias_prob, alias)
            examples += 1
            for j in range(lo, hi + 1):
                if j != i:  # every context word gets the whole error (word2vec.c and gensim, for the mean too)
                    row = syn0[ids[j]]
                    for d in range(dim):
                        row[d] += neu1e[d]
        else:
            for j in range(lo, hi + 1):
                if j == i:
                    continue
                row = syn0[ids[j]]
                loss += _example(row, neu1e, centre, alpha, syn1, hs, points, codes, lengths, noise, sig_table,
                                 logsig_table, shared_by == 0, state, alias_prob, alias)
                examples += 1
                for d in range(dim):
                    row[d] += neu1e[d]
    return loss, examples


_WARM = False


def warm_up() -> float:
    """Compile `train_span` (or load it from numba's on-disk cache) for the argument types the trainer passes, so
    that the first batch of training does not pay for it. Returns the seconds spent (0 after the first call)."""
    global _WARM
    if _WARM or numba is None:
        return 0.0
    import time

    t0 = time.perf_counter()
    syn = np.zeros((3, 2), dtype=np.float32)
    ids = np.array([0, 1, 2], dtype=np.int64)
    ones, room = np.ones(3, dtype=np.int64), np.array([0, 1, 2], dtype=np.int64)
    paths = np.zeros((3, 1), dtype=np.int64)
    sig, logsig = sigmoid_tables()
    for shared_by in (0, 1):  # numba compiles one specialisation for both values
        train_span(syn, syn, ids, ones, room, room[::-1].copy(), 0, 3, 0.0, 0.0, False, True, False, paths, paths,
                   ones, np.ones(3, dtype=np.float64), ids, 1, 1, sig, logsig, shared_by)
    _WARM = True
    return time.perf_counter() - t0
