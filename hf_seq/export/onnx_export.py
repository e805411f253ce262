"""Every generative hf-seq model → ONNX graphs with the generation state as explicit inputs and outputs.

The graphs are traced through small wrapper modules that call the models' own `forward` with their own cache objects
(`RecurrentCache`, `RNNSeq2SeqCache`, transformers' `EncoderDecoderCache`/`DynamicCache`) built from the graph's
inputs, so the exported computation is the model's. Tracing (torch's TorchScript-based exporter) records one branch of
every data-dependent Python `if` in the models; each wrapper therefore traces with inputs that take the general
branch (a padded attention mask, more than one target token), and the runners keep to the layouts traced:

| family | files | inputs → outputs |
| recurrent LM | `decoder_model.onnx` | input_ids (B, 1), attention_mask (B, 1), past_state.{i}.{h,c} → logits (B, V), present_state.{i}.{h,c} |
|              | `decoder_sequence_model.onnx` | input_ids (B, T) without padding, past_state.* → logits (B, V) of the last position, present_state.* (float32 exports) |
|              | `decoder_step_model.onnx` | input_ids (1, 1), past_state.* (batch 1) → logits (1, V), present_state.*: the batch-1 decode step (float32 exports) |
| RNN seq2seq | `encoder_model.onnx` | input_ids, attention_mask (B, max_source_length), right-padded → encoder_hidden_states, init_state.* |
|             | `decoder_model.onnx` | decoder_input_ids (B, 1), encoder_hidden_states, encoder_attention_mask, seen_tokens (B, 1) int64 (only with `position_encoding="sinusoidal"`), past_state.* → logits, present_state.* |
| Transformer seq2seq | `encoder_model.onnx` | input_ids, attention_mask → last_hidden_state |
|   | `decoder_model.onnx` | input_ids, position_ids, encoder_hidden_states, encoder_attention_mask → logits, present.{i}.{decoder,encoder}.{key,value} |
|   | `decoder_with_past_model.onnx` | input_ids (B, 1), position_ids, encoder_attention_mask, past_key_values.{i}.* → logits, present.{i}.decoder.* |
| Transformer LM | `decoder_model.onnx` / `decoder_with_past_model.onnx` | input_ids, attention_mask, position_ids[, past_key_values.{i}.decoder.*] → logits, present.{i}.decoder.* |

File and tensor names follow optimum's (`encoder_model.onnx`, `decoder_with_past_model.onnx`, `past_key_values.{i}.
decoder.key`, `present.{i}.encoder.value`); the recurrent state, which optimum has no name for, is `past_state.{layer}.
{h|c}` / `present_state...`. Logits are those of the last position only (what generation reads). After export every
`MatMul` by a weight becomes a `Gemm` (`onnx_graph.matmul_to_gemm`), except in the recurrent decode step graph, whose
products are laid out for one row (`RecurrentLMDecodeStep`).
"""

from __future__ import annotations

import os
import warnings

import torch
from torch import nn
from transformers.utils import logging

from ._common import finish_export, load_model_and_tokenizer, model_family, prepare_output_dir, require
from .onnx_graph import rewrite_file as matmul_to_gemm_file

logger = logging.get_logger(__name__)

OPSET = 17
ONNX_QUANTIZATIONS = (None, "int8")


def _last_logits(model, cache, **inputs):
    """The model's forward on `inputs` with `cache`, logits of the last position only: (logits (B, V), the cache)."""
    out = model(**inputs, cache=cache, use_cache=True, logits_to_keep=1)
    return out.logits[:, -1], out.cache


# --- recurrent language models ------------------------------------------------------------------------------------
def recurrent_state_layout(model) -> dict:
    """How the model's `RecurrentCache` looks: tensors per layer, their shapes and which dim is the batch.

    Read from two eager calls (batch 1 and 2) rather than from the model's internals, so the export follows the cache
    object whatever the layer modules look like."""
    ids = torch.full((2, 1), model.config.bos_token_id or 0, dtype=torch.long)
    with torch.no_grad():
        one = model(input_ids=ids[:1], use_cache=True).cache.states
        two = model(input_ids=ids, use_cache=True).cache.states
    per_layer = {len(layer) for layer in one}
    if len(per_layer) != 1:
        raise TypeError("every layer of the recurrent cache must hold the same number of tensors")
    batch_dims = set()
    shapes = []
    for layer_one, layer_two in zip(one, two):
        for a, b in zip(layer_one, layer_two):
            diff = [d for d in range(a.ndim) if a.shape[d] != b.shape[d]]
            if len(diff) != 1:
                raise TypeError(f"cannot find the batch dimension of a recurrent state of shape {tuple(a.shape)}")
            batch_dims.add(diff[0])
            shapes.append([-1 if d == diff[0] else s for d, s in enumerate(a.shape)])
    if len(batch_dims) != 1:
        raise TypeError("the recurrent state tensors do not share one batch dimension")
    names = ["h", "c"] if per_layer == {2} else ["h"]
    return {"num_layers": len(one), "per_layer": names, "batch_dim": batch_dims.pop(), "shapes": shapes}


def recurrent_state_names(layout: dict, prefix: str) -> list[str]:
    return [f"{prefix}.{i}.{n}" for i in range(layout["num_layers"]) for n in layout["per_layer"]]


class RecurrentLMStep(nn.Module):
    """One token: input_ids (B, 1), attention_mask (B, 1) + the state of every layer → logits (B, V) + the new state.

    A position whose mask is 0 leaves its row's state unchanged (left-padded prompts). Under tracing the recurrent
    layers run their masked, unrolled-in-time path (`masked_rnn_layer`), so the graph is a single step: the runner
    feeds a prompt through it token by token."""

    def __init__(self, model, layout: dict):
        super().__init__()
        self.model = model
        self.k = len(layout["per_layer"])

    def forward(self, input_ids, attention_mask, *state):
        from ..models.recurrent import RecurrentCache

        states = [tuple(state[i : i + self.k]) for i in range(0, len(state), self.k)]
        logits, cache = _last_logits(self.model, RecurrentCache(states, 0), input_ids=input_ids,
                                     attention_mask=attention_mask)  # fmt: skip
        return (logits, *[t for layer in cache.states for t in layer])


class RecurrentLMSequence(nn.Module):
    """input_ids (B, T), every position a real token, + the state of every layer → logits (B, V) of the last position
    + the new state.

    Each layer runs its own fused-kernel path (`RecurrentLayer.forward(..., tracing=False)`, what eager `generate()`
    runs), which the exporter writes as ONNX's LSTM/GRU/RNN operator with a dynamic number of steps: a whole prompt is
    one call, and a decode step is a graph of about a dozen nodes (embedding gather, one recurrent op per layer, the
    output Gemm) instead of the unrolled, masked step. Dropout is left out: the exported model is in eval mode."""

    def __init__(self, model, layout: dict):
        super().__init__()
        self.model = model
        self.k = len(layout["per_layer"])

    def forward(self, input_ids, *state):
        base = self.model.model
        hidden = base.embeddings(input_ids)
        new_state = []
        for i, layer in enumerate(base.layers):
            hidden, layer_state = layer(hidden, None, tuple(state[i * self.k : (i + 1) * self.k]), tracing=False)
            new_state += layer_state
        last = hidden[:, -1]  # (B, H)
        if self.model.projection is not None:
            last = self.model.projection(last)
        return (self.model.lm_head(last), *new_state)


class RecurrentLMDecodeStep(nn.Module):
    """One token of one row: input_ids (1, 1) + the state of every layer → logits (1, V) + the new state; the graph
    of every batch-1 decode step.

    A batch-1 step reads every weight once for one row: its speed is the speed of its matrix-vector products on a
    cold cache (issue 21). Measured with ONNX Runtime 1.32's CPU provider, one thread, 32 MB touched between calls:
    - one one-row product by a prepacked 2-D weight of (1300, 650) runs 1.2-1.6x faster than two of (650, 650), so
      an RNN or LSTM layer is one product of [x, h] by [W_ih; W_hh] (the GRU keeps two: its reset gate scales W_hn h);
    - the (650, 10000) output layer runs 15-25% faster in MLAS's one-row kernel, which reads an unpacked weight, than
      as a packed GEMM; ONNX Runtime prepacks only 2-D weights, so the output weight is stored (1, in, out). With 3-8
      rows the unpacked product costs 2.3-2.8x more, hence a batch-1 graph (batches take the sequence graph).
    The gate equations are `masked_rnn_layer`'s (PyTorch's nn.LSTM / GRU / RNN docs; the GRU's last line in the
    order of ATen's cell); `_check_sequence_wrapper` compares the result with the model's forward."""

    def __init__(self, model, layout: dict):
        super().__init__()
        if layout["batch_dim"] != 1 or any(shape[0] != 1 for shape in layout["shapes"]):
            raise TypeError(f"the decode step graph needs (1, B, H) recurrent states, got shapes {layout['shapes']}")
        self.model = model
        self.k = len(layout["per_layer"])

    @staticmethod
    def _gates(inputs, weights, biases):
        """sum_j inputs[j] @ weights[j].T + biases[j] (None: no bias) as one product of the concatenated inputs."""
        x = inputs[0] if len(inputs) == 1 else torch.cat(inputs, -1)
        out = x @ torch.cat(weights, 1).t()  # the exporter folds the weights into one (in, out) initializer
        biases = [b for b in biases if b is not None]
        return out + sum(biases) if biases else out

    def forward(self, input_ids, *state):
        from ..models.recurrent.modeling_recurrent import _layer_weights

        base = self.model.model
        x = base.embeddings(input_ids[:, 0])  # (B, E)
        new_state = []
        for i, layer in enumerate(base.layers):
            rnn = layer.rnn
            w_ih, w_hh, *biases = _layer_weights(rnn, 0)
            b_ih, b_hh = biases if biases else (None, None)
            h = state[i * self.k][0]  # (1, B, H) -> (B, H)
            if rnn.mode == "GRU":
                H = rnn.hidden_size
                gx, gh = self._gates([x], [w_ih], [b_ih]), self._gates([h], [w_hh], [b_hh])  # (B, 3H) each
                (x_rz, x_n), (h_rz, h_n) = gx.split([2 * H, H], dim=-1), gh.split([2 * H, H], dim=-1)
                r, z = torch.sigmoid(x_rz + h_rz).split(H, dim=-1)
                n = torch.tanh(x_n + r * h_n)
                x = n + z * (h - n)  # = (1 - z) n + z h, in the order of ATen's GRU cell (what eager runs)
                new_state.append(x.unsqueeze(0))
                continue
            gates = self._gates([x, h], [w_ih, w_hh], [b_ih, b_hh])  # (B, gates * H)
            if rnn.mode == "LSTM":
                i_, f, g, o = gates.split(rnn.hidden_size, dim=-1)
                c = torch.sigmoid(f) * state[i * self.k + 1][0] + torch.sigmoid(i_) * torch.tanh(g)
                x = torch.sigmoid(o) * torch.tanh(c)
                new_state += [x.unsqueeze(0), c.unsqueeze(0)]
            else:
                x = torch.tanh(gates) if rnn.mode == "RNN_TANH" else torch.relu(gates)
                new_state.append(x.unsqueeze(0))
        if self.model.projection is not None:
            x = self._gates([x], [self.model.projection.weight], [self.model.projection.bias])
        head = self.model.lm_head
        logits = (x @ head.weight.t().unsqueeze(0))[0]  # a (1, in, out) weight: see the docstring
        return (logits if head.bias is None else logits + head.bias, *new_state)


def _check_sequence_wrapper(model, wrapper, ids, state, k: int) -> None:
    """The sequence and step wrappers re-assemble the LM from its modules: refuse to export one if it no longer
    computes what the model's own forward does (a model change the wrapper does not know about)."""
    from ..models.recurrent import RecurrentCache

    cache = RecurrentCache([tuple(state[i : i + k]) for i in range(0, len(state), k)], 0)
    with torch.no_grad():
        logits, cache = _last_logits(model, cache, input_ids=ids)
        got = wrapper(ids, *state)
    expected = (logits, *[t for layer in cache.states for t in layer])
    if not all(torch.allclose(a, b, atol=1e-5, rtol=1e-4) for a, b in zip(got, expected)):
        raise TypeError(
            f"{type(model).__name__}: the ONNX graph wrapper {type(wrapper).__name__} no longer matches the model's "
            f"forward; update {type(wrapper).__name__} in hf_seq/export/onnx_export.py"
        )


# --- RNN encoder-decoder ------------------------------------------------------------------------------------------
SEQ2SEQ_STATE_FIELDS = ("hidden", "cell", "feed", "keys")  # RNNSeq2SeqCache's tensors, in its constructor's order


def seq2seq_state_fields(model) -> list[str]:
    """The RNNSeq2SeqCache fields this configuration uses (from one eager call)."""
    ids = torch.full((1, 2), model.config.bos_token_id or 0, dtype=torch.long)
    with torch.no_grad():
        enc = model.get_encoder()(input_ids=ids, return_dict=True)
        cache = model.get_decoder().initial_cache(enc)
    return [n for n in SEQ2SEQ_STATE_FIELDS if getattr(cache, n) is not None]


class Seq2SeqEncoderExport(nn.Module):
    """Source ids + mask → encoder outputs and the decoder's initial state (bridge, projected attention keys)."""

    def __init__(self, model, fields):
        super().__init__()
        self.model, self.fields = model, fields

    def forward(self, input_ids, attention_mask):
        enc = self.model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask, return_dict=True)
        cache = self.model.get_decoder().initial_cache(enc)
        return (enc.last_hidden_state, *[getattr(cache, n) for n in self.fields])


class Seq2SeqDecoderExport(nn.Module):
    """Target ids + encoder outputs + the target tokens seen so far + the decoder state → last-position logits + the
    new state (keys are constant).

    `seen_tokens` (B, 1) int64 becomes the cache's `seen_tokens`: with `position_encoding="sinusoidal"` the decoder
    adds the position table at `seen_tokens + t`, so a decode step needs its real position (a constant 0 would give
    every step position 0). A model without positions never reads it and the exporter drops the input."""

    def __init__(self, model, fields):
        super().__init__()
        self.model, self.fields = model, fields

    def forward(self, decoder_input_ids, encoder_hidden_states, encoder_attention_mask, seen_tokens, *state):
        from ..models.seq2seq.modeling_seq2seq import RNNSeq2SeqCache

        values = dict(zip(self.fields, state))
        cache = RNNSeq2SeqCache(*[values.get(n) for n in SEQ2SEQ_STATE_FIELDS], seen_tokens=seen_tokens)
        out = self.model(
            decoder_input_ids=decoder_input_ids,
            encoder_outputs={"last_hidden_state": encoder_hidden_states, "source_mask": encoder_attention_mask},
            cache=cache,
            use_cache=True,
        )
        return (out.logits[:, -1], *[getattr(out.cache, n) for n in self.fields if n != "keys"])


# --- Transformer --------------------------------------------------------------------------------------------------
def _flat_kv(caches, num_layers: int) -> list:
    """Keys and values layer by layer, each layer's in the order of `caches`: [k, v, k, v, ...]."""
    return [t for i in range(num_layers) for cache in caches for t in (cache.layers[i].keys, cache.layers[i].values)]


def _transformer_decode(model, input_ids, position_ids, memory, encoder_attention_mask, cache):
    """The encoder-decoder Transformer's decoder on its target ids: (last-position logits, the filled cache)."""
    return _last_logits(model, cache, decoder_input_ids=input_ids, decoder_position_ids=position_ids,
                        encoder_outputs=(memory,), attention_mask=encoder_attention_mask)  # fmt: skip


class TransformerEncoderExport(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return self.model.get_encoder()(input_ids, attention_mask).last_hidden_state


class TransformerSeq2SeqDecoderExport(nn.Module):
    """Without past: the whole target prefix; returns the self-attention and cross-attention keys/values."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, position_ids, encoder_hidden_states, encoder_attention_mask):
        from transformers.cache_utils import DynamicCache, EncoderDecoderCache

        cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
        logits, cache = _transformer_decode(self.model, input_ids, position_ids, encoder_hidden_states,
                                            encoder_attention_mask, cache)  # fmt: skip
        caches = [cache.self_attention_cache, cache.cross_attention_cache]
        return (logits, *_flat_kv(caches, self.model.config.decoder_layers))


class TransformerSeq2SeqDecoderWithPastExport(nn.Module):
    """One new token with the cached keys/values; returns the grown self-attention keys/values."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, position_ids, encoder_attention_mask, *past):
        from transformers.cache_utils import DynamicCache, EncoderDecoderCache

        self_kv = [(past[i], past[i + 1]) for i in range(0, len(past), 4)]
        cross_kv = [(past[i + 2], past[i + 3]) for i in range(0, len(past), 4)]
        cache = EncoderDecoderCache(DynamicCache(self_kv), DynamicCache(cross_kv))
        B, _, S, _ = past[2].shape
        # the decoder requires encoder states, but with a filled cross-attention cache it never reads them
        unused = past[2].new_zeros(B, S, self.model.config.hidden_size)
        logits, cache = _transformer_decode(self.model, input_ids, position_ids, unused, encoder_attention_mask, cache)
        return (logits, *_flat_kv([cache.self_attention_cache], self.model.config.decoder_layers))


class TransformerLMDecoderExport(nn.Module):
    """Decoder-only: input_ids, attention_mask (B, past + T), position_ids [, past keys/values] → logits, present."""

    def __init__(self, model, with_past: bool):
        super().__init__()
        self.model, self.with_past = model, with_past

    def forward(self, input_ids, attention_mask, position_ids, *past):
        from transformers.cache_utils import DynamicCache

        cache = DynamicCache([(past[i], past[i + 1]) for i in range(0, len(past), 2)]) if past else DynamicCache()
        logits, cache = _last_logits(self.model, cache, input_ids=input_ids, attention_mask=attention_mask,
                                     position_ids=position_ids)  # fmt: skip
        return (logits, *_flat_kv([cache], self.model.config.decoder_layers))


# --- export driver ------------------------------------------------------------------------------------------------
def _export(module, args, path, input_names, output_names, dynamic_axes):
    # the exporter restores the wrapper's train/eval mode afterwards, and with it the wrapped model's: a fresh wrapper
    # is in training mode, which would leave the user's model with dropout on
    module.eval()
    with warnings.catch_warnings():
        # tracer warnings name the Python-side input checks, which the traced inputs pass
        warnings.simplefilter("ignore")
        with torch.no_grad():
            torch.onnx.export(
                module,
                tuple(args),
                path,
                dynamo=False,
                opset_version=OPSET,
                input_names=input_names,
                output_names=output_names,
                dynamic_axes=dynamic_axes,
                do_constant_folding=True,
            )


def _kv_names(num_layers: int, prefix: str, parts=("decoder", "encoder")) -> list[str]:
    return [f"{prefix}.{i}.{p}.{kv}" for i in range(num_layers) for p in parts for kv in ("key", "value")]


def _export_recurrent(model, out: str, with_sequence: bool) -> dict:
    layout = recurrent_state_layout(model)
    B = 2
    ids = torch.randint(0, model.config.vocab_size, (B, 1))
    mask = torch.tensor([[1], [0]])
    state = [torch.randn([B if s == -1 else s for s in shape]) for shape in layout["shapes"]]
    past, present = recurrent_state_names(layout, "past_state"), recurrent_state_names(layout, "present_state")
    bd = layout["batch_dim"]
    axes = {"input_ids": {0: "batch"}, "attention_mask": {0: "batch"}, "logits": {0: "batch"}}
    axes.update({n: {bd: "batch"} for n in past + present})
    _export(RecurrentLMStep(model, layout), [ids, mask, *state], os.path.join(out, "decoder_model.onnx"),
            ["input_ids", "attention_mask", *past], ["logits", *present], axes)  # fmt: skip
    files = {"decoder": "decoder_model.onnx"}
    if with_sequence:
        wrapper = RecurrentLMSequence(model, layout)
        ids = torch.randint(0, model.config.vocab_size, (B, 3))
        _check_sequence_wrapper(model, wrapper, ids, state, len(layout["per_layer"]))
        axes = {"input_ids": {0: "batch", 1: "sequence"}, "logits": {0: "batch"},
                **{n: {bd: "batch"} for n in past + present}}  # fmt: skip
        _export(
            wrapper,
            [ids, *state],
            os.path.join(out, "decoder_sequence_model.onnx"),
            ["input_ids", *past],
            ["logits", *present],
            axes,
        )
        files["sequence"] = "decoder_sequence_model.onnx"
        step = RecurrentLMDecodeStep(model, layout)
        ids, one_row = ids[:1, :1], [t[:, :1] for t in state]  # batch 1, static shapes
        _check_sequence_wrapper(model, step, ids, one_row, len(layout["per_layer"]))
        _export(step, [ids, *one_row], os.path.join(out, "decoder_step_model.onnx"), ["input_ids", *past],
                ["logits", *present], {})  # fmt: skip
        files["step"] = "decoder_step_model.onnx"
    return {"files": files, "state": layout}


def _export_seq2seq(model, out: str, max_source_length: int) -> dict:
    fields = seq2seq_state_fields(model)
    cfg = model.config
    # Traced, the RNN layers run their masked loop unrolled over the source (`masked_rnn_layer`): the encoder graph
    # has a fixed source length, and the runner right-pads every batch to it (padding never enters the state).
    # One target token per decoder call: Bahdanau and input feeding step through time in Python anyway.
    B, S, T = 2, max_source_length, 1
    ids = torch.randint(4, cfg.vocab_size, (B, S))
    mask = torch.ones(B, S, dtype=torch.long)
    mask[1, -2:] = 0  # right padding: the traced encoder packs by length
    init_names = [f"init_state.{n}" for n in fields]
    _export(Seq2SeqEncoderExport(model, fields), [ids, mask], os.path.join(out, "encoder_model.onnx"),
            ["input_ids", "attention_mask"], ["encoder_hidden_states", *init_names],
            {"input_ids": {0: "batch", 1: "source"}, "attention_mask": {0: "batch", 1: "source"},
             "encoder_hidden_states": {0: "batch", 1: "source"},
             **{n: ({0: "batch", 1: "source"} if n.endswith("keys") else {0: "batch"}) for n in init_names}})  # fmt: skip
    with torch.no_grad():
        enc_out = Seq2SeqEncoderExport(model, fields)(ids, mask)
    memory, state = enc_out[0], list(enc_out[1:])
    dec_ids = torch.randint(4, cfg.decoder_vocab_size, (B, T))
    past = [f"past_state.{n}" for n in fields]
    present = [f"present_state.{n}" for n in fields if n != "keys"]
    seen = torch.tensor([[3], [5]])  # rows at different steps, so the graph keeps the per-row positions
    axes = {"decoder_input_ids": {0: "batch"}, "encoder_hidden_states": {0: "batch", 1: "source"},
            "encoder_attention_mask": {0: "batch", 1: "source"}, "seen_tokens": {0: "batch"}, "logits": {0: "batch"},
            **{n: ({0: "batch", 1: "source"} if n.endswith("keys") else {0: "batch"}) for n in past + present}}  # fmt: skip
    _export(Seq2SeqDecoderExport(model, fields), [dec_ids, memory, mask, seen, *state],
            os.path.join(out, "decoder_model.onnx"),
            ["decoder_input_ids", "encoder_hidden_states", "encoder_attention_mask", "seen_tokens", *past],
            ["logits", *present], axes)  # fmt: skip
    return {"files": {"encoder": "encoder_model.onnx", "decoder": "decoder_model.onnx"}, "state_fields": fields,
            "max_source_length": max_source_length}  # fmt: skip


def _export_transformer_seq2seq(model, out: str) -> dict:
    cfg = model.config
    L = cfg.decoder_layers
    B, S, T = 2, 5, 3
    ids = torch.randint(4, cfg.vocab_size, (B, S))
    mask = torch.ones(B, S, dtype=torch.long)
    mask[1, -2:] = 0  # a padded row, so the traced encoder keeps the padding bias
    _export(TransformerEncoderExport(model), [ids, mask], os.path.join(out, "encoder_model.onnx"),
            ["input_ids", "attention_mask"], ["last_hidden_state"],
            {"input_ids": {0: "batch", 1: "source"}, "attention_mask": {0: "batch", 1: "source"},
             "last_hidden_state": {0: "batch", 1: "source"}})  # fmt: skip
    with torch.no_grad():
        memory = TransformerEncoderExport(model)(ids, mask)
    dec_ids = torch.randint(4, cfg.vocab_size, (B, T))
    pos = torch.arange(T).expand(B, T)
    present_all = _kv_names(L, "present")
    kv_axes = {"decoder": {0: "batch", 2: "past_target"}, "encoder": {0: "batch", 2: "source"}}
    axes = {"input_ids": {0: "batch", 1: "target"}, "position_ids": {0: "batch", 1: "target"},
            "encoder_hidden_states": {0: "batch", 1: "source"}, "encoder_attention_mask": {0: "batch", 1: "source"},
            "logits": {0: "batch"}}  # fmt: skip
    axes.update({n: kv_axes[n.split(".")[2]] for n in present_all})
    axes_present = {
        n: ({0: "batch", 2: "target"} if ".decoder." in n else v) for n, v in axes.items() if n in present_all
    }
    axes.update(axes_present)
    _export(TransformerSeq2SeqDecoderExport(model), [dec_ids, pos, memory, mask], os.path.join(out, "decoder_model.onnx"),
            ["input_ids", "position_ids", "encoder_hidden_states", "encoder_attention_mask"], ["logits", *present_all],
            axes)  # fmt: skip
    with torch.no_grad():
        past = list(TransformerSeq2SeqDecoderExport(model)(dec_ids, pos, memory, mask)[1:])
    past_names = _kv_names(L, "past_key_values")
    present_self = _kv_names(L, "present", ("decoder",))
    axes = {"input_ids": {0: "batch"}, "position_ids": {0: "batch"}, "encoder_attention_mask": {0: "batch", 1: "source"},
            "logits": {0: "batch"}}  # fmt: skip
    axes.update({n: kv_axes[n.split(".")[2]] for n in past_names})
    axes.update({n: {0: "batch", 2: "target"} for n in present_self})
    new_ids, new_pos = torch.randint(4, cfg.vocab_size, (B, 1)), torch.full((B, 1), T)
    _export(TransformerSeq2SeqDecoderWithPastExport(model), [new_ids, new_pos, mask, *past],
            os.path.join(out, "decoder_with_past_model.onnx"),
            ["input_ids", "position_ids", "encoder_attention_mask", *past_names], ["logits", *present_self], axes)  # fmt: skip
    return {"files": {"encoder": "encoder_model.onnx", "decoder": "decoder_model.onnx",
                      "decoder_with_past": "decoder_with_past_model.onnx"}}  # fmt: skip


def _export_transformer_lm(model, out: str) -> dict:
    cfg = model.config
    L = cfg.decoder_layers
    B, T = 2, 4
    ids = torch.randint(4, cfg.vocab_size, (B, T))
    mask = torch.ones(B, T, dtype=torch.long)
    mask[1, :2] = 0  # a left-padded row, so the traced graph keeps the general (padding) mask
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    present = _kv_names(L, "present", ("decoder",))
    axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "total"},
            "position_ids": {0: "batch", 1: "sequence"}, "logits": {0: "batch"},
            **{n: {0: "batch", 2: "total"} for n in present}}  # fmt: skip
    _export(
        TransformerLMDecoderExport(model, False),
        [ids, mask, pos],
        os.path.join(out, "decoder_model.onnx"),
        ["input_ids", "attention_mask", "position_ids"],
        ["logits", *present],
        axes,
    )
    with torch.no_grad():
        past = list(TransformerLMDecoderExport(model, False)(ids, mask, pos)[1:])
    past_names = _kv_names(L, "past_key_values", ("decoder",))
    axes.update({n: {0: "batch", 2: "past"} for n in past_names})
    new_ids = torch.randint(4, cfg.vocab_size, (B, 1))
    new_mask = torch.cat([mask, torch.ones(B, 1, dtype=torch.long)], 1)
    _export(TransformerLMDecoderExport(model, True), [new_ids, new_mask, pos[:, -1:] + 1, *past],
            os.path.join(out, "decoder_with_past_model.onnx"),
            ["input_ids", "attention_mask", "position_ids", *past_names], ["logits", *present], axes)  # fmt: skip
    return {"files": {"decoder": "decoder_model.onnx", "decoder_with_past": "decoder_with_past_model.onnx"}}


def quantize_onnx_int8(path: str) -> None:
    """ONNX Runtime dynamic quantization (int8 weights, activations quantized on the fly), in place."""
    require("onnxruntime")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = path + ".int8.tmp"
    quantize_dynamic(path, tmp, weight_type=QuantType.QInt8)
    os.replace(tmp, path)


def to_onnx(
    folder_or_model, output_dir, quantize: str | None = None, tokenizer=None, max_source_length: int = 64
) -> str:
    """Export a generative hf-seq model to ONNX graphs with explicit state (see the module docstring).

    Args:
        folder_or_model: a saved model folder (its tokenizer is exported too) or a model object.
        output_dir: new (or empty, or earlier-exported) folder.
        quantize: None or "int8" (ONNX Runtime dynamic quantization of MatMul/Gemm/LSTM weights).
        tokenizer: the tokenizer, when `folder_or_model` is a model object.
        max_source_length: RNN seq2seq only: the source length its encoder graph is traced at (the runner pads
            shorter sources to it and refuses longer ones).

    Returns the output folder: the .onnx files, config.json, generation_config.json, the tokenizer and
    `hf_seq_export.json`; `load_runner(output_dir)` runs it with ONNX Runtime.
    """
    if quantize not in ONNX_QUANTIZATIONS:
        raise ValueError(f"quantize must be one of {ONNX_QUANTIZATIONS}, got {quantize!r}")
    if not isinstance(max_source_length, int) or max_source_length < 2:
        raise ValueError(f"max_source_length must be an integer >= 2, got {max_source_length!r}")
    require("onnx")
    was_training = getattr(folder_or_model, "training", False)
    model, tokenizer, source = load_model_and_tokenizer(folder_or_model, tokenizer)
    family = model_family(model)
    output_dir = prepare_output_dir(output_dir)
    try:
        if family == "recurrent":
            # int8: ONNX Runtime's dynamic quantization has no GRU/RNN operator and leaves Gemm in float, so the
            # sequence graph would stay mostly float32; the quantized single-step graph alone is kept
            info = _export_recurrent(model, output_dir, with_sequence=quantize is None)
        elif family == "seq2seq":
            info = _export_seq2seq(model, output_dir, max_source_length)
        elif model.config.is_encoder_decoder:
            info = _export_transformer_seq2seq(model, output_dir)
        else:
            info = _export_transformer_lm(model, output_dir)
    finally:
        model.train(was_training)
    for key, name in info["files"].items():
        if quantize == "int8":
            quantize_onnx_int8(os.path.join(output_dir, name))
        if key != "step":  # the recurrent decode step keeps its (in, out) MatMuls (RecurrentLMDecodeStep)
            matmul_to_gemm_file(os.path.join(output_dir, name))  # after quantizing: it leaves int8 products alone
    model.config.save_pretrained(output_dir)
    finish_export(output_dir, model, tokenizer, source, format="onnx", family=family, quantization=quantize,
                  opset=OPSET, **info)  # fmt: skip
    logger.info(f"ONNX model written to {output_dir} (quantize={quantize})")
    return output_dir


__all__ = ["to_onnx", "quantize_onnx_int8", "recurrent_state_layout", "seq2seq_state_fields", "ONNX_QUANTIZATIONS"]
