"""ONNX Runtime runners for the graphs of `to_onnx`, with transformers' own `generate()`.

optimum's `ORTModelFor…` classes have no notion of a recurrent state, so hf-seq ships its own: each runner is a
`PreTrainedModel` + `GenerationMixin` without parameters whose `forward` calls ONNX Runtime sessions and whose
generation state is an `ORTStateCache` (numpy arrays, reordered by beam search through `_reorder_cache`, the custom
cache route of HF-NOTES). `generate()`, its logits processors, stopping criteria and beam search are transformers'.
`runner.translate([...])` / `runner.generate_text(prompt)` are the text-level shortcuts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from transformers import AutoConfig, AutoTokenizer, GenerationConfig, GenerationMixin, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput, Seq2SeqLMOutput
from transformers.utils import ModelOutput, logging

from ..models.transformer.modeling_transformer import lean_decoding_applies, lean_sample
from ._common import default_max_new_tokens, read_marker, require

logger = logging.get_logger(__name__)


class ORTStateCache:
    """Generation state held as numpy arrays for ONNX Runtime: `arrays[name]` (an array, or a list of arrays that
    share a layout) with its batch dimension in `batch_dims[name]`; `seen_tokens` target tokens consumed so far."""

    is_compileable = False
    is_croppable = False

    def __init__(self, arrays: dict[str, np.ndarray], batch_dims: dict[str, int], num_layers: int, seen_tokens: int):
        self.arrays, self.batch_dims, self.num_layers, self.seen_tokens = arrays, batch_dims, num_layers, seen_tokens

    @property
    def is_linear(self) -> list[bool]:
        # like hf-seq's own caches: no compileable key/value layout for generate() to build 4-D masks for
        return [True] * self.num_layers

    def __len__(self) -> int:
        return self.num_layers

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.seen_tokens

    def _apply(self, fn) -> None:
        def one(a, d):
            return (
                [np.ascontiguousarray(fn(x, d)) for x in a] if isinstance(a, list) else np.ascontiguousarray(fn(a, d))
            )

        self.arrays = {n: one(a, self.batch_dims[n]) for n, a in self.arrays.items()}

    def reorder_cache(self, beam_idx: torch.LongTensor) -> "ORTStateCache":
        idx = beam_idx.cpu().numpy()
        self._apply(lambda a, d: np.take(a, idx, axis=d))
        return self

    def batch_repeat_interleave(self, repeats: int) -> None:
        self._apply(lambda a, d: np.repeat(a, repeats, axis=d))

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        idx = indices.cpu().numpy()
        self._apply(lambda a, d: np.take(a, idx, axis=d))


def _session(path: str, num_threads: int | None):
    ort = require("onnxruntime")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL  # one chain of small ops per step: nothing to overlap
    if num_threads:
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def _np(t) -> np.ndarray:
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


@dataclass
class RunnerCausalLMOutput(ModelOutput):
    """logits (B, 1, V): the last position only; cache: the state after the input."""

    logits: torch.FloatTensor | None = None
    cache: ORTStateCache | None = None


class _ORTRunner(PreTrainedModel, GenerationMixin):
    """Shared plumbing: config, generation config, tokenizer and sessions of an exported folder."""

    main_input_name = "input_ids"
    _files: tuple[str, ...] = ()
    accepts_loss_kwargs = False

    def __init__(self, folder, num_threads: int | None = None):
        folder = os.fspath(folder)
        marker = read_marker(folder)
        if marker is None or marker["format"] != "onnx":
            raise ValueError(f"{folder} is not an ONNX export of hf-seq (no hf_seq_export.json with format 'onnx')")
        from .. import register_auto_classes

        register_auto_classes()
        config = AutoConfig.from_pretrained(folder)
        super().__init__(config)
        self.folder, self.marker = folder, marker
        if os.path.isfile(os.path.join(folder, "generation_config.json")):
            self.generation_config = GenerationConfig.from_pretrained(folder)
        self.num_threads = num_threads
        self.sessions = {}
        for key in self._files:
            self._open_session(key)
        self._input_names: dict[str, set[str]] = {}
        self.tokenizer = self.target_tokenizer = None
        if marker.get("has_tokenizer"):
            self.tokenizer = AutoTokenizer.from_pretrained(folder)
            target = os.path.join(folder, "target_tokenizer")
            self.target_tokenizer = AutoTokenizer.from_pretrained(target) if os.path.isdir(target) else self.tokenizer
        self.post_init()
        self.eval()  # an inference runner (from_pretrained's models are in eval mode too)

    @classmethod
    def from_folder(cls, folder, **kwargs):
        return cls(folder, **kwargs)

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        return False  # the state is an ORTStateCache (HF-NOTES, route 2)

    def _reorder_cache(self, cache: ORTStateCache, beam_idx: torch.LongTensor) -> ORTStateCache:
        return cache.reorder_cache(beam_idx)

    def _init_weights(self, module):
        pass

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")  # ONNX Runtime's CPU provider; tensors cross as numpy arrays

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    def _open_session(self, key: str):
        """The session of graph `key`, opened on first use (a graph a generation never needs costs no memory)."""
        session = self.sessions.get(key)
        if session is None:
            path = os.path.join(self.folder, self.marker["files"][key])
            session = self.sessions[key] = _session(path, self.num_threads)
        return session

    def _run(self, key: str, feeds: dict) -> list[np.ndarray]:
        session = self._open_session(key)
        names = self._input_names.get(key)
        if names is None:
            names = self._input_names[key] = {i.name for i in session.get_inputs()}
        if len(names) != len(feeds):
            # the exporter drops inputs a graph does not read (the source, for an RNN seq2seq without attention)
            feeds = {k: v for k, v in feeds.items() if k in names}
        return session.run(None, feeds)

    def _need_tokenizer(self):
        if self.tokenizer is None:
            raise ValueError(f"{self.folder} was exported without a tokenizer: call generate() with token ids")


# --- recurrent language models ------------------------------------------------------------------------------------
class ORTRecurrentForCausalLM(_ORTRunner):
    """RNN/GRU/LSTM language model on ONNX Runtime.

    Tokens without padding go through the sequence graph, all T of them in one call (ONNX's own recurrent
    operators), except a batch-1 decode step, which has a graph of its own (matrix-vector products laid out for
    one row, `onnx_export.RecurrentLMDecodeStep`); a left-padded prompt goes through the masked single-step graph,
    token by token, so that padding never enters a row's state. Older exports without the step graph decode through
    the sequence graph; int8 exports, which have neither, use the single-step graph throughout."""

    _files = ()  # sessions open on first use: most generations never need the masked step graph

    def __init__(self, folder, num_threads: int | None = None):
        super().__init__(folder, num_threads)
        layout = self.marker["state"]
        self.layout = layout
        self.state_names = [f"{i}.{n}" for i in range(layout["num_layers"]) for n in layout["per_layer"]]
        self._past_names = [f"past_state.{n}" for n in self.state_names]
        self._has_sequence = "sequence" in self.marker["files"]
        self._has_step = "step" in self.marker["files"]

    # generate(): greedy and sampled decoding run hf-seq's lean loop around the ONNX Runtime step (`lean_sample`,
    # transformers' token choice, processors, stopping criteria and streamer without `_sample`'s per-step plumbing:
    # about 0.4 ms a token, issue 21); False runs transformers' own `_sample`. Beam search is transformers' always.
    lean_decoding = True

    def _sample(self, input_ids, logits_processor, stopping_criteria, generation_config, synced_gpus=False,
                streamer=None, **model_kwargs):  # fmt: skip
        if not lean_decoding_applies(self, generation_config, synced_gpus, model_kwargs):
            return super()._sample(
                input_ids, logits_processor, stopping_criteria, generation_config, synced_gpus, streamer, **model_kwargs
            )
        outputs = self._prefill(input_ids, generation_config, model_kwargs)  # the prompt, as forward reads it
        state = [outputs.cache]

        def step(tokens: torch.Tensor) -> torch.Tensor:  # a decode step as prepare_inputs_for_generation makes it
            out = self.forward(input_ids=tokens, cache=state[0])
            state[0] = out.cache
            return out.logits[:, -1]

        logits = outputs.logits[:, -1]
        del outputs
        return lean_sample(input_ids, logits, step, logits_processor, stopping_criteria, generation_config, streamer)

    def _zero_state(self, batch: int) -> list[np.ndarray]:
        return [np.zeros([batch if s == -1 else s for s in shape], np.float32) for shape in self.layout["shapes"]]

    def _run_state(self, key: str, feeds: dict, state: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        feeds.update(zip(self._past_names, state))
        out = self._open_session(key).run(None, feeds)
        return out[0], out[1:]

    def prepare_inputs_for_generation(self, input_ids, next_sequence_length=None, cache=None, attention_mask=None,
                                      is_first_iteration=False, **kwargs):  # fmt: skip
        if is_first_iteration or next_sequence_length != 1 or not isinstance(cache, ORTStateCache):
            return super().prepare_inputs_for_generation(
                input_ids, next_sequence_length=next_sequence_length, cache=cache, attention_mask=attention_mask,
                is_first_iteration=is_first_iteration, **kwargs,
            )  # fmt: skip
        # A decode step, as in the eager model: generate() marks every new token real and the state already keeps
        # the prompt's padding out, so the step needs no mask (and takes the sequence graph when there is one).
        return {"input_ids": input_ids[:, -1:], "cache": cache}

    def forward(self, input_ids=None, attention_mask=None, cache: ORTStateCache | None = None, **kwargs):
        """input_ids (B, T); attention_mask (B, past + T) or (B, T). Returns logits (B, 1, V) of the last position.

        A padded position (mask 0) leaves its row's state as it was, which is what the eager model's packing does."""
        ids = _np(input_ids)
        if ids.dtype != np.int64:
            ids = ids.astype(np.int64)
        B, T = ids.shape
        state = cache.arrays["state"] if cache is not None else self._zero_state(B)
        mask = None if attention_mask is None else _np(attention_mask)[:, -T:]
        if self._has_step and B == 1 and T == 1 and (mask is None or mask.all()):
            logits, state = self._run_state("step", {"input_ids": ids}, state)
        elif self._has_sequence and (mask is None or mask.all()):
            logits, state = self._run_state("sequence", {"input_ids": ids}, state)
        else:
            mask = np.ones((B, T), np.int64) if mask is None else mask.astype(np.int64)
            logits = None
            for t in range(T):
                feeds = {
                    "input_ids": np.ascontiguousarray(ids[:, t : t + 1]),
                    "attention_mask": mask[:, t : t + 1].copy(),
                }
                step_logits, state = self._run_state("decoder", feeds, state)
                logits = step_logits if logits is None else np.where(mask[:, t : t + 1] > 0, step_logits, logits)
        seen = (cache.seen_tokens if cache is not None else 0) + T
        new_cache = ORTStateCache(
            {"state": state}, {"state": self.layout["batch_dim"]}, self.layout["num_layers"], seen
        )
        return RunnerCausalLMOutput(logits=torch.from_numpy(logits[:, None]), cache=new_cache)

    def generate_text(self, prompt: str, max_new_tokens: int = 32, num_beams: int | None = None, **kwargs) -> str:
        self._need_tokenizer()
        enc = self.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        out = self.generate(**enc, max_new_tokens=max_new_tokens, num_beams=num_beams or 1, do_sample=False, **kwargs)
        return self.tokenizer.decode(out[0], skip_special_tokens=True)


# --- encoder-decoders ---------------------------------------------------------------------------------------------
@dataclass
class RunnerEncoderOutput(ModelOutput):
    """Encoder outputs; `init_*` are the RNN decoder's initial state (batch-first, so generate() repeats them for
    beams like `last_hidden_state`)."""

    last_hidden_state: torch.FloatTensor | None = None
    init_hidden: torch.FloatTensor | None = None
    init_cell: torch.FloatTensor | None = None
    init_feed: torch.FloatTensor | None = None
    init_keys: torch.FloatTensor | None = None


class _ORTEncoder(torch.nn.Module):
    """What `get_encoder()` returns: generate() calls it with the source ids and mask."""

    main_input_name = "input_ids"

    def __init__(self, runner):
        super().__init__()
        self.runner = [runner]  # a list: not registered as a submodule (no cycle)

    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        return self.runner[0]._encode(input_ids, attention_mask)


class _ORTSeq2SeqRunner(_ORTRunner):
    def get_encoder(self, modality=None):
        return _ORTEncoder(self)

    def _source_mask(self, input_ids, attention_mask, length: int | None = None) -> np.ndarray:
        """(B, S) 1/0 mask, right-padded with 0 to `length` (the encoder graph's fixed source length) if given."""
        ids = _np(input_ids)
        mask = np.ones(ids.shape, np.int64) if attention_mask is None else _np(attention_mask).astype(np.int64)
        if length is not None and mask.shape[1] < length:
            mask = np.concatenate([mask, np.zeros((mask.shape[0], length - mask.shape[1]), np.int64)], 1)
        return mask

    def translate(self, texts: list[str], num_beams: int | None = None, max_new_tokens: int | None = None) -> list[str]:
        """Sentences → translations, batched (the sources are right-padded, the layout the encoders were traced
        with). `num_beams` and `max_new_tokens` default to the exported generation config's; without a
        max_new_tokens there either, a translation may be up to 2 * source length + 10 tokens long."""
        if isinstance(texts, str):
            raise TypeError("translate takes a list of sentences; wrap one sentence in a list")
        self._need_tokenizer()
        self.tokenizer.padding_side = "right"
        enc = self.tokenizer(list(texts), return_tensors="pt", padding=True)
        enc = {k: enc[k] for k in ("input_ids", "attention_mask")}
        source_length = enc["input_ids"].shape[1]
        max_new = max_new_tokens or self.generation_config.max_new_tokens or default_max_new_tokens(source_length)
        beams = {"num_beams": num_beams} if num_beams else {}  # else generate() reads the generation config's
        out = self.generate(**enc, max_new_tokens=max_new, do_sample=False, **beams)
        return [self.target_tokenizer.decode(ids, skip_special_tokens=True).strip() for ids in out]


class ORTRNNSeq2SeqForConditionalGeneration(_ORTSeq2SeqRunner):
    """The RNN encoder-decoder on ONNX Runtime: encoder graph (+ the decoder's initial state), decoder step graph."""

    _files = ("encoder", "decoder")

    def __init__(self, folder, num_threads: int | None = None):
        super().__init__(folder, num_threads)
        self.fields = self.marker["state_fields"]
        inputs = {i.name for i in self._open_session("decoder").get_inputs()}
        if getattr(self.config, "position_encoding", "none") != "none" and "seen_tokens" not in inputs:
            # exports before the decoder graph took `seen_tokens` traced target position 0 into every step
            logger.warning(
                f"{self.folder}: the decoder graph has no `seen_tokens` input but the model adds target positions "
                f"(position_encoding={self.config.position_encoding!r}); this export decodes every step at position 0 "
                "and gives wrong outputs: export the model again with hf_seq.export.to_onnx"
            )

    def _encode(self, input_ids, attention_mask):
        ids = _np(input_ids).astype(np.int64)
        S = self.marker["max_source_length"]
        if ids.shape[1] > S:
            raise ValueError(
                f"source length {ids.shape[1]} exceeds the exported encoder's max_source_length={S}; export again "
                "with a larger to_onnx(..., max_source_length=...)"
            )
        mask = self._source_mask(ids, attention_mask, S)
        ids = np.concatenate([ids, np.full((ids.shape[0], S - ids.shape[1]), self.config.pad_token_id or 0)], 1)
        out = self._run("encoder", {"input_ids": ids.astype(np.int64), "attention_mask": mask})
        fields = {f"init_{n}": torch.from_numpy(a) for n, a in zip(self.fields, out[1:])}
        return RunnerEncoderOutput(last_hidden_state=torch.from_numpy(out[0]), **fields)

    def forward(self, input_ids=None, attention_mask=None, decoder_input_ids=None, encoder_outputs=None,
                cache: ORTStateCache | None = None, **kwargs):  # fmt: skip
        """decoder_input_ids (B, T) → logits (B, 1, V) of the last position and the new decoder state."""
        if encoder_outputs is None:
            encoder_outputs = self._encode(input_ids, attention_mask)
        memory = _np(encoder_outputs.last_hidden_state)
        mask = self._source_mask(memory[..., 0], attention_mask, memory.shape[1])
        if cache is None:
            state = {n: _np(getattr(encoder_outputs, f"init_{n}")) for n in self.fields}
            seen = 0
        else:
            state, seen = dict(cache.arrays), cache.seen_tokens
        ids = _np(decoder_input_ids).astype(np.int64)
        for t in range(ids.shape[1]):  # the decoder graph takes one target token
            # every row has seen as many target tokens (beam search reorders rows, all at the same step); a graph of
            # a model without target positions has no `seen_tokens` input and `_run` leaves it out
            feeds = {"decoder_input_ids": np.ascontiguousarray(ids[:, t : t + 1]), "encoder_hidden_states": memory,
                     "encoder_attention_mask": mask, "seen_tokens": np.full((ids.shape[0], 1), seen + t, np.int64),
                     **{f"past_state.{n}": a for n, a in state.items()}}  # fmt: skip
            out = self._run("decoder", feeds)
            state.update(zip([n for n in self.fields if n != "keys"], out[1:]))
        new_cache = ORTStateCache(state, {n: 0 for n in state}, self.config.decoder_layers, seen + ids.shape[1])
        return Seq2SeqLMOutput(logits=torch.from_numpy(out[0]).unsqueeze(1), cache=new_cache)


class ORTTransformerForConditionalGeneration(_ORTSeq2SeqRunner):
    """The encoder-decoder Transformer on ONNX Runtime: encoder, decoder (first step), decoder with KV cache."""

    _files = ("encoder", "decoder", "decoder_with_past")

    def _encode(self, input_ids, attention_mask):
        mask = self._source_mask(input_ids, attention_mask)
        out = self._run("encoder", {"input_ids": _np(input_ids).astype(np.int64), "attention_mask": mask})
        return BaseModelOutput(last_hidden_state=torch.from_numpy(out[0]))

    def forward(self, input_ids=None, attention_mask=None, decoder_input_ids=None, encoder_outputs=None,
                cache: ORTStateCache | None = None, **kwargs):  # fmt: skip
        if encoder_outputs is None:
            encoder_outputs = self._encode(input_ids, attention_mask)
        memory = _np(encoder_outputs.last_hidden_state)
        mask = self._source_mask(memory[..., 0], attention_mask)
        ids = _np(decoder_input_ids).astype(np.int64)
        B, T = ids.shape
        L = self.config.decoder_layers
        if cache is None:
            feeds = {"input_ids": ids, "position_ids": np.broadcast_to(np.arange(T), (B, T)).copy(),
                     "encoder_hidden_states": memory, "encoder_attention_mask": mask}  # fmt: skip
            out = self._run("decoder", feeds)
            names = [f"{i}.{p}.{kv}" for i in range(L) for p in ("decoder", "encoder") for kv in ("key", "value")]
            arrays, seen, logits = dict(zip(names, out[1:])), T, out[0]
        else:
            arrays, seen = dict(cache.arrays), cache.seen_tokens
            for t in range(T):  # the with-past graph takes one new token
                feeds = {"input_ids": np.ascontiguousarray(ids[:, t : t + 1]),
                         "position_ids": np.full((B, 1), seen, np.int64), "encoder_attention_mask": mask,
                         **{f"past_key_values.{n}": a for n, a in arrays.items()}}  # fmt: skip
                out = self._run("decoder_with_past", feeds)
                names = [f"{i}.decoder.{kv}" for i in range(L) for kv in ("key", "value")]
                arrays.update(zip(names, out[1:]))
                seen, logits = seen + 1, out[0]
        new_cache = ORTStateCache(arrays, {n: 0 for n in arrays}, L, seen)
        return Seq2SeqLMOutput(logits=torch.from_numpy(logits).unsqueeze(1), cache=new_cache)


class ORTTransformerForCausalLM(_ORTRunner):
    """The decoder-only Transformer on ONNX Runtime: decoder (prompt), decoder with KV cache (each new token)."""

    _files = ("decoder", "decoder_with_past")

    def forward(self, input_ids=None, attention_mask=None, cache: ORTStateCache | None = None, position_ids=None,
                **kwargs):  # fmt: skip
        """input_ids (B, T); attention_mask (B, past + T), 1 = real token (left padding allowed)."""
        ids = _np(input_ids).astype(np.int64)
        B, T = ids.shape
        L = self.config.decoder_layers
        past = cache.seen_tokens if cache is not None else 0
        if attention_mask is None:
            mask = np.ones((B, past + T), np.int64)
        else:
            mask = _np(attention_mask).astype(np.int64)
            if mask.shape[1] == T and past:
                mask = np.concatenate([np.ones((B, past), np.int64), mask], 1)
        # positions count real tokens, as the eager model's (left padding keeps them equal to the unpadded prompt)
        positions = np.clip(np.cumsum(mask, -1) - 1, 0, None)[:, -T:] if position_ids is None else _np(position_ids)
        names = [f"{i}.decoder.{kv}" for i in range(L) for kv in ("key", "value")]
        if cache is None:
            out = self._run("decoder", {"input_ids": ids, "attention_mask": mask,
                                        "position_ids": np.ascontiguousarray(positions, np.int64)})  # fmt: skip
            arrays, logits = dict(zip(names, out[1:])), out[0]
        else:
            arrays = dict(cache.arrays)
            for t in range(T):
                width = past + t + 1
                feeds = {"input_ids": np.ascontiguousarray(ids[:, t : t + 1]),
                         "attention_mask": np.ascontiguousarray(mask[:, :width]),
                         "position_ids": np.ascontiguousarray(positions[:, t : t + 1], np.int64),
                         **{f"past_key_values.{n}": a for n, a in arrays.items()}}  # fmt: skip
                out = self._run("decoder_with_past", feeds)
                arrays, logits = dict(zip(names, out[1:])), out[0]
        new_cache = ORTStateCache(arrays, {n: 0 for n in arrays}, L, past + T)
        return RunnerCausalLMOutput(logits=torch.from_numpy(logits).unsqueeze(1), cache=new_cache)

    generate_text = ORTRecurrentForCausalLM.generate_text


ONNX_RUNNERS = {
    ("recurrent", "text-generation"): ORTRecurrentForCausalLM,
    ("seq2seq", "translation"): ORTRNNSeq2SeqForConditionalGeneration,
    ("transformer", "translation"): ORTTransformerForConditionalGeneration,
    ("transformer", "text-generation"): ORTTransformerForCausalLM,
}

__all__ = [
    "ORTStateCache",
    "ORTRecurrentForCausalLM",
    "ORTRNNSeq2SeqForConditionalGeneration",
    "ORTTransformerForConditionalGeneration",
    "ORTTransformerForCausalLM",
    "ONNX_RUNNERS",
]
