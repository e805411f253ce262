"""Tiny models of every hf-seq family, shared by the tests/test_reliability_*.py modules (issue 9).

One entry per model class: how to build it from a tiny config and which inputs it takes. Kept to public constructors
so the reliability tests exercise exactly what users call.
"""

import torch

import hf_seq  # noqa: F401  (registers the Auto classes)
from hf_seq.models import recurrent, seq2seq, transformer, word2vec

VOCAB = 40
MAX_POSITIONS = 32
NUM_LABELS = 3


def recurrent_config(cls=recurrent.LSTMConfig, **kw):
    base = dict(vocab_size=VOCAB, hidden_size=16, embedding_size=16, num_hidden_layers=1, embedding_dropout=0.0,
                hidden_dropout=0.0, output_dropout=0.0, initializer_range=0.3)
    base.update(kw)
    return cls(**base)


def seq2seq_config(**kw):
    base = dict(vocab_size=VOCAB, hidden_size=16, encoder_embedding_size=8, decoder_embedding_size=8, attention_size=12,
                dropout=0.0)
    base.update(kw)
    return seq2seq.RNNSeq2SeqConfig(**base)


def transformer_config(**kw):
    base = dict(vocab_size=VOCAB, d_model=16, d_ff=32, num_heads=2, encoder_layers=1, decoder_layers=1,
                max_position_embeddings=MAX_POSITIONS, dropout=0.0)
    base.update(kw)
    return transformer.TransformerConfig(**base)


def word2vec_config(**kw):
    counts = [0, 0, 0, 0] + [100 - i for i in range(VOCAB - 4)]
    base = dict(vocab_size=VOCAB, vector_size=8, word_counts=counts, window=2, negative=3, min_count=1)
    base.update(kw)
    return word2vec.Word2VecConfig(**base)


# name -> (family, model class, config factory, input kind)
#   input kind: "lm" (input_ids [+ labels of the same shape]), "seq2seq" (source ids + labels), "seqcls" (labels
#   (B,)), "tokcls" (labels (B, T)), "w2v_pair" (input_ids [B] + labels [B]), "w2v_mlm" (input_ids [B, T]),
#   "base" (input_ids only).
MODELS = {
    "LSTMForCausalLM": ("recurrent", recurrent.LSTMForCausalLM, lambda: recurrent_config(recurrent.LSTMConfig), "lm"),
    "GRUForCausalLM": ("recurrent", recurrent.GRUForCausalLM, lambda: recurrent_config(recurrent.GRUConfig), "lm"),
    "RNNForCausalLM": ("recurrent", recurrent.RNNForCausalLM, lambda: recurrent_config(recurrent.RNNConfig), "lm"),
    "LSTMModel": (
        "recurrent", recurrent.LSTMModel, lambda: recurrent_config(recurrent.LSTMConfig, bidirectional=True), "base",
    ),
    "GRUModel": ("recurrent", recurrent.GRUModel, lambda: recurrent_config(recurrent.GRUConfig), "base"),
    "RNNModel": ("recurrent", recurrent.RNNModel, lambda: recurrent_config(recurrent.RNNConfig), "base"),
    "LSTMForSequenceClassification": (
        "recurrent-classification", recurrent.LSTMForSequenceClassification,
        lambda: recurrent_config(recurrent.LSTMConfig, bidirectional=True, num_labels=NUM_LABELS), "seqcls",
    ),
    "GRUForSequenceClassification": (
        "recurrent-classification", recurrent.GRUForSequenceClassification,
        lambda: recurrent_config(recurrent.GRUConfig, num_labels=NUM_LABELS, classifier_pooling="mean"), "seqcls",
    ),
    "LSTMForTokenClassification": (
        "recurrent-classification", recurrent.LSTMForTokenClassification,
        lambda: recurrent_config(recurrent.LSTMConfig, bidirectional=True, num_labels=NUM_LABELS), "tokcls",
    ),
    "GRUForTokenClassification": (
        "recurrent-classification", recurrent.GRUForTokenClassification,
        lambda: recurrent_config(recurrent.GRUConfig, num_labels=NUM_LABELS), "tokcls",
    ),
    "RNNSeq2Seq(bahdanau)": (
        "seq2seq", seq2seq.RNNSeq2SeqForConditionalGeneration, lambda: seq2seq_config(attention="bahdanau"),
        "seq2seq",
    ),
    "RNNSeq2Seq(luong-lstm)": (
        "seq2seq", seq2seq.RNNSeq2SeqForConditionalGeneration,
        lambda: seq2seq_config(attention="luong", cell_type="lstm"), "seq2seq",
    ),
    "RNNSeq2Seq(none)": (
        "seq2seq", seq2seq.RNNSeq2SeqForConditionalGeneration, lambda: seq2seq_config(attention="none"), "seq2seq",
    ),
    "RNNSeq2SeqModel": ("seq2seq", seq2seq.RNNSeq2SeqModel, lambda: seq2seq_config(), "seq2seq_base"),
    "TransformerForConditionalGeneration": (
        "transformer", transformer.TransformerForConditionalGeneration, lambda: transformer_config(), "seq2seq",
    ),
    "TransformerForCausalLM": ("transformer", transformer.TransformerForCausalLM, lambda: transformer_config(), "lm"),
    "TransformerForCausalLM(learned-pos)": (
        "transformer", transformer.TransformerForCausalLM,
        lambda: transformer_config(position_embedding_type="learned"), "lm",
    ),
    "Word2VecModel": ("word2vec", word2vec.Word2VecModel, lambda: word2vec_config(), "base"),
    "Word2VecForPreTraining(skipgram-ns)": (
        "word2vec", word2vec.Word2VecForPreTraining, lambda: word2vec_config(), "w2v_pair",
    ),
    "Word2VecForPreTraining(cbow-hs)": (
        "word2vec", word2vec.Word2VecForPreTraining,
        lambda: word2vec_config(architecture="cbow", objective="hierarchical_softmax"), "w2v_cbow",
    ),
    "Word2VecForMaskedLM": (
        "word2vec", word2vec.Word2VecForMaskedLM, lambda: word2vec_config(mask_token_id=4), "w2v_mlm",
    ),
}


def build(name, seed=0):
    _, cls, make_config, _ = MODELS[name]
    torch.manual_seed(seed)
    return cls(make_config()).eval()


def good_inputs(name, batch=2, length=5, seed=0):
    """Valid inputs for model `name` (with labels when its head takes them)."""
    g = torch.Generator().manual_seed(seed)
    kind = MODELS[name][3]
    ids = torch.randint(5, VOCAB, (batch, length), generator=g)
    mask = torch.ones_like(ids)
    if kind == "lm":
        return {"input_ids": ids, "attention_mask": mask, "labels": ids.clone()}
    if kind == "base":
        return {"input_ids": ids, "attention_mask": mask}
    if kind == "seqcls":
        return {"input_ids": ids, "attention_mask": mask, "labels": torch.randint(0, NUM_LABELS, (batch,), generator=g)}
    if kind == "tokcls":
        return {"input_ids": ids, "attention_mask": mask,
                "labels": torch.randint(0, NUM_LABELS, (batch, length), generator=g)}
    if kind == "seq2seq":
        return {"input_ids": ids, "attention_mask": mask,
                "labels": torch.randint(5, VOCAB, (batch, length - 1), generator=g)}
    if kind == "seq2seq_base":
        return {"input_ids": ids, "attention_mask": mask,
                "decoder_input_ids": torch.randint(5, VOCAB, (batch, length - 1), generator=g)}
    if kind == "w2v_pair":
        return {"input_ids": ids[:, 0], "labels": ids[:, 1]}
    if kind == "w2v_cbow":
        return {"input_ids": ids[:, :4], "attention_mask": mask[:, :4], "labels": ids[:, 4]}
    if kind == "w2v_mlm":
        return {"input_ids": ids, "attention_mask": mask, "labels": ids.clone()}
    raise KeyError(kind)


def main_output(out):
    """The tensor a model's caller reads: logits for heads, last_hidden_state for base models."""
    for key in ("logits", "last_hidden_state", "hidden_states"):
        value = out.get(key) if hasattr(out, "get") else getattr(out, key, None)
        if isinstance(value, torch.Tensor):
            return value
    raise AssertionError(f"no logits / last_hidden_state in {type(out).__name__}")
