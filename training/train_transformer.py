"""Train the Transformer (Vaswani et al. 2017) for translation with `Seq2SeqTrainer`.

    OMP_NUM_THREADS=1 python training/train_transformer.py configs/transformer_multi30k_cpu.yaml
    python training/train_transformer.py configs/transformer_smoke.yaml      # seconds; used by the tests

A YAML config has three sections: `model` (TransformerConfig fields, paper names allowed), `data` (DataArguments
below) and `training` (`Seq2SeqTrainingArguments`). Unknown keys are errors. The paper's recipe maps onto
TrainingArguments: label_smoothing_factor 0.1, lr_scheduler_type "inverse_sqrt" with warmup_steps, Adam
beta2 0.98 / eps 1e-9.

Outputs in `training.output_dir`: `model/` (model + joint BPE tokenizer + the hf-seq translation pipeline, loadable
with `pipeline(model=..., trust_remote_code=True)`), `results.json` (sacreBLEU BLEU / chrF with signatures, tokenized
lower-cased BLEU, timings), `test_hypotheses.txt` and `cross_attention.png`.
"""

import json
import os
import sys
import time
from dataclasses import dataclass, field

from transformers import set_seed

import hf_seq  # noqa: F401  (registers the Auto classes)
from hf_seq.models.transformer import TransformerConfig, TransformerForConditionalGeneration
from hf_seq.pipelines import save_translation_pipeline
from hf_seq.transformer_utils import cross_attention_heatmap

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from translation_common import (  # noqa: E402
    DEFAULT_DATA_DIR,
    apply_override,
    build_trainer,
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
        default="multi30k",
        metadata={
            "help": "multi30k | tatoeba (the 6,000 pairs embedded in hf_seq/data) | tatoeba-en-fr (all of "
            "fra-eng/fra.txt) | toy (synthetic, no files)"
        },
    )
    data_dir: str = field(default=DEFAULT_DATA_DIR, metadata={"help": "folder holding multi30k/ and fra-eng/"})
    source_lang: str = "de"
    target_lang: str = "en"
    max_train_samples: int | None = None
    max_eval_samples: int | None = field(default=500, metadata={"help": "validation sentences scored during training"})
    max_test_samples: int | None = None
    tatoeba_heldout: int = field(default=500, metadata={"help": "validation and test pairs each (tatoeba)"})
    tatoeba_test_size: int = field(default=1000, metadata={"help": "validation and test pairs each (tatoeba-en-fr)"})
    tatoeba_max_words: int = field(default=12, metadata={"help": "keep Tatoeba pairs up to this many words per side"})
    bpe_vocab_size: int = 8000
    bpe_min_frequency: int = 2
    max_source_length: int = 64
    max_target_length: int = 64
    test_num_beams: int = 4
    test_length_penalty: float = 1.0
    heatmap_sentence: int = field(default=0, metadata={"help": "index of the test sentence drawn in the heatmap"})
    max_train_minutes: float | None = field(
        default=None, metadata={"help": "wall-clock budget of the training loop (CPU runs); stops after that step"}
    )


TOY = {"n": 1200, "train": 1000, "validation": 100, "vocab": 30, "lengths": (3, 8)}
MODEL_KEYS = config_keys(TransformerConfig)  # fields and the paper's names (d_model, d_ff, num_heads, N)
USAGE = "usage: train_transformer.py CONFIG.yaml [--eval-only | --tune-decoding] [section.key=value ...]"


def build_model(model_overrides: dict, tokenizer, data_args: DataArguments) -> TransformerForConditionalGeneration:
    config = TransformerConfig(
        **model_overrides,
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.bos_token_id,
    )
    longest = max(data_args.max_source_length, data_args.max_target_length)
    if longest > config.max_position_embeddings:
        raise ValueError(
            f"data.max_source_length / max_target_length ({longest}) exceed model.max_position_embeddings "
            f"({config.max_position_embeddings})."
        )
    model = TransformerForConditionalGeneration(config)
    model.generation_config = generation_config_for(config, data_args)
    return model


def attention_heatmap(model, tokenizer, data_args):
    """heatmap(source, output_dir) for `test_report`: the top layer's encoder-decoder attention, mean over heads."""
    return lambda source, out_dir: cross_attention_heatmap(
        model, tokenizer, source, os.path.join(out_dir, "cross_attention.png"), num_beams=data_args.test_num_beams
    )


def main(argv: list[str] | None = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    tune = "--tune-decoding" in argv  # eval-only, with beam size / length penalty chosen on validation first
    eval_only = tune or "--eval-only" in argv  # re-score the saved model of a finished run
    argv = [a for a in argv if a not in ("--eval-only", "--tune-decoding")]
    if not argv or argv[0].startswith("-"):
        raise SystemExit(USAGE)
    raw = load_config_file(argv[0], DataArguments, MODEL_KEYS)
    for override in argv[1:]:  # section.key=value, value parsed as YAML
        apply_override(raw, override)
    data_args, training_args = parse_arguments(raw, DataArguments)
    set_seed(training_args.seed)
    os.makedirs(training_args.output_dir, exist_ok=True)

    # 1. data and a joint BPE vocabulary (§5.1) trained on both sides of the training set
    pairs = load_pairs(data_args, training_args.seed, TOY)
    if eval_only:
        return rescore(TransformerForConditionalGeneration, data_args, training_args, pairs, attention_heatmap, tune)
    tokenizer = joint_bpe_tokenizer(pairs, data_args)
    datasets = {name: tokenize_pairs(p, tokenizer, data_args) for name, p in pairs.items()}

    # 2. model
    model = build_model(raw.get("model") or {}, tokenizer, data_args)
    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"{data_args.dataset}: {len(pairs['train'])} train pairs, vocab {len(tokenizer)}, {n_params / 1e6:.2f}M params"
    )

    # 3. train
    trainer = build_trainer(model, tokenizer, datasets, data_args, training_args)
    start, cpu_start = time.time(), time.process_time()
    resumed_from = checkpoint_to_resume(training_args)
    train_result = trainer.train(resume_from_checkpoint=resumed_from)
    record = training_record(trainer, train_result, time.time() - start, time.process_time() - cpu_start)
    record["resumed_from"] = resumed_from

    # 4. save model + tokenizer + translation pipeline; generation settings reset to ours (Seq2SeqTrainer fills in
    # every default otherwise, HF-NOTES)
    model.generation_config = generation_config_for(model.config, data_args)
    model.config.use_cache = True
    save_translation_pipeline(model, tokenizer, os.path.join(training_args.output_dir, "model"))

    # 5. test with beam search, scored with sacreBLEU; one encoder-decoder attention heatmap
    test = test_report(model, tokenizer, pairs["test"], data_args, training_args,
                       attention_heatmap(model, tokenizer, data_args))
    results = {
        "config_file": argv[0],
        "overrides": argv[1:],
        "dataset": data_args.dataset,
        "direction": f"{data_args.source_lang}->{data_args.target_lang}",
        "tokenizer": f"joint byte-level BPE ({len(tokenizer)} tokens, tokenizers library)",
        "train_pairs": len(pairs["train"]),
        "vocab_size": len(tokenizer),
        "parameters": n_params,
        "model": {
            k: getattr(model.config, k)
            for k in ("d_model", "d_ff", "num_heads", "encoder_layers", "decoder_layers", "dropout", "norm_first")
        },
        **record,
        **test,
    }
    with open(os.path.join(training_args.output_dir, "results.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2, ensure_ascii=False)
    print(json.dumps({k: results[k] for k in results if k.startswith("test_") or k in ("steps", "train_seconds")}))
    return results


if __name__ == "__main__":
    main()
