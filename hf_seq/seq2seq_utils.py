"""Evaluation and picture helpers for translation models (any `AutoModelForSeq2SeqLM` + tokenizer).

- `bleu_report`: sacreBLEU BLEU and chrF on detokenized text with their signatures, plus tokenized lower-cased BLEU
  (Moses normalize + tokenize when `sacremoses` is installed, else sacreBLEU's 13a tokenizer lower-cased), the form
  Multi30k papers report.
- `bleu_by_source_length` / `plot_bleu_by_length`: corpus BLEU per source-length bucket, one bar series per system.
- `translation_attention_heatmap`: translate one sentence greedily and draw its cross-attention as a PNG.
- `translate`: batched generation over a list of sentences, returned in the input order.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .plotting import _pyplot, plot_attention_heatmap

DEFAULT_BUCKETS = ((1, 8), (9, 12), (13, 16), (17, 20), (21, 1000))


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
    """BLEU / chrF (detokenized, sacreBLEU defaults) with signatures, and tokenized lower-cased BLEU."""
    import sacrebleu

    hypotheses, references = list(hypotheses), list(references)
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references.")
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


def plot_bleu_by_length(runs: dict[str, list[dict]], path: str, title: str | None = None) -> str:
    """Grouped bars: one series per system (`{name: bleu_by_source_length(...)}`), buckets on the x axis."""
    if not runs:
        raise ValueError("runs is empty: pass {system name: bleu_by_source_length rows}")
    plt = _pyplot()
    labels = [r["bucket"] for r in next(iter(runs.values()))]
    width = 0.8 / len(runs)
    fig, ax = plt.subplots(figsize=(1.3 * len(labels) + 2.5, 4))
    for k, (name, rows) in enumerate(runs.items()):
        if [r["bucket"] for r in rows] != labels:
            raise ValueError(f"run {name!r} uses other buckets than the first run")
        xs = [i + (k - (len(runs) - 1) / 2) * width for i in range(len(labels))]
        ax.bar(xs, [r["bleu"] or 0.0 for r in rows], width=width, label=name)
    counts = [r["sentences"] for r in next(iter(runs.values()))]
    ax.set_xticks(range(len(labels)), labels=[f"{lab}\n(n={n})" for lab, n in zip(labels, counts)])
    ax.set_xlabel("source length (tokens)")
    ax.set_ylabel("BLEU")
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


@torch.no_grad()
def translate(model, tokenizer, sentences: Sequence[str], batch_size: int = 64, progress: bool = False,
              **generate_kwargs) -> list[str]:
    """Translate `sentences` in batches of similar length (less padding) and return them in the input order.

    Use this rather than `Seq2SeqTrainer.predict` when the trainer was built with
    `train_sampling_strategy="group_by_length"`: transformers 5.24 then length-groups the evaluation sampler too, and
    `predict()` returns its predictions in that permuted order."""
    from tqdm.auto import tqdm

    was_training = model.training
    model.eval()
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
    out = [""] * len(sentences)
    for start in tqdm(range(0, len(order), batch_size), desc="translating", disable=not progress, leave=False):
        idx = order[start : start + batch_size]
        enc = tokenizer([sentences[i] for i in idx], return_tensors="pt", padding=True, truncation=True)
        generated = model.generate(**enc.to(model.device), **generate_kwargs)
        for i, text in zip(idx, tokenizer.batch_decode(generated, skip_special_tokens=True)):
            out[i] = text.strip()
    model.train(was_training)
    return out


def _token_labels(tokenizer, ids) -> list[str]:
    return [tok.replace("Ġ", "").replace("▁", "") or "␣" for tok in tokenizer.convert_ids_to_tokens(list(ids))]


@torch.no_grad()
def translation_attention_heatmap(
    model, tokenizer, source: str, path: str, target_tokenizer=None, max_new_tokens: int = 40, title: str | None = None
) -> dict:
    """Translate `source` greedily with `output_attentions=True` and save its (target x source) cross-attention.

    Works for models whose `cross_attentions` entries are `(batch, tgt, src)` (RNN attention) or
    `(batch, heads, tgt, src)` (multi-head: averaged over heads; the last entry of the tuple, i.e. the top layer).
    Returns {"path", "translation", "source_tokens", "target_tokens"}.
    """
    target_tokenizer = target_tokenizer or tokenizer
    was_training = model.training
    model.eval()
    enc = tokenizer(source, return_tensors="pt")
    out = model.generate(
        input_ids=enc["input_ids"].to(model.device),
        attention_mask=enc["attention_mask"].to(model.device),
        max_new_tokens=max_new_tokens,
        num_beams=1,
        do_sample=False,
        output_attentions=True,
        return_dict_in_generate=True,
    )
    model.train(was_training)
    if not out.cross_attentions or out.cross_attentions[0] is None or out.cross_attentions[0][-1] is None:
        raise ValueError("this model returns no cross-attention (e.g. an RNN seq2seq with attention='none').")
    rows = []
    for step in out.cross_attentions:  # one entry per generated token
        w = step[-1][0]
        w = w.mean(0) if w.dim() == 3 else w  # (tgt=1, src)
        rows.append(w[-1])
    matrix = torch.stack(rows).float().cpu()
    target_ids = out.sequences[0, 1:].tolist()
    target_ids = target_ids[: len(rows)]
    source_tokens = _token_labels(tokenizer, enc["input_ids"][0].tolist())
    target_tokens = _token_labels(target_tokenizer, target_ids)
    plot_attention_heatmap(matrix, source_tokens, target_tokens, path, title=title)
    translation = target_tokenizer.decode(target_ids, skip_special_tokens=True).strip()
    return {"path": path, "translation": translation, "source_tokens": source_tokens, "target_tokens": target_tokens}


__all__ = [
    "DEFAULT_BUCKETS",
    "bleu_report",
    "bleu_by_source_length",
    "plot_bleu_by_length",
    "translation_attention_heatmap",
    "translate",
]
