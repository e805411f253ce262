"""word2vec models against the conventions of a native transformers model (issue 19): the standard config names and
strict keywords. The shared conventions checks run on TestWord2VecShared, and the rest of word2vec (trainer, formats,
pipelines on a trained model) is tested, in test_word2vec.py."""

import numpy as np
import pytest
import torch
from transformers import AutoConfig

import hf_seq  # noqa: F401  (registers the Auto classes)
from hf_seq.models.word2vec import Word2VecConfig, Word2VecForMaskedLM, Word2VecForPreTraining

VOCAB = 40
COUNTS = [0] * 5 + [int(c) for c in np.random.default_rng(0).integers(1, 60, VOCAB - 5)]


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
