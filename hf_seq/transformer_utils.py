"""Helpers for the Transformer family that are not part of the (Hub-exportable) model folder."""

from __future__ import annotations

import torch

from .plotting import plot_attention_heatmap


def _token_labels(tokenizer, ids) -> list[str]:
    # byte-level BPE pieces carry "Ġ" for a leading space; show them as "▁" like SentencePiece for readability
    return [tokenizer.convert_ids_to_tokens(int(i)).replace("Ġ", "▁") for i in ids]


@torch.no_grad()
def cross_attention_heatmap(
    model,
    tokenizer,
    source: str,
    path: str,
    layer: int = -1,
    head: int | None = None,
    **generate_kwargs,
) -> dict:
    """Translate `source`, then draw the encoder-decoder attention of `layer` (one `head`, or the mean over heads)
    between the source tokens and the generated target tokens. Returns the translation and the PNG path."""
    model.eval()
    enc = tokenizer(source, return_tensors="pt", truncation=True).to(model.device)
    if not {"max_new_tokens", "max_length"} & set(generate_kwargs) and model.generation_config.max_new_tokens is None:
        limit = 2 * enc["input_ids"].shape[1] + 10
        generate_kwargs["max_new_tokens"] = min(limit, model.config.max_position_embeddings)
    generated = model.generate(**enc, **generate_kwargs)[:1]  # (1, T) starting with the decoder start token
    out = model(**enc, decoder_input_ids=generated[:, :-1], output_attentions=True)
    weights = out.cross_attentions[layer][0]  # (heads, T-1, S): row t = attention while predicting token t+1
    weights = weights.mean(0) if head is None else weights[head]
    target_ids = generated[0, 1:]
    which = "mean over heads" if head is None else f"head {head}"
    layer_no = layer if layer >= 0 else len(out.cross_attentions) + layer
    plot_attention_heatmap(
        weights,
        _token_labels(tokenizer, enc["input_ids"][0]),
        _token_labels(tokenizer, target_ids),
        path,
        title=f"encoder-decoder attention, layer {layer_no + 1}, {which}",
    )
    return {"translation": tokenizer.decode(target_ids, skip_special_tokens=True).strip(), "path": path}


__all__ = ["cross_attention_heatmap"]
