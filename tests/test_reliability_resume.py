"""Issues 9 and 20, crash and resume: a run interrupted after a checkpoint and resumed ends with exactly the weights
and the per-step metrics of an uninterrupted run with the same seed; a run SIGKILLed in the middle of saving leaves the
last complete checkpoint, which `hf_seq.training.checkpointing.latest_complete_checkpoint` finds and resumes from.
Stateful truncated BPTT (`StatefulLMTrainer`) included: its carried recurrent state is part of every checkpoint.

Every family, tiny models, CPU, a handful of steps. Dropout is on where the model has it, so the RNG state restored
from the checkpoint matters.
"""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch
from reliability_common import recurrent_config, seq2seq_config, transformer_config
from transformers import (
    DataCollatorForSeq2Seq,
    Seq2SeqTrainer,
    Seq2SeqTrainingArguments,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    default_data_collator,
)
from transformers.trainer_utils import get_last_checkpoint

import hf_seq  # noqa: F401
from hf_seq import LSTMConfig, LSTMForCausalLM, RNNSeq2SeqForConditionalGeneration, TransformerForConditionalGeneration
from hf_seq.data import group_into_blocks
from hf_seq.models.word2vec import Word2VecForPreTraining
from hf_seq.models.word2vec.training_word2vec import (
    Word2VecTrainingArguments,
    prepare_word2vec,
    train_word2vec,
    word2vec_pair_dataset,
)
from hf_seq.tokenization import build_word_level_tokenizer
from hf_seq.training.checkpointing import checkpoint_problems, latest_complete_checkpoint, safetensors_problem

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS, SAVE_EVERY = 6, 3
METRIC_KEYS = ("loss", "grad_norm", "learning_rate", "eval_loss", "epoch", "step")


class Crash(Exception):
    """Stands for the process dying right after a checkpoint was written."""


class CrashAfterSave(TrainerCallback):
    def __init__(self, step):
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise Crash(f"crash after saving step {self.step}")


def _per_step_metrics(log_history):
    # the final summary's `train_loss` / runtimes cover only the resumed segment (Trainer divides by the steps of
    # this session): compared separately below
    return [{k: e[k] for k in METRIC_KEYS if k in e} for e in log_history if "loss" in e or "eval_loss" in e]


def _words():
    rng = np.random.default_rng(0)
    vocab = "the time traveller was expounding a recondite matter to us his grey eyes shone and twinkled".split()
    return [" ".join(rng.choice(vocab, 8)) for _ in range(120)]


def _toy_pairs(n=96, seed=0):
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(12)]
    pairs = []
    for _ in range(n):
        src = list(rng.choice(words, rng.integers(2, 6)))
        pairs.append((" ".join(src), " ".join(w.replace("w", "v") for w in reversed(src))))
    return pairs


# ---------------------------------------------------------------------------------------------------------------------
# one builder per family: (model factory, train dataset, eval dataset, collator, trainer class, args class)
# ---------------------------------------------------------------------------------------------------------------------
def _lm_setup():
    tok = build_word_level_tokenizer(_words())
    tokens = np.concatenate([np.array(tok(line)["input_ids"] + [tok.eos_token_id]) for line in _words()])
    ds = group_into_blocks(tokens, 12)

    def model():
        return LSTMForCausalLM(recurrent_config(LSTMConfig, vocab_size=len(tok), num_hidden_layers=2,
                                                embedding_dropout=0.1, hidden_dropout=0.1, output_dropout=0.1))

    return model, ds, ds.select(range(16)), default_data_collator, Trainer, TrainingArguments


def _seq2seq_datasets():
    from datasets import Dataset

    pairs = _toy_pairs()
    tok = build_word_level_tokenizer([t for p in pairs for t in p])
    src = tok([s for s, _ in pairs])["input_ids"]
    tgt = [ids + [tok.eos_token_id] for ids in tok([t for _, t in pairs])["input_ids"]]
    ds = Dataset.from_dict({"input_ids": src, "labels": tgt})
    return tok, ds


def _rnn_seq2seq_setup():
    tok, ds = _seq2seq_datasets()

    def model():
        return RNNSeq2SeqForConditionalGeneration(seq2seq_config(vocab_size=len(tok), attention="bahdanau",
                                                                 dropout=0.1))

    collator = DataCollatorForSeq2Seq(tok, model=model(), label_pad_token_id=-100)
    return model, ds, ds.select(range(16)), collator, Seq2SeqTrainer, Seq2SeqTrainingArguments


def _transformer_setup():
    tok, ds = _seq2seq_datasets()

    def model():
        return TransformerForConditionalGeneration(transformer_config(vocab_size=len(tok), dropout=0.1))

    collator = DataCollatorForSeq2Seq(tok, model=model(), label_pad_token_id=-100)
    return model, ds, ds.select(range(16)), collator, Seq2SeqTrainer, Seq2SeqTrainingArguments


def _word2vec_setup():
    # the autograd path (Word2VecForPreTraining.forward through Trainer); negative sampling draws its noise words from
    # torch's global RNG, which Trainer restores from rng_state.pth
    _, config, corpus = prepare_word2vec(_words(), min_count=1, vector_size=8, window=2, negative=3)
    ds = word2vec_pair_dataset(corpus, config, seed=1)

    def model():
        return Word2VecForPreTraining(config)

    return model, ds, torch.utils.data.Subset(ds, range(64)), default_data_collator, Trainer, TrainingArguments


SETUPS = {"lstm_lm": _lm_setup, "rnn_seq2seq": _rnn_seq2seq_setup, "transformer": _transformer_setup,
          "word2vec": _word2vec_setup}


def _train(setup, out, crash_at=None, resume=None):
    make_model, train_ds, eval_ds, collator, trainer_cls, args_cls = setup
    torch.manual_seed(0)
    model = make_model()
    args = args_cls(
        output_dir=str(out), max_steps=STEPS, save_steps=SAVE_EVERY, eval_strategy="steps", eval_steps=SAVE_EVERY,
        logging_steps=1, per_device_train_batch_size=8, per_device_eval_batch_size=16, learning_rate=5e-3,
        report_to="none", use_cpu=True, seed=0, disable_tqdm=True, dataloader_num_workers=0,
    )
    trainer = trainer_cls(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                          data_collator=collator, callbacks=[CrashAfterSave(crash_at)] if crash_at else None)
    try:
        trainer.train(resume_from_checkpoint=resume)
    except Crash:
        return None
    return trainer


@pytest.mark.parametrize("family", list(SETUPS))
def test_resumed_run_equals_uninterrupted_run(family, tmp_path):
    setup = SETUPS[family]()
    full = _train(setup, tmp_path / "full")
    assert _train(setup, tmp_path / "crashed", crash_at=SAVE_EVERY) is None
    resume = latest_complete_checkpoint(tmp_path / "crashed")
    assert resume == str(tmp_path / "crashed" / f"checkpoint-{SAVE_EVERY}")
    resumed = _train(setup, tmp_path / "crashed", resume=resume)

    assert resumed.state.global_step == full.state.global_step == STEPS
    full_sd, resumed_sd = full.model.state_dict(), resumed.model.state_dict()
    assert full_sd.keys() == resumed_sd.keys()
    for key in full_sd:
        assert torch.equal(full_sd[key], resumed_sd[key]), f"{family}: {key} differs after resuming"
    assert _per_step_metrics(resumed.state.log_history) == _per_step_metrics(full.state.log_history)
    # Trainer's summary train_loss averages the steps of the current session only
    resumed_losses = [e["loss"] for e in resumed.state.log_history if "loss" in e and e["step"] > SAVE_EVERY]
    summary = resumed.state.log_history[-1]["train_loss"]
    assert summary == pytest.approx(np.mean(resumed_losses), rel=1e-6)


def test_word2vec_trainer_split_epochs_equal_one_run(tmp_path):
    # the fast trainer's own resume contract: epochs 0..1, save_pretrained, reload, epoch 2 == epochs 0..2 at once
    _, config, corpus = prepare_word2vec(_words(), min_count=1, vector_size=8, window=2, negative=3)
    args = Word2VecTrainingArguments(epochs=3, batch_words=64, progress_bar=False, workers=1, seed=3)
    torch.manual_seed(0)
    once = Word2VecForPreTraining(config)
    history = train_word2vec(once, corpus, args)
    torch.manual_seed(0)
    split = Word2VecForPreTraining(config)
    first = train_word2vec(split, corpus, args, first_epoch=0, last_epoch=2)
    split.save_pretrained(tmp_path)
    again = Word2VecForPreTraining.from_pretrained(tmp_path)
    second = train_word2vec(again, corpus, args, first_epoch=2, last_epoch=3)
    for key, value in once.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key
    assert [h["loss"] for h in first + second] == [h["loss"] for h in history]


def _lm_experiment(**data):
    return {
        "task": "language-modeling",
        "model": {"architecture": "gru", "hidden_size": 16, "embedding_size": 16, "num_hidden_layers": 1},
        "data": {"max_train_tokens": 3000, "max_eval_tokens": 400, "block_size": 16, "eval_batch_size": 4, **data},
        "training": {"max_steps": 6, "save_steps": 3, "save_strategy": "steps", "eval_strategy": "no",
                     "logging_steps": 1, "per_device_train_batch_size": 8, "learning_rate": 0.005, "use_cpu": True,
                     "disable_tqdm": True, "seed": 0},
        "generate": {"max_new_tokens": 4},
    }


def test_lm_entry_point_resumes_a_stateful_run_after_a_crash_and_refuses_another_config(tmp_path, monkeypatch):
    """The real entry point (the experiment layer running `hf_seq.training.lm`), with `data.stateful_bptt`: a run
    dies after its first checkpoint, is started again with the same output_dir, resumes by itself (carried state
    included) and ends exactly where an uninterrupted run ends; a run of another configuration in that folder is
    refused, naming the differing key."""
    from safetensors.torch import load_file

    from hf_seq.training.checkpointing import FINGERPRINT, RunMismatchError
    from hf_seq.training.experiment import load_experiment, run_experiment

    def run(out, **data):
        return run_experiment(load_experiment(_lm_experiment(stateful_bptt=True, **data), output_dir=str(out)))

    full = run(tmp_path / "full")
    original = Trainer._save_checkpoint

    def save_then_die(self, *args, **kwargs):
        original(self, *args, **kwargs)
        if self.state.global_step == 3:
            raise Crash("killed after checkpoint-3")

    monkeypatch.setattr(Trainer, "_save_checkpoint", save_then_die)
    with pytest.raises(Crash):
        run(tmp_path / "run")
    monkeypatch.setattr(Trainer, "_save_checkpoint", original)
    assert (tmp_path / "run" / FINGERPRINT).is_file()
    resumed = run(tmp_path / "run")

    a = load_file(tmp_path / "full" / "model.safetensors")
    b = load_file(tmp_path / "run" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    for key in ("validation_loss", "test_loss", "validation_perplexity", "test_perplexity", "epochs", "sample"):
        assert resumed[key] == full[key], key

    # config B in config A's folder: refused before any data is read, naming the key and both values
    with pytest.raises(RunMismatchError, match=r"data\.block_size: 16 there, 12 now.*--overwrite_output_dir"):
        run(tmp_path / "run", block_size=12)


# ---------------------------------------------------------------------------------------------------------------------
# SIGKILL in the middle of saving
# ---------------------------------------------------------------------------------------------------------------------
_KILLED_RUN = """
import os, signal, sys
import numpy as np, torch
from transformers import Trainer, TrainingArguments, default_data_collator
from transformers.utils import logging
from hf_seq.data import group_into_blocks
from hf_seq.models.recurrent import LSTMConfig, LSTMForCausalLM

out, kill_step, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
original = Trainer._save_optimizer_and_scheduler

def save_and_die(self, output_dir):
    if self.state.global_step != kill_step:
        return original(self, output_dir)
    original(self, output_dir)
    path = os.path.join(output_dir, "optimizer.pt")
    if mode == "truncate":  # the kernel got half of the file when the process died
        data = open(path, "rb").read()
        open(path, "wb").write(data[: len(data) // 2])
    os.kill(os.getpid(), signal.SIGKILL)  # before rng_state.pth / trainer_state.json are written

Trainer._save_optimizer_and_scheduler = save_and_die
tokens = np.random.default_rng(0).integers(4, 40, 3000)
torch.manual_seed(0)
model = LSTMForCausalLM(LSTMConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, embedding_dropout=0.1,
                                   hidden_dropout=0.1, output_dropout=0.1))
args = TrainingArguments(output_dir=out, max_steps=9, save_steps=3, logging_steps=1, per_device_train_batch_size=8,
                         learning_rate=5e-3, report_to="none", use_cpu=True, seed=0, disable_tqdm=True)
Trainer(model=model, args=args, train_dataset=group_into_blocks(tokens, 12),
        data_collator=default_data_collator).train()
"""


def _lm_killed_setup():
    tokens = np.random.default_rng(0).integers(4, 40, 3000)
    ds = group_into_blocks(tokens, 12)

    def model():
        return LSTMForCausalLM(LSTMConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, embedding_dropout=0.1,
                                          hidden_dropout=0.1, output_dropout=0.1))

    return model, ds


def _train_lm9(out, resume=None):
    make_model, ds = _lm_killed_setup()
    torch.manual_seed(0)
    args = TrainingArguments(output_dir=str(out), max_steps=9, save_steps=3, logging_steps=1,
                             per_device_train_batch_size=8, learning_rate=5e-3, report_to="none", use_cpu=True,
                             seed=0, disable_tqdm=True)
    trainer = Trainer(model=make_model(), args=args, train_dataset=ds, data_collator=default_data_collator)
    trainer.train(resume_from_checkpoint=resume)
    return trainer


@pytest.mark.parametrize("mode", ["truncate"])
def test_sigkill_while_saving_leaves_last_complete_checkpoint(tmp_path, mode):
    out = tmp_path / "run"
    # the killed run must use this process's thread count: the resumed and the uninterrupted runs below run here,
    # and a different number of BLAS threads changes float rounding
    env = dict(os.environ, OMP_NUM_THREADS=str(torch.get_num_threads()),
               PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", _KILLED_RUN, str(out), "6", mode], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]

    # transformers' own choice is the half-written folder; ours skips it
    assert get_last_checkpoint(str(out)) == str(out / "checkpoint-6")
    problems = checkpoint_problems(out / "checkpoint-6")
    assert any("trainer_state.json: missing" in p for p in problems), problems
    assert any("optimizer.pt" in p and "truncated" in p for p in problems), problems
    assert latest_complete_checkpoint(out) == str(out / "checkpoint-3")
    assert checkpoint_problems(out / "checkpoint-3") == []

    # resuming from it ends exactly where an uninterrupted run ends
    resumed = _train_lm9(out, resume=latest_complete_checkpoint(out))
    full = _train_lm9(tmp_path / "full")
    for key, value in full.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    assert _per_step_metrics(resumed.state.log_history) == _per_step_metrics(full.state.log_history)
    assert latest_complete_checkpoint(out) == str(out / "checkpoint-9")


def test_checkpoint_validation_names_the_broken_file(tmp_path):
    trainer = _train_lm9(tmp_path / "run")
    ck = tmp_path / "run" / "checkpoint-9"
    assert checkpoint_problems(ck) == [] and trainer.state.global_step == 9
    weights = ck / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) - 10])
    assert "truncated" in safetensors_problem(weights) and str(weights) in safetensors_problem(weights)
    (ck / "trainer_state.json").write_text('{"global_step": 9, "log_hist')
    problems = checkpoint_problems(ck)
    assert any(str(weights) in p for p in problems) and any("trainer_state.json" in p for p in problems)
    state = json.loads((tmp_path / "run" / "checkpoint-6" / "trainer_state.json").read_text())
    assert state["global_step"] == 6
    assert latest_complete_checkpoint(tmp_path / "run") == str(tmp_path / "run" / "checkpoint-6")
    assert latest_complete_checkpoint(tmp_path / "nothing-here") is None


# ---------------------------------------------------------------------------------------------------------------------
# issue 20: stateful truncated BPTT (StatefulLMTrainer) resumes exactly after a SIGKILL mid-epoch or mid-save
# ---------------------------------------------------------------------------------------------------------------------
# the same setup in the killed child process and in this one: 4 sub-streams x 12 tokens, 5 batches per epoch, so
# 9 steps cross an epoch boundary (where the carried state is reset); dropout on, evaluation at every save
_STATEFUL_SETUP = """
import numpy as np, torch
from transformers import TrainingArguments, default_data_collator
from hf_seq.data import contiguous_stream_blocks
from hf_seq.models.recurrent import LSTMConfig, LSTMForCausalLM
from hf_seq.training.trainer import StatefulLMTrainer

def make_trainer(out, callbacks=None):
    rng = np.random.default_rng(0)
    train = contiguous_stream_blocks(rng.integers(4, 40, 4 * 5 * 12 + 1), 4, 12)
    valid = contiguous_stream_blocks(rng.integers(4, 40, 2 * 3 * 12 + 1), 2, 12)
    torch.manual_seed(0)
    model = LSTMForCausalLM(LSTMConfig(vocab_size=40, hidden_size=16, embedding_size=16, num_hidden_layers=2,
                                       embedding_dropout=0.1, hidden_dropout=0.1, output_dropout=0.1))
    args = TrainingArguments(output_dir=out, max_steps=9, save_steps=3, eval_strategy="steps", eval_steps=3,
                             logging_steps=1, per_device_train_batch_size=4, per_device_eval_batch_size=2,
                             learning_rate=0.05, label_names=["target_ids"], report_to="none", use_cpu=True, seed=0,
                             disable_tqdm=True)
    return StatefulLMTrainer(model=model, args=args, train_dataset=train, eval_dataset=valid,
                             data_collator=default_data_collator, callbacks=callbacks)
"""

_STATEFUL_KILLED = _STATEFUL_SETUP + """
import os, signal, sys
from transformers import TrainerCallback
out, kill_step, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]

class DieMidEpoch(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if mode == "epoch" and state.global_step == kill_step:
            os.kill(os.getpid(), signal.SIGKILL)

original = StatefulLMTrainer._save_rng_state

def save_and_die(self, output_dir):
    original(self, output_dir)  # weights, optimizer, RNG and the carried state are on disk; trainer_state.json is not
    if mode == "save" and self.state.global_step == kill_step:
        os.kill(os.getpid(), signal.SIGKILL)

StatefulLMTrainer._save_rng_state = save_and_die
make_trainer(out, [DieMidEpoch()]).train()
"""


def _stateful_trainer(out, resume=None):
    namespace = {}
    exec(_STATEFUL_SETUP, namespace)
    trainer = namespace["make_trainer"](str(out))
    trainer.train(resume_from_checkpoint=resume)
    return trainer


@pytest.fixture(scope="module")
def stateful_full_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("stateful") / "full"
    return out, _stateful_trainer(out)


def _optimizer_tensors(checkpoint):
    state = torch.load(os.path.join(checkpoint, "optimizer.pt"), weights_only=True)["state"]
    return {f"{i}.{k}": v for i, s in state.items() for k, v in s.items() if isinstance(v, torch.Tensor)}


# killed mid-save (step 6, after its carried state was written) is the default case; killed between two steps
# (the reproduction) resumes from the same checkpoint and costs one more child process: -m slow
@pytest.mark.parametrize("mode,kill_step", [pytest.param("epoch", 4, marks=pytest.mark.slow), ("save", 6)])
def test_stateful_run_killed_then_resumed_equals_uninterrupted_run(tmp_path, stateful_full_run, mode, kill_step):
    from safetensors.torch import load_file

    from hf_seq.training.checkpointing import CARRIED_STATE

    full_dir, full = stateful_full_run
    out = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS=str(torch.get_num_threads()),
               PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", _STATEFUL_KILLED, str(out), str(kill_step), mode], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    if mode == "save":  # the carried state was written, the checkpoint is still incomplete and skipped
        assert (out / f"checkpoint-{kill_step}" / CARRIED_STATE).is_file()
        assert any("trainer_state.json: missing" in p for p in checkpoint_problems(out / f"checkpoint-{kill_step}"))
    resume = latest_complete_checkpoint(out)
    assert resume == str(out / "checkpoint-3")
    carried = load_file(os.path.join(resume, CARRIED_STATE))
    assert carried and all(t.abs().sum() > 0 for t in carried.values())  # mid-epoch: a real state is carried

    resumed = _stateful_trainer(out, resume=resume)
    assert resumed.state.global_step == full.state.global_step == 9
    for key, value in full.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), f"{key} differs after resuming"
    assert _per_step_metrics(resumed.state.log_history) == _per_step_metrics(full.state.log_history)
    # every tensor of the last checkpoint: weights, optimizer moments, carried state
    for name in ("model.safetensors", CARRIED_STATE):
        a, b = load_file(full_dir / "checkpoint-9" / name), load_file(out / "checkpoint-9" / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    a, b = _optimizer_tensors(full_dir / "checkpoint-9"), _optimizer_tensors(out / "checkpoint-9")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_carried_state_round_trip_and_checks(tmp_path):
    from hf_seq.models.recurrent import RecurrentCache
    from hf_seq.training.checkpointing import CARRIED_STATE
    from hf_seq.training.trainer import load_carried_state, save_carried_state

    g = torch.Generator().manual_seed(0)
    cache = RecurrentCache([(torch.randn(1, 4, 8, generator=g), torch.randn(1, 4, 8, generator=g))
                            for _ in range(2)], seen_tokens=24)
    save_carried_state(str(tmp_path), cache, epoch_of_state=1, global_step=7)
    back, epoch = load_carried_state(str(tmp_path), global_step=7)
    assert epoch == 1 and back.seen_tokens == 24 and len(back.states) == 2
    assert all(torch.equal(a, b) for la, lb in zip(cache.states, back.states) for a, b in zip(la, lb))
    with pytest.raises(ValueError, match="saved at step 7.*step 8"):
        load_carried_state(str(tmp_path), global_step=8)
    save_carried_state(str(tmp_path), None, epoch_of_state=None, global_step=0)  # before the first batch
    assert load_carried_state(str(tmp_path)) == (None, None)
    path = tmp_path / CARRIED_STATE
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(ValueError, match="truncated"):
        load_carried_state(str(tmp_path))
