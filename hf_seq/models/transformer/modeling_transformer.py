"""The Transformer of Vaswani et al. (2017), "Attention Is All You Need" (arXiv:1706.03762), batch-first.

Read leaf to root, in the paper's order: input checks → positional encoding (§3.5) → scaled dot-product and
multi-head attention (§3.2) → position-wise feed-forward (§3.3) → encoder / decoder layers with residual + LayerNorm
(§3.1, Figure 1) → stacks with embeddings scaled by sqrt(d_model) (§3.4) → the encoder-decoder and decoder-only heads.

Attention runs through `torch.nn.functional.scaled_dot_product_attention`; an eager path (the formula written out)
runs instead when `output_attentions=True` or `attn_implementation="eager"`, so attention weights can be returned.

Input checks that read tensor values (id range, mask values) run in eager mode only: a Python `if` over a tensor value
cannot be traced by `torch.compile(fullgraph=True)` or `torch.export` (issue #19), so they are skipped there.

Both generative heads work with transformers' static cache (`generate(..., cache_implementation="static")`, issue #21):
the keys/values then have the cache's fixed length at every step, generate() passes the 4-D masks it builds for them
(accepted as prepared masks), and the decode step traces into one graph for `torch.compile` (`compile_config=`).
"""

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.cache_utils import Cache, DynamicCache, EncoderDecoderCache
from transformers.generation.stopping_criteria import EosTokenCriteria, MaxLengthCriteria
from transformers.modeling_outputs import (
    BaseModelOutput,
    BaseModelOutputWithPastAndCrossAttentions,
    CausalLMOutputWithCrossAttentions,
    Seq2SeqLMOutput,
    Seq2SeqModelOutput,
)
from transformers.utils import logging

from .configuration_transformer import TransformerConfig, TransformerDecoderConfig

try:  # fake tensors (what torch.compile traces with) hold no values to check
    from torch._subclasses.fake_tensor import is_fake as _is_fake
except ImportError:  # pragma: no cover - older torch

    def _is_fake(tensor) -> bool:
        return False


logger = logging.get_logger(__name__)

# Keyword arguments a caller may legitimately pass that these models do not use: `cache_position` (transformers 4
# generate, remote-code callers; positions here come from the mask and the cache). Anything else unknown is refused.
_IGNORED_KWARGS = frozenset({"cache_position"})


def sinusoidal_position_encoding(num_positions: int, d_model: int) -> torch.Tensor:
    """The table of §3.5: PE(pos, 2i) = sin(pos / 10000^(2i/d_model)), PE(pos, 2i+1) = cos(pos / 10000^(2i/d_model)).

    Both members of a pair share the exponent 2i/d_model, so row 0 is (0, 1, 0, 1, ...). Computed in float64 and
    returned as float32 (exact to float32 rounding). Shape (num_positions, d_model).
    """
    position = torch.arange(num_positions, dtype=torch.float64).unsqueeze(1)  # (P, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)  # (d/2,) = 2i
    angle = position / torch.pow(10000.0, two_i / d_model)  # (P, d/2)
    table = torch.stack((torch.sin(angle), torch.cos(angle)), dim=-1)  # (P, d/2, 2): even = sin, odd = cos
    return table.reshape(num_positions, d_model).to(torch.float32)


def shift_tokens_right(labels: torch.Tensor, pad_token_id: int, decoder_start_token_id: int) -> torch.Tensor:
    """Teacher forcing inputs: prepend the start token, drop the last label, and turn ignored labels (-100) into pad."""
    shifted = labels.new_zeros(labels.shape)
    shifted[:, 1:] = labels[:, :-1].clone()
    shifted[:, 0] = decoder_start_token_id
    shifted.masked_fill_(shifted == -100, pad_token_id)
    return shifted


# --- input checks ----------------------------------------------------------------------------------------------------
def _is_exporting() -> bool:
    return getattr(torch.compiler, "is_exporting", lambda: False)()


def _is_traced(*tensors: torch.Tensor | None) -> bool:
    """True under torch.compile, torch.export or jit tracing, or for fake/meta tensors: no values to branch on."""
    if torch.compiler.is_compiling() or torch.jit.is_tracing() or _is_exporting():
        return True
    return any(t is not None and (t.device.type == "meta" or _is_fake(t)) for t in tensors)


def _refuse_unknown_kwargs(model: nn.Module, kwargs: dict) -> None:
    """A misspelt argument (`attention_maks=`) or a transformers-4 name (`past_key_values=`) must not run as if absent."""
    unknown = sorted(set(kwargs) - _IGNORED_KWARGS)
    if unknown:
        hint = " (the generation state is called `cache` in transformers 5)" if "past_key_values" in unknown else ""
        raise TypeError(f"{type(model).__name__}.forward() got unexpected keyword argument(s) {unknown}{hint}.")


def _check_inputs(input_ids, inputs_embeds, d_model: int, prefix: str = "") -> tuple[int, int]:
    """Exactly one of ids (B, T) or embeddings (B, T, d_model); returns (B, T). Only shapes and dtypes: traceable.
    `prefix` is "decoder_" for the decoder of the encoder-decoder, whose arguments carry that name there."""
    ids_name, embeds_name = f"{prefix}input_ids", f"{prefix}inputs_embeds"
    if (input_ids is None) == (inputs_embeds is None):
        raise ValueError(
            f"Give exactly one of `{ids_name}` (batch, length) and `{embeds_name}` (batch, length, d_model)."
        )
    if input_ids is not None:
        if input_ids.is_floating_point() or input_ids.is_complex() or input_ids.dtype == torch.bool:
            raise TypeError(f"`{ids_name}` must be an integer tensor, got dtype {input_ids.dtype}.")
        if input_ids.dim() != 2 or input_ids.numel() == 0:
            raise ValueError(
                f"`{ids_name}` must be (batch, length) with at least one token, got shape {tuple(input_ids.shape)}."
            )
        return input_ids.shape
    if inputs_embeds.dim() != 3 or inputs_embeds.shape[-1] != d_model or inputs_embeds.shape[1] == 0:
        raise ValueError(
            f"`{embeds_name}` must be (batch, length, d_model={d_model}), got shape {tuple(inputs_embeds.shape)}."
        )
    return inputs_embeds.shape[:2]


def _check_ids(input_ids: torch.Tensor, vocab_size: int) -> None:
    if _is_traced(input_ids):
        return
    low, high = torch.aminmax(input_ids)
    if low < 0 or high >= vocab_size:
        raise ValueError(
            f"input ids must lie in [0, {vocab_size}) (vocab_size), got ids from {int(low)} to {int(high)}."
        )


def _check_mask(attention_mask: torch.Tensor | None, name: str = "attention_mask") -> None:
    """Only 0 (padding) and 1 (token), whatever the dtype (issue #20: a 2 or a NaN would silently reweight
    attention), and at least one token per row (attention over no key at all is undefined)."""
    if attention_mask is None or _is_traced(attention_mask):
        return
    if not bool(((attention_mask == 0) | (attention_mask == 1)).all()):
        bad = attention_mask[(attention_mask != 0) & (attention_mask != 1)].flatten()[:3].tolist()
        raise ValueError(f"`{name}` must hold only 0 (padding) and 1 (token); got other values such as {bad}.")
    empty = ~attention_mask.bool().any(-1)
    if bool(empty.any()):
        raise ValueError(
            f"`{name}` masks every token of row(s) {empty.nonzero().flatten().tolist()}: each row needs at least one "
            "real token."
        )


def _lm_loss(logits: torch.Tensor, labels: torch.Tensor, vocab_size: int, num_items_in_batch=None) -> torch.Tensor:
    """Token-level cross-entropy over labels != -100, in float32. logits (B, T, V), labels (B, T). With
    `num_items_in_batch` (gradient accumulation) the sum is divided by it instead of averaged over this batch."""
    if labels.shape != logits.shape[:2]:
        raise ValueError(f"labels shape {tuple(labels.shape)} must be (batch, length) = {tuple(logits.shape[:2])}.")
    if not _is_traced(labels):
        valid = (labels == -100) | ((labels >= 0) & (labels < vocab_size))
        if not bool(valid.all()):
            bad = labels[~valid]
            raise ValueError(
                f"labels must lie in [0, {vocab_size}) or be -100 (ignored); got {bad.numel()} other value(s), "
                f"e.g. {int(bad[0])}."
            )
        if num_items_in_batch is None and not bool((labels != -100).any()):
            # the mean over zero tokens is NaN (issue #20)
            raise ValueError("labels are all -100 (ignored): there is no token to compute the loss on.")
    reduction = "mean" if num_items_in_batch is None else "sum"
    loss = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=-100, reduction=reduction
    )
    return loss if num_items_in_batch is None else loss / num_items_in_batch


# --- lean decoding (issue 21, point 4) --------------------------------------------------------------------------------
# generate()'s greedy and sampling loop (`_sample`) spends most of a batch-1 CPU step outside the network: model
# outputs built and unpacked, inputs re-prepared, caches wrapped. The generative heads override `_sample` with the loop
# below where it applies (CPU, eval mode, nothing recorded, a fresh cache): transformers' own set-up, prefill, logits
# processors, stopping criteria and streamer, and a per-family decode step that calls the network's layers directly.
def lean_decoding_applies(model, generation_config, synced_gpus, model_kwargs) -> bool:
    """Whether `_sample` may run `lean_sample`: the model opts in (`model.lean_decoding`), runs on CPU in eval mode,
    records nothing (no `return_dict_in_generate`, attentions or hidden states), is given only the inputs below, and
    starts from an empty cache that generate() made (a cache the caller passed, a static cache or a compiled step take
    transformers' loop)."""
    if not getattr(model, "lean_decoding", False) or model.training or model.device.type != "cpu":
        return False
    if torch.compiler.is_compiling() or torch.jit.is_tracing():
        return False
    config = generation_config
    if config.return_dict_in_generate or config.is_assistant or config.prefill_chunk_size is not None or synced_gpus:
        return False
    known = {"encoder_outputs", "attention_mask", "position_ids", "use_cache", "cache", "logits_to_keep"}
    if not set(model_kwargs) <= known | {"output_attentions", "output_hidden_states"}:
        return False
    if not model_kwargs.get("use_cache", True):
        return False
    if model_kwargs.get("output_attentions") or model_kwargs.get("output_hidden_states"):
        return False
    cache = model_kwargs.get("cache")
    if cache is None:
        return True
    layers = cache.self_attention_cache if isinstance(cache, EncoderDecoderCache) else cache
    return (
        type(layers) is DynamicCache
        and not getattr(cache, "_is_user_defined", False)
        and cache.get_seq_length() == 0
    )


def lean_sample(input_ids, logits, step, logits_processor, stopping_criteria, generation_config, streamer=None):
    """transformers' `_sample` loop (greedy or multinomial) with `step(tokens (B, 1)) -> logits (B, V)` as the model.

    `logits` (B, V) come from the prefill. The token choice, the padding of finished rows, the stopping criteria and
    the streamer calls are the ones `_sample` makes, in its order; the common criteria (maximum length, end tokens) are
    evaluated inline, any other criterion through its own call. Returns the sequences (B, prompt + new tokens)."""
    pad_token_id = generation_config._pad_token_tensor
    do_sample = generation_config.do_sample
    has_eos = any(hasattr(criterion, "eos_token_id") for criterion in stopping_criteria)
    inline = all(type(c) in (MaxLengthCriteria, EosTokenCriteria) for c in stopping_criteria)
    max_length = stopping_criteria.max_length
    eos = [c.eos_token_id for c in stopping_criteria if type(c) is EosTokenCriteria]
    unfinished = torch.ones(input_ids.shape[0], dtype=torch.long, device=input_ids.device)
    while True:
        # the logits are this loop's own (a new tensor every step; the prefill's a row of outputs it dropped), so the
        # processors may change them in place: `_sample`'s defensive copy is needed only to reach float32
        scores = logits if logits.dtype == torch.float32 else logits.float()
        if len(logits_processor):
            scores = logits_processor(input_ids, scores)
        if do_sample:
            tokens = torch.multinomial(F.softmax(scores, dim=-1), num_samples=1).squeeze(1)
        else:
            # the first maximal index, as argmax gives it (NaN and ties alike), about 3x faster on CPU (issue 21)
            tokens = torch.max(scores, dim=-1).indices
        if has_eos:  # finished rows continue with padding
            tokens = tokens * unfinished + pad_token_id * (1 - unfinished)
        input_ids = torch.cat([input_ids, tokens[:, None]], dim=-1)
        if inline:
            for eos_token_id in eos:  # EosTokenCriteria's isin, as one comparison (isin costs ~60 us a call)
                unfinished = unfinished & ~(tokens[:, None] == eos_token_id.view(1, -1)).any(-1)
            done = max_length is not None and input_ids.shape[1] >= max_length
        else:
            unfinished = unfinished & ~stopping_criteria(input_ids, None)
            done = False
        if streamer is not None:
            streamer.put(tokens.cpu())
        if done or bool(unfinished.max() == 0):
            break
        logits = step(tokens[:, None])
    if streamer is not None:
        streamer.end()
    return input_ids


def lean_projection(weight: torch.Tensor, bias: torch.Tensor | None):
    """(weight, bias, transposed) for `lean_matmul`. On CPU a one-row product with a wide (out > in) weight reads it
    about 1.6-3x faster from a (in, out) copy than through `F.linear`'s (out, in) layout (MKL's transposed GEMV:
    8000x256 1.09 ms vs 0.37 ms, 1024x256 198 vs 127 us with cold caches, issue 21), so such weights get a transposed
    copy (kept by `lean_weights` between generate() calls)."""
    if weight.device.type == "cpu" and weight.shape[0] > weight.shape[1]:
        return weight.t().contiguous(), bias, True
    return weight, bias, False


def lean_weights(model: nn.Module, sources: list, build):
    """`build()` (the derived decode weights: fused, transposed), cached on `model` while every tensor of `sources`
    is the same object at the same version (an optimizer step, `load_state_dict` or `.to()` makes a new key).
    `train()` drops the cache, so a model being trained does not keep the copies."""
    cached = model.__dict__.get("_lean_weights_cache")
    if cached is not None and len(cached[0]) == len(sources):
        if all(old is new and version == new._version for (old, version), new in zip(cached[0], sources)):
            return cached[1]
    model.__dict__.pop("_lean_weights_cache", None)  # free the stale copies before building new ones
    built = build()
    model.__dict__["_lean_weights_cache"] = ([(t, t._version) for t in sources], built)
    return built


def lean_plain(modules) -> bool:
    """Whether the lean path may read these modules' weights itself: each exactly an `nn.Linear` or `nn.LayerNorm`
    without hooks. A PEFT (LoRA) wrapper, a quantized module or an accelerate offload hook keeps its own call."""
    return all(
        type(module) in (nn.Linear, nn.LayerNorm) and not module._forward_hooks and not module._forward_pre_hooks
        for module in modules
    )


def lean_matmul(x: torch.Tensor, projection) -> torch.Tensor:
    """x (B, in) times a `lean_projection`: (B, out)."""
    weight, bias, transposed = projection
    if not transposed:
        return F.linear(x, weight, bias)
    return torch.addmm(bias, x, weight) if bias is not None else torch.mm(x, weight)


# --- masks -----------------------------------------------------------------------------------------------------------
def _positions_from_mask(attention_mask: torch.Tensor | None, past_length, length: int, device) -> torch.Tensor:
    """Position of each of the last `length` tokens: count of real tokens before it, so left padding does not shift
    positions. attention_mask: (B, past_length + length) or None. Returns (B or 1, length)."""
    if attention_mask is None:
        return (torch.arange(length, device=device) + past_length).unsqueeze(0)  # past_length: int or tensor
    positions = attention_mask.long().cumsum(-1) - 1
    return positions.clamp(min=0)[:, -length:]


def _key_padding_bias(attention_mask: torch.Tensor | None, dtype) -> torch.Tensor | None:
    """(B, S) 1/0 mask → additive (B, 1, 1, S) bias, or None when nothing is masked (lets SDPA use its fast path;
    when traced the bias is always built, since whether anything is masked is a tensor value)."""
    if attention_mask is None or (not _is_traced(attention_mask) and bool(attention_mask.all())):
        return None
    bias = torch.zeros(attention_mask.shape, dtype=dtype, device=attention_mask.device)
    bias.masked_fill_(attention_mask == 0, torch.finfo(dtype).min)
    return bias[:, None, None, :]


def _causal_bias(
    attention_mask: torch.Tensor | None,
    query_length: int,
    past_length: int | torch.Tensor,
    dtype,
    device,
    static_length: int | None = None,
) -> tuple[torch.Tensor | None, bool]:
    """Bias for masked (causal) self-attention over `past_length + query_length` keys, plus whether SDPA's own
    `is_causal` flag can replace it (no padding and no cache). Returns (B or 1, 1, T, past + T) or None.

    With a static cache (`static_length`: its fixed key length) the keys are always `static_length` long, the slots
    after `past + T` unfilled: the bias covers all of them and masks the unfilled ones (never `is_causal`).
    `past_length` may then be a tensor (what a static cache's `get_seq_length()` gives under torch.compile)."""
    if static_length is not None:
        key_length = static_length
        has_padding = attention_mask is not None
        query_pos = torch.arange(query_length, device=device)[:, None] + past_length
        if has_padding:  # (B, past + T) → (B, K): the unfilled slots are not keys
            attention_mask = F.pad(attention_mask.long(), (0, key_length - attention_mask.shape[-1]))
    else:
        key_length = past_length + query_length
        has_padding = attention_mask is not None and (_is_traced(attention_mask) or not bool(attention_mask.all()))
        if not has_padding:
            if past_length == 0 and query_length > 1:
                return None, True
            if query_length == 1:
                return None, False
        query_pos = torch.arange(past_length, key_length, device=device)[:, None]
    allowed = (torch.arange(key_length, device=device)[None, :] <= query_pos)[None, None]  # (1, 1, T, K)
    if has_padding:
        allowed = allowed & attention_mask[:, None, None, -key_length:].bool()  # (B, 1, T, K)
        # a left-pad query sees no key; its row is unmasked so that softmax stays finite and equal in every dtype (a
        # row of finfo.min is uniform in float32, not in float16); its output is never read
        allowed = allowed | ~allowed.any(-1, keepdim=True)
    bias = torch.zeros(allowed.shape, dtype=dtype, device=device)
    bias.masked_fill_(~allowed, torch.finfo(dtype).min)
    return bias, False


def _prepared_bias(mask: torch.Tensor, batch: int, query_length: int, key_length: int, name: str, dtype):
    """A 4-D mask already built for the keys the cache returns, as `generate()` builds for a static cache:
    (B or 1, 1, T, K), boolean (True = attend) or additive float (0 = attend, very negative = masked). Returns the
    additive bias; a query row that sees no key (a left-pad position) is unmasked so that softmax stays finite."""
    if mask.shape[0] not in (1, batch) or mask.shape[1] != 1 or tuple(mask.shape[2:]) != (query_length, key_length):
        raise ValueError(
            f"A 4-D `{name}` must be (batch or 1, 1, new tokens, keys) = ({batch}, 1, {query_length}, {key_length}), "
            f"got shape {tuple(mask.shape)}."
        )
    if mask.dtype == torch.bool:
        allowed = mask
    elif mask.is_floating_point():
        if not _is_traced(mask) and bool((mask.isnan() | (mask > 0)).any()):
            raise ValueError(
                f"A float 4-D `{name}` is an additive bias: 0 to attend, negative to mask; got NaN or > 0."
            )
        allowed = mask == 0
    else:
        raise TypeError(f"A 4-D `{name}` must be boolean or floating point, got dtype {mask.dtype}.")
    allowed = allowed | ~allowed.any(-1, keepdim=True)
    bias = torch.zeros(allowed.shape, dtype=dtype, device=mask.device)
    return bias.masked_fill_(~allowed, torch.finfo(dtype).min)


# §3.5 Positional encoding
class TransformerSinusoidalPositionalEncoding(nn.Module):
    """Fixed sinusoidal table (not a parameter, not saved: rebuilt from the config)."""

    def __init__(self, num_positions: int, d_model: int):
        super().__init__()
        self.num_positions, self.d_model = num_positions, d_model
        # in the default dtype, which from_pretrained(dtype=...) sets while building the model: loading does not cast
        # non-persistent buffers, and a float32 table would break bfloat16 / float16 forwards (issue #19)
        table = sinusoidal_position_encoding(num_positions, d_model).to(torch.get_default_dtype())
        self.register_buffer("table", table, persistent=False)

    def forward(self, position_ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(position_ids, self.table)


class TransformerEmbeddings(nn.Module):
    """Token embedding * sqrt(d_model) (§3.4) + positional encoding (§3.5), then dropout (§5.4)."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, config.pad_token_id)
        if config.position_embedding_type == "sinusoidal":
            self.embed_positions = TransformerSinusoidalPositionalEncoding(
                config.max_position_embeddings, config.hidden_size
            )
        else:
            self.embed_positions = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.scale = math.sqrt(config.hidden_size) if config.scale_embedding else 1.0
        self.dropout = nn.Dropout(config.dropout)
        self.max_positions = config.max_position_embeddings

    def forward(
        self,
        input_ids: torch.Tensor | None,
        position_ids: torch.Tensor,
        total_length: int,
        inputs_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """`inputs_embeds` (B, T, d_model) stand for `embed_tokens(input_ids)` (what `get_input_embeddings()` gives),
        so they are scaled like the ids' rows and `generate(inputs_embeds=...)` equals `generate(input_ids)`."""
        compiled_static = isinstance(total_length, torch.Tensor) and torch.compiler.is_compiling()  # no value
        if not compiled_static and total_length > self.max_positions:
            raise ValueError(
                f"Sequence length {total_length} (cached + new tokens) exceeds max_position_embeddings="
                f"{self.max_positions}; shorten the input or build the model with a larger max_position_embeddings."
            )
        if inputs_embeds is None:
            _check_ids(input_ids, self.embed_tokens.num_embeddings)  # follows resize_token_embeddings
            inputs_embeds = self.embed_tokens(input_ids)
        elif not _is_traced(inputs_embeds) and not bool(torch.isfinite(inputs_embeds).all()):
            raise ValueError("`inputs_embeds` hold NaN or infinite values.")
        return self.dropout(inputs_embeds * self.scale + self.embed_positions(position_ids))


# §3.2 Attention
class TransformerAttention(nn.Module):
    """Multi-head attention, MultiHead(Q, K, V) = Concat(head_1..head_h) W^O with
    head_i = softmax(Q W_i^Q (K W_i^K)^T / sqrt(d_k)) V W_i^V (eq. 1). Used as encoder self-attention, masked
    decoder self-attention (`is_cross_attention=False` with a causal bias) and encoder-decoder attention."""

    def __init__(self, config: TransformerConfig, layer_idx: int, is_cross_attention: bool = False):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.dropout = config.attention_dropout
        self.layer_idx = layer_idx
        self.is_cross_attention = is_cross_attention
        self.config = config
        self.q_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.k_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.v_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.out_proj = nn.Linear(config.hidden_size, config.hidden_size)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        return x.view(B, T, self.num_heads, self.head_dim).transpose(1, 2)  # (B, h, T, d_k)

    def forward(
        self,
        hidden_states: torch.Tensor,
        key_value_states: torch.Tensor | None = None,
        attention_bias: torch.Tensor | None = None,
        is_causal: bool = False,
        cache: Cache | None = None,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        B, T, C = hidden_states.shape  # T new queries; keys may also cover the cache or the source (K)
        query = self._split_heads(self.q_proj(hidden_states))  # (B, h, T, d_k)

        # keys/values: encoder-decoder attention reads the encoder output once and keeps it in the cross cache
        if self.is_cross_attention:
            layer_cache = cache.cross_attention_cache if cache is not None else None
            if cache is not None and cache.is_updated.get(self.layer_idx, False):
                key, value = layer_cache.layers[self.layer_idx].keys, layer_cache.layers[self.layer_idx].values
            else:
                key = self._split_heads(self.k_proj(key_value_states))
                value = self._split_heads(self.v_proj(key_value_states))
                if cache is not None:
                    key, value = layer_cache.update(key, value, self.layer_idx)
                    cache.is_updated[self.layer_idx] = True
        else:
            key = self._split_heads(self.k_proj(hidden_states))
            value = self._split_heads(self.v_proj(hidden_states))
            if cache is not None:
                # the cache appends this step's keys/values and returns all of them: (B, h, past + T, d_k)
                self_cache = cache.self_attention_cache if isinstance(cache, EncoderDecoderCache) else cache
                key, value = self_cache.update(key, value, self.layer_idx)

        dropout = self.dropout if self.training else 0.0
        if output_attentions or self.config._attn_implementation == "eager":
            # eq. 1 written out; scaling by 1/sqrt(d_k) keeps the softmax out of its flat regions (§3.2.1)
            scores = torch.matmul(query, key.transpose(-1, -2)) * self.scaling  # (B, h, T, K)
            if is_causal:
                scores = scores.masked_fill(
                    torch.ones(T, key.shape[-2], dtype=torch.bool, device=scores.device).triu(1),
                    torch.finfo(scores.dtype).min,
                )
            if attention_bias is not None:
                scores = scores + attention_bias  # (B or 1, 1, T or 1, K): padding / causal, finfo.min where masked
            weights = F.dropout(torch.softmax(scores, dim=-1), p=dropout, training=self.training)
            context = torch.matmul(weights, value)
        else:
            weights = None
            context = F.scaled_dot_product_attention(
                query, key, value, attn_mask=attention_bias, dropout_p=dropout, is_causal=is_causal, scale=self.scaling
            )
        context = context.transpose(1, 2).reshape(B, T, C)  # concat heads
        return self.out_proj(context), weights if output_attentions else None


# §3.3 Position-wise feed-forward network
class TransformerFeedForward(nn.Module):
    """FFN(x) = max(0, x W_1 + b_1) W_2 + b_2 (eq. 2)."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)
        self.activation = nn.ReLU() if config.activation_function == "relu" else nn.GELU()
        self.dropout = nn.Dropout(config.activation_dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # applied to each position separately and identically: (B, T, d_model) → (B, T, d_ff) → (B, T, d_model)
        return self.fc2(self.dropout(self.activation(self.fc1(x))))


# §3.1 Encoder and decoder layers: LayerNorm(x + Dropout(Sublayer(x))), or x + Dropout(Sublayer(LayerNorm(x))) pre-LN
class TransformerEncoderLayer(nn.Module):
    def __init__(self, config: TransformerConfig, layer_idx: int):
        super().__init__()
        self.norm_first = config.norm_first
        self.self_attn = TransformerAttention(config, layer_idx)
        self.self_attn_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.ffn = TransformerFeedForward(config)
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, hidden_states, attention_bias=None, output_attentions=False):
        x = hidden_states  # (B, S, d_model)
        if self.norm_first:  # pre-LN (Xiong et al. 2020, not in the paper): less dependent on warm-up
            attn, weights = self.self_attn(
                self.self_attn_layer_norm(x), attention_bias=attention_bias, output_attentions=output_attentions
            )
            x = x + self.dropout(attn)
            x = x + self.dropout(self.ffn(self.final_layer_norm(x)))
        else:
            attn, weights = self.self_attn(x, attention_bias=attention_bias, output_attentions=output_attentions)
            x = self.self_attn_layer_norm(x + self.dropout(attn))
            x = self.final_layer_norm(x + self.dropout(self.ffn(x)))
        return x, weights


class TransformerDecoderLayer(nn.Module):
    """Masked self-attention, then (encoder-decoder models only) attention over the encoder output, then the FFN."""

    def __init__(self, config: TransformerConfig, layer_idx: int):
        super().__init__()
        self.norm_first = config.norm_first
        self.self_attn = TransformerAttention(config, layer_idx)
        self.self_attn_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        if config.is_encoder_decoder:
            self.encoder_attn = TransformerAttention(config, layer_idx, is_cross_attention=True)
            self.encoder_attn_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        else:
            self.encoder_attn = None
        self.ffn = TransformerFeedForward(config)
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def _sublayer(self, x, norm, fn):
        # the residual connection of §3.1 around `fn`, with the norm before (pre-LN) or after (post-LN, the paper)
        if self.norm_first:
            out, weights = fn(norm(x))
            return x + self.dropout(out), weights
        out, weights = fn(x)
        return norm(x + self.dropout(out)), weights

    def forward(
        self,
        hidden_states,
        self_attention_bias=None,
        is_causal=False,
        encoder_hidden_states=None,
        encoder_attention_bias=None,
        cache=None,
        output_attentions=False,
    ):
        # TransformerAttention(hidden_states, key_value_states, attention_bias, is_causal, cache, output_attentions)
        def self_attention(h):  # masked (§3.2.3): each position attends to itself and the positions before it
            return self.self_attn(h, None, self_attention_bias, is_causal, cache, output_attentions)

        def encoder_decoder_attention(h):  # §3.2.3: queries from the decoder, keys/values from the encoder output
            return self.encoder_attn(h, encoder_hidden_states, encoder_attention_bias, False, cache, output_attentions)

        x, self_weights = self._sublayer(hidden_states, self.self_attn_layer_norm, self_attention)
        cross_weights = None
        if self.encoder_attn is not None:
            x, cross_weights = self._sublayer(x, self.encoder_attn_layer_norm, encoder_decoder_attention)
        if self.norm_first:
            x = x + self.dropout(self.ffn(self.final_layer_norm(x)))
        else:
            x = self.final_layer_norm(x + self.dropout(self.ffn(x)))
        return x, self_weights, cross_weights


class TransformerPreTrainedModel(PreTrainedModel):
    config_class = TransformerConfig
    base_model_prefix = "model"
    # per-layer activation checkpointing: each stack recomputes one layer at a time in the backward pass
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _no_split_modules = ["TransformerEncoderLayer", "TransformerDecoderLayer"]
    accepts_loss_kwargs = False

    @torch.no_grad()
    def _init_weights(self, module):
        # Xavier-uniform projections (as tensor2tensor / torch.nn.Transformer) and N(0, d_model^-0.5) embeddings, so
        # that embeddings scaled by sqrt(d_model) (§3.4) have unit variance like the positional encodings.
        if isinstance(module, nn.Linear):
            init.xavier_uniform_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            std = self.config.hidden_size**-0.5 if self.config.scale_embedding else 0.02
            init.normal_(module.weight, mean=0.0, std=std)
            if module.padding_idx is not None and not getattr(module.weight, "_is_hf_initialized", False):
                init.zeros_(module.weight[module.padding_idx])
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, TransformerSinusoidalPositionalEncoding):
            init.copy_(module.table, sinusoidal_position_encoding(module.num_positions, module.d_model))

    # The encoder and decoder stacks (§3.1) are built and run alike: the two methods below serve both. The embedding
    # accessors are transformers' defaults: `embeddings.embed_tokens` in a stack, the body's in a head, and `lm_head`.
    def _build_stack(self, config: TransformerConfig, layer_class: type, num_layers: int):
        self.embeddings = TransformerEmbeddings(config)
        self.layers = nn.ModuleList([layer_class(config, i) for i in range(num_layers)])
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps) if config.norm_first else None
        self.gradient_checkpointing = False

    def _run_stack(self, hidden: torch.Tensor, layer_args: tuple, output_attentions: bool, output_hidden_states: bool):
        """Every layer in turn, then the final LayerNorm of pre-LN. Returns the output (B, T, d_model), the hidden
        states (each layer's input, then the output) or None, and per layer the tuple of its attention weights."""
        all_hidden, all_weights = (), ()
        for layer in self.layers:
            if output_hidden_states:
                all_hidden += (hidden,)
            if self.gradient_checkpointing and self.training:
                # recomputed in the backward pass; positional arguments: reentrant checkpointing passes no keywords
                hidden, *weights = self._gradient_checkpointing_func(
                    layer.__call__, hidden, *layer_args, output_attentions
                )
            else:
                hidden, *weights = layer(hidden, *layer_args, output_attentions)
            if output_attentions:
                all_weights += (weights,)
        if self.layer_norm is not None:  # pre-LN leaves the residual stream unnormalized: one final LayerNorm
            hidden = self.layer_norm(hidden)
        if output_hidden_states:
            all_hidden += (hidden,)
        return hidden, all_hidden if output_hidden_states else None, all_weights

    def _logits(self, hidden: torch.Tensor, logits_to_keep: int) -> torch.Tensor:
        """The heads' pre-softmax linear transformation (§3.4), tied to the token embedding: (B, T, d_model) →
        (B, T, vocab_size), over the last `logits_to_keep` positions only when it is > 0 (generate() reads one)."""
        if logits_to_keep:
            hidden = hidden[:, -logits_to_keep:]
        return self.lm_head(hidden)

    # generate() on CPU: greedy and sampled decoding run `lean_sample` with `_lean_step` (issue 21, point 4); set it to
    # False on a model to run transformers' own loop
    lean_decoding = True

    def _sample(
        self, input_ids, logits_processor, stopping_criteria, generation_config, synced_gpus=False, streamer=None,
        **model_kwargs,
    ):
        max_length = stopping_criteria.max_length
        if (
            not lean_decoding_applies(self, generation_config, synced_gpus, model_kwargs)
            or self.config._attn_implementation != "sdpa"
            or max_length is None
            or max_length - 1 > self.config.max_position_embeddings  # forward's own error names the limit
            or not lean_plain(self._lean_modules())
        ):
            return super()._sample(
                input_ids, logits_processor, stopping_criteria, generation_config, synced_gpus, streamer, **model_kwargs
            )
        outputs = self._prefill(input_ids, generation_config, model_kwargs)  # forward over the (decoder) prompt
        step = self._lean_step(
            outputs.cache, model_kwargs.get("attention_mask"), model_kwargs.get("position_ids"), input_ids.shape[1],
            max_length,
        )
        logits = outputs.logits[:, -1]
        del outputs
        return lean_sample(input_ids, logits, step, logits_processor, stopping_criteria, generation_config, streamer)

    def train(self, mode: bool = True):
        self.__dict__.pop("_lean_weights_cache", None)  # `lean_weights`' copies
        return super().train(mode)

    def _lean_modules(self) -> list:
        """The modules whose weights the lean decode step reads itself (`lean_plain` must hold for them)."""
        decoder = self.get_decoder()
        modules = [self.lm_head] + ([decoder.layer_norm] if decoder.layer_norm is not None else [])
        for layer in decoder.layers:
            sa, ca = layer.self_attn, layer.encoder_attn
            modules += [sa.q_proj, sa.k_proj, sa.v_proj, sa.out_proj, layer.ffn.fc1, layer.ffn.fc2]
            modules += [layer.self_attn_layer_norm, layer.final_layer_norm]
            if ca is not None:
                modules += [ca.q_proj, ca.out_proj, layer.encoder_attn_layer_norm]
        return modules

    def _lean_weights(self):
        """What the lean decode step reads, per decoder layer: the fused q/k/v projection and the FFN's first (their
        `lean_projection`s cached by `lean_weights`), the other projections and the LayerNorms' arguments; then the
        final LayerNorm (pre-LN) and the vocabulary projection."""
        decoder = self.get_decoder()

        def norm(module):  # F.layer_norm's arguments
            return module.normalized_shape, module.weight, module.bias, module.eps

        def build():
            fused = [
                (
                    lean_projection(
                        torch.cat([layer.self_attn.q_proj.weight, layer.self_attn.k_proj.weight, layer.self_attn.v_proj.weight]),
                        torch.cat([layer.self_attn.q_proj.bias, layer.self_attn.k_proj.bias, layer.self_attn.v_proj.bias]),
                    ),
                    lean_projection(layer.ffn.fc1.weight, layer.ffn.fc1.bias),
                )
                for layer in decoder.layers
            ]
            return fused, lean_projection(self.lm_head.weight, self.lm_head.bias)

        sources = [self.lm_head.weight]
        for layer in decoder.layers:
            attention = layer.self_attn
            sources += [attention.q_proj.weight, attention.k_proj.weight, attention.v_proj.weight, layer.ffn.fc1.weight]
            sources += [attention.q_proj.bias, attention.k_proj.bias, attention.v_proj.bias, layer.ffn.fc1.bias]
        fused, head = lean_weights(self, sources, build)
        layers = []
        for (qkv, fc1), layer in zip(fused, decoder.layers):
            sa, ca, ffn = layer.self_attn, layer.encoder_attn, layer.ffn
            cross = None
            if ca is not None:
                cross = (ca.q_proj.weight, ca.q_proj.bias), (ca.out_proj.weight, ca.out_proj.bias), norm(layer.encoder_attn_layer_norm)
            layers.append((
                qkv, sa.scaling, sa.num_heads, sa.head_dim, (sa.out_proj.weight, sa.out_proj.bias),
                norm(layer.self_attn_layer_norm), cross, fc1, ffn.activation, (ffn.fc2.weight, ffn.fc2.bias),
                norm(layer.final_layer_norm),
            ))
        final_norm = norm(decoder.layer_norm) if decoder.layer_norm is not None else None
        return layers, final_norm, head

    def _lean_decode(self, x, weights, attend, self_bias, cross_kv, cross_bias) -> torch.Tensor:
        """The decoder layers of `TransformerDecoderLayer.forward` on one new token per row, written against their
        weights (`_lean_weights`): x (B, d_model) embedded → logits (B, vocab). `attend(i, k, v)` stores layer i's new
        key/value (B, heads, 1, d_k) and returns all of its keys/values; `cross_kv[i]` are the source keys/values."""
        layers, final_norm, head = weights
        norm_first, B = self.config.norm_first, x.shape[0]
        for i, (qkv, scaling, heads, head_dim, out, norm1, cross, fc1, activation, fc2, norm3) in enumerate(layers):
            # masked self-attention over the tokens so far
            h = F.layer_norm(x, *norm1) if norm_first else x
            q, k, v = lean_matmul(h, qkv).view(B, 3, heads, 1, head_dim).unbind(1)
            keys, values = attend(i, k, v)
            context = F.scaled_dot_product_attention(q, keys, values, attn_mask=self_bias, scale=scaling)
            a = F.linear(context.reshape(B, -1), *out)
            x = x + a if norm_first else F.layer_norm(x + a, *norm1)
            if cross is not None:  # encoder-decoder attention over the cached source keys/values
                cross_q, cross_out, norm2 = cross
                h = F.layer_norm(x, *norm2) if norm_first else x
                q = F.linear(h, *cross_q).view(B, heads, 1, head_dim)
                context = F.scaled_dot_product_attention(q, *cross_kv[i], attn_mask=cross_bias, scale=scaling)
                a = F.linear(context.reshape(B, -1), *cross_out)
                x = x + a if norm_first else F.layer_norm(x + a, *norm2)
            # position-wise feed-forward
            h = F.layer_norm(x, *norm3) if norm_first else x
            f = F.linear(activation(lean_matmul(h, fc1)), *fc2)
            x = x + f if norm_first else F.layer_norm(x + f, *norm3)
        if final_norm is not None:
            x = F.layer_norm(x, *final_norm)
        return lean_matmul(x, head)

    def _lean_embed(self):
        """(token embedding, its scale, the position table) of the decoder stack."""
        embeddings = self.get_decoder().embeddings
        positions = embeddings.embed_positions
        table = positions.table if isinstance(positions, TransformerSinusoidalPositionalEncoding) else positions.weight
        return embeddings.embed_tokens, embeddings.scale, table

    def _lean_step(self, cache: Cache, attention_mask, position_ids, past_length: int, max_length: int):
        """The one-token decode step of `lean_sample`, from the cache the prefill filled. Self-attention keys and
        values go to buffers of `max_length` slots (filled up to `past_length`). `attention_mask` is the source mask
        of the encoder-decoder, the prompt's mask of the decoder-only model (its padding stays masked; new tokens are
        real). Positions continue as generate() continues `position_ids` (last + 1), else count real tokens as
        forward does. Returns step(tokens (B, 1)) -> logits (B, vocab)."""
        encoder_decoder = self.config.is_encoder_decoder
        self_cache = cache.self_attention_cache if encoder_decoder else cache
        embed, scale, table = self._lean_embed()
        dtype = embed.weight.dtype
        B = self_cache.layers[0].keys.shape[0]
        cross_bias = self_bias = cross_kv = None
        position = [past_length]  # the next token's position, or (B,) positions of left-padded rows
        if encoder_decoder:
            cross_bias = _key_padding_bias(attention_mask, dtype)
            cross_kv = [(layer.keys, layer.values) for layer in cache.cross_attention_cache.layers]
        elif attention_mask is not None:
            self_bias = torch.zeros(B, 1, 1, max_length, dtype=dtype, device=attention_mask.device)
            self_bias[:, 0, 0, :past_length].masked_fill_(attention_mask[:, -past_length:] == 0, torch.finfo(dtype).min)
            position[0] = attention_mask.long().sum(-1)
        if position_ids is not None and not encoder_decoder:
            position[0] = position_ids[:, -1] + 1
        buffers = []
        for layer in self_cache.layers:
            keys = layer.keys.new_empty(*layer.keys.shape[:2], max_length, layer.keys.shape[3])
            values = torch.empty_like(keys)
            keys[:, :, :past_length], values[:, :, :past_length] = layer.keys, layer.values
            buffers.append((keys, values))
        weights = self._lean_weights()
        length = [past_length]  # tokens in the self-attention buffers

        def attend(i, k, v):
            keys, values = buffers[i]
            t = length[0]
            keys[:, :, t], values[:, :, t] = k[:, :, 0], v[:, :, 0]
            return keys[:, :, : t + 1], values[:, :, : t + 1]

        def step(tokens: torch.Tensor) -> torch.Tensor:
            t = length[0]
            x = embed(tokens[:, 0]) * scale + table[position[0]]  # (B, d_model), §3.4-3.5
            bias = self_bias[..., : t + 1] if self_bias is not None else None
            logits = self._lean_decode(x, weights, attend, bias, cross_kv, cross_bias)
            length[0], position[0] = t + 1, position[0] + 1
            return logits

        return step

    def _lean_forward(self, tokens, cache, attention_mask, position_ids, return_dict):
        """The head's forward for one of generate()'s one-token decode steps (`generation_step=True`, set by
        `prepare_inputs_for_generation`): on CPU in eval mode, with a dynamic cache holding the past, the step runs
        through `_lean_decode`, its keys/values appended to the cache (so beam search reorders them as usual); the
        logits equal forward's up to rounding. Returns the head's output, or None where forward's own path applies."""
        encoder_decoder = self.config.is_encoder_decoder
        self_cache = cache.self_attention_cache if isinstance(cache, EncoderDecoderCache) else cache
        if (
            not getattr(self, "lean_decoding", False)
            or self.training
            or tokens is None
            or tokens.shape[1] != 1
            or tokens.device.type != "cpu"
            or _is_traced(tokens)
            or self.config._attn_implementation != "sdpa"
            or type(self_cache) is not DynamicCache
            or (encoder_decoder and not isinstance(cache, EncoderDecoderCache))
            or not lean_plain(self._lean_modules())
        ):
            return None
        past = self_cache.get_seq_length()
        embed, scale, table = self._lean_embed()
        if past == 0 or past + 1 > table.shape[0]:  # the prefill, or forward's own error about the length
            return None
        dtype, cross_kv, cross_bias, self_bias = embed.weight.dtype, None, None, None
        if encoder_decoder:
            cross_kv = [(layer.keys, layer.values) for layer in cache.cross_attention_cache.layers]
            cross_bias = _key_padding_bias(attention_mask, dtype)
            positions = position_ids[:, -1] if position_ids is not None else past
        else:
            if attention_mask is not None:
                self_bias = _causal_bias(attention_mask, 1, past, dtype, tokens.device)[0]
            if position_ids is not None:
                positions = position_ids[:, -1]
            else:
                positions = _positions_from_mask(attention_mask, past, 1, tokens.device)[:, -1]
        x = embed(tokens[:, 0]) * scale + table[positions]

        def attend(i, k, v):
            return self_cache.update(k, v, i)

        logits = self._lean_decode(x, self._lean_weights(), attend, self_bias, cross_kv, cross_bias)[:, None]
        output = (Seq2SeqLMOutput if encoder_decoder else CausalLMOutputWithCrossAttentions)(logits=logits, cache=cache)
        return output if (return_dict if return_dict is not None else self.config.return_dict) else output.to_tuple()

def _convert_config(config: TransformerConfig, config_class: type, is_encoder_decoder: bool) -> TransformerConfig:
    """A copy of `config` as `config_class` (the encoder-decoder or the decoder-only configuration)."""
    if type(config) is config_class and config.is_encoder_decoder == is_encoder_decoder:
        return config
    if isinstance(config, config_class) and not isinstance(config, TransformerDecoderConfig):
        config = copy.deepcopy(config)  # a TransformerConfig with is_encoder_decoder=False, as hf-seq < #19 built
        config.is_encoder_decoder = is_encoder_decoder
        return config
    skip = ("model_type", "transformers_version", "architectures", "auto_map")
    values = {k: v for k, v in config.to_dict().items() if k not in skip}
    converted = config_class.from_dict({**values, "is_encoder_decoder": is_encoder_decoder})
    converted._attn_implementation = config._attn_implementation
    return converted


class TransformerEncoder(TransformerPreTrainedModel):
    """N identical layers of self-attention + FFN over the source (§3.1). Returns `BaseModelOutput`."""

    def __init__(self, config: TransformerConfig):
        super().__init__(config)
        self._build_stack(config, TransformerEncoderLayer, config.encoder_layers)
        self.post_init()

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> BaseModelOutput | tuple:
        """input_ids: (B, S) or inputs_embeds: (B, S, d_model); attention_mask: (B, S), 1 for real tokens.
        Returns last_hidden_state (B, S, d_model). No `**kwargs`: generate() passes only the arguments named here."""
        B, S = _check_inputs(input_ids, inputs_embeds, self.config.hidden_size)
        if attention_mask is not None and attention_mask.shape != (B, S):
            raise ValueError(
                f"attention_mask shape {tuple(attention_mask.shape)} does not match the input's (batch, length) "
                f"{(B, S)}."
            )
        _check_mask(attention_mask)
        output_attentions = output_attentions if output_attentions is not None else self.config.output_attentions
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        device = (input_ids if input_ids is not None else inputs_embeds).device
        # 1. embed (§3.4, §3.5)
        positions = _positions_from_mask(attention_mask, 0, S, device)
        hidden = self.embeddings(input_ids, positions, S, inputs_embeds=inputs_embeds)
        bias = _key_padding_bias(attention_mask, hidden.dtype)  # (B, 1, 1, S) or None
        # 2. encode: every position attends to every real source token (§3.2.3)
        hidden, all_hidden, weights = self._run_stack(hidden, (bias,), output_attentions, output_hidden_states)
        output = BaseModelOutput(
            last_hidden_state=hidden,
            hidden_states=all_hidden,
            attentions=tuple(w[0] for w in weights) if output_attentions else None,
        )
        return output if (return_dict if return_dict is not None else self.config.return_dict) else output.to_tuple()


class TransformerDecoderModel(TransformerPreTrainedModel):
    """N layers of masked self-attention (+ encoder-decoder attention when `config.is_encoder_decoder`) + FFN.

    Built from a [`TransformerDecoderConfig`] it is the decoder-only body (`AutoModel`, feature extraction) of
    [`TransformerForCausalLM`]; inside [`TransformerModel`] it is the decoder stack. The key/value cache is a
    transformers `EncoderDecoderCache` (encoder-decoder) or `DynamicCache` (decoder only), or a `StaticCache` (inside
    the `EncoderDecoderCache` for the encoder-decoder) when generate() is asked for one. `attention_mask` may then also
    be a prepared 4-D mask (B or 1, 1, T, keys), boolean or additive, as generate() builds for static caches.
    """

    config_class = TransformerDecoderConfig

    def __init__(self, config: TransformerConfig):
        super().__init__(config)
        self._build_stack(config, TransformerDecoderLayer, config.decoder_layers)
        self.post_init()

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPastAndCrossAttentions | tuple:
        """input_ids: (B, T) new tokens (or inputs_embeds: (B, T, d_model)); attention_mask: (B, past + T) or (B, T),
        1 = real token; encoder_hidden_states: (B, S, d_model); encoder_attention_mask: (B, S)."""
        _refuse_unknown_kwargs(self, kwargs)
        prefix = "decoder_" if self.config.is_encoder_decoder else ""  # the argument names of the encoder-decoder
        B, T = _check_inputs(input_ids, inputs_embeds, self.config.hidden_size, prefix)
        output_attentions = output_attentions if output_attentions is not None else self.config.output_attentions
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        if use_cache is None:
            # an exported graph cannot return a cache object it created: export traces the uncached forward
            use_cache = self.config.use_cache and not self.training and not _is_exporting()
        if self.gradient_checkpointing and self.training and use_cache:
            logger.warning_once("use_cache=True is incompatible with activation checkpointing; using use_cache=False.")
            use_cache = False
        if use_cache and cache is None:  # the first step of incremental decoding
            cache = (
                EncoderDecoderCache(DynamicCache(), DynamicCache())
                if self.config.is_encoder_decoder
                else DynamicCache()
            )
        past_length = cache.get_seq_length() if cache is not None else 0
        # a static cache (generate(cache_implementation="static")) returns keys of a fixed length at every step and
        # counts its tokens in a tensor: a Python int in eager mode, a traced tensor under torch.compile
        self_cache = cache.self_attention_cache if isinstance(cache, EncoderDecoderCache) else cache
        static_length = self_cache.get_mask_sizes(T, 0)[0] if getattr(self_cache, "is_compileable", False) else None
        if static_length is not None and isinstance(past_length, torch.Tensor) and not torch.compiler.is_compiling():
            past_length = int(past_length)
        compiled_static = static_length is not None and isinstance(past_length, torch.Tensor)
        prepared_mask = None
        if attention_mask is not None and attention_mask.dim() == 4:  # generate() builds them for static caches
            # positions then count from the cache (or come as position_ids); the mask is checked with the bias below
            prepared_mask, attention_mask = attention_mask, None
        # (compiled with a static cache, `past_length` is a tensor: a 2-D mask is taken to cover cached + new tokens)
        if (
            attention_mask is not None
            and not compiled_static
            and attention_mask.shape not in ((B, past_length + T), (B, T))
        ):
            raise ValueError(
                f"{prefix}attention_mask shape {tuple(attention_mask.shape)} should be (batch, cached + new tokens) = "
                f"{(B, past_length + T)}."
            )
        if attention_mask is not None and not compiled_static and attention_mask.shape[1] != past_length + T:
            # a mask for the new tokens only: the cached ones were real
            attention_mask = torch.cat([attention_mask.new_ones(B, past_length), attention_mask], dim=1)
        _check_mask(attention_mask, f"{prefix}attention_mask")
        if self.config.is_encoder_decoder:
            if encoder_hidden_states is None:
                raise ValueError("The encoder-decoder decoder needs `encoder_hidden_states` (run the encoder first).")
            if not compiled_static and past_length == 0:  # the same mask comes back at every generation step
                _check_mask(encoder_attention_mask)  # the source mask, `attention_mask` of the encoder-decoder

        # 1. embed: positions count real tokens, so left padding keeps them equal to the unpadded sequence
        device = (input_ids if input_ids is not None else inputs_embeds).device
        if position_ids is None:
            position_ids = _positions_from_mask(attention_mask, past_length, T, device)
        hidden = self.embeddings(input_ids, position_ids, past_length + T, inputs_embeds=inputs_embeds)

        # 2. masks, built once for all layers
        if prepared_mask is not None:
            key_length = static_length if static_length is not None else past_length + T
            name = f"{prefix}attention_mask"
            self_bias, is_causal = _prepared_bias(prepared_mask, B, T, key_length, name, hidden.dtype), False
        else:
            self_bias, is_causal = _causal_bias(
                attention_mask, T, past_length, hidden.dtype, hidden.device, static_length
            )
        cross_bias = _key_padding_bias(encoder_attention_mask, hidden.dtype) if self.config.is_encoder_decoder else None

        # 3. decode: each layer writes its keys/values into `cache` (None under checkpointing and training)
        layer_args = (self_bias, is_causal, encoder_hidden_states, cross_bias, cache)
        hidden, all_hidden, weights = self._run_stack(hidden, layer_args, output_attentions, output_hidden_states)
        output = BaseModelOutputWithPastAndCrossAttentions(
            last_hidden_state=hidden,
            cache=cache if use_cache else None,
            hidden_states=all_hidden,
            attentions=tuple(w[0] for w in weights) if output_attentions else None,
            cross_attentions=(
                tuple(w[1] for w in weights) if output_attentions and self.config.is_encoder_decoder else None
            ),
        )
        return output if (return_dict if return_dict is not None else self.config.return_dict) else output.to_tuple()


class TransformerModel(TransformerPreTrainedModel):
    """Encoder + decoder without the output projection. Returns `Seq2SeqModelOutput`."""

    def __init__(self, config: TransformerConfig):
        config = _convert_config(config, TransformerConfig, is_encoder_decoder=True)
        super().__init__(config)
        self.encoder = TransformerEncoder(config)
        self.decoder = TransformerDecoderModel(config)
        # §3.4: one embedding matrix for both languages (joint BPE); tied through transformers' mechanism
        self._tied_weights_keys = (
            {"decoder.embeddings.embed_tokens.weight": "encoder.embeddings.embed_tokens.weight"}
            if config.share_embeddings
            else None
        )
        self.post_init()

    def get_input_embeddings(self):
        return self.encoder.embeddings.embed_tokens

    def set_input_embeddings(self, value):
        self.encoder.embeddings.embed_tokens = value
        if self.config.share_embeddings:
            self.decoder.embeddings.embed_tokens = value

    def get_encoder(self, modality=None):
        return self.encoder

    def get_decoder(self, modality=None):
        return self.decoder

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        decoder_position_ids: torch.LongTensor | None = None,
        encoder_outputs: BaseModelOutput | tuple | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        decoder_inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> Seq2SeqModelOutput | tuple:
        _refuse_unknown_kwargs(self, kwargs)
        if decoder_input_ids is None and decoder_inputs_embeds is None:
            raise ValueError("`decoder_input_ids` (or `labels`) are required for the encoder-decoder forward pass.")
        if encoder_outputs is None:  # generate() runs the encoder once and passes its output at every step
            encoder_outputs = self.encoder(
                input_ids,
                attention_mask,
                inputs_embeds=inputs_embeds,
                output_attentions=output_attentions,
                output_hidden_states=output_hidden_states,
                return_dict=True,
            )
        elif isinstance(encoder_outputs, tuple):
            encoder_outputs = BaseModelOutput(*encoder_outputs)
        if cache is not None and not isinstance(cache, EncoderDecoderCache):
            raise TypeError(f"The encoder-decoder cache must be an EncoderDecoderCache, got {type(cache).__name__}.")
        decoder_outputs = self.decoder(
            decoder_input_ids,
            attention_mask=decoder_attention_mask,
            position_ids=decoder_position_ids,
            cache=cache,
            inputs_embeds=decoder_inputs_embeds,
            encoder_hidden_states=encoder_outputs.last_hidden_state,
            encoder_attention_mask=attention_mask,
            use_cache=use_cache,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        output = Seq2SeqModelOutput(
            last_hidden_state=decoder_outputs.last_hidden_state,
            cache=decoder_outputs.cache,
            decoder_hidden_states=decoder_outputs.hidden_states,
            decoder_attentions=decoder_outputs.attentions,
            cross_attentions=decoder_outputs.cross_attentions,
            encoder_last_hidden_state=encoder_outputs.last_hidden_state,
            encoder_hidden_states=encoder_outputs.hidden_states,
            encoder_attentions=encoder_outputs.attentions,
        )
        return output if (return_dict if return_dict is not None else self.config.return_dict) else output.to_tuple()


class TransformerForConditionalGeneration(TransformerPreTrainedModel, GenerationMixin):
    """Encoder-decoder Transformer with the pre-softmax projection (Figure 1), for translation.

    `labels` (B, T) are target ids ending with `<eos>`; the decoder input is `labels` shifted right after
    `decoder_start_token_id` unless `decoder_input_ids` are given. Registered with `AutoModelForSeq2SeqLM`.
    """

    def __init__(self, config: TransformerConfig):
        config = _convert_config(config, TransformerConfig, is_encoder_decoder=True)
        super().__init__(config)
        self.model = TransformerModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        # §3.4: the pre-softmax projection shares the (target) embedding matrix
        source = "encoder" if config.share_embeddings else "decoder"
        self._tied_weights_keys = {"lm_head.weight": f"model.{source}.embeddings.embed_tokens.weight"}
        self.post_init()

    def get_encoder(self, modality=None):
        return self.model.encoder

    def get_decoder(self, modality=None):
        return self.model.decoder

    def prepare_decoder_input_ids_from_labels(self, labels: torch.Tensor) -> torch.Tensor:
        return shift_tokens_right(labels, self.config.pad_token_id, self.config.decoder_start_token_id)

    def prepare_inputs_for_generation(self, input_ids, is_first_iteration=False, **kwargs):
        inputs = super().prepare_inputs_for_generation(input_ids, is_first_iteration=is_first_iteration, **kwargs)
        if not is_first_iteration:  # a decode step: forward may take the lean path (issue 21, point 4)
            inputs["generation_step"] = True
        return inputs

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        decoder_position_ids: torch.LongTensor | None = None,
        encoder_outputs: BaseModelOutput | tuple | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        decoder_inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        logits_to_keep: int = 0,
        num_items_in_batch: int | torch.Tensor | None = None,
        generation_step: bool = False,
        **kwargs,
    ) -> Seq2SeqLMOutput | tuple:
        """input_ids/attention_mask: source (B, S); decoder_input_ids: (B, T); labels: (B, T) with -100 ignored.
        Returns logits (B, T, vocab_size) (only the last `logits_to_keep` positions when it is > 0).
        generation_step: set by generate() on its one-token decode steps (see `_lean_forward`)."""
        _refuse_unknown_kwargs(self, kwargs)
        if generation_step and not (labels is not None or output_attentions or output_hidden_states):
            if decoder_attention_mask is None and decoder_inputs_embeds is None:
                lean = self._lean_forward(decoder_input_ids, cache, attention_mask, decoder_position_ids, return_dict)
                if lean is not None:
                    return lean
        if labels is not None:  # training: teacher forcing over the whole target, nothing to cache
            use_cache = False
            if decoder_input_ids is None and decoder_inputs_embeds is None:
                decoder_input_ids = self.prepare_decoder_input_ids_from_labels(labels)
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            decoder_input_ids=decoder_input_ids,
            decoder_attention_mask=decoder_attention_mask,
            decoder_position_ids=decoder_position_ids,
            encoder_outputs=encoder_outputs,
            cache=cache,
            inputs_embeds=inputs_embeds,
            decoder_inputs_embeds=decoder_inputs_embeds,
            use_cache=use_cache,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        logits = self._logits(outputs.last_hidden_state, logits_to_keep)
        loss = _lm_loss(logits, labels, self.config.vocab_size, num_items_in_batch) if labels is not None else None
        # Seq2SeqLMOutput holds the fields of Seq2SeqModelOutput, the logits standing for its last hidden state
        body = {key: value for key, value in outputs.items() if key != "last_hidden_state"}
        output = Seq2SeqLMOutput(loss=loss, logits=logits, **body)
        return output if (return_dict if return_dict is not None else self.config.return_dict) else output.to_tuple()


class TransformerForCausalLM(TransformerPreTrainedModel, GenerationMixin):
    """Decoder-only Transformer language model: the decoder stack without encoder-decoder attention.

    Loss as in transformers: `labels` (B, T) are shifted inside (position t predicts labels[t + 1]) unless
    `shift_labels` (already aligned with the positions) are given. Positions follow `attention_mask`, so left-padded
    prompts generate as they would alone. Registered with `AutoModelForCausalLM` for [`TransformerDecoderConfig`];
    an encoder-decoder [`TransformerConfig`] given here is converted to it.
    """

    config_class = TransformerDecoderConfig

    def __init__(self, config: TransformerConfig):
        config = _convert_config(config, TransformerDecoderConfig, is_encoder_decoder=False)
        super().__init__(config)
        self.model = TransformerDecoderModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self._tied_weights_keys = {"lm_head.weight": "model.embeddings.embed_tokens.weight"}
        self.post_init()

    def get_decoder(self, modality=None):
        return self.model

    def prepare_inputs_for_generation(
        self, input_ids, attention_mask=None, inputs_embeds=None, is_first_iteration=False, **kwargs
    ):
        # Right padding puts pad tokens between the prompt and the new tokens: continuations then differ from the
        # prompt alone (issue #20), so it is refused once, on the prompt, instead of warned about.
        if is_first_iteration and attention_mask is not None and not _is_traced(attention_mask):
            right_padded = attention_mask[:, -1] == 0
            if bool(right_padded.any()):
                raise ValueError(
                    f"attention_mask ends with padding in row(s) {right_padded.nonzero().flatten().tolist()}: a "
                    "decoder-only model generates from left-padded prompts; use a tokenizer with padding_side='left'."
                )
        inputs = super().prepare_inputs_for_generation(
            input_ids,
            attention_mask=attention_mask,
            inputs_embeds=inputs_embeds,
            is_first_iteration=is_first_iteration,
            **kwargs,
        )
        if not is_first_iteration:  # a decode step: forward may take the lean path (issue 21, point 4)
            inputs["generation_step"] = True
        return inputs

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        shift_labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        logits_to_keep: int = 0,
        num_items_in_batch: int | torch.Tensor | None = None,
        generation_step: bool = False,
        **kwargs,
    ) -> CausalLMOutputWithCrossAttentions | tuple:
        """input_ids: (B, T) (or inputs_embeds: (B, T, d_model)); attention_mask: (B, past + T), 1 = real token;
        labels: (B, T), -100 ignored; shift_labels: (B, T), the target of each position. Returns logits
        (B, T, vocab_size) (only the last `logits_to_keep` positions when it is > 0).
        generation_step: set by generate() on its one-token decode steps (see `_lean_forward`)."""
        _refuse_unknown_kwargs(self, kwargs)
        no_extras = labels is None and shift_labels is None and not (output_attentions or output_hidden_states)
        if generation_step and no_extras and inputs_embeds is None and (attention_mask is None or attention_mask.dim() == 2):
            lean = self._lean_forward(input_ids, cache, attention_mask, position_ids, return_dict)
            if lean is not None:
                return lean
        if labels is not None or shift_labels is not None:
            use_cache = False
        outputs = self.model(
            input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        logits = self._logits(outputs.last_hidden_state, logits_to_keep)
        loss = None
        if labels is not None or shift_labels is not None:
            if shift_labels is None:
                if labels.shape != logits.shape[:2]:
                    raise ValueError(
                        f"labels shape {tuple(labels.shape)} must be the input's (batch, length) "
                        f"{tuple(logits.shape[:2])}."
                    )
                shift_labels = F.pad(labels, (0, 1), value=-100)[:, 1:]  # (B, T): the last position has no target
            loss = _lm_loss(logits, shift_labels, self.config.vocab_size, num_items_in_batch)
        output = CausalLMOutputWithCrossAttentions(
            loss=loss,
            logits=logits,
            cache=outputs.cache,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return output if (return_dict if return_dict is not None else self.config.return_dict) else output.to_tuple()


__all__ = [
    "TransformerPreTrainedModel",
    "TransformerEncoder",
    "TransformerDecoderModel",
    "TransformerModel",
    "TransformerForConditionalGeneration",
    "TransformerForCausalLM",
    "sinusoidal_position_encoding",
]
