"""`hf-seq evaluate MODEL FILE`: score a model on a file with its task's metric (hf_seq.evaluation), print JSON."""

from __future__ import annotations

import json

from .. import evaluation
from .common import CLIError, _emit, add_model_argument, add_parser, load, read_lines
from .translate import target_tokenizer_of

DESCRIPTION = """Score MODEL on FILE with its task's metric; prints JSON.
  language model:      text file -> perplexity
  translation:         TSV source<TAB>reference -> sacreBLEU BLEU and chrF
  text classification: TSV label<TAB>text -> accuracy
  token tagger:        CoNLL file (word ... tag, blank line between sentences; word FEATURE tag for a tagger that
                       reads a second input such as POS tags) -> accuracy, seqeval F1
  word2vec:            word1 word2 score lines -> Spearman correlation"""


def register(subparsers) -> None:
    p = add_parser(subparsers, "evaluate", "score a model on a file with its task's metric", DESCRIPTION, run)
    add_model_argument(p)
    p.add_argument("file", metavar="FILE")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--block-size", type=int, default=64, help="tokens per window for perplexity")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _tsv(path: str, columns: int) -> list[list[str]]:
    rows = [line.split("\t") for line in read_lines(path)]
    bad = [i + 1 for i, r in enumerate(rows) if len(r) < columns]
    if bad:
        raise CLIError(f"{path}: line {bad[0]} has fewer than {columns} tab-separated columns")
    if not rows:
        raise CLIError(f"{path}: no examples (the file is empty)")
    return rows


def _conll(path: str, model) -> list[dict]:
    lines = read_lines(path)  # checks that the file exists and is text
    first = next((line.split() for line in lines if line.split()[0] != "-DOCSTART-"), None)
    if first is None:
        raise CLIError(f"{path}: no sentences (the file is empty)")
    if getattr(model.config, "feature_vocab_size", 0):
        if len(first) < 3:
            raise CLIError(f"{path}: this tagger reads one feature per word (e.g. a POS tag): give 'word feature tag' "
                           f"lines, got {' '.join(first)!r}")
        columns = ["words", "features", *[None] * (len(first) - 3), "tags"]
    elif len(first) < 2:
        raise CLIError(f"{path}: expected 'word ... tag' lines, got {' '.join(first)!r}")
    else:
        columns = ["words", *[None] * (len(first) - 2), "tags"]
    return evaluation.read_conll(path, columns)


def score(model, tokenizer, entry, path: str, batch_size: int = 16, block_size: int = 64,
          progress: bool = False) -> dict:
    """The task's metric of `model` on the file at `path` (the formats of `hf-seq evaluate --help`)."""
    if batch_size < 1 or block_size < 1:
        raise CLIError(f"--batch-size ({batch_size}) and --block-size ({block_size}) must be >= 1")
    task = entry.task
    try:
        if task == "text-generation":
            lines = read_lines(path)
            if not lines:
                raise CLIError(f"{path}: no text (the file is empty)")
            return evaluation.lm_perplexity(model, tokenizer, lines, block_size=block_size, batch_size=batch_size,
                                            progress=progress)
        if task == "hf-seq-translation":
            rows = _tsv(path, 2)
            hyps = evaluation.translate(model, tokenizer, [r[0] for r in rows], batch_size=batch_size,
                                        progress=progress, target_tokenizer=target_tokenizer_of(model))
            return {**evaluation.bleu_report(hyps, [r[1] for r in rows]), "sentences": len(rows)}
        if task == "text-classification":
            rows = _tsv(path, 2)
            return evaluation.classification_accuracy(model, tokenizer, [(r[0], r[1]) for r in rows],
                                                      batch_size=batch_size, progress=progress)
        if task == "token-classification":
            return evaluation.tagging_scores(model, tokenizer, _conll(path, model), batch_size=batch_size,
                                             progress=progress)
        if entry.family == "word2vec":
            pairs = evaluation.read_word_pairs(path)
            if not pairs:
                raise CLIError(f"{path}: no word pairs (the file is empty)")
            return evaluation.word_similarity(model, tokenizer, pairs)
    except FileNotFoundError as e:
        raise CLIError(f"input file {path!r} does not exist") from e
    except ValueError as e:
        raise CLIError(f"{path}: {e}" if path not in str(e) else str(e)) from e
    raise CLIError(f"`hf-seq evaluate` has no metric for {entry.model_class.__name__} ({task})")


def run(args) -> int:
    model, tokenizer, entry = load(args.model, "evaluate", args.revision)
    result = score(model, tokenizer, entry, args.file, args.batch_size, args.block_size, progress=not args.quiet)
    _emit(json.dumps(result, indent=2))
    return 0
