"""word2vec's vocabulary and corpus: one counting pass (gensim's vocabulary order), the word-level tokenizer, the
encoded corpus and a pair dataset for `Trainer`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
from transformers import PreTrainedTokenizerFast
from transformers.utils import logging

from ...tokenization import MASK_TOKEN, SPECIAL_TOKENS
from . import (
    Word2VecConfig,
)

logger = logging.get_logger(__name__)

# gensim's MAX_WORDS_IN_BATCH: longer sentences are truncated to this many words
MAX_SENTENCE_LENGTH = 10000


# ---------------------------------------------------------------------------------------------------------------------
# 1. vocabulary and corpus: one counting pass
# ---------------------------------------------------------------------------------------------------------------------
@dataclass
class Word2VecCorpus:
    """A corpus encoded once: in-vocabulary token ids and the sentence each belongs to (windows never cross one)."""

    ids: np.ndarray  # int64 [N]
    sentence_ids: np.ndarray  # int64 [N]
    raw_words: int  # words in the text before dropping the ones below min_count (gensim's "raw words")

    def __len__(self) -> int:
        return int(self.ids.shape[0])


def word_level_tokenizer_from_vocab(words: list[str], lowercase: bool = False) -> PreTrainedTokenizerFast:
    """A whitespace WordLevel tokenizer with ids `<unk> <pad> <bos> <eos> <mask>` then `words` in order."""
    specials = list(SPECIAL_TOKENS.values()) + [MASK_TOKEN]
    vocab = {tok: i for i, tok in enumerate(specials)}
    for word in words:
        if word in vocab:
            raise ValueError(f"word {word!r} appears twice in the vocabulary or collides with a special token")
        vocab[word] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab, unk_token=SPECIAL_TOKENS["unk_token"]))
    norms = [normalizers.NFKC()] + ([normalizers.Lowercase()] if lowercase else [])
    tok.normalizer = normalizers.Sequence(norms)
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        clean_up_tokenization_spaces=False,
        mask_token=MASK_TOKEN,
        model_max_length=1_000_000,
        **SPECIAL_TOKENS,
    )


def prepare_word2vec(
    texts: Iterable[str],
    *,
    min_count: int = 5,
    lowercase: bool = False,
    max_vocab_size: int | None = None,
    max_sentence_length: int = MAX_SENTENCE_LENGTH,
    **config_kwargs,
) -> tuple[PreTrainedTokenizerFast, Word2VecConfig, Word2VecCorpus]:
    """Count, build the vocabulary and encode `texts` (one sentence per item, whitespace-separated words) in one pass.

    The vocabulary holds the words seen at least `min_count` times, most frequent first (equal counts in gensim's
    order: the word first seen latest comes first), after the five special tokens; `config_kwargs` go to `Word2VecConfig` (architecture, objective, window, ...).
    """
    sentences = []
    counter: Counter = Counter()
    for text in texts:
        words = (text.lower() if lowercase else text).split()
        if words:
            words = words[:max_sentence_length]
            sentences.append(words)
            counter.update(words)
    raw_words = sum(len(s) for s in sentences)
    if raw_words == 0:
        raise ValueError("the corpus is empty: no words found in the given texts")
    # gensim's order: most frequent first, equal counts latest-first-seen first (the counter holds words in the order
    # they were first seen). The Huffman tree is merged over this order as gensim merges it, so both get the same
    # tree; which tied rare words become siblings moves CBOW + hierarchical softmax by several WordSim-353 points
    # (benchmarks/results/word2vec_ablation_wikitext2.md).
    seen = [(w, c) for w, c in counter.items() if c >= min_count]
    kept = [seen[i] for i in sorted(range(len(seen)), key=lambda i: (-seen[i][1], -i))]
    if max_vocab_size is not None:
        kept = kept[:max_vocab_size]
    if not kept:
        raise ValueError(
            f"no word occurs at least min_count={min_count} times (the corpus has {raw_words} words, "
            f"{len(counter)} distinct, most frequent seen {counter.most_common(1)[0][1]} times); lower min_count"
        )
    # a corpus word spelled like a special token (WikiText's "<unk>") is trained as that token
    specials = list(SPECIAL_TOKENS.values()) + [MASK_TOKEN]
    regular = [(w, c) for w, c in kept if w not in specials]
    tokenizer = word_level_tokenizer_from_vocab([w for w, _ in regular], lowercase=lowercase)
    word_counts = [counter[w] if counter[w] >= min_count else 0 for w in specials] + [c for _, c in regular]
    config = Word2VecConfig(
        vocab_size=len(word_counts),
        word_counts=word_counts,
        min_count=min_count,
        pad_token_id=tokenizer.pad_token_id,
        mask_token_id=tokenizer.mask_token_id,
        **config_kwargs,
    )
    vocab = {w: i for i, w in enumerate(specials) if word_counts[i] > 0}
    vocab.update({w: i + len(specials) for i, (w, _) in enumerate(regular)})
    ids, sent = [], []
    for s_idx, words in enumerate(sentences):
        enc = [vocab[w] for w in words if w in vocab]
        ids.extend(enc)
        sent.extend([s_idx] * len(enc))
    corpus = Word2VecCorpus(np.asarray(ids, dtype=np.int64), np.asarray(sent, dtype=np.int64), raw_words)
    check_trainable(config, corpus)
    return tokenizer, config, corpus


def encode_corpus(texts: Iterable[str], tokenizer, config: Word2VecConfig, lowercase: bool = False) -> Word2VecCorpus:
    """Encode new text with an existing vocabulary (to continue training); unknown words are dropped, special tokens
    too unless they were trained as words (count > 0)."""
    vocab = tokenizer.get_vocab()
    specials = set(tokenizer.all_special_tokens)
    counts = config.word_counts
    ids, sent, raw = [], [], 0
    for s_idx, text in enumerate(texts):
        words = (text.lower() if lowercase else text).split()[:MAX_SENTENCE_LENGTH]
        raw += len(words)
        enc = [vocab[w] for w in words if w in vocab and (w not in specials or counts[vocab[w]] > 0)]
        ids.extend(enc)
        sent.extend([s_idx] * len(enc))
    if raw == 0:
        raise ValueError("the corpus is empty: no words found in the given texts")
    return Word2VecCorpus(np.asarray(ids, dtype=np.int64), np.asarray(sent, dtype=np.int64), raw)


def check_trainable(config: Word2VecConfig, corpus: Word2VecCorpus) -> None:
    """Clear errors for corpora word2vec cannot learn from (instead of silently training on nothing)."""
    if config.word_counts is None:
        raise ValueError("config.word_counts is None: build the config with prepare_word2vec() or pass word_counts")
    if len(corpus) == 0:
        raise ValueError(f"the corpus has no word in the vocabulary (raw words: {corpus.raw_words})")
    distinct = int(np.count_nonzero(np.asarray(config.word_counts)))
    if distinct < 2:
        raise ValueError(
            f"the vocabulary has {distinct} word(s) with count >= min_count={config.min_count}; word2vec needs at "
            f"least 2 distinct words (a context word and a different noise word or Huffman branch)"
        )
    _, sizes = np.unique(corpus.sentence_ids, return_counts=True)
    if sizes.max() < 2:
        raise ValueError(
            f"every sentence has fewer than 2 in-vocabulary words, so no (centre, context) pair fits in a "
            f"window of {config.window}; lower min_count={config.min_count} or join the sentences"
        )

