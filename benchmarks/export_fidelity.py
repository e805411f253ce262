"""Do exported models translate like the model? Issue #21's fidelity target, measured on the Multi30k test set.

Target: greedy tokens identical to eager `generate()` on >= 99% of the test sentences in fp32 for every export path;
beam-4 BLEU within 0.1 of eager; int8 within 0.5 BLEU.

Given a trained translation folder, this script exports it through the public API of `hf_seq.export`
(`to_onnx`, `to_onnx(..., quantize="int8")` = ONNX Runtime dynamic quantization, and for the Transformer
`to_ctranslate2` fp32 and int8), builds `quantize_dynamic_int8(model)` (torch dynamic int8) in memory, decodes the
experiment's test pairs with eager `generate()` and with each path (greedy and beam 4, the same length-sorted batches
of right-padded sources, the same `max_new_tokens`), and reports per path: the share of sentences whose tokens equal
eager's (same beam size), BLEU / chrF and their difference to eager, the sentences per second, and for the first
sentences that differ the position and the two tokens where they part.

Three diagnostic rows for the Transformer (beam search only) explain beam-search differences rather than measure an
export: `eager-early-stopping` is eager `generate(early_stopping=True)` (stop once `num_beams` hypotheses ended,
CTranslate2's own rule, patience 1; `generate()` defaults to early_stopping=False), `eager-never` is eager
`generate(early_stopping="never")`, and `ct2-early-stopping` is the CTranslate2 runner with `early_stopping=True`
(patience 1, what the runner did before it mapped the generation config; the `ct2` rows use the runner's default
mapping, early_stopping=False -> patience 2, `hf_seq.export.ctranslate2_export.search_options`). CTranslate2 rows also
count their sentences identical to the two eager diagnostics (`identical_to_eager_early_stopping`,
`identical_to_eager_never`).

    # an RNN seq2seq (results/ensemble_multi30k.md, seed 1) and a Transformer trained for 10 minutes on one thread:
    OMP_NUM_THREADS=1 hf-seq train transformer_multi30k_cpu data.max_train_minutes=10 data.test_num_beams=1 \
        training.output_dir=/tmp/ensfid/transformer
    OMP_NUM_THREADS=1 python benchmarks/export_fidelity.py /tmp/ensfid/luong_seed1 /tmp/ensfid/transformer \
        --work-dir /tmp/ensfid/fid --output benchmarks/results/export_fidelity.json \
        --markdown /tmp/ensfid/export_fidelity_table.md   # the tables, pasted into the .md

A path whose export or decoding fails is recorded with its error (and the others still run): a failure is a result.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
import traceback

import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

import hf_seq  # noqa: F401  (registers the hf-seq model types)
from hf_seq.evaluation import bleu_report
from hf_seq.export import load_runner, quantize_dynamic_int8, to_ctranslate2, to_onnx
from hf_seq.training.experiment import load_experiment
from hf_seq.training.translation import experiment_pairs

FP32_IDENTICAL_GREEDY = 0.99  # issue #21: greedy tokens identical on >= 99% of the sentences
FP32_BEAM_BLEU = 0.1  # beam-4 BLEU within 0.1
INT8_BLEU = 0.5  # int8 within 0.5 BLEU


def paths_for(model) -> list[str]:
    paths = ["torch-int8", "onnx", "onnx-int8"]
    if "transformer" in model.config.model_type:
        # beam-search diagnostics: eager generate(early_stopping=True) (CTranslate2's own rule, patience 1) and
        # generate(early_stopping="never"); the CTranslate2 runner with early_stopping=True (patience 1)
        paths = [*DIAGNOSTICS, "ct2", "ct2-int8", *paths]
    return paths


# diagnostic path -> the generate() / translate_ids() keyword that makes it (beam search only)
DIAGNOSTICS = {"eager-early-stopping": {"early_stopping": True}, "eager-never": {"early_stopping": "never"},
               "ct2-early-stopping": {"early_stopping": True}}


class Decoder:
    """Token ids of each test sentence (in the test order) for one path; every path gets the same batches."""

    def __init__(self, tokenizer, sources: list[str], batch_size: int, max_source_length: int, max_new_tokens: int,
                 config):
        self.tokenizer, self.max_new_tokens, self.config = tokenizer, max_new_tokens, config
        tokenizer.padding_side = "right"  # the layout the ONNX encoders were traced with
        self.ids = [tokenizer(s, truncation=True, max_length=max_source_length)["input_ids"] for s in sources]
        order = sorted(range(len(sources)), key=lambda i: len(self.ids[i]))
        self.batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]

    def clean(self, ids: list[int], strip_start: bool) -> list[int]:
        """Generated ids without the decoder start token, cut at the first end token, without padding."""
        ids = list(ids)
        if strip_start and ids and ids[0] == self.config.decoder_start_token_id:
            ids = ids[1:]
        if self.config.eos_token_id in ids:
            ids = ids[: ids.index(self.config.eos_token_id)]
        return [i for i in ids if i != self.config.pad_token_id]

    def with_generate(self, model, num_beams: int, **kwargs) -> list[list[int]]:
        out: list[list[int]] = [[] for _ in self.ids]
        with torch.inference_mode():
            for idx in self.batches:
                enc = self.tokenizer.pad({"input_ids": [self.ids[i] for i in idx]}, return_tensors="pt")
                generated = model.generate(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                                           num_beams=num_beams, max_new_tokens=self.max_new_tokens, do_sample=False,
                                           **kwargs)
                for i, row in zip(idx, generated.tolist()):
                    out[i] = self.clean(row, strip_start=True)
        return out

    def with_ctranslate2(self, runner, num_beams: int, **kwargs) -> list[list[int]]:
        out: list[list[int]] = [[] for _ in self.ids]
        for idx in self.batches:
            rows = runner.translate_ids([self.ids[i] for i in idx], num_beams=num_beams,
                                        max_new_tokens=self.max_new_tokens, **kwargs)
            for i, row in zip(idx, rows):
                out[i] = self.clean(row, strip_start=False)
        return out


def first_differences(reference: list[list[int]], other: list[list[int]], sources: list[str], tokenizer,
                      limit: int) -> list[dict]:
    rows = []
    for i, (a, b) in enumerate(zip(reference, other)):
        if a == b:
            continue
        pos = next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))

        def token(ids, k):
            return None if k >= len(ids) else f"{ids[k]} {tokenizer.convert_ids_to_tokens(ids[k])!r}"

        rows.append({"sentence": i, "source": sources[i], "position": pos, "eager_token": token(a, pos) or "<end>",
                     "export_token": token(b, pos) or "<end>",
                     "eager": tokenizer.decode(a, skip_special_tokens=True),
                     "export": tokenizer.decode(b, skip_special_tokens=True)})
        if len(rows) >= limit:
            break
    return rows


def build(path: str, folder: str, model, work_dir: str, threads: int):
    """(kind, object) for one path: ("generate", a GenerationMixin model) or ("ct2", a CTranslate2 runner)."""
    if path.startswith("eager"):
        return "generate", model
    if path == "torch-int8":
        return "generate", quantize_dynamic_int8(model)
    out = os.path.join(work_dir, path)
    if path in ("onnx", "onnx-int8"):
        to_onnx(folder, out, quantize="int8" if path == "onnx-int8" else None)
        return "generate", load_runner(out, num_threads=threads)
    to_ctranslate2(folder, out, quantization="int8" if path == "ct2-int8" else None)
    return "ct2", load_runner(out, intra_threads=threads)


def measure(folder: str, args, threads: int) -> dict:
    """Every path of one trained folder: its rows (and errors)."""
    name = args.experiment
    if name is None:
        with open(os.path.join(folder, "experiment.json"), encoding="utf-8") as f:
            name = json.load(f)["name"]
    exp = load_experiment(name, args.overrides)
    pairs = experiment_pairs(exp)["test"][: args.limit]
    sources, refs = [s for s, _ in pairs], [t for _, t in pairs]
    model = AutoModelForSeq2SeqLM.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    target_dir = os.path.join(folder, "target_tokenizer")
    target_tokenizer = AutoTokenizer.from_pretrained(target_dir) if os.path.isdir(target_dir) else tokenizer
    decoder = Decoder(tokenizer, sources, args.batch_size, exp.data.max_source_length, exp.data.max_target_length,
                      model.config)
    load_before = [round(x, 2) for x in os.getloadavg()]
    paths = ["eager", *(args.paths or paths_for(model))]
    work_dir = os.path.join(args.work_dir, os.path.basename(os.path.normpath(folder)))
    os.makedirs(work_dir, exist_ok=True)

    reference: dict[int, list[list[int]]] = {}
    reference_bleu: dict[int, float] = {}
    diagnostic_ids: dict[tuple[str, int], list[list[int]]] = {}
    rows, errors = [], []
    for path in paths:
        try:
            start = time.perf_counter()
            kind, runner = build(path, folder, model, work_dir, threads)
            export_seconds = round(time.perf_counter() - start, 1)
        except Exception as e:  # a failed export is a result: record it, go on with the other paths
            errors.append({"path": path, "stage": "export", "error": f"{type(e).__name__}: {e}",
                           "traceback": traceback.format_exc().splitlines()[-6:]})
            print(json.dumps(errors[-1]), flush=True)  # noqa: T201  (a benchmark script)
            continue
        for beams in args.beams:
            if path in DIAGNOSTICS and beams == 1:
                continue  # the stopping rules of beam search: greedy decoding has none
            try:
                start = time.perf_counter()
                decode = decoder.with_ctranslate2 if kind == "ct2" else decoder.with_generate
                ids = decode(runner, beams, **DIAGNOSTICS.get(path, {}))
                seconds = time.perf_counter() - start
            except Exception as e:
                errors.append({"path": path, "stage": f"decode num_beams={beams}", "error": f"{type(e).__name__}: {e}",
                               "traceback": traceback.format_exc().splitlines()[-6:]})
                print(json.dumps(errors[-1]), flush=True)  # noqa: T201
                continue
            hyps = [target_tokenizer.decode(row, skip_special_tokens=True).strip() for row in ids]
            scores = bleu_report(hyps, refs, exp.data.target_lang)
            row = {"path": path, "num_beams": beams, "bleu": scores["bleu"], "chrf": scores["chrf"],
                   "seconds": round(seconds, 1), "sentences_per_second": round(len(sources) / seconds, 1),
                   "export_seconds": export_seconds if path != "eager" else None,
                   "hit_max_new_tokens": sum(len(r) >= exp.data.max_target_length - 1 for r in ids)}
            if path == "eager":
                reference[beams], reference_bleu[beams] = ids, scores["bleu"]
            elif path in DIAGNOSTICS:
                diagnostic_ids[path, beams] = ids
                same = sum(a == b for a, b in zip(reference[beams], ids))
                row.update(target="diagnostic", identical=same, identical_share=round(same / len(ids), 4),
                           bleu_delta=round(scores["bleu"] - reference_bleu[beams], 2),
                           differing_shorter_than_eager=sum(len(b) < len(a) for a, b in zip(reference[beams], ids)
                                                            if a != b))
            elif beams in reference:
                same = sum(a == b for a, b in zip(reference[beams], ids))
                delta = scores["bleu"] - reference_bleu[beams]
                if "int8" in path:
                    row["target"] = f"|BLEU delta| <= {INT8_BLEU}"
                    row["meets_target"] = abs(delta) <= INT8_BLEU
                elif beams == 1:
                    row["target"] = f"identical greedy tokens >= {FP32_IDENTICAL_GREEDY:.0%}"
                    row["meets_target"] = same / len(ids) >= FP32_IDENTICAL_GREEDY
                else:
                    row["target"] = f"|BLEU delta| <= {FP32_BEAM_BLEU}"
                    row["meets_target"] = abs(delta) <= FP32_BEAM_BLEU
                row.update(identical=same, identical_share=round(same / len(ids), 4), bleu_delta=round(delta, 2))
                differ = [i for i, (a, b) in enumerate(zip(reference[beams], ids)) if a != b]
                row["differing_shorter_than_eager"] = sum(len(ids[i]) < len(reference[beams][i]) for i in differ)
                row["differences"] = first_differences(reference[beams], ids, sources, target_tokenizer,
                                                       args.examples)
            for name in ("eager-early-stopping", "eager-never"):
                if path.startswith("ct2") and (name, beams) in diagnostic_ids:
                    row[f"identical_to_{name.replace('-', '_')}"] = sum(
                        a == b for a, b in zip(diagnostic_ids[name, beams], ids))
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "differences"}), flush=True)  # noqa: T201
    return {
        "folder": folder,
        "architecture": type(model).__name__,
        "model_type": model.config.model_type,
        "parameters": sum(p.numel() for p in model.parameters()),
        "experiment": exp.name,
        "dataset": exp.data.dataset,
        "test_pairs": len(pairs),
        "max_new_tokens": exp.data.max_target_length,
        "loadavg_before": load_before,
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "rows": rows,
        "errors": errors,
    }


def markdown(result: dict) -> str:
    lines = []
    for run in result["runs"]:
        lines += [f"{run['architecture']} ({run['parameters'] / 1e6:.2f}M parameters, `{run['folder']}`), "
                  f"{run['test_pairs']} test pairs of {run['dataset']}, load average {run['loadavg_before']} before / "
                  f"{run['loadavg_after']} after:", "",
                  "| path | beams | BLEU | chrF | BLEU - eager | identical to eager | target | met | sentences/s |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in run["rows"]:
            same = f"{r['identical_share']:.1%} ({r['identical']})" if "identical" in r else "-"
            delta = f"{r['bleu_delta']:+.2f}" if "bleu_delta" in r else "-"
            met = {True: "yes", False: "**no**"}.get(r.get("meets_target"), "-")
            lines.append(f"| {r['path']} | {r['num_beams']} | {r['bleu']:.2f} | {r['chrf']:.2f} | {delta} | {same} | "
                         f"{r.get('target', 'reference').replace('|', chr(92) + '|')} | {met} | {r['sentences_per_second']} |")
        for e in run["errors"]:
            lines.append(f"\nFAILED {e['path']} ({e['stage']}): {e['error']}")
        lines.append("")
    lines += ["Command:", "", f"    {result['command']}", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", help="trained translation run folders")
    parser.add_argument("--experiment", default=None,
                        help="the experiment giving the test pairs (default: the name in each folder's "
                             "experiment.json)")
    parser.add_argument("--set", dest="overrides", nargs="*", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--paths", nargs="+", default=None,
                        help="export paths (default: ct2 ct2-int8 for the Transformer, torch-int8 onnx onnx-int8)")
    parser.add_argument("--beams", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--limit", type=int, default=None, help="first N test pairs only")
    parser.add_argument("--examples", type=int, default=5, help="differing sentences shown per path and beam")
    parser.add_argument("--work-dir", required=True, help="where the exports are written (one subfolder per model)")
    parser.add_argument("--output", default=None, help="JSON file of the results")
    parser.add_argument("--markdown", default=None, help="also write the tables as Markdown")
    args = parser.parse_args()

    threads = torch.get_num_threads()
    result = {
        "command": "OMP_NUM_THREADS=1 python " + " ".join(shlex.quote(a) for a in sys.argv),
        "batch_size": args.batch_size,
        "threads": threads,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "versions": versions(),
        "runs": [measure(folder, args, threads) for folder in args.folders],
    }
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2, ensure_ascii=False)
            f.write("\n")
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write(markdown(result))


def versions() -> dict:
    import importlib.metadata as md

    found = {}
    for name in ("torch", "transformers", "onnx", "onnxruntime", "ctranslate2"):
        try:
            found[name] = md.version(name)
        except md.PackageNotFoundError:
            found[name] = None
    return found


if __name__ == "__main__":
    main()
