"""`hf-seq similar MODEL WORD`: the nearest words of a word2vec model (cosine of the input vectors)."""

from __future__ import annotations

from .common import CLIError, _emit, add_model_argument, add_parser, load


def register(subparsers) -> None:
    p = add_parser(subparsers, "similar", "nearest words of a word2vec model",
                   "Print the words whose vectors are closest (cosine) to WORD's, with their similarity.", run)
    add_model_argument(p)
    p.add_argument("word", metavar="WORD")
    p.add_argument("--top-k", type=int, default=10)


def nearest_words(model, tokenizer, word: str, top_k: int = 10) -> list[tuple[str, float]]:
    """(word, cosine) of the `top_k` words closest to `word`, trained words only (count > 0 when counts are known)."""
    import torch

    if top_k < 1:
        raise CLIError(f"--top-k must be >= 1, got {top_k}")
    vectors = model.get_input_embeddings().weight.detach()
    ids = tokenizer(word, add_special_tokens=False)["input_ids"]
    if len(ids) != 1 or ids[0] == tokenizer.unk_token_id:
        raise CLIError(f"{word!r} is not in the vocabulary")
    unit = torch.nn.functional.normalize(vectors, dim=-1)
    scores = unit @ unit[ids[0]]
    counts = getattr(model.config, "word_counts", None)
    if counts is not None:  # special tokens and dropped words never trained
        scores = scores.masked_fill(torch.tensor(counts) == 0, -2.0)
    scores[ids[0]] = -2.0
    top = scores.topk(min(top_k, int((scores > -2).sum())))
    return [(tokenizer.convert_ids_to_tokens(i), s) for s, i in zip(top.values.tolist(), top.indices.tolist())]


def run(args) -> int:
    model, tokenizer, _ = load(args.model, "similar", args.revision)
    try:
        rows = nearest_words(model, tokenizer, args.word, args.top_k)
    except CLIError as e:
        raise CLIError(f"{e} of {args.model!r}" if "vocabulary" in str(e) else str(e)) from e
    for word, score in rows:
        _emit(f"{word}\t{score:.4f}")
    return 0
