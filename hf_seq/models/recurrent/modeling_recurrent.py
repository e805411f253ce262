"""Recurrent language models: vanilla RNN, GRU and LSTM on the fused PyTorch kernels (cuDNN on GPU).

Reads leaf to root: input checks -> the recurrent state cache -> one recurrent layer -> the pre-trained base ->
the base model (embeddings + stacked layers) -> the causal LM head -> one thin class per architecture.
"""

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence
from transformers import GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import ModelOutput
from transformers.utils import logging

from .configuration_recurrent import GRUConfig, LSTMConfig, RecurrentConfig, RNNConfig
from .crf import LinearChainCRF

logger = logging.get_logger(__name__)

_CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
_INT_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)


def check_input_ids(input_ids: torch.Tensor, vocab_size: int) -> None:
    """Raise a clear error for ids torch would otherwise reject deep inside `nn.Embedding` (or silently accept)."""
    if not isinstance(input_ids, torch.Tensor):
        raise TypeError(f"`input_ids` must be a torch.Tensor, got {type(input_ids).__name__}.")
    if input_ids.dtype not in _INT_DTYPES:
        raise TypeError(f"`input_ids` must hold integer token ids, got dtype {input_ids.dtype}.")
    if input_ids.ndim != 2:
        raise ValueError(f"`input_ids` must have shape (batch, sequence_length), got {tuple(input_ids.shape)}.")
    if input_ids.shape[0] == 0 or input_ids.shape[1] == 0:
        raise ValueError(f"`input_ids` is empty (shape {tuple(input_ids.shape)}); need at least one token per row.")
    low, high = torch.aminmax(input_ids)
    if low < 0 or high >= vocab_size:
        bad = int(low) if low < 0 else int(high)
        raise ValueError(f"token id {bad} in `input_ids` is outside the vocabulary range [0, {vocab_size}).")


def check_attention_mask(attention_mask: torch.Tensor, batch_size: int, seq_len: int, past_len: int) -> torch.Tensor:
    """Validate a 2-D padding mask and return the columns that belong to the new tokens, as a bool tensor."""
    if attention_mask.ndim != 2 or attention_mask.shape[0] != batch_size:
        raise ValueError(
            f"`attention_mask` must have shape (batch={batch_size}, sequence_length), got {tuple(attention_mask.shape)}."
        )
    allowed = (seq_len,) if past_len == 0 else (seq_len, past_len + seq_len)
    if attention_mask.shape[1] not in allowed:
        raise ValueError(
            f"`attention_mask` has {attention_mask.shape[1]} columns; expected {' or '.join(map(str, allowed))} "
            f"(new tokens {seq_len}, cached tokens {past_len})."
        )
    if attention_mask.is_floating_point() and not torch.isfinite(attention_mask).all():
        raise ValueError("`attention_mask` contains NaN or inf; it must hold 0 (padding) and 1 (token).")
    if ((attention_mask != 0) & (attention_mask != 1)).any():
        raise ValueError("`attention_mask` must hold only 0 (padding) and 1 (token).")
    return attention_mask[:, -seq_len:].bool()


class RecurrentCache:
    """The recurrent state of every layer, carried between `generate()` steps: O(1) memory and work per new token.

    `states[i]` is a tuple with one tensor for GRU/RNN (h) and two for LSTM (h, c), each (directions, batch, hidden):
    the fused kernel's own layout, so a decoding step passes it in and out without a copy. The batch is dim 1, which
    is where beam search reorders rows.
    """

    is_compileable = False

    def __init__(self, states: list[tuple[torch.Tensor, ...]], seen_tokens: int = 0):
        self.states = states
        self.seen_tokens = seen_tokens

    @property
    def is_linear(self) -> list[bool]:
        # generate() reads this to know the cache has no growing key/value length to slice by.
        return [True] * len(self.states)

    def __len__(self) -> int:
        return len(self.states)

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.seen_tokens

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        self.states = [tuple(t.index_select(1, beam_idx.to(t.device)) for t in layer) for layer in self.states]

    def batch_repeat_interleave(self, repeats: int) -> None:
        self.states = [tuple(t.repeat_interleave(repeats, dim=1) for t in layer) for layer in self.states]

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self.states = [tuple(t[:, indices] for t in layer) for layer in self.states]

    def detach(self) -> "RecurrentCache":
        """A copy cut from the autograd graph: truncated BPTT carries the values, not the gradients."""
        return RecurrentCache([tuple(t.detach() for t in layer) for layer in self.states], self.seen_tokens)


@dataclass
class RecurrentModelOutput(ModelOutput):
    """
    last_hidden_state: (batch, seq_len, directions * hidden_size) top-layer outputs; zeros at padded positions.
    cache: the final state of every layer (a [`RecurrentCache`]) when `use_cache=True`.
    final_hidden_state: (batch, directions * hidden_size) top layer's final state at each row's last real token
        (the right-to-left direction ends at the first real token).
    hidden_states: embeddings output plus each layer's output, when `output_hidden_states=True`.
    """

    last_hidden_state: torch.FloatTensor | None = None
    cache: RecurrentCache | None = None
    final_hidden_state: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class RecurrentCausalLMOutput(ModelOutput):
    """loss: next-token cross-entropy (labels shifted inside); logits: (batch, seq_len, vocab_size)."""

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    cache: RecurrentCache | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None


class RecurrentLayer(nn.Module):
    """One (bi)directional layer of the fused kernel. Layers are separate modules so every layer's output can be
    returned (`output_hidden_states`) and dropout sits between them as in Zaremba et al. 2014."""

    def __init__(self, config: RecurrentConfig, input_size: int):
        super().__init__()
        kwargs = {"nonlinearity": config.nonlinearity} if config.cell_type == "rnn" else {}
        self.cell_type = config.cell_type
        self.rnn = _CELLS[config.cell_type](
            input_size, config.hidden_size, batch_first=True, bidirectional=config.bidirectional, **kwargs
        )

    def forward(self, x, state: tuple[torch.Tensor, ...] | None):
        # x: (B, T, C) tensor or a PackedSequence; state: tensors of (D, B, H), the kernel's layout
        hx = state if state is None or self.cell_type == "lstm" else state[0]
        if self.cell_type == "lstm" and torch.is_autocast_enabled("cpu") and self.rnn.weight_hh_l0.device.type == "cpu":
            # torch's CPU (oneDNN) LSTM has no bf16/fp16 primitive on CPUs without native bf16: under CPU autocast
            # the recurrence runs in float32, the rest of the model stays in low precision.
            with torch.autocast("cpu", enabled=False):
                x = x._replace(data=x.data.float()) if isinstance(x, PackedSequence) else x.float()
                hx = None if hx is None else tuple(t.float() for t in hx)
                out, h_n = self.rnn(x, hx)
        else:
            out, h_n = self.rnn(x, hx)
        return out, (h_n if isinstance(h_n, tuple) else (h_n,))


class RecurrentPreTrainedModel(PreTrainedModel):
    config_class = RecurrentConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = False
    _no_split_modules = ["RecurrentLayer"]

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        # The state lives in RecurrentCache, not in transformers' key/value caches (HF-NOTES, route 2).
        return False

    def _init_weights(self, module):
        # Zaremba et al. 2014: every weight from U(-r, r). The default covers nn.LSTM only, not nn.GRU / nn.RNN.
        r = self.config.initializer_range
        if isinstance(module, (nn.RNN, nn.GRU, nn.LSTM)):
            for name, param in module.named_parameters():
                if name.startswith("weight"):
                    init.uniform_(param, -r, r)
                else:
                    init.zeros_(param)
        elif isinstance(module, (nn.Linear, nn.Embedding)):
            init.uniform_(module.weight, -r, r)
            if getattr(module, "bias", None) is not None:
                init.zeros_(module.bias)
        elif isinstance(module, LinearChainCRF):
            for param in module.parameters():
                init.zeros_(param)


class RecurrentModel(RecurrentPreTrainedModel):
    """Token embeddings + a stack of recurrent layers. Padding (attention_mask == 0) never enters the state."""

    def __init__(self, config: RecurrentConfig):
        super().__init__(config)
        self.embeddings = nn.Embedding(config.vocab_size, config.embedding_size)
        widths = [config.embedding_size] + [config.hidden_size * config.num_directions] * (config.num_hidden_layers - 1)
        self.layers = nn.ModuleList(RecurrentLayer(config, width) for width in widths)
        self.embedding_dropout = nn.Dropout(config.embedding_dropout)
        self.hidden_dropout = nn.Dropout(config.hidden_dropout)
        self.output_dropout = nn.Dropout(config.output_dropout)
        self.post_init()

    def get_input_embeddings(self):
        return self.embeddings

    def set_input_embeddings(self, value):
        self.embeddings = value

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        cache: RecurrentCache | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        use_cache: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> RecurrentModelOutput:
        use_cache = use_cache if use_cache is not None else self.config.use_cache
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of `input_ids` or `inputs_embeds`.")
        if cache is not None and not isinstance(cache, RecurrentCache):
            raise TypeError(f"`cache` must be a RecurrentCache (from a previous call), got {type(cache).__name__}.")

        # 1. embed
        if inputs_embeds is None:
            check_input_ids(input_ids, self.config.vocab_size)
            inputs_embeds = self.embeddings(input_ids)
        else:
            if inputs_embeds.ndim != 3 or inputs_embeds.shape[-1] != self.config.embedding_size:
                raise ValueError(
                    f"`inputs_embeds` must have shape (batch, seq_len, {self.config.embedding_size}), "
                    f"got {tuple(inputs_embeds.shape)}."
                )
            if inputs_embeds.shape[0] == 0 or inputs_embeds.shape[1] == 0:
                raise ValueError(f"`inputs_embeds` is empty (shape {tuple(inputs_embeds.shape)}).")
            if not torch.isfinite(inputs_embeds).all():
                raise ValueError("`inputs_embeds` contains NaN or inf.")
        B, T, _ = inputs_embeds.shape
        past_len = cache.seen_tokens if cache is not None else 0
        if cache is not None and cache.states[0][0].shape[1] != B:
            raise ValueError(f"`cache` holds {cache.states[0][0].shape[1]} rows but the input has batch size {B}.")
        hidden = self.embedding_dropout(inputs_embeds)

        # 2. keep padding out of the state: move each row's real tokens to the front (stable), then pack.
        mask = None
        if attention_mask is not None:
            mask = check_attention_mask(attention_mask, B, T, past_len)
            if bool(mask.all()):
                mask = None
        order = None
        if mask is not None:
            lengths = mask.sum(dim=1)
            if bool((lengths == 0).any()):
                row = int((lengths == 0).nonzero()[0])
                raise ValueError(f"row {row} of the batch has no real token (its attention_mask is all 0).")
            order = torch.sort((~mask).to(torch.int8), dim=1, stable=True).indices  # (B, T): real positions first
            hidden = hidden.gather(1, order.unsqueeze(-1).expand_as(hidden))
            hidden = pack_padded_sequence(hidden, lengths.cpu(), batch_first=True, enforce_sorted=False)

        def unpack(x):
            # back to (B, T, C) at the original positions, zeros where the input was padding
            if order is None:
                return x
            x, _ = pad_packed_sequence(x, batch_first=True, total_length=T)
            return torch.zeros_like(x).scatter(1, order.unsqueeze(-1).expand_as(x), x)

        def dropout(module, x):
            if isinstance(x, PackedSequence):
                return x._replace(data=module(x.data))
            return module(x)

        # 3. run the stack
        all_hidden = (unpack(hidden),) if output_hidden_states else None
        new_states = []
        for i, layer in enumerate(self.layers):
            if i > 0:
                hidden = dropout(self.hidden_dropout, hidden)
            hidden, state = layer(hidden, cache.states[i] if cache is not None else None)
            new_states.append(state)
            if output_hidden_states:
                all_hidden += (unpack(hidden),)
        hidden = unpack(hidden)
        last_hidden = self.output_dropout(hidden)

        # final state of the top layer, directions concatenated: (B, D * H)
        final_hidden = new_states[-1][0].transpose(0, 1).reshape(B, -1)
        new_cache = RecurrentCache(new_states, past_len + T) if use_cache else None
        return RecurrentModelOutput(
            last_hidden_state=last_hidden,
            cache=new_cache,
            final_hidden_state=final_hidden,
            hidden_states=all_hidden,
        )


class RecurrentForCausalLM(RecurrentPreTrainedModel, GenerationMixin):
    """A recurrent language model: p(x_t | x_<t) = softmax(W h_t). With `tie_word_embeddings`, W is the input
    embedding matrix (Press & Wolf 2017; Inan et al. 2017)."""

    _tied_weights_keys = {"lm_head.weight": "model.embeddings.weight"}

    def __init__(self, config: RecurrentConfig):
        if config.bidirectional:
            raise ValueError(
                "A causal language model cannot be bidirectional (`bidirectional=True`): the right-to-left direction "
                "would read the tokens it must predict. Use bidirectional=False, or a classification head."
            )
        super().__init__(config)
        self.model = RecurrentModel(config)
        out_width = config.hidden_size
        self.projection = None
        if config.output_projection:
            self.projection = nn.Linear(config.hidden_size, config.embedding_size)
            out_width = config.embedding_size
        self.lm_head = nn.Linear(out_width, config.vocab_size)
        self.post_init()

    def get_output_embeddings(self):
        return self.lm_head

    def set_output_embeddings(self, new_embeddings):
        self.lm_head = new_embeddings

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        cache: RecurrentCache | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        logits_to_keep: int = 0,
        **kwargs,
    ) -> RecurrentCausalLMOutput:
        r"""
        labels (`torch.LongTensor` of shape `(batch, seq_len)`): the input ids themselves (shifted inside); -100 is
            ignored.
        logits_to_keep (`int`): if > 0, compute logits for the last `logits_to_keep` positions only (generation).
        """
        # 1. encode
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            cache=cache,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            output_hidden_states=output_hidden_states,
        )
        hidden = outputs.last_hidden_state
        if logits_to_keep:
            hidden = hidden[:, -logits_to_keep:]
        # 2. project to the vocabulary
        if self.projection is not None:
            hidden = self.projection(hidden)
        logits = self.lm_head(hidden)

        # 3. loss
        loss = None
        if labels is not None:
            if labels.shape != logits.shape[:2]:
                raise ValueError(
                    f"`labels` must have the shape of the inputs {tuple(logits.shape[:2])}, got {tuple(labels.shape)}."
                )
            valid = labels[labels != -100]
            if valid.numel() and (valid.min() < 0 or valid.max() >= self.config.vocab_size):
                bad = int(valid.min()) if valid.min() < 0 else int(valid.max())
                raise ValueError(f"label {bad} is outside [0, {self.config.vocab_size}) (use -100 to ignore).")
            if not (labels[:, 1:] != -100).any():
                raise ValueError(
                    "`labels` leave no token to predict after the shift (every row has fewer than 2 labelled tokens); "
                    "the loss would be NaN."
                )
            loss = self.loss_function(logits=logits, labels=labels, vocab_size=self.config.vocab_size, **kwargs)

        return RecurrentCausalLMOutput(
            loss=loss, logits=logits, cache=outputs.cache, hidden_states=outputs.hidden_states
        )


# One thin class per architecture: transformers' Auto classes map each config class to its own model class.
class RNNModel(RecurrentModel):
    config_class = RNNConfig


class RNNForCausalLM(RecurrentForCausalLM):
    config_class = RNNConfig


class GRUModel(RecurrentModel):
    config_class = GRUConfig


class GRUForCausalLM(RecurrentForCausalLM):
    config_class = GRUConfig


class LSTMModel(RecurrentModel):
    config_class = LSTMConfig


class LSTMForCausalLM(RecurrentForCausalLM):
    config_class = LSTMConfig


__all__ = [
    "RecurrentCache",
    "RecurrentModelOutput",
    "RecurrentCausalLMOutput",
    "RecurrentLayer",
    "RecurrentPreTrainedModel",
    "RecurrentModel",
    "RecurrentForCausalLM",
    "RNNModel",
    "RNNForCausalLM",
    "GRUModel",
    "GRUForCausalLM",
    "LSTMModel",
    "LSTMForCausalLM",
]
