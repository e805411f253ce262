"""Issue 9, loading: a broken or mismatched folder fails with an error naming the file and the problem, and weights
load only from safetensors. `hf_seq.hub.loading.load_checked` does the checking; the first test records why it is needed
(what plain `from_pretrained` does with the same folders in transformers 5.24)."""

import json
import shutil

import pytest
import torch
from reliability_common import MODELS, build, good_inputs, main_output, recurrent_config, transformer_config
from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

import hf_seq  # noqa: F401
from hf_seq import LSTMConfig, LSTMForCausalLM, TransformerForCausalLM
from hf_seq.hub.loading import CheckpointError, load_checked
from hf_seq.tokenization import build_word_level_tokenizer


@pytest.fixture
def lm_folder(tmp_path):
    text = ["the time traveller was expounding a recondite matter to us"]
    tok = build_word_level_tokenizer(text)
    torch.manual_seed(0)
    model = LSTMForCausalLM(recurrent_config(LSTMConfig, vocab_size=len(tok)))
    folder = tmp_path / "lm"
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder, model, tok


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_loads_checked_and_identical(name, tmp_path):
    model = build(name)
    model.save_pretrained(tmp_path)
    cls = MODELS[name][1]
    loaded = load_checked(tmp_path, cls).eval()
    inputs = good_inputs(name)
    with torch.no_grad():
        torch.manual_seed(0)
        a = main_output(model(**inputs))
        torch.manual_seed(0)
        b = main_output(loaded(**inputs))
    torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_plain_from_pretrained_is_not_enough(lm_folder, tmp_path):
    """The behaviours load_checked exists for (if transformers changes them, this test says so)."""
    folder, model, _ = lm_folder
    other = tmp_path / "transformer"
    TransformerForCausalLM(transformer_config()).save_pretrained(other)
    # another family's folder loads into a concrete class, with fresh random weights
    wrong = LSTMForCausalLM.from_pretrained(other)
    assert isinstance(wrong, LSTMForCausalLM)
    # a truncated safetensors file: the error does not say which file
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(Exception) as info:
        AutoModelForCausalLM.from_pretrained(folder)
    assert "model.safetensors" not in str(info.value)


def test_truncated_safetensors_names_the_file(lm_folder):
    folder, _, _ = lm_folder
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) - 100])
    with pytest.raises(CheckpointError, match=rf"{weights}.*truncated"):
        load_checked(folder, AutoModelForCausalLM)
    weights.write_bytes(data[:5])
    with pytest.raises(CheckpointError, match=rf"{weights}.*truncated"):
        load_checked(folder, AutoModelForCausalLM)


def test_corrupted_safetensors_header_names_the_file(lm_folder):
    folder, _, _ = lm_folder
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[12:20] = b"\xff" * 8
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=rf"{weights}.*corrupted safetensors header"):
        load_checked(folder, AutoModelForCausalLM)


def test_config_of_another_family_is_refused(lm_folder, tmp_path):
    folder, _, _ = lm_folder
    other = tmp_path / "transformer"
    TransformerForCausalLM(transformer_config()).save_pretrained(other)
    with pytest.raises(CheckpointError, match=r"config.json.*'hf_seq_transformer\w*'.*LSTMForCausalLM.*'hf_seq_lstm'"):
        load_checked(other, LSTMForCausalLM)
    with pytest.raises(CheckpointError, match=r"config.json.*'hf_seq_lstm'.*AutoModelForSeq2SeqLM"):
        load_checked(folder, AutoModelForSeq2SeqLM)


def test_config_of_another_version_is_refused(lm_folder):
    folder, _, _ = lm_folder
    path = folder / "config.json"
    raw = json.loads(path.read_text())
    # a model type this version does not know
    path.write_text(json.dumps(dict(raw, model_type="hf_seq_lstm_v2")))
    with pytest.raises(CheckpointError, match=r"config.json.*'hf_seq_lstm_v2'.*not a registered model type"):
        load_checked(folder, AutoModelForCausalLM)
    # fields this version does not define (a renamed option)
    path.write_text(json.dumps(dict(raw, recurrent_dropout=0.25)))
    with pytest.raises(CheckpointError, match=r"config.json.*recurrent_dropout.*LSTMConfig"):
        load_checked(folder, AutoModelForCausalLM)
    assert isinstance(load_checked(folder, AutoModelForCausalLM, strict_config=False), LSTMForCausalLM)
    # the same fields with other sizes than the stored tensors
    path.write_text(json.dumps(dict(raw, hidden_size=24, embedding_size=24)))
    with pytest.raises(CheckpointError, match=r"model.safetensors.*shapes do not match.*config.json"):
        load_checked(folder, AutoModelForCausalLM)
    # a value the config class refuses
    path.write_text(json.dumps(dict(raw, num_hidden_layers=0)))
    with pytest.raises(CheckpointError, match=r"config.json.*num_hidden_layers.*0"):
        load_checked(folder, AutoModelForCausalLM)
    path.write_text(json.dumps(raw)[:40])
    with pytest.raises(CheckpointError, match=r"config.json.*not valid JSON"):
        load_checked(folder, AutoModelForCausalLM)


def test_weights_missing_for_the_config_are_refused(lm_folder, tmp_path):
    folder, _, _ = lm_folder
    from safetensors.torch import load_file, save_file

    tensors = load_file(folder / "model.safetensors")
    dropped = sorted(tensors)[0]
    del tensors[dropped]
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match=rf"missing keys.*{dropped}"):
        load_checked(folder, AutoModelForCausalLM)


def test_tokenizer_that_does_not_match_the_embedding_is_refused(lm_folder, tmp_path):
    folder, model, tok = lm_folder
    model, loaded_tok = load_checked(folder, AutoModelForCausalLM, with_tokenizer=True)
    assert len(loaded_tok) == len(tok)
    bigger = build_word_level_tokenizer(["a completely different and much larger vocabulary " + " ".join(
        f"word{i}" for i in range(60))])
    bigger.save_pretrained(folder)
    with pytest.raises(CheckpointError, match=rf"tokenizer.json.*{len(bigger)} tokens.*{len(tok)} rows"):
        load_checked(folder, AutoModelForCausalLM)


def test_only_safetensors_weights_are_loaded(lm_folder):
    folder, model, _ = lm_folder
    (folder / "model.safetensors").unlink()
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match=r"pytorch_model.bin.*pickled weights are not loaded"):
        load_checked(folder, AutoModelForCausalLM)
    shutil.rmtree(folder)
    with pytest.raises(FileNotFoundError, match=str(folder)):
        load_checked(folder, AutoModelForCausalLM)
