"""Inference speed side by side (issue #21): hf-seq eager / compiled / ONNX Runtime / CTranslate2 (fp32, int8) against
transformers' MarianMTModel and Marian → CTranslate2, at the same dimensions and random weights; plus the recurrent
LMs eager vs ONNX Runtime (and int8) at batch 1.

    python benchmarks/bench_inference.py            # writes benchmarks/results/inference_speed.{json,md}
    python benchmarks/bench_inference.py --quick    # a smoke run (tiny sizes), results to a temp folder

Speed: every path of a group (the translation paths at one thread count; the four paths of one recurrent LM) is
loaded in ONE fresh `python` process with OMP_NUM_THREADS (and the engine's own thread setting) at the group's thread
count, and the paths' runs are interleaved (repeat r runs every path once, in an order rotated by r), so that a change
in the shared machine's load hits every path alike; each cell reports the median. Every run generates exactly
`--new-tokens` tokens per sentence (end tokens suppressed). The batch-1 cells translate `--b1-sentences` sentences one
at a time. hf-seq → CTranslate2 and Marian → CTranslate2 at batch-1 greedy also get a head-to-head of
`--ct2-repeats` interleaved pairs (median of the per-pair ratios).

Peak memory: a separate fresh process per path that imports only what the path needs, loads it and runs its largest
cell once, reporting its VmHWM (peak RSS since exec; `ru_maxrss` would carry the parent's peak over a fork).

Load: every group process reports the CPU time the OTHER processes of the machine used while it ran (from /proc/stat,
minus the group's own CPU time), in cores. A two-thread group starts only when two cores look idle (fewer than
`--idle-cores` of other work over a 2-s sample, waiting up to `--idle-wait` seconds), and its rows are marked
contended when others used more than that while it ran. Quality: with random weights there is no BLEU to report; the
table gives the share of batch-32 greedy outputs identical, token for token, to the eager model of the same family.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
LOOP = " (transformers' loop)"  # the same eager model with model.lean_decoding = False: transformers' decode loop
SEQ2SEQ_PATHS = ["hf-seq eager", "hf-seq eager" + LOOP, "hf-seq ONNX Runtime", "hf-seq CTranslate2 fp32", "hf-seq CTranslate2 int8",
                 "Marian eager", "Marian CTranslate2 fp32"]  # fmt: skip
COMPILED_PATHS = ["hf-seq eager", "hf-seq compiled"]  # its own group: compiling takes minutes on a small machine
CT2_PAIR = ["hf-seq CTranslate2 fp32", "Marian CTranslate2 fp32"]
LM_PATHS = ["eager", "eager" + LOOP, "eager int8 (torch dynamic)", "ONNX Runtime", "ONNX Runtime int8"]
LM_KINDS = ("lstm", "gru", "rnn")
SEQ2SEQ_CELLS = ["b1_beam1", "b1_beam4", "b32_beam1", "b32_beam4"]


def _dims(quick: bool) -> dict:
    if quick:
        return dict(vocab=500, d_model=32, d_ff=64, heads=4, layers=1, lm_hidden=32, lm_vocab=500)
    return dict(vocab=8000, d_model=256, d_ff=1024, heads=4, layers=3, lm_hidden=650, lm_vocab=10000)


def _spread(model, seed=1):
    """Random weights wide enough that greedy decoding varies between sentences (checks agreement meaningfully)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 2:
                p.copy_(torch.randn(p.shape, generator=g) * 1.5 / p.shape[1] ** 0.5)
    return model.eval()


# --- preparation (parent process) ----------------------------------------------------------------------------------
def prepare(work: str, dims: dict) -> None:
    import torch
    from transformers import MarianConfig, MarianMTModel

    import hf_seq
    from hf_seq.export import to_ctranslate2, to_onnx

    torch.manual_seed(0)
    cfg = hf_seq.TransformerConfig(vocab_size=dims["vocab"], hidden_size=dims["d_model"],
                                   intermediate_size=dims["d_ff"], num_attention_heads=dims["heads"],
                                   encoder_layers=dims["layers"], decoder_layers=dims["layers"], dropout=0.0,
                                   max_position_embeddings=256)  # fmt: skip
    model = _spread(hf_seq.TransformerForConditionalGeneration(cfg))
    model.save_pretrained(f"{work}/hfseq")
    to_ctranslate2(model, f"{work}/hfseq_ct2")
    to_ctranslate2(model, f"{work}/hfseq_ct2_int8", quantization="int8")
    to_onnx(model, f"{work}/hfseq_onnx")

    mcfg = MarianConfig(vocab_size=dims["vocab"], d_model=dims["d_model"], encoder_ffn_dim=dims["d_ff"],
                        decoder_ffn_dim=dims["d_ff"], encoder_layers=dims["layers"], decoder_layers=dims["layers"],
                        encoder_attention_heads=dims["heads"], decoder_attention_heads=dims["heads"],
                        max_position_embeddings=256, pad_token_id=dims["vocab"] - 1, eos_token_id=2, bos_token_id=1,
                        decoder_start_token_id=dims["vocab"] - 1, forced_eos_token_id=None, scale_embedding=True,
                        dropout=0.0, share_encoder_decoder_embeddings=True)  # fmt: skip
    marian = _spread(MarianMTModel(mcfg))
    marian.save_pretrained(f"{work}/marian")
    tok = _word_tokenizer(dims["vocab"])
    tok.save_pretrained(f"{work}/marian")
    from ctranslate2.converters import TransformersConverter

    TransformersConverter(f"{work}/marian").convert(f"{work}/marian_ct2", force=True)

    for kind in ("lstm", "gru", "rnn"):
        cls = {"lstm": hf_seq.LSTMForCausalLM, "gru": hf_seq.GRUForCausalLM, "rnn": hf_seq.RNNForCausalLM}[kind]
        conf = {"lstm": hf_seq.LSTMConfig, "gru": hf_seq.GRUConfig, "rnn": hf_seq.RNNConfig}[kind]
        lm = cls(conf(vocab_size=dims["lm_vocab"], hidden_size=dims["lm_hidden"], embedding_size=dims["lm_hidden"],
                      num_hidden_layers=2, initializer_range=0.1)).eval()  # fmt: skip
        lm.save_pretrained(f"{work}/{kind}")
        to_onnx(lm, f"{work}/{kind}_onnx")
        to_onnx(lm, f"{work}/{kind}_onnx_int8", quantize="int8")


def _word_tokenizer(vocab: int):
    """A word-level tokenizer with exactly `vocab` tokens, `<pad>` last as in Marian vocabularies (CTranslate2's Marian
    loader drops that row: the decoder starts from a zero embedding instead), for the Marian → CTranslate2 converter."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<unk>", "<bos>", "<eos>"] + [f"w{i}" for i in range(3, vocab - 1)] + ["<pad>"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", bos_token="<bos>",
                                   eos_token="<eos>")  # fmt: skip


# --- runners (child processes) ------------------------------------------------------------------------------------
def _sources(batch: int, vocab: int, seed: int = 0) -> list[list[int]]:
    import random

    rng = random.Random(seed)
    return [[rng.randrange(4, vocab) for _ in range(rng.randint(8, 24))] for _ in range(batch)]


def _padded(sources):
    import torch

    S = max(len(s) for s in sources)
    ids = torch.ones(len(sources), S, dtype=torch.long)
    mask = torch.zeros(len(sources), S, dtype=torch.long)
    for i, s in enumerate(sources):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
    return ids, mask


def _ct2_runner(path: str, work: str, threads: int):
    """A CTranslate2 path; imports neither torch nor transformers (its peak RSS is the engine's own)."""
    import ctranslate2

    folder = {"hf-seq CTranslate2 fp32": "hfseq_ct2", "hf-seq CTranslate2 int8": "hfseq_ct2_int8",
              "Marian CTranslate2 fp32": "marian_ct2"}[path]  # fmt: skip
    translator = ctranslate2.Translator(f"{work}/{folder}", device="cpu", intra_threads=threads, inter_threads=1)
    marian = path.startswith("Marian")  # tokens: the ids as strings for hf-seq exports, w{id} for Marian's

    def tok(i):
        return f"w{i}" if marian else str(i)  # sources hold ids 4 .. vocab-2 only

    def untok(t):
        return int(t[1:]) if marian and t.startswith("w") else (int(t) if not marian else -1)

    def run(sources, beams, n):
        res = translator.translate_batch([[tok(i) for i in s] for s in sources], beam_size=beams,
                                         max_decoding_length=n, min_decoding_length=n)  # fmt: skip
        return [[untok(t) for t in r.hypotheses[0]] for r in res]

    return run


def _seq2seq_runner(path: str, work: str, threads: int):
    """A function (sources, beams, new_tokens) -> list of generated id lists, for one path."""
    if "CTranslate2" in path:
        return _ct2_runner(path, work, threads)
    import torch

    torch.set_num_threads(threads)
    if path == "hf-seq ONNX Runtime":
        from hf_seq.export import load_runner

        model = load_runner(f"{work}/hfseq_onnx", num_threads=threads)
    elif path.startswith("Marian"):
        from transformers import MarianMTModel

        model = MarianMTModel.from_pretrained(f"{work}/marian").eval()
    else:
        from transformers import AutoModelForSeq2SeqLM

        import hf_seq  # noqa: F401  (registers the Auto classes)

        model = AutoModelForSeq2SeqLM.from_pretrained(f"{work}/hfseq").eval()
        # the compiled forward runs only in transformers' loop (the lean loop would bypass it)
        model.lean_decoding = not path.endswith(LOOP) and path != "hf-seq compiled"
        if path == "hf-seq compiled":
            model.forward = torch.compile(model.forward, dynamic=True)

    def run(sources, beams, n):
        ids, mask = _padded(sources)
        with torch.no_grad():
            out = model.generate(input_ids=ids, attention_mask=mask, num_beams=beams, max_new_tokens=n,
                                 min_new_tokens=n, do_sample=False)  # fmt: skip
        return [row[1:].tolist() for row in out]

    return run


def _lm_runner(path: str, kind: str, work: str, threads: int):
    import torch

    torch.set_num_threads(threads)
    if path.startswith("ONNX"):
        from hf_seq.export import load_runner

        model = load_runner(f"{work}/{kind}_onnx" + ("_int8" if "int8" in path else ""), num_threads=threads)
    else:
        from transformers import AutoModelForCausalLM

        import hf_seq  # noqa: F401

        model = AutoModelForCausalLM.from_pretrained(f"{work}/{kind}").eval()
        model.lean_decoding = not path.endswith(LOOP)
        if "int8" in path:
            from hf_seq.export import quantize_dynamic_int8

            model = quantize_dynamic_int8(model, inplace=True)

    def run(prompt, n):
        with torch.no_grad():
            out = model.generate(input_ids=torch.tensor([prompt]), max_new_tokens=n, min_new_tokens=n, do_sample=False)
        return out[0, len(prompt) :].tolist()

    return run


def _cell_calls(args, family: str, run, cell: str):
    """(a no-argument call that runs the cell once and returns its outputs, new tokens it generates)."""
    n, dims = args.new_tokens, _dims(args.quick)
    if family != "seq2seq":
        prompt = _sources(1, dims["lm_vocab"], seed=1)[0][:10]
        return (lambda: run(prompt, n)), n
    batch, beams = (int(x) for x in cell[1:].split("_beam"))
    if batch == 1:  # one sentence at a time
        sources = _sources(args.b1_sentences, dims["vocab"])
        return (lambda: [out for s in sources for out in run([s], beams, n)]), len(sources) * n
    sources = _sources(batch, dims["vocab"])
    return (lambda: run(sources, beams, n)), batch * n


def _vm_hwm_mb() -> float:
    """This process's peak RSS. VmHWM restarts at exec; ru_maxrss would carry the parent's peak over the fork."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _make_runner(args, path: str):
    if args.family == "seq2seq":
        return _seq2seq_runner(path, args.work, args.threads)
    return _lm_runner(path, args.family, args.work, args.threads)


def run_group(args) -> dict:
    """Load every path of the group, then time the cells with the paths interleaved. Writes the result to
    `args.result` after every cell, so a group stopped by its time limit still reports what it measured."""
    paths, cells = args.paths.split("|"), args.cells.split(",")
    result = {"paths": {}, "cells": cells, "pairs": {}}

    def save():
        with open(args.result + ".tmp", "w") as f:
            json.dump(result, f)
        os.replace(args.result + ".tmp", args.result)

    runners = {}
    for path in paths:
        t0 = time.perf_counter()
        try:
            runners[path] = _make_runner(args, path)
            result["paths"][path] = {"load_s": time.perf_counter() - t0, "cells": {}}
        except Exception as e:  # a path that cannot load (a missing engine) must not hide the others
            result["paths"][path] = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
    save()
    for cell in cells:
        calls = {p: _cell_calls(args, args.family, runners[p], cell) for p in runners}
        warm = {}
        for p, (call, _) in list(calls.items()):
            try:  # warm-up (and compilation)
                t0 = time.perf_counter()
                result["paths"][p]["cells"].setdefault(cell, {})["outputs"] = call()
                warm[p] = time.perf_counter() - t0
            except Exception as e:  # a path that fails a cell leaves the group; the others go on
                result["paths"][p]["error"] = f"{cell}: {type(e).__name__}: {str(e)[:300]}"
                del calls[p], runners[p]
        times = {p: [] for p in runners}
        order = list(runners)
        # cheap cells get more repeats (up to 4x): a fraction-of-a-second run is the most exposed to the machine's load
        one_round = sum(warm.values())
        repeats = max(args.repeats, min(4 * args.repeats, math.ceil(args.min_cell_seconds / max(one_round, 1e-3))))
        result["repeats"] = {**result.get("repeats", {}), cell: repeats}
        for r in range(repeats):
            for p in order[r % len(order) :] + order[: r % len(order)]:
                t0 = time.perf_counter()
                calls[p][0]()
                times[p].append(time.perf_counter() - t0)
        for p, ts in times.items():
            med = statistics.median(ts)
            result["paths"][p]["cells"][cell].update(seconds=med, tokens_per_s=calls[p][1] / med, runs=ts)
        if len(order) == 2:  # a head-to-head: the ratio within each interleaved pair of runs
            a, b = order
            result["pairs"][cell] = [tb / ta for ta, tb in zip(times[a], times[b])]
        save()
    return result


def run_probe(args) -> dict:
    """Peak RSS of one path alone: imports, load, and its largest cell once."""
    run = _make_runner(args, args.paths)
    after_load = _vm_hwm_mb()
    cell = "b32_beam4" if args.family == "seq2seq" else "b1_beam1"
    _cell_calls(args, args.family, run, cell)[0]()
    return {"peak_rss_mb": _vm_hwm_mb(), "rss_after_load_mb": after_load, "cell": cell}


# --- driver --------------------------------------------------------------------------------------------------------
def _cpu_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat (idle and iowait count as not busy)."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values) - idle, sum(values)


def others_cores(seconds: float = 2.0) -> float:
    """Cores' worth of CPU the machine's processes used over a short sample (this script sleeps meanwhile)."""
    busy0, _ = _cpu_jiffies()
    time.sleep(seconds)
    busy1, _ = _cpu_jiffies()
    return (busy1 - busy0) / os.sysconf("SC_CLK_TCK") / seconds


def _child(args, mode: str, family: str, paths: str, threads: int, timeout: float, cells: str = "",
           repeats: int = 0) -> dict:  # fmt: skip
    """Run this script in a fresh process; returns its result plus the other processes' CPU use meanwhile."""
    fd, result_file = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    os.unlink(result_file)
    cmd = [sys.executable, os.path.abspath(__file__), f"--{mode}", paths, "--family", family, "--threads", str(threads),
           "--work", args.work, "--new-tokens", str(args.new_tokens), "--repeats", str(repeats), "--cells", cells,
           "--b1-sentences", str(args.b1_sentences), "--result", result_file]  # fmt: skip
    if args.quick:
        cmd.append("--quick")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), HF_HUB_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false")  # fmt: skip
    busy0, _ = _cpu_jiffies()
    child0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    error = None
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            error = f"exit {proc.returncode}: {((proc.stderr.strip().splitlines() or ['?'])[-1])[:300]}"
    except subprocess.TimeoutExpired:
        error = f"stopped at its {timeout:.0f} s limit"
    wall = time.perf_counter() - t0
    busy1, _ = _cpu_jiffies()
    child1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = (child1.ru_utime - child0.ru_utime) + (child1.ru_stime - child0.ru_stime)
    result = {}
    if os.path.isfile(result_file):
        with open(result_file) as f:
            result = json.load(f)
        os.unlink(result_file)
    if error:
        result["error"] = error
    result.update(wall_s=wall, own_cpu_s=own,
                  others_cores=max(0.0, (busy1 - busy0) / os.sysconf("SC_CLK_TCK") - own) / wall)  # fmt: skip
    return result


def _wait_for_idle(args, threads: int) -> tuple[bool, float]:
    """True when `threads` cores look free: the other processes use at most ncpu - threads + idle_cores."""
    limit = (os.cpu_count() or 1) - threads + args.idle_cores
    deadline = time.monotonic() + args.idle_wait
    while True:
        used = others_cores()
        if used <= limit or time.monotonic() > deadline:
            return used <= limit, used
        time.sleep(5)


def agreement(a, b) -> float | None:
    if a is None or b is None:
        return None
    return sum(x == y for x, y in zip(a, b)) / len(a)


def measure(args) -> dict:
    """Every group and probe; returns the raw results (see write_results for the tables)."""
    data = {"groups": [], "probes": {}, "skipped": []}
    skip = set(filter(None, args.skip.split(",")))
    log = sys.stderr.write

    def group(name, family, paths, threads, cells, repeats, timeout):
        paths = [p for p in paths if p not in skip]
        if len(paths) < 2:
            return
        if threads > 1:
            idle, used = _wait_for_idle(args, threads)
            if not idle:
                data["skipped"].append(f"{name} @{threads} threads: other processes used {used:.1f} of "
                                       f"{os.cpu_count()} cores")  # fmt: skip
                log(f"skipped {name} @{threads}: others used {used:.1f} cores\n")
                return
        res = _child(args, "group", family, "|".join(paths), threads, timeout, ",".join(cells), repeats)
        res.update(name=name, family=family, threads=threads)
        data["groups"].append(res)
        log(f"{name} @{threads}: {res.get('error', 'ok')} in {res['wall_s']:.0f} s, others used "
            f"{res['others_cores']:.2f} cores\n")  # fmt: skip

    for threads in args.thread_list:
        group("translation", "seq2seq", SEQ2SEQ_PATHS, threads, SEQ2SEQ_CELLS, args.repeats, args.group_timeout)
        group("CTranslate2 head-to-head", "seq2seq", CT2_PAIR, threads, ["b1_beam1"], args.ct2_repeats,
              args.group_timeout)  # fmt: skip
    if args.with_compiled:
        group("compiled", "seq2seq", COMPILED_PATHS, args.thread_list[0], SEQ2SEQ_CELLS, args.repeats,
              args.compile_timeout)  # fmt: skip
    for kind in LM_KINDS:
        paths = [p for p in LM_PATHS if not (kind == "rnn" and "torch dynamic" in p)]  # no quantized nn.RNN in torch
        group(kind, kind, paths, 1, ["b1_beam1"], args.lm_repeats, args.group_timeout)
    if not args.no_probes:
        probes = [("seq2seq", p) for p in SEQ2SEQ_PATHS if p not in skip and not p.endswith(LOOP)]
        probes += [(k, p) for k in LM_KINDS for p in LM_PATHS
                   if not (k == "rnn" and "torch dynamic" in p) and not p.endswith(LOOP)]  # fmt: skip
        for family, path in probes:
            res = _child(args, "probe", family, path, 1, args.group_timeout)
            data["probes"][f"{family}|{path}"] = res
            log(f"probe {family} {path}: {res.get('error') or round(res['peak_rss_mb'])} MB\n")
    return data


# --- results -------------------------------------------------------------------------------------------------------
def _fmt(x, spec=".0f"):
    return "–" if x is None else format(x, spec)


def _speed(group, path, cell):
    return group["paths"].get(path, {}).get("cells", {}).get(cell, {}).get("tokens_per_s")


def _vocab_size(work: str | None, folder: str):
    path = os.path.join(work or "", folder, "shared_vocabulary.json")
    if not os.path.isfile(path):
        return "?"
    with open(path) as f:
        return len(json.load(f))


def write_results(data, args, out_dir, started, elapsed, load_start) -> None:
    import ctranslate2
    import onnxruntime
    import torch
    import transformers

    dims = _dims(args.quick)
    ncpu = os.cpu_count() or 1
    for g in data["groups"]:
        g["contended"] = g["threads"] > 1 and g["others_cores"] > ncpu - g["threads"] + args.idle_cores
        ref_cell = "b32_beam1" if g["family"] == "seq2seq" else "b1_beam1"
        for path, r in g["paths"].items():
            base = (
                "Marian eager"
                if path.startswith("Marian")
                else ("hf-seq eager" if g["family"] == "seq2seq" else "eager")
            )
            mine = r.get("cells", {}).get(ref_cell, {}).get("outputs")
            ref = g["paths"].get(base, {}).get("cells", {}).get(ref_cell, {}).get("outputs")
            r["agreement_with_eager"] = agreement(mine, ref) if g["family"] == "seq2seq" else (
                None if mine is None or ref is None else sum(x == y for x, y in zip(mine, ref)) / len(ref))  # fmt: skip
    for g in data["groups"]:
        for r in g["paths"].values():
            for c in r.get("cells", {}).values():
                c.pop("outputs", None)
    meta = {
        "command": "python benchmarks/bench_inference.py" + (" " + " ".join(args.argv) if args.argv else ""),
        "started": started, "elapsed_s": round(elapsed, 1), "load_average_start": load_start,
        "load_average_end": os.getloadavg(),
        "machine": f"{platform.machine()}, {ncpu} logical CPUs (shared: only ratios within one group count)",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "ctranslate2": ctranslate2.__version__, "onnxruntime": onnxruntime.__version__},
        "dims": dims, "new_tokens": args.new_tokens, "repeats": args.repeats, "lm_repeats": args.lm_repeats,
        "ct2_repeats": args.ct2_repeats, "b1_sentences": args.b1_sentences,
    }  # fmt: skip
    data["meta"] = meta
    ratios = {}
    lines = [
        "# Inference speed: hf-seq eager / ONNX Runtime / CTranslate2 vs MarianMTModel and Marian → CT2",
        "",
        f"`{meta['command']}` — {meta['machine']}; torch {torch.__version__}, transformers {transformers.__version__}, "
        f"ctranslate2 {ctranslate2.__version__}, onnxruntime {onnxruntime.__version__}. Random weights, "
        f"d_model {dims['d_model']}, d_ff {dims['d_ff']}, {dims['heads']} heads, {dims['layers']}+{dims['layers']} "
        f"layers, vocab {dims['vocab']}; sources of 8-24 random tokens; exactly {args.new_tokens} new tokens per "
        f"sentence (end token suppressed); batch-1 cells translate {args.b1_sentences} sentences one at a time. "
        f"All paths of a table row group run in one process, interleaved (repeat r runs every path once, order "
        f"rotated), median of at least {args.repeats} repeats after a warm-up (cheap cells repeat up to {4 * args.repeats} "
        f"times, about {args.min_cell_seconds:.0f} s a cell; the counts are in the JSON). Total {elapsed / 60:.1f} min; load average "
        f"{tuple(round(x, 1) for x in load_start)} at the start, {tuple(round(x, 1) for x in meta['load_average_end'])} "
        "at the end (the machine is shared; `others` = cores' worth of CPU the other processes used while the "
        "group ran).",
        "",
        "New tokens/s (higher is better). Peak RSS: a separate fresh process per path (imports, load, one batch-32 "
        "beam-4 run; CTranslate2 rows import neither torch nor transformers).",
        "",
        "| path | threads | greedy b1 | beam4 b1 | greedy b32 | beam4 b32 | peak RSS MB | greedy b32 = eager |",
        "|---|---|---|---|---|---|---|---|",
    ]
    translation = [g for g in data["groups"] if g["name"] in ("translation", "compiled")]
    for g in translation:
        for path, r in g["paths"].items():
            if g["name"] == "compiled" and path == "hf-seq eager":
                continue
            probe = data["probes"].get(f"seq2seq|{path.removesuffix(LOOP)}", {})
            if "error" in r:
                lines.append(f"| {path} | {g['threads']} | failed: {r['error']} | | | | | |")
                continue
            speeds = " | ".join(_fmt(_speed(g, path, c)) for c in SEQ2SEQ_CELLS)
            lines.append(f"| {path} | {g['threads']} | {speeds} | {_fmt(probe.get('peak_rss_mb'))} | "
                         f"{_fmt(r.get('agreement_with_eager'), '.0%')} |")  # fmt: skip
    for g in translation:
        note = f"others {g['others_cores']:.2f} cores" + (", CONTENDED" if g["contended"] else "")
        lines.append(
            f"\n{g['name']} @{g['threads']} threads: {g.get('error', 'complete')}, {g['wall_s']:.0f} s, {note}."
        )
    for s in data["skipped"]:
        lines.append(f"\nNot run: {s} (two-thread rows need two idle cores).")
    lines += ["", "Ratios (same group: same process, same threads, interleaved):", "",
              "| ratio | threads | greedy b1 | beam4 b1 | greedy b32 | beam4 b32 |", "|---|---|---|---|---|---|"]  # fmt: skip
    pairs = [("hf-seq CTranslate2 fp32", "Marian CTranslate2 fp32"), ("hf-seq CTranslate2 fp32", "hf-seq eager"),
             ("hf-seq CTranslate2 fp32", "hf-seq eager" + LOOP), ("hf-seq CTranslate2 int8", "hf-seq eager"),
             ("hf-seq ONNX Runtime", "hf-seq eager"), ("hf-seq ONNX Runtime", "hf-seq eager" + LOOP),
             ("hf-seq eager", "hf-seq eager" + LOOP), ("hf-seq eager", "hf-seq CTranslate2 fp32"),
             ("hf-seq compiled", "hf-seq eager"), ("hf-seq eager", "Marian eager"),
             ("Marian CTranslate2 fp32", "Marian eager")]  # fmt: skip
    for a, b in pairs:
        for g in translation:
            if a not in g["paths"] or b not in g["paths"]:
                continue
            vals = [None if _speed(g, a, c) is None or _speed(g, b, c) is None else _speed(g, a, c) / _speed(g, b, c)
                    for c in SEQ2SEQ_CELLS]  # fmt: skip
            ratios[f"{a} / {b} @{g['threads']}"] = vals
            flag = " (contended)" if g["contended"] else ""
            lines.append(f"| {a} / {b} | {g['threads']}{flag} | " + " | ".join(_fmt(v, ".2f") for v in vals) + " |")
    h2h = [g for g in data["groups"] if g["name"] == "CTranslate2 head-to-head"]
    if h2h:
        lines += ["", f"hf-seq → CTranslate2 vs Marian → CTranslate2 head to head, batch-1 greedy, {args.ct2_repeats} "
                  "interleaved pairs in one process:", "",
                  "| threads | hf-seq CT2 tok/s | Marian CT2 tok/s | ratio of medians | median of pair ratios | "
                  "pair ratios, 10th-90th percentile | others (cores) |", "|---|---|---|---|---|---|---|"]  # fmt: skip
        for g in h2h:
            a, b = (_speed(g, p, "b1_beam1") for p in CT2_PAIR)
            pr = sorted(g.get("pairs", {}).get("b1_beam1", []))
            if a is None or b is None or not pr:
                lines.append(f"| {g['threads']} | failed: {g.get('error', '?')} | | | | | |")
                continue
            lo, hi = pr[int(0.1 * (len(pr) - 1))], pr[int(0.9 * (len(pr) - 1))]
            ratios[f"CT2 head-to-head @{g['threads']}"] = {"ratio_of_medians": a / b, "median_pair_ratio":
                                                          statistics.median(pr), "p10": lo, "p90": hi}  # fmt: skip
            flag = ", CONTENDED" if g["contended"] else ""
            lines.append(f"| {g['threads']} | {a:.0f} | {b:.0f} | {a / b:.3f} | {statistics.median(pr):.3f} | "
                         f"{lo:.3f}-{hi:.3f} | {g['others_cores']:.2f}{flag} |")  # fmt: skip
    lines += ["", "The two CTranslate2 models, as prepare() builds them: the same TransformerSpec (post-LN, sinusoidal "
              "positions written as a table, embeddings scaled by sqrt(d_model), one embedding matrix shared by "
              "encoder, decoder and output projection, the same variables with the same shapes) except: Marian's "
              "FFN activation is swish (MarianConfig's default) where hf-seq's is ReLU; CTranslate2's Marian loader drops the `<pad>` "
              f"row ({_vocab_size(args.work_kept, 'marian_ct2')} vs {_vocab_size(args.work_kept, 'hfseq_ct2')} "
              "embedding rows) and starts the decoder from a zero embedding (`start_from_zero_embedding`) where "
              "Marian eager embeds `<pad>`, whose row the random weights made non-zero (probably why Marian → CT2 "
              "matches Marian eager on fewer sentences); layer_norm_epsilon written as 1e-5 (hf-seq) vs not written "
              "(Marian, CTranslate2's default). None of these changes the work per token beyond noise (swish costs "
              "Marian a little more). The batch-1 greedy ratio of the two in the table above comes from few repeats "
              "among the group's paths; the head-to-head is the measurement of record.", ""]  # fmt: skip
    lines += ["", f"Recurrent LMs (2 layers, hidden {dims['lm_hidden']}, vocab {dims['lm_vocab']}), batch 1, greedy "
              f"{args.new_tokens} new tokens after a 10-token prompt, generate() on every path (hf-seq's lean loop for eager "
              "and the ONNX Runtime runners, transformers' own `_sample` for `(transformers' loop)` (lean_decoding=False) "
              "and for torch's int8 modules), one "
              f"thread; the paths of one model interleaved in one process, median of at least {args.lm_repeats} repeats:", "",
              "| model | path | new tokens/s | x eager | x eager (transformers' loop) | peak RSS MB | tokens = eager | "
              "others (cores) |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for g in (g for g in data["groups"] if g["family"] in LM_KINDS):
        eager, loop = _speed(g, "eager", "b1_beam1"), _speed(g, "eager" + LOOP, "b1_beam1")
        for path, r in g["paths"].items():
            if "error" in r:
                lines.append(f"| {g['family']} | {path} | failed: {r['error']} | | | | | |")
                continue
            speed = _speed(g, path, "b1_beam1")
            x = None if speed is None or eager is None else speed / eager
            xl = None if speed is None or loop is None else speed / loop
            ratios[f"{g['family']} {path} / eager"] = x
            ratios[f"{g['family']} {path} / eager{LOOP}"] = xl
            probe = data["probes"].get(f"{g['family']}|{path.removesuffix(LOOP)}", {})
            lines.append(f"| {g['family']} | {path} | {_fmt(speed)} | {_fmt(x, '.2f')} | {_fmt(xl, '.2f')} | "
                         f"{_fmt(probe.get('peak_rss_mb'))} | {_fmt(r.get('agreement_with_eager'), '.0%')} | "
                         f"{g['others_cores']:.2f} |")  # fmt: skip
    lines += ["", "Quality: no trained model in this run, so no BLEU / perplexity; `= eager` is the share of outputs "
              "(batch-32 greedy sentences for the translation paths, the tokens of one greedy generation for the LMs) "
              "identical to the eager model of the same family. Marian rows compare with Marian eager.", ""]  # fmt: skip
    data["ratios"] = ratios
    os.makedirs(out_dir, exist_ok=True)
    for name, text in (("inference_speed.json", json.dumps(data, indent=2)), ("inference_speed.md", "\n".join(lines))):
        with open(os.path.join(out_dir, name + ".tmp"), "w") as f:
            f.write(text)
        os.replace(os.path.join(out_dir, name + ".tmp"), os.path.join(out_dir, name))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts of the translation groups")
    p.add_argument("--new-tokens", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3, help="interleaved repeats per cell (at least)")
    p.add_argument("--min-cell-seconds", type=float, default=20,
                   help="cheap cells repeat until about this long (at most 4x --repeats)")  # fmt: skip
    p.add_argument("--lm-repeats", type=int, default=9, help="interleaved repeats per recurrent-LM path")
    p.add_argument("--ct2-repeats", type=int, default=40, help="interleaved pairs of the CTranslate2 head-to-head")
    p.add_argument("--b1-sentences", type=int, default=4, help="sentences a batch-1 cell translates one at a time")
    p.add_argument("--quick", action="store_true", help="tiny sizes, results to a temp folder (smoke test)")
    p.add_argument("--out", default=None, help="results folder (default benchmarks/results)")
    p.add_argument("--group-timeout", type=float, default=900, help="limit of one group process (s)")
    p.add_argument("--with-compiled", action="store_true", help="add the torch.compile group (minutes of compiling)")
    p.add_argument("--compile-timeout", type=float, default=300, help="limit of the torch.compile group")
    p.add_argument("--idle-cores", type=float, default=0.3, help="other processes' CPU use a 2-thread group tolerates")
    p.add_argument(
        "--idle-wait", type=float, default=120, help="how long to wait for idle cores before a 2-thread group"
    )
    p.add_argument("--no-probes", action="store_true", help="skip the per-path peak-RSS processes")
    p.add_argument("--skip", default="", help="comma-separated paths to leave out")
    # child-process arguments
    p.add_argument("--group", help=argparse.SUPPRESS)
    p.add_argument("--probe", help=argparse.SUPPRESS)
    p.add_argument("--family", help=argparse.SUPPRESS)
    p.add_argument("--work", help=argparse.SUPPRESS)
    p.add_argument("--cells", default="", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.group or args.probe:
        args.threads = int(args.threads)
        args.paths = args.group or args.probe
        result = run_group(args) if args.group else run_probe(args)
        with open(args.result, "w") as f:
            json.dump(result, f)
        return 0
    args.thread_list = [int(t) for t in args.threads.split(",")]
    out_dir = args.out or (tempfile.mkdtemp() if args.quick else RESULTS)
    started, load_start = time.strftime("%Y-%m-%d %H:%M:%S"), os.getloadavg()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        args.work = work
        prepare(work, _dims(args.quick))
        data = measure(args)
        args.work_kept = work
        write_results(data, args, out_dir, started, time.perf_counter() - t0, load_start)
    sys.stderr.write(f"results in {out_dir} ({(time.perf_counter() - t0) / 60:.1f} min)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
