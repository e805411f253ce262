"""hf-seq Transformer → CTranslate2, through CTranslate2's public model-spec API.

CTranslate2's converters pick a loader by `model_type` and do not know `hf_seq_transformer`; its specs do describe the
model exactly (HF-NOTES: `TransformerSpec.from_config`): post-LN (`pre_norm=False`, LayerNorm after each residual add,
as in the paper and Marian) or pre-LN with a final LayerNorm on each stack, ReLU or GELU, token embeddings scaled by
sqrt(d_model) (§3.4), and a position table. hf-seq's sinusoidal table interleaves sin/cos (§3.5) while CTranslate2's
built-in one concatenates them, so the table itself is written into the model (`position_encodings.encodings`), as
CTranslate2's own Marian/M2M100 loaders do. Query/key/value projections are fused into one matrix for self-attention
and key/value for encoder-decoder attention (CTranslate2's layout). The vocabulary is the tokenizer's tokens by id.
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch
from torch import nn
from transformers.utils import logging

from ._common import (
    default_max_new_tokens,
    finish_export,
    load_model_and_tokenizer,
    model_family,
    prepare_output_dir,
    read_marker,
    require,
)

logger = logging.get_logger(__name__)

CT2_QUANTIZATIONS = (None, "int8", "int8_float32", "float16")
UNUSED_TOKEN = "<hf_seq_unused_{}>"


def _array(t: torch.Tensor) -> np.ndarray:
    # a copy: `spec.optimize(quantization=...)` rewrites the spec's arrays, which would otherwise be the model's own
    # parameter memory (a float32 CPU tensor's .numpy() shares it)
    return t.detach().to(torch.float32).cpu().numpy().copy()


def _set_linear(spec, module: nn.Linear) -> None:
    spec.weight = _array(module.weight)
    if module.bias is not None:
        spec.bias = _array(module.bias)


def _set_fused_linear(spec, modules: list[nn.Linear]) -> None:
    """Concatenate several projections along the output dimension (q|k|v or k|v)."""
    spec.weight = np.concatenate([_array(m.weight) for m in modules])
    if any(m.bias is not None for m in modules):
        spec.bias = np.concatenate(
            [_array(m.bias) if m.bias is not None else np.zeros(m.out_features, np.float32) for m in modules]
        )


def _projections(attention: nn.Module, names: tuple[str, ...]) -> list[nn.Linear]:
    """The attention's projections by name; also accepts a fused `qkv_proj` / `kv_proj` should the model fuse them."""
    if all(isinstance(getattr(attention, n, None), nn.Linear) for n in names):
        return [getattr(attention, n) for n in names]
    fused = "qkv_proj" if names == ("q_proj", "k_proj", "v_proj") else "kv_proj"
    if isinstance(getattr(attention, fused, None), nn.Linear):
        return [getattr(attention, fused)]
    raise TypeError(
        f"cannot read the projections {names} of {type(attention).__name__}: the Transformer's attention layout "
        "changed; update hf_seq/export/ctranslate2_export.py"
    )


def _set_attention(spec, attention: nn.Module, self_attention: bool) -> None:
    if self_attention:
        _set_fused_linear(spec.linear[0], _projections(attention, ("q_proj", "k_proj", "v_proj")))
    else:
        _set_linear(spec.linear[0], _projections(attention, ("q_proj",))[0])
        _set_fused_linear(spec.linear[1], _projections(attention, ("k_proj", "v_proj")))
    _set_linear(spec.linear[-1], attention.out_proj)


def _set_layer_norm(spec, norm: nn.LayerNorm) -> None:
    spec.gamma = _array(norm.weight)
    spec.beta = _array(norm.bias)


def _set_ffn(spec, layer) -> None:
    _set_linear(spec.linear_0, layer.ffn.fc1)
    _set_linear(spec.linear_1, layer.ffn.fc2)
    _set_layer_norm(spec.layer_norm, layer.final_layer_norm)


def _set_embeddings(spec, stack, config, embedding_weight: np.ndarray) -> None:
    emb = stack.embeddings
    spec.scale_embeddings = math.sqrt(config.hidden_size) if config.scale_embedding else 1.0
    positions = emb.embed_positions
    table = positions.table if hasattr(positions, "table") else positions.weight  # sinusoidal buffer or learned rows
    spec.position_encodings.encodings = _array(table)
    target = spec.embeddings[0] if isinstance(spec.embeddings, list) else spec.embeddings
    target.weight = embedding_weight
    if getattr(stack, "layer_norm", None) is not None:
        _set_layer_norm(spec.layer_norm, stack.layer_norm)


def _set_encoder(spec, encoder, config, embedding_weight) -> None:
    _set_embeddings(spec, encoder, config, embedding_weight)
    for layer_spec, layer in zip(spec.layer, encoder.layers):
        _set_attention(layer_spec.self_attention, layer.self_attn, self_attention=True)
        _set_layer_norm(layer_spec.self_attention.layer_norm, layer.self_attn_layer_norm)
        _set_ffn(layer_spec.ffn, layer)


def _set_decoder(spec, decoder, config, embedding_weight, lm_head: nn.Linear, output_weight) -> None:
    _set_embeddings(spec, decoder, config, embedding_weight)
    for layer_spec, layer in zip(spec.layer, decoder.layers):
        _set_attention(layer_spec.self_attention, layer.self_attn, self_attention=True)
        _set_layer_norm(layer_spec.self_attention.layer_norm, layer.self_attn_layer_norm)
        if getattr(layer, "encoder_attn", None) is not None:
            _set_attention(layer_spec.attention, layer.encoder_attn, self_attention=False)
            _set_layer_norm(layer_spec.attention.layer_norm, layer.encoder_attn_layer_norm)
        _set_ffn(layer_spec.ffn, layer)
    spec.projection.weight = output_weight
    if lm_head.bias is not None:
        spec.projection.bias = _array(lm_head.bias)


def vocabulary_tokens(tokenizer, vocab_size: int) -> list[str]:
    """Token strings by id, one per embedding row. Without a tokenizer the tokens are the ids themselves ("17");
    rows the tokenizer does not use get unique placeholder names."""
    if tokenizer is None:
        return [str(i) for i in range(vocab_size)]
    if len(tokenizer) > vocab_size:
        raise ValueError(
            f"the tokenizer has {len(tokenizer)} tokens but the model's vocabulary has {vocab_size} rows; they do not "
            "belong together"
        )
    tokens = [UNUSED_TOKEN.format(i) for i in range(vocab_size)]
    for token, i in tokenizer.get_vocab().items():
        tokens[i] = token
    if len(set(tokens)) != len(tokens):
        raise ValueError("the tokenizer maps two ids to the same token string; CTranslate2 needs unique tokens")
    return tokens


def _token(tokens: list[str], token_id, name: str) -> str:
    if isinstance(token_id, (list, tuple)):
        token_id = token_id[0]
    if token_id is None or not 0 <= token_id < len(tokens):
        raise ValueError(f"the model config's {name}={token_id!r} is not an id of the vocabulary [0, {len(tokens)})")
    return tokens[token_id]


def build_spec(model, tokenizer=None):
    """The CTranslate2 `TransformerSpec` (encoder-decoder) or `TransformerDecoderModelSpec` (decoder-only)."""
    require("ctranslate2")
    from ctranslate2.specs import common_spec, transformer_spec

    if model_family(model) != "transformer":
        raise TypeError(
            f"CTranslate2 export covers the Transformer only, got {type(model).__name__}; use to_onnx for the "
            "recurrent models"
        )
    config = model.config
    activation = {"relu": common_spec.Activation.RELU, "gelu": common_spec.Activation.GELU}[config.activation_function]
    output_weight = _array(model.get_output_embeddings().weight)
    decoder = model.get_decoder()
    # a tied output shares the decoder embedding's array, so CTranslate2 stores it once
    decoder_embedding = _array(decoder.embeddings.embed_tokens.weight)
    if model.get_output_embeddings().weight is decoder.embeddings.embed_tokens.weight:
        output_weight = decoder_embedding
    if config.is_encoder_decoder:
        spec = transformer_spec.TransformerSpec.from_config(
            (config.encoder_layers, config.decoder_layers),
            config.num_attention_heads,
            pre_norm=config.norm_first,
            activation=activation,
        )
        encoder = model.get_encoder()
        encoder_embedding = (
            decoder_embedding
            if encoder.embeddings.embed_tokens.weight is decoder.embeddings.embed_tokens.weight
            else _array(encoder.embeddings.embed_tokens.weight)
        )
        _set_encoder(spec.encoder, encoder, config, encoder_embedding)
        _set_decoder(spec.decoder, decoder, config, decoder_embedding, model.get_output_embeddings(), output_weight)
    else:
        spec = transformer_spec.TransformerDecoderModelSpec.from_config(
            config.decoder_layers, config.num_attention_heads, pre_norm=config.norm_first, activation=activation
        )
        _set_decoder(spec.decoder, decoder, config, decoder_embedding, model.get_output_embeddings(), output_weight)

    tokens = vocabulary_tokens(tokenizer, config.vocab_size)
    spec.config.layer_norm_epsilon = config.layer_norm_eps
    spec.config.unk_token = tokenizer.unk_token if tokenizer is not None and tokenizer.unk_token else tokens[0]
    spec.config.bos_token = _token(tokens, config.bos_token_id, "bos_token_id")
    spec.config.eos_token = _token(tokens, config.eos_token_id, "eos_token_id")
    if config.is_encoder_decoder:
        spec.config.decoder_start_token = _token(tokens, config.decoder_start_token_id, "decoder_start_token_id")
        spec.register_source_vocabulary(tokens)
        spec.register_target_vocabulary(tokens)
    else:
        spec.register_vocabulary(tokens)
    return spec


def to_ctranslate2(folder_or_model, output_dir, quantization: str | None = None, tokenizer=None) -> str:
    """Export a `TransformerForConditionalGeneration` / `TransformerForCausalLM` to a CTranslate2 folder.

    Args:
        folder_or_model: a saved model folder (its tokenizer is exported too) or a model object.
        output_dir: new (or empty, or earlier-exported) folder.
        quantization: None (float32), "int8", "int8_float32" or "float16" weights.
        tokenizer: the tokenizer, when `folder_or_model` is a model object; without one the CTranslate2 vocabulary
            is the ids as strings ("0", "1", ...) and only id-level calls work.

    Returns the output folder. It holds CTranslate2's model.bin/config.json/vocabulary, the tokenizer files,
    generation_config.json and `hf_seq_export.json` (format, task), so `load_runner(output_dir)` and
    `hf-seq translate output_dir ...` can use it.
    """
    if quantization not in CT2_QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {CT2_QUANTIZATIONS}, got {quantization!r}")
    model, tokenizer, source = load_model_and_tokenizer(folder_or_model, tokenizer)
    with torch.no_grad():
        spec = build_spec(model, tokenizer)
    spec.validate()
    spec.optimize(quantization=quantization)
    output_dir = prepare_output_dir(output_dir)
    spec.save(output_dir)
    config = model.config
    finish_export(output_dir, model, tokenizer, source, format="ctranslate2", family="transformer",
                  quantization=quantization, eos_token_id=config.eos_token_id,
                  max_position_embeddings=config.max_position_embeddings)  # fmt: skip
    logger.info(f"CTranslate2 model written to {output_dir} (quantization={quantization})")
    return output_dir


# transformers' `early_stopping` -> CTranslate2's `patience` (see `search_options`)
EARLY_STOPPING_PATIENCE = {True: 1.0, False: 2.0, "never": 1000.0}


def search_options(
    generation_config, num_beams: int | None, max_new_tokens: int | None, **kwargs
) -> tuple[dict, int | None]:
    """CTranslate2 beam-search options that decode like `generate()` with `generation_config`.

    `num_beams` and `max_new_tokens` default to the generation config's (num_beams else 1; max_new_tokens else None:
    the caller's default). Mapped from the generation config unless given in kwargs (`early_stopping=`,
    `length_penalty=`; other kwargs are CTranslate2's own, and `patience=` overrides the mapping):

    - `length_penalty` -> `length_penalty`: both engines divide a hypothesis' log-probability by (generated tokens,
      end token included) ** length_penalty.
    - `early_stopping` -> `patience` (EARLY_STOPPING_PATIENCE). CTranslate2 searches until beam_size * patience
      hypotheses have ended; its default, patience 1, is exactly `early_stopping=True` (tested). transformers' default
      `early_stopping=False` searches on while a running beam could still beat the worst finished hypothesis by a
      heuristic bound, which CTranslate2 cannot express: it maps to patience 2, measured on the Multi30k Transformer of
      benchmarks/results/export_fidelity.md (beam 4: 992/1000 sentences identical to generate(), BLEU +0.02; patience
      1 gave 943 and -0.47, patience 3 and 4 also 992). Those 8 differ because generate()'s bound stopped before a
      longer hypothesis with a better normalised score ended: patience 2 equals `early_stopping="never"` there on
      1000/1000. A model whose hypotheses rarely end before max_new_tokens can need a higher patience to match
      `early_stopping=False` (then pass `patience=`). `"never"` maps to patience 1000 (search until the length limit).

    Returns (translate_batch / generate_batch kwargs without the length limit, max_new_tokens or None)."""
    early_stopping = kwargs.pop("early_stopping", getattr(generation_config, "early_stopping", False))
    length_penalty = kwargs.pop("length_penalty", getattr(generation_config, "length_penalty", None))
    if max_new_tokens is None:
        max_new_tokens = getattr(generation_config, "max_new_tokens", None)
    num_beams = num_beams or getattr(generation_config, "num_beams", None) or 1
    if not isinstance(num_beams, int) or num_beams < 1:
        raise ValueError(f"num_beams must be a positive integer, got {num_beams!r}")
    if max_new_tokens is not None and (not isinstance(max_new_tokens, int) or max_new_tokens < 1):
        raise ValueError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}")
    options = {"beam_size": num_beams}
    early_stopping = False if early_stopping is None else early_stopping  # generate()'s default
    if early_stopping not in EARLY_STOPPING_PATIENCE:
        raise ValueError(f"early_stopping must be True, False or 'never', got {early_stopping!r}")
    if num_beams > 1 and "patience" not in kwargs:
        options["patience"] = EARLY_STOPPING_PATIENCE[early_stopping]
    if length_penalty is not None:
        options["length_penalty"] = float(length_penalty)
    options.update(kwargs)
    return options, max_new_tokens


class _CTranslate2Runner:
    """Shared loading: the CTranslate2 model (`engine`: a `ctranslate2.<_engine>` for a `_task` export), the tokenizer
    and the exported generation settings (`generation_config`, mapped onto CTranslate2's search by `search_options`).
    """

    _task, _engine, _other_runner = "", "", ""

    def __init__(self, folder, device="cpu", compute_type="default", intra_threads=0, inter_threads=1):
        self.folder = os.fspath(folder)
        self.marker = read_marker(self.folder)
        if self.marker is None or self.marker["format"] != "ctranslate2":
            raise ValueError(f"{self.folder} is not a CTranslate2 export of hf-seq (no hf_seq_export.json)")
        if self.marker["task"] != self._task:
            raise ValueError(f"{self.folder} holds a {self.marker['task']} model; use {self._other_runner}")
        self._ct2 = require("ctranslate2")
        self.options = dict(device=device, compute_type=compute_type, intra_threads=intra_threads,
                            inter_threads=inter_threads)  # fmt: skip
        self.tokenizer = self.target_tokenizer = None
        if self.marker.get("has_tokenizer"):
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(self.folder)
            target = os.path.join(self.folder, "target_tokenizer")
            self.target_tokenizer = AutoTokenizer.from_pretrained(target) if os.path.isdir(target) else self.tokenizer
        self.generation_config = None
        if os.path.isfile(os.path.join(self.folder, "generation_config.json")):
            from transformers import GenerationConfig

            self.generation_config = GenerationConfig.from_pretrained(self.folder)
        self.engine = getattr(self._ct2, self._engine)(self.folder, **self.options)
        # also as `runner.translator` / `runner.generator`, for CTranslate2's own calls (score_batch, ...)
        setattr(self, self._engine.lower(), self.engine)

    @classmethod
    def from_folder(cls, folder, **kwargs):
        return cls(folder, **kwargs)

    def _tokens(self, ids: list[int]) -> list[str]:
        if self.tokenizer is None:
            return [str(i) for i in ids]
        return self.tokenizer.convert_ids_to_tokens(ids)

    def _ids(self, tokens: list[str], tokenizer) -> list[int]:
        if tokenizer is None:
            return [int(t) for t in tokens]
        return tokenizer.convert_tokens_to_ids(tokens)

    def _need_tokenizer(self):
        if self.tokenizer is None:
            raise ValueError(f"{self.folder} was exported without a tokenizer: use the *_ids methods")

    def _batch_tokens(self, sequences: list[list[int]], what: str) -> tuple[list[list[str]], int]:
        """Id lists → CTranslate2's token lists, and the longest length; refuses an empty batch or sequence."""
        if not sequences or any(len(s) == 0 for s in sequences):
            raise ValueError(f"give at least one {what}, each with at least one token id")
        return [self._tokens(s) for s in sequences], max(len(s) for s in sequences)


class CTranslate2Translator(_CTranslate2Runner):
    """Translate with an exported encoder-decoder: `CTranslate2Translator.from_folder(out).translate([...])`."""

    _task, _engine, _other_runner = "translation", "Translator", "CTranslate2Generator"

    def translate_ids(
        self, sources: list[list[int]], num_beams: int | None = None, max_new_tokens: int | None = None, **kwargs
    ) -> list[list[int]]:
        """Source ids → generated target ids (without the start and end tokens).

        Decodes like the model's `generate()` with the exported generation config (`search_options`: its
        `early_stopping` becomes CTranslate2's `patience`, its `length_penalty` and `max_new_tokens` carry over;
        `early_stopping=`, `length_penalty=` or CTranslate2's own options in kwargs override them). Without a
        max_new_tokens anywhere, a translation may be up to 2 * longest source + 10 tokens long."""
        tokens, max_len = self._batch_tokens(sources, "source")
        options, max_new_tokens = search_options(self.generation_config, num_beams, max_new_tokens, **kwargs)
        max_length = max_new_tokens or default_max_new_tokens(max_len)
        results = self.engine.translate_batch(tokens, max_decoding_length=max_length, min_decoding_length=0, **options)
        return [self._ids(r.hypotheses[0], self.target_tokenizer) for r in results]

    def translate(self, texts: list[str], num_beams: int | None = None, max_new_tokens: int | None = None) -> list[str]:
        if isinstance(texts, str):
            raise TypeError("translate takes a list of sentences; wrap one sentence in a list")
        self._need_tokenizer()
        sources = [self.tokenizer(t)["input_ids"] for t in texts]
        out = self.translate_ids(sources, num_beams=num_beams, max_new_tokens=max_new_tokens)
        return [self.target_tokenizer.decode(ids, skip_special_tokens=True).strip() for ids in out]


class CTranslate2Generator(_CTranslate2Runner):
    """Continue prompts with an exported decoder-only Transformer LM."""

    _task, _engine, _other_runner = "text-generation", "Generator", "CTranslate2Translator"

    def generate_ids(
        self, prompts: list[list[int]], max_new_tokens: int = 32, num_beams: int | None = None, **kwargs
    ) -> list[list[int]]:
        """Prompt ids → prompt + generated ids (the end token is not returned). Beam search follows the exported
        generation config as in `CTranslate2Translator.translate_ids` (`search_options`)."""
        tokens, longest = self._batch_tokens(prompts, "prompt")
        options, _ = search_options(self.generation_config, num_beams, max_new_tokens, **kwargs)
        # CTranslate2's max_length counts every decoded position after the first prompt token, for the whole batch
        results = self.engine.generate_batch(tokens, max_length=longest - 1 + max_new_tokens, min_length=0,
                                             include_prompt_in_result=True, **options)  # fmt: skip
        return [self._ids(r.sequences[0], self.tokenizer)[: len(p) + max_new_tokens] for r, p in zip(results, prompts)]

    def generate_text(self, prompt: str, max_new_tokens: int = 32, num_beams: int | None = None) -> str:
        self._need_tokenizer()
        ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        out = self.generate_ids([ids], max_new_tokens=max_new_tokens, num_beams=num_beams)[0]
        return self.tokenizer.decode(out, skip_special_tokens=True)


__all__ = [
    "to_ctranslate2",
    "build_spec",
    "search_options",
    "CTranslate2Translator",
    "CTranslate2Generator",
    "CT2_QUANTIZATIONS",
    "EARLY_STOPPING_PATIENCE",
]
