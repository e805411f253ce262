#!/usr/bin/env python
"""Publish a finished training run to the Hugging Face Hub (the same as `hf-seq publish`).

    python training/publish.py runs/lstm_timemachine someone/lstm-timemachine --dataset timemachine
    python training/publish.py runs/transformer_multi30k_cpu --output-dir /tmp/hub_folder   # dry run, no upload

Writes the complete Hub folder (config, safetensors, tokenizer, clean generation config, remote code, custom
pipeline, eval_results.json, pictures, README.md model card) and uploads it with huggingface_hub.
"""

import sys

from hf_seq.cli import main

if __name__ == "__main__":
    sys.exit(main(["publish", *sys.argv[1:]]))
