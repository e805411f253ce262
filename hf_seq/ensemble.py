"""Ensemble decoding for translation: several encoder-decoders that share a target vocabulary decode as one model.

    ensemble = EnsembleForConditionalGeneration([model_a, model_b])
    ensemble.generate(**tokenizer(["ein satz"], return_tensors="pt"), num_beams=5)
    ensemble, tokenizer, target_tokenizer = load_ensemble(["run-seed1", "run-seed2"])

At every decoding step each model scores the next token from its own state (its own cache: RNN state or
key/value cache) and the ensemble's next-token scores are the mean of the models' log-probabilities, as OpenNMT's
`EnsembleGenerator` (Sutskever et al. 2014 §3.5 ensembles LSTMs the same way). Greedy search takes the argmax of that
mean; beam search (and sampling) normalise it with a log-softmax first, i.e. score with the normalised geometric mean
of the models' distributions. The models may be of different families (an RNN seq2seq with a Transformer) as long as
they read the same source ids and write the same target vocabulary; otherwise construction is refused.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers.modeling_outputs import Seq2SeqLMOutput
from transformers.utils import ModelOutput, logging

logger = logging.get_logger(__name__)

_SEP = "."


@dataclass
class EnsembleEncoderOutput(ModelOutput):
    """The encoders' outputs of every model, flattened so that `generate()` repeats each for beams: it expands only
    top-level tensors. `last_hidden_state` is the first model's (generate reads it for the batch size); the others are
    stored under keys `"<model index>.<field>"`, plus `output_classes` to rebuild each model's own output type."""

    last_hidden_state: torch.FloatTensor | None = None
    output_classes: tuple | None = None


class EnsembleCache:
    """One cache per model (whatever each model uses), reordered together in beam search."""

    is_compileable = False

    def __init__(self, caches: list):
        self.caches = list(caches)

    @property
    def is_linear(self) -> list[bool]:
        return [False]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.caches[0].get_seq_length() if self.caches[0] is not None else 0

    def __repr__(self):
        return f"EnsembleCache({', '.join(type(c).__name__ for c in self.caches)})"


class EnsembleEncoder(nn.Module):
    """Runs every model's encoder on the same source. Holds the models in a plain list (not as sub-modules), so the
    ensemble's parameters are registered once, under `EnsembleForConditionalGeneration.models`."""

    main_input_name = "input_ids"

    def __init__(self, models):
        super().__init__()
        self._models = list(models)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> EnsembleEncoderOutput:
        """input_ids `(B, S)`, attention_mask `(B, S)` → every model's encoder output, flattened (see the class)."""
        if input_ids is None:
            raise ValueError("the ensemble encodes `input_ids` (batch, length): every model reads the same source ids")
        result = EnsembleEncoderOutput()
        classes = []
        for i, model in enumerate(self._models):
            out = model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask, return_dict=True)
            classes.append(type(out))
            for key, value in out.items():
                if isinstance(value, torch.Tensor):
                    result[f"{i}{_SEP}{key}"] = value
        result["last_hidden_state"] = result[f"0{_SEP}last_hidden_state"]
        result["output_classes"] = tuple(classes)
        return result


def _target_vocab_size(model) -> int:
    head = model.get_output_embeddings()
    if head is None:
        raise TypeError(f"{type(model).__name__} has no output projection (get_output_embeddings() is None)")
    return head.weight.shape[0]


def _vocabulary_difference(vocabs: list[dict[str, int]], names: list[str]) -> str | None:
    """None when every token -> id map equals the first, else a message naming sizes and a few differing tokens."""
    first = vocabs[0]
    for vocab, name in zip(vocabs[1:], names[1:]):
        if vocab == first:
            continue
        only_a = sorted(set(first) - set(vocab))[:5]
        only_b = sorted(set(vocab) - set(first))[:5]
        moved = sorted(t for t in set(first) & set(vocab) if first[t] != vocab[t])[:5]
        return (
            f"{names[0]} has {len(first)} tokens and {name} has {len(vocab)}; only in {names[0]}: {only_a}, only in "
            f"{name}: {only_b}, different ids: {moved}"
        )
    return None


class EnsembleForConditionalGeneration(PreTrainedModel, GenerationMixin):
    """Encoder-decoders decoding together; `generate()` works as for one model (greedy, beam search, sampling).

    Args:
        models: encoder-decoders (`...ForConditionalGeneration`) reading the same source ids and writing the same
            target vocabulary (same size and the same start/end/padding ids).
        target_vocabularies: optional token -> id maps (one per model, e.g. `target_tokenizer.get_vocab()`); when
            given they must be equal, so two vocabularies of the same size but another order are refused too.
        source_vocabularies: the same check for the source side.
    """

    main_input_name = "input_ids"
    base_model_prefix = "models"

    def __init__(self, models, target_vocabularies=None, source_vocabularies=None):
        models = list(models)
        if not models:
            raise ValueError("an ensemble needs at least one model")
        for i, model in enumerate(models):
            if not isinstance(model, PreTrainedModel) or not getattr(model.config, "is_encoder_decoder", False):
                raise TypeError(f"model {i} ({type(model).__name__}) is not an encoder-decoder PreTrainedModel")
        names = [f"model {i} ({type(m).__name__})" for i, m in enumerate(models)]
        sizes = [_target_vocab_size(m) for m in models]
        if len(set(sizes)) > 1:
            raise ValueError(f"the models' target vocabularies differ in size: {dict(zip(names, sizes))}")
        source_sizes = [m.get_input_embeddings().weight.shape[0] for m in models]
        if len(set(source_sizes)) > 1:
            raise ValueError(
                f"the models' source vocabularies differ in size: {dict(zip(names, source_sizes))}; an ensemble feeds "
                "the same source ids to every model"
            )
        for key in ("decoder_start_token_id", "eos_token_id", "pad_token_id"):
            values = [getattr(m.generation_config, key, None) or getattr(m.config, key, None) for m in models]
            if any(v != values[0] for v in values):
                raise ValueError(f"the models disagree on {key}: {dict(zip(names, values))}")
        for side, vocabs in (("target", target_vocabularies), ("source", source_vocabularies)):
            if vocabs is None:
                continue
            if len(vocabs) != len(models):
                raise ValueError(f"{len(vocabs)} {side} vocabularies for {len(models)} models")
            difference = _vocabulary_difference([dict(v) for v in vocabs], names)
            if difference:
                raise ValueError(f"the models' {side} vocabularies differ: {difference}")
        config = copy.deepcopy(models[0].config)
        super().__init__(config)
        self.generation_config = copy.deepcopy(models[0].generation_config)
        self.post_init()  # before the models are attached: nothing of theirs gets re-initialised
        self.models = nn.ModuleList(models)

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        return False  # the cache is an EnsembleCache of the models' own caches

    def _init_weights(self, module):
        pass  # the ensemble has no weights of its own

    def get_encoder(self, modality=None):
        return EnsembleEncoder(self.models)

    def get_input_embeddings(self):
        return self.models[0].get_input_embeddings()

    def get_output_embeddings(self):
        return None

    def _reorder_cache(self, cache: EnsembleCache, beam_idx: torch.LongTensor) -> EnsembleCache:
        for model, sub in zip(self.models, cache.caches):
            if hasattr(model, "_reorder_cache"):
                model._reorder_cache(sub, beam_idx)  # in place (a returned object is the same one)
            else:
                sub.reorder_cache(beam_idx)
        return cache

    def _split_encoder_outputs(self, encoder_outputs) -> list:
        classes = encoder_outputs["output_classes"]
        per_model = [{} for _ in self.models]
        for key, value in encoder_outputs.items():
            index, sep, field = key.partition(_SEP)
            if sep and index.isdigit():
                per_model[int(index)][field] = value
        return [cls(**fields) for cls, fields in zip(classes, per_model)]

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        encoder_outputs: EnsembleEncoderOutput | None = None,
        cache: EnsembleCache | None = None,
        use_cache: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> Seq2SeqLMOutput:
        """Source `input_ids`/`attention_mask` `(B, S)` (or `encoder_outputs` from `get_encoder()`), target prefix
        `decoder_input_ids` `(B, T)`. Returns `logits` `(B, T, V)` = the mean over models of log_softmax(logits)."""
        unknown = set(kwargs) - {"decoder_attention_mask", "output_attentions", "output_hidden_states",
                                 "cache_position", "decoder_position_ids", "position_ids"}
        if unknown:
            raise TypeError(f"{type(self).__name__}.forward() got unexpected keyword argument(s) {sorted(unknown)}")
        if decoder_input_ids is None:
            raise ValueError("the ensemble needs `decoder_input_ids` (batch, length)")
        if encoder_outputs is None:
            encoder_outputs = self.get_encoder()(input_ids=input_ids, attention_mask=attention_mask)
        per_model = self._split_encoder_outputs(encoder_outputs)
        caches = cache.caches if cache is not None else [None] * len(self.models)
        if len(caches) != len(self.models):
            raise ValueError(f"the cache holds {len(caches)} model states for {len(self.models)} models")
        use_cache = use_cache if use_cache is not None else self.config.use_cache
        log_probs, new_caches = [], []
        for model, enc, sub in zip(self.models, per_model, caches):
            out = model(
                attention_mask=attention_mask,
                decoder_input_ids=decoder_input_ids,
                encoder_outputs=enc,
                cache=sub,
                use_cache=use_cache,
                return_dict=True,
            )
            log_probs.append(F.log_softmax(out.logits.float(), dim=-1))
            new_caches.append(out.cache)
        logits = torch.stack(log_probs).mean(0)  # (B, T, V)
        return Seq2SeqLMOutput(logits=logits, cache=EnsembleCache(new_caches) if use_cache else None)


def load_ensemble(paths, **from_pretrained_kwargs):
    """Load hf-seq translation folders (or Hub ids) as one ensemble. Returns `(ensemble, tokenizer,
    target_tokenizer)`; the source and target vocabularies (tokenizer.json, and `target_tokenizer/` when present) must
    be the same in every folder, else a ValueError names the sizes and differing tokens."""
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    import hf_seq  # noqa: F401  (registers the hf-seq model types with the Auto classes)

    paths = [os.fspath(p) for p in paths]
    if len(paths) < 1:
        raise ValueError("load_ensemble needs at least one model folder")
    models, sources, targets = [], [], []
    for path in paths:
        models.append(AutoModelForSeq2SeqLM.from_pretrained(path, **from_pretrained_kwargs).eval())
        source = AutoTokenizer.from_pretrained(path)
        sub = os.path.join(path, "target_tokenizer")
        target = AutoTokenizer.from_pretrained(sub) if os.path.isdir(sub) else source
        sources.append(source)
        targets.append(target)
    ensemble = EnsembleForConditionalGeneration(
        models,
        target_vocabularies=[t.get_vocab() for t in targets],
        source_vocabularies=[s.get_vocab() for s in sources],
    ).eval()
    return ensemble, sources[0], targets[0]


__all__ = ["EnsembleForConditionalGeneration", "EnsembleEncoderOutput", "EnsembleCache", "load_ensemble"]
