"""`hf-seq import eole CHECKPOINT --output-dir OUT` and `hf-seq import vectors FILE --output-dir OUT [--format F]`:
thin shells over `hf_seq.interop.convert_eole` and `hf_seq.interop.import_vectors`."""

from __future__ import annotations

import argparse
import sys

from .vectors import FORMATS


def register(subparsers) -> argparse.ArgumentParser:
    """Add the `import` subcommand (with its `eole` and `vectors` forms) to an argparse `subparsers`; each form's
    `func(args) -> int` runs it."""
    parser = subparsers.add_parser(
        "import",
        help="convert a classic toolkit's model or a word-vector file into an hf-seq model folder",
        description="Convert models and vectors from the classic toolkits into hf-seq model folders.",
    )
    forms = parser.add_subparsers(dest="import_kind", metavar="KIND", required=True)

    eole = forms.add_parser(
        "eole",
        help="an eole (OpenNMT-py successor) RNN or Transformer translation checkpoint",
        description=(
            "Convert an eole 0.x model folder (config.json, vocab.json, model.*.safetensors) into an hf-seq "
            "translation folder that `hf-seq translate OUT ...` and pipeline('hf-seq-translation') run. Options "
            "hf-seq's models lack are refused by name."
        ),
    )
    eole.add_argument("checkpoint", metavar="CHECKPOINT", help="eole model folder (e.g. run/model/step_1000)")
    eole.add_argument("--output-dir", required=True, help="folder to write (replaced atomically if it exists)")
    eole.set_defaults(func=run_eole)

    vectors = forms.add_parser(
        "vectors",
        help="a word2vec (text/binary), GloVe or fastText .vec file",
        description=(
            "Convert a word-vector file into an hf-seq word2vec folder (feature-extraction pipeline, "
            "`hf-seq similar OUT WORD`, hf_seq.interop.keyed_vectors_from_pretrained). The format is guessed "
            "unless --format is given: .bin → word2vec-binary, a 'count dim' first line → word2vec/fasttext, "
            "else GloVe."
        ),
    )
    vectors.add_argument("file", metavar="FILE", help="the vector file")
    vectors.add_argument("--output-dir", required=True, help="folder to write (replaced atomically if it exists)")
    vectors.add_argument("--format", choices=FORMATS, default=None, help="file format (default: guessed)")
    vectors.add_argument("--limit", type=int, default=None, help="keep only the first N vectors")
    vectors.add_argument("--lowercase", action="store_true", help="lower-case text before lookup (glove.6B)")
    vectors.set_defaults(func=run_vectors)
    return parser


def run_eole(args, *unused) -> int:
    from .eole import convert_eole

    out = convert_eole(args.checkpoint, args.output_dir)
    sys.stdout.write(f"{out}\n")  # the command's output: the folder written
    return 0


def run_vectors(args, *unused) -> int:
    from .vectors import import_vectors

    out = import_vectors(args.file, args.output_dir, args.format, limit=args.limit, lowercase=args.lowercase)
    sys.stdout.write(f"{out}\n")
    return 0


__all__ = ["register", "run_eole", "run_vectors"]
