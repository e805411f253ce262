"""generate()'s lean decode loop (issue 21, point 4): on CPU, greedy and sampled decoding of the encoder-decoder models,
the decoder-only Transformer and the recurrent LMs run `lean_sample` with a direct decode step instead of transformers' `_sample` plumbing. Every test compares it with
transformers' own loop on the same model (`model.lean_decoding = False`): equal tokens, token for token."""

import pytest
import torch
from transformers import StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from hf_seq.models.seq2seq import RNNSeq2SeqConfig, RNNSeq2SeqForConditionalGeneration
from hf_seq.models.transformer import (
    TransformerConfig,
    TransformerDecoderConfig,
    TransformerForCausalLM,
    TransformerForConditionalGeneration,
)

VOCAB = 48

TRANSFORMERS = {
    "post-ln-sinusoidal-shared": dict(),
    "pre-ln-learned-gelu": dict(norm_first=True, position_embedding_type="learned", activation_function="gelu"),
    "separate-embeddings-unscaled": dict(share_embeddings=False, scale_embedding=False),
}
RNNS = {
    "none-gru": dict(attention="none", cell_type="gru"),
    "bahdanau-lstm-2-layers": dict(attention="bahdanau", cell_type="lstm", encoder_layers=2, decoder_layers=2),
    "luong-feed-rnn-tied": dict(attention="luong", input_feeding=True, cell_type="rnn", tie_word_embeddings=True),
    "eole-mlp-concat-sinusoidal": dict(attention="luong", attention_score="mlp", bridge="concat", cell_type="gru",
                                       position_encoding="sinusoidal", target_vocab_size=30),
}
LMS = {"post-ln-sinusoidal": dict(), "pre-ln-learned": dict(norm_first=True, position_embedding_type="learned")}
MODELS = [("transformer", name) for name in TRANSFORMERS] + [("rnn", name) for name in RNNS]
MODELS += [("transformer-lm", name) for name in LMS]
RECURRENT = ["lstm", "gru", "rnn"]
MODELS += [("recurrent", kind) for kind in RECURRENT]
# one model of each family for the tests that need not run on every configuration
PICKS = [MODELS[0], MODELS[3], ("transformer-lm", "pre-ln-learned"), ("recurrent", "lstm")]
PICK_IDS = ["transformer", "rnn", "lm", "recurrent-lm"]
OTHER_PICKS = [MODELS[1], MODELS[4], ("transformer-lm", "post-ln-sinusoidal"), ("recurrent", "gru")]


def decoder_only(family: str) -> bool:
    return family in ("transformer-lm", "recurrent")


def make_model(family: str, name: str):
    if family == "recurrent":
        return make_recurrent_lm(name)
    torch.manual_seed(0)
    if family == "transformer-lm":
        config = TransformerDecoderConfig(
            vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_attention_heads=4, decoder_layers=2,
            max_position_embeddings=64, **LMS[name],
        )
        return TransformerForCausalLM(config).eval()
    if family == "transformer":
        config = TransformerConfig(
            vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_attention_heads=4, encoder_layers=2,
            decoder_layers=2, max_position_embeddings=64, **TRANSFORMERS[name],
        )
        return TransformerForConditionalGeneration(config).eval()
    config = RNNSeq2SeqConfig(
        vocab_size=VOCAB, hidden_size=16, encoder_embedding_size=8, decoder_embedding_size=8, attention_size=12,
        dropout=0.0, **RNNS[name],
    )
    return RNNSeq2SeqForConditionalGeneration(config).eval()


def padded_sources(lengths=(7, 3, 5), left=False):
    """Right-padded sources (encoder-decoder), left-padded prompts (`left`, decoder-only)."""
    g = torch.Generator().manual_seed(1)
    S = max(lengths)
    ids = torch.full((len(lengths), S), 1)
    mask = torch.zeros_like(ids)
    for i, n in enumerate(lengths):
        span = slice(S - n, S) if left else slice(0, n)
        ids[i, span] = torch.randint(4, VOCAB, (n,), generator=g)
        mask[i, span] = 1
    return ids, mask


def inputs_of(family):
    return padded_sources(left=decoder_only(family))


def count_lean_steps(model):
    """Spy: how many generate() calls built a lean decode step."""
    calls = []
    original = model._lean_step

    def spy(*args):
        calls.append(1)
        return original(*args)

    model._lean_step = spy
    return calls


def both_loops(model, seed=None, **kwargs):
    """(lean loop result, transformers' loop result) of the same generate() call."""
    results = []
    for lean in (True, False):
        model.lean_decoding = lean
        if seed is not None:
            torch.manual_seed(seed)
        results.append(model.generate(**kwargs))
    model.lean_decoding = True
    return results


CALLS = {
    "greedy": dict(max_new_tokens=12),
    "min-new-tokens-two-eos": dict(max_new_tokens=14, min_new_tokens=4, eos_token_id=[3, 5]),
    "max-length-repetition-penalty": dict(max_length=9, repetition_penalty=1.5, no_repeat_ngram_size=2),
    "sampling-top-k": dict(do_sample=True, top_k=8, temperature=0.8, max_new_tokens=10),
}


@pytest.mark.parametrize("call", list(CALLS), ids=list(CALLS))
@pytest.mark.parametrize("family,name", MODELS, ids=[f"{f}-{n}" for f, n in MODELS])
def test_lean_loop_equals_transformers_loop(family, name, call):
    model = make_model(family, name)
    ids, mask = inputs_of(family)
    steps = count_lean_steps(model)
    lean, reference = both_loops(model, seed=5, input_ids=ids, attention_mask=mask, **CALLS[call])
    assert len(steps) == 1  # the lean loop ran once, the reference did not use it
    torch.testing.assert_close(lean, reference, rtol=0, atol=0)


@pytest.mark.parametrize("family,name", PICKS, ids=PICK_IDS)
def test_lean_loop_batched_equals_one_at_a_time_and_eos_padding(family, name):
    model = make_model(family, name)
    ids, mask = inputs_of(family)
    left = decoder_only(family)
    # an end token the random model does produce, so rows finish at different steps and get padded
    probe = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=12, eos_token_id=None)
    eos = int(probe[0, (ids.shape[1] if left else 1) + 2])  # row 0's third new token
    batched = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=12, eos_token_id=eos)
    pad = model.generation_config.pad_token_id
    for i in range(ids.shape[0]):
        real = ids[i : i + 1][mask[i : i + 1].bool()].unsqueeze(0)
        single = model.generate(input_ids=real, max_new_tokens=12, eos_token_id=eos)
        row = batched[i, ids.shape[1] - real.shape[1] :] if left else batched[i]  # a left-padded row: drop its padding
        n = single.shape[1]
        torch.testing.assert_close(row[:n], single[0], rtol=0, atol=0)
        assert torch.all(row[n:] == pad)
    assert (batched[:, ids.shape[1] if left else 1 :] == eos).any()


def test_transformer_decoder_prompt_continues_from_the_prefill():
    model = make_model("transformer", "post-ln-sinusoidal-shared")
    ids, mask = padded_sources()
    prompt = torch.tensor([[2, 9, 11, 13]] * ids.shape[0])
    lean, reference = both_loops(model, input_ids=ids, attention_mask=mask, decoder_input_ids=prompt, max_new_tokens=8)
    torch.testing.assert_close(lean, reference, rtol=0, atol=0)
    assert torch.equal(lean[:, :4], prompt)


class StopAfterToken(StoppingCriteria):
    """A criterion the lean loop cannot read inline: it calls it like transformers does."""

    def __init__(self, token: int):
        self.token = token

    def __call__(self, input_ids, scores, **kwargs):
        return input_ids[:, -1] == self.token


class Collect(BaseStreamer):
    def __init__(self):
        self.tokens, self.ended = [], False

    def put(self, value):
        self.tokens.append(value.tolist())

    def end(self):
        self.ended = True


@pytest.mark.parametrize("family,name", OTHER_PICKS, ids=PICK_IDS)
def test_custom_stopping_criteria_and_streamer(family, name):
    model = make_model(family, name)
    ids = padded_sources((6,))[0]
    probe = model.generate(input_ids=ids, max_new_tokens=10, eos_token_id=None)
    start = ids.shape[1] if decoder_only(family) else 1  # where the new tokens begin
    stop = int(probe[0, start + 3])
    results, streams = [], []
    for lean in (True, False):
        model.lean_decoding = lean
        streamer = Collect()
        criteria = StoppingCriteriaList([StopAfterToken(stop)])
        results.append(model.generate(input_ids=ids, max_new_tokens=10, stopping_criteria=criteria, streamer=streamer))
        assert streamer.ended
        streams.append(streamer.tokens)
    torch.testing.assert_close(results[0], results[1], rtol=0, atol=0)
    assert streams[0] == streams[1]
    assert results[0][0, -1] == stop and results[0].shape[1] <= start + 4


@pytest.mark.parametrize("family,name", PICKS, ids=PICK_IDS)
def test_transformers_loop_where_the_lean_loop_does_not_apply(family, name):
    model = make_model(family, name)
    ids, mask = inputs_of(family)
    steps = count_lean_steps(model)
    out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=5, return_dict_in_generate=True,
                         output_scores=True)
    assert len(out.scores) == 5
    model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=5, num_beams=2)  # beam search: its own loop
    model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=5, use_cache=False)
    model.train()  # training mode (dropout is zero here)
    model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=5)
    assert steps == []
    model.eval()
    model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=5)
    assert len(steps) == 1


@pytest.mark.parametrize("family,name", PICKS, ids=PICK_IDS)
def test_cached_decode_weights_follow_weight_updates(family, name):
    """The transposed / fused copies the lean step keeps are rebuilt when a weight changes in place (an optimizer
    step, load_state_dict) or is replaced, and train() drops them."""
    model = make_model(family, name)
    ids, mask = inputs_of(family)
    kwargs = dict(input_ids=ids, attention_mask=mask, max_new_tokens=8)
    model.generate(**kwargs)
    assert "_lean_weights_cache" in model.__dict__
    with torch.no_grad():
        model.lm_head.weight.mul_(-1.0)  # in place: same object, new version
    lean, reference = both_loops(model, **kwargs)
    torch.testing.assert_close(lean, reference, rtol=0, atol=0)
    torch.manual_seed(3)
    state = {k: torch.randn_like(v) for k, v in model.state_dict().items()}
    model.load_state_dict(state)
    lean, reference = both_loops(model, **kwargs)
    torch.testing.assert_close(lean, reference, rtol=0, atol=0)
    model.train()
    assert "_lean_weights_cache" not in model.__dict__


@pytest.mark.parametrize("family,name", PICKS, ids=PICK_IDS)
def test_lean_loop_in_bfloat16(family, name):
    model = make_model(family, name).to(torch.bfloat16)
    ids, mask = inputs_of(family)
    steps = count_lean_steps(model)
    lean, reference = both_loops(model, input_ids=ids, attention_mask=mask, max_new_tokens=12)
    assert len(steps) == 1
    torch.testing.assert_close(lean, reference, rtol=0, atol=0)


BEAM_CALLS = {
    "beam-3": dict(num_beams=3, max_new_tokens=10),
    "beam-4-two-returned-length-penalty": dict(num_beams=4, num_return_sequences=2, length_penalty=0.7,
                                              max_new_tokens=12, early_stopping=True),
}


def count_lean_forward_steps(model, family):
    """Spy: decode steps forward ran through the lean path (Transformer: `_lean_forward` answered; RNN seq2seq and
    recurrent LMs: the head)."""
    calls = []
    name = "_lean_forward" if family.startswith("transformer") else "_lean_head"
    original = getattr(model, name)

    def spy(*args):
        result = original(*args)
        calls.append(result is not None)
        return result

    setattr(model, name, spy)
    return calls


@pytest.mark.parametrize("call", list(BEAM_CALLS), ids=list(BEAM_CALLS))
@pytest.mark.parametrize("family,name", MODELS, ids=[f"{f}-{n}" for f, n in MODELS])
def test_beam_search_decode_steps_through_the_lean_forward(family, name, call):
    """Beam search keeps transformers' loop; its one-token decode steps (`generation_step=True`) run the lean step
    against transformers' cache (reordered by the beams as usual): the same beams as forward's own path."""
    model = make_model(family, name)
    ids, mask = inputs_of(family)
    calls = count_lean_forward_steps(model, family)
    lean, reference = both_loops(model, input_ids=ids, attention_mask=mask, **BEAM_CALLS[call])
    assert any(calls)
    torch.testing.assert_close(lean, reference, rtol=0, atol=0)


@pytest.mark.parametrize("family,name", PICKS[:1] + PICKS[2:3], ids=["transformer", "lm"])
def test_lean_forward_step_logits_match_forward(family, name):
    """One decode step by hand: the lean forward's logits equal forward's own path to rounding, and its cache grows
    like forward's; training mode and the prefill take forward's own path."""
    model = make_model(family, name)
    ids, mask = inputs_of(family)
    if family == "transformer":
        prefill = dict(input_ids=ids, attention_mask=mask, decoder_input_ids=torch.full((3, 1), 2))
        step = dict(attention_mask=mask, decoder_input_ids=torch.tensor([[7], [8], [9]]))
    else:
        prefill = dict(input_ids=ids, attention_mask=mask)
        step = dict(input_ids=torch.tensor([[7], [8], [9]]), attention_mask=torch.cat([mask, torch.ones(3, 1, dtype=mask.dtype)], 1))
    results = []
    for generation_step in (True, False):
        first = model(**prefill, use_cache=True)
        if family == "transformer":  # the encoder ran once; decode steps read its output
            step["encoder_outputs"] = (first.encoder_last_hidden_state,)
        out = model(**step, cache=first.cache, use_cache=True, generation_step=generation_step)
        results.append((out.logits, out.cache.get_seq_length()))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-5, atol=1e-5)
    assert results[0][1] == results[1][1]
    calls = count_lean_forward_steps(model, family)
    model(**prefill, use_cache=True, generation_step=True)  # the prefill: no past
    model.train()
    cache = model(**prefill, use_cache=True).cache
    model(**step, cache=cache, use_cache=True, generation_step=True)
    assert calls == [False, False]


def make_recurrent_lm(kind: str):
    import hf_seq

    config_class = {"lstm": hf_seq.LSTMConfig, "gru": hf_seq.GRUConfig, "rnn": hf_seq.RNNConfig}[kind]
    model_class = {"lstm": hf_seq.LSTMForCausalLM, "gru": hf_seq.GRUForCausalLM, "rnn": hf_seq.RNNForCausalLM}[kind]
    torch.manual_seed(0)
    config = config_class(vocab_size=VOCAB, hidden_size=16, embedding_size=12, num_hidden_layers=2, output_projection=True)
    return model_class(config).eval()


@pytest.mark.parametrize("family,name", PICKS, ids=PICK_IDS)
def test_lora_adapters_are_honoured(family, name):
    """A LoRA-wrapped layer is not a plain nn.Linear: generate() calls it (adapter included) instead of reading its
    weight, and gives the tokens of the merged model (which takes the lean path)."""
    peft = pytest.importorskip("peft")
    model = make_model(family, name)
    ids, mask = inputs_of(family)
    # the Transformers tie lm_head to the embeddings (merging an adapter into it would untie it): their layers instead
    targets = ["q_proj", "v_proj", "fc1"] if family.startswith("transformer") else ["lm_head"]
    config = peft.LoraConfig(r=4, lora_alpha=64, target_modules=targets, init_lora_weights=False)
    torch.manual_seed(1)
    wrapped = peft.get_peft_model(model, config).eval()
    adapted = wrapped.generate(input_ids=ids, attention_mask=mask, max_new_tokens=10)
    merged = wrapped.merge_and_unload().eval()
    steps = count_lean_steps(merged)
    torch.testing.assert_close(merged.generate(input_ids=ids, attention_mask=mask, max_new_tokens=10), adapted)
    assert len(steps) == 1
    plain = make_model(family, name)
    assert not torch.equal(plain.generate(input_ids=ids, attention_mask=mask, max_new_tokens=10), adapted)


@pytest.mark.parametrize("family,name", [("recurrent", "lstm"), ("rnn", "bahdanau-lstm-2-layers")], ids=["lm", "seq2seq"])
def test_one_step_lstm_calls_run_without_onednn(family, name, monkeypatch):
    """A CPU LSTM's one-step calls (every decode step) run torch's own kernel, not oneDNN's (whose per-call set-up
    makes one step several times slower); whole sequences keep oneDNN, and the global flag is restored."""
    from hf_seq.models.recurrent import modeling_recurrent
    from hf_seq.models.seq2seq import modeling_seq2seq

    module = modeling_recurrent if family == "recurrent" else modeling_seq2seq
    calls, real = [], torch.lstm
    monkeypatch.setitem(module._RNN_OPS, "LSTM", lambda x, *a: calls.append((x.shape[1], torch.backends.mkldnn.enabled)) or real(x, *a))
    model = make_model(family, name)
    ids, mask = inputs_of(family)
    assert torch.backends.mkldnn.enabled
    lean, reference = both_loops(model, input_ids=ids, attention_mask=mask, max_new_tokens=6)
    torch.testing.assert_close(lean, reference, rtol=0, atol=0)
    assert calls and all(enabled == (steps > 1) for steps, enabled in calls)
    assert torch.backends.mkldnn.enabled
    # the same numbers as the oneDNN kernel, to rounding
    lstm = torch.nn.LSTM(8, 16, batch_first=True)
    x, state = torch.randn(3, 1, 8), (torch.randn(1, 3, 16), torch.randn(1, 3, 16))
    weights = [lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0]
    flags = (True, 1, 0.0, False, False, True)
    ours = module.rnn_op("LSTM", x, state, weights, *flags)
    onednn = real(x, state, weights, *flags)
    for a, b in zip(ours, onednn):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
