"""Language modelling: RNN vs GRU vs LSTM vs Transformer decoder on PTB with one word tokenizer, matched parameter
counts and an equal training budget per model (CPU seconds of one thread by default: on a shared machine wall time
measures the neighbours as much as the model).

Every model is trained by `train_worker` in its own process (so its peak RSS is its own), on the same contiguous
token stream, 700 tokens per step: recurrent models carry their state across batches (stateful truncated BPTT,
hf_seq.training.trainer's layout), the Transformer reads the same stream in blocks of `2 * bptt` with no state. Perplexity =
exp(token-weighted mean NLL) over the whole test stream: recurrent models with `hf_seq.evaluation.evaluate_perplexity`
(state carried), the Transformer with a sliding window (`windowed_perplexity`) so every scored token has at least
`bptt` tokens of context. A run checkpoints at every curve point and resumes from there; a finished model
(`result.json` in its run folder) is skipped on rerun.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from .common import DATA_DIR, REPO, peak_rss_mb, pyplot, read_json, write_json

ARCHS = ("rnn", "gru", "lstm", "transformer")
LABELS = {"rnn": "RNN (tanh)", "gru": "GRU", "lstm": "LSTM", "transformer": "Transformer decoder"}


@dataclass
class LMSettings:
    dataset: str = "ptb"
    target_parameters: int = 2_000_000  # every model is sized to this count (tied input/output embeddings)
    num_layers: int = 2
    num_heads: int = 4
    batch_size: int = 20
    bptt: int = 35
    learning_rate: float = 2e-3  # Adam; every model's unless lr_sweep or learning_rates says otherwise
    learning_rates: dict | None = None  # per-architecture Adam rate, e.g. {gru: 5e-4}; set by lr_sweep when it runs
    lr_sweep: list | None = None  # Adam rates tried per architecture for sweep_seconds each; the best one trains
    sweep_seconds: float = 60.0
    score_test: bool = True  # the sweep's short runs skip the test split (they are ranked on validation)
    warmup_steps: int = 50
    max_grad_norm: float = 1.0
    dropout: float = 0.0  # far below one epoch in the default budget: nothing to regularise
    budget_seconds: float = 150.0
    budget_clock: str = "cpu"  # cpu = process CPU time of the (single-threaded) run; wall = wall clock
    curve_points: int = 8
    curve_eval_tokens: int = 10_000  # validation prefix scored at each curve point
    max_train_tokens: int | None = None
    max_eval_tokens: int | None = None  # None = the full test and validation streams
    threads: int = 1
    seed: int = 0
    vocab_size: int | None = None  # None = every word of the training split (PTB: 10k incl. <unk>)
    archs: list[str] = field(default_factory=lambda: list(ARCHS))


QUICK = dict(target_parameters=40_000, batch_size=4, bptt=12, budget_seconds=1.5, curve_points=2,
             curve_eval_tokens=300, max_train_tokens=20_000, max_eval_tokens=600, warmup_steps=5, vocab_size=300)


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


def _recurrent(arch: str, hidden: int, vocab: int, s: LMSettings):
    from transformers import AutoModelForCausalLM

    from hf_seq.models.recurrent import GRUConfig, LSTMConfig, RNNConfig

    cls = {"rnn": RNNConfig, "gru": GRUConfig, "lstm": LSTMConfig}[arch]
    config = cls(vocab_size=vocab, hidden_size=hidden, embedding_size=hidden, num_hidden_layers=s.num_layers,
                 embedding_dropout=s.dropout, hidden_dropout=s.dropout, output_dropout=s.dropout,
                 tie_word_embeddings=True, initializer_range=0.1)
    return AutoModelForCausalLM.from_config(config)


def _transformer(d_model: int, d_ff: int, vocab: int, s: LMSettings):
    from transformers import AutoModelForCausalLM

    from hf_seq.models.transformer import TransformerConfig

    config = TransformerConfig(vocab_size=vocab, hidden_size=d_model, intermediate_size=d_ff,
                               num_attention_heads=s.num_heads, decoder_layers=s.num_layers, encoder_layers=0,
                               dropout=s.dropout, max_position_embeddings=4 * s.bptt, norm_first=True,
                               is_encoder_decoder=False, share_embeddings=False, tie_word_embeddings=True)
    return AutoModelForCausalLM.from_config(config)


def build_matched_model(arch: str, vocab: int, s: LMSettings):
    """The model of `arch` whose parameter count is closest to `s.target_parameters`: the width (hidden = embedding
    size, tied) is searched; the Transformer's d_model moves in steps of 2 * heads and d_ff = 4 d_model is then tuned."""
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
        model = _recurrent(arch, max(best, 2), vocab, s)
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
        model = _transformer(d, d_ff, vocab, s)
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
def _batches(arch: str, tokens: np.ndarray, s: LMSettings):
    """(inputs, targets) arrays of shape (steps, B, T); 700 tokens per step for every model."""
    from hf_seq.data import contiguous_stream_blocks

    b, t = (s.batch_size // 2, 2 * s.bptt) if arch == "transformer" else (s.batch_size, s.bptt)
    ds = contiguous_stream_blocks(tokens, b, t).with_format("numpy")
    x, y = np.asarray(ds["input_ids"]), np.asarray(ds["target_ids"])
    return x.reshape(-1, b, t), y.reshape(-1, b, t)


def train_worker(arch: str, s: LMSettings, run_dir: str) -> dict:
    """Train one model for the budget (resuming from its checkpoint), evaluate, write `<run_dir>/<arch>/result.json`."""
    import torch
    import torch.nn.functional as F
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(s.threads)
    out_dir = os.path.join(run_dir, arch)
    result_path = os.path.join(out_dir, "result.json")
    if os.path.isfile(result_path):
        return read_json(result_path)
    rss_before = peak_rss_mb()
    streams = load_streams(run_dir, s)
    vocab = read_json(os.path.join(run_dir, "data", "meta.json"))["vocab_size"]
    model, shape = build_matched_model(arch, vocab, s)
    lr = lr_of(arch, s)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / max(1, s.warmup_steps)))
    state = {"step": 0, "elapsed": 0.0, "wall": 0.0, "cpu": 0.0, "tokens": 0, "curve": [], "resumed_from": []}
    ckpt = os.path.join(out_dir, "checkpoint")
    if os.path.isfile(os.path.join(ckpt, "state.json")):
        model = AutoModelForCausalLM.from_pretrained(ckpt)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.LambdaLR(optimizer,
                                                  lambda step: min(1.0, (step + 1) / max(1, s.warmup_steps)))
        optimizer.load_state_dict(torch.load(os.path.join(ckpt, "optimizer.pt"), weights_only=True))
        sched.load_state_dict(torch.load(os.path.join(ckpt, "scheduler.pt"), weights_only=True))
        state = read_json(os.path.join(ckpt, "state.json"))
        state["resumed_from"].append(state["step"])
        print(f"[lm:{arch}] resuming at step {state['step']} ({state['elapsed']:.0f} s of {s.budget_seconds:.0f})",
              flush=True)
    n_params = sum(p.numel() for p in model.parameters())
    xs, ys = _batches(arch, streams["train"], s)
    curve_every = s.budget_seconds / s.curve_points
    clock = time.process_time if s.budget_clock == "cpu" else time.perf_counter
    if s.budget_clock not in ("cpu", "wall"):
        raise ValueError(f"budget_clock must be 'cpu' or 'wall', got {s.budget_clock!r}")

    def curve_point():
        r = perplexity(arch, model, streams["validation"][: s.curve_eval_tokens], s)
        state["curve"].append({"seconds": round(state["elapsed"], 2), "wall_seconds": round(state["wall"], 1),
                               "step": state["step"], "tokens": state["tokens"],
                               "valid_perplexity": round(r["perplexity"], 3)})
        print(f"[lm:{arch}] {state['elapsed']:7.1f} s  step {state['step']:6d}  valid-prefix ppl "
              f"{r['perplexity']:9.2f}", flush=True)

    def save_checkpoint():
        os.makedirs(ckpt, exist_ok=True)
        model.save_pretrained(ckpt)
        torch.save(optimizer.state_dict(), os.path.join(ckpt, "optimizer.pt"))
        torch.save(sched.state_dict(), os.path.join(ckpt, "scheduler.pt"))
        write_json(os.path.join(ckpt, "state.json"), state)  # written last: marks the checkpoint complete

    if not state["curve"]:
        curve_point()
    carried = None  # a resumed run restarts the carried state from zeros (the weights and stream position resume)
    model.train()
    while state["elapsed"] < s.budget_seconds:
        i = state["step"] % len(xs)
        if i == 0:
            carried = None  # a new pass over the stream
        x, y = torch.as_tensor(xs[i]), torch.as_tensor(ys[i])
        t0, w0, c0 = clock(), time.perf_counter(), time.process_time()
        if arch == "transformer":
            logits = model(input_ids=x, use_cache=False).logits
        else:
            out = model(input_ids=x, cache=carried, use_cache=True)
            logits, carried = out.logits, out.cache.detach()
        loss = F.cross_entropy(logits.flatten(0, 1).float(), y.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), s.max_grad_norm)
        optimizer.step()
        sched.step()
        state["elapsed"] += clock() - t0
        state["wall"] += time.perf_counter() - w0
        state["cpu"] += time.process_time() - c0
        state["step"] += 1
        state["tokens"] += int(y.numel())
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"{arch}: training loss became {loss.item()} at step {state['step']}")
        if state["elapsed"] >= curve_every * len(state["curve"]) or state["elapsed"] >= s.budget_seconds:
            model.eval()
            curve_point()
            model.train()
            save_checkpoint()

    # final evaluation on the whole test stream (the validation number is the last curve point: a prefix of the
    # validation stream, which keeps the evaluation cost of a short CPU run down)
    model.eval()
    t0 = time.perf_counter()
    test = perplexity(arch, model, streams["test"], s) if s.score_test else {"perplexity": None, "tokens": 0}
    eval_wall = time.perf_counter() - t0
    result = {
        "architecture": arch, "label": LABELS[arch], "parameters": n_params, "shape": shape, "learning_rate": lr,
        "steps": state["step"], "train_tokens": state["tokens"],
        "epochs": round(state["tokens"] / max(1, len(streams["train"])), 3),
        "budget_clock": s.budget_clock, "train_seconds": round(state["elapsed"], 1),
        "train_wall_seconds": round(state["wall"], 1), "train_cpu_seconds": round(state["cpu"], 1),
        "tokens_per_second": round(state["tokens"] / max(state["elapsed"], 1e-9), 1),
        "tokens_per_wall_second": round(state["tokens"] / max(state["wall"], 1e-9), 1),
        "test_perplexity": None if test["perplexity"] is None else round(test["perplexity"], 2),
        "test_tokens_scored": test["tokens"],
        "validation_perplexity": state["curve"][-1]["valid_perplexity"],
        "validation_tokens_scored": min(s.curve_eval_tokens, len(streams["validation"])) - 1,
        "eval_tokens_per_wall_second": round(test["tokens"] / max(eval_wall, 1e-9), 1),
        "evaluation": "sliding window 2*bptt, stride bptt" if arch == "transformer" else "stateful, batch 10 x bptt",
        "peak_rss_mb": round(peak_rss_mb(), 1), "rss_before_model_mb": round(rss_before, 1),
        "resumed_from_steps": state["resumed_from"], "curve": state["curve"], "threads": s.threads,
    }
    model.save_pretrained(os.path.join(out_dir, "model"))
    write_json(result_path, result)
    return result


# -------------------------------------------------------------------------------------------------------------- driver
def lr_of(arch: str, s: LMSettings) -> float:
    return float((s.learning_rates or {}).get(arch, s.learning_rate))


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
                              "learning_rates": None, "lr_sweep": None, "curve_points": 2, "score_test": False})
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


def run(s: LMSettings, run_dir: str, results_dir: str, quick: bool, jobs: int = 1) -> dict:
    """Train every architecture (in subprocesses when `jobs` >= 1, in this process when 0), then plot and collect.
    With `lr_sweep`, a short run per (architecture, rate) first picks each architecture's rate."""
    meta = prepare_data(s, run_dir, quick)
    sweep = None
    if s.lr_sweep:
        sweep = run_sweep(s, run_dir, jobs)
        s.learning_rates = {arch: v["best"] for arch, v in sweep.items()}
        print(f"[lm] rates picked by the sweep: {s.learning_rates}", flush=True)
    write_json(os.path.join(run_dir, "settings.json"), asdict(s))
    todo = [a for a in s.archs if not os.path.isfile(os.path.join(run_dir, a, "result.json"))]
    skipped = [a for a in s.archs if a not in todo]
    if skipped:
        print(f"[lm] finished earlier, skipped: {', '.join(skipped)}", flush=True)
    _run_workers([(a, run_dir) for a in todo], s, jobs)
    results = [read_json(os.path.join(run_dir, a, "result.json")) for a in s.archs]
    plots = {"curve": plot_curves(results, os.path.join(results_dir, "lm_curve.png"), s)}
    return {"data": meta, "settings": asdict(s), "models": results, "lr_sweep": sweep,
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
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def settings_from(overrides: dict, quick: bool) -> LMSettings:
    s = LMSettings(**(QUICK if quick else {}))
    for k, v in overrides.items():
        if not hasattr(s, k):
            raise ValueError(f"unknown lm setting {k!r}; known: {sorted(asdict(s))}")
        setattr(s, k, v)
    return s


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
