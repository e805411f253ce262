"""Default LoRA target modules for hf-seq's model types, registered with PEFT (issue 19, point 11).

PEFT picks `target_modules` from a table keyed by `config.model_type` when a `LoraConfig` names none; hf-seq's types
are not in PEFT's table, so `register_peft_defaults()` (called by `hf_seq.auto.register_auto_classes`) adds them.
It does nothing when PEFT is not installed.

What the defaults adapt, per family:
- Recurrent (RNN / GRU / LSTM): the token embedding and the optional output projection (not the LM head: PEFT
  cannot merge two adapters into one tied matrix). With `tie_word_embeddings=True` the LM head shares the embedding
  matrix, so `merge_and_unload()` also changes the output layer while the unmerged adapter does not (PEFT issue
  2777): keep such adapters unmerged, or untie the weights before fine-tuning. The recurrent
  weights live inside `nn.LSTM` / `nn.GRU` / `nn.RNN`, which LoRA cannot wrap as a module; adapt them through
  `target_parameters` (PEFT >= 0.17), one low-rank update per weight matrix:

      from peft import LoraConfig, get_peft_model
      config = LoraConfig(
          r=8,
          target_modules=["embeddings", "lm_head"],
          target_parameters=[f"layers.{i}.rnn.{w}_l0" for i in range(model.config.num_hidden_layers)
                             for w in ("weight_ih", "weight_hh")],
      )
      model = get_peft_model(model, config)

  (a bidirectional layer also has `weight_ih_l0_reverse` / `weight_hh_l0_reverse`). Classification heads
  (`classifier`) are trained in full when the `LoraConfig` has `task_type="SEQ_CLS"` / `"TOKEN_CLS"`.
- RNN encoder-decoder: the embeddings, the bridge from encoder to decoder state and the attention / output layers;
  its recurrent weights (`model.encoder.rnn.weight_hh_l0`, ...) take `target_parameters` as above.
- Transformer: the query and value projections of every attention block (Hu et al. 2021, §7.1), as PEFT's own
  defaults for BART and Marian.
- word2vec: the input vectors (`embeddings`).
"""

from __future__ import annotations

# model_type -> module names LoRA wraps by default (names are matched as suffixes by PEFT)
LORA_TARGET_MODULES: dict[str, list[str]] = {
    **dict.fromkeys(("hf_seq_rnn", "hf_seq_gru", "hf_seq_lstm"), ["embeddings", "projection"]),
    "hf_seq_rnn_seq2seq": ["embed_tokens", "bridge_hidden", "bridge_cell", "query_proj", "key_proj", "output_layer"],
    "hf_seq_transformer": ["q_proj", "v_proj"],
    # the decoder-only Transformer's own model type (issue 19, point 3), if that split is in place
    "hf_seq_transformer_lm": ["q_proj", "v_proj"],
    "hf_seq_word2vec": ["embeddings"],
}


def register_peft_defaults() -> None:
    """Add hf-seq's model types to PEFT's default LoRA targets; idempotent, a no-op without PEFT."""
    try:
        from peft.utils import constants
    except ImportError:
        return
    table = getattr(constants, "TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING", None)
    if table is None:  # a PEFT without the table (very old or reorganised): nothing to register into
        return
    for model_type, modules in LORA_TARGET_MODULES.items():
        table.setdefault(model_type, list(modules))


__all__ = ["LORA_TARGET_MODULES", "register_peft_defaults"]
