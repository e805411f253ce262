"""Ensemble decoding (issue #22): one model equals the model, two models follow the hand-computed mean of
log-probabilities, beam search runs with every model's own cache, mismatched vocabularies are refused."""

import pytest
import torch
import torch.nn.functional as F

from hf_seq.ensemble import EnsembleForConditionalGeneration, load_ensemble
from hf_seq.models.seq2seq import RNNSeq2SeqConfig, RNNSeq2SeqForConditionalGeneration
from hf_seq.models.transformer import TransformerConfig, TransformerForConditionalGeneration

V = 23


def _rnn(seed, **kw):
    torch.manual_seed(seed)
    config = RNNSeq2SeqConfig(vocab_size=V, encoder_embedding_size=8, decoder_embedding_size=8, hidden_size=12,
                              dropout=0.0, **kw)
    return RNNSeq2SeqForConditionalGeneration(config).eval()


def _transformer(seed, vocab_size=V):
    torch.manual_seed(seed)
    config = TransformerConfig(vocab_size=vocab_size, hidden_size=16, intermediate_size=32, num_attention_heads=2,
                               encoder_layers=1, decoder_layers=1, dropout=0.0, max_position_embeddings=64)
    return TransformerForConditionalGeneration(config).eval()


def _source():
    torch.manual_seed(0)
    ids = torch.randint(4, V, (2, 6))
    mask = torch.ones_like(ids)
    mask[1, 4:] = 0
    return ids, mask


GEN = dict(max_new_tokens=7, min_new_tokens=7, do_sample=False)


def test_ensemble_of_one_equals_the_model():
    model = _rnn(1)
    ids, mask = _source()
    ensemble = EnsembleForConditionalGeneration([model])
    for kwargs in ({"num_beams": 1}, {"num_beams": 3}):
        expected = model.generate(input_ids=ids, attention_mask=mask, **GEN, **kwargs)
        got = ensemble.generate(input_ids=ids, attention_mask=mask, **GEN, **kwargs)
        assert torch.equal(got, expected)
    decoder_ids = torch.tensor([[2, 5, 6], [2, 7, 8]])
    logits = model(input_ids=ids, attention_mask=mask, decoder_input_ids=decoder_ids).logits
    ens = ensemble(input_ids=ids, attention_mask=mask, decoder_input_ids=decoder_ids).logits
    torch.testing.assert_close(ens, F.log_softmax(logits, -1), rtol=0, atol=1e-6)


def test_ensemble_of_two_is_the_mean_of_log_probs_greedy():
    models = [_rnn(1), _transformer(2)]
    ids, mask = _source()
    ensemble = EnsembleForConditionalGeneration(models)
    out = ensemble.generate(input_ids=ids, attention_mask=mask, **GEN, output_logits=True, return_dict_in_generate=True)
    # by hand: recompute every prefix from scratch with each model, average the log-probabilities, take the argmax
    prefix = torch.full((2, 1), models[0].config.decoder_start_token_id)
    for step in range(GEN["max_new_tokens"]):
        with torch.no_grad():
            mean = sum(
                F.log_softmax(m(input_ids=ids, attention_mask=mask, decoder_input_ids=prefix).logits[:, -1], -1)
                for m in models
            ) / 2
        torch.testing.assert_close(out.logits[step], mean, rtol=0, atol=1e-5)
        prefix = torch.cat([prefix, mean.argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(out.sequences, prefix)


def test_ensemble_beam_search_keeps_each_models_cache():
    models = [_rnn(1, attention="luong", input_feeding=True, bidirectional_encoder=False, attention_score="dot"),
              _transformer(2)]
    ids, mask = _source()
    ensemble = EnsembleForConditionalGeneration(models)
    cached = ensemble.generate(input_ids=ids, attention_mask=mask, num_beams=3, **GEN)
    uncached = ensemble.generate(input_ids=ids, attention_mask=mask, num_beams=3, use_cache=False, **GEN)
    assert torch.equal(cached, uncached)


def test_ensemble_refuses_different_vocabularies():
    with pytest.raises(ValueError, match=r"target vocabularies differ in size.*23.*29"):
        EnsembleForConditionalGeneration([_transformer(1), _transformer(2, vocab_size=29)])
    vocab = {f"w{i}": i for i in range(V)}
    other = dict(vocab, w5=6, w6=5)
    with pytest.raises(ValueError, match=r"target vocabularies differ.*different ids: \['w5', 'w6'\]"):
        EnsembleForConditionalGeneration([_rnn(1), _rnn(2)], target_vocabularies=[vocab, other])


def test_load_ensemble_from_folders(tmp_path):
    from hf_seq.tokenization import build_word_level_tokenizer

    tokenizer = build_word_level_tokenizer(["a b c d e f g h i j k l m n o p q r s"])
    assert len(tokenizer) == V
    paths = []
    for seed in (1, 2):
        path = tmp_path / f"m{seed}"
        model = _rnn(seed)
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)
        paths.append(path)
    ensemble, source_tok, _ = load_ensemble(paths)
    batch = source_tok(["a b c", "d e"], return_tensors="pt", padding=True)
    models = [_rnn(1), _rnn(2)]
    expected = EnsembleForConditionalGeneration(models).generate(**batch, **GEN)
    assert torch.equal(ensemble.generate(**batch, **GEN), expected)


def test_cli_translate_with_models_decodes_as_an_ensemble(tmp_path, capsys):
    """`hf-seq translate A "..." --models B`: the ensemble's greedy translation, and a clear refusal for a model with
    another vocabulary."""
    from hf_seq.cli import main as cli
    from hf_seq.evaluation import translate
    from hf_seq.tokenization import build_word_level_tokenizer

    tokenizer = build_word_level_tokenizer(["a b c d e f g h i j k l m n o p q r s"])
    paths = []
    for seed in (1, 2):
        path = tmp_path / f"m{seed}"
        model = _rnn(seed)
        model.generation_config.update(max_new_tokens=7, do_sample=False)
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)
        paths.append(str(path))
    assert cli(["translate", paths[0], "a b c", "d e", "--models", paths[1]]) == 0
    got = capsys.readouterr().out.splitlines()
    ensemble, tok, _ = load_ensemble(paths)
    ensemble.generation_config.update(max_new_tokens=7, do_sample=False)
    assert got == translate(ensemble, tok, ["a b c", "d e"])
    other = tmp_path / "other"
    _transformer(3, vocab_size=V + 2).save_pretrained(other)
    build_word_level_tokenizer(["a b c d e f g h i j k l m n o p q r s t u"]).save_pretrained(other)
    assert cli(["translate", paths[0], "a b c", "--models", str(other)]) == 2
    assert "cannot decode" in capsys.readouterr().err
