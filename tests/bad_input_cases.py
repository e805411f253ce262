"""The bad-input table of issues 9 and 20: every model, pipeline, file reader, experiment section, run-folder helper
and CLI loader of hf-seq fed each kind of bad input.

A case passes when the call raises `ValueError` or `TypeError` (a subclass counts) whose message matches the case's
pattern (the offending value, or the name of the offending argument), raised by hf-seq / transformers code before
torch fails (the innermost frame of the traceback is not inside the torch package). A CLI command's refusal (exit
status 2 and an `error:` line naming the file, no traceback) counts as such a ValueError.

Used by tests/test_reliability_bad_input.py (one pytest case each) and benchmarks/bad_input_table.py (writes
benchmarks/results/bad_input_table.md with the count of cases tried and passed).
"""

from __future__ import annotations

import inspect
import os
import tempfile
import traceback
from dataclasses import dataclass
from typing import Callable

import torch
from reliability_common import MAX_POSITIONS, MODELS, NUM_LABELS, VOCAB, build, good_inputs

BIG = VOCAB + 5  # 45: an id one past nothing, easy to find in a message
NEG = -3


@dataclass
class Case:
    family: str
    target: str  # model or pipeline name
    kind: str  # which bad input
    call: Callable[[], object]
    match: str  # regex the message must contain
    xfail: str | None = None  # reason, when the owner has not added the check yet
    errors: tuple = (ValueError, TypeError)  # exception types that count as a clear refusal

    @property
    def id(self) -> str:
        return f"{self.target}-{self.kind}"


def _accepts(cls, name: str) -> bool:
    return name in inspect.signature(cls.forward).parameters


def _set_first(t: torch.Tensor, value) -> torch.Tensor:
    t = t.clone()
    t.view(-1)[-1] = value
    return t


def _model_cases(name: str) -> list[Case]:
    family, cls, _, kind = MODELS[name]
    cases = []

    def case(bad_kind, mutate, match):
        def call():
            model = build(name)
            inputs = good_inputs(name)
            mutate(inputs)
            with torch.no_grad():
                return model(**inputs)

        cases.append(Case(family, name, bad_kind, call, match))

    ids_key = "input_ids"
    case("id_out_of_range", lambda x: x.__setitem__(ids_key, _set_first(x[ids_key], BIG)), rf"{BIG}")
    case("negative_id", lambda x: x.__setitem__(ids_key, _set_first(x[ids_key], NEG)), rf"{NEG}")
    case("float_ids", lambda x: x.__setitem__(ids_key, x[ids_key].float()), r"(?i)float|dtype|integer")

    def empty_batch(x):
        for k in list(x):
            if isinstance(x[k], torch.Tensor):
                x[k] = x[k][:0]

    case("empty_batch", empty_batch, r"(?i)empty|\(0,|batch.*\b0\b|\b0\b.*batch|no rows")
    if x_is_2d(name):
        def zero_length(x):
            for k in ("input_ids", "attention_mask"):
                if k in x:
                    x[k] = x[k][:, :0]
            if "labels" in x and x["labels"].dim() == 2 and kind != "seq2seq":
                x["labels"] = x["labels"][:, :0]

        case("zero_length", zero_length, r"(?i)empty|\(\d+, 0\)|length.*\b0\b|\b0\b.*length|no (real )?token|at least one")
    if _accepts(cls, "attention_mask") and "attention_mask" in good_inputs(name):
        case("mask_shape_mismatch", lambda x: x.__setitem__("attention_mask", torch.ones(2, 9, dtype=torch.long)),
             r"(?i)attention_mask.*(shape|columns|9)|9.*attention_mask|\(2, 9\)")
        case("mask_nan", lambda x: x.__setitem__("attention_mask", _set_first(x["attention_mask"].float(),
                                                                              float("nan"))),
             r"(?i)nan|attention_mask")
    if _accepts(cls, "attention_mask") and "attention_mask" in good_inputs(name):
        def mask_value(x):
            x["attention_mask"] = _set_first(x["attention_mask"], 2)

        def fully_masked(x):
            x["attention_mask"] = x["attention_mask"].clone()
            x["attention_mask"][0] = 0

        case("mask_value_not_0_or_1", mask_value, r"(?i)attention_mask.*(0|1|2)")
        case("fully_masked_row", fully_masked, r"(?i)row|all.zero|no real token|every token")
    if "labels" in good_inputs(name):
        case("all_labels_ignored", lambda x: x.__setitem__("labels", torch.full_like(x["labels"], -100)),
             r"(?i)-100|ignored|no token")
    if "labels" in good_inputs(name):
        bad_label = NUM_LABELS + 7 if kind in ("seqcls", "tokcls") else BIG + 2
        case("label_out_of_range", lambda x: x.__setitem__("labels", _set_first(x["labels"], bad_label)),
             rf"{bad_label}")
    if kind == "seq2seq":
        case("decoder_id_out_of_range",
             lambda x: x.__setitem__("decoder_input_ids", _set_first(x["labels"], BIG)), rf"{BIG}")
    if _accepts(cls, "inputs_embeds") and kind not in ("w2v_pair", "w2v_cbow", "w2v_mlm"):
        def nan_embeds(x):
            model = build(name)
            emb = model.get_input_embeddings()(x.pop("input_ids")).detach()
            x["inputs_embeds"] = _set_first(emb, float("nan"))

        case("nan_inputs_embeds", nan_embeds, r"(?i)nan|inf|finite")
    if family == "transformer":
        def too_long(x):
            g = torch.Generator().manual_seed(0)
            long = torch.randint(5, VOCAB, (2, MAX_POSITIONS + 1), generator=g)
            x["input_ids"], x["attention_mask"] = long, torch.ones_like(long)
            if "labels" in x and kind == "lm":
                x["labels"] = long.clone()

        case("too_long_for_positions", too_long, rf"{MAX_POSITIONS + 1}.*{MAX_POSITIONS}|{MAX_POSITIONS}.*"
                                                  rf"{MAX_POSITIONS + 1}|max_position")
    # generation paths
    if hasattr(cls, "generate") and kind in ("lm", "seq2seq"):
        def gen(ids_value):
            def call():
                model = build(name)
                model.generation_config.pad_token_id = 1
                ids = _set_first(good_inputs(name)["input_ids"], ids_value)
                return model.generate(ids, max_new_tokens=3, do_sample=False)
            return call

        cases.append(Case(family, name, "generate_id_out_of_range", gen(BIG), rf"{BIG}"))
        cases.append(Case(family, name, "generate_negative_id", gen(NEG), rf"{NEG}"))
    if hasattr(cls, "generate") and kind == "lm":
        def right_padded():
            model = build(name)
            model.generation_config.pad_token_id = 1
            x = good_inputs(name)
            mask = x["attention_mask"].clone()
            mask[0, -2:] = 0
            return model.generate(x["input_ids"], attention_mask=mask, max_new_tokens=3, do_sample=False)

        cases.append(Case(family, name, "generate_right_padding", right_padded, r"(?i)left|right.padd"))
    return cases


def x_is_2d(name: str) -> bool:
    return MODELS[name][3] not in ("w2v_pair",)


# --------------------------------------------------------------------------------------------------------------
# pipelines, word-vector helpers, YAML experiment files
# --------------------------------------------------------------------------------------------------------------
_TMP = None


def _tmp() -> str:
    global _TMP
    if _TMP is None:
        _TMP = tempfile.mkdtemp(prefix="hf_seq_bad_input_")
    return _TMP


def _saved_lm() -> str:
    path = os.path.join(_tmp(), "lm")
    if not os.path.isdir(path):
        from hf_seq.tokenization import build_word_level_tokenizer

        tok = build_word_level_tokenizer(["the time traveller was expounding a recondite matter"], padding_side="left")
        from reliability_common import recurrent_config

        from hf_seq import LSTMConfig, LSTMForCausalLM

        torch.manual_seed(0)
        model = LSTMForCausalLM(recurrent_config(LSTMConfig, vocab_size=len(tok)))
        model.generation_config.eos_token_id = None
        model.save_pretrained(path)
        tok.save_pretrained(path)
    return path


def _saved_translation() -> str:
    path = os.path.join(_tmp(), "translation")
    if not os.path.isdir(path):
        from reliability_common import seq2seq_config

        from hf_seq import RNNSeq2SeqForConditionalGeneration
        from hf_seq.pipelines import save_translation_pipeline
        from hf_seq.tokenization import build_word_level_tokenizer

        tok = build_word_level_tokenizer(["a small house", "une petite maison"])
        torch.manual_seed(0)
        model = RNNSeq2SeqForConditionalGeneration(seq2seq_config(vocab_size=len(tok)))
        model.generation_config.max_new_tokens = 4
        save_translation_pipeline(model, tok, path)
    return path


def _saved_word2vec() -> str:
    path = os.path.join(_tmp(), "w2v")
    if not os.path.isdir(path):
        from hf_seq.models.word2vec import Word2VecForMaskedLM
        from hf_seq.models.word2vec.training_word2vec import prepare_word2vec

        lines = ["the cat sat on the mat", "the dog sat on the log"] * 5
        tok, config, _ = prepare_word2vec(lines, min_count=1, vector_size=8, window=2, architecture="cbow")
        torch.manual_seed(0)
        Word2VecForMaskedLM(config).save_pretrained(path)
        tok.save_pretrained(path)
    return path


def _pipeline_cases() -> list[Case]:
    from transformers import pipeline
    from transformers.pipelines.base import PipelineException

    def text_gen(prompt):
        def call():
            pipe = pipeline("text-generation", model=_saved_lm())
            return pipe(prompt, max_new_tokens=2, do_sample=False)
        return call

    def translate(text):
        def call():
            pipe = pipeline(model=_saved_translation(), trust_remote_code=True)
            return pipe(text)
        return call

    def fill_mask(text):
        def call():
            pipe = pipeline("fill-mask", model=_saved_word2vec())
            return pipe(text)
        return call

    def features(text):
        def call():
            pipe = pipeline("feature-extraction", model=_saved_word2vec())
            return pipe(text)
        return call

    return [
        Case("recurrent", "pipeline:text-generation", "non_string_prompt", text_gen(12345), r"(?i)str|12345|int"),
        Case("seq2seq", "pipeline:translation", "non_string_source", translate(12345), r"(?i)str|12345|int"),
        Case("seq2seq", "pipeline:translation", "empty_source", translate(""), r"(?i)empty|source|no token"),
        # transformers' own pipeline error (PipelineException), raised before the model runs
        Case("word2vec", "pipeline:fill-mask", "no_mask_token", fill_mask("the cat sat"), r"(?i)mask",
             errors=(ValueError, TypeError, PipelineException)),
        Case("word2vec", "pipeline:feature-extraction", "non_string_text", features(12345), r"(?i)str|12345|int"),
    ]


def _word_vector_cases() -> list[Case]:
    def unknown_plot():
        import numpy as np

        from hf_seq.plotting import plot_word_map

        vectors = {"cat": np.ones(4), "dog": np.zeros(4)}
        return plot_word_map(vectors, ["zebra", "unicorn"], os.path.join(_tmp(), "map.png"))

    def classifier_with_vectors(name: str, text: str):
        """A sentiment classifier over "cat dog" given the word-vector file `text`."""
        from reliability_common import recurrent_config

        from hf_seq import LSTMConfig, LSTMForSequenceClassification
        from hf_seq.embeddings import load_pretrained_embeddings
        from hf_seq.tokenization import build_word_level_tokenizer

        path = os.path.join(_tmp(), name)
        with open(path, "w") as f:
            f.write(text)
        tok = build_word_level_tokenizer(["cat dog"])
        model = LSTMForSequenceClassification(recurrent_config(LSTMConfig, vocab_size=len(tok), num_labels=2))
        return load_pretrained_embeddings(model, tok, path)

    def wrong_dim_vectors():
        return classifier_with_vectors("vec.txt", "2 3\ncat 1 2 3\ndog 4 5 6\n")

    def nan_vectors():
        return classifier_with_vectors("vec_nan.txt", "cat nan 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15\n")

    cases = [
        Case("word2vec", "plotting.plot_word_map", "unknown_words", unknown_plot, r"zebra|unicorn|known"),
        Case("recurrent-classification", "embeddings.load_pretrained_embeddings", "wrong_dimension",
             wrong_dim_vectors, r"3.*16|16.*3"),
        Case("recurrent-classification", "embeddings.load_pretrained_embeddings", "nan_in_vectors", nan_vectors,
             r"(?i)nan|finite|cat"),
    ]
    try:  # the word-vector query API of the word2vec family, when it has landed
        from hf_seq.models.word2vec.training_word2vec import Word2VecKeyedVectors  # noqa: F401
    except ImportError:
        return cases

    def kv():
        from transformers import AutoTokenizer

        from hf_seq.models.word2vec import Word2VecModel

        path = _saved_word2vec()
        return Word2VecKeyedVectors.from_model(Word2VecModel.from_pretrained(path), AutoTokenizer.from_pretrained(path))

    # a mapping lookup of a missing word raises KeyError naming it (dict and gensim convention), accepted here
    lookup = (ValueError, TypeError, KeyError)
    cases += [
        Case("word2vec", "Word2VecKeyedVectors", "unknown_word_lookup", lambda: kv()["zebra"], r"zebra", errors=lookup),
        Case("word2vec", "Word2VecKeyedVectors", "unknown_word_most_similar", lambda: kv().most_similar("zebra"),
             r"zebra", errors=lookup),
        Case("word2vec", "Word2VecKeyedVectors", "unknown_word_similarity", lambda: kv().similarity("cat", "zebra"),
             r"zebra", errors=lookup),
        Case("word2vec", "Word2VecKeyedVectors", "empty_most_similar", lambda: kv().most_similar(), r"(?i)at least one"),
        Case("word2vec", "Word2VecKeyedVectors", "non_string_word", lambda: kv()[12345], r"12345", errors=lookup),
    ]
    return cases


_YAML_BAD = {
    "invalid_syntax": "model: {hidden_size: 16\ntraining: [",
    "not_a_mapping": "- alpha\n- beta\n",
    "unknown_section": "modle:\n  hidden_size: 16\n",
    "unknown_key": "model:\n  hiden_size: 16\n",
    "wrong_type": "training:\n  learning_rate: fast\n",
    "duplicate_key": "training:\n  seed: 1\n  seed: 2\n",
    "negative_max_steps": "training:\n  max_steps: -5\n",
    "negative_epochs": "training:\n  num_train_epochs: -1\n",
    "negative_max_grad_norm": "training:\n  max_grad_norm: -1\n",
}
_YAML_MATCH = {
    "invalid_syntax": r"(?i)yaml|line",
    "not_a_mapping": r"(?i)mapping|list|alpha",
    "unknown_section": r"modle",
    "unknown_key": r"hiden_size",
    "wrong_type": r"learning_rate|epochs|fast",
    "duplicate_key": r"seed",
    "negative_max_steps": r"max_steps.*-5",
    "negative_epochs": r"(num_train_)?epochs.*-1|-1.*epochs",
    "negative_max_grad_norm": r"max_grad_norm.*-1",
}
# word2vec's training section is Word2VecTrainingArguments: its own names for the same mistakes
_YAML_WORD2VEC = {"wrong_type": "training:\n  epochs: fast\n", "negative_max_steps": None,
                  "negative_epochs": "training:\n  epochs: -1\n", "negative_max_grad_norm": None}
# task-specific sections checked before any data is read (issue 20 row 5): (task, kind) -> (yaml, match)
_YAML_TASK_BAD = {
    ("language-modeling", "block_size_0"): ("data:\n  block_size: 0\n", r"block_size.*0"),
    ("language-modeling", "eval_batch_size_0"): ("data:\n  eval_batch_size: 0\n", r"eval_batch_size.*0"),
    ("language-modeling", "negative_max_train_minutes"): ("data:\n  max_train_minutes: -1\n",
                                                          r"max_train_minutes.*-1"),
    ("language-modeling", "generate_temperature_0"): ("generate:\n  temperature: 0\n", r"temperature.*0"),
    ("language-modeling", "generate_empty_prompt"): ("generate:\n  prompt: ''\n", r"prompt"),
    ("language-modeling", "generate_max_new_tokens_0"): ("generate:\n  max_new_tokens: 0\n", r"max_new_tokens.*0"),
    ("language-modeling", "model_value_wrong_type"): ("model:\n  architecture: lstm\n  hidden_size: x\n",
                                                      r"hidden_size"),
    ("language-modeling", "missing_tokenizer_folder"): ("data:\n  tokenizer: ./no_such_tokenizer_folder\n",
                                                        r"no_such_tokenizer_folder"),
    ("word2vec", "negative_alpha"): ("training:\n  alpha: -0.1\n", r"alpha.*-0\.1"),
    ("word2vec", "epochs_0"): ("training:\n  epochs: 0\n", r"epochs.*0"),
}
_TASK_FAMILY = {"language-modeling": "recurrent", "text-classification": "recurrent-classification",
                "token-classification": "recurrent-classification", "translation": "seq2seq", "word2vec": "word2vec"}


def _yaml_cases() -> list[Case]:
    """Experiment files through the experiment layer (`hf_seq.training.experiment.load_experiment`): everything is
    validated there, before any data is read."""
    from hf_seq.training.experiment import TASKS, load_experiment

    def make(task, kind, text):
        def call():
            path = os.path.join(_tmp(), f"{task}_{kind}.yaml")
            with open(path, "w") as f:  # a list has no room for `task:`
                f.write(text if kind == "not_a_mapping" else f"task: {task}\n{text}")
            return load_experiment(path, output_dir=os.path.join(_tmp(), "out"))
        return call

    cases = []
    for task in TASKS:
        for kind, text in _YAML_BAD.items():
            if task == "word2vec" and kind in _YAML_WORD2VEC:
                text = _YAML_WORD2VEC[kind]
                if text is None:
                    continue
            cases.append(Case(_TASK_FAMILY[task], f"experiment:{task}", f"yaml_{kind}", make(task, kind, text),
                              _YAML_MATCH[kind]))
    for (task, kind), (text, match) in _YAML_TASK_BAD.items():
        cases.append(Case(_TASK_FAMILY[task], f"experiment:{task}", f"yaml_{kind}", make(task, kind, text), match))
    return cases


def _write(name: str, data) -> str:
    path = os.path.join(_tmp(), name)
    with open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
    return path


def _word_vector_file_cases() -> list[Case]:
    """Issue 20 rows 4 and 7: the word2vec C formats and the word-vector evaluations."""
    import numpy as np

    from hf_seq.models.word2vec import Word2VecKeyedVectors

    def load(name, data, **kw):
        return lambda: Word2VecKeyedVectors.load_word2vec_format(_write(name, data), **kw)

    def small():
        return Word2VecKeyedVectors(["cat", "dog", "fish"], np.eye(3, dtype=np.float32))

    def save_surrogate():
        kv = Word2VecKeyedVectors(["cat", "d\udcffg"], np.eye(2, dtype=np.float32))
        return kv.save_word2vec_format(os.path.join(_tmp(), "surrogate.txt"))

    def save_nan():
        kv = small()
        kv.vectors[1, 0] = np.inf
        return kv.save_word2vec_format(os.path.join(_tmp(), "nan_out.txt"))

    def binary_nan():
        data = b"1 2\ncat " + np.array([np.nan, 1.0], dtype="<f4").tobytes() + b"\n"
        return Word2VecKeyedVectors.load_word2vec_format(_write("nan.bin", data), binary=True)

    target, fam = "Word2VecKeyedVectors", "word2vec"
    pairs = lambda text: lambda: small().evaluate_word_pairs(_write("pairs.txt", text))  # noqa: E731
    return [
        Case(fam, target, "load_not_utf8", load("bad_utf8.txt", b"2 2\ncat 1 2\nd\xffg 3 4\n"), r"bad_utf8\.txt:3"),
        Case(fam, target, "load_bad_header", load("bad_header.txt", "two 2\ncat 1 2\n"), r"bad_header\.txt:1"),
        Case(fam, target, "load_bad_float", load("bad_float.txt", "1 2\ncat 1 x\n"), r"bad_float\.txt:2.*'x'"),
        Case(fam, target, "load_nan_vector", load("nan.txt", "1 2\ncat nan 1\n"), r"nan\.txt:2.*NaN"),
        Case(fam, target, "load_binary_nan_vector", binary_nan, r"nan\.bin: word 1.*NaN"),
        Case(fam, target, "load_truncated_text", load("short.txt", "3 2\ncat 1 2\n"), r"short\.txt:3.*1 of the 3"),
        Case(fam, target, "load_negative_limit", load("ok.txt", "1 2\ncat 1 2\n", limit=-1), r"limit.*-1"),
        Case(fam, target, "save_lone_surrogate_word", save_surrogate, r"d\\udcffg|surrogate"),
        Case(fam, target, "save_inf_vector", save_nan, r"'dog'.*inf"),
        Case(fam, target, "word_pairs_nan_score", pairs("cat dog 1\ncat fish nan\ndog fish 2\n"), r"pairs\.txt:2.*nan"),
        Case(fam, target, "word_pairs_constant_scores", pairs("cat dog 1\ncat fish 1\ndog fish 1\n"),
             r"(?i)every human score.*undefined"),
        Case(fam, target, "analogies_empty_file", lambda: small().evaluate_word_analogies(_write("q.txt", "")),
             r"q\.txt: no analogy questions"),
        Case(fam, target, "most_similar_negative_topn", lambda: small().most_similar("cat", topn=-3), r"topn.*-3"),
    ]


def _saved_lstm(name: str) -> str:
    from reliability_common import recurrent_config

    from hf_seq import LSTMConfig, LSTMForCausalLM

    path = os.path.join(_tmp(), name)
    if not os.path.isdir(path):
        torch.manual_seed(0)
        LSTMForCausalLM(recurrent_config(LSTMConfig)).save_pretrained(path)
    return path


def _bad_config_folder() -> str:
    """An LSTM folder whose config.json has `hidden_size: "eight"` (what @strict refuses)."""
    import json
    import shutil

    path = os.path.join(_tmp(), "bad_config")
    if not os.path.isdir(path):
        shutil.copytree(_saved_lstm("lstm_ok"), path)
        with open(os.path.join(path, "config.json")) as f:
            config = json.load(f)
        config["hidden_size"] = "eight"
        with open(os.path.join(path, "config.json"), "w") as f:
            json.dump(config, f)
    return path


def _run_folder_cases() -> list[Case]:
    """Issue 20 rows 2, 3 and 7: runs that refuse the wrong folder, `average` that refuses to overwrite, configs
    refused as ValueError (huggingface_hub's StrictDataclassError is neither ValueError nor TypeError)."""
    from transformers import TrainingArguments

    from hf_seq.training.checkpointing import (
        average_checkpoints,
        checkpoint_to_resume,
        newest_checkpoints,
        save_averaged_checkpoints,
        write_fingerprint,
    )

    def other_runs_folder():
        out = os.path.join(_tmp(), "run_a")
        write_fingerprint(out, {"model": {"hidden_size": 16}, "data": {"block_size": 35}})
        args = TrainingArguments(output_dir=out, report_to="none")
        return checkpoint_to_resume(args, fingerprint={"model": {"hidden_size": 32}, "data": {"block_size": 35}})

    def run_with_checkpoints():
        run = os.path.join(_tmp(), "avg_run")
        if not os.path.isdir(run):
            model = _saved_lstm("lstm_ok")
            import shutil

            for step in (1, 2):
                shutil.copytree(model, os.path.join(run, f"checkpoint-{step}"))
        return run

    def average_into_input():
        run = run_with_checkpoints()
        ck = [os.path.join(run, "checkpoint-1"), os.path.join(run, "checkpoint-2")]
        return save_averaged_checkpoints(ck[1], ck, ck[0])

    def average_into_foreign_folder():
        run = run_with_checkpoints()
        return save_averaged_checkpoints(os.path.join(run, "checkpoint-2"), [os.path.join(run, "checkpoint-1")],
                                         _saved_lm())

    def config_class_strict():
        from hf_seq import LSTMConfig

        return LSTMConfig(hidden_size="eight")

    def transformer_config_strict():
        from hf_seq import TransformerConfig

        return TransformerConfig(decoder_layers="two")

    def word2vec_config_type():
        from hf_seq import Word2VecConfig

        return Word2VecConfig(vector_size="eight")

    def load_checked_strict():
        from hf_seq import LSTMForCausalLM
        from hf_seq.hub.loading import load_checked

        return load_checked(_bad_config_folder(), LSTMForCausalLM)

    def cli(argv):
        """A CLI refusal (exit status 2 with an `error:` line, no traceback) counts as a ValueError carrying it."""
        import contextlib
        import io

        from hf_seq.cli import main

        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            status = main(argv)
        if status != 0:
            raise ValueError(err.getvalue().strip())  # the CLI's refusal: `hf-seq generate: error: ...`
        return status

    def pickle_only_folder():
        path = os.path.join(_tmp(), "pickle_only")
        if not os.path.isdir(path):
            import shutil

            shutil.copytree(_saved_lm(), path)
            os.remove(os.path.join(path, "model.safetensors"))
            torch.save({}, os.path.join(path, "pytorch_model.bin"))
        return path

    def truncated_folder():
        path = os.path.join(_tmp(), "truncated")
        if not os.path.isdir(path):
            import shutil

            shutil.copytree(_saved_lm(), path)
            weights = os.path.join(path, "model.safetensors")
            with open(weights, "r+b") as f:
                f.truncate(os.path.getsize(weights) // 2)
        return path

    fam = "training"
    return [
        Case(fam, "checkpointing.checkpoint_to_resume", "another_runs_folder", other_runs_folder,
             r"model\.hidden_size: 16 there, 32 now"),
        Case(fam, "checkpointing.save_averaged_checkpoints", "output_is_an_input", average_into_input,
             r"checkpoint-1.*one of the averaged inputs"),
        Case(fam, "checkpointing.save_averaged_checkpoints", "output_is_another_model", average_into_foreign_folder,
             r"not empty and was not written by save_averaged_checkpoints"),
        Case(fam, "checkpointing.newest_checkpoints", "last_negative",
             lambda: newest_checkpoints(run_with_checkpoints(), -2), r"last.*-2"),
        Case(fam, "checkpointing.average_checkpoints", "config_fails_validation",
             lambda: average_checkpoints(_saved_lstm("lstm_ok"), [_bad_config_folder()]), r"config\.json.*hidden_size"),
        Case("recurrent", "LSTMConfig", "value_wrong_type", config_class_strict, r"hidden_size.*eight"),
        Case("transformer", "TransformerConfig", "value_wrong_type", transformer_config_strict, r"decoder_layers.*two"),
        Case("word2vec", "Word2VecConfig", "value_wrong_type", word2vec_config_type, r"vector_size.*eight"),
        Case("hub", "hub.load_checked", "config_fails_validation", load_checked_strict, r"config\.json.*hidden_size"),
        Case("hub", "cli:generate", "pickle_only_folder",
             lambda: cli(["generate", pickle_only_folder(), "the", "--max-new-tokens", "2"]), r"pickle_only.*safetensors"),
        Case("hub", "cli:generate", "truncated_safetensors",
             lambda: cli(["generate", truncated_folder(), "the", "--max-new-tokens", "2"]), r"truncated.*model\.safetensors"),
    ]


def all_cases() -> list[Case]:
    cases = []
    for name in MODELS:
        cases += _model_cases(name)
    cases += _pipeline_cases() + _word_vector_cases() + _word_vector_file_cases() + _yaml_cases()
    cases += _run_folder_cases()
    _fill_known_failures(cases)
    for case in cases:
        case.xfail = KNOWN_FAILURES.get(case.id)
    return cases


def run_case(case: Case) -> tuple[bool, str]:
    """(passed, what happened) for one case."""
    import re

    try:
        case.call()
    except case.errors as e:
        frames = traceback.extract_tb(e.__traceback__)
        origin = frames[-1].filename if frames else ""
        inside_torch = f"{os.sep}torch{os.sep}" in origin and "site-packages" in origin
        message = f"{type(e).__name__}: {e}".replace("\n", " ")
        if inside_torch:
            return False, f"raised inside torch ({os.path.basename(origin)}): {message[:200]}"
        if not re.search(case.match, str(e)):
            return False, f"message does not name the value (/{case.match}/): {message[:200]}"
        return True, message[:200]
    except Exception as e:  # noqa: BLE001 - the table records whatever escaped
        frames = traceback.extract_tb(e.__traceback__)
        where = f"{os.path.basename(frames[-1].filename)}:{frames[-1].lineno}" if frames else "?"
        return False, f"{type(e).__name__} at {where}: {str(e)[:200]}".replace("\n", " ")
    return False, "no error: accepted silently"


# Cases that fail today, with the fix the owner needs to make (kept in sync with the report of issue 9). They are
# strict xfails: once the owner adds the check the case XPASSes, the test fails, and its line here must go.
_FIXES = {
    ("recurrent", "nan_inputs_embeds"): "RecurrentModel.forward: raise ValueError when "
    "`not torch.isfinite(inputs_embeds).all()` (next to the inputs_embeds shape check)",
    ("seq2seq", "empty_batch"): "RNNSeq2SeqEncoder: raise ValueError naming the shape when input_ids has 0 rows "
    "(_check_token_ids returns early on numel()==0 and a min() at modeling_seq2seq.py fails)",
    ("seq2seq", "mask_nan"): "encoder: reject a float attention_mask with NaN/inf or values other than 0/1",
    ("seq2seq", "nan_inputs_embeds"): "encoder/decoder: raise ValueError when inputs_embeds are not all finite",
    ("word2vec", "float_ids"): "_check_ids: TypeError naming the dtype unless ids are integer",
    ("word2vec", "empty_batch"): "_check_ids: ValueError naming the shape when ids have 0 elements (today: silent "
    "empty output, or RuntimeError from torch.multinomial in skip-gram negative sampling)",
    ("word2vec", "zero_length"): "_check_ids: ValueError naming the shape for (B, 0) inputs",
    ("word2vec", "mask_shape_mismatch"): "Word2VecModel.forward: check attention_mask.shape == input_ids.shape "
    "(it is accepted and ignored today)",
    ("word2vec", "mask_nan"): "reject a float attention_mask with NaN/inf or values other than 0/1",
    ("word2vec", "label_out_of_range"): "Word2VecForMaskedLM.forward: _check_ids on labels (ignoring -100) "
    "before cross_entropy (IndexError today)",
    ("recurrent-classification", "nan_in_vectors"): "hf_seq/embeddings.read_word_vectors: refuse non-finite "
    "numbers with path:line (float('nan') parses today)",
    ("seq2seq", "yaml_invalid_syntax"): "training/train_seq2seq.load_config_file: wrap yaml.YAMLError in "
    "ValueError naming the file (or use hf_seq.training.experiment.read_yaml)",
    ("seq2seq", "yaml_wrong_type"): "train_seq2seq: validate `training` value types (learning_rate: fast is accepted)",
    ("word2vec", "yaml_invalid_syntax"): "training/train_word2vec.load_config: wrap yaml.YAMLError in ValueError "
    "naming the file (or use hf_seq.training.experiment.read_yaml)",
    ("word2vec", "yaml_wrong_type"): "train_word2vec: validate value types (training.epochs: fast is accepted)",
}
_FIXES.update({  # issue 20
    ("word2vec", "fully_masked_row"): "Word2Vec models: refuse an attention_mask row of all 0 with a ValueError naming "
    "the row, as the recurrent and Transformer models do (word2vec.c skips an empty CBOW context; today it is "
    "averaged to a zero vector)",
    ("recurrent", "yaml_model_value_wrong_type"): "experiment.load_experiment: catch huggingface_hub.errors."
    "StrictDataclassError beside (TypeError, ValueError) around spec.validate, raise ConfigError naming the file",
    ("recurrent", "yaml_missing_tokenizer_folder"): "lm validate: data.tokenizer other than word/char/bpe must be an "
    "existing folder (or a Hub id when online), checked before the data is read (today: OSError "
    "'couldn't connect to huggingface.co' after loading the data)",
    ("recurrent", "value_wrong_type"): "configuration_recurrent: @strict raises StrictDataclassFieldValidationError "
    "(not a ValueError/TypeError): check field types in __post_init__ first with a TypeError naming field and value, "
    "as TransformerConfig does for d_model",
    ("transformer", "value_wrong_type"): "configuration_transformer: same for decoder_layers / encoder_layers / "
    "hidden_size given under its own name (StrictDataclassFieldValidationError escapes)",
    ("word2vec", "value_wrong_type"): "Word2VecConfig.__post_init__: check that vector_size (and the other integer "
    "fields) are ints before comparing, with a TypeError naming the field and the value",
    ("transformer", "nan_inputs_embeds"): "Transformer encoder/decoder forward (inputs_embeds is new there): raise "
    "ValueError when `not torch.isfinite(inputs_embeds).all()`, as the recurrent models do",
    ("hub", "config_fails_validation"): "hub/loading.py load_checked: catch huggingface_hub.errors."
    "StrictDataclassError with (ValueError, TypeError) around config_cls.from_pretrained and raise CheckpointError "
    "naming config.json",
})
_FAILING_IDS = """
""".split()
KNOWN_FAILURES: dict[str, str] = {}


def _fill_known_failures(cases: list[Case]) -> None:
    for case in cases:
        if case.id in _FAILING_IDS:
            KNOWN_FAILURES[case.id] = _FIXES.get((case.family, case.kind), "needs a clear ValueError/TypeError")
