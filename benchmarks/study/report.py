"""study.json -> REPORT.md: tables of every subset's numbers (all formatted with `common.fmt`) and the PNG plots."""

from __future__ import annotations

from .common import fmt

# (header, key) per table; the test parses the rendered tables back and compares them with the JSON via these specs
LM_COLUMNS = [
    ("Model", "label"), ("Parameters", "parameters"), ("Shape", "shape"), ("Recipe", "recipe_text"),
    ("Seeds", "seeds_text"), ("Threads", "threads"), ("Budget s", "budget_seconds"), ("Steps", "steps"),
    ("Epochs", "epochs"), ("Train CPU s", "train_cpu_seconds"), ("Train wall s", "train_wall_seconds"),
    ("Load (1 min)", "load_1min_at_end"), ("Tokens/s", "tokens_per_second"),
    ("Valid-prefix ppl", "validation_perplexity"), ("Test ppl (mean)", "test_perplexity"),
    ("Test ppl std", "test_perplexity_std"), ("Still improving", "still_improving"), ("Peak RSS MB", "peak_rss_mb"),
]
LM_RECIPE_COLUMNS = [
    ("Recipe", "label"), ("Config", "config_file"), ("Parameters", "parameters"), ("Epochs", "epochs"),
    ("Train h", "train_hours"), ("Threads", "threads"), ("Valid ppl", "validation_perplexity"),
    ("Test ppl", "test_perplexity"), ("Reference", "reference"), ("Reference test ppl", "reference_test_perplexity"),
    ("Test - reference", "test_minus_reference"),
]
LONG_RANGE_COLUMNS = [
    ("Setting", "setting"), ("Cell", "cell"), ("grad k=1", "grad_k1"), ("grad k=10", "grad_k10"),
    ("grad k=max", "grad_kmax"), ("ratio k=max / k=1", "ratio_kmax_k1"), ("decay per step", "decay_per_step"),
    ("train loss", "train_loss"),
]
TRANSLATION_COLUMNS = [
    ("System", "label"), ("Parameters", "parameters"), ("Budget min", "train_budget_minutes"), ("Steps", "steps"),
    ("Epochs", "epochs"), ("Train wall s", "train_seconds"), ("Train CPU s", "train_cpu_seconds"), ("Threads", "threads"),
    ("Seeds", "seed"), ("Load (1 min)", "load_1min"), ("BLEU", "test_bleu"),
    ("chrF", "test_chrf"), ("Beams", "test_num_beams"), ("Test sentences/s", "sentences_per_second"),
]


def _cell(value, key: str) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    small = isinstance(value, float) and abs(value) < 1
    digits = 3 if small or key.startswith(("grad_", "ratio_", "decay_")) else 2
    return fmt(value, digits).replace("|", "\\|")


def table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    lines = ["| " + " | ".join(h for h, _ in columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        lines.append("| " + " | ".join(_cell(r.get(k), k) for _, k in columns) + " |")
    return "\n".join(lines)


def LABELS_OF(sec: dict, arch: str) -> str:  # noqa: N802
    return next((m["label"] for m in sec["models"] if m["architecture"] == arch), arch)


def lm_row_view(m: dict, settings: dict | None = None) -> dict:
    """The derived cells of an LM row: recipe and seeds as text, and whether the validation curve still fell by more
    than 1 % over its last interval (then the row is not converged: its rank can change with a longer budget).
    Rows of the former hand-written loop carry no recipe: theirs is the section's settings (Adam, one dropout)."""
    s = settings or {}
    r = m.get("recipe") or {"optimizer": "adam", "learning_rate": m.get("learning_rate"),
                              "dropout": s.get("dropout", 0.0), "schedule": "constant"}
    text = f"{r['optimizer']} lr {r['learning_rate']}, dropout {r['dropout']}, {r['schedule']}"
    curve = m.get("curve") or []
    improving = None
    if len(curve) >= 2:
        improving = curve[-1]["valid_perplexity"] < 0.99 * curve[-2]["valid_perplexity"]
    loads = [x.get("load_1min_at_end") for x in m.get("runs", [m]) if x.get("load_1min_at_end") is not None]
    return {**m, "recipe_text": text, "budget_seconds": m.get("budget_seconds", s.get("budget_seconds")), "seeds_text": ", ".join(str(x) for x in m.get("seeds") or [m.get("seed", 0)]),
            "still_improving": improving, "load_1min_at_end": m.get("load_1min_at_end")
            if not loads else round(max(loads), 2)}


def _lm(sec: dict) -> list[str]:
    s = sec["settings"]
    clock = "CPU seconds of one thread" if s["budget_clock"] == "cpu" else "wall-clock seconds"
    rows = [lm_row_view(m, s) for m in sec["models"]]
    on_trainer = all(m.get("trainer") for m in sec["models"])
    peer = any(m["architecture"] not in ("rnn", "gru", "lstm", "transformer") for m in sec["models"])
    improving = [r["label"] for r in rows if r["still_improving"]]
    epochs = [r["epochs"] for r in rows if r.get("epochs") is not None]
    budget = float(s["budget_seconds"])
    out = [
        "## 1. Language modelling (RNN vs GRU vs LSTM vs Transformer decoder"
        + (", and the PyTorch LSTM peer)" if peer else ")"), "",
        f"**Budget and convergence: {fmt(budget)} {clock} of training per model and seed"
        + (f" ({fmt(min(epochs))}-{fmt(max(epochs))} epochs)" if epochs else "")
        + ". No row is trained to convergence"
        + (f"; the validation curve was still falling >1 % over the last interval for: {', '.join(improving)}"
           if improving else "") + ". The table ranks what each recipe reaches in this budget, NOT the "
        "architectures at convergence (section 1b of benchmarks/results/study/REPORT.md: LSTMs trained to the end). "
        + ("Recipes are the `RECIPES` table of benchmarks/study/lm.py (column `Recipe`); none was tuned at "
           "convergence.**" if on_trainer else "One shared recipe (Adam, the sweep's rate per model, no dropout), "
           "not tuned at convergence.**"), "",
        f"Data: {sec['data']['source']}; {sec['data']['tokenizer']}; vocabulary {fmt(sec['data']['vocab_size'])}; "
        f"tokens train/valid/test {', '.join(fmt(v) for v in sec['data']['tokens'].values())}.",
        (f"Training: `transformers.Trainer` (hf_seq's `StatefulLMTrainer` for the recurrent models, state carried "
         f"across batches and checkpoints; plain next-token loss for the Transformer), {s['threads']} thread, the "
         "budget measured by the study's `step_clock` callback (process CPU seconds inside training steps, counted "
         "across resumes, evaluation excluded); the peer runs its own loop on the same clock. " if on_trainer else
         f"Training: these rows predate the Trainer rewrite of benchmarks/study/lm.py (its former hand-written loop: "
         f"Adam, {s.get('warmup_steps')} warm-up steps, clip {s.get('max_grad_norm')}, the same budget clock: CPU "
         f"seconds inside training steps); {s['threads']} thread; the load average was not recorded per row (n/a). ")
        + "Every model is sized to "
        f"{fmt(s['target_parameters'])} parameters ({s['num_layers']} layers, tied input/output embeddings) and sees "
        f"{s['batch_size'] * s['bptt']} tokens per step of the same contiguous stream: recurrent models "
        f"{s['batch_size']} x {s['bptt']} with the state carried across batches (truncated BPTT), the Transformer "
        f"{s['batch_size'] // 2} x {2 * s['bptt']} with no state. Seeds: {sec.get('seeds', [s['seed']])} "
        "(`Test ppl std`: sample standard deviation over the seeds; n/a for one seed).",
        f"Test perplexity = exp(token-weighted mean NLL) over the whole test split (valid-prefix: the first "
        f"{fmt(s['curve_eval_tokens'])} validation tokens, the last point of the curve): recurrent models with the "
        f"state carried (batch 10 x {s['bptt']}), the Transformer with a sliding window of {2 * s['bptt']} tokens, "
        f"stride {s['bptt']} (every scored token sees >= {s['bptt']} tokens of context). Tokens/s counts training "
        "tokens per second of the budget clock; `Load (1 min)` is the machine's 1-minute load average when the row "
        "finished (2 cores shared with other jobs); peak RSS is the worker process's.", "",
        table(rows, LM_COLUMNS), "",
        f"![perplexity vs training time]({sec['plots']['curve']})", "",
    ]
    sweep = sec.get("lr_sweep")
    if sweep:
        rates = list(next(iter(sweep.values()))["valid_perplexity"])
        out += [f"Learning-rate sweep: every model trained {fmt(float(s['sweep_seconds']))} {clock} at each Adam rate "
                "(same data, sizes and seed), ranked by the validation-prefix perplexity at the end; the best rate "
                "(bold) trained the run above. The test split is not used to choose.", "",
                "| Model | " + " | ".join(f"lr {r}" for r in rates) + " |", "|---|" + "---|" * len(rates)]
        for arch, v in sweep.items():
            cells = [(f"**{fmt(p)}**" if float(r) == v["best"] else fmt(p)) for r, p in v["valid_perplexity"].items()]
            label = next((m["label"] for m in sec["models"] if m["architecture"] == arch), arch)
            out.append(f"| {label} | " + " | ".join(cells) + " |")
        grid = sorted(float(r) for r in rates)
        edge = [next((m["label"] for m in sec["models"] if m["architecture"] == a), a) for a, v in sweep.items()
                if len(grid) > 1 and v["best"] in (grid[0], grid[-1])]
        out += ["", f"The sweep ranks rates after {fmt(float(s['sweep_seconds']))} seconds, a fraction of the "
                f"{fmt(float(s['budget_seconds']))}-second budget, where a lower rate can lead early and fall behind "
                "later; the table above ranks the architectures with these rates over this budget, not at "
                "convergence (section 1b: LSTMs trained to the end)."
                + (f" Picked at the edge of the grid (a wider grid might do better): {', '.join(edge)}." if edge
                   else ""), ""]
    sources = "; ".join(f"{LABELS_OF(sec, a)}: {r.get('source')}" for a, r in (sec.get("recipes") or {}).items())
    if sources:
        out += [f"Where each recipe comes from: {sources}.", ""]
    resumed = [f"{r['label']} (from step {', '.join(map(str, r['resumed_from_steps']))})" for r in sec["models"]
               if r.get("resumed_from_steps")]
    if resumed:
        out += ["Interrupted and resumed from their checkpoints: " + "; ".join(resumed) + ". The budget clock and "
                "`Train wall s` add up every attempt.", ""]
    if sec.get("skipped_finished"):
        out += [f"Reused finished runs (not retrained on this invocation): {', '.join(sec['skipped_finished'])}.", ""]
    return out


def _lm_recipes(sec: dict) -> list[str]:
    out = ["## 1b. PTB LSTM recipes trained to the end (Zaremba et al. reproduction, our one-hour recipe)", ""]
    if sec["recipes"]:
        out += [
            "Each row is a finished language-modelling run of the named config (command: `OMP_NUM_THREADS=<threads> "
            "hf-seq train <config>`; the older rows ran the former `training/train_lm.py`), read from its run folder: perplexity over the whole validation "
            "and test streams with the state carried (batch 10), the paper's protocol. `Train h` is the run's wall "
            "time including its per-epoch validation; `Threads` is the torch thread count (n/a: not recorded by that "
            "run; it was started with OMP_NUM_THREADS=1).", "",
            table(sec["recipes"], LM_RECIPE_COLUMNS), "",
        ]
        if sec["plots"].get("curve"):
            protocols = "; ".join(f"{r['label']}: {r['history_protocol']}" for r in sec["recipes"] if r["history"])
            out += [f"![PTB recipes: validation perplexity per epoch]({sec['plots']['curve']})", "",
                    f"The curve is the validation perplexity Trainer logged after every epoch ({protocols}); the "
                    "table's numbers are the final evaluation, state carried.", ""]
    for m in sec.get("missing", []):
        out += [f"- Not in the table: **{m['recipe']}**: {m['reason']}"]
    if sec.get("missing"):
        out += [""]
    return out


def _long_range(sec: dict) -> list[str]:
    s = sec["settings"]
    return [
        "## 2. Long-range gradient: does the signal reach step T-k?", "",
        f"One-layer cells of width {s['hidden_size']} (float64), {s['windows']} windows of {s['max_lag'] + 1} real tokens "
        f"({sec['data']['source']}, vocabulary {fmt(sec['data']['vocab_size'])}); mean over the windows of "
        "||dL_T / dx_{T-k}||, L_T the cross-entropy of the next token at the last step, x the input embeddings. "
        f"k=max is k={s['max_lag']}. decay per step = (grad k=max / grad k=1)^(1/(max-1)). The trained setting is "
        f"{s['train_steps']} Adam steps of stateful LM training ({s['batch_size']} x {s['bptt']}).", "",
        table(sec["rows"], LONG_RANGE_COLUMNS), "",
        f"![gradient norm vs lag]({sec['plots']['gradients']})", "",
    ]


def _translation(sec: dict) -> list[str]:
    out = ["## 3. Translation (Multi30k De->En)", ""]
    if sec["systems"]:
        out += [
            "Each system is its owner's training script and CPU config (`config_file` / `overrides` in the JSON), "
            "trained on one thread for the wall-clock budget in `Budget min` (`data.max_train_minutes`; the machine "
            "was shared, so `Train CPU s` is the fairer measure of the work each system got). Test decoding: the "
            "`Beams` column. Scores are recomputed here from each run's `test_hypotheses.txt` with sacreBLEU "
            "(detokenized, default settings) on the 1,000 sentences of test_2016_flickr; sentences/s is test "
            "decoding speed (batched, one thread).", "",
            table(sec["systems"], TRANSLATION_COLUMNS), "",
        ]
        if any(r["system"] == "luong" for r in sec["systems"]) and not any(r["system"] == "luong_feed"
                                                                          for r in sec["systems"]):
            out += ["The Luong row is Luong et al.'s global attention with the general score but WITHOUT input "
                    "feeding (its config's choice: the decoder then runs as one fused GRU call), and has 1.97M fewer "
                    "parameters than the Bahdanau row; why it trails Bahdanau is measured in the ablation addendum "
                    "(luong_vs_bahdanau_ablation.md). `Seeds`: one seed per system (the config's training.seed), no "
                    "spread yet; `Load`: not recorded by these runs (n/a).", ""]
        cpu = [r["train_cpu_seconds"] for r in sec["systems"] if r.get("train_cpu_seconds")]
        if cpu and max(cpu) > 1.5 * min(cpu):
            out += [f"**Caveat:** equal wall-clock budgets did not give equal work: the training CPU seconds range "
                    f"from {fmt(min(cpu))} to {fmt(max(cpu))} ({max(cpu) / min(cpu):.1f}x): the systems run their "
                    "planned epochs at different speeds, and the shared machine's load changed between runs. Systems trained for a few hundred steps are far from "
                    "converged; this table ranks how far each got in its budget, not the architectures' quality.", ""]
        beams = {r.get("test_num_beams") for r in sec["systems"]}
        if len(beams) > 1:
            out += [f"Decoding differs between rows (beams {sorted(b for b in beams if b is not None)}): see `Beams`.",
                    ""]
        sigs = sorted({(r.get("bleu_signature"), r.get("chrf_signature")) for r in sec["systems"]}, key=str)
        out += [f"sacreBLEU signatures: BLEU `{b}`; chrF `{c}`." for b, c in sigs] + [""]
        buckets = [r for r in sec["systems"] if r.get("bleu_by_source_length")]
        if buckets:
            labels = [b["bucket"] for b in buckets[0]["bleu_by_source_length"]]
            out += ["BLEU by source length (words):", "",
                    "| System | " + " | ".join(labels) + " |", "|" + "---|" * (len(labels) + 1)]
            for r in buckets:
                out.append(f"| {r['label']} | " + " | ".join(fmt(b["bleu"]) for b in r["bleu_by_source_length"])
                           + " |")
            out += [""]
        if sec["plots"].get("bleu_by_length"):
            out += [f"![BLEU by source length]({sec['plots']['bleu_by_length']})", ""]
    for m in sec.get("missing", []):
        out += [f"- Not in the table: **{m['system']}**: {m['reason']}"]
    if sec.get("missing"):
        out += [""]
    timing = sec.get("time_to_bleu")
    if not timing:
        out += ["Training time to a given validation BLEU was not measured: the CPU configs skip validation decoding "
                "(it costs as much as training on this machine).", ""]
        return out
    thresholds = timing["thresholds"]
    out += [f"Training time to a validation BLEU (greedy, the 1,014 validation pairs after every epoch), from "
            f"`{timing['file']}` (command: `{timing['command']}`); wall time since training began, on one CPU thread, "
            "the earlier epochs' validation decoding included:", "",
            "| System | " + " | ".join(f"BLEU {t:g}" for t in thresholds) + " | Best validation BLEU | Epochs |",
            "|" + "---|" * (len(thresholds) + 3)]
    for r in timing["runs"]:
        cells = []
        for t in thresholds:
            seconds = r["time_to"][str(t)]
            bound = "≤ " if (r.get("upper_bound") or {}).get(str(t)) else ""
            cells.append("not reached" if seconds is None else f"{bound}{seconds / 3600:.2f} h")
        out.append(f"| {r['label']} | " + " | ".join(cells)
                   + f" | {fmt(r['best_validation_bleu'])} | {fmt(r['points'][-1]['epoch'])} |")
    out += [""]
    for r in timing["runs"]:
        if r.get("resumed_after"):
            out += [f"{r['label']} resumed from a checkpoint of {', '.join(r['resumed_after'])}, which trained "
                    f"{r['offset_seconds'] / 3600:.2f} h without validation: its first point is an upper bound.", ""]
    if sec["plots"].get("time_to_bleu"):
        out += [f"![validation BLEU against training time]({sec['plots']['time_to_bleu']})", ""]
    return out


def _word_vectors(sec: dict) -> list[str]:
    out = ["## 4. Word vectors (hf-seq word2vec vs gensim)", ""]
    if sec.get("note"):
        out += [sec["note"] + ".", ""]
    for t in sec["tables"]:
        cols = [(c, c) for c in t["columns"]]
        ctx = "; ".join(f"{k}: {v}" for k, v in (t.get("context") or {}).items())
        out += [f"From `{t['file']}` (collected, not rerun{'; ' + ctx if ctx else ''}):", "", table(t["rows"], cols),
                ""]
    return out


def render_report(study: dict) -> str:
    m = study["machine"]
    lines = [
        "# hf-seq side-by-side study", "",
        f"Last generated by `{study['command']}` at {study['finished_at']} UTC (each section names the command that "
        "produced it; sections not rerun keep their earlier numbers)"
        + (" — **quick mode (smoke sizes, the numbers mean nothing)**" if study["quick"] else "") + ".", "",
        f"Machine: {m['platform']}, {m['cpu_count']} CPUs ({m['processor']}), 1-minute load average at start "
        f"{fmt(m['load_average_1min_at_start'])} (the cores were shared with other jobs). Python {m['python']}; "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items())
        + f". Commit `{m['git']['commit']}`{' (with uncommitted changes)' if m['git']['dirty'] else ''}. "
        f"Seeds: {study['seeds']}. Machine-readable numbers: `study.json` beside this file.", "",
    ]
    render = {"lm": _lm, "lm_recipes": _lm_recipes, "long_range": _long_range, "translation": _translation,
              "word_vectors": _word_vectors}
    for name in ("lm", "lm_recipes", "long_range", "translation", "word_vectors"):
        if name in study["subsets"]:
            sec = study["subsets"][name]
            part = render[name](sec)
            if sec.get("command"):
                part[1:1] = ["", f"Command: `OMP_NUM_THREADS=1 {sec['command']}`"]
            lines += part
    if study.get("addenda"):
        lines += ["## Addenda (measured separately, each file states its command, machine, load, threads, CPU "
                  "seconds and seeds)", ""] + [f"- [{a['what']}]({a['file']})" + (f" — {a['numbers']}." if a.get("numbers") else "")
                  for a in study["addenda"]] + [""]
    if study.get("not_run"):
        lines += ["## Not run here", ""] + [f"- {x}" for x in study["not_run"]] + [""]
    return "\n".join(lines)
