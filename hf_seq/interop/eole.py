"""eole (OpenNMT-py's successor) checkpoints → hf-seq translation folders, without importing eole.

    convert_eole("run/model/step_1000", "my-model")      # or: hf-seq import eole run/model/step_1000 --output-dir my-model
    pipeline("hf-seq-translation", model="my-model")

An eole 0.x model folder holds `config.json` (the training config; its `model` section lists the options that differ
from eole's defaults), `vocab.json` (`src` and `tgt` token lists, `specials`, `decoder_start_token`) and
`model.*.safetensors`. Two architectures map onto hf-seq models exactly (same logits up to float rounding):

- `architecture: rnn` (and `architecture: custom` with an `rnn`/`brnn` encoder and an `rnn` decoder, the only way
  eole 0.6.4 builds a bidirectional encoder) → `RNNSeq2SeqForConditionalGeneration`: LSTM/GRU encoder, decoder
  started from the encoder's final state layer by layer (`bridge="copy"`; `encoder_type: brnn` → a bidirectional
  encoder with hidden_size/2 per direction and `bridge="concat"`), Luong global attention with `dot`, `general` or
  `mlp` scores (`attention_score="mlp"`), with or without input feeding, or no attention; eole's default sinusoidal
  positions on the embeddings (`position_encoding="sinusoidal"`); separate source/target vocabularies of any sizes;
  the generator's bias. eole's `general` score is q^T W h with W on the query; hf-seq puts the same matrix,
  transposed, on the keys.
- `architecture: transformer` → `TransformerForConditionalGeneration`: pre-norm layers with a final LayerNorm on each
  stack, sinusoidal (interleaved) positions added to embeddings scaled by sqrt(d_model); absent q/k/v/FFN biases
  become zeros.

Everything else is refused with a ValueError naming the eole option and the value hf-seq would need (eole's
`bridge`, coverage, context gates, `SinusoidalConcat` positions, a generator bias on the Transformer, ...): a partial
conversion would translate differently from eole without saying so. The tokenizer is word-level over eole's own
vocabularies (ids unchanged, eole's special tokens `<unk> <blank> <s> </s>`), splitting on whitespace as eole does
when no tokenization transform is configured; a model trained behind a subword transform needs that transform applied
to the text first.
"""

from __future__ import annotations

import glob
import json
import os

import numpy as np
import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import GenerationConfig, PreTrainedTokenizerFast
from transformers.utils import logging

logger = logging.get_logger(__name__)

# eole 0.6.4's defaults for the options read here (its config.json omits options left at their default)
_EMBEDDING_DEFAULTS = {
    "embedding_type": "standard",
    "position_encoding_type": "SinusoidalInterleaved",
    "position_shift": 0,
    "normalize": False,
    "embedding_layer_norm": False,
}
_MODEL_DEFAULTS = {
    "share_decoder_embeddings": False,
    "share_embeddings": False,
    "input_feed": 1,
    "generator_function": "softmax",
    "generator_bias": True,
    "add_estimator": False,
    "left_pad": False,
}
_RNN_ENCODER_DEFAULTS = {"encoder_type": "rnn", "layers": 2, "hidden_size": 512, "bridge": False, "rnn_type": "LSTM"}
_RNN_DECODER_DEFAULTS = {
    "layers": 2,
    "hidden_size": 512,
    "coverage_attn": False,
    "global_attention": "general",
    "global_attention_function": "softmax",
    "rnn_type": "LSTM",
    "context_gate": None,
    "bidirectional_encoder": False,
}
_TRANSFORMER_DEFAULTS = {
    "layers": 2,
    "hidden_size": 512,
    "heads": 8,
    "transformer_ff": 2048,
    "sliding_window": 0,
    "relative_positions_buckets": 0,
    "mlp_activation_fn": "relu",
    "layer_norm": "standard",
    "norm_eps": 1e-5,
    "shared_layer_norm": False,
    "ffn_layernorm": False,
    "add_qkvbias": False,
    "add_key_bias": None,
    "query_norm": False,
    "key_norm": False,
    "value_norm": False,
    "add_final_linear_bias": False,
    "heads_kv": None,
    "head_dim": None,
    "attn_scaling": None,
    "add_ffnbias": False,
    "parallel_residual": False,
    "num_experts": 0,
    "q_gating": False,
    "rope_config": None,
    "encoder_layer_style": "standard",
    "final_encoder_layer_norm": True,
    "layer_types": None,
}
# options hf-seq's models have exactly one value of: (option, required value, what hf-seq lacks)
_TRANSFORMER_FIXED = [
    ("sliding_window", 0, "sliding-window attention"),
    ("relative_positions_buckets", 0, "relative position buckets"),
    ("layer_norm", "standard", "RMSNorm / LayerNormFP32 (only nn.LayerNorm)"),
    ("shared_layer_norm", False, "a shared layer norm"),
    ("ffn_layernorm", False, "extra pre/post feed-forward layer norms"),
    ("query_norm", False, "query normalisation"),
    ("key_norm", False, "key normalisation"),
    ("value_norm", False, "value normalisation"),
    ("attn_scaling", None, "a custom attention scaling"),
    ("parallel_residual", False, "parallel residual blocks"),
    ("num_experts", 0, "mixture-of-experts layers"),
    ("q_gating", False, "gated queries"),
    ("rope_config", None, "rotary positions"),
    ("layer_types", None, "linear-attention layers"),
]
# eole state-dict suffixes (inside one attention block) → hf-seq names
_ATTENTION_NAMES = {"linear_query": "q_proj", "linear_keys": "k_proj", "linear_values": "v_proj",
                    "final_linear": "out_proj"}


class EoleConversionError(ValueError):
    """An eole checkpoint uses an option hf-seq's models do not have (the message names it)."""


def _refuse(option: str, value, reason: str) -> None:
    raise EoleConversionError(f"eole option {option}={value!r} cannot be converted: {reason}.")


# ---------------------------------------------------------------------------------------------------------------------
# reading the checkpoint
# ---------------------------------------------------------------------------------------------------------------------
def read_eole_checkpoint(checkpoint: str | os.PathLike) -> tuple[dict, dict, dict[str, np.ndarray]]:
    """`(config, vocab, weights)` of an eole model folder: config.json, vocab.json and model.*.safetensors (float32
    numpy arrays). `checkpoint` is the folder (a `step_N` folder or the `model_path` with its links to the last one)."""
    from safetensors import safe_open

    folder = os.fspath(checkpoint)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"eole checkpoint {folder!r} is not a folder (expected config.json, vocab.json and "
                                "model.*.safetensors; eole 0.x writes one per step_N)")
    paths = {name: os.path.join(folder, name) for name in ("config.json", "vocab.json")}
    for name, path in paths.items():
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{folder}: {name} is missing (not an eole 0.x model folder)")
    shards = sorted(glob.glob(os.path.join(folder, "model.*.safetensors")))
    if not shards:
        pickles = glob.glob(os.path.join(folder, "*.pt"))
        hint = f"; {[os.path.basename(p) for p in pickles]} are OpenNMT-py/optimizer pickles, not read" if pickles else ""
        raise FileNotFoundError(f"{folder}: no model.*.safetensors{hint}")
    with open(paths["config.json"], encoding="utf-8") as f:
        config = json.load(f)
    with open(paths["vocab.json"], encoding="utf-8") as f:
        vocab = json.load(f)
    weights = {}
    for shard in shards:
        with safe_open(shard, framework="pt") as st:
            for key in st.keys():
                weights[key] = st.get_tensor(key).float().numpy()
    return config, vocab, weights


def _section(model: dict, name: str, defaults: dict) -> dict:
    """A sub-section of eole's model config with eole's defaults filled in; model-level values (eole propagates
    `hidden_size`, `layers`, `heads`, ... from the model level) are used where the section lacks them."""
    section = dict(model.get(name) or {})
    out = {}
    for key, default in defaults.items():
        if key in section:
            out[key] = section[key]
        elif key in model and model[key] not in (None, -1):
            out[key] = model[key]
        else:
            out[key] = default
    return out


def _option(model: dict, key: str):
    return model.get(key, _MODEL_DEFAULTS[key])


# ---------------------------------------------------------------------------------------------------------------------
# vocabularies → tokenizers
# ---------------------------------------------------------------------------------------------------------------------
def _specials(vocab: dict) -> dict[str, str]:
    specials = vocab.get("specials") or {}
    return {
        "unk_token": specials.get("unk_token", "<unk>"),
        "pad_token": specials.get("pad_token", "<blank>"),
        "bos_token": specials.get("bos_token", "<s>"),
        "eos_token": specials.get("eos_token", "</s>"),
    }


def build_eole_tokenizer(tokens: list[str], specials: dict[str, str]) -> PreTrainedTokenizerFast:
    """A whitespace WordLevel tokenizer with eole's ids (no normalisation, no added BOS/EOS: eole feeds the source
    as is). Decoding joins words with spaces, as hf_seq.tokenization's word-level tokenizers do."""
    table = {}
    for i, token in enumerate(tokens):
        if token in table:
            raise EoleConversionError(f"the eole vocabulary lists {token!r} twice (ids {table[token]} and {i})")
        table[token] = i
    for name, token in specials.items():
        if token not in table:
            raise EoleConversionError(f"the eole vocabulary has no {name} {token!r}")
    tok = Tokenizer(models.WordLevel(vocab=table, unk_token=specials["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.Sequence([decoders.Replace(Regex("^"), " "), decoders.Fuse()])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        padding_side="right",
        model_max_length=1_000_000,
        clean_up_tokenization_spaces=False,
        **specials,
    )


def _special_ids(vocab: dict, side: str) -> dict[str, int]:
    specials = _specials(vocab)
    index = {token: i for i, token in enumerate(vocab[side])}
    start = vocab.get("decoder_start_token", specials["bos_token"])
    ids = {name: index.get(token) for name, token in specials.items()}
    ids["decoder_start"] = index.get(start)
    return ids


# ---------------------------------------------------------------------------------------------------------------------
# the two architectures
# ---------------------------------------------------------------------------------------------------------------------
def _check_common(model: dict, embeddings: dict) -> None:
    for key in ("generator_function", "add_estimator", "left_pad"):
        if _option(model, key) != _MODEL_DEFAULTS[key]:
            _refuse(key, _option(model, key), f"hf-seq's translation models support only {_MODEL_DEFAULTS[key]!r}")
    if embeddings["embedding_type"] != "standard":
        _refuse("embeddings.embedding_type", embeddings["embedding_type"], "only 'standard' embeddings convert")
    if embeddings["normalize"]:
        _refuse("embeddings.normalize", True, "hf-seq's embeddings have no extra sqrt(d) normalisation")
    if embeddings["embedding_layer_norm"]:
        _refuse("embeddings.embedding_layer_norm", True, "hf-seq's embeddings have no LayerNorm")
    if embeddings["position_shift"]:
        _refuse("embeddings.position_shift", embeddings["position_shift"], "hf-seq positions start at 0")


def _rnn_config_and_weights(model: dict, vocab: dict, w: dict[str, np.ndarray]):
    from ..models.seq2seq import RNNSeq2SeqConfig

    embeddings = _section(model, "embeddings", _EMBEDDING_DEFAULTS)
    _check_common(model, embeddings)
    positions = embeddings["position_encoding_type"]
    if positions not in (None, "SinusoidalInterleaved"):
        # eole adds sqrt(d)-scaled embeddings + its sinusoidal table to RNN inputs (the default, interleaved
        # sin/cos pairs); hf-seq's RNN seq2seq has that table only
        _refuse("embeddings.position_encoding_type", positions,
                "hf-seq's RNN seq2seq adds the interleaved sinusoidal table (SinusoidalInterleaved) or nothing (null)")
    enc = _section(model, "encoder", _RNN_ENCODER_DEFAULTS)
    dec = _section(model, "decoder", _RNN_DECODER_DEFAULTS)
    if enc["encoder_type"] not in ("rnn", "brnn"):
        _refuse("encoder.encoder_type", enc["encoder_type"], "hf-seq's RNN seq2seq converts an rnn or brnn encoder")
    bidirectional = enc["encoder_type"] == "brnn"
    if bool(dec["bidirectional_encoder"]) != bidirectional:
        _refuse("decoder.bidirectional_encoder", dec["bidirectional_encoder"],
                f"it contradicts encoder.encoder_type={enc['encoder_type']!r}")
    if enc["bridge"] or dec.get("bridge"):
        _refuse("bridge", True, "eole's bridge is relu(Linear) over all layers; hf-seq's is tanh(Linear) of the top layer")
    if enc["rnn_type"] != dec["rnn_type"]:
        _refuse("decoder.rnn_type", dec["rnn_type"], f"hf-seq uses one cell type; the encoder's is {enc['rnn_type']!r}")
    if enc["rnn_type"] not in ("LSTM", "GRU"):
        _refuse("rnn_type", enc["rnn_type"], "expected LSTM or GRU")
    if enc["layers"] != dec["layers"]:
        _refuse("decoder.layers", dec["layers"], f"the decoder starts from the encoder's states: encoder.layers is "
                f"{enc['layers']}")
    if enc["hidden_size"] != dec["hidden_size"]:
        _refuse("decoder.hidden_size", dec["hidden_size"], f"encoder.hidden_size is {enc['hidden_size']}")
    for key in ("coverage_attn", "context_gate"):
        if dec[key]:
            _refuse(f"decoder.{key}", dec[key], "hf-seq's RNN decoder has no such component")
    if dec["global_attention_function"] != "softmax":
        _refuse("decoder.global_attention_function", dec["global_attention_function"], "only softmax attention")
    score = dec["global_attention"]
    if score not in (None, "dot", "general", "mlp"):
        _refuse("decoder.global_attention", score, "expected dot, general, mlp or null")
    input_feed = int(_option(model, "input_feed")) == 1
    if score is None and input_feed:
        _refuse("input_feed", 1, "with global_attention=None eole feeds the previous RNN output; hf-seq's input "
                "feeding needs Luong attention (set input_feed: 0 for an attention-free model)")
    src, tgt = vocab["src"], vocab["tgt"]
    ids_src, ids_tgt = _special_ids(vocab, "src"), _special_ids(vocab, "tgt")
    if ids_src["pad_token"] != ids_tgt["pad_token"]:
        _refuse("vocab specials", ids_src, f"hf-seq uses one pad id on both sides; target ids are {ids_tgt}")
    share = bool(_option(model, "share_embeddings"))
    tie = bool(_option(model, "share_decoder_embeddings"))
    H = dec["hidden_size"]
    E_src = w["src_emb.embeddings.weight"].shape[1]
    E_tgt = w["tgt_emb.embeddings.weight"].shape[1] if "tgt_emb.embeddings.weight" in w else E_src
    config = RNNSeq2SeqConfig(
        vocab_size=len(src),
        target_vocab_size=None if share else len(tgt),
        cell_type=enc["rnn_type"].lower(),
        encoder_layers=enc["layers"],
        decoder_layers=dec["layers"],
        bidirectional_encoder=bidirectional,
        bridge="concat" if bidirectional else "copy",  # brnn: each decoder layer starts from [forward; backward]
        encoder_embedding_size=E_src,
        decoder_embedding_size=E_tgt,
        hidden_size=H,
        attention="none" if score is None else "luong",
        attention_score=score or "general",
        attention_size=H,  # eole's mlp score layer is hidden_size wide
        input_feeding=input_feed and score is not None,
        position_encoding="none" if positions is None else "sinusoidal",
        dropout=0.0,
        share_encoder_decoder_embeddings=share,
        tie_word_embeddings=tie,
        pad_token_id=ids_tgt["pad_token"],
        bos_token_id=ids_tgt["bos_token"],
        eos_token_id=ids_tgt["eos_token"],
        decoder_start_token_id=ids_tgt["decoder_start"],
    )
    state = {"model.encoder.embed_tokens.weight": w["src_emb.embeddings.weight"]}
    if not share:
        state["model.decoder.embed_tokens.weight"] = w["tgt_emb.embeddings.weight"]
    for key, value in w.items():
        if key.startswith("encoder.rnn."):
            state[f"model.{key}"] = value
        elif key.startswith("decoder.rnn.layers."):  # StackedLSTM/GRU cells (input feeding) → one fused module
            _, _, _, layer, name = key.split(".")
            state[f"model.decoder.rnn.{name}_l{layer}"] = value
        elif key.startswith("decoder.rnn."):
            state[f"model.{key}"] = value
    if score == "general":
        # eole: score = (W q) . h;  hf-seq: score = q . (W' h)  →  W' = W^T
        state["model.decoder.attention.key_proj.weight"] = w["decoder.attn.linear_in.weight"].T.copy()
    elif score == "mlp":  # v^T tanh(W_q q + b + W_c h): the same modules, named as in hf-seq's additive score
        state["model.decoder.attention.query_proj.weight"] = w["decoder.attn.linear_query.weight"]
        state["model.decoder.attention.query_proj.bias"] = w["decoder.attn.linear_query.bias"]
        state["model.decoder.attention.key_proj.weight"] = w["decoder.attn.linear_context.weight"]
        state["model.decoder.attention.energy.weight"] = w["decoder.attn.v.weight"]
        state["model.decoder.output_layer.bias"] = w["decoder.attn.linear_out.bias"]
    if score is not None:
        state["model.decoder.output_layer.weight"] = w["decoder.attn.linear_out.weight"]  # W_c over [c_t; h_t]
    if not tie:  # a tied generator is the target embedding (not stored by eole, tied by hf-seq)
        state["lm_head.weight"] = w["generator.weight"]
    state["lm_head.bias"] = w.get("generator.bias", np.zeros(len(tgt), dtype=np.float32))
    return config, state


def _transformer_config_and_weights(model: dict, vocab: dict, w: dict[str, np.ndarray]):
    from ..models.transformer import TransformerConfig

    embeddings = _section(model, "embeddings", _EMBEDDING_DEFAULTS)
    _check_common(model, embeddings)
    enc = _section(model, "encoder", _TRANSFORMER_DEFAULTS)
    dec = _section(model, "decoder", _TRANSFORMER_DEFAULTS)
    if embeddings["position_encoding_type"] != "SinusoidalInterleaved":
        _refuse("embeddings.position_encoding_type", embeddings["position_encoding_type"],
                "hf-seq's Transformer converts with SinusoidalInterleaved positions (the paper's table) only")
    for side, cfg in (("encoder", enc), ("decoder", dec)):
        for key, required, what in _TRANSFORMER_FIXED:
            if cfg[key] != required:
                _refuse(f"{side}.{key}", cfg[key], f"hf-seq's Transformer has no {what}")
        if cfg["mlp_activation_fn"] not in ("relu", "gelu"):
            _refuse(f"{side}.mlp_activation_fn", cfg["mlp_activation_fn"], "hf-seq's FFN is relu or gelu")
        if cfg["heads_kv"] not in (None, cfg["heads"]):
            _refuse(f"{side}.heads_kv", cfg["heads_kv"], "hf-seq's attention has as many key/value heads as heads")
        if cfg["head_dim"] not in (None, cfg["hidden_size"] // cfg["heads"]):
            _refuse(f"{side}.head_dim", cfg["head_dim"], "hf-seq's head size is hidden_size / heads")
    if enc["encoder_layer_style"] != "standard" or not enc["final_encoder_layer_norm"]:
        _refuse("encoder.encoder_layer_style", enc["encoder_layer_style"],
                "hf-seq converts eole's standard pre-norm encoder with its final LayerNorm")
    for key in ("hidden_size", "heads", "transformer_ff", "mlp_activation_fn", "norm_eps"):
        if enc[key] != dec[key]:
            _refuse(f"decoder.{key}", dec[key], f"hf-seq uses one value for both stacks; the encoder's is {enc[key]!r}")
    if _option(model, "generator_bias") and np.any(w.get("generator.bias", 0.0) != 0):
        _refuse("generator_bias", True, "hf-seq's Transformer output layer has no bias (train eole with "
                "`generator_bias: false`)")
    share = bool(_option(model, "share_embeddings"))
    tie = bool(_option(model, "share_decoder_embeddings"))
    src, tgt = vocab["src"], vocab["tgt"]
    if len(src) > len(tgt) and not share:
        _refuse("src_vocab_size", len(src), f"hf-seq's Transformer has one vocab_size for source and target; a "
                f"source vocabulary larger than the target one ({len(tgt)}) would add logits for tokens that do not "
                "exist (target_vocab_size is missing from TransformerConfig)")
    ids_src, ids_tgt = _special_ids(vocab, "src"), _special_ids(vocab, "tgt")
    if ids_src["pad_token"] != ids_tgt["pad_token"]:
        _refuse("vocab specials", ids_src, f"hf-seq uses one pad id on both sides; target ids are {ids_tgt}")
    for key, value in w.items():  # Gemma-style per-layer output scale, 1 in every model hf-seq converts
        if key.endswith(".layer_scalar") and np.any(value != 1):
            _refuse(key, value.tolist(), "hf-seq's Transformer layers have no output scale")
    d = enc["hidden_size"]
    config = TransformerConfig(
        vocab_size=len(tgt),
        hidden_size=d,
        intermediate_size=enc["transformer_ff"],
        num_attention_heads=enc["heads"],
        encoder_layers=enc["layers"],
        decoder_layers=dec["layers"],
        dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        activation_function=enc["mlp_activation_fn"],
        max_position_embeddings=5000,  # eole's sinusoidal table
        position_embedding_type="sinusoidal",
        norm_first=True,
        layer_norm_eps=float(enc["norm_eps"]),
        scale_embedding=True,
        share_embeddings=share and tie,
        tie_word_embeddings=tie,
        pad_token_id=ids_tgt["pad_token"],
        bos_token_id=ids_tgt["bos_token"],
        eos_token_id=ids_tgt["eos_token"],
        decoder_start_token_id=ids_tgt["decoder_start"],
    )
    src_emb = w["src_emb.embeddings.weight"]
    if src_emb.shape[0] < len(tgt):  # rows the source tokenizer never produces
        src_emb = np.concatenate([src_emb, np.zeros((len(tgt) - src_emb.shape[0], d), np.float32)])
    state = {"model.encoder.embeddings.embed_tokens.weight": src_emb}
    if not config.share_embeddings:
        state["model.decoder.embeddings.embed_tokens.weight"] = w.get("tgt_emb.embeddings.weight", src_emb)
    if not tie:
        state["lm_head.weight"] = w["generator.weight"]

    def weight_and_bias(eole_name: str, hf_name: str) -> None:
        """One layer's weight and bias (LayerNorm or Linear); a bias eole does not store is zero in hf-seq."""
        weight = w[f"{eole_name}.weight"]
        state[f"{hf_name}.weight"] = weight
        state[f"{hf_name}.bias"] = w.get(f"{eole_name}.bias", np.zeros(weight.shape[0], np.float32))

    def block(eole_prefix: str, hf_prefix: str) -> None:
        for eole_name, hf_name in _ATTENTION_NAMES.items():
            weight_and_bias(f"{eole_prefix}.{eole_name}", f"{hf_prefix}.{hf_name}")

    def ffn(eole_prefix: str, hf_prefix: str) -> None:
        for eole_name, hf_name in (("gate_up_proj", "fc1"), ("down_proj", "fc2")):
            weight_and_bias(f"{eole_prefix}.{eole_name}", f"{hf_prefix}.{hf_name}")

    def layer(e: str, h: str, cross: bool):
        weight_and_bias(f"{e}.input_layernorm", f"{h}.self_attn_layer_norm")
        block(f"{e}.self_attn", f"{h}.self_attn")
        if cross:  # decoder layers: attention over the source between self-attention and the FFN
            weight_and_bias(f"{e}.precontext_layernorm", f"{h}.encoder_attn_layer_norm")
            block(f"{e}.context_attn", f"{h}.encoder_attn")
        weight_and_bias(f"{e}.post_attention_layernorm", f"{h}.final_layer_norm")
        ffn(f"{e}.mlp", f"{h}.ffn")

    for i in range(enc["layers"]):
        layer(f"encoder.transformer_layers.{i}", f"model.encoder.layers.{i}", cross=False)
    weight_and_bias("encoder.layer_norm", "model.encoder.layer_norm")
    for i in range(dec["layers"]):
        layer(f"decoder.transformer_layers.{i}", f"model.decoder.layers.{i}", cross=True)
    weight_and_bias("decoder.layer_norm", "model.decoder.layer_norm")
    return config, state


_ARCHITECTURES = {"rnn": _rnn_config_and_weights, "transformer": _transformer_config_and_weights}


def _architecture(model: dict) -> str:
    """`rnn` or `transformer`. eole 0.6.4's `architecture: rnn` forces `encoder_type: rnn`, so a bidirectional (brnn)
    encoder comes as `architecture: custom` with an rnn decoder: that converts like `rnn`."""
    architecture = model.get("architecture")
    if architecture == "custom":
        encoder_type = (model.get("encoder") or {}).get("encoder_type")
        decoder_type = (model.get("decoder") or {}).get("decoder_type")
        if encoder_type in ("rnn", "brnn") and decoder_type == "rnn":
            return "rnn"
        _refuse("model.encoder/decoder types", f"{encoder_type}/{decoder_type}",
                "hf-seq converts `architecture: custom` only with an rnn or brnn encoder and an rnn decoder")
    if architecture not in _ARCHITECTURES:
        _refuse("model.architecture", architecture, f"hf-seq converts {sorted(_ARCHITECTURES)} encoder-decoders")
    return architecture


def eole_to_hf_seq(checkpoint: str | os.PathLike):
    """The converted model (eval mode), source tokenizer and target tokenizer (the same object when eole's source
    and target vocabularies are equal), without writing anything."""
    from ..models.seq2seq import RNNSeq2SeqForConditionalGeneration
    from ..models.transformer import TransformerForConditionalGeneration

    config_json, vocab, weights = read_eole_checkpoint(checkpoint)
    model_section = config_json.get("model") or {}
    architecture = _architecture(model_section)
    config, state = _ARCHITECTURES[architecture](model_section, vocab, weights)
    model_class = RNNSeq2SeqForConditionalGeneration if architecture == "rnn" else TransformerForConditionalGeneration
    model = model_class(config)
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}
    expected = dict(model.state_dict())
    tied = set(getattr(model, "all_tied_weights_keys", {}) or {})
    missing = sorted(k for k in expected if k not in tensors and k not in tied)
    unexpected = sorted(k for k in tensors if k not in expected)
    if missing or unexpected:
        raise EoleConversionError(f"{checkpoint}: the eole weights do not fill the hf-seq model: missing {missing}, "
                                  f"unexpected {unexpected}")
    for key, value in tensors.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise EoleConversionError(f"{checkpoint}: {key} has shape {tuple(value.shape)} in the eole checkpoint, "
                                      f"{tuple(expected[key].shape)} in the hf-seq model")
    model.load_state_dict(tensors, strict=False)
    if getattr(config, "tie_word_embeddings", False):
        model.tie_weights()
    model.eval()
    specials = _specials(vocab)
    source = build_eole_tokenizer(vocab["src"], specials)
    target = source if vocab["tgt"] == vocab["src"] else build_eole_tokenizer(vocab["tgt"], specials)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=config.decoder_start_token_id,
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
    )
    return model, source, target


def convert_eole(checkpoint: str | os.PathLike, output_dir: str | os.PathLike) -> str:
    """Convert an eole model folder into a complete hf-seq translation folder at `output_dir` (config, safetensors,
    tokenizer (+ `target_tokenizer/` for a separate target vocabulary), generation config, the `hf-seq-translation`
    pipeline and remote code), written atomically. Returns `output_dir`. Options hf-seq lacks raise
    `EoleConversionError` (a ValueError) naming the eole option."""
    from ..io_utils import atomic_folder
    from ..pipelines import save_translation_pipeline

    model, source, target = eole_to_hf_seq(checkpoint)
    output_dir = os.fspath(output_dir)
    with atomic_folder(output_dir) as tmp:
        save_translation_pipeline(model, source, tmp, target_tokenizer=None if target is source else target)
        with open(os.path.join(tmp, "eole_conversion.json"), "w", encoding="utf-8") as f:
            json.dump({"converted_from": os.path.abspath(os.fspath(checkpoint)),
                       "architecture": type(model).__name__}, f, indent=2)
            f.write("\n")
    logger.info(f"converted eole checkpoint {checkpoint} to {output_dir} ({type(model).__name__})")
    return output_dir


__all__ = ["convert_eole", "eole_to_hf_seq", "read_eole_checkpoint", "build_eole_tokenizer", "EoleConversionError"]
