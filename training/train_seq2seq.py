"""Train the RNN encoder-decoder (with or without attention) for translation with `Seq2SeqTrainer`.

    OMP_NUM_THREADS=1 python training/train_seq2seq.py configs/seq2seq_tatoeba_bahdanau.yaml   # embedded en->fr demo
    OMP_NUM_THREADS=1 python training/train_seq2seq.py configs/seq2seq_multi30k_luong_cpu_1h.yaml
    python training/train_seq2seq.py configs/seq2seq_tatoeba_bahdanau.yaml --smoke              # seconds; the tests
    python training/train_seq2seq.py configs/seq2seq_multi30k_luong_cpu_1h.yaml --eval-only     # re-score a finished run

A YAML config has three sections: `model` (RNNSeq2SeqConfig fields), `data` (DataArguments below) and `training`
(`Seq2SeqTrainingArguments`); unknown keys are errors. Extra `section.key=value` arguments (and `--output_dir DIR`)
override the file; `--smoke` shrinks any file to a seconds-long run.
The tokenizer is a joint byte-level BPE trained with the `tokenizers` library on both sides of the training set.

Outputs in `training.output_dir`: `model/` (model + tokenizer + the hf-seq translation pipeline, loadable with
`pipeline(model=..., trust_remote_code=True)`), `results.json` (sacreBLEU BLEU / chrF with signatures on detokenized
output, tokenized lower-cased BLEU, BLEU by source-length bucket, timings), `test_hypotheses.txt` and, with
attention, `attention.png`.
"""

import json
import os
import sys
import time
from dataclasses import dataclass, field

from transformers import set_seed

import hf_seq  # noqa: F401  (registers the Auto classes)
from hf_seq.models.seq2seq import RNNSeq2SeqConfig, RNNSeq2SeqForConditionalGeneration
from hf_seq.pipelines import save_translation_pipeline
from hf_seq.seq2seq_utils import translation_attention_heatmap

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from translation_common import (  # noqa: E402
    DEFAULT_DATA_DIR,
    apply_override,
    build_trainer,
    check_model_keys,
    config_keys,
    generation_config_for,
    joint_bpe_tokenizer,
    load_config_file,
    load_pairs,
    parse_arguments,
    rescore,
    test_report,
    tokenize_pairs,
    training_record,
)

from hf_seq.training.checkpointing import checkpoint_to_resume  # noqa: E402


@dataclass
class DataArguments:
    dataset: str = field(
        default="tatoeba", metadata={"help": "tatoeba (embedded en-fr subset) | multi30k | toy (synthetic, no files)"}
    )
    data_dir: str = field(default=DEFAULT_DATA_DIR, metadata={"help": "folder holding multi30k/"})
    source_lang: str = "en"
    target_lang: str = "fr"
    tatoeba_heldout: int = field(default=500, metadata={"help": "validation and test sentences each (tatoeba)"})
    max_train_samples: int | None = None
    max_eval_samples: int | None = 200
    max_test_samples: int | None = None
    bpe_vocab_size: int = 8000
    bpe_min_frequency: int = 2
    max_source_length: int = 64
    max_target_length: int = 64
    test_num_beams: int = field(default=1, metadata={"help": "1 = greedy, as the published Multi30k GRU numbers"})
    test_length_penalty: float = 1.0
    heatmap_sentence: int = 0
    max_train_minutes: float | None = field(default=None, metadata={"help": "wall-clock budget of the training loop"})


TOY = {"n": 700, "train": 600, "validation": 50, "vocab": 20, "lengths": (2, 6)}
MODEL_KEYS = config_keys(RNNSeq2SeqConfig)


# --smoke: any experiment file shrunk to seconds (tiny model, 300 embedded Tatoeba pairs, 15 steps); used by the tests
SMOKE = {
    "model": {"hidden_size": 32, "encoder_embedding_size": 16, "decoder_embedding_size": 16, "attention_size": 32,
              "encoder_layers": 1, "decoder_layers": 1, "dropout": 0.0},
    "data": {"max_train_samples": 300, "max_eval_samples": 20, "max_test_samples": 40, "bpe_vocab_size": 300,
             "max_source_length": 24, "max_target_length": 24, "max_train_minutes": None, "test_num_beams": 2},
    "training": {"max_steps": 15, "logging_steps": 5, "per_device_train_batch_size": 32, "eval_strategy": "no",
                 "save_strategy": "no", "report_to": "none", "use_cpu": True, "disable_tqdm": True},
}
USAGE = ("usage: train_seq2seq.py CONFIG.yaml [--smoke] [--eval-only | --tune-decoding] [--output_dir DIR] "
         "[section.key=value ...]")


def parse_argv(argv: list[str]) -> tuple[dict, bool, bool]:
    if not argv or argv[0].startswith("-"):
        raise SystemExit(USAGE)
    raw = load_config_file(argv[0], DataArguments, MODEL_KEYS)
    smoke, eval_only, rest, overrides = False, False, list(argv[1:]), []
    while rest:
        arg = rest.pop(0)
        if arg == "--smoke":
            smoke = True
        elif arg == "--eval-only":
            eval_only = True
        elif arg == "--output_dir" and rest:
            overrides.append(f"training.output_dir={rest.pop(0)}")
        elif arg.startswith("--output_dir="):
            overrides.append(f"training.output_dir={arg.split('=', 1)[1]}")
        elif "=" in arg and "." in arg.split("=", 1)[0]:
            overrides.append(arg)
        else:
            raise SystemExit(f"unknown argument {arg!r}\n{USAGE}")
    if smoke:
        for section, values in SMOKE.items():
            raw.setdefault(section, {}).update(values)
        if raw["data"].get("dataset", "tatoeba") == "multi30k":  # always available: the embedded pairs
            raw["data"].update(dataset="tatoeba", source_lang="en", target_lang="fr")
        raw["model"].pop("bridge", None) if raw["model"].get("bridge") == "copy" else None
    for override in overrides:
        apply_override(raw, override)
    check_model_keys(raw, argv[0], MODEL_KEYS)
    return raw, smoke, eval_only


def attention_heatmap(model, tokenizer, data_args):
    """heatmap(source, output_dir) for `test_report`; None for a model without attention."""
    if model.config.attention == "none":
        return None
    return lambda source, out_dir: translation_attention_heatmap(
        model, tokenizer, source, os.path.join(out_dir, "attention.png"),
        max_new_tokens=data_args.max_target_length, title=f"{model.config.attention} attention",
    )


def main(argv: list[str] | None = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    tune = "--tune-decoding" in argv  # eval-only, with beam size / length penalty chosen on validation first
    argv = [a for a in argv if a != "--tune-decoding"] + (["--eval-only"] if tune else [])
    raw, smoke, eval_only = parse_argv(argv)
    data_args, training_args = parse_arguments(raw, DataArguments)
    set_seed(training_args.seed)
    os.makedirs(training_args.output_dir, exist_ok=True)

    # 1. data and a joint byte-level BPE vocabulary over both sides of the training set
    pairs = load_pairs(data_args, training_args.seed, TOY)
    if eval_only:
        return rescore(RNNSeq2SeqForConditionalGeneration, data_args, training_args, pairs, attention_heatmap, tune)
    tokenizer = joint_bpe_tokenizer(pairs, data_args)
    datasets = {name: tokenize_pairs(p, tokenizer, data_args) for name, p in pairs.items()}

    # 2. model
    config = RNNSeq2SeqConfig(
        **(raw.get("model") or {}),
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.bos_token_id,
    )
    model = RNNSeq2SeqForConditionalGeneration(config)
    model.generation_config = generation_config_for(config, data_args)
    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"{data_args.dataset} {data_args.source_lang}->{data_args.target_lang}: {len(pairs['train'])} train pairs, "
        f"BPE vocab {len(tokenizer)}, attention={config.attention}, {n_params / 1e6:.2f}M params"
    )

    # 3. train (teacher forcing)
    trainer = build_trainer(model, tokenizer, datasets, data_args, training_args)
    start, cpu_start = time.time(), time.process_time()
    resumed_from = checkpoint_to_resume(training_args)
    train_result = trainer.train(resume_from_checkpoint=resumed_from)
    record = training_record(trainer, train_result, time.time() - start, time.process_time() - cpu_start)
    record["resumed_from"] = resumed_from

    # 4. save model + tokenizer + pipeline; Seq2SeqTrainer wrote every default generation setting: reset ours
    model.generation_config = generation_config_for(config, data_args)
    model.config.use_cache = True  # Trainer turned it off for training
    save_translation_pipeline(model, tokenizer, os.path.join(training_args.output_dir, "model"))

    # 5. test: decode in order, score detokenized text with sacreBLEU, by source-length bucket, one heatmap
    test = test_report(model, tokenizer, pairs["test"], data_args, training_args,
                       attention_heatmap(model, tokenizer, data_args))
    results = {
        "config_file": argv[0],
        "overrides": argv[1:],
        "smoke": smoke,
        "dataset": data_args.dataset,
        "direction": f"{data_args.source_lang}->{data_args.target_lang}",
        "tokenizer": f"joint byte-level BPE ({len(tokenizer)} tokens, tokenizers library)",
        "train_pairs": len(pairs["train"]),
        "parameters": n_params,
        "model": {k: getattr(config, k) for k in (
            "cell_type", "attention", "attention_score", "input_feeding", "bidirectional_encoder", "encoder_layers",
            "decoder_layers", "hidden_size", "encoder_embedding_size", "decoder_embedding_size", "dropout",
            "share_encoder_decoder_embeddings", "tie_word_embeddings")},
        **record,
        **test,
    }
    with open(os.path.join(training_args.output_dir, "results.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2, ensure_ascii=False)
    print(json.dumps({k: results[k] for k in results if k in ("test_bleu", "test_chrf", "test_bleu_tok_lc", "steps", "epochs", "train_seconds")}))
    return results


if __name__ == "__main__":
    main()
