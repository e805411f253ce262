"""`hf-seq export FOLDER --format ctranslate2|onnx --output-dir OUT [--quantization ...]`: a thin shell over the API."""

from __future__ import annotations

import argparse
import sys

FORMAT_QUANTIZATIONS = {"ctranslate2": ("int8", "int8_float32", "float16"), "onnx": ("int8",)}


def register(subparsers) -> argparse.ArgumentParser:
    """Add the `export` subcommand to an argparse `subparsers`; its `func(args) -> int` runs it."""
    parser = subparsers.add_parser(
        "export",
        help="export a model folder to CTranslate2 or ONNX for fast inference",
        description=(
            "Export a saved hf-seq model folder for fast inference. ctranslate2: the Transformer (encoder-decoder or "
            "decoder-only); onnx: every generative model (recurrent LMs, RNN seq2seq, Transformer). The output "
            "folder holds the tokenizer and hf_seq_export.json, so `hf-seq translate OUT ...` and "
            "`hf_seq.export.load_runner(OUT)` run it."
        ),
    )
    parser.add_argument("model", metavar="FOLDER", help="a saved hf-seq model folder")
    parser.add_argument("--format", required=True, choices=sorted(FORMAT_QUANTIZATIONS), help="export format")
    parser.add_argument("--output-dir", required=True, help="new or empty output folder")
    parser.add_argument(
        "--quantization",
        default=None,
        choices=["int8", "int8_float32", "float16"],
        help="weights: ctranslate2 int8|int8_float32|float16, onnx int8 (dynamic quantization); default float32",
    )
    parser.set_defaults(func=run)
    return parser


def run(args, *unused) -> int:
    from . import to_ctranslate2, to_onnx

    allowed = FORMAT_QUANTIZATIONS[args.format]
    if args.quantization is not None and args.quantization not in allowed:
        raise ValueError(f"--quantization {args.quantization} is not available for --format {args.format} ({allowed})")
    if args.format == "ctranslate2":
        out = to_ctranslate2(args.model, args.output_dir, quantization=args.quantization)
    else:
        out = to_onnx(args.model, args.output_dir, quantize=args.quantization)
    sys.stdout.write(f"{out}\n")  # the command's output: the folder written
    return 0


__all__ = ["register", "run"]
