"""Tests of the Transformer (Vaswani et al. 2017): encoder-decoder and decoder-only heads."""

import json
import math

import pytest
import torch
from conftest import run_without_hf_seq
from mixin import GenerationTesterMixin, ModelTesterMixin
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForSeq2SeqLM, pipeline

import hf_seq  # noqa: F401  (registers the Auto classes)
from hf_seq import TransformerConfig, TransformerDecoderConfig, TransformerForCausalLM, TransformerModel
from hf_seq.models.transformer import (
    TransformerDecoderModel,
    TransformerForConditionalGeneration,
    sinusoidal_position_encoding,
)
from hf_seq.pipelines import TRANSLATION_TASK, save_translation_pipeline
from hf_seq.plotting import plot_translation_attention as cross_attention_heatmap
from hf_seq.tokenization import build_bpe_tokenizer

VOCAB = 40


def tiny_config(config_class=TransformerConfig, **overrides) -> TransformerConfig:
    kwargs = dict(
        vocab_size=VOCAB,
        d_model=32,
        d_ff=64,
        num_heads=4,
        encoder_layers=2,
        decoder_layers=2,
        max_position_embeddings=64,
        dropout=0.1,
    )
    kwargs.update(overrides)
    return config_class(**kwargs)


def seq2seq(**overrides) -> TransformerForConditionalGeneration:
    return TransformerForConditionalGeneration(tiny_config(**overrides)).eval()


def causal_lm(**overrides) -> TransformerForCausalLM:
    return TransformerForCausalLM(tiny_config(**overrides)).eval()


def random_ids(batch, length, low=4):
    return torch.randint(low, VOCAB, (batch, length))


class TransformerModelTester:
    """Inputs for hf-seq's shared mixins: a left-padded batch; encoder-decoder heads also get decoder inputs."""

    def __init__(self, encoder_decoder: bool, **overrides):
        self.encoder_decoder = encoder_decoder
        self.overrides = overrides

    def get_config(self):
        return tiny_config(TransformerConfig if self.encoder_decoder else TransformerDecoderConfig, **self.overrides)

    def prepare_inputs(self, config, with_labels=False, padded=True):
        g = torch.Generator().manual_seed(0)
        ids = torch.randint(4, config.vocab_size, (3, 9), generator=g)
        mask = torch.ones_like(ids)
        if padded:
            mask[0, :4] = 0
            mask[1, :1] = 0
            ids = ids.masked_fill(mask == 0, config.pad_token_id)
        inputs = {"input_ids": ids, "attention_mask": mask}
        if self.encoder_decoder:
            target = torch.randint(4, config.vocab_size, (3, 5), generator=g)
            inputs["decoder_input_ids"] = target
            if with_labels:
                inputs["labels"] = target
        elif with_labels:
            inputs["labels"] = ids.masked_fill(mask == 0, -100)
        return inputs


class TestTransformerEncoderDecoder(ModelTesterMixin):
    model_tester = TransformerModelTester(encoder_decoder=True, norm_first=True)
    all_model_classes = (TransformerModel, TransformerForConditionalGeneration)
    auto_classes = {"TransformerModel": "AutoModel", "TransformerForConditionalGeneration": "AutoModelForSeq2SeqLM"}
    # the encoder-decoder body needs decoder inputs (no pipeline task); the translation pipeline is checked below
    pipeline_model_classes = ()

    def test_remote_code_in_clean_process(self, tmp_path):
        # the mixin starts one process per class; this family checks every class (and more) in a single one
        check_remote_code_and_translation_pipeline(tmp_path)


class TestTransformerCausalLM(ModelTesterMixin, GenerationTesterMixin):
    model_tester = TransformerModelTester(encoder_decoder=False)
    all_model_classes = (TransformerForCausalLM, TransformerDecoderModel)
    heavy_checks_in_default_run = True  # the family's torch.compile / torch.export run (first class) in the default run
    generative_model_classes = (TransformerForCausalLM,)
    auto_classes = {"TransformerDecoderModel": "AutoModel", "TransformerForCausalLM": "AutoModelForCausalLM"}


VARIANTS = [
    {},
    {"norm_first": True},
    {"position_embedding_type": "learned"},
    {"share_embeddings": False, "tie_word_embeddings": False},
]


# --- configuration -------------------------------------------------------------------------------------------------
def test_config_defaults_are_the_paper_base_model_and_paper_names_alias():
    c = TransformerConfig()
    assert (c.d_model, c.d_ff, c.num_heads, c.N, c.decoder_layers) == (512, 2048, 8, 6, 6)
    assert (c.dropout, c.norm_first, c.scale_embedding, c.share_embeddings) == (0.1, False, True, True)
    assert c.model_type == "hf_seq_transformer"
    c = tiny_config(d_model=48, num_heads=6)
    assert c.hidden_size == 48 and c.num_attention_heads == 6


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"d_model": 30, "num_heads": 4}, r"d_model=30.*h=4"),
        ({"d_model": 0}, "hidden_size.*positive"),
        ({"dropout": 1.0}, r"dropout.*\[0, 1\)"),
        ({"attention_dropout": -0.1}, "attention_dropout"),
        ({"position_embedding_type": "rotary"}, "rotary"),
        ({"activation_function": "swish"}, "swish"),
        ({"share_embeddings": True, "tie_word_embeddings": False}, "tie_word_embeddings"),
        ({"pad_token_id": 99}, "pad_token_id.*99"),
    ],
)
def test_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tiny_config(**kwargs)


# --- positional encoding (§3.5) ------------------------------------------------------------------------------------
def test_sinusoidal_encoding_equals_the_paper_formula():
    d, positions = 32, 200
    table = sinusoidal_position_encoding(positions, d)
    expected = torch.empty(positions, d, dtype=torch.float64)
    for pos in range(positions):
        for i in range(d // 2):
            angle = pos / 10000 ** (2 * i / d)
            expected[pos, 2 * i] = math.sin(angle)
            expected[pos, 2 * i + 1] = math.cos(angle)
    assert torch.allclose(table.double(), expected, atol=1e-6, rtol=0)
    assert torch.equal(table[0], torch.tensor([0.0, 1.0] * (d // 2)))
    # the model uses exactly this table, also after a save/load round trip (it is a non-saved buffer)
    model = seq2seq()
    assert torch.equal(model.model.encoder.embeddings.embed_positions.table, sinusoidal_position_encoding(64, 32))


def test_sinusoidal_table_is_rebuilt_after_loading(tmp_path):
    model = seq2seq()
    model.save_pretrained(tmp_path)
    loaded = TransformerForConditionalGeneration.from_pretrained(tmp_path)
    assert torch.equal(loaded.model.decoder.embeddings.embed_positions.table, sinusoidal_position_encoding(64, 32))


# --- weights ---------------------------------------------------------------------------------------------------------
def test_shared_and_tied_embeddings():
    model = seq2seq()
    shared = model.model.encoder.embeddings.embed_tokens.weight
    assert model.model.decoder.embeddings.embed_tokens.weight is shared and model.lm_head.weight is shared
    model = seq2seq(share_embeddings=False, tie_word_embeddings=True)
    assert model.lm_head.weight is model.model.decoder.embeddings.embed_tokens.weight
    assert model.model.encoder.embeddings.embed_tokens.weight is not model.lm_head.weight
    model = seq2seq(share_embeddings=False, tie_word_embeddings=False)
    assert model.lm_head.weight is not model.model.decoder.embeddings.embed_tokens.weight
    lm = causal_lm()
    assert lm.lm_head.weight is lm.model.embeddings.embed_tokens.weight


def test_init_and_gradients_reach_every_parameter():
    model = seq2seq(share_embeddings=False, tie_word_embeddings=False).train()
    emb = model.model.encoder.embeddings.embed_tokens.weight
    assert torch.all(emb[1] == 0)  # <pad> row
    assert abs(emb[4:].std().item() - 32**-0.5) < 0.02  # N(0, d_model^-0.5): scaled embeddings have unit variance
    for name, p in model.named_parameters():
        assert torch.isfinite(p).all(), name
        if name.endswith("layer_norm.weight"):
            assert torch.all(p == 1), name
    src, labels = random_ids(3, 6), random_ids(3, 5)
    model(input_ids=src, labels=labels).loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


# --- masking -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", VARIANTS)
def test_decoder_is_causal(variant):
    model = seq2seq(**variant)
    src, tgt = random_ids(2, 7), random_ids(2, 8)
    changed = tgt.clone()
    changed[:, 4:] = random_ids(2, 4)
    a = model(input_ids=src, decoder_input_ids=tgt).logits
    b = model(input_ids=src, decoder_input_ids=changed).logits
    assert torch.allclose(a[:, :4], b[:, :4], atol=1e-5)
    assert not torch.allclose(a[:, 4:], b[:, 4:], atol=1e-3)
    lm = causal_lm(**variant)
    a, b = lm(tgt).logits, lm(changed).logits
    assert torch.allclose(a[:, :4], b[:, :4], atol=1e-5)
    assert not torch.allclose(a[:, 4:], b[:, 4:], atol=1e-3)


@pytest.mark.parametrize("variant", VARIANTS)
def test_source_padding_does_not_change_outputs(variant):
    model = seq2seq(**variant)
    src, tgt = random_ids(1, 5), random_ids(1, 6)
    alone = model(input_ids=src, decoder_input_ids=tgt, output_attentions=True)
    for side in ("right", "left"):
        pad = torch.full((1, 3), 1)
        padded = torch.cat([src, pad], 1) if side == "right" else torch.cat([pad, src], 1)
        mask = (padded != 1).long()
        out = model(input_ids=padded, attention_mask=mask, decoder_input_ids=tgt, output_attentions=True)
        assert torch.allclose(out.logits, alone.logits, atol=1e-5), side
        real = mask[0].bool()
        assert torch.allclose(out.encoder_last_hidden_state[:, real], alone.encoder_last_hidden_state, atol=1e-5)
        assert torch.all(out.cross_attentions[0][..., ~real] == 0)


@pytest.mark.parametrize("variant", VARIANTS[:2])
def test_left_padding_does_not_change_lm_outputs(variant):
    lm = causal_lm(**variant)
    ids = random_ids(1, 6)
    padded = torch.cat([torch.full((1, 3), 1), ids], 1)
    mask = torch.tensor([[0, 0, 0, 1, 1, 1, 1, 1, 1]])
    assert torch.allclose(lm(padded, attention_mask=mask).logits[:, 3:], lm(ids).logits, atol=1e-5)


# --- SDPA == eager ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", VARIANTS[:2])
def test_sdpa_equals_eager(variant):
    sdpa = seq2seq(**variant)
    assert sdpa.config._attn_implementation == "sdpa"
    eager = TransformerForConditionalGeneration(tiny_config(**variant, attn_implementation="eager")).eval()
    assert eager.config._attn_implementation == "eager"
    eager.load_state_dict(sdpa.state_dict())
    src, tgt = random_ids(3, 7), random_ids(3, 5)
    mask = torch.ones_like(src)
    mask[0, 4:] = 0
    dec_mask = torch.ones_like(tgt)
    dec_mask[1, 3:] = 0
    kwargs = dict(input_ids=src, attention_mask=mask, decoder_input_ids=tgt)
    ref = sdpa(**kwargs).logits
    assert torch.allclose(eager(**kwargs).logits, ref, atol=1e-5)
    # output_attentions switches to the eager path on an SDPA model and returns every weight
    out = sdpa(**kwargs, output_attentions=True)
    assert torch.allclose(out.logits, ref, atol=1e-5)
    assert len(out.encoder_attentions) == len(out.decoder_attentions) == len(out.cross_attentions) == 2
    assert out.encoder_attentions[0].shape == (3, 4, 7, 7)
    assert out.decoder_attentions[0].shape == (3, 4, 5, 5)
    assert out.cross_attentions[0].shape == (3, 4, 5, 7)
    assert torch.allclose(out.cross_attentions[1].sum(-1), torch.ones(3, 4, 5), atol=1e-5)
    assert torch.all(out.decoder_attentions[0].triu(1) == 0)
    with_dec_mask = dict(kwargs, decoder_attention_mask=dec_mask)
    assert torch.allclose(sdpa(**with_dec_mask).logits, eager(**with_dec_mask).logits, atol=1e-5)
    lm_sdpa, lm_eager = (
        causal_lm(**variant),
        TransformerForCausalLM(tiny_config(**variant, attn_implementation="eager")),
    )
    lm_eager.load_state_dict(lm_sdpa.state_dict())
    lm_eager.eval()
    ids = random_ids(2, 6)
    assert torch.allclose(lm_sdpa(ids).logits, lm_eager(ids).logits, atol=1e-5)


# --- caching and generation ------------------------------------------------------------------------------------------
def test_incremental_decoding_with_cache_equals_full_forward():
    model = seq2seq()
    src, tgt = random_ids(2, 6), random_ids(2, 7)
    mask = torch.ones_like(src)
    mask[1, 4:] = 0
    full = model(input_ids=src, attention_mask=mask, decoder_input_ids=tgt).logits
    enc = model.get_encoder()(src, mask)
    out = model(encoder_outputs=enc, attention_mask=mask, decoder_input_ids=tgt[:, :3], use_cache=True)
    steps = [out.logits]
    for t in range(3, 7):
        out = model(encoder_outputs=enc, attention_mask=mask, decoder_input_ids=tgt[:, t : t + 1], cache=out.cache)
        steps.append(out.logits)
    assert type(out.cache).__name__ == "EncoderDecoderCache" and out.cache.get_seq_length() == 7
    assert torch.allclose(torch.cat(steps, 1), full, atol=1e-5)

    lm = causal_lm()
    full = lm(tgt).logits
    out = lm(tgt[:, :2], use_cache=True)
    steps = [out.logits]
    for t in range(2, 7):
        out = lm(tgt[:, t : t + 1], cache=out.cache)
        steps.append(out.logits)
    assert type(out.cache).__name__ == "DynamicCache"
    assert torch.allclose(torch.cat(steps, 1), full, atol=1e-5)


GEN_MODES = {
    "greedy": dict(do_sample=False, num_beams=1),
    "beam": dict(do_sample=False, num_beams=3, num_return_sequences=2),
    "sample": dict(do_sample=True, top_k=10),
}


def _generate(model, seed, **kwargs):
    torch.manual_seed(seed)
    return model.generate(**kwargs, return_dict_in_generate=True, output_scores=True)


@pytest.mark.parametrize("mode", GEN_MODES)
def test_seq2seq_cached_generation_equals_uncached(mode):
    model = seq2seq()
    src = random_ids(3, 6)
    mask = torch.ones_like(src)
    mask[2, 4:] = 0
    kw = dict(input_ids=src, attention_mask=mask, max_new_tokens=10, min_new_tokens=10, **GEN_MODES[mode])
    a, b = _generate(model, 1, **kw), _generate(model, 1, use_cache=False, **kw)
    assert torch.equal(a.sequences, b.sequences)
    assert a.sequences.shape[1] == 11 and torch.all(a.sequences[:, 0] == model.config.decoder_start_token_id)
    for x, y in zip(a.scores, b.scores):
        assert torch.allclose(x, y, atol=1e-4)


@pytest.mark.parametrize("mode", GEN_MODES)
def test_lm_cached_generation_equals_uncached(mode):
    lm = causal_lm()
    ids = random_ids(2, 5)
    kw = dict(
        input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=10, min_new_tokens=10, **GEN_MODES[mode]
    )
    a, b = _generate(lm, 2, **kw), _generate(lm, 2, use_cache=False, **kw)
    assert torch.equal(a.sequences, b.sequences)
    for x, y in zip(a.scores, b.scores):
        assert torch.allclose(x, y, atol=1e-4)


@pytest.mark.parametrize("num_beams", [1, 3])
@pytest.mark.parametrize("kind", ["seq2seq", "causal_lm"])
def test_batched_generation_equals_one_at_a_time(kind, num_beams):
    # sources padded on the right; decoder-only prompts on the left (as the text-generation pipeline pads them), their
    # positions counted from the first real token
    left = kind == "causal_lm"
    model = causal_lm() if left else seq2seq()
    rows = [random_ids(1, n) for n in ((2, 6, 4) if left else (3, 7, 5))]
    width = max(r.shape[1] for r in rows)
    batch = torch.full((len(rows), width), 1)
    for i, r in enumerate(rows):
        if left:
            batch[i, width - r.shape[1] :] = r
        else:
            batch[i, : r.shape[1]] = r
    kw = dict(max_new_tokens=8, min_new_tokens=8, num_beams=num_beams, do_sample=False)
    together = model.generate(batch, attention_mask=(batch != 1).long(), **kw)
    for i, r in enumerate(rows):
        if left:  # the prompt comes back in front of the new tokens
            alone = model.generate(r, attention_mask=torch.ones_like(r), **kw)[0, r.shape[1] :]
            assert torch.equal(alone, together[i, width:])
        else:
            assert torch.equal(model.generate(r, **kw)[0], together[i])


# --- persistence ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", VARIANTS)
def test_save_load_gives_identical_outputs(variant, tmp_path):
    model = seq2seq(**variant)
    src, tgt = random_ids(2, 6), random_ids(2, 4)
    model.save_pretrained(tmp_path / "s2s")
    loaded = AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "s2s").eval()
    assert type(loaded) is TransformerForConditionalGeneration
    assert torch.equal(
        loaded(input_ids=src, decoder_input_ids=tgt).logits, model(input_ids=src, decoder_input_ids=tgt).logits
    )
    lm = causal_lm(**variant)
    lm.save_pretrained(tmp_path / "lm")
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "lm").eval()
    assert type(loaded) is TransformerForCausalLM and not loaded.config.is_encoder_decoder
    assert torch.equal(loaded(tgt).logits, lm(tgt).logits)


def test_auto_classes():
    config = AutoConfig.for_model("hf_seq_transformer", vocab_size=VOCAB, d_model=32, num_heads=4, d_ff=64, N=1)
    assert isinstance(config, TransformerConfig)
    assert type(AutoModel.from_config(config)) is TransformerModel
    assert type(AutoModelForSeq2SeqLM.from_config(config)) is TransformerForConditionalGeneration
    with pytest.raises(ValueError, match="TransformerConfig"):  # an encoder-decoder config is no language model
        AutoModelForCausalLM.from_config(config)
    config = AutoConfig.for_model("hf_seq_transformer_lm", vocab_size=VOCAB, d_model=32, num_heads=4, d_ff=64)
    assert type(config) is TransformerDecoderConfig and not config.is_encoder_decoder
    assert type(AutoModelForCausalLM.from_config(config)) is TransformerForCausalLM
    assert type(AutoModel.from_config(config)) is TransformerDecoderModel


def check_remote_code_and_translation_pipeline(tmp_path):
    """Saved folders load through trust_remote_code alone, all in ONE clean process (each costs seconds): the base
    model (AutoModel), beam generation of the encoder-decoder, the decoder-only LM, and the hf-seq translation
    pipeline give what the local classes give."""
    tok = build_bpe_tokenizer(
        ["the cat sat on the mat", "le chat est sur le tapis", "a dog ran", "un chien"] * 5,
        vocab_size=300,
        min_frequency=1,
    )
    model = seq2seq(norm_first=True, vocab_size=len(tok))
    model.generation_config.max_new_tokens = 8
    save_translation_pipeline(model, tok, tmp_path / "s2s")
    assert TRANSLATION_TASK in json.loads((tmp_path / "s2s" / "config.json").read_text())["custom_pipelines"]
    TransformerConfig.register_for_auto_class()
    TransformerForCausalLM.register_for_auto_class("AutoModelForCausalLM")
    lm = causal_lm()
    lm.save_pretrained(tmp_path / "lm")
    TransformerModel.register_for_auto_class("AutoModel")
    base = TransformerModel(tiny_config()).eval()
    base.save_pretrained(tmp_path / "base")
    src = [[5, 6, 7, 8, 9], [10, 11, 12, 1, 1]]
    mask = [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]
    src_t, mask_t = torch.tensor(src), torch.tensor(mask)
    kw = dict(max_new_tokens=6, min_new_tokens=6, num_beams=2, do_sample=False)
    sentences = ["the cat sat", "a dog ran on the mat"]
    local = pipeline(model=str(tmp_path / "s2s"), trust_remote_code=True)
    expected = {
        "s2s": model.generate(src_t, attention_mask=mask_t, **kw).tolist(),
        "lm": lm.generate(src_t[:, :3], attention_mask=torch.ones(2, 3, dtype=torch.long), **kw).tolist(),
        "logits": model(input_ids=src_t, attention_mask=mask_t, decoder_input_ids=src_t).logits.sum().item(),
        "base": base(input_ids=src_t, attention_mask=mask_t, decoder_input_ids=src_t).last_hidden_state.sum().item(),
        "pipe": local(sentences, batch_size=2, num_beams=2),
    }
    assert expected["pipe"] == [local(s, num_beams=2) for s in sentences]  # batched == one at a time
    code = f"""
        import json, torch
        from transformers import AutoModel, AutoModelForSeq2SeqLM, AutoModelForCausalLM, pipeline
        base = AutoModel.from_pretrained({str(tmp_path / "base")!r}, trust_remote_code=True).eval()
        m = AutoModelForSeq2SeqLM.from_pretrained({str(tmp_path / "s2s")!r}, trust_remote_code=True).eval()
        lm = AutoModelForCausalLM.from_pretrained({str(tmp_path / "lm")!r}, trust_remote_code=True).eval()
        src, mask = torch.tensor({src}), torch.tensor({mask})
        kw = {kw!r}
        pipe = pipeline(model={str(tmp_path / "s2s")!r}, trust_remote_code=True)
        print(json.dumps({{
            "module": type(m).__module__,
            "s2s": m.generate(src, attention_mask=mask, **kw).tolist(),
            "lm": lm.generate(src[:, :3], attention_mask=torch.ones(2, 3, dtype=torch.long), **kw).tolist(),
            "logits": m(input_ids=src, attention_mask=mask, decoder_input_ids=src).logits.sum().item(),
            "base": base(input_ids=src, attention_mask=mask, decoder_input_ids=src).last_hidden_state.sum().item(),
            "base_cls": type(base).__name__,
            "pipe": pipe({sentences!r}, batch_size=2, num_beams=2),
        }}))
    """
    got = run_without_hf_seq(code, tmp_path)
    assert "hf_seq" not in got["module"] and "transformers_modules" in got["module"]
    assert got["s2s"] == expected["s2s"] and got["lm"] == expected["lm"] and got["pipe"] == expected["pipe"]
    assert abs(got["logits"] - expected["logits"]) < 1e-3 and abs(got["base"] - expected["base"]) < 1e-3
    assert got["base_cls"] == "TransformerModel"


# --- learning ------------------------------------------------------------------------------------------------------
def test_learns_a_copy_task():
    """A 2-layer post-LN model learns to copy random 6-token strings in 300 CPU steps (50 warm-up steps, as the
    paper's schedule warms up); greedy decoding then copies and stops with <eos>."""
    torch.manual_seed(0)
    model = TransformerForConditionalGeneration(tiny_config(dropout=0.0, max_position_embeddings=16)).train()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3, betas=(0.9, 0.98))
    warmup = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / 50))
    eos = model.config.eos_token_id
    first_loss = None
    for _ in range(300):
        src = random_ids(64, 6)
        labels = torch.cat([src, torch.full((64, 1), eos)], 1)
        loss = model(input_ids=src, labels=labels).loss
        first_loss = first_loss if first_loss is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
        warmup.step()
    assert loss.item() < 0.05 * first_loss
    model.eval()
    test = random_ids(20, 6)
    out = model.generate(test, max_new_tokens=8, do_sample=False)
    # seeds 0-4 gave 95-100% exact copies here; the bounds leave room for other CPUs / BLAS
    assert (out[:, 1:7] == test).float().mean() >= 0.97
    assert (out[:, 1:7] == test).all(1).float().mean() >= 0.8
    assert (out[:, 7] == eos).float().mean() >= 0.9


def test_lm_learns_a_periodic_sequence_with_left_padded_prompts():
    """The decoder-only LM learns a repeating pattern; greedy generation from left-padded prompts continues it."""
    torch.manual_seed(0)
    lm = TransformerForCausalLM(tiny_config(dropout=0.0, decoder_layers=1)).train()
    opt = torch.optim.Adam(lm.parameters(), lr=3e-3, betas=(0.9, 0.98))
    pattern = torch.tensor([5, 9, 13, 17, 21, 25, 29])
    stream = pattern.repeat(8)
    first_loss = None
    for _ in range(120):
        starts = torch.randint(0, 7, (16,))
        batch = torch.stack([stream[s : s + 24] for s in starts.tolist()])
        loss = lm(batch, labels=batch).loss
        first_loss = first_loss if first_loss is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05 * first_loss
    lm.eval()
    prompts = torch.tensor([[1, 1, 5, 9, 13], [9, 13, 17, 21, 25]])
    out = lm.generate(prompts, attention_mask=(prompts != 1).long(), max_new_tokens=7, do_sample=False)
    assert out[0, 5:].tolist() == [17, 21, 25, 29, 5, 9, 13]
    assert out[1, 5:].tolist() == [29, 5, 9, 13, 17, 21, 25]


# --- errors --------------------------------------------------------------------------------------------------------
def test_clear_errors():
    model, lm = seq2seq(), causal_lm()
    src = random_ids(2, 5)
    with pytest.raises(ValueError, match="exceeds max_position_embeddings=64"):
        model(input_ids=random_ids(1, 65), decoder_input_ids=src)
    with pytest.raises(ValueError, match="exceeds max_position_embeddings=64"):
        lm(random_ids(1, 65))
    with pytest.raises(ValueError, match=r"\[0, 40\).*to 40"):
        model(input_ids=torch.tensor([[5, 40]]), decoder_input_ids=src)
    with pytest.raises(ValueError, match=r"from -3"):
        lm(torch.tensor([[5, -3]]))
    with pytest.raises(ValueError, match=r"attention_mask shape \(2, 4\)"):
        model(input_ids=src, attention_mask=torch.ones(2, 4), decoder_input_ids=src)
    with pytest.raises(ValueError, match=r"attention_mask shape \(2, 3\)"):
        lm(src, attention_mask=torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 40\).*e.g. 57"):
        model(input_ids=src, labels=torch.tensor([[5, 57], [-100, 4]]))
    with pytest.raises(ValueError, match="decoder_input_ids"):
        model(input_ids=src)
    # the generation path checks too: a prompt that leaves no room for new positions
    with pytest.raises(ValueError, match="max_position_embeddings"):
        lm.generate(random_ids(1, 60), max_new_tokens=10, min_new_tokens=10, do_sample=False)


# --- training script, heatmap --------------------------------------------------------------------------------------
def test_cross_attention_heatmap(tmp_path):
    tok = build_bpe_tokenizer(["the cat sat on the mat", "a dog ran"] * 5, vocab_size=280, min_frequency=1)
    model = seq2seq(vocab_size=len(tok))
    out = cross_attention_heatmap(model, tok, "the cat sat", str(tmp_path / "a.png"), max_new_tokens=5)
    assert (tmp_path / "a.png").stat().st_size > 1000 and isinstance(out["translation"], str)
    out = cross_attention_heatmap(model, tok, "a dog", str(tmp_path / "b.png"), layer=0, head=1, max_new_tokens=3)
    assert (tmp_path / "b.png").exists()


# --- behaving like a native transformers model (issue #19) ---------------------------------------------------------
def _padded_batch():
    """A (3, 9) batch whose first row is left-padded with 4 pads."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(4, VOCAB, (3, 9), generator=g)
    mask = torch.ones_like(ids)
    mask[0, :4] = 0
    return ids.masked_fill(mask == 0, 1), mask


def _every_class():
    """(model, inputs) for each Transformer class, eval mode, on a left-padded batch."""
    ids, mask = _padded_batch()
    s2s_inputs = dict(input_ids=ids, attention_mask=mask, decoder_input_ids=ids[:, :5])
    lm_inputs = dict(input_ids=ids, attention_mask=mask)
    torch.manual_seed(0)
    return [
        (TransformerModel(tiny_config()).eval(), s2s_inputs),
        (TransformerForConditionalGeneration(tiny_config()).eval(), s2s_inputs),
        (TransformerDecoderModel(tiny_config(TransformerDecoderConfig)).eval(), lm_inputs),
        (TransformerForCausalLM(tiny_config(TransformerDecoderConfig)).eval(), lm_inputs),
    ]


def test_return_dict_false_gives_the_output_as_a_tuple():
    for model, inputs in _every_class():
        name = type(model).__name__
        kw = dict(inputs, use_cache=False, output_hidden_states=True)
        with torch.no_grad():
            as_dict, as_tuple = model(**kw), model(**kw, return_dict=False)
        assert type(as_tuple) is tuple, name
        torch.testing.assert_close(as_tuple, as_dict.to_tuple(), atol=0, rtol=0, msg=name)
        model.config.return_dict = False  # the config's default is honoured too
        with torch.no_grad():
            assert type(model(**inputs)) is tuple, name
    encoder = seq2seq().get_encoder()
    out = encoder(input_ids=random_ids(2, 4), return_dict=False)
    assert type(out) is tuple and out[0].shape == (2, 4, 32)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_sinusoidal_table_and_generation_follow_the_load_dtype(dtype, tmp_path):
    # the table is a non-persistent buffer, which from_pretrained(dtype=...) does not cast (the mixin checks forward)
    lm, model = causal_lm(), seq2seq()
    lm.save_pretrained(tmp_path / "lm")
    model.save_pretrained(tmp_path / "s2s")
    lm = TransformerForCausalLM.from_pretrained(tmp_path / "lm", dtype=dtype).eval()
    model = TransformerForConditionalGeneration.from_pretrained(tmp_path / "s2s", dtype=dtype).eval()
    for table in (lm.model.embeddings.embed_positions.table, model.model.decoder.embeddings.embed_positions.table):
        assert table.dtype == dtype
        assert torch.equal(table, sinusoidal_position_encoding(64, 32).to(dtype))  # rebuilt, then rounded
    ids, mask = _padded_batch()
    assert lm.generate(ids, attention_mask=mask, max_new_tokens=3, do_sample=False).shape == (3, 12)
    out = model.generate(ids, attention_mask=mask, max_new_tokens=3, min_new_tokens=3, num_beams=2, do_sample=False)
    assert out.shape == (3, 4)


def test_decoder_only_model_type_routes_auto_classes_and_pipelines(tmp_path):
    tok = build_bpe_tokenizer(["the cat sat on the mat", "a dog ran"] * 5, vocab_size=280, min_frequency=1)
    lm, model = causal_lm(vocab_size=len(tok)), seq2seq(vocab_size=len(tok))
    assert type(lm.config) is TransformerDecoderConfig and lm.config.model_type == "hf_seq_transformer_lm"
    for name, m in (("lm", lm), ("s2s", model)):
        m.save_pretrained(tmp_path / name)
        tok.save_pretrained(tmp_path / name)
    saved = json.loads((tmp_path / "lm" / "config.json").read_text())
    assert saved["model_type"] == "hf_seq_transformer_lm" and saved["is_encoder_decoder"] is False
    # a decoder-only folder: AutoModel / feature extraction build the decoder body with the LM's weights
    body = AutoModel.from_pretrained(tmp_path / "lm").eval()
    assert type(body) is TransformerDecoderModel
    ids = torch.tensor([tok("the cat sat")["input_ids"]])
    with torch.no_grad():
        hidden = lm.model(ids).last_hidden_state
        assert torch.equal(body(ids).last_hidden_state, hidden)
    features = pipeline("feature-extraction", model=str(tmp_path / "lm"))("the cat sat", return_tensors=True)
    torch.testing.assert_close(features, hidden, atol=1e-6, rtol=0)
    # a translation folder is no language model: refused instead of a random decoder
    with pytest.raises(ValueError, match="AutoModelForCausalLM"):
        pipeline("text-generation", model=str(tmp_path / "s2s"))
    with pytest.raises(ValueError, match="TransformerConfig"):
        AutoModelForCausalLM.from_pretrained(tmp_path / "s2s")


@pytest.mark.parametrize("marker", ["both", "architectures", "is_encoder_decoder"])
def test_decoder_only_folder_saved_before_its_model_type_still_loads(marker, tmp_path):
    lm = causal_lm()
    lm.save_pretrained(tmp_path)
    # the config.json layout of hf-seq before issue #19: the encoder-decoder's model_type, the decoder-only model
    # told apart by `architectures` and `is_encoder_decoder: false`
    path = tmp_path / "config.json"
    config = json.loads(path.read_text())
    config["model_type"] = "hf_seq_transformer"
    if marker == "architectures":
        del config["is_encoder_decoder"]
    elif marker == "is_encoder_decoder":
        del config["architectures"]
    path.write_text(json.dumps(config))
    ids = random_ids(2, 6)
    assert type(AutoConfig.from_pretrained(tmp_path)) is TransformerDecoderConfig
    with torch.no_grad():
        for loader in (AutoModelForCausalLM, TransformerForCausalLM):
            loaded = loader.from_pretrained(tmp_path).eval()
            assert type(loaded) is TransformerForCausalLM and loaded.config.model_type == "hf_seq_transformer_lm"
            assert torch.equal(loaded(ids).logits, lm(ids).logits)
        body = AutoModel.from_pretrained(tmp_path).eval()
        assert type(body) is TransformerDecoderModel
        assert torch.equal(body(ids).last_hidden_state, lm.model(ids).last_hidden_state)


def _count_calls(module, counter: dict, key: str):
    forward = module.forward

    def counted(*args):
        counter[key] = counter.get(key, 0) + 1
        return forward(*args)

    module.forward = counted


def test_activation_checkpointing_recomputes_each_layer_with_equal_loss_and_gradients():
    ids, mask = _padded_batch()
    cases = [
        (TransformerForConditionalGeneration, tiny_config(), dict(input_ids=ids, attention_mask=mask, labels=ids)),
        (TransformerForCausalLM, tiny_config(TransformerDecoderConfig), dict(input_ids=ids, attention_mask=mask,
                                                                              labels=ids.masked_fill(mask == 0, -100))),
    ]  # fmt: skip
    for cls, config, inputs in cases:
        torch.manual_seed(0)
        plain = cls(config).train()
        torch.manual_seed(0)
        checkpointed = cls(config).train()
        checkpointed.activation_checkpointing_enable()
        assert all(m.gradient_checkpointing for m in checkpointed.modules() if hasattr(m, "gradient_checkpointing"))
        calls = {}
        for tag, model in (("plain", plain), ("checkpointed", checkpointed)):
            layers = [m for m in model.modules() if type(m).__name__.endswith("Layer")]
            for layer in layers:
                _count_calls(layer, calls, tag)
            torch.manual_seed(1)  # the same dropout masks: checkpointing replays the RNG state when recomputing
            loss = model(**inputs).loss
            loss.backward()
            calls[tag + "_loss"] = loss
        assert calls["checkpointed"] == 2 * calls["plain"] == 2 * len(layers)  # recomputed once in backward
        assert torch.equal(calls["plain_loss"], calls["checkpointed_loss"])
        for (name, p), q in zip(plain.named_parameters(), checkpointed.parameters()):
            torch.testing.assert_close(q.grad, p.grad, atol=1e-7, rtol=0, msg=f"{cls.__name__} {name}")


def _compile_cases():
    ids, mask = _padded_batch()
    torch.manual_seed(0)
    return {
        "lm": (causal_lm(), dict(input_ids=ids, attention_mask=mask)),
        "s2s": (seq2seq(), dict(input_ids=ids, attention_mask=mask, decoder_input_ids=ids[:, :5])),
    }


@pytest.mark.parametrize("case", ["lm", "s2s"])
def test_compile_fullgraph_and_export_equal_eager(case):
    """No graph break and no data-dependent branch while tracing (backend "eager" keeps this fast; inductor runs in
    the mixin's compile check and the slow test below); the value checks still run in eager mode."""
    model, inputs = _compile_cases()[case]
    with torch.no_grad():
        eager = model(**inputs)
        compiled = torch.compile(model, fullgraph=True, backend="eager")(**inputs)
    torch.testing.assert_close(compiled.logits, eager.logits, atol=1e-6, rtol=0)
    assert compiled.cache.get_seq_length() == eager.cache.get_seq_length()
    exported = torch.export.export(model, args=(), kwargs=inputs)
    torch.testing.assert_close(exported.module()(**inputs).logits, eager.logits, atol=1e-6, rtol=0)
    bad_ids = inputs["input_ids"].clone()
    bad_ids[1, 2] = VOCAB
    with pytest.raises(ValueError, match=r"\[0, 40\)"):
        model(**dict(inputs, input_ids=bad_ids))
    bad_mask = inputs["attention_mask"].clone()
    bad_mask[1, 2] = 2
    with pytest.raises(ValueError, match="attention_mask.*only 0"):
        model(**dict(inputs, attention_mask=bad_mask))


@pytest.mark.slow  # the default run compiles the causal LM with inductor through the mixin
@pytest.mark.parametrize("case", ["lm", "s2s"])
def test_torch_compile_equals_eager_on_a_padded_batch(case):
    model, inputs = _compile_cases()[case]
    with torch.no_grad():
        eager = model(**inputs).logits
        compiled = torch.compile(model)(**inputs).logits
    torch.testing.assert_close(compiled, eager, atol=1e-5, rtol=1e-5)


def test_causal_lm_shift_labels_follow_the_transformers_convention():
    lm = causal_lm()
    ids, mask = _padded_batch()
    labels = ids.masked_fill(mask == 0, -100)
    logits = lm(ids, attention_mask=mask).logits
    shifted = torch.cat([labels[:, 1:], torch.full((3, 1), -100)], 1)  # position t predicts token t + 1
    expected = torch.nn.functional.cross_entropy(logits.flatten(0, 1), shifted.flatten(), ignore_index=-100)
    torch.testing.assert_close(lm(ids, attention_mask=mask, labels=labels).loss, expected)
    torch.testing.assert_close(lm(ids, attention_mask=mask, shift_labels=shifted).loss, expected)
    # given shift_labels are the targets as they are, also next to labels
    direct = torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
    torch.testing.assert_close(lm(ids, attention_mask=mask, labels=labels, shift_labels=labels).loss, direct)
    # num_items_in_batch (gradient accumulation): the token sum divided by it
    n = int((shifted != -100).sum())
    torch.testing.assert_close(lm(ids, attention_mask=mask, labels=labels, num_items_in_batch=2 * n).loss, expected / 2)


def test_inputs_embeds_equal_input_ids_in_forward_and_generate():
    lm = causal_lm()
    ids, mask = _padded_batch()
    embeds = lm.get_input_embeddings()(ids)
    torch.testing.assert_close(
        lm(inputs_embeds=embeds, attention_mask=mask).logits, lm(ids, attention_mask=mask).logits
    )
    kw = dict(attention_mask=mask, max_new_tokens=6, min_new_tokens=6, do_sample=False)
    assert torch.equal(lm.generate(inputs_embeds=embeds, **kw), lm.generate(ids, **kw)[:, ids.shape[1] :])
    with pytest.raises(ValueError, match="exactly one of `input_ids`"):
        lm(ids, inputs_embeds=embeds)
    with pytest.raises(ValueError, match="`inputs_embeds` hold NaN"):
        lm(inputs_embeds=embeds.masked_fill(mask[..., None] == 0, float("nan")), attention_mask=mask)
    model = seq2seq()
    embed = model.get_input_embeddings()
    tgt = ids[:, :5]
    torch.testing.assert_close(
        model(inputs_embeds=embed(ids), attention_mask=mask, decoder_inputs_embeds=embed(tgt)).logits,
        model(input_ids=ids, attention_mask=mask, decoder_input_ids=tgt).logits,
    )
    assert torch.equal(model.generate(inputs_embeds=embed(ids), **kw), model.generate(ids, **kw))
    with pytest.raises(ValueError, match="exactly one of `decoder_input_ids`"):
        model(input_ids=ids, decoder_input_ids=tgt, decoder_inputs_embeds=embed(tgt))


def test_unknown_keyword_arguments_are_refused_by_name():
    for model, inputs in _every_class():
        with pytest.raises(TypeError, match="attention_maks"):
            model(**inputs, attention_maks=inputs["attention_mask"])
    lm = causal_lm()
    ids, mask = _padded_batch()
    cache = lm(ids[:, :5], use_cache=True).cache
    with pytest.raises(TypeError, match=r"past_key_values.*`cache`"):  # the transformers 4 name of the cache
        lm(ids[:, 5:6], past_key_values=cache)
    with pytest.raises(TypeError, match="attention_maks"):
        seq2seq().get_encoder()(input_ids=ids, attention_maks=mask)
    # what generate() and Trainer pass is accepted
    out = lm(ids, attention_mask=mask, labels=ids, position_ids=None, cache_position=torch.arange(9), use_cache=False,
             num_items_in_batch=20, output_attentions=True, output_hidden_states=True)  # fmt: skip
    assert torch.isfinite(out.loss) and len(out.attentions) == len(out.hidden_states) - 1 == 2


# --- input checks (issue #20) ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [2, 0.5, float("nan")])
def test_masks_with_values_other_than_0_and_1_are_refused(value):
    model, lm = seq2seq(), causal_lm()
    ids, mask = _padded_batch()
    bad = mask.clone() if isinstance(value, int) else mask.float()
    bad[2, 3] = value
    with pytest.raises(ValueError, match=r"`attention_mask` must hold only 0 \(padding\) and 1"):
        model(input_ids=ids, attention_mask=bad, decoder_input_ids=ids)
    with pytest.raises(ValueError, match=r"`decoder_attention_mask` must hold only 0"):
        model(input_ids=ids, decoder_input_ids=ids, decoder_attention_mask=bad)
    with pytest.raises(ValueError, match=r"`attention_mask` must hold only 0"):
        lm(ids, attention_mask=bad)


def test_a_fully_masked_row_is_refused():
    model, lm = seq2seq(), causal_lm()
    ids, mask = _padded_batch()
    mask[1] = 0
    for refused in (
        lambda: model(input_ids=ids, attention_mask=mask, decoder_input_ids=ids),
        lambda: lm(ids, attention_mask=mask),
    ):
        with pytest.raises(ValueError, match=r"`attention_mask` masks every token of row\(s\) \[1\]"):
            refused()


def test_labels_that_are_all_ignored_are_refused():
    model, lm = seq2seq(), causal_lm()
    ids = random_ids(2, 5)
    ignored = torch.full_like(ids, -100)
    with pytest.raises(ValueError, match="labels are all -100"):
        model(input_ids=ids, labels=ignored)
    only_first = ignored.clone()
    only_first[:, 0] = 7  # nothing predicts the first token: no target remains after the shift
    with pytest.raises(ValueError, match="labels are all -100"):
        lm(ids, labels=only_first)
    # under gradient accumulation an all-ignored micro-batch adds nothing, which is well defined
    assert lm(ids, labels=ignored, num_items_in_batch=4).loss.item() == 0.0


def test_generate_refuses_right_padded_prompts():
    lm = causal_lm()
    ids, mask = _padded_batch()
    right = torch.ones_like(mask)
    right[0, -4:] = 0
    with pytest.raises(ValueError, match=r"attention_mask ends with padding in row\(s\) \[0\].*padding_side='left'"):
        lm.generate(ids, attention_mask=right, max_new_tokens=2)
    assert lm.generate(ids, attention_mask=mask, max_new_tokens=2, do_sample=False).shape == (3, 11)


# --- static cache (generate(cache_implementation="static"), torch.compile of the decode step) ----------------------
def _static_cases(kind):
    """A left-padded batch of prompts (decoder-only) or a right-padded batch of sources (encoder-decoder)."""
    torch.manual_seed(3)
    ids = random_ids(3, 7)
    mask = torch.ones_like(ids)
    if kind == "causal_lm":
        mask[0, :3] = 0
        mask[2, :1] = 0
        return causal_lm(), dict(input_ids=ids.masked_fill(mask == 0, 1), attention_mask=mask)
    mask[1, 5:] = 0
    return seq2seq(), dict(input_ids=ids.masked_fill(mask == 0, 1), attention_mask=mask)


@pytest.mark.parametrize("num_beams", [1, 3])
@pytest.mark.parametrize("variant", [{}, {"norm_first": True, "position_embedding_type": "learned"}])
@pytest.mark.parametrize("kind", ["seq2seq", "causal_lm"])
def test_static_cache_generation_equals_dynamic(kind, variant, num_beams):
    model, inputs = _static_cases(kind)
    if variant:
        model = (causal_lm if kind == "causal_lm" else seq2seq)(**variant)
    kw = dict(inputs, max_new_tokens=9, min_new_tokens=9, num_beams=num_beams, do_sample=False)
    dynamic = _generate(model, 0, **kw)
    static = _generate(model, 0, cache_implementation="static", **kw)
    self_cache = static.cache.self_attention_cache if kind == "seq2seq" else static.cache
    assert type(self_cache).__name__ == "StaticCache"  # the static cache really ran
    assert torch.equal(static.sequences, dynamic.sequences)
    for x, y in zip(static.scores, dynamic.scores):
        torch.testing.assert_close(x, y, atol=1e-5, rtol=1e-5)


def test_static_cache_forward_takes_2d_and_4d_masks_and_refuses_malformed_ones():
    """Step by step with a StaticCache: a 2-D mask (built into a bias over the cache's fixed length here) and the 4-D
    mask transformers builds both give the DynamicCache logits; a 4-D mask of the wrong shape or dtype is refused."""
    from transformers import DynamicCache, StaticCache
    from transformers.masking_utils import create_causal_mask

    lm, inputs = _static_cases("causal_lm")
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    steps = [ids[:, :5], ids[:, 5:6], ids[:, 6:7]]
    with torch.no_grad():
        caches = {"dynamic": DynamicCache(), "2d": StaticCache(lm.config, 12), "4d": StaticCache(lm.config, 12)}
        seen = 0
        for step in steps:
            seen += step.shape[1]
            logits = {}
            for name, cache in caches.items():
                step_mask = mask[:, :seen]
                if name == "4d":
                    embeds = torch.empty(3, step.shape[1], 0)
                    step_mask = create_causal_mask(lm.config, embeds, step_mask, cache)
                    assert step_mask.dim() == 4 and step_mask.shape[-1] == 12
                positions = (mask[:, :seen].cumsum(-1) - 1).clamp(min=0)[:, -step.shape[1] :]
                out = lm(step, attention_mask=step_mask, position_ids=positions, cache=cache)
                logits[name] = out.logits.masked_fill(mask[:, seen - step.shape[1] : seen, None] == 0, 0)
            torch.testing.assert_close(logits["2d"], logits["dynamic"], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(logits["4d"], logits["dynamic"], atol=1e-5, rtol=1e-5)
        cache = StaticCache(lm.config, 12)
        with pytest.raises(ValueError, match=r"4-D `attention_mask` must be .*\(3, 1, 2, 12\).*\(3, 1, 2, 9\)"):
            lm(ids[:, :2], attention_mask=torch.ones(3, 1, 2, 9, dtype=torch.bool), cache=cache)
        with pytest.raises(TypeError, match="4-D `attention_mask` must be boolean or floating.*int64"):
            lm(ids[:, :2], attention_mask=torch.ones(3, 1, 2, 12, dtype=torch.long), cache=cache)
        with pytest.raises(ValueError, match="additive bias"):
            lm(ids[:, :2], attention_mask=torch.ones(3, 1, 2, 12), cache=cache)
        with pytest.raises(ValueError, match=r"attention_mask shape \(3, 4\) should be .* \(3, 2\)"):
            lm(ids[:, :2], attention_mask=torch.ones(3, 4, dtype=torch.long), cache=cache)


def _compiled_static_generate(kind, backend):
    from transformers import CompileConfig

    model, inputs = _static_cases(kind)
    compile_config = CompileConfig(fullgraph=True, backend=backend, mode=None if backend == "eager" else "default")
    compile_config._compile_all_devices = True  # transformers compiles the decode step on GPUs only otherwise
    kw = dict(inputs, max_new_tokens=6, min_new_tokens=6, do_sample=False)
    eager = _generate(model, 0, **kw)
    compiled = _generate(model, 0, cache_implementation="static", compile_config=compile_config, **kw)
    assert hasattr(model, "_compiled_call")  # the decode step did run compiled
    assert torch.equal(compiled.sequences, eager.sequences)
    for x, y in zip(compiled.scores, eager.scores):
        torch.testing.assert_close(x, y, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["seq2seq", "causal_lm"])
def test_static_cache_decode_step_traces_fullgraph(kind):
    """The decode step with a static cache traces into one graph (backend "eager": fast) and equals eager generate."""
    _compiled_static_generate(kind, "eager")


@pytest.mark.slow  # inductor compiles for ~8 s per model on these cores
@pytest.mark.parametrize("kind", ["seq2seq", "causal_lm"])
def test_compiled_static_cache_generate_equals_eager(kind):
    _compiled_static_generate(kind, "inductor")
