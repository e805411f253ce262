"""Word-level, character-level and BPE tokenizers built with the `tokenizers` library.

Each builder returns a `PreTrainedTokenizerFast` that saves with `save_pretrained` and reloads with `AutoTokenizer`
offline with identical ids. Word-level and BPE tokens decode with a leading space per word (GPT-2's convention), so
text decoded piecewise (as pipelines do) joins with spaces; character-level tokens carry their own spaces. Special tokens are always `<unk>`, `<pad>`, `<bos>`, `<eos>` (ids 0-3 in that order), plus
`<mask>` when asked for (word2vec's fill-mask head).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = {"unk_token": "<unk>", "pad_token": "<pad>", "bos_token": "<bos>", "eos_token": "<eos>"}
MASK_TOKEN = "<mask>"


def _specials(with_mask: bool) -> list[str]:
    return list(SPECIAL_TOKENS.values()) + ([MASK_TOKEN] if with_mask else [])


def _wrap(tokenizer: Tokenizer, with_mask: bool, padding_side: str, model_max_length: int, **kwargs):
    # padding_side / model_max_length must go to the constructor: attributes set later are not saved (HF-NOTES).
    special = dict(SPECIAL_TOKENS)
    if with_mask:
        special["mask_token"] = MASK_TOKEN
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        padding_side=padding_side,
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,
        **special,
        **kwargs,
    )


def _train_word_level(tok: Tokenizer, texts: Iterable[str], trainer, specials: list[str]) -> None:
    """Train, then renumber the vocabulary 0..n-1: a corpus that already contains a special token's text (PTB's
    `<unk>`) makes the trainer count it as a word too and leave a hole in the ids."""
    tok.train_from_iterator(_batches(texts), trainer=trainer)
    words = [w for w, _ in sorted(tok.get_vocab(with_added_tokens=False).items(), key=lambda kv: kv[1])]
    ordered = specials + [w for w in words if w not in specials]
    tok.model = models.WordLevel(vocab={w: i for i, w in enumerate(ordered)}, unk_token=SPECIAL_TOKENS["unk_token"])


def _batches(texts: Iterable[str], size: int = 1000) -> Iterator[list[str]]:
    batch = []
    for text in texts:
        batch.append(text)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def build_word_level_tokenizer(
    texts: Iterable[str],
    *,
    vocab_size: int | None = None,
    min_frequency: int = 1,
    lowercase: bool = False,
    split_punctuation: bool = False,
    with_mask: bool = False,
    padding_side: str = "right",
    model_max_length: int = 1_000_000,
) -> PreTrainedTokenizerFast:
    """Train a word-level vocabulary on `texts` (whitespace split, optionally punctuation split and lower-cased).

    Words below `min_frequency` or beyond the `vocab_size` most frequent ones become `<unk>`.
    """
    tok = Tokenizer(models.WordLevel(unk_token=SPECIAL_TOKENS["unk_token"]))
    norms = [normalizers.NFKC()] + ([normalizers.Lowercase()] if lowercase else [])
    tok.normalizer = normalizers.Sequence(norms)
    pre = [pre_tokenizers.WhitespaceSplit()]
    if split_punctuation:
        pre.append(pre_tokenizers.Punctuation())
    tok.pre_tokenizer = pre_tokenizers.Sequence(pre)
    # Every word decodes with a leading space, as GPT-2's byte-level tokens (and build_bpe_tokenizer) do: the
    # text-generation pipeline decodes only the new tokens and appends them to the prompt, so "the time" + "was"
    # must come out as " was" (issue 19, point 10). A whole decode therefore starts with a space; strip it if needed.
    tok.decoder = decoders.Sequence([decoders.Replace(Regex("^"), " "), decoders.Fuse()])
    trainer = trainers.WordLevelTrainer(
        vocab_size=vocab_size if vocab_size is not None else 10**9,
        min_frequency=min_frequency,
        special_tokens=_specials(with_mask),
        show_progress=False,
    )
    _train_word_level(tok, texts, trainer, _specials(with_mask))
    return _wrap(tok, with_mask, padding_side, model_max_length)


def build_char_level_tokenizer(
    texts: Iterable[str],
    *,
    lowercase: bool = False,
    min_frequency: int = 1,
    with_mask: bool = False,
    padding_side: str = "right",
    model_max_length: int = 1_000_000,
) -> PreTrainedTokenizerFast:
    """One token per character (spaces included), as in d2l's character-level Time Machine model."""
    tok = Tokenizer(models.WordLevel(unk_token=SPECIAL_TOKENS["unk_token"]))
    norms = [normalizers.NFKC()] + ([normalizers.Lowercase()] if lowercase else [])
    tok.normalizer = normalizers.Sequence(norms)
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    trainer = trainers.WordLevelTrainer(
        vocab_size=10**9, min_frequency=min_frequency, special_tokens=_specials(with_mask), show_progress=False
    )
    _train_word_level(tok, texts, trainer, _specials(with_mask))
    return _wrap(tok, with_mask, padding_side, model_max_length)


def build_bpe_tokenizer(
    texts: Iterable[str],
    *,
    vocab_size: int = 8000,
    min_frequency: int = 2,
    lowercase: bool = False,
    with_mask: bool = False,
    padding_side: str = "right",
    model_max_length: int = 1_000_000,
) -> PreTrainedTokenizerFast:
    """Byte-level BPE (GPT-2 style) trained on `texts`; a joint source/target vocabulary for translation."""
    tok = Tokenizer(models.BPE(unk_token=None))
    norms = [normalizers.NFKC()] + ([normalizers.Lowercase()] if lowercase else [])
    tok.normalizer = normalizers.Sequence(norms)
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=_specials(with_mask),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_batches(texts), trainer=trainer)
    return _wrap(tok, with_mask, padding_side, model_max_length)


__all__ = ["SPECIAL_TOKENS", "MASK_TOKEN", "build_word_level_tokenizer", "build_char_level_tokenizer", "build_bpe_tokenizer"]
