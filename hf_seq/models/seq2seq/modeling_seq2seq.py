"""RNN encoder-decoder (seq2seq) for translation, with or without attention.

Paper map:
- `attention="none"`: the decoder sees the source only through its initial state, built from the encoder's final
  state (Sutskever et al. 2014, "Sequence to Sequence Learning with Neural Networks"; Cho et al. 2014). This is the
  fixed-size bottleneck that attention removes.
- `attention="bahdanau"`: additive attention queried with the previous decoder state, the context is an input to the
  recurrent step (Bahdanau et al. 2015, "Neural Machine Translation by Jointly Learning to Align and Translate", §3.1).
- `attention="luong"`: global attention queried with the current decoder state, scores dot / general / concat, the
  attentional vector h~_t = tanh(W_c [c_t; h_t]) is projected to the vocabulary, optionally fed to the next step
  (input feeding) (Luong et al. 2015, "Effective Approaches to Attention-based Neural Machine Translation", §3).
  `attention_score="mlp"`, `bridge="concat"` and `position_encoding="sinusoidal"` are OpenNMT/eole's variants (its
  `mlp` global attention, `brnn` encoder and default positional encoding), so eole checkpoints convert exactly.

Layout: batch-first everywhere. The decoder state is the generation cache (`RNNSeq2SeqCache`), so each new token costs
O(1) in the target length.
"""

import contextlib
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence
from transformers import GenerationMixin, PreTrainedModel
from transformers.cache_utils import DynamicCache, EncoderDecoderCache
from transformers.generation.stopping_criteria import EosTokenCriteria, MaxLengthCriteria
from transformers.utils import ModelOutput, logging

from .configuration_seq2seq import RNNSeq2SeqConfig

logger = logging.get_logger(__name__)

_RNN_CLASSES = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


# Keyword arguments transformers' generate() may pass that this model has no use for; anything else unknown raises.
_IGNORED_KWARGS = frozenset({"position_ids", "decoder_position_ids", "cache_position", "num_items_in_batch"})
_RNN_OPS = {"LSTM": torch.lstm, "GRU": torch.gru, "RNN_TANH": torch.rnn_tanh, "RNN_RELU": torch.rnn_relu}


# Copied from hf_seq.models.recurrent.modeling_recurrent.is_tracing
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


def _check_token_ids(ids: torch.Tensor | None, vocab_size: int, name: str, ignore_index: int | None = None):
    """One min/max reduction; raises before an embedding lookup fails with an opaque index error."""
    if ids is None or ids.numel() == 0:
        return
    if ids.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8, torch.int8):
        raise TypeError(f"{name} must be an integer tensor of token ids, got dtype {ids.dtype}.")
    if is_tracing(ids):
        return
    checked = ids.masked_fill(ids == ignore_index, 0) if ignore_index is not None else ids
    low, high = torch.aminmax(checked)
    low, high = int(low), int(high)
    if low < 0 or high >= vocab_size:
        bad = low if low < 0 else high
        allowed = f"[0, {vocab_size})" + (f" or {ignore_index}" if ignore_index is not None else "")
        raise ValueError(f"{name} contains token id {bad}, outside the vocabulary range {allowed}.")


def _run_rnn(rnn: nn.RNNBase, x, state):
    """Call the fused kernel. torch's CPU (oneDNN) LSTM has no bf16/fp16 primitive on CPUs without native bf16, so
    under CPU autocast the LSTM recurrence runs in float32 (the rest of the model stays in low precision)."""
    if isinstance(rnn, nn.LSTM) and torch.is_autocast_enabled("cpu") and rnn.weight_hh_l0.device.type == "cpu":
        with torch.autocast("cpu", enabled=False):
            x = x._replace(data=x.data.float()) if isinstance(x, PackedSequence) else x.float()
            state = None if state is None else tuple(t.float() for t in state)
            return rnn(x, state)
    if state is None or isinstance(x, PackedSequence) or type(rnn) not in _RNN_CLASSES.values() or is_tracing(x):
        return rnn(x, state)
    # The decoder's case (a carried state, no packing; one token per generate() step): the op that
    # nn.LSTM/GRU/RNN.forward itself calls, without that method's per-call bookkeeping (issue 21, point 4). Exact
    # module types only (a quantized copy keeps its own forward); traced graphs keep the module call.
    weights = [w for layer in range(rnn.num_layers) for w in _layer_weights(rnn, layer)]
    flags = (rnn.bias, rnn.num_layers, float(rnn.dropout), rnn.training, rnn.bidirectional, rnn.batch_first)
    result = rnn_op(rnn.mode, x, state, weights, *flags)
    return result[0], (tuple(result[1:]) if rnn.mode == "LSTM" else result[1])


# Copied from hf_seq.models.recurrent.modeling_recurrent.rnn_op
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


# Copied from hf_seq.models.recurrent.modeling_recurrent._layer_weights
def _layer_weights(rnn: nn.RNNBase, layer: int) -> list[torch.Tensor]:
    """Weights of one layer of a fused nn.RNN/GRU/LSTM, both directions, in the order torch's RNN ops take them."""
    names = []
    for suffix in ("", "_reverse")[: 2 if rnn.bidirectional else 1]:
        names += [f"weight_ih_l{layer}{suffix}", f"weight_hh_l{layer}{suffix}"]
        if rnn.bias:
            names += [f"bias_ih_l{layer}{suffix}", f"bias_hh_l{layer}{suffix}"]
    return [getattr(rnn, name) for name in names]


def _run_rnn_layer(rnn: nn.RNNBase, layer: int, x, state):
    """Layer `layer` of the fused `rnn` alone, through the torch op nn.LSTM/GRU/RNN call themselves, so per-layer
    outputs (hidden states, per-layer checkpointing) need no second copy of the weights and keep the saved names.

    x: (B, T, C) or a PackedSequence; state: h (D, B, H) or (h, c), or None. Returns (output like x, state).
    """
    lstm, packed = rnn.mode == "LSTM", isinstance(x, PackedSequence)
    data = x.data if packed else x
    autocast_cpu = lstm and torch.is_autocast_enabled("cpu") and data.device.type == "cpu"
    if autocast_cpu:  # see _run_rnn: no low-precision oneDNN LSTM on every CPU
        data = data.float()
        state = None if state is None else tuple(t.float() for t in state)
    if state is None:
        zeros = data.new_zeros(2 if rnn.bidirectional else 1, int(x.batch_sizes[0]) if packed else x.shape[0], rnn.hidden_size)
        state = (zeros, zeros) if lstm else zeros
    elif packed and x.sorted_indices is not None:  # the packed kernel wants rows in length order
        state = tuple(t.index_select(1, x.sorted_indices) for t in state) if lstm else state.index_select(1, x.sorted_indices)
    weights = _layer_weights(rnn, layer)
    with torch.autocast("cpu", enabled=False) if autocast_cpu else contextlib.nullcontext():
        if packed:
            result = _RNN_OPS[rnn.mode](data, x.batch_sizes, state, weights, rnn.bias, 1, 0.0, rnn.training, rnn.bidirectional)
        else:
            result = rnn_op(rnn.mode, data, state, weights, rnn.bias, 1, 0.0, rnn.training, rnn.bidirectional, True)
    out, state = result[0], (tuple(result[1:3]) if lstm else result[1])
    if packed:
        if x.unsorted_indices is not None:
            state = tuple(t.index_select(1, x.unsorted_indices) for t in state) if lstm else state.index_select(1, x.unsorted_indices)
        out = PackedSequence(out, x.batch_sizes, x.sorted_indices, x.unsorted_indices)
    return out, state


# Copied from hf_seq.models.recurrent.modeling_recurrent.masked_rnn_layer
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


def sinusoidal_positions(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(pos / 10000^(2i/d)) (Vaswani et al. 2017 §3.5),
    pairs interleaved and computed with OpenNMT/eole's float32 formula (its table, row by row, without a length cap).

    positions: (B, T) or (1, T) integers. Returns (B, T, dim) float32.
    """
    div_term = torch.exp(
        torch.arange(0, dim, 2, dtype=torch.float32, device=positions.device) * -(math.log(10000.0) / dim)
    )
    angle = positions.float().unsqueeze(-1) * div_term  # (B, T, dim / 2)
    return torch.stack((torch.sin(angle), torch.cos(angle)), dim=-1).flatten(-2)  # even = sin, odd = cos


def add_positions(embeds: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """`position_encoding="sinusoidal"`: embeddings * sqrt(d) + PE (Vaswani et al. 2017 §3.4; eole's RNN inputs)."""
    dim = embeds.shape[-1]
    return embeds * math.sqrt(dim) + sinusoidal_positions(positions, dim).to(embeds.dtype)


def shift_tokens_right(labels: torch.Tensor, pad_token_id: int, decoder_start_token_id: int) -> torch.Tensor:
    """Teacher forcing inputs: `[start, y_1, ..., y_{T-1}]` from labels `[y_1, ..., y_T]` (-100 becomes pad)."""
    shifted = labels.new_empty(labels.shape)
    shifted[:, 1:] = labels[:, :-1]
    shifted[:, 0] = decoder_start_token_id
    return shifted.masked_fill(shifted == -100, pad_token_id)


@dataclass
class RNNSeq2SeqEncoderOutput(ModelOutput):
    """
    Everything the decoder needs is a top-level batch-first tensor, so `generate()` repeats it for beams.

    Args:
        last_hidden_state (`(batch, src_len, encoder_output_size)`): top-layer outputs, zero on padding.
        final_hidden_state (`(batch, encoder_layers * directions, hidden_size)`): final state per layer/direction.
        final_cell_state (`(batch, encoder_layers * directions, hidden_size)`): LSTM cell state (None otherwise).
        source_mask (`(batch, src_len)`): 1 on real source tokens, 0 on padding.
        hidden_states (`tuple`): the embeddings (after dropout, zero on padding) and each layer's outputs
            (`encoder_layers + 1` tensors), when `output_hidden_states=True`.
    """

    last_hidden_state: torch.FloatTensor | None = None
    final_hidden_state: torch.FloatTensor | None = None
    final_cell_state: torch.FloatTensor | None = None
    source_mask: torch.LongTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class RNNSeq2SeqModelOutput(ModelOutput):
    """
    Args:
        last_hidden_state (`(batch, tgt_len, hidden_size)`): decoder output vectors before the vocabulary projection.
        cache (`RNNSeq2SeqCache`): decoder state after the last input token.
        cross_attentions (`tuple` of one `(batch, tgt_len, src_len)` tensor): attention weights over the source.
        decoder_hidden_states (`tuple`): the target embeddings and each decoder layer's recurrent outputs
            (`decoder_layers + 1` tensors); the pre-output `last_hidden_state` is computed from the last one.
    """

    last_hidden_state: torch.FloatTensor | None = None
    cache: "RNNSeq2SeqCache | None" = None
    decoder_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    decoder_attentions: tuple[torch.FloatTensor, ...] | None = None
    cross_attentions: tuple[torch.FloatTensor, ...] | None = None
    encoder_last_hidden_state: torch.FloatTensor | None = None
    encoder_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    encoder_attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class RNNSeq2SeqLMOutput(ModelOutput):
    """
    Args:
        loss (`torch.FloatTensor`): token-mean cross-entropy over labels that are not -100.
        logits (`(batch, tgt_len, target_vocab_size)`).
        cache (`RNNSeq2SeqCache`): decoder state after the last input token.
        cross_attentions (`tuple` of one `(batch, tgt_len, src_len)` tensor): attention weights over the source.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    cache: "RNNSeq2SeqCache | None" = None
    decoder_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    decoder_attentions: tuple[torch.FloatTensor, ...] | None = None
    cross_attentions: tuple[torch.FloatTensor, ...] | None = None
    encoder_last_hidden_state: torch.FloatTensor | None = None
    encoder_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    encoder_attentions: tuple[torch.FloatTensor, ...] | None = None


class RNNSeq2SeqCache:
    """The decoder state carried between generation steps (batch-first so beam search can reorder it).

    Fields: `hidden` / `cell` `(batch, decoder_layers, hidden_size)`, `feed` `(batch, hidden_size)` (Luong input
    feeding: the previous attentional vector), `keys` `(batch, src_len, *)` (the projected encoder states, computed
    once per source), `seen_tokens` (target tokens consumed so far).
    """

    is_compileable = False
    is_croppable = False

    def __init__(self, hidden, cell=None, feed=None, keys=None, seen_tokens: int = 0):
        self.hidden = hidden
        self.cell = cell
        self.feed = feed
        self.keys = keys
        self.seen_tokens = seen_tokens

    @property
    def is_linear(self) -> list[bool]:
        # A recurrent state does not grow with the sequence (generate() reads this to skip attention-mask logic).
        return [True] * self.hidden.shape[1]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.seen_tokens

    def reorder_cache(self, beam_idx: torch.LongTensor):
        """In place, for beam search: row i becomes row beam_idx[i]."""
        for name in ("hidden", "cell", "feed", "keys"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value.index_select(0, beam_idx.to(value.device)))
        return self

    def __repr__(self):
        return f"RNNSeq2SeqCache(batch={self.hidden.shape[0]}, layers={self.hidden.shape[1]}, seen={self.seen_tokens})"


def _register_cache_pytree(cls) -> None:
    """Let torch.export / torch.compile return the cache: they only pass registered containers of tensors through.
    transformers registers its own caches with the same (private but stable) torch.utils._pytree call."""
    try:
        from torch.utils import _pytree
    except ImportError:  # pragma: no cover - a torch without pytrees cannot export anyway
        return
    flatten = lambda c: ([c.hidden, c.cell, c.feed, c.keys], c.seen_tokens)  # noqa: E731
    unflatten = lambda fields, seen: cls(*fields, seen)  # noqa: E731
    try:
        _pytree.register_pytree_node(cls, flatten, unflatten, serialized_type_name=f"{cls.__module__}.{cls.__name__}")
    except ValueError:  # already registered (module imported twice, e.g. as remote code)
        pass


_register_cache_pytree(RNNSeq2SeqCache)


class RNNSeq2SeqAttention(nn.Module):
    """Attention of one decoder query over the encoder states.

    additive (Bahdanau eq. 6 / Luong "concat"): score(q, h_j) = v^T tanh(W_q q + W_k h_j + b)
                                                (OpenNMT's "mlp": the same score, b on the query side)
    general (Luong):                            score(q, h_j) = q^T W_a h_j
    dot (Luong):                                score(q, h_j) = q^T h_j
    `project_keys` applies the source-side half once per sentence (W_k h_j or W_a h_j); it is cached while generating.
    """

    def __init__(self, config: RNNSeq2SeqConfig):
        super().__init__()
        self.score = "additive" if config.attention == "bahdanau" else config.attention_score
        mlp = self.score == "mlp"  # eole's parameter layout: bias in the query projection, none in the key one
        if self.score in ("concat", "mlp"):
            self.score = "additive"
        memory_size, query_size = config.encoder_output_size, config.hidden_size
        if self.score == "additive":
            self.query_proj = nn.Linear(query_size, config.attention_size, bias=mlp)
            self.key_proj = nn.Linear(memory_size, config.attention_size, bias=not mlp)
            self.energy = nn.Linear(config.attention_size, 1, bias=False)
        elif self.score == "general":
            self.key_proj = nn.Linear(memory_size, query_size, bias=False)

    def project_keys(self, memory: torch.Tensor) -> torch.Tensor | None:
        return None if self.score == "dot" else self.key_proj(memory)

    def forward(self, query, keys, memory, source_mask):
        """query `(B, T, Hq)`, keys `(B, S, *)`, memory `(B, S, Hm)`, source_mask `(B, S)` bool.

        Returns context `(B, T, Hm)` and weights `(B, T, S)` (exactly 0 on padding, rows sum to 1).
        """
        if self.score == "additive":
            # (B, T, 1, A) + (B, 1, S, A) -> (B, T, S)
            scores = self.energy(torch.tanh(self.query_proj(query).unsqueeze(2) + keys.unsqueeze(1))).squeeze(-1)
        else:
            scores = torch.bmm(query, (memory if keys is None else keys).transpose(1, 2))
        scores = scores.masked_fill(~source_mask.unsqueeze(1), float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        return torch.bmm(weights, memory), weights


class RNNSeq2SeqEncoder(nn.Module):
    """Embedding + (bi)directional multi-layer RNN over packed sequences, so padding never enters the state."""

    def __init__(self, config: RNNSeq2SeqConfig):
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.encoder_embedding_size, config.pad_token_id)
        self.dropout = nn.Dropout(config.dropout)
        self.rnn = _RNN_CLASSES[config.cell_type](
            config.encoder_embedding_size,
            config.encoder_hidden_size,
            num_layers=config.encoder_layers,
            dropout=config.dropout if config.encoder_layers > 1 else 0.0,
            bidirectional=config.bidirectional_encoder,
            batch_first=True,
        )
        self.gradient_checkpointing = False

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> RNNSeq2SeqEncoderOutput | tuple:
        check_unused_kwargs(kwargs, type(self).__name__)
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of input_ids or inputs_embeds to the encoder.")
        if input_ids is not None:
            if input_ids.ndim != 2 or input_ids.shape[0] == 0 or input_ids.shape[1] == 0:
                raise ValueError(f"input_ids must be a non-empty (batch, length) tensor, got shape {tuple(input_ids.shape)}.")
            _check_token_ids(input_ids, self.config.vocab_size, "input_ids")
            inputs_embeds = self.embed_tokens(input_ids)
        elif inputs_embeds.ndim != 3 or inputs_embeds.shape[0] == 0 or inputs_embeds.shape[1] == 0:
            raise ValueError(f"inputs_embeds must be a non-empty (batch, length, dim) tensor, got {tuple(inputs_embeds.shape)}.")
        elif not is_tracing(inputs_embeds) and not torch.isfinite(inputs_embeds).all():
            raise ValueError("inputs_embeds contains NaN or inf.")
        B, S = inputs_embeds.shape[:2]
        tracing = is_tracing(inputs_embeds, attention_mask)
        if attention_mask is None:
            attention_mask = torch.ones(B, S, dtype=torch.long, device=inputs_embeds.device)
        elif attention_mask.shape != (B, S):
            raise ValueError(
                f"attention_mask has shape {tuple(attention_mask.shape)} but the source is {(B, S)} (batch, length)."
            )
        elif not tracing and ((attention_mask != 0) & (attention_mask != 1)).any():  # NaN compares unequal to both
            bad = attention_mask[(attention_mask != 0) & (attention_mask != 1)][0].item()
            raise ValueError(f"attention_mask must hold only 0 (padding) and 1 (token); it holds {bad}.")
        mask = attention_mask.bool()
        lengths = mask.sum(dim=1)
        shortest = None if tracing else int(lengths.min())
        if shortest == 0:
            raise ValueError("Every source sequence needs at least one real token (attention_mask has an all-zero row).")

        if self.config.position_encoding == "sinusoidal":
            # each row's real tokens take positions 0, 1, ... wherever the padding is (batched == one by one)
            inputs_embeds = add_positions(inputs_embeds, (mask.long().cumsum(1) - 1).clamp(min=0))
        x = self.dropout(inputs_embeds)
        checkpointing = self.gradient_checkpointing and self.training and torch.is_grad_enabled()
        all_hidden = None
        if tracing or output_hidden_states or checkpointing:
            # layer by layer: one entry per layer in hidden_states, each the very tensor the next layer reads
            out, hidden, cell, all_hidden = self._encode_per_layer(x, mask, tracing, checkpointing)
        elif shortest == S:
            # no padding (a batch of one, or of equal lengths): the fused kernel on the plain tensor, nothing to pack
            out, state = _run_rnn(self.rnn, x, None)
            hidden, cell = state if isinstance(state, tuple) else (state, None)
        else:
            # 1. rows that are not right-padded (left padding, holes) get their real tokens moved to the front
            order = None
            if bool((mask[:, 1:] & ~mask[:, :-1]).any()):
                order = torch.sort((~mask).to(torch.int8), dim=1, stable=True).indices  # real tokens first, in order
                x = x.gather(1, order.unsqueeze(-1).expand_as(x))
            # 2. encode the packed batch (fused kernel; the state stops at each row's last real token)
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            packed_out, state = _run_rnn(self.rnn, packed, None)
            out, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=S)  # (B, S, dirs * H), 0 on pads
            if order is not None:  # back to the caller's positions
                out = torch.zeros_like(out).scatter(1, order.unsqueeze(-1).expand_as(out), out)
            hidden, cell = state if isinstance(state, tuple) else (state, None)

        result = RNNSeq2SeqEncoderOutput(
            last_hidden_state=out,
            final_hidden_state=hidden.transpose(0, 1),  # (B, layers * dirs, H)
            final_cell_state=None if cell is None else cell.transpose(0, 1),
            source_mask=attention_mask.long(),
            hidden_states=all_hidden if output_hidden_states else None,
        )
        return result if return_dict is not False else result.to_tuple()

    def _encode_layer(self, layer: int, x: torch.Tensor, mask: torch.Tensor, tracing: bool):
        """One layer over (B, S, C) at the caller's positions; padding stays out of the state. Returns the outputs
        (B, S, dirs * H), zero on padding, and the final state as a tuple of (dirs, B, H) tensors."""
        if tracing:  # compile / export: the masked loop (no packing, no nn.RNNBase call)
            return masked_rnn_layer(self.rnn, layer, x, mask, None)
        S = x.shape[1]
        order = torch.sort((~mask).to(torch.int8), dim=1, stable=True).indices  # (B, S): real tokens first
        packed = pack_padded_sequence(
            x.gather(1, order.unsqueeze(-1).expand_as(x)), mask.sum(1).cpu(), batch_first=True, enforce_sorted=False
        )
        out, state = _run_rnn_layer(self.rnn, layer, packed, None)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=S)
        out = torch.zeros_like(out).scatter(1, order.unsqueeze(-1).expand_as(out), out)
        return out, (state if isinstance(state, tuple) else (state,))

    def _encode_per_layer(self, x, mask, tracing: bool, checkpointing: bool):
        x = x.masked_fill(~mask.unsqueeze(-1), 0.0)  # (B, S, E), zeros on padding like every layer's output
        all_hidden, hiddens, cells = (x,), [], []
        for layer in range(self.config.encoder_layers):
            # the fused module's inter-layer dropout, applied here since each layer runs alone
            inp = F.dropout(x, self.rnn.dropout, self.training) if layer > 0 else x
            if checkpointing:
                x, state = self._gradient_checkpointing_func(self._encode_layer, layer, inp, mask, tracing)
            else:
                x, state = self._encode_layer(layer, inp, mask, tracing)
            all_hidden += (x,)
            hiddens.append(state[0])
            cells.append(state[1] if len(state) > 1 else None)
        # (layers * dirs, B, H): the fused module's layout, layer-major
        cell = torch.cat(cells) if cells[0] is not None else None
        return x, torch.cat(hiddens), cell, all_hidden


class RNNSeq2SeqDecoder(nn.Module):
    """Recurrent decoder: bridge from the encoder state, optional attention, and the pre-output vector.

    The embedding lives in the decoder unless `share_encoder_decoder_embeddings` (then the model passes embeddings in).
    """

    def __init__(self, config: RNNSeq2SeqConfig):
        super().__init__()
        self.config = config
        H, E = config.hidden_size, config.decoder_embedding_size
        self.embed_tokens = (
            None
            if config.share_encoder_decoder_embeddings
            else nn.Embedding(config.decoder_vocab_size, E, config.pad_token_id)
        )
        self.dropout = nn.Dropout(config.dropout)
        self.num_directions = 2 if config.bidirectional_encoder else 1
        # the architecture, read once: a config attribute costs microseconds, a decode step reads these every token
        self.attention_type, self.input_feeding = config.attention, config.input_feeding
        self.positions = config.position_encoding == "sinusoidal"
        # h_t depends on no attention output (no attention, or Luong without input feeding): each layer runs over the
        # whole target at once (fused kernel, per-layer checkpointing) and attention sits on top of the last layer
        self.layer_by_layer = config.attention in ("none", "luong") and not config.input_feeding
        # OpenNMT's mlp attention: the attentional vector is W_c [c_t; h_t] + b, without Luong's tanh
        self.mlp_output = config.attention == "luong" and config.attention_score == "mlp"
        if config.bridge == "linear":
            top = self.num_directions * config.encoder_hidden_size
            self.bridge_hidden = nn.Linear(top, config.decoder_layers * H)
            self.bridge_cell = nn.Linear(top, config.decoder_layers * H) if config.cell_type == "lstm" else None
        rnn_input = E
        if config.attention == "bahdanau":
            rnn_input += config.encoder_output_size  # context c_i is an input of the step (Bahdanau eq. 4)
        elif config.input_feeding:
            rnn_input += H  # previous attentional vector h~_{t-1} (Luong §3.3)
        self.rnn = _RNN_CLASSES[config.cell_type](
            rnn_input,
            H,
            num_layers=config.decoder_layers,
            dropout=config.dropout if config.decoder_layers > 1 else 0.0,
            batch_first=True,
        )
        if config.attention != "none":
            self.attention = RNNSeq2SeqAttention(config)
        if config.attention == "bahdanau":
            # deep output t_i = tanh(W_o [s_i; c_i; E y_{i-1}]) (Bahdanau §A.2.2, tanh instead of maxout)
            self.output_layer = nn.Linear(H + config.encoder_output_size + E, H)
        elif config.attention == "luong":
            self.output_layer = nn.Linear(config.encoder_output_size + H, H, bias=self.mlp_output)  # W_c (Luong eq. 5)
        self.gradient_checkpointing = False

    # -- state helpers ------------------------------------------------------------------------------------------
    def initial_cache(self, encoder_outputs: RNNSeq2SeqEncoderOutput) -> RNNSeq2SeqCache:
        cfg = self.config
        final_h = encoder_outputs.final_hidden_state  # (B, layers * dirs, H_enc)
        B, H, L = final_h.shape[0], cfg.hidden_size, cfg.decoder_layers

        def bridge(final, proj):
            if cfg.bridge == "zero":
                return final.new_zeros(B, L, H)
            if cfg.bridge == "copy":
                return final
            if cfg.bridge == "concat":  # layer l: [forward final; backward final], 2 * (H / 2) wide (OpenNMT brnn)
                return final.reshape(B, L, H)
            top = final[:, -self.num_directions :].flatten(1)  # top layer, both directions: (B, dirs * H_enc)
            return torch.tanh(proj(top)).view(B, L, H)

        hidden = bridge(final_h, getattr(self, "bridge_hidden", None))
        cell = None
        if cfg.cell_type == "lstm":
            cell = bridge(encoder_outputs.final_cell_state, getattr(self, "bridge_cell", None))
        feed = final_h.new_zeros(B, H) if cfg.input_feeding else None
        keys = None
        if cfg.attention != "none":
            keys = self.attention.project_keys(encoder_outputs.last_hidden_state)
        return RNNSeq2SeqCache(hidden, cell, feed, keys, 0)

    @staticmethod
    def _to_rnn_state(cache):
        h = cache.hidden.transpose(0, 1).contiguous()
        return (h, cache.cell.transpose(0, 1).contiguous()) if cache.cell is not None else h

    @staticmethod
    def _from_rnn_state(state):
        if isinstance(state, tuple):
            return state[0].transpose(0, 1), state[1].transpose(0, 1)
        return state.transpose(0, 1), None

    def _rnn(self, x, state, per_layer: bool, checkpoint_layers: bool = False):
        """The decoder stack on x (B, t, C) from `state` (the kernel's layout). With `per_layer`, the layers run one
        at a time and each layer's outputs (B, t, H) come back too (for `output_hidden_states`); with
        `checkpoint_layers` as well, each layer is one gradient-checkpointed block."""
        if not (per_layer or checkpoint_layers):
            out, state = _run_rnn(self.rnn, x, state)
            return out, state, None
        lstm = isinstance(state, tuple)
        outs, hiddens, cells = [], [], []
        for layer in range(self.rnn.num_layers):
            inp = F.dropout(x, self.rnn.dropout, self.training) if layer > 0 else x
            h = (state[0] if lstm else state)[layer : layer + 1]  # (1, B, H)
            c = state[1][layer : layer + 1] if lstm else None
            if checkpoint_layers:  # plain tensor arguments, so reentrant checkpointing also sees every input
                x, h, c = self._gradient_checkpointing_func(self._layer, layer, inp, h, c)
            else:
                x, h, c = self._layer(layer, inp, h, c)
            outs.append(x)
            hiddens.append(h)
            cells.append(c)
        state = (torch.cat(hiddens), torch.cat(cells)) if lstm else torch.cat(hiddens)
        return x, state, outs

    def _layer(self, layer: int, x, h, c):
        """One decoder layer over x (B, t, C) from h (and c for the LSTM), each (1, B, H): (outputs, h, c)."""
        x, state = _run_rnn_layer(self.rnn, layer, x, h if c is None else (h, c))
        return (x, *state) if c is not None else (x, state, None)

    # -- forward ------------------------------------------------------------------------------------------------
    def forward(self, inputs_embeds, memory, source_mask, cache: RNNSeq2SeqCache, output_hidden_states: bool = False):
        """inputs_embeds `(B, T, E)` (target tokens y_{<t}), memory `(B, S, He)`, source_mask `(B, S)` bool.

        Returns pre-output `(B, T, H)`, attention weights `(B, T, S)` or None, the updated cache (new object) and,
        with `output_hidden_states`, (embeddings, layer 1 outputs, ..., top layer outputs), each `(B, T, *)`.
        """
        checkpointing = self.gradient_checkpointing and self.training and torch.is_grad_enabled()
        if checkpointing and not self.layer_by_layer:
            # Bahdanau and input feeding: step t's input holds an attention output of step t-1, so each layer cannot
            # run over the whole target before the next one starts; the loop over time is checkpointed as one block
            # (recomputed in backward instead of keeping its per-step activations).
            return self._gradient_checkpointing_func(
                self._forward, inputs_embeds, memory, source_mask, cache, output_hidden_states
            )
        return self._forward(inputs_embeds, memory, source_mask, cache, output_hidden_states, checkpointing)

    def _attentional(self, context, out):
        """h~_t = tanh(W_c [c_t; h_t]) (Luong eq. 5); OpenNMT's mlp attention: W_c [c_t; h_t] + b, no tanh."""
        h = self.output_layer(torch.cat([context, out], dim=-1))
        return h if self.mlp_output else torch.tanh(h)

    def _forward(self, inputs_embeds, memory, source_mask, cache, output_hidden_states, checkpoint_layers=False):
        attention = self.attention_type
        T = inputs_embeds.shape[1]
        if self.positions:  # target positions go on from the tokens the cache has already seen
            # seen_tokens: an int, or an int64 (B, 1) tensor where an exported graph takes it as an input
            positions = torch.arange(T, device=inputs_embeds.device).unsqueeze(0) + cache.seen_tokens  # (1 or B, T)
            inputs_embeds = add_positions(inputs_embeds, positions)
        x = self.dropout(inputs_embeds)
        state = self._to_rnn_state(cache)
        weights = feed = None
        layer_outputs = None

        if self.layer_by_layer:
            # fused kernel over the whole target (h_t does not depend on any attention output)
            out, state, layer_outputs = self._rnn(x, state, output_hidden_states, checkpoint_layers)
            pre = out
            if attention == "luong":
                # every step attends in parallel, then the attentional vector h~_t
                context, weights = self.attention(out, cache.keys, memory, source_mask)
                pre = self._attentional(context, out)
        else:
            # Bahdanau (the query is s_{i-1} and c_i enters the step) and Luong input feeding (h~_{t-1} enters the
            # step) make step t depend on the attention output of step t-1: a loop over target time is inherent to
            # these models. Each step is still one fused multi-layer kernel call.
            outs, contexts, all_weights, step_layers = [], [], [], []
            feed = cache.feed
            for t in range(T):
                x_t = x[:, t : t + 1]  # (B, 1, E)
                if attention == "bahdanau":
                    query = (state[0] if isinstance(state, tuple) else state)[-1].unsqueeze(1)  # s_{i-1}, (B, 1, H)
                    context, w = self.attention(query, cache.keys, memory, source_mask)
                    out, state, per_layer = self._rnn(torch.cat([x_t, context], dim=-1), state, output_hidden_states)
                    contexts.append(context)
                else:
                    out, state, per_layer = self._rnn(torch.cat([x_t, feed.unsqueeze(1)], dim=-1), state, output_hidden_states)
                    context, w = self.attention(out, cache.keys, memory, source_mask)
                    out = self._attentional(context, out)  # h~_t
                    feed = out.squeeze(1)
                outs.append(out)
                all_weights.append(w)
                step_layers.append(per_layer)
            weights = torch.cat(all_weights, dim=1)
            if output_hidden_states:
                # per layer, the steps joined along time: (B, T, H). The steps themselves fed the next step, so these
                # joined copies are off the autograd graph, except the top layer of Bahdanau's, which the deep
                # output reads below.
                layer_outputs = [torch.cat(steps, dim=1) for steps in zip(*step_layers)]
            if attention == "bahdanau":
                top = layer_outputs[-1] if output_hidden_states else torch.cat(outs, 1)  # s_i for all i, (B, T, H)
                # the deep output does not feed back into the recurrence: one matmul over all steps after the loop
                pre = torch.tanh(self.output_layer(torch.cat([top, torch.cat(contexts, 1), x], dim=-1)))
            else:
                pre = torch.cat(outs, dim=1)

        hidden, cell = self._from_rnn_state(state)
        new_cache = RNNSeq2SeqCache(hidden, cell, feed, cache.keys, cache.seen_tokens + T)
        hidden_states = (x, *layer_outputs) if output_hidden_states else None
        return pre, weights, new_cache, hidden_states


# --- lean decoding (issue 21, point 4): generate()'s `_sample` loop with a direct decode step, as in the Transformer
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


# Copied from hf_seq.models.transformer.modeling_transformer.lean_projection
def lean_projection(weight: torch.Tensor, bias: torch.Tensor | None):
    """(weight, bias, transposed) for `lean_matmul`. On CPU a one-row product with a wide (out > in) weight reads it
    about 1.6-3x faster from a (in, out) copy than through `F.linear`'s (out, in) layout (MKL's transposed GEMV:
    8000x256 1.09 ms vs 0.37 ms, 1024x256 198 vs 127 us with cold caches, issue 21), so such weights get a transposed
    copy (kept by `lean_weights` between generate() calls)."""
    if weight.device.type == "cpu" and weight.shape[0] > weight.shape[1]:
        return weight.t().contiguous(), bias, True
    return weight, bias, False


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


class RNNSeq2SeqPreTrainedModel(PreTrainedModel):
    config_class = RNNSeq2SeqConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    # the encoder checkpoints layer by layer; the decoder too when its layers can run one at a time over the whole
    # target (no attention, Luong without input feeding), else its loop over time is one block (issue 19)
    supports_gradient_checkpointing = True
    _no_split_modules = ["RNNSeq2SeqEncoder", "RNNSeq2SeqDecoder"]
    _supports_sdpa = False
    _supports_flash_attn = False

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        # The decoder state is a custom cache object (HF-NOTES: DynamicCache crashes inside EncoderDecoderCache).
        return False

    def _call_flags(self, use_cache, output_attentions, output_hidden_states, return_dict) -> tuple:
        """(use_cache, output_attentions, output_hidden_states, return_dict): the config's value where a call gave
        None."""
        given = (use_cache, output_attentions, output_hidden_states, return_dict)
        names = ("use_cache", "output_attentions", "output_hidden_states", "return_dict")
        return tuple(getattr(self.config, name) if value is None else value for value, name in zip(given, names))

    def _resize_token_embeddings(self, new_num_tokens, pad_to_multiple_of=None, mean_resizing=True):
        # one shared vocabulary: source embedding, target embedding and output layer all change size together
        if self.config.target_vocab_size is not None:
            raise ValueError(
                f"resize_token_embeddings resizes a shared source/target vocabulary, but this model has separate ones "
                f"(vocab_size={self.config.vocab_size}, target_vocab_size={self.config.target_vocab_size})."
            )
        embeddings = super()._resize_token_embeddings(new_num_tokens, pad_to_multiple_of, mean_resizing)
        decoder = self.get_decoder()
        if decoder.embed_tokens is not None and decoder.embed_tokens.num_embeddings != embeddings.num_embeddings:
            decoder.embed_tokens = self._get_resized_embeddings(
                decoder.embed_tokens, embeddings.num_embeddings, mean_resizing=mean_resizing
            )
        return embeddings

    def _init_weights(self, module):
        """N(0, embedding_init_std^2) embeddings, Xavier input and projection weights, orthogonal recurrent weights,
        zero biases except the LSTM forget gate (1, Jozefowicz et al. 2015)."""
        if isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, 0.0, self.config.embedding_init_std)
            if module.padding_idx is not None and not getattr(module.weight, "_is_hf_initialized", False):
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.RNNBase):
            H = module.hidden_size
            for name, param in module.named_parameters():
                if name.startswith("weight_ih"):
                    nn.init.xavier_uniform_(param)
                elif name.startswith("weight_hh"):
                    nn.init.orthogonal_(param)
                elif name.startswith("bias"):
                    nn.init.zeros_(param)
                    if isinstance(module, nn.LSTM) and name.startswith("bias_ih"):
                        if not getattr(param, "_is_hf_initialized", False):
                            with torch.no_grad():
                                param[H : 2 * H].fill_(1.0)


class RNNSeq2SeqModel(RNNSeq2SeqPreTrainedModel):
    """Encoder + decoder without the vocabulary projection; returns decoder pre-output vectors."""

    def __init__(self, config: RNNSeq2SeqConfig):
        super().__init__(config)
        self.encoder = RNNSeq2SeqEncoder(config)
        self.decoder = RNNSeq2SeqDecoder(config)
        self.post_init()

    def get_input_embeddings(self):
        return self.encoder.embed_tokens

    def set_input_embeddings(self, value):
        self.encoder.embed_tokens = value

    def get_decoder_input_embeddings(self):
        return self.encoder.embed_tokens if self.decoder.embed_tokens is None else self.decoder.embed_tokens

    def get_encoder(self, modality=None):
        return self.encoder

    def get_decoder(self):
        return self.decoder

    def _as_encoder_output(self, encoder_outputs) -> RNNSeq2SeqEncoderOutput:
        if isinstance(encoder_outputs, RNNSeq2SeqEncoderOutput):
            return encoder_outputs
        if isinstance(encoder_outputs, dict):
            return RNNSeq2SeqEncoderOutput(**encoder_outputs)
        if isinstance(encoder_outputs, (tuple, list)):
            # the order of `RNNSeq2SeqEncoderOutput.to_tuple()` (None fields dropped)
            items = list(encoder_outputs)
            names = ["last_hidden_state", "final_hidden_state"]
            names += ["final_cell_state"] if self.config.cell_type == "lstm" else []
            names += ["source_mask"]
            if len(items) < len(names):
                raise ValueError(f"encoder_outputs tuple needs at least {names}, got {len(items)} items.")
            return RNNSeq2SeqEncoderOutput(**dict(zip(names, items)))
        raise TypeError(f"encoder_outputs must be an RNNSeq2SeqEncoderOutput, dict or tuple, got {type(encoder_outputs)}.")

    @staticmethod
    def _source_mask(encoder_outputs: RNNSeq2SeqEncoderOutput, attention_mask) -> torch.Tensor:
        """(B, S) bool: the encoder's own source mask, else `attention_mask`, else every position."""
        source_mask = encoder_outputs.source_mask
        if source_mask is None:
            memory = encoder_outputs.last_hidden_state
            source_mask = attention_mask if attention_mask is not None else memory.new_ones(memory.shape[:2])
        return source_mask.bool()

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        encoder_outputs=None,
        cache: RNNSeq2SeqCache | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        decoder_inputs_embeds: torch.FloatTensor | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        validate_inputs: bool = True,
        **kwargs,
    ) -> RNNSeq2SeqModelOutput:
        """decoder_attention_mask is accepted for API compatibility: the decoder is causal and padded target
        positions only follow real ones, so they never influence real positions (mask them out of the loss).

        validate_inputs (`bool`, defaults to `True`): run the eager range check of `decoder_input_ids`. `generate()`
        passes `False` for its one-token decode steps, whose token it picked from this model's own logits (issue 21,
        point 4); the prompt pass and the encoder's inputs are always checked."""
        check_unused_kwargs(kwargs, type(self).__name__)
        use_cache, output_attentions, output_hidden_states, return_dict = self._call_flags(
            use_cache, output_attentions, output_hidden_states, return_dict
        )

        # 1. encode (or reuse the given encoder outputs)
        if encoder_outputs is None:
            encoder_outputs = self.encoder(
                input_ids=input_ids,
                attention_mask=attention_mask,
                inputs_embeds=inputs_embeds,
                output_hidden_states=output_hidden_states,
                return_dict=True,
            )
        encoder_outputs = self._as_encoder_output(encoder_outputs)
        memory = encoder_outputs.last_hidden_state
        source_mask = self._source_mask(encoder_outputs, attention_mask)

        # 2. embed the target prefix
        if (decoder_input_ids is None) == (decoder_inputs_embeds is None):
            raise ValueError("Pass exactly one of decoder_input_ids (or labels) and decoder_inputs_embeds.")
        if decoder_input_ids is not None:
            if validate_inputs:
                _check_token_ids(decoder_input_ids, self.config.decoder_vocab_size, "decoder_input_ids")
            decoder_inputs_embeds = self.get_decoder_input_embeddings()(decoder_input_ids)
        elif not is_tracing(decoder_inputs_embeds) and not torch.isfinite(decoder_inputs_embeds).all():
            raise ValueError("decoder_inputs_embeds contains NaN or inf.")
        if decoder_inputs_embeds.shape[0] != memory.shape[0]:
            raise ValueError(
                f"decoder inputs have batch size {decoder_inputs_embeds.shape[0]} but the encoder outputs have "
                f"{memory.shape[0]}."
            )

        # 3. decode from the cached state, or from the bridge of the encoder's final state
        if cache is None:
            cache = self.decoder.initial_cache(encoder_outputs)
        elif not isinstance(cache, RNNSeq2SeqCache):
            raise TypeError(f"cache must be an RNNSeq2SeqCache returned by this model, got {type(cache)}.")
        pre, weights, new_cache, decoder_hidden_states = self.decoder(
            decoder_inputs_embeds, memory, source_mask, cache, output_hidden_states=bool(output_hidden_states)
        )

        result = RNNSeq2SeqModelOutput(
            last_hidden_state=pre,
            cache=new_cache if use_cache else None,
            decoder_hidden_states=decoder_hidden_states,
            cross_attentions=(weights,) if output_attentions and weights is not None else None,
            encoder_last_hidden_state=memory,
            encoder_hidden_states=encoder_outputs.hidden_states,
        )
        return result if return_dict is not False else result.to_tuple()


class RNNSeq2SeqForConditionalGeneration(RNNSeq2SeqPreTrainedModel, GenerationMixin):
    """RNN encoder-decoder with a vocabulary projection; `labels` give the token-mean cross-entropy."""

    accepts_loss_kwargs = False
    _keys_to_ignore_on_load_unexpected = []

    def __init__(self, config: RNNSeq2SeqConfig):
        super().__init__(config)
        self.model = RNNSeq2SeqModel(config)
        H, E = config.hidden_size, config.decoder_embedding_size
        head_input = E if config.tie_word_embeddings else H
        # tying needs the pre-output in embedding space (Press & Wolf 2017)
        self.output_projection = nn.Linear(H, E, bias=False) if config.tie_word_embeddings and H != E else None
        self.lm_head = nn.Linear(head_input, config.decoder_vocab_size)
        embed_name = "encoder" if config.share_encoder_decoder_embeddings else "decoder"
        self._tied_weights_keys = {"lm_head.weight": f"model.{embed_name}.embed_tokens.weight"}
        self.post_init()

    def get_encoder(self, modality=None):
        return self.model.encoder

    def get_decoder(self):
        return self.model.decoder

    def get_input_embeddings(self):
        return self.model.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.model.set_input_embeddings(value)

    def get_output_embeddings(self):
        return self.lm_head

    def set_output_embeddings(self, value):
        self.lm_head = value

    def prepare_decoder_input_ids_from_labels(self, labels: torch.Tensor) -> torch.Tensor:
        return shift_tokens_right(labels, self.config.pad_token_id, self.config.decoder_start_token_id)

    def _reorder_cache(self, cache: RNNSeq2SeqCache, beam_idx: torch.LongTensor) -> RNNSeq2SeqCache:
        return cache.reorder_cache(beam_idx)

    # generate() on CPU: greedy and sampled decoding run `lean_sample` with `_lean_step` (issue 21, point 4); set it to
    # False on a model to run transformers' own loop
    lean_decoding = True

    def train(self, mode: bool = True):
        self.__dict__.pop("_lean_weights_cache", None)  # `lean_weights`' copies
        return super().train(mode)

    def _sample(
        self, input_ids, logits_processor, stopping_criteria, generation_config, synced_gpus=False, streamer=None,
        **model_kwargs,
    ):
        if not lean_decoding_applies(self, generation_config, synced_gpus, model_kwargs) or not lean_plain([self.lm_head]):
            return super()._sample(
                input_ids, logits_processor, stopping_criteria, generation_config, synced_gpus, streamer, **model_kwargs
            )
        outputs = self._prefill(input_ids, generation_config, model_kwargs)  # forward over the decoder prompt
        step = self._lean_step(outputs.cache, model_kwargs["encoder_outputs"], model_kwargs.get("attention_mask"))
        logits = outputs.logits[:, -1]
        del outputs
        return lean_sample(input_ids, logits, step, logits_processor, stopping_criteria, generation_config, streamer)

    def _lean_head(self):
        """The vocabulary projection as `lean_matmul` reads it (its transposed copy cached by `lean_weights`)."""
        weight, bias = self.lm_head.weight, self.lm_head.bias
        return lean_weights(self, [weight, bias], lambda: lean_projection(weight, bias))

    def _lean_step(self, cache: RNNSeq2SeqCache, encoder_outputs, attention_mask):
        """The one-token decode step of `lean_sample`: the decoder's `_forward` from the cache the prefill returned,
        without forward's checks and output objects, and the vocabulary projection through `lean_projection`.
        Returns step(tokens (B, 1)) -> logits (B, vocab)."""
        model = self.model
        encoder_outputs = model._as_encoder_output(encoder_outputs)
        memory = encoder_outputs.last_hidden_state
        source_mask = model._source_mask(encoder_outputs, attention_mask)
        decoder, embed, projection = model.decoder, model.get_decoder_input_embeddings(), self.output_projection
        head = self._lean_head()
        state = [cache]

        def step(tokens: torch.Tensor) -> torch.Tensor:
            pre, _, state[0], _ = decoder._forward(embed(tokens), memory, source_mask, state[0], False)
            pre = pre[:, -1]
            return lean_matmul(projection(pre) if projection is not None else pre, head)

        return step

    def prepare_inputs_for_generation(
        self,
        input_ids,
        next_sequence_length=None,
        cache=None,
        attention_mask=None,
        inputs_embeds=None,
        is_first_iteration=False,
        **kwargs,
    ):
        if is_first_iteration or next_sequence_length != 1 or not isinstance(cache, RNNSeq2SeqCache):
            # the prompt pass: transformers' general preparation, every input checked in forward
            return super().prepare_inputs_for_generation(
                input_ids,
                next_sequence_length=next_sequence_length,
                cache=cache,
                attention_mask=attention_mask,
                inputs_embeds=inputs_embeds,
                is_first_iteration=is_first_iteration,
                **kwargs,
            )
        # A one-token decode step (issue 21, point 4): the last token, the state, and the inputs that stay the same
        # every step (encoder outputs, source mask). The token was picked from this model's logits, so forward skips
        # its range check.
        inputs = {key: value for key, value in kwargs.items() if key != "labels"}
        inputs.update(decoder_input_ids=input_ids[:, -1:].to(cache.hidden.device), cache=cache, validate_inputs=False)
        if attention_mask is not None:
            inputs["attention_mask"] = attention_mask
        return inputs

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        encoder_outputs=None,
        cache: RNNSeq2SeqCache | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        decoder_inputs_embeds: torch.FloatTensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        validate_inputs: bool = True,
        **kwargs,
    ) -> RNNSeq2SeqLMOutput:
        """
        input_ids `(B, S)` source ids; attention_mask `(B, S)`; decoder_input_ids `(B, T)` target prefix (built from
        `labels` by shifting right when absent); labels `(B, T)` target ids with -100 to ignore; validate_inputs: see
        [`RNNSeq2SeqModel.forward`] (`generate()` turns it off for its decode steps).
        """
        check_unused_kwargs(kwargs, type(self).__name__)
        use_cache, output_attentions, output_hidden_states, return_dict = self._call_flags(
            use_cache, output_attentions, output_hidden_states, return_dict
        )
        if labels is not None:
            _check_token_ids(labels, self.config.decoder_vocab_size, "labels", ignore_index=-100)
            if not is_tracing(labels) and labels.numel() and not bool((labels != -100).any()):
                # a mean over no target token is NaN (issue 20, point 6)
                raise ValueError("every entry of `labels` is -100 (ignored): there is no target token to score.")
            if decoder_input_ids is None and decoder_inputs_embeds is None:
                decoder_input_ids = self.prepare_decoder_input_ids_from_labels(labels)
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            decoder_input_ids=decoder_input_ids,
            encoder_outputs=encoder_outputs,
            cache=cache,
            inputs_embeds=inputs_embeds,
            decoder_inputs_embeds=decoder_inputs_embeds,
            use_cache=use_cache,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
            validate_inputs=validate_inputs,
        )
        pre = self.model.decoder.dropout(outputs.last_hidden_state)
        if self.output_projection is not None:
            pre = self.output_projection(pre)
        lean = not validate_inputs and getattr(self, "lean_decoding", False) and not self.training
        if lean and pre.device.type == "cpu" and not is_tracing(pre) and lean_plain([self.lm_head]):
            # one of generate()'s decode steps (beam search included): the projection `lean_sample` reads
            logits = lean_matmul(pre.flatten(0, -2), self._lean_head()).view(*pre.shape[:-1], -1)
        else:
            logits = self.lm_head(pre)  # (B, T, V_tgt)

        loss = None
        if labels is not None:
            if labels.shape != logits.shape[:2]:
                raise ValueError(f"labels shape {tuple(labels.shape)} does not match the decoder inputs {tuple(logits.shape[:2])}.")
            loss = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten().to(logits.device), ignore_index=-100)

        # everything but the pre-output vectors passes through from the base model's output
        passed = {name: value for name, value in outputs.items() if name != "last_hidden_state"}
        result = RNNSeq2SeqLMOutput(loss=loss, logits=logits, **passed)
        return result if return_dict is not False else result.to_tuple()


__all__ = [
    "RNNSeq2SeqCache",
    "RNNSeq2SeqEncoderOutput",
    "RNNSeq2SeqPreTrainedModel",
    "RNNSeq2SeqModel",
    "RNNSeq2SeqForConditionalGeneration",
]
