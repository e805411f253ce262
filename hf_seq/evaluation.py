"""Evaluation in one place: every task's metric, used by the training runs and by `hf-seq evaluate` alike.

- language models: perplexity, the state carried across windows for the recurrent LMs (`evaluate_perplexity`), a
  sliding window for stateless ones (`windowed_perplexity`); `stream_perplexity` picks the protocol for a model;
- translation: `translate` (batched, input order kept), `bleu_report` (sacreBLEU BLEU/chrF with signatures, and
  tokenized lower-cased BLEU), `bleu_by_source_length`;
- word vectors: `word_similarity` (Spearman correlation through `scipy.stats.spearmanr`), `read_word_pairs`;
- tagging: `tagging_scores` (token accuracy, seqeval chunk precision/recall/F1), `read_conll`;
- text classification: `classification_accuracy`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

DEFAULT_BUCKETS = ((1, 8), (9, 12), (13, 16), (17, 20), (21, 1000))


@torch.no_grad()
def evaluate_perplexity(model, tokens: np.ndarray, batch_size: int = 10, bptt: int = 35, progress: bool = True) -> dict:
    """Perplexity of `tokens` (one contiguous stream) = exp(token-weighted mean NLL), every token after the first
    predicted exactly once, the state carried across windows as in Zaremba et al.'s evaluation."""
    model.eval()
    device = next(model.parameters()).device
    n = (len(tokens) - 1) // batch_size
    if n < 1:
        raise ValueError(f"{len(tokens)} tokens are too few to evaluate with batch_size={batch_size}")
    data = torch.as_tensor(tokens[: batch_size * n + 1])
    x = data[:-1].view(batch_size, n).to(device)
    y = data[1:].view(batch_size, n).to(device)
    nll, count, cache = 0.0, 0, None
    for start in tqdm(range(0, n, bptt), desc="perplexity", disable=not progress, leave=False):
        xi, yi = x[:, start : start + bptt], y[:, start : start + bptt]
        out = model(input_ids=xi, cache=cache, use_cache=True)
        cache = out.cache
        nll += F.cross_entropy(out.logits.flatten(0, 1).float(), yi.flatten(), reduction="sum").item()
        count += yi.numel()
    mean = nll / count
    return {"loss": mean, "perplexity": math.exp(mean), "tokens": count}


def windowed_perplexity(
    model, tokens: np.ndarray, window: int, stride: int, batch_size: int = 16, progress: bool = True
) -> dict:
    """Perplexity of a stateless LM over one stream: windows of `window` tokens every `stride`; the first window
    scores all its targets, later ones only their last `stride` targets, so every token after the first is predicted
    exactly once with at least `window - stride` tokens of context. Token-weighted mean NLL, like
    `evaluate_perplexity`."""
    if not 0 < stride <= window:
        raise ValueError(f"stride ({stride}) must be in (0, window={window}]")
    model.eval()
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    data = torch.as_tensor(tokens)
    n_targets = len(tokens) - 1
    nll, count = 0.0, 0
    starts = list(range(0, max(n_targets - window, 0) + 1, stride)) if n_targets >= window else [0]
    # tail: targets after the last full window
    last_end = starts[-1] + min(window, n_targets)
    jobs = [(s, min(window, n_targets - s), 0 if k == 0 else window - stride) for k, s in enumerate(starts)]
    if last_end < n_targets:
        s = n_targets - window
        jobs.append((s, window, window - (n_targets - last_end)))
    bar = tqdm(total=len(jobs), desc="perplexity", disable=not progress, leave=False)
    with torch.no_grad():
        for length in sorted({j[1] for j in jobs}):
            group = [j for j in jobs if j[1] == length]
            for b in range(0, len(group), batch_size):
                bar.update(len(group[b : b + batch_size]))
                chunk = group[b : b + batch_size]
                x = torch.stack([data[s : s + length] for s, _, _ in chunk])
                y = torch.stack([data[s + 1 : s + length + 1] for s, _, _ in chunk])
                logits = model(input_ids=x.to(device), use_cache=False).logits.float()
                losses = F.cross_entropy(logits.flatten(0, 1), y.to(device).flatten(), reduction="none").view(len(chunk), length)
                for row, (_, _, skip) in enumerate(chunk):
                    nll += losses[row, skip:].sum().item()
                    count += length - skip
    bar.close()
    if count != n_targets:
        raise RuntimeError(f"windowed evaluation scored {count} targets, expected {n_targets}")
    mean = nll / count
    return {"loss": mean, "perplexity": math.exp(mean), "tokens": count}


def carries_state(model) -> bool:
    """True for a model whose generation state is its own object (the recurrent family's `RecurrentCache`, HF-NOTES
    route 2): its perplexity carries that state from window to window. A model with transformers' key/value cache has
    no state to carry and is scored with a sliding window."""
    return not type(model)._supports_default_dynamic_cache()


def stream_perplexity(model, tokens, *, block_size: int, batch_size: int = 16, stride: int | None = None,
                      progress: bool = False) -> dict:
    """Perplexity of one token stream with the protocol that suits `model`: the state carried across windows of
    `block_size` for a recurrent LM (`evaluate_perplexity`), else a sliding window of `block_size` tokens moved by
    `stride` (default `block_size // 2`, `windowed_perplexity`)."""
    tokens = np.asarray(tokens)
    if block_size < 1 or batch_size < 1:
        raise ValueError(f"block_size ({block_size}) and batch_size ({batch_size}) must be >= 1")
    if len(tokens) < 2:
        raise ValueError(f"{len(tokens)} tokens: perplexity needs at least 2 (one to predict from, one to predict)")
    if carries_state(model):
        return evaluate_perplexity(model, tokens, batch_size=min(batch_size, len(tokens) - 1), bptt=block_size,
                                   progress=progress)
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit is not None and block_size > limit:
        raise ValueError(f"block_size {block_size} exceeds the model's max_position_embeddings={limit}")
    return windowed_perplexity(model, tokens, window=min(block_size, len(tokens) - 1),
                               stride=stride or max(1, min(block_size, len(tokens) - 1) // 2), batch_size=batch_size,
                               progress=progress)


def lm_perplexity(model, tokenizer, lines: Sequence[str], *, block_size: int, batch_size: int = 16,
                  progress: bool = False) -> dict:
    """Perplexity of text lines joined into one stream, each line followed by the tokenizer's `eos_token` (as the
    training runs build their streams). Returns {"loss", "perplexity", "tokens"}: `tokens` counts the stream."""
    ids = []
    for line in lines:
        ids += tokenizer(line, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    result = stream_perplexity(model, ids, block_size=block_size, batch_size=batch_size, progress=progress)
    return {"loss": result["loss"], "perplexity": result["perplexity"], "tokens": len(ids)}


# --- translation -----------------------------------------------------------------------------------------------------
def _moses(target_lang: str):
    try:
        from sacremoses import MosesPunctNormalizer, MosesTokenizer
    except ImportError:
        return None
    norm, tok = MosesPunctNormalizer(target_lang), MosesTokenizer(target_lang)
    return lambda text: tok.tokenize(norm.normalize(text.lower()), escape=True, return_str=True)


def bleu_report(
    hypotheses: Sequence[str],
    references: Sequence[str],
    target_lang: str = "en",
    tokenized_references: Sequence[str] | None = None,
) -> dict:
    """BLEU / chrF (detokenized, sacreBLEU defaults) with signatures, and tokenized lower-cased BLEU (Moses normalize +
    tokenize when `sacremoses` is installed, else sacreBLEU's 13a tokenizer lower-cased), the form Multi30k papers
    report."""
    import sacrebleu

    hypotheses, references = list(hypotheses), list(references)
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references.")
    if not references:
        raise ValueError("no sentences to score: hypotheses and references are empty")
    bleu, chrf = sacrebleu.metrics.BLEU(), sacrebleu.metrics.CHRF()
    report = {
        "bleu": round(bleu.corpus_score(hypotheses, [references]).score, 2),
        "bleu_signature": str(bleu.get_signature()),
        "chrf": round(chrf.corpus_score(hypotheses, [references]).score, 2),
        "chrf_signature": str(chrf.get_signature()),
    }
    moses = _moses(target_lang)
    if moses is None:
        lc = sacrebleu.metrics.BLEU(lowercase=True)
        report["bleu_tok_lc"] = round(lc.corpus_score(hypotheses, [references]).score, 2)
        report["bleu_tok_lc_signature"] = str(lc.get_signature()) + " (13a tokenizer, lower-cased)"
        return report
    refs = list(tokenized_references) if tokenized_references is not None else [moses(r) for r in references]
    tok_bleu = sacrebleu.metrics.BLEU(tokenize="none", force=True)
    report["bleu_tok_lc"] = round(tok_bleu.corpus_score([moses(h) for h in hypotheses], [refs]).score, 2)
    report["bleu_tok_lc_signature"] = str(tok_bleu.get_signature()) + " (moses norm+tok, lower-cased)"
    return report


def bleu_by_source_length(
    source_lengths: Sequence[int],
    hypotheses: Sequence[str],
    references: Sequence[str],
    buckets: Sequence[tuple[int, int]] = DEFAULT_BUCKETS,
) -> list[dict]:
    """Corpus BLEU (sacreBLEU defaults) of the sentences whose source length falls in each inclusive bucket."""
    import sacrebleu

    rows = []
    for low, high in buckets:
        idx = [i for i, n in enumerate(source_lengths) if low <= n <= high]
        score = None
        if idx:
            score = sacrebleu.corpus_bleu([hypotheses[i] for i in idx], [[references[i] for i in idx]]).score
        label = f"{low}-{high}" if high < 1000 else f"{low}+"
        rows.append({"bucket": label, "sentences": len(idx), "bleu": None if score is None else round(score, 2)})
    return rows


def default_max_new_tokens(model, source_length: int, generate_kwargs: dict) -> int | None:
    """The length cap the `hf-seq-translation` pipeline applies: `2 * source_length + 10` new tokens when neither the
    call nor the model's generation config sets a length (generate()'s own default of 20 cuts long sentences)."""
    lengths = {"max_length", "max_new_tokens"}
    if lengths & set(generate_kwargs) or lengths & set(model.generation_config.to_diff_dict()):
        return None
    return 2 * source_length + 10


@torch.no_grad()
def translate(model, tokenizer, sentences: Sequence[str], batch_size: int = 64, progress: bool = False,
              target_tokenizer=None, **generate_kwargs) -> list[str]:
    """Translate `sentences` in batches of similar length (less padding) and return them in the input order, decoded
    with `target_tokenizer` (default: `tokenizer`).

    Use this rather than `Seq2SeqTrainer.predict` when the trainer was built with
    `train_sampling_strategy="group_by_length"`: transformers 5.24 then length-groups the evaluation sampler too, and
    `predict()` returns its predictions in that permuted order."""
    sentences = list(sentences)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    target_tokenizer = target_tokenizer if target_tokenizer is not None else tokenizer
    was_training = model.training
    model.eval()
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
    out = [""] * len(sentences)
    try:
        for start in tqdm(range(0, len(order), batch_size), desc="translating", disable=not progress, leave=False):
            idx = order[start : start + batch_size]
            enc = tokenizer([sentences[i] for i in idx], return_tensors="pt", padding=True, truncation=True)
            inputs = {k: enc[k].to(model.device) for k in ("input_ids", "attention_mask") if k in enc}
            kwargs = dict(generate_kwargs)
            cap = default_max_new_tokens(model, inputs["input_ids"].shape[1], kwargs)
            if cap is not None:
                kwargs["max_new_tokens"] = cap
            generated = model.generate(**inputs, **kwargs)
            for i, text in zip(idx, target_tokenizer.batch_decode(generated, skip_special_tokens=True)):
                out[i] = text.strip()
    finally:
        model.train(was_training)
    return out


# --- word vectors ----------------------------------------------------------------------------------------------------
def read_word_pairs(path: str | os.PathLike) -> list[tuple[str, str, float]]:
    """A word-similarity file: `word1 word2 score` per line (tab- or space-separated; further columns ignored, blank
    and `#` lines skipped, a header line first allowed). Errors name the file and the line."""
    pairs = []
    for number, line in _numbered_lines(path):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        fields = stripped.split("\t") if "\t" in stripped else stripped.split()
        if len(fields) < 3:
            raise ValueError(f"{path}:{number}: expected 'word1 word2 score', got {stripped!r}")
        try:
            score = float(fields[2])
        except ValueError:
            if not pairs and number == 1:
                continue  # a header line ("Word 1  Word 2  Human (mean)")
            raise ValueError(f"{path}:{number}: score {fields[2]!r} is not a number") from None
        if not math.isfinite(score):
            raise ValueError(f"{path}:{number}: score {fields[2]!r} is not a finite number")
        pairs.append((fields[0].strip(), fields[1].strip(), score))
    return pairs


def word_similarity(model, tokenizer, pairs: Sequence[tuple[str, str, float]]) -> dict:
    """Spearman correlation (`scipy.stats.spearmanr`) between the cosine of the model's input vectors and the human
    scores of the pairs whose two words are in the vocabulary. Returns {"spearman", "pairs", "coverage"}."""
    from scipy.stats import spearmanr

    if not pairs:
        raise ValueError("no word pairs to score")
    vocab = tokenizer.get_vocab()
    vectors = F.normalize(model.get_input_embeddings().weight.detach().float(), dim=-1)
    known = [(a, b, s) for a, b, s in pairs if a in vocab and b in vocab]
    if len(known) < 2:
        raise ValueError(f"{len(known)} of {len(pairs)} pairs have both words in the vocabulary; need at least 2")
    cosines = [float(vectors[vocab[a]] @ vectors[vocab[b]]) for a, b, _ in known]
    scores = [s for _, _, s in known]
    rho = spearmanr(cosines, scores).statistic if len(set(cosines)) > 1 and len(set(scores)) > 1 else math.nan
    if not math.isfinite(rho):
        raise ValueError(f"the Spearman correlation of the {len(known)} known pairs is undefined: the human scores or "
                         "the cosines are all equal")
    return {"spearman": float(rho), "pairs": len(known), "coverage": len(known) / len(pairs)}


# --- tagging ---------------------------------------------------------------------------------------------------------
def _numbered_lines(path):
    """(line number, line) of a UTF-8 text file; a decoding error names the file and the line."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ValueError(f"{path}:{line}: not UTF-8 text ({e.reason})") from None
    return enumerate(text.splitlines(), start=1)


def read_conll(path: str | os.PathLike, columns: Sequence[str | None], max_samples: int | None = None) -> list[dict]:
    """Sentences of a CoNLL file: one token per line as whitespace-separated fields, a blank line between sentences
    (`-DOCSTART-` lines skipped). `columns` names the fields (None: a field to ignore), e.g. `("words", "pos", "tags")`
    for CoNLL-2000; every token line must have exactly `len(columns)` fields. Returns one dict per sentence,
    {name: [field per token]}. Errors name the file and the line."""
    names = [c for c in columns if c is not None]
    if not names:
        raise ValueError(f"columns {list(columns)!r}: name at least one column")
    sentences, current = [], {n: [] for n in names}
    for number, line in _numbered_lines(path):
        fields = line.split()
        if fields and fields[0] == "-DOCSTART-":
            continue
        if not fields:
            if current[names[0]]:
                sentences.append(current)
                current = {n: [] for n in names}
                if max_samples and len(sentences) >= max_samples:
                    return sentences
            continue
        if len(fields) != len(columns):
            raise ValueError(f"{path}:{number}: expected {len(columns)} fields ({' '.join(str(c) for c in columns)}), "
                             f"got {len(fields)}: {line.strip()!r}")
        for name, value in zip(columns, fields):
            if name is not None:
                current[name].append(value)
    if current[names[0]]:
        sentences.append(current)
    return sentences


@torch.no_grad()
def tagging_scores(model, tokenizer, sentences: Sequence[dict], batch_size: int = 16, progress: bool = False) -> dict:
    """Token accuracy and seqeval chunk precision/recall/F1 (conlleval-compatible) of a token-classification model on
    `sentences` ({"words", "tags"}, plus "features" for a model with `config.feature_vocab_size`, e.g. POS tags, mapped
    through `config.feature_names`; an unknown feature is id 0). Each word is tagged by its first piece's arg-max."""
    if not sentences:
        raise ValueError("no sentences to tag")
    id2label = {int(k): v for k, v in model.config.id2label.items()}
    n_features = int(getattr(model.config, "feature_vocab_size", 0) or 0)
    feature2id = {}
    if n_features:
        names = list(getattr(model.config, "feature_names", None) or [])
        if not names:
            raise ValueError("the model reads `feature_ids` but its config has no `feature_names` to map features to ids")
        if any("features" not in s for s in sentences):
            raise ValueError(f"the model reads one feature per word ({n_features} ids, e.g. POS tags): give a "
                             "'features' column")
        feature2id = {name: i for i, name in enumerate(names)}
    model.eval()
    gold, pred = [], []
    for start in tqdm(range(0, len(sentences), batch_size), desc="tagging", disable=not progress, leave=False):
        batch = sentences[start : start + batch_size]
        enc = tokenizer([s["words"] for s in batch], is_split_into_words=True, padding=True, return_tensors="pt")
        inputs = {k: enc[k].to(model.device) for k in ("input_ids", "attention_mask")}
        if n_features:
            inputs["feature_ids"] = torch.tensor(
                [[0 if w is None else feature2id.get(s["features"][w], 0) for w in enc.word_ids(i)]
                 for i, s in enumerate(batch)], device=model.device)
        best = model(**inputs).logits.argmax(-1).cpu()
        for i, s in enumerate(batch):
            first = {}
            for pos, word in enumerate(enc.word_ids(i)):
                if word is not None and word not in first:
                    first[word] = pos
            if len(first) != len(s["words"]):
                missing = [w for j, w in enumerate(s["words"]) if j not in first]
                raise ValueError(f"sentence {start + i + 1}: the tokenizer gives no token for {missing[:5]}")
            gold.append(list(s["tags"]))
            pred.append([id2label[int(best[i, first[j]])] for j in range(len(s["words"]))])
    pairs = [(g, p) for gs, ps in zip(gold, pred) for g, p in zip(gs, ps)]
    result = {"accuracy": sum(g == p for g, p in pairs) / len(pairs), "sentences": len(sentences)}
    try:
        from seqeval.metrics import f1_score, precision_score, recall_score
    except ImportError:  # the `metrics` extra: chunk scores need seqeval
        return result
    result.update(f1=f1_score(gold, pred), precision=precision_score(gold, pred), recall=recall_score(gold, pred))
    return result


# --- text classification ---------------------------------------------------------------------------------------------
@torch.no_grad()
def classification_accuracy(model, tokenizer, examples: Sequence[tuple[str, str]], batch_size: int = 16,
                            progress: bool = False) -> dict:
    """Accuracy of a sequence classifier on (label, text) examples; labels are the model's `label2id` names."""
    if not examples:
        raise ValueError("no examples to classify")
    label2id = {str(k): v for k, v in model.config.label2id.items()}
    unknown = sorted({label for label, _ in examples} - set(label2id))
    if unknown:
        raise ValueError(f"labels {unknown} are not the model's ({sorted(label2id)})")
    model.eval()
    correct = 0
    for start in tqdm(range(0, len(examples), batch_size), desc="classifying", disable=not progress, leave=False):
        batch = examples[start : start + batch_size]
        enc = tokenizer([text for _, text in batch], padding=True, truncation=True, return_tensors="pt")
        inputs = {k: enc[k].to(model.device) for k in ("input_ids", "attention_mask")}
        best = model(**inputs).logits.argmax(-1).tolist()
        correct += sum(p == label2id[label] for p, (label, _) in zip(best, batch))
    return {"accuracy": correct / len(examples), "examples": len(examples)}


__all__ = [
    "DEFAULT_BUCKETS",
    "bleu_by_source_length",
    "bleu_report",
    "carries_state",
    "classification_accuracy",
    "default_max_new_tokens",
    "evaluate_perplexity",
    "lm_perplexity",
    "read_conll",
    "read_word_pairs",
    "stream_perplexity",
    "tagging_scores",
    "translate",
    "windowed_perplexity",
    "word_similarity",
]
