"""Evaluation in one place (hf_seq/evaluation.py) and the one attention heatmap (hf_seq/plotting.py): the file readers
name the file and the line, the perplexity protocol follows the model, and the heatmap draws the attention the model
used while translating, for the RNN seq2seq and the Transformer alike."""

import sys

import numpy as np
import pytest
import torch
from conftest import refused_file

import hf_seq  # noqa: F401  (registers the Auto classes)
from hf_seq.evaluation import (
    evaluate_perplexity,
    read_conll,
    read_word_pairs,
    stream_perplexity,
    windowed_perplexity,
    word_similarity,
)
from hf_seq.plotting import plot_translation_attention
from hf_seq.tokenization import build_word_level_tokenizer

CORPUS = ["the cat sat on the mat", "the dog ran to the cat", "a bird sat on a dog"]


def test_read_conll_columns_and_errors(tmp_path):
    path = tmp_path / "chunks.txt"
    path.write_text("-DOCSTART- -X- O\n\nThe DT B-NP\ncat NN I-NP\n\n\nsat VBD B-VP\n")
    assert read_conll(path, ["words", "pos", "tags"]) == [
        {"words": ["The", "cat"], "pos": ["DT", "NN"], "tags": ["B-NP", "I-NP"]},
        {"words": ["sat"], "pos": ["VBD"], "tags": ["B-VP"]}]
    assert read_conll(path, ["words", None, "tags"], max_samples=1) == [{"words": ["The", "cat"], "tags": ["B-NP", "I-NP"]}]
    path.write_text("The DT B-NP\ncat I-NP\n")
    with pytest.raises(ValueError, match=r"chunks.txt:2: expected 3 fields \(words pos tags\), got 2: 'cat I-NP'"):
        read_conll(path, ["words", "pos", "tags"])
    path.write_bytes(b"The DT B-NP\n\ncaf\xe9 NN I-NP\n")
    with pytest.raises(ValueError, match=r"chunks.txt:3: not UTF-8"):
        read_conll(path, ["words", "pos", "tags"])
    with pytest.raises(ValueError, match="name at least one column"):
        read_conll(path, [None, None])


def test_read_word_pairs_and_spearman(tmp_path):
    from scipy.stats import spearmanr

    from hf_seq.models.word2vec import Word2VecModel
    from hf_seq.models.word2vec.training_word2vec import prepare_word2vec

    path = tmp_path / "sim.txt"
    path.write_text("Word 1\tWord 2\tHuman (mean)\n# a comment\ncat\tdog\t9\ncat mat 2 extra\n\nbird\tzebra\t1\n")
    assert read_word_pairs(path) == [("cat", "dog", 9.0), ("cat", "mat", 2.0), ("bird", "zebra", 1.0)]
    refused_file(path, "cat\tdog\t9\ncat\tmat\tnan\n", read_word_pairs,
                 r"sim.txt:2: score 'nan' is not a finite number")
    refused_file(path, "cat\tdog\n", read_word_pairs, r"sim.txt:1: expected 'word1 word2 score'")

    tok, config, _ = prepare_word2vec(CORPUS * 3, min_count=1, vector_size=8, window=2)
    model = Word2VecModel(config)
    pairs = [("cat", "dog", 9.0), ("cat", "mat", 2.0), ("bird", "dog", 5.0), ("sat", "ran", 5.0), ("zebra", "cat", 1.0)]
    result = word_similarity(model, tok, pairs)
    vec = torch.nn.functional.normalize(model.get_input_embeddings().weight.detach(), dim=-1)
    vocab = tok.get_vocab()
    cos = [float(vec[vocab[a]] @ vec[vocab[b]]) for a, b, _ in pairs[:4]]
    assert result == {"spearman": pytest.approx(spearmanr(cos, [9, 2, 5, 5]).statistic, abs=1e-12), "pairs": 4,
                      "coverage": 0.8}


def test_perplexity_protocol_follows_the_model():
    """A recurrent LM carries its state across windows; the stateless Transformer LM gets the sliding window."""
    from hf_seq.models.recurrent import LSTMConfig, LSTMForCausalLM
    from hf_seq.models.transformer import TransformerConfig, TransformerForCausalLM

    tokens = np.random.default_rng(0).integers(4, 30, size=200)
    lstm = LSTMForCausalLM(LSTMConfig(vocab_size=30, hidden_size=8, embedding_size=8, num_hidden_layers=1)).eval()
    assert stream_perplexity(lstm, tokens, block_size=16, batch_size=4) == evaluate_perplexity(
        lstm, tokens, batch_size=4, bptt=16, progress=False)
    lm = TransformerForCausalLM(TransformerConfig(vocab_size=30, d_model=16, d_ff=32, num_heads=2, encoder_layers=1,
                                                  decoder_layers=1, max_position_embeddings=32, dropout=0.0)).eval()
    assert stream_perplexity(lm, tokens, block_size=16, batch_size=4) == windowed_perplexity(
        lm, tokens, window=16, stride=8, batch_size=4, progress=False)
    with pytest.raises(ValueError, match="block_size 64 exceeds the model's max_position_embeddings=32"):
        stream_perplexity(lm, tokens, block_size=64)
    with pytest.raises(ValueError, match="1 tokens: perplexity needs at least 2"):
        stream_perplexity(lstm, tokens[:1], block_size=16)


def _seq2seq(attention):
    from hf_seq.models.seq2seq import RNNSeq2SeqConfig, RNNSeq2SeqForConditionalGeneration

    tok = build_word_level_tokenizer(CORPUS)
    torch.manual_seed(0)
    config = RNNSeq2SeqConfig(vocab_size=len(tok), hidden_size=16, encoder_embedding_size=8, decoder_embedding_size=8,
                              attention=attention, dropout=0.0)
    return RNNSeq2SeqForConditionalGeneration(config).eval(), tok


def _transformer():
    from hf_seq.models.transformer import TransformerConfig, TransformerForConditionalGeneration

    tok = build_word_level_tokenizer(CORPUS)
    torch.manual_seed(0)
    config = TransformerConfig(vocab_size=len(tok), d_model=16, d_ff=32, num_heads=2, encoder_layers=2,
                               decoder_layers=2, max_position_embeddings=32, dropout=0.0)
    return TransformerForConditionalGeneration(config).eval(), tok


@pytest.mark.parametrize("family", ["seq2seq", "transformer"])
def test_one_heatmap_draws_the_attention_used_while_translating(tmp_path, family):
    """The teacher-forced pass the heatmap reads gives, row by row, the cross-attention generate() used at each step
    (top layer, mean over heads for the Transformer)."""
    model, tok = _seq2seq("bahdanau") if family == "seq2seq" else _transformer()
    info = plot_translation_attention(model, tok, "the cat sat on the mat", str(tmp_path / "a.png"), max_new_tokens=5)
    assert (tmp_path / "a.png").stat().st_size > 1000
    assert info["source_tokens"] == "the cat sat on the mat".split() and len(info["target_tokens"]) <= 5
    enc = tok("the cat sat on the mat", return_tensors="pt")
    out = model.generate(**enc, max_new_tokens=5, do_sample=False, num_beams=1, output_attentions=True,
                         return_dict_in_generate=True)
    steps = []
    for step in out.cross_attentions:  # one entry per generated token, the top layer last
        w = step[-1][0]
        steps.append((w.mean(0) if w.dim() == 3 else w)[-1])
    torch.testing.assert_close(info["weights"], torch.stack(steps).float(), atol=1e-5, rtol=0)
    assert info["weights"].shape == (len(info["target_tokens"]), len(info["source_tokens"]))
    if family == "transformer":
        one = plot_translation_attention(model, tok, "the cat", str(tmp_path / "b.png"), layer=0, head=1,
                                         max_new_tokens=3)
        assert (tmp_path / "b.png").exists() and one["weights"].shape[1] == 2


def test_heatmap_refuses_a_model_without_attention(tmp_path):
    model, tok = _seq2seq("none")
    with pytest.raises(ValueError, match="returns no cross-attention"):
        plot_translation_attention(model, tok, "the cat", str(tmp_path / "x.png"), max_new_tokens=3)


def test_plotting_imports_without_matplotlib_and_names_it_when_drawing(monkeypatch, tmp_path):
    import importlib

    import hf_seq.plotting

    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now fails
    try:
        module = importlib.reload(hf_seq.plotting)  # the module itself imports without it
        with pytest.raises(ImportError, match="Plotting needs matplotlib"):
            module.plot_training_curve([{"step": 1, "loss": 1.0}], str(tmp_path / "x.png"))
    finally:
        monkeypatch.undo()
        importlib.reload(hf_seq.plotting)
