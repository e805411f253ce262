"""Checkpoint averaging (Vaswani et al. 2017 §6.1): `hf_seq.training.checkpointing.average_checkpoints` /
`save_averaged_checkpoints` and `hf-seq average`."""

import os
import shutil

import pytest
import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

import hf_seq  # noqa: F401  (registers the Auto classes)
from hf_seq.cli import main
from hf_seq.models.recurrent import LSTMConfig, LSTMForCausalLM
from hf_seq.models.transformer import TransformerConfig, TransformerForConditionalGeneration
from hf_seq.tokenization import build_word_level_tokenizer
from hf_seq.training.checkpointing import average_checkpoints, save_averaged_checkpoints


def tiny_transformer(seed: int, vocab_size: int = 30) -> TransformerForConditionalGeneration:
    torch.manual_seed(seed)
    config = TransformerConfig(vocab_size=vocab_size, d_model=16, d_ff=32, num_heads=2, encoder_layers=1, decoder_layers=1,
                               max_position_embeddings=32, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                               decoder_start_token_id=1)
    return TransformerForConditionalGeneration(config).eval()


@pytest.fixture
def run_folder(tmp_path):
    """A run folder as the translation scripts leave it: model/ (with a tokenizer) and three checkpoint-* folders."""
    run = tmp_path / "run"
    tokenizer = build_word_level_tokenizer(["a b c d e"], min_frequency=1)
    final = tiny_transformer(0)
    final.save_pretrained(run / "model")
    tokenizer.save_pretrained(run / "model")
    for step, seed in ((10, 1), (20, 2), (30, 3)):
        tiny_transformer(seed).save_pretrained(run / f"checkpoint-{step}")
    return run


def test_average_is_the_parameter_mean_and_keeps_ties(run_folder):
    checkpoints = [run_folder / f"checkpoint-{s}" for s in (10, 20, 30)]
    averaged = average_checkpoints(run_folder / "model", checkpoints)
    states = [TransformerForConditionalGeneration.from_pretrained(c).state_dict() for c in checkpoints]
    for name, value in averaged.state_dict().items():
        expected = (states[0][name].double() + states[1][name].double() + states[2][name].double()) / 3
        torch.testing.assert_close(value, expected.float(), rtol=0, atol=1e-7, msg=name)
    assert not torch.equal(averaged.state_dict()["lm_head.weight"], states[0]["lm_head.weight"])
    # shared source/target/output embeddings stay one tensor
    assert averaged.get_output_embeddings().weight.data_ptr() == averaged.get_input_embeddings().weight.data_ptr()


def test_saved_average_loads_like_the_original_folder(run_folder, tmp_path):
    out = save_averaged_checkpoints(run_folder / "model", [run_folder / "checkpoint-20", run_folder / "checkpoint-30"],
                                    tmp_path / "avg")
    reloaded = AutoModelForSeq2SeqLM.from_pretrained(out)
    direct = average_checkpoints(run_folder / "model", [run_folder / "checkpoint-20", run_folder / "checkpoint-30"])
    for name, value in direct.state_dict().items():
        assert torch.equal(reloaded.state_dict()[name], value), name
    assert AutoTokenizer.from_pretrained(out).get_vocab() == AutoTokenizer.from_pretrained(run_folder / "model").get_vocab()
    ids = torch.tensor([[3, 4, 5, 2]])
    assert torch.equal(reloaded.generate(ids, max_new_tokens=5, do_sample=False),
                       direct.generate(ids, max_new_tokens=5, do_sample=False))


def test_cli_averages_the_newest_checkpoints(run_folder, tmp_path, capsys):
    assert main(["average", str(run_folder), "--last", "2", "--output-dir", str(tmp_path / "avg")]) == 0
    assert "checkpoint-20, checkpoint-30" in capsys.readouterr().out
    expected = average_checkpoints(run_folder / "model", [run_folder / "checkpoint-20", run_folder / "checkpoint-30"])
    got = AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "avg")
    for name, value in expected.state_dict().items():
        assert torch.equal(got.state_dict()[name], value), name
    # a run still training (no model/ yet): the newest checkpoint is the template, without its training state
    shutil.rmtree(run_folder / "model")
    for name in ("optimizer.pt", "trainer_state.json", "rng_state.pth"):
        (run_folder / "checkpoint-30" / name).write_bytes(b"state")
    assert main(["average", str(run_folder), "--last", "3", "--output-dir", str(tmp_path / "running")]) == 0
    expected = average_checkpoints(run_folder / "checkpoint-30", [run_folder / f"checkpoint-{s}" for s in (10, 20, 30)])
    got = AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "running")
    assert not {"optimizer.pt", "trainer_state.json", "rng_state.pth"} & set(os.listdir(tmp_path / "running"))
    for name, value in expected.state_dict().items():
        assert torch.equal(got.state_dict()[name], value), name
    assert main(["average", str(run_folder), "--last", "4", "--output-dir", str(tmp_path / "x")]) == 2
    assert "has 3 checkpoint folders with complete weights" in capsys.readouterr().err


def test_errors_name_the_folder(run_folder, tmp_path):
    with pytest.raises(ValueError, match="at least one checkpoint"):
        average_checkpoints(run_folder / "model", [])
    empty = tmp_path / "empty"
    os.makedirs(empty)
    with pytest.raises(ValueError, match="has no model.safetensors"):
        average_checkpoints(run_folder / "model", [empty])
    lstm = LSTMForCausalLM(LSTMConfig(vocab_size=30, hidden_size=8, embedding_size=8))
    lstm.save_pretrained(tmp_path / "lstm")
    with pytest.raises(ValueError, match="not a checkpoint of"):
        average_checkpoints(run_folder / "model", [tmp_path / "lstm"])
    tiny_transformer(0, vocab_size=31).save_pretrained(tmp_path / "bigger")
    with pytest.raises(ValueError, match=r"has shape \(31, 16\)"):
        average_checkpoints(run_folder / "model", [tmp_path / "bigger"])
    with pytest.raises(ValueError, match="must differ from model_dir"):
        save_averaged_checkpoints(run_folder / "model", [run_folder / "checkpoint-10"], run_folder / "model")
