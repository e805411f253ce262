"""Recurrent language models: vanilla RNN, GRU and LSTM on the fused PyTorch kernels (cuDNN on GPU).

Reads leaf to root: input checks -> the masked recurrence used under torch.compile / torch.export -> the recurrent
state cache -> one recurrent layer -> the pre-trained base -> the base model (embeddings + stacked layers) -> the
causal LM head -> one thin class per architecture.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence
from transformers import GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.cache_utils import DynamicCache, EncoderDecoderCache
from transformers.generation.stopping_criteria import EosTokenCriteria, MaxLengthCriteria
from transformers.modeling_outputs import ModelOutput
from transformers.utils import logging

from .configuration_recurrent import GRUConfig, LSTMConfig, RecurrentConfig, RNNConfig
from .crf import LinearChainCRF

logger = logging.get_logger(__name__)

_CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
_INT_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)
# Keyword arguments transformers itself passes to a causal LM (generate(), Trainer, pipelines) that a recurrent
# model has no use for; anything else unknown is a typo and raises (issue 19, point 9).
_IGNORED_KWARGS = frozenset({"position_ids", "cache_position", "output_attentions"})
_RNN_OPS = {"LSTM": torch.lstm, "GRU": torch.gru, "RNN_TANH": torch.rnn_tanh, "RNN_RELU": torch.rnn_relu}


def is_tracing(*tensors) -> bool:
    """True while torch.compile / torch.export / jit trace the model, or for tensors without values (fake, meta).

    Checks on tensor values (`if ids.max() >= vocab_size`) are data-dependent Python branches: they break
    `fullgraph=True` and `torch.export`, so they run in eager mode only.
    """
    if torch.compiler.is_compiling() or torch.jit.is_tracing():
        return True
    is_exporting = getattr(torch.compiler, "is_exporting", None)
    if is_exporting is not None and is_exporting():
        return True
    return any(
        isinstance(t, torch.Tensor)
        and (t.device.type == "meta" or (type(t) is not torch.Tensor and not isinstance(t, nn.Parameter)))
        for t in tensors
    )


def check_unused_kwargs(kwargs: dict, model_name: str, allowed=_IGNORED_KWARGS) -> None:
    """Refuse keyword arguments the model does not know (a misspelt `attention_maks=` would otherwise be ignored)."""
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise TypeError(f"{model_name}.forward() got unexpected keyword argument(s): {', '.join(map(repr, unknown))}.")
    if kwargs.get("output_attentions"):
        raise ValueError(f"`output_attentions=True`: {model_name} has no attention weights to return.")


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
    if is_tracing(input_ids):
        return
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
    mask = attention_mask[:, -seq_len:]
    if is_tracing(attention_mask):
        return mask.bool()
    if attention_mask.is_floating_point() and not torch.isfinite(attention_mask).all():
        raise ValueError("`attention_mask` contains NaN or inf; it must hold 0 (padding) and 1 (token).")
    if ((attention_mask != 0) & (attention_mask != 1)).any():
        bad = attention_mask[(attention_mask != 0) & (attention_mask != 1)][0].item()
        raise ValueError(f"`attention_mask` must hold only 0 (padding) and 1 (token); it holds {bad}.")
    mask = mask.bool()
    empty = (~mask).all(dim=1)
    if bool(empty.any()):
        row = int(empty.nonzero()[0])
        raise ValueError(f"row {row} of the batch has no real token (its attention_mask is all 0).")
    return mask


def rnn_op(mode: str, x: torch.Tensor, *args):
    """`_RNN_OPS[mode](x, *args)`, the op nn.LSTM/GRU/RNN.forward calls (x batch-first, not packed). torch sends a
    CPU LSTM to oneDNN, whose per-call set-up makes ONE time step slower than torch's own kernel by far (650 units,
    one thread: batch 1 3.1 ms vs 0.58 ms, batch 4 3.9 vs 1.1, batch 32 2.4 vs 1.9; issue 21), while it is as fast
    or faster over whole sequences: a one-step LSTM call (every decode step of generate()) runs with oneDNN off."""
    op = _RNN_OPS[mode]
    one_step_cpu_lstm = mode == "LSTM" and x.shape[1] == 1 and x.device.type == "cpu"
    if not one_step_cpu_lstm or torch.compiler.is_compiling() or not torch.backends.mkldnn.enabled:
        return op(x, *args)
    torch.backends.mkldnn.enabled = False
    try:
        return op(x, *args)
    finally:
        torch.backends.mkldnn.enabled = True


def _layer_weights(rnn: nn.RNNBase, layer: int) -> list[torch.Tensor]:
    """Weights of one layer of a fused nn.RNN/GRU/LSTM, both directions, in the order torch's RNN ops take them."""
    names = []
    for suffix in ("", "_reverse")[: 2 if rnn.bidirectional else 1]:
        names += [f"weight_ih_l{layer}{suffix}", f"weight_hh_l{layer}{suffix}"]
        if rnn.bias:
            names += [f"bias_ih_l{layer}{suffix}", f"bias_hh_l{layer}{suffix}"]
    return [getattr(rnn, name) for name in names]


def masked_rnn_layer(rnn: nn.RNNBase, layer: int, x: torch.Tensor, mask: torch.Tensor | None, state):
    """Layer `layer` of `rnn` as a loop over time in plain tensor ops, for torch.compile and torch.export.

    Dynamo does not trace nn.LSTM/GRU/RNN and packed sequences have data-dependent shapes, so a compiled or exported
    graph runs this instead of the fused kernel. A padded step (mask 0) keeps the state and outputs zeros, so any
    padding (left, right, holes) gives what the packed kernel gives; the right-to-left direction runs t = T-1 .. 0
    under the same rule. The gate equations are PyTorch's (torch.nn.LSTM / GRU / RNN docs).

    x: (B, T, C); mask: (B, T) bool or None; state: tuple ((D, B, H),) or ((D, B, H), (D, B, H)) for LSTM, or None.
    Returns output (B, T, D * H) and the final state in the kernel's layout.
    """
    B, T, _ = x.shape
    H, D, mode = rnn.hidden_size, 2 if rnn.bidirectional else 1, rnn.mode
    weights = _layer_weights(rnn, layer)
    per_dir = len(weights) // D
    if state is None:
        zeros = x.new_zeros(D, B, H)
        state = (zeros, zeros) if mode == "LSTM" else (zeros,)
    outputs, final_h, final_c = [], [], []
    for d in range(D):
        w_ih, w_hh, *biases = weights[d * per_dir : (d + 1) * per_dir]
        b_ih, b_hh = biases if biases else (None, None)
        gates_x = F.linear(x, w_ih, b_ih)  # (B, T, gates * H): input projections of every step in one matmul
        h = state[0][d]
        c = state[1][d] if mode == "LSTM" else None
        steps = [None] * T
        for t in range(T - 1, -1, -1) if d == 1 else range(T):
            gx, gh = gates_x[:, t], F.linear(h, w_hh, b_hh)
            if mode == "LSTM":
                i, f, g, o = (gx + gh).chunk(4, dim=-1)
                c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h_new = torch.sigmoid(o) * torch.tanh(c_new)
            elif mode == "GRU":
                x_r, x_z, x_n = gx.chunk(3, dim=-1)
                h_r, h_z, h_n = gh.chunk(3, dim=-1)
                r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
                h_new = (1 - z) * torch.tanh(x_n + r * h_n) + z * h
            else:
                h_new = torch.tanh(gx + gh) if mode == "RNN_TANH" else torch.relu(gx + gh)
            if mask is None:
                steps[t], h, c = h_new, h_new, (c_new if mode == "LSTM" else None)
            else:
                m = mask[:, t].unsqueeze(-1)  # (B, 1)
                steps[t] = h_new.masked_fill(~m, 0.0)
                h = torch.where(m, h_new, h)
                c = torch.where(m, c_new, c) if mode == "LSTM" else None
        outputs.append(torch.stack(steps, dim=1))
        final_h.append(h)
        final_c.append(c)
    new_state = (torch.stack(final_h),) + ((torch.stack(final_c),) if mode == "LSTM" else ())
    return torch.cat(outputs, dim=-1), new_state


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


def _register_cache_pytree(cls) -> None:
    """Let torch.export / torch.compile return a cache: they only pass registered containers of tensors through.
    transformers registers its own caches with the same (private but stable) torch.utils._pytree call."""
    try:
        from torch.utils import _pytree
    except ImportError:  # pragma: no cover - a torch without pytrees cannot export anyway
        return
    flatten = lambda cache: (list(cache.states), cache.seen_tokens)  # noqa: E731
    unflatten = lambda states, seen: cls([tuple(s) for s in states], seen)  # noqa: E731
    try:
        _pytree.register_pytree_node(cls, flatten, unflatten, serialized_type_name=f"{cls.__module__}.{cls.__name__}")
    except ValueError:  # already registered (module imported twice, e.g. as remote code)
        pass


_register_cache_pytree(RecurrentCache)


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
    returned (`output_hidden_states`), dropout sits between them as in Zaremba et al. 2014, and gradient
    checkpointing recomputes one layer at a time."""

    def __init__(self, config: RecurrentConfig, input_size: int):
        super().__init__()
        kwargs = {"nonlinearity": config.nonlinearity} if config.cell_type == "rnn" else {}
        self.cell_type = config.cell_type
        self.rnn = _CELLS[config.cell_type](
            input_size, config.hidden_size, batch_first=True, bidirectional=config.bidirectional, **kwargs
        )

    def _run(self, x, state):
        hx = state if state is None or self.cell_type == "lstm" else state[0]
        if self.cell_type == "lstm" and torch.is_autocast_enabled("cpu") and self.rnn.weight_hh_l0.device.type == "cpu":
            # torch's CPU (oneDNN) LSTM has no bf16/fp16 primitive on CPUs without native bf16: under CPU autocast
            # the recurrence runs in float32, the rest of the model stays in low precision.
            with torch.autocast("cpu", enabled=False):
                x = x._replace(data=x.data.float()) if isinstance(x, PackedSequence) else x.float()
                hx = None if hx is None else tuple(t.float() for t in hx)
                out, h_n = self.rnn(x, hx)
        elif hx is not None and type(self.rnn) in _CELLS.values() and not isinstance(x, PackedSequence):
            # A carried state and no padding (every generate() decode step): the op that nn.LSTM/GRU/RNN.forward
            # itself calls, without that method's per-call bookkeeping, a large share of a one-token step (issue 21,
            # point 4). Exact module types only: a quantized copy (quantize_dynamic) keeps its own forward.
            rnn = self.rnn
            weights = [w for layer in range(rnn.num_layers) for w in _layer_weights(rnn, layer)]
            flags = (rnn.bias, rnn.num_layers, float(rnn.dropout), rnn.training, rnn.bidirectional, rnn.batch_first)
            result = rnn_op(rnn.mode, x, hx, weights, *flags)
            return result[0], tuple(result[1:])
        else:
            out, h_n = self.rnn(x, hx)
        return out, (h_n if isinstance(h_n, tuple) else (h_n,))

    def forward(
        self,
        hidden: torch.Tensor,
        mask: torch.Tensor | None = None,
        state: tuple | None = None,
        tracing: bool | None = None,
    ):
        """hidden (B, T, C) at the caller's positions; mask (B, T) bool, None when nothing is padded; state: tensors
        of (D, B, H), the kernel's layout; tracing: `is_tracing(hidden)` when the caller already knows it. Returns
        outputs (B, T, D * H), zero at padding, and the final state."""
        if is_tracing(hidden) if tracing is None else tracing:
            return masked_rnn_layer(self.rnn, 0, hidden, mask, state)
        if mask is None:
            return self._run(hidden, state)
        # Keep padding out of the state: move each row's real tokens to the front (stable), pack, run, put back.
        # Working on the unpacked tensor keeps every layer's input on the autograd graph (hidden_states[i].grad).
        T = hidden.shape[1]
        order = torch.sort((~mask).to(torch.int8), dim=1, stable=True).indices  # (B, T): real positions first
        x = hidden.gather(1, order.unsqueeze(-1).expand_as(hidden))
        x = pack_padded_sequence(x, mask.sum(dim=1).cpu(), batch_first=True, enforce_sorted=False)
        out, state = self._run(x, state)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=T)  # (B, T, D * H), zeros after each length
        return torch.zeros_like(out).scatter(1, order.unsqueeze(-1).expand_as(out), out), state


class RecurrentPreTrainedModel(PreTrainedModel):
    config_class = RecurrentConfig
    base_model_prefix = "model"  # the heads' embedding accessors are transformers' defaults: the body's, `lm_head`
    main_input_name = "input_ids"
    # every layer is its own single-layer kernel, so checkpointing recomputes one layer at a time (issue 19)
    supports_gradient_checkpointing = True
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
        self.gradient_checkpointing = False
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
        validate_inputs: bool = True,
        **kwargs,
    ) -> RecurrentModelOutput | tuple:
        r"""
        validate_inputs (`bool`, defaults to `True`): run the eager value checks of `input_ids` and `attention_mask`
            (range, 0/1 values, rows without a token). `generate()` passes `False` for its one-token decode steps,
            whose token it picked from this model's own logits (issue 21, point 4); the prompt pass is checked.
        """
        check_unused_kwargs(kwargs, type(self).__name__)
        use_cache = use_cache if use_cache is not None else self.config.use_cache
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of `input_ids` or `inputs_embeds`.")
        if cache is not None and not isinstance(cache, RecurrentCache):
            raise TypeError(f"`cache` must be a RecurrentCache (from a previous call), got {type(cache).__name__}.")

        # 1. embed
        if inputs_embeds is None:
            if validate_inputs:
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
            if validate_inputs and not is_tracing(inputs_embeds) and not torch.isfinite(inputs_embeds).all():
                raise ValueError("`inputs_embeds` contains NaN or inf.")
        B, T, _ = inputs_embeds.shape
        past_len = cache.seen_tokens if cache is not None else 0
        if cache is not None and cache.states[0][0].shape[1] != B:
            raise ValueError(f"`cache` holds {cache.states[0][0].shape[1]} rows but the input has batch size {B}.")
        hidden = self.embedding_dropout(inputs_embeds)

        # 2. which positions are real; an all-real batch takes the unpacked fast path (eager only: data-dependent)
        mask = None
        if attention_mask is not None:
            if validate_inputs:
                mask = check_attention_mask(attention_mask, B, T, past_len)
            else:
                mask = attention_mask[:, -T:].bool()
            if not is_tracing(mask) and bool(mask.all()):
                mask = None
        if mask is not None:
            hidden = hidden.masked_fill(~mask.unsqueeze(-1), 0.0)  # (B, T, E), zeros at padding like every layer

        # 3. run the stack, one layer at a time; hidden_states[i] is the very tensor the next layer reads
        all_hidden = (hidden,) if output_hidden_states else None
        checkpointing = self.gradient_checkpointing and self.training and torch.is_grad_enabled()
        tracing = is_tracing(hidden)  # once per call, not once per layer
        new_states = []
        for i, layer in enumerate(self.layers):
            layer_input = self.hidden_dropout(hidden) if i > 0 else hidden
            layer_state = cache.states[i] if cache is not None else None
            if checkpointing:
                # recompute this layer in backward instead of keeping its activations (transformers' own idiom)
                hidden, state = self._gradient_checkpointing_func(
                    layer.__call__, layer_input, mask, layer_state, tracing
                )
            else:
                hidden, state = layer(layer_input, mask, layer_state, tracing)
            new_states.append(state)
            if output_hidden_states:
                all_hidden += (hidden,)
        last_hidden = self.output_dropout(hidden)

        # final state of the top layer, directions concatenated: (B, D * H)
        final_hidden = new_states[-1][0].transpose(0, 1).reshape(B, -1)
        new_cache = RecurrentCache(new_states, past_len + T) if use_cache else None
        output = RecurrentModelOutput(
            last_hidden_state=last_hidden,
            cache=new_cache,
            final_hidden_state=final_hidden,
            hidden_states=all_hidden,
        )
        return output if return_dict is not False else output.to_tuple()


def check_token_labels(labels: torch.Tensor, num_classes: int, name: str = "labels", scored=None) -> None:
    """Labels in [0, num_classes) or -100, and at least one label the loss scores (`scored`, default all of them)
    that is not -100: a mean over no token is NaN."""
    if is_tracing(labels):
        return
    scored = labels if scored is None else scored
    if not bool((scored != -100).any()):
        raise ValueError(
            f"`{name}` leave no token to score (every label the loss reads is -100); the loss would be NaN."
        )
    valid = labels[labels != -100]
    low, high = torch.aminmax(valid)
    if low < 0 or high >= num_classes:
        bad = int(low) if low < 0 else int(high)
        raise ValueError(f"label {bad} in `{name}` is outside [0, {num_classes}) (use -100 to ignore).")


# --- generate()'s decode steps read the vocabulary projection from an (in, out) copy on CPU (issue 21) ---------------
# Copied from hf_seq.models.transformer.modeling_transformer.lean_projection
def lean_projection(weight: torch.Tensor, bias: torch.Tensor | None):
    """(weight, bias, transposed) for `lean_matmul`. On CPU a one-row product with a wide (out > in) weight reads it
    about 1.6-3x faster from a (in, out) copy than through `F.linear`'s (out, in) layout (MKL's transposed GEMV:
    8000x256 1.09 ms vs 0.37 ms, 1024x256 198 vs 127 us with cold caches, issue 21), so such weights get a transposed
    copy (kept by `lean_weights` between generate() calls)."""
    if weight.device.type == "cpu" and weight.shape[0] > weight.shape[1]:
        return weight.t().contiguous(), bias, True
    return weight, bias, False


# Copied from hf_seq.models.transformer.modeling_transformer.lean_decoding_applies
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


# Copied from hf_seq.models.transformer.modeling_transformer.lean_sample
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


# Copied from hf_seq.models.transformer.modeling_transformer.lean_weights
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


# Copied from hf_seq.models.transformer.modeling_transformer.lean_plain
def lean_plain(modules) -> bool:
    """Whether the lean path may read these modules' weights itself: each exactly an `nn.Linear` or `nn.LayerNorm`
    without hooks. A PEFT (LoRA) wrapper, a quantized module or an accelerate offload hook keeps its own call."""
    return all(
        type(module) in (nn.Linear, nn.LayerNorm) and not module._forward_hooks and not module._forward_pre_hooks
        for module in modules
    )


# Copied from hf_seq.models.transformer.modeling_transformer.lean_matmul
def lean_matmul(x: torch.Tensor, projection) -> torch.Tensor:
    """x (B, in) times a `lean_projection`: (B, out)."""
    weight, bias, transposed = projection
    if not transposed:
        return F.linear(x, weight, bias)
    return torch.addmm(bias, x, weight) if bias is not None else torch.mm(x, weight)


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

    # generate() on CPU (issue 21): greedy and sampled decoding run `lean_sample` with `_lean_step`, and every decode
    # step (beam search's included) reads the vocabulary projection through `lean_matmul`; set it to False on a model
    # to run transformers' own loop with lm_head itself
    lean_decoding = True

    def train(self, mode: bool = True):
        self.__dict__.pop("_lean_weights_cache", None)  # `lean_weights`' copy
        return super().train(mode)

    def _lean_head(self):
        """The vocabulary projection as `lean_matmul` reads it (its transposed copy cached by `lean_weights`)."""
        weight, bias = self.lm_head.weight, self.lm_head.bias
        return lean_weights(self, [weight, bias], lambda: lean_projection(weight, bias))

    def _sample(
        self,
        input_ids,
        logits_processor,
        stopping_criteria,
        generation_config,
        synced_gpus=False,
        streamer=None,
        **model_kwargs,
    ):
        if not lean_decoding_applies(self, generation_config, synced_gpus, model_kwargs) or not lean_plain(
            [self.lm_head]
        ):
            return super()._sample(
                input_ids, logits_processor, stopping_criteria, generation_config, synced_gpus, streamer, **model_kwargs
            )
        outputs = self._prefill(input_ids, generation_config, model_kwargs)  # forward over the prompt, checked
        step = self._lean_step(outputs.cache)
        logits = outputs.logits[:, -1]
        del outputs
        return lean_sample(input_ids, logits, step, logits_processor, stopping_criteria, generation_config, streamer)

    def _lean_step(self, cache: RecurrentCache):
        """The one-token decode step of `lean_sample`: the recurrent layers from the state the prefill returned (no
        mask: the state already keeps a left-padded prompt's padding out, as in transformers' loop), without forward's
        checks and output objects, and the vocabulary projection through `lean_matmul`. Returns step(tokens (B, 1))
        -> logits (B, vocab)."""
        model, projection, head = self.model, self.projection, self._lean_head()
        state = [cache]

        def step(tokens: torch.Tensor) -> torch.Tensor:
            outputs = model(input_ids=tokens, cache=state[0], use_cache=True, return_dict=True, validate_inputs=False)
            state[0] = outputs.cache
            hidden = outputs.last_hidden_state[:, -1]
            return lean_matmul(projection(hidden) if projection is not None else hidden, head)

        return step

    def prepare_inputs_for_generation(
        self, input_ids, next_sequence_length=None, cache=None, attention_mask=None, is_first_iteration=False, **kwargs
    ):
        # generate() appends new tokens after the last column: with right padding the first new token would be
        # predicted from a pad position (transformers only logs a warning); refuse it (issue 20, point 6).
        if cache is None and attention_mask is not None and attention_mask.ndim == 2 and not is_tracing(attention_mask):
            if bool((attention_mask[:, -1] == 0).any()):
                raise ValueError(
                    "`attention_mask` is right-padded (a row ends with 0): a recurrent LM generates after the last "
                    "column, so pad on the left (tokenizer padding_side='left')."
                )
        if is_first_iteration or next_sequence_length != 1 or not isinstance(cache, RecurrentCache):
            # the prompt pass: transformers' general preparation, every input checked in forward
            return super().prepare_inputs_for_generation(
                input_ids,
                next_sequence_length=next_sequence_length,
                cache=cache,
                attention_mask=attention_mask,
                is_first_iteration=is_first_iteration,
                **kwargs,
            )
        # A one-token decode step (issue 21, point 4). The token was picked from this model's logits, so forward
        # skips its range check; the state already keeps the prompt's padding out and generate() marks every new
        # token real, so the step needs no mask (nor the per-step check of the whole growing one).
        inputs = {key: value for key, value in kwargs.items() if key not in ("labels", "inputs_embeds")}
        inputs.update(input_ids=input_ids[:, -1:].to(cache.states[0][0].device), cache=cache, validate_inputs=False)
        return inputs

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
        shift_labels: torch.LongTensor | None = None,
        num_items_in_batch: torch.Tensor | int | None = None,
        validate_inputs: bool = True,
        **kwargs,
    ) -> RecurrentCausalLMOutput | tuple:
        r"""
        labels (`torch.LongTensor` of shape `(batch, seq_len)`): the input ids themselves (shifted inside); -100 is
            ignored.
        shift_labels (`torch.LongTensor` of shape `(batch, seq_len)`): already shifted targets (position t predicts
            `shift_labels[:, t]`), as transformers' Trainer passes them under context parallelism; used instead of
            shifting `labels`.
        logits_to_keep (`int`): if > 0, compute logits for the last `logits_to_keep` positions only (generation).
        num_items_in_batch: Trainer's count of labelled tokens over gradient-accumulation steps (loss normaliser).
        validate_inputs (`bool`): see [`RecurrentModel.forward`]; `generate()` turns it off for its decode steps.
        """
        check_unused_kwargs(kwargs, type(self).__name__)
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        # 1. encode
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            cache=cache,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            output_hidden_states=output_hidden_states,
            return_dict=True,
            validate_inputs=validate_inputs,
        )
        hidden = outputs.last_hidden_state
        if logits_to_keep:
            hidden = hidden[:, -logits_to_keep:]
        # 2. project to the vocabulary
        if self.projection is not None:
            hidden = self.projection(hidden)
        lean = not validate_inputs and getattr(self, "lean_decoding", False) and not self.training
        if lean and hidden.device.type == "cpu" and not is_tracing(hidden) and lean_plain([self.lm_head]):
            # one of generate()'s decode steps
            logits = lean_matmul(hidden.flatten(0, -2), self._lean_head()).view(*hidden.shape[:-1], -1)
        else:
            logits = self.lm_head(hidden)  # (B, T, V)

        # 3. loss
        loss = None
        if labels is not None or shift_labels is not None:
            targets, name = (labels, "labels") if shift_labels is None else (shift_labels, "shift_labels")
            if targets.shape != logits.shape[:2]:
                raise ValueError(
                    f"`{name}` must have the shape of the inputs {tuple(logits.shape[:2])}, got {tuple(targets.shape)}."
                )
            # after the shift, position t predicts labels[:, t + 1]: the first column is never scored
            scored = targets[:, 1:] if shift_labels is None else targets
            check_token_labels(targets, self.config.vocab_size, name, scored=scored)
            loss = self.loss_function(
                logits=logits,
                labels=labels,
                vocab_size=self.config.vocab_size,
                num_items_in_batch=num_items_in_batch,
                shift_labels=shift_labels,
            )

        output = RecurrentCausalLMOutput(
            loss=loss, logits=logits, cache=outputs.cache, hidden_states=outputs.hidden_states
        )
        return output if return_dict is not False else output.to_tuple()


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
