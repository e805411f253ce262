"""The compiled word2vec kernels (hf_seq/models/word2vec/kernels_word2vec.py) against a line-by-line Python transcription of
gensim's `word2vec_inner` training loop (word2vec.c's, with gensim's skip of scores beyond +-6), the alias sampler
against its distribution, and backend selection."""

import numpy as np
import pytest
import torch

from hf_seq.models.word2vec import Word2VecForPreTraining
from hf_seq.models.word2vec import kernels_word2vec as K
from hf_seq.models.word2vec.training_word2vec import (
    CompiledWord2Vec,
    Word2VecTrainingArguments,
    default_negatives_shared_by,
    prepare_word2vec,
    resolve_backend,
    sample_epoch,
    train_word2vec,
)

pytestmark = pytest.mark.skipif(not K.available(), reason="numba is a dependency; the torch path is tested elsewhere")
MASK64 = (1 << 64) - 1


EXP_TABLE_SIZE, MAX_EXP = 1000, 6  # word2vec.c: #define EXP_TABLE_SIZE 1000, #define MAX_EXP 6 (integers)


def _table_index(f):
    # expTable[(int)((f + MAX_EXP) * (EXP_TABLE_SIZE / MAX_EXP / 2))]: the factor is C integer division, 83
    return int((f + MAX_EXP) * (EXP_TABLE_SIZE // MAX_EXP // 2))


def reference_span(syn0, syn1, data, start, stop, a0, a1, cbow, cbow_mean, hs, points, codes, lengths, prob, alias,
                   negative, seed, sig, shared_by=0):
    """gensim's `train_batch_sg` / `train_batch_cbow` body (`w2v_fast_sentence_{sg,cbow}_{neg,hs}`) for kept positions
    [start, stop), pair by pair, in float32; noise words from the kernels' generator (word2vec.c's LCG + alias table),
    a fresh draw per pair / CBOW example, or one draw for the examples of `shared_by` consecutive centre words."""
    dim = syn0.shape[1]
    state = seed
    vocab = prob.shape[0]
    examples = 0
    noise = []
    since = shared_by

    def draw():
        nonlocal state, noise
        noise = []
        for _ in range(negative):
            state = (state * 25214903917 + 11) & MASK64
            u = (state >> 11) * 2.0**-53 * vocab
            bucket = min(int(u), vocab - 1)
            noise.append(bucket if u - bucket < prob[bucket] else int(alias[bucket]))

    def output(h, neu1e, target, alpha):
        if hs:
            for n in range(lengths[target]):
                node = points[target, n]
                f = np.float32(np.dot(h, syn1[node]))
                if f <= -K.MAX_EXP or f >= K.MAX_EXP:
                    continue
                g = np.float32((1.0 - codes[target, n] - sig[_table_index(f)]) * alpha)
                neu1e += g * syn1[node]
                syn1[node] += g * h
            return
        for d in range(negative + 1):
            if d == 0:
                word, label = target, 1.0
            else:
                word, label = noise[d - 1], 0.0
                if word == target:
                    continue
            f = np.float32(np.dot(h, syn1[word]))
            if f <= -K.MAX_EXP or f >= K.MAX_EXP:  # gensim: `if f_dot <= -MAX_EXP or f_dot >= MAX_EXP: continue`
                continue
            g = np.float32((label - sig[_table_index(f)]) * alpha)
            neu1e += g * syn1[word]
            syn1[word] += g * h

    for i in range(start, stop):
        alpha = a0 + (a1 - a0) * ((i - start) / max(stop - start, 1))
        lo = i - min(data.windows[i], data.left_room[i])
        hi = i + min(data.windows[i], data.right_room[i])
        context = [data.ids[j] for j in range(lo, hi + 1) if j != i]
        if not context:
            continue
        if shared_by and not hs:
            if since >= shared_by:
                draw()
                since = 0
            since += 1
        if cbow:
            h = syn0[context].sum(0, dtype=np.float32)
            if cbow_mean:
                h *= np.float32(1.0 / len(context))
            neu1e = np.zeros(dim, dtype=np.float32)
            if not shared_by and not hs:
                draw()
            output(h, neu1e, data.ids[i], alpha)
            examples += 1
            for c in context:  # the whole error to every context word, also for the mean (gensim, word2vec.c)
                syn0[c] += neu1e
        else:
            for c in context:
                neu1e = np.zeros(dim, dtype=np.float32)
                if not shared_by and not hs:
                    draw()
                output(syn0[c].copy(), neu1e, data.ids[i], alpha)
                examples += 1
                syn0[c] += neu1e
    return examples


def _tiny_lines():
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(12)]
    return [" ".join(rng.choice(words, size=rng.integers(1, 9), p=np.arange(12, 0, -1) / 78)) for _ in range(40)]


def _tiny_corpus():
    return prepare_word2vec(_tiny_lines(), min_count=1, vector_size=8, window=3, sample=0, architecture="cbow")[2]


def _tiny(architecture, objective, cbow_mean=True):
    lines = _tiny_lines()
    tokenizer, config, corpus = prepare_word2vec(lines, min_count=1, vector_size=8, window=3, sample=0,
                                                 architecture=architecture, objective=objective, negative=3,
                                                 cbow_mean=cbow_mean)
    torch.manual_seed(0)
    model = Word2VecForPreTraining(config)
    with torch.no_grad():  # non-zero output vectors, so that every branch of the update is exercised
        model.output_layer.weight.normal_(0, 0.5)
        model.word2vec.embeddings.weight.normal_(0, 0.5)
    data = sample_epoch(corpus, config, np.random.default_rng(1))
    return model, data


@pytest.mark.parametrize("architecture,objective,cbow_mean,shared_by", [
    ("skipgram", "negative_sampling", True, 0), ("skipgram", "hierarchical_softmax", True, 0),
    ("cbow", "negative_sampling", True, 0), ("cbow", "hierarchical_softmax", True, 0),
    ("cbow", "negative_sampling", False, 0), ("skipgram", "negative_sampling", True, 1),
    ("cbow", "negative_sampling", True, 3),
])
def test_kernel_matches_gensim_loop(architecture, objective, cbow_mean, shared_by):
    model, data = _tiny(architecture, objective, cbow_mean)
    kernel = CompiledWord2Vec(model, shared_by)
    syn0, syn1 = kernel.syn0.copy(), kernel.syn1.copy()
    n = data.ids.shape[0]
    assert n > 100 and (data.left_room == 0).any()  # sentence boundaries cut windows
    t = kernel.tables
    expected = reference_span(syn0, syn1, data, 5, n - 3, 0.2, 0.05, architecture == "cbow", cbow_mean,
                              objective == "hierarchical_softmax", t.points, t.codes, t.lengths, t.alias_prob, t.alias,
                              3, 12345, t.sig_table, shared_by)
    loss, examples = kernel.train(data, 5, n - 3, 0.2, 0.05, 12345)
    assert examples == expected and loss > 0
    # the kernel moved the model's own tables (views), exactly as the transcription moved its copies
    np.testing.assert_allclose(model.word2vec.embeddings.weight.detach().numpy(), syn0, rtol=0, atol=2e-5)
    np.testing.assert_allclose(model.output_layer.weight.detach().numpy(), syn1, rtol=0, atol=2e-5)
    assert not np.allclose(syn0, CompiledWord2Vec(_tiny(architecture, objective, cbow_mean)[0]).syn0)


def test_cbow_skips_saturated_scores_as_gensim():
    """Issue #24: one CBOW example whose target scores below -6 and whose noise word scores above +6. gensim skips
    both (`if f_dot <= -MAX_EXP or f_dot >= MAX_EXP: continue`); word2vec.c would take full-rate steps
    (g = +-alpha). Nothing may move; a step to a noise word inside (-6, 6) still moves it."""
    model, data = _tiny("cbow", "negative_sampling")
    kernel = CompiledWord2Vec(model)
    syn0, syn1 = kernel.syn0, kernel.syn1
    i = int(np.flatnonzero((data.left_room > 0) & (data.right_room > 0))[0])
    data.windows[:] = 0
    data.windows[i] = 1
    context = [data.ids[i - 1], data.ids[i + 1]]
    target = data.ids[i]
    h = syn0[context].mean(0)
    syn1[:] = 0.0
    syn1[target] = -7.0 * h / float(h @ h)  # score -7: the target far on the wrong side
    others = [w for w in range(syn1.shape[0]) if w != target]
    syn1[others] = 7.0 * h / float(h @ h)  # every noise word at +7
    before = syn0.copy(), syn1.copy()
    loss, examples = kernel.train(data, i, i + 1, 0.5, 0.5, 99)
    noise = np.empty(3, dtype=np.int64)  # the example's draw (a noise word equal to the target is left out)
    K._draw_noise(np.array([99], dtype=np.uint64), kernel.tables.alias_prob, kernel.tables.alias, noise)
    assert examples == 1 and loss == pytest.approx(7.0 * (1 + (noise != target).sum()), rel=1e-4)  # the asymptotes
    np.testing.assert_array_equal(syn0, before[0])
    np.testing.assert_array_equal(syn1, before[1])
    syn1[others] = 1.0 * h / float(h @ h)  # noise words at +1: gensim's update moves them and the context words
    kernel.train(data, i, i + 1, 0.5, 0.5, 99)
    assert not np.array_equal(syn0, before[0]) and np.array_equal(syn1[target], before[1][target])


def test_loss_is_the_negative_log_likelihood_of_the_scores_used():
    """One skip-gram pair with hierarchical softmax and learning rate 0: the reported loss is -sum log sigmoid(+-h.v)
    over the target's path (to the table's precision), and nothing moves."""
    model, data = _tiny("skipgram", "hierarchical_softmax")
    kernel = CompiledWord2Vec(model)
    before = kernel.syn0.copy(), kernel.syn1.copy()
    i = int(np.flatnonzero((data.right_room > 0) & (data.windows > 0))[0])
    data.windows[:] = 0
    data.windows[i] = 1
    loss, examples = kernel.train(data, i, i + 1, 0.0, 0.0, 1)
    assert examples == (1 + (data.left_room[i] > 0))
    expected = 0.0
    for j in (i - 1, i + 1)[int(data.left_room[i] == 0):]:
        h, target = kernel.syn0[data.ids[j]], data.ids[i]
        for n in range(kernel.tables.lengths[target]):
            score = float(h @ kernel.syn1[kernel.tables.points[target, n]])
            sign = 1.0 if kernel.tables.codes[target, n] == 0 else -1.0
            expected += np.log1p(np.exp(-sign * score))
    assert loss == pytest.approx(expected, abs=0.004 * 2 * kernel.tables.lengths.max())  # table step: 0.012 in the score
    assert np.array_equal(kernel.syn0, before[0]) and np.array_equal(kernel.syn1, before[1])


def test_alias_table_draws_exactly_the_distribution():
    rng = np.random.default_rng(0)
    p = rng.random(1000) ** 3
    p /= p.sum()
    prob, alias = K.alias_table(p)
    n = p.shape[0]
    implied = prob / n
    np.add.at(implied, alias, (1.0 - prob) / n)  # bucket b gives alias[b] the rest of its 1/n
    np.testing.assert_allclose(implied, p, rtol=1e-9, atol=1e-15)


def test_backend_selection_and_errors():
    assert resolve_backend(Word2VecTrainingArguments()) == "compiled"
    assert resolve_backend(Word2VecTrainingArguments(backend="torch")) == "torch"
    assert resolve_backend(Word2VecTrainingArguments(device="meta")) == "torch"  # auto on an accelerator
    with pytest.raises(ValueError, match="backend='compiled' trains on the CPU only, got device='meta'"):
        resolve_backend(Word2VecTrainingArguments(backend="compiled", device="meta"))
    with pytest.raises(ValueError, match="backend must be 'auto', 'compiled', 'triton' or 'torch', got 'numba'"):
        resolve_backend(Word2VecTrainingArguments(backend="numba"))
    with pytest.raises(ValueError, match="parallel must be 'auto', 'thread' or 'process', got 'mpi'"):
        resolve_backend(Word2VecTrainingArguments(parallel="mpi"))
    model, _ = _tiny("cbow", "negative_sampling")
    with pytest.raises(TypeError, match="train float32 vectors, got float64"):
        CompiledWord2Vec(model.double())
    # negatives_shared_by: gensim's fresh draw per CBOW example, one draw per skip-gram window (Ji et al.), torch 32
    skipgram, _ = _tiny("skipgram", "negative_sampling")
    assert default_negatives_shared_by(model.config, "compiled") == default_negatives_shared_by(model.config, "triton") == 0
    assert default_negatives_shared_by(skipgram.config, "compiled") == 1
    assert default_negatives_shared_by(skipgram.config, "torch") == 32
    with pytest.raises(ValueError, match="negatives_shared_by must be >= 0 for the compiled backend, got -1"):
        train_word2vec(model.float(), _tiny_corpus(), Word2VecTrainingArguments(negatives_shared_by=-1,
                                                                               progress_bar=False))
