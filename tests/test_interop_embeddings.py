"""Pre-trained word vectors per side (issue #22): recurrent LMs, the RNN seq2seq and the Transformer, with coverage."""

import numpy as np
import pytest
import torch

from hf_seq.embeddings import embedding_for_side, load_embeddings_for_side, load_seq2seq_embeddings
from hf_seq.interop import import_vectors
from hf_seq.models.recurrent import LSTMConfig, LSTMForCausalLM
from hf_seq.models.seq2seq import RNNSeq2SeqConfig, RNNSeq2SeqForConditionalGeneration
from hf_seq.models.transformer import TransformerConfig, TransformerForConditionalGeneration
from hf_seq.tokenization import build_bpe_tokenizer, build_word_level_tokenizer

DIM = 8


def _vector_file(path, words, seed=0):
    rng = np.random.default_rng(seed)
    table = {w: rng.standard_normal(DIM).astype(np.float32) for w in words}
    with open(path, "w", encoding="utf-8") as f:
        for w, v in table.items():
            f.write(w + " " + " ".join("%.9g" % x for x in v) + "\n")
    return table


def test_rnn_seq2seq_sides_load_separately_with_coverage(tmp_path):
    src = build_word_level_tokenizer(["das haus ist klein", "der hund"])
    tgt = build_word_level_tokenizer(["the house is small", "the dog"])
    de = _vector_file(tmp_path / "de.txt", ["haus", "klein", "Hund", "fremd"])
    en = _vector_file(tmp_path / "en.txt", ["house", "small", "dog"], seed=1)
    config = RNNSeq2SeqConfig(vocab_size=len(src), target_vocab_size=len(tgt), encoder_embedding_size=DIM,
                              decoder_embedding_size=DIM, hidden_size=12)
    model = RNNSeq2SeqForConditionalGeneration(config)
    before = embedding_for_side(model, "decoder").weight.detach().clone()
    report = load_seq2seq_embeddings(model, src, tgt, encoder=tmp_path / "de.txt", decoder=tmp_path / "en.txt",
                                     freeze_encoder=True)
    enc, dec = embedding_for_side(model, "encoder").weight, embedding_for_side(model, "decoder").weight
    assert report["encoder"]["found"] == 3 and report["encoder"]["total"] == 6  # haus, klein, hund (via Hund)
    assert report["encoder"]["coverage"] == pytest.approx(0.5)
    assert report["decoder"]["found"] == 3 and report["decoder"]["total"] == 5
    assert torch.equal(enc[src.convert_tokens_to_ids("hund")], torch.from_numpy(de["Hund"]))
    assert torch.equal(dec[tgt.convert_tokens_to_ids("house")], torch.from_numpy(en["house"]))
    the = tgt.convert_tokens_to_ids("the")
    assert torch.equal(dec[the], before[the])  # no vector: its initialisation is kept
    assert not enc.requires_grad and dec.requires_grad  # frozen per side


def test_transformer_shared_embedding_is_one_matrix_tied_to_the_output(tmp_path):
    tok = build_word_level_tokenizer(["a small house", "a dog"])
    vec = _vector_file(tmp_path / "v.txt", ["small", "house", "dog"])
    config = TransformerConfig(vocab_size=len(tok), hidden_size=DIM, intermediate_size=16, num_attention_heads=2,
                               encoder_layers=1, decoder_layers=1)
    model = TransformerForConditionalGeneration(config)
    report = load_seq2seq_embeddings(model, tok, encoder=tmp_path / "v.txt", decoder=tmp_path / "v.txt")
    assert report["encoder"]["tied_to_output"] and report["decoder"]["shared_with"] == "encoder"
    row = tok.convert_tokens_to_ids("dog")
    assert torch.equal(model.get_output_embeddings().weight[row], torch.from_numpy(vec["dog"]))
    with pytest.raises(ValueError, match="shares one embedding.*two vector files"):
        load_seq2seq_embeddings(model, tok, encoder=tmp_path / "v.txt", decoder=tmp_path / "other.txt")


def test_bpe_tokens_find_their_words_and_a_vectors_folder_is_a_source(tmp_path):
    tok = build_bpe_tokenizer(["the house is small"] * 20, vocab_size=300, min_frequency=1)
    assert "Ġhouse" in tok.get_vocab()
    vec = _vector_file(tmp_path / "v.txt", ["house", "small"])
    folder = import_vectors(tmp_path / "v.txt", tmp_path / "vectors")
    config = LSTMConfig(vocab_size=len(tok), hidden_size=DIM, embedding_size=DIM, num_hidden_layers=1)
    model = LSTMForCausalLM(config)
    report = load_embeddings_for_side(model, tok, folder, side="input")
    assert report["found"] >= 2
    assert torch.equal(model.get_input_embeddings().weight[tok.convert_tokens_to_ids("Ġhouse")],
                       torch.from_numpy(vec["house"]))
    with pytest.raises(ValueError, match="side='decoder' needs an encoder-decoder"):
        load_embeddings_for_side(model, tok, folder, side="decoder")
