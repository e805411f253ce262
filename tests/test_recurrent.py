"""Recurrent language models (RNN, GRU, LSTM): the shared mixins plus the family's own checks."""

import pytest
import torch
from mixin import GenerationTesterMixin, ModelTesterMixin
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer, pipeline

import hf_seq  # noqa: F401  (registers the Auto classes)
from hf_seq.models.recurrent import (
    GRUConfig,
    GRUForCausalLM,
    GRUModel,
    LSTMConfig,
    LSTMForCausalLM,
    LSTMModel,
    RecurrentCache,
    RNNConfig,
    RNNForCausalLM,
    RNNModel,
)
from hf_seq.tokenization import build_bpe_tokenizer, build_char_level_tokenizer, build_word_level_tokenizer

VOCAB = 40


class RecurrentModelTester:
    def __init__(self, config_class, **overrides):
        self.config_class = config_class
        self.overrides = overrides

    def get_config(self):
        kwargs = dict(vocab_size=VOCAB, hidden_size=16, embedding_size=16, num_hidden_layers=2, embedding_dropout=0.1,
                      hidden_dropout=0.1, output_dropout=0.1, initializer_range=0.3)
        kwargs.update(self.overrides)
        return self.config_class(**kwargs)

    def prepare_inputs(self, config, with_labels=False, padded=True):
        g = torch.Generator().manual_seed(0)
        ids = torch.randint(4, config.vocab_size, (3, 9), generator=g)
        mask = torch.ones_like(ids)
        if padded:  # left padding of different lengths, as the text-generation pipeline makes
            mask[0, :4] = 0
            mask[1, :1] = 0
            ids = ids.masked_fill(mask == 0, config.pad_token_id)
        inputs = {"input_ids": ids, "attention_mask": mask}
        if with_labels:
            inputs["labels"] = ids.masked_fill(mask == 0, -100)
        return inputs


AUTO = {f"{a}{h}": auto for a in ("RNN", "GRU", "LSTM") for h, auto in
        (("Model", "AutoModel"), ("ForCausalLM", "AutoModelForCausalLM"))}


class TestLSTM(ModelTesterMixin, GenerationTesterMixin):
    model_tester = RecurrentModelTester(LSTMConfig, tie_word_embeddings=True)
    all_model_classes = (LSTMModel, LSTMForCausalLM)
    generative_model_classes = (LSTMForCausalLM,)
    auto_classes = AUTO
    heavy_checks_in_default_run = True  # the recurrent LMs' representative for torch.compile / torch.export


class TestGRU(ModelTesterMixin, GenerationTesterMixin):
    model_tester = RecurrentModelTester(GRUConfig, hidden_size=24, output_projection=True, tie_word_embeddings=True)
    all_model_classes = (GRUModel, GRUForCausalLM)
    generative_model_classes = (GRUForCausalLM,)
    auto_classes = AUTO


class TestRNN(ModelTesterMixin, GenerationTesterMixin):
    model_tester = RecurrentModelTester(RNNConfig, nonlinearity="relu", num_hidden_layers=3)
    all_model_classes = (RNNModel, RNNForCausalLM)
    generative_model_classes = (RNNForCausalLM,)
    auto_classes = AUTO


@pytest.mark.parametrize("config_class", [RNNConfig, GRUConfig, LSTMConfig])
def test_auto_classes_resolve(config_class):
    config = config_class(vocab_size=VOCAB, hidden_size=8)
    assert type(AutoConfig.for_model(config.model_type)) is config_class
    assert type(AutoModelForCausalLM.from_config(config)).__name__.endswith("ForCausalLM")
    assert type(AutoModel.from_config(config)).__name__.endswith("Model")
    assert config.model_type.startswith("hf_seq_")


def test_padding_never_enters_the_state():
    # a bidirectional base model: right padding and left padding both give each row's outputs exactly as alone
    torch.manual_seed(0)
    model = LSTMModel(LSTMConfig(vocab_size=VOCAB, hidden_size=8, bidirectional=True, num_hidden_layers=2)).eval()
    seqs = [torch.randint(4, VOCAB, (n,)) for n in (5, 2, 7)]
    for side in ("left", "right"):
        ids = torch.full((3, 7), 1)
        mask = torch.zeros(3, 7, dtype=torch.long)
        for i, s in enumerate(seqs):
            sl = slice(7 - len(s), 7) if side == "left" else slice(0, len(s))
            ids[i, sl], mask[i, sl] = s, 1
        out = model(ids, attention_mask=mask)
        for i, s in enumerate(seqs):
            alone = model(s[None])
            sl = slice(7 - len(s), 7) if side == "left" else slice(0, len(s))
            torch.testing.assert_close(out.last_hidden_state[i, sl], alone.last_hidden_state[0], atol=1e-6, rtol=0)
            torch.testing.assert_close(out.final_hidden_state[i], alone.final_hidden_state[0], atol=1e-6, rtol=0)
            assert (out.last_hidden_state[i][mask[i] == 0] == 0).all()


def test_output_hidden_states_one_per_layer_plus_embeddings():
    model = LSTMModel(LSTMConfig(vocab_size=VOCAB, hidden_size=8, num_hidden_layers=3)).eval()
    out = model(torch.randint(0, VOCAB, (2, 5)), output_hidden_states=True)
    assert len(out.hidden_states) == 4
    assert torch.equal(out.hidden_states[-1], out.last_hidden_state)


def test_cache_is_constant_size_and_continues_exactly():
    model = GRUForCausalLM(GRUConfig(vocab_size=VOCAB, hidden_size=8)).eval()
    ids = torch.randint(4, VOCAB, (2, 12))
    full = model(ids).logits
    first = model(ids[:, :5], use_cache=True)
    cache = first.cache
    sizes = [t.numel() for layer in cache.states for t in layer]
    logits = [first.logits]
    for t in range(5, 12):  # feed one token at a time with the cache
        step = model(ids[:, t : t + 1], cache=cache, use_cache=True)
        cache = step.cache
        logits.append(step.logits)
        assert [t.numel() for layer in cache.states for t in layer] == sizes
    torch.testing.assert_close(torch.cat(logits, 1), full, atol=1e-5, rtol=0)
    assert isinstance(cache, RecurrentCache) and cache.get_seq_length() == 12


def test_weight_tying_shares_storage_and_is_saved_once(tmp_path):
    model = LSTMForCausalLM(LSTMConfig(vocab_size=VOCAB, hidden_size=8, tie_word_embeddings=True))
    assert model.lm_head.weight.data_ptr() == model.model.embeddings.weight.data_ptr()
    model.save_pretrained(tmp_path)
    from safetensors import safe_open

    with safe_open(tmp_path / "model.safetensors", "pt") as f:
        assert "lm_head.weight" not in f.keys()
    again = LSTMForCausalLM.from_pretrained(tmp_path)
    assert again.lm_head.weight.data_ptr() == again.model.embeddings.weight.data_ptr()
    untied = LSTMForCausalLM(LSTMConfig(vocab_size=VOCAB, hidden_size=8))
    assert untied.lm_head.weight.data_ptr() != untied.model.embeddings.weight.data_ptr()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_hidden_layers=0), "num_hidden_layers.*0"),
        (dict(hidden_dropout=-0.1), "hidden_dropout.*-0.1"),
        (dict(output_dropout=1.0), r"output_dropout.*\[0, 1\)"),
        (dict(hidden_size=8, embedding_size=12, tie_word_embeddings=True), r"hidden_size.*8.*embedding_size.*12"),
        (dict(vocab_size=10, pad_token_id=10), r"pad_token_id.*10.*vocab_size=10"),
        (dict(classifier_pooling="median"), "classifier_pooling.*median"),
    ],
)
def test_impossible_configs_fail_at_construction(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LSTMConfig(**kwargs)


def test_bad_nonlinearity_and_bidirectional_lm_are_refused():
    with pytest.raises(ValueError, match="nonlinearity.*sigmoid"):
        RNNConfig(nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="cannot be bidirectional"):
        LSTMForCausalLM(LSTMConfig(vocab_size=VOCAB, hidden_size=8, bidirectional=True))


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda: dict(input_ids=torch.tensor([[1, 2, VOCAB]])), ValueError, rf"token id {VOCAB}.*\[0, {VOCAB}\)"),
        (lambda: dict(input_ids=torch.tensor([[1, -3, 2]])), ValueError, r"token id -3"),
        (lambda: dict(input_ids=torch.tensor([[1.0, 2.0]])), TypeError, "integer token ids.*float"),
        (lambda: dict(input_ids=torch.zeros(2, 0, dtype=torch.long)), ValueError, "empty"),
        (lambda: dict(input_ids=torch.zeros(0, 3, dtype=torch.long)), ValueError, "empty"),
        (lambda: dict(input_ids=torch.tensor([1, 2, 3])), ValueError, r"shape \(batch, sequence_length\)"),
        (lambda: dict(input_ids=torch.ones(2, 4, dtype=torch.long), attention_mask=torch.ones(2, 5)), ValueError,
         "attention_mask.*5 columns; expected 4"),
        (lambda: dict(input_ids=torch.ones(2, 4, dtype=torch.long), attention_mask=torch.ones(3, 4)), ValueError,
         r"attention_mask.*batch=2"),
        (lambda: dict(input_ids=torch.ones(2, 4, dtype=torch.long),
                      attention_mask=torch.tensor([[1, 1, 1, 1], [0, 0, 0, 0]])), ValueError, "row 1.*no real token"),
        (lambda: dict(input_ids=torch.ones(1, 2, dtype=torch.long), attention_mask=torch.tensor([[1, 2]])),
         ValueError, "only 0.*and 1"),
        (lambda: dict(input_ids=torch.ones(1, 2, dtype=torch.long), attention_mask=torch.tensor([[1.0, float("nan")]])),
         ValueError, "NaN"),
        (lambda: dict(input_ids=torch.ones(1, 3, dtype=torch.long), labels=torch.tensor([[1, 2, VOCAB + 5]])),
         ValueError, rf"label {VOCAB + 5}"),
        (lambda: dict(input_ids=torch.ones(1, 3, dtype=torch.long), labels=torch.tensor([[1, 2]])),
         ValueError, r"labels.*shape"),
    ],
)
def test_bad_input_gets_a_clear_error(make, error, message):
    model = LSTMForCausalLM(LSTMConfig(vocab_size=VOCAB, hidden_size=8)).eval()
    with pytest.raises(error, match=message):
        model(**make())


def test_word_and_char_tokenizers_round_trip(tmp_path):
    text = ["the time machine by h g wells", "the time traveller for so it will be convenient"]
    for build in (build_word_level_tokenizer, build_char_level_tokenizer):
        tok = build(text)
        assert tok.convert_tokens_to_ids(["<unk>", "<pad>", "<bos>", "<eos>"]) == [0, 1, 2, 3]
        ids = tok("the time machine")["input_ids"]
        tok.save_pretrained(tmp_path / build.__name__)
        again = AutoTokenizer.from_pretrained(tmp_path / build.__name__)
        assert again("the time machine")["input_ids"] == ids
        # word-level tokens decode with a leading space each (GPT-2's convention), so pieces join with spaces
        want = " the time machine" if build is build_word_level_tokenizer else "the time machine"
        assert again.decode(ids) == want
        assert again.decode(ids[:2]) + again.decode(ids[2:]) == want
        assert tok("zebra")["input_ids"][0] == tok.unk_token_id


def test_bpe_tokenizer_still_round_trips(tmp_path):
    tok = build_bpe_tokenizer(["the time machine by h g wells"] * 3, vocab_size=300)
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    ids = again("the time machine")["input_ids"]
    assert ids == tok("the time machine")["input_ids"]
    assert again.decode(ids) == " the time machine"


def _save_text_generation_folder(text: list[str], path) -> None:
    """A small LSTM LM and its left-padding word tokenizer over `text`, saved for `pipeline("text-generation")`;
    no end-of-sequence token, so generation runs to `max_new_tokens`."""
    tok = build_word_level_tokenizer(text, padding_side="left")
    torch.manual_seed(0)
    model = LSTMForCausalLM(LSTMConfig(vocab_size=len(tok), hidden_size=16))
    model.generation_config.eos_token_id = None
    model.save_pretrained(path)
    tok.save_pretrained(path)


def test_text_generation_pipeline_keeps_spaces_between_words(tmp_path):
    # issue 19 point 10: the pipeline decodes only the new tokens and appends them to the prompt
    text = ["the time traveller was expounding a recondite matter to us"]
    _save_text_generation_folder(text, tmp_path)
    out = pipeline("text-generation", model=str(tmp_path))("the time", max_new_tokens=4, do_sample=False)
    words = out[0]["generated_text"].split(" ")
    assert words[:2] == ["the", "time"] and len(words) == 6, out
    assert all(w in text[0].split() for w in words), out


def test_generate_refuses_right_padding():
    model = LSTMForCausalLM(LSTMConfig(vocab_size=VOCAB, hidden_size=8)).eval()
    ids = torch.randint(4, VOCAB, (2, 5))
    mask = torch.ones_like(ids)
    mask[1, 3:] = 0
    with pytest.raises(ValueError, match="attention_mask.*right-padded"):
        model.generate(ids, attention_mask=mask, max_new_tokens=2)
    model.generate(ids, attention_mask=mask.flip(1), max_new_tokens=2)  # left padding is fine


@pytest.mark.parametrize("mask_value", [2, -1])
def test_integer_mask_values_other_than_0_1_are_refused(mask_value):
    model = GRUModel(GRUConfig(vocab_size=VOCAB, hidden_size=8)).eval()
    with pytest.raises(ValueError, match=f"attention_mask.*only 0.*1.*{mask_value}"):
        model(torch.ones(1, 3, dtype=torch.long), attention_mask=torch.tensor([[1, mask_value, 1]]))


def test_input_checks_stay_on_in_eager_mode_only():
    # eager: a data-dependent check raises; under torch.export the same model traces (no Python branch on values)
    model = LSTMForCausalLM(LSTMConfig(vocab_size=VOCAB, hidden_size=8)).eval()
    with pytest.raises(ValueError, match="token id"):
        model(torch.tensor([[1, VOCAB]]))
    program = torch.export.export(model, args=(), kwargs={"input_ids": torch.tensor([[1, 5, 7]])})
    torch.testing.assert_close(program.module()(input_ids=torch.tensor([[1, 5, 7]]))["logits"],
                               model(torch.tensor([[1, 5, 7]])).logits)


def test_hidden_states_follow_the_gradient_with_padding_and_stacked_layers():
    model = GRUModel(GRUConfig(vocab_size=VOCAB, hidden_size=8, num_hidden_layers=3, bidirectional=True))
    ids = torch.randint(4, VOCAB, (2, 6))
    mask = torch.tensor([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0]])
    out = model(ids, attention_mask=mask, output_hidden_states=True)
    assert len(out.hidden_states) == 4
    for h in out.hidden_states:
        h.retain_grad()
    out.last_hidden_state.sum().backward()
    for h in out.hidden_states[:-1]:
        assert h.grad is not None and h.grad[mask.bool()].abs().sum() > 0
        assert (h.grad[~mask.bool()] == 0).all()  # padding never reaches the output


@pytest.mark.slow
@pytest.mark.parametrize("model_class", [LSTMForCausalLM, GRUForCausalLM])
def test_fullgraph_compile_with_dynamo_rnn_support(model_class):
    # Dynamo refuses nn.LSTM/GRU/RNN objects unless `torch._dynamo.config.allow_rnn` is set; with it, the whole
    # forward (masked recurrence included) is one graph
    config_class = LSTMConfig if model_class is LSTMForCausalLM else GRUConfig
    model = model_class(config_class(vocab_size=VOCAB, hidden_size=8, num_hidden_layers=1)).eval()
    ids = torch.randint(4, VOCAB, (2, 4))
    mask = torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]])
    torch._dynamo.reset()
    with torch._dynamo.config.patch(allow_rnn=True), torch.no_grad():
        got = torch.compile(model, fullgraph=True)(ids, attention_mask=mask).logits
    torch.testing.assert_close(got, model(ids, attention_mask=mask).logits, atol=1e-5, rtol=0)


def test_text_generation_pipeline_batched_equals_single(tmp_path):
    text = ["the time traveller was expounding a recondite matter to us", "his grey eyes shone and twinkled"]
    _save_text_generation_folder(text, tmp_path)
    pipe = pipeline("text-generation", model=str(tmp_path))
    prompts = ["the time traveller", "his grey eyes shone and"]
    kwargs = dict(max_new_tokens=5, do_sample=False, return_full_text=False)
    batched = pipe(prompts, batch_size=2, **kwargs)
    single = [pipe(p, **kwargs) for p in prompts]
    assert [b[0]["generated_text"] for b in batched] == [s[0]["generated_text"] for s in single]
    assert all(b[0]["generated_text"].strip() for b in batched)


def test_cached_steps_still_check_what_a_user_passes():
    """generate() skips re-validating the tokens it picked itself (issue 21, point 4); a user's cached call is
    still checked, and a dynamically quantized copy still generates."""
    torch.manual_seed(0)
    model = LSTMForCausalLM(LSTMConfig(vocab_size=20, hidden_size=8, embedding_size=8, num_hidden_layers=2,
                                       initializer_range=1.0)).eval()  # logits far from ties
    out = model(torch.tensor([[1, 2, 3]]), use_cache=True)
    with pytest.raises(ValueError, match="25"):
        model(torch.tensor([[25]]), cache=out.cache, use_cache=True)
    prompt = torch.tensor([[5, 6, 7]])  # no special ids (1 is <pad>: generate would mask it)
    greedy = model.generate(prompt, max_new_tokens=6, min_new_tokens=6, do_sample=False)
    with torch.no_grad():  # the tokens generate() picked without re-validating are the full, checked forward's argmax
        logits = model(greedy[:, :-1]).logits
    assert torch.equal(logits[:, prompt.shape[1] - 1 :].argmax(-1), greedy[:, prompt.shape[1] :])
    quantized = torch.ao.quantization.quantize_dynamic(model, {torch.nn.LSTM, torch.nn.Linear}, dtype=torch.qint8)
    assert quantized.generate(prompt, max_new_tokens=6, min_new_tokens=6, do_sample=False).shape == greedy.shape
