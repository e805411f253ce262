"""word2vec (issue 6): tree, noise table, sub-sampling, the fast trainer, save/continue, formats, pipelines."""

import copy
import math
import os
import sys

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA, run_without_hf_seq
from mixin import ModelTesterMixin
from transformers import AutoConfig, AutoModelForMaskedLM, AutoModelForPreTraining, AutoTokenizer, pipeline

import hf_seq  # noqa: F401  (registers the Auto classes)
from hf_seq.models.word2vec import (
    Word2VecConfig,
    Word2VecForMaskedLM,
    Word2VecForPreTraining,
    Word2VecKeyedVectors,
    Word2VecModel,
    build_huffman_tree,
    keep_probabilities,
    noise_distribution,
)
from hf_seq.models.word2vec.keyed_vectors_word2vec import spearman
from hf_seq.models.word2vec.training_word2vec import (
    Word2VecSGD,
    Word2VecTrainingArguments,
    _DeviceEpochData,
    device_window_pairs,
    model_from_keyed_vectors,
    prepare_remote_code,
    prepare_word2vec,
    sample_epoch,
    train_word2vec,
    window_pairs,
    word2vec_pair_dataset,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VOCAB = 40
COUNTS = [0] * 5 + [int(c) for c in np.random.default_rng(0).integers(1, 60, VOCAB - 5)]


# ---------------------------------------------------------------------------------------------------------------------
# shared tiny model checks (input vectors and the CBOW fill-mask head)
# ---------------------------------------------------------------------------------------------------------------------
class Word2VecModelTester:
    def get_config(self):
        return Word2VecConfig(vocab_size=VOCAB, vector_size=16, word_counts=COUNTS, window=2, mask_token_id=4)

    def prepare_inputs(self, config, with_labels=False, padded=True):
        g = torch.Generator().manual_seed(0)
        ids = torch.randint(5, config.vocab_size, (3, 7), generator=g)
        mask = torch.ones_like(ids)
        ids[:, 3] = 4  # one <mask> per row
        if padded:
            mask[0, 5:] = 0
            ids = ids.masked_fill(mask == 0, config.pad_token_id)
        inputs = {"input_ids": ids, "attention_mask": mask}
        if with_labels:
            inputs["labels"] = torch.full_like(ids, -100)
            inputs["labels"][:, 3] = torch.randint(5, config.vocab_size, (3,), generator=g)
        return inputs


class TestWord2VecShared(ModelTesterMixin):
    model_tester = Word2VecModelTester()
    all_model_classes = (Word2VecModel, Word2VecForMaskedLM)
    auto_classes = {"Word2VecModel": "AutoModel", "Word2VecForMaskedLM": "AutoModelForMaskedLM"}
    heavy_checks_in_default_run = True  # word2vec's representative for torch.compile / torch.export
    checkpointing_model_classes = ()  # one embedding lookup: no layer to recompute

    def _model(self, cls, config=None):
        # word2vec.c starts the output vectors at zero, which blocks the first gradient to the input vectors;
        # give them values so every check sees a trained-like model
        model = super()._model(cls, config)
        if hasattr(model, "output_layer"):
            with torch.no_grad():
                model.output_layer.weight.normal_(0, 0.3)
        return model

    def test_remote_code_in_clean_process(self, trained_cbow, tmp_path):
        # the mixin's check, extended: a trained model, all three heads from one folder, one clean subprocess
        check_remote_code_every_head(trained_cbow, tmp_path)


# ---------------------------------------------------------------------------------------------------------------------
# 1. Huffman tree, noise distribution, sub-sampling
# ---------------------------------------------------------------------------------------------------------------------
def test_huffman_prefix_code_and_depths():
    # the textbook example (CLRS 16.3): f:5 e:9 c:12 b:13 d:16 a:45 -> code lengths a 1, b c d 3, e f 4
    counts = [0, 0, 45, 13, 12, 16, 9, 5]
    points, codes, lengths = build_huffman_tree(counts)
    assert lengths.tolist() == [0, 0, 1, 3, 3, 3, 4, 4]
    words = [w for w in range(len(counts)) if counts[w] > 0]
    code_strings = {w: "".join(map(str, codes[w, : lengths[w]])) for w in words}
    for a in words:  # prefix-free and distinct
        for b in words:
            if a != b:
                assert not code_strings[b].startswith(code_strings[a]), (code_strings[a], code_strings[b])
    assert sum(2.0 ** -lengths[w] for w in words) == pytest.approx(1.0)  # a full binary tree (Kraft equality)
    n = len(words)
    assert all(points[w, 0] == n - 2 for w in words)  # every path starts at the root, word2vec.c's numbering
    assert points[words].max() <= n - 2
    # paths that share a code prefix share the nodes along it
    for a in words:
        for b in words:
            common = 0
            while common < min(lengths[a], lengths[b]) and codes[a, common] == codes[b, common]:
                common += 1
            assert (points[a, : common + (common < min(lengths[a], lengths[b]))] == points[b, : common + (common < min(lengths[a], lengths[b]))]).all()


def test_huffman_depth_grows_like_log_of_rank():
    counts = [int(1e6 / (r + 1)) for r in range(1000)]  # Zipf
    _, _, lengths = build_huffman_tree(counts)
    assert lengths[0] <= 4 and lengths[-1] >= 10
    assert np.all(np.diff(lengths) >= 0)  # rarer words never get shorter codes
    expected = sum(c * length for c, length in zip(counts, lengths)) / sum(counts)
    entropy = -sum((c / sum(counts)) * np.log2(c / sum(counts)) for c in counts)
    assert entropy <= expected < entropy + 1  # Huffman's optimality bound


def test_huffman_tree_is_gensims_for_the_same_vocabulary_order():
    """Ties between equal counts are broken as gensim's heap breaks them (ordered by count alone), so with the
    vocabulary in gensim's order the tree is gensim's, node for node; word2vec.c's two-pointer merge would make tied
    neighbours in the vocabulary's order siblings instead (a measured WordSim-353 cost with CBOW)."""
    from gensim.models import Word2Vec

    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(300)]
    counts = np.minimum(rng.zipf(1.6, size=300), 40) + 1  # many rare words with equal counts
    sentences = [[w] * int(c) for w, c in zip(words, counts)]
    gensim_model = Word2Vec(vector_size=4, hs=1, negative=0, min_count=1, sample=0, workers=1)
    gensim_model.build_vocab(sentences)
    wv = gensim_model.wv
    ordered = [int(wv.get_vecattr(w, "count")) for w in wv.index_to_key]
    assert len(set(ordered)) < len(ordered) // 4  # the ties are what this test is about
    points, codes, lengths = build_huffman_tree([0] + ordered)  # an id-0 special with count 0 has no path
    assert lengths[0] == 0
    for i, w in enumerate(wv.index_to_key, start=1):
        assert codes[i, : lengths[i]].tolist() == wv.get_vecattr(w, "code").tolist(), w
        assert points[i, : lengths[i]].tolist() == wv.get_vecattr(w, "point").tolist(), w


def test_prepare_word2vec_gives_gensims_vocabulary_and_tree():
    """The vocabulary is in gensim's order (most frequent first, equal counts latest-first-seen first), so the model's
    Huffman paths are gensim's for every word."""
    from gensim.models import Word2Vec

    rng = np.random.default_rng(1)
    vocab = [f"w{i}" for i in range(120)]
    lines = [" ".join(rng.choice(vocab, size=12, p=np.arange(1, 121)[::-1] / 7260)) for _ in range(150)]
    gensim_model = Word2Vec(vector_size=4, hs=1, negative=0, min_count=3, workers=1)
    gensim_model.build_vocab([line.split() for line in lines])
    tokenizer, config, _ = prepare_word2vec(lines, min_count=3, vector_size=4, objective="hierarchical_softmax")
    ids = tokenizer.get_vocab()
    ours = sorted((w for w in ids if config.word_counts[ids[w]] > 0), key=ids.get)
    assert ours == gensim_model.wv.index_to_key
    layer = Word2VecForPreTraining(config).output_layer
    for w in ours:
        n = int(layer.huffman_lengths[ids[w]])
        assert layer.huffman_codes[ids[w], :n].tolist() == gensim_model.wv.get_vecattr(w, "code").tolist(), w
        assert layer.huffman_points[ids[w], :n].tolist() == gensim_model.wv.get_vecattr(w, "point").tolist(), w


def test_noise_table_follows_counts_to_the_075():
    counts = [0, 0, 1000, 100, 10, 1]
    noise = noise_distribution(counts)
    want = np.array([0, 0, 1000**0.75, 100**0.75, 10**0.75, 1.0])
    np.testing.assert_allclose(noise, want / want.sum())
    config = Word2VecConfig(vocab_size=6, word_counts=counts, vector_size=4)
    model = Word2VecForPreTraining(config)
    torch.testing.assert_close(model.output_layer.noise_distribution, torch.tensor(want / want.sum()).float())
    draws = Word2VecSGD(model, seed=0).draw_noise(400_000).numpy()
    freq = np.bincount(draws, minlength=6) / draws.shape[0]
    np.testing.assert_allclose(freq, want / want.sum(), atol=3e-3)


def test_subsampling_keep_probabilities_match_word2vec_c():
    counts = np.array([0, 200000, 20000, 2000, 20])
    sample, total = 1e-4, counts.sum()
    keep = keep_probabilities(counts, sample)
    for f, p in zip(counts[1:], keep[1:]):
        want = (np.sqrt(f / (sample * total)) + 1) * (sample * total) / f
        assert p == pytest.approx(min(want, 1.0))
    assert keep[0] == 0.0 and keep[-1] == 1.0 and keep[1] < 0.1
    assert keep_probabilities(counts, 0.0)[1:].tolist() == [1.0] * 4
    # the per-epoch sampler keeps each word at that rate
    ids = np.repeat(np.arange(1, 5), counts[1:])
    corpus = type("C", (), {"ids": ids, "sentence_ids": np.zeros_like(ids), "__len__": lambda self: len(ids)})()
    config = Word2VecConfig(vocab_size=5, word_counts=counts.tolist(), sample=sample, vector_size=4)
    data = sample_epoch(corpus, config, np.random.default_rng(0))
    kept = np.bincount(data.ids, minlength=5)[1:] / counts[1:]
    tolerance = 5 * np.sqrt(keep[1:] * (1 - keep[1:]) / counts[1:]) + 1e-12  # 5 binomial standard deviations
    assert np.all(np.abs(kept - keep[1:]) <= tolerance), (kept, keep[1:])


@pytest.mark.parametrize("sample,start,stop", [(0, 0, None), (0.01, 7, -5)])
def test_dynamic_window_pairs_stay_in_sentence_and_window(sample, start, stop):
    tokenizer, config, corpus = prepare_word2vec(
        ["a b c d e f g h"] * 3 + ["x y z a b c d e f g h"] * 3 + ["q"], min_count=1, sample=sample, window=3
    )
    data = sample_epoch(corpus, config, np.random.default_rng(1))
    n = len(data.ids)
    stop = n if stop is None else n + stop
    rows, contexts, centres = window_pairs(data, start, stop, config.window)
    assert centres.tolist() == data.ids[start:stop].tolist()
    pos = np.arange(n)
    # recover each pair's context position: contexts are listed in offset order per centre
    for i in range(stop - start):
        r = start + i
        w = data.windows[r]
        same = pos[(data.sentence_ids == data.sentence_ids[r]) & (np.abs(pos - r) <= w) & (pos != r)]
        assert contexts[rows == i].tolist() == data.ids[same].tolist(), i
    assert set(np.unique(data.windows)) <= {1, 2, 3} and len(np.unique(data.windows)) == 3
    # the torch backend builds the same pairs, in the same order, on its device
    device_data = _DeviceEpochData.from_epoch(data, config.window, "cpu")
    for got, want in zip(device_window_pairs(device_data, start, stop), (rows, contexts, centres)):
        assert isinstance(got, torch.Tensor) and got.dtype == torch.long
        assert got.tolist() == want.tolist()
    if sample:
        assert n < len(corpus)  # sub-sampling dropped words, and the windows still respect sentences


# ---------------------------------------------------------------------------------------------------------------------
# 2. the fast trainer computes word2vec.c's updates = SGD on the summed loss of forward()
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "objective,architecture,cbow_mean,group",
    [
        ("negative_sampling", "skipgram", True, 1),
        ("negative_sampling", "skipgram", True, 4),
        ("hierarchical_softmax", "skipgram", True, 1),
        ("negative_sampling", "cbow", False, 3),
        ("hierarchical_softmax", "cbow", True, 1),
    ],
)
def test_fast_sgd_step_equals_autograd(objective, architecture, cbow_mean, group):
    config = Word2VecConfig(
        vocab_size=VOCAB, vector_size=8, word_counts=COUNTS, objective=objective, architecture=architecture,
        cbow_mean=cbow_mean,
    )
    model = Word2VecForPreTraining(config)
    with torch.no_grad():
        model.output_layer.weight.normal_(0, 0.3)
        model.word2vec.embeddings.weight.normal_(0, 0.3)
    reference = copy.deepcopy(model)
    lr, num = 0.1, 10
    g = torch.Generator().manual_seed(1)
    targets = torch.randint(5, VOCAB, (num,), generator=g)
    kernel = Word2VecSGD(model, negatives_shared_by=group, seed=3, max_row_updates=None)
    negatives = None
    if objective == "negative_sampling":  # the same draws the kernel will make, one row of k per group of pairs
        groups = -(-num // group)
        negatives = Word2VecSGD(model, group, seed=3).draw_noise(groups * 5).view(groups, 5)
        negatives = negatives.repeat_interleave(group, 0)[:num]
    if architecture == "skipgram":
        inputs = torch.randint(5, VOCAB, (num,), generator=g)
        loss = kernel.skipgram(inputs, targets, lr)
        out = reference(inputs, labels=targets, negative_ids=negatives)
    else:
        contexts = torch.randint(5, VOCAB, (num, 4), generator=g)
        mask = torch.ones_like(contexts)
        mask[::2, 3] = 0
        rows = torch.arange(num).repeat_interleave(mask.sum(1))
        loss = kernel.cbow(rows, contexts[mask.bool()], targets, lr)
        out = reference(contexts, labels=targets, attention_mask=mask, negative_ids=negatives)
    (out.loss * num).backward()
    assert loss == pytest.approx(out.loss.item() * num, rel=1e-5)
    cbow_mean_inputs = architecture == "cbow" and cbow_mean
    with torch.no_grad():
        for p in reference.parameters():
            p -= lr * p.grad
    for (name, a), b in zip(model.named_parameters(), reference.parameters()):
        if name == "word2vec.embeddings.weight" and cbow_mean_inputs:
            continue  # word2vec.c's CBOW-mean input step is count x the gradient: test_cbow_mean_update_is_word2vec_c
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0, msg=name)


@pytest.mark.parametrize("max_row_updates", [None, 2.0])
def test_skipgram_hs_by_centre_equals_pair_by_pair_layout(max_row_updates):
    # the centre-grouped HS kernel (one Huffman path per centre, batched matmuls) makes the updates of `skipgram`
    config = Word2VecConfig(vocab_size=VOCAB, vector_size=8, word_counts=COUNTS, objective="hierarchical_softmax")
    model = Word2VecForPreTraining(config)
    with torch.no_grad():
        model.output_layer.weight.normal_(0, 0.3)
        model.word2vec.embeddings.weight.normal_(0, 0.3)
    reference, initial = copy.deepcopy(model), copy.deepcopy(model)
    g = torch.Generator().manual_seed(2)
    centres = torch.randint(0, VOCAB, (12,), generator=g)
    per_centre = torch.tensor([3, 0, 1, 4, 4, 2, 0, 1, 3, 4, 2, 1])  # centres 1 and 6 have no pair
    rows = torch.arange(12).repeat_interleave(per_centre)
    contexts = torch.randint(0, VOCAB, (rows.shape[0],), generator=g)
    loss = Word2VecSGD(model, max_row_updates=max_row_updates).skipgram_by_centre(rows, contexts, centres, 0.2)
    expected = Word2VecSGD(reference, max_row_updates=max_row_updates).skipgram(contexts, centres[rows], 0.2)
    assert loss == pytest.approx(expected, rel=1e-5)
    for (name, a), b, before in zip(model.named_parameters(), reference.parameters(), initial.parameters()):
        assert not torch.equal(b, before), name  # the step moved both tables
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0, msg=name)


def test_cbow_mean_update_is_word2vec_c():
    # cbow_mean: the error of h is added to each context vector undivided (word2vec.c), i.e. count x autograd's step
    config = Word2VecConfig(vocab_size=VOCAB, vector_size=8, word_counts=COUNTS, architecture="cbow", negative=3)
    model = Word2VecForPreTraining(config)
    with torch.no_grad():
        model.output_layer.weight.normal_(0, 0.3)
    reference = copy.deepcopy(model)
    contexts = torch.tensor([[6, 7, 8, 9]])
    targets = torch.tensor([10])
    negatives = Word2VecSGD(model, 1, seed=5).draw_noise(3).view(1, 3)
    Word2VecSGD(model, 1, seed=5, max_row_updates=None).cbow(torch.zeros(4, dtype=torch.long), contexts[0], targets, 0.1)
    reference(contexts, labels=targets, negative_ids=negatives).loss.backward()
    grad = reference.word2vec.embeddings.weight.grad
    moved = model.word2vec.embeddings.weight - reference.word2vec.embeddings.weight
    torch.testing.assert_close(moved[6:10], -0.1 * 4 * grad[6:10], atol=1e-6, rtol=0)


# ---------------------------------------------------------------------------------------------------------------------
# 3. learning: planted co-occurrences
# ---------------------------------------------------------------------------------------------------------------------
CLUSTERS = [[f"{c}{i}" for i in range(5)] for c in "abcdef"]


def planted_corpus(seed=0, sentences=1500):
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(sentences):
        cluster = CLUSTERS[rng.integers(len(CLUSTERS))]
        lines.append(" ".join(rng.choice(cluster, size=8)))
    return lines


@pytest.mark.parametrize("backend", ["compiled", "torch"])
@pytest.mark.parametrize(
    "architecture,objective",
    [("skipgram", "negative_sampling"), ("cbow", "negative_sampling"), ("skipgram", "hierarchical_softmax"),
     ("cbow", "hierarchical_softmax")],
)
def test_planted_cooccurrences_give_expected_neighbours(architecture, objective, backend):
    tokenizer, config, corpus = prepare_word2vec(
        planted_corpus(), min_count=1, vector_size=16, window=3, sample=0, architecture=architecture,
        objective=objective,
    )
    torch.manual_seed(0)
    model = Word2VecForPreTraining(config)
    # 64 centres per batch: with 30 words, larger batches hit every row ~50 times per step and CBOW's lr 0.05 can
    # overshoot on some initialisations (the max_row_updates cap is tuned for real vocabularies)
    history = train_word2vec(
        model, corpus,
        Word2VecTrainingArguments(epochs=4, batch_words=64, progress_bar=False, seed=0, backend=backend),
    )
    assert history[-1]["loss"] < history[0]["loss"] and history[-1]["backend"] == backend
    kv = Word2VecKeyedVectors.from_model(model, tokenizer)
    for cluster in CLUSTERS:
        for word in cluster:
            neighbours = [w for w, _ in kv.most_similar(word, topn=4)]
            assert set(neighbours) == set(cluster) - {word}, (word, neighbours)
    assert kv.doesnt_match(["a0", "a1", "a2", "d3"]) == "d3"
    assert kv.similarity("a0", "a1") > kv.similarity("a0", "b1")


def test_default_batch_words():
    from hf_seq.models.word2vec.training_word2vec import default_batch_words

    cbow = Word2VecConfig(vocab_size=VOCAB, word_counts=COUNTS, architecture="cbow")
    skipgram = Word2VecConfig(vocab_size=VOCAB, word_counts=COUNTS, architecture="skipgram")
    assert default_batch_words(cbow) == 4096 and default_batch_words(skipgram) == 1024
    assert default_batch_words(cbow, workers=2) == 1024  # 4096 diverged with 2 Hogwild workers on WikiText-2
    # the compiled kernels update pair by pair: a batch is only a unit of work (gensim's batch_words)
    assert default_batch_words(cbow, 2, "compiled") == default_batch_words(skipgram, 1, "compiled") == 10000


@pytest.mark.parametrize("backend,parallel",
                         [("compiled", "thread"), ("compiled", "process"), ("torch", "process"), ("torch", "thread")])
def test_two_workers_train_too(backend, parallel):
    """Two Hogwild workers, as forked processes on shared-memory vectors or as threads: the loss falls from epoch to
    epoch (each epoch forks afresh from the parent, so it only does if the parent's vectors received the updates) and
    the planted clusters come out."""
    tokenizer, config, corpus = prepare_word2vec(planted_corpus(1, 600), min_count=1, vector_size=16, sample=0)
    torch.manual_seed(0)
    model = Word2VecForPreTraining(config)
    before = model.word2vec.embeddings.weight.detach().clone()
    history = train_word2vec(
        model, corpus,
        Word2VecTrainingArguments(epochs=3, batch_words=128, workers=2, parallel=parallel, progress_bar=False,
                                  backend=backend),
    )
    assert history[-1]["loss"] < history[0]["loss"] and history[-1]["words_per_s"] > 0
    assert sum(h["pairs"] for h in history) > 0 and not torch.equal(model.word2vec.embeddings.weight, before)
    assert model.word2vec.embeddings.weight.is_shared() == (parallel == "process")
    kv = Word2VecKeyedVectors.from_model(model, tokenizer)
    for cluster in CLUSTERS:
        assert {w for w, _ in kv.most_similar(cluster[0], topn=len(cluster) - 1)} == set(cluster[1:])


def test_a_failing_worker_process_is_reported(monkeypatch):
    import hf_seq.models.word2vec.training_word2vec as w2v

    def broken(*args, **kwargs):
        raise ValueError("planted failure")

    monkeypatch.setattr(w2v._Epoch, "train_batch", broken)  # the forked workers inherit the patched class
    tokenizer, config, corpus = prepare_word2vec(planted_corpus(1, 100), min_count=1, vector_size=8, sample=0)
    with pytest.raises(RuntimeError, match=r"(?s)failed in 2 of 2 worker processes.*worker 0:.*planted failure"):
        train_word2vec(Word2VecForPreTraining(config), corpus,
                       Word2VecTrainingArguments(epochs=1, batch_words=16, workers=2, parallel="process",
                                                 progress_bar=False))


# ---------------------------------------------------------------------------------------------------------------------
# 4. save / load / continue
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["compiled", "torch"])
@pytest.mark.parametrize("objective", ["negative_sampling", "hierarchical_softmax"])
def test_save_load_continues_training_identically(tmp_path, objective, backend):
    tokenizer, config, corpus = prepare_word2vec(
        planted_corpus(2, 300), min_count=1, vector_size=8, objective=objective, architecture="cbow"
    )
    args = Word2VecTrainingArguments(epochs=3, batch_words=64, progress_bar=False, seed=7, backend=backend)
    torch.manual_seed(0)
    straight = Word2VecForPreTraining(config)
    torch.manual_seed(0)
    resumed = Word2VecForPreTraining(config)
    train_word2vec(straight, corpus, args)
    train_word2vec(resumed, corpus, args, last_epoch=2)
    resumed.save_pretrained(tmp_path)
    reloaded = AutoModelForPreTraining.from_pretrained(tmp_path)
    assert type(reloaded) is Word2VecForPreTraining
    for (name, a), b in zip(resumed.state_dict().items(), reloaded.state_dict().values()):
        assert torch.equal(a, b), name  # output vectors / Huffman tree included
    train_word2vec(reloaded, corpus, args, first_epoch=2)
    for (name, a), b in zip(straight.state_dict().items(), reloaded.state_dict().values()):
        assert torch.equal(a, b), name


def test_pretraining_checkpoint_loads_as_every_head(tmp_path):
    tokenizer, config, corpus = prepare_word2vec(planted_corpus(3, 200), min_count=1, vector_size=8)
    model = Word2VecForPreTraining(config)
    train_word2vec(model, corpus, Word2VecTrainingArguments(epochs=1, progress_bar=False))
    model.save_pretrained(tmp_path)
    base = Word2VecModel.from_pretrained(tmp_path)
    mlm = AutoModelForMaskedLM.from_pretrained(tmp_path)
    assert torch.equal(base.embeddings.weight, model.word2vec.embeddings.weight)
    assert torch.equal(mlm.output_layer.weight, model.output_layer.weight)


# ---------------------------------------------------------------------------------------------------------------------
# 5. word2vec C formats and gensim
# ---------------------------------------------------------------------------------------------------------------------
def _random_vectors(n=50, d=7, seed=0):
    rng = np.random.default_rng(seed)
    words = [f"w{i}é" for i in range(n)]  # non-ASCII on purpose
    vectors = (rng.standard_normal((n, d)) * 10.0 ** rng.integers(-8, 4, (n, d))).astype(np.float32)
    return Word2VecKeyedVectors(words, vectors, counts=range(n, 0, -1))


@pytest.mark.parametrize("binary", [False, True])
def test_c_format_round_trip_is_bit_exact(tmp_path, binary):
    kv = _random_vectors()
    path, again = tmp_path / "v", tmp_path / "v2"
    kv.save_word2vec_format(str(path), binary=binary)
    back = Word2VecKeyedVectors.load_word2vec_format(str(path), binary=binary)
    assert back.index_to_key == kv.index_to_key
    assert back.vectors.tobytes() == kv.vectors.tobytes()
    back.save_word2vec_format(str(again), binary=binary)
    assert path.read_bytes() == again.read_bytes()
    assert Word2VecKeyedVectors.load_word2vec_format(str(path), binary=binary, limit=5).index_to_key == kv.index_to_key[:5]


@pytest.mark.parametrize("binary", [False, True])
def test_gensim_reads_our_export_and_we_read_gensims(tmp_path, binary):
    from gensim.models import KeyedVectors

    kv = _random_vectors()
    kv.save_word2vec_format(str(tmp_path / "ours"), binary=binary)
    theirs = KeyedVectors.load_word2vec_format(str(tmp_path / "ours"), binary=binary)
    assert theirs.index_to_key == kv.index_to_key
    np.testing.assert_array_equal(theirs.vectors, kv.vectors)
    theirs.save_word2vec_format(str(tmp_path / "theirs"), binary=binary)
    ours = Word2VecKeyedVectors.load_word2vec_format(str(tmp_path / "theirs"), binary=binary)
    np.testing.assert_array_equal(ours.vectors, kv.vectors)


def test_gensim_model_loads_and_queries_agree():
    from gensim.models import Word2Vec

    sentences = [line.split() for line in planted_corpus(4, 300)]
    g = Word2Vec(sentences, vector_size=12, min_count=1, window=3, epochs=2, workers=1, seed=1)
    model, tokenizer = model_from_keyed_vectors(g)
    assert isinstance(model, Word2VecForPreTraining)  # syn1neg came along: training can continue
    kv = Word2VecKeyedVectors.from_model(model, tokenizer)
    assert kv.index_to_key == g.wv.index_to_key
    np.testing.assert_array_equal(kv["a1"], g.wv["a1"])
    ours = kv.most_similar(positive=["a1", "b2"], negative=["c3"], topn=5)
    theirs = g.wv.most_similar(positive=["a1", "b2"], negative=["c3"], topn=5)
    assert [w for w, _ in ours] == [w for w, _ in theirs]
    np.testing.assert_allclose([s for _, s in ours], [s for _, s in theirs], atol=1e-5)
    ours = kv.most_similar_cosmul(positive=["a1", "b2"], negative=["c3"], topn=5)
    theirs = g.wv.most_similar_cosmul(positive=["a1", "b2"], negative=["c3"], topn=5)
    assert [w for w, _ in ours] == [w for w, _ in theirs]
    assert kv.doesnt_match(["a1", "a2", "b3", "a4"]) == g.wv.doesnt_match(["a1", "a2", "b3", "a4"])
    assert kv.similarity("a1", "b2") == pytest.approx(float(g.wv.similarity("a1", "b2")), abs=1e-6)
    # continue training the converted model with the fast trainer
    corpus = prepare_word2vec(planted_corpus(4, 300), min_count=1)[2]
    from hf_seq.models.word2vec.training_word2vec import encode_corpus

    corpus = encode_corpus(planted_corpus(4, 300), tokenizer, model.config)
    history = train_word2vec(model, corpus, Word2VecTrainingArguments(epochs=1, progress_bar=False))
    assert np.isfinite(history[0]["loss"])


def test_evaluations_match_gensim(tmp_path):
    from gensim.models import KeyedVectors

    kv = _random_vectors(n=40, d=6, seed=3)
    kv = Word2VecKeyedVectors([f"w{i}" for i in range(40)], kv.vectors, counts=range(40, 0, -1))
    rng = np.random.default_rng(0)
    lines = [": capital-world"] + [" ".join(f"w{i}" for i in rng.integers(0, 45, 4)) for _ in range(60)]
    lines += [": gram1-adjective"] + [" ".join(f"w{i}" for i in rng.integers(0, 40, 4)) for _ in range(60)]
    (tmp_path / "q.txt").write_text("\n".join(lines) + "\n")
    pairs = ["# comment"] + [f"w{a}\tw{b}\t{rng.uniform(0, 10):.2f}" for a, b in rng.integers(0, 44, (80, 2))]
    (tmp_path / "p.txt").write_text("\n".join(pairs) + "\n")
    g = KeyedVectors(6)
    g.add_vectors(kv.index_to_key, kv.vectors)
    ours = kv.evaluate_word_analogies(str(tmp_path / "q.txt"), restrict_vocab=35)
    total, sections = g.evaluate_word_analogies(str(tmp_path / "q.txt"), restrict_vocab=35)
    assert ours["total"] == pytest.approx(total)
    by_name = {s["section"]: s for s in sections}
    assert ours["sections"]["capital-world"]["correct"] == len(by_name["capital-world"]["correct"])
    assert ours["syntactic_questions"] == len(by_name["gram1-adjective"]["correct"]) + len(by_name["gram1-adjective"]["incorrect"])
    pearson, (rho, _), oov = g.evaluate_word_pairs(str(tmp_path / "p.txt"))
    mine = kv.evaluate_word_pairs(str(tmp_path / "p.txt"))
    assert mine["spearman"] == pytest.approx(rho, abs=1e-9) and mine["pearson"] == pytest.approx(pearson[0], abs=1e-6)
    assert 1 - mine["coverage"] == pytest.approx(oov / 100, abs=1e-9)
    assert spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(0.9486832980505138)


# ---------------------------------------------------------------------------------------------------------------------
# 6. pipelines and remote code
# ---------------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_cbow(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cbow")
    tokenizer, config, corpus = prepare_word2vec(
        planted_corpus(5), min_count=1, vector_size=16, window=3, sample=0, architecture="cbow"
    )
    model = Word2VecForPreTraining(config)
    train_word2vec(model, corpus, Word2VecTrainingArguments(epochs=4, batch_words=256, progress_bar=False))
    prepare_remote_code(model)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder, model, tokenizer


def test_fill_mask_pipeline_predicts_the_cluster(trained_cbow):
    folder, model, tokenizer = trained_cbow
    fill = pipeline("fill-mask", model=str(folder), tokenizer=str(folder))
    for cluster in CLUSTERS[:3]:
        text = " ".join(cluster[:2]) + " <mask> " + " ".join(cluster[3:])
        top = fill(text, top_k=3)
        assert {t["token_str"].strip() for t in top} <= set(cluster), (text, top)
    assert all(t["token_str"] not in ("<pad>", "<mask>", "<unk>") for t in fill("a0 <mask> a1", top_k=10))


def test_feature_extraction_pipeline_returns_word_vectors(trained_cbow):
    folder, model, tokenizer = trained_cbow
    extract = pipeline("feature-extraction", model=str(folder), tokenizer=str(folder))
    out = np.asarray(extract("a0 b1 c2"))  # [1, 3, d]
    ids = tokenizer("a0 b1 c2")["input_ids"]
    np.testing.assert_allclose(out[0], model.word2vec.embeddings.weight[ids].detach().numpy(), atol=1e-7)


def check_remote_code_every_head(trained_cbow, tmp_path):
    """One subprocess without hf_seq loads the three heads (a clean interpreter costs 10-30 s on a busy machine)."""
    folder, model, tokenizer = trained_cbow
    contexts = torch.tensor([[6, 7, 8, 9], [10, 11, 12, 1]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    labels, negatives = torch.tensor([7, 12]), torch.tensor([[5, 6, 7, 8, 9], [9, 8, 7, 6, 5]])
    with torch.no_grad():
        want = model(contexts, labels=labels, attention_mask=mask, negative_ids=negatives)
    got = run_without_hf_seq(
        f"""
        import json, torch
        from transformers import AutoModel, AutoModelForPreTraining, AutoModelForMaskedLM, AutoTokenizer
        model = AutoModelForPreTraining.from_pretrained({str(folder)!r}, trust_remote_code=True)
        out = model(torch.tensor({contexts.tolist()}), labels=torch.tensor({labels.tolist()}),
                    attention_mask=torch.tensor({mask.tolist()}), negative_ids=torch.tensor({negatives.tolist()}))
        tok = AutoTokenizer.from_pretrained({str(folder)!r}, trust_remote_code=True)
        mlm = AutoModelForMaskedLM.from_pretrained({str(folder)!r}, trust_remote_code=True)
        logits = mlm(**tok(["a0 a1 <mask> a3"], return_tensors="pt")).logits
        print(json.dumps({{"module": type(model).__module__, "loss": out.loss.item(), "logits": out.logits.tolist(),
                          "buffers": sorted(k for k, _ in model.named_buffers()),
                          "best": tok.convert_ids_to_tokens(int(logits[0, 2].argmax())),
              "mlm_logits": logits[0, 2].tolist(),
              "base": AutoModel.from_pretrained({str(folder)!r}, trust_remote_code=True)(torch.tensor([[5, 6]])).last_hidden_state.tolist()}}))
        """,
        tmp_path,
    )
    assert not got["module"].startswith("hf_seq")
    assert got["loss"] == pytest.approx(want.loss.item(), abs=1e-6)
    torch.testing.assert_close(torch.tensor(got["logits"]), want.logits, atol=1e-6, rtol=0)
    assert got["buffers"] == ["output_layer.noise_distribution"]
    assert got["best"] in CLUSTERS[0]
    mlm = Word2VecForMaskedLM.from_pretrained(folder)
    with torch.no_grad():
        want_mlm = mlm(**tokenizer(["a0 a1 <mask> a3"], return_tensors="pt")).logits[0, 2]
        want_base = model.word2vec(torch.tensor([[5, 6]])).last_hidden_state
    torch.testing.assert_close(torch.tensor(got["mlm_logits"]), want_mlm, atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.tensor(got["base"]), want_base, atol=0, rtol=0)


# ---------------------------------------------------------------------------------------------------------------------
# 7. Trainer path and the training script
# ---------------------------------------------------------------------------------------------------------------------
def test_trainer_lowers_the_loss(tmp_path):
    from transformers import Trainer, TrainingArguments

    tokenizer, config, corpus = prepare_word2vec(
        planted_corpus(6, 200), min_count=1, vector_size=16, architecture="cbow", sample=0
    )
    model = Word2VecForPreTraining(config)
    dataset = word2vec_pair_dataset(corpus, config)
    args = TrainingArguments(
        output_dir=str(tmp_path), per_device_train_batch_size=64, max_steps=40, learning_rate=0.5,
        optim="sgd", lr_scheduler_type="linear", logging_steps=10, report_to=[], use_cpu=True, save_strategy="no",
        disable_tqdm=True,
    )
    trainer = Trainer(model=model, args=args, train_dataset=dataset)
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("architecture,objective", [("skipgram", "negative_sampling"), ("cbow", "hierarchical_softmax")])
def test_accelerate_loop_learns_the_planted_clusters_and_saves(tmp_path, architecture, objective):
    """training/train_word2vec_accelerate.py: the autograd loss in an accelerate loop lowers the loss epoch after epoch,
    puts the planted clusters' words next to each other, saves a folder that reloads to the same vectors, and the same
    seed gives the same weights."""
    sys.path.insert(0, os.path.join(ROOT, "training"))
    import train_word2vec_accelerate as script

    corpus = tmp_path / "planted.txt"
    corpus.write_text("\n".join(planted_corpus(4, 400)) + "\n")
    argv = ["--corpus", str(corpus), "--min-count", "1", "--vector-size", "16", "--window", "3", "--sample", "0",
            "--epochs", "4", "--batch-size", "64", "--architecture", architecture, "--objective", objective]
    results = script.main(argv + ["--out", str(tmp_path / "a")])
    losses = [h["loss"] for h in results["history"]]
    assert results["processes"] == 1 and losses[-1] < losses[0] * 0.9, losses
    model = Word2VecForPreTraining.from_pretrained(tmp_path / "a")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "a")
    kv = Word2VecKeyedVectors.from_model(model, tokenizer)
    for cluster in CLUSTERS:
        neighbours = [w for w, _ in kv.most_similar(cluster[0], topn=len(cluster) - 1)]
        assert len(set(neighbours) & set(cluster)) >= len(cluster) - 2, (cluster, neighbours)
    script.main(argv + ["--out", str(tmp_path / "b")])
    again = Word2VecForPreTraining.from_pretrained(tmp_path / "b")
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(again.state_dict()[name], tensor, rtol=0, atol=0, msg=name)

@pytest.mark.skipif(not os.path.exists(os.path.join(SHARED_DATA, "text8-head")), reason="shared data not mounted")
def test_real_text_prefix_trains(tmp_path):
    # uses the shared text8 prefix when present (the default suite never needs it)
    with open(os.path.join(SHARED_DATA, "text8-head", "text8.split.head")) as f:
        lines = [next(f) for _ in range(300)]
    tokenizer, config, corpus = prepare_word2vec(lines, min_count=3, vector_size=16)
    history = train_word2vec(Word2VecForPreTraining(config), corpus, Word2VecTrainingArguments(epochs=2, progress_bar=False))
    assert history[1]["loss"] < history[0]["loss"]


# ---------------------------------------------------------------------------------------------------------------------
# 8. clear errors
# ---------------------------------------------------------------------------------------------------------------------
def test_clear_errors():
    kv = _random_vectors(n=5)
    with pytest.raises(KeyError, match="'nope' is not in the vocabulary"):
        kv.most_similar("nope")
    with pytest.raises(KeyError, match="not in the vocabulary"):
        kv.similarity("w0é", "nope")
    with pytest.raises(ValueError, match="corpus is empty"):
        prepare_word2vec(["", "   "])
    with pytest.raises(ValueError, match="min_count=5"):
        prepare_word2vec(["a b c d"], min_count=5)
    with pytest.raises(ValueError, match="at least 2 distinct words"):
        prepare_word2vec(["a a a a a a"], min_count=1)
    with pytest.raises(ValueError, match="fewer than 2 in-vocabulary words"):
        prepare_word2vec(["a", "b", "a", "b"], min_count=1)
    with pytest.raises(ValueError, match="architecture='glove'"):
        Word2VecConfig(architecture="glove")
    with pytest.raises(ValueError, match="word_counts has 3 entries but vocab_size is 4"):
        Word2VecConfig(vocab_size=4, word_counts=[1, 2, 3])
    with pytest.raises(ValueError, match="window=0"):
        Word2VecConfig(window=0)
    with pytest.raises(ValueError, match="hierarchical softmax needs at least 2 words"):
        Word2VecForPreTraining(Word2VecConfig(vocab_size=3, word_counts=[0, 0, 4], objective="hierarchical_softmax"))
    model = Word2VecForPreTraining(Word2VecConfig(vocab_size=VOCAB, vector_size=4, word_counts=COUNTS))
    with pytest.raises(ValueError, match=r"input_ids must lie in \[0, 40\)"):
        model(torch.tensor([3, 40]), labels=torch.tensor([5, 6]))
    with pytest.raises(ValueError, match="labels must lie"):
        model(torch.tensor([3, 4]), labels=torch.tensor([-1, 6]))
    with pytest.raises(ValueError, match="attention_mask shape"):
        model(torch.tensor([[3, 4]]), labels=torch.tensor([5]), attention_mask=torch.ones(1, 3))


@pytest.mark.parametrize("by_centre", [False, True])
def test_hierarchical_softmax_skips_saturated_nodes_as_word2vec_c(by_centre):
    """word2vec.c / gensim leave out a Huffman node whose |h . v| >= 6: it moves neither itself nor the input; the
    other nodes of the path get the usual update, and the loss still counts every node."""
    from hf_seq.models.word2vec.training_word2vec import MAX_EXP

    config = Word2VecConfig(vocab_size=VOCAB, vector_size=8, word_counts=COUNTS, objective="hierarchical_softmax")
    model = Word2VecForPreTraining(config)
    layer = model.output_layer
    target, context = 9, 7  # ids from 5 on are words with counts (a Huffman path of depth >= 2)
    path = layer.huffman_points[target][: layer.huffman_lengths[target]]
    with torch.no_grad():
        model.word2vec.embeddings.weight.zero_()
        model.word2vec.embeddings.weight[context, 0] = 1.0
        layer.weight.zero_()
        layer.weight[path[0], 0] = 2 * MAX_EXP  # saturated: skipped
        layer.weight[path[1], 0] = 0.5  # ordinary
    before_out, before_in = layer.weight.clone(), model.word2vec.embeddings.weight.clone()
    kernel = Word2VecSGD(model, max_row_updates=None)
    if by_centre:
        loss = kernel.skipgram_by_centre(torch.tensor([0]), torch.tensor([context]), torch.tensor([target]), 0.1)
    else:
        loss = kernel.skipgram(torch.tensor([context]), torch.tensor([target]), 0.1)
    moved = (layer.weight - before_out).abs().sum(1)
    assert moved[path[0]] == 0 and moved[path[1]] > 0
    error_in = model.word2vec.embeddings.weight[context] - before_in[context]
    code1 = float(layer.huffman_codes[target][1])
    assert error_in[0].item() == pytest.approx(0.1 * (1 - code1 - torch.sigmoid(torch.tensor(0.5)).item()) * 0.5)
    code0 = float(layer.huffman_codes[target][0])
    saturated = -math.log(max(1 - torch.sigmoid(torch.tensor(12.0)).item() if code0 else torch.sigmoid(
        torch.tensor(12.0)).item(), 1e-30))
    assert loss > saturated - 1e-6  # the skipped node's term is in the loss


# --- conventions of a native transformers model (issue 19): standard config names, strict keywords ---
def test_standard_config_names():
    config = Word2VecConfig(vocab_size=VOCAB, vector_size=12)
    assert config.hidden_size == 12 and config.num_hidden_layers == 1
    config.hidden_size = 20  # attribute_map: one value under both names
    assert config.vector_size == 20
    again = AutoConfig.for_model("hf_seq_word2vec", **{k: v for k, v in config.to_dict().items() if k != "model_type"})
    assert again.hidden_size == 20
    with pytest.raises(ValueError, match="num_hidden_layers=2"):
        Word2VecConfig(num_hidden_layers=2)


def test_pretraining_head_return_dict_and_strict_kwargs():
    model = Word2VecForPreTraining(Word2VecModelTester().get_config()).eval()
    ids, labels, negatives = torch.tensor([5, 6]), torch.tensor([7, 8]), torch.tensor([[9, 10], [11, 12]])
    out = model(ids, labels=labels, negative_ids=negatives)
    tup = model(ids, labels=labels, negative_ids=negatives, return_dict=False)
    assert isinstance(tup, tuple) and len(tup) == 3
    for got, want in zip(tup, out.to_tuple()):
        torch.testing.assert_close(got, want)
    with pytest.raises(TypeError, match="negative_idz"):
        model(ids, labels=labels, negative_idz=negatives)


def test_masked_lm_labels_all_ignored_are_refused():
    model = Word2VecForMaskedLM(Word2VecModelTester().get_config())
    ids = torch.randint(5, VOCAB, (2, 4))
    with pytest.raises(ValueError, match="labels.*-100"):
        model(ids, labels=torch.full_like(ids, -100))
