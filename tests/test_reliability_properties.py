"""Issue 9, property-based tests: random small configs and random inputs for every family.

Properties: forward/backward shapes, finite loss and gradients, save/load identity, cached generation == a full
uncached forward over the generated text (step by step logits), batched == one at a time, padding invariance.

Profiles (selected with the environment variable HYPOTHESIS_PROFILE, default "ci"):
    ci       a few derandomized examples per property (same examples every run: fast and stable in CI)
    nightly  many random examples:  HYPOTHESIS_PROFILE=nightly python -m pytest tests/test_reliability_properties.py
The profiles are applied per test (not loaded globally), so other test modules keep their own settings.
"""

import os

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hf_seq  # noqa: F401
from hf_seq.models.recurrent import (
    GRUConfig,
    GRUForCausalLM,
    LSTMConfig,
    LSTMForCausalLM,
    LSTMForSequenceClassification,
    RNNConfig,
    RNNForCausalLM,
)
from hf_seq.models.seq2seq import RNNSeq2SeqConfig, RNNSeq2SeqForConditionalGeneration
from hf_seq.models.transformer import TransformerConfig, TransformerForCausalLM, TransformerForConditionalGeneration
from hf_seq.models.word2vec import Word2VecConfig, Word2VecForMaskedLM, Word2VecForPreTraining

_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
               print_blob=True)
settings.register_profile("ci", max_examples=4, derandomize=True, **_COMMON)
settings.register_profile("nightly", max_examples=150, **_COMMON)
PROFILE = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
VOCAB = 30
TOL = dict(atol=2e-5, rtol=1e-4)

# ---------------------------------------------------------------------------------------------------------------------
# strategies
# ---------------------------------------------------------------------------------------------------------------------
_CELLS = {"rnn": (RNNConfig, RNNForCausalLM), "gru": (GRUConfig, GRUForCausalLM), "lstm": (LSTMConfig, LSTMForCausalLM)}


@st.composite
def recurrent_lm(draw):
    cell = draw(st.sampled_from(sorted(_CELLS)))
    hidden = draw(st.sampled_from([4, 8, 12]))
    embed = draw(st.sampled_from([4, 8, 12]))
    tie = draw(st.booleans())
    config_cls, model_cls = _CELLS[cell]
    config = config_cls(
        vocab_size=VOCAB, hidden_size=hidden, embedding_size=embed, num_hidden_layers=draw(st.integers(1, 3)),
        tie_word_embeddings=tie, output_projection=tie and hidden != embed,
        embedding_dropout=0.1, hidden_dropout=0.1, output_dropout=0.1, initializer_range=0.3,
    )
    torch.manual_seed(draw(st.integers(0, 2**16)))
    return model_cls(config).eval()


@st.composite
def rnn_seq2seq(draw):
    attention = draw(st.sampled_from(["none", "bahdanau", "luong"]))
    kw = dict(attention=attention, cell_type=draw(st.sampled_from(["rnn", "gru", "lstm"])),
              bidirectional_encoder=draw(st.booleans()), encoder_layers=draw(st.integers(1, 2)),
              decoder_layers=draw(st.integers(1, 2)))
    if attention == "luong":
        kw["attention_score"] = draw(st.sampled_from(["general", "concat"]))
        kw["input_feeding"] = draw(st.booleans())
    config = RNNSeq2SeqConfig(vocab_size=VOCAB, hidden_size=draw(st.sampled_from([8, 12])),
                              encoder_embedding_size=8, decoder_embedding_size=8, attention_size=8, dropout=0.1, **kw)
    torch.manual_seed(draw(st.integers(0, 2**16)))
    return RNNSeq2SeqForConditionalGeneration(config).eval()


@st.composite
def transformer(draw, encoder_decoder: bool):
    heads = draw(st.sampled_from([1, 2, 4]))
    config = TransformerConfig(
        vocab_size=VOCAB, d_model=heads * draw(st.sampled_from([2, 4])) * 2, d_ff=16, num_heads=heads,
        encoder_layers=draw(st.integers(1, 2)), decoder_layers=draw(st.integers(1, 2)), max_position_embeddings=24,
        norm_first=draw(st.booleans()), position_embedding_type=draw(st.sampled_from(["sinusoidal", "learned"])),
        dropout=0.1,
    )
    torch.manual_seed(draw(st.integers(0, 2**16)))
    cls = TransformerForConditionalGeneration if encoder_decoder else TransformerForCausalLM
    return cls(config).eval()


@st.composite
def word2vec(draw, cls):
    counts = [0, 0, 0, 0] + draw(st.lists(st.integers(1, 50), min_size=VOCAB - 4, max_size=VOCAB - 4))
    config = Word2VecConfig(
        vocab_size=VOCAB, vector_size=draw(st.sampled_from([4, 8])), word_counts=counts,
        architecture=draw(st.sampled_from(["skipgram", "cbow"])),
        objective=draw(st.sampled_from(["negative_sampling", "hierarchical_softmax"])),
        window=draw(st.integers(1, 3)), negative=draw(st.integers(1, 4)), min_count=1,
    )
    torch.manual_seed(draw(st.integers(0, 2**16)))
    model = cls(config).eval()
    with torch.no_grad():  # word2vec starts its output side at zero: give it values so the properties bite
        for p in model.parameters():
            p.normal_(0, 0.3)
    return model


def lengths(max_batch=3, max_len=7, min_len=1):
    return st.lists(st.integers(min_len, max_len), min_size=1, max_size=max_batch)


def _sequences(lens, seed, low=4):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(low, VOCAB, (n,), generator=g) for n in lens]


def _pad(seqs, side, pad=1):
    T = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), pad)
    mask = torch.zeros(len(seqs), T, dtype=torch.long)
    for i, s in enumerate(seqs):
        span = slice(T - len(s), T) if side == "left" else slice(0, len(s))
        ids[i, span], mask[i, span] = s, 1
    return ids, mask


def _assert_padding_invariant(model, seqs, per_token: bool):
    """The logits of each sequence in a batch padded on the left, then on the right, equal its logits alone (per
    token: the logits at its real positions)."""
    for side in ("left", "right"):
        ids, mask = _pad(seqs, side)
        with torch.no_grad():
            batched = model(ids, attention_mask=mask).logits
            for i, s in enumerate(seqs):
                got = batched[i, mask[i].bool()] if per_token else batched[i]
                torch.testing.assert_close(got, model(s[None]).logits[0], **TOL)


def _roundtrip(model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("roundtrip")
    model.save_pretrained(folder)
    return type(model).from_pretrained(folder).eval()


def _finite_loss_and_grads(model, **inputs):
    model.train()
    out = model(**inputs)
    assert out.loss.ndim == 0 and torch.isfinite(out.loss), out.loss
    out.loss.backward()
    for name, p in model.named_parameters():
        if p.grad is not None:
            assert torch.isfinite(p.grad).all(), name
    model.eval()
    return out


def _generation_matches_forward(model, new_tokens=4, **inputs):
    """Cached greedy decoding: the logits of each step equal those of an uncached forward over the whole text."""
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 1
    out = model.generate(**inputs, max_new_tokens=new_tokens, do_sample=False, output_logits=True,
                         return_dict_in_generate=True, use_cache=True)
    assert len(out.logits) == new_tokens
    with torch.no_grad():
        if model.config.is_encoder_decoder:
            full = model(**inputs, decoder_input_ids=out.sequences).logits
            offset = 0
        else:
            mask = inputs.get("attention_mask")
            if mask is not None:  # the prompt's padding, then every generated token is real
                mask = torch.cat([mask, mask.new_ones(mask.shape[0], new_tokens)], dim=1)
            full = model(out.sequences, attention_mask=mask).logits
            offset = inputs["input_ids"].shape[1] - 1
    for step, logits in enumerate(out.logits):
        torch.testing.assert_close(logits, full[:, offset + step], **TOL)


# ---------------------------------------------------------------------------------------------------------------------
# recurrent LMs
# ---------------------------------------------------------------------------------------------------------------------
@PROFILE
@given(model=recurrent_lm(), lens=lengths(min_len=2), seed=st.integers(0, 1000))
def test_recurrent_shapes_loss_and_padding(model, lens, seed):
    seqs = _sequences(lens, seed)
    ids, mask = _pad(seqs, "left")
    labels = ids.masked_fill(mask == 0, -100)
    out = _finite_loss_and_grads(model, input_ids=ids, attention_mask=mask, labels=labels)
    assert out.logits.shape == (*ids.shape, VOCAB)
    with torch.no_grad():
        batched = model(ids, attention_mask=mask).logits
        for i, s in enumerate(seqs):  # batched and left-padded == alone
            alone = model(s[None]).logits[0]
            torch.testing.assert_close(batched[i, mask[i].bool()], alone, **TOL)


@PROFILE
@given(model=recurrent_lm(), lens=lengths(max_batch=2, max_len=5), seed=st.integers(0, 1000))
def test_recurrent_save_load_and_cached_generation(model, lens, seed, tmp_path_factory):
    ids, mask = _pad(_sequences(lens, seed), "left")
    again = _roundtrip(model, tmp_path_factory)
    with torch.no_grad():
        torch.testing.assert_close(model(ids, attention_mask=mask).logits, again(ids, attention_mask=mask).logits,
                                   atol=1e-5, rtol=1e-5)
    _generation_matches_forward(model, input_ids=ids, attention_mask=mask)


@PROFILE
@given(lens=lengths(max_batch=3, max_len=6), seed=st.integers(0, 1000), pooling=st.sampled_from(["last", "mean", "max"]))
def test_recurrent_classifier_padding_invariance(lens, seed, pooling):
    torch.manual_seed(seed)
    model = LSTMForSequenceClassification(LSTMConfig(vocab_size=VOCAB, hidden_size=8, bidirectional=True,
                                                     num_labels=3, classifier_pooling=pooling)).eval()
    _assert_padding_invariant(model, _sequences(lens, seed), per_token=False)


# ---------------------------------------------------------------------------------------------------------------------
# RNN seq2seq
# ---------------------------------------------------------------------------------------------------------------------
@PROFILE
@given(model=rnn_seq2seq(), lens=lengths(), tgt_len=st.integers(1, 5), seed=st.integers(0, 1000))
def test_seq2seq_shapes_loss_batched_equals_alone(model, lens, tgt_len, seed):
    seqs = _sequences(lens, seed)
    ids, mask = _pad(seqs, "right")
    labels = torch.randint(4, VOCAB, (len(seqs), tgt_len), generator=torch.Generator().manual_seed(seed))
    out = _finite_loss_and_grads(model, input_ids=ids, attention_mask=mask, labels=labels)
    assert out.logits.shape == (len(seqs), tgt_len, VOCAB)
    with torch.no_grad():
        batched = model(input_ids=ids, attention_mask=mask, labels=labels).logits
        for i, s in enumerate(seqs):
            alone = model(input_ids=s[None], labels=labels[i : i + 1]).logits[0]
            torch.testing.assert_close(batched[i], alone, **TOL)


@PROFILE
@given(model=rnn_seq2seq(), lens=lengths(max_batch=2, max_len=5), seed=st.integers(0, 1000))
def test_seq2seq_save_load_and_cached_generation(model, lens, seed, tmp_path_factory):
    ids, mask = _pad(_sequences(lens, seed), "right")
    again = _roundtrip(model, tmp_path_factory)
    dec = torch.randint(4, VOCAB, (ids.shape[0], 3), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        a = model(input_ids=ids, attention_mask=mask, decoder_input_ids=dec).logits
        b = again(input_ids=ids, attention_mask=mask, decoder_input_ids=dec).logits
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)  # BLAS may pick other kernels for reloaded tensors
    _generation_matches_forward(model, input_ids=ids, attention_mask=mask)


# ---------------------------------------------------------------------------------------------------------------------
# Transformer
# ---------------------------------------------------------------------------------------------------------------------
@PROFILE
@given(model=transformer(encoder_decoder=False), lens=lengths(min_len=2), seed=st.integers(0, 1000))
def test_transformer_lm_shapes_loss_and_left_padding(model, lens, seed):
    seqs = _sequences(lens, seed)
    ids, mask = _pad(seqs, "left")
    out = _finite_loss_and_grads(model, input_ids=ids, attention_mask=mask, labels=ids.masked_fill(mask == 0, -100))
    assert out.logits.shape == (*ids.shape, VOCAB)
    with torch.no_grad():
        batched = model(ids, attention_mask=mask).logits
        for i, s in enumerate(seqs):
            torch.testing.assert_close(batched[i, mask[i].bool()], model(s[None]).logits[0], **TOL)


@PROFILE
@given(model=transformer(encoder_decoder=True), lens=lengths(), seed=st.integers(0, 1000))
def test_transformer_seq2seq_loss_batched_save_load_generation(model, lens, seed, tmp_path_factory):
    seqs = _sequences(lens, seed)
    ids, mask = _pad(seqs, "right")
    labels = torch.randint(4, VOCAB, (len(seqs), 4), generator=torch.Generator().manual_seed(seed))
    _finite_loss_and_grads(model, input_ids=ids, attention_mask=mask, labels=labels)
    with torch.no_grad():
        batched = model(input_ids=ids, attention_mask=mask, labels=labels).logits
        for i, s in enumerate(seqs):
            torch.testing.assert_close(batched[i], model(input_ids=s[None], labels=labels[i : i + 1]).logits[0], **TOL)
        again = _roundtrip(model, tmp_path_factory)
        torch.testing.assert_close(batched, again(input_ids=ids, attention_mask=mask, labels=labels).logits,
                                   atol=1e-5, rtol=1e-5)
    _generation_matches_forward(model, input_ids=ids, attention_mask=mask)


# ---------------------------------------------------------------------------------------------------------------------
# word2vec
# ---------------------------------------------------------------------------------------------------------------------
@PROFILE
@given(model=word2vec(Word2VecForPreTraining), batch=st.integers(1, 5), seed=st.integers(0, 1000))
def test_word2vec_pretraining_loss_finite_and_save_load(model, batch, seed, tmp_path_factory):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(4, VOCAB, (batch,), generator=g)
    if model.config.architecture == "skipgram":
        inputs = {"input_ids": torch.randint(4, VOCAB, (batch,), generator=g)}
    else:
        width = 2 * model.config.window
        inputs = {"input_ids": torch.randint(4, VOCAB, (batch, width), generator=g),
                  "attention_mask": (torch.rand(batch, width, generator=g) > 0.3).long()}
    negatives = torch.randint(4, VOCAB, (batch, model.config.negative), generator=g)
    if model.config.objective == "negative_sampling":
        inputs["negative_ids"] = negatives
    out = _finite_loss_and_grads(model, labels=labels, **inputs)
    assert out.hidden_states.shape == (batch, model.config.vector_size)
    again = _roundtrip(model, tmp_path_factory)
    with torch.no_grad():
        torch.testing.assert_close(again(labels=labels, **inputs).loss, model(labels=labels, **inputs).loss,
                                   atol=1e-5, rtol=1e-5)


@PROFILE
@given(model=word2vec(Word2VecForMaskedLM), lens=lengths(max_len=8), seed=st.integers(0, 1000))
def test_word2vec_fill_mask_padding_invariance(model, lens, seed):
    _assert_padding_invariant(model, _sequences(lens, seed), per_token=True)


# ---------------------------------------------------------------------------------------------------------------------
# issue 20: the word2vec C formats and the run fingerprint
# ---------------------------------------------------------------------------------------------------------------------
_WORD = st.text(st.characters(blacklist_categories=("Cs", "Z", "Cc")), min_size=1, max_size=6)


@PROFILE
@given(words=st.lists(_WORD, min_size=1, max_size=8, unique=True), dim=st.integers(1, 5),
       binary=st.booleans(), seed=st.integers(0, 2**16))
def test_word2vec_format_round_trip_is_bit_exact(words, dim, binary, seed, tmp_path_factory):
    import numpy as np

    from hf_seq.models.word2vec import Word2VecKeyedVectors

    vectors = np.random.default_rng(seed).standard_normal((len(words), dim)).astype(np.float32) * 1e3
    path = str(tmp_path_factory.mktemp("w2v") / "vectors")
    Word2VecKeyedVectors(words, vectors).save_word2vec_format(path, binary=binary)
    back = Word2VecKeyedVectors.load_word2vec_format(path, binary=binary)
    assert back.index_to_key == words and np.array_equal(back.vectors.view(np.int32), vectors.view(np.int32))


_LEAF = st.one_of(st.integers(-5, 5), st.floats(allow_nan=False, width=32), st.booleans(), st.text(max_size=4),
                  st.none())
_SECTION = st.dictionaries(st.sampled_from(["a", "b", "hidden_size", "lr", "logging_steps", "output_dir"]), _LEAF,
                           min_size=1)


@PROFILE
@given(config=st.dictionaries(st.sampled_from(["model", "data", "training"]), _SECTION, min_size=1),
       data=st.data())
def test_fingerprint_refuses_exactly_the_changed_keys(config, data, tmp_path_factory):
    import pytest as _pytest

    from hf_seq.training.checkpointing import VOLATILE_KEYS, RunMismatchError, check_fingerprint, write_fingerprint

    folder = tmp_path_factory.mktemp("fp")
    write_fingerprint(folder, config)
    check_fingerprint(folder, config)
    section = data.draw(st.sampled_from(sorted(config)))
    key = data.draw(st.sampled_from(sorted(config[section])))
    changed = {s: dict(v) for s, v in config.items()}
    changed[section][key] = ["changed"]
    if key in VOLATILE_KEYS:
        check_fingerprint(folder, changed)  # may change on resume
    else:
        with _pytest.raises(RunMismatchError, match=rf"{section}\.{key}: .* there, \[\"changed\"\] now"):
            check_fingerprint(folder, changed)
