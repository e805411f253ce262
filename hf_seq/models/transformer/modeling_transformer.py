"""The Transformer of Vaswani et al. (2017), "Attention Is All You Need" (arXiv:1706.03762), batch-first.

Read leaf to root, in the paper's order: positional encoding (§3.5) → scaled dot-product and multi-head attention
(§3.2) → position-wise feed-forward (§3.3) → encoder / decoder layers with residual + LayerNorm (§3.1, Figure 1) →
stacks with embeddings scaled by sqrt(d_model) (§3.4) → the encoder-decoder and decoder-only heads.

Attention runs through `torch.nn.functional.scaled_dot_product_attention`; an eager path (the formula written out)
runs instead when `output_attentions=True` or `attn_implementation="eager"`, so attention weights can be returned.
"""

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.cache_utils import Cache, DynamicCache, EncoderDecoderCache
from transformers.modeling_outputs import (
    BaseModelOutput,
    BaseModelOutputWithPastAndCrossAttentions,
    CausalLMOutputWithCrossAttentions,
    Seq2SeqLMOutput,
    Seq2SeqModelOutput,
)
from transformers.utils import logging

from .configuration_transformer import TransformerConfig

logger = logging.get_logger(__name__)


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


def _positions_from_mask(attention_mask: torch.Tensor | None, past_length: int, length: int, device) -> torch.Tensor:
    """Position of each of the last `length` tokens: count of real tokens before it, so left padding does not shift
    positions. attention_mask: (B, past_length + length) or None. Returns (B or 1, length)."""
    if attention_mask is None:
        return torch.arange(past_length, past_length + length, device=device).unsqueeze(0)
    positions = attention_mask.long().cumsum(-1) - 1
    return positions.clamp(min=0)[:, -length:]


def _check_mask(attention_mask: torch.Tensor | None, name: str = "attention_mask") -> None:
    """A float mask must hold only 0 and 1 (NaN or fractional values would silently change attention)."""
    if attention_mask is not None and attention_mask.is_floating_point():
        if not bool(((attention_mask == 0) | (attention_mask == 1)).all()):
            raise ValueError(f"{name} must hold only 0 (padding) and 1 (token); got other values such as NaN.")


def _key_padding_bias(attention_mask: torch.Tensor | None, dtype) -> torch.Tensor | None:
    """(B, S) 1/0 mask → additive (B, 1, 1, S) bias, or None when nothing is masked (lets SDPA use its fast path)."""
    if attention_mask is None or bool(attention_mask.all()):
        return None
    bias = torch.zeros(attention_mask.shape, dtype=dtype, device=attention_mask.device)
    bias.masked_fill_(attention_mask == 0, torch.finfo(dtype).min)
    return bias[:, None, None, :]


def _causal_bias(
    attention_mask: torch.Tensor | None, query_length: int, past_length: int, dtype, device
) -> tuple[torch.Tensor | None, bool]:
    """Bias for masked (causal) self-attention over `past_length + query_length` keys, plus whether SDPA's own
    `is_causal` flag can replace it (no padding and no cache). A row with every key masked (a left-pad query) gets a
    uniform distribution instead of NaN, and its output is never read."""
    key_length = past_length + query_length
    has_padding = attention_mask is not None and not bool(attention_mask.all())
    if not has_padding:
        if past_length == 0 and query_length > 1:
            return None, True
        if query_length == 1:
            return None, False
    query_pos = torch.arange(past_length, key_length, device=device)[:, None]
    allowed = (torch.arange(key_length, device=device)[None, :] <= query_pos)[None, None]  # (1, 1, T, K)
    if has_padding:
        allowed = allowed & attention_mask[:, None, None, -key_length:].bool()  # (B, 1, T, K)
    bias = torch.zeros(allowed.shape, dtype=dtype, device=device)
    bias.masked_fill_(~allowed, torch.finfo(dtype).min)
    return bias, False


# §3.5 Positional encoding
class TransformerSinusoidalPositionalEncoding(nn.Module):
    """Fixed sinusoidal table (not a parameter, not saved: rebuilt from the config)."""

    def __init__(self, num_positions: int, d_model: int):
        super().__init__()
        self.num_positions, self.d_model = num_positions, d_model
        self.register_buffer("table", sinusoidal_position_encoding(num_positions, d_model), persistent=False)

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

    def forward(self, input_ids: torch.Tensor, position_ids: torch.Tensor, total_length: int) -> torch.Tensor:
        if total_length > self.max_positions:
            raise ValueError(
                f"Sequence length {total_length} (cached + new tokens) exceeds max_position_embeddings="
                f"{self.max_positions}; shorten the input or build the model with a larger max_position_embeddings."
            )
        if input_ids.is_floating_point() or input_ids.is_complex() or input_ids.dtype == torch.bool:
            raise TypeError(f"input ids must be an integer tensor, got dtype {input_ids.dtype}.")
        if input_ids.numel() == 0:
            raise ValueError(
                f"input ids are empty (shape {tuple(input_ids.shape)}): give at least one row with at least one token."
            )
        vocab_size = self.embed_tokens.num_embeddings  # follows resize_token_embeddings
        low, high = torch.aminmax(input_ids)
        if low < 0 or high >= vocab_size:
            raise ValueError(
                f"input ids must lie in [0, {vocab_size}) (vocab_size), got ids from {int(low)} to {int(high)}."
            )
        hidden = self.embed_tokens(input_ids) * self.scale + self.embed_positions(position_ids)
        return self.dropout(hidden)


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
        B, T, C = hidden_states.shape
        query = self._split_heads(self.q_proj(hidden_states))

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
                self_cache = cache.self_attention_cache if isinstance(cache, EncoderDecoderCache) else cache
                key, value = self_cache.update(key, value, self.layer_idx)

        dropout = self.dropout if self.training else 0.0
        if output_attentions or self.config._attn_implementation == "eager":
            scores = torch.matmul(query, key.transpose(-1, -2)) * self.scaling  # (B, h, T, K)
            if is_causal:
                scores = scores.masked_fill(
                    torch.ones(T, key.shape[-2], dtype=torch.bool, device=scores.device).triu(1),
                    torch.finfo(scores.dtype).min,
                )
            if attention_bias is not None:
                scores = scores + attention_bias
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
        x = hidden_states
        if self.norm_first:
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
        x, self_weights = self._sublayer(
            hidden_states,
            self.self_attn_layer_norm,
            lambda h: self.self_attn(
                h,
                attention_bias=self_attention_bias,
                is_causal=is_causal,
                cache=cache,
                output_attentions=output_attentions,
            ),
        )
        cross_weights = None
        if self.encoder_attn is not None:
            x, cross_weights = self._sublayer(
                x,
                self.encoder_attn_layer_norm,
                lambda h: self.encoder_attn(
                    h,
                    key_value_states=encoder_hidden_states,
                    attention_bias=encoder_attention_bias,
                    cache=cache,
                    output_attentions=output_attentions,
                ),
            )
        if self.norm_first:
            x = x + self.dropout(self.ffn(self.final_layer_norm(x)))
        else:
            x = self.final_layer_norm(x + self.dropout(self.ffn(x)))
        return x, self_weights, cross_weights


class TransformerPreTrainedModel(PreTrainedModel):
    config_class = TransformerConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = False
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


class TransformerEncoder(nn.Module):
    """N identical layers of self-attention + FFN over the source (§3.1). Returns `BaseModelOutput`."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = config
        self.embeddings = TransformerEmbeddings(config)
        self.layers = nn.ModuleList([TransformerEncoderLayer(config, i) for i in range(config.encoder_layers)])
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps) if config.norm_first else None

    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        return_dict: bool = True,
        **kwargs,
    ) -> BaseModelOutput:
        """input_ids: (B, S); attention_mask: (B, S), 1 for real tokens. Returns last_hidden_state (B, S, d_model)."""
        if input_ids is None:
            raise ValueError("The encoder needs `input_ids` of shape (batch, source_length).")
        if attention_mask is not None and attention_mask.shape != input_ids.shape:
            raise ValueError(
                f"attention_mask shape {tuple(attention_mask.shape)} does not match input_ids shape "
                f"{tuple(input_ids.shape)}."
            )
        _check_mask(attention_mask)
        B, S = input_ids.shape
        # 1. embed
        hidden = self.embeddings(input_ids, _positions_from_mask(attention_mask, 0, S, input_ids.device), S)
        bias = _key_padding_bias(attention_mask, hidden.dtype)
        # 2. encode
        all_hidden, all_attn = (), ()
        for layer in self.layers:
            if output_hidden_states:
                all_hidden += (hidden,)
            hidden, weights = layer(hidden, attention_bias=bias, output_attentions=output_attentions)
            if output_attentions:
                all_attn += (weights,)
        if self.layer_norm is not None:
            hidden = self.layer_norm(hidden)
        if output_hidden_states:
            all_hidden += (hidden,)
        return BaseModelOutput(
            last_hidden_state=hidden,
            hidden_states=all_hidden if output_hidden_states else None,
            attentions=all_attn if output_attentions else None,
        )


class TransformerDecoder(nn.Module):
    """N layers of masked self-attention (+ encoder-decoder attention when `config.is_encoder_decoder`) + FFN.

    The key/value cache is a transformers `EncoderDecoderCache` (encoder-decoder) or `DynamicCache` (decoder only).
    """

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = config
        self.embeddings = TransformerEmbeddings(config)
        self.layers = nn.ModuleList([TransformerDecoderLayer(config, i) for i in range(config.decoder_layers)])
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps) if config.norm_first else None

    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        cache: Cache | None = None,
        use_cache: bool = False,
        position_ids: torch.LongTensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> BaseModelOutputWithPastAndCrossAttentions:
        """input_ids: (B, T) new tokens; attention_mask: (B, past + T) or (B, T) without a cache, 1 = real token;
        encoder_hidden_states: (B, S, d_model); encoder_attention_mask: (B, S)."""
        _check_mask(attention_mask)
        _check_mask(encoder_attention_mask, "encoder attention_mask")
        B, T = input_ids.shape
        if use_cache and cache is None:
            cache = (
                EncoderDecoderCache(DynamicCache(), DynamicCache())
                if self.config.is_encoder_decoder
                else DynamicCache()
            )
        past_length = cache.get_seq_length() if cache is not None else 0
        if attention_mask is not None and attention_mask.shape not in ((B, past_length + T), (B, T)):
            raise ValueError(
                f"attention_mask shape {tuple(attention_mask.shape)} should be (batch, cached + new tokens) = "
                f"{(B, past_length + T)}."
            )
        if attention_mask is not None and attention_mask.shape[1] != past_length + T:
            attention_mask = torch.cat([attention_mask.new_ones(B, past_length), attention_mask], dim=1)
        if self.config.is_encoder_decoder and encoder_hidden_states is None:
            raise ValueError("The encoder-decoder decoder needs `encoder_hidden_states` (run the encoder first).")

        # 1. embed: positions count real tokens, so left padding keeps them equal to the unpadded sequence
        if position_ids is None:
            position_ids = _positions_from_mask(attention_mask, past_length, T, input_ids.device)
        hidden = self.embeddings(input_ids, position_ids, past_length + T)

        # 2. masks, built once for all layers
        self_bias, is_causal = _causal_bias(attention_mask, T, past_length, hidden.dtype, hidden.device)
        cross_bias = _key_padding_bias(encoder_attention_mask, hidden.dtype) if self.config.is_encoder_decoder else None

        # 3. decode
        all_hidden, all_self, all_cross = (), (), ()
        for layer in self.layers:
            if output_hidden_states:
                all_hidden += (hidden,)
            hidden, self_w, cross_w = layer(
                hidden,
                self_attention_bias=self_bias,
                is_causal=is_causal,
                encoder_hidden_states=encoder_hidden_states,
                encoder_attention_bias=cross_bias,
                cache=cache,
                output_attentions=output_attentions,
            )
            if output_attentions:
                all_self += (self_w,)
                all_cross += (cross_w,)
        if self.layer_norm is not None:
            hidden = self.layer_norm(hidden)
        if output_hidden_states:
            all_hidden += (hidden,)
        return BaseModelOutputWithPastAndCrossAttentions(
            last_hidden_state=hidden,
            cache=cache if use_cache else None,
            hidden_states=all_hidden if output_hidden_states else None,
            attentions=all_self if output_attentions else None,
            cross_attentions=all_cross if output_attentions and self.config.is_encoder_decoder else None,
        )


def _as_encoder_decoder(config: TransformerConfig, is_encoder_decoder: bool) -> TransformerConfig:
    if config.is_encoder_decoder == is_encoder_decoder:
        return config
    config = copy.deepcopy(config)
    config.is_encoder_decoder = is_encoder_decoder
    return config


class TransformerModel(TransformerPreTrainedModel):
    """Encoder + decoder without the output projection. Returns `Seq2SeqModelOutput`."""

    def __init__(self, config: TransformerConfig):
        config = _as_encoder_decoder(config, True)
        super().__init__(config)
        self.encoder = TransformerEncoder(config)
        self.decoder = TransformerDecoder(config)
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
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> Seq2SeqModelOutput:
        output_attentions = output_attentions if output_attentions is not None else self.config.output_attentions
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        use_cache = use_cache if use_cache is not None else (self.config.use_cache and not self.training)
        if decoder_input_ids is None:
            raise ValueError("`decoder_input_ids` (or `labels`) are required for the encoder-decoder forward pass.")
        if encoder_outputs is None:
            encoder_outputs = self.encoder(
                input_ids,
                attention_mask,
                output_attentions=output_attentions,
                output_hidden_states=output_hidden_states,
            )
        elif isinstance(encoder_outputs, tuple):
            encoder_outputs = BaseModelOutput(*encoder_outputs)
        if cache is not None and not isinstance(cache, EncoderDecoderCache):
            raise TypeError(f"The encoder-decoder cache must be an EncoderDecoderCache, got {type(cache).__name__}.")
        decoder_outputs = self.decoder(
            decoder_input_ids,
            attention_mask=decoder_attention_mask,
            encoder_hidden_states=encoder_outputs.last_hidden_state,
            encoder_attention_mask=attention_mask,
            cache=cache,
            use_cache=use_cache,
            position_ids=decoder_position_ids,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
        )
        return Seq2SeqModelOutput(
            last_hidden_state=decoder_outputs.last_hidden_state,
            cache=decoder_outputs.cache,
            decoder_hidden_states=decoder_outputs.hidden_states,
            decoder_attentions=decoder_outputs.attentions,
            cross_attentions=decoder_outputs.cross_attentions,
            encoder_last_hidden_state=encoder_outputs.last_hidden_state,
            encoder_hidden_states=encoder_outputs.hidden_states,
            encoder_attentions=encoder_outputs.attentions,
        )


def _lm_loss(logits: torch.Tensor, labels: torch.Tensor, vocab_size: int) -> torch.Tensor:
    valid = (labels == -100) | ((labels >= 0) & (labels < vocab_size))
    if not bool(valid.all()):
        bad = labels[~valid]
        raise ValueError(
            f"labels must lie in [0, {vocab_size}) or be -100 (ignored); got {bad.numel()} other value(s), "
            f"e.g. {int(bad[0])}."
        )
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=-100)


class TransformerForConditionalGeneration(TransformerPreTrainedModel, GenerationMixin):
    """Encoder-decoder Transformer with the pre-softmax projection (Figure 1), for translation.

    `labels` (B, T) are target ids ending with `<eos>`; the decoder input is `labels` shifted right after
    `decoder_start_token_id` unless `decoder_input_ids` are given. Registered with `AutoModelForSeq2SeqLM`.
    """

    def __init__(self, config: TransformerConfig):
        config = _as_encoder_decoder(config, True)
        super().__init__(config)
        self.model = TransformerModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        # §3.4: the pre-softmax projection shares the (target) embedding matrix
        source = "encoder" if config.share_embeddings else "decoder"
        self._tied_weights_keys = {"lm_head.weight": f"model.{source}.embeddings.embed_tokens.weight"}
        self.post_init()

    def get_input_embeddings(self):
        return self.model.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.model.set_input_embeddings(value)

    def get_output_embeddings(self):
        return self.lm_head

    def set_output_embeddings(self, value):
        self.lm_head = value

    def get_encoder(self, modality=None):
        return self.model.encoder

    def get_decoder(self, modality=None):
        return self.model.decoder

    def prepare_decoder_input_ids_from_labels(self, labels: torch.Tensor) -> torch.Tensor:
        return shift_tokens_right(labels, self.config.pad_token_id, self.config.decoder_start_token_id)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        decoder_position_ids: torch.LongTensor | None = None,
        encoder_outputs: BaseModelOutput | tuple | None = None,
        cache: Cache | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        logits_to_keep: int = 0,
        **kwargs,
    ) -> Seq2SeqLMOutput:
        """input_ids/attention_mask: source (B, S); decoder_input_ids: (B, T); labels: (B, T) with -100 ignored.
        Returns logits (B, T, vocab_size) (only the last `logits_to_keep` positions when it is > 0)."""
        if labels is not None:
            use_cache = False
            if decoder_input_ids is None:
                decoder_input_ids = self.prepare_decoder_input_ids_from_labels(labels)
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            decoder_input_ids=decoder_input_ids,
            decoder_attention_mask=decoder_attention_mask,
            decoder_position_ids=decoder_position_ids,
            encoder_outputs=encoder_outputs,
            cache=cache,
            use_cache=use_cache,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
        )
        hidden = outputs.last_hidden_state
        if logits_to_keep:
            hidden = hidden[:, -logits_to_keep:]
        logits = self.lm_head(hidden)
        loss = _lm_loss(logits, labels, self.config.vocab_size) if labels is not None else None
        return Seq2SeqLMOutput(
            loss=loss,
            logits=logits,
            cache=outputs.cache,
            decoder_hidden_states=outputs.decoder_hidden_states,
            decoder_attentions=outputs.decoder_attentions,
            cross_attentions=outputs.cross_attentions,
            encoder_last_hidden_state=outputs.encoder_last_hidden_state,
            encoder_hidden_states=outputs.encoder_hidden_states,
            encoder_attentions=outputs.encoder_attentions,
        )


class TransformerForCausalLM(TransformerPreTrainedModel, GenerationMixin):
    """Decoder-only Transformer language model: the decoder stack without encoder-decoder attention.

    `labels` are the input ids (shifted inside, as in GPT-2); positions follow `attention_mask`, so left-padded
    prompts generate as they would alone. Registered with `AutoModelForCausalLM`.
    """

    def __init__(self, config: TransformerConfig):
        config = _as_encoder_decoder(config, False)
        super().__init__(config)
        self.model = TransformerDecoder(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self._tied_weights_keys = {"lm_head.weight": "model.embeddings.embed_tokens.weight"}
        self.post_init()

    def get_input_embeddings(self):
        return self.model.embeddings.embed_tokens

    def set_input_embeddings(self, value):
        self.model.embeddings.embed_tokens = value

    def get_output_embeddings(self):
        return self.lm_head

    def set_output_embeddings(self, value):
        self.lm_head = value

    def get_decoder(self, modality=None):
        return self.model

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        logits_to_keep: int = 0,
        **kwargs,
    ) -> CausalLMOutputWithCrossAttentions:
        """input_ids: (B, T); attention_mask: (B, past + T), 1 = real token; labels: (B, T), -100 ignored.
        Returns logits (B, T, vocab_size); the loss predicts token t+1 from tokens <= t."""
        if input_ids is None:
            raise ValueError("`input_ids` of shape (batch, length) are required.")
        output_attentions = output_attentions if output_attentions is not None else self.config.output_attentions
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        use_cache = use_cache if use_cache is not None else (self.config.use_cache and not self.training)
        if labels is not None:
            use_cache = False
        outputs = self.model(
            input_ids,
            attention_mask=attention_mask,
            cache=cache,
            use_cache=use_cache,
            position_ids=position_ids,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
        )
        hidden = outputs.last_hidden_state
        if logits_to_keep:
            hidden = hidden[:, -logits_to_keep:]
        logits = self.lm_head(hidden)
        loss = None
        if labels is not None:
            if labels.shape != input_ids.shape:
                raise ValueError(
                    f"labels shape {tuple(labels.shape)} must equal input_ids shape {tuple(input_ids.shape)}."
                )
            loss = _lm_loss(logits[:, :-1], labels[:, 1:], self.config.vocab_size)
        return CausalLMOutputWithCrossAttentions(
            loss=loss,
            logits=logits,
            cache=outputs.cache,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )


__all__ = [
    "TransformerPreTrainedModel",
    "TransformerModel",
    "TransformerForConditionalGeneration",
    "TransformerForCausalLM",
    "sinusoidal_position_encoding",
]
