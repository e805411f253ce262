"""study.json -> REPORT.md: tables of every subset's numbers (all formatted with `common.fmt`) and the PNG plots."""

from __future__ import annotations

from .common import fmt

# (header, key) per table; the test parses the rendered tables back and compares them with the JSON via these specs
LM_COLUMNS = [
    ("Model", "label"), ("Parameters", "parameters"), ("Shape", "shape"), ("Adam lr", "learning_rate"), ("Steps", "steps"),
    ("Train tokens", "train_tokens"), ("Epochs", "epochs"), ("Train s (budget clock)", "train_seconds"),
    ("Train wall s", "train_wall_seconds"), ("Tokens/s", "tokens_per_second"), ("Valid-prefix ppl", "validation_perplexity"),
    ("Test ppl", "test_perplexity"), ("Peak RSS MB", "peak_rss_mb"),
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
    ("Epochs", "epochs"), ("Train wall s", "train_seconds"), ("Train CPU s", "train_cpu_seconds"), ("BLEU", "test_bleu"),
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


def _lm(sec: dict) -> list[str]:
    s = sec["settings"]
    clock = "CPU seconds of one thread" if s["budget_clock"] == "cpu" else "wall-clock seconds"
    out = [
        "## 1. Language modelling (RNN vs GRU vs LSTM vs Transformer decoder)", "",
        f"Data: {sec['data']['source']}; {sec['data']['tokenizer']}; vocabulary {fmt(sec['data']['vocab_size'])}; "
        f"tokens train/valid/test {', '.join(fmt(v) for v in sec['data']['tokens'].values())}.",
        f"Budget: {fmt(float(s['budget_seconds']))} {clock} of training per model (evaluation excluded), "
        f"{s['threads']} thread, Adam lr "
        f"{'per model (table; picked by the sweep below)' if sec.get('lr_sweep') else s['learning_rate']}, warm-up "
        f"{s['warmup_steps']} steps, clip "
        f"{s['max_grad_norm']}, dropout {s['dropout']}, seed {s['seed']}. Every model is sized to "
        f"{fmt(s['target_parameters'])} parameters ({s['num_layers']} layers, tied input/output embeddings) and sees "
        f"{s['batch_size'] * s['bptt']} tokens per step of the same contiguous stream: recurrent models "
        f"{s['batch_size']} x {s['bptt']} with the state carried across batches (truncated BPTT), the Transformer "
        f"{s['batch_size'] // 2} x {2 * s['bptt']} with no state.",
        f"Test perplexity = exp(token-weighted mean NLL) over the whole test split (valid-prefix: the first "
        f"{fmt(s['curve_eval_tokens'])} validation tokens, the last point of the curve): recurrent models with the state carried "
        f"(batch 10 x {s['bptt']}), the Transformer with a sliding window of {2 * s['bptt']} tokens, stride "
        f"{s['bptt']} (every scored token sees >= {s['bptt']} tokens of context). Tokens/s counts training tokens "
        "per second of the budget clock; peak RSS is the worker process's (Python + torch included; the RSS before "
        "the model was built is in the JSON).", "",
        table(sec["models"], LM_COLUMNS), "",
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
                "later; the table above ranks the architectures with these rates over this budget (about 1-2 "
                "epochs, no dropout), not at convergence (section 1b: LSTMs trained to the end)."
                + (f" Picked at the edge of the grid (a wider grid might do better): {', '.join(edge)}." if edge
                   else ""), ""]
    else:
        out += ["One optimizer setting is shared by every model, with no per-model tuning: the table ranks how far "
                "each architecture gets with it in the budget, not the best each can do (section 1b: an LSTM with "
                "its own recipe).", ""]
    resumed = [f"{r['label']} (from step {', '.join(map(str, r['resumed_from_steps']))})" for r in sec["models"]
               if r.get("resumed_from_steps")]
    if resumed:
        out += ["Interrupted and resumed from their checkpoints: " + "; ".join(resumed) + ". The budget clock and "
                "`Train wall s` add up every attempt; wall time was 10-15x the CPU time because the 2 cores were "
                "shared with other jobs.", ""]
    if sec.get("skipped_finished"):
        out += [f"Reused finished runs (not retrained on this invocation): {', '.join(sec['skipped_finished'])}.", ""]
    return out


def _lm_recipes(sec: dict) -> list[str]:
    out = ["## 1b. PTB LSTM recipes trained to the end (Zaremba et al. reproduction, our one-hour recipe)", ""]
    if sec["recipes"]:
        out += [
            "Each row is a finished `training/train_lm.py` run of the named config (command: `OMP_NUM_THREADS=<threads> "
            "python training/train_lm.py <config>`), read from its run folder: perplexity over the whole validation "
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
    if study.get("not_run"):
        lines += ["## Not run here", ""] + [f"- {x}" for x in study["not_run"]] + [""]
    return "\n".join(lines)
