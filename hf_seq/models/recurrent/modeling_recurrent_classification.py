"""Sequence and token classification heads on the recurrent encoders (deep and/or bidirectional RNN, GRU, LSTM).

Reads leaf to root: label checks -> outputs -> the sequence classifier (pool over time, then a linear layer) -> the
token classifier (a linear layer on every position) -> one thin class per architecture.

Padding never reaches the recurrent state (see `RecurrentModel`), and every pooling below also leaves it out, so a
padded batch gives each row the logits it gets alone, for left and right padding alike.
"""

from dataclasses import dataclass

import torch
from torch import nn
from transformers.modeling_outputs import ModelOutput
from transformers.utils import logging

from .configuration_recurrent import GRUConfig, LSTMConfig, RecurrentConfig, RNNConfig
from .crf import LinearChainCRF
from .modeling_recurrent import (
    RecurrentModel,
    RecurrentPreTrainedModel,
    check_input_ids,
    check_token_labels,
    check_unused_kwargs,
    is_tracing,
)

logger = logging.get_logger(__name__)

# what transformers' Trainer and pipelines may pass that a recurrent classifier does not use
_IGNORED_KWARGS = frozenset({"position_ids", "output_attentions", "num_items_in_batch"})
_PROBLEM_TYPES = ("regression", "single_label_classification", "multi_label_classification")


# Inferred here rather than inside transformers' loss: labels are checked (shape, range) before the loss, so a
# wrong label gives a ValueError naming it instead of a CUDA assert or a broadcast warning.
def _problem_type(config: RecurrentConfig, labels: torch.Tensor) -> str:
    """The same inference as transformers' `ForSequenceClassificationLoss`, done here so labels can be checked first."""
    if config.problem_type is not None:
        if config.problem_type not in _PROBLEM_TYPES:
            raise ValueError(f"`problem_type` must be one of {_PROBLEM_TYPES}, got {config.problem_type!r}.")
        return config.problem_type
    if config.num_labels == 1:
        return "regression"
    if labels.dtype in (torch.long, torch.int):
        return "single_label_classification"
    return "multi_label_classification"


def _check_class_labels(labels: torch.Tensor, num_labels: int, ignore_index: int | None = None) -> None:
    """Class ids must lie in [0, num_labels) (cross-entropy would fail with an opaque index error otherwise)."""
    if labels.is_floating_point():
        raise TypeError(f"class labels must be integer ids, got dtype {labels.dtype}.")
    if is_tracing(labels):
        return
    valid = labels if ignore_index is None else labels[labels != ignore_index]
    if valid.numel() == 0:
        return
    low, high = torch.aminmax(valid)
    if low < 0 or high >= num_labels:
        bad = int(low) if low < 0 else int(high)
        ignore = f" (use {ignore_index} to ignore a position)" if ignore_index is not None else ""
        raise ValueError(f"label {bad} is outside [0, num_labels={num_labels}){ignore}.")


@dataclass
class RecurrentSequenceClassifierOutput(ModelOutput):
    """
    loss: cross-entropy (single label), BCE-with-logits (multi-label) or MSE (regression), when `labels` are given.
    logits: (batch, num_labels).
    hidden_states: embeddings output plus each layer's output, when `output_hidden_states=True`.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class RecurrentTokenClassifierOutput(ModelOutput):
    """
    loss: token cross-entropy over positions whose label is not -100 (with `use_crf`: the sequence negative
        log-likelihood divided by the number of labelled tokens), when `labels` are given.
    logits: (batch, seq_len, num_labels); rows of padded positions are meaningless. With `use_crf`, the CRF's log
        marginals log p(y_t = l | x).
    hidden_states: embeddings output plus each layer's output, when `output_hidden_states=True`.
    emissions: with `use_crf`, the per-token scores fed to the CRF, (batch, seq_len, num_labels).
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    emissions: torch.FloatTensor | None = None


class RecurrentForSequenceClassification(RecurrentPreTrainedModel):
    """A (bi)RNN encoder, a pooling over time and a linear classifier.

    `config.classifier_pooling`:
      - `"last"`: the top layer's final state of each direction (left-to-right at the last real token, right-to-left
        at the first one), concatenated;
      - `"mean"` / `"max"`: mean / max over the top layer's outputs at real tokens only (max pooling over BiLSTM
        states is the InferSent encoder, Conneau et al. 2017).
    `config.classifier_dropout` (default: none) is applied to the pooled vector, on top of `output_dropout`.
    """

    accepts_loss_kwargs = False  # the loss is a plain mean, not normalised by Trainer's num_items_in_batch

    def __init__(self, config: RecurrentConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.model = RecurrentModel(config)
        self.dropout = nn.Dropout(config.classifier_dropout or 0.0)
        self.classifier = nn.Linear(config.hidden_size * config.num_directions, config.num_labels)
        self.post_init()

    def pool(self, last_hidden_state, final_hidden_state, attention_mask):
        """(B, T, D*H) outputs and (B, D*H) final states -> (B, D*H), with padding excluded."""
        pooling = self.config.classifier_pooling
        if pooling == "last":
            # the encoder's output dropout is applied to its outputs, not to its final state: match "mean"/"max"
            return self.model.output_dropout(final_hidden_state)
        if attention_mask is None:
            real = torch.ones(last_hidden_state.shape[:2], dtype=torch.bool, device=last_hidden_state.device)
        else:
            real = attention_mask[:, -last_hidden_state.shape[1] :].bool()
        real = real.unsqueeze(-1)  # (B, T, 1)
        if pooling == "mean":
            # the clamp only guards the division: every row has a real token (the encoder refuses empty rows)
            return (last_hidden_state * real).sum(1) / real.sum(1).clamp(min=1)
        # -inf at padding so that a padded position can never be the maximum (InferSent max pooling)
        return last_hidden_state.masked_fill(~real, float("-inf")).amax(1)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> RecurrentSequenceClassifierOutput:
        r"""
        labels (`torch.Tensor`): `(batch,)` class ids in `[0, num_labels)` (single label), `(batch, num_labels)`
            0/1 floats (multi-label), or `(batch,)` / `(batch, num_labels)` floats (regression, `num_labels == 1` or
            `problem_type="regression"`). The problem type is inferred as transformers' heads do.
        """
        check_unused_kwargs(kwargs, type(self).__name__, _IGNORED_KWARGS)
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        # 1. encode (no cache: a classifier reads whole sequences)
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            inputs_embeds=inputs_embeds,
            use_cache=False,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        # 2. pool over real tokens, 3. classify
        pooled = self.pool(outputs.last_hidden_state, outputs.final_hidden_state, attention_mask)
        logits = self.classifier(self.dropout(pooled))  # (B, num_labels)

        # 4. loss
        loss = None
        if labels is not None:
            labels = labels.to(logits.device)
            B = logits.shape[0]
            problem_type = _problem_type(self.config, labels)
            if problem_type == "single_label_classification":
                if labels.shape != (B,):
                    raise ValueError(
                        f"single-label `labels` must have shape (batch={B},), got {tuple(labels.shape)}; for "
                        "multi-label pass floats of shape (batch, num_labels) or set `problem_type`."
                    )
                _check_class_labels(labels, self.num_labels)
            elif problem_type == "multi_label_classification":
                if labels.shape != logits.shape:
                    raise ValueError(
                        f"multi-label `labels` must have shape (batch, num_labels)={tuple(logits.shape)}, got "
                        f"{tuple(labels.shape)}; integer class ids of shape (batch,) mean single-label."
                    )
                labels = labels.to(logits.dtype)
            elif labels.numel() != logits.numel():
                raise ValueError(
                    f"regression `labels` must have {logits.numel()} values (batch={B} x num_labels="
                    f"{self.num_labels}), got shape {tuple(labels.shape)}."
                )
            else:
                labels = labels.to(logits.dtype)
            self.config.problem_type = problem_type  # as transformers' loss does: later calls keep the same type
            loss = self.loss_function(labels=labels, pooled_logits=logits, config=self.config)

        output = RecurrentSequenceClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)
        return output if return_dict is not False else output.to_tuple()


class RecurrentForTokenClassification(RecurrentPreTrainedModel):
    """A (bi)RNN encoder and a linear classifier on every position (tagging, chunking, NER).

    Optional second input: with `config.feature_vocab_size = N > 0` (an extra config attribute), the model takes
    `feature_ids` (batch, seq_len) in [0, N) — e.g. POS tags for chunking — whose embedding is added to the word
    embedding (as BERT adds token-type embeddings). Such a model needs `feature_ids` at inference too, so the
    token-classification pipeline (which passes only the tokenizer's output) is for models without features.

    With `config.use_crf`, a linear-chain CRF sits on the per-token scores (BiLSTM-CRF, Huang et al. 2015): training
    maximises the likelihood of the whole tag sequence, `logits` are the marginals of each position (so the
    token-classification pipeline's scores are true probabilities) and `decode()` returns the Viterbi path.
    """

    accepts_loss_kwargs = False  # the loss is a plain mean, not normalised by Trainer's num_items_in_batch

    def __init__(self, config: RecurrentConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.model = RecurrentModel(config)
        self.feature_vocab_size = int(getattr(config, "feature_vocab_size", 0) or 0)
        self.feature_embeddings = (
            nn.Embedding(self.feature_vocab_size, config.embedding_size) if self.feature_vocab_size else None
        )
        self.dropout = nn.Dropout(config.classifier_dropout or 0.0)
        self.classifier = nn.Linear(config.hidden_size * config.num_directions, config.num_labels)
        self.crf = LinearChainCRF(config.num_labels) if getattr(config, "use_crf", False) else None
        self.post_init()

    @torch.no_grad()
    def decode(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        feature_ids: torch.LongTensor | None = None,
    ) -> torch.LongTensor:
        """The best tag sequence, (batch, seq_len) with -100 at padding: Viterbi with a CRF, else per-token arg-max."""
        out = self(input_ids, attention_mask, inputs_embeds, feature_ids, return_dict=True)
        mask = self._real_mask(out.logits, attention_mask)
        if self.crf is None:
            return out.logits.argmax(-1).masked_fill(~mask, -100)
        return self.crf.viterbi_decode(out.emissions.float(), mask)

    @staticmethod
    def _real_mask(logits, attention_mask):
        if attention_mask is None:
            return torch.ones(logits.shape[:2], dtype=torch.bool, device=logits.device)
        return attention_mask.to(logits.device).bool()

    def _embed(self, input_ids, inputs_embeds, feature_ids):
        if self.feature_embeddings is None:
            if feature_ids is not None:
                raise ValueError("`feature_ids` were given but this model has no feature embedding (feature_vocab_size=0).")
            return inputs_embeds
        if feature_ids is None:
            raise ValueError(
                f"this model adds a feature embedding (feature_vocab_size={self.feature_vocab_size}); pass "
                "`feature_ids` of shape (batch, seq_len)."
            )
        if inputs_embeds is None:
            if input_ids is None:
                raise ValueError("Pass exactly one of `input_ids` or `inputs_embeds`.")
            check_input_ids(input_ids, self.config.vocab_size)
            inputs_embeds = self.model.embeddings(input_ids)
        if tuple(feature_ids.shape) != tuple(inputs_embeds.shape[:2]):
            raise ValueError(
                f"`feature_ids` must have the shape of the inputs {tuple(inputs_embeds.shape[:2])}, got "
                f"{tuple(feature_ids.shape)}."
            )
        if is_tracing(feature_ids):
            return inputs_embeds + self.feature_embeddings(feature_ids)
        low, high = torch.aminmax(feature_ids)
        if low < 0 or high >= self.feature_vocab_size:
            bad = int(low) if low < 0 else int(high)
            raise ValueError(f"feature id {bad} is outside [0, feature_vocab_size={self.feature_vocab_size}).")
        return inputs_embeds + self.feature_embeddings(feature_ids)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        feature_ids: torch.LongTensor | None = None,
        labels: torch.LongTensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> RecurrentTokenClassifierOutput:
        r"""
        feature_ids (`torch.LongTensor` of shape `(batch, seq_len)`): a second per-token input (see class docstring).
        labels (`torch.LongTensor` of shape `(batch, seq_len)`): class ids in `[0, num_labels)`; -100 is ignored
            (padding, or sub-word pieces after the first).
        """
        check_unused_kwargs(kwargs, type(self).__name__, _IGNORED_KWARGS)
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        # 1. embed (+ feature embedding) and encode
        embeds = self._embed(input_ids, inputs_embeds, feature_ids)
        outputs = self.model(
            input_ids=input_ids if embeds is None else None,
            attention_mask=attention_mask,
            inputs_embeds=embeds,
            use_cache=False,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        # 2. score every position (and, with a CRF, turn the scores into marginals of the whole chain)
        logits = self.classifier(self.dropout(outputs.last_hidden_state))  # (B, T, num_labels)
        emissions = None
        if self.crf is not None:
            emissions = logits
            mask = self._real_mask(logits, attention_mask)
            logits = self.crf.marginals(emissions.float(), mask).to(emissions.dtype)  # dynamic programme in fp32

        # 3. loss
        loss = None
        if labels is not None:
            labels = labels.to(logits.device)
            if tuple(labels.shape) != tuple(logits.shape[:2]):
                raise ValueError(
                    f"token `labels` must have the shape of the inputs (batch, seq_len)={tuple(logits.shape[:2])}, "
                    f"got {tuple(labels.shape)}."
                )
            _check_class_labels(labels, self.num_labels, ignore_index=-100)
            # a mean over no labelled token is NaN (issue 20, point 6)
            check_token_labels(labels, self.num_labels, scored=None if self.crf is None else labels.masked_fill(~mask, -100))
            if self.crf is None:
                # token-mean cross-entropy over labelled positions (transformers' ForTokenClassification loss)
                loss = self.loss_function(logits=logits, labels=labels, config=self.config)
            else:
                labelled = (labels != -100) & mask
                nll = self.crf.neg_log_likelihood(emissions.float(), labels.masked_fill(~mask, -100), mask)
                # per labelled token, so the loss has the scale of the cross-entropy head's (learning rates carry over)
                loss = nll / labelled.sum().clamp(min=1)

        output = RecurrentTokenClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, emissions=emissions
        )
        return output if return_dict is not False else output.to_tuple()


# One thin class per architecture: transformers' Auto classes map each config class to its own model class.
class RNNForSequenceClassification(RecurrentForSequenceClassification):
    config_class = RNNConfig


class GRUForSequenceClassification(RecurrentForSequenceClassification):
    config_class = GRUConfig


class LSTMForSequenceClassification(RecurrentForSequenceClassification):
    config_class = LSTMConfig


class RNNForTokenClassification(RecurrentForTokenClassification):
    config_class = RNNConfig


class GRUForTokenClassification(RecurrentForTokenClassification):
    config_class = GRUConfig


class LSTMForTokenClassification(RecurrentForTokenClassification):
    config_class = LSTMConfig


__all__ = [
    "RecurrentSequenceClassifierOutput",
    "RecurrentTokenClassifierOutput",
    "RecurrentForSequenceClassification",
    "RecurrentForTokenClassification",
    "RNNForSequenceClassification",
    "GRUForSequenceClassification",
    "LSTMForSequenceClassification",
    "RNNForTokenClassification",
    "GRUForTokenClassification",
    "LSTMForTokenClassification",
]
