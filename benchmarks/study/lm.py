"""Language modelling: RNN vs GRU vs LSTM vs Transformer decoder on PTB with one word tokenizer, matched parameter
counts and an equal training budget per model (CPU seconds of one thread by default: on a shared machine wall time
measures the neighbours as much as the model), each with its own recipe from `RECIPES` (optimizer, learning rate,
schedule, dropout), over one or more seeds.

Every model is trained by `train_worker` in its own process (so its peak RSS is its own) with `transformers.Trainer`:
hf_seq's `StatefulLMTrainer` for the recurrent models (the state carried across batches, and saved in every
checkpoint, so a resumed run continues exactly), `BlockLMTrainer` (below) for the Transformer, which reads the same
contiguous stream in blocks of `2 * bptt` with no state; 700 tokens per step for every model. The budget is
`step_clock()` (below): the CPU (or wall) seconds spent inside training steps, counted across resumes; it also asks
Trainer for a curve point (evaluate + checkpoint) every `budget / curve_points` seconds. `TrainingClock`
(hf_seq.training.trainer) stamps the wall time since training began in every log entry.
Perplexity = exp(token-weighted mean NLL) over the whole test stream: recurrent models with
`hf_seq.evaluation.evaluate_perplexity` (state carried), the Transformer with a sliding window
(`windowed_perplexity`) so every scored token has at least `bptt` tokens of context. A run resumes from its newest
complete checkpoint; a finished model (`result.json` in its run folder) is skipped on rerun.

The peer row `pytorch_lstm` is PyTorch's word_language_model recipe written the way its users run it (its own loop:
plain SGD lr 20, clip 0.25, dropout 0.2, tied weights, U(-0.1, 0.1) init, lr / 4 when the validation perplexity
stops improving), at the hf-seq LSTM's width, on the same stream, tokenizer and CPU budget (`peer_worker`).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from .common import DATA_DIR, REPO, peak_rss_mb, pyplot, read_json, save_figure, settings_from_overrides, write_json

ARCHS = ("rnn", "gru", "lstm", "transformer")
PEERS = ("pytorch_lstm",)
LABELS = {"rnn": "RNN (tanh)", "gru": "GRU", "lstm": "LSTM", "transformer": "Transformer decoder",
          "pytorch_lstm": "PyTorch word_language_model LSTM (peer)"}

# The recipe of each architecture: what a tuned run sets per model (`--lm 'recipes={lstm: {learning_rate: 1e-3}}'`
# overrides single fields). optimizer: adam | adamw | sgd; schedule: constant (after the linear warm-up) | linear
# (falls to zero when the budget ends, counted on the budget clock). `source` says where the numbers come from; NONE
# of the defaults below was tuned at convergence: the hf-seq rows keep the rates the 480-CPU-second, 60-second-run
# sweep of study.json picked (three of four at an edge of its 3-point grid), no dropout; the peer keeps
# word_language_model's own defaults.
RECIPES = {
    "rnn": dict(optimizer="adam", learning_rate=1e-3, weight_decay=0.0, dropout=0.0, warmup_steps=50, max_grad_norm=1.0,
                schedule="constant", source="480-s sweep pick (grid 5e-4/1e-3/2e-3), not tuned at convergence"),
    "gru": dict(optimizer="adam", learning_rate=5e-4, weight_decay=0.0, dropout=0.0, warmup_steps=50, max_grad_norm=1.0,
                schedule="constant", source="480-s sweep pick, at the grid's low edge; not tuned at convergence"),
    "lstm": dict(optimizer="adam", learning_rate=5e-4, weight_decay=0.0, dropout=0.0, warmup_steps=50,
                 max_grad_norm=1.0, schedule="constant",
                 source="480-s sweep pick, at the grid's low edge; not tuned at convergence"),
    "transformer": dict(optimizer="adam", learning_rate=2e-3, weight_decay=0.0, dropout=0.0, warmup_steps=50,
                        max_grad_norm=1.0, schedule="constant",
                        source="480-s sweep pick, at the grid's high edge; not tuned at convergence"),
    "pytorch_lstm": dict(optimizer="sgd", learning_rate=20.0, weight_decay=0.0, dropout=0.2, warmup_steps=0,
                         max_grad_norm=0.25, schedule="divide by 4 when validation stops improving",
                         source="pytorch/examples word_language_model defaults (main.py), --tied"),
}
RECIPE_KEYS = ("optimizer", "learning_rate", "weight_decay", "dropout", "warmup_steps", "max_grad_norm", "schedule")


@dataclass
class LMSettings:
    dataset: str = "ptb"
    target_parameters: int = 2_000_000  # every model is sized to this count (tied input/output embeddings)
    num_layers: int = 2
    num_heads: int = 4
    batch_size: int = 20
    bptt: int = 35
    recipes: dict | None = None  # {arch: {recipe key: value}} over RECIPES
    learning_rate: float | None = None  # every model's rate when set (else its recipe's)
    learning_rates: dict | None = None  # per-architecture rate, e.g. {gru: 5e-4}; set by lr_sweep when it runs
    dropout: float | None = None  # every model's dropout when set (else its recipe's)
    lr_sweep: list | None = None  # rates tried per architecture for sweep_seconds each; the best one trains
    sweep_seconds: float = 60.0
    score_test: bool = True  # the sweep's short runs skip the test split (they are ranked on validation)
    budget_seconds: float = 150.0
    budget_clock: str = "cpu"  # cpu = process CPU time of the (single-threaded) training steps; wall = wall clock
    curve_points: int = 8
    curve_eval_tokens: int = 10_000  # validation prefix scored at each curve point
    max_train_tokens: int | None = None
    max_eval_tokens: int | None = None  # None = the full test and validation streams
    threads: int = 1
    seed: int = 0
    seeds: list | None = None  # several seeds: one run folder per seed (seed<k>/), mean and std in the report
    vocab_size: int | None = None  # None = every word of the training split (PTB: 10k incl. <unk>)
    archs: list[str] = field(default_factory=lambda: list(ARCHS))
    peers: list[str] = field(default_factory=lambda: list(PEERS))


QUICK = dict(target_parameters=40_000, batch_size=4, bptt=12, budget_seconds=1.5, curve_points=2,
             curve_eval_tokens=300, max_train_tokens=20_000, max_eval_tokens=600, vocab_size=300,
             recipes={a: {"warmup_steps": 5} for a in ARCHS})


def recipe_of(arch: str, s: LMSettings) -> dict:
    """RECIPES[arch] with the settings' overrides: `recipes[arch]`, then `learning_rates[arch]` (the sweep's pick),
    then the global `learning_rate` / `dropout` when set."""
    if arch not in RECIPES:
        raise ValueError(f"no recipe for architecture {arch!r}; known: {sorted(RECIPES)}")
    r = dict(RECIPES[arch])
    extra = (s.recipes or {}).get(arch) or {}
    unknown = sorted(set(extra) - set(RECIPE_KEYS))
    if unknown:
        raise ValueError(f"recipes.{arch}: unknown key(s) {unknown}; expected some of {list(RECIPE_KEYS)}")
    if extra:
        r.update(extra, source=f"{r['source']}; overridden: {extra}")
    if s.learning_rates and arch in s.learning_rates:
        r["learning_rate"] = float(s.learning_rates[arch])
    if s.learning_rate is not None:
        r["learning_rate"] = float(s.learning_rate)
    if s.dropout is not None:
        r["dropout"] = float(s.dropout)
    if arch in ARCHS and r["optimizer"] not in ("adam", "adamw", "sgd"):
        raise ValueError(f"recipes.{arch}.optimizer must be adam, adamw or sgd, got {r['optimizer']!r}")
    if arch in ARCHS and r["schedule"] not in ("constant", "linear"):
        raise ValueError(f"recipes.{arch}.schedule must be constant or linear, got {r['schedule']!r}")
    return r


def lr_of(arch: str, s: LMSettings) -> float:
    return float(recipe_of(arch, s)["learning_rate"])


# ----------------------------------------------------------------------------------------------------------------- data
def prepare_data(settings: LMSettings, run_dir: str, quick: bool) -> dict:
    """Build the word tokenizer on the training split and save the three token streams as .npy (once)."""
    from hf_seq.data import embedded_corpus_path, load_text_splits, stream, tokenize_lines
    from hf_seq.tokenization import build_word_level_tokenizer

    data_dir = os.path.join(run_dir, "data")
    meta_path = os.path.join(data_dir, "meta.json")
    if os.path.isfile(meta_path):
        return read_json(meta_path)
    ptb = os.path.join(DATA_DIR, "ptb")
    if quick:  # seconds, and tests must pass without ../shared/data
        raw = load_text_splits(embedded_corpus_path())
        source = "The Time Machine (embedded; quick mode)"
    elif settings.dataset == "ptb" and os.path.isdir(ptb):
        raw = load_text_splits(*(os.path.join(ptb, f"ptb.{s}.txt") for s in ("train", "valid", "test")))
        source = "PTB (Mikolov's pre-processed Penn Treebank, ../shared/data/ptb)"
    else:
        raise FileNotFoundError(f"PTB not found in {ptb}")
    tokenizer = build_word_level_tokenizer((t for t in raw["train"]["text"] if t.strip()), vocab_size=settings.vocab_size,
                                           lowercase=True)
    tokenized = tokenize_lines(raw, tokenizer, "eos")
    os.makedirs(data_dir, exist_ok=True)
    meta = {"source": source, "tokenizer": "word level (hf_seq.tokenization.build_word_level_tokenizer), <eos> per line",
            "vocab_size": len(tokenizer), "tokens": {}}
    for split in ("train", "validation", "test"):
        tokens = stream(tokenized[split])
        np.save(os.path.join(data_dir, f"{split}.npy"), tokens)
        meta["tokens"][split] = int(len(tokens))
    tokenizer.save_pretrained(os.path.join(data_dir, "tokenizer"))
    write_json(meta_path, meta)
    return meta


def load_streams(run_dir: str, settings: LMSettings) -> dict:
    out = {s: np.load(os.path.join(run_dir, "data", f"{s}.npy")) for s in ("train", "validation", "test")}
    if settings.max_train_tokens:
        out["train"] = out["train"][: settings.max_train_tokens]
    if settings.max_eval_tokens:
        out["validation"] = out["validation"][: settings.max_eval_tokens]
        out["test"] = out["test"][: settings.max_eval_tokens]
    return out


# --------------------------------------------------------------------------------------------------------------- models
def _count(model) -> int:
    return sum(p.numel() for p in model.parameters())  # tied weights are one Parameter, counted once


def _recurrent(arch: str, hidden: int, vocab: int, s: LMSettings, dropout: float = 0.0):
    from transformers import AutoModelForCausalLM

    from hf_seq.models.recurrent import GRUConfig, LSTMConfig, RNNConfig

    cls = {"rnn": RNNConfig, "gru": GRUConfig, "lstm": LSTMConfig}[arch]
    config = cls(vocab_size=vocab, hidden_size=hidden, embedding_size=hidden, num_hidden_layers=s.num_layers,
                 embedding_dropout=dropout, hidden_dropout=dropout, output_dropout=dropout,
                 tie_word_embeddings=True, initializer_range=0.1)
    return AutoModelForCausalLM.from_config(config)


def _transformer(d_model: int, d_ff: int, vocab: int, s: LMSettings, dropout: float = 0.0):
    from transformers import AutoModelForCausalLM

    from hf_seq.models.transformer import TransformerDecoderConfig

    config = TransformerDecoderConfig(vocab_size=vocab, hidden_size=d_model, intermediate_size=d_ff,
                               num_attention_heads=s.num_heads, decoder_layers=s.num_layers, encoder_layers=0,
                               dropout=dropout, max_position_embeddings=4 * s.bptt, norm_first=True,
                               is_encoder_decoder=False, share_embeddings=False, tie_word_embeddings=True)
    return AutoModelForCausalLM.from_config(config)


def build_matched_model(arch: str, vocab: int, s: LMSettings, dropout: float = 0.0):
    """The model of `arch` whose parameter count is closest to `s.target_parameters`: the width (hidden = embedding
    size, tied) is searched; the Transformer's d_model moves in steps of 2 * heads and d_ff = 4 d_model is then tuned.
    Dropout does not change the count: the search runs without it, the returned model has it."""
    import torch

    torch.manual_seed(s.seed)
    if arch in ("rnn", "gru", "lstm"):
        lo, hi = 2, 1024
        while lo < hi:  # smallest width whose count reaches the target
            mid = (lo + hi) // 2
            if _count(_recurrent(arch, mid, vocab, s)) < s.target_parameters:
                lo = mid + 1
            else:
                hi = mid
        best = min((lo - 1, lo), key=lambda h: abs(_count(_recurrent(arch, max(h, 2), vocab, s)) - s.target_parameters))
        torch.manual_seed(s.seed)
        model = _recurrent(arch, max(best, 2), vocab, s, dropout)
        shape = {"hidden_size": model.config.hidden_size, "embedding_size": model.config.embedding_size,
                 "layers": s.num_layers}
    elif arch == "transformer":
        step = 2 * s.num_heads
        lo, hi = 1, 256  # d_model = step * m; the count grows with m
        while lo < hi:
            mid = (lo + hi) // 2
            if _count(_transformer(step * mid, 4 * step * mid, vocab, s)) < s.target_parameters:
                lo = mid + 1
            else:
                hi = mid
        d = step * min({max(lo - 1, 1), lo},
                       key=lambda m: abs(_count(_transformer(step * m, 4 * step * m, vocab, s)) - s.target_parameters))
        per_ff = _count(_transformer(d, 4 * d + 1, vocab, s)) - _count(_transformer(d, 4 * d, vocab, s))
        d_ff = max(1, 4 * d + round((s.target_parameters - _count(_transformer(d, 4 * d, vocab, s))) / per_ff))
        torch.manual_seed(s.seed)
        model = _transformer(d, d_ff, vocab, s, dropout)
        shape = {"d_model": d, "d_ff": d_ff, "heads": s.num_heads, "layers": s.num_layers, "norm": "pre-LN"}
    else:
        raise ValueError(f"unknown architecture {arch!r}; expected one of {ARCHS}")
    return model, shape


# ----------------------------------------------------------------------------------------------------------- evaluation
def perplexity(arch: str, model, tokens: np.ndarray, s: LMSettings) -> dict:
    from hf_seq.evaluation import evaluate_perplexity, windowed_perplexity

    if arch == "transformer":
        return windowed_perplexity(model, tokens, window=2 * s.bptt, stride=s.bptt, progress=False)
    return evaluate_perplexity(model, tokens, batch_size=10, bptt=s.bptt, progress=False)


# -------------------------------------------------------------------------------------------------------------- training
def _stream_rows(arch: str, tokens: np.ndarray, s: LMSettings):
    """Rows of the one contiguous stream (`hf_seq.data.contiguous_stream_blocks`), read in order: (batch, length)
    = (B, bptt) for the recurrent models (the state carried from batch to batch), (B/2, 2 bptt) for the Transformer;
    700 tokens per step for every model."""
    from hf_seq.data import contiguous_stream_blocks

    b, t = (s.batch_size // 2, 2 * s.bptt) if arch == "transformer" else (s.batch_size, s.bptt)
    return contiguous_stream_blocks(tokens, b, t), b


def step_clock(budget_seconds: float, clock: str = "cpu", curve_points: int | None = None,
               schedule: str = "constant"):
    """A `TrainerCallback` measuring the time spent inside training steps: process CPU seconds
    (`time.process_time()`, the whole process: run it with one thread) or wall seconds, counted across resumes,
    evaluation and checkpointing excluded. It

    - stops training once `budget_seconds` have been spent (the step that crosses the budget still finishes);
    - asks Trainer for an evaluation and a checkpoint every `budget_seconds / curve_points` seconds and at the end
      (the curve of validation perplexity against training time), when `curve_points` is given;
    - stamps `train_cpu_seconds`, `train_wall_seconds` (both inside steps) and `budget_seconds` (on its own clock)
      in every log entry; a resumed run continues from the last stamp in the checkpoint's log history (Trainer logs
      the curve point's evaluation before it saves, so that stamp is the checkpoint's);
    - with `schedule="linear"` scales the rate the scheduler sets by 1 - spent / budget after every step, so it
      reaches zero when the budget ends whatever the machine's speed (`TrainingClock(decay_lr=True)` on this clock).
    """
    from transformers import TrainerCallback

    from hf_seq.training.trainer import scale_learning_rates

    if clock not in ("cpu", "wall"):
        raise ValueError(f"budget_clock must be 'cpu' or 'wall', got {clock!r}")
    if not budget_seconds > 0:
        raise ValueError(f"budget_seconds must be positive, got {budget_seconds!r}")
    if schedule not in ("constant", "linear"):
        raise ValueError(f"schedule must be 'constant' or 'linear', got {schedule!r}")

    class StepClock(TrainerCallback):
        def __init__(self):
            self.budget, self.clock, self.curve_points, self.schedule = budget_seconds, clock, curve_points, schedule
            self.cpu = self.wall = 0.0
            self.base_lrs = None

        def spent(self) -> float:
            return self.cpu if self.clock == "cpu" else self.wall

        def on_train_begin(self, args, state, control, **kwargs):
            stamps = [e for e in state.log_history if "train_cpu_seconds" in e]
            if stamps:
                self.cpu, self.wall = stamps[-1]["train_cpu_seconds"], stamps[-1]["train_wall_seconds"]
            self.points_done = sum(1 for e in state.log_history if "eval_loss" in e)

        def on_step_begin(self, args, state, control, **kwargs):
            self._c0, self._w0 = time.process_time(), time.perf_counter()

        def on_step_end(self, args, state, control, optimizer=None, lr_scheduler=None, **kwargs):
            self.cpu += time.process_time() - self._c0
            self.wall += time.perf_counter() - self._w0
            spent = self.spent()
            if self.schedule == "linear" and optimizer is not None:
                factor = max(0.0, 1.0 - spent / self.budget)
                self.base_lrs = scale_learning_rates(optimizer, lr_scheduler, factor, self.base_lrs)
            done = spent >= self.budget
            if self.curve_points and (done or spent >= self.budget / self.curve_points * (self.points_done + 1)):
                control.should_evaluate = control.should_save = True
                self.points_done += 1
            if done:
                control.should_training_stop = True

        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.log_history:
                state.log_history[-1].update(train_cpu_seconds=round(self.cpu, 3),
                                             train_wall_seconds=round(self.wall, 3),
                                             budget_seconds=round(self.spent(), 3))

    return StepClock()


def _trainer_classes():
    import torch.nn.functional as F
    from torch.utils.data import SequentialSampler
    from transformers import Trainer

    from hf_seq.training.trainer import StatefulLMTrainer

    class CurveEval:
        """`evaluate()` = perplexity of the validation prefix with the study's protocol (`perplexity()`: state
        carried, or a sliding window), logged as eval_loss / eval_perplexity, so that Trainer's curve points score
        exactly what the final evaluation scores."""

        study_arch = study_settings = study_tokens = None

        def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
            training = self.model.training
            r = perplexity(self.study_arch, self.model, self.study_tokens, self.study_settings)
            if training:
                self.model.train()
            metrics = {f"{metric_key_prefix}_loss": r["loss"], f"{metric_key_prefix}_perplexity": r["perplexity"]}
            self.log(metrics)
            self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
            return metrics

    class StatefulCurveTrainer(CurveEval, StatefulLMTrainer):
        pass

    class BlockLMTrainer(CurveEval, Trainer):
        """The Transformer's trainer: the stream's rows in order (no shuffling, like the recurrent models), the
        next-token loss on `target_ids`, no state between blocks."""

        def _get_train_sampler(self, *args, **kwargs):
            return SequentialSampler(self.train_dataset)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            targets = inputs.pop("target_ids")
            outputs = model(input_ids=inputs["input_ids"], use_cache=False)
            loss = F.cross_entropy(outputs.logits.flatten(0, 1).float(), targets.flatten())
            return (loss, outputs) if return_outputs else loss

    return StatefulCurveTrainer, BlockLMTrainer


def _training_arguments(out_dir: str, arch: str, recipe: dict, s: LMSettings, batch: int):
    from transformers import TrainingArguments

    optim = {"adam": "adamw_torch", "adamw": "adamw_torch", "sgd": "sgd"}[recipe["optimizer"]]
    return TrainingArguments(
        output_dir=out_dir, per_device_train_batch_size=batch, per_device_eval_batch_size=batch,
        max_steps=10**9,  # the budget (StepClock) ends training, not a step count
        learning_rate=recipe["learning_rate"], optim=optim,
        weight_decay=recipe["weight_decay"] if recipe["optimizer"] != "adam" else 0.0,  # adam = adamw without decay
        lr_scheduler_type="constant_with_warmup", warmup_steps=recipe["warmup_steps"],
        max_grad_norm=recipe["max_grad_norm"], eval_strategy="no", save_strategy="no",  # StepClock asks for both
        save_total_limit=1, logging_steps=50, report_to="none", use_cpu=True, dataloader_num_workers=0,
        disable_tqdm=True, seed=s.seed, label_names=["target_ids"], remove_unused_columns=False,
    )


def train_worker(arch: str, s: LMSettings, run_dir: str) -> dict:
    """Train one model for the budget with Trainer (resuming from its newest complete checkpoint), evaluate, write
    `<run_dir>/<arch>/result.json`; a finished model is returned as it is."""
    if arch in PEERS:
        return peer_worker(arch, s, run_dir)
    import torch

    from hf_seq.training.checkpointing import latest_complete_checkpoint
    from hf_seq.training.trainer import TrainingClock

    torch.set_num_threads(s.threads)
    out_dir = os.path.join(run_dir, arch)
    result_path = os.path.join(out_dir, "result.json")
    if os.path.isfile(result_path):
        return read_json(result_path)
    rss_before = peak_rss_mb()
    streams = load_streams(run_dir, s)
    vocab = read_json(os.path.join(run_dir, "data", "meta.json"))["vocab_size"]
    recipe = recipe_of(arch, s)
    model, shape = build_matched_model(arch, vocab, s, recipe["dropout"])
    n_params = sum(p.numel() for p in model.parameters())
    train_ds, batch = _stream_rows(arch, streams["train"], s)
    tokens_per_step = batch * len(train_ds[0]["input_ids"])
    valid = streams["validation"][: s.curve_eval_tokens]

    stateful_cls, block_cls = _trainer_classes()
    trainer_cls = block_cls if arch == "transformer" else stateful_cls
    clock = step_clock(s.budget_seconds, s.budget_clock, s.curve_points, recipe["schedule"])
    wall = TrainingClock()  # the project's clock: elapsed wall seconds (evaluation included) in every log entry
    trainer = trainer_cls(model=model, args=_training_arguments(out_dir, arch, recipe, s, batch),
                          train_dataset=train_ds, callbacks=[clock, wall])
    trainer.study_arch, trainer.study_settings, trainer.study_tokens = arch, s, valid

    resume = latest_complete_checkpoint(out_dir)
    start_path = os.path.join(out_dir, "curve_start.json")
    if resume is None:  # the curve's first point: the untrained model (kept beside the checkpoints)
        r = perplexity(arch, model, valid, s)
        write_json(start_path, {"seconds": 0.0, "wall_seconds": 0.0, "step": 0, "tokens": 0,
                                "valid_perplexity": round(r["perplexity"], 3)})
    else:
        print(f"[lm:{arch}] resuming from {os.path.basename(resume)}", flush=True)
    trainer.train(resume_from_checkpoint=resume)
    state = trainer.state

    curve = [read_json(start_path)]
    for e in state.log_history:
        if "eval_perplexity" in e:
            curve.append({"seconds": round(e["budget_seconds"], 2), "wall_seconds": round(e["train_wall_seconds"], 1),
                          "step": e["step"], "tokens": e["step"] * tokens_per_step,
                          "valid_perplexity": round(e["eval_perplexity"], 3)})
            print(f"[lm:{arch}] {curve[-1]['seconds']:7.1f} s  step {e['step']:6d}  valid-prefix ppl "
                  f"{e['eval_perplexity']:9.2f}", flush=True)
    history_path = os.path.join(out_dir, "resumes.json")
    resumes = read_json(history_path) if os.path.isfile(history_path) else []
    if resume is not None:
        resumes.append(int(resume.rsplit("-", 1)[-1]))
        write_json(history_path, resumes)

    # final evaluation on the whole test stream (the validation number is the last curve point: a prefix of the
    # validation stream, which keeps the evaluation cost of a short CPU run down)
    model.eval()
    t0 = time.perf_counter()
    test = perplexity(arch, model, streams["test"], s) if s.score_test else {"perplexity": None, "tokens": 0}
    eval_wall = time.perf_counter() - t0
    steps, tokens = state.global_step, state.global_step * tokens_per_step
    result = {
        "architecture": arch, "label": LABELS[arch], "parameters": n_params, "shape": shape,
        "learning_rate": recipe["learning_rate"], "recipe": {k: recipe[k] for k in (*RECIPE_KEYS, "source")},
        "seed": s.seed, "steps": steps, "train_tokens": tokens,
        "epochs": round(tokens / max(1, len(streams["train"])), 3),
        "budget_clock": s.budget_clock, "budget_seconds": s.budget_seconds, "train_seconds": round(clock.spent(), 1),
        "train_wall_seconds": round(clock.wall, 1), "train_cpu_seconds": round(clock.cpu, 1),
        "elapsed_wall_seconds": round(wall.elapsed(), 1),
        "tokens_per_second": round(tokens / max(clock.spent(), 1e-9), 1),
        "tokens_per_cpu_second": round(tokens / max(clock.cpu, 1e-9), 1),
        "tokens_per_wall_second": round(tokens / max(clock.wall, 1e-9), 1),
        "test_perplexity": None if test["perplexity"] is None else round(test["perplexity"], 2),
        "test_tokens_scored": test["tokens"],
        "validation_perplexity": curve[-1]["valid_perplexity"],
        "validation_tokens_scored": min(s.curve_eval_tokens, len(streams["validation"])) - 1,
        "eval_tokens_per_wall_second": round(test["tokens"] / max(eval_wall, 1e-9), 1),
        "evaluation": "sliding window 2*bptt, stride bptt" if arch == "transformer" else "stateful, batch 10 x bptt",
        "trainer": "Trainer" if arch == "transformer" else "StatefulLMTrainer",
        "peak_rss_mb": round(peak_rss_mb(), 1), "rss_before_model_mb": round(rss_before, 1),
        "resumed_from_steps": resumes, "curve": curve, "threads": s.threads,
        "load_1min_at_end": os.getloadavg()[0],
    }
    model.save_pretrained(os.path.join(out_dir, "model"))
    write_json(result_path, result)
    return result


# ------------------------------------------------------------------------------------------------------------ the peer
def peer_worker(arch: str, s: LMSettings, run_dir: str) -> dict:
    """PyTorch's word_language_model LSTM (pytorch/examples, main.py + model.py) as its users run it: its own
    training loop (plain SGD on `p.data.add_(p.grad, alpha=-lr)`, clip 0.25, dropout 0.2, tied weights, U(-0.1, 0.1)
    init, the state carried and detached between batches, lr / 4 whenever a validation pass does not improve),
    batchified stream 20 x 35, at the hf-seq LSTM's layers and width, for the same budget on the same clock.
    Validation passes happen at the curve points (the script's per-epoch evaluation, here every budget/curve_points
    seconds: the budget is far below one epoch). No checkpoint/resume (the script keeps only its best model): an
    interrupted peer restarts."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    from hf_seq.evaluation import evaluate_perplexity

    torch.set_num_threads(s.threads)
    out_dir = os.path.join(run_dir, arch)
    result_path = os.path.join(out_dir, "result.json")
    if os.path.isfile(result_path):
        return read_json(result_path)
    os.makedirs(out_dir, exist_ok=True)
    recipe = recipe_of(arch, s)
    streams = load_streams(run_dir, s)
    vocab = read_json(os.path.join(run_dir, "data", "meta.json"))["vocab_size"]
    hf_lstm, _ = build_matched_model("lstm", vocab, s)
    hidden = hf_lstm.config.hidden_size
    del hf_lstm

    class RNNModel(nn.Module):  # word_language_model/model.py, LSTM, tied
        def __init__(self):
            super().__init__()
            self.drop = nn.Dropout(recipe["dropout"])
            self.encoder = nn.Embedding(vocab, hidden)
            self.rnn = nn.LSTM(hidden, hidden, s.num_layers, dropout=recipe["dropout"])
            self.decoder = nn.Linear(hidden, vocab)
            self.decoder.weight = self.encoder.weight
            nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
            nn.init.zeros_(self.decoder.bias)

        def forward(self, input_ids, cache=None, use_cache=True):  # batch-first in, the script's (T, B) inside
            out, h = self.rnn(self.drop(self.encoder(input_ids.t())), cache)
            logits = self.decoder(self.drop(out)).transpose(0, 1)
            return type("Out", (), {"logits": logits, "cache": h})()

    torch.manual_seed(s.seed)
    model = RNNModel()
    n_params = sum(p.numel() for p in model.parameters())
    data = torch.as_tensor(streams["train"])
    nb = data.size(0) // s.batch_size
    data = data[: nb * s.batch_size].view(s.batch_size, -1).t().contiguous()  # batchify: (steps, B)
    valid = streams["validation"][: s.curve_eval_tokens]
    clock = time.process_time if s.budget_clock == "cpu" else time.perf_counter
    lr, best, spent, cpu, wall, step, tokens = recipe["learning_rate"], None, 0.0, 0.0, 0.0, 0, 0
    curve = [{"seconds": 0.0, "wall_seconds": 0.0, "step": 0, "tokens": 0,
              "valid_perplexity": round(evaluate_perplexity(model, valid, 10, s.bptt, progress=False)["perplexity"], 3)}]
    every = s.budget_seconds / s.curve_points
    hidden_state, i = None, 0
    model.train()
    while spent < s.budget_seconds:
        if i + 1 >= data.size(0) - 1:
            i, hidden_state = 0, None  # a new epoch
        t0, c0, w0 = clock(), time.process_time(), time.perf_counter()
        seq_len = min(s.bptt, data.size(0) - 1 - i)
        x, y = data[i : i + seq_len], data[i + 1 : i + 1 + seq_len]
        if hidden_state is not None:
            hidden_state = tuple(h.detach() for h in hidden_state)  # repackage_hidden
        model.zero_grad()
        out, hidden_state = model.rnn(model.drop(model.encoder(x)), hidden_state)
        loss = F.cross_entropy(model.decoder(model.drop(out)).view(-1, vocab), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), recipe["max_grad_norm"])
        for p in model.parameters():
            p.data.add_(p.grad, alpha=-lr)
        spent += clock() - t0
        cpu += time.process_time() - c0
        wall += time.perf_counter() - w0
        i += seq_len
        step += 1
        tokens += y.numel()
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"{arch}: training loss became {loss.item()} at step {step}")
        if spent >= every * len(curve) or spent >= s.budget_seconds:
            ppl = evaluate_perplexity(model, valid, 10, s.bptt, progress=False)["perplexity"]
            model.train()
            curve.append({"seconds": round(spent, 2), "wall_seconds": round(wall, 1), "step": step, "tokens": tokens,
                          "valid_perplexity": round(ppl, 3), "lr": lr})
            if best is not None and ppl >= best:
                lr /= 4.0  # "Anneal the learning rate if no improvement has been seen in the validation dataset."
            best = ppl if best is None else min(best, ppl)
    model.eval()
    t0 = time.perf_counter()
    test = evaluate_perplexity(model, streams["test"], 10, s.bptt, progress=False) if s.score_test else \
        {"perplexity": None, "tokens": 0}
    eval_wall = time.perf_counter() - t0
    result = {
        "architecture": arch, "label": LABELS[arch], "parameters": n_params,
        "shape": {"hidden_size": hidden, "embedding_size": hidden, "layers": s.num_layers},
        "learning_rate": recipe["learning_rate"], "recipe": {k: recipe[k] for k in (*RECIPE_KEYS, "source")},
        "seed": s.seed, "steps": step, "train_tokens": tokens, "epochs": round(tokens / max(1, len(streams["train"])), 3),
        "budget_clock": s.budget_clock, "budget_seconds": s.budget_seconds, "train_seconds": round(spent, 1),
        "train_wall_seconds": round(wall, 1), "train_cpu_seconds": round(cpu, 1), "elapsed_wall_seconds": None,
        "tokens_per_second": round(tokens / max(spent, 1e-9), 1),
        "tokens_per_cpu_second": round(tokens / max(cpu, 1e-9), 1),
        "tokens_per_wall_second": round(tokens / max(wall, 1e-9), 1),
        "test_perplexity": None if test["perplexity"] is None else round(test["perplexity"], 2),
        "test_tokens_scored": test["tokens"], "validation_perplexity": curve[-1]["valid_perplexity"],
        "validation_tokens_scored": min(s.curve_eval_tokens, len(streams["validation"])) - 1,
        "eval_tokens_per_wall_second": round(test["tokens"] / max(eval_wall, 1e-9), 1),
        "evaluation": "stateful, batch 10 x bptt", "trainer": "its own loop (word_language_model main.py)",
        "peak_rss_mb": round(peak_rss_mb(), 1), "rss_before_model_mb": None, "resumed_from_steps": [],
        "curve": curve, "threads": s.threads, "load_1min_at_end": os.getloadavg()[0],
    }
    write_json(result_path, result)
    return result


# -------------------------------------------------------------------------------------------------------------- driver
def _run_workers(tasks: list[tuple[str, str]], s: LMSettings, jobs: int) -> None:
    """Train (arch, run_dir) tasks: in this process when `jobs` is 0, else `jobs` subprocesses at a time."""
    if jobs == 0:
        for arch, run_dir in tasks:
            train_worker(arch, LMSettings(**read_json(os.path.join(run_dir, "settings.json"))), run_dir)
        return
    entry = os.path.join(REPO, "benchmarks", "study.py")
    running: list[tuple[str, str, subprocess.Popen]] = []
    env = dict(os.environ, OMP_NUM_THREADS=str(s.threads), MKL_NUM_THREADS=str(s.threads))
    pending = list(tasks)
    failures = []
    while pending or running:
        while pending and len(running) < jobs:
            arch, run_dir = pending.pop(0)
            log = open(os.path.join(run_dir, f"{arch}.log"), "a")
            cmd = [sys.executable, entry, "--lm-worker", arch, "--run-dir", run_dir]
            running.append((arch, run_dir, subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)))
        time.sleep(2)
        for arch, run_dir, proc in list(running):
            if proc.poll() is not None:
                running.remove((arch, run_dir, proc))
                if proc.returncode != 0:
                    failures.append(arch)
                    print(f"[lm] {arch} failed (exit {proc.returncode}); see {run_dir}/{arch}.log", flush=True)
                else:
                    print(f"[lm] {arch} finished ({run_dir})", flush=True)
    if failures:
        raise RuntimeError(f"lm workers failed: {failures}")


def run_sweep(s: LMSettings, run_dir: str, jobs: int) -> dict:
    """Every architecture for `sweep_seconds` at every rate of `lr_sweep` (run folders sweep/lr<rate>/, the same data
    and model sizes); returns {arch: {"best": rate, "valid_perplexity": {rate: ppl}}}, ranked by the validation-prefix
    perplexity at the end of the short run (the test split is not looked at)."""
    folders = {f"{lr:g}": os.path.join(run_dir, "sweep", f"lr{lr:g}") for lr in s.lr_sweep}
    tasks = []
    for rate, sub in folders.items():
        os.makedirs(sub, exist_ok=True)
        if not os.path.exists(os.path.join(sub, "data")):
            os.symlink(os.path.join("..", "..", "data"), os.path.join(sub, "data"))
        short = LMSettings(**{**asdict(s), "budget_seconds": s.sweep_seconds, "learning_rate": float(rate),
                              "learning_rates": None, "lr_sweep": None, "curve_points": 2, "score_test": False,
                              "seeds": None, "peers": []})
        write_json(os.path.join(sub, "settings.json"), asdict(short))
        tasks += [(a, sub) for a in s.archs if not os.path.isfile(os.path.join(sub, a, "result.json"))]
    _run_workers(tasks, s, jobs)
    out = {}
    for arch in s.archs:
        ppl = {rate: read_json(os.path.join(sub, arch, "result.json"))["validation_perplexity"]
               for rate, sub in folders.items()}
        best = min(ppl, key=ppl.get)
        out[arch] = {"best": float(best), "valid_perplexity": ppl}
    return out


def _seed_folders(s: LMSettings, run_dir: str) -> dict[int, str]:
    """{seed: run folder}: `run_dir` itself for one seed (`seed`), `run_dir/seed<k>/` (settings.json with that seed,
    the shared data/ linked) for several (`seeds`)."""
    if not s.seeds:
        return {int(s.seed): run_dir}
    out = {}
    for k in s.seeds:
        sub = os.path.join(run_dir, f"seed{int(k)}")
        os.makedirs(sub, exist_ok=True)
        if not os.path.exists(os.path.join(sub, "data")):
            os.symlink(os.path.join("..", "data"), os.path.join(sub, "data"))
        write_json(os.path.join(sub, "settings.json"), asdict(LMSettings(**{**asdict(s), "seed": int(k), "seeds": None})))
        out[int(k)] = sub
    return out


MEAN_KEYS = ("test_perplexity", "validation_perplexity", "steps", "train_tokens", "epochs", "train_seconds",
             "train_wall_seconds", "train_cpu_seconds", "tokens_per_second", "tokens_per_cpu_second",
             "tokens_per_wall_second", "peak_rss_mb")


def aggregate(runs: list[dict]) -> dict:
    """One table row from the runs of one model over seeds: the first run's description, the mean of every number
    of MEAN_KEYS, the sample standard deviation of the perplexities (None for one seed), and the runs themselves."""
    row = {k: v for k, v in runs[0].items() if k not in ("curve",)}
    for k in MEAN_KEYS:
        values = [r[k] for r in runs if r.get(k) is not None]
        if len(values) > 1:
            row[k] = round(statistics.fmean(values), 2)
    for k in ("test_perplexity", "validation_perplexity"):
        values = [r[k] for r in runs if r.get(k) is not None]
        row[f"{k}_std"] = round(statistics.stdev(values), 2) if len(values) > 1 else None
    row["seeds"] = [r.get("seed") for r in runs]
    row["curve"] = runs[0]["curve"]  # the first seed's curve (every seed's is in `runs`)
    row["runs"] = [{k: r.get(k) for k in ("seed", "test_perplexity", "validation_perplexity", "steps",
                                          "train_cpu_seconds", "tokens_per_second", "resumed_from_steps", "curve")}
                   for r in runs]
    row["converged"] = False  # nothing in this study's budgets is trained to convergence; see the report
    return row


def run(s: LMSettings, run_dir: str, results_dir: str, quick: bool, jobs: int = 1) -> dict:
    """Train every architecture and peer for every seed (in subprocesses when `jobs` >= 1, in this process when 0),
    then plot and collect mean and spread over the seeds. With `lr_sweep`, a short run per (architecture, rate) on
    the first seed first picks each architecture's rate."""
    meta = prepare_data(s, run_dir, quick)
    sweep = None
    if s.lr_sweep:
        sweep = run_sweep(s, run_dir, jobs)
        s.learning_rates = {arch: v["best"] for arch, v in sweep.items()}
        print(f"[lm] rates picked by the sweep: {s.learning_rates}", flush=True)
    write_json(os.path.join(run_dir, "settings.json"), asdict(s))
    models = list(s.archs) + [p for p in (s.peers or []) if p not in s.archs]
    for m in models:
        recipe_of(m, s)  # a bad recipe fails before anything trains
    folders = _seed_folders(s, run_dir)
    tasks = [(m, d) for d in folders.values() for m in models if not os.path.isfile(os.path.join(d, m, "result.json"))]
    skipped = [f"{m} (seed {k})" for k, d in folders.items() for m in models if (m, d) not in tasks]
    if skipped:
        print(f"[lm] finished earlier, skipped: {', '.join(skipped)}", flush=True)
    _run_workers(tasks, s, jobs)
    rows = [aggregate([read_json(os.path.join(d, m, "result.json")) for d in folders.values()]) for m in models]
    plots = {"curve": plot_curves(rows, os.path.join(results_dir, "lm_curve.png"), s)}
    return {"data": meta, "settings": asdict(s), "seeds": list(folders), "models": rows, "lr_sweep": sweep,
            "recipes": {m: recipe_of(m, s) for m in models},
            "plots": {k: os.path.basename(v) for k, v in plots.items()},
            "skipped_finished": skipped}


def plot_curves(results: list[dict], path: str, s: LMSettings) -> str:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in results:
        pts = r["curve"]
        ax.plot([p["seconds"] for p in pts], [p["valid_perplexity"] for p in pts], marker="o", ms=3,
                label=f"{r['label']} ({r['parameters'] / 1e6:.2f}M)")
    ax.set_yscale("log")
    ax.set_xlabel(f"training {'CPU' if s.budget_clock == 'cpu' else 'wall-clock'} seconds ({s.threads} thread)")
    ax.set_ylabel(f"validation perplexity (first {s.curve_eval_tokens:,} tokens)")
    ax.set_title("Language modelling: perplexity vs training time, equal budget")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return save_figure(fig, path)


def settings_from(overrides: dict, quick: bool) -> LMSettings:
    return settings_from_overrides(LMSettings, QUICK, overrides, quick, "lm")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def worker_main(arch: str, run_dir: str) -> None:
    """One model in this process. A lock file keeps two workers (e.g. one started by hand to use an idle core, one
    by the driver) off the same run folder: the second waits for the first and reports its result."""
    s = LMSettings(**read_json(os.path.join(run_dir, "settings.json")))
    os.makedirs(os.path.join(run_dir, arch), exist_ok=True)
    lock = os.path.join(run_dir, arch, "worker.lock")
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            break
        except FileExistsError:
            with open(lock) as f:
                holder = int(f.read().strip() or 0)
            if holder and _alive(holder):
                time.sleep(5)
                if os.path.isfile(os.path.join(run_dir, arch, "result.json")):
                    break  # the other worker finished
            else:
                os.remove(lock)  # stale: its process is gone
    try:
        r = train_worker(arch, s, run_dir)
    finally:
        try:
            with open(lock) as f:
                if f.read().strip() == str(os.getpid()):
                    os.remove(lock)
        except FileNotFoundError:
            pass
    print(json.dumps({k: r[k] for k in ("architecture", "parameters", "test_perplexity", "tokens_per_second")}))
