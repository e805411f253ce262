"""Sequence and token classification heads on the recurrent encoders: the shared mixin plus the family's own checks
(padding invariance, pooling, problem types, errors, word vectors, pipelines incl. remote code, Trainer, scripts)."""

import itertools
import json
import os
import random

import pytest
import torch
import torch.nn.functional as F
from conftest import run_without_hf_seq
from mixin import ModelTesterMixin, parameters_init_leaves_unset
from transformers import (
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    DataCollatorForTokenClassification,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
)

import hf_seq  # noqa: F401  (registers the Auto classes)
from hf_seq.embeddings import load_pretrained_embeddings
from hf_seq.models.recurrent import (
    GRUConfig,
    GRUForSequenceClassification,
    GRUForTokenClassification,
    LSTMConfig,
    LSTMForSequenceClassification,
    LSTMForTokenClassification,
    RNNConfig,
    RNNForSequenceClassification,
    RNNForTokenClassification,
)
from hf_seq.tokenization import build_word_level_tokenizer

VOCAB = 40
NUM_LABELS = 3
CELLS = {"rnn": (RNNConfig, RNNForSequenceClassification, RNNForTokenClassification),
         "gru": (GRUConfig, GRUForSequenceClassification, GRUForTokenClassification),
         "lstm": (LSTMConfig, LSTMForSequenceClassification, LSTMForTokenClassification)}
AUTO = {cls.__name__: auto for _, seq, tok in CELLS.values()
        for cls, auto in ((seq, "AutoModelForSequenceClassification"), (tok, "AutoModelForTokenClassification"))}
ROOT = os.path.join(os.path.dirname(__file__), "..")


def tiny_config(config_class=LSTMConfig, **overrides):
    kwargs = dict(vocab_size=VOCAB, hidden_size=16, embedding_size=16, num_hidden_layers=2, bidirectional=True,
                  embedding_dropout=0.1, hidden_dropout=0.1, output_dropout=0.1, initializer_range=0.3,
                  num_labels=NUM_LABELS)
    kwargs.update(overrides)
    return config_class(**kwargs)


class ClassifierTester:
    def __init__(self, config_class, head, **overrides):
        self.config_class, self.head, self.overrides = config_class, head, overrides

    def get_config(self):
        return tiny_config(self.config_class, **self.overrides)

    def prepare_inputs(self, config, with_labels=False, padded=True):
        g = torch.Generator().manual_seed(0)
        ids = torch.randint(4, config.vocab_size, (3, 9), generator=g)
        mask = torch.ones_like(ids)
        if padded:  # one row right-padded, one left-padded, one full
            mask[0, 5:] = 0
            mask[1, :2] = 0
            ids = ids.masked_fill(mask == 0, config.pad_token_id)
        inputs = {"input_ids": ids, "attention_mask": mask}
        if getattr(config, "feature_vocab_size", 0):
            inputs["feature_ids"] = torch.randint(0, config.feature_vocab_size, ids.shape, generator=g)
        if with_labels:
            if self.head == "sequence":
                inputs["labels"] = torch.randint(0, config.num_labels, (3,), generator=g)
            else:
                labels = torch.randint(0, config.num_labels, ids.shape, generator=g)
                inputs["labels"] = labels.masked_fill(mask == 0, -100)
        return inputs


class TestLSTMForSequenceClassification(ModelTesterMixin):
    # deep (3 layers), bidirectional, max pooling over real tokens, an extra classifier dropout
    model_tester = ClassifierTester(LSTMConfig, "sequence", classifier_pooling="max", num_hidden_layers=3,
                                    classifier_dropout=0.2)
    all_model_classes = (LSTMForSequenceClassification,)
    auto_classes = AUTO


class TestLSTMForTokenClassificationWithCRF(ModelTesterMixin):
    # BiLSTM-CRF (Huang et al. 2015): logits are the CRF's log marginals
    model_tester = ClassifierTester(LSTMConfig, "token", use_crf=True)
    all_model_classes = (LSTMForTokenClassification,)
    auto_classes = AUTO


class TestGRUForTokenClassification(ModelTesterMixin):
    # with a second per-token input (POS tags in the CoNLL-2000 chunker), summed with the word embedding
    model_tester = ClassifierTester(GRUConfig, "token", feature_vocab_size=5)
    all_model_classes = (GRUForTokenClassification,)
    auto_classes = AUTO
    pipeline_model_classes = ()  # needs `feature_ids`, which the token-classification pipeline cannot pass


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_auto_classes_resolve(cell):
    config_class, seq_cls, tok_cls = CELLS[cell]
    config = tiny_config(config_class)
    assert type(AutoModelForSequenceClassification.from_config(config)) is seq_cls
    assert type(AutoModelForTokenClassification.from_config(config)) is tok_cls


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_every_cell_and_head_is_initialised_and_trained(cell):
    # the mixin runs on LSTM / GRU classes above; this covers each remaining cell x head pair cheaply
    config_class, seq_cls, tok_cls = CELLS[cell]
    for cls, head in ((seq_cls, "sequence"), (tok_cls, "token")):
        tester = ClassifierTester(config_class, head, classifier_pooling="mean")
        config = tester.get_config()
        model = cls(config)
        assert not parameters_init_leaves_unset(model), cls.__name__
        model(**tester.prepare_inputs(config, with_labels=True)).loss.backward()
        assert not [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()], cls.__name__


def _pad(seqs, side, pad_id=1, length=None):
    T = length or max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), pad_id)
    mask = torch.zeros(len(seqs), T, dtype=torch.long)
    spans = []
    for i, s in enumerate(seqs):
        sl = slice(T - len(s), T) if side == "left" else slice(0, len(s))
        ids[i, sl], mask[i, sl] = s, 1
        spans.append(sl)
    return ids, mask, spans


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("cell", sorted(CELLS))
def test_padded_batch_equals_each_sequence_alone(cell, bidirectional):
    # both padding sides, every pooling, both heads: each row gets exactly the logits it gets alone
    config_class, seq_cls, tok_cls = CELLS[cell]
    g = torch.Generator().manual_seed(1)
    seqs = [torch.randint(4, VOCAB, (n,), generator=g) for n in (5, 1, 8, 3)]
    models = [seq_cls(tiny_config(config_class, bidirectional=bidirectional, classifier_pooling=p)).eval()
              for p in ("last", "mean", "max")]
    models.append(tok_cls(tiny_config(config_class, bidirectional=bidirectional)).eval())
    crf = tok_cls(tiny_config(config_class, bidirectional=bidirectional, use_crf=True)).eval()
    _randomise_crf(crf)
    models.append(crf)
    for side in ("left", "right"):
        ids, mask, spans = _pad(seqs, side, length=10)
        for model in models:
            with torch.no_grad():
                batched = model(ids, attention_mask=mask).logits
                for i, s in enumerate(seqs):
                    alone = model(s[None]).logits[0]
                    got = batched[i, spans[i]] if isinstance(model, tok_cls) else batched[i]
                    torch.testing.assert_close(got, alone, atol=1e-5, rtol=0, msg=f"{side} row {i} {model.config}")
        # the Viterbi path of a padded row is its path alone, with -100 on the padding
        decoded = crf.decode(ids, attention_mask=mask)
        for i, s in enumerate(seqs):
            assert decoded[i, spans[i]].tolist() == crf.decode(s[None])[0].tolist()
            assert (decoded[i][mask[i] == 0] == -100).all()


def _randomise_crf(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.crf.parameters():
            p.copy_(torch.randn(p.shape, generator=g))


def test_crf_equals_brute_force_enumeration():
    """log Z, the loss (with an unlabelled position marginalised out), the marginals and the Viterbi path of the CRF
    head equal a sum / max over all num_labels ** seq_len tag sequences."""
    model = LSTMForTokenClassification(tiny_config(use_crf=True)).eval()
    _randomise_crf(model)
    ids = torch.randint(4, VOCAB, (1, 5), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        out = model(ids)
    e, crf = out.emissions[0], model.crf
    scores = {}
    for y in itertools.product(range(NUM_LABELS), repeat=5):
        scores[y] = (crf.start_transitions[y[0]] + crf.end_transitions[y[-1]] + sum(e[t, y[t]] for t in range(5))
                     + sum(crf.transitions[y[t - 1], y[t]] for t in range(1, 5))).detach()
    log_z = torch.logsumexp(torch.stack(list(scores.values())), 0)
    marginals = torch.zeros(5, NUM_LABELS)
    for y, score in scores.items():
        marginals[torch.arange(5), torch.tensor(y)] += torch.exp(score - log_z)
    torch.testing.assert_close(out.logits[0].exp(), marginals, atol=1e-5, rtol=0)
    torch.testing.assert_close(out.logits[0].exp().sum(-1), torch.ones(5), atol=1e-5, rtol=0)
    assert tuple(model.decode(ids)[0].tolist()) == max(scores, key=scores.get)
    gold = (0, 2, 1, 1, 0)
    with torch.no_grad():
        loss = model(ids, labels=torch.tensor([gold])).loss
        partial = model(ids, labels=torch.tensor([[0, -100, 1, 1, 0]])).loss
    torch.testing.assert_close(loss, (log_z - scores[gold]) / 5, atol=1e-5, rtol=0)
    log_num = torch.logsumexp(torch.stack([scores[(0, k, 1, 1, 0)] for k in range(NUM_LABELS)]), 0)
    torch.testing.assert_close(partial, (log_z - log_num) / 4, atol=1e-5, rtol=0)


@pytest.mark.parametrize("pooling", ["mean", "max"])
def test_pooling_ignores_padding(pooling):
    model = LSTMForSequenceClassification(tiny_config(classifier_pooling=pooling)).eval()
    # real outputs all negative, padding positive and huge: a pooling that looked at padding would change
    hidden = torch.full((2, 4, 32), -3.0)
    hidden[0, :2] = torch.tensor([-1.0, -5.0]).view(2, 1)
    hidden[0, 2:] = 100.0
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    pooled = model.pool(hidden, None, mask)
    want0 = -3.0 if pooling == "mean" else -1.0
    torch.testing.assert_close(pooled[0], torch.full((32,), want0))
    torch.testing.assert_close(pooled[1], torch.full((32,), -3.0))
    # and through the whole model: the ids sitting in padded positions do not matter
    ids = torch.randint(4, VOCAB, (2, 6))
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [0, 0, 1, 1, 1, 1]])
    other = ids.clone()
    other[mask == 0] = torch.randint(4, VOCAB, (int((mask == 0).sum()),))
    with torch.no_grad():
        torch.testing.assert_close(model(ids, attention_mask=mask).logits, model(other, attention_mask=mask).logits)


def test_last_pooling_uses_both_directions_final_states():
    model = GRUForSequenceClassification(tiny_config(GRUConfig, classifier_pooling="last")).eval()
    ids = torch.randint(4, VOCAB, (1, 6))
    with torch.no_grad():
        states = model.model(ids).last_hidden_state[0]  # (T, 2H)
        want = torch.cat([states[-1, :16], states[0, 16:]])  # forward ends at the last token, backward at the first
        torch.testing.assert_close(model.classifier(want), model(ids).logits[0], atol=1e-6, rtol=0)


def test_problem_types_match_the_transformers_losses():
    ids = torch.randint(4, VOCAB, (4, 5))
    torch.manual_seed(0)
    model = LSTMForSequenceClassification(tiny_config()).eval()
    labels = torch.tensor([0, 2, 1, 1])
    out = model(ids, labels=labels)
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits, labels))
    assert model.config.problem_type == "single_label_classification"

    model = LSTMForSequenceClassification(tiny_config()).eval()
    multi = torch.tensor([[1, 0, 1], [0, 0, 0], [1, 1, 1], [0, 1, 0]], dtype=torch.float)
    out = model(ids, labels=multi)
    torch.testing.assert_close(out.loss, F.binary_cross_entropy_with_logits(out.logits, multi))
    assert model.config.problem_type == "multi_label_classification"

    model = LSTMForSequenceClassification(tiny_config(num_labels=1)).eval()
    target = torch.tensor([0.5, -1.0, 2.0, 0.0])
    out = model(ids, labels=target)
    assert out.logits.shape == (4, 1)
    torch.testing.assert_close(out.loss, F.mse_loss(out.logits.squeeze(-1), target))
    assert model.config.problem_type == "regression"

    model = LSTMForSequenceClassification(tiny_config(problem_type="regression")).eval()
    target = torch.randn(4, NUM_LABELS)
    out = model(ids, labels=target)
    torch.testing.assert_close(out.loss, F.mse_loss(out.logits, target))


def test_token_loss_ignores_minus_100():
    model = GRUForTokenClassification(tiny_config(GRUConfig)).eval()
    ids = torch.randint(4, VOCAB, (2, 5))
    labels = torch.tensor([[0, 1, 2, -100, -100], [2, -100, 1, 0, 0]])
    out = model(ids, labels=labels)
    keep = labels != -100
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits[keep], labels[keep]))
    assert out.logits.shape == (2, 5, NUM_LABELS)


@pytest.mark.parametrize(
    "head, make, error, message",
    [
        ("seq", lambda ids: dict(labels=torch.tensor([0, NUM_LABELS])), ValueError,
         rf"label {NUM_LABELS} is outside \[0, num_labels={NUM_LABELS}\)"),
        ("seq", lambda ids: dict(labels=torch.tensor([-1, 0])), ValueError, r"label -1 is outside"),
        ("seq", lambda ids: dict(labels=torch.tensor([[0], [1]])), ValueError, r"single-label `labels`.*\(batch=2,\)"),
        ("seq", lambda ids: dict(labels=torch.ones(2, 2)), ValueError, r"multi-label `labels`.*\(2, 3\).*\(2, 2\)"),
        ("tok", lambda ids: dict(labels=torch.tensor([[0, 1, 7, -100], [0, 0, 0, 0]])), ValueError,
         rf"label 7 is outside \[0, num_labels={NUM_LABELS}\).*-100"),
        ("tok", lambda ids: dict(labels=torch.zeros(2, 3, dtype=torch.long)), ValueError,
         r"token `labels` must have the shape of the inputs.*\(2, 4\).*\(2, 3\)"),
        ("tok", lambda ids: dict(labels=torch.zeros(2, 4)), TypeError, "integer ids"),
        ("tok", lambda ids: dict(feature_ids=torch.zeros(2, 4, dtype=torch.long)), ValueError,
         "no feature embedding"),
        ("seq", lambda ids: dict(input_ids=torch.tensor([[1, VOCAB]])), ValueError, rf"token id {VOCAB}"),
    ],
)
def test_bad_labels_get_a_clear_error(head, make, error, message):
    model = (LSTMForSequenceClassification if head == "seq" else LSTMForTokenClassification)(tiny_config()).eval()
    kwargs = {"input_ids": torch.randint(4, VOCAB, (2, 4))}
    kwargs.update(make(kwargs["input_ids"]))
    with pytest.raises(error, match=message):
        model(**kwargs)


def test_feature_model_needs_valid_feature_ids():
    model = LSTMForTokenClassification(tiny_config(feature_vocab_size=5)).eval()
    ids = torch.randint(4, VOCAB, (2, 4))
    with pytest.raises(ValueError, match="feature_vocab_size=5.*pass `feature_ids`"):
        model(ids)
    with pytest.raises(ValueError, match=r"feature id 5 is outside \[0, feature_vocab_size=5\)"):
        model(ids, feature_ids=torch.full((2, 4), 5))
    with pytest.raises(ValueError, match=r"`feature_ids` must have the shape.*\(2, 4\)"):
        model(ids, feature_ids=torch.zeros(2, 3, dtype=torch.long))
    # the feature changes the output, so it is really used
    a = model(ids, feature_ids=torch.zeros(2, 4, dtype=torch.long)).logits
    b = model(ids, feature_ids=torch.ones(2, 4, dtype=torch.long)).logits
    assert not torch.allclose(a, b)


# --- word vectors ---------------------------------------------------------------------------------------------------

def test_load_pretrained_embeddings_word2vec_and_glove(tmp_path):
    tok = build_word_level_tokenizer(["good bad movie plot", "good acting"])
    vectors = {"good": [1.0, 2.0, 3.0, 4.0], "Bad": [0.5, 0.5, 0.5, 0.5], "zebra": [9.0, 9.0, 9.0, 9.0]}
    lines = [f"{w} " + " ".join(map(str, v)) for w, v in vectors.items()]
    (tmp_path / "w2v.txt").write_text(f"{len(lines)} 4\n" + "\n".join(lines) + "\n")
    (tmp_path / "glove.txt").write_text("\n".join(lines) + "\n")
    for name in ("w2v.txt", "glove.txt"):
        for freeze in (True, False):
            torch.manual_seed(0)
            model = LSTMForSequenceClassification(tiny_config(vocab_size=len(tok), embedding_size=4))
            before = model.get_input_embeddings().weight.detach().clone()
            found = load_pretrained_embeddings(model, tok, tmp_path / name, freeze=freeze)
            weight = model.get_input_embeddings().weight
            assert found == 2  # "good", and "bad" through the lower-case fallback; "zebra" is not in the vocabulary
            torch.testing.assert_close(weight[tok.convert_tokens_to_ids("good")], torch.tensor(vectors["good"]))
            torch.testing.assert_close(weight[tok.convert_tokens_to_ids("bad")], torch.tensor(vectors["Bad"]))
            other = tok.convert_tokens_to_ids("movie")
            torch.testing.assert_close(weight[other], before[other])  # not in the file: random init kept
            torch.testing.assert_close(weight[tok.pad_token_id], before[tok.pad_token_id])
            assert weight.requires_grad is (not freeze)
    model = LSTMForSequenceClassification(tiny_config(vocab_size=len(tok), embedding_size=6))
    with pytest.raises(ValueError, match="dimension 4.*embedding has 6"):
        load_pretrained_embeddings(model, tok, tmp_path / "w2v.txt")
    small = LSTMForSequenceClassification(tiny_config(vocab_size=5, embedding_size=4))
    with pytest.raises(ValueError, match="len\\(tokenizer\\)"):
        load_pretrained_embeddings(small, tok, tmp_path / "w2v.txt")


# --- toy tasks: Trainer, pipelines, remote code -----------------------------------------------------------------------

NOUNS, VERBS, ADJ = ["cat", "dog", "bird", "fish"], ["sat", "ran", "saw", "ate"], ["good", "great", "bad", "awful"]


def _chunk_sentence(rng):
    # "the cat sat on the mat"-like sentences with IOB2 chunk tags
    words, tags = [], []
    for i in range(rng.randint(1, 2)):
        if i:
            words.append("and"), tags.append("O")
        words += ["the", rng.choice(NOUNS)]
        tags += ["B-NP", "I-NP"]
        words.append(rng.choice(VERBS)), tags.append("B-VP")
    return words, tags


@pytest.fixture(scope="module")
def trained_folders(tmp_path_factory):
    """A polarity classifier and a chunker trained with Trainer on toy data (the loss must fall), saved with code."""
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("trained")
    rng = random.Random(0)
    args = dict(per_device_train_batch_size=16, learning_rate=0.02, report_to="none", logging_steps=5,
                save_strategy="no", use_cpu=True, seed=0, disable_tqdm=True)
    # 1. sentence polarity: "good"/"great" -> positive, "bad"/"awful" -> negative
    texts, labels = [], []
    for _ in range(200):
        adj = rng.choice(ADJ)
        texts.append(" ".join(["the", rng.choice(NOUNS), "was"] + [adj] + ["and", rng.choice(VERBS)] * rng.randint(0, 2)))
        labels.append(int(adj in ("good", "great")))
    tok = build_word_level_tokenizer(texts)
    config = LSTMConfig(vocab_size=len(tok), hidden_size=16, embedding_size=16, num_hidden_layers=1,
                        bidirectional=True, classifier_pooling="max", num_labels=2,
                        id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1},
                        embedding_dropout=0.0, hidden_dropout=0.0, output_dropout=0.0, initializer_range=0.1)
    model = LSTMForSequenceClassification(config)
    data = [dict(tok(t), labels=lab) for t, lab in zip(texts, labels)]
    trainer = Trainer(model=model, args=TrainingArguments(output_dir=str(root / "cls_run"), max_steps=30, **args),
                      train_dataset=data, data_collator=DataCollatorWithPadding(tok))
    trainer.train()
    cls_losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    for cls in (LSTMConfig, LSTMForSequenceClassification):
        cls.register_for_auto_class(*(() if cls is LSTMConfig else ("AutoModelForSequenceClassification",)))
    model.save_pretrained(root / "classifier")
    tok.save_pretrained(root / "classifier")

    # 2. chunking with IOB2 tags
    sents = [_chunk_sentence(rng) for _ in range(200)]
    tags = ["O", "B-NP", "I-NP", "B-VP"]
    tok = build_word_level_tokenizer([" ".join(w) for w, _ in sents])
    config = GRUConfig(vocab_size=len(tok), hidden_size=16, embedding_size=16, num_hidden_layers=1,
                       bidirectional=True, num_labels=len(tags), id2label=dict(enumerate(tags)),
                       label2id={t: i for i, t in enumerate(tags)}, embedding_dropout=0.0, hidden_dropout=0.0,
                       output_dropout=0.0, initializer_range=0.1, use_crf=True)  # a BiGRU-CRF
    model = GRUForTokenClassification(config)
    data = [dict(tok(" ".join(w)), labels=[tags.index(t) for t in ts]) for w, ts in sents]
    trainer = Trainer(model=model, args=TrainingArguments(output_dir=str(root / "tag_run"), max_steps=30, **args),
                      train_dataset=data, data_collator=DataCollatorForTokenClassification(tok))
    trainer.train()
    tag_losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    GRUConfig.register_for_auto_class()
    GRUForTokenClassification.register_for_auto_class("AutoModelForTokenClassification")
    model.save_pretrained(root / "tagger")
    tok.save_pretrained(root / "tagger")
    return {"root": root, "cls_losses": cls_losses, "tag_losses": tag_losses}


def test_short_trainer_run_lowers_the_loss(trained_folders):
    for key in ("cls_losses", "tag_losses"):
        losses = trained_folders[key]
        assert len(losses) >= 5 and losses[-1] < 0.5 * losses[0], (key, losses)


SENTENCES = ["the dog was great and ran", "the fish was awful", "the bird was bad and saw and ate"]
CHUNK_TEXT = ["the cat sat and the dog ran", "the bird ate"]


# Runs both here and in a process without hf_seq (remote code), so it is kept as source text.
PIPELINE_CODE = """
def pipeline_outputs(folder, **kwargs):
    from transformers import pipeline

    cls = pipeline("text-classification", model=str(folder / "classifier"), **kwargs)
    tag = pipeline("token-classification", model=str(folder / "tagger"), aggregation_strategy="simple", **kwargs)
    raw = pipeline("token-classification", model=str(folder / "tagger"), aggregation_strategy="none", **kwargs)

    def strip(rows):
        return [{k: (round(float(v), 5) if k == "score" else v) for k, v in r.items()} for r in rows]

    return {
        "cls_batched": [strip([r]) for r in cls(SENTENCES, batch_size=3)],
        "cls_single": [strip([cls(s)[0]]) for s in SENTENCES],
        "chunks": [strip(r) for r in tag(CHUNK_TEXT, batch_size=2)],
        "chunks_single": [strip(tag(s)) for s in CHUNK_TEXT],
        "tokens": [[r["entity"] for r in raw(s)] for s in CHUNK_TEXT],
    }
"""


def _pipeline_outputs(folder, **kwargs):
    namespace = {"SENTENCES": SENTENCES, "CHUNK_TEXT": CHUNK_TEXT}
    exec(PIPELINE_CODE, namespace)
    return namespace["pipeline_outputs"](folder, **kwargs)


def test_pipelines_from_saved_folders_and_remote_code(trained_folders):
    root = trained_folders["root"]
    local = _pipeline_outputs(root)
    # text-classification: the toy rule was learned, batched == one at a time
    assert [r[0]["label"] for r in local["cls_batched"]] == ["positive", "negative", "negative"]
    assert local["cls_batched"] == local["cls_single"]
    # token-classification: IOB2 tags merged into chunks by aggregation_strategy
    assert local["tokens"][1] == ["B-NP", "I-NP", "B-VP"]
    # word-level tokens decode with a leading space (so that text-generation joins words, issue 19 point 10)
    groups = [[(r["entity_group"], r["word"].strip()) for r in rows] for rows in local["chunks"]]
    assert groups == [[("NP", "the cat"), ("VP", "sat"), ("NP", "the dog"), ("VP", "ran")],
                      [("NP", "the bird"), ("VP", "ate")]]
    assert local["chunks"] == local["chunks_single"]
    first = local["chunks"][0][0]
    assert CHUNK_TEXT[0][first["start"] : first["end"]] == "the cat"

    # the same folders in a process without hf_seq: remote code gives the same answers
    remote = run_without_hf_seq(
        f"""
        import json, pathlib
        SENTENCES, CHUNK_TEXT = {SENTENCES!r}, {CHUNK_TEXT!r}
        exec({PIPELINE_CODE!r})
        print(json.dumps(pipeline_outputs(pathlib.Path({str(root)!r}), trust_remote_code=True)))
        """,
        root,
    )
    assert remote == json.loads(json.dumps(local))


def test_remote_code_files_are_saved(trained_folders):
    for name in ("classifier", "tagger"):
        folder = trained_folders["root"] / name
        saved = sorted(p.name for p in folder.glob("*.py"))
        assert saved == ["configuration_recurrent.py", "crf.py", "modeling_recurrent.py",
                         "modeling_recurrent_classification.py"]
        auto_map = json.loads((folder / "config.json").read_text())["auto_map"]
        assert auto_map["AutoConfig"].startswith("configuration_recurrent.")


# --- training scripts -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("use_crf", [False, True])
def test_token_labels_all_ignored_are_refused(use_crf):
    # a mean over no labelled token is NaN (issue 20, point 6)
    model = LSTMForTokenClassification(tiny_config(use_crf=use_crf)).eval()
    ids = torch.randint(4, VOCAB, (2, 5))
    with pytest.raises(ValueError, match="labels.*-100"):
        model(ids, labels=torch.full_like(ids, -100))
