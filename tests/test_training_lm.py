"""The LM train -> evaluate -> generate -> save path, the stream layout for stateful BPTT, and perplexity."""

import json
import math
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import run_without_hf_seq
from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments, default_data_collator

import hf_seq  # noqa: F401
from hf_seq.data import contiguous_stream_blocks, group_into_blocks, load_text_splits
from hf_seq.evaluation import evaluate_perplexity
from hf_seq.models.recurrent import GRUConfig, GRUForCausalLM, LSTMConfig, LSTMForCausalLM
from hf_seq.tokenization import build_word_level_tokenizer
from hf_seq.training.experiment import ConfigError, list_configs, load_experiment, run_experiment
from hf_seq.training.trainer import EpochDecayCallback, StatefulLMTrainer

ROOT = os.path.join(os.path.dirname(__file__), "..")


def train(config, tmp_path, overrides=(), **kw):
    """Run an experiment (a shipped name or a file) at smoke size into tmp_path/run; returns (results, folder)."""
    out = tmp_path / "run"
    return run_experiment(load_experiment(str(config), overrides, smoke=True, output_dir=str(out), **kw)), out


def parse(config):
    return load_experiment(str(config))


def test_contiguous_stream_blocks_continue_row_by_row():
    tokens = np.arange(1000)
    ds = contiguous_stream_blocks(tokens, batch_size=4, bptt=5)
    x, y = np.array(ds["input_ids"]), np.array(ds["target_ids"])
    assert (y == x + 1).all()  # targets are the next token
    for k in range(len(x) // 4 - 1):
        for b in range(4):  # row b of batch k+1 continues row b of batch k
            assert x[(k + 1) * 4 + b][0] == x[k * 4 + b][-1] + 1


def test_group_into_blocks_and_embedded_corpus_splits():
    raw = load_text_splits()  # embedded Time Machine
    assert set(raw) == {"train", "validation", "test"} and len(raw["train"]) > 10 * len(raw["test"])
    blocks = group_into_blocks(np.arange(103), 10)
    assert len(blocks) == 10 and blocks[3]["input_ids"] == list(range(30, 40)) == blocks[3]["labels"]
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        load_text_splits(train_files=["nope.txt"])


def test_perplexity_is_exp_of_token_weighted_nll():
    torch.manual_seed(0)
    model = GRUForCausalLM(GRUConfig(vocab_size=30, hidden_size=8, output_dropout=0.0)).eval()
    tokens = np.random.default_rng(0).integers(0, 30, 201)
    got = evaluate_perplexity(model, tokens, batch_size=1, bptt=7, progress=False)
    with torch.no_grad():  # one forward over the whole stream predicts every token after the first
        logits = model(torch.as_tensor(tokens[None, :-1])).logits[0]
    nll = F.cross_entropy(logits, torch.as_tensor(tokens[1:]))
    assert got["tokens"] == 200
    assert math.isclose(got["perplexity"], math.exp(nll.item()), rel_tol=1e-5)
    # no autograd graph: the state is carried across windows, so a graph would grow with the whole stream
    grad_modes = []
    hook = model.register_forward_hook(lambda *_: grad_modes.append(torch.is_grad_enabled()))
    evaluate_perplexity(model, tokens, batch_size=1, bptt=7, progress=False)
    hook.remove()
    assert grad_modes and not any(grad_modes)


def _lines():
    # five fixed sentences in random order: learnable structure, so the loss has far to fall
    rng = np.random.default_rng(0)
    sentences = ["the time traveller was expounding a recondite matter to us",
                 "his grey eyes shone and twinkled", "and his usually pale face was flushed and animated",
                 "the fire burned brightly", "there was that luxurious after dinner atmosphere"]
    return [sentences[i] for i in rng.integers(0, 5, 200)]


@pytest.mark.parametrize("stateful", [False, True])
def test_a_few_trainer_steps_lower_the_loss(tmp_path, stateful):
    tok = build_word_level_tokenizer(_lines())
    tokens = np.concatenate([np.array(tok(line)["input_ids"] + [tok.eos_token_id]) for line in _lines()])
    torch.manual_seed(0)
    model = LSTMForCausalLM(LSTMConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1,
                                       embedding_dropout=0.0, hidden_dropout=0.0, output_dropout=0.0))
    before = evaluate_perplexity(model, tokens, batch_size=4, bptt=10, progress=False)["perplexity"]
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=40, learning_rate=3e-2, per_device_train_batch_size=8,
                             report_to="none", save_strategy="no", logging_steps=10, use_cpu=True,
                             label_names=["target_ids"] if stateful else None)
    if stateful:
        ds, cls = contiguous_stream_blocks(tokens, 8, 10), StatefulLMTrainer
    else:
        ds, cls = group_into_blocks(tokens, 10), Trainer
    trainer = cls(model=model, args=args, train_dataset=ds, data_collator=default_data_collator)
    trainer.train()
    after = evaluate_perplexity(model, tokens, batch_size=4, bptt=10, progress=False)["perplexity"]
    assert after < 0.7 * before, (before, after)
    if stateful:
        assert trainer._carried is not None and not trainer._carried.states[0][0].requires_grad


def test_train_lm_smoke_writes_a_hub_ready_folder(tmp_path):
    results, out = train(os.path.join(ROOT, "configs", "lstm_timemachine.yaml"), tmp_path)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "generation_config.json",
                 "modeling_recurrent.py", "configuration_recurrent.py", "eval_results.json", "sample.txt", "README.md"):
        assert (out / name).exists(), name
    saved = json.loads((out / "eval_results.json").read_text())
    assert saved["validation_perplexity"] == results["validation_perplexity"] > 1
    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    assert model.get_input_embeddings().weight.shape[0] == len(tok)
    assert json.loads((out / "config.json").read_text())["auto_map"]["AutoModelForCausalLM"].endswith("LSTMForCausalLM")

    bad = tmp_path / "bad.yaml"
    bad.write_text("task: language-modeling\nmodel:\n  architecture: lstm\n  hiden_size: 3\n")
    with pytest.raises(ConfigError, match=r"bad.yaml.*hiden_size.*section 'model'.*Allowed keys:.*hidden_size"):
        parse(bad)
    bad.write_text("task: language-modeling\nmodel:\n  architecture: transformerz\n")
    with pytest.raises(ConfigError, match="transformerz"):
        parse(bad)


def test_train_lm_transformer_decoder_smoke(tmp_path, capsys):
    """`architecture: transformer` trains the decoder-only Transformer through the same script, evaluates it with a
    sliding window, and saves a folder that reloads (locally and by its remote code) to the same outputs."""
    config = tmp_path / "tf.yaml"
    config.write_text(
        "task: language-modeling\nmodel:\n  architecture: transformer\n  d_model: 16\n  num_heads: 2\n"
        "data:\n  block_size: 16\n  eval_stride: 8\n"
        f"training:\n  output_dir: {tmp_path / 'unused'}\n  seed: 0\n"
    )
    results, out = train(config, tmp_path)
    assert results["architecture"] == "transformer"
    assert results["evaluation"] == "sliding window of 16 tokens, stride 8"
    assert 1 < results["test_perplexity"] < float("inf")  # 3 smoke steps: only finiteness is a fact here
    saved = json.loads((out / "config.json").read_text())
    assert saved["model_type"] == "hf_seq_transformer_lm" and saved["is_encoder_decoder"] is False
    assert saved["auto_map"]["AutoModelForCausalLM"].endswith("TransformerForCausalLM")
    assert (out / "README.md").read_text().count("causal language model") >= 1
    # the saved weights give the reported perplexity again
    from hf_seq.evaluation import windowed_perplexity

    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    ids = tok("the time traveller", add_special_tokens=False, return_tensors="pt").input_ids
    with torch.no_grad():
        local = model(ids).logits
    remote = run_without_hf_seq(
        f"""
        import json, torch
        from transformers import AutoModelForCausalLM
        model = AutoModelForCausalLM.from_pretrained({str(out)!r}, trust_remote_code=True)
        with torch.no_grad():
            print(json.dumps(model(torch.tensor({ids.tolist()!r})).logits.tolist()))
        """,
        tmp_path,
    )
    torch.testing.assert_close(torch.tensor(remote), local, atol=1e-5, rtol=0)
    # `hf-seq evaluate` scores a text file the same way (a sliding window: the model has no state to carry)
    from hf_seq.cli import main as cli

    text = tmp_path / "eval.txt"
    text.write_text("the time traveller\nwas here\n" * 20)
    capsys.readouterr()
    assert cli(["evaluate", str(out), str(text), "--quiet", "--block-size", "16", "--batch-size", "4"]) == 0
    reported = json.loads(capsys.readouterr().out)
    ids = []
    for line in text.read_text().splitlines():
        ids += tok(line, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    direct = windowed_perplexity(model, np.asarray(ids), window=16, stride=8, progress=False)
    assert np.isfinite(direct["perplexity"]) and direct["tokens"] == len(ids) - 1
    assert math.isclose(reported["perplexity"], direct["perplexity"], rel_tol=1e-6)

    bad = tmp_path / "bad.yaml"
    bad.write_text("task: language-modeling\nmodel:\n  architecture: transformer\n  bidirectional: true\n")
    with pytest.raises(ConfigError, match=r"bidirectional.*section 'model'"):  # a recurrent key
        parse(bad)
    bad.write_text("task: language-modeling\nmodel:\n  architecture: transformer\ndata:\n  stateful_bptt: true\n")
    with pytest.raises(ConfigError, match="stateful_bptt"):
        parse(bad)


@pytest.mark.parametrize("name", [n for n, _ in list_configs() if n.startswith(("lstm_", "gru_", "rnn_", "transformer_lm_"))])
def test_every_lm_config_validates(name):
    """Every shipped LM experiment passes the whole validation (model config built, generation settings checked)
    without reading any data."""
    from hf_seq.training.experiment import data_root, find_experiment

    if data_root() is None and "$HF_SEQ_DATA" in find_experiment(name).read_text():
        # a clone without ../shared/data: the only refusal is the data folder, named
        with pytest.raises(ConfigError, match="HF_SEQ_DATA"):
            load_experiment(name)
        return
    exp = load_experiment(name)
    assert exp.task == "language-modeling"
    assert exp.training.max_grad_norm > 0  # clipping stays on


def _decay_trainer(tmp_path, tokens, **kw):
    torch.manual_seed(0)
    model = LSTMForCausalLM(LSTMConfig(vocab_size=int(tokens.max()) + 1, hidden_size=16, num_hidden_layers=1))
    args = TrainingArguments(output_dir=str(tmp_path), num_train_epochs=4, learning_rate=1.0, optim="sgd",
                             lr_scheduler_type="constant", per_device_train_batch_size=4, report_to="none",
                             save_strategy="epoch", logging_steps=1, use_cpu=True, label_names=["target_ids"],
                             seed=0, **kw)
    return StatefulLMTrainer(model=model, args=args, train_dataset=contiguous_stream_blocks(tokens, 4, 10),
                             data_collator=default_data_collator, callbacks=[EpochDecayCallback(0.5, 2)])


def test_epoch_decay_is_zaremba_schedule_and_resumes_exactly(tmp_path):
    tokens = np.random.default_rng(0).integers(0, 30, 4 * 10 * 3 + 1)  # 3 steps per epoch
    full = _decay_trainer(tmp_path / "full", tokens)
    full.train()
    rates = [(round(e["epoch"], 3), e["learning_rate"]) for e in full.state.log_history if "learning_rate" in e]
    by_epoch = {}
    for epoch, lr in rates:
        by_epoch.setdefault(math.ceil(epoch) - 1, set()).add(lr)
    assert by_epoch == {0: {1.0}, 1: {1.0}, 2: {0.5}, 3: {0.25}}  # full rate for 2 epochs, then halved per epoch
    resumed = _decay_trainer(tmp_path / "resumed", tokens)
    resumed.train(resume_from_checkpoint=str(tmp_path / "full" / "checkpoint-6"))  # after epoch 2
    again = [(round(e["epoch"], 3), e["learning_rate"]) for e in resumed.state.log_history if "learning_rate" in e]
    assert again == rates
    for a, b in zip(full.model.parameters(), resumed.model.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_epoch_decay_needs_a_constant_scheduler(tmp_path):
    with pytest.raises(ValueError, match="decay must be in"):
        EpochDecayCallback(1.5, 2)
    tokens = np.arange(200) % 30
    trainer = _decay_trainer(tmp_path, tokens)
    trainer.args.lr_scheduler_type = "linear"
    with pytest.raises(ValueError, match="lr_scheduler_type='constant'"):
        trainer.train()
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: language-modeling\nmodel:\n  architecture: lstm\ndata:\n  lr_decay: 0.5\n"
                   "training:\n  output_dir: x\n")
    with pytest.raises(ConfigError, match="lr_scheduler_type: constant"):
        parse(bad)


def test_training_clock_decays_the_rate_to_zero_over_the_budget(monkeypatch):
    """decay_lr: after every step the scheduler's rate is scaled by 1 - elapsed/budget (never compounding across
    steps), Trainer logs the scaled rate, training stops at the budget, and a resumed run continues the clock."""
    from transformers import TrainerControl, TrainerState
    from transformers.optimization import get_constant_schedule_with_warmup

    import hf_seq.training.trainer as trainer_module

    now = [1000.0]
    monkeypatch.setattr(trainer_module.time, "time", lambda: now[0])
    param = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD([param], lr=2.0)
    sched = get_constant_schedule_with_warmup(opt, num_warmup_steps=2)
    clock = trainer_module.TrainingClock(minutes=1.0, decay_lr=True)  # 60 s
    state, control = TrainerState(), TrainerControl()
    clock.on_train_begin(None, state, control)
    seen = []
    for _ in range(5):  # 15 s per step
        opt.step()
        sched.step()
        now[0] += 15.0
        clock.on_step_end(None, state, control, optimizer=opt, lr_scheduler=sched)
        seen.append(opt.param_groups[0]["lr"])
        assert sched.get_last_lr() == [seen[-1]]  # what Trainer logs
    # warm-up gives 1.0 then 2.0 (constant); the clock scales by 1 - 15k/60 at k = 1..4, then 0
    assert seen == pytest.approx([1.0 * 0.75, 2.0 * 0.5, 2.0 * 0.25, 0.0, 0.0])
    assert control.should_training_stop  # 75 s > 60 s
    # resume: the clock restarts from the last stamp in the log history
    resumed = trainer_module.TrainingClock(minutes=1.0, decay_lr=True)
    resumed.on_train_begin(None, TrainerState(log_history=[{"loss": 1.0, "elapsed_seconds": 30.0}]), TrainerControl())
    now[0] += 6.0
    resumed.on_step_end(None, TrainerState(), TrainerControl(), optimizer=opt, lr_scheduler=sched)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0)  # sched's last lr was 0 (set above); factor 1 - 36/60
    opt.param_groups[0]["lr"] = 2.0
    sched.step()
    resumed.on_step_end(None, TrainerState(), TrainerControl(), optimizer=opt, lr_scheduler=sched)
    assert opt.param_groups[0]["lr"] == pytest.approx(2.0 * (1 - 36 / 60))
    with pytest.raises(ValueError, match="needs a budget"):
        trainer_module.TrainingClock(decay_lr=True)


def test_stateful_trainer_evaluates_with_the_state_carried(tmp_path):
    """The validation loss StatefulLMTrainer logs is Zaremba et al.'s protocol: equal to evaluate_perplexity over the
    same stream (rows continue across batches, the state is carried, every evaluation starts from a zero state)."""
    torch.manual_seed(0)
    model = LSTMForCausalLM(LSTMConfig(vocab_size=40, hidden_size=16, num_hidden_layers=2, embedding_dropout=0.0,
                                       hidden_dropout=0.0, output_dropout=0.0, initializer_range=0.8))  # state matters
    batch, bptt, windows = 4, 6, 5
    tokens = np.random.default_rng(1).integers(0, 40, batch * bptt * windows + 1)
    args = TrainingArguments(output_dir=str(tmp_path), per_device_eval_batch_size=batch, report_to="none",
                             use_cpu=True, label_names=["target_ids"])
    trainer = StatefulLMTrainer(model=model, args=args, eval_dataset=contiguous_stream_blocks(tokens, batch, bptt),
                                data_collator=default_data_collator)
    expected = evaluate_perplexity(model, tokens, batch_size=batch, bptt=bptt, progress=False)
    first, second = trainer.evaluate()["eval_loss"], trainer.evaluate()["eval_loss"]
    assert math.isclose(first, expected["loss"], rel_tol=1e-5) and math.isclose(second, first, rel_tol=1e-6)
    # scoring each window from a zero state (what the trainer did before) gives a different, worse number
    with torch.no_grad():
        x = torch.as_tensor(np.array(contiguous_stream_blocks(tokens, batch, bptt)["input_ids"]))
        y = torch.as_tensor(np.array(contiguous_stream_blocks(tokens, batch, bptt)["target_ids"]))
        stateless = F.cross_entropy(model(input_ids=x).logits.flatten(0, 1), y.flatten()).item()
    assert abs(stateless - first) > 0.01, (stateless, first)


def test_lm_takes_pretrained_word_vectors(tmp_path):
    """`model.word_vectors` initialises the LM's input embedding from a word2vec text file (frozen here, so the
    trained model still holds the file's vectors); the coverage is reported in eval_results.json."""
    rng = np.random.default_rng(0)
    vectors = {w: rng.normal(size=16).round(4) for w in ("the", "time", "traveller", "machine")}
    path = tmp_path / "vectors.txt"
    path.write_text(f"{len(vectors)} 16\n" + "".join(f"{w} {' '.join(map(str, v))}\n" for w, v in vectors.items()))
    results, out = train("lstm_timemachine", tmp_path, overrides=[
        "data.tokenizer=word", f"model.word_vectors={path}", "model.freeze_embeddings=true"])
    assert results["word_vectors"]["found"] == 4 and 0 < results["word_vectors"]["coverage"] < 1
    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    for word, vector in vectors.items():
        row = model.get_input_embeddings().weight[tok.convert_tokens_to_ids(word)]
        torch.testing.assert_close(row, torch.tensor(vector, dtype=torch.float32))
    with pytest.raises(ConfigError, match="word_vectors: .*missing.txt does not exist"):
        load_experiment("lstm_timemachine", [f"model.word_vectors={tmp_path / 'missing.txt'}"])
