"""The bad-input table of issue 9: every model and pipeline of hf-seq fed each kind of bad input.

A case passes when the call raises `ValueError` or `TypeError` (a subclass counts) whose message matches the case's
pattern (the offending value, or the name of the offending argument), raised by hf-seq / transformers code before
torch fails (the innermost frame of the traceback is not inside the torch package).

Used by tests/test_reliability_bad_input.py (one pytest case each) and benchmarks/bad_input_table.py (writes
benchmarks/results/bad_input_table.md with the count of cases tried and passed).
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
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
        from reliability_common import LSTMConfig, LSTMForCausalLM, recurrent_config

        torch.manual_seed(0)
        model = LSTMForCausalLM(recurrent_config(LSTMConfig, vocab_size=len(tok)))
        model.generation_config.eos_token_id = None
        model.save_pretrained(path)
        tok.save_pretrained(path)
    return path


def _saved_translation() -> str:
    path = os.path.join(_tmp(), "translation")
    if not os.path.isdir(path):
        from reliability_common import RNNSeq2SeqForConditionalGeneration, seq2seq_config

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

    def wrong_dim_vectors():
        from reliability_common import LSTMConfig, LSTMForSequenceClassification, recurrent_config

        from hf_seq.embeddings import load_pretrained_embeddings
        from hf_seq.tokenization import build_word_level_tokenizer

        path = os.path.join(_tmp(), "vec.txt")
        with open(path, "w") as f:
            f.write("2 3\ncat 1 2 3\ndog 4 5 6\n")
        tok = build_word_level_tokenizer(["cat dog"])
        model = LSTMForSequenceClassification(recurrent_config(LSTMConfig, vocab_size=len(tok), num_labels=2))
        return load_pretrained_embeddings(model, tok, path)

    def nan_vectors():
        from reliability_common import LSTMConfig, LSTMForSequenceClassification, recurrent_config

        from hf_seq.embeddings import load_pretrained_embeddings
        from hf_seq.tokenization import build_word_level_tokenizer

        path = os.path.join(_tmp(), "vec_nan.txt")
        with open(path, "w") as f:
            f.write("cat nan 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15\n")
        tok = build_word_level_tokenizer(["cat dog"])
        model = LSTMForSequenceClassification(recurrent_config(LSTMConfig, vocab_size=len(tok), num_labels=2))
        return load_pretrained_embeddings(model, tok, path)

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
}
_YAML_MATCH = {
    "invalid_syntax": r"(?i)yaml|line",
    "not_a_mapping": r"(?i)mapping|list|alpha",
    "unknown_section": r"modle",
    "unknown_key": r"hiden_size",
    "wrong_type": r"learning_rate|epochs|fast",
}


def _yaml_cases() -> list[Case]:
    import importlib.util

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    @functools.lru_cache(maxsize=None)
    def script(name):
        spec = importlib.util.spec_from_file_location(f"_bad_input_{name}", os.path.join(repo, "training", name))
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up while the class is created
        spec.loader.exec_module(module)
        return module

    def parse_with(entry):
        def make(kind):
            def call():
                path = os.path.join(_tmp(), f"{entry}_{kind}.yaml")
                text = _YAML_BAD[kind]
                if entry == "train_word2vec.py" and kind == "wrong_type":
                    text = "training:\n  epochs: fast\n"  # its training section has no learning_rate
                with open(path, "w") as f:
                    f.write(text)
                if entry == "train_lm.py":
                    return script(entry).parse(path, output_dir=os.path.join(_tmp(), "out"))
                if entry == "train_word2vec.py":  # main()'s parsing steps, without the training that follows
                    from transformers import HfArgumentParser

                    from hf_seq.models.word2vec.training_word2vec import Word2VecTrainingArguments

                    module = script(entry)
                    raw = module.load_config(path, [])
                    bad = set(raw.get("model") or {}) - set(module.MODEL_FIELDS)
                    if bad:
                        raise ValueError(f"unknown model fields {sorted(bad)}")
                    return [HfArgumentParser(cls).parse_dict(raw.get(section) or {}) for cls, section in (
                        (module.DataArguments, "data"), (Word2VecTrainingArguments, "training"),
                        (module.OutputArguments, "output"))]
                module = script(entry)
                raw = module.load_config_file(path, module.DataArguments, module.MODEL_KEYS)
                # the scripts validate `training` keys when building the arguments
                from transformers import HfArgumentParser, Seq2SeqTrainingArguments

                return HfArgumentParser((module.DataArguments, Seq2SeqTrainingArguments)).parse_dict(
                    {**(raw.get("data") or {}), **(raw.get("training") or {}), "output_dir": _tmp()},
                    allow_extra_keys=False,
                )
            return call
        return make

    cases = []
    for entry, family in (("train_lm.py", "recurrent"), ("train_seq2seq.py", "seq2seq"),
                          ("train_transformer.py", "transformer"), ("train_word2vec.py", "word2vec")):
        make = parse_with(entry)
        for kind in _YAML_BAD:
            cases.append(Case(family, f"training/{entry}", f"yaml_{kind}", make(kind), _YAML_MATCH[kind]))
    return cases


def all_cases() -> list[Case]:
    cases = []
    for name in MODELS:
        cases += _model_cases(name)
    cases += _pipeline_cases() + _word_vector_cases() + _yaml_cases()
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
_FAILING_IDS = """
""".split()
KNOWN_FAILURES: dict[str, str] = {}


def _fill_known_failures(cases: list[Case]) -> None:
    for case in cases:
        if case.id in _FAILING_IDS:
            KNOWN_FAILURES[case.id] = _FIXES.get((case.family, case.kind), "needs a clear ValueError/TypeError")
