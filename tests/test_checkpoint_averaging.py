"""Checkpoint averaging (Vaswani et al. 2017 §6.1): `hf_seq.training.checkpointing.average_checkpoints` /
`save_averaged_checkpoints` and `hf-seq average`; the output checks and atomic write of issue 20."""

import json
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
from hf_seq.training.checkpointing import average_checkpoints, newest_checkpoints, save_averaged_checkpoints


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


# --- issue 20: the output folder can destroy neither an input nor another model; the write is atomic ---------------
def _tree(folder):
    return {os.path.relpath(os.path.join(d, f), folder): open(os.path.join(d, f), "rb").read()
            for d, _, files in os.walk(folder) for f in files}


def test_average_refuses_an_input_or_a_foreign_folder_as_output(run_folder, tmp_path):
    checkpoints = [run_folder / "checkpoint-20", run_folder / "checkpoint-30"]
    before = _tree(run_folder)
    with pytest.raises(ValueError, match=r"is the checkpoint .*checkpoint-30.*one of the averaged inputs"):
        save_averaged_checkpoints(run_folder / "model", checkpoints, run_folder / "checkpoint-30")
    with pytest.raises(ValueError, match=r"holds the model_dir .*one of the averaged inputs"):
        save_averaged_checkpoints(run_folder / "model", checkpoints, run_folder)
    with pytest.raises(ValueError, match="named twice"):
        save_averaged_checkpoints(run_folder / "model", checkpoints + [run_folder / "checkpoint-20"], tmp_path / "avg")
    other = tmp_path / "other_model"
    tiny_transformer(7).save_pretrained(other)
    other_files = _tree(other)
    with pytest.raises(ValueError, match=r"not empty and was not written by save_averaged_checkpoints"):
        save_averaged_checkpoints(run_folder / "model", checkpoints, other)
    assert _tree(run_folder) == before and _tree(other) == other_files
    # an empty folder, then a previous average output, are fine
    os.makedirs(tmp_path / "avg")
    save_averaged_checkpoints(run_folder / "model", checkpoints, tmp_path / "avg")
    assert save_averaged_checkpoints(run_folder / "model", checkpoints[:1], tmp_path / "avg") == str(tmp_path / "avg")
    record = json.loads((tmp_path / "avg" / "averaged_checkpoints.json").read_text())
    assert record["checkpoints"] == [str(checkpoints[0])]


def test_a_crash_while_saving_the_average_leaves_the_previous_output(run_folder, tmp_path, monkeypatch):
    out = tmp_path / "avg"
    save_averaged_checkpoints(run_folder / "model", [run_folder / "checkpoint-10"], out)
    before = _tree(out)
    original = TransformerForConditionalGeneration.save_pretrained

    def save_half_then_die(self, folder, *args, **kwargs):
        original(self, folder, *args, **kwargs)
        with open(os.path.join(folder, "model.safetensors"), "r+b") as f:
            f.truncate(100)
        raise OSError("killed while saving")

    monkeypatch.setattr(TransformerForConditionalGeneration, "save_pretrained", save_half_then_die)
    with pytest.raises(OSError, match="killed"):
        save_averaged_checkpoints(run_folder / "model", [run_folder / "checkpoint-20"], out)
    assert _tree(out) == before
    assert [n for n in os.listdir(tmp_path) if n.startswith(".")] == []


def test_newest_checkpoints_validates_last(run_folder):
    assert newest_checkpoints(run_folder, 2) == [str(run_folder / "checkpoint-20"), str(run_folder / "checkpoint-30")]
    for bad in (0, -2, True, 1.5, "2"):
        with pytest.raises(ValueError, match=r"last must be an integer >= 1"):
            newest_checkpoints(run_folder, bad)
    with pytest.raises(ValueError, match="has 3 checkpoint folders with complete weights"):
        newest_checkpoints(run_folder, 4)


def test_a_config_that_fails_its_own_validation_is_a_value_error(tmp_path):
    from huggingface_hub.errors import StrictDataclassError

    lstm = LSTMForCausalLM(LSTMConfig(vocab_size=30, hidden_size=8, embedding_size=8))
    lstm.save_pretrained(tmp_path / "lstm")
    lstm.save_pretrained(tmp_path / "bad")
    config = json.loads((tmp_path / "bad" / "config.json").read_text())
    config["hidden_size"] = "eight"
    (tmp_path / "bad" / "config.json").write_text(json.dumps(config))
    with pytest.raises(StrictDataclassError):  # what escapes from transformers (neither ValueError nor TypeError)
        LSTMConfig.from_pretrained(tmp_path / "bad")
    with pytest.raises(ValueError, match=r"bad.config\.json: invalid config.*hidden_size"):
        average_checkpoints(tmp_path / "lstm", [tmp_path / "bad"])
