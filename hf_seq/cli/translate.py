"""`hf-seq translate MODEL TEXT... | --file F`: translate with an encoder-decoder, or with a folder exported by
`hf-seq export` (recognised by its marker file, `hf_seq_export.json`, and run through `hf_seq.export.load_runner`)."""

from __future__ import annotations

import os

from .. import evaluation
from .common import CLIError, _emit, add_model_argument, add_parser, is_exported_folder, load, read_lines

DESCRIPTION = """Translate TEXT arguments and/or the lines of --file with an encoder-decoder (RNN seq2seq or
Transformer); one translation per line on stdout. MODEL may also be a folder written by `hf-seq export`
(CTranslate2 / ONNX), which then runs without PyTorch's generate()."""


def register(subparsers) -> None:
    p = add_parser(subparsers, "translate", "translate sentences with an encoder-decoder", DESCRIPTION, run)
    add_model_argument(p)
    p.add_argument("text", nargs="*", metavar="TEXT")
    p.add_argument("--file", help="one source sentence per line")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--num-beams", type=int, help="default: the model's generation config")
    p.add_argument("--max-new-tokens", type=int, help="default: the model's generation config, else 2 x source + 10")
    p.add_argument("--models", nargs="+", metavar="MODEL", default=[],
                   help="more models decoding together with MODEL (an ensemble: the mean of their log-probabilities; "
                        "they must share the source and target vocabularies)")


def target_tokenizer_of(model):
    """The `target_tokenizer/` saved beside a model whose target text has its own vocabulary, else None."""
    from transformers import AutoTokenizer

    sub = os.path.join(getattr(model, "name_or_path", "") or "", "target_tokenizer")
    return AutoTokenizer.from_pretrained(sub) if os.path.isdir(sub) else None


def _batches(sources: list[str], size: int):
    for start in range(0, len(sources), size):
        yield sources[start : start + size]


def run(args) -> int:
    sources = list(args.text) + (read_lines(args.file) if args.file else [])
    if not sources:
        raise CLIError("nothing to translate: give TEXT arguments or --file")
    for name, value in (("--batch-size", args.batch_size), ("--num-beams", args.num_beams),
                        ("--max-new-tokens", args.max_new_tokens)):
        if value is not None and value < 1:
            raise CLIError(f"{name} must be >= 1, got {value}")
    if is_exported_folder(args.model):
        from ..export import load_runner, read_marker

        try:
            task = read_marker(args.model)["task"]
            if task != "translation":
                raise CLIError(f"{args.model!r} is an exported {task} model; `hf-seq translate` needs a translation "
                               "model")
            runner = load_runner(args.model)
        except (ValueError, ImportError) as e:
            raise CLIError(f"{args.model}: {e}") from e
        for batch in _batches(sources, args.batch_size):
            for line in runner.translate(batch, num_beams=args.num_beams, max_new_tokens=args.max_new_tokens):
                _emit(line)
        return 0
    model, tokenizer, _ = load(args.model, "translate", args.revision)
    if args.models:
        from ..ensemble import EnsembleForConditionalGeneration

        others = [load(name, "translate", args.revision) for name in args.models]
        members = [model] + [m for m, _, _ in others]
        vocabularies = [tokenizer.get_vocab()] + [tok.get_vocab() for _, tok, _ in others]
        try:
            model = EnsembleForConditionalGeneration(members, target_vocabularies=vocabularies,
                                                     source_vocabularies=vocabularies)
        except (TypeError, ValueError) as e:
            raise CLIError(f"cannot decode {[args.model, *args.models]} together: {e}") from e
    kwargs = {k: v for k, v in (("num_beams", args.num_beams), ("max_new_tokens", args.max_new_tokens)) if v}
    translations = evaluation.translate(model, tokenizer, sources, batch_size=args.batch_size,
                                        progress=len(sources) > args.batch_size,
                                        target_tokenizer=target_tokenizer_of(model), **kwargs)
    for line in translations:
        _emit(line)
    return 0
